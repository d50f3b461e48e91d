"""The 7-state CAR-T benchmark model of performance.md section 2 (test/benchmark fixture).

States: E, M, X, T1, T2, B, C. Parameter vector p (per patient), in this order:
D, T0, rho, k_kill, k_em, k_ex, r1, mu, d_C. Fixed parameters are module constants.
"""

from __future__ import annotations

import numpy as np
from numba import njit

N_STATES = 7
N_PARAMS = 9
K_A = 1e10
K_S = 1e10
K_R = 0.1
D_E = 0.15
D_M = 0.01
D_X = 0.2
R2 = 0.03
K_T = 1e12
S_B = 5e8
D_B = 0.05
K_C = 2e-7
C0 = 3.0
B0 = 2e9

# (median, sigma of log) for D, T0, rho, k_kill, k_em, k_ex, r1, mu
LOGNORMAL = (
    (1e8, 0.5),
    (3e10, 0.8),
    (0.9, 0.25),
    (2.0, 0.3),
    (0.02, 0.3),
    (3e-12, 0.8),
    (0.03, 0.3),
    (3e-9, 1.5),
)


@njit(nogil=True)
def cart_rhs(t: float, y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    """dy/dt of the CAR-T model; p = (D, T0, rho, k_kill, k_em, k_ex, r1, mu, d_C)."""
    rho = p[2]
    k_kill = p[3]
    k_em = p[4]
    k_ex = p[5]
    r1 = p[6]
    mu = p[7]
    d_c = p[8]
    e = y[0]
    m = y[1]
    x = y[2]
    t1 = y[3]
    t2 = y[4]
    b = y[5]
    c = y[6]
    a = t1 + b
    sat = a / (a + K_A)
    g = k_kill * e / (K_S + a)
    kt = g * t1
    kb = g * b
    growth = 1.0 - (t1 + t2) / K_T
    dy[0] = rho * sat * e + K_R * sat * m - (k_em + D_E) * e - k_ex * a * e
    dy[1] = k_em * e - K_R * sat * m - D_M * m
    dy[2] = k_ex * a * e - D_X * x
    dy[3] = r1 * t1 * growth - kt - mu * t1
    dy[4] = R2 * t2 * growth + mu * t1
    dy[5] = S_B - D_B * b - kb
    dy[6] = d_c * C0 + K_C * (kt + kb) - d_c * c


def sample_cohort(n: int, seed: int = 12345, d_c: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Log-normal patient parameters and initial states: (y0[n, 7], p[n, 9])."""
    rng = np.random.default_rng(seed)
    p = np.empty((n, N_PARAMS))
    for j, (med, sig) in enumerate(LOGNORMAL):
        p[:, j] = med * np.exp(sig * rng.standard_normal(n))
    p[:, 8] = d_c
    y0 = np.zeros((n, N_STATES))
    y0[:, 0] = p[:, 0]
    y0[:, 3] = p[:, 1]
    y0[:, 5] = B0
    y0[:, 6] = C0
    return y0, p


@njit(nogil=True)
def cart_jac(t: float, y: np.ndarray, p: np.ndarray, jm: np.ndarray) -> None:
    """Analytic Jacobian d(dy)/dy of :func:`cart_rhs`."""
    rho = p[2]
    k_kill = p[3]
    k_em = p[4]
    k_ex = p[5]
    r1 = p[6]
    mu = p[7]
    d_c = p[8]
    e = y[0]
    m = y[1]
    t1 = y[3]
    t2 = y[4]
    b = y[5]
    a = t1 + b
    sat = a / (a + K_A)
    dsat = K_A / ((a + K_A) * (a + K_A))  # d sat / dA
    den = K_S + a
    g = k_kill * e / den
    dg_de = k_kill / den
    dg_da = -g / den
    growth = 1.0 - (t1 + t2) / K_T
    for i in range(7):
        for j in range(7):
            jm[i, j] = 0.0
    # dA/dT1 = dA/dB = 1
    # E
    jm[0, 0] = rho * sat - (k_em + D_E) - k_ex * a
    jm[0, 1] = K_R * sat
    dE_dA = rho * dsat * e + K_R * dsat * m - k_ex * e
    jm[0, 3] = dE_dA
    jm[0, 5] = dE_dA
    # M
    jm[1, 0] = k_em
    jm[1, 1] = -K_R * sat - D_M
    jm[1, 3] = -K_R * dsat * m
    jm[1, 5] = -K_R * dsat * m
    # X
    jm[2, 0] = k_ex * a
    jm[2, 2] = -D_X
    jm[2, 3] = k_ex * e
    jm[2, 5] = k_ex * e
    # T1: r1*T1*growth - g*T1 - mu*T1
    jm[3, 0] = -dg_de * t1
    jm[3, 3] = r1 * growth - r1 * t1 / K_T - g - dg_da * t1 - mu
    jm[3, 4] = -r1 * t1 / K_T
    jm[3, 5] = -dg_da * t1
    # T2
    jm[4, 3] = -R2 * t2 / K_T + mu
    jm[4, 4] = R2 * growth - R2 * t2 / K_T
    # B: s_B - d_B*B - g*B
    jm[5, 0] = -dg_de * b
    jm[5, 3] = -dg_da * b
    jm[5, 5] = -D_B - g - dg_da * b
    # C: d_C*C0 + k_C*g*(T1+B) - d_C*C = ... + k_C*g*A
    jm[6, 0] = K_C * dg_de * a
    jm[6, 3] = K_C * (dg_da * a + g)
    jm[6, 5] = K_C * (dg_da * a + g)
    jm[6, 6] = -d_c
