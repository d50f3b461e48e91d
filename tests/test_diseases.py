"""MCL and FL as diseases (issue 11 item 4): presets load, specs validate, an MCL patient's
tumour responds and is graded by Lugano, unknown disease names are refused with the list."""

from __future__ import annotations

import typing
from pathlib import Path

import numpy as np
import pytest

from cartsim import diseases
from cartsim.cli import Disease as CliDisease
from cartsim.clinic.dosing import label_dose_range
from cartsim.covariates import BY_NAME as COV
from cartsim.errors import InvalidInputError, UnknownNameError
from cartsim.model.parameters import PARAMS, P
from cartsim.population import POPULATION_PARAMS, Cohort, build, doses
from cartsim.products import get_product
from cartsim.trial.outcomes import death_params, decide_deaths
from cartsim.trial.spec import Population, SpecError, load_spec, validate_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BREXU = get_product("brexucabtagene_autoleucel")
AXI = get_product("axicabtagene_ciloleucel")


def test_every_layer_knows_the_same_diseases() -> None:
    assert diseases.DISEASES == ("b-all", "lbcl", "mcl", "fl")
    literal = typing.get_args(Population.model_fields["disease"].annotation)
    assert literal == diseases.DISEASES
    assert tuple(d.value for d in CliDisease) == diseases.DISEASES
    assert diseases.LYMPHOMAS == ("lbcl", "mcl", "fl")
    for d in diseases.LYMPHOMAS:  # every lymphoma measures burden as tumour volume
        assert COV["tumour_volume_ml"].applies(d)
        assert diseases.get_disease(d).response == "lugano"
    assert not COV["tumour_volume_ml"].applies("b-all")
    assert COV["marrow_involved"].applies("mcl") and not COV["marrow_involved"].applies("lbcl")


def test_an_unknown_disease_is_refused_with_the_allowed_names() -> None:
    for call in (lambda: diseases.get_disease("hodgkin"),
                 lambda: Cohort("hodgkin", weight_kg=[70.0], age_y=[60.0])):
        with pytest.raises(UnknownNameError) as e:
            call()
        for name in ("b-all", "lbcl", "mcl", "fl"):
            assert name in str(e.value)
    data = {"arms": [{"name": "a", "product": "tisagenlecleucel"}],
            "population": {"disease": "hodgkin", "size": 2, "age_y": 60}}
    with pytest.raises(SpecError) as e:
        validate_spec(data)
    msg = str(e.value)
    assert "population.disease" in msg
    assert all(f"'{d}'" in msg for d in diseases.DISEASES), msg


def test_product_presets_for_mcl_and_fl() -> None:
    # brexucabtagene: MCL label 2e6/kg capped at 2e8; B-ALL keeps 1e6/kg capped at 1e8
    assert BREXU.dose_rule_for("mcl").dose(70.0) == pytest.approx(1.4e8)
    assert BREXU.dose_rule_for("mcl").dose(120.0) == pytest.approx(2e8)
    assert BREXU.dose_rule_for("b-all").dose(70.0) == pytest.approx(7e7)
    assert BREXU.dose_rule_for(None) is BREXU.dose_rule
    assert BREXU.construct.costim == "CD28" and BREXU.construct.targets == ("CD19",)
    assert AXI.dose_rule_for("fl").dose(70.0) == pytest.approx(1.4e8)
    c = Cohort("mcl", weight_kg=[70.0, 120.0], age_y=[60.0, 60.0])
    assert np.allclose(doses(c, BREXU), [1.4e8, 2e8])
    assert label_dose_range("yescarta", "fl", 70.0) == (1.4e8, 1.4e8)
    assert label_dose_range("tecartus", "mcl", 150.0) == (2e8, 2e8)


def test_disease_parameters_carry_units_and_provenance() -> None:
    for d in diseases.NEW_LYMPHOMAS:
        for stem in ("growth_factor", "cart_access", "marrow_share", "tumour_cap_cells"):
            s = POPULATION_PARAMS[f"{d}_{stem}"]
            assert s.unit and s.provenance and s.description
        assert POPULATION_PARAMS[f"cd20_{d}"].provenance
        q = death_params()
        assert q[f"{d}_death_hazard"] > 0 and q[f"{d}_death_ref_ml"] > 0


def test_mcl_and_fl_patients_are_built_on_the_nodal_site() -> None:
    kw = {"weight_kg": [70.0, 70.0], "age_y": [60.0, 60.0], "tumour_volume_ml": [50.0, 50.0]}
    q = POPULATION_PARAMS.defaults()
    r0 = PARAMS["r_tumour"].default
    mcl, _ = build(Cohort("mcl", marrow_involved=[0.0, 1.0], **kw), BREXU, 1,
                   variability=False)
    fl, y_fl = build(Cohort("fl", **kw), AXI, 1, variability=False)
    lbcl, y_lbcl = build(Cohort("lbcl", **kw), AXI, 1, variability=False,
                         overrides={"lbcl_shelter_frac": 0.0})  # LBCL's sheltered lesions off
    for p in (mcl, fl, lbcl):
        assert (p[:, P.disease_lbcl] == 1.0).all()  # the nodal site: SPD and Lugano
    assert mcl[0, P.r_tumour] == pytest.approx(r0 * q["mcl_growth_factor"])
    assert fl[0, P.r_tumour] == pytest.approx(r0 * q["fl_growth_factor"])
    assert fl[0, P.r_tumour] < mcl[0, P.r_tumour]  # FL is indolent
    # the marrow/blood share of an involved MCL is reached at the marrow access
    share = q["mcl_marrow_share"]
    assert mcl[0, P.cart_access] == pytest.approx(q["mcl_cart_access"])
    assert mcl[1, P.cart_access] == pytest.approx(
        (1 - share) * q["mcl_cart_access"] + share * PARAMS["cart_access"].default)
    assert np.array_equal(y_fl, y_lbcl)  # same volume → same initial tumour


def test_the_example_specs_validate() -> None:
    z2 = load_spec(EXAMPLES / "zuma2_mcl.toml")
    z5 = load_spec(EXAMPLES / "zuma5_fl.toml")
    assert z2.population.disease == "mcl" and z2.arms[0].product == "brexucabtagene_autoleucel"
    assert z5.population.disease == "fl" and z5.arms[0].product == "axicabtagene_ciloleucel"
    with pytest.raises(SpecError, match="marrow_involved"):
        validate_spec({**z2.canonical(), "population": {
            **z2.canonical()["population"], "marrow_involved": 2.0}})


def test_mcl_progression_death_uses_its_own_hazard() -> None:
    days = np.arange(0, 200)
    n = 400
    vol = np.full((n, days.size), 200.0)
    nan = np.full_like(vol, np.nan)
    ids = np.arange(n)
    args = (np.full(n, 60.0), nan, vol, np.full_like(vol, 80.0), np.full_like(vol, 98.0),
            np.full_like(vol, 3000.0), np.full_like(vol, 800.0))
    mcl = decide_deaths(days, ids, 3, "mcl", *args)
    fl = decide_deaths(days, ids, 3, "fl", *args)
    off = decide_deaths(days, ids, 3, "mcl", *args, params={"mcl_death_hazard": 0.0})
    died = [(d.cause == "progression").mean() for d in (mcl, fl, off)]
    q = death_params()
    expect = 1 - np.exp(-q["mcl_death_hazard"] * 2.0 * days.size)
    assert died[0] == pytest.approx(expect, abs=0.08)
    assert died[1] < died[0] / 5 and died[2] == 0.0
    # LBCL's own hazard does not move MCL
    lb = decide_deaths(days, ids, 3, "mcl", *args, params={"lbcl_death_hazard": 0.0})
    assert np.array_equal(lb.cause, mcl.cause)


def test_an_mcl_patient_responds_and_is_graded_by_lugano() -> None:
    from cartsim.trial.runner import simulate_chunk

    spec = validate_spec({
        "name": "mcl_one", "seed": 7, "follow_up_days": 28, "assessment_days": [28],
        "arms": [{"name": "brexu", "product": "brexucabtagene_autoleucel"}],
        "population": {"disease": "mcl", "size": 1, "age_y": 60.0, "weight_kg": 80.0,
                       "tumour_volume_ml": 50.0, "marrow_involved": 1.0},
    })
    pts, _ = simulate_chunk(spec, 0, np.array([0]))
    row = pts.iloc[0]
    assert row["response_d28"] in ("CR", "PR")  # the tumour shrank by ≥ 50 % in SPD
    assert row["best_response"] in ("CR", "PR") and row["responder"] == 1
    assert "mrd_d28" not in pts.columns  # Lugano, not the marrow criteria
    assert row["marrow_involved"] == 1.0 and row["dose_cells"] == pytest.approx(1.6e8)


def test_bad_marrow_involvement_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="marrow_involved"):
        Cohort("mcl", weight_kg=[70.0], age_y=[60.0], marrow_involved=[3.0])
