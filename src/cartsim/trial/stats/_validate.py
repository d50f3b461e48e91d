"""Input checks shared by the statistics functions; every failure raises InvalidInputError."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cartsim.errors import InvalidInputError

ArrayLike = npt.ArrayLike


def check_level(level: float) -> float:
    """Return ``level`` as float if it is a confidence level strictly between 0 and 1."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise InvalidInputError("level", "a number in (0, 1)", level) from None
    if not 0.0 < value < 1.0:
        raise InvalidInputError("level", "a number in (0, 1)", level)
    return value


def time_event(
    time: ArrayLike, event: ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Validate right-censored survival data.

    ``time`` must be finite and non-negative; ``event`` must be 0/1 (or boolean), where 1 is
    an observed event and 0 a censoring. Both must be one-dimensional, equally long and non-empty.
    """
    t = np.asarray(time, dtype=float)
    if t.ndim != 1 or t.size == 0:
        raise InvalidInputError("time", "a non-empty one-dimensional array", np.shape(t))
    if not np.all(np.isfinite(t)):
        raise InvalidInputError("time", "finite numbers (no NaN/inf)", "non-finite values")
    if np.any(t < 0):
        raise InvalidInputError("time", "non-negative numbers", float(t.min()))
    e_raw = np.asarray(event)
    if e_raw.shape != t.shape:
        raise InvalidInputError("event", f"an array of length {t.size} (same as time)", e_raw.shape)
    try:
        e_float = e_raw.astype(float)
    except (TypeError, ValueError):
        raise InvalidInputError("event", "0/1 or boolean values", "non-numeric values") from None
    if not np.all(np.isin(e_float, (0.0, 1.0))):
        bad = e_float[~np.isin(e_float, (0.0, 1.0))][0]
        raise InvalidInputError("event", "0/1 or boolean values", bad)
    return t, e_float.astype(np.int64)


def groups(values: ArrayLike, n: int, field: str = "group") -> npt.NDArray[np.object_]:
    """Validate a grouping vector of length ``n`` with no missing entries."""
    g = np.asarray(values, dtype=object)
    if g.ndim != 1 or g.size != n:
        raise InvalidInputError(field, f"a one-dimensional array of length {n}", np.shape(g))
    for v in g:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            raise InvalidInputError(field, "no missing values", v)
    return g


def sorted_levels(values: Sequence[object] | npt.NDArray[np.object_]) -> list[object]:
    """Distinct values in R ``factor()`` order: sorted (by string if types clash)."""
    uniq = list(dict.fromkeys(values))
    try:
        return sorted(uniq)  # type: ignore[type-var]
    except TypeError:
        return sorted(uniq, key=str)
