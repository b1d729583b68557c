"""Typed records that plugins register, and the lookup tables built from them.

A plugin returns records (``DatasetSpec``, ``ModelSpec``, ``BackendSpec``,
``TaskSpec``) from the registry hooks in ``octcore.hookspecs``. The plugin
manager collects them into a ``Registry`` per kind, which fails helpfully: an
unknown name lists what is installed and which package would add it, and two
plugins claiming one name is an error naming both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import attrs

from octcore.errors import PluginError, UnknownNameError

# Names that a package we know of would add, for "not installed" messages.
KNOWN_PROVIDERS: dict[str, dict[str, str]] = {
    "backend": {"local": "octsched-local", "ssh": "octsched-ssh"},
    "task collection": {"cluster": "octsched-ssh", "cache": "octcache"},
}


@attrs.frozen
class DatasetSpec:
    """A data set family.

    ``options_cls`` is an attrs class; a grid or experiment's ``[dataset]`` table
    (less ``name``) is structured into it, so unknown options are errors.
    ``participants(options)`` lists participant ids cheaply (for validation before
    any work); ``load(options)`` returns an ``octcore.data.Dataset``.
    """

    name: str
    options_cls: type
    load: Callable[[Any], Any]
    participants: Callable[[Any], tuple[str, ...]]
    description: str = ""
    aliases: tuple[str, ...] = ()


@attrs.frozen
class ModelSpec:
    """A model family.

    ``build(params, in_channels, window, num_outputs)`` returns a ``torch.nn.Module``
    that maps ``[N, C, T]`` to ``[N, num_outputs]`` logits and has a ``head``
    submodule (the part ``last_layer_only`` trains).
    """

    name: str
    params_cls: type
    build: Callable[..., Any]
    description: str = ""
    aliases: tuple[str, ...] = ()


@attrs.frozen
class BackendSpec:
    """A place jobs run. ``factory(config, run)`` returns an ``octcore.backend.Backend``."""

    name: str
    factory: Callable[..., Any]
    config_cls: type
    description: str = ""
    aliases: tuple[str, ...] = ()


@attrs.frozen
class TaskSpec:
    """An invoke collection a plugin adds to the CLI, under ``name`` (``cache`` → ``cache.ls``).

    An empty ``name`` adds the collection's tasks at the top level (``invoke plan``).
    """

    name: str
    collection: Any
    description: str = ""
    aliases: tuple[str, ...] = ()


T = TypeVar("T", DatasetSpec, ModelSpec, BackendSpec, TaskSpec)


class Registry(Generic[T]):
    """Records of one kind by name (and alias), with the plugin that registered each."""

    def __init__(self, kind: str):
        self.kind = kind
        self._by_name: dict[str, T] = {}
        self._owner: dict[str, str] = {}
        self._canonical: dict[str, str] = {}

    def add(self, record: T, owner: str) -> None:
        for name in (record.name, *record.aliases):
            if name in self._canonical:
                first = self._owner[self._canonical[name]]
                raise PluginError(
                    f"{self.kind} {name!r} is registered twice: by {first} and by {owner}"
                )
            self._canonical[name] = record.name
        self._by_name[record.name] = record
        self._owner[record.name] = owner

    def get(self, name: str) -> T:
        try:
            return self._by_name[self._canonical[name]]
        except KeyError:
            raise UnknownNameError(self._unknown_message(name)) from None

    def owner(self, name: str) -> str:
        return self._owner[self._canonical[name]]

    def canonical(self, name: str) -> str:
        return self.get(name).name

    def __contains__(self, name: object) -> bool:
        return name in self._canonical

    def __iter__(self) -> Iterator[T]:
        return iter(self._by_name.values())

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def _unknown_message(self, name: str) -> str:
        installed = ", ".join(self.names()) or "none"
        message = f"unknown {self.kind} {name!r}; installed: {installed}"
        package = KNOWN_PROVIDERS.get(self.kind, {}).get(name)
        if package:
            message += f" ({name!r} comes with the package {package}: pip install {package})"
        return message


def as_mapping(registry: Registry[Any]) -> Mapping[str, Any]:
    return {record.name: record for record in registry}
