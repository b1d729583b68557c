"""The typed ``Experiment``: one leave-one-participant-out personalisation run.

An experiment is built from defaults, then a file (TOML, or the research code's
JSON job dicts), then command-line flags, in that order. Every problem of that
input (an unknown key, a wrong type, an impossible value, a fold past the
participant list…) is collected and raised at once as ``ConfigError`` before any
work starts.

Vocabulary (the one researchers already use):

``fold``
    index into ``participants``; that participant is the **target**.
``n_base_participants``
    ``"all"`` or N: the base set is the first N of the remaining participants,
    in list order.
``target_data_pct``
    fraction in (0, 1] of the target's training windows kept (seeded by ``seed``,
    so it is the same subset for every mode of one fold and seed).
``target_batch_pct``
    only for ``full_fine_tuning``. Unset: batches are drawn uniformly from base ∪
    target windows. Set to p in [0, 1]: every batch of B holds k = round(B·p)
    target windows (at least 1 when p > 0, at most B − 1 when p < 1) and B − k
    base windows; an epoch is one pass over the target's training windows (over
    the base windows when p = 0) while the other stream cycles through fresh
    permutations without replacement.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import validators as v
from cattrs.errors import BaseValidationError

from octcore.converter import converter, structure_problems
from octcore.errors import ConfigError, Problem, UnknownNameError

MODES: tuple[str, ...] = (
    "full_fine_tuning",
    "target_only_fine_tuning",
    "target_only",
    "base_only",
    "last_layer_only",
)
# Modes whose first phase trains a base model on the base participants.
MODES_WITH_BASE: frozenset[str] = frozenset(MODES) - {"target_only"}
# Modes whose second phase adapts to the target.
MODES_WITH_TARGET: frozenset[str] = frozenset(MODES) - {"base_only"}
STOP_METRICS: tuple[str, ...] = ("loss", "f1")


def _fraction(open_low: bool):
    def check(_: Any, attribute: attrs.Attribute, value: float | None) -> None:
        if value is None:
            return
        low_ok = value > 0 if open_low else value >= 0
        if not (low_ok and value <= 1 and math.isfinite(value)):
            span = "(0, 1]" if open_low else "[0, 1]"
            raise ValueError(f"expected a fraction in {span}, got {value}")

    return check


def _positive(_: Any, attribute: attrs.Attribute, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"expected a positive number, got {value}")


def _device(_: Any, attribute: attrs.Attribute, value: str) -> None:
    ok = value in {"auto", "cpu", "cuda", "mps"} or value.isdigit()
    ok = ok or (value.startswith("cuda:") and value[5:].isdigit())
    if not ok:
        raise ValueError(f"expected auto, cpu, cuda, cuda:N, N or mps, got {value!r}")


def _n_base(_: Any, attribute: attrs.Attribute, value: int | str) -> None:
    if isinstance(value, str) and value != "all":
        raise ValueError(f'expected "all" or a positive integer, got {value!r}')
    if isinstance(value, int) and value < 1:
        raise ValueError(f'expected "all" or a positive integer, got {value}')


def _magnitude(_: Any, attribute: attrs.Attribute, value: tuple[float, float]) -> None:
    low, high = value
    if not (0 < low <= high):
        raise ValueError(f"expected 0 < low <= high, got [{low}, {high}]")


@attrs.frozen
class Augmentation:
    """Batch augmentation, vectorised on the batch's device.

    With probability ``probability`` each window gets Gaussian jitter of std
    ``jitter_std`` and a magnitude scale drawn from ``magnitude_range``.
    """

    enabled: bool = False
    jitter_std: float = attrs.field(default=0.005, validator=v.ge(0.0))
    magnitude_range: tuple[float, float] = attrs.field(default=(0.98, 1.02), validator=_magnitude)
    probability: float = attrs.field(default=0.3, validator=_fraction(open_low=False))


@attrs.frozen
class Choice:
    """A named plugin choice with its typed options (``[dataset]`` or ``[model]``)."""

    name: str
    options: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **(converter.unstructure(self.options) or {})}


@attrs.frozen
class Experiment:
    """Everything that defines one personalisation experiment (see module docs)."""

    fold: int = attrs.field(default=0, validator=v.ge(0))
    participants: tuple[str, ...] | None = None
    n_base_participants: int | str = attrs.field(default="all", validator=_n_base)
    mode: str = attrs.field(default="full_fine_tuning", validator=v.in_(MODES))
    target_data_pct: float = attrs.field(default=1.0, validator=_fraction(open_low=True))
    target_batch_pct: float | None = attrs.field(default=None, validator=_fraction(open_low=False))
    batch_size: int = attrs.field(default=64, validator=v.ge(1))
    lr: float = attrs.field(default=1e-3, validator=_positive)
    weight_decay: float = attrs.field(default=0.01, validator=v.ge(0.0))
    max_epochs: int = attrs.field(default=50, validator=[v.ge(1), v.le(100_000)])
    early_stopping_patience: int = attrs.field(default=8, validator=v.ge(1))
    early_stopping_patience_target: int = attrs.field(default=8, validator=v.ge(1))
    early_stopping_metric: str = attrs.field(default="loss", validator=v.in_(STOP_METRICS))
    seed: int = 42
    seed_finetune: int | None = None
    pos_weight: float = attrs.field(default=1.0, validator=_positive)
    normalize: bool = True
    device: str = attrs.field(default="auto", validator=_device)
    prefix: str | None = None
    dataset: Choice = attrs.field(factory=lambda: Choice("hapt"))
    model: Choice = attrs.field(factory=lambda: Choice("cnn1d"))
    augmentation: Augmentation = attrs.field(factory=Augmentation)

    @property
    def finetune_seed(self) -> int:
        return self.seed if self.seed_finetune is None else self.seed_finetune

    def to_dict(self) -> dict[str, Any]:
        return unstructure_experiment(self)


@attrs.frozen
class Fold:
    """Who plays which role in one experiment, resolved against the data."""

    participants: tuple[str, ...]
    target: str
    base: tuple[str, ...]


def resolve_fold(experiment: Experiment, dataset_participants: tuple[str, ...]) -> Fold:
    participants = experiment.participants or dataset_participants
    target = participants[experiment.fold]
    others = tuple(p for p in participants if p != target)
    n = experiment.n_base_participants
    base = others if n == "all" else others[: int(n)]
    return Fold(tuple(participants), target, base)


# --- structuring ----------------------------------------------------------------


def _structure_n_base(value: Any, _: type) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f'expected "all" or an integer, got {type(value).__name__} {value!r}')
    if isinstance(value, str) and value.isdigit():
        return int(value)  # the research code passed it as a string
    return value


def _structure_participants(value: Any, _: type) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list of participant ids, got {type(value).__name__}")
    bad = [p for p in value if isinstance(p, bool) or not isinstance(p, str | int)]
    if bad:
        raise TypeError(f"participant ids are strings (or integers), got {bad!r}")
    return tuple(str(p) for p in value)


def _structure_device(value: Any, _: type) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"expected a device name or GPU index, got {value!r}")
    return str(value)


converter.register_structure_hook(int | str, _structure_n_base)
converter.register_structure_hook(tuple[str, ...] | None, _structure_participants)


def structure_experiment(
    data: Mapping[str, Any], plugins: Any
) -> tuple[Experiment | None, list[Problem]]:
    """Turn a plain mapping into an ``Experiment``; return it and every problem found."""
    experiment, problems = _structure_partially(data, plugins)
    return (None if problems else experiment), problems


def _structure_partially(
    data: Mapping[str, Any], plugins: Any
) -> tuple[Experiment | None, list[Problem]]:
    """Like ``structure_experiment``, but with problems it still returns what could be
    built (bad keys at their defaults), so later checks can report their problems too."""
    problems: list[Problem] = []
    data = dict(data)
    choices: dict[str, Choice] = {}
    for key, registry in (("dataset", plugins.datasets), ("model", plugins.models)):
        choice, found = _structure_choice(key, data.pop(key, {}), registry)
        problems += found
        if choice is not None:
            choices[key] = choice
    if "device" in data:
        try:
            data["device"] = _structure_device(data["device"], str)
        except TypeError as exc:
            problems.append(Problem("device", str(exc)))
            data.pop("device")
    with attrs.validators.disabled():
        try:
            experiment = converter.structure(data, Experiment)
        except BaseValidationError as exc:
            # report type problems, then structure the rest to find value problems too
            found = structure_problems(exc)
            problems += found
            broken = {p.key.split(".")[0].split("[")[0] for p in found}
            rest = {k: v for k, v in data.items() if k not in broken}
            try:
                experiment = converter.structure(rest, Experiment)
            except BaseValidationError:
                return None, problems
        experiment = attrs.evolve(experiment, **choices)
    reported = {p.key.split(".")[0] for p in problems}
    problems += [
        p
        for p in validate_fields(experiment)
        if p.key.split(".")[0] not in {"dataset", "model", *reported}
    ]
    problems += _cross_field_problems(experiment)
    return experiment, problems


def _structure_choice(key: str, raw: Any, registry: Any) -> tuple[Choice | None, list[Problem]]:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name", ""), str):
        return None, [Problem(key, "expected a table with a string 'name' and its options")]
    raw = dict(raw)
    name = raw.pop("name", "hapt" if key == "dataset" else "cnn1d")
    try:
        spec = registry.get(name)
    except UnknownNameError as exc:
        return None, [Problem(f"{key}.name", str(exc))]
    options_cls = getattr(spec, "options_cls", None) or spec.params_cls
    with attrs.validators.disabled():
        try:
            options = converter.structure(raw, options_cls)
        except BaseValidationError as exc:
            return None, structure_problems(exc, prefix=key)
    problems = validate_fields(options, prefix=key)
    return Choice(spec.name, options), problems


def validate_fields(instance: Any, prefix: str = "") -> list[Problem]:
    """Run every attrs validator of ``instance`` (recursively) and collect all failures."""
    problems: list[Problem] = []
    for field in attrs.fields(type(instance)):
        value = getattr(instance, field.name)
        key = f"{prefix}.{field.name}" if prefix else field.name
        if field.validator is not None:
            try:
                field.validator(instance, field, value)
            except (ValueError, TypeError) as exc:
                problems.append(Problem(key, _validator_message(exc)))
        if attrs.has(type(value)):
            problems += validate_fields(value, key)
        elif isinstance(value, Choice) and attrs.has(type(value.options)):
            problems += validate_fields(value.options, key)
    return problems


def _validator_message(exc: Exception) -> str:
    # attrs' built-in validators put a tuple in args; keep their first, readable part
    text = exc.args[0] if exc.args else str(exc)
    return text if isinstance(text, str) else str(text)


def _cross_field_problems(experiment: Experiment) -> list[Problem]:
    problems = []
    if experiment.participants is not None:
        seen: set[str] = set()
        duplicates = sorted({p for p in experiment.participants if p in seen or seen.add(p)})
        if duplicates:
            problems.append(Problem("participants", f"listed more than once: {duplicates}"))
        if len(experiment.participants) < 2:
            problems.append(Problem("participants", "need at least 2 (a target and a base)"))
    if experiment.mode == "base_only" and experiment.target_data_pct != 1.0:
        pass  # harmless: base_only never reads target training data
    return problems


def check_against_data(experiment: Experiment, plugins: Any) -> list[Problem]:
    """Problems that need the data set's participant list (cheap: no tensors load)."""
    spec = plugins.datasets.get(experiment.dataset.name)
    try:
        available = tuple(spec.participants(experiment.dataset.options))
    except Exception as exc:
        return [Problem("dataset", str(exc))]
    problems = []
    participants = experiment.participants or available
    if experiment.participants is not None:
        unknown = [p for p in experiment.participants if p not in available]
        if unknown:
            shown = ", ".join(available[:12]) + (" …" if len(available) > 12 else "")
            problems.append(
                Problem("participants", f"not in the data set: {unknown} (it has: {shown})")
            )
    if experiment.fold >= len(participants):
        problems.append(
            Problem(
                "fold",
                f"fold {experiment.fold} is past the participant list "
                f"(0..{len(participants) - 1} for {len(participants)} participants)",
            )
        )
    n = experiment.n_base_participants
    if isinstance(n, int) and n > len(participants) - 1:
        problems.append(
            Problem(
                "n_base_participants",
                f"{n} base participants requested, only {len(participants) - 1} "
                "remain besides the target",
            )
        )
    return problems


# --- files and overrides -----------------------------------------------------------

# Flat keys of the research code's job dicts and flags, and where they live now.
RESEARCH_KEYS: dict[str, tuple[str, ...]] = {
    "base_channels": ("model", "base_channels"),
    "num_blocks": ("model", "num_blocks"),
    "use_dilation": ("model", "use_dilation"),
    "use_residual": ("model", "use_residual"),
    "dropout": ("model", "dropout"),
    "use_augmentation": ("augmentation", "enabled"),
    "jitter_std": ("augmentation", "jitter_std"),
    "magnitude_range": ("augmentation", "magnitude_range"),
    "aug_prob": ("augmentation", "probability"),
}
# Research keys that never changed results (the data decides the window size).
RESEARCH_IGNORED: frozenset[str] = frozenset({"window_size"})


def translate_flat(data: Mapping[str, Any]) -> dict[str, Any]:
    """Map the research code's flat keys (``base_channels``, ``data_path``…) to nested ones."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in RESEARCH_IGNORED:
            continue
        if key in RESEARCH_KEYS:
            section, name = RESEARCH_KEYS[key]
            out.setdefault(section, {})
            if isinstance(out[section], dict):
                out[section][name] = value
        elif key == "data_path":
            out.setdefault("dataset", {}).update({"name": "pt-dir", "path": value})
        elif key == "model" and isinstance(value, str):
            out.setdefault("model", {})["name"] = value
        elif key in {"dataset", "model", "augmentation"} and isinstance(value, Mapping):
            out.setdefault(key, {}).update(value)
        else:
            out[key] = value
    return out


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge two plain mappings; ``override`` wins."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_file(path: Path) -> Any:
    """Read TOML or JSON; a syntax error is a ``ConfigError`` naming the file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), [Problem("", f"cannot read: {exc.strerror}")]) from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            str(path), [Problem("", f"not valid {path.suffix[1:].upper()}: {exc}")]
        ) from None


def load_experiment(
    path: Path | None, overrides: Mapping[str, Any], plugins: Any, *, check_data: bool = True
) -> Experiment:
    """Defaults ← file ← overrides, structured and validated, or one ``ConfigError``."""
    data: dict[str, Any] = {}
    source = "command line"
    if path is not None:
        source = str(path)
        raw = read_file(path)
        if not isinstance(raw, Mapping):
            raise ConfigError(source, [Problem("", "expected a table of experiment settings")])
        data = translate_flat(raw) if path.suffix == ".json" else dict(raw)
    data = merge(data, translate_flat(overrides))
    return experiment_from_dict(data, plugins, source=source, check_data=check_data)


def experiment_from_dict(
    data: Mapping[str, Any], plugins: Any, *, source: str, check_data: bool = True
) -> Experiment:
    experiment, problems = _structure_partially(data, plugins)
    if experiment is not None and check_data:
        # data checks run even when other keys are wrong, so one pass shows everything
        reported = {p.key.split(".")[0] for p in problems}
        if not reported & {"dataset", "participants"}:
            problems += [
                p for p in check_against_data(experiment, plugins) if p.key not in reported
            ]
    if problems or experiment is None:
        raise ConfigError(source, problems)
    return experiment


def unstructure_experiment(experiment: Experiment) -> dict[str, Any]:
    data = converter.unstructure(experiment)
    data["dataset"] = experiment.dataset.as_dict()
    data["model"] = experiment.model.as_dict()
    if data["participants"] is not None:
        data["participants"] = list(data["participants"])
    data["augmentation"]["magnitude_range"] = list(experiment.augmentation.magnitude_range)
    return data


def experiment_to_json(experiment: Experiment) -> str:
    return json.dumps(unstructure_experiment(experiment), indent=2, sort_keys=True)
