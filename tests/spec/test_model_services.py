"""The `services:` sections of the spec model are built from the catalogue (compiler/spec/model.py, Services)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from compiler import catalog
from compiler.spec.load import load_environments
from compiler.spec.model import (
    SETTINGS,
    Auth,
    Bumped,
    GlobalServices,
    LocalCluster,
    LocalServices,
    Materializationengine,
    Service,
    enabled_services,
    settings_model,
)
from tests.support import REPO
from tests.support.specs import build_errors, edit, line_of


def test_fields_follow_the_catalogue_in_its_order() -> None:
    for model, kind in ((GlobalServices, "global"), (LocalServices, "local")):
        assert list(model.model_fields) == [s.name for s in catalog.SERVICES if kind in s.kinds]
    # the order overlays list bases in: pinned, so moving a catalogue entry is a visible change
    assert list(GlobalServices.model_fields) == [
        "auth", "sticky_auth", "infoservice", "emannotationschemas", "nglstate", "auth_info"]
    local = list(LocalServices.model_fields)
    assert local[:1] + local[-2:] == ["annotationengine", "cavecanary", "auth_info"]


def test_field_types_come_from_settings_or_the_upstream() -> None:
    fields = {**GlobalServices.model_fields, **LocalServices.model_fields}
    assert fields["auth"].annotation == Auth | None
    assert fields["materializationengine"].annotation == Materializationengine | None
    assert fields["emannotationschemas"].annotation == Bumped | None  # names an upstream, no settings of its own
    assert fields["annotationengine"].annotation == Bumped | None
    assert fields["meshing"].annotation == Service | None
    assert all(f.default is None for f in fields.values())
    bumped = {n for n, f in fields.items() if "Bumped" in str(f.annotation) or n == "materializationengine"}
    assert bumped == {s.name for s in catalog.SERVICES if s.upstream}
    assert set(SETTINGS) <= set(catalog.BY_NAME)


def test_the_catalogue_and_a_settings_model_must_agree_on_bumping() -> None:
    auth = catalog.BY_NAME["auth"]
    with pytest.raises(TypeError, match=r"Auth \(services.auth\) must be a Bumped"):
        settings_model(dataclasses.replace(auth, upstream="CAVEconnectome/middle_auth"))
    mat = catalog.BY_NAME["materializationengine"]
    with pytest.raises(TypeError, match=r"must not be a Bumped: the catalogue names no upstream"):
        settings_model(dataclasses.replace(mat, upstream=None))
    assert settings_model(dataclasses.replace(auth, name="newservice")) is Service
    assert settings_model(dataclasses.replace(auth, name="newservice", upstream="o/r")) is Bumped


def test_typed_settings_access() -> None:
    specs = load_environments(REPO)
    minnie, glob = specs["minnie"], specs["global"]
    assert isinstance(minnie, LocalCluster)
    mat = minnie.services.settings("materializationengine", Materializationengine)
    assert mat is not None and mat.datastacks == ["minnie65_phase3_v1"]
    assert minnie.services.settings("materializationengine", Bumped) is mat  # a base of its model
    assert minnie.services.settings("auth", Auth) is None  # a global service, on a local cluster
    auth = glob.services.settings("auth", Auth)
    assert auth is not None and auth is getattr(glob.services, "auth")  # noqa: B009 (templates read attributes; mypy knows none)
    with pytest.raises(TypeError, match=r"services\.meshing is a Service, not a Bumped"):
        minnie.services.settings("meshing", Bumped)
    with pytest.raises(KeyError, match=r"no service 'meshnig' in compiler/catalog\.py"):
        minnie.services.settings("meshnig", Service)
    enabled = list(enabled_services(minnie))
    assert len(enabled) > 10 and enabled == sorted(enabled, key=list(LocalServices.model_fields).index)


def test_a_misspelled_service_is_a_located_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = edit(repo, "minnie", "  pprogress:\n", "  pprogres:\n")
    errors = build_errors(repo, capsys)
    expected = (f"environments/minnie.yaml:{line_of(text, 'pprogres:')}:3: "
                "unknown key 'pprogres' (did you mean 'pprogress'?)")
    assert expected in errors, errors
