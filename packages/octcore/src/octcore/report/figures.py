"""The report's figures (PNG): the main score against the target-data axes, and pairs.

Every point is a mean over participants (each participant's value first averaged
over its seeds) with an error bar of one sample standard deviation over
participants. A figure whose axis takes a single value in the run is skipped
and the reason returned, so report.md can say why it is absent.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

import attrs
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from octcore import fsio
from octcore.report.collect import JobRow
from octcore.report.stats import Comparison, seedless_key
from octcore.report.summary import format_value, group_rows, label_of, varying_keys, without

FIGURES_DIR = "figures"
MAIN_COLUMN = "adapted_test_macro_f1"
MAX_PAIR_FIGURES = 24


@attrs.frozen
class Figure:
    path: Path
    title: str


@attrs.frozen
class Figures:
    made: tuple[Figure, ...]
    skipped: tuple[str, ...]  # why a figure is absent


def make_figures(
    rows: Sequence[JobRow], comparisons: Sequence[Comparison], out_dir: Path
) -> Figures:
    made: list[Figure] = []
    skipped: list[str] = []
    for stale in [*out_dir.glob(f"{MAIN_COLUMN}_vs_*.png"), *out_dir.glob("base_vs_adapted_*.png")]:
        stale.unlink()  # figures of an earlier report that this one may not redraw
    for axis, modes, title in (
        ("target_data_pct", None, "adapted test macro-F1 against the target data fraction"),
        ("target_batch_pct", {"full_fine_tuning"},
         "full_fine_tuning: adapted test macro-F1 against the target batch fraction"),
    ):  # fmt: skip
        chosen = [r for r in rows if modes is None or r.params.get("mode") in modes]
        figure, why = axis_figure(chosen, axis, title, out_dir / f"{MAIN_COLUMN}_vs_{axis}.png")
        if figure:
            made.append(figure)
        else:
            skipped.append(why)
    for index, comparison in enumerate(comparisons[:MAX_PAIR_FIGURES], start=1):
        made.append(pair_figure(comparison, out_dir / f"base_vs_adapted_{index:02d}.png"))
    if not comparisons:
        skipped.append("base vs adapted per participant: no configuration has both models")
    elif len(comparisons) > MAX_PAIR_FIGURES:
        skipped.append(
            f"base vs adapted per participant: drawn for the first {MAX_PAIR_FIGURES} of "
            f"{len(comparisons)} configurations"
        )
    return Figures(tuple(made), tuple(skipped))


def axis_figure(
    rows: Sequence[JobRow], axis: str, title: str, path: Path
) -> tuple[Figure | None, str]:
    values = {r.params.get(axis) for r in rows if r.metrics.get(MAIN_COLUMN) is not None}
    numeric = sorted(v for v in values if isinstance(v, int | float))
    if len(values) < 2 or not numeric:
        shown = ", ".join(sorted(format_value(v) for v in values)) or "no results"
        return None, f"{title}: skipped, {axis} does not vary ({shown})"
    lines = group_rows(rows, lambda r: without(seedless_key(r), (axis,)))
    names = varying_keys(list(lines))
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    for line_key, members in lines.items():
        points = _points(members, axis)
        if not points:
            continue
        label = label_of(line_key, names) if names else "mean over participants"
        unset = points.pop(None, None)
        if points:
            xs = sorted(points)
            means = [statistics.fmean(points[x]) for x in xs]
            errors = [_sd(points[x]) for x in xs]
            drawn = ax.errorbar(xs, means, yerr=errors, marker="o", capsize=3, label=label)
            colour = drawn.lines[0].get_color()
        else:
            colour = None
        if unset:
            ax.axhline(statistics.fmean(unset), linestyle="--", color=colour, alpha=0.7,
                       label=f"{label} ({axis} unset)")  # fmt: skip
    ax.set_xlabel(axis)
    ax.set_ylabel("test macro-F1 (adapted)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)
    return Figure(path, title), ""


def _points(rows: Sequence[JobRow], axis: str) -> dict[float | None, list[float]]:
    """x -> one value per participant (mean over that participant's seeds)."""
    by_x: dict[object, dict[str, list[float]]] = {}
    for row in rows:
        value = row.metrics.get(MAIN_COLUMN)
        if value is not None:
            by_x.setdefault(row.params.get(axis), {}).setdefault(row.target, []).append(value)
    return {
        x: [statistics.fmean(v) for v in participants.values()] for x, participants in by_x.items()
    }  # type: ignore[misc]


def _sd(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def pair_figure(comparison: Comparison, path: Path) -> Figure:
    title = f"{comparison.second_name} vs {comparison.first_name}: {comparison.label}"
    fig, ax = plt.subplots(figsize=(4.8, 4.2), constrained_layout=True)
    for pair in comparison.pairs:
        colour = "tab:green" if pair.difference > 0 else "tab:red"
        ax.plot([0, 1], [pair.first, pair.second], color=colour, alpha=0.6, marker="o")
        ax.annotate(pair.participant, (1, pair.second), xytext=(4, 0), textcoords="offset points",
                    fontsize=6, va="center")  # fmt: skip
    if comparison.pairs:
        ax.plot([0, 1], [comparison.first_mean, comparison.second_mean], color="black",
                linewidth=2.5, marker="s", label="mean")  # fmt: skip
        ax.legend(fontsize=7)
    ax.set_xticks([0, 1], [comparison.first_name, comparison.second_name])
    ax.set_xlim(-0.3, 1.4)
    ax.set_ylabel("test macro-F1 (per participant, mean over seeds)")
    test = comparison.test
    p_text = "" if test.p is None else f", Wilcoxon p = {test.p:.3g}"
    ax.set_title(f"{_wrap(title)}\nn = {test.n}{p_text}", fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)
    return Figure(path, title)


def _wrap(text: str, width: int = 60) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def _save(fig: plt.Figure, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    fsio.write_bytes(path, buffer.getvalue())
