"""Console output: a per-phase progress bar and the final base-vs-adapted table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:  # torch loads when training starts, not for every command
    from octcore.train.loop import EpochRecord, PhaseResult

console = Console(stderr=False, highlight=False)


class ProgressListener:
    """One bar per phase: epochs so far, the latest validation scores, best epoch."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task: Any = None

    @classmethod
    def make_progress(cls) -> Progress:
        return Progress(
            TextColumn("[bold]{task.fields[phase]:>6}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )

    def phase_started(self, phase: str, max_epochs: int, batches_per_epoch: int) -> None:
        self.task = self.progress.add_task(
            phase, total=max_epochs, phase=phase, status=f"{batches_per_epoch} batches/epoch"
        )

    def epoch_finished(self, r: EpochRecord) -> None:
        status = f"val loss {r.val.loss:.4f}  acc {r.val.accuracy:.3f}  f1 {r.val.macro_f1:.3f}" + (
            "  *" if r.improved else ""
        )
        self.progress.update(self.task, completed=r.epoch, status=status)

    def phase_finished(self, result: PhaseResult) -> None:
        why = "early stop" if result.stopped_early else "epoch limit"
        self.progress.update(
            self.task,
            total=result.epochs,
            completed=result.epochs,
            status=f"best epoch {result.best_epoch} ({why}, val f1 {result.best_val.macro_f1:.3f})",
        )


def result_table(metrics: dict[str, Any]) -> Table:
    title = f"target {metrics['target']} (fold {metrics['fold']}), mode {metrics['mode']}"
    table = Table(title=f"{title}: scores on the target's test split")
    table.add_column("model")
    for column in ("accuracy", "macro-F1", "loss", "best epoch"):
        table.add_column(column, justify="right")
    for name, label in (("base", "best base"), ("adapted", "best adapted")):
        part = metrics.get(name)
        if part:
            test = part["test"]
            table.add_row(
                label, f"{test['accuracy']:.4f}", f"{test['macro_f1']:.4f}", f"{test['loss']:.4f}",
                str(part.get("best_epoch", "")),
            )  # fmt: skip
        else:
            table.add_row(label, "—", "—", "—", "—")
    gain = metrics.get("gain")
    if gain:
        table.add_row(
            "[bold]gain", f"[bold]{gain['accuracy']:+.4f}", f"[bold]{gain['macro_f1']:+.4f}",
            f"[bold]{gain['loss']:+.4f}", "",
        )  # fmt: skip
    return table
