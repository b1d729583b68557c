"""The files of one job directory, and when a job directory counts as complete.

```
config.json        resolved experiment, fold roles, data fingerprint, versions
history.csv        one row per epoch of every phase
metrics.json       base and adapted model on the target's val/test, the gain
base/              base_model.pt, base.json, history.csv (what a base store keeps)
adapted_model.pt   best adapted weights (state dict; load with weights_only=True)
curves.png         loss and macro-F1 per epoch, the phase switch marked
job.log            the log
result.json        written last: the job's final state (the completeness marker)
```
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

CONFIG = "config.json"
HISTORY = "history.csv"
METRICS = "metrics.json"
BASE_DIR = "base"
ADAPTED_WEIGHTS = "adapted_model.pt"
CURVES = "curves.png"
LOG = "job.log"
RESULT = "result.json"
SPEC = "spec.json"

HISTORY_COLUMNS = (
    "phase", "epoch", "train_loss", "train_accuracy", "train_macro_f1",
    "val_loss", "val_accuracy", "val_macro_f1", "seconds", "improved",
)  # fmt: skip


def read_result(job_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((job_dir / RESULT).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_complete(job_dir: Path) -> bool:
    result = read_result(job_dir)
    return bool(result and result.get("state") == "done" and (job_dir / METRICS).exists())


def history_csv(records: list[Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for r in records:
        writer.writerow(
            [
                r.phase, r.epoch, f"{r.train.loss:.6g}", f"{r.train.accuracy:.6g}",
                f"{r.train.macro_f1:.6g}", f"{r.val.loss:.6g}", f"{r.val.accuracy:.6g}",
                f"{r.val.macro_f1:.6g}", f"{r.seconds:.4f}", int(r.improved),
            ]
        )  # fmt: skip
    return buffer.getvalue()


def read_history(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))
