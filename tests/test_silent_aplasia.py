"""Silent B-cell aplasia (session 19, issue 14): no fever in remission.

Two changes (docs/model.md, "Silent B-cell aplasia"): the CAR-T's kills of normal B-lineage
cells leave the inflammatory kill signal (``w_b_kill_inflam`` = 0, model/killing.py) and the
IL-1 priming gate is a Hill-2 switch (``n_il1_prime`` = 2, ``K_il1_prime`` = 0.15,
model/inflammation.py). Their session-18 values (``SILENT_APLASIA_S18``) give the model
before them bit for bit: ``assert_gives_back`` applies them, and its reference test is
``tests/test_iap_inhibitor.py::test_without_the_drug_...``.

Session 20 adds the engaged counterpart: effectors engaged on normal B-lineage cells leave
the engaged CAR-T that drive IFN-γ and contact activation of myeloid cells
(``w_b_engaged_inflam`` = 0; ``SILENT_ENGAGED_S19`` = 1 gives the model before it), which
ended the chronic fever of adults in remission on a CD28 product.
"""

from __future__ import annotations

import numpy as np

from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.simulation import simulate
from neutral_values import SILENT_APLASIA_S18, SILENT_ENGAGED_S19


def _state(blasts_pct: float = 0.0, overrides: dict[str, float] | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    c = Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([9.0]),
               marrow_blasts_pct=np.array([max(blasts_pct, 1e-6)]))
    p, y = build(c, get_product("tisagenlecleucel"), seed=1, variability=False,
                 overrides=overrides)
    return p[0], y[0].copy()


def _site(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """(inflammatory kills per day, kill hazard on B progenitors, on mature B cells)."""
    from cartsim.model.killing import site_activity

    out = site_activity(y, p, np.zeros_like(y), 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    return float(out[3]), float(out[5]), float(out[6])


def _aplasia_state(overrides: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A child in remission months after infusion: no leukaemia, persisting CAR-T effectors
    and the B progenitors the marrow keeps making."""
    from cartsim.model.state import S

    p, y = _state(0.0, overrides)
    for k in (S.T0, S.T1, S.T2, S.TS):
        y[k] = 0.0
    y[S.E_t], y[S.M_t] = 3e8, 3e8
    y[S.B_prog], y[S.B] = 1e8, 1e7
    return p, y


def test_b_lineage_kills_no_longer_inflame_but_b_cells_are_still_killed() -> None:
    p, y = _aplasia_state()
    kills, g_prog, g_b = _site(y, p)
    assert kills == 0.0  # no tumour: nothing that inflames
    assert g_prog > 0.0 and g_b > 0.0  # the aplasia itself is unchanged
    p_old, _ = _aplasia_state(SILENT_APLASIA_S18)
    kills_old, g_prog_old, g_b_old = _site(y, p_old)
    assert kills_old > 1e7  # before: every B-lineage kill counted
    assert (g_prog_old, g_b_old) == (g_prog, g_b)


def test_tumour_kills_inflame_as_before() -> None:
    from cartsim.model.state import S

    p, y = _state(60.0)
    y[S.E_t] = 1e9
    y[S.B_prog] = y[S.B] = 0.0  # no normal B lineage: the weight is irrelevant
    p_old, _ = _state(60.0, SILENT_APLASIA_S18)
    assert _site(y, p)[0] == _site(y, p_old)[0] > 1e9


def _myeloid_drive(prim_kills: float, overrides: dict[str, float] | None = None) -> float:
    """d(MY)/dt with IL-1 high, at a primary stimulus from tumour kills only."""
    from cartsim.model import inflammation
    from cartsim.model.state import S

    p, y = _state(5.0, overrides)
    y[S.IL6], y[S.IFNG], y[S.IL1], y[S.MY], y[S.EN] = 20.0, 0.0, 10.0, 0.3, 0.3
    dy = np.zeros_like(y)
    inflammation.derivs(y, p, dy, prim_kills, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    return float(dy[S.MY])


def test_the_priming_gate_is_a_switch() -> None:
    """A trickle of damage (π ≈ 0.05) no longer keeps the IL-1 loop going, a CRS-scale one
    (π ≈ 0.5) still does; the session-18 Michaelis-Menten gate let the trickle through."""
    from cartsim.model.parameters import P

    p, _ = _state(5.0)
    vol_l = p[P.plasma_ml] / 1e3
    k_half = p[P.K_my_kill] * vol_l * 1e9  # kills per day giving damage term 0.5 (π = 0.5)
    trickle = k_half * 0.05 / 0.95  # π = 0.05
    assert _myeloid_drive(trickle) < 0.0  # decays: the loop does not sustain itself
    assert _myeloid_drive(trickle, SILENT_APLASIA_S18) > 0.0  # before: it did
    assert _myeloid_drive(k_half) > 0.0


def _febrile_in_remission(cohort: Cohort, product: str, days: int, seed: int, from_day: int,
                          overrides: dict[str, float] | None, at_least_in_remission: int) -> int:
    """Patients whose tumour stays below 10⁷ cells from day 28 on (remission) and who are at
    ≥ 38 °C on some day from ``from_day`` on."""
    r = simulate(cohort, get_product(product), days=days, seed=seed, overrides=overrides)
    remission = np.nanmax(r.array("tumour_cells")[:, r.days >= 28], axis=1) < 1e7
    hot = np.nanmax(r.array("temperature_c")[:, r.days >= from_day], axis=1) >= 38.0
    assert remission.sum() >= at_least_in_remission
    return int((hot & remission).sum())


def test_no_fever_in_remission_months_after_infusion() -> None:
    """Children whose leukaemia CAR-T keep below 10⁷ cells from day 28 on (remission with
    B-cell aplasia): none febrile from day 90 to 150, where the session-18 model kept a
    chronic fever in several (the share of days ≥ 38 °C was 12 % in this cohort)."""
    rng = np.random.default_rng(3)
    c = Cohort("b-all", weight_kg=rng.uniform(15, 60, 60), age_y=rng.uniform(3, 18, 60),
               marrow_blasts_pct=rng.uniform(5, 90, 60))
    now = _febrile_in_remission(c, "tisagenlecleucel", 150, 5, 90, None, 30)
    before = _febrile_in_remission(c, "tisagenlecleucel", 150, 5, 90, SILENT_APLASIA_S18, 30)
    assert now == 0
    assert before >= 3


def _engaged(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(CAR-T stimulation, inflammatory engaged effectors) at the site."""
    from cartsim.model.killing import site_activity

    out = site_activity(y, p, np.zeros_like(y), 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    return float(out[0]), float(out[4])


def test_b_lineage_engagement_no_longer_inflames_but_still_stimulates() -> None:
    p, y = _aplasia_state()
    stim, engaged = _engaged(y, p)
    assert engaged == 0.0  # no tumour: no effector that drives IFN-γ or myeloid contact
    assert stim > 0.05  # the B lineage still stimulates the CAR-T (persistence, aplasia)
    p_old, _ = _aplasia_state(SILENT_ENGAGED_S19)
    stim_old, engaged_old = _engaged(y, p_old)
    assert stim_old == stim and engaged_old > 1e7  # before: every engaged effector counted


def test_tumour_engagement_inflames_in_proportion_to_its_share() -> None:
    from cartsim.model.state import S

    p, y = _state(60.0)
    y[S.E_t] = 1e9
    p_old, _ = _state(60.0, SILENT_ENGAGED_S19)
    stim, engaged = _engaged(y, p)
    _, engaged_old = _engaged(y, p_old)
    assert 0.0 < engaged < engaged_old  # the B-lineage share is gone
    y[S.B_prog] = y[S.B] = 0.0  # tumour only: the weight is irrelevant
    assert _engaged(y, p)[1] == _engaged(y, p_old)[1] > 0.0


def test_no_fever_in_remission_on_a_cd28_product() -> None:
    """Adults with LBCL on axicabtagene ciloleucel whose lymphoma stays below 10⁷ cells from
    day 28 on: none febrile from day 60 to 120, where the session-19 model (the CD28 product's
    20-fold contact sensitivity acting on effectors engaged on regenerating B precursors)
    kept several febrile."""
    rng = np.random.default_rng(4)
    c = Cohort("lbcl", weight_kg=rng.uniform(55, 100, 60), age_y=rng.uniform(30, 75, 60),
               tumour_volume_ml=rng.uniform(5, 150, 60))
    prod = "axicabtagene_ciloleucel"
    assert _febrile_in_remission(c, prod, 120, 7, 60, None, 20) == 0
    assert _febrile_in_remission(c, prod, 120, 7, 60, SILENT_ENGAGED_S19, 20) >= 2
