"""Plan and apply reports: text for people, JSON (a stable, documented shape) for scripts.

JSON shape (`bootstrap --format json`):

    {"cluster": "minnie", "kind": "local", "project": "cave-demo-minnie",
     "mode": "plan" | "offline" | "apply",
     "ok": true when every resource exists as specified (and apply did not stop),
     "counts": {"exists": 20, "missing": 3, ...},
     "created": ["kind/name", ...], "failed": "kind/name" | null, "remaining": ["kind/name", ...],
     "notes": [str, ...] (the closing lines of the text report: what needs the operator, what to run next),
     "resources": [{"key": "kind/name", "kind", "name", "project", "data": bool (never deleted or shrunk),
                    "status": "exists" | "missing" | "differs" | "offline" | "needs-operator" | "error",
                    "action": str, "depends": [keys], "fields": {...}, "observed": {...} | null,
                    "differences": [{"field", "want", "have"}], "message": str,
                    "note": str (how to add an operator's value, or what the resource is for; the text
                    report's offline lines)}]}

References to values not known yet (the static IP in a DNS record) appear as "<address of address/daf-x>".
No secret value is ever part of a report: secrets appear by name, with the number of versions.
"""

from __future__ import annotations

import json
from typing import Any

from compiler.bootstrap.engine import Outcome, Row, display
from compiler.spec.model import ClusterSpec

MARK = {"exists": "ok", "missing": "missing", "differs": "DIFFERS", "offline": "planned",
        "needs-operator": "OPERATOR", "error": "ERROR"}


def _fields(values: Any) -> str:
    shown = display(values)
    return ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in shown.items())


def _row_lines(row: Row, offline: bool) -> list[str]:
    r = row.resource
    head = f"  {MARK[row.status]:<9} {r.key}"
    if offline:
        lines = [head]
        if r.fields:
            lines.append(f"              {_fields(r.fields)}")
        if _note(row):
            lines.append(f"              {_note(row)}")
        return lines
    lines = [head + ("" if row.action == "none" else f"  → {row.action}")]
    lines += [f"              {d.field}: spec {json.dumps(display(d.want))}, actual {json.dumps(d.have)}"
              for d in row.differences]
    if row.message:
        lines.append(f"              {row.message}")
    return lines


def format_text(spec: ClusterSpec, outcome: Outcome, mode: str) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in outcome.counts().items())
    title = {"plan": "bootstrap plan", "offline": "bootstrap plan (offline: nothing looked up)",
             "apply": "bootstrap apply"}[mode]
    lines = [f"{title} for {spec.name} ({spec.kind}, project {spec.gcp.project}): "
             f"{len(outcome.rows)} resources: {counts}"]
    for row in outcome.rows:
        lines += _row_lines(row, mode == "offline")
    if mode == "apply":
        lines.append(f"created {len(outcome.created)}: {', '.join(outcome.created) or 'nothing'}")
    lines += notes(outcome, mode)
    return "\n".join(lines) + "\n"


def notes(outcome: Outcome, mode: str) -> list[str]:
    """The operator notes closing a report (text and JSON)."""
    out = []
    if mode == "apply" and outcome.failed:
        out.append(f"stopped at {outcome.failed}; {len(outcome.remaining)} not attempted "
                   f"({', '.join(outcome.remaining[:5])}{', ...' if len(outcome.remaining) > 5 else ''}); "
                   "fix the error and run `bootstrap --apply` again: it resumes where it stopped")
    operator = [row for row in outcome.rows if row.status == "needs-operator"]
    if operator:
        out.append(f"{len(operator)} need the operator (see the lines marked OPERATOR)")
    differs = [row for row in outcome.rows if row.status == "differs"]
    if differs:
        out.append(f"{len(differs)} differ from the spec: bootstrap never changes an existing resource; "
                   "update the spec or the resource by hand")
    disabled = [row for row in outcome.rows if row.resource.kind == "api" and row.status == "missing"]
    if disabled:
        out.append(f"{len(disabled)} Google APIs are disabled; --apply enables them first (Service Usage API), "
                   "then creates the rest")
    if mode == "plan" and not outcome.ok:
        out.append("run with --apply to create what is missing")
    return out


def _note(row: Row) -> str:
    """The operator's note of one resource: how to add an operator's value, or what the resource is for."""
    return str(row.resource.params.get("hint") or row.resource.note)


def as_json_data(spec: ClusterSpec, outcome: Outcome, mode: str) -> dict[str, Any]:
    return {
        "cluster": spec.name, "kind": spec.kind, "project": spec.gcp.project, "mode": mode,
        "ok": outcome.ok if mode != "offline" else None,
        "counts": outcome.counts(), "created": outcome.created, "failed": outcome.failed,
        "remaining": outcome.remaining, "notes": notes(outcome, mode),
        "resources": [{
            "key": row.resource.key, "kind": row.resource.kind, "name": row.resource.name,
            "project": row.resource.project, "owner": row.resource.owner, "data": row.resource.data,
            "status": row.status,
            "action": row.action, "depends": list(row.resource.depends),
            "fields": display(dict(row.resource.fields)), "observed": row.observed,
            "differences": [{"field": d.field, "want": display(d.want), "have": d.have} for d in row.differences],
            "message": row.message, "note": _note(row),
        } for row in outcome.rows],
    }


def format_json(spec: ClusterSpec, outcome: Outcome, mode: str) -> str:
    return json.dumps(as_json_data(spec, outcome, mode), indent=2, sort_keys=True, default=str) + "\n"
