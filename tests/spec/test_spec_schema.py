"""The editors' JSON Schema of a spec (compiler/spec/schema.py, schemas/spec.schema.json): committed and current,
named by every spec's first line, accepting every example spec and rejecting broken ones, in jsonschema and in
an editor-style check (check-jsonschema, as the YAML language server would flag it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from compiler.build import specschema
from compiler.paths import SCHEMA_REL
from compiler.spec.schema import MODELINE, schema_text, spec_schema, with_modeline
from compiler.spec.yamlio import load_plain
from tests.support import REPO

SPECS = sorted((REPO / "environments").glob("*.yaml"))
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def spec_data(path: Path) -> dict[str, Any]:
    data = load_plain(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads((REPO / SCHEMA_REL).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def messages(validator: Draft202012Validator, data: dict[str, Any]) -> list[str]:
    return sorted(e.message for e in validator.iter_errors(data))


def test_committed_schema_is_what_the_model_generates() -> None:
    assert (REPO / SCHEMA_REL).read_text(encoding="utf-8") == schema_text()
    assert specschema.differences(REPO) == []


def test_union_of_the_two_kinds_discriminated_by_kind() -> None:
    schema = spec_schema()
    assert schema["discriminator"] == {"propertyName": "kind", "mapping": {
        "global": "#/$defs/GlobalCluster", "local": "#/$defs/LocalCluster"}}
    assert [(b["if"]["properties"]["kind"]["const"], b["then"]["$ref"]) for b in schema["allOf"]] == [
        ("global", "#/$defs/GlobalCluster"), ("local", "#/$defs/LocalCluster")]
    assert schema["required"] == ["kind"]
    # built from the catalogue: each kind lists its own services only
    defs = schema["$defs"]
    assert "auth" in defs["GlobalServices"]["properties"] and "auth" not in defs["LocalServices"]["properties"]
    assert "pychunkedgraph" in defs["LocalServices"]["properties"]


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_example_spec_names_the_schema_and_is_valid(path: Path, validator: Draft202012Validator) -> None:
    assert path.read_text(encoding="utf-8").split("\n", 1)[0] == MODELINE
    assert (path.parent / "../schemas/spec.schema.json").resolve() == (REPO / SCHEMA_REL).resolve()
    assert messages(validator, spec_data(path)) == []


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: d.update(kubernetes_versoin="1.31"), "Additional properties are not allowed ('kubernetes_versoin'"),
    (lambda d: d.pop("kind"), "'kind' is a required property"),
    (lambda d: d.update(kind="regional"), "'regional' is not one of ['global', 'local']"),
    (lambda d: d["services"]["annotationengine"].update(replicas=2.5), "'replicas': 2.5, "),
    (lambda d: d["services"].update(auth={"version": "1.0.0"}), "('auth' was unexpected)"),  # global only
    (lambda d: d["gcp"].update(zone="Europe"), "'Europe' does not match"),
])
def test_a_broken_spec_is_rejected(edit: Any, expected: str, validator: Draft202012Validator) -> None:
    data = spec_data(REPO / "environments" / "minnie.yaml")
    edit(data)
    found = messages(validator, data)
    assert any(expected in m for m in found), found


def test_check_jsonschema_flags_an_unknown_key_like_an_editor(tmp_path: Path) -> None:
    """The editor-style check: check-jsonschema with the committed schema, on the specs as files."""
    ok = subprocess.run([str(CHECK_JSONSCHEMA), "--schemafile", str(REPO / SCHEMA_REL), *map(str, SPECS)],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "environments" / "minnie.yaml"
    bad.parent.mkdir()
    text = (REPO / "environments" / "minnie.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("\nstatic_ip:", "\nstatic_ipp:"), encoding="utf-8")
    found = subprocess.run([str(CHECK_JSONSCHEMA), "--schemafile", str(REPO / SCHEMA_REL), str(bad)],
                           capture_output=True, text=True, check=False)
    assert found.returncode == 1
    assert "Additional properties are not allowed ('static_ipp' was unexpected)" in found.stdout


def test_build_writes_and_check_reports_the_schema(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    shutil.copy(REPO / "environments" / "global.yaml", tmp_path / "environments")
    assert specschema.differences(tmp_path) == [
        f"{SCHEMA_REL}: missing, the specs' `$schema` line names it (run `python -m compiler build`)"]
    assert specschema.write(tmp_path) == f"wrote {SCHEMA_REL}"
    assert (tmp_path / SCHEMA_REL).read_text(encoding="utf-8") == schema_text()
    assert specschema.write(tmp_path) is None and specschema.differences(tmp_path) == []
    (tmp_path / SCHEMA_REL).write_text(schema_text().replace('"additionalProperties": false', "{}", 1))
    assert specschema.differences(tmp_path) == [
        f"{SCHEMA_REL}: differs from what compiler/spec/model.py generates: stale or hand-edited "
        "(run `python -m compiler build`)"]
    assert not list((tmp_path / "schemas").glob(".tmp-*"))


def test_a_repository_without_the_modeline_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    text = (REPO / "environments" / "global.yaml").read_text(encoding="utf-8").split("\n", 1)[1]
    (tmp_path / "environments" / "global.yaml").write_text(text, encoding="utf-8")
    assert specschema.differences(tmp_path) == [] and specschema.write(tmp_path) is None
    assert not (tmp_path / "schemas").exists()
    assert with_modeline(text).startswith(MODELINE + "\n# Global CAVE cluster")
    assert with_modeline(with_modeline(text)) == with_modeline(text)
