"""Data sets: per-participant ``train``/``val``/``test`` splits of windows.

Built in (see ``octcore.data.plugin``): ``hapt`` (UCI HAPT, the default),
``pt-dir`` and ``npz-dir`` (the research code's on-disk layout), ``synthetic``.
"""

from octcore.data.base import SPLITS, Dataset, Windows, fingerprint_tensors

__all__ = ["SPLITS", "Dataset", "Windows", "fingerprint_tensors"]
