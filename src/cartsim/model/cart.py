"""CAR-T cells: memory M, effector E and exhausted X in blood and at the disease site.

Expansion is antigen-driven and saturable (stimulation ``stim`` = engaged target load over its
half-saturation), boosted while the lymphodepleted lymphocyte niche is empty (Kimmel 2021):
homeostatic growth fills the empty niche, and antigen-driven proliferation halves when host T
cells occupy ``K_help`` of it, so after immune reconstitution effectors are fed by memory recall
and persistence follows memory decay.
Effectors die (Stein α), convert to memory (Stein F_B), exhaust with antigen load, PD-L1 and
death-receptor-defective targets (review B9, B12). Memory decays slowly (Stein β) and is
recalled by antigen, including regenerating normal B cells; recall is self-renewing
(a stimulated stem-like memory cell yields effectors without leaving the memory pool).
Peak time and height emerge.
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.parameters import P
from cartsim.model.state import S


@numba.njit(inline="always")
def derivs(
    y: np.ndarray,
    p: np.ndarray,
    dy: np.ndarray,
    stim: float,
    stim_quality: float,
    ex_factor: float,
    ster: float,
    ld: float,
) -> float:
    """Write CAR-T derivatives; return the total CAR-T count (for the niche)."""
    mb, eb, xb = y[S.M_b], y[S.E_b], y[S.X_b]
    mt, et, xt = y[S.M_t], y[S.E_t], y[S.X_t]
    car = mb + eb + xb + mt + et + xt
    fill = (max(y[S.N_T], 0.0) + max(car, 0.0)) / (p[P.niche_car_frac] * p[P.K_N])
    homeo = p[P.r_homeo] * (1.0 - fill) if fill < 1.0 else 0.0
    occ = max(y[S.N_T], 0.0) / p[P.K_N]
    help_ = p[P.K_help] / (p[P.K_help] + occ)
    prolif = p[P.rho_max] * stim * stim_quality * (1.0 - p[P.ster_prolif] * ster) * help_
    recall = p[P.k_recall] * stim * stim_quality
    exhaust = p[P.k_ex] * stim * ex_factor
    d_e = p[P.d_E] + p[P.k_em]
    kbt, ktb = p[P.k_bt], p[P.k_tb]
    ldk = p[P.ld_kill_T] * ld
    dy[S.E_t] = (prolif + homeo - d_e - exhaust - ktb - ldk) * et + recall * mt + kbt * eb
    dy[S.M_t] = p[P.k_em] * et + (homeo - p[P.d_M] - ktb - ldk) * mt + kbt * mb
    dy[S.X_t] = exhaust * et - (p[P.d_X] + ktb + ldk) * xt + kbt * xb
    dy[S.E_b] = ktb * et - (kbt + d_e - homeo + ldk) * eb
    dy[S.M_b] = ktb * mt + p[P.k_em] * eb - (kbt + p[P.d_M] - homeo + ldk) * mb
    dy[S.X_b] = ktb * xt - (kbt + p[P.d_X] + ldk) * xb
    return car


@numba.njit(inline="always")
def niche_derivs(y: np.ndarray, p: np.ndarray, dy: np.ndarray, car: float, ld: float) -> None:
    """Normal T cells recover logistically into the niche that lymphodepletion emptied."""
    n = y[S.N_T]
    dy[S.N_T] = p[P.r_N] * n * (1.0 - (max(n, 0.0) + max(car, 0.0)) / p[P.K_N]) - (
        p[P.ld_kill_T] * ld * n
    )
