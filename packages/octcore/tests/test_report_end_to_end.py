"""invoke report on a run of real (tiny) training jobs: the report repeats the job's numbers."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import torch

from octcore.config import experiment_from_dict, unstructure_experiment
from octcore.job import run_job
from octcore.plan import independent_plan
from octcore.plugins import make_plugin_manager
from octcore.report import write_report


def test_report_of_three_trained_folds(tmp_path):
    torch.set_num_threads(1)
    plugins = make_plugin_manager(entry_points_=False)  # no base cache: every job trains
    experiments = [
        experiment_from_dict(
            {
                "fold": fold,
                "dataset": {"name": "synthetic", "participants": 4},
                "model": {"name": "cnn1d", "base_channels": 4},
                "max_epochs": 1,
                "device": "cpu",
            },
            plugins,
            source="test",
        )
        for fold in range(3)
    ]

    def participants_of(experiment):
        spec = plugins.datasets.get(experiment.dataset.name)
        return tuple(spec.participants(experiment.dataset.options))

    plan = independent_plan(experiments, participants_of)
    run_dir = tmp_path / "tiny"
    jobs = []
    for job in plan.jobs:
        run_job(job.experiment, run_dir / "jobs" / job.id, plugins)
        target = participants_of(job.experiment)[job.experiment.fold]
        jobs.append({"id": job.id, "kind": job.kind, "label": job.label, "depends_on": [],
                     "inputs": [], "target": target,
                     "experiment": unstructure_experiment(job.experiment)})  # fmt: skip
    (run_dir / "plan.json").write_text(json.dumps({"run": "tiny", "jobs": jobs}))

    result = write_report(run_dir)

    recorded = {
        job.id: json.loads((run_dir / "jobs" / job.id / "metrics.json").read_text())
        for job in plan.jobs
    }
    with (run_dir / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["job_id"] for r in rows] == [job.id for job in plan.jobs]
    for row in rows:
        metrics = recorded[row["job_id"]]
        assert row["state"] == "done" and row["target"] == metrics["target"]
        assert int(row["fold"]) == metrics["fold"]
        for model in ("base", "adapted"):
            for split in ("test", "val"):
                for name in ("accuracy", "macro_f1", "loss"):
                    column = f"{model}_{split}_{name}"
                    assert float(row[column]) == metrics[model][split][name], column
        assert float(row["gain_macro_f1"]) == metrics["gain"]["macro_f1"]
        assert float(row["adapted_epochs"]) == metrics["adapted"]["epochs"]

    (summary,) = result.summaries
    assert summary.complete and summary.folds_text == "3/3"
    adapted = [m["adapted"]["test"]["macro_f1"] for m in recorded.values()]
    base = [m["base"]["test"]["macro_f1"] for m in recorded.values()]
    stat = summary.stats["adapted_test_macro_f1"]
    assert stat.mean == pytest.approx(statistics.fmean(adapted))
    assert stat.sd == pytest.approx(statistics.stdev(adapted))
    assert summary.stats["base_test_macro_f1"].mean == pytest.approx(statistics.fmean(base))
    (comparison,) = result.paired
    assert comparison.test.n == 3
    assert sorted(p.participant for p in comparison.pairs) == ["p00", "p01", "p02"]
    assert (run_dir / "report.md").exists()
    assert (run_dir / "figures" / "base_vs_adapted_01.png").exists()
