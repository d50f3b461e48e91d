"""Allogeneic HSCT consolidation (review A1, A10; issue 11 item 5): conditioning at every site,
CAR-T ablation, graft-versus-leukaemia from the gvl add-on, transplant-related mortality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cartsim.population import Cohort
from cartsim.products import get_product
from cartsim.simulation import simulate
from cartsim.trial.outcomes import DEATH_PARAMS, HsctProcedure, decide_deaths


@pytest.fixture(scope="module")
def runs():  # type: ignore[no-untyped-def]
    """One B-ALL patient with overt CNS disease: no HSCT, HSCT without graft, HSCT."""
    cohort = Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([10.0]),
                    marrow_blasts_pct=np.array([20.0]), cns_disease=np.array([1.0]))
    prod = get_product("tisagenlecleucel")
    kw = {"days": 150, "seed": 3, "variability": False}
    out = {"none": simulate(cohort, prod, **kw)}
    for name, graft in (("no_graft", False), ("graft", True)):
        proc = HsctProcedure(40, if_mrd_below=1.0, graft=graft)
        out[name] = simulate(cohort, prod, procedures=[proc], **kw)
    return out


def _at(res, col: str, day: int) -> float:  # type: ignore[no-untyped-def]
    t = res.trajectories
    return float(t.loc[t["day"] == day, col].iloc[0])


@pytest.mark.slow  # the shared fixture compiles the GVL add-on model (~20 s)
def test_hsct_brings_the_gvl_addon_only_when_given(runs) -> None:  # type: ignore[no-untyped-def]
    assert "gvl" not in runs["none"].meta["mechanisms"]
    assert "gvl" in runs["graft"].meta["mechanisms"]
    ev = runs["graft"].events
    assert list(ev.loc[ev["event"] == "hsct", "day"]) == [40]


@pytest.mark.slow  # the shared fixture compiles the GVL add-on model (~20 s)
def test_conditioning_kills_at_every_site_and_ablates_car_t(runs) -> None:  # type: ignore[no-untyped-def]
    a, b = runs["none"], runs["no_graft"]
    # until the transplant the runs are the same patient
    assert _at(b, "cns_tumour_cells", 39) == pytest.approx(
        _at(a, "cns_tumour_cells", 39), rel=1e-3)  # the add-on state changes solver steps
    # the sanctuary (CNS) loses ~3 log at conditioning (it was spared before issue 11)
    assert _at(b, "cns_tumour_cells", 41) < 1e-2 * _at(a, "cns_tumour_cells", 41)
    assert _at(b, "cart_cells_per_ul", 41) == 0.0 < _at(a, "cart_cells_per_ul", 41)


@pytest.mark.slow  # the shared fixture compiles the GVL add-on model (~20 s)
def test_graft_versus_leukaemia_kills_what_conditioning_left(runs) -> None:  # type: ignore[no-untyped-def]
    ng, g = runs["no_graft"], runs["graft"]
    assert _at(g, "tumour_cells", 40) == pytest.approx(_at(ng, "tumour_cells", 40), rel=1e-3)
    tot = [_at(r, "tumour_cells", 150) + _at(r, "cns_tumour_cells", 150) for r in (ng, g)]
    assert tot[1] < 0.1 * tot[0]


def test_transplant_related_mortality_follows_its_hazard() -> None:
    n, days = 4000, np.arange(0, 366)
    z = np.full((n, days.size), 1.0)
    kw = {"days": days, "patient_id": np.arange(n), "seed": 5, "disease": "b-all",
          "age_y": np.full(n, 10.0), "marrow_blast_pct": z * 0.0, "tumour_volume_ml": z * 0.0,
          "map_mmhg": z * 80.0, "spo2_pct": z * 98.0, "anc_per_ul": z * 3000.0,
          "igg_mg_dl": z * 900.0, "params": {"infection_base_hazard": 0.0}}
    none = decide_deaths(**kw)
    assert not np.isfinite(none.day).any()
    d = decide_deaths(**kw, hsct_day=np.where(np.arange(n) < n // 2, 60.0, np.nan))
    died = np.isfinite(d.day)
    assert set(d.cause[died]) == {"transplant"}
    assert not died[n // 2:].any() and (d.day[died] >= 60).all()
    # cumulative hazard 8e-4 × 100 × (1 − e^(−305/100)) ≈ 0.076 → ≈ 7.3 % deaths (session 46:
    # Xu 2021's pooled 8 % after consolidative HSCT following CD19 CAR-T)
    haz = DEATH_PARAMS["trm_hazard"].default
    decay = DEATH_PARAMS["trm_decay_days"].default
    assert haz * decay == pytest.approx(0.08)
    expected = 1 - np.exp(-haz * decay * (1 - np.exp(-305 / decay)))
    assert died[: n // 2].mean() == pytest.approx(expected, abs=0.02)


def test_transplant_related_mortality_rises_with_age_above_twenty() -> None:
    """Session 22: trm_hazard × (1 + trm_age_per_decade · max(age − 20, 0)/10); children and
    adolescents keep the hazard, a 40-year-old has three times it, and 0 switches it off."""
    from cartsim.trial.outcomes import DEATH_PARAMS

    slope = DEATH_PARAMS["trm_age_per_decade"].default
    ref = DEATH_PARAMS["trm_age_ref_y"].default
    assert slope > 0.0 and ref == 20.0
    n, days = 6000, np.arange(0, 366)
    z = np.full((n, days.size), 1.0)
    ages = np.repeat([10.0, 20.0, 40.0], n // 3)
    kw = {"days": days, "patient_id": np.arange(n), "seed": 8, "disease": "b-all",
          "age_y": ages, "marrow_blast_pct": z * 0.0, "tumour_volume_ml": z * 0.0,
          "map_mmhg": z * 80.0, "spo2_pct": z * 98.0, "anc_per_ul": z * 3000.0,
          "igg_mg_dl": z * 900.0, "hsct_day": np.full(n, 0.0)}
    on = decide_deaths(**kw, params={"infection_base_hazard": 0.0})
    off = decide_deaths(**kw, params={"infection_base_hazard": 0.0, "trm_age_per_decade": 0.0})
    haz, decay = DEATH_PARAMS["trm_hazard"].default, DEATH_PARAMS["trm_decay_days"].default
    cum = haz * decay * (1 - np.exp(-365 / decay))
    for k, age in enumerate((10.0, 20.0, 40.0)):
        sl = slice(k * n // 3, (k + 1) * n // 3)
        died = np.isfinite(on.day[sl])
        factor = 1.0 + slope * max(age - ref, 0.0) / 10.0
        assert died.mean() == pytest.approx(1 - np.exp(-cum * factor), abs=0.025)
        if age <= ref:  # the keyed draws give the same deaths on the same days
            assert np.array_equal(on.day[sl], off.day[sl], equal_nan=True)
    # off: the age groups die alike
    rates = [np.isfinite(off.day[k * n // 3:(k + 1) * n // 3]).mean() for k in range(3)]
    assert max(rates) - min(rates) < 0.03


@pytest.mark.slow  # compiles the GVL add-on model (~20 s)
def test_graft_versus_leukaemia_holds_a_residue_but_not_an_overt_relapse() -> None:
    """Session 22 (model/gvl.py gvl_sat_cells): the donor cells kill a limited number of
    leukaemic cells a day. A transplant that leaves an overt leukaemia (1 log of conditioning
    on 60 % blasts) is outgrown with the saturation and held without it; a transplant of a
    low-burden leukaemia leaves a residue that GVL still holds far below the 5 % of a
    relapse."""
    prod = get_product("tisagenlecleucel")
    kw = {"days": 400, "seed": 3, "variability": False}

    def blasts(pct: float, sat: float) -> pd.Series:
        cohort = Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([10.0]),
                        marrow_blasts_pct=np.array([pct]))
        proc = HsctProcedure(2, if_mrd_below=1.0, log_kill=1.0, ablate_cart=True)
        t = simulate(cohort, prod, procedures=[proc], overrides={"gvl_sat_cells": sat},
                     **kw).trajectories
        return t.set_index("day")["marrow_blast_pct"]

    overt, overt_off = blasts(60.0, 1e10), blasts(60.0, 0.0)
    assert overt.loc[399] > 50.0  # outgrows the graft
    assert overt_off.loc[399] < 0.5 * overt.loc[399]  # a constant GVL hazard held it
    small = blasts(0.5, 1e10)
    assert small.loc[100:].max() < 0.5  # a residue is held


def test_a_second_allogeneic_transplant_carries_the_prior_hsct_factor() -> None:
    """Session 37: a patient with a prior allogeneic HSCT dies of a later one with the hazard
    × trm_prior_hsct_factor; transplant-naive patients keep theirs (the same keyed draws, so
    the same deaths on the same days), no prior_hsct column changes nothing, and factor 1
    switches it off."""
    from cartsim.trial.outcomes import DEATH_PARAMS

    factor = DEATH_PARAMS["trm_prior_hsct_factor"].default
    haz, decay = DEATH_PARAMS["trm_hazard"].default, DEATH_PARAMS["trm_decay_days"].default
    assert factor > 1.0
    n, days = 6000, np.arange(0, 366)
    z = np.full((n, days.size), 1.0)
    prior = (np.arange(n) % 2).astype(float)
    kw = {"days": days, "patient_id": np.arange(n), "seed": 11, "disease": "b-all",
          "age_y": np.full(n, 10.0), "marrow_blast_pct": z * 0.0, "tumour_volume_ml": z * 0.0,
          "map_mmhg": z * 80.0, "spo2_pct": z * 98.0, "anc_per_ul": z * 3000.0,
          "igg_mg_dl": z * 900.0, "hsct_day": np.full(n, 0.0)}
    quiet = {"infection_base_hazard": 0.0}
    on = decide_deaths(**kw, prior_hsct=prior, params=quiet)
    naive = decide_deaths(**kw, params=quiet)
    off = decide_deaths(**kw, prior_hsct=prior, params={**quiet, "trm_prior_hsct_factor": 1.0})
    first = prior == 0
    assert np.array_equal(on.day[first], naive.day[first], equal_nan=True)
    assert np.array_equal(off.day, naive.day, equal_nan=True)
    cum = haz * decay * (1 - np.exp(-365 / decay))
    died = np.isfinite(on.day)
    assert died[first].mean() == pytest.approx(1 - np.exp(-cum), abs=0.02)
    assert died[~first].mean() == pytest.approx(1 - np.exp(-cum * factor), abs=0.025)
    assert died[~first].mean() > died[first].mean() + 0.05
    # without a transplant a prior one kills nobody
    none = decide_deaths(**{**kw, "hsct_day": None}, prior_hsct=prior, params=quiet)
    assert not np.isfinite(none.day).any()


def test_a_salvage_transplant_after_a_consolidative_one_has_its_own_hazard() -> None:
    """Session 37: a second allogeneic HSCT within the course (``hsct_day2``) adds its own
    transplant-related hazard × trm_prior_hsct_factor; patients without one keep exactly
    their deaths."""
    from cartsim.trial.outcomes import DEATH_PARAMS

    factor = DEATH_PARAMS["trm_prior_hsct_factor"].default
    haz, decay = DEATH_PARAMS["trm_hazard"].default, DEATH_PARAMS["trm_decay_days"].default
    n, days = 6000, np.arange(0, 731)
    z = np.full((n, days.size), 1.0)
    kw = {"days": days, "patient_id": np.arange(n), "seed": 13, "disease": "b-all",
          "age_y": np.full(n, 10.0), "marrow_blast_pct": z * 0.0, "tumour_volume_ml": z * 0.0,
          "map_mmhg": z * 80.0, "spo2_pct": z * 98.0, "anc_per_ul": z * 3000.0,
          "igg_mg_dl": z * 900.0, "hsct_day": np.full(n, 60.0),
          "params": {"infection_base_hazard": 0.0}}
    second = np.arange(n) % 2 == 1
    one = decide_deaths(**kw)
    two = decide_deaths(**kw, hsct_day2=np.where(second, 365.0, np.nan))
    assert np.array_equal(one.day[~second], two.day[~second], equal_nan=True)
    # alive on day 365 after the first: the second transplant's deaths follow its hazard
    at_risk = second & ~(one.day <= 365)
    cum2 = haz * decay * (1 - np.exp(-365 / decay)) * factor
    cum1_tail = haz * decay * (np.exp(-305 / decay) - np.exp(-670 / decay))
    rate = (two.day[at_risk] > 365).mean()
    assert rate == pytest.approx(1 - np.exp(-(cum2 + cum1_tail)), abs=0.025)
    assert rate > (one.day[at_risk] > 365).mean() + 0.15
