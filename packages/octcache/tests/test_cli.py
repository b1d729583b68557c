"""``invoke cache.ls|show|verify|gc`` on a real store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from octcache.keys import base_key, base_spec, data_identity
from octcache.store import Store
from octcache.testing import fake_base, subprocess_env

INVOKE = str(Path(sys.executable).parent / "invoke")


def invoke(repo, *args, check=True):
    done = subprocess.run(
        [INVOKE, *args], cwd=repo, capture_output=True, text=True, env=subprocess_env(COLUMNS="200")
    )
    if check:
        assert done.returncode == 0, done.stderr + done.stdout
    return done


def test_cache_tasks(make, plugins, tmp_path, repo, isolated_store):
    store = Store(str(isolated_store))
    keys = []
    for fold in (0, 1):
        experiment = make(fold=fold)
        spec = base_spec(experiment, data_identity(experiment, plugins))
        keys.append(base_key(spec))
        store.publish(keys[-1], spec, fake_base(tmp_path / f"b{fold}", bytes([fold]) * 100))
    store.record_use(keys[0], "job-1")

    listed = invoke(repo, "cache.ls").stdout
    assert keys[0][:16] in listed and keys[1][:16] in listed and "2 entries" in listed
    shown = invoke(repo, "cache.show", keys[1][:10]).stdout
    assert keys[1] in shown and "verified" in shown and '"p00"' in shown
    assert "2 entries checked, 0 corrupt" in invoke(repo, "cache.verify").stdout

    entry = store.entry(keys[1])
    (Path(store.blob_dir(keys[1], entry.token)) / "base.json").write_text("tampered")
    failed = invoke(repo, "cache.verify", check=False)
    assert failed.returncode == 1 and f"corrupt {keys[1][:16]}" in failed.stdout

    dry = invoke(repo, "cache.gc", "--unused").stdout
    assert f"would remove {keys[1][:16]}" in dry and keys[0][:16] not in dry
    assert store.keys() == sorted(keys)
    invoke(repo, "cache.gc", "--unused", "--apply")
    assert store.keys() == [keys[0]]
    assert "1 entries" in invoke(repo, "cache.gc", "--older-than", "0").stdout
