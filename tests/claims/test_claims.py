"""The claims runner: the claims file's schema, the statistics and verdicts on reference
values, the spec overrides, and one cheap claim end to end."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartsim.claims.measure import (
    DIRECTION_ONLY,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    Estimate,
    arm_estimate,
    effect_estimate,
    judge,
    wilson,
)
from cartsim.claims.run import arm_spec, merge, run_claims
from cartsim.claims.schema import (
    SEED_IDS,
    ClaimsError,
    default_claims_path,
    load_claims,
    missing_ids,
    validate_claims,
)

GOOD = {
    "id": "B7", "text": "NOXA", "ref": "SEEDS B7", "study": "zuma1", "follow_up_days": 182,
    "arms": [{"label": "low", "overrides": {"population": {"=noxa_low": 1.0}}},
             {"label": "high"}],
    "endpoint": {"kind": "km", "event": "pfs", "day": 180, "complement": True},
    "comparison": "a>b", "published": {"text": "70 vs 15", "a": 70, "b": 15},
}


def _claim(**kw: object):  # type: ignore[no-untyped-def]
    return validate_claims({"claim": [{**GOOD, **kw}]})[0]


# ------------------------------------------------------------------------------- schema
def test_shipped_claims_file_covers_every_seed_claim_and_builds_valid_specs() -> None:
    claims = load_claims()
    assert missing_ids(claims) == []
    assert {c.id for c in claims} == set(SEED_IDS)
    testable = [c for c in claims if c.untestable is None]
    assert len(testable) >= 40
    for c in testable:  # every arm is a valid one-arm trial spec (no simulation)
        specs = [arm_spec(c, i, 10, None) for i in range(len(c.arms))]
        assert all(len(s.arms) == 1 and s.population.size == 10 for s in specs)
        if len(specs) == 2 and not any(a.among for a in c.arms):
            assert specs[0].digest() != specs[1].digest(), c.key  # the factor changes the spec
            assert specs[0].seed == specs[1].seed


@pytest.mark.parametrize(("change", "words"), [
    ({"endpoint": {"kind": "km", "event": "pfs"}}, "claim B7: endpoint: kind 'km' needs day"),
    ({"arms": [{"label": "only"}]}, "claim B7: claim: comparison 'a>b' needs exactly 2 arms"),
    ({"id": "C3"}, "claim C3: claim: id must be a SEEDS.md claim id"),
    ({"comparison": "bigger"}, "claim B7: comparison:"),
    ({"endpoint": {"kind": "rate"}}, "claim B7: endpoint: kind 'rate' needs expr"),
    ({"published": {"a": 70, "a_lower": 80, "a_upper": 90}},
     "claim B7: published: a (70.0) must lie in [a_lower, a_upper]"),
    ({"untestable": "why", "study": "zuma1"},
     "claim B7: claim: an untestable claim has no study"),
    ({"colour": "red"}, "claim B7: colour:"),
])
def test_bad_claim_names_the_claim_and_the_field(change: dict, words: str) -> None:
    with pytest.raises(ClaimsError) as e:
        validate_claims({"claim": [{**GOOD, **change}]}, "test.toml")
    assert words in str(e.value), str(e.value)


def test_every_problem_is_reported_at_once_and_duplicates_are_caught() -> None:
    raw = {"claim": [GOOD, GOOD, {**GOOD, "part": "x", "endpoint": {"kind": "hr"}}],
           "extra": {}}
    with pytest.raises(ClaimsError) as e:
        validate_claims(raw, "test.toml")
    msg = str(e.value)
    assert "claim B7: id/part: duplicated (2 rows)" in msg
    assert "claim B7/x: endpoint: kind 'hr' needs event" in msg
    assert "unknown table(s) ['extra']" in msg


def test_claims_file_path_errors_are_specific(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[[claim]\n", encoding="utf-8")
    with pytest.raises(ClaimsError, match="TOML syntax"):
        load_claims(bad)
    with pytest.raises(Exception, match="claims"):
        load_claims(tmp_path / "missing.toml")


def test_unknown_study_names_the_claim() -> None:
    c = _claim(study="no_such_study")
    with pytest.raises(Exception, match="claim B7: study"):
        arm_spec(c, 0, 10, None)


def test_shipped_file_parses_as_plain_toml() -> None:
    raw = tomllib.loads(default_claims_path().read_text(encoding="utf-8"))
    assert set(raw) == {"claim"}


# ----------------------------------------------------------------------- overrides
def test_merge_deep_merges_replaces_and_removes() -> None:
    base = {"a": {"x": 1, "y": {"p": 1}}, "dose": {"per_kg": 1, "cap": 2}, "product": "p"}
    out = merge(base, {"a": {"y": {"q": 2}}, "=dose": {"per_kg": 3}, "-product": True})
    assert out == {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "dose": {"per_kg": 3}}
    assert base["dose"] == {"per_kg": 1, "cap": 2}  # the base is not modified


def test_arm_spec_applies_the_factor_and_keeps_the_pairing() -> None:
    c = _claim()
    a, b = arm_spec(c, 0, 30, 7), arm_spec(c, 1, 30, 7)
    assert a.population.noxa_low == 1.0 and b.population.noxa_low == 0.0
    assert a.seed == b.seed == 7 and a.follow_up_days == 182
    assert max(a.assessment_days) <= 182 and max(a.km_times) <= 182
    assert a.arms[0].product == b.arms[0].product == "axicabtagene_ciloleucel"


# ----------------------------------------------------------------------- statistics
def test_wilson_interval_matches_reference_values() -> None:
    # R: binom::binom.wilson(9, 12) → 0.4677 – 0.9111; (0, 75) → 0 – 0.0487
    e = wilson(9, 12)
    assert e.value == pytest.approx(75.0)
    assert e.lower == pytest.approx(46.77, abs=0.01) and e.upper == pytest.approx(91.11, abs=0.01)
    z = wilson(0, 75)
    assert z.lower == pytest.approx(0.0, abs=1e-9) and z.upper == pytest.approx(4.87, abs=0.01)
    assert not wilson(0, 0).defined


def test_rate_km_and_hr_estimates_on_a_constructed_table() -> None:
    n = 200
    rng = np.random.default_rng(1)
    t_a = rng.exponential(100.0, n)
    t_b = rng.exponential(200.0, n)
    df_a = pd.DataFrame({"responder": (np.arange(n) < 150).astype(int),
                         "pfs_days": np.minimum(t_a, 365.0), "pfs_event": (t_a < 365).astype(int)})
    df_b = pd.DataFrame({"responder": (np.arange(n) < 100).astype(int),
                         "pfs_days": np.minimum(t_b, 365.0), "pfs_event": (t_b < 365).astype(int)})
    rate = _claim(endpoint={"kind": "rate", "expr": "responder == 1"}).endpoint
    ea, eb = arm_estimate(df_a, rate), arm_estimate(df_b, rate)
    assert ea.value == pytest.approx(75.0) and eb.value == pytest.approx(50.0)
    d = effect_estimate(df_a, df_b, rate, ea, eb)
    assert d.value == pytest.approx(25.0) and d.lower > 15 and d.upper < 35
    km = _claim(endpoint={"kind": "km", "event": "pfs", "day": 100}).endpoint
    s = arm_estimate(df_a, km)
    assert s.lower < 100 * math.exp(-1) < s.upper  # true S(100) = e^-1 for mean 100 d
    hr = _claim(endpoint={"kind": "hr", "event": "pfs"}).endpoint
    h = effect_estimate(df_a, df_b, hr, Estimate(math.nan, math.nan, math.nan),
                        Estimate(math.nan, math.nan, math.nan))
    assert h.lower < 2.0 < h.upper and h.lower > 1.0  # true HR = 2


# ------------------------------------------------------------------------- verdicts
def E(v: float, lo: float, hi: float, n: int = 100) -> Estimate:
    return Estimate(v, lo, hi, n)


def test_verdict_logic_on_reference_values() -> None:
    b7 = _claim()  # a>b, published a = 70, b = 15 (percent, ± 10 points)
    assert judge(b7, [E(65, 58, 72), E(20, 14, 26)], E(45, 36, 54))[0] == REPRODUCED
    v, why = judge(b7, [E(40, 33, 47), E(20, 14, 26)], E(20, 11, 29))
    assert v == DIRECTION_ONLY and "a: 40 vs published 70" in why
    v, why = judge(b7, [E(50, 43, 57), E(51, 44, 58)], E(-1, -10, 8))
    assert v == NOT_REPRODUCED and "opposite" in why
    v, why = judge(b7, [E(55, 48, 62), E(51, 44, 58)], E(4, -5, 13))
    assert v == NOT_REPRODUCED and "includes none" in why
    assert judge(b7, [], None)[0] == NOT_REPRODUCED


def test_verdicts_for_hazard_ratios_values_and_no_effect_claims() -> None:
    hr = _claim(endpoint={"kind": "hr", "event": "efs"}, comparison="a<b", published={})
    assert judge(hr, [], E(0.6, 0.45, 0.8))[0] == REPRODUCED
    assert judge(hr, [], E(0.9, 0.7, 1.1))[0] == NOT_REPRODUCED
    assert judge(hr, [], E(1.5, 1.2, 1.9))[1] == "effect opposite to the claim"
    val = _claim(arms=[{"label": "x"}], comparison="value",
                 endpoint={"kind": "rate", "expr": "responder == 1"},
                 published={"value": 81, "lower": 71, "upper": 89})
    assert judge(val, [E(80, 74, 85)], None)[0] == REPRODUCED
    assert judge(val, [E(90.5, 88, 93)], None)[0] == REPRODUCED  # within 10 points of 81
    assert judge(val, [E(95, 92, 97)], None)[0] == NOT_REPRODUCED  # > 10 points, outside CI
    assert judge(val, [E(50, 43, 57)], None)[0] == NOT_REPRODUCED
    no_ci = _claim(arms=[{"label": "x"}], comparison="value",
                   endpoint={"kind": "rate", "expr": "responder == 1"},
                   published={"value": 50})
    assert judge(no_ci, [E(59, 52, 66)], None)[0] == REPRODUCED
    assert judge(no_ci, [E(61, 54, 68)], None)[0] == NOT_REPRODUCED
    sim = _claim(comparison="similar", endpoint={"kind": "rate", "expr": "responder == 1"},
                 published={})
    assert judge(sim, [E(80, 0, 0), E(75, 0, 0)], E(5, -3, 13))[0] == REPRODUCED
    assert judge(sim, [E(80, 0, 0), E(60, 0, 0)], E(20, 12, 28))[0] == NOT_REPRODUCED


# ------------------------------------------------------------------------ end to end
@pytest.mark.slow  # a fresh simulation process compiles the model (tens of seconds)
def test_one_cheap_claim_end_to_end(tmp_path: Path) -> None:
    """A one-arm claim on 8 virtual patients for 60 days, through the command line: a verdict,
    a figure with a CI and the three output files; an untestable claim keeps its reason."""
    from typer.testing import CliRunner

    from cartsim.cli import app

    text = default_claims_path().read_text(encoding="utf-8")
    cheap = """
[[claim]]
id = "A6"
part = "cheap"
text = "CNS leukaemia remits (cheap test)"
ref = "test"
study = "cns_tan2021"
follow_up_days = 60
arms = [{ label = "cns" }]
endpoint = { kind = "rate", expr = "cns_d30 == 'negative'" }
comparison = "value"
published = { text = "75 %", value = 75, lower = 46.8, upper = 91.1 }

[[claim]]
id = "B13"
text = "programme"
ref = "test"
untestable = "not an outcome"
"""
    assert "[[claim]]" in text
    f = tmp_path / "claims.toml"
    f.write_text(cheap, encoding="utf-8")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["claims", "--claims", str(f), "--patients", "8",
                                 "--out", str(out), "--doc", str(tmp_path / "doc.md")])
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(out / "claims.csv")
    assert list(rows["claim"]) == ["A6/cheap", "B13"]
    a6 = rows.iloc[0]
    assert a6["verdict"] in (REPRODUCED, NOT_REPRODUCED) and str(a6["n_per_arm"]) in ("8", "8.0")
    assert "%" in a6["simulated"] and "(" in a6["simulated"]
    assert rows.iloc[1]["verdict"] == NOT_TESTABLE and rows.iloc[1]["reason"] == "not an outcome"
    meta = json.loads((out / "claims.json").read_text(encoding="utf-8"),
                      parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert meta["summary"]["n_rows"] == 2 and meta["patients"] == 8
    md = (tmp_path / "doc.md").read_text(encoding="utf-8")
    assert "cartsim claims" in md and "| **A6/cheap**" in md
    # the CLI ran the arms in worker processes (the CPU count); in-process gives the same
    from cartsim.claims.schema import load_claims

    serial = run_claims(load_claims(f), patients=8, workers=1)
    assert [r.record()["simulated"] for r in serial] == [
        "" if pd.isna(v) else v for v in rows["simulated"]]
    # --only filters by id; an unknown id is a clear error
    r = CliRunner().invoke(app, ["claims", "--claims", str(f), "--only", "Z9",
                                 "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "--only" in r.output


def test_run_claims_checks_the_patient_count() -> None:
    with pytest.raises(Exception, match="--patients"):
        run_claims([], patients=0)


def test_outputs_from_results_without_simulating(tmp_path: Path) -> None:
    """claims.csv/json/md from judged results: every row, the verdict counts, strict JSON."""
    from cartsim.claims.report import counts, write_outputs
    from cartsim.claims.run import ClaimResult

    b7 = _claim()
    res_b7 = ClaimResult(b7, [E(65, 58, 72), E(20, 14, 26)], E(45, 36, 54), n=[200, 200])
    res_b7.verdict, res_b7.reason = judge(b7, res_b7.arms, res_b7.effect)
    hr = _claim(part="hr", endpoint={"kind": "hr", "event": "pfs"}, published={})
    res_hr = ClaimResult(hr, [], Estimate(math.nan, math.nan, math.nan), n=[200, 200])
    res_hr.verdict, res_hr.reason = judge(hr, res_hr.arms, res_hr.effect)
    skip = validate_claims({"claim": [{"id": "B13", "text": "t", "ref": "r",
                                       "untestable": "not an outcome"}]})[0]
    res_skip = ClaimResult(skip, reason="not an outcome")
    results = [res_b7, res_hr, res_skip]
    c = counts(results)
    assert c["rows"] == {REPRODUCED: 1, DIRECTION_ONLY: 0, NOT_REPRODUCED: 1, NOT_TESTABLE: 1}
    assert c["ids_all_testable_reproduced"] == []  # B7/hr is not reproduced
    paths = write_outputs(results, tmp_path, "cartsim claims --out X", {"patients": 200})
    rows = pd.read_csv(paths["csv"])
    assert list(rows["verdict"]) == [REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE]
    assert "+45.0 (+36.0 to +54.0) points" in rows.iloc[0]["simulated"]
    assert rows.iloc[1]["simulated"] == "HR undefined"
    doc = json.loads(paths["json"].read_text(encoding="utf-8"),
                     parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert doc["claims"][1]["effect"] is None
    md = paths["md"].read_text(encoding="utf-8")
    assert "`cartsim claims --out X`" in md and md.count("\n| **") == 3


def test_parameter_set_option_is_validated_and_put_in_force(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cartsim claims --parameter-set`` (as ``cartsim validate``): a bad set stops the command
    before any work; a good one is put in force through CARTSIM_PARAMETER_SET, which the
    worker processes inherit. (No simulation: ``--only`` with an unknown id ends the run.)"""
    from typer.testing import CliRunner

    from cartsim import parameter_sets as psets
    from cartsim.cli import app

    monkeypatch.setenv(psets.ENV_VAR, "none")  # restored after the test
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["claims", "--parameter-set", str(tmp_path / "missing.toml"),
                                 "--out", str(out)])
    assert r.exit_code == 2 and "missing.toml" in r.output, r.output
    assert not out.exists()
    path = psets.save(psets.ParameterSet("claims-test", "test set",
                                         {"rho_max": {"default": 2.0}}), tmp_path / "set.toml")
    r = CliRunner().invoke(app, ["claims", "--parameter-set", str(path), "--only", "Z9",
                                 "--out", str(out)])
    assert r.exit_code == 2 and "--only" in r.output, r.output
    assert psets.active() is not None and psets.active().name == "claims-test"
    r = CliRunner().invoke(app, ["claims", "--parameter-set", "none", "--only", "Z9",
                                 "--out", str(out)])
    assert r.exit_code == 2 and psets.active() is None


def test_examples_section_from_results_without_simulating(tmp_path: Path) -> None:
    """The example specs' section of claims.md/json: one row per arm, a landmark the follow-up
    does not reach shown as '–'."""
    from cartsim.claims.examples import ExampleArm, ExampleResult
    from cartsim.claims.report import write_outputs

    fl = ExampleResult("zuma5_fl", "examples/zuma5_fl.toml", "fl", 730, [ExampleArm(
        "axi_cel", 124, {"response": E(92.0, 86.0, 95.5), "PFS 12 mo": E(80.0, 72.0, 86.0)})])
    short = ExampleResult("short", "x.toml", "b-all", 90, [ExampleArm(
        "a", 10, {"response": E(80.0, 49.0, 94.3)})])
    paths = write_outputs([], tmp_path, "cartsim claims --out X", {"patients": 124},
                          examples=[fl, short])
    md = paths["md"].read_text(encoding="utf-8")
    assert "## The example specs" in md
    assert "| zuma5_fl (fl, 730 d) | axi_cel | 124 | 92.0% (86.0–95.5) |" in md
    assert "80.0% (72.0–86.0)" in md
    row = next(line for line in md.splitlines() if line.startswith("| short"))
    assert row.count("–") >= 6  # CR, EFS, OS, CRS, ICANS, relapse not measured
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert doc["examples"][0]["arms"][0]["response"] == 92.0


def test_example_spec_runs_at_the_claims_size(tmp_path: Path) -> None:
    """An example spec runs as it ships but at the requested size, every arm summarised with
    its own survival endpoint (PFS for follicular lymphoma); a bad directory is named."""
    from cartsim.claims.examples import example_paths, run_example
    from cartsim.errors import InvalidInputError

    root = Path(__file__).resolve().parents[2]
    res = run_example(root / "examples" / "zuma5_fl.toml", patients=3)
    assert res.disease == "fl" and res.follow_up_days == 730
    assert [a.n for a in res.arms] == [3]
    vals = res.arms[0].values
    assert {"response", "CR", "PFS 12 mo", "OS 12 mo", "CRS ≥ 3"} <= set(vals)
    assert 0.0 <= vals["response"].value <= 100.0
    with pytest.raises(InvalidInputError, match="--examples"):
        example_paths(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="--examples"):
        example_paths(tmp_path)  # exists, holds no spec


def test_the_cli_default_is_the_runners() -> None:
    """``cartsim claims`` without --patients runs the runner's default (validate's 1,000)."""
    import inspect

    from cartsim.claims.cli import claims_command
    from cartsim.claims.run import DEFAULT_PATIENTS

    default = inspect.signature(claims_command).parameters["patients"].default
    assert default == DEFAULT_PATIENTS == 1000
