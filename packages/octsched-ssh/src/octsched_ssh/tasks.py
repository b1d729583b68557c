"""The ``cluster.*`` tasks: ``invoke cluster.check`` and ``invoke cluster.sync``."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from octcore.cli.common import fail
from octcore.errors import OctError


@task(help={"cluster": "the cluster file (TOML, or the research code's cluster_config.json)"})
def check(c, cluster):
    """Check every host: reachable, auth, host key, tmux, Python, oct version, GPUs, free disk."""
    from rich.table import Table

    from octcore.cli.console import console
    from octsched_ssh.check import check_cluster
    from octsched_ssh.config import load_cluster

    try:
        reports = check_cluster(load_cluster(cluster))
    except OctError as exc:
        fail(exc)
    table = Table(title=f"cluster {cluster}")
    columns = ("host", "reachable", "auth", "host key", "tmux", "python", "octcore", "torch",
               "GPUs", "free disk", "ready")  # fmt: skip
    for column in columns:
        table.add_column(column)
    for r in reports:
        ready = "[green]yes[/]" if r.problem is None else "[red]no[/]"
        table.add_row(r.host, r.reachable, r.auth, r.host_key, r.tmux, r.python, r.octcore,
                      r.torch, r.gpus, r.disk_free, ready)  # fmt: skip
    console.print(table)
    bad = [r for r in reports if r.problem]
    for r in bad:
        console.print(f"[red]{r.host}[/]: {r.problem}", highlight=False)
    if bad:
        from invoke.exceptions import Exit

        raise Exit(code=1)


@task(
    help={
        "cluster": "the cluster file",
        "source": "the oct checkout to push (default: the one around the current directory)",
        "install": "pip install -e the packages on each host after copying (default: yes)",
    }
)
def sync(c, cluster, source=None, install=True):
    """Push this project's code to each host's workdir (rsync over ssh) and install it there."""
    from octcore.cli.console import console
    from octsched_ssh.config import load_cluster
    from octsched_ssh.sync import project_root, sync_cluster

    try:
        root = Path(source).resolve() if source else project_root()
        results = sync_cluster(load_cluster(cluster), root, install=install)
    except OctError as exc:
        fail(exc)
    failed = False
    for name, outcome in results.items():
        if isinstance(outcome, Exception):
            failed = True
            console.print(f"[red]{name}[/]: {outcome}", highlight=False)
        else:
            console.print(f"[green]{name}[/]: {outcome}", highlight=False)
    if failed:
        from invoke.exceptions import Exit

        raise Exit(code=1)


collection = Collection("cluster", check, sync)
