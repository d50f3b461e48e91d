"""Continuous-output (dense) integrator: patients step across call boundaries, the output
at each boundary is the method's own interpolant, and a jump made by the caller restarts
exactly that patient."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from cart_model import N_STATES, cart_rhs, sample_cohort
from scipy.linalg import expm
from solver_models import A_STIFF, forced_rhs, linear_rhs
from test_solver import cart_reference

from cartsim.engine.solver import STATUS_OK, dense_memory, make_integrator


def run_dense(integ, y0, p, n_days, rtol=1e-6, atol=1e-4, jumps=None, t_stop=None):
    """Daily calls of a dense integrator; ``jumps[d]`` = (rows, column, amount) applied
    before day d."""
    n, s = y0.shape
    y = np.ascontiguousarray(y0, dtype=np.float64).copy()
    p = np.ascontiguousarray(p, dtype=np.float64)
    atol_v = np.broadcast_to(np.asarray(atol, dtype=np.float64), (s,)).copy()
    h = np.zeros(n)
    status = np.zeros(n, dtype=np.int32)
    nsteps = np.zeros(n, dtype=np.int64)
    mem, tmem = dense_memory(n, s)
    traj = np.empty((n, n_days + 1, s))
    traj[:, 0] = y
    stop = np.full(n, float(n_days if t_stop is None else t_stop))
    for d in range(n_days):
        if jumps and d in jumps:
            rows, col, amt = jumps[d]
            y[rows, col] += amt
        integ(y, p, float(d), float(d + 1), stop, h, rtol, atol_v, 100_000, status, nsteps,
              mem, tmem)
        traj[:, d + 1] = y
    return traj, status, nsteps


def test_dense_cart_model_matches_radau_with_fewer_steps():
    y0, p = sample_cohort(3, seed=7)
    dense = make_integrator(cart_rhs, N_STATES, "rodas4", dense=True)
    traj, status, nsteps = run_dense(dense, y0, p, 365)
    assert np.all(status == STATUS_OK)
    for i in range(3):
        ref = cart_reference(y0[i], p[i], 365)
        rel = np.abs(traj[i] - ref) / (np.abs(ref) + 1.0)
        assert rel.max() < 2e-4, (i, rel.max())
    # the same cohort stopped at every day boundary takes more steps
    from test_solver import run_days

    plain = make_integrator(cart_rhs, N_STATES, "rodas4")
    _, _, ns_plain, _ = run_days(plain, y0, p, 365)
    assert nsteps.sum() < 0.8 * ns_plain.sum(), (nsteps, ns_plain)


@pytest.mark.slow  # compiles the dense driver for its own right-hand side (~13 s cold; CI budget)
def test_interpolant_has_order_three():
    """Error of the continuous output half-way through one step shrinks like h^4."""
    p = np.array([[2.0, 0.3]])
    y0 = np.array([[1.0, 0.0]])
    integ = make_integrator(forced_rhs, 2, "rodas4", dense=True, fixed_step=False)
    errs = []
    for hh in (0.2, 0.1, 0.05):
        # one fixed step of size hh from 0 (tolerances so loose the first step is accepted),
        # output at hh/2 compared with a tight run that stops there
        y = y0.copy()
        mem, tmem = dense_memory(1, 2)
        h = np.array([hh])
        st = np.zeros(1, np.int32)
        ns = np.zeros(1, np.int64)
        integ(y, p, 0.0, hh / 2, np.array([hh]), h, 1.0, np.full(2, 1.0), 10, st, ns, mem, tmem)
        assert ns[0] == 1 and st[0] == 0
        ref = y0.copy()
        tight = make_integrator(forced_rhs, 2, "rodas4")
        tight(ref, p, 0.0, hh / 2, np.zeros(1), 1e-12, np.full(2, 1e-14), 100_000,
              np.zeros(1, np.int32), np.zeros(1, np.int64))
        errs.append(np.abs(y - ref).max())
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert rates.min() > 3.5, (errs, rates)


@pytest.mark.slow  # compiles the dense driver for its own right-hand side (~10 s cold; CI budget)
def test_jump_restarts_only_that_patient_and_matches_exact_solution():
    a = A_STIFF
    p = np.tile(a.reshape(-1), (3, 1))
    y0 = np.tile(np.array([1.0, 2.0, 3.0]), (3, 1))
    integ = make_integrator(linear_rhs, 3, "rodas4", dense=True)
    jumps = {5: (np.array([1]), 0, 4.0)}
    traj, status, nsteps = run_dense(integ, y0, p, 10, rtol=1e-8, atol=1e-10, jumps=jumps)
    assert np.all(status == STATUS_OK)
    for d in range(11):
        exact = expm(a * d) @ y0[0]
        if d > 5:
            exact = exact + expm(a * (d - 5)) @ np.array([4.0, 0.0, 0.0])
        assert np.allclose(traj[1, d], exact, rtol=1e-5, atol=1e-8), d
        exact0 = expm(a * d) @ y0[0]
        assert np.allclose(traj[0, d], exact0, rtol=1e-5, atol=1e-8), d
    # patients 0 and 2 never jumped: identical; patient 1 restarted and took more steps
    assert np.array_equal(traj[0], traj[2])
    assert nsteps[1] > nsteps[0]


@pytest.mark.slow  # compiles the dense driver for its own right-hand side (~13 s cold; CI budget)
def test_interval_integrals_hold_the_integral_over_each_call():
    """A state that only integrates (here: ∫ y0 dt) is returned per call interval."""
    from solver_models import integral_rhs

    p = np.array([[0.3]])
    y0 = np.array([[1.0, 0.0]])
    integ = make_integrator(integral_rhs, 2, "rodas4", dense=True, n_jac=1,
                            interval_integrals=1)
    y = y0.copy()
    mem, tmem = dense_memory(1, 2)
    h = np.zeros(1)
    st = np.zeros(1, np.int32)
    ns = np.zeros(1, np.int64)
    for d in range(20):
        y[0, 1] = 0.0  # the caller resets the integral each day: not a jump
        integ(y, p, float(d), float(d + 1), np.array([20.0]), h, 1e-6, np.full(2, 1e-12),
              10_000, st, ns, mem, tmem)
        exact = (np.exp(-0.3 * d) - np.exp(-0.3 * (d + 1))) / 0.3
        assert abs(y[0, 1] - exact) < 1e-4 * exact, d
        assert abs(y[0, 0] / np.exp(-0.3 * (d + 1)) - 1.0) < 1e-4
    # the resets did not restart the solver: fewer steps than stopping at every boundary
    plain = make_integrator(integral_rhs, 2, "rodas4", n_jac=1)
    yp, hp, ns_plain = y0.copy(), np.zeros(1), np.zeros(1, np.int64)
    for d in range(20):
        yp[0, 1] = 0.0
        plain(yp, p, float(d), float(d + 1), hp, 1e-6, np.full(2, 1e-12), 10_000, st, ns_plain)
    assert ns[0] < ns_plain[0], (ns, ns_plain)


def _mid_exact(t: float, k0: float, k1: float, y20: float) -> tuple[float, float]:
    """y0 and y2 of :func:`integral_mid_rhs` from y0(0) = 1 and y2(0) = y20."""
    y0 = np.exp(-k0 * t)
    y2 = y20 * np.exp(-k1 * t) + (np.exp(-k0 * t) - np.exp(-k1 * t)) / (k1 - k0)
    return float(y0), float(y2)


@pytest.mark.slow  # compiles the dense driver for its own right-hand side (~13 s cold; CI budget)
def test_interval_integrals_in_the_middle_of_the_state_vector():
    """States after the integral block (an add-on's, in cartsim) are ordinary states: they
    are integrated and interpolated as such, and a change to one of them is a jump that
    restarts the patient; the block in between holds each call's integral."""
    from solver_models import integral_mid_rhs

    k0, k1 = 0.3, 0.8
    p = np.array([[k0, k1], [k0, k1]])
    y0 = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    integ = make_integrator(integral_mid_rhs, 3, "rodas4", dense=True,
                            interval_integrals=1, interval_integrals_end=2)
    y = y0.copy()
    mem, tmem = dense_memory(2, 3)
    h = np.zeros(2)
    st = np.zeros(2, np.int32)
    ns = np.zeros(2, np.int64)
    kick = 0.5  # patient 1's y2 is raised before day 10: a jump in a state after the block
    for d in range(20):
        y[:, 1] = 0.0  # the caller resets the integral each day: not a jump
        if d == 10:
            y[1, 2] += kick
        integ(y, p, float(d), float(d + 1), np.array([20.0, 20.0]), h, 1e-7,
              np.full(3, 1e-12), 10_000, st, ns, mem, tmem)
        exact_int = (np.exp(-k0 * d) - np.exp(-k0 * (d + 1))) / k0
        for i in range(2):
            assert abs(y[i, 1] - exact_int) < 1e-4 * exact_int, (d, i)
        e0, e2 = _mid_exact(d + 1.0, k0, k1, 0.0)
        assert abs(y[0, 0] / e0 - 1.0) < 1e-4 and abs(y[0, 2] / e2 - 1.0) < 1e-4, d
        # patient 1: after the kick its y2 carries the kick's own decay
        e2_1 = e2 + (kick * np.exp(-k1 * (d + 1 - 10)) if d >= 10 else 0.0)
        assert abs(y[1, 2] / e2_1 - 1.0) < 1e-4, d
    assert np.all(st == STATUS_OK)
    # the kick restarted patient 1 (a fresh start-up costs steps); the resets of the
    # integral restarted neither
    assert ns[1] > ns[0], ns
    plain = make_integrator(integral_mid_rhs, 3, "rodas4")
    yp, hp, ns_plain = y0[:1].copy(), np.zeros(1), np.zeros(1, np.int64)
    for d in range(20):
        yp[0, 1] = 0.0
        plain(yp, p[:1], float(d), float(d + 1), hp, 1e-7, np.full(3, 1e-12), 10_000,
              np.zeros(1, np.int32), ns_plain)
    assert ns[0] < ns_plain[0], (ns, ns_plain)


def test_interval_integrals_end_is_checked():
    from solver_models import integral_mid_rhs

    with pytest.raises(ValueError, match="interval_integrals_end"):
        make_integrator(integral_mid_rhs, 3, "rodas4", dense=True, interval_integrals=2,
                        interval_integrals_end=1)


@pytest.mark.parametrize("threads", [1])
def test_dense_chunk_and_thread_invariance(threads):
    y0, p = sample_cohort(40, seed=11)
    integ = make_integrator(cart_rhs, N_STATES, "rodas4", dense=True)
    jumps = {3: (np.array([2, 17]), 0, 1e8)}
    full, _, ns_full = run_dense(integ, y0, p, 60, jumps=jumps)
    idx = np.array([0, 2, 6, 17, 39])
    sub_jumps = {3: (np.array([1, 3]), 0, 1e8)}
    sub, _, ns_sub = run_dense(integ, y0[idx], p[idx], 60, jumps=sub_jumps)
    assert np.array_equal(full[idx], sub) and np.array_equal(ns_full[idx], ns_sub)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(threads)
        one, _, _ = run_dense(integ, y0, p, 60, jumps=jumps)
    finally:
        numba.set_num_threads(old)
    assert np.array_equal(full, one)


@pytest.mark.slow  # compiles the dense driver for its own right-hand side (~10 s cold; CI budget)
def test_error_mask_leaves_overwritten_states_out_of_the_step_control():
    """A state the caller will overwrite (set_error_mask) no longer shrinks the steps; the
    states that are kept stay within the tolerance; no mask gives back the plain solver."""
    from solver_models import decoupled_rhs

    from cartsim.engine.simulate import run_daily
    from cartsim.engine.solver import set_error_mask

    p = np.array([[0.2, 40.0, 5.0]])
    y0 = np.array([[1.0, 0.0]])
    integ = make_integrator(decoupled_rhs, 2, "rodas4", dense=True)
    atol = np.full(2, 1e-9)

    def run(mask):
        y = y0.copy()
        mem, tmem = dense_memory(1, 2)
        if mask is not None:
            set_error_mask(mem, mask)
        h, st, ns = np.zeros(1), np.zeros(1, np.int32), np.zeros(1, np.int64)
        out = []
        for d in range(10):
            integ(y, p, float(d), float(d + 1), np.array([10.0]), h, 1e-6, atol, 100_000,
                  st, ns, mem, tmem)
            out.append(y[0].copy())
        assert st[0] == STATUS_OK
        return np.array(out), ns[0]

    plain, n_plain = run(None)
    cleared, n_cleared = run(np.zeros((1, 2), dtype=bool))
    assert n_cleared == n_plain and np.array_equal(cleared, plain)
    masked, n_masked = run(np.array([[False, True]]))
    assert n_masked < 0.5 * n_plain, (n_masked, n_plain)
    exact = np.exp(-0.2 * np.arange(1, 11))
    for traj in (plain, masked):
        assert np.allclose(traj[:, 0], exact, rtol=1e-5, atol=0.0)

    # the daily loop passes the mask of each day to the solver
    def loop(overwritten):
        y = y0.copy()
        stats = run_daily(integ, y, p, 0, 10, [], rtol=1e-6, atol=atol, dense=True,
                          overwritten=overwritten)
        return y, stats.steps[0]

    y_masked, s_masked = loop(lambda day, y: np.array([[False, True]]))
    y_plain, s_plain = loop(None)
    assert s_masked == n_masked and s_plain == n_plain
    assert abs(y_masked[0, 0] / exact[-1] - 1.0) < 1e-5
