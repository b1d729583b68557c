"""oct's command line in a checkout: ``invoke --list``.

The experiment tasks (``train``, ``plugins``, and what installed plugins add,
such as ``grid``, ``cluster.*`` or ``cache.*``) come from ``octcore`` and its
plugins; the same tasks are the ``oct`` console script once installed. The
development tasks below are thin front ends: ``noxfile.py`` is the source of
truth for checks.
"""

from __future__ import annotations

import os
import sys

from invoke import Collection, task

from octcore.cli.collection import build_collection

PYTHON = sys.executable


@task(help={"k": "only tests matching this expression", "fast": "skip tests marked slow"})
def test(c, k=None, fast=False):
    """Run the whole test suite (every package) in this environment, plugins strict."""
    env = {"OCT_STRICT_PLUGINS": "1"}
    args = ["-q"]
    if k:
        args += ["-k", k]
    if fast:
        args += ["-m", "not slow"]
    c.run(f"{PYTHON} -m pytest " + " ".join(_quote(a) for a in args), env=env, pty=False)


@task
def lint(c):
    """ruff over the tree (the same check as ``nox -s lint``)."""
    c.run(f"{PYTHON} -m ruff check packages bench tasks.py noxfile.py")


@task(help={"session": "one nox session (default: all)"})
def check(c, session=None):
    """Per-package test sessions in isolated environments, plus lint (nox)."""
    c.run(f"{PYTHON} -m nox" + (f" -s {_quote(session)}" if session else ""))


@task(help={"name": "trainer (default), executor, ssh or cache"})
def bench(c, name="trainer"):
    """Run a benchmark under bench/ and write bench/results/NAME.json."""
    c.run(
        f"{PYTHON} bench/{_quote(name)}.py",
        env={"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")},
    )


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


ns: Collection = build_collection()
for item in (test, lint, check, bench):
    ns.add_task(item)
