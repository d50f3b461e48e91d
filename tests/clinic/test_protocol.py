"""Management protocol: loading/validation and the vectorised daily decision function."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _obs import random_obs

from cartsim.clinic.crs import DEVICE_ASTCT_COMPONENT, DEVICE_CODE
from cartsim.clinic.protocol import (
    ACTION_DTYPES,
    OBS_SPEC,
    load_protocol,
    shipped_protocols,
)
from cartsim.errors import InvalidInputError, UnknownNameError


def test_shipped_protocols_load() -> None:
    names = shipped_protocols()
    assert {"default", "early_tocilizumab", "prophylactic_tocilizumab", "il6_guided"} <= set(names)
    for name in names:
        assert load_protocol(name).name == name
    assert load_protocol("il6_guided").config.tocilizumab.il6_fold_trigger == 4.0
    # inherited settings come from the base file
    assert load_protocol("il6_guided").config.supportive.spo2_target_pct == 92.0


def test_ten_thousand_patients_thirty_days_random_physiology() -> None:
    rng = np.random.default_rng(7)
    n, days = 10_000, 30
    policy = load_protocol("default")
    state = policy.initial_state(n)
    toci_given = np.zeros((n, days))
    for day in range(days):
        obs = random_obs(rng, n)
        actions, state = policy.decide(day, obs, state)
        assert set(actions) == set(ACTION_DTYPES)
        for key, arr in actions.items():
            assert arr.shape == (n,), key
            assert arr.dtype == ACTION_DTYPES[key], key
        dead = ~obs["alive"]
        assert not actions["tocilizumab_mg"][dead].any()
        assert not actions["oxygen_device"][dead].any()
        # per-dose label limits: 12 mg/kg under 30 kg, else 8 mg/kg up to 800 mg
        w = obs["weight_kg"]
        expected = np.where(w < 30, 12 * w, np.minimum(8 * w, 800))
        given = actions["tocilizumab_mg"] > 0
        assert np.allclose(actions["tocilizumab_mg"][given], expected[given])
        # tocilizumab never for a patient without CRS ≥ grade 2 under the default protocol
        assert (actions["crs_grade"][given] >= 2).all()
        # the CRS grade reflects the support chosen
        oxy = DEVICE_ASTCT_COMPONENT[actions["oxygen_device"]]
        live_crs = actions["crs_grade"] > 0
        assert (actions["crs_grade"][live_crs] >= oxy[live_crs]).all()
        febrile_two = (actions["vasopressors"] >= 2) & (obs["temperature_c"] >= 38) & obs["alive"]
        assert febrile_two.any() and (actions["crs_grade"][febrile_two] == 4).all()
        afebrile_untreated = (obs["temperature_c"] < 38) & ~state.anticytokine_started
        assert (actions["crs_grade"][afebrile_untreated] == 0).all()
        toci_given[:, day] = given
    assert toci_given.sum(axis=1).max() <= 4
    # with daily decisions and ≥ 8 h spacing, at most 3 doses in any 24 h means ≤ 1 per day here
    assert (state.toci_count == toci_given.sum(axis=1)).all()
    times = np.sort(state.toci_times_h, axis=1)
    gaps = np.diff(times, axis=1)
    assert np.all(np.isnan(gaps) | (gaps >= 8.0))
    assert toci_given.sum() > 0 and (state.steroid_days >= 0).all()


def _obs(n: int = 1, **over: float) -> dict[str, np.ndarray]:
    base = {k: 0.0 for k in OBS_SPEC}
    base.update(temperature_c=37.0, map_mmhg=80.0, spo2_room_air_pct=98.0, ice_score=10.0,
                capd_score=np.nan, il6_pg_ml=10.0, il6_baseline_pg_ml=10.0, anc_per_ul=3000.0,
                platelets_per_ul=2e5, hemoglobin_g_dl=12.0, igg_mg_dl=800.0, crp_mg_l=5.0,
                ferritin_ng_ml=300.0, weight_kg=70.0, age_y=50.0, alive=1.0)
    base.update(over)
    return {k: np.full(n, v, dtype=float) for k, v in base.items()}


def test_vasopressors_and_oxygen_follow_documented_rules() -> None:
    policy = load_protocol("default")
    maps = np.array([80, 64, 60, 59, 45, 44, 39, 34], dtype=float)
    obs = _obs(len(maps), temperature_c=39.0)
    obs["map_mmhg"] = maps
    actions, _ = policy.decide(1, obs, policy.initial_state(len(maps)))
    # deficit below 65: 0, 1, 5, 6, 20, 21, 26, 31 mmHg
    assert actions["vasopressors"].tolist() == [0, 0, 0, 1, 1, 2, 2, 3]
    assert actions["vasopressin"].tolist() == [False] * 6 + [True, True]
    assert (actions["fluid_bolus_ml"][1:] == 1000.0).all() and actions["fluid_bolus_ml"][0] == 0
    assert actions["crs_grade"].tolist() == [1, 2, 2, 3, 3, 4, 4, 4]

    spo2 = np.array([95, 92, 90, 86, 85, 80, 74, 68, 60], dtype=float)
    obs = _obs(len(spo2), temperature_c=39.0)
    obs["spo2_room_air_pct"] = spo2
    actions, _ = policy.decide(1, obs, policy.initial_state(len(spo2)))
    names = ["none", "none", "low_flow_nasal_cannula", "low_flow_nasal_cannula",
             "high_flow_nasal_cannula", "high_flow_nasal_cannula", "nonrebreather", "bipap",
             "mechanical_ventilation"]
    assert actions["oxygen_device"].tolist() == [DEVICE_CODE[d] for d in names]
    assert actions["crs_grade"].tolist() == [1, 1, 2, 2, 3, 3, 3, 4, 4]


def test_infant_gets_blow_by_and_child_map_target() -> None:
    policy = load_protocol("default")
    obs = _obs(2, temperature_c=38.5, spo2_room_air_pct=89.0, weight_kg=8.0)
    obs["age_y"] = np.array([0.5, 6.0])
    obs["map_mmhg"] = np.array([60.0, 60.0])
    actions, _ = policy.decide(1, obs, policy.initial_state(2))
    assert actions["oxygen_device"].tolist() == [DEVICE_CODE["blow_by"],
                                                 DEVICE_CODE["low_flow_nasal_cannula"]]
    # targets 50.75 and 59 mmHg: neither child is hypotensive at 60 mmHg
    assert actions["fluid_bolus_ml"].tolist() == [0.0, 0.0]


def test_fever_masking_after_tocilizumab() -> None:
    policy = load_protocol("default")
    state = policy.initial_state(1)
    a1, state = policy.decide(2, _obs(temperature_c=39.0, spo2_room_air_pct=89.0), state)
    assert a1["crs_grade"][0] == 2 and a1["tocilizumab_mg"][0] == 560.0
    a2, state = policy.decide(3, _obs(temperature_c=37.0, map_mmhg=58.0), state)
    assert a2["crs_grade"][0] == 3  # afebrile after tocilizumab, on one vasopressor
    a3, state = policy.decide(4, _obs(temperature_c=37.0), state)
    assert a3["crs_grade"][0] == 0
    a4, _ = policy.decide(5, _obs(temperature_c=37.0, map_mmhg=58.0), state)
    assert a4["crs_grade"][0] == 0  # episode resolved: a new one needs fever


@pytest.mark.parametrize(
    ("protocol", "over", "day", "expect_toci"),
    [
        pytest.param("default", {"temperature_c": 38.5}, 1, False, id="default-G1-no-toci"),
        pytest.param("early_tocilizumab", {"temperature_c": 38.5}, 1, True, id="early-G1"),
        pytest.param("il6_guided", {"temperature_c": 38.5, "il6_pg_ml": 45.0}, 1, True,
                     id="il6-4.5-fold"),
        pytest.param("il6_guided", {"temperature_c": 38.5, "il6_pg_ml": 35.0}, 1, False,
                     id="il6-3.5-fold"),
        pytest.param("prophylactic_tocilizumab", {}, 0, True, id="prophylactic-day0"),
        pytest.param("prophylactic_tocilizumab", {}, 1, False, id="prophylactic-day1"),
    ],
)
def test_alternative_policies(protocol: str, over: dict[str, float], day: int,
                              expect_toci: bool) -> None:
    policy = load_protocol(protocol)
    actions, _ = policy.decide(day, _obs(**over), policy.initial_state(1))
    assert (actions["tocilizumab_mg"][0] > 0) == expect_toci


def test_refractory_crs_gets_anakinra_and_ivig_gcsf() -> None:
    policy = load_protocol("default")
    state = policy.initial_state(1)
    got_anakinra = False
    for day in range(6):
        actions, state = policy.decide(day, _obs(temperature_c=39.5, map_mmhg=55.0), state)
        got_anakinra |= actions["anakinra_mg"][0] > 0
    assert got_anakinra and actions["anakinra_mg"][0] == 400.0
    obs = _obs(igg_mg_dl=300.0, anc_per_ul=300.0)
    a, st = policy.decide(20, obs, policy.initial_state(1))
    assert a["ivig_g"][0] == pytest.approx(28.0) and a["gcsf"][0]
    a, _ = policy.decide(30, obs, st)
    assert a["ivig_g"][0] == 0.0  # within 28 days of the last dose
    a, _ = policy.decide(10, obs, policy.initial_state(1))
    assert not a["gcsf"][0]  # before day 14


def test_refractory_icans_alone_gets_anakinra_by_default_but_no_siltuximab_in_the_ctl019_era(
) -> None:
    """Session 16: the CTL019-era refractory agent (siltuximab) is for CRS refractory to
    tocilizumab and steroids only; the default (anakinra) also treats steroid-refractory ICANS.
    An afebrile patient with life-threatening encephalopathy (ICE 0, unarousable) for 6 days."""
    obs = _obs(temperature_c=37.0, ice_score=0.0, consciousness=3.0, age_y=16.0, weight_kg=50.0)
    for name, key in (("default", "anakinra_mg"), ("penn_ctl019", "siltuximab_mg")):
        policy = load_protocol(name)
        state = policy.initial_state(1)
        given, steroids = 0.0, 0
        for day in range(6):
            actions, state = policy.decide(day, obs, state)
            given += actions[key][0]
            steroids += int(actions["methylprednisolone_mg"][0] > 0
                            or actions["dexamethasone_mg"][0] > 0)
        assert steroids >= 3, name     # both treat the grade-4 event with steroids first
        assert (given > 0) == (name == "default"), name


def test_decide_does_not_mutate_state() -> None:
    policy = load_protocol("default")
    state = policy.initial_state(3)
    before = state.copy()
    policy.decide(1, _obs(3, temperature_c=39.5, map_mmhg=40.0), state)
    assert np.array_equal(state.toci_count, before.toci_count)
    assert np.isnan(state.toci_times_h).all()


def test_invalid_protocol_names_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nbase = "default"\n[tocilizumab]\nmax_mg = -5\n')
    with pytest.raises(InvalidInputError) as exc:
        load_protocol(bad)
    assert exc.value.field == "tocilizumab.max_mg"
    extra = tmp_path / "extra.toml"
    extra.write_text('name = "x"\nbase = "default"\n[supportive]\nmap_targett = 60\n')
    with pytest.raises(InvalidInputError) as exc:
        load_protocol(extra)
    assert exc.value.field == "supportive.map_targett"
    ladder = tmp_path / "ladder.toml"
    ladder.write_text('name = "x"\nbase = "default"\n[supportive]\n'
                      'oxygen_ladder = [{max_deficit_pct = 5, device = "hyperbaric"}]\n')
    with pytest.raises(InvalidInputError) as exc:
        load_protocol(ladder)
    assert exc.value.field.startswith("supportive.oxygen_ladder")
    assert "mechanical_ventilation" in str(exc.value)
    with pytest.raises(UnknownNameError) as exc2:
        load_protocol("no_such_protocol")
    assert "default" in exc2.value.allowed
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(InvalidInputError):
        load_protocol(broken)


def test_invalid_obs_names_field() -> None:
    policy = load_protocol("default")
    state = policy.initial_state(2)
    obs = _obs(2)
    obs["spo2_room_air_pct"] = np.array([95.0, 104.0])
    with pytest.raises(InvalidInputError) as exc:
        policy.decide(0, obs, state)
    assert exc.value.field == "obs['spo2_room_air_pct']" and exc.value.value == 104.0
    obs = _obs(2)
    del obs["igg_mg_dl"]
    with pytest.raises(InvalidInputError, match="igg_mg_dl"):
        policy.decide(0, obs, state)
    obs = _obs(3)
    with pytest.raises(InvalidInputError) as exc:
        policy.decide(0, obs, state)
    assert exc.value.field.startswith("obs[")
    with pytest.raises(InvalidInputError):
        policy.initial_state(0)


def test_reference_hemodynamic_rule_is_the_shipped_default_protocols():
    """The endpoint layer grades unmanaged arms with HemodynamicConfig() defaults instead of
    reading the shipped default protocol: the two must not drift apart."""
    from cartsim.clinic.protocol import HemodynamicConfig, hemodynamic_support

    ref = HemodynamicConfig()
    shipped = load_protocol("default")
    for name in HemodynamicConfig.model_fields:
        assert getattr(shipped.config.supportive, name) == getattr(ref, name), name
    mp = np.linspace(20.0, 100.0, 41)
    age = np.full(mp.shape, 8.0)
    w = np.full(mp.shape, 25.0)
    for a, b in zip(hemodynamic_support(ref, mp, age, w),
                    shipped.hemodynamic_support(mp, age, w), strict=True):
        np.testing.assert_array_equal(a, b)
    assert hemodynamic_support(ref, mp, age, w)[1].max() == 3  # the rule is exercised


# --------------------------------------------------------------------- era protocols (issue 14)
def test_era_protocols_ship_and_differ_from_the_default() -> None:
    names = set(shipped_protocols())
    assert {"penn_ctl019", "zuma1_2015", "prophylactic_dexamethasone"} <= names
    penn = load_protocol("penn_ctl019").config
    assert penn.tocilizumab.require_vasopressors_at_least == 2
    assert penn.crs_steroids.require_prior_tocilizumab
    assert penn.refractory.agent == "siltuximab"
    assert load_protocol("zuma1_2015").config.icans_steroids.grade2_dexamethasone_mg_day == 0.0
    pro = load_protocol("prophylactic_dexamethasone").config
    assert pro.prophylaxis.dexamethasone_days == [0, 1, 2]
    assert pro.tocilizumab.trigger_crs_grade == 1  # inherited from early_tocilizumab


def test_the_french_protocol_differs_from_the_default_only_in_the_red_cell_threshold() -> None:
    """Session 44: the DESCAR-T registry's country practice (Afssaps thresholds, red cells below
    8 g/dL) on top of the default; everything else inherited (tests/clinic/test_transfusion.py
    checks the decision)."""
    fr = load_protocol("france_afssaps").config.model_dump()
    de = load_protocol("default").config.model_dump()
    assert fr["transfusion"]["hb_below_g_dl"] == 8.0
    assert de["transfusion"]["hb_below_g_dl"] == 7.0
    fr["transfusion"]["hb_below_g_dl"] = de["transfusion"]["hb_below_g_dl"]
    for d in (fr, de):
        d.pop("name", None)
        d.pop("description", None)
        d.pop("sources", None)
        d.pop("base", None)
    assert fr == de


def test_penn_gives_tocilizumab_for_multiple_vasopressors_or_high_flow_oxygen() -> None:
    """CTL019 algorithm: ASTCT grade 2 (low-flow oxygen) and one vasopressor are watched;
    two vasopressors or high-flow oxygen get tocilizumab; steroids only after two doses."""
    low_flow = _obs(temperature_c=39.0, spo2_room_air_pct=89.0)  # deficit 3: low-flow, grade 2
    one_vp = _obs(temperature_c=39.0, map_mmhg=59.0)  # deficit 6: one vasopressor, grade 3
    two_vp = _obs(temperature_c=39.0, map_mmhg=44.0)  # deficit 21: two vasopressors, grade 4
    hfnc = _obs(temperature_c=39.0, spo2_room_air_pct=84.0)  # deficit 8: high-flow, grade 3
    default, penn = load_protocol("default"), load_protocol("penn_ctl019")
    a, _ = default.decide(2, low_flow, default.initial_state(1))
    assert a["crs_grade"][0] == 2 and a["tocilizumab_mg"][0] > 0
    a, _ = penn.decide(2, low_flow, penn.initial_state(1))
    assert a["crs_grade"][0] == 2 and a["tocilizumab_mg"][0] == 0
    a, _ = default.decide(2, one_vp, default.initial_state(1))
    assert a["crs_grade"][0] == 3 and a["tocilizumab_mg"][0] > 0 and a["dexamethasone_mg"][0] > 0
    a, _ = penn.decide(2, one_vp, penn.initial_state(1))
    assert a["crs_grade"][0] == 3 and a["tocilizumab_mg"][0] == 0
    assert a["dexamethasone_mg"][0] == 0  # no steroid before tocilizumab
    for obs, grade in ((two_vp, 4), (hfnc, 3)):
        a, st = penn.decide(2, obs, penn.initial_state(1))
        assert a["crs_grade"][0] == grade and a["tocilizumab_mg"][0] > 0
        assert a["dexamethasone_mg"][0] == 0 and a["methylprednisolone_mg"][0] == 0
        # not better the next day: a second dose; the day after, steroids follow
        a, st = penn.decide(3, obs, st)
        assert a["tocilizumab_mg"][0] > 0
        assert a["dexamethasone_mg"][0] == 0 and a["methylprednisolone_mg"][0] == 0
        a, _ = penn.decide(4, obs, st)
        assert a["dexamethasone_mg"][0] + a["methylprednisolone_mg"][0] > 0


def test_steroids_can_wait_for_a_second_tocilizumab_dose(tmp_path: Path) -> None:
    """prior_tocilizumab_doses_at_least = 2: persistent grade-3 CRS gets tocilizumab on days 2
    and 3 and the first steroid on day 4 (1 dose: steroid already on day 3)."""
    one_vp = _obs(temperature_c=39.0, spo2_room_air_pct=84.0)  # high-flow oxygen, grade 3
    f = tmp_path / "one.toml"
    f.write_text('name = "one"\nbase = "penn_ctl019"\n[crs_steroids]\n'
                 "prior_tocilizumab_doses_at_least = 1\n")
    for policy, first_steroid_day in ((load_protocol(f), 3), (load_protocol("penn_ctl019"), 4)):
        st = policy.initial_state(1)
        days = []
        for day in range(2, 6):
            a, st = policy.decide(day, one_vp, st)
            if a["dexamethasone_mg"][0] + a["methylprednisolone_mg"][0] > 0:
                days.append(day)
        assert days and days[0] == first_steroid_day, policy.name


def test_era_protocols_do_not_escalate_grade2_crs_when_tocilizumab_runs_out(
        tmp_path: Path) -> None:
    """ASCO default: grade-2 CRS still present once the 4 tocilizumab doses are spent is
    treated as grade 3 (steroids). ZUMA-1 2015 kept steroids for grade >= 3 CRS."""
    grade2 = _obs(temperature_c=39.0, spo2_room_air_pct=89.0)
    f = tmp_path / "esc.toml"
    f.write_text('name = "esc"\nbase = "zuma1_2015"\n[crs_steroids]\n'
                 "escalate_when_tocilizumab_unavailable = true\n")
    for policy, want_steroid in ((load_protocol("zuma1_2015"), False), (load_protocol(f), True)):
        st = policy.initial_state(1)
        toci, dex = [], []
        for day in range(7):
            a, st = policy.decide(day, grade2, st)
            assert a["crs_grade"][0] == 2
            toci.append(a["tocilizumab_mg"][0] > 0)
            dex.append(a["dexamethasone_mg"][0])
        assert toci == [True] * 4 + [False] * 3  # 1 dose a day, at most 4
        assert (max(dex) > 0) == want_steroid, policy.name
        assert max(dex[:4]) == 0.0


def test_neuro_scale_sets_the_grade_neurotoxicity_steroids_read() -> None:
    """A self-limiting seizure is ICANS grade 3 but CTCAE v4.03 grade 2; motor weakness is
    ICANS 4 but CTCAE 3; cerebral oedema is CTCAE 4. The reported icans_grade stays ASTCT."""
    seizure = _obs(seizure=1.0)
    weak = _obs(motor_weakness=1.0)
    edema = _obs(cerebral_edema=1.0)
    default, z, penn = (load_protocol(n) for n in ("default", "zuma1_2015", "penn_ctl019"))
    assert z.config.grading.neuro_scale == "ctcae_4.03" == penn.config.grading.neuro_scale
    a, _ = default.decide(3, seizure, default.initial_state(1))
    assert a["icans_grade"][0] == 3 and a["dexamethasone_mg"][0] == 40.0
    a, _ = z.decide(3, seizure, z.initial_state(1))
    assert a["icans_grade"][0] == 3 and a["dexamethasone_mg"][0] == 0.0
    a, _ = default.decide(3, weak, default.initial_state(1))
    assert a["icans_grade"][0] == 4 and a["methylprednisolone_mg"][0] == 1000.0
    a, _ = z.decide(3, weak, z.initial_state(1))
    assert a["methylprednisolone_mg"][0] == 0.0 and a["dexamethasone_mg"][0] == 40.0
    # CTL019 era: no steroids up to CTCAE grade 3, the grade-4 course for cerebral oedema
    a, _ = penn.decide(3, weak, penn.initial_state(1))
    assert a["dexamethasone_mg"][0] == 0.0 and a["methylprednisolone_mg"][0] == 0.0
    a, _ = penn.decide(3, edema, penn.initial_state(1))
    assert a["methylprednisolone_mg"][0] == 1000.0


def test_lee2014_treats_lee_grade_3_only() -> None:
    """Lee 2014 / NCI: one vasopressor (Lee grade 2, ASTCT 3) is watched; two vasopressors or
    high-flow oxygen (Lee grade 3) get tocilizumab."""
    lee = load_protocol("lee2014_nci")
    one_vp = _obs(temperature_c=39.0, map_mmhg=59.0)
    two_vp = _obs(temperature_c=39.0, map_mmhg=44.0)
    hfnc = _obs(temperature_c=39.0, spo2_room_air_pct=84.0)
    a, _ = lee.decide(2, one_vp, lee.initial_state(1))
    assert a["crs_grade"][0] == 3 and a["tocilizumab_mg"][0] == 0 and a["dexamethasone_mg"][0] == 0
    for obs in (two_vp, hfnc):
        a, _ = lee.decide(2, obs, lee.initial_state(1))
        assert a["tocilizumab_mg"][0] > 0


def test_unknown_neuro_scale_names_the_field(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text('name = "x"\nbase = "default"\n[grading]\nneuro_scale = "ctcae_3"\n')
    with pytest.raises(InvalidInputError, match="grading.neuro_scale"):
        load_protocol(f)


def test_zuma1_protocol_keeps_steroids_for_severe_events() -> None:
    z, d = load_protocol("zuma1_2015"), load_protocol("default")
    icans2 = _obs(temperature_c=37.0, ice_score=5.0)  # ICE 3-6: ICANS grade 2
    a, _ = d.decide(3, icans2, d.initial_state(1))
    assert a["icans_grade"][0] == 2 and a["dexamethasone_mg"][0] == 20.0
    a, _ = z.decide(3, icans2, z.initial_state(1))
    assert a["icans_grade"][0] == 2 and a["dexamethasone_mg"][0] == 0.0
    a, _ = z.decide(3, _obs(temperature_c=38.5, spo2_room_air_pct=89.0), z.initial_state(1))
    assert a["crs_grade"][0] == 2 and a["tocilizumab_mg"][0] > 0


def test_prophylactic_dexamethasone_days() -> None:
    policy = load_protocol("prophylactic_dexamethasone")
    for day, want in ((0, 10.0), (2, 10.0), (3, 0.0)):
        a, _ = policy.decide(day, _obs(), policy.initial_state(1))
        assert a["dexamethasone_mg"][0] == want, day
    dead = _obs(alive=0.0)
    a, _ = policy.decide(0, dead, policy.initial_state(1))
    assert a["dexamethasone_mg"][0] == 0.0


def test_unknown_required_device_names_the_field(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text('name = "x"\nbase = "default"\n[tocilizumab]\n'
                 'require_oxygen_device_at_least = "snorkel"\n')
    with pytest.raises(InvalidInputError, match="require_oxygen_device_at_least"):
        load_protocol(f)


def test_zuma1_era_treats_crs_by_its_lee_grade() -> None:
    """ZUMA-1 graded and treated CRS on Lee 2014 (session 13): after tocilizumab, one
    vasopressor (ASTCT grade 3, Lee grade 2) gets no CRS steroids; two vasopressors (Lee 3)
    get dexamethasone (ASTCT grade 4 would start methylprednisolone). With the grading scale
    set back to ASTCT the single vasopressor is treated. The reported crs_grade stays ASTCT."""
    z = load_protocol("zuma1_2015")
    assert z.config.grading.crs_scale == "lee2014"
    from cartsim.clinic.protocol import Policy

    astct = Policy(z.config.model_copy(update={
        "grading": z.config.grading.model_copy(update={"crs_scale": "astct"})}))
    one_vp = _obs(temperature_c=39.0, map_mmhg=59.0)
    two_vp = _obs(temperature_c=39.0, map_mmhg=44.0)
    for policy, one_dex in ((z, 0.0), (astct, 40.0)):
        st = policy.initial_state(1)
        a, st = policy.decide(1, _obs(temperature_c=39.0, map_mmhg=62.0), st)  # grade 2: toci
        assert a["tocilizumab_mg"][0] > 0
        a1, _ = policy.decide(2, one_vp, st)
        assert a1["crs_grade"][0] == 3 and a1["dexamethasone_mg"][0] == one_dex
        a2, _ = policy.decide(2, two_vp, st)  # Lee 3: dexamethasone; ASTCT 4: methylpred
        assert a2["dexamethasone_mg"][0] + a2["methylprednisolone_mg"][0] >= 40.0
    a2, _ = z.decide(2, two_vp, z.decide(1, _obs(temperature_c=39.0, map_mmhg=62.0),
                                         z.initial_state(1))[1])
    assert a2["crs_grade"][0] == 4 and a2["dexamethasone_mg"][0] == 40.0
    assert a2["methylprednisolone_mg"][0] == 0.0


def test_protocol_and_endpoints_read_the_same_high_dose_vasopressor() -> None:
    from cartsim.clinic.protocol import GradingConfig
    from cartsim.trial.endpoints import TOXICITY_PARAMS

    assert GradingConfig().norepinephrine_ug_min_per_mmhg == \
        TOXICITY_PARAMS["norepinephrine_ug_min_per_mmhg"].default


def test_high_dose_vasopressor_falls_at_a_ten_mmhg_deficit() -> None:
    """Session 20: 2 µg/min of norepinephrine per mmHg of MAP deficit (distributive-shock
    dosing), so the older scales' 20 µg/min high dose needs a 10-mmHg deficit, not the
    20 mmHg where a second agent is added; Lee grade 3 follows it on one vasopressor."""
    import numpy as np

    from cartsim.clinic.crs import lee2014_crs_grade, support_features, support_flags
    from cartsim.trial.endpoints import TOXICITY_PARAMS

    k = TOXICITY_PARAMS["norepinephrine_ug_min_per_mmhg"].default
    deficit = np.array([5.0, 9.5, 10.0, 15.0])
    one = np.ones(4, dtype=int)
    f = support_features(np.ones(4, bool), np.ones(4, bool), one, np.zeros(4, bool),
                         np.zeros(4, dtype=int), deficit, k)
    assert support_flags(f)["high_dose_vasopressor"].tolist() == [False, False, True, True]
    assert np.asarray(lee2014_crs_grade(f)).tolist() == [2, 2, 3, 3]
    # the session-19 conversion (1 µg/min per mmHg) needed twice the deficit
    f1 = support_features(np.ones(4, bool), np.ones(4, bool), one, np.zeros(4, bool),
                          np.zeros(4, dtype=int), deficit, 1.0)
    assert not support_flags(f1)["high_dose_vasopressor"].any()


def test_the_paediatric_zuma_era_protocol_differs_only_in_the_tocilizumab_trigger() -> None:
    """ZUMA-4's children: Lee 2014's grade-2 qualifier (comorbidities or older age) leaves
    grade 2 without tocilizumab; every other setting is zuma1_2015's."""
    adult = load_protocol("zuma1_2015").config.model_dump()
    child = load_protocol("zuma1_2015_paediatric").config.model_dump()
    assert adult["tocilizumab"]["trigger_crs_grade"] == 2
    assert child["tocilizumab"]["trigger_crs_grade"] == 3
    differing = {k for k in adult if adult[k] != child[k]}
    assert differing == {"name", "description", "sources", "base", "tocilizumab"}
    adult["tocilizumab"]["trigger_crs_grade"] = 3
    assert adult["tocilizumab"] == child["tocilizumab"]


def test_penn_steroids_wait_for_crs_still_as_severe_as_tocilizumab_needed(
        tmp_path: Path) -> None:
    """crs_steroids.require_tocilizumab_severity (penn_ctl019): after two tocilizumab doses a
    patient still on two vasopressors gets methylprednisolone; one weaned to one vasopressor
    (ASTCT grade 3) is responding and gets none; without the rule the same patient does."""
    two_vp = _obs(temperature_c=39.0, map_mmhg=40.0)  # deficit 25: two vasopressors, grade 4
    one_vp = _obs(temperature_c=37.0, map_mmhg=59.0)  # deficit 6: one vasopressor, grade 3
    f = tmp_path / "without.toml"
    f.write_text('name = "without"\nbase = "penn_ctl019"\n[crs_steroids]\n'
                 "require_tocilizumab_severity = false\n")
    penn, without = load_protocol("penn_ctl019"), load_protocol(f)
    assert penn.config.crs_steroids.require_tocilizumab_severity
    for policy, day4, steroid in ((penn, two_vp, True), (penn, one_vp, False),
                                  (without, one_vp, True)):
        st = policy.initial_state(1)
        for day in (2, 3):
            a, st = policy.decide(day, two_vp, st)
            assert a["tocilizumab_mg"][0] > 0
        a, _ = policy.decide(4, day4, st)
        given = a["dexamethasone_mg"][0] + a["methylprednisolone_mg"][0] > 0
        assert given == steroid, (policy.name, day4["map_mmhg"][0])


def test_tocilizumab_severity_for_steroids_needs_one_to_share(tmp_path: Path) -> None:
    """The steroid rule borrows the tocilizumab rule's severity: without one it is an error
    naming both fields, not a silent no-op."""
    f = tmp_path / "bad.toml"
    f.write_text('name = "bad"\nbase = "default"\n[crs_steroids]\n'
                 "require_tocilizumab_severity = true\n")
    with pytest.raises(InvalidInputError, match="require_tocilizumab_severity"):
        load_protocol(f)
