"""oct core: leave-one-participant-out personalisation experiments.

The package is organised by what a user touches:

- ``config``     the typed ``Experiment`` and how files and flags become one
- ``data``       data sets as per-participant train/val/test splits
- ``models``     model families (``cnn1d``)
- ``train``      batches, augmentation, metrics, the phase loop and the modes
- ``job``        one experiment as one process: ``python -m octcore.job SPEC``
- ``plugins``    the plugin manager and its typed facade; ``hookspecs`` the hooks
- ``cli``        the invoke tasks behind ``invoke``/``oct``
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("octcore")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
