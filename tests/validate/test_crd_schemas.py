"""The repository's own CRD schemas (schemas/crds/): what validate uses by default, the `crd-schema` command that
writes them from CustomResourceDefinitions, and that they cover exactly what the repository emits, at the releases
gitops.yaml pins."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from compiler.main import main
from compiler.render import kustomize
from compiler.render.jobs import render_clusters
from compiler.render.manifests import parse_objects
from compiler.render.sources import list_clusters
from compiler.spec.settings import load_settings
from compiler.validate.engine import validate_objects
from compiler.validate.schemas import CRD_SCHEMAS, Schemas, crd_schema_text, load_crd_manifests
from tests.support import REPO

SCHEMAS = REPO / CRD_SCHEMAS

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.org
spec:
  group: example.org
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            properties:
              size: {x-kubernetes-int-or-string: true}
              color: {type: string, nullable: true}
  - name: v1beta1
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
"""


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
            "spec": spec}


# --------------------------------------------------------------------------- the crd-schema command


def test_crd_schema_writes_each_served_version_where_validate_reads_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "widget-crd.yaml").write_text(CRD)
    out = tmp_path / "out"
    assert main(["-C", str(tmp_path), "crd-schema", str(tmp_path / "widget-crd.yaml"), "--output-dir", str(out)]) == 0
    assert capsys.readouterr().err == "wrote out/example.org/widget_v1.json\n"  # relative to the root (-C)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert written == ["example.org", "example.org/widget_v1.json"]  # not the unserved v1beta1, no temporary file
    target = out / "example.org" / "widget_v1.json"
    assert target.stat().st_mode & 0o777 == 0o644
    text = target.read_text()
    schema = json.loads(text)
    assert schema["properties"]["spec"]["properties"] == {
        "size": {"anyOf": [{"type": "integer"}, {"type": "string"}]}, "color": {"type": ["string", "null"]}}
    assert schema["properties"]["spec"]["additionalProperties"] is False
    assert text == crd_schema_text(schema)  # the stored form: sorted keys, 2-space indent, one newline

    # validate reads it from there: a valid object passes, an unknown field is named
    schemas = Schemas.from_options(out, [])
    assert validate_objects("c", [widget(size="10%", color=None)], "1.31", schemas) == []
    [finding] = validate_objects("c", [widget(size=3, shade="red")], "1.31", schemas)
    assert (finding.rule, finding.path) == ("crd-schema", "spec")
    assert "'shade' was unexpected" in finding.message

    # run again: the same bytes (deterministic), replaced in place
    target.write_text("stale")
    assert main(["-C", str(tmp_path), "crd-schema", str(tmp_path / "widget-crd.yaml"), "--output-dir", str(out)]) == 0
    assert target.read_text() == text


def test_crd_schema_defaults_to_the_repositorys_schemas_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "gitops.yaml").write_text("")  # marks the repository root
    (tmp_path / "widget-crd.yaml").write_text(CRD)
    (tmp_path / "sub").mkdir()
    assert main(["-C", str(tmp_path / "sub"), "crd-schema", str(tmp_path / "widget-crd.yaml")]) == 0
    assert capsys.readouterr().err == "wrote schemas/crds/example.org/widget_v1.json\n"
    assert (tmp_path / "schemas" / "crds" / "example.org" / "widget_v1.json").is_file()


def test_crd_schema_refuses_a_file_without_a_crd_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "widget-crd.yaml").write_text(CRD)
    (tmp_path / "deployment.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
    (tmp_path / "broken.yaml").write_text("kind: [\n")
    out = tmp_path / "out"
    args = ["-C", str(tmp_path), "crd-schema", "--output-dir", str(out)]
    assert main([*args, str(tmp_path / "widget-crd.yaml"), str(tmp_path / "deployment.yaml"),
                 str(tmp_path / "broken.yaml")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{tmp_path / 'broken.yaml'}:2:1: not valid YAML (fix the CRD file)",
        f"{tmp_path / 'deployment.yaml'}: no apiextensions.k8s.io/v1 CustomResourceDefinition with an openAPIV3Schema "
        "(pass CustomResourceDefinition manifests)",
    ]
    assert not out.exists()
    assert main([*args, str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read CRD file" in capsys.readouterr().err and not out.exists()


# --------------------------------------------------------------------------- validate's default


def custom_resources() -> dict[tuple[str, str, str], list[str]]:
    """(group, version, kind) of every custom resource the examples emit → where (cluster or argocd)."""
    found: dict[tuple[str, str, str], list[str]] = {}
    rendered = {c: r.text for c, r in render_clusters(REPO, list_clusters(REPO)).items()}
    rendered["argocd"] = kustomize.build(REPO / "overlays" / "argocd", REPO)
    for where, text in rendered.items():
        for obj in parse_objects(text):
            group, _, version = str(obj["apiVersion"]).rpartition("/")
            if "." in group and not group.endswith(".k8s.io"):
                found.setdefault((group, version, obj["kind"]), []).append(where)
    return found


def stored() -> set[tuple[str, str, str]]:
    """(group, version, kind) of every schema in schemas/crds/, kinds as their CRDs spell them."""
    keys = set()
    for path in SCHEMAS.glob("*/*.json"):
        kind, _, version = path.stem.rpartition("_")
        keys.add((path.parent.name, version, kind))
    return keys


def test_the_schemas_cover_exactly_the_custom_resources_the_repository_emits() -> None:
    emitted = custom_resources()
    assert {(g, v, k.lower()) for g, v, k in emitted} == stored(), "add or remove schemas with crd-schema"
    assert {k for _, _, k in emitted} == {"Application", "AppProject", "Certificate", "Issuer", "ExternalSecret",
                                           "ClusterSecretStore"}


def test_validate_uses_the_repositorys_schemas_by_default(tmp_path: Path) -> None:
    assert Schemas.from_options(None, [], root=REPO).crd_dir == REPO / "schemas" / "crds"
    other = tmp_path / "other"
    other.mkdir()
    assert Schemas.from_options(other, [], root=REPO).crd_dir == other  # --crd-schemas replaces them
    assert Schemas.from_options(None, [], root=tmp_path).crd_dir is None  # a repository without schemas/crds
    secret = next(o for o in parse_objects(render_clusters(REPO, ["minnie"])["minnie"].text)
                  if o["kind"] == "ExternalSecret")
    schemas = Schemas.from_options(None, [], root=REPO)
    assert validate_objects("minnie", [secret], "1.31", schemas) == []
    broken = copy.deepcopy(secret)
    broken["spec"]["refreshIntervall"] = "1h"
    [finding] = validate_objects("minnie", [broken], "1.31", schemas)
    assert (finding.rule, finding.path) == ("crd-schema", "spec")
    assert "'refreshIntervall' was unexpected" in finding.message
    # --crds FILE takes precedence over the directory's schema of the same kind
    crd = tmp_path / "es-crd.yaml"
    crd.write_text(CRD.replace("example.org", "external-secrets.io").replace("Widget", "ExternalSecret")
                   .replace("widgets", "externalsecrets"))
    loose = Schemas.from_options(None, [crd], root=REPO)
    assert "'refreshIntervall' was unexpected" not in str(validate_objects("minnie", [broken], "1.31", loose))


def test_the_stored_schemas_are_as_crd_schema_writes_them() -> None:
    for path in SCHEMAS.glob("*/*.json"):
        text = path.read_text()
        assert text == crd_schema_text(json.loads(text)), f"{path}: regenerate it with python -m compiler crd-schema"


def test_the_readme_names_each_schemas_release_the_one_gitops_yaml_pins_and_each_licence() -> None:
    readme = (SCHEMAS / "README.md").read_text()
    loaded = load_settings(REPO)
    assert loaded is not None
    settings = loaded.settings
    assert settings.argocd.version is not None
    pins = {"argoproj.io": settings.argocd.version, "cert-manager.io": settings.addons.cert_manager.version,
            "external-secrets.io": f"v{settings.addons.external_secrets.version.removeprefix('v')}"}
    for group in sorted({g for g, _, _ in stored()}):
        (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{group}` |")]
        assert f"`{pins[group]}`" in row, f"{group}: gitops.yaml pins {pins[group]}; refresh its schemas ({row})"
        assert (SCHEMAS / group / "LICENSE").is_file() and f"({group}/LICENSE)" in row
        for path in (SCHEMAS / group).glob("*.json"):
            schema_kind = path.stem.rpartition("_")[0]
            assert re.search(rf"\b{schema_kind}\b", row.lower()), f"{path.name} is not in the README's table"


def test_schemas_of_a_crd_file_are_the_converted_served_versions(tmp_path: Path) -> None:
    (tmp_path / "crd.yaml").write_text(CRD)
    schemas = load_crd_manifests([tmp_path / "crd.yaml"], served_only=True)
    assert list(schemas) == [("example.org", "v1", "Widget")]
    assert sorted(load_crd_manifests([tmp_path / "crd.yaml"])) == [("example.org", "v1", "Widget"),
                                                                  ("example.org", "v1beta1", "Widget")]
