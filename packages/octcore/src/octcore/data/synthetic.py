"""Generated participants with participant-specific shifts, for tests and demos.

Each class is a sinusoid with its own frequency (cycles per window) and its own
amplitude on every channel, at a random phase, plus Gaussian noise, so a small
CNN can learn it from any window length. Each participant then distorts it, in
proportion to ``shift``: its own tempo (all frequencies scaled), its own
per-class, per-channel amplitudes, and its own channel scales and offsets. With
several classes the tempo alone makes one participant's class look like
another's neighbour, so a model adapted to the target beats the pooled base,
which is the effect personalisation experiments measure.

Everything is a pure function of the options: participant ``i`` and each split
are generated from their own seeds ``(seed, i, ...)``, so adding participants or
windows does not change the ones already there.

With ``tagged=True`` every window carries its origin in channel 0:
``X[:, 0, 0]`` participant index, ``X[:, 0, 1]`` split code (``SPLIT_CODES``) and
``X[:, 0, 2]`` window index within the split, so a test can tell from any batch
where each window came from (see ``decode_tags``).
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import attrs
import numpy as np
import torch

from octcore.data.base import SPLITS, Dataset, Windows, fingerprint_tensors

NAME = "synthetic"
LOADER_VERSION = 1
SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}
NOISE = 0.5
_CLASS_STREAM = 0xC1A55
_STYLE_STREAM = 0x5717E

_positive = [attrs.validators.instance_of(int), attrs.validators.gt(0)]


def _finite_non_negative(instance: Any, attribute: Any, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


@attrs.frozen
class SyntheticOptions:
    """Sizes of the generated data set; ``shift`` scales how much participants differ."""

    participants: int = attrs.field(default=6, validator=_positive)
    channels: int = attrs.field(default=6, validator=_positive)
    window: int = attrs.field(default=64, validator=_positive)
    num_classes: int = attrs.field(
        default=2, validator=[attrs.validators.instance_of(int), attrs.validators.ge(2)]
    )
    train: int = attrs.field(default=48, validator=_positive)
    val: int = attrs.field(default=16, validator=_positive)
    test: int = attrs.field(default=32, validator=_positive)
    seed: int = attrs.field(
        default=0, validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)]
    )
    shift: float = attrs.field(default=1.0, converter=float, validator=_finite_non_negative)
    tagged: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def __attrs_post_init__(self) -> None:
        if self.tagged and self.window < 3:
            raise ValueError(
                f"tagged=True writes 3 tags per window, so window must be >= 3, got {self.window}"
            )


def participant_ids(count: int) -> tuple[str, ...]:
    """``p00``, ``p01``, … in index order (the order of ``Dataset.participants``)."""
    return tuple(f"p{i:02d}" for i in range(count))


def participants(options: SyntheticOptions) -> tuple[str, ...]:
    return participant_ids(options.participants)


def decode_tags(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(participant index, split code, window index) of each window of a tagged batch."""
    tags = X[:, 0, :3].round().long()
    return tags[:, 0], tags[:, 1], tags[:, 2]


@attrs.frozen(eq=False)
class _Classes:
    """What every participant shares: each class's frequency and channel amplitudes."""

    cycles: np.ndarray  # [K] cycles per window
    amplitude: np.ndarray  # [K, C]


@attrs.frozen(eq=False)
class _Style:
    """One participant's distortion of the shared classes."""

    tempo: float
    amplitude: np.ndarray  # [K, C]
    scale: np.ndarray  # [C]
    offset: np.ndarray  # [C]


def _classes(options: SyntheticOptions) -> _Classes:
    rng = np.random.default_rng([options.seed, _CLASS_STREAM])
    k, c = options.num_classes, options.channels
    cycles = 1.5 + 1.5 * np.arange(k)
    amplitude = rng.uniform(0.5, 1.5, (k, c)) * rng.choice([-1.0, 1.0], (k, c))
    return _Classes(cycles, amplitude)


def _style(options: SyntheticOptions, classes: _Classes, index: int) -> _Style:
    rng = np.random.default_rng([options.seed, index, _STYLE_STREAM])
    k, c, s = options.num_classes, options.channels, options.shift
    return _Style(
        tempo=float(np.exp(0.2 * s * rng.standard_normal())),
        amplitude=classes.amplitude * (1 + 0.5 * s * rng.standard_normal((k, c))),
        scale=np.exp(0.3 * s * rng.standard_normal(c)),
        offset=s * rng.standard_normal(c),
    )


def _split(
    options: SyntheticOptions, classes: _Classes, style: _Style, index: int, split: str
) -> Windows:
    code = SPLIT_CODES[split]
    rng = np.random.default_rng([options.seed, index, code])
    n, t = getattr(options, split), np.arange(options.window) / options.window
    y = rng.permutation(np.arange(n) % options.num_classes)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    gain = rng.uniform(0.8, 1.2, (n, 1, 1))
    wave = np.sin(2 * np.pi * style.tempo * classes.cycles[y][:, None, None] * t + phase)
    signal = gain * style.amplitude[y][:, :, None] * wave
    signal += NOISE * rng.standard_normal((n, options.channels, options.window))
    X = (signal * style.scale[:, None] + style.offset[:, None]).astype(np.float32)
    if options.tagged:
        X[:, 0, :3] = np.stack([np.full(n, index), np.full(n, code), np.arange(n)], 1)
    return Windows(torch.from_numpy(X), torch.from_numpy(y.astype(np.int64)))


def load(options: SyntheticOptions) -> Dataset:
    """The generated data set (cached per options; treat its tensors as read-only)."""
    return _load(options)


@functools.lru_cache(maxsize=8)
def _load(options: SyntheticOptions) -> Dataset:
    classes = _classes(options)
    ids = participant_ids(options.participants)
    splits = {}
    for index, participant in enumerate(ids):
        style = _style(options, classes, index)
        splits[participant] = {s: _split(options, classes, style, index, s) for s in SPLITS}
    header = json.dumps(
        {"loader": NAME, "version": LOADER_VERSION, "options": attrs.asdict(options)},
        sort_keys=True,
    )
    return Dataset(
        name=NAME,
        participants=ids,
        splits=splits,
        num_classes=options.num_classes,
        fingerprint=fingerprint_tensors(header, splits),
        class_names=tuple(f"class{k}" for k in range(options.num_classes)),
    )
