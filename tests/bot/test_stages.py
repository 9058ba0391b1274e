"""Staged rollout (issue 14, item 8): a release goes to the canary stage first; the next stage is proposed once the
canary's merge has been on main for its soak and Argo CD reports its Application Healthy and Synced at that commit;
a Degraded canary stops the rollout with a comment on the merged pull request. Against the fake GitHub, the fake
Argo CD API, the fake registry and a real bare git remote; the bot's clock is injected."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler.errors import UserError
from compiler.spec.load import load_all
from compiler.spec.settings import load_settings
from tests.bot.world import MATERIALIZE, World, bot_pulls, git, make_world
from tests.support import REPO
from tests.support.fake_argocd import TOKEN, FakeArgoCd

MAT = "cave-bot/materialize"
MERGED = 1_800_000_000  # when the canary pull request is merged (epoch seconds, the merge commit's time)
HOUR = 3600


@pytest.fixture
def argocd() -> Iterator[FakeArgoCd]:
    fake = FakeArgoCd().start()
    yield fake
    fake.stop()


def staged_world(tmp: Path, argocd: FakeArgoCd, minnie_stage: str = "canary",
                 minnie_allow: str | None = None) -> Iterator[World]:
    allow = f", allow: '{minnie_allow}'" if minnie_allow else ""
    return make_world(tmp, edit={
        "gitops.yaml": ("argocd:\n", f"bump:\n  stages: [canary, main]\nargocd:\n  api_url: {argocd.url}\n"),
        "environments/minnie.yaml": ("  materializationengine:\n    version: 4.23.0\n",
                                     f"  materializationengine:\n    version: 4.23.0\n"
                                     f"    bump: {{stage: {minnie_stage}, soak: 24h{allow}}}\n"),
        "environments/fanc.yaml": ("  materializationengine:\n    version: 4.23.0\n",
                                   "  materializationengine:\n    version: 4.23.0\n    bump: {stage: main}\n"),
    })


@pytest.fixture
def world(tmp_path: Path, argocd: FakeArgoCd) -> Iterator[World]:
    yield from staged_world(tmp_path, argocd)


def run(w: World, now: float) -> int:
    w.said.clear()
    bot = w.bot()
    bot.clock = lambda: now
    bot.options.argocd_token = TOKEN
    return bot.run()


def merge(w: World, number: int, when: int) -> str:
    """A person merges the pull request with a merge commit (GitHub's default), which lands on main at `when`;
    the branch stays, as GitHub leaves it."""
    work = w.tmp / "merger"
    if not work.exists():
        git(w.tmp, "clone", "-q", str(w.remote), str(work))
    git(work, "fetch", "-q", "origin")
    git(work, "checkout", "-q", "-B", "main", "origin/main")
    env = {**os.environ, "GIT_AUTHOR_DATE": f"@{when} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000"}
    subprocess.run(["git", "-c", "user.name=Dana Reviewer", "-c", "user.email=dana@example.org", "merge", "-q",
                    "--no-ff", "-m", f"Merge pull request #{number} from cave/{MAT}", f"origin/{MAT}"],
                   cwd=work, env=env, check=True, capture_output=True)
    git(work, "push", "-q", "origin", "HEAD:refs/heads/main")
    sha = git(work, "rev-parse", "HEAD").strip()
    w.gh.merge(number, sha)
    return sha


def canary_merged(w: World, argocd: FakeArgoCd) -> tuple[dict[str, object], str, str]:
    """The first run proposes the canary stage only; the person merges it. (canary PR, seed commit, merge commit)"""
    seed = w.refs()["refs/heads/main"]
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert run(w, MERGED - HOUR) == 0, w.said
    (pr,) = bot_pulls(w)
    assert pr["head"] == MAT and pr["title"] == "Bump materialize to 4.24.0"
    assert "materializationengine 4.24.0 for fanc waits for stage canary (minnie) to run it first" in " ".join(
        w.said)
    assert argocd.requests == []  # the first stage has nothing before it to ask Argo CD about
    sha = merge(w, int(str(pr["number"])), MERGED)
    return pr, seed, sha


def test_a_release_goes_to_the_canary_first_then_the_next_stage_after_soak_and_health(
        world: World, argocd: FakeArgoCd) -> None:
    w = world
    writes = len(w.gh.writes())
    pr, seed, sha = canary_merged(w, argocd)
    n = int(str(pr["number"]))
    assert w.writes_after(writes) == [("POST", "/pulls"), ("POST", f"/issues/{n}/labels")]
    body = str(pr["body"])
    assert "| minnie | materializationengine | 4.23.0 | **4.24.0** |" in body and "| fanc |" not in body
    assert ("### Stage plan\n\nmaterializationengine 4.24.0:\n\n1. `canary`: minnie - **this pull request**\n"
            "2. `main`: fanc - proposed once `canary` has been on main for 24h and Argo CD reports cave-minnie "
            "Healthy and Synced with that commit or later deployed\n") in body
    assert w.show(MAT, "environments/fanc.yaml").count("version: 4.23.0") == 1  # fanc untouched on the branch
    assert "version: 4.24.0" in w.show(MAT, "environments/minnie.yaml")

    # Merged an hour ago, Argo CD already Healthy and Synced at the merge: the soak holds the next stage back.
    argocd.set("cave-minnie", revision=sha)
    writes = len(w.gh.writes())
    assert run(w, MERGED + HOUR) == 0
    assert bot_pulls(w) == [] and w.writes_after(writes) == []
    assert (f"note: materializationengine 4.24.0 for stage main (fanc) waits: minnie has had it on main for 1h of "
            f"24h (since {sha[:12]})") in w.said

    # Soaked, but Argo CD has not synced the merge yet: it compared main's head (the merge) and is OutOfSync; its
    # last sync applied the seed. status.sync.revision is the merge, yet nothing of it is deployed: waits.
    argocd.set("cave-minnie", sync="OutOfSync", revision=sha, applied=seed)
    assert run(w, MERGED + 25 * HOUR) == 0
    assert bot_pulls(w) == [] and w.writes_after(writes) == []
    assert (f"note: materializationengine 4.24.0 for stage main (fanc) waits: cave-minnie is OutOfSync and Healthy, "
            f"its last sync (Succeeded) applied {seed[:12]}; waiting for Synced and Healthy with {sha[:12]} or later "
            "applied") in w.said

    # The same, Degraded: the cluster was Degraded before the release reached it, not the canary's fault: waits
    # (no stop, no comment).
    argocd.set("cave-minnie", sync="OutOfSync", revision=sha, applied=seed, health="Degraded")
    assert run(w, MERGED + 25 * HOUR) == 0
    assert bot_pulls(w) == [] and w.writes_after(writes) == []
    assert (f"note: materializationengine 4.24.0 for stage main (fanc) waits: cave-minnie is OutOfSync and Degraded, "
            f"its last sync (Succeeded) applied {seed[:12]}; waiting for Synced and Healthy with {sha[:12]} or later "
            "applied (Degraded before it applied this release: not the release's doing)") in w.said

    # Syncing the merge (operation Running), Degraded while it rolls out: not finished, so waits.
    argocd.set("cave-minnie", sync="OutOfSync", revision=sha, applied=sha, phase="Running", health="Degraded")
    assert run(w, MERGED + 25 * HOUR) == 0
    assert bot_pulls(w) == [] and w.writes_after(writes) == []
    assert (f"note: materializationengine 4.24.0 for stage main (fanc) waits: cave-minnie is OutOfSync and Degraded, "
            f"its last sync (Running) applied {sha[:12]}; waiting for Synced and Healthy with {sha[:12]} or later "
            "applied") in w.said

    # Never synced by Argo CD (no operationState), Synced and Healthy at the merge: what runs is unknown: waits.
    argocd.set("cave-minnie", revision=sha)
    argocd.apps["cave-minnie"].applied = None
    assert run(w, MERGED + 25 * HOUR) == 0
    assert bot_pulls(w) == [] and w.writes_after(writes) == []
    assert (f"note: materializationengine 4.24.0 for stage main (fanc) waits: cave-minnie is Synced and Healthy, "
            f"its last sync (none) applied no revision; waiting for Synced and Healthy with {sha[:12]} or later "
            "applied") in w.said

    # Synced and Healthy, but its last sync applied a revision before the merge (the wrong one): still waits.
    argocd.set("cave-minnie", revision=seed)
    assert run(w, MERGED + 25 * HOUR) == 0
    assert bot_pulls(w) == [] and w.writes_after(writes) == []
    assert (f"note: materializationengine 4.24.0 for stage main (fanc) waits: cave-minnie is Synced and Healthy, "
            f"its last sync (Succeeded) applied {seed[:12]}; waiting for Synced and Healthy with {sha[:12]} or later "
            "applied") in w.said

    # Healthy and Synced at the merge, soaked: the next stage's pull request (the merged branch is reused).
    argocd.set("cave-minnie", revision=sha)
    assert run(w, MERGED + 25 * HOUR) == 0, w.said
    (nxt,) = bot_pulls(w)
    m = nxt["number"]
    assert m != n and nxt["head"] == MAT and nxt["title"] == "Bump materialize to 4.24.0"
    assert w.writes_after(writes) == [("POST", "/pulls"), ("POST", f"/issues/{m}/labels")]
    assert "| fanc | materializationengine | 4.23.0 | **4.24.0** |" in nxt["body"] and "| minnie |" not in nxt["body"]
    assert (f"1. `canary`: minnie - on main since {sha[:12]}\n2. `main`: fanc - **this pull request**\n"
            in nxt["body"])
    head = w.refs()[f"refs/heads/{MAT}"]
    assert git(w.remote, "merge-base", head, "refs/heads/main").strip() == sha  # built on the merged canary
    assert "version: 4.24.0" in w.show(MAT, "environments/fanc.yaml")

    # Every Argo CD request carried the token; the bot never printed it.
    assert {auth for _, _, auth in argocd.requests} == {f"Bearer {TOKEN}"}
    assert [path for _, path, _ in argocd.requests] == ["/api/v1/applications/cave-minnie"] * 7
    assert not any(TOKEN in line for line in w.said)

    writes = len(w.gh.writes())
    assert run(w, MERGED + 26 * HOUR) == 0  # a re-run changes nothing
    assert w.writes_after(writes) == [] and f"{MAT}: up to date (#{m})" in w.said


def test_a_degraded_canary_stops_the_rollout_with_one_comment(world: World, argocd: FakeArgoCd) -> None:
    w = world
    pr, _seed, sha = canary_merged(w, argocd)
    n = int(str(pr["number"]))
    later = git(w.remote, "rev-parse", "refs/heads/main").strip()
    argocd.set("cave-minnie", sync="Synced", revision=later, health="Degraded")
    writes = len(w.gh.writes())
    bot = w.bot()
    bot.clock = lambda: MERGED + 25 * HOUR
    with pytest.raises(UserError, match=r"^ARGOCD_TOKEN is not set: gitops.yaml's argocd.api_url \(http://127"):
        bot.run()  # the gate needs Argo CD: no token, no guess, nothing written
    assert w.writes_after(writes) == [] and argocd.requests == []
    assert run(w, MERGED + 25 * HOUR) == 0, w.said
    assert bot_pulls(w) == []
    assert w.writes_after(writes) == [("POST", f"/issues/{n}/comments")]
    (comment,) = w.gh.bodies(n)
    assert comment == (
        "<!-- cave-bot:stopped minnie/materializationengine=4.24.0 -->\n**Staged rollout stopped.** Argo CD reports "
        f"`cave-minnie` (stage `canary`, minnie): it is **Degraded** (Synced, Degraded) after its last sync applied "
        f"{later}, which has this change ({sha[:12]}). The bot proposes no later stage of materializationengine "
        "4.24.0 while it stays so. Fix the cluster (or revert this pull request): once Argo CD reports it Healthy "
        "and Synced the rollout goes on; a newer release starts a new rollout from the first stage.")
    assert (f"note: materializationengine 4.24.0 for stage main (fanc) stopped: cave-minnie is Degraded and its last "
            f"sync (Succeeded) applied {later[:12]}, which has {sha[:12]}") in w.said
    assert (f"minnie/materializationengine=4.24.0: cave-minnie is Degraded (Succeeded); rollout stopped, commented "
            f"on #{n}") in w.said

    writes = len(w.gh.writes())
    assert run(w, MERGED + 30 * HOUR) == 0  # still Degraded: no second comment, no pull request
    assert w.writes_after(writes) == [] and bot_pulls(w) == []
    assert (f"minnie/materializationengine=4.24.0: cave-minnie is Degraded (Succeeded); rollout stopped (already "
            f"said on #{n})") in w.said

    # Its sync of the merge failed (phase Failed), health Progressing: stopped as well, the same one comment.
    argocd.set("cave-minnie", sync="OutOfSync", revision=later, applied=later, phase="Failed", health="Progressing")
    assert run(w, MERGED + 31 * HOUR) == 0
    assert w.writes_after(writes) == [] and bot_pulls(w) == []
    assert (f"note: materializationengine 4.24.0 for stage main (fanc) stopped: cave-minnie is Progressing and its "
            f"last sync (Failed) applied {later[:12]}, which has {sha[:12]}") in w.said


def test_a_stage_gitops_yaml_does_not_list_is_an_error_at_its_line(tmp_path: Path, argocd: FakeArgoCd) -> None:
    for w in staged_world(tmp_path, argocd, minnie_stage="cannary"):
        w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
        with pytest.raises(UserError) as err:
            run(w, MERGED)
        line = w.show("main", "environments/minnie.yaml").splitlines().index(
            "    bump: {stage: cannary, soak: 24h}") + 1
        assert str(err.value) == (
            f"environments/minnie.yaml:{line}:19: stage 'cannary' is not one of gitops.yaml's bump.stages (canary, "
            "main); list it there in rollout order (bump: {stages: [canary, main]}), or remove it")
        assert w.gh.writes() == [] and argocd.requests == []


def test_stage_settings_and_policies_are_checked_where_written(tmp_path: Path) -> None:
    shutil.copy(REPO / "gitops.yaml", tmp_path / "gitops.yaml")
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    settings = tmp_path / "gitops.yaml"
    settings.write_text(settings.read_text().replace(
        "argocd:\n", "bump:\n  stages: [canary, main, canary]\nargocd:\n  api_url: http://argocd.example.org\n", 1))
    at = settings.read_text().splitlines().index("  stages: [canary, main, canary]") + 1
    with pytest.raises(UserError) as err:
        load_settings(tmp_path)
    assert str(err.value).splitlines() == [
        f"gitops.yaml:{at}:11: bump.stages: stage canary is listed twice (list each stage once, in rollout order)",
        f"gitops.yaml:{at + 2}:12: argocd.api_url: 'http://argocd.example.org' is not an Argo CD API URL "
        "(https://argocd.example.org; plain http only on localhost: the token must not cross a network unencrypted)"]
    spec = tmp_path / "environments" / "minnie.yaml"
    text = spec.read_text().replace("  materializationengine:\n    version: 4.23.0\n",
                                    "  materializationengine:\n    version: 4.23.0\n    bump: {soak: 1w, stage: x}\n")
    spec.write_text(text)
    line = text.splitlines().index("    bump: {soak: 1w, stage: x}") + 1
    with pytest.raises(UserError) as err:
        load_all(tmp_path)
    assert str(err.value) == (f"environments/minnie.yaml:{line}:18: services.materializationengine.bump.soak: '1w' "
                              "is not a soak time (write minutes, hours or days: 30m, 24h, 2d)")


def test_a_canary_degraded_after_the_next_stage_is_proposed_closes_that_pull_request(
        world: World, argocd: FakeArgoCd) -> None:
    w = world
    pr, _seed, sha = canary_merged(w, argocd)
    n = int(str(pr["number"]))
    argocd.set("cave-minnie", revision=sha)
    assert run(w, MERGED + 25 * HOUR) == 0, w.said
    (nxt,) = bot_pulls(w)
    m = int(str(nxt["number"]))
    assert "| fanc | materializationengine | 4.23.0 | **4.24.0** |" in nxt["body"]
    head = w.refs()[f"refs/heads/{MAT}"]

    # The canary turns Degraded after it applied the merge: the merged pull request says the rollout stopped, and
    # the open next-stage pull request is commented (linking it) and closed; its branch stays as it was.
    argocd.set("cave-minnie", revision=sha, health="Degraded")
    writes = len(w.gh.writes())
    assert run(w, MERGED + 26 * HOUR) == 0, w.said
    assert w.writes_after(writes) == [("POST", f"/issues/{n}/comments"), ("POST", f"/issues/{m}/comments"),
                                      ("PATCH", f"/pulls/{m}")]
    assert bot_pulls(w) == [] and w.gh.pull_data[m]["state"] == "closed"
    assert w.refs()[f"refs/heads/{MAT}"] == head
    (stopped,) = w.gh.bodies(n)
    assert stopped.startswith("<!-- cave-bot:stopped minnie/materializationengine=4.24.0 -->\n")
    assert w.gh.bodies(m) == [
        "<!-- cave-bot:stopped-later materializationengine=4.24.0 -->\n**Staged rollout stopped**: the stage before "
        f"this one failed in Argo CD after #{n} (minnie) brought materializationengine 4.24.0 there (see the comment "
        "on it). Closing this pull request so the release goes no further; the bot proposes it again once that stage "
        "reports Healthy and Synced. Reopen it to deploy anyway."]
    assert (f"{MAT}: closed #{m}: the rollout of materializationengine 4.24.0 stopped (#{n} (minnie))") in w.said

    writes = len(w.gh.writes())
    assert run(w, MERGED + 27 * HOUR) == 0  # still Degraded: nothing more
    assert w.writes_after(writes) == [] and bot_pulls(w) == []

    # Healthy again: the bot closed it itself, so that holds nothing back: the next stage is proposed again, from
    # the branch as it is (no push).
    argocd.set("cave-minnie", revision=sha)
    assert run(w, MERGED + 28 * HOUR) == 0, w.said
    (again,) = bot_pulls(w)
    k = int(str(again["number"]))
    assert k not in (n, m) and w.writes_after(writes) == [("POST", "/pulls"), ("POST", f"/issues/{k}/labels")]
    assert w.refs()[f"refs/heads/{MAT}"] == head


def test_a_later_stage_pull_request_a_person_reopened_stays_open(world: World, argocd: FakeArgoCd) -> None:
    w = world
    _pr, _seed, sha = canary_merged(w, argocd)
    argocd.set("cave-minnie", revision=sha)
    assert run(w, MERGED + 25 * HOUR) == 0, w.said
    (nxt,) = bot_pulls(w)
    m = int(str(nxt["number"]))
    argocd.set("cave-minnie", revision=sha, health="Degraded")
    assert run(w, MERGED + 26 * HOUR) == 0 and bot_pulls(w) == []
    w.gh.reopen(m)  # a person deploys anyway
    writes = len(w.gh.writes())
    assert run(w, MERGED + 27 * HOUR) == 0, w.said
    assert w.writes_after(writes) == [] and [p["number"] for p in bot_pulls(w)] == [m]
    assert (f"{MAT}: #{m} was reopened after the bot closed it for the stopped rollout of materializationengine "
            "4.24.0; left open") in w.said


@pytest.mark.parametrize("allow", ["~4.23", "pinned"])
def test_a_canary_whose_policy_excludes_the_release_holds_the_later_stages(
        tmp_path: Path, argocd: FakeArgoCd, allow: str) -> None:
    for w in staged_world(tmp_path, argocd, minnie_allow=allow):
        w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
        assert run(w, MERGED) == 0, w.said
        assert bot_pulls(w) == [] and w.gh.writes() == [] and argocd.requests == []
        assert w.said == [
            f"note: materializationengine 4.24.0 for fanc is held: no cluster of stage canary can take it (minnie "
            f"(allow: {allow}): their bump policy excludes it), and a stage none of whose clusters runs a release "
            "does not pass; allow it there, or give a cluster that can take it stage canary",
            "nothing to bump"]
