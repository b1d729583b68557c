"""The contract every backend passes: one test class that backend packages subclass.

Usage, in a backend package's tests::

    from octcore.testing.backend_contract import BackendContract

    class TestLocalContract(BackendContract):
        @pytest.fixture
        def make_backend(self, tmp_path):
            # a zero-argument callable; every call is a *new* backend instance over
            # the same resources, as a restarted coordinator would build it
            config = LocalConfig(slots=2)
            return lambda: LocalBackend(config, tmp_path / "run")

        def kill_from_outside(self, backend, handle):
            # end the job the way a crash of its host or ``kill -9`` would
            os.killpg(handle["pid"], signal.SIGKILL)

The run directory the jobs use is ``tmp_path / "run"`` (the fixture ``run_dir``;
override it if the backend needs another). Every job is a stand-in job
(``octcore.job.run_stand_in``): it trains nothing, sleeps, writes its outputs and
exits with a chosen status, so the suite runs in seconds.

What the suite pins down (see each test's docstring): slots are named uniquely;
a launched job is polled to ``exited`` with its exit status; its directory is
complete after ``collect``; ``wait`` returns; ``cancel`` stops a job and is
harmless on a finished one; a new backend instance re-adopts a running job and a
finished one; a job killed from outside is ``lost`` (to ``poll`` and to
``adopt``), never ``exited`` with status 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from octcore import outputs
from octcore.backend import Backend, Handle, JobStatus, Slot, StagedJob

# Generous bounds: a slow CI machine must not fail the suite, and nothing here
# asserts how fast anything is.
DEADLINE = 120.0


def stand_in_job(
    run_dir: Path,
    job_id: str,
    *,
    sleep: float = 0.0,
    exit_code: int = 0,
    metrics: dict[str, Any] | None = None,
    inputs: dict[str, Path] | None = None,
) -> StagedJob:
    """Write a stand-in job's ``spec.json`` under ``run_dir/jobs/<id>`` and return it staged."""
    job_dir = run_dir / "jobs" / job_id
    job_dir.mkdir(parents=True, exist_ok=True)
    stand_in = {"sleep": sleep, "exit_code": exit_code, "metrics": metrics or {"id": job_id}}
    spec = {"stand_in": stand_in, "job_dir": str(job_dir.resolve())}
    (job_dir / outputs.SPEC).write_text(json.dumps(spec))
    return StagedJob(job_id, run_dir.name, job_dir.resolve(), dict(inputs or {}))


def wait_for(
    backend: Backend, job: StagedJob, handle: Handle, *, until: Callable[[JobStatus], bool]
) -> JobStatus:
    """Wait/poll the backend until ``until(status)`` holds (or fail after ``DEADLINE``)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        status = backend.poll({job.job_id: handle})[job.job_id]
        if until(status):
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"job {job.job_id} still {status.state} after {DEADLINE:.0f}s")
        backend.wait(0.5)


def finished(status: JobStatus) -> bool:
    return status.state != "running"


class BackendContract:
    """Subclass with a ``make_backend`` fixture and a ``kill_from_outside`` method."""

    # --- what a subclass provides ----------------------------------------------

    @pytest.fixture
    def make_backend(self) -> Callable[[], Backend]:
        """A zero-argument callable returning a new backend over the same resources."""
        raise NotImplementedError("a backend's contract tests define the make_backend fixture")

    @pytest.fixture
    def run_dir(self, tmp_path: Path) -> Path:
        path = tmp_path / "run"
        path.mkdir()
        return path

    def kill_from_outside(self, backend: Backend, handle: Handle) -> None:
        """End the job abruptly, not through the backend (``kill -9``, a dead host)."""
        raise NotImplementedError

    # --- helpers ----------------------------------------------------------------

    def start(self, backend: Backend, job: StagedJob, slot: Slot | None = None) -> Handle:
        slot = slot or backend.slots()[0]
        backend.stage(job, slot)
        handle = backend.launch(job, slot)
        json.dumps(dict(handle))  # the journal stores handles as JSON
        return handle

    # --- the contract -----------------------------------------------------------

    def test_slots_are_named_uniquely(self, make_backend: Callable[[], Backend]) -> None:
        """At least one slot; names unique; every slot is a ``Slot``."""
        backend = make_backend()
        slots = list(backend.slots())
        assert slots, "a backend offers at least one slot"
        assert all(isinstance(s, Slot) for s in slots)
        assert len({s.name for s in slots}) == len(slots)
        backend.close()

    def test_job_runs_and_is_collected(
        self, make_backend: Callable[[], Backend], run_dir: Path
    ) -> None:
        """launch → poll ``exited`` 0 → collect: the job directory is complete, log kept."""
        backend = make_backend()
        job = stand_in_job(run_dir, "ok", metrics={"value": 7})
        handle = self.start(backend, job)
        assert backend.slot_of(handle) == backend.slots()[0].name
        status = wait_for(backend, job, handle, until=finished)
        assert (status.state, status.exit_code) == ("exited", 0), status
        backend.collect(job, handle)
        assert outputs.is_complete(job.job_dir)
        assert json.loads((job.job_dir / outputs.METRICS).read_text()) == {"value": 7}
        assert "stand-in job" in (job.job_dir / outputs.LOG).read_text()
        backend.close()

    def test_non_zero_exit_is_reported(
        self, make_backend: Callable[[], Backend], run_dir: Path
    ) -> None:
        """A job that exits 3 is ``exited`` with code 3 (a failure, not ``lost``)."""
        backend = make_backend()
        job = stand_in_job(run_dir, "bad", exit_code=3)
        handle = self.start(backend, job)
        status = wait_for(backend, job, handle, until=finished)
        assert (status.state, status.exit_code) == ("exited", 3), status
        backend.collect(job, handle)
        assert not outputs.is_complete(job.job_dir)
        assert "exits 3" in (job.job_dir / outputs.LOG).read_text()
        backend.close()

    def test_one_job_per_slot_at_once(
        self, make_backend: Callable[[], Backend], run_dir: Path
    ) -> None:
        """Every slot takes a job; all of them finish; ``poll`` answers for every handle."""
        backend = make_backend()
        jobs, handles = {}, {}
        for index, slot in enumerate(backend.slots()):
            job = stand_in_job(run_dir, f"slot{index}", sleep=0.2)
            jobs[job.job_id] = job
            handles[job.job_id] = self.start(backend, job, slot)
        deadline = time.monotonic() + DEADLINE
        while True:
            states = backend.poll(handles)
            assert set(states) == set(handles)
            if all(s.state == "exited" for s in states.values()):
                break
            assert time.monotonic() < deadline, states
            backend.wait(0.5)
        assert all(s.exit_code == 0 for s in states.values())
        for job_id, job in jobs.items():
            backend.collect(job, handles[job_id])
            assert outputs.is_complete(job.job_dir)
        backend.close()

    def test_wait_returns(self, make_backend: Callable[[], Backend]) -> None:
        """``wait`` with nothing running returns (it may sleep its timeout)."""
        backend = make_backend()
        backend.wait(0.05)
        backend.close()

    def test_cancel_stops_a_running_job(
        self, make_backend: Callable[[], Backend], run_dir: Path
    ) -> None:
        """``cancel`` ends a job that would run for minutes; cancelling again is harmless."""
        backend = make_backend()
        job = stand_in_job(run_dir, "long", sleep=600)
        handle = self.start(backend, job)
        assert backend.poll({job.job_id: handle})[job.job_id].state == "running"
        backend.cancel(handle)
        status = wait_for(backend, job, handle, until=finished)
        assert status.state in {"exited", "lost"}
        assert status.exit_code != 0
        backend.cancel(handle)
        assert not outputs.is_complete(job.job_dir)
        backend.close()

    def test_cancel_after_exit_is_harmless(
        self, make_backend: Callable[[], Backend], run_dir: Path
    ) -> None:
        backend = make_backend()
        job = stand_in_job(run_dir, "quick")
        handle = self.start(backend, job)
        wait_for(backend, job, handle, until=finished)
        backend.cancel(handle)
        backend.collect(job, handle)
        assert outputs.is_complete(job.job_dir)
        backend.close()

    def test_killed_from_outside_is_lost(
        self, make_backend: Callable[[], Backend], run_dir: Path
    ) -> None:
        """A job killed from outside is ``lost``: infrastructure, not the job's failure."""
        backend = make_backend()
        job = stand_in_job(run_dir, "victim", sleep=600)
        handle = self.start(backend, job)
        self.kill_from_outside(backend, handle)
        status = wait_for(backend, job, handle, until=finished)
        assert status.state == "lost", status
        backend.close()

    def test_new_instance_adopts_a_running_job(
        self, make_backend: Callable[[], Backend], run_dir: Path
    ) -> None:
        """After a coordinator restart a new backend adopts a running job and sees it end."""
        first = make_backend()
        job = stand_in_job(run_dir, "adoptee", sleep=2.0, metrics={"value": 1})
        handle = self.start(first, job)
        handle = json.loads(json.dumps(dict(handle)))  # as read back from the journal
        second = make_backend()  # the old instance is simply forgotten, as after kill -9
        status = second.adopt(job, handle)
        assert status.state in {"running", "exited"}, status
        if status.state == "running":
            status = wait_for(second, job, handle, until=finished)
        assert (status.state, status.exit_code) == ("exited", 0), status
        second.collect(job, handle)
        assert outputs.is_complete(job.job_dir)
        second.close()
        first.close()

    def test_new_instance_adopts_a_finished_job(
        self, make_backend: Callable[[], Backend], run_dir: Path
    ) -> None:
        """A job that ended while no coordinator watched is ``exited``, code 0 if it is done."""
        first = make_backend()
        job = stand_in_job(run_dir, "done-unwatched")
        handle = self.start(first, job)
        wait_for(first, job, handle, until=finished)
        second = make_backend()
        status = second.adopt(job, json.loads(json.dumps(dict(handle))))
        assert (status.state, status.exit_code) == ("exited", 0), status
        second.collect(job, handle)
        assert outputs.is_complete(job.job_dir)
        second.close()
        first.close()

    def test_new_instance_finds_a_job_killed_meanwhile_lost(
        self, make_backend: Callable[[], Backend], run_dir: Path
    ) -> None:
        """A job killed while no coordinator watched is ``lost`` on adoption (requeued)."""
        first = make_backend()
        job = stand_in_job(run_dir, "gone", sleep=600)
        handle = self.start(first, job)
        self.kill_from_outside(first, handle)
        wait_for(first, job, handle, until=finished)
        second = make_backend()
        status = second.adopt(job, json.loads(json.dumps(dict(handle))))
        assert status.state == "lost", status
        second.close()
        first.close()

    def test_stage_accepts_inputs(
        self, make_backend: Callable[[], Backend], run_dir: Path, tmp_path: Path
    ) -> None:
        """Staging a job with an input directory succeeds and the job still runs."""
        source = tmp_path / "artifact"
        source.mkdir()
        (source / "weights.bin").write_bytes(b"\x00" * 64)
        backend = make_backend()
        job = stand_in_job(run_dir, "with-input", inputs={"base": source})
        slot = backend.slots()[0]
        assert isinstance(backend.preference(job, slot), int)
        handle = self.start(backend, job, slot)
        status = wait_for(backend, job, handle, until=finished)
        assert (status.state, status.exit_code) == ("exited", 0), status
        backend.collect(job, handle)
        assert outputs.is_complete(job.job_dir)
        backend.close()
