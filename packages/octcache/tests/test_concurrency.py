"""Exactly once: two coordinators started together on one store train each key once."""

from __future__ import annotations

import json
import subprocess
import time

from octcache.testing import PYTHON, SMALL, subprocess_env

# A coordinator reduced to the hook calls the executor makes, with a stand-in trainer
# that sleeps, writes the files a base job writes, and records what it trained.
COORDINATOR = """
import json, sys, time
from pathlib import Path
from octcore.config import experiment_from_dict
from octcore.job import _config_record
from octcore.plugins import make_plugin_manager
from octcache.planner import read_keys
from octcache.testing import fake_base

run_dir, shared = Path(sys.argv[1]), Path(sys.argv[2])
start_at, grid = float(sys.argv[3]), json.loads(sys.argv[4])
plugins = make_plugin_manager(strict=True)
experiments = [experiment_from_dict(fields, plugins, source="grid") for fields in grid]
time.sleep(max(0.0, start_at - time.time()))
plan = plugins.plan_jobs(experiments, run_dir)
keys = read_keys(run_dir)["keys"]
pending = [j for j in plan.jobs if j.kind == "base"]
verdicts = {}
while pending:
    for job in list(pending):
        verdict = plugins.before_job_started(run_dir, job)
        if verdict == "wait":
            continue
        verdicts[job.id] = verdict
        pending.remove(job)
        if verdict == "run":
            job_dir = run_dir / "jobs" / job.id
            fake_base(job_dir / "base", job.id.encode())
            choice = job.experiment.dataset
            dataset = plugins.datasets.get(choice.name).load(choice.options)
            record = _config_record(job.experiment, dataset)
            (job_dir / "config.json").write_text(json.dumps(record))
            with shared.open("a") as handle:
                handle.write(keys[job.id] + "\\n")
            time.sleep(0.4)
            plugins.after_job_finished(run_dir, job.id, "done", 1)
    time.sleep(0.05)
resolved = 0
for job in plan.jobs:
    for item in job.inputs:
        assert plugins.resolve_input(run_dir, job, item) is not None, job.id
        resolved += 1
print(json.dumps({"verdicts": verdicts, "resolved": resolved, "bases": len(set(keys.values()))}))
"""


def test_two_coordinators_on_one_store_train_each_key_once(tmp_path):
    grid = [
        dict(SMALL, fold=fold, mode=mode, n_base_participants=n)
        for fold in range(4)
        for mode in ("full_fine_tuning", "target_only_fine_tuning")
        for n in (1, 3)
    ]
    shared = tmp_path / "trained.log"
    start_at = time.time() + 4.0  # both import first, then plan at the same moment
    procs = [
        subprocess.Popen(
            [
                PYTHON,
                "-c",
                COORDINATOR,
                str(tmp_path / f"run{i}"),
                str(shared),
                str(start_at),
                json.dumps(grid),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(OCT_LEASE_TTL="30"),
        )
        for i in range(2)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    trained = shared.read_text().split()
    bases = outs[0]["bases"]
    assert bases == outs[1]["bases"] == 6  # n=3: 4 folds; n=1: fold 0 on p01, folds 1-3 on p00
    assert len(trained) == len(set(trained)) == bases  # every key trained, none twice
    verdicts = [v for out in outs for v in out["verdicts"].values()]
    assert verdicts.count("run") == bases and verdicts.count("skip") == bases
    assert outs[0]["resolved"] == outs[1]["resolved"] == len(grid)
