"""Coloured finite-difference Jacobian and the accumulator block: same answers, fewer calls."""

from __future__ import annotations

import numpy as np
import pytest

from cartsim.engine.solver import column_groups, make_integrator
from cartsim.model.state import FIRST_ACCUMULATOR, N_STATES, S
from cartsim.model.system import rhs
from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.simulation import cached_sparsity, default_atol, model_sparsity


def test_column_groups_are_structurally_orthogonal_and_cover_every_column() -> None:
    rng = np.random.default_rng(3)
    pat = rng.uniform(size=(30, 30)) < 0.12
    pat[:, 7] = False  # an empty column belongs to no group
    gptr, gcols, colptr, rows = column_groups(pat)
    seen: list[int] = []
    for g in range(gptr.size - 1):
        cols = gcols[gptr[g]:gptr[g + 1]]
        covered = np.zeros(30, dtype=int)
        for j in cols:
            covered[pat[:, j]] += 1
        assert covered.max() <= 1, f"group {g} has columns sharing a row"
        seen += list(cols)
    assert sorted(seen) == [j for j in range(30) if pat[:, j].any()]
    for j in range(30):
        assert list(rows[colptr[j]:colptr[j + 1]]) == list(np.flatnonzero(pat[:, j]))
    assert gptr.size - 1 < 30  # colouring actually groups


def test_model_pattern_is_sparse_and_covers_accumulator_rows() -> None:
    # the solver's own (cached) pattern: detecting it afresh compiles the vector field again
    # (15 s of the default suite)
    pat = cached_sparsity()
    assert pat.shape == (N_STATES, N_STATES)
    assert pat.sum() < 0.25 * N_STATES**2
    assert not pat[:, FIRST_ACCUMULATOR:].any()  # accumulators feed nothing back
    assert pat[S.HZ0].any() and pat[S.BR0].any()


@pytest.mark.slow  # ~20 s of the default suite; kept for `pytest -m slow`
def test_coloured_block_solver_matches_dense_solver_on_the_model() -> None:
    cohort = Cohort("b-all", weight_kg=np.array([12.0, 30.0, 70.0]),
                    age_y=np.array([3.0, 10.0, 22.0]),
                    marrow_blasts_pct=np.array([90.0, 60.0, 8.0]))
    prod = get_product("tisagenlecleucel")
    p, y0 = build(cohort, prod, seed=5)
    y0[:, S.M_b] += 2e7
    y0[:, S.E_b] += 3e7
    atol = default_atol()
    out = []
    for kw in ({}, {"n_jac": FIRST_ACCUMULATOR, "jac_sparsity": model_sparsity()}):
        integ = make_integrator(rhs, N_STATES, "rodas4", autonomous=True, cache=False, **kw)
        y = y0.copy()
        status = np.zeros(3, np.int32)
        steps = np.zeros(3, np.int64)
        h = np.zeros(3)
        for d in range(25):
            integ(y, p, float(d), float(d + 1), h, 1e-7, atol, 50_000, status, steps)
        assert (status == 0).all()
        out.append(y)
    dense, coloured = out
    scale = np.abs(dense) + atol
    assert np.max(np.abs(coloured - dense) / scale) < 1e-4
