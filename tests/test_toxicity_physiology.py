"""Issue 14: CRS/ICANS physiology — readouts, chance events, grade depth and claim A15."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from cartsim.clinic.findings import EVENT_STREAMS, event_hazard, icans_findings
from cartsim.clinic.icans import astct_icans_grade
from cartsim.clinic.protocol import load_protocol
from cartsim.model.readouts import NORMAL_RANGES
from cartsim.population import Cohort
from cartsim.products import get_product
from cartsim.simulation import simulate


def _one_severe_adult() -> Cohort:
    # an adult with a full marrow: CD28 CAR-T, no management
    return Cohort("b-all", weight_kg=np.array([70.0]), age_y=np.array([30.0]),
                  marrow_blasts_pct=np.array([90.0]))


@pytest.fixture(scope="module")
def severe_adult():  # type: ignore[no-untyped-def]
    return simulate(_one_severe_adult(), get_product("axi-cel"), days=28, seed=3,
                    variability=False).trajectories


def test_new_readouts_have_units_and_normal_ranges_and_move_on_one_patient(severe_adult) -> None:  # type: ignore[no-untyped-def]
    t = severe_adult
    for col in ("il1_pg_ml", "nfl_pg_ml"):
        lo, hi, unit = NORMAL_RANGES[col]
        assert unit == "pg/mL" and lo < hi
        before = float(t.loc[t["day"] == -5, col].iloc[0])
        assert lo <= before <= hi, col  # normal before treatment
        assert t.loc[t["day"] >= 0, col].max() > hi, col  # abnormal during CRS/ICANS
    # NfL (neuronal injury) peaks after the encephalopathy does and clears over weeks
    enc_peak = int(t.loc[t["encephalopathy"].idxmax(), "day"])
    nfl_peak = int(t.loc[t["nfl_pg_ml"].idxmax(), "day"])
    assert nfl_peak > enc_peak


def test_an_adult_can_fail_the_ice_score(severe_adult) -> None:  # type: ignore[no-untyped-def]
    """ICE 0-2 (ASTCT ICANS grade 3) is reachable from the encephalopathy of an adult."""
    t = severe_adult
    ice = t.loc[t["day"] >= 0, "ice_score"]
    assert ice.min() <= 2
    assert np.asarray(astct_icans_grade(ice.min(), age_y=30.0)) >= 3


def test_capd_and_ice_give_the_same_grade_at_the_same_encephalopathy() -> None:
    enc = np.linspace(0.0, 5.0, 501)
    f = icans_findings(enc)
    ice = np.rint(10.0 * (1.0 - enc**2 / (enc**2 + 1.0)))
    adult = np.asarray(astct_icans_grade(ice, age_y=30.0))
    child = np.asarray(astct_icans_grade(capd_score=f["capd_score"], age_y=6.0))
    # grade 3 begins at (nearly) the same E for both tools
    e_adult = enc[np.argmax(adult >= 3)]
    e_child = enc[np.argmax(child >= 3)]
    assert abs(e_adult - e_child) < 0.1


def test_a_deeply_encephalopathic_child_reaches_ctcae_grade_3_from_capd(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Session 21: CAPD runs on past the ICE <= 2 point to 24 at full encephalopathy, so the
    CTCAE encephalopathy grade 3 (CAPD >= 18) of a child is reachable; with the session-20 law
    (capd_max * f throughout, CAPD <= 11) it never was. Below the ICE <= 2 point nothing moves."""
    from cartsim.clinic import findings
    from cartsim.clinic.neurotox import ctcae_neuro_grade

    enc = np.linspace(0.0, 20.0, 2001)
    f = enc**2 / (enc**2 + 1.0)
    capd = icans_findings(enc)["capd_score"]
    assert capd.max() >= 18 and np.all(np.diff(capd) >= 0)
    mild = f <= findings.F_ICE_SEVERE
    assert np.array_equal(capd[mild], np.rint(findings.CAPD_MAX * f[mild]))
    grade = np.asarray(ctcae_neuro_grade(capd_score=capd, age_y=6.0))
    e3 = enc[np.argmax(grade >= 3)]
    assert grade.max() == 3 and 2.0 < e3 < 4.0  # before 'awakens only to touch' (E > 4)
    # the neutral value gives back the straight line, which never reaches 18
    monkeypatch.setattr(findings, "CAPD_UNRESPONSIVE", findings.CAPD_MAX)
    old = icans_findings(enc)["capd_score"]
    assert np.array_equal(old, np.rint(findings.CAPD_MAX * f))
    assert old.max() <= 11
    assert np.asarray(ctcae_neuro_grade(capd_score=old, age_y=6.0)).max() == 2


def test_neurological_chance_events_are_keyed_per_patient_and_set_by_the_state() -> None:
    pid = np.arange(2000)
    days = np.arange(30)
    enc = np.full((pid.size, days.size), 5.0)
    whole = icans_findings(enc, 11, pid[:, None], days[None, :])
    part = icans_findings(enc[1500:], 11, pid[1500:, None], days[None, :])
    for k in ("seizure", "motor_weakness", "cerebral_edema"):
        # the same patient-days give the same events whatever the chunk
        assert np.array_equal(whole[k][1500:], part[k])
        stream, h_max, half = EVENT_STREAMS[k]
        expected = -np.expm1(-event_hazard(np.array(5.0), h_max, half))
        assert whole[k].mean() == pytest.approx(float(expected), abs=0.01)
    calm = icans_findings(np.full((pid.size, days.size), 0.2), 11, pid[:, None], days[None, :])
    assert calm["seizure"].mean() < 0.1 * whole["seizure"].mean()
    # different seeds: different patients seize
    other = icans_findings(enc, 12, pid[:, None], days[None, :])
    assert not np.array_equal(other["seizure"], whole["seizure"])


def _event_share(enc_course: np.ndarray, hill: float | None = None) -> dict[str, float]:
    """Share of 4000 draws of ONE patient's encephalopathy course with each chance event."""
    pid = np.arange(4000)
    days = np.arange(enc_course.size)
    enc = np.broadcast_to(enc_course, (pid.size, days.size))
    kw = {} if hill is None else {"hill": hill}
    f = icans_findings(enc, 7, pid[:, None], days[None, :], **kw)
    return {k: float(f[k].max(axis=1).mean())
            for k in ("seizure", "motor_weakness", "cerebral_edema")}


def test_chance_events_belong_to_severe_encephalopathy_not_to_weeks_of_mild_one() -> None:
    """Issue 14 item 2 (session 6): one patient with four weeks of mild encephalopathy after CRS
    (E 0.8, ICE 6: ICANS grade 2) rarely seizes and almost never has cerebral oedema; a
    three-day severe episode (E 4, unarousable) carries the events. Seizures in ≈ 5–10 % of
    axi-cel patients (Neelapu 2017), cerebral oedema < 1 % (docs/model.md)."""
    mild = np.full(28, 0.8)
    severe = np.concatenate([np.full(3, 4.0), np.zeros(25)])
    m, s = _event_share(mild), _event_share(severe)
    assert m["seizure"] < 0.01 and m["cerebral_edema"] < 0.001 and m["motor_weakness"] < 0.001
    assert s["seizure"] > 10 * max(m["seizure"], 1e-3)
    assert s["seizure"] > 0.3  # half-maximal hazard at E 4, three days
    # the session-5 law (n = 3, the neutral value) let the mild weeks add up
    old = _event_share(mild, hill=3.0)
    assert old["seizure"] > 0.05 and old["cerebral_edema"] > 0.005  # 9 % and 1.4 %


def test_event_hill_neutral_value_gives_the_session5_hazard_and_is_checked() -> None:
    """The off switch: ``hill=3`` (tests/neutral_values.py FINDINGS_S5_OFF) is the session-5
    hazard h_max·x³/(1 + x³); outside [1, 10] is a clear error naming the field."""
    import sys
    from pathlib import Path

    from cartsim.errors import InvalidInputError

    sys.path.insert(0, str(Path(__file__).parent))
    from neutral_values import FINDINGS_S5_OFF

    e = np.linspace(0.0, 10.0, 41)
    for _stream, h_max, half in EVENT_STREAMS.values():
        x = (e / half) ** 3
        got = event_hazard(e, h_max, half, FINDINGS_S5_OFF["event_hill"])
        np.testing.assert_allclose(got, h_max * x / (1.0 + x), rtol=1e-12)
        assert not np.allclose(event_hazard(e, h_max, half), got)  # the default differs
    with pytest.raises(InvalidInputError, match="event_hill"):
        event_hazard(e, 0.4, 4.0, 0.5)


def test_cd28_brings_crs_earlier_and_higher_than_4_1bb_through_its_kinetics() -> None:
    """Same patients, same dose per kg: axi-cel (CD28) vs tisagenlecleucel (4-1BB); no
    host-side toxicity constant (IL-6, IL-1, myeloid, endothelium, BBB, encephalopathy)
    differs between the constructs (products.COSTIM_EFFECTS): only the CAR-T cell's own
    kinetics and its contact signal to myeloid cells (K_my_car: CD40L/GM-CSF) do.

    Session 25 (the infused product's cytokine competence): the CD28 fever starts at the first
    antigen encounters (published medians: axi-cel day 2, tisagenlecleucel day 3), and its IL-6
    peak is higher where the burden is small; in the bulkiest half the 4-1BB product's later,
    kill-driven IL-6 peak is as high (the median over all 12 was 28.5 vs 29.4 pg/mL)."""
    from cartsim.products import COSTIM_EFFECTS

    toxicity = {"p_il6", "p_il1", "p_il6_my", "k_enc", "k_bbb", "k_en", "k_my", "K_fever",
                "K_en_il6", "K_bbb", "a_my", "K_my_kill"}
    assert not toxicity & set(COSTIM_EFFECTS["CD28"])
    assert COSTIM_EFFECTS["CD28"]["K_my_car"] < 1.0
    # adults with LBCL at 2e6/kg: the published contrast (ZUMA-1 CRS 93 %, JULIET 58 %); in
    # high-burden B-ALL the kill-driven IL-6 of either construct dominates the peak
    n = 12
    c = Cohort("lbcl", weight_kg=np.full(n, 75.0), age_y=np.full(n, 58.0),
               tumour_volume_ml=np.geomspace(10, 300, n), dose=np.full(n, 75.0 * 2e6))
    peaks, onset = {}, {}
    for prod in ("axi-cel", "tisagenlecleucel"):
        t = simulate(c, get_product(prod), days=21, seed=2, variability=False,
                     overrides={"cd28_ex_overload_x": 1.0}).trajectories
        t = t[t["day"] >= 0]
        g = t.groupby("patient_id")
        peaks[prod] = (g["il6_pg_ml"].max().to_numpy(),
                       t.loc[g["il6_pg_ml"].idxmax(), "day"].to_numpy())
        febrile = t[t["temperature_c"] >= 38.0].groupby("patient_id")["day"].min()
        onset[prod] = febrile.reindex(range(n)).to_numpy()  # NaN: never febrile
    small = slice(0, n // 2)  # the smaller burdens (tumour_volume_ml ascending)
    assert np.median(peaks["axi-cel"][0][small]) > np.median(peaks["tisagenlecleucel"][0][small])
    assert np.median(peaks["axi-cel"][1]) <= np.median(peaks["tisagenlecleucel"][1])
    assert np.isfinite(onset["axi-cel"]).sum() >= np.isfinite(onset["tisagenlecleucel"]).sum()
    assert np.nanmedian(onset["axi-cel"]) + 2 <= np.nanmedian(onset["tisagenlecleucel"])


def test_cd28_contact_signal_activates_more_myeloid_cells_per_engaged_car_t() -> None:
    """cd28_K_my_car_x (products.CD28_PARAMS): an engaged CD28 CAR-T activates myeloid cells
    by contact at a 50× lower concentration (CD40L/GM-CSF; 20× before session 25 lowered
    K_my_car itself and added the effectors' cytokine competence, 5× from session 25 to 49,
    when the 4-1BB half-activation was 0.1 × 10⁹/L, not 1.0), so the same adult with a small
    LBCL burden (3 mL; 10 mL before session 25, when the 4-1BB-like contact
    signal was weaker) has CRS (fever ≥ 38 °C) with axi-cel; at the neutral value 1.0 the
    multiplier is gone and the patient's parameter vector is the one of a construct without
    it."""
    from cartsim import parameter_sets as psets
    from cartsim.model.parameters import P
    from cartsim.parameter_sets import ParameterSet
    from cartsim.population import build

    c = Cohort("lbcl", weight_kg=np.array([75.0]), age_y=np.array([58.0]),
               tumour_volume_ml=np.array([3.0]), dose=np.array([75.0 * 2e6]))
    axi = get_product("axi-cel")
    neutral = ParameterSet("neutral", "test", {"cd28_K_my_car_x": {"default": 1.0}})
    with psets.use(None):
        p_on, _ = build(c, axi, seed=1, variability=False)
        t_on = simulate(c, axi, days=21, seed=1, variability=False).trajectories
    with psets.use(neutral):
        p_off, _ = build(c, axi, seed=1, variability=False)
        t_off = simulate(c, axi, days=21, seed=1, variability=False).trajectories
    from cartsim.products import COSTIM_EFFECTS

    x = COSTIM_EFFECTS["CD28"]["K_my_car"]
    assert x == 0.02
    assert p_on[0, P.K_my_car] == pytest.approx(x * p_off[0, P.K_my_car])
    keep = np.arange(p_on.shape[1]) != P.K_my_car
    assert np.array_equal(p_on[0, keep], p_off[0, keep])
    assert t_on["temperature_c"].max() >= 38.0 > t_off["temperature_c"].max()
    assert t_on["il6_pg_ml"].max() > 2.0 * t_off["il6_pg_ml"].max()


def test_a15_tocilizumab_at_a_small_il6_rise_goes_with_more_severe_crs() -> None:
    """SEEDS A15 (Zhang 2022): patients first given tocilizumab while IL-6 had risen < 4-fold
    have more severe CRS (P < 0.05). Tocilizumab from grade 1 (fever) lets the IL-6 fold at
    the first dose vary; the mechanism is in docs/model.md (IL-1-dominant myeloid responses
    are febrile before IL-6 rises and are not touched by IL-6 receptor blockade).

    600 children (150 until session 38, 400 until session 45): the effect is about 0.1-0.15 of
    a grade, and at 150 the test's P was 0.048 with this generator and 0.052 with the next one;
    at 400 it was 0.002-0.009 over four generators (session 38). With session 45's saturating
    lymphodepletion kill, at 400 this generator gave 0.051 and the next two 0.002 and 0.004;
    at 600 it gives 0.004 (this test's body run with generators 3, 4 and 5). Session 50's weaker
    4-1BB contact signal (K_my_car 0.1 -> 1.0) leaves fewer early, contact-driven fevers and
    gives 0.024 here (docs/validation.md "Session 50")."""
    n = 600
    rng = np.random.default_rng(3)
    c = Cohort("b-all", weight_kg=rng.uniform(15, 70, n), age_y=rng.uniform(4, 24, n),
               marrow_blasts_pct=rng.uniform(5, 95, n))
    res = simulate(c, get_product("tisagenlecleucel"), days=28, seed=7,
                   protocol=load_protocol("early_tocilizumab"))
    t = res.trajectories.set_index(["patient_id", "day"])["il6_pg_ml"]
    ev = res.events
    first = ev[ev["event"] == "tocilizumab"].groupby("patient_id")["day"].min()
    worst = ev[ev["event"] == "crs_grade"].groupby("patient_id")["value"].max()
    fold = np.array([t[(p, d)] / t[(p, -5)] for p, d in first.items()])
    grade = worst.reindex(first.index).fillna(0).to_numpy()
    low, high = grade[fold < 4.0], grade[fold >= 4.0]
    assert low.size >= 10 and high.size >= 10
    assert low.mean() > high.mean()
    assert mannwhitneyu(low, high, alternative="greater").pvalue < 0.05


# ---- age: endothelial and blood–brain-barrier vulnerability (issue 14, session 5) ------------


def _inflammation_rates(age_y: float, overrides: dict[str, float] | None = None
                        ) -> tuple[float, float]:
    """d(EN)/dt and d(BBB)/dt of one patient in a fixed inflammatory state (same IL-6, IFN-γ,
    IL-1, myeloid and endothelial activation), only the age differing."""
    from cartsim.model import inflammation
    from cartsim.model.state import S
    from cartsim.population import build

    c = Cohort("b-all", weight_kg=np.array([70.0]), age_y=np.array([age_y]),
               marrow_blasts_pct=np.array([50.0]))
    p, y = build(c, get_product("tisagenlecleucel"), seed=1, variability=False,
                 overrides=overrides)
    y0 = y[0].copy()
    y0[S.IL6], y0[S.IFNG], y0[S.IL1], y0[S.MY], y0[S.EN], y0[S.BBB] = (
        300.0, 100.0, 5.0, 0.5, 2.5, 0.1)
    dy = np.zeros_like(y0)
    inflammation.derivs(y0, p[0], dy, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return float(dy[S.EN]), float(dy[S.BBB])


def test_an_older_patient_in_the_same_state_has_more_endothelial_activation_and_bbb_leak() -> None:
    """Direction from the literature (parameter provenance of en_age_per_decade, bbb_age_exp):
    endothelial activation markers and the CSF/serum albumin quotient rise with age."""
    child, young, old = (_inflammation_rates(a) for a in (8.0, 20.0, 65.0))
    assert old[0] > young[0]  # endothelium: older activates faster
    assert child[0] == pytest.approx(young[0])  # flat through childhood (below en_age_ref_y)
    assert old[1] > young[1] > child[1]  # the barrier opens more easily with every year
    # the neutral values switch both off: age no longer matters
    off = {"en_age_per_decade": 0.0, "bbb_age_exp": 0.0}
    assert _inflammation_rates(8.0, off) == pytest.approx(_inflammation_rates(65.0, off))


def test_a_cd28_product_peaks_earlier_than_a_4_1bb_product() -> None:
    """CD28 costimulation: faster, earlier expansion (Salter 2018 Sci Signal; Kawalekar 2016
    Immunity) through COSTIM_EFFECTS — the CAR-T peak comes earlier and higher. (The
    co-stimulation kinetics alone: the CD28 antigen-overload exhaustion of session 17,
    tests/test_simulation.py, delays an overloaded CD28 expansion by about a day.)"""
    c = Cohort("b-all", weight_kg=np.array([40.0]), age_y=np.array([14.0]),
               marrow_blasts_pct=np.array([40.0]), dose=np.array([40.0e6]))
    peak = {}
    for prod in ("axi-cel", "tisagenlecleucel"):
        t = simulate(c, get_product(prod), days=21, seed=2, variability=False,
                     overrides={"cd28_ex_overload_x": 1.0}).trajectories
        t = t[t["day"] >= 0]
        i = t["cart_cells_per_ul"].idxmax()
        peak[prod] = (float(t.loc[i, "day"]), float(t.loc[i, "cart_cells_per_ul"]))
    assert peak["axi-cel"][0] < peak["tisagenlecleucel"][0]
    assert peak["axi-cel"][1] > peak["tisagenlecleucel"][1]


def test_with_the_age_terms_neutral_the_model_before_them_comes_back() -> None:
    """`core_trajectory_reference_2e7dac1.npz` is the default model just before the age terms
    (main 2e7dac1); at their neutral values (tests/neutral_values.py) it comes back to the
    solver tolerance (the parameter vector is longer, so the numerically detected Jacobian
    sparsity pattern can differ in the last bits)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from neutral_values import SESSION5_OFF, reference_cohort

    ref = np.load(Path(__file__).parent / "data" / "core_trajectory_reference_2e7dac1.npz")
    cohort = reference_cohort()
    t = simulate(cohort, get_product("tisagenlecleucel"), days=40, seed=11,
                 overrides=SESSION5_OFF).trajectories
    for col in ref.files:
        if col == "steps":
            continue
        a, b = t[col].to_numpy(), ref[col]
        m = np.isfinite(b) & (np.abs(b) > 1e-6)
        # 2e-3: the reference was written with the finite-difference Jacobian, which moves the
        # encephalopathy score by up to 9.5e-4 (tests/data/README.md, analytic Jacobian)
        np.testing.assert_allclose(a[m], b[m], rtol=2e-3, err_msg=col)


# ---- IL-1 needs a primed myeloid cell (issue 14, session 6) ---------------------------------


def _myeloid_rate(kills: float, engaged: float, ifng: float,
                  overrides: dict[str, float] | None = None) -> float:
    """d(MY)/dt of one child with myeloid cells active and serum IL-1 high, for the given
    primary stimuli (kills and engaged CAR-T per day, serum IFN-γ)."""
    from cartsim.model import inflammation
    from cartsim.model.state import S
    from cartsim.population import build

    c = Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([9.0]),
               marrow_blasts_pct=np.array([5.0]))
    p, y = build(c, get_product("tisagenlecleucel"), seed=1, variability=False,
                 overrides=overrides)
    y0 = y[0].copy()
    y0[S.IL6], y0[S.IFNG], y0[S.IL1], y0[S.MY], y0[S.EN] = 20.0, ifng, 10.0, 0.3, 0.3
    dy = np.zeros_like(y0)
    inflammation.derivs(y0, p[0], dy, kills, engaged, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return float(dy[S.MY])


def test_il1_amplifies_myeloid_activation_only_while_a_primary_stimulus_lasts() -> None:
    """Two-signal IL-1 biology: with the tumour gone, no CAR-T engaged and no IFN-γ, the IL-1
    loop no longer keeps myeloid cells active (the fever of CRS ends with its cause); with a
    primary stimulus IL-1 still amplifies it."""
    assert _myeloid_rate(0.0, 0.0, 0.0) < 0.0  # no cause: activation decays
    with_cause = _myeloid_rate(5e9, 1e8, 30.0)
    assert with_cause > 0.0
    # IL-1 adds to a primary stimulus (amplifier): faster than the same cause with the IL-1
    # signal blocked (K_il1 far above the serum IL-1)
    assert with_cause > _myeloid_rate(5e9, 1e8, 30.0, {"K_il1": 1e4}) + 0.05


def test_without_the_priming_gate_the_il1_loop_sustains_itself() -> None:
    """Off switch (K_il1_prime = 0, tests/neutral_values.py): the model before the gate, whose
    IL-1 loop had a gain > 1 at rest and kept myeloid cells active with no cause at all."""
    assert _myeloid_rate(0.0, 0.0, 0.0, {"K_il1_prime": 0.0}) > 0.0


# ---- activation-induced myeloid tolerance (issue 14, session 8: CRS duration) ----------------


def _myeloid_and_tolerance_rates(tol: float, overrides: dict[str, float] | None = None
                                 ) -> tuple[float, float]:
    """d(MY)/dt and d(MYTOL)/dt of one child whose CRS is under way (myeloid cells active,
    IL-1 high, CAR-T cells engaged and killing), at myeloid tolerance ``tol``."""
    from cartsim.model import inflammation
    from cartsim.model.state import S
    from cartsim.population import build

    c = Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([9.0]),
               marrow_blasts_pct=np.array([60.0]))
    p, y = build(c, get_product("tisagenlecleucel"), seed=1, variability=False,
                 overrides=overrides)
    y0 = y[0].copy()
    y0[S.IL6], y0[S.IFNG], y0[S.IL1], y0[S.MY], y0[S.EN] = 60.0, 20.0, 10.0, 1.5, 0.5
    y0[S.MYTOL] = tol
    dy = np.zeros_like(y0)
    inflammation.derivs(y0, p[0], dy, 5e9, 2e9, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return float(dy[S.MY]), float(dy[S.MYTOL])


def test_myeloid_tolerance_builds_with_activation_and_blocks_reactivation() -> None:
    """Endotoxin/cross-tolerance (Draisma 2009; Biswas 2009): activated myeloid cells become
    refractory, so under the same stimuli a tolerant compartment is re-activated less, and
    tolerance builds while myeloid cells are active."""
    on = {"k_my_tol": 0.1}
    d_my0, d_tol0 = _myeloid_and_tolerance_rates(0.0, on)
    d_my9, d_tol9 = _myeloid_and_tolerance_rates(0.9, on)
    assert d_tol0 > 0.0  # activation builds tolerance
    assert d_tol9 < d_tol0  # … and it saturates
    assert d_my9 < d_my0 - 0.5  # a tolerant compartment is re-activated far less
    assert d_my9 < 0.0  # the same stimuli no longer hold activation up


def test_without_myeloid_tolerance_the_model_before_it_comes_back() -> None:
    """Off switch (k_my_tol = 0, tests/neutral_values.py): no tolerance builds, and a
    tolerance state left at 0 leaves the myeloid rate exactly as before."""
    off = {"k_my_tol": 0.0}
    d_my, d_tol = _myeloid_and_tolerance_rates(0.0, off)
    assert d_tol == 0.0
    assert d_my == _myeloid_and_tolerance_rates(0.0, {"k_my_tol": 0.3})[0]


def test_spo2_readout_reaches_ventilation_and_the_old_shape_comes_back() -> None:
    """Session 16: the room-air SpO₂ readout (issue 14, severe CRS). Its old shape (24-point
    ceiling, Hill 3, K_ox 2) had a 74 % floor, so the default ladder's BiPAP and ventilation
    rungs (SpO₂ < 74 and < 68 %) were unreachable; the new one reaches them at high endothelial
    activation only, falls monotonically, and gives the old curve back with the old values."""
    from cartsim.clinic.crs import DEVICE_CODE
    from cartsim.clinic.protocol import load_protocol
    from cartsim.model.parameters import PARAMS
    from cartsim.model.readouts import SPO2_BASE_PCT, spo2_fall

    en = np.linspace(0.0, 8.0, 401)
    one = np.ones_like(en)
    new = SPO2_BASE_PCT - spo2_fall(en, PARAMS["spo2_drop_max"].default * one,
                                    PARAMS["spo2_hill"].default * one,
                                    PARAMS["K_ox"].default * one)
    old = SPO2_BASE_PCT - spo2_fall(en, 24.0 * one, 3.0 * one, 2.0 * one)
    np.testing.assert_array_equal(old, SPO2_BASE_PCT - 24.0 * en**3 / (en**3 + 2.0**3))
    assert np.all(np.diff(new) <= 0) and np.all(np.diff(old) <= 0)
    assert old.min() > 74.0 and new.min() < 50.0
    policy = load_protocol("default")
    dev_new = policy.oxygen_device(new, 30.0 * one)
    dev_old = policy.oxygen_device(old, 30.0 * one)
    vent = DEVICE_CODE["mechanical_ventilation"]
    assert not (dev_old >= DEVICE_CODE["bipap"]).any()
    assert (dev_new == vent).any()
    # mild activation (EN ≤ 1) needs no oxygen, as before; ventilation needs EN ≳ K_ox
    assert (dev_new[en <= 1.0] == 0).all() and (dev_old[en <= 1.0] == 0).all()
    assert en[np.argmax(dev_new == vent)] > PARAMS["K_ox"].default


def test_effector_fraction_is_a_share_even_when_populations_dip_below_zero() -> None:
    """The dense solver's continuous output can leave a population a hair below zero; the
    effectors' share of blood CAR-T then stays in [0, 1] (the unclipped ratio gave a
    negative share for row 2), and is NaN without CAR-T."""
    from cartsim.model.readouts import effector_fraction
    from cartsim.model.state import N_STATES, S

    y = np.zeros((4, N_STATES))
    y[0, [S.E_b, S.M_b, S.X_b]] = [3e-310, -2.9e-310, 0.0]  # nearly cancelling sum
    y[1, [S.E_b, S.M_b, S.X_b]] = [30.0, 10.0, 60.0]
    y[2, [S.E_b, S.M_b, S.X_b]] = [-1e-12, 5.0, 0.0]
    with np.errstate(all="raise"):
        share = effector_fraction(y)
    assert share[0] == 1.0
    assert share[1] == pytest.approx(0.3)
    assert share[2] == 0.0
    assert np.isnan(share[3])


# ---- the endothelial IL-6 trans-signalling circuit (session 38) ------------------------------


def _en_rate(share: float, toci_occupancy: float) -> float:
    """d(EN)/dt of one adult in a fixed severe-CRS state at a tocilizumab occupancy."""
    from cartsim.model import inflammation
    from cartsim.model.state import S
    from cartsim.population import build

    c = Cohort("b-all", weight_kg=np.array([70.0]), age_y=np.array([30.0]),
               marrow_blasts_pct=np.array([50.0]))
    p, y = build(c, get_product("tisagenlecleucel"), seed=1, variability=False,
                 overrides={"ang_il6_share": share})
    y0 = y[0].copy()
    y0[S.IL6], y0[S.IFNG], y0[S.IL1], y0[S.MY], y0[S.EN], y0[S.BBB] = (
        300.0, 100.0, 5.0, 0.5, 2.5, 0.1)
    dy = np.zeros_like(y0)
    inflammation.derivs(y0, p[0], dy, 0.0, 0.0, toci_occupancy, 0.0, 0.0, 0.0, 1.0, 0.0)
    return float(dy[S.EN])


def test_il6_blockade_removes_the_il6_share_of_endothelial_self_amplification() -> None:
    """ang_il6_share (Kang 2020: endothelial IL-6 trans-signalling circuit, blunted by
    tocilizumab): with IL-6 signalling blocked, the endothelium activates less the larger the
    share, in proportion to it; without blockade the share changes nothing."""
    assert _en_rate(1.0, 0.0) == _en_rate(0.0, 0.0)
    off, half, full = (_en_rate(s, 0.9) for s in (0.0, 0.5, 1.0))
    assert full < half < off
    assert half == pytest.approx((off + full) / 2, rel=1e-12)


def test_without_tocilizumab_the_il6_share_leaves_the_trajectory_exactly() -> None:
    """No anti-IL-6 drug given (no protocol): ang_il6_share 1 gives the same trajectory as 0,
    bit for bit; with the default protocol's tocilizumab, endothelial activation after the
    first dose falls faster with the share than without it."""
    c = _one_severe_adult()
    prod = get_product("axi-cel")
    runs = {s: simulate(c, prod, days=28, seed=3, variability=False,
                        overrides={"ang_il6_share": s}).trajectories for s in (0.0, 1.0)}
    cols = [k for k in runs[0.0].columns if k not in ("patient_id", "day")]
    np.testing.assert_array_equal(runs[0.0][cols].to_numpy(), runs[1.0][cols].to_numpy())
    pol = load_protocol("default")
    treated = {s: simulate(c, prod, days=28, seed=3, variability=False, protocol=pol,
                           overrides={"ang_il6_share": s}) for s in (0.0, 1.0)}
    ev = treated[0.0].events
    first = int(ev[ev["event"] == "tocilizumab"]["day"].min())
    maps = {s: r.trajectories.set_index("day")["map_mmhg"] for s, r in treated.items()}
    after = [d for d in maps[0.0].index if first + 2 <= d <= first + 6]
    assert after and all(maps[1.0][d] >= maps[0.0][d] for d in after)
    assert any(maps[1.0][d] > maps[0.0][d] + 0.5 for d in after)
