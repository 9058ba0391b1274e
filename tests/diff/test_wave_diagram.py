"""The PR comment's "Sync order" (compiler/diff/report.py): the Argo CD sync waves a change adds, removes or moves
Applications in, drawn before and after from both sides' overlays/argocd/ (compiler/build/waves.py), only the
clusters the change touches (a note counts the others); nothing for a change that leaves the order alone; the
diagrams give way before the comment outgrows GitHub's limit, with a note that gets them back. The same bytes under
any hash seed. On git copies of the examples, with real builds (and real kustomize where a cluster renders)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.diff.engine import diff_ref
from compiler.diff.report import WHOLE_COMMENT_CHARS, format_markdown
from compiler.main import main
from tests.support import REPO
from tests.support.fleet import copy_fleet
from tests.support.render import GitRepo, make_repo

CAVE_MINNIE = "  name: cave-minnie\n  namespace: argocd\n"


def build(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(root), "build"]) == 0, capsys.readouterr().err
    capsys.readouterr()


def diff(root: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> str:
    code = main(["-C", str(root), "diff", "--base", "HEAD", "--format", fmt])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    return captured.out


def diagrams(md: str) -> dict[str, str]:
    """"before"/"after" → the ```mermaid block under that title in the comment's Sync order section."""
    out = {}
    for title, side in (("Before (", "before"), ("After (this branch):", "after")):
        if title in md:
            out[side] = md.split(title, 1)[1].split("```mermaid\n", 1)[1].split("\n```", 1)[0]
    return out


def labels(source: str) -> dict[str, str]:
    return dict(re.findall(r'^\s*(n_\w+)[\[\(/]+"([^"]*)"', source, re.MULTILINE))


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    """The examples committed with cave-minnie in wave 2 (a hand edit of overlays/argocd/), the working tree as
    build writes it: the change moves cave-minnie from wave 2 to wave 3."""
    root = copy_fleet(REPO, tmp_path_factory.mktemp("moved") / "repo")
    path = root / "overlays" / "argocd" / "clusters" / "minnie.yaml"
    text = path.read_text(encoding="utf-8")
    before = CAVE_MINNIE + "  labels:\n    app.kubernetes.io/managed-by: cave-gitops\n    cave.io/cluster: minnie\n" \
                           "    cave.io/component: cave\n  annotations:\n    argocd.argoproj.io/sync-wave: '3'\n"
    assert text.count(before) == 1
    path.write_text(text.replace(before, before.replace("'3'", "'2'")), encoding="utf-8")
    repo = make_repo(root, {})
    path.write_text(text, encoding="utf-8")
    return repo


def test_moved_application(moved: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    md = diff(moved.root, capsys, "markdown")
    assert "**Sync order** (Argo CD sync waves 2, 3 of `overlays/argocd/`" in md
    assert md.index("**Argo CD Applications**") < md.index("**Sync order**")
    assert md.count("```mermaid\n") == 2
    before, after = diagrams(md)["before"], diagrams(md)["after"]
    old, new = labels(before), labels(after)
    # before: minnie's CAVE Application in wave 2 beside its add-ons; after: in wave 3. Only minnie is drawn: fanc,
    # which the change leaves alone, is counted
    assert old["n_wave_2_c_minnie"] == ("minnie#58; cert-manager, external-secrets, ingress-nginx, custom-metrics, "
                                        "#126; CAVE")
    assert old["n_wave_2_unchanged"] == "1 unchanged cluster" and old["n_wave_3_unchanged"] == "1 unchanged cluster"
    assert "n_wave_3_c_fanc" not in old and "n_wave_3_c_minnie" not in old and "n_wave_2_c_fanc" not in old
    assert new["n_wave_3_c_minnie"] == "minnie#58; #126; CAVE" and new["n_wave_3_unchanged"] == "1 unchanged cluster"
    assert new["n_wave_2_unchanged"] == "2 unchanged clusters" and "n_wave_2_c_minnie" not in new
    assert ":::changed" in before and ":::changed" in after
    # only the waves the change touches
    for source in (before, after):
        assert "wave_0" not in source and "wave__1" not in source
        assert 'n_wave_2_head -->|"when healthy"| n_wave_3_head' in source

    data = json.loads(diff(moved.root, capsys, "json"))
    assert [(a["name"], a["wave"]) for a in data["waves"]["before"]] == [("cave-minnie", 2)]
    assert data["waves"]["after"] == [{"kind": "Application", "name": "cave-minnie", "cluster": "minnie", "wave": 3,
                                       "what": "cave", "destination": "daf-minnie/default"}]
    assert "Sync order" not in diff(moved.root, capsys, "text")  # text says it in its Applications lines


def test_cut_keeps_the_comment_under_the_limit(moved: GitRepo) -> None:
    result = diff_ref(moved.root, "HEAD", use_cache=False)
    assert result.sync_order is not None
    full = format_markdown(result)
    without = format_markdown(dataclasses.replace(result, sync_order=None))
    assert "Sync order" not in without and full.count("```mermaid") == 2
    seen = set()
    for limit in range(len(without) + 700, 3 * len(full), 100):
        md = format_markdown(result, limit)
        assert len(md) <= limit, limit
        blocks = md.count("```mermaid\n")
        assert md.count("```") == 2 * (blocks + md.count("```diff"))  # every block whole
        if blocks == 1:  # the new order is the one kept
            assert "After (this branch):" in md and "Before (" not in md
            assert "_The before diagram left out to fit a GitHub comment" in md
        elif blocks == 0 and "**Sync order**" in md:
            assert "_The before and after diagrams left out to fit a GitHub comment" in md
        if blocks < 2 and "**Sync order**" in md:  # the note gets the diagrams back
            assert (f"run `python -m compiler diff --base {result.base_commit[:12]} --format markdown --max-chars "
                    f"{WHOLE_COMMENT_CHARS}` for") in md
        seen.add(blocks)
    assert seen == {0, 1, 2}
    assert format_markdown(result, WHOLE_COMMENT_CHARS).count("```mermaid\n") == 2


def test_added_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    repo = make_repo(copy_fleet(REPO, tmp_path / "repo"), {})
    spec = (repo.root / "environments" / "fanc.yaml").read_bytes()
    (repo.root / "environments" / "fanc.yaml").unlink()
    build(repo.root, capsys)
    repo.commit("without fanc")
    (repo.root / "environments" / "fanc.yaml").write_bytes(spec)
    build(repo.root, capsys)

    md = diff(repo.root, capsys, "markdown")
    assert "**Sync order** (Argo CD sync waves 2, 3 of" in md
    before, after = diagrams(md)["before"], diagrams(md)["after"]
    old = labels(before)
    assert "fanc" not in before and "minnie" not in before  # nothing of the waves changes there yet
    assert old["n_wave_2_unchanged"] == old["n_wave_3_unchanged"] == "1 unchanged cluster"
    new = labels(after)
    assert new["n_wave_2_c_fanc"] == ("fanc#58; + cert-manager, + external-secrets, + ingress-nginx, "
                                      "+ custom-metrics")
    assert new["n_wave_3_c_fanc"] == "fanc#58; + CAVE" and new["n_wave_3_unchanged"] == "1 unchanged cluster"
    assert ':::added' in after and "classDef added " in after and ":::added" not in before
    data = json.loads(diff(repo.root, capsys, "json"))
    assert data["waves"]["before"] == []
    assert sorted(a["name"] for a in data["waves"]["after"]) == sorted(
        ["cave-fanc", *(f"cave-fanc-{a}" for a in ("cert-manager", "external-secrets", "ingress-nginx",
                                                    "custom-metrics"))])


def test_versions_and_charts_leave_the_order_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   kustomize_tool: object) -> None:
    repo = make_repo(copy_fleet(REPO, tmp_path / "repo"), {})
    for rel, old, new in (("environments/minnie.yaml", "version: 4.14.1", "version: 4.15.0"),
                          ("gitops.yaml", "version: v1.19.0", "version: v1.19.1")):
        path = repo.root / rel
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1
        path.write_text(text.replace(old, new), encoding="utf-8")
    build(repo.root, capsys)
    md = diff(repo.root, capsys, "markdown")
    assert "4.14.1 → 4.15.0 |" in md and "| cert_manager | v1.19.0 → v1.19.1 |" in md  # a version and a chart
    assert "**Argo CD Applications**" in md
    assert "Sync order" not in md and "```mermaid" not in md
    assert json.loads(diff(repo.root, capsys, "json"))["waves"] == {"before": [], "after": []}


def test_the_comment_is_the_same_under_any_hash_seed(moved: GitRepo) -> None:
    outputs = [subprocess.run([sys.executable, "-m", "compiler", "-C", str(moved.root), "diff", "--base", "HEAD",
                               "--format", "markdown", "--no-cache"], cwd=REPO, capture_output=True, text=True,
                              timeout=300, check=False, env={**os.environ, "PYTHONHASHSEED": seed})
               for seed in ("1", "2")]
    assert [p.returncode for p in outputs] == [1, 1], outputs[0].stderr
    assert outputs[0].stdout == outputs[1].stdout and outputs[0].stdout.count("```mermaid\n") == 2
