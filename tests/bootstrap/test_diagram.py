"""`bootstrap --format mermaid`: the plan's dependency graph, each resource once, marked by its status.

The output is read back with a parser of the flowchart subset mermaid.py writes: every line must be one of its
statements (a header, subgraph, node, edge, classDef, end), so a value that broke out of its label fails the parse.
Drawn by the real renderer in the diagram tests of mermaid.py; here what the chart says is checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from compiler import mermaid
from compiler.bootstrap import diagram, providers
from compiler.bootstrap.desired import desired
from compiler.bootstrap.engine import plan
from compiler.bootstrap.model import Resource
from compiler.bootstrap.report import MARK
from compiler.escape import mermaid_label
from compiler.spec.derive import derive, network_name
from compiler.spec.load import load_environments
from tests.support import REPO
from tests.support.bootstrap import Cloud, run

SPECS = load_environments(REPO, pending_outputs=True)
CLUSTERS = sorted(p.stem for p in (REPO / "environments").glob("*.yaml"))

_ID = r"[ng]_\w+"
_LABEL = r'"([^"]*)"'
NODE = re.compile(rf"^ +(n_\w+)(\[/|\(\[|\[){_LABEL}(/\]|\]\)|\])(?::::(\w+))?$")
EDGE = re.compile(r"^ +(n_\w+) -->(?:\|\"[^\"]*\"\|)? (n_\w+)$")
SUBGRAPH = re.compile(rf"^ +subgraph ({_ID}) \[{_LABEL}\]$")
CLASSDEF = re.compile(r"^ +classDef (\w+) ([#\w:,. -]+)$")
OTHER = re.compile(r"^(flowchart (LR|TD)| +direction (LR|TD)| +end)$")
SHAPES = {"[": "box", "([": "stadium", "[/": "note"}


@dataclass(frozen=True)
class Drawn:
    id: str
    shape: str
    label: str
    cls: str | None
    groups: tuple[str, ...]  # titles of the subgraphs around it, outermost first


@dataclass
class Chart:
    nodes: dict[str, Drawn] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    classes: dict[str, str] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)

    def node(self, text: str) -> Drawn:
        """The one node labelled `text` (as the user reads it: compared escaped, as in the source)."""
        found = [n for n in self.nodes.values() if n.label == mermaid_label(text)]
        assert len(found) == 1, (text, [n.label for n in self.nodes.values()][:200])
        return found[0]

    def resources(self) -> list[Drawn]:
        """Resource nodes: boxes outside the legend."""
        return [n for n in self.nodes.values() if n.shape == "box"]


def parse(source: str) -> Chart:
    """The chart a source draws; fails on any line that is not one of the statements mermaid.py writes."""
    chart = Chart()
    assert source.endswith("\n")
    lines = source.rstrip("\n").split("\n")
    assert lines[0] == "flowchart LR"
    stack: list[str] = []
    for line in lines:
        if m := SUBGRAPH.match(line):
            stack.append(m[2])
            chart.groups.append(m[2])
        elif m := NODE.match(line):
            assert m[1] not in chart.nodes, f"node {m[1]} defined twice"
            chart.nodes[m[1]] = Drawn(m[1], SHAPES[m[2]], m[3], m[5], tuple(stack))
        elif m := EDGE.match(line):
            chart.edges.append((m[1], m[2]))
        elif m := CLASSDEF.match(line):
            chart.classes[m[1]] = m[2]
        elif line.strip() == "end":
            stack.pop()
        else:
            assert OTHER.match(line), f"not a statement of ours: {line!r}"
    assert not stack, "a subgraph is not closed"
    for a, b in chart.edges:
        assert a in chart.nodes and b in chart.nodes, (a, b)
    assert {n.cls for n in chart.nodes.values() if n.cls} <= set(chart.classes)
    return chart


def text_order(capsys: pytest.CaptureFixture[str], cluster: str) -> list[str]:
    """Resource keys in the order the text report lists them (the order they are created in)."""
    code, out, _ = run(capsys, REPO, cluster, "--offline")
    assert code == 0
    return re.findall(r"^  planned   (\S+)$", out, re.MULTILINE)


# --------------------------------------------------------------------------- the example clusters, offline


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_offline_chart_names_the_key_resources_and_their_dependencies(
        cluster: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, REPO, cluster, "--offline", "--format", "mermaid")
    assert code == 0, err
    chart = parse(out)
    _, js, _ = run(capsys, REPO, cluster, "--offline", "--format", "json")
    data = json.loads(js)
    spec = SPECS[cluster]
    # one box per resource of the JSON report, each marked planned in colour and in words
    boxes = chart.resources()
    assert len(boxes) == len(data["resources"]) > 40
    assert {(n.cls, n.label.rsplit(" · ", 1)[1]) for n in boxes} == {("planned", "planned")}
    net = chart.node(f"network {network_name(spec)} · planned")
    sub = chart.node(f"subnet {network_name(spec)}-sub · planned")
    gke = chart.node(f"gke-cluster daf-{cluster} · planned")
    sql = chart.node(f"sql-instance {spec.cloud_sql.instance} · planned")
    ip = chart.node(f"address daf-{cluster} · planned")  # the static IP
    compute = chart.node("compute.googleapis.com · planned")
    container = chart.node("container.googleapis.com · planned")
    password = chart.node(f"secret {cluster}-postgres-password · planned")
    edges = set(chart.edges)
    # arrows point from a prerequisite to what depends on it, in the order the text report lists them
    assert (net.id, sub.id) in edges and (sub.id, net.id) not in edges
    assert (sub.id, gke.id) in edges and (password.id, sql.id) in edges
    for pool in spec.node_pools:
        assert (gke.id, chart.node(f"node-pool {pool.name} · planned").id) in edges
    for host in derive(spec).hostnames:  # each A record after the static IP it points at
        record = [n for n in boxes if n.label.startswith(mermaid_label(f"dns-record {host}.") + " ")]
        assert len(record) == 1 and (ip.id, record[0].id) in edges, host
    # an API's arrows go only to resources with no other prerequisite: the network, not the GKE cluster
    assert (compute.id, net.id) in edges and (container.id, gke.id) not in edges
    assert not [a for a, b in edges if b == sql.id and chart.nodes[a].label.endswith("googleapis.com · planned")]
    assert len(edges) == len(chart.edges) <= mermaid.MAX_EDGES
    # grouped, with a legend saying what the colour says
    assert gke.groups == ("GKE cluster",) and net.groups == ("Network",) and sql.groups == ("Databases and storage",)
    assert compute.groups == ("Project and Google APIs", f"project {spec.gcp.project}")
    legend = [n for n in chart.nodes.values() if n.shape == "stadium"]
    assert [(n.label, n.cls) for n in legend] == [(mermaid_label("planned: not looked up (--offline)"), "planned")]
    assert mermaid_label(f"for {cluster} (project {spec.gcp.project}): {len(boxes)} resources, "
                         f"{len(boxes)} planned") in chart.groups[-1]
    assert set(chart.classes) == {"planned", "remark"} and "stroke-dasharray" in chart.classes["planned"]


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_every_resource_is_drawn_once_and_each_arrow_follows_the_text_order(
        cluster: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = SPECS[cluster]
    resources = desired(spec)
    flow = diagram.chart(spec, plan(resources, providers.provider_for, offline=True), "offline")
    keys = [n.key for n in flow.all_nodes() if not n.key.startswith("~")]
    assert sorted(keys) == sorted(r.key for r in resources) and len(set(keys)) == len(keys)
    order = text_order(capsys, cluster)
    assert sorted(order) == sorted(keys)
    position = {key: i for i, key in enumerate(order)}
    by_key = {r.key: r for r in resources}
    drawn = {(e.source, e.target) for e in flow.edges}
    assert len(drawn) == len(flow.edges), "an arrow is drawn twice"
    for source, target in drawn:
        assert source in by_key[target].depends, (source, target)
        assert position[source] < position[target], f"{source} → {target} against the order of the text"
    for r in resources:
        needs = [d for d in r.depends if d in by_key]
        first_level = all(by_key[d].kind in ("api", "project") for d in needs)
        for d in needs:
            want = by_key[d].kind != "api" or first_level
            assert ((d, r.key) in drawn) == want, (d, r.key)


def test_the_source_is_the_same_in_every_run() -> None:
    """Two processes with different hash seeds (set and dict order) print the same bytes."""
    outputs = [subprocess.run([sys.executable, "-m", "compiler", "bootstrap", "minnie", "--offline", "--format",
                               "mermaid"], cwd=REPO, capture_output=True, text=True, check=True, timeout=120,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert outputs[0] == outputs[1] and outputs[0].startswith("flowchart LR\n")
    spec = SPECS["minnie"]
    again = diagram.format_mermaid(spec, plan(desired(spec), providers.provider_for, offline=True), "offline")
    assert again == outputs[0]


# --------------------------------------------------------------------------- a plan read from (fake) Google


def test_plan_marks_what_exists_what_is_missing_and_what_differs(cloud: Cloud, root: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec = SPECS["global"]
    p, region = spec.gcp.project, spec.gcp.region
    cloud.fakes["compute"].add_network(p, network_name(spec))
    cloud.fakes["compute"].add_address(p, region, "daf-global", str(spec.static_ip))
    # someone made the Redis instance bigger by hand: it differs
    cloud.fakes["redis"].add_instance(p, region, "daf-redis-global", {
        "tier": "STANDARD_HA", "memorySizeGb": 5, "port": 6379,
        "authorizedNetwork": f"projects/{p}/global/networks/{network_name(spec)}", "state": "READY"})
    code, out, err = run(capsys, root, "global", "--format", "mermaid")
    assert code == 1, err  # as with the text: something is missing
    chart = parse(out)
    _, js, _ = run(capsys, root, "global", "--format", "json")
    statuses = {r["key"]: r["status"] for r in json.loads(js)["resources"]}
    assert statuses["redis/daf-redis-global"] == "differs" and statuses["network/daf-global-network"] == "exists"

    assert chart.node(f"project {p} · ok").cls == "ok"
    assert chart.node("compute.googleapis.com · ok").cls == "ok"
    assert chart.node(f"network {network_name(spec)} · ok").cls == "ok"
    assert chart.node("address daf-global · ok").cls == "ok"
    assert chart.node(f"subnet {network_name(spec)}-sub · missing").cls == "missing"
    assert chart.node("gke-cluster daf-global · missing").cls == "missing"
    assert chart.node("redis daf-redis-global · DIFFERS").cls == "differs"
    operator = next(r for r in desired(spec) if r.kind == "secret" and r.params["value"] == "operator")
    assert chart.node(f"secret {operator.name} · OPERATOR").cls == "operator"
    # the same counts as the JSON, colour and word alike
    boxes = chart.resources()
    assert Counter(n.cls for n in boxes) == Counter(diagram.CLASS[s] for s in statuses.values())
    assert Counter(n.label.rsplit(" · ", 1)[1] for n in boxes) == Counter(MARK[s] for s in statuses.values())
    legend = {n.cls: n.label for n in chart.nodes.values() if n.shape == "stadium"}
    assert set(legend) == {"ok", "missing", "differs", "operator"}
    assert legend["differs"] == mermaid_label("DIFFERS: differs from the spec (reported, never changed)")
    assert set(chart.classes) == {"ok", "missing", "differs", "operator", "remark"}
    assert "#D55E00" in chart.classes["differs"] and "#009E73" in chart.classes["ok"]
    assert not cloud.writes(), "a plan must not write"


# --------------------------------------------------------------------------- hostile spec text, size


HOSTILE = ['x"] --> evil["', '%%{init: {"theme": "dark"}}%%', "a ``` ````b", "<script>alert(1)</script>",
           "one\nclick n_x call evil()", "]]);;|#&x:::ok", "\\u0022`%%"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_spec_text_appears_only_escaped(text: str) -> None:
    glob = SPECS["global"]
    spec = glob.model_copy(update={
        "name": f"g{text}", "gcp": glob.gcp.model_copy(update={"project": f"p-{text}"}),
        "cloud_sql": glob.cloud_sql.model_copy(update={"instance": f"sql-{text}"})})
    resources = desired(spec)
    source = diagram.format_mermaid(spec, plan(resources, providers.provider_for, offline=True), "offline")
    chart = parse(source)  # every line is one of ours: nothing broke out of a label
    for raw in ("%%", "`", "<", ":::ok"):  # a comment or directive, the fence, HTML, a class of its own
        assert raw not in source
    assert not [line for line in source.splitlines() if line.lstrip().startswith("click")]
    assert len(chart.resources()) == len(resources)
    assert chart.node(f"sql-instance sql-{text} · planned").cls == "planned"
    assert mermaid_label(f"project p-{text}") in chart.groups
    assert any(mermaid_label(f"for g{text} (project p-{text})") in g for g in chart.groups)


@pytest.mark.parametrize("name_length, depends", [(8, 2), (180, 0)])
def test_a_plan_too_large_for_mermaid_is_cut_at_the_end_with_a_note(name_length: int, depends: int) -> None:
    """Too many arrows (two per resource), or too long a source (long names): the end of the plan is left out."""
    spec = SPECS["minnie"]
    names = [f"s{i:03}".ljust(name_length, "x") for i in range(500)]
    resources = [Resource("secret", name, spec.gcp.project,
                          depends=tuple(f"secret/{names[j]}" for j in range(max(0, i - depends), i)))
                 for i, name in enumerate(names)]
    flow = diagram.chart(spec, plan(resources, providers.provider_for, offline=True), "offline")
    source = mermaid.render(flow)
    drawn = [n.key for n in flow.all_nodes() if not n.key.startswith("~")]
    assert drawn == [r.key for r in resources[:len(drawn)]]  # a prefix of the plan: prerequisites kept
    assert len(source) <= mermaid.MAX_SOURCE and len(flow.edges) <= mermaid.MAX_EDGES
    assert len(list(flow.all_nodes())) <= mermaid.MAX_NODES
    assert len(drawn) > 150, "cut far more than needed"
    note = next(n for n in flow.all_nodes() if n.key == "~note:cut")
    assert note.label == (f"{500 - len(drawn)} more resources not drawn (too many for one diagram): "
                          "python -m compiler bootstrap minnie lists all 500")
    assert mermaid_label(note.label) in source and "#96;" not in source  # no backtick: a label shows it as is
