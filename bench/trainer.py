"""Trainer throughput against the limit and against the research pipeline.

For the HAPT window (128 samples) and the research data's window (3000), on the
same model (cnn1d, C=8, 4 blocks) and the same composed batches (p = 0.25, B = 64):

(a) oct's trainer: ``octcore.train.loop.train_phase`` over a ``ComposedSampler``
    (index draws on pooled tensors, metrics accumulated on the device);
(b) a bare loop over batches built in advance: forward, backward, step — the limit;
(c) the research code's pipeline: per-sample ``DataLoader``s over ``TensorDataset``s
    and a two-loader composed batcher (``ComposedBatchDataLoader``, drop_last,
    concatenate, shuffle inside the batch).

Also batch building alone for (a) and (c). Rounds run every variant back to back
in one process; a ratio is the median over rounds of that round's ratio, so
machine noise hits both sides alike.
Writes bench/results/trainer.json.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from octcore.config import Augmentation
from octcore.models.cnn1d import Cnn1d, Cnn1dParams
from octcore.train.batches import ComposedSampler, target_count
from octcore.train.loop import Objective, PhaseData, SilentListener, StopRule, train_phase

BATCH = 64
P = 0.25
ROUNDS = 7
OUT = Path(__file__).parent / "results" / "trainer.json"


def make_data(n_base: int, n_target: int, window: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    xb = torch.randn(n_base, 6, window, generator=g)
    yb = torch.randint(0, 6, (n_base,), generator=g)
    xt = torch.randn(n_target, 6, window, generator=g)
    yt = torch.randint(0, 6, (n_target,), generator=g)
    return xb, yb, xt, yt


def new_model() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = Cnn1d(Cnn1dParams(), 6, 6)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


def trainer(data, epochs: int) -> float:
    xb, yb, xt, yt = data
    model, optimizer = new_model()
    sampler = ComposedSampler(len(yb), len(yt), BATCH, P, torch.Generator().manual_seed(0))
    phase = PhaseData(torch.cat([xb, xt]), torch.cat([yb, yt]), sampler, xt[:64], yt[:64])
    started = time.perf_counter()
    stop = StopRule("loss", 10**6, epochs)
    train_phase("target", model, phase, optimizer, Objective(6, 1.0), stop, Augmentation(),
                SilentListener())  # fmt: skip
    windows = epochs * sampler.batches_per_epoch() * BATCH
    return windows / (time.perf_counter() - started)


def bare_loop(data, epochs: int) -> float:
    xb, yb, xt, yt = data
    model, optimizer = new_model()
    sampler = ComposedSampler(len(yb), len(yt), BATCH, P, torch.Generator().manual_seed(0))
    x, y = torch.cat([xb, xt]), torch.cat([yb, yt])
    batches = [(x[i], y[i]) for _ in range(epochs) for i in sampler.epoch()]  # built in advance
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    started = time.perf_counter()
    for xb_, yb_ in batches:
        loss = loss_fn(model(xb_), yb_)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(batches) * BATCH / (time.perf_counter() - started)


class ComposedBatchDataLoader:
    """The research code's composed batcher (oct1_train.py), re-created for comparison."""

    def __init__(self, base: TensorDataset, target: TensorDataset, batch_size: int, pct: float):
        k = int(batch_size * pct)
        self.base = DataLoader(base, batch_size=batch_size - k, shuffle=True, drop_last=True)
        self.target = DataLoader(target, batch_size=k, shuffle=True, drop_last=True)

    def __len__(self) -> int:
        return min(len(self.base), len(self.target))

    def __iter__(self):
        for (xb, yb), (xt, yt) in zip(self.base, self.target, strict=False):
            x, y = torch.cat([xb, xt]), torch.cat([yb, yt])
            order = torch.randperm(len(y))
            yield x[order], y[order]


def research(data, epochs: int) -> float:
    xb, yb, xt, yt = data
    model, optimizer = new_model()
    loader = ComposedBatchDataLoader(TensorDataset(xb, yb), TensorDataset(xt, yt), BATCH, P)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    started = time.perf_counter()
    windows = 0
    for _ in range(epochs):
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            windows += len(y)
    return windows / (time.perf_counter() - started)


def build_trainer(data, epochs: int) -> float:
    xb, yb, xt, yt = data
    x, y = torch.cat([xb, xt]), torch.cat([yb, yt])
    sampler = ComposedSampler(len(yb), len(yt), BATCH, P, torch.Generator().manual_seed(0))
    started = time.perf_counter()
    windows = 0
    for _ in range(epochs):
        for index in sampler.epoch():
            _batch_x, batch_y = x[index], y[index]
            windows += len(batch_y)
    return windows / (time.perf_counter() - started)


def build_research(data, epochs: int) -> float:
    xb, yb, xt, yt = data
    loader = ComposedBatchDataLoader(TensorDataset(xb, yb), TensorDataset(xt, yt), BATCH, P)
    started = time.perf_counter()
    windows = 0
    for _ in range(epochs):
        for _x, y in loader:
            windows += len(y)
    return windows / (time.perf_counter() - started)


def measure(window: int, n_base: int, n_target: int, epochs: int) -> dict:
    data = make_data(n_base, n_target, window)
    variants = {
        "trainer": trainer, "bare_loop": bare_loop, "research": research,
        "build_trainer": build_trainer, "build_research": build_research,
    }  # fmt: skip
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, run in variants.items():
            samples[name].append(run(data, epochs))
    median = {name: statistics.median(values) for name, values in samples.items()}

    def ratio(a: str, b: str) -> float:
        # the median of per-round ratios: each round runs both variants back to back
        return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))

    return {
        "window": window,
        "windows": {"base": n_base, "target": n_target},
        "batch": BATCH,
        "target_batch_pct": P,
        "target_per_batch": target_count(BATCH, P),
        "epochs_per_round": epochs,
        "rounds": ROUNDS,
        "windows_per_second": {k: round(v, 1) for k, v in median.items()},
        "ratios": {
            "trainer_vs_bare_loop": round(median["trainer"] / median["bare_loop"], 3),
            "trainer_vs_research": round(median["trainer"] / median["research"], 3),
            "batch_building_vs_research": round(
                median["build_trainer"] / median["build_research"], 2
            ),
        },
    }


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "processor": platform.machine()},
        "targets": {"trainer_vs_bare_loop": ">= 0.95", "batch_building_vs_research": ">= 3"},
        "hapt_window_128": measure(128, n_base=4096, n_target=1024, epochs=1),
        "research_window_3000": measure(3000, n_base=1024, n_target=512, epochs=1),
    }  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    for name in ("hapt_window_128", "research_window_3000"):
        r = results[name]
        print(f"{name}: windows/s {r['windows_per_second']}")
        print(f"  ratios {r['ratios']}")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
