"""Endpoint logic on constructed trajectories (no simulation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartsim.trial.endpoints import (
    Course,
    b_cell_aplasia,
    compute_endpoints,
    event_matrix,
    lbcl_progression,
    pk_metrics,
    relapse_after_response,
    time_to_event,
)
from cartsim.trial.outcomes import decide_deaths

DAYS = np.arange(-5, 121)


def test_pk_metrics_cmax_tmax_auc_and_missing_samples() -> None:
    days = np.arange(-5, 40)
    c = np.zeros((2, days.size))
    # triangle rising 0→100 over days 0..10, falling to 0 at day 20
    up = (days >= 0) & (days <= 10)
    c[0, up] = 10.0 * days[up]
    down = (days > 10) & (days <= 20)
    c[0, down] = 100.0 - 10.0 * (days[down] - 10)
    c[0, days > 28] = 1e6  # outside the 0–28 window: ignored
    c[1] = np.nan  # a failed solve: no samples
    cmax, tmax, auc = pk_metrics(days, c)
    assert cmax[0] == 100.0 and tmax[0] == 10.0
    assert auc[0] == pytest.approx(0.5 * 20 * 100)
    assert np.isnan(cmax[1]) and np.isnan(tmax[1]) and np.isnan(auc[1])
    # death on day 5: only samples through day 5 count
    c2 = np.where(days <= 5, c[0], np.nan)[None, :]
    cmax2, tmax2, auc2 = pk_metrics(days, c2)
    assert cmax2[0] == 50.0 and tmax2[0] == 5.0 and auc2[0] == pytest.approx(125.0)


def test_relapse_day_and_phenotype() -> None:
    n = 4
    blasts = np.full((n, DAYS.size), 0.5)
    neg = np.zeros((n, DAYS.size))
    blasts[:, DAYS < 10] = 60.0  # everyone starts with disease
    blasts[0, DAYS >= 70] = 8.0  # CD19-positive relapse on day 70
    blasts[1, DAYS >= 50] = 12.0  # CD19-negative relapse on day 50
    neg[1, DAYS >= 50] = 0.9
    blasts[2, DAYS >= 40] = 4.9  # stays below 5 %: no relapse
    blasts[3, :] = 80.0  # never responded
    response_day = np.array([28.0, 28.0, 28.0, np.nan])
    day, pheno = relapse_after_response(DAYS, blasts, neg, response_day)
    assert day[0] == 70 and pheno[0] == "CD19-positive"
    assert day[1] == 50 and pheno[1] == "CD19-negative"
    assert np.isnan(day[2]) and pheno[2] == ""
    assert np.isnan(day[3]) and pheno[3] == ""  # non-responders cannot relapse


def test_a_myeloid_relapse_is_a_lineage_switch_not_a_cd19_negative_one() -> None:
    n = 4
    blasts = np.full((n, DAYS.size), 80.0)
    blasts[:, (DAYS >= 20) & (DAYS < 60)] = 0.0
    neg = np.zeros((n, DAYS.size))
    switch = np.zeros((n, DAYS.size))
    neg[0], switch[0] = 1.0, 0.9  # myeloid relapse (every myeloid cell is CD19-negative)
    neg[1], switch[1] = 0.9, 0.3  # mostly B-lineage CD19-negative: not a switch
    switch[2] = np.nan  # no tumour at the site read: treated as no switched cells
    response_day = np.full(n, 28.0)
    day, pheno = relapse_after_response(DAYS, blasts, neg, response_day,
                                        switch_fraction=switch)
    assert list(pheno) == ["lineage switch", "CD19-negative", "CD19-positive",
                           "CD19-positive"]
    assert np.all(day == 60)
    # without the readout (courses written before it): the two-way phenotype as before
    _, old = relapse_after_response(DAYS, blasts, neg, response_day)
    assert list(old) == ["CD19-negative", "CD19-negative", "CD19-positive", "CD19-positive"]


def test_time_to_event_censoring() -> None:
    event = np.array([50.0, np.nan, 400.0, 30.0])
    censor = np.array([365.0, 200.0, 365.0, 365.0])
    origin = np.array([0.0, 0.0, 0.0, np.nan])
    t, e = time_to_event(event, censor, origin)
    assert t[0] == 50 and e[0] == 1
    assert t[1] == 200 and e[1] == 0  # no event: censored at last follow-up
    assert t[2] == 365 and e[2] == 0  # event after the end of follow-up is not seen
    assert np.isnan(t[3]) and e[3] == 0  # not at risk (e.g. DOR of a non-responder)
    t2, _ = time_to_event(np.array([91.0]), np.array([365.0]), np.array([28.0]))
    assert t2[0] == 63


def test_lbcl_progression_from_nadir() -> None:
    days = np.arange(-5, 100)
    v = np.full((3, days.size), 50.0)
    v[0, days >= 0] = 50.0 * np.exp(-0.2 * days[days >= 0]) + 0.0
    v[0, days >= 60] = 0.5 * np.exp(0.1 * (days[days >= 60] - 60))  # regrowth from ~0
    v[1, days >= 0] = 50.0 * 1.01 ** days[days >= 0]  # slow steady growth from baseline
    v[2, days >= 0] = 0.0
    prog = lbcl_progression(days, v)
    # patient 0: first day ≥ 1.5 × nadir and ≥ 1 mL: 0.5·e^{0.1(d-60)} ≥ 1 → d ≥ 67
    assert prog[0] == 67
    # patient 1: ≥ 1.5 × its day-0 nadir (50) → 1.01^d ≥ 1.5 → d = 41
    assert prog[1] == 41
    assert np.isnan(prog[2])


def test_b_cell_aplasia_duration_and_censoring() -> None:
    days = np.arange(-5, 200)
    b = np.full((3, days.size), 100.0)
    b[0, (days >= 5) & (days < 90)] = 2.0  # aplasia day 5, recovery day 90
    b[1, days >= 7] = 1.0  # aplasia from day 7, ongoing
    onset, dur, ongoing = b_cell_aplasia(days, b, b[:, 0], np.array([199.0, 150.0, 199.0]))
    assert onset[0] == 5 and dur[0] == 85 and ongoing[0] == 0
    assert onset[1] == 7 and dur[1] == 143 and ongoing[1] == 1
    assert np.isnan(onset[2]) and np.isnan(dur[2]) and ongoing[2] == 0


def test_b_cell_aplasia_ignores_a_rebound_before_the_assessment_window() -> None:
    # the lymphodepletion nadir (day 0-5), B cells back above the threshold on days 6-12
    # (output recovering before the CAR-T peak), cleared again from day 13, back on day 150
    days = np.arange(-5, 200)
    b = np.full((1, days.size), 100.0)
    b[0, (days >= 0) & (days < 6)] = 5.0
    b[0, (days >= 13) & (days < 150)] = 1.0
    onset, dur, ongoing = b_cell_aplasia(days, b, b[:, 0], np.array([199.0]),
                                         recovery_from_day=28.0)
    assert onset[0] == 0 and dur[0] == 150 and ongoing[0] == 0
    # counted from the day after onset (0: the rule before session 29) the blip ends it
    onset, dur, ongoing = b_cell_aplasia(days, b, b[:, 0], np.array([199.0]))
    assert onset[0] == 0 and dur[0] == 6


def test_event_matrix_sums_per_patient_day_and_tolerates_missing_names() -> None:
    ev = pd.DataFrame({"patient_id": [3, 3, 5], "day": [0, 0, 2],
                       "event": ["tocilizumab"] * 3, "value": [8.0, 4.0, 1.0], "unit": "mg"})
    m = event_matrix(ev, np.array([3, 5]), np.arange(-5, 5), "tocilizumab")
    assert m is not None and m[0, 5] == 12.0 and m[1, 7] == 1.0 and m.sum() == 13.0
    assert event_matrix(ev, np.array([3, 5]), np.arange(-5, 5), "vasopressors") is None


def _course(n: int, days: np.ndarray) -> dict[str, np.ndarray]:
    shape = (n, days.size)
    return {
        "cart_cells_per_ul": np.ones(shape), "transgene_copies_per_ug": np.ones(shape),
        "tumour_cells": np.full(shape, 1e6), "marrow_blast_pct": np.full(shape, 0.1),
        "mrd_fraction": np.full(shape, 1e-6), "spd_cm2": np.full(shape, np.nan),
        "cd19_negative_tumour_fraction": np.zeros(shape), "b_cells_per_ul": np.ones(shape),
        "igg_mg_dl": np.full(shape, 800.0), "temperature_c": np.full(shape, 37.0),
        "map_mmhg": np.full(shape, 85.0), "spo2_pct": np.full(shape, 98.0),
        "encephalopathy": np.zeros(shape), "ice_score": np.full(shape, 10.0),
        "anc_per_ul": np.full(shape, 2000.0), "platelets_per_ul": np.full(shape, 150e3),
        "hemoglobin_g_dl": np.full(shape, 12.0),
    }


def test_compute_endpoints_death_censors_everything_after_it() -> None:
    days = np.arange(-5, 200)
    x = _course(3, days)
    x["marrow_blast_pct"][:, days < 20] = 50.0
    # patient 1: relapse on day 100, blasts ≥ 90 % from day 120 → progression death on day 149
    x["marrow_blast_pct"][1, days >= 100] = 30.0
    x["marrow_blast_pct"][1, days >= 120] = 95.0
    # patient 2: refractory shock (MAP < 0.4 × 85) on days 10–11 → toxicity death on day 11
    x["map_mmhg"][2, (days >= 10) & (days <= 11)] = 30.0
    x["temperature_c"][:, (days >= 2) & (days <= 4)] = 39.0
    x["temperature_c"][2, (days >= 10) & (days <= 11)] = 39.5
    course = Course(np.array([0, 1, 2]), days, x)
    cov = {"age_y": np.array([30.0, 30.0, 30.0]), "weight_kg": np.full(3, 70.0)}
    death = {"infection_base_hazard": 0.0, "ball_death_hazard": 0.0}  # the 30-day rule
    table, grades = compute_endpoints(
        course, pd.DataFrame(columns=["patient_id", "day", "event", "value", "unit"]), cov,
        disease="b-all", seed=0, follow_up_days=180, assessment_days=[28, 91],
        protocol_grades=False, death_overrides=death)
    t = table.set_index("patient_id")
    assert t.loc[0, "best_response"] == "CR" and t.loc[0, "efs_event"] == 0
    assert t.loc[0, "os_days"] == 180 and t.loc[0, "last_day"] == 180
    assert t.loc[1, "relapse_day"] == 100 and t.loc[1, "efs_days"] == 100
    assert t.loc[1, "death_cause"] == "progression" and t.loc[1, "death_day"] == 149
    assert t.loc[1, "os_days"] == 149 and t.loc[1, "os_event"] == 1
    assert t.loc[1, "dor_days"] == 100 - 28 and t.loc[1, "dor_event"] == 1
    # survival after relapse: from the relapse day, only for patients who relapsed
    assert t.loc[1, "prs_days"] == 149 - 100 and t.loc[1, "prs_event"] == 1
    assert np.isnan(t.loc[0, "prs_days"]) and t.loc[0, "prs_event"] == 0
    assert t.loc[2, "death_cause"] == "toxicity" and t.loc[2, "death_day"] == 11
    # disease-specific survival: the progression death is an event, the toxicity death
    # censors on its day, the survivor is censored at the end of follow-up
    assert t.loc[1, "dss_days"] == 149 and t.loc[1, "dss_event"] == 1
    assert t.loc[2, "dss_days"] == 11 and t.loc[2, "dss_event"] == 0
    assert t.loc[0, "dss_days"] == 180 and t.loc[0, "dss_event"] == 0
    assert t.loc[2, "response_d28"] == "NE" and t.loc[2, "responder"] == 0
    assert t.loc[2, "efs_days"] == 11 and t.loc[2, "efs_event"] == 1
    assert t.loc[2, "mrd_d28"] == "not_done"
    # physiology-graded CRS: fever days 2–4 → grade ≥ 1 from day 2 for everyone alive
    assert (t["crs_onset_day"] == 2).all() and (t["crs_max_grade"] >= 1).all()
    # fever with MAP 40 (deficit 25 mmHg → 2 vasopressors): ASTCT grade 4
    assert t.loc[2, "crs_max_grade"] == 4 and t.loc[0, "crs_max_grade"] == 1
    # onset day 2, grade 4 (on the trial's scale, ASTCT here) first on day 10
    assert t.loc[2, "crs_onset_to_grade4_days"] == 8
    assert np.isnan(t.loc[0, "crs_onset_to_grade4_days"])
    # the highest temperature while alive: 39.5 °C on days 10-11 for patient 2 (dead on day 11)
    assert t.loc[2, "temperature_max_c"] == 39.5 and t.loc[0, "temperature_max_c"] == 39.0
    # days 2-4 are the episode; the fever of days 10-11 is a second one (duration: first episode)
    assert t.loc[2, "crs_duration_days"] == 3
    assert (t["crs_resolved"] == 1).all()  # the first episode ended (days 5-6 lived at 0)
    assert grades["crs_grade"].shape == (3, 200)


def test_infection_deaths_follow_neutropenia_and_are_keyed() -> None:
    days = np.arange(0, 60)
    n = 4000
    anc = np.full((n, days.size), 2000.0)
    anc[: n // 2, :30] = 100.0  # half the patients neutropenic for 30 days
    igg = np.full((n, days.size), 800.0)
    pid = np.arange(n)
    common = dict(disease="b-all", age_y=np.full(n, 30.0),
                  marrow_blast_pct=np.zeros((n, days.size)),
                  tumour_volume_ml=np.zeros((n, days.size)),
                  map_mmhg=np.full((n, days.size), 85.0), spo2_pct=np.full((n, days.size), 98.0),
                  anc_per_ul=anc, igg_mg_dl=igg,
                  params={"infection_base_hazard": 1e-3, "neutropenia_hazard_ratio": 20.0})
    d = decide_deaths(days, pid, 5, **common)
    neut = np.isfinite(d.day[: n // 2]).mean()
    normal = np.isfinite(d.day[n // 2:]).mean()
    # expected: 1 − exp(−(30·0.02 + 30·0.001)) ≈ 0.47 vs 1 − exp(−60·0.001) ≈ 0.058
    assert 0.42 < neut < 0.52 and 0.04 < normal < 0.08
    assert set(d.cause[np.isfinite(d.day)]) == {"infection"}
    # the same patients in another grouping get the same deaths
    half = decide_deaths(days, pid[::2], 5, **{**common, "age_y": np.full(n // 2, 30.0),
                                                "marrow_blast_pct": common["marrow_blast_pct"][::2],
                                                "tumour_volume_ml": common["tumour_volume_ml"][::2],
                                                "map_mmhg": common["map_mmhg"][::2],
                                                "spo2_pct": common["spo2_pct"][::2],
                                                "anc_per_ul": anc[::2], "igg_mg_dl": igg[::2]})
    np.testing.assert_array_equal(half.day, d.day[::2])


def test_infection_episodes_follow_neutropenia_respect_the_gap_and_are_keyed() -> None:
    from cartsim.trial.outcomes import infection_episodes

    n, days = 4000, np.arange(-5, 91)
    pid = np.arange(n)
    anc = np.full((n, days.size), 3000.0)
    anc[: n // 2, 5:35] = 100.0  # first half neutropenic for 30 days
    igg = np.full((n, days.size), 800.0)
    last = np.full(n, 90.0)
    hr = {"infection_any_neutropenia_hazard_ratio": 25.0}  # the mechanism, not the default
    count, first = infection_episodes(days, pid, 3, anc, igg, last, hr)
    neut, normal = count[: n // 2], count[n // 2:]
    assert neut.mean() > 3 * normal.mean() > 0  # hazard ratio 25 while neutropenic
    assert np.all(np.isnan(first) == (count == 0))
    assert np.nanmin(first) >= 0
    # at most one onset per 14-day window: ≤ ceil(91 / 14) episodes
    assert count.max() <= 7
    again, _ = infection_episodes(days, pid, 3, anc, igg, last, hr)
    assert np.array_equal(count, again)
    sub, _ = infection_episodes(days, pid[100:200], 3, anc[100:200], igg[100:200], last[100:200],
                                hr)
    assert np.array_equal(sub, count[100:200])  # keyed per patient, not per cohort
    dead_early, _ = infection_episodes(days, pid, 3, anc, igg, np.full(n, 2.0), hr)
    assert dead_early.sum() < count.sum()  # days after death are not at risk


def test_endpoint_families_are_a_registry_with_their_own_parameters() -> None:
    from cartsim.params import markdown_table
    from cartsim.trial.endpoints import ENDPOINT_FAMILIES, ENDPOINT_PARAMS

    names = [f.name for f in ENDPOINT_FAMILIES]
    assert names == ["response", "survival", "toxicity", "cytopenia", "hlh_tls",
                     "b_cell_aplasia", "kinetics", "procedures"]
    assert sum(len(f.params) for f in ENDPOINT_FAMILIES) == len(ENDPOINT_PARAMS)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "trial.md").read_text("utf-8")
    for f in ENDPOINT_FAMILIES:
        assert f"`{f.compute.__name__}`" in docs
        if len(f.params):
            assert markdown_table(f.params) in docs, f.name


def test_a_family_parameter_changes_only_its_own_columns() -> None:
    from cartsim.trial.endpoints import Course, compute_endpoints

    days = np.arange(-5, 61)
    n = 2
    x = {k: np.full((n, days.size), v) for k, v in {
        "cart_cells_per_ul": 10.0, "transgene_copies_per_ug": 100.0, "marrow_blast_pct": 0.0,
        "mrd_fraction": 0.0, "tumour_cells": 0.0, "spd_cm2": 0.0, "anc_per_ul": 800.0,
        "platelets_per_ul": 1e5, "hemoglobin_g_dl": 10.0, "b_cells_per_ul": 100.0,
        "cd19_negative_tumour_fraction": 0.0, "map_mmhg": 80.0, "spo2_pct": 98.0,
        "igg_mg_dl": 700.0, "temperature_c": 37.0, "encephalopathy": 0.0, "ice_score": 10.0,
    }.items()}
    x["cart_cells_per_ul"][:, days > 20] = 1.0
    course = Course(np.arange(n), days, x)
    cov = {"age_y": np.array([10.0, 30.0])}
    kw = dict(disease="b-all", seed=1, follow_up_days=60, assessment_days=[28],
              protocol_grades=False)
    base, _ = compute_endpoints(course, None, cov, **kw)
    other, _ = compute_endpoints(course, None, cov, params={"pk_end_day": 10.0}, **kw)
    changed = [c for c in base.columns if not base[c].equals(other[c])]
    assert changed == ["cart_auc0_28", "copies_auc0_28"]


def test_infections_rise_with_steroids_and_severe_crs_and_severity_follows_neutropenia() -> None:
    """Issue 14 item 4 (A19): steroids and CRS grade >= 3 raise the episode hazard; neutropenic
    episodes are more often severe; every draw is keyed per patient (chunk invariant)."""
    from cartsim.trial.outcomes import infection_course

    n, days = 6000, np.arange(-5, 61)
    post = int((days >= 0).sum())
    pid = np.arange(n)
    anc = np.full((n, days.size), 3000.0)
    igg = np.full((n, days.size), 800.0)
    last = np.full(n, 60.0)
    base = infection_course(days, pid, 5, anc, igg, last)
    ster = np.zeros((n, post))
    ster[:, 3] = 20.0  # one dexamethasone day: hazard raised for 14 days after it
    crs = np.zeros((n, post))
    crs[:, 4] = 3.0
    with_ster = infection_course(days, pid, 5, anc, igg, last, steroid_dex_eq_mg=ster)
    with_crs = infection_course(days, pid, 5, anc, igg, last, crs_grade=crs)
    assert with_ster.count.mean() > 1.2 * base.count.mean() > 0
    assert with_crs.count.mean() > 1.2 * base.count.mean()
    # neutropenic for the whole window: more episodes and a larger severe share
    low = anc.copy()
    low[:, 5:] = 100.0
    hr = {"infection_any_neutropenia_hazard_ratio": 25.0}  # the mechanism, not the default
    neut = infection_course(days, pid, 5, low, igg, last, hr)
    assert neut.count.sum() > 3 * base.count.sum()
    assert neut.severe.sum() / neut.count.sum() > 1.5 * base.severe.sum() / base.count.sum()
    assert np.all(neut.severe <= neut.count)
    assert np.all(np.isnan(neut.first_severe_day) == (neut.severe == 0))
    part = infection_course(days, pid[1000:1500], 5, low[1000:1500], igg[1000:1500],
                            last[1000:1500], hr)
    assert np.array_equal(part.severe, neut.severe[1000:1500])
    assert np.array_equal(part.count, neut.count[1000:1500])


def test_lymphopenia_raises_infection_episodes_not_infection_deaths_and_windows_add_up() -> None:
    """Session 13: blood T cells below 200/µL multiply the episode hazard (the infections of
    days 29–90, Hill 2018) while the infection-death hazard is unchanged; episodes are counted
    per reporting window with the days at risk in it."""
    from cartsim.trial.outcomes import (
        DEATH_PARAMS,
        INFECTION_WINDOWS,
        death_params,
        infection_course,
        infection_hazard,
    )

    n, days = 6000, np.arange(-5, 121)
    pid = np.arange(n)
    anc = np.full((n, days.size), 3000.0)
    igg = np.full((n, days.size), 800.0)
    last = np.full(n, 120.0)
    last[:100] = 40.0  # died on day 40: not at risk after it
    t_ok = np.full((n, days.size), 600.0)
    t_low = t_ok.copy()
    t_low[:, (days >= 0) & (days <= 60)] = 50.0
    ok = infection_course(days, pid, 5, anc, igg, last, t_cells_per_ul=t_ok)
    low = infection_course(days, pid, 5, anc, igg, last, t_cells_per_ul=t_low)
    hr = DEATH_PARAMS["lymphopenia_hazard_ratio"].default
    assert hr > 1.0
    assert low.count.sum() > 2.0 * ok.count.sum() > 0
    for w in INFECTION_WINDOWS:
        assert np.all(low.window_count[w] >= 0)
        assert np.all(low.window_count[w] <= low.count)
        in_w = ((days >= w[0]) & (days <= w[1])).sum()
        assert np.all(low.window_days[w][100:] == in_w)
        assert np.all(low.window_days[w][:100] == ((days >= w[0]) & (days <= min(w[1], 40))).sum())
    assert sum(low.window_count[w] for w in INFECTION_WINDOWS).sum() <= low.count.sum()
    # the infection-death hazard keeps its own neutropenia multiplier (episodes have theirs)
    q = death_params(None)
    h = infection_hazard(np.array([[100.0]]), np.array([[800.0]]), 1.0, q)
    assert h[0, 0] == q["neutropenia_hazard_ratio"] != q["infection_any_neutropenia_hazard_ratio"]


def test_sanctuary_disease_is_read_by_response_relapse_and_mrd_endpoints() -> None:
    """Claims A6/A7: CNS/testicular (sanctuary) disease is visible. Patient 0 clears marrow and
    sanctuary (CR); patient 1 clears the marrow but keeps sanctuary disease (no CR, although
    MRD-negative in the marrow); patient 2 responds, then relapses in the sanctuary alone on day
    100 (an isolated CNS relapse); patient 3 relapses in both on day 120."""
    days = np.arange(-5, 200)
    x = _course(4, days)
    x["marrow_blast_pct"][:, days < 20] = 50.0
    cns = np.zeros((4, days.size))
    cns[:, days < 20] = 1e9
    cns[1, :] = 8e8
    cns[2, days >= 100] = 2e9
    cns[3, days >= 120] = 2e9
    x["marrow_blast_pct"][3, days >= 120] = 30.0
    x["cns_tumour_cells"] = cns
    course = Course(np.arange(4), days, x)
    cov = {"age_y": np.full(4, 30.0), "weight_kg": np.full(4, 70.0)}
    kw = dict(disease="b-all", seed=0, follow_up_days=180, assessment_days=[28, 91],
              protocol_grades=False, death_overrides={"infection_base_hazard": 0.0})
    ev = pd.DataFrame(columns=["patient_id", "day", "event", "value", "unit"])
    t = compute_endpoints(course, ev, cov, **kw)[0].set_index("patient_id")
    assert list(t["cns_positive_d0"]) == [1, 1, 1, 1]
    assert list(t["cns_d28"]) == ["negative", "positive", "negative", "negative"]
    assert list(t["best_response"]) == ["CR", "NR", "CR", "CR"]
    # CNS remission: the sanctuary cleared at an assessment (patient 1 never clears it)
    assert list(t["cns_remission"]) == [1, 0, 1, 1]
    assert t.loc[1, "mrd_d28"] == "negative" and t.loc[1, "mrd_negative_remission"] == 0
    assert t.loc[0, "relapse"] == 0 and t.loc[0, "relapse_site"] == ""
    assert t.loc[2, "relapse_day"] == 100 and t.loc[2, "relapse_site"] == "CNS"
    assert t.loc[3, "relapse_day"] == 120 and t.loc[3, "relapse_site"] == "combined"
    assert t.loc[2, "efs_days"] == 100 and t.loc[2, "efs_event"] == 1
    # a threshold above the sanctuary load makes it invisible again (the old behaviour)
    t2 = compute_endpoints(course, ev, cov, params={"cns_positive_cells": 1e12},
                           **kw)[0].set_index("patient_id")
    assert list(t2["best_response"]) == ["CR", "CR", "CR", "CR"]
    assert t2.loc[2, "relapse"] == 0


def test_episode_duration_is_the_first_episode_until_it_resolves() -> None:
    """CRS/ICANS duration runs from onset until ``resolution_days`` days at grade 0: a
    one-day gap does not end it, a late low-grade fever months later does not lengthen it."""
    from cartsim.trial.endpoints import episode_stats

    days = np.arange(0, 12)
    g = np.array([[0, 1, 2, 1, 0, 1, 0, 0, 0, 1, 1, 0],
                  [0] * 12,
                  [1] * 12,
                  [0] * 11 + [1]], dtype=float)
    mx, onset, dur = episode_stats(g, days, 2)
    assert list(mx) == [2, 0, 1, 1]
    np.testing.assert_array_equal(onset, [1.0, np.nan, 0.0, 11.0])
    assert list(dur) == [4.0, 0.0, 12.0, 1.0]
    assert list(episode_stats(g, days, 1)[2]) == [3.0, 0.0, 12.0, 1.0]
    assert list(episode_stats(g, days, 4)[2]) == [6.0, 0.0, 12.0, 1.0]


def test_an_episode_is_resolved_only_in_days_the_patient_lived() -> None:
    """CRS resolution: the first episode must end in ``resolution_days`` grade-0 days the
    patient lived; CRS ongoing at death or at the end of follow-up is not resolved."""
    from cartsim.trial.endpoints import episode_resolved

    g = np.array([[0, 1, 2, 1, 0, 0, 0, 0],   # resolves on days 4-5
                  [0, 1, 3, 3, 0, 0, 0, 0],   # dies on day 4: grade 0 after death only
                  [0, 1, 1, 1, 1, 1, 1, 1],   # ongoing at the end of follow-up
                  [0, 1, 0, 1, 0, 0, 0, 0],   # a one-day gap does not end it
                  [0] * 8], dtype=float)       # no CRS
    alive = np.ones_like(g, dtype=bool)
    alive[1, 4:] = False
    assert list(episode_resolved(g, alive, 2)) == [1, 0, 0, 1, 0]
    alive[3, 5:] = False  # dies on the second grade-0 day: the resolution was not lived
    assert list(episode_resolved(g, alive, 2)) == [1, 0, 0, 0, 0]
    assert list(episode_resolved(g, alive, 1)) == [1, 0, 0, 1, 0]


def test_support_given_is_read_from_the_protocols_events() -> None:
    """G-CSF, IVIG, siltuximab, fluids, vasopressors and oxygen per patient, from the events a
    protocol recorded: patient 0 gets G-CSF on day 35 (after day 28) and IVIG on day 10;
    patient 1 G-CSF on day 15 only, a fluid bolus and one vasopressor on day 5, platelets on
    days 12 and 40; patient 2 mechanical ventilation (device 9) and siltuximab on day 6 and red
    cells on day 8."""
    days = np.arange(-5, 120)
    course = Course(np.arange(3), days, _course(3, days))
    cov = {"age_y": np.full(3, 30.0), "weight_kg": np.full(3, 70.0)}
    ev = pd.DataFrame({
        "patient_id": [0, 0, 1, 1, 1, 2, 2, 1, 1, 2],
        "day": [35, 10, 15, 5, 5, 6, 6, 12, 40, 8],
        "event": ["gcsf", "ivig", "gcsf", "fluid_bolus_ml", "vasopressors", "oxygen_device",
                  "siltuximab", "platelet_transfusion", "platelet_transfusion",
                  "rbc_transfusion"],
        "value": [1.0, 28.0, 1.0, 500.0, 1.0, 9.0, 770.0, 1.0, 1.0, 1.0],
        "unit": ["dose", "g", "dose", "mL", "agents", "code", "mg", "transfusion",
                 "transfusion", "transfusion"],
    })
    t = compute_endpoints(course, ev, cov, disease="b-all", seed=0, follow_up_days=110,
                          assessment_days=[28], protocol_grades=False,
                          death_overrides={"infection_base_hazard": 0.0})[0]
    t = t.set_index("patient_id")
    assert list(t["gcsf_given"]) == [1, 1, 0] and list(t["gcsf_after_d28"]) == [1, 0, 0]
    assert list(t["ivig_given"]) == [1, 0, 0] and list(t["ivig_after_d28"]) == [0, 0, 0]
    assert list(t["hypotension_treated"]) == [0, 1, 0]
    assert list(t["vasopressors_given"]) == [0, 1, 0]
    assert list(t["oxygen_given"]) == [0, 0, 1] and list(t["ventilated"]) == [0, 0, 1]
    assert list(t["siltuximab_given"]) == [0, 0, 1]
    assert list(t["platelet_transfusions"]) == [0, 2, 0]
    assert list(t["platelet_transfusion_given"]) == [0, 1, 0]
    assert list(t["platelet_transfusion_after_d28"]) == [0, 1, 0]
    assert list(t["rbc_transfusions"]) == [0, 0, 1]
    assert list(t["rbc_transfusion_after_d28"]) == [0, 0, 0]
    # any transfusion by phase: patient 1 on days 12 and 40, patient 2 on day 8
    assert list(t["transfusion_d0_30"]) == [0, 1, 1]
    assert list(t["transfusion_d31_180"]) == [0, 1, 0]
    assert list(t["transfusion_d91_180"]) == [0, 0, 0]
    assert list(t["transfusion_d0_180"]) == [0, 1, 1]
    # without events (no protocol) nothing was given
    none = compute_endpoints(course, ev.iloc[:0], cov, disease="b-all", seed=0,
                             follow_up_days=110, assessment_days=[28], protocol_grades=False,
                             death_overrides={"infection_base_hazard": 0.0})[0]
    assert none[["gcsf_given", "ivig_given", "vasopressors_given", "ventilated"]].sum().sum() == 0


def test_derived_readouts_are_computed_once_and_only_when_read() -> None:
    """The endpoint families' masked/sliced readouts (session 24): a view computes a key on
    first access, keeps it, and answers membership and iteration from its source alone."""
    from cartsim.trial.endpoints import _Derived

    calls: list[str] = []

    def double(k: str, v: np.ndarray) -> np.ndarray:
        calls.append(k)
        return v * 2

    src = {"a": np.arange(3.0), "b": np.ones(2)}
    view = _Derived(src, double)
    assert "a" in view and "c" not in view and list(view) == ["a", "b"] and len(view) == 2
    assert calls == []
    first = view["a"]
    assert view["a"] is first and calls == ["a"]
    np.testing.assert_array_equal(first, [0.0, 2.0, 4.0])
    with pytest.raises(KeyError):
        view["c"]


def test_older_crs_scales_read_organ_toxicity_coagulopathy_and_febrile_neutropenia() -> None:
    """Fever of 39 °C on days 2-4 in five adults. Patient 0: nothing else (Penn 1). 1: ANC
    300/µL through the fever (febrile neutropenia, admitted: Penn 2; ASTCT and Lee stay 1).
    2: creatinine twice its baseline on day 3 (CTCAE grade 2: Penn 2, Lee 2; CTCAE v4.03 stays
    1, its grade 3 needing an organ toxicity at which hospitalisation is indicated).
    3: fibrinogen 120 mg/dL on day 3 (cryoprecipitate: Penn 3). 4: the same creatinine rise on
    day 30, outside any CRS episode: not attributed to CRS (Penn 1)."""
    days = np.arange(-5, 60)
    x = _course(5, days)
    x["temperature_c"][:, (days >= 2) & (days <= 4)] = 39.0
    x["creatinine_mg_dl"] = np.full(x["anc_per_ul"].shape, 0.5)
    x["fibrinogen_mg_dl"] = np.full(x["anc_per_ul"].shape, 300.0)
    x["anc_per_ul"][1, (days >= 0) & (days <= 10)] = 300.0
    x["creatinine_mg_dl"][2, days == 3] = 1.0
    x["fibrinogen_mg_dl"][3, days == 3] = 120.0
    x["creatinine_mg_dl"][4, days == 30] = 1.0
    course = Course(np.arange(5), days, x)
    cov = {"age_y": np.full(5, 30.0), "weight_kg": np.full(5, 70.0)}
    t = compute_endpoints(course, pd.DataFrame(columns=["patient_id", "day", "event", "value",
                                                        "unit"]),
                          cov, disease="b-all", seed=0, follow_up_days=50,
                          assessment_days=[28], protocol_grades=False,
                          death_overrides={"infection_base_hazard": 0.0})[0]
    t = t.set_index("patient_id")
    assert list(t["crs_max_grade_astct"]) == [1, 1, 1, 1, 1]
    assert list(t["crs_max_grade_penn"]) == [1, 2, 2, 3, 1]
    assert list(t["crs_max_grade_lee2014"]) == [1, 1, 2, 1, 1]
    assert list(t["crs_max_grade_ctcae_v4.03"]) == [1, 2, 1, 1, 1]


def test_emergent_cytopenia_grades_count_only_what_is_worse_than_before_treatment() -> None:
    """Trials count a cytopenia adverse event when it emerges or worsens after treatment (ICH
    E9): a grade-3 anaemia present before lymphodepletion that stays grade 3 is no grade-3
    adverse event, a fall to a worse grade is, and so is any grade reached from normal."""
    days = np.arange(-5, 60)
    x = _course(3, days)
    x["marrow_blast_pct"][:, days < 20] = 50.0
    # patient 0: Hb 7.5 (grade 3) and ANC 700 (grade 3) from before lymphodepletion throughout
    x["hemoglobin_g_dl"][0] = 7.5
    x["anc_per_ul"][0] = 700.0
    # patient 1: the same start, then ANC 300 (grade 4) on days 3-9
    x["hemoglobin_g_dl"][1] = 7.5
    x["anc_per_ul"][1] = 700.0
    x["anc_per_ul"][1, (days >= 3) & (days <= 9)] = 300.0
    # patient 2: normal before; Hb 7.0 and platelets 20,000 on days 5-12
    x["hemoglobin_g_dl"][2, (days >= 5) & (days <= 12)] = 7.0
    x["platelets_per_ul"][2, (days >= 5) & (days <= 12)] = 20e3
    cov = {"age_y": np.full(3, 10.0), "weight_kg": np.full(3, 30.0)}

    def table(d: np.ndarray) -> pd.DataFrame:
        """The endpoints of the three patients on days ``d`` of their courses."""
        keep = np.isin(days, d)
        course = Course(np.arange(3), days[keep], {k: v[:, keep] for k, v in x.items()})
        return compute_endpoints(
            course, pd.DataFrame(columns=["patient_id", "day", "event", "value", "unit"]),
            cov, disease="b-all", seed=0, follow_up_days=50, assessment_days=[28],
            protocol_grades=False,
            death_overrides={"infection_base_hazard": 0.0, "ball_death_hazard": 0.0}
        )[0].set_index("patient_id")

    t = table(days)
    assert list(t["anemia_max_grade"]) == [3, 3, 3]
    assert list(t["anemia_emergent_grade"]) == [0, 0, 3]
    assert list(t["neutropenia_max_grade"]) == [3, 4, 0]
    assert list(t["neutropenia_emergent_grade"]) == [0, 4, 0]
    assert list(t["thrombocytopenia_emergent_grade"]) == [0, 0, 4]
    # a course without pre-treatment days has no baseline: every grade counts
    t2 = table(days[days >= 0])
    assert list(t2["anemia_emergent_grade"]) == list(t2["anemia_max_grade"])


def test_a_runaway_count_is_graded_not_rejected() -> None:
    """A count above a CTCAE grader's domain (a parameter set whose marrow feedback overshoots:
    platelets past 10⁷/µL the day before the simulator's plausibility check stops the patient)
    is a normal count, grade 0, and the trial's endpoints are computed for everyone (before
    session 42 the whole trial stopped with "invalid platelets_per_ul")."""
    days = np.arange(-5, 60)
    x = _course(2, days)
    x["marrow_blast_pct"][:, days < 20] = 50.0
    x["platelets_per_ul"][1, days >= 30] = 2e7
    x["anc_per_ul"][1, days >= 30] = 3e6
    x["hemoglobin_g_dl"][1, days >= 30] = 40.0
    x["platelets_per_ul"][0, (days >= 5) & (days <= 8)] = 20e3  # grade 4 (< 25,000)
    course = Course(np.array([0, 1]), days, x)
    cov = {"age_y": np.array([30.0, 30.0]), "weight_kg": np.full(2, 70.0)}
    table, _ = compute_endpoints(
        course, pd.DataFrame(columns=["patient_id", "day", "event", "value", "unit"]), cov,
        disease="b-all", seed=0, follow_up_days=50, assessment_days=[28],
        protocol_grades=False,
        death_overrides={"infection_base_hazard": 0.0, "ball_death_hazard": 0.0})
    t = table.set_index("patient_id")
    assert t.loc[1, "thrombocytopenia_max_grade"] == 0
    assert t.loc[1, "neutropenia_max_grade"] == 0 and t.loc[1, "anemia_max_grade"] == 0
    assert t.loc[0, "thrombocytopenia_max_grade"] == 4
