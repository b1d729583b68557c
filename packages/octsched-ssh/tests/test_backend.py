"""The ssh backend on real hosts: staging, safety, refusals, collection rules, cluster tasks."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from pathlib import Path

import pytest

from octcore import outputs
from octcore.errors import OctError
from octcore.testing.backend_contract import finished, stand_in_job, wait_for
from octsched_ssh.backend import SshBackend
from octsched_ssh.config import load_cluster

pytestmark = pytest.mark.ssh


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


def backend_for(ssh_hosts, tmp_path, run_dir, **settings) -> SshBackend:
    cluster = ssh_hosts.cluster_toml(tmp_path / "cluster.toml", **settings)
    return SshBackend(load_cluster(cluster), run_dir)


def run_one(backend, job, slot=None):
    slot = slot or backend.slots()[0]
    backend.stage(job, slot)
    handle = backend.launch(job, slot)
    status = wait_for(backend, job, handle, until=finished)
    return handle, status


def test_hostile_names_reach_the_job_as_data(ssh_hosts, tmp_path):
    marker = Path("/tmp") / f"pwned-{uuid.uuid4().hex}"
    hostile = f"x; touch {marker}"
    run_dir = tmp_path / "r; touch pwned $(touch pwned2) `touch pwned3`"
    run_dir.mkdir()
    cluster = ssh_hosts.cluster_toml(tmp_path / "cluster.toml")
    backend = SshBackend(load_cluster(cluster), run_dir)
    try:
        job = stand_in_job(
            run_dir, "j; touch pwned4 'q\"", metrics={"participant": hostile, "prefix": hostile}
        )
        handle, status = run_one(backend, job)
        assert (status.state, status.exit_code) == ("exited", 0), status
        backend.collect(job, handle)
        assert json.loads((job.job_dir / outputs.METRICS).read_text()) == {
            "participant": hostile,
            "prefix": hostile,
        }
    finally:
        backend.close()
    assert not marker.exists()
    for root in (tmp_path, Path.home(), Path("/tmp")):
        assert not list(root.glob("pwned*")), list(root.glob("pwned*"))


def test_inputs_are_copied_once_per_host_verified_and_preferred(ssh_hosts, tmp_path, run_dir):
    source = tmp_path / "base-model"
    (source / "sub").mkdir(parents=True)
    (source / "base_model.pt").write_bytes(bytes(range(256)) * 100)
    (source / "sub" / "base.json").write_text('{"k": 1}')
    backend = backend_for(ssh_hosts, tmp_path, run_dir)
    try:
        first, _second, other = backend.slots()[:3]
        job1 = stand_in_job(run_dir, "in1", inputs={"base": source})
        assert backend.preference(job1, first) == 0
        _handle1, status = run_one(backend, job1, first)
        assert status.exit_code == 0
        job2 = stand_in_job(run_dir, "in2", inputs={"base": source})
        assert backend.preference(job2, first) == 1 > backend.preference(job2, other)
        link = backend.links[first.host]
        cache = Path(link.workdir) / "cache"
        (entry,) = [p for p in cache.iterdir() if p.is_dir()]
        stamp = (entry / "base_model.pt").stat().st_mtime_ns
        handle2, status = run_one(backend, job2, first)
        assert status.exit_code == 0
        assert [p for p in cache.iterdir() if p.is_dir()] == [entry]  # not copied again
        assert (entry / "base_model.pt").stat().st_mtime_ns == stamp
        assert (entry / "base_model.pt").read_bytes() == (source / "base_model.pt").read_bytes()
        remote_spec = json.loads((Path(handle2["job_dir"]) / outputs.SPEC).read_text())
        assert remote_spec["inputs"] == {"base": str(entry)}
        assert remote_spec["job_dir"] == handle2["job_dir"]
        backend.collect(job2, handle2)
        local_spec = json.loads((job2.job_dir / outputs.SPEC).read_text())
        assert local_spec["job_dir"] == str(job2.job_dir)  # the local spec is kept
    finally:
        backend.close()


def test_wrong_host_key_is_refused_with_a_clear_message(ssh_hosts, tmp_path, run_dir, caplog):
    from sshhosts import keygen

    impostor = tmp_path / "impostor_key"
    keygen(impostor, "impostor")
    h1 = ssh_hosts.hosts[0]
    lines = [h.known_hosts_line(impostor if h is h1 else None) for h in ssh_hosts.hosts]
    ssh_hosts.known_hosts.write_text("".join(lines))
    with caplog.at_level(logging.WARNING, logger="octsched_ssh"):
        backend = backend_for(ssh_hosts, tmp_path, run_dir)
    try:
        assert backend.links["h1"].state == "refused"
        assert {s.host for s in backend.slots()} == {"h2", "h3"}
        message = backend.links["h1"].reason
        assert "h1" in message and "host key" in message and "known_hosts" in message
        assert any("h1" in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)
    finally:
        backend.close()


def test_no_usable_host_fails_before_anything_runs(ssh_hosts, tmp_path, run_dir):
    ssh_hosts.known_hosts.write_text("")
    with pytest.raises(OctError, match="no host can take jobs"):
        backend_for(ssh_hosts, tmp_path, run_dir)


def test_version_mismatch_refuses_the_host(ssh_hosts, tmp_path, run_dir, monkeypatch):
    import octsched_ssh.backend as module

    here = module.local_versions()
    monkeypatch.setattr(module, "local_versions", lambda: dict(here, octcore="9.9.9"))
    with pytest.raises(OctError) as caught:
        backend_for(ssh_hosts, tmp_path, run_dir)
    message = str(caught.value)
    for name in ("h1", "h2", "h3"):
        assert (
            f"host {name}: refusing to dispatch: octcore {here['octcore']} there, 9.9.9 here"
            in message
        )
    assert "cluster.sync" in message


def test_a_complete_local_result_is_not_overwritten(ssh_hosts, tmp_path, run_dir):
    backend = backend_for(ssh_hosts, tmp_path, run_dir)
    try:
        job = stand_in_job(run_dir, "dup", metrics={"from": "remote"})
        handle, _status = run_one(backend, job)
        (job.job_dir / outputs.METRICS).write_text('{"from": "first"}')
        (job.job_dir / outputs.RESULT).write_text('{"state": "done"}')
        backend.collect(job, handle)
        assert json.loads((job.job_dir / outputs.METRICS).read_text()) == {"from": "first"}
    finally:
        backend.close()


def test_cleanup_remote_removes_the_remote_copy_only_when_asked(ssh_hosts, tmp_path, run_dir):
    backend = backend_for(ssh_hosts, tmp_path, run_dir, cleanup_remote=True)
    try:
        job = stand_in_job(run_dir, "tidy")
        handle, _ = run_one(backend, job)
        backend.collect(job, handle)
        assert outputs.is_complete(job.job_dir)
        assert not Path(handle["job_dir"]).exists()
    finally:
        backend.close()
    backend = backend_for(ssh_hosts, tmp_path, run_dir)
    try:
        job = stand_in_job(run_dir, "kept")
        handle, _ = run_one(backend, job)
        backend.collect(job, handle)
        assert (Path(handle["job_dir"]) / outputs.RESULT).exists()
    finally:
        backend.close()


def test_sessions_of_other_runs_are_left_alone(ssh_hosts, tmp_path):
    h1 = ssh_hosts.hosts[0]
    h1.tmux("new-session", "-d", "-s", "oct-other-j1", "sleep 60")
    h1.tmux("new-session", "-d", "-s", "oct-run-j10", "sleep 60")  # a prefix match must not hit it
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    backend = backend_for(ssh_hosts, tmp_path, run_dir)
    try:
        job = stand_in_job(run_dir, "j1", sleep=30)
        slot = next(s for s in backend.slots() if s.host == "h1")
        backend.stage(job, slot)
        handle = backend.launch(job, slot)
        assert handle["session"] == "oct-run-j1"
        backend.cancel(handle)
        wait_for(backend, job, handle, until=finished)
        assert {"oct-other-j1", "oct-run-j10"} <= set(h1.tmux_sessions())
        assert "oct-run-j1" not in h1.tmux_sessions()
    finally:
        backend.close()


def test_a_host_that_comes_back_is_used_again(ssh_hosts, tmp_path, run_dir):
    backend = backend_for(ssh_hosts, tmp_path, run_dir, lost_after=2)
    try:
        h3 = ssh_hosts.hosts[2]
        job = stand_in_job(run_dir, "victim", sleep=60)
        slot = next(s for s in backend.slots() if s.host == "h3")
        backend.stage(job, slot)
        handle = backend.launch(job, slot)
        h3.kill()
        status = wait_for(backend, job, handle, until=finished)
        assert status.state == "lost" and "h3" in status.detail
        assert "h3" not in {s.host for s in backend.slots()}
        h3.start()
        deadline = time.monotonic() + 30
        while "h3" not in {s.host for s in backend.slots()} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "h3" in {s.host for s in backend.slots()}
        again = stand_in_job(run_dir, "again")
        handle, status = run_one(backend, again, next(s for s in backend.slots() if s.host == "h3"))
        assert status.exit_code == 0
    finally:
        backend.close()


def test_cluster_check_reports_each_host(ssh_hosts, tmp_path):
    from octsched_ssh.check import check_cluster

    extra = '\n[[hosts]]\nname = "gone"\naddress = "127.0.0.99"\nport = 9\nconnect_timeout = 1\n'
    cluster = load_cluster(ssh_hosts.cluster_toml(tmp_path / "cluster.toml", extra_hosts=extra))
    reports = {r.host: r for r in check_cluster(cluster)}
    for name in ("h1", "h2", "h3"):
        r = reports[name]
        assert (r.reachable, r.auth, r.host_key, r.problem) == ("yes", "ok", "ok", None), r
        assert r.tmux.startswith("tmux") and r.octcore != "MISSING" and r.disk_free != "-"
    assert reports["gone"].reachable == "NO" and "gone" in reports["gone"].problem


def test_cluster_check_task_prints_a_table(ssh_hosts, tmp_path):
    import subprocess
    import sys

    cluster = ssh_hosts.cluster_toml(tmp_path / "cluster.toml")
    code = (
        "import sys; from octcore.cli.program import main; "
        "sys.argv=['oct','cluster.check','--cluster',sys.argv[1]]; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(cluster)],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for text in ("h1", "h2", "h3", "host key", "octcore"):
        assert text in done.stdout


def test_cluster_sync_copies_the_project(ssh_hosts, tmp_path):
    from octsched_ssh.sync import sync_cluster

    source = tmp_path / "checkout"
    (source / "packages" / "octcore" / "src").mkdir(parents=True)
    (source / "packages" / "octcore" / "pyproject.toml").write_text("[project]\nname='octcore'\n")
    (source / "tasks.py").write_text("# tasks\n")
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref")
    cluster = load_cluster(ssh_hosts.cluster_toml(tmp_path / "cluster.toml"))
    results = sync_cluster(cluster, source, install=False)
    for host in ssh_hosts.hosts:
        assert "copied" in results[host.name], results[host.name]
        code = tmp_path / f"{host.name}-work" / "code"
        assert (code / "tasks.py").read_text() == "# tasks\n"
        assert (code / "packages" / "octcore" / "pyproject.toml").exists()
        assert not (code / ".git").exists()


def test_unknown_host_is_trusted_on_first_use_only_when_asked(ssh_hosts, tmp_path, run_dir, caplog):
    ssh_hosts.known_hosts.write_text("")
    with caplog.at_level(logging.WARNING, logger="octsched_ssh"):
        backend = backend_for(ssh_hosts, tmp_path, run_dir, trust_on_first_use=True)
    try:
        assert {s.host for s in backend.slots()} == {"h1", "h2", "h3"}
        recorded = ssh_hosts.known_hosts.read_text()
        for host in ssh_hosts.hosts:
            assert host.known_hosts_line() in recorded
        assert any("trusted its key on first use" in r.getMessage() for r in caplog.records)
    finally:
        backend.close()


def test_ssh_config_host_alias_is_resolved(ssh_hosts, tmp_path, run_dir):
    h2 = ssh_hosts.hosts[1]
    config = tmp_path / "ssh_config"
    config.write_text(f"Host lab-two\n  HostName {h2.address}\n  Port {h2.port}\n")
    body = (
        f'[defaults]\nidentity_file = "{ssh_hosts.client_key}"\n'
        f'known_hosts = "{ssh_hosts.known_hosts}"\n'
        f'ssh_config = "{config}"\npython = "{sys.executable}"\nuser = "{ssh_hosts.user}"\n\n'
        f'[[hosts]]\nname = "two"\naddress = "lab-two"\nworkdir = "{tmp_path / "w2"}"\n'
    )
    (tmp_path / "alias.toml").write_text(body)
    backend = SshBackend(load_cluster(tmp_path / "alias.toml"), run_dir)
    try:
        job = stand_in_job(run_dir, "via-alias")
        handle, status = run_one(backend, job)
        assert (status.state, status.exit_code) == ("exited", 0)
        backend.collect(job, handle)
        assert outputs.is_complete(job.job_dir)
    finally:
        backend.close()
