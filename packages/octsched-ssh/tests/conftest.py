"""Fixtures: three real SSH hosts on loopback addresses (see ``sshhosts.py``).

Without sshd or tmux the ssh tests are skipped locally, but in CI (``CI`` set to a
true value) that is an error: the hosts are what these tests are about.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sshhosts import TestHosts, missing_tools


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


@pytest.fixture(scope="session")
def ssh_hosts_session() -> Iterator[TestHosts]:
    missing = missing_tools()
    if missing:
        message = f"the ssh tests need {', '.join(missing)} (apt-get install openssh-server tmux)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="oct-ssh-hosts-"))
    hosts = TestHosts(root, 3).up()
    try:
        yield hosts
    finally:
        hosts.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ssh_hosts(ssh_hosts_session: TestHosts) -> Iterator[TestHosts]:
    """The three hosts, all up, with no tmux session left from an earlier test."""
    ssh_hosts_session.ensure_up()
    ssh_hosts_session.write_known_hosts()
    yield ssh_hosts_session
    for host in ssh_hosts_session.hosts:
        host.tmux("kill-server")


@pytest.fixture(autouse=True)
def _own_base_store(tmp_path, monkeypatch):
    """With octcache installed, planning uses a base store: never the user's own."""
    monkeypatch.setenv("OCT_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("OCT_STORE_CACHE", str(tmp_path / "store-cache"))
