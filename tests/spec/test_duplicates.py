"""A value two specs may not share is reported in both specs, each line naming the other file and place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler.build import argocd
from compiler.spec.load import load_all
from compiler.spec.settings import load_settings
from tests.support import REPO
from tests.support.specs import build_errors, edit, line_of


def test_duplicate_static_ip_blames_both_specs(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fanc = edit(repo, "fanc", "static_ip: 203.0.113.30", "static_ip: 203.0.113.20")  # minnie's address
    minnie = (repo / "environments" / "minnie.yaml").read_text()
    at_fanc = f"environments/fanc.yaml:{line_of(fanc, 'static_ip:')}:12"
    at_minnie = f"environments/minnie.yaml:{line_of(minnie, 'static_ip:')}:12"
    errors = [e for e in build_errors(repo, capsys) if "static_ip" in e]
    assert [e.partition(": ")[0] for e in errors] == [at_fanc, at_minnie]
    assert f"static_ip 203.0.113.20 is also used by cluster minnie ({at_minnie})" in errors[0]
    assert f"static_ip 203.0.113.20 is also used by cluster fanc ({at_fanc})" in errors[1]


def test_duplicate_argocd_destination_blames_both_specs(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(REPO / "gitops.yaml", repo / "gitops.yaml")  # the destinations matter to the app-of-apps
    # fanc is the spec edited: it used to be left out, and the untouched minnie.yaml blamed alone.
    fanc = edit(repo, "fanc", "  name: daf-fanc ", "  name: daf-minnie ")
    minnie = (repo / "environments" / "minnie.yaml").read_text()
    at_fanc = f"environments/fanc.yaml:{line_of(fanc, '  name: daf-minnie')}:9"
    at_minnie = f"environments/minnie.yaml:{line_of(minnie, '  name: daf-minnie')}:9"
    errors = [e for e in build_errors(repo, capsys) if "is already the cluster of" in e]
    fix = "(each spec deploys a cluster of its own: use the name or server its cluster has in Argo CD)"
    assert errors == [
        f"{at_fanc}: argocd: name daf-minnie is already the cluster of {at_minnie} {fix}",
        f"{at_minnie}: argocd: name daf-minnie is already the cluster of {at_fanc} {fix}",
    ]


def test_duplicate_application_name_blames_both_specs() -> None:
    # A cluster named minnie-custom-metrics would get the Application name of minnie's metrics adapter.
    settings = load_settings(REPO)
    assert settings is not None
    loaded = load_all(REPO)
    clash = "minnie-custom-metrics"
    found = [str(p) for p in argocd.problems(settings, {**loaded, clash: loaded["fanc"]})
             if "would also be generated" in p.message]
    assert sorted(p.split(": ")[0].split(":")[0] for p in found) == ["environments/fanc.yaml",
                                                                      "environments/minnie.yaml"]
    assert any(p.startswith("environments/minnie.yaml:") and p.endswith(
        f"Argo CD Application 'cave-{clash}' would also be generated for environments/fanc.yaml (rename the cluster)")
        for p in found), found
    assert any(p.startswith("environments/fanc.yaml:") and p.endswith(
        f"Argo CD Application 'cave-{clash}' would also be generated for environments/minnie.yaml (rename the "
        "cluster)") for p in found), found
