"""The plugin manager and the typed facade core code uses instead of ``pm.hook``.

``make_plugin_manager()`` registers the built-ins as ordinary plugins, loads the
``octcore`` entry-point group and checks every implementation against
``octcore.hookspecs``. A plugin that fails to import is reported with its name and
version and skipped; with ``OCT_STRICT_PLUGINS=1`` (the test suite sets it) that
is fatal instead.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import attrs
import pluggy

from octcore import hookspecs
from octcore.errors import PluginError
from octcore.registry import (
    BackendSpec,
    DatasetSpec,
    ModelSpec,
    Registry,
    TaskSpec,
)

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "octcore"
STRICT_ENV = "OCT_STRICT_PLUGINS"

# Built-in plugins, registered like any other (order = call order, last first).
BUILTINS: tuple[str, ...] = (
    "octcore.data.plugin",
    "octcore.models.plugin",
)


@attrs.frozen
class PluginInfo:
    """What ``invoke plugins`` shows for one plugin."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    error: str | None = None


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes"}


def make_plugin_manager(
    *, strict: bool | None = None, extra_plugins: Iterable[object] = (), entry_points_: bool = True
) -> Plugins:
    """Build a plugin manager and wrap it in the typed facade.

    ``strict`` (default: the ``OCT_STRICT_PLUGINS`` environment variable) turns a
    plugin that fails to load into an error. ``extra_plugins`` are registered after
    the built-ins (tests use it); ``entry_points_=False`` skips installed plugins.
    """
    strict = strict_from_env() if strict is None else strict
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    core_version = _dist_version("octcore")
    for module_name in BUILTINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        infos.append(PluginInfo(module_name, "octcore", core_version, _hooks_of(pm, module)))
    if entry_points_:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            infos.append(_load_entry_point(pm, ep, strict))
    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", type(plugin).__name__)
        pm.register(plugin, name=name)
        infos.append(PluginInfo(name, "registered in process", "", _hooks_of(pm, plugin)))
    pm.check_pending()
    return Plugins(pm, tuple(infos))


def _load_entry_point(pm: pluggy.PluginManager, ep: EntryPoint, strict: bool) -> PluginInfo:
    dist = ep.dist.name if ep.dist is not None else "?"
    version = ep.dist.version if ep.dist is not None else "?"
    try:
        plugin = ep.load()
        pm.register(plugin, name=ep.name)
    except Exception as exc:  # a broken plugin must not take the tool down
        message = (
            f"plugin {ep.name!r} ({dist} {version}) failed to load: {type(exc).__name__}: {exc}"
        )
        if strict:
            raise PluginError(message) from exc
        log.warning("%s; skipped", message)
        return PluginInfo(ep.name, dist, version, (), error=str(exc))
    return PluginInfo(ep.name, dist, version, _hooks_of(pm, plugin))


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "0.0.0+unknown"


class Plugins:
    """Typed access to what plugins provide. Build one with ``make_plugin_manager``."""

    def __init__(self, pm: pluggy.PluginManager, infos: Sequence[PluginInfo]):
        self.pm = pm
        self.infos = tuple(infos)

    # registries -------------------------------------------------------------

    @functools.cached_property
    def datasets(self) -> Registry[DatasetSpec]:
        return self._collect("data set", self.pm.hook.octcore_register_datasets)

    @functools.cached_property
    def models(self) -> Registry[ModelSpec]:
        return self._collect("model", self.pm.hook.octcore_register_models)

    @functools.cached_property
    def backends(self) -> Registry[BackendSpec]:
        return self._collect("backend", self.pm.hook.octcore_register_backends)

    @functools.cached_property
    def tasks(self) -> Registry[TaskSpec]:
        return self._collect("task collection", self.pm.hook.octcore_register_tasks)

    def _collect(self, kind: str, caller: Any) -> Registry[Any]:
        registry: Registry[Any] = Registry(kind)
        # walk the implementations in registration order so that we know which
        # plugin returned which record (built-ins first)
        for impl in caller.get_hookimpls():
            owner = self._describe(impl.plugin_name)
            for record in impl.function() or ():
                registry.add(record, owner)
        return registry

    def _describe(self, plugin_name: str) -> str:
        for info in self.infos:
            if info.name == plugin_name:
                return f"{info.name} ({info.distribution} {info.version})".replace(" )", ")")
        return plugin_name

    # scheduling -------------------------------------------------------------

    def after_job_finished(self, run_dir: Path, job_id: str, state: str, attempt: int) -> None:
        self.pm.hook.octcore_after_job_finished(
            run_dir=run_dir, job_id=job_id, state=state, attempt=attempt
        )

    def before_job_started(self, run_dir: Path, job: Any) -> str:
        return self.pm.hook.octcore_before_job_started(run_dir=run_dir, job=job) or "run"

    # artifacts --------------------------------------------------------------

    def resolve_input(self, run_dir: Path, job: Any, item: Any) -> Path | None:
        return self.pm.hook.octcore_resolve_input(run_dir=run_dir, job=job, item=item)

    def plan_jobs(self, experiments: Sequence[Any], run_dir: Path) -> Any | None:
        return self.pm.hook.octcore_plan_jobs(experiments=experiments, run_dir=run_dir)

    def find_base_model(self, experiment: Any, job_dir: Path) -> Path | None:
        return self.pm.hook.octcore_find_base_model(experiment=experiment, job_dir=job_dir)

    def publish_base_model(self, experiment: Any, base_dir: Path) -> None:
        self.pm.hook.octcore_publish_base_model(experiment=experiment, base_dir=base_dir)


@functools.cache
def default_plugins() -> Plugins:
    """The process-wide plugin manager (built on first use, not at import)."""
    return make_plugin_manager()
