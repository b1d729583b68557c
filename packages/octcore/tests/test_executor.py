"""The executor's decisions, against a scripted in-process backend (no processes, no training).

Each job's attempts follow a script: ``ok`` (exits 0 with a complete job directory),
``fail`` (exits 1, leaves a log), ``lost`` (vanishes), ``hang`` (runs until cancelled).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from octcore import fsio, outputs
from octcore.backend import Backend, Handle, JobStatus, Slot, SlotUnavailable, StagedJob
from octcore.config import experiment_from_dict
from octcore.errors import OctError
from octcore.executor import Executor, ExecutorOptions, Journal
from octcore.executor.runs import RunLock
from octcore.hookspecs import hookimpl
from octcore.plan import Input, Plan, PlannedJob
from octcore.plugins import make_plugin_manager


class ScriptedBackend(Backend):
    name = "scripted"

    def __init__(self, scripts: Mapping[str, Sequence[str]], slots: int = 2, **kw: Any):
        self.scripts = {k: list(v) for k, v in scripts.items()}
        self._slots = [Slot(f"fake/{i}") for i in range(slots)]
        self.launched: list[tuple[str, str]] = []  # (job id, slot)
        self.cancelled: list[str] = []
        self.running: dict[str, str] = {}  # job id -> outcome
        self.dirs: dict[str, Path] = {}
        self.unavailable: set[str] = kw.get("unavailable", set())
        self.prefer: str | None = kw.get("prefer")
        self.adopt_as: dict[str, JobStatus] = kw.get("adopt_as", {})
        self.cancel_on_interrupt = kw.get("cancel_on_interrupt", True)

    def slots(self) -> Sequence[Slot]:
        return self._slots

    def stage(self, job: StagedJob, slot: Slot) -> None:
        if slot.name in self.unavailable:
            raise SlotUnavailable(f"{slot.name} is down")

    def launch(self, job: StagedJob, slot: Slot) -> Handle:
        outcome = self.scripts[job.job_id].pop(0)
        self.launched.append((job.job_id, slot.name))
        self.running[job.job_id] = outcome
        self.dirs[job.job_id] = job.job_dir
        return {"job": job.job_id, "slot": slot.name}

    def preference(self, job: StagedJob, slot: Slot) -> int:
        return 1 if slot.name == self.prefer else 0

    def wait(self, timeout: float) -> None:
        pass

    def poll(self, handles: Mapping[str, Handle]) -> Mapping[str, JobStatus]:
        out = {}
        for job_id in handles:
            outcome = self.running.get(job_id, "gone")
            out[job_id] = self._finish(job_id, outcome)
        return out

    def _finish(self, job_id: str, outcome: str) -> JobStatus:
        directory = self.dirs.get(job_id)
        if outcome == "hang":
            return JobStatus("running")
        if outcome == "ok":
            fsio.write_json(directory / outputs.METRICS, {"job": job_id})
            fsio.write_json(directory / outputs.RESULT, {"state": "done"})
            return JobStatus("exited", 0)
        if outcome == "fail":
            with (directory / outputs.LOG).open("a") as log:
                log.write("Traceback (most recent call last):\nValueError: boom\n")
            return JobStatus("exited", 1)
        if outcome == "cancelled":
            return JobStatus("exited", 143, "cancelled")
        return JobStatus("lost", None, "vanished")

    def collect(self, job: StagedJob, handle: Handle) -> None:
        pass

    def cancel(self, handle: Handle) -> None:
        self.cancelled.append(handle["job"])
        self.running[handle["job"]] = "cancelled"

    def adopt(self, job: StagedJob, handle: Handle) -> JobStatus:
        status = self.adopt_as.get(job.job_id, JobStatus("lost"))
        self.dirs[job.job_id] = job.job_dir
        if status.state == "running":
            self.running[job.job_id] = self.scripts[job.job_id].pop(0)
        elif status.state == "exited" and status.exit_code == 0:
            self._finish(job.job_id, "ok")
        return status


class Recorder:
    """A plugin that records the executor's hook calls and answers before_job_started."""

    def __init__(self, verdicts: dict[str, list[str]] | None = None, artifacts=None):
        self.finished: list[tuple[str, str, int]] = []
        self.verdicts = verdicts or {}
        self.artifacts = artifacts or {}

    @hookimpl
    def octcore_after_job_finished(self, run_dir, job_id, state, attempt):
        self.finished.append((job_id, state, attempt))

    @hookimpl
    def octcore_before_job_started(self, run_dir, job):
        answers = self.verdicts.get(job.id)
        return answers.pop(0) if answers else None

    @hookimpl
    def octcore_resolve_input(self, run_dir, job, item):
        return self.artifacts.get(item.key)


@pytest.fixture(scope="module")
def core_plugins():
    return make_plugin_manager(strict=True, entry_points_=False)


def experiment(plugins, seed: int):
    data = {"dataset": {"name": "synthetic", "participants": 3}, "seed": seed, "max_epochs": 1}
    return experiment_from_dict(data, plugins, source="test", check_data=False)


def make_plan(plugins, ids, deps=None, inputs=None) -> Plan:
    deps, inputs = deps or {}, inputs or {}
    return Plan(
        tuple(
            PlannedJob(
                job_id,
                experiment(plugins, i),
                depends_on=tuple(deps.get(job_id, ())),
                inputs=tuple(inputs.get(job_id, ())),
                label=f"job {job_id}",
            )
            for i, job_id in enumerate(ids)
        )
    )


def run(plan, backend, run_dir, plugins=None, **options) -> tuple[Any, Journal, Executor]:
    plugins = plugins or make_plugin_manager(strict=True, entry_points_=False)
    executor = Executor(plan, backend, run_dir, plugins, ExecutorOptions(tick=0.01, **options))
    summary = executor.run()
    return summary, Journal.of_run(run_dir, readonly=True), executor


def states(journal: Journal) -> dict[str, str]:
    return {row.id: row.state for row in journal.jobs()}


def events(journal: Journal, job_id: str) -> list[str]:
    return [e["event"] for e in journal.events(job_id)]


def test_every_job_runs_once_and_is_done(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["a", "b", "c"])
    backend = ScriptedBackend({"a": ["ok"], "b": ["ok"], "c": ["ok"]})
    summary, journal, _ = run(plan, backend, tmp_path / "run")
    assert summary.ok and summary.counts["done"] == 3
    assert states(journal) == {"a": "done", "b": "done", "c": "done"}
    assert sorted(j for j, _ in backend.launched) == ["a", "b", "c"]
    spec = json.loads((tmp_path / "run/jobs/a/spec.json").read_text())
    assert spec["job_dir"] == str((tmp_path / "run/jobs/a").resolve())
    assert spec["experiment"]["seed"] == 0 and spec["inputs"] == {}
    assert events(journal, "a") == ["launched", "done"]
    assert (tmp_path / "run/coordinator.log").read_text().count("done") >= 3


def test_a_crash_is_retried_once_then_failed_with_its_log_tail(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["bad", "good"])
    recorder = Recorder()
    plugins = make_plugin_manager(strict=True, entry_points_=False, extra_plugins=[recorder])
    backend = ScriptedBackend({"bad": ["fail", "fail"], "good": ["ok"]})
    summary, journal, _ = run(plan, backend, tmp_path / "run", plugins)
    assert not summary.ok and summary.failed == ("bad",)
    row = journal.job("bad")
    assert (row.state, row.attempts, row.failures, row.exit_code) == ("failed", 2, 2, 1)
    assert "ValueError: boom" in row.log_tail
    assert events(journal, "bad") == ["launched", "retry", "launched", "failed"]
    assert ("bad", "failed", 1) in recorder.finished and ("bad", "failed", 2) in recorder.finished
    assert ("good", "done", 1) in recorder.finished
    assert states(journal)["good"] == "done"


def test_retries_zero_fails_at_once(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["bad"])
    summary, journal, _ = run(plan, ScriptedBackend({"bad": ["fail"]}), tmp_path / "r", retries=0)
    assert journal.job("bad").attempts == 1 and summary.failed == ("bad",)


def test_a_retry_that_succeeds_is_done(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["flaky"])
    summary, journal, _ = run(plan, ScriptedBackend({"flaky": ["fail", "ok"]}), tmp_path / "r")
    assert summary.ok and journal.job("flaky").failures == 1


def test_lost_jobs_are_requeued_without_counting_a_failure(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["x"])
    backend = ScriptedBackend({"x": ["lost", "lost", "ok"]})
    summary, journal, _ = run(plan, backend, tmp_path / "r", retries=0)
    row = journal.job("x")
    assert summary.ok and (row.state, row.failures, row.lost, row.attempts) == ("done", 0, 2, 3)


def test_lost_too_often_is_a_failure(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["x"])
    _, journal, _ = run(plan, ScriptedBackend({"x": ["lost"] * 3}), tmp_path / "r", max_lost=2)
    row = journal.job("x")
    assert (row.state, row.lost) == ("failed", 3) and "lost 3 times" in row.detail


def test_a_job_past_its_timeout_is_cancelled_and_marked(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["slow", "quick"])
    backend = ScriptedBackend({"slow": ["hang"], "quick": ["ok"]})
    summary, journal, _ = run(plan, backend, tmp_path / "r", timeout=0.2)
    assert backend.cancelled == ["slow"]
    assert states(journal) == {"slow": "timeout", "quick": "done"}
    assert "timeout" in journal.job("slow").detail and summary.failed == ("slow",)


def test_dependencies_and_inputs(tmp_path, core_plugins):
    plan = make_plan(
        core_plugins,
        ["base", "target"],
        deps={"target": ["base"]},
        inputs={"target": [Input("base", job="base", path="")]},
    )
    backend = ScriptedBackend({"base": ["ok"], "target": ["ok"]})
    summary, _, _ = run(plan, backend, tmp_path / "run")
    assert summary.ok and [j for j, _ in backend.launched] == ["base", "target"]
    spec = json.loads((tmp_path / "run/jobs/target/spec.json").read_text())
    assert spec["inputs"] == {"base": str((tmp_path / "run/jobs/base").resolve())}


def test_a_failed_dependency_blocks_its_dependants(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["base", "target"], deps={"target": ["base"]})
    summary, journal, _ = run(plan, ScriptedBackend({"base": ["fail"]}), tmp_path / "r", retries=0)
    assert states(journal) == {"base": "failed", "target": "blocked"}
    assert set(summary.failed) == {"base", "target"}


def test_keyed_inputs_resolve_through_the_hook(tmp_path, core_plugins):
    artifact = tmp_path / "store/k1"
    artifact.mkdir(parents=True)
    recorder = Recorder(artifacts={"k1": artifact})
    plugins = make_plugin_manager(strict=True, entry_points_=False, extra_plugins=[recorder])
    plan = make_plan(core_plugins, ["t"], inputs={"t": [Input("base", key="k1")]})
    summary, _, _ = run(plan, ScriptedBackend({"t": ["ok"]}), tmp_path / "run", plugins)
    spec = json.loads((tmp_path / "run/jobs/t/spec.json").read_text())
    assert summary.ok and spec["inputs"] == {"base": str(artifact.resolve())}


def test_before_job_started_can_skip_or_hold_back(tmp_path, core_plugins):
    recorder = Recorder(verdicts={"skip-me": ["skip"], "held": ["wait", "wait", "run"]})
    plugins = make_plugin_manager(strict=True, entry_points_=False, extra_plugins=[recorder])
    plan = make_plan(core_plugins, ["skip-me", "held"])
    backend = ScriptedBackend({"held": ["ok"]})
    summary, journal, _ = run(plan, backend, tmp_path / "r", plugins)
    assert summary.ok and [j for j, _ in backend.launched] == ["held"]
    assert events(journal, "skip-me") == ["skipped"]
    assert events(journal, "held")[0] == "waiting"


def test_the_preferred_slot_is_chosen(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["a"])
    backend = ScriptedBackend({"a": ["ok"]}, slots=3, prefer="fake/2")
    run(plan, backend, tmp_path / "r")
    assert backend.launched == [("a", "fake/2")]


def test_an_unavailable_slot_is_not_a_failure(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["a"])
    backend = ScriptedBackend({"a": ["ok"]}, slots=2, unavailable={"fake/0"})
    summary, journal, _ = run(plan, backend, tmp_path / "r")
    assert summary.ok and backend.launched == [("a", "fake/1")]
    assert journal.job("a").failures == 0 and "slot unavailable" in events(journal, "a")


def test_a_complete_job_directory_is_done_without_running(tmp_path, core_plugins):
    run_dir = tmp_path / "run"
    fsio.write_json(run_dir / "jobs/a" / outputs.METRICS, {})
    fsio.write_json(run_dir / "jobs/a" / outputs.RESULT, {"state": "done"})
    plan = make_plan(core_plugins, ["a", "b"])
    backend = ScriptedBackend({"b": ["ok"]})
    summary, journal, _ = run(plan, backend, run_dir)
    assert summary.ok and backend.launched == [("b", "fake/0")]
    assert events(journal, "a") == ["complete"]


def test_a_grown_grid_runs_only_its_new_points(tmp_path, core_plugins):
    run_dir = tmp_path / "run"
    run(make_plan(core_plugins, ["a", "b"]), ScriptedBackend({"a": ["ok"], "b": ["ok"]}), run_dir)
    grown = ScriptedBackend({"c": ["ok"]})
    summary, journal, _ = run(make_plan(core_plugins, ["a", "b", "c"]), grown, run_dir)
    assert summary.ok and grown.launched == [("c", "fake/0")]
    assert states(journal) == {"a": "done", "b": "done", "c": "done"}


def fake_crash(run_dir: Path, plan: Plan, running: dict[str, Handle], done: list[str]) -> None:
    """The journal a coordinator killed by ``kill -9`` leaves behind."""
    journal = Journal.of_run(run_dir)
    journal.sync_plan((j.id, j.kind, j.label) for j in plan.jobs)
    for job_id in done:
        journal.update(job_id, "done", state="done", attempts=1)
    for job_id, handle in running.items():
        journal.update(
            job_id,
            "launched",
            state="running",
            attempts=1,
            slot=handle["slot"],
            handle=handle,
            started=1.0e9 * 1.8,
        )
    journal.close()


def test_resume_adopts_running_jobs(tmp_path, core_plugins):
    run_dir = tmp_path / "run"
    plan = make_plan(core_plugins, ["done", "still", "finished", "vanished", "new"])
    running = {
        j: {"job": j, "slot": f"fake/{i}"} for i, j in enumerate(["still", "finished", "vanished"])
    }
    fake_crash(run_dir, plan, running, ["done"])
    fsio.write_json(run_dir / "jobs/done" / outputs.METRICS, {})
    fsio.write_json(run_dir / "jobs/done" / outputs.RESULT, {"state": "done"})
    backend = ScriptedBackend(
        {"still": ["ok"], "vanished": ["ok"], "new": ["ok"]},
        slots=3,
        adopt_as={
            "still": JobStatus("running"),
            "finished": JobStatus("exited", 0),
            "vanished": JobStatus("lost"),
        },
    )
    summary, journal, _ = run(plan, backend, run_dir)
    assert summary.ok, states(journal)
    # only the vanished job and the new one are launched again; nothing done reruns
    assert sorted(j for j, _ in backend.launched) == ["new", "vanished"]
    assert journal.job("vanished").lost == 1 and journal.job("vanished").failures == 0
    assert "adopted" in events(journal, "still") and events(journal, "done") == ["done"]


def test_a_new_coordinator_gives_failed_jobs_a_fresh_try(tmp_path, core_plugins):
    run_dir = tmp_path / "run"
    plan = make_plan(core_plugins, ["x"])
    run(plan, ScriptedBackend({"x": ["fail", "fail"]}), run_dir)
    summary, journal, _ = run(plan, ScriptedBackend({"x": ["ok"]}), run_dir)
    assert summary.ok and journal.job("x").failures == 0
    assert "requeued" in events(journal, "x")


class StopAfterLaunch:
    """An observer that interrupts the executor once ``count`` jobs are launched."""

    def __init__(self, count: int):
        self.count = count
        self.executor: Executor | None = None

    def event(self, job, event, detail):
        if event == "launched":
            self.count -= 1
            if self.count == 0:
                self.executor.stopped = "interrupted"  # what the SIGINT handler does

    def update(self, snapshot):
        pass


@pytest.mark.parametrize("cancel_on_interrupt", [True, False])
def test_an_interrupt_leaves_the_journal_consistent(tmp_path, core_plugins, cancel_on_interrupt):
    run_dir = tmp_path / "run"
    plan = make_plan(core_plugins, ["a", "b", "c"])
    backend = ScriptedBackend(
        {"a": ["hang"], "b": ["hang"], "c": ["ok"]}, cancel_on_interrupt=cancel_on_interrupt
    )
    observer = StopAfterLaunch(2)
    executor = Executor(
        plan, backend, run_dir, core_plugins, ExecutorOptions(tick=0.01), observer=observer
    )
    observer.executor = executor
    summary = executor.run()
    assert summary.stopped == "interrupted" and not summary.ok
    journal = Journal.of_run(run_dir, readonly=True)
    if cancel_on_interrupt:
        assert sorted(backend.cancelled) == ["a", "b"]
        assert states(journal) == {"a": "pending", "b": "pending", "c": "pending"}
        assert all(r.handle is None for r in journal.jobs())
    else:
        assert backend.cancelled == []
        assert states(journal) == {"a": "running", "b": "running", "c": "pending"}
        assert journal.job("a").handle == {"job": "a", "slot": "fake/0"}


def test_fail_fast_stops_at_the_first_failure(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["bad", "long", "later"])
    backend = ScriptedBackend({"bad": ["fail"], "long": ["hang"], "later": ["ok"]})
    summary, journal, _ = run(plan, backend, tmp_path / "r", retries=0, fail_fast=True)
    assert summary.stopped == "fail-fast"
    assert states(journal) == {"bad": "failed", "long": "pending", "later": "pending"}
    assert backend.cancelled == ["long"]


def test_one_coordinator_per_run_directory(tmp_path):
    with RunLock(tmp_path), pytest.raises(OctError, match="another coordinator"):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released: a new one may start
        pass


def test_snapshot_eta(tmp_path, core_plugins):
    plan = make_plan(core_plugins, ["a", "b", "c"])
    executor = Executor(plan, ScriptedBackend({}), tmp_path / "r", core_plugins)
    executor.journal.sync_plan((j.id, j.kind, j.label) for j in plan.jobs)
    executor._reload()
    executor.durations = [10.0, 20.0]
    snap = executor.snapshot()
    assert snap.counts["pending"] == 3 and snap.eta == pytest.approx(15.0 * 3 / 2)
