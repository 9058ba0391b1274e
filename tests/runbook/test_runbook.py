"""`python -m compiler runbook`: the manual steps per cluster, with values from the specs, in markdown and JSON."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from compiler.bootstrap.desired import desired
from compiler.escape import md_line
from compiler.main import main
from compiler.spec.derive import derive
from compiler.spec.load import load_environments
from tests.support import REPO

SPECS = load_environments(REPO)


def runbook(capsys: pytest.CaptureFixture[str], cluster: str, *args: str, root: Path = REPO) -> tuple[int, str, str]:
    code = main(["--root", str(root), "runbook", cluster, *args])
    out, err = capsys.readouterr()
    return code, out, err


def steps(capsys: pytest.CaptureFixture[str], cluster: str) -> dict[str, dict[str, Any]]:
    code, out, _ = runbook(capsys, cluster, "--format", "json")
    assert code == 0
    return {s["id"]: s for s in json.loads(out)["steps"]}


def test_every_global_hostname_yields_its_redirect_uris_and_origin(capsys: pytest.CaptureFixture[str]) -> None:
    oauth = steps(capsys, "global")["oauth-client"]
    hosts = derive(SPECS["global"]).hostnames
    assert len(hosts) == 2
    assert sorted(oauth["values"]["redirect_uris"]) == sorted(
        f"https://{h}/{svc}/api/v1/oauth2callback" for h in hosts for svc in ("auth", "sticky_auth"))
    assert oauth["values"]["javascript_origins"] == [f"https://{h}" for h in hosts]
    assert oauth["values"]["secret"] == "global-oauth-client"


@pytest.mark.parametrize("cluster", sorted(SPECS))
def test_markdown_and_json_carry_the_same_steps(capsys: pytest.CaptureFixture[str], cluster: str) -> None:
    code, md, _ = runbook(capsys, cluster)
    assert code == 0
    data = list(steps(capsys, cluster).values())
    headings = re.findall(r"^## (\d+)\. \[[ x]\] (.+) \((?:done|to do|check by hand|unknown \(run with --online\))\)$",
                          md, re.MULTILINE)
    assert [title for _, title in headings] == [md_line(s["title"]) for s in data]
    assert [int(n) for n, _ in headings] == list(range(1, len(data) + 1))
    for step in data:
        for line in [*[f"- {md_line(i)}" for i in step["items"]], *step["commands"]]:  # items: Markdown-escaped
            assert line in md, line


def test_auth_and_info_data_come_from_the_registries(capsys: pytest.CaptureFixture[str]) -> None:
    book = steps(capsys, "global")
    auth = book["auth-data"]["values"]
    assert auth["datasets"] == ["fanc", "minnie65"]
    assert auth["groups"] == {"service_accounts": ["fanc", "minnie65"]}
    tables = auth["service_tables"]
    assert {"service_name": "pychunkedgraph", "table_name": "minnie3_v1", "dataset": "minnie65"} in tables
    assert {"service_name": "aligned_volume", "table_name": "fanc_v4", "dataset": "fanc"} in tables
    info = book["info-data"]["values"]
    stacks = {s["name"]: s for s in info["datastacks"]}
    assert stacks["minnie65_public"]["segmentation_source"] == \
        "graphene://https://minnie.cave-demo.org/segmentation/table/minnie3_v1"
    assert stacks["minnie65_public"]["soma_table"] == "nucleus_detection_v0"
    tokens = {t["secret"] for t in book["service-token"]["values"]["secrets"]}
    assert tokens == {"global-cave-token", "minnie-cave-token", "minnie-pmanagement-token", "fanc-cave-token"}


def test_local_runbook_has_the_first_database_and_rollback(capsys: pytest.CaptureFixture[str]) -> None:
    book = steps(capsys, "minnie")
    mat = book["materialization-database"]
    assert mat["values"] == {"aligned_volume": "minnie65", "datastack": "minnie65_phase3_v1"}
    assert any("CREATE ANNOTATION DATABASE with aligned_volume_name minnie65" in i for i in mat["items"])
    kept = {d["key"] for d in book["rollback"]["values"]["data_resources"]}
    assert {"sql-instance/cave-minnie-sql", "bigtable-instance/pychunkedgraph", "bucket/cave-demo-pcg-edges"} <= kept
    assert kept == {r.key for r in desired(SPECS["minnie"]) if r.data}
    # cave-demo.org is global's zone: minnie delegates nothing, its records go into global's zone
    dns = book["dns-registrar"]["values"]
    assert dns["zones"] == {}
    assert dns["zones_elsewhere"] == {"cave-demo": {"dns_name": "cave-demo.org", "owner": "global",
                                                    "project": "cave-demo-global", "exists": None}}


def _repo_with(tmp_path: Path, cluster: str, old: str, new: str) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "environments", root / "environments")
    path = root / "environments" / f"{cluster}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return root


@pytest.mark.parametrize(("old", "new", "message"), [
    ("      aligned_volume: minnie65\n      pcg_table: minnie3_v1\n      description: Public",
     "      aligned_volume: minnie66\n      pcg_table: minnie3_v1\n      description: Public",
     r"environments/minnie\.yaml:(\d+):23: aligned volume 'minnie66' of datastack 'minnie65_public' is not in "
     r"registry\.aligned_volumes \(did you mean 'minnie65'\?\)"),
    ("      pcg_table: minnie3_v1\n      description: Public", "      pcg_table: minnie4\n      description: Public",
     r"environments/minnie\.yaml:(\d+):18: PCG table 'minnie4' is not among services\.pychunkedgraph\.graph_ids "
     r"\(minnie3_v1\)"),
    ("      viewer_resolution: [4, 4, 40]\n      synapse_table: synapses_pni_2\n      soma",
     "      segmentation_source: graphene://https://other.example.org/segmentation/table/minnie3_v1\n"
     "      synapse_table: synapses_pni_2\n      soma",
     r"environments/minnie\.yaml:(\d+):28: segmentation_source must be "
     r"graphene://https://minnie\.cave-demo\.org/segmentation/table/minnie3_v1"),
])
def test_registry_errors_point_at_the_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           old: str, new: str, message: str) -> None:
    root = _repo_with(tmp_path, "minnie", old, new)
    code, out, err = runbook(capsys, "minnie", root=root)
    assert code == 2 and out == ""
    m = re.search(message, err)
    assert m, err
    line = int(m[1])
    assert (root / "environments" / "minnie.yaml").read_text().splitlines()[line - 1].strip().startswith(
        new.splitlines()[0].strip().split(":")[0])


def test_served_datastack_missing_from_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _repo_with(tmp_path, "fanc", "datastacks: [fanc_production_mar2021]",
                      "datastacks: [fanc_production_mar2021, fanc_sandbox]")
    code, _, err = runbook(capsys, "fanc", root=root)
    assert code == 2
    assert re.search(r"environments/fanc\.yaml:\d+:\d+: datastack 'fanc_sandbox' is served but not in "
                     r"registry\.datastacks", err), err


def test_datastore_and_dns_zone_are_planned_offline(capsys: pytest.CaptureFixture[str]) -> None:
    for cluster in ("global", "minnie"):
        code = main(["--root", str(REPO), "bootstrap", cluster, "--offline", "--format", "json"])
        data = json.loads(capsys.readouterr().out)
        assert code == 0
        keys = {r["key"] for r in data["resources"]}
        assert "datastore-database/(default)" in keys
        assert {f"dns-zone/{z}" for z in derive(SPECS[cluster]).hostname_zones} <= keys
