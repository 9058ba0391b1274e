"""The fleet at a glance (`python -m compiler status`): each cluster's kind, global server, Argo CD destination
and whether its overlay is in sync; each service's version per cluster as a matrix; the pinned add-on charts and
tools of gitops.yaml. As text, Markdown and JSON; the PR comment starts with the rows a change alters
(`version_changes`, used by compiler/diff).

JSON (`--format json`), stable; fields are only ever added, `version` bumps otherwise:

    {
      "version": 1,
      "clusters": [{"name", "kind", "global_server": str|null, "project", "argocd_destination", "overlay"}],
                                              # overlay: "in sync" | "stale" | "missing"
      "in_sync": bool,                        # every overlay, overlays/argocd/ included, is what build writes
      "orphaned": [str],                      # generated overlays whose spec is gone
      "services": [str],                      # catalogue order, services some cluster names
      "versions": {service: {cluster: str}},  # the version, or "disabled"; absent: the spec leaves it out
      "argocd": {"overlay": "in sync"|"stale"|"missing"|null, "version": str|null, "kustomize": str|null},
      "addons": [{"name", "chart": str|null, "version", "repo_url": str|null}]  # chart null: an image (tag)
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler import catalog
from compiler.build import overlays
from compiler.build.check import stale, stale_message
from compiler.paths import OVERLAYS, SETTINGS_FILE
from compiler.spec.load import load_all
from compiler.spec.settings import Chart, PinnedImage, load_settings
from compiler.spec.yamlio import to_plain

JSON_VERSION = 1
DISABLED = "disabled"
FORMATS = ("text", "markdown", "json")


@dataclass(frozen=True)
class ClusterRow:
    name: str
    kind: str
    global_server: str | None  # a local's global; None for a global cluster
    project: str
    argocd_destination: str
    overlay: str  # "in sync", "stale", "missing"


@dataclass(frozen=True)
class Addon:
    name: str
    chart: str | None  # None: a pinned image, not a chart
    version: str
    repo_url: str | None


@dataclass
class Status:
    clusters: list[ClusterRow]
    versions: dict[str, dict[str, str]]  # service → cluster → version or DISABLED
    addons: list[Addon] = field(default_factory=list)
    argocd_overlay: str | None = None
    argocd_version: str | None = None
    kustomize: str | None = None
    orphaned: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return (all(c.overlay == "in sync" for c in self.clusters) and self.argocd_overlay in (None, "in sync")
                and not self.orphaned)


def service_versions(data: Any) -> dict[str, str]:
    """service → its version (or "disabled") in a spec's plain data, in catalogue order; services it leaves out,
    or written without a version, are absent. Works on a spec that does not load (a base commit's)."""
    services = data.get("services") if isinstance(data, Mapping) else None
    if not isinstance(services, Mapping):
        return {}
    out: dict[str, str] = {}
    for entry in catalog.SERVICES:
        section = services.get(entry.name)
        if isinstance(section, Mapping) and section.get("version") is not None:
            out[entry.name] = DISABLED if section.get("enabled") is False else str(section["version"])
    return out


def pinned_versions(data: Any) -> dict[str, str]:
    """What gitops.yaml pins, in plain data (a base commit's too): "argocd" and "kustomize" → their release, each
    add-on → its chart version or image tag; the `status` rows of the pins."""
    if not isinstance(data, Mapping):
        return {}
    out: dict[str, str] = {}
    for key in ("argocd", "kustomize"):
        section = data.get(key)
        if isinstance(section, Mapping) and section.get("version") is not None:
            out[key] = str(section["version"])
    addons = data.get("addons")
    for name, pin in (addons.items() if isinstance(addons, Mapping) else ()):
        if isinstance(pin, Mapping) and (pin.get("version") or pin.get("tag")) is not None:
            out[str(name)] = str(pin.get("version") or pin.get("tag"))
    return out


def fleet_status(root: Path, *, use_cache: bool = True) -> Status:
    """The status of every cluster of the repository at `root` (UserError when a spec does not load)."""
    loaded = load_all(root, for_fleet_rules=True)
    messages = {p.message for p in stale(root, None, argocd=True, loaded=loaded, use_cache=use_cache)}

    def overlay(name: str) -> str:
        if stale_message(name, missing=True) in messages:
            return "missing"
        return "stale" if stale_message(name) in messages else "in sync"

    rows = []
    versions: dict[str, dict[str, str]] = {s.name: {} for s in catalog.SERVICES}
    for name in sorted(loaded):
        spec = loaded[name].spec
        dest = spec.argocd.server or spec.argocd.name or ""
        rows.append(ClusterRow(name, spec.kind, getattr(spec, "global_server", None), spec.gcp.project, dest,
                               overlay(name)))
        for service, version in service_versions(to_plain(loaded[name].doc.data)).items():
            versions[service][name] = version
    status = Status(rows, {s: v for s, v in versions.items() if v})
    status.orphaned = [c for c in overlays.generated_overlays(root) if c not in loaded]
    settings = load_settings(root)
    if settings is not None:
        status.argocd_overlay = overlay(overlays.ARGOCD)
        status.argocd_version = settings.settings.argocd.version
        kustomize = settings.settings.kustomize
        status.kustomize = kustomize.version if kustomize is not None else None
        for name, pin in settings.settings.addons:
            if isinstance(pin, Chart):
                status.addons.append(Addon(name, pin.chart, pin.version, pin.repo_url))
            elif isinstance(pin, PinnedImage):
                status.addons.append(Addon(name, None, pin.tag, pin.image))
    return status


# --------------------------------------------------------------------------- formats


def _cluster_cells(row: ClusterRow) -> list[str]:
    return [row.name, row.kind, row.global_server or "-", row.project, row.argocd_destination, row.overlay]


CLUSTER_HEADERS = ["cluster", "kind", "global server", "project", "Argo CD destination", "overlay"]


def _version_rows(status: Status) -> tuple[list[str], list[list[str]]]:
    names = [c.name for c in status.clusters]
    rows = [[service, *(cells.get(c, "-") for c in names)] for service, cells in status.versions.items()]
    return ["service", *names], rows


def _addon_cells(addon: Addon) -> list[str]:
    return [addon.name, addon.chart or "(image)", addon.version, addon.repo_url or ""]


ADDON_HEADERS = ["add-on", "chart", "version", "from"]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in [headers, *rows]]


def _sync_line(status: Status) -> str:
    if status.in_sync:
        return "overlays: in sync with environments/"
    parts = [f"{c.name} {c.overlay}" for c in status.clusters if c.overlay != "in sync"]
    if status.argocd_overlay not in (None, "in sync"):
        parts.append(f"{OVERLAYS}/{overlays.ARGOCD} {status.argocd_overlay}")
    parts += [f"{c} orphaned" for c in status.orphaned]
    return f"overlays: NOT in sync ({', '.join(parts)}): run python -m compiler build"


def _pins(status: Status) -> str | None:
    pins = [f"Argo CD {status.argocd_version}" if status.argocd_version else "",
            f"kustomize {status.kustomize}" if status.kustomize else ""]
    return ", ".join(p for p in pins if p) or None


def format_text(status: Status) -> str:
    out = [_sync_line(status), "", *_table(CLUSTER_HEADERS, [_cluster_cells(c) for c in status.clusters])]
    headers, rows = _version_rows(status)
    if rows:
        out += ["", *_table(headers, rows)]
    if status.addons:
        out += ["", f"{SETTINGS_FILE} pins" + (f": {pins}" if (pins := _pins(status)) else ""),
                *_table(ADDON_HEADERS, [_addon_cells(a) for a in status.addons])]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("<", "&lt;").replace(">", "&gt;")


def md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, cells escaped."""
    return ["| " + " | ".join(_md(h) for h in headers) + " |", "|" + " --- |" * len(headers),
            *("| " + " | ".join(_md(c) for c in row) + " |" for row in rows)]


def format_markdown(status: Status) -> str:
    out = ["### CAVE fleet status", "", f"**{_md(_sync_line(status))}**", "",
           *md_table(CLUSTER_HEADERS, [_cluster_cells(c) for c in status.clusters])]
    headers, rows = _version_rows(status)
    if rows:
        out += ["", "**Service versions**", "", *md_table(headers, rows)]
    if status.addons:
        out += ["", f"**Pinned in {SETTINGS_FILE}**" + (f" ({_md(pins)})" if (pins := _pins(status)) else ""), "",
                *md_table(ADDON_HEADERS, [_addon_cells(a) for a in status.addons])]
    return "\n".join(out) + "\n"


def as_json_data(status: Status) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "clusters": [{"name": c.name, "kind": c.kind, "global_server": c.global_server, "project": c.project,
                      "argocd_destination": c.argocd_destination, "overlay": c.overlay} for c in status.clusters],
        "in_sync": status.in_sync,
        "orphaned": list(status.orphaned),
        "services": list(status.versions),
        "versions": status.versions,
        "argocd": {"overlay": status.argocd_overlay, "version": status.argocd_version, "kustomize": status.kustomize},
        "addons": [{"name": a.name, "chart": a.chart, "version": a.version, "repo_url": a.repo_url}
                   for a in status.addons],
    }


def format_status(status: Status, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(as_json_data(status), indent=2, ensure_ascii=False) + "\n"
    return format_markdown(status) if fmt == "markdown" else format_text(status)


# --------------------------------------------------------------------------- what a change does to it


@dataclass(frozen=True)
class VersionChange:
    service: str
    cluster: str
    old: str | None  # None: not in the spec (a new cluster or service)
    new: str | None  # None: removed


def version_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[VersionChange]:
    """The service versions that differ between two fleets, given as cluster → spec plain data, sorted by
    service (catalogue order) then cluster."""
    order = {s.name: i for i, s in enumerate(catalog.SERVICES)}
    out = []
    for cluster in sorted(set(old) | set(new)):
        before = service_versions(old.get(cluster))
        after = service_versions(new.get(cluster))
        for service in set(before) | set(after):
            if before.get(service) != after.get(service):
                out.append(VersionChange(service, cluster, before.get(service), after.get(service)))
    return sorted(out, key=lambda c: (order.get(c.service, len(order)), c.service, c.cluster))


def pin_changes(old: Any, new: Any) -> list[VersionChange]:
    """What gitops.yaml pins differently (Argo CD, kustomize, each add-on), as rows of its own "cluster"
    SETTINGS_FILE, in the order the new file (then the old) lists them."""
    before, after = pinned_versions(old), pinned_versions(new)
    keys = [*after, *(k for k in before if k not in after)]
    return [VersionChange(k, SETTINGS_FILE, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]
