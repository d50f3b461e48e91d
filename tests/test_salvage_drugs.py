"""The salvage-drug add-ons (model/salvage_drugs.py, issue 11 item 5): each drug's mechanism
on one patient, and that a model without the drug is exactly the core model (or, with its
effect switched off, the same trajectory within solver tolerance)."""

from __future__ import annotations

import numpy as np
import pytest

from cartsim.model import layout
from cartsim.model.salvage_drugs import MECHANISMS
from cartsim.population import Cohort
from cartsim.products import Construct, Product, get_product
from cartsim.simulation import Dose, simulate
from cartsim.trial.spec import load_spec

TISA = get_product("tisagenlecleucel")
KW = {"days": 29, "seed": 1, "variability": False}
DAILY = range(0, 28)


def _ball(**traits: float) -> Cohort:
    return Cohort("b-all", weight_kg=np.array([30.0]), age_y=np.array([12.0]),
                  marrow_blasts_pct=np.array([60.0]),
                  **{k: np.array([v]) for k, v in traits.items()})


def _at(res, col: str, day: int) -> float:  # type: ignore[no-untyped-def]
    t = res.trajectories
    return float(t.loc[t["day"] == day, col].iloc[0])


def _gain(cohort: Cohort, doses: list[Dose], day: int, product: Product = TISA,
          **kw: object) -> float:
    """Tumour without the drug / tumour with it, on ``day``."""
    off = simulate(cohort, product, **KW, **kw)  # type: ignore[arg-type]
    on = simulate(cohort, product, drugs=doses, **KW, **kw)  # type: ignore[arg-type]
    assert doses[0].name in on.meta["mechanisms"] and doses[0].name not in off.meta["mechanisms"]
    return _at(off, "tumour_cells", day) / _at(on, "tumour_cells", day)


# ---- off: the core model is untouched ----------------------------------------------------------

def test_without_a_salvage_drug_the_model_is_the_core_model_with_neutral_quantities() -> None:
    core = layout.model()
    assert core is layout.CORE
    for name, mech in MECHANISMS.items():
        assert layout.addon_for_dose(name) == name
        assert not set(s.name for s in mech.states) & set(core.S.__members__)
        assert not set(s.name for s in mech.params) & set(core.P.__members__)
    # the quantities the drugs provide take their neutral values in the core vector field
    # (the bit-identical reference trajectory is tests/test_iap_inhibitor.py::
    # test_without_the_drug_the_model_and_trajectory_are_exactly_the_old_ones)
    for line in ("noxa_induction = 0.0", "mito_priming = 0.0", "pd1_blockade = 0.0",
                 "cart_pause = 0.0", "cd22_upregulation = 1.0", "tcell_fitness = 1.0"):
        assert line in core.source, line


@pytest.mark.slow  # compiles an add-on model (about a minute on a cold cache; CI budget)
@pytest.mark.parametrize(("drug", "emax", "amount", "traits"), [
    ("hdac_inhibitor", "hdaci_emax", 400.0, {"noxa_low": 1.0}),
    ("bh3_mimetic", "bh3_emax", 400.0, {"tp53_altered": 1.0}),
    ("anti_pd1", "pd1_emax", 200.0, {"pdl1": 0.8}),
    ("dasatinib", "dasa_imax", 100.0, {}),
    ("btk_inhibitor", "btki_emax", 420.0, {}),
])
def test_a_drug_with_its_effect_switched_off_leaves_the_trajectory(
        drug: str, emax: str, amount: float, traits: dict[str, float]) -> None:
    # the add-on model has more states, whose zero error still counts in the solver's error
    # norm: steps (not equations) differ, so agreement to the tolerance, not bitwise
    kw = {"days": 15, "seed": 1, "variability": False}
    a = simulate(_ball(**traits), TISA, **kw).trajectories  # type: ignore[arg-type]
    b = simulate(_ball(**traits), TISA, drugs=[Dose(drug, d, amount) for d in range(0, 14)],
                 overrides={emax: 0.0}, **kw).trajectories  # type: ignore[arg-type]
    for c in ("tumour_cells", "cart_cells_per_ul", "il6_pg_ml"):
        np.testing.assert_allclose(b[c], a[c], rtol=1e-3, err_msg=c)


# ---- one patient per drug: the mechanism ---------------------------------------------------------

# slow (34 s: the add-on model's first compile): the default suite is at its 5-minute budget
@pytest.mark.slow
def test_hdac_inhibitor_restores_killing_of_a_noxa_low_tumour_only() -> None:
    doses = [Dose("hdac_inhibitor", d, 400.0) for d in DAILY]
    # (probe, this patient: day-28 tumour 1.35e8 without, 7.7e7 with the drug)
    low = _gain(_ball(noxa_low=1.0), doses, 28)
    high = _gain(_ball(noxa_low=0.0), doses, 28)
    assert low > 1.5  # NOXA induced: the perforin route comes back
    assert 0.99 < high < 1.01  # wild-type NOXA: nothing to restore


@pytest.mark.slow  # compiles an add-on model (about a minute on a cold cache; CI budget)
def test_bh3_mimetic_helps_a_tp53_altered_tumour_and_not_a_wild_type_one() -> None:
    doses = [Dose("bh3_mimetic", d, 400.0) for d in DAILY]
    # (probe: day-14 tumour 2.4e11 without, 3.0e10 with; day 28 9.8e7 vs 5.6e7)
    tp53 = _gain(_ball(tp53_altered=1.0), doses, 14)
    wt = _gain(_ball(), doses, 14)
    assert tp53 > 3.0
    assert 0.99 < wt < 1.01  # wild-type intrinsic apoptosis: nothing to restore


@pytest.mark.slow  # compiles an add-on model (about a minute on a cold cache; CI budget)
def test_anti_pd1_helps_only_against_a_pd_l1_positive_tumour() -> None:
    doses = [Dose("anti_pd1", 0, 200.0), Dose("anti_pd1", 21, 200.0)]
    # (probe: day-28 tumour 2.3e8 without, 1.7e7 with; CAR-T peak 737 vs 1388 /µL)
    pos = _gain(_ball(pdl1=0.8), doses, 28)
    neg = _gain(_ball(pdl1=0.0), doses, 28)
    assert pos > 3.0
    assert 0.99 < neg < 1.01


@pytest.mark.slow  # compiles an add-on model (about a minute on a cold cache; CI budget)
def test_dasatinib_pauses_car_t_and_cytokines_reversibly() -> None:
    doses = [Dose("dasatinib", d, 100.0) for d in range(4, 8)]
    # (probe: day-8 IL-6 24 vs 162 pg/mL, CAR-T 27 vs 164 /µL; day-14 CAR-T 1421 /µL)
    off = simulate(_ball(), TISA, **KW)  # type: ignore[arg-type]
    on = simulate(_ball(), TISA, drugs=doses, **KW)  # type: ignore[arg-type]
    # during the pause: less IL-6 and fewer CAR-T than without it
    assert _at(on, "il6_pg_ml", 8) < 0.7 * _at(off, "il6_pg_ml", 8)
    assert _at(on, "cart_cells_per_ul", 8) < 0.7 * _at(off, "cart_cells_per_ul", 8)
    # reversible: after the last dose the CAR-T expand again and clear the tumour
    assert _at(on, "cart_cells_per_ul", 14) > 3.0 * _at(on, "cart_cells_per_ul", 8)
    assert _at(on, "tumour_cells", 28) < 1e-3 * _at(on, "tumour_cells", 0)


@pytest.mark.slow  # compiles an add-on model (about a minute on a cold cache; CI budget)
def test_btk_inhibitor_raises_car_t_expansion() -> None:
    doses = [Dose("btk_inhibitor", d, 420.0) for d in range(-5, 28)]
    off = simulate(_ball(), TISA, **KW)  # type: ignore[arg-type]
    on = simulate(_ball(), TISA, drugs=doses, **KW)  # type: ignore[arg-type]
    # (probe: CAR-T peak 1416 without, 1938 /µL with; day-10 tumour 1.7e10 vs 4.7e8)
    peak_off = off.trajectories["cart_cells_per_ul"].max()
    peak_on = on.trajectories["cart_cells_per_ul"].max()
    assert peak_on > 1.2 * peak_off
    assert _at(on, "tumour_cells", 10) < 0.1 * _at(off, "tumour_cells", 10)


@pytest.mark.slow  # compiles an add-on model (about a minute on a cold cache; CI budget)
def test_bryostatin_helps_a_cd22_car_and_leaves_a_cd19_car_alone() -> None:
    cd22 = Product("cd22_car", Construct("CD22 CAR (test)", ("CD22",), "4-1BB", 2, 1.0,
                                         memory_fraction=0.3), TISA.dose_rule, "test", "test")
    doses = [Dose("bryostatin", d, 40.0) for d in (0, 7, 14, 21)]
    # a CD22-low tumour: half-maximal engagement at twice its CD22 density
    low = {"overrides": {"K_antigen": 1.0}}
    # (probe: CD22 CAR, day-28 tumour 8.9e8 without, 1.4e8 with; CD19 CAR: unchanged)
    assert _gain(_ball(), doses, 28, cd22, **low) > 3.0
    assert 0.99 < _gain(_ball(), doses, 28, TISA, **low) < 1.01


def test_the_salvage_drug_example_loads_with_every_drug_scheduled() -> None:
    spec = load_spec("examples/salvage_drugs.toml")
    given = {item.drug for arm in spec.arms for item in arm.schedule
             if getattr(item, "kind", "") == "drug"}
    assert given == {"hdac_inhibitor", "bh3_mimetic", "anti_pd1", "btk_inhibitor",
                     "dasatinib"}
