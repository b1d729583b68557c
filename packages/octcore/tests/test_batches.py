"""Batch composition: exact counts per batch, epoch length, cycling streams."""

from __future__ import annotations

import math

import pytest
import torch

from octcore.train.batches import ComposedSampler, IndexStream, UniformSampler, target_count


@pytest.mark.parametrize(
    ("batch", "p", "k"),
    [
        (64, 0.0, 0), (64, 1.0, 64), (64, 0.1, 6), (64, 0.5, 32), (32, 0.1, 3),
        (64, 0.001, 1),   # p > 0 → at least one target window
        (64, 0.999, 63),  # p < 1 → at least one base window
        (10, 0.25, 2),    # round(2.5) = 2 (banker's rounding, documented as round())
        (3, 0.5, 2),
    ],
)  # fmt: skip
def test_target_count_rule(batch, p, k):
    assert target_count(batch, p) == k


def _split(batch: torch.Tensor, n_base: int) -> tuple[int, int]:
    target = int((batch >= n_base).sum())
    return len(batch) - target, target


@pytest.mark.parametrize("p", [0.0, 0.05, 0.25, 0.5, 0.9, 1.0])
def test_every_batch_has_exactly_k_target_windows(p):
    n_base, n_target, batch = 500, 37, 32
    sampler = ComposedSampler(n_base, n_target, batch, p, torch.Generator().manual_seed(0))
    k = target_count(batch, p)
    batches = list(sampler.epoch())
    expected = math.ceil(n_target / k) if k else math.ceil(n_base / batch)
    assert len(batches) == sampler.batches_per_epoch() == expected
    for b in batches:
        assert len(b) == batch
        assert _split(b, n_base) == (batch - k, k)
    seen_target = torch.cat([b[b >= n_base] for b in batches]) - n_base
    if k:
        # one pass over the target: every target window at least once
        assert set(seen_target.tolist()) == set(range(n_target))
    else:
        assert seen_target.numel() == 0
        seen_base = torch.cat(batches)
        assert set(seen_base.tolist()) == set(range(n_base))


def test_base_stream_cycles_without_replacement_across_epochs():
    n_base, n_target, batch, p = 20, 30, 8, 0.5
    sampler = ComposedSampler(n_base, n_target, batch, p, torch.Generator().manual_seed(1))
    drawn = torch.cat([b[b < n_base] for _ in range(3) for b in sampler.epoch()])
    # consecutive blocks of n_base draws are permutations of the base windows
    for start in range(0, len(drawn) - n_base + 1, n_base):
        assert sorted(drawn[start : start + n_base].tolist()) == list(range(n_base))


def test_target_set_smaller_than_k_still_trains():
    sampler = ComposedSampler(100, 3, 16, 0.5, torch.Generator().manual_seed(0))
    batches = list(sampler.epoch())
    assert len(batches) == 1
    assert _split(batches[0], 100) == (8, 8)  # the 3 target windows repeat to fill 8 places


def test_uniform_sampler_is_one_pass_with_a_smaller_last_batch():
    sampler = UniformSampler(70, 32, torch.Generator().manual_seed(0))
    batches = list(sampler.epoch())
    assert [len(b) for b in batches] == [32, 32, 6]
    assert sorted(torch.cat(batches).tolist()) == list(range(70))


def test_index_stream_draws_fresh_permutations():
    stream = IndexStream(5, torch.Generator().manual_seed(0))
    drawn = torch.cat([stream.take(3) for _ in range(5)])
    for start in (0, 5, 10):
        assert sorted(drawn[start : start + 5].tolist()) == [0, 1, 2, 3, 4]


def test_composition_needs_windows_of_the_stream_it_draws_from():
    with pytest.raises(ValueError, match="target windows"):
        ComposedSampler(10, 0, 8, 0.5, torch.Generator())
    ComposedSampler(10, 0, 8, 0.0, torch.Generator())  # p = 0 never draws from the target
