"""Shared fixtures for octcore's tests. Plugins load strictly: a broken one fails the run."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OCT_STRICT_PLUGINS", "1")


@pytest.fixture(autouse=True)
def _no_shared_base_store(monkeypatch):
    """Core tests train their bases inline: a base store (octcache, if installed) is off."""
    monkeypatch.setenv("OCT_STORE", "off")


@pytest.fixture
def plugins():
    from octcore.plugins import make_plugin_manager

    return make_plugin_manager(strict=True)


@pytest.fixture
def tiny():
    """Settings for a fast, real training run on the synthetic data set."""
    return {
        "dataset": {"name": "synthetic", "participants": 4, "train": 24, "val": 8, "test": 16},
        "model": {"name": "cnn1d", "base_channels": 4},
        "max_epochs": 2,
        "batch_size": 16,
        "device": "cpu",
    }
