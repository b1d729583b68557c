"""Grids on three real SSH hosts through the real executor, with faults injected."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from standin import run_stand_in_grid, write_grid

from octcore import outputs
from octcore.executor.journal import Journal

pytestmark = pytest.mark.ssh

HERE = Path(__file__).parent


def done_events(run_dir: Path) -> Counter:
    journal = Journal.of_run(run_dir, readonly=True)
    try:
        return Counter(e["job"] for e in journal.events() if e["event"] == "done")
    finally:
        journal.close()


def launches(run_dir: Path) -> Counter:
    journal = Journal.of_run(run_dir, readonly=True)
    try:
        return Counter(e["job"] for e in journal.events() if e["event"] == "launched")
    finally:
        journal.close()


def running_in_journal(run_dir: Path) -> int:
    try:
        journal = Journal.of_run(run_dir, readonly=True)
    except Exception:  # not created yet
        return 0
    try:
        return sum(row.state == "running" for row in journal.jobs())
    except Exception:  # tables not created yet
        return 0
    finally:
        journal.close()


def hosts_used(run_dir: Path) -> set[str]:
    journal = Journal.of_run(run_dir, readonly=True)
    try:
        return {row.slot.split("/")[0] for row in journal.jobs() if row.slot}
    finally:
        journal.close()


def assert_all_done_once(run_dir: Path, count: int) -> None:
    jobs = sorted((run_dir / "jobs").iterdir())
    assert len(jobs) == count
    for job_dir in jobs:
        assert outputs.is_complete(job_dir), job_dir
        assert json.loads((job_dir / outputs.METRICS).read_text()) == {"job": job_dir.name}
    assert set(done_events(run_dir).values()) == {1}
    assert len(done_events(run_dir)) == count


def test_stand_in_grid_across_three_hosts(ssh_hosts, tmp_path):
    cluster = ssh_hosts.cluster_toml(tmp_path / "cluster.toml")
    grid = write_grid(tmp_path / "grid.toml", participants=3, lrs=3)
    summary = run_stand_in_grid(grid, tmp_path / "run", cluster, sleep=0.5)
    assert summary.ok, summary
    assert_all_done_once(tmp_path / "run", 9)
    assert hosts_used(tmp_path / "run") == {"h1", "h2", "h3"}


@pytest.mark.slow
def test_training_grid_across_three_hosts(ssh_hosts, tmp_path):
    """The grid command itself (tiny synthetic training) with ``--backend ssh --cluster``."""
    from octcore.cli.runs import run_grid

    cluster = ssh_hosts.cluster_toml(tmp_path / "cluster.toml")
    grid = write_grid(tmp_path / "tiny.toml", participants=3, lrs=1)
    code = run_grid(grid, "ssh", {"cluster": str(cluster)}, output=tmp_path / "runs")
    assert code == 0
    run_dir = tmp_path / "runs" / "tiny"
    plan = json.loads((run_dir / "plan.json").read_text())
    jobs = [run_dir / "jobs" / job["id"] for job in plan["jobs"]]
    assert len([j for j in plan["jobs"] if j["kind"] == "experiment"]) == 3  # and any base jobs
    assert all(outputs.is_complete(j) for j in jobs)
    assert all((j / outputs.HISTORY).exists() for j in jobs)
    assert len(hosts_used(run_dir)) > 1


def test_host_killed_mid_run_every_job_completes_once(ssh_hosts, tmp_path):
    cluster = ssh_hosts.cluster_toml(tmp_path / "cluster.toml", lost_after=2)
    grid = write_grid(tmp_path / "grid.toml", participants=3, lrs=3)
    victim = ssh_hosts.hosts[1]
    killed = threading.Event()

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not victim.tmux_sessions():
            time.sleep(0.05)
        victim.kill()
        killed.set()

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    summary = run_stand_in_grid(grid, tmp_path / "run", cluster, sleep=2.0)
    killer.join(10)
    assert killed.is_set()
    assert summary.ok, summary
    assert_all_done_once(tmp_path / "run", 9)
    journal = Journal.of_run(tmp_path / "run", readonly=True)
    lost = [e for e in journal.events() if e["event"] == "lost"]
    journal.close()
    assert lost, "the jobs of the killed host were requeued"


def test_coordinator_killed_and_restarted_adopts_running_jobs(ssh_hosts, tmp_path):
    cluster = ssh_hosts.cluster_toml(tmp_path / "cluster.toml")
    grid = write_grid(tmp_path / "grid.toml", participants=3, lrs=1)  # 3 jobs, one per host
    run_dir = tmp_path / "run"
    args = [sys.executable, str(HERE / "standin.py"), str(grid), str(run_dir), str(cluster), "4"]
    first = subprocess.Popen(args, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and running_in_journal(run_dir) < 3:
            time.sleep(0.05)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert sum(len(h.tmux_sessions()) for h in ssh_hosts.hosts) == 3  # jobs outlive it
    summary = run_stand_in_grid(grid, run_dir, cluster, sleep=4)
    assert summary.ok, summary
    assert_all_done_once(run_dir, 3)
    assert set(launches(run_dir).values()) == {1}, launches(run_dir)  # nothing ran twice
    journal = Journal.of_run(run_dir, readonly=True)
    adopted = [e for e in journal.events() if e["event"] == "adopted"]
    journal.close()
    assert len(adopted) == 3 and all(e["detail"] in {"running", "exited"} for e in adopted)


def test_unreachable_host_at_start_run_completes_on_the_others(ssh_hosts, tmp_path, caplog):
    extra = '\n[[hosts]]\nname = "gone"\naddress = "127.0.0.99"\nport = 9\nconnect_timeout = 1\n'
    cluster = ssh_hosts.cluster_toml(tmp_path / "cluster.toml", extra_hosts=extra)
    grid = write_grid(tmp_path / "grid.toml", participants=3, lrs=1)
    summary = run_stand_in_grid(grid, tmp_path / "run", cluster, sleep=0.2)
    assert summary.ok
    assert_all_done_once(tmp_path / "run", 3)
    assert "gone" not in hosts_used(tmp_path / "run")
    assert any(
        "host gone" in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records
    )


def _freeze(host, sig: signal.Signals) -> None:
    """Stop (or continue) a host's sshd processes: the host stays up, its jobs keep
    running in tmux, but it answers nothing — a silent network partition."""
    if host.process is None:
        return
    # the whole sshd tree: the listener, each connection's monitor and its session
    # process (and the remote agent it runs); tmux and the jobs are not in it
    tree, frontier = [], [host.process.pid]
    while frontier:
        pid = frontier.pop()
        tree.append(pid)
        frontier += host._children(pid)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@pytest.mark.timeout(240)
def test_silent_host_is_noticed_by_keepalives_and_its_jobs_run_elsewhere(ssh_hosts, tmp_path):
    cluster = ssh_hosts.cluster_toml(
        tmp_path / "cluster.toml", lost_after=2, keepalive_interval=1, keepalive_count_max=2
    )
    grid = write_grid(tmp_path / "grid.toml", participants=3, lrs=3)
    victim = ssh_hosts.hosts[2]
    frozen = threading.Event()

    def freeze_when_busy() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not victim.tmux_sessions():
            time.sleep(0.05)
        _freeze(victim, signal.SIGSTOP)
        frozen.set()

    freezer = threading.Thread(target=freeze_when_busy, daemon=True)
    freezer.start()
    try:
        summary = run_stand_in_grid(grid, tmp_path / "run", cluster, sleep=3.0)
    finally:
        freezer.join(10)
        _freeze(victim, signal.SIGCONT)
    assert frozen.is_set()
    assert summary.ok, summary
    assert_all_done_once(tmp_path / "run", 9)
    journal = Journal.of_run(tmp_path / "run", readonly=True)
    lost = [e for e in journal.events() if e["event"] == "lost"]
    journal.close()
    # requeued once keepalives gave up on the host (TCP alone would take minutes,
    # past this test's timeout)
    assert lost, "the silent host's jobs were requeued"
