"""The bump bot's test world: the fake GitHub (upstream releases and the gitops repository's pull requests), the
fake registry, and real git with a bare remote seeded from this repository; the bot's production code runs unchanged."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler import github
from compiler.bot.images import RegistryClient
from compiler.bot.pulls import Bot, Options
from compiler.bot.upstream import UPSTREAMS, Upstream
from compiler.main import main
from tests.support import REPO
from tests.support.fake_github import TOKEN, FakeGitHub, UpstreamRepo
from tests.support.fake_registry import FakeRegistry

SCHEMA, ANNOTATION, MATERIALIZE = (UPSTREAMS[s] for s in ("emannotationschemas", "annotationengine",
                                                              "materializationengine"))
HUMAN_ID = ("-c", "user.name=Dana Reviewer", "-c", "user.email=dana@example.org")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


@dataclass
class World:
    tmp: Path
    gh: FakeGitHub
    hub: FakeRegistry
    clone: Path
    remote: Path
    sleeps: list[float] = field(default_factory=list)
    said: list[str] = field(default_factory=list)

    def up(self, name: str) -> UpstreamRepo:
        return self.gh.upstream[name]

    def release(self, name: str, tag: str, image: str | None = None, schema_pin: str | None = None,
                **kw: Any) -> None:
        pinned = schema_pin if schema_pin and schema_pin[0] in "<>=!~" else f"=={schema_pin}"  # a version: exact
        files = {"requirements.txt": f"flask>=2\nemannotationschemas{pinned}\n"} if schema_pin else None
        self.up(name).release(tag, files=files, **kw)
        if image:
            self.hub.push(f"caveconnectome/{image}", tag)

    def bot(self, upstream_url: str | None = None, max_wait: float = 30.0) -> Bot:
        retry = github.Retry(max_wait=max_wait, sleep=self.sleeps.append)
        options = Options(repo=self.gh.repo, retry=retry)
        ours = github.client(self.gh.api_url, TOKEN, seconds_between_requests=0, seconds_between_writes=0)
        theirs = github.client(upstream_url or self.gh.api_url, None, seconds_between_requests=0,
                               seconds_between_writes=0)
        return Bot(self.clone, options, ours, Upstream(theirs, options.upstreams, retry),
                   RegistryClient(self.hub.url, retry), out=self.said.append)

    def run(self, **kw: Any) -> int:
        self.said.clear()
        return self.bot(**kw).run()

    def refs(self) -> dict[str, str]:
        out = git(self.remote, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads")
        return dict(line.split() for line in out.splitlines())

    def show(self, branch: str, path: str) -> str:
        return git(self.remote, "show", f"refs/heads/{branch}:{path}")

    def human_commit(self, branch: str, path: str, old: str, new: str, amend: bool = False) -> str:
        """A person edits a file on the branch and pushes: a commit on top, or (amend) `git commit --amend`, which
        keeps the bot as the author and makes the person the committer."""
        work = self.tmp / "human"
        if not work.exists():
            git(self.tmp, "clone", "-q", str(self.remote), str(work))
        git(work, "fetch", "-q", "origin")
        git(work, "checkout", "-q", "-B", branch, f"origin/{branch}")
        file = work / path
        text = file.read_text()
        assert old in text
        file.write_text(text.replace(old, new, 1))
        if amend:
            git(work, *HUMAN_ID, "commit", "-qa", "--amend", "--no-edit")
        else:
            git(work, *HUMAN_ID, "commit", "-qam", "tune replicas")
        git(work, "push", "-qf", "origin", f"HEAD:refs/heads/{branch}")
        return git(work, "rev-parse", "HEAD").strip()

    def writes_after(self, count: int) -> list[tuple[str, str]]:
        """The API writes (method, path without the /api/v3/repos/<repo> prefix) since the first `count`."""
        cut = f"{self.gh.prefix}/repos/{self.gh.repo}"
        return [(m, path.removeprefix(cut)) for m, path in self.gh.writes()[count:]]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def seed_repo(tmp: Path, edit: dict[str, tuple[str, str]] | None = None) -> tuple[Path, Path]:
    """A bare remote holding this repository's specs, bases and overlays, and a clone of it (the checkout)."""
    seed = tmp / "seed"
    seed.mkdir()
    for part in ("environments", "base", "overlays"):
        shutil.copytree(REPO / part, seed / part)
    for name in ("gitops.yaml", ".gitignore"):  # .gitignore: the build's .cache/ is never committed
        shutil.copy(REPO / name, seed / name)
    for path, (old, new) in (edit or {}).items():
        text = (seed / path).read_text()
        assert old in text
        (seed / path).write_text(text.replace(old, new, 1))
    if edit:
        assert main(["-C", str(seed), "build"]) == 0
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "-c", "user.name=Seed", "-c", "user.email=seed@example.org", "commit", "-qm", "seed")
    remote = tmp / "remote.git"
    git(tmp, "clone", "-q", "--bare", str(seed), str(remote))
    clone = tmp / "clone"
    git(tmp, "clone", "-q", str(remote), str(clone))
    return clone, remote


def make_world(tmp: Path, edit: dict[str, tuple[str, str]] | None = None) -> Iterator[World]:
    gh = FakeGitHub().start()
    hub = FakeRegistry()
    for name in (SCHEMA, ANNOTATION, MATERIALIZE):
        gh.upstream[name] = UpstreamRepo()
    clone, remote = seed_repo(tmp, edit)
    w = World(tmp, gh, hub, clone, remote)
    w.release(SCHEMA, "v5.12.0", "emannotationschemas")
    # The releases the local clusters run: ranges, so the global schema service can move on within the major.
    w.release(ANNOTATION, "v4.14.1", "annotationengine", schema_pin=">=5.12,<6")
    w.release(MATERIALIZE, "v4.23.0", "materializationengine", schema_pin=">=5.10,<6")
    w.release(MATERIALIZE, "vFastCsv2", "materializationengine")  # a non-semver tag: never proposed
    try:
        yield w
    finally:
        gh.stop()
        hub.stop()


def bot_pulls(w: World) -> list[dict[str, Any]]:
    return w.gh.open_pulls()
