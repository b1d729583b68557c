"""The executor with real job processes on the local backend.

Stand-in jobs exercise the machinery (a crash, a hang past its timeout, a job killed
from outside, Ctrl-C); tiny real training on the synthetic data set checks that a
coordinator killed with ``kill -9`` resumes without rerunning a finished job and
ends with the same results as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from octcore import outputs
from octcore.config import experiment_from_dict
from octcore.executor import Executor, ExecutorOptions, Journal
from octcore.plan import Plan, PlannedJob
from octcore.plugins import make_plugin_manager

local = pytest.importorskip("octsched_local.backend")
from octsched_local.config import LocalConfig  # noqa: E402

DEADLINE = 180.0


class StandInLocal(local.LocalBackend):
    """The local backend, each job's spec swapped for a scripted stand-in at staging."""

    def __init__(self, behaviour, run_dir, slots=2):
        super().__init__(LocalConfig(slots=slots), run_dir)
        self.behaviour = {k: list(v) for k, v in behaviour.items()}
        self.handles: dict[str, dict] = {}

    def stage(self, job, slot):
        sleep, code = self.behaviour[job.job_id].pop(0)
        spec = {"stand_in": {"sleep": sleep, "exit_code": code}, "job_dir": str(job.job_dir)}
        (job.job_dir / outputs.SPEC).write_text(json.dumps(spec))

    def launch(self, job, slot):
        handle = super().launch(job, slot)
        self.handles[job.job_id] = handle
        return handle


@pytest.fixture(scope="module")
def core_plugins():
    return make_plugin_manager(strict=True, entry_points_=False)


def make_plan(plugins, ids) -> Plan:
    def experiment(seed):
        data = {"dataset": {"name": "synthetic", "participants": 3}, "seed": seed}
        return experiment_from_dict(data, plugins, source="test", check_data=False)

    return Plan(tuple(PlannedJob(j, experiment(i), label=j) for i, j in enumerate(ids)))


def test_crash_retry_then_failed_with_log_tail(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["crash", "fine"])
    backend = StandInLocal({"crash": [(0, 3), (0, 3)], "fine": [(0, 0)]}, tmp_path / "run")
    summary = Executor(plan, backend, tmp_path / "run", core_plugins, ExecutorOptions()).run()
    journal = Journal.of_run(tmp_path / "run", readonly=True)
    row = journal.job("crash")
    assert summary.failed == ("crash",)
    assert (row.state, row.attempts, row.failures, row.exit_code) == ("failed", 2, 2, 3)
    assert "stand-in job exits 3" in row.log_tail
    assert journal.job("fine").state == "done"


def test_hang_past_timeout_is_killed_and_marked(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["hang"])
    backend = StandInLocal({"hang": [(600, 0)]}, tmp_path / "run")
    options = ExecutorOptions(timeout=1.0)
    summary = Executor(plan, backend, tmp_path / "run", core_plugins, options).run()
    row = Journal.of_run(tmp_path / "run", readonly=True).job("hang")
    assert row.state == "timeout" and summary.failed == ("hang",)
    pid = backend.handles["hang"]["pid"]
    deadline = time.monotonic() + DEADLINE
    while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
        assert time.monotonic() < deadline, "the timed-out job is still running"
        time.sleep(0.1)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def test_killed_from_outside_is_requeued_without_a_failure(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["victim"])
    backend = StandInLocal({"victim": [(600, 0), (0, 0)]}, tmp_path / "run")

    def kill_first_attempt() -> None:
        deadline = time.monotonic() + DEADLINE
        while "victim" not in backend.handles and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        os.killpg(backend.handles["victim"]["pid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_first_attempt)
    killer.start()
    summary = Executor(
        plan, backend, tmp_path / "run", core_plugins, ExecutorOptions(retries=0)
    ).run()
    killer.join()
    row = Journal.of_run(tmp_path / "run", readonly=True).job("victim")
    assert summary.ok
    assert (row.state, row.failures, row.lost, row.attempts) == ("done", 0, 1, 2)


# --- the real coordinator as a separate process -----------------------------------

DRIVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import octsched_local.plugin
    from octcore.cli.runs import run_grid
    from octcore.plugins import make_plugin_manager

    plugins = make_plugin_manager(entry_points_=False, extra_plugins=[octsched_local.plugin])
    sys.exit(run_grid(Path(sys.argv[1]), "local", {"slots": 2}, output=Path(sys.argv[2]),
                      plugins=plugins))
    """
)

GRID = """
name = "tiny"
folds = "all"
[experiment]
max_epochs = {epochs}
early_stopping_patience = 50
early_stopping_patience_target = 50
batch_size = 16
model = {{name = "cnn1d", base_channels = 4}}
dataset = {{name = "synthetic", participants = {participants}, train = 24, val = 8, test = 16}}
[axes]
mode = ["target_only", "full_fine_tuning"]
"""


def coordinator(grid: Path, output: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(grid), str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def journal_rows(run_dir: Path):
    if not (run_dir / "journal.sqlite").exists():
        return []
    journal = Journal.of_run(run_dir, readonly=True)
    try:
        return journal.jobs()
    except Exception:
        return []
    finally:
        journal.close()


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_ctrl_c_cancels_children_and_leaves_the_journal_consistent(tmp_path):
    grid = tmp_path / "tiny.toml"
    grid.write_text(GRID.format(epochs=2000, participants=3))
    process = coordinator(grid, tmp_path / "runs")
    run_dir = tmp_path / "runs/tiny"
    wait_until(
        lambda: sum(r.state == "running" for r in journal_rows(run_dir)) == 2, "two running jobs"
    )
    pids = [r.handle["pid"] for r in journal_rows(run_dir) if r.state == "running"]
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=DEADLINE)
    assert process.returncode == 130, out
    assert "to resume" in out
    rows = journal_rows(run_dir)
    assert all(r.state == "pending" and r.handle is None for r in rows), rows
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _state(pid) == "Z"


def metrics_by_job(run_dir: Path) -> dict[str, dict]:
    found = {}
    for path in sorted((run_dir / "jobs").glob(f"*/{outputs.METRICS}")):
        data = json.loads(path.read_text())
        for part in ("base", "adapted"):
            if data.get(part):
                data[part].pop("seconds", None)
        data.pop("seconds", None)
        found[path.parent.name] = data
    return found


@pytest.mark.slow
def test_resume_after_kill_9_reruns_nothing_and_matches_an_uninterrupted_run(tmp_path):
    grid = tmp_path / "tiny.toml"
    grid.write_text(GRID.format(epochs=3, participants=3))
    run_dir = tmp_path / "killed/tiny"
    first = coordinator(grid, tmp_path / "killed")
    wait_until(lambda: any(r.state == "done" for r in journal_rows(run_dir)), "a finished job")
    first.kill()  # kill -9: no handler runs, children keep running
    first.communicate(timeout=DEADLINE)
    rows = journal_rows(run_dir)
    done_before = {r.id for r in rows if r.state == "done"}
    assert done_before and len(done_before) < len(rows)
    stamps = {j: (run_dir / "jobs" / j / outputs.RESULT).stat().st_mtime_ns for j in done_before}
    seq_before = max(e["seq"] for e in Journal.of_run(run_dir, readonly=True).events())

    second = coordinator(grid, tmp_path / "killed")
    out, _ = second.communicate(timeout=DEADLINE * 2)
    assert second.returncode == 0, out
    journal = Journal.of_run(run_dir, readonly=True)
    assert all(r.state == "done" for r in journal.jobs())
    relaunched = {
        e["job"] for e in journal.events() if e["seq"] > seq_before and e["event"] == "launched"
    }
    assert not relaunched & done_before
    assert stamps == {
        j: (run_dir / "jobs" / j / outputs.RESULT).stat().st_mtime_ns for j in done_before
    }
    assert not any(r.failures for r in journal.jobs())

    clean = coordinator(grid, tmp_path / "clean")
    out, _ = clean.communicate(timeout=DEADLINE * 2)
    assert clean.returncode == 0, out
    assert metrics_by_job(run_dir) == metrics_by_job(tmp_path / "clean/tiny")
    assert len(metrics_by_job(run_dir)) == 6
