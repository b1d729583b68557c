"""Two real coordinators (`invoke grid`) started at once on one store train each base once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from octcache.store import Store
from octcore.executor.journal import Journal

pytestmark = pytest.mark.slow

GRID = """
name = "{name}"
folds = "all"

[experiment]
dataset = {{ name = "synthetic", participants = 3, train = 32, val = 8, test = 8 }}
model = {{ name = "cnn1d", base_channels = 4 }}
max_epochs = 2

[axes]
mode = ["full_fine_tuning", "target_only_fine_tuning"]
target_data_pct = [{pct}]
"""


def _events(run_dir: Path) -> tuple[dict[str, str], list[dict]]:
    plan = json.loads((run_dir / "plan.json").read_text())
    journal = Journal.of_run(run_dir, readonly=True)
    try:
        return {job["id"]: job["kind"] for job in plan["jobs"]}, journal.events()
    finally:
        journal.close()


def test_two_studies_started_at_once_train_each_base_once(tmp_path, repo, isolated_store):
    commands = []
    for name, pct in (("study-a", 1.0), ("study-b", 0.5)):
        grid = tmp_path / f"{name}.toml"
        grid.write_text(GRID.format(name=name, pct=pct))
        commands.append(
            [sys.executable, "-m", "invoke", "-r", str(repo), "grid", str(grid),
             "--slots", "2", "--output", str(tmp_path / "runs")]
        )  # fmt: skip
    coordinators = [
        subprocess.Popen(
            c, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for c in commands
    ]
    for coordinator in coordinators:
        output, _ = coordinator.communicate(timeout=600)
        assert coordinator.returncode == 0, output

    trained: list[str] = []
    for name in ("study-a", "study-b"):
        kinds, events = _events(tmp_path / "runs" / name)
        experiments = [job for job, kind in kinds.items() if kind == "experiment"]
        assert len(experiments) == 6
        done = {e["job"] for e in events if e["event"] == "done"}
        assert set(experiments) <= done, f"{name}: every study job finished"
        trained += [e["job"] for e in events if e["event"] == "done" and kinds[e["job"]] == "base"]
    store = Store(str(isolated_store))
    # 3 folds → 3 distinct bases; between the two studies each was trained exactly once
    assert len(store.keys()) == 3
    assert len(trained) == 3 and len(set(trained)) == 3
