"""Pharmacology of lymphodepletion and the supportive/interventional drugs (MODEL.md §7).

Each drug is a first-order amount or concentration state; the schedule or the clinic adds
doses as jumps between days (data, not equations). Effects are Emax functions of the state.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.parameters import LN2, P
from cartsim.model.state import S


@numba.njit(inline="always")
def effects(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """(LD exposure, tocilizumab IL-6R occupancy, siltuximab occupancy, steroid effect,
    anakinra effect, G-CSF exposure)."""
    ld = max(y[S.LD], 0.0)
    toci = max(y[S.TOCI], 0.0)
    silt = max(y[S.SILT], 0.0)
    ster = max(y[S.STER], 0.0)
    anak = max(y[S.ANAK], 0.0)
    occ_t = toci / (toci + p[P.toci_ec50])
    occ_s = silt / (silt + p[P.silt_ec50])
    e_st = ster / (ster + p[P.ster_ec50])
    e_an = anak / (anak + p[P.anakinra_ec50])
    return ld, occ_t, occ_s, e_st, e_an, max(y[S.GCSF], 0.0)


@numba.njit(inline="always")
def derivs(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    dy[S.LD] = -p[P.d_LD] * y[S.LD]
    dy[S.TOCI] = -LN2 / p[P.toci_half_life] * y[S.TOCI]
    dy[S.STER] = -LN2 / p[P.ster_half_life] * y[S.STER]
    dy[S.ANAK] = -LN2 / p[P.anakinra_half_life] * y[S.ANAK]
    dy[S.SILT] = -LN2 / p[P.silt_half_life] * y[S.SILT]
    dy[S.GCSF] = -LN2 / p[P.gcsf_half_life] * y[S.GCSF]
