"""The parsed-YAML cache (compiler/cache.py ParsedCache): JSON only where JSON gives the same value back, every
kind of entry under keys of its own."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from compiler import fingerprint
from compiler.cache import ParsedCache, json_exact, text_key
from compiler.render.jobs import cached_objects
from compiler.render.manifests import parse_objects

STREAM = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: ns}
data: {when: 2026-12-06, ratio: "1.5", empty: ""}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: b}
spec: {replicas: 3, paused: false, x: 1.25, y: null, z: [1, "two", {k: v}]}
"""


@pytest.mark.parametrize("value", [{"a": [1, 2.5, True, None, "s", {"b": []}]}, [], "", 0, -(2**70)])
def test_json_exact_values(value: Any) -> None:
    assert json_exact(value)


@pytest.mark.parametrize("value", [{1: "int key"}, {"a": math.nan}, [math.inf], {"a": b"bytes"}, {"a": (1, 2)},
                                   {"a": {1.5: "x"}}, {"a": {True: "x"}}, {"a": {"b", "c"}}])
def test_values_json_would_change_are_not_exact(value: Any) -> None:
    assert not json_exact(value)


def test_objects_come_back_from_the_cache_equal_and_fresh(tmp_path: Path) -> None:
    cache = ParsedCache(tmp_path)
    first = cached_objects(STREAM, "c", cache)
    assert first == parse_objects(STREAM, "c")
    [entry] = list(tmp_path.rglob("*.json"))
    assert entry.stem == fingerprint.key("rendered-objects", STREAM) != text_key(STREAM)
    second = cached_objects(STREAM, "c", cache)
    assert second == first and second is not first  # each caller gets its own objects to change
    second[0]["data"]["when"] = "changed"
    assert cached_objects(STREAM, "c", cache)[0]["data"]["when"] == "2026-12-06"  # dates stay strings


def test_a_stream_json_cannot_carry_is_parsed_every_time(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nbinaryData: {b: !!binary aGVsbG8=}\n"
    cache = ParsedCache(tmp_path)
    objects = cached_objects(text, "c", cache)
    assert objects[0]["binaryData"]["b"] == b"hello"
    assert list(tmp_path.rglob("*.json")) == []


@pytest.mark.parametrize("damage", ["{", '{"a": 1}', "[1, 2]", "null"])
def test_a_damaged_entry_is_parsed_again(tmp_path: Path, damage: str) -> None:
    cache = ParsedCache(tmp_path)
    cached_objects(STREAM, "c", cache)
    [entry] = list(tmp_path.rglob("*.json"))
    entry.write_text(damage)
    assert cached_objects(STREAM, "c", cache) == parse_objects(STREAM, "c")
    assert entry.read_text() != damage  # stored again


def test_a_render_reads_its_objects_through_the_parsed_cache(tmp_path: Path) -> None:
    """render_clusters' results share the parsed cache of the render cache: parse once, read JSON after."""
    from compiler.render.cache import default_cache
    from compiler.render.jobs import Rendered

    cache = default_cache(tmp_path)
    assert cache.parsed is not None
    rendered = Rendered("c", "key", STREAM, from_cache=True, parsed=cache.parsed)
    assert rendered.objects == parse_objects(STREAM, "c")
    key = fingerprint.key("rendered-objects", STREAM)
    assert (cache.parsed.directory / key[:2] / f"{key}.json").is_file()


def test_a_file_parsed_as_argo_cd_manifests_does_not_answer_for_its_kustomization(tmp_path: Path) -> None:
    """One file, two readers: diff parses overlays/argocd/ files as manifest lists, the render hash parses a
    kustomization as a mapping. Sharing one cache, neither may read the other's entry (a list taken for a
    kustomization would hide every file it references from the render key)."""
    from compiler.diff.argocd import _objects
    from compiler.render.hashing import InputHasher
    from compiler.render.sources import FsSource

    kustomization = b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../base]\n"
    (tmp_path / "app").mkdir()
    (tmp_path / "base").mkdir()
    (tmp_path / "app" / "kustomization.yaml").write_bytes(kustomization)
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (tmp_path / "base" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    cache = ParsedCache(tmp_path / "parsed")
    _objects([kustomization], cache)  # stores the file's documents, a list
    files = InputHasher(FsSource(tmp_path), parsed=cache).inputs("app").files
    assert {"base/kustomization.yaml", "base/cm.yaml"} <= set(files)
