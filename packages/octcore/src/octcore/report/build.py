"""Write every output of a report into the run directory (atomically)."""

from __future__ import annotations

from pathlib import Path

import attrs

from octcore import fsio
from octcore.report import markdown
from octcore.report.collect import RunData, load_run, results_csv
from octcore.report.figures import FIGURES_DIR, Figures, make_figures
from octcore.report.stats import Comparison, base_vs_adapted, target_only_vs_fine_tuning
from octcore.report.summary import ConfigSummary, summarize

RESULTS = "results.csv"
REPORT = "report.md"


@attrs.frozen
class Report:
    run: RunData
    summaries: tuple[ConfigSummary, ...]
    paired: tuple[Comparison, ...]
    versus_target_only: tuple[Comparison, ...]
    figures: Figures
    files: dict[str, Path]


def write_report(run_dir: Path) -> Report:
    """Collect the run and write results.csv, figures/ and report.md into ``run_dir``."""
    run = load_run(run_dir)
    summaries = tuple(summarize(run.rows))
    paired = tuple(base_vs_adapted(run.rows))
    versus = tuple(target_only_vs_fine_tuning(run.rows))
    figures = make_figures(run.rows, paired, run_dir / FIGURES_DIR)
    files = {"results": run_dir / RESULTS, "report": run_dir / REPORT}
    fsio.write_text(files["results"], results_csv(run.rows))
    for figure in figures.made:
        files[f"figure {figure.path.stem}"] = figure.path
    fsio.write_text(
        files["report"], markdown.render(run, summaries, paired, versus, figures, files)
    )
    return Report(run, summaries, paired, versus, figures, files)
