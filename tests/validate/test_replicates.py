"""``cartsim validate --replicates K``: the library on K root seeds, each an ordinary validation
directory, and the spread of the pass counts and the deviance across them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cartsim.cli import app
from cartsim.errors import InvalidInputError
from cartsim.validate.replicates import (
    REPLICATE_STRIDE,
    aggregate,
    replicate_seeds,
    row_table,
    seed_dependent,
)

DATA = Path(__file__).parent / "data"


def test_replicate_seeds() -> None:
    assert replicate_seeds(None, 3) == [None, REPLICATE_STRIDE, 2 * REPLICATE_STRIDE]
    assert replicate_seeds(7, 2) == [7, 7 + REPLICATE_STRIDE]
    assert replicate_seeds(5, 1) == [5]
    for bad in (0, 21):
        with pytest.raises(InvalidInputError, match="--replicates"):
            replicate_seeds(None, bad)


def test_aggregate_and_row_table_reference_values() -> None:
    reps = [{"passing": 10.0, "judged": 20.0, "within_10_points": 9.0, "inside_ci": 1.0,
             "headline_passing": 2.0, "headline_judged": 3.0, "deviance": 100.0},
            {"passing": 14.0, "judged": 20.0, "within_10_points": 13.0, "inside_ci": 1.0,
             "headline_passing": 3.0, "headline_judged": 3.0, "deviance": 80.0}]
    a = aggregate(reps)
    assert a["passing"] == {"mean": 12.0, "sd": pytest.approx(2.8284271), "min": 10.0,
                            "max": 14.0}
    assert a["deviance"]["mean"] == 90.0 and a["judged"]["sd"] == 0.0
    base = {"study": ["S", "S", "S"], "endpoint": ["CR", "OS", "x"], "timepoint": ["", "", ""],
            "subgroup": ["", "", ""], "published": [50.0, 60.0, 1.0], "line": [2, 3, 4],
            "status": ["compared", "compared", "unmapped"]}
    t0 = pd.DataFrame({**base, "simulated": [40.0, 58.0, None],
                       "passes": pd.array([True, True, None], dtype="boolean")})
    t1 = pd.DataFrame({**base, "simulated": [30.0, 62.0, None],
                       "passes": pd.array([False, None, None], dtype="boolean")})
    rows = row_table([t0, t1]).set_index("line")
    assert list(rows.index) == [2, 3]  # compared rows only
    assert rows.loc[2, "simulated_mean"] == 35.0 and rows.loc[2, "pass_share"] == 0.5
    assert rows.loc[3, "simulated_max"] == 62.0
    assert rows.loc[3, "pass_share"] == 1.0  # of the replicates that judged it
    # only row 2 passes on one seed and fails on the other
    mixed = seed_dependent(rows.reset_index())
    assert [m["line"] for m in mixed] == [2]
    assert mixed[0]["simulated"] == [40.0, 30.0] and mixed[0]["pass_share"] == 0.5


def test_cli_replicates_write_each_run_and_the_spread(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    args = ["validate", "--out", str(out), "--specs", str(DATA), "--studies", "eliana",
            "--patients", "6", "--seed", "3", "--no-report"]
    res = CliRunner().invoke(app, [*args, "--replicates", "2"])
    assert res.exit_code == 0, res.output
    assert "validation on 2 root seeds" in res.output
    for f in ("rep0/validation.csv", "rep1/validation.csv", "replicates.csv",
              "replicates.json"):
        assert (out / f).is_file(), f
    agg = json.loads((out / "replicates.json").read_text())
    assert [r["seed"] for r in agg["per_replicate"]] == [3, 3 + REPLICATE_STRIDE]
    assert [r["stopped_patients"] for r in agg["per_replicate"]] == [0, 0]
    assert agg["aggregate"]["passing"]["min"] <= agg["aggregate"]["passing"]["max"]
    # the JSON's seed-dependent rows are the CSV's rows with a pass share strictly in (0, 1)
    reps = pd.read_csv(out / "replicates.csv")
    mixed = reps.loc[(reps["pass_share"] > 0) & (reps["pass_share"] < 1), "line"]
    assert {m["line"] for m in agg["seed_dependent"]} == set(mixed)
    # replicate 0 is the plain run on the same seed, byte for byte
    plain = tmp_path / "plain"
    res = CliRunner().invoke(app, ["validate", "--out", str(plain), *args[3:]])
    assert res.exit_code == 0, res.output
    assert ((plain / "validation.csv").read_bytes()
            == (out / "rep0" / "validation.csv").read_bytes())
    # a second seed is a different sample (ELIANA's rows move)
    a = pd.read_csv(out / "rep0" / "validation.csv")
    b = pd.read_csv(out / "rep1" / "validation.csv")
    assert not a["simulated"].equals(b["simulated"])


def test_cli_rejects_a_bad_replicate_count(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["validate", "--out", str(tmp_path / "x"), "--specs",
                                   str(DATA), "--studies", "eliana", "--patients", "6",
                                   "--replicates", "0"])
    assert res.exit_code == 2
    assert "--replicates" in res.output and not (tmp_path / "x").exists()


def test_headline_shares_count_each_rows_verdicts() -> None:
    from cartsim.validate.replicates import headline_shares

    def summ(v1: str, v2: str, x: float) -> dict:  # type: ignore[type-arg]
        return {"headline": {"rows": [
            {"label": "A CR", "line": 5, "published": 50.0, "simulated": x, "verdict": v1},
            {"label": "A OS", "line": 6, "published": 60.0, "simulated": None, "verdict": v2}]}}

    rows = {r["line"]: r for r in headline_shares([summ("pass", "fail", 48.0),
                                                   summ("fail", "no value", 30.0),
                                                   summ("pass", "fail", 52.0)])}
    assert rows[5]["simulated"] == [48.0, 30.0, 52.0]
    assert (rows[5]["passes"], rows[5]["judged"]) == (2, 3)
    assert rows[5]["pass_share"] == pytest.approx(2 / 3)
    assert (rows[6]["passes"], rows[6]["judged"], rows[6]["pass_share"]) == (0, 2, 0.0)
