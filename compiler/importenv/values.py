"""CAVEdeployment value formats → typed spec data (lists, Python literals, schedule JSON, L2 map, dash config).

Each converter takes text and returns plain data or raises ValueError with a short, value-free reason and,
for files, the 1-based line and column of the problem.

Hostile text is bounded before a recursive parser (json, ast) or walk sees it: at most MAX_TEXT characters,
brackets and signs nested at most MAX_DEPTH deep (`_bounded`, a linear prescan), at most MAX_NODES values
(`_checked`; in a dash config a name used twice counts twice, so `B1 = [B0] * 10` nested cannot expand without
limit); a RecursionError or MemoryError of the parser is reported as the depth limit.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from compiler.spec.model import BeatEntry
from compiler.spec.yamlio import MAX_DEPTH, MAX_NODES, YAMLError, load_plain

MAX_TEXT = 1024 * 1024  # characters of one value or file read as a literal


class ConvertError(ValueError):
    def __init__(self, reason: str, line: int = 0, col: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.col = col


# strings and comments (skipped), brackets, and runs of signs (each sign one level of nesting)
_TOKEN_RE = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*'
                       r'|[\[\](){}]|(?:[-+~]\s*){2,}')
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels, the limit (flatten it)"
_TOO_MANY = f"has more than {MAX_NODES} values, the limit (shorten it)"


def _at(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - text.rfind("\n", 0, index)


def _bounded(text: str) -> None:
    """Refuse text too long, or bracketed or signed deeper than MAX_DEPTH, before a recursive parser sees it."""
    if len(text) > MAX_TEXT:
        raise ConvertError(f"longer than {MAX_TEXT} characters, the limit (shorten it)", 1, 1)
    depth = 0
    for match in _TOKEN_RE.finditer(text):
        token = match.group()
        if token[0] in "([{":
            depth += 1
        elif token[0] in ")]}":
            depth = max(depth - 1, 0)
        elif token[0] in "-+~" and depth + sum(c in "-+~" for c in token) > MAX_DEPTH:
            raise ConvertError(_TOO_DEEP, *_at(text, match.start()))
        if depth > MAX_DEPTH:
            raise ConvertError(_TOO_DEEP, *_at(text, match.start()))


def _checked(value: Any) -> Any:
    """`value` (JSON-like, from json or ast.literal_eval) if it has at most MAX_DEPTH levels and MAX_NODES values."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ConvertError(_TOO_MANY, 1, 1)
        if depth > MAX_DEPTH:
            raise ConvertError(_TOO_DEEP, 1, 1)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend((v, depth + 1) for v in item)
    return value


def _literal(text: str) -> Any:
    """ast.literal_eval of bounded text; SyntaxError or ValueError when it is not a literal."""
    _bounded(text)
    try:
        return _checked(ast.literal_eval(text))
    except (RecursionError, MemoryError):
        raise ConvertError(_TOO_DEEP, 1, 1) from None


def _json(text: str) -> Any:
    """json.loads of bounded text; json.JSONDecodeError when it is not JSON."""
    _bounded(text)
    try:
        return _checked(json.loads(text))
    except (RecursionError, MemoryError):
        raise ConvertError(_TOO_DEEP, 1, 1) from None


def name_list(text: str) -> list[str]:
    """`"ds1","ds2"`, `ds1,ds2`, `'a', 'b'` or `a b` → ["ds1", "ds2"] (empty items dropped, order kept)."""
    items = re.split(r"[,\s]+", text.strip())
    out: list[str] = []
    for item in items:
        item = item.strip().strip("'\"").strip()
        if item and item not in out:
            out.append(item)
    return out


def resolution(text: str) -> list[int]:
    """`4,4,40` (or `[4, 4, 40]`) → [4, 4, 40]."""
    parts = [p for p in re.split(r"[,\s\[\]()]+", text.strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ConvertError("expected three numbers like 4,4,40") from None
    if len(values) != 3 or any(v <= 0 or v != int(v) for v in values):
        raise ConvertError("expected three positive whole numbers like 4,4,40")
    return [int(v) for v in values]


def python_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no", ""):
        return False
    raise ConvertError("expected True or False")


def proxy_map(text: str) -> dict[str, str]:
    """PROXY_MAP: a Python dict literal body; the template's example lacks the opening brace (tolerated)."""
    body = text.strip()
    if not body.startswith("{"):
        body = "{" + body
    if not body.endswith("}"):
        body += "}"
    try:
        value = _literal(body)
    except ConvertError:
        raise
    except (SyntaxError, ValueError):
        raise ConvertError("not a Python dict literal like {'datastack': 'gs://bucket'}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConvertError("expected a dict of datastack name -> bucket URL")
    return value


def string_map(text: str) -> dict[str, str]:
    """A JSON object (or Python dict literal) of names to names; empty text is an empty map."""
    if not text.strip():
        return {}
    try:
        value = _json(text)
    except json.JSONDecodeError:
        try:
            value = _literal(text)
        except ConvertError:
            raise
        except (SyntaxError, ValueError):
            raise ConvertError('not a JSON object like {"old_name": "new_name"}') from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConvertError('expected a JSON object of names, like {"old_name": "new_name"}')
    return value


def default_admins(text: str) -> list[dict[str, str]]:
    """AUTH_DEFAULT_ADMINS: Python list of [email, name, PI] lists → [{email, name, pi}]."""
    try:
        value = _literal(text.strip() or "[]")
    except ConvertError:
        raise
    except (SyntaxError, ValueError):
        raise ConvertError("not a Python list like [['admin@example.org', 'Name', 'PI']]") from None
    if not isinstance(value, list | tuple):
        raise ConvertError("expected a list of [email, name, PI] lists")
    out = []
    for item in value:
        if not isinstance(item, list | tuple) or not 2 <= len(item) <= 3 or not all(isinstance(x, str) for x in item):
            raise ConvertError("each admin must be [email, name, PI]")
        out.append({"email": item[0], "name": item[1], "pi": item[2] if len(item) > 2 else ""})
    return out


def pcg_config(text: str) -> dict[str, str | int | float | bool]:
    """PCG_CONFIG: pre-indented `KEY = literal` Python lines → {KEY: value}."""
    source = "\n".join(line.strip() for line in text.splitlines() if line.strip())
    if not source:
        return {}
    _bounded(source)
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ConvertError(f"not Python: {err.msg}", err.lineno or 0, err.offset or 0) from None
    except (RecursionError, MemoryError):
        raise ConvertError(_TOO_DEEP, 1, 1) from None
    out: dict[str, str | int | float | bool] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and re.fullmatch(r"[A-Z][A-Z0-9_]*", node.targets[0].id)):
            raise ConvertError("only UPPER_CASE = literal lines can be imported", node.lineno, node.col_offset + 1)
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            raise ConvertError("only literal values can be imported", node.lineno, node.col_offset + 1) from None
        if not isinstance(value, str | int | float | bool):
            raise ConvertError("only str, number and bool values can be imported", node.lineno, node.col_offset + 1)
        out[node.targets[0].id] = value
    return out


# --------------------------------------------------------------------------- files


def beat_schedule(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The materialization schedule JSON → beat_schedule entries, and the keys that were dropped."""
    try:
        data = _json(text)
    except json.JSONDecodeError as err:
        try:
            data = _literal(text)  # a Python literal list, as config.cfg inlines it
        except ConvertError:
            raise
        except (SyntaxError, ValueError):
            raise ConvertError(f"not valid JSON: {err.msg}", err.lineno, err.colno) from None
    if not isinstance(data, list):
        raise ConvertError("expected a JSON list of {name, task, minute, hour, ...} entries", 1, 1)
    fields = set(BeatEntry.model_fields)
    out: list[dict[str, Any]] = []
    dropped: list[str] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ConvertError(f"entry {i + 1} is not an object", *_json_position(text, i))
        entry = {k: item[k] for k in ("name", "task", "minute", "hour", "day_of_week", "day_of_month",
                                      "month_of_year", "datastack_params") if k in item}
        dropped.extend(sorted(k for k in item if k not in fields))
        out.append(entry)
    return out, sorted(set(dropped))


def _json_position(text: str, index: int) -> tuple[int, int]:
    """Line and column of the index-th top-level `{` of a JSON list (best effort)."""
    depth = seen = 0
    for i, c in enumerate(text):
        if c in "[{":
            if c == "{" and depth == 1:
                if seen == index:
                    line = text.count("\n", 0, i) + 1
                    return line, i - text.rfind("\n", 0, i)
                seen += 1
            depth += 1
        elif c in "]}":
            depth -= 1
    return 1, 1


def l2_tables(text: str) -> dict[str, dict[str, str]]:
    """The L2 cache table map YAML: graph id → {cv_path, l2cache_id}."""
    try:
        data = load_plain(text)
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise ConvertError(f"not valid YAML: {getattr(err, 'problem', None) or err}",
                           (mark.line + 1) if mark else 1, (mark.column + 1) if mark else 1) from None
    if not isinstance(data, dict) or not data:
        raise ConvertError("expected a mapping of PCG graph id -> {cv_path, l2cache_id}", 1, 1)
    out: dict[str, dict[str, str]] = {}
    for graph_id, table in data.items():
        if not isinstance(table, dict) or not {"cv_path", "l2cache_id"} <= set(table):
            raise ConvertError(f"table {graph_id!s} needs cv_path and l2cache_id", 1, 1)
        out[str(graph_id)] = {"cv_path": str(table["cv_path"]), "l2cache_id": str(table["l2cache_id"])}
    return out


# --------------------------------------------------------------------------- dash config (Python, read not run)


class _Module:
    def __init__(self, dotted: str) -> None:
        self.dotted = dotted


class _Dotted:
    """A reference to an attribute of an imported module: the app factories of dash_connectivity_viewer."""

    def __init__(self, dotted: str) -> None:
        self.dotted = dotted


def _static(node: ast.expr, scope: dict[str, Any], depth: int = 1) -> Any:
    if depth > MAX_DEPTH:
        raise ConvertError(_TOO_DEEP, node.lineno, node.col_offset + 1)
    depth += 1
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ConvertError("** in a dict literal is not supported", node.lineno, node.col_offset + 1)
        return {_static(k, scope, depth): _static(v, scope, depth)
                for k, v in zip(node.keys, node.values, strict=True) if k is not None}
    if isinstance(node, ast.List | ast.Tuple):
        return [_static(v, scope, depth) for v in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _static(node.operand, scope, depth)
        if isinstance(value, int | float):
            return -value
    if isinstance(node, ast.Name) and node.id in scope:
        return scope[node.id]
    if isinstance(node, ast.Attribute):
        base = _static(node.value, scope, depth)
        if isinstance(base, _Module):
            return _Dotted(f"{base.dotted}.{node.attr}")
    raise ConvertError("only literals, imported names and names assigned above can be imported",
                       node.lineno, node.col_offset + 1)


def dash_apps(text: str) -> tuple[dict[str, dict[str, dict[str, Any]]], bool]:
    """DASH_DATASTACK_SUPPORT of a dash config.py → spec `apps`, read statically (never run).

    Returns the apps and whether the file set a SECRET_KEY (ignored: the spec reads dash_secret_key from
    Secret Manager).
    """
    _bounded(text)
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise ConvertError(f"not valid Python: {err.msg}", err.lineno or 1, err.offset or 1) from None
    except (RecursionError, MemoryError):
        raise ConvertError(_TOO_DEEP, 1, 1) from None
    scope: dict[str, Any] = {}
    counted = [0]  # values of all names assigned, expanded: bounds the copies below
    has_secret = False
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                scope[alias.asname or alias.name] = _Module(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                scope[alias.asname or alias.name.split(".")[0]] = _Module(alias.name if alias.asname
                                                                          else alias.name.split(".")[0])
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name == "SECRET_KEY":
                has_secret = True
                continue
            scope[name] = _static(node.value, scope)
            _plain(scope[name], node.lineno, counted, modules=True)  # stop an expansion bomb here
    support = scope.get("DASH_DATASTACK_SUPPORT")
    if not isinstance(support, dict) or not support:
        raise ConvertError("no DASH_DATASTACK_SUPPORT dict found", 1, 1)
    budget = [0]
    apps: dict[str, dict[str, dict[str, Any]]] = {}
    for datastack, entries in support.items():
        if not isinstance(entries, dict):
            raise ConvertError(f"DASH_DATASTACK_SUPPORT[{datastack!r}] is not a dict", 1, 1)
        apps[str(datastack)] = {}
        for app_name, app in entries.items():
            factory = app.get("create_app") if isinstance(app, dict) else None
            if not isinstance(factory, _Dotted):
                raise ConvertError(f"app {app_name!r} has no create_app imported from a module", 1, 1)
            config = app.get("config", {})
            apps[str(datastack)][str(app_name)] = {"create_app": factory.dotted, "config": _plain(config, 1, budget)}
    return apps, has_secret


def _plain(value: Any, line: int, budget: list[int], depth: int = 1, modules: bool = False) -> Any:
    """A copy of `value` with plain keys; at most MAX_DEPTH deep and MAX_NODES values (counted in `budget`),
    a name used twice counting twice; a module object is refused unless `modules`."""
    budget[0] += 1
    if budget[0] > MAX_NODES:
        raise ConvertError(f"expands to more than {MAX_NODES} values, the limit (a name used twice counts twice; "
                           "shorten it)", line, 1)
    if depth > MAX_DEPTH:
        raise ConvertError(_TOO_DEEP, line, 1)
    if isinstance(value, dict):
        return {str(k): _plain(v, line, budget, depth + 1, modules) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, line, budget, depth + 1, modules) for v in value]
    if isinstance(value, _Dotted | _Module) and not modules:
        raise ConvertError("a dash app config refers to a module object", 1, 1)
    return value
