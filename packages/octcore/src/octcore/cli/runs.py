"""``invoke grid`` runs a study; ``invoke status`` and ``invoke logs`` watch one.

``invoke grid GRID.toml`` expands the grid, plans its jobs (a planning plugin may
add base jobs), and runs them on a backend's slots in ``OUTPUT/NAME``. Killed at
any moment, the same command resumes; a grown grid runs only its new points.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
from invoke import task
from invoke.exceptions import Exit
from rich.table import Table

from octcore import outputs
from octcore.cli.common import fail, plugins_for_cli, show_help_if_asked
from octcore.cli.console import console
from octcore.converter import converter, structure_problems
from octcore.errors import ConfigError, OctError, Problem

GRID_HELP = {
    "grid": "grid file (TOML), or a research-code jobs_config.json list",
    "backend": "where jobs run: local (default), ssh, or another installed backend",
    "slots": "local: N CPU slots, each job limited to cpu_count/N threads",
    "gpus": "local: GPU indices, comma-separated (default: every GPU found)",
    "jobs_per_gpu": "local: jobs sharing one GPU (default 1)",
    "cluster": "ssh: the cluster file (hosts, GPUs, paths)",
    "retries": "times a job that exits non-zero is retried before it counts as failed (default 1)",
    "fail_fast": "stop at the first failed job (default: keep going)",
    "timeout": "seconds a job may run before it is stopped and marked timeout",
    "dry_run": "print the jobs and their count; run and write nothing",
    "output": "root directory of runs (default: runs); the run is OUTPUT/NAME",
}
BACKEND_FLAGS = ("slots", "gpus", "jobs_per_gpu", "cluster")


@task(help=GRID_HELP)
def grid(
    c,
    grid,
    backend="local",
    slots=None,
    gpus=None,
    jobs_per_gpu=None,
    cluster=None,
    retries=1,
    fail_fast=False,
    timeout=None,
    dry_run=False,
    output="runs",
):
    """Run every job of a grid file on a backend's slots; resumable, live view."""
    show_help_if_asked("grid", grid)
    flags = {"slots": slots, "gpus": gpus, "jobs_per_gpu": jobs_per_gpu, "cluster": cluster}
    try:
        code = run_grid(
            Path(grid),
            backend,
            flags,
            retries=int(retries),
            fail_fast=fail_fast,
            timeout=_seconds(timeout),
            dry_run=dry_run,
            output=Path(output),
        )
    except OctError as exc:
        fail(exc)
    if code:
        raise Exit(code=code)


def run_grid(
    path: Path,
    backend_name: str,
    flags: dict[str, Any],
    *,
    retries: int = 1,
    fail_fast: bool = False,
    timeout: float | None = None,
    dry_run: bool = False,
    output: Path = Path("runs"),
    plugins: Any = None,
) -> int:
    """The grid command without invoke (tests and scripts call it); returns the exit status."""
    from octcore.executor import Executor, ExecutorOptions
    from octcore.executor.live import LineView, LiveView
    from octcore.executor.runs import (
        RunLock,
        participants_lookup,
        plan_record,
        snapshot_grid,
        write_plan,
    )
    from octcore.grid import load_grid
    from octcore.plan import independent_plan

    plugins = plugins or plugins_for_cli()
    loaded = load_grid(path, plugins)
    spec = plugins.backends.get(backend_name)
    config = backend_config(spec, flags)
    if timeout is not None and timeout <= 0:
        raise ConfigError(
            "command line", [Problem("--timeout", "expected a positive number of seconds")]
        )
    if retries < 0:
        raise ConfigError("command line", [Problem("--retries", "expected 0 or more")])
    run_dir = output / loaded.name
    participants_of = participants_lookup(plugins)

    def make_plan(where: Path) -> Any:
        planned = plugins.plan_jobs(list(loaded.experiments), where)
        return (
            planned
            if planned is not None
            else independent_plan(loaded.experiments, participants_of)
        )

    if dry_run:
        # a planner may keep notes in the run directory: give it a scratch one
        with tempfile.TemporaryDirectory(prefix="oct-dry-run-") as scratch:
            print_plan(loaded, make_plan(Path(scratch) / loaded.name))
        return 0
    backend = spec.factory(config, run_dir)  # a backend that cannot start fails before any write
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir):
        plan = make_plan(run_dir)  # under the lock: a second coordinator plans nothing
        snapshot_grid(path, run_dir)
        write_plan(run_dir, plan_record(loaded.name, str(path), loaded.axes, plan, participants_of))
        for note in plan.notes:
            console.print(note, highlight=False)
        options = ExecutorOptions(retries=retries, fail_fast=fail_fast, timeout=timeout)
        title = f"{loaded.name}: {len(plan.jobs)} jobs on {backend.describe()}  →  {run_dir}"
        view = LiveView(console, title) if console.is_terminal else LineView(console)
        if not console.is_terminal:
            console.print(title, highlight=False, markup=False, soft_wrap=True)
        with view:
            summary = Executor(plan, backend, run_dir, plugins, options, observer=view).run()
    return report_summary(summary, run_dir, path, loaded.name)


def report_summary(summary: Any, run_dir: Path, path: Path, name: str) -> int:
    from octcore.executor.journal import Journal
    from octcore.executor.live import counts_text

    console.print(counts_text(summary.counts))
    again = f"invoke grid {path}"
    if summary.stopped == "interrupted":
        console.print(
            f"[yellow]interrupted[/]: finished jobs are kept; run `{again}` to resume",
            soft_wrap=True,
        )
        return 130
    if summary.failed:
        journal = Journal.of_run(run_dir, readonly=True)
        try:
            for job_id in summary.failed[:10]:
                row = journal.job(job_id)
                if row is not None:
                    console.print(
                        f"[red]{row.state}[/] {job_id} {row.label}: {row.detail or ''}",
                        highlight=False,
                        soft_wrap=True,
                    )
        finally:
            journal.close()
        how = (
            "stopped at the first failure (--fail-fast); " if summary.stopped == "fail-fast" else ""
        )
        console.print(
            f"{how}{len(summary.failed)} job(s) did not finish: see `invoke logs {name} JOB`; "
            f"`{again}` retries them",
            soft_wrap=True,
        )
        return 1
    console.print(
        f"all jobs done: `invoke report {name}` for the table and figures", soft_wrap=True
    )
    return 0


def backend_config(spec: Any, flags: dict[str, Any]) -> Any:
    """The backend's own config from the flags given; a flag it does not take is an error."""
    given = {key: value for key, value in flags.items() if value is not None}
    known = [a.name for a in attrs.fields(spec.config_cls)]
    problems = []
    data: dict[str, Any] = {}
    for key, value in given.items():
        flag = "--" + key.replace("_", "-")
        if key not in known:
            options = ", ".join("--" + k.replace("_", "-") for k in known if k in BACKEND_FLAGS)
            problems.append(
                Problem(
                    flag,
                    f"does not apply to the {spec.name} backend (its options: {options or 'none'})",
                )
            )
            continue
        try:
            data[key] = _flag_value(key, value)
        except ValueError as exc:
            problems.append(Problem(flag, str(exc)))
    if problems:
        raise ConfigError("command line", problems)
    try:
        return converter.structure(data, spec.config_cls)
    except Exception as exc:
        found = structure_problems(exc) or [Problem("", str(exc))]
        raise ConfigError(
            "command line",
            [
                Problem("--" + p.key.replace("_", "-") if p.key else "backend options", p.message)
                for p in found
            ],
        ) from None


def _flag_value(key: str, value: Any) -> Any:
    if key in {"slots", "jobs_per_gpu"}:
        try:
            return int(str(value))
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if key == "gpus":
        parts = [p for p in str(value).replace(" ", ",").split(",") if p]
        if not parts or not all(p.isdigit() for p in parts):
            raise ValueError(f"expected GPU indices separated by commas (0,1), got {value!r}")
        return [int(p) for p in parts]
    return str(value)


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise OctError(f"--timeout: expected seconds, got {value!r}") from None


def axis_value(experiment: Any, key: str) -> str:
    from octcore.config import RESEARCH_KEYS

    if key in RESEARCH_KEYS:  # a job list's flat key (aug_prob) names a nested field
        key = ".".join(RESEARCH_KEYS[key])
    value: Any = experiment
    for part in key.split("."):
        if hasattr(value, part):
            value = getattr(value, part)
        elif hasattr(value, "options") and hasattr(value.options, part):
            value = getattr(value.options, part)
        else:
            return ""
    return "—" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def print_plan(loaded: Any, plan: Any) -> None:
    kinds: dict[str, int] = {}
    for job in plan.jobs:
        kinds[job.kind] = kinds.get(job.kind, 0) + 1
    by_kind = ", ".join(f"{n} {k}" for k, n in kinds.items())
    console.print(
        f"[bold]{loaded.name}[/]: {len(plan.jobs)} jobs ({by_kind}) from "
        f"{len(loaded.experiments)} grid points; nothing was run (--dry-run)",
        soft_wrap=True,
    )
    for note in plan.notes:
        console.print(note, highlight=False)
    show_kind = len(kinds) > 1
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("job", *(["kind"] if show_kind else []), "experiment", *loaded.axes):
        table.add_column(column, no_wrap=True)
    for job in plan.jobs:
        values = [axis_value(job.experiment, key) for key in loaded.axes]
        table.add_row(job.id, *([job.kind] if show_kind else []), job.label, *values)
    print_wide(table)


def print_wide(renderable: Any) -> None:
    """A table in a terminal fits the terminal; in a file or pipe each row stays one line."""
    if console.is_terminal:
        console.print(renderable)
    else:
        from rich.console import Console

        Console(file=console.file, width=max(console.width, 300), highlight=False).print(renderable)


# --- status and logs ------------------------------------------------------------

STATUS_HELP = {
    "run": "run name (under --output) or run directory",
    "output": "root directory of runs (default: runs)",
    "all": "list every job (default: the first 200 rows)",
}


@task(help=STATUS_HELP)
def status(c, run, output="runs", all=False):
    """Counts and a table of a run's jobs, from its journal (instant, also while it runs)."""
    show_help_if_asked("status", run)
    try:
        print_status(run, output, limit=None if all else 200)
    except OctError as exc:
        fail(exc)


def print_status(run: str, output: str | Path = "runs", limit: int | None = 200) -> None:
    from octcore.executor.journal import Journal
    from octcore.executor.live import counts_text, status_lines
    from octcore.executor.runs import resolve_run

    run_dir = resolve_run(run, output)
    journal = Journal.of_run(run_dir, readonly=True)
    try:
        rows = journal.jobs()
        counts = journal.counts()
    finally:
        journal.close()
    holder = coordinator_pid(run_dir)
    state = f"coordinator running (pid {holder})" if holder else "no coordinator running"
    console.print(f"[bold]{run_dir.name}[/] ({run_dir}): {state}", highlight=False, soft_wrap=True)
    console.print(counts_text(counts))
    console.file.write(status_lines(rows, limit=limit))
    if limit is not None and len(rows) > limit:
        console.print(f"… {len(rows) - limit} more jobs (--all lists every one)")


def coordinator_pid(run_dir: Path) -> int | None:
    """The pid in the lock file if that process is alive (a cheap check; takes no lock)."""
    from octcore.executor.runs import LOCK

    try:
        text = (run_dir / LOCK).read_text().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    return pid if Path(f"/proc/{pid}").exists() or _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


LOGS_HELP = {
    "run": "run name (under --output) or run directory",
    "job": "job id, or a prefix naming one job",
    "follow": "keep printing what the job writes until it ends",
    "output": "root directory of runs (default: runs)",
}


@task(help=LOGS_HELP)
def logs(c, run, job, follow=False, output="runs"):
    """Print a job's log (job.log in its directory); --follow keeps printing as it grows."""
    show_help_if_asked("logs", run, job)
    try:
        show_log(run, job, output, follow=follow)
    except OctError as exc:
        fail(exc)


def show_log(run: str, job: str, output: str | Path = "runs", *, follow: bool = False) -> None:
    from octcore.executor.journal import FINAL, Journal
    from octcore.executor.runs import job_dir, resolve_job, resolve_run

    run_dir = resolve_run(run, output)
    journal = Journal.of_run(run_dir, readonly=True)
    try:
        job_id = resolve_job(run_dir, [r.id for r in journal.jobs(in_plan_only=False)], job)
        path = job_dir(run_dir, job_id) / outputs.LOG
        position = 0
        while True:
            if path.exists():
                with path.open("rb") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                    position = handle.tell()
                if chunk:
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()
            elif not follow:
                raise OctError(f"job {job_id} of {run_dir.name} has no log yet ({path})")
            if not follow:
                return
            row = journal.job(job_id)
            if row is not None and row.state in FINAL and not chunk_pending(path, position):
                return
            time.sleep(0.5)
    finally:
        journal.close()


def chunk_pending(path: Path, position: int) -> bool:
    try:
        return path.stat().st_size > position
    except OSError:
        return False
