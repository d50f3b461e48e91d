"""The builder's and simulator's constants are ParameterSpecs that the code actually uses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from cartsim.model.parameters import P
from cartsim.population import POPULATION_PARAMS, Cohort, build
from cartsim.products import get_product
from cartsim.simulation import LD_DAYS, LD_FIRST_DAY, SIMULATION_PARAMS, default_atol


def test_every_constant_has_unit_range_and_provenance() -> None:
    for table in (POPULATION_PARAMS, SIMULATION_PARAMS):
        for s in table:
            assert s.provenance.strip() and s.unit.strip() and s.contains(s.default), s.name


def test_patient_builder_uses_its_specs() -> None:
    q = POPULATION_PARAMS.defaults()
    prod = get_product("axi-cel")
    child = Cohort("b-all", weight_kg=[20.0], age_y=[6.0], marrow_blasts_pct=[100.0])
    adult = Cohort("lbcl", weight_kg=[80.0], age_y=[60.0], tumour_volume_ml=[10.0])
    pc, yc = build(child, prod, seed=0, variability=False)
    pa, ya = build(adult, prod, seed=0, variability=False)
    assert pc[0, P.map0] == q["map0_child_mmhg"] and pa[0, P.map0] == q["map0_adult_mmhg"]
    assert pa[0, P.cart_access] == q["lbcl_cart_access"]
    assert pa[0, P.tumour_cap_cells] == q["lbcl_tumour_cap_cells"]
    assert pc[0, P.blood_ul] == q["blood_ml_per_kg"] * 1e3 * 20.0
    frac = q["max_blast_fraction"]  # 100 % blasts is capped, so the tumour stays finite
    assert np.isfinite(yc).all() and frac < 1.0


def test_simulator_schedule_and_tolerances_come_from_specs() -> None:
    q = SIMULATION_PARAMS.defaults()
    assert LD_FIRST_DAY == q["ld_first_day"] == LD_DAYS[0] and len(LD_DAYS) == q["ld_n_days"]
    atol = default_atol()
    assert set(np.unique(atol)) == {q["atol_cells"], q["atol_cells_per_ul"], q["atol_other"]}


def test_no_module_switches_the_matplotlib_backend_at_import() -> None:
    code = ("import sys, matplotlib; calls = []; matplotlib.use = lambda *a, **k: calls.append(a); "
            "import cartsim.clinic.cli, cartsim.screen.plot, cartsim.screen.power, "
            "cartsim.report.trajectories, cartsim.simulation; "
            "print('matplotlib.pyplot' in sys.modules, len(calls))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "0"]
