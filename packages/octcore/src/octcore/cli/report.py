"""``invoke report RUN``: tables, paired tests and figures of a grid run."""

from __future__ import annotations

from pathlib import Path

from invoke import task
from rich.markup import escape
from rich.table import Table

from octcore.cli.common import fail, show_help_if_asked
from octcore.cli.console import console
from octcore.errors import OctError

HELP = {
    "run": "a run name under --output, or the path of a run directory (one with plan.json)",
    "output": "root directory of runs (default: runs)",
}


@task(help=HELP)
def report(c, run, output="runs"):
    """Write results.csv, report.md and figures/ into a run directory and show the summary."""
    show_help_if_asked("report", run)
    from octcore.report import write_report
    from octcore.report.collect import resolve_run_dir

    try:
        result = write_report(resolve_run_dir(run, Path(output)))
    except OctError as exc:
        fail(exc)
    console.print(summary_table(result))
    for comparison in result.paired:
        test = comparison.test
        p = "—" if test.p is None else f"{test.p:.3g}"
        console.print(
            escape(f"adapted vs base ({comparison.label}): n={test.n} p={p}")
            + escape(f"; {test.note}" if test.note else "")
        )
    for why in result.figures.skipped:
        console.print(f"[dim]{escape(why)}[/]")
    for name, path in result.files.items():
        console.print(escape(f"{name}: {path}"), soft_wrap=True)


def summary_table(result) -> Table:
    run = result.run
    done = sum(row.done for row in run.rows)
    table = Table(title=f"{run.name}: {done}/{len(run.rows)} jobs done, test scores (mean ± sd)")
    for column in ("configuration", "folds", "adapted macro-F1", "adapted accuracy",
                   "base macro-F1", "gain macro-F1"):  # fmt: skip
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for s in result.summaries:
        folds = s.folds_text if s.complete else f"[bold red]{s.folds_text} incomplete[/]"
        table.add_row(
            escape(s.label), folds,
            *(s.stats[c].text() for c in ("adapted_test_macro_f1", "adapted_test_accuracy",
                                          "base_test_macro_f1", "gain_macro_f1")),
        )  # fmt: skip
    return table
