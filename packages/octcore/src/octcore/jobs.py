"""Job identity: one function turns a resolved experiment into a stable id.

The id is a sha256 over a canonical encoding of the experiment after
normalisation: fields that never change results are dropped (``device``,
``prefix``), equivalent spellings are made one (``n_base_participants`` equal to
every remaining participant is ``"all"``; an unset ``seed_finetune`` is
``seed``; an explicit participant list equal to the data set's is unset;
``target_batch_pct`` is dropped by modes that never compose batches). Result
directories are keyed by it, so a re-run skips complete jobs, a grown grid runs
only its new points, and two grids that share a point share its result.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import attrs

from octcore.config import Experiment, unstructure_experiment

ID_LENGTH = 16
# Bump when the meaning of a job's fields changes, so old results are not reused.
JOB_FORMAT = 1
IRRELEVANT = ("device", "prefix")


def normalize(experiment: Experiment, dataset_participants: tuple[str, ...]) -> Experiment:
    """The canonical experiment: equal results ⇔ equal normalised experiments."""
    changes: dict[str, Any] = {"device": "auto", "prefix": None}
    participants = experiment.participants
    if participants is not None and tuple(participants) == tuple(dataset_participants):
        changes["participants"] = participants = None
    count = len(participants or dataset_participants)
    if experiment.n_base_participants == count - 1:
        changes["n_base_participants"] = "all"
    if experiment.seed_finetune is None:
        changes["seed_finetune"] = experiment.seed
    if experiment.mode != "full_fine_tuning":
        changes["target_batch_pct"] = None
    if experiment.mode == "base_only":
        changes.update(
            target_data_pct=1.0,
            target_batch_pct=None,
            early_stopping_patience_target=1,
            seed_finetune=experiment.seed,
        )
    if experiment.mode == "target_only":
        changes["early_stopping_patience"] = 1
    if not experiment.augmentation.enabled:
        changes["augmentation"] = type(experiment.augmentation)()
    return attrs.evolve(experiment, **changes)


def canonical_json(data: Any) -> str:
    """JSON with sorted keys, no whitespace, and floats in one spelling (1e-3 == 0.001)."""
    return json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"))


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        # float.hex is exact and has one spelling per value: 1e-3 and 0.001 agree
        return {"float": value.hex()} if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def job_id(experiment: Experiment, dataset_participants: tuple[str, ...]) -> str:
    """The stable id of an experiment's job (16 hex digits of a sha256)."""
    data = unstructure_experiment(normalize(experiment, dataset_participants))
    for key in IRRELEVANT:
        data.pop(key, None)
    payload = canonical_json({"format": JOB_FORMAT, "experiment": data})
    return hashlib.sha256(payload.encode()).hexdigest()[:ID_LENGTH]
