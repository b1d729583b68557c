"""The executor's own cost, next to what it cannot avoid.

(a) overhead per no-op job on the ``local`` backend: a stand-in job (``sleep 0``)
    from launch to collected, as the journal records it (median), against a bare
    ``python -c pass`` and against the same stand-in job process run directly,
    both measured in this process, so that machine noise hits all alike;
(b) throughput with 2 slots: no-op jobs per second through the whole loop;
(c) planning and journaling a 10,000-job grid on the synthetic data set: grid
    expansion, job ids, plan.json and the journal's plan (seconds, target < 2 s);
(d) ``invoke status`` on a 1,000-job run: reading the journal and rendering the
    table (in process, target < 0.5 s), and the whole command as a new process.

Writes bench/results/executor.json.
"""

from __future__ import annotations

import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

import octsched_local.plugin
from octcore import outputs
from octcore.config import experiment_from_dict
from octcore.executor import Executor, ExecutorOptions, Journal
from octcore.executor.runs import participants_lookup, plan_record, write_plan
from octcore.grid import load_grid
from octcore.plan import Plan, PlannedJob, independent_plan
from octcore.plugins import make_plugin_manager
from octsched_local.backend import LocalBackend
from octsched_local.config import LocalConfig

OUT = Path(__file__).parent / "results" / "executor.json"
ROUNDS = 15
NOOP_JOBS = 15
THROUGHPUT_JOBS = 30

BIG_GRID = """
name = "big"
folds = "all"
[experiment]
mode = "full_fine_tuning"
dataset = {name = "synthetic", participants = 10}
model = {name = "cnn1d", base_channels = 4}
[axes]
target_data_pct = [0.1, 0.25, 0.5, 0.75, 1.0]
target_batch_pct = [0.1, 0.25, 0.5, 0.75, 0.9]
lr = [1e-4, 3e-4, 1e-3, 3e-3]
seed = [1, 2, 3, 4, 5]
batch_size = [32, 64]
"""


class NoOpLocal(LocalBackend):
    """The local backend running each job as a stand-in that trains nothing."""

    def stage(self, job, slot):
        spec = {"stand_in": {"sleep": 0}, "job_dir": str(job.job_dir)}
        (job.job_dir / outputs.SPEC).write_text(json.dumps(spec))


def timed_process(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def noop_plan(plugins, count: int) -> Plan:
    jobs = []
    for i in range(count):
        data = {"dataset": {"name": "synthetic", "participants": 3}, "seed": i}
        experiment = experiment_from_dict(data, plugins, source="bench", check_data=False)
        jobs.append(PlannedJob(f"{i:016x}", experiment, label=f"no-op {i}"))
    return Plan(tuple(jobs))


def run_noops(plugins, root: Path, count: int, slots: int) -> tuple[float, list[float]]:
    """Wall seconds for ``count`` no-op jobs, and each job's launch→collected seconds."""
    run_dir = root / f"noop-{slots}-{time.monotonic_ns()}"
    backend = NoOpLocal(LocalConfig(slots=slots), run_dir)
    options = ExecutorOptions(tick=1.0)
    start = time.perf_counter()
    summary = Executor(noop_plan(plugins, count), backend, run_dir, plugins, options).run()
    wall = time.perf_counter() - start
    assert summary.ok, summary
    journal = Journal.of_run(run_dir, readonly=True)
    launched: dict[str, float] = {}
    spans = []
    for event in journal.events():
        if event["event"] == "launched":
            launched[event["job"]] = event["time"]
        elif event["event"] == "done":
            spans.append(event["time"] - launched[event["job"]])
    journal.close()
    return wall, spans


def direct_stand_in(root: Path) -> float:
    job_dir = root / "direct"
    job_dir.mkdir(exist_ok=True)
    (job_dir / outputs.SPEC).write_text(
        json.dumps({"stand_in": {"sleep": 0}, "job_dir": str(job_dir)})
    )
    (job_dir / outputs.RESULT).unlink(missing_ok=True)
    return timed_process([sys.executable, "-m", "octcore.job", str(job_dir / outputs.SPEC)])


def overhead(plugins, root: Path) -> dict:
    bare, direct = [], []
    for _ in range(ROUNDS):
        bare.append(timed_process([sys.executable, "-c", "pass"]))
        direct.append(direct_stand_in(root))
    wall, spans = run_noops(plugins, root, NOOP_JOBS, slots=1)
    bare_s, direct_s, span_s = (statistics.median(x) for x in (bare, direct, spans))
    per_job = wall / NOOP_JOBS  # everything: spec, journal, launch, wait, collect, bookkeeping
    return {
        "wall_per_job_one_slot_s": round(per_job, 4),
        "wall_per_job_over_direct_process": round(per_job / direct_s, 2),
        "python_c_pass_s": round(bare_s, 4),
        "stand_in_process_direct_s": round(direct_s, 4),
        "launch_to_collected_s": round(span_s, 4),
        "executor_overhead_s": round(span_s - direct_s, 4),
        "launch_to_collected_over_python_start": round(span_s / bare_s, 2),
        "executor_overhead_over_python_start": round((span_s - direct_s) / bare_s, 2),
        "jobs": NOOP_JOBS,
    }


def throughput(plugins, root: Path) -> dict:
    wall, _ = run_noops(plugins, root, THROUGHPUT_JOBS, slots=2)
    return {
        "slots": 2,
        "jobs": THROUGHPUT_JOBS,
        "seconds": round(wall, 3),
        "jobs_per_s": round(THROUGHPUT_JOBS / wall, 2),
    }


def planning(plugins, root: Path) -> dict:
    grid_path = root / "big.toml"
    grid_path.write_text(BIG_GRID)
    run_dir = root / "big"
    t0 = time.perf_counter()
    grid = load_grid(grid_path, plugins)
    t1 = time.perf_counter()
    participants_of = participants_lookup(plugins)
    plan = independent_plan(grid.experiments, participants_of)
    t2 = time.perf_counter()
    write_plan(run_dir, plan_record(grid.name, str(grid_path), grid.axes, plan, participants_of))
    t3 = time.perf_counter()
    journal = Journal.of_run(run_dir)
    journal.sync_plan((j.id, j.kind, j.label) for j in plan.jobs)
    journal.close()
    t4 = time.perf_counter()
    return {
        "jobs": len(plan.jobs),
        "expand_s": round(t1 - t0, 3),
        "job_ids_and_plan_s": round(t2 - t1, 3),
        "plan_json_s": round(t3 - t2, 3),
        "journal_s": round(t4 - t3, 3),
        "total_s": round(t4 - t0, 3),
        "target_s": 2.0,
    }


def status(root: Path) -> dict:
    import octcore.cli.runs as runs_module

    run_dir = root / "status-run"
    journal = Journal.of_run(run_dir)
    journal.sync_plan(
        (f"{i:016x}", "experiment", f"full_fine_tuning, fold {i % 30}") for i in range(1000)
    )
    now = time.time()
    for i in range(0, 600):
        journal.update(f"{i:016x}", "done", state="done", attempts=1, seconds=30.0 + i % 7)
    for i in range(600, 602):
        journal.update(
            f"{i:016x}",
            "launched",
            state="running",
            slot=f"local/cpu{i % 2}",
            handle={"pid": 1},
            started=now,
            attempts=1,
        )
    journal.close()
    saved = runs_module.console
    times = []
    try:
        for _ in range(5):
            runs_module.console = Console(file=io.StringIO(), width=120)  # rendered, not shown
            start = time.perf_counter()
            runs_module.print_status(str(run_dir), root, limit=None)
            times.append(time.perf_counter() - start)
    finally:
        runs_module.console = saved
    command = [
        sys.executable,
        "-c",
        "from octcore.cli.program import main; main()",
        "status",
        str(run_dir),
        "--all",
    ]
    whole = statistics.median(timed_process(command) for _ in range(3))
    bare = statistics.median(timed_process([sys.executable, "-c", "pass"]) for _ in range(3))
    return {
        "jobs": 1000,
        "in_process_s": round(statistics.median(times), 4),
        "target_s": 0.5,
        "whole_command_s": round(whole, 3),
        "python_c_pass_s": round(bare, 4),
    }


def main() -> None:
    plugins = make_plugin_manager(entry_points_=False, extra_plugins=[octsched_local.plugin])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = {
            "overhead_per_noop_job": overhead(plugins, root),
            "throughput_2_slots": throughput(plugins, root),
            "plan_and_journal_10000_jobs": planning(plugins, root),
            "status_1000_jobs": status(root),
        }
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
