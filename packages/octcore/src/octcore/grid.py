"""Grid files: fixed experiment settings plus axes whose Cartesian product is the jobs.

```toml
name = "hapt-small"                 # run name (default: the file's stem)
folds = [0, 1, 2]                   # or "all": one job per participant

[experiment]                        # fixed settings, as in an experiment file
max_epochs = 20

[axes]                              # every combination of these values is a job
mode = ["full_fine_tuning", "target_only"]
target_data_pct = [0.1, 1.0]
"model.base_channels" = [8, 16]     # dotted keys reach into [model], [dataset]…
```

The research code's ``jobs_config.json`` (a JSON list of flat job dicts) is read
as a grid whose jobs are listed one by one. Every problem in a grid is reported
at once, naming the key (``axes.mode[1]``) or the job, before anything runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from octcore.config import (
    Choice,
    Experiment,
    check_against_data,
    read_file,
    structure_experiment,
    translate_flat,
)
from octcore.errors import ConfigError, Problem

GRID_KEYS = ("name", "folds", "experiment", "axes", "description")
SECTIONS = ("model", "dataset", "augmentation")


@attrs.frozen
class Grid:
    name: str
    source: str
    experiments: tuple[Experiment, ...]
    axes: tuple[str, ...]  # the keys that vary (for tables and reports)


def load_grid(path: Path, plugins: Any) -> Grid:
    raw = read_file(path)
    source = str(path)
    if isinstance(raw, list):
        return _grid_from_job_list(raw, path, plugins)
    if not isinstance(raw, Mapping):
        raise ConfigError(source, [Problem("", "expected a table (TOML) or a list of jobs (JSON)")])
    problems = [
        Problem(key, f"unknown key (known: {', '.join(GRID_KEYS)})")
        for key in raw
        if key not in GRID_KEYS
    ]
    fixed = raw.get("experiment", {})
    axes = raw.get("axes", {})
    if not isinstance(fixed, Mapping):
        problems.append(Problem("experiment", "expected a table of experiment settings"))
        fixed = {}
    if not isinstance(axes, Mapping):
        problems.append(Problem("axes", "expected a table of lists"))
        axes = {}
    fixed = translate_flat(fixed) if path.suffix == ".json" else dict(fixed)
    axes = _flatten_axes(axes)
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            problems.append(Problem(f"axes.{key}", "expected a non-empty list of values"))
        elif key in {"fold", "folds"}:
            problems.append(Problem(f"axes.{key}", "folds are set with the top-level key 'folds'"))
    if problems:
        raise ConfigError(source, problems)
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ConfigError(source, [Problem("name", "expected a plain run name")])
    experiments = expand(fixed, axes, raw.get("folds"), plugins, source)
    return Grid(name, source, tuple(experiments), (*axes, "fold"))


def _flatten_axes(axes: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in axes.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten_axes(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    return {head: _nest(rest, value) if rest else value}


def expand(
    fixed: Mapping[str, Any],
    axes: Mapping[str, Sequence[Any]],
    folds: Any,
    plugins: Any,
    source: str,
) -> list[Experiment]:
    """Validate each axis value once, then build every combination by ``attrs.evolve``."""
    from octcore.config import merge

    base, problems = structure_experiment(fixed, plugins)
    if base is None:
        located = [
            Problem(f"experiment.{p.key}" if p.key else "experiment", p.message) for p in problems
        ]
        raise ConfigError(source, located)
    fold_values, fold_problems = _folds(folds, base, plugins)
    problems = list(fold_problems)
    # one validated experiment per axis value; combinations copy fields from them
    patches: dict[str, list[Experiment]] = {}
    for key, values in axes.items():
        patches[key] = []
        for index, value in enumerate(values):
            single, found = structure_experiment(merge(fixed, _nest(key, value)), plugins)
            problems += [Problem(f"axes.{key}[{index}]", p.message) for p in found]
            if single is not None:
                patches[key].append(single)
    if problems:
        raise ConfigError(source, _unique(problems))
    experiments: list[Experiment] = []
    keys = list(patches)
    for combination in itertools.product(*(patches[k] for k in keys)):
        experiment = base
        for key, single in zip(keys, combination, strict=True):
            experiment = _copy_axis(experiment, single, key)
        for fold in fold_values:
            experiments.append(attrs.evolve(experiment, fold=fold))
    _check_data(experiments, plugins, source)
    return experiments


def _copy_axis(experiment: Experiment, single: Experiment, key: str) -> Experiment:
    head, _, rest = key.partition(".")
    if not rest:
        return attrs.evolve(experiment, **{head: getattr(single, head)})
    current, chosen = getattr(experiment, head), getattr(single, head)
    if head in {"model", "dataset"}:
        if rest == "name" or current.name != chosen.name:
            return attrs.evolve(experiment, **{head: chosen})
        options = attrs.evolve(current.options, **{rest: getattr(chosen.options, rest)})
        return attrs.evolve(experiment, **{head: Choice(current.name, options)})
    nested = attrs.evolve(current, **{rest: getattr(chosen, rest)})
    return attrs.evolve(experiment, **{head: nested})


def _folds(folds: Any, base: Experiment, plugins: Any) -> tuple[list[int], list[Problem]]:
    if folds is None:
        return [base.fold], []
    spec = plugins.datasets.get(base.dataset.name)
    try:
        count = len(base.participants or spec.participants(base.dataset.options))
    except Exception as exc:
        return [], [Problem("experiment.dataset", str(exc))]
    if folds == "all":
        return list(range(count)), []
    if isinstance(folds, list) and folds and all(type(f) is int for f in folds):
        bad = [f for f in folds if not 0 <= f < count]
        if bad:
            return [], [
                Problem("folds", f"folds {bad} are outside 0..{count - 1} ({count} participants)")
            ]
        return list(dict.fromkeys(folds)), []
    return [], [Problem("folds", 'expected "all" or a non-empty list of fold indices')]


def _check_data(experiments: Sequence[Experiment], plugins: Any, source: str) -> None:
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    for experiment in experiments:
        key = (experiment.dataset, experiment.participants, experiment.fold,
               experiment.n_base_participants)  # fmt: skip
        if key in seen:
            continue
        seen.add(key)
        for problem in check_against_data(experiment, plugins):
            problems.append(Problem(problem.key, f"{problem.message} (fold {experiment.fold})"))
    if problems:
        raise ConfigError(source, _unique(problems))


def _grid_from_job_list(jobs: list[Any], path: Path, plugins: Any) -> Grid:
    """The research code's jobs_config.json: a list of flat job dicts."""
    experiments: list[Experiment] = []
    problems: list[Problem] = []
    for index, job in enumerate(jobs):
        if not isinstance(job, Mapping):
            problems.append(Problem(f"[{index}]", "expected a job object"))
            continue
        experiment, found = structure_experiment(translate_flat(job), plugins)
        if experiment is not None:
            found = check_against_data(experiment, plugins)
        problems += [Problem(f"[{index}].{p.key}", p.message) for p in found]
        if experiment is not None and not found:
            experiments.append(experiment)
    if not jobs:
        problems.append(Problem("", "the job list is empty"))
    if problems:
        raise ConfigError(str(path), problems)
    varying = sorted(
        {k for job in jobs for k in job if len({repr(j.get(k)) for j in jobs}) > 1}
        - {"prefix", "device"}
    )
    return Grid(path.stem, str(path), tuple(experiments), tuple(varying))


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
