"""Errors a user is meant to read.

Every problem with input is reported before any work starts, as one message that
names the file, the key and what was expected. ``ConfigError`` carries all the
problems of one input at once, so a user fixes a file in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs


class OctError(Exception):
    """Base class of errors that end a command with a message and no traceback."""


@attrs.frozen
class Problem:
    """One thing wrong with an input: where (``key``, dotted) and what was expected."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class ConfigError(OctError):
    """One or more problems in one input (a file, or the command line)."""

    def __init__(self, source: str, problems: Iterable[Problem]):
        self.source = source
        self.problems = tuple(problems)
        lines = [f"{source}: {len(self.problems)} problem(s), nothing was run:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class PluginError(OctError):
    """A plugin could not be loaded, or two plugins claim one name."""


class UnknownNameError(OctError, KeyError):
    """A registry lookup for a name nobody registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class JobError(OctError):
    """A job could not run; the message is the one-line reason."""
