"""A DiffResult as text, Markdown (PR comment) and JSON."""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from compiler.build.waves import wave_chart
from compiler.diff.model import Change, ClusterDiff, DiffResult, ObjKey
from compiler.escape import md_cell, md_code
from compiler.mermaid import TooLarge, fenced

JSON_VERSION = 1
GITHUB_COMMENT_LIMIT = 65_000
SYNC_ORDER_SHARE = 0.4  # of the comment the two sync-order diagrams may take (the clusters' details need the rest)
SYNC_ORDER_MORE = "see the Argo CD Applications above"  # where a Sync order diagram sends a reader for what it cuts
WHOLE_COMMENT_CHARS = 10_000_000  # a --max-chars that cuts nothing: what a note about a cut suggests


# --------------------------------------------------------------------------- formatting helpers


STATUS_MARK = {"added": "+", "removed": "-", "changed": "~", "unchanged": "=", "reordered": "~"}


def _value(value: Any, limit: int = 300) -> str:
    """A value on one line: strings bare (quoted when ambiguous), others as compact JSON."""
    if isinstance(value, str) and value and value.strip() == value and "\n" not in value and len(value) <= limit:
        return value
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def change_lines(change: Change) -> list[str]:
    """A change as diff-style lines: a header and `-`/`+` lines (unified diff for multi-line text)."""
    if change.redacted:
        what = {"added": "added", "removed": "removed", "changed": "value changed"}[change.op]
        return [f"{change.path}: {what} (secret value not shown)"]
    if change.op == "reordered":
        return [f"{change.path}: reordered {_value(change.old)} → {_value(change.new)}"]
    old, new = change.old, change.new
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        body = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2))[2:]
        return [f"{change.path}: text changed", *body]
    if change.op == "added":
        return [f"{change.path}: added {_value(new)}"]
    if change.op == "removed":
        return [f"{change.path}: removed (was {_value(old)})"]
    return [f"{change.path}: {_value(old)} → {_value(new)}"]


def _short_image_change(old: str | None, new: str | None) -> str:
    if old and new:
        repo_old, _, tag_old = old.rpartition(":") if "@" not in old else (old, "", "")
        repo_new, _, tag_new = new.rpartition(":") if "@" not in new else (new, "", "")
        if repo_old and repo_old == repo_new and "/" not in tag_old + tag_new:
            return f"{repo_old}: {tag_old} → {tag_new}"
    return f"{old or '(none)'} → {new or '(none)'}"


def grouped_images(result: DiffResult) -> list[tuple[str, list[str]]]:
    """(image change, clusters) with identical changes grouped, sorted."""
    groups: dict[str, set[str]] = defaultdict(set)
    for change in result.images:
        groups[_short_image_change(change.old, change.new)].add(change.cluster)
    return sorted((text, sorted(clusters)) for text, clusters in groups.items())


def _object_label(key: ObjKey) -> str:
    _, kind, namespace, name = key
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def argocd_lines(result: DiffResult) -> list[str]:
    return [
        f"{a.cluster}: {_object_label(a.key)}: {a.annotation} {a.old if a.old is not None else '(none)'}"
        f" → {a.new if a.new is not None else '(none)'}"
        for a in result.argocd
    ]


def matrix_columns(result: DiffResult) -> tuple[list[str], list[tuple[list[str], dict[str, str]]]]:
    """(services, columns): clusters with identical per-service status share one column."""
    services, clusters, cells = result.matrix()
    columns: dict[tuple[str, ...], list[str]] = {}
    for cluster in clusters:
        signature = tuple(cells[s].get(cluster, "") for s in services)
        columns.setdefault(signature, []).append(cluster)
    out = [(members, {s: cells[s].get(members[0], "") for s in services}) for members in columns.values()]
    return services, out


def _column_title(members: list[str]) -> str:
    return ", ".join(members) if len(members) <= 3 else f"{members[0]}, {members[1]} +{len(members) - 2} more"


def headline(result: DiffResult) -> str:
    counts = {s: len(result.clusters_with(s)) for s in ("added", "removed", "changed", "unchanged")}
    objects = {s: sum(c.count(s) for c in result.clusters) for s in ("added", "changed", "removed")}
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    return (
        f"clusters: {', '.join(parts) or 'none'}; objects: {objects['added']} added, "
        f"{objects['changed']} changed, {objects['removed']} removed"
    )


def version_matrix(result: DiffResult) -> tuple[list[str], list[list[str]]]:
    """The `status` rows this change alters: service × cluster, `old → new` where the spec changes the version."""
    clusters = sorted({v.cluster for v in result.versions})
    cells: dict[str, dict[str, str]] = {}
    for v in result.versions:
        cells.setdefault(v.service, {})[v.cluster] = f"{v.old or '(none)'} → {v.new or '(none)'}"
    return ["service", *clusters], [[s, *(row.get(c, "") for c in clusters)] for s, row in cells.items()]


OTHER_PATHS_SHOWN = 5


def application_lines(result: DiffResult) -> list[str]:
    """overlays/argocd/: one line per Application (or other object) added, removed or changed, and its changes."""
    out: list[str] = []
    for app in result.applications:
        mark = STATUS_MARK[app.status]
        if app.status != "changed":
            out.append(f"{mark} {app.kind} {app.name} {app.status}: {app.summary}")
            continue
        out.append(f"{mark} {app.kind} {app.name}")
        out += [f"    {c.field}: {c.old or '(none)'} → {c.new or '(none)'}" for c in app.changes]
        if app.other:
            more = f" (+{len(app.other) - OTHER_PATHS_SHOWN} more)" if len(app.other) > OTHER_PATHS_SHOWN else ""
            out.append(f"    also changed: {', '.join(app.other[:OTHER_PATHS_SHOWN])}{more}")
    return out


def new_cluster_summary(result: DiffResult, cluster: ClusterDiff) -> dict[str, Any]:
    """A new cluster at a glance: its objects by kind (most first), its images with the services using them, and
    the service versions its spec sets."""
    kinds: dict[str, int] = defaultdict(int)
    service_of: dict[ObjKey, str] = {}
    for obj in cluster.objects:
        kinds[obj.key[1]] += 1
        service_of[obj.key] = obj.service
    images: dict[str, set[str]] = defaultdict(set)
    for image in cluster.images:
        if image.new:
            images[image.new].add(service_of.get(image.key, image.key[3]))
    return {
        "objects": dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        "images": [{"image": i, "services": sorted(s)} for i, s in sorted(images.items())],
        "versions": {v.service: v.new for v in result.versions if v.cluster == cluster.name and v.new},
    }


def new_cluster_lines(result: DiffResult, cluster: ClusterDiff) -> list[str]:
    """new_cluster_summary in a few lines (instead of one "added" line per object)."""
    summary = new_cluster_summary(result, cluster)
    kinds = ", ".join(f"{n} {k}" for k, n in summary["objects"].items())
    out = [f"new cluster: {len(cluster.objects)} objects ({kinds})"]
    if summary["images"]:
        out.append(f"images ({len(summary['images'])}):")
        out += [f"  {i['image']}  [{', '.join(i['services'])}]" for i in summary["images"]]
    if summary["versions"]:
        out.append("versions: " + ", ".join(f"{s} {v}" for s, v in summary["versions"].items()))
    return out


def _shown_images(result: DiffResult) -> DiffResult:
    """The result without the images of new clusters (their own summary lists them) for the top Images section."""
    clusters = [c if c.status != "added" else dataclasses.replace(c, images=[]) for c in result.clusters]
    return dataclasses.replace(result, clusters=clusters)


# --------------------------------------------------------------------------- text


_COLORS = {"+": "\033[32m", "-": "\033[31m", "~": "\033[33m", "bold": "\033[1m", "dim": "\033[2m"}
_RESET = "\033[0m"


def format_text(result: DiffResult, color: bool = False) -> str:
    """Plain (or ANSI-coloured) report: summary first, then every object's changes."""

    def paint(style: str, text: str) -> str:
        return f"{_COLORS[style]}{text}{_RESET}" if color and style in _COLORS else text

    out = [
        paint("bold", f"diff {result.base_ref} ({result.base_commit[:12]}) → working tree"),
        headline(result),
    ]
    out += [paint("~", f"warning: {w}") for w in result.warnings]
    headers, rows = version_matrix(result)
    if rows:
        out += ["", paint("bold", "Versions") + "  (the `status` rows this change alters)"]
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
        out += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [headers, *rows]]
    removed_clusters = result.clusters_with("removed")
    if removed_clusters:
        out.append(paint("-", f"REMOVED clusters (every object deleted): {', '.join(removed_clusters)}"))
    if images := grouped_images(_shown_images(result)):
        out += ["", paint("bold", "Images")]
        out += [f"  {text}  [{', '.join(clusters)}]" for text, clusters in images]
    if result.applications:
        out += ["", paint("bold", "Argo CD Applications (overlays/argocd/)")]
        out += [f"  {line}" for line in application_lines(result)]
    if result.argocd:
        out += ["", paint("bold", "Argo CD sync waves and hooks")]
        out += [f"  {line}" for line in argocd_lines(result)]
    services, columns = matrix_columns(result)
    if columns:
        out += ["", paint("bold", "Services × clusters") + "  (+ added, ~ changed, - removed, = unchanged)"]
        width = max(len(s) for s in services) if services else 8
        titles = [_column_title(m) for m, _ in columns]
        out.append("  " + " " * width + "  " + "  ".join(titles))
        for service in services:
            cells = []
            for (_, statuses), title in zip(columns, titles, strict=True):
                mark = STATUS_MARK.get(statuses[service], ".")
                cells.append(paint(mark, mark) + " " * (len(title) - 1))
            out.append(f"  {service.ljust(width)}  " + "  ".join(cells))
        for members, _ in columns:
            if len(members) > 3:
                out.append(f"  {_column_title(members)}: {', '.join(members)}")
    unchanged = result.clusters_with("unchanged")
    if unchanged:
        out += ["", f"unchanged clusters: {', '.join(unchanged)}"]
    for cluster in result.clusters:
        if cluster.status == "unchanged":
            continue
        out += ["", paint("bold", f"{cluster.name} ({cluster.status})")]
        if cluster.status == "added":  # a summary, not one "added" line per object
            out += [f"  {line}" for line in new_cluster_lines(result, cluster)]
            continue
        for obj in cluster.objects:
            mark = STATUS_MARK[obj.status]
            out.append(paint(mark, f"{mark} {obj.label}") + paint("dim", f"  [{obj.service}] {obj.status}"))
            for change in obj.changes:
                for i, line in enumerate(change_lines(change)):
                    style = line[:1] if i and line[:1] in "+-" else ""
                    out.append("    " + (paint(style, line) if style else line))
            out += [f"    note: {note}" for note in obj.notes]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- markdown


def _md(text: str) -> str:
    """Text safe inside a markdown table cell or list item: one line, HTML escaped, '|' and backticks neutralised."""
    return md_cell(text)


def _fence(lines: Sequence[str]) -> str:
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}diff\n" + "\n".join(lines) + f"\n{ticks}\n"


def _md_change_lines(change: Change) -> list[str]:
    """A change for a ```diff block: old values on `-` lines and new on `+` lines, so GitHub colours them."""
    lines = change_lines(change)
    if change.redacted or change.op == "reordered":
        return [f"  {lines[0]}"]
    if len(lines) > 1:  # multi-line text: a unified diff body already
        body = [f"  {line}" if line.startswith("@@") else f"{line[:1] or ' '}     {line[1:]}" for line in lines[1:]]
        return [f"  {lines[0]}", *body]
    if change.op == "added":
        return [f"+   {change.path}: {_value(change.new)}"]
    if change.op == "removed":
        return [f"-   {change.path}: {_value(change.old)}"]
    return [f"  {change.path}:", f"-     {_value(change.old)}", f"+     {_value(change.new)}"]


def _cluster_lines(cluster: ClusterDiff, full: bool) -> list[str]:
    lines: list[str] = []
    for obj in cluster.objects:
        if obj.status == "changed":
            lines.append(f"@@ ~ {obj.label}  [{obj.service}] changed @@")
        else:
            lines.append(f"{STATUS_MARK[obj.status]} {obj.label}  [{obj.service}] {obj.status}")
        if full:
            for change in obj.changes:
                lines += _md_change_lines(change)
            lines += [f"  note: {note}" for note in obj.notes]
    return lines


def _cluster_section(cluster: ClusterDiff, full: bool, result: DiffResult | None = None) -> str:
    if cluster.status == "added" and result is not None:  # a summary, not one "added" line per object
        lines = new_cluster_lines(result, cluster)
        body = "\n".join(f"- {_md(line.strip())}" if not line.startswith("  ") else f"  - `{_md(line.strip())}`"
                         for line in lines)
        return f"<details><summary><b>{_md(cluster.name)}</b> (added)</summary>\n\n{body}\n\n</details>\n"
    counts = ", ".join(f"{cluster.count(s)} {s}" for s in ("added", "changed", "removed") if cluster.count(s))
    summary = f"<b>{_md(cluster.name)}</b> ({cluster.status}: {counts or 'no object differs'})"
    body = _fence(_cluster_lines(cluster, full))
    note = "" if full else "\n_Field changes cut to fit; run the diff locally for them._\n"
    return f"<details><summary>{summary}</summary>\n\n{body}{note}\n</details>\n"


def sync_order_lines(result: DiffResult, room: int, max_chars: int = GITHUB_COMMENT_LIMIT) -> list[str]:
    """The comment's "Sync order" section: the Argo CD sync waves this change touches (Applications added, removed
    or moved to another wave), drawn before and after, in at most `room` characters. Each diagram draws only the
    clusters the change touches in each wave; a note counts the unchanged ones. Its locals are not grouped by the
    global they use: a DiffResult holds both sides' overlays/argocd/, not their specs, and an Application names
    only its own cluster (its destination), not the global. A diagram that does not fit is left out with a note
    (the one of the base first) suggesting a --max-chars that fits it; one Mermaid would refuse, with a note too;
    no section when no Application changes the order, or when not even the note fits."""
    order = result.sync_order
    marks = order.marks if order is not None else {}
    if order is None or not marks:
        return []
    waves = ", ".join(str(w) for w in order.waves)
    head = ["", f"**Sync order** (Argo CD sync wave{'s' if len(order.waves) > 1 else ''} {waves} of "
                "`overlays/argocd/`: + added, − removed, ~ moved to another wave)", ""]
    note_room = 400  # the notes below, both at their longest
    room -= len("\n".join(head)) + note_room
    if room < 0:
        return []
    titles = {"before": f"Before ({md_code(result.base_ref)}):", "after": "After (this branch):"}
    blocks: dict[str, str] = {}
    refused: list[str] = []  # too large for Mermaid
    for side in ("after", "before"):  # the new order matters most: it is kept when only one fits
        try:
            block = fenced(wave_chart(order.side(side), marks=marks, more_hint=SYNC_ORDER_MORE, only_marked=True))
        except TooLarge:
            refused.append(side)
            continue
        piece = len(titles[side]) + len(block) + 4
        if piece <= room:
            blocks[side] = block
            room -= piece
    out = list(head)
    for side in ("before", "after"):
        if side in blocks:
            out += [titles[side], "", blocks[side], ""]
    dropped = [side for side in ("before", "after") if side not in blocks and side not in refused]
    if dropped:
        out.append(f"_The {' and '.join(dropped)} diagram{'s' if len(dropped) > 1 else ''} left out to fit a GitHub "
                   f"comment ({max_chars:,} characters): run `python -m compiler diff --base "
                   f"{result.base_commit[:12]} --format markdown --max-chars {WHOLE_COMMENT_CHARS}` for "
                   f"{'them' if len(dropped) > 1 else 'it'} (or `--format json`: its \"waves\")._")
    if refused := [side for side in ("before", "after") if side in refused]:
        out.append(f"_The {' and '.join(refused)} diagram{'s are' if len(refused) > 1 else ' is'} too large for "
                   f"Mermaid: {SYNC_ORDER_MORE} (or `--format json`: its \"waves\")._")
    elif out[-1] == "":
        out.pop()
    return out


def format_markdown(result: DiffResult, max_chars: int = GITHUB_COMMENT_LIMIT) -> str:
    """A GitHub PR comment: the summary always, then per-cluster <details>, cut to stay under max_chars."""
    top = [
        f"### Rendered diff: {md_code(result.base_ref)} ({md_cell(result.base_commit[:12])}) → this branch",
        "",
        f"**{headline(result)}**",
    ]
    top += [line for w in result.warnings for line in ("", f"> **Warning:** {_md(w)}")]
    headers, rows = version_matrix(result)
    if rows:  # the comment starts with the `status` rows the change alters
        top += ["", "**Versions**", "", "| " + " | ".join(_md(h) for h in headers) + " |",
                "| --- |" + " --- |" * (len(headers) - 1)]
        top += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    removed_clusters = result.clusters_with("removed")
    if removed_clusters:
        top += [
            "",
            f"**Removed clusters (every object deleted):** {', '.join(_md(c) for c in removed_clusters)}",
        ]
    if images := grouped_images(_shown_images(result)):
        top += ["", "**Images**", "", "| image change | clusters |", "| --- | --- |"]
        top += [f"| {_md(text)} | {_md(', '.join(clusters))} |" for text, clusters in images]
    if result.applications:
        top += ["", "**Argo CD Applications** (`overlays/argocd/`)", "", _fence(application_lines(result)).rstrip()]
    sync_at = len(top)
    if result.argocd:
        top += ["", "**Argo CD sync waves and hooks**", ""]
        top += [f"- {_md(line)}" for line in argocd_lines(result)]
    services, columns = matrix_columns(result)
    if columns:
        top += ["", "**Services × clusters** (+ added, ~ changed, − removed, = unchanged)", ""]
        top.append("| service | " + " | ".join(_md(_column_title(m)) for m, _ in columns) + " |")
        top.append("| --- |" + " :---: |" * len(columns))
        for service in services:
            row = [f"{STATUS_MARK.get(s[service], '')} {s[service]}".strip() for _, s in columns]
            top.append(f"| {_md(service)} | " + " | ".join(row) + " |")
        grouped = [m for m, _ in columns if len(m) > 3]
        top += [""] + [f"- {_md(_column_title(m))}: {_md(', '.join(m))}" for m in grouped] if grouped else []
    unchanged = result.clusters_with("unchanged")
    if unchanged:
        top += ["", f"Unchanged clusters: {_md(', '.join(unchanged))}"]
    # Reserve room for the note about what was cut, so adding it never breaks the limit.
    budget = max_chars - 600
    room = min(budget - len("\n".join(top)) - 2, int(max_chars * SYNC_ORDER_SHARE))
    top[sync_at:sync_at] = sync_order_lines(result, room, max_chars)
    text = "\n".join(top) + "\n\n"
    cut_fields: list[str] = []
    cut_all: list[str] = []
    cut_objects = 0
    for cluster in result.clusters:
        if cluster.status == "unchanged":
            continue
        section = _cluster_section(cluster, full=True, result=result)
        if len(text) + len(section) > budget:
            section = _cluster_section(cluster, full=False)
            if len(text) + len(section) > budget:
                cut_all.append(cluster.name)
                cut_objects += len(cluster.objects)
                continue
            cut_fields.append(cluster.name)
        text += section
    if cut_fields or cut_all:
        parts = []
        if cut_fields:
            parts.append(f"field changes of {', '.join(_md(c) for c in cut_fields)}")
        if cut_all:
            parts.append(
                f"all details of {len(cut_all)} cluster(s) ({cut_objects} objects): {_md(', '.join(cut_all))}"[:400]
            )
        text += (
            f"\n**Cut to fit a GitHub comment ({max_chars:,} characters):** {'; '.join(parts)}. "
            f"Run `python -m compiler diff --base {result.base_commit[:12]}` for everything.\n"
        )
    return text


# --------------------------------------------------------------------------- json


def as_json_data(result: DiffResult) -> dict[str, Any]:
    """The documented JSON structure (see the module docstring)."""
    services, clusters, cells = result.matrix()

    def ident(cluster: str, key: ObjKey) -> dict[str, str]:
        return {"cluster": cluster, "kind": key[1], "namespace": key[2], "name": key[3]}

    data: dict[str, Any] = {
        "version": JSON_VERSION,
        "base": {"ref": result.base_ref, "commit": result.base_commit},
        "changed": result.changed,
        "summary": {
            "clusters": {s: result.clusters_with(s) for s in ("added", "removed", "changed", "unchanged")},
            "objects": {s: sum(c.count(s) for c in result.clusters) for s in ("added", "removed", "changed")},
        },
        "images": [
            {**ident(i.cluster, i.key), "container": i.container, "old": i.old, "new": i.new} for i in result.images
        ],
        "argocd": [
            {**ident(a.cluster, a.key), "annotation": a.annotation, "old": a.old, "new": a.new} for a in result.argocd
        ],
        "matrix": {"services": services, "clusters": clusters, "cells": cells},
        "clusters": [
            {
                "name": c.name,
                "status": c.status,
                "rendered": c.rendered,
                "unchanged_objects": c.unchanged_objects,
                "objects": [o.as_dict() for o in c.objects],
            }
            for c in result.clusters
        ],
    }
    if result.warnings:  # an added field: present only when there is something to say
        data["warnings"] = list(result.warnings)
    data["applications"] = [a.as_dict() for a in result.applications]
    order = result.sync_order  # the Applications added, removed or moved to another wave, on each side
    data["waves"] = {side: [a.as_dict() for a in order.moved(side)] if order is not None else []
                     for side in ("before", "after")}
    data["versions"] = [{"service": v.service, "cluster": v.cluster, "old": v.old, "new": v.new}
                        for v in result.versions]
    for entry, cluster in zip(data["clusters"], result.clusters, strict=True):
        if cluster.status == "added":
            entry["new_cluster"] = new_cluster_summary(result, cluster)
    return data


def format_json(result: DiffResult) -> str:
    return json.dumps(as_json_data(result), indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def format_result(result: DiffResult, fmt: str, *, color: bool = False, max_chars: int = GITHUB_COMMENT_LIMIT) -> str:
    if fmt == "json":
        return format_json(result)
    if fmt == "markdown":
        return format_markdown(result, max_chars)
    return format_text(result, color)
