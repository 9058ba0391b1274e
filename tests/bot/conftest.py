"""Fixtures of the bump bot's tests: real kustomize, and a fresh world (fake GitHub, registry, bare remote)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.render import kustomize
from tests.bot.world import World, make_world
from tests.support import REPO


@pytest.fixture(autouse=True)
def _kustomize(monkeypatch: pytest.MonkeyPatch) -> None:
    tool = kustomize.find(REPO).binary
    monkeypatch.setenv("KUSTOMIZE", shutil.which(tool) or tool)

@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)
