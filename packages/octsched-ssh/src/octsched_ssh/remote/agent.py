"""oct's remote agent: one per host and run, started by the ssh backend over its connection.

It runs on the remote host with nothing but the standard library. The coordinator
sends requests as JSON lines on stdin; the agent answers on stdout and, between
answers, reports job state changes (``running``, ``exited``, ``lost``). Why an
agent: every request is a line on one already-open channel, so a job costs no new
ssh channel, login shell or process start beyond tmux's own, and completion is
noticed by one watcher per host (inotify on the run's control directory, a cheap
local stat loop where inotify is missing), never by polling each job over the
network. Jobs live in tmux, not under the agent: when stdin closes (the
coordinator went away) the agent exits and the jobs keep running; the next agent
re-finds them from the control files.

Control files, per job, in ``RUN_ROOT/ctl``: ``JOB.session`` (JSON: session,
token, job_dir; written once the tmux session exists) and ``JOB.status``
(``EXIT_STATUS TOKEN``, written atomically by the job wrapper).

usage: python agent.py RUN_ROOT        serve requests
       python agent.py --probe DIR     print what the host has (versions, GPUs, disk)
"""

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import os
import platform
import re
import select
import shlex
import shutil
import subprocess
import sys
import threading
import time

SESSION_CHECK = 1.0  # seconds between tmux session checks while jobs run


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(root):
    """{relative path: [size, sha256]} of every file under root."""
    result = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            result[rel] = [os.path.getsize(path), sha256_file(path)]
    return result


def write_atomic(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def tmux_sessions():
    """Names of the tmux sessions, or None when tmux cannot be asked."""
    try:
        done = subprocess.run(
            ["tmux", "list-sessions", "-F", "#{session_name}"],
            capture_output=True,
            text=True,
        )
    except OSError:
        return None
    if done.returncode != 0:
        lowered = done.stderr.lower()
        if (
            "no server running" in lowered
            or "no such file" in lowered
            or "error connecting" in lowered
        ):
            return set()
        return None
    return set(done.stdout.split())


def probe_tmux():
    try:
        out = subprocess.run(["tmux", "-V"], capture_output=True, text=True)
        return out.stdout.strip() or None
    except OSError:
        return None


def probe(workdir):
    info = {"python": platform.python_version(), "hostname": platform.node()}
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        metadata = None
    for package in ("octcore", "torch"):
        try:
            info[package] = metadata.version(package) if metadata else None
        except Exception:
            info[package] = None
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        info["gpus"] = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    except OSError:
        info["gpus"] = 0
    info["tmux"] = probe_tmux()
    try:
        info["disk_free"] = shutil.disk_usage(workdir).free
    except OSError:
        info["disk_free"] = None
    return info


class Inotify:
    """Wakes on files moved into or written in one directory (Linux); None elsewhere."""

    IN_CLOSE_WRITE, IN_MOVED_TO = 0x8, 0x80

    def __init__(self, path):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError("inotify unavailable")
        mask = self.IN_CLOSE_WRITE | self.IN_MOVED_TO
        if libc.inotify_add_watch(self.fd, path.encode(), mask) < 0:
            os.close(self.fd)
            raise OSError("inotify_add_watch failed")

    def wait(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass


class Agent:
    def __init__(self, run_root):
        self.run_root = run_root
        self.ctl = os.path.join(run_root, "ctl")
        os.makedirs(self.ctl, exist_ok=True)
        self.jobs = {}  # job -> {"token", "session", "job_dir", "state", "misses"}
        self.lock = threading.RLock()
        self.out_lock = threading.Lock()
        self.changed = threading.Event()

    # --- output -------------------------------------------------------------------

    def send(self, message):
        line = json.dumps(message, separators=(",", ":")) + "\n"
        with self.out_lock:
            try:
                sys.stdout.write(line)
                sys.stdout.flush()
            except (BrokenPipeError, OSError):
                os._exit(0)

    def report(self, job, info):
        event = {"ev": "job", "job": job, "token": info["token"], "state": info["state"]}
        if info["state"] == "exited":
            event["rc"] = info["rc"]
            try:
                event["manifest"] = manifest(info["job_dir"])
            except OSError as exc:
                event["manifest_error"] = str(exc)
        self.send(event)

    # --- state --------------------------------------------------------------------

    def read_status(self, job):
        try:
            with open(os.path.join(self.ctl, job + ".status")) as handle:
                words = handle.read().split()
            return int(words[0]), words[1] if len(words) > 1 else ""
        except (OSError, ValueError, IndexError):
            return None

    def scan(self, announce=False):
        """Adopt sessions from marker files; report jobs whose status appeared."""
        with self.lock:
            for name in sorted(os.listdir(self.ctl)):
                if not name.endswith(".session"):
                    continue
                job = name[: -len(".session")]
                try:
                    with open(os.path.join(self.ctl, name)) as handle:
                        marker = json.load(handle)
                except (OSError, ValueError):
                    continue
                known = self.jobs.get(job)
                if known is None or known["token"] != marker.get("token"):
                    self.jobs[job] = dict(marker, state="running", misses=0)
                    if announce:
                        self.report(job, self.jobs[job])
            for job, info in self.jobs.items():
                if info["state"] != "running":
                    continue
                status = self.read_status(job)
                if status and status[1] == info["token"]:
                    info["state"], info["rc"] = "exited", status[0]
                    self.report(job, info)

    def check_sessions(self):
        with self.lock:
            running = [j for j, i in self.jobs.items() if i["state"] == "running"]
        if not running:
            return
        sessions = tmux_sessions()
        if sessions is None:
            return
        self.scan()  # a job that ended since the listing has its status by now
        with self.lock:
            for job in running:
                info = self.jobs.get(job)
                if info is None or info["state"] != "running" or info["session"] in sessions:
                    continue
                info["state"] = "lost"
                self.report(job, info)

    def watch(self):
        try:
            notifier = Inotify(self.ctl)
        except (OSError, AttributeError):
            notifier = None
        last_check = 0.0
        while True:
            with self.lock:
                busy = any(i["state"] == "running" for i in self.jobs.values())
            if notifier is not None:
                notifier.wait(SESSION_CHECK if busy else 5.0)
            else:
                self.changed.wait(0.1 if busy else 1.0)
                self.changed.clear()
            self.scan()
            now = time.monotonic()
            if now - last_check >= SESSION_CHECK:
                last_check = now
                self.check_sessions()

    # --- requests -----------------------------------------------------------------

    def serve(self):
        self.scan(announce=True)
        self.send({"ev": "ready", "info": probe(self.run_root), "pid": os.getpid()})
        threading.Thread(target=self.watch, daemon=True).start()
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            try:
                reply = getattr(self, "op_" + request["op"])(**request.get("args", {}))
                message = {"ev": "reply", "id": request["id"], "ok": True, "result": reply}
            except Exception as exc:  # every failure goes back to the coordinator
                message = {
                    "ev": "reply",
                    "id": request["id"],
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            self.send(message)

    def tmux_version(self):
        if not hasattr(self, "_tmux_version"):
            text = probe_tmux() or ""
            digits = re.findall(r"(\d+)\.(\d+)", text)
            self._tmux_version = tuple(int(x) for x in digits[0]) if digits else (0, 0)
        return self._tmux_version

    @staticmethod
    def job_env():
        """The agent's environment less what marks a shell as started by sshd (so a tmux
        server started here does not make every shell in it read ~/.bashrc)."""
        env = dict(os.environ)
        for name in ("SSH_CLIENT", "SSH2_CLIENT", "SSH_CONNECTION", "SSH_TTY"):
            env.pop(name, None)
        return env

    def _kill_session(self, session):
        subprocess.run(
            ["tmux", "kill-session", "-t", "=" + session],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def op_stage(self, job, job_dir, files, session):
        """A fresh job directory holding ``files``; a stale attempt of this job is ended."""
        with self.lock:
            old = self.jobs.pop(job, None)
        self._kill_session(session)
        if old and old.get("session") != session:
            self._kill_session(old["session"])
        for suffix in (".session", ".status"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.ctl, job + suffix))
        shutil.rmtree(job_dir, ignore_errors=True)
        os.makedirs(job_dir)
        for name, text in files.items():
            write_atomic(os.path.join(job_dir, name), text)
        return None

    def op_launch(self, job, job_dir, session, token, argv):
        # tmux >= 3.0 execs a command given as several words directly: no shell parses
        # them, and no login shell start-up (a heavy .bashrc) delays the job. Older
        # tmux gets one string of quoted words for its shell.
        command = (
            argv if self.tmux_version() >= (3, 0) else [" ".join(shlex.quote(w) for w in argv)]
        )
        new_session = ["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50"]
        new_session += ["-c", job_dir]
        for attempt in range(10):
            done = subprocess.run(
                [*new_session, *command],
                capture_output=True,
                text=True,
                env=self.job_env(),
            )
            # a server whose last session just ended is shutting down: ask the next one
            if done.returncode == 0 or "exited unexpectedly" not in done.stderr:
                break
            time.sleep(0.02 * (attempt + 1))
        if done.returncode != 0:
            raise RuntimeError("tmux new-session failed: " + done.stderr.strip())
        marker = {"session": session, "token": token, "job_dir": job_dir}
        with self.lock:
            self.jobs[job] = dict(marker, state="running", misses=0)
            write_atomic(os.path.join(self.ctl, job + ".session"), json.dumps(marker))
        self.changed.set()
        return None

    def op_cancel(self, job, token):
        with self.lock:
            info = self.jobs.get(job)
        if info is None or info["token"] != token:
            return None
        self._kill_session(info["session"])
        with self.lock:
            if info["state"] == "running" and self.read_status(job) is None:
                write_atomic(os.path.join(self.ctl, job + ".status"), f"143 {token}\n")
        self.scan()
        return None

    def op_query(self, job, token):
        """The state of one job right now (for re-adoption)."""
        self.scan()
        self.check_sessions()
        with self.lock:
            info = self.jobs.get(job)
            if info is None or info["token"] != token:
                return {"state": "lost", "detail": "no trace of the job on this host"}
            result = {"state": info["state"]}
            if info["state"] == "exited":
                result["rc"] = info["rc"]
                result["manifest"] = manifest(info["job_dir"])
            return result

    def op_manifest(self, path):
        return manifest(path)

    def op_remove(self, paths):
        for path in paths:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return None

    def op_forget(self, job, token):
        """Drop a collected job's control files (with cleanup_remote)."""
        with self.lock:
            info = self.jobs.get(job)
            if info is not None and info["token"] == token:
                del self.jobs[job]
                self.op_remove([os.path.join(self.ctl, job + s) for s in (".session", ".status")])
        return None

    def op_cache_has(self, path):
        return os.path.isfile(path + ".complete")

    def op_cache_commit(self, tmp, path, expected):
        """Verify an uploaded input directory against its manifest, then move it in place."""
        found = manifest(tmp)
        if found != expected:
            shutil.rmtree(tmp, ignore_errors=True)
            bad = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
            raise RuntimeError(f"uploaded input does not match its checksums: {bad[:5]}")
        if os.path.isfile(path + ".complete"):  # another coordinator was first
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        shutil.rmtree(path, ignore_errors=True)  # a copy that never completed
        os.rename(tmp, path)
        write_atomic(path + ".complete", "")
        return None


def main(argv):
    if len(argv) == 3 and argv[1] == "--probe":
        print(json.dumps(probe(argv[2])))
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    Agent(argv[1]).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
