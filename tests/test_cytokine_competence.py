"""The infused product's cytokine competence (session 25, docs/model.md "When CRS starts").

Freshly infused CAR-T cells are activated, polyfunctional effectors; repeated antigen
stimulation lowers what each cell secretes. The effectors' mean competence ``QC`` (1 as
infused) scales the CD40L/GM-CSF signal by which engaged CAR-T activate myeloid cells, so CRS
can start at the first antigen encounters, days before the expansion peak.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.simulation import simulate


def _one_adult(overrides: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    c = Cohort("lbcl", weight_kg=np.array([70.0]), age_y=np.array([58.0]),
               tumour_volume_ml=np.array([80.0]))
    p, y = build(c, get_product("axi-cel"), seed=1, variability=False, overrides=overrides)
    return p[0], y[0].copy()


def _cart_rates(qc: float, stim: float, cells: float,
                overrides: dict[str, float] | None = None) -> tuple[float, float]:
    """d(QC)/dt and the competence the CAR-T kernel hands to inflammation."""
    from cartsim.model import cart
    from cartsim.model.state import S

    p, y = _one_adult(overrides)
    y[S.E_t] = cells
    y[S.QC] = qc
    dy = np.zeros_like(y)
    _, out = cart.derivs(y, p, dy, stim, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    return float(dy[S.QC]), float(out)


def test_competence_starts_at_one_falls_under_stimulation_and_recovers_at_rest() -> None:
    from cartsim.model.state import S

    _, y = _one_adult()
    assert y[S.QC] == 1.0  # as infused
    falling, handed = _cart_rates(1.0, 1.0, 1e8)
    assert falling < 0.0 and handed == 1.0
    # the loss scales with the stimulation; rested cells regain competence
    assert _cart_rates(1.0, 0.5, 1e8)[0] == pytest.approx(falling / 2.0)
    assert _cart_rates(0.2, 0.0, 1e8)[0] > 0.0
    # no CAR-T cells in the body (before the infusion): nothing to lose
    assert _cart_rates(1.0, 1.0, 0.0)[0] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_competence_stays_between_zero_and_one_and_falls_faster_under_more_stimulation(
        qc: float, s1: float, s2: float) -> None:
    """Invariants: the rate points inwards at the bounds (QC ∈ [0, 1]) and is monotone in the
    stimulation (more antigen, faster loss)."""
    assert _cart_rates(0.0, s1, 1e8)[0] >= 0.0
    assert _cart_rates(1.0, s1, 1e8)[0] <= 0.0
    lo, hi = sorted((s1, s2))
    assert _cart_rates(qc, hi, 1e8)[0] <= _cart_rates(qc, lo, 1e8)[0]


def test_without_competence_loss_it_stays_one() -> None:
    """Off switch (k_qc = 0): competence stays exactly 1, and 1 × the engaged concentration
    is the contact signal of the model before session 25."""
    assert _cart_rates(1.0, 1.0, 1e8, {"k_qc": 0.0}) == (0.0, 1.0)


def _myeloid_rate(competence: float) -> float:
    from cartsim.model import inflammation
    from cartsim.model.state import S

    p, y = _one_adult()
    y[S.MY] = 0.2
    dy = np.zeros_like(y)
    inflammation.derivs(y, p, dy, 0.0, 2e8, 0.0, 0.0, 0.0, 0.0, competence, 0.0)
    return float(dy[S.MY])


def test_competent_engaged_cells_activate_myeloid_cells_more() -> None:
    assert _myeloid_rate(1.0) > _myeloid_rate(0.3) + 0.1 > _myeloid_rate(0.0) + 0.1


@pytest.fixture(scope="module")
def adult_lbcl():  # type: ignore[no-untyped-def]
    c = Cohort("lbcl", weight_kg=np.array([70.0]), age_y=np.array([58.0]),
               tumour_volume_ml=np.array([80.0]))
    return simulate(c, get_product("axi-cel"), days=28, seed=3, variability=False).trajectories


def test_fever_starts_days_before_the_car_t_peak(adult_lbcl) -> None:  # type: ignore[no-untyped-def]
    """ZUMA-1: CRS onset median day 2 with the CAR-T peak in the second week (targets file)."""
    t = adult_lbcl[adult_lbcl["day"] >= 0]
    febrile = t.loc[t["temperature_c"] >= 38.0, "day"]
    assert len(febrile) > 0
    onset = int(febrile.min())
    peak = int(t.loc[t["cart_cells_per_ul"].idxmax(), "day"])
    assert onset <= 3
    assert peak >= onset + 4


def test_a_reinfusion_brings_fresh_competent_effectors() -> None:
    """The effector pool's competence after a second infusion is the cell-weighted mix of the
    tired effectors in the body and the new, fully competent ones; a patient not reinfused
    keeps hers."""
    from cartsim.model.state import S
    from cartsim.trial.procedures import ReinfusionCourse, Trigger

    p, y = _one_adult()
    y = np.vstack([y, y])
    y[:, S.E_t], y[:, S.E_b], y[:, S.QC] = 3e8, 1e8, 0.2
    course = ReinfusionCourse(Trigger("day", day=30), np.array([4e8, 4e8]),
                              memory_fraction=0.5, lymphodepletion=False)
    course.act(0, np.array([True, False]), y, np.vstack([p, p]))
    new = 0.5 * 4e8
    assert y[0, S.QC] == pytest.approx((0.2 * 4e8 + new) / (4e8 + new))
    assert y[1, S.QC] == 0.2
