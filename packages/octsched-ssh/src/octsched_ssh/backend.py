"""The ``ssh`` backend: each job in its own detached tmux session on a remote host.

Per host and run there is one SSH connection (``asyncssh``), one SFTP channel on
it and one remote agent (``octsched_ssh/remote/agent.py``) that launches jobs in
tmux and reports when they end. Remote layout under the host's ``workdir``::

    .oct-ssh/<digest>/agent.py, jobwrap.sh   helper files, by content
    cache/<sha256>/                          staged inputs, by content (+ <sha256>.complete)
    runs/<run>/jobs/<job>/                   job directories
    runs/<run>/ctl/<job>.session, .status    control files (what re-adoption reads)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import posixpath
import shutil
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncssh

import octcore
from octcore import outputs
from octcore.backend import Backend, Handle, JobStatus, Slot, SlotUnavailable, StagedJob
from octcore.errors import OctError
from octsched_ssh.config import Cluster, HostConfig, SshBackendConfig, load_cluster
from octsched_ssh.connection import HostError, HostLink, Loop
from octsched_ssh.transfer import InputDigests, safe_name, sha256_file

log = logging.getLogger("octsched_ssh")
if logging.getLogger("asyncssh").level == logging.NOTSET:
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # one line per channel otherwise


class TransferError(OctError):
    """A copied file did not match its checksum twice in a row."""


def local_versions() -> dict[str, Any]:
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = None
    return {"octcore": octcore.__version__, "python": platform.python_version(), "torch": torch}


def _release(version: str | None) -> str | None:
    """``2.13.0+cu124`` → ``2.13.0``: a CPU-only coordinator drives CUDA hosts."""
    return version.split("+")[0] if version else None


def version_problem(
    host: HostConfig, info: Mapping[str, Any], here: Mapping[str, Any]
) -> str | None:
    """Why a host must not get jobs, or None.

    octcore must match exactly, torch in its release (``+cu124`` and ``+cpu`` builds
    may differ), Python in major.minor; the host must have tmux, and as many CUDA
    devices as the cluster file gives it (the coordinator's own count says nothing
    about a remote host: it is often a laptop without CUDA).
    """
    if not info.get("tmux"):
        return "tmux is not installed (or not on PATH for non-interactive ssh)"
    if not host.check_versions:
        return None
    problems = []
    if info.get("octcore") != here["octcore"]:
        problems.append(f"octcore {info.get('octcore') or 'missing'} there, {here['octcore']} here")
    if (info.get("python") or "").split(".")[:2] != here["python"].split(".")[:2]:
        problems.append(f"Python {info.get('python')} there, {here['python']} here")
    if _release(info.get("torch")) != _release(here["torch"]):
        problems.append(f"torch {info.get('torch') or 'missing'} there, {here['torch']} here")
    if host.gpus:
        count = int(info.get("gpus") or 0)
        missing = [g for g in host.gpus if not g.isdigit() or int(g) >= count]
        if missing:
            problems.append(
                f"{count} CUDA device(s) there, but the cluster file lists {list(host.gpus)}"
            )
    if problems:
        return "; ".join(problems) + " (invoke cluster.sync updates the code on a host)"
    return None


class SshBackend(Backend):
    name = "ssh"
    cancel_on_interrupt = False  # jobs in tmux outlive the coordinator and are re-adopted

    def __init__(self, cluster: Cluster, run_dir: Path, *, connect: bool = True) -> None:
        self.cluster = cluster
        self.run_dir = Path(run_dir)
        self.run_name = self.run_dir.name
        self.remote_run = safe_name(self.run_name)
        self.loop = Loop()
        self._changed_flag = threading.Event()
        self._here = local_versions()
        self._digests = InputDigests()
        self._warned: set[str] = set()
        self._cancelled: dict[str, int] = {}
        self._closed = False
        self.links = {
            h.name: HostLink(h, self.remote_run, self.loop, self._notify, self._check)
            for h in cluster.hosts
        }
        if connect:
            self.loop.call(
                self._connect_all(), timeout=max(h.connect_timeout for h in cluster.hosts) + 90
            )
            self._report_unusable()
            if not any(link.state == "up" for link in self.links.values()):
                reasons = "\n".join(f"  - {link.reason}" for link in self.links.values())
                self.close()
                raise OctError(f"{cluster.source}: no host can take jobs:\n{reasons}")
            self.loop.spawn(self._reconnect_forever())

    # --- connections --------------------------------------------------------------

    def _notify(self) -> None:
        self._changed_flag.set()

    def _check(self, host: HostConfig, info: dict[str, Any]) -> str | None:
        return version_problem(host, info, self._here)

    async def _connect_all(self) -> None:
        await asyncio.gather(*(link.connect() for link in self.links.values()))

    async def _reconnect_forever(self) -> None:
        while not self._closed:
            interval = min(h.keepalive_interval for h in self.cluster.hosts)
            await asyncio.sleep(max(1.0, interval))
            down = [link for link in self.links.values() if link.state == "down"]
            if down and not self._closed:
                await asyncio.gather(*(link.connect() for link in down))
                for link in down:
                    if link.state == "up":
                        log.warning("host %s: reachable again", link.host.name)
                self._report_unusable()

    def _report_unusable(self) -> None:
        for link in self.links.values():
            if link.state in {"down", "refused"} and link.reason not in self._warned:
                self._warned.add(link.reason)
                log.warning("%s; its slots are skipped", link.reason)

    def _link(self, slot: Slot) -> HostLink:
        link = self.links.get(slot.host)
        if link is None or link.state != "up":
            reason = link.reason if link else f"unknown host {slot.host!r}"
            raise SlotUnavailable(reason or f"host {slot.host} is not connected")
        return link

    def _call(self, coro: Any, timeout: float = 300.0) -> Any:
        try:
            return self.loop.call(coro, timeout)
        except (HostError, asyncssh.Error, OSError, TimeoutError) as exc:
            raise SlotUnavailable(str(exc)) from exc

    # --- Backend ------------------------------------------------------------------

    def slots(self) -> Sequence[Slot]:
        result = []
        for link in self.links.values():
            if link.state != "up":
                continue
            host = link.host
            for gpu in host.gpus:
                for k in range(host.jobs_per_gpu):
                    result.append(Slot(f"{host.name}/gpu{gpu}#{k}", host.name, gpu))
            for k in range(host.cpu_slots):
                result.append(Slot(f"{host.name}/cpu#{k}", host.name, None))
        return result

    def describe(self) -> str:
        up = [n for n, link in self.links.items() if link.state == "up"]
        return f"ssh ({len(up)}/{len(self.links)} hosts up: {', '.join(up) or 'none'})"

    def preference(self, job: StagedJob, slot: Slot) -> int:
        link = self.links.get(slot.host)
        if link is None:
            return 0
        return sum(self._digests.of(path)[0] in link.cached_inputs for path in job.inputs.values())

    def _job_paths(self, link: HostLink, job_id: str) -> tuple[str, str, str]:
        name = safe_name(job_id)
        job_dir = posixpath.join(link.run_root, "jobs", name)
        control = posixpath.join(link.run_root, "ctl", name)
        return name, job_dir, control

    def stage(self, job: StagedJob, slot: Slot) -> None:
        link = self._link(slot)
        name, job_dir, _ = self._job_paths(link, job.job_id)
        spec = json.loads((job.job_dir / outputs.SPEC).read_text())
        inputs = {str(k): Path(v) for k, v in (spec.get("inputs") or {}).items()}
        inputs.update(job.inputs)
        remote_inputs = {}
        for key, path in inputs.items():
            remote_inputs[key] = self._call(self._put_input(link, Path(path)))
        spec["job_dir"] = job_dir
        if remote_inputs:
            spec["inputs"] = remote_inputs
        files = {outputs.SPEC: json.dumps(spec, indent=2, sort_keys=True)}
        session = self._session(job.job_id)
        self._call(link.request("stage", job=name, job_dir=job_dir, files=files, session=session))

    async def _put_input(self, link: HostLink, local: Path) -> str:
        digest, files = self._digests.of(local)
        target = posixpath.join(link.workdir, "cache", digest)
        if digest in link.cached_inputs:
            return target
        if not await link.request("cache_has", path=target):
            sftp = link.sftp
            assert sftp is not None
            tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
            folders = {posixpath.dirname(posixpath.join(tmp, rel)) for rel in files} | {tmp}
            for folder in sorted(folders):
                await sftp.makedirs(folder, exist_ok=True)
            await asyncio.gather(
                *(sftp.put(str(local / rel), posixpath.join(tmp, rel)) for rel in files)
            )
            await link.request("cache_commit", tmp=tmp, path=target, expected=files)
        link.cached_inputs.add(digest)
        return target

    def _session(self, job_id: str) -> str:
        return f"oct-{safe_name(self.run_name, 40)}-{safe_name(job_id)}"

    def launch(self, job: StagedJob, slot: Slot) -> Handle:
        link = self._link(slot)
        name, job_dir, control = self._job_paths(link, job.job_id)
        token = uuid.uuid4().hex[:16]
        session = self._session(job.job_id)
        env = [f"CUDA_VISIBLE_DEVICES={slot.gpu if slot.gpu is not None else ''}"]
        # base models reach a host as staged inputs and go back to the coordinator's
        # store with the results: a job never reads or writes a store on the host
        env.append("OCT_STORE=off")
        if slot.threads:
            env.append(f"OCT_NUM_THREADS={slot.threads}")
        argv = ["sh", link.helper("jobwrap.sh"), job_dir, control, token, session, link.host.python]
        self._call(
            link.request(
                "launch", job=name, job_dir=job_dir, session=session, token=token, argv=argv + env
            )
        )
        link.jobs[name] = {"job": name, "token": token, "state": "running"}
        return {
            "slot": slot.name,
            "host": link.host.name,
            "job": name,
            "session": session,
            "token": token,
            "job_dir": job_dir,
        }

    def _status(self, handle: Handle) -> JobStatus:
        key = f"{handle['host']}/{handle['job']}/{handle['token']}"
        if key in self._cancelled:
            return JobStatus("exited", self._cancelled[key], "cancelled")
        link = self.links.get(handle["host"])
        if link is None:
            return JobStatus("lost", None, f"host {handle['host']} is not in the cluster file")
        if link.state != "up":
            since = link.down_since or time.monotonic()
            waited = time.monotonic() - since
            if link.state == "refused" or waited >= link.host.lost_after:
                return JobStatus("lost", None, f"{link.reason} ({waited:.0f}s)")
            return JobStatus("running", None, f"host unreachable for {waited:.0f}s")
        report = link.jobs.get(handle["job"])
        if report is None or report.get("token") != handle["token"]:
            return JobStatus("lost", None, f"no trace of the job on host {link.host.name}")
        if report["state"] == "exited":
            return JobStatus("exited", int(report["rc"]))
        if report["state"] == "lost":
            return JobStatus(
                "lost", None, f"tmux session {handle['session']} ended without a status"
            )
        return JobStatus("running")

    def poll(self, handles: Mapping[str, Handle]) -> Mapping[str, JobStatus]:
        return {job_id: self._status(handle) for job_id, handle in handles.items()}

    def wait(self, timeout: float) -> None:
        self._changed_flag.wait(timeout)
        self._changed_flag.clear()

    def collect(self, job: StagedJob, handle: Handle) -> None:
        if outputs.is_complete(job.job_dir):
            log.info("job %s: a complete result is already here; the copy on %s is not used",
                     job.job_id, handle["host"])  # fmt: skip
            return
        link = self.links.get(handle["host"])
        if link is None or link.state != "up":
            raise SlotUnavailable(f"host {handle['host']} is not reachable to collect {job.job_id}")
        self._call(self._collect(link, job, handle), timeout=3600)
        if link.host.cleanup_remote:
            self._call(link.request("remove", paths=[handle["job_dir"]]))
            self._call(link.request("forget", job=handle["job"], token=handle["token"]))

    async def _collect(self, link: HostLink, job: StagedJob, handle: Handle) -> None:
        report = link.jobs.get(handle["job"]) or {}
        files = report.get("manifest") if report.get("token") == handle["token"] else None
        if files is None:
            files = await link.request("manifest", path=handle["job_dir"])
        files = {rel: meta for rel, meta in files.items() if rel != outputs.SPEC}
        staging = job.job_dir / f".collect-{handle['token']}"
        shutil.rmtree(staging, ignore_errors=True)
        sftp = link.sftp
        assert sftp is not None
        try:
            for folder in {(staging / rel).parent for rel in files} | {staging}:
                folder.mkdir(parents=True, exist_ok=True)
            pending = dict(files)
            for _ in range(2):
                await asyncio.gather(
                    *(
                        sftp.get(posixpath.join(handle["job_dir"], rel), str(staging / rel))
                        for rel in pending
                    )
                )
                pending = {
                    rel: meta
                    for rel, meta in pending.items()
                    if [(staging / rel).stat().st_size, sha256_file(staging / rel)] != list(meta)
                }
                if not pending:
                    break
            if pending:
                raise TransferError(
                    f"job {job.job_id}: files copied from {link.host.name} do not match their "
                    f"sha256 twice: {sorted(pending)[:5]}"
                )
            # result.json last: a reader that sees it sees every other file
            for rel in sorted(files, key=lambda r: r == outputs.RESULT):
                target = job.job_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def cancel(self, handle: Handle) -> None:
        link = self.links.get(handle["host"])
        key = f"{handle['host']}/{handle['job']}/{handle['token']}"
        if link is None or link.state != "up":
            status = self._status(handle)
            if status.state == "running":
                self._cancelled[key] = 143
            return
        try:
            self.loop.call(link.request("cancel", job=handle["job"], token=handle["token"]), 60)
        except (HostError, asyncssh.Error, OSError, TimeoutError) as exc:
            log.warning("cancel %s on %s: %s", handle["job"], handle["host"], exc)
            self._cancelled[key] = 143

    def adopt(self, job: StagedJob, handle: Handle) -> JobStatus:
        link = self.links.get(handle["host"])
        if link is None:
            return JobStatus("lost", None, f"host {handle['host']} is not in the cluster file")
        if link.state != "up":
            return self._status(handle)
        try:
            found = self.loop.call(
                link.request("query", job=handle["job"], token=handle["token"]), 60
            )
        except (HostError, asyncssh.Error, OSError, TimeoutError):
            return self._status(handle)
        if found["state"] == "exited":
            link.jobs[handle["job"]] = {
                "job": handle["job"], "token": handle["token"], "state": "exited",
                "rc": found["rc"], "manifest": found.get("manifest"),
            }  # fmt: skip
            return JobStatus("exited", int(found["rc"]))
        if found["state"] == "running":
            link.jobs.setdefault(
                handle["job"], {"job": handle["job"], "token": handle["token"], "state": "running"}
            )
            return JobStatus("running")
        return JobStatus("lost", None, found.get("detail", ""))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def close_all() -> None:
            await asyncio.gather(
                *(link.close() for link in self.links.values()), return_exceptions=True
            )

        with contextlib.suppress(TimeoutError):
            self.loop.call(close_all(), 15)
        self.loop.stop()


def make_backend(config: SshBackendConfig, run_dir: Path) -> SshBackend:
    return SshBackend(load_cluster(config.cluster), run_dir)
