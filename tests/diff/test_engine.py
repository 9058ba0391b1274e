"""Diff scenarios on real git repositories and real kustomize renders, in every output format."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from compiler.diff.compare import _service, diff_cluster, diff_object, diff_values, generated_names
from compiler.diff.documents import document_stub, split_documents
from compiler.diff.engine import diff_ref
from compiler.diff.model import Change, DiffResult
from compiler.diff.report import GITHUB_COMMENT_LIMIT, format_markdown, format_result
from compiler.main import main
from compiler.render.hashing import InputHasher
from compiler.render.jobs import render_cluster
from compiler.render.manifests import describe, object_id, parse_objects
from compiler.render.sources import FsSource, GitSource, clusters_in, worktree_source
from tests.support.render import (
    EXTERNAL_SECRET,
    GitRepo,
    make_repo,
    overlay,
    service_base,
)

SENTINEL = "s3ntinel-Value-9f8e7d6c5b"
FORMATS = ("text", "markdown", "json")

CHANGE = {
    "type": "object",
    "required": ["path", "op", "old", "new", "redacted"],
    "properties": {
        "path": {"type": "string"},
        "old": {},
        "new": {},
        "op": {"enum": ["added", "removed", "changed", "reordered"]},
        "redacted": {"type": "boolean"},
    },
    "additionalProperties": False,
}
OBJECT = {
    "type": "object",
    "required": ["group", "kind", "namespace", "name", "service", "status", "old_name", "new_name", "changes", "notes"],
    "properties": {
        **{k: {"type": "string"} for k in ("group", "kind", "namespace", "name", "service")},
        "status": {"enum": ["added", "removed", "changed"]},
        "old_name": {"type": ["string", "null"]},
        "new_name": {"type": ["string", "null"]},
        "changes": {"type": "array", "items": CHANGE},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}
STATUS = {"enum": ["added", "removed", "changed", "unchanged"]}
IDENT = {k: {"type": "string"} for k in ("cluster", "kind", "namespace", "name")}
# The schema documented in compiler/diff/__init__.py, written out independently.
DIFF_SCHEMA = {
    "type": "object",
    "required": ["version", "base", "changed", "summary", "images", "argocd", "matrix", "clusters"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "base": {"type": "object", "required": ["ref", "commit"]},
        "changed": {"type": "boolean"},
        "summary": {
            "type": "object",
            "properties": {
                "clusters": {
                    "type": "object",
                    "required": ["added", "removed", "changed", "unchanged"],
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "objects": {
                    "type": "object",
                    "required": ["added", "removed", "changed"],
                    "additionalProperties": {"type": "integer"},
                },
            },
        },
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [*IDENT, "container", "old", "new"],
                "properties": {**IDENT, "old": {"type": ["string", "null"]}, "new": {"type": ["string", "null"]}},
            },
        },
        "argocd": {
            "type": "array",
            "items": {"type": "object", "required": [*IDENT, "annotation", "old", "new"]},
        },
        "warnings": {"type": "array", "items": {"type": "string"}},
        "versions": {"type": "array", "items": {
            "type": "object", "required": ["service", "cluster", "old", "new"], "additionalProperties": False,
            "properties": {"service": {"type": "string"}, "cluster": {"type": "string"},
                           "old": {"type": ["string", "null"]}, "new": {"type": ["string", "null"]}}}},
        "applications": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["kind", "name", "cluster", "status", "summary", "changes", "other"],
            "properties": {"kind": {"type": "string"}, "name": {"type": "string"},
                           "cluster": {"type": ["string", "null"]}, "status": {"enum": ["added", "removed", "changed"]},
                           "summary": {"type": "string"}, "other": {"type": "array", "items": {"type": "string"}},
                           "changes": {"type": "array", "items": {
                               "type": "object", "required": ["field", "old", "new"], "additionalProperties": False,
                               "properties": {"field": {"type": "string"}, "old": {"type": ["string", "null"]},
                                              "new": {"type": ["string", "null"]}}}}}}},
        "waves": {"type": "object", "required": ["before", "after"], "additionalProperties": False,
                  "properties": {side: {"type": "array", "items": {
                      "type": "object", "additionalProperties": False,
                      "required": ["kind", "name", "cluster", "wave", "what", "destination"],
                      "properties": {"kind": {"type": "string"}, "name": {"type": "string"},
                                     "cluster": {"type": ["string", "null"]}, "wave": {"type": "integer"},
                                     "what": {"type": "string"}, "destination": {"type": "string"}}}}
                                 for side in ("before", "after")}},
        "matrix": {
            "type": "object",
            "required": ["services", "clusters", "cells"],
            "properties": {"cells": {"type": "object", "additionalProperties": {"additionalProperties": STATUS}}},
        },
        "clusters": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "status", "rendered", "unchanged_objects", "objects"],
                "properties": {
                    "name": {"type": "string"},
                    "status": STATUS,
                    "rendered": {"type": "boolean"},
                    "unchanged_objects": {"type": "integer"},
                    "objects": {"type": "array", "items": OBJECT},
                    "new_cluster": {  # only for an added cluster
                        "type": "object", "required": ["objects", "images", "versions"], "additionalProperties": False,
                        "properties": {
                            "objects": {"type": "object", "additionalProperties": {"type": "integer"}},
                            "images": {"type": "array", "items": {
                                "type": "object", "required": ["image", "services"], "additionalProperties": False,
                                "properties": {"image": {"type": "string"},
                                               "services": {"type": "array", "items": {"type": "string"}}}}},
                            "versions": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                    },
                },
                "additionalProperties": False,
            },
        },
    },
}


def run_diff(repo: GitRepo, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["-C", str(repo.root), "diff", *args])
    return code, capsys.readouterr().out


def json_diff(repo: GitRepo, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out = run_diff(repo, capsys, "--format", "json", *args)
    data = json.loads(out)
    jsonschema.validate(data, DIFF_SCHEMA)
    assert data["changed"] == (code == 1)
    return code, data


def objects(data: dict[str, Any], cluster: str) -> dict[str, dict[str, Any]]:
    [found] = [c for c in data["clusters"] if c["name"] == cluster]
    return {f"{o['kind']}/{o['name']}": o for o in found["objects"]}


def cluster_status(data: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {c["name"]: (c["status"], c["rendered"]) for c in data["clusters"]}


# --------------------------------------------------------------------------- scenarios


def test_no_change_renders_nothing(fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    code, data = json_diff(fleet, capsys, "--no-cache")
    assert code == 0
    assert diff_ref(fleet.root, "HEAD", use_cache=False).how.renders == 0  # identical hashes: nothing rendered
    assert cluster_status(data) == {"minnie": ("unchanged", False), "pinky": ("unchanged", False)}
    code, text = run_diff(fleet, capsys)
    assert code == 0 and "clusters: 2 unchanged" in text


def test_comment_only_change_renders_but_reports_no_change(
    fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    path = fleet.root / "overlays/minnie/kustomization.yaml"
    path.write_text("# regenerated\n" + path.read_text())
    code, data = json_diff(fleet, capsys)
    assert code == 0
    assert cluster_status(data) == {"minnie": ("unchanged", True), "pinky": ("unchanged", False)}


def test_version_bump(fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    fleet.write(overlay("minnie", {"annotationengine": "v2", "guidebook": "v1"}))
    code, data = json_diff(fleet, capsys)
    assert code == 1
    assert cluster_status(data) == {"minnie": ("changed", True), "pinky": ("unchanged", False)}
    assert data["images"] == [
        {
            "cluster": "minnie",
            "kind": "Deployment",
            "namespace": "default",
            "name": "annotationengine",
            "container": "annotationengine",
            "old": "ghcr.io/cave/annotationengine:v1",
            "new": "ghcr.io/cave/annotationengine:v2",
        }
    ]
    [obj] = objects(data, "minnie").values()
    assert obj["changes"] == [
        {
            "path": "spec.template.spec.containers[name=annotationengine].image",
            "op": "changed",
            "old": "ghcr.io/cave/annotationengine:v1",
            "new": "ghcr.io/cave/annotationengine:v2",
            "redacted": False,
        }
    ]
    assert data["matrix"]["cells"] == {"annotationengine": {"minnie": "changed"}, "guidebook": {"minnie": "unchanged"}}
    _, text = run_diff(fleet, capsys, "--color", "never")
    assert text.index("Images") < text.index("Services × clusters") < text.index("minnie (changed)")
    assert "ghcr.io/cave/annotationengine: v1 → v2  [minnie]" in text


def test_replica_change(fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    fleet.write(overlay("pinky", {"annotationengine": "v1", "guidebook": "v1"}, replicas={"guidebook": 3}))
    code, data = json_diff(fleet, capsys)
    assert code == 1
    assert [c["path"] for c in objects(data, "pinky")["Deployment/guidebook"]["changes"]] == ["spec.replicas"]
    _, text = run_diff(fleet, capsys)
    assert "spec.replicas: 1 → 3" in text


def test_service_disabled_lists_every_removed_object(
    fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    fleet.write(overlay("minnie", {"annotationengine": "v1"}))
    fleet.write({"overlays/minnie/configs/guidebook.cfg": None})
    code, data = json_diff(fleet, capsys)
    assert code == 1
    found = objects(data, "minnie")
    assert sorted(found) == [
        "ConfigMap/guidebook-config",
        "Deployment/guidebook",
        "ExternalSecret/guidebook-secrets",
        "HorizontalPodAutoscaler/guidebook",
        "Service/guidebook",
    ]
    assert {o["status"] for o in found.values()} == {"removed"}
    assert data["matrix"]["cells"]["guidebook"] == {"minnie": "removed"}
    _, text = run_diff(fleet, capsys)
    assert "- Deployment/default/guidebook" in text


def test_service_enabled(fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    fleet.write(service_base("dash"))
    fleet.write(overlay("pinky", {"annotationengine": "v1", "guidebook": "v1", "dash": "v3"}))
    code, data = json_diff(fleet, capsys)
    assert code == 1
    found = objects(data, "pinky")
    assert len(found) == 5 and {o["status"] for o in found.values()} == {"added"}
    assert {o["service"] for o in found.values()} == {"dash"}
    assert data["matrix"]["cells"]["dash"] == {"pinky": "added"}
    assert cluster_status(data)["minnie"] == ("unchanged", False)  # a new base does not touch minnie


def test_config_change_behind_hash_suffix(
    fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    fleet.write({"overlays/minnie/configs/guidebook.cfg": "LOG_LEVEL=debug\nSERVICE=guidebook\n"})
    code, data = json_diff(fleet, capsys)
    assert code == 1
    found = objects(data, "minnie")
    assert sorted(found) == ["ConfigMap/guidebook-config", "Deployment/guidebook"]
    cm = found["ConfigMap/guidebook-config"]
    assert cm["status"] == "changed"
    assert [c["path"] for c in cm["changes"]] == ['data["guidebook.cfg"]']
    assert cm["old_name"] != cm["new_name"] and cm["new_name"].startswith("guidebook-config-")
    deploy = found["Deployment/guidebook"]
    assert deploy["changes"] == []  # the reference to the new name is not a change of its own
    assert deploy["notes"] == [f"pods roll: ConfigMap guidebook-config changed (now {cm['new_name']})"]
    _, text = run_diff(fleet, capsys)
    assert "-LOG_LEVEL=info" in text and "+LOG_LEVEL=debug" in text


def test_secret_values_never_printed(
    fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    # Even if a value ever reached the rendered output, the diff must not show it.
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: legacy, labels: {cave.io/service: guidebook}}\n"
        f"data: {{OLD: {base64.b64encode(b'old-' + SENTINEL.encode()).decode()}}}\n"
    )
    fleet.write({"base/guidebook/secret.yaml": secret})
    kfile = fleet.root / "base/guidebook/kustomization.yaml"
    kfile.write_text(kfile.read_text().replace("externalsecret.yaml]", "externalsecret.yaml, secret.yaml]"))
    fleet.commit("legacy secret")
    es = EXTERNAL_SECRET.format(svc="guidebook").replace(
        "  target: {name: guidebook-secrets}\n",
        "  target:\n    name: guidebook-secrets\n    template:\n      data:\n"
        f"        config.py: 'TOKEN = \"{SENTINEL}\"'\n",
    )
    es += "  - secretKey: NEW_TOKEN\n    remoteRef: {key: guidebook-new-token}\n"
    encoded = base64.b64encode(SENTINEL.encode()).decode()
    fleet.write(
        {
            "base/guidebook/externalsecret.yaml": es,
            "base/guidebook/secret.yaml": secret.replace("\ndata: {", f"\ndata: {{NEW: {encoded}, "),
        }
    )
    outputs = {fmt: run_diff(fleet, capsys, "--format", fmt) for fmt in FORMATS}
    for fmt, (code, out) in outputs.items():
        assert code == 1, fmt
        assert SENTINEL not in out and encoded not in out, fmt
        assert "old-" + SENTINEL[:6] not in out, fmt
    data = json.loads(outputs["json"][1])
    found = objects(data, "minnie")
    assert {c["path"]: (c["op"], c["redacted"]) for c in found["Secret/legacy"]["changes"]} == {
        "data.NEW": ("added", True)
    }
    es_changes = {c["path"]: c for c in found["ExternalSecret/guidebook-secrets"]["changes"]}
    assert es_changes['spec.target.template.data["config.py"]']["redacted"] is True
    assert es_changes['spec.target.template.data["config.py"]']["new"] is None
    assert es_changes["spec.data[secretKey=NEW_TOKEN]"]["op"] == "added"  # key names are shown
    assert "data.NEW: added (secret value not shown)" in outputs["text"][1]
    assert "(secret value not shown)" in outputs["markdown"][1]


def test_secret_field_changes_are_redacted() -> None:
    def es(template: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "e"},
            "spec": {"target": {"name": "t", "template": template}},
        }

    old = es({"templateFrom": [{"literal": f"a={SENTINEL}"}], "data": {"k": SENTINEL, "same": "x"}})
    new = es({"templateFrom": [{"literal": "a=other"}], "data": {"k": "changed", "same": "x"}})
    changes = diff_object("ExternalSecret", old, new)
    assert [(c.path, c.op, c.redacted, c.old, c.new) for c in changes] == [
        ("spec.target.template.data.k", "changed", True, None, None),
        ("spec.target.template.templateFrom", "changed", True, None, None),
    ]
    result = DiffResult("HEAD", "0" * 40, [diff_cluster("c", [old], [new])])
    for fmt in FORMATS:
        assert SENTINEL not in format_result(result, fmt)


def test_cluster_added(fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    fleet.write(overlay("brain", {"guidebook": "v7"}))
    code, data = json_diff(fleet, capsys)
    assert code == 1
    assert data["summary"]["clusters"]["added"] == ["brain"]
    found = objects(data, "brain")
    assert len(found) == 5 and {o["status"] for o in found.values()} == {"added"}


def test_cluster_removed_lists_every_object(
    fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    before = render_cluster(fleet.root, "pinky").objects
    fleet.git("rm", "-rq", "overlays/pinky", "environments/pinky.yaml")
    code, data = json_diff(fleet, capsys)
    assert code == 1
    assert data["summary"]["clusters"]["removed"] == ["pinky"]
    found = objects(data, "pinky")
    assert len(found) == len(before) == 10
    assert {o["status"] for o in found.values()} == {"removed"}
    for fmt in ("text", "markdown"):
        _, out = run_diff(fleet, capsys, "--format", fmt)
        assert "pinky" in out.split("minnie")[0] or "Removed clusters" in out or "REMOVED clusters" in out
        for obj in before:
            assert describe(obj) in out, (fmt, describe(obj))


def test_base_change_affects_all_clusters(
    fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    svc = fleet.root / "base/annotationengine/service.yaml"
    svc.write_text(svc.read_text().replace("port: 80,", "port: 8080,"))
    code, data = json_diff(fleet, capsys)
    assert code == 1
    assert cluster_status(data) == {"minnie": ("changed", True), "pinky": ("changed", True)}
    for cluster in ("minnie", "pinky"):
        [change] = objects(data, cluster)["Service/annotationengine"]["changes"]
        assert (change["path"], change["old"], change["new"]) == ("spec.ports[name=http].port", 80, 8080)
    # Identical changes in both clusters share one matrix column.
    _, text = run_diff(fleet, capsys)
    assert "minnie, pinky" in text


def test_argocd_sync_wave_change_called_out(
    fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    hpa = fleet.root / "base/guidebook/hpa.yaml"
    hpa.write_text(
        hpa.read_text().replace(
            "  name: guidebook\n", "  name: guidebook\n  annotations:\n    argocd.argoproj.io/sync-wave: '2'\n", 1
        )
    )
    code, data = json_diff(fleet, capsys, "minnie")
    assert code == 1
    assert [c["name"] for c in data["clusters"]] == ["minnie"]
    assert [(a["name"], a["annotation"], a["old"], a["new"]) for a in data["argocd"]] == [
        ("guidebook", "argocd.argoproj.io/sync-wave", None, "2")
    ]
    _, text = run_diff(fleet, capsys, "minnie")
    assert "Argo CD sync waves and hooks" in text
    assert "minnie: HorizontalPodAutoscaler/default/guidebook: argocd.argoproj.io/sync-wave (none) → 2" in text


def test_default_base_is_merge_base_with_origin_main(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    origin = tmp_path / "origin.git"
    work = make_repo(tmp_path / "work", {**service_base("guidebook"), **overlay("minnie", {"guidebook": "v1"})})
    work.git("init", "-q", "--bare", str(origin))
    work.git("remote", "add", "origin", str(origin))
    work.git("push", "-q", "origin", "main")
    work.git("fetch", "-q", "origin")
    work.git("checkout", "-q", "-b", "bump")
    work.write(overlay("minnie", {"guidebook": "v2"}))
    work.commit("bump guidebook")
    # Committed on the branch: HEAD has no change, the merge-base with origin/main does.
    code, data = json_diff(work, capsys)
    assert code == 1
    assert data["base"]["ref"] == "merge-base origin/main HEAD"
    assert [i["new"] for i in data["images"]] == ["ghcr.io/cave/guidebook:v2"]
    assert run_diff(work, capsys, "--base", "HEAD")[0] == 0


def test_bad_input_exits_2(fleet: GitRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["-C", str(fleet.root), "diff", "--base", "no-such-ref"]) == 2
    assert main(["-C", str(fleet.root), "diff", "brain"]) == 2
    (tmp_path / "plain").mkdir()
    assert main(["-C", str(tmp_path / "plain"), "diff"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "unknown git ref 'no-such-ref' (fetch it, or pass an existing --base REF)",
        "overlays/brain: unknown cluster 'brain' (known: minnie, pinky; a cluster is a file environments/<name>.yaml)",
        f"{tmp_path / 'plain'} is not inside a git repository (run from the repository, or pass -C ROOT)",
    ]


def test_kustomize_failure_exits_2(fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    fleet.write({"overlays/minnie/kustomization.yaml": "resources: [nothere.yaml]\n"})
    assert main(["-C", str(fleet.root), "diff"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("overlays/minnie: kustomize build failed: ")


# --------------------------------------------------------------------------- formats


def test_formats_of_one_scenario(fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object) -> None:
    fleet.write(overlay("minnie", {"annotationengine": "v2", "guidebook": "v1"}))
    fleet.write({"overlays/pinky/configs/guidebook.cfg": "LOG_LEVEL=debug\n"})
    _, plain = run_diff(fleet, capsys, "--color", "never")
    _, colored = run_diff(fleet, capsys, "--color", "always")
    _, auto = run_diff(fleet, capsys)  # captured stdout is not a tty
    assert "\033[" not in plain and "\033[" in colored and auto == plain
    _, markdown = run_diff(fleet, capsys, "--format", "markdown")
    assert len(markdown) < 65_000
    assert markdown.count("<details>") == markdown.count("</details>") == 2
    assert "Cut to fit" not in markdown
    assert "| ghcr.io/cave/annotationengine: v1 → v2 | minnie |" in markdown
    json_diff(fleet, capsys)


def test_markdown_cuts_details_never_summary(
    fleet: GitRepo, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    for cluster in ("minnie", "pinky"):
        fleet.write(overlay(cluster, {"annotationengine": "v2", "guidebook": "v2"}, replicas={"guidebook": 4}))
    _, full = run_diff(fleet, capsys, "--format", "markdown")
    summary = full.split("<details>")[0]
    limit = len(summary) + 900
    _, cut = run_diff(fleet, capsys, "--format", "markdown", "--max-chars", str(limit))
    assert len(cut) < limit
    assert cut.startswith(summary)
    assert "**Cut to fit a GitHub comment" in cut
    assert "pinky" in cut.split("**Cut to fit")[1]


def test_markdown_huge_diff_stays_under_github_limit() -> None:
    objs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}"}, "data": {"k": "x" * 200}}
        for i in range(400)
    ]
    changed = [{**o, "data": {"k": "y" * 200}} for o in objs]
    clusters = [diff_cluster(f"c{i}", objs, changed) for i in range(3)]
    result = DiffResult("HEAD", "0" * 40, clusters)
    text = format_markdown(result)
    assert len(text) < GITHUB_COMMENT_LIMIT
    assert "Cut to fit" in text and "c2" in text.split("Cut to fit")[1]


# --------------------------------------------------------------------------- field diffs


def test_named_lists_match_by_name() -> None:
    old = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    new = {"env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}
    assert list(diff_values(old, new)) == [
        Change("env[name=A]", "removed", {"name": "A", "value": "1"}, None),
        Change("env[name=B].value", "changed", "2", "3"),
        Change("env[name=C]", "added", None, {"name": "C", "value": "4"}),
    ]
    assert list(diff_values({"args": ["a", "b"]}, {"args": ["a", "c", "d"]})) == [
        Change("args[1]", "changed", "b", "c"),
        Change("args[2]", "added", None, "d"),
    ]
    reordered = list(diff_values([{"name": "x"}, {"name": "y"}], [{"name": "y"}, {"name": "x"}]))
    assert reordered == [Change("", "reordered", ["x", "y"], ["y", "x"])]


def test_suffix_stripping_needs_a_kustomize_hash_or_a_match() -> None:
    def cm(name: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "d"}}

    renames = generated_names([cm("app-config-8t2h5g9b4k"), cm("release-2024abcdef")], [])
    assert renames == {("ConfigMap", "d", "app-config-8t2h5g9b4k"): "app-config"}
    matched = generated_names([cm("release-2024abcdef")], [cm("release-2025abcdef")])
    assert matched == {("ConfigMap", "d", "release-2024abcdef"): "release"}


def test_stubs_match_parsed_identity(fleet: GitRepo, kustomize_tool: object) -> None:
    text = render_cluster(fleet.root, "minnie").text
    for doc in split_documents(text):
        [obj] = parse_objects(doc)
        stub = document_stub(doc)
        assert stub is not None
        assert object_id(stub) == object_id(obj)
        assert _service(stub) == _service(obj)


def test_commit_and_worktree_hash_alike(fleet: GitRepo) -> None:
    commit = fleet.git("rev-parse", "HEAD").strip()
    old = InputHasher(GitSource(fleet.root, commit))
    new = InputHasher(worktree_source(fleet.root))
    plain = InputHasher(FsSource(fleet.root))  # no git index: reads every file
    for cluster in ("minnie", "pinky"):
        rel = f"overlays/{cluster}"
        assert old.overlay_hash(rel, "5") == new.overlay_hash(rel, "5") == plain.overlay_hash(rel, "5")
    assert clusters_in(GitSource(fleet.root, commit)) == ["minnie", "pinky"]


def test_project_in_a_subdirectory_of_the_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kustomize_tool: object
) -> None:
    files = {**service_base("guidebook"), **overlay("minnie", {"guidebook": "v1"})}
    repo = make_repo(tmp_path / "mono", {f"deploy/{rel}": text for rel, text in files.items()})
    project = GitRepo(repo.root / "deploy")
    assert run_diff(project, capsys)[0] == 0
    project.write(overlay("minnie", {"guidebook": "v2"}))
    code, data = json_diff(project, capsys)
    assert code == 1
    assert [i["new"] for i in data["images"]] == ["ghcr.io/cave/guidebook:v2"]
