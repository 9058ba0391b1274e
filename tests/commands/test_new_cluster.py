"""`new-cluster`: a new spec from a cluster or a template, whose per-cluster values are placeholders `build`
refuses at their file:line:col until set; once set, build and validate pass (real kustomize, real files)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compiler.main import main
from compiler.spec.derive import SpecBucket, spec_buckets
from compiler.spec.load import load_all
from compiler.spec.model import ClusterSpec
from compiler.spec.sharing import writes
from tests.support import REPO
from tests.support.cli import copy_examples
from tests.support.cli import run_captured as run
from tests.support.placeholders import fill, positions

CRDS = REPO / "schemas" / "crds"  # the repository's own CRD schemas


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return copy_examples(tmp_path, ("environments", "base"))


def build_errors(repo: Path) -> list[tuple[str, int, int, str]]:
    code, _, err = run(repo, "build")
    assert code == 2, err
    out = []
    for line in err.splitlines():
        m = re.fullmatch(r"(environments/[^:]+):(\d+):(\d+): (.*)", line)
        assert m, line
        out.append((m[1], int(m[2]), int(m[3]), m[4]))
    return out


CASES = [("h01", ["--from", "minnie"], "minnie"), ("h02", ["--from", "fanc"], "fanc"),
         ("global2", ["--from", "global"], "global"), ("h03", ["--kind", "local"], None),
         ("global3", ["--kind", "global"], None)]


@pytest.mark.parametrize(("name", "args", "source"), CASES, ids=[c[0] for c in CASES])
def test_new_cluster_fails_build_at_each_todo_until_filled(repo: Path, name: str, args: list[str],
                                                           source: str | None) -> None:
    before = {p.name: p.read_text() for p in (repo / "environments").iterdir()}
    code, out, err = run(repo, "new-cluster", name, *args)
    assert code == 0, err
    spec = repo / "environments" / f"{name}.yaml"
    text = spec.read_text()
    assert {p.name: p.read_text() for p in (repo / "environments").iterdir() if p.name != spec.name} == before
    assert f"name: {name}\n" in text and "# TODO: set TODO-" in text
    todos = positions(text)
    assert len(todos) >= 6
    # the command lists each placeholder where build will report it
    assert [ln for ln in out.splitlines() if ln.startswith("  ")] == [
        f"  environments/{name}.yaml:{line}:{col}: {token}" for line, col, token in todos]

    # build refuses every placeholder, at its line and column, saying what to set, and nothing else
    errors = build_errors(repo)
    assert [(f, line, col) for f, line, col, _ in errors] == [(f"environments/{name}.yaml", line, col)
                                                             for line, col, _ in todos]
    for (_, _, _, message), (_, _, token) in zip(errors, todos, strict=True):
        assert f"placeholder {token}" in message and ": set it: " in message
    assert not (repo / "overlays" / name).exists()

    spec.write_text(fill(text, name))
    code, _, err = run(repo, "build")
    assert code == 0, err
    assert (repo / "overlays" / name / "kustomization.yaml").is_file()
    code, out, err = run(repo, "validate", name, "--crd-schemas", str(CRDS))
    assert code == 0, out + err

    loaded = load_all(repo)
    new = loaded[name].spec
    shared_ok = {"bucket"}  # read-only buckets a source declares stay shared on purpose
    if source is not None:
        old = loaded[source].spec
        assert new.gcp.project != old.gcp.project
        assert new.cloud_sql.instance != old.cloud_sql.instance
        assert new.static_ip != old.static_ip
        assert (new.argocd.name, new.argocd.server) != (old.argocd.name, old.argocd.server)
        assert new.kind == old.kind and new.gcp.region == old.gcp.region
        if new.kind == "local" and old.kind == "local":
            assert new.global_server == old.global_server  # the same global cluster, shared on purpose
            assert new.data.project == old.data.project
            assert new.data.bigtable_instance != old.data.bigtable_instance
        theirs = {(w.kind, w.key) for w in writes(old) if not w.read_only}
        clashes = [w.label for w in writes(new) if (w.kind, w.key) in theirs and w.kind not in shared_ok]
        assert clashes == []
        assert not {b.path for b in _buckets(new)} & {b.path for b in _buckets(old)}


def _buckets(spec: ClusterSpec) -> list[SpecBucket]:
    """Buckets the cluster writes (not those it declares as only read)."""
    return [b for b in spec_buckets(spec) if b.path not in spec.read_only.buckets]


def test_copy_keeps_comments_and_follows_the_name(repo: Path) -> None:
    assert run(repo, "new-cluster", "h01", "--from", "minnie")[0] == 0
    text = (repo / "environments" / "h01.yaml").read_text()
    source = (REPO / "environments" / "minnie.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../schemas/spec.schema.json\n"  # the editors' schema
                           "# Local CAVE cluster h01, made with `python -m compiler new-cluster h01 --from minnie`")
    # comments kept, the source's name replaced where it is the cluster's identity
    assert "domain: cave-demo.org       # primary hostname: h01.cave-demo.org" in text
    assert "(`runbook h01` lists the steps)" in text
    assert "postgres_password: h01-postgres-password" in text
    assert "cv_path: graphene://https://h01.cave-demo.org/segmentation/table/minnie3_v1" in text
    assert "minnie.cave-demo.org" not in text and "daf-minnie" not in text
    assert "global_server: global.cave-demo.org" in text  # shared on purpose
    # the flow-style node pools and beat schedule are byte for byte the source's
    for line in source.splitlines():
        if line.startswith("  - {name:") or line.startswith("      - {name:"):
            assert line in text
    # a datastack is one placeholder at every place the spec names it
    assert text.count("TODO-datastack-minnie65_public") >= 4


def test_copy_of_a_global_leaves_its_zones_to_it(repo: Path) -> None:
    assert run(repo, "new-cluster", "global2", "--from", "global")[0] == 0
    text = (repo / "environments" / "global2.yaml").read_text()
    assert "cave-demo: {cluster: global, project: cave-demo-global}" in text
    assert "legacy-daf: {cluster: global, project: cave-demo-global}" in text
    assert "hostname: TODO-hostname-1" in text
    assert "server: TODO-argocd-server" in text  # Argo CD runs in `global`, not in the copy


@pytest.mark.parametrize(("args", "message"), [
    (["minnie", "--from", "fanc"], "environments/minnie.yaml: already exists (choose another name"),
    (["Bad_Name", "--from", "minnie"], "'Bad_Name' is not a valid cluster name"),
    (["h01", "--from", "minie"], "unknown cluster 'minie' (did you mean 'minnie'? known: fanc, global, minnie;"),
    (["h01", "--kind", "local", "--global", "minnie"], "unknown global cluster 'minnie' (known: global;"),
    (["averyveryverylongname", "--from", "minnie"], "would exceed 30 characters (use at most"),
    (["h01", "--from", "minnie", "--global", "global"], "--global names the global cluster of a new local cluster"),
])
def test_refusals_write_nothing(repo: Path, args: list[str], message: str) -> None:
    before = sorted(p.name for p in (repo / "environments").iterdir())
    minnie = (repo / "environments" / "minnie.yaml").read_text()
    code, out, err = run(repo, "new-cluster", *args)
    assert code == 2 and out == ""
    assert message in err, err
    assert "Traceback" not in err
    assert sorted(p.name for p in (repo / "environments").iterdir()) == before
    assert (repo / "environments" / "minnie.yaml").read_text() == minnie


def test_from_a_spec_with_placeholders_left_is_refused(repo: Path) -> None:
    assert run(repo, "new-cluster", "h01", "--from", "minnie")[0] == 0
    code, _, err = run(repo, "new-cluster", "h02", "--from", "h01")
    assert code == 2 and "environments/h01.yaml: still has TODO-... placeholders (set them first" in err
    # another new cluster can be started meanwhile
    assert run(repo, "new-cluster", "h02", "--from", "fanc")[0] == 0


def test_local_template_uses_the_global_cluster(repo: Path) -> None:
    assert run(repo, "new-cluster", "h03", "--kind", "local")[0] == 0
    text = (repo / "environments" / "h03.yaml").read_text()
    assert "global_server: global.cave-demo.org" in text
    assert "cave-demo: {cluster: global, project: cave-demo-global}" in text


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["new-cluster", "--help"])
    out = capsys.readouterr().out
    assert "python -m compiler new-cluster h01 --from minnie" in out and "--kind" in out


def test_a_missing_static_ip_and_destination_become_placeholders(repo: Path) -> None:
    """With gitops.yaml every cluster needs both: a source without them (imported, say) still yields a new spec
    that says where to put them."""
    fanc = repo / "environments" / "fanc.yaml"
    text = fanc.read_text()
    text = re.sub(r"^static_ip: .*\n", "", text, flags=re.MULTILINE)
    text = re.sub(r"^argocd:\n  name: .*\n", "", text, flags=re.MULTILINE)
    fanc.write_text(text)
    assert run(repo, "new-cluster", "h02", "--from", "fanc")[0] == 0
    new = (repo / "environments" / "h02.yaml").read_text()
    assert re.search(r"^  instance: TODO-cloud-sql-instance\n(# .*\n)+static_ip: TODO-static-ip\nargocd:\n(  # .*\n)+"
                     r"  name: TODO-argocd-name\n", new, re.MULTILINE), new
