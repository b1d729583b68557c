"""``invoke grid`` (flags, dry run, errors before any write), ``invoke status``, ``invoke logs``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from octcore import fsio, outputs
from octcore.cli.runs import backend_config, print_status, run_grid, show_log
from octcore.errors import ConfigError, OctError, UnknownNameError
from octcore.executor.journal import Journal
from octcore.executor.runs import LOCK
from octcore.plugins import make_plugin_manager

local_plugin = pytest.importorskip("octsched_local.plugin")

GRID = """
name = "small"
folds = [0, 1]
[experiment]
max_epochs = 1
dataset = {name = "synthetic", participants = 3}
model = {name = "cnn1d", base_channels = 4}
[axes]
mode = ["target_only", "full_fine_tuning"]
target_data_pct = [0.5, 1.0]
"""


@pytest.fixture(scope="module")
def local_plugins():
    return make_plugin_manager(strict=True, entry_points_=False, extra_plugins=[local_plugin])


@pytest.fixture
def grid_file(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(GRID)
    return path


def test_dry_run_prints_the_jobs_and_writes_nothing(tmp_path, grid_file, local_plugins, capsys):
    output = tmp_path / "runs"
    code = run_grid(
        grid_file, "local", {"slots": 2}, dry_run=True, output=output, plugins=local_plugins
    )
    out = capsys.readouterr().out
    assert code == 0 and not output.exists()
    assert "small: 8 jobs" in out and "nothing was run" in out
    assert "target_data_pct" in out and "full_fine_tuning, fold 1" in out


def test_a_bad_grid_stops_before_anything_is_written(tmp_path, local_plugins):
    path = tmp_path / "bad.toml"
    path.write_text(GRID.replace('"target_only",', '"target_only", "nonsense",'))
    with pytest.raises(ConfigError, match=r"axes.mode\[1\]"):
        run_grid(path, "local", {"slots": 2}, output=tmp_path / "runs", plugins=local_plugins)
    assert not (tmp_path / "runs").exists()


def test_flags_that_do_not_apply_to_the_backend(local_plugins):
    spec = local_plugins.backends.get("local")
    with pytest.raises(ConfigError) as caught:
        backend_config(spec, {"cluster": "hosts.toml", "gpus": "0,x", "slots": None})
    text = str(caught.value)
    assert "--cluster: does not apply to the local backend" in text
    assert "--gpus: expected GPU indices" in text
    with pytest.raises(ConfigError, match="either slots"):
        backend_config(spec, {"slots": "2", "gpus": "0"})
    with pytest.raises(ConfigError, match="slots must be at least 1"):
        backend_config(spec, {"slots": "0"})
    config = backend_config(spec, {"gpus": "0,1", "jobs_per_gpu": "2"})
    assert config.gpus == (0, 1) and config.jobs_per_gpu == 2


def test_an_unknown_backend_lists_the_installed_ones(grid_file, local_plugins, tmp_path):
    with pytest.raises(UnknownNameError, match="installed: local"):
        run_grid(grid_file, "nope", {}, output=tmp_path / "runs", plugins=local_plugins)


def test_the_command_line_dry_run(grid_file, tmp_path):
    command = [
        sys.executable,
        "-c",
        "from octcore.cli.program import main; main()",
        "grid",
        str(grid_file),
        "--dry-run",
        "--output",
        str(tmp_path / "runs"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "nothing was run" in done.stdout
    bad = subprocess.run(
        [*command[:3], "grid", str(grid_file), "--backend", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "unknown backend 'nope'" in bad.stderr


def fake_run(root: Path, count: int) -> Path:
    run_dir = root / "study"
    journal = Journal.of_run(run_dir)
    journal.sync_plan((f"{i:016x}", "experiment", f"job {i}") for i in range(count))
    journal.update(
        f"{0:016x}",
        "launched",
        state="running",
        slot="local/cpu0",
        started=time.time(),
        attempts=1,
        handle={"pid": 1},
    )
    journal.update(f"{1:016x}", "failed", state="failed", detail="exit status 1", attempts=2)
    journal.update(f"{2:016x}", "done", state="done", seconds=12.0, attempts=1)
    journal.close()
    return run_dir


def test_status_reads_the_journal(tmp_path, capsys):
    run_dir = fake_run(tmp_path, 30)
    print_status("study", tmp_path, limit=10)
    out = capsys.readouterr().out
    assert "queued 27" in out and "running 1" in out and "done 1" in out and "failed 1" in out
    assert "local/cpu0" in out and "exit status 1" in out and "20 more jobs" in out
    assert "no coordinator running" in out
    (run_dir / LOCK).write_text(f"{__import__('os').getpid()}\n")
    print_status(str(run_dir), "elsewhere")
    assert "coordinator running (pid" in capsys.readouterr().out


def test_status_of_an_unknown_run_lists_known_ones(tmp_path):
    fake_run(tmp_path, 1)
    with pytest.raises(OctError, match=r"runs under .*: study"):
        print_status("nope", tmp_path)


def test_logs_by_id_prefix_and_follow(tmp_path, capsys):
    run_dir = fake_run(tmp_path, 20)
    job = f"{2:016x}"
    fsio.write_text(run_dir / "jobs" / job / outputs.LOG, "epoch 1\nepoch 2\n")
    show_log("study", job[-3:].rjust(16, "0"), tmp_path)
    assert capsys.readouterr().out == "epoch 1\nepoch 2\n"
    show_log("study", job, tmp_path, follow=True)  # a finished job: prints and returns
    assert "epoch 2" in capsys.readouterr().out
    with pytest.raises(OctError, match="matches 16 jobs"):
        show_log("study", "000000000000000", tmp_path)
    with pytest.raises(OctError, match="no job 'zz'"):
        show_log("study", "zz", tmp_path)
    with pytest.raises(OctError, match="no log yet"):
        show_log("study", f"{5:016x}", tmp_path)


def test_live_view_shows_counts_slots_and_eta():
    from rich.console import Console

    from octcore.executor.executor import RunningJob, Snapshot
    from octcore.executor.live import LiveView
    from octcore.plan import PlannedJob

    console = Console(file=__import__("io").StringIO(), width=120, force_terminal=True)
    view = LiveView(console, "study: 10 jobs")
    counts = {"pending": 5, "running": 2, "done": 3, "failed": 0, "timeout": 0, "blocked": 0}
    running = (RunningJob("abc", "full_fine_tuning, fold 0", "local/cpu1", 75.0),)
    view.update(Snapshot(counts, running, slots=2, mean_seconds=60.0))
    view.event(PlannedJob("abc", None, label="full_fine_tuning, fold 0"), "launched", "local/cpu1")
    console.print(view.render())
    text = console.file.getvalue()
    assert "queued 5" in text and "running 2" in text and "done 3" in text
    assert "local/cpu1" in text and "1:15" in text and "ETA 3:30" in text
    assert "abc launched" in text
