"""Entry point of the octsched-ssh plugin (group ``octcore``): the backend and ``cluster.*``."""

from __future__ import annotations

from octcore.hookspecs import hookimpl
from octcore.registry import BackendSpec, TaskSpec


def _factory(config, run_dir):
    from octsched_ssh.backend import make_backend

    return make_backend(config, run_dir)


@hookimpl
def octcore_register_backends():
    from octsched_ssh.config import SshBackendConfig

    return [
        BackendSpec(
            name="ssh",
            factory=_factory,
            config_cls=SshBackendConfig,
            description="jobs in tmux on remote hosts over SSH (--cluster FILE)",
        )
    ]


@hookimpl
def octcore_register_tasks():
    from octsched_ssh.tasks import collection

    return [TaskSpec(name="cluster", collection=collection, description="check and sync SSH hosts")]
