"""Where overlays come from: the working tree or a git ref, and the clusters they hold."""

from __future__ import annotations

import bisect
import os
import posixpath
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from compiler import git
from compiler.paths import OVERLAYS, overlay_rel, spec_rel
from compiler.spec.fleet import select

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


# --------------------------------------------------------------------------- clusters and overlays


def overlay_dir(root: Path, cluster: str) -> Path:
    return root / OVERLAYS / cluster


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
    return select(requested, list_clusters(root), path=OVERLAYS)


# --------------------------------------------------------------------------- input trees



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
        return git.blob_id(self.read(rel))

    def kustomization(self, directory: str) -> str | None:
        """The kustomization file of a directory (relative path), if it has one."""
        for name in KUSTOMIZATION_FILES:
            rel = posixpath.join(directory, name) if directory else name
            if self.is_file(rel):
                return rel
        return None


class FsSource(Source):
    """Files on disk under root; `known` blob ids (from git's index) save reading unchanged files."""

    def __init__(self, root: Path, known: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None) -> None:
        self.root = root
        self.label = str(root)
        self._source = known  # or how to get them, on first need (a diff that touches no file never asks git)
        self._known_blobs: Mapping[str, str] | None = None
        self._digests: dict[str, str] = {}

    @property
    def _known(self) -> Mapping[str, str]:
        if self._known_blobs is None:
            known = self._source() if callable(self._source) else self._source
            self._known_blobs = known if known is not None else {}
        return self._known_blobs

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
            digest = self._digests[rel] = git.blob_id(self.read(rel))
        return digest


class GitSource(Source):
    """Files of a commit, listed and read from git without a checkout."""

    def __init__(self, root: Path, commit: str) -> None:
        self.root, self.commit = root, commit
        self.label = commit[:12]
        self.prefix = git.show_prefix(root)  # where root is in the repository: the commit's tree is read from there
        self._files = git.ls_tree(root, commit)
        self._sorted = sorted(self._files)  # a directory's files are one slice of it (bisect), at any tree size
        self._blobs: dict[str, bytes] | None = None

    def _below(self, rel: str) -> list[str]:
        """The files below a directory ("" for the root), in path order."""
        if not rel:
            return self._sorted
        start = bisect.bisect_left(self._sorted, rel + "/")
        end = bisect.bisect_left(self._sorted, rel + "0")  # "0" follows "/": the end of the "rel/" range
        return self._sorted[start:end]

    def is_file(self, rel: str) -> bool:
        return rel in self._files

    def is_dir(self, rel: str) -> bool:
        return rel not in self._files and bool(self._below(rel))

    def files_under(self, rel: str) -> list[str]:
        return list(self._below(rel)) if self.is_dir(rel) else []

    def subdirs(self, rel: str) -> list[str]:
        skip = len(rel) + 1 if rel else 0
        return sorted({path[skip:].split("/", 1)[0] for path in self._below(rel) if "/" in path[skip:]})

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


class AsCommitted(Mapping[str, str]):
    """The blob ids of a commit's files (GitSource) that the working tree still has as committed: those
    git.changed_paths does not list (nor a directory of it). Looked up one path at a time, so a diff of a large tree
    never lists it whole."""

    def __init__(self, commit: GitSource, changed: frozenset[str]) -> None:
        self._files = commit._files
        self._changed = changed

    def __getitem__(self, rel: str) -> str:
        if rel not in self._files or git.may_differ(self._changed, rel):
            raise KeyError(rel)
        return self._files[rel]

    def __iter__(self) -> Iterator[str]:
        return (rel for rel in self._files if not git.may_differ(self._changed, rel))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def worktree_source(root: Path) -> FsSource:
    """The working tree; inside a git repository, unchanged files are identified from git's index."""
    return FsSource(root, (lambda: git.clean_index_blobs(root) if git.index_vouches(root) else {})
                    if git.is_repo(root) else None)  # fmt: skip


def clusters_in(source: Source) -> list[str]:
    """Clusters of a tree: a spec environments/<c>.yaml and a kustomization in overlays/<c>/."""
    return [
        c
        for c in source.subdirs(OVERLAYS)
        if source.is_file(spec_rel(c)) and source.kustomization(overlay_rel(c))
    ]
