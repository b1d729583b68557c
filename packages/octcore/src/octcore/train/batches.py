"""Batch index plans: every batch is built by indexing tensors, never per sample.

A phase keeps its training windows in one pooled tensor (base windows first,
then target windows). A sampler returns, for one epoch, a ``[batches, B]``
(or ragged last row, for uniform sampling) matrix of indices into that pool, so a
batch is one gather. Composed batches are two index draws, one per stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch


class IndexStream:
    """Indices 0..n−1 drawn without replacement, cycling through fresh permutations."""

    def __init__(self, n: int, generator: torch.Generator):
        if n < 1:
            raise ValueError("an index stream needs at least one window")
        self.n = n
        self.generator = generator
        self._pending = torch.empty(0, dtype=torch.int64)

    def take(self, count: int) -> torch.Tensor:
        parts = [self._pending]
        have = len(self._pending)
        while have < count:
            perm = torch.randperm(self.n, generator=self.generator)
            parts.append(perm)
            have += self.n
        pool = torch.cat(parts)
        self._pending = pool[count:]
        return pool[:count]


class UniformSampler:
    """One pass over all pooled windows in random order, in batches of ``batch_size``.

    The last batch may be smaller (nothing is dropped).
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n = n
        self.batch_size = batch_size
        self.generator = generator

    def epoch(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.n, generator=self.generator)
        return iter(order.split(self.batch_size))

    def batches_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)


def target_count(batch_size: int, target_batch_pct: float) -> int:
    """k = round(B·p), at least 1 when p > 0 and at most B − 1 when p < 1."""
    k = round(batch_size * target_batch_pct)
    if target_batch_pct > 0:
        k = max(k, 1)
    if target_batch_pct < 1:
        k = min(k, batch_size - 1)
    return k


class ComposedSampler:
    """Batches of exactly k target and B − k base windows (see ``target_count``).

    Pool layout: base windows at ``[0, n_base)``, target windows at
    ``[n_base, n_base + n_target)``. An epoch is one pass over the target windows
    (over the base windows when k = 0); the other stream cycles through fresh
    permutations, so a target set smaller than k still trains.
    """

    def __init__(
        self,
        n_base: int,
        n_target: int,
        batch_size: int,
        target_batch_pct: float,
        generator: torch.Generator,
    ):
        self.k = target_count(batch_size, target_batch_pct)
        self.batch_size = batch_size
        self.n_base = n_base
        if self.k < batch_size and n_base < 1:
            raise ValueError("composed batches need base windows unless target_batch_pct = 1")
        if self.k > 0 and n_target < 1:
            raise ValueError("composed batches need target windows unless target_batch_pct = 0")
        self.base = IndexStream(n_base, generator) if self.k < batch_size else None
        self.target = IndexStream(n_target, generator) if self.k > 0 else None
        if self.k > 0:
            self._batches = math.ceil(n_target / self.k)
        else:
            self._batches = math.ceil(n_base / batch_size)

    def batches_per_epoch(self) -> int:
        return self._batches

    def epoch(self) -> Iterator[torch.Tensor]:
        columns = []
        if self.base is not None:
            base_per_batch = self.batch_size - self.k
            columns.append(self.base.take(self._batches * base_per_batch).view(self._batches, -1))
        if self.target is not None:
            target = self.target.take(self._batches * self.k).view(self._batches, -1)
            columns.append(target + self.n_base)
        return iter(torch.cat(columns, dim=1))
