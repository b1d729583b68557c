"""The backend contract suite on real SSH hosts (three sshd on loopback, one tmux server each)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from octcore.backend import Backend, Handle
from octcore.testing.backend_contract import BackendContract
from octsched_ssh.backend import SshBackend
from octsched_ssh.config import load_cluster

pytestmark = pytest.mark.ssh


class TestSshContract(BackendContract):
    @pytest.fixture
    def make_backend(self, ssh_hosts, tmp_path: Path, run_dir: Path) -> Callable[[], Backend]:
        self.hosts = ssh_hosts
        cluster = ssh_hosts.cluster_toml(tmp_path / "cluster.toml")
        made: list[SshBackend] = []

        def make() -> SshBackend:
            backend = SshBackend(load_cluster(cluster), run_dir)
            made.append(backend)
            return backend

        yield make
        for backend in made:
            backend.close()

    def kill_from_outside(self, backend: Backend, handle: Handle) -> None:
        host = next(h for h in self.hosts.hosts if h.name == handle["host"])
        done = host.tmux("kill-session", "-t", "=" + handle["session"])
        assert done.returncode == 0, done.stderr
