"""The bot's pull requests: one branch, commit and PR per bump set, kept up to date."""

from __future__ import annotations

import contextlib
import functools
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from github import Github, GithubException
from github.PullRequest import PullRequest
from github.Repository import Repository

from compiler import git, progress
from compiler.bot.argo import ArgoCd
from compiler.bot.images import RegistryClient
from compiler.bot.plan import BumpSet, alias, body, link, plan
from compiler.bot.stages import Stages, Stop
from compiler.bot.upstream import (
    BOT_EMAIL,
    BOT_NAME,
    BRANCH_PREFIX,
    HELD_MARKER,
    LABEL,
    STOPPED_LATER_MARKER,
    STOPPED_MARKER,
    SUPERSEDED_MARKER,
    TRAILER,
    UPSTREAMS,
    Upstream,
)
from compiler.build.bump import bump
from compiler.diff.engine import diff_ref
from compiler.diff.report import format_result
from compiler.errors import UserError
from compiler.github import COMMENT_LIMIT, Retry, call
from compiler.render.cache import default_cache
from compiler.spec.load import load_all
from compiler.spec.settings import load_settings

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
    argocd_token: str = field(default="", repr=False)  # $ARGOCD_TOKEN: read Application health (staged rollout)


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
    return "\n".join(lines) + f"\n\n{TRAILER}: {bset.key}\n"


_MARKER = re.compile(r"<!-- cave-bot:set (\S*?)(?: head=([0-9a-f]{40}))? -->")


def _set_key(pr: PullRequest) -> str | None:
    m = _MARKER.match(pr.body or "")
    return m.group(1) if m else None


def _recorded_head(pr: PullRequest | None) -> str | None:
    """The branch head the bot recorded on the pull request when it last pushed."""
    m = _MARKER.match(pr.body or "") if pr is not None else None
    return m.group(2) if m else None


@dataclass(frozen=True)
class Foreign:
    """A commit on a bot branch the bot did not push, and who made it."""

    sha: str
    who: tuple[str, ...]  # "Name <email>" of the author and committer who are not the bot


def _commits(root: Path, base: str, head: str) -> list[tuple[str, str, str, str, str, str]]:
    """(sha, author name, author email, committer name, committer email, message) of base..head, newest first."""
    out = git.run(root, "log", "--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%B%x1e", f"{base}..{head}").stdout
    rows = [r.strip("\n").split("\0") for r in out.split("\x1e") if r.strip()]
    return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows if len(r) == 6]


@dataclass
class Bot:
    root: Path
    options: Options
    gh: Github
    upstream: Upstream
    registry: RegistryClient
    out: Callable[[str], None] = print
    clock: Callable[[], float] = time.time  # now, for the staged rollout's soak times

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
            found = load_settings(tree)
        settings = found.settings if found else None
        api_url = settings.argocd.api_url if settings else None
        argocd = ArgoCd(api_url, opts.argocd_token, opts.retry) if api_url else None
        stages = Stages(self.root, base, loaded, settings, argocd, self.clock())
        sets, notes = plan(loaded, self.upstream, self.registry, stages.gate)
        for s in sets:
            for service, version, _ in s.groups():
                if lines := stages.plans.get((service, version)):
                    s.stage_plan += ([""] if s.stage_plan else []) + lines
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
            lambda: [p for p in repo.get_pulls(state="open", base=opts.base) if p.head.ref.startswith(BRANCH_PREFIX)
                     and p.head.repo is not None and p.head.repo.full_name == repo.full_name],  # not a fork's
            f"listing pull requests of {opts.repo}")
        if stages.stops:
            closed = self._stopped(repo, stages.stops, open_prs)
            open_prs = [p for p in open_prs if p.number not in closed]
        by_branch = {p.head.ref: p for p in open_prs}
        numbers: dict[str, int] = {}
        for bset in progress.each("bot pull requests", sets, lambda s: s.branch):
            pr = self._apply(repo, bset, base, by_branch.get(bset.branch))
            if pr is not None:
                numbers[bset.branch] = pr.number
        self._supersede(sets, open_prs, numbers, base)
        return 0

    # ------------------------------------------------------------------ whose work is on a branch

    def _foreign(self, base: str, remote_head: str, pr: PullRequest | None) -> list[Foreign]:
        """Commits on the branch the bot did not push. The branch is the bot's own when its head is the commit
        the bot recorded on the pull request; without that record (a response lost after a push, a pull request
        from before the record) only when it is one commit authored and committed by the bot that names its set
        in a trailer. An amend keeps the author but not the committer or the commit; a rebase or a commit on top
        changes the head: all of them are a person's change."""
        if _recorded_head(pr) == remote_head:
            return []
        bot = self.options.author_email
        commits = _commits(self.root, base, remote_head)
        if not commits:
            return []  # everything on the branch is on the base (a merged pull request's branch): nothing to lose
        if (len(commits) == 1 and commits[0][2] == bot and commits[0][4] == bot
                and re.search(rf"(?m)^{TRAILER}: \S+$", commits[0][5])
                and (pr is None or _recorded_head(pr) is None or self._pushed_by_bot(pr, remote_head))):
            return []
        people = [Foreign(sha, tuple(dict.fromkeys(f"{n} <{e}>" for n, e in ((an, ae), (cn, ce)) if e != bot)))
                  for sha, an, ae, cn, ce, _ in commits]
        if named := [f for f in people if f.who]:
            return named
        # Only the bot's identity, yet not what it pushed (another workflow as the bot, a rebase): still not its own.
        recorded = _recorded_head(pr)
        return [Foreign(sha, (f"{an} <{ae}>",)) for sha, an, ae, *_ in commits if sha != recorded] or [
            Foreign(remote_head, ("someone (the branch is not at the commit the bot pushed)",))]

    def _pushed_by_bot(self, pr: PullRequest, remote_head: str) -> bool:
        """A recorded head that is not the branch head: the bot's own push whose record was lost (the recorded
        commit is the bot's and the new head replaced it, not built on it) or a person's change."""
        recorded = _recorded_head(pr)
        if recorded is None:
            return False
        return git.run(self.root, "merge-base", "--is-ancestor", recorded, remote_head, check=False).returncode != 0

    # ------------------------------------------------------------------ one set

    def _apply(self, repo: Repository, bset: BumpSet, base: str, pr: PullRequest | None) -> PullRequest | None:
        opts, branch = self.options, bset.branch
        remote_head = git.resolve(self.root, f"refs/remotes/{opts.remote}/{branch}")
        if pr is None and self._declined(repo, bset):
            return None
        with _worktree(self.root, base) as tree:
            _bump(tree, bset)
            commit = git.commit_all(tree, _message(bset), opts.author_name, opts.author_email)
            head = commit
            if remote_head is not None:
                if foreign := self._foreign(base, remote_head, pr):
                    self._hold(bset, pr, foreign)
                    if pr is not None:
                        self._tidy(bset, pr)
                    return pr
                if git.tree_of(self.root, remote_head) == git.tree_of(tree, commit):
                    head = remote_head  # the branch already says this
            if head == commit:
                git.push(tree, opts.remote, commit, branch, remote_head)
                self.out(f"{branch}: pushed {commit[:12]} ({bset.key})")
            return self._reconcile(repo, bset, tree, pr, head)

    def _reconcile(self, repo: Repository, bset: BumpSet, tree: Path, pr: PullRequest | None,
                   head: str) -> PullRequest:
        """Open the pull request, or bring an open one to what it should be: title, body (with the pushed head)
        and labels. Each write is idempotent, so a run after a lost response completes what is missing."""
        clusters = sorted({b.cluster for b in bset.bumps})
        since = f"{self.options.remote}/{self.options.base}"  # fetched at the start: the commit `base` names
        rendered = format_result(diff_ref(tree, since, clusters, cache=default_cache(self.root)), "markdown",
                                 max_chars=COMMENT_LIMIT // 2)
        text = body(bset, self.options.upstreams, rendered, head)
        labels = [LABEL, *bset.components]
        changed = False
        if pr is None:
            pr = self._call(functools.partial(self._create, repo, bset, text),
                            f"opening a pull request for {bset.branch}")
            assert pr is not None
            self.out(f"{bset.branch}: opened #{pr.number} {pr.html_url}")
            changed = True
        if pr.title != bset.title or pr.body != text:
            number, current = pr.number, pr
            self._call(lambda: current.edit(title=bset.title, body=text), f"updating #{number}")
            self.out(f"{bset.branch}: updated #{number} {pr.html_url}")
            changed = True
        have = {label.name for label in pr.labels}
        if missing := [label for label in labels if label not in have]:
            current = pr
            self._call(lambda: current.add_to_labels(*missing), f"labelling #{pr.number}")
            self.out(f"{bset.branch}: labelled #{pr.number} {', '.join(missing)}")
            changed = True
        if not changed:
            self.out(f"{bset.branch}: up to date (#{pr.number})")
        return pr

    def _tidy(self, bset: BumpSet, pr: PullRequest) -> None:
        """A pull request held for a person's commits still gets what a lost answer may have left out: its labels
        (the branch names the components), and its title when it still proposes this set. The body and the branch
        stay as they are (they describe what is on the branch)."""
        number, current = pr.number, pr
        if _set_key(pr) == bset.key and pr.title != bset.title:
            self._call(lambda: current.edit(title=bset.title), f"updating #{number}")
            self.out(f"{bset.branch}: retitled #{number}")
        have = {label.name for label in pr.labels}
        if missing := [label for label in [LABEL, *bset.components] if label not in have]:
            self._call(lambda: current.add_to_labels(*missing), f"labelling #{number}")
            self.out(f"{bset.branch}: labelled #{number} {', '.join(missing)}")

    def _create(self, repo: Repository, bset: BumpSet, text: str) -> PullRequest:
        """Open the pull request; if GitHub says one exists for the branch (it was opened, and the answer lost),
        that one."""
        try:
            return repo.create_pull(title=bset.title, body=text, base=self.options.base, head=bset.branch)
        except GithubException as err:
            if err.status != 422:
                raise
            owner = self.options.repo.split("/")[0]
            found = list(repo.get_pulls(state="open", head=f"{owner}:{bset.branch}"))
            if not found:
                raise
            self.out(f"{bset.branch}: #{found[0].number} was already open (an earlier answer was lost)")
            return found[0]

    def _declined(self, repo: Repository, bset: BumpSet) -> bool:
        """Whether a pull request that proposed exactly this set was closed unmerged by someone other than the bot:
        a person said no; wait for a newer release. One the bot closed itself (superseded) holds nothing back."""
        owner, branch = self.options.repo.split("/")[0], bset.branch
        closed: list[PullRequest] = self._call(
            lambda: [p for p in repo.get_pulls(state="closed", head=f"{owner}:{branch}")
                     if _set_key(p) == bset.key and p.merged_at is None],
            f"listing closed pull requests of {branch}")
        for pr in closed:
            number, opener = pr.number, pr.user.login
            closer = self._call(functools.partial(lambda n: repo.get_issue(n).closed_by, number),
                                f"reading who closed #{number}")
            if closer is None or closer.login != opener:
                who = closer.login if closer is not None else "someone"
                self.out(f"{branch}: #{number} proposed this and was closed by {who}; waiting for a newer release")
                return True
        return False

    def _comment_once(self, pr: PullRequest, marker: str, text: str) -> bool:
        """Post `marker`+text unless the bot's comment with the marker is there: a retry after a lost answer, or a
        later run, never posts it twice. Only the bot's own comments count (it opened the pull request): a person
        quoting the marker does not silence it."""
        tried: list[bool] = []

        def post() -> bool:  # True: this run posted it (found again after a lost answer counts)
            if any(marker in (c.body or "") and c.user.login == pr.user.login for c in pr.get_issue_comments()):
                return bool(tried)
            tried.append(True)
            pr.create_issue_comment(f"{marker}\n{text}")
            return True
        posted: bool = self._call(post, f"commenting on #{pr.number}")
        return posted

    def _hold(self, bset: BumpSet, pr: PullRequest | None, foreign: Sequence[Foreign]) -> None:
        who = ", ".join(sorted({w for f in foreign for w in f.who}))
        if pr is None:
            self.out(f"{bset.branch}: has commits by {who} and no open pull request; left alone")
            return
        if _set_key(pr) == bset.key:
            self.out(f"{bset.branch}: has commits by {who}; nothing newer to propose (#{pr.number})")
            return
        rows = "\n".join(f"- {b.cluster}: {b.service} {b.old} → **{b.new}** ({link(b.release.tag, b.release.url)})"
                         for b in bset.bumps)
        shas = ", ".join(f.sha[:12] for f in foreign)
        text = (f"A newer bump is ready, but this branch has commits by {who} ({shas}), which the bot "
                f"never overwrites, so it did not push:\n\n{rows}\n\nMerge or close this pull request (or delete "
                f"the branch) and the next run proposes it; or apply it here with "
                + "; ".join(f"`python -m compiler bump {alias(s)} {v} {' '.join('--cluster ' + c for c in cs)}`"
                            for s, v, cs in bset.groups()) + ".")
        if self._comment_once(pr, HELD_MARKER.format(bset.key), text):
            self.out(f"{bset.branch}: has commits by {who}; commented on #{pr.number} instead of pushing")
        else:
            self.out(f"{bset.branch}: has commits by {who}; already said so on #{pr.number}")

    def _supersede(self, sets: list[BumpSet], open_prs: list[PullRequest], numbers: dict[str, int],
                   base: str) -> None:
        """Close each open bot pull request a grown set now carries, with a comment linking its replacement; one
        with a person's commits stays open (the bot never drops them) with a comment saying where the set went."""
        for pr in open_prs:
            if pr.head.ref in numbers:
                continue
            components = set(pr.head.ref.removeprefix(BRANCH_PREFIX).split("-"))
            newer = [s for s in sets if s.branch in numbers and components & set(s.components)]
            if not newer:
                continue
            successor, number, current = numbers[newer[0].branch], pr.number, pr
            carried = ", ".join(newer[0].components)
            remote_head = git.resolve(self.root, f"refs/remotes/{self.options.remote}/{pr.head.ref}")
            foreign = self._foreign(base, remote_head, pr) if remote_head else []
            marker = SUPERSEDED_MARKER.format(successor)
            if foreign:
                who = ", ".join(sorted({w for f in foreign for w in f.who}))
                shas = ", ".join(f.sha[:12] for f in foreign)
                text = (f"Superseded by #{successor}, which carries these components together ({carried}). This "
                        f"branch has commits by {who} ({shas}), which the bot never drops, so this pull request "
                        f"stays open: carry them over to `{newer[0].branch}` (#{successor}) or merge them here first, "
                        "then close this one.")
                if self._comment_once(current, marker, text):
                    self.out(f"{pr.head.ref}: #{number} has commits by {who}; left open, commented (see #{successor})")
                continue
            text = (f"Superseded by #{successor}, which carries these components together ({carried}). Closing "
                    "this one so no component and cluster has two open bump pull requests.")
            self._comment_once(current, marker, text)
            self._call(functools.partial(current.edit, state="closed"), f"closing #{number}")
            self.out(f"{pr.head.ref}: closed #{number}, superseded by #{successor}")

    def _stopped(self, repo: Repository, stops: list[Stop], open_prs: list[PullRequest]) -> set[int]:
        """Say on the merged pull request that brought a release to a Degraded (or failed) cluster that the rollout
        stopped there, and close each open bot pull request proposing that release to other clusters (a later
        stage), with a comment linking the merged one; once each (markers): one a person reopened after that comment
        stays open. The bot proposes the later stage again once the stage before is Healthy. The closed pull
        requests' numbers."""
        merged: list[PullRequest] = self._call(
            lambda: [p for p in repo.get_pulls(state="closed", base=self.options.base)
                     if p.head.ref.startswith(BRANCH_PREFIX) and p.merged_at is not None],
            f"listing merged pull requests of {self.options.repo}")
        brought: dict[tuple[str, str], list[str]] = {}  # (service, version) → links to the merged pull requests
        for stop in stops:
            item = f"{stop.cluster}/{stop.service}={stop.running}"
            carried = [p for p in merged if item in (_set_key(p) or "").split(",")]
            if not carried:
                self.out(f"note: {item}: no merged bot pull request brought it; the rollout stop is not commented")
                continue
            pr = max(carried, key=lambda p: p.number)
            brought.setdefault((stop.service, stop.version), []).append(f"#{pr.number} ({stop.cluster})")
            app = stop.app
            what = f"its sync ended **{app.phase}**" if app.failed else f"it is **{app.health}**"
            text = (f"**Staged rollout stopped.** Argo CD reports `{app.name}` (stage `{stop.stage}`, {stop.cluster}): "
                    f"{what} ({app.sync}, {app.health}) after its last sync applied {app.applied}, which has this "
                    f"change ({stop.landed.sha[:12]}). The bot proposes no later stage of {stop.service} "
                    f"{stop.version} while it stays so. Fix the cluster (or revert this pull request): once Argo CD "
                    "reports it Healthy and Synced the rollout goes on; a newer release starts a new rollout from the "
                    "first stage.")
            said = f"{item}: {app.name} is {app.health} ({app.phase}); rollout stopped"
            if self._comment_once(pr, STOPPED_MARKER.format(item), text):
                self.out(f"{said}, commented on #{pr.number}")
            else:
                self.out(f"{said} (already said on #{pr.number})")
        closed: set[int] = set()
        for pr in open_prs:
            items = [i.rpartition("=") for i in (_set_key(pr) or "").split(",") if "=" in i]
            hit = sorted({(cs.partition("/")[2], v) for cs, _, v in items} & set(brought))
            if not hit:
                continue
            number, current = pr.number, pr
            releases = ", ".join(f"{s} {v}" for s, v in hit)
            links = ", ".join(link for key in hit for link in brought[key])
            text = (f"**Staged rollout stopped**: the stage before this one failed in Argo CD after {links} brought "
                    f"{releases} there (see the comment on it). Closing this pull request so the release goes no "
                    "further; the bot proposes it again once that stage reports Healthy and Synced. Reopen it to "
                    "deploy anyway.")
            if not self._comment_once(current, STOPPED_LATER_MARKER.format(",".join(f"{s}={v}" for s, v in hit)),
                                      text):
                self.out(f"{pr.head.ref}: #{number} was reopened after the bot closed it for the stopped rollout of "
                         f"{releases}; left open")
                continue
            self._call(functools.partial(current.edit, state="closed"), f"closing #{number}")
            self.out(f"{pr.head.ref}: closed #{number}: the rollout of {releases} stopped ({links})")
            closed.add(number)
        return closed
