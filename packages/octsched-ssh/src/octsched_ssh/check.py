"""``invoke cluster.check``: can each host take jobs, and if not, why."""

from __future__ import annotations

import asyncio
import json
import shlex
from typing import Any

import asyncssh
import attrs

from octsched_ssh.config import Cluster, HostConfig
from octsched_ssh.connection import HostError, helper_path, open_connection, prepare_host


@attrs.frozen
class HostReport:
    """One row of the check table. ``problem`` is None when the host can take jobs."""

    host: str
    reachable: str = "?"
    auth: str = "-"
    host_key: str = "-"
    tmux: str = "-"
    python: str = "-"
    octcore: str = "-"
    torch: str = "-"
    gpus: str = "-"
    disk_free: str = "-"
    problem: str | None = None


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "?"


async def check_host(host: HostConfig, here: dict[str, Any]) -> HostReport:
    from octsched_ssh.backend import version_problem
    from octsched_ssh.connection import describe_connect_error

    try:
        conn = await open_connection(host)
    except asyncssh.HostKeyNotVerifiable as exc:
        return HostReport(
            host.name, "yes", "-", "MISMATCH", problem=describe_connect_error(host, exc)
        )
    except asyncssh.PermissionDenied as exc:
        return HostReport(
            host.name, "yes", "FAILED", "ok", problem=describe_connect_error(host, exc)
        )
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        return HostReport(host.name, "NO", problem=describe_connect_error(host, exc))
    try:
        workdir, sftp = await prepare_host(conn, host)
        sftp.exit()
        agent = helper_path(workdir, "agent.py")
        done = await conn.run(shlex.join([host.python, agent, "--probe", workdir]), check=False)
        if done.exit_status != 0:
            error = str(done.stderr).strip().splitlines()[-1:] or ["no output"]
            problem = f"python {host.python!r} does not run: {error[0]}"
            return HostReport(host.name, "yes", "ok", "ok", problem=problem)
        info = json.loads(str(done.stdout))
    except (HostError, asyncssh.Error, OSError, json.JSONDecodeError) as exc:
        return HostReport(host.name, "yes", "ok", "ok", problem=str(exc))
    finally:
        conn.close()
    gpus = str(info.get("gpus", 0))
    if host.gpus:
        gpus += f" (uses {','.join(host.gpus)})"
    return HostReport(
        host.name,
        "yes",
        "ok",
        "ok",
        tmux=info.get("tmux") or "MISSING",
        python=info.get("python") or "?",
        octcore=info.get("octcore") or "MISSING",
        torch=info.get("torch") or "missing",
        gpus=gpus,
        disk_free=_size(info.get("disk_free")),
        problem=version_problem(host, info, here),
    )


def check_cluster(cluster: Cluster) -> list[HostReport]:
    from octsched_ssh.backend import local_versions

    here = local_versions()

    async def run_all() -> list[HostReport]:
        return list(await asyncio.gather(*(check_host(h, here) for h in cluster.hosts)))

    return asyncio.run(run_all())
