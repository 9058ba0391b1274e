"""Every git call the compiler makes: resolving refs and materialising a ref's tree into a directory."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Sequence
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
        raise UserError(
            f"git {' '.join(args)} took over {GIT_TIMEOUT_S:.0f} s (check the repository)"
        ) from None
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


def existing_paths(root: Path, commit: str, paths: Sequence[str]) -> list[str]:
    """Those of `paths` (top-level names) that exist in the commit's tree."""
    proc = run(root, "ls-tree", "--name-only", commit, "--", *paths)
    present = set(proc.stdout.splitlines())
    return [p for p in paths if p in present]


def export_tree(root: Path, commit: str, paths: Sequence[str], dest: Path) -> None:
    """Write `paths` of the commit's tree under dest (git archive, unpacked safely in-process)."""
    wanted = existing_paths(root, commit, paths)
    dest.mkdir(parents=True, exist_ok=True)
    if not wanted:
        return
    proc = subprocess.Popen(
        ["git", "-C", str(root), "archive", "--format=tar", commit, "--", *wanted],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            archive.extractall(dest, filter="data")
    except tarfile.TarError as err:
        proc.kill()
        raise UserError(
            f"git archive {commit[:12]} gave a bad archive: {err} (check the repository)"
        ) from None
    finally:
        stderr = proc.stderr.read().decode(errors="replace")
        proc.wait(timeout=GIT_TIMEOUT_S)
        proc.stdout.close()
        proc.stderr.close()
    if proc.returncode != 0:
        raise UserError(
            f"git archive {commit[:12]} failed: {' '.join(stderr.split())} (check the repository)"
        )
