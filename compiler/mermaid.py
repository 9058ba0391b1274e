"""Mermaid flowcharts: the one writer of every diagram the project emits (status, bootstrap, runbook, diff comment).

Callers build a `Flowchart` from the same structures their text and JSON outputs come from, then `render` it (the
diagram's source) or `fenced` it (a ```mermaid block GitHub draws in Markdown, pull-request comments and job
summaries included). Nodes are named by a caller's key (any string: a cluster, a resource "kind/name"); ids are
derived from keys, so the source is deterministic and never holds spec text outside a quoted, escaped label
(escape.mermaid_label). Edges to keys that are not nodes of the chart are refused, so a diagram cannot silently
draw a node Mermaid invents.

Mermaid refuses sources over 50,000 characters (UTF-16 code units, JavaScript's string length) and draws at most
500 edges by default; `render` refuses a chart over `MAX_NODES`, `MAX_EDGES` or `MAX_SOURCE` units, and callers
cut (with a note node saying what was left out) before that. A label (of a node, a group or an edge) longer than
`MAX_LABEL` characters is shortened to its first ones and "…" (`shorten`, on the text before it is escaped, so no
entity code is split): a hand-edited 60,000-character value cannot make a diagram unreadable or too large.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from compiler.escape import md_fence, mermaid_label

MAX_NODES = 300
MAX_EDGES = 450
MAX_SOURCE = 50_000  # UTF-16 code units: Mermaid's maxTextSize, over which it draws an error box instead
MAX_LABEL = 160  # characters of a label's text; a longer one is cut, ending in "…"
ELLIPSIS = "…"

Direction = Literal["TD", "LR"]
Shape = Literal["box", "round", "stadium", "note"]

_SHAPES: dict[str, tuple[str, str]] = {"box": ("[", "]"), "round": ("(", ")"), "stadium": ("([", "])"),
                                       "note": ("[/", "/]")}
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_]")


class TooLarge(ValueError):
    """A chart Mermaid would refuse or draw unreadably: the caller cuts it first."""


@dataclass(frozen=True)
class Node:
    key: str
    label: str
    style: str | None = None  # a class of Flowchart.styles
    shape: Shape = "box"


@dataclass(frozen=True)
class Edge:
    source: str  # node keys
    target: str
    label: str | None = None
    dotted: bool = False


@dataclass
class Group:
    """A subgraph: a titled box around nodes and groups."""
    key: str
    label: str
    nodes: list[Node] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    direction: Direction | None = None


@dataclass
class Flowchart:
    direction: Direction = "TD"
    nodes: list[Node] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    styles: dict[str, str] = field(default_factory=dict)  # class name → Mermaid style (ours, never spec text)

    def all_nodes(self) -> Iterator[Node]:
        yield from self.nodes
        stack = list(reversed(self.groups))
        while stack:
            group = stack.pop()
            yield from group.nodes
            stack.extend(reversed(group.groups))


class _Ids:
    """Key → Mermaid id: the key's safe characters (readable sources), made unique by a counter."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.ids: dict[str, str] = {}
        self.used: set[str] = set()

    def __call__(self, key: str) -> str:
        if key not in self.ids:
            base = f"{self.prefix}_{_UNSAFE_ID.sub('_', key)[:60]}"
            candidate, n = base, 1
            while candidate in self.used:
                n += 1
                candidate = f"{base}_{n}"
            self.used.add(candidate)
            self.ids[key] = candidate
        return self.ids[key]


def shorten(text: str, limit: int = MAX_LABEL) -> str:
    """`text`, or its first `limit - 1` characters and "…" when it is longer than `limit`."""
    return text if len(text) <= limit else text[:limit - 1] + ELLIPSIS


def _label(text: str) -> str:
    """A label as it goes between the quotes of the source: shortened, then escaped."""
    return mermaid_label(shorten(text))


def source_length(source: str) -> int:
    """The length Mermaid measures a source by: UTF-16 code units (a character outside the BMP counts 2)."""
    return len(source.encode("utf-16-le")) // 2


def _all_groups(chart: Flowchart) -> Iterator[Group]:
    stack = list(reversed(chart.groups))
    while stack:
        group = stack.pop()
        yield group
        stack.extend(reversed(group.groups))


def _repeated(keys: list[str]) -> list[str]:
    return sorted(k for k, n in Counter(keys).items() if n > 1)


def render(chart: Flowchart) -> str:
    """The chart's Mermaid source (no fence), ending in a newline."""
    nodes = list(chart.all_nodes())
    if len(nodes) > MAX_NODES or len(chart.edges) > MAX_EDGES:
        raise TooLarge(f"{len(nodes)} nodes and {len(chart.edges)} edges: at most {MAX_NODES} and {MAX_EDGES}")
    node_id, group_id = _Ids("n"), _Ids("g")
    keys = [n.key for n in nodes]
    if repeated := _repeated(keys):
        raise ValueError(f"node keys repeat: {repeated}")
    if repeated := _repeated([g.key for g in _all_groups(chart)]):
        raise ValueError(f"group keys repeat: {repeated}")
    lines = [f"flowchart {chart.direction}"]

    def node_line(node: Node, indent: str) -> str:
        opening, closing = _SHAPES[node.shape]
        style = f":::{node.style}" if node.style else ""
        if node.style and node.style not in chart.styles:
            raise ValueError(f"node {node.key!r} has style {node.style!r}, which the chart does not define")
        return f'{indent}{node_id(node.key)}{opening}"{_label(node.label)}"{closing}{style}'

    def group_lines(group: Group, depth: int) -> None:
        indent = "  " * depth
        lines.append(f'{indent}subgraph {group_id(group.key)} ["{_label(group.label)}"]')
        if group.direction:
            lines.append(f"{indent}  direction {group.direction}")
        lines.extend(node_line(n, indent + "  ") for n in group.nodes)
        for inner in group.groups:
            group_lines(inner, depth + 1)
        lines.append(f"{indent}end")

    lines.extend(node_line(n, "  ") for n in chart.nodes)
    for group in chart.groups:
        group_lines(group, 1)
    known = set(keys)
    for edge in chart.edges:
        for key in (edge.source, edge.target):
            if key not in known:
                raise ValueError(f"edge {edge.source!r} → {edge.target!r}: {key!r} is not a node of the chart")
        arrow = "-.->" if edge.dotted else "-->"
        label = f'|"{_label(edge.label)}"|' if edge.label else ""
        lines.append(f"  {node_id(edge.source)} {arrow}{label} {node_id(edge.target)}")
    lines.extend(f"  classDef {name} {css}" for name, css in sorted(chart.styles.items()))
    source = "\n".join(lines) + "\n"
    if (length := source_length(source)) > MAX_SOURCE:
        raise TooLarge(f"{length} UTF-16 code units of Mermaid: at most {MAX_SOURCE}")
    return source


def fenced(chart: Flowchart) -> str:
    """The chart as a ```mermaid Markdown block (no trailing newline)."""
    return md_fence(render(chart).rstrip("\n").split("\n"), "mermaid")
