"""Load every environments/*.yaml: parse with positions, validate the model, apply the cross-field rules.

All problems of all files are collected and raised together as one UserError (file:line:col each).
"""

from __future__ import annotations

import datetime
import difflib
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from compiler import catalog
from compiler.cache import ParsedCache
from compiler.errors import Problem, UserError
from compiler.paths import ENV_DIR, PARSED_CACHE_DIR
from compiler.spec import placeholders, rules, secretguard
from compiler.spec.derive import default_secret_name
from compiler.spec.model import CLUSTER_MODELS, ClusterSpec
from compiler.spec.yamlio import Document, Loc, load_document, to_plain

# Friendly descriptions of the spec's string patterns, so errors say what is expected, not a regex.
PATTERN_HINTS = {
    "^[a-z]([-a-z0-9]*[a-z0-9])?$": "a lowercase name of letters, digits and '-' (like minnie-prod)",
    "([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)+": "a bare lowercase host name like cave.example.org (no scheme, no path)",
    "^[a-z0-9][-a-z0-9_.]{1,61}[a-z0-9](/[^\\s]*)?$": "a bucket name without gs:// (like my-bucket or my-bucket/path)",
    "^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$": "an image version like 4.23.0 (without the leading v)",
    "^[0-9]+(\\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$": "a Kubernetes quantity like 500m, 2 or 512Mi",
    "^[a-z][-a-z0-9]{4,28}[a-z0-9]$": "a GCP project id (6-30 lowercase letters, digits, '-')",
    "^[a-z]+-[a-z]+[0-9]+$": "a GCP region like us-east1",
    "^[a-z]+-[a-z]+[0-9]+-[a-z]$": "a GCP zone like us-east1-b",
    "^1\\.[0-9]+$": "a Kubernetes minor version like 1.31",
    "^[A-Za-z0-9_-]{1,255}$": "a Secret Manager secret name (letters, digits, '-', '_'), never a secret value",
}


@dataclass(frozen=True)
class Loaded:
    """A validated spec and the document it came from (for positions in later rules)."""

    spec: ClusterSpec
    doc: Document


def spec_files(root: Path) -> list[Path]:
    return sorted((root / ENV_DIR).glob("*.yaml"))


def load_environments(root: Path, *, pending_outputs: bool = False) -> dict[str, ClusterSpec]:
    """Every spec in <root>/environments, validated; raises UserError listing all problems."""
    return {name: item.spec for name, item in load_all(root, pending_outputs=pending_outputs).items()}


def document_cache(root: Path) -> ParsedCache:
    """Where specs that parsed cleanly are kept as JSON, by their text (yamlio.load_document)."""
    return ParsedCache(root / PARSED_CACHE_DIR)


def load_all(root: Path, *, for_fleet_rules: bool = False, allow_placeholders: bool = False,
             pending_outputs: bool = False, use_cache: bool = True) -> dict[str, Loaded]:
    """Every spec, validated; `for_fleet_rules` skips the cross-spec checks a fleet rule reports instead.

    A placeholder (`TODO-...`, compiler/spec/placeholders.py) is refused at its line, and other problems at the
    same place are left out (they only say the placeholder is not a valid value). `allow_placeholders` is for
    import-env and new-cluster, which read specs whose placeholders are still to set: a spec a placeholder makes
    invalid is then left out of the result without a problem. `pending_outputs` (bootstrap) accepts a
    placeholder where Google picks the value (static IP, Redis hosts: placeholders.OUTPUTS).
    """
    files = spec_files(root)
    if not files:
        raise UserError(f"{ENV_DIR}/: no cluster specs found (add environments/<cluster>.yaml)")
    cache = document_cache(root) if use_cache else None  # specs that parsed cleanly before, as JSON
    problems: list[Problem] = []
    secret_values: list[str] = []
    held: list[Problem] = []  # placeholders still to set
    loaded: dict[str, Loaded] = {}
    failed: dict[str, list[Problem]] = {}  # specs that did not load, with why
    for file in files:
        display = f"{ENV_DIR}/{file.name}"
        doc, found = load_document(file, display, cache)
        problems.extend(found)
        if doc is None:
            failed[display] = found
            continue
        found, values = secret_problems(doc)
        problems.extend(found)
        secret_values.extend(values)
        found = placeholders.problems(doc)
        if pending_outputs:
            doc, waiting = placeholders.pending_outputs(doc)
            found = [p for p in found if (p.line, p.col) not in waiting]
        held.extend(found)
        spec, found = validate_document(doc)
        problems.extend(found)
        if spec is not None:
            loaded[file.stem] = Loaded(spec, doc)
        else:
            failed[display] = found
    # Cross-spec rules judge the fleet: without a spec that failed to load they would report derived errors (every
    # local's global_server "not a hostname of any global" when the global spec has a typo). They wait until every
    # spec loads; a spec left out only for its placeholders (allow_placeholders) does not stop them.
    placeholder_at = {(p.path, p.line, p.col) for p in held}
    broken = [display for display, found in failed.items() if not allow_placeholders or not found
              or any((p.path, p.line, p.col) not in placeholder_at for p in found)]
    problems.extend(rules.check_all({k: (v.spec, v.doc) for k, v in loaded.items()}, for_fleet_rules=for_fleet_rules,
                                    cross_spec=not broken))
    if held:
        at = {(p.path, p.line, p.col) for p in held}
        problems = ([] if allow_placeholders else held) + [p for p in problems if (p.path, p.line, p.col) not in at]
    if secret_values:  # other messages may quote a value the guard flagged: never print it
        problems = [Problem(p.path, p.line, p.col, _redact(p.message, secret_values)) for p in problems]
    if problems:
        raise UserError(problems)
    return loaded


# --------------------------------------------------------------------------- the secret guard

_STORE_IT = (
    "specs hold no secret values: store it in Google Secret Manager "
    "(`gcloud secrets create NAME --data-file=-`, the value on stdin) and reference it by name under `secrets:`"
)


def _secret_message(doc: Document, loc: Loc, value: str, hit: secretguard.Hit, *, is_key: bool) -> str:
    where = _dotted((*loc[:-1], "<value not shown>")) if is_key else _dotted(loc)
    what = hit.describe(value)
    if is_key:
        return f"{where}: this key looks like a secret value: {what} ({_STORE_IT})"
    if len(loc) == 2 and loc[0] == "secrets":
        cluster = doc.data.get("name") if isinstance(doc.data, dict) else None
        name = default_secret_name(cluster or "<cluster>", str(loc[1]))
        return (
            f"{where} holds what looks like a secret value, not a Secret Manager secret name: {what} "
            f"(store the value with `gcloud secrets create {name} --data-file=-` and write the name {name} here)"
        )
    return f"{where} looks like a secret value: {what} ({_STORE_IT})"


def secret_problems(doc: Document) -> tuple[list[Problem], list[str]]:
    """The secret guard over every key and scalar of a spec: positioned problems and the values they flag.

    `secrets.<key>` holds Secret Manager secret names: only a name that itself looks like a secret is reported.
    """
    problems: list[Problem] = []
    values: list[str] = []

    def visit(node: Any, loc: Loc, key: str | None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                child = (*loc, k)
                if isinstance(k, str) and (hit := secretguard.check(None, k)) is not None:
                    problems.append(doc.problem(child, _secret_message(doc, child, k, hit, is_key=True), key=True))
                    values.append(k)
                visit(v, child, str(k))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                visit(item, (*loc, i), key)
        elif isinstance(node, str):
            names_slot = len(loc) == 2 and loc[0] == "secrets"
            hit = secretguard.check(key, node, secret_name=names_slot)
            if hit is not None:
                problems.append(doc.problem(loc, _secret_message(doc, loc, node, hit, is_key=False)))
                values.append(node)

    visit(doc.data, (), None)
    return problems, values


def validate_document(doc: Document) -> tuple[ClusterSpec | None, list[Problem]]:
    data = doc.data
    if not isinstance(data, dict):
        return None, [doc.problem((), "a cluster spec must be a YAML mapping (start with `kind: local`)")]
    kind = data.get("kind")
    if kind not in CLUSTER_MODELS:
        where: Loc = ("kind",) if "kind" in data else ()
        return None, [doc.problem(where, f"kind must be 'global' or 'local', not {kind!r} (set `kind:`)")]
    model = CLUSTER_MODELS[kind]
    try:
        return model.model_validate(to_plain(data)), []
    except ValidationError as err:
        return None, validation_problems(doc, model, err.errors(include_url=False))


# --------------------------------------------------------------------------- pydantic errors → positions


def _data_loc(data: Any, loc: tuple[str | int, ...], error_type: str) -> Loc:
    """Drop pydantic's union-member tags (e.g. 'Replicas', 'int') that are not keys of the document."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        in_map = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if isinstance(node, dict) and not in_map:  # a key to_plain made text: null, 1, a complex key [a, b]
            part = next((k for k in node if isinstance(part, str) and str(k) == part), part)
            in_map = part in node
        if in_map or in_list:
            node = node[part]
            out.append(part)
        elif last and error_type in ("missing", "extra_forbidden"):
            out.append(part)
        # else: a tag pydantic adds for union members / validators: skip it
    return tuple(out)


def _unwrap_models(annotation: Any) -> list[Any]:
    """The possible types behind Optional/Union/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap_models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _unwrap_models(a)]
    return [annotation]


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `loc`, if one does."""
    current: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for t in current:
            if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
                field = t.model_fields.get(part)
                if field is not None:
                    nxt.extend(_unwrap_models(field.annotation))
                continue
            origin = typing.get_origin(t)
            args = typing.get_args(t)
            if origin is dict and args:
                nxt.extend(_unwrap_models(args[1]))
            elif origin is list and args and isinstance(part, int):
                nxt.extend(_unwrap_models(args[0]))
        current = nxt
    for t in current:
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _unknown_key(model: type[BaseModel], loc: Loc, kind: str) -> str:
    key = str(loc[-1])
    parent = loc[:-1]
    if parent == ("services",):
        svc = catalog.BY_NAME.get(key) or catalog.resolve(key)
        if svc is not None and kind not in svc.kinds:
            return f"service {key!r} runs on {' and '.join(svc.kinds)} clusters, not on a {kind} cluster"
    owner = _model_at(model, parent)
    allowed = sorted(owner.model_fields) if owner else []
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    if allowed:
        return f"unknown key {key!r} (allowed here: {', '.join(allowed)})"
    return f"unknown key {key!r}"


# Pydantic's type errors (strict mode: no coercion) → what the field expects, in YAML terms.
EXPECTED = {
    "int_type": "an integer", "float_type": "a number", "string_type": "a string",
    "bool_type": "a boolean (true or false)", "list_type": "a list", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "ip_v4_address": "an IPv4 address",
    "ip_v4_network": "an IPv4 network like 10.0.0.0/20",
}


def _yaml_kind(value: Any) -> str:
    """What a YAML value is, as a spec author reads it: `true` is a boolean, `2.0` a number, `"3"` a string."""
    if value is None:
        return "nothing (null)"
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
                       (list, "a list"), (dict, "a mapping")):
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"  # e.g. a date: YAML reads 2024-01-01 unquoted as one


SHOWN_MAX = 80  # characters of a value quoted in a message


def _shown(value: Any) -> str:
    """repr(value), cut to SHOWN_MAX characters with '…' (a 200 KB description is not echoed whole)."""
    text = repr(value)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


def _shorten_quoted(message: str, value: Any) -> str:
    """A validator's message with the repr of the value it quotes cut to SHOWN_MAX characters."""
    return message.replace(repr(value), _shown(value)) if isinstance(value, str) else message


def _redact(message: str, values: list[str]) -> str:
    """secretguard.redact, and the cut repr `_shown` quotes of a long secret value (its start is secret too)."""
    message = secretguard.redact(message, values)
    for value in values:
        if len(repr(value)) > SHOWN_MAX:
            message = message.replace(_shown(value), "<value not shown>")
    return message


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else _shown(value)


def _type_message(where: str, expected: list[str], value: Any) -> str:
    """'expected an integer or a list, got a boolean (true)', with how to write it."""
    wanted = list(dict.fromkeys(expected))
    alternatives = wanted[0] if len(wanted) == 1 else f"{', '.join(wanted[:-1])} or {wanted[-1]}"
    shown = "" if isinstance(value, dict | list) else f" ({_yaml_value(value)})"
    hint = ""
    if isinstance(value, bool) and ("an integer" in wanted or "a number" in wanted):
        hint = "; YAML true/false is not a number"
    elif wanted == ["a string"] and isinstance(value, float):
        # The text is gone: YAML read `1.30` as 1.3 (and `4.20` as 4.2), so name both spellings it may have had.
        shown_as = repr(value)
        written = f'"{shown_as}" or "{shown_as}0"' if re.fullmatch(r"\d+\.\d", shown_as) else f'"{shown_as}"'
        hint = f"; quote it as you meant it, e.g. {written} (unquoted YAML reads 1.30 as the number 1.3)"
    elif wanted == ["a string"] and isinstance(value, int | bool):
        hint = f"; write it in quotes: \"{_yaml_value(value)}\""
    elif "an integer" in wanted and isinstance(value, float) and value.is_integer():
        hint = f"; write {int(value)}"
    elif "a boolean (true or false)" in wanted and isinstance(value, str | int):
        hint = "; write true or false, unquoted"
    elif isinstance(value, datetime.date):
        hint = f' (quote it: "{value.isoformat()}"; unquoted, YAML reads it as a date)'
    elif not isinstance(value, str | int | float | list | dict) and value is not None:
        hint = " (write a plain string, number, boolean, list or mapping, without a YAML tag like !!binary or !!set)"
    return f"{where}: expected {alternatives}, got {_yaml_kind(value)}{shown}{hint}"


class _Masked(str):
    """A value that may be a secret: shown in messages by its length only."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"the value ({secretguard.mask(self)})"


def _message(err: ErrorDetails, loc: Loc, model: type[BaseModel], kind: str) -> str:
    etype = err["type"]
    where = _dotted(loc)
    if etype == "extra_forbidden":
        return _unknown_key(model, loc, kind)
    if etype == "missing":
        parent = _dotted(loc[:-1]) if len(loc) > 1 else "the top level"
        return f"missing required key {loc[-1]!r} (add it under {parent})"
    value = err.get("input")
    if loc and loc[0] == "secrets" and isinstance(value, str):  # a secret value typed here is never echoed
        value = _Masked(value)
    if etype == "string_pattern_mismatch":
        pattern = str((err.get("ctx") or {}).get("pattern", ""))
        hint = next((h for p, h in PATTERN_HINTS.items() if p in pattern), f"text matching {pattern}")
        extra = ""
        if isinstance(value, str) and re.match(r"^[a-z]+://", value):
            extra = "; drop the scheme prefix"
        return f"{where}: {_shown(value)} is not valid: expected {hint}{extra}"
    if etype == "literal_error":
        expected = (err.get("ctx") or {}).get("expected", "")
        return f"{where}: {_shown(value)} is not allowed (use one of {expected})"
    if etype == "value_error":
        return f"{where}: {_shorten_quoted(str(err['msg']).removeprefix('Value error, '), value)}"
    if etype == "finite_number":
        return (f"{where}: {_shown(value)} is not a finite number (write a finite number: Python and JSON configs "
                "have no inf or nan, and YAML reads 1e400 as inf)")
    shown = "" if isinstance(value, dict | list) else f" (got {_shown(value)})"
    return f"{where}: {err['msg']}{shown}"


def validation_problems(doc: Document, model: type[BaseModel], errors: list[ErrorDetails]) -> list[Problem]:
    """Pydantic errors of a document as positioned problems (also used for gitops.yaml)."""
    kind = str(doc.data.get("kind"))
    items = [(_data_loc(doc.data, tuple(e["loc"]), e["type"]), e) for e in errors]
    locs = {loc for loc, _ in items}
    by_loc: dict[Loc, list[ErrorDetails]] = {}
    for loc, err in items:
        by_loc.setdefault(loc, []).append(err)
    out: list[Problem] = []
    seen: set[Loc] = set()
    for loc, err in items:
        # A union error at a parent is noise when a member gave a more precise one deeper down.
        if any(other != loc and other[: len(loc)] == loc for other in locs):
            continue
        if loc in seen:
            continue
        seen.add(loc)
        as_key = err["type"] == "extra_forbidden"
        position_loc = loc[:-1] if err["type"] == "missing" else loc
        here = by_loc[loc]
        if all(e["type"] in EXPECTED for e in here):  # wrong YAML type, for every member of a union
            value = err.get("input")
            if loc and loc[0] == "secrets" and isinstance(value, str):
                value = _Masked(value)  # a secret value typed here is never echoed
            message = _type_message(_dotted(loc), [EXPECTED[e["type"]] for e in here], value)
        else:  # the member error that is not a type mismatch says more (e.g. finite_number)
            message = _message(next((e for e in here if e["type"] not in EXPECTED), err), loc, model, kind)
        out.append(doc.problem(position_loc, message, key=as_key))
    return out
