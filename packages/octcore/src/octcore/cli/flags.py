"""Command-line flags → experiment overrides (the research scripts' flag names).

invoke hands flag values over as strings; each is converted to the type its
experiment key expects, and every bad flag is reported at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from octcore.errors import Problem

INT_FLAGS = {
    "fold", "batch_size", "max_epochs", "early_stopping_patience",
    "early_stopping_patience_target", "seed", "seed_finetune", "base_channels", "num_blocks",
}  # fmt: skip
FLOAT_FLAGS = {
    "lr", "target_data_pct", "target_batch_pct", "pos_weight", "dropout", "jitter_std",
    "aug_prob", "weight_decay",
}  # fmt: skip
STR_FLAGS = {"mode", "prefix", "device", "early_stopping_metric", "model", "data_path"}
SWITCHES = {"use_dilation", "use_residual", "use_augmentation"}
NULLABLE = {"target_batch_pct", "seed_finetune", "prefix"}


def overrides_from_flags(flags: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Flags left at their default (``None``, or ``False`` for switches) are not overrides."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, raw in flags.items():
        flag = "--" + key.replace("_", "-")
        if raw is None or (key in SWITCHES and raw is False):
            continue
        try:
            out[key] = _convert(key, raw)
        except ValueError as exc:
            problems.append(Problem(flag, str(exc)))
    if "dataset" in out:
        out["dataset"] = {"name": out["dataset"]}
    return out, problems


def _convert(key: str, raw: Any) -> Any:
    if key in SWITCHES:
        return bool(raw)
    text = str(raw).strip()
    if key in NULLABLE and text.lower() in {"none", "null"}:
        return None
    if key in INT_FLAGS:
        return _number(text, int, "an integer")
    if key in FLOAT_FLAGS:
        return _number(text, float, "a number")
    if key == "participants":
        items = [p for p in text.replace(",", " ").split() if p]
        if not items:
            raise ValueError("expected participant ids separated by commas or spaces")
        return items
    if key == "n_base_participants":
        return text if text == "all" else _number(text, int, '"all" or an integer')
    if key == "magnitude_range":
        parts = text.replace(",", " ").split()
        if len(parts) != 2:
            raise ValueError(f"expected two numbers LOW,HIGH, got {text!r}")
        return [_number(p, float, "a number") for p in parts]
    return text


def _number(text: str, kind: type, what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"expected {what}, got {text!r}") from None
