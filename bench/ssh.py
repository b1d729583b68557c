"""Benchmark of the ssh backend against the research code's method, on three loopback hosts.

    python bench/ssh.py [--quick] [--out bench/results/ssh.json]

Three real ``sshd`` on 127.0.0.2-4 (``packages/octsched-ssh/tests/sshhosts.py``),
each with its own tmux server. Every job is the same no-op stand-in job
(``python -m octcore.job`` with ``{"stand_in": {"sleep": 0}}``), so what is measured
is the machinery, plus the job process's own start-up (reported separately).

1. Per-job latency, one job at a time: from dispatch until its result is verified
   in the local job directory (median). oct: ``stage`` → ``launch`` → wait for the
   agent's report → ``collect`` (sha256-checked). The overhead is that time less the
   no-op job process run locally right before it (median of the paired differences,
   so that the shared machine's drifting load cancels).
2. Aggregate throughput: many no-op jobs over 2 slots per host (6 in all), jobs/s.
3. The same two figures for the research code's method, re-created here: one new
   ``ssh`` process per step, ``tmux send-keys`` into a pane per slot, the exit status
   in a marker file polled every 2 s over a held ssh, ``tmux capture-pane``,
   ``test -d``, ``scp -r`` back, ``rm -rf`` remote.

Targets: per-job overhead <= 0.25 s, and >= 10x lower than the research method's.
Both methods log in as the same user with the same login shell, so the hosts'
shell start-up (root's ``.bashrc`` here) costs each method what its design costs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packages" / "octsched-ssh" / "tests"))

from sshhosts import TestHost, TestHosts  # noqa: E402

from octcore import outputs  # noqa: E402
from octcore.testing.backend_contract import stand_in_job  # noqa: E402


def no_op_spec(job_dir: Path | str) -> dict[str, Any]:
    return {"stand_in": {"sleep": 0, "metrics": {"ok": 1}}, "job_dir": str(job_dir)}


class LocalJob:
    """The no-op job run locally, no machinery: what every method pays at least.

    Run right before each measured remote job, so that the overhead of a method is
    the median of paired differences (the machine's load drifts; pairs cancel it).
    """

    def __init__(self, tmp: Path):
        self.job_dir = tmp / "local-job"
        self.job_dir.mkdir()
        (self.job_dir / outputs.SPEC).write_text(json.dumps(no_op_spec(self.job_dir)))
        self.times: list[float] = []

    def run(self) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "octcore.job", str(self.job_dir / outputs.SPEC)],
                       capture_output=True, check=True)  # fmt: skip
        self.times.append(time.perf_counter() - started)
        return self.times[-1]


# --- oct's ssh backend ------------------------------------------------------------------


def oct_backend(hosts: TestHosts, tmp: Path, name: str, slots_per_host: int):
    from octsched_ssh.backend import SshBackend
    from octsched_ssh.config import load_cluster

    cluster = hosts.cluster_toml(tmp / f"{name}.toml", cpu_slots=slots_per_host)
    run_dir = tmp / name
    run_dir.mkdir()
    return SshBackend(load_cluster(cluster), run_dir), run_dir


def oct_per_job(
    hosts: TestHosts, tmp: Path, count: int, local: LocalJob
) -> list[tuple[float, float]]:
    backend, run_dir = oct_backend(hosts, tmp, "oct-serial", 1)
    times = []
    try:
        slots = backend.slots()
        for i in range(count):
            job = stand_in_job(run_dir, f"j{i}", metrics={"ok": 1})
            slot = slots[i % len(slots)]
            alone = local.run()
            started = time.perf_counter()
            backend.stage(job, slot)
            handle = backend.launch(job, slot)
            while backend.poll({job.job_id: handle})[job.job_id].state == "running":
                backend.wait(5)
            backend.collect(job, handle)
            assert outputs.is_complete(job.job_dir)
            times.append((time.perf_counter() - started, alone))
    finally:
        backend.close()
    return times


def oct_throughput(hosts: TestHosts, tmp: Path, count: int) -> float:
    backend, run_dir = oct_backend(hosts, tmp, "oct-many", 2)
    try:
        free = list(backend.slots())
        jobs = [stand_in_job(run_dir, f"m{i}", metrics={"ok": 1}) for i in range(count)]
        queue = list(jobs)
        running: dict[str, tuple[Any, Any, Any]] = {}
        started = time.perf_counter()
        while queue or running:
            while queue and free:
                job, slot = queue.pop(0), free.pop(0)
                backend.stage(job, slot)
                running[job.job_id] = (job, slot, backend.launch(job, slot))
            backend.wait(5)
            states = backend.poll({k: v[2] for k, v in running.items()})
            for job_id, status in states.items():
                if status.state != "running":
                    job, slot, handle = running.pop(job_id)
                    backend.collect(job, handle)
                    assert outputs.is_complete(job.job_dir), status
                    free.append(slot)
        wall = time.perf_counter() - started
    finally:
        backend.close()
    return count / wall


# --- the research code's method ---------------------------------------------------------


class ResearchMethod:
    """run_distributed_training.py (generation 3), steps as it ran them, one ssh each."""

    SESSION = "ml_training"
    POLL = 2  # seconds between marker checks

    def __init__(self, hosts: TestHosts, tmp: Path, panes_per_host: int):
        self.hosts = hosts
        self.tmp = tmp
        self.panes = panes_per_host

    def ssh_words(self, host: TestHost) -> list[str]:
        return [
            "ssh", "-i", str(self.hosts.client_key), "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.hosts.known_hosts}",
            "-o", "StrictHostKeyChecking=yes",
            "-p", str(host.port), f"{self.hosts.user}@{host.address}",
        ]  # fmt: skip

    def ssh(self, host: TestHost, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self.ssh_words(host), command], capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip

    def setup(self) -> None:
        for host in self.hosts.hosts:
            lines = [f"tmux kill-session -t {self.SESSION} 2>/dev/null"]
            lines += [f"tmux new-session -d -s {self.SESSION}"]
            lines += [f"tmux split-window -t {self.SESSION}"] * (self.panes - 1)
            lines += [f"tmux select-layout -t {self.SESSION} even-vertical"]
            self.ssh(host, "; ".join(lines))
        time.sleep(1.0)  # let the panes' interactive shells start

    def teardown(self) -> None:
        for host in self.hosts.hosts:
            host.tmux("kill-session", "-t", self.SESSION)

    def run_job(self, host: TestHost, pane: int, job_id: str, local_root: Path) -> None:
        remote = host.dir / "experiments" / job_id
        marker = host.dir / f"job_{job_id}_gpu{pane}.done"
        spec = json.dumps(no_op_spec(remote))
        command = (
            f"mkdir -p {remote} && cd {remote} && printf %s {shlex.quote(spec)} > spec.json && "
            f"{sys.executable} -m octcore.job spec.json > job.log 2>&1; echo $? > {marker}"
        )
        self.ssh(host, f"rm -f {marker}")
        self.ssh(host, f"tmux send-keys -t {self.SESSION}.{pane} {shlex.quote(command)} C-m")
        self.ssh(host, f"while [ ! -f {marker} ]; do sleep {self.POLL}; done", timeout=600)
        rc = self.ssh(host, f"cat {marker} 2>/dev/null || echo 1").stdout.strip()
        self.ssh(host, f"tmux capture-pane -p -t {self.SESSION}.{pane}")
        assert rc == "0", rc
        assert self.ssh(host, f"test -d {remote}").returncode == 0
        local_root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["scp", "-q", "-r", "-i", str(self.hosts.client_key), "-o", "BatchMode=yes",
                        "-o", f"UserKnownHostsFile={self.hosts.known_hosts}", "-P", str(host.port),
                        f"{self.hosts.user}@{host.address}:{remote}", str(local_root)],
                       check=True, capture_output=True, timeout=300)  # fmt: skip
        self.ssh(host, f"rm -rf {remote}")
        assert outputs.is_complete(local_root / job_id)


def research_per_job(
    hosts: TestHosts, tmp: Path, count: int, local: LocalJob
) -> list[tuple[float, float]]:
    method = ResearchMethod(hosts, tmp, 1)
    method.setup()
    times = []
    try:
        for i in range(count):
            host = hosts.hosts[i % len(hosts.hosts)]
            alone = local.run()
            started = time.perf_counter()
            method.run_job(host, 0, f"r{i}", tmp / "research-serial")
            times.append((time.perf_counter() - started, alone))
    finally:
        method.teardown()
    return times


def research_throughput(hosts: TestHosts, tmp: Path, count: int) -> float:
    method = ResearchMethod(hosts, tmp, 2)
    method.setup()
    queue = list(range(count))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(host: TestHost, pane: int) -> None:  # one thread per GPU, as the research code
        while True:
            with lock:
                if not queue:
                    return
                index = queue.pop(0)
            try:
                method.run_job(host, pane, f"t{index}", tmp / "research-many")
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(h, p)) for h in hosts.hosts for p in range(2)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    method.teardown()
    if errors:
        raise errors[0]
    return count / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ssh.json")
    args = parser.parse_args()
    n_oct, m_oct, n_res, m_res = (6, 12, 2, 6) if args.quick else (30, 90, 6, 12)
    with tempfile.TemporaryDirectory(prefix="oct-bench-ssh-") as name:
        tmp = Path(name)
        hosts = TestHosts(tmp / "hosts", 3).up()
        try:
            local = LocalJob(tmp)
            oct_pairs = oct_per_job(hosts, tmp, n_oct, local)
            oct_rate = oct_throughput(hosts, tmp, m_oct)
            research_pairs = research_per_job(hosts, tmp, n_res, local)
            research_rate = research_throughput(hosts, tmp, m_res)
        finally:
            hosts.down()
    job_seconds = statistics.median(local.times)
    oct_times = [t for t, _ in oct_pairs]
    research_times = [t for t, _ in research_pairs]
    oct_median = statistics.median(oct_times)
    research_median = statistics.median(research_times)
    oct_overhead = statistics.median(t - alone for t, alone in oct_pairs)
    research_overhead = statistics.median(t - alone for t, alone in research_pairs)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "login_shell": os.environ.get("SHELL", "?"), "hosts": "3 sshd on loopback"},
        "job_process_seconds_median": round(job_seconds, 4),
        "oct": {
            "per_job_seconds_median": round(oct_median, 4),
            "per_job_seconds_all": [round(t, 4) for t in oct_times],
            "per_job_overhead_seconds": round(oct_overhead, 4),
            "jobs_per_second": round(oct_rate, 3),
            "slots": 6, "jobs": m_oct,
        },
        "research_method": {
            "per_job_seconds_median": round(research_median, 4),
            "per_job_seconds_all": [round(t, 4) for t in research_times],
            "per_job_overhead_seconds": round(research_overhead, 4),
            "jobs_per_second": round(research_rate, 3),
            "slots": 6, "jobs": m_res,
        },
        "ratios": {
            "per_job_latency": round(research_median / oct_median, 1),
            "per_job_overhead": round(research_overhead / max(oct_overhead, 1e-3), 1),
            "throughput": round(oct_rate / research_rate, 1),
        },
        "targets": {"per_job_seconds_max": 0.25, "ratio_min": 10},
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"no-op job process alone:         {job_seconds:.3f} s median")
    print(f"oct per job (dispatch→verified): {oct_median:.3f} s median "
          f"(overhead beyond the job process, paired: {oct_overhead:.3f} s)")  # fmt: skip
    print(f"research method per job:       {research_median:.3f} s median "
          f"(overhead, paired: {research_overhead:.3f} s)")  # fmt: skip
    print(f"throughput, 6 slots:           oct {oct_rate:.2f} jobs/s, "
          f"research {research_rate:.2f} jobs/s")  # fmt: skip
    r = result["ratios"]
    print(f"ratios: latency {r['per_job_latency']}x, overhead {r['per_job_overhead']}x, "
          f"throughput {r['throughput']}x  →  {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
