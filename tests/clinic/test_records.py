"""Records CSV → grades: the documented command on the demo file, rejection and atomic output."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cartsim.clinic.cli import grade_command

DEMO = Path(__file__).resolve().parents[2] / "examples" / "records_demo.csv"

app = typer.Typer()
app.command()(grade_command)
runner = CliRunner()


def run(records: Path, out: Path) -> int:
    result = runner.invoke(app, [str(records), "--out", str(out)])
    return result.exit_code


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("grades") / "demo"
    return run(DEMO, out), out


def test_demo_exit_code_and_files(demo_out: tuple[int, Path]) -> None:
    code, out = demo_out
    assert code == 3  # the demo has deliberately invalid rows
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ae.csv", "daily_grades.csv", "patient_summary.csv", "record_warnings.csv",
                     "rejected_rows.csv", "timeline_P001.png", "timeline_P002.png",
                     "timeline_P003.png", "timeline_P004.png"]
    assert all((out / n).stat().st_size > 0 for n in names)
    assert pd.read_csv(out / "record_warnings.csv").empty
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".demo.tmp")]


def test_demo_rejected_rows(demo_out: tuple[int, Path]) -> None:
    rej = pd.read_csv(demo_out[1] / "rejected_rows.csv")
    assert rej["measure"].tolist() == ["spo2", "anc", "ice_score", "blood_sugar", "weight"]
    reasons = rej["reason"].tolist()
    assert "impossible spo2" in reasons[0]
    assert "impossible anc" in reasons[1]
    assert "impossible ice_score" in reasons[2]
    assert "unknown measure" in reasons[3]
    assert "unknown unit 'stone'" in reasons[4]
    csv_lines = DEMO.read_text().splitlines()
    for row, measure in zip(rej["row"], rej["measure"], strict=True):
        assert csv_lines[row - 1].split(",")[2] == measure  # row = CSV line number


def test_demo_grades(demo_out: tuple[int, Path]) -> None:
    daily = pd.read_csv(demo_out[1] / "daily_grades.csv")
    summary = pd.read_csv(demo_out[1] / "patient_summary.csv").set_index("patient_id")
    for col in ("patient_id", "day", "crs_grade_astct", "icans_grade_astct",
                "neutropenia_grade", "thrombocytopenia_grade", "anemia_grade"):
        assert col in daily.columns
    p1 = daily[daily["patient_id"] == "P001"].set_index("day")
    # °F converted: 102.4 °F = 39.1 °C; 100.8 °F = 38.2 °C (fever)
    assert p1.loc[2, "temperature_max_c"] == pytest.approx(39.111, abs=1e-3)
    # day 1 fever only G1; day 2 NC 3 L/min G2; day 3 afebrile after tocilizumab on NE G3
    assert p1.loc[[1, 2, 3, 4], "crs_grade_astct"].tolist() == [1, 2, 3, 0]
    assert bool(p1.loc[3, "crs_fever_masked"])
    assert summary.loc["P001", "crs_max_grade"] == 3
    assert summary.loc["P001", "crs_onset_day"] == 1
    assert summary.loc["P001", "crs_duration_days"] == 3
    # P002 is 8 years old: CAPD 10 → ICANS 3
    assert summary.loc["P002", "icans_max_grade"] == 3
    # P003: NE + phenylephrine (+ vasopressin) and BiPAP → CRS 4; unarousable → ICANS 4
    assert summary.loc["P003", "crs_max_grade"] == 4
    assert summary.loc["P003", "icans_max_grade"] == 4
    assert summary.loc["P003", "car_hematotox_baseline"] == 7  # 2+1+1+1+2 with Hb 85 g/L
    assert summary.loc["P004", "crs_max_grade"] == 0
    assert summary.loc["P004", "neutropenia_max_grade"] == 2


def test_all_valid_file_exits_zero(tmp_path: Path) -> None:
    csv = tmp_path / "ok.csv"
    csv.write_text("patient_id,day,measure,value,unit\n"
                   "A,1,temperature,101.5,°F\nA,1,oxygen_device,facemask,\n"
                   "A,1.5,anc,0.4,x10^9/L\nA,2,temperature,37,C\n")
    out = tmp_path / "out"
    assert run(csv, out) == 0
    daily = pd.read_csv(out / "daily_grades.csv")
    assert daily["crs_grade_astct"].tolist() == [3, 0]
    assert daily["neutropenia_grade"].tolist()[0] == 4
    assert pd.read_csv(out / "rejected_rows.csv").empty


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(None, id="missing-file"),
        pytest.param("patient_id,day,measure,value\nA,1,temperature,38\n", id="missing-column"),
        pytest.param("patient_id,day,measure,value,unit\n", id="no-rows"),
    ],
)
def test_fatal_input_writes_nothing(tmp_path: Path, content: str | None) -> None:
    csv = tmp_path / "in.csv"
    if content is not None:
        csv.write_text(content)
    out = tmp_path / "out"
    assert run(csv, out) == 2
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if content is None else ["in.csv"])


def test_invalid_units_and_values_are_rejected_individually(tmp_path: Path) -> None:
    csv = tmp_path / "mixed.csv"
    csv.write_text(
        "patient_id,day,measure,value,unit\n"
        "B,0,temperature,39,K\n"          # unknown unit
        "B,0,temperature,39,C\n"
        "B,0,platelets,-5,x10^9/L\n"     # negative count
        "B,0,consciousness,sleepy,\n"     # unknown category
        "B,x,anc,500,cells/uL\n"          # bad day
        "B,0,vasopressor,norepinephrine,\n"
        "B,0,vasopressor,vasopressin,\n"
    )
    out = tmp_path / "out"
    assert run(csv, out) == 3
    rej = pd.read_csv(out / "rejected_rows.csv")
    assert rej["row"].tolist() == [2, 4, 5, 6]
    daily = pd.read_csv(out / "daily_grades.csv")
    assert daily["crs_grade_astct"].tolist() == [3]  # NE + vasopressin is grade 3


def test_ctcae_version_option(tmp_path: Path) -> None:
    csv = tmp_path / "v.csv"
    csv.write_text("patient_id,day,measure,value,unit\nC,5,anc,400,cells/uL\n")
    for version, grade in (("5.0", 4), ("6.0", 3)):
        out = tmp_path / version
        res = runner.invoke(app, [str(csv), "--out", str(out), "--ctcae-version", version])
        assert res.exit_code == 0
        assert pd.read_csv(out / "daily_grades.csv")["neutropenia_grade"].tolist() == [grade]
    res = runner.invoke(app, [str(csv), "--out", str(tmp_path / "x"), "--ctcae-version", "9"])
    assert res.exit_code == 2 and not (tmp_path / "x").exists()


def test_creatinine_increased_is_graded_against_the_age_uln_and_the_pre_infusion_value(
        tmp_path: Path) -> None:
    """Child (8 y, ULN 0.7 mg/dL) with 0.3 mg/dL on day -3: 0.5 on day 4 is 1.7 × baseline
    (grade 2, still below the ULN), 1.0 on day 6 is 3.3 × baseline (grade 3). Adult without a
    pre-infusion value: 2.0 mg/dL against the 1.2 ULN (1.7 × ULN, grade 2), in µmol/L."""
    csv = tmp_path / "cr.csv"
    csv.write_text("patient_id,day,measure,value,unit\n"
                   "K,-3,age,8,years\nK,-3,creatinine,0.3,mg/dL\nK,4,creatinine,0.5,mg/dL\n"
                   "K,6,creatinine,1.0,mg/dL\nK,7,temperature,38.5,C\n"
                   "A,-1,age,50,years\nA,3,creatinine,176.8,umol/L\n")
    out = tmp_path / "out"
    assert run(csv, out) == 0
    daily = pd.read_csv(out / "daily_grades.csv").set_index(["patient_id", "day"])
    g = daily["creatinine_increased_grade"]
    assert (g[("K", -3)], g[("K", 4)], g[("K", 6)]) == (0, 2, 3)
    assert pd.isna(g[("K", 7)])  # no creatinine that day
    assert g[("A", 3)] == 2
    summary = pd.read_csv(out / "patient_summary.csv").set_index("patient_id")
    assert summary.loc["K", "creatinine_increased_max_grade"] == 3


def test_records_are_graded_on_lee_penn_and_cartox_from_the_same_findings(tmp_path: Path) -> None:
    """Four adults with fever (39 °C) on day 2. A: nothing else (all scales 1). B: ANC 300/µL
    (febrile neutropenia, admitted: Penn 2, Lee 1). C: norepinephrine and phenylephrine with
    vasopressin (Lee/CARTOX 3 for multiple agents, Penn 3). D: ALT 25 × ULN (CTCAE grade 4
    transaminitis: Lee 3, Penn 3). The transaminases of E on a day without CRS are not
    attributed to it."""
    csv = tmp_path / "scales.csv"
    rows = ["patient_id,day,measure,value,unit"]
    for p in "ABCDE":
        rows += [f"{p},0,age,50,years"]
        if p != "E":
            rows += [f"{p},2,temperature,39,C"]
    rows += ["B,2,anc,300,cells/uL", "C,2,vasopressor,norepinephrine,agent",
             "C,2,vasopressor,vasopressin,agent", "C,2,vasopressor,phenylephrine,agent",
             "D,2,alt,1000,U/L", "E,2,alt,1000,U/L"]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert run(csv, out) == 0
    d = pd.read_csv(out / "daily_grades.csv").set_index(["patient_id", "day"])
    day2 = d.xs(2, level="day")
    assert day2["crs_grade_penn"].to_dict() == {"A": 1, "B": 2, "C": 3, "D": 3, "E": 0}
    assert day2["crs_grade_lee2014"].to_dict() == {"A": 1, "B": 1, "C": 3, "D": 3, "E": 0}
    assert day2["crs_grade_cartox"].to_dict() == {"A": 1, "B": 1, "C": 3, "D": 3, "E": 0}
    summary = pd.read_csv(out / "patient_summary.csv").set_index("patient_id")
    assert summary.loc["C", "crs_max_grade_lee2014"] == 3
