"""Comment-preserving edits of spec files: replace one scalar in place, leaving every other byte alone."""

from __future__ import annotations

import re

from compiler.spec.yamlio import Document, Loc


def _scalar_end(line: str, start: int) -> int:
    """End index of the scalar token that starts at `start` on `line` (plain or quoted)."""
    quote = line[start] if start < len(line) else ""
    if quote in ("'", '"'):
        i = start + 1
        while i < len(line):
            if quote == "'" and line.startswith("''", i):
                i += 2
                continue
            if quote == '"' and line[i] == "\\":
                i += 2
                continue
            if line[i] == quote:
                return i + 1
            i += 1
        return len(line)
    m = re.compile(r"\s+#|,|}|]|\s*$").search(line, start)
    return m.start() if m else len(line)


def replace_scalar(text: str, doc: Document, loc: Loc, value: str) -> str:
    """`text` with the scalar at `loc` replaced by `value`, keeping its quoting style."""
    line_no, col = doc.position(loc)
    lines = text.splitlines(keepends=True)
    line = lines[line_no - 1]
    start = col - 1
    end = _scalar_end(line.rstrip("\r\n"), start)
    old = line[start:end]
    if old[:1] in ("'", '"'):
        new = f"{old[0]}{value}{old[0]}"
    elif re.fullmatch(r"[0-9.]+", value) and value.count(".") == 1:
        new = f'"{value}"'  # 4.30 unquoted would load as the float 4.3
    else:
        new = value
    lines[line_no - 1] = line[:start] + new + line[end:]
    return "".join(lines)
