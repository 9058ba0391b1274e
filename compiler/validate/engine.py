"""Validate rendered clusters: schemas and rules, and the findings as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler import progress
from compiler.build.check import inputs, require_fresh
from compiler.paths import spec_rel
from compiler.render.jobs import render_clusters
from compiler.render.sources import list_clusters, select_clusters
from compiler.spec.load import Loaded, load_all
from compiler.validate.cache import ValidatedCache, cluster_key, fleet_key, specs_key
from compiler.validate.fleet import fleet_renders, load_fleet
from compiler.validate.fleet.rules import check_fleet
from compiler.validate.model import Finding, Obj
from compiler.validate.rules import RULES, ClusterSet
from compiler.validate.schemas import Schemas, kubernetes_schema_version


@dataclass(frozen=True)
class Validated:
    """What `validate` found: the findings, and the clusters validated with the Kubernetes version of each."""

    findings: list[Finding]
    versions: dict[str, str]

    def verdict(self) -> str:
        """The summary line of the text format: `validated a, b: valid` or `...: N problem(s)`."""
        checked = ", ".join(sorted(self.versions)) or "no clusters"
        return f"validated {checked}: {f'{len(self.findings)} problem(s)' if self.findings else 'valid'}"


def validate(root: Path, clusters: Sequence[str], schemas: Schemas, *, kubernetes_version: str | None = None,
             use_cache: bool = True, fleet_rules: bool = True) -> Validated:
    """`python -m compiler validate`: the clusters named (all when none), each against its spec's Kubernetes
    version or `kubernetes_version`. Unknown clusters and stale overlays are user errors.

    Results are cached by content (validate/cache.py): the specs are loaded only when something was not validated
    before (or not cached in the compiled cache), so validating an unchanged fleet reads renders and cache entries
    only."""
    if not all((root / spec_rel(c)).is_file() for c in clusters):
        select_clusters(root, list(clusters))  # raises: each unknown cluster, with the known ones
    # Each cluster's Kubernetes version comes from its spec, so without a version given the specs load as build
    # loads them (a cross-spec problem stops validate); with one, as the fleet rules read them. Loaded when needed.
    specs = Specs(root, strict=not kubernetes_version, use_cache=use_cache)
    # Never validate overlays the specs no longer compile to. The fleet rules read every cluster and the
    # app-of-apps, so with them every overlay must be fresh; without them, only the clusters validated.
    require_fresh(root, None if fleet_rules or not clusters else clusters, argocd=fleet_rules, load=specs.all,
                  use_cache=use_cache)
    selected = select_clusters(root, list(clusters))
    return validate_selected(root, selected, schemas, specs, kubernetes_version=kubernetes_version,
                             use_cache=use_cache, fleet_rules=fleet_rules)


class Specs:
    """Every spec of the repository, loaded on first use (load_all, strictly as build loads them or as the fleet
    rules read them), and their bytes (build.check.inputs) without loading them."""

    def __init__(self, root: Path, *, strict: bool, use_cache: bool = True) -> None:
        self.root, self.strict, self.use_cache = root, strict, use_cache
        self.bytes = inputs(root)
        self._all: dict[str, Loaded] | None = None

    def all(self) -> dict[str, Loaded]:
        if self._all is None:
            self._all = load_all(self.root, use_cache=self.use_cache) if self.strict else \
                load_all(self.root, for_fleet_rules=True, use_cache=self.use_cache)
        return self._all

    def checked(self, cache: ValidatedCache | None) -> None:
        """Loaded strictly, unless an earlier run did so with these exact inputs (a marker in `cache`): findings
        read back from the cache must not skip the refusal of a spec build would refuse."""
        if not self.strict:
            return
        key = specs_key(self.bytes)
        if cache is not None and cache.get(key) is not None:
            return
        self.all()  # raises what build would (at once when the freshness check loaded them already)
        if cache is not None:
            cache.put(key, "specs", [])


def validate_selected(root: Path, selected: Sequence[str], schemas: Schemas, specs: Specs, *,
                      kubernetes_version: str | None = None, use_cache: bool = True,
                      fleet_rules: bool = True) -> Validated:
    """Validate the clusters `selected` (and, with `fleet_rules`, the fleet), reusing cached results."""
    if kubernetes_version:
        kubernetes_schema_version(kubernetes_version)  # fail on a bad version before rendering anything
    cache = ValidatedCache.at(root) if use_cache else None
    wanted = sorted(set(selected) | set(list_clusters(root))) if fleet_rules else sorted(selected)
    # the specs' strict load (when no earlier run did it for these inputs) while kustomize renders
    rendered = render_clusters(root, wanted, use_cache=use_cache, meanwhile=lambda: specs.checked(cache))
    findings: list[Finding] = []
    versions: dict[str, str] = {}
    for cluster in progress.each("validate", sorted(selected), str):
        key = cluster_key(cluster, rendered[cluster].digest, schemas.fingerprint, specs.bytes.get(cluster, b""),
                          kubernetes_version) if cache is not None else ""
        hit = cache.get(key) if cache is not None else None
        if hit is None:
            version = kubernetes_version or str(specs.all()[cluster].spec.kubernetes_version)
            found = validate_objects(cluster, rendered[cluster].objects, version, schemas)
            if cache is not None:
                cache.put(key, cluster, found, version)
        else:
            version, found = hit.kubernetes_version, hit.findings
        versions[cluster] = version
        findings += found
    if fleet_rules:
        with progress.stage("fleet rules", 1) as step:
            renders = fleet_renders(root, use_cache=use_cache, rendered=rendered)
            key = fleet_key(renders.digests(), specs.bytes, specs.strict) if cache is not None else ""
            hit = cache.get(key) if cache is not None else None
            if hit is None:
                fleet = load_fleet(root, use_cache=use_cache, loaded=specs.all(), renders=renders)
                found = check_fleet(fleet)
                if cache is not None:
                    cache.put(key, "fleet", found)
            else:
                found = hit.findings
            findings.extend(f for f in found if f.cluster in versions)
            step(f"{len(wanted)} clusters")
    if cache is not None:
        cache.prune()
    return Validated(sorted(set(findings)), versions)

# --------------------------------------------------------------------------- running it all


def validate_objects(
    cluster: str, objects: Sequence[Obj], kubernetes_version: str, schemas: Schemas | None = None
) -> list[Finding]:
    """Every schema and CAVE-rule problem of one cluster's rendered objects, sorted."""
    schema_version = kubernetes_schema_version(kubernetes_version)
    schemas = schemas or Schemas()
    findings = [f for obj in objects for f in schemas.check(cluster, obj, schema_version)]
    cs = ClusterSet(cluster, list(objects))
    for check in RULES.values():
        findings.extend(check(cs))
    return sorted(set(findings))


def format_text(findings: Iterable[Finding]) -> str:
    return "".join(f"{f}\n" for f in findings)


def format_json(findings: Iterable[Finding]) -> str:
    return json.dumps([f.as_dict() for f in findings], indent=2, sort_keys=True) + "\n"
