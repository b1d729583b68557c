"""Linux process identity: a PID plus its start time names one process for good.

A PID alone is reused once its process is gone; the start time (field 22 of
``/proc/<pid>/stat``, in clock ticks since boot) is not, so a coordinator that
restarts can tell "my job is still running" from "some other process got its PID".
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name is in parentheses and may hold spaces or ')'
    fields = text.rsplit(")", 1)[1].split()
    if fields[0] in {"Z", "X"}:  # a zombie has exited; only its parent's wait() is left
        return None
    return int(fields[19])


def alive(pid: int, started: int | None) -> bool:
    """Is the process that had ``pid`` and ``started`` still running?"""
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def signal_group(pid: int, signum: int) -> None:
    """Send a signal to the process group led by ``pid`` (our jobs lead their own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


EXTERNAL_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT})
