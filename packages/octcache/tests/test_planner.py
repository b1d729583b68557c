"""Planning: one base job per key missing from the store; target jobs wait for theirs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from octcache.planner import make_plan, read_keys
from octcache.store import Store
from octcache.testing import fake_base
from octcore.grid import load_grid
from octcore.jobs import job_id


def test_research_15_example_needs_exactly_3_bases(plugins, repo, tmp_path):
    grid = load_grid(repo / "grids" / "research-15.toml", plugins)
    assert len(grid.experiments) == 15
    planned = make_plan(grid.experiments, Store(str(tmp_path / "s")), plugins)
    bases = [j for j in planned.plan.jobs if j.kind == "base"]
    assert len(bases) == 3 and planned.stats.bases == 3
    assert {tuple(planned.specs[planned.keys[b.id]].base_participants) for b in bases} == {
        ("p01", "p02"),
        ("p00", "p02"),
        ("p00", "p01"),
    }


def test_research_1008_grid(plugins, repo, tmp_path):
    grid = load_grid(repo / "grids" / "research-1008.toml", plugins)
    assert len(grid.experiments) == 1008
    started = time.perf_counter()
    planned = make_plan(grid.experiments, Store(str(tmp_path / "s")), plugins)
    assert time.perf_counter() - started < 30  # generous: the benchmark measures it
    stats = planned.stats
    # 84 = 2 batch sizes x 6 base sizes x 7 folds, as the research code counted; folds
    # whose base participant sets coincide share one base, which leaves 54
    assert (stats.experiments, stats.per_fold, stats.bases, stats.base_jobs) == (1008, 84, 54, 54)
    targets = [j for j in planned.plan.jobs if j.kind == "experiment"]
    assert len(targets) == 1008
    assert all(len(j.depends_on) == 1 and j.inputs[0].key == planned.keys[j.id] for j in targets)
    # the target job ids are the ones the plan without octcache uses
    participants = tuple(f"p{i:02d}" for i in range(7))
    assert {j.id for j in targets} == {job_id(e, participants) for e in grid.experiments}
    assert (
        "1,008 jobs, 54 distinct bases, 0 cached: 54 base trainings instead of 1,008"
        in planned.plan.notes
    )


def test_cached_keys_need_no_base_job(make, plugins, tmp_path):
    store = Store(str(tmp_path / "s"))
    experiments = [
        make(fold=f, mode=m) for f in range(4) for m in ("full_fine_tuning", "target_only")
    ]
    first = make_plan(experiments, store, plugins)
    assert first.stats.base_jobs == 4 and first.stats.needing_base == 4
    base = next(j for j in first.plan.jobs if j.kind == "base")
    key = first.keys[base.id]
    store.publish(key, first.specs[key], fake_base(tmp_path / "b"))
    second = make_plan(experiments, store, plugins)
    assert (second.stats.cached, second.stats.base_jobs) == (1, 3)
    users = [j for j in second.plan.jobs if second.keys.get(j.id) == key]
    assert users and all(j.depends_on == () and j.inputs[0].key == key for j in users)
    # target_only trains no base: no key, no input
    for job in second.plan.jobs:
        if job.experiment.mode == "target_only":
            assert job.inputs == () and job.depends_on == () and job.id not in second.keys


def test_a_base_only_experiment_is_its_key_s_base_job(make, plugins, tmp_path):
    experiments = [make(mode="full_fine_tuning"), make(mode="base_only")]
    planned = make_plan(experiments, Store(str(tmp_path / "s")), plugins)
    ids = {j.id: j for j in planned.plan.jobs}
    participants = ("p00", "p01", "p02", "p03")
    base_only = job_id(experiments[1], participants)
    assert ids[base_only].kind == "base" and len(ids) == 2
    assert ids[job_id(experiments[0], participants)].depends_on == (base_only,)


def test_plan_hook_records_the_run_s_keys(make, plugins, tmp_path, isolated_store):
    run_dir = tmp_path / "run"
    plan = plugins.plan_jobs([make(fold=0), make(fold=1)], run_dir)
    recorded = read_keys(run_dir)
    assert recorded["store"] == str(isolated_store)
    assert set(recorded["keys"]) == {j.id for j in plan.jobs}
    assert recorded["base_jobs"] == sorted(j.id for j in plan.jobs if j.kind == "base")
    assert set(recorded["specs"]) == set(recorded["keys"].values())


def test_store_off_leaves_planning_to_the_core(make, plugins, tmp_path, monkeypatch):
    monkeypatch.setenv("OCT_STORE", "off")
    assert plugins.plan_jobs([make()], tmp_path / "run") is None
    assert not (tmp_path / "run").exists()


def test_plan_task_reports_bases(repo, tmp_path):
    from octcache.testing import subprocess_env

    done = subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), "plan", "grids/research-1008.toml"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=subprocess_env(COLUMNS="200"),
        check=True,
    )
    assert "1,008 jobs, 54 distinct bases" in done.stdout
    assert "84 (base set, fold) pairs" in done.stdout
