"""Trial spec validation: every bad field is reported at once, before any simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cartsim.trial.spec import (
    Distribution,
    Population,
    SpecError,
    load_spec,
    validate_spec,
    weight_from_age,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _good() -> dict:
    return {
        "name": "t",
        "seed": 1,
        "follow_up_days": 120,
        "assessment_days": [28, 91],
        "population": {"disease": "b-all", "size": 10,
                       "marrow_blasts_pct": {"kind": "uniform", "low": 5, "high": 95}},
        "arms": [{"name": "a", "product": "tisagenlecleucel"},
                 {"name": "b", "product": "kymriah", "protocol": "none"}],
    }


def test_valid_spec_round_trips_through_its_canonical_form() -> None:
    s = validate_spec(_good())
    assert validate_spec(s.canonical()) == s
    assert s.digest() == validate_spec(s.canonical()).digest()
    assert s.with_overrides(size=3).population.size == 3
    assert s.with_overrides(size=3).digest() != s.digest()


def test_every_bad_field_is_named_in_one_error() -> None:
    bad = _good()
    bad["population"]["size"] = -5
    bad["population"]["marrow_blasts_pct"] = 150
    bad["population"]["tp53_altered"] = {"kind": "bernoulli", "p": 1.5}
    bad["arms"][1]["product"] = "foo"
    bad["endpoints"] = ["efs", "happiness"]
    with pytest.raises(SpecError) as ei:
        validate_spec(bad)
    issues = ei.value.issues
    text = str(ei.value)
    assert any(i.startswith("population.size:") and "-5" in i for i in issues), issues
    assert any(i.startswith("arms[1].product:") and "'foo'" in i and "tisagenlecleucel" in i
               for i in issues), issues
    assert any(i.startswith("population.marrow_blasts_pct:") and "[0, 100]" in i
               for i in issues), issues
    assert any(i.startswith("population.tp53_altered") and "p must be in [0, 1]" in i
               for i in issues), issues
    assert any(i.startswith("endpoints:") and "'happiness'" in i for i in issues), issues
    assert len(issues) == 5, issues
    assert "5 problems" in text


def test_unbounded_distribution_for_a_bounded_covariate_is_refused() -> None:
    bad = _good()
    bad["population"]["age_y"] = {"kind": "normal", "mean": 11, "sd": 5}
    with pytest.raises(SpecError, match=r"population.age_y: support must lie in \[0, 100\]"):
        validate_spec(bad)


def test_cross_field_rules() -> None:
    bad = _good()
    bad["assessment_days"] = [91, 28, 400]
    bad["arms"][1]["name"] = "a"
    with pytest.raises(SpecError) as ei:
        validate_spec(bad)
    t = str(ei.value)
    assert "strictly increasing" in t and "arm names must be unique" in t
    assert "follow_up_days = 120" in t


def test_unknown_fields_protocols_and_inline_constructs() -> None:
    bad = _good()
    bad["arms"][0]["colour"] = "blue"
    bad["arms"][1]["protocol"] = "no_such_protocol"
    bad["arms"].append({"name": "c", "construct": {"name": "x", "targets": ["CD99"]},
                        "dose": {"per_kg": 1e6}})
    with pytest.raises(SpecError) as ei:
        validate_spec(bad)
    issues = ei.value.issues
    assert any(i.startswith("arms[0].colour: unknown field") for i in issues), issues
    assert any(i.startswith("arms[1].protocol:") and "il6_guided" in i for i in issues), issues
    assert any(i.startswith("arms[2].construct.targets:") and "CD99" in i
               for i in issues), issues


@pytest.mark.parametrize("kind", ["normal", "lognormal", "uniform", "truncnormal",
                                  "bernoulli", "beta", "choice"])
def test_covariate_draws_are_keyed_per_patient(kind: str) -> None:
    d = Distribution.model_validate({
        "normal": {"kind": "normal", "mean": 5, "sd": 2},
        "lognormal": {"kind": "lognormal", "median": 5, "sd_log": 0.5},
        "uniform": {"kind": "uniform", "low": 1, "high": 9},
        "truncnormal": {"kind": "truncnormal", "mean": 5, "sd": 4, "lower": 3, "upper": 6},
        "bernoulli": {"kind": "bernoulli", "p": 0.3},
        "beta": {"kind": "beta", "a": 2, "b": 5, "low": 10, "high": 20},
        "choice": {"kind": "choice", "values": [3e5, 1e6, 3e6], "weights": [6, 10, 5]},
    }[kind])
    ids = np.arange(2000)
    whole = d.sample(7, ids, "x")
    parts = np.concatenate([d.sample(7, ids[:777], "x"), d.sample(7, ids[777:], "x")])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole, d.sample(8, ids, "x"))
    lo, hi = d.support()
    assert whole.min() >= lo and whole.max() <= hi
    if kind == "truncnormal":
        assert whole.min() >= 3 and whole.max() <= 6 and whole.std() > 0.5
    if kind == "bernoulli":
        assert abs(whole.mean() - 0.3) < 0.04
    if kind == "beta":
        assert abs(whole.mean() - (10 + 10 * 2 / 7)) < 0.2
    if kind == "choice":
        assert set(np.unique(whole)) == {3e5, 1e6, 3e6}
        for v, w in ((3e5, 6), (1e6, 10), (3e6, 5)):
            assert abs((whole == v).mean() - w / 21) < 0.04


@pytest.mark.parametrize("bad", [
    {"kind": "choice", "values": [1, 2], "weights": [1]},
    {"kind": "choice", "values": [], "weights": []},
    {"kind": "choice", "values": [1, 2], "weights": [1, -1]},
    {"kind": "choice", "values": [1, 2], "weights": [0, 0]},
    {"kind": "choice", "values": [1]},
    {"kind": "fixed", "value": 1, "values": [1, 2], "weights": [1, 1]},
])
def test_choice_distribution_errors_name_the_problem(bad: dict) -> None:
    with pytest.raises(ValidationError, match="choice|values|weights"):
        Distribution.model_validate(bad)


def test_choice_zero_weight_value_is_never_drawn() -> None:
    d = Distribution.model_validate({"kind": "choice", "values": [1, 2, 3],
                                     "weights": [1, 0, 1]})
    x = d.sample(11, np.arange(5000), "dose")
    assert set(np.unique(x)) == {1.0, 3.0}
    assert d.support() == (1.0, 3.0)


def test_population_sampling_derives_weight_and_binarises_flags() -> None:
    pop = Population(disease="b-all", size=500, age_y={"kind": "uniform", "low": 3,
                                                       "high": 23},
                     prior_hsct={"kind": "bernoulli", "p": 0.61})
    cov = pop.sample(3, np.arange(500))
    assert set(np.unique(cov["prior_hsct"])) == {0.0, 1.0}
    assert abs(cov["prior_hsct"].mean() - 0.61) < 0.07
    ratio = cov["weight_kg"] / weight_from_age(cov["age_y"])
    assert 0.5 < ratio.min() and ratio.max() < 2.0
    assert abs(np.log(ratio).std() - 0.15) < 0.02
    assert weight_from_age(np.array([5.0, 10.0, 30.0])).tolist() == [18.0, 37.0, 70.0]


def test_shipped_examples_are_valid() -> None:
    files = sorted(EXAMPLES.glob("*.toml"))
    assert {f.stem for f in files} >= {"eliana", "nci_cd19_28z", "zuma4", "zuma1",
                                       "tandem_cd19_cd20"}
    for f in files:
        s = load_spec(f)
        assert s.population.size > 0 and s.arms


def test_cli_reports_spec_errors_before_simulating(tmp_path: Path) -> None:
    from cartsim.cli import app

    spec = tmp_path / "bad.toml"
    spec.write_text('[population]\ndisease = "b-all"\nsize = -5\n'
                    '[[arms]]\nname = "a"\nproduct = "foo"\n', encoding="utf-8")
    res = CliRunner().invoke(app, ["trial", "run", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "population.size: must be > 0" in out and "arms[0].product: unknown product" in out
    assert not (tmp_path / "o").exists()


def test_protocol_file_is_resolved_relative_to_the_spec_file(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """A spec names a protocol TOML next to itself; it loads from any working directory."""
    study = tmp_path / "study"
    (study / "care").mkdir(parents=True)
    (study / "care" / "era.toml").write_text(
        'name = "era"\nbase = "default"\n[tocilizumab]\ntrigger_crs_grade = 3\n')
    spec = study / "trial.toml"
    spec.write_text(
        'name = "t"\nseed = 1\nfollow_up_days = 60\nassessment_days = [28]\n'
        '[population]\ndisease = "b-all"\nsize = 2\n'
        'marrow_blasts_pct = { kind = "fixed", value = 50 }\n'
        '[[arms]]\nname = "a"\nproduct = "tisagenlecleucel"\nprotocol = "care/era.toml"\n'
        '[[arms]]\nname = "b"\nproduct = "tisagenlecleucel"\nprotocol = "penn_ctl019"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_spec(spec)
    from cartsim.clinic import load_protocol

    resolved = s.arms[0].protocol
    assert Path(resolved).is_absolute() and Path(resolved) == (study / "care" / "era.toml"
                                                               ).resolve()
    assert load_protocol(resolved).config.tocilizumab.trigger_crs_grade == 3
    assert s.arms[1].protocol == "penn_ctl019"
    # the validated (absolute) form round-trips
    assert validate_spec(s.canonical()) == s


def test_unknown_protocol_name_or_missing_file_is_a_clear_spec_error(tmp_path: Path) -> None:
    bad = _good()
    bad["arms"][0]["protocol"] = "penn_ctl0190"
    bad["arms"][1]["protocol"] = "care/missing.toml"
    with pytest.raises(SpecError) as ei:
        validate_spec(bad, base_dir=tmp_path)
    issues = ei.value.issues
    assert any(i.startswith("arms[0].protocol: unknown protocol 'penn_ctl0190'")
               and "penn_ctl019" in i for i in issues), issues
    assert any(i.startswith("arms[1].protocol: protocol file 'care/missing.toml' not found")
               and str(tmp_path) in i for i in issues), issues
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "b"\nbase = "default"\n[tocilizumab]\ntrigger_crs_grade = 9\n')
    bad = _good()
    bad["arms"][0]["protocol"] = "broken.toml"
    with pytest.raises(SpecError) as ei:
        validate_spec(bad, base_dir=tmp_path)
    assert any(i.startswith("arms[0].protocol: cannot load protocol 'broken.toml'")
               and "trigger_crs_grade" in i for i in ei.value.issues), ei.value.issues


def test_study_library_specs_use_their_era_protocol() -> None:
    studies = Path(__file__).resolve().parents[2] / "src" / "cartsim" / "data" / "studies"
    for name, want in (("eliana", "penn_ctl019"), ("ensign", "penn_ctl019"),
                       ("eliana_ensign", "penn_ctl019"), ("chop_ctl019_pilot", "penn_ctl019"),
                       ("zuma1", "zuma1_2015"), ("zuma4", "zuma1_2015_paediatric"),
                       ("nci_cd19_28z", "lee2014_nci")):
        assert {a.protocol for a in load_spec(studies / f"{name}.toml").arms} == {want}, name
