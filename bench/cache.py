"""Benchmarks of octcache: planning speed, DAG vs barrier makespan, compute saved.

    python bench/cache.py [--quick] [--out bench/results/cache.json]

1. Planning: ``make_plan`` on the research code's 1,008-job grid
   (``grids/research-1008.toml``) and on a 100,800-job grid (that grid x 100 seeds),
   into an empty store (targets: < 0.5 s and < 10 s).
2. Makespan: a discrete-event simulation of the executor's rule (a free slot takes
   the first ready job in plan order) over one set of job durations, with the plan's
   dependencies (DAG) and with a barrier (every base, then every fine-tune), on 4
   slots. Base durations are skewed (proportional to the base set's size, times
   log-normal noise). Target: DAG <= 0.85 x barrier.
3. Compute saved: a small synthetic grid run for real through the executor and the
   local backend, once with the store off (every job trains its base inline) and once
   with a fresh store; base trainings counted from the job outputs, wall time of both.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]


def bench_planning(plugins: Any, repeats: int) -> dict[str, Any]:
    from octcache.planner import make_plan
    from octcache.store import Store
    from octcore.grid import load_grid

    grid = load_grid(ROOT / "grids" / "research-1008.toml", plugins)
    big = [attrs.evolve(e, seed=s) for s in range(100) for e in grid.experiments]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, experiments in (("research_1008", grid.experiments), ("grid_100800", big)):
            times, stats = [], None
            for i in range(repeats):
                store = Store(str(Path(tmp) / f"{name}-{i}"))
                started = time.perf_counter()
                planned = make_plan(experiments, store, plugins)
                times.append(time.perf_counter() - started)
                stats = planned.stats
            out[name] = {
                "jobs": stats.experiments,
                "distinct_bases": stats.bases,
                "per_fold_base_configurations": stats.per_fold,
                "seconds_median": round(statistics.median(times), 4),
                "seconds_all": [round(t, 4) for t in times],
                "target_seconds": 0.5 if name == "research_1008" else 10.0,
            }
            print(
                f"plan {name}: {stats.experiments:,} jobs, {stats.bases:,} bases "
                f"in {statistics.median(times):.3f}s (median of {repeats})"
            )
    return out


# --- makespan -------------------------------------------------------------------


SKEWS = (0.5, 1.0)


def simulate(jobs: list[dict[str, Any]], slots: int, barrier: bool) -> float:
    """Makespan of list scheduling in plan order; ``barrier``: targets wait for every base."""
    done: set[str] = set()
    pending = list(jobs)
    running: list[tuple[float, str]] = []
    now = 0.0
    bases = {j["id"] for j in jobs if j["kind"] == "base"}
    while pending or running:
        free = slots - len(running)
        for job in list(pending):
            if free == 0:
                break
            ready = all(d in done for d in job["deps"])
            if barrier and job["kind"] != "base":
                ready = ready and bases <= done
            if ready:
                heapq.heappush(running, (now + job["seconds"], job["id"]))
                pending.remove(job)
                free -= 1
        now, finished = heapq.heappop(running)
        done.add(finished)
        while running and running[0][0] == now:
            done.add(heapq.heappop(running)[1])
    return now


def workload(
    plan: Any,
    keys: dict[str, str],
    specs: dict[str, Any],
    seed: int,
    base_unit: float,
    target_unit: float,
    skew: float,
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    jobs = []
    for job in plan.jobs:
        if job.kind == "base":
            size = len(specs[keys[job.id]].base_participants)
            seconds = base_unit * size * rng.lognormvariate(0, skew)
        else:
            seconds = (
                target_unit * (0.5 + job.experiment.target_data_pct) * rng.lognormvariate(0, 0.3)
            )
        jobs.append(
            {"id": job.id, "kind": job.kind, "deps": list(job.depends_on), "seconds": seconds}
        )
    return jobs


def bench_makespan(plugins: Any) -> dict[str, Any]:
    from octcache.planner import make_plan
    from octcache.store import Store
    from octcore.config import experiment_from_dict

    data = {"name": "synthetic", "participants": 7}
    scenarios = {
        # a study the size the issue describes: 7 folds x 2 base sizes, 4 fine-tunes each
        "7x2_bases_56_finetunes": [
            {"dataset": data, "fold": f, "n_base_participants": n, "mode": m, "target_data_pct": p}
            for f in range(7)
            for n in (3, 6)
            for m in ("full_fine_tuning", "target_only_fine_tuning")
            for p in (0.25, 1.0)
        ],
        # the research code's 15-job example: one base per fold, 5 fine-tunes each
        "research_15": [
            {"dataset": {"name": "synthetic", "participants": 3}, "fold": f, "target_batch_pct": b}
            for f in range(3)
            for b in (0.1, 0.25, 0.5, 0.75, 0.9)
        ],
        # the research code's 1,008-job grid (54 distinct bases)
        "research_1008": [
            {
                "dataset": data,
                "fold": f,
                "n_base_participants": n,
                "mode": m,
                "target_data_pct": p,
                "batch_size": b,
            }
            for b in (32, 64)
            for m in ("full_fine_tuning", "target_only_fine_tuning")
            for p in (0.01, 0.05, 0.125, 0.25, 0.5, 1.0)
            for n in range(1, 7)
            for f in range(7)
        ],
    }
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rows in scenarios.items():
            experiments = [experiment_from_dict(r, plugins, source=name) for r in rows]
            planned = make_plan(experiments, Store(str(Path(tmp) / name)), plugins)
            for skew in SKEWS:
                ratios, dags, barriers = [], [], []
                for seed in range(20):
                    jobs = workload(
                        planned.plan, planned.keys, planned.specs, seed, 10.0, 8.0, skew
                    )
                    dag, barrier = simulate(jobs, 4, False), simulate(jobs, 4, True)
                    ratios.append(dag / barrier)
                    dags.append(dag)
                    barriers.append(barrier)
                out[f"{name}_skew{skew}"] = {
                    "bases": planned.stats.base_jobs,
                    "finetunes": planned.stats.experiments,
                    "slots": 4,
                    "base_duration_lognormal_sigma": skew,
                    "dag_makespan_median": round(statistics.median(dags), 2),
                    "barrier_makespan_median": round(statistics.median(barriers), 2),
                    "ratio_median_of_20_seeds": round(statistics.median(ratios), 3),
                    "ratio_min": round(min(ratios), 3),
                    "ratio_max": round(max(ratios), 3),
                    "target_ratio": 0.85,
                }
                print(
                    f"makespan {name}, skew {skew}: DAG/barrier = {statistics.median(ratios):.3f} "
                    f"(median of 20 duration draws, {min(ratios):.3f}..{max(ratios):.3f})"
                )
    out["method"] = (
        "discrete-event simulation of the executor's launch rule (first ready job in plan "
        "order) over identical durations; base seconds = 10 x base participants x "
        "lognormal(0, sigma), fine-tune seconds = 8 x (0.5 + target_data_pct) x lognormal(0, 0.3)"
    )
    return out


# --- compute saved ---------------------------------------------------------------


def run_real(plugins: Any, experiments: list[Any], run_dir: Path, store: str) -> dict[str, Any]:
    from octcore.executor.executor import Executor, ExecutorOptions
    from octcore.executor.runs import participants_lookup
    from octcore.plan import independent_plan
    from octsched_local.config import LocalConfig

    os.environ["OCT_STORE"] = store
    started = time.perf_counter()
    plan = plugins.plan_jobs(experiments, run_dir)
    if plan is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        plan = independent_plan(experiments, participants_lookup(plugins))
    backend = plugins.backends.get("local").factory(LocalConfig(slots=2), run_dir)
    summary = Executor(plan, backend, run_dir, plugins, ExecutorOptions(retries=0, tick=0.2)).run()
    seconds = time.perf_counter() - started
    trained = 0
    for job in plan.jobs:
        metrics = json.loads((run_dir / "jobs" / job.id / "metrics.json").read_text())
        if metrics.get("base") is not None and "reused_from" not in metrics["base"]:
            trained += 1
    return {
        "jobs": len(plan.jobs),
        "base_trainings": trained,
        "wall_seconds": round(seconds, 2),
        "ok": summary.ok,
    }


def bench_saved(plugins: Any) -> dict[str, Any]:
    from octcore.config import experiment_from_dict

    # A HAPT study whose adaptation is cheap next to its base (as in the research
    # code's target_only_fine_tuning grids): 3 folds x 2 modes x 2 data fractions.
    rows = [
        {
            "dataset": {"name": "hapt"},
            "model": {"name": "cnn1d", "base_channels": 8},
            "max_epochs": 6,
            "early_stopping_patience": 6,
            "early_stopping_patience_target": 3,
            "fold": f,
            "mode": m,
            "target_data_pct": p,
        }
        for f in range(3)
        for m in ("target_only_fine_tuning", "last_layer_only")
        for p in (0.25, 1.0)
    ]
    experiments = [experiment_from_dict(r, plugins, source="saved") for r in rows]
    previous = os.environ.get("OCT_STORE")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            without = run_real(plugins, experiments, Path(tmp) / "without", "off")
            with_cache = run_real(
                plugins, experiments, Path(tmp) / "with", str(Path(tmp) / "store")
            )
    finally:
        if previous is None:
            os.environ.pop("OCT_STORE", None)
        else:
            os.environ["OCT_STORE"] = previous
    out = {
        "grid": "HAPT, folds 0-2 x modes (target_only_fine_tuning, last_layer_only) x "
        "target_data_pct (0.25, 1.0), 29 base participants, cnn1d(8), up to 6 base epochs, "
        "2 CPU slots",
        "without_cache": without,
        "with_cache": with_cache,
        "base_trainings_ratio": round(
            with_cache["base_trainings"] / max(1, without["base_trainings"]), 3
        ),
        "wall_ratio": round(with_cache["wall_seconds"] / max(1e-9, without["wall_seconds"]), 3),
    }
    print(
        f"compute saved: {without['base_trainings']} -> {with_cache['base_trainings']} "
        "base trainings, "
        f"wall {without['wall_seconds']}s -> {with_cache['wall_seconds']}s"
    )
    return out


# --- makespan with real sleep jobs on the local backend ----------------------------

BASE_SECONDS = (0.5, 1.0, 4.0)  # skewed: one slow base gates its fine-tunes
FINETUNE_SECONDS = 0.6
FINETUNES_PER_BASE = 5


def bench_makespan_real(slots: int = 4) -> dict[str, Any]:
    """The same two-phase shape run for real: stand-in jobs that sleep, 4 local slots.

    DAG: one executor over base jobs and fine-tunes that depend on them. Barrier:
    an executor over the base jobs, then one over the fine-tunes. Both see the same
    durations; the machinery (process starts, journal, polling) is in both.
    """
    import tempfile

    from octcore import fsio, outputs
    from octcore.config import Experiment
    from octcore.executor.executor import Executor, ExecutorOptions
    from octcore.plan import Plan, PlannedJob
    from octcore.plugins import make_plugin_manager
    from octsched_local.backend import LocalBackend
    from octsched_local.config import LocalConfig

    seconds: dict[str, float] = {}
    bases, finetunes = [], []
    for b, duration in enumerate(BASE_SECONDS):
        base_id = f"base{b}"
        seconds[base_id] = duration
        bases.append(PlannedJob(base_id, Experiment(), kind="base"))
        for f in range(FINETUNES_PER_BASE):
            job_id = f"ft{b}-{f}"
            seconds[job_id] = FINETUNE_SECONDS
            finetunes.append(PlannedJob(job_id, Experiment(fold=f), depends_on=(base_id,)))

    class SleepExecutor(Executor):
        def _write_spec(self, job: PlannedJob, staged: Any) -> None:
            spec = {"stand_in": {"sleep": seconds[job.id]}, "job_dir": str(staged.job_dir)}
            fsio.write_json(staged.job_dir / outputs.SPEC, spec)

    plugins = make_plugin_manager(entry_points_=False)  # no planner or store: just the DAG

    def run(plan: Plan, run_dir: Path) -> float:
        backend = LocalBackend(LocalConfig(slots=slots), run_dir)
        started = time.perf_counter()
        summary = SleepExecutor(plan, backend, run_dir, plugins, ExecutorOptions(tick=0.1)).run()
        elapsed = time.perf_counter() - started
        assert summary.ok, summary
        return elapsed

    rounds = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            dag = run(Plan(tuple(bases + finetunes)), root / "dag")
            independent = tuple(PlannedJob(j.id, j.experiment) for j in finetunes)
            barrier = run(Plan(tuple(bases)), root / "barrier") + run(
                Plan(independent), root / "barrier-2"
            )
            rounds.append({"dag_s": round(dag, 3), "barrier_s": round(barrier, 3),
                           "ratio": round(dag / barrier, 3)})  # fmt: skip
    ratio = statistics.median(r["ratio"] for r in rounds)
    print(f"makespan with real sleep jobs on {slots} local slots: DAG/barrier = {ratio:.3f}")
    return {
        "slots": slots,
        "base_seconds": list(BASE_SECONDS),
        "finetunes_per_base": FINETUNES_PER_BASE,
        "finetune_seconds": FINETUNE_SECONDS,
        "rounds": rounds,
        "ratio_median": ratio,
        "target_ratio": 0.85,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one planning repeat, no real runs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cache.json")
    args = parser.parse_args()
    from octcore.plugins import make_plugin_manager

    plugins = make_plugin_manager()
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "planning": bench_planning(plugins, 1 if args.quick else 3),
        "makespan": bench_makespan(plugins),
        "makespan_real_sleep_jobs": bench_makespan_real(),
    }
    if not args.quick:
        try:
            results["compute_saved"] = bench_saved(plugins)
        except Exception as exc:
            results["compute_saved"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"compute saved: not measured: {exc}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
