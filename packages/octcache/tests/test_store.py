"""The store: atomic publish, verified reads, corrupt entries treated as missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from octcache.keys import base_key, base_spec, data_identity
from octcache.store import Store, default_store_url
from octcache.testing import PYTHON, fake_base, subprocess_env


@pytest.fixture
def spec(make, plugins):
    experiment = make()
    return base_spec(experiment, data_identity(experiment, plugins))


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path):
    if request.param == "file":
        return Store(f"file://{tmp_path / 'store'}")
    return Store(f"memory://octcache-{uuid.uuid4().hex}")


def test_publish_then_lookup_and_materialize(store, spec, tmp_path):
    key = base_key(spec)
    assert store.lookup(key) is None and store.materialize(key) is None
    entry = store.publish(key, spec, fake_base(tmp_path / "base", b"w" * 1000), job="j1")
    assert store.keys() == [key]
    assert store.lookup(key) == entry
    assert set(entry.files) == {"base_model.pt", "base.json", "history.csv", "spec.json"}
    assert entry.metrics == {"best_epoch": 1, "epochs": 1}
    local = store.materialize(key)
    assert (local / "base_model.pt").read_bytes() == b"w" * 1000
    assert json.loads((local / "spec.json").read_text()) == spec.to_dict()
    if store.local:  # a local store hands out the entry itself, no copy
        assert str(local).startswith(store.root)
    # publishing again keeps the first entry
    assert store.publish(key, spec, fake_base(tmp_path / "other", b"other")).token == entry.token


def test_plain_folder_is_a_local_store(tmp_path, spec):
    store = Store(str(tmp_path / "plain"))
    store.publish(base_key(spec), spec, fake_base(tmp_path / "base"))
    assert store.local and (tmp_path / "plain" / "entries").is_dir()


def test_a_flipped_byte_is_reported_and_the_entry_treated_as_missing(spec, tmp_path):
    store = Store(str(tmp_path / "store"))
    key = base_key(spec)
    store.publish(key, spec, fake_base(tmp_path / "base", b"0123456789"))
    entry = store.entry(key)
    weights = Path(store.blob_dir(key, entry.token)) / "base_model.pt"
    data = bytearray(weights.read_bytes())
    data[3] ^= 0x01
    weights.write_bytes(bytes(data))
    problems = store.check(entry)
    assert len(problems) == 1 and problems[0].startswith("base_model.pt: sha256")
    assert store.lookup(key) is None and store.materialize(key) is None
    assert [c.key for c in store.problems] == [key, key]
    # a fresh publish under the key replaces the corrupt entry
    fresh = store.publish(key, spec, fake_base(tmp_path / "again", b"0123456789"))
    assert fresh.token != entry.token and store.has(key)


def test_corrupt_remote_entry_is_not_materialized(spec, tmp_path):
    store = Store(f"memory://octcache-{uuid.uuid4().hex}")
    key = base_key(spec)
    entry = store.publish(key, spec, fake_base(tmp_path / "base", b"abc"))
    store.fs.pipe_file(f"{store.blob_dir(key, entry.token)}/base_model.pt", b"abd")
    assert store.materialize(key) is None and store.problems


def test_default_store_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OCT_STORE", "off")
    assert default_store_url() is None
    monkeypatch.setenv("OCT_STORE", "memory://x")
    assert default_store_url() == "memory://x"
    monkeypatch.delenv("OCT_STORE")
    assert default_store_url().endswith(os.path.join(".cache", "oct", "bases"))


WRITER = """
import sys, time
from pathlib import Path
from octcache.keys import BaseSpec
from octcache.store import Store
import json
store = Store(sys.argv[1])
spec = BaseSpec.from_dict(json.loads(sys.argv[2]))
real = store.fs.pipe_file
def slow(path, data, **kw):
    real(path, data, **kw)
    print("WROTE", path, flush=True)
    time.sleep(60)
store.fs.pipe_file = slow
store.publish(sys.argv[3], spec, Path(sys.argv[4]))
"""


def test_a_writer_killed_midway_leaves_no_visible_entry(spec, tmp_path):
    root = tmp_path / "store"
    key = base_key(spec)
    source = fake_base(tmp_path / "base", b"x" * 5000)
    writer = subprocess.Popen(
        [PYTHON, "-c", WRITER, str(root), json.dumps(spec.to_dict()), key, str(source)],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        line = writer.stdout.readline()
        assert line.startswith("WROTE"), line
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(10)
    store = Store(str(root))
    assert list(Path(root, "blobs", key).iterdir())  # something was written…
    assert (
        store.entry(key) is None and not store.has(key) and store.keys() == []
    )  # …but is invisible
    assert len(store.orphans()) == 1
    entry = store.publish(key, spec, source)  # the next publish works
    assert store.materialize(key) is not None and store.orphans() != [] and entry.key == key


def test_remove_makes_the_entry_disappear_first(spec, tmp_path):
    store = Store(str(tmp_path / "store"))
    key = base_key(spec)
    store.publish(key, spec, fake_base(tmp_path / "base"))
    store.record_use(key, "job-a")
    store.record_use(key, "job-a")
    store.record_use(key, "job-b")
    assert store.uses(key) == 2
    store.remove(key)
    assert store.keys() == [] and store.uses(key) == 0
