"""Two-phase planning over SSH: a small HAPT grid trains each base once, stages it once
per host (checksum-verified), and a second study on the same store trains none.

Needs the ``octcache`` package as well (the full test suite installs it; the
package's own nox session does not, and skips this file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from octcore import outputs
from octcore.executor.journal import Journal

pytest.importorskip("octcache")
pytestmark = pytest.mark.slow

GRID = """
name = "{name}"
folds = [0, 1]

[experiment]
dataset = {{ name = "hapt" }}
participants = ["1", "2", "3", "4"]
n_base_participants = 2
model = {{ name = "cnn1d", base_channels = 4, num_blocks = 2 }}
max_epochs = 1
target_data_pct = {pct}

[axes]
mode = ["full_fine_tuning", "target_only_fine_tuning"]
"""


def _run(tmp_path: Path, cluster: Path, name: str, pct: float) -> tuple[Path, dict, list[str]]:
    from octcore.cli.runs import run_grid

    grid = tmp_path / f"{name}.toml"
    grid.write_text(GRID.format(name=name, pct=pct))
    assert run_grid(grid, "ssh", {"cluster": str(cluster)}, output=tmp_path / "runs") == 0
    run_dir = tmp_path / "runs" / name
    plan = json.loads((run_dir / "plan.json").read_text())
    kinds = {job["id"]: job["kind"] for job in plan["jobs"]}
    journal = Journal.of_run(run_dir, readonly=True)
    done = [e["job"] for e in journal.events() if e["event"] == "done"]
    journal.close()
    trained = [job for job in done if kinds[job] == "base"]
    return run_dir, plan, trained


def test_hapt_grid_over_ssh_trains_each_base_once(ssh_hosts, tmp_path, monkeypatch):
    monkeypatch.setenv("OCT_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("OCT_STORE_CACHE", str(tmp_path / "store-cache"))
    cluster = ssh_hosts.cluster_toml(tmp_path / "cluster.toml")

    run_dir, plan, trained = _run(tmp_path, cluster, "first", 1.0)
    experiments = [job for job in plan["jobs"] if job["kind"] == "experiment"]
    assert len(experiments) == 4
    # fold 0 → base {2, 3}; fold 1 → base {1, 3}: two distinct bases, each trained once
    assert len(trained) == len(set(trained)) == 2
    base_scores: dict[str, set[str]] = {}
    for job in experiments:
        job_dir = run_dir / "jobs" / job["id"]
        assert outputs.is_complete(job_dir)
        metrics = json.loads((job_dir / outputs.METRICS).read_text())
        assert metrics["base"]["reused_from"], "the target job adapted the staged base"
        base_scores.setdefault(metrics["target"], set()).add(json.dumps(metrics["base"]["test"]))
    # both modes of one fold adapted the very same base model
    assert all(len(scores) == 1 for scores in base_scores.values())
    # each host holds at most one staged copy of each base
    for host in ssh_hosts.hosts:
        cache = tmp_path / f"{host.name}-work" / "cache"
        if cache.exists():
            assert len([p for p in cache.iterdir() if p.is_dir()]) <= 2

    # a second study needing the same bases trains none of them
    _, plan2, trained2 = _run(tmp_path, cluster, "second", 0.5)
    assert trained2 == []
    assert all(job["kind"] == "experiment" for job in plan2["jobs"])
