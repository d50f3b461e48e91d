"""Bad inputs at the command line: one error line naming the input, exit 2, nothing written.

Each case used to end in a Python traceback (or, for ``--out FILE``, in one after the
simulation had run). The checks run before any simulation, so these tests are fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartsim.cli import app

runner = CliRunner()
SPEC = """
name = "tiny"
seed = 1
follow_up_days = 60
assessment_days = [28]
[population]
disease = "b-all"
size = 2
[[arms]]
name = "tisa"
product = "tisagenlecleucel"
"""


def _listing(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def _one_error_line(result, *words: str) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.output.strip()
    assert "Traceback" not in text and "pydantic" not in text and "http" not in text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("error:"), text
    for w in words:
        assert w in lines[0], (w, text)
    return lines[0]


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(SPEC, encoding="utf-8")
    return p


def test_spec_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "specdir").mkdir()
    before = _listing(tmp_path)
    r = runner.invoke(app, ["trial", "run", str(tmp_path / "specdir"),
                            "--out", str(tmp_path / "o")])
    _one_error_line(r, "specdir", "directory")
    assert _listing(tmp_path) == before


def test_spec_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "Müller"\n'.encode("latin-1"))
    before = _listing(tmp_path)
    r = runner.invoke(app, ["trial", "run", str(bad), "--out", str(tmp_path / "o")])
    _one_error_line(r, "latin1.toml", "UTF-8")
    assert _listing(tmp_path) == before


def test_trial_out_naming_a_file_is_refused_before_running(spec: Path, tmp_path: Path) -> None:
    f = tmp_path / "results.txt"
    f.write_text("keep me", encoding="utf-8")
    before = _listing(tmp_path)
    r = runner.invoke(app, ["trial", "run", str(spec), "--out", str(f)])
    _one_error_line(r, "--out", "results.txt")
    assert f.read_text(encoding="utf-8") == "keep me"
    assert _listing(tmp_path) == before


def test_simulate_out_naming_a_file_is_refused_before_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cartsim.simulation

    def must_not_run(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("simulated although --out is a file")

    monkeypatch.setattr(cartsim.simulation, "simulate", must_not_run)
    f = tmp_path / "out.parquet"
    f.write_bytes(b"x")
    r = runner.invoke(app, ["simulate", "--product", "tisagenlecleucel", "--disease", "b-all",
                            "--days", "30", "--out", str(f)])
    _one_error_line(r, "--out", "out.parquet")
    assert f.read_bytes() == b"x"


def test_grade_out_naming_a_file(tmp_path: Path) -> None:
    rec = tmp_path / "r.csv"
    rec.write_text("patient_id,day,measure,value,unit\nP1,1,temperature,39,C\n",
                   encoding="utf-8")
    f = tmp_path / "grades"
    f.write_text("a file", encoding="utf-8")
    before = _listing(tmp_path)
    r = runner.invoke(app, ["grade", str(rec), "--out", str(f)])
    _one_error_line(r, "--out", "grades")
    assert _listing(tmp_path) == before


def test_screen_truth_missing(tmp_path: Path) -> None:
    r = runner.invoke(app, ["screen", "simulate", "--truth", str(tmp_path / "missing.csv"),
                            "-n", str(tmp_path / "x")])
    _one_error_line(r, "missing.csv")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("flag", "value"), [("--days", "inf"), ("--days", "nan"),
                                             ("--coverage", "inf"), ("--moi", "7")])
def test_screen_non_finite_or_out_of_range_option(tmp_path: Path, flag: str,
                                                  value: str) -> None:
    r = runner.invoke(app, ["screen", "simulate", flag, value, "--n-genes", "20",
                            "-n", str(tmp_path / "x")])
    _one_error_line(r, flag)
    assert not list(tmp_path.iterdir())


def test_spec_errors_are_in_our_words(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.replace("seed = 1", 'seed = "abc"'), encoding="utf-8")
    r = runner.invoke(app, ["trial", "run", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "seed: must be a whole number" in r.output
    assert "Input should" not in r.output and "errors.pydantic.dev" not in r.output
    assert not (tmp_path / "o").exists()
