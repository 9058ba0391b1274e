"""Fixtures of the validate tests."""

from __future__ import annotations

import pytest

from compiler.validate.fleet import Fleet
from tests.support.fleet import current_fleet


@pytest.fixture(scope="module")
def now(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """The repository's example fleet as it is now (loaded once per test module)."""
    return current_fleet(tmp_path_factory.mktemp("fleet-now"))
