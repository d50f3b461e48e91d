"""Records as clinics keep them: SDTM domains (CSV, a directory, Excel), chart vocabulary,
the ASTCT low-/high-flow boundary, pandera checks and SDTM-like AE output."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cartsim.clinic.cli import grade_command
from cartsim.clinic.records import grade_records
from cartsim.errors import InvalidInputError

app = typer.Typer()
app.command()(grade_command)
runner = CliRunner()

DOMAINS = {
    "dm": "USUBJID,AGE,AGEU,RFXSTDTC\nS1,45,YEARS,2024-03-10\nS2,9,YEARS,2024-04-01\n",
    "ex": ("USUBJID,EXTRT,EXSTDTC\nS1,FLUDARABINE,2024-03-05\n"
           "S1,TISAGENLECLEUCEL,2024-03-10T10:00\nS2,TISAGENLECLEUCEL,2024-04-01\n"),
    "vs": ("USUBJID,VSTESTCD,VSORRES,VSORRESU,VSDY\n"
           "S1,TEMP,39.2,C,3\n"       # day 2
           "S1,TEMP,38.6,C,4\n"       # day 3
           "S1,HR,120,beats/min,3\n"  # not used by the graders: one warning
           "S2,TEMP,101.3,F,2\n"      # day 1, 38.5 °C
           ",TEMP,39,C,2\n"           # no subject: rejected by the schema check
           "S2,TEMP,39,C,\n"),        # no study day: rejected
    "lb": "USUBJID,LBTESTCD,LBSTRESN,LBSTRESU,LBDTC\nS1,NEUT,0.3,10^9/L,2024-03-13T09:00\n",
    "cm": ("USUBJID,CMTRT,CMDOSE,CMDOSU,CMROUTE,CMSTDTC,CMENDTC\n"
           "S1,NOREPINEPHRINE,0.1,ug/kg/min,INTRAVENOUS,2024-03-13T12:00,2024-03-14\n"
           "S1,OXYGEN,4,L/min,NASAL CANNULA,2024-03-12T11:00,2024-03-12T20:00\n"
           "S1,TOCILIZUMAB,400,mg,INTRAVENOUS,2024-03-12T12:00,\n"
           "S1,ACETAMINOPHEN,1000,mg,ORAL,2024-03-12T12:00,\n"),
    "ae": "USUBJID,AETERM,AEDECOD,AESTDY\nS2,Focal seizure,Seizure,4\nS1,Nausea,Nausea,2\n",
}


def _write_domains(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in DOMAINS.items():
        (d / f"{name}.csv").write_text(text, encoding="utf-8")
    return d


def _grades(g: pd.DataFrame) -> dict[tuple[str, int], tuple[int, int]]:
    return {(str(r.patient_id), int(r.day)): (int(r.crs_grade_astct), int(r.icans_grade_astct))
            for r in g.itertuples(index=False)}


EXPECTED = {("S1", 2): (2, 0),   # 39.2 °C + nasal cannula 4 L/min
            ("S1", 3): (3, 0),   # 38.6 °C + norepinephrine
            ("S1", 4): (3, 0),   # norepinephrine, fever masked after tocilizumab (day 2)
            ("S2", 1): (1, 0),   # 101.3 °F
            ("S2", 3): (0, 3)}   # focal seizure


def test_sdtm_directory_is_graded(tmp_path: Path) -> None:
    parsed, grades, summary = grade_records(_write_domains(tmp_path / "sdtm"))
    got = _grades(grades)
    for k, v in EXPECTED.items():
        assert got[k] == v, (k, got.get(k))
    s1 = grades[(grades.patient_id == "S1") & (grades.day == 3)].iloc[0]
    assert s1["neutropenia_grade"] == 4
    rej = parsed.rejected
    assert len(rej) == 2
    assert set(rej["source"]) == {"vs.csv"}
    assert any("USUBJID" in r for r in rej["reason"])
    assert any("no study day" in r for r in rej["reason"])
    notes = " ".join(parsed.warnings["warning"])
    assert "'HR'" in notes and "acetaminophen" in notes and "nausea" in notes


def test_excel_workbook_gives_the_same_grades(tmp_path: Path) -> None:
    import io

    book = tmp_path / "chart.xlsx"
    with pd.ExcelWriter(book, engine="openpyxl") as xw:
        for name, text in DOMAINS.items():
            pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).to_excel(
                xw, sheet_name=name.upper(), index=False)
    _, g_xlsx, _ = grade_records(book)
    _, g_dir, _ = grade_records(_write_domains(tmp_path / "sdtm"))
    assert _grades(g_xlsx) == _grades(g_dir)
    long = tmp_path / "long.xlsx"
    pd.DataFrame({"patient_id": ["A", "A"], "day": [1, 1],
                  "measure": ["temperature", "oxygen_device"],
                  "value": ["38.5", "nasal cannula 7 L/min"], "unit": ["C", ""]}
                 ).to_excel(long, index=False)
    _, g_long, _ = grade_records(long)
    assert _grades(g_long) == {("A", 1): (3, 0)}


def test_cli_reads_domain_files_and_writes_ae_rows(tmp_path: Path) -> None:
    d = _write_domains(tmp_path / "sdtm")
    out = tmp_path / "out"
    r = runner.invoke(app, [*(str(d / f"{n}.csv") for n in DOMAINS), "--out", str(out),
                            "--no-plots"])
    assert r.exit_code == 3, r.output  # the two bad VS rows
    ae = pd.read_csv(out / "ae.csv")
    assert list(ae.columns) == ["STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AETERM", "AEDECOD",
                                "AESTDY", "AEENDY", "AETOXGR", "AEGRSCL"]
    crs = ae[(ae.USUBJID == "S1") & (ae.AEDECOD == "Cytokine release syndrome")].iloc[0]
    assert (crs.AESTDY, crs.AEENDY, crs.AETOXGR, crs.AEGRSCL) == (3, 5, 3, "ASTCT 2019")
    icans = ae[ae.AEDECOD.str.startswith("Immune effector")].iloc[0]
    assert (icans.USUBJID, icans.AESTDY, icans.AETOXGR) == ("S2", 4, 3)
    neut = ae[ae.AEDECOD == "Neutrophil count decreased"].iloc[0]
    assert (neut.AETOXGR, neut.AEGRSCL) == (4, "CTCAE v5.0")
    assert (ae.DOMAIN == "AE").all()
    assert ae.groupby("USUBJID")["AESEQ"].apply(lambda s: list(s) == list(range(1, len(s) + 1))
                                                ).all()


def test_sas_transport_domain_files(tmp_path: Path) -> None:
    """VS as SAS XPT (read with pandas.read_sas) beside DM as CSV."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _xpt import write_xpt_chars

    d = tmp_path / "xpt"
    d.mkdir()
    write_xpt_chars(d / "vs.xpt", "VS", {
        "USUBJID": ["S1", "S1", "S2"], "VSTESTCD": ["TEMP", "TEMP", "OXYSAT"],
        "VSORRES": ["39.2", "37.0", "91"], "VSORRESU": ["C", "C", "%"],
        "VSDY": ["3", "-2", "2"]})
    (d / "dm.csv").write_text(DOMAINS["dm"], encoding="utf-8")
    parsed, g, _ = grade_records(d)
    assert parsed.rejected.empty, parsed.rejected
    got = {(r.patient_id, int(r.day)): r.temperature_max_c for r in g.itertuples(index=False)}
    assert got[("S1", 2)] == 39.2 and got[("S1", -2)] == 37.0
    assert int(g.set_index(["patient_id", "day"]).loc[("S1", 2), "crs_grade_astct"]) == 1


def test_missing_key_column_is_fatal_and_named(tmp_path: Path) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "vs.csv").write_text("SUBJECT,VSTESTCD,VSORRES,VSORRESU,VSDY\nS1,TEMP,39,C,2\n",
                              encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"vs\.csv.*USUBJID"):
        grade_records(d)
    out = tmp_path / "out"
    r = runner.invoke(app, [str(d), "--out", str(out)])
    assert r.exit_code == 2 and "USUBJID" in r.output and not out.exists()


# The ASTCT hypoxia boundary (clinical_standards.md §1.4, CRS-04..06): a nasal cannula at
# ≤ 6 L/min is low-flow (grade 2 with fever), above 6 L/min high-flow (grade 3).
O2_VECTORS = [
    ("nasal cannula 4 L/min", 2), ("nasal cannula 6 L/min", 2), ("NC 6.0 lpm", 2),
    ("nasal cannula 6.5 L/min", 3), ("nasal cannula 7 L/min", 3), ("7 L/min via nasal cannula", 3),
    ("HFNC", 3), ("high-flow nasal cannula 40 L/min", 3), ("simple face mask 5 L/min", 3),
    ("room air", 1), ("BiPAP", 4), ("non-rebreather 15 L/min", 3), ("intubated", 4),
]


@pytest.mark.parametrize(("text", "grade"), O2_VECTORS)
def test_oxygen_chart_text_and_the_six_litre_boundary(tmp_path: Path, text: str,
                                                      grade: int) -> None:
    f = tmp_path / "o2.csv"
    f.write_text(f'patient_id,day,measure,value,unit\nA,1,temperature,38.5,C\n'
                 f'A,1,oxygen_device,"{text}",\n', encoding="utf-8")
    parsed, g, _ = grade_records(f)
    assert parsed.rejected.empty, parsed.rejected
    assert int(g["crs_grade_astct"].iloc[0]) == grade


@pytest.mark.parametrize(("flow", "grade"), [(6.0, 2), (6.01, 3)])
def test_separate_flow_rows_use_the_same_boundary(tmp_path: Path, flow: float,
                                                  grade: int) -> None:
    f = tmp_path / "o2.csv"
    f.write_text("patient_id,day,measure,value,unit\nA,1,temperature,38.5,C\n"
                 f"A,1,oxygen_device,nasal_cannula,\nA,1,oxygen_flow,{flow},L/min\n",
                 encoding="utf-8")
    assert int(grade_records(f)[1]["crs_grade_astct"].iloc[0]) == grade


@pytest.mark.parametrize(("seizure", "icans"), [
    ("focal", 3), ("generalised", 3), ("Generalized tonic-clonic", 3),
    ("non-convulsive on EEG", 3), ("status epilepticus", 4), ("seizure > 5 min, prolonged", 4),
])
def test_seizure_chart_words(tmp_path: Path, seizure: str, icans: int) -> None:
    f = tmp_path / "sz.csv"
    f.write_text(f'patient_id,day,measure,value,unit\nA,1,ice_score,3,\nA,1,seizure,"{seizure}",\n',
                 encoding="utf-8")
    parsed, g, _ = grade_records(f)
    if seizure.startswith("seizure >"):  # not a chart phrase we map: rejected, not guessed
        assert len(parsed.rejected) == 1
        return
    assert parsed.rejected.empty, parsed.rejected
    assert int(g["icans_grade_astct"].iloc[0]) == icans


@pytest.mark.parametrize(("agents", "grade"), [
    (["norepinephrine 0.1 µg/kg/min"], 3),
    (["noradrenaline 0.05 mcg/kg/min", "vasopressin 0.03 units/min"], 3),
    (["norepinephrine 0.1 µg/kg/min", "phenylephrine 1 ug/kg/min"], 4),
])
def test_vasopressor_chart_text(tmp_path: Path, agents: list[str], grade: int) -> None:
    rows = "".join(f'A,1,vasopressor,"{a}",\n' for a in agents)
    f = tmp_path / "vp.csv"
    f.write_text("patient_id,day,measure,value,unit\nA,1,temperature,39,C\n" + rows,
                 encoding="utf-8")
    parsed, g, _ = grade_records(f)
    assert parsed.rejected.empty, parsed.rejected
    assert int(g["crs_grade_astct"].iloc[0]) == grade
