"""The real Mermaid renderer for tests: `mmdc` (@mermaid-js/mermaid-cli, pinned in .ci/mermaid/package-lock.json and
installed by .ci/setup) driving the system chromium (Debian's `chromium`, which .ci/setup installs with apt).

Many diagrams are rendered in ONE mmdc run (one browser start): the sources are written as ```mermaid blocks of
one Markdown file, which mmdc renders, a page per block, to `diagram-N.svg`. A source Mermaid cannot parse makes
mmdc stop and exit non-zero; the batch is then rendered again one diagram at a time, in order, so that the first
diagram without an SVG is the one mmdc's message is about, and the diagrams after it get a run of their own:
`Renderer.render_all` gives each diagram's SVG or error, `Renderer.render` raises `MermaidError` naming each
failed diagram with mmdc's message and its source. Mermaid draws a source over its size limit (50,000 characters)
as a "Maximum text size in diagram exceeded" box instead of failing: that picture counts as an error too.

`require()` gives a `Renderer`, or skips the test with the reason (shown by `pytest -rs`) when mmdc or chromium
is not installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from tests.support import REPO

MERMAID_DIR = REPO / ".ci" / "mermaid"
MMDC = MERMAID_DIR / "node_modules" / ".bin" / "mmdc"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
# root, closed network: no sandbox (it needs user namespaces), no GPU, nothing that phones home
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Each diagram costs mmdc about a second (a fresh page loading Mermaid); pages in parallel, one per core
JOBS = max(1, min(4, os.cpu_count() or 1))
TIMEOUT = 300  # seconds for one mmdc run (a browser start plus every diagram of the batch)
TOO_BIG = "Maximum text size in diagram exceeded"  # what Mermaid draws instead of a source over maxTextSize
_SVG = "{http://www.w3.org/2000/svg}"
_XHTML = "{http://www.w3.org/1999/xhtml}"


class MermaidError(AssertionError):
    """mmdc refused a diagram (a syntax error) or drew Mermaid's error picture instead of it."""


def chromium() -> str | None:
    """The chromium to drive: $CHROMIUM, else the first of CHROMIUM_CANDIDATES, else `chromium` on PATH."""
    for candidate in (os.environ.get("CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def unavailable() -> str | None:
    """Why the real renderer cannot run here (a sentence saying what to install), or None when it can."""
    if shutil.which("node") is None:
        return "no Mermaid renderer: `node` is not on PATH (install Node.js >= 20, then run bash .ci/setup)"
    if not MMDC.is_file():
        return (f"no Mermaid renderer: {MMDC} is missing (bash .ci/setup runs `npm ci` in .ci/mermaid; "
                "it needs npm and the npm registry)")
    stamp = MERMAID_DIR / "node_modules" / ".installed-lock.sha256"  # written by .ci/setup after `npm ci`
    lock = hashlib.sha256((MERMAID_DIR / "package-lock.json").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() != lock:
        return (f"no Mermaid renderer: {MMDC} was installed from another package-lock.json "
                "(run bash .ci/setup to install the pinned one)")
    if chromium() is None:
        return ("no Mermaid renderer: no chromium at " + ", ".join(CHROMIUM_CANDIDATES) + " or on PATH "
                "(bash .ci/setup installs it as root with `apt-get install chromium`; or set $CHROMIUM)")
    return None


def require() -> Renderer:
    """The renderer, or skip the calling test saying what is missing."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    browser = chromium()
    assert browser is not None
    return Renderer(browser)


@dataclass(frozen=True)
class Rendered:
    """The SVG of each diagram that rendered and the error of each that did not (name -> ...), and how many mmdc
    runs (browser starts) it took: one, plus one per failed diagram."""
    svgs: dict[str, Path]
    errors: dict[str, str]
    runs: int

    def __repr__(self) -> str:  # short: pytest shows it with every failure
        return f"Rendered({sorted(self.svgs)} rendered, {sorted(self.errors)} failed, {self.runs} mmdc runs)"

    def svg(self, name: str) -> Path:
        """The diagram's SVG, or MermaidError with mmdc's message when it did not render."""
        if name in self.errors:
            raise MermaidError(f"diagram {name!r}: {self.errors[name]}")
        return self.svgs[name]

    def check(self) -> None:
        """MermaidError naming every diagram that did not render, with mmdc's message and its source."""
        if self.errors:
            raise MermaidError(f"{len(self.errors)} of {len(self.errors) + len(self.svgs)} diagrams did not render:\n"
                               + "\n\n".join(f"diagram {name!r}: {error}" for name, error in self.errors.items()))


@dataclass(frozen=True)
class Renderer:
    chromium: str

    def render(self, diagrams: Mapping[str, str], workdir: Path) -> Rendered:
        """Render every diagram (name -> Mermaid source, no fence); raise MermaidError naming each that fails."""
        rendered = self.render_all(diagrams, workdir)
        rendered.check()
        return rendered

    def render_all(self, diagrams: Mapping[str, str], workdir: Path) -> Rendered:
        """Render every diagram (name -> Mermaid source, no fence) in one mmdc run, the files written in new folders
        under `workdir`; a source given under several names is rendered once. mmdc stops at the first diagram it
        cannot render: then that one gets mmdc's error and the diagrams after it are rendered by another run (so a
        test sharing a batch fails alone)."""
        if not diagrams:
            raise ValueError("no diagrams to render")
        first: dict[str, str] = {}  # source -> the first name it has
        for name, source in diagrams.items():
            first.setdefault(source, name)
        names = list(first.values())
        svgs: dict[str, Path] = {}
        errors: dict[str, str] = {}
        runs = 1
        if self._run(names, diagrams, workdir, svgs, JOBS)[0] is not None:
            # a diagram failed, and with parallel jobs mmdc's message may belong to any: again one at a time, in
            # order, where the first diagram without an SVG is the one mmdc stopped at
            svgs.clear()
            pending = names
            while pending:
                runs += 1
                failed, message = self._run(pending, diagrams, workdir, svgs, 1)
                if failed is None:
                    break
                errors[failed] = message
                pending = pending[pending.index(failed) + 1:]
        for name in list(svgs):
            if TOO_BIG in svgs[name].read_text(encoding="utf-8"):
                del svgs[name]
                errors[name] = (f"Mermaid drew '{TOO_BIG}' instead of it ({len(diagrams[name])} characters); "
                                f"its source begins:\n{diagrams[name][:500]}")
        for name, source in diagrams.items():  # the names of a source rendered under another
            if first[source] in svgs:
                svgs[name] = svgs[first[source]]
            if first[source] in errors:
                errors[name] = errors[first[source]]
        return Rendered({name: svgs[name] for name in diagrams if name in svgs},
                        {name: errors[name] for name in diagrams if name in errors}, runs)

    def _run(self, names: list[str], diagrams: Mapping[str, str], workdir: Path, svgs: dict[str, Path],
             jobs: int) -> tuple[str | None, str]:
        """One mmdc run over `names` with `jobs` browser pages at a time: adds each SVG to `svgs`; the name of the
        first diagram without an SVG and mmdc's error (its own with one job), or (None, "") when all rendered."""
        for name in names:
            if "```" in diagrams[name]:  # would end the block mmdc cuts out of the Markdown file
                return name, f"its source holds ``` (it cannot sit in a Markdown fence):\n{diagrams[name]}"
        folder = Path(tempfile.mkdtemp(prefix="mermaid-", dir=workdir))
        blocks = [f"## {i}\n\n```mermaid\n{diagrams[name].rstrip()}\n```\n" for i, name in enumerate(names, 1)]
        (folder / "diagrams.md").write_text("\n".join(blocks), encoding="utf-8")
        (folder / "puppeteer.json").write_text(json.dumps({"executablePath": self.chromium, "args": CHROMIUM_ARGS}))
        command = [str(MMDC), "-p", "puppeteer.json", "-i", "diagrams.md", "-o", "diagram.md", "-j", str(jobs)]
        env = {**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1", "HOME": str(folder)}  # chromium writes under $HOME
        try:
            proc = subprocess.run(command, cwd=folder, capture_output=True, text=True, errors="replace", env=env,
                                  timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired as err:
            raise MermaidError(f"mmdc did not finish in {TIMEOUT}s ({len(names)} diagrams): {err.stderr!r}") from err
        for i, name in enumerate(names, 1):
            svg = folder / f"diagram-{i}.svg"
            if not svg.is_file():
                return name, (f"mmdc exited {proc.returncode}: {_message(proc.stderr)}\n"
                              f"(number {i} of {len(names)} in its run); its source:\n{diagrams[name]}")
            svgs[name] = svg
        if proc.returncode != 0:  # every SVG written, yet a failure: not one diagram's fault
            raise MermaidError(f"mmdc exited {proc.returncode} after rendering all {len(names)} diagrams: "
                               f"{_message(proc.stderr)}")
        return None, ""

    def render_markdown(self, documents: Mapping[str, str], workdir: Path) -> Rendered:
        """Render the ```mermaid blocks of Markdown documents (name -> text) in one batch, raising MermaidError
        when one fails; diagrams are named `<document>#<n>`. A document without a ```mermaid block is an error
        (the test would check nothing)."""
        diagrams: dict[str, str] = {}
        for name, text in documents.items():
            blocks = mermaid_blocks(text)
            if not blocks:
                raise MermaidError(f"{name}: no ```mermaid block in:\n{text[:2000]}")
            diagrams.update({f"{name}#{i}": block for i, block in enumerate(blocks, 1)})
        return self.render(diagrams, workdir)


def mermaid_blocks(markdown: str) -> list[str]:
    """The sources of the fenced code blocks whose info string is `mermaid`, as a CommonMark parser (like GitHub's)
    reads them: fences of any length, indented or not."""
    return [token.content for token in MarkdownIt("commonmark").parse(markdown)
            if token.type == "fence" and token.info.strip().split(maxsplit=1)[:1] == ["mermaid"]]


def _message(stderr: str) -> str:
    """mmdc's error without the JavaScript stack trace (lines `    at ...` and the source file they point into)."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("    at ")
             and not re.match(r"^\S+ \(https?://mermaid-cli-intercept", line)]
    return "\n".join(lines) or "(nothing on stderr)"


# --------------------------------------------------------------------------- reading an SVG


@dataclass(frozen=True)
class Shown:
    """What a rendered flowchart shows, element by element, in document order: the text of each node's label
    (`g.node`), each subgraph's title (`g.cluster`), each edge label (`g.edgeLabel`, "" for an edge without one),
    and how many edges (`path.flowchart-link`) it draws. A label that broke out of its quotes would add elements."""
    nodes: list[str]
    groups: list[str]
    edge_labels: list[str]
    edges: int

    def texts(self) -> list[str]:
        """Every non-empty label."""
        return [t for t in (*self.nodes, *self.groups, *self.edge_labels) if t]


def svg_root(svg: Path) -> ET.Element:
    """The parsed SVG (mmdc serialises it as XML, HTML labels included)."""
    return ET.fromstring(svg.read_text(encoding="utf-8"))  # our own renderer's output, not untrusted input


def _classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def _label(element: ET.Element) -> str:
    """The text of the label spans (HTML labels) or SVG `<text>` (HTML labels off) under `element`."""
    parts = ["".join(e.itertext()) for e in element.iter()
             if (e.tag == f"{_XHTML}span" and _classes(e) & {"nodeLabel", "edgeLabel"}) or e.tag == f"{_SVG}text"]
    return "".join(parts)


def shown(svg: Path) -> Shown:
    root = svg_root(svg)
    groups = [e for e in root.iter(f"{_SVG}g") if _classes(e)]
    return Shown(nodes=[_label(e) for e in groups if "node" in _classes(e)],
                 groups=[_label(e) for e in groups if "cluster" in _classes(e)],
                 edge_labels=[_label(e) for e in groups if "edgeLabel" in _classes(e)],
                 edges=sum(1 for e in root.iter(f"{_SVG}path") if "flowchart-link" in _classes(e)))


def node_positions(svg: Path) -> dict[str, tuple[float, float]]:
    """Mermaid node id (`n_...`) → the centre (x, y) its `g.node` is drawn at, in its parent's coordinates (the
    same for the nodes of one subgraph): where the layout put it."""
    out: dict[str, tuple[float, float]] = {}
    for element in svg_root(svg).iter(f"{_SVG}g"):
        name = re.search(r"flowchart-(\w+)-\d+$", element.get("id", ""))
        moved = re.match(r"translate\(\s*([-\d.e]+)[,\s]+([-\d.e]+)\s*\)", element.get("transform", ""))
        if "node" in _classes(element) and name and moved:
            out[name.group(1)] = (float(moved.group(1)), float(moved.group(2)))
    return out


def active_content(svg: Path) -> list[str]:
    """Elements and attributes that could run code or navigate: `<script>`, `on*=` handlers, links."""
    found: list[str] = []
    for element in svg_root(svg).iter():
        local = element.tag.rsplit("}", 1)[-1]
        if local in {"script", "a", "iframe", "object", "embed"}:
            found.append(f"<{local}>")
        found.extend(f"{local} {name}=" for name in element.attrib
                     if name.lower().startswith("on") or name.rsplit("}", 1)[-1] == "href")
    return found
