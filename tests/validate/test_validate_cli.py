"""``cartsim validate`` end to end at tiny N: outputs, bad rows alongside valid ones, and the
same seed giving identical files on rerun."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartsim.cli import app
from cartsim.validate.targets import default_targets_path

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference ELIANA rows plus two bad rows (kept at their own line numbers)."""
    with default_targets_path().open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    keep = [r for r in rows if r["study"] == "ELIANA"]
    bad1 = dict(keep[11], endpoint="CR_on_mars")
    bad2 = dict(keep[12], ci_low="90", ci_high="40")
    p = tmp_path_factory.mktemp("targets") / "eliana_targets.csv"
    with p.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(keep + [bad1, bad2])
    return p


@pytest.fixture(scope="module")
def runs(targets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("validate")
    outs = []
    output = ""
    for name in ("a", "b"):
        out = base / name
        res = CliRunner().invoke(app, ["validate", str(targets), "--out", str(out), "--specs",
                                       str(DATA), "--studies", "eliana", "--patients", "6",
                                       "--seed", "3"])
        assert res.exit_code == 0, res.output
        output = res.output
        outs.append(out)
    return outs[0], outs[1], output


def test_outputs(runs: tuple[Path, Path, str], targets: Path) -> None:
    out, _, output = runs
    for f in ("validation.csv", "summary.json", "report.html",
              "trials/eliana/patients.parquet"):
        assert (out / f).is_file(), f
    with (out / "validation.csv").open(encoding="utf-8") as f:
        recs = list(csv.DictReader(f))
    n_rows = sum(1 for _ in targets.open(encoding="utf-8")) - 1
    assert len(recs) == n_rows  # every row reported, none dropped
    status = {r["status"] for r in recs}
    assert {"compared", "baseline", "unmapped", "error"} <= status
    compared = [r for r in recs if r["status"] == "compared"]
    assert all(r["n_simulated"] == "6" for r in compared if r["subgroup"] == "all infused"
               and r["endpoint"] in ("ORR_CR_CRi", "CRS_any"))
    crs = [r for r in compared if r["endpoint"] == "CRS_any"]
    assert crs and crs[0]["scale"] == "penn"
    errors = [r for r in recs if r["status"] == "error"]
    assert len(errors) == 2 and "unknown endpoint 'CR_on_mars'" in errors[0]["reason"]
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["overall"]["compared"] == len(compared) and s["overall"]["error"] == 2
    assert s["studies"]["eliana"]["patients_per_arm"] == 6 and s["studies"]["eliana"]["seed"] == 3
    assert set(s["per_family"]) >= {"response", "survival", "crs"}
    # ELIANA is tisagenlecleucel (4-1BB): every compared row in that class, and summed
    assert all(r["costim"] == "4-1BB" for r in compared)
    assert set(s["per_costim"]) == {"4-1BB"}
    assert s["per_costim"]["4-1BB"]["compared"] == len(compared)
    assert "co-stimulation 4-1BB" in output
    assert "invalid targets row" in output and "ci_low 90 > ci_high 40" in output
    assert "overall" in output  # the rich summary table
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 2  # forest plot + KM with landmarks
    assert "not calibrated to clinical trial outcomes" in html
    # the headline endpoints: every entry reported (found or not), in the CLI and the report
    from cartsim.validate.headline import load_headline

    assert s["headline"]["entries"] == len(load_headline())
    assert "headline endpoints" in output and "Headline endpoints" in html


def test_rerun_is_identical(runs: tuple[Path, Path, str]) -> None:
    a, b, _ = runs
    for f in ("validation.csv", "summary.json", "report.html",
              "trials/eliana/patients.parquet"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_parallel_studies_give_the_serial_numbers(targets: Path, tmp_path: Path) -> None:
    """Whole studies in two worker processes (the CLI default on a multi-core machine) give the
    table of the in-process run: each study keeps its own seed and patients."""
    from cartsim.validate.run import validate

    kw = dict(specs=DATA, studies=["eliana", "zuma4"], patients=4, seed=5, report=False)
    serial = validate(None, tmp_path / "serial", workers=1, **kw)  # type: ignore[arg-type]
    parallel = validate(None, tmp_path / "parallel", workers=2, **kw)  # type: ignore[arg-type]
    assert list(parallel.runs) == list(serial.runs) == ["eliana", "zuma4"]
    assert (serial.out / "validation.csv").read_bytes() == \
        (parallel.out / "validation.csv").read_bytes()
    assert (serial.table["status"] == "compared").sum() > 10
