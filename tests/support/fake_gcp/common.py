"""What several fakes share: request bodies parsed with the API's own message types, and long-running
operations that finish after a number of polls."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_gcp.server import Response, error


def normalised(message_type: Any, body: Any) -> dict[str, Any]:
    """`body` parsed as `message_type` (ValueError on unknown fields or bad values), back as camelCase JSON."""
    from google.protobuf import json_format

    try:
        message = message_type.from_json(json.dumps(body))
    except json_format.ParseError as exc:
        raise ValueError(str(exc)) from None
    return dict(json.loads(message_type.to_json(message, use_integers_for_enums=False,
                                          always_print_fields_with_no_presence=False)))


def found(value: dict[str, Any] | None, missing: Callable[[], Response]) -> Response:
    """200 with `value`, or the `missing()` error when there is none."""
    return (200, value) if value is not None else missing()


@dataclass
class Operations:
    """Long-running operations: each answers "running" to `pending_polls` GETs, then finishes: its commit runs
    (creating what the operation creates; the commit's result is the operation's response), or it ends with
    `operation_error` (once; nothing is created). Subclasses say what a finished operation looks like."""

    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending_polls: int = 0
    operation_error: str | None = None  # the next operation finishes with this error
    _polls_left: dict[str, int] = field(default_factory=dict)
    _commit: dict[str, Callable[[], Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))  # operations and resources

    def new_name(self) -> str:
        """A fresh operation name."""
        return f"operation-{next(self._ids)}-fake"

    def start_operation(self, name: str, operation: dict[str, Any], commit: Callable[[], Any]) -> Response:
        """Store the new `operation` (as the API answers a create) and answer it, finished if no polls are due."""
        self.operations[name] = operation
        self._commit[name] = commit
        self._polls_left[name] = self.pending_polls
        if self.pending_polls == 0:
            self._finish(name)
        return 200, dict(operation)

    def poll_operation(self, name: str) -> dict[str, Any] | None:
        """The operation as a GET answers it (one poll used up, finishing it when none are left); None if unknown."""
        operation = self.operations.get(name)
        if operation is None:
            return None
        if not self._is_done(operation):
            if self._polls_left[name] > 0:
                self._polls_left[name] -= 1
            else:
                self._finish(name)
        return dict(operation)

    def _finish(self, name: str) -> None:
        error, self.operation_error = self.operation_error, None
        commit = self._commit.pop(name)
        self._complete(self.operations[name], error, None if error is not None else commit())

    def _is_done(self, operation: dict[str, Any]) -> bool:
        return bool(operation["status"] == "DONE")

    def _complete(self, operation: dict[str, Any], error: str | None, response: Any) -> None:
        """Mark `operation` finished, with `error` or (error None) the commit's `response`."""
        raise NotImplementedError


@dataclass
class LongRunning(Operations):
    """google.longrunning operations (`done`, then `response` as an `Any` with `@type`, or `error`)."""

    def start(self, name: str, metadata: dict[str, Any], commit: Callable[[], dict[str, Any]]) -> Response:
        return self.start_operation(name, {"name": name, "metadata": metadata, "done": False}, commit)

    def get(self, name: str) -> Response:
        return found(self.poll_operation(name), lambda: error(404, f"Operation '{name}' not found"))

    def _is_done(self, operation: dict[str, Any]) -> bool:
        return bool(operation["done"])

    def _complete(self, operation: dict[str, Any], error: str | None, response: Any) -> None:
        operation["done"] = True
        if error is not None:
            operation["error"] = {"code": 8, "message": error}
        else:
            operation["response"] = response
