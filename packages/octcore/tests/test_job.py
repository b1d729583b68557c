"""One job: its outputs, the job process's exit contract, and `invoke train` end to end."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from octcore import outputs
from octcore.config import experiment_from_dict, unstructure_experiment
from octcore.errors import JobError
from octcore.job import run_job

REPO = Path(__file__).resolve().parents[3]


def test_a_job_writes_every_output(tmp_path, plugins, tiny):
    experiment = experiment_from_dict(tiny, plugins, source="test")
    job_dir = tmp_path / "job"
    metrics = run_job(experiment, job_dir, plugins)
    for name in (outputs.CONFIG, outputs.HISTORY, outputs.METRICS, outputs.ADAPTED_WEIGHTS,
                 outputs.CURVES, outputs.RESULT):  # fmt: skip
        assert (job_dir / name).exists(), name
    assert {p.name for p in (job_dir / "base").iterdir()} == {
        "base_model.pt",
        "base.json",
        "history.csv",
    }
    assert outputs.is_complete(job_dir)
    config = json.loads((job_dir / outputs.CONFIG).read_text())
    assert config["experiment"] == unstructure_experiment(experiment)
    assert len(config["data"]["fingerprint"]) == 64
    rows = list(csv.DictReader((job_dir / outputs.HISTORY).open()))
    assert {r["phase"] for r in rows} == {"base", "target"}
    assert metrics["gain"]["macro_f1"] == pytest.approx(
        metrics["adapted"]["test"]["macro_f1"] - metrics["base"]["test"]["macro_f1"]
    )
    assert metrics["base_participants"] == ["p01", "p02", "p03"] and metrics["target"] == "p00"
    state = torch.load(job_dir / outputs.ADAPTED_WEIGHTS, weights_only=True)
    assert "mean" in state and "std" in state  # normalisation travels with the weights
    assert not list(job_dir.rglob("*.tmp")), "no temporary files are left behind"


def test_a_complete_job_directory_is_never_silently_overwritten(tmp_path, plugins, tiny):
    experiment = experiment_from_dict(tiny, plugins, source="test")
    run_job(experiment, tmp_path, plugins)
    before = (tmp_path / outputs.METRICS).read_bytes()
    with pytest.raises(JobError, match="complete job"):
        run_job(experiment, tmp_path, plugins)
    assert (tmp_path / outputs.METRICS).read_bytes() == before


def test_a_partial_job_directory_is_cleared_and_rerun(tmp_path, plugins, tiny):
    (tmp_path / outputs.METRICS).write_text("{half")
    (tmp_path / "stale.bin").write_bytes(b"x")
    experiment = experiment_from_dict(tiny, plugins, source="test")
    run_job(experiment, tmp_path, plugins)
    assert not (tmp_path / "stale.bin").exists()
    assert outputs.is_complete(tmp_path)


def test_a_stored_base_is_adapted_instead_of_trained(tmp_path, plugins, tiny):
    experiment = experiment_from_dict(tiny, plugins, source="test")
    run_job(experiment, tmp_path / "first", plugins)
    metrics = run_job(
        experiment, tmp_path / "second", plugins, inputs={"base": tmp_path / "first" / "base"}
    )
    first = json.loads((tmp_path / "first" / outputs.METRICS).read_text())
    assert metrics["base"]["test"] == first["base"]["test"]  # the very same base model
    assert metrics["base"]["reused_from"] == str(tmp_path / "first" / "base")
    rows = list(csv.DictReader((tmp_path / "second" / outputs.HISTORY).open()))
    assert {r["phase"] for r in rows} == {"target"}


def _job(spec: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return subprocess.run(
        [sys.executable, "-m", "octcore.job", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_job_process_succeeds_and_is_idempotent(tmp_path, tiny):
    spec = {"experiment": tiny, "job_dir": str(tmp_path / "job")}
    done = _job(spec, tmp_path)
    assert done.returncode == 0, done.stderr
    assert outputs.is_complete(tmp_path / "job")
    again = _job(spec, tmp_path)
    assert again.returncode == 0 and "already complete" in again.stderr


def test_job_process_bad_spec_exits_2_with_one_line_reason(tmp_path, tiny):
    result = _job({"experiment": {**tiny, "fold": 9, "lr": "x"}}, tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("octcore.job: bad spec:") and "lr" in last


def test_job_process_failure_exits_1_and_records_the_reason(tmp_path, tiny):
    bad = {**tiny, "dataset": {"name": "pt-dir", "path": str(tmp_path / "missing")}}
    result = _job({"experiment": bad, "job_dir": str(tmp_path / "j")}, tmp_path)
    assert result.returncode in {1, 2}
    assert result.stderr.strip().splitlines()[-1].startswith("octcore.job:")


def _invoke(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), *args],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_invoke_train_end_to_end(tmp_path):
    result = _invoke(
        ["train", "--dataset", "synthetic", "--fold", "1", "--max-epochs", "2",
         "--batch-size", "16", "--base-channels", "4", "--target-batch-pct", "0.25",
         "--prefix", "e2e", "--device", "cpu"],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "best base" in result.stdout and "best adapted" in result.stdout and "gain" in result.stdout
    )
    job_dir = tmp_path / "runs" / "e2e" / "fold1_p01"
    assert outputs.is_complete(job_dir)
    assert "base epoch 1/2" in (job_dir / outputs.LOG).read_text()
    config = json.loads((job_dir / outputs.CONFIG).read_text())["experiment"]
    assert config["target_batch_pct"] == 0.25 and config["model"]["base_channels"] == 4
    # the same command again refuses to overwrite the complete job
    again = _invoke(["train", "--dataset", "synthetic", "--fold", "1", "--prefix", "e2e"], tmp_path)
    assert again.returncode != 0 and "complete job" in again.stderr


def test_invoke_train_bad_input_reports_everything_and_writes_nothing(tmp_path):
    config = tmp_path / "exp.toml"
    config.write_text('mode = "nope"\ntarget_data_pct = 2.0\nfold = 99\n')
    result = _invoke(["train", "--config", str(config), "--lr", "abc"], tmp_path)
    assert result.returncode != 0
    assert "--lr" in result.stderr
    result = _invoke(["train", "--config", str(config)], tmp_path)
    assert result.returncode != 0
    assert (
        "exp.toml" in result.stderr
        and "mode" in result.stderr
        and "target_data_pct" in result.stderr
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("task", ["train", "grid", "status", "report"])
def test_task_help_after_the_task_name(tmp_path, task):
    result = _invoke([task, "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and "Options" in result.stdout
