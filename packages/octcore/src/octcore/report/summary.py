"""Per-configuration statistics over folds, with incompleteness made visible.

A configuration is every parameter of a job except the fold. Its statistics are
computed over the folds that finished, but a configuration with any fold
missing or failed is marked incomplete and its absent folds are listed: a mean
over 5 of 7 folds is not comparable with a mean over 7.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from octcore.report.collect import SEED_KEYS, JobRow

# (column, title) of the statistics shown for each configuration
SUMMARY_METRICS: tuple[tuple[str, str], ...] = (
    ("adapted_test_macro_f1", "adapted test macro-F1"),
    ("adapted_test_accuracy", "adapted test accuracy"),
    ("base_test_macro_f1", "base test macro-F1"),
    ("base_test_accuracy", "base test accuracy"),
    ("gain_macro_f1", "gain macro-F1"),
    ("gain_accuracy", "gain accuracy"),
)

Key = tuple[tuple[str, Any], ...]


@attrs.frozen
class Stat:
    """Mean and sample standard deviation (None below 2 values) of n values."""

    n: int
    mean: float | None
    sd: float | None

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stat:
        present = [v for v in values if v is not None and math.isfinite(v)]
        if not present:
            return cls(0, None, None)
        sd = statistics.stdev(present) if len(present) > 1 else None
        return cls(len(present), statistics.fmean(present), sd)

    def text(self, digits: int = 4) -> str:
        if self.mean is None:
            return "—"
        if self.sd is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"


@attrs.frozen
class Absent:
    """A planned fold of a configuration without a result."""

    fold: int
    target: str
    state: str
    job: str
    reason: str = ""


@attrs.frozen
class ConfigSummary:
    key: Key
    label: str  # the parameters that vary across the run, ``name=value, …``
    planned: int
    done: int
    absent: tuple[Absent, ...]
    stats: Mapping[str, Stat]

    @property
    def complete(self) -> bool:
        return self.done == self.planned

    @property
    def folds_text(self) -> str:
        return f"{self.done}/{self.planned}"


def group_rows(rows: Iterable[JobRow], key_of: Any) -> dict[Key, list[JobRow]]:
    """Rows grouped by ``key_of(row)``, groups in order of first appearance."""
    groups: dict[Key, list[JobRow]] = {}
    for row in rows:
        groups.setdefault(key_of(row), []).append(row)
    return groups


def varying_keys(keys: Sequence[Key]) -> list[str]:
    """The parameter names whose value differs between some of ``keys``."""
    values: dict[str, set[str]] = {}
    for key in keys:
        for name, value in key:
            values.setdefault(name, set()).add(repr(value))
    names = [name for name, seen in values.items() if len(seen) > 1]
    missing = {name for key in keys for name in values if name not in dict(key)}
    return names + sorted(missing - set(names))


def label_of(key: Key, names: Sequence[str]) -> str:
    values = dict(key)
    parts = [f"{name}={format_value(values.get(name))}" for name in names]
    return ", ".join(parts) if parts else "all jobs"


def format_value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def summarize(rows: Sequence[JobRow]) -> list[ConfigSummary]:
    """One summary per configuration, in plan order."""
    groups = group_rows(rows, JobRow.configuration)
    names = varying_keys(list(groups))
    out = []
    for key, members in groups.items():
        done = [row for row in members if row.done]
        absent = tuple(
            Absent(row.fold, row.target, row.state, row.id, row.reason)
            for row in sorted(members, key=lambda r: r.fold)
            if not row.done
        )
        stats = {
            column: Stat.of(row.metrics.get(column) for row in done)
            for column, _ in SUMMARY_METRICS
        }
        out.append(ConfigSummary(key, label_of(key, names), len(members), len(done), absent, stats))
    return out


def seed_only_groups(summaries: Sequence[ConfigSummary]) -> list[list[ConfigSummary]]:
    """Sets of configurations that differ only by their seeds (repeats of one setting)."""
    groups: dict[Key, list[ConfigSummary]] = {}
    for summary in summaries:
        groups.setdefault(without(summary.key, SEED_KEYS), []).append(summary)
    return [members for members in groups.values() if len(members) > 1]


def without(key: Key, names: Iterable[str]) -> Key:
    drop = set(names)
    return tuple((name, value) for name, value in key if name not in drop)
