"""Input coercion and validation shared by every grader.

Every grader accepts scalars or NumPy arrays of any shape (typically patients × days) and
broadcasts them. Invalid values raise :class:`cartsim.errors.InvalidInputError` naming the field
and the allowed range; NaN is accepted where the grader documents it as "missing".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cartsim.errors import InvalidInputError, UnknownNameError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int8]

#: True while :func:`trusted_inputs` is in force (in this thread or task only): the coercions
#: below then only convert (the same arrays they return after their checks), because the
#: caller has validated the inputs already (the simulator's clinic, whose observations are
#: range-checked each day).
_TRUSTED: ContextVar[bool] = ContextVar("cartsim_trusted_inputs", default=False)


@contextmanager
def trusted_inputs() -> Iterator[None]:
    """Skip the range checks of :func:`as_float`, :func:`as_bool` and :func:`as_code` inside
    this block, in this thread (same return values for valid input; invalid input is not
    caught; other threads keep their checks). For callers that validated their inputs
    themselves: the checks are most of a grader's cost when it is called once per simulated
    day."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def as_float(
    name: str,
    value: ArrayLike,
    lower: float | None = None,
    upper: float | None = None,
    allow_nan: bool = True,
) -> FloatArray:
    """Return ``value`` as a float64 array, checking the closed range [lower, upper].

    NaN means "missing" and is accepted when ``allow_nan``; +∞ is accepted only when there is
    no upper bound, −∞ never.
    """
    if _TRUSTED.get():
        return np.asarray(value, dtype=np.float64)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(name, _range_text(lower, upper), value) from None
    nan = np.isnan(arr)
    if nan.any() and not allow_nan:
        raise InvalidInputError(name, _range_text(lower, upper) + " (no missing values)", "NaN")
    finite = arr[~nan]
    bad = np.isneginf(finite) if upper is None else np.isinf(finite)
    if lower is not None:
        bad |= finite < lower
    if upper is not None:
        bad |= finite > upper
    if bad.any():
        raise InvalidInputError(name, _range_text(lower, upper), _first(finite[bad]))
    return arr


def as_bool(name: str, value: ArrayLike) -> NDArray[np.bool_]:
    """Return ``value`` as a boolean array; only booleans and 0/1 are allowed."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        return arr
    if _TRUSTED.get():
        return arr.astype(np.float64) == 1
    try:
        f = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(name, "true/false or 0/1", value) from None
    ok = (f == 0) | (f == 1)
    if not ok.all():
        raise InvalidInputError(name, "true/false or 0/1", _first(f[~ok]))
    return f == 1


def as_code(name: str, value: ArrayLike, allowed: Sequence[int], labels: Sequence[str]) -> NDArray:
    """Return integer codes; a value outside ``allowed`` raises an error listing the labels."""
    arr = np.asarray(value, dtype=np.float64)
    if _TRUSTED.get():
        return arr.astype(np.int64)
    ok = np.isin(arr, np.asarray(allowed, dtype=np.float64))
    if not ok.all():
        allowed_text = ", ".join(f"{c}={lab}" for c, lab in zip(allowed, labels, strict=True))
        raise InvalidInputError(name, allowed_text, _first(arr[~ok]))
    return arr.astype(np.int64)


def check_choice(name: str, value: str, known: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``known``; otherwise raise :class:`UnknownNameError`."""
    if value not in known:
        raise UnknownNameError(name, value, list(known))
    return value


def result(arr: NDArray[Any]) -> Any:
    """Return a 0-d array as a Python scalar, other arrays unchanged."""
    if arr.ndim == 0:
        return arr.item()
    return arr


def _range_text(lower: float | None, upper: float | None) -> str:
    lo = "-∞" if lower is None else f"{lower:g}"
    hi = "∞" if upper is None else f"{upper:g}"
    return f"a number in [{lo}, {hi}]"


def _first(values: NDArray[Any]) -> Any:
    return values.reshape(-1)[0].item()
