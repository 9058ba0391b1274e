"""The sync order of the app-of-apps (compiler/build/waves.py): overlays/argocd/ parsed by wave, its diagram on the
examples, on a 20-cluster fleet (every cluster drawn, locals grouped by their global) and a 40-cluster one (cut with
a note), only the changed clusters drawn for a pull request, hostile labels escaped, and the note of the order
inside a CAVE Application checked against what the overlays and bases annotate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.build import waves
from compiler.build.argocd import compile_argocd
from compiler.build.compile import WAVE
from compiler.build.waves import IN_CLUSTER_ORDER, MAX_CLUSTERS, WaveApp, wave_chart
from compiler.mermaid import render
from compiler.spec.fleet import serving_global
from compiler.spec.load import load_all
from compiler.spec.settings import load_settings
from tests.support import REPO
from tests.support.fleet import synthetic_fleet

ARGOCD = REPO / "overlays" / "argocd"
ADDONS = ["cert-manager", "external-secrets", "ingress-nginx"]




def by_wave(apps: list[WaveApp]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for app in apps:
        out.setdefault(app.wave, []).append(app.name)
    return out


def node_labels(source: str) -> dict[str, str]:
    """Mermaid node id → its label (the quoted text), from a rendered chart."""
    return dict(re.findall(r'^\s*(n_\w+)[\[\(/]+"([^"]*)"', source, re.MULTILINE))


def test_examples_by_wave() -> None:
    apps = waves.read(ARGOCD)
    assert by_wave(apps) == {
        -1: ["argocd-cm", "cave", "cave-apps"],
        0: [f"cave-global-{a}" for a in ADDONS],
        1: ["cave-global"],
        2: [*(f"cave-fanc-{a}" for a in [*ADDONS, "custom-metrics"]),
            *(f"cave-minnie-{a}" for a in [*ADDONS, "custom-metrics"])],
        3: ["cave-fanc", "cave-minnie"],
    }
    named = {a.name: a for a in apps}
    assert named["cave-minnie-cert-manager"] == WaveApp("Application", "cave-minnie-cert-manager", "minnie", 2,
                                                        "cert-manager", "daf-minnie/cert-manager")
    assert named["cave-minnie-custom-metrics"].what == "custom-metrics"
    assert named["cave-global"] == WaveApp("Application", "cave-global", "global", 1, "cave",
                                           "https://kubernetes.default.svc/default")
    assert named["cave-apps"] == WaveApp("Application", "cave-apps", None, -1, "app-of-apps",
                                         "https://kubernetes.default.svc/argocd")
    assert (named["cave"].kind, named["cave"].what, named["cave"].destination) == ("AppProject", "project", "")
    assert (named["argocd-cm"].kind, named["argocd-cm"].what) == ("ConfigMap", "health check")
    # what build would write (compile_argocd's tree) reads the same as the committed files
    settings = load_settings(REPO)
    assert settings is not None
    assert waves.from_tree(compile_argocd(settings, load_all(REPO))) == apps


def test_parse_tolerates_what_build_never_writes() -> None:
    apps = waves.parse([
        b"kind: Application\nmetadata: {name: a, annotations: {argocd.argoproj.io/sync-wave: 'soon'}}\n",
        b"kind: Application\nmetadata: {name: b, labels: {cave.io/cluster: x}, annotations: "
        b"{argocd.argoproj.io/sync-wave: ' 5 '}}\nspec: {destination: {server: https://s}}\n",
        b"kind: Kustomization\nmetadata: {name: k}\n",
        b"- not: [an object\n",
        b"just text\n",
    ])
    assert [(a.name, a.wave, a.cluster, a.destination) for a in apps] == [("a", 0, None, ""), ("b", 5, "x", "https://s")]


def test_examples_chart() -> None:
    apps = waves.read(ARGOCD)
    global_of = {"global": "global", "fanc": "global", "minnie": "global"}
    chart = wave_chart(apps, global_of=global_of)
    assert [g.label for g in chart.groups] == ["wave -1: setup", "wave 0: add-ons of global clusters",
                                               "wave 1: CAVE of global clusters", "wave 2: add-ons of local clusters",
                                               "wave 3: CAVE of local clusters"]
    assert [(e.source, e.target) for e in chart.edges] == [
        ("wave:-1:head", "wave:0:head"), ("wave:0:head", "wave:1:head"), ("wave:1:head", "wave:2:head"),
        ("wave:2:head", "wave:3:head")]
    source = render(chart)
    assert source == render(wave_chart(list(apps), global_of=dict(global_of)))  # deterministic
    labels = node_labels(source)
    assert labels["n_wave_0_c_global"] == "global#58; cert-manager, external-secrets, ingress-nginx"
    assert labels["n_wave_2_c_minnie"] == "minnie#58; cert-manager, external-secrets, ingress-nginx, custom-metrics"
    assert labels["n_wave_3_head"] == "2 clusters · 2 Applications"
    assert labels["n_wave__1_o_AppProject_cave"] == "AppProject cave #40;project#41;"
    # locals sit in a box of their global; the CAVE waves carry the order inside a cluster
    assert 'subgraph g_wave_3_locals_global ["locals of global"]' in source
    assert labels["n_wave_3_order"].startswith("inside each CAVE Application#58; secret store #40;-3#41; → ")
    assert "n_wave_2_order" not in labels
    # without global_of: no local boxes, the kinds of the waves from build/argocd.py's WAVES
    plain = render(wave_chart(apps))
    assert "locals of" not in plain and '["wave 2#58; add-ons of local clusters"]' in plain


def test_marks_are_drawn_first_and_coloured() -> None:
    apps = waves.read(ARGOCD)
    chart = wave_chart(apps, marks={"cave-minnie": "added", "cave-fanc-cert-manager": "changed"}, max_clusters=1)
    source = render(chart)
    labels = node_labels(source)
    # one cluster per wave: the marked one is kept, the other counted
    assert labels["n_wave_3_c_minnie"] == "minnie#58; + CAVE" and "n_wave_3_c_fanc" not in labels
    assert labels["n_wave_2_c_fanc"].startswith("fanc#58; #126; cert-manager, external-secrets")
    assert labels["n_wave_2_more"] == "… and 1 more cluster #40;see status --format markdown#41;"
    assert "n_wave_3_c_minnie[\"minnie#58; + CAVE\"]:::added" in source
    assert "classDef added " in source and "classDef changed " in source and "classDef removed" not in source


def fleet_apps(root: Path) -> tuple[list[WaveApp], dict[str, str | None]]:
    """compile_argocd's objects of a generated fleet, and each cluster's global."""
    loaded = load_all(root)
    settings = load_settings(root)
    assert settings is not None
    specs = {name: item.spec for name, item in loaded.items()}
    return waves.from_tree(compile_argocd(settings, loaded)), {name: serving_global(name, specs) for name in specs}


@pytest.fixture(scope="module")
def forty(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[WaveApp], dict[str, str | None]]:
    return fleet_apps(synthetic_fleet(tmp_path_factory.mktemp("forty"), 40))


def test_twenty_clusters_all_drawn_grouped(tmp_path: Path) -> None:
    apps, global_of = fleet_apps(synthetic_fleet(tmp_path / "fleet", 20))
    assert len([a for a in apps if a.wave == 2]) == 20 * 4 and set(global_of.values()) == {"global"}
    chart = wave_chart(apps, global_of=global_of)
    source = render(chart)
    labels = node_labels(source)
    for wave in (2, 3):
        group = next(g for g in chart.groups if g.key == f"wave:{wave}")
        assert [g.label for g in group.groups] == ["locals of global"]
        assert [n.key for n in group.groups[0].nodes] == [f"wave:{wave}:c:l{i:03d}" for i in range(1, 21)]
        assert f"n_wave_{wave}_more" not in labels
        assert labels[f"n_wave_{wave}_head"] == f"20 clusters · {80 if wave == 2 else 20} Applications"
    assert "more" not in source


def test_forty_clusters_cut_with_a_note(forty: tuple[list[WaveApp], dict[str, str | None]]) -> None:
    apps, global_of = forty
    assert MAX_CLUSTERS == 25
    chart = wave_chart(apps, global_of=global_of)
    labels = node_labels(render(chart))
    for wave in (2, 3):
        group = next(g for g in chart.groups if g.key == f"wave:{wave}")
        assert [n.key for n in group.groups[0].nodes] == [f"wave:{wave}:c:l{i:03d}" for i in range(1, 26)]
        assert labels[f"n_wave_{wave}_more"] == "… and 15 more clusters #40;see status --format markdown#41;"
    one = wave_chart(apps, global_of=global_of, max_clusters=39)
    assert node_labels(render(one))["n_wave_2_more"] == "… and 1 more cluster #40;see status --format markdown#41;"


def test_only_the_marked_clusters_drawn(forty: tuple[list[WaveApp], dict[str, str | None]]) -> None:
    """A pull request's diagram: the clusters the change touches, and how many others each wave holds."""
    apps, _ = forty
    marks = {"cave-l007": "added", "cave-l030": "changed", "cave-l031-cert-manager": "removed"}
    chart = wave_chart(apps, marks=marks, only_marked=True)
    labels = node_labels(render(chart))
    assert labels["n_wave_3_c_l007"] == "l007#58; + CAVE" and labels["n_wave_3_c_l030"] == "l030#58; #126; CAVE"
    assert labels["n_wave_3_unchanged"] == "38 unchanged clusters"
    assert labels["n_wave_2_c_l031"].startswith("l031#58; − cert-manager, external-secrets")
    assert labels["n_wave_2_unchanged"] == "39 unchanged clusters"
    assert [n.key for n in chart.all_nodes() if n.key.startswith("wave:3:c:")] == ["wave:3:c:l007", "wave:3:c:l030"]
    assert labels["n_wave_0_unchanged"] == "1 unchanged cluster" and "n_wave_0_c_global" not in labels
    assert labels["n_wave_3_head"] == "40 clusters · 40 Applications"  # the head still counts the whole wave


def test_cave_and_the_labels_are_named_once() -> None:
    """The component of a CAVE Application (build/argocd.py's CAVE) and the label keys (catalog.CLUSTER_LABEL,
    COMPONENT_LABEL) are written out in one place each: every other module uses the name."""
    found = []
    for path in sorted((REPO / "compiler").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if rel != "compiler/catalog.py" and re.search(r"[\"']cave\.io/(cluster|component)[\"']", code):
                found.append(f"{rel}:{n}: {line.strip()}")
            if rel != "compiler/build/argocd.py" and re.match(r"\s*CAVE\s*=", code):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []


HOSTILE = 'x"] --> evil["<img src=x onerror=alert(1)>` %%{init: {}}%% ```'


def test_hostile_labels_only_escaped() -> None:
    docs = yaml.safe_dump_all([
        {"kind": "Application", "metadata": {"name": "evil-app", "labels": {"cave.io/cluster": HOSTILE,
                                                                         "cave.io/component": HOSTILE},
                                             "annotations": {"argocd.argoproj.io/sync-wave": "2"}}},
        {"kind": "AppProject", "metadata": {"name": HOSTILE}},
    ])
    apps = waves.parse([docs.encode()])
    assert {a.cluster for a in apps} == {HOSTILE, None}
    source = render(wave_chart(apps, global_of={HOSTILE: None}, marks={"evil-app": "added"}))
    for part in ('x"]', "<img", "`", "%%", "alert(1)"):
        assert part not in source
    for line in source.splitlines():
        assert line.count('"') in (0, 2, 4), line  # one quoted label per node, two on a labelled edge
    assert "x#34;#93; --#62; evil#91;#34;#60;img" in source


def _annotated_waves(docs: list[Any]) -> dict[str, set[int]]:
    """kind → the sync waves its objects carry, in plain manifests and in a kustomization's patches/generators."""
    out: dict[str, set[int]] = {}

    def walk(obj: Any, kind: str) -> None:
        if isinstance(obj, dict):
            kind = str(obj.get("kind", kind))
            wave = (obj.get("annotations") or {}).get(WAVE) if isinstance(obj.get("annotations"), dict) else None
            if wave is not None:
                out.setdefault(kind, set()).add(int(wave))
            for key, value in obj.items():
                if key == "patch" and isinstance(value, str):
                    walk(yaml.safe_load(value), kind)
                else:
                    walk(value, kind)
        elif isinstance(obj, list):
            for item in obj:
                walk(item, kind)

    for doc in docs:
        walk(doc, "")
    return out


def test_in_cluster_order_is_what_overlays_and_bases_annotate() -> None:
    docs = [d for p in sorted((REPO / "overlays" / "minnie").rglob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text(encoding="utf-8"))]
    docs += [d for p in sorted((REPO / "base").rglob("*.yaml")) for d in yaml.safe_load_all(p.read_text("utf-8"))]
    found = _annotated_waves(docs)
    assert set().union(*found.values()) == {wave for wave, _ in IN_CLUSTER_ORDER}
    order = dict(IN_CLUSTER_ORDER)
    assert found["ClusterSecretStore"] == {-3} and order[-3] == "secret store"
    assert {-2} <= found["ServiceAccount"] and {-2} <= found["ExternalSecret"]
    assert found["Job"] == {-1} and "migration" in order[-1]
    assert order[0] == "workloads" and found["Deployment"] == {0}


@pytest.mark.parametrize("waves_seen", [[], [7]])
def test_empty_and_unknown_waves(waves_seen: list[int]) -> None:
    apps = [WaveApp("Application", f"a{w}", "c", w, "cave", "d/ns") for w in waves_seen]
    source = render(wave_chart(apps))
    if not waves_seen:
        assert 'n_none[/"no Argo CD object"/]' in source
    else:
        assert '["wave 7#58; CAVE"]' in source  # a wave argocd.py never writes: no cluster kind guessed
