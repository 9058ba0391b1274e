"""compiler/mermaid.py and escape.mermaid_label through the real Mermaid renderer (mmdc driving chromium,
tests/support/mermaid.py): a label is any string, and the rendered diagram shows exactly its characters (a line
break shown as `\\n`) in exactly the nodes, subgraphs and edges the chart has: nothing ends a label, opens a
comment or directive, adds HTML, math, a node or an edge, or closes the Markdown fence. The charts of the module
render in one batch (one browser start; one more per diagram Mermaid refuses).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from compiler.escape import mermaid_label
from compiler.mermaid import (
    MAX_EDGES,
    MAX_LABEL,
    MAX_NODES,
    MAX_SOURCE,
    Edge,
    Flowchart,
    Group,
    Node,
    Shape,
    TooLarge,
    fenced,
    render,
    shorten,
    source_length,
)
from tests.support import mermaid
from tests.support.mermaid import TOO_BIG, MermaidError, Rendered, Renderer, mermaid_blocks, shown

# (label, what the rendered diagram must show)
HOSTILE: list[tuple[str, str]] = [
    ('"', '"'),
    ('"]', '"]'),
    ('"]; n_evil["injected', '"]; n_evil["injected'),
    ('x"] --> n_evil["y', 'x"] --> n_evil["y'),
    ('%%{init: {"theme": "dark", "securityLevel": "loose"}}%%',
     '%%{init: {"theme": "dark", "securityLevel": "loose"}}%%'),
    ("%% a comment", "%% a comment"),
    ("```", "```"),
    ("````mermaid", "````mermaid"),
    ("`code`", "`code`"),
    ('"`**markdown string**`"', '"`**markdown string**`"'),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
    ("<b>bold</b><br>next", "<b>bold</b><br>next"),
    ("<!-- hidden -->", "<!-- hidden -->"),
    ("]]>", "]]>"),
    ("#", "#"),
    ("#35;", "#35;"),
    ("#quot;", "#quot;"),
    ("&amp; &lt; &#35; &", "&amp; &lt; &#35; &"),
    ("|", "|"),
    ("a|b|c", "a|b|c"),
    (";", ";"),
    ("end", "end"),
    ("subgraph x", "subgraph x"),
    ("style n_k0 fill:#f00", "style n_k0 fill:#f00"),
    ("classDef evil fill:#f00", "classDef evil fill:#f00"),
    ("click n_k0 call alert()", "click n_k0 call alert()"),
    ("a:::cls", "a:::cls"),
    ("-->", "-->"),
    ("x -.-> y ==> z", "x -.-> y ==> z"),
    ("line1\nline2", "line1\\nline2"),
    ("a\r\nb\tc\x00d\x1b[31m", "a\\r\\nb\\tc\\x00d\\x1b[31m"),
    ("a\u2028b\x85c", "a\\u2028b\\x85c"),
    ("\\", "\\"),
    ("\\n (typed)", "\\n (typed)"),
    ("Zürich 東京 🚀 𝕏 e\u0301", "Zürich 東京 🚀 𝕏 e\u0301"),
    ("\u202eevil", "\u202eevil"),
    ("zero\u200bwidth", "zero\u200bwidth"),
    ("*b* _i_ ~~s~~ **bold**", "*b* _i_ ~~s~~ **bold**"),
    ("[link](https://example.org) javascript:alert(1)", "[link](https://example.org) javascript:alert(1)"),
    ("fa:fa-car", "fa:fa-car"),
    ("{} () [] [[x]] ((x)) >x] [/x/] {{x}}", "{} () [] [[x]] ((x)) >x] [/x/] {{x}}"),
    ("1. list", "1. list"),
    ("# heading", "# heading"),
    ("kind/name:v1.2.3", "kind/name:v1.2.3"),
]
# Labels Mermaid itself rewrites unless escaped: KaTeX math between `$$`, and whitespace at a label's edges (trimmed;
# an empty label is a syntax error).
MATH: list[tuple[str, str]] = [("$$x^2$$", "$$x^2$$"), ("a$$b$$c", "a$$b$$c"), ("$5 and $6", "$5 and $6")]
BLANK: list[tuple[str, str]] = [("", ""), ("   ", "   "), ("  two  spaces ", "  two  spaces "),
                                ("\ufeffbom", "\ufeffbom"), ("\u00a0nbsp\u00a0", "\u00a0nbsp\u00a0")]
SHAPES: tuple[Shape, ...] = ("box", "round", "stadium", "note")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def visible(text: str) -> str:
    """What a label shows: the text, each control character and line break as its escape (`\\n`)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def chart_of(labels: list[tuple[str, str]]) -> tuple[Flowchart, dict[str, list[str]]]:
    """A chart whose node labels, edge labels and subgraph titles are all the hostile labels (keys hostile too),
    every shape used, plus what its rendering must show."""
    texts = [label for label, _ in labels]
    shows = [show for _, show in labels]
    nodes = [Node(key=f"{label}\x00{i}", label=label, shape=SHAPES[i % len(SHAPES)],
                  style="hot" if i % 5 == 0 else None) for i, label in enumerate(texts)]
    inner = Group("inner" + texts[-1], texts[-1], nodes=nodes[-3:], direction="LR")
    outer = Group(texts[0] + "outer", texts[0], nodes=nodes[-6:-3], groups=[inner])
    edges = [Edge(nodes[i].key, nodes[i + 1].key, label=texts[(i + 7) % len(texts)], dotted=i % 2 == 1)
             for i in range(len(nodes) - 1)]
    chart = Flowchart(direction="LR", nodes=nodes[:-6], groups=[outer], edges=edges, styles={"hot": "fill:#fdd"})
    expected = {"nodes": shows, "groups": [shows[0], shows[-1]],
                "edge_labels": [shows[(i + 7) % len(shows)] for i in range(len(nodes) - 1)]}
    return chart, expected


def random_labels(seed: int, count: int) -> list[tuple[str, str]]:
    """`count` random labels over an alphabet of Mermaid, Markdown and HTML syntax, controls and unicode."""
    rng = random.Random(seed)
    alphabet = [*'"#;|`%<>&[](){}\\/:*_~$-.=!?@^\'', "-->", "%%", "end", "#35;", "&amp;", "\n", "\t", " ", "é", "東",
                "🚀", "\u200b", "\x85", *"abcXYZ019"]
    labels = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(count)}
    return [(label, visible(label)) for label in sorted(labels)]


def assert_shows(svg: Path, expected: dict[str, list[str]], edges: int) -> None:
    """The SVG shows exactly the expected labels, each as many times: no more, no fewer, none altered."""
    seen = shown(svg)
    for part, got in (("nodes", seen.nodes), ("groups", seen.groups), ("edge_labels", seen.edge_labels)):
        want = Counter(expected[part])
        shown_ = Counter(got)
        assert shown_ == want, (f"{part}: expected but not shown {sorted((want - shown_).elements())!r}; "
                                f"shown but not expected {sorted((shown_ - want).elements())!r}")
    assert seen.edges == edges
    assert mermaid.active_content(svg) == []


HOSTILE_CHART, HOSTILE_EXPECTED = chart_of(HOSTILE)
MATH_CHART, MATH_EXPECTED = chart_of([*MATH, *HOSTILE[:6]])
BLANK_CHART, BLANK_EXPECTED = chart_of([*BLANK, *HOSTILE[:6]])
RANDOM_CHART, RANDOM_EXPECTED = chart_of(random_labels(19, 150))
# keys that map to the same Mermaid id characters, and keys longer than an id keeps
ID_KEYS = ["a-b", "a_b", "a b", "a_b_2", "n_a_b", "x" * 100, "x" * 100 + "y", "end", "subgraph", "graph"]
ID_CHART = Flowchart(nodes=[Node(key, f"key {key}") for key in ID_KEYS],
                     edges=[Edge(a, b) for a, b in itertools.pairwise(ID_KEYS)])
# the most render() lets through by count, with labels like a resource diff's
LARGEST_CHART = Flowchart(nodes=[Node(f"Deployment/svc-{i}", f"Deployment/annotationengine-{i} (v5.{i}.0)")
                                 for i in range(MAX_NODES)],
                          edges=[Edge(f"Deployment/svc-{i % MAX_NODES}", f"Deployment/svc-{(i * 7 + 1) % MAX_NODES}")
                                 for i in range(MAX_EDGES)])
# as many nodes, each with a long label needing escapes: render() must refuse it or Mermaid must draw it
LONGEST_CHART = Flowchart(nodes=[Node(f"k{i}", f'ConfigMap/"{i}"-' + "<&>|#" * 40) for i in range(MAX_NODES)])
# labels far over MAX_LABEL (a hand-edited 60,000-character value), every character one Mermaid would read as syntax
HUGE = ('x"] --> evil["<b>%%#35;`' * 3000)[:60_000]
HUGE_CHART = Flowchart(nodes=[Node("a", HUGE), Node("b", "b")], groups=[Group("g", HUGE, nodes=[Node("c", "c")])],
                       edges=[Edge("a", "b", HUGE)])
# 250 labels of 150 rockets: about 40,000 characters, but 78,000 UTF-16 code units, the length Mermaid measures
ROCKETS = 150 * "\U0001f680"
ROCKETS_CHART = Flowchart(nodes=[Node(f"r{i}", ROCKETS) for i in range(250)])
ROCKETS_SOURCE = "flowchart TD\n" + "".join(f'  n{i}["{ROCKETS}"]\n' for i in range(250))  # unchecked, by hand


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return mermaid.require()


@pytest.fixture(scope="module")
def batch(renderer: Renderer, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """Every chart of this module rendered in one mmdc run; the hostile chart as the ```mermaid block of a Markdown
    document (how pull-request comments and job summaries carry it)."""
    document = f"Before the diagram.\n\n{fenced(HOSTILE_CHART)}\n\nAfter *it*.\n"
    diagrams = {"hostile": mermaid_blocks(document)[0], "math": render(MATH_CHART), "blank": render(BLANK_CHART),
                "random": render(RANDOM_CHART), "ids": render(ID_CHART), "largest": render(LARGEST_CHART),
                "huge": render(HUGE_CHART), "rockets": ROCKETS_SOURCE}
    with contextlib.suppress(TooLarge):
        diagrams["longest"] = render(LONGEST_CHART)
    return renderer.render_all(diagrams, tmp_path_factory.mktemp("mermaid"))


# --------------------------------------------------------------------------- the harness can fail


def test_a_broken_source_fails_with_mmdc_message(renderer: Renderer, tmp_path: Path) -> None:
    fine = 'flowchart TD\n  a["global"] --> b["minnie"]\n'
    broken = 'flowchart TD\n  a["unclosed] --> b\n'
    too_big = "flowchart TD\n" + "".join(f'  n{i}["{"x" * 200}"]\n' for i in range(300))  # over 50,000 chars
    after = 'flowchart LR\n  c["fanc"]\n'
    result = renderer.render_all({"fine": fine, "broken": broken, "too big": too_big, "after": after, "again": fine},
                                 tmp_path)
    assert sorted(result.svgs) == ["after", "again", "fine"]
    assert result.svg("again") == result.svg("fine")  # one source, rendered once
    assert list(result.errors) == ["broken", "too big"]
    assert "Parse error" in result.errors["broken"] and "mmdc exited 1" in result.errors["broken"]
    assert 'a["unclosed] --> b' in result.errors["broken"]  # the source, to find it
    assert TOO_BIG in result.errors["too big"]
    # mmdc stops at "broken": after the batch, one run to it one at a time and one run for those after it
    assert result.runs == (3 if mermaid.JOBS > 1 else 2)
    assert shown(result.svg("fine")).nodes == ["global", "minnie"] and shown(result.svg("after")).nodes == ["fanc"]
    with pytest.raises(MermaidError, match=r"(?s)2 of 5 diagrams did not render.*'broken'.*Parse error"):
        result.check()
    with pytest.raises(MermaidError, match="'broken'"):
        renderer.render({"broken": broken}, tmp_path)


def test_markdown_blocks_are_read_like_commonmark() -> None:
    document = ("x\n\n````mermaid\nflowchart TD\n  a\n````\n\n```sh\nls\n```\n\n"
                "  ```mermaid\n  flowchart LR\n  b\n  ```\n")
    assert mermaid_blocks(document) == ["flowchart TD\n  a\n", "flowchart LR\nb\n"]


def test_unavailable_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(mermaid, "MMDC", tmp_path / "mmdc")
    reason = mermaid.unavailable()
    assert reason is not None and "bash .ci/setup" in reason and "npm ci" in reason


# --------------------------------------------------------------------------- escaping round-trips


def test_fence_holds_the_chart_verbatim() -> None:
    source = render(HOSTILE_CHART)
    document = f"Before.\n\n{fenced(HOSTILE_CHART)}\n\nAfter.\n"
    tokens = [t for t in MarkdownIt("commonmark").parse(document) if t.level == 0]
    assert [t.type for t in tokens] == ["paragraph_open", "paragraph_close", "fence", "paragraph_open",
                                        "paragraph_close"]
    assert tokens[2].info == "mermaid" and tokens[2].content == source
    assert "`" not in source  # a label's backticks are entity codes: the fence is the plain ``` GitHub expects
    assert fenced(HOSTILE_CHART).startswith("```mermaid\n")


def test_hostile_labels_show_exactly_their_characters(batch: Rendered) -> None:
    assert_shows(batch.svg("hostile"), HOSTILE_EXPECTED, edges=len(HOSTILE_CHART.edges))


def test_random_labels_show_exactly_their_characters(batch: Rendered) -> None:
    assert_shows(batch.svg("random"), RANDOM_EXPECTED, edges=len(RANDOM_CHART.edges))


def test_dollar_signs_are_not_math(batch: Rendered) -> None:
    svg = batch.svg("math")
    assert_shows(svg, MATH_EXPECTED, edges=len(MATH_CHART.edges))
    assert "katex-html" not in svg.read_text()


def test_blank_and_edge_whitespace_labels_are_kept(batch: Rendered) -> None:
    assert_shows(batch.svg("blank"), BLANK_EXPECTED, edges=len(BLANK_CHART.edges))


def test_keys_with_the_same_id_characters_stay_distinct_nodes(batch: Rendered) -> None:
    seen = shown(batch.svg("ids"))
    assert sorted(seen.nodes) == sorted(f"key {key}" for key in ID_KEYS)
    assert seen.edges == len(ID_KEYS) - 1


# --------------------------------------------------------------------------- limits


def test_the_largest_chart_render_allows_draws(batch: Rendered) -> None:
    seen = shown(batch.svg("largest"))
    assert len(seen.nodes) == MAX_NODES and seen.edges == MAX_EDGES
    assert "Deployment/annotationengine-299 (v5.299.0)" in seen.nodes


def test_render_refuses_a_source_mermaid_would_not_draw(batch: Rendered) -> None:
    """Mermaid draws a source over 50,000 characters as a "Maximum text size" box: render() must raise TooLarge
    for such a chart (callers then cut it), or the renderer must draw it."""
    if "longest" not in batch.svgs and "longest" not in batch.errors:
        with pytest.raises(TooLarge):
            render(LONGEST_CHART)
        return
    seen = shown(batch.svg("longest"))
    assert len(seen.nodes) == MAX_NODES


def test_too_many_nodes_refused_nested_groups_counted() -> None:
    group = Group("g", "g", nodes=[Node(f"g{i}", "x") for i in range(10)],
                  groups=[Group("h", "h", nodes=[Node(f"h{i}", "x") for i in range(10)])])
    chart = Flowchart(nodes=[Node(f"n{i}", "x") for i in range(MAX_NODES - 19)], groups=[group])
    with pytest.raises(TooLarge, match=f"{MAX_NODES + 1} nodes"):
        render(chart)
    group.groups[0].nodes.pop()
    assert render(chart).count('["x"]') == MAX_NODES


def test_too_many_edges_refused() -> None:
    chart = Flowchart(nodes=[Node("a", "a"), Node("b", "b")], edges=[Edge("a", "b")] * (MAX_EDGES + 1))
    with pytest.raises(TooLarge, match=f"{MAX_EDGES + 1} edges"):
        render(chart)
    chart.edges.pop()
    assert render(chart).count("-->") == MAX_EDGES


@pytest.mark.parametrize("edge", [Edge("a", "ghost"), Edge("ghost", "a"), Edge("a", "A")])
def test_edges_to_unknown_keys_refused(edge: Edge) -> None:
    chart = Flowchart(nodes=[Node("a", "a")], groups=[Group("g", "g", nodes=[Node("b", "b")])], edges=[edge])
    unknown = edge.target if edge.source == "a" else edge.source
    with pytest.raises(ValueError, match=f"{unknown!r} is not a node of the chart"):
        render(chart)
    assert "-->" in render(Flowchart(nodes=chart.nodes, groups=chart.groups, edges=[Edge("a", "b")]))


def test_repeated_keys_and_unknown_styles_refused() -> None:
    with pytest.raises(ValueError, match="node keys repeat: \\['a'\\]"):
        render(Flowchart(nodes=[Node("a", "1")], groups=[Group("g", "g", nodes=[Node("a", "2")])]))
    with pytest.raises(ValueError, match="style 'hot', which the chart does not define"):
        render(Flowchart(nodes=[Node("a", "1", style="hot")]))


# --------------------------------------------------------------------------- long labels, UTF-16


def test_a_long_label_is_cut_before_it_is_escaped() -> None:
    assert shorten("x" * MAX_LABEL) == "x" * MAX_LABEL
    assert shorten("x" * (MAX_LABEL + 1)) == "x" * (MAX_LABEL - 1) + "…"
    source = render(HUGE_CHART)
    cut = mermaid_label(HUGE[:MAX_LABEL - 1] + "…")
    # the node, the group and the edge each carry the first MAX_LABEL - 1 characters as whole entities, then "…"
    assert source.count(f'"{cut}"') == 3, source[:1000]
    assert len(source) < 3 * len(cut) + 500
    assert not re.search(r"#(?!\d+;)", source)  # every '#' starts a whole entity code: none was split


def test_huge_labels_show_their_first_characters(batch: Rendered) -> None:
    seen = shown(batch.svg("huge"))
    cut = HUGE[:MAX_LABEL - 1] + "…"
    assert sorted(seen.nodes) == sorted([cut, "b", "c"]) and seen.groups == [cut] and seen.edge_labels == [cut]


def test_the_source_is_measured_in_utf16_code_units(batch: Rendered) -> None:
    units = len(ROCKETS_SOURCE.encode("utf-16-le")) // 2
    assert len(ROCKETS_SOURCE) < MAX_SOURCE < units == source_length(ROCKETS_SOURCE)
    with pytest.raises(TooLarge, match=f"{source_length(render_unchecked(ROCKETS_CHART))} UTF-16 code units"):
        render(ROCKETS_CHART)
    # Mermaid measures the same way: this source of fewer than 50,000 characters is over its limit
    assert "rockets" in batch.errors and TOO_BIG in batch.errors["rockets"]
    fewer = Flowchart(nodes=ROCKETS_CHART.nodes[:150])
    assert source_length(render(fewer)) <= MAX_SOURCE


def render_unchecked(chart: Flowchart) -> str:
    """render() with the size limit lifted: the source a chart over it would have."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("compiler.mermaid.MAX_SOURCE", 10**9)
        return render(chart)


def test_repeated_group_keys_refused() -> None:
    def chart(inner_key: str) -> Flowchart:
        inner = Group(inner_key, "inner", nodes=[Node("b", "b")])
        return Flowchart(groups=[Group("g", "outer", nodes=[Node("a", "a")], groups=[inner])])

    with pytest.raises(ValueError, match="group keys repeat: \\['g'\\]"):
        render(chart("g"))
    assert render(chart("h")).count("subgraph") == 2
