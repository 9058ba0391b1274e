"""Every git call the compiler makes: resolving refs and materialising a ref's tree into a directory."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from compiler.errors import UserError

GIT_TIMEOUT_S = 120.0


def run(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `git -C root args...`; a failure becomes a one-line UserError."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise UserError("git is not installed (install git)") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"git {' '.join(args)} took over {GIT_TIMEOUT_S:.0f} s (check the repository)") from None
    if check and proc.returncode != 0:
        reason = " ".join(proc.stderr.split()) or f"exit code {proc.returncode}"
        raise UserError(f"git {' '.join(args)} failed: {reason} (check the repository and ref)")
    return proc


def is_repo(root: Path) -> bool:
    return run(root, "rev-parse", "--git-dir", check=False).returncode == 0


def resolve(root: Path, ref: str) -> str | None:
    """The commit id a ref names, or None when it names no commit."""
    proc = run(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def merge_base(root: Path, a: str, b: str) -> str | None:
    proc = run(root, "merge-base", a, b, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def default_base(root: Path) -> tuple[str, str]:
    """(label, commit) to diff against: merge-base of origin/main and HEAD, else HEAD."""
    require_repo(root)
    if resolve(root, "origin/main") and (base := merge_base(root, "origin/main", "HEAD")):
        return "merge-base origin/main HEAD", base
    head = resolve(root, "HEAD")
    if head is None:
        raise UserError("the repository has no commits yet (commit once, or pass --base REF)")
    return "HEAD", head


def require_repo(root: Path) -> None:
    if not is_repo(root):
        raise UserError(f"{root} is not inside a git repository (run from the repository, or pass -C ROOT)")


def resolve_base(root: Path, ref: str | None) -> tuple[str, str]:
    """(label, commit) of the --base ref, or of the default base when no ref is given."""
    if ref is None:
        return default_base(root)
    require_repo(root)
    commit = resolve(root, ref)
    if commit is None:
        raise UserError(f"unknown git ref {ref!r} (fetch it, or pass an existing --base REF)")
    return ref, commit


def export_files(root: Path, commit: str, paths: Sequence[str], dest: Path, chunk: int = 2000) -> None:
    """Write files of the commit's tree (paths relative to root) under dest: git archive, unpacked
    in-process with tarfile's safe "data" filter."""
    dest.mkdir(parents=True, exist_ok=True)
    prefix = show_prefix(root)
    treeish = f"{commit}:{prefix}" if prefix else commit
    # Pathspecs are read relative to the working directory: run at the top, where the subtree is root.
    top = Path(run(root, "rev-parse", "--show-toplevel").stdout.strip())
    for start in range(0, len(paths), chunk):
        _archive(top, treeish, paths[start : start + chunk], dest)


def _archive(root: Path, treeish: str, paths: Sequence[str], dest: Path) -> None:
    proc = subprocess.Popen(
        ["git", "-C", str(root), "archive", "--format=tar", treeish, "--", *paths],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            archive.extractall(dest, filter="data")
    except tarfile.TarError as err:
        proc.kill()
        raise UserError(f"git archive {treeish[:12]} gave a bad archive: {err} (check the repository)") from None
    finally:
        stderr = proc.stderr.read().decode(errors="replace")
        proc.wait(timeout=GIT_TIMEOUT_S)
        proc.stdout.close()
        proc.stderr.close()
    if proc.returncode != 0:
        raise UserError(f"git archive {treeish[:12]} failed: {' '.join(stderr.split())} (check the repository)")


def show_prefix(root: Path) -> str:
    """root's path inside its repository ("" at the top), with a trailing slash."""
    return run(root, "rev-parse", "--show-prefix").stdout.strip()


def _nul_records(text: str) -> list[str]:
    return [r for r in text.split("\0") if r]


_TREES: dict[tuple[str, str, str], dict[str, str]] = {}  # (root, commit id, prefix) → ls_tree: a commit never changes
_COMMIT_ID = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


def ls_tree(root: Path, commit: str) -> dict[str, str]:
    """Every file of the commit's tree under root (path relative to root → blob id), no checkout; remembered for
    the process when `commit` is a commit id (several stages of one diff read the same tree)."""
    prefix = show_prefix(root)
    memo = (str(root), commit, prefix) if _COMMIT_ID.match(commit) else None
    if memo is not None and memo in _TREES:
        return dict(_TREES[memo])
    treeish = f"{commit}:{prefix}" if prefix else commit
    proc = run(root, "ls-tree", "-r", "-z", "--full-tree", treeish)
    files: dict[str, str] = {}
    for record in _nul_records(proc.stdout):
        meta, path = record.split("\t", 1)
        _mode, kind, blob = meta.split()
        if kind == "blob":
            files[path] = blob
    if memo is not None:
        if len(_TREES) >= 8:
            _TREES.clear()
        _TREES[memo] = files
        return dict(files)
    return files


def index_vouches(root: Path) -> bool:
    """Whether git's index can stand for the working tree's bytes under root, as changed_paths and
    clean_blobs_under rely on: no file marked assume-unchanged or skip-worktree, no submodule, no unmerged entry, and
    no attributes or end-of-line settings (autocrlf, eol, filters) under which a file git calls unmodified may hold
    other bytes than its blob. When it cannot, callers read the files themselves."""
    for record in _nul_records(run(root, "ls-files", "-s", "-v", "-z").stdout):
        if record[:1] != "H" or record[2:8] == "160000":  # "h"/"S": assume-unchanged/skip-worktree; a gitlink
            return False
    if run(root, "ls-files", "-z", "--", ":(top,glob)**/.gitattributes").stdout:
        return False
    top = Path(run(root, "rev-parse", "--show-toplevel").stdout.strip())
    info = run(root, "rev-parse", "--git-path", "info/attributes").stdout.strip()
    if (top / ".gitattributes").exists() or (root / info).exists():
        return False
    settings = run(root, "config", "--get-regexp", r"^core\.(autocrlf|eol|attributesfile)$", check=False).stdout
    return all(line.split(" ", 1)[-1].strip().lower() == "false" for line in settings.splitlines() if line.strip())


def clean_blobs_under(root: Path, directory: str) -> tuple[dict[str, str], frozenset[str]]:
    """Blob ids of the files under `directory` (relative to root) that git's index vouches for, with everything
    else there: (path → blob id of regular files whose working-tree content matches the index, paths git cannot
    vouch for: modified, deleted, conflicted, untracked or ignored files, links and submodules — an untracked or
    ignored directory as one entry ending in "/")."""
    staged = run(root, "ls-files", "-s", "-z", "--", directory).stdout
    dirty = set(_nul_records(run(root, "diff-files", "--name-only", "--relative", "-z", "--", directory).stdout))
    dirty |= set(_nul_records(run(root, "ls-files", "--others", "--directory", "-z", "--", directory).stdout))
    files: dict[str, str] = {}
    for record in _nul_records(staged):
        meta, path = record.split("\t", 1)
        mode, blob, stage = meta.split()
        if stage == "0" and mode in ("100644", "100755") and path not in dirty:
            files[path] = blob
        else:
            dirty.add(path)
    return files, frozenset(dirty)


def changed_paths(root: Path, commit: str) -> frozenset[str] | None:
    """Paths under root (relative to it) where the working tree may differ from the commit's tree: tracked files
    changed, added or deleted since (staged or not), and every untracked or ignored path, a directory of them as one
    entry ending in "/". A path not in it, nor under such a directory, is as the commit has it (git's stat cache
    decides). None when git's index cannot vouch for the working tree (index_vouches): read everything then."""
    with ThreadPoolExecutor(max_workers=3) as pool:  # each walks the whole tree: at once
        vouches = pool.submit(index_vouches, root)
        diff = pool.submit(run, root, "diff", "--name-only", "--no-renames", "--relative", "-z", commit, "--")
        others = pool.submit(run, root, "ls-files", "--others", "--directory", "-z")
        if not vouches.result():
            return None
        return frozenset(_nul_records(diff.result().stdout)) | frozenset(_nul_records(others.result().stdout))


def may_differ(changed: frozenset[str], rel: str) -> bool:
    """Whether a file (or, with a trailing "/", anything under a directory) may differ, by changed_paths."""
    if rel.endswith("/"):
        return any(p.startswith(rel) or (p.endswith("/") and rel.startswith(p)) for p in changed)
    return rel in changed or any(rel.startswith(p) for p in changed if p.endswith("/"))


def cat_blobs(root: Path, blobs: Sequence[str]) -> dict[str, bytes]:
    """Contents of many blobs from one `git cat-file --batch`."""
    if not blobs:
        return {}
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "cat-file", "--batch"],
            input="".join(f"{b}\n" for b in blobs).encode(),
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"git cat-file took over {GIT_TIMEOUT_S:.0f} s (check the repository)") from None
    out, pos, contents = proc.stdout, 0, {}
    for blob in blobs:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        contents[blob] = out[pos : pos + size]
        pos += size + 1
    return contents


def clean_index_blobs(root: Path) -> dict[str, str]:
    """Blob ids of tracked files under root whose working-tree content matches the index (git's stat
    cache decides, so nothing is read); modified, deleted and conflicted files are left out."""
    staged = run(root, "ls-files", "-s", "-z").stdout
    dirty = set(_nul_records(run(root, "diff-files", "--name-only", "--relative", "-z").stdout))
    files: dict[str, str] = {}
    for record in _nul_records(staged):
        meta, path = record.split("\t", 1)
        mode, blob, stage = meta.split()
        if stage == "0" and mode != "160000" and path not in dirty:
            files[path] = blob
    return files


# --------------------------------------------------------------------------- the bump bot's branch work


def fetch(root: Path, remote: str) -> None:
    """Every branch of the remote into refs/remotes/<remote>/ (deleted ones pruned)."""
    run(root, "fetch", "--quiet", "--prune", "--no-tags", remote, f"+refs/heads/*:refs/remotes/{remote}/*")


def worktree_add(root: Path, path: Path, commit: str) -> None:
    """A detached working tree of the commit at path, sharing root's object store."""
    run(root, "worktree", "add", "--quiet", "--detach", str(path), commit)


def worktree_remove(root: Path, path: Path) -> None:
    run(root, "worktree", "remove", "--force", str(path), check=False)
    run(root, "worktree", "prune", check=False)


def commit_all(root: Path, message: str, name: str, email: str) -> str:
    """Commit every change under root as name <email> (author and committer); the new commit's id."""
    run(root, "add", "--all", ".")
    identity = ("-c", f"user.name={name}", "-c", f"user.email={email}")
    run(root, *identity, "commit", "--quiet", "--no-verify", "--no-gpg-sign", "-m", message)
    return run(root, "rev-parse", "HEAD").stdout.strip()


def blob_id(data: bytes) -> str:
    """Git's blob id of some bytes (what `git hash-object` prints): a file on disk compared with a commit's, or
    with what build wrote, without reading either again."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def tree_of(root: Path, commit: str) -> str:
    return run(root, "rev-parse", f"{commit}^{{tree}}").stdout.strip()


def push(root: Path, remote: str, commit: str, branch: str, expect: str | None) -> None:
    """Set the remote's branch to commit, only if it is still at `expect` (None: only if it does not exist)."""
    lease = f"--force-with-lease=refs/heads/{branch}:{expect or ''}"
    run(root, "push", "--quiet", lease, remote, f"{commit}:refs/heads/{branch}")
