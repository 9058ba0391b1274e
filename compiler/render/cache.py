"""The render cache: rendered manifests by the hash of their inputs (render/hashing.py), and beside them what each
rendered text parses to (compiler/cache.py ParsedCache)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compiler.cache import DiskCache, ParsedCache
from compiler.paths import CACHE_DIR, PARSED_CACHE_DIR

# --------------------------------------------------------------------------- the render cache


@dataclass(frozen=True)
class RenderCache(DiskCache):
    """Rendered YAML by overlay content hash (render/hashing.py), with the parsed objects of each beside it."""

    parsed: ParsedCache | None = None

    def prune(self) -> None:
        super().prune()
        if self.parsed is not None:
            self.parsed.prune()


def default_cache(root: Path) -> RenderCache:
    return RenderCache(root / CACHE_DIR, parsed=ParsedCache(root / PARSED_CACHE_DIR))
