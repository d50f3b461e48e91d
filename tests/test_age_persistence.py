"""A child's CAR-T memory persists longer (session 22; docs/model.md "Age and CAR-T
persistence"): below ``mem_age_ref_y`` the memory decay rate d_M falls by
``mem_age_per_decade`` (log-fold) per decade of youth; adults keep d_M exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartsim.errors import InvalidInputError
from cartsim.model.parameters import P
from cartsim.population import POPULATION_PARAMS, Cohort, build
from cartsim.products import get_product
from cartsim.simulation import simulate

TISA = get_product("tisagenlecleucel")
SLOPE = POPULATION_PARAMS["mem_age_per_decade"].default
REF = POPULATION_PARAMS["mem_age_ref_y"].default
OFF = {"mem_age_per_decade": 0.0}


def _cohort(ages: list[float]) -> Cohort:
    n = len(ages)
    return Cohort("b-all", weight_kg=np.full(n, 40.0), age_y=np.asarray(ages, dtype=float),
                  marrow_blasts_pct=np.full(n, 50.0), patient_id=np.arange(n, dtype=np.int64))


def _d_m_ratio(ages: list[float], **overrides: float) -> np.ndarray:
    on, _ = build(_cohort(ages), TISA, seed=5, overrides=overrides or None)
    off, _ = build(_cohort(ages), TISA, seed=5, overrides=OFF)
    return on[:, P.d_M] / off[:, P.d_M]


def test_defaults_are_on_and_in_range() -> None:
    assert 0.0 < SLOPE <= 3.0
    assert 1.0 <= REF <= 100.0


def test_a_child_s_memory_decays_slower_and_an_adult_s_is_unchanged() -> None:
    ages = [3.0, 10.0, REF - 5.0, REF, REF + 1.0, 60.0]
    r = _d_m_ratio(ages)
    expected = np.exp(-SLOPE * np.maximum(REF - np.asarray(ages), 0.0) / 10.0)
    np.testing.assert_allclose(r, expected, rtol=1e-12)
    # at or above the reference age the value is the model's own, bit for bit
    assert np.array_equal(r[3:], np.ones(3))
    assert r[0] < r[1] < r[2] < 1.0


def test_zero_slope_gives_back_the_model_before_it() -> None:
    ages = [2.0, 12.0, 45.0]
    a, _ = build(_cohort(ages), TISA, seed=9, overrides=OFF)
    # the same cohort built with a different reference age but slope 0: identical matrices
    b, _ = build(_cohort(ages), TISA, seed=9, overrides={**OFF, "mem_age_ref_y": 80.0})
    assert np.array_equal(a, b)


def test_out_of_range_values_are_refused_with_the_field_named() -> None:
    with pytest.raises(InvalidInputError, match="mem_age_per_decade"):
        build(_cohort([10.0]), TISA, seed=1, overrides={"mem_age_per_decade": -0.5})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.5, 90.0), min_size=2, max_size=6),
       st.floats(0.05, 2.0), st.floats(5.0, 60.0))
def test_persistence_never_shortens_with_youth(ages: list[float], slope: float,
                                               ref: float) -> None:
    """Property: the d_M multiplier is ≤ 1 and non-decreasing in age, for any slope ≥ 0."""
    r = _d_m_ratio(ages, mem_age_per_decade=slope, mem_age_ref_y=ref)
    order = np.argsort(ages)
    assert np.all(r <= 1.0)
    assert np.all(np.diff(r[order]) >= -1e-15)


def test_a_child_keeps_more_car_t_a_year_on() -> None:
    """The same 8-year-old patient, with and without the age effect: the expansion is the
    same, the memory pool a year later larger (longer B-cell aplasia, fewer CD19-positive
    relapses)."""
    cohort = _cohort([8.0])
    kw = {"days": 365, "seed": 4, "variability": False}
    on = simulate(cohort, TISA, **kw).trajectories
    off = simulate(cohort, TISA, overrides=OFF, **kw).trajectories

    def at(t, day: int) -> float:  # type: ignore[no-untyped-def]
        return float(t.loc[t["day"] == day, "cart_cells_per_ul"].iloc[0])

    peak_on, peak_off = on["cart_cells_per_ul"].max(), off["cart_cells_per_ul"].max()
    assert peak_on == pytest.approx(peak_off, rel=0.05)
    assert at(on, 364) > 1.5 * at(off, 364)


def test_a_cd28_childs_car_t_memory_decays_as_an_adults() -> None:
    """Session 26: the youth factor is a 4-1BB product's (products.py
    cd28_mem_age_per_decade_x 0): NCI CD19-28z's children kept no CAR-T beyond day 68. With
    the multiplier at 1 a CD28 child gets the 4-1BB child's slower decay back."""
    c = Cohort("b-all", weight_kg=np.array([28.0, 70.0]), age_y=np.array([8.0, 40.0]),
               marrow_blasts_pct=np.array([50.0, 50.0]))
    axi, tisa = get_product("axi-cel"), get_product("tisa-cel")
    p_axi, _ = build(c, axi, seed=1, variability=False)
    p_tisa, _ = build(c, tisa, seed=1, variability=False)
    assert p_axi[0, P.d_M] == p_axi[1, P.d_M]  # child = adult on CD28
    assert p_tisa[0, P.d_M] < 0.5 * p_tisa[1, P.d_M]  # the 4-1BB child's memory lasts
    p_old, _ = build(c, axi, seed=1, variability=False,
                     overrides={"cd28_mem_age_per_decade_x": 1.0})
    assert p_old[0, P.d_M] / p_old[1, P.d_M] == pytest.approx(
        p_tisa[0, P.d_M] / p_tisa[1, P.d_M])
