"""``cartsim validate-diff BEFORE AFTER`` and ``cartsim validate --against BEFORE``: what moved
between two validation runs (single or replicated)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cartsim.cli import app
from cartsim.errors import InvalidInputError
from cartsim.validate.diff import diff_runs, replicate_dirs, run_targets
from cartsim.validate.library import external_dir
from cartsim.validate.targets import default_targets_path

DATA = Path(__file__).parent / "data"
ARGS = ["--specs", str(DATA), "--studies", "eliana", "--patients", "6", "--seed", "3",
        "--no-report"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("diff") / "base"
    res = CliRunner().invoke(app, ["validate", "--out", str(out), *ARGS])
    assert res.exit_code == 0, res.output
    return out


def _edited(run: Path, dest: Path, line: int, simulated: float, passes: bool) -> Path:
    """A copy of ``run`` with one compared row's simulated value and verdict replaced."""
    shutil.copytree(run, dest)
    t = pd.read_csv(dest / "validation.csv")
    i = t.index[t["line"] == line][0]
    t.loc[i, "simulated"] = simulated
    t["passes"] = t["passes"].astype(object)
    t.loc[i, "passes"] = passes
    t.to_csv(dest / "validation.csv", index=False)
    return dest


def _a_passing_rate_row(run: Path) -> pd.Series:
    t = pd.read_csv(run / "validation.csv")
    ok = t[(t["status"] == "compared") & (t["passes"] == True)  # noqa: E712
           & (t["unit"] == "percent")]
    return ok.iloc[0]


def test_a_run_against_itself_moves_nothing(run: Path) -> None:
    d = diff_runs(run, run)
    assert (d.figures["change"] == 0).all()
    assert d.flips.empty and not d.only_before and not d.only_after
    assert (d.rows["deviance_change"].dropna() == 0).all()
    summary = json.loads((run / "summary.json").read_text())
    assert d.figures.loc["passing", "before"] == summary["overall"]["passing"]


def test_one_row_made_to_fail_is_a_loss_with_its_deviance(run: Path, tmp_path: Path) -> None:
    row = _a_passing_rate_row(run)
    far = 0.0 if float(row["published"]) > 50 else 100.0
    after = _edited(run, tmp_path / "after", int(row["line"]), far, False)
    d = diff_runs(run, after)
    assert list(d.flips["line"]) == [row["line"]]
    assert d.flips.iloc[0]["flip"] == "loss"
    moved = d.rows.set_index("line")
    assert moved.loc[row["line"], "simulated_after"] == far
    assert moved.loc[row["line"], "deviance_change"] > 0  # a far value costs deviance
    assert (moved.drop(index=row["line"])["deviance_change"].dropna() == 0).all()
    # the run-level deviance change is that row's, and the per-study table adds up to it
    assert d.figures.loc["deviance", "change"] == pytest.approx(
        moved.loc[row["line"], "deviance_change"])
    assert d.per_study["deviance_change"].sum() == pytest.approx(
        d.figures.loc["deviance", "change"])
    # ... and the other way round it is a gain
    back = diff_runs(after, run)
    assert list(back.flips["flip"]) == ["gain"]
    # the loss lies outside the pass band by how far the value is from it, the gain inside
    lo, hi = row["published_ci_low"], row["published_ci_high"]
    if pd.isna(lo) and pd.isna(hi):
        out = 10.0 - abs(far - float(row["published"]))
    else:
        out = min(far - float(lo) if not pd.isna(lo) else float("inf"),
                  float(hi) - far if not pd.isna(hi) else float("inf"))
    assert d.flips.iloc[0]["margin_after"] == pytest.approx(out)
    assert d.flips.iloc[0]["margin_after"] < 0 < back.flips.iloc[0]["margin_after"]


def test_replicated_runs_compare_by_majority_verdict(run: Path, tmp_path: Path) -> None:
    row = _a_passing_rate_row(run)
    far = 0.0 if float(row["published"]) > 50 else 100.0
    reps = tmp_path / "reps"
    reps.mkdir()
    shutil.copytree(run, reps / "rep0")
    _edited(run, reps / "rep1", int(row["line"]), far, False)
    assert replicate_dirs(reps) == [reps / "rep0", reps / "rep1"]
    d = diff_runs(run, reps)
    x = d.rows.set_index("line").loc[row["line"]]
    assert x["pass_share_after"] == 0.5  # passes in one of two: not a majority
    assert x["flip"] == "loss"
    assert x["simulated_after"] == pytest.approx((float(row["simulated"]) + far) / 2)
    # (the run-level counts are each run's summary.json, which the edit left alone; the
    # row-level majority count moves by the one row)
    assert d.figures.loc["shared_passing", "after"] == d.figures.loc["shared_passing",
                                                                       "before"] - 1


def test_cli_diff_prints_and_writes(run: Path, tmp_path: Path) -> None:
    row = _a_passing_rate_row(run)
    after = _edited(run, tmp_path / "after", int(row["line"]), 0.0, False)
    res = CliRunner().invoke(app, ["validate-diff", str(run), str(after), "--out",
                                   str(tmp_path / "cmp"), "--plot", str(tmp_path / "d.png")])
    assert res.exit_code == 0, res.output
    assert "rows no longer passing (1)" in res.output
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from cartsim.validate.diff import plotted_rows

    assert list(plotted_rows(diff_runs(run, after))["line"]) == [row["line"]]
    bad = CliRunner().invoke(app, ["validate-diff", str(run), str(after), "--plot",
                                   str(tmp_path / "d.pdf")])
    assert bad.exit_code == 2 and "--plot" in bad.output
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert set(table.loc[table["flip"].fillna("") != "", "line"]) == {row["line"]}
    js = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert [f["line"] for f in js["flips"]] == [int(row["line"])]


def test_validate_against_an_earlier_run(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    res = CliRunner().invoke(app, ["validate", "--out", str(out), *ARGS, "--against",
                                   str(run)])
    assert res.exit_code == 0, res.output
    assert "deviance (calibration objective)" in res.output
    js = json.loads((out / "comparison.json").read_text())
    # the same seed and library: nothing moved
    assert js["flips"] == [] and js["figures"]["deviance"]["change"] == 0


def test_not_a_validation_directory_is_a_clear_error(run: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="validation directory"):
        replicate_dirs(tmp_path)
    res = CliRunner().invoke(app, ["validate-diff", str(tmp_path), str(run)])
    assert res.exit_code == 2 and "validation directory" in res.output
    # --against is checked before anything runs
    res = CliRunner().invoke(app, ["validate", "--out", str(tmp_path / "x"), *ARGS,
                                   "--against", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and not (tmp_path / "x").exists()


def _with_targets(run: Path, dest: Path, targets: str, specs: str) -> Path:
    """A copy of ``run`` whose summary records another targets file and library."""
    shutil.copytree(run, dest)
    s = json.loads((dest / "summary.json").read_text())
    s["targets"], s["specs"] = targets, specs
    (dest / "summary.json").write_text(json.dumps(s))
    return dest


def test_each_run_is_scored_against_the_targets_file_it_used(run: Path, tmp_path: Path) -> None:
    """The deviance matches rows on the targets file's line numbers, so a run of the external
    library is scored against its own targets.csv (it was scored against the shipped reference
    set until session 34, which gave an external run's deviance as 1224.5 instead of its
    2710.7), a run of a user's file needs --targets with that file's name, and two runs of
    different files are refused."""
    assert run_targets(run) == default_targets_path()
    ext = _with_targets(run, tmp_path / "ext", "targets.csv", external_dir().name)
    assert run_targets(ext) == external_dir() / "targets.csv"
    mine = _with_targets(run, tmp_path / "mine", "mine.csv", "my_specs")
    with pytest.raises(InvalidInputError, match="--targets"):
        run_targets(mine)
    with pytest.raises(InvalidInputError, match="--targets"):
        run_targets(mine, tmp_path / "other.csv")
    assert run_targets(mine, tmp_path / "mine.csv") == tmp_path / "mine.csv"
    with pytest.raises(InvalidInputError, match="AFTER"):
        diff_runs(run, ext)
    res = CliRunner().invoke(app, ["validate-diff", str(run), str(mine)])
    assert res.exit_code == 2 and "--targets" in res.output


@pytest.mark.parametrize("published, lo, hi, unit, value, margin", [
    (50.0, None, None, "percent", 55.0, 5.0),    # within 10 points: 5 inside
    (50.0, None, None, "percent", 61.5, -1.5),   # 1.5 beyond published + 10
    (50.0, 40.0, 70.0, "percent", 65.0, 5.0),    # the CI, not ± 10: 5 below its upper bound
    (50.0, 40.0, 70.0, "percent", 38.0, -2.0),
    (10.5, 6.3, 29.2, "months", 34.25, -5.05),   # a median with a CI
    (10.5, None, None, "months", 12.0, None),    # a median without one is not judged
    (20.0, 15.0, None, "percent", 18.0, 3.0),    # a one-sided CI
])
def test_pass_margin_reference_values_and_its_sign_is_the_verdict(
        published: float, lo: float | None, hi: float | None, unit: str, value: float,
        margin: float | None) -> None:
    from cartsim.validate.run import pass_margin, passes_at

    got = pass_margin(published, lo, hi, unit, value)
    if margin is None:
        assert got is None and passes_at(published, lo, hi, unit, value) is None
    else:
        assert got == pytest.approx(margin)
        assert passes_at(published, lo, hi, unit, value) == (got >= 0)


def test_validation_csv_margin_agrees_with_the_verdict(run: Path) -> None:
    t = pd.read_csv(run / "validation.csv")
    c = t[t["status"] == "compared"]
    judged = c[c["passes"].notna()]
    assert len(judged) > 0
    assert ((judged["margin"] >= 0) == judged["passes"].astype(bool)).all()
    assert c.loc[c["passes"].isna(), "margin"].isna().all()


def test_summary_counts_the_rows_near_the_line(run: Path) -> None:
    t = pd.read_csv(run / "validation.csv")
    judged = t[(t["status"] == "compared") & t["passes"].notna()]
    ok = judged["passes"].astype(bool)
    o = json.loads((run / "summary.json").read_text())["overall"]
    assert o["failing_within_1_point"] == int(((judged["margin"] > -1) & ~ok).sum())
    assert o["passing_within_1_point"] == int(((judged["margin"] < 1) & ok).sum())
    assert o["failing_within_1_point"] <= o["judged"] - o["passing"]


def test_headline_rows_are_also_compared_over_those_both_runs_judged(run: Path,
                                                                      tmp_path: Path) -> None:
    """A run of fewer studies leaves the others' headline rows unjudged: its headline count is
    not comparable with a whole-library run's, so the diff also counts the headline rows
    judged in both (and prints them only when the two counts differ)."""
    summary = json.loads((run / "summary.json").read_text())
    judged = [r for r in summary["headline"]["rows"]
              if r["verdict"] in ("pass", "fail") and r.get("line") is not None]
    assert len(judged) >= 2
    gone = judged[0]
    after = tmp_path / "fewer"
    shutil.copytree(run, after)
    edited = json.loads((after / "summary.json").read_text())
    for r in edited["headline"]["rows"]:
        if r.get("line") == gone["line"]:
            r["verdict"] = "not run"
    edited["headline"]["judged"] -= 1
    edited["headline"]["passing"] -= int(gone["verdict"] == "pass")
    (after / "summary.json").write_text(json.dumps(edited))
    d = diff_runs(run, after)
    f = d.figures
    assert f.loc["headline_judged", "change"] == -1
    assert f.loc["shared_headline_judged", "before"] == len(judged) - 1
    assert f.loc["shared_headline_passing", "change"] == 0  # the rows judged by both agree
    assert f.loc["shared_headline_passing", "before"] == sum(
        r["verdict"] == "pass" for r in judged[1:])
    res = CliRunner().invoke(app, ["validate-diff", str(run), str(after)])
    assert res.exit_code == 0, res.output
    assert "headline judged by both" in res.output
    # against itself the shared counts equal the whole-run ones and are not printed
    same = CliRunner().invoke(app, ["validate-diff", str(run), str(run)])
    assert "headline judged by both" not in same.output
    assert diff_runs(run, run).figures.loc["shared_headline_judged", "before"] == len(judged)


def test_patients_the_simulator_stopped_are_counted_and_compared(run: Path,
                                                                  tmp_path: Path) -> None:
    """Session 47: a parameter set that breaks the model (haemoglobin past the plausibility
    check) stopped hundreds of patients, whose censored courses then passed two more rows;
    validate records the count per study and says so, and validate-diff shows it."""
    from cartsim.validate.run import stopped_warning

    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_patients"] == 0
    assert all(s["stopped_patients"] == 0 for s in summary["studies"].values())
    assert stopped_warning(summary) is None
    d = diff_runs(run, run)
    assert "stopped_patients" not in d.figures.index  # nothing stopped: no extra figure
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    key = next(iter(summary["studies"]))
    summary["studies"][key]["stopped_patients"] = 4
    summary["stopped_patients"] = 4
    (broken / "summary.json").write_text(json.dumps(summary))
    msg = stopped_warning(summary)
    assert msg is not None and "stopped 4 patients" in msg and f"{key} 4" in msg
    d = diff_runs(run, broken)
    assert list(d.figures.loc["stopped_patients"]) == [0.0, 4.0, 4.0]
    out = CliRunner().invoke(app, ["validate-diff", str(run), str(broken)])
    assert out.exit_code == 0, out.output
    assert "patients the simulator stopped" in out.output
