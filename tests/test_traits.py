"""Resistance traits of review B5–B12 as patient covariates (issue 11, item 3).

One patient per trait, everything else equal: each trait moves the trajectory in its
published direction through the one route-kill function the screen simulator also uses, and
the neutral value is the old model exactly."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from cartsim.model import traits
from cartsim.model.traits import (
    GENE_TRAIT_EFFECTS,
    PATIENT_TRAIT_COVARIATES,
    ROUTE_PRESETS,
    WILD_TYPE,
    kill_multiplier,
    knockout_traits,
    patient_traits,
)
from cartsim.population import Cohort
from cartsim.products import get_product
from cartsim.simulation import simulate

NAMES = ("neutral", *PATIENT_TRAIT_COVARIATES)


def test_screen_and_patient_model_share_one_route_kill_function() -> None:
    # the screen's kill multiplier is route_kill_factor (the function numba inlines into the
    # patient model) times the surface-antigen fraction, for every gene of the trait map
    rows = np.array([knockout_traits(g) for g in GENE_TRAIT_EFFECTS])
    jit = numba.njit(traits.route_kill_factor)
    for preset, w in ROUTE_PRESETS.items():
        h = kill_multiplier(rows, w)
        for r, hg in zip(rows, h, strict=True):
            f = jit(r[traits.PFN_SENS], r[traits.DR_SENS], r[traits.IFNG_SENS],
                    r[traits.SYNAPSE], r[traits.TP53], w.pfn, w.dr, w.ifng)
            assert hg == pytest.approx(f * r[traits.SURFACE], rel=1e-12), preset


def test_neutral_covariates_are_the_wild_type_and_each_sets_its_own_trait() -> None:
    zero = {k: np.zeros(3) for k in PATIENT_TRAIT_COVARIATES}
    assert np.array_equal(patient_traits(zero, 3), np.tile(WILD_TYPE, (3, 1)))
    assert np.array_equal(patient_traits({}, 3), np.tile(WILD_TYPE, (3, 1)))
    w = ROUTE_PRESETS["human_liquid"]
    for cov, (trait, _) in PATIENT_TRAIT_COVARIATES.items():
        t = patient_traits({cov: np.array([1.0])}, 1)[0]
        changed = np.flatnonzero(t != WILD_TYPE)
        assert [traits.TRAIT_NAMES[i] for i in changed] == [trait], cov
        # same direction as the screen: a resistance phenotype never kills better
        assert kill_multiplier(t, w)[0] <= 1.0, cov
    # graded phenotypes interpolate; CD2-co-stimulated CARs bypass CD58 loss (B11)
    half = patient_traits({"dr_defect": np.array([0.5])}, 1)[0, traits.DR_SENS]
    assert half == pytest.approx(1.0 - 0.5 * (1.0 - 0.1))
    assert patient_traits({"cd58_loss": np.ones(1)}, 1, cd2_armour=True)[0, traits.SYNAPSE] == 1.0


@pytest.fixture(scope="module")
def one_per_trait():  # type: ignore[no-untyped-def]
    """The same LBCL patient (no variability) once neutral and once with each trait."""
    n = len(NAMES)
    cov = {k: np.array([1.0 if NAMES[i] == k else 0.0 for i in range(n)])
           for k in PATIENT_TRAIT_COVARIATES}
    cohort = Cohort("lbcl", weight_kg=np.full(n, 80.0), age_y=np.full(n, 57.0),
                    tumour_volume_ml=np.full(n, 60.0), **cov)
    res = simulate(cohort, get_product("axicabtagene_ciloleucel"), days=28, seed=1,
                   variability=False)
    t = res.trajectories
    return {name: t[t["patient_id"] == i].reset_index(drop=True) for i, name in enumerate(NAMES)}


def _d28(t) -> float:  # type: ignore[no-untyped-def]
    return float(t.loc[t["day"] == 28, "tumour_cells"].iloc[0])


@pytest.mark.parametrize("trait", [k for k in PATIENT_TRAIT_COVARIATES if k != "ifng_defect"])
def test_each_resistance_trait_leaves_more_tumour(  # type: ignore[no-untyped-def]
        one_per_trait, trait: str) -> None:
    # a CD28 construct engages antigen-low cells (Majzner 2020; products.py cd28_K_antigen_x),
    # so the loss of surface CD19 costs axi-cel less than the other traits (see below)
    factor = 1.25 if trait == "cd19_surface_loss" else 1.5
    assert _d28(one_per_trait[trait]) > factor * _d28(one_per_trait["neutral"])


def test_surface_cd19_loss_costs_a_4_1bb_construct_more_than_a_cd28_one(  # type: ignore[no-untyped-def]
        one_per_trait) -> None:
    """Majzner 2020: axi-cel's CD19-CD28ζ construct recognises antigen-low cells that
    tisa-cel's CD19-4-1BBζ misses, so the same patient's CD81/SPPL3-type surface loss leaves
    more tumour on the 4-1BB product, relative to its own neutral patient."""
    cohort = Cohort("lbcl", weight_kg=np.full(2, 80.0), age_y=np.full(2, 57.0),
                    tumour_volume_ml=np.full(2, 60.0), cd19_surface_loss=np.array([0.0, 1.0]))
    t = simulate(cohort, get_product("tisagenlecleucel"), days=28, seed=1,
                 variability=False).trajectories
    tisa = _d28(t[t["patient_id"] == 1]) / _d28(t[t["patient_id"] == 0])
    axi = _d28(one_per_trait["cd19_surface_loss"]) / _d28(one_per_trait["neutral"])
    assert tisa > 1.3 * axi


@pytest.mark.parametrize("trait", ["dr_defect", "noxa_low", "cd58_loss", "pdl1"])
def test_resistant_or_suppressive_tumours_give_less_expansion(  # type: ignore[no-untyped-def]
        one_per_trait, trait: str) -> None:
    # review B9: a low death-receptor score goes with LESS expansion (the sign issue 11 found
    # reversed); B11: CD58 loss slows proliferation; B12: PD-1 suppression
    peak = {k: float(one_per_trait[k]["cart_cells_per_ul"].max()) for k in ("neutral", trait)}
    assert peak[trait] < 0.85 * peak["neutral"]


def test_ifn_gamma_defect_does_not_matter_in_liquid_tumours() -> None:
    # review B5 / Larson 2022: the IFN-γ route carries no kill of liquid tumours (w_ifng = 0).
    # The same patient id in both runs: the stochastic layer's draws (acquired-loss mutants)
    # are keyed by patient, so only the trait differs.
    def run(defect: float):  # type: ignore[no-untyped-def]
        cohort = Cohort("lbcl", weight_kg=[80.0], age_y=[57.0], tumour_volume_ml=[60.0],
                        ifng_defect=[defect])
        return simulate(cohort, get_product("axicabtagene_ciloleucel"), days=28, seed=1,
                        variability=False).trajectories

    a, b = run(0.0), run(1.0)
    for col in ("tumour_cells", "cart_cells_per_ul", "il6_pg_ml"):
        assert np.array_equal(a[col].to_numpy(), b[col].to_numpy(), equal_nan=True), col
