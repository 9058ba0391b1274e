"""The whole fake Google Cloud of the bootstrap end-to-end tests: every fake by API name, the example projects,
and `python -m compiler bootstrap` run in a repository (the `cloud` and `root` fixtures are in tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from compiler.main import main
from tests.support.fake_gcp.bigtable import FakeBigtable
from tests.support.fake_gcp.compute import FakeCompute
from tests.support.fake_gcp.container import FakeContainer
from tests.support.fake_gcp.dns import DnsFake
from tests.support.fake_gcp.firestore import FakeFirestore
from tests.support.fake_gcp.iam import FakeIam
from tests.support.fake_gcp.redis import FakeRedis
from tests.support.fake_gcp.resourcemanager import FakeResourceManager
from tests.support.fake_gcp.secretmanager import SecretManagerFake
from tests.support.fake_gcp.serviceusage import FakeServiceUsage
from tests.support.fake_gcp.sqladmin import SqlAdminFake
from tests.support.fake_gcp.storage import StorageFake

PROJECTS = ("cave-demo-global", "cave-demo-minnie", "cave-demo-fanc", "cave-demo-data")


@dataclass
class Cloud:
    """All fakes, keyed by the endpoint API name they serve."""

    fakes: dict[str, Any] = field(default_factory=dict)

    def writes(self) -> list[tuple[str, Any]]:
        return [(api, call) for api, fake in self.fakes.items() for call in fake.writes()]

    def methods(self) -> set[str]:
        return {call.method for fake in self.fakes.values() if hasattr(fake, "calls")
                for call in fake.calls if hasattr(call, "method")}


def all_fakes() -> dict[str, Any]:
    """A fresh fake of every Google API bootstrap calls, by endpoint API name."""
    return {
        "compute": FakeCompute(), "container": FakeContainer(), "redis": FakeRedis(), "bigtableadmin": FakeBigtable(),
        "sqladmin": SqlAdminFake(), "storage": StorageFake(), "dns": DnsFake(), "secretmanager": SecretManagerFake(),
        "iam": FakeIam(), "resourcemanager": FakeResourceManager(), "firestore": FakeFirestore(),
        "serviceusage": FakeServiceUsage(),
    }


def run(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    """`python -m compiler --root ROOT bootstrap ARGS...`: exit code, stdout, stderr."""
    code = main(["--root", str(root), "bootstrap", *args])
    out, err = capsys.readouterr()
    return code, out, err
