"""Run directories: finding one by name, the coordinator's lock, plan.json and the grid snapshot.

```
runs/<name>/grid.toml        the grid file as it was run (grid.json for a job list)
runs/<name>/plan.json        every job: id, kind, label, dependencies, inputs, target, experiment
runs/<name>/journal.sqlite   state of every job and every state change (``journal.py``)
runs/<name>/coordinator.log  what the coordinator did, one line per event
runs/<name>/jobs/<id>/       one directory per job (``octcore.outputs``)
```
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from octcore import fsio
from octcore.config import Experiment, resolve_fold, unstructure_experiment
from octcore.errors import OctError
from octcore.executor.journal import JOURNAL

PLAN = "plan.json"
LOCK = "coordinator.lock"
COORDINATOR_LOG = "coordinator.log"
JOBS = "jobs"


def job_dir(run_dir: Path, job_id: str) -> Path:
    return run_dir / JOBS / job_id


def resolve_run(run: str, output: str | Path = "runs") -> Path:
    """A run given by path (``runs/hapt-small``) or by name under ``output``."""
    for candidate in (Path(run), Path(output) / run):
        if (candidate / JOURNAL).exists():
            return candidate
    root = Path(output)
    known = sorted(p.parent.name for p in root.glob(f"*/{JOURNAL}")) if root.is_dir() else []
    hint = f"runs under {root}: {', '.join(known)}" if known else f"no runs under {root}"
    raise OctError(f"no run {run!r} (a run directory holds {JOURNAL}); {hint}")


def resolve_job(run_dir: Path, job_ids: list[str], job: str) -> str:
    """A job id, or a prefix that names exactly one job."""
    if job in job_ids:
        return job
    matches = [j for j in job_ids if j.startswith(job)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise OctError(
            f"run {run_dir.name} has no job {job!r} ({len(job_ids)} jobs; see invoke status)"
        )
    raise OctError(
        f"{job!r} matches {len(matches)} jobs of {run_dir.name}: {', '.join(matches[:5])}…"
    )


class RunLock:
    """One coordinator per run directory: an exclusive ``flock`` on ``coordinator.lock``.

    The kernel drops the lock when its holder dies, ``kill -9`` included, so a stale
    lock never blocks a resume.
    """

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK
        self.handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise OctError(
                f"another coordinator (pid {holder}) is running {self.path.parent}; "
                "watch it with `invoke status`, or stop it before starting this one"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            self.handle.seek(0)
            self.handle.truncate()  # `invoke status` reads the pid here: none runs now
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *_: Any) -> None:
        self.release()


def snapshot_grid(source: Path, run_dir: Path) -> Path:
    """Keep the grid file as it was run next to its results."""
    target = run_dir / f"grid{source.suffix or '.toml'}"
    if source.resolve() != target.resolve():
        fsio.write_bytes(target, source.read_bytes())
    return target


def plan_record(
    name: str,
    source: str,
    axes: tuple[str, ...],
    plan: Any,
    participants_of: Callable[[Experiment], tuple[str, ...]],
) -> dict[str, Any]:
    """The content of ``plan.json`` (the report and other readers rely on its keys)."""
    jobs = []
    for job in plan.jobs:
        target = resolve_fold(job.experiment, participants_of(job.experiment)).target
        jobs.append(
            {
                "id": job.id,
                "kind": job.kind,
                "label": job.label,
                "depends_on": list(job.depends_on),
                "inputs": [
                    {"name": i.name, "job": i.job, "path": i.path, "key": i.key} for i in job.inputs
                ],
                "target": target,
                "experiment": unstructure_experiment(job.experiment),
            }
        )
    return {"run": name, "source": source, "axes": list(axes), "jobs": jobs}


def write_plan(run_dir: Path, record: dict[str, Any]) -> None:
    """plan.json, one job per line: valid JSON that diffs and greps well, and writes fast
    (``indent`` would fall back to the slow pure-Python encoder: 10,000 jobs take 0.8 s)."""
    import json

    head = {k: v for k, v in record.items() if k != "jobs"}
    jobs = [json.dumps(job, sort_keys=True) for job in record["jobs"]]
    text = json.dumps(head, sort_keys=True)[:-1] + ', "jobs": [\n' + ",\n".join(jobs) + "\n]}\n"
    fsio.write_text(run_dir / PLAN, text)


def participants_lookup(plugins: Any) -> Callable[[Experiment], tuple[str, ...]]:
    """``participants_of(experiment)``: the data set's participant ids, cached per data set."""
    cache: dict[Any, tuple[str, ...]] = {}

    def participants_of(experiment: Experiment) -> tuple[str, ...]:
        key = experiment.dataset
        if key not in cache:
            spec = plugins.datasets.get(experiment.dataset.name)
            cache[key] = tuple(spec.participants(experiment.dataset.options))
        return cache[key]

    return participants_of
