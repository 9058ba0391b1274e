"""Validate rendered clusters: schemas and rules, and the findings as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler import progress
from compiler.build.check import is_managed, require_fresh
from compiler.paths import spec_rel
from compiler.render.jobs import render_clusters
from compiler.render.sources import list_clusters, select_clusters
from compiler.spec.load import Loaded, load_all
from compiler.validate.fleet import load_fleet
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
    version or `kubernetes_version`. Unknown clusters and stale overlays are user errors."""
    if not all((root / spec_rel(c)).is_file() for c in clusters):
        select_clusters(root, list(clusters))  # raises: each unknown cluster, with the known ones
    loaded = None
    if not kubernetes_version:
        loaded = load_all(root)  # each cluster's Kubernetes version; the fleet rules read the same specs
    elif fleet_rules and is_managed(root):
        loaded = load_all(root, for_fleet_rules=True)  # the freshness check and the fleet rules read them: once
    # Never validate overlays the specs no longer compile to. The fleet rules read every cluster and the
    # app-of-apps, so with them every overlay must be fresh; without them, only the clusters validated.
    require_fresh(root, None if fleet_rules or not clusters else clusters, argocd=fleet_rules, loaded=loaded,
                  use_cache=use_cache)
    selected = select_clusters(root, list(clusters))
    if kubernetes_version:
        versions = dict.fromkeys(selected, kubernetes_version)
    else:
        assert loaded is not None
        versions = {c: str(loaded[c].spec.kubernetes_version) for c in selected if c in loaded}
    findings = validate_clusters(root, versions, schemas, use_cache=use_cache, fleet_rules=fleet_rules,
                                 loaded=loaded)
    return Validated(findings, versions)

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


def validate_clusters(
    root: Path,
    versions: Mapping[str, str],
    schemas: Schemas | None = None,
    *,
    use_cache: bool = True,
    fleet_rules: bool = True,
    loaded: dict[str, Loaded] | None = None,
) -> list[Finding]:
    """Render the clusters in `versions` (cluster → Kubernetes version) in parallel and validate them.

    With `fleet_rules`, the fleet rules also run (over every cluster of the repository, since a local depends
    on its global and clusters must not collide); only findings about the clusters in `versions` are kept.
    """
    for version in set(versions.values()):
        kubernetes_schema_version(version)  # fail on a bad version before rendering anything
    # The fleet rules read every cluster: render (and parse) each once, for both.
    wanted = sorted(set(versions) | set(list_clusters(root))) if fleet_rules else sorted(versions)
    rendered = render_clusters(root, wanted, use_cache=use_cache)
    schemas = schemas or Schemas()
    findings = [
        f
        for cluster in progress.each("validate", sorted(versions), str)
        for f in validate_objects(cluster, rendered[cluster].objects, versions[cluster], schemas)
    ]
    if fleet_rules:
        with progress.stage("fleet rules", 1) as step:
            fleet = load_fleet(root, use_cache=use_cache, rendered=rendered, loaded=loaded)
            findings.extend(f for f in check_fleet(fleet) if f.cluster in versions)
            step(f"{len(wanted)} clusters")
    return sorted(set(findings))


def format_text(findings: Iterable[Finding]) -> str:
    return "".join(f"{f}\n" for f in findings)


def format_json(findings: Iterable[Finding]) -> str:
    return json.dumps([f.as_dict() for f in findings], indent=2, sort_keys=True) + "\n"
