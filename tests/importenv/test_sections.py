"""import-env's services section is driven by the catalogue: a service's env variables (version, switches,
replicas) live on its catalogue entry (`old_env`), so a new plain service is imported with no importenv code.

The throwaway service is added to the catalogue of this process only (the tuple and the by-name table); the
section builders then run on the real local fixture env file plus the new service's variables.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from compiler import catalog
from compiler.catalog import Image, OldEnv, OldReplicas, Service, Workload, old_replicas
from compiler.importenv import sections
from compiler.importenv.classify import classify
from compiler.importenv.mapping import Context, Mapper
from compiler.importenv.services import BUILDERS
from compiler.importenv.source import read_env
from compiler.importenv.specdoc import plain
from tests.support import REPO

FIXTURES = REPO / "tests" / "fixtures" / "import_env"
SVC = "cellcount"
THROWAWAY = Service(
    name=SVC,
    kinds=("local",),
    workloads=(Workload(SVC, SVC, hpa=f"{SVC}-scaler", pool="lightweight"),
               Workload(f"{SVC}-worker", SVC, scaling="fixed", pool="lightweight")),
    images=(Image(f"{SVC}--{SVC}", SVC),),
    old_env=OldEnv("CELLCOUNT_VERSION", ("CELLCOUNT_MAX_REPLICAS",),
                   (old_replicas(SVC, "CELLCOUNT"), OldReplicas(f"{SVC}-worker", "CELLCOUNT_WORKER_REPLICAS"))),
)


@pytest.fixture
def with_throwaway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "SERVICES", (*catalog.SERVICES, THROWAWAY))
    monkeypatch.setitem(catalog.BY_NAME, SVC, THROWAWAY)


def mapped(tmp_path: Path, extra: str) -> tuple[Mapper, dict[str, Any]]:
    """The local fixture with `extra` appended, mapped to the spec tree (no validation: the spec model does not
    know the throwaway service)."""
    for f in FIXTURES.glob("labmouse_*"):
        shutil.copy(f, tmp_path / f.name)
    env_path = tmp_path / "labmouse.sh"
    env_path.write_text((FIXTURES / "labmouse.sh").read_text() + extra)
    env = read_env(env_path, "labmouse.sh", "local")
    mapper = Mapper(env, "local", None, Context(), tmp_path)
    tree = sections.build(mapper)
    assert mapper.problems == []
    return mapper, plain(tree)


def test_a_new_catalogue_service_is_imported_from_its_old_env(tmp_path: Path, with_throwaway: None) -> None:
    mapper, data = mapped(tmp_path, "export CELLCOUNT_VERSION=2.0.1\nexport CELLCOUNT_MIN_REPLICAS=2\n"
                                    "export CELLCOUNT_MAX_REPLICAS=6\nexport CELLCOUNT_WORKER_REPLICAS=3\n")
    assert data["services"][SVC] == {"version": "2.0.1", "replicas": {"min": 2, "max": 6},
                                     "workloads": {f"{SVC}-worker": {"replicas": 3}}}
    # catalogue order: after the last catalogued local service, before auth_info
    names = list(data["services"])
    assert names.index(SVC) == names.index("auth_info") - 1
    classify(mapper)
    report = [line.what for line in mapper.lines if line.section == "mapped"]
    assert "CELLCOUNT_VERSION -> services.cellcount.version" in report
    assert "CELLCOUNT_WORKER_REPLICAS -> services.cellcount.workloads.cellcount-worker.replicas" in report
    assert not [line for line in mapper.lines if line.section == "unknown" and "CELLCOUNT" in line.what]


def test_a_new_service_switched_off_is_written_disabled(tmp_path: Path, with_throwaway: None) -> None:
    mapper, data = mapped(tmp_path, "export CELLCOUNT_VERSION=2.0.1\nexport CELLCOUNT_MAX_REPLICAS=0\n")
    assert data["services"][SVC] == {"enabled": False, "version": "2.0.1"}
    assert mapper.used["CELLCOUNT_MAX_REPLICAS"] == f"services.{SVC}.enabled"


def test_a_new_service_the_env_file_never_mentions_is_left_out(tmp_path: Path, with_throwaway: None) -> None:
    _, data = mapped(tmp_path, "")
    assert SVC not in data["services"]


def test_a_new_service_without_its_version_is_a_problem_at_its_switch(tmp_path: Path, with_throwaway: None) -> None:
    env_path = tmp_path / "labmouse.sh"
    for f in FIXTURES.glob("labmouse_*"):
        shutil.copy(f, tmp_path / f.name)
    env_path.write_text((FIXTURES / "labmouse.sh").read_text() + "export CELLCOUNT_MAX_REPLICAS=4\n")
    mapper = Mapper(read_env(env_path, "labmouse.sh", "local"), "local", None, Context(), tmp_path)
    sections.build(mapper)
    last = len(env_path.read_text().splitlines())
    assert [str(p) for p in mapper.problems] == [
        f"labmouse.sh:{last}:8: CELLCOUNT_VERSION is not set but cellcount runs: set it"]


def test_old_env_names_workloads_of_the_entry_and_builders_are_catalogued_services() -> None:
    for service in catalog.SERVICES:
        for pair in service.old_env.replicas if service.old_env else ():
            assert service.workload(pair.workload) is not None, (service.name, pair.workload)
    for name in BUILDERS:
        entry = catalog.BY_NAME.get(name)
        assert entry is not None and entry.old_env is not None, name
