"""A plan: the jobs of a study and what each needs before it can start.

Without a planning plugin every experiment is one independent job that trains
its own base inline. A planner (``octcache``) may add base jobs and make target
jobs depend on them through named ``Input``s; the executor starts a job as soon
as every job it depends on is done and every input resolves to a local directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from octcore.config import Experiment


@attrs.frozen
class Input:
    """A directory a job needs, staged onto its slot before launch.

    ``job`` set: the subdirectory ``path`` of that job's collected job directory
    (available once that job is done). ``job`` unset: ``path`` is a local directory
    now, or ``key`` names an artifact that the ``octcore_resolve_input`` hook turns
    into one when the job is about to start.
    """

    name: str
    job: str | None = None
    path: str = ""
    key: str | None = None


@attrs.frozen
class PlannedJob:
    id: str
    experiment: Experiment
    kind: str = "experiment"  # "experiment", or a planner's own kind such as "base"
    depends_on: tuple[str, ...] = ()
    inputs: tuple[Input, ...] = ()
    label: str = ""


@attrs.frozen
class Plan:
    jobs: tuple[PlannedJob, ...]
    notes: tuple[str, ...] = ()  # lines a planner wants shown (e.g. bases already cached)

    def by_id(self) -> dict[str, PlannedJob]:
        return {job.id: job for job in self.jobs}

    def __attrs_post_init__(self) -> None:
        ids = [job.id for job in self.jobs]
        if len(ids) != len(set(ids)):
            raise ValueError("a plan lists a job id twice")
        known = set(ids)
        for job in self.jobs:
            missing = [d for d in job.depends_on if d not in known]
            if missing:
                raise ValueError(f"job {job.id} depends on jobs not in the plan: {missing}")


def describe(experiment: Experiment, target: str) -> str:
    parts = [experiment.mode, f"fold {experiment.fold} ({target})"]
    if experiment.target_data_pct != 1.0:
        parts.append(f"data {experiment.target_data_pct:g}")
    if experiment.target_batch_pct is not None and experiment.mode == "full_fine_tuning":
        parts.append(f"batch {experiment.target_batch_pct:g}")
    return ", ".join(parts)


def independent_plan(experiments: Sequence[Experiment], participants_of: Any) -> Plan:
    """One job per distinct experiment, no dependencies (the plan without a planner).

    ``participants_of(experiment)`` returns the data set's participant ids.
    """
    from octcore.config import resolve_fold
    from octcore.jobs import job_id

    jobs: dict[str, PlannedJob] = {}
    for experiment in experiments:
        participants = participants_of(experiment)
        identifier = job_id(experiment, participants)
        if identifier not in jobs:
            target = resolve_fold(experiment, participants).target
            jobs[identifier] = PlannedJob(
                identifier, experiment, label=describe(experiment, target)
            )
    return Plan(tuple(jobs.values()))


def input_path(run_dir: Path, item: Input) -> Path | None:
    """Where an input lives locally without any plugin's help, or None."""
    if item.job is not None:
        return run_dir / "jobs" / item.job / item.path
    if item.path:
        return Path(item.path)
    return None
