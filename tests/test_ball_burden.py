"""The B-ALL marrow: leukaemic cells and blast fraction by one mapping both ways (session 42,
model/burden.py, ``ball_packing``; docs/validation.md "Session 42" finding 3)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cartsim.model.burden import blast_fraction, blast_fraction_array, leukaemic_cells
from cartsim.model.parameters import P
from cartsim.model.readouts import compute
from cartsim.population import Cohort, build
from cartsim.products import get_product


@settings(max_examples=60, deadline=None)
@given(f=st.floats(1e-8, 0.99), k=st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0]),
       marrow=st.floats(1e9, 1e12))
def test_the_two_directions_agree(f: float, k: float, marrow: float) -> None:
    t = float(leukaemic_cells(np.array(f), np.array(marrow), np.array(k)))
    assert abs(blast_fraction(t, marrow, k) - f) < 1e-9
    assert abs(float(blast_fraction_array(np.array(t), np.array(marrow), np.array(k))) - f) \
        < 1e-9


def test_packing_zero_is_the_old_mapping_bit_for_bit() -> None:
    site = np.array([0.0, 1e6, 3e11, 5e12])
    m = np.full(4, 3.3e11)
    old = site / (site + m)
    assert np.array_equal(blast_fraction_array(site, m, np.zeros(4)), old)
    assert all(blast_fraction(s, 3.3e11, 0.0) == o for s, o in zip(site, old, strict=True))


def _children(k: float, blasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = Cohort("b-all", weight_kg=np.full(blasts.size, 30.0), age_y=np.full(blasts.size, 10.0),
               marrow_blasts_pct=blasts)
    return build(c, get_product("tisagenlecleucel"), seed=3, variability=False,
                 overrides={"ball_packing": k})


def test_a_patient_entered_at_f_reads_f_and_the_burden_is_bounded() -> None:
    blasts = np.array([0.01, 5.0, 50.0, 74.0, 90.0, 99.0])
    for k in (0.0, 3.0):
        p, y = _children(k, blasts)
        assert np.allclose(compute(y, p)["marrow_blast_pct"], blasts, rtol=1e-9)
    p, y = _children(3.0, blasts)
    marrow = p[:, P.marrow_cells]
    tumour = compute(y, p)["tumour_cells"]
    assert np.all(tumour <= 4.0 * marrow * (1 + 1e-12))  # (1 + k) × the marrow at most
    # past (1 + k) × the marrow the readout is 100 % blasts (the leukaemia can grow on)
    assert blast_fraction(5.0 * float(marrow[0]), float(marrow[0]), 3.0) == 1.0
    p0, y0 = _children(0.0, blasts)
    old = compute(y0, p0)["tumour_cells"]
    # the same at MRD levels, bounded where the old mapping diverges (99 × at 99 %)
    assert np.isclose(tumour[0], old[0], rtol=1e-3) and old[-1] > 20 * tumour[-1]
