"""The bot's pull requests against people and GitHub's failure modes: amended commits, who closed a pull request,
a set that grows over a person's commits, and answers lost after GitHub did the write (issue 14, items 1-3, 6)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from compiler.bot.upstream import BOT_EMAIL, BOT_NAME
from compiler.errors import UserError
from tests.bot.world import MATERIALIZE, SCHEMA, World, bot_pulls, git
from tests.support.fake_github import BOT, HUMAN

MAT = "cave-bot/materialize"
DANA = "Dana Reviewer <dana@example.org>"


def recorded_head(body: str) -> str:
    m = re.match(r"<!-- cave-bot:set \S+ head=([0-9a-f]{40}) -->\n", body)
    assert m, body[:200]
    return m.group(1)


def test_an_amended_bot_commit_is_a_persons_change(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0
    (pr,) = bot_pulls(w)
    pushed = w.refs()[f"refs/heads/{MAT}"]
    assert recorded_head(pr["body"]) == pushed  # the body records what the bot pushed

    amended = w.human_commit(MAT, "environments/minnie.yaml", "replicas: {min: 1, max: 4}",
                             "replicas: {min: 2, max: 4}", amend=True)
    who = git(w.remote, "log", "-1", "--format=%an <%ae>|%cn <%ce>", amended).strip()
    assert who == f"{BOT_NAME} <{BOT_EMAIL}>|{DANA}"  # the author is still the bot

    writes = len(w.gh.writes())
    assert w.run() == 0  # nothing newer: no push over the amend, no write
    assert w.refs()[f"refs/heads/{MAT}"] == amended and w.writes_after(writes) == []
    assert f"{MAT}: has commits by {DANA}; nothing newer to propose (#{pr['number']})" in w.said

    w.release(MATERIALIZE, "v4.25.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0
    assert w.refs()[f"refs/heads/{MAT}"] == amended
    assert w.writes_after(writes) == [("POST", f"/issues/{pr['number']}/comments")]
    (comment,) = w.gh.bodies(pr["number"])
    assert comment.startswith("<!-- cave-bot:held fanc/materializationengine=4.25.0,"
                              "minnie/materializationengine=4.25.0 -->\nA newer bump is ready, but this branch has "
                              f"commits by {DANA} ({amended[:12]}), which the bot never overwrites")
    assert w.gh.pull_data[pr["number"]]["title"] == "Bump materialize to 4.24.0"  # the PR itself untouched


def test_the_bots_own_push_whose_record_was_lost_is_still_its_own(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0
    (pr,) = bot_pulls(w)
    first = w.refs()[f"refs/heads/{MAT}"]

    # A newer release: the bot pushes, then GitHub fails every attempt to record the new head on the PR.
    w.release(MATERIALIZE, "v4.25.0", "materializationengine", schema_pin="5.12.0")
    w.gh.fail(502, path=f"/pulls/{pr['number']}", times=4)
    with pytest.raises(UserError, match=rf"GitHub: updating #{pr['number']}: 502 Server Error"):
        w.run()
    second = w.refs()[f"refs/heads/{MAT}"]
    assert second != first and recorded_head(w.gh.pull_data[pr["number"]]["body"]) == first

    # The next run sees one commit by the bot (author and committer) naming its set, which replaced (not built
    # on) the recorded head: its own. It records it, pushes nothing, comments nothing.
    writes = len(w.gh.writes())
    assert w.run() == 0, w.said
    assert w.refs()[f"refs/heads/{MAT}"] == second
    assert w.writes_after(writes) == [("PATCH", f"/pulls/{pr['number']}")]
    body = w.gh.pull_data[pr["number"]]["body"]
    assert recorded_head(body) == second and "**4.25.0**" in body and w.gh.bodies(pr["number"]) == []
    trailer = git(w.remote, "log", "-1", "--format=%(trailers:key=Cave-Bot-Set,valueonly)", second).strip()
    assert trailer == "fanc/materializationengine=4.25.0,minnie/materializationengine=4.25.0"


def grow_schema_into_materialize(w: World) -> dict[str, Any]:
    """The schema PR first; then a materialize release pinning the newer schema joins it into one set."""
    w.release(SCHEMA, "v5.13.0", "emannotationschemas")
    assert w.run() == 0
    (schema_pr,) = bot_pulls(w)
    assert schema_pr["head"] == "cave-bot/schema"
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.13.0")
    return schema_pr


def test_a_pr_the_bot_closed_itself_is_proposed_again(world: World) -> None:
    w = world
    schema_pr = grow_schema_into_materialize(w)
    assert w.run() == 0
    (grown,) = bot_pulls(w)
    first = schema_pr["number"]
    assert grown["head"] == "cave-bot/materialize-schema"
    assert w.gh.pull_data[first]["state"] == "closed" and w.gh.pull_data[first]["closed_by"] == BOT
    assert [e["event"] for e in w.gh.events[first]] == ["closed"]
    (note,) = w.gh.bodies(first)
    assert note == (f"<!-- cave-bot:superseded-by #{grown['number']} -->\nSuperseded by #{grown['number']}, which "
                    "carries these components together (materialize, schema). Closing this one so no component and "
                    "cluster has two open bump pull requests.")

    # The materialize image is withdrawn: the set shrinks back to exactly what the closed PR proposed. The bot
    # closed that one itself, so it is no "no": a new PR proposes it, and the grown one is closed, linking it.
    w.hub.tags.discard("caveconnectome/materializationengine:v4.24.0")
    schema_head = w.refs()["refs/heads/cave-bot/schema"]
    writes = len(w.gh.writes())
    assert w.run() == 0, w.said
    (again,) = bot_pulls(w)
    n = again["number"]
    assert again["head"] == "cave-bot/schema" and n not in (first, grown["number"])
    assert again["title"] == "Bump schema to 5.13.0"
    assert w.refs()["refs/heads/cave-bot/schema"] == schema_head  # the branch already said it: no push
    assert w.writes_after(writes) == [("POST", "/pulls"), ("POST", f"/issues/{n}/labels"),
                                      ("POST", f"/issues/{grown['number']}/comments"),
                                      ("PATCH", f"/pulls/{grown['number']}")]
    assert w.gh.bodies(grown["number"])[0].startswith(f"<!-- cave-bot:superseded-by #{n} -->\nSuperseded by #{n},")

    # A person closes it: that holds the proposal back until a newer release.
    w.gh.close(n, by=HUMAN)
    writes = len(w.gh.writes())
    assert w.run() == 0
    assert bot_pulls(w) == [] and w.writes_after(writes) == []
    assert f"cave-bot/schema: #{n} proposed this and was closed by reviewer; waiting for a newer release" in w.said


def test_a_growing_set_never_drops_a_persons_commits(world: World) -> None:
    w = world
    schema_pr = grow_schema_into_materialize(w)
    first = schema_pr["number"]
    theirs = w.human_commit("cave-bot/schema", "environments/global.yaml", "replicas: {min: 1, max: 10}",
                            "replicas: {min: 2, max: 10}")
    w.gh.lose("POST", f"/issues/{first}/comments")  # GitHub posts the comment; the answer is lost
    writes = len(w.gh.writes())
    assert w.run() == 0, w.said
    (old, grown) = bot_pulls(w)
    assert old["number"] == first and grown["head"] == "cave-bot/materialize-schema"
    assert w.refs()["refs/heads/cave-bot/schema"] == theirs  # neither closed nor overwritten
    n = grown["number"]
    (comment,) = w.gh.bodies(first)  # posted once: the retry found it
    assert comment == (f"<!-- cave-bot:superseded-by #{n} -->\nSuperseded by #{n}, which carries these components "
                       f"together (materialize, schema). This branch has commits by {DANA} ({theirs[:12]}), which "
                       "the bot never drops, so this pull request stays open: carry them over to "
                       f"`cave-bot/materialize-schema` (#{n}) or merge them here first, then close this one.")
    assert w.writes_after(writes) == [("POST", "/pulls"), ("POST", f"/issues/{n}/labels"),
                                      ("POST", f"/issues/{first}/comments")]
    assert w.sleeps == [1.0]
    assert f"cave-bot/schema: #{first} has commits by {DANA}; left open, commented (see #{n})" in w.said

    writes = len(w.gh.writes())
    assert w.run() == 0  # said once
    assert w.writes_after(writes) == [] and len(w.gh.bodies(first)) == 1


def test_a_lost_answer_to_opening_the_pr_converges(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    w.gh.lose("POST", "/pulls")  # the PR is opened, the answer never arrives
    assert w.run() == 0, w.said
    (pr,) = bot_pulls(w)
    n = pr["number"]
    assert w.writes_after(0) == [("POST", "/pulls"), ("POST", "/pulls"), ("POST", f"/issues/{n}/labels")]
    assert f"{MAT}: #{n} was already open (an earlier answer was lost)" in w.said
    assert w.gh.labels[n] == ["version-bump", "materialize"] and w.sleeps == [1.0]

    # Every answer to labelling is lost (GitHub applied them): the run fails, saying why; the next completes.
    w.release(MATERIALIZE, "v4.25.0", "materializationengine", schema_pin="5.12.0")
    w.gh.labels[n] = []
    w.gh.lose("POST", f"/issues/{n}/labels", times=4)
    with pytest.raises(UserError, match=rf"GitHub: labelling #{n}: cannot reach the API: connection closed without "
                                        "a response"):
        w.run()
    assert w.gh.labels[n] == ["version-bump", "materialize"]
    w.gh.labels[n] = []  # and a person removed them meanwhile, and retitled the PR
    w.gh.pull_data[n]["title"] = "wip"
    writes = len(w.gh.writes())
    assert w.run() == 0
    assert w.writes_after(writes) == [("PATCH", f"/pulls/{n}"), ("POST", f"/issues/{n}/labels")]
    assert w.gh.pull_data[n]["title"] == "Bump materialize to 4.25.0"
    assert w.gh.labels[n] == ["version-bump", "materialize"] and len(bot_pulls(w)) == 1

    writes = len(w.gh.writes())
    assert w.run() == 0  # every run reconciles; this one finds nothing to do
    assert w.writes_after(writes) == [] and f"{MAT}: up to date (#{n})" in w.said


def test_a_pull_request_held_for_a_persons_commit_still_gets_its_labels(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    w.gh.fail(502, path="/labels", times=4)  # the labels never make it: the run fails after opening the PR
    with pytest.raises(UserError, match="labelling #1"):
        w.run()
    (pr,) = bot_pulls(w)
    n = pr["number"]
    assert w.gh.labels.get(n, []) == []
    w.gh.pull_data[n]["title"] = "Bump materialize"  # an answer lost while the title was written
    w.human_commit("cave-bot/materialize", "environments/minnie.yaml", "replicas: {min: 1, max: 4}",
                   "replicas: {min: 2, max: 4}")
    writes = len(w.gh.writes())
    assert w.run() == 0, w.said
    assert w.writes_after(writes) == [("PATCH", f"/pulls/{n}"), ("POST", f"/issues/{n}/labels")]
    assert w.gh.labels[n] == ["version-bump", "materialize"] and w.gh.bodies(n) == []
    assert w.gh.pull_data[n]["title"] == "Bump materialize to 4.24.0"
    writes = len(w.gh.writes())
    assert w.run() == 0 and w.writes_after(writes) == []  # converged


def test_a_forks_pull_request_on_a_bot_branch_name_is_not_the_bots(world: World) -> None:
    """A contributor's fork may have a branch called cave-bot/materialize: its pull request is theirs, never
    updated, closed or counted as the bot's."""
    w = world
    fork_pr = w.gh.open_fork_pull(MAT, "someone/gitops")
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    writes = len(w.gh.writes())
    assert w.run() == 0, w.said
    (pr,) = [p for p in bot_pulls(w) if p["number"] != fork_pr]
    assert w.writes_after(writes) == [("POST", "/pulls"), ("POST", f"/issues/{pr['number']}/labels")]
    assert w.gh.pull_data[fork_pr]["state"] == "open" and w.gh.pull_data[fork_pr]["title"] == "a contributor's change"


def test_a_person_quoting_the_bots_marker_does_not_silence_it(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    assert w.run() == 0
    (pr,) = bot_pulls(w)
    n = pr["number"]
    w.human_commit(MAT, "environments/minnie.yaml", "replicas: {min: 1, max: 4}", "replicas: {min: 2, max: 4}")
    marker = "<!-- cave-bot:held fanc/materializationengine=4.25.0,minnie/materializationengine=4.25.0 -->"
    w.gh.add_comment(n, f"{marker}\nquoted from an earlier run", user=HUMAN)
    w.release(MATERIALIZE, "v4.25.0", "materializationengine", schema_pin="5.12.0")
    writes = len(w.gh.writes())
    assert w.run() == 0, w.said
    assert w.writes_after(writes) == [("POST", f"/issues/{n}/comments")]  # the bot's own, despite the quote
    assert [b for b in w.gh.bodies(n) if b.startswith(marker)][-1].startswith(f"{marker}\nA newer bump is ready")
