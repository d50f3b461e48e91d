"""SBML (issue 13, item 6): export of one virtual patient generated from the mechanisms, the
libRoadRunner round trip against cartsim's own trajectory, and published models as cohorts."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

libsbml = pytest.importorskip("libsbml")
roadrunner = pytest.importorskip("roadrunner")

from cartsim.model import layout  # noqa: E402
from cartsim.model.mechanism import Kernel, Mechanism, StateSpec, compose  # noqa: E402
from cartsim.population import Cohort, build  # noqa: E402
from cartsim.products import get_product  # noqa: E402
from cartsim.sbml.trace import TraceError, check_trace, evaluate, trace_model  # noqa: E402

PROD = get_product("tisagenlecleucel")


def _cohort(**kw: object) -> Cohort:
    return Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([10.0]),
                  marrow_blasts_pct=np.array([60.0]), patient_id=np.array([3]), **kw)


@pytest.mark.parametrize("addons", [
    (),
    # the add-on model compiles its own vector field (~10 s): kept out of the default suite
    pytest.param(("iap_inhibitor",), marks=pytest.mark.slow),
])
def test_traced_vector_field_equals_the_compiled_one_for_every_state(addons: tuple) -> None:
    """The expressions exported are the kernels' own arithmetic: at random states the
    traced derivative of every state equals model.rhs (whatever model is installed)."""
    model = layout.model(addons)
    p, y = build(_cohort(), PROD, seed=5, model=model if model.addons else None)
    traced = trace_model(model, p[0])
    assert set(traced.rates) == {s.name for s in model.states}
    check_trace(model, traced, y[0], n=48, seed=1)
    # and the check bites: a slightly wrong derivative is found and its mechanism named
    e = traced.rates["E_t"]
    traced.rates["E_t"] = e * 1.0001
    with pytest.raises(TraceError, match="mechanism 'cart'.*dE_t/dt"):
        check_trace(model, traced, y[0], n=48, seed=1)


def _toy_module(body: str) -> types.ModuleType:
    mod = types.ModuleType("cartsim_test_toy_mech")
    src = ("import numba, math\nS = None\nP = None\n"
           "@numba.njit(inline='always')\n"
           f"def toy(y, p, dy):\n    {body}\n")
    exec(compile(src, "<toy>", "exec"), mod.__dict__)  # noqa: S102 - a test mechanism
    sys.modules[mod.__name__] = mod
    return mod


def test_untranslatable_kernel_fails_naming_the_mechanism() -> None:
    from cartsim.params import ParameterSpec

    ps = (ParameterSpec("k_toy", "1/d", 0.5, 0.0, 1.0, "assumed", "toy rate"),)
    ok = _toy_module("dy[S.X] = math.exp(-p[P.k_toy]) * max(y[S.X], 0.0) ** 2")
    bad = _toy_module("dy[S.X] = math.sin(y[S.X])")
    for mod, fails in ((ok, False), (bad, True)):
        mech = Mechanism("toy", mod.__name__, "toy", states=(StateSpec("X", "cells", "x"),),
                         params=ps, kernels=(Kernel(mod.toy),))
        model = compose([mech])
        mod.S, mod.P = model.S, model.P
        if fails:
            with pytest.raises(TraceError, match=r"mechanism 'toy'.*math\.sin"):
                trace_model(model, np.array([0.5]))
        else:
            traced = trace_model(model, np.array([0.5]))
            got = evaluate(traced, np.array([[3.0], [-1.0]]))[:, 0]
            assert got == pytest.approx([np.exp(-0.5) * 9.0, 0.0])


def test_export_document_declares_states_parameters_units_rules_and_events() -> None:
    import html

    from cartsim.sbml.export import FIRST_DAY, export_patient
    from cartsim.simulation import LD_DAYS

    text, p, y0, model = export_patient(_cohort(), PROD, seed=5, check=False)
    doc = libsbml.readSBMLFromString(text)
    assert doc.getNumErrors(libsbml.LIBSBML_SEV_ERROR) == 0
    assert (doc.getLevel(), doc.getVersion()) == (3, 2)
    m = doc.getModel()
    rate_vars = {m.getRule(i).getVariable() for i in range(m.getNumRules())
                 if m.getRule(i).isRate()}
    assert rate_vars == {s.name for s in model.states}
    par = m.getParameter("rho_max")
    assert par.getConstant() and par.getValue() == pytest.approx(p[model.P.rho_max])
    ud = m.getUnitDefinition(par.getUnits())  # 1/d: second^-1 × 86400
    assert ud is not None and ud.getUnit(0).getKind() == libsbml.UNIT_KIND_SECOND
    assert ud.getUnit(0).getExponent() == -1 and ud.getUnit(0).getMultiplier() == 86400
    spec = next(sp for sp in model.params if sp.name == "rho_max")
    assert html.escape(spec.provenance)[:30] in par.getNotesString()  # provenance travels
    assert m.getParameter("stim") is not None  # shared quantities are assignment rules
    days = sorted(float(libsbml.formulaToL3String(m.getEvent(i).getTrigger().getMath())
                        .split(">=")[1]) for i in range(m.getNumEvents()))
    # Flu/Cy days and the infusion (day 0), SBML time counted from the first simulated day
    assert days == sorted(float(d - FIRST_DAY) for d in (*LD_DAYS, 0))


@pytest.mark.slow  # ~1.5 min: libRoadRunner's LLVM build of the ~560 kB exported model
def test_roadrunner_reproduces_cartsims_trajectory() -> None:
    """The exported patient, simulated by libRoadRunner, gives cartsim's daily readouts
    within solver tolerance. The stochastic layer is switched off (threshold 0): SBML
    carries the deterministic skeleton."""
    from cartsim.model import readouts
    from cartsim.sbml.export import FIRST_DAY, export_patient
    from cartsim.simulation import simulate

    days = 40
    ov = {"stoch_threshold": 0.0}
    text, p, _, model = export_patient(_cohort(), PROD, seed=5, overrides=ov, check=False)
    # Session 43: what never finished (> 24 min, sessions 5-42) was building the model, not
    # CVODE: libRoadRunner's default MCJIT backend takes > 5 min on it, the LLJIT backend
    # without LLVM optimisation ~70 s; the 45 simulated days then take ~3.5 s
    cfg = roadrunner.Config
    saved = (cfg.getValue(cfg.LLVM_BACKEND), cfg.getValue(cfg.LLJIT_OPTIMIZATION_LEVEL))
    cfg.setValue(cfg.LLVM_BACKEND, cfg.LLJIT)
    cfg.setValue(cfg.LLJIT_OPTIMIZATION_LEVEL, cfg.NONE)
    try:
        rr = roadrunner.RoadRunner(text)
    finally:
        cfg.setValue(cfg.LLVM_BACKEND, saved[0])
        cfg.setValue(cfg.LLJIT_OPTIMIZATION_LEVEL, saved[1])
    # tight tolerances: at looser ones (1e-8) CVODE stalls right after the infusion event
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-12
    rr.timeCourseSelections = ["time"] + [s.name for s in model.states]
    res = np.asarray(rr.simulate(0.0, float(days - FIRST_DAY), days - FIRST_DAY + 1))
    got = readouts.compute(res[:, 1:], np.repeat(p[None], res.shape[0], axis=0))
    want = simulate(_cohort(), PROD, days=days, seed=5, overrides=ov, rtol=1e-8,
                    protocol=None).trajectories
    day = want["day"].to_numpy()
    keep = day != 0  # cartsim records a day before its schedule; SBML after its events
    checked = 0
    for col in ("cart_cells_per_ul", "tumour_cells", "marrow_blast_pct", "b_cells_per_ul",
                "il6_pg_ml", "ifng_pg_ml", "temperature_c", "anc_per_ul", "platelets_per_ul",
                "igg_mg_dl", "encephalopathy", "t_cells_per_ul"):
        a = want[col].to_numpy()[keep]
        b = np.asarray(got[col])[keep]
        scale = np.max(np.abs(a))
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6 * scale, err_msg=col)
        checked += 1
    assert checked == 12
    assert want["cart_cells_per_ul"].max() > 1.0  # a real expansion was compared


def test_cli_export_sbml(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cartsim.cli import app

    out = tmp_path / "patient.xml"
    r = CliRunner().invoke(app, ["export-sbml", "--product", "kymriah", "--disease", "lbcl",
                                 "--out", str(out), "--patient", "7"])
    assert r.exit_code == 0, r.output
    doc = libsbml.readSBML(str(out))
    assert doc.getNumErrors(libsbml.LIBSBML_SEV_ERROR) == 0
    assert doc.getModel().getParameter("disease_lbcl").getValue() == 1.0
    r = CliRunner().invoke(app, ["export-sbml", "--product", "kymriah", "--disease", "lbcl",
                                 "--out", str(tmp_path)])
    assert r.exit_code != 0 and "not a directory" in r.output


def test_published_models_run_as_cohorts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cartsim.cli import app
    from cartsim.sbml.cohort import run_cohort, shipped_models

    models = shipped_models()
    assert len(models) == 6
    for name in models:
        df = run_cohort(name, 3, 5.0, seed=1, points=6)
        assert sorted(df.patient_id.unique()) == [0, 1, 2]
        assert len(df) == 3 * 6 and np.isfinite(df.drop(columns="patient_id")).all().all()
        assert df.attrs["varied"], name
        last = df[df.time == df.time.max()].drop(columns=["patient_id", "time"])
        assert (last.std() > 0).any(), f"{name}: patients do not differ"
        again = run_cohort(name, 2, 5.0, seed=1, points=6)  # a patient's draw is its own
        pd.testing.assert_frame_equal(again, df[df.patient_id < 2].reset_index(drop=True),
                                      check_like=True)
    out = tmp_path / "leon"
    r = CliRunner().invoke(app, ["sbml-cohort", "BIOMD0000001012", "--out", str(out),
                                 "--patients", "4", "--duration", "30"])
    assert r.exit_code == 0, r.output
    assert pd.read_parquet(out / "trajectories.parquet").patient_id.nunique() == 4
    r = CliRunner().invoke(app, ["sbml-cohort", "NOPE", "--out", str(tmp_path / "x")])
    assert r.exit_code != 0 and "BIOMD0000001012" in r.output
