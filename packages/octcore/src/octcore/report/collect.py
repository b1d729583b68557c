"""Rows of a run: one per planned experiment job, read from ``plan.json`` and job dirs.

The report needs nothing but the run directory: ``plan.json`` says which jobs
the study planned (and with which parameters), each ``jobs/<id>/`` says how far
its job got. A journal, when present, only adds detail (a timeout, a job still
running) for jobs whose directory has no final result.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from octcore import outputs
from octcore.errors import OctError

PLAN = "plan.json"
JOURNAL = "journal.sqlite"
JOBS_DIR = "jobs"

# Parameters that never change a result; they do not tell configurations apart.
NOT_CONFIGURATION = ("fold", "device", "prefix")
SEED_KEYS = ("seed", "seed_finetune")

# (column, path into metrics.json)
METRIC_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    *(
        (f"{model}_{split}_{name}", (model, split, name))
        for model in ("base", "adapted")
        for split in ("test", "val")
        for name in ("accuracy", "macro_f1", "loss")
    ),
    *((f"gain_{name}", ("gain", name)) for name in ("accuracy", "macro_f1", "loss")),
    ("base_best_epoch", ("base", "best_epoch")),
    ("base_epochs", ("base", "epochs")),
    ("adapted_best_epoch", ("adapted", "best_epoch")),
    ("adapted_epochs", ("adapted", "epochs")),
    ("seconds", ("seconds",)),
)
METRICS: tuple[str, ...] = tuple(column for column, _ in METRIC_COLUMNS)

DONE = "done"
FAILED = "failed"
UNFINISHED = "unfinished"  # a job directory without a final result
NOT_STARTED = "not started"


@attrs.frozen
class JobRow:
    """One planned experiment job and what it produced (metrics absent are None)."""

    id: str
    state: str
    target: str
    fold: int
    label: str
    params: Mapping[str, Any]  # flattened, dotted experiment parameters
    metrics: Mapping[str, float | None]
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.state == DONE

    def configuration(self) -> tuple[tuple[str, Any], ...]:
        """Every parameter but the fold (and fields that never change results)."""
        return configuration_key(self.params)


@attrs.frozen
class RunData:
    name: str
    path: Path
    rows: tuple[JobRow, ...]
    other_jobs: Mapping[str, int]  # kind -> count of planned jobs that are not experiments
    source: str = ""


def configuration_key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The configuration of a job's parameters, in a canonical spelling.

    An unset ``seed_finetune`` is ``seed``, and ``target_batch_pct`` only counts
    for ``full_fine_tuning`` (the only mode that composes batches), as in job ids.
    """
    key = {k: v for k, v in params.items() if k not in NOT_CONFIGURATION}
    if key.get("seed_finetune") in (None, ""):
        key["seed_finetune"] = key.get("seed")
    if key.get("mode") != "full_fine_tuning" and "target_batch_pct" in key:
        key["target_batch_pct"] = None
    return tuple(key.items())


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameters as dotted keys; lists become comma-joined text."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = ",".join(str(item) for item in value)
        else:
            out[name] = value
    return out


def resolve_run_dir(run: str, root: Path) -> Path:
    """A run given as a directory path, or as a run name under ``root``."""
    candidate = Path(run)
    if not (candidate / PLAN).is_file() and (root / run / PLAN).is_file():
        candidate = root / run
    if not candidate.is_dir():
        raise OctError(f"no run directory {run!r}: neither a directory nor a run under {root}/")
    if not (candidate / PLAN).is_file():
        raise OctError(
            f"{candidate} has no {PLAN}: not a grid run directory (runs started by "
            "`invoke grid` write one when they start)"
        )
    return candidate


def load_run(run_dir: Path) -> RunData:
    """Read the plan and every planned experiment job's outputs."""
    plan_path = run_dir / PLAN
    try:
        plan = json.loads(plan_path.read_text())
    except FileNotFoundError:
        raise OctError(f"{run_dir} has no {PLAN}: not a grid run directory") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise OctError(f"{plan_path}: cannot read the plan: {exc}") from None
    jobs = plan.get("jobs") if isinstance(plan, dict) else None
    if not isinstance(jobs, list):
        raise OctError(f"{plan_path}: expected an object with a 'jobs' list")
    journal = read_journal_states(run_dir / JOURNAL)
    rows: list[JobRow] = []
    others: dict[str, int] = {}
    for index, job in enumerate(jobs):
        if not isinstance(job, dict) or "id" not in job or "experiment" not in job:
            raise OctError(f"{plan_path}: jobs[{index}] needs an 'id' and an 'experiment'")
        kind = job.get("kind", "experiment")
        if kind != "experiment":
            others[kind] = others.get(kind, 0) + 1
            continue
        rows.append(read_row(run_dir / JOBS_DIR / str(job["id"]), job, journal.get(str(job["id"]))))
    return RunData(
        name=str(plan.get("run") or run_dir.name),
        path=run_dir,
        rows=tuple(rows),
        other_jobs=others,
        source=str(plan.get("source") or ""),
    )


def read_row(job_dir: Path, job: Mapping[str, Any], journal_state: str | None) -> JobRow:
    experiment = job["experiment"]
    params = flatten(experiment)
    result = outputs.read_result(job_dir)
    metrics_data = _read_json(job_dir / outputs.METRICS) if result else None
    reason = ""
    if outputs.is_complete(job_dir):
        state = DONE
    elif result and result.get("state") == FAILED:
        state, reason = FAILED, str(result.get("reason", ""))
    elif journal_state and journal_state != DONE:  # "done" without result files: unfinished
        state = journal_state
    else:
        state = UNFINISHED if job_dir.is_dir() else NOT_STARTED
    target = job.get("target") or (metrics_data or {}).get("target") or ""
    return JobRow(
        id=str(job["id"]),
        state=state,
        target=str(target),
        fold=int(experiment.get("fold", 0)),
        label=str(job.get("label", "")),
        params=params,
        metrics=metric_values(metrics_data if state == DONE else None),
        reason=reason,
    )


def metric_values(metrics: Mapping[str, Any] | None) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for column, path in METRIC_COLUMNS:
        value: Any = metrics
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        out[column] = float(value) if isinstance(value, int | float) else None
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_journal_states(path: Path) -> dict[str, str]:
    """Job states from the coordinator's journal, if one exists and can be read.

    The journal is optional for the report (job directories are the truth), so any
    table with an id column and a state column will do, and any error means "none".
    """
    if not path.is_file():
        return {}
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return {}
    try:
        return _journal_states(connection)
    except sqlite3.Error:
        return {}
    finally:
        connection.close()


def _journal_states(connection: sqlite3.Connection) -> dict[str, str]:
    listing = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
    tables = [row[0] for row in listing]
    for table in sorted(tables, key=lambda name: name != "jobs"):
        columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{_quoted(table)}")')]
        id_column = _first(columns, ("id", "job_id", "job"))
        if id_column is None or "state" not in columns:
            continue
        query = f'SELECT "{_quoted(id_column)}", state FROM "{_quoted(table)}"'  # noqa: S608 - names from the schema
        return {str(job): str(state) for job, state in connection.execute(query) if state}
    return {}


def _quoted(name: str) -> str:
    return name.replace('"', '""')


def _first(columns: Iterable[str], names: Iterable[str]) -> str | None:
    return next((name for name in names if name in columns), None)


def results_csv(rows: Iterable[JobRow]) -> str:
    """One line per job: id, state, target, every parameter, every metric (blank if absent)."""
    rows = list(rows)
    params = list(dict.fromkeys(name for row in rows for name in row.params))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["job_id", "state", "target", *params, *METRICS, "reason"])
    for row in rows:
        writer.writerow(
            [row.id, row.state, row.target]
            + [_cell(row.params.get(name)) for name in params]
            + [_cell(row.metrics.get(name)) for name in METRICS]
            + [row.reason]
        )
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)
