"""CD19 on the brain's mural cells: an on-target, off-tumour route to ICANS (session 26,
docs/model.md "ICANS beyond the cytokine storm").

The pericytes and smooth-muscle cells that hold the blood–brain barrier together carry CD19 at
a low density (Parker 2020). Circulating effector CAR-T cells that engage them lower the
endothelial activation at which the barrier opens, in proportion to their concentration and to
the construct's engagement of so little antigen: a CD28 construct engages antigen-low targets
(Majzner 2020), a CAR without a CD19 binder does not see mural cells at all.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartsim.population import Cohort, build
from cartsim.products import Construct, get_product
from cartsim.simulation import simulate


def _one_adult(product: str = "axi-cel", overrides: dict[str, float] | None = None,
               construct: Construct | None = None) -> tuple[np.ndarray, np.ndarray]:
    c = Cohort("lbcl", weight_kg=np.array([70.0]), age_y=np.array([58.0]),
               tumour_volume_ml=np.array([80.0]))
    prod = get_product(product)
    if construct is not None:
        prod = dataclasses.replace(prod, construct=construct)
    p, y = build(c, prod, seed=1, variability=False, overrides=overrides)
    return p[0], y[0].copy()


def _barrier_rate(effectors_blood: float, en: float = 3.0, product: str = "axi-cel",
                  overrides: dict[str, float] | None = None,
                  construct: Construct | None = None) -> float:
    """d(BBB)/dt of a closed barrier at endothelial activation ``en`` with this many effector
    CAR-T cells in the blood."""
    from cartsim.model import inflammation
    from cartsim.model.state import S

    p, y = _one_adult(product, overrides, construct)
    y[S.EN] = en
    y[S.BBB] = 0.0
    y[S.E_b] = effectors_blood
    dy = np.zeros_like(y)
    inflammation.derivs(y, p, dy, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return float(dy[S.BBB])


def test_blood_effectors_open_the_barrier_at_a_lower_endothelial_activation() -> None:
    none = _barrier_rate(0.0)
    many = _barrier_rate(2e8)  # ≈ 40 effector CAR-T per µL of an adult's blood
    assert many > 1.3 * none > 0.0


def test_without_the_mural_route_blood_effectors_do_not_touch_the_barrier() -> None:
    """Off switch (w_mural = 0): the barrier follows the endothelium alone, as before."""
    off = {"w_mural": 0.0}
    assert _barrier_rate(2e8, overrides=off) == _barrier_rate(0.0, overrides=off)


def test_a_car_without_a_cd19_binder_spares_the_mural_cells() -> None:
    cd22 = Construct("CD22-41BBz", ("CD22",), "4-1BB", 2, 1.0)
    assert _barrier_rate(2e8, construct=cd22) == _barrier_rate(0.0, construct=cd22)


def test_a_cd28_construct_engages_the_antigen_low_mural_cells_more() -> None:
    """Same patient, same effectors, same endothelium: the CD28 construct's lower antigen
    threshold (products.py cd28_K_antigen_x) opens the barrier faster than the 4-1BB one; with
    the multiplier at 1 the two constructs are the same here."""
    base = _barrier_rate(0.0, product="tisa-cel")
    cd28 = _barrier_rate(2e8, product="axi-cel") - base
    bb = _barrier_rate(2e8, product="tisa-cel") - base
    assert cd28 > 2.0 * bb > 0.0
    same = {"cd28_K_antigen_x": 1.0}
    assert _barrier_rate(2e8, product="axi-cel", overrides=same) == pytest.approx(
        _barrier_rate(2e8, product="tisa-cel", overrides=same))


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 1e10), st.floats(0.0, 1e10), st.floats(0.5, 6.0))
def test_more_blood_effectors_never_close_the_barrier(e1: float, e2: float, en: float) -> None:
    """Monotone in the effector concentration at every endothelial activation."""
    lo, hi = sorted((e1, e2))
    assert _barrier_rate(hi, en=en) >= _barrier_rate(lo, en=en)


def test_the_mural_route_deepens_an_adults_encephalopathy() -> None:
    """One 58-year-old with LBCL on axi-cel, with and without the route: the same CRS, deeper
    encephalopathy with it."""
    c = Cohort("lbcl", weight_kg=np.array([70.0]), age_y=np.array([58.0]),
               tumour_volume_ml=np.array([80.0]))
    on = simulate(c, get_product("axi-cel"), days=28, seed=3, variability=False).trajectories
    off = simulate(c, get_product("axi-cel"), days=28, seed=3, variability=False,
                   overrides={"w_mural": 0.0}).trajectories
    assert on["encephalopathy"].max() > off["encephalopathy"].max() + 0.05
    np.testing.assert_allclose(on["cart_cells_per_ul"].max(), off["cart_cells_per_ul"].max(),
                               rtol=0.02)
