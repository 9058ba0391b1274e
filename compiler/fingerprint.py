"""What the compiler's own results depend on besides their inputs: its code, templates and the versions of the
libraries that parse, model, render and validate. Every content-keyed cache (compiled overlays, validation results)
mixes this in, so an upgraded compiler or library never reads an older one's entries."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata

from compiler.paths import PACKAGE_DIR

LIBRARIES = ("ruamel.yaml", "PyYAML", "pydantic", "jsonschema", "kubernetes-validate", "referencing")


@functools.cache
def code() -> str:
    """sha256 of every file of the compiler package (paths and bytes) and the LIBRARIES' versions."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for dist in LIBRARIES:
        try:
            digest.update(f"{dist}={importlib.metadata.version(dist)}\0".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{dist}=none\0".encode())
    return digest.hexdigest()


def key(*parts: bytes | str) -> str:
    """A cache key: sha256 of the code fingerprint and `parts`, each length-prefixed (no two lists collide)."""
    digest = hashlib.sha256(code().encode())
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(b"%d\0" % len(data) + data)
    return digest.hexdigest()
