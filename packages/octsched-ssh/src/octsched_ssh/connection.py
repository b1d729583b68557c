"""One host: its SSH connection, SFTP channel and remote agent, on a background event loop.

The backend's methods are synchronous (the executor calls them from its thread);
the network work is asyncio (``asyncssh``) on one loop thread shared by every
host. ``Loop.call`` runs a coroutine there and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import posixpath
import shlex
import threading
import time
from collections.abc import Callable, Coroutine
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from octsched_ssh.config import HostConfig

log = logging.getLogger("octsched_ssh")
T = TypeVar("T")

REMOTE_FILES = ("agent.py", "jobwrap.sh")


class HostError(Exception):
    """A host cannot be used: unreachable, refused, or its agent failed. Message names the host."""


class Loop:
    """An asyncio loop on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="octsched-ssh", daemon=True
        )
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        async def cancel_all() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(TimeoutError):
            self.call(cancel_all(), 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


def remote_file_text(name: str) -> str:
    return resources.files("octsched_ssh.remote").joinpath(name).read_text()


def remote_files_digest() -> str:
    import hashlib

    digest = hashlib.sha256()
    for name in REMOTE_FILES:
        digest.update(remote_file_text(name).encode())
    return digest.hexdigest()[:16]


def describe_connect_error(host: HostConfig, exc: BaseException) -> str:
    """One line a user can act on, naming the host and the cause."""
    where = f"host {host.name} ({host.target()})"
    known = host.known_hosts or "~/.ssh/known_hosts"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return (
            f"{where}: refused: its host key is not the one in {known} ({exc.reason}); "
            "if the host was reinstalled, check the new key and update known_hosts "
            "(ssh-keygen -R, then ssh to it once); oct never skips this check"
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"{where}: authentication failed ({exc.reason}); check user and identity_file"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"{where}: no answer within {host.connect_timeout:g}s"
    if isinstance(exc, OSError):
        return f"{where}: unreachable: {exc.strerror or exc}"
    if isinstance(exc, asyncssh.Error):
        return f"{where}: ssh error: {exc.reason}"
    return f"{where}: {type(exc).__name__}: {exc}"


def _known_hosts_path(host: HostConfig) -> Path:
    return Path(host.known_hosts or "~/.ssh/known_hosts").expanduser()


async def _trust_on_first_use(host: HostConfig) -> None:
    """Record a host's key if known_hosts has no entry for it (only with the explicit option)."""
    path = _known_hosts_path(host)
    port = host.port or 22
    if path.exists():
        known = asyncssh.read_known_hosts(str(path))
        trusted, _, revoked, *_ = known.match(host.address, "", port)
        if trusted or revoked:
            return
    key = await asyncio.wait_for(
        asyncssh.get_server_host_key(host.address, port), host.connect_timeout
    )
    if key is None:
        return
    name = host.address if port == 22 else f"[{host.address}]:{port}"
    line = f"{name} {key.export_public_key().decode().strip()}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(line)
    log.warning("host %s: trusted its key on first use and recorded it in %s", host.name, path)


async def open_connection(host: HostConfig) -> asyncssh.SSHClientConnection:
    """Connect with host keys checked against known_hosts, and keepalives on."""
    if host.trust_on_first_use:
        await _trust_on_first_use(host)
    options: dict[str, Any] = {
        "known_hosts": str(_known_hosts_path(host)),
        "keepalive_interval": host.keepalive_interval,
        "keepalive_count_max": host.keepalive_count_max,
        "connect_timeout": host.connect_timeout,
    }
    if host.port:
        options["port"] = host.port
    if host.user:
        options["username"] = host.user
    if host.identity_file:
        options["client_keys"] = [str(Path(host.identity_file).expanduser())]
    if host.ssh_config:
        options["config"] = [str(Path(host.ssh_config).expanduser())]
    return await asyncssh.connect(host.address, **options)


def helper_path(workdir: str, name: str) -> str:
    return posixpath.join(workdir, ".oct-ssh", remote_files_digest(), name)


async def prepare_host(
    conn: asyncssh.SSHClientConnection, host: HostConfig
) -> tuple[str, asyncssh.SFTPClient]:
    """Create the workdir, return its absolute path and an SFTP client; put the helper files."""
    workdir = host.workdir
    relative = workdir[2:] if workdir.startswith("~/") else ("." if workdir == "~" else workdir)
    done = await conn.run(
        f"mkdir -p {shlex.quote(relative)} && cd {shlex.quote(relative)} && pwd", check=False
    )
    if done.exit_status != 0:
        raise HostError(
            f"host {host.name}: cannot use workdir {workdir!r}: {str(done.stderr).strip()}"
        )
    absolute = str(done.stdout).strip().splitlines()[-1]
    sftp = await conn.start_sftp_client()
    if not await sftp.exists(helper_path(absolute, REMOTE_FILES[-1])):
        await sftp.makedirs(posixpath.dirname(helper_path(absolute, "x")), exist_ok=True)
        for name in REMOTE_FILES:
            tmp = helper_path(absolute, f".{name}.{time.time_ns()}.tmp")
            async with sftp.open(tmp, "w") as handle:
                await handle.write(remote_file_text(name))
            await sftp.posix_rename(tmp, helper_path(absolute, name))
    return absolute, sftp


class HostLink:
    """The live link to one host for one run: connection, SFTP, agent, job states.

    ``state``: ``connecting``, ``up``, ``down`` (unreachable; retried) or ``refused``
    (host key, versions or setup: not retried). ``jobs`` maps a remote job name to
    the agent's last report about it.
    """

    def __init__(
        self,
        host: HostConfig,
        run_name: str,
        loop: Loop,
        on_change: Callable[[], None],
        check: Callable[[HostConfig, dict[str, Any]], str | None],
    ) -> None:
        self.host = host
        self.run_name = run_name
        self.loop = loop
        self.on_change = on_change
        self.check = check
        self.state = "connecting"
        self.reason = ""
        self.down_since: float | None = None
        self.info: dict[str, Any] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.cached_inputs: set[str] = set()
        self.workdir = ""
        self.conn: asyncssh.SSHClientConnection | None = None
        self.sftp: asyncssh.SFTPClient | None = None
        self.agent: asyncssh.SSHClientProcess | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._closing = False
        self._generation = 0

    # --- paths --------------------------------------------------------------------

    @property
    def run_root(self) -> str:
        return posixpath.join(self.workdir, "runs", self.run_name)

    def helper(self, name: str) -> str:
        return helper_path(self.workdir, name)

    # --- connecting ---------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, start the agent and check the host; sets ``state``. Never raises."""
        host = self.host
        try:
            conn = await open_connection(host)
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            permanent = isinstance(exc, asyncssh.HostKeyNotVerifiable)
            self._set_down(describe_connect_error(host, exc), refused=permanent)
            return
        try:
            await self._start(conn)
        except (OSError, asyncssh.Error, HostError, TimeoutError, ValueError) as exc:
            conn.close()
            message = str(exc) if isinstance(exc, HostError) else describe_connect_error(host, exc)
            self._set_down(message, refused=isinstance(exc, HostError))
            return
        problem = self.check(host, self.info)
        if problem:
            self._closing = True
            conn.close()
            self._set_down(f"host {host.name}: refusing to dispatch: {problem}", refused=True)
            return
        self.state, self.reason, self.down_since = "up", "", None
        self.on_change()

    async def _start(self, conn: asyncssh.SSHClientConnection) -> None:
        host = self.host
        self.workdir, sftp = await prepare_host(conn, host)
        command = shlex.join([host.python, self.helper("agent.py"), self.run_root])
        agent = await conn.create_process(f"exec {command}", encoding="utf-8")
        try:
            line = await asyncio.wait_for(agent.stdout.readline(), timeout=60)
            first = json.loads(line) if line else None
        except (TimeoutError, json.JSONDecodeError):
            first = None
        if not first or first.get("ev") not in {"ready", "job"}:
            agent.close()
            errors = (await agent.stderr.read())[-500:] if agent.stderr else ""
            raise HostError(
                f"host {host.name}: the remote agent did not start with python {host.python!r}: "
                f"{(line or '').strip() or errors.strip() or 'no output'}"
            )
        self.conn, self.sftp, self.agent = conn, sftp, agent
        self._generation += 1
        self.jobs = {}
        self._handle(first)
        while first.get("ev") != "ready":
            first = json.loads(await agent.stdout.readline())
            self._handle(first)
        self.loop.loop.create_task(self._read(agent, self._generation))

    def _set_down(self, reason: str, *, refused: bool = False) -> None:
        if self.state != "refused":
            self.state = "refused" if refused else "down"
        self.reason = reason
        if self.down_since is None:
            self.down_since = time.monotonic()
        self.conn = self.sftp = self.agent = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(HostError(reason))
        self._pending.clear()
        self.on_change()

    async def _read(self, agent: asyncssh.SSHClientProcess, generation: int) -> None:
        try:
            async for line in agent.stdout:
                self._handle(json.loads(line))
        except (asyncssh.Error, OSError, json.JSONDecodeError):
            pass
        if generation == self._generation and not self._closing:
            log.warning("host %s: connection lost", self.host.name)
            if self.conn is not None:
                self.conn.close()
            self._set_down(f"host {self.host.name}: connection lost")

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("ev")
        if kind == "reply":
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                if message["ok"]:
                    future.set_result(message.get("result"))
                else:
                    future.set_exception(HostError(f"host {self.host.name}: {message['error']}"))
            return
        if kind == "ready":
            self.info = message.get("info", {})
        elif kind == "job":
            self.jobs[message["job"]] = message
        self.on_change()

    # --- requests -----------------------------------------------------------------

    async def request(self, op: str, timeout: float = 120.0, **args: Any) -> Any:
        if self.state != "up" or self.agent is None:
            raise HostError(self.reason or f"host {self.host.name} is not connected")
        self._next_id += 1
        future: asyncio.Future[Any] = self.loop.loop.create_future()
        self._pending[self._next_id] = future
        self.agent.stdin.write(json.dumps({"id": self._next_id, "op": op, "args": args}) + "\n")
        return await asyncio.wait_for(future, timeout)

    async def close(self) -> None:
        self._closing = True
        if self.agent is not None:
            self.agent.stdin.write_eof()
        if self.conn is not None:
            self.conn.close()
            with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
                await asyncio.wait_for(self.conn.wait_closed(), 5)
        self.conn = self.sftp = self.agent = None
