""".ci/setup's install of chromium for the Mermaid diagram tests: apt-get as root, through `sudo -n` when not root
(GitHub's runners), and a note saying why the tests will skip when neither can run. The script's own lines run by
bash, with stand-ins for `id`, `sudo` and `apt-get` on PATH that log how they were called, and chromium's paths
pointed somewhere empty (this machine has one)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support import REPO

SETUP = REPO / ".ci" / "setup"
FAKES = {
    "id": '#!/bin/sh\nif [ "$1" = -u ]; then echo "$FAKE_UID"; else exec /usr/bin/id "$@"; fi\n',
    "sudo": '#!/bin/sh\necho "sudo $*" >>"$LOG"\n[ "$1" = -n ] && shift\n[ "$FAKE_SUDO" = ok ] || exit 1\n'
            'exec "$@"\n',
    "apt-get": '#!/bin/sh\necho "apt-get $* as $FAKE_UID with DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >>"$LOG"\n',
}


def chromium_part(missing: Path) -> str:
    """The lines of .ci/setup that install chromium, looking for it under `missing` instead of /usr/bin."""
    text = SETUP.read_text(encoding="utf-8")
    start, end = text.index("  mermaid_log=$(mktemp)\n"), text.index("  mermaid_lock=")
    part = text[start:end]
    for browser in ("chromium", "chromium-browser", "google-chrome"):
        assert f"/usr/bin/{browser} ]" in part
        part = part.replace(f"/usr/bin/{browser} ]", f"{missing}/{browser} ]")
    return "set -euo pipefail\n" + part


def run(tmp_path: Path, uid: str, sudo: str) -> tuple[str, list[str]]:
    """(stderr, the log of the stand-ins) of the chromium lines run as user `uid` with sudo `sudo` (ok or not)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        (bin_dir / name).write_text(body, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "log"
    log.touch()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(log), "FAKE_UID": uid,
           "FAKE_SUDO": sudo}
    env.pop("DEBIAN_FRONTEND", None)
    proc = subprocess.run(["bash", "-c", chromium_part(tmp_path / "empty")], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr, log.read_text(encoding="utf-8").splitlines()


INSTALL = "install -y -qq --no-install-recommends chromium"


def test_not_root_installs_through_sudo(tmp_path: Path) -> None:
    err, log = run(tmp_path, "1001", "ok")
    assert log == ["sudo -n true", f"sudo -n env DEBIAN_FRONTEND=noninteractive apt-get {INSTALL}",
                   f"apt-get {INSTALL} as 1001 with DEBIAN_FRONTEND=noninteractive"]
    assert "installing chromium with sudo -n env DEBIAN_FRONTEND=noninteractive apt-get" in err


def test_root_installs_with_apt_get(tmp_path: Path) -> None:
    err, log = run(tmp_path, "0", "no")
    assert log == [f"apt-get {INSTALL} as 0 with DEBIAN_FRONTEND=noninteractive"]
    assert "installing chromium with apt-get (for the Mermaid diagram tests)" in err


def test_without_root_or_sudo_says_the_tests_will_skip(tmp_path: Path) -> None:
    err, log = run(tmp_path, "1001", "no")
    assert log == ["sudo -n true"]  # asked, refused: no apt-get
    assert "no chromium, and no apt-get as root or with sudo -n to install it: the Mermaid diagram tests will skip" \
        in err


def test_pytest_prints_why_a_test_skipped() -> None:
    """A diagram test skips when the renderer is missing: the reason must show in every run, CI's included."""
    import tomllib

    addopts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert "-rs" in addopts["addopts"].split()
