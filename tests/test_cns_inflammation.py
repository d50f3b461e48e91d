"""Overt CNS leukaemia: CAR-T killing in the CSF and leptomeninges inflames the brain locally
(session 40, docs/model.md "CNS leukaemia and local neurotoxicity").

The term reads the kills of the sanctuary compartment (model/inflammation.py ``k_enc_cns``,
``K_cns_kill``). It acts only in B-ALL patients with overt CNS disease: the occult seeding every
B-ALL carries is not leptomeningeal disease, and in lymphoma the compartment holds the poorly
reached nodal lesions, not the CNS.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.simulation import simulate

OFF = {"k_enc_cns": 0.0}


def _child(cns: float, n: int = 1) -> Cohort:
    return Cohort("b-all", weight_kg=np.full(n, 30.0), age_y=np.full(n, 10.0),
                  marrow_blasts_pct=np.full(n, 40.0), cns_disease=np.full(n, cns))


def _enc_rate(cns: float, cns_kills: float, steroid: float = 0.0, disease: str = "b-all",
              overrides: dict[str, float] | None = None) -> float:
    """dENC/dt of a patient with a closed barrier and no encephalopathy yet, when the CAR-T
    kill ``cns_kills`` sanctuary cells per day."""
    from cartsim.model import inflammation
    from cartsim.model.state import S

    if disease == "b-all":
        c = _child(cns)
    else:
        c = Cohort(disease, weight_kg=np.array([70.0]), age_y=np.array([58.0]),
                   tumour_volume_ml=np.array([80.0]), cns_disease=np.array([cns]))
    p, y = build(c, get_product("tisagenlecleucel"), seed=1, variability=False,
                 overrides=overrides)
    p, y = p[0], y[0].copy()
    y[S.BBB] = 0.0
    y[S.ENC] = 0.0
    y[S.TS] = 1e9
    dy = np.zeros_like(y)
    # kill_hs is per capita: this many kills per day among the 1e9 sanctuary cells
    inflammation.derivs(y, p, dy, 0.0, 0.0, 0.0, 0.0, steroid, 0.0, 1.0, cns_kills / 1e9)
    return float(dy[S.ENC])


def test_kills_in_overt_cns_leukaemia_drive_encephalopathy() -> None:
    assert _enc_rate(1.0, 0.0) == 0.0
    assert _enc_rate(1.0, 5e8) > 1.0  # /d: over the sanctuary's upper-tail kill rate
    assert _enc_rate(1.0, 5e8) > 10.0 * _enc_rate(1.0, 5e7) > 0.0  # Hill 4: a switch


def test_occult_seeding_lymphoma_shelter_and_the_switch_do_not_drive_it() -> None:
    """Without overt CNS disease, in lymphoma (the compartment is the nodal shelter) and with
    k_enc_cns = 0, sanctuary kills add nothing."""
    assert _enc_rate(0.0, 5e8) == 0.0
    assert _enc_rate(1.0, 5e8, disease="lbcl") == 0.0
    assert _enc_rate(1.0, 5e8, overrides=OFF) == 0.0


def test_steroids_damp_the_local_drive() -> None:
    assert _enc_rate(1.0, 5e8, steroid=1.0) < _enc_rate(1.0, 5e8)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 1e11), st.floats(0.0, 1e11))
def test_more_cns_kills_never_lower_the_drive(k1: float, k2: float) -> None:
    lo, hi = sorted((k1, k2))
    assert _enc_rate(1.0, hi) >= _enc_rate(1.0, lo)


def test_a_child_with_cns_leukaemia_has_deeper_encephalopathy_and_the_switch_restores() -> None:
    """One child, overt CNS disease, with and without the route: deeper encephalopathy with it,
    the same CAR-T expansion; without CNS disease the route changes nothing, bit for bit."""
    days = 28
    kw = {"days": days, "seed": 3, "variability": False}
    on = simulate(_child(1.0), get_product("tisagenlecleucel"), **kw).trajectories
    off = simulate(_child(1.0), get_product("tisagenlecleucel"), overrides=OFF,
                   **kw).trajectories
    assert on["encephalopathy"].max() > off["encephalopathy"].max() + 0.2  # 0.35 -> 0.65
    np.testing.assert_allclose(on["cart_cells_per_ul"].max(), off["cart_cells_per_ul"].max(),
                               rtol=0.05)
    no_cns_on = simulate(_child(0.0), get_product("tisagenlecleucel"), **kw).trajectories
    no_cns_off = simulate(_child(0.0), get_product("tisagenlecleucel"), overrides=OFF,
                          **kw).trajectories
    for name in no_cns_on.columns:
        if np.issubdtype(no_cns_on[name].dtype, np.number):
            np.testing.assert_array_equal(no_cns_on[name].to_numpy(),
                                          no_cns_off[name].to_numpy(), err_msg=name)
