"""One experiment as one job: ``python -m octcore.job SPEC.json``.

The spec is ``{"experiment": {...}, "job_dir": "...", "inputs": {"base": "DIR"}}``
(``job_dir`` defaults to the spec's directory; ``inputs`` are directories staged
for the job: ``base`` holds a base model to adapt instead of training one). The
job trains, writes every output of ``octcore.outputs`` atomically, and writes
``result.json`` last. It exits 0 when
the job is done (or was already complete), 2 for a bad spec, 1 for any other
failure, with a one-line reason as the last line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import octcore
from octcore import fsio, outputs
from octcore.config import MODES_WITH_BASE, Experiment, experiment_from_dict, unstructure_experiment
from octcore.errors import ConfigError, JobError, OctError

if TYPE_CHECKING:  # torch and matplotlib load on first training use: a stand-in job starts fast
    from octcore.train.loop import EpochRecord, Listener, PhaseResult
    from octcore.train.runner import Outcome

log = logging.getLogger("octcore.job")


class LogListener:
    """Writes one log line per epoch (what ``invoke logs --follow`` shows)."""

    def __init__(self) -> None:
        self.max_epochs = 0

    def phase_started(self, phase: str, max_epochs: int, batches_per_epoch: int) -> None:
        self.max_epochs = max_epochs
        log.info("%s phase: up to %d epochs of %d batches", phase, max_epochs, batches_per_epoch)

    def epoch_finished(self, r: EpochRecord) -> None:
        log.info(
            "%s epoch %d/%d  train loss %.4f f1 %.3f | val loss %.4f acc %.3f f1 %.3f%s  (%.1fs)",
            r.phase, r.epoch, self.max_epochs, r.train.loss, r.train.macro_f1, r.val.loss,
            r.val.accuracy, r.val.macro_f1, "  *" if r.improved else "", r.seconds,
        )  # fmt: skip

    def phase_finished(self, result: PhaseResult) -> None:
        log.info(
            "%s phase done: best epoch %d of %d (%s)",
            result.phase, result.best_epoch, result.epochs,
            "early stop" if result.stopped_early else "epoch limit",
        )  # fmt: skip


class FanOut:
    """Several listeners as one."""

    def __init__(self, *listeners: Listener):
        self.listeners = listeners

    def phase_started(self, phase: str, max_epochs: int, batches_per_epoch: int) -> None:
        for item in self.listeners:
            item.phase_started(phase, max_epochs, batches_per_epoch)

    def epoch_finished(self, record: EpochRecord) -> None:
        for item in self.listeners:
            item.epoch_finished(record)

    def phase_finished(self, result: PhaseResult) -> None:
        for item in self.listeners:
            item.phase_finished(result)


KEEP_ON_RESTART = {outputs.LOG, outputs.SPEC}


def prepare_job_dir(job_dir: Path, *, force: bool) -> None:
    """Refuse a complete job directory (unless ``force``); clear a partial one."""
    if outputs.is_complete(job_dir) and not force:
        raise JobError(f"{job_dir} holds a complete job; refusing to overwrite it")
    job_dir.mkdir(parents=True, exist_ok=True)
    for entry in job_dir.iterdir():
        if entry.name in KEEP_ON_RESTART:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def run_job(
    experiment: Experiment,
    job_dir: Path,
    plugins: Any,
    *,
    listener: Listener | None = None,
    force: bool = False,
    inputs: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """Run one experiment into ``job_dir``; returns the metrics written to metrics.json."""
    from octcore.curves import plot_curves
    from octcore.train.runner import run_experiment

    prepare_job_dir(job_dir, force=force)
    started = datetime.now(UTC)
    dataset = plugins.datasets.get(experiment.dataset.name).load(experiment.dataset.options)
    fsio.write_json(job_dir / outputs.CONFIG, _config_record(experiment, dataset))
    reuse = (inputs or {}).get("base")
    if experiment.mode in MODES_WITH_BASE and reuse is None:
        reuse = plugins.find_base_model(experiment, job_dir)
        if reuse is not None:
            log.info("adapting the stored base model in %s", reuse)
    outcome = run_experiment(
        experiment, dataset, plugins, listener=FanOut(LogListener(), *filter(None, [listener])),
        reuse_base=reuse,
    )  # fmt: skip
    base_dir = job_dir / outputs.BASE_DIR
    if outcome.base_state is not None:
        _write_base(base_dir, outcome, dataset.fingerprint, reuse)
        if reuse is None:
            plugins.publish_base_model(experiment, base_dir)
    if outcome.adapted_state is not None:
        fsio.torch_save(job_dir / outputs.ADAPTED_WEIGHTS, outcome.adapted_state)
    records = list(outcome.base_phase.history if outcome.base_phase else ())
    records += list(outcome.target_phase.history if outcome.target_phase else ())
    fsio.write_text(job_dir / outputs.HISTORY, outputs.history_csv(records))
    metrics = metrics_record(experiment, outcome)
    fsio.write_json(job_dir / outputs.METRICS, metrics)
    plot_rows = outputs.read_history(job_dir / outputs.HISTORY)
    if reuse is not None and (base_dir / outputs.HISTORY).exists():
        plot_rows = outputs.read_history(base_dir / outputs.HISTORY) + plot_rows
    plot_curves(plot_rows, job_dir / outputs.CURVES)
    fsio.write_json(
        job_dir / outputs.RESULT,
        {
            "state": "done",
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
            "seconds": round(outcome.seconds, 3),
            "octcore": octcore.__version__,
        },
    )
    return metrics


def _config_record(experiment: Experiment, dataset: Any) -> dict[str, Any]:
    import platform

    import torch

    return {
        "experiment": unstructure_experiment(experiment),
        "data": {
            "name": dataset.name,
            "fingerprint": dataset.fingerprint,
            "participants": list(dataset.participants),
            "num_classes": dataset.num_classes,
            "channels": dataset.channels,
            "window": dataset.window,
        },
        "versions": {
            "octcore": octcore.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }


def _write_base(base_dir: Path, outcome: Outcome, fingerprint: str, reused: Path | None) -> None:
    from octcore.train.runner import BASE_SUMMARY, BASE_WEIGHTS

    base_dir.mkdir(parents=True, exist_ok=True)
    fsio.torch_save(base_dir / BASE_WEIGHTS, outcome.base_state)
    summary = dict(outcome.base_summary or {})
    summary.update(
        target=outcome.fold.target,
        base_participants=list(outcome.fold.base),
        data_fingerprint=fingerprint,
    )
    if reused is not None:
        if (reused / outputs.HISTORY).exists():
            shutil.copyfile(reused / outputs.HISTORY, base_dir / outputs.HISTORY)
    elif outcome.base_phase is not None:
        fsio.write_text(
            base_dir / outputs.HISTORY, outputs.history_csv(list(outcome.base_phase.history))
        )
    fsio.write_json(base_dir / BASE_SUMMARY, summary)


def metrics_record(experiment: Experiment, outcome: Outcome) -> dict[str, Any]:
    from octcore.train.runner import phase_summary

    record: dict[str, Any] = {
        "mode": experiment.mode,
        "fold": experiment.fold,
        "target": outcome.fold.target,
        "base_participants": list(outcome.fold.base),
        "sizes": outcome.sizes,
        "num_parameters": outcome.num_parameters,
        "seconds": round(outcome.seconds, 3),
        "base": None,
        "adapted": None,
        "gain": None,
    }
    if "base" in outcome.evaluation:
        record["base"] = {
            "val": outcome.evaluation["base"]["val"].as_dict(),
            "test": outcome.evaluation["base"]["test"].as_dict(),
            **{k: v for k, v in (outcome.base_summary or {}).items() if k != "best_val"},
            "base_val": (outcome.base_summary or {}).get("best_val"),
        }
    if outcome.target_phase is not None:
        record["adapted"] = {
            "val": outcome.evaluation["adapted"]["val"].as_dict(),
            "test": outcome.evaluation["adapted"]["test"].as_dict(),
            **{k: v for k, v in phase_summary(outcome.target_phase).items() if k != "best_val"},
        }
    if record["base"] and record["adapted"]:
        base_test, adapted_test = record["base"]["test"], record["adapted"]["test"]
        record["gain"] = {
            key: adapted_test[key] - base_test[key] for key in ("accuracy", "macro_f1", "loss")
        }
    return record


# --- command line ---------------------------------------------------------------

SPEC_KEYS = {"experiment", "job_dir", "inputs", "stand_in"}
THREADS_ENV = "OCT_NUM_THREADS"  # set by backends that share a CPU between jobs


def run_stand_in(stand_in: dict[str, Any], job_dir: Path) -> int:
    """A job that trains nothing: sleeps, writes outputs, exits with a chosen status.

    Spec key ``"stand_in": {"sleep": S, "exit_code": N, "metrics": {...}}``. Backends'
    contract tests and the executor benchmarks use it to measure and fault-test
    the machinery without paying for training.
    """
    job_dir.mkdir(parents=True, exist_ok=True)
    sleep = float(stand_in.get("sleep", 0))
    exit_code = int(stand_in.get("exit_code", 0))
    log.info("stand-in job: sleep %.3fs, exit %d", sleep, exit_code)
    time.sleep(sleep)
    if exit_code != 0:
        fsio.write_json(job_dir / outputs.RESULT, {"state": "failed", "reason": "stand-in failure"})
        print(f"octcore.job: failed: stand-in job exits {exit_code}", file=sys.stderr)
        return exit_code
    fsio.write_json(job_dir / outputs.METRICS, stand_in.get("metrics", {}))
    fsio.write_json(job_dir / outputs.RESULT, {"state": "done", "octcore": octcore.__version__})
    return 0


def load_spec(path: Path, plugins: Any) -> tuple[Experiment, Path, dict[str, Path]]:
    try:
        spec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise JobError(f"{path}: cannot read the job spec: {exc}") from exc
    if not isinstance(spec, dict) or "experiment" not in spec:
        raise JobError(f"{path}: expected a JSON object with an 'experiment' table")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise JobError(
            f"{path}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(SPEC_KEYS))})"
        )
    experiment = experiment_from_dict(spec["experiment"], plugins, source=f"{path}: experiment")
    job_dir = Path(spec.get("job_dir") or path.parent)
    inputs = {str(k): Path(v) for k, v in (spec.get("inputs") or {}).items()}
    return experiment, job_dir, inputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m octcore.job", description=__doc__.split("\n")[0]
    )
    parser.add_argument("spec", type=Path, help="job spec (JSON)")
    parser.add_argument("--log-file", type=Path, help="also write the log here")
    args = parser.parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        handlers.append(logging.FileHandler(args.log_file))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", handlers=handlers)
    from octcore.plugins import default_plugins

    started = time.perf_counter()
    job_dir: Path | None = None
    try:
        raw = json.loads(args.spec.read_text())
        if isinstance(raw, dict) and "stand_in" in raw:
            return run_stand_in(raw["stand_in"], Path(raw.get("job_dir") or args.spec.parent))
        threads = os.environ.get(THREADS_ENV)
        if threads and threads.isdigit():
            import torch

            torch.set_num_threads(int(threads))
        plugins = default_plugins()
        experiment, spec_dir, inputs = load_spec(args.spec, plugins)
        job_dir = spec_dir
        if outputs.is_complete(job_dir):
            log.info("%s is already complete", job_dir)
            return 0
        run_job(experiment, job_dir, plugins, inputs=inputs)
    except (ConfigError, json.JSONDecodeError, OSError) as exc:
        reason = str(exc).replace(chr(10), " ")
        print(f"octcore.job: bad spec: {reason}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not isinstance(exc, OctError):
            traceback.print_exc()
        reason = str(exc) if isinstance(exc, OctError) else f"{type(exc).__name__}: {exc}"
        if job_dir is not None:
            fsio.write_json(job_dir / outputs.RESULT, {"state": "failed", "reason": reason})
        print(f"octcore.job: failed: {reason}", file=sys.stderr)
        return 1
    log.info("done in %.1fs", time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
