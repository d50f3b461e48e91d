"""Compiled per-patient adaptive ODE solver, looped over patients in parallel.

Design (shared/reference/performance.md §8): one adaptive solver per patient with its own step
control and failure handling, compiled with numba and run over patients with ``prange`` on all
cores; no lock-step batching. The engine knows nothing about the model: it takes any numba
function ``rhs(t, y, p, dy)``.

Methods
-------
``"ros23"`` (default, stiff-robust): the L-stable Rosenbrock 2(3) pair of Shampine & Reichelt
(1997, the method of MATLAB's ``ode23s``), d = 1/(2+√2), with a finite-difference Jacobian
refreshed every step and a dense LU with partial pivoting. Error estimate of order 3.

``"dp5"`` (opt-in, non-stiff): Dormand–Prince 5(4) with the standard step-size controller.

Status codes per patient: :data:`STATUS_OK`, :data:`STATUS_MAX_STEPS`,
:data:`STATUS_STEP_TOO_SMALL`, :data:`STATUS_NONFINITE`. A patient whose status is non-zero on
entry is skipped; one failing patient never aborts the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

STATUS_OK = 0
STATUS_MAX_STEPS = 1
STATUS_STEP_TOO_SMALL = 2
STATUS_NONFINITE = 3

METHODS = ("ros23", "dp5")

_D = 1.0 / (2.0 + math.sqrt(2.0))
_E32 = 6.0 + math.sqrt(2.0)


@numba.njit(cache=True)
def _lu_factor(a: np.ndarray, piv: np.ndarray) -> bool:
    """In-place LU with partial pivoting; False if singular."""
    n = a.shape[0]
    for k in range(n):
        m = k
        amax = abs(a[k, k])
        for i in range(k + 1, n):
            v = abs(a[i, k])
            if v > amax:
                amax = v
                m = i
        piv[k] = m
        if amax == 0.0:
            return False
        if m != k:
            for j in range(n):
                tmp = a[k, j]
                a[k, j] = a[m, j]
                a[m, j] = tmp
        inv = 1.0 / a[k, k]
        for i in range(k + 1, n):
            a[i, k] *= inv
            f = a[i, k]
            if f != 0.0:
                for j in range(k + 1, n):
                    a[i, j] -= f * a[k, j]
    return True


@numba.njit(cache=True)
def _lu_solve(a: np.ndarray, piv: np.ndarray, b: np.ndarray) -> None:
    n = a.shape[0]
    for k in range(n):
        m = piv[k]
        if m != k:
            tmp = b[k]
            b[k] = b[m]
            b[m] = tmp
    for i in range(n):
        s = b[i]
        for j in range(i):
            s -= a[i, j] * b[j]
        b[i] = s
    for i in range(n - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, n):
            s -= a[i, j] * b[j]
        b[i] = s / a[i, i]


def _build_ros23(rhs: Callable[..., None], n_jac: int) -> Callable[..., None]:
    @numba.njit
    def solve_one(y, p, t0, t1, h0, rtol, atol, max_steps, work):  # type: ignore[no-untyped-def]
        n = y.shape[0]
        f0, f1, f2 = work[0], work[1], work[2]
        k1, k2, k3 = work[3], work[4], work[5]
        ynew, ytmp, fj = work[6], work[7], work[8]
        w = np.empty((n, n))
        piv = np.empty(n, dtype=np.int64)
        t = t0
        span = t1 - t0
        rhs(t, y, p, f0)
        h = h0
        if h <= 0.0 or h > span:
            # initial step from the scaled derivative (Hairer–Wanner heuristic, order 2)
            d0 = 0.0
            d1 = 0.0
            for i in range(n):
                sc = atol[i] + rtol * abs(y[i])
                d0 += (y[i] / sc) ** 2
                d1 += (f0[i] / sc) ** 2
            d0 = math.sqrt(d0 / n)
            d1 = math.sqrt(d1 / n)
            h = 0.01 * d0 / d1 if d0 > 1e-5 and d1 > 1e-5 else 1e-4
            h = min(h, span)
        steps = 0
        h_keep = h
        hmin = 1e-12 * max(1.0, abs(t1))
        while t < t1:
            if steps >= max_steps:
                return STATUS_MAX_STEPS, h, steps
            last = False
            if t + 1.01 * h >= t1:
                h_keep = h
                h = t1 - t
                last = True
            # finite-difference Jacobian (columns of accumulator states are zero)
            for j in range(n):
                for i in range(n):
                    w[i, j] = 0.0
            for j in range(n_jac):
                yj = y[j]
                dj = math.sqrt(2.2e-16) * max(abs(yj), atol[j] * 1e3, 1e-8)
                y[j] = yj + dj
                rhs(t, y, p, fj)
                y[j] = yj
                inv = 1.0 / dj
                for i in range(n):
                    w[i, j] = (fj[i] - f0[i]) * inv
            hd = h * _D
            for i in range(n):
                for j in range(n):
                    w[i, j] = -hd * w[i, j]
                w[i, i] += 1.0
            if not _lu_factor(w, piv):
                h *= 0.25
                if h < hmin:
                    return STATUS_STEP_TOO_SMALL, h, steps
                continue
            for i in range(n):
                k1[i] = f0[i]
            _lu_solve(w, piv, k1)
            for i in range(n):
                ytmp[i] = y[i] + 0.5 * h * k1[i]
            rhs(t + 0.5 * h, ytmp, p, f1)
            for i in range(n):
                k2[i] = f1[i] - k1[i]
            _lu_solve(w, piv, k2)
            for i in range(n):
                k2[i] += k1[i]
                ynew[i] = y[i] + h * k2[i]
            rhs(t + h, ynew, p, f2)
            for i in range(n):
                k3[i] = f2[i] - _E32 * (k2[i] - f1[i]) - 2.0 * (k1[i] - f0[i])
            _lu_solve(w, piv, k3)
            err = 0.0
            finite = True
            for i in range(n):
                e = h / 6.0 * (k1[i] - 2.0 * k2[i] + k3[i])
                sc = atol[i] + rtol * max(abs(y[i]), abs(ynew[i]))
                err += (e / sc) ** 2
                if not math.isfinite(ynew[i]):
                    finite = False
            err = math.sqrt(err / n)
            steps += 1
            if not finite or not math.isfinite(err):
                h *= 0.25
                if h < hmin:
                    return STATUS_NONFINITE, h, steps
                continue
            if err <= 1.0:
                t = t1 if last else t + h
                for i in range(n):
                    y[i] = ynew[i]
                    f0[i] = f2[i]
                fac = 0.9 * (1.0 / max(err, 1e-10)) ** (1.0 / 3.0)
                h = h * min(5.0, max(0.2, fac))
                if last:
                    h = max(h, h_keep)
            else:
                fac = 0.9 * (1.0 / err) ** (1.0 / 3.0)
                h = h * max(0.2, fac)
                if h < hmin:
                    return STATUS_STEP_TOO_SMALL, h, steps
        return STATUS_OK, h, steps

    return solve_one


_DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_DP_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)


def _build_dp5(rhs: Callable[..., None], n_jac: int) -> Callable[..., None]:
    a21 = _DP_A[1][0]
    a31, a32 = _DP_A[2]
    a41, a42, a43 = _DP_A[3]
    a51, a52, a53, a54 = _DP_A[4]
    a61, a62, a63, a64, a65 = _DP_A[5]
    b1, _, b3, b4, b5, b6 = _DP_A[6]
    e1, _, e3, e4, e5, e6, e7 = _DP_E
    c2, c3, c4, c5 = _DP_C[1], _DP_C[2], _DP_C[3], _DP_C[4]

    @numba.njit
    def solve_one(y, p, t0, t1, h0, rtol, atol, max_steps, work):  # type: ignore[no-untyped-def]
        n = y.shape[0]
        k1, k2, k3, k4, k5, k6, k7 = (work[0], work[1], work[2], work[3], work[4], work[5],
                                      work[6])
        yt, ynew = work[7], work[8]
        t = t0
        span = t1 - t0
        rhs(t, y, p, k1)
        h = h0 if 0.0 < h0 <= span else min(span, 1e-3)
        steps = 0
        h_keep = h
        hmin = 1e-12 * max(1.0, abs(t1))
        while t < t1:
            if steps >= max_steps:
                return STATUS_MAX_STEPS, h, steps
            last = False
            if t + 1.01 * h >= t1:
                h_keep = h
                h = t1 - t
                last = True
            for i in range(n):
                yt[i] = y[i] + h * a21 * k1[i]
            rhs(t + c2 * h, yt, p, k2)
            for i in range(n):
                yt[i] = y[i] + h * (a31 * k1[i] + a32 * k2[i])
            rhs(t + c3 * h, yt, p, k3)
            for i in range(n):
                yt[i] = y[i] + h * (a41 * k1[i] + a42 * k2[i] + a43 * k3[i])
            rhs(t + c4 * h, yt, p, k4)
            for i in range(n):
                yt[i] = y[i] + h * (a51 * k1[i] + a52 * k2[i] + a53 * k3[i] + a54 * k4[i])
            rhs(t + c5 * h, yt, p, k5)
            for i in range(n):
                yt[i] = y[i] + h * (a61 * k1[i] + a62 * k2[i] + a63 * k3[i] + a64 * k4[i]
                                    + a65 * k5[i])
            rhs(t + h, yt, p, k6)
            for i in range(n):
                ynew[i] = y[i] + h * (b1 * k1[i] + b3 * k3[i] + b4 * k4[i] + b5 * k5[i]
                                      + b6 * k6[i])
            rhs(t + h, ynew, p, k7)
            err = 0.0
            finite = True
            for i in range(n):
                e = h * (e1 * k1[i] + e3 * k3[i] + e4 * k4[i] + e5 * k5[i] + e6 * k6[i]
                         + e7 * k7[i])
                sc = atol[i] + rtol * max(abs(y[i]), abs(ynew[i]))
                err += (e / sc) ** 2
                if not math.isfinite(ynew[i]):
                    finite = False
            err = math.sqrt(err / n)
            steps += 1
            if not finite or not math.isfinite(err):
                h *= 0.25
                if h < hmin:
                    return STATUS_NONFINITE, h, steps
                continue
            if err <= 1.0:
                t = t1 if last else t + h
                for i in range(n):
                    y[i] = ynew[i]
                    k1[i] = k7[i]
                h = h * min(5.0, max(0.2, 0.9 * (1.0 / max(err, 1e-10)) ** 0.2))
                if last:
                    h = max(h, h_keep)
            else:
                h = h * max(0.2, 0.9 * (1.0 / err) ** 0.2)
                if h < hmin:
                    return STATUS_STEP_TOO_SMALL, h, steps
        return STATUS_OK, h, steps

    return solve_one


_CACHE: dict[tuple[int, str, int], Callable[..., None]] = {}


def make_integrator(
    rhs: Callable[..., None], n_states: int, method: str = "ros23", n_jac: int | None = None
) -> Callable[..., None]:
    """Build ``integrate(y, p, t0, t1, h, rtol, atol, max_steps, status, nsteps)``.

    ``y`` (N, S) is advanced in place from t0 to t1 for every patient whose ``status`` is 0;
    ``h`` (N,) carries each patient's step size between calls; ``nsteps`` (N,) accumulates
    attempted steps. ``n_jac`` limits the finite-difference Jacobian to the first ``n_jac``
    states (later states must not influence any derivative: e.g. daily integrals).
    """
    if method not in METHODS:
        raise ValueError(f"unknown solver method {method!r}; allowed: {', '.join(METHODS)}")
    nj = n_states if n_jac is None else int(n_jac)
    key = (id(rhs), method, nj)
    if key in _CACHE:
        return _CACHE[key]
    solve_one = (_build_ros23 if method == "ros23" else _build_dp5)(rhs, nj)

    @numba.njit(parallel=True, nogil=True)
    def integrate(y, p, t0, t1, h, rtol, atol, max_steps, status, nsteps):  # type: ignore[no-untyped-def]
        n_pat, n = y.shape
        for i in numba.prange(n_pat):
            if status[i] != 0:
                continue
            work = np.empty((9, n))
            yi = y[i].copy()
            st, hi, k = solve_one(yi, p[i], t0, t1, h[i], rtol, atol, max_steps, work)
            nsteps[i] += k
            status[i] = st
            if st == STATUS_OK:
                y[i, :] = yi
                h[i] = hi

    _CACHE[key] = integrate
    return integrate
