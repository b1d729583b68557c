"""The DAG executor: decides what runs when, on the slots a backend offers.

It knows nothing of where slots are (``octcore.backend.Backend``) or of caching
(the plugin hooks). One round of its loop:

1. launch every ready job on a free slot, preferring the slot the backend ranks
   highest for it (e.g. one that already holds its inputs). A job is ready when
   every job it depends on is done, every input resolves to a local directory,
   and the ``before_job_started`` hook says ``run`` (``wait``: ask again next
   round; ``skip``: done without running);
2. ``backend.wait`` until something may have changed (event-driven backends wake
   at once), then ``backend.poll`` the running jobs;
3. settle what ended: exit 0 with a complete job directory is ``done``; a non-zero
   exit is retried up to ``retries`` times, then ``failed`` with the tail of its
   log; ``lost`` (infrastructure) is requeued without counting a failure; a job
   past ``timeout`` is cancelled and marked ``timeout``.

Every state change is one journal transaction, so a coordinator killed at any
moment resumes: ``done`` stays done, ``running`` jobs are handed to
``backend.adopt``, jobs of earlier failed attempts are given a fresh try, and a
job whose directory is complete on disk is done without running.
"""

from __future__ import annotations

import logging
import signal
import statistics
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from octcore import fsio, outputs
from octcore.backend import Backend, Handle, JobStatus, Slot, SlotUnavailable, StagedJob
from octcore.config import unstructure_experiment
from octcore.executor.journal import FINAL, JobRow, Journal
from octcore.executor.runs import COORDINATOR_LOG, job_dir
from octcore.plan import Plan, PlannedJob, input_path

log = logging.getLogger("octcore.executor")

LOG_TAIL_LINES = 40
LOG_TAIL_CHARS = 4000


@attrs.frozen
class ExecutorOptions:
    retries: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    fail_fast: bool = False
    timeout: float | None = None  # seconds a job may run, per attempt
    max_lost: int = attrs.field(
        default=10, validator=attrs.validators.ge(0)
    )  # requeues before failing
    tick: float = 1.0  # longest wait between two polls
    slot_cooldown: float = 10.0  # seconds a slot that raised SlotUnavailable is left alone


@attrs.frozen
class RunningJob:
    job_id: str
    label: str
    slot: str
    elapsed: float


@attrs.frozen
class Snapshot:
    """What a live view shows after each round."""

    counts: Mapping[str, int]
    running: tuple[RunningJob, ...]
    slots: int
    mean_seconds: float | None  # mean duration of the jobs done so far

    @property
    def eta(self) -> float | None:
        remaining = self.counts.get("pending", 0) + self.counts.get("running", 0)
        if self.mean_seconds is None or not self.slots:
            return None
        return self.mean_seconds * remaining / self.slots


@attrs.frozen
class Summary:
    counts: Mapping[str, int]
    stopped: str | None  # None, "interrupted" or "fail-fast"
    failed: tuple[str, ...]  # ids of jobs that ended failed, timeout or blocked

    @property
    def ok(self) -> bool:
        return self.stopped is None and not self.failed


class Observer(Protocol):
    def event(self, job: PlannedJob, event: str, detail: str) -> None: ...

    def update(self, snapshot: Snapshot) -> None: ...


class QuietObserver:
    def event(self, job: PlannedJob, event: str, detail: str) -> None:
        pass

    def update(self, snapshot: Snapshot) -> None:
        pass


@attrs.define
class _Live:
    handle: Handle
    slot: str
    started: float  # wall clock, as journaled (survives a coordinator restart)
    staged: StagedJob


class Executor:
    def __init__(
        self,
        plan: Plan,
        backend: Backend,
        run_dir: Path,
        plugins: Any,
        options: ExecutorOptions | None = None,
        observer: Observer | None = None,
        journal: Journal | None = None,
    ):
        self.plan = plan
        self.backend = backend
        self.run_dir = run_dir.resolve()
        self.plugins = plugins
        self.options = options or ExecutorOptions()
        self.observer = observer or QuietObserver()
        self.journal = journal or Journal.of_run(self.run_dir)
        self.jobs = plan.by_id()
        self.rows: dict[str, JobRow] = {}
        self.live: dict[str, _Live] = {}
        self.cooldown: dict[str, float] = {}
        self.durations: list[float] = []
        self.stopped: str | None = None
        self._signals = 0
        self._waiting_noted: set[str] = set()

    # --- the loop -----------------------------------------------------------------

    def run(self) -> Summary:
        handler = logging.FileHandler(self.run_dir / COORDINATOR_LOG)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        previous = self._install_signal_handlers()
        try:
            self.journal.sync_plan((j.id, j.kind, j.label) for j in self.plan.jobs)
            self.journal.note(
                "coordinator started", f"{len(self.jobs)} jobs on {self.backend.describe()}"
            )
            log.info("coordinator started: %d jobs on %s", len(self.jobs), self.backend.describe())
            self._reload()
            self._resume()
            while self.stopped is None:
                self._block_unreachable()
                self._launch_ready()
                if not self.live and not self._pending():
                    break
                self.observer.update(self.snapshot())
                self.backend.wait(self._wait_time())
                if self.stopped is None:
                    self._poll()
                    self._check_timeouts()
            if self.stopped is not None:
                self._stop_running(self.stopped)
            self.observer.update(self.snapshot())
        finally:
            self._restore_signal_handlers(previous)
            summary = self.summary()
            self.journal.note("coordinator stopped", self.stopped or "finished")
            log.info(
                "coordinator stopped (%s): %s", self.stopped or "finished", dict(summary.counts)
            )
            log.removeHandler(handler)
            handler.close()
            self.backend.close()
        return summary

    def summary(self) -> Summary:
        counts = {state: 0 for state in ("pending", "running", *FINAL)}
        for row in self.rows.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        failed = tuple(
            i for i, r in self.rows.items() if r.state in {"failed", "timeout", "blocked"}
        )
        return Summary(counts, self.stopped, failed)

    def snapshot(self) -> Snapshot:
        now = time.time()
        running = tuple(
            RunningJob(job_id, self.jobs[job_id].label, live.slot, now - live.started)
            for job_id, live in self.live.items()
        )
        mean = statistics.fmean(self.durations) if self.durations else None
        return Snapshot(self.summary().counts, running, len(self.backend.slots()), mean)

    def _wait_time(self) -> float:
        wait = self.options.tick
        if self.options.timeout is not None and self.live:
            now = time.time()
            soonest = min(live.started + self.options.timeout for live in self.live.values())
            wait = min(wait, max(0.0, soonest - now))
        return wait

    # --- journal mirror -----------------------------------------------------------

    def _reload(self) -> None:
        self.rows = {row.id: row for row in self.journal.jobs() if row.id in self.jobs}
        self.durations = [r.seconds for r in self.rows.values() if r.state == "done" and r.seconds]

    def _set(self, job_id: str, event: str, message: str = "", **fields: Any) -> None:
        """Change a job's state: journal first (one transaction), then the mirror and the view."""
        self.journal.update(job_id, event, message, **fields)
        if "handle" in fields and fields["handle"] is not None:
            fields["handle"] = dict(fields["handle"])
        self.rows[job_id] = attrs.evolve(self.rows[job_id], **fields)
        job = self.jobs[job_id]
        log.info("%s %s %s%s", job_id, event, job.label, f": {message}" if message else "")
        self.observer.event(job, event, message)

    def _pending(self) -> list[str]:
        return [
            i
            for i, r in sorted(self.rows.items(), key=lambda kv: kv[1].position)
            if r.state == "pending"
        ]

    # --- resume -------------------------------------------------------------------

    def _resume(self) -> None:
        for job_id, row in list(self.rows.items()):
            if row.state == "running":
                self._adopt(job_id, row)
            elif row.state in {"failed", "timeout", "blocked"}:
                self._set(
                    job_id,
                    "requeued",
                    "a new coordinator gives it a fresh try",
                    state="pending",
                    failures=0,
                    lost=0,
                    detail=None,
                )
        for job_id, row in self.rows.items():
            if row.state == "pending" and outputs.is_complete(job_dir(self.run_dir, job_id)):
                self._set(job_id, "complete", "its job directory is complete already", state="done")

    def _adopt(self, job_id: str, row: JobRow) -> None:
        staged = self._staged(self.jobs[job_id], {})
        handle = row.handle or {}
        try:
            status = (
                self.backend.adopt(staged, handle)
                if handle
                else JobStatus("lost", None, "no handle")
            )
        except Exception as exc:
            status = JobStatus("lost", None, f"adopt failed: {exc}")
        started = row.started or time.time()
        self.live[job_id] = _Live(handle, row.slot or "?", started, staged)
        self.journal.update(job_id, "adopted", status.state)
        log.info("%s adopted: %s", job_id, status.state)
        if status.state != "running":
            self._settle(job_id, status)

    # --- launching ----------------------------------------------------------------

    def _free_slots(self) -> list[Slot]:
        busy = {live.slot for live in self.live.values()}
        now = time.monotonic()
        return [
            s
            for s in self.backend.slots()
            if s.name not in busy and self.cooldown.get(s.name, 0.0) <= now
        ]

    def _block_unreachable(self) -> None:
        """A pending job whose dependency ended without success can never run."""
        for job_id in self._pending():
            job = self.jobs[job_id]
            bad = [
                d for d in job.depends_on if self.rows[d].state in {"failed", "timeout", "blocked"}
            ]
            if bad:
                self._set(
                    job_id,
                    "blocked",
                    f"depends on {', '.join(bad)}, which did not finish",
                    state="blocked",
                    detail=f"dependency {bad[0]} did not finish",
                )

    def _launch_ready(self) -> None:
        free = self._free_slots()
        if not free or self.stopped is not None:
            return
        for job_id in self._pending():
            if not free or self.stopped is not None:
                return
            job = self.jobs[job_id]
            if any(self.rows[d].state != "done" for d in job.depends_on):
                continue
            if outputs.is_complete(job_dir(self.run_dir, job_id)):
                self._set(job_id, "complete", "its job directory is complete already", state="done")
                continue
            inputs = self._resolve_inputs(job)
            if inputs is None:
                continue
            verdict = self.plugins.before_job_started(self.run_dir, job)
            if verdict == "skip":
                self._set(job_id, "skipped", "a plugin says its result exists", state="done")
                continue
            if verdict == "wait":
                self._note_waiting(job_id, "a plugin holds it back")
                continue
            staged = self._staged(job, inputs)
            self._write_spec(job, staged)
            slot = max(free, key=lambda s: self.backend.preference(staged, s))  # first of the best
            if self._launch(job, staged, slot):
                free.remove(slot)
            else:
                free = [s for s in free if s.name != slot.name]

    def _launch(self, job: PlannedJob, staged: StagedJob, slot: Slot) -> bool:
        try:
            self.backend.stage(staged, slot)
            handle = self.backend.launch(staged, slot)
        except SlotUnavailable as exc:
            self.cooldown[slot.name] = time.monotonic() + self.options.slot_cooldown
            self.journal.update(job.id, "slot unavailable", f"{slot.name}: {exc}")
            log.info("%s slot %s unavailable: %s", job.id, slot.name, exc)
            return False
        except Exception as exc:
            attempts = self.rows[job.id].attempts + 1
            self._set(job.id, "launch failed", str(exc), attempts=attempts, slot=slot.name)
            self.live[job.id] = _Live({}, slot.name, time.time(), staged)
            self._settle(job.id, JobStatus("exited", None, f"launch failed: {exc}"))
            return True
        now = time.time()
        attempts = self.rows[job.id].attempts + 1
        self._set(
            job.id,
            "launched",
            slot.name,
            state="running",
            attempts=attempts,
            slot=slot.name,
            handle=handle,
            started=now,
            finished=None,
            exit_code=None,
        )
        self.live[job.id] = _Live(handle, slot.name, now, staged)
        self._waiting_noted.discard(job.id)
        return True

    def _resolve_inputs(self, job: PlannedJob) -> dict[str, Path] | None:
        resolved: dict[str, Path] = {}
        for item in job.inputs:
            path = (
                self.plugins.resolve_input(self.run_dir, job, item)
                if item.key is not None
                else input_path(self.run_dir, item)
            )
            if path is None or not Path(path).exists():
                self._note_waiting(job.id, f"input {item.name!r} is not available yet")
                return None
            resolved[item.name] = Path(path).resolve()
        return resolved

    def _note_waiting(self, job_id: str, why: str) -> None:
        if job_id not in self._waiting_noted:
            self._waiting_noted.add(job_id)
            self.journal.update(job_id, "waiting", why)

    def _staged(self, job: PlannedJob, inputs: dict[str, Path]) -> StagedJob:
        return StagedJob(
            job.id, self.run_dir.name, job_dir(self.run_dir, job.id), inputs, self.options.timeout
        )

    def _write_spec(self, job: PlannedJob, staged: StagedJob) -> None:
        spec = {
            "experiment": unstructure_experiment(job.experiment),
            "job_dir": str(staged.job_dir),
            "inputs": {name: str(path) for name, path in staged.inputs.items()},
        }
        fsio.write_json(staged.job_dir / outputs.SPEC, spec)

    # --- watching -----------------------------------------------------------------

    def _poll(self) -> None:
        if not self.live:
            return
        try:
            statuses = self.backend.poll(
                {job_id: live.handle for job_id, live in self.live.items()}
            )
        except Exception as exc:
            log.warning("poll failed: %s", exc)
            return
        for job_id, status in statuses.items():
            if job_id in self.live and status.state != "running":
                self._settle(job_id, status)

    def _check_timeouts(self) -> None:
        if self.options.timeout is None:
            return
        now = time.time()
        for job_id, live in list(self.live.items()):
            if now - live.started > self.options.timeout:
                self._cancel(live.handle)
                del self.live[job_id]
                detail = f"ran past its timeout of {self.options.timeout:g}s and was stopped"
                self._set(
                    job_id,
                    "timeout",
                    detail,
                    state="timeout",
                    handle=None,
                    finished=now,
                    detail=detail,
                    log_tail=self._log_tail(live.staged.job_dir),
                )
                self._after(job_id, "timeout")
                if self.options.fail_fast:
                    self.stopped = "fail-fast"

    def _settle(self, job_id: str, status: JobStatus) -> None:
        """A job's attempt ended (or vanished): record it and decide what comes next."""
        live = self.live.pop(job_id)
        row = self.rows[job_id]
        now = time.time()
        if status.state == "exited":
            try:
                self.backend.collect(live.staged, live.handle)
            except Exception as exc:
                status = JobStatus("lost", None, f"collect failed: {exc}")
        if status.state == "lost":
            lost = row.lost + 1
            if lost > self.options.max_lost:
                detail = f"lost {lost} times ({status.detail}); giving up"
                self._set(
                    job_id,
                    "failed",
                    detail,
                    state="failed",
                    lost=lost,
                    handle=None,
                    finished=now,
                    detail=detail,
                )
                self._after(job_id, "failed")
                if self.options.fail_fast:
                    self.stopped = "fail-fast"
            else:
                self._set(
                    job_id,
                    "lost",
                    status.detail or "requeued",
                    state="pending",
                    lost=lost,
                    handle=None,
                    slot=None,
                )
                self._after(job_id, "lost")
            return
        directory = live.staged.job_dir
        if status.exit_code == 0 and outputs.is_complete(directory):
            seconds = now - live.started
            self.durations.append(seconds)
            self._set(
                job_id,
                "done",
                f"{seconds:.1f}s",
                state="done",
                handle=None,
                finished=now,
                seconds=seconds,
                exit_code=0,
                detail=None,
            )
            self._after(job_id, "done")
            return
        failures = row.failures + 1
        reason = status.detail or f"exit status {status.exit_code}"
        if status.exit_code == 0:
            reason = "exited 0 but its job directory is incomplete"
        recorded = {
            "failures": failures,
            "handle": None,
            "exit_code": status.exit_code,
            "detail": reason,
            "log_tail": self._log_tail(directory),
        }
        if failures <= self.options.retries:
            self._set(job_id, "retry", reason, state="pending", slot=None, **recorded)
        else:
            self._set(job_id, "failed", reason, state="failed", finished=now, **recorded)
            if self.options.fail_fast:
                self.stopped = "fail-fast"
        self._after(job_id, "failed")

    def _after(self, job_id: str, state: str) -> None:
        try:
            self.plugins.after_job_finished(self.run_dir, job_id, state, self.rows[job_id].attempts)
        except Exception:  # a plugin's bug must not stop the study
            log.exception("after_job_finished hook failed for %s", job_id)

    def _log_tail(self, directory: Path) -> str:
        try:
            with (directory / outputs.LOG).open("rb") as handle:
                handle.seek(0, 2)
                size = handle.tell()
                handle.seek(max(0, size - 4 * LOG_TAIL_CHARS))
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])[-LOG_TAIL_CHARS:]

    # --- stopping -----------------------------------------------------------------

    def _cancel(self, handle: Handle) -> None:
        try:
            self.backend.cancel(handle)
        except Exception as exc:
            log.warning("cancel failed: %s", exc)

    def _stop_running(self, why: str) -> None:
        """Interrupted or fail-fast: running jobs go back to pending (or keep running)."""
        if why == "interrupted" and not self.backend.cancel_on_interrupt:
            for job_id in self.live:
                self.journal.update(job_id, "left running", "re-adopted by the next coordinator")
            self.live.clear()
            return
        for job_id, live in list(self.live.items()):
            self._cancel(live.handle)
            del self.live[job_id]
            self._set(job_id, "cancelled", why, state="pending", handle=None, slot=None)

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _restore_signal_handlers(self, previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signals += 1
        if self._signals > 1:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now; the journal stays consistent
        self.stopped = "interrupted"
