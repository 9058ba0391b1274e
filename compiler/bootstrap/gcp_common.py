"""What every provider shares: building clients, polling cadence, one-line error messages, waiting on long
operations, and small helpers for Google's resource paths."""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import time
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as google_exceptions
from google.auth import exceptions as auth_exceptions

from compiler.bootstrap import clients
from compiler.bootstrap.model import Context, ProviderError, Resource

POLL_ENV = "CAVE_GITOPS_POLL_SECONDS"
LABELS = {"managed-by": "cave-gitops"}  # on everything bootstrap creates that takes labels
# What a call to Google can raise besides NotFound/Conflict: API errors, token refresh, the connection.
CALL_ERRORS: tuple[type[Exception], ...] = (google_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError,
                                            requests.RequestException)
REST_PREFIX = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) \S+: ")  # api_core puts the method and URL first
CONSOLE_HINT = "check the Cloud Console, then run bootstrap again"
T = TypeVar("T")


def poll_seconds(default: float) -> float:
    """Seconds between polls of a long-running operation; CAVE_GITOPS_POLL_SECONDS overrides (tests use 0)."""
    value = os.environ.get(POLL_ENV, "").strip()
    try:
        return max(0.0, float(value)) if value else default
    except ValueError:
        return default


# ---------------------------------------------------------------------- clients


def rest_client(module: str, name: str, api: str) -> Any:
    """GAPIC client `module.name` over REST, with ADC and `api`'s configured endpoint (imported on first use)."""
    cls = getattr(importlib.import_module(module), name)
    return cls(credentials=clients.credentials(), transport="rest", client_options=clients.client_options(api))


def per_project(module: str, name: str, api: str) -> Callable[[str], Any]:
    """`client(project)`: one google-cloud-core client `module.name` per project (the client's project is part of
    every path, or is billed), built on first use."""

    @cache
    def client(project: str) -> Any:
        cls = getattr(importlib.import_module(module), name)
        return cls(project=project, credentials=clients.credentials(), client_options=clients.client_options(api))

    return client


# ---------------------------------------------------------------------- values and errors


def resolved(resource: Resource, ctx: Context) -> dict[str, Any]:
    """The resource's fields with references resolved."""
    return {key: ctx.resolve(value) for key, value in resource.fields.items()}


def short_name(path: str) -> str:
    """`https://.../regions/us-east1`, `projects/p/global/networks/n` or `projects/p/topics/t` → the last path
    segment (a short id stays as it is)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def api_message(exc: Exception) -> str:
    """Google's error message and HTTP status on one line, e.g. `Permission denied (HTTP 403)`. The message of a
    REST error's JSON body is preferred: api_core prefixes its own with the method and URL, which only add noise.
    Works for google.api_core errors (REST and gRPC), googleapiclient's HttpError and connection errors."""
    message = getattr(exc, "message", None) or getattr(exc, "reason", None) or str(exc)
    response: Any = getattr(exc, "response", None)
    with contextlib.suppress(AttributeError, KeyError, TypeError, ValueError):
        message = response.json()["error"]["message"] or message
    text = REST_PREFIX.sub("", one_line(message)) or type(exc).__name__
    code = getattr(exc, "code", None)
    if not isinstance(code, int):
        code = getattr(exc, "status_code", None)  # googleapiclient's HttpError
    return f"{text} (HTTP {code})" if isinstance(code, int) and code else text


def failed(key: str, action: str, exc: Exception) -> ProviderError:
    """`kind/name: <action> failed: <Google's message> (HTTP nnn)`, one line."""
    return ProviderError(f"{key}: {action} failed: {api_message(exc)}")


# ---------------------------------------------------------------------- long-running operations


def wait_until(done: Callable[[], bool], resource: Resource, ctx: Context, what: str, timeout: float,
               poll: float, refresh: Callable[[], object] | None = None, hint: str = CONSOLE_HINT) -> None:
    """Wait for `what`: while `done()` is false, report progress, sleep `poll_seconds(poll)` seconds and call
    `refresh` (if given; else `done` reads the operation itself); ProviderError after `timeout` seconds."""
    interval = poll_seconds(poll)
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise ProviderError(f"{resource.key}: gave up waiting for {what} after {timeout:.0f}s ({hint})")
        ctx.progress(f"{resource.key}: waiting for {what}")
        time.sleep(interval)
        if refresh is not None:
            refresh()



def operation_result(operation: Any, resource: Resource, ctx: Context, what: str, timeout: float,
                     poll: float) -> None:
    """Wait for api_core's long-running `operation` (google.longrunning) and raise the error it ended with."""
    wait_until(operation.done, resource, ctx, what, timeout, poll)
    operation.result(timeout=0)


# ---------------------------------------------------------------------- calls


def read_or_none(resource: Resource, read: Callable[[], T]) -> T | None:
    """`read()`, or None when Google answers 404 Not Found; any other failure is a ProviderError
    `kind/name: reading failed: ...`."""
    try:
        return read()
    except google_exceptions.NotFound:
        return None
    except CALL_ERRORS as exc:
        raise failed(resource.key, "reading", exc) from None


def create_or_exists(resource: Resource, create: Callable[[], object]) -> None:
    """`create()` (which waits until the resource is usable). "Already exists" (409) counts as success: bootstrap
    never changes what exists. Any other failure is a ProviderError `kind/name: create failed: ...`."""
    try:
        create()
    except google_exceptions.Conflict:
        return
    except CALL_ERRORS as exc:
        raise failed(resource.key, "create", exc) from None
