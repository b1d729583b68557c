"""What a data set is to oct: per-participant splits of labelled windows.

A ``Dataset`` holds, for every participant, the splits ``train``, ``val`` and
``test``, each a ``Windows`` (``X[N, C, T]`` float32, ``y[N]`` int64 class
indices). Binary data sets have two classes (0 and 1); the trainer then uses one
logit and BCE. ``fingerprint`` is a sha256 over the content and the loader's
settings, so two data sets with the same fingerprint train the same models.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import attrs
import torch

SPLITS: tuple[str, ...] = ("train", "val", "test")


@attrs.frozen(eq=False)
class Windows:
    """Labelled windows: ``X[N, C, T]`` float32 and ``y[N]`` int64."""

    X: torch.Tensor
    y: torch.Tensor

    def __attrs_post_init__(self) -> None:
        if self.X.dtype != torch.float32 or self.X.dim() != 3:
            raise ValueError(
                f"X must be float32 [N, C, T], got {self.X.dtype} {tuple(self.X.shape)}"
            )
        if self.y.dtype != torch.int64 or self.y.dim() != 1 or len(self.y) != len(self.X):
            raise ValueError(
                f"y must be int64 [N] with N={len(self.X)}, "
                f"got {self.y.dtype} {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def concat(cls, parts: Iterable[Windows]) -> Windows:
        parts = list(parts)
        if not parts:
            raise ValueError("no windows to concatenate")
        return cls(torch.cat([p.X for p in parts]), torch.cat([p.y for p in parts]))

    def subset(self, index: torch.Tensor) -> Windows:
        return Windows(self.X[index], self.y[index])


@attrs.frozen(eq=False)
class Dataset:
    """A loaded data set. ``splits[participant][split]`` is a ``Windows``."""

    name: str
    participants: tuple[str, ...]
    splits: Mapping[str, Mapping[str, Windows]]
    num_classes: int
    fingerprint: str
    class_names: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        missing = [p for p in self.participants if p not in self.splits]
        if missing:
            raise ValueError(f"participants without data: {missing}")
        for p in self.participants:
            for s in SPLITS:
                if s not in self.splits[p]:
                    raise ValueError(f"participant {p!r} has no {s!r} split")

    def windows(self, participant: str, split: str) -> Windows:
        return self.splits[participant][split]

    def gather(self, participants: Iterable[str], splits: Iterable[str]) -> Windows:
        """All windows of these participants' splits, in that order."""
        splits = tuple(splits)
        return Windows.concat(self.splits[p][s] for p in participants for s in splits)

    @property
    def channels(self) -> int:
        return int(self.windows(self.participants[0], "train").X.shape[1])

    @property
    def window(self) -> int:
        return int(self.windows(self.participants[0], "train").X.shape[2])


def fingerprint_tensors(header: str, splits: Mapping[str, Mapping[str, Windows]]) -> str:
    """sha256 over a header (loader name, version, settings) and every tensor's bytes."""
    digest = hashlib.sha256(header.encode())
    for participant in sorted(splits):
        for split in SPLITS:
            w = splits[participant][split]
            digest.update(f"|{participant}|{split}|{tuple(w.X.shape)}|".encode())
            digest.update(w.X.contiguous().numpy().tobytes())
            digest.update(w.y.contiguous().numpy().tobytes())
    return digest.hexdigest()
