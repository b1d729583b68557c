"""Loss, accuracy and macro-F1 from confusion matrices accumulated on the device."""

from __future__ import annotations

import attrs
import torch


@attrs.frozen
class Scores:
    loss: float
    accuracy: float
    macro_f1: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "n": self.n,
        }


class Tally:
    """Accumulates loss and a confusion matrix without leaving the device per batch."""

    def __init__(self, num_classes: int, device: torch.device):
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.n = 0

    def add(self, loss_sum: torch.Tensor, predicted: torch.Tensor, target: torch.Tensor) -> None:
        self.loss_sum += loss_sum.detach().to(torch.float64)
        self.confusion += torch.bincount(
            target * self.num_classes + predicted, minlength=self.num_classes**2
        )
        self.n += len(target)

    def scores(self) -> Scores:
        cm = self.confusion.view(self.num_classes, self.num_classes).cpu().double()
        return scores_from_confusion(cm, float(self.loss_sum.item()), self.n)


def scores_from_confusion(cm: torch.Tensor, loss_sum: float, n: int) -> Scores:
    """Macro-F1 over the classes present in labels or predictions (sklearn's rule)."""
    cm = cm.double()
    true_positive = cm.diagonal()
    actual = cm.sum(dim=1)
    predicted = cm.sum(dim=0)
    present = (actual + predicted) > 0
    denominator = actual + predicted
    f1 = torch.where(denominator > 0, 2 * true_positive / denominator.clamp(min=1), 0.0)
    macro_f1 = float(f1[present].mean()) if bool(present.any()) else 0.0
    accuracy = float(true_positive.sum() / max(n, 1))
    return Scores(loss=loss_sum / max(n, 1), accuracy=accuracy, macro_f1=macro_f1, n=n)
