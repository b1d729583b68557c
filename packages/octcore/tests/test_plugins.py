"""The plugin seam: real entry points, broken plugins, duplicate names, documented hooks."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from octcore import hookspecs
from octcore.errors import PluginError, UnknownNameError
from octcore.hookspecs import hookimpl
from octcore.plugins import make_plugin_manager
from octcore.registry import BackendSpec, DatasetSpec

REPO = Path(__file__).resolve().parents[3]

HOOKS = sorted(
    name
    for name, f in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("octcore_")
)


def test_every_hook_is_documented_where_declared_and_in_the_hook_docs():
    docs = (REPO / "docs" / "hooks.md").read_text()
    for name in HOOKS:
        function = getattr(hookspecs, name)
        assert function.__doc__ and len(function.__doc__.split()) > 20, name
        assert (
            "Fires" in function.__doc__
            or "Called" in function.__doc__
            or "Asked" in (function.__doc__)
        ), f"{name} does not say when it fires"
        assert f"`{name}`" in docs, f"{name} missing from docs/hooks.md"
    documented = {line.split("`")[1] for line in docs.splitlines() if line.startswith("### `")}
    assert documented == set(HOOKS), "docs/hooks.md lists hooks that do not exist"


def test_installed_plugin_packages_are_found_through_their_entry_points():
    from importlib.metadata import PackageNotFoundError, distribution

    installed = set()
    for name in ("octsched-local", "octsched-ssh", "octcache"):
        try:
            distribution(name)
        except PackageNotFoundError:  # a per-package test session installs only octcore
            continue
        installed.add(name)
    found = make_plugin_manager(strict=True)
    distributions = {info.distribution for info in found.infos}
    assert {"octcore", *installed} <= distributions
    assert all(info.error is None for info in found.infos)


def _write_distribution(root: Path, name: str, module_source: str, entry: str) -> None:
    """A real installed distribution (dist-info + module) that importlib.metadata finds."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[octcore]\n{entry} = {name}\n")


EXAMPLE_PLUGIN = '''
"""A data set and a model added by a separate package, through the hooks alone."""
import attrs
import torch
from octcore.data import Dataset, Windows
from octcore.hookspecs import hookimpl
from octcore.registry import DatasetSpec, ModelSpec


@attrs.frozen
class BlobOptions:
    people: int = 3


def participants(options):
    return tuple(f"person{i}" for i in range(options.people))


def load(options):
    g = torch.Generator().manual_seed(0)
    splits = {}
    for i, p in enumerate(participants(options)):
        splits[p] = {}
        for s in ("train", "val", "test"):
            y = torch.randint(0, 2, (12,), generator=g)
            x = torch.randn(12, 2, 16, generator=g) + y.view(-1, 1, 1) * 2.0 + i * 0.1
            splits[p][s] = Windows(x.float(), y)
    return Dataset("blobs", participants(options), splits, 2, "blobs-v1")


@attrs.frozen
class MeanParams:
    hidden: int = 4


class MeanNet(torch.nn.Module):
    def __init__(self, params, in_channels, num_outputs):
        super().__init__()
        self.body = torch.nn.Linear(in_channels, params.hidden)
        self.head = torch.nn.Linear(params.hidden, num_outputs)

    def forward(self, x):
        return self.head(torch.relu(self.body(x.mean(dim=2))))


@hookimpl
def octcore_register_datasets():
    return [DatasetSpec("blobs", BlobOptions, load, participants)]


@hookimpl
def octcore_register_models():
    return [ModelSpec("meannet", MeanParams,
                      lambda p, c, w, k: MeanNet(p, c, k))]
'''


def _run(args, extra_path: Path, cwd: Path, strict: bool = True):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(extra_path), os.environ.get("PYTHONPATH", "")]),
    }
    env["OCT_STRICT_PLUGINS"] = "1" if strict else "0"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_separate_package_adds_a_data_set_and_a_model(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _write_distribution(site, "octexample", EXAMPLE_PLUGIN, "example")
    listed = _run([sys.executable, "-m", "invoke", "-r", str(REPO), "plugins"], site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "octexample" in listed.stdout and "blobs" in listed.stdout and "meannet" in listed.stdout
    trained = _run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "train", "--dataset", "blobs",
         "--model", "meannet", "--max-epochs", "2", "--device", "cpu", "--prefix", "ex"],
        site, tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert (tmp_path / "runs" / "ex" / "fold0_person0" / "metrics.json").exists()


def test_a_broken_plugin_is_reported_and_skipped_unless_strict(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _write_distribution(site, "octbroken", "raise ImportError('no such thing')\n", "broken")
    loose = _run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "plugins"], site, tmp_path, strict=False
    )
    assert loose.returncode == 0
    assert "broken" in loose.stdout and "failed" in loose.stdout
    assert "octbroken 0.3" in loose.stderr  # the warning names the plugin and version
    strict = _run([sys.executable, "-m", "invoke", "-r", str(REPO), "plugins"], site, tmp_path)
    assert strict.returncode != 0
    assert "broken" in strict.stderr and "no such thing" in strict.stderr


def test_two_plugins_claiming_one_name_is_an_error_naming_both():
    class One:
        @hookimpl
        def octcore_register_datasets(self):
            return [DatasetSpec("hapt", object, lambda o: None, lambda o: ())]

    found = make_plugin_manager(strict=True, extra_plugins=[One()], entry_points_=False)
    with pytest.raises(PluginError) as excinfo:
        _ = found.datasets
    assert "octcore.data.plugin" in str(excinfo.value) and "One" in str(excinfo.value)


def test_unknown_backend_names_the_package_that_would_add_it():
    found = make_plugin_manager(strict=True, entry_points_=False)
    with pytest.raises(UnknownNameError) as excinfo:
        found.backends.get("ssh")
    assert "octsched-ssh" in str(excinfo.value)


def test_registry_lookups_resolve_aliases(plugins):
    assert plugins.models.get("test").name == "cnn1d"


def test_job_process_hooks_fire_in_a_pinned_order(tmp_path, tiny):
    from octcore.config import experiment_from_dict
    from octcore.job import run_job

    calls: list[str] = []

    class Recorder:
        @hookimpl
        def octcore_find_base_model(self, experiment, job_dir):
            calls.append("find_base_model")

        @hookimpl
        def octcore_publish_base_model(self, experiment, base_dir):
            calls.append("publish_base_model")
            assert (base_dir / "base_model.pt").exists() and (base_dir / "base.json").exists()

    found = make_plugin_manager(strict=True, extra_plugins=[Recorder()], entry_points_=False)
    experiment = experiment_from_dict(tiny, found, source="test")
    run_job(experiment, tmp_path / "job", found)
    assert calls == ["find_base_model", "publish_base_model"]


def test_backend_records_are_typed(plugins):
    for record in plugins.backends:
        assert isinstance(record, BackendSpec)
