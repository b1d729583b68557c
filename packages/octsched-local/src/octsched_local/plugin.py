"""Entry point of the octsched-local plugin (group ``octcore``)."""

from octcore.hookspecs import hookimpl  # noqa: F401
