"""Entry point of the octsched-ssh plugin (group ``octcore``)."""

from octcore.hookspecs import hookimpl  # noqa: F401
