"""The pull request body quotes what upstream wrote (release tags, requirement lines, file pages): each shows as
written and cannot end its table cell, link or code span early, or start a block of its own."""

from __future__ import annotations

from markdown_it import MarkdownIt
from packaging.specifiers import SpecifierSet

from compiler.bot.plan import Bump, BumpSet, body
from compiler.bot.upstream import UPSTREAMS, Pin, Release
from compiler.spec import semver

HOSTILE_TAG = "v4.15.0|x](https://evil.example)`\n```sh\nrm -rf /\n<!-- hidden"


def _body() -> str:
    version = semver.parse("4.15.0")
    assert version is not None
    release = Release(version, HOSTILE_TAG, "https://github.com/o/r/releases/tag/v4.15.0 (x)", False)
    pin = Pin("emannotationschemas>=5`|", SpecifierSet(">=5"), "requirements.txt", "https://github.com/o/r/blob/x/requirements.txt")
    bump = Bump("minnie", "annotationengine", "4.14.1", "4.15.0", release, ("img:v4.15.0",), pin)
    return body(BumpSet([bump]), UPSTREAMS, None, "0" * 40)


def test_a_hostile_release_tag_stays_in_its_cell_and_link() -> None:
    text = _body()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    assert not [t for t in tokens if t.type == "fence"], "no value opens a fenced block"
    html = [t.content for t in tokens if t.type == "html_block"]
    assert len(html) == 1 and html[0].startswith("<!-- cave-bot:set "), html  # the bot's marker, nothing else
    rows = [line for line in text.splitlines() if line.startswith("| minnie ")]
    assert len(rows) == 1 and rows[0].count(" | ") == 4, rows  # five cells: the tag's `|` is escaped
    links = [c for t in tokens if t.type == "inline" for c in (t.children or []) if c.type == "link_open"]
    hrefs = [str(c.attrs["href"]) for c in links]
    assert "https://evil.example" not in hrefs
    assert "https://github.com/o/r/releases/tag/v4.15.0%20%28x%29" in hrefs
    assert "rm -rf /" in text and "\n```sh" not in text  # shown, on the row's line, not as a block
