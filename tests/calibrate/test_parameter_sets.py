"""Parameter sets: round trip, validation, selection, and their effect on the patients built."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cartsim import parameter_sets as psets
from cartsim.model.parameters import PARAMS, P
from cartsim.parameter_sets import ParameterSet, ParameterSetError
from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.provenance import parameter_set_status

SET = ParameterSet("calibrated-test", "calibrated to clinical_targets.csv, 2026-12-02, "
                   "objective 1.0, command: test",
                   {"rho_max": {"default": 2.5, "iiv_sd": 0.0},
                    "fit_rho": {"default": 0.0},  # no product-fitness loading on rho_max
                    "p_il6": {"iiv_sd": 1.2}, "lbcl_cart_access": {"default": 0.3}},
                   {"objective_deviance": 1.0, "calibration_studies": ["eliana", "zuma1"]})


def _cohort(n: int = 50) -> Cohort:
    return Cohort("b-all", weight_kg=np.full(n, 30.0), age_y=np.full(n, 10.0),
                  marrow_blasts_pct=np.full(n, 50.0))


def test_round_trip(tmp_path: Path) -> None:
    path = psets.save(SET, tmp_path / "set.toml")
    back = psets.load(path)
    assert (back.name, back.provenance, back.values) == (SET.name, SET.provenance, SET.values)
    assert back.meta == SET.meta
    assert back.digest() == SET.digest()
    assert psets.dumps(back) == psets.dumps(SET)


@pytest.mark.parametrize(("text", "message"), [
    ("[parameter_set]\nname = 'x'\n", "parameter_set.provenance: a non-empty string"),
    ("[parameter_set]\nname='x'\nprovenance='p'\n[parameters.nope]\ndefault = 1.0\n",
     "parameters.nope.default: unknown parameter 'nope'"),
    ("[parameter_set]\nname='x'\nprovenance='p'\n[parameters.rho_max]\ndefault = 99.0\n",
     "parameters.rho_max.default: 99 outside [0, 5]"),
    ("[parameter_set]\nname='x'\nprovenance='p'\n[parameters.rho_max]\niiv_sd = -1.0\n",
     "parameters.rho_max.iiv_sd: -1 outside [0, 3]"),
    ("[parameter_set]\nname='x'\nprovenance='p'\n[parameters.rho_max]\nmedian = 1.0\n",
     "parameters.rho_max.median: unknown field 'median'"),
    ("[parameter_set]\nname='x'\nprovenance='p'\nformat = 7\n", "parameter_set.format: 7"),
])
def test_a_bad_set_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ParameterSetError) as e:
        psets.load(p)
    assert message in str(e.value)


def test_a_set_in_force_changes_the_population_median_and_spread() -> None:
    prod = get_product("tisagenlecleucel")
    mult = prod.construct.multipliers().get("rho_max", 1.0)
    with psets.use(None):
        p0, _ = build(_cohort(), prod, seed=3)
    with psets.use(SET):
        p1, _ = build(_cohort(), prod, seed=3)
    assert np.std(np.log(p0[:, P.rho_max])) > 0.1                     # model IIV 0.25
    assert np.allclose(p1[:, P.rho_max], 2.5 * mult)                   # median 2.5, sd 0
    z0 = np.log(p0[:, P.p_il6] / PARAMS["p_il6"].default)
    z1 = np.log(p1[:, P.p_il6] / PARAMS["p_il6"].default)
    assert np.allclose(z1, z0 * 1.2 / PARAMS["p_il6"].iiv_sd)          # same draws, wider
    untouched = [i for i in range(p0.shape[1]) if i not in (P.rho_max, P.p_il6, P.fit_rho)]
    assert np.array_equal(p0[:, untouched], p1[:, untouched])


def test_a_set_may_replace_a_lab_constant_and_it_reaches_the_readouts(tmp_path: Path) -> None:
    """Lab constants (model/labs.py LAB_PARAMS) are population constants: a set may replace
    their default, not give them an IIV sd, and the simulation's lab course uses the value."""
    from cartsim.simulation import simulate

    assert not psets.per_patient("K_fib_my") and psets.per_patient("rho_max")
    bad = tmp_path / "bad.toml"
    bad.write_text("[parameter_set]\nname='x'\nprovenance='p'\n[parameters.K_fib_my]\n"
                   "iiv_sd = 0.5\n", encoding="utf-8")
    with pytest.raises(ParameterSetError):
        psets.load(bad)
    # no fibrinogen consumption at any activation (half-maximal activations far above any
    # reached) against the model's own constants, in a high-burden child with CRS
    none = ParameterSet("no-consumption", "test", {"K_fib_en": {"default": 100.0},
                                                   "K_fib_my": {"default": 100.0}}, {})
    co = Cohort("b-all", weight_kg=[20.0], age_y=[6.0], marrow_blasts_pct=[80.0])
    kw = {"days": 14, "seed": 1, "variability": False}
    with psets.use(None):
        own = simulate(co, get_product("tisagenlecleucel"), **kw).trajectories  # type: ignore[arg-type]
    with psets.use(none):
        t = simulate(co, get_product("tisagenlecleucel"), **kw).trajectories  # type: ignore[arg-type]
    assert t["fibrinogen_mg_dl"].min() > own["fibrinogen_mg_dl"].min()
    assert np.array_equal(t["tumour_cells"], own["tumour_cells"])  # labs never feed back


def test_selection_by_environment_and_provenance_status(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = psets.save(SET, tmp_path / "set.toml")
    monkeypatch.setenv(psets.ENV_VAR, "none")
    assert psets.active() is None
    assert parameter_set_status().startswith("not calibrated")
    monkeypatch.setenv(psets.ENV_VAR, str(path))
    assert psets.active() is not None and psets.active().name == "calibrated-test"
    status = parameter_set_status()
    assert status.startswith("4 of ") and "parameter set 'calibrated-test'" in status
    assert psets.describe()["digest"] == SET.digest()
    monkeypatch.setenv(psets.ENV_VAR, str(tmp_path / "missing.toml"))
    with pytest.raises(ParameterSetError, match="no such file"):
        psets.active()


def test_install_makes_the_set_the_default(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psets, "shipped_dir", lambda: tmp_path)
    monkeypatch.delenv(psets.ENV_VAR, raising=False)
    assert psets.active() is None  # no index.toml: the model's values
    psets.install(SET, "cal-test")
    assert (tmp_path / "cal-test.toml").is_file()
    assert psets.installed_default() == "cal-test"
    assert psets.active() is not None and psets.active().values == SET.values
    assert psets.available() == ["cal-test"]
    with pytest.raises(ParameterSetError, match="--install"):
        psets.install(SET, "../x")


def test_a_set_may_replace_the_cd28_costimulation_multipliers() -> None:
    """The CD28 multipliers (cartsim.products.CD28_PARAMS) are patient-builder constants: a set
    replaces them for CD28 products only, and the model's own values are the table's."""
    from cartsim.products import COSTIM_EFFECTS

    assert COSTIM_EFFECTS["CD28"] == {"rho_max": 1.1, "d_E": 1.0, "k_em": 0.5, "d_M": 4.0,
                                      "k_ex": 1.5,
                                      "K_my_car": 0.02, "K_antigen": 0.5,
                                      "mem_age_per_decade": 0.0, "ex_overload": 5.0,
                                      "k_kill": 1.0}
    assert not psets.per_patient("cd28_k_ex_x")
    cd28 = ParameterSet("cd28", "test", {"cd28_rho_max_x": {"default": 2.2},
                                         "cd28_k_ex_x": {"default": 3.0},
                                         "cd28_d_E_x": {"default": 2.0},
                                         "cd28_k_kill_x": {"default": 1.5}})
    axi, tisa = get_product("axicabtagene_ciloleucel"), get_product("tisagenlecleucel")
    with psets.use(None):
        a0, _ = build(_cohort(), axi, seed=3)
        t0, _ = build(_cohort(), tisa, seed=3)
    with psets.use(cd28):
        a1, _ = build(_cohort(), axi, seed=3)
        t1, _ = build(_cohort(), tisa, seed=3)
    assert np.allclose(a1[:, P.rho_max], 2.0 * a0[:, P.rho_max])
    assert np.allclose(a1[:, P.k_ex], 2.0 * a0[:, P.k_ex])
    assert np.allclose(a1[:, P.d_E], 2.0 * a0[:, P.d_E])  # effector death (session 48)
    assert np.allclose(a1[:, P.k_kill], 1.5 * a0[:, P.k_kill])  # kills per effector (49)
    assert np.array_equal(a1[:, P.d_M], a0[:, P.d_M])
    assert np.array_equal(t0, t1)  # 4-1BB product untouched


def test_a_set_may_replace_a_death_model_constant_and_a_spec_still_overrides_it() -> None:
    """The trial's death model (cartsim.trial.outcomes.DEATH_PARAMS) takes its defaults from
    the set in force (population constants: default only); a spec's [death] table wins."""
    from cartsim.trial.outcomes import death_params

    assert not psets.per_patient("ball_death_hazard")
    ps = ParameterSet("death", "test", {"ball_death_hazard": {"default": 0.03},
                                        "lethal_burden_days": {"default": 20.0}})
    with psets.use(None):
        own = death_params()
    with psets.use(ps):
        q = death_params()
        spec = death_params({"lethal_burden_days": 40.0})
    assert q["ball_death_hazard"] == 0.03 and own["ball_death_hazard"] != 0.03
    assert q["lethal_burden_days"] == 20.0 and spec["lethal_burden_days"] == 40.0
    assert spec["ball_death_hazard"] == 0.03  # the spec overrides only what it names
    with pytest.raises(ParameterSetError, match="outside"):
        psets.check_value("ball_death_hazard", "default", 2.0, "x")


def test_a_set_may_replace_a_tumour_trait_weight_and_overrides_still_win(
        tmp_path: Path) -> None:
    """The tumour-trait covariates' weights (cartsim.model.traits.PATIENT_TRAIT_PARAMS) are
    population constants a set may replace: a NOXA-low tumour keeps the set's perforin-route
    sensitivity, a NOXA-normal one is untouched, and a build override beats the set."""
    from cartsim.model.clones import C
    from cartsim.model.traits import PATIENT_TRAIT_PARAMS
    from cartsim.population import clone_param_index

    assert not psets.per_patient("noxa_low_pfn")
    bad = tmp_path / "bad.toml"
    bad.write_text("[parameter_set]\nname='x'\nprovenance='p'\n[parameters.noxa_low_pfn]\n"
                   "iiv_sd = 0.5\n", encoding="utf-8")
    with pytest.raises(ParameterSetError, match="default only"):
        psets.load(bad)
    with pytest.raises(ParameterSetError, match="outside"):
        psets.check_value("noxa_low_pfn", "default", 1.5, "x")
    n = 6
    co = Cohort("lbcl", weight_kg=np.full(n, 70.0), age_y=np.full(n, 60.0),
                tumour_volume_ml=np.full(n, 50.0), noxa_low=np.array([1.0, 0, 1, 0, 1, 0]))
    pfn = clone_param_index.py_func(0, 0) + C.pfn_sensitivity
    ps = ParameterSet("noxa", "test", {"noxa_low_pfn": {"default": 0.4}})
    prod = get_product("axicabtagene_ciloleucel")
    with psets.use(None):
        own, _ = build(co, prod, seed=5)
    with psets.use(ps):
        new, _ = build(co, prod, seed=5)
        over, _ = build(co, prod, seed=5, overrides={"noxa_low_pfn": 0.7})
    low = co.noxa_low == 1.0
    assert np.allclose(own[low, pfn], PATIENT_TRAIT_PARAMS["noxa_low_pfn"].default)
    assert np.allclose(new[low, pfn], 0.4) and np.allclose(over[low, pfn], 0.7)
    assert np.array_equal(new[~low], own[~low])       # NOXA-normal tumours untouched
    cols = [i for i in range(own.shape[1]) if (own[:, i] != new[:, i]).any()]
    assert all((i - pfn) % len(C) == 0 for i in cols)  # only the clones' pfn field moved


def test_every_shipped_set_loads_and_no_probe_is_in_force() -> None:
    """Shipped sets (cartsim/data/parameter_sets) parse against the model's parameter table,
    and a probe set (name ``probe-…``; sessions 43-44 shipped two, whose values became the
    default in session 44) is never the installed default."""
    names = psets.available()
    for name in names:
        ps = psets.load(name)
        assert ps.name == name and ps.values
        known = psets.known_specs()
        assert set(ps.values) <= set(known), name
    assert not psets.installed_default().startswith("probe-")
