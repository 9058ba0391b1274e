"""Content hashes of an overlay's inputs: every file kustomize may read for it, and the kustomize version."""

from __future__ import annotations

import functools
import hashlib
import os
import posixpath
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.cache import ParsedCache
from compiler.render.sources import FsSource, Source
from compiler.spec.yamlio import YAMLError, cached_parse, load_manifest

# Bump when the key layout changes so old cache entries are never read as new ones.
_HASH_SCHEMA = "cave-render-v1"

# Keys of a kustomization whose values name files or directories (lists of strings).
_PATH_LISTS = (
    "resources",
    "bases",
    "components",
    "crds",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "patchesStrategicMerge",
)
# Keys holding lists of mappings with a `path` (inline patches have none).
_PATCH_LISTS = ("patches", "patchesJson6902", "replacements")
_GENERATORS = ("configMapGenerator", "secretGenerator")


# --------------------------------------------------------------------------- content hashes


def overlay_references(doc: Mapping[str, Any]) -> Iterator[str]:
    """Every file or directory a kustomization names (paths relative to its directory, or URLs)."""
    for key in _PATH_LISTS:
        for item in doc.get(key) or []:
            if isinstance(item, str):
                yield item
    for key in _PATCH_LISTS:
        for item in doc.get(key) or []:
            if isinstance(item, Mapping) and isinstance(item.get("path"), str):
                yield item["path"]
    for key in _GENERATORS:
        for gen in doc.get(key) or []:
            if not isinstance(gen, Mapping):
                continue
            for source in [*(gen.get("files") or []), *(gen.get("envs") or []), gen.get("env")]:
                if isinstance(source, str):
                    yield source.split("=", 1)[-1]
    for holder, key in (("openapi", "path"), ("helmGlobals", "chartHome")):
        value = doc.get(holder)
        if isinstance(value, Mapping) and isinstance(value.get(key), str):
            yield value[key]
    for chart in doc.get("helmCharts") or []:
        if isinstance(chart, Mapping) and isinstance(chart.get("valuesFile"), str):
            yield chart["valuesFile"]


def _is_remote(ref: str) -> bool:
    return "://" in ref or ref.startswith(("git@", "github.com/", "gitlab.com/", "bitbucket.org/"))


@dataclass(frozen=True)
class Inputs:
    """What an overlay's render depends on: files (relpath → blob id) and remote references; `dirs`: the directories
    whose every file is an input (kustomization directories, walked recursively) and missing targets."""

    files: Mapping[str, str]
    remotes: frozenset[str]
    dirs: frozenset[str] = frozenset()

    def touched_by(self, changed: frozenset[str]) -> bool:
        """Whether a change to these paths (git.changed_paths: files, and directories ending in "/") can change
        these inputs: a changed input file, or a path appearing, vanishing or changing under a watched directory.
        False means the same source read after the change has exactly these inputs."""
        if any(p == ".." or p.startswith(("../", "/")) for p in (*self.files, *self.dirs)):
            return True  # an input outside the tree: no change there is ever listed
        files, above, folders = _changes(changed)
        if not files.isdisjoint(self.files) or not above.isdisjoint(self.dirs):
            return True
        # an untracked or ignored directory: what lies in it (a watched directory or input file), or what it lies in
        return any(w.startswith(folder) for folder in folders for w in (*self.dirs, *self.files))


@functools.lru_cache(maxsize=8)
def _changes(changed: frozenset[str]) -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    """(the changed files, every directory above a changed path or equal to a changed directory, the changed
    directories ending in "/"), worked out once per set: a fleet's clusters are all checked against one."""
    files = frozenset(p for p in changed if not p.endswith("/"))
    folders = tuple(sorted(p for p in changed if p.endswith("/")))
    above: set[str] = {p.rstrip("/") for p in folders}
    for path in changed:
        parent = posixpath.dirname(path.rstrip("/"))
        while parent:
            above.add(parent)
            parent = posixpath.dirname(parent)
    return files, frozenset(above), folders


def _inside(rel: str, dirs: frozenset[str]) -> bool:
    parent = posixpath.dirname(rel)
    while parent:
        if parent in dirs:
            return True
        parent = posixpath.dirname(parent)
    return False


WATCH_KIND = "commit-watch"  # watch sets' entries in the parsed cache


def watch_data(key: str, overlays: Sequence[str]) -> str:
    """What a commit's watch sets are stored under (with WATCH_KIND): the commit (and root prefix), the overlays."""
    return "\0".join([key, *overlays])


def watch_sets(hasher: InputHasher, overlays: Sequence[str], key: str | None,
               parsed: ParsedCache | None) -> dict[str, Inputs]:  # fmt: skip
    """For a source that never changes (a commit, named by `key`), each overlay's inputs reduced to what
    Inputs.touched_by reads: the watched directories, the input files outside them, and whether it has remote
    inputs (their one entry, "remote"); no blob ids. Kept in `parsed` under the key and the overlays, so a later
    diff against the same commit tells unchanged clusters apart without parsing one kustomization."""

    def compute() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for overlay in overlays:
            inputs = hasher.inputs(overlay)
            out[overlay] = {"dirs": sorted(inputs.dirs), "remote": bool(inputs.remotes),
                            "files": sorted(f for f in inputs.files if not _inside(f, inputs.dirs))}  # fmt: skip
        return out

    def valid(value: Any) -> bool:
        return isinstance(value, dict) and sorted(value) == sorted(overlays) and all(
            isinstance(v, dict) and isinstance(v.get("dirs"), list) and isinstance(v.get("files"), list)
            and isinstance(v.get("remote"), bool) for v in value.values())  # fmt: skip

    data = compute() if key is None else cached_parse(parsed, WATCH_KIND, watch_data(key, overlays), compute, valid)
    return {overlay: Inputs(dict.fromkeys(entry["files"], ""), frozenset({"remote"} if entry["remote"] else ()),
                            frozenset(entry["dirs"]))
            for overlay, entry in data.items()}  # fmt: skip


# Parsed kustomization files by blob id; never mutated after parsing.
_DOCS: dict[str, Any] = {}
_DOCS_LOCK = threading.Lock()


@dataclass
class InputHasher:
    """Content hashes of overlays in one source; memoises work shared by overlays (their bases)."""

    source: Source
    parsed: ParsedCache | None = None  # kustomization files parsed in earlier runs, by blob id
    _dirs: dict[str, Inputs] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _doc(self, rel: str) -> Any:
        """A kustomization file parsed, memoised by content across sources (a diff's sides share most)."""
        digest = self.source.digest(rel)
        with _DOCS_LOCK:
            if digest in _DOCS:
                return _DOCS[digest]

        def parse() -> Any:
            try:
                return load_manifest(self.source.read(rel))
            except (YAMLError, UnicodeDecodeError):
                return None  # kustomize reports it when rendering; the bytes are hashed all the same

        # a kustomization is a mapping: anything else is parsed afresh, never kept
        doc = cached_parse(self.parsed, "kustomization", digest, parse, lambda value: isinstance(value, Mapping))
        with _DOCS_LOCK:
            if len(_DOCS) > 10_000:
                _DOCS.clear()
            _DOCS[digest] = doc
        return doc

    def _directory(self, directory: str, seen: frozenset[str]) -> Inputs:
        """Inputs of a kustomization directory: all its files, and what it references, recursively."""
        if directory in self._dirs:
            return self._dirs[directory]
        src = self.source
        files = {rel: src.digest(rel) for rel in src.files_under(directory)}
        remotes: set[str] = set()
        dirs = {directory}
        kfile = src.kustomization(directory)
        doc = self._doc(kfile) if kfile else None
        for ref in overlay_references(doc) if isinstance(doc, Mapping) else ():
            if _is_remote(ref):
                remotes.add(ref)
                continue
            target = posixpath.normpath(posixpath.join(directory, ref))
            if src.is_file(target):
                files.setdefault(target, src.digest(target))
            elif src.is_dir(target) and src.kustomization(target) and target not in seen:
                sub = self._directory(target, seen | {target})
                files.update(sub.files)
                remotes |= sub.remotes
                dirs |= sub.dirs
            elif target not in seen:
                files[target] = "missing"  # kustomize fails on it (or a cycle); still part of the key
                dirs.add(target)  # a kustomization appearing in it would make it an input
        result = Inputs(files, frozenset(remotes), frozenset(dirs))
        self._dirs[directory] = result
        return result

    def inputs(self, overlay: str) -> Inputs:
        """Every input file of an overlay (relative path, e.g. overlays/minnie) and its remote refs."""
        overlay = posixpath.normpath(overlay)
        with self._lock:
            return self._directory(overlay, frozenset({overlay}))

    def overlay_hash(self, overlay: str, kustomize_version: str) -> str:
        """Content hash of an overlay: its input files, their paths, remote refs and the kustomize version."""
        inputs = self.inputs(overlay)
        h = hashlib.sha256()
        h.update(f"{_HASH_SCHEMA}\0kustomize {kustomize_version}\0overlay {posixpath.normpath(overlay)}\0".encode())
        for rel in sorted(inputs.files):
            h.update(f"file {rel}\0{inputs.files[rel]}\0".encode())
        for ref in sorted(inputs.remotes):
            h.update(f"remote {ref}\0".encode())
        return h.hexdigest()


def content_hash(overlay: Path, kustomize_version: str, root: Path) -> str:
    """Content hash of one overlay directory under root (see InputHasher.overlay_hash)."""
    rel = Path(os.path.relpath(overlay.absolute(), root.absolute())).as_posix()
    return InputHasher(FsSource(root.absolute())).overlay_hash(rel, kustomize_version)
