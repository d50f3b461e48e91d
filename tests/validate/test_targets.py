"""Targets file checks: per-row errors (line, field, what is allowed) and whole-file errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartsim.cli import app
from cartsim.validate.targets import (
    REQUIRED_COLUMNS,
    TargetsFileError,
    default_targets_path,
    read_targets,
)

DATA = Path(__file__).parent / "data"
HEADER = ["study", "citation", "disease", "n", "arm_or_subgroup", "endpoint", "timepoint",
          "value", "ci_low", "ci_high", "unit", "grading_scale"]


def write_targets(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" for k in header} | r)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def row(**kw: str) -> dict[str, str]:
    base = {"study": "Study X", "disease": "B-ALL", "n": "50", "arm_or_subgroup": "all",
            "endpoint": "CR", "value": "60", "unit": "percent"}
    return base | kw


BAD_ROWS = [
    row(),                                                               # line 2: valid
    row(endpoint="CR_at_the_moon"),                                      # 3: unknown endpoint
    row(ci_low="-5", ci_high="70"),                                      # 4: CI outside 0-100
    row(ci_low="70", ci_high="50", value="60"),                          # 5: ci_low > ci_high
    row(value="sixty"),                                                  # 6: not numeric
    row(value="120"),                                                    # 7: percent > 100
    row(endpoint="OS", timepoint="12 months", value="50", ci_low="35", ci_high="64"),  # 8 valid
    row(n="2.5"),                                                        # 9: n not whole
]


def test_reference_file_is_clean() -> None:
    t = read_targets(default_targets_path())
    assert t.errors == []
    assert len(t.rows) == 429 and t.rows[0].line == 2 and t.rows[0].study == "ELIANA"


def test_each_bad_row_gets_a_specific_error(tmp_path: Path) -> None:
    t = read_targets(write_targets(tmp_path / "t.csv", BAD_ROWS))
    assert [r.line for r in t.rows] == [2, 8]
    by_line = {e.line: e for e in t.errors}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 9]
    assert by_line[3].field == "endpoint" and "unknown endpoint 'CR_at_the_moon'" in \
        by_line[3].message and "endpoints.toml" in by_line[3].message
    assert by_line[4].field == "ci_low" and "outside 0-100" in by_line[4].message
    assert by_line[5].field == "ci_low" and "ci_low <= ci_high" in by_line[5].message
    assert by_line[6].field == "value" and "not a number" in by_line[6].message
    assert by_line[7].field == "value" and "0-100 for unit percent" in by_line[7].message
    assert by_line[9].field == "n"
    assert str(by_line[4]).startswith("line 4: ci_low:")


def test_missing_required_column_is_a_whole_file_error(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "ci_high"]
    p = write_targets(tmp_path / "t.csv", [row()], header)
    with pytest.raises(TargetsFileError, match="missing required column.*ci_high"):
        read_targets(p)
    assert "ci_high" in REQUIRED_COLUMNS


def test_cli_missing_column_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "unit"]
    p = write_targets(tmp_path / "t.csv", [row()], header)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["validate", str(p), "--out", str(out), "--specs", str(DATA)])
    assert res.exit_code == 2
    assert "missing required column(s) unit" in res.output
    assert not out.exists()


def test_cli_bad_rows_listed_valid_rows_kept(tmp_path: Path) -> None:
    """Study X has no spec in the library: valid rows are reported unmapped (no simulation
    runs), every bad row is an `error` line of validation.csv and a message on stderr."""
    p = write_targets(tmp_path / "t.csv", BAD_ROWS)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["validate", str(p), "--out", str(out), "--specs", str(DATA)])
    assert res.exit_code == 0, res.output
    assert "line 3: endpoint: unknown endpoint 'CR_at_the_moon'" in res.output
    assert "line 5: ci_low: ci_low 70 > ci_high 50" in res.output
    with (out / "validation.csv").open(encoding="utf-8") as f:
        recs = {int(r["line"]): r for r in csv.DictReader(f)}
    assert sorted(recs) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert recs[2]["status"] == "unmapped" and "no spec for study" in recs[2]["reason"]
    assert {recs[i]["status"] for i in (3, 4, 5, 6, 7, 9)} == {"error"}
    assert "value: not a number" in recs[6]["reason"]
    assert (out / "summary.json").exists() and (out / "report.html").exists()
