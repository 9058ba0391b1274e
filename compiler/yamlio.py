"""YAML in and out: loading with positions (ruamel round-trip), deterministic dumping."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from compiler.errors import Problem

Loc = tuple[str | int, ...]


def _rt_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True  # duplicates are found (all of them) by _duplicate_keys instead
    yaml.preserve_quotes = True
    return yaml


class Document:
    """A loaded YAML file: its round-trip data and a way to find where a value sits."""

    def __init__(self, path: str, data: Any) -> None:
        self.path = path
        self.data = data

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based line and column of the value at `loc` (or of its key), else of its nearest parent."""
        node: Any = self.data
        line, col = 1, 1
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(node, CommentedMap) and part in node:
                if key and last:
                    kl, kc = node.lc.key(part)
                else:
                    kl, kc = node.lc.value(part)
                line, col = kl + 1, kc + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                il, ic = node.lc.item(part)
                line, col = il + 1, ic + 1
                node = node[part]
            else:
                break
        return line, col

    def problem(self, loc: Loc, message: str = "", *, key: bool = False) -> Problem:
        line, col = self.position(loc, key=key)
        return Problem(self.path, line, col, message)


def _duplicate_keys(node: Node, path: str) -> Iterator[Problem]:
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            k = str(key_node.value)
            mark = key_node.start_mark
            if k in seen:
                yield Problem(
                    path,
                    mark.line + 1,
                    mark.column + 1,
                    f"duplicate key {k!r} (first defined on line {seen[k]}; keep one of them)",
                )
            else:
                seen[k] = mark.line + 1
            yield from _duplicate_keys(value_node, path)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item, path)


def load_document(file: Path, display: str) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML file; syntax errors and duplicate keys come back as problems."""
    text = file.read_text(encoding="utf-8")
    yaml = _rt_yaml()
    try:
        node = yaml.compose(text)
        problems = list(_duplicate_keys(node, display)) if node is not None else []
        data = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = err.problem or err.context or "invalid YAML"
        return None, [Problem(display, line, col, f"YAML syntax error: {what} (fix the YAML syntax here)")]
    return Document(display, data), problems


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
    """Deterministic block-style YAML for generated files (keys in the order given)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=2, offset=0)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def dump_all_yaml(docs: list[Any]) -> str:
    return "---\n".join(dump_yaml(d) for d in docs)


def roundtrip_yaml() -> YAML:
    """A ruamel instance that rewrites a spec in place keeping comments, order and quoting."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml
