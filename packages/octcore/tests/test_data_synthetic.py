"""The synthetic data set, and the built-in plugin that registers every family."""

from __future__ import annotations

import time

import pytest
import torch

from octcore.data import files, hapt, plugin, synthetic
from octcore.data.base import SPLITS
from octcore.registry import DatasetSpec

Options = synthetic.SyntheticOptions


def _generate(options: synthetic.SyntheticOptions):
    """Generate afresh, bypassing the per-options cache."""
    return synthetic._load.__wrapped__(options)


def _same(a, b) -> bool:
    return all(
        torch.equal(a.windows(p, s).X, b.windows(p, s).X)
        and torch.equal(a.windows(p, s).y, b.windows(p, s).y)
        for p in a.participants
        for s in SPLITS
    )


def test_default_shapes_ids_and_balanced_classes():
    ds = synthetic.load(Options())
    assert ds.participants == ("p00", "p01", "p02", "p03", "p04", "p05")
    assert synthetic.participants(Options()) == ds.participants
    assert (ds.channels, ds.window, ds.num_classes) == (6, 64, 2)
    for p in ds.participants:
        assert [len(ds.windows(p, s)) for s in SPLITS] == [48, 16, 32]
        assert torch.bincount(ds.windows(p, "train").y).tolist() == [24, 24]


def test_same_seed_same_data_other_seed_other_data():
    a, b = _generate(Options()), _generate(Options())
    assert a is not b and _same(a, b) and a.fingerprint == b.fingerprint
    c = _generate(Options(seed=1))
    assert not _same(a, c) and a.fingerprint != c.fingerprint
    assert _generate(Options(shift=0.5)).fingerprint != a.fingerprint


def test_growing_the_data_set_keeps_what_was_there():
    small = _generate(Options(participants=2, train=8))
    large = _generate(Options(participants=4, train=8, test=64))
    for p in small.participants:
        for s in ("train", "val"):
            assert torch.equal(small.windows(p, s).X, large.windows(p, s).X)


def test_any_size_and_many_classes():
    ds = _generate(Options(participants=11, channels=2, window=8, num_classes=5, train=5))
    assert ds.participants[-1] == "p10" and ds.num_classes == 5
    assert tuple(ds.windows("p10", "train").X.shape) == (5, 2, 8)
    assert ds.windows("p03", "test").y.max() == 4


def test_tags_tell_where_every_window_of_a_shuffled_batch_came_from():
    ds = synthetic.load(Options(tagged=True))
    batch = ds.gather(ds.participants, SPLITS)
    order = torch.randperm(len(batch), generator=torch.Generator().manual_seed(0))
    shuffled = batch.subset(order)
    people, codes, indices = synthetic.decode_tags(shuffled.X)
    for row in range(len(shuffled)):
        split = SPLITS[int(codes[row])]
        source = ds.windows(ds.participants[int(people[row])], split)
        assert torch.equal(shuffled.X[row], source.X[int(indices[row])])
        assert shuffled.y[row] == source.y[int(indices[row])]
    for p, participant in enumerate(ds.participants):
        for s in SPLITS:
            tags = synthetic.decode_tags(ds.windows(participant, s).X)
            assert (tags[0] == p).all() and (tags[1] == synthetic.SPLIT_CODES[s]).all()
            assert torch.equal(tags[2], torch.arange(len(tags[2])))


def _spread_of_channel_means(shift: float) -> float:
    ds = _generate(Options(shift=shift, participants=8))
    means = torch.stack([ds.windows(p, "train").X.mean(dim=(0, 2)) for p in ds.participants])
    return float(means.std(dim=0).mean())


def test_participants_differ_in_proportion_to_shift():
    assert _spread_of_channel_means(0.0) < 0.1
    assert _spread_of_channel_means(1.0) > 0.5


def test_class_signal_is_present():
    ds = synthetic.load(Options(shift=0.0))
    X, y = ds.windows("p00", "train").X, ds.windows("p00", "train").y
    power = torch.fft.rfft(X, dim=2).abs().mean(dim=1)  # [N, frequencies]
    peak = power[:, 1:].argmax(dim=1)
    assert (peak[y == 0].float().mean() + 1) < (peak[y == 1].float().mean())


def test_generating_the_default_is_fast():
    best = min(_timed(Options()) for _ in range(3))
    assert best < 0.2  # about 5 ms alone; generous for a shared machine


def _timed(options):
    start = time.perf_counter()
    _generate(options)
    return time.perf_counter() - start


@pytest.mark.parametrize(
    "bad",
    [
        {"participants": 0},
        {"channels": -1},
        {"window": 0},
        {"num_classes": 1},
        {"train": 0},
        {"seed": -1},
        {"shift": -0.5},
        {"shift": float("nan")},
        {"tagged": True, "window": 2},
    ],
)
def test_options_reject_impossible_values(bad):
    with pytest.raises(ValueError):
        Options(**bad)


def test_plugin_registers_the_four_families():
    specs = plugin.octcore_register_datasets()
    assert all(isinstance(s, DatasetSpec) and s.description for s in specs)
    by_name = {s.name: s for s in specs}
    assert list(by_name) == ["hapt", "pt-dir", "npz-dir", "synthetic"]
    assert by_name["hapt"].options_cls is hapt.HaptOptions
    assert by_name["pt-dir"].options_cls is files.PtDirOptions
    assert by_name["npz-dir"].options_cls is files.NpzDirOptions
    spec = by_name["synthetic"]
    options = spec.options_cls(participants=2)
    assert spec.participants(options) == ("p00", "p01")
    assert spec.load(options).participants == ("p00", "p01")
    assert by_name["hapt"].participants(hapt.HaptOptions())[0] == "1"
