"""Small test problems for the solver tests (module level so the on-disk cache keys on them)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Stiff linear system y' = A y, A = V diag(LAMBDAS) V^-1 (p unused).
LAMBDAS = np.array([-1.0, -100.0, -1.0e4])
_V = np.array([[1.0, 0.5, 0.2], [0.0, 1.0, 0.3], [0.1, 0.0, 1.0]])
A_STIFF = _V @ np.diag(LAMBDAS) @ np.linalg.inv(_V)


@njit(nogil=True)
def linear_rhs(t: float, y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    """y' = A y with the matrix flattened row-major into p[0:9]."""
    for i in range(3):
        s = 0.0
        for j in range(3):
            s += p[3 * i + j] * y[j]
        dy[i] = s


@njit(nogil=True)
def linear_jac(t: float, y: np.ndarray, p: np.ndarray, jm: np.ndarray) -> None:
    """Analytic Jacobian of :func:`linear_rhs`."""
    for i in range(3):
        for j in range(3):
            jm[i, j] = p[3 * i + j]


@njit(nogil=True)
def robertson_rhs(t: float, y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    """Robertson's chemical kinetics; p = (k1, k2, k3) = (0.04, 3e7, 1e4)."""
    r1 = p[0] * y[0]
    r2 = p[1] * y[1] * y[1]
    r3 = p[2] * y[1] * y[2]
    dy[0] = -r1 + r3
    dy[1] = r1 - r2 - r3
    dy[2] = r2


@njit(nogil=True)
def forced_rhs(t: float, y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    """Smooth non-autonomous nonlinear oscillator (order tests): p = (a, b)."""
    dy[0] = y[1]
    dy[1] = -p[0] * y[0] - p[1] * y[0] * y[0] * y[1] + math.cos(2.0 * t)


@njit(nogil=True)
def nan_rhs(t: float, y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    """y' = -p[1] y, but NaN from t >= p[0] (p[0] < 0 disables the fault)."""
    for i in range(y.shape[0]):
        dy[i] = -p[1] * y[i]
    if p[0] >= 0.0 and t >= p[0]:
        dy[0] = math.nan


@njit(nogil=True)
def ramp_rhs(t: float, y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    """y0' = -p0 (crosses zero), y1' = -p1 y1 (stays positive)."""
    dy[0] = -p[0]
    dy[1] = -p[1] * y[1]


@njit(nogil=True)
def forced_jac(t: float, y: np.ndarray, p: np.ndarray, jm: np.ndarray) -> None:
    """Analytic Jacobian of :func:`forced_rhs`."""
    jm[0, 0] = 0.0
    jm[0, 1] = 1.0
    jm[1, 0] = -p[0] - 2.0 * p[1] * y[0] * y[1]
    jm[1, 1] = -p[1] * y[0] * y[0]


@njit(nogil=True)
def integral_rhs(t: float, y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    """y0' = -k y0 and y1' = y0 (y1 integrates y0); p = (k,)."""
    dy[0] = -p[0] * y[0]
    dy[1] = y[0]


@njit(nogil=True)
def integral_mid_rhs(t: float, y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    """An integral in the middle of the state vector, as the core accumulators are once an
    add-on's states follow them: y0' = -k0 y0, y1' = y0 (integrates y0), y2' = -k1 y2 + y0
    (a state after the integral that feeds back); p = (k0, k1)."""
    dy[0] = -p[0] * y[0]
    dy[1] = y[0]
    dy[2] = -p[1] * y[2] + y[0]


@njit(nogil=True)
def decoupled_rhs(t: float, y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> None:
    """y0' = -p0 y0 (slow, smooth) and, not feeding back, y1' = p2 cos(p1 t) (fast)."""
    dy[0] = -p[0] * y[0]
    dy[1] = p[2] * math.cos(p[1] * t)
