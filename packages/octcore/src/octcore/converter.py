"""The one cattrs converter: strict types, unknown keys rejected, every problem reported.

cattrs' defaults are lenient (``int("5")``, ``int(2.7)``, ``str(3)``); a config
file with ``batch_size = "64"`` or ``lr = true`` is a mistake we want to name, so
primitive hooks here accept only the JSON/TOML type that means the value.
"""

from __future__ import annotations

from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from octcore.errors import Problem


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {_show(value)}")
    return value


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {_show(value)}")
    return float(value)


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {_show(value)}")
    return value


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 40 else text[:37] + '...'}"


def make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(bool, _strict_bool)
    return converter


converter = make_converter()


def structure_problems(exc: BaseException, prefix: str = "") -> list[Problem]:
    """Flatten a cattrs validation error into ``Problem``s with dotted keys."""
    problems: list[Problem] = []
    _walk(exc, prefix, problems)
    return problems


def _walk(exc: BaseException, path: str, out: list[Problem]) -> None:
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            name = getattr(note, "name", None)
            index = getattr(note, "index", None)
            if name is not None:
                child = f"{path}.{name}" if path else str(name)
            elif index is not None:
                child = f"{path}[{index}]"
            else:
                child = path
            _walk(inner, child, out)
        for inner in without:
            _walk(inner, path, out)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            known = ", ".join(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else ""
            out.append(Problem(f"{path}.{key}" if path else key, f"unknown key (known: {known})"))
    elif isinstance(exc, KeyError):
        key = exc.args[0] if exc.args else "?"
        out.append(Problem(f"{path}.{key}" if path else str(key), "required key is missing"))
    else:
        out.append(Problem(path, str(exc) or type(exc).__name__))
