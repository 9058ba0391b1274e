"""The repository explains itself: pitfall ids resolve to docs/pitfalls.md, nothing cites documents outside it,
and the relative links of README.md and docs/ resolve."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO

# What the project runs and what its users read: comments, messages, configs, workflows.
SCOPE = ("compiler", "base", "README.md", "gitops.yaml", "environments", ".github")
PITFALLS = "docs/pitfalls.md"

# A pitfall cited as a link (`docs/pitfalls.md#p03`) or, in docs/ only, by its bare id.
_LINKED_ID = re.compile(r"pitfalls\.md#([A-Za-z0-9_-]+)")
_BARE_ID = re.compile(r"\bP([0-9]{2})\b")
_DOC_PATH = re.compile(r"\bdocs/[A-Za-z0-9_./-]+\.md\b")
# Documents outside the repository (the shared folder beside it: SHARED/reference/...) and the ways they used to be
# cited. SHARED is spelled in two parts so that a grep for that path over tests/ finds only real dependencies.
SHARED = ".." "/shared"
_OUTSIDE = (
    ("cave-deployment-facts", re.compile(r"cave-deployment-facts")),
    ("deployment-protocol", re.compile(r"deployment-protocol")),
    ("bringup-review", re.compile(r"bringup-review")),
    ("a facts section", re.compile(r"(?<![-\w])facts,? (?:sections? )?[0-9P]", re.IGNORECASE)),
    ("the seed doc", re.compile(r"\bseed doc\b", re.IGNORECASE)),
    ("research notes", re.compile(r"research notes|/tmp/research|\bgcp_facts\b", re.IGNORECASE)),
    # Any path under it is a dependency on a folder a clone of the repository does not have (the CRD schemas
    # validate needs are the repository's own schemas/crds/).
    (SHARED, re.compile(r"\.\./shared\b")),
)
_MD_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def scope_files(root: Path = REPO) -> Iterator[Path]:
    for entry in SCOPE:
        path = root / entry
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in candidates:
            if "__pycache__" in p.parts:
                continue
            yield p


def read_text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def cited_ids(text: str) -> set[str]:
    """Pitfall anchors a text links to (`docs/pitfalls.md#p03` -> "p03")."""
    return {m.group(1).lower() for m in _LINKED_ID.finditer(text)}


def bare_ids(text: str) -> list[tuple[int, str]]:
    """(line, "P03") of every pitfall id not written as a link: a reader cannot follow it."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        without_links = _LINKED_ID.sub("", line)
        out += [(number, f"P{m.group(1)}") for m in _BARE_ID.finditer(without_links)]
    return out


def outside_references(text: str) -> list[tuple[int, str]]:
    """(line, what) of every citation of a document outside the repository."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in _OUTSIDE:
            if pattern.search(line):
                out.append((number, what))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Anchors a Markdown page defines: explicit `<a id=...>` and one per heading (GitHub's slugs)."""
    found = {m.group(1) for m in _HTML_ANCHOR.finditer(markdown)}
    seen: dict[str, int] = {}
    in_code = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(page: Path, markdown: str, only_under: str | None = None) -> list[str]:
    """Relative links of a Markdown page whose file or anchor does not exist (`only_under`: targets in that folder)."""
    problems = []
    for m in _MD_LINK.finditer(markdown):
        target = m.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page.resolve()
        try:
            rel = dest.relative_to(REPO.resolve()).as_posix()
        except ValueError:
            problems.append(f"{target}: outside the repository")
            continue
        if only_under is not None and not rel.startswith(only_under):
            continue
        if not dest.exists():
            problems.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest.read_text()):
            problems.append(f"{target}: no anchor #{fragment} in {rel}")
    return problems


# ------------------------------------------------------------------ the scanners can fail


def test_scanner_finds_citations() -> None:
    text = "x = 1  # bash sets nothing (P17)\n# see docs/pitfalls.md#p03 and facts 6.5\n" \
           f"# (cave-deployment-facts 3.2), DESIGN from {SHARED}/DESIGN.md\n"
    assert cited_ids(text) == {"p03"}
    assert bare_ids(text) == [(1, "P17")]
    assert outside_references(text) == [(2, "a facts section"), (3, "cave-deployment-facts"), (3, SHARED)]
    assert outside_references(f"  python -m compiler validate --crd-schemas {SHARED}/schemas/crds") == [(1, SHARED)]
    assert outside_references(f"`{SHARED}/schemas/crds` holds CRD schemas used as test data") == [(1, SHARED)]
    assert outside_references(f"validate --crd-schemas {SHARED}/reference/x") == [(1, SHARED)]
    assert outside_references("validate --crd-schemas schemas/crds") == []
    assert outside_references("Rules (facts P50):\nfacts sections 1, 2.5\n") == [(1, "a facts section"),
                                                                                 (2, "a facts section")]


def test_anchor_and_link_checks(tmp_path: Path) -> None:
    page = '<a id="p03"></a>\n### P03: values looked up live\n## Upgrades\n## Upgrades\n```\n# not a heading\n```\n'
    assert anchors(page) == {"p03", "p03-values-looked-up-live", "upgrades", "upgrades-1"}
    assert slug("TLS, DNS and ingress") == "tls-dns-and-ingress"
    doc = REPO / "docs" / "pitfalls.md"
    text = "[a](pitfalls.md#p03) [b](pitfalls.md#p99) [c](missing.md) [d](https://x.org) [e](#nowhere) [f](#upgrades)"
    assert broken_links(doc, text) == ["pitfalls.md#p99: no anchor #p99 in docs/pitfalls.md",
                                       "missing.md: no such file", "#nowhere: no anchor #nowhere in docs/pitfalls.md"]


# ------------------------------------------------------------------ the repository


def _scope_texts() -> Iterator[tuple[str, str]]:
    for path in scope_files():
        text = read_text(path)
        if text is not None:
            yield path.relative_to(REPO).as_posix(), text


def test_every_cited_pitfall_has_a_section() -> None:
    defined = anchors((REPO / PITFALLS).read_text())
    missing = [f"{rel}: docs/pitfalls.md#{i}" for rel, text in _scope_texts() for i in sorted(cited_ids(text))
               if i not in defined]
    assert missing == []


def test_pitfalls_are_cited_as_links() -> None:
    bare = [f"{rel}:{line}: {pid} (write docs/pitfalls.md#{pid.lower()} or the reason in words)"
            for rel, text in _scope_texts() for line, pid in bare_ids(text)]
    assert bare == []


def test_nothing_cites_documents_outside_the_repository() -> None:
    found = [f"{rel}:{line}: {what}" for rel, text in _scope_texts() for line, what in outside_references(text)]
    if not (REPO / "DESIGN.md").exists():
        found += [f"{rel}:{n}: DESIGN.md (not in this repository)" for rel, text in _scope_texts()
                  for n, line in enumerate(text.splitlines(), 1) if re.search(r"\bDESIGN\.md\b", line)]
    assert found == []


def test_docs_pages_named_in_the_code_exist() -> None:
    missing = [f"{rel}: {m.group(0)}" for rel, text in _scope_texts() for m in _DOC_PATH.finditer(text)
               if not (REPO / m.group(0)).is_file()]
    assert missing == []


def test_pitfall_sections_are_ids_with_a_reason() -> None:
    text = (REPO / PITFALLS).read_text()
    ids = re.findall(r'<a id="(p[0-9]{2})"></a>\n### P([0-9]{2}): \S', text)
    assert len(ids) >= 40 and all(a == f"p{b}" for a, b in ids)
    sections = re.split(r'\n<a id="', text)[1:]
    for section in sections:
        assert all(part in section for part in ("**What goes wrong.**", "**How it is prevented.**",
                                                 "**What you see.**")), section[:40]


@pytest.mark.parametrize("page", ["README.md", *sorted(p.relative_to(REPO).as_posix()
                                                        for p in (REPO / "docs").glob("*.md"))])
def test_links_resolve(page: str) -> None:
    path = REPO / page
    assert broken_links(path, path.read_text(), only_under=None if page.startswith("docs/") else "docs/") == []


def test_readme_links_the_pitfalls() -> None:
    assert "(docs/pitfalls.md)" in (REPO / "README.md").read_text()
