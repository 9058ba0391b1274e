"""The PR comment against a local fake GitHub that speaks the REST wire format PyGithub uses (GHES-style /api/v3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from github import Auth, Github

from compiler import github
from compiler.errors import UserError
from compiler.main import main
from tests.support.fake_github import HUMAN, TOKEN, FakeGitHub, client


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    server.pulls.add(7)
    server.issues.add(8)
    yield server
    server.stop()


def marked(fake: FakeGitHub, number: int = 7) -> list[str]:
    return [b for b in fake.bodies(number) if b.startswith(github.MARKER)]


def test_first_push_creates_second_updates(fake: FakeGitHub) -> None:
    fake.add_comment(7, "LGTM", HUMAN)
    first = github.upsert_comment(client(fake), fake.repo, 7, "## Rendered diff\n\nminnie: 1 change\n")
    assert first.action == "created"
    assert marked(fake) == [f"{github.MARKER}\n## Rendered diff\n\nminnie: 1 change\n"]

    second = github.upsert_comment(client(fake), fake.repo, 7, "## Rendered diff\n\nminnie: 2 changes\n")
    assert (second.action, second.comment_id) == ("updated", first.comment_id)
    assert marked(fake) == [f"{github.MARKER}\n## Rendered diff\n\nminnie: 2 changes\n"]
    assert fake.bodies(7)[0] == "LGTM"
    assert ("PATCH", f"/api/v3/repos/cave/gitops/issues/comments/{first.comment_id}") in fake.requests

    writes = len([r for r in fake.requests if r[0] != "GET"])
    third = github.upsert_comment(client(fake), fake.repo, 7, "## Rendered diff\n\nminnie: 2 changes\n")
    assert third.action == "unchanged"
    assert len([r for r in fake.requests if r[0] != "GET"]) == writes


def test_finds_its_comment_across_pages_and_removes_duplicates(fake: FakeGitHub) -> None:
    for i in range(230):
        fake.add_comment(7, f"review note {i}", HUMAN)
    older = fake.add_comment(7, f"{github.MARKER}\nold report")
    fake.add_comment(7, f"{github.MARKER}\nduplicate from a race")
    fake.add_comment(7, f"quoting: {github.MARKER} is not at the start", HUMAN)
    posted = github.upsert_comment(client(fake), fake.repo, 7, "new report")
    assert posted.comment_id == older and posted.action == "updated" and len(posted.deleted) == 1
    assert marked(fake) == [f"{github.MARKER}\nnew report"]
    assert len(fake.bodies(7)) == 232  # 230 notes, the quote, the kept report: only the duplicate went
    assert fake.requests.count(("GET", "/api/v3/repos/cave/gitops/issues/7/comments")) == 3  # 233 at 100 a page


def test_body_over_the_limit_is_cut_and_still_posts(fake: FakeGitHub) -> None:
    lines = ["## Rendered diff", "<details><summary>minnie</summary>", "", "```diff"]
    lines += [f"+  line {i}: " + "x" * 80 for i in range(2000)]
    lines += ["```", "</details>", "the end"]
    body = "\n".join(lines)
    assert len(body) > github.COMMENT_LIMIT
    github.upsert_comment(client(fake), fake.repo, 7, body)
    (posted,) = marked(fake)
    assert len(posted) <= github.COMMENT_LIMIT
    assert "the end" not in posted and "over GitHub's 65,536-character comment limit" in posted
    assert posted.count("```") % 2 == 0
    assert posted.count("<details>") == posted.count("</details>")


def test_fit_keeps_short_bodies_and_cuts_at_a_line() -> None:
    assert github.fit("short") == f"{github.MARKER}\nshort"
    cut = github.fit("\n".join(f"row {i:05d}" for i in range(20000)), limit=5000)
    assert len(cut) <= 5000
    kept = cut.split("\n\n**Cut here**")[0].splitlines()[1:]
    assert all(len(row) == 9 for row in kept)


def test_errors_are_one_line_with_a_hint(fake: FakeGitHub) -> None:
    with pytest.raises(UserError, match=r"cave/gitops#8 is an issue, not a pull request"):
        github.upsert_comment(client(fake), fake.repo, 8, "x")
    with pytest.raises(UserError, match=r"GitHub: reading cave/gitops#99: 404 Not Found \(check --repo and --pr"):
        github.upsert_comment(client(fake), fake.repo, 99, "x")
    bad = Github(auth=Auth.Token("wrong"), base_url=fake.api_url, seconds_between_requests=0, retry=None)
    with pytest.raises(UserError, match=r"401 Bad credentials \(the token is invalid or expired\)"):
        github.upsert_comment(bad, fake.repo, 7, "x")
    with pytest.raises(UserError, match="not one hidden HTML comment"):
        github.upsert_comment(client(fake), fake.repo, 7, "x", marker="cave-diff")


def test_command_uses_token_and_api_url_from_the_environment(
    fake: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "diff.md"
    body.write_text("## Rendered diff\n\nno changes\n")
    monkeypatch.setenv("GITHUB_API_URL", fake.api_url)
    monkeypatch.setenv("GITHUB_REPOSITORY", fake.repo)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert main(["pr-comment", "--pr", "7", "--body-file", str(body)]) == 2
    assert "GITHUB_TOKEN is not set" in capsys.readouterr().err

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    assert main(["pr-comment", "--pr", "7", "--body-file", str(body)]) == 0
    assert capsys.readouterr().out.startswith("created comment ")
    body.write_text("## Rendered diff\n\n1 change\n")
    assert main(["pr-comment", "--repo", fake.repo, "--pr", "7", "--body-file", str(body)]) == 0
    assert capsys.readouterr().out.startswith("updated comment ")
    assert marked(fake) == [f"{github.MARKER}\n## Rendered diff\n\n1 change\n"]

    assert main(["pr-comment", "--repo", "nope", "--pr", "7", "--body-file", str(body)]) == 2
    assert "expected OWNER/NAME" in capsys.readouterr().err
