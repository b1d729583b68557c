"""Helpers shared by the CLI tasks."""

from __future__ import annotations

import sys
from typing import NoReturn

from invoke.exceptions import Exit

from octcore.plugins import Plugins, default_plugins


def plugins_for_cli() -> Plugins:
    return default_plugins()


def fail(exc: BaseException) -> NoReturn:
    """End the command with the error's message (no traceback) and exit status 2."""
    print(f"error: {exc}", file=sys.stderr)
    raise Exit(code=2)
