"""The clinic's quiet-patient shortcut gives what the full rules give (session 36).

``Policy._decide`` runs the rules only for the patients some rule could act on today
(``_needs_decision``) and gives the rest nothing. These tests run both paths on the same
observations and states, day after day, under every shipped protocol, with cohorts in which
most patients are quiet and some are not in each way a rule reads (fever, hypotension,
hypoxia, each neurological finding, low IgG with a dose due, neutropenia after the G-CSF day,
a platelet count or haemoglobin at its transfusion threshold, an IL-6 rise, a CRS episode or
steroid course carried from yesterday, death) — and require the same actions and state, value
for value and dtype for dtype.
"""

from __future__ import annotations

import numpy as np
import pytest
from _obs import as_float, assert_same_decision, random_obs, start

from cartsim.clinic.protocol import ACTION_DTYPES, PROTOCOL_DIR, Policy, load_protocol

PROTOCOLS = sorted(p.stem for p in PROTOCOL_DIR.glob("*.toml"))


def _mostly_quiet(rng: np.random.Generator, n: int, p_quiet: float) -> dict[str, np.ndarray]:
    """Random observations; each patient is quiet in every finding with probability
    ``p_quiet`` and otherwise breaks one or more of them at random."""
    obs = random_obs(rng, n)
    child = np.isnan(obs["ice_score"])
    calm = {
        "temperature_c": rng.uniform(36.0, 37.9, n),
        "map_mmhg": rng.uniform(80, 110, n),
        "spo2_room_air_pct": rng.uniform(95, 100, n),
        "ice_score": np.where(child, np.nan, 10.0),
        "capd_score": np.where(child, 0.0, np.nan),
        "consciousness": np.zeros(n),
        "seizure": np.zeros(n),
        "motor_weakness": np.zeros(n),
        "cerebral_edema": np.zeros(n),
        "il6_pg_ml": obs["il6_baseline_pg_ml"] * rng.uniform(0.5, 1.5, n),
        "anc_per_ul": rng.uniform(1500, 6000, n),
        "igg_mg_dl": rng.uniform(500, 1500, n),
        "platelets_per_ul": rng.uniform(50000, 300000, n),
        "hemoglobin_g_dl": rng.uniform(8.0, 14.0, n),
    }
    quiet = rng.random(n) < p_quiet
    for key, value in calm.items():
        # a non-quiet patient keeps the random (often abnormal) finding for about a third of
        # the keys, so single findings are tested on their own
        keep_calm = quiet | (rng.random(n) < 0.7)
        obs[key] = np.where(keep_calm, value, obs[key])
    gone = ~obs["alive"]
    for key, v in obs.items():
        if key != "alive" and v.dtype.kind == "f":
            v[gone] = np.nan  # as the simulator reports the dead
    return obs


def _same(policy: Policy, day: int, obs: dict[str, np.ndarray], state, tag: str):
    o = as_float(obs)
    a_full, s_full = policy._decide_all(day, o, state)
    a_fast, s_fast = policy._decide(day, o, state)
    assert list(a_full) == list(ACTION_DTYPES)
    assert_same_decision(a_full, s_full, a_fast, s_fast, tag)
    return a_full, s_full


@pytest.mark.parametrize("name", PROTOCOLS)
def test_quiet_shortcut_equals_the_full_rules(name: str) -> None:
    n = 300
    rng, policy, state = start(name, 36, n)
    shortcut_days = 0
    treated = 0
    for day in list(range(0, 40)) + [60, 61, 90, 120, 200]:
        obs = _mostly_quiet(rng, n, p_quiet=0.8 if day < 30 else 0.95)
        o = as_float(obs)
        if policy._quiet_day_possible(day):
            active = policy._needs_decision(day, o, state)
            shortcut_days += int(not active.all())
        actions, state = _same(policy, day, obs, state, f"{name} day {day}")
        treated += int(actions["tocilizumab_mg"].astype(bool).sum()
                       + (actions["dexamethasone_mg"] > 0).sum())
    assert shortcut_days >= 40  # the shortcut was taken
    assert treated > 0 and state.toci_count.sum() > 0  # and the rules acted on the others


@pytest.mark.parametrize("name", PROTOCOLS)
def test_an_all_quiet_day_gives_nothing_and_clears_the_day_counters(name: str) -> None:
    n = 50
    rng, policy, state = start(name, 7, n)
    state.prev_crs_grade[:] = 1  # yesterday's grade, no episode carried
    state.steroid_days[:] = 3
    obs = _mostly_quiet(rng, n, p_quiet=1.0)
    obs["alive"][:] = True
    obs = {k: (np.where(np.isnan(v), 37.0, v) if k == "temperature_c" else v)
           for k, v in obs.items()}
    o = as_float(obs)
    day = 45
    assert not policy._needs_decision(day, o, state).any()
    actions, new = _same(policy, day, obs, state, name)
    assert not any(np.any(v) for v in actions.values())
    assert not new.prev_crs_grade.any() and not new.steroid_days.any()


def test_each_single_finding_makes_a_patient_need_a_decision() -> None:
    policy = load_protocol("default")
    n = 1
    base = {"temperature_c": 37.0, "map_mmhg": 90.0, "spo2_room_air_pct": 98.0,
            "ice_score": 10.0, "capd_score": np.nan, "consciousness": 0.0, "seizure": 0.0,
            "motor_weakness": 0.0, "cerebral_edema": 0.0, "il6_pg_ml": 5.0,
            "il6_baseline_pg_ml": 5.0, "anc_per_ul": 3000.0, "platelets_per_ul": 2e5,
            "hemoglobin_g_dl": 12.0, "igg_mg_dl": 900.0, "crp_mg_l": 2.0,
            "ferritin_ng_ml": 100.0, "weight_kg": 70.0, "age_y": 40.0, "alive": 1.0}
    state = policy.initial_state(n)
    o = {k: np.full(n, v) for k, v in base.items()}
    assert not policy._needs_decision(30, o, state).any()
    for key, value in [("temperature_c", 38.2), ("map_mmhg", 60.0), ("spo2_room_air_pct", 90.0),
                       ("ice_score", 9.0), ("consciousness", 1.0), ("seizure", 1.0),
                       ("motor_weakness", 1.0), ("cerebral_edema", 1.0), ("igg_mg_dl", 300.0),
                       ("anc_per_ul", 300.0)]:
        oo = dict(o, **{key: np.full(n, value)})
        assert policy._needs_decision(30, oo, state).all(), key
    child = dict(o, ice_score=np.full(n, np.nan), capd_score=np.full(n, 2.0),
                 age_y=np.full(n, 6.0))
    assert policy._needs_decision(30, child, state).all()
    for f, value in [("in_crs_episode", True), ("crs_mp_day", 2), ("icans_mp_day", 0)]:
        st = policy.initial_state(n)
        getattr(st, f)[:] = value
        assert policy._needs_decision(30, o, st).all(), f
