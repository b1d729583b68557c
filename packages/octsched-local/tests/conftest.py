"""Fixtures for the local backend's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _own_base_store(tmp_path, monkeypatch):
    """With octcache installed, planning uses a base store: never the user's own."""
    monkeypatch.setenv("OCT_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("OCT_STORE_CACHE", str(tmp_path / "store-cache"))
