"""What a user sees: the live view of a running grid and the ``invoke status`` table.

In a terminal the coordinator redraws one panel (counts, each running job with its
slot and elapsed time, the ETA and the latest events); anywhere else (a log file,
a CI job) it prints one line per event instead.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Mapping

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from octcore.executor.executor import Snapshot
from octcore.executor.journal import JobRow
from octcore.plan import PlannedJob

STATE_STYLE = {
    "pending": "dim",
    "running": "cyan",
    "done": "green",
    "failed": "red",
    "timeout": "red",
    "blocked": "yellow",
}
SHOWN_EVENTS = {
    "launched",
    "done",
    "retry",
    "failed",
    "lost",
    "timeout",
    "cancelled",
    "blocked",
    "skipped",
    "complete",
}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def counts_text(counts: Mapping[str, int]) -> Text:
    text = Text()
    total = sum(counts.values())
    labels = (
        ("pending", "queued"),
        ("running", "running"),
        ("done", "done"),
        ("failed", "failed"),
        ("timeout", "timeout"),
        ("blocked", "blocked"),
    )
    for state, label in labels:
        if state in {"timeout", "blocked"} and not counts.get(state):
            continue
        text.append(f"{label} {counts.get(state, 0)}", style=STATE_STYLE[state])
        text.append("  ")
    text.append(f"of {total}")
    return text


class LiveView:
    """The executor's observer in a terminal: a panel redrawn a few times a second."""

    def __init__(self, console: Console, title: str):
        self.console = console
        self.title = title
        self.events: collections.deque[str] = collections.deque(maxlen=6)
        self.snapshot: Snapshot | None = None
        self.live = Live(
            console=console, refresh_per_second=4, transient=False, get_renderable=self.render
        )

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)  # type: ignore[arg-type]

    def event(self, job: PlannedJob, event: str, detail: str) -> None:
        if event in SHOWN_EVENTS:
            stamp = time.strftime("%H:%M:%S")
            self.events.append(
                f"{stamp} {job.id} {event}: {job.label}" + (f" ({detail})" if detail else "")
            )

    def update(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def render(self) -> Group:
        parts: list[object] = [Text(self.title, style="bold")]
        snap = self.snapshot
        if snap is not None:
            line = counts_text(snap.counts)
            line.append(f"   {snap.slots} slots   ETA {duration(snap.eta)}")
            parts.append(line)
            if snap.running:
                table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
                for column in ("slot", "job", "elapsed", "experiment"):
                    table.add_column(column)
                for job in sorted(snap.running, key=lambda r: r.slot):
                    table.add_row(job.slot, job.job_id, duration(job.elapsed), job.label)
                parts.append(table)
        parts += [Text(line, style="dim") for line in self.events]
        return Group(*parts)  # type: ignore[arg-type]


class LineView:
    """The executor's observer outside a terminal: one plain line per event."""

    def __init__(self, console: Console):
        self.console = console

    def __enter__(self) -> LineView:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def event(self, job: PlannedJob, event: str, detail: str) -> None:
        if event in SHOWN_EVENTS:
            stamp = time.strftime("%H:%M:%S")
            suffix = f" ({detail})" if detail else ""
            self.console.print(
                f"{stamp} {job.id} {event}: {job.label}{suffix}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    def update(self, snapshot: Snapshot) -> None:
        pass


def status_lines(rows: Iterable[JobRow], now: float | None = None, limit: int | None = None) -> str:
    """One line per job: id, state, tries, slot, time, label, and why it failed.

    Plain aligned text rather than a rich table: a 1,000-job run prints in a
    fraction of a second, and the output greps and pipes well.
    """
    now = time.time() if now is None else now
    table = [("job", "state", "tries", "slot", "time", "experiment", "detail")]
    for index, row in enumerate(rows):
        if limit is not None and index >= limit:
            break
        if row.state == "running" and row.started:
            elapsed = duration(now - row.started)
        else:
            elapsed = duration(row.seconds) if row.seconds else ""
        tries = str(row.attempts) + (f" ({row.lost} lost)" if row.lost else "")
        slot = (row.slot or "") if row.state == "running" else ""
        detail = (row.detail or "").replace("\n", " ")
        table.append((row.id, row.state, tries, slot, elapsed, row.label, detail))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    return "".join(
        (
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
            + "  "
            + line[-1]
        ).rstrip()
        + "\n"
        for line in table
    )
