"""What to bump: per cluster the newest allowed release whose image exists, grouped into sets."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compiler import catalog, progress
from compiler.bot.images import RegistryClient
from compiler.bot.upstream import (
    BRANCH_PREFIX,
    REQUIREMENT_FILES,
    SCHEMA,
    SET_MARKER,
    UPSTREAMS,
    Malformed,
    Pin,
    Release,
    Upstream,
)
from compiler.build.bump import image_refs
from compiler.escape import md_cell, md_code
from compiler.github import COMMENT_LIMIT
from compiler.spec import semver
from compiler.spec.fleet import global_of, locals_of
from compiler.spec.load import Loaded
from compiler.spec.model import Bumped, GlobalCluster, LocalCluster


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
    stage_plan: list[str] = field(default_factory=list)  # staged rollout: the stages of this set's releases

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


# --------------------------------------------------------------------------- the plan


def _choose(cluster: str, spec: GlobalCluster | LocalCluster, service: str, upstream: Upstream,
            registry: RegistryClient, notes: list[str], compatible: Callable[[Release], str | None] | None = None,
            ) -> tuple[Release, tuple[str, ...]] | None:
    svc = spec.services.settings(service, Bumped)
    assert svc is not None  # the caller only asks for services the spec runs
    policy = svc.bump
    if policy.allow == "pinned":
        return None
    current = semver.parse(svc.version)
    if current is None:
        notes.append(f"{cluster}: {service} {svc.version} is not a semantic version; not bumped "
                     f"(set a release version, or `bump: pinned`)")
        return None
    allowed = None if policy.allow == "latest" else semver.parse_range(policy.allow)
    try:
        releases = upstream.releases(service)
    except Malformed as err:  # that component only: the others still get their pull requests
        notes.append(f"{cluster}: {service} not bumped: {err}")
        return None
    for release in releases:
        if not semver.lt(current, release.version):
            break
        if release.prerelease and not policy.prereleases:
            continue
        if allowed is not None and not allowed.allows(release.version):
            continue
        refs = image_refs(spec, catalog.BY_NAME[service], str(release.version))
        missing = [f"{r}/{i}:{t}" for r, i, t in refs if not registry.exists(r, i, t)]
        if missing:
            notes.append(f"{cluster}: {service} {release.version} skipped: {', '.join(missing)} not in the registry")
            continue
        try:
            reason = compatible(release) if compatible else None
        except Malformed as err:  # an unreadable requirements file: that component only, as for the release list
            notes.append(f"{cluster}: {service} not bumped: {err}")
            return None
        if reason:
            notes.append(f"{cluster}: {service} {release.version} skipped: {reason}")
            continue
        return release, tuple(f"{r}/{i}:{t}" for r, i, t in refs)
    return None


def plan(loaded: dict[str, Loaded], upstream: Upstream, registry: RegistryClient,
         gate: Callable[[list[Bump], list[str]], list[Bump]] | None = None) -> tuple[list[BumpSet], list[str]]:
    """The bump sets to propose, and notes on what was left out and why; `gate` (a staged rollout) keeps the
    bumps to propose now and notes why the others wait."""
    notes: list[str] = []
    bumps: list[Bump] = []
    schema_at: dict[str, str] = {}  # global cluster → the schema version it runs after this change
    schema_running: dict[str, str] = {}  # global cluster → the schema version it runs today
    for cluster, item in sorted(loaded.items()):
        spec = item.spec
        schema = spec.services.settings(SCHEMA, Bumped)
        if not isinstance(spec, GlobalCluster) or schema is None:
            continue
        current = schema.version
        schema_at[cluster] = schema_running[cluster] = current
        if chosen := _choose(cluster, spec, SCHEMA, upstream, registry, notes):
            release, images = chosen
            bumps.append(Bump(cluster, SCHEMA, current, str(release.version), release, images))
            schema_at[cluster] = str(release.version)

    for cluster, item in progress.each("bot releases", sorted(loaded.items()), lambda ci: ci[0]):
        spec = item.spec
        if not isinstance(spec, LocalCluster):
            continue
        glob = global_of(spec, {n: item.spec for n, item in loaded.items()})
        for service in (s.name for s in catalog.SERVICES if s.upstream and s.name != SCHEMA and "local" in s.kinds):
            svc = spec.services.settings(service, Bumped)
            if svc is None:
                continue

            def compatible(release: Release, service: str = service, glob: str | None = glob) -> str | None:
                pin = upstream.pin(service, release)
                if pin is None or glob is None or glob not in schema_at:
                    return None
                where = f"{pin.path} at {release.tag}"
                if pin.specifier is None:
                    return (f"its EMAnnotationSchemas requirement `{pin.requirement}` ({where}) is not a valid "
                            f"version specifier ({pin.error}); fix it upstream, or set `bump: pinned`")
                running, target = schema_running[glob], schema_at[glob]
                if pin.allows(running) or pin.allows(target):
                    return None
                gets = f"runs {running}" + (f" and can get {target}" if target != running else "")
                return (f"it pins {pin.requirement} ({where}), which the global cluster {glob} cannot satisfy: it "
                        f"{gets} (the bot never proposes a schema downgrade)")

            chosen = _choose(cluster, spec, service, upstream, registry, notes, compatible)
            if chosen is None:
                continue
            release, images = chosen
            pin = upstream.pin(service, release)
            needs = None
            if pin is not None and glob is not None and glob in schema_at and not pin.allows(schema_running[glob]):
                needs = glob  # only the schema version this change brings satisfies the pin
            bumps.append(Bump(cluster, service, svc.version, str(release.version), release, images, pin, needs))

    bumps = _hold_schema(loaded, upstream, bumps, notes)
    if gate is not None:
        bumps = gate(bumps, notes)
    linked = {b.service for b in bumps if b.schema_from}
    groups: list[set[str]] = [linked | {SCHEMA}] if linked else []
    for service in UPSTREAMS:
        if not any(service in g for g in groups):
            groups.append({service})
    sets = [BumpSet([b for b in bumps if b.service in g]) for g in groups]
    sets = [s for s in sets if s.bumps]
    for s in sets:
        s.bumps.sort(key=lambda b: (_rank(b.service), b.service, b.cluster))
    return sorted(sets, key=lambda s: s.branch), notes


def _release_of(upstream: Upstream, service: str, version: str) -> Release | None:
    wanted = semver.parse(version)
    return next((r for r in upstream.releases(service) if r.version == wanted), None) if wanted else None


def _hold_schema(loaded: dict[str, Loaded], upstream: Upstream, bumps: list[Bump], notes: list[str]) -> list[Bump]:
    """Hold a global cluster's schema bump that a local cluster it serves cannot take: the release of each of the
    local's schema clients (annotationengine, materializationengine) that it will run (the one the schema bump's
    own set brings, else the one it runs: a bump in another pull request may be merged later) pins an
    EMAnnotationSchemas specifier the new version does not satisfy. The local bumps that needed that schema bump
    are held with it. A pin the bot cannot read holds it too (it cannot tell)."""
    specs = {name: item.spec for name, item in loaded.items()}
    held: dict[str, str] = {}  # global → the schema version held
    linked = {b.service for b in bumps if b.schema_from}  # their bumps go in the schema bump's set (see below)
    for b in [b for b in bumps if b.service == SCHEMA]:
        why: list[str] = []
        for local in locals_of(b.cluster, specs):
            for service in (s.name for s in catalog.SERVICES if s.upstream and s.name != SCHEMA and "local" in s.kinds):
                svc = specs[local].services.settings(service, Bumped)
                if svc is None:
                    continue
                same = next((x for x in bumps if x.cluster == local and x.service == service and service in linked),
                            None)
                version = same.new if same else svc.version
                runs = f"{local} {'gets' if same else 'runs'} {service} {version}{' in this change' if same else ''}"
                try:
                    release = same.release if same else _release_of(upstream, service, version)
                    pin = same.pin if same else upstream.pin(service, release) if release else None
                except Malformed as err:
                    why.append(f"{runs}, whose EMAnnotationSchemas requirement the bot cannot read ({err})")
                    continue
                if pin is not None and release is not None and pin.specifier is not None and not pin.allows(b.new):
                    why.append(f"{runs}, which pins {pin.requirement} ({pin.path} at {release.tag})")
        if why:
            held[b.cluster] = b.new
            notes.append(f"{b.cluster}: {SCHEMA} {b.new} held: " + "; ".join(why) + f". Bump those first (a release "
                         f"whose pin allows {b.new}); the next run proposes it then")
    out = []
    for b in bumps:
        if b.service == SCHEMA and b.cluster in held:
            continue
        if b.schema_from in held:
            notes.append(f"{b.cluster}: {b.service} {b.new} not bumped: it needs {SCHEMA} {held[b.schema_from]} on "
                         f"{b.schema_from}, which is held (see above)")
            continue
        out.append(b)
    return out


# --------------------------------------------------------------------------- the pull request text


def link(text: str, url: str) -> str:
    """A Markdown link whose text and target come from upstream (a release tag, its page): shown as written, and
    unable to end the link or the table cell early."""
    label = md_cell(text).replace("[", "\\[").replace("]", "\\]")
    return f"[{label}]({urllib.parse.quote(url, safe=':/?#@!$&*+,;=%~.-_')})"  # no space, bracket or parenthesis


def body(bset: BumpSet, upstreams: dict[str, str], diff_markdown: str | None, head: str) -> str:
    """The pull request body, whose marker records the set and the `head` commit the bot pushed; the rendered
    diff is cut to keep the whole under GitHub's limit."""
    lines = [SET_MARKER.format(bset.key, head), f"## {bset.title}", "",
             "| cluster | service | from | to | release notes |", "| --- | --- | --- | --- | --- |"]
    for b in bset.bumps:
        lines.append(f"| {b.cluster} | {b.service} | {b.old} | **{b.new}** | {link(b.release.tag, b.release.url)} |")
    lines += ["", "Upstream: " + ", ".join(f"`{upstreams[s]}`" for s in _ordered({b.service for b in bset.bumps}))]

    evidence: dict[tuple[str, str, str], list[str]] = {}  # (service, version, what) → clusters
    for b in bset.bumps:
        if b.service == SCHEMA:
            continue
        if b.pin is None:
            what = (f"no emannotationschemas requirement found in {', '.join(REQUIREMENT_FILES)} "
                    f"at {md_code(b.release.tag)}")
        else:
            state = (f"the global cluster {b.schema_from} is bumped to a compatible version in this change"
                     if b.schema_from else "the global cluster already runs a compatible version")
            where = link(f"{b.pin.path} at {b.release.tag}", b.pin.url)
            what = f"pins {md_code(b.pin.requirement)} ({where}); {state}"
        evidence.setdefault((b.service, b.new, what), []).append(b.cluster)
    if evidence:
        lines += ["", "### Compatibility with the schema service", ""]
        lines += [f"- {service} {version} ({', '.join(clusters)}): {what}"
                  for (service, version, what), clusters in evidence.items()]

    if bset.stage_plan:
        lines += ["", "### Stage plan", "", *bset.stage_plan]

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
              "overlays rebuilt). The bot force-pushes this branch only while its head is the commit the bot pushed "
              "(recorded above): a person's commit, amend or rebase stops it, and it comments here instead."]
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
