"""The state of one import: the env file's variables, what happened to each, and the problems found.

`Mapper` is what every section builder (compiler/importenv/sections/) and service builder
(compiler/importenv/services/) works on: it reads a variable and marks where it went in the spec (`text`,
`number`, `required`, `convert`), records problems at the variable's line (`fail`) and report lines (`note`),
and TODO(import) decisions on the spec entries (`decision`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.errors import Problem
from compiler.importenv import values as envvalues
from compiler.importenv.catalogue import SECRET_VARIABLES, Kind
from compiler.importenv.envfile import Computed, EnvFile, Var
from compiler.importenv.report import Line, Section
from compiler.importenv.specdoc import Block, Entry, Origin
from compiler.spec.yamlio import read_text

NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 36


@dataclass(frozen=True)
class Skip:
    """Why a service cannot be written; soft: leave it out with a TODO even when it runs today."""

    reason: str
    soft: bool = False
    todo: str = ""


# A service's own settings beyond enabled, version and replicas: (mapper, its block, its workloads' block,
# enabled) → why it cannot be written, or None.
ServiceBuilder = Callable[["Mapper", Block, Block, bool], Skip | None]


@dataclass
class Context:
    """What the repository already holds: global hostnames and Cloud DNS zones of the existing specs."""

    global_hosts: dict[str, str] = field(default_factory=dict)  # hostname -> global cluster
    zones: dict[str, tuple[str, str]] = field(default_factory=dict)  # zone -> (DNS name, cluster)
    # DNS name -> (zone, cluster, project) of the spec whose bootstrap creates that zone (one per DNS name)
    owners: dict[str, tuple[str, str, str]] = field(default_factory=dict)


class Mapper:
    """Builds the spec tree from the env file's variables and records what happened to each variable."""

    def __init__(self, env: EnvFile, kind: Kind, name_override: str | None, context: Context,
                 env_dir: Path, gitops: bool = False) -> None:
        self.env = env
        self.kind = kind
        self.display = env.display
        self.name_override = name_override
        self.context = context
        self.env_dir = env_dir
        self.gitops = gitops  # the repository has a gitops.yaml: build needs a destination and a static IP
        self.used: dict[str, str] = {}  # variable -> where it went in the spec
        self.reported: set[str] = set()  # variables already reported in a section other than "mapped"
        self.lines: list[Line] = []
        self.problems: list[Problem] = []
        self.name = ""
        self.domain = ""
        self.primary = ""
        self.current = Entry("", None)  # the service being written (for its TODOs)
        self.graph_ids: list[str] = []
        self.mat_stacks: list[str] = []
        self.stacks_used: list[tuple[str, str]] = []  # (datastack, the service using it)

    # ------------------------------------------------------------------ variables

    def var(self, name: str) -> Var | None:
        return self.env.get(name)

    def origin(self, var: Var | None) -> Origin | None:
        if var is None or var.origin != "file" or not var.line:
            return None
        return Origin(var.line, var.col, var.name)

    def where(self, var: Var | None) -> str:
        if var is None:
            return self.display
        if var.origin == "file":
            return f"{self.display}:{var.line}"
        return f"{self.display}:{var.lines[-1]}" if var.lines else var.origin  # set again after the file

    def fail(self, var: Var | None, message: str) -> None:
        line, col = (var.line, var.col) if var is not None and var.origin == "file" else (1, 1)
        self.problems.append(Problem(self.display, line, col, message))

    def text(self, name: str, to: str) -> str | None:
        """The variable's plain text, marked as mapped to `to`; None when unset or computed."""
        var = self.var(name)
        if var is None:
            return None
        secret = sorted(var.refs & SECRET_VARIABLES)
        if secret and name not in SECRET_VARIABLES:
            self.fail(var, f"{name} is built from the secret variable {secret[0]}: import-env never copies a "
                           f"secret value into a spec (set {name} to a plain value)")
            return None
        value = var.text()
        if value is None:
            return None
        self.map_to(name, to)
        return value.strip()

    def map_to(self, name: str, to: str) -> None:
        if not to:
            return
        before = self.used.get(name)
        if before is None or before.endswith(" (enabled: false)"):
            self.used[name] = to
        elif to not in before.split(", "):
            self.used[name] = f"{before}, {to}"

    def peek(self, name: str) -> int:
        """A switch's value (0 when unset or not a number), without marking it as mapped."""
        var = self.var(name)
        try:
            return int((var.text() if var else None) or 0)
        except ValueError:
            return 0

    def required(self, name: str, to: str) -> str:
        var = self.var(name)
        value = self.text(name, to)
        if var is not None and isinstance(var.value, Computed):
            self.fail(var, f"{name} is computed by `{var.value.command}` when the file is sourced: import-env "
                           f"does not run it (set {name} to its value)")
        elif not value:
            self.fail(var, f"missing required variable {name} (add `export {name}=...`; it sets {to})"
                      if var is None else f"{name} is empty (set it: it becomes {to})")
        return value or ""

    def number(self, name: str, to: str) -> int | None:
        value = self.text(name, to)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            self.fail(self.var(name), f"{name} must be a whole number (it sets {to})")
            return None

    def convert(self, name: str, to: str, fn: Callable[[str], Any]) -> Any:
        value = self.text(name, to)
        if value is None:
            return None
        try:
            return fn(value)
        except envvalues.ConvertError as err:
            self.fail(self.var(name), f"{name}: {err.reason} (fix the value; it sets {to})")
            return None

    def note(self, section: Section, var: Var | None, what: str) -> None:
        self.lines.append(Line(section, self.where(var), what))

    def decision(self, entry: Entry, text: str) -> None:
        entry.todo = f"{entry.todo} {text}".strip() if entry.todo else text

    # ------------------------------------------------------------------ shared by several sections

    def items(self, name: str, to: str) -> list[str]:
        var = self.var(name)
        if var is None or isinstance(var.value, Computed):
            return []
        self.used[name] = to
        values = var.value if isinstance(var.value, tuple) else tuple(var.value.split())
        return [v.strip() for v in values]

    def file_content(self, var: Var, to: str) -> tuple[Path, str] | None:
        """The text of the file a `$(cat FILE)` value reads, relative to the env file (or absolute)."""
        if not isinstance(var.value, Computed):
            text = var.text()
            return (Path(self.display), text) if text and text.strip() else None  # inlined by hand
        if var.value.how != "file" or not var.value.path:
            self.note("file", var, f"{var.name}: computed by `{var.value.command}`, not a file read; fill in {to}")
            self.reported.add(var.name)
            return None
        raw = os.path.expanduser(var.value.path)
        candidates = [Path(raw)] if os.path.isabs(raw) else [self.env_dir / raw, self.env_dir / Path(raw).name]
        for path in candidates:
            if path.exists():  # a directory, FIFO or device is refused before reading; so is a large or binary file
                return path, read_text(path, str(path), what=f"the file {var.name} reads ({self.display}:{var.line})")
        self.note("file", var, f"{var.name}: {raw} not found beside the env file; fill in {to}")
        self.reported.add(var.name)
        return None

    def zone(self) -> str:
        return (v.text() if (v := self.var("ZONE")) else None) or "ZONE"


def strip_gs(value: str) -> str:
    return value.removeprefix("gs://").rstrip("/")
