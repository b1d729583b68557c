"""``invoke cluster.sync``: push this project's code to each host and install it there.

The code goes with ``rsync`` over ``ssh`` (same user, port, key and known_hosts as
the backend; host keys checked) into ``WORKDIR/code``; then the host's Python runs
``python -m pip install -e`` of every package, so ``python -m octcore.job`` and the
plugins' entry points work there. Dependencies (torch…) come from the host's own
package index or cache, as for any pip install.
"""

from __future__ import annotations

import asyncio
import posixpath
import shlex
import shutil
import subprocess
from pathlib import Path

import asyncssh

from octsched_ssh.config import Cluster, HostConfig
from octsched_ssh.connection import HostError, open_connection, prepare_host

EXCLUDES = (".git", "runs", ".venv", "venv", "__pycache__", "*.pyc", "*.egg-info", ".nox", "build")


def project_root(start: Path | None = None) -> Path:
    """The checkout holding ``packages/octcore`` (this one, or one above ``start``)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "packages" / "octcore" / "pyproject.toml").exists():
            return folder
    raise HostError(f"no oct checkout (packages/octcore) at or above {here}; pass --source")


def ssh_command(host: HostConfig) -> list[str]:
    words = ["ssh", "-o", "BatchMode=yes"]
    if host.ssh_config:
        words += ["-F", str(Path(host.ssh_config).expanduser())]
    known = Path(host.known_hosts or "~/.ssh/known_hosts").expanduser()
    words += ["-o", f"UserKnownHostsFile={known}"]
    words += ["-o", "StrictHostKeyChecking=" + ("accept-new" if host.trust_on_first_use else "yes")]
    words += ["-o", f"ServerAliveInterval={max(1, int(host.keepalive_interval))}"]
    words += ["-o", f"ConnectTimeout={max(1, int(host.connect_timeout))}"]
    if host.port:
        words += ["-p", str(host.port)]
    if host.identity_file:
        words += ["-i", str(Path(host.identity_file).expanduser()), "-o", "IdentitiesOnly=yes"]
    if host.user:
        words += ["-l", host.user]
    return words


def packages_of(root: Path) -> list[str]:
    found = sorted(p.parent.name for p in (root / "packages").glob("*/pyproject.toml"))
    return sorted(found, key=lambda name: name != "octcore")  # the core first


async def _remote_code_dir(host: HostConfig) -> str:
    conn = await open_connection(host)
    try:
        workdir, sftp = await prepare_host(conn, host)
        sftp.exit()
        code = posixpath.join(workdir, "code")
        await conn.run(f"mkdir -p {shlex.quote(code)}", check=True)
        return code
    finally:
        conn.close()


async def _install(host: HostConfig, code: str, packages: list[str]) -> str:
    conn = await open_connection(host)
    try:
        words = [host.python, "-m", "pip", "install", "-q"]
        for name in packages:
            words += ["-e", posixpath.join(code, "packages", name)]
        done = await conn.run(shlex.join(words), check=False)
        if done.exit_status != 0:
            raise HostError(
                f"host {host.name}: pip install failed: {str(done.stderr).strip()[-800:]}"
            )
        return shlex.join(words)
    finally:
        conn.close()


def sync_host(host: HostConfig, root: Path, *, install: bool = True) -> str:
    """Copy and (optionally) install the code on one host; returns what was done."""
    if shutil.which("rsync") is None:
        raise HostError("rsync is not installed here (apt-get install rsync)")
    try:
        code = asyncio.run(_remote_code_dir(host))
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        from octsched_ssh.connection import describe_connect_error

        raise HostError(describe_connect_error(host, exc)) from exc
    words = ["rsync", "-a", "--delete", "-e", shlex.join(ssh_command(host))]
    words += [f"--exclude={pattern}" for pattern in EXCLUDES]
    words += [f"{root}/", f"{host.address}:{code}/"]
    done = subprocess.run(words, capture_output=True, text=True)
    if done.returncode != 0:
        raise HostError(f"host {host.name}: rsync failed: {done.stderr.strip()[-800:]}")
    if not install:
        return f"code copied to {code}"
    command = asyncio.run(_install(host, code, packages_of(root)))
    return f"code copied to {code}; installed: {command}"


def sync_cluster(
    cluster: Cluster, root: Path, *, install: bool = True
) -> dict[str, str | HostError]:
    results: dict[str, str | HostError] = {}
    for host in cluster.hosts:
        try:
            results[host.name] = sync_host(host, root, install=install)
        except HostError as exc:
            results[host.name] = exc
    return results
