"""Every Mermaid diagram the project emits for the example environments, drawn by the real Mermaid renderer
(mmdc driving chromium, tests/support/mermaid.py) in one batch: `status --format mermaid` and the ```mermaid block
of `status --format markdown`; `bootstrap CLUSTER --offline --format mermaid` and the ```mermaid blocks of
`runbook CLUSTER` for each environments/*.yaml; the ```mermaid blocks ("Sync order", before and after) of the
pull-request comment `diff --format markdown` writes for a change that adds a cluster's Applications. And the
diagrams of what the examples do not show: `status --format mermaid` for a 20-cluster fleet (every cluster, the
locals in name order) and a 40-cluster one (cut, the note below the locals), and for hand-edited overlays/argocd/
labels of 60,000 hostile characters; a sync-order chart with a diff's marks and hostile labels; a bootstrap plan cut
to fit. Each must render without a Mermaid error and show exactly the text it was given.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compiler.bootstrap import diagram, providers
from compiler.bootstrap.engine import plan
from compiler.bootstrap.model import Resource
from compiler.build import waves
from compiler.build.status import fleet_status, local_label
from compiler.mermaid import render, shorten
from compiler.spec.load import load_environments
from tests.support import REPO
from tests.support import mermaid as renderer
from tests.support.fleet import copy_fleet, synthetic_fleet
from tests.support.mermaid import Rendered, mermaid_blocks, node_positions, shown
from tests.support.render import make_repo

CLUSTERS = sorted(p.stem for p in (REPO / "environments").glob("*.yaml"))
ADDED = "fanc"  # the cluster the pull request adds


def cli(root: Path, *args: str, codes: tuple[int, ...] = (0,)) -> str:
    """`python -m compiler -C ROOT ARGS`'s stdout; its exit code must be one of `codes`, with no traceback."""
    proc = subprocess.run([sys.executable, "-m", "compiler", "-C", str(root), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode in codes and "Traceback" not in proc.stderr, (args, proc.returncode, proc.stderr[-3000:])
    return proc.stdout


@pytest.fixture(scope="module")
def pr_comment(tmp_path_factory: pytest.TempPathFactory, kustomize_tool: object) -> str:
    """The diff comment of a pull request adding the fanc cluster (its spec, overlay and Argo CD Applications) to a
    git copy of the examples, built as `build` writes it (diff renders the new cluster with kustomize)."""
    root = copy_fleet(REPO, tmp_path_factory.mktemp("pr") / "repo")
    repo = make_repo(root, {})
    spec = root / "environments" / f"{ADDED}.yaml"
    text = spec.read_bytes()
    spec.unlink()
    cli(root, "build")
    repo.commit(f"without {ADDED}")
    spec.write_bytes(text)
    cli(root, "build")
    return cli(root, "diff", "--base", "HEAD", "--format", "markdown", codes=(1,))




HUGE = ('x"] --> evil["<b>%%#35;`$$ ' * 2500)[:60_000]  # a hand-edited label: 60,000 characters of syntax
HOSTILE = 'x"] --> evil["<img src=x onerror=alert(1)>` %%{init: {}}%% ```'


@pytest.fixture(scope="module")
def hostile_fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples with HUGE as the component label of an Application of the global and of minnie."""
    root = copy_fleet(REPO, tmp_path_factory.mktemp("hostile") / "repo")
    for cluster in ("global", "minnie"):
        path = root / "overlays" / "argocd" / "clusters" / f"{cluster}.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("cave.io/component: ingress-nginx", f"cave.io/component: '{HUGE}'"), "utf-8")
    return root


def hostile_wave_chart() -> str:
    """A pull request's sync-order chart (marks, only the marked clusters) of Applications with hostile labels."""
    docs = yaml.safe_dump_all([
        {"kind": "Application", "metadata": {"name": f"app-{i}", "labels": {"cave.io/cluster": f"{HOSTILE} {i}",
                                                                         "cave.io/component": HOSTILE if i else HUGE},
                                             "annotations": {"argocd.argoproj.io/sync-wave": str(2 + i % 2)}}}
        for i in range(4)])
    apps = waves.parse([docs.encode()])
    return render(waves.wave_chart(apps, marks={"app-0": "added", "app-1": "changed"}, only_marked=True))


def cut_plan() -> str:
    """A bootstrap plan of 500 secrets, each needing the two before it: too many arrows, cut at the end."""
    spec = load_environments(REPO, pending_outputs=True)["minnie"]
    names = [f"s{i:03}" for i in range(500)]
    resources = [Resource("secret", name, spec.gcp.project,
                          depends=tuple(f"secret/{n}" for n in names[max(0, i - 2):i])) for i, name in enumerate(names)]
    return diagram.format_mermaid(spec, plan(resources, providers.provider_for, offline=True), "offline")


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Built fleets of 20 and 40 clusters (one global, the rest locals)."""
    return {size: synthetic_fleet(tmp_path_factory.mktemp(f"fleet{size}") / "repo", size - 1, build=True)
            for size in (21, 40)}


@pytest.fixture(scope="module")
def emitted(pr_comment: str, fleets: dict[int, Path], hostile_fleet: Path) -> dict[str, str]:
    """Diagram name -> Mermaid source, for every diagram the commands emit for the examples, and the others."""
    diagrams = {"status --format mermaid": cli(REPO, "status", "--format", "mermaid")}
    documents = {"status --format markdown": cli(REPO, "status", "--format", "markdown")}
    for cluster in CLUSTERS:
        diagrams[f"bootstrap {cluster} --offline --format mermaid"] = cli(
            REPO, "bootstrap", cluster, "--offline", "--format", "mermaid", codes=(0, 1))
        documents[f"runbook {cluster}"] = cli(REPO, "runbook", cluster)
    documents[f"diff --format markdown (adding {ADDED})"] = pr_comment
    for name, text in documents.items():
        blocks = mermaid_blocks(text)
        assert blocks, f"{name}: no ```mermaid block in:\n{text[:3000]}"
        diagrams.update({f"{name} #{i}": block for i, block in enumerate(blocks, 1)})
    examples = len(diagrams)
    for size, root in fleets.items():
        diagrams[f"status ({size} clusters)"] = cli(root, "status", "--format", "mermaid")
    diagrams["status (hostile labels)"] = cli(hostile_fleet, "status", "--format", "mermaid")
    diagrams["sync order (hostile labels)"] = hostile_wave_chart()
    diagrams["bootstrap (cut plan)"] = cut_plan()
    assert len(diagrams) == examples + 5
    return diagrams


@pytest.fixture(scope="module")
def rendered(emitted: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return renderer.require().render_all(emitted, tmp_path_factory.mktemp("diagrams"))


def test_every_command_emits_its_diagrams(emitted: dict[str, str], pr_comment: str) -> None:
    names = set(emitted)
    assert {"status --format mermaid", "status --format markdown #1"} <= names
    for cluster in CLUSTERS:
        assert f"bootstrap {cluster} --offline --format mermaid" in names and f"runbook {cluster} #1" in names
    # the comment's Sync order: the waves before the change and after it
    assert "**Sync order**" in pr_comment
    assert f"diff --format markdown (adding {ADDED}) #2" in names
    # the Markdown block and the bare source are the same chart; bare sources are sources, not Markdown
    assert emitted["status --format markdown #1"] == emitted["status --format mermaid"]
    for name, source in emitted.items():
        assert re.match(r"flowchart (TD|LR)\n", source), f"{name}: {source[:200]!r}"


def test_every_diagram_renders(rendered: Rendered, emitted: dict[str, str]) -> None:
    rendered.check()  # mmdc's error and the source of each diagram Mermaid refused
    assert sorted(rendered.svgs) == sorted(emitted)
    for name, svg in rendered.svgs.items():
        seen = shown(svg)
        assert seen.nodes and all(seen.nodes), f"{name}: a node without a label in {svg}"
        assert renderer.active_content(svg) == [], name
        if "hostile" not in name:  # our own labels fit mermaid.MAX_LABEL: none is cut
            assert not [t for t in seen.texts() if t.endswith("…")], (name, seen.texts())


def test_twenty_clusters_drawn_whole_in_order(rendered: Rendered) -> None:
    svg = rendered.svg("status (21 clusters)")
    seen = shown(svg)
    names = ["global", *(f"l{i:03d}" for i in range(1, 21))]
    for name in names:
        assert len([t for t in seen.nodes if t.startswith(f"{name} · GCP ")]) == 1, name
    assert not [t for t in seen.nodes if "more cluster" in t]
    assert len(seen.nodes) < 30 and sorted(seen.groups) == ["Argo CD app-of-apps (overlays/argocd/)", "global (global)",
                                                            "locals of global · they use global.cave-demo.org",
                                                            "node pools"]
    at = node_positions(svg)
    ys = [at[f"n_cluster_{name}"][1] for name in names[1:]]
    assert ys == sorted(ys) and len(set(ys)) == 20, ys  # top to bottom in name order
    assert len({at[f"n_cluster_{name}"][0] for name in names[1:]}) == 1  # one column


def test_forty_clusters_cut_with_the_note_below_the_locals(rendered: Rendered) -> None:
    svg = rendered.svg("status (40 clusters)")
    seen = shown(svg)
    assert "… and 15 more clusters (see status --format markdown)" in seen.nodes
    assert [t for t in seen.nodes if t.startswith("l024 · ")] and not [t for t in seen.nodes if t.startswith("l025 ")]
    at = node_positions(svg)
    last = at["n_cluster_l024"]
    note = at["n_locals_global_more"]
    assert note[1] > last[1] and abs(note[0] - last[0]) < 1, (note, last)


def test_hostile_labels_show_cut_and_exact(rendered: Rendered, hostile_fleet: Path) -> None:
    seen = shown(rendered.svg("status (hostile labels)"))
    fleet = fleet_status(hostile_fleet)
    minnie = next(row for row in fleet.clusters if row.name == "minnie")
    assert shorten(local_label(fleet, minnie)) in seen.nodes
    assert shorten(f"wave 0 · cert-manager, external-secrets, {HUGE}") in seen.nodes
    assert len([t for t in seen.nodes if t.endswith("…")]) == 2
    chart = shown(rendered.svg("sync order (hostile labels)"))
    assert f"{HOSTILE} 1: ~ {HOSTILE}" in chart.nodes and f"{HOSTILE} 3: {HOSTILE}" not in chart.nodes
    assert shorten(f"{HOSTILE} 0: + {HUGE}") in chart.nodes
    assert chart.nodes.count("1 unchanged cluster") == 2


def test_a_cut_plan_renders_with_its_note(rendered: Rendered) -> None:
    seen = shown(rendered.svg("bootstrap (cut plan)"))
    notes = [t for t in seen.nodes if "more resources not drawn" in t]
    assert len(notes) == 1 and notes[0].endswith("python -m compiler bootstrap minnie lists all 500"), notes
    left = int(notes[0].split()[0])
    assert len([t for t in seen.nodes if re.match(r"secret s\d{3} · planned$", t)]) == 500 - left


def test_fleet_diagram_names_every_cluster(rendered: Rendered) -> None:
    seen = shown(rendered.svg("status --format mermaid"))
    assert CLUSTERS == ["fanc", "global", "minnie"]
    for cluster in CLUSTERS:  # each cluster a node; the global a box of its own too
        assert [t for t in seen.nodes if re.match(rf"{cluster} · GCP cave-demo-{cluster} · ", t)], (cluster, seen.nodes)
    assert "global (global)" in seen.groups and "locals of global · they use global.cave-demo.org" in seen.groups
    assert len(seen.nodes) >= len(CLUSTERS) and seen.edges >= len(CLUSTERS)


def test_pr_comment_draws_the_added_cluster_after_only(rendered: Rendered) -> None:
    before = shown(rendered.svg(f"diff --format markdown (adding {ADDED}) #1")).texts()
    after = shown(rendered.svg(f"diff --format markdown (adding {ADDED}) #2")).texts()
    assert not [t for t in before if ADDED in t], before
    assert [t for t in after if t.startswith(f"{ADDED}: ")], after
