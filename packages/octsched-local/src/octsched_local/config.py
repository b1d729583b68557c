"""The local backend's configuration: GPUs times jobs per GPU, or a number of CPU slots."""

from __future__ import annotations

import os
from typing import Any

import attrs


def _positive(_: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _gpu_list(_: Any, attribute: attrs.Attribute, value: tuple[int, ...] | None) -> None:
    if value is None:
        return
    if not value:
        raise ValueError("gpus must list at least one GPU index")
    if any(g < 0 for g in value) or len(set(value)) != len(value):
        raise ValueError(f"gpus must be distinct GPU indices >= 0, got {list(value)}")


@attrs.frozen
class LocalConfig:
    """``slots=N``: N CPU slots, each job limited to ``cpu_count // N`` threads.

    ``gpus=[0, 1]``: ``jobs_per_gpu`` slots per listed GPU, each job seeing only its
    GPU (``CUDA_VISIBLE_DEVICES``). Neither: the GPUs torch can see, or one CPU
    slot on a machine without GPUs.
    """

    slots: int | None = attrs.field(default=None, validator=_positive)
    gpus: tuple[int, ...] | None = attrs.field(default=None, validator=_gpu_list)
    jobs_per_gpu: int = attrs.field(default=1, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.slots is not None and self.gpus is not None:
            raise ValueError("give either slots (CPU) or gpus, not both")


def cpu_count() -> int:
    """CPUs this process may use (its affinity mask), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def detect_gpus() -> tuple[str, ...]:
    """GPU ids as ``CUDA_VISIBLE_DEVICES`` names them for a child process.

    When this process already sees a subset (``CUDA_VISIBLE_DEVICES=2,3``), a child
    must be given ``2`` or ``3``, not torch's renumbered ``0`` or ``1``.
    """
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:
        return ()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        names = [v.strip() for v in visible.split(",") if v.strip()]
        if len(names) >= count:
            return tuple(names[:count])
    return tuple(str(i) for i in range(count))
