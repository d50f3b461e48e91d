"""Small NumPy helpers for code that runs once per simulated day (where a NumPy function's
Python overhead, not its arithmetic, is the cost)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def nan_to_num(x: ArrayLike, nan: float = 0.0) -> NDArray[Any]:
    """``np.nan_to_num(x, nan=nan)`` for an array ``x`` (a copy; ±∞ become the largest finite
    numbers), returned as is without that function's overhead when ``x`` is already finite,
    the common case of a daily clinic or lab array."""
    arr = np.array(x, copy=True)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        return np.nan_to_num(arr, nan=nan)
    return arr
