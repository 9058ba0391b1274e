"""No two clusters write the same data (issue 12 g): compiler/spec/sharing.py, run by every spec load."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from compiler.errors import UserError
from compiler.spec.load import load_all
from compiler.spec.sharing import _bucket_overlap, shared_data, writes
from tests.support import REPO

FIXTURE = REPO / "tests" / "fixtures" / "fleet_2026_12_06"


def _envs(tmp: Path, source: Path = REPO) -> Path:
    shutil.copytree(source / "environments", tmp / "environments")
    return tmp


def _edit(root: Path, cluster: str, *replacements: tuple[str, str]) -> str:
    """Replace text in a copied spec (each old text must be there once); returns the new text."""
    path = root / "environments" / f"{cluster}.yaml"
    text = path.read_text()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text)
    return text


def _append(root: Path, cluster: str, block: str) -> None:
    path = root / "environments" / f"{cluster}.yaml"
    path.write_text(path.read_text() + block)


def _problems(root: Path) -> list[str]:
    """Messages of the sharing problems (other rules' problems left out)."""
    try:
        load_all(root)
    except UserError as err:
        return [str(p) for p in err.problems if " also " in p.message or "read_only." in p.message]
    return []


def _line(root: Path, cluster: str, text: str) -> int:
    return (root / "environments" / f"{cluster}.yaml").read_text().splitlines().index(text) + 1


def _tree(directory: Path) -> list[tuple[str, bytes | None]]:
    """Every path under `directory` with its bytes (None for a directory): what build may have written."""
    return sorted((p.relative_to(directory).as_posix(), None if p.is_dir() else p.read_bytes())
                  for p in directory.rglob("*"))


def _copy_minnie(root: Path) -> None:
    text = (root / "environments" / "minnie.yaml").read_text()
    copy = text.replace("name: minnie\n", "name: minnie2\n", 1).replace("static_ip: 203.0.113.20",
                                                                        "static_ip: 203.0.113.21", 1)
    copy = re.sub(r"(argocd:\n  name: daf-minnie)\b", r"\g<1>2", copy, count=1)
    assert copy.count("minnie2") == 2  # name and argocd.name only
    (root / "environments" / "minnie2.yaml").write_text(copy)


# --------------------------------------------------------------------------- the fleets as they are


def test_current_and_fixture_fleets_load(tmp_path: Path) -> None:
    assert _problems(_envs(tmp_path / "now")) == []
    before = _envs(tmp_path / "before", FIXTURE)
    assert list(shared_data({n: (v.spec, v.doc) for n, v in load_all(before, for_fleet_rules=True).items()})) == []


def test_copied_minnie_build_exits_2_names_both_files_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for part in ("environments", "base", "overlays"):
        shutil.copytree(REPO / part, root / part)
    shutil.copy2(REPO / "gitops.yaml", root / "gitops.yaml")
    _copy_minnie(root)
    before = _tree(root / "overlays")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "compiler", "--root", str(root), "build"], capture_output=True,
                         text=True, env=env, check=False)
    assert run.returncode == 2, run.stderr
    after = _tree(root / "overlays")
    assert after == before
    line = _line(root, "minnie", "  instance: cave-minnie-sql")
    for me, other in (("minnie", "minnie2"), ("minnie2", "minnie")):
        assert (f"environments/{me}.yaml:{line}:13: Cloud SQL instance cave-minnie-sql (project cave-demo-minnie) "
                f"is also written by cluster {other} (environments/{other}.yaml:{line}:13) (give each cluster its "
                "own instance") in run.stderr
    for what in ("Secret Manager secret minnie-postgres-password", "Bigtable table minnie3_v1",
                 "bucket gs://cave-demo-minnie-uploads", "bucket gs://cave-demo-pcg-edges",
                 "datastack minnie65_public (info service of cluster global) is also registered"):
        assert re.search(rf"^environments/minnie\.yaml:\d+:\d+: {re.escape(what)}", run.stderr, re.M), what
        assert re.search(rf"^environments/minnie2\.yaml:\d+:\d+: {re.escape(what)}", run.stderr, re.M), what


# --------------------------------------------------------------------------- one case per class of data


def test_cloud_sql_instance(tmp_path: Path) -> None:
    root = _envs(tmp_path)
    _edit(root, "fanc", ("project: cave-demo-fanc", "project: cave-demo-minnie"),
          ("instance: cave-fanc-sql", "instance: cave-minnie-sql"))
    found = _problems(root)
    assert len(found) == 2 and all("Cloud SQL instance cave-minnie-sql" in p for p in found)
    assert {p.split(":")[0] for p in found} == {"environments/fanc.yaml", "environments/minnie.yaml"}


def test_cloud_sql_same_name_in_another_project_passes(tmp_path: Path) -> None:
    root = _envs(tmp_path)
    _edit(root, "fanc", ("instance: cave-fanc-sql", "instance: cave-minnie-sql"))
    assert _problems(root) == []


def test_bigtable_table_and_read_only(tmp_path: Path) -> None:
    root = _envs(tmp_path)
    _edit(root, "fanc", ("bigtable_instance: pychunkedgraph-fanc", "bigtable_instance: pychunkedgraph"),
          ("graph_ids: [fanc_v4]", "graph_ids: [fanc_v4, minnie3_v1]"))
    found = _problems(root)
    gid = _line(root, "fanc", "    graph_ids: [fanc_v4, minnie3_v1]")
    assert any(p.startswith(f"environments/fanc.yaml:{gid}:") and "Bigtable table minnie3_v1 (project "
               "cave-demo-data, instance pychunkedgraph) is also written by cluster minnie" in p for p in found)
    assert len(found) == 2
    _append(root, "fanc", "read_only:\n  bigtable_tables: [minnie3_v1]\n")
    assert _problems(root) == []


def test_bigtable_same_table_in_another_instance_passes(tmp_path: Path) -> None:
    root = _envs(tmp_path)
    _edit(root, "fanc", ("graph_ids: [fanc_v4]", "graph_ids: [fanc_v4, minnie3_v1]"))
    assert _problems(root) == []


def test_bucket_and_read_only(tmp_path: Path) -> None:
    root = _envs(tmp_path)
    _edit(root, "fanc", ("bigtable_instance: pychunkedgraph-fanc\n",
                         "bigtable_instance: pychunkedgraph-fanc\n  pcg_bucket: cave-demo-pcg-edges\n"))
    found = _problems(root)
    assert len(found) == 2 and all("bucket gs://cave-demo-pcg-edges is also written by" in p for p in found)
    assert "list cave-demo-pcg-edges under read_only.buckets" in found[0]
    _append(root, "fanc", "read_only:\n  buckets: [cave-demo-pcg-edges]\n")
    assert _problems(root) == []


def test_bucket_paths_overlap_or_not(tmp_path: Path) -> None:
    root = _envs(tmp_path)
    _edit(root, "fanc", ("bigtable_instance: pychunkedgraph-fanc\n",
                         "bigtable_instance: pychunkedgraph-fanc\n  pcg_bucket: cave-demo-skeletons\n"))
    found = _problems(root)
    assert len(found) == 2 and any("bucket gs://cave-demo-skeletons/minnie is also written by cluster fanc" in p
                                   for p in found)
    _edit(root, "fanc", ("pcg_bucket: cave-demo-skeletons\n", "pcg_bucket: cave-demo-skeletons/fanc\n"))
    assert _problems(root) == []
    assert _bucket_overlap("b/x", "b/x/y") and _bucket_overlap("b", "b/x") and not _bucket_overlap("b/x", "b/xy")


def test_secret_manager_name_and_read_only(tmp_path: Path) -> None:
    root = _envs(tmp_path)
    _edit(root, "fanc", ("project: cave-demo-fanc", "project: cave-demo-minnie"))
    _append(root, "fanc", "secrets:\n  cave_token: minnie-cave-token\n")
    found = _problems(root)
    assert len(found) == 2
    assert all("Secret Manager secret minnie-cave-token (project cave-demo-minnie, secrets.cave_token)" in p
               for p in found)
    assert any(p.startswith(f"environments/fanc.yaml:{_line(root, 'fanc', '  cave_token: minnie-cave-token')}:")
               for p in found)
    _append(root, "fanc", "read_only:\n  secret_keys: [cave_token]\n")
    assert _problems(root) == []


def test_generated_secret_cannot_be_declared_read_only(tmp_path: Path) -> None:
    root = _envs(tmp_path)
    _append(root, "fanc", "read_only:\n  secret_keys: [postgres_password]\n  buckets: [no-such-bucket]\n")
    found = _problems(root)
    assert len(found) == 2
    assert any("read_only.secret_keys[0]: 'postgres_password' is not a secret an operator uploads that this spec "
               "uses (bootstrap generates postgres_password" in p for p in found)
    assert any("read_only.buckets[0]: 'no-such-bucket' is not a bucket path" in p for p in found)


def test_datastack_registration(tmp_path: Path) -> None:
    root = _envs(tmp_path)
    _edit(root, "fanc", ("    fanc_production_mar2021:\n      aligned_volume",
                         "    minnie65_public:\n      aligned_volume: fanc_v4\n      pcg_table: fanc_v4\n"
                         "      description: d\n    fanc_production_mar2021:\n      aligned_volume"))
    found = _problems(root)
    assert len(found) == 2
    assert all("datastack minnie65_public (info service of cluster global) is also registered" in p for p in found)
    # the same global reached under another of its hostnames is the same info service
    _edit(root, "fanc", ("global_server: global.cave-demo.org", "global_server: global.daf-apis.org"))
    assert len(_problems(root)) == 2


def test_datastack_of_another_global_passes(tmp_path: Path) -> None:
    loaded = load_all(_envs(tmp_path))
    minnie = loaded["minnie"]
    elsewhere = minnie.spec.model_copy(update={"global_server": "global.example.org", "name": "other"})
    assert next(w for w in writes(elsewhere) if w.kind == "datastack").key[0] == "global.example.org"
    specs = {"minnie": (minnie.spec, minnie.doc), "other": (elsewhere, minnie.doc)}
    assert [p for p in shared_data(specs) if "datastack" in p.message] == []


def test_static_ip_reported_once_per_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for part in ("environments", "base", "overlays"):
        shutil.copytree(REPO / part, root / part)
    shutil.copy2(REPO / "gitops.yaml", root / "gitops.yaml")
    _edit(root, "fanc", ("static_ip: 203.0.113.30", "static_ip: 203.0.113.20"))
    run = subprocess.run([sys.executable, "-m", "compiler", "--root", str(root), "build"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if "203.0.113.20" in line]
    assert len(lines) == 2, run.stderr
    assert any(line.startswith("environments/fanc.yaml:") and "static_ip 203.0.113.20 is also used by cluster minnie "
               "(environments/minnie.yaml:" in line for line in lines)


def test_memorystore_host_in_one_network(tmp_path: Path) -> None:
    """One host in one VPC is one Memorystore instance: two clusters on it mix their Celery queues and caches."""
    root = _envs(tmp_path)
    _edit(root, "fanc", ("project: cave-demo-fanc", "project: cave-demo-minnie"),
          ("celery_host: 10.93.0.4", "celery_host: 10.91.0.4"))
    assert _problems(root) == []  # each cluster has its own VPC (daf-<name>-network): another instance
    _append(root, "fanc", "network:\n  name: shared-net\n")
    _append(root, "minnie", "network:\n  name: shared-net\n")
    found = _problems(root)
    assert len(found) == 2 and all("Memorystore host 10.91.0.4 (network shared-net)" in p for p in found), found
    assert {p.split(":")[0] for p in found} == {"environments/fanc.yaml", "environments/minnie.yaml"}
    line = _line(root, "fanc", "  celery_host: 10.91.0.4")
    assert any(p.startswith(f"environments/fanc.yaml:{line}:") for p in found)


def test_pubsub_names(tmp_path: Path) -> None:
    # Pub/Sub names derive from the cluster name, which is unique per file, so only two specs that claim one
    # name (a file-name mismatch, reported on its own) can collide; the rule still sees it.
    loaded = load_all(_envs(tmp_path))
    minnie = loaded["minnie"]
    topics = [w for w in writes(minnie.spec) if w.kind == "pubsub-topic"]
    assert ("cave-demo-minnie", "minnie_PCG_EDIT") in {w.key for w in topics}
    found = list(shared_data({"minnie": (minnie.spec, minnie.doc), "other": (minnie.spec, minnie.doc)}))
    assert any("Pub/Sub topic minnie_PCG_EDIT (project cave-demo-minnie) is also written by cluster other" in p.message
               for p in found)
    alone = list(shared_data({"minnie": (minnie.spec, minnie.doc), "fanc": (loaded["fanc"].spec, loaded["fanc"].doc)}))
    assert alone == []
