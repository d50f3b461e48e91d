"""Why patients fail (issue 11, items 1–2 and LBCL progression death): product fitness,
host rejection of the construct, antigen overload, nodal bulk, the antigen-density threshold
and the CD19-low escape subclone, and burden-driven LBCL death. Each mechanism on one patient,
and every one of them at its neutral value gives back the model before them bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cartsim.model.parameters import N_PARAMS_BASE, PARAMS, P
from cartsim.model.tumour import engagement
from cartsim.population import Cohort, build, standard_normals
from cartsim.products import get_product
from cartsim.simulation import simulate
from cartsim.trial.outcomes import burden_death_day, death_params

#: The core model's trajectory before these mechanisms (commit ee4a1e4; tests/data/README.md)
REFERENCE_EE4A1E4 = Path(__file__).parent / "data" / "core_trajectory_reference_ee4a1e4.npz"
#: Every new parameter at the value that switches its mechanism off.
from neutral_values import ALL_OFF, CRS_READOUTS, assert_matches_reference  # noqa: E402

NEUTRAL = {"fit_rho": 0.0, "fit_ex": 0.0, "fit_mem": 0.0, "k_reject": 0.0,
           "ex_overload": 0.0, "bulk_access_cells": 0.0, "antigen_hill": 1.0,
           "low_clone_cd19": 0.0, "cd19_spread": 0.0}
TISA = get_product("tisagenlecleucel")


def _ball(n: int = 1, blasts: float = 60.0, **kw: np.ndarray) -> Cohort:
    return Cohort("b-all", weight_kg=np.full(n, 30.0), age_y=np.full(n, 10.0),
                  marrow_blasts_pct=np.full(n, blasts), **kw)


def _at(res, col: str, day: int) -> float:  # type: ignore[no-untyped-def]
    t = res.trajectories
    return float(t.loc[t["day"] == day, col].iloc[0])


def test_all_new_mechanisms_off_give_the_old_trajectory() -> None:
    # The equations at the neutral values are the old ones (x·1.0, x + 0.0 and the old
    # engagement form are exact), but the solver's Jacobian sparsity pattern is detected
    # numerically from random samples of the parameter vector, which has more columns now;
    # so the step sequence differs and agreement is to the solver tolerance, not bitwise.
    ref = np.load(REFERENCE_EE4A1E4)
    cohort = Cohort("b-all", weight_kg=np.array([18.0, 45.0, 70.0]),
                    age_y=np.array([5.0, 14.0, 24.0]),
                    marrow_blasts_pct=np.array([80.0, 40.0, 10.0]),
                    noxa_low=np.array([1.0, 0.0, 0.0]), dr_defect=np.array([0.0, 0.5, 0.0]),
                    pdl1=np.array([0.0, 0.0, 0.8]))
    # (with the other session-4 mechanisms off too; the CRS readouts are not comparable)
    res = simulate(cohort, TISA, days=40, seed=11, overrides=ALL_OFF)
    t = res.trajectories
    # tumour: equal to the tolerance while above the stochastic layer's threshold
    assert_matches_reference(t, ref, rtol=1e-4, skip=CRS_READOUTS)


def test_product_fitness_is_one_shared_keyed_axis() -> None:
    ids = np.arange(200, dtype=np.int64)
    cohort = Cohort("b-all", weight_kg=np.full(200, 30.0), age_y=np.full(200, 10.0),
                    marrow_blasts_pct=np.full(200, 50.0), patient_id=ids)
    on, _ = build(cohort, TISA, seed=3)
    off, _ = build(cohort, TISA, seed=3, overrides={"fit_rho": 0, "fit_ex": 0, "fit_mem": 0})
    z = standard_normals(3, ids, "product_fitness")
    rho, kex, dm = (on[:, P[k]] / off[:, P[k]] for k in ("rho_max", "k_ex", "d_M"))
    np.testing.assert_allclose(np.log(rho), 0.3 * z, rtol=1e-12)
    # fitter products expand more, exhaust less and persist longer: perfectly correlated
    assert np.corrcoef(np.log(rho), np.log(kex))[0, 1] < -0.999
    assert np.corrcoef(np.log(rho), np.log(dm))[0, 1] < -0.999
    # a patient's draw does not depend on its cohort (chunk/worker invariance)
    one = Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([10.0]),
                 marrow_blasts_pct=np.array([50.0]), patient_id=np.array([137]))
    alone, _ = build(one, TISA, seed=3)
    assert np.array_equal(alone[0, :N_PARAMS_BASE], on[137, :N_PARAMS_BASE])


def test_a_fit_product_expands_more_than_an_unfit_one() -> None:
    z = standard_normals(2, np.arange(400, dtype=np.int64), "product_fitness")
    fit, unfit = int(np.argmax(z)), int(np.argmin(z))
    cohort = _ball(2, patient_id=np.array([fit, unfit]))
    kw = {"days": 28, "seed": 2}
    on = simulate(cohort, TISA, **kw).trajectories
    off = simulate(cohort, TISA, overrides={"fit_rho": 0, "fit_ex": 0, "fit_mem": 0},
                   **kw).trajectories
    peak = {k: t.groupby("patient_id")["cart_cells_per_ul"].max() for k, t in
            (("on", on), ("off", off))}
    # the fitness axis widens the gap between the two patients' peaks
    assert peak["on"][fit] / peak["on"][unfit] > 3.0 * peak["off"][fit] / peak["off"][unfit]


def test_host_rejection_ends_car_t_persistence_after_reconstitution() -> None:
    kw = {"days": 150, "seed": 1, "variability": False}
    on = simulate(_ball(), TISA, overrides={"k_reject": 0.05}, **kw)  # a strong rejector
    off = simulate(_ball(), TISA, overrides={"k_reject": 0.0}, **kw)
    # little effect while host T cells are depleted, a large one once they are back
    assert _at(on, "cart_cells_per_ul", 10) > 0.5 * _at(off, "cart_cells_per_ul", 10)
    assert _at(on, "cart_cells_per_ul", 140) < 0.2 * _at(off, "cart_cells_per_ul", 140)


def test_antigen_overload_exhausts_effectors_early() -> None:
    # a very large leukaemia (19 x the marrow's cells, the old f / (1 - f) mapping at 95 %
    # blasts; with the packed-marrow mapping of session 43 a 95 % marrow holds 3.7 x, where
    # overload costs ~9 % of the day-9 peak)
    kw = {"days": 10, "seed": 1, "variability": False}
    on = simulate(_ball(blasts=95.0), TISA, overrides={"ball_packing": 0.0}, **kw)
    off = simulate(_ball(blasts=95.0), TISA, overrides={"ex_overload": 0.0, "ball_packing": 0.0},
                   **kw)
    assert _at(on, "cart_cells_per_ul", 9) < 0.9 * _at(off, "cart_cells_per_ul", 9)


def test_bulky_nodal_disease_is_reached_less() -> None:
    lbcl = Cohort("lbcl", weight_kg=np.array([75.0]), age_y=np.array([60.0]),
                  tumour_volume_ml=np.array([800.0]))
    prod = get_product("axicabtagene_ciloleucel")
    kw = {"days": 28, "seed": 1, "variability": False}
    on = simulate(lbcl, prod, **kw)
    off = simulate(lbcl, prod, overrides={"bulk_access_cells": 0.0}, **kw)
    assert _at(on, "tumour_cells", 28) > 2.0 * _at(off, "tumour_cells", 28)


def _lbcl(volume_ml: float) -> Cohort:
    return Cohort("lbcl", weight_kg=np.array([75.0]), age_y=np.array([60.0]),
                  tumour_volume_ml=np.array([volume_ml]))


def test_bulky_nodes_blunt_car_t_expansion_more_than_small_ones() -> None:
    # the suppressive nodal mass scales the proliferation signal by 1 / (1 + T/bulk): a
    # 400-mL mass loses far more of its early expansion than a 4-mL one
    prod = get_product("axicabtagene_ciloleucel")
    kw = {"days": 7, "seed": 1, "variability": False}
    ratio = {}
    for vol in (4.0, 400.0):
        on = simulate(_lbcl(vol), prod, **kw)
        off = simulate(_lbcl(vol), prod, overrides={"bulk_suppression": 0.0}, **kw)
        ratio[vol] = _at(on, "cart_cells_per_ul", 7) / _at(off, "cart_cells_per_ul", 7)
    assert ratio[400.0] < 0.5
    assert ratio[400.0] < 0.7 * ratio[4.0]


def test_lbcl_occult_sanctuary_is_scaled_down_from_ball() -> None:
    from cartsim.model.state import S

    prod = get_product("axicabtagene_ciloleucel")
    ball = _ball(blasts=50.0)
    _, yb = build(ball, prod, seed=1, variability=False)
    # the occult seeding alone: LBCL's sheltered lesions (session 23) also start in TS
    off = {"lbcl_shelter_frac": 0.0}
    _, yl = build(_lbcl(50.0), prod, seed=1, variability=False, overrides=off)
    _, yn = build(_lbcl(50.0), prod, seed=1, variability=False,
                  overrides={**off, "lbcl_cns_seed_scale": 1.0})
    frac_b = yb[0, S.TS] / yb[0, S.T0]
    assert yn[0, S.TS] / yn[0, S.T0] == pytest.approx(frac_b)  # neutral: the B-ALL seeding
    scale = PARAMS["lbcl_cns_seed_scale"].default
    assert scale < 1.0
    assert yl[0, S.TS] / yl[0, S.T0] == pytest.approx(scale * frac_b)


def test_engagement_has_an_antigen_density_threshold() -> None:
    p = np.zeros(N_PARAMS_BASE)
    p[P.K_antigen], p[P.affinity], p[P.product_cd19] = 0.15, 1.0, 1.0
    p[P.antigen_hill] = 1.0
    plain = [engagement(p, d, 0.0, 0.0) for d in (0.03, 0.15, 1.0)]
    assert plain == [1.0 - (1.0 - d / (d + 0.15)) for d in (0.03, 0.15, 1.0)]  # the old form
    p[P.antigen_hill] = 2.0
    steep = [engagement(p, d, 0.0, 0.0) for d in (0.03, 0.15, 1.0)]
    assert steep[0] < 0.25 * plain[0]  # antigen-low cells fall below the threshold
    assert steep[1] == pytest.approx(0.5) and steep[2] > plain[2]


def test_the_escape_subclone_is_cleared_when_its_cd19_is_high_enough() -> None:
    cohort = _ball(blasts=60.0, cd19_negative_fraction=np.array([0.01]))
    kw = {"days": 60, "seed": 1, "variability": False}
    neg = simulate(cohort, TISA, overrides={"low_clone_cd19": 0.0}, **kw)
    low = simulate(cohort, TISA, overrides={"low_clone_cd19": 0.4}, **kw)
    # an antigen-negative subclone grows back; a CD19-low one above the threshold is killed
    assert _at(neg, "tumour_cells", 59) > 1e3 * max(_at(low, "tumour_cells", 59), 1.0)


def test_lbcl_progression_death_follows_the_burden_reached() -> None:
    q = death_params()
    lbcl = (q["lbcl_death_hazard"], q["lbcl_death_ref_ml"], q["lbcl_death_exponent"])
    days = np.arange(0, 400)
    vol = np.vstack([np.full(400, 1e-6), np.full(400, 50.0), np.full(400, 500.0)])
    ids = np.arange(3)
    k = burden_death_day(days, np.repeat(vol, 1, axis=0), ids, 1, *lbcl)
    many = burden_death_day(days, np.repeat(vol[1:], 300, axis=0), np.arange(600), 1, *lbcl)
    small, big = many[:300], many[300:]
    assert k[0] == -1  # in remission: no progression death within the year
    # 10× the burden: the hazard is 10× higher, death sooner and more often
    assert (big >= 0).mean() > 0.95 and (small >= 0).mean() < 0.7
    # Exp(1) thresholds: at 50 mL, P(death by day 400) = 1 − exp(−0.002·400)
    assert (small >= 0).mean() == pytest.approx(1 - np.exp(-0.004 * 0.5 * 400), abs=0.08)
    # keyed per patient: a sub-cohort gives the same days
    assert np.array_equal(burden_death_day(days, vol[1:2], ids[1:2], 1, *lbcl), k[1:2])
    off = burden_death_day(days, vol, ids, 1, 0.0, *lbcl[1:])
    assert (off == -1).all()  # hazard 0: no burden death


def test_lymphoma_burden_death_starts_at_progression() -> None:
    """Session 13: the lymphoma burden hazard (sized by survival after progression) counts
    from the day of progression; before it, or without progression, bulky disease under
    treatment is not yet dying of lymphoma. With the switch at 0 it runs from day 0."""
    from cartsim.trial.outcomes import decide_deaths

    n, d = 600, 365
    ones = np.ones((n, d))
    vol = ones * 300.0
    prog = np.where(np.arange(n) < n // 2, np.nan, 120.0)

    def deaths(**q: float):  # type: ignore[no-untyped-def]
        return decide_deaths(np.arange(d), np.arange(n), 3, "lbcl", np.full(n, 60.0),
                             ones * np.nan, vol, ones * 80.0, ones * 98.0, ones * 3000.0,
                             ones * 800.0, params=q, progression_day=prog)

    on = deaths()
    lymph = on.cause == "progression"
    assert not lymph[: n // 2].any()  # never progressed: no lymphoma death
    assert lymph[n // 2:].mean() > 0.9 and (on.day[lymph] >= 120).all()
    off = deaths(lymphoma_death_after_progression=0.0)
    early = (off.cause == "progression") & (off.day < 120)
    assert early[: n // 2].mean() > 0.5  # from day 0 at 300 mL: most die before day 120


def _ball_deaths(blasts: np.ndarray, **q: float):  # type: ignore[no-untyped-def]
    from cartsim.trial.outcomes import decide_deaths

    n, d = blasts.shape
    ones = np.ones((n, d))
    return decide_deaths(np.arange(d), np.arange(n), 3, "b-all", np.full(n, 10.0), blasts,
                         ones * np.nan, ones * 80.0, ones * 98.0, ones * 3000.0,
                         ones * 800.0, params=q)


def test_ball_progression_death_hazard_replaces_the_30_day_rule() -> None:
    """B-ALL death with a marrow full of blasts: a daily hazard on days at lethal burden
    (ball_death_hazard > 0) instead of death on the 30th consecutive day; off, the rule."""
    d = 730
    full = np.full((400, d), 95.0)  # refractory: marrow replaced from day 0
    low = np.full((400, d), 40.0)  # heavy, but below lethal_blast_pct
    rule = _ball_deaths(full[:2], ball_death_hazard=0.0)
    assert (rule.day == 29).all() and (rule.cause == "progression").all()
    h = 0.004
    k = _ball_deaths(full, ball_death_hazard=h)
    prog = np.where(k.cause == "progression", k.day, np.inf)
    # Exp(1) thresholds on a constant hazard: median survival ln 2 / h (173 d)
    assert np.median(prog) == pytest.approx(np.log(2) / h, rel=0.15)
    assert (_ball_deaths(low, ball_death_hazard=h).cause != "progression").all()
    # a faster hazard kills sooner, patient by patient (the same keyed draw)
    fast = _ball_deaths(full, ball_death_hazard=4 * h)
    fp = np.where(fast.cause == "progression", fast.day, np.inf)
    assert (fp <= prog).all() and np.median(fp) < np.median(prog) / 3


def test_the_ball_escape_subclone_is_more_cd19_negative_than_the_lymphoma_one() -> None:
    """ball_escape_cd19_scale multiplies low_clone_cd19 for B-ALL only (mutational CD19 loss
    in leukaemia, CD19-dim heterogeneity in lymphoma); 1 gives the shared value back."""
    from cartsim import parameter_sets as psets
    from cartsim.model.clones import C
    from cartsim.model.tumour import clone_param_index

    k1 = clone_param_index.py_func(1, 0) + C.cd19
    k0 = clone_param_index.py_func(0, 0) + C.cd19
    lbcl = Cohort("lbcl", weight_kg=[70.0], age_y=[60.0], tumour_volume_ml=[100.0])
    ball = _ball()

    def rel(cohort: Cohort, scale: float) -> float:
        ps = psets.ParameterSet("x", "test", {"ball_escape_cd19_scale": {"default": scale}})
        with psets.use(ps):
            p, _ = build(cohort, TISA, seed=1, variability=False)
        return float(p[0, k1] / p[0, k0])

    low = PARAMS["low_clone_cd19"].default
    assert rel(ball, 1.0) == pytest.approx(low) and rel(lbcl, 1.0) == pytest.approx(low)
    assert rel(ball, 0.2) == pytest.approx(0.2 * low)
    assert rel(lbcl, 0.2) == pytest.approx(low)  # lymphoma untouched
