"""The HTML report: every figure embedded, rebuildable from the parquet files, renders."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartsim.trial.runner import run_trial
from cartsim.trial.spec import validate_spec

ROOT = Path(__file__).resolve().parents[2]
N_FIGURES = 10  # EFS, OS, forest, swimmer, kinetics, grades, onset, cytopenia, BCA, relapse


@pytest.fixture(scope="module")
def trial_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = validate_spec({
        "name": "report-test", "seed": 3, "follow_up_days": 120, "assessment_days": [28, 91],
        "crs_scale": "lee2014",
        "population": {"disease": "lbcl", "size": 8, "age_y": 60,
                       "tumour_volume_ml": {"kind": "lognormal", "median": 50, "sd_log": 1,
                                            "lower": 2, "upper": 2000}},
        "arms": [{"name": "axi", "product": "axi-cel"},
                 {"name": "liso", "product": "liso-cel", "protocol": "none"}],
    })
    out = tmp_path_factory.mktemp("trial") / "r"
    run_trial(spec, out, chunk_size=4)
    return out


def test_report_contains_every_figure_and_table(trial_dir: Path) -> None:
    html = (trial_dir / "report.html").read_text(encoding="utf-8")
    imgs = re.findall(r"<img [^>]*src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(imgs) == N_FIGURES
    assert all(len(b) > 5000 for b in imgs)
    for caption in ("Event-free survival", "Overall survival", "Swimmer plot",
                    "CAR-T kinetics by response", "Cytopenia time courses", "B-cell aplasia",
                    "Relapse phenotypes"):
        assert f"<figcaption>{caption}</figcaption>" in html
    assert "Clopper" in html and "Arm comparisons" in html
    for col in ("cart_cmax", "crs_max_grade", "icaht_early_grade", "bca_duration_days",
                "best_response", "death_cause"):
        assert f"<td>{col}</td>" in html, col
    assert "src='http" not in html and "<script" not in html  # self-contained


def test_report_command_rebuilds_it(trial_dir: Path) -> None:
    from cartsim.cli import app

    (trial_dir / "report.html").unlink()
    res = CliRunner().invoke(app, ["trial", "report", str(trial_dir)])
    assert res.exit_code == 0, res.output
    assert (trial_dir / "report.html").read_text(encoding="utf-8").count("<img ") == N_FIGURES
    bad = CliRunner().invoke(app, ["trial", "report", str(trial_dir / "nope")])
    assert bad.exit_code == 2 and "DIR" in bad.output


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium")
@pytest.mark.slow  # ~10 s (a browser start); kept for `pytest -m slow`
def test_report_renders_in_headless_chromium(trial_dir: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "screenshot_report", ROOT / "benchmarks" / "screenshot_report.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    png = mod.screenshot(trial_dir / "report.html", tmp_path / "report.png")
    st = mod.png_stats(png)
    assert st["width"] == 1400 and st["height"] == 6000
    assert mod.is_nontrivial(st), st


def test_report_and_summary_count_patients_the_simulator_stopped(trial_dir: Path) -> None:
    import json

    import pandas as pd

    from cartsim.report.html import build_report
    from cartsim.trial.summary import build_summary

    summary = json.loads((trial_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["stopped_patients"] == 0
    assert {r["arm"] for r in summary["status"]} == {"axi", "liso"}
    patients = pd.read_parquet(trial_dir / "patients.parquet")
    patients.loc[patients.index[2], "solver_status"] = 4
    manifest = json.loads((trial_dir / "manifest.json").read_text(encoding="utf-8"))
    s = build_summary(patients, validate_spec(manifest["spec"]))
    assert s["stopped_patients"] == 1
    html = build_report(patients, pd.read_parquet(trial_dir / "daily.parquet"), manifest)
    assert "1 patient(s) stopped early" in html and "<td>implausible</td>" in html


def test_trial_run_output_warns_when_the_simulator_stopped_patients(
        trial_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Session 47: `cartsim trial run` prints a warning under its table when patients were
    stopped early (their endpoints are censored there), and none otherwise."""
    import json
    import shutil

    from cartsim.trial.cli import _print_summary

    _print_summary(trial_dir)
    assert "stopped" not in capsys.readouterr().out
    copy = tmp_path / "copy"
    shutil.copytree(trial_dir, copy)
    s = json.loads((copy / "summary.json").read_text(encoding="utf-8"))
    s["stopped_patients"] = 3
    (copy / "summary.json").write_text(json.dumps(s), encoding="utf-8")
    _print_summary(copy)
    assert "the simulator stopped 3 patients early" in capsys.readouterr().out.replace("\n", " ")


def test_report_header_names_the_parameter_set_and_the_crs_scale(trial_dir: Path) -> None:
    """Issue 13 item 8: a reader sees which parameter set (calibrated or not) and which CRS
    scale produced the numbers, and the grade figure is on that scale."""
    html = (trial_dir / "report.html").read_text(encoding="utf-8")
    head = html[: html.index("<h2>")]
    assert "Parameter set:</b>" in head and "calibrat" in head
    assert "CRS scale:</b> lee2014" in head
    assert "<figcaption>CRS and ICANS grade distributions (CRS on the lee2014 scale)" in html
    assert "Subgroup hazard ratios (forest plot)" in html


def test_cli_trial_table_uses_the_specs_crs_scale(trial_dir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from cartsim.trial.cli import _print_summary

    _print_summary(trial_dir)
    out = capsys.readouterr().out
    assert "crs_any (lee2014)" in out and "crs_grade_ge3 (lee2014)" in out
    assert "lee2014 scale" in " ".join(out.split())
