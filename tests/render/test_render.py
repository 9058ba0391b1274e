"""Rendering: content hashes over everything an overlay references, the render cache, parallel renders."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.errors import UserError
from compiler.main import main
from compiler.render import kustomize
from compiler.render.cache import RenderCache
from compiler.render.hashing import content_hash
from compiler.render.jobs import object_set, render_cluster, render_clusters
from compiler.render.manifests import describe, field_path, object_id, parse_objects, sorted_objects
from compiler.render.sources import list_clusters
from tests.support import REPO
from tests.support.render import overlay, service_base, two_cluster_files, write_tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    files = two_cluster_files()
    # A component and a patch file outside the overlay directory, so the hash must follow them.
    files["base/components/node-pool/kustomization.yaml"] = (
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n- path: pool.yaml\n"
        "  target: {kind: Deployment}\n"
    )
    files["base/components/node-pool/pool.yaml"] = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: any}\n"
        "spec: {template: {spec: {nodeSelector: {pool: standard}}}}\n"
    )
    files["overlays/minnie/kustomization.yaml"] += "components: [../../base/components/node-pool]\n"
    files["base/unreferenced/kustomization.yaml"] = "resources: []\n"
    write_tree(root, files)
    return root


def _hash(root: Path, cluster: str = "minnie", version: str = "5.5.0") -> str:
    return content_hash(root / "overlays" / cluster, version, root)


def test_render_cluster_prints_kustomize_output_as_is(tree: Path, kustomize_tool: object) -> None:
    rendered = render_cluster(tree, "minnie", use_cache=False)
    expected = kustomize.find(tree).build(tree / "overlays/minnie")
    assert rendered.text == expected
    assert "nodeSelector" in rendered.text  # the component was applied
    kinds = sorted(o["kind"] for o in rendered.objects)
    assert kinds.count("Deployment") == 2


def test_render_command_writes_stdout(tree: Path, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    assert main(["-C", str(tree), "render", "minnie"]) == 0
    out = capsys.readouterr().out
    assert out == render_cluster(tree, "minnie").text


def test_render_unknown_cluster_lists_known(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(tree), "render", "brain"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "overlays: unknown cluster 'brain' (known: minnie, pinky; a cluster is a file environments/<name>.yaml)"
    ]


def test_clusters_need_a_spec_and_an_overlay(tree: Path) -> None:
    (tree / "overlays/argocd").mkdir()
    (tree / "overlays/argocd/kustomization.yaml").write_text("resources: []\n")
    (tree / "environments/pinky.yaml").unlink()
    assert list_clusters(tree) == ["minnie"]


def test_hash_is_stable_and_independent_of_location(tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere"
    shutil.copytree(tree, copy)
    assert _hash(tree) == _hash(tree) == _hash(copy)
    assert _hash(tree) != _hash(tree, "pinky")


@pytest.mark.parametrize(
    "edit",
    [
        "base/guidebook/deployment.yaml",  # a referenced base
        "base/components/node-pool/pool.yaml",  # a patch file inside a referenced component
        "overlays/minnie/configs/guidebook.cfg",  # a generator source
        "overlays/minnie/kustomization.yaml",  # the overlay itself
    ],
)
def test_hash_follows_every_referenced_file(tree: Path, edit: str) -> None:
    before = _hash(tree)
    with (tree / edit).open("a") as f:
        f.write("# edited\n")
    assert _hash(tree) != before


def test_hash_ignores_unreferenced_files(tree: Path) -> None:
    before = _hash(tree)
    (tree / "base/unreferenced/extra.yaml").write_text("x: 1\n")
    (tree / "overlays/pinky/configs/guidebook.cfg").write_text("other\n")
    (tree / "environments/minnie.yaml").write_text("edited: true\n")  # the spec is not a render input
    assert _hash(tree) == before


def test_hash_covers_whole_referenced_directories_and_kustomize_version(tree: Path) -> None:
    before = _hash(tree)
    assert _hash(tree, version="5.6.0") != before
    (tree / "base/guidebook/notes.txt").write_text("not listed in the kustomization, still hashed\n")
    assert _hash(tree) != before


def test_hash_of_missing_reference_differs(tree: Path) -> None:
    before = _hash(tree)
    shutil.rmtree(tree / "base/components/node-pool")
    assert _hash(tree) != before


def test_cache_reuses_renders(tree: Path, kustomize_tool: object) -> None:
    cache = RenderCache(tree / ".cache/cave-gitops/renders")
    first = render_clusters(tree, ["minnie", "pinky"])
    second = render_clusters(tree, ["minnie", "pinky"])
    assert [r.from_cache for r in (*first.values(), *second.values())] == [False, False, True, True]
    assert not first["minnie"].from_cache and second["minnie"].from_cache
    assert first["minnie"].text == second["minnie"].text
    assert cache.get(first["minnie"].key) == first["minnie"].text
    (tree / "overlays/minnie/configs/guidebook.cfg").write_text("LOG_LEVEL=debug\n")
    third = render_clusters(tree, ["minnie"])
    assert not third["minnie"].from_cache


def test_cache_prunes_least_recently_used(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path, max_entries=2)
    for i, key in enumerate(["aa1", "bb2", "cc3"]):
        cache.put(key, f"text {i}")
        os.utime(tmp_path / key[:2] / f"{key}.yaml", (1000 + i, 1000 + i))
    assert cache.get("aa1") == "text 0"  # used now: newest
    cache.prune()
    assert (cache.get("aa1"), cache.get("bb2"), cache.get("cc3")) == ("text 0", None, "text 2")


def test_object_set_is_sorted(tree: Path, kustomize_tool: object) -> None:
    pairs = object_set(render_clusters(tree, ["pinky", "minnie"]))
    keys = [(c, object_id(o)) for c, o in pairs]
    assert keys == sorted(keys) and {c for c, _ in keys} == {"minnie", "pinky"}


def test_all_render_failures_reported_at_once(tree: Path, kustomize_tool: object) -> None:
    for cluster in ("minnie", "pinky"):
        (tree / f"overlays/{cluster}/kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(UserError) as err:
        render_clusters(tree, ["minnie", "pinky"], use_cache=False)
    assert [p.path for p in err.value.problems] == ["minnie", "pinky"]
    assert all("kustomize build failed" in p.message for p in err.value.problems)


def test_many_clusters_render_in_parallel(tmp_path: Path, kustomize_tool: object) -> None:
    files = service_base("guidebook")
    for i in range(6):
        files |= overlay(f"c{i}", {"guidebook": f"v{i}"})
    write_tree(tmp_path, files)
    rendered = render_clusters(tmp_path, list_clusters(tmp_path), use_cache=False, workers=3)
    assert sorted(rendered) == [f"c{i}" for i in range(6)]
    for i in range(6):
        assert f"ghcr.io/cave/guidebook:v{i}" in rendered[f"c{i}"].text


def test_sorted_objects_and_ids() -> None:
    objs = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "b", "namespace": "x"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "x"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "namespace": "x"}},
    ]
    assert [object_id(o) for o in sorted_objects(objs)] == [
        ("", "Service", "x", "a"),
        ("apps", "Deployment", "x", "a"),
        ("apps", "Deployment", "x", "b"),
    ]
    assert describe(objs[0]) == "Deployment/x/b"
    assert field_path(["metadata", "annotations", "argocd.argoproj.io/sync-wave"]) == (
        'metadata.annotations["argocd.argoproj.io/sync-wave"]'
    )
    assert field_path(["spec", "containers", 0, "image"]) == "spec.containers[0].image"


def test_yaml_keeps_timestamps_and_equals_as_strings() -> None:
    [doc] = parse_objects("kind: ConfigMap\ndata: {day: 2024-01-02, eq: =}\n")
    assert doc["data"] == {"day": "2024-01-02", "eq": "="}


def test_cache_dir_is_gitignored() -> None:
    proc = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", ".cache/cave-gitops/renders/x.yaml"], check=False
    )
    assert proc.returncode == 0


def test_meanwhile_runs_while_kustomize_renders_and_its_error_stops_the_rest(tree: Path) -> None:
    """render_jobs_settled's `meanwhile` (diff's freshness check) runs once the jobs are submitted; when it raises,
    jobs not yet started are cancelled and its error is the caller's, and with no job at all it still runs."""
    from compiler.paths import overlay_rel
    from compiler.render.hashing import InputHasher
    from compiler.render.jobs import make_job, render_jobs_settled
    from compiler.render.sources import worktree_source

    tool = kustomize.find(tree)
    hasher = InputHasher(worktree_source(tree))
    jobs = [make_job(hasher, c, overlay_rel(c), tree / overlay_rel(c), tool.version) for c in ("minnie", "pinky")]
    seen: list[str] = []
    done = render_jobs_settled(jobs, tool, None, workers=1, meanwhile=lambda: seen.append("checked"))
    assert seen == ["checked"] and [r.label for r in done if not isinstance(r, UserError)] == ["minnie", "pinky"]

    def stale() -> None:
        raise UserError("overlays/minnie is stale: run python -m compiler build")

    import dataclasses

    from compiler.render.cache import RenderCache

    cache = RenderCache(tree / ".cache" / "meanwhile")
    many = [dataclasses.replace(jobs[i % 2], key=f"{i:064x}") for i in range(40)]  # 40 renders, each its own entry
    with pytest.raises(UserError, match="is stale"):
        render_jobs_settled(many, tool, cache, workers=1, meanwhile=stale)
    assert len(list(cache.directory.rglob("*.yaml"))) < 5  # the jobs not started were cancelled
    render_jobs_settled([], tool, None, meanwhile=lambda: seen.append("no jobs"))
    assert seen == ["checked", "no jobs"]
