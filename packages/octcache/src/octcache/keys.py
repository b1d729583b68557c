"""The one key of a base model: ``BaseSpec`` and ``base_key``.

A base model is a pure function of the fields of ``BaseSpec`` and nothing else.
The planner, the job process, the coordinator's hooks and the CLI all build the
spec with ``base_spec`` and hash it with ``base_key``; no other code computes a
key. The fields are exactly what ``octcore.train.runner.run_experiment`` reads in
its base phase:

* the data: the family name, its options less location fields (``path``), and the
  content fingerprint (which already covers the loader settings and every tensor),
  so one data set copied elsewhere keeps its keys;
* the base participants after truncation (``resolve_fold(...).base``), in
  training order; the target and fold do not enter: two folds that train on the
  same participants share one base;
* model name and parameters; optimiser (``lr``, ``weight_decay``, ``batch_size``);
  augmentation (only when enabled: a disabled one has no effect); stopping rule
  (``early_stopping_metric``, ``early_stopping_patience``, ``max_epochs``); the base
  seed; ``normalize``;
* ``pos_weight`` only for binary data sets: the loss of both phases uses it there,
  while multi-class losses ignore it.

Fields that never touch the base phase (mode, target_data_pct, target_batch_pct,
seed_finetune, early_stopping_patience_target, device, prefix) are absent, so
changing them keeps the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import attrs

from octcore.config import Experiment, resolve_fold
from octcore.converter import converter
from octcore.jobs import canonical_json

# Bump when the meaning of a field or the base phase itself changes, so that old
# entries are never reused for a different computation.
BASE_FORMAT = 1
KEY_LENGTH = 64
# Option fields that say where data lives, not what it is (the fingerprint covers content).
LOCATION_FIELDS = frozenset({"path"})


@attrs.frozen
class DataIdentity:
    """What planning needs to know about a data set (load it once per process)."""

    participants: tuple[str, ...]
    fingerprint: str
    num_classes: int


@attrs.frozen
class BaseSpec:
    """Everything that determines a trained base model (see module docs)."""

    dataset: str
    dataset_options: Mapping[str, Any]
    data_fingerprint: str
    base_participants: tuple[str, ...]
    model: str
    model_params: Mapping[str, Any]
    lr: float
    weight_decay: float
    batch_size: int
    augmentation: Mapping[str, Any] | None
    early_stopping_metric: str
    early_stopping_patience: int
    max_epochs: int
    seed: int
    normalize: bool
    pos_weight: float | None
    format: int = BASE_FORMAT

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["dataset_options"] = dict(self.dataset_options)
        data["model_params"] = dict(self.model_params)
        data["base_participants"] = list(self.base_participants)
        if self.augmentation is not None:
            data["augmentation"] = dict(self.augmentation)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaseSpec:
        data = dict(data)
        data["base_participants"] = tuple(data["base_participants"])
        return cls(**data)


def _plain(value: Any) -> Any:
    """Unstructured options as plain JSON types (tuples become lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def base_spec(experiment: Experiment, data: DataIdentity) -> BaseSpec:
    """The ``BaseSpec`` of an experiment's base phase, given its data set's identity.

    Raises ``ValueError`` for a mode without a base phase (``target_only``).
    """
    from octcore.config import MODES_WITH_BASE

    if experiment.mode not in MODES_WITH_BASE:
        raise ValueError(f"mode {experiment.mode!r} trains no base model")
    options = _plain(converter.unstructure(experiment.dataset.options) or {})
    options = {k: v for k, v in options.items() if k not in LOCATION_FIELDS}
    augmentation = None
    if experiment.augmentation.enabled:
        augmentation = _plain(converter.unstructure(experiment.augmentation))
    return BaseSpec(
        dataset=experiment.dataset.name,
        dataset_options=options,
        data_fingerprint=data.fingerprint,
        base_participants=tuple(resolve_fold(experiment, data.participants).base),
        model=experiment.model.name,
        model_params=_plain(converter.unstructure(experiment.model.options) or {}),
        lr=float(experiment.lr),
        weight_decay=float(experiment.weight_decay),
        batch_size=int(experiment.batch_size),
        augmentation=augmentation,
        early_stopping_metric=experiment.early_stopping_metric,
        early_stopping_patience=int(experiment.early_stopping_patience),
        max_epochs=int(experiment.max_epochs),
        seed=int(experiment.seed),
        normalize=bool(experiment.normalize),
        pos_weight=float(experiment.pos_weight) if data.num_classes == 2 else None,
    )


def base_key(spec: BaseSpec) -> str:
    """The key of a base model: sha256 (hex) of the spec's canonical encoding."""
    return hashlib.sha256(canonical_json(spec.to_dict()).encode()).hexdigest()


def data_identity(experiment: Experiment, plugins: Any) -> DataIdentity:
    """Load the experiment's data set (cached in-process by the loader) and describe it."""
    dataset = plugins.datasets.get(experiment.dataset.name).load(experiment.dataset.options)
    return DataIdentity(tuple(dataset.participants), dataset.fingerprint, int(dataset.num_classes))


class KeyIndex:
    """Keys of many experiments, each distinct key computed once.

    Experiments are grouped by the fields ``base_spec`` reads, so a grid of 100,000
    jobs over a few hundred bases builds a few hundred specs.
    """

    def __init__(self, plugins: Any):
        self.plugins = plugins
        self._data: dict[Any, DataIdentity] = {}
        self._keys: dict[tuple[Any, ...], tuple[str, BaseSpec]] = {}

    def data(self, experiment: Experiment) -> DataIdentity:
        choice = experiment.dataset
        try:
            found = self._data.get(choice)
        except TypeError:  # unhashable options: fall back to their canonical text
            choice = (choice.name, canonical_json(converter.unstructure(choice.options)))
            found = self._data.get(choice)
        if found is None:
            found = self._data[choice] = data_identity(experiment, self.plugins)
        return found

    def participants(self, experiment: Experiment) -> tuple[str, ...]:
        return self.data(experiment).participants

    def key(self, experiment: Experiment) -> tuple[str, BaseSpec]:
        """``(key, spec)`` of an experiment with a base phase."""
        e = experiment
        memo = (
            e.dataset,
            e.participants,
            e.fold,
            e.n_base_participants,
            e.model,
            e.lr,
            e.weight_decay,
            e.batch_size,
            e.augmentation if e.augmentation.enabled else None,
            e.early_stopping_metric,
            e.early_stopping_patience,
            e.max_epochs,
            e.seed,
            e.normalize,
            e.pos_weight,
        )
        try:
            hit = self._keys.get(memo)
        except TypeError:  # unhashable options: no memo
            memo, hit = None, None
        if hit is None:
            data = self.data(e)
            spec = base_spec(e, data)
            hit = (base_key(spec), spec)
            if memo is not None:
                self._keys[memo] = hit
        return hit
