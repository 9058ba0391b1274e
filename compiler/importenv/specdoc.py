"""A spec written for people: an ordered tree of keys with comments, rendered to YAML text.

The same tree gives the plain data (what the loader will read back) and, per key, where its value came
from in another file (so validation problems can point there). Scalars are written plain when YAML reads
them back unchanged, else JSON-quoted (JSON strings are YAML).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from compiler.spec.schema import MODELINE
from compiler.spec.yamlio import Loc, load_yaml12, yaml_load

Scalar = str | int | float | bool | None
TODO = "TODO(import)"
_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./@+-]*(:[A-Za-z0-9_./@+-]+)*")
_WIDTH = 110


@dataclass(frozen=True)
class Origin:
    """Where a value came from: a line and column of a source file, and the variable set there."""

    line: int
    col: int
    name: str


@dataclass
class Flow:
    """A small mapping or list written on one line: {min: 1, max: 3}, [a, b]."""

    data: Any


@dataclass
class Commented:
    """Lines written as comments only (a section to fill in later); no data."""

    lines: list[str]


@dataclass
class Entry:
    key: str
    value: Node
    origin: Origin | None = None
    comment: str = ""  # at the end of the line
    above: list[str] = field(default_factory=list)  # comment lines above the key
    todo: str = ""  # a TODO(import) comment above the key: a value a person must decide


@dataclass
class Block:
    entries: list[Entry] = field(default_factory=list)

    def add(self, key: str, value: Node, origin: Origin | None = None, *, comment: str = "",
            above: list[str] | None = None, todo: str = "") -> Entry:
        entry = Entry(key, value, origin, comment, list(above or []), todo)
        self.entries.append(entry)
        return entry

    def get(self, key: str) -> Entry | None:
        return next((e for e in self.entries if e.key == key and not isinstance(e.value, Commented)), None)


@dataclass
class Items:
    """A block sequence; each item is a one-line Flow or a Block."""

    items: list[Flow | Block]


Node = Scalar | Flow | Block | Items | Commented


# --------------------------------------------------------------------------- scalars


def _reads_back(text: str, value: str) -> bool:
    try:
        return bool(yaml_load(text) == value and load_yaml12(text) == value)
    except Exception:  # any parse failure means "quote it"
        return False


def scalar(value: Scalar, *, in_flow: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    plain = _PLAIN.fullmatch(value) is not None and not (in_flow and ":" in value)
    if plain and _reads_back(value, value):
        return value
    return json.dumps(value, ensure_ascii=False)


def flow(data: Any) -> str:
    if isinstance(data, dict):
        return "{" + ", ".join(f"{scalar(str(k), in_flow=True)}: {flow(v)}" for k, v in data.items()) + "}"
    if isinstance(data, list | tuple):
        return "[" + ", ".join(flow(v) for v in data) + "]"
    return scalar(data, in_flow=True)


# --------------------------------------------------------------------------- rendering


@dataclass
class Rendered:
    text: str
    lines: dict[int, tuple[str, Entry]]  # 1-based line -> (dotted path, entry) of every key and commented section


def _comment_lines(indent: str, text: str) -> list[str]:
    """`text` as `# ...` lines of at most _WIDTH characters."""
    out: list[str] = []
    current = f"{indent}#"
    for word in text.split(" "):
        if len(current) + 1 + len(word) > _WIDTH and current.strip() != "#":
            out.append(current)
            current = f"{indent}#  "
        current += " " + word
    out.append(current)
    return out


def _unfold(data: dict[str, Any]) -> Block:
    """A mapping too long for one line, one key per line."""
    return Block([Entry(str(k), Flow(v) if isinstance(v, dict | list) else v) for k, v in data.items()])


def render(block: Block, header: list[str]) -> Rendered:
    lines: list[str] = [MODELINE] + [f"# {h}" if h else "#" for h in header]  # MODELINE: editors' schema
    where: dict[int, tuple[str, Entry]] = {}

    def emit(entries: list[Entry], indent: str, path: str, first_prefix: str | None = None) -> None:
        for k, e in enumerate(entries):
            prefix = first_prefix if (first_prefix is not None and k == 0) else indent
            dotted = f"{path}.{e.key}" if path else e.key
            for text in e.above:
                lines.extend(_comment_lines(indent, text))
            where[len(lines) + 1] = (dotted, e)  # the TODO comment, else the key itself
            if e.todo:
                lines.extend(_comment_lines(indent, f"{TODO}: {e.todo}"))
            if isinstance(e.value, Commented):
                lines.extend(f"{indent}# {text}".rstrip() for text in e.value.lines)
                continue
            head = f"{prefix}{scalar(e.key)}:"
            value = e.value
            if isinstance(value, Flow) and isinstance(value.data, dict) and value.data \
                    and len(f"{head} {flow(value.data)}") > _WIDTH:
                value = _unfold(value.data)
            if isinstance(value, Block):
                lines.append(_with_comment(head, e.comment))
                emit(value.entries, indent + "  ", dotted)
            elif isinstance(value, Items):
                lines.append(_with_comment(head, e.comment))
                # one line per item when every item fits, else every mapping unfolded: alike items look alike
                fits = all(isinstance(i, Flow) and len(f"{indent}  - {flow(i.data)}") <= _WIDTH for i in value.items)
                for i, item in enumerate(value.items):
                    if isinstance(item, Flow) and (fits or not isinstance(item.data, dict)):
                        lines.append(f"{indent}  - {flow(item.data)}")
                    else:
                        body = item if isinstance(item, Block) else _unfold(item.data)
                        emit(body.entries, indent + "    ", f"{dotted}[{i}]", first_prefix=f"{indent}  - ")
            elif isinstance(value, Flow):
                lines.append(_with_comment(f"{head} {flow(value.data)}", e.comment))
            else:
                lines.append(_with_comment(f"{head} {scalar(value)}", e.comment))

    emit(block.entries, "", "")
    return Rendered("\n".join(lines) + "\n", where)


def _with_comment(line: str, comment: str) -> str:
    if not comment:
        return line
    return f"{line}  # {comment}"


# --------------------------------------------------------------------------- data and positions


def plain(node: Node) -> Any:
    """The data YAML would load from the rendered node."""
    if isinstance(node, Block):
        return {e.key: plain(e.value) for e in node.entries if not isinstance(e.value, Commented)}
    if isinstance(node, Items):
        return [plain(i) for i in node.items]
    if isinstance(node, Flow):
        return json.loads(json.dumps(node.data))
    return node


def origins(block: Block, loc: Loc = ()) -> dict[Loc, Origin]:
    """The origin of every key that has one, by its location in the data."""
    out: dict[Loc, Origin] = {}
    for e in block.entries:
        if isinstance(e.value, Commented):
            continue
        here = (*loc, e.key)
        if e.origin is not None:
            out[here] = e.origin
        if isinstance(e.value, Block):
            out.update(origins(e.value, here))
        elif isinstance(e.value, Items):
            for i, item in enumerate(e.value.items):
                if isinstance(item, Block):
                    out.update(origins(item, (*here, i)))
    return out
