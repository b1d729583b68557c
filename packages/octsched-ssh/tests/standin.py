"""Grids of stand-in jobs run by the real executor (no training: the machinery is under test).

``python standin.py GRID RUN_DIR CLUSTER SLEEP`` runs one coordinator (the
coordinator-restart test starts it as a process and kills it with SIGKILL).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from octcore import fsio, outputs
from octcore.executor import Executor, ExecutorOptions
from octcore.executor.runs import participants_lookup
from octcore.grid import load_grid
from octcore.plan import PlannedJob, independent_plan
from octcore.plugins import default_plugins
from octsched_ssh.backend import SshBackend
from octsched_ssh.config import load_cluster


def write_grid(path: Path, participants: int = 3, lrs: int = 3) -> Path:
    """A grid of ``participants * lrs`` experiments on the synthetic data set."""
    values = ", ".join(f"{(i + 1) * 1e-3:g}" for i in range(lrs))
    path.write_text(
        f'name = "{path.stem}"\nfolds = "all"\n\n[experiment]\nmax_epochs = 1\n'
        f'dataset = {{ name = "synthetic", participants = {participants} }}\n'
        'model = { name = "cnn1d", base_channels = 4 }\n\n'
        f"[axes]\nlr = [{values}]\n"
    )
    return path


class StandInExecutor(Executor):
    """The real executor, writing a stand-in spec (sleep, then metrics naming the job)."""

    sleep = 1.0

    def _write_spec(self, job: PlannedJob, staged: Any) -> None:
        spec = {
            "stand_in": {"sleep": self.sleep, "metrics": {"job": job.id}},
            "job_dir": str(staged.job_dir),
        }
        fsio.write_json(staged.job_dir / outputs.SPEC, spec)


def run_stand_in_grid(grid: Path, run_dir: Path, cluster: Path, sleep: float) -> Any:
    plugins = default_plugins()
    loaded = load_grid(grid, plugins)
    plan = independent_plan(loaded.experiments, participants_lookup(plugins))
    run_dir.mkdir(parents=True, exist_ok=True)
    backend = SshBackend(load_cluster(cluster), run_dir)
    executor = StandInExecutor(plan, backend, run_dir, plugins, ExecutorOptions(tick=0.5))
    executor.sleep = sleep
    return executor.run()


if __name__ == "__main__":
    summary = run_stand_in_grid(
        Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
    )
    print(json.dumps(dict(summary.counts)))
