"""``invoke plugins``: what is installed, in which version, implementing which hooks."""

from __future__ import annotations

from invoke import task
from rich.table import Table

from octcore.cli.common import plugins_for_cli
from octcore.cli.console import console


@task
def plugins(c):
    """List installed plugins, their versions, hooks, and what they register."""
    found = plugins_for_cli()
    table = Table(title="oct plugins")
    for column in ("plugin", "distribution", "version", "hooks", "status"):
        table.add_column(column)
    for info in found.infos:
        status = f"[red]failed: {info.error}" if info.error else "ok"
        hooks = "\n".join(h.removeprefix("octcore_") for h in info.hooks) or "—"
        table.add_row(info.name, info.distribution, info.version, hooks, status)
    console.print(table)
    for kind, registry in (
        ("data sets", found.datasets),
        ("models", found.models),
        ("backends", found.backends),
        ("task collections", found.tasks),
    ):
        names = ", ".join(f"{r.name} ({registry.owner(r.name).split(' ')[0]})" for r in registry)
        console.print(f"[bold]{kind}:[/] {names or '—'}")
