"""Job identity: one function, stable across processes, blind to fields that do not matter."""

from __future__ import annotations

import json
import subprocess
import sys

import attrs
import pytest

from octcore.config import experiment_from_dict
from octcore.jobs import job_id
from octcore.plugins import make_plugin_manager

PARTICIPANTS = ("p00", "p01", "p02", "p03")
BASE = {
    "dataset": {"name": "synthetic", "participants": 4},
    "model": {"name": "cnn1d", "base_channels": 4},
    "mode": "full_fine_tuning",
    "fold": 1,
    "lr": 0.001,
    "target_batch_pct": 0.5,
}


@pytest.fixture(scope="module")
def core_plugins():
    return make_plugin_manager(strict=True, entry_points_=False)


def ident(data, plugins):
    return job_id(experiment_from_dict(data, plugins, source="test"), PARTICIPANTS)


def test_same_id_in_another_process(core_plugins):
    here = ident(BASE, core_plugins)
    code = (
        "import json,sys\n"
        "from octcore.config import experiment_from_dict\n"
        "from octcore.jobs import job_id\n"
        "from octcore.plugins import make_plugin_manager\n"
        "p = make_plugin_manager(entry_points_=False)\n"
        "e = experiment_from_dict(json.loads(sys.argv[1]), p, source='x')\n"
        "print(job_id(e, ('p00','p01','p02','p03')))\n"
    )
    there = subprocess.run(
        [sys.executable, "-c", code, json.dumps(BASE)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert there == here
    assert len(here) == 16 and int(here, 16) >= 0


def test_key_order_does_not_matter(core_plugins):
    reordered = dict(reversed(list(BASE.items())))
    reordered["model"] = {"base_channels": 4, "name": "cnn1d"}
    assert ident(reordered, core_plugins) == ident(BASE, core_plugins)


@pytest.mark.parametrize(
    "change", [{"device": "cpu"}, {"device": "cuda:1"}, {"prefix": "other-run"}]
)
def test_irrelevant_fields_do_not_matter(core_plugins, change):
    assert ident({**BASE, **change}, core_plugins) == ident(BASE, core_plugins)


@pytest.mark.parametrize(
    "spelling",
    [
        {"lr": 1e-3},  # one float, two spellings
        {"n_base_participants": 3},  # every remaining participant == "all"
        {"seed_finetune": 42},  # unset fine-tuning seed == the seed
        {"participants": list(PARTICIPANTS)},  # the data set's own list == unset
    ],
)
def test_equivalent_spellings_share_an_id(core_plugins, spelling):
    assert ident({**BASE, **spelling}, core_plugins) == ident(BASE, core_plugins)


def test_batch_fraction_is_ignored_where_batches_are_not_composed(core_plugins):
    a = {**BASE, "mode": "target_only", "target_batch_pct": 0.25}
    b = {**BASE, "mode": "target_only", "target_batch_pct": 0.75}
    assert ident(a, core_plugins) == ident(b, core_plugins)


@pytest.mark.parametrize(
    "change",
    [
        {"lr": 0.002},
        {"fold": 2},
        {"mode": "target_only_fine_tuning"},
        {"target_batch_pct": 0.25},
        {"seed": 1},
        {"model": {"name": "cnn1d", "base_channels": 8}},
        {"n_base_participants": 2},
        {"dataset": {"name": "synthetic", "participants": 4, "seed": 9}},
    ],
)
def test_fields_that_change_results_change_the_id(core_plugins, change):
    assert ident({**BASE, **change}, core_plugins) != ident(BASE, core_plugins)


def test_two_grids_sharing_a_point_share_its_id(core_plugins):
    experiment = experiment_from_dict(BASE, core_plugins, source="a")
    other = attrs.evolve(experiment, prefix="grid-b", device="cpu")
    assert job_id(experiment, PARTICIPANTS) == job_id(other, PARTICIPANTS)
