"""Bad records lose nothing silently: ragged rows, duplicates, conflicting baselines,
Windows-1252 files, colliding patient file names, formula cells, --no-plots and progress."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from typer.testing import CliRunner

from cartsim.clinic.cli import grade_command, neutralise_formulas, timeline_names

app = typer.Typer()
app.command()(grade_command)
runner = CliRunner()
HEADER = "patient_id,day,measure,value,unit"


def grade(tmp_path: Path, content: str | bytes, *args: str) -> tuple[int, Path, str]:
    f = tmp_path / "rec.csv"
    if isinstance(content, str):
        f.write_text(content, encoding="utf-8")
    else:
        f.write_bytes(content)
    out = tmp_path / "out"
    r = runner.invoke(app, [str(f), "--out", str(out), *args])
    return r.exit_code, out, r.output


def test_trailing_commas_repaired_and_ragged_rows_rejected_one_by_one(tmp_path: Path) -> None:
    text = "\n".join([
        HEADER + ",",                       # Excel: a trailing comma on every line
        "A,1,temperature,39,C,",            # line 2: repaired
        "A,2,temperature,38.5,C,extra",     # line 3: one cell too many -> rejected
        "A,3,temperature,39",               # line 4: one cell short -> rejected
        "A,4,temperature,40,C,",            # line 5: repaired, not shifted by line 3/4
        "A,4,oxygen_device,hfnc,,",         # line 6: two empty trailing cells
    ]) + "\n"
    code, out, _ = grade(tmp_path, text)
    assert code == 3
    rej = pd.read_csv(out / "rejected_rows.csv")
    assert rej["row"].tolist() == [3, 4]
    assert all("ragged row" in r for r in rej["reason"])
    daily = pd.read_csv(out / "daily_grades.csv").set_index("day")
    assert daily.loc[1, "temperature_max_c"] == 39.0
    assert daily.loc[4, "temperature_max_c"] == 40.0
    assert daily.loc[4, "crs_grade_astct"] == 3  # fever + high-flow cannula
    warn = pd.read_csv(out / "record_warnings.csv")
    assert set(warn["row"]) == {2, 5, 6}
    assert all("trailing empty cells removed" in w for w in warn["warning"])


def test_duplicates_rejected_and_conflicting_ages_reported(tmp_path: Path) -> None:
    text = "\n".join([
        HEADER,
        "A,-3,age,10,years",
        "A,1,fluid_bolus,500,mL",
        "A,1,fluid_bolus,500,mL",   # line 4: exact duplicate, would double the bolus
        "A,1,temperature,38.4,C",
        "A,2,age,12,years",         # line 6: a second, different age
        "B,1,temperature,37,C",
    ]) + "\n"
    code, out, text_out = grade(tmp_path, text)
    assert code == 3
    rej = pd.read_csv(out / "rejected_rows.csv")
    assert rej[["row", "reason"]].values.tolist() == [[4, "duplicate of line 3"]]
    warn = pd.read_csv(out / "record_warnings.csv")
    assert warn["row"].tolist() == [6]
    assert "conflicting age" in warn["warning"][0] and "line 2" in warn["warning"][0]
    assert "1 warnings" in text_out


def test_windows_1252_file_is_decoded_per_line(tmp_path: Path) -> None:
    lines = [HEADER.encode(), "A,1,temperature,102.2,°F".encode("cp1252"),
             b"A,2,temperature,37,C", b"A,3,temperature,38,C\x81"]  # 0x81: not cp1252
    code, out, _ = grade(tmp_path, b"\r\n".join(lines) + b"\r\n")
    assert code == 3
    daily = pd.read_csv(out / "daily_grades.csv").set_index("day")
    assert daily.loc[1, "temperature_max_c"] == 39.0
    rej = pd.read_csv(out / "rejected_rows.csv")
    assert rej["row"].tolist() == [4] and "undecodable" in rej["reason"][0]
    warn = pd.read_csv(out / "record_warnings.csv")
    assert 2 in warn["row"].tolist()
    assert "Windows-1252" in warn.set_index("row").loc[2, "warning"]


def test_patient_ids_colliding_as_file_names_never_overwrite(tmp_path: Path) -> None:
    ids = ["P 1", "P_1", "P/1", "p_1"]
    text = HEADER + "\n" + "".join(f'"{p}",1,temperature,{38 + k},C\n'
                                   for k, p in enumerate(ids))
    code, out, _ = grade(tmp_path, text)
    assert code == 0
    pngs = sorted(out.glob("timeline_*.png"))
    assert len(pngs) == 4
    summary = pd.read_csv(out / "patient_summary.csv", keep_default_na=False)
    assert sorted(summary["patient_id"]) == sorted(ids)
    assert summary["timeline_png"].nunique() == 4
    assert {p.name for p in pngs} == set(summary["timeline_png"])
    names = timeline_names(ids)
    assert len({n.lower() for n in names.values()}) == 4
    assert timeline_names(["P001"]) == {"P001": "P001"}


def test_formula_cells_are_neutralised_but_numbers_are_not(tmp_path: Path) -> None:
    text = "\n".join([
        HEADER,
        '"=HYPERLINK(""http://x"")",1,temperature,39,C',
        "@SUM(A1),1,temperature,39,C",
        "A,-2,temperature,39,C",
        "A,1,spo2,-5,%",            # rejected; the reason quotes the value
        "+cmd,1,blood_sugar,-3,mg/dL",
    ]) + "\n"
    code, out, _ = grade(tmp_path, text)
    assert code == 3
    for name in ("daily_grades.csv", "patient_summary.csv", "rejected_rows.csv"):
        raw = (out / name).read_text(encoding="utf-8")
        for line in raw.splitlines():
            for cell in line.split(","):
                c = cell.strip('"')
                if c[:1] in ("=", "+", "@"):
                    raise AssertionError(f"{name}: formula cell {cell!r}")
    daily = pd.read_csv(out / "daily_grades.csv")
    assert (daily["day"] == -2).any()  # a negative number stays a number
    assert "'=HYPERLINK" in " ".join(daily["patient_id"].astype(str))
    df = neutralise_formulas(pd.DataFrame({"t": ["-1.5", "-x", "=1+1", "ok"],
                                           "n": [-1.0, 2.0, 3.0, 4.0]}))
    assert df["t"].tolist() == ["-1.5", "'-x", "'=1+1", "ok"]
    assert df["n"].tolist() == [-1.0, 2.0, 3.0, 4.0]


def test_no_plots_and_plain_progress_for_many_patients(tmp_path: Path) -> None:
    text = HEADER + "\n" + "".join(f"P{k:03d},1,temperature,38.5,C\n" for k in range(25))
    code, out, _ = grade(tmp_path, text, "--no-plots")
    assert code == 0
    assert not list(out.glob("*.png"))
    assert len(pd.read_csv(out / "patient_summary.csv")) == 25
    out2 = tmp_path / "plots"
    r = runner.invoke(app, [str(tmp_path / "rec.csv"), "--out", str(out2)])
    assert r.exit_code == 0
    assert len(list(out2.glob("*.png"))) == 25
    assert "timelines: 25/25 patients (100%)" in r.output
