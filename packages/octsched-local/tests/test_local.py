"""The local backend's own rules: slots from the config, thread limits, devices, the entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from octcore import outputs
from octcore.backend import StagedJob
from octcore.plugins import make_plugin_manager
from octcore.testing.backend_contract import stand_in_job, wait_for
from octsched_local import procs
from octsched_local.backend import LocalBackend
from octsched_local.config import LocalConfig, cpu_count


def test_registered_through_the_entry_point():
    plugins = make_plugin_manager(strict=True)
    spec = plugins.backends.get("local")
    assert spec.config_cls is LocalConfig
    assert "octsched-local" in plugins.backends.owner("local")
    backend = spec.factory(LocalConfig(slots=1), None)
    assert isinstance(backend, LocalBackend) and backend.cancel_on_interrupt


def test_cpu_slots_share_the_cores():
    backend = LocalBackend(LocalConfig(slots=2))
    slots = backend.slots()
    assert [s.name for s in slots] == ["local/cpu0", "local/cpu1"]
    assert all(s.gpu is None and s.threads == max(1, cpu_count() // 2) for s in slots)


def test_gpu_slots():
    backend = LocalBackend(LocalConfig(gpus=(0, 2), jobs_per_gpu=2))
    assert [(s.name, s.gpu) for s in backend.slots()] == [
        ("local/gpu0#0", "0"),
        ("local/gpu0#1", "0"),
        ("local/gpu2#0", "2"),
        ("local/gpu2#1", "2"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slots": 0}, "at least 1"),
        ({"gpus": ()}, "at least one"),
        ({"gpus": (1, 1)}, "distinct"),
        ({"slots": 2, "gpus": (0,)}, "either"),
        ({"jobs_per_gpu": 0}, "at least 1"),
    ],
)
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LocalConfig(**kwargs)


def test_stage_sets_the_device_from_the_slot(tmp_path):
    job_dir = tmp_path / "jobs/x"
    job_dir.mkdir(parents=True)
    (job_dir / outputs.SPEC).write_text(json.dumps({"experiment": {"device": "auto", "seed": 1}}))
    job = StagedJob("x", "run", job_dir)
    cpu = LocalBackend(LocalConfig(slots=1))
    cpu.stage(job, cpu.slots()[0])
    assert json.loads((job_dir / outputs.SPEC).read_text())["experiment"] == {
        "device": "cpu",
        "seed": 1,
    }
    gpu = LocalBackend(LocalConfig(gpus=(3,)))
    gpu.stage(job, gpu.slots()[0])
    assert json.loads((job_dir / outputs.SPEC).read_text())["experiment"]["device"] == "cuda"


def test_job_environment_limits_threads_and_gpus(tmp_path):
    """The job sees its thread limit and only its GPU (checked through a job's environment)."""
    backend = LocalBackend(LocalConfig(gpus=(5,)))
    job = stand_in_job(tmp_path, "env", sleep=30)
    handle = backend.launch(job, backend.slots()[0])
    try:
        text = Path(f"/proc/{handle['pid']}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in text if b"=" in item)
        assert env["CUDA_VISIBLE_DEVICES"] == "5"
        assert env["OMP_NUM_THREADS"] == env["OCT_NUM_THREADS"] == str(backend.slots()[0].threads)
        assert os.getpgid(handle["pid"]) == handle["pid"]  # its own process group
        assert handle["start"] == procs.start_time(handle["pid"])
    finally:
        backend.cancel(handle)
        wait_for(backend, job, handle, until=lambda s: s.state != "running")


def test_a_reused_pid_is_not_our_job(tmp_path):
    """Adoption checks the start time: a live process with another start time is not the job."""
    backend = LocalBackend(LocalConfig(slots=1))
    job = stand_in_job(tmp_path, "other")
    handle = {
        "pid": os.getpid(),
        "start": (procs.start_time(os.getpid()) or 0) + 1,
        "slot": "local/cpu0",
    }
    assert backend.adopt(job, handle).state == "lost"
