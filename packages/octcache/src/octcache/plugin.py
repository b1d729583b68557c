"""Entry point of the octcache plugin (group ``octcore``)."""

from octcore.hookspecs import hookimpl  # noqa: F401
