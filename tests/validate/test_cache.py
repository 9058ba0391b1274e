"""validate's results cached by content (compiler/validate/cache.py): a hit is used exactly when every input it
stands for is unchanged, a miss recomputes, and a damaged entry only costs the work again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from compiler.errors import UserError
from compiler.paths import CRD_SCHEMAS, VALIDATED_CACHE_DIR
from compiler.validate.engine import Validated, validate
from compiler.validate.model import Finding
from compiler.validate.schemas import Schemas
from tests.support import REPO
from tests.support.fleet import copy_fleet

PLANTED = Finding("minnie", "Deployment", "default", "planted", "spec", "planted", "a finding only the cache holds")


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_fleet(REPO, tmp_path_factory.mktemp("cache") / "repo")
    shutil.copytree(REPO / CRD_SCHEMAS, root / CRD_SCHEMAS)
    return root


@pytest.fixture
def fleet(examples: Path) -> Path:
    """The examples with no validated entries (renders stay cached between tests)."""
    shutil.rmtree(examples / VALIDATED_CACHE_DIR, ignore_errors=True)
    return examples


def run(root: Path, *, use_cache: bool = True) -> Validated:
    return validate(root, [], Schemas.from_options(None, [], root), use_cache=use_cache)


def entries(root: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """label → (file, data) of every validated entry."""
    out = {}
    for path in sorted((root / VALIDATED_CACHE_DIR).rglob("*.json")):
        data = json.loads(path.read_text())
        out[data["label"]] = (path, data)
    return out


def plant(root: Path, label: str, finding: Finding) -> None:
    path, data = entries(root)[label]
    data["findings"].append(finding.as_dict())
    path.write_text(json.dumps(data))


def test_each_cluster_and_the_fleet_get_an_entry_and_a_second_run_reads_them(fleet: Path) -> None:
    first = run(fleet)
    assert first.findings == [] and sorted(first.versions) == ["fanc", "global", "minnie"]
    found = entries(fleet)
    assert sorted(found) == ["fanc", "fleet", "global", "minnie", "specs"]
    assert found["minnie"][1]["kubernetes_version"] == first.versions["minnie"]
    # The second run answers from the entries: a finding only the entry holds is reported, with the version.
    plant(fleet, "minnie", PLANTED)
    second = run(fleet)
    assert second.findings == [PLANTED] and second.versions == first.versions
    assert run(fleet, use_cache=False).findings == []  # --no-cache validates afresh


def test_a_changed_spec_misses_its_cluster_and_the_fleet(fleet: Path) -> None:
    run(fleet)
    plant(fleet, "minnie", PLANTED)
    fleet_finding = Finding("global", "", "", "", "", "planted", "fleet", where="environments/global.yaml:1:1")
    plant(fleet, "fleet", fleet_finding)
    assert run(fleet).findings == sorted([PLANTED, fleet_finding])
    spec = fleet / "environments" / "minnie.yaml"
    text = spec.read_text()
    try:
        spec.write_text(text + "# a comment: the overlay stays the same, the spec's bytes do not\n")
        assert run(fleet).findings == []  # both keys hold the spec's bytes
    finally:
        spec.write_text(text)


def test_a_changed_crd_schema_misses_every_cluster(fleet: Path) -> None:
    run(fleet)
    plant(fleet, "global", PLANTED)
    schema = next((fleet / CRD_SCHEMAS).rglob("*.json"))
    text = schema.read_text()
    try:
        schema.write_text(json.dumps(json.loads(text)))  # the same schema, other bytes
        assert run(fleet).findings == []
    finally:
        schema.write_text(text)
    assert run(fleet).findings == [PLANTED]  # the original bytes: the original entry again


def test_a_changed_render_misses_and_real_findings_are_cached_too(fleet: Path) -> None:
    """A base edited by hand renders differently (overlays/ stays what build writes, so validate reads it): the
    clusters using it are validated again, and what that run finds is what the next run reads back."""
    base = fleet / "base" / "guidebook" / "deployment-guidebook.yaml"
    original = base.read_text()
    assert "kind: Deployment\n" in original
    try:
        base.write_text(original.replace("kind: Deployment\n", "kind: Deployment\nunknownField: 1\n", 1))
        fresh = run(fleet, use_cache=False)
        assert any("unknownField" in f.message for f in fresh.findings)
        assert run(fleet).findings == fresh.findings  # computed, stored
        assert run(fleet).findings == fresh.findings  # read back
    finally:
        base.write_text(original)
    assert run(fleet).findings == []


@pytest.mark.parametrize("damage", ["{", "[]", '{"findings": [{"cluster": 1}], "kubernetes_version": "1.31"}',
                                    '{"findings": [], "kubernetes_version": 131}'])
def test_a_damaged_entry_is_a_miss(fleet: Path, damage: str) -> None:
    run(fleet)
    for path, _ in entries(fleet).values():
        path.write_text(damage)
    assert run(fleet).findings == []
    assert sorted(entries(fleet)) == ["fanc", "fleet", "global", "minnie", "specs"]  # written again


def test_a_spec_build_would_refuse_is_refused_even_when_every_result_is_cached(fleet: Path) -> None:
    """Without --kubernetes-version the specs load as build loads them: a broken other spec stops validate
    (exit 2), whatever the cache holds for the cluster validated."""
    def minnie_only() -> Validated:
        return validate(fleet, ["minnie"], Schemas.from_options(None, [], fleet), fleet_rules=False)

    assert minnie_only().findings == []
    assert minnie_only().findings == []  # every result cached, the specs' strict load too
    spec = fleet / "environments" / "fanc.yaml"
    text = spec.read_text()
    try:
        spec.write_text(text + "name: [unclosed\n")
        with pytest.raises(UserError, match=r"fanc\.yaml"):
            minnie_only()
    finally:
        spec.write_text(text)


def test_a_kubernetes_version_given_is_part_of_the_key(fleet: Path) -> None:
    run(fleet)
    plant(fleet, "minnie", PLANTED)
    version = run(fleet).versions["minnie"]
    given = validate(fleet, [], Schemas.from_options(None, [], fleet), kubernetes_version=version)
    assert PLANTED not in given.findings  # the same version, given: another key, validated afresh
