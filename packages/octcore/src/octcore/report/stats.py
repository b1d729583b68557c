"""Paired comparisons over participants: one pair per participant, never fold-by-seed.

Seeds repeat a measurement on the same participant; pairing every (fold, seed)
would count one participant several times (pseudo-replication). Each participant
therefore contributes the mean over its seeds of each side, and the Wilcoxon
signed-rank test runs on those per-participant pairs.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable, Iterable, Sequence

import attrs

from octcore.report.collect import SEED_KEYS, JobRow
from octcore.report.summary import Key, group_rows, label_of, varying_keys, without

MAIN_METRIC = "test_macro_f1"
LOW_POWER_PAIRS = 6  # below this a two-sided exact p can never reach 0.05 (2 / 2**5 > 0.05)
FINE_TUNING_AXES = ("mode", "target_batch_pct")


@attrs.frozen
class Pair:
    participant: str
    first: float
    second: float
    runs: int  # seeds averaged into this pair

    @property
    def difference(self) -> float:
        return self.second - self.first


@attrs.frozen
class TestResult:
    """A two-sided Wilcoxon signed-rank test of ``second - first`` over the pairs."""

    n: int
    statistic: float | None
    p: float | None
    median_difference: float | None
    note: str = ""


@attrs.frozen
class Comparison:
    label: str
    first_name: str
    second_name: str
    pairs: tuple[Pair, ...]
    test: TestResult
    unpaired: tuple[str, ...] = ()  # participants planned but without a complete pair
    partial: tuple[str, ...] = ()  # participants paired over fewer seeds than planned

    @property
    def first_mean(self) -> float | None:
        return statistics.fmean(p.first for p in self.pairs) if self.pairs else None

    @property
    def second_mean(self) -> float | None:
        return statistics.fmean(p.second for p in self.pairs) if self.pairs else None


def wilcoxon_test(first: Sequence[float], second: Sequence[float]) -> TestResult:
    """Two-sided signed-rank test of ``second - first`` (zero differences are dropped)."""
    differences = [b - a for a, b in zip(first, second, strict=True)]
    n = len(differences)
    if n == 0:
        return TestResult(0, None, None, None, "no complete pairs")
    median = statistics.median(differences)
    notes = []
    if n < LOW_POWER_PAIRS:
        notes.append(f"only {n} pairs: a two-sided p cannot fall below 0.05, little power")
    if not any(differences):
        notes.append("every difference is zero: no evidence of a difference")
        return TestResult(n, 0.0, 1.0, median, "; ".join(notes))
    from scipy.stats import wilcoxon

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # ties and tiny samples warn
        result = wilcoxon(second, first, alternative="two-sided")
    if 0 in differences:
        notes.append("zero differences dropped (Wilcoxon's convention)")
    return TestResult(n, float(result.statistic), float(result.pvalue), median, "; ".join(notes))


def participant_pairs(
    rows: Iterable[JobRow],
    first: Callable[[JobRow], float | None],
    second: Callable[[JobRow], float | None],
) -> tuple[list[Pair], list[str], list[str]]:
    """Per participant, the means over its runs of ``first`` and ``second``.

    A run counts only if it has both values. Returns the pairs, the participants
    without any complete run, and those paired over fewer runs than planned.
    """
    by_participant: dict[str, list[JobRow]] = {}
    for row in rows:
        by_participant.setdefault(row.target, []).append(row)
    pairs, unpaired, partial = [], [], []
    for participant, members in by_participant.items():
        values = [(first(r), second(r)) for r in members]
        values = [(a, b) for a, b in values if a is not None and b is not None]
        if not values:
            unpaired.append(participant)
            continue
        if len(values) < len(members):
            partial.append(participant)
        pairs.append(
            Pair(
                participant,
                statistics.fmean(a for a, _ in values),
                statistics.fmean(b for _, b in values),
                len(values),
            )
        )
    return pairs, unpaired, partial


def _comparison(label: str, names: tuple[str, str], pairs, unpaired, partial) -> Comparison:
    test = wilcoxon_test([p.first for p in pairs], [p.second for p in pairs])
    return Comparison(label, *names, tuple(pairs), test, tuple(unpaired), tuple(partial))


def metric(name: str) -> Callable[[JobRow], float | None]:
    return lambda row: row.metrics.get(name)


def seedless_key(row: JobRow) -> Key:
    return without(row.configuration(), SEED_KEYS)


def base_vs_adapted(rows: Sequence[JobRow]) -> list[Comparison]:
    """Adapted vs base test macro-F1 for every configuration (seeds averaged)."""
    groups = group_rows(rows, seedless_key)
    names = varying_keys(list(groups))
    out = []
    for key, members in groups.items():
        if not _has_base_and_adapted(members):
            continue  # target_only has no base model, base_only no adapted one
        pairs, unpaired, partial = participant_pairs(
            members, metric(f"base_{MAIN_METRIC}"), metric(f"adapted_{MAIN_METRIC}")
        )
        out.append(_comparison(label_of(key, names), ("base", "adapted"), pairs, unpaired, partial))
    return out


def _has_base_and_adapted(rows: Sequence[JobRow]) -> bool:
    """Whether the rows' mode trains a base model and then adapts it."""
    mode = rows[0].params.get("mode")
    return mode not in {"target_only", "base_only"}


def target_only_vs_fine_tuning(rows: Sequence[JobRow]) -> list[Comparison]:
    """Each fine-tuning setting against ``target_only`` with otherwise equal settings."""
    buckets = group_rows(rows, lambda r: without(seedless_key(r), FINE_TUNING_AXES))
    out = []
    for members in buckets.values():
        reference = [r for r in members if r.params.get("mode") == "target_only"]
        if not reference:
            continue
        settings = group_rows(
            (r for r in members if r.params.get("mode") not in {"target_only", "base_only"}),
            lambda r: tuple((k, v) for k, v in seedless_key(r) if k in FINE_TUNING_AXES),
        )
        reference_means = _participant_means(reference, f"adapted_{MAIN_METRIC}")
        for setting, tuned in settings.items():
            tuned_means = _participant_means(tuned, f"adapted_{MAIN_METRIC}")
            pairs, unpaired = [], []
            for participant in dict.fromkeys([r.target for r in members]):
                a, b = reference_means.get(participant), tuned_means.get(participant)
                if a is None or b is None:
                    unpaired.append(participant)
                else:
                    pairs.append(Pair(participant, a[0], b[0], min(a[1], b[1])))
            context = label_of(without(seedless_key(reference[0]), FINE_TUNING_AXES),
                               varying_keys([without(seedless_key(r), FINE_TUNING_AXES)
                                             for r in rows]))  # fmt: skip
            setting_label = label_of(setting, [k for k, v in setting if v is not None])
            label = setting_label if context == "all jobs" else f"{setting_label}; {context}"
            out.append(_comparison(label, ("target_only", "fine-tuned"), pairs, unpaired, []))
    return out


def _participant_means(rows: Iterable[JobRow], column: str) -> dict[str, tuple[float, int]]:
    values: dict[str, list[float]] = {}
    for row in rows:
        value = row.metrics.get(column)
        if value is not None:
            values.setdefault(row.target, []).append(value)
    return {p: (statistics.fmean(v), len(v)) for p, v in values.items()}
