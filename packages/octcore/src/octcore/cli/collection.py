"""The invoke collection: core tasks plus every installed plugin's collections."""

from __future__ import annotations

from invoke import Collection

from octcore.cli import info, report, runs, train
from octcore.plugins import Plugins, default_plugins


def build_collection(plugins: Plugins | None = None) -> Collection:
    plugins = plugins or default_plugins()
    ns = Collection()
    ns.add_task(train.train)
    ns.add_task(info.plugins)
    ns.add_task(runs.grid)
    ns.add_task(runs.status)
    ns.add_task(runs.logs)
    ns.add_task(report.report)
    for extension in plugins.tasks:
        if extension.name:
            ns.add_collection(extension.collection, name=extension.name)
        else:  # an unnamed collection adds top-level tasks (``invoke plan``)
            for name, item in extension.collection.tasks.items():
                ns.add_task(item, name=name)
    return ns
