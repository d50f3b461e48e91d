"""Poorly reached LBCL lesions (session 18, issues 10/11: the Lugano partial responses).

``lbcl_shelter_frac`` (population.POPULATION_PARAMS) moves a patient-specific share of the
nodal disease at infusion into the sanctuary compartment, where CAR-T reach it at
``lbcl_shelter_access`` × the patient's nodal access; ``lbcl_shelter_spread`` spreads the share
log-normally between patients (keyed stream "nodal_shelter"). 0 gives back the model before it;
B-ALL, MCL and FL are unaffected."""

from __future__ import annotations

import numpy as np
import pytest

from cartsim.model.parameters import N_PARAMS_BASE, P
from cartsim.model.state import S
from cartsim.population import POPULATION_PARAMS, Cohort, build, standard_normals
from cartsim.products import get_product
from cartsim.simulation import simulate

AXI = get_product("axicabtagene_ciloleucel")
TISA = get_product("tisagenlecleucel")
CLONES = [S.T0, S.T1, S.T2]


def _lbcl(n: int, ids: np.ndarray | None = None, disease: str = "lbcl") -> Cohort:
    return Cohort(disease, weight_kg=np.full(n, 75.0), age_y=np.full(n, 60.0),
                  tumour_volume_ml=np.full(n, 50.0), patient_id=ids)


def _on(frac: float = 0.2, spread: float = 0.0, access: float = 0.1) -> dict[str, float]:
    return {"lbcl_shelter_frac": frac, "lbcl_shelter_spread": spread,
            "lbcl_shelter_access": access}


def test_the_sheltered_share_moves_disease_without_creating_any() -> None:
    n = 30
    p0, y0 = build(_lbcl(n), AXI, seed=4, overrides=_on(0.0))
    p1, y1 = build(_lbcl(n), AXI, seed=4, overrides=_on(0.2))
    site0, site1 = y0[:, CLONES].sum(axis=1), y1[:, CLONES].sum(axis=1)  # site0: all disease
    np.testing.assert_allclose(site1, 0.8 * site0, rtol=1e-12)
    # the occult seeding scales with the reached share; the sheltered share joins it
    np.testing.assert_allclose(y1[:, S.TS], 0.8 * y0[:, S.TS] + 0.2 * site0, rtol=1e-12)
    assert np.all(site1 + y1[:, S.TS] <= site0 + y0[:, S.TS])
    # the sheltered lesions are reached at a fraction of each patient's own nodal access
    np.testing.assert_allclose(p1[:, P.cns_access], 0.1 * p1[:, P.cart_access], rtol=1e-12)
    assert np.all(p1[:, P.cns_capacity] >= p1[:, P.tumour_cap_cells])


def test_the_share_is_spread_median_preserving_capped_and_keyed() -> None:
    n = 400
    ids = np.arange(n, dtype=np.int64)
    _, y = build(_lbcl(n), AXI, seed=6, overrides=_on(0.1, spread=1.5))
    _, y0 = build(_lbcl(n), AXI, seed=6, overrides=_on(0.0))
    share = 1.0 - y[:, CLONES].sum(axis=1) / y0[:, CLONES].sum(axis=1)
    z = standard_normals(6, ids, "nodal_shelter")
    np.testing.assert_allclose(share, np.minimum(0.1 * np.exp(1.5 * z), 0.9), rtol=1e-9)
    assert share.max() <= 0.9 + 1e-12 and share.min() < 0.02
    assert np.median(share) == pytest.approx(0.1, rel=0.25)
    assert np.all(y[:, S.TS] >= share * y0[:, CLONES].sum(axis=1) * (1 - 1e-12))
    # a patient's share does not depend on the chunking
    parts = [build(_lbcl(len(c), ids=c), AXI, seed=6, overrides=_on(0.1, spread=1.5))[1]
             for c in (ids[:13], ids[13:200], ids[200:])]
    assert np.array_equal(np.vstack(parts), y)


@pytest.mark.parametrize("disease", ["mcl", "fl"])
def test_other_lymphomas_are_unaffected(disease: str) -> None:
    cohort = Cohort(disease, weight_kg=np.full(8, 75.0), age_y=np.full(8, 60.0),
                    tumour_volume_ml=np.full(8, 50.0), marrow_involved=np.zeros(8))
    p0, y0 = build(cohort, AXI, seed=2, overrides=_on(0.0))
    p1, y1 = build(cohort, AXI, seed=2, overrides=_on(0.3))
    assert np.array_equal(y0, y1) and np.array_equal(p0[:, :N_PARAMS_BASE],
                                                     p1[:, :N_PARAMS_BASE])


def test_b_all_is_unaffected() -> None:
    ball = Cohort("b-all", weight_kg=np.full(20, 30.0), age_y=np.full(20, 10.0),
                  marrow_blasts_pct=np.full(20, 50.0))
    p0, y0 = build(ball, TISA, seed=5, overrides=_on(0.0))
    p1, y1 = build(ball, TISA, seed=5, overrides=_on(0.5, spread=1.0))
    assert np.array_equal(p0, p1) and np.array_equal(y0, y1)


def test_a_sheltered_share_leaves_residual_disease_that_the_reached_nodes_do_not() -> None:
    # one patient at the typical nodal access: without shelter the nodes are cleared below
    # the Lugano CR volume by day 28; with a fifth of the disease poorly reached, what is left
    # on day 28 is mostly the sheltered lesions, killed per cell far more slowly
    cohort = Cohort("lbcl", weight_kg=np.array([75.0]), age_y=np.array([60.0]),
                    tumour_volume_ml=np.array([50.0]))
    d28 = {}
    for k, q in (("off", _on(0.0)), ("on", _on(0.2, access=0.1))):
        t = simulate(cohort, AXI, days=28, seed=1, variability=False, overrides=q).trajectories
        d28[k] = t[t["day"] == 28].iloc[0]
    assert d28["off"]["tumour_cells"] < 0.1e9  # cleared (the Lugano CR volume, 0.1 mL)
    assert d28["on"]["tumour_cells"] > 10.0 * max(d28["off"]["tumour_cells"], 1.0)
    assert d28["on"]["cns_tumour_cells"] > 0.5 * d28["on"]["tumour_cells"]
    assert d28["on"]["tumour_cells"] < 0.5 * 50e9  # still a partial response, not none


def test_the_shipped_shelter_space_loads_and_starts_at_the_shipped_default() -> None:
    from importlib.resources import files

    from cartsim.calibrate.space import load_space

    path = files("cartsim") / "data" / "calibration" / "space_lbcl_shelter.toml"
    space = load_space(str(path))
    names = [d.parameter for d in space.dimensions]
    assert names == ["lbcl_shelter_frac", "lbcl_shelter_spread", "lbcl_shelter_access"]
    # on by default since session 23 (0.2): a fit starts from the shipped model
    d0 = space.dimensions[0]
    assert d0.current() == pytest.approx(POPULATION_PARAMS.defaults()["lbcl_shelter_frac"])
    assert d0.lower <= d0.current() <= d0.upper
    assert "zuma1" in space.studies and "tancar7" in space.held_out


def test_the_shipped_default_is_on_and_a_zero_share_switches_it_off_exactly() -> None:
    """Session 23: on by default; at share 0 the spread and access of the sheltered lesions are
    unused, so the build is the model without them bit for bit."""
    assert POPULATION_PARAMS.defaults()["lbcl_shelter_frac"] > 0.0
    pa, ya = build(_lbcl(20), AXI, seed=3, overrides=_on(0.0, spread=1.0, access=0.15))
    pb, yb = build(_lbcl(20), AXI, seed=3, overrides=_on(0.0, spread=0.0, access=0.9))
    assert np.array_equal(pa, pb) and np.array_equal(ya, yb)
    _, y_default = build(_lbcl(20), AXI, seed=3)
    assert not np.array_equal(y_default, ya)
    assert np.all(y_default[:, S.TS] > ya[:, S.TS])  # the sheltered lesions start in TS
