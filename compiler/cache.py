"""Content-keyed caches on disk, under STATE_DIR: the one implementation of an entry store (DiskCache) and of
parsed YAML kept as JSON (ParsedCache: JSON reads about ten times faster than YAML, which is most of what reading a
100-cluster fleet's renders and specs costs).

Every entry is keyed by the content it stands for, so an entry can never be used for changed inputs: a cache only
saves work. Entries are written atomically (temporary file, then rename) and the least recently used are pruned.
CI saves STATE_DIR after each merge to main and restores it for pull requests (.github/workflows/render-cache.yml).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- a directory of entries


@dataclass(frozen=True)
class DiskCache:
    """Text entries on disk, keyed by a content hash; writes are atomic, reads refresh an entry's age."""

    directory: Path
    max_entries: int = 5000
    suffix: str = ".yaml"

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}{self.suffix}"

    def get(self, key: str) -> str | None:
        path = self._path(key)
        try:
            text = path.read_text(encoding="utf-8")
            os.utime(path)  # recently used entries survive pruning
        except (OSError, UnicodeDecodeError):
            return None
        return text

    def put(self, key: str, text: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=self.suffix)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full disk only costs the work again next time

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


# --------------------------------------------------------------------------- parsed YAML as JSON


def json_exact(value: Any) -> bool:
    """Whether `value` survives a JSON round trip unchanged: only str keys, no NaN or infinity, no other types
    (YAML can also yield bytes, dates, sets, int keys, which JSON would change)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(type(k) is str for k in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif item is not None and type(item) not in (str, int, bool):
            return False
    return True


def text_key(text: str | bytes) -> str:
    """The key of parsed text: sha256 of its bytes."""
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


@dataclass(frozen=True)
class ParsedCache(DiskCache):
    """What YAML text parses to, as JSON, keyed by the text's hash. Only values JSON carries exactly are stored;
    anything else is parsed again each time. A run over a 1,000-cluster fleet touches about 6,000 entries (specs,
    kustomizations, renders, Argo CD files): the limit keeps several such runs."""

    suffix: str = ".json"
    max_entries: int = 50_000

    def load(self, key: str) -> Any | None:
        """The parsed value stored under `key`, or None (also for an unreadable entry: the caller parses)."""
        text = self.get(key)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    def store(self, key: str, value: Any) -> None:
        if json_exact(value):
            self.put(key, json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")))
