"""Which windows each mode trains, validates and tests on, read from tagged data.

A spy model registered through the hooks records the origin (participant, split)
of every window it sees, separately for training batches and evaluation, and the
phase it was in. The tagged synthetic data set writes that origin into each window.
"""

from __future__ import annotations

import pytest
import torch

from octcore.config import experiment_from_dict
from octcore.data.synthetic import SPLIT_CODES, decode_tags
from octcore.hookspecs import hookimpl
from octcore.models import cnn1d
from octcore.plugins import make_plugin_manager
from octcore.registry import ModelSpec
from octcore.train.runner import run_experiment, target_subset

SPLIT_NAMES = {code: name for name, code in SPLIT_CODES.items()}


class Recorder:
    def __init__(self) -> None:
        self.phase = "setup"
        self.seen: dict[tuple[str, str], set[tuple[str, str, int]]] = {}

    def note(self, training: bool, x: torch.Tensor) -> None:
        participant, split, index = decode_tags(x)
        bucket = self.seen.setdefault((self.phase, "train" if training else "eval"), set())
        for p, s, i in zip(participant.tolist(), split.tolist(), index.tolist(), strict=True):
            bucket.add((f"p{p:02d}", SPLIT_NAMES[s], i))

    # listener protocol: the phase a window was seen in
    def phase_started(self, phase, max_epochs, batches_per_epoch):
        self.phase = phase

    def epoch_finished(self, record):
        pass

    def phase_finished(self, result):
        self.phase = "evaluation"

    def origins(self, phase: str, kind: str) -> set[tuple[str, str]]:
        return {(p, s) for p, s, _ in self.seen.get((phase, kind), set())}


RECORDER = Recorder()


class Spy(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner
        self.head = inner.head

    def forward(self, x):
        RECORDER.note(self.training, x)
        return self.inner(x)


class SpyPlugin:
    @hookimpl
    def octcore_register_models(self):
        def build(params, in_channels, window, num_outputs):
            return Spy(cnn1d.build(params, in_channels, window, num_outputs))

        return [ModelSpec("spy", cnn1d.Cnn1dParams, build)]


@pytest.fixture
def spy_plugins():
    return make_plugin_manager(strict=True, extra_plugins=[SpyPlugin()])


def run_mode(spy_plugins, **settings):
    global RECORDER
    RECORDER = Recorder()
    data = {
        "dataset": {"name": "synthetic", "participants": 5, "tagged": True, "train": 20,
                    "val": 6, "test": 10},
        "model": {"name": "spy", "base_channels": 4},
        "normalize": False, "max_epochs": 2, "batch_size": 8, "device": "cpu",
        "fold": 1, "n_base_participants": 2, **settings,
    }  # fmt: skip
    experiment = experiment_from_dict(data, spy_plugins, source="test")
    dataset = spy_plugins.datasets.get("synthetic").load(experiment.dataset.options)
    outcome = run_experiment(experiment, dataset, spy_plugins, listener=RECORDER)
    return experiment, outcome, RECORDER


TARGET = "p01"
BASE = {"p00", "p02"}  # first 2 non-target participants; p03, p04 never used
BASE_TRAIN = {(p, s) for p in BASE for s in ("train", "val")}
BASE_VAL = {(p, "test") for p in BASE}


def test_full_fine_tuning(spy_plugins):
    _, outcome, seen = run_mode(spy_plugins, mode="full_fine_tuning")
    assert seen.origins("base", "train") == BASE_TRAIN
    assert seen.origins("base", "eval") == BASE_VAL
    assert seen.origins("target", "train") == BASE_TRAIN | {(TARGET, "train")}
    assert seen.origins("target", "eval") == {(TARGET, "val")}
    assert seen.origins("evaluation", "eval") == {(TARGET, "val"), (TARGET, "test")}
    assert outcome.base_state is not None and outcome.adapted_state is not None


@pytest.mark.parametrize("mode", ["target_only_fine_tuning", "last_layer_only"])
def test_fine_tuning_on_target_data_only(spy_plugins, mode):
    _, _, seen = run_mode(spy_plugins, mode=mode)
    assert seen.origins("base", "train") == BASE_TRAIN
    assert seen.origins("target", "train") == {(TARGET, "train")}
    assert seen.origins("target", "eval") == {(TARGET, "val")}


def test_target_only_never_touches_base_participants(spy_plugins):
    _, outcome, seen = run_mode(spy_plugins, mode="target_only")
    assert ("base", "train") not in seen.seen
    assert seen.origins("target", "train") == {(TARGET, "train")}
    assert seen.origins("target", "eval") == {(TARGET, "val")}
    assert outcome.base_state is None
    assert set(outcome.evaluation) == {"adapted"}


def test_base_only_trains_the_base_and_evaluates_it_on_the_target(spy_plugins):
    _, outcome, seen = run_mode(spy_plugins, mode="base_only")
    assert seen.origins("base", "train") == BASE_TRAIN
    assert ("target", "train") not in seen.seen
    assert seen.origins("evaluation", "eval") == {(TARGET, "val"), (TARGET, "test")}
    assert outcome.adapted_state is None


def test_target_test_split_is_never_seen_before_the_final_evaluation(spy_plugins):
    for mode in ("full_fine_tuning", "target_only", "last_layer_only"):
        _, _, seen = run_mode(spy_plugins, mode=mode)
        for (phase, _kind), windows in seen.seen.items():
            if phase != "evaluation":
                assert (TARGET, "test") not in {(p, s) for p, s, _ in windows}, (mode, phase)


def test_last_layer_only_changes_only_the_head(spy_plugins):
    _, outcome, _ = run_mode(spy_plugins, mode="last_layer_only")
    changed = {
        name
        for name, tensor in outcome.adapted_state.items()
        if not torch.equal(tensor, outcome.base_state[name])
    }
    assert changed and all(".head." in name for name in changed)


def test_target_fraction_keeps_the_same_windows_in_every_mode(spy_plugins):
    kept = {}
    for mode in ("full_fine_tuning", "target_only", "target_only_fine_tuning"):
        _, _, seen = run_mode(spy_plugins, mode=mode, target_data_pct=0.25, seed_finetune=7)
        kept[mode] = {i for p, s, i in seen.seen[("target", "train")] if p == TARGET}
    assert len({frozenset(v) for v in kept.values()}) == 1
    assert len(kept["target_only"]) == 5  # round(20 × 0.25)
    assert kept["target_only"] == set(target_subset(20, 0.25, 42).tolist())


def test_composed_batches_in_full_fine_tuning(spy_plugins):
    experiment, outcome, seen = run_mode(
        spy_plugins, mode="full_fine_tuning", target_batch_pct=0.25, target_data_pct=0.5
    )
    # an epoch is one pass over the 10 kept target windows, 2 per batch of 8 → 5 batches
    assert outcome.target_phase is not None
    assert {i for p, s, i in seen.seen[("target", "train")] if p == TARGET} == set(
        target_subset(20, 0.5, experiment.seed).tolist()
    )


def test_same_config_and_seed_give_identical_metrics(spy_plugins):
    first = run_mode(spy_plugins, mode="full_fine_tuning", target_batch_pct=0.5)[1]
    second = run_mode(spy_plugins, mode="full_fine_tuning", target_batch_pct=0.5)[1]
    assert first.evaluation == second.evaluation
    assert [r.train for r in first.target_phase.history] == [
        r.train for r in second.target_phase.history
    ]
    other = run_mode(spy_plugins, mode="full_fine_tuning", target_batch_pct=0.5, seed=3)[1]
    assert [r.train for r in other.base_phase.history] != [
        r.train for r in first.base_phase.history
    ]
