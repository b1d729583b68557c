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


def show_help_if_asked(task_name: str, *values: object) -> None:
    """``invoke grid --help`` would bind ``--help`` to a positional argument: show help."""
    if not any(value in {"-h", "--help"} for value in values):
        return
    from invoke import Program

    from octcore.cli.collection import build_collection

    program = Program(namespace=build_collection(), name="oct", binary="invoke")
    program.run(["invoke", "--help", task_name], exit=False)
    raise Exit(code=0)
