"""Real SSH test hosts on one machine: one ``sshd`` per loopback address (127.0.0.2, .3 …).

Each host has its own host key, port, directories and tmux server (``SetEnv
TMUX_TMPDIR`` in its ``sshd_config``, so a plain ``tmux`` run through that host
talks to that host's server); the client key, ``authorized_keys`` and
``known_hosts`` are generated, so host keys are verified for real. Every process
is stopped by its PID. The hosts log in as the user running the tests (root in
CI): sshd needs root to start as another user, and a dedicated user could not read
a Python installed under root's home. Root's login shell may be slow (a heavy
``.bashrc``); the backend starts one login shell per host connection, not per job.

Usage: ``hosts = TestHosts(tmp_dir, 3); hosts.up(); ...; hosts.down()``, or
``python sshhosts.py DIR [N]`` to bring hosts up by hand (Ctrl-C stops them).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def missing_tools() -> list[str]:
    missing = [] if SSHD else ["sshd (openssh-server)"]
    missing += [tool for tool in ("ssh", "ssh-keygen", "tmux") if shutil.which(tool) is None]
    return missing


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def keygen(path: Path, comment: str) -> None:
    for p in (path, path.with_suffix(".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True
    )


class TestHost:
    def __init__(self, root: Path, index: int, auth_keys: Path):
        self.index = index
        self.name = f"h{index}"
        self.address = f"127.0.0.{index + 1}"
        self.dir = root / self.name
        self.tmux_dir = self.dir / "tmux"
        self.workdir = self.dir / "work"
        self.port = 0
        self.auth_keys = auth_keys
        self.process: subprocess.Popen | None = None

    @property
    def host_key(self) -> Path:
        return self.dir / "host_key"

    def known_hosts_line(self, key: Path | None = None) -> str:
        key = key or self.host_key
        kind, blob = key.with_suffix(".pub").read_text().split()[:2]
        return f"[{self.address}]:{self.port} {kind} {blob}\n"

    def write_config(self) -> Path:
        config = self.dir / "sshd_config"
        config.write_text(
            f"ListenAddress {self.address}:{self.port}\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.dir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.auth_keys}\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "Subsystem sftp internal-sftp\n"
            f"SetEnv TMUX_TMPDIR={self.tmux_dir}\n"
            "MaxStartups 100\n"
            "ClientAliveInterval 5\n"
            "ClientAliveCountMax 3\n"
            "LogLevel VERBOSE\n"
        )
        return config

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmux_dir.mkdir(exist_ok=True)
        self.tmux_dir.chmod(0o700)
        if not self.host_key.exists():
            keygen(self.host_key, self.name)
        if not self.port:
            self.port = free_port(self.address)
        config = self.write_config()
        assert SSHD, "sshd is not installed"
        self.process = subprocess.Popen(
            [SSHD, "-D", "-f", str(config), "-E", str(self.dir / "sshd.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (
                    (self.dir / "sshd.log").read_text() if (self.dir / "sshd.log").exists() else ""
                )
                raise RuntimeError(f"sshd for {self.name} exited: {log[-500:]}")
            with socket.socket() as sock:
                if sock.connect_ex((self.address, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"sshd for {self.name} does not listen on {self.address}:{self.port}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, TMUX_TMPDIR=str(self.tmux_dir))
        env.pop("TMUX", None)
        return subprocess.run(["tmux", *args], env=env, capture_output=True, text=True)

    def tmux_sessions(self) -> list[str]:
        done = self.tmux("list-sessions", "-F", "#{session_name}")
        return done.stdout.split() if done.returncode == 0 else []

    def _children(self, pid: int) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """Host death: sshd's listener, its per-connection children and tmux server, by PID."""
        pids = []
        if self.process is not None:
            pids += [self.process.pid, *self._children(self.process.pid)]
        done = self.tmux("display-message", "-p", "#{pid}")
        if done.returncode == 0 and done.stdout.strip().isdigit():
            pids.append(int(done.stdout.strip()))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        self.tmux("kill-server")
        if self.process is not None:
            for pid in self._children(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None


class TestHosts:
    """N loopback hosts under ``root``: ``up()``, ``cluster_toml(...)``, ``down()``."""

    def __init__(self, root: Path, count: int = 3):
        self.root = Path(root)
        self.user = getpass.getuser()
        self.client_key = self.root / "client_key"
        self.auth_keys = self.root / "authorized_keys"
        self.known_hosts = self.root / "known_hosts"
        self.hosts = [TestHost(self.root, i, self.auth_keys) for i in range(1, count + 1)]

    def up(self) -> TestHosts:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        keygen(self.client_key, "oct-test-client")
        shutil.copyfile(self.client_key.with_suffix(".pub"), self.auth_keys)
        self.auth_keys.chmod(0o644)
        try:
            for host in self.hosts:
                host.start()
        except BaseException:
            self.down()
            raise
        self.write_known_hosts()
        return self

    def write_known_hosts(self) -> None:
        self.known_hosts.write_text("".join(h.known_hosts_line() for h in self.hosts))

    def ensure_up(self) -> None:
        for host in self.hosts:
            if not host.alive():
                host.start()

    def down(self) -> None:
        for host in self.hosts:
            host.stop()

    def cluster_toml(
        self,
        path: Path,
        *,
        hosts: list[TestHost] | None = None,
        extra_hosts: str = "",
        python: str | None = None,
        **defaults: object,
    ) -> Path:
        """Write a cluster file for these hosts (workdirs under ``path``'s folder)."""
        settings = {
            "user": self.user,
            "identity_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "python": python or sys.executable,
            "connect_timeout": 5,
            "keepalive_interval": 1,
            "keepalive_count_max": 3,
            "lost_after": 3,
        }
        settings.update(defaults)
        lines = ["[defaults]"] + [f"{k} = {_toml(v)}" for k, v in settings.items()]
        for host in hosts or self.hosts:
            work = path.parent / f"{host.name}-work"
            lines += [
                "",
                "[[hosts]]",
                f'name = "{host.name}"',
                f'address = "{host.address}"',
                f"port = {host.port}",
                f"workdir = {_toml(str(work))}",
            ]
        path.write_text("\n".join(lines) + "\n" + extra_hosts)
        return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    hosts = TestHosts(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3).up()
    cluster = hosts.cluster_toml(Path(sys.argv[1]) / "cluster.toml")
    print(f"{len(hosts.hosts)} hosts up; cluster file: {cluster}; Ctrl-C stops them")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        hosts.down()
