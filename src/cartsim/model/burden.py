"""The B-ALL marrow's leukaemic cells and its blast fraction, one mapping both ways.

Until session 42 the model had only ``f / (1 − f)`` × the normal marrow's cells at blast
fraction f (the normal marrow kept whole, the leukaemia added), read back as ``T / (T +
marrow)``: the burden diverges as f → 1 (99 × the marrow at the 0.99 cap). With
``ball_packing`` k > 0 (model/tumour.py) the leukaemia replaces normal cells in a marrow that
can be up to 1 + k times its normal cellularity (packed, and extramedullary disease):
``T = marrow × f (1 + k f)``, read back by the positive root of ``k f² + f − T / marrow = 0``
(capped at 1). Every reader of the marrow fraction (readouts, marrow crowding, procedures,
HSCT eligibility) and the patient builder use these functions, so a patient entered at f
reads f. ``k = 0`` is the old mapping, computed as before (bit for bit).
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(inline="always")
def blast_fraction(site: float, marrow: float, packing: float) -> float:
    """Marrow blast fraction (0–1) of ``site`` leukaemic cells in a marrow of ``marrow``
    normal cells."""
    if packing > 0.0:
        s = site / marrow
        return min((math.sqrt(1.0 + 4.0 * packing * s) - 1.0) / (2.0 * packing), 1.0)
    return site / (site + marrow)


def blast_fraction_array(site: np.ndarray, marrow: np.ndarray, packing: np.ndarray
                         ) -> np.ndarray:
    """:func:`blast_fraction` over arrays (one value per patient)."""
    site = np.asarray(site, dtype=np.float64)
    marrow = np.asarray(marrow, dtype=np.float64)
    k = np.asarray(packing, dtype=np.float64)
    old = site / (site + marrow)
    if not np.any(k > 0.0):
        return old
    kk = np.where(k > 0.0, k, 1.0)
    with np.errstate(invalid="ignore"):
        new = np.minimum((np.sqrt(1.0 + 4.0 * kk * site / marrow) - 1.0) / (2.0 * kk), 1.0)
    return np.where(k > 0.0, new, old)


def leukaemic_cells(f: np.ndarray, marrow: np.ndarray, packing: np.ndarray) -> np.ndarray:
    """Leukaemic cells of a marrow at blast fraction ``f`` (< 1): the inverse of
    :func:`blast_fraction`."""
    f = np.asarray(f, dtype=np.float64)
    k = np.asarray(packing, dtype=np.float64)
    return np.where(k > 0.0, f * (1.0 + k * f), f / (1.0 - f)) * np.asarray(marrow)
