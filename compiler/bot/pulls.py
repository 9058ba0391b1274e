"""The bot's pull requests: one branch, commit and PR per bump set, kept up to date."""

from __future__ import annotations

import contextlib
import functools
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from github import Github
from github.PullRequest import PullRequest
from github.Repository import Repository

from compiler import git
from compiler.bot.images import Registry
from compiler.bot.plan import BumpSet, alias, body, plan
from compiler.bot.upstream import BOT_EMAIL, BOT_NAME, BRANCH_PREFIX, HELD_MARKER, LABEL, UPSTREAMS, Upstream
from compiler.build.bump import bump
from compiler.diff.engine import diff_ref
from compiler.diff.report import format_result
from compiler.errors import UserError
from compiler.github import COMMENT_LIMIT, Retry, call
from compiler.render.cache import default_cache
from compiler.spec.load import load_all

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
    for service, version, clusters in bset.groups():
        try:
            bump(tree, service, version, clusters)  # what `python -m compiler bump` does
        except UserError as err:
            raise UserError(f"bump {service} {version} failed: {' '.join(str(err).split())}") from None


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
        rendered = format_result(diff_ref(tree, since, clusters, cache=default_cache(self.root)), "markdown",
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
