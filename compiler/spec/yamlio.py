"""YAML in and out: specs loaded with positions (ruamel.yaml), generated files dumped deterministically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml as yaml_c
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from compiler.errors import Problem

Loc = tuple[str | int, ...]


class _Dumper(getattr(yaml_c, "CSafeDumper", yaml_c.SafeDumper)):  # type: ignore[misc]
    """libyaml's emitter; multi-line strings (embedded config files, Lua) as readable literal blocks."""


def _str(dumper: yaml_c.SafeDumper, data: str) -> yaml_c.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)
_Loader = getattr(yaml_c, "CSafeLoader", yaml_c.SafeLoader)


def _safe_yaml() -> YAML:
    # typ="safe" uses libyaml through ruamel.yaml.clib when it is installed (~10x faster than the pure parser,
    # which matters for a fleet of 100 specs); marks (line/column) are kept either way.
    yaml = YAML(typ="safe")
    yaml.allow_duplicate_keys = True  # duplicates are reported, all of them, by _index instead
    return yaml


class Document:
    """A loaded YAML file: its plain data and where each key and value sits in the file."""

    def __init__(self, path: str, data: Any, positions: dict[Loc, tuple[int, int, int, int]]) -> None:
        self.path = path
        self.data = data
        self._positions = positions  # loc -> (key line, key col, value line, value col), 1-based

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based line and column of the value at `loc` (or of its key), else of its nearest parent."""
        for n in range(len(loc), 0, -1):
            pos = self._positions.get(loc[:n])
            if pos is not None:
                return (pos[0], pos[1]) if key and n == len(loc) else (pos[2], pos[3])
        return 1, 1

    def problem(self, loc: Loc, message: str = "", *, key: bool = False) -> Problem:
        line, col = self.position(loc, key=key)
        return Problem(self.path, line, col, message)


def _index(yaml: YAML, node: Node, loc: Loc, path: str, positions: dict[Loc, tuple[int, int, int, int]],
           problems: list[Problem]) -> None:
    """Record the position of every key and value under `node`, and report duplicate keys."""
    if isinstance(node, MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = yaml.constructor.construct_object(key_node, deep=True)
            km, vm = key_node.start_mark, value_node.start_mark
            if not isinstance(key, str | int | float | bool) and key is not None:
                key = str(key)
            if key in seen:
                problems.append(Problem(path, km.line + 1, km.column + 1,
                                        f"duplicate key {key!r} (first defined on line {seen[key]}; "
                                        "keep one of them)"))
                continue
            seen[key] = km.line + 1
            child = (*loc, key)
            positions[child] = (km.line + 1, km.column + 1, vm.line + 1, vm.column + 1)
            _index(yaml, value_node, child, path, positions, problems)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            m = item.start_mark
            positions[(*loc, i)] = (m.line + 1, m.column + 1, m.line + 1, m.column + 1)
            _index(yaml, item, (*loc, i), path, positions, problems)


def load_document(file: Path, display: str) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML file; syntax errors and duplicate keys come back as problems."""
    text = file.read_text(encoding="utf-8")
    yaml = _safe_yaml()
    try:
        node = yaml.compose(text)
        if node is None:
            return Document(display, None, {}), []
        data = yaml.constructor.construct_document(node)
        problems: list[Problem] = []
        positions: dict[Loc, tuple[int, int, int, int]] = {}
        _index(yaml, node, (), display, positions, problems)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = err.problem or err.context or "invalid YAML"
        return None, [Problem(display, line, col, f"YAML syntax error: {what} (fix the YAML syntax here)")]
    return Document(display, data, positions), problems


def to_plain(value: Any) -> Any:
    """ruamel round-trip types → plain Python (dict, list, str, int, float, bool, None)."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def dump_yaml(data: Any) -> str:
    """Deterministic block-style YAML for generated files (keys in the order given).

    PyYAML's libyaml emitter: generating ~5,000 files for a 100-cluster fleet must stay well under a second.
    """
    return yaml_c.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096,
                       allow_unicode=True)


def yaml_load(text: str) -> Any:
    """Plain data from YAML text the compiler itself rendered (patch templates)."""
    return yaml_c.load(text, Loader=_Loader)
