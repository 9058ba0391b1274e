"""The version-bump bot end to end: the common cases (tests/bot/world.py has the fakes and the bare remote)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from compiler import github
from compiler.bot.images import RegistryClient
from compiler.bot.upstream import BOT_EMAIL, BOT_NAME
from compiler.errors import UserError
from compiler.main import main
from compiler.spec import semver
from tests.bot.world import ANNOTATION, MATERIALIZE, SCHEMA, World, bot_pulls, closed_port, git, make_world
from tests.support import REPO
from tests.support.fake_github import TOKEN
from tests.support.fake_registry import FakeRegistry

# --------------------------------------------------------------------------- scenarios


def test_first_run_opens_one_pr_second_run_is_a_no_op(world: World) -> None:
    w = world
    assert w.run() == 0 and "nothing to bump" in w.said
    assert w.gh.writes() == [] and list(w.refs()) == ["refs/heads/main"]

    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0, w.said
    (pr,) = bot_pulls(w)
    assert pr["head"] == "cave-bot/materialize" and pr["base"] == "main"
    assert pr["title"] == "Bump materialize to 4.24.0"
    assert w.gh.labels[pr["number"]] == ["version-bump", "materialize"]

    # The spec changed in one scalar only (comments and layout kept); the overlays were rebuilt.
    before = (w.clone / "environments" / "minnie.yaml").read_text()
    after = w.show("cave-bot/materialize", "environments/minnie.yaml")
    assert after == before.replace("  materializationengine:\n    version: 4.23.0",
                                   "  materializationengine:\n    version: 4.24.0")
    assert "#" in after and after.splitlines()[0] == before.splitlines()[0]
    assert "newTag: v4.24.0" in w.show("cave-bot/materialize", "overlays/minnie/kustomization.yaml")
    assert "newTag: v4.24.0" in w.show("cave-bot/materialize", "overlays/fanc/kustomization.yaml")
    log = git(w.remote, "log", "--format=%an <%ae>|%s", "main..cave-bot/materialize").splitlines()
    assert log == [f"{BOT_NAME} <{BOT_EMAIL}>|Bump materialize to 4.24.0"]

    body = pr["body"]
    assert body.startswith("<!-- cave-bot:set fanc/materializationengine=4.24.0,minnie/materializationengine=4.24.0")
    assert "| minnie | materializationengine | 4.23.0 | **4.24.0** |" in body
    assert f"https://github.example/{MATERIALIZE}/releases/tag/v4.24.0" in body
    assert f"- materializationengine 4.24.0 (fanc, minnie): pins `emannotationschemas==5.12.0` ([requirements.txt at " \
           f"v4.24.0](https://github.example/{MATERIALIZE}/blob/v4.24.0/requirements.txt)); the global cluster " \
           "already runs a compatible version" in body
    assert "### Rendered diff: `origin/main`" in body
    assert "### Rendered diff" in body and "4.24.0" in body.split("### Rendered diff")[1]
    assert "docker.io/caveconnectome/materializationengine:v4.24.0" in body
    assert "Deploy order" not in body and len(body) < github.COMMENT_LIMIT

    # Nothing new: no push, no API write, no comment.
    refs, writes = w.refs(), len(w.gh.writes())
    assert w.run() == 0
    assert w.refs() == refs and len(w.gh.writes()) == writes, w.gh.writes()[writes:]
    assert any("up to date" in line for line in w.said)


def test_newer_release_updates_the_same_pr(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0
    (first,) = bot_pulls(w)
    old_head = w.refs()["refs/heads/cave-bot/materialize"]

    w.release(MATERIALIZE, "v4.25.0-rc.1", "materializationengine", prerelease=True)  # not opted in: ignored
    w.release(MATERIALIZE, "v4.25.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0, w.said
    (pr,) = bot_pulls(w)
    assert pr["number"] == first["number"] and pr["title"] == "Bump materialize to 4.25.0"
    assert "**4.25.0**" in pr["body"] and "4.24.0 |" not in pr["body"]
    new_head = w.refs()["refs/heads/cave-bot/materialize"]
    assert new_head != old_head
    assert git(w.remote, "rev-list", "--count", "main..cave-bot/materialize").strip() == "1"  # replaced, not stacked
    assert "version: 4.25.0" in w.show("cave-bot/materialize", "environments/fanc.yaml")
    assert w.gh.bodies(pr["number"]) == []  # the body says it; no comment noise


def test_a_persons_commit_on_the_branch_is_never_overwritten(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0
    (pr,) = bot_pulls(w)
    theirs = w.human_commit("cave-bot/materialize", "environments/minnie.yaml",
                            "replicas: {min: 1, max: 4}", "replicas: {min: 2, max: 4}")

    assert w.run() == 0  # nothing newer: nothing to say
    assert w.refs()["refs/heads/cave-bot/materialize"] == theirs and w.gh.bodies(pr["number"]) == []

    w.release(MATERIALIZE, "v4.25.0", "materializationengine", schema_pin="5.12.0")
    writes = len(w.gh.writes())
    assert w.run() == 0
    assert w.refs()["refs/heads/cave-bot/materialize"] == theirs
    (comment,) = w.gh.bodies(pr["number"])
    assert "Dana Reviewer <dana@example.org>" in comment and "**4.25.0**" in comment
    assert "python -m compiler bump materialize 4.25.0 --cluster fanc --cluster minnie" in comment
    assert [m for m, _ in w.gh.writes()[writes:]] == ["POST"]  # the comment; the PR itself untouched

    assert w.run() == 0  # said once is enough
    assert len(w.gh.bodies(pr["number"])) == 1 and w.refs()["refs/heads/cave-bot/materialize"] == theirs


def test_service_needing_a_newer_schema_brings_the_global_bump_and_supersedes(world: World) -> None:
    w = world
    w.release(SCHEMA, "v5.13.0", "emannotationschemas")
    assert w.run() == 0
    (schema_pr,) = bot_pulls(w)
    assert schema_pr["head"] == "cave-bot/schema"

    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.13.0")
    assert w.run() == 0, w.said
    (pr,) = bot_pulls(w)
    assert pr["head"] == "cave-bot/materialize-schema"
    assert pr["title"] == "Bump schema to 5.13.0, materialize to 4.24.0"
    assert "version: 5.13.0" in w.show(pr["head"], "environments/global.yaml")
    assert "version: 4.24.0" in w.show(pr["head"], "environments/minnie.yaml")
    body = pr["body"]
    assert body.index("| global | emannotationschemas | 5.12.0 | **5.13.0**") < body.index("| fanc |")
    assert "the global cluster global is bumped to a compatible version in this change" in body
    assert "1. The global schema service first: global" in body and "2. Then the local clusters: fanc, minnie" in body
    assert set(w.gh.labels[pr["number"]]) == {"version-bump", "materialize", "schema"}

    closed = w.gh.pull_data[schema_pr["number"]]
    assert closed["state"] == "closed"
    assert f"Superseded by #{pr['number']}" in w.gh.bodies(schema_pr["number"])[0]


def test_release_whose_image_is_missing_is_not_proposed(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", None, schema_pin="5.12.0")
    assert w.run() == 0
    assert bot_pulls(w) == [] and list(w.refs()) == ["refs/heads/main"]
    assert any("materializationengine:v4.24.0 not in the registry" in line for line in w.said)

    w.release(MATERIALIZE, "v4.24.1", "materializationengine", schema_pin="5.12.0")
    w.release(MATERIALIZE, "v4.25.0", None, schema_pin="5.12.0")
    assert w.run() == 0
    (pr,) = bot_pulls(w)
    assert pr["title"] == "Bump materialize to 4.24.1"


def test_annotation_release_needing_a_schema_no_registry_has_is_held_back(world: World) -> None:
    w = world
    w.release(SCHEMA, "v5.14.0", None)  # released, but no image: the global cannot get it
    w.release(ANNOTATION, "v4.15.0", "annotationengine", schema_pin="5.14.0")
    assert w.run() == 0
    assert bot_pulls(w) == []
    assert any("it pins emannotationschemas==5.14.0" in line for line in w.said)


def test_rate_limits_and_server_errors_are_waited_out(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    reset = str(int(time.time()) + 3600)
    w.gh.fail(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, path="/releases")
    w.gh.fail(429, {"Retry-After": "7"}, path="/tags")
    w.gh.fail(502, path="/pulls")
    assert w.run() == 0, w.said
    assert w.sleeps == [30.0, 7.0, 1.0]  # an hour's reset capped at max_wait; retry-after; backoff
    assert len(bot_pulls(w)) == 1

    w.gh.fail(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, times=10)
    with pytest.raises(UserError, match=r"GitHub: reading CAVEconnectome/EMAnnotationSchemas: 403 API rate limit "
                                        r"exceeded \(a rate limit, not a missing permission: still limited after 4 "
                                        r"tries with waits of at most 30 s; run again later, or raise --max-wait\)"):
        w.run()


def test_upstream_down_fails_cleanly_and_pushes_nothing(world: World, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    client = github.client  # PyGithub's pause between requests (0.25 s) is politeness the fake does not need
    monkeypatch.setattr(github, "client", lambda url, token, **_: client(url, token, seconds_between_requests=0,
                                                                          seconds_between_writes=0))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", w.gh.api_url)
    monkeypatch.setenv("GITHUB_REPOSITORY", w.gh.repo)
    monkeypatch.setenv("CAVE_BOT_UPSTREAM_API_URL", f"http://127.0.0.1:{closed_port()}/api/v3")
    monkeypatch.setenv("CAVE_BOT_REGISTRY_URL", w.hub.url)
    assert main(["-C", str(w.clone), "bot", "--max-wait", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("GitHub: reading CAVEconnectome/EMAnnotationSchemas: cannot reach the API:"), err
    assert len(err.splitlines()) == 1
    assert list(w.refs()) == ["refs/heads/main"] and w.gh.writes() == []

    monkeypatch.setenv("CAVE_BOT_REGISTRY_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("CAVE_BOT_UPSTREAM_API_URL", w.gh.api_url)
    assert main(["-C", str(w.clone), "bot", "--max-wait", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "registry: asking for docker.io/caveconnectome/materializationengine:v4.24.0: cannot reach" in err
    assert list(w.refs()) == ["refs/heads/main"] and w.gh.writes() == []

    monkeypatch.setenv("CAVE_BOT_REGISTRY_URL", w.hub.url)
    assert main(["-C", str(w.clone), "bot", "--dry-run"]) == 0
    assert "cave-bot/materialize: Bump materialize to 4.24.0" in capsys.readouterr().out
    assert list(w.refs()) == ["refs/heads/main"] and w.gh.writes() == []


def test_cluster_policy_ranges_pins_and_prereleases(tmp_path: Path) -> None:
    edit = {
        "environments/minnie.yaml": ("  materializationengine:\n    version: 4.23.0",
                                     "  materializationengine:\n    version: 4.23.0\n    bump: ~4.23"),
        "environments/fanc.yaml": ("  annotationengine:\n    version: 4.14.1", "  annotationengine:\n    version: "
                                   "4.14.1\n    bump: {allow: ^4, prereleases: true}"),
        "environments/global.yaml": ("  emannotationschemas:\n    version: 5.12.0",
                                     "  emannotationschemas:\n    version: 5.12.0\n    bump: pinned"),
    }
    for w in make_world(tmp_path, edit):
        w.release(SCHEMA, "v5.13.0", "emannotationschemas")
        w.release(MATERIALIZE, "v4.23.2", "materializationengine", schema_pin="5.12.0")
        w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
        w.release(ANNOTATION, "v4.15.0-rc.1", "annotationengine", schema_pin="5.12.0", prerelease=True)
        assert w.run() == 0, w.said
        pulls = {p["head"]: p for p in bot_pulls(w)}
        assert sorted(pulls) == ["cave-bot/annotation", "cave-bot/materialize"]  # schema pinned: none
        body = pulls["cave-bot/materialize"]["body"]
        assert "| minnie | materializationengine | 4.23.0 | **4.23.2** |" in body
        assert "| fanc | materializationengine | 4.23.0 | **4.24.0** |" in body
        assert pulls["cave-bot/materialize"]["title"] == "Bump materialize to 4.24.0/4.23.2"
        assert "| fanc | annotationengine | 4.14.1 | **4.15.0-rc.1** |" in pulls["cave-bot/annotation"]["body"]
        assert "bump: ~4.23" in w.show("cave-bot/materialize", "environments/minnie.yaml")


def test_semver_order_and_ranges() -> None:
    tags = ["v4.10.0", "v4.9.0", "v4.10.0-rc.1", "vFastCsv2", "4.10.0-alpha", "v10.0.0"]
    versions = sorted((v for t in tags if (v := semver.parse(t))), key=lambda v: v.key())
    assert [str(v) for v in versions] == ["4.9.0", "4.10.0-alpha", "4.10.0-rc.1", "4.10.0", "10.0.0"]
    probes = ["0.6.0", "0.6.7", "0.7.0", "4.0.0", "4.20.0", "4.23.0", "4.23.9", "4.24.0", "4.99.1", "5.0.0"]
    cases = {"~4.23": ["4.23.0", "4.23.9"], "^4": probes[3:9], ">=4.20,<5": probes[4:9], ">4.23.0,<=5": probes[6:],
             "^0.6": ["0.6.0", "0.6.7"], "4.23.9": ["4.23.9"]}
    for text, allowed in cases.items():
        rng = semver.parse_range(text)
        assert [p for p in probes if rng.allows(semver.parse(p) or semver.Version(0, 0, 0))] == allowed, text
    for bad in ("~four", ">=4,oops", "4.2", ""):
        with pytest.raises(ValueError):
            semver.parse_range(bad)


def test_bad_policy_in_a_spec_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "r"
    root.mkdir()
    shutil.copytree(REPO / "environments", root / "environments")
    spec = root / "environments" / "minnie.yaml"
    spec.write_text(spec.read_text().replace("  materializationengine:\n    version: 4.23.0",
                                             "  materializationengine:\n    version: 4.23.0\n    bump: ~four"))
    assert main(["-C", str(root), "check"]) == 2
    err = capsys.readouterr().err
    assert "environments/minnie.yaml:" in err and "'four' is not a version" in err


def test_a_closed_proposal_is_not_reopened_until_a_newer_release(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0
    (pr,) = bot_pulls(w)
    w.gh.close(pr["number"])  # a person closed it without merging

    refs, writes = w.refs(), len(w.gh.writes())
    assert w.run() == 0
    assert bot_pulls(w) == [] and w.refs() == refs and len(w.gh.writes()) == writes
    assert f"cave-bot/materialize: #{pr['number']} proposed this and was closed by reviewer; waiting for a newer " \
           "release" in w.said

    w.release(MATERIALIZE, "v4.25.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0
    (again,) = bot_pulls(w)
    assert again["number"] != pr["number"] and again["title"] == "Bump materialize to 4.25.0"


def test_oci_registry_with_anonymous_token_handshake() -> None:
    hub = FakeRegistry()
    hub.push("cave-demo/materializationengine", "v4.24.0")
    try:
        sleeps: list[float] = []
        registry = RegistryClient(hub.url, github.Retry(sleep=sleeps.append))
        assert registry.exists("us-docker.pkg.dev/cave-demo", "materializationengine", "v4.24.0")
        assert "GET /token?service=fake&scope=repository%3Acave-demo%2Fmaterializationengine%3Apull" in hub.requests
        assert not registry.exists("us-docker.pkg.dev/cave-demo", "materializationengine", "v4.25.0")
        assert registry.exists("us-docker.pkg.dev/cave-demo", "materializationengine", "v4.24.0")  # cached
        assert len([r for r in hub.requests if r.startswith("HEAD ")]) == 4 and sleeps == []
    finally:
        hub.stop()
