"""Pointing bootstrap's Google clients at fakes, for the provider tests.

`serving(...)` starts fakes (endpoint API name → fake), writes a service-account ADC file whose tokens come from
the first REST fake, sets each API's endpoint variable, polls without sleeping (CAVE_GITOPS_POLL_SECONDS=0) and
forgets cached credentials and provider instances before and after. `fake_fixture(FakeX, "api")` makes a pytest
fixture of one fake. `context(...)` is the provider Context the tests pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from compiler.bootstrap import clients, gcp_common, providers
from compiler.bootstrap.model import Context, Ref
from tests.support.fake_gcp.server import FakeServer, write_credentials

PASSWORD = "test-password"  # what Context.secret_value answers


class Fake(Protocol):
    """A FakeServer, or the gRPC FakeIam."""

    @property
    def url(self) -> str: ...

    def start(self) -> Any: ...

    def stop(self) -> None: ...


F = TypeVar("F", bound=Fake)


def forget_clients() -> None:
    """Drop cached credentials and provider instances (with their clients), e.g. after endpoints changed."""
    clients.credentials.cache_clear()
    providers.reset()


@contextmanager
def serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: Mapping[str, Fake]) -> Iterator[None]:
    """Run `fakes` (endpoint API name → fake) and point credentials, endpoints and polling at them."""
    forget_clients()
    try:
        with ExitStack() as stack:
            for fake in fakes.values():
                fake.start()
                stack.callback(fake.stop)
            token = next(fake for fake in fakes.values() if isinstance(fake, FakeServer))
            monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS",
                               str(write_credentials(tmp_path, token.url + "/token")))
            for api, fake in fakes.items():
                monkeypatch.setenv(clients.endpoint_variable(api), fake.url)
            monkeypatch.setenv(gcp_common.POLL_ENV, "0")
            yield
    finally:
        forget_clients()


def fake_fixture(make: Callable[[], F], api: str) -> Any:
    """A pytest fixture yielding a running `make()` that serves endpoint `api` (assign it to the fixture's name)."""

    @pytest.fixture
    def fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[F]:
        fake = make()
        with serving(tmp_path, monkeypatch, {api: fake}):
            yield fake

    return fixture


def context(progress: list[str] | None = None, refs: Mapping[Ref, Any] | None = None) -> Context:
    """References resolve through `refs` (others stay as they are), progress lines go to `progress`."""
    known = refs or {}
    sink = progress if progress is not None else []
    return Context(resolve=lambda v: known.get(v, v) if isinstance(v, Ref) else v,
                   secret_value=lambda project, name: PASSWORD, progress=sink.append)
