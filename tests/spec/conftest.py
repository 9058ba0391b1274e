"""Fixtures of the spec tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.specs import SENTINEL


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    (tmp_path / "overlays" / "minnie").mkdir(parents=True)
    (tmp_path / "overlays" / "minnie" / "kustomization.yaml").write_bytes(SENTINEL)
    return tmp_path
