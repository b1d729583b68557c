"""The journal: every job's state and every state change, in ``runs/<name>/journal.sqlite``.

SQLite in WAL mode, so that ``invoke status`` reads it while a coordinator writes,
and one transaction per state change, so that a coordinator killed at any moment
(``kill -9``, a power cut) leaves a journal that a new one resumes from.

Two tables: ``jobs`` holds the current state of each job (one row per job id),
``events`` is append-only history (launches, exits, retries, adoptions) that
tests and post-mortems read.

Job states: ``pending`` (waiting to run), ``running`` (launched; ``handle`` says
where), and the final ``done``, ``failed``, ``timeout`` and ``blocked`` (a job it
depends on did not finish).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

JOURNAL = "journal.sqlite"
FINAL = ("done", "failed", "timeout", "blocked")
STATES = ("pending", "running", *FINAL)
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,      -- order in the current plan
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    in_plan INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,  -- launches, lost ones included
    failures INTEGER NOT NULL DEFAULT 0,  -- attempts that exited non-zero
    lost INTEGER NOT NULL DEFAULT 0,      -- attempts lost to infrastructure
    slot TEXT,
    handle TEXT,                          -- the backend's handle (JSON) while running
    started REAL,                         -- wall clock of the current/last launch
    finished REAL,
    seconds REAL,                         -- duration of the last successful attempt
    exit_code INTEGER,
    detail TEXT,
    log_tail TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    job TEXT,
    event TEXT NOT NULL,
    attempt INTEGER,
    slot TEXT,
    detail TEXT
);
"""


@attrs.frozen
class JobRow:
    """One job as the journal knows it."""

    id: str
    position: int
    kind: str
    label: str
    state: str
    attempts: int = 0
    failures: int = 0
    lost: int = 0
    slot: str | None = None
    handle: Mapping[str, Any] | None = None
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    exit_code: int | None = None
    detail: str | None = None
    log_tail: str | None = None


COLUMNS = tuple(a.name for a in attrs.fields(JobRow))


class Journal:
    """A connection to one run's journal. ``readonly`` for status readers."""

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = path
        if readonly:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(
                "PRAGMA synchronous=NORMAL"
            )  # durable at checkpoints, consistent always
            self.db.executescript(SCHEMA)
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )

    @classmethod
    def of_run(cls, run_dir: Path, *, readonly: bool = False) -> Journal:
        return cls(run_dir / JOURNAL, readonly=readonly)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- plan -------------------------------------------------------------------

    def sync_plan(self, jobs: Iterable[tuple[str, str, str]]) -> None:
        """Make the journal list exactly the plan's jobs as ``in_plan`` (new ones pending).

        ``jobs`` are ``(id, kind, label)`` in plan order. Jobs of an earlier plan that
        the current one lacks stay in the journal, marked ``in_plan = 0``.
        """
        rows = [(job_id, index, kind, label) for index, (job_id, kind, label) in enumerate(jobs)]
        now = time.time()
        with self.transaction() as db:
            db.execute("UPDATE jobs SET in_plan = 0")
            db.executemany(
                "INSERT INTO jobs (id, position, kind, label, state) "
                "VALUES (?, ?, ?, ?, 'pending') "
                "ON CONFLICT (id) DO UPDATE SET position = excluded.position, "
                "kind = excluded.kind, label = excluded.label, in_plan = 1",
                rows,
            )
            db.execute(
                "INSERT INTO events (time, event, detail) VALUES (?, 'planned', ?)",
                (now, f"{len(rows)} jobs"),
            )

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # --- reading ------------------------------------------------------------------

    def jobs(self, *, in_plan_only: bool = True) -> list[JobRow]:
        where = "WHERE in_plan = 1" if in_plan_only else ""
        cursor = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM jobs {where} ORDER BY position")  # noqa: S608 - fixed text
        return [_row(values) for values in cursor]

    def job(self, job_id: str) -> JobRow | None:
        cursor = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = ?", (job_id,))  # noqa: S608
        values = cursor.fetchone()
        return None if values is None else _row(values)

    def counts(self) -> dict[str, int]:
        found = dict(
            self.db.execute("SELECT state, COUNT(*) FROM jobs WHERE in_plan = 1 GROUP BY state")
        )
        return {state: found.get(state, 0) for state in STATES}

    def events(self, job_id: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT seq, time, job, event, attempt, slot, detail FROM events"
        args: tuple[Any, ...] = ()
        if job_id is not None:
            query += " WHERE job = ?"
            args = (job_id,)
        keys = ("seq", "time", "job", "event", "attempt", "slot", "detail")
        return [
            dict(zip(keys, values, strict=True))
            for values in self.db.execute(query + " ORDER BY seq", args)
        ]

    # --- writing ------------------------------------------------------------------

    def update(self, job_id: str, event: str, message: str = "", **fields: Any) -> None:
        """Change a job's row and append the event, in one transaction."""
        if "handle" in fields and fields["handle"] is not None:
            fields["handle"] = json.dumps(dict(fields["handle"]), sort_keys=True)
        unknown = set(fields) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown journal columns {sorted(unknown)}")
        with self.transaction() as db:
            if fields:
                assignments = ", ".join(f"{name} = ?" for name in fields)
                db.execute(
                    f"UPDATE jobs SET {assignments} WHERE id = ?",  # noqa: S608 - names checked above
                    (*fields.values(), job_id),
                )
            row = db.execute("SELECT attempts, slot FROM jobs WHERE id = ?", (job_id,)).fetchone()
            attempt, slot = row if row else (None, None)
            db.execute(
                "INSERT INTO events (time, job, event, attempt, slot, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), job_id, event, attempt, slot, message),
            )

    def note(self, event: str, detail: str = "") -> None:
        """A run-level event (coordinator started, interrupted, finished)."""
        self.db.execute(
            "INSERT INTO events (time, event, detail) VALUES (?, ?, ?)",
            (time.time(), event, detail),
        )


def _row(values: tuple[Any, ...]) -> JobRow:
    data = dict(zip(COLUMNS, values, strict=True))
    if data["handle"]:
        data["handle"] = json.loads(data["handle"])
    return JobRow(**data)
