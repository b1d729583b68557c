"""report.md: the run's job counts, summary table, paired tests and figures in one page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from octcore.report.collect import RunData
from octcore.report.figures import Figures
from octcore.report.stats import Comparison
from octcore.report.summary import SUMMARY_METRICS, ConfigSummary, seed_only_groups


def render(
    run: RunData,
    summaries: Sequence[ConfigSummary],
    paired: Sequence[Comparison],
    versus_target_only: Sequence[Comparison],
    figures: Figures,
    files: dict[str, Path],
) -> str:
    out = [f"# Report: {run.name}", ""]
    if run.source:
        out += [f"Grid: `{run.source}`", ""]
    out += _jobs(run)
    out += _summary(summaries)
    out += _comparisons(
        "Adapted vs base, paired over participants",
        "Test macro-F1 of the adapted model against the base model it started from. One pair "
        "per participant (each side averaged over that participant's seeds); two-sided Wilcoxon "
        "signed-rank test on the per-participant differences (adapted - base).",
        paired,
    )
    if versus_target_only:
        out += _comparisons(
            "Fine-tuning vs target_only, paired over participants",
            "Adapted test macro-F1 of each fine-tuning setting against `target_only` with "
            "otherwise equal settings; one pair per participant (seeds averaged), two-sided "
            "Wilcoxon signed-rank test on (fine-tuned - target_only).",
            versus_target_only,
        )
    out += _figures(figures, run.path)
    out += ["## Files", ""]
    out += [f"- {name}: `{path.relative_to(run.path)}`" for name, path in files.items()]
    return "\n".join(out) + "\n"


def _jobs(run: RunData) -> list[str]:
    counts = Counter(row.state for row in run.rows)
    out = ["## Jobs", "", f"{len(run.rows)} experiment jobs planned."]
    out += [f"- {state}: {count}" for state, count in sorted(counts.items())]
    if run.other_jobs:
        other = ", ".join(f"{count} {kind}" for kind, count in sorted(run.other_jobs.items()))
        out.append(f"- besides these, the plan holds {other} job(s), not rows of the study")
    return [*out, ""]


def _summary(summaries: Sequence[ConfigSummary]) -> list[str]:
    out = [
        "## Summary per configuration",
        "",
        "Mean ± sample sd over the folds that finished (one fold = one target participant). "
        "A configuration with missing or failed folds is marked **incomplete**: its statistics "
        "cover fewer folds than planned and are not comparable with complete rows.",
        "",
    ]
    header = ["configuration", "folds", *(title for _, title in SUMMARY_METRICS), "status"]
    out += [_row(header), _row(["---"] * len(header))]
    for s in summaries:
        status = "complete" if s.complete else f"**incomplete ({s.folds_text} folds)**"
        out.append(
            _row([s.label, s.folds_text, *(s.stats[c].text() for c, _ in SUMMARY_METRICS), status])
        )
    out.append("")
    incomplete = [s for s in summaries if not s.complete]
    if incomplete:
        out += ["### Missing or failed folds", ""]
        for s in incomplete:
            out.append(f"- **{s.label}** ({s.folds_text} folds done):")
            for a in s.absent:
                reason = f": {a.reason}" if a.reason else ""
                out.append(f"  - fold {a.fold} ({a.target}), job `{a.job}`: {a.state}{reason}")
        out.append("")
    repeats = seed_only_groups(summaries)
    if repeats:
        out += ["### Seeds", ""]
        out.append(
            f"{sum(len(g) for g in repeats)} configurations differ only by `seed`/`seed_finetune` "
            f"({len(repeats)} settings repeated with several seeds). They are listed separately "
            "above; the paired tests average each participant over its seeds first."
        )
        out.append("")
    return out


def _comparisons(title: str, intro: str, comparisons: Sequence[Comparison]) -> list[str]:
    out = [f"## {title}", "", intro, ""]
    if not comparisons:
        return [*out, "No configuration allows this comparison.", ""]
    first, second = comparisons[0].first_name, comparisons[0].second_name
    header = ["configuration", "n", f"{first} mean", f"{second} mean", "median difference",
              "W", "p", "note"]  # fmt: skip
    out += [_row(header), _row(["---"] * len(header))]
    for c in comparisons:
        t = c.test
        missing = f"incomplete: {len(c.unpaired)} participant(s) unpaired" if c.unpaired else ""
        note = "; ".join(filter(None, [missing, t.note]))
        out.append(
            _row([
                c.label, str(t.n), _number(c.first_mean), _number(c.second_mean),
                _number(t.median_difference, signed=True), _number(t.statistic, 1),
                _number(t.p, p=True), note,
            ])
        )  # fmt: skip
    out.append("")
    for c in comparisons:
        if c.unpaired:
            out.append(f"- {c.label}: no complete pair for {', '.join(c.unpaired)} (excluded)")
        if c.partial:
            out.append(f"- {c.label}: fewer seeds than planned for {', '.join(c.partial)}")
    if out[-1] != "":
        out.append("")
    return out


def _figures(figures: Figures, root: Path) -> list[str]:
    out = ["## Figures", ""]
    for figure in figures.made:
        out += [f"![{figure.title}]({figure.path.relative_to(root).as_posix()})", ""]
    out += [f"- {why}" for why in figures.skipped]
    return [*out, ""] if figures.skipped else out


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _number(value: float | None, digits: int = 4, *, signed: bool = False, p: bool = False) -> str:
    if value is None:
        return "—"
    if p:
        return f"{value:.3g}"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
