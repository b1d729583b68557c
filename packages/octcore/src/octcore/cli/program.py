"""The ``oct`` console script: the same tasks as ``invoke`` in a checkout."""

from __future__ import annotations

from invoke import Program

import octcore
from octcore.cli.collection import build_collection


def main() -> None:
    Program(
        namespace=build_collection(), version=octcore.__version__, name="oct", binary="oct"
    ).run()
