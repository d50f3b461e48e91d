"""Row comparison on a synthetic patients table (no simulation): rates with hand-checked
Clopper–Pearson limits, inside-CI / within-10-points logic, KM landmarks, medians,
scale-specific CRS, counts, subgroups and unmapped reasons."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartsim.trial.spec import load_spec
from cartsim.validate.compute import order_statistic_ci
from cartsim.validate.library import load_library
from cartsim.validate.mapping import default_mapping
from cartsim.validate.run import StudyRun, compare_row, summarise
from cartsim.validate.targets import TargetRow

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
N = 20


@pytest.fixture(scope="module")
def patients() -> pd.DataFrame:
    i = np.arange(N)
    os_days = np.where(i < 5, 100.0, 365.0)  # 5 deaths on day 100, the rest censored at 365
    return pd.DataFrame({
        "arm": "tisagenlecleucel", "arm_index": 0, "patient_id": i,
        "responder": (i < 16).astype(np.int8),               # 16/20
        "complete_response": (i < 10).astype(np.int8),       # 10/20
        "best_response": np.where(i < 10, "CR", np.where(i < 16, "CRi", "NR")),
        "crs_max_grade": np.where(i < 12, 2, 0),
        "crs_max_grade_penn": np.where(i < 8, 3, np.where(i < 14, 1, 0)),   # >=3: 8/20
        "crs_max_grade_lee2014": np.where(i < 2, 3, np.where(i < 14, 1, 0)),  # >=3: 2/20
        "crs_max_grade_ctcae_v4.03": np.where(i < 4, 4, 0),                # >=3: 4/20
        "crs_onset_day": np.where(i < 12, (i % 5) + 1.0, np.nan),
        "icans_max_grade": np.zeros(N, dtype=np.int8),
        "neuro_max_grade_ctcae_v4.03": np.zeros(N, dtype=np.int8),
        "neuro_max_grade_ctcae_v5.0": np.where(i < 3, 3, 0).astype(np.int8),
        "tocilizumab_doses": np.where(i < 6, 1, 0),
        "tp53_altered": (i % 2).astype(float),
        "os_days": os_days, "os_event": (i < 5).astype(np.int8),
        "death": (i < 5).astype(np.int8),
        "death_day": np.where(i < 5, 100.0, np.nan),
        "death_cause": np.where(i < 5, "progression", None),
    })


@pytest.fixture(scope="module")
def setting(patients: pd.DataFrame) -> tuple:
    lib = load_library(DATA)
    entry = lib.entry_for("ELIANA")
    assert entry is not None
    spec = load_spec(ROOT / "examples" / "eliana.toml")  # crs_scale penn, follow-up 365 d
    runs = {entry.key: StudyRun(entry, spec, patients, pd.DataFrame(), 0.0)}
    return lib, runs


def target(endpoint: str, value: float, lo: float | None = None, hi: float | None = None,
           unit: str = "percent", timepoint: str = "", scale: str = "", subgroup: str = "all",
           n: int | None = 75, line: int = 99, study: str = "ELIANA") -> TargetRow:
    return TargetRow(line, study, "B-ALL", n, subgroup, endpoint, timepoint, value, lo, hi,
                     unit, scale)


def compare(setting: tuple, row: TargetRow) -> dict:
    lib, runs = setting
    return compare_row(row, default_mapping(), lib, runs)


def test_rate_clopper_pearson_and_flags(setting: tuple) -> None:
    r = compare(setting, target("ORR_CR_CRi", 81, 71, 89, timepoint="within 3 months"))
    assert r["status"] == "compared" and r["n_simulated"] == N
    assert r["simulated"] == pytest.approx(80.0)
    # R: binom.test(16, 20)$conf.int = 0.5633860 0.9426660
    assert r["simulated_ci_low"] == pytest.approx(56.33860, abs=1e-4)
    assert r["simulated_ci_high"] == pytest.approx(94.26660, abs=1e-4)
    assert r["inside_published_ci"] is True and r["within_10_points"] is True
    assert r["passes"] is True and r["difference"] == pytest.approx(-1.0)
    assert "not applied" not in (r["notes"] or "")  # 3 months = the day-91 response window

    r = compare(setting, target("CR", 60, 45, 70))
    # 10/20: R binom.test(10, 20)$conf.int = 0.2719578 0.7280422
    assert r["simulated"] == pytest.approx(50.0)
    assert r["simulated_ci_low"] == pytest.approx(27.19578, abs=1e-4)
    assert r["inside_published_ci"] is True and r["within_10_points"] is True

    r = compare(setting, target("CR", 75))  # no published CI: judged within 10 points
    assert r["inside_published_ci"] is None and r["within_10_points"] is False
    assert r["passes"] is False and r["difference"] == pytest.approx(-25.0)


def test_zero_events_upper_limit_closed_form(setting: tuple) -> None:
    """k = 0: the Clopper–Pearson upper limit is 1 - (alpha/2)^(1/n)."""
    r = compare(setting, target("neurotox_any", 10, 2, 30, scale="CTCAE v4.03"))
    assert r["simulated"] == 0.0 and r["simulated_ci_low"] == 0.0
    assert r["simulated_ci_high"] == pytest.approx(100 * (1 - 0.025 ** (1 / N)), rel=1e-9)
    assert "CTCAE v4.03 neurological events" in r["notes"]  # its own grade, said so


def test_neurotoxicity_rows_read_the_grade_of_their_own_scale(setting: tuple) -> None:
    # CTCAE v5 rows read the v5 neurological-event grade (3/20), ASTCT rows ICANS (0/20)
    r = compare(setting, target("neurotox_grade_ge3", 10, 2, 30, scale="CTCAE v5.0"))
    assert r["simulated"] == pytest.approx(15.0)
    r = compare(setting, target("neurotox_grade_ge3", 10, 2, 30, scale="ASTCT"))
    assert r["simulated"] == 0.0 and "ICANS" in r["notes"]


def test_crs_on_the_rows_scale(setting: tuple) -> None:
    penn = compare(setting, target("CRS_grade_ge3", 47, scale="Penn"))
    lee = compare(setting, target("CRS_grade_ge3", 13,
                                  scale="Lee 2014 (modified) [scale not stated in abstract]"))
    assert (penn["scale"], penn["simulated"]) == ("penn", pytest.approx(40.0))
    assert (lee["scale"], lee["simulated"]) == ("lee2014", pytest.approx(10.0))
    ctcae = compare(setting, target("CRS_grade_ge3", 13, scale="CTCAE v4.03"))
    assert (ctcae["scale"], ctcae["simulated"]) == ("ctcae_v4.03", pytest.approx(20.0))
    blank = compare(setting, target("CRS_grade_ge3", 47))
    assert blank["scale"] == "penn" and "spec's crs_scale" in blank["notes"]
    among = compare(setting, target("tocilizumab_among_CRS", 40, scale="Penn"))
    assert among["n_simulated"] == 14 and among["simulated"] == pytest.approx(100 * 6 / 14)


def test_km_landmark_and_beyond_follow_up(setting: tuple) -> None:
    r = compare(setting, target("OS", 76, 63, 86, timepoint="12 months"))
    assert r["status"] == "compared" and r["simulated"] == pytest.approx(75.0)
    assert r["simulated_ci_low"] < 75 < r["simulated_ci_high"]
    assert r["inside_published_ci"] is True
    far = compare(setting, target("OS", 70, 58, 79, timepoint="18 months"))
    assert far["status"] == "unmapped" and "beyond the spec's follow-up" in far["reason"]
    none = compare(setting, target("OS", 70))
    assert none["status"] == "unmapped" and "landmark needs a time point" in none["reason"]


def test_median_with_order_statistic_ci(setting: tuple, patients: pd.DataFrame) -> None:
    r = compare(setting, target("CRS_onset_median", 3, unit="days"))
    x = patients["crs_onset_day"].dropna().to_numpy()
    assert r["simulated"] == pytest.approx(float(np.median(x))) and r["n_simulated"] == 12
    assert r["unit"] == "days" and r["within_10_points"] is None and r["passes"] is None
    # n = 10: the distribution-free 95 % interval is (x(2), x(9)) (coverage 97.9 %)
    xs = np.arange(1.0, 11.0)
    assert order_statistic_ci(xs) == (2.0, 9.0)


def test_count_with_denominator_becomes_percent(setting: tuple) -> None:
    r = compare(setting, target("ORR_CR_CRi_count", 65, unit="count (of 79)"))
    assert r["unit"] == "percent" and r["published"] == pytest.approx(100 * 65 / 79)
    assert "count 65 of 79" in r["notes"]
    r = compare(setting, target("toxicity_related_deaths", 1, unit="count", n=75))
    assert r["published"] == pytest.approx(100 / 75) and r["simulated"] == 0.0
    r = compare(setting, target("toxicity_related_deaths", 1, unit="count", n=None))
    assert r["status"] == "unmapped" and "denominator" in r["reason"]


def test_one_sided_published_ci(setting: tuple) -> None:
    """PFS_median 27.6 (11–NR): only the lower limit is given."""
    r = compare(setting, target("OS", 76, 70, None, timepoint="6 months"))
    assert r["inside_published_ci"] is True  # 75 >= 70, no upper limit


def test_unmapped_reasons(setting: tuple) -> None:
    r = compare(setting, target("SHR_CD19pos_relapse_low_burden", 5.3, unit="hazard ratio"))
    assert r["status"] == "unmapped" and "subdistribution hazard ratios" in r["reason"]
    r = compare(setting, target("CR", 40, subgroup="NOXA low"))
    assert r["status"] == "unmapped" and r["reason"].startswith("subgroup")
    r = compare(setting, target("CR", 40, unit="months"))
    assert r["status"] == "unmapped" and "unit 'months'" in r["reason"]
    r = compare(setting, target("CR", 40, study="Some other trial"))
    assert r["status"] == "unmapped" and "no spec" in r["reason"]
    r = compare(setting, target("CR", 40, study="NOXA and CAR-T resistance"))
    assert r["status"] == "unexpressible" and "in vitro" in r["reason"]
    r = compare(setting, target("baseline_age_median", 11, unit="years", line=3))
    assert r["status"] == "baseline" and "used by the spec" in r["reason"]


def test_subgroup_query(setting: tuple) -> None:
    lib, runs = setting
    entry = runs["eliana"].entry
    entry.subgroups["TP53 altered"] = "tp53_altered == 1"
    try:
        r = compare(setting, target("ORR", 50, subgroup="TP53 altered"))
    finally:
        del entry.subgroups["TP53 altered"]
    assert r["n_simulated"] == 10 and r["simulated"] == pytest.approx(80.0)
    assert "tp53_altered == 1" in r["notes"]


def test_summary_shares(setting: tuple) -> None:
    rows = [target("ORR_CR_CRi", 81, 71, 89, line=2), target("CR", 75, line=3),
            target("CR", 55, line=4), target("HR_TP53", 2.0, unit="hazard ratio", line=5),
            target("baseline_age_median", 11, unit="years", line=6)]
    t = pd.DataFrame([compare(setting, r) for r in rows])
    s = summarise(t)["overall"]
    assert (s["compared"], s["unmapped"], s["baseline"]) == (3, 1, 1)
    assert (s["inside_ci"], s["with_published_ci"]) == (1, 1)
    assert (s["within_10_points"], s["percent_rows"]) == (2, 3)
    assert (s["passing"], s["judged"]) == (2, 3) and math.isclose(s["share_passing"], 0.6667)


def test_b_all_cr_without_cri_row_is_morphologic_cr(setting: tuple) -> None:
    """A B-ALL paper that reports one "CR" figure counts CR or CRi (Maude 2014, Lee 2015); one
    that also reports CRi (ELIANA) means CR with count recovery."""
    lib, runs = setting
    m = default_mapping()
    alone = compare_row(target("CR", 90), m, lib, runs, {"CR", "CRS_any"})
    assert alone["simulated"] == pytest.approx(80.0)  # responder: CR or CRi, 16/20
    assert "morphologic CR" in alone["notes"]
    paired = compare_row(target("CR", 60), m, lib, runs, {"CR", "CRi"})
    assert paired["simulated"] == pytest.approx(50.0)  # complete_response only, 10/20
    assert "morphologic" not in (paired["notes"] or "")
    lbcl = TargetRow(99, "ELIANA", "LBCL", 75, "all", "CR", "", 60, None, None, "percent", "")
    assert compare_row(lbcl, m, lib, runs, {"CR"})["simulated"] == pytest.approx(50.0)


def test_cytopenia_row_with_a_time_point_reads_that_day(setting: tuple,
                                                          patients: pd.DataFrame) -> None:
    """ "neutropenia grade >= 3 at 12 months" is the ANC on that day, not the worst grade ever;
    the nearest recorded day of a thinned daily table is used (within 4 days)."""
    lib, runs = setting
    entry = lib.entry_for("ELIANA")
    i = np.arange(N)
    pts = patients.assign(neutropenia_max_grade=np.full(N, 4),
                          neutropenia_emergent_grade=np.full(N, 4))
    daily = pd.DataFrame({"arm": "tisagenlecleucel", "patient_id": np.repeat(i, 2),
                          "day": np.tile([28, 364], N),
                          "anc_per_ul": np.where(np.repeat(i, 2) < 6, 500.0, 2000.0)})
    daily.loc[(daily["day"] == 364) & (daily["patient_id"] >= 3), "anc_per_ul"] = 2000.0
    own = {entry.key: StudyRun(entry, runs[entry.key].spec, pts, daily, 0.0)}
    m = default_mapping()
    worst = compare_row(target("neutropenia_grade_ge3", 90), m, lib, own)
    assert worst["simulated"] == pytest.approx(100.0)
    d28 = compare_row(target("neutropenia_grade_ge3", 30, timepoint="day 28"), m, lib, own)
    assert d28["simulated"] == pytest.approx(30.0)  # 6/20
    y1 = compare_row(target("neutropenia_grade_ge3", 10, timepoint="12 months"), m, lib, own)
    assert y1["simulated"] == pytest.approx(15.0) and "nearest recorded day" in y1["notes"]
    far = compare_row(target("neutropenia_grade_ge3", 10, timepoint="day 100"), m, lib, own)
    assert far["status"] == "unmapped"


def test_subgroup_label_override_for_one_endpoint(setting: tuple) -> None:
    """ "LABEL | ENDPOINT" in [study.subgroups] reads the label differently for that endpoint
    (a count of patients who went to HSCT is among the whole cohort, not among the HSCT
    patients the label names)."""
    from dataclasses import replace

    lib, runs = setting
    entry = lib.entry_for("ELIANA")
    subs = {**entry.subgroups, "to HSCT": "responder == 1", "to HSCT | CR": "all"}
    own = replace(lib, entries=tuple(replace(e, subgroups=subs) if e is entry else e
                                     for e in lib.entries))
    assert compare_row(target("ORR_CR_CRi", 80, subgroup="to HSCT"), default_mapping(), own,
                       runs)["simulated"] == pytest.approx(100.0)  # 16/16 responders
    assert compare_row(target("CR", 50, subgroup="to HSCT"), default_mapping(), own,
                       runs)["simulated"] == pytest.approx(50.0)   # 10/20: whole cohort


def test_landmark_hazard_ratio_recovers_a_known_ratio() -> None:
    """Relapse hazards 0.03/d (marrow blasts >= 1e-4 % on day 28) and 0.01/d: the landmark Cox
    hazard ratio is ~3; patients not in remission on day 28 are left out."""
    from cartsim.validate.compute import simulate_row
    from cartsim.validate.mapping import parse_timepoint

    rng = np.random.default_rng(5)
    n = 1200
    pos = np.arange(n) % 2 == 0
    t = 28 + rng.exponential(np.where(pos, 1 / 0.03, 1 / 0.01))
    relapse = t < 400
    pts = pd.DataFrame({"patient_id": np.arange(n), "responder": 1, "response_day": 28.0,
                        "relapse": relapse.astype(int),
                        "relapse_day": np.where(relapse, t, np.nan),
                        "last_day": np.where(relapse, t, 400.0)})
    pts.loc[:99, "responder"] = 0  # non-responders are not at risk
    daily = pd.DataFrame({"patient_id": np.arange(n), "day": 28,
                          "marrow_blast_pct": np.where(pos, 1e-3, 1e-6)})
    q = default_mapping().quantities["HR_relapse_BM_NGS_MRD_pos"]
    sim = simulate_row(q, "ratio", parse_timepoint("day 28"), "", "penn", 400, pts, daily)
    assert sim.status == "compared" and sim.n == n - 100
    assert 2.6 < sim.value < 3.5 and sim.lower < sim.value < sim.upper
    none = simulate_row(q, "ratio", parse_timepoint(""), "", "penn", 400, pts, daily)
    assert none.status == "unmapped" and "time point" in none.reason


def test_landmark_hazard_ratio_under_quasi_separation_is_not_compared() -> None:
    """One relapse among the MRD-negative, every MRD-positive patient relapsing at once: the
    Cox fit returns an astronomically large ratio with an unbounded CI, which is no estimate;
    the row is reported as not compared, with the reason."""
    from cartsim.validate.compute import simulate_row
    from cartsim.validate.mapping import parse_timepoint

    n = 60
    pos = np.arange(n) % 2 == 0
    t = np.where(pos, 29.0 + np.arange(n) * 1e-3, 399.0)
    relapse = pos.copy()
    relapse[1] = True  # one relapse in the negative group, after every positive one
    pts = pd.DataFrame({"patient_id": np.arange(n), "responder": 1, "response_day": 28.0,
                        "relapse": relapse.astype(int),
                        "relapse_day": np.where(relapse, t, np.nan),
                        "last_day": np.where(relapse, t, 400.0)})
    daily = pd.DataFrame({"patient_id": np.arange(n), "day": 28,
                          "marrow_blast_pct": np.where(pos, 1e-3, 1e-6)})
    q = default_mapping().quantities["HR_relapse_BM_NGS_MRD_pos"]
    sim = simulate_row(q, "ratio", parse_timepoint("day 28"), "", "penn", 400, pts, daily)
    assert sim.status != "compared", sim.value
    assert "no finite hazard ratio" in sim.reason, sim.reason


def test_infection_density_per_100_days_at_risk_with_exact_poisson_ci() -> None:
    """Session 13: an `infection_density` row ("per 100 days at risk", window "day 0-28") is the
    sum of the window's episodes over the sum of its days at risk, × 100, with the Garwood
    (exact Poisson) interval; a window the trial has no columns for is unmapped."""
    from scipy import stats as sps

    from cartsim.validate.compute import simulate_row
    from cartsim.validate.mapping import normalise_unit, parse_timepoint

    assert normalise_unit("per 100 days at risk") == ("per_100_days", None)
    assert normalise_unit("per 100 patient-days") == ("per_100_days", None)
    pts = pd.DataFrame({"patient_id": np.arange(4),
                        "infections_d0_28": [0, 1, 2, 3],
                        "infection_days_at_risk_d0_28": [29, 29, 29, 13]})
    q = default_mapping().quantities["infection_density"]
    sim = simulate_row(q, "per_100_days", parse_timepoint("day 0-28"), "", "astct", 90, pts,
                       None)
    assert sim.status == "compared"
    assert sim.value == pytest.approx(100 * 6 / 100)
    assert sim.lower == pytest.approx(100 * sps.chi2.ppf(0.025, 12) / 2 / 100)
    assert sim.upper == pytest.approx(100 * sps.chi2.ppf(0.975, 14) / 2 / 100)
    other = simulate_row(q, "per_100_days", parse_timepoint("day 29-60"), "", "astct", 90, pts,
                         None)
    assert other.status == "unmapped" and "29-60" in other.reason
    landmark = simulate_row(q, "per_100_days", parse_timepoint("day 28"), "", "astct", 90, pts,
                            None)
    assert landmark.status == "unmapped"


def test_event_counts_are_read_at_the_papers_data_cut() -> None:
    """A count without a time point (e.g. ELIANA's relapses before further therapy, reported
    at a median follow-up of 24 months) counts the events by that publication's median
    follow-up; a share among relapses, and a paper without a follow-up row, keep the whole
    simulated follow-up."""
    from cartsim.validate.compute import simulate_row
    from cartsim.validate.mapping import parse_timepoint
    from cartsim.validate.run import data_cuts

    pts = pd.DataFrame({"patient_id": np.arange(4), "relapse": [1, 1, 1, 0],
                        "relapse_day": [100.0, 500.0, 900.0, np.nan],
                        "relapse_phenotype": ["CD19-negative", "CD19-positive",
                                              "CD19-negative", ""]})
    m = default_mapping().quantities
    tp = parse_timepoint("")
    whole = simulate_row(m["relapsed"], "percent", tp, "", "astct", 1100, pts, None)
    cut = simulate_row(m["relapsed"], "percent", tp, "", "astct", 1100, pts, None,
                       data_cut=730.5)
    assert whole.value == pytest.approx(75.0) and cut.value == pytest.approx(50.0)
    assert any("median follow-up" in n for n in cut.notes)
    share = simulate_row(m["relapse_CD19_negative_share"], "percent", tp, "", "astct", 1100,
                         pts, None, data_cut=730.5)
    assert share.value == pytest.approx(100 * 2 / 3)  # among relapses: unchanged
    rows = [TargetRow(study="S", line=2, endpoint="followup_median", timepoint="",
                      subgroup="all", disease="B-ALL", unit="months", value=24.0, n=79,
                      ci_low=None, ci_high=None, grading_scale="")]
    assert data_cuts(rows) == {"S": pytest.approx(730.5)}


def test_median_not_reached_fails_a_published_median_reached_before_follow_up_ends(
        setting: tuple) -> None:
    """5 of 20 die, so the simulated OS median is not reached by the last follow-up time
    (day 365): that is a lower bound, which fails a published median whose CI ends before it,
    and stays not compared when the published CI reaches beyond it."""
    r = compare(setting, target("OS_median", 6.0, 4.0, 9.0, unit="months"))
    assert r["status"] == "compared"
    assert r["simulated"] == pytest.approx(365 / 30.4375, rel=1e-3)  # the last day, in months
    assert r["inside_published_ci"] is False and r["passes"] is False
    assert "not reached" in r["notes"]
    wide = compare(setting, target("OS_median", 10.5, 6.3, 29.2, unit="months"))
    assert wide["status"] == "unmapped" and "reaches beyond" in wide["reason"]


def test_event_masks_read_only_the_columns_they_name() -> None:
    """compute._mask hands DataFrame.eval only the columns named in the expression (speed);
    the masks equal the whole table's, backtick-quoted names included, and an unknown column
    is still reported as missing."""
    import numpy as np
    import pandas as pd

    from cartsim.validate.compute import _mask, _Missing

    rng = np.random.default_rng(3)
    n = 50
    df = pd.DataFrame({f"col{i}": rng.normal(size=n) for i in range(40)})
    df["death_cause"] = rng.choice(["", "infection", "toxicity"], size=n)
    df["relapse_day"] = np.where(rng.random(n) < 0.5, rng.integers(0, 400, n), np.nan)
    df["crs_max_grade_ctcae_v4.03"] = rng.integers(0, 5, n)
    for expr in ("(death_cause == 'toxicity') | (death_cause == 'infection')",
                 "~(relapse_day <= 100) & (col3 > 0)",
                 "`crs_max_grade_ctcae_v4.03` >= 3",
                 "col1 > col12"):  # "col1" is also a prefix of col10-col19: a superset is fine
        want = df.eval(expr, engine="python").fillna(False).astype(bool)
        assert _mask(df, expr).equals(want), expr
    with pytest.raises(_Missing, match="nope"):
        _mask(df, "nope > 1")
