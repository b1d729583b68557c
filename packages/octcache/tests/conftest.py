from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from octcache.testing import SMALL
from octcore.config import experiment_from_dict
from octcore.plugins import make_plugin_manager

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def plugins() -> Any:
    return make_plugin_manager()


@pytest.fixture
def make(plugins):
    """``make(**fields)``: a small synthetic experiment with these settings."""

    def build(**fields: Any):
        data = {**SMALL, **fields}
        return experiment_from_dict(data, plugins, source="test")

    return build


@pytest.fixture(autouse=True)
def isolated_store(tmp_path, monkeypatch) -> Path:
    """Every test gets its own store and materialisation cache."""
    store = tmp_path / "store"
    monkeypatch.setenv("OCT_STORE", str(store))
    monkeypatch.setenv("OCT_STORE_CACHE", str(tmp_path / "materialized"))
    monkeypatch.setenv("OCT_STRICT_PLUGINS", "1")
    return store


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
