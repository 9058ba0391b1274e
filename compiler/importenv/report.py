"""What import-env reports: every variable of the env file in one section (mapped, derived, secret, live
look-up, file read, unused, unknown, shell code, assumption, decision), with the line that set it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from compiler.importenv.catalogue import Kind

Section = Literal["mapped", "derived", "secret", "live", "file", "unused", "unknown", "shell", "decision",
                  "assumption"]
SECTION_TITLES: dict[Section, str] = {
    "mapped": "mapped to the spec",
    "derived": "derived by the compiler or bootstrap (not copied)",
    "secret": "secrets (Secret Manager names only; no value was read into the spec)",
    "live": "live look-ups (bootstrap resolves them; not copied)",
    "file": "files read",
    "unused": "unused (CAVEdeployment variables without effect)",
    "unknown": "unknown (not CAVEdeployment variables; not imported)",
    "shell": "shell code not evaluated (import-env runs nothing)",
    "assumption": "assumed (the env file does not say; check)",
    "decision": "needs a person's decision (marked TODO(import) in the spec)",
}


@dataclass(frozen=True)
class Line:
    section: Section
    where: str  # "file.sh:12", "defaults.sh", "environments/x.yaml:40"
    what: str


@dataclass
class Result:
    name: str
    kind: Kind
    text: str
    target: Path | None  # None: printed to stdout
    lines: list[Line]

    def report(self) -> str:
        out = []
        for section, title in SECTION_TITLES.items():
            items = sorted((ln for ln in self.lines if ln.section == section), key=_by_place)
            if not items:
                continue
            out.append(f"{title} ({len(items)}):")
            width = max(len(ln.where) for ln in items)
            out.extend(f"  {ln.where:<{width}}  {ln.what}" for ln in items)
        return "\n".join(out)


def _by_place(line: Line) -> tuple[str, int]:
    path, _, number = line.where.rpartition(":")
    return (path, int(number)) if number.isdigit() else (line.where, 0)

