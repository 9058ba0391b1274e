"""schemas/spec.schema.json, the editors' schema of a spec (compiler/spec/schema.py): `build` writes it, `check`
reports it stale or missing.

A repository uses it when the file is there or a spec names it on its first line (the modeline); one that does
neither (a bare test fleet, a repository of hand-written specs without editor support) is left alone.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from compiler.paths import ENV_DIR, SCHEMA_REL
from compiler.spec.schema import has_modeline, schema_text

REBUILD = "run `python -m compiler build`"


def in_use(root: Path) -> bool:
    """Whether this repository keeps the schema: the file exists, or a spec's first line names it."""
    if (root / SCHEMA_REL).is_file():
        return True
    for spec in sorted((root / ENV_DIR).glob("*.yaml")):
        try:
            with spec.open(encoding="utf-8", errors="replace") as f:
                if has_modeline(f.readline()):
                    return True
        except OSError:
            continue
    return False


def differences(root: Path) -> list[str]:
    """`check`'s lines for the schema: missing, or not what the model generates now (stale or hand-edited)."""
    if not in_use(root):
        return []
    path = root / SCHEMA_REL
    if not path.is_file():
        return [f"{SCHEMA_REL}: missing, the specs' `$schema` line names it ({REBUILD})"]
    if path.read_bytes() != schema_text().encode():
        return [f"{SCHEMA_REL}: differs from what compiler/spec/model.py generates: stale or hand-edited ({REBUILD})"]
    return []


def write(root: Path) -> str | None:
    """Write the schema atomically when it is in use and differs; the line `build` prints, or None."""
    if not in_use(root):
        return None
    path = root / SCHEMA_REL
    data = schema_text().encode()
    if path.is_file() and path.read_bytes() == data:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return f"wrote {SCHEMA_REL}"
