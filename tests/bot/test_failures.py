"""GitHub's secondary rate limits and unreachable APIs, end to end through `python -m compiler bot` and the bot
(issue 14, items 4 and 7): waits capped by --max-wait, a persisting limit named as such, and the cause kept."""

from __future__ import annotations

import re

import pytest

from compiler import github
from compiler.errors import UserError
from compiler.main import main
from tests.bot.world import MATERIALIZE, World, bot_pulls, closed_port
from tests.support.fake_github import SECONDARY, TOKEN


def test_secondary_rate_limits_are_waited_out_then_named(world: World) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    w.gh.fail(403, {"Retry-After": "5"}, message=SECONDARY, path="/releases")  # with Retry-After
    w.gh.fail(403, message=SECONDARY, path="/tags")  # without: a minute, capped by --max-wait
    w.gh.fail(403, message=SECONDARY, path="/pulls", times=2)  # twice: 60, then 120, both capped
    assert w.run(max_wait=45.0) == 0, w.said
    assert w.sleeps == [5.0, 45.0, 45.0, 45.0]
    (pr,) = bot_pulls(w)
    assert sorted(w.refs()) == ["refs/heads/cave-bot/materialize", "refs/heads/main"]
    assert w.writes_after(0) == [("POST", "/pulls"), ("POST", f"/issues/{pr['number']}/labels")]

    # It persists: every attempt waits (capped) and the error says rate limit, not permission; nothing written.
    w.sleeps.clear()
    w.release(MATERIALIZE, "v4.25.0", "materializationengine", schema_pin="5.12.0")
    w.gh.fail(403, message=SECONDARY, times=4)
    writes, refs = len(w.gh.writes()), w.refs()
    with pytest.raises(UserError) as caught:
        w.run(max_wait=20.0)
    assert str(caught.value) == (
        f"GitHub: reading CAVEconnectome/EMAnnotationSchemas: 403 {SECONDARY} (a rate limit, not a missing "
        "permission: still limited after 4 tries with waits of at most 20 s; run again later, or raise --max-wait)")
    assert w.sleeps == [20.0, 20.0, 20.0] and w.writes_after(writes) == [] and w.refs() == refs

    # A plain 403 is a permission problem: no retry, and the hint says what the token needs.
    w.sleeps.clear()
    w.gh.fail(403, message="Resource not accessible by integration", path="/pulls")
    with pytest.raises(UserError, match=r"GitHub: listing pull requests of cave/gitops: 403 Resource not accessible "
                                        r"by integration \(the token lacks a permission: the bump workflow needs "
                                        r"contents: write and pull-requests: write\)"):
        w.run()
    assert w.sleeps == []


def test_secondary_rate_limit_waits_grow_and_respect_the_cap() -> None:
    retry = github.Retry(max_wait=300.0)
    waits = [retry.wait(403, {"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "9999999999"}, a, SECONDARY)
             for a in range(4)]
    assert waits == [60.0, 120.0, 240.0, 300.0]  # the reset of the primary limit is not the secondary's wait
    assert retry.wait(429, {}, 0, "") == 60.0 and retry.wait(403, {}, 0, "Forbidden") is None


def bot_main(w: World, monkeypatch: pytest.MonkeyPatch, upstream: str, registry: str | None = None) -> int:
    client = github.client  # PyGithub's pause between requests (0.25 s) is politeness the fake does not need
    monkeypatch.setattr(github, "client", lambda url, token, **_: client(url, token, seconds_between_requests=0,
                                                                          seconds_between_writes=0))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", w.gh.api_url)
    monkeypatch.setenv("GITHUB_REPOSITORY", w.gh.repo)
    monkeypatch.setenv("CAVE_BOT_UPSTREAM_API_URL", upstream)
    monkeypatch.setenv("CAVE_BOT_REGISTRY_URL", registry or w.hub.url)
    return main(["-C", str(w.clone), "bot", "--max-wait", "0"])


def test_cannot_reach_the_api_keeps_the_cause(world: World, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    w = world
    w.release(MATERIALIZE, "v4.24.0", "materializationengine", schema_pin="5.12.0")
    doing = "GitHub: reading CAVEconnectome/EMAnnotationSchemas: cannot reach the API: "
    fix = " (check GITHUB_API_URL / --upstream-api-url and the network)"

    port = closed_port()
    assert bot_main(w, monkeypatch, f"http://127.0.0.1:{port}/api/v3") == 2
    err = capsys.readouterr().err.strip()
    assert err == f"{doing}connection refused (127.0.0.1:{port}): [Errno 111] Connection refused{fix}"

    assert bot_main(w, monkeypatch, "http://cave-upstream.invalid/api/v3") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{doing}DNS lookup failed (cave-upstream.invalid:80): [Errno "), err
    assert err.endswith(fix) and len(err.splitlines()) == 1

    fake_port = w.gh.api_url.split(":")[2].split("/")[0]  # TLS to a plain-HTTP server
    assert bot_main(w, monkeypatch, f"https://127.0.0.1:{fake_port}/api/v3") == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(rf"{re.escape(doing)}TLS error \(127\.0\.0\.1:{fake_port}\): \[SSL[^\n]*{re.escape(fix)}",
                        err), err

    port = closed_port()
    assert bot_main(w, monkeypatch, w.gh.api_url, f"http://127.0.0.1:{port}") == 2
    err = capsys.readouterr().err.strip()
    assert err == ("registry: asking for docker.io/caveconnectome/materializationengine:v4.24.0: cannot reach "
                   f"http://127.0.0.1:{port}/v2/repositories/caveconnectome/materializationengine/tags/v4.24.0: "
                   "connection refused: [Errno 111] Connection refused (check the network, or --registry-url)")
    assert list(w.refs()) == ["refs/heads/main"] and w.gh.writes() == []


def test_reason_walks_to_the_cause() -> None:
    try:
        raise OSError("outer") from ConnectionResetError(104, "Connection reset by peer")
    except OSError as err:
        assert github.reason(err) == "connection closed without a response: [Errno 104] Connection reset by peer"
