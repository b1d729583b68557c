"""Grid files: expansion into experiments, and every validation error named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from octcore.errors import ConfigError
from octcore.grid import load_grid
from octcore.plugins import make_plugin_manager

SYNTH = 'dataset = {name = "synthetic", participants = 4}'


@pytest.fixture(scope="module")
def core_plugins():
    return make_plugin_manager(strict=True, entry_points_=False)


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path, plugins) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_grid(path, plugins)
    return [str(p) for p in caught.value.problems]


def test_axes_make_the_cartesian_product_times_folds(tmp_path, core_plugins):
    path = write(
        tmp_path,
        f"""
folds = [0, 2]
[experiment]
{SYNTH}
max_epochs = 3
[axes]
mode = ["full_fine_tuning", "target_only"]
target_data_pct = [0.25, 0.5, 1.0]
"model.base_channels" = [4, 8]
""",
    )
    grid = load_grid(path, core_plugins)
    assert grid.name == "study"
    assert len(grid.experiments) == 2 * 3 * 2 * 2
    assert grid.axes == ("mode", "target_data_pct", "model.base_channels", "fold")
    points = {
        (e.mode, e.target_data_pct, e.model.options.base_channels, e.fold) for e in grid.experiments
    }
    assert len(points) == len(grid.experiments)
    assert all(e.max_epochs == 3 for e in grid.experiments)
    assert {e.fold for e in grid.experiments} == {0, 2}


def test_folds_all_is_one_job_per_participant(tmp_path, core_plugins):
    path = write(tmp_path, f'name = "every"\nfolds = "all"\n[experiment]\n{SYNTH}\n')
    grid = load_grid(path, core_plugins)
    assert grid.name == "every"
    assert [e.fold for e in grid.experiments] == [0, 1, 2, 3]


def test_unknown_top_level_key_is_named(tmp_path, core_plugins):
    path = write(tmp_path, f"fodls = [0]\n[experiment]\n{SYNTH}\n")
    found = problems(path, core_plugins)
    assert len(found) == 1 and found[0].startswith("fodls: unknown key")


def test_unknown_experiment_key_is_named(tmp_path, core_plugins):
    path = write(tmp_path, f"[experiment]\n{SYNTH}\nlearning_rate = 0.1\n")
    assert any("learning_rate" in p and "unknown key" in p for p in problems(path, core_plugins))


def test_bad_axis_value_is_reported_with_its_index(tmp_path, core_plugins):
    path = write(
        tmp_path,
        f"""
[experiment]
{SYNTH}
[axes]
mode = ["target_only", "nonsense"]
batch_size = [16, "32"]
""",
    )
    found = problems(path, core_plugins)
    assert any(p.startswith("axes.mode[1]:") for p in found), found
    assert any(p.startswith("axes.batch_size[1]:") for p in found), found
    assert not any(p.startswith("axes.mode[0]") for p in found)


def test_fold_past_the_participant_list(tmp_path, core_plugins):
    path = write(tmp_path, f"folds = [0, 4]\n[experiment]\n{SYNTH}\n")
    found = problems(path, core_plugins)
    assert found == ["folds: folds [4] are outside 0..3 (4 participants)"]


def test_every_problem_at_once(tmp_path, core_plugins):
    path = write(
        tmp_path,
        f"""
folds = [7]
[experiment]
{SYNTH}
[axes]
mode = ["nonsense"]
""",
    )
    found = problems(path, core_plugins)
    assert {p.split(":")[0] for p in found} == {"folds", "axes.mode[0]"}


def test_axis_that_is_not_a_list(tmp_path, core_plugins):
    path = write(tmp_path, f"[experiment]\n{SYNTH}\n[axes]\nlr = 0.1\n")
    assert problems(path, core_plugins) == ["axes.lr: expected a non-empty list of values"]


def test_folds_as_an_axis_is_redirected(tmp_path, core_plugins):
    path = write(tmp_path, f"[experiment]\n{SYNTH}\n[axes]\nfold = [0, 1]\n")
    assert "top-level key 'folds'" in problems(path, core_plugins)[0]


def test_research_job_list_is_a_grid(tmp_path, core_plugins):
    import json

    jobs = [
        {"fold": fold, "mode": mode, "dataset": "synthetic", "max_epochs": 1, "device": "cpu"}
        for fold in (0, 1)
        for mode in ("full_fine_tuning", "target_only")
    ]
    path = write(tmp_path, json.dumps(jobs), "jobs_config.json")
    grid = load_grid(path, core_plugins)
    assert len(grid.experiments) == 4
    assert set(grid.axes) == {"fold", "mode"}


def test_shipped_example_grids_load(core_plugins):
    root = Path(__file__).resolve().parents[3] / "grids"
    if not root.is_dir():
        pytest.skip("no grids/ folder next to the packages")
    for path in sorted(root.glob("*.toml")) + sorted(root.glob("*.json")):
        grid = load_grid(path, core_plugins)
        assert grid.experiments, path
