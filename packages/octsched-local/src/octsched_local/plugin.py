"""Entry point of the octsched-local plugin (group ``octcore``): the ``local`` backend."""

from __future__ import annotations

from octcore.hookspecs import hookimpl
from octcore.registry import BackendSpec


def _factory(config, run_dir):  # imported lazily: the CLI lists backends without loading them
    from octsched_local.backend import LocalBackend

    return LocalBackend(config, run_dir)


@hookimpl
def octcore_register_backends():
    from octsched_local.config import LocalConfig

    return [
        BackendSpec(
            name="local",
            factory=_factory,
            config_cls=LocalConfig,
            description="slots on this machine: --gpus 0,1 --jobs-per-gpu N, or --slots N (CPU)",
        )
    ]
