"""Experiment configuration: files, flags, and every kind of bad input reported at once."""

from __future__ import annotations

import json

import attrs
import pytest

from octcore.cli.flags import overrides_from_flags
from octcore.config import Experiment, load_experiment, resolve_fold
from octcore.errors import ConfigError


def _problems(excinfo) -> dict[str, str]:
    return {p.key: p.message for p in excinfo.value.problems}


def test_defaults_are_the_documented_research_defaults(plugins):
    experiment = load_experiment(None, {}, plugins)
    assert experiment.mode == "full_fine_tuning"
    assert experiment.dataset.name == "hapt"
    assert experiment.model.name == "cnn1d"
    assert experiment.model.options.base_channels == 8
    assert experiment.target_batch_pct is None
    assert experiment.n_base_participants == "all"
    assert 1 <= experiment.max_epochs <= 1000, "training is bounded by default"


def test_toml_file_then_flags_override(tmp_path, plugins, tiny):
    path = tmp_path / "exp.toml"
    path.write_text(
        """
fold = 1
lr = 0.001
mode = "target_only"
[dataset]
name = "synthetic"
participants = 5
[model]
base_channels = 4
use_dilation = true
"""
    )
    overrides, problems = overrides_from_flags({"lr": "0.01", "fold": None, "use_residual": True})
    assert not problems
    experiment = load_experiment(path, overrides, plugins)
    assert experiment.fold == 1
    assert experiment.lr == 0.01
    assert experiment.mode == "target_only"
    assert experiment.dataset.options.participants == 5
    assert experiment.model.options.use_dilation and experiment.model.options.use_residual


def test_research_json_job_dict_is_read(tmp_path, plugins):
    job = {
        "fold": 2, "batch_size": 32, "model": "test", "base_channels": 16, "use_dilation": True,
        "use_augmentation": True, "jitter_std": 0.01, "magnitude_range": [0.9, 1.1],
        "aug_prob": 0.5, "n_base_participants": "2", "window_size": 3000,
        "target_batch_pct": None, "device": 0, "seed_finetune": 3,
        "dataset": {"name": "synthetic"},
    }  # fmt: skip
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    experiment = load_experiment(path, {}, plugins)
    assert experiment.model.name == "cnn1d"  # "test" is an alias
    assert experiment.model.options.base_channels == 16
    assert experiment.augmentation.enabled and experiment.augmentation.probability == 0.5
    assert experiment.augmentation.magnitude_range == (0.9, 1.1)
    assert experiment.n_base_participants == 2  # the research code passed a string
    assert experiment.device == "0"


def test_every_problem_of_a_file_is_reported_at_once(tmp_path, plugins):
    path = tmp_path / "bad.toml"
    path.write_text(
        """
batch_size = "64"
target_data_pct = 1.5
target_batch_pct = -0.1
mode = "full_finetuning"
learning_rate = 0.1
[model]
base_channels = 0
colour = "red"
"""
    )
    with pytest.raises(ConfigError) as excinfo:
        load_experiment(path, {}, plugins)
    problems = _problems(excinfo)
    assert str(path) in str(excinfo.value)
    assert "expected an integer" in problems["batch_size"]
    assert "[0, 1]" not in problems["target_data_pct"] and "(0, 1]" in problems["target_data_pct"]
    assert "[0, 1]" in problems["target_batch_pct"]
    assert "mode" in problems
    assert "unknown key" in problems["learning_rate"]
    assert "unknown key" in problems["model.colour"]


def test_value_problems_are_all_reported_together(tmp_path, plugins):
    path = tmp_path / "bad.toml"
    path.write_text(
        """
target_data_pct = 0.0
lr = -1.0
[model]
base_channels = 0
dropout = 1.5
"""
    )
    with pytest.raises(ConfigError) as excinfo:
        load_experiment(path, {}, plugins)
    assert set(_problems(excinfo)) == {
        "target_data_pct", "lr", "model.base_channels", "model.dropout",
    }  # fmt: skip


def test_problems_that_need_the_data_set(plugins):
    data = {"dataset": {"name": "synthetic", "participants": 4}}
    with pytest.raises(ConfigError) as excinfo:
        load_experiment(None, {**data, "fold": 4}, plugins)
    assert "past the participant list" in _problems(excinfo)["fold"]
    with pytest.raises(ConfigError) as excinfo:
        load_experiment(None, {**data, "n_base_participants": 4}, plugins)
    assert "only 3 remain" in _problems(excinfo)["n_base_participants"]
    with pytest.raises(ConfigError) as excinfo:
        load_experiment(None, {**data, "participants": ["p00", "p01", "nobody"]}, plugins)
    assert "nobody" in _problems(excinfo)["participants"]
    with pytest.raises(ConfigError) as excinfo:
        load_experiment(None, {**data, "participants": ["p00", "p01"], "fold": 2}, plugins)
    assert "past the participant list" in _problems(excinfo)["fold"]


def test_unknown_plugin_names_list_what_is_installed(plugins):
    with pytest.raises(ConfigError) as excinfo:
        load_experiment(None, {"dataset": {"name": "nope"}, "model": {"name": "resnet"}}, plugins)
    problems = _problems(excinfo)
    assert "hapt" in problems["dataset.name"] and "synthetic" in problems["dataset.name"]
    assert "cnn1d" in problems["model.name"]


def test_bad_flags_are_reported_with_the_flag_name():
    _, problems = overrides_from_flags({"fold": "x", "lr": "fast", "magnitude_range": "1"})
    assert {p.key for p in problems} == {"--fold", "--lr", "--magnitude-range"}


def test_syntax_error_names_the_file(tmp_path, plugins):
    path = tmp_path / "broken.toml"
    path.write_text("fold = = 1")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_experiment(path, {}, plugins)


def test_experiment_is_frozen_and_overrides_are_evolve():
    experiment = Experiment()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        experiment.fold = 3  # type: ignore[misc]
    assert attrs.evolve(experiment, fold=3).fold == 3


@pytest.mark.parametrize(
    ("fold", "n_base", "target", "base"),
    [
        (0, "all", "a", ("b", "c", "d", "e")),
        (2, "all", "c", ("a", "b", "d", "e")),
        (2, 2, "c", ("a", "b")),
        (0, 1, "a", ("b",)),
        (4, 3, "e", ("a", "b", "c")),
    ],
)
def test_fold_maps_to_target_and_base_is_the_first_n_others(fold, n_base, target, base):
    experiment = Experiment(fold=fold, n_base_participants=n_base)
    resolved = resolve_fold(experiment, ("a", "b", "c", "d", "e"))
    assert resolved.target == target
    assert resolved.base == base


def test_explicit_participant_order_decides_the_fold():
    experiment = Experiment(fold=0, participants=("c", "a", "b"), n_base_participants=1)
    resolved = resolve_fold(experiment, ("a", "b", "c"))
    assert resolved.target == "c" and resolved.base == ("a",)


def test_data_problems_are_reported_with_the_others(tmp_path, plugins):
    path = tmp_path / "bad.toml"
    path.write_text('fold = 99\nbatch_size = "x"\nmode = "nope"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_experiment(path, {}, plugins)
    assert {"fold", "batch_size", "mode"} <= set(_problems(excinfo))
