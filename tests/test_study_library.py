"""The study library (src/cartsim/data/studies): one trial spec per expressible published study.

Checks that every spec loads, that the index covers every `study` of the targets file exactly
once, that `sources` name only baseline/design rows of the studies an entry serves (never an
outcome row: a study's outcomes must not enter its own spec), that subgroup queries parse against
the patients.parquet columns, and (slow) that one study spec runs end to end.
"""

from __future__ import annotations

import csv
import re
import tomllib
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartsim.trial.spec import CRS_SCALES, load_spec

STUDIES = Path(str(files("cartsim") / "data" / "studies"))
INDEX = tomllib.loads((STUDIES / "index.toml").read_text(encoding="utf-8"))
ENTRIES: list[dict] = INDEX["study"]
UNEXPRESSIBLE: list[dict] = INDEX.get("unexpressible", [])
REPO = Path(__file__).resolve().parents[1]

#: Where the published targets file may be: shipped with the package, or the project's shared
#: reference folder next to the checkout.
TARGET_CANDIDATES = (
    Path(str(files("cartsim") / "data" / "validate" / "clinical_targets.csv")),
    REPO.parent / "shared" / "reference" / "clinical_targets.csv",
    REPO / "shared" / "reference" / "clinical_targets.csv",
)

#: Endpoints that describe the cohort or the design (what a spec may be built from). Anything
#: else (response, survival, CRS, neurotoxicity, relapse, deaths, cytopenia, infection, PK...) is
#: an outcome and must never be a source.
BASELINE_ENDPOINT = re.compile(
    r"^(baseline_.*|infused|enrolled|treated|screened|n_arm|n_PK|n_analysed|dose.*"
    r"|lymphodepletion_.*|followup_median|enrollment_to_infusion_median"
    r"|vein_to_product_median|bridging_therapy)$")

#: patients.parquet columns besides the population covariates (docs/trial.md, "Endpoints") for
#: every disease; the spec-dependent ones are added by `_spec_columns`. The slow smoke test checks
#: the result against a real run.
ENDPOINT_COLUMNS = (
    "arm", "arm_index", "patient_id", "solver_status", "dose_cells", "dose_per_kg",
    "best_response", "responder", "complete_response", "response_day", "relapse",
    "relapse_day", "relapse_phenotype", "progression_day",
    "death", "death_day", "death_cause", "last_day", "infections", "first_infection_day",
    "infections_severe", "first_severe_infection_day",
    "infections_d0_28", "infection_days_at_risk_d0_28",  # per-window episodes (session 13)
    "infections_d29_90", "infection_days_at_risk_d29_90",
    "efs_days", "efs_event", "os_days", "os_event", "pfs_days", "pfs_event", "rfs_days",
    "rfs_event", "prs_days", "prs_event", "dor_days", "dor_event",
    "dss_days", "dss_event",  # disease-specific survival (session 27)
    "neutrophil_recovery",
    "crs_max_grade", "crs_onset_day", "crs_onset_to_grade4_days", "temperature_max_c",
    "crs_duration_days", "crs_resolved", "icans_max_grade", "icans_onset_day",
    "icans_duration_days",
    "neuro_max_grade_ctcae_v4.03", "neuro_max_grade_ctcae_v5.0",
    "crs_grade_source", "tocilizumab_doses", "tocilizumab_mg", "steroids_given",
    "steroid_dex_eq_mg", "siltuximab_given",  # support given (session 15)
    "hypotension_treated", "vasopressors_given",
    "high_dose_vasopressors", "oxygen_given", "ventilated", "neutropenia_max_grade",
    "thrombocytopenia_max_grade",
    "anemia_max_grade",
    "neutropenia_emergent_grade", "thrombocytopenia_emergent_grade",  # (session 47)
    "anemia_emergent_grade", "anc_below_500_days", "icaht_early_grade", "icaht_late_grade",
    "gcsf_given", "gcsf_after_d28", "ivig_given", "ivig_after_d28",  # (session 15)
    "platelet_transfusion_given", "platelet_transfusion_after_d28",  # (session 41)
    "platelet_transfusions", "rbc_transfusion_given", "rbc_transfusion_after_d28",
    "rbc_transfusions", "transfusion_d0_30", "transfusion_d31_180", "transfusion_d91_180",
    "transfusion_d0_180",
    "ferritin_peak_ng_ml", "crp_peak_mg_l", "ldh_peak_u_l", "creatinine_peak_mg_dl",
    "fibrinogen_nadir_mg_dl", "hypofibrinogenemia", "iechs", "iechs_max_grade",
    "iechs_onset_day", "tls_laboratory", "tls_clinical", "tls_max_grade",
    "bca_onset_day", "bca_duration_days", "bca_ongoing", "cart_cmax", "cart_tmax_day",
    "cart_auc0_28", "copies_cmax", "copies_tmax_day", "copies_auc0_28", "hsct", "hsct_day",
    "tumour_extinct_day", "asct_day", "reinfusion_day", "salvage_day",
)
TEXT_COLUMNS = ("arm", "best_response", "relapse_phenotype", "death_cause", "crs_grade_source")


def _targets_rows() -> dict[int, dict[str, str]]:
    """Rows of the targets file keyed by line number (header = line 1)."""
    for p in TARGET_CANDIDATES:
        if p.is_file():
            lines = p.read_text(encoding="utf-8").splitlines()
            rows = list(csv.DictReader(lines))
            assert len(lines) == len(rows) + 1, "a row spans several lines: line numbers shift"
            return {i + 2: r for i, r in enumerate(rows)}
    pytest.skip("clinical_targets.csv not found (shared/reference next to the checkout)")


def _spec_columns(spec) -> list[str]:
    """The patients.parquet columns of a spec: the burden covariate and MRD columns depend on
    the disease, the response columns on the assessment days, one CRS column on the scale."""
    from cartsim.covariates import for_disease

    b_all = spec.population.disease == "b-all"
    drop = set() if b_all else {"mrd_negative_remission"}
    covs = [c.name for c in for_disease(spec.population.disease)]
    cols = [c for c in (*covs, *ENDPOINT_COLUMNS, "mrd_negative_remission") if c not in drop]
    cols += [f"response_d{a}" for a in spec.assessment_days]
    if b_all:  # MRD and sanctuary (CNS/testis) status per assessment, relapse site
        cols += [f"mrd_d{a}" for a in spec.assessment_days]
        cols += [f"cns_d{a}" for a in spec.assessment_days]
        cols += ["cns_positive_d0", "cns_remission", "relapse_site"]
    cols += [f"crs_max_grade_{scale}" for scale in CRS_SCALES]  # every scale, as validate reads
    return cols


def _empty_patients(spec) -> pd.DataFrame:
    cols = _spec_columns(spec)
    return pd.DataFrame({c: pd.Series(dtype=object if c in TEXT_COLUMNS or
                                      c.startswith(("response_d", "mrd_d")) else float)
                         for c in cols})


# ------------------------------------------------------------------------------------ specs
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["spec"] for e in ENTRIES])
def test_every_spec_in_the_index_loads(entry: dict) -> None:
    spec = load_spec(STUDIES / entry["spec"])
    assert spec.population.size > 0 and spec.arms


def test_every_spec_file_is_in_the_index_and_ships_with_the_package() -> None:
    on_disk = {p.name for p in STUDIES.glob("*.toml")} - {"index.toml"}
    referenced = {e["spec"] for e in ENTRIES}
    assert on_disk == referenced
    assert (STUDIES / "README.md").is_file()


def test_index_entries_are_well_formed() -> None:
    for e in ENTRIES:
        assert set(e) <= {"study", "spec", "sources", "unexpressed", "subgroups"}, e["spec"]
        assert isinstance(e["study"], list) and e["study"], e["spec"]
        assert all(isinstance(x, int) and x >= 2 for x in e["sources"]), e["spec"]
        assert all(isinstance(u, str) and u.strip() for u in e.get("unexpressed", [])), e["spec"]
        for k, q in e.get("subgroups", {}).items():
            assert isinstance(k, str) and isinstance(q, str) and q.strip(), (e["spec"], k)
    for u in UNEXPRESSIBLE:
        assert set(u) == {"study", "reason"}
        assert len(u["reason"]) > 40, f"{u['study']}: give a specific reason"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["spec"] for e in ENTRIES])
def test_subgroup_queries_parse_against_the_patient_table(entry: dict) -> None:
    spec = load_spec(STUDIES / entry["spec"])
    df = _empty_patients(spec)
    arms = {a.name for a in spec.arms}
    for label, query in entry.get("subgroups", {}).items():
        if query == "all":
            continue
        df.query(query)  # raises on an unknown column or bad syntax
        for name in re.findall(r"arm\s*==\s*'([^']*)'", query):
            assert name in arms, f"{entry['spec']}: subgroup {label!r} names unknown arm {name!r}"


def test_a_query_with_a_typo_is_caught() -> None:
    df = _empty_patients(load_spec(STUDIES / ENTRIES[0]["spec"]))
    with pytest.raises(Exception, match="tp53_alterd"):
        df.query("tp53_alterd == 1")


def test_dose_mix_query_keeps_the_zuma4_ratio() -> None:
    """The ZUMA-4 'all treated' query takes every fifth 2e6/kg patient (4 of 24 in the trial)."""
    entry = next(e for e in ENTRIES if "ZUMA-4 phase 1" in e["study"])
    spec = load_spec(STUDIES / entry["spec"])
    n = 100
    k = len(spec.arms)
    rows = [{"arm": a.name, "patient_id": i * k + j} for j, a in enumerate(spec.arms)
            for i in range(n)]
    df = pd.DataFrame(rows)
    sel = df.query(entry["subgroups"]["all treated"])
    counts = sel["arm"].value_counts()
    assert counts["brexu_cel_1e6"] == n and counts["brexu_cel_2e6"] == n // 5


# ------------------------------------------------------------------ against the targets file
def test_every_study_of_the_targets_file_is_served_exactly_once() -> None:
    rows = _targets_rows()
    studies = {r["study"] for r in rows.values()}
    served = [s for e in ENTRIES for s in e["study"]] + [u["study"] for u in UNEXPRESSIBLE]
    dup = sorted({s for s in served if served.count(s) > 1})
    assert not dup, f"served more than once: {dup}"
    assert set(served) == studies, (f"missing: {sorted(studies - set(served))}; "
                                    f"unknown: {sorted(set(served) - studies)}")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["spec"] for e in ENTRIES])
def test_sources_are_baseline_rows_of_the_served_studies(entry: dict) -> None:
    rows = _targets_rows()
    for line in entry["sources"]:
        assert line in rows, f"{entry['spec']}: line {line} is not a data row"
        r = rows[line]
        assert r["study"] in entry["study"], \
            f"{entry['spec']}: line {line} belongs to {r['study']!r}, not a served study"
        assert BASELINE_ENDPOINT.match(r["endpoint"]), \
            f"{entry['spec']}: line {line} is an outcome row ({r['endpoint']}), not a baseline"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["spec"] for e in ENTRIES])
def test_every_subgroup_label_is_mapped_or_explained(entry: dict) -> None:
    rows = _targets_rows()
    labels = {r["arm_or_subgroup"] for r in rows.values() if r["study"] in entry["study"]}
    # "LABEL | ENDPOINT" reads LABEL for one endpoint only (docs/validation.md)
    mapped = {k.split(" | ")[0] for k in entry.get("subgroups", {})}
    assert mapped <= labels, f"{entry['spec']}: subgroups not in the targets: {mapped - labels}"
    text = " ".join(entry.get("unexpressed", []))
    unexplained = [lab for lab in labels - mapped if f"'{lab}'" not in text]
    assert not unexplained, f"{entry['spec']}: subgroup labels neither mapped nor explained: " \
        f"{unexplained}"


SURVIVAL_MEDIAN = re.compile(r"^(OS|EFS|PFS|DOR|RFS|LFS)_median")


def _timepoint_days(text: str) -> float:
    """Latest day a timepoint refers to: "12 months", "median FU 15.4 months", "5-year",
    "day 30", "day 29-90", "1 month" (0 when it names no time)."""
    days = [float(v) * {"m": 30.4375, "y": 365.25}[u[0]]
            for v, u in re.findall(r"(\d+(?:\.\d+)?)[\s-]*(months?|years?)\b", text)]
    days += [float(m.group(2) or m.group(1))
             for m in re.finditer(r"\bday (\d+)(?:-(\d+))?", text)]
    return max(days, default=0.0)


def test_timepoints_are_read_as_days() -> None:
    assert _timepoint_days("12 months") == pytest.approx(365.25)
    assert _timepoint_days("median FU 15.4 months") == pytest.approx(468.7, abs=0.1)
    assert _timepoint_days("at 5-year cut-off") == pytest.approx(1826.25)
    assert _timepoint_days("day 29-90") == 90.0 and _timepoint_days("day 30") == 30.0
    assert _timepoint_days("within 3 months") == pytest.approx(91.3125)
    assert _timepoint_days("at progression") == 0.0


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["spec"] for e in ENTRIES])
def test_follow_up_covers_the_longest_timepoint(entry: dict) -> None:
    rows = _targets_rows()
    spec = load_spec(STUDIES / entry["spec"])
    longest = 0.0
    for r in rows.values():
        if r["study"] not in entry["study"]:
            continue
        longest = max(longest, _timepoint_days(r["timepoint"]))
        if SURVIVAL_MEDIAN.match(r["endpoint"]) and r["unit"] == "months":
            longest = max(longest, float(r["value"]) * 30.4375)  # the median must be reachable
    assert spec.follow_up_days >= longest - 1, (entry["spec"], longest)


def test_specs_name_their_sources_in_comments() -> None:
    """Each spec's header says which rows it was built from and that outcomes are not inputs."""
    for e in ENTRIES:
        text = (STUDIES / e["spec"]).read_text(encoding="utf-8")
        assert "no outcome row" in text.lower(), f"{e['spec']}: say outcomes are not inputs"
        for line in e["sources"]:
            assert re.search(rf"\b{line}\b", text), f"{e['spec']}: source line {line} not cited"


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, pd.DataFrame]:
    from cartsim.trial.runner import run_trial

    spec = load_spec(STUDIES / "chop_ctl019_pilot.toml").with_overrides(size=20)
    run = run_trial(spec, tmp_path_factory.mktemp("study") / "chop", report=False)
    return spec, run.patients


@pytest.mark.slow
def test_a_study_spec_runs_end_to_end(smoke_run: tuple[object, pd.DataFrame]) -> None:
    spec, patients = smoke_run
    assert len(patients) == 20
    assert (patients["solver_status"] == 0).mean() >= 0.9
    # the spec's reported baseline reached the virtual patients: CTL019 dose range of line 98
    assert patients["dose_per_kg"].between(0.76e6, 20.6e6).all()
    assert patients["age_y"].between(5, 60).all()
    expected, got = set(_spec_columns(spec)), set(patients.columns)
    assert expected == got, (sorted(expected - got), sorted(got - expected))


@pytest.mark.slow
def test_every_subgroup_query_runs_on_a_real_patient_table(
        smoke_run: tuple[object, pd.DataFrame]) -> None:
    _, patients = smoke_run
    for e in ENTRIES:
        spec = load_spec(STUDIES / e["spec"])
        df = patients.copy()
        for c in _spec_columns(spec):
            if c not in df:
                df[c] = np.nan
        for query in e.get("subgroups", {}).values():
            if query != "all":
                df.query(query)
