"""YAML in and out, the one place the compiler parses or writes YAML.

- specs: `load_document` (ruamel.yaml, libyaml-backed, with the line and column of every key and value);
- Kubernetes manifests (rendered output, CRD files, kustomizations): `load_manifests` / `load_manifest`, libyaml
  (a rendered fleet is megabytes of multi-document YAML), timestamps kept as strings as Kubernetes does;
- YAML the compiler itself wrote: `yaml_load` (libyaml);
- YAML a person wrote outside a spec (an imported env file's table map): `load_plain`, the pure-Python parser,
  whose syntax errors say what it expected and found;
- how a YAML 1.2 reader sees a scalar: `load_yaml12`;
- generated files: `dump_yaml`, deterministic block style through libyaml's emitter.

The PyYAML-based readers raise `YAMLError`; `load_document` reports problems instead.

A person's file is read by `read_text`: a regular file (a FIFO or device is refused before it is read) of at most
MAX_FILE_BYTES, UTF-8, without control characters. `load_document` then bounds what it composes: nesting at most
MAX_DEPTH deep, at most MAX_ALIASES aliases, no alias inside its own value, at most MAX_NODES values once aliases
are expanded. libyaml's composer recurses on the C stack (30,000 levels crash the interpreter), so a text nested
deeper than _C_SAFE_DEPTH (`_too_deep_for_c`: a cheap bound, then libyaml's event parser, which does not recurse)
goes to ruamel's pure-Python composer instead, which stops at MAX_DEPTH.
"""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml as yaml_c
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from compiler import fingerprint
from compiler.cache import ParsedCache, json_exact
from compiler.errors import Problem, UserError

Loc = tuple[str | int, ...]


class _Dumper(getattr(yaml_c, "CSafeDumper", yaml_c.SafeDumper)):  # type: ignore[misc]
    """libyaml's emitter; multi-line strings (embedded config files, Lua) as readable literal blocks."""


def _str(dumper: yaml_c.SafeDumper, data: str) -> yaml_c.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)
_Loader = getattr(yaml_c, "CSafeLoader", yaml_c.SafeLoader)
YAMLError = yaml_c.YAMLError


class _ManifestLoader(_Loader):  # type: ignore[misc,valid-type]
    """libyaml's safe loader reading as Kubernetes does: timestamps stay strings, a bare `=` is the string "="."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}
# A bare `=` is the YAML 1.1 "value" tag; Kubernetes reads it as the string "=".
_ManifestLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: str(node.value))
_YAML12 = YAML(typ="safe")


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
            if isinstance(key, list):  # a complex key: the document's data holds it as a tuple
                key = tuple(tuple(k) if isinstance(k, list) else k for k in key)
            try:
                hash(key)
            except TypeError:
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


# Limits of what a person's YAML (a spec, gitops.yaml) or an imported env file may be; real ones are far below them
# (a spec: ~6 KB, nesting depth < 10, no aliases).
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 100_000  # values after expanding aliases
# Nesting the C composer may take safely (it recurses on the C stack: 30,000 levels crash the interpreter).
_C_SAFE_DEPTH = 1000
_BLOCK_PREFIX_RE = re.compile(r"^[ ?:-]*", re.M)
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels, the limit (flatten it; an alias counts as the value it names)"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def read_text(file: Path, display: str, *, what: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`; UserError (one line, with the place) otherwise.

    FIFOs and devices are refused before anything is read (opened non-blocking, then checked), so `/dev/zero`
    or a named pipe cannot exhaust memory or hang; `what` names the file in messages ("a cluster spec").
    """
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UserError(f"{display}: no such file (give the path of {what})") from None
    except OSError as err:
        raise UserError(f"{display}: cannot read it: {err.strerror} (give the path of {what})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a directory" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
        raise UserError(f"{display}: is {kind}, not a regular file (give the path of {what})")
    with os.fdopen(fd, "rb") as f:
        raw = f.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise UserError(f"{display}: larger than {max_bytes // 1024} KiB, the most {what} may be "
                        "(is it the right file?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        col = len(raw[raw.rfind(b"\n", 0, err.start) + 1:err.start].decode("utf-8", "replace")) + 1
        raise UserError([Problem(display, line, col, f"byte 0x{raw[err.start]:02x} is not UTF-8 text "
                                                     f"(save the file as UTF-8; {what} is text)")]) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    control = _CONTROL_RE.search(text)
    if control:
        line, col = _position(text, control.start())
        raise UserError([Problem(display, line, col, f"control character {control[0]!r} (a binary file? {what} "
                                                     "is text: remove it)")])
    return text


def _nesting_bound(text: str) -> int:
    """An upper bound of the nesting depth of the YAML `text`, cheap: every `[`/`{` may open a level, and block
    levels are at most two per column of a line's indentation and `- `/`? `/`: ` indicators."""
    block = max((len(m) for m in _BLOCK_PREFIX_RE.findall(text)), default=0)
    return text.count("[") + text.count("{") + 2 * block + 2


_PRESCAN_CHARS = 64 * 1024  # a text this long is prescanned even when its nesting bound is low


def _too_deep_for_c(text: str, display: str) -> bool | Problem:
    """Whether `text` may nest deeper than _C_SAFE_DEPTH: the cheap bound, and when that is over (or the text is
    long), the real depth of libyaml's event stream (its parser keeps a stack of states, it does not recurse), so
    long flat lists stay on the C composer; a Problem when it has more than MAX_NODES values before any alias is
    expanded. Another syntax error leaves the C composer safe: it stops at the same error, no deeper."""
    if _nesting_bound(text) <= _C_SAFE_DEPTH and len(text) <= _PRESCAN_CHARS:
        return False
    depth = values = 0
    starts = (yaml_c.SequenceStartEvent, yaml_c.MappingStartEvent)
    ends = (yaml_c.SequenceEndEvent, yaml_c.MappingEndEvent)
    try:
        for event in yaml_c.parse(text, Loader=getattr(yaml_c, "CSafeLoader", yaml_c.SafeLoader)):
            if isinstance(event, starts):
                depth += 1
                if depth > _C_SAFE_DEPTH:
                    return True
            elif isinstance(event, ends):
                depth -= 1
            if isinstance(event, (*starts, yaml_c.ScalarEvent)):
                values += 1
                if values > MAX_NODES:
                    mark = event.start_mark
                    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                    return Problem(display, line, col, f"has more than {MAX_NODES} values "
                                   "(this is the one past it), the limit (is it the right file? split or shorten it)")
    except yaml_c.YAMLError as err:  # libyaml's scanner stops at 1,000 flow levels: that is too deep, too
        return "nesting" in str(err)
    return False


def _shape_problem(root: Node, display: str) -> Problem | None:
    """Nesting deeper than MAX_DEPTH (aliases expanded), a value that contains itself, more than MAX_ALIASES
    aliases or more than MAX_NODES values once they are expanded; iterative, so no input can exhaust the stack."""
    height: dict[int, int] = {}
    size: dict[int, int] = {}
    on_path: set[int] = set()
    aliases = 0

    def children(node: Node) -> list[Node]:
        if isinstance(node, MappingNode):
            return [n for pair in node.value for n in pair]
        return list(node.value) if isinstance(node, SequenceNode) else []

    def at(node: Node, message: str) -> Problem:
        mark = node.start_mark
        return Problem(display, mark.line + 1, mark.column + 1, message)

    stack: list[tuple[Node, int]] = [(root, 0)]
    seen = {id(root)}
    while stack:
        node, depth = stack.pop()
        key = id(node)
        if key in height:  # a node met before through an alias: its figures are known
            if depth + height[key] > MAX_DEPTH:
                return at(node, _TOO_DEEP)
            continue
        if key in on_path:  # second visit, children done: sum them up
            kids = children(node)
            height[key] = 1 + max((height[id(k)] for k in kids), default=0)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            on_path.discard(key)
            if depth + height[key] > MAX_DEPTH:
                return at(node, _TOO_DEEP)
            if size[key] > MAX_NODES:
                if aliases:
                    return at(node, f"expands to more than {MAX_NODES} values (aliases expanded), the most a spec "
                                    "may hold (write the values out instead of nesting aliases)")
                return at(node, f"has more than {MAX_NODES} values, the limit (is it the right file? split or "
                                "shorten it)")
            continue
        on_path.add(key)
        stack.append((node, depth))
        for kid in children(node):
            if id(kid) in on_path:
                return at(kid, "this value contains itself through an alias (a recursive alias: remove it)")
            if id(kid) in seen:
                aliases += 1
            seen.add(id(kid))
            if aliases > MAX_ALIASES:
                return at(kid, f"more than {MAX_ALIASES} aliases (`*name`), the most a spec may use "
                               "(write the values out)")
            if depth + 1 >= MAX_DEPTH:
                return at(kid, _TOO_DEEP)
            stack.append((kid, depth + 1))
    return None


def load_document(file: Path, display: str, cache: ParsedCache | None = None) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML file a person wrote; syntax errors, duplicate keys and limits (file size, UTF-8, nesting,
    aliases) come back as problems. With `cache`, a file that parsed cleanly before (the same text, the same
    compiler and YAML library) is read back from JSON: its data and every key's and value's position."""
    try:
        text = read_text(file, display, what="a YAML file")
    except UserError as err:
        return None, list(err.problems)
    key = fingerprint.key("yaml-document", text) if cache is not None else ""
    if cache is not None and (hit := _cached_document(cache, key, display)) is not None:
        return hit, []
    doc, problems = _parse_document(text, display)
    if cache is not None and doc is not None and not problems:
        positions = [[list(loc), list(pos)] for loc, pos in doc._positions.items()]
        if json_exact(doc.data) and json_exact(positions):
            cache.store(key, {"data": doc.data, "positions": positions})
    return doc, problems


def cached_parse(cache: ParsedCache | None, kind: str, data: str | bytes, parse: Callable[[], Any],
                 accept: Callable[[Any], bool]) -> Any:
    """`parse()`, or what it returned before for the same `data`: kept in `cache` (when given) under a key of its
    own `kind`, the data and the compiler's fingerprint, so two readers of one file never answer for each other and
    a parser's fix or a library upgrade is a new key. Only values `accept` takes are read back or stored."""
    if cache is None:
        return parse()
    key = fingerprint.key(kind, data)
    hit = cache.load(key)
    if hit is not None and accept(hit):
        return hit
    value = parse()
    if accept(value):
        cache.store(key, value)
    return value


def _cached_document(cache: ParsedCache, key: str, display: str) -> Document | None:
    entry = cache.load(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("positions"), list) or "data" not in entry:
        return None
    positions: dict[Loc, tuple[int, int, int, int]] = {}
    for item in entry["positions"]:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], list) and isinstance(item[1], list)
                and len(item[1]) == 4 and all(type(n) is int for n in item[1])):
            return None
        kl, kc, vl, vc = item[1]
        positions[tuple(item[0])] = (kl, kc, vl, vc)
    return Document(display, entry["data"], positions)


def _parse_document(text: str, display: str) -> tuple[Document | None, list[Problem]]:
    yaml = _safe_yaml()
    too_deep = _too_deep_for_c(text, display)
    if isinstance(too_deep, Problem):
        return None, [too_deep]
    if too_deep:
        # Possibly too deep for libyaml's recursive composer: the pure-Python one, which stops at MAX_DEPTH.
        yaml = YAML(typ="safe", pure=True)
        yaml.allow_duplicate_keys = True
        yaml.max_depth = MAX_DEPTH
    try:
        node = yaml.compose(text)
        if node is None:
            return Document(display, None, {}), []
        shape = _shape_problem(node, display)
        if shape is not None:
            return None, [shape]
        data = yaml.constructor.construct_document(node)
        problems: list[Problem] = []
        positions: dict[Loc, tuple[int, int, int, int]] = {}
        _index(yaml, node, (), display, positions, problems)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = err.problem or err.context or "invalid YAML"
        if what.startswith("maximum depth"):
            return None, [Problem(display, line, col, _TOO_DEEP)]
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


def load_manifests(text: str | bytes) -> list[Any]:
    """Every document of a Kubernetes YAML stream (None for an empty one); raises YAMLError."""
    return list(yaml_c.load_all(text, Loader=_ManifestLoader))


def load_manifest(text: str | bytes) -> Any:
    """The one document of a Kubernetes YAML file (a kustomization); raises YAMLError."""
    return yaml_c.load(text, Loader=_ManifestLoader)


class _PlainLoader(yaml_c.SafeLoader):
    """PyYAML's pure-Python safe loader, composing at most MAX_DEPTH levels deep (its composer recurses)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._depth >= MAX_DEPTH:
            event: Any = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml_c.composer.ComposerError(None, None, _TOO_DEEP, event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_plain(text: str) -> Any:
    """Plain data from YAML a person wrote (pure-Python parser: its errors say what was expected and found);
    raises YAMLError with `problem` and `problem_mark` (nesting deeper than MAX_DEPTH is one)."""
    return yaml_c.load(text, Loader=_PlainLoader)


def _roundtrip() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def load_roundtrip(text: str) -> Any:
    """A spec as ruamel.yaml's round-trip types (CommentedMap...), comments and quoting kept, to edit and dump
    with `dump_roundtrip` (new-cluster's copy of a spec); the text has passed `load_document`'s limits."""
    return _roundtrip().load(text)


def dump_roundtrip(data: Any) -> str:
    """YAML text of round-trip data, in the layout the example specs use (2-space maps, indented lists)."""
    out = io.StringIO()
    _roundtrip().dump(data, out)
    return out.getvalue()


def load_yaml12(text: str) -> Any:
    """Plain data as a YAML 1.2 reader sees the text (ruamel.yaml; `on` stays a string, for one)."""
    return _YAML12.load(text)
