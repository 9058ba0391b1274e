"""The bootstrap plan as a Mermaid flowchart (`bootstrap --format mermaid`, and the runbook's cloud-resources step).

Drawn from the same `Outcome` rows as the text and JSON reports, in their order: one node per row, marked by its
status twice, as a colour (a `classDef`, Okabe-Ito hues, colour-blind safe) and as the text report's word in the
label (ok, missing, DIFFERS, OPERATOR, planned, ERROR), so the chart reads in grey and in its source too. A
legend names the statuses the chart uses.

An arrow `A --> B` means B depends on A: A is created first (`Resource.depends`, the order the text lists them
in). Every resource also depends on the Google API it is created through; those arrows are drawn only into
resources with no other prerequisite (the network, secrets, service accounts, buckets...), since everything
else comes after one of those: a hundred arrows out of a dozen APIs would hide the rest.

Nodes are grouped by what they are: the project and its Google APIs (one box per project), network, GKE
cluster, secrets, databases and storage, Pub/Sub, DNS, service accounts and IAM. A plan too large for Mermaid
(mermaid.MAX_NODES, MAX_EDGES, MAX_SOURCE characters) is cut at the end of the plan order, which keeps every
drawn resource's prerequisites, and a note says how many were left out.

Labels are plain text built here; mermaid.py writes them, escaped (escape.mermaid_label), so no spec value can
end a label, add a node or a comment, or close the Markdown fence the chart sits in.
"""

from __future__ import annotations

from collections.abc import Sequence

from compiler import mermaid
from compiler.bootstrap.engine import Outcome, Row
from compiler.bootstrap.model import Resource, Status
from compiler.bootstrap.report import MARK
from compiler.mermaid import Edge, Flowchart, Group, Node
from compiler.spec.model import ClusterSpec

# Status → class of the chart; the label carries report.MARK's word for it.
CLASS: dict[Status, str] = {"exists": "ok", "missing": "missing", "differs": "differs",
                            "needs-operator": "operator", "offline": "planned", "error": "error"}
# Okabe-Ito colours as light fills with a strong border; missing and planned are dashed, differs and error thick,
# so the states also differ in shape of border.
STYLES: dict[str, str] = {
    "ok": "fill:#d4efe5,stroke:#009E73,color:#000",
    "missing": "fill:#fbf5c8,stroke:#9a8c00,stroke-dasharray:5 3,color:#000",
    "differs": "fill:#f8dccb,stroke:#D55E00,stroke-width:3px,color:#000",
    "operator": "fill:#d7ebf7,stroke:#0072B2,stroke-width:2px,color:#000",
    "planned": "fill:#eeeeee,stroke:#777777,stroke-dasharray:5 3,color:#000",
    "error": "fill:#f4dbe9,stroke:#CC79A7,stroke-width:3px,color:#000",
    "remark": "fill:#ffffff,stroke:#999999,color:#333",
}
MEANING: dict[Status, str] = {
    "exists": "exists as the spec says", "missing": "bootstrap --apply creates it",
    "differs": "differs from the spec (reported, never changed)", "needs-operator": "a person must act",
    "offline": "not looked up (--offline)", "error": "the look-up or creation failed",
}
ORDER: tuple[Status, ...] = ("exists", "missing", "differs", "needs-operator", "offline", "error")

# Group key, title, kinds; in the order of creation, roughly. A kind not named here goes to "other".
GROUPS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("apis", "Project and Google APIs", frozenset({"project", "api"})),
    ("network", "Network", frozenset({"network", "subnet", "address"})),
    ("cluster", "GKE cluster", frozenset({"gke-cluster", "node-pool"})),
    ("secrets", "Secret Manager", frozenset({"secret"})),
    ("data", "Databases and storage", frozenset({"sql-instance", "sql-database", "sql-user", "redis",
                                                 "bigtable-instance", "bucket", "datastore-database"})),
    ("pubsub", "Pub/Sub", frozenset({"pubsub-topic", "pubsub-subscription"})),
    ("dns", "DNS", frozenset({"dns-zone", "dns-record"})),
    ("identity", "Service accounts and IAM", frozenset({"service-account", "project-iam-binding",
                                                        "bucket-iam-binding", "sa-iam-binding"})),
)
BASE_KINDS = frozenset({"api", "project"})  # prerequisites of nearly everything: see the module docstring
ARROWS = ("an arrow goes from a resource to one created after it, which needs it; a Google API's arrows go only "
          "to resources needing nothing else (all need their API)")  # within mermaid.MAX_LABEL
TITLE = {"plan": "bootstrap plan", "offline": "bootstrap plan (offline)", "apply": "bootstrap apply"}


def _member(member: str) -> str:
    """An IAM member, short: a service account's id, a Kubernetes ServiceAccount's namespace/name."""
    kind, _, who = member.partition(":")
    if kind == "serviceAccount" and ".svc.id.goog[" in who:
        return who.partition("[")[2].rstrip("]")
    if kind == "serviceAccount":
        return who.partition("@")[0]
    return member


def describe(resource: Resource, project: str) -> str:
    """The label of a resource without its status: kind and name, IAM bindings as role and member."""
    r = resource
    if r.kind == "api":
        text = r.name.partition(":")[2] or r.name  # its project's box names the project
    elif r.kind.endswith("iam-binding") and r.name.count(":") >= 2:
        target, role, member = r.name.split(":", 2)
        if r.kind == "sa-iam-binding" and role == "roles/iam.workloadIdentityUser":
            text = f"Workload Identity: {_member(member)} as {_member('serviceAccount:' + target)}"
        elif r.kind == "bucket-iam-binding":
            text = f"{role} on bucket {target} to {_member(member)}"
        else:
            text = f"{role} to {_member(member)}"
    else:
        text = f"{r.kind} {r.name}"
    if r.project != project and r.kind not in BASE_KINDS:
        text += f" in {r.project}"
    if r.owner:
        text += f", created by {r.owner}"
    return text


def label(row: Row, project: str) -> str:
    """A node's label: what the resource is, then the text report's word for its status."""
    return f"{describe(row.resource, project)} · {MARK[row.status]}"


def _edges(rows: Sequence[Row]) -> list[Edge]:
    """Dependency → dependent, for the drawn rows (see the module docstring on the Google APIs' arrows)."""
    kinds = {row.resource.key: row.resource.kind for row in rows}
    out: list[Edge] = []
    for row in rows:
        deps = [d for d in dict.fromkeys(row.resource.depends) if d in kinds]
        first_level = all(kinds[d] in BASE_KINDS for d in deps)
        out += [Edge(d, row.resource.key) for d in deps if first_level or kinds[d] != "api"]
    return out


def _groups(rows: Sequence[Row], project: str) -> list[Group]:
    by_group: dict[str, list[Row]] = {}
    titles = {key: title for key, title, _ in GROUPS}
    for row in rows:
        key = next((k for k, _, kinds in GROUPS if row.resource.kind in kinds), "other")
        by_group.setdefault(key, []).append(row)
    out: list[Group] = []
    for key in [*titles, "other"]:
        if key not in by_group:
            continue
        group = Group(f"group:{key}", titles.get(key, "Other"))
        nodes = [Node(row.resource.key, label(row, project), CLASS[row.status]) for row in by_group[key]]
        if key == "apis":  # one box per project: the APIs are enabled in each project bootstrap plans
            projects = list(dict.fromkeys(row.resource.project for row in by_group[key]))
            for p in projects:
                group.groups.append(Group(f"group:apis:{p}", f"project {p}", [
                    n for n, row in zip(nodes, by_group[key], strict=True) if row.resource.project == p]))
        else:
            group.nodes = nodes
        out.append(group)
    return out


def _legend(spec: ClusterSpec, outcome: Outcome, mode: str, drawn: int) -> Group:
    counts = outcome.counts()
    summary = ", ".join(f"{counts[s]} {MARK[s]}" for s in ORDER if s in counts)
    legend = Group("group:legend", f"{TITLE.get(mode, mode)} for {spec.name} (project {spec.gcp.project}): "
                                   f"{len(outcome.rows)} resources" + (f", {summary}" if summary else ""))
    legend.nodes = [Node(f"~legend:{s}", f"{MARK[s]}: {MEANING[s]}", CLASS[s], "stadium")
                    for s in ORDER if s in counts]
    legend.nodes.append(Node("~note:arrows", ARROWS, "remark", "note"))
    left = len(outcome.rows) - drawn
    if left:
        noun = "resource" if left == 1 else "resources"
        legend.nodes.append(Node("~note:cut", f"{left} more {noun} not drawn (too many for one diagram): "
                                              f"python -m compiler bootstrap {spec.name} lists all {len(outcome.rows)}",
                                 "remark", "note"))
    if outcome.failed:
        legend.nodes.append(Node("~note:remaining", f"stopped at {outcome.failed}: {len(outcome.remaining)} "
                                                    "not attempted", "remark", "note"))
    return legend


def _build(spec: ClusterSpec, outcome: Outcome, mode: str, drawn: int) -> Flowchart:
    rows = outcome.rows[:drawn]
    present = {CLASS[row.status] for row in outcome.rows} | {"remark"}
    return Flowchart("LR", groups=[*_groups(rows, spec.gcp.project), _legend(spec, outcome, mode, drawn)],
                     edges=_edges(rows), styles={k: v for k, v in STYLES.items() if k in present})


def chart(spec: ClusterSpec, outcome: Outcome, mode: str) -> Flowchart:
    """The plan's chart, cut at the end of the plan order when Mermaid could not draw it whole."""
    drawn = len(outcome.rows)
    while True:
        flow = _build(spec, outcome, mode, drawn)
        try:
            mermaid.render(flow)  # TooLarge past any of Mermaid's limits, the source's length included
            return flow
        except mermaid.TooLarge:
            pass
        if drawn == 0:  # the legend alone is a few lines: never here
            raise mermaid.TooLarge(f"the legend of {spec.name}'s plan does not fit")
        drawn -= max(1, drawn // 10)


def format_mermaid(spec: ClusterSpec, outcome: Outcome, mode: str) -> str:
    """`bootstrap --format mermaid`: the chart's Mermaid source (a .mmd file; the runbook fences it)."""
    return mermaid.render(chart(spec, outcome, mode))
