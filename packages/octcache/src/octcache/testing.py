"""Helpers for tests and benchmarks of the store (no training involved)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

PYTHON = sys.executable
# A small synthetic experiment: trains in about a second on one CPU.
SMALL: dict[str, Any] = {
    "dataset": {
        "name": "synthetic",
        "participants": 4,
        "train": 16,
        "val": 8,
        "test": 8,
        "window": 32,
    },
    "model": {"name": "cnn1d", "base_channels": 4},
    "max_epochs": 1,
}


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def fake_base(directory: Path, payload: bytes = b"weights") -> Path:
    """A base directory as ``octcore.job`` writes one, with stand-in contents."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "base_model.pt").write_bytes(payload)
    (directory / "base.json").write_text('{"best_epoch": 1, "epochs": 1}')
    (directory / "history.csv").write_text("phase,epoch\nbase,1\n")
    return directory
