"""Model-agnostic compiled ODE engine: one adaptive solver per patient, parallel over patients.

Design (see ``/work/shared/reference/performance.md`` sections 6-8 for the measurements
behind it):

* Every patient is integrated by its own adaptive solver with its own step size, step
  control and failure status. Patients are never advanced in lock-step.
* The loop over patients is compiled (``numba.prange`` inside ``@njit(parallel=True,
  nogil=True)``), so one call integrates the whole cohort from ``t0`` to ``t1`` on all
  cores. Work arrays are allocated once per block of patients, not per patient.
* The default method is RODAS4 (Hairer & Wanner, *Solving ODEs II*, sec. IV.7): an
  L-stable, stiffly accurate Rosenbrock method of order 4 with an embedded order-3 error
  estimate. Its cost does not depend on the stiffness of the model. ``method="dp5"`` selects
  the explicit Dormand-Prince 5(4) pair (the tableau, error estimate and norm of SciPy's
  ``RK45``), which is cheaper per step on non-stiff models but whose step is bounded by
  stability once any timescale is short.
* The model's right-hand side is a numba ``@njit`` function
  ``rhs(t, y, p, dy) -> None`` writing ``dy`` in place. It is inlined into the compiled
  solver (no indirect call per evaluation). The Jacobian is built inside compiled code by
  column-wise forward differences unless an analytic ``jac(t, y, p, J)`` is given.

Public interface::

    integrate = make_integrator(rhs, n_states=S, method="rodas4")
    integrate(y, p, t0, t1, h, rtol, atol, max_steps, status, nsteps)

See :func:`make_integrator` for the meaning of every argument.

Compile-time caching
--------------------
numba refuses to reuse an on-disk cache for closures over other jitted functions (a
dispatcher pickles with a per-process random UUID, so the closure hash never matches in a
new process). :func:`make_integrator` therefore does not build a closure: it clones a
module-level driver function with its own globals (``rhs``, ``jac``, the method and output
mode of the one per-patient step loop, :func:`_solve_one`, and the controller constants)
and a qualified name derived from a hash of the model's source file, the names of
``rhs``/``jac`` and all options. numba then caches each (model, method, options)
combination in its own file next to this module (or in ``NUMBA_CACHE_DIR``), and a second
process loads it instead of compiling. The hash covers the whole source file that defines
``rhs`` (and ``jac``); helpers that ``rhs`` imports from *other* files are not tracked,
exactly as with numba's own ``cache=True``. Pass ``cache=False`` when developing such
helpers.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numba
import numpy as np
from numba import njit, prange

from cartsim.atomic import atomic_write

__all__ = [
    "STATUS_OK",
    "STATUS_MAX_STEPS",
    "STATUS_STEP_TOO_SMALL",
    "STATUS_NONFINITE",
    "STATUS_NAMES",
    "METHODS",
    "SolverOptions",
    "Integrator",
    "make_integrator",
    "column_groups",
    "detect_sparsity",
    "dense_memory",
    "set_error_mask",
]

#: The patient reached ``t1``.
STATUS_OK: int = 0
#: More than ``max_steps`` steps (accepted + rejected) were needed within one call.
STATUS_MAX_STEPS: int = 1
#: The step size fell below ``16 * eps * max(|t|, |t1|)`` while the error test kept failing.
STATUS_STEP_TOO_SMALL: int = 2
#: The right-hand side produced NaN/inf at an accepted state, or every retry of a step did.
STATUS_NONFINITE: int = 3

STATUS_NAMES: dict[int, str] = {
    STATUS_OK: "ok",
    STATUS_MAX_STEPS: "max_steps",
    STATUS_STEP_TOO_SMALL: "step_too_small",
    STATUS_NONFINITE: "nonfinite",
}

#: Supported methods: name -> order used by the step-size controller exponent.
METHODS: dict[str, int] = {"rodas4": 4, "dp5": 5}

_EPS = float(np.finfo(np.float64).eps)
_SQRT_EPS = math.sqrt(_EPS)
_BLOCK = 16  # patients per work-array allocation inside the parallel loop

# Rows of the per-block work array ``W`` (shape (_NW, S)).
_W_F0 = 0  # f(t, y) at the current accepted state
_W_FT = 1  # scratch rhs output
_W_YT = 2  # stage argument / candidate new state
_W_FX = 3  # df/dt (Rosenbrock, non-autonomous)
_W_K = 4  # stages k1..k7 occupy rows 4..10
_W_YS = 11  # scratch copy of y for the first-step heuristic
_W_DV = 12  # finite-difference increments per column
_W_YSAVE = 13  # unperturbed values of the columns of a group
_W_AIN = 14  # input values of the interval integrals (dense mode)
_NW = 15


@dataclass(frozen=True)
class SolverOptions:
    """Step-size controller settings, fixed at compile time.

    Attributes:
        safety: safety factor on the optimal step-size estimate.
        fac_min: smallest factor by which one step may shrink the step size.
        fac_max: largest factor by which one accepted step may grow the step size.
        rtol: default relative tolerance (for callers; the compiled function takes it as
            an argument).
        atol: default absolute tolerance, same for every state.
        max_steps: default step budget per patient per call.
    """

    safety: float = 0.9
    fac_min: float = 0.2
    fac_max: float = 6.0
    rtol: float = 1e-6
    atol: float = 1e-4
    max_steps: int = 100_000

    def atol_array(self, n_states: int) -> np.ndarray:
        """Return the default per-state absolute tolerance as a float64 array."""
        return np.full(n_states, self.atol, dtype=np.float64)


class Integrator(Protocol):
    """Signature of the compiled cohort integrator returned by :func:`make_integrator`."""

    def __call__(
        self,
        y: np.ndarray,
        p: np.ndarray,
        t0: float,
        t1: float,
        h: np.ndarray,
        rtol: float,
        atol: np.ndarray,
        max_steps: int,
        status: np.ndarray,
        nsteps: np.ndarray,
    ) -> None: ...


# ----------------------------------------------------------------------------------------
# Dense LU with partial pivoting (S is small: 5-60). Hand-written: no allocation, no LAPACK
# call overhead per step.
# ----------------------------------------------------------------------------------------


def _lu_factor(a: np.ndarray, piv: np.ndarray) -> bool:
    """Factor ``a`` in place as P A = L U (unit lower L); return False on a zero pivot.

    The diagonal of ``a`` receives the *reciprocals* of U's diagonal, so that
    :func:`_lu_solve` multiplies instead of dividing (divisions dominate the latency of a
    small triangular solve).

    Block structure: the matrices factored here are ``I/(h γ) − J``; when only the first
    ``_NJAC`` states feed back into the model, the columns of the others are zero apart from
    the diagonal, so ``a = [[A, 0], [C, D]]`` with D diagonal. Only A is factored (pivoting
    within it); C is kept and D is replaced by its reciprocal for the forward substitution.
    """
    n = _N
    nj = _NJAC
    for k in range(nj):
        m = k
        amax = abs(a[k, k])
        for i in range(k + 1, nj):
            v = abs(a[i, k])
            if v > amax:
                amax = v
                m = i
        piv[k] = m
        if not amax > 0.0:  # also catches NaN
            return False
        if m != k:
            for j in range(nj):
                tmp = a[k, j]
                a[k, j] = a[m, j]
                a[m, j] = tmp
        inv = 1.0 / a[k, k]
        a[k, k] = inv
        for i in range(k + 1, nj):
            lik = a[i, k] * inv
            a[i, k] = lik
            if lik != 0.0:
                for j in range(k + 1, nj):
                    a[i, j] -= lik * a[k, j]
    for i in range(nj, n):
        d = a[i, i]
        if not abs(d) > 0.0:
            return False
        a[i, i] = 1.0 / d
    return True


def _lu_solve(lu: np.ndarray, piv: np.ndarray, b: np.ndarray) -> None:
    """Solve ``A x = b`` in place given the output of :func:`_lu_factor`.

    Column-oriented (axpy) substitution: the updates within a column are independent, which
    shortens the dependency chain compared with row-wise dot products. Rows beyond
    ``_NJAC`` (diagonal block) are then solved by forward substitution.
    """
    n = _N
    nj = _NJAC
    for k in range(nj):
        m = piv[k]
        if m != k:
            tmp = b[k]
            b[k] = b[m]
            b[m] = tmp
    for j in range(nj):
        bj = b[j]
        for i in range(j + 1, nj):
            b[i] -= lu[i, j] * bj
    for j in range(nj - 1, -1, -1):
        bj = b[j] * lu[j, j]
        b[j] = bj
        for i in range(j):
            b[i] -= lu[i, j] * bj
    for i in range(nj, n):
        s = b[i]
        for j in range(nj):
            s -= lu[i, j] * b[j]
        b[i] = s * lu[i, i]


def _splu_factor(a: np.ndarray, jm: np.ndarray, fac: float) -> bool:
    """Sparse LU of the feedback block in a fixed elimination order, without row exchanges.

    The order (minimum degree) and the fill pattern come from the Jacobian's sparsity
    pattern (:func:`lu_plan`); only the pattern's positions are touched. The states have
    different units, so the column-magnitude test of partial pivoting means nothing here;
    instead a pivot is accepted while elimination has kept it of the same sign and at least
    10⁻³ of its original value ``fac − J_kk`` (no catastrophic cancellation). Otherwise
    False is returned and the caller falls back to the dense LU with partial pivoting.
    """
    for k in range(_SP_ORDER.shape[0]):
        pk = _SP_ORDER[k]
        d = a[pk, pk]
        if not d / (fac - jm[pk, pk]) >= 1e-3:  # also catches NaN and a zero original
            return False
        inv = 1.0 / d
        a[pk, pk] = inv
        for q in range(_SP_LPTR[k], _SP_LPTR[k + 1]):
            i = _SP_LROWS[q]
            lik = a[i, pk] * inv
            a[i, pk] = lik
            if lik != 0.0:
                for r in range(_SP_UPTR[k], _SP_UPTR[k + 1]):
                    j = _SP_UCOLS[r]
                    a[i, j] -= lik * a[pk, j]
    return True


def _splu_solve(lu: np.ndarray, b: np.ndarray) -> None:
    """Forward and back substitution for :func:`_splu_factor` (feedback block only)."""
    m = _SP_ORDER.shape[0]
    for k in range(m):
        pk = _SP_ORDER[k]
        bk = b[pk]
        if bk != 0.0:
            for q in range(_SP_LPTR[k], _SP_LPTR[k + 1]):
                i = _SP_LROWS[q]
                b[i] -= lu[i, pk] * bk
    for k in range(m - 1, -1, -1):
        pk = _SP_ORDER[k]
        bk = b[pk] * lu[pk, pk]
        b[pk] = bk
        if bk != 0.0:
            for q in range(_SP_CPTR[k], _SP_CPTR[k + 1]):
                i = _SP_CROWS[q]
                b[i] -= lu[i, pk] * bk


def _factor(a: np.ndarray, jm: np.ndarray, fac: float, piv: np.ndarray) -> bool:
    """Factor the iteration matrix ``a = fac I - J``: sparse when planned, else dense.

    ``piv[_N]`` records which factorisation :func:`_solve` must use.
    """
    n = _N
    if _SPARSE_LU:
        if _splu_factor(a, jm, fac):
            for i in range(_NJAC, n):
                d = a[i, i]
                if not abs(d) > 0.0:
                    return False
                a[i, i] = 1.0 / d
            piv[n] = 1
            return True
        for i in range(n):  # rebuild: the sparse attempt overwrote part of ``a``
            for j in range(n):
                a[i, j] = -jm[i, j]
            a[i, i] += fac
    piv[n] = 0
    return _lu_factor(a, piv)


def _solve(lu: np.ndarray, piv: np.ndarray, b: np.ndarray) -> None:
    """Solve with the factorisation made by :func:`_factor`."""
    n = _N
    if _SPARSE_LU and piv[n] == 1:
        _splu_solve(lu, b)
        for i in range(_NJAC, n):
            s = b[i]
            for j in range(_NJAC):
                s -= lu[i, j] * b[j]
            b[i] = s * lu[i, i]
    else:
        _lu_solve(lu, piv, b)


# ----------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------


@njit(nogil=True)
def _no_jac(t: float, y: np.ndarray, p: np.ndarray, jm: np.ndarray) -> None:
    """Stand-in passed when no analytic Jacobian is given (never called)."""
    jm[0, 0] = 0.0


def _err_norm(e: np.ndarray, y0: np.ndarray, y1: np.ndarray, rtol: float, atol: np.ndarray,
              scale_h: float, skip: np.ndarray) -> float:
    """sqrt(mean((scale_h*e / (atol + rtol*max(|y0|,|y1|)))**2)); NaN-propagating.

    Continuous-output mode: states with ``skip[i] != 0`` (the caller will overwrite them,
    :func:`set_error_mask`) contribute nothing; the mean is still over all states."""
    n = _N
    acc = 0.0
    for i in range(n):
        if _DENSE and skip[i] != 0.0:
            continue
        sc = atol[i] + rtol * max(abs(y0[i]), abs(y1[i]))
        r = scale_h * e[i] / sc
        acc += r * r
    return math.sqrt(acc / n)


def _all_finite(v: np.ndarray) -> bool:
    for i in range(_N):
        if not math.isfinite(v[i]):
            return False
    return True


def _initial_step(y: np.ndarray, p: np.ndarray, t0: float, t1: float,
                  f0: np.ndarray, rtol: float, atol: np.ndarray, order: int,
                  ys: np.ndarray, f1: np.ndarray) -> float:
    """Hairer-Norsett-Wanner starting step heuristic (HNW I, sec. II.4)."""
    n = _N
    d0 = 0.0
    d1 = 0.0
    for i in range(n):
        sc = atol[i] + rtol * abs(y[i])
        d0 += (y[i] / sc) ** 2
        d1 += (f0[i] / sc) ** 2
    d0 = math.sqrt(d0 / n)
    d1 = math.sqrt(d1 / n)
    span = t1 - t0
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = 1e-6
    else:
        h0 = 0.01 * d0 / d1
    h0 = min(h0, span)
    for i in range(n):
        ys[i] = y[i] + h0 * f0[i]
    _RHS(t0 + h0, ys, p, f1)
    d2 = 0.0
    for i in range(n):
        sc = atol[i] + rtol * abs(y[i])
        d2 += ((f1[i] - f0[i]) / sc) ** 2
    d2 = math.sqrt(d2 / n) / h0
    dm = max(d1, d2)
    if not math.isfinite(dm):
        return h0
    if dm <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / dm) ** (1.0 / (order + 1))
    return min(100.0 * h0, h1, span)


def _nonneg_fix(ynew: np.ndarray, atol: np.ndarray) -> bool:
    """Zero components in (-atol, 0); return False if any is <= -atol (reject the step)."""
    n = _N
    for i in range(n):
        if ynew[i] <= -atol[i]:
            return False
    for i in range(n):
        if ynew[i] < 0.0:
            ynew[i] = 0.0
    return True


def _grow_factor(err: float, expo: float, last_rejected: bool) -> float:
    """Step-size factor after an accepted step (standard controller, no growth right after
    a rejection; fixed-step mode keeps the step)."""
    if _FIXED_STEP:
        return 1.0
    if err == 0.0:
        return _FAC_MAX
    fac = min(_FAC_MAX, max(_FAC_MIN, _SAFETY * err ** (-expo)))
    if last_rejected:
        fac = min(fac, 1.0)
    return fac


def _shrink_factor(err: float, finite: bool, expo: float) -> float:
    """Step-size factor after a rejected step (a quarter when the error was not finite)."""
    if finite:
        return min(max(_FAC_MIN, _SAFETY * err ** (-expo)), 1.0)
    return 0.25


# ----------------------------------------------------------------------------------------
# RODAS4 coefficients (Hairer & Wanner, rodas.f, METH=1)
# ----------------------------------------------------------------------------------------

_R_GAMMA = 0.25
_R_C2, _R_C3, _R_C4 = 0.386, 0.21, 0.63
_R_D1, _R_D2, _R_D3, _R_D4 = 0.25, -0.1043, 0.1035, -0.3620000000000023e-01
_R_A21 = 1.544
_R_A31, _R_A32 = 0.9466785280815826, 0.2557011698983284
_R_A41, _R_A42, _R_A43 = 3.314825187068521, 2.896124015972201, 0.9986419139977817
_R_A51, _R_A52, _R_A53, _R_A54 = (
    1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950)
_R_C21 = -5.6688
_R_C31, _R_C32 = -2.430093356833875, -0.2063599157091915
_R_C41, _R_C42, _R_C43 = -0.1073529058151375, -9.594562251023355, -20.47028614809616
_R_C51, _R_C52, _R_C53, _R_C54 = (
    7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160)
_R_C61, _R_C62, _R_C63, _R_C64, _R_C65 = (
    8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136,
    -6.058818238834054)


def _rodas4_attempt(t: float, h: float, y: np.ndarray, p: np.ndarray,
                    jm: np.ndarray, em: np.ndarray, piv: np.ndarray, w: np.ndarray,
                    with_fx: bool) -> bool:
    """One RODAS4 step of size h from (t, y). New state in w[_W_YT], error in w[_W_K+5].

    Uses f0 = w[_W_F0], df/dt = w[_W_FX] (if ``with_fx``) and the Jacobian ``jm``.
    Returns False if the iteration matrix is singular.
    """
    n = _N
    inv_h = 1.0 / h
    fac = inv_h * (1.0 / _R_GAMMA)
    for i in range(n):
        for j in range(n):
            em[i, j] = -jm[i, j]
        em[i, i] += fac
    if not _factor(em, jm, fac, piv):
        return False
    f0 = w[_W_F0]
    ft = w[_W_FT]
    yt = w[_W_YT]
    fx = w[_W_FX]
    k1 = w[_W_K]
    k2 = w[_W_K + 1]
    k3 = w[_W_K + 2]
    k4 = w[_W_K + 3]
    k5 = w[_W_K + 4]
    k6 = w[_W_K + 5]
    hc21 = _R_C21 * inv_h
    hc31 = _R_C31 * inv_h
    hc32 = _R_C32 * inv_h
    hc41 = _R_C41 * inv_h
    hc42 = _R_C42 * inv_h
    hc43 = _R_C43 * inv_h
    hc51 = _R_C51 * inv_h
    hc52 = _R_C52 * inv_h
    hc53 = _R_C53 * inv_h
    hc54 = _R_C54 * inv_h
    hc61 = _R_C61 * inv_h
    hc62 = _R_C62 * inv_h
    hc63 = _R_C63 * inv_h
    hc64 = _R_C64 * inv_h
    hc65 = _R_C65 * inv_h
    if with_fx:
        hd1 = h * _R_D1
        hd2 = h * _R_D2
        hd3 = h * _R_D3
        hd4 = h * _R_D4
    else:
        hd1 = 0.0
        hd2 = 0.0
        hd3 = 0.0
        hd4 = 0.0
    # stage 1
    for i in range(n):
        k1[i] = f0[i] + hd1 * fx[i]
    _solve(em, piv, k1)
    # stage 2
    for i in range(n):
        yt[i] = y[i] + _R_A21 * k1[i]
    _RHS(t + _R_C2 * h, yt, p, ft)
    for i in range(n):
        k2[i] = ft[i] + hc21 * k1[i] + hd2 * fx[i]
    _solve(em, piv, k2)
    # stage 3
    for i in range(n):
        yt[i] = y[i] + _R_A31 * k1[i] + _R_A32 * k2[i]
    _RHS(t + _R_C3 * h, yt, p, ft)
    for i in range(n):
        k3[i] = ft[i] + hc31 * k1[i] + hc32 * k2[i] + hd3 * fx[i]
    _solve(em, piv, k3)
    # stage 4
    for i in range(n):
        yt[i] = y[i] + _R_A41 * k1[i] + _R_A42 * k2[i] + _R_A43 * k3[i]
    _RHS(t + _R_C4 * h, yt, p, ft)
    for i in range(n):
        k4[i] = ft[i] + hc41 * k1[i] + hc42 * k2[i] + hc43 * k3[i] + hd4 * fx[i]
    _solve(em, piv, k4)
    # stage 5
    for i in range(n):
        yt[i] = y[i] + _R_A51 * k1[i] + _R_A52 * k2[i] + _R_A53 * k3[i] + _R_A54 * k4[i]
    _RHS(t + h, yt, p, ft)
    for i in range(n):
        k5[i] = ft[i] + hc51 * k1[i] + hc52 * k2[i] + hc53 * k3[i] + hc54 * k4[i]
    _solve(em, piv, k5)
    # stage 6 (embedded error stage, stiffly accurate)
    for i in range(n):
        yt[i] += k5[i]
    _RHS(t + h, yt, p, ft)
    for i in range(n):
        k6[i] = (ft[i] + hc61 * k1[i] + hc62 * k2[i] + hc63 * k3[i] + hc64 * k4[i]
                 + hc65 * k5[i])
    _solve(em, piv, k6)
    for i in range(n):
        yt[i] += k6[i]
    return True


def _fd_jacobian(t: float, y: np.ndarray, p: np.ndarray, f0: np.ndarray,
                 ft: np.ndarray, atol: np.ndarray, jm: np.ndarray, dv: np.ndarray,
                 ysave: np.ndarray) -> None:
    """Forward-difference Jacobian, column j perturbed by sqrt(eps)*max(|y_j|, atol_j).

    Only the first ``_NJAC`` columns are computed; the others are zero (states that feed
    nothing back, such as integrals of rates kept for a stochastic layer). With a sparsity
    pattern (``_GROUPED``), structurally orthogonal columns (no shared non-zero row) are
    perturbed together, one rhs call per group (Curtis, Powell & Reid 1974), and only the
    pattern's entries are written (the rest of ``jm`` stays zero from allocation).
    """
    n = _N
    if _GROUPED:
        for g in range(_GPTR.shape[0] - 1):
            for q in range(_GPTR[g], _GPTR[g + 1]):
                j = _GCOLS[q]
                yj = y[j]
                ysave[j] = yj
                d = _SQRT_EPS * max(abs(yj), atol[j])
                if not d > 0.0:
                    d = _SQRT_EPS
                y[j] = yj + d
                dv[j] = y[j] - yj
            _RHS(t, y, p, ft)
            for q in range(_GPTR[g], _GPTR[g + 1]):
                j = _GCOLS[q]
                inv = 1.0 / dv[j]
                for r in range(_JCOLPTR[j], _JCOLPTR[j + 1]):
                    i = _JROWS[r]
                    jm[i, j] = (ft[i] - f0[i]) * inv
                y[j] = ysave[j]
        return
    for j in range(_NJAC, n):
        for i in range(n):
            jm[i, j] = 0.0
    for j in range(_NJAC):
        yj = y[j]
        d = _SQRT_EPS * max(abs(yj), atol[j])
        if not d > 0.0:
            d = _SQRT_EPS
        y[j] = yj + d
        d = y[j] - yj
        _RHS(t, y, p, ft)
        inv = 1.0 / d
        for i in range(n):
            jm[i, j] = (ft[i] - f0[i]) * inv
        y[j] = yj


# RODAS4 continuous output (Hairer & Wanner, rodas.f, METH=1): over an accepted step
# from (t, y0) to (t + h, y1), y(t + θh) = (1-θ) y0 + θ (y1 + (1-θ) (c2 + θ c3)) with
# c2 = Σ D2j k_j and c3 = Σ D3j k_j (order 3, as the embedded error estimate).
_R_D21, _R_D22, _R_D23, _R_D24, _R_D25 = (
    10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823,
    1.025137723295662)
_R_D31, _R_D32, _R_D33, _R_D34, _R_D35 = (
    -0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386,
    -6.594389125716872)

# Rows of the per-patient persistent array ``mem`` (shape (N, _NM, S)) of a dense integrator
# and columns of ``tmem`` (shape (N, _NT)).
_M_Y0 = 0  # state at the start of the last accepted step
_M_Y1 = 1  # state at its end (the solver's own current point, possibly beyond t1)
_M_C2 = 2  # continuous-output coefficients of that step
_M_C3 = 3
_M_F1 = 4  # f at _M_Y1
_M_OUT = 5  # what the last call returned in ``y`` (a change means the caller jumped)
_M_SKIP = 6  # 1.0 where a state's error is left out of the step-size control
_NM = 7
_T_T0 = 0  # start time of the last accepted step
_T_T1 = 1  # its end time
_T_VALID = 2  # 1.0 when the patient can continue from its last step
_T_LAST = 3  # t1 of the last call
_NT = 4


def _interp_out(y: np.ndarray, mem: np.ndarray, tm: np.ndarray, t1: float,
                a_in: np.ndarray) -> None:
    """Write the continuous output at ``t1`` into ``y`` and rebase the interval integrals.

    Non-negative step end points give a non-negative output (the cubic may dip below zero
    between two accepted states; it is clipped there, never elsewhere). States from
    ``_NACC`` up to ``_NACC_END`` are integrals over the call's interval: the input value
    plus the integral; the solver's copies are shifted so that the next interval starts from
    zero.
    """
    n = _N
    y0 = mem[_M_Y0]
    y1 = mem[_M_Y1]
    c2 = mem[_M_C2]
    c3 = mem[_M_C3]
    out = mem[_M_OUT]
    span = tm[_T_T1] - tm[_T_T0]
    th = (t1 - tm[_T_T0]) / span if span > 0.0 else 1.0
    th1 = 1.0 - th
    for i in range(n):
        v = th1 * y0[i] + th * (y1[i] + th1 * (c2[i] + th * c3[i]))
        if i < _NACC or i >= _NACC_END:
            if v < 0.0 and y0[i] >= 0.0 and y1[i] >= 0.0:
                v = 0.0
            y[i] = v
            out[i] = v
        else:
            y[i] = a_in[i] + v
            y0[i] -= v
            y1[i] -= v
            out[i] = 0.0
    tm[_T_LAST] = t1


# ----------------------------------------------------------------------------------------
# Dormand-Prince 5(4) (same tableau and error estimate as SciPy RK45)
# ----------------------------------------------------------------------------------------

_D_C2, _D_C3, _D_C4, _D_C5 = 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0
_D_A21 = 1.0 / 5.0
_D_A31, _D_A32 = 3.0 / 40.0, 9.0 / 40.0
_D_A41, _D_A42, _D_A43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
_D_A51, _D_A52, _D_A53, _D_A54 = (
    19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0)
_D_A61, _D_A62, _D_A63, _D_A64, _D_A65 = (
    9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0)
_D_B1, _D_B3, _D_B4, _D_B5, _D_B6 = (
    35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0)
_D_E1, _D_E3, _D_E4, _D_E5, _D_E6, _D_E7 = (
    -71.0 / 57600.0, 71.0 / 16695.0, -71.0 / 1920.0, 17253.0 / 339200.0, -22.0 / 525.0,
    1.0 / 40.0)


def _dp5_attempt(t: float, h: float, y: np.ndarray, p: np.ndarray,
                 w: np.ndarray) -> None:
    """One DP5 step. Uses k1 = w[_W_F0]; new state in w[_W_YT]; f(t+h, ynew) in w[_W_K+6];
    the error vector (without the factor h) in w[_W_FT]."""
    n = _N
    k1 = w[_W_F0]
    yt = w[_W_YT]
    k2 = w[_W_K + 1]
    k3 = w[_W_K + 2]
    k4 = w[_W_K + 3]
    k5 = w[_W_K + 4]
    k6 = w[_W_K + 5]
    k7 = w[_W_K + 6]
    ev = w[_W_FT]
    for i in range(n):
        yt[i] = y[i] + h * (_D_A21 * k1[i])
    _RHS(t + _D_C2 * h, yt, p, k2)
    for i in range(n):
        yt[i] = y[i] + h * (_D_A31 * k1[i] + _D_A32 * k2[i])
    _RHS(t + _D_C3 * h, yt, p, k3)
    for i in range(n):
        yt[i] = y[i] + h * (_D_A41 * k1[i] + _D_A42 * k2[i] + _D_A43 * k3[i])
    _RHS(t + _D_C4 * h, yt, p, k4)
    for i in range(n):
        yt[i] = y[i] + h * (_D_A51 * k1[i] + _D_A52 * k2[i] + _D_A53 * k3[i]
                            + _D_A54 * k4[i])
    _RHS(t + _D_C5 * h, yt, p, k5)
    for i in range(n):
        yt[i] = y[i] + h * (_D_A61 * k1[i] + _D_A62 * k2[i] + _D_A63 * k3[i]
                            + _D_A64 * k4[i] + _D_A65 * k5[i])
    _RHS(t + h, yt, p, k6)
    for i in range(n):
        yt[i] = y[i] + h * (_D_B1 * k1[i] + _D_B3 * k3[i] + _D_B4 * k4[i] + _D_B5 * k5[i]
                            + _D_B6 * k6[i])
    _RHS(t + h, yt, p, k7)
    for i in range(n):
        ev[i] = (_D_E1 * k1[i] + _D_E3 * k3[i] + _D_E4 * k4[i] + _D_E5 * k5[i]
                 + _D_E6 * k6[i] + _D_E7 * k7[i])


# ----------------------------------------------------------------------------------------
# The adaptive step loop, once for every method and output mode. The method (_DP5) and the
# mode (_DENSE) are compile-time globals bound by make_integrator, like _FIXED_STEP: the
# branches not taken compile away, and each integrator runs one loop with its method's
# attempt and its mode's bookkeeping inline.
# ----------------------------------------------------------------------------------------


def _solve_one(y: np.ndarray, p: np.ndarray, t0: float, t1: float, t_stop: float,
               h_in: float, rtol: float, atol: np.ndarray, max_steps: int, w: np.ndarray,
               jm: np.ndarray, em: np.ndarray, piv: np.ndarray, mem: np.ndarray,
               tm: np.ndarray) -> tuple[int, float, int]:
    """Advance one patient; returns (status, h_next, nsteps).

    Interval mode: integrate from t0 to t1, the last step clipped to land on t1 (``t_stop``,
    ``mem`` and ``tm`` are not used). Continuous-output mode (``_DENSE``, RODAS4 only):
    advance to ``t1`` without stopping there. The patient keeps its own last accepted step
    in ``mem``/``tm``; steps run freely (only ``t_stop`` clips them) and ``y`` receives the
    continuous output at ``t1``. The next call continues from the patient's own point
    unless the caller changed ``y`` between the calls (a jump: dose, drug, stochastic
    redraw) or the interval does not follow on, in which case the solver restarts from
    ``(t0, y)``.
    """
    n = _N
    f0 = w[_W_F0]  # dense: persisted in mem[_M_F1] between calls
    ft = w[_W_FT]
    yt = w[_W_YT]
    fx = w[_W_FX]
    ev = w[_ERR_ROW]  # the attempt's error vector
    fs = w[_W_K + 6]  # DP5's last stage (FSAL)
    expo = _EXPO
    yk = mem[_M_Y1]
    skip = mem[_M_SKIP] if _DENSE else ev  # (interval mode: never read)
    a_in = w[_W_AIN]
    if _DENSE:
        for i in range(_NACC, _NACC_END):
            a_in[i] = y[i]
        cont = (tm[_T_VALID] == 1.0 and tm[_T_LAST] == t0
                and tm[_T_T0] <= t0 <= tm[_T_T1])
        if cont:
            out = mem[_M_OUT]
            for i in range(_NACC):
                if not y[i] == out[i]:
                    cont = False
                    break
            for i in range(_NACC_END, n):
                if not y[i] == out[i]:
                    cont = False
                    break
        h = h_in
        if cont:
            for i in range(n):
                f0[i] = mem[_M_F1, i]
        else:
            tm[_T_VALID] = 0.0
            for i in range(n):
                yk[i] = y[i] if (i < _NACC or i >= _NACC_END) else 0.0
            tm[_T_T0] = t0
            tm[_T_T1] = t0
            _RHS(t0, yk, p, f0)
            if not _all_finite(f0):
                return STATUS_NONFINITE, h_in, 0
            if not h > 0.0:
                h = _initial_step(yk, p, t0, t1, f0, rtol, atol, _START_ORDER, w[_W_YS],
                                  w[_START_ROW])
        if tm[_T_T1] >= t1:
            _interp_out(y, mem, tm, t1, a_in)
            tm[_T_VALID] = 1.0
            return STATUS_OK, h, 0
        tm[_T_VALID] = 0.0
        yw = yk  # the solver's own state
        t = tm[_T_T1]
        t_end = t_stop
    else:
        _RHS(t0, y, p, f0)
        if not _all_finite(f0):
            return STATUS_NONFINITE, h_in, 0
        span = t1 - t0
        if _FIXED_STEP:
            nsub = max(1, int(round(span / h_in)))
            h = span / nsub
        elif h_in > 0.0:
            h = min(h_in, span)
        else:
            h = _initial_step(y, p, t0, t1, f0, rtol, atol, _START_ORDER, w[_W_YS],
                              w[_START_ROW])
        yw = y
        t = t0
        t_end = t1
    steps = 0
    need_jac = True
    last_rejected = False
    nonfinite_fail = False
    h_keep = h
    st = STATUS_OK
    while True:
        hmin = 16.0 * _EPS * max(abs(t), abs(t_end))
        if steps >= max_steps:
            st = STATUS_MAX_STEPS
            break
        # clip to land exactly on t_end
        last = False
        h_unclipped = h
        if t + h >= t_end - 0.01 * h:
            h = t_end - t
            last = True
        if h < hmin:
            st = STATUS_NONFINITE if nonfinite_fail else STATUS_STEP_TOO_SMALL
            h = h_keep
            break
        if need_jac and not _DP5:
            if _USE_JAC:
                _JAC(t, yw, p, jm)
            else:
                _fd_jacobian(t, yw, p, f0, ft, atol, jm, w[_W_DV], w[_W_YSAVE])
            if not _AUTONOMOUS:
                dt = _SQRT_EPS * max(1e-5, abs(t))
                _RHS(t + dt, yw, p, ft)
                for i in range(n):
                    fx[i] = (ft[i] - f0[i]) / dt
            need_jac = False
        steps += 1
        if _DP5:
            _dp5_attempt(t, h, yw, p, w)
            err = _err_norm(ev, yw, yt, rtol, atol, h, skip)
            finite = math.isfinite(err) and _all_finite(fs)
        else:
            if _rodas4_attempt(t, h, yw, p, jm, em, piv, w, not _AUTONOMOUS):
                err = _err_norm(ev, yw, yt, rtol, atol, 1.0, skip)
            else:
                err = math.inf
            finite = math.isfinite(err)
        if _FIXED_STEP:
            if not finite or (not _DP5 and not _all_finite(yt)):
                st = STATUS_NONFINITE
                break
            err = 0.0
        if finite and err <= 1.0 and _NONNEG and not _nonneg_fix(yt, atol):
            # accepted by the error test but a population went clearly negative
            h = 0.5 * h
            last_rejected = True
            nonfinite_fail = False
            continue
        if finite and err <= 1.0:
            if _DENSE:  # keep the step's start and its continuous-output coefficients
                k1 = w[_W_K]
                k2 = w[_W_K + 1]
                k3 = w[_W_K + 2]
                k4 = w[_W_K + 3]
                k5 = w[_W_K + 4]
                y0 = mem[_M_Y0]
                c2 = mem[_M_C2]
                c3 = mem[_M_C3]
                for i in range(n):
                    c2[i] = (_R_D21 * k1[i] + _R_D22 * k2[i] + _R_D23 * k3[i]
                             + _R_D24 * k4[i] + _R_D25 * k5[i])
                    c3[i] = (_R_D31 * k1[i] + _R_D32 * k2[i] + _R_D33 * k3[i]
                             + _R_D34 * k4[i] + _R_D35 * k5[i])
                    y0[i] = yw[i]
            for i in range(n):
                yw[i] = yt[i]
            t_prev = t
            t = t_end if last else t + h
            h_new = h * _grow_factor(err, expo, last_rejected)
            if not last:
                h = h_new
            elif not _FIXED_STEP:
                # the clipped step says nothing against the step the controller had chosen
                h = max(h_new, h_unclipped)
            h_keep = h
            last_rejected = False
            nonfinite_fail = False
            if last and not _DENSE:
                break
            # f at the new point
            if _DP5 and not _NONNEG:
                for i in range(n):
                    f0[i] = fs[i]
                f_ok = True
            else:
                # (DP5 with nonneg: the state may have been modified, the FSAL value is
                # stale; its last stage was checked above)
                _RHS(t, yw, p, f0)
                f_ok = True if _DP5 else _all_finite(f0)
            if _DENSE:
                for i in range(n):
                    mem[_M_F1, i] = f0[i]
                tm[_T_T0] = t_prev
                tm[_T_T1] = t
                if t >= t1 or last:
                    # a patient whose vector field broke down beyond t1 restarts next time
                    tm[_T_VALID] = 1.0 if f_ok else 0.0
                    break
            if not f_ok:
                st = STATUS_NONFINITE
                break
            need_jac = True
        else:
            h = h * _shrink_factor(err, finite, expo)
            nonfinite_fail = not finite
            last_rejected = True
    if _DENSE:
        if st == STATUS_OK:
            _interp_out(y, mem, tm, t1, a_in)
        else:
            for i in range(_NACC):
                y[i] = yk[i]
            for i in range(_NACC_END, n):
                y[i] = yk[i]
    return st, h, steps


# ----------------------------------------------------------------------------------------
# Cohort driver. The kernel functions above and the driver below are plain Python functions
# that are never compiled as they stand: make_integrator clones all of them with one shared
# globals dict holding the model (_RHS, _JAC), the state count _N and the options, and jits
# the clones. The model is thereby called directly (inlinable, no dynamic globals), every
# loop over states has a compile-time trip count, and numba can cache the driver on disk.
# The module-level values below only document the names and types the clones receive.
# ----------------------------------------------------------------------------------------

_RHS: Any = _no_jac
_JAC: Any = _no_jac
_N: int = 1
_NJAC: int = 1
_NACC: int = 1
_NACC_END: int = 1
_GROUPED: bool = False
_SPARSE_LU: bool = False
_SP_ORDER: np.ndarray = np.zeros(1, dtype=np.int64)
_SP_LPTR: np.ndarray = np.zeros(2, dtype=np.int64)
_SP_LROWS: np.ndarray = np.zeros(1, dtype=np.int64)
_SP_UPTR: np.ndarray = np.zeros(2, dtype=np.int64)
_SP_UCOLS: np.ndarray = np.zeros(1, dtype=np.int64)
_SP_CPTR: np.ndarray = np.zeros(2, dtype=np.int64)
_SP_CROWS: np.ndarray = np.zeros(1, dtype=np.int64)
_GPTR: np.ndarray = np.zeros(2, dtype=np.int64)
_GCOLS: np.ndarray = np.zeros(1, dtype=np.int64)
_JCOLPTR: np.ndarray = np.zeros(2, dtype=np.int64)
_JROWS: np.ndarray = np.zeros(1, dtype=np.int64)
_USE_JAC: bool = False
_AUTONOMOUS: bool = False
_NONNEG: bool = False
_FIXED_STEP: bool = False
_SAFETY: float = 0.9
_FAC_MIN: float = 0.2
_FAC_MAX: float = 6.0
_DP5: bool = False  # method: DP5 (else RODAS4)
_DENSE: bool = False  # continuous output (RODAS4 only)
_EXPO: float = 0.25  # controller exponent 1/order
_START_ORDER: int = 3  # order passed to the starting-step heuristic
_START_ROW: int = _W_FT  # scratch row of w for the starting-step heuristic
_ERR_ROW: int = _W_K + 5  # row of w receiving the attempt's error vector


def _driver_template(y: np.ndarray, p: np.ndarray, t0: float, t1: float, h: np.ndarray,
                     rtol: float, atol: np.ndarray, max_steps: int, status: np.ndarray,
                     nsteps: np.ndarray) -> None:
    n_pat = y.shape[0]
    n = _N
    nblk = (n_pat + _BLOCK - 1) // _BLOCK
    for b in prange(nblk):
        w = np.zeros((_NW, n))  # zeros: the df/dt row is read (times 0) when autonomous
        jm = np.zeros((n, n))  # entries outside a sparsity pattern are never written
        em = np.empty((n, n))
        piv = np.empty(n + 1, dtype=np.int64)  # last entry: which factorisation
        lo = b * _BLOCK
        hi = min(n_pat, lo + _BLOCK)
        for i in range(lo, hi):
            if status[i] != 0:
                continue
            if t1 <= t0:
                continue
            # the interval solver keeps no memory: w and its row _W_AIN stand in for it
            st, h_next, ns = _solve_one(
                y[i], p[i], t0, t1, t1, h[i], rtol, atol, max_steps, w, jm, em, piv, w,
                w[_W_AIN])
            status[i] = st
            h[i] = h_next
            nsteps[i] += ns


def _dense_driver_template(y: np.ndarray, p: np.ndarray, t0: float, t1: float,
                           t_stop: np.ndarray, h: np.ndarray, rtol: float, atol: np.ndarray,
                           max_steps: int, status: np.ndarray, nsteps: np.ndarray,
                           mem: np.ndarray, tmem: np.ndarray) -> None:
    n_pat = y.shape[0]
    n = _N
    nblk = (n_pat + _BLOCK - 1) // _BLOCK
    for b in prange(nblk):
        w = np.zeros((_NW, n))
        jm = np.zeros((n, n))
        em = np.empty((n, n))
        piv = np.empty(n + 1, dtype=np.int64)
        lo = b * _BLOCK
        hi = min(n_pat, lo + _BLOCK)
        for i in range(lo, hi):
            if status[i] != 0:
                continue
            if t1 <= t0:
                continue
            st, h_next, ns = _solve_one(
                y[i], p[i], t0, t1, max(t1, t_stop[i]), h[i], rtol, atol, max_steps, w, jm,
                em, piv, mem[i], tmem[i])
            status[i] = st
            h[i] = h_next
            nsteps[i] += ns


#: Per method: (_START_ORDER, _START_ROW, _ERR_ROW).
_METHOD_ROWS: dict[str, tuple[int, int, int]] = {
    "rodas4": (3, _W_FT, _W_K + 5),
    "dp5": (4, _W_K, _W_FT),
}
_KERNELS: tuple[Callable[..., Any], ...] = (
    _lu_factor, _lu_solve, _splu_factor, _splu_solve, _factor, _solve, _err_norm, _all_finite,
    _initial_step, _nonneg_fix, _grow_factor, _shrink_factor,
    _rodas4_attempt, _fd_jacobian, _dp5_attempt, _interp_out, _solve_one)
_JIT_FLAGS: dict[str, Any] = {"nogil": True, "error_model": "numpy"}
_INTEGRATORS: dict[tuple[Any, ...], Integrator] = {}


def _clone(fn: Any, glb: dict[str, Any], name: str) -> Any:
    """Copy of a plain function bound to the globals ``glb`` under a new (qualified) name."""
    out = types.FunctionType(fn.__code__, glb, name, fn.__defaults__, fn.__closure__)
    out.__qualname__ = name
    out.__doc__ = fn.__doc__
    return out


def _source_digest(fn: Any) -> str | None:
    """Hash of the sources a jitted function may inline, or None if they cannot be read.

    Covers every ``.py`` file in the directory (and its subdirectories) of the file that
    defines ``fn`` when that directory is a package (has ``__init__.py``) — a model's
    right-hand side is usually assembled from helpers in sibling modules of its package —
    else the defining file alone (a generated module in a shared cache directory: its
    siblings are other, unrelated models, and hashing them made every new model anywhere on
    the machine invalidate every cached solver), plus the function's qualified name and path.
    """
    py = getattr(fn, "py_func", fn)
    try:
        path = Path(inspect.getfile(py)).resolve()
        if (path.parent / "__init__.py").exists():
            files = sorted(path.parent.rglob("*.py"))
        else:
            files = [path]
        h = hashlib.sha256()
        for f in files:
            h.update(str(f.relative_to(path.parent)).encode())
            h.update(f.read_bytes())
    except (OSError, TypeError, ValueError):
        return None
    h.update(f"{py.__module__}:{py.__qualname__}:{path}".encode())
    return h.hexdigest()


def model_digest(fn: Any) -> str | None:
    """Public form of the source hash used to key on-disk caches of a model (or None)."""
    return _source_digest(fn)


def cache_dir() -> Path:
    """Directory for cached engine artefacts (sparsity patterns): ``NUMBA_CACHE_DIR`` when
    set, else ``__pycache__`` beside this module if writable, else ``~/.cache/cartsim``."""
    env = numba.config.CACHE_DIR
    if env:
        d = Path(env) / "cartsim"
    else:
        d = Path(__file__).resolve().parent / "__pycache__"
        try:
            d.mkdir(exist_ok=True)
            probe = d / f".probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError:
            d = Path.home() / ".cache" / "cartsim"
    d.mkdir(parents=True, exist_ok=True)
    return d


def cached_array(name: str, digest: str | None, build: Callable[[], np.ndarray]) -> np.ndarray:
    """``build()`` once per ``digest`` and machine: the result is stored as ``.npy`` in
    :func:`cache_dir` and read back by later processes (no digest: always built)."""
    if digest is None:
        return build()
    try:
        path = cache_dir() / f"{name}-{digest[:24]}.npy"
        if path.exists():
            return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        path = None  # type: ignore[assignment]
    arr = build()
    if path is not None:
        def write(tmp: Path) -> None:
            with tmp.open("wb") as fh:
                np.save(fh, arr, allow_pickle=False)

        try:
            atomic_write(path, write)
        except OSError:
            pass  # a read-only cache only costs the rebuild next time
    return arr


def make_integrator(
    rhs: Any,
    n_states: int,
    method: str = "rodas4",
    jac: Any = None,
    *,
    nonneg: bool = False,
    autonomous: bool = False,
    fixed_step: bool = False,
    options: SolverOptions | None = None,
    cache: bool = True,
    n_jac: int | None = None,
    jac_sparsity: np.ndarray | None = None,
    dense: bool = False,
    interval_integrals: int | None = None,
    interval_integrals_end: int | None = None,
) -> Any:
    """Build (or fetch from the in-process cache) the compiled cohort integrator for a model.

    Args:
        rhs: numba ``@njit`` function ``rhs(t, y, p, dy) -> None`` writing dy/dt into ``dy``.
            ``y``, ``p`` and ``dy`` are 1-D float64 arrays of one patient. It must not keep
            state between calls and must not allocate if speed matters. Define it at module
            level in a real file so the on-disk cache can key on it.
        n_states: number of states S.
        method: ``"rodas4"`` (default, L-stable Rosenbrock, order 4) or ``"dp5"`` (explicit
            Dormand-Prince 5(4), opt-in for non-stiff models).
        jac: optional ``@njit`` ``jac(t, y, p, J) -> None`` writing the S x S Jacobian
            dF/dy. Without it RODAS4 uses forward differences (S extra rhs calls per step).
            Ignored by dp5.
        nonneg: after each step that passes the error test, components in (-atol_i, 0) are
            set to 0 and the step is rejected (step halved) if any component is
            <= -atol_i. Off by default: the solver never modifies the state silently.
        autonomous: declare that ``rhs`` does not depend on ``t``; RODAS4 then skips the
            finite-difference df/dt (one rhs call per step).
        fixed_step: no error control: every call takes ``round((t1-t0)/h)`` equal steps
            with ``h`` the per-patient input step. For convergence studies.
        options: controller constants (safety, fac_min, fac_max); compile-time.
        cache: cache the compiled code on disk (numba ``cache=True``) keyed on the source
            file of ``rhs``/``jac`` and every option.
        n_jac: declare that only the first ``n_jac`` states feed back into ``rhs`` (the rest
            are pure outputs, e.g. integrals of rates); the finite-difference Jacobian then
            perturbs only those columns. Default: all states.
        jac_sparsity: optional boolean (S, S) pattern of dF_i/dy_j that may be non-zero
            (see :func:`detect_sparsity`). Columns that share no row are then perturbed
            together (greedy colouring), so the Jacobian costs one rhs call per colour
            instead of per state. An entry missing from the pattern makes the Jacobian
            wrong; the tests compare both Jacobians for the models shipped.

    Returns:
        ``integrate(y, p, t0, t1, h, rtol, atol, max_steps, status, nsteps) -> None``:

        * ``y`` float64[N, S] (C order): advanced in place from ``t0`` to ``t1``. For a
          patient that fails, ``y`` holds its last accepted state (at an unknown t < t1).
        * ``p`` float64[N, P]: per-patient parameters, read only.
        * ``t0``, ``t1``: floats, the same interval for every patient. The last step is
          clipped to land exactly on ``t1``.
        * ``h`` float64[N]: in: step size to try first (0 = choose with the starting-step
          heuristic); out: the step size to continue with. This is the controller's
          proposal after the last accepted step, or the step tried before it was clipped
          to ``t1`` if larger. Pass it back unchanged on the next call.
        * ``rtol``: float; ``atol``: float64[S] per-state absolute tolerance. Error norm:
          ``sqrt(mean((err/(atol + rtol*max(|y0|,|y1|)))**2)) <= 1``.
        * ``max_steps``: int, per call per patient (accepted + rejected).
        * ``status`` int32[N]: per-patient status. Patients with ``status != 0`` on entry
          are skipped. Codes: :data:`STATUS_OK`, :data:`STATUS_MAX_STEPS`,
          :data:`STATUS_STEP_TOO_SMALL`, :data:`STATUS_NONFINITE`.
        * ``nsteps`` int64[N]: accepted + rejected steps are added to it.

    With ``dense=True`` (RODAS4 only) the solver does not stop at ``t1``: each patient
    steps freely and ``y`` receives its continuous output at ``t1`` (order 3, the method's
    own interpolant); the next call continues from the patient's own last step, so a
    cohort advanced day by day takes the steps of one free run. A patient restarts from
    ``(t0, y)`` only when the caller changed ``y`` between calls (a jump) or the call does
    not start where the last one ended. The signature gains three arguments:
    ``integrate(y, p, t0, t1, t_stop, h, rtol, atol, max_steps, status, nsteps, mem,
    tmem)``; no step of patient i goes beyond ``t_stop[i]`` (float64[N]: the end of the
    simulation, or ``t1`` for a patient the caller expects to change at ``t1``, so that
    its last step lands there instead of being thrown away), and ``mem``,
    ``tmem`` hold each patient's last step (allocate with :func:`dense_memory`, zeros
    meaning "start afresh"). States from ``interval_integrals`` up to (not including)
    ``interval_integrals_end`` (default: the end of the state vector) are integrals over the call's
    interval: on return they hold their input value plus the integral from ``t0`` to
    ``t1``, and a change to them is not a jump (default: no such states). Where both ends of
    the step are non-negative, an output below zero is returned as zero (the cubic can dip
    below zero between two accepted states of a decaying population). ``p`` must not change
    between calls (only ``y`` changes are detected). :func:`set_error_mask` leaves states the
    caller will overwrite out of the error test.
    """
    if method not in _METHOD_ROWS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(_METHOD_ROWS)}")
    if n_states < 1:
        raise ValueError("n_states must be >= 1")
    if not isinstance(rhs, numba.core.registry.CPUDispatcher):
        raise TypeError("rhs must be a numba @njit function rhs(t, y, p, dy) -> None")
    if jac is not None and not isinstance(jac, numba.core.registry.CPUDispatcher):
        raise TypeError("jac must be a numba @njit function jac(t, y, p, J) -> None")
    nj = int(n_states) if n_jac is None else int(n_jac)
    if not 1 <= nj <= n_states:
        raise ValueError(f"n_jac must be in [1, n_states={n_states}], got {n_jac}")
    groups = None
    sp_key = None
    use_jac = jac is not None and method == "rodas4"
    if jac_sparsity is not None and (jac is None or use_jac):
        sp = np.asarray(jac_sparsity, dtype=bool)
        if sp.shape != (n_states, n_states):
            raise ValueError(f"jac_sparsity must have shape ({n_states}, {n_states})")
        sp = sp.copy()
        sp[:, nj:] = False
        # with an analytic jac the pattern only plans the sparse LU (it must cover every
        # entry jac writes in the first n_jac columns); without, it also colours the columns
        groups = column_groups(sp) if jac is None else None
        sp_key = hashlib.sha256(np.packbits(sp).tobytes()).hexdigest()
    opts = options if options is not None else SolverOptions()
    nacc = int(n_states) if interval_integrals is None else int(interval_integrals)
    if not 0 <= nacc <= n_states:
        raise ValueError(f"interval_integrals must be in [0, {n_states}], got {nacc}")
    nacc_end = int(n_states) if interval_integrals_end is None else int(interval_integrals_end)
    if not nacc <= nacc_end <= n_states:
        raise ValueError(f"interval_integrals_end must be in [{nacc}, {n_states}], "
                         f"got {nacc_end}")
    if dense and (method != "rodas4" or nonneg or fixed_step):
        raise ValueError("dense=True supports method='rodas4' without nonneg or fixed_step")
    key = (rhs, jac if use_jac else None, int(n_states), method, bool(nonneg),
           bool(autonomous), bool(fixed_step), opts.safety, opts.fac_min, opts.fac_max,
           bool(cache), nj, sp_key, bool(dense), nacc, nacc_end)
    found = _INTEGRATORS.get(key)
    if found is not None:
        return found

    digest = _source_digest(rhs) if cache else None
    if cache and use_jac:
        jd = _source_digest(jac)
        digest = None if (digest is None or jd is None) else digest + jd
    tag = hashlib.sha256(repr((digest, key[2:])).encode()).hexdigest()[:16]

    glb = dict(_driver_template.__globals__)
    glb.update(
        _RHS=rhs,
        _JAC=jac if use_jac else _no_jac,
        _N=int(n_states),
        _NJAC=nj,
        _NACC=nacc,
        _NACC_END=nacc_end,
        _GROUPED=groups is not None,
        _USE_JAC=use_jac,
        _AUTONOMOUS=bool(autonomous),
        _NONNEG=bool(nonneg),
        _FIXED_STEP=bool(fixed_step),
        _SAFETY=float(opts.safety),
        _FAC_MIN=float(opts.fac_min),
        _FAC_MAX=float(opts.fac_max),
        _DP5=method == "dp5",
        _DENSE=bool(dense),
        _EXPO=1.0 / METHODS[method],
        _START_ORDER=_METHOD_ROWS[method][0],
        _START_ROW=_METHOD_ROWS[method][1],
        _ERR_ROW=_METHOD_ROWS[method][2],
    )
    if groups is not None:
        gptr, gcols, colptr, rows = groups
        glb.update(_GPTR=gptr, _GCOLS=gcols, _JCOLPTR=colptr, _JROWS=rows)
    if sp_key is not None:
        plan = lu_plan(sp[:nj, :nj])
        glb.update(_SPARSE_LU=True, **{f"_SP_{k.upper()}": v for k, v in plan.items()})
    for kern in _KERNELS:
        glb[kern.__name__] = njit(**_JIT_FLAGS)(_clone(kern, glb, f"{kern.__name__}_{tag}"))
    if dense:
        fn = _clone(_dense_driver_template, glb, f"integrate_dense_{method}_{tag}")
    else:
        fn = _clone(_driver_template, glb, f"integrate_{method}_{tag}")
    fn.__doc__ = make_integrator.__doc__
    use_cache = bool(cache) and digest is not None
    compiled = njit(parallel=True, cache=use_cache, **_JIT_FLAGS)(fn)
    _INTEGRATORS[key] = compiled
    return compiled


def dense_memory(n_patients: int, n_states: int) -> tuple[np.ndarray, np.ndarray]:
    """Zeroed per-patient memory ``(mem, tmem)`` for a ``dense=True`` integrator."""
    return np.zeros((n_patients, _NM, n_states)), np.zeros((n_patients, _NT))


def set_error_mask(mem: np.ndarray, overwritten: np.ndarray | None) -> None:
    """Leave the states ``overwritten[i, j]`` (bool, patients × states) out of the error
    control of a ``dense=True`` integrator's next calls (``mem`` from :func:`dense_memory`);
    ``None`` puts every state back.

    For states whose value at the end of the call the caller discards and replaces (a
    stochastic layer redrawing small clones): their error would only shrink the steps of the
    states that are kept. They still enter the steps and the Jacobian as before, so what
    they feed into other states is integrated as accurately as those states' own error
    test demands. The mask stays until it is set again.
    """
    if overwritten is None:
        mem[:, _M_SKIP, :] = 0.0
    else:
        mem[:, _M_SKIP, :] = overwritten


def column_groups(
    pattern: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Greedy colouring of the columns of a boolean Jacobian pattern.

    Returns ``(gptr, gcols, colptr, rows)``: group g holds columns ``gcols[gptr[g]:gptr[g+1]]``
    (no two share a non-zero row); column j's non-zero rows are ``rows[colptr[j]:colptr[j+1]]``.
    Columns without any non-zero are left out of every group.
    """
    sp = np.asarray(pattern, dtype=bool)
    n = sp.shape[1]
    colour = np.full(n, -1, dtype=np.int64)
    taken: list[np.ndarray] = []  # rows covered by each colour
    order = np.argsort(-sp.sum(axis=0), kind="stable")  # densest columns first
    for j in order:
        if not sp[:, j].any():
            continue
        for c, rows_c in enumerate(taken):
            if not (rows_c & sp[:, j]).any():
                colour[j] = c
                rows_c |= sp[:, j]
                break
        else:
            colour[j] = len(taken)
            taken.append(sp[:, j].copy())
    gcols = np.concatenate(
        [np.flatnonzero(colour == c) for c in range(len(taken))] or [np.zeros(0, np.int64)]
    ).astype(np.int64)
    gptr = np.zeros(len(taken) + 1, dtype=np.int64)
    gptr[1:] = np.cumsum([np.count_nonzero(colour == c) for c in range(len(taken))])
    colptr = np.zeros(n + 1, dtype=np.int64)
    colptr[1:] = np.cumsum(sp.sum(axis=0))
    rows = np.concatenate([np.flatnonzero(sp[:, j]) for j in range(n)]).astype(np.int64)
    if rows.size == 0:
        rows = np.zeros(1, dtype=np.int64)
    return gptr, gcols, colptr, rows


def detect_sparsity(
    rhs: Any, y_samples: np.ndarray, p_samples: np.ndarray, rel: float = 1e-6
) -> np.ndarray:
    """Boolean (S, S) pattern of the entries of dF/dy that are non-zero at any sample.

    Each column is perturbed at every (y, p) sample pair (rows of ``y_samples`` and
    ``p_samples``); an entry enters the pattern when F_i changes at all. Use samples that
    visit every regime of the model (zeros, large and small values, all parameter
    switches on), since an entry that is zero at every sample is assumed zero everywhere.
    """
    ys = np.atleast_2d(np.asarray(y_samples, dtype=np.float64))
    ps = np.atleast_2d(np.asarray(p_samples, dtype=np.float64))
    if ys.shape[0] != ps.shape[0]:
        raise ValueError("y_samples and p_samples need the same number of rows")
    n = ys.shape[1]
    pat = np.zeros((n, n), dtype=bool)
    f0 = np.empty(n)
    f1 = np.empty(n)
    for k in range(ys.shape[0]):
        y = ys[k].copy()
        rhs(0.0, y, ps[k], f0)
        for j in range(n):
            yj = y[j]
            y[j] = yj + rel * max(abs(yj), 1e-3)
            rhs(0.0, y, ps[k], f1)
            y[j] = yj
            pat[:, j] |= f1 != f0
    return pat


def lu_plan(pattern: np.ndarray) -> dict[str, np.ndarray]:
    """Elimination order and fill pattern for a sparse LU of ``c I - J`` (J with ``pattern``).

    Minimum-degree order on the symmetrised pattern (diagonal included), then symbolic
    elimination. Returns, in original indices: ``order``; per step k the rows below the
    pivot (``lptr``/``lrows``), the columns right of it (``uptr``/``ucols``) and the rows
    above it in U (``cptr``/``crows``, for back substitution).
    """
    a = np.asarray(pattern, dtype=bool).copy()
    m = a.shape[0]
    a |= np.eye(m, dtype=bool)
    sym = a | a.T
    remaining = list(range(m))
    order: list[int] = []
    while remaining:
        deg = [int(sym[v, remaining].sum()) for v in remaining]
        v = remaining[int(np.argmin(deg))]
        nb = [u for u in remaining if u != v and sym[v, u]]
        for u in nb:
            sym[u, nb] = True
        order.append(v)
        remaining.remove(v)
    perm = np.array(order, dtype=np.int64)
    mp = a[np.ix_(perm, perm)]
    for k in range(m):  # symbolic elimination with fill
        rows = np.flatnonzero(mp[k + 1:, k]) + k + 1
        cols = np.flatnonzero(mp[k, k + 1:]) + k + 1
        if rows.size and cols.size:
            mp[np.ix_(rows, cols)] = True
    lrows, ucols, crows = [], [], []
    lptr, uptr, cptr = [0], [0], [0]
    for k in range(m):
        lr = perm[np.flatnonzero(mp[k + 1:, k]) + k + 1]
        uc = perm[np.flatnonzero(mp[k, k + 1:]) + k + 1]
        cr = perm[np.flatnonzero(mp[:k, k])]
        lrows += list(lr)
        ucols += list(uc)
        crows += list(cr)
        lptr.append(len(lrows))
        uptr.append(len(ucols))
        cptr.append(len(crows))

    def arr(x: list[int]) -> np.ndarray:
        return np.array(x if x else [0], dtype=np.int64)

    return {"order": perm, "lptr": arr(lptr), "lrows": arr(lrows), "uptr": arr(uptr),
            "ucols": arr(ucols), "cptr": arr(cptr), "crows": arr(crows)}
