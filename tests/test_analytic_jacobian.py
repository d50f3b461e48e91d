"""The analytic Jacobian generated from the mechanisms' source (cartsim.model.autodiff):
same entries as finite differences, same pattern as the numerically detected one, and a clear
refusal (finite-difference fallback) for code it cannot differentiate."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from cartsim.model import layout
from cartsim.model.autodiff import NotDifferentiable, jacobian_source
from cartsim.model.mechanism import analytic_jacobian
from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.simulation import detected_sparsity, model_sparsity


def _states(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cohort parameters and states spread over many orders of magnitude, every state
    strictly positive (away from the kinks of max(y, 0), where a central difference halves
    the one-sided derivative both Jacobians use)."""
    rng = np.random.default_rng(seed)
    cohort = Cohort("b-all", weight_kg=rng.uniform(10, 90, n), age_y=rng.uniform(2, 70, n),
                    marrow_blasts_pct=rng.uniform(5, 95, n))
    p, y = build(cohort, get_product("tisagenlecleucel"), seed=seed)
    y = np.abs(y) * np.exp(rng.normal(0, 1, y.shape)) + 10.0 ** rng.uniform(-2, 8, y.shape)
    bounded = [layout.CORE.S[s] for s in ("B_out", "BBB", "MR")]
    y[:, bounded] = rng.uniform(0.05, 0.95, (n, len(bounded)))
    return p, y


def _flat(m):  # type: ignore[no-untyped-def]
    """The generated Jacobian and the flattened vector field it differentiates, as plain
    Python (no compilation: cheap enough for the default suite)."""
    code = jacobian_source(m.source, m.rhs_globals, m.n_states)
    ns: dict[str, object] = dict(code.names)
    exec(compile(code.source + "\n\n" + code.flat_source, "<jac>", "exec"), ns)  # noqa: S102
    return ns["jac"], ns["rhs_flat"], code.pattern


def _richardson(rhs, y: np.ndarray, p: np.ndarray, rel: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Central differences extrapolated from steps h and h/2 (truncation error O(h⁴))."""
    n = y.size
    out = np.zeros((2, n, n))
    f1, f2 = np.zeros(n), np.zeros(n)
    for k, r in enumerate((rel, rel / 2)):
        for j in range(n):
            a, b = y.copy(), y.copy()
            a[j] += r * abs(y[j])
            b[j] -= r * abs(y[j])
            rhs(0.0, a, p, f1)
            rhs(0.0, b, p, f2)
            out[k, :, j] = (f1 - f2) / (a[j] - b[j])
    return (4.0 * out[1] - out[0]) / 3.0


def test_analytic_jacobian_matches_finite_differences_at_random_states() -> None:
    m = layout.CORE
    jac, rhs, pattern = _flat(m)
    p, y = _states(3, seed=7)
    names = [s.name for s in m.states]
    for k in range(3):
        ana = np.zeros((m.n_states, m.n_states))
        jac(0.0, y[k], p[k], ana)
        assert np.all(ana[~pattern] == 0.0)
        # two step sizes: truncation error shrinks with the step, cancellation grows (rows
        # add terms of very different size); an entry passes if either agrees to 1e-6
        fds = [_richardson(rhs, y[k], p[k], rel) for rel in (1e-2, 1e-3)]
        err = np.minimum(*[np.abs(ana - fd) for fd in fds])
        # rounding of a difference quotient: ~eps × (size of the terms of f_i) / step
        f = np.zeros(m.n_states)
        rhs(0.0, y[k], p[k], f)
        terms = np.abs(f) + np.abs(ana) @ np.abs(y[k])
        noise = 1e-13 * terms[:, None] / (1e-2 * np.abs(y[k])[None, :])
        bad = np.argwhere(err > 1e-6 * np.abs(ana) + noise)
        assert bad.size == 0, [(names[i], names[j], ana[i, j], fds[0][i, j], fds[1][i, j])
                               for i, j in bad[:5]]
        # the differentiated code is the model's vector field
        assert (ana != 0.0).sum() > 200


@pytest.mark.slow  # compiles the vector field (~1 min loaded)
def test_flattened_vector_field_is_the_compiled_one() -> None:
    m = layout.CORE
    _, rhs, _ = _flat(m)
    p, y = _states(3, seed=8)
    for k in range(3):
        a, b = np.zeros(m.n_states), np.zeros(m.n_states)
        rhs(0.0, y[k], p[k], a)
        m.rhs(0.0, y[k], p[k], b)
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=0.0)


@pytest.mark.slow  # detecting the pattern compiles the vector field unless cached
def test_analytic_pattern_equals_the_detected_pattern() -> None:
    m = layout.CORE
    got = analytic_jacobian(m)
    assert not isinstance(got, str)
    pattern = got[1][:, :m.n_jac]
    detected = detected_sparsity(model=m)[:, :m.n_jac]
    assert not (detected & ~pattern).any()  # every detected entry is generated
    # generated but not detected: only entries whose rate parameter is an off switch at its
    # default 0 (the sampled parameters scatter around the defaults, so 0 stays 0):
    # d(dMYTOL/dt)/dMY = k_my_tol (1 - TOL), the myeloid tolerance of session 8; and the
    # marginal d(dM_b/dt)/dX_t (exhausted tissue cells in the homeostatic niche), which the
    # samples find or miss as they fall (found before session 20's added parameter shifted
    # them); likewise d(dMY/dt)/dQC, the effectors' cytokine competence acting through the
    # CAR-T contact signal, ~0 wherever a sampled state has that signal absent or saturated
    # (missed since session 28's added parameter switch_present changed the shape of the
    # sampled parameter matrix, hence every later random draw); and session 40's local CNS
    # drive of the encephalopathy, d(dENC/dt)/d(the CNS kill's inputs: effectors, every
    # target pool, the sanctuary's cells), which acts only with overt CNS disease
    # (cns_disease > 0, 0 in the sampled parameters); and d(dBBB/dt)/dE_b, the blood
    # effectors' mural route, ~0 where a sampled state has it saturated or absent (missed
    # since session 42's added parameter ang_gate shifted the draws again); and session 44's
    # erythroid lag, on by default (ery_mtt 5 d): the red cells then read their drive through
    # EO, so HB's direct dependence on the drive's inputs (the reserve MR, lymphodepletion LD
    # and IL-6, the branch taken only when ery_mtt is 0) is generated, not detected; likewise
    # d(dEO/dt)/dHB, the erythropoietin feedback, off at its default gamma_ery 0
    names = [n for n, _, _ in m.state_info()]
    rows, cols = np.nonzero(pattern & ~detected)
    missing = {(names[i], names[j]) for i, j in zip(rows, cols, strict=True)}
    cns_drive = {("ENC", s) for s in ("E_t", "B", "B_prog", "T0", "T1", "T2", "TS")}
    ery = {("HB", "MR"), ("HB", "LD"), ("HB", "IL6"), ("EO", "HB")}
    assert missing <= ({("MYTOL", "MY"), ("M_b", "X_t"), ("MY", "QC"), ("BBB", "E_b")}
                       | cns_drive | ery), missing
    # the solver's pattern joins both: it is the generated one
    assert np.array_equal(model_sparsity(model=m)[:, :m.n_jac], pattern)


def test_add_on_models_are_differentiated() -> None:
    for name in ("iap_inhibitor", "gvl"):
        m = layout.model([name])
        code = jacobian_source(m.source, m.rhs_globals, m.n_states)
        i = m.S[{"iap_inhibitor": "IAPI", "gvl": "GVL"}[name]]
        assert code.pattern[i, i]  # the add-on's own decay/rise
        # the add-on's quantity reaches the tumour: d(dT0/dt)/d(add-on state) is generated
        assert code.pattern[m.S.T0, i]


def test_constructs_it_cannot_differentiate_are_refused() -> None:
    refused = {
        "state-dependent index": "    dy[0] = y[int(y[1])]\n    dy[1] = 0.0\n",
        "while loop": "    x = y[0]\n    while x > 1.0:\n        x = x / 2.0\n"
                      "    dy[0] = x\n    dy[1] = 0.0\n",
        "write to y": "    y[0] = 1.0\n    dy[0] = 0.0\n    dy[1] = 0.0\n",
        "unknown function of the state": "    dy[0] = np.sinh(y[0])\n    dy[1] = 0.0\n",
    }
    for what, body in refused.items():
        with pytest.raises(NotDifferentiable):
            jacobian_source("def rhs(t, y, p, dy):\n" + body, {"np": np}, 2)
            pytest.fail(what)


def test_branches_merge_and_derivatives_follow_the_branch_taken() -> None:
    src = ("def rhs(t, y, p, dy):\n"
           "    a = y[0] * y[1]\n"
           "    if y[0] > p[0]:\n"
           "        a = a * y[0]\n"
           "    dy[0] = max(a, p[1]) / (1.0 + y[1] ** 2)\n"
           "    dy[1] = y[0] if y[1] < 0.5 else -y[1]\n")
    code = jacobian_source(src, {}, 2)
    ns = dict(code.names)
    exec(compile(code.source, "<jac>", "exec"), ns)  # noqa: S102 - generated in this test
    jac = numba.njit(error_model="numpy")(ns["jac"]).py_func
    rng = np.random.default_rng(0)
    for _ in range(20):
        y, p = rng.uniform(0.1, 2.0, 2), rng.uniform(0.1, 2.0, 2)

        def f(v: np.ndarray, p: np.ndarray = p) -> np.ndarray:
            a = v[0] * v[1] * (v[0] if v[0] > p[0] else 1.0)
            return np.array([max(a, p[1]) / (1.0 + v[1] ** 2),
                             v[0] if v[1] < 0.5 else -v[1]])
        J = np.zeros((2, 2))
        jac(0.0, y, p, J)
        for j in range(2):
            h = 1e-7
            e = np.zeros(2)
            e[j] = h
            np.testing.assert_allclose(J[:, j], (f(y + e) - f(y - e)) / (2 * h), rtol=1e-5,
                                       atol=1e-6)


@pytest.mark.slow  # compiles both Jacobians' solvers (minutes when the cache is cold)
def test_compiled_analytic_jacobian_agrees_with_finite_differences(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The Jacobian changes the steps taken, not the equations: the reference cohort of
    tests/data/README.md (3 patients, days -5..40) run with the analytic and with the
    finite-difference Jacobian of the current default model gives every readout within the
    solver's tolerance (tests/neutral_values.py ``assert_matches_reference``: rtol 2e-3, the
    tumour while above the stochastic threshold) and no more steps in all (the per-patient
    counts of an adaptive solver can move either way with a more exact Jacobian; on d15a36f
    analytic 111 / 212 / 209, finite differences 124 / 224 / 217). Until session 30 it
    compared with tests/data/core_trajectory_reference.npz, a model several sessions old."""
    import io

    from cartsim.simulation import simulate
    from neutral_values import assert_matches_reference, reference_cohort

    runs = {}
    for kind in ("fd", "analytic"):
        monkeypatch.setenv("CARTSIM_JACOBIAN", kind)
        runs[kind] = simulate(reference_cohort(), get_product("tisagenlecleucel"), days=40,
                              seed=11)
    fd, an = runs["fd"], runs["analytic"]
    buf = io.BytesIO()
    cols = {c: fd.trajectories[c].to_numpy() for c in fd.trajectories.columns
            if np.issubdtype(fd.trajectories[c].dtype, np.number)}
    np.savez(buf, **cols)
    buf.seek(0)
    # absolute tolerance 1e-6: the solver's own for the cytokine states (StateSpec.tolerance);
    # session 45's saturating lymphodepletion kill put one IFN-γ value of 1.6e-7 pg/mL 0.9 %
    # apart between the two Jacobians (1.4e-9 absolute), far below what the solver controls
    assert_matches_reference(an.trajectories, np.load(buf), atol=1e-6)
    assert an.steps.sum() <= fd.steps.sum() * 1.05


def test_unknown_jacobian_kind_is_named() -> None:
    from cartsim.errors import InvalidInputError
    from cartsim.simulation import jacobian_kind

    assert jacobian_kind("fd") == "fd"
    with pytest.raises(InvalidInputError, match="CARTSIM_JACOBIAN"):
        jacobian_kind("exact")
