"""pt-dir and npz-dir: round trips through real files, and the errors a user can cause."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from octcore.data import files
from octcore.data.base import SPLITS
from octcore.errors import OctError

C, T = 3, 16


def _tensors(seed: int, n: int, binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, C, T, generator=g)
    if binary:
        return X, torch.randint(0, 2, (n,), generator=g).float()
    return X, torch.randint(0, 4, (n,), generator=g)


def _write_pt(directory: Path, people: tuple[str, ...], binary: bool) -> dict:
    written = {}
    for i, person in enumerate(people):
        for j, split in enumerate(SPLITS):
            X, y = _tensors(10 * i + j, 5 + j, binary)
            torch.save((X, y), directory / f"{person}_{split}.pt")
            written[person, split] = (X, y)
    return written


def _write_npz(directory: Path, people: tuple[str, ...]) -> dict:
    written = {}
    for i, person in enumerate(people):
        for j, split in enumerate(SPLITS):
            X, y = (t.numpy() for t in _tensors(10 * i + j, 4 + j, binary=False))
            np.savez(directory / f"{person}_{split}.npz", X=X.astype(np.float64), y=y)
            written[person, split] = (X, y)
    return written


def test_pt_dir_round_trip_with_binary_float_labels(tmp_path):
    written = _write_pt(tmp_path, ("s2", "s10", "s1"), binary=True)
    options = files.PtDirOptions(str(tmp_path))
    ds = files.load(options)
    assert files.participants(options) == ds.participants == ("s1", "s10", "s2")
    assert ds.name == "pt-dir" and ds.num_classes == 2
    assert (ds.channels, ds.window) == (C, T)
    for (person, split), (X, y) in written.items():
        w = ds.windows(person, split)
        torch.testing.assert_close(w.X, X)
        assert w.y.dtype == torch.int64
        assert torch.equal(w.y, y.long())


def test_pt_dir_integer_labels_give_max_plus_one_classes(tmp_path):
    written = _write_pt(tmp_path, ("a", "b"), binary=False)
    ds = files.load(files.PtDirOptions(str(tmp_path)))
    top = max(int(y.max()) for _, y in written.values())
    assert ds.num_classes == top + 1
    assert torch.equal(ds.windows("b", "test").y, written["b", "test"][1])


def test_participants_option_restricts_and_orders(tmp_path):
    _write_pt(tmp_path, ("a", "b", "c"), binary=True)
    options = files.PtDirOptions(tmp_path, participants=["c", "a"])
    assert options.participants == ("c", "a") and options.path == str(tmp_path)
    assert files.load(options).participants == ("c", "a")
    with pytest.raises(OctError, match=r"zz_train\.pt"):
        files.participants(files.PtDirOptions(str(tmp_path), participants=("zz",)))


def test_missing_split_file_is_an_error_naming_the_file(tmp_path):
    _write_pt(tmp_path, ("a", "b"), binary=True)
    (tmp_path / "b_val.pt").unlink()
    options = files.PtDirOptions(str(tmp_path))
    with pytest.raises(files.DataFilesError, match=r"b_val\.pt is missing"):
        files.participants(options)
    with pytest.raises(OctError, match=r"b_val\.pt"):
        files.load(options)


def test_missing_directory_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(OctError, match=r"nowhere.*is not a directory"):
        files.participants(files.PtDirOptions(str(missing)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OctError, match=r"no \*_train\.npz files"):
        files.load(files.NpzDirOptions(str(empty)))


@pytest.mark.parametrize(
    ("X", "y", "complaint"),
    [
        (torch.zeros(4, C), torch.zeros(4), "X must be floating \\[N, C, T\\]"),
        (torch.zeros(4, C, T, dtype=torch.int64), torch.zeros(4), "X must be floating"),
        (torch.zeros(4, C, T), torch.zeros(3), "y must have shape \\[4\\]"),
        (torch.zeros(4, C, T), torch.tensor([0.0, 1.0, 2.0, 0.5]), "must all be 0. or 1."),
        (torch.zeros(4, C, T), torch.tensor([0, -1, 1, 0]), "class indices >= 0"),
    ],
)
def test_bad_content_is_an_error_naming_the_file(tmp_path, X, y, complaint):
    _write_pt(tmp_path, ("a",), binary=True)
    torch.save((X, y), tmp_path / "a_test.pt")
    with pytest.raises(files.DataFilesError, match=rf"a_test\.pt: .*{complaint}"):
        files.load(files.PtDirOptions(str(tmp_path)))


def test_files_disagreeing_on_channels_name_both(tmp_path):
    _write_pt(tmp_path, ("a", "b"), binary=True)
    torch.save((torch.zeros(2, C + 1, T), torch.zeros(2)), tmp_path / "b_val.pt")
    with pytest.raises(OctError, match=r"b_val\.pt: X has .*a_train\.pt has"):
        files.load(files.PtDirOptions(str(tmp_path)))


class _NotATensor:
    pass


def test_pt_files_are_loaded_with_weights_only(tmp_path):
    _write_pt(tmp_path, ("a",), binary=True)
    torch.save((_NotATensor(), torch.zeros(1)), tmp_path / "a_train.pt")
    with pytest.raises(OctError, match=r"a_train\.pt: cannot be read with torch\.load"):
        files.load(files.PtDirOptions(str(tmp_path)))


def test_npz_dir_round_trip(tmp_path):
    written = _write_npz(tmp_path, ("u1", "u0"))
    ds = files.load(files.NpzDirOptions(str(tmp_path)))
    assert ds.name == "npz-dir" and ds.participants == ("u0", "u1")
    for (person, split), (X, y) in written.items():
        w = ds.windows(person, split)
        assert w.X.dtype == torch.float32 and w.y.dtype == torch.int64
        np.testing.assert_array_equal(w.X.numpy(), X)
        np.testing.assert_array_equal(w.y.numpy(), y)


def test_npz_without_y_names_the_file_and_key(tmp_path):
    _write_npz(tmp_path, ("u0",))
    np.savez(tmp_path / "u0_val.npz", X=np.zeros((2, C, T)))
    with pytest.raises(OctError, match=r"u0_val\.npz: expected arrays X and y, missing \['y'\]"):
        files.load(files.NpzDirOptions(str(tmp_path)))


def test_fingerprint_follows_content_not_location(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _write_pt(first, ("a", "b"), binary=True)
    _write_pt(second, ("a", "b"), binary=True)
    fp = files.load(files.PtDirOptions(str(first))).fingerprint
    assert fp == files.load(files.PtDirOptions(str(second))).fingerprint
    torch.save((torch.zeros(2, C, T), torch.zeros(2)), second / "b_test.pt")
    assert files._load.__wrapped__(files.PtDirOptions(str(second))).fingerprint != fp
    reordered = files.PtDirOptions(str(first), participants=("b", "a"))
    assert files.load(reordered).fingerprint != fp


def test_options_reject_impossible_values(tmp_path):
    with pytest.raises(ValueError, match=r"at least one"):
        files.PtDirOptions(str(tmp_path), participants=())
    with pytest.raises(ValueError, match=r"must not repeat"):
        files.NpzDirOptions(str(tmp_path), participants=("a", "a"))
    with pytest.raises(TypeError):
        files.PtDirOptions(str(tmp_path), participants="a")
    with pytest.raises(TypeError):
        files.PtDirOptions(None)
