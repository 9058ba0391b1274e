"""`status`'s fleet diagram (`--format mermaid`, the Markdown's ```mermaid block) and the data it comes from (node
pools, add-ons, Applications by sync wave) in text and JSON: on a copy of the examples, on a 20-cluster fleet (every
cluster drawn, a local as one node), on a 40-cluster one (cut with a note; every cluster drawn or counted), with
hand-edited Application labels that must only appear escaped and cut, and with an overlays/argocd/ too large for any
diagram (a note instead). The same bytes under any hash seed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.bootstrap.desired import desired
from compiler.build.status import TABLES_HINT, fleet_chart, fleet_diagram, fleet_status
from compiler.build.waves import MAX_CLUSTERS, MORE_HINT
from compiler.main import main
from compiler.mermaid import MAX_LABEL, render
from compiler.spec.load import load_all
from tests.support import REPO
from tests.support.fleet import copy_fleet, synthetic_fleet

CLUSTERS = ("fanc", "global", "minnie")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_fleet(REPO, tmp_path_factory.mktemp("status") / "repo")


def status(root: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["-C", str(root), "status", "--format", fmt]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def labels(source: str) -> dict[str, str]:
    """Mermaid node id → label."""
    return dict(re.findall(r'^\s*(n_\w+)[\[\(/]+"([^"]*)"', source, re.MULTILINE))


def unescape(label: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label)




@pytest.fixture(scope="module")
def forty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_fleet(tmp_path_factory.mktemp("forty") / "fleet", 39, build=True)


def test_json_has_pools_addons_and_waves(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(status(fleet, "json", capsys))
    assert data["version"] == 1
    clusters = {c["name"]: c for c in data["clusters"]}
    assert {c: clusters[c]["global_cluster"] for c in CLUSTERS} == {"fanc": "global", "global": None,
                                                                    "minnie": "global"}
    assert clusters["minnie"]["node_pools"][2] == {"name": "mesh-pool", "machine_type": "t2d-standard-4",
                                                   "min_nodes": 1, "max_nodes": 100, "preemptible": True,
                                                   "taints": ["pool=mesh-pool:NoSchedule"]}
    assert clusters["global"]["node_pools"] == [{"name": "default-pool", "machine_type": "e2-standard-4",
                                                 "min_nodes": 1, "max_nodes": 5, "preemptible": False, "taints": []}]
    # the taints are the ones bootstrap gives the pools it creates
    loaded = load_all(fleet)
    for name in CLUSTERS:
        planned = {r.name: list(r.fields["taints"]) for r in desired(loaded[name].spec) if r.kind == "node-pool"}
        assert {p["name"]: p["taints"] for p in clusters[name]["node_pools"]} == planned
    assert clusters["minnie"]["addons"] == ["cert-manager", "external-secrets", "ingress-nginx", "custom-metrics"]
    assert clusters["global"]["addons"] == ["cert-manager", "external-secrets", "ingress-nginx"]
    apps = {a["name"]: a for a in data["applications"]}
    assert apps["cave-minnie"] == {"kind": "Application", "name": "cave-minnie", "cluster": "minnie", "wave": 3,
                                   "what": "cave", "destination": "daf-minnie/default"}
    assert apps["cave-global-ingress-nginx"]["wave"] == 0 and apps["cave-global"]["wave"] == 1
    assert apps["cave"]["kind"] == "AppProject" and apps["cave"]["wave"] == -1
    assert [a["wave"] for a in data["applications"]] == sorted(a["wave"] for a in data["applications"])


def test_mermaid_names_every_cluster_pool_addon_and_wave(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(status(fleet, "json", capsys))
    source = status(fleet, "mermaid", capsys)
    assert source.startswith("flowchart LR\n") and "```" not in source
    shown = {unescape(label) for label in labels(source).values()}
    for cluster in data["clusters"]:
        name = cluster["name"]
        waves: dict[int, list[str]] = {}
        for app in data["applications"]:
            if app["cluster"] == name:
                waves.setdefault(app["wave"], []).append("CAVE" if app["what"] == "cave" else app["what"])
        assert waves
        if cluster["kind"] == "global":  # a box: the cluster, each node pool, each wave's Applications
            assert f"{name} · GCP {cluster['project']} · Argo CD {cluster['argocd_destination']}" in shown
            assert f'subgraph g_box_{name} ["{name} #40;{cluster["kind"]}#41;"]' in source
            for pool in cluster["node_pools"]:
                label = " · ".join([pool["name"], pool["machine_type"], f"{pool['min_nodes']}–{pool['max_nodes']} "
                                    "nodes", *(["preemptible"] if pool["preemptible"] else []),
                                    *(f"taint {t}" for t in pool["taints"])])
                assert label in shown
            assert all(f"wave {w} · {', '.join(whats)}" in shown for w, whats in waves.items())
            continue
        # a local: one node, in its global's box, linked to the global
        pools = cluster["node_pools"]
        nodes = f"{sum(p['min_nodes'] for p in pools)}–{sum(p['max_nodes'] for p in pools)} nodes"
        assert (f"{name} · GCP {cluster['project']} · waves {', '.join(map(str, sorted(waves)))} · "
                f"{len(pools)} pools ({nodes}) · add-ons: {', '.join(cluster['addons'])}") in shown
        assert f"subgraph g_box_{name} " not in source
        assert f"n_cluster_{name} --> n_cluster_{cluster['global_cluster']}" in source
    assert ("minnie · GCP cave-demo-minnie · waves 2, 3 · 4 pools (4–124 nodes) · add-ons: cert-manager, "
            "external-secrets, ingress-nginx, custom-metrics") in shown
    assert "default-pool · e2-standard-4 · 1–5 nodes" in shown and "wave 0 · cert-manager, external-secrets, " \
           "ingress-nginx" in shown
    assert 'subgraph g_locals_global ["locals of global · they use global.cave-demo.org"]' in source
    assert source.index("n_cluster_fanc[") < source.index("n_cluster_minnie[")
    assert "n_cluster_global -->" not in source  # a global uses no other
    assert 'n_setup__1 -.->|"Argo CD runs in"| n_cluster_global' in source


def test_markdown_and_text_show_the_same(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = status(fleet, "mermaid", capsys)
    md = status(fleet, "markdown", capsys)
    assert md.count("```mermaid\n") == 1
    block = md.split("#### Diagram\n\n```mermaid\n", 1)[1].split("\n```\n", 1)[0]
    assert block + "\n" == source
    lines = md.splitlines()
    assert "| minnie | mesh-pool | t2d-standard-4 | 1–100 | yes | pool=mesh-pool:NoSchedule |" in lines
    assert "| 2 | minnie | cert-manager, external-secrets, ingress-nginx, custom-metrics |" in lines
    assert "| -1 | - | ConfigMap argocd-cm (health check), AppProject cave (project), Application cave-apps " \
           "(app-of-apps) |" in lines
    text = status(fleet, "text", capsys).splitlines()
    rows = [line.split() for line in text]
    assert ["global", "default-pool", "e2-standard-4", "1–5", "no", "-"] in rows
    assert ["fanc", "mesh-pool", "t2d-standard-4", "0–40", "yes", "pool=mesh-pool:NoSchedule"] in rows
    waves = text.index("Argo CD sync waves (overlays/argocd/)")
    assert [r[:2] for r in rows[waves + 2:]] == [["-1", "-"], ["0", "global"], ["1", "global"], ["2", "fanc"],
                                                  ["2", "minnie"], ["3", "fanc"], ["3", "minnie"]]
    assert rows[waves + 5] == ["2", "fanc", "cert-manager,", "external-secrets,", "ingress-nginx,", "custom-metrics"]


def test_hand_edited_label_is_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_fleet(REPO, tmp_path / "repo")
    path = root / "overlays" / "argocd" / "clusters" / "minnie.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count("cave.io/component: ingress-nginx") == 1
    hostile = "'x\"] --> evil[\"<b>owned</b>`%%'"
    path.write_text(text.replace("cave.io/component: ingress-nginx", f"cave.io/component: {hostile}"), "utf-8")
    source = status(root, "mermaid", capsys)
    assert "<b>" not in source and 'x"]' not in source and "`" not in source and "%%" not in source
    assert "x#34;#93; --#62; evil#91;#34;#60;b#62;owned" in source
    md = status(root, "markdown", capsys)
    assert md.count("```") == 2  # the diagram's fence stays the only one
    assert json.loads(status(root, "json", capsys))["clusters"][2]["addons"][2] == hostile.strip("'")


HUGE = ('x"] --> evil["<b>%%#35;`' * 2600)[:60_000]


def test_a_huge_hand_edited_label_is_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 60,000-character label on an Application of the global and of a local: every cluster is still drawn
    (before, Mermaid's size limit made status exit 3, or cut the clusters), each label cut to mermaid.MAX_LABEL;
    an Application of a cluster with no spec is named in a note."""
    root = copy_fleet(REPO, tmp_path / "repo")
    for cluster in ("global", "minnie"):
        path = root / "overlays" / "argocd" / "clusters" / f"{cluster}.yaml"
        text = path.read_text(encoding="utf-8")
        assert text.count("cave.io/component: ingress-nginx") == 1
        path.write_text(text.replace("cave.io/component: ingress-nginx", f"cave.io/component: '{HUGE}'"), "utf-8")
    (root / "overlays" / "argocd" / "clusters" / "ghost.yaml").write_text(
        "kind: Application\nmetadata:\n  name: cave-ghost\n  labels: {cave.io/cluster: ghost, cave.io/component: "
        "cave}\n  annotations: {argocd.argoproj.io/sync-wave: '3'}\n", encoding="utf-8")
    source = status(root, "mermaid", capsys)
    shown = {key: unescape(label) for key, label in labels(source).items()}
    assert max(len(label) for label in shown.values()) == MAX_LABEL
    assert shown["n_wave_global_0"] == f"wave 0 · cert-manager, external-secrets, {HUGE}"[:MAX_LABEL - 1] + "…"
    assert shown["n_cluster_minnie"].startswith("minnie · GCP cave-demo-minnie · waves 2, 3 · 4 pools (4–124 nodes) "
                                                "· add-ons: cert-manager, external-secrets, x\"] --> evil[")
    assert shown["n_cluster_minnie"].endswith("…") and len(shown["n_cluster_minnie"]) == MAX_LABEL
    assert {"n_cluster_global", "n_cluster_fanc", "n_cluster_minnie"} <= set(shown)
    assert shown["n_strays"] == "Applications of 1 cluster with no spec: ghost (run python -m compiler build)"
    assert 'subgraph g_argocd ["Argo CD app-of-apps #40;overlays/argocd/#41; · overlay stale"]' in source
    assert "<b>" not in source and "%%" not in source and "`" not in source
    md = status(root, "markdown", capsys)
    assert md.split("```mermaid\n", 1)[1].split("\n```", 1)[0] + "\n" == source
    data = json.loads(status(root, "json", capsys))
    assert data["clusters"][2]["addons"][2] == HUGE  # the data keeps it whole


def test_an_argocd_overlay_too_large_for_any_diagram_gives_a_note(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """400 hand-made objects of overlays/argocd/, each in a wave of its own: not even the chart without clusters
    fits Mermaid, so the diagram is one note, and status does not fail."""
    root = copy_fleet(REPO, tmp_path / "repo")
    (root / "overlays" / "argocd" / "many.yaml").write_text("".join(
        f"---\nkind: ConfigMap\nmetadata: {{name: c{i}, annotations: {{argocd.argoproj.io/sync-wave: '{100 + i}'}}}}\n"
        for i in range(400)), encoding="utf-8")
    source = status(root, "mermaid", capsys)
    assert source == ('flowchart LR\n  n_too_large[/"the fleet of 3 clusters is too large for a Mermaid diagram '
                      '#40;see status --format markdown, or status --format json#41;"/]\n')
    md = status(root, "markdown", capsys)
    assert "too large for a Mermaid diagram #40;see the tables above, or status --format json#41;" in md
    assert "| 499 | - | ConfigMap c399 |" in md  # the tables keep it all


def test_twenty_clusters_drawn_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = synthetic_fleet(tmp_path / "fleet", 20, build=True)
    source = status(root, "mermaid", capsys)
    shown = labels(source)
    assert re.findall(r"subgraph g_box_(\w+) ", source) == ["global"]  # the global in detail, the locals compact
    locals_ = re.findall(r"^    n_cluster_(l\d+)\[", source, re.MULTILINE)
    assert locals_ == [f"l{i:03d}" for i in range(1, 21)]  # in name order
    assert unescape(shown["n_cluster_l020"]) == ("l020 · GCP cave-demo-l020 · waves 2, 3 · 4 pools (4–124 nodes) · "
                                                 "add-ons: cert-manager, external-secrets, ingress-nginx, "
                                                 "custom-metrics")
    assert source.count("--> n_cluster_global\n") == 20 and "more" not in source
    assert len(shown) < 30 and len(source) < 8000
    md = status(root, "markdown", capsys)
    assert "| l020 | mesh-pool |" in md and md.split("```mermaid\n", 1)[1].split("\n```", 1)[0] + "\n" == source


def test_forty_clusters_cut_with_a_note(forty: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert MAX_CLUSTERS == 25
    source = status(forty, "mermaid", capsys)
    locals_ = re.findall(r"^    n_cluster_(l\d+)\[", source, re.MULTILINE)
    assert locals_ == [f"l{i:03d}" for i in range(1, 25)]
    after = source.split('subgraph g_locals_global ["locals of global · they use global.cave-demo.org"]\n', 1)[1]
    box = after.split("\n  end\n", 1)[0].splitlines()
    assert box[-1] == f'    n_locals_global_more[/"… and 15 more clusters #40;{MORE_HINT}#41;"/]'  # last, below
    md = status(forty, "markdown", capsys)
    assert f"… and 15 more clusters #40;{TABLES_HINT}#41;" in md and MORE_HINT not in md
    assert "| l039 | mesh-pool |" in md  # the tables keep every cluster


def test_every_cluster_is_drawn_or_counted(forty: Path) -> None:
    fleet = fleet_status(forty)
    assert len(fleet.clusters) == 40
    for most in range(0, 42):
        chart = fleet_chart(fleet, max_clusters=most)
        drawn = [n.key for n in chart.all_nodes() if n.key.startswith("cluster:")]
        notes = [n.label for n in chart.all_nodes() if n.key.endswith("more") or n.key == "more-globals"]
        counted = sum(int(re.findall(r"^… and (\d+) more cluster", label)[0]) for label in notes)
        assert len(drawn) == min(most, 40) and len(drawn) + counted == 40, most
        if counted == 1:
            assert notes == [f"… and 1 more cluster ({MORE_HINT})"]
        render(chart)
    assert render(fleet_diagram(fleet)) == render(fleet_chart(fleet))


def test_the_diagram_is_the_same_under_any_hash_seed(forty: Path) -> None:
    outputs = [subprocess.run([sys.executable, "-m", "compiler", "-C", str(forty), "status", "--format", fmt],
                              cwd=REPO, capture_output=True, text=True, check=True, timeout=120,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for fmt in ("mermaid", "markdown") for seed in ("1", "2")]
    assert outputs[0] == outputs[1] and outputs[2] == outputs[3] and outputs[0].startswith("flowchart LR\n")
