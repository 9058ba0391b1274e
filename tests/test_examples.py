"""The example environments end to end: committed overlays render with real kustomize and validate strictly."""

from __future__ import annotations

import json

import pytest

from compiler.main import main
from tests.support import REPO


def test_examples_validate_against_kubernetes_and_crd_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--root", str(REPO), "validate", "--format", "json"])  # the repository's schemas/crds
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out) == []


def test_examples_cover_both_kinds_and_recent_kubernetes() -> None:
    from compiler.spec.load import load_environments

    specs = load_environments(REPO)
    assert {s.kind for s in specs.values()} == {"global", "local"}
    assert sum(s.kind == "local" for s in specs.values()) >= 2
    assert all(int(s.kubernetes_version.split(".")[1]) >= 30 for s in specs.values())
