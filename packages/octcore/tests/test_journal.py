"""The journal: WAL mode, one transaction per change, readable while a writer holds it."""

from __future__ import annotations

import sqlite3

import pytest

from octcore.executor.journal import Journal


def test_plan_sync_keeps_states_and_marks_dropped_jobs(tmp_path):
    journal = Journal.of_run(tmp_path)
    journal.sync_plan([("a", "experiment", "A"), ("b", "experiment", "B")])
    journal.update("a", "done", state="done", seconds=2.5)
    journal.sync_plan([("c", "base", "C"), ("a", "experiment", "A2")])
    rows = journal.jobs()
    assert [(r.id, r.state, r.label, r.position) for r in rows] == [
        ("c", "pending", "C", 0),
        ("a", "done", "A2", 1),
    ]
    assert {r.id for r in journal.jobs(in_plan_only=False)} == {"a", "b", "c"}
    assert journal.counts()["done"] == 1 and journal.counts()["pending"] == 1


def test_wal_and_events(tmp_path):
    journal = Journal.of_run(tmp_path)
    assert journal.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    journal.sync_plan([("a", "experiment", "A")])
    journal.update(
        "a",
        "launched",
        "slot 0",
        state="running",
        attempts=1,
        slot="s0",
        handle={"pid": 12, "start": 34},
    )
    reader = Journal.of_run(tmp_path, readonly=True)
    row = reader.job("a")
    assert row.handle == {"pid": 12, "start": 34} and row.state == "running"
    events = reader.events("a")
    assert events[-1]["event"] == "launched" and events[-1]["attempt"] == 1
    assert events[-1]["slot"] == "s0" and events[-1]["detail"] == "slot 0"
    with pytest.raises(sqlite3.OperationalError):
        reader.db.execute("DELETE FROM jobs")


def test_unknown_column_is_refused_and_nothing_changes(tmp_path):
    journal = Journal.of_run(tmp_path)
    journal.sync_plan([("a", "experiment", "A")])
    with pytest.raises(ValueError, match="unknown journal columns"):
        journal.update("a", "x", state="done", colour="red")
    assert journal.job("a").state == "pending"


def test_meta_round_trip(tmp_path):
    journal = Journal.of_run(tmp_path)
    journal.set_meta("source", {"grid": "g.toml"})
    assert journal.meta("source") == {"grid": "g.toml"} and journal.meta("missing", 1) == 1
