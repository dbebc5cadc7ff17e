"""Errors a user can act on.

Every error raised for bad input names the file, the line or record number and what to do next,
so that the CLI can print it as-is and exit non-zero instead of showing a traceback.
"""

from __future__ import annotations


class DaarError(Exception):
    """Base class for errors whose message is meant for the user (printed without a traceback)."""


class InputError(DaarError):
    """A problem with an input file or record."""

    def __init__(self, path: object, problem: str, hint: str, line: int | None = None,
                 unit: str = "line"):
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.hint = hint
        where = f"{self.path}, {unit} {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}. {hint}")


class ConfigError(DaarError):
    """An impossible or inconsistent setting (unknown domain, budget larger than the pool, ...)."""
