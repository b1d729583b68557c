"""Data sets stored as one file per participant and split: ``pt-dir`` and ``npz-dir``.

This is the research code's layout, ``{path}/{participant}_{split}.pt`` (or
``.npz``) for the splits ``train``, ``val`` and ``test``. A ``.pt`` file holds
``torch.save((X, y))``; an ``.npz`` file holds the arrays ``X`` and ``y``. Both
formats share the checks and conversion below, so they accept the same content:

- ``X``: floating ``[N, C, T]``, stored as float32 (float16/float64 are converted);
  every file must agree on ``C`` and ``T``;
- ``y``: ``[N]``, either floats that are all ``0.`` or ``1.`` (binary labels, made
  int64) or non-negative integers (class indices).

Participants are discovered from the ``*_train`` file names and sorted, unless
the option ``participants`` restricts and orders them. Files are only read with
loaders that cannot run code: ``torch.load(weights_only=True)`` and
``np.load(allow_pickle=False)``.

The fingerprint covers the tensors and the participant order but not ``path``:
the same files moved elsewhere train the same models.
"""

from __future__ import annotations

import functools
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from octcore.data.base import SPLITS, Dataset, Windows, fingerprint_tensors
from octcore.errors import OctError

LOADER_VERSION = 1


class DataFilesError(OctError):
    """A data directory, or a file in it, is missing or holds something unexpected."""


def _path_str(value: str | os.PathLike[str]) -> str:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _participants_tuple(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(value) if isinstance(value, list | tuple) else value


def _check_participants(instance: Any, attribute: Any, value: tuple[str, ...] | None) -> None:
    if value is None:
        return
    if not isinstance(value, tuple):
        raise TypeError(f"participants must be a list of ids, got {value!r}")
    if not value:
        raise ValueError("participants must name at least one participant (or be omitted)")
    if not all(isinstance(p, str) and p for p in value):
        raise ValueError(f"participants must be non-empty strings, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"participants must not repeat, got {value!r}")


@attrs.frozen
class _DirOptions:
    """A directory of per-participant split files; ``participants`` restricts and orders."""

    path: str = attrs.field(converter=_path_str, validator=attrs.validators.instance_of(str))
    participants: tuple[str, ...] | None = attrs.field(
        default=None, converter=_participants_tuple, validator=_check_participants
    )


@attrs.frozen
class PtDirOptions(_DirOptions):
    """Options of ``pt-dir``: ``{path}/{participant}_{split}.pt`` holding ``(X, y)``."""


@attrs.frozen
class NpzDirOptions(_DirOptions):
    """Options of ``npz-dir``: ``{path}/{participant}_{split}.npz`` holding ``X`` and ``y``."""


@attrs.frozen
class _Format:
    name: str
    suffix: str
    read: Callable[[Path], tuple[Any, Any]]


def _read_pt(file: Path) -> tuple[Any, Any]:
    try:
        content = torch.load(file, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises many types for a bad or unsafe file
        raise DataFilesError(
            f"{file}: cannot be read with torch.load(weights_only=True): {exc}"
        ) from exc
    if not isinstance(content, tuple | list) or len(content) != 2:
        raise DataFilesError(f"{file}: expected torch.save((X, y)), got {type(content).__name__}")
    X, y = content
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise DataFilesError(f"{file}: expected X and y to be tensors")
    # numpy has no bfloat16; widen it so the checks below see an ordinary float
    X, y = (t.detach().float() if t.dtype == torch.bfloat16 else t.detach() for t in (X, y))
    return X.numpy(), y.numpy()


def _read_npz(file: Path) -> tuple[Any, Any]:
    try:
        with np.load(file, allow_pickle=False) as content:
            missing = [key for key in ("X", "y") if key not in content.files]
            if missing:
                raise DataFilesError(f"{file}: expected arrays X and y, missing {missing}")
            return content["X"], content["y"]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataFilesError(
            f"{file}: cannot be read with np.load(allow_pickle=False): {exc}"
        ) from exc


FORMATS: dict[type, _Format] = {
    PtDirOptions: _Format("pt-dir", ".pt", _read_pt),
    NpzDirOptions: _Format("npz-dir", ".npz", _read_npz),
}


def _format(options: _DirOptions) -> _Format:
    return FORMATS[type(options)]


def split_file(options: _DirOptions, participant: str, split: str) -> Path:
    """Where a participant's split lives: ``{path}/{participant}_{split}{suffix}``."""
    return Path(options.path) / f"{participant}_{split}{_format(options).suffix}"


def participants(options: _DirOptions) -> tuple[str, ...]:
    """Participants with all three split files, without reading any tensor.

    Discovered from ``*_train`` files and sorted, or ``options.participants`` in its
    order. A missing directory or split file is an error naming it.
    """
    directory = Path(options.path)
    suffix = _format(options).suffix
    if not directory.is_dir():
        raise DataFilesError(
            f"{_format(options).name} path {options.path!r} is not a directory; expected "
            f"files {{participant}}_{{train,val,test}}{suffix}"
        )
    found = sorted(f.name[: -len(f"_train{suffix}")] for f in directory.glob(f"*_train{suffix}"))
    chosen = found if options.participants is None else list(options.participants)
    if not chosen:
        raise DataFilesError(f"{directory}: no *_train{suffix} files, so no participants")
    for participant in chosen:
        for split in SPLITS:
            file = split_file(options, participant, split)
            if not file.is_file():
                raise DataFilesError(
                    f"{file} is missing: participant {participant!r} needs "
                    f"{participant}_{{train,val,test}}{suffix} in {directory}"
                )
    return tuple(chosen)


def _labels(file: Path, y: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    """int64 class indices and whether they were binary float labels."""
    if y.ndim != 1 or len(y) != n:
        raise DataFilesError(f"{file}: y must have shape [{n}] to match X, got {list(y.shape)}")
    if y.dtype == np.bool_:
        return y.astype(np.int64), True
    if np.issubdtype(y.dtype, np.floating):
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataFilesError(f"{file}: float labels y must all be 0. or 1. (binary)")
        return y.astype(np.int64), True
    if np.issubdtype(y.dtype, np.integer):
        if n and y.min() < 0:
            raise DataFilesError(f"{file}: integer labels y must be class indices >= 0")
        return y.astype(np.int64), False
    raise DataFilesError(f"{file}: y must be float 0./1. or integer classes, got {y.dtype}")


def _windows(file: Path, X: np.ndarray, y: np.ndarray) -> tuple[Windows, bool]:
    if X.ndim != 3 or not np.issubdtype(X.dtype, np.floating):
        raise DataFilesError(f"{file}: X must be floating [N, C, T], got {X.dtype} {list(X.shape)}")
    labels, binary = _labels(file, y, len(X))
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    return Windows(torch.from_numpy(X32), torch.from_numpy(labels)), binary


def _check_shapes(options: _DirOptions, splits: dict[str, dict[str, Windows]]) -> None:
    first = next(iter(splits))
    expected = tuple(splits[first]["train"].X.shape[1:])
    for participant, by_split in splits.items():
        for split, windows in by_split.items():
            if tuple(windows.X.shape[1:]) != expected:
                raise DataFilesError(
                    f"{split_file(options, participant, split)}: X has [C, T] = "
                    f"{list(windows.X.shape[1:])}, but {split_file(options, first, 'train')} "
                    f"has {list(expected)}; all files must agree"
                )


def _num_classes(options: _DirOptions, splits: dict[str, dict[str, Windows]], binary: bool) -> int:
    top = max((int(w.y.max()) for by in splits.values() for w in by.values() if len(w)), default=0)
    if binary and top > 1:
        raise DataFilesError(
            f"{options.path}: some files hold binary float labels and others class "
            f"indices up to {top}; use one kind of label throughout"
        )
    return max(2, top + 1)


def load(options: _DirOptions) -> Dataset:
    """Every participant's splits, checked and converted (cached per options).

    The returned tensors are shared by every caller with the same options: treat
    them as read-only. Files changed on disk after the first load in a process are
    not seen again.
    """
    return _load(options)


@functools.lru_cache(maxsize=4)
def _load(options: _DirOptions) -> Dataset:
    fmt = _format(options)
    chosen = participants(options)
    splits: dict[str, dict[str, Windows]] = {}
    any_binary = False
    for participant in chosen:
        splits[participant] = {}
        for split in SPLITS:
            file = split_file(options, participant, split)
            windows, binary = _windows(file, *fmt.read(file))
            splits[participant][split] = windows
            any_binary |= binary
    _check_shapes(options, splits)
    header = json.dumps(
        {"loader": fmt.name, "version": LOADER_VERSION, "participants": list(chosen)},
        sort_keys=True,
    )
    return Dataset(
        name=fmt.name,
        participants=chosen,
        splits=splits,
        num_classes=_num_classes(options, splits, any_binary),
        fingerprint=fingerprint_tensors(header, splits),
    )
