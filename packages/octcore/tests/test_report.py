"""invoke report on hand-made run directories: numbers checked against hand computations."""

from __future__ import annotations

import csv
import json
import sqlite3
import statistics
from pathlib import Path

import pytest
from invoke import Context
from invoke.exceptions import Exit
from scipy.stats import wilcoxon

from octcore.cli.collection import build_collection
from octcore.cli.report import report as report_task
from octcore.errors import OctError
from octcore.plugins import make_plugin_manager
from octcore.report import write_report
from octcore.report.collect import resolve_run_dir
from octcore.report.stats import wilcoxon_test

PARTICIPANTS = [f"p{i:02d}" for i in range(8)]


def experiment(**changes):
    data = {
        "fold": 0,
        "participants": None,
        "mode": "full_fine_tuning",
        "target_data_pct": 1.0,
        "target_batch_pct": None,
        "lr": 0.0003,
        "seed": 42,
        "seed_finetune": None,
        "device": "auto",
        "prefix": None,
        "dataset": {"name": "synthetic", "participants": 8},
        "model": {"name": "cnn1d", "base_channels": 4},
        "augmentation": {"enabled": False, "magnitude_range": [0.98, 1.02]},
    }
    data.update(changes)
    return data


def metrics(base_f1=None, adapted_f1=None, *, base_acc=0.5, adapted_acc=0.6, fold=0):
    def part(f1, acc):
        if f1 is None:
            return None
        scores = {"accuracy": acc, "macro_f1": f1, "loss": 1 - f1, "n": 32}
        return {"test": scores, "val": dict(scores), "best_epoch": 1, "epochs": 2}

    base, adapted = part(base_f1, base_acc), part(adapted_f1, adapted_acc)
    gain = None
    if base and adapted:
        gain = {k: adapted["test"][k] - base["test"][k] for k in ("accuracy", "macro_f1", "loss")}
    return {"mode": "full_fine_tuning", "fold": fold, "target": PARTICIPANTS[fold],
            "seconds": 1.5, "base": base, "adapted": adapted, "gain": gain}  # fmt: skip


def make_run(root: Path, jobs: list[dict], name: str = "study") -> Path:
    """``jobs``: dicts with ``experiment`` and one of ``metrics`` / ``failed`` / nothing."""
    run_dir = root / name
    planned = []
    for index, job in enumerate(jobs):
        job_id = job.get("id", f"job{index:03d}")
        exp = job["experiment"]
        planned.append({"id": job_id, "kind": job.get("kind", "experiment"), "label": "",
                        "depends_on": [], "inputs": [], "target": PARTICIPANTS[exp["fold"]],
                        "experiment": exp})  # fmt: skip
        job_dir = run_dir / "jobs" / job_id
        if "metrics" in job:
            job_dir.mkdir(parents=True)
            (job_dir / "metrics.json").write_text(json.dumps(job["metrics"]))
            (job_dir / "result.json").write_text(json.dumps({"state": "done"}))
        elif "failed" in job:
            job_dir.mkdir(parents=True)
            (job_dir / "result.json").write_text(
                json.dumps({"state": "failed", "reason": job["failed"]})
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = {"run": name, "source": "grid.toml", "axes": [], "jobs": planned}
    (run_dir / "plan.json").write_text(json.dumps(plan))
    return run_dir


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_results_csv_has_every_parameter_and_metric(tmp_path):
    run_dir = make_run(tmp_path, [
        {"experiment": experiment(fold=0), "metrics": metrics(0.5, 0.7, fold=0)},
        {"experiment": experiment(fold=1)},
        {"experiment": experiment(fold=2), "failed": "CUDA out of memory"},
        {"experiment": experiment(fold=0, mode="base_only"), "kind": "base"},
    ])  # fmt: skip
    result = write_report(run_dir)
    rows = read_csv(run_dir / "results.csv")
    assert [r["job_id"] for r in rows] == ["job000", "job001", "job002"]  # base job is no row
    assert [r["state"] for r in rows] == ["done", "not started", "failed"]
    first = rows[0]
    assert first["target"] == "p00"
    assert first["dataset.name"] == "synthetic" and first["model.base_channels"] == "4"
    assert first["augmentation.magnitude_range"] == "0.98,1.02"
    assert float(first["base_test_macro_f1"]) == 0.5
    assert float(first["adapted_test_macro_f1"]) == 0.7
    assert float(first["gain_macro_f1"]) == pytest.approx(0.2)
    assert float(first["adapted_val_accuracy"]) == 0.6
    assert first["adapted_epochs"] == "2.0" and first["seconds"] == "1.5"
    assert rows[1]["adapted_test_macro_f1"] == "" and rows[1]["gain_accuracy"] == ""
    assert rows[2]["reason"] == "CUDA out of memory"
    assert result.run.other_jobs == {"base": 1}
    assert "1 base job(s)" in (run_dir / "report.md").read_text()


def test_summary_mean_and_sample_sd_over_folds(tmp_path):
    adapted = [0.5, 0.6, 0.7]
    base = [0.4, 0.45, 0.65]
    jobs = [
        {"experiment": experiment(fold=i), "metrics": metrics(b, a, fold=i)}
        for i, (b, a) in enumerate(zip(base, adapted, strict=True))
    ]
    jobs += [
        {"experiment": experiment(fold=i, lr=0.001), "metrics": metrics(0.3, 0.3, fold=i)}
        for i in range(3)
    ]
    result = write_report(make_run(tmp_path, jobs))
    assert [s.label for s in result.summaries] == ["lr=0.0003", "lr=0.001"]
    first = result.summaries[0]
    assert first.complete and first.folds_text == "3/3"
    stat = first.stats["adapted_test_macro_f1"]
    assert stat.n == 3
    assert stat.mean == pytest.approx(0.6)
    assert stat.sd == pytest.approx(0.1)  # sample sd: sqrt((0.01 + 0 + 0.01) / 2)
    gain = first.stats["gain_macro_f1"]
    assert gain.mean == pytest.approx(statistics.fmean([0.1, 0.15, 0.05]))
    assert stat.text() == "0.6000 ± 0.1000"
    assert "| lr=0.0003 | 3/3 | 0.6000 ± 0.1000 |" in (tmp_path / "study" / "report.md").read_text()


def test_a_missing_or_failed_fold_marks_the_configuration_incomplete(tmp_path):
    run_dir = make_run(tmp_path, [
        {"experiment": experiment(fold=0), "metrics": metrics(0.5, 0.8, fold=0)},
        {"experiment": experiment(fold=1), "metrics": metrics(0.5, 0.6, fold=1)},
        {"experiment": experiment(fold=2), "failed": "diverged"},
        {"experiment": experiment(fold=3)},
    ])  # fmt: skip
    result = write_report(run_dir)
    (summary,) = result.summaries
    assert not summary.complete
    assert summary.folds_text == "2/4"
    assert [(a.fold, a.target, a.state) for a in summary.absent] == [
        (2, "p02", "failed"),
        (3, "p03", "not started"),
    ]
    # the stats are shown, over the folds that exist, never silently
    assert summary.stats["adapted_test_macro_f1"].n == 2
    assert summary.stats["adapted_test_macro_f1"].mean == pytest.approx(0.7)
    text = (run_dir / "report.md").read_text()
    assert "**incomplete (2/4 folds)**" in text
    assert "fold 2 (p02), job `job002`: failed: diverged" in text
    assert "fold 3 (p03), job `job003`: not started" in text
    assert "incomplete: 2 participant(s) unpaired" in text


def test_wilcoxon_matches_scipy_on_the_per_participant_pairs(tmp_path):
    base = [0.50, 0.61, 0.42, 0.70, 0.55, 0.48, 0.66]
    adapted = [0.58, 0.60, 0.55, 0.79, 0.71, 0.47, 0.80]
    jobs = [
        {"experiment": experiment(fold=i), "metrics": metrics(b, a, fold=i)}
        for i, (b, a) in enumerate(zip(base, adapted, strict=True))
    ]
    result = write_report(make_run(tmp_path, jobs))
    (comparison,) = result.paired
    expected = wilcoxon(adapted, base, alternative="two-sided")
    test = comparison.test
    assert test.n == 7
    assert test.statistic == pytest.approx(expected.statistic)
    assert test.p == pytest.approx(expected.pvalue)
    diffs = sorted(a - b for a, b in zip(adapted, base, strict=True))
    assert test.median_difference == pytest.approx(diffs[3])
    assert comparison.first_mean == pytest.approx(statistics.fmean(base))
    assert comparison.second_mean == pytest.approx(statistics.fmean(adapted))
    assert "little power" not in test.note


def test_wilcoxon_by_hand_on_a_tiny_case():
    # Six positive differences: W- = 0, so W = min(W+, W-) = 0; the exact two-sided
    # p is 2 * P(W+ = 21) = 2 / 2**6 (only the all-positive sign pattern reaches 21).
    test = wilcoxon_test([0.0] * 6, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert test.statistic == 0.0
    assert test.p == pytest.approx(2 / 64)
    # Three pairs, differences +1, -2, +3: ranks 1, 2, 3; W+ = 4, W- = 2, W = 2.
    # Of the 8 sign patterns, W+ <= 2 or >= 4 in 6 (W+ in {0,1,2,4,5,6}), so p = 6/8.
    small = wilcoxon_test([0.0, 0.0, 0.0], [1.0, -2.0, 3.0])
    assert small.statistic == 2.0
    assert small.p == pytest.approx(6 / 8)
    assert "little power" in small.note
    zero = wilcoxon_test([0.5, 0.6], [0.5, 0.6])
    assert zero.p == 1.0 and "every difference is zero" in zero.note
    assert wilcoxon_test([], []).p is None


def test_seeds_are_averaged_before_pairing(tmp_path):
    # 4 participants x 2 seeds: the test must see 4 pairs, each a mean over 2 seeds.
    values = {  # (fold, seed) -> (base, adapted)
        (0, 1): (0.50, 0.60), (0, 2): (0.52, 0.70),
        (1, 1): (0.40, 0.41), (1, 2): (0.44, 0.47),
        (2, 1): (0.70, 0.65), (2, 2): (0.72, 0.69),
        (3, 1): (0.30, 0.50), (3, 2): (0.34, 0.52),
    }  # fmt: skip
    jobs = [
        {"experiment": experiment(fold=f, seed=s), "metrics": metrics(b, a, fold=f)}
        for (f, s), (b, a) in values.items()
    ]
    result = write_report(make_run(tmp_path, jobs))
    assert len(result.summaries) == 2  # one per seed, over 4 folds each
    (comparison,) = result.paired
    assert comparison.test.n == 4
    pairs = {p.participant: (p.first, p.second, p.runs) for p in comparison.pairs}
    for fold in range(4):
        base = statistics.fmean(values[(fold, s)][0] for s in (1, 2))
        adapted = statistics.fmean(values[(fold, s)][1] for s in (1, 2))
        assert pairs[PARTICIPANTS[fold]] == (pytest.approx(base), pytest.approx(adapted), 2)
    firsts = [pairs[p][0] for p in PARTICIPANTS[:4]]
    seconds = [pairs[p][1] for p in PARTICIPANTS[:4]]
    assert comparison.test.p == pytest.approx(wilcoxon(seconds, firsts).pvalue)
    assert "little power" in comparison.test.note
    text = (tmp_path / "study" / "report.md").read_text()
    assert "differ only by `seed`/`seed_finetune`" in text


def test_a_participant_missing_a_seed_is_flagged(tmp_path):
    jobs = [
        {"experiment": experiment(fold=0, seed=1), "metrics": metrics(0.5, 0.6, fold=0)},
        {"experiment": experiment(fold=0, seed=2)},
        {"experiment": experiment(fold=1, seed=1)},
        {"experiment": experiment(fold=1, seed=2)},
    ]
    (comparison,) = write_report(make_run(tmp_path, jobs)).paired
    assert comparison.test.n == 1
    assert comparison.partial == ("p00",)
    assert comparison.unpaired == ("p01",)


def test_figures_for_the_varied_axis_and_pairs_only(tmp_path):
    jobs = []
    for mode in ("full_fine_tuning", "target_only"):
        for pct in (0.5, 1.0):
            for fold in range(3):
                base = None if mode == "target_only" else 0.5
                adapted = 0.5 + pct / 4 + fold / 50
                jobs.append({"experiment": experiment(fold=fold, mode=mode, target_data_pct=pct),
                             "metrics": metrics(base, adapted, fold=fold)})  # fmt: skip
    run_dir = make_run(tmp_path, jobs)
    result = write_report(run_dir)
    names = sorted(p.name for p in (run_dir / "figures").iterdir())
    assert names == [
        "adapted_test_macro_f1_vs_target_data_pct.png",
        "base_vs_adapted_01.png",
        "base_vs_adapted_02.png",
    ]
    for name in names:
        assert (run_dir / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # target_only has no base model: only the two full_fine_tuning configurations pair
    assert [c.label for c in result.paired] == [
        "mode=full_fine_tuning, target_data_pct=0.5",
        "mode=full_fine_tuning, target_data_pct=1",
    ]
    text = (run_dir / "report.md").read_text()
    assert "](figures/adapted_test_macro_f1_vs_target_data_pct.png)" in text
    assert "target_batch_pct does not vary" in text
    # the extra comparison: fine-tuning against target_only at equal settings
    assert len(result.versus_target_only) == 2
    versus = result.versus_target_only[0]
    assert versus.test.n == 3 and versus.first_name == "target_only"
    assert "Fine-tuning vs target_only" in text


def test_journal_states_fill_in_for_jobs_without_results(tmp_path):
    run_dir = make_run(tmp_path, [
        {"experiment": experiment(fold=0), "metrics": metrics(0.5, 0.6)},
        {"experiment": experiment(fold=1)},
    ])  # fmt: skip
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT)")
        states = [("job000", "done"), ("job001", "timeout")]
        db.executemany("INSERT INTO jobs VALUES (?, ?)", states)
    db.close()
    result = write_report(run_dir)
    assert [r.state for r in result.run.rows] == ["done", "timeout"]
    (run_dir / "journal.sqlite").write_bytes(b"not a database")
    assert [r.state for r in write_report(run_dir).run.rows] == ["done", "not started"]


def test_cli_task_by_name_and_clear_error_without_plan(tmp_path, capsys):
    assert "report" in build_collection(make_plugin_manager(entry_points_=False)).task_names
    make_run(tmp_path / "runs", [{"experiment": experiment(), "metrics": metrics(0.5, 0.6)}])
    report_task(Context(), run="study", output=str(tmp_path / "runs"))
    out = capsys.readouterr().out
    assert "study: 1/1 jobs done" in out and "results.csv" in out
    assert (tmp_path / "runs" / "study" / "report.md").exists()
    assert resolve_run_dir(str(tmp_path / "runs" / "study"), Path("elsewhere")).name == "study"
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exit) as info:
        report_task(Context(), run=str(tmp_path / "empty"))
    assert info.value.code == 2
    assert "has no plan.json" in capsys.readouterr().err
    with pytest.raises(OctError, match="no run directory"):
        resolve_run_dir("nowhere", tmp_path)


def test_target_batch_figure_draws_unset_as_a_reference_line(tmp_path):
    jobs = [
        {"experiment": experiment(fold=fold, target_batch_pct=pct),
         "metrics": metrics(0.5, 0.6 + (pct or 0) / 10, fold=fold)}
        for pct in (None, 0.25, 0.5)
        for fold in range(2)
    ]  # fmt: skip
    run_dir = make_run(tmp_path, jobs)
    result = write_report(run_dir)
    assert (run_dir / "figures" / "adapted_test_macro_f1_vs_target_batch_pct.png").exists()
    assert len(result.paired) == 3
    assert [s.label for s in result.summaries] == [
        "target_batch_pct=unset",
        "target_batch_pct=0.25",
        "target_batch_pct=0.5",
    ]
