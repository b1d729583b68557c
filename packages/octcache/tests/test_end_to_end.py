"""A small grid through the real executor and the local backend: each base trains once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from octcache.store import Store
from octcache.testing import SMALL
from octcore.executor.executor import Executor, ExecutorOptions
from octcore.executor.journal import Journal

pytestmark = pytest.mark.slow

DATA = {"name": "synthetic", "participants": 3, "train": 16, "val": 8, "test": 8, "window": 32}


def run_grid(plugins, make, run_dir: Path, **fields):
    from octsched_local.config import LocalConfig

    experiments = [
        make(dataset=DATA, fold=fold, mode=mode, **fields)
        for fold in range(3)
        for mode in ("full_fine_tuning", "target_only_fine_tuning")
    ]
    plan = plugins.plan_jobs(experiments, run_dir)
    backend = plugins.backends.get("local").factory(LocalConfig(slots=2), run_dir)
    summary = Executor(plan, backend, run_dir, plugins, ExecutorOptions(retries=0, tick=0.2)).run()
    journal = Journal.of_run(run_dir, readonly=True)
    kinds = {job.id: job.kind for job in plan.jobs}
    events = journal.events()
    journal.close()
    trained = [e["job"] for e in events if e["event"] == "done" and kinds.get(e["job"]) == "base"]
    return plan, summary, trained


def test_grid_trains_each_base_once_and_a_second_grid_reuses_them(
    plugins, make, tmp_path, isolated_store
):
    assert SMALL["max_epochs"] == 1
    plan, summary, trained = run_grid(plugins, make, tmp_path / "first")
    assert summary.ok, summary
    assert len([j for j in plan.jobs if j.kind == "base"]) == 3 and len(trained) == 3
    store = Store(str(isolated_store))
    keys = store.keys()
    assert len(keys) == 3 and all(store.uses(k) == 2 for k in keys)
    for job in plan.jobs:
        if job.kind == "experiment":
            metrics = json.loads(
                (tmp_path / "first" / "jobs" / job.id / "metrics.json").read_text()
            )
            assert metrics["base"]["reused_from"].startswith(str(isolated_store))
    # a second study on the same store needs no base training at all
    plan2, summary2, trained2 = run_grid(plugins, make, tmp_path / "second", target_data_pct=0.5)
    assert summary2.ok and trained2 == [] and all(j.kind == "experiment" for j in plan2.jobs)
    assert all(store.uses(k) == 4 for k in keys)
