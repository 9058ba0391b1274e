"""The runbook's cloud-resources step draws the bootstrap plan: one ```mermaid block, the chart of
`bootstrap CLUSTER --format mermaid` (offline, or the plan read online), and nothing in the JSON."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
from markdown_it import MarkdownIt

from compiler.bootstrap import diagram, providers
from compiler.bootstrap.desired import desired
from compiler.bootstrap.engine import Outcome, Row, plan
from compiler.escape import mermaid_label
from compiler.main import main
from compiler.runbook.report import as_json_data, format_json, format_markdown
from compiler.runbook.steps import Facts, build_runbook
from compiler.spec.load import load_environments
from compiler.spec.model import ClusterSpec
from tests.support import REPO

SPECS = load_environments(REPO)
CLUSTERS = sorted(p.stem for p in (REPO / "environments").glob("*.yaml"))


@dataclass(frozen=True)
class Fence:
    info: str
    content: str
    section: str  # the text of the `## ` heading it is under


def fences(markdown: str) -> list[Fence]:
    """Every fenced block of a CommonMark document, with the step heading above it."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    out, section = [], ""
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            section = tokens[i + 1].content
        elif token.type in ("fence", "code_block"):
            out.append(Fence(token.info, token.content, section))
    return out


def cli_chart(cluster: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["--root", str(REPO), "bootstrap", cluster, "--offline", "--format", "mermaid"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_the_bootstrap_step_has_one_mermaid_block_the_offline_plan(
        cluster: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--root", str(REPO), "runbook", cluster])
    markdown, err = capsys.readouterr()
    assert code == 0, err
    charts = [f for f in fences(markdown) if f.info == "mermaid"]
    assert len(charts) == 1, [f.section for f in charts]
    assert re.fullmatch(r"2\. \[ \] Cloud resources \(unknown \(run with --online\)\)", charts[0].section)
    assert charts[0].content == cli_chart(cluster, capsys)  # the same chart as `bootstrap --format mermaid`
    assert "· planned\"]:::planned" in charts[0].content
    # the step's own commands still follow it, in their block
    sh = [f for f in fences(markdown) if f.section == charts[0].section and f.info == "sh"]
    assert len(sh) == 1 and sh[0].content.startswith(f"python -m compiler bootstrap {cluster}\n")


def test_json_of_the_runbook_carries_no_diagram(capsys: pytest.CaptureFixture[str]) -> None:
    book = build_runbook(REPO, "minnie", SPECS, Facts([]))
    step = next(s for s in book.steps if s.id == "cloud-resources")
    assert step.diagram is not None  # the Markdown has it...
    data = as_json_data(book)
    assert all(set(s) == {"id", "title", "status", "why", "items", "commands", "values"} for s in data["steps"])
    assert "mermaid" not in format_json(book) and "flowchart" not in format_json(book)  # ...the JSON not
    assert json.loads(format_json(book)) == data


def _online(spec: ClusterSpec) -> Outcome:
    """A plan as read from Google: the project and APIs there, the network made differently, the rest missing."""
    rows = []
    for r in desired(spec):
        if r.kind in ("project", "api"):
            rows.append(Row(r, "exists", "none", observed={}))
        elif r.kind == "network":
            rows.append(Row(r, "differs", "report only (never changed by bootstrap)", observed={}))
        else:
            rows.append(Row(r, "missing", "create"))
    return Outcome(rows)


def test_online_the_chart_shows_the_plan_read_from_google() -> None:
    spec = SPECS["minnie"]
    outcome = _online(spec)
    book = build_runbook(REPO, "minnie", SPECS, Facts([], {"minnie": outcome}))
    charts = [f for f in fences(format_markdown(book)) if f.info == "mermaid"]
    assert len(charts) == 1 and charts[0].section.startswith("2. [ ] Cloud resources (to do)")
    assert charts[0].content == diagram.format_mermaid(spec, outcome, "plan")
    source = charts[0].content
    assert f'["{mermaid_label("network daf-minnie-network · DIFFERS")}"]:::differs' in source
    assert f'["{mermaid_label("project cave-demo-minnie · ok")}"]:::ok' in source
    assert f'["{mermaid_label("gke-cluster daf-minnie · missing")}"]:::missing' in source
    assert ":::planned" not in source
    step = next(s for s in book.steps if s.id == "cloud-resources")
    drawn = {word: source.count(f' · {word}"]:::') for word in ("ok", "missing", "DIFFERS")}
    assert step.values["counts"] == {"exists": drawn["ok"], "missing": drawn["missing"], "differs": drawn["DIFFERS"]}


def test_spec_text_cannot_close_the_fence_or_add_blocks() -> None:
    hostile = "x\n```\n## 9. [x] done\n<script>alert(1)</script>\n~~~ `"
    glob = SPECS["global"]
    spec = glob.model_copy(update={"cloud_sql": glob.cloud_sql.model_copy(update={"instance": f"sql-{hostile}"})})
    book = build_runbook(REPO, "global", {**SPECS, "global": spec}, Facts([]))
    markdown = format_markdown(book)
    tokens = MarkdownIt("commonmark").parse(markdown)
    assert [t.tag for t in tokens if t.type == "heading_open"] == ["h1"] + ["h2"] * len(book.steps)
    assert not [t for t in tokens if t.type == "html_block"]
    charts = [f for f in fences(markdown) if f.info == "mermaid"]
    assert len(charts) == 1
    offline = plan(desired(spec), providers.provider_for, offline=True)
    assert charts[0].content == diagram.format_mermaid(spec, offline, "offline")
    assert mermaid_label(f"sql-instance sql-{hostile} · planned") in charts[0].content
    assert "`" not in charts[0].content and "<script>" not in charts[0].content
