"""Lazy attribute access for package ``__init__`` modules (PEP 562): a name is imported from
its module on first use, so importing a package stays cheap (issue 12: a fresh process starts
in seconds)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, table: Mapping[str, str], namespace: dict[str, Any],
               submodules: bool = False
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``table`` maps a public name to the module
    that defines it; the value is cached in ``namespace`` (the package's globals). With
    ``submodules``, an unknown name is tried as a submodule (``cartsim.clinic.crs``)."""

    def getattr_(name: str) -> Any:
        module = table.get(name)
        if module is None:
            if submodules:
                try:
                    return importlib.import_module(f"{package}.{name}")
                except ModuleNotFoundError as e:
                    if e.name != f"{package}.{name}":
                        raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(table))

    return getattr_, dir_
