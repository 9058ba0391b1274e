"""Specs kept as JSON once they parsed cleanly (spec/yamlio.load_document with a cache): read back with the same
data and positions, never for a file with problems, and a damaged entry is only a miss."""

from __future__ import annotations

import json
from pathlib import Path

from compiler.cache import ParsedCache
from compiler.spec.yamlio import load_document
from tests.support import REPO

SPEC = REPO / "environments" / "minnie.yaml"


def entries(cache: ParsedCache) -> list[Path]:
    return sorted(cache.directory.rglob("*.json"))


def test_a_clean_spec_comes_back_with_its_data_and_every_position(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path / "parsed")
    fresh, problems = load_document(SPEC, "environments/minnie.yaml")
    assert fresh is not None and problems == []
    first, _ = load_document(SPEC, "environments/minnie.yaml", cache)
    [entry] = entries(cache)
    again, problems = load_document(SPEC, "environments/minnie.yaml", cache)
    assert again is not None and first is not None and problems == []
    assert again.data == fresh.data and again._positions == fresh._positions
    assert again.position(("services", "annotationengine", "version")) == \
        fresh.position(("services", "annotationengine", "version")) != (1, 1)
    # It is the entry that answered: what the entry says is what comes back.
    data = json.loads(entry.read_text())
    data["data"]["name"] = "from-the-cache"
    entry.write_text(json.dumps(data))
    read, _ = load_document(SPEC, "environments/minnie.yaml", cache)
    assert read is not None and read.data["name"] == "from-the-cache"


def test_other_text_is_another_entry(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path / "parsed")
    spec = tmp_path / "minnie.yaml"
    spec.write_text(SPEC.read_text())
    load_document(spec, "environments/minnie.yaml", cache)
    spec.write_text(SPEC.read_text().replace("name: minnie", "name: minnie2", 1))
    doc, _ = load_document(spec, "environments/minnie.yaml", cache)
    assert doc is not None and doc.data["name"] == "minnie2" and len(entries(cache)) == 2


def test_a_file_with_problems_is_never_kept(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path / "parsed")
    spec = tmp_path / "dup.yaml"
    spec.write_text("name: a\nname: b\n")
    for _ in range(2):
        _, problems = load_document(spec, "environments/dup.yaml", cache)
        assert [p.message.split(" (")[0] for p in problems] == ["duplicate key 'name'"]
    assert entries(cache) == []


def test_values_json_would_change_are_parsed_every_time(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path / "parsed")
    spec = tmp_path / "odd.yaml"
    spec.write_text("when: 2026-12-06\n1: one\n")
    doc, problems = load_document(spec, "environments/odd.yaml", cache)
    assert doc is not None and problems == [] and entries(cache) == []


def test_a_damaged_entry_is_parsed_again(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path / "parsed")
    load_document(SPEC, "environments/minnie.yaml", cache)
    [entry] = entries(cache)
    fresh, _ = load_document(SPEC, "environments/minnie.yaml")
    assert fresh is not None
    for damage in ['{"data": {}}', '{"data": {}, "positions": [[["a"], [1, 2]]]}', '{"positions": []}', "[]"]:
        entry.write_text(damage)
        doc, _ = load_document(SPEC, "environments/minnie.yaml", cache)
        assert doc is not None and doc.data == fresh.data and doc._positions == fresh._positions, damage
