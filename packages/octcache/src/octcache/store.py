"""Base models under their key in an fsspec location.

Layout under the store's root (any fsspec URL; a plain path is a local folder)::

    entries/<key>.json            commit marker: spec, metrics, manifest (written last)
    blobs/<key>/<token>/...       the files: base_model.pt, base.json, history.csv, spec.json
    leases/<key>/<generation>.json  who is training the key (``octcache.lease``)
    usage/<key>/<job>             one empty file per job that used the key

Publishing writes the files under a fresh token and then the marker, in one
atomic step (rename on a local disk, a single put elsewhere). An entry without a
marker does not exist, so a writer killed midway leaves only an unreferenced
token directory (``cache.gc`` removes it). Reading re-hashes the files against the
marker's manifest; an entry that does not match is reported and treated as
missing, never loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import fsspec

from octcache.keys import BaseSpec

log = logging.getLogger(__name__)

STORE_ENV = "OCT_STORE"
CACHE_ENV = "OCT_STORE_CACHE"
OFF_VALUES = frozenset({"off", "none", "0", "false", "no"})
SPEC_FILE = "spec.json"
MARKER_VERSION = 1
CHUNK = 1 << 20


def default_store_url() -> str | None:
    """``OCT_STORE`` if set (``off`` disables the store), else ``~/.cache/oct/bases``."""
    value = os.environ.get(STORE_ENV)
    if value is not None:
        value = value.strip()
        return None if value.lower() in OFF_VALUES or not value else value
    return str(Path.home() / ".cache" / "oct" / "bases")


def _local_cache_root() -> Path:
    value = os.environ.get(CACHE_ENV)
    return Path(value) if value else Path.home() / ".cache" / "oct" / "materialized"


@attrs.frozen
class Entry:
    """A committed entry as its marker describes it."""

    key: str
    token: str
    spec: dict[str, Any]
    metrics: dict[str, Any]
    files: dict[str, dict[str, Any]]  # name -> {"sha256", "size"}
    published: str
    host: str

    @property
    def size(self) -> int:
        return sum(int(f["size"]) for f in self.files.values())

    def age_seconds(self, now: float | None = None) -> float:
        then = datetime.fromisoformat(self.published).timestamp()
        return max(0.0, (now or time.time()) - then)


@attrs.frozen
class Corrupt:
    """An entry whose files do not match its manifest."""

    key: str
    problems: tuple[str, ...]


class Store:
    """A content-addressed store of base models at an fsspec URL."""

    def __init__(self, url: str):
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/") or "/"
        self.local = "file" in _protocols(self.fs)
        self.problems: list[Corrupt] = []  # corrupt entries met by this object
        self._verified: dict[tuple[str, str], tuple[Any, ...]] = {}

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # paths ------------------------------------------------------------------

    def _p(self, *parts: str) -> str:
        return "/".join([self.root, *parts]) if self.root != "/" else "/" + "/".join(parts)

    def marker_path(self, key: str) -> str:
        return self._p("entries", f"{key}.json")

    def blob_dir(self, key: str, token: str) -> str:
        return self._p("blobs", key, token)

    # reading ----------------------------------------------------------------

    def entry(self, key: str) -> Entry | None:
        """The committed entry of ``key`` (its marker only; files not checked), or None."""
        try:
            raw = json.loads(self.fs.cat_file(self.marker_path(key)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._report(Corrupt(key, (f"unreadable marker: {exc}",)))
            return None
        try:
            return Entry(
                key=raw["key"],
                token=raw["token"],
                spec=raw["spec"],
                metrics=raw.get("metrics", {}),
                files=raw["files"],
                published=raw["published"],
                host=raw.get("host", ""),
            )
        except (KeyError, TypeError) as exc:
            self._report(Corrupt(key, (f"marker lacks {exc}",)))
            return None

    def keys(self) -> list[str]:
        try:
            names = self.fs.ls(self._p("entries"), detail=False)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            base = name.rstrip("/").rsplit("/", 1)[-1]
            if base.endswith(".json") and not base.startswith("."):
                out.append(base[: -len(".json")])
        return sorted(out)

    def entries(self) -> Iterator[Entry]:
        for key in self.keys():
            found = self.entry(key)
            if found is not None:
                yield found

    def resolve_prefix(self, prefix: str) -> str:
        """The one key starting with ``prefix``; ``KeyError`` naming the matches otherwise."""
        matches = [k for k in self.keys() if k.startswith(prefix)]
        if len(matches) != 1:
            found = "none" if not matches else ", ".join(m[:16] for m in matches[:5])
            raise KeyError(
                f"key prefix {prefix!r} matches {len(matches)} entries in {self.url} ({found})"
            )
        return matches[0]

    def check(self, entry: Entry) -> list[str]:
        """Re-hash an entry's files against its manifest; return the problems (none: intact)."""
        problems = []
        directory = self.blob_dir(entry.key, entry.token)
        for name, meta in sorted(entry.files.items()):
            try:
                digest, size = _hash_remote(self.fs, f"{directory}/{name}")
            except FileNotFoundError:
                problems.append(f"{name}: missing")
                continue
            if size != int(meta["size"]) or digest != meta["sha256"]:
                problems.append(f"{name}: sha256 {digest[:12]}… does not match the manifest")
        return problems

    def lookup(self, key: str) -> Entry | None:
        """The verified entry of ``key``, or None when absent or corrupt (then reported)."""
        found = self.entry(key)
        if found is None:
            return None
        signature = self._signature(found) if self.local else None
        if signature is not None and self._verified.get((key, found.token)) == signature:
            return found
        problems = self.check(found)
        if problems:
            self._report(Corrupt(key, tuple(problems)))
            return None
        if signature is not None:
            self._verified[(key, found.token)] = signature
        return found

    def has(self, key: str) -> bool:
        return self.lookup(key) is not None

    def _signature(self, entry: Entry) -> tuple[Any, ...] | None:
        directory = Path(self.blob_dir(entry.key, entry.token))
        try:
            stats = [os.stat(directory / name) for name in sorted(entry.files)]
        except OSError:
            return None
        return tuple((s.st_size, s.st_mtime_ns, s.st_ino) for s in stats)

    def _report(self, corrupt: Corrupt) -> None:
        self.problems.append(corrupt)
        log.warning(
            "store %s: entry %s is corrupt and is treated as missing: %s",
            self.url,
            corrupt.key[:16],
            "; ".join(corrupt.problems),
        )

    def materialize(self, key: str) -> Path | None:
        """A verified local directory holding the entry's files, or None.

        For a local store this is the entry's own directory; for any other store a
        copy under ``~/.cache/oct/materialized/<key>/<token>`` (``OCT_STORE_CACHE``),
        verified after the copy.
        """
        found = self.lookup(key)
        if found is None:
            return None
        if self.local:
            return Path(self.blob_dir(key, found.token))
        target = _local_cache_root() / key / found.token
        if target.is_dir() and _check_local(target, found.files) == []:
            return target
        partial = target.with_name(f".{found.token}.{uuid.uuid4().hex[:8]}")
        partial.mkdir(parents=True, exist_ok=True)
        for name in found.files:
            self.fs.get_file(f"{self.blob_dir(key, found.token)}/{name}", str(partial / name))
        problems = _check_local(partial, found.files)
        if problems:
            shutil.rmtree(partial, ignore_errors=True)
            self._report(Corrupt(key, tuple(problems)))
            return None
        try:
            partial.rename(target)
        except OSError:  # another process put it there first
            shutil.rmtree(partial, ignore_errors=True)
        return target

    # writing ----------------------------------------------------------------

    def publish(self, key: str, spec: BaseSpec, source: Path, *, job: str = "") -> Entry:
        """Copy ``source``'s files under ``key`` and commit them; return the entry.

        Publishing a key that already holds an intact entry changes nothing. A key
        whose entry is corrupt is overwritten with a new token.
        """
        existing = self.lookup(key)
        if existing is not None:
            return existing
        files = sorted(
            p for p in Path(source).iterdir() if p.is_file() and not p.name.startswith(".")
        )
        if not any(p.name == "base_model.pt" for p in files):
            raise FileNotFoundError(f"{source} holds no base_model.pt to publish")
        token = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
        directory = self.blob_dir(key, token)
        self.fs.makedirs(directory, exist_ok=True)
        manifest: dict[str, dict[str, Any]] = {}
        spec_bytes = json.dumps(spec.to_dict(), indent=2, sort_keys=True).encode()
        for path in files:
            if path.name == SPEC_FILE:
                continue
            data = path.read_bytes()
            self.fs.pipe_file(f"{directory}/{path.name}", data)
            manifest[path.name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        self.fs.pipe_file(f"{directory}/{SPEC_FILE}", spec_bytes)
        manifest[SPEC_FILE] = {
            "sha256": hashlib.sha256(spec_bytes).hexdigest(),
            "size": len(spec_bytes),
        }
        metrics = {}
        summary = Path(source) / "base.json"
        if summary.is_file():
            try:
                metrics = json.loads(summary.read_text())
            except ValueError:
                metrics = {}
        marker = {
            "version": MARKER_VERSION,
            "key": key,
            "token": token,
            "spec": spec.to_dict(),
            "metrics": metrics,
            "files": manifest,
            "published": datetime.now(UTC).isoformat(),
            "host": socket.gethostname(),
            "job": job,
        }
        entry = Entry(
            key, token, marker["spec"], metrics, manifest, marker["published"], marker["host"]
        )
        problems = self.check(entry)
        if problems:
            raise OSError(
                f"store {self.url}: files of {key[:16]} did not arrive intact: {problems}"
            )
        self._write_atomic(
            self.marker_path(key), json.dumps(marker, indent=2, sort_keys=True).encode()
        )
        return entry

    def _write_atomic(self, path: str, data: bytes) -> None:
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if self.local:
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        else:  # one put: object stores and the memory file system commit it whole
            self.fs.pipe_file(path, data)

    def remove(self, key: str) -> None:
        """Delete an entry: the marker first (it disappears at once), then its files."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.marker_path(key))
        for sub in ("blobs", "usage"):
            path = self._p(sub, key)
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)

    def orphans(self) -> list[str]:
        """Token directories no marker references (left by interrupted publishes)."""
        out = []
        try:
            keys = self.fs.ls(self._p("blobs"), detail=False)
        except FileNotFoundError:
            return []
        for key_path in keys:
            key = key_path.rstrip("/").rsplit("/", 1)[-1]
            found = self.entry(key)
            for token_path in self.fs.ls(key_path, detail=False):
                token = token_path.rstrip("/").rsplit("/", 1)[-1]
                if found is None or found.token != token:
                    out.append(token_path)
        return out

    # usage ------------------------------------------------------------------

    def record_use(self, key: str, job: str) -> None:
        """Note that ``job`` used ``key`` (idempotent: one file per job)."""
        path = self._p("usage", key, job or uuid.uuid4().hex)
        try:
            if not self.fs.exists(path):
                self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
                self.fs.pipe_file(path, b"")
        except OSError as exc:  # usage counts are advisory
            log.warning("store %s: cannot record a use of %s: %s", self.url, key[:16], exc)

    def uses(self, key: str) -> int:
        try:
            return len(self.fs.ls(self._p("usage", key), detail=False))
        except FileNotFoundError:
            return 0


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _hash_remote(fs: Any, path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_local(directory: Path, files: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for name, meta in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        data = path.read_bytes()
        if len(data) != int(meta["size"]) or hashlib.sha256(data).hexdigest() != meta["sha256"]:
            problems.append(f"{name}: sha256 does not match the manifest")
    return problems
