"""The builder's and simulator's constants are ParameterSpecs that the code actually uses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from cartsim.lymphodepletion import LYMPHODEPLETION_PARAMS
from cartsim.model.mechanism import SOLVER_ATOL
from cartsim.model.parameters import P
from cartsim.population import POPULATION_PARAMS, Cohort, build
from cartsim.products import get_product
from cartsim.simulation import LD_DAYS, LD_FIRST_DAY, SIMULATION_PARAMS, default_atol


def test_every_constant_has_unit_range_and_provenance() -> None:
    for table in (POPULATION_PARAMS, SIMULATION_PARAMS, LYMPHODEPLETION_PARAMS):
        for s in table:
            assert s.provenance.strip() and s.unit.strip() and s.contains(s.default), s.name


def test_patient_builder_uses_its_specs() -> None:
    q = POPULATION_PARAMS.defaults()
    prod = get_product("axi-cel")
    child = Cohort("b-all", weight_kg=[20.0], age_y=[6.0], marrow_blasts_pct=[100.0])
    adult = Cohort("lbcl", weight_kg=[80.0], age_y=[60.0], tumour_volume_ml=[10.0])
    pc, yc = build(child, prod, seed=0, variability=False)
    pa, ya = build(adult, prod, seed=0, variability=False)
    assert pc[0, P.map0] == q["map0_child_base_mmhg"] + 6.0 * q["map0_child_per_year_mmhg"]
    assert pa[0, P.map0] == q["map0_adult_mmhg"]
    assert pa[0, P.cart_access] == q["lbcl_cart_access"]
    # the LBCL capacity is quoted for the 70-kg reference adult and scales with body size
    assert pa[0, P.tumour_cap_cells] == q["lbcl_tumour_cap_cells"] * pa[0, P.body_scale]
    assert pa[0, P.body_scale] == 80.0 / 70.0
    assert pc[0, P.blood_ul] == q["blood_ml_per_kg"] * 1e3 * 20.0
    frac = q["max_blast_fraction"]  # 100 % blasts is capped, so the tumour stays finite
    assert np.isfinite(yc).all() and frac < 1.0


def test_simulator_schedule_and_tolerances_come_from_specs() -> None:
    q = SIMULATION_PARAMS.defaults()
    assert LD_FIRST_DAY == q["ld_first_day"] == LD_DAYS[0] and len(LD_DAYS) == q["ld_n_days"]
    atol = default_atol()
    a = {spec.name: spec.default for spec in SOLVER_ATOL}  # one table, read by every StateSpec
    assert set(np.unique(atol)) == {a["atol_cells"], a["atol_cells_per_ul"], a["atol_other"]}


def test_no_module_switches_the_matplotlib_backend_at_import() -> None:
    code = ("import sys, matplotlib; calls = []; matplotlib.use = lambda *a, **k: calls.append(a); "
            "import cartsim.clinic.cli, cartsim.screen.plot, cartsim.screen.power, "
            "cartsim.report.trajectories, cartsim.simulation; "
            "print('matplotlib.pyplot' in sys.modules, len(calls))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "0"]


def test_readout_and_trait_constants_come_from_specs() -> None:
    from cartsim.model import readouts, traits

    r = readouts.READOUT_PARAMS.defaults()
    for name in ("t_blood_fraction", "b_blood_fraction", "vcn", "cd19_negative_density",
                 "temp_base_c", "temp_rise_max_c", "spo2_base_pct", "ice_max",
                 "mono_per_anc", "mono_base_per_ul"):
        assert getattr(readouts, name.upper()) == r[name], name
    assert all(spec.provenance and spec.unit for spec in readouts.READOUT_PARAMS)
    t = traits.TRAIT_PARAMS.defaults()
    assert (traits.TP53_PFN_FACTOR, traits.TP53_DR_FACTOR, traits.TP53_IFNG_FACTOR) == (
        t["tp53_pfn_factor"], t["tp53_dr_factor"], t["tp53_ifng_factor"])
    # a TP53-altered clone is weakened by exactly those factors on each route
    for k, route in enumerate(("pfn", "dr", "ifng")):
        w = [0.0, 0.0, 0.0]
        w[k] = 1.0
        wt = traits.route_kill_factor(1.0, 1.0, 1.0, 1.0, 0.0, *w)
        alt = traits.route_kill_factor(1.0, 1.0, 1.0, 1.0, 1.0, *w)
        assert alt / wt == t[f"tp53_{route}_factor"], route
