"""Checksums on the coordinator's side: input digests and verified downloads."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(root: Path) -> dict[str, list[Any]]:
    """``{relative path: [size, sha256]}`` of every file under ``root`` (the agent's format)."""
    result: dict[str, list[Any]] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            result[rel] = [path.stat().st_size, sha256_file(path)]
    return result


class InputDigests:
    """Content digests of input directories, recomputed only when a file changes."""

    def __init__(self) -> None:
        self._memo: dict[Path, tuple[tuple[Any, ...], str, dict[str, list[Any]]]] = {}

    def of(self, root: Path) -> tuple[str, dict[str, list[Any]]]:
        root = root.resolve()
        stamp = tuple(
            (str(p), s.st_size, s.st_mtime_ns)
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()
            for s in [p.stat()]
        )
        memo = self._memo.get(root)
        if memo and memo[0] == stamp:
            return memo[1], memo[2]
        files = manifest(root)
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        self._memo[root] = (stamp, digest, files)
        return digest, files


def safe_name(text: str, limit: int = 48) -> str:
    """A name usable as a file and tmux session name; distinct texts stay distinct."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", text)
    if cleaned == text and len(text) <= limit:
        return text
    return f"{cleaned[: limit - 9]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
