"""``invoke cache.ls|show|verify|gc`` and the top-level ``invoke plan GRID.toml``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from invoke import Collection, task

STORE_HELP = "store URL or folder (default: OCT_STORE, else ~/.cache/oct/bases)"


def _store(url: str | None) -> Any:
    from octcache.store import Store, default_store_url
    from octcore.cli.common import fail
    from octcore.errors import OctError

    url = url or default_store_url()
    if url is None:
        fail(OctError("the base store is off (OCT_STORE=off); pass --store URL"))
    return Store(url)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _age(seconds: float) -> str:
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f}{unit}"
    return f"{seconds:.0f}s"


def _parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m`` or seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    text = text.strip()
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


@task(help={"store": STORE_HELP})
def ls(c, store=None):
    """List stored base models: key, participants, model, size, age, uses."""
    from rich.table import Table

    from octcore.cli.console import console

    found = _store(store)
    table = Table(title=f"base models in {found.url}")
    for column in ("key", "data", "base participants", "model", "size", "age", "uses"):
        table.add_column(column)
    now = time.time()
    count = 0
    for entry in found.entries():
        spec = entry.spec
        participants = spec.get("base_participants", [])
        shown = ", ".join(participants[:4]) + (" …" if len(participants) > 4 else "")
        params = ",".join(f"{k}={v}" for k, v in sorted(spec.get("model_params", {}).items()))
        table.add_row(
            entry.key[:16],
            spec.get("dataset", "?"),
            f"{len(participants)}: {shown}",
            f"{spec.get('model', '?')}({params})",
            _size(entry.size),
            _age(entry.age_seconds(now)),
            str(found.uses(entry.key)),
        )
        count += 1
    console.print(table)
    console.print(f"{count} entries")


@task(help={"key": "a key or a unique prefix of one", "store": STORE_HELP})
def show(c, key, store=None):
    """Show one entry: its BaseSpec, metrics, files and whether they verify."""
    from octcore.cli.common import fail
    from octcore.cli.console import console

    found = _store(store)
    try:
        full = found.resolve_prefix(key)
    except KeyError as exc:
        fail(exc)
    entry = found.entry(full)
    if entry is None:
        fail(KeyError(f"{full} has no readable entry in {found.url}"))
    problems = found.check(entry)
    console.print(f"[bold]key[/] {entry.key}")
    console.print(
        f"published {entry.published} on {entry.host or '?'}; used by {found.uses(full)} jobs"
    )
    console.print(f"directory {found.blob_dir(full, entry.token)}")
    console.print("[bold]spec[/]")
    console.print_json(json.dumps(entry.spec, sort_keys=True))
    console.print("[bold]metrics[/]")
    console.print_json(json.dumps(entry.metrics, sort_keys=True))
    for name, meta in sorted(entry.files.items()):
        console.print(f"  {name:<16} {_size(meta['size']):>9}  sha256 {meta['sha256'][:16]}…")
    console.print("[green]verified" if not problems else f"[red]CORRUPT: {'; '.join(problems)}")


@task(help={"store": STORE_HELP})
def verify(c, store=None):
    """Re-hash every entry against its manifest; exit 1 if any is corrupt."""
    from invoke.exceptions import Exit

    from octcore.cli.console import console

    found = _store(store)
    total, bad = 0, 0
    for entry in found.entries():
        total += 1
        problems = found.check(entry)
        if problems:
            bad += 1
            console.print(f"[red]corrupt[/] {entry.key[:16]}: {'; '.join(problems)}")
    console.print(f"{total} entries checked, {bad} corrupt")
    if bad:
        raise Exit(code=1)


@task(
    help={
        "older_than": "remove entries published longer ago than this (30d, 12h, 90m, seconds)",
        "unused": "remove entries no job has used",
        "apply": "delete (default: only list what would go)",
        "store": STORE_HELP,
    }
)
def gc(c, older_than=None, unused=False, apply=False, store=None):
    """Collect garbage: old or unused entries and leftovers of interrupted publishes."""
    from octcore.cli.common import fail
    from octcore.cli.console import console

    found = _store(store)
    try:
        limit = _parse_age(older_than) if older_than else None
    except ValueError:
        fail(ValueError(f"--older-than expects 30d, 12h, 90m or seconds, got {older_than!r}"))
    now = time.time()
    doomed = []
    for entry in found.entries():
        old = limit is not None and entry.age_seconds(now) > limit
        idle = unused and found.uses(entry.key) == 0
        if old or idle:
            doomed.append(entry)
    orphans = found.orphans()
    verb = "removing" if apply else "would remove"
    for entry in doomed:
        console.print(
            f"{verb} {entry.key[:16]} ({_size(entry.size)}, {_age(entry.age_seconds(now))} old, "
            f"{found.uses(entry.key)} uses)"
        )
        if apply:
            found.remove(entry.key)
    for path in orphans:
        console.print(f"{verb} leftover {path}")
        if apply:
            found.fs.rm(path, recursive=True)
    console.print(
        f"{len(doomed)} entries, {len(orphans)} leftovers"
        + ("" if apply else " (dry run; --apply deletes)")
    )


@task(
    help={"grid": "a grid file (TOML, or the research code's JSON job list)", "store": STORE_HELP}
)
def plan(c, grid, store=None):
    """Show what a grid would run: jobs, distinct bases, bases already cached, training saved."""
    from octcache.planner import make_plan
    from octcore.cli.common import fail, plugins_for_cli
    from octcore.cli.console import console
    from octcore.errors import OctError
    from octcore.grid import load_grid

    plugins = plugins_for_cli()
    found = _store(store)
    started = time.perf_counter()
    try:
        loaded = load_grid(Path(grid), plugins)
        cache_plan = make_plan(loaded.experiments, found, plugins)
    except OctError as exc:
        fail(exc)
    seconds = time.perf_counter() - started
    stats = cache_plan.stats
    console.print(f"[bold]{loaded.name}[/] ({grid}); store {found.url}")
    for line in stats.notes():
        console.print(line)
    saved = stats.needing_base - stats.base_jobs
    console.print(
        f"jobs: {len(cache_plan.plan.jobs):,} to run ({stats.base_jobs:,} base, "
        f"{stats.experiments:,} "
        f"experiments); base training saved: {saved:,} of {stats.needing_base:,} "
        f"({saved / max(1, stats.needing_base):.0%}); planned in {seconds:.2f}s"
    )


def task_specs() -> list[Any]:
    from octcore.registry import TaskSpec

    cache = Collection("cache")
    for item in (ls, show, verify, gc):
        cache.add_task(item)
    top = Collection()
    top.add_task(plan)
    return [
        TaskSpec(
            name="cache", collection=cache, description="the content-addressed base-model store"
        ),
        TaskSpec(name="", collection=top, description="plan a grid with shared base models"),
    ]
