"""The one error type users see, and how it is printed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One problem a user caused: where it is and what to do about it."""

    path: str
    line: int = 0
    col: int = 0
    message: str = ""

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}: {self.message}"
        return f"{self.path}: {self.message}" if self.path else self.message


class UserError(Exception):
    """Bad input: printed one line per problem, exit code 2, no traceback."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", message=problems)]
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))
