"""Session 12 (issues 10/11): faster regrowth of relapsed/refractory B-ALL
(``ball_growth_factor``) — the neutral value gives back the reference written before it, and it
acts on B-ALL only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cartsim.model.parameters import P
from cartsim.population import POPULATION_PARAMS, Cohort, build
from cartsim.products import get_product

REF_BEFORE = Path(__file__).parent / "data" / "core_trajectory_reference_a8956ae.npz"


def test_ball_growth_factor_one_gives_back_the_reference_before_it_bit_for_bit() -> None:
    from neutral_values import BALL_GROWTH_S11, CNS_SEED_S12, assert_gives_back

    assert_gives_back(REF_BEFORE, {**BALL_GROWTH_S11, **CNS_SEED_S12})


def test_ball_growth_factor_multiplies_the_b_all_growth_rate_only() -> None:
    f = POPULATION_PARAMS["ball_growth_factor"].default
    assert f > 1.0
    ball = Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([10.0]),
                  marrow_blasts_pct=np.array([50.0]))
    lbcl = Cohort("lbcl", weight_kg=np.array([75.0]), age_y=np.array([55.0]),
                  tumour_volume_ml=np.array([50.0]))
    for cohort, prod, expect in ((ball, "tisagenlecleucel", f),
                                 (lbcl, "axicabtagene_ciloleucel", 1.0)):
        a, _ = build(cohort, get_product(prod), 1, variability=False)
        b, _ = build(cohort, get_product(prod), 1, variability=False,
                     overrides={"ball_growth_factor": 1.0})
        assert np.isclose(a[0, P.r_tumour] / b[0, P.r_tumour], expect)


def test_population_overrides_are_validated_against_their_range() -> None:
    import pytest

    from cartsim.errors import InvalidInputError

    ball = Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([10.0]),
                  marrow_blasts_pct=np.array([50.0]))
    with pytest.raises((InvalidInputError, ValueError), match="ball_growth_factor"):
        build(ball, get_product("tisagenlecleucel"), 1, overrides={"ball_growth_factor": 50.0})
