"""The ``local`` backend: each job is a child process on this machine, one per slot.

A job is ``python -m octcore.job spec.json`` started in its job directory, with
stdout and stderr in ``job.log`` and a session (process group) of its own, so that
Ctrl-C in the coordinator's terminal does not reach it and ``cancel`` can end the
job with everything it started.

Waiting is event-driven: a thread per child blocks in ``wait()`` and sets an event
when it exits; a job re-adopted after a coordinator restart is not our child, so
a thread blocks on its pidfd instead. ``wait(timeout)`` therefore returns as soon
as any job ends.

What an exit means:
- our child exited with a status: ``exited`` with that status;
- our child died of a signal we did not send (``kill -9`` from outside, the OOM
  killer, a closed session): ``lost`` for SIGKILL/SIGTERM/SIGHUP/SIGINT (the
  executor requeues it without counting a failure), ``exited`` with ``128 + signal``
  for any other signal (a crash such as SIGSEGV is the job's failure);
- a re-adopted process that is gone: we cannot learn its exit status, so its
  ``result.json`` decides: ``done`` → ``exited`` 0, ``failed`` → ``exited`` 1 (the job
  recorded its own failure), none → ``lost`` (it was killed before it could say).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from octcore import fsio, outputs
from octcore.backend import Backend, Handle, JobStatus, Slot, StagedJob
from octcore.job import THREADS_ENV
from octsched_local import procs
from octsched_local.config import LocalConfig, cpu_count, detect_gpus

GRACE_SECONDS = 5.0  # SIGTERM first; SIGKILL if the job is still there after this


class LocalBackend(Backend):
    name = "local"
    cancel_on_interrupt = True  # children would be orphaned otherwise; requeued on resume

    def __init__(self, config: LocalConfig, run_dir: Path | None = None):
        self.config = config
        self.run_dir = run_dir
        self._slots = tuple(_make_slots(config))
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._adopted: dict[int, Path] = {}  # non-child pid -> its job directory
        self._watched: set[int] = set()  # adopted pids with a watcher thread
        self._cancelled: set[int] = set()
        self._changed = threading.Event()

    # --- slots ----------------------------------------------------------------

    def slots(self) -> Sequence[Slot]:
        return self._slots

    def describe(self) -> str:
        gpus = sorted({s.gpu for s in self._slots if s.gpu is not None})
        if gpus:
            return f"local: {len(self._slots)} slots on GPUs {','.join(gpus)}"
        return f"local: {len(self._slots)} CPU slots x {self._slots[0].threads} threads"

    # --- launching ------------------------------------------------------------

    def stage(self, job: StagedJob, slot: Slot) -> None:
        """Inputs are local already; only the experiment's device follows the slot."""
        spec_path = job.job_dir / outputs.SPEC
        spec = json.loads(spec_path.read_text())
        experiment = spec.get("experiment")
        if isinstance(experiment, dict):
            device = "cpu" if slot.gpu is None else "cuda"  # the job sees only its GPU
            if experiment.get("device") != device:
                experiment["device"] = device
                fsio.write_json(spec_path, spec)

    def launch(self, job: StagedJob, slot: Slot) -> Handle:
        env = dict(os.environ)
        if slot.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot.gpu
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""
        if slot.threads:
            for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", THREADS_ENV):
                env[key] = str(slot.threads)
        with (job.job_dir / outputs.LOG).open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "octcore.job", str(job.job_dir / outputs.SPEC)],
                cwd=job.job_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._children[process.pid] = process
        threading.Thread(target=self._reap, args=(process,), daemon=True).start()
        return {"pid": process.pid, "start": procs.start_time(process.pid), "slot": slot.name}

    def _reap(self, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        self._changed.set()

    # --- watching -------------------------------------------------------------

    def wait(self, timeout: float) -> None:
        self._changed.wait(timeout)
        self._changed.clear()

    def poll(self, handles: Mapping[str, Handle]) -> Mapping[str, JobStatus]:
        return {job_id: self._status(handle) for job_id, handle in handles.items()}

    def _status(self, handle: Handle) -> JobStatus:
        pid = int(handle["pid"])
        child = self._children.get(pid)
        if child is not None:
            code = child.poll()
            if code is None:
                return JobStatus("running")
            return self._child_exit(pid, code)
        if procs.alive(pid, handle.get("start")):
            return JobStatus("running")
        job_dir = self._adopted.get(pid)
        return _unwatched_exit(job_dir) if job_dir is not None else JobStatus("lost", None, "gone")

    def _child_exit(self, pid: int, code: int) -> JobStatus:
        if code >= 0:
            return JobStatus("exited", code)
        signum = -code
        name = _signal_name(signum)
        if pid in self._cancelled:
            return JobStatus("exited", 128 + signum, f"cancelled ({name})")
        if signum in procs.EXTERNAL_SIGNALS:
            return JobStatus("lost", None, f"killed from outside by {name}")
        return JobStatus("exited", 128 + signum, f"died of {name}")

    def collect(self, job: StagedJob, handle: Handle) -> None:
        """The job wrote into its local directory already; nothing to copy."""

    def cancel(self, handle: Handle) -> None:
        pid = int(handle["pid"])
        if pid not in self._children and not procs.alive(pid, handle.get("start")):
            return  # gone, or the PID belongs to someone else now
        self._cancelled.add(pid)
        procs.signal_group(pid, signal.SIGTERM)
        # not a daemon: the coordinator does not exit before the group is dead
        killer = threading.Timer(
            GRACE_SECONDS, self._kill_if_alive, args=(pid, handle.get("start"))
        )
        killer.start()

    def _kill_if_alive(self, pid: int, started: int | None) -> None:
        child = self._children.get(pid)
        if (child is not None and child.poll() is None) or (
            child is None and procs.alive(pid, started)
        ):
            procs.signal_group(pid, signal.SIGKILL)

    # --- after a coordinator restart -------------------------------------------

    def adopt(self, job: StagedJob, handle: Handle) -> JobStatus:
        pid = int(handle["pid"])
        if pid in self._children:
            return self._status(handle)
        self._adopted[pid] = job.job_dir
        if procs.alive(pid, handle.get("start")):
            self._watch(pid)
            return JobStatus("running")
        return _unwatched_exit(job.job_dir)

    def _watch(self, pid: int) -> None:
        """Wake ``wait`` when an adopted (non-child) process exits."""
        if pid in self._watched:
            return
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return  # no pidfd: ``wait`` still returns after its timeout
        self._watched.add(pid)

        def watch() -> None:
            try:
                select.select([fd], [], [])
            finally:
                os.close(fd)
                self._changed.set()

        threading.Thread(target=watch, daemon=True).start()


def _unwatched_exit(job_dir: Path) -> JobStatus:
    """A process nobody could wait for: its ``result.json`` tells how it ended."""
    result = outputs.read_result(job_dir) or {}
    if result.get("state") == "done":
        return JobStatus("exited", 0, "finished while unwatched")
    if result.get("state") == "failed":
        return JobStatus("exited", 1, f"failed while unwatched: {result.get('reason', '')}")
    return JobStatus("lost", None, "gone without a result")


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _make_slots(config: LocalConfig) -> list[Slot]:
    cpus = cpu_count()
    if config.slots is not None:
        gpus: tuple[str, ...] = ()
    elif config.gpus is not None:
        gpus = tuple(str(g) for g in config.gpus)
    else:
        gpus = detect_gpus()
    if gpus:
        count = len(gpus) * config.jobs_per_gpu
        threads = max(1, cpus // count)
        return [
            Slot(f"local/gpu{gpu}#{k}", gpu=gpu, threads=threads)
            for gpu in gpus
            for k in range(config.jobs_per_gpu)
        ]
    count = config.slots or 1
    threads = max(1, cpus // count)
    return [Slot(f"local/cpu{k}", threads=threads) for k in range(count)]
