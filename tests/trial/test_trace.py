"""``cartsim trial trace`` / ``Trial.trace``: model states, parameters and readouts of a
trial's virtual patients, re-simulated exactly as the trial runner does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cartsim.api import Trial
from cartsim.cli import app
from cartsim.errors import InvalidInputError
from cartsim.model.readouts import READOUT_NAMES, compute
from cartsim.trial.trace import parse_days
from cartsim.validate.library import default_specs_dir

SPEC = default_specs_dir() / "eliana.toml"


def test_readout_names_are_computes_columns() -> None:
    from cartsim.model.parameters import PARAMS
    from cartsim.model.state import N_STATES

    p = np.array([[s.default for s in PARAMS]], dtype=np.float64)
    p = np.concatenate([p, np.ones((1, 64))], axis=1)  # room for per-clone fields
    with np.errstate(all="ignore"):
        cols = compute(np.ones((1, N_STATES)), p)
    assert tuple(cols) == READOUT_NAMES


def test_parse_days() -> None:
    assert parse_days("0-3") == [0, 1, 2, 3]
    assert parse_days("7, 0-2,7") == [0, 1, 2, 7]
    assert parse_days("-5--3") == [-5, -4, -3]
    for bad in ("", "a", "5-2", "1-x"):
        with pytest.raises(InvalidInputError, match="days"):
            parse_days(bad)


@pytest.mark.slow  # the library ELIANA spec compiles the GVL add-on model (~60 s cold; CI
# budget); test_trace_of_a_second_arm_follows_the_runner_s_patients checks trace = trial too
def test_trace_matches_the_trial_and_reads_states_params_and_readouts(tmp_path: Path) -> None:
    trial = Trial.from_toml(SPEC).with_overrides(size=6, seed=5)
    t = trial.trace(["IL6", "K_fever", "age_y", "anc_per_ul", "temperature_c"], days="6-10")
    assert list(t.columns) == ["arm", "patient_id", "day", "IL6", "K_fever", "age_y",
                               "anc_per_ul", "temperature_c"]
    assert len(t) == 6 * 5 and set(t["day"]) == {6, 7, 8, 9, 10}
    # a parameter is constant over the days of a patient, the states move
    assert (t.groupby("patient_id")["K_fever"].nunique() == 1).all()
    assert t.groupby("patient_id")["IL6"].nunique().max() > 1
    # the same patients as the trial's: ages and the day's ANC agree with its outputs
    res = trial.run(tmp_path / "run", report=False)
    pts = res.patients.set_index("patient_id")
    first = t[t["day"] == 6].set_index("patient_id")
    assert np.allclose(first["age_y"], pts.loc[first.index, "age_y"])
    daily = pd.read_parquet(tmp_path / "run" / "daily.parquet")
    both = t.merge(daily[["patient_id", "day", "anc_per_ul"]], on=["patient_id", "day"],
                   suffixes=("", "_trial"))
    assert len(both) == len(t)
    assert np.allclose(both["anc_per_ul"], both["anc_per_ul_trial"], rtol=1e-3, atol=1e-6)


def test_trace_errors_name_the_field() -> None:
    trial = Trial.from_toml(SPEC).with_overrides(size=2)
    with pytest.raises(InvalidInputError, match="trace quantity.*NOPE"):
        trial.trace(["IL6", "NOPE"], days="0-1")
    with pytest.raises(InvalidInputError, match="arm"):
        trial.trace(["IL6"], days="0-1", arm="no_such_arm")
    for bad in ([100000], [-2, 0]):
        with pytest.raises(InvalidInputError, match="days"):
            trial.trace(["IL6"], days=bad)


def test_cli_trace_by_library_name_writes_a_table(tmp_path: Path) -> None:
    out = tmp_path / "trace.csv"
    res = CliRunner().invoke(app, ["trial", "trace", "eliana", "--names", "MY,temperature_c",
                                   "--days", "0-2", "--patients", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "median" in res.output
    t = pd.read_csv(out)
    assert len(t) == 9 and {"MY", "temperature_c"} <= set(t.columns)
    res = CliRunner().invoke(app, ["trial", "trace", "no_such_study", "--names", "MY"])
    assert res.exit_code == 2 and "library study name" in res.output


def test_trace_of_a_second_arm_follows_the_runner_s_patients(tmp_path: Path) -> None:
    """An unpaired two-arm trial interleaves its ids (arm 1 has 1, 3, 5, …): the trace of arm 1
    must be those patients, not arm 0's ids run with arm 1's product."""
    trial = Trial.from_toml(default_specs_dir() / "zuma4.toml").with_overrides(size=4, seed=5)
    t = trial.trace(["age_y", "anc_per_ul"], days="3", arm=1)
    assert list(t["patient_id"]) == [1, 3, 5, 7]
    trial.run(tmp_path / "run", report=False)
    daily = pd.read_parquet(tmp_path / "run" / "daily.parquet")
    arm1 = daily[(daily["arm"] == t["arm"].iloc[0]) & (daily["day"] == 3)]
    both = t.merge(arm1[["patient_id", "anc_per_ul"]], on="patient_id", suffixes=("", "_trial"))
    assert len(both) == 4
    assert np.allclose(both["anc_per_ul"], both["anc_per_ul_trial"], rtol=1e-3, atol=1e-6)


def test_trace_reads_the_drawn_covariates_and_the_dose(tmp_path: Path) -> None:
    """Covariates (the spec's population draws) and the dose are traceable next to the states:
    constant over a patient's days and equal to the trial's own per-patient table."""
    trial = Trial.from_toml(default_specs_dir() / "zuma4.toml").with_overrides(size=4, seed=7)
    t = trial.trace(["marrow_blasts_pct", "dose_per_kg", "IL6"], days="0,2")
    assert list(t.columns) == ["arm", "patient_id", "day", "marrow_blasts_pct", "dose_per_kg",
                               "IL6"]
    assert (t.groupby("patient_id")[["marrow_blasts_pct", "dose_per_kg"]].nunique() == 1
            ).all().all()
    res = trial.run(tmp_path / "run", report=False)
    pts = res.patients.set_index("patient_id")
    first = t[t["day"] == 0].set_index("patient_id")
    assert np.allclose(first["marrow_blasts_pct"], pts.loc[first.index, "marrow_blasts_pct"])
    assert np.allclose(first["dose_per_kg"], pts.loc[first.index, "dose_per_kg"])
    with pytest.raises(InvalidInputError, match="covariates: .*marrow_blasts_pct"):
        trial.trace(["tumour_volume_ml_typo"], days="0")


def test_trace_of_chosen_patients_is_theirs_in_the_whole_arm() -> None:
    """``ids`` traces the trial's patients by their ``patient_id``: patient 5 traced alone is
    patient 5 of the arm (keyed streams), so a patient of a 1,000-patient run is traced
    without re-simulating the 999 others (session 42)."""
    trial = Trial.from_toml(default_specs_dir() / "zuma4.toml").with_overrides(size=4, seed=5)
    names = ["age_y", "anc_per_ul", "IL6", "temperature_c"]
    whole = trial.trace(names, days="0-4", arm=1)
    alone = trial.trace(names, days="0-4", arm=1, ids=[5])
    assert list(alone["patient_id"].unique()) == [5]
    ref = whole[whole["patient_id"] == 5].reset_index(drop=True)
    assert np.allclose(alone[names].to_numpy(), ref[names].to_numpy(), rtol=1e-6, atol=1e-9)
    with pytest.raises(InvalidInputError, match="ids.*arm"):
        trial.trace(names, days="0", arm=1, ids=[4])  # an id of arm 0
    # ids past the spec's size are the patients of a larger run: patient 5 of a 4-patient
    # arm is patient 5 of a 40-patient one
    big = trial.with_overrides(size=40).trace(names, days="0-4", arm=1, ids=[5, 41])
    assert np.array_equal(big[big["patient_id"] == 5][names].to_numpy(),
                          alone[names].to_numpy())
    with pytest.raises(InvalidInputError, match="patients"):
        trial.trace(names, days="0", arm=1, ids=[5], patients=2)


def test_cli_trace_ids(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    res = CliRunner().invoke(app, ["trial", "trace", "eliana", "--names", "MY", "--days",
                                   "0-1", "--ids", "7,2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(pd.read_csv(out)["patient_id"].unique()) == [2, 7]
    res = CliRunner().invoke(app, ["trial", "trace", "eliana", "--names", "MY", "--ids", "x"])
    assert res.exit_code == 2 and "--ids" in res.output


def test_trace_reads_laboratory_values_as_the_trial_records_them(tmp_path: Path) -> None:
    """Laboratory values (model/labs.py: slow states outside the vector field) are traceable
    by name: the day's record of the simulation, so their peak over the traced days is the
    trial's own ``ferritin_peak_ng_ml`` / ``crp_peak_mg_l`` (session 43)."""
    trial = Trial.from_toml(default_specs_dir() / "zuma4.toml").with_overrides(size=4, seed=5)
    t = trial.trace(["ferritin_ng_ml", "crp_mg_l", "IL6"], days="0-120")
    assert list(t.columns) == ["arm", "patient_id", "day", "ferritin_ng_ml", "crp_mg_l", "IL6"]
    assert t["ferritin_ng_ml"].notna().all() and t["crp_mg_l"].notna().all()
    res = trial.run(tmp_path / "run", report=False)
    pts = res.patients.set_index("patient_id")
    # the trial reads a patient's course up to its last day (death, or the end of follow-up
    # of the endpoints); the trace simulates on
    seen = t[t["day"] <= t["patient_id"].map(pts["last_day"])]
    peak = seen.groupby("patient_id")[["ferritin_ng_ml", "crp_mg_l"]].max()
    np.testing.assert_allclose(peak["ferritin_ng_ml"],
                               pts.loc[peak.index, "ferritin_peak_ng_ml"], rtol=1e-3)
    np.testing.assert_allclose(peak["crp_mg_l"], pts.loc[peak.index, "crp_peak_mg_l"],
                               rtol=1e-3)
    # CRS moved them: every peak is above the day-0 value
    first = t[t["day"] == 0].set_index("patient_id")
    assert (peak["crp_mg_l"] > first["crp_mg_l"]).all()
    with pytest.raises(InvalidInputError, match="laboratory values: .*ferritin_ng_ml"):
        trial.trace(["ferritin_typo"], days="0")
