"""Salvage and consolidation schedule items of a trial arm (issue 11 item 5): spec validation,
triggers read from the simulated state, and the direction of each item's effect on one
patient. Simulations use the core model (ASCT, re-infusion) except the drug item, which
compiles its add-on and is marked slow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cartsim.model.parameters import P
from cartsim.model.state import CART_BLOOD, CART_TISSUE, CLONE_STATES, N_STATES, S
from cartsim.population import Cohort
from cartsim.products import get_product
from cartsim.simulation import simulate
from cartsim.trial.outcomes import SALVAGE_PARAMS, decide_deaths
from cartsim.trial.procedures import (
    DrugCourse,
    ReinfusionCourse,
    SalvageCourse,
    TransplantCourse,
    Trigger,
)
from cartsim.trial.spec import SpecError, load_spec, validate_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _spec(schedule: list[dict], disease: str = "b-all", **top) -> dict:  # type: ignore[type-arg]
    return {"arms": [{"name": "a", "product": "tisagenlecleucel", "schedule": schedule}],
            "population": {"disease": disease, "size": 4}, **top}


def _problems(data: dict) -> list[str]:  # type: ignore[type-arg]
    with pytest.raises(SpecError) as e:
        validate_spec(data)
    return e.value.issues


# ------------------------------------------------------------------------------ validation
def test_every_example_spec_validates() -> None:
    files = sorted(EXAMPLES.glob("*.toml"))
    assert len(files) >= 4
    for f in files:
        load_spec(f)  # raises SpecError naming the field


def test_valid_schedule_items_parse() -> None:
    s = validate_spec(_spec([
        {"kind": "allo_hsct", "trigger": "mrd_negative_cr", "window": [28, 90],
         "delay_days": 30},
        {"kind": "reinfusion", "trigger": "relapse", "lymphodepletion": False},
        {"kind": "reinfusion", "trigger": "day", "day": 60, "dose": {"flat": 1e8}},
        {"kind": "drug", "drug": "iap_inhibitor", "amount": 20.0, "doses": 3,
         "every_days": 7, "trigger": "relapse"},
        {"kind": "asct", "trigger": "day", "day": 100, "log_kill": 2.5},
    ]))
    kinds = [i.kind for i in s.arms[0].schedule]
    assert kinds == ["allo_hsct", "reinfusion", "reinfusion", "drug", "asct"]


@pytest.mark.parametrize("item, path, words", [
    ({"kind": "asct"}, "schedule[0]", "trigger 'day' needs day"),
    ({"kind": "asct", "day": 10, "log_kill": 13}, "schedule[0].log_kill", "[0, 12] log10"),
    ({"kind": "asct", "day": -1}, "schedule[0].day", "[0, 3650]"),
    ({"kind": "drug", "drug": "aspirin", "amount": 1, "day": 1}, "schedule[0].drug",
     "allowed: anti_pd1, bh3_mimetic"),
    ({"kind": "drug", "drug": "hsct_graft", "amount": 1, "day": 1}, "schedule[0].drug",
     "unknown drug"),
    ({"kind": "drug", "drug": "iap_inhibitor", "amount": 0, "day": 1},
     "schedule[0].amount", "(0, 1e6]"),
    ({"kind": "drug", "drug": "iap_inhibitor", "amount": 1, "day": 1, "doses": 0},
     "schedule[0].doses", "[1, 365]"),
    ({"kind": "reinfusion", "trigger": "relapse", "day": 5}, "schedule[0]",
     "only for trigger 'day'"),
    ({"kind": "allo_hsct", "trigger": "mrd_negative_cr"}, "schedule[0]", "needs window"),
    ({"kind": "allo_hsct", "trigger": "mrd_negative_cr", "window": [90, 28]},
     "schedule[0].window", "first ≤ last"),
    ({"kind": "allo_hsct", "trigger": "mrd_negative_cr", "window": [28, 90],
      "mrd_below": 2.0}, "schedule[0].mrd_below", "(0, 1]"),
    ({"kind": "transfusion", "day": 3}, "schedule[0].kind", "allo_hsct, asct, reinfusion"),
    ({"kind": "reinfusion", "day": 3, "dose": {"flat": -1}}, "schedule[0].dose", "flat"),
    ({"kind": "asct", "day": 3, "graft": True}, "schedule[0].graft", "unknown field"),
])
def test_schedule_item_errors_name_the_field_and_range(item, path, words) -> None:  # type: ignore[no-untyped-def]
    probs = _problems(_spec([item]))
    hit = [p for p in probs if p.startswith(f"arms[0].{path}")]
    assert hit, probs
    assert words in hit[0], hit


def test_schedule_cross_field_rules() -> None:
    probs = _problems(_spec([{"kind": "asct", "day": 400}]))
    assert any("first acts on day 400, after follow_up_days (365)" in p for p in probs)
    probs = _problems(_spec([{"kind": "allo_hsct", "trigger": "mrd_negative_cr",
                              "window": [28, 90]}], disease="lbcl"))
    assert any("kind 'allo_hsct' needs disease 'b-all'" in p for p in probs)
    assert any("trigger 'mrd_negative_cr' needs disease 'b-all'" in p for p in probs)


# ------------------------------------------------------------------------------ triggers
def _state(n: int, disease_lbcl: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    from cartsim.model import layout

    y = np.zeros((n, layout.CORE.n_states))
    p = np.zeros((n, layout.CORE.n_params))
    p[:, P.marrow_cells] = 1e11
    p[:, P.disease_lbcl] = disease_lbcl
    return y, p


def test_relapse_trigger_needs_a_remission_first_in_b_all() -> None:
    y, p = _state(2)
    trig = Trigger("relapse")
    start = np.full(2, np.nan)
    status = np.zeros(2, dtype=np.int64)
    # day 1: patient 0 in remission (0.1 % blasts), patient 1 still at 20 %
    y[0, S.T0], y[1, S.T0] = 1e8, 2.5e10
    trig.starts(1, y, p, status, start)
    assert np.isnan(start).all()
    # day 40: both at 20 % blasts: only patient 0 relapsed (patient 1 never remitted)
    y[0, S.T0] = 2.5e10
    trig.starts(40, y, p, status, start)
    assert start[0] == 40 and np.isnan(start[1])
    trig.starts(41, y, p, status, start)  # fires once
    assert start[0] == 40


def test_relapse_trigger_is_lugano_progression_in_lbcl() -> None:
    y, p = _state(1, disease_lbcl=1.0)
    trig = Trigger("relapse", delay_days=21)
    start = np.full(1, np.nan)
    status = np.zeros(1, dtype=np.int64)
    for day, vol_ml in ((0, 50.0), (10, 4.0), (20, 5.0), (30, 6.5)):
        y[0, S.T0] = vol_ml * 1e9
        trig.starts(day, y, p, status, start)
    assert start[0] == 30 + 21  # 6.5 ≥ 1.5 × the nadir 4 (5 was not)


def test_mrd_negative_cr_trigger_fires_in_its_window_only() -> None:
    y, p = _state(3)
    trig = Trigger("mrd_negative_cr", window=(28, 90), mrd_below=1e-4, delay_days=30)
    start = np.full(3, np.nan)
    status = np.zeros(3, dtype=np.int64)
    y[:, S.T0] = [1e5, 1e9, 1e5]  # MRD 1e-6, 1e-2, 1e-6
    y[2, S.TS] = 1e9  # sanctuary disease: not a CR
    trig.starts(20, y, p, status, start)
    assert np.isnan(start).all()
    trig.starts(28, y, p, status, start)
    assert start[0] == 58 and np.isnan(start[1:]).all()


# ------------------------------------------------------------------------------ deaths
def test_asct_transplant_mortality_is_below_allo() -> None:
    n, days = 1000, np.arange(-5, 201)
    kw = {"days": days, "patient_id": np.arange(n), "seed": 1, "disease": "lbcl",
          "age_y": np.full(n, 50.0), "marrow_blast_pct": np.zeros((n, days.size)),
          "tumour_volume_ml": np.zeros((n, days.size)),
          "map_mmhg": np.full((n, days.size), 90.0), "spo2_pct": np.full((n, days.size), 98.0),
          "anc_per_ul": np.full((n, days.size), 3000.0),
          "igg_mg_dl": np.full((n, days.size), 800.0)}
    none = decide_deaths(**kw)
    asct = decide_deaths(**kw, asct_day=np.full(n, 30.0))
    allo = decide_deaths(**kw, hsct_day=np.full(n, 30.0))
    k = [int((d.cause == "transplant").sum()) for d in (none, asct, allo)]
    assert k[0] == 0 < k[1] < k[2]
    assert 0.005 < k[1] / n < 0.04  # asct_trm_hazard 2e-4/d, e-folding 100 d: ≈ 2 %
    assert np.nanmin(asct.day[asct.cause == "transplant"]) >= 30


# ------------------------------------------------------------------------------ one patient
def _cohort(disease: str) -> Cohort:
    if disease == "lbcl":
        return Cohort("lbcl", weight_kg=np.array([75.0]), age_y=np.array([55.0]),
                      tumour_volume_ml=np.array([80.0]))
    return Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([10.0]),
                  marrow_blasts_pct=np.array([40.0]))


def _at(res, col: str, day: int) -> float:  # type: ignore[no-untyped-def]
    t = res.trajectories
    return float(t.loc[t["day"] == day, col].iloc[0])


@pytest.mark.slow  # two 60-day LBCL simulations (~3 s quiet, more on a loaded machine)
def test_asct_kills_tumour_ablates_car_t_and_leaves_days_before_unchanged() -> None:
    cohort, prod = _cohort("lbcl"), get_product("axicabtagene_ciloleucel")
    kw = {"days": 60, "seed": 2, "variability": False}
    a = simulate(cohort, prod, **kw)
    b = simulate(cohort, prod, procedures=[
        TransplantCourse(Trigger("day", day=40), allogeneic=False, log_kill=2.0)], **kw)
    assert "gvl" not in b.meta["mechanisms"]  # no graft: the core model
    cols = ["tumour_cells", "cart_cells_per_ul"]
    ta, tb = a.trajectories, b.trajectories
    same = ta["day"] < 40
    assert ta.loc[same, cols].equals(tb.loc[same, cols])
    # the day-40 readout is the state before the day's procedures
    assert _at(b, "cart_cells_per_ul", 41) == 0.0 < _at(a, "cart_cells_per_ul", 41)
    assert _at(b, "tumour_cells", 41) < 0.05 * _at(a, "tumour_cells", 41)
    ev = b.events
    assert list(ev.loc[ev["event"] == "asct", "day"]) == [40]


@pytest.mark.slow  # three 130-day simulations (~4 s quiet, more on a loaded machine)
def test_reinfusion_adds_car_t_and_lymphodepletion_lets_it_expand() -> None:
    """A patient in remission with persisting CAR-T: cells given without Flu/Cy add to the
    blood count and then decay in the full niche; Flu/Cy first kills the persisting CAR-T
    (ld_kill_T) and empties the niche, where the second product expands."""
    cohort, prod = _cohort("b-all"), get_product("tisagenlecleucel")
    kw = {"days": 130, "seed": 4, "variability": False}
    dose = np.array([3e6 * 30.0])
    none = simulate(cohort, prod, **kw)
    runs = {}
    for ld in (True, False):
        day = 85 if ld else 90  # cells on day 90 either way
        runs[ld] = simulate(cohort, prod, procedures=[ReinfusionCourse(
            Trigger("day", day=day), dose, prod.construct.memory_fraction, ld)], **kw)
    for ld, r in runs.items():
        ev = r.events
        assert list(ev.loc[ev["event"] == "cart_reinfusion", "day"]) == [90]
        assert (ev["event"] == "reinfusion_ld").sum() == (3 if ld else 0)
    car = {k: (lambda d, r=r: _at(r, "cart_cells_per_ul", d)) for k, r in
           (("none", none), ("ld", runs[True]), ("no_ld", runs[False]))}
    assert car["no_ld"](91) > car["none"](91)  # cells added
    assert car["ld"](89) < 0.5 * car["none"](89)  # Flu/Cy kills the persisting CAR-T
    assert car["ld"](110) / car["ld"](91) > 1.0 > car["no_ld"](110) / car["no_ld"](91)


@pytest.mark.slow  # compiles the IAP-inhibitor add-on model (~20 s)
def test_drug_item_brings_its_addon_and_doses_on_schedule() -> None:
    cohort, prod = _cohort("b-all"), get_product("tisagenlecleucel")
    r = simulate(cohort, prod, days=40, seed=1, variability=False, procedures=[
        DrugCourse(Trigger("day", day=10), "iap_inhibitor", 20.0, doses=3, every_days=7)])
    assert "iap_inhibitor" in r.meta["mechanisms"]
    ev = r.events
    assert list(ev.loc[ev["event"] == "iap_inhibitor", "day"]) == [10, 17, 24]
    assert list(ev.loc[ev["event"] == "iap_inhibitor", "value"]) == [20.0] * 3


def test_an_arm_without_schedule_items_has_no_procedures() -> None:
    from cartsim.trial.runner import schedule_procedures

    spec = load_spec(EXAMPLES / "eliana.toml")
    arm = spec.arms[0]
    assert arm.schedule == ()
    assert schedule_procedures(arm, get_product("tisagenlecleucel"), np.ones(2),
                               np.full(2, 30.0), 0, np.arange(2)) == []


def test_schedule_and_death_constants_have_unit_range_and_provenance() -> None:
    from cartsim.trial.outcomes import DEATH_PARAMS
    from cartsim.trial.procedures import SCHEDULE_PARAMS

    for table in (SCHEDULE_PARAMS, DEATH_PARAMS, SALVAGE_PARAMS):
        for s in table:
            assert s.provenance.strip() and s.unit.strip() and s.contains(s.default), s.name
    # ASCT: less conditioning kill and less transplant mortality than allogeneic HSCT
    from cartsim.trial.outcomes import HSCT_LOG_KILL

    assert SCHEDULE_PARAMS["asct_log_kill"].default < HSCT_LOG_KILL.default
    assert DEATH_PARAMS["asct_trm_hazard"].default < DEATH_PARAMS["trm_hazard"].default


@pytest.mark.slow  # compiles the GVL add-on model (~20 s)
def test_allo_hsct_item_on_a_day_is_the_legacy_consolidation() -> None:
    from cartsim.trial.outcomes import HsctProcedure

    cohort, prod = _cohort("b-all"), get_product("kymriah")
    kw = {"days": 90, "seed": 5, "variability": False}
    old = simulate(cohort, prod, procedures=[HsctProcedure(60, if_mrd_below=1.0)], **kw)
    new = simulate(cohort, prod, procedures=[TransplantCourse(
        Trigger("day", day=60), allogeneic=True, log_kill=3.0, if_mrd_below=1.0)], **kw)
    assert old.trajectories.equals(new.trajectories)
    assert old.events.equals(new.events)


# ------------------------------------------------------------------- salvage after relapse
def test_salvage_item_parses_with_and_without_its_own_log_kill() -> None:
    s = validate_spec(_spec([
        {"kind": "salvage", "trigger": "relapse", "delay_days": 7},
        {"kind": "salvage", "trigger": "day", "day": 30, "log_kill": 2.0, "ablate_cart": True},
        {"kind": "salvage", "trigger": "relapse",
         "log_kill": {"kind": "truncnormal", "mean": 2, "sd": 1, "lower": 0, "upper": 6}},
    ]))
    items = s.arms[0].schedule
    assert [i.kind for i in items] == ["salvage"] * 3
    assert items[0].log_kill is None and items[0].ablate_cart is False
    with pytest.raises(SpecError) as e:
        validate_spec(_spec([{"kind": "salvage", "trigger": "relapse", "log_kill": 13}]))
    assert any("schedule[0].log_kill" in i and "[0, 12] log10" in i for i in e.value.issues)


def test_salvage_log_kill_is_drawn_per_patient_from_the_population_distribution() -> None:
    from cartsim.trial.runner import schedule_procedures

    spec = validate_spec(_spec([{"kind": "salvage", "trigger": "relapse"}]))
    ids = np.arange(4000)
    procs = schedule_procedures(spec.arms[0], get_product("tisagenlecleucel"), np.ones(4000),
                                np.full(4000, 30.0), 7, ids)
    (c,) = procs
    assert isinstance(c, SalvageCourse) and c.addons == ()  # no graft, no add-on
    lk = c.log_kill
    assert 0.0 <= lk.min() and lk.max() <= 8.0
    # median of the truncated normal ≈ its mean (truncation at 0 and 8 is nearly symmetric)
    assert abs(np.median(lk) - SALVAGE_PARAMS["salvage_log_kill_mean"].default) < 0.15
    assert lk.std() > 0.5 * SALVAGE_PARAMS["salvage_log_kill_sd"].default
    # keyed by patient: a patient's draw does not depend on who else is in the chunk
    (c2,) = schedule_procedures(spec.arms[0], get_product("tisagenlecleucel"), np.ones(10),
                                np.full(10, 30.0), 7, ids[100:110])
    assert np.array_equal(c2.log_kill, lk[100:110])


def test_salvage_course_reduces_every_clone_and_keeps_car_t_unless_told() -> None:
    rng = np.random.default_rng(0)
    y = rng.uniform(1e3, 1e9, size=(3, N_STATES))
    p = np.zeros((3, 1))
    lk = np.array([1.0, 3.0, 0.0])
    c = SalvageCourse(Trigger("day", day=5), lk)
    go = np.array([True, True, False])
    y0 = y.copy()
    ev = c.act(0, go, y, p)
    for s in (*CLONE_STATES, int(S.TS)):
        assert np.allclose(y[:, s], y0[:, s] * np.array([0.1, 1e-3, 1.0]))
    for s in (*CART_BLOOD, *CART_TISSUE):
        assert np.array_equal(y[:, s], y0[:, s])
    assert np.array_equal(ev["salvage"][0], [1.0, 3.0, 0.0])
    y = y0.copy()
    SalvageCourse(Trigger("day", day=5), lk, ablate_cart=True).act(0, go, y, p)
    for s in (*CART_BLOOD, *CART_TISSUE):
        assert np.array_equal(y[:, s], np.where(go, 0.0, y0[:, s]))


def test_an_early_salvage_course_kills_less_and_factor_one_gives_back_the_old_kill() -> None:
    """Session 21: a salvage course that starts within salvage_early_relapse_days of the
    infusion answers an early, more refractory relapse: its log kill × the factor; later
    courses, and every course at factor 1 (the neutral value), keep the drawn kill."""
    rng = np.random.default_rng(1)
    y = rng.uniform(1e3, 1e9, size=(2, N_STATES))
    p = np.zeros((2, 1))
    go = np.array([True, True])
    lk = np.array([3.0, 3.0])
    c = SalvageCourse(Trigger("day", day=5), lk, early_factor=0.1, early_days=180.0)
    c._start = np.array([100.0, 250.0])  # this patient's course starts on day 100, that one's 250
    y0 = y.copy()
    ev = c.act(0, go, y, p)
    assert np.allclose(ev["salvage"][0], [0.3, 3.0])
    for s in CLONE_STATES:
        assert np.allclose(y[:, s], y0[:, s] * np.array([10**-0.3, 1e-3]))
    y1 = y0.copy()
    neutral = SalvageCourse(Trigger("day", day=5), lk, early_factor=1.0, early_days=180.0)
    neutral._start = c._start
    ev1 = neutral.act(0, go, y1, p)
    y2 = y0.copy()
    SalvageCourse(Trigger("day", day=5), lk).act(0, go, y2, p)  # the course before session 21
    assert np.array_equal(y1, y2) and np.array_equal(ev1["salvage"][0], lk)


def test_the_population_salvage_answers_early_relapses_with_the_factor_in_force() -> None:
    """A schedule item without its own log kill takes the early-relapse factor of the
    parameter set in force; one with a log kill of its own is a given regimen: factor 1."""
    from cartsim.trial.outcomes import SALVAGE_PARAMS
    from cartsim.trial.runner import schedule_procedures

    spec = validate_spec(_spec([{"kind": "salvage", "trigger": "relapse"}]))
    (c,) = schedule_procedures(spec.arms[0], get_product("tisagenlecleucel"), np.ones(4),
                               np.full(4, 30.0), 7, np.arange(4))
    q = SALVAGE_PARAMS.defaults()
    assert (c.early_factor, c.early_days) == (q["salvage_early_relapse_factor"],
                                              q["salvage_early_relapse_days"])
    spec = validate_spec(_spec([{"kind": "salvage", "trigger": "relapse", "log_kill": 2.0}]))
    (c,) = schedule_procedures(spec.arms[0], get_product("tisagenlecleucel"), np.ones(4),
                               np.full(4, 30.0), 7, np.arange(4))
    assert c.early_factor == 1.0


def test_salvage_course_cuts_a_growing_leukaemia_and_leaves_days_before_unchanged() -> None:
    """Without lymphodepletion the CAR-T do not expand and the leukaemia grows; a 3-log salvage
    course on day 20 takes the marrow far below its course without it, days before are
    unchanged, and the CAR-T are left alone (``ablate_cart`` false)."""
    cohort, prod = _cohort("b-all"), get_product("tisagenlecleucel")
    kw = {"days": 30, "seed": 3, "variability": False, "lymphodepletion": False}
    a = simulate(cohort, prod, **kw)
    b = simulate(cohort, prod, procedures=[
        SalvageCourse(Trigger("day", day=20), np.array([3.0]))], **kw)
    assert b.meta["mechanisms"] == a.meta["mechanisms"]  # no add-on joins
    ta, tb = a.trajectories, b.trajectories
    before = ta["day"] <= 20  # the day-20 readout is the state before the day's procedures
    cols = ["tumour_cells", "cart_cells_per_ul", "marrow_blast_pct"]
    assert ta.loc[before, cols].equals(tb.loc[before, cols])
    assert _at(a, "marrow_blast_pct", 21) > 20.0
    assert _at(b, "tumour_cells", 21) < 2e-3 * _at(a, "tumour_cells", 21)
    assert _at(b, "cart_cells_per_ul", 21) > 0.5 * _at(a, "cart_cells_per_ul", 21)
    ev = b.events
    assert list(ev.loc[ev["event"] == "salvage", "day"]) == [20]
    assert list(ev.loc[ev["event"] == "salvage", "value"]) == [3.0]
