"""Exception classes. Every input error names the field, the allowed range and the value given."""

from __future__ import annotations

import functools
from typing import Any


class CartsimError(Exception):
    """Base class of every error cartsim raises on purpose.

    An error keeps the arguments it was made with and pickles as a call with them, so an
    error raised in a worker process (trial, validation and claims workers; Dask) reaches
    the parent as the same error with the same message: the default pickling re-creates an
    exception from its message alone, which these constructors do not take."""

    _ctor: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls, *args: Any, **kwargs: Any) -> CartsimError:
        self = super().__new__(cls, *args)
        self._ctor = (args, kwargs)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        args, kwargs = self._ctor
        make = functools.partial(type(self), **kwargs) if kwargs else type(self)
        return (make, args, dict(self.__dict__))


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


def pydantic_message(err: dict[str, Any], with_value: bool = True) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) in cartsim's own words:
    no pydantic type tags, no documentation URLs, the value given when it is a plain value."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    words = {
        "greater_than": lambda: f"must be > {ctx.get('gt')}",
        "greater_than_equal": lambda: f"must be ≥ {ctx.get('ge')}",
        "less_than": lambda: f"must be < {ctx.get('lt')}",
        "less_than_equal": lambda: f"must be ≤ {ctx.get('le')}",
        "finite_number": lambda: "must be a finite number",
        "float_parsing": lambda: "must be a number",
        "float_type": lambda: "must be a number",
        "int_parsing": lambda: "must be a whole number",
        "int_type": lambda: "must be a whole number",
        "int_from_float": lambda: "must be a whole number",
        "bool_parsing": lambda: "must be true or false",
        "bool_type": lambda: "must be true or false",
        "string_type": lambda: "must be text",
        "missing": lambda: "required field missing",
        "extra_forbidden": lambda: "unknown field",
        "literal_error": lambda: f"must be one of {ctx.get('expected')}",
    }
    if kind in words:
        msg = words[kind]()
    else:
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        msg = msg.replace("Input should be", "must be")
    msg = msg.split("\n")[0].split(" For further information")[0]
    value = err.get("input")
    if with_value and kind not in ("missing", "extra_forbidden", "value_error") and isinstance(
            value, (int, float, str, bool)) and len(repr(value)) <= 60:
        msg += f" (got {value!r})"
    return msg


def pydantic_issues(exc: Exception) -> list[str]:
    """Every error of a pydantic ``ValidationError`` as ``field.path: message`` lines."""
    lines: list[str] = []
    for e in exc.errors():  # type: ignore[attr-defined]
        loc = ".".join(str(p) for p in e.get("loc", ())) or "value"
        line = f"{loc}: {pydantic_message(e)}"
        if line not in lines:
            lines.append(line)
    return lines
