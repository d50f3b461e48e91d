"""One covariate table: Cohort, trial spec, model bounds, docs and these tests all come from it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from cartsim.covariates import BINARY, COVARIATES, NAMES, SIMULATED, markdown_table
from cartsim.errors import InvalidInputError
from cartsim.population import Cohort
from cartsim.trial.spec import Population, SpecError, validate_spec

ROOT = Path(__file__).resolve().parents[1]


def _spec(**population: object) -> dict:
    return {"name": "t", "follow_up_days": 120, "assessment_days": [28, 91],
            "population": {"disease": "b-all", "size": 4, **population},
            "arms": [{"name": "a", "product": "tisagenlecleucel"}]}


def test_model_patient_parameters_share_the_covariate_bounds() -> None:
    from cartsim.model.parameters import PARAMS

    shared = [c for c in COVARIATES if c.name in PARAMS.names]
    assert {c.name for c in shared} >= {"weight_kg", "age_y", "anc0", "plt0", "hb0",
                                        "cns_disease"}
    for c in shared:
        p = PARAMS[c.name]
        assert (p.lower, p.upper) == (c.lower, c.upper), c.name


def test_spec_population_and_cohort_fields_are_the_table() -> None:
    assert tuple(Population.model_fields) == ("disease", "size", "paired", *NAMES)
    cohort_fields = {f.name for f in dataclasses.fields(Cohort)}
    assert set(SIMULATED) <= cohort_fields and "prior_hsct" not in cohort_fields
    for c in COVARIATES:  # spec defaults are the table's
        d = Population.model_fields[c.name].default
        assert d == c.default or (d is None and math.isnan(c.default)), c.name


def test_docs_show_the_generated_table() -> None:
    assert markdown_table() in (ROOT / "docs" / "trial.md").read_text(encoding="utf-8")


def _cases() -> list[tuple[str, float]]:
    out = []
    for c in COVARIATES:
        out.append((c.name, c.upper * 1.5 + 1.0))
        out.append((c.name, c.lower - 1.0))
    return out


@pytest.mark.parametrize(("name", "value"), _cases())
def test_out_of_range_covariate_is_refused_naming_it(name: str, value: float) -> None:
    c = next(c for c in COVARIATES if c.name == name)
    disease = c.disease or "b-all"
    disease = disease if isinstance(disease, str) else disease[0]
    data = _spec(**{name: value})
    data["population"]["disease"] = disease
    with pytest.raises(SpecError) as ei:
        validate_spec(data)
    assert any(i.startswith(f"population.{name}:") and f"[{c.lower:g}, {c.upper:g}]" in i
               for i in ei.value.issues), ei.value.issues
    if c.simulated:
        kw = {"weight_kg": [30.0], "age_y": [10.0], name: [value]}
        with pytest.raises(InvalidInputError) as e2:
            Cohort(disease, **kw)
        assert e2.value.field == name


@pytest.mark.parametrize("name", BINARY)
def test_flags_take_numbers_not_booleans_or_words(name: str) -> None:
    for bad in (True, "no"):
        with pytest.raises(SpecError, match=f"population.{name}"):
            validate_spec(_spec(**{name: bad}))
    validate_spec(_spec(**{name: 1}))


def test_strict_types_refuse_silent_coercion() -> None:
    for path, bad in ((("population", "size"), True), (("population", "paired"), "no"),
                      (("seed",), "7"), (("follow_up_days",), 120.0)):
        data = _spec()
        target = data
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = bad
        with pytest.raises(SpecError, match=".".join(path)):
            validate_spec(data)


def test_five_different_errors_are_reported_in_one_pass() -> None:
    data = _spec()
    data["population"]["size"] = True                      # strict type
    data["arms"][0]["lymphodepletion"] = "no"               # strict type
    data["arms"].append({"name": "c", "dose": {"per_kg": 1e6},  # construct rule
                         "construct": {"name": "x", "targets": ["CD19"], "generation": 9}})
    data["arms"].append({"name": "a", "product": "tisagenlecleucel",   # duplicate name
                         "consolidation": {"hsct": {"day": 300}}})      # HSCT after follow-up
    with pytest.raises(SpecError) as ei:
        validate_spec(data)
    issues = ei.value.issues
    assert any(i.startswith("population.size:") for i in issues), issues
    assert any(i.startswith("arms[0].lymphodepletion:") for i in issues), issues
    assert any(i.startswith("arms[1].construct") for i in issues), issues
    assert any("arm names must be unique" in i for i in issues), issues
    assert any("arms[2].consolidation.hsct.day (300) is after follow_up_days (120)" in i
               for i in issues), issues
    assert len(issues) == 5, issues


def test_sampled_flags_are_binary_and_cohort_takes_the_draws() -> None:
    spec = validate_spec(_spec(tp53_altered={"kind": "uniform", "low": 0, "high": 1}))
    ids = np.arange(50)
    cov = spec.population.sample(3, ids)
    assert set(np.unique(cov["tp53_altered"])) <= {0.0, 1.0}
    cohort = Cohort.from_covariates("b-all", cov, patient_id=ids)
    np.testing.assert_array_equal(cohort.tp53_altered, cov["tp53_altered"])
    assert cohort.tumour_volume_ml is None
