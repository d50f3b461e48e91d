"""The endothelium's angiopoietin-2 self-amplification needs a cytokine cause (session 42,
docs/model.md "Why CRS can reach grade 4", ``ang_gate``).

Ungated, the loop was bistable for the patients in the tail of k_en × a_ang / d_en: once a CRS
had pushed them onto the upper branch, their endothelium stayed activated for years after every
cytokine had gone (a ZUMA-1 virtual patient: MAP 47 mmHg and SpO2 67 % for five years, alive).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cartsim.model.parameters import P
from cartsim.population import Cohort, build
from cartsim.products import get_product

#: a patient ≈ 2 SD out on k_en, a_ang and d_en (log-normal IIV 0.4, 0.3, 0.2)
TAIL = {"k_en": 0.9, "a_ang": 1.6, "d_en": 0.28}


def _adult(overrides: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    c = Cohort("lbcl", weight_kg=np.array([70.0]), age_y=np.array([58.0]),
               tumour_volume_ml=np.array([80.0]))
    p, y = build(c, get_product("axicabtagene ciloleucel"), seed=1, variability=False,
                 overrides=overrides)
    return p[0], y[0].copy()


def _den(p: np.ndarray, y: np.ndarray) -> float:
    from cartsim.model import inflammation
    from cartsim.model.state import S

    dy = np.zeros_like(y)
    inflammation.derivs(y, p, dy, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return float(dy[S.EN])


def _en_after(overrides: dict[str, float], days: float, en0: float, il6: float | None = None
              ) -> float:
    """EN after ``days`` with every other state held (cytokines at baseline unless ``il6``),
    explicit Euler at 0.01 d."""
    from cartsim.model.state import S

    p, y = _adult(overrides)
    y[S.EN] = en0
    if il6 is not None:
        y[S.IL6] = il6
    for _ in range(int(days / 0.01)):
        y[S.EN] += 0.01 * _den(p, y)
    return float(y[S.EN])


def test_the_ungated_loop_latches_in_the_tail_and_the_gated_one_resolves() -> None:
    latched = _en_after({**TAIL, "ang_gate": 0.0}, 60.0, 2.5)
    resolved = _en_after(TAIL, 60.0, 2.5)
    assert latched > 1.5  # the upper branch: shock without a cause
    assert resolved < 0.1


def test_the_gate_leaves_the_amplification_of_a_real_crs_nearly_whole() -> None:
    """At a CRS-level IL-6 (500 pg/mL) the gated activation rate is within 2 % of the ungated
    one."""
    from cartsim.model.state import S

    p0, y = _adult({"ang_gate": 0.0})
    p1, _ = _adult({})
    y[S.IL6] = 500.0
    y[S.EN] = 2.0
    decay = float(p0[P.d_en]) * 2.0  # production = dEN/dt + decay
    assert _den(p1, y) + decay > 0.98 * (_den(p0, y) + decay) > 0.0
    assert _den(p1, y) < _den(p0, y)


@settings(max_examples=40, deadline=None)
@given(k_en=st.floats(0.12, 1.3), a_ang=st.floats(0.0, 2.5), d_en=st.floats(0.19, 0.65),
       en=st.floats(1.0, 6.0))
def test_without_a_cytokine_cause_the_endothelium_always_recovers(
        k_en: float, a_ang: float, d_en: float, en: float) -> None:
    """At baseline cytokines dEN/dt < 0 from EN = 1 (well above the resting level) up, for
    patients anywhere within 3 SD of the IIV of k_en, a_ang and d_en (property): no
    self-sustained activation. Ungated, the same corner latches (first test)."""
    from cartsim.model.state import S

    p, y = _adult({"k_en": k_en, "a_ang": a_ang, "d_en": d_en})
    y[S.EN] = en
    assert _den(p, y) < 0.0
