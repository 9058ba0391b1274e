"""Staged rollout: a new release goes to the clusters of the first stage (gitops.yaml's `bump.stages`, a spec's
`bump: {stage: ...}`) first, and to the next stage only once the previous one has had it on main for its
`bump.soak` and, when gitops.yaml gives `argocd.api_url`, Argo CD reports their Applications Healthy and Synced with
that commit (or later) deployed. A Degraded Application stops the rollout of that release. Clusters without a stage get
releases at once, as in an unstaged fleet.

For a service and release, a stage's members are its clusters whose policy allows the release; a stage is done
when every member runs it (or newer). The first stage not done is the one proposed; the stages before it gate it.
A stage that has clusters for the service but no member (each cluster's policy excludes the release: `pinned`, an
`allow` range without it, a pre-release not opted in) is never done: the release is not proposed to later stages
(a note says which clusters and policies hold it), since no cluster of that stage would have tried it first. A stage
with no cluster running the service at all is not part of that service's rollout.

Argo CD's verdict on a gate cluster uses what its Application deployed, not what it compared: the stage passed when
status.sync.status is Synced, the last sync operation (status.operationState) Succeeded and applied
(syncResult.revision) the commit that brought the release or a descendant, and status.health.status is Healthy. It
failed (the rollout stops: a comment on the merged pull request that brought it, and each open pull request
proposing that release to a later stage is commented and closed) when that operation applied such a revision and
ended Failed or Error, or ended and the Application is Degraded. Anything else waits with a note: a sync still
Running, OutOfSync with an older revision applied (status.sync.revision is main's head even then), or Degraded
before the release was applied (not the release's doing).
"On main since" is the commit on the base branch's first-parent history that set the version in the cluster's spec
(a merge commit: when it was merged), and its committer time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compiler import catalog, git
from compiler.bot.argo import AppState, ArgoCd
from compiler.bot.plan import Bump
from compiler.bot.upstream import UPSTREAMS, Release
from compiler.build.argocd import app_name
from compiler.errors import Problem, UserError
from compiler.paths import SETTINGS_FILE, spec_rel
from compiler.spec import semver
from compiler.spec.load import Loaded
from compiler.spec.model import Bumped, BumpPolicy
from compiler.spec.settings import Settings
from compiler.spec.yamlio import YAMLError, load_plain


@dataclass(frozen=True)
class Landed:
    """The commit on main that set a cluster's version of a service, and when (committer time, epoch seconds)."""

    sha: str
    time: int


@dataclass(frozen=True)
class Stop:
    """A failed stage: the cluster's Application's last sync applied the commit that brought the release (or a
    later one) and ended Failed or Error, or ended with the Application Degraded."""

    cluster: str
    service: str
    version: str  # the release rolled out
    running: str  # the version the cluster's spec has (that release, or newer)
    stage: str
    app: AppState
    landed: Landed


def allows(policy: BumpPolicy, release: Release) -> bool:
    if policy.allow == "pinned" or (release.prerelease and not policy.prereleases):
        return False
    return policy.allow == "latest" or semver.parse_range(policy.allow).allows(release.version)


def _duration(seconds: float) -> str:
    minutes = max(int(seconds // 60), 0)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    return " ".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (mins, "m")) if n) or "0m"


@dataclass
class Stages:
    """Holds back the bumps of later stages; records the stage plan of each (service, version) proposed and the
    rollouts a Degraded Application stopped."""

    root: Path
    base: str  # the base branch's commit the run reads
    loaded: dict[str, Loaded]
    settings: Settings | None
    argocd: ArgoCd | None
    now: float
    plans: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    stops: list[Stop] = field(default_factory=list)
    _landed: dict[tuple[str, str], Landed] = field(default_factory=dict)
    _apps: dict[str, AppState | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.order = list(self.settings.bump.stages) if self.settings else []
        problems: list[Problem] = []
        for cluster, item in sorted(self.loaded.items()):
            for service in UPSTREAMS:
                policy = self.policy(cluster, service)
                if policy is not None and policy.stage is not None and policy.stage not in self.order:
                    listed = ", ".join(self.order) if self.order else "none listed"
                    problems.append(item.doc.problem(
                        ("services", service, "bump", "stage"),
                        f"stage {policy.stage!r} is not one of {SETTINGS_FILE}'s bump.stages ({listed}); list it "
                        "there in rollout order (bump: {stages: [canary, main]}), or remove it"))
        if problems:
            raise UserError(problems)

    def policy(self, cluster: str, service: str) -> BumpPolicy | None:
        item = self.loaded.get(cluster)
        svc = item.spec.services.settings(service, Bumped) if item else None
        return svc.bump if svc is not None else None

    def _stage(self, cluster: str, service: str) -> str | None:
        policy = self.policy(cluster, service)
        return policy.stage if policy else None

    # ------------------------------------------------------------------ the gate

    def gate(self, bumps: list[Bump], notes: list[str]) -> list[Bump]:
        """The bumps to propose now: unstaged ones, and per (service, release) those of the first stage not done,
        if the stages before it passed. Notes say what waits and why."""
        staged: dict[tuple[str, str], list[Bump]] = {}
        for b in bumps:
            if self._stage(b.cluster, b.service) is not None:
                staged.setdefault((b.service, b.new), []).append(b)
        keep = {id(b) for b in bumps if self._stage(b.cluster, b.service) is None}
        for (service, version), pending in sorted(staged.items()):
            keep |= {id(b) for b in self._group(service, version, pending, notes)}
        return [b for b in bumps if id(b) in keep]

    def _members(self, service: str, release: Release) -> list[tuple[str, list[str]]]:
        """Per stage that has clusters for the service (in rollout order), those whose policy allows the release:
        an empty list is a stage none of whose clusters can take it."""
        out = []
        for stage in self.order:
            staged = [c for c in sorted(self.loaded) if self._stage(c, service) == stage]
            if staged:
                out.append((stage, [c for c in staged if (p := self.policy(c, service)) is not None
                                    and allows(p, release)]))
        return out

    def _excluded(self, service: str, stage: str) -> str:
        return ", ".join(f"{c} (allow: {(self.policy(c, service) or BumpPolicy()).allow})" for c in sorted(self.loaded)
                         if self._stage(c, service) == stage)

    def _runs(self, cluster: str, service: str, release: Release) -> bool:
        svc = self.loaded[cluster].spec.services.settings(service, Bumped)
        current = semver.parse(svc.version) if svc else None
        return current is not None and not semver.lt(current, release.version)

    def _group(self, service: str, version: str, pending: list[Bump], notes: list[str]) -> list[Bump]:
        release = pending[0].release
        members = self._members(service, release)
        first = next(i for i, (_, cs) in enumerate(members)
                     if not cs or any(not self._runs(c, service, release) for c in cs))
        stage, clusters = members[first]
        if not clusters:  # a stage none of whose clusters can take the release has not passed: later stages wait
            notes.append(f"{service} {version} for {', '.join(sorted(b.cluster for b in pending))} is held: no "
                         f"cluster of stage {stage} can take it ({self._excluded(service, stage)}: their bump policy "
                         f"excludes it), and a stage none of whose clusters runs a release does not pass; allow it "
                         f"there, or give a cluster that can take it stage {stage}")
            return []
        now = [b for b in pending if self._stage(b.cluster, b.service) == stage]
        later = sorted(b.cluster for b in pending if b not in now)
        waiting: list[str] = []
        if first > 0 and now:
            for gate_stage, gate_clusters in members[:first]:
                for cluster in gate_clusters:
                    if why := self._check(cluster, service, gate_stage, release):
                        waiting.append(why)
            if waiting:
                stopped = any(s.service == service and s.version == version for s in self.stops)
                verb = "stopped" if stopped else "waits"
                notes.append(f"{service} {version} for stage {stage} ({', '.join(b.cluster for b in now)}) {verb}: "
                             + "; ".join(waiting))
                now = []
        if later:
            notes.append(f"{service} {version} for {', '.join(later)} waits for stage {stage} "
                         f"({', '.join(clusters)}) to run it first")
        blocked = [c for c in clusters if not self._runs(c, service, release) and c not in {b.cluster for b in now}]
        if now and blocked:
            notes.append(f"{service} {version}: stage {stage} also needs {', '.join(blocked)}, which this run "
                         "does not bump (see the notes above); the next stage waits for it too")
        if now:
            self.plans[(service, version)] = self._plan(members, first, service, release)
        return now

    def _plan(self, members: list[tuple[str, list[str]]], first: int, service: str, release: Release) -> list[str]:
        lines = [f"{service} {release.version}:", ""]
        held = False  # a stage before this one cannot take the release
        for i, (stage, clusters) in enumerate(members):
            where = ", ".join(clusters)
            if i < first:
                shas = sorted({self.landed(c, service).sha[:12] for c in clusters})
                lines.append(f"{i + 1}. `{stage}`: {where} - on main since {', '.join(shas)}")
            elif i == first:
                lines.append(f"{i + 1}. `{stage}`: {where} - **this pull request**")
            elif not clusters:
                lines.append(f"{i + 1}. `{stage}`: none of its clusters can take this release "
                             f"({self._excluded(service, stage)}); the stages after it are held")
                held = True
            elif held:
                lines.append(f"{i + 1}. `{stage}`: {where} - held (a stage before it cannot take this release)")
            else:
                prev_stage, prev = members[i - 1]
                soak = max((self.policy(c, service) or BumpPolicy() for c in prev), key=lambda p: p.soak_seconds).soak
                health = (" and Argo CD reports " + ", ".join(app_name(self.settings, c) for c in prev)
                          + " Healthy and Synced with that commit or later deployed"
                          ) if self.argocd and self.settings else ""
                lines.append(f"{i + 1}. `{stage}`: {where} - proposed once `{prev_stage}` has been on main for "
                             f"{soak}{health}")
        return lines

    def _check(self, cluster: str, service: str, stage: str, release: Release) -> str | None:
        """Why the next stage cannot go yet because of this cluster (None: it passed)."""
        landed = self.landed(cluster, service)
        policy = self.policy(cluster, service) or BumpPolicy()
        if self.argocd is not None and self.settings is not None:
            name = app_name(self.settings, cluster)
            if name not in self._apps:
                self._apps[name] = self.argocd.application(name)
            app = self._apps[name]
            if app is None:
                return f"Argo CD has no Application {name} (of {cluster})"
            # What the cluster runs is what the last sync applied: status.sync.revision is only what Argo CD
            # compared against (main's head, even while OutOfSync).
            applied = app.applied is not None and self._at_or_after(landed.sha, app.applied)
            last = f"its last sync ({app.phase or 'none'}) applied {(app.applied or 'no revision')[:12]}"
            if applied and app.finished and (app.health == "Degraded" or app.failed):
                svc = self.loaded[cluster].spec.services.settings(service, Bumped)
                running = svc.version if svc else str(release.version)
                self.stops.append(Stop(cluster, service, str(release.version), running, stage, app, landed))
                return f"{name} is {app.health} and {last}, which has {landed.sha[:12]}"
            if not (applied and app.sync == "Synced" and app.phase == "Succeeded" and app.health == "Healthy"):
                why = (f"{name} is {app.sync} and {app.health}, {last}; waiting for Synced and Healthy with "
                       f"{landed.sha[:12]} or later applied")
                if app.health == "Degraded" and not applied:
                    why += " (Degraded before it applied this release: not the release's doing)"
                return why
        elapsed = self.now - landed.time
        if elapsed < policy.soak_seconds:
            return (f"{cluster} has had it on main for {_duration(elapsed)} of {policy.soak} "
                    f"(since {landed.sha[:12]})")
        return None

    def _at_or_after(self, sha: str, revision: str) -> bool:
        if revision == sha:
            return True
        return git.run(self.root, "merge-base", "--is-ancestor", sha, revision, check=False).returncode == 0

    # ------------------------------------------------------------------ history

    def landed(self, cluster: str, service: str) -> Landed:
        """The newest commit of the base branch's first-parent history that set the cluster's version of the
        service to the one it runs at the base."""
        key = (cluster, service)
        if key in self._landed:
            return self._landed[key]
        rel = spec_rel(cluster)
        current = self._version_at(self.base, rel, service)
        out = git.run(self.root, "log", "--first-parent", "--format=%H %ct %P", self.base, "--", rel).stdout
        found: Landed | None = None
        for line in out.splitlines():
            sha, stamp, *parents = line.split()
            found = Landed(sha, int(stamp))
            if not parents or self._version_at(parents[0], rel, service) != current:
                break
        if found is None:
            raise UserError(f"{rel}: not in the history of {self.base[:12]} (is the clone shallow? fetch with "
                            "fetch-depth: 0)")
        self._landed[key] = found
        return found

    def _version_at(self, commit: str, rel: str, service: str) -> str | None:
        shown = git.run(self.root, "show", f"{commit}:{rel}", check=False)
        if shown.returncode != 0:
            return None
        try:
            data = load_plain(shown.stdout)
        except YAMLError:
            return None
        services = data.get("services") if isinstance(data, dict) else None
        if not isinstance(services, dict):
            return None
        for name in (service, *catalog.BY_NAME[service].aliases):
            svc = services.get(name)
            if isinstance(svc, dict) and svc.get("version") is not None:
                return str(svc["version"])
        return None
