"""The overlays/ tree on disk: what build would write, what is there, and writing it so that it is never half-written.

How `write` (the write phase of build and bump) keeps every overlay whole:

* **One writer at a time.** The write phase holds an exclusive `flock` on .cache/cave-gitops/overlays.lock, in
  which the holder writes its pid and start time. A second build waits, and after about a second says on stderr
  whom it waits for (`build --no-wait` refuses instead, exit 2). The kernel drops the lock with its holder, so a
  killed build never blocks the next one. Loading and compiling specs happen before, outside the lock; what to
  write is decided under it, against what is on disk then, so two builds at once leave what one build leaves.
* **Staged, then swapped in.** Each changed overlay is first written whole beside its place, to
  overlays/.build-new-<c>-<rand>/, then swapped in:
  - where the system exchanges two paths in one step (Linux renameat2 RENAME_EXCHANGE; ext4, xfs, btrfs, tmpfs
    and overlayfs have it), overlays/<c> and the staged folder trade places atomically: overlays/<c> always exists
    and is whole, old or new. The staged name then holds the old overlay, which is deleted;
  - elsewhere (macOS, filesystems without it) two renames: overlays/<c> → overlays/.build-old-<c>-<rand>, the
    staged folder → overlays/<c>, then the old is deleted. Between the two renames overlays/<c> is missing and the
    whole old overlay sits beside it under .build-old-.
  An overlay that did not exist is one rename. One being removed (its spec is gone) is renamed to
  overlays/.build-rm-<c>-<rand>, then deleted. Every temporary name starts with `.build-` (ignored by git, never
  taken for an overlay: cluster names start with a letter).
* **Repair.** Every command that reads or writes overlays (build, bump, check, render, validate, diff) first looks
  for `.build-*` leftovers of a killed build and, under the lock, repairs them with a note on stderr: a
  .build-old-<c>-* is renamed back when overlays/<c> is missing (the crash came between the two renames, and the
  old overlay is whole), and every other leftover is deleted (a staged overlay not swapped in, an old one swapped
  out, a removal cut short). So after a crash at any point each overlay is whole, old or new (at worst until the
  next command, in the two-rename case), and no leftover survives the next command. Overlays are swapped one by
  one, so a killed build may leave some old and others new, each whole: `check` names them, the next build
  finishes. Files are not fsynced: a power cut is not covered, a killed process is.
* **Not chosen.** Overlays as symlinks to versioned folders (one rename swaps a link) keep the path too, but git
  would commit the links and Argo CD would read them; writing file by file over the old overlay never loses the
  folder, but leaves an overlay of old and new files.
* **Errors.** A failure (a file where a folder should be, no permission, a full disk) swaps back the overlays
  already swapped in, deletes the staged ones and is one line, `overlays/<c>: cannot write (why) (how to fix)`;
  overlays/ is then as it was.
* **Hand edits.** Build records the blob ids of what it wrote (.cache/cave-gitops/written/<c>.json). A file on
  disk that build is about to replace or delete and that is neither what build last wrote nor the committed
  version (git HEAD) was edited or added by hand: `write` returns it, build names it on stderr, and `check` lists
  such files first. A file as committed is not judged (build's, or a hand edit someone committed: `check` says
  "stale or hand-edited"), nor is an overlay with no record at all (no cache, not committed). A fresh clone thus
  still tells an uncommitted hand edit; only a build whose record was deleted since can be taken for one.

One module on purpose (over 500 lines): the lock, the swap, the repair and the hand-edit record are one protocol
over one folder; each part's correctness depends on the others' (the repair undoes exactly what the swap does).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import json
import os
import secrets
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from compiler import git
from compiler.build.argocd import compile_argocd
from compiler.build.compile import GENERATED_MARK, compile_cluster
from compiler.errors import Problem, UserError
from compiler.paths import ARGOCD_DIR, ENV_DIR, OVERLAYS, SETTINGS_FILE, STATE_DIR
from compiler.spec.load import Loaded
from compiler.spec.settings import load_settings

ARGOCD = ARGOCD_DIR  # overlays/argocd/: the app-of-apps, never a cluster, never removed as an orphan
Tree = dict[str, bytes]

LOCK_FILE = STATE_DIR / "overlays.lock"  # flock'ed for the write phase; holds "pid N, started T"
WRITTEN_DIR = STATE_DIR / "written"  # <overlay>.json: {file: blob id} of what build last wrote there
LEFTOVER = ".build-"  # every temporary name in overlays/ starts with it (.gitignore: overlays/.build-*/)
STAGED, ASIDE, DOOMED = f"{LEFTOVER}new-", f"{LEFTOVER}old-", f"{LEFTOVER}rm-"
WAIT_NOTE_S = 1.0  # a build waiting longer than this for the lock says whom it waits for
HAND_EDITED, HAND_ADDED = "hand-edited", "hand-added"  # what classify() calls a file build did not write
STALE, UNKNOWN = "stale", "stale or hand-edited"


def expected(loaded: dict[str, Loaded], clusters: list[str] | None = None) -> dict[str, Tree]:
    """Overlay files of the given clusters (all when None), compiled in memory."""
    if ARGOCD in loaded:
        doc = loaded[ARGOCD].doc
        raise UserError([Problem(doc.path, 1, 1, f"the name {ARGOCD!r} is reserved for {OVERLAYS}/{ARGOCD}/, the "
                                                 "Argo CD app-of-apps (rename the spec and its `name`)")])
    names = sorted(loaded) if clusters is None else clusters
    return {name: compile_cluster(loaded[name].spec, f"{ENV_DIR}/{name}.yaml") for name in names}


def expected_argocd(root: Path, loaded: dict[str, Loaded]) -> Tree | None:
    """Files of overlays/argocd/ from gitops.yaml and every spec; None when the repository has no gitops.yaml."""
    settings = load_settings(root)
    return None if settings is None else compile_argocd(settings, loaded)


def expected_all(root: Path, loaded: dict[str, Loaded], clusters: list[str] | None = None) -> dict[str, Tree]:
    """Cluster overlays (all when None) plus overlays/argocd/, which spans every cluster and so is always built."""
    trees = expected(loaded, clusters)
    argocd = expected_argocd(root, loaded)
    if argocd is not None:
        trees[ARGOCD] = argocd
    return trees


def is_generated(directory: Path) -> bool:
    """Whether build wrote this folder (its kustomization.yaml carries the mark); False when it cannot be read."""
    k = directory / "kustomization.yaml"
    try:
        return k.is_file() and GENERATED_MARK in k.read_text(encoding="utf-8", errors="replace")[:400]
    except OSError:
        return False


def abandoned_argocd(root: Path) -> str | None:
    """Why overlays/argocd/ is left as it is though build no longer writes it (gitops.yaml is gone), if so."""
    if (root / SETTINGS_FILE).is_file() or not is_generated(root / OVERLAYS / ARGOCD):
        return None
    return (f"{OVERLAYS}/{ARGOCD}/: {SETTINGS_FILE} is gone, so build no longer writes it and never deletes it "
            f"(restore {SETTINGS_FILE}, or delete {OVERLAYS}/{ARGOCD}/ by hand if Argo CD no longer deploys this "
            "repository)")


def read_tree(directory: Path) -> Tree:
    if not directory.is_dir():
        return {}
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def generated_overlays(root: Path) -> list[str]:
    """Cluster overlay directories this compiler wrote (their kustomization.yaml carries the generated mark)."""
    base = root / OVERLAYS
    if not base.is_dir():
        return []
    return [d.name for d in sorted(base.iterdir())
            if d.name != ARGOCD and not d.name.startswith(".") and d.is_dir() and is_generated(d)]



def _say(message: str) -> None:
    print(message, file=sys.stderr)


# --------------------------------------------------------------------------- errors


def _how(err: OSError) -> str:
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"make {OVERLAYS}/ writable for you, e.g. chmod -R u+w {OVERLAYS}, then build again"
    if err.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENOTEMPTY):
        return "a file is where a folder should be, or the reverse: move it away, then build again"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some disk space, then build again"
    return "fix that, then build again"


def cannot_write(where: str, err: OSError, *, unchanged: bool = True) -> UserError:
    """`overlays/<c>: cannot write (why) (how to fix)`: one line, exit 2."""
    why = err.strerror or type(err).__name__
    if err.filename:
        why += f": {_shown(err.filename)}"
    state = f"; {OVERLAYS}/ is unchanged" if unchanged else "; some overlays could not be put back: build again"
    return UserError(f"{where}: cannot write ({why}{state}) ({_how(err)})")


def _shown(filename: object) -> str:
    """A path of an OSError, from overlays/ on when it is in there."""
    text = os.fsdecode(filename) if isinstance(filename, (str, bytes)) else str(filename)
    marker = f"/{OVERLAYS}/"
    return text[text.rindex(marker) + 1:] if marker in text else text


# --------------------------------------------------------------------------- the lock

_held: set[Path] = set()  # roots whose lock this process holds (the lock is re-entrant within a process)


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"


def _acquire(fd: int, path: Path, wait: bool) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    if not wait:
        raise UserError(f"{OVERLAYS}/: another build is writing it ({_holder(path)}) (wait until it is done, or "
                        "leave out --no-wait to wait for it)")
    deadline = time.monotonic() + WAIT_NOTE_S
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            continue
    _say(f"{OVERLAYS}/: waiting for another build to finish writing it ({_holder(path)}; lock {LOCK_FILE})")
    fcntl.flock(fd, fcntl.LOCK_EX)


@contextlib.contextmanager
def locked(root: Path, *, wait: bool = True) -> Iterator[None]:
    """Hold the overlays/ write lock of `root` (re-entrant); `wait=False` refuses (UserError) when it is taken."""
    key = root.resolve()
    if key in _held:
        yield
        return
    path = root / LOCK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as err:
        raise UserError(f"{LOCK_FILE}: cannot write ({err.strerror}) (build keeps its lock in "
                        f"{STATE_DIR.parts[0]}/: make it, and the repository's top folder, writable for you, then "
                        "try again)") from None
    try:
        try:
            _acquire(fd, path, wait)
        except OSError as err:  # e.g. ENOLCK on a network filesystem
            raise UserError(f"{LOCK_FILE}: cannot lock ({err.strerror}) (keep the repository on a local disk)") \
                from None
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, started {started}\n".encode(), 0)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
    finally:
        os.close(fd)  # drops the lock


# --------------------------------------------------------------------------- swapping and repair

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a libc without it (glibc < 2.28, some musl)
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step; False where the system or the filesystem cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fsdecode(b))


def _delete(path: Path) -> bool:
    """Delete a file or folder tree of ours (folders without write permission made writable first); whether it
    is gone."""
    if path.is_dir() and not path.is_symlink():
        def writable_and_again(func: Callable[[str], object], failed: str, _exc: object) -> None:
            with contextlib.suppress(OSError):
                parent = os.path.dirname(failed)
                os.chmod(parent, os.stat(parent).st_mode | stat.S_IRWXU)
                if os.path.isdir(failed) and not os.path.islink(failed):
                    os.chmod(failed, os.stat(failed).st_mode | stat.S_IRWXU)
                    shutil.rmtree(failed, ignore_errors=True)
                else:
                    func(failed)

        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=writable_and_again)
        else:
            shutil.rmtree(path, onerror=writable_and_again)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
    return not os.path.lexists(path)


def _leftovers(target: Path) -> list[Path]:
    try:
        return sorted(p for p in target.iterdir() if p.name.startswith(LEFTOVER))
    except OSError:
        return []


def _cluster_of(leftover: str, prefix: str) -> str:
    return leftover[len(prefix):].rpartition("-")[0]


def repair(root: Path) -> None:
    """Undo what a killed write left in overlays/ (see the module docstring); call it holding the lock.

    Notes on stderr; an old overlay that cannot be moved back now is named and kept.
    """
    target = root / OVERLAYS
    found = _leftovers(target)
    keep: set[Path] = set()
    for path in found:  # before anything is deleted: an old overlay may be the only copy
        olds = [(path, _cluster_of(path.name, ASIDE))] if path.name.startswith(ASIDE) else []
        if not path.name.startswith((STAGED, ASIDE, DOOMED)) and (path / "old").is_dir():
            olds = [(old, old.name) for old in sorted((path / "old").iterdir())]  # earlier layout: .build-X/old/<c>
        for old, name in olds:
            if not name or os.path.lexists(target / name):
                continue
            shown = old.relative_to(target).as_posix()
            try:
                os.rename(old, target / name)
            except OSError as err:
                keep.add(path)
                _say(f"note: {OVERLAYS}/{name}/ is missing; its previous version is in {OVERLAYS}/{shown}/, which "
                     f"could not be moved back ({err.strerror}) (move it back by hand)")
                continue
            _say(f"note: {OVERLAYS}/{name}/: restored the previous overlay, which an interrupted build had moved "
                 f"aside to {OVERLAYS}/{shown}/")
    removed: list[str] = []
    failed: list[str] = []
    for path in found:
        if path in keep or not os.path.lexists(path):
            continue
        _delete(path)
        (failed if os.path.lexists(path) else removed).append(path.name)
    if removed:
        _say(f"note: {OVERLAYS}/: removed what an interrupted build left: {', '.join(removed)}")
    if failed:
        _say(f"note: {OVERLAYS}/: could not remove {', '.join(failed)}, left by an interrupted build (remove them "
             "by hand)")


def recover(root: Path) -> None:
    """Repair leftovers of a killed build before reading overlays/ (a no-op, without taking the lock, when there
    are none). Waits for a build that is writing, as its folders are leftovers only once it is gone."""
    if not _leftovers(root / OVERLAYS):
        return
    try:
        with locked(root):
            repair(root)
    except UserError as err:
        _say(f"note: {OVERLAYS}/: leftovers of an interrupted build not repaired: {err} (run python -m compiler "
             "build where the repository is writable)")


# --------------------------------------------------------------------------- hand edits

def _read_written(root: Path, name: str) -> dict[str, str] | None:
    try:
        data = json.loads((root / WRITTEN_DIR / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    return {str(k): v for k, v in data.items()}


def _record_written(root: Path, trees: dict[str, Tree], removed: list[str]) -> None:
    """Remember what each overlay now holds as build's (a cache: a failure only costs hand-edit detection)."""
    directory = root / WRITTEN_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, tree in trees.items():
            blobs = {rel: git.blob_id(data) for rel, data in sorted(tree.items())}
            if _read_written(root, name) == blobs:
                continue
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(blobs, out, sort_keys=True)
            os.replace(tmp, directory / f"{name}.json")
        for name in removed:
            (directory / f"{name}.json").unlink(missing_ok=True)
    except OSError:
        pass


def _committed(root: Path) -> dict[str, str]:
    """Blob ids of the files under overlays/ at git HEAD (path relative to the root); empty outside git."""
    try:
        if git.resolve(root, "HEAD") is None:
            return {}
        files = git.ls_tree(root, "HEAD")
    except UserError:
        return {}
    return {path: blob for path, blob in files.items() if path.startswith(f"{OVERLAYS}/")}


@dataclass(frozen=True)
class Record:
    """What is known of one overlay's files: the blob ids build last wrote there, and the committed ones (git
    HEAD); None for what is not known (no record of a build here, not committed)."""

    written: dict[str, str] | None
    committed: dict[str, str] | None


def records(root: Path, names: list[str]) -> dict[str, Record]:
    """The Record of each overlay named."""
    committed = _committed(root) if names else {}
    out = {}
    for name in names:
        start = f"{OVERLAYS}/{name}/"
        files = {path[len(start):]: blob for path, blob in committed.items() if path.startswith(start)}
        out[name] = Record(_read_written(root, name), files or None)
    return out


def classify(record: Record, on_disk: Tree, new: Tree) -> dict[str, str]:
    """Each file on disk that `new` replaces or deletes: STALE (the bytes build last wrote there), HAND_EDITED or
    HAND_ADDED (bytes neither build wrote last nor committed, in an overlay with a record; ADDED when neither has
    the file at all), else UNKNOWN (committed as it is: build's, or a hand edit someone committed; or no record)."""
    written, committed = record.written, record.committed
    out: dict[str, str] = {}
    for rel, data in sorted(on_disk.items()):
        if new.get(rel) == data:
            continue
        blob = git.blob_id(data)
        if written is not None and written.get(rel) == blob:
            out[rel] = STALE
        elif (committed is not None and committed.get(rel) == blob) or (written is None and committed is None):
            out[rel] = UNKNOWN
        else:
            out[rel] = HAND_EDITED if rel in (written or {}) or rel in (committed or {}) else HAND_ADDED
    return out


# --------------------------------------------------------------------------- writing


@dataclass
class Written:
    """What `write` did: overlays replaced, overlays removed, and the files build had not written that it replaced
    or deleted, as the line to print: `overlays/<c>/<file>` -> `replaced hand-edited` (or `removed hand-added`...)."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    hand_edits: dict[str, str] = field(default_factory=dict)


def _write_tree(directory: Path, tree: Tree) -> None:
    directory.mkdir()
    for parent in sorted({(directory / rel).parent for rel in tree}):  # one mkdir per directory, not per file
        parent.mkdir(parents=True, exist_ok=True)
    for rel, data in tree.items():
        (directory / rel).write_bytes(data)


def _prepare(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise UserError(f"{OVERLAYS}/: cannot write (it is a file, not a folder) (move the file {OVERLAYS} away, "
                        "then build again)")
    try:
        target.mkdir(exist_ok=True)
    except OSError as err:
        raise cannot_write(f"{OVERLAYS}/", err) from None


def read_overlay(root: Path, name: str) -> Tree:
    """read_tree of overlays/<name>; a file that cannot be read is a one-line UserError, not a traceback."""
    try:
        return read_tree(root / OVERLAYS / name)
    except OSError as err:
        why = f"{err.strerror}: {_shown(err.filename)}" if err.filename else str(err.strerror)
        raise UserError(f"{OVERLAYS}/{name}: cannot read ({why}) (make it readable for you, then try again)") \
            from None


def _swap_in(target: Path, name: str, staged: Path, aside: Path) -> Path | None:
    """Put `staged` at overlays/<name>; where the old overlay now is (to delete), None when there was none."""
    dest = target / name
    if not os.path.lexists(dest):
        os.rename(staged, dest)
        return None
    if exchange(staged, dest):
        return staged  # it holds the old overlay now
    os.rename(dest, aside)
    try:
        os.rename(staged, dest)
    except OSError:
        with contextlib.suppress(OSError):  # else the next command's repair moves it back
            os.rename(aside, dest)
        raise
    return aside


def _undo(target: Path, done: list[tuple[str, Path | None, bool]], tag: str) -> bool:
    """Put back every overlay in `done` ((name, where the old one is, whether a new one was swapped in)), newest
    first; whether all went back."""
    ok = True
    for name, old, placed in reversed(done):
        dest = target / name
        try:
            if placed:
                doomed = target / f"{DOOMED}{name}-{tag}-undo"
                if old is not None and exchange(old, dest):
                    _delete(old)
                    continue
                os.rename(dest, doomed)
                _delete(doomed)
            if old is not None:
                os.rename(old, dest)
        except OSError:
            ok = False
    return ok


def write(root: Path, trees: dict[str, Tree], remove: Sequence[str] = (), *, keep: Collection[str] | None = None,
          wait: bool = True) -> Written:
    """Replace the overlays that differ from `trees` and delete the `remove` ones, and with `keep` (the clusters
    that have a spec) every generated cluster overlay not in it, found under the lock. Holds the lock (waiting for
    it unless `wait` is False); each overlay is swapped in whole, and on an error none is (module docstring)."""
    target = root / OVERLAYS
    with locked(root, wait=wait):
        repair(root)
        _prepare(target)
        if keep is not None:
            remove = [*remove, *(c for c in generated_overlays(root) if c not in keep and c not in remove)]
        on_disk = {name: read_overlay(root, name) for name in trees}
        changed = {name: tree for name, tree in trees.items()
                   if on_disk[name] != tree or not (target / name).is_dir() or (target / name).is_symlink()}
        remove = [name for name in remove if os.path.lexists(target / name)]
        result = Written(sorted(changed), sorted(remove))
        if changed or remove:
            _check_hand_edits(root, target, changed, remove, on_disk, result)
            _swap_all(target, changed, remove)
        _record_written(root, trees, remove)
    return result


def _check_hand_edits(root: Path, target: Path, changed: dict[str, Tree], remove: list[str],
                      on_disk: dict[str, Tree], result: Written) -> None:
    for name in remove:
        on_disk[name] = read_overlay(root, name)
    known = records(root, [*changed, *remove])
    for name in [*changed, *remove]:
        dest = target / name
        if os.path.lexists(dest) and (dest.is_symlink() or not dest.is_dir()):
            what = f"{HAND_ADDED} {'link' if dest.is_symlink() else 'file'}"
            result.hand_edits[f"{OVERLAYS}/{name}"] = f"{'replaced' if name in changed else 'removed'} {what}"
            continue
        new = changed.get(name, {})
        for rel, kind in classify(known[name], on_disk[name], new).items():
            if kind in (HAND_EDITED, HAND_ADDED):
                result.hand_edits[f"{OVERLAYS}/{name}/{rel}"] = f"{'replaced' if rel in new else 'removed'} {kind}"


def _swap_all(target: Path, changed: dict[str, Tree], remove: list[str]) -> None:
    tag = secrets.token_hex(4)
    staged: dict[str, Path] = {}
    try:
        for name, tree in changed.items():
            staged[name] = target / f"{STAGED}{name}-{tag}"
            _write_tree(staged[name], tree)
    except OSError as err:
        for path in staged.values():
            _delete(path)
        raise cannot_write(f"{OVERLAYS}/{name}", err) from None
    done: list[tuple[str, Path | None, bool]] = []
    try:
        for name in [*changed, *remove]:
            if name in changed:
                done.append((name, _swap_in(target, name, staged[name], target / f"{ASIDE}{name}-{tag}"), True))
            else:
                doomed = target / f"{DOOMED}{name}-{tag}"
                os.rename(target / name, doomed)
                done.append((name, doomed, False))
    except OSError as err:
        back = _undo(target, done, tag)
        for path in staged.values():
            if os.path.lexists(path):
                _delete(path)
        raise cannot_write(f"{OVERLAYS}/{name}", err, unchanged=back) from None
    kept = [old.name for _name, old, _placed in done if old is not None and not _delete(old)]
    if kept:
        _say(f"note: {OVERLAYS}/: could not remove {', '.join(kept)}, the previous overlays (remove them by hand)")
