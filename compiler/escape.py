"""Writing a value into each output language, so that its reader gets the value back verbatim.

A spec string reaches several languages: env-file literals of `configMapGenerator`, Python, INI, nginx and YAML
config files rendered from compiler/templates/, External Secrets templates (Go text/template), Markdown (the
runbook, diff comments) and the shell commands the runbook prints. The spec's types keep most metacharacters
out (compiler/spec/model.py: host names, channel names, one-line text); these functions are the second line, one
small group per language. Each returns the value written in its language, or raises `Unwritable` when the
language has no way to carry it (a line break in an env-file value). compiler/build/compile.py applies them to
every `{{ ... }}` of a template through a per-language Jinja `finalize`, so a template author cannot forget.
"""

from __future__ import annotations

import html
import json
import math
import re
import shlex
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class Unwritable(ValueError):
    """A value its language cannot carry; the message says what and why, never more than the value's repr."""


class Written(str):
    """Text already written in its output language (a filter's result, like `pyrepr`): finalizers keep it as is."""


def control_char(text: str) -> str | None:
    """The first control character or line break of `text` (None when it has none)."""
    found = _CONTROL.search(text)
    return found.group() if found else None


def one_line(text: str, language: str) -> str:
    """`text`, refused when it holds a control character or line break (it would start a new line or entry)."""
    if (char := control_char(text)) is not None:
        raise Unwritable(f"{_short(text)} holds the control character {char!r}, which {language} cannot carry on "
                         "one line")
    return text


def _short(text: str, limit: int = 80) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


# --------------------------------------------------------------------------- env files (configMapGenerator)


def env_literal(key: str, value: str) -> str:
    """A `configMapGenerator` literal KEY=value whose value kustomize reads back verbatim.

    kustomize takes everything after the first '=' and removes one pair of matching surrounding quotes, so a
    value that is itself quoted gets a second pair; a line break cannot be written at all."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise Unwritable(f"{_short(key)} is not an environment variable name")
    one_line(value, "an env file")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = f'"{value}"'
    return f"{key}={value}"


# --------------------------------------------------------------------------- Python


def pyrepr(value: Any) -> Written:
    """A Python literal for plain data (dict, list, str, int, float, bool, None), for Python config files."""
    return Written(_pyrepr(value))


def _pyrepr(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_pyrepr(k)}: {_pyrepr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_pyrepr(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        raise Unwritable(f"{value!r} is not a finite number: Python has no literal for it (write a finite number)")
    if isinstance(value, bool | int | float | str) or value is None:
        return repr(value)
    if hasattr(value, "model_dump"):
        return _pyrepr(value.model_dump(mode="json"))
    raise Unwritable(f"cannot write a {type(value).__name__} as a Python literal (write a string, number, boolean, "
                     "list or mapping)")


PYTHON_BARE = re.compile(r"[A-Za-z0-9_.:/@+-]*")


def python_bare(text: str) -> str:
    """Text written bare into Python (a name in a comment, an attribute, a key): only name-like characters.
    Anything else must go through `pyrepr`."""
    if not PYTHON_BARE.fullmatch(text):
        raise Unwritable(f"{_short(text)} is not a bare Python name (a template must write it with `| pyrepr`)")
    return text


# --------------------------------------------------------------------------- INI (configparser)


def ini_value(text: str) -> str:
    """A value of an INI file read by configparser.ConfigParser(), whose BasicInterpolation reads '%%' as '%'.

    configparser strips a value's surrounding whitespace and continues a value on indented lines, so a value
    with either is refused."""
    one_line(text, "an INI file")
    if text != text.strip():
        raise Unwritable(f"{_short(text)} starts or ends with whitespace, which configparser drops")
    return text.replace("%", "%%")


# --------------------------------------------------------------------------- External Secrets (Go text/template)


def go_template_literal(text: str) -> str:
    """Text that Go's text/template (External Secrets' engine) prints verbatim: every brace is written as the
    action `{{"{"}}` / `{{"}"}}`, so no `{{ .secret }}` can be formed by a value, nor with the text around it."""
    return re.sub(r"[{}]", lambda m: '{{"' + m.group() + '"}}', text)


# --------------------------------------------------------------------------- nginx


def nginx_quoted(text: str) -> str:
    """Text inside a single-quoted nginx string: no quote, backslash or `$` (nginx expands `$variables` there),
    and no line break."""
    one_line(text, "an nginx string")
    if bad := sorted(set(text) & set("'\\$")):
        raise Unwritable(f"{_short(text)} holds {' '.join(bad)}, which an nginx string would not keep verbatim")
    return text


# --------------------------------------------------------------------------- YAML


YAML_BARE = re.compile(r"[A-Za-z0-9_.:/@+-]*")


def yaml_bare(text: str) -> str:
    """Text written bare into YAML (a plain scalar or inside a quoted one): only name-like characters.
    Anything else must go through `| tojson` (JSON is YAML)."""
    if not YAML_BARE.fullmatch(text):
        raise Unwritable(f"{_short(text)} cannot be written bare into YAML (a template must write it with `| tojson`)")
    return text


_YAML_UNPRINTABLE = re.compile(r"[\x7f-\x9f\u2028\u2029\ufffe\uffff]")


def yaml_json(value: Any) -> Written:
    """`value` as JSON that YAML readers read back verbatim (the `tojson` filter of YAML templates).

    Jinja's own `tojson` writes a character outside the BMP as a surrogate pair, which YAML readers keep as two
    characters; here such characters are written as they are, and those YAML may not hold raw (or reads as a line
    break: \\x85, \\u2028, \\u2029) as \\uXXXX escapes. `<`, `>`, `&` and `'` are escaped as Jinja does."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, code)
    return Written(_YAML_UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


# --------------------------------------------------------------------------- Markdown


_BACKTICKS = re.compile(r"`+")


def md_code(text: str) -> str:
    """`text` as a Markdown code span that shows it verbatim: delimited by one backtick more than its longest
    backtick run, padded with a space when it starts or ends with a backtick; on one line."""
    text = md_visible(text)
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def md_visible(text: str) -> str:
    """`text` on one line: each control character or line break shown as its escape (`\\n`), so a value never
    starts a Markdown block of its own (a heading, a list, a ```sh fence)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")


# `*` anywhere and `_` at a word's edge start or end emphasis (`_` inside a word, as in pcg_table, does not)
_EMPHASIS = re.compile(r"\*|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _md_prose(text: str) -> str:
    """Markdown prose outside code spans: HTML and entities shown as written, no inline link (`](`), no emphasis."""
    text = _EMPHASIS.sub(lambda m: "\\" + m.group(), text)
    return _HTML_START.sub("&lt;", _ENTITY.sub("&amp;", text)).replace("](", "]\\(")


_BLOCK_START = re.compile(r"^(\s*)([`~]{3,}|#{1,6}(?=\s|$)|>|[-+*](?=\s)|\d{1,9}[.)](?=\s)|=+\s*$)")


def md_line(text: str) -> str:
    """One line of Markdown prose that may quote values: kept on one line (md_visible), HTML, entities and inline
    links neutralised outside code spans (`<!--`, `<b>` and the like would hide or restyle the rest), and a block
    marker at its start (a fence, heading, quote, list) escaped. Code spans the text itself opens and closes are
    kept."""
    # every backslash doubled: no value can escape a backtick (so code spans are where _code_spans finds them) or
    # a character escaped here
    text = md_visible(text).replace("\\", "\\\\")
    out: list[str] = []
    pos = 0
    for start, end in _code_spans(text):
        out.append(_md_prose(text[pos:start]))
        out.append(text[start:end])
        pos = end
    out.append(_md_prose(text[pos:]))
    line = "".join(out)
    return _BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2), line, count=1)


def _code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each CommonMark code span of one line: a backtick run closed by the next run of the same
    length."""
    spans: list[tuple[int, int]] = []
    runs = list(_BACKTICKS.finditer(text))
    i = 0
    while i < len(runs):
        opening = runs[i]
        closing = next((j for j in range(i + 1, len(runs)) if len(runs[j].group()) == len(opening.group())), None)
        if closing is None:
            i += 1
            continue
        spans.append((opening.start(), runs[closing].end()))
        i = closing + 1
    return spans


def md_fence(lines: list[str], info: str = "") -> str:
    """A fenced code block showing `lines` verbatim: its fence is one backtick longer than any backtick run in
    them, so no line can close it (lines may hold line breaks of their own: they stay inside)."""
    longest = max((len(m) for line in lines for m in _BACKTICKS.findall(line)), default=0)
    ticks = "`" * max(3, longest + 1)
    return "\n".join([f"{ticks}{info}", *lines, ticks])


def md_cell(text: str) -> str:
    """Text inside a Markdown table cell or list item: one line, HTML escaped, '|', backticks and inline links
    (`](`) neutralised."""
    return html.escape(md_visible(text), quote=False).replace("|", "\\|").replace("`", "'").replace("](", "]\\(")


# --------------------------------------------------------------------------- shell


def shell(text: str) -> str:
    """A shell word that is `text` verbatim (shlex.quote: unchanged when it is only safe characters)."""
    return shlex.quote(text)


def shell_double_quoted(text: str) -> str:
    """`text` for inside a double-quoted shell string: `\\`, `$`, backtick and `"` escaped with a backslash."""
    return re.sub(r'([\\$`"])', r"\\\1", text)


# --------------------------------------------------------------------------- Mermaid

# Characters with a meaning somewhere in a Mermaid label or its Markdown fence: the quote that ends the label,
# '#' that starts an entity code, HTML ('<', '>', '&' with htmlLabels), '`' (a Markdown string, and the fence),
# '%' ('%%' comments and directives), '$' ('$$' opens KaTeX maths), and the brackets and pipes of shapes and edge
# labels.
_MERMAID_SPECIAL = re.compile(r'[#"<>&`%$|\[\](){}\\;:*_~]')
_EDGE_SPACE = re.compile(r"^[\s\ufeff]+|[\s\ufeff]+$")


def mermaid_label(text: str) -> str:
    """A Mermaid label's text, for inside double quotes (`id["..."]`, `-->|"..."|`, `subgraph id ["..."]`): one
    line (md_visible), every character Mermaid or Markdown could read as syntax written as an entity code `#N;`,
    which Mermaid shows as that character, and so are spaces at either end (Mermaid would trim them). No value can
    end the label, open a comment, directive or formula, add HTML or a node, or close the code fence the diagram
    sits in. An empty label is one space: Mermaid refuses `[""]`."""
    escaped = _MERMAID_SPECIAL.sub(lambda m: f"#{ord(m.group())};", md_visible(text))
    escaped = _EDGE_SPACE.sub(lambda m: "".join(f"#{ord(c)};" for c in m.group()), escaped)
    return escaped or " "
