"""Tests of the compiled cohort ODE engine (cartsim.engine.solver)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.linalg
from cart_model import B0, C0, N_STATES, cart_rhs, sample_cohort
from scipy.integrate import solve_ivp
from solver_models import (
    A_STIFF,
    forced_jac,
    forced_rhs,
    linear_jac,
    linear_rhs,
    nan_rhs,
    ramp_rhs,
    robertson_rhs,
)

from cartsim.engine.solver import (
    STATUS_MAX_STEPS,
    STATUS_NONFINITE,
    STATUS_OK,
    STATUS_STEP_TOO_SMALL,
    SolverOptions,
    make_integrator,
)


def run_days(integ, y0, p, n_days, rtol=1e-6, atol=1e-4, max_steps=100_000, dt=1.0):
    """Call ``integ`` once per interval [d*dt, (d+1)*dt]; return trajectory, status, nsteps, h."""
    n, s = y0.shape
    y = np.ascontiguousarray(y0, dtype=np.float64).copy()
    p = np.ascontiguousarray(p, dtype=np.float64)
    atol_v = np.broadcast_to(np.asarray(atol, dtype=np.float64), (s,)).copy()
    h = np.zeros(n)
    status = np.zeros(n, dtype=np.int32)
    nsteps = np.zeros(n, dtype=np.int64)
    traj = np.empty((n, n_days + 1, s))
    traj[:, 0] = y
    for d in range(n_days):
        integ(y, p, d * dt, (d + 1) * dt, h, rtol, atol_v, max_steps, status, nsteps)
        traj[:, d + 1] = y
    return traj, status, nsteps, h


def cart_reference(y0, p, n_days):
    """SciPy Radau (rtol 1e-11, atol 1e-12) at the daily points."""

    def f(t, yy):
        out = np.empty(N_STATES)
        cart_rhs(t, yy, p, out)
        return out

    r = solve_ivp(f, (0.0, float(n_days)), y0, method="Radau", rtol=1e-11, atol=1e-12,
                  t_eval=np.arange(n_days + 1, dtype=float))
    assert r.success
    return r.y.T


# ---------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("use_jac", [False, True])
def test_stiff_linear_matches_matrix_exponential(use_jac):
    integ = make_integrator(linear_rhs, 3, "rodas4", jac=linear_jac if use_jac else None)
    y0 = np.array([[1.0, 2.0, -1.0]])
    p = A_STIFF.reshape(1, 9)
    traj, status, nsteps, _ = run_days(integ, y0, p, 10, rtol=1e-6, atol=1e-10, dt=0.5)
    assert status[0] == STATUS_OK
    for d in range(11):
        exact = scipy.linalg.expm(A_STIFF * 0.5 * d) @ y0[0]
        assert np.allclose(traj[0, d], exact, rtol=1e-5, atol=1e-9)
    # stiff eigenvalue -1e4 must not force tiny steps: ~ tens of steps per unit time
    assert nsteps[0] < 400


@pytest.mark.slow  # compiles the solver for its own right-hand side (~7 s cold; CI budget)
def test_robertson_matches_radau():
    integ = make_integrator(robertson_rhs, 3, "rodas4")
    y0 = np.array([[1.0, 0.0, 0.0]])
    p = np.array([[0.04, 3e7, 1e4]])
    atol = np.array([1e-10, 1e-14, 1e-10])
    traj, status, _, _ = run_days(integ, y0, p, 40, rtol=1e-6, atol=atol)
    assert status[0] == STATUS_OK

    def f(t, yy):
        out = np.empty(3)
        robertson_rhs(t, yy, p[0], out)
        return out

    ref = solve_ivp(f, (0.0, 40.0), y0[0], method="Radau", rtol=1e-11, atol=1e-16,
                    t_eval=np.arange(41.0)).y.T
    rel = np.abs(traj[0] - ref) / np.abs(ref).clip(1e-12)
    assert rel[1:].max() < 1e-4
    assert abs(traj[0, -1].sum() - 1.0) < 1e-9  # mass conservation


@pytest.mark.parametrize("method,tol", [
    ("rodas4", 2e-4),
    # the production solver is RODAS4; DP5 compiles its own driver (~11 s cold; CI budget)
    pytest.param("dp5", 2e-4, marks=pytest.mark.slow),
])
def test_cart_model_365_daily_calls_matches_radau(method, tol):
    y0, p = sample_cohort(3, seed=7)
    integ = make_integrator(cart_rhs, N_STATES, method)
    traj, status, _, _ = run_days(integ, y0, p, 365)
    assert np.all(status == STATUS_OK)
    for i in range(3):
        ref = cart_reference(y0[i], p[i], 365)
        rel = np.abs(traj[i] - ref) / (np.abs(ref) + 1.0)
        assert rel.max() < tol, (method, i, rel.max())
    # sanity of the biology fixture itself
    assert traj[:, 0, 5].min() == B0 and traj[:, 0, 6].min() == C0


@pytest.mark.parametrize("method,order,jac", [
    ("rodas4", 4, False),
    # each variant compiles its own driver (~5 s cold; CI budget)
    pytest.param("rodas4", 4, True, marks=pytest.mark.slow),
    pytest.param("dp5", 5, False, marks=pytest.mark.slow),
])
def test_empirical_order_fixed_step(method, order, jac):
    integ = make_integrator(forced_rhs, 2, method, jac=forced_jac if jac else None,
                            fixed_step=True)
    y0 = np.array([[1.0, 0.0]])
    p = np.array([[1.0, 0.5]])

    def f(t, yy):
        out = np.empty(2)
        forced_rhs(t, yy, p[0], out)
        return out

    ref = solve_ivp(f, (0.0, 2.0), y0[0], method="DOP853", rtol=1e-13, atol=1e-14).y[:, -1]
    errs = []
    hs = [0.2, 0.1, 0.05, 0.025] if method == "rodas4" else [0.1, 0.05, 0.025, 0.0125]
    for hh in hs:
        y = y0.copy()
        h = np.array([hh])
        st = np.zeros(1, np.int32)
        ns = np.zeros(1, np.int64)
        integ(y, p, 0.0, 2.0, h, 1e-6, np.full(2, 1e-6), 10_000, st, ns)
        assert st[0] == STATUS_OK and ns[0] == round(2.0 / hh)
        errs.append(np.abs(y[0] - ref).max())
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    # errors span ~1e-5 .. 1e-10: below that round-off (and the finite-difference Jacobian)
    # show; DP5 approaches its order from above (pre-asymptotic), so the finest rate counts
    assert abs(rates[-1] - order) < 0.5, rates
    assert np.all(np.abs(rates - order) < 0.75), rates


def test_tolerance_sweep_reduces_error():
    y0, p = sample_cohort(2, seed=3)
    integ = make_integrator(cart_rhs, N_STATES, "rodas4")
    ref = np.stack([cart_reference(y0[i], p[i], 30)[-1] for i in range(2)])
    errs = []
    for rtol in (1e-4, 1e-6, 1e-8):
        traj, st, _, _ = run_days(integ, y0, p, 30, rtol=rtol, atol=1e-6)
        assert np.all(st == STATUS_OK)
        errs.append((np.abs(traj[:, -1] - ref) / (np.abs(ref) + 1.0)).max())
    assert errs[0] > errs[1] > errs[2]


# ------------------------------------------------------------------ cohort semantics


@pytest.mark.parametrize("method", ["rodas4", "dp5"])
def test_chunk_invariance_bit_for_bit(method):
    y0, p = sample_cohort(40, seed=11)
    integ = make_integrator(cart_rhs, N_STATES, method)
    full, st_full, ns_full, h_full = run_days(integ, y0, p, 60)
    idx = np.array([0, 5, 6, 17, 39])
    sub, st_sub, ns_sub, h_sub = run_days(integ, y0[idx], p[idx], 60)
    assert np.array_equal(full[idx], sub)
    assert np.array_equal(ns_full[idx], ns_sub) and np.array_equal(h_full[idx], h_sub)
    # thread count must not matter either
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, _, _, _ = run_days(integ, y0, p, 60)
    finally:
        numba.set_num_threads(old)
    assert np.array_equal(full, one)


def test_nonfinite_patient_is_isolated():
    integ = make_integrator(nan_rhs, 2, "rodas4")
    n = 6
    y0 = np.ones((n, 2))
    p = np.column_stack([np.full(n, -1.0), np.linspace(0.1, 0.6, n)])
    p[2, 0] = 2.5  # patient 2 turns NaN at t = 2.5
    traj, status, _, _ = run_days(integ, y0, p, 5, atol=1e-10)
    assert status[2] == STATUS_NONFINITE
    ok = np.arange(n) != 2
    assert np.all(status[ok] == STATUS_OK)
    exact = np.exp(-p[ok, 1] * 5.0)
    assert np.allclose(traj[ok, -1, 0], exact, rtol=1e-5)
    # the failed patient is skipped afterwards: its state no longer changes
    assert np.array_equal(traj[2, 3], traj[2, 5])
    assert np.all(np.isfinite(traj[2]))


def test_patients_with_nonzero_status_are_skipped():
    integ = make_integrator(cart_rhs, N_STATES, "rodas4")
    y0, p = sample_cohort(4, seed=1)
    y = y0.copy()
    status = np.array([0, 7, 0, 0], dtype=np.int32)
    nsteps = np.zeros(4, np.int64)
    h = np.zeros(4)
    integ(y, p, 0.0, 1.0, h, 1e-6, np.full(N_STATES, 1e-4), 1000, status, nsteps)
    assert status.tolist() == [0, 7, 0, 0]
    assert np.array_equal(y[1], y0[1]) and nsteps[1] == 0 and h[1] == 0.0
    assert np.all(nsteps[[0, 2, 3]] > 0)


def test_max_steps_status():
    integ = make_integrator(cart_rhs, N_STATES, "rodas4")
    y0, p = sample_cohort(3, seed=1)
    _, status, nsteps, _ = run_days(integ, y0, p, 2, max_steps=2)
    assert np.all(status == STATUS_MAX_STEPS)
    assert np.all(nsteps == 2)


def test_step_size_carried_and_last_step_lands_on_t1():
    integ = make_integrator(forced_rhs, 2, "dp5")
    y = np.array([[1.0, 0.0]])
    p = np.array([[1.0, 0.5]])
    h = np.zeros(1)
    st = np.zeros(1, np.int32)
    ns = np.zeros(1, np.int64)
    atol = np.full(2, 1e-8)
    integ(y, p, 0.0, 0.3, h, 1e-8, atol, 10_000, st, ns)
    y_a = y.copy()
    assert h[0] > 0.0
    # the same interval split in two calls lands on the same point up to tolerance
    y2 = np.array([[1.0, 0.0]])
    h2 = np.zeros(1)
    integ(y2, p, 0.0, 0.1, h2, 1e-8, atol, 10_000, st, ns)
    integ(y2, p, 0.1, 0.3, h2, 1e-8, atol, 10_000, st, ns)
    assert np.allclose(y_a, y2, rtol=1e-6, atol=1e-8)


@pytest.mark.slow  # compiles the solver with the non-negativity option (~15 s cold; CI budget)
def test_nonneg_option():
    p = np.array([[1.0, 50.0]])
    y0 = np.array([[0.5, 1.0]])
    plain = make_integrator(ramp_rhs, 2, "rodas4")
    guarded = make_integrator(ramp_rhs, 2, "rodas4", nonneg=True)
    traj, st, _, _ = run_days(plain, y0, p, 1, atol=1e-8)
    assert st[0] == STATUS_OK and traj[0, -1, 0] == pytest.approx(-0.5)
    # y0 is driven through zero: with nonneg the solver refuses to step past it
    traj, st, _, _ = run_days(guarded, y0, p, 1, atol=1e-8, max_steps=3000)
    assert st[0] in (STATUS_STEP_TOO_SMALL, STATUS_MAX_STEPS)
    assert traj[0, -1, 0] >= 0.0 and traj[0, -1, 1] >= 0.0
    # a decaying population stays >= 0 and close to the exact value
    p2 = np.array([[0.0, 50.0]])
    traj, st, _, _ = run_days(guarded, y0, p2, 3, atol=1e-8)
    assert st[0] == STATUS_OK and np.all(traj[0, :, 1] >= 0.0)
    assert np.allclose(traj[0, :, 1], np.exp(-50.0 * np.arange(4)), atol=1e-7)


def test_options_and_validation():
    with pytest.raises(ValueError):
        make_integrator(cart_rhs, N_STATES, "euler")
    with pytest.raises(TypeError):
        make_integrator(lambda t, y, p, dy: None, 1)
    a = make_integrator(cart_rhs, N_STATES, "rodas4")
    assert make_integrator(cart_rhs, N_STATES, "rodas4") is a
    assert SolverOptions().atol_array(3).tolist() == [1e-4] * 3


# ------------------------------------------------------------------------- stiffness


def test_stiffness_rodas4_flat_dp5_grows():
    n = 20
    counts = {}
    for d_c in (4.0, 144.0):
        y0, p = sample_cohort(n, seed=5, d_c=d_c)
        for method in ("rodas4", "dp5"):
            integ = make_integrator(cart_rhs, N_STATES, method)
            _, st, ns, _ = run_days(integ, y0, p, 100)
            assert np.all(st == STATUS_OK)
            counts[method, d_c] = ns.mean()
    assert counts["rodas4", 144.0] < 1.3 * counts["rodas4", 4.0], counts
    assert counts["dp5", 144.0] > 5.0 * counts["dp5", 4.0], counts
