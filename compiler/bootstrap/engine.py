"""Plan and apply: compare desired resources with what exists, then create what is missing, in order.

Rules (never delete data; a rerun is always safe: docs/pitfalls.md#p50):
- A plan only reads. Each resource gets one row: exists, missing, differs (field by field), offline
  (not looked up), needs-operator (a value only a person has) or error (the look-up failed).
- Apply creates only what is missing, each resource after its dependencies, and re-reads it afterwards.
  "Already exists" is success. A resource that differs is reported and left alone: nothing is ever
  updated, replaced, shrunk or deleted.
- On a hard failure apply stops, reports what it created and what remains; running it again resumes,
  because everything already there is skipped. A resource needing the operator does not stop the run,
  but the resources depending on it wait.
- The Google APIs (kind api) come first: while one is disabled, a plan does not read what is created through it
  (Google would answer 403 "API not enabled") and shows it missing; apply enables the APIs before the rest.
- A resource another cluster's bootstrap creates (`Resource.owner`, e.g. the DNS zone a local cluster adds
  its records to) is only read. While it is missing it needs the operator ("create after <owner> is
  bootstrapped"): apply never creates it and its dependents (the records) wait; the next run after
  `bootstrap <owner> --apply` finds it and carries on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from compiler.bootstrap import clients, desired, providers
from compiler.bootstrap.model import Context, NeedsOperator, Provider, ProviderError, Ref, Resource, Status
from compiler.progress import each as progress_each
from compiler.spec.fleet import select
from compiler.spec.load import load_environments
from compiler.spec.model import ClusterSpec

ProviderFor = Callable[[str], Provider]


@dataclass(frozen=True)
class Difference:
    field: str
    want: Any
    have: Any


@dataclass
class Row:
    resource: Resource
    status: Status
    action: str
    differences: list[Difference] = field(default_factory=list)
    observed: dict[str, Any] | None = None
    message: str = ""


@dataclass
class Outcome:
    """What a plan or an apply found and did."""

    rows: list[Row]
    created: list[str] = field(default_factory=list)
    failed: str | None = None  # key of the resource whose creation failed (apply stopped there)
    remaining: list[str] = field(default_factory=list)  # keys not attempted after a failure

    @property
    def ok(self) -> bool:
        return self.failed is None and all(r.status == "exists" for r in self.rows)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row.status] = out.get(row.status, 0) + 1
        return dict(sorted(out.items()))


def display(value: Any) -> Any:
    """A value as shown in a plan: references print as <output of kind/name>."""
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, list):
        return [display(v) for v in value]
    if isinstance(value, dict):
        return {k: display(v) for k, v in value.items()}
    return value


class Resolver:
    """Resolves Refs from the outputs observed so far (an address before the DNS records pointing at it)."""

    def __init__(self) -> None:
        self.outputs: dict[str, Mapping[str, Any]] = {}

    def known(self, value: Any) -> bool:
        if isinstance(value, Ref):
            return self.outputs.get(value.key, {}).get(value.output) is not None
        if isinstance(value, list):
            return all(self.known(v) for v in value)
        if isinstance(value, dict):
            return all(self.known(v) for v in value.values())
        return True

    def __call__(self, value: Any) -> Any:
        if isinstance(value, Ref):
            found = self.outputs.get(value.key, {}).get(value.output)
            if found is None:
                raise ProviderError(f"{value.key} has no {value.output} yet (create it first)")
            return found
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        return value


def compare(resource: Resource, observed: Mapping[str, Any], resolve: Resolver) -> list[Difference]:
    """Fields that differ from the spec, then outputs the spec holds with another value."""
    diffs = []
    for name, want in resource.fields.items():
        if not resolve.known(want):
            continue
        wanted = resolve(want)
        have = observed.get(name)
        if _normal(wanted) != _normal(have):
            diffs.append(Difference(name, wanted, have))
    for name, want in resource.outputs.items():
        have = observed.get(name)
        if want is not None and have is not None and str(want) != str(have):
            diffs.append(Difference(name, want, have))
    return diffs


def _normal(value: Any) -> Any:
    if isinstance(value, list):
        return sorted(map(str, value))
    return value


def _row_for(resource: Resource, observed: dict[str, Any] | None, resolve: Resolver) -> Row:
    if observed is None and resource.owner:
        return Row(resource, "needs-operator", f"create after {resource.owner} is bootstrapped",
                   message=f"{resource.key} is created by `python -m compiler bootstrap {resource.owner} --apply` "
                           f"(in project {resource.project}); run that first, then this again")
    if observed is None and resource.kind == "project":
        return Row(resource, "needs-operator", "create the project with billing (bootstrap never creates projects)",
                   message=f"project {resource.name} does not exist or this account cannot see it: create it "
                           "(`gcloud projects create`, then link billing) or get access, then run bootstrap again")
    if observed is None:
        if resource.kind == "secret" and resource.params.get("value") == "operator":
            return Row(resource, "needs-operator", "create the secret; the operator adds its value",
                       message=str(resource.params.get("hint", "")))
        return Row(resource, "missing", "create")
    resolve.outputs[resource.key] = observed
    if resource.kind == "secret" and not observed.get("versions"):
        if resource.params.get("value") == "operator":
            return Row(resource, "needs-operator", "the operator adds its value", observed=observed,
                       message=str(resource.params.get("hint", "")))
        return Row(resource, "missing", "add a generated value", observed=observed)
    diffs = compare(resource, observed, resolve)
    if diffs:
        fix = [f"set {resource.spec_paths[d.field]}: {d.have} in the spec"
               for d in diffs if d.field in resource.spec_paths]
        action = "; ".join(fix) if len(fix) == len(diffs) else "report only (never changed by bootstrap)"
        return Row(resource, "differs", action, diffs, observed)
    notes = []
    for name, spec_value in resource.outputs.items():
        have = observed.get(name)
        if spec_value is None and have:
            shown = ", ".join(map(str, have)) if isinstance(have, list) else have
            notes.append(f"set {resource.spec_paths[name]}: {shown} in the spec" if name in resource.spec_paths
                         else f"{name}: {shown}")
    return Row(resource, "exists", "none", observed=observed, message="; ".join(notes))


def plan(resources: Iterable[Resource], provider_for: ProviderFor, offline: bool = False) -> Outcome:
    """One row per resource; reads only."""
    resolve = Resolver()
    ctx = Context(resolve=resolve, secret_value=_no_secrets)
    rows: list[Row] = []
    disabled: set[str] = set()  # keys of APIs not enabled yet: what is created through them is not readable
    todo = list(resources)
    for resource in todo if offline else progress_each("bootstrap plan", todo, lambda r: r.key):
        if offline:
            rows.append(Row(resource, "offline", offline_action(resource)))
            continue
        waits_for = [d for d in resource.depends if d in disabled]
        if waits_for:
            rows.append(Row(resource, "missing", f"create after enabling {', '.join(waits_for)}",
                            message="not looked up: its API is disabled"))
            continue
        if not resolve.known(dict(resource.fields)):  # it names something that does not exist yet
            waits = sorted({v.key for v in _refs(resource.fields.values())})
            rows.append(Row(resource, "missing", f"create after {', '.join(waits)}"))
            continue
        try:
            observed = provider_for(resource.kind).observe(resource, ctx)
        except ProviderError as exc:
            rows.append(Row(resource, "error", "fix access, then plan again", message=str(exc)))
            continue
        rows.append(_row_for(resource, observed, resolve))
        if resource.kind == "api" and rows[-1].status == "missing":
            disabled.add(resource.key)
    return Outcome(rows)


def offline_action(resource: Resource) -> str:
    """What bootstrap would do about `resource`, said without looking it up."""
    if resource.owner:
        return f"created by {resource.owner}"
    if resource.kind == "project":
        return "must exist (bootstrap never creates a project)"
    if resource.kind == "api":
        return "enable if disabled"
    return "create if missing"


def _refs(values: Iterable[Any]) -> Iterable[Ref]:
    for value in values:
        if isinstance(value, Ref):
            yield value
        elif isinstance(value, list):
            yield from _refs(value)
        elif isinstance(value, dict):
            yield from _refs(value.values())


def _no_secrets(project: str, secret: str) -> str:
    raise ProviderError(f"secret {secret} in {project} is not readable while planning")


def apply(resources: list[Resource], provider_for: ProviderFor, secret_value: Callable[[str, str], str],
          progress: Callable[[str], None]) -> Outcome:
    """Create what is missing in order; stop at the first hard failure."""
    resolve = Resolver()
    ctx = Context(resolve=resolve, secret_value=secret_value, progress=progress)
    outcome = Outcome([])
    waiting: set[str] = set()  # keys blocked by a resource that needs the operator
    total = len(resources)
    for index, resource in progress_each("bootstrap apply", list(enumerate(resources, 1)), lambda ir: ir[1].key):
        blocked = [d for d in resource.depends if d in waiting]
        if blocked:
            waiting.add(resource.key)
            outcome.rows.append(Row(resource, "needs-operator", f"waits for {', '.join(blocked)}"))
            continue
        provider = provider_for(resource.kind)
        try:
            row = _row_for(resource, provider.observe(resource, ctx), resolve)
            if row.status == "needs-operator" and (row.observed is not None or resource.owner):
                # the secret is there, its value is not; or another cluster's bootstrap creates it
                waiting.add(resource.key)
            elif row.status in ("missing", "needs-operator"):
                progress(f"[{index}/{total}] creating {resource.key}")
                try:
                    provider.create(resource, ctx)
                except NeedsOperator as exc:
                    waiting.add(resource.key)
                    outcome.rows.append(Row(resource, "needs-operator", "the operator adds its value",
                                            message=str(exc)))
                    continue
                row = _row_for(resource, provider.observe(resource, ctx), resolve)
                if row.status != "missing":
                    outcome.created.append(resource.key)
                if row.status == "missing":
                    raise ProviderError(f"{resource.key} still missing after creating it")
        except ProviderError as exc:
            outcome.rows.append(Row(resource, "error", "stopped here", message=str(exc)))
            outcome.failed = resource.key
            outcome.remaining = [r.key for r in resources[index:]]
            return outcome
        outcome.rows.append(row)
    return outcome


# --------------------------------------------------------------------------- the command

Mode = Literal["offline", "plan", "apply"]


@dataclass(frozen=True)
class Bootstrap:
    """What `bootstrap` did for one cluster: its spec (the report names it), the mode and the rows."""

    spec: ClusterSpec
    mode: Mode
    outcome: Outcome

    @property
    def ok(self) -> bool:
        """Everything exists as specified (always, offline: nothing was looked up)."""
        return self.mode == "offline" or self.outcome.ok


def bootstrap(root: Path, cluster: str, mode: Mode, progress: Callable[[str], None]) -> Bootstrap:
    """`python -m compiler bootstrap`: the resources of `cluster` listed (offline), read (plan) or created where
    missing (apply), through the Google providers; `progress` gets apply's lines as it goes."""
    specs = load_environments(root, pending_outputs=True)  # it prints the static IP and Redis hosts
    select([cluster], specs)
    spec = specs[cluster]
    resources = desired.desired(spec)
    if mode != "offline":
        clients.credentials()  # one clear message before any call when there are none
    if mode == "apply":
        secrets: Provider = providers.provider_for("secret")
        access = getattr(secrets, "access")  # noqa: B009 - SecretsProvider.access(project, secret id)
        return Bootstrap(spec, mode, apply(resources, providers.provider_for, access, progress))
    return Bootstrap(spec, mode, plan(resources, providers.provider_for, offline=mode == "offline"))
