"""The version-bump bot: upstream releases of schema, annotation and materialize become bump pull requests.

A run (1) reads the specs at the base branch; (2) asks upstream GitHub for releases and tags (semver only,
pre-releases only where a spec opts in) and, per cluster, picks the newest one its `bump:` policy allows
whose images exist in the cluster's registry and, for annotation/materialize, whose pinned
EMAnnotationSchemas the global cluster runs (or will run: then the global schema bump joins the change);
(3) only then writes: per set of linked components, one branch `cave-bot/<components>` made with
`python -m compiler bump` on a fresh worktree, pushed (force only over the bot's own commits) and one pull
request opened or updated. Everything it learns from outside comes before the first write, so a failure
leaves nothing half-done.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from github import Github, UnknownObjectException
from github.PullRequest import PullRequest
from github.Repository import Repository

from compiler import catalog, derive, git, render, semver
from compiler.diff import diff_ref, format_result
from compiler.errors import UserError
from compiler.github import COMMENT_LIMIT, Retry, call
from compiler.load import Loaded, load_all
from compiler.registry import Registry
from compiler.semver import Version
from compiler.spec import Bumped, GlobalCluster, LocalCluster

SCHEMA = "emannotationschemas"
# Where each followed service is released; --upstream overrides (forks, mirrors, GitHub Enterprise).
UPSTREAMS = {
    SCHEMA: "CAVEconnectome/EMAnnotationSchemas",
    "annotationengine": "CAVEconnectome/AnnotationEngine",
    "materializationengine": "CAVEconnectome/MaterializationEngine",
}
# Where AnnotationEngine / MaterializationEngine declare the EMAnnotationSchemas they are built with.
REQUIREMENT_FILES = ("requirements.txt", "requirements.in", "setup.py", "pyproject.toml")
_PIN = re.compile(r"(?im)^[^#\n]*?\bemannotationschemas\s*(?:\[[^\]]*\])?\s*(===?|>=|~=)\s*v?([0-9]+(?:\.[0-9]+){0,2})")
BRANCH_PREFIX = "cave-bot/"
LABEL = "version-bump"
SET_MARKER = "<!-- cave-bot:set {} -->"
HELD_MARKER = "<!-- cave-bot:held {} -->"
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


class Release(NamedTuple):
    version: Version
    tag: str
    url: str
    prerelease: bool


class Pin(NamedTuple):
    """The EMAnnotationSchemas requirement found in an upstream release, and where."""

    requirement: str
    minimum: Version
    path: str
    url: str


@dataclass(frozen=True)
class Bump:
    cluster: str
    service: str
    old: str
    new: str
    release: Release
    images: tuple[str, ...]
    pin: Pin | None = None
    schema_from: str | None = None  # the global cluster whose schema service this bump needs bumped first


def alias(service: str) -> str:
    svc = catalog.BY_NAME[service]
    return svc.aliases[0] if svc.aliases else service


@dataclass
class BumpSet:
    """Bumps that go together: one branch, one commit, one pull request."""

    bumps: list[Bump]

    @property
    def components(self) -> list[str]:
        return sorted({alias(b.service) for b in self.bumps})

    @property
    def branch(self) -> str:
        return BRANCH_PREFIX + "-".join(self.components)

    @property
    def key(self) -> str:
        return ",".join(f"{b.cluster}/{b.service}={b.new}" for b in self.bumps)

    @property
    def title(self) -> str:
        parts = []
        for service in _ordered({b.service for b in self.bumps}):
            versions = sorted({b.new for b in self.bumps if b.service == service}, key=_order_key, reverse=True)
            parts.append(f"{alias(service)} to {'/'.join(versions)}")
        return "Bump " + ", ".join(parts)

    def groups(self) -> list[tuple[str, str, list[str]]]:
        """(service, version, clusters) in deploy order: the global schema service first."""
        out: dict[tuple[str, str], list[str]] = {}
        for b in self.bumps:
            out.setdefault((b.service, b.new), []).append(b.cluster)
        return [(s, v, sorted(cs)) for (s, v), cs in sorted(out.items(), key=lambda kv: (_rank(kv[0][0]), kv[0]))]


def _rank(service: str) -> int:
    return 0 if service == SCHEMA else 1


def _ordered(services: set[str]) -> list[str]:
    return sorted(services, key=lambda s: (_rank(s), s))


def _order_key(text: str) -> tuple[Any, ...]:
    v = semver.parse(text)
    return v.key() if v else (-1,)


# --------------------------------------------------------------------------- upstream


@dataclass
class Upstream:
    """Releases and pinned schema versions of the followed services, read through the GitHub API."""

    gh: Github
    repos: dict[str, str] = field(default_factory=lambda: dict(UPSTREAMS))
    retry: Retry = field(default_factory=Retry)
    _repos: dict[str, Repository] = field(default_factory=dict)
    _releases: dict[str, list[Release]] = field(default_factory=dict)
    _pins: dict[tuple[str, str], Pin | None] = field(default_factory=dict)

    def _repo(self, service: str) -> Repository:
        name = self.repos[service]
        if name not in self._repos:
            self._repos[name] = call(lambda: self.gh.get_repo(name), f"reading {name}", self.retry)
        return self._repos[name]

    def releases(self, service: str) -> list[Release]:
        """Semver releases and tags, newest first; drafts and non-semver tags left out."""
        if service in self._releases:
            return self._releases[service]
        repo, name = self._repo(service), self.repos[service]
        published = call(lambda: [(r.tag_name, r.html_url, r.prerelease) for r in repo.get_releases() if not r.draft],
                         f"listing releases of {name}", self.retry)
        tags = call(lambda: [t.name for t in repo.get_tags()], f"listing tags of {name}", self.retry)
        found: dict[Version, Release] = {}
        for tag, url, pre in published:
            if (v := semver.parse(tag)) is not None:
                found[v] = Release(v, tag, url, pre or v.prerelease)
        for tag in tags:
            if (v := semver.parse(tag)) is not None and v not in found:
                found[v] = Release(v, tag, f"{repo.html_url}/releases/tag/{tag}", v.prerelease)
        self._releases[service] = sorted(found.values(), key=lambda r: r.version.key(), reverse=True)
        return self._releases[service]

    def pin(self, service: str, release: Release) -> Pin | None:
        """The EMAnnotationSchemas requirement of the service at the release's tag (None: none declared)."""
        if (service, release.tag) in self._pins:
            return self._pins[(service, release.tag)]
        repo, name = self._repo(service), self.repos[service]
        found: Pin | None = None
        for path in REQUIREMENT_FILES:
            text = call(functools.partial(_file, repo, path, release.tag), f"reading {path} of {name} at {release.tag}",
                        self.retry)
            m = _PIN.search(text or "")
            if m:
                parts = [*m.group(2).split("."), "0", "0"][:3]
                minimum = semver.parse(".".join(str(int(p)) for p in parts))
                assert minimum is not None
                requirement = f"emannotationschemas{m.group(1)}{m.group(2)}"
                found = Pin(requirement, minimum, path, f"{repo.html_url}/blob/{release.tag}/{path}")
                break
        self._pins[(service, release.tag)] = found
        return found


def _file(repo: Repository, path: str, ref: str) -> str | None:
    try:
        content = repo.get_contents(path, ref=ref)
    except UnknownObjectException:
        return None
    if isinstance(content, list):
        return None
    return content.decoded_content.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- the plan


def _image_refs(spec: GlobalCluster | LocalCluster, service: str, version: str) -> list[tuple[str, str, str]]:
    """(repository, image, tag) of every image of the service whose tag follows its version."""
    return [(spec.docker_repository, image.name, image.tag.format(version=version))
            for image in catalog.BY_NAME[service].images
            if image.registry == "repository" and "{version}" in image.tag]


def _global_of(loaded: dict[str, Loaded], spec: LocalCluster) -> str | None:
    for name, item in sorted(loaded.items()):
        if isinstance(item.spec, GlobalCluster) and spec.global_server in derive.derive(item.spec).hostnames:
            return name
    return None


def _choose(cluster: str, spec: GlobalCluster | LocalCluster, service: str, upstream: Upstream,
            registry: Registry, notes: list[str], compatible: Callable[[Release], str | None] | None = None,
            ) -> tuple[Release, tuple[str, ...]] | None:
    svc: Bumped = getattr(spec.services, service)
    policy = svc.bump
    if policy.allow == "pinned":
        return None
    current = semver.parse(svc.version)
    if current is None:
        notes.append(f"{cluster}: {service} {svc.version} is not a semantic version; not bumped "
                     f"(set a release version, or `bump: pinned`)")
        return None
    allowed = None if policy.allow == "latest" else semver.parse_range(policy.allow)
    for release in upstream.releases(service):
        if not semver.lt(current, release.version):
            break
        if release.prerelease and not policy.prereleases:
            continue
        if allowed is not None and not allowed.allows(release.version):
            continue
        refs = _image_refs(spec, service, str(release.version))
        missing = [f"{r}/{i}:{t}" for r, i, t in refs if not registry.exists(r, i, t)]
        if missing:
            notes.append(f"{cluster}: {service} {release.version} skipped: {', '.join(missing)} not in the registry")
            continue
        if compatible and (reason := compatible(release)):
            notes.append(f"{cluster}: {service} {release.version} skipped: {reason}")
            continue
        return release, tuple(f"{r}/{i}:{t}" for r, i, t in refs)
    return None


def plan(loaded: dict[str, Loaded], upstream: Upstream, registry: Registry) -> tuple[list[BumpSet], list[str]]:
    """The bump sets to propose, and notes on what was left out and why."""
    notes: list[str] = []
    bumps: list[Bump] = []
    schema_at: dict[str, str] = {}  # global cluster → the schema version it runs after this change
    for cluster, item in sorted(loaded.items()):
        spec = item.spec
        if not isinstance(spec, GlobalCluster) or spec.services.emannotationschemas is None:
            continue
        current = spec.services.emannotationschemas.version
        schema_at[cluster] = current
        if chosen := _choose(cluster, spec, SCHEMA, upstream, registry, notes):
            release, images = chosen
            bumps.append(Bump(cluster, SCHEMA, current, str(release.version), release, images))
            schema_at[cluster] = str(release.version)

    linked: set[str] = set()
    for cluster, item in sorted(loaded.items()):
        spec = item.spec
        if not isinstance(spec, LocalCluster):
            continue
        glob = _global_of(loaded, spec)
        for service in ("annotationengine", "materializationengine"):
            svc = getattr(spec.services, service)
            if svc is None:
                continue

            def compatible(release: Release, service: str = service, glob: str | None = glob) -> str | None:
                pin = upstream.pin(service, release)
                if pin is None or glob is None or glob not in schema_at:
                    return None
                target = semver.parse(schema_at[glob])
                if target is None or semver.lt(target, pin.minimum):
                    return (f"it pins {pin.requirement} ({pin.path}), but the global cluster {glob} "
                            f"can only get emannotationschemas {schema_at[glob]}")
                return None

            chosen = _choose(cluster, spec, service, upstream, registry, notes, compatible)
            if chosen is None:
                continue
            release, images = chosen
            pin = upstream.pin(service, release)
            needs = None
            if pin is not None and glob is not None and glob in schema_at:
                running = semver.parse(getattr(loaded[glob].spec.services, SCHEMA).version)
                if running is None or semver.lt(running, pin.minimum):
                    needs = glob
                    linked.add(service)
            bumps.append(Bump(cluster, service, svc.version, str(release.version), release, images, pin, needs))

    groups: list[set[str]] = [linked | {SCHEMA}] if linked else []
    for service in UPSTREAMS:
        if not any(service in g for g in groups):
            groups.append({service})
    sets = [BumpSet([b for b in bumps if b.service in g]) for g in groups]
    sets = [s for s in sets if s.bumps]
    for s in sets:
        s.bumps.sort(key=lambda b: (_rank(b.service), b.service, b.cluster))
    return sorted(sets, key=lambda s: s.branch), notes


# --------------------------------------------------------------------------- the pull request text


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def body(bset: BumpSet, upstreams: dict[str, str], diff_markdown: str | None) -> str:
    """The pull request body; the rendered diff is cut to keep the whole under GitHub's limit."""
    lines = [SET_MARKER.format(bset.key), f"## {bset.title}", "",
             "| cluster | service | from | to | release notes |", "| --- | --- | --- | --- | --- |"]
    for b in bset.bumps:
        lines.append(f"| {b.cluster} | {b.service} | {b.old} | **{b.new}** | [{_md(b.release.tag)}]({b.release.url}) |")
    lines += ["", "Upstream: " + ", ".join(f"`{upstreams[s]}`" for s in _ordered({b.service for b in bset.bumps}))]

    evidence: dict[tuple[str, str, str], list[str]] = {}  # (service, version, what) → clusters
    for b in bset.bumps:
        if b.service == SCHEMA:
            continue
        if b.pin is None:
            what = (f"no emannotationschemas requirement found in {', '.join(REQUIREMENT_FILES)} "
                    f"at `{_md(b.release.tag)}`")
        else:
            state = (f"the global cluster {b.schema_from} is bumped to a compatible version in this change"
                     if b.schema_from else "the global cluster already runs a compatible version")
            what = f"pins `{b.pin.requirement}` ([{b.pin.path} at {_md(b.release.tag)}]({b.pin.url})); {state}"
        evidence.setdefault((b.service, b.new, what), []).append(b.cluster)
    if evidence:
        lines += ["", "### Compatibility with the schema service", ""]
        lines += [f"- {service} {version} ({', '.join(clusters)}): {what}"
                  for (service, version, what), clusters in evidence.items()]

    if any(b.schema_from for b in bset.bumps):
        globals_ = sorted({b.cluster for b in bset.bumps if b.service == SCHEMA})
        locals_ = sorted({b.cluster for b in bset.bumps if b.service != SCHEMA})
        lines += ["", "### Deploy order", "",
                  f"1. The global schema service first: {', '.join(globals_)} (Argo CD wave 1).",
                  f"2. Then the local clusters: {', '.join(locals_)} (Argo CD wave 3).", "",
                  "The local images embed a newer EMAnnotationSchemas than the global schema service serves today. "
                  "Argo CD orders the Applications by wave; a commit that changes only overlays is synced by each "
                  "Application on its own, so watch `cave-" + (globals_[0] if globals_ else "global")
                  + "` turn healthy before the local clusters create tables with new schemas."]

    lines += ["", "### Images", "", "Each image below exists in its registry (checked before proposing):", ""]
    lines += [f"- `{ref}`" for ref in dict.fromkeys(ref for b in bset.bumps for ref in b.images)]
    footer = ["", "---", "Opened by `python -m compiler bot` with `python -m compiler bump` (spec comments kept, "
              "overlays rebuilt). The bot force-pushes this branch only over its own commits: a commit by a "
              "person stops it, and it comments here instead."]
    text = "\n".join(lines)
    if diff_markdown is not None:
        budget = COMMENT_LIMIT - len(text) - len("\n".join(footer)) - 200
        text += "\n\n" + _fit_diff(diff_markdown, budget)
    return text + "\n" + "\n".join(footer) + "\n"


def _fit_diff(markdown: str, budget: int) -> str:
    if len(markdown) <= budget:
        return markdown.rstrip("\n")
    cut = markdown[: max(budget - 120, 0)]
    cut = cut[: cut.rfind("\n")] if "\n" in cut else ""
    closers = ("\n```" if cut.count("```") % 2 else "") + "\n</details>" * max(
        cut.count("<details") - cut.count("</details>"), 0)
    return cut + closers + "\n\n*(diff cut to fit GitHub's limit: run `python -m compiler diff` for all of it)*"


# --------------------------------------------------------------------------- writing


@dataclass
class Options:
    repo: str
    base: str = "main"
    remote: str = "origin"
    upstreams: dict[str, str] = field(default_factory=lambda: dict(UPSTREAMS))
    author_name: str = BOT_NAME
    author_email: str = BOT_EMAIL
    dry_run: bool = False
    retry: Retry = field(default_factory=Retry)


@contextlib.contextmanager
def _worktree(root: Path, commit: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cave-bot-") as tmp:
        path = Path(tmp) / "tree"
        git.worktree_add(root, path, commit)
        try:
            yield path
        finally:
            git.worktree_remove(root, path)


def _bump(tree: Path, bset: BumpSet) -> None:
    from compiler.main import main  # the CLI's bump, exactly as a person would run it

    for service, version, clusters in bset.groups():
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["-C", str(tree), "bump", service, version, *[a for c in clusters for a in ("--cluster", c)]])
        if code != 0:
            raise UserError(f"bump {service} {version} failed: {' '.join(err.getvalue().split())}")


def _message(bset: BumpSet) -> str:
    lines = [bset.title, ""]
    lines += [f"{b.cluster}: {b.service} {b.old} -> {b.new} ({b.release.url})" for b in bset.bumps]
    return "\n".join(lines) + "\n"


def _set_key(pr: PullRequest) -> str | None:
    m = re.match(r"<!-- cave-bot:set (\S*) -->", pr.body or "")
    return m.group(1) if m else None


@dataclass
class Bot:
    root: Path
    options: Options
    gh: Github
    upstream: Upstream
    registry: Registry
    out: Callable[[str], None] = print

    def _call(self, fn: Callable[[], Any], doing: str) -> Any:
        return call(fn, doing, self.options.retry)

    def run(self) -> int:
        opts = self.options
        git.require_repo(self.root)
        git.fetch(self.root, opts.remote)
        base = git.resolve(self.root, f"refs/remotes/{opts.remote}/{opts.base}")
        if base is None:
            raise UserError(f"{opts.remote}/{opts.base} does not exist (pass --base BRANCH)")
        with _worktree(self.root, base) as tree:
            loaded = load_all(tree)
        sets, notes = plan(loaded, self.upstream, self.registry)
        for note in notes:
            self.out(f"note: {note}")
        if not sets:
            self.out("nothing to bump")
        if opts.dry_run:
            for s in sets:
                self.out(f"{s.branch}: {s.title} ({s.key}) [dry run: nothing written]")
            return 0
        repo: Repository = self._call(lambda: self.gh.get_repo(opts.repo), f"reading {opts.repo}")
        open_prs: list[PullRequest] = self._call(
            lambda: [p for p in repo.get_pulls(state="open", base=opts.base) if p.head.ref.startswith(BRANCH_PREFIX)],
            f"listing pull requests of {opts.repo}")
        by_branch = {p.head.ref: p for p in open_prs}
        numbers: dict[str, int] = {}
        for bset in sets:
            pr = self._apply(repo, bset, base, by_branch.get(bset.branch))
            if pr is not None:
                numbers[bset.branch] = pr.number
        self._supersede(sets, open_prs, numbers)
        return 0

    def _apply(self, repo: Repository, bset: BumpSet, base: str, pr: PullRequest | None) -> PullRequest | None:
        opts, branch = self.options, bset.branch
        remote_head = git.resolve(self.root, f"refs/remotes/{opts.remote}/{branch}")
        if pr is None and self._declined(repo, bset):
            return None
        with _worktree(self.root, base) as tree:
            _bump(tree, bset)
            commit = git.commit_all(tree, _message(bset), opts.author_name, opts.author_email)
            if remote_head is not None:
                people = [(c, e, n) for c, e, n in git.authors(self.root, base, remote_head) if e != opts.author_email]
                if people:
                    self._hold(bset, pr, people)
                    return pr
                if git.tree_of(self.root, remote_head) == git.tree_of(tree, commit):
                    if pr is not None and _set_key(pr) == bset.key:
                        self.out(f"{branch}: up to date (#{pr.number})")
                        return pr
                    return self._open_or_edit(repo, bset, tree, pr)
            git.push(tree, opts.remote, commit, branch, remote_head)
            self.out(f"{branch}: pushed {commit[:12]} ({bset.key})")
            return self._open_or_edit(repo, bset, tree, pr)

    def _open_or_edit(self, repo: Repository, bset: BumpSet, tree: Path, pr: PullRequest | None) -> PullRequest:
        clusters = sorted({b.cluster for b in bset.bumps})
        since = f"{self.options.remote}/{self.options.base}"  # fetched at the start: the commit `base` names
        rendered = format_result(diff_ref(tree, since, clusters, cache=render.default_cache(self.root)), "markdown",
                                 max_chars=COMMENT_LIMIT // 2)
        text = body(bset, self.options.upstreams, rendered)
        labels = [LABEL, *bset.components]
        if pr is None:
            pr = self._call(lambda: repo.create_pull(title=bset.title, body=text, base=self.options.base,
                                                     head=bset.branch), f"opening a pull request for {bset.branch}")
            self.out(f"{bset.branch}: opened #{pr.number} {pr.html_url}")
        elif pr.title != bset.title or pr.body != text:
            number = pr.number
            self._call(lambda: pr.edit(title=bset.title, body=text), f"updating #{number}")
            self.out(f"{bset.branch}: updated #{number} {pr.html_url}")
        have = {label.name for label in pr.labels}
        if missing := [label for label in labels if label not in have]:
            self._call(lambda: pr.add_to_labels(*missing), f"labelling #{pr.number}")
        return pr

    def _declined(self, repo: Repository, bset: BumpSet) -> bool:
        """Whether a closed pull request proposed exactly this set: a person said no; wait for a newer release."""
        owner, branch = self.options.repo.split("/")[0], bset.branch
        closed = self._call(lambda: [p for p in repo.get_pulls(state="closed", head=f"{owner}:{branch}")
                                     if _set_key(p) == bset.key], f"listing closed pull requests of {branch}")
        if closed:
            self.out(f"{branch}: #{closed[0].number} proposed this and was closed; waiting for a newer release")
        return bool(closed)

    def _hold(self, bset: BumpSet, pr: PullRequest | None, people: Sequence[tuple[str, str, str]]) -> None:
        who = ", ".join(sorted({f"{n} <{e}>" for _, e, n in people}))
        if pr is None:
            self.out(f"{bset.branch}: has commits by {who} and no open pull request; left alone")
            return
        if _set_key(pr) == bset.key:
            self.out(f"{bset.branch}: has commits by {who}; nothing newer to propose (#{pr.number})")
            return
        marker = HELD_MARKER.format(bset.key)
        comments = self._call(lambda: [c.body or "" for c in pr.get_issue_comments()], f"reading #{pr.number}")
        if any(marker in c for c in comments):
            self.out(f"{bset.branch}: has commits by {who}; already said so on #{pr.number}")
            return
        rows = "\n".join(f"- {b.cluster}: {b.service} {b.old} → **{b.new}** ([{b.release.tag}]({b.release.url}))"
                         for b in bset.bumps)
        shas = ", ".join(c[:12] for c, _, _ in people)
        text = (f"{marker}\nA newer bump is ready, but this branch has commits by {who} ({shas}), which the bot "
                f"never overwrites, so it did not push:\n\n{rows}\n\nMerge or close this pull request (or delete "
                f"the branch) and the next run proposes it; or apply it here with "
                + "; ".join(f"`python -m compiler bump {alias(s)} {v} {' '.join('--cluster ' + c for c in cs)}`"
                            for s, v, cs in bset.groups()) + ".")
        self._call(lambda: pr.create_issue_comment(text), f"commenting on #{pr.number}")
        self.out(f"{bset.branch}: has commits by {who}; commented on #{pr.number} instead of pushing")

    def _supersede(self, sets: list[BumpSet], open_prs: list[PullRequest], numbers: dict[str, int]) -> None:
        for pr in open_prs:
            if pr.head.ref in numbers:
                continue
            components = set(pr.head.ref.removeprefix(BRANCH_PREFIX).split("-"))
            newer = [s for s in sets if s.branch in numbers and components & set(s.components)]
            if not newer:
                continue
            successor = numbers[newer[0].branch]
            text = (f"Superseded by #{successor}, which carries these components together "
                    f"({', '.join(newer[0].components)}). Closing this one so no component and cluster has two "
                    "open bump pull requests.")
            number = pr.number
            self._call(functools.partial(pr.create_issue_comment, text), f"commenting on #{number}")
            self._call(functools.partial(pr.edit, state="closed"), f"closing #{number}")
            self.out(f"{pr.head.ref}: closed #{number}, superseded by #{successor}")
