"""`python -m compiler bot` as one call: settings, tokens and API addresses resolved, then one run of the bot
(pulls.Bot). The CLI (commands/bot.py) only parses its options into `BotRequest`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from compiler import catalog, github
from compiler.bot.argo import TOKEN_ENV
from compiler.bot.images import RegistryClient
from compiler.bot.plan import alias
from compiler.bot.pulls import Bot, Options
from compiler.bot.upstream import UPSTREAMS, Upstream
from compiler.errors import UserError
from compiler.spec.settings import load_settings


@dataclass(frozen=True)
class BotRequest:
    """The bot's options as given (None: the default). Tokens and API addresses come from the environment:
    $GITHUB_TOKEN, $GITHUB_API_URL, $UPSTREAM_GITHUB_TOKEN and $ARGOCD_TOKEN."""

    repo: str | None
    base: str | None = None
    remote: str = "origin"
    upstream: list[str] = field(default_factory=list)  # COMPONENT=OWNER/NAME overrides
    upstream_api_url: str | None = None
    registry_url: str | None = None
    max_wait: float = 60.0
    dry_run: bool = False


def upstreams(pairs: list[str]) -> dict[str, str]:
    """The upstream repository of each component, with the COMPONENT=OWNER/NAME overrides applied."""
    out = dict(UPSTREAMS)
    for pair in pairs:
        name, _, repo = pair.partition("=")
        svc = catalog.resolve(name.strip())
        if svc is None or svc.name not in out or repo.count("/") != 1:
            raise UserError(f"--upstream {pair!r}: expected COMPONENT=OWNER/NAME with COMPONENT one of "
                            + ", ".join(alias(k) for k in UPSTREAMS))
        out[svc.name] = repo.strip()
    return out


def run_bot(root: Path, request: BotRequest) -> int:
    """One run of the bot; its exit code (0 done or nothing to do, 2 a failure it reported)."""
    if (request.repo or not request.dry_run) and (not request.repo or request.repo.count("/") != 1):
        raise UserError(f"--repo {request.repo or '(unset)'}: expected OWNER/NAME (or set $GITHUB_REPOSITORY)")
    settings = load_settings(root)
    base = request.base or (settings.settings.argocd.target_revision if settings else "main")
    retry = github.Retry(max_wait=request.max_wait)
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token and not request.dry_run:
        raise UserError("GITHUB_TOKEN is not set (a token with contents: write and pull-requests: write; "
                        "in a workflow: env: GITHUB_TOKEN: ${{ github.token }})")
    api_url = (os.environ.get("GITHUB_API_URL") or github.API_URL).rstrip("/")
    upstream_url = (request.upstream_api_url or github.API_URL).rstrip("/")
    upstream_token = os.environ.get("UPSTREAM_GITHUB_TOKEN") or (token if upstream_url == api_url else None)
    options = Options(repo=request.repo or "", base=base, remote=request.remote,
                      upstreams=upstreams(request.upstream), dry_run=request.dry_run, retry=retry,
                      argocd_token=os.environ.get(TOKEN_ENV, ""))
    runner = Bot(
        root=root,
        options=options,
        gh=github.client(api_url, token),
        upstream=Upstream(github.client(upstream_url, upstream_token), options.upstreams, retry),
        registry=RegistryClient(request.registry_url, retry),
    )
    return runner.run()
