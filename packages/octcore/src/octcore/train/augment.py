"""Vectorised batch augmentation on the batch's own device."""

from __future__ import annotations

import torch

from octcore.config import Augmentation


def augment(x: torch.Tensor, settings: Augmentation) -> torch.Tensor:
    """Jitter and magnitude-scale a random subset of windows (probability per window).

    Unlike the research code, which picked one transform for the whole batch and
    carried a time-warp that did nothing, every chosen window gets both transforms
    and the others pass through unchanged.
    """
    if not settings.enabled or settings.probability == 0:
        return x
    n = x.shape[0]
    chosen = (torch.rand(n, 1, 1, device=x.device) < settings.probability).to(x.dtype)
    low, high = settings.magnitude_range
    scale = torch.empty(n, 1, 1, device=x.device, dtype=x.dtype).uniform_(low, high)
    noise = torch.randn_like(x) * settings.jitter_std
    augmented = x * scale + noise
    return chosen * augmented + (1 - chosen) * x
