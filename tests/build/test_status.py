"""`status` (compiler/build/status.py): the fleet at a glance in text, Markdown and JSON, on a copy of the examples,
in sync and with a stale, a missing overlay and a disabled service; `version_changes` for the PR comment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from compiler.build.status import (
    DISABLED,
    VersionChange,
    fleet_status,
    format_status,
    service_versions,
    version_changes,
)
from compiler.main import main
from compiler.spec.yamlio import load_plain
from tests.support import REPO
from tests.support.fleet import copy_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return copy_fleet(REPO, tmp_path / "repo")


def edited(root: Path) -> Path:
    """minnie's annotationengine bumped and its dash turned off without a build, fanc's overlay deleted."""
    spec = root / "environments" / "minnie.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count("version: 4.14.1") == 1 and "  dash:\n    version: 1.12.1\n" in text
    text = text.replace("version: 4.14.1", "version: 4.15.0")
    text = text.replace("  dash:\n    version: 1.12.1\n", "  dash:\n    enabled: false\n    version: 1.12.1\n")
    spec.write_text(text, encoding="utf-8")
    shutil.rmtree(root / "overlays" / "fanc")
    return root


def test_text_in_sync(fleet: Path) -> None:
    status = fleet_status(fleet)
    assert status.in_sync
    lines = format_status(status, "text").splitlines()
    assert lines[0] == "overlays: in sync with environments/"
    assert lines[2].split() == ["cluster", "kind", "global", "server", "project", "Argo", "CD", "destination",
                                "overlay"]
    assert lines[3].split() == ["fanc", "local", "global.cave-demo.org", "cave-demo-fanc", "daf-fanc", "in", "sync"]
    assert lines[4].split() == ["global", "global", "-", "cave-demo-global", "https://kubernetes.default.svc",
                                "in", "sync"]
    assert ["service", "fanc", "global", "minnie"] in [ln.split() for ln in lines]
    assert ["annotationengine", "4.14.1", "-", "4.14.1"] in [ln.split() for ln in lines]
    assert ["auth", "-", "2.24.0", "-"] in [ln.split() for ln in lines]
    pins = lines.index("gitops.yaml pins: Argo CD v3.3.0, kustomize v5.8.1")
    assert lines[pins + 2].split() == ["ingress_nginx", "ingress-nginx", "4.14.1",
                                       "https://kubernetes.github.io/ingress-nginx"]
    assert ["custom_metrics_adapter", "(image)", "v0.16.9-gke.0",
            "gcr.io/gke-release/custom-metrics-stackdriver-adapter"] in [ln.split() for ln in lines]


def test_text_stale_missing_and_disabled(fleet: Path) -> None:
    status = fleet_status(edited(fleet))
    assert not status.in_sync
    assert {c.name: c.overlay for c in status.clusters} == {"fanc": "missing", "global": "in sync", "minnie": "stale"}
    assert status.argocd_overlay == "in sync"  # neither a version nor dash's switch changes an Application
    text = format_status(status, "text")
    assert text.startswith("overlays: NOT in sync (fanc missing, minnie stale): run python -m compiler build\n")
    rows = [ln.split() for ln in text.splitlines()]
    assert ["annotationengine", "4.14.1", "-", "4.15.0"] in rows
    assert ["dash", "-", "-", DISABLED] in rows


def test_markdown(fleet: Path) -> None:
    md = format_status(fleet_status(edited(fleet)), "markdown")
    lines = md.splitlines()
    assert lines[0] == "### CAVE fleet status"
    assert lines[2] == "**overlays: NOT in sync (fanc missing, minnie stale): run python -m compiler build**"
    assert "| cluster | kind | global server | project | Argo CD destination | overlay |" in lines
    assert "| minnie | local | global.cave-demo.org | cave-demo-minnie | daf-minnie | stale |" in lines
    assert "| service | fanc | global | minnie |" in lines
    assert "| annotationengine | 4.14.1 | - | 4.15.0 |" in lines
    assert "**Pinned in gitops.yaml** (Argo CD v3.3.0, kustomize v5.8.1)" in lines
    assert "| cert_manager | cert-manager | v1.19.0 | https://charts.jetstack.io |" in lines


def test_json(fleet: Path) -> None:
    data = json.loads(format_status(fleet_status(edited(fleet)), "json"))
    assert data["version"] == 1 and data["in_sync"] is False and data["orphaned"] == []
    minnie = data["clusters"][2]  # fields only added: tests/build/test_status_diagram.py checks the newer ones
    assert {k: minnie[k] for k in ("name", "kind", "global_server", "project", "argocd_destination", "overlay")} == {
        "name": "minnie", "kind": "local", "global_server": "global.cave-demo.org", "project": "cave-demo-minnie",
        "argocd_destination": "daf-minnie", "overlay": "stale"}
    assert data["clusters"][1]["global_server"] is None
    assert data["versions"]["annotationengine"] == {"fanc": "4.14.1", "minnie": "4.15.0"}
    assert data["versions"]["dash"] == {"minnie": "disabled"}
    assert data["services"][0] == "auth" and "proxy" in data["services"]
    assert data["argocd"] == {"overlay": "in sync", "version": "v3.3.0", "kustomize": "v5.8.1"}
    assert {"name": "external_secrets", "chart": "external-secrets", "version": "1.1.1",
            "repo_url": "https://charts.external-secrets.io"} in data["addons"]


def test_orphaned_overlay_is_reported(fleet: Path) -> None:
    shutil.copytree(fleet / "overlays" / "fanc", fleet / "overlays" / "gone")
    status = fleet_status(fleet)
    assert status.orphaned == ["gone"] and not status.in_sync
    assert "gone orphaned" in format_status(status, "text").splitlines()[0]


def test_status_command_in_each_format(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(fleet), "status"]) == 0
    assert capsys.readouterr().out.startswith("overlays: in sync with environments/\n")
    assert main(["-C", str(fleet), "status", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("### CAVE fleet status\n")
    assert main(["-C", str(edited(fleet)), "status", "--format", "json"]) == 0  # shown, not an error
    assert json.loads(capsys.readouterr().out)["clusters"][0]["overlay"] == "missing"
    (fleet / "environments" / "minnie.yaml").write_text("kind: local\nname: [\n", encoding="utf-8")
    assert main(["-C", str(fleet), "status"]) == 2
    assert "environments/minnie.yaml:" in capsys.readouterr().err


def test_version_changes() -> None:
    minnie = load_plain((REPO / "environments" / "minnie.yaml").read_text(encoding="utf-8"))
    assert service_versions(minnie)["materializationengine"] == "4.23.0"
    bumped = json.loads(json.dumps(minnie))
    bumped["services"]["materializationengine"]["version"] = "4.24.0"
    bumped["services"]["dash"]["enabled"] = False
    assert version_changes({"minnie": minnie}, {"minnie": bumped, "mouse": minnie})[:3] == [
        VersionChange("annotationengine", "mouse", None, "4.14.1"),
        VersionChange("materializationengine", "minnie", "4.23.0", "4.24.0"),
        VersionChange("materializationengine", "mouse", None, "4.23.0"),
    ]
    assert VersionChange("dash", "minnie", "1.12.1", DISABLED) in version_changes({"minnie": minnie},
                                                                                  {"minnie": bumped})
    assert version_changes({"minnie": minnie}, {"minnie": minnie}) == []
    assert service_versions("not a mapping") == {} and service_versions({"services": None}) == {}
