"""One experiment, mode by mode: which data each phase trains and stops on.

| mode                      | starts from | trains on                         | stops on    |
|---------------------------|-------------|-----------------------------------|-------------|
| base phase (all but target_only) | scratch | base train ∪ base val          | base test   |
| full_fine_tuning          | best base   | base windows + target train       | target val  |
| target_only_fine_tuning   | best base   | target train                      | target val  |
| last_layer_only           | best base, encoder frozen | target train        | target val  |
| target_only               | scratch     | target train                      | target val  |
| base_only                 | (base phase only)                                | base test   |

"base windows" are the base participants' train and val splits; the base phase
validates on their test splits (the research code's rule). The target's test
split is only ever used for the final evaluation of the best base model and the
best adapted model. Channels are normalised with statistics of the base training
windows; the statistics live in the saved weights.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from octcore.config import MODES_WITH_BASE, MODES_WITH_TARGET, Experiment, Fold, resolve_fold
from octcore.data.base import Dataset, Windows
from octcore.train.batches import ComposedSampler, UniformSampler
from octcore.train.loop import (
    Listener,
    Objective,
    PhaseData,
    PhaseResult,
    SilentListener,
    StopRule,
    evaluate,
    train_phase,
)
from octcore.train.metrics import Scores

BASE_WEIGHTS = "base_model.pt"
BASE_SUMMARY = "base.json"


class Normalized(nn.Module):
    """Wraps a model with fixed per-channel standardisation (saved with the weights)."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.view(1, -1, 1).clone())
        self.register_buffer("std", std.view(1, -1, 1).clone())

    @property
    def head(self) -> nn.Module:
        return self.model.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


@attrs.frozen(eq=False)
class FoldData:
    fold: Fold
    base_train: Windows
    base_val: Windows
    target_train: Windows
    target_val: Windows
    target_test: Windows


def target_subset(n: int, fraction: float, seed: int) -> torch.Tensor:
    """Indices of the kept target training windows: seeded by ``seed`` only, so every
    mode and fine-tuning seed of one fold and seed sees the same subset."""
    keep = max(1, round(n * fraction))
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:keep].sort().values


def split_fold(experiment: Experiment, dataset: Dataset) -> FoldData:
    fold = resolve_fold(experiment, dataset.participants)
    target_train = dataset.windows(fold.target, "train")
    kept = target_subset(len(target_train), experiment.target_data_pct, experiment.seed)
    return FoldData(
        fold=fold,
        base_train=dataset.gather(fold.base, ("train", "val")),
        base_val=dataset.gather(fold.base, ("test",)),
        target_train=target_train.subset(kept),
        target_val=dataset.windows(fold.target, "val"),
        target_test=dataset.windows(fold.target, "test"),
    )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.isdigit():
        return torch.device(f"cuda:{name}")
    return torch.device(name)


@attrs.frozen(eq=False)
class Outcome:
    """What one experiment produced; ``octcore.job`` writes it to disk."""

    fold: Fold
    sizes: dict[str, int]
    base_phase: PhaseResult | None
    base_summary: dict[str, Any] | None  # from the phase, or from a reused base
    target_phase: PhaseResult | None
    base_state: dict[str, torch.Tensor] | None
    adapted_state: dict[str, torch.Tensor] | None
    evaluation: dict[str, dict[str, Scores]]
    num_parameters: int
    seconds: float


def build_model(
    experiment: Experiment, dataset: Dataset, fold_data: FoldData, plugins: Any
) -> nn.Module:
    spec = plugins.models.get(experiment.model.name)
    objective_outputs = 1 if dataset.num_classes == 2 else dataset.num_classes
    inner = spec.build(
        experiment.model.options, dataset.channels, dataset.window, objective_outputs
    )
    x = fold_data.base_train.X
    if experiment.normalize:
        mean = x.mean(dim=(0, 2))
        std = x.std(dim=(0, 2)).clamp(min=1e-6)
    else:
        mean, std = torch.zeros(x.shape[1]), torch.ones(x.shape[1])
    return Normalized(inner, mean, std)


def run_experiment(
    experiment: Experiment,
    dataset: Dataset,
    plugins: Any,
    *,
    listener: Listener | None = None,
    reuse_base: Path | None = None,
) -> Outcome:
    """Train and evaluate one experiment. ``reuse_base``: a directory with a base to adapt."""
    started = time.perf_counter()
    listener = listener or SilentListener()
    device = resolve_device(experiment.device)
    torch.backends.cudnn.benchmark = False
    data = split_fold(experiment, dataset)
    objective = Objective(dataset.num_classes, experiment.pos_weight)
    to_device = _DeviceCache(device)

    base_phase: PhaseResult | None = None
    base_summary: dict[str, Any] | None = None
    base_state: dict[str, torch.Tensor] | None = None
    target_phase: PhaseResult | None = None
    adapted_state: dict[str, torch.Tensor] | None = None

    torch.manual_seed(experiment.seed)
    model = build_model(experiment, dataset, data, plugins).to(device)
    num_parameters = sum(p.numel() for p in model.parameters())

    if experiment.mode in MODES_WITH_BASE:
        if reuse_base is not None:
            base_state = torch.load(
                reuse_base / BASE_WEIGHTS, map_location=device, weights_only=True
            )
            base_summary = json.loads((reuse_base / BASE_SUMMARY).read_text())
            base_summary["reused_from"] = str(reuse_base)
        else:
            generator = torch.Generator().manual_seed(experiment.seed)
            phase_data = PhaseData(
                *to_device(data.base_train),
                UniformSampler(len(data.base_train), experiment.batch_size, generator),
                *to_device(data.base_val),
            )
            optimizer = _optimizer(model.parameters(), experiment)
            stop = StopRule(
                experiment.early_stopping_metric,
                experiment.early_stopping_patience,
                experiment.max_epochs,
            )
            base_phase = train_phase(
                "base",
                model,
                phase_data,
                optimizer,
                objective,
                stop,
                experiment.augmentation,
                listener,
            )
            base_state = base_phase.best_state
            base_summary = phase_summary(base_phase)
        model.load_state_dict(base_state)

    if experiment.mode in MODES_WITH_TARGET:
        torch.manual_seed(experiment.finetune_seed)
        generator = torch.Generator().manual_seed(experiment.finetune_seed)
        if experiment.mode == "target_only":
            model = build_model(experiment, dataset, data, plugins).to(device)
        trainable = _trainable_parameters(model, experiment.mode)
        x, y, sampler = _target_training_pool(experiment, data, generator, to_device)
        phase_data = PhaseData(x, y, sampler, *to_device(data.target_val))
        stop = StopRule(
            experiment.early_stopping_metric,
            experiment.early_stopping_patience_target,
            experiment.max_epochs,
        )
        target_phase = train_phase(
            "target",
            model,
            phase_data,
            _optimizer(trainable, experiment),
            objective,
            stop,
            experiment.augmentation,
            listener,
        )
        adapted_state = target_phase.best_state

    evaluation = _evaluate_on_target(model, base_state, adapted_state, data, objective, to_device)
    sizes = {
        "base_train": len(data.base_train),
        "base_val": len(data.base_val),
        "target_train": len(data.target_train),
        "target_val": len(data.target_val),
        "target_test": len(data.target_test),
    }
    return Outcome(
        fold=data.fold,
        sizes=sizes,
        base_phase=base_phase,
        base_summary=base_summary,
        target_phase=target_phase,
        base_state=base_state,
        adapted_state=adapted_state,
        evaluation=evaluation,
        num_parameters=num_parameters,
        seconds=time.perf_counter() - started,
    )


def phase_summary(result: PhaseResult) -> dict[str, Any]:
    return {
        "best_epoch": result.best_epoch,
        "epochs": result.epochs,
        "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 3),
        "best_val": result.best_val.as_dict(),
    }


class _DeviceCache:
    """Moves each ``Windows`` to the device once per experiment."""

    def __init__(self, device: torch.device):
        self.device = device
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, windows: Windows) -> tuple[torch.Tensor, torch.Tensor]:
        key = id(windows)
        if key not in self._cache:
            self._cache[key] = (windows.X.to(self.device), windows.y.to(self.device))
        return self._cache[key]


def _optimizer(parameters: Any, experiment: Experiment) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameters, lr=experiment.lr, weight_decay=experiment.weight_decay)


def _trainable_parameters(model: Normalized, mode: str) -> list[nn.Parameter]:
    if mode != "last_layer_only":
        for p in model.parameters():
            p.requires_grad_(True)
        return list(model.parameters())
    head = {id(p) for p in model.head.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in head)
    return [p for p in model.parameters() if id(p) in head]


def _target_training_pool(
    experiment: Experiment, data: FoldData, generator: torch.Generator, to_device: _DeviceCache
) -> tuple[torch.Tensor, torch.Tensor, object]:
    target_x, target_y = to_device(data.target_train)
    if experiment.mode != "full_fine_tuning":
        return target_x, target_y, UniformSampler(len(target_y), experiment.batch_size, generator)
    base_x, base_y = to_device(data.base_train)
    x, y = torch.cat([base_x, target_x]), torch.cat([base_y, target_y])
    if experiment.target_batch_pct is None:
        sampler: object = UniformSampler(len(y), experiment.batch_size, generator)
    else:
        sampler = ComposedSampler(
            len(base_y),
            len(target_y),
            experiment.batch_size,
            experiment.target_batch_pct,
            generator,
        )
    return x, y, sampler


def _evaluate_on_target(
    model: nn.Module,
    base_state: dict[str, torch.Tensor] | None,
    adapted_state: dict[str, torch.Tensor] | None,
    data: FoldData,
    objective: Objective,
    to_device: _DeviceCache,
) -> dict[str, dict[str, Scores]]:
    """Best base and best adapted model on the target's val and test splits."""
    loss_fn = objective.loss_fn(next(model.parameters()).device)
    scorer = copy.deepcopy(model)
    out: dict[str, dict[str, Scores]] = {}
    for name, state in (("base", base_state), ("adapted", adapted_state)):
        if state is None:
            continue
        scorer.load_state_dict(state)
        out[name] = {
            split: evaluate(scorer, *to_device(windows), objective, loss_fn)
            for split, windows in (("val", data.target_val), ("test", data.target_test))
        }
    return out
