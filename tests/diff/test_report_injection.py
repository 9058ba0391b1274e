"""Issue 17: what a diff comment quotes (rendered values, cluster names, warnings, the base ref) stays text. The
comment parsed with a CommonMark parser has only the report's own HTML (<details>, <summary>, <b>) and one
```diff block per changed cluster holding every changed value, whatever the values hold."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from compiler.diff.model import Change, ClusterDiff, DiffResult, ObjectDiff
from compiler.diff.report import format_markdown

META = ["\n", "```", "````diff", "~~~", "`", "<!--", "-->", "</details>", "<details>", "<b>", "|", "# ", "> ",
        "- ", "[x](y)", "\\", "\u2028", " "]
hostile = st.lists(st.one_of(st.sampled_from(META), st.text(min_size=1, max_size=3)), min_size=1, max_size=8
                   ).map("".join)
OWN_HTML = {"<details>", "<summary>", "</summary>", "<b>", "</b>", "</details>"}


def result(text: str) -> DiffResult:
    change = Change("data.config.cfg", "changed", old=f"SLACK_CHANNEL = a\n{text}\n", new=f"x {text}")
    obj = ObjectDiff("minnie", ("v1", "ConfigMap", "default", "cavecanary-config"), "cavecanary", "changed",
                     changes=[change, Change("data.x", "added", new=text)], notes=[text])
    cluster = ClusterDiff("minnie", "changed", True, objects=[obj])
    return DiffResult(base_ref=f"origin/{text}", base_commit="0123456789abcdef", clusters=[cluster],
                      warnings=[text])


@settings(max_examples=30, deadline=None, database=None)
@given(text=hostile)
@example(text="[x](y) <!-- hidden")
@example(text="a\n</details>\n\n# b\n````")
def test_diff_comment_keeps_its_structure(text: str) -> None:
    md = format_markdown(result(text))
    tokens = MarkdownIt("commonmark").parse(md)
    html = [t.content.strip() for t in tokens if t.type == "html_block"]
    html += [c.content for t in tokens if t.type == "inline" for c in (t.children or []) if c.type == "html_inline"]
    tags = {tag for block in html for tag in re.findall(r"<[^>]*>", block)}
    assert tags <= OWN_HTML, tags
    fences = [t for t in tokens if t.type == "fence"]
    assert [f.info for f in fences] == ["diff"]
    body = fences[0].content
    for line in text.replace("\x00", "\ufffd").splitlines() or [text]:  # (CommonMark shows NUL as U+FFFD)
        assert line in body
    assert [t.tag for t in tokens if t.type == "heading_open"] == ["h3"]
    assert [c for t in tokens if t.type == "inline" for c in (t.children or []) if c.type == "link_open"] == []
