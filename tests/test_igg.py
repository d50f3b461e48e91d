"""Serum IgG under B-cell aplasia (session 16, issue 14 item 4): a baseline spread and a
B-cell-independent (long-lived plasma cell) share that is larger in adults than in children."""
from __future__ import annotations

import numpy as np

from cartsim.model.parameters import PARAMS, P
from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.simulation import simulate

TISA = get_product("tisagenlecleucel")


def _cohort(ages: list[float]) -> Cohort:
    n = len(ages)
    return Cohort("b-all", weight_kg=np.full(n, 50.0), age_y=np.array(ages),
                  marrow_blasts_pct=np.full(n, 30.0))


def test_adult_keeps_more_igg_than_child_under_b_cell_aplasia() -> None:
    # same patient but for age (no variability, so the IgG share is the only difference
    # besides the age terms of the endothelium, which do not touch B cells)
    res = simulate(_cohort([8.0, 40.0]), TISA, days=120, seed=3, variability=False)
    t = res.trajectories
    igg = {pid: g.set_index("day")["igg_mg_dl"] for pid, g in t.groupby("patient_id")}
    b = {pid: g.set_index("day")["b_cells_per_ul"] for pid, g in t.groupby("patient_id")}
    assert b[0].loc[60:].max() < 1.0 and b[1].loc[60:].max() < 1.0   # both B-aplastic
    igg0 = PARAMS["igg0"].default
    child, adult = igg[0].loc[120], igg[1].loc[120]
    # towards igg0 x share: 0.5 for the child, 0.8 for the adult (IgG half-life 21 d)
    assert child < 0.6 * igg0 < 0.75 * igg0 < adult
    assert child < 400.0 < adult       # the child needs IgG replacement, the adult does not


def test_igg_share_ramp_and_baseline_spread_and_their_neutral_values() -> None:
    ages = [5.0, 15.0, 20.0, 25.0, 60.0]
    p, _ = build(_cohort(ages), TISA, seed=1, variability=False)
    share = p[:, P.IgG_llpc]
    np.testing.assert_allclose(share, [0.5, 0.5, 0.65, 0.8, 0.8])
    assert (p[:, P.igg0] == PARAMS["igg0"].default).all()
    # with variability the baseline spreads, by the patient's own keyed stream
    pv, _ = build(_cohort(ages * 40), TISA, seed=1)
    assert 0.2 < np.log(pv[:, P.igg0]).std() < 0.5
    pv1, _ = build(_cohort(ages), TISA, seed=1)
    np.testing.assert_array_equal(pv1[:, P.igg0], pv[:5, P.igg0])
    assert (pv[:, P.IgG_llpc] <= 1.0).all()
    # neutral values: every patient at igg0, and the share is the patient's IgG_llpc draw
    # whatever the age (the model before session 16)
    neutral = {"igg0_sd_log": 0.0, "igg_llpc_adult": 0.5}
    p0, _ = build(_cohort(ages * 40), TISA, seed=1, overrides=neutral)
    assert (p0[:, P.igg0] == PARAMS["igg0"].default).all()
    pk, _ = build(_cohort([5.0] * len(ages) * 40), TISA, seed=1, overrides=neutral)
    np.testing.assert_array_equal(p0[:, P.IgG_llpc], pk[:, P.IgG_llpc])
