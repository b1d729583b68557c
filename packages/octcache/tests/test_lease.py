"""Leases: one live owner per key; a crashed owner's lease expires and is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from octcache.lease import Leases
from octcache.store import Store
from octcache.testing import PYTHON, subprocess_env

KEY = "k" * 64


def test_one_owner_at_a_time(tmp_path):
    store = Store(str(tmp_path / "store"))
    a, b = Leases(store, ttl=30), Leases(store, ttl=30)
    assert a.acquire(KEY) and a.acquire(KEY)  # re-entrant for its owner
    assert not b.acquire(KEY)
    assert b.held_by_other(KEY).owner == a.owner
    a.release(KEY)
    assert b.held_by_other(KEY) is None and b.acquire(KEY)
    assert not a.acquire(KEY)
    b.release_all()


def test_racing_contenders_get_one_winner(tmp_path):
    store = Store(str(tmp_path / "store"))
    owners = [Leases(store, ttl=30) for _ in range(8)]
    barrier = threading.Barrier(len(owners))
    wins = []

    def contend(leases):
        barrier.wait()
        if leases.acquire(KEY):
            wins.append(leases.owner)

    threads = [threading.Thread(target=contend, args=(o,)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_heartbeat_keeps_a_lease_alive_past_its_ttl(tmp_path):
    store = Store(str(tmp_path / "store"))
    a, b = Leases(store, ttl=0.6), Leases(store, ttl=0.6)
    assert a.acquire(KEY)
    time.sleep(1.5)  # the background thread refreshed it every ttl/4
    assert not b.acquire(KEY)
    a.release_all()


def test_memory_store_leases(tmp_path):
    import uuid

    store = Store(f"memory://lease-{uuid.uuid4().hex}")
    a, b = Leases(store, ttl=30), Leases(store, ttl=30)
    assert a.acquire(KEY) and not b.acquire(KEY)
    a.release(KEY)
    assert b.acquire(KEY)


HOLDER = """
import sys, time
from octcache.lease import Leases
from octcache.store import Store
leases = Leases(Store(sys.argv[1]), ttl=float(sys.argv[2]))
assert leases.acquire(sys.argv[3])
print("HELD", leases.owner, flush=True)
time.sleep(120)
"""


def test_a_killed_holder_s_lease_expires_and_is_taken_over(tmp_path):
    root = str(tmp_path / "store")
    ttl = 1.0
    holder = subprocess.Popen(
        [PYTHON, "-c", HOLDER, root, str(ttl), KEY],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        line = holder.stdout.readline()
        assert line.startswith("HELD"), line
        other = Leases(Store(root), ttl=ttl)
        time.sleep(ttl * 1.5)
        assert not other.acquire(KEY)  # alive: its heartbeat keeps the lease
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        deadline = time.time() + 10 * ttl
        while not other.acquire(KEY):
            assert time.time() < deadline, "the dead holder's lease never expired"
            time.sleep(0.1)
        assert other.holder(KEY).owner == other.owner and other.holder(KEY).generation == 2
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_dead_holder_on_this_host_is_taken_over_without_waiting_for_the_ttl(tmp_path):
    root = str(tmp_path / "store")
    holder = subprocess.Popen(
        [PYTHON, "-c", HOLDER, root, "600", KEY], stdout=subprocess.PIPE, text=True,
        env=subprocess_env(),
    )  # fmt: skip
    try:
        assert holder.stdout.readline().startswith("HELD")
        other = Leases(Store(root), ttl=600)
        assert not other.acquire(KEY)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert other.acquire(KEY), "a coordinator killed on this host blocks nobody"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
