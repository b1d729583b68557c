"""The backend interface: where jobs run and how they get there.

A backend is a handful of methods, separate from the hooks. The executor in
``octcore.executor`` decides *what* runs *when*; a backend only says *where* a
job can run (``slots``) and *how* to stage, launch, watch, collect, cancel and
re-adopt it. Every backend passes the contract suite in
``octcore.testing.backend_contract``.

A launched job is identified by a ``Handle``: a small JSON-able mapping the
backend chooses (a PID and start time, a host and tmux session name…). The
executor stores it in the journal, so a new coordinator can hand it back to
``adopt`` after a restart.

A backend is built by its plugin's ``BackendSpec.factory(config, run_dir)``:
``config`` is an instance of the spec's ``config_cls`` (built from the grid
command's flags), ``run_dir`` the local run directory (``runs/<name>``; its name
is the run name).

Job process contract: a job runs ``python -m octcore.job SPEC`` in its job
directory on the slot's host, writes its outputs there and ``result.json`` last;
stdout and stderr go to ``job.log`` in that directory. ``exit_code`` 0 with a
``result.json`` whose state is ``done`` is success.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

Handle = Mapping[str, Any]


@attrs.frozen
class Slot:
    """One place a job can run. ``name`` is unique within a run (``local/gpu0#1``)."""

    name: str
    host: str = "localhost"
    gpu: str | None = None  # device index on its host; None = CPU
    threads: int | None = None  # CPU threads a job on this slot may use


@attrs.frozen
class JobStatus:
    """What a backend knows about a launched job.

    ``state``: ``running``; ``exited`` (with ``exit_code``); or ``lost`` (the job is
    gone without an exit status: its host died, its process was killed from
    outside — infrastructure, not the job's fault).
    """

    state: str
    exit_code: int | None = None
    detail: str = ""


@attrs.frozen
class StagedJob:
    """What the executor hands to ``launch``: the job, its local directory and inputs."""

    job_id: str
    run_name: str
    job_dir: Path  # local job directory holding spec.json
    inputs: Mapping[str, Path] = attrs.field(factory=dict)  # name -> local directory
    timeout: float | None = None


class Backend(abc.ABC):
    """Where and how jobs run. Methods are called from the executor's thread only."""

    name: str = "?"
    # On Ctrl-C, should the coordinator cancel running jobs (and requeue them)?
    # True where jobs die with the coordinator anyway (local children); False where
    # they are meant to outlive it (jobs in tmux on remote hosts) and are re-adopted.
    cancel_on_interrupt: bool = True

    @abc.abstractmethod
    def slots(self) -> Sequence[Slot]:
        """The slots usable now. May shrink (a host died) or grow (it came back)."""

    @abc.abstractmethod
    def stage(self, job: StagedJob, slot: Slot) -> None:
        """Put the job's spec and inputs where it will run on this slot.

        Local backends may do nothing. Inputs already present on the slot's host
        (same content) must not be copied again. Raise ``SlotUnavailable`` if the
        slot cannot be reached: the executor retries elsewhere, no failure counted.
        """

    @abc.abstractmethod
    def launch(self, job: StagedJob, slot: Slot) -> Handle:
        """Start a staged job on the slot and return its handle (``SlotUnavailable`` as above)."""

    def preference(self, job: StagedJob, slot: Slot) -> int:
        """Higher means better: e.g. the slot's host already holds the job's inputs."""
        return 0

    @abc.abstractmethod
    def poll(self, handles: Mapping[str, Handle]) -> Mapping[str, JobStatus]:
        """Status of each launched job, by job id. Must not block for long."""

    def wait(self, timeout: float) -> None:
        """Block until a job may have changed state, or ``timeout`` seconds pass.

        Backends with completion notifications wake early; the default sleeps.
        """
        import time

        time.sleep(timeout)

    @abc.abstractmethod
    def collect(self, job: StagedJob, handle: Handle) -> None:
        """Bring the job's directory into ``job.job_dir`` (verified). No-op when local."""

    @abc.abstractmethod
    def cancel(self, handle: Handle) -> None:
        """Stop a running job (timeout, Ctrl-C, fail-fast). Must not raise if it is gone."""

    @abc.abstractmethod
    def adopt(self, job: StagedJob, handle: Handle) -> JobStatus:
        """After a coordinator restart: the status of a job launched by an earlier one.

        ``lost`` if it cannot be found; ``running`` if it is still going (the backend
        then watches it again); ``exited`` if it finished while nobody watched.
        """

    def slot_of(self, handle: Handle) -> str | None:
        """The slot name a handle runs on (for re-adopted jobs), if known."""
        return handle.get("slot")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; running jobs keep running unless cancelled."""

    def describe(self) -> str:
        return self.name


class SlotUnavailable(Exception):
    """A slot cannot take a job right now (not the job's fault)."""
