"""Exception classes. Every input error names the field, the allowed range and the value given."""

from __future__ import annotations

from typing import Any


class CartsimError(Exception):
    """Base class of every error cartsim raises on purpose."""


class InvalidInputError(CartsimError, ValueError):
    """A user-supplied value is out of range or of the wrong kind.

    Attributes ``field``, ``allowed`` and ``value`` let callers (CLI, spec validators) report
    several errors at once.
    """

    def __init__(self, field: str, allowed: str, value: Any, hint: str = "") -> None:
        self.field = field
        self.allowed = allowed
        self.value = value
        msg = f"invalid {field}: got {value!r}; allowed: {allowed}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class UnknownNameError(InvalidInputError):
    """A name (product, disease, measure …) is not one cartsim knows."""

    def __init__(self, field: str, value: Any, known: list[str] | tuple[str, ...]) -> None:
        super().__init__(field, "one of " + ", ".join(sorted(known)), value)


class OptionalDependencyError(CartsimError, ImportError):
    """An optional extra is needed for this feature."""

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(f"{feature} needs the optional extra: pip install 'cartsim[{extra}]'")
