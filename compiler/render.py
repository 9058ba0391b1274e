"""Render overlays with kustomize: content hashes of their inputs, an on-disk cache, parallel builds.

An overlay's content hash covers every file of the overlay directory and of every directory or file
its kustomization references, recursively, plus the kustomize version: equal hashes mean equal
renders, so `diff` and `validate` skip or reuse them.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from compiler import git, kustomize
from compiler.errors import Problem, UserError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CACHE_DIR = Path(".cache/cave-gitops/renders")
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


class _Loader(yaml.CSafeLoader):
    """Safe YAML loader that keeps timestamps as strings, as Kubernetes does."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}
# A bare `=` is the YAML 1.1 "value" tag; Kubernetes reads it as the string "=".
_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: str(node.value))


def load_yaml_documents(text: str) -> list[Any]:
    """Every document of a YAML stream (safe, timestamps kept as strings)."""
    return list(yaml.load_all(text, Loader=_Loader))


# --------------------------------------------------------------------------- clusters and overlays


def overlay_dir(root: Path, cluster: str) -> Path:
    return root / "overlays" / cluster


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def list_clusters(root: Path) -> list[str]:
    """Clusters with both a spec (environments/<c>.yaml) and an overlay (overlays/<c>/), sorted."""
    return clusters_in(FsSource(root))


def select_clusters(root: Path, requested: Sequence[str]) -> list[str]:
    """The requested clusters (all when none), or a UserError listing the known ones."""
    known = list_clusters(root)
    if not requested:
        return known
    unknown = [c for c in requested if c not in known]
    if unknown:
        listing = ", ".join(known) if known else "none: run `python -m compiler build` first"
        raise UserError(
            [Problem(f"overlays/{c}", message=f"unknown cluster {c!r} (known clusters: {listing})") for c in unknown]
        )
    return list(dict.fromkeys(requested))


# --------------------------------------------------------------------------- input trees


def blob_id(data: bytes) -> str:
    """Git's blob id of some bytes: files are identified the same way on disk and in a commit."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class Source:
    """A tree of input files addressed by paths relative to its root (posix, normalised)."""

    label = ""

    def is_file(self, rel: str) -> bool:
        raise NotImplementedError

    def is_dir(self, rel: str) -> bool:
        raise NotImplementedError

    def files_under(self, rel: str) -> list[str]:
        """Every file below a directory, recursively."""
        raise NotImplementedError

    def subdirs(self, rel: str) -> list[str]:
        """Names of the directories directly inside a directory."""
        raise NotImplementedError

    def read(self, rel: str) -> bytes:
        raise NotImplementedError

    def digest(self, rel: str) -> str:
        return blob_id(self.read(rel))

    def kustomization(self, directory: str) -> str | None:
        """The kustomization file of a directory (relative path), if it has one."""
        for name in KUSTOMIZATION_FILES:
            rel = posixpath.join(directory, name) if directory else name
            if self.is_file(rel):
                return rel
        return None


class FsSource(Source):
    """Files on disk under root; `known` blob ids (from git's index) save reading unchanged files."""

    def __init__(self, root: Path, known: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.label = str(root)
        self._known = dict(known or {})
        self._digests: dict[str, str] = {}

    def _path(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def is_file(self, rel: str) -> bool:
        return self._path(rel).is_file()

    def is_dir(self, rel: str) -> bool:
        return self._path(rel).is_dir()

    def files_under(self, rel: str) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self._path(rel)):
            dirnames.sort()
            base = Path(os.path.relpath(dirpath, self.root)).as_posix()
            found += [posixpath.normpath(posixpath.join(base, n)) for n in sorted(filenames)]
        return [f for f in found if self.is_file(f)]

    def subdirs(self, rel: str) -> list[str]:
        path = self._path(rel)
        return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []

    def read(self, rel: str) -> bytes:
        return self._path(rel).read_bytes()

    def digest(self, rel: str) -> str:
        digest = self._known.get(rel) or self._digests.get(rel)
        if digest is None:
            digest = self._digests[rel] = blob_id(self.read(rel))
        return digest


class GitSource(Source):
    """Files of a commit, listed and read from git without a checkout."""

    def __init__(self, root: Path, commit: str) -> None:
        self.root, self.commit = root, commit
        self.label = commit[:12]
        self._files = git.ls_tree(root, commit)
        self._under: dict[str, list[str]] = {}
        self._children: dict[str, set[str]] = {}
        for rel in sorted(self._files):
            parts = rel.split("/")
            for depth in range(len(parts)):
                parent = "/".join(parts[:depth])
                self._under.setdefault(parent, []).append(rel)
                if depth + 1 < len(parts):
                    self._children.setdefault(parent, set()).add(parts[depth])
        self._blobs: dict[str, bytes] | None = None

    def is_file(self, rel: str) -> bool:
        return rel in self._files

    def is_dir(self, rel: str) -> bool:
        return rel in self._under and rel not in self._files

    def files_under(self, rel: str) -> list[str]:
        return list(self._under.get(rel, [])) if self.is_dir(rel) else []

    def subdirs(self, rel: str) -> list[str]:
        return sorted(self._children.get(rel, set()))

    def digest(self, rel: str) -> str:
        return self._files[rel]

    def export(self, rels: Sequence[str], dest: Path) -> None:
        """Write these files of the commit under dest, to render from."""
        git.export_files(self.root, self.commit, sorted(r for r in rels if r in self._files), dest)

    def read(self, rel: str) -> bytes:
        if self._blobs is None:
            # Kustomization files are all that hashing reads: fetch them in one git process.
            wanted = [b for r, b in self._files.items() if posixpath.basename(r) in KUSTOMIZATION_FILES]
            self._blobs = git.cat_blobs(self.root, wanted)
        blob = self._files[rel]
        if blob not in self._blobs:
            self._blobs |= git.cat_blobs(self.root, [blob])
        return self._blobs[blob]


def worktree_source(root: Path) -> FsSource:
    """The working tree; inside a git repository, unchanged files are identified from git's index."""
    return FsSource(root, git.clean_index_blobs(root) if git.is_repo(root) else None)


def clusters_in(source: Source) -> list[str]:
    """Clusters of a tree: a spec environments/<c>.yaml and a kustomization in overlays/<c>/."""
    return [
        c
        for c in source.subdirs("overlays")
        if source.is_file(f"environments/{c}.yaml") and source.kustomization(f"overlays/{c}")
    ]


# --------------------------------------------------------------------------- content hashes


def _references(doc: Mapping[str, Any]) -> Iterator[str]:
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
    """What an overlay's render depends on: files (relpath → blob id) and remote references."""

    files: Mapping[str, str]
    remotes: frozenset[str]


# Parsed kustomization files by blob id; never mutated after parsing.
_DOCS: dict[str, Any] = {}
_DOCS_LOCK = threading.Lock()


@dataclass
class InputHasher:
    """Content hashes of overlays in one source; memoises work shared by overlays (their bases)."""

    source: Source
    _dirs: dict[str, Inputs] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _doc(self, rel: str) -> Any:
        """A kustomization file parsed, memoised by content across sources (a diff's sides share most)."""
        digest = self.source.digest(rel)
        with _DOCS_LOCK:
            if digest in _DOCS:
                return _DOCS[digest]
        try:
            doc = yaml.load(self.source.read(rel), Loader=_Loader)
        except (yaml.YAMLError, UnicodeDecodeError):
            doc = None  # kustomize reports it when rendering; the bytes are hashed all the same
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
        kfile = src.kustomization(directory)
        doc = self._doc(kfile) if kfile else None
        for ref in _references(doc) if isinstance(doc, Mapping) else ():
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
            elif target not in seen:
                files[target] = "missing"  # kustomize fails on it (or a cycle); still part of the key
        result = Inputs(files, frozenset(remotes))
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


# --------------------------------------------------------------------------- rendering


@dataclass
class RenderStats:
    """How many overlays were rendered by kustomize and how many came from the cache (thread-safe)."""

    renders: int = 0
    cache_hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self.cache_hits += 1
            else:
                self.renders += 1


STATS = RenderStats()


@dataclass(frozen=True)
class RenderJob:
    """One overlay to render: a label for messages (usually the cluster), its directory and its hash."""

    label: str
    overlay: Path
    key: str
    cacheable: bool = True


@dataclass(frozen=True)
class Rendered:
    """Kustomize's output for one overlay, as text and (parsed on first use) as objects."""

    label: str
    key: str
    text: str
    from_cache: bool

    @cached_property
    def objects(self) -> list[dict[str, Any]]:
        return parse_objects(self.text, self.label)


def parse_objects(text: str, source: str = "") -> list[dict[str, Any]]:
    """Kubernetes objects of a rendered YAML stream (empty documents dropped)."""
    try:
        docs = load_yaml_documents(text)
    except yaml.YAMLError as err:
        raise UserError([Problem(source, message=f"rendered output is not YAML: {err} (check the overlay)")]) from None
    objects = [d for d in docs if d is not None]
    bad = [i for i, d in enumerate(objects) if not isinstance(d, dict)]
    if bad:
        raise UserError([Problem(source, message=f"rendered document {bad[0]} is not a mapping (check the overlay)")])
    return objects


def object_id(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(api group, kind, namespace, name): the identity of an object in a cluster."""
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    meta = obj.get("metadata") or {}
    return (group, str(obj.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def describe(obj: Mapping[str, Any]) -> str:
    """`Kind/namespace/name` (or `Kind/name` for objects without a namespace) for messages."""
    _, kind, namespace, name = object_id(obj)
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def join_path(path: str, part: str | int) -> str:
    """path extended by a key (`a.b`, or `a["b.c"]` when not an identifier) or an index (`a[0]`)."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    if part and part.replace("_", "a").replace("-", "a").isalnum():
        return f"{path}.{part}" if path else part
    return f"{path}[{json.dumps(part)}]"


def field_path(parts: Iterable[str | int]) -> str:
    """A dotted field path with [i] indices, e.g. spec.containers[0].env; odd keys quoted: a["b.c"]."""
    out = ""
    for part in parts:
        out = join_path(out, part)
    return out


def sorted_objects(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects in a stable order: api group, kind, namespace, name."""
    return sorted(objects, key=object_id)


def object_set(rendered: Mapping[str, Rendered]) -> list[tuple[str, dict[str, Any]]]:
    """(cluster, object) of several clusters' renders, sorted by cluster, api group, kind, namespace, name."""
    return [(cluster, obj) for cluster in sorted(rendered) for obj in sorted_objects(rendered[cluster].objects)]


def from_cache(job: RenderJob, cache: RenderCache | None) -> Rendered | None:
    """The cached render of a job, if there is one (counted in STATS)."""
    text = cache.get(job.key) if cache is not None and job.cacheable else None
    if text is None:
        return None
    STATS.count(hit=True)
    return Rendered(job.label, job.key, text, from_cache=True)


def _render_one(job: RenderJob, tool: kustomize.Kustomize, cache: RenderCache | None) -> Rendered:
    if hit := from_cache(job, cache):
        return hit
    text = tool.build(job.overlay, label=job.label)
    STATS.count(hit=False)
    if cache is not None and job.cacheable:
        cache.put(job.key, text)
    return Rendered(job.label, job.key, text, from_cache=False)


def render_jobs(
    jobs: Sequence[RenderJob],
    tool: kustomize.Kustomize,
    cache: RenderCache | None,
    workers: int | None = None,
) -> list[Rendered]:
    """Render every job, one kustomize process per overlay in parallel; all failures in one UserError."""
    results = render_jobs_settled(jobs, tool, cache, workers)
    problems = [p for r in results if isinstance(r, UserError) for p in r.problems]
    if problems:
        raise UserError(problems)
    return [r for r in results if isinstance(r, Rendered)]


def render_jobs_settled(
    jobs: Sequence[RenderJob],
    tool: kustomize.Kustomize,
    cache: RenderCache | None,
    workers: int | None = None,
) -> list[Rendered | UserError]:
    """Like render_jobs, but a failed job yields its UserError in its place instead of raising."""
    if not jobs:
        return []
    workers = max(1, min(len(jobs), workers or os.cpu_count() or 1))
    results: list[Rendered | UserError] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_render_one, job, tool, cache) for job in jobs]
        for future in futures:
            try:
                results.append(future.result())
            except UserError as err:
                results.append(err)
    if cache is not None and any(isinstance(r, Rendered) and not r.from_cache for r in results):
        cache.prune()
    return results


def make_job(hasher: InputHasher, label: str, overlay: str, directory: Path, kustomize_version: str) -> RenderJob:
    """A job rendering `directory`, keyed by the hash of `overlay` in the hasher's source."""
    remote = bool(hasher.inputs(overlay).remotes)  # remote inputs can change unseen: never cached
    return RenderJob(label, directory, hasher.overlay_hash(overlay, kustomize_version), cacheable=not remote)


def render_clusters(
    root: Path,
    clusters: Sequence[str],
    *,
    cache: RenderCache | None = None,
    use_cache: bool = True,
    workers: int | None = None,
) -> dict[str, Rendered]:
    """Rendered output of each cluster's overlay (parallel, cached under <root>/.cache by default)."""
    root = root.absolute()
    tool = kustomize.find(root)
    hasher = InputHasher(worktree_source(root))
    if use_cache and cache is None:
        cache = default_cache(root)
    jobs = [make_job(hasher, c, f"overlays/{c}", overlay_dir(root, c), tool.version) for c in clusters]
    rendered = render_jobs(jobs, tool, cache if use_cache else None, workers)
    return {r.label: r for r in rendered}


def render_cluster(root: Path, cluster: str, *, use_cache: bool = True) -> Rendered:
    """Rendered output of one cluster (UserError listing known clusters when it does not exist)."""
    select_clusters(root, [cluster])
    return render_clusters(root, [cluster], use_cache=use_cache)[cluster]
