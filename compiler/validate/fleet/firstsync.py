"""Fleet rule `first-sync`: Argo CD's first sync of an empty fleet completes, with no health deadlock.

The first sync itself is replayed by argosync.py (Argo CD's sync waves and health checks, in one world).

The world starts with the secrets `bootstrap --apply` generates (plan rows `value: generate`). An operator adds
the others (rows `value: operator`) as soon as they can be made: the OAuth client and the Slack token at once,
a CAVE token only once the global `auth` runs (its admin UI makes it). `bring_up` repeats the simulation, adding
every secret that can be made, until nothing changes. Findings:
- deadlock: a secret that can never be made, because what makes it waits (through the waves) on that secret;
- a secret that cannot be made because what makes it never runs for another reason (reported with that reason);
- an operator step blocks other objects: with only the generated secrets, an object waiting for an operator
  secret stops an Application's sync (later waves never applied) or keeps an Application that the app-of-apps
  waits for from being Healthy;
- never healthy: once every secret that can be made exists, an object or Application still does not come up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from compiler.build.compile import IGNORE_HEALTH
from compiler.validate.fleet import Fleet, fleet_rule
from compiler.validate.fleet.argosync import (
    AppResult,
    ObjectResult,
    SyncContext,
    SyncResult,
    simulate_world,
)
from compiler.validate.model import Finding, object_finding
from compiler.validate.rules import external_secret_target

RULE = "first-sync"


# --------------------------------------------------------------------------- the operator's steps


@dataclass
class BringUp:
    """The first sync, then the operator adding each secret as soon as it can be made, until nothing changes."""

    rounds: list[SyncResult]  # rounds[0]: only what bootstrap generates
    added: list[list[str]]  # the secrets added before rounds[i + 1]
    never: dict[str, str]  # operator secret that can never be made -> why

    @property
    def first(self) -> SyncResult:
        return self.rounds[0]

    @property
    def last(self) -> SyncResult:
        return self.rounds[-1]


def _maker(result: SyncResult, maker: tuple[str, str, str]) -> tuple[ObjectResult | None, str]:
    """(the task of the object an operator makes a secret with, and if it does not run why) in one sync."""
    cluster, kind, name = maker
    app = result.app_of(cluster)
    if app is None:
        return None, f"{kind}/{name} of {cluster} runs, but the fleet has no Application for {cluster}"
    obj = app.find(kind, name)
    if obj is None:
        return None, f"{kind}/{name} of {cluster} runs, but {app.name} deploys none"
    if obj.ok:
        return obj, ""
    state = f"is {obj.health}: {obj.reason}" if obj.applied else f"is {obj.reason}"
    return obj, f"{kind}/{name} of {cluster} runs, and {obj.label} of {app.name} {state}"


def _runs(result: SyncResult, maker: tuple[str, str, str]) -> bool:
    obj, _ = _maker(result, maker)
    return obj is not None and obj.ok


def bring_up(fleet: Fleet) -> BringUp:
    return _bring_up(SyncContext(fleet))


def _bring_up(ctx: SyncContext) -> BringUp:
    makers = ctx.makers
    pending = sorted(ctx.operator)
    world = ctx.generated
    rounds = [simulate_world(ctx, world)]
    added: list[list[str]] = []
    while True:
        ready = [s for s in pending if s not in world and (s not in makers or _runs(rounds[-1], makers[s]))]
        if not ready:
            break
        world = world | frozenset(ready)
        added.append(ready)
        rounds.append(simulate_world(ctx, world))
    never = {s: _maker(rounds[-1], makers[s])[1] for s in pending if s not in world and s in makers}
    return BringUp(rounds, added, never)


# --------------------------------------------------------------------------- the rule


def _finding(r: ObjectResult, message: str) -> Finding:
    return object_finding(r.cluster, r.obj, "", RULE, message)


def _everywhere(ctx: SyncContext, result: SyncResult) -> SyncResult:
    """`result` with every Application synced (reach_all): itself when the app-of-apps reached them all."""
    return result if result.all_reached else simulate_world(ctx, result.world, reach_all=True)


@fleet_rule(RULE)
def first_sync(fleet: Fleet) -> Iterator[Finding]:
    if not fleet.argocd:
        return
    ctx = SyncContext(fleet)
    up = _bring_up(ctx)
    reported: set[tuple[str, str, str]] = set()
    if up.never:
        yield from _deadlocks(ctx, up, _everywhere(ctx, up.last), reported)
    every = _everywhere(ctx, up.first)
    yield from _wave_deadlocks(ctx, every, reported)
    yield from _operator_blocks(ctx, every, reported)
    yield from _never_healthy(ctx, up, reported)


def _deadlocks(ctx: SyncContext, up: BringUp, final: SyncResult, reported: set[tuple[str, str, str]]) -> \
        Iterator[Finding]:
    """An operator secret that can never be made: a deadlock when its maker waits, through the waves, for that
    very secret (it or the tasks its Application's sync stops on wait for it); else what stops the maker."""
    for secret, why in sorted(up.never.items()):
        maker, _ = _maker(final, ctx.makers[secret])
        app = final.app_of(ctx.makers[secret][0])
        loop = maker is not None and app is not None and (
            secret in maker.waits or any(secret in b.waits for b in app.blockers))
        waiting = [r for r in final.objects() if secret in r.waits and r.applied]
        shown = waiting[0] if waiting else maker
        if shown is None:
            continue
        reported.add((shown.cluster, shown.kind, shown.name))
        others = f" (and {len(waiting) - 1} more objects wait for it)" if len(waiting) > 1 else ""
        state = f"{shown.label} of {shown.app} is {shown.health}: {shown.reason}{others}"
        if loop:
            yield _finding(shown, (
                f"deadlock on the first sync: {state}; but {secret} can only be made once {why}: it never comes up "
                "(put what waits for an operator secret in the Application's last wave, out of its health: README "
                "\"First sync and operator secrets\")"))
        else:
            yield _finding(shown, f"{state}; {secret} cannot be made because it can only be made once {why}")


def _wave_deadlocks(ctx: SyncContext, every: SyncResult, reported: set[tuple[str, str, str]]) -> Iterator[Finding]:
    """A wave that waits for what only a later wave of the same Application makes: the later wave never starts."""
    for app in every.apps.values():
        for b in app.blockers:
            later = [(need, m) for need in ctx.needs_of(b) for m, _ in ctx.makers_of(app, b, need)
                     if (m.phase, m.wave) > (b.phase, b.wave) and not m.applied]
            if not later or (b.cluster, b.kind, b.name) in reported:
                continue
            reported.add((b.cluster, b.kind, b.name))
            chain = "; ".join(f"{need.kind} {need.name} ({need.path}) is made only by {m.label}" for need, m in later)
            yield _finding(b, (
                f"deadlock on the first sync: the sync of {app.name} waits at {app.stuck} for {b.label}, and {chain}, "
                f"a later wave that starts only once {b.label} is Healthy (move the maker to an earlier wave, or "
                f"make {b.kind}/{b.name} not need it)"))


def _consumers(ctx: SyncContext, app: AppResult, r: ObjectResult) -> list[ObjectResult]:
    """The workloads of `app` that need the Secret `r` (an ExternalSecret) makes."""
    if r.kind != "ExternalSecret":
        return []
    namespace, target, _ = external_secret_target(r.obj)
    return [o for o in app.objects if o.namespace == namespace
            and any(n.kind == "Secret" and n.name == target for n in ctx.needs_of(o))]


def _operator_blocks(ctx: SyncContext, every: SyncResult, reported: set[tuple[str, str, str]]) -> Iterator[Finding]:
    """With only the generated secrets: objects waiting for an operator secret that hold back other objects."""
    operator = ctx.operator
    root_last = max((a.root_wave for a in every.apps.values()), default=0)
    for app in every.apps.values():
        if app.component != "cave":
            continue
        if app.operation != "Succeeded":
            later = [o for o in app.objects if not o.applied]
            names = ", ".join(f"{o.kind}/{o.name}" for o in later[:4]) + (" ..." if len(later) > 4 else "")
            for b in app.blockers:
                if not b.waits & operator or (b.cluster, b.kind, b.name) in reported:
                    continue
                reported.add((b.cluster, b.kind, b.name))
                waits = ", ".join(sorted(b.waits & operator))
                users = _consumers(ctx, app, b)
                used = f"; {len(users)} workloads need the Secret it makes" if users else ""
                yield _finding(b, (
                    f"an operator step blocks other objects: the sync of {app.name} "
                    f"{'fails' if app.operation == 'Failed' else 'waits forever'} at {app.stuck} on {b.label}, "
                    f"{b.health}: {b.reason}{used}; {len(later)} objects of later waves are never applied ({names}) "
                    f"until an operator stores {waits} (put it in the last wave with what needs it, or make the "
                    f"others not need {waits})"))
        counted = [c for c in app.causes if c.waits & operator]
        if app.root_wave < root_last and not app.healthy and counted:
            held = sorted(a.name for a in every.apps.values() if a.root_wave > app.root_wave)
            for c in counted:
                if (c.cluster, c.kind, c.name) in reported:
                    continue
                reported.add((c.cluster, c.kind, c.name))
                yield _finding(c, (
                    f"an operator step blocks other objects: {c.label} counts in the health of {app.name} and is "
                    f"{c.health} until an operator stores {', '.join(sorted(c.waits & operator))} ({c.reason}); the "
                    f"app-of-apps waits for {app.name} to be Healthy before {', '.join(held)} (annotate it "
                    f"{IGNORE_HEALTH}: \"true\")"))


def _never_healthy(ctx: SyncContext, up: BringUp, reported: set[tuple[str, str, str]]) -> Iterator[Finding]:
    """What still does not come up once the operator stored every secret that can be made (deadlocks aside)."""
    last = up.last
    deadlocked = set(up.never)
    for app in last.apps.values():
        if app.component != "cave":
            continue
        if not app.reached:
            yield object_finding(app.cluster, app.obj, "", RULE, (
                f"never applied on the first sync: the app-of-apps {last.root.name} {last.root.operation.lower()} "
                f"at {last.root.stuck}, before wave {app.root_wave} of {app.name}"))
            continue
        blockers = [b for b in app.blockers if not (b.waits and b.waits <= deadlocked)]
        if app.operation != "Succeeded" and blockers and (blockers[0].cluster, blockers[0].kind,
                                                          blockers[0].name) not in reported:
            b = blockers[0]
            reported.add((b.cluster, b.kind, b.name))
            yield _finding(b, f"the first sync of {app.name} never completes, even once the operator stored every "
                              f"secret: it {'fails' if app.operation == 'Failed' else 'waits forever'} at "
                              f"{app.stuck} on {b.label}, {b.health}: {b.reason}")
        for r in app.objects:
            if r.ok or not r.applied or (r.cluster, r.kind, r.name) in reported or \
                    (r.waits and r.waits <= deadlocked):
                continue
            reported.add((r.cluster, r.kind, r.name))
            missing = sorted(r.waits - set(ctx.secrets))
            hint = f" (no bootstrap plan creates {', '.join(missing)})" if missing else ""
            yield _finding(r, f"never healthy on the first sync, even once the operator stored every secret: "
                              f"{r.label} of {r.app} is {r.health}: {r.reason}{hint}")
