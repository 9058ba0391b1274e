"""A kustomize that hangs or prints what is not UTF-8 (issue 17, class 1): `validate` stalled 601 s on a hung one.
Each run has a deadline ($CAVE_KUSTOMIZE_TIMEOUT, default 120 s): past it the whole process group is killed and
the error names the cluster and the limit; output that is not UTF-8 is one line naming the cluster."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from compiler.render import kustomize
from tests.support.hostile import digest, one_error, repo_copy, run

VERSION = "#!/bin/sh\nif [ \"$1\" = version ]; then echo 'v5.8.1'; exit 0; fi\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return repo_copy(tmp_path_factory.mktemp("hostile-kustomize") / "repo")


def _tool(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "kustomize"
    script.write_text(VERSION + body)
    script.chmod(0o755)
    return script


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_hung_kustomize_is_stopped_at_the_deadline(repo: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    # a wrapper that starts a child holding the output pipe, as real wrappers (kubectl plugins, npm shims) do
    tool = _tool(tmp_path, f"sleep 300 &\necho $! > {pids}/child.$$\nexec sleep 301\n")
    before = digest(repo, "overlays", "environments")
    started = time.monotonic()
    proc = run(repo, "validate", env={"KUSTOMIZE": str(tool), kustomize.TIMEOUT_ENV: "1"}, timeout=60)
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"validate took {elapsed:.0f} s"
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line and not line.startswith(("[", "kustomize "))]
    assert errors == [f"{cluster}: kustomize build did not finish within 1 s and was stopped ({tool} build; check "
                      f"that kustomize runs, or raise the limit with {kustomize.TIMEOUT_ENV}=SECONDS)"
                      for cluster in ("fanc", "global", "minnie")]
    children = [int(p.read_text()) for p in pids.iterdir()]
    assert len(children) == 3
    time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)], "the kustomize's children outlived the deadline"
    assert digest(repo, "overlays", "environments") == before


def test_output_that_is_not_utf8(repo: Path, tmp_path: Path) -> None:
    tool = _tool(tmp_path, r"printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\351\n'" + "\n")
    proc = run(repo, "render", "minnie", "--no-cache", env={"KUSTOMIZE": str(tool)})
    line = one_error(proc, "minnie: ")
    assert line == ("minnie: kustomize build printed bytes that are not UTF-8 (line 4 of its output, byte 0xe9; "
                    "save the files of the overlay and its bases as UTF-8)")
    assert proc.stdout == ""


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan"])
def test_bad_timeout_setting(repo: Path, tmp_path: Path, value: str) -> None:
    tool = _tool(tmp_path, "echo 'apiVersion: v1'\n")
    proc = run(repo, "render", "minnie", "--no-cache", env={"KUSTOMIZE": str(tool), kustomize.TIMEOUT_ENV: value})
    assert one_error(proc, f"${kustomize.TIMEOUT_ENV}: ") == (
        f"${kustomize.TIMEOUT_ENV}: {value!r} is not a number of seconds (set it to e.g. 120, or unset it)")
