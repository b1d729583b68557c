"""One training phase: epochs of composed batches, validation, early stopping.

Reads top to bottom: for each epoch, train over the sampler's batches (one
gather per batch), score the validation windows, keep the best weights by the
stopping metric, stop after ``patience`` epochs without strict improvement or at
``max_epochs``. Listeners hear a named lifecycle (``phase_started``,
``epoch_finished``, ``phase_finished``) rather than string callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import attrs
import torch
from torch import nn

from octcore.config import Augmentation
from octcore.train.augment import augment
from octcore.train.metrics import Scores, Tally

EVAL_CHUNK = 4096


@attrs.frozen
class EpochRecord:
    phase: str
    epoch: int
    train: Scores
    val: Scores
    seconds: float
    improved: bool


@attrs.frozen
class PhaseResult:
    phase: str
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val: Scores
    epochs: int
    history: tuple[EpochRecord, ...]
    stopped_early: bool
    seconds: float


class Listener(Protocol):
    def phase_started(self, phase: str, max_epochs: int, batches_per_epoch: int) -> None: ...
    def epoch_finished(self, record: EpochRecord) -> None: ...
    def phase_finished(self, result: PhaseResult) -> None: ...


class SilentListener:
    def phase_started(self, phase: str, max_epochs: int, batches_per_epoch: int) -> None:
        pass

    def epoch_finished(self, record: EpochRecord) -> None:
        pass

    def phase_finished(self, result: PhaseResult) -> None:
        pass


@attrs.frozen
class Objective:
    """How logits become a loss and class predictions (binary: one logit + BCE)."""

    num_classes: int
    pos_weight: float

    @property
    def num_outputs(self) -> int:
        return 1 if self.num_classes == 2 else self.num_classes

    def loss_fn(self, device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Returns a function of (logits, labels) giving the *summed* loss."""
        if self.num_classes == 2:
            weight = torch.tensor([self.pos_weight], device=device)
            bce = nn.BCEWithLogitsLoss(pos_weight=weight, reduction="sum")
            return lambda logits, y: bce(logits.squeeze(1), y.to(logits.dtype))
        ce = nn.CrossEntropyLoss(reduction="sum")
        return ce

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        if self.num_classes == 2:
            return (logits.squeeze(1) > 0).to(torch.int64)
        return logits.argmax(dim=1)


@attrs.frozen
class PhaseData:
    """Pooled training windows (on the device), a sampler over them, validation windows."""

    x: torch.Tensor
    y: torch.Tensor
    sampler: object  # UniformSampler | ComposedSampler
    val_x: torch.Tensor
    val_y: torch.Tensor


@attrs.frozen
class StopRule:
    metric: str  # "loss" (lower is better) or "f1" (higher is better)
    patience: int
    max_epochs: int

    def better(self, candidate: Scores, best: Scores | None) -> bool:
        if best is None:
            return True
        if self.metric == "loss":
            return candidate.loss < best.loss
        return candidate.macro_f1 > best.macro_f1


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, objective: Objective, loss_fn: Callable
) -> Scores:
    was_training = model.training
    model.eval()
    tally = Tally(objective.num_classes, x.device)
    with torch.no_grad():
        for start in range(0, len(y), EVAL_CHUNK):
            xb, yb = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            logits = model(xb)
            tally.add(loss_fn(logits, yb), objective.predict(logits), yb)
    model.train(was_training)
    return tally.scores()


def train_phase(
    phase: str,
    model: nn.Module,
    data: PhaseData,
    optimizer: torch.optim.Optimizer,
    objective: Objective,
    stop: StopRule,
    augmentation: Augmentation,
    listener: Listener,
) -> PhaseResult:
    device = data.x.device
    loss_fn = objective.loss_fn(device)
    history: list[EpochRecord] = []
    best: Scores | None = None
    best_state: dict[str, torch.Tensor] = {}
    best_epoch = 0
    stale = 0
    started = time.perf_counter()
    listener.phase_started(phase, stop.max_epochs, data.sampler.batches_per_epoch())
    for epoch in range(1, stop.max_epochs + 1):
        epoch_started = time.perf_counter()
        model.train()
        tally = Tally(objective.num_classes, device)
        for index in data.sampler.epoch():
            index = index.to(device, non_blocking=True)
            xb = augment(data.x[index], augmentation)
            yb = data.y[index]
            logits = model(xb)
            loss_sum = loss_fn(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            (loss_sum / len(yb)).backward()
            optimizer.step()
            tally.add(loss_sum, objective.predict(logits.detach()), yb)
        train_scores = tally.scores()
        val_scores = evaluate(model, data.val_x, data.val_y, objective, loss_fn)
        improved = stop.better(val_scores, best)
        if improved:
            best, best_epoch, stale = val_scores, epoch, 0
            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        else:
            stale += 1
        record = EpochRecord(
            phase, epoch, train_scores, val_scores, time.perf_counter() - epoch_started, improved
        )
        history.append(record)
        listener.epoch_finished(record)
        if stale >= stop.patience:
            break
    assert best is not None
    result = PhaseResult(
        phase=phase,
        best_state=best_state,
        best_epoch=best_epoch,
        best_val=best,
        epochs=len(history),
        history=tuple(history),
        stopped_early=stale >= stop.patience,
        seconds=time.perf_counter() - started,
    )
    listener.phase_finished(result)
    return result
