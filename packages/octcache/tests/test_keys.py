"""The one key: which fields change it, which do not, and that every process agrees."""

from __future__ import annotations

import json
import subprocess

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from octcache.keys import BaseSpec, KeyIndex, base_key, base_spec, data_identity
from octcache.testing import PYTHON, SMALL, subprocess_env

# Fields of an experiment that change what its base phase computes, and values to try.
CHANGES_BASE = {
    "lr": st.sampled_from([1e-4, 1e-3, 3e-3]),
    "weight_decay": st.sampled_from([0.0, 0.05]),
    "batch_size": st.sampled_from([8, 16, 128]),
    "max_epochs": st.sampled_from([2, 3]),
    "early_stopping_patience": st.sampled_from([1, 2, 9]),
    "early_stopping_metric": st.just("f1"),
    "seed": st.integers(0, 1000).filter(lambda s: s != 42),
    "normalize": st.just(False),
    "pos_weight": st.sampled_from([2.0, 5.0]),  # the default synthetic data set is binary
    "n_base_participants": st.sampled_from([1, 2]),
    "model": st.sampled_from(
        [
            {"name": "cnn1d", "base_channels": 8},
            {"name": "cnn1d", "base_channels": 4, "dropout": 0.1},
        ]
    ),
    "augmentation": st.just({"enabled": True}),
    "dataset": st.sampled_from(
        [{**SMALL["dataset"], "seed": 7}, {**SMALL["dataset"], "train": 12}]
    ),
}
# Fields that only the target phase or the machinery reads.
KEEPS_BASE = {
    "mode": st.sampled_from(["target_only_fine_tuning", "last_layer_only", "base_only"]),
    "target_data_pct": st.sampled_from([0.01, 0.5]),
    "target_batch_pct": st.sampled_from([0.0, 0.25, 1.0]),
    "seed_finetune": st.integers(0, 1000),
    "early_stopping_patience_target": st.integers(1, 50),
    "device": st.sampled_from(["cpu", "cuda:1", "3"]),
    "prefix": st.text(max_size=8),
}

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def key_of(experiment, plugins) -> str:
    return base_key(base_spec(experiment, data_identity(experiment, plugins)))


@SETTINGS
@given(field=st.sampled_from(sorted(CHANGES_BASE)), data=st.data())
def test_every_field_that_changes_base_training_changes_the_key(make, plugins, field, data):
    value = data.draw(CHANGES_BASE[field])
    changed = make(**{field: value})
    assume(changed != make())  # a draw equal to the default changes nothing
    assert key_of(make(), plugins) != key_of(changed, plugins)


@SETTINGS
@given(changes=st.fixed_dictionaries({}, optional=KEEPS_BASE))
def test_fields_the_base_phase_never_reads_keep_the_key(make, plugins, changes):
    assert key_of(make(), plugins) == key_of(make(**changes), plugins)


def test_folds_with_the_same_base_participants_share_a_key(make, plugins):
    # 4 participants p00..p03, one base participant: folds 1, 2, 3 all train on p00
    keys = [key_of(make(fold=f, n_base_participants=1), plugins) for f in range(4)]
    assert keys[1] == keys[2] == keys[3] != keys[0]
    # every other participant as base: each fold has its own base set
    assert len({key_of(make(fold=f), plugins) for f in range(4)}) == 4


def test_equivalent_spellings_give_one_key(make, plugins):
    assert key_of(make(n_base_participants="all"), plugins) == key_of(
        make(n_base_participants=3), plugins
    )
    assert key_of(make(lr=1e-3), plugins) == key_of(make(lr=0.001), plugins)
    assert key_of(make(weight_decay=0), plugins) == key_of(make(weight_decay=0.0), plugins)
    listed = make(participants=["p00", "p01", "p02", "p03"])
    assert key_of(listed, plugins) == key_of(make(), plugins)
    # a disabled augmentation's settings do not matter
    assert key_of(make(augmentation={"enabled": False, "jitter_std": 0.5}), plugins) == key_of(
        make(), plugins
    )


def test_field_order_does_not_matter(plugins):
    from octcore.config import experiment_from_dict

    forward = dict(SMALL, lr=1e-3, batch_size=16, seed=3)
    backward = dict(reversed(list(forward.items())))
    backward["dataset"] = dict(reversed(list(SMALL["dataset"].items())))
    a = experiment_from_dict(forward, plugins, source="a")
    b = experiment_from_dict(backward, plugins, source="b")
    assert key_of(a, plugins) == key_of(b, plugins)


def test_pos_weight_matters_only_for_binary_data(make, plugins):
    multi = {**SMALL["dataset"], "num_classes": 3}
    assert key_of(make(dataset=multi), plugins) == key_of(
        make(dataset=multi, pos_weight=4.0), plugins
    )


def test_a_mode_without_base_has_no_key(make, plugins):
    with pytest.raises(ValueError, match="trains no base"):
        key_of(make(mode="target_only"), plugins)


def test_spec_round_trips_through_json(make, plugins):
    spec = base_spec(make(augmentation={"enabled": True}), data_identity(make(), plugins))
    again = BaseSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert base_key(again) == base_key(spec)
    assert attrs.asdict(again) == attrs.asdict(spec)


def test_key_index_agrees_with_the_function(make, plugins):
    index = KeyIndex(plugins)
    for fields in (
        {},
        {"fold": 2},
        {"lr": 1e-2, "mode": "base_only"},
        {"augmentation": {"enabled": True}},
    ):
        experiment = make(**fields)
        assert index.key(experiment)[0] == key_of(experiment, plugins)


PROBE = """
import json, sys
from octcore.plugins import make_plugin_manager
from octcore.config import experiment_from_dict
from octcache.keys import base_key, base_spec, data_identity
plugins = make_plugin_manager()
out = []
for fields in json.loads(sys.argv[1]):
    experiment = experiment_from_dict(fields, plugins, source="probe")
    out.append(base_key(base_spec(experiment, data_identity(experiment, plugins))))
print(json.dumps(out))
"""


def test_planning_and_training_processes_agree(make, plugins, tmp_path, repo):
    """Keys computed by separate interpreters (hash randomisation differs) match the
    planner's, and the key a job process recomputes from the config.json it wrote."""
    from octcache.planner import make_plan
    from octcache.store import Store

    variants = [
        dict(SMALL),
        dict(SMALL, fold=1, lr=0.001),
        dict(SMALL, fold=2, n_base_participants="2"),
    ]
    experiments = [make(**{k: v for k, v in f.items() if k not in SMALL}) for f in variants]
    planned = make_plan(experiments, Store(str(tmp_path / "s")), plugins)
    expected = [planned.keys[j.id] for j in planned.plan.jobs if j.kind == "experiment"]
    results = []
    for seed in ("1", "2"):
        done = subprocess.run(
            [PYTHON, "-c", PROBE, json.dumps(variants)],
            capture_output=True,
            text=True,
            check=True,
            cwd=repo,
            env=subprocess_env(PYTHONHASHSEED=seed),
        )
        results.append(json.loads(done.stdout))
    assert results[0] == results[1] == expected
