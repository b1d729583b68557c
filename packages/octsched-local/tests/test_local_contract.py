"""The local backend passes the backend contract suite shipped by octcore."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from octcore.backend import Backend, Handle
from octcore.testing.backend_contract import BackendContract
from octsched_local.backend import LocalBackend
from octsched_local.config import LocalConfig


class TestLocalContract(BackendContract):
    @pytest.fixture
    def make_backend(self, run_dir: Path) -> Callable[[], Backend]:
        config = LocalConfig(slots=2)
        return lambda: LocalBackend(config, run_dir)

    def kill_from_outside(self, backend: Backend, handle: Handle) -> None:
        os.killpg(int(handle["pid"]), signal.SIGKILL)
