"""`diff` shows what CI shows: overlays/argocd/ changes (Applications added or removed, chart versions,
destinations) as a section of their own, the version rows a change alters first, and a new cluster as a summary
of its objects, images and versions rather than one "added" line per object. On a git copy of the examples, with
real builds and real kustomize."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compiler.diff.argocd import compare
from compiler.main import main
from tests.support import REPO
from tests.support.fleet import copy_fleet
from tests.support.render import GitRepo, make_repo

CLUSTERS = ("fanc", "global", "minnie")


def build(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(root), "build"]) == 0, capsys.readouterr().err
    capsys.readouterr()


def diff(root: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> tuple[int, str]:
    code = main(["-C", str(root), "diff", "--base", "HEAD", "--format", fmt])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    return code, captured.out


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    root = copy_fleet(REPO, tmp_path / "repo")
    return make_repo(root, {})


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_chart_version_and_destination_changes(repo: GitRepo, capsys: pytest.CaptureFixture[str],
                                               kustomize_tool: object) -> None:
    edit(repo.root / "gitops.yaml", "version: v1.19.0", "version: v1.19.1")
    edit(repo.root / "environments" / "minnie.yaml", "name: daf-minnie", "name: daf-minnie-2")
    build(repo.root, capsys)
    code, out = diff(repo.root, capsys, "json")
    data = json.loads(out)
    assert code == 1 and data["changed"] is True
    assert data["summary"]["clusters"]["changed"] == []  # no cluster overlay differs: only overlays/argocd/
    apps = {a["name"]: a for a in data["applications"]}
    assert sorted(apps) == sorted(["cave", *(f"cave-{c}-cert-manager" for c in CLUSTERS), "cave-minnie",
                                   "cave-minnie-custom-metrics", "cave-minnie-external-secrets",
                                   "cave-minnie-ingress-nginx"])
    assert apps["cave"]["kind"] == "AppProject" and apps["cave"]["other"] == ["spec.destinations"]
    assert apps["cave-fanc-cert-manager"]["changes"] == [
        {"field": "chart version", "old": "v1.19.0", "new": "v1.19.1"}]
    assert apps["cave-fanc-cert-manager"]["summary"].startswith("chart cert-manager v1.19.1 (https://charts.jetstack.io)")
    assert apps["cave-minnie-cert-manager"]["changes"] == [
        {"field": "chart version", "old": "v1.19.0", "new": "v1.19.1"},
        {"field": "destination name", "old": "daf-minnie", "new": "daf-minnie-2"}]
    assert apps["cave-minnie"]["changes"] == [{"field": "destination name", "old": "daf-minnie", "new": "daf-minnie-2"}]
    assert apps["cave-minnie"]["cluster"] == "minnie" and apps["cave-minnie"]["status"] == "changed"
    # the status row the chart bump alters comes first, as the pin of gitops.yaml; no service version changed
    assert data["versions"] == [
        {"service": "cert_manager", "cluster": "gitops.yaml", "old": "v1.19.0", "new": "v1.19.1"}]
    print(json.dumps(data["applications"], indent=1))  # shown when the test fails

    _, text = diff(repo.root, capsys, "text")
    section = text.split("Argo CD Applications (overlays/argocd/)\n", 1)[1]
    assert "  ~ Application cave-global-cert-manager\n      chart version: v1.19.0 → v1.19.1\n" in section
    assert ("  ~ Application cave-minnie\n      destination name: daf-minnie → daf-minnie-2\n") in section
    _, md = diff(repo.root, capsys, "markdown")
    assert "**Argo CD Applications** (`overlays/argocd/`)" in md
    assert md.index("| cert_manager | v1.19.0 → v1.19.1 |") < md.index("**Argo CD Applications**")
    assert "~ Application cave-minnie-cert-manager\n    chart version: v1.19.0 → v1.19.1\n" in md


def test_new_cluster_is_a_summary_and_its_applications_are_added(
        repo: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    # the base: the fleet without fanc; the working tree: fanc back
    spec = (repo.root / "environments" / "fanc.yaml").read_bytes()
    (repo.root / "environments" / "fanc.yaml").unlink()
    build(repo.root, capsys)
    assert not (repo.root / "overlays" / "fanc").exists()
    repo.commit("without fanc")
    (repo.root / "environments" / "fanc.yaml").write_bytes(spec)
    build(repo.root, capsys)

    code, out = diff(repo.root, capsys, "json")
    data = json.loads(out)
    assert code == 1 and data["summary"]["clusters"]["added"] == ["fanc"]
    [fanc] = [c for c in data["clusters"] if c["name"] == "fanc"]
    summary = fanc["new_cluster"]
    assert sum(summary["objects"].values()) == len(fanc["objects"]) > 30
    assert {"image": "docker.io/caveconnectome/annotationengine:v4.14.1",
            "services": ["annotationengine"]} in summary["images"]
    assert summary["versions"]["materializationengine"] == "4.23.0"
    added = {a["name"]: a for a in data["applications"] if a["status"] == "added"}
    assert "cave-fanc" in added and "cave-fanc-ingress-nginx" in added
    assert added["cave-fanc"]["summary"] == "overlays/fanc at main → daf-fanc/default, wave 3"
    assert {"service": "annotationengine", "cluster": "fanc", "old": None, "new": "4.14.1"} in data["versions"]

    _, text = diff(repo.root, capsys, "text")
    block = text.split("\nfanc (added)\n", 1)[1]
    lines = block.splitlines()
    assert lines[0].startswith(f"  new cluster: {len(fanc['objects'])} objects (")
    assert "    docker.io/caveconnectome/annotationengine:v4.14.1  [annotationengine]" in lines
    assert not any(line.startswith("+ ") for line in lines)  # no line per added object
    assert len(text.splitlines()) < len(fanc["objects"])
    assert text.index("Versions") < text.index("Argo CD Applications") < text.index("fanc (added)")
    assert "  + Application cave-fanc added: overlays/fanc at main → daf-fanc/default, wave 3" in text

    _, md = diff(repo.root, capsys, "markdown")
    top = md.split("\n\n", 3)
    assert top[2].startswith("**Versions**")  # the comment starts with the status rows the change alters
    assert "| annotationengine | (none) → 4.14.1 |" in md
    assert "<b>fanc</b> (added)" in md and "- new cluster: " in md
    assert "+ Deployment/" not in md


def application(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "labels": {"cave.io/cluster": name}}, "spec": spec}


def test_compare_reports_values_as_other_paths_and_filters_clusters() -> None:
    old = application("a", source={"chart": "x", "targetRevision": "1", "helm": {"valuesObject": {"k": 1}}})
    new = application("a", source={"chart": "x", "targetRevision": "1", "helm": {"valuesObject": {"k": 2}}})
    [change] = compare({("Application", "a"): old}, {("Application", "a"): new})
    assert change.changes == [] and change.other == ["spec.source.helm.valuesObject.k"]
    assert compare({("Application", "a"): old}, {("Application", "a"): new}, ["b"]) == []
    [removed] = compare({("Application", "a"): old}, {})
    assert removed.status == "removed" and removed.summary == "chart x 1 (?) → ?"
    project = {"kind": "AppProject", "metadata": {"name": "cave"}, "spec": {"destinations": []}}
    [other] = compare({("AppProject", "cave"): project},
                      {("AppProject", "cave"): {**project, "spec": {"destinations": [{"name": "d"}]}}})
    assert (other.kind, other.status, other.other) == ("AppProject", "changed", ["spec.destinations"])
