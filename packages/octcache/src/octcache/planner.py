"""Two-phase planning: one base job per distinct key, target jobs that wait for it.

Every experiment whose mode trains a base gets the key of that base
(``octcache.keys``). A key already in the store needs no job; every other key gets
one base job (its first experiment, in mode ``base_only``, or a ``base_only``
experiment of the grid itself). Each experiment becomes a target job that depends
on its key's base job, if any, and names the base as an ``Input`` by key, which
the coordinator resolves to the stored entry when the job is about to start. So
each target job starts as soon as its own base is published: there is no barrier
between the phases.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from octcache.keys import KeyIndex
from octcache.store import Store
from octcore import fsio
from octcore.config import MODES_WITH_BASE, Experiment
from octcore.jobs import job_id
from octcore.plan import Input, Plan, PlannedJob, describe

KEYS_FILE = "cache-keys.json"
BASE_KIND = "base"


@attrs.frozen
class PlanStats:
    """What ``invoke plan`` and the plan's notes report."""

    experiments: int  # distinct experiment jobs
    needing_base: int  # of them, those with a base phase
    bases: int  # distinct keys
    cached: int  # keys already in the store
    base_jobs: int  # bases to train
    corrupt: int  # keys whose store entry was corrupt (retrained)
    per_fold: int  # distinct (key, target) pairs: what a planner keyed by fold would train

    def notes(self) -> tuple[str, ...]:
        lines = [
            f"{self.experiments:,} jobs, {self.bases:,} distinct bases, {self.cached:,} cached: "
            f"{self.base_jobs:,} base trainings instead of {self.needing_base:,}"
        ]
        if self.per_fold > self.bases:
            lines.append(
                f"{self.per_fold:,} (base set, fold) pairs share those {self.bases:,} bases: folds "
                "with the same base participants train the same base"
            )
        if self.corrupt:
            lines.append(f"{self.corrupt} store entries failed verification and will be retrained")
        return tuple(lines)


@attrs.frozen
class CachePlan:
    plan: Plan
    keys: dict[str, str]  # job id -> key, for every job that trains or reads a base
    stats: PlanStats
    store: Store
    specs: dict[str, Any]  # key -> BaseSpec of every key the plan reads


def make_plan(experiments: Sequence[Experiment], store: Store, plugins: Any) -> CachePlan:
    index = KeyIndex(plugins)
    targets: dict[str, tuple[Experiment, str, str | None]] = {}  # id -> (exp, target, key)
    first: dict[str, Experiment] = {}  # key -> experiment that will train it
    for experiment in experiments:
        participants = index.participants(experiment)
        identifier = job_id(experiment, participants)
        if identifier in targets:
            continue
        key = None
        if experiment.mode in MODES_WITH_BASE:
            key = index.key(experiment)[0]
            if key not in first or (
                experiment.mode == "base_only" and first[key].mode != "base_only"
            ):
                first[key] = experiment
        target = (experiment.participants or participants)[experiment.fold]
        targets[identifier] = (experiment, target, key)

    corrupt_before = len(store.problems)
    cached = {key for key in first if store.has(key)}
    corrupt = len(store.problems) - corrupt_before
    base_ids: dict[str, str] = {}
    jobs: list[PlannedJob] = []
    keys: dict[str, str] = {}
    # larger base sets first: they take longest, and starting them early shortens the
    # tail in which only a few slots still train bases (longest-processing-time first)
    order = sorted(first, key=lambda k: -len(index.key(first[k])[1].base_participants))
    for key in order:
        experiment = first[key]
        if key in cached:
            continue
        base_experiment = attrs.evolve(experiment, mode="base_only")
        participants = index.participants(experiment)
        identifier = job_id(base_experiment, participants)
        base_ids[key] = identifier
        keys[identifier] = key
        spec = index.key(experiment)[1]
        label = f"base {key[:12]} ({len(spec.base_participants)} participants)"
        jobs.append(PlannedJob(identifier, base_experiment, kind=BASE_KIND, label=label))
    for identifier, (experiment, target, key) in targets.items():
        if identifier in keys:  # a base_only experiment that is its key's base job
            continue
        depends: tuple[str, ...] = ()
        inputs: tuple[Input, ...] = ()
        if key is not None:
            keys[identifier] = key
            inputs = (Input(name="base", key=key),)
            if key in base_ids:
                depends = (base_ids[key],)
        jobs.append(
            PlannedJob(
                identifier,
                experiment,
                depends_on=depends,
                inputs=inputs,
                label=describe(experiment, target),
            )
        )
    needing = sum(1 for _, _, key in targets.values() if key is not None)
    per_fold = len({(key, target) for _, target, key in targets.values() if key is not None})
    stats = PlanStats(
        experiments=len(targets),
        needing_base=needing,
        bases=len(first),
        cached=len(cached),
        base_jobs=len(base_ids),
        corrupt=corrupt,
        per_fold=per_fold,
    )
    plan = Plan(tuple(jobs), notes=stats.notes())
    specs = {key: index.key(experiment)[1] for key, experiment in first.items()}
    return CachePlan(plan, keys, stats, store, specs)


def write_keys(run_dir: Path, cache_plan: CachePlan) -> None:
    """Record the run's store and job keys for the coordinator's hooks."""
    kinds = {job.id: job.kind for job in cache_plan.plan.jobs}
    fsio.write_json(
        Path(run_dir) / KEYS_FILE,
        {
            "store": cache_plan.store.url,
            "keys": cache_plan.keys,
            "base_jobs": sorted(i for i, kind in kinds.items() if kind == BASE_KIND),
            "specs": {key: spec.to_dict() for key, spec in cache_plan.specs.items()},
        },
    )


def read_keys(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / KEYS_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
