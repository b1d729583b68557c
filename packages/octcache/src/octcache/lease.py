"""Leases: at most one live trainer per key, across processes, runs and hosts.

A lease on ``key`` is a file ``leases/<key>/<generation>.json`` in the store,
created with an exclusive create (``O_EXCL`` on a local disk, ``open(mode="xb")``
elsewhere), holding the owner's id, host, pid and a heartbeat time. The lease in
force is the highest generation. A contender may create generation ``n + 1``
only when generation ``n`` is released or its heartbeat is older than the TTL;
the exclusive create makes exactly one contender win, and generations only
grow, so a contender acting on a stale listing cannot take a lease someone else
holds. The owner refreshes its heartbeat from a background thread; a crashed
owner stops refreshing and its lease expires after the TTL. Heartbeats compare
wall clocks, so hosts sharing a store need clocks closer than the TTL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import attrs

from octcache.store import Store

log = logging.getLogger(__name__)

TTL_ENV = "OCT_LEASE_TTL"
DEFAULT_TTL = 120.0


def default_ttl() -> float:
    try:
        return float(os.environ.get(TTL_ENV, DEFAULT_TTL))
    except ValueError:
        return DEFAULT_TTL


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@attrs.frozen
class Holder:
    """The lease in force on a key."""

    owner: str
    host: str
    pid: int
    heartbeat: float
    generation: int
    released: bool
    note: str = ""

    def live(self, ttl: float, now: float | None = None) -> bool:
        if self.released or (now or time.time()) - self.heartbeat >= ttl:
            return False
        # an owner on this host whose process is gone (a killed coordinator) holds
        # nothing: no need to wait out the TTL
        return not (self.host == socket.gethostname() and not _process_alive(self.pid))


def _process_alive(pid: int) -> bool:
    """True unless the process is certainly gone (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        return True


class Leases:
    """The leases one owner (a coordinator or job process) takes on one store."""

    def __init__(self, store: Store, *, ttl: float | None = None, owner: str | None = None):
        self.store = store
        self.ttl = default_ttl() if ttl is None else ttl
        self.owner = owner or new_owner_id()
        self.held: dict[str, int] = {}  # key -> generation
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # paths ------------------------------------------------------------------

    def _dir(self, key: str) -> str:
        return self.store._p("leases", key)

    def _path(self, key: str, generation: int) -> str:
        return f"{self._dir(key)}/{generation:010d}.json"

    def _generations(self, key: str) -> list[int]:
        try:
            names = self.store.fs.ls(self._dir(key), detail=False)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            base = name.rstrip("/").rsplit("/", 1)[-1]
            if base.endswith(".json") and base[:-5].isdigit():
                out.append(int(base[:-5]))
        return sorted(out)

    # queries ----------------------------------------------------------------

    def holder(self, key: str) -> Holder | None:
        """The lease in force (live or not), or None when the key was never leased."""
        generations = self._generations(key)
        return self._read(key, generations[-1]) if generations else None

    def _read(self, key: str, generation: int) -> Holder:
        path = self._path(key, generation)
        fs = self.store.fs
        try:
            raw = json.loads(fs.cat_file(path))
            return Holder(
                raw["owner"],
                raw["host"],
                int(raw["pid"]),
                float(raw["heartbeat"]),
                generation,
                bool(raw.get("released", False)),
                raw.get("note", ""),
            )
        except FileNotFoundError:
            return Holder("", "", 0, 0.0, generation, True)
        except (ValueError, KeyError, TypeError, OSError):
            # being written right now (created, content not yet there): live until
            # its file is older than the TTL
            try:
                modified = _mtime(fs, path)
            except (OSError, FileNotFoundError):
                modified = 0.0
            return Holder("?", "?", 0, modified, generation, False)

    def held_by_other(self, key: str) -> Holder | None:
        """The live lease of another owner on ``key``, or None."""
        current = self.holder(key)
        if current is not None and current.live(self.ttl) and current.owner != self.owner:
            return current
        return None

    # acquiring and releasing -----------------------------------------------

    def acquire(self, key: str, note: str = "") -> bool:
        """Take the lease on ``key``; False when another owner holds a live one."""
        with self._lock:
            if key in self.held:
                return True
        for _ in range(8):
            generations = self._generations(key)
            current = self._read(key, generations[-1]) if generations else None
            if current is not None and current.live(self.ttl):
                if current.owner != self.owner:
                    return False
                with self._lock:
                    self.held[key] = current.generation
                return True
            generation = (current.generation if current else 0) + 1
            if self._create(self._path(key, generation), self._content(key, note)):
                with self._lock:
                    self.held[key] = generation
                if current is not None and not current.released:
                    log.warning(
                        "lease on %s of %s (pid %d on %s) expired; taken over",
                        key[:16],
                        current.owner,
                        current.pid,
                        current.host,
                    )
                for old in generations:
                    self._remove(self._path(key, old))
                self._start_heartbeat()
                return True
        return False

    def release(self, key: str) -> None:
        """Give up the lease on ``key`` (marks it released; the file stays as the latest
        generation so that numbering only grows)."""
        with self._lock:
            generation = self.held.pop(key, None)
        if generation is None:
            return
        current = self.holder(key)
        if current is None or current.generation != generation:
            return  # someone took it over after it expired: theirs now
        self._write(self._path(key, generation), self._content(key, "", released=True))

    def release_all(self) -> None:
        for key in list(self.held):
            self.release(key)
        self._stop.set()

    def heartbeat(self) -> None:
        """Refresh every held lease; drop those another owner took over."""
        with self._lock:
            held = dict(self.held)
        for key, generation in held.items():
            current = self.holder(key)
            if current is None or current.generation != generation:
                log.warning("lease on %s was taken over by %s", key[:16], current and current.owner)
                with self._lock:
                    self.held.pop(key, None)
                continue
            self._write(self._path(key, generation), self._content(key, current.note))

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._beat, name="octcache-heartbeat", daemon=True
            )
            self._thread.start()

    def _beat(self) -> None:
        interval = max(0.05, self.ttl / 4)
        while not self._stop.wait(interval):
            if not self.held:
                continue
            try:
                self.heartbeat()
            except Exception as exc:
                log.warning("lease heartbeat failed: %s", exc)

    # file system ------------------------------------------------------------

    def _content(self, key: str, note: str, *, released: bool = False) -> bytes:
        return json.dumps(
            {
                "key": key,
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "heartbeat": time.time(),
                "ttl": self.ttl,
                "released": released,
                "note": note,
            }
        ).encode()

    def _create(self, path: str, data: bytes) -> bool:
        fs = self.store.fs
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if self.store.local:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return True
        try:
            with fs.open(path, "xb") as handle:
                handle.write(data)
            return True
        except FileExistsError:
            return False

    def _write(self, path: str, data: bytes) -> None:
        self.store._write_atomic(path, data)

    def _remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.store.fs.rm_file(path)


def _mtime(fs: Any, path: str) -> float:
    info = fs.info(path)
    for name in ("mtime", "created", "LastModified"):
        value = info.get(name)
        if value is None:
            continue
        return value.timestamp() if hasattr(value, "timestamp") else float(value)
    return 0.0
