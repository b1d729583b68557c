"""The phase loop's stopping rule and the metrics it reports."""

from __future__ import annotations

import torch

from octcore.config import Augmentation
from octcore.train.batches import UniformSampler
from octcore.train.loop import Objective, PhaseData, SilentListener, StopRule, train_phase
from octcore.train.metrics import Scores, scores_from_confusion


def test_stop_rule_is_strict_improvement():
    by_loss, by_f1 = StopRule("loss", 3, 10), StopRule("f1", 3, 10)
    a = Scores(loss=0.5, accuracy=0.8, macro_f1=0.7, n=10)
    same = Scores(loss=0.5, accuracy=0.8, macro_f1=0.7, n=10)
    assert by_loss.better(a, None) and by_f1.better(a, None)
    assert not by_loss.better(same, a) and not by_f1.better(same, a)
    assert by_loss.better(Scores(0.4, 0.8, 0.6, 10), a)
    assert by_f1.better(Scores(0.9, 0.8, 0.71, 10), a)


def test_macro_f1_matches_a_hand_computation():
    # rows = true class, columns = predicted
    cm = torch.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    scores = scores_from_confusion(cm, loss_sum=7.0, n=7)
    f1_0 = 2 * 3 / (4 + 4)
    f1_1 = 2 * 2 / (3 + 3)
    assert abs(scores.macro_f1 - (f1_0 + f1_1) / 2) < 1e-12  # class 2 absent: not averaged
    assert abs(scores.accuracy - 5 / 7) < 1e-12
    assert scores.loss == 1.0


def test_patience_stops_training_and_keeps_the_best_epoch():
    torch.manual_seed(0)
    x = torch.randn(64, 2, 8)
    y = torch.randint(0, 2, (64,))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    data = PhaseData(x, y, UniformSampler(64, 16, torch.Generator().manual_seed(0)), x[:8], y[:8])
    # a learning rate of zero never improves after the first epoch
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    result = train_phase(
        "base", model, data, optimizer, Objective(2, 1.0), StopRule("loss", 3, 50),
        Augmentation(), SilentListener(),
    )  # fmt: skip
    assert result.best_epoch == 1
    assert result.epochs == 4 and result.stopped_early
    bounded = train_phase(
        "base", model, data, torch.optim.SGD(model.parameters(), lr=0.1), Objective(2, 1.0),
        StopRule("loss", 100, 5), Augmentation(), SilentListener(),
    )  # fmt: skip
    assert bounded.epochs == 5 and not bounded.stopped_early
