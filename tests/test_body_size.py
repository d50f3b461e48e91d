"""No body-size artefacts (issues 11 and 14): two patients who differ only in weight, at equal
dose per kg and equal marrow blast %, have the same cytokine concentrations, CRS grades,
response and CAR-T counts per µL. Whole-body constants are quoted for the 70-kg reference adult
and scale with weight; cytokine production is an amount over the plasma volume."""

from __future__ import annotations

import numpy as np
import pytest

from cartsim.clinic.cohort import grade_cohort
from cartsim.clinic.protocol import load_protocol
from cartsim.model import layout
from cartsim.model.parameters import P
from cartsim.model.state import S
from cartsim.population import Cohort, build
from cartsim.products import get_product
from cartsim.simulation import simulate

PROD = get_product("tisagenlecleucel")
CORE = layout.CORE


def _pair(weights: tuple[float, float], disease: str = "b-all", dose_per_kg: float = 2e6,
          **cov: float) -> Cohort:
    w = np.array(weights)
    n = len(w)
    kw: dict[str, np.ndarray] = {k: np.full(n, v) for k, v in cov.items()}
    if disease == "b-all":
        kw.setdefault("marrow_blasts_pct", np.full(n, 50.0))
    else:
        # burden in proportion to the body, so the pair is isometric
        kw["tumour_volume_ml"] = kw.get("tumour_volume_ml", np.full(n, 100.0)) * w / 70.0
    return Cohort(disease, weight_kg=w, age_y=np.full(n, 15.0), dose=dose_per_kg * w, **kw)


def _derivatives(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    dy = np.zeros_like(y)
    CORE.rhs(0.0, y, p, dy)
    return dy


def _scale_of(unit: str) -> bool:
    """States that are whole-body amounts (cells, drug amounts) scale with the body."""
    return unit in ("cells", "mg", "mg dex-eq")


@pytest.mark.parametrize("disease", ["b-all", "lbcl"])
def test_the_vector_field_is_isometric_in_body_weight(disease: str) -> None:
    """Mid-expansion, with CAR-T, tumour, B cells, steroid and anakinra amounts all in
    proportion to weight: every whole-body derivative scales with weight, every
    concentration, fraction and per-capita derivative is the same (K_stim, K_kill,
    K_my_kill, p_il6, p_ifng, ster_ec50, anakinra_ec50, LBCL capacity)."""
    w = (20.0, 70.0)
    p, y = build(_pair(w, disease), PROD, seed=3, variability=False)
    scale = np.array(w) / 70.0
    for name, per70 in (("E_t", 3e9), ("M_t", 2e8), ("X_t", 1e8), ("E_b", 4e8), ("M_b", 5e7),
                        ("STER", 6.0), ("ANAK", 40.0)):
        y[:, S[name]] = per70 * scale
    y[:, S.IL6] = 120.0
    y[:, S.IFNG] = 40.0
    y[:, S.MY] = 0.5
    y[:, S.EN] = 0.7
    y[:, S.TS] = 0.0  # the sanctuary (CNS) has adult-like absolute capacity; not scaled
    dy = np.array([_derivatives(p[i], y[i]) for i in range(2)])
    assert np.abs(dy[:, S.IL6]).min() > 1.0  # a live cytokine storm, not a trivial zero
    for k, st in enumerate(CORE.states):
        a, b = dy[0, k], dy[1, k]
        if _scale_of(st.unit):
            a, b = a / scale[0], b / scale[1]
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), st.name


def test_cytokine_production_is_an_amount_over_the_plasma_volume() -> None:
    """Doubling the plasma volume per kg halves what a day's production adds to IL-6 and
    IFN-γ; at the 70-kg reference the plasma volume is 2.8 L and body_scale is 1."""
    cohort = _pair((70.0, 70.0))
    p1, y = build(cohort, PROD, seed=3, variability=False)
    p2, _ = build(cohort, PROD, seed=3, variability=False, overrides={"plasma_ml_per_kg": 80.0})
    assert p1[0, P.plasma_ml] == pytest.approx(2800.0)
    assert p1[0, P.body_scale] == 1.0
    y0 = y[0].copy()
    y0[S.E_t] = 3e9
    y0[S.IL6] = 0.0  # no clearance term: dy is production (+ the baseline source)
    y0[S.IFNG] = 0.0
    d1, d2 = _derivatives(p1[0], y0), _derivatives(p2[0], y0)
    base = p1[0, P.d_il6] * p1[0, P.il6_base]
    assert d1[S.IL6] - base > 0.0
    assert d2[S.IL6] - base == pytest.approx((d1[S.IL6] - base) / 2.0, rel=1e-12)
    assert d2[S.IFNG] == pytest.approx(d1[S.IFNG] / 2.0, rel=1e-12)


def _grades(res, cohort: Cohort) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Maximal ASTCT CRS grade per patient: fever, hypotension and vasopressors by the default
    protocol's haemodynamic rule, oxygen by the SpO2 ladder of the trial endpoints."""
    t = res.trajectories.sort_values(["patient_id", "day"])
    t = t[t["day"] >= 0]
    n = cohort.n
    def mat(c: str) -> np.ndarray:
        return t[c].to_numpy().reshape(n, -1)
    mp = mat("map_mmhg")
    ages = np.broadcast_to(cohort.age_y[:, None], mp.shape)
    _, n_vp, vpn, hyp = load_protocol("default").hemodynamic_support(mp, ages, np.ones_like(mp))
    s = mat("spo2_pct")
    dev = np.select([s < 80, s < 88, s < 92], [9, 3, 1], 0)
    out = grade_cohort(np.arange(mp.shape[1]), mat("temperature_c"), hyp, n_vp, vpn, dev)
    return np.asarray(out["crs_max_grade"])


@pytest.mark.parametrize("blasts", [5.0, 60.0])
def test_crs_severity_does_not_depend_on_body_weight(blasts: float) -> None:
    """Issue 14 acceptance: 20 vs 70 kg, same dose per kg and marrow blast %: IL-6 and IFN-γ
    peaks within 2 % and the same maximal ASTCT grade (without management, which doses some
    drugs flat)."""
    cohort = _pair((20.0, 70.0), marrow_blasts_pct=blasts)
    res = simulate(cohort, PROD, days=21, seed=5, variability=False)
    t = res.trajectories
    il6 = t.groupby("patient_id")["il6_pg_ml"].max().to_numpy()
    ifng = t.groupby("patient_id")["ifng_pg_ml"].max().to_numpy()
    assert il6.min() > 2.0 * 3.0  # CRS-range IL-6 rise over the 3 pg/mL baseline
    assert il6[0] == pytest.approx(il6[1], rel=0.02)
    assert ifng[0] == pytest.approx(ifng[1], rel=0.02)
    g = _grades(res, cohort)
    assert g[0] == g[1]


def test_same_dose_per_kg_gives_the_same_response_across_body_weight() -> None:
    """Issue 11 acceptance: 22 vs 60 kg with otherwise identical parameters: marrow blast %,
    MRD and CAR-T per µL agree day by day (no scale artefact in expansion or killing)."""
    cohort = _pair((22.0, 60.0), marrow_blasts_pct=70.0, dose_per_kg=1e6)
    res = simulate(cohort, PROD, days=35, seed=5, variability=False)
    t = res.trajectories
    a, b = (t[t["patient_id"] == i].set_index("day") for i in (0, 1))
    car_a, car_b = a["cart_cells_per_ul"], b["cart_cells_per_ul"]
    assert car_a.max() > 10.0
    assert car_a.max() == pytest.approx(car_b.max(), rel=0.02)
    assert car_a.idxmax() == car_b.idxmax()
    for day in (7, 14, 28, 35):
        assert a.loc[day, "marrow_blast_pct"] == pytest.approx(b.loc[day, "marrow_blast_pct"],
                                                               rel=0.05, abs=1e-6)
        ma, mb = a.loc[day, "mrd_fraction"], b.loc[day, "mrd_fraction"]
        assert abs(np.log10(max(ma, 1e-12) / max(mb, 1e-12))) < 0.1, day
