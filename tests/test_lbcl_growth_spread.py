"""Patient-to-patient spread of the LBCL growth rate (session 48, issue 10: ZUMA-1's complete
responses and survival): ``lbcl_growth_spread`` (population.py) multiplies each LBCL patient's
``r_tumour`` by a median-preserving log-normal factor from the keyed stream "lbcl_growth", on top
of ``r_tumour``'s own IIV (Kimmel 2021 fitted the ZUMA-1 PFS curve with net growth rates of
0.01-0.5/d between patients). B-ALL, MCL and FL keep their growth; 0 gives back the parameter
matrix of the model before it."""

from __future__ import annotations

import numpy as np
import pytest

from cartsim.model.parameters import P
from cartsim.population import POPULATION_PARAMS, Cohort, build, standard_normals
from cartsim.products import get_product
from keyed_lbcl import lbcl_cohort, tumour_at_the_draws_ends, whole_and_chunked

AXI = get_product("axicabtagene_ciloleucel")
TISA = get_product("tisagenlecleucel")
DEFAULT = POPULATION_PARAMS.defaults()["lbcl_growth_spread"]
SPREAD = 0.5  # the session-48 probe's value
ON = {"lbcl_growth_spread": SPREAD}


_lbcl = lbcl_cohort


def test_lbcl_growth_is_spread_by_its_own_keyed_factor() -> None:
    n = 500
    assert DEFAULT == 0.0  # off by default
    on, y_on = build(_lbcl(n), AXI, seed=5, overrides=ON)
    off, y_off = build(_lbcl(n), AXI, seed=5)
    z = standard_normals(5, np.arange(n, dtype=np.int64), "lbcl_growth")
    np.testing.assert_allclose(on[:, P.r_tumour], off[:, P.r_tumour] * np.exp(SPREAD * z),
                               rtol=1e-12)
    # only the growth rate moves; the wider spread keeps the median
    keep = np.arange(on.shape[1]) != P.r_tumour
    assert np.array_equal(on[:, keep], off[:, keep]) and np.array_equal(y_on, y_off)
    assert np.std(np.log(on[:, P.r_tumour])) > 1.2 * np.std(np.log(off[:, P.r_tumour]))
    assert np.median(on[:, P.r_tumour]) == pytest.approx(np.median(off[:, P.r_tumour]),
                                                         rel=0.2)
    # without variability nobody is spread
    a, _ = build(_lbcl(20), AXI, seed=5, variability=False, overrides=ON)
    b, _ = build(_lbcl(20), AXI, seed=5, variability=False)
    assert np.array_equal(a, b)


def test_ball_growth_is_not_spread() -> None:
    ball = Cohort("b-all", weight_kg=np.full(50, 30.0), age_y=np.full(50, 10.0),
                  marrow_blasts_pct=np.full(50, 50.0))
    p, y = build(ball, TISA, seed=5, overrides=ON)
    off, y_off = build(ball, TISA, seed=5)
    assert np.array_equal(p, off) and np.array_equal(y, y_off)


def test_a_patients_growth_does_not_depend_on_the_chunking() -> None:
    chunked, whole = whole_and_chunked(AXI, seed=3, cuts=(9, 30), overrides=ON)
    assert np.array_equal(chunked, whole)


def test_the_spread_acts_on_the_tumour() -> None:
    # the patients at the two ends of the growth factor, each against itself without the
    # spread, from lymphodepletion (day -5) to day 1: the fast grower ends with more tumour
    # than without the spread, the slow grower with less
    lo, hi, d1 = tumour_at_the_draws_ends("lbcl_growth", AXI, 1, {"on": ON, "off": {}})
    assert d1["on"][hi] > 1.05 * d1["off"][hi]
    assert d1["on"][lo] < d1["off"][lo] / 1.05
