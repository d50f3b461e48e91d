"""Patient-to-patient CAR-T access to nodal LBCL (session 8, issue 11 item 1: primary
refractoriness): ``access_spread`` (model/killing.py) spreads each LBCL patient's
``cart_access`` log-normally around ``lbcl_cart_access`` (median-preserving, capped at 1) from
the keyed per-patient stream "nodal_access". B-ALL (and MCL/FL) keep their access; 0 gives back
the parameter matrix of the model before it."""

from __future__ import annotations

import numpy as np
import pytest

from cartsim.model.parameters import PARAMS, P
from cartsim.population import POPULATION_PARAMS, Cohort, build, standard_normals
from cartsim.products import get_product
from keyed_lbcl import lbcl_cohort, tumour_at_the_draws_ends, whole_and_chunked

AXI = get_product("axicabtagene_ciloleucel")
TISA = get_product("tisagenlecleucel")
BASE = POPULATION_PARAMS.defaults()["lbcl_cart_access"]


_lbcl = lbcl_cohort


def test_lbcl_access_is_spread_median_preserving_and_capped() -> None:
    n = 400
    p, _ = build(_lbcl(n), AXI, seed=5)
    acc = p[:, P.cart_access]
    sigma = PARAMS["access_spread"].default
    assert sigma > 0.0
    z = standard_normals(5, np.arange(n, dtype=np.int64), "nodal_access")
    np.testing.assert_allclose(acc, np.minimum(BASE * np.exp(sigma * z), 1.0), rtol=1e-12)
    assert acc.max() <= 1.0
    assert np.median(acc) == pytest.approx(BASE, rel=0.25)
    # some patients' masses are reached far less than the typical one (σ 0.5 since session 23;
    # 400 draws reach about -3 SD)
    assert acc.min() < 0.3 * BASE
    # without variability every patient sits at the typical access
    q, _ = build(_lbcl(n), AXI, seed=5, variability=False)
    assert np.all(q[:, P.cart_access] == BASE)


def test_ball_access_is_not_spread() -> None:
    ball = Cohort("b-all", weight_kg=np.full(50, 30.0), age_y=np.full(50, 10.0),
                  marrow_blasts_pct=np.full(50, 50.0))
    p, y = build(ball, TISA, seed=5)
    off, y_off = build(ball, TISA, seed=5, overrides={"access_spread": 0.0})
    assert np.all(p[:, P.cart_access] == PARAMS["cart_access"].default)
    keep = np.arange(p.shape[1]) != P.access_spread
    assert np.array_equal(p[:, keep], off[:, keep]) and np.array_equal(y, y_off)


def test_neutral_spread_gives_the_old_parameter_matrix() -> None:
    # the model before: every LBCL patient at lbcl_cart_access, every other column unchanged
    on, y_on = build(_lbcl(60), AXI, seed=9)
    off, y_off = build(_lbcl(60), AXI, seed=9, overrides={"access_spread": 0.0})
    assert np.all(off[:, P.cart_access] == BASE)
    # (the sheltered lesions, on by default since session 23, are reached at a fraction of the
    # patient's nodal access: cns_access follows cart_access)
    keep = ~np.isin(np.arange(on.shape[1]), [P.access_spread, P.cart_access, P.cns_access])
    assert np.array_equal(on[:, keep], off[:, keep]) and np.array_equal(y_on, y_off)
    assert not np.all(on[:, P.cart_access] == BASE)


def test_a_patients_access_does_not_depend_on_the_chunking() -> None:
    chunked, whole = whole_and_chunked(AXI, seed=3, cuts=(7, 23))
    assert np.array_equal(chunked, whole)


def test_an_excluded_mass_is_killed_less_than_an_inflamed_one() -> None:
    # the patients at the low and the high end of the access distribution, each against
    # itself at the typical access (access_spread 0): the same patient otherwise
    lo, hi, d28 = tumour_at_the_draws_ends("nodal_access", AXI, 28,
                                           {"on": {}, "off": {"access_spread": 0.0}})
    assert d28["on"][lo] > 10.0 * max(d28["off"][lo], 1.0)  # excluded: far less killed
    assert d28["on"][hi] <= d28["off"][hi]  # inflamed: at least as well killed
