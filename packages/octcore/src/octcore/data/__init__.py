"""Data sets: per-participant ``train``/``val``/``test`` splits of windows.

Built in (see ``octcore.data.plugin``): ``hapt`` (UCI HAPT, the default),
``pt-dir`` and ``npz-dir`` (the research code's on-disk layout), ``synthetic``.
"""

from typing import Any

__all__ = ["SPLITS", "Dataset", "Windows", "fingerprint_tensors"]


def __getattr__(name: str) -> Any:
    # torch loads only when data is used, so commands such as `status` start fast
    if name in __all__:
        from octcore.data import base

        return getattr(base, name)
    raise AttributeError(f"module 'octcore.data' has no attribute {name!r}")
