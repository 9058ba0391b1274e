"""Rendered manifests cached by the content hash of their inputs."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from compiler.paths import CACHE_DIR

# --------------------------------------------------------------------------- the render cache


@dataclass(frozen=True)
class RenderCache:
    """Rendered YAML on disk, keyed by overlay content hash; writes are atomic."""

    directory: Path

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.yaml"

    max_entries: int = 5000

    def get(self, key: str) -> str | None:
        path = self._path(key)
        try:
            text = path.read_text()
            os.utime(path)  # recently used entries survive pruning
        except (OSError, UnicodeDecodeError):
            return None
        return text

    def put(self, key: str, text: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".yaml")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full disk only costs a re-render next time

    def prune(self) -> None:
        """Drop the least recently used entries beyond max_entries."""
        try:
            entries = [e for d in os.scandir(self.directory) if d.is_dir() for e in os.scandir(d.path)]
            if len(entries) <= self.max_entries:
                return
            entries.sort(key=lambda e: e.stat().st_mtime)
            for entry in entries[: len(entries) - self.max_entries]:
                os.unlink(entry.path)
        except OSError:
            pass  # another process pruning at the same time; next time then


def default_cache(root: Path) -> RenderCache:
    return RenderCache(root / CACHE_DIR)
