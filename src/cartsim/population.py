"""Virtual patients: covariates → per-patient parameter vectors and initial states.

Inter-individual variability (IIV) is log-normal on every model parameter whose spec has
``iiv_sd > 0``. Each draw comes from the counter-based generator keyed by (root seed, patient
id, parameter stream), so a patient's parameters do not depend on which cohort, chunk or
worker it is simulated in.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri

from cartsim.engine.rng import uniform_np
from cartsim.errors import InvalidInputError, UnknownNameError
from cartsim.model.mechanism import Model
from cartsim.model.parameters import (
    ALL_PARAMS,
    MODEL_PARAMS,
    N_CLONE_FIELDS,
    N_PARAMS_BASE,
    C,
    P,
    clone_param_index,
)
from cartsim.model.state import N_CLONES, N_STATES, S
from cartsim.params import ParameterSpec
from cartsim.products import Product

DISEASES = ("b-all", "lbcl")
N_PARAMS = N_PARAMS_BASE + N_CLONES * N_CLONE_FIELDS
BLOOD_ML_PER_KG = 75.0  # assumed typical blood volume (adults 70, children 75–80 mL/kg)
LBCL_CELLS_PER_ML = 1e9  # ≈ 10⁹ tumour cells per cm³
LBCL_CAP_CELLS_REF = 1e12  # nodal carrying capacity of the 70-kg reference adult (≈ 1 L; assumed)
NOXA_LOW_PFN = 0.35  # perforin-route sensitivity of NOXA-low tumours (review B7; assumed)
DR_DEFECT_FLOOR = 0.1  # residual death-receptor sensitivity of a fully defective tumour
CD58_LOSS_SYNAPSE = 0.6  # traits.GENE_TRAIT_EFFECTS["CD58"]


@dataclass
class Cohort:
    """Per-patient covariates, each an array of shape (n,).

    ``marrow_blasts_pct`` is used for B-ALL, ``tumour_volume_ml`` for LBCL. ``dose`` is total CAR+
    cells (the product's dose rule fills it when absent). ``cns_disease`` (0–1, default 0) marks
    overt CNS/testicular involvement: it adds ``cns_overt_cells`` to the sanctuary site.
    """

    disease: str
    weight_kg: np.ndarray
    age_y: np.ndarray
    marrow_blasts_pct: np.ndarray | None = None
    tumour_volume_ml: np.ndarray | None = None
    dose: np.ndarray | None = None
    patient_id: np.ndarray | None = None
    cd19_density: np.ndarray | None = None
    cd19_negative_fraction: np.ndarray | None = None
    tp53_altered: np.ndarray | None = None
    noxa_low: np.ndarray | None = None
    cd58_loss: np.ndarray | None = None
    pdl1: np.ndarray | None = None
    dr_defect: np.ndarray | None = None
    anc0: np.ndarray | None = None
    plt0: np.ndarray | None = None
    hb0: np.ndarray | None = None
    cns_disease: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.disease not in DISEASES:
            raise UnknownNameError("disease", self.disease, DISEASES)
        self.weight_kg = np.atleast_1d(np.asarray(self.weight_kg, dtype=np.float64))
        n = self.weight_kg.shape[0]
        if self.patient_id is None:
            self.patient_id = np.arange(n, dtype=np.int64)
        self.patient_id = np.asarray(self.patient_id, dtype=np.int64)

        def arr(x: object, default: float) -> np.ndarray:
            if x is None:
                return np.full(n, default)
            a = np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).copy()
            return a

        self.age_y = arr(self.age_y, 10.0)
        if self.disease == "b-all":
            self.marrow_blasts_pct = arr(self.marrow_blasts_pct, 60.0)
        else:
            self.tumour_volume_ml = arr(self.tumour_volume_ml, 50.0)
        self.cd19_density = arr(self.cd19_density, 1.0)
        self.cd19_negative_fraction = arr(self.cd19_negative_fraction, 0.0)
        self.tp53_altered = arr(self.tp53_altered, 0.0)
        self.noxa_low = arr(self.noxa_low, 0.0)
        self.cd58_loss = arr(self.cd58_loss, 0.0)
        self.pdl1 = arr(self.pdl1, 0.0)
        self.dr_defect = arr(self.dr_defect, 0.0)
        self.anc0 = arr(self.anc0, 1500.0)
        self.plt0 = arr(self.plt0, 100e3)
        self.hb0 = arr(self.hb0, 10.0)
        self.cns_disease = arr(self.cns_disease, 0.0)
        if self.dose is not None:
            self.dose = arr(self.dose, 0.0)
        self.validate()

    @property
    def n(self) -> int:
        return int(self.weight_kg.shape[0])

    def validate(self) -> None:
        """Raise InvalidInputError naming the first covariate out of its range."""
        checks: list[tuple[str, np.ndarray | None, float, float, bool]] = [
            ("weight", self.weight_kg, 0.0, 300.0, True),
            ("age", self.age_y, 0.0, 120.0, False),
            ("marrow_blasts", self.marrow_blasts_pct, 0.0, 100.0, False),
            ("tumour_volume_ml", self.tumour_volume_ml, 0.0, 1e4, False),
            ("cd19_density", self.cd19_density, 0.0, 100.0, False),
            ("cd19_negative_fraction", self.cd19_negative_fraction, 0.0, 1.0, False),
            ("tp53_altered", self.tp53_altered, 0.0, 1.0, False),
            ("noxa_low", self.noxa_low, 0.0, 1.0, False),
            ("cd58_loss", self.cd58_loss, 0.0, 1.0, False),
            ("pdl1", self.pdl1, 0.0, 1.0, False),
            ("dr_defect", self.dr_defect, 0.0, 1.0, False),
            ("anc0", self.anc0, 0.0, 1e5, False),
            ("plt0", self.plt0, 0.0, 2e6, False),
            ("hb0", self.hb0, 2.0, 25.0, False),
            ("cns_disease", self.cns_disease, 0.0, 1.0, False),
            ("dose", self.dose, 0.0, 1e11, True),
        ]
        for name, a, lo, hi, open_lo in checks:
            if a is None:
                continue
            bad = ~np.isfinite(a) | (a > hi) | ((a <= lo) if open_lo else (a < lo))
            if bad.any():
                i = int(np.argmax(bad))
                rng = f"{'(' if open_lo else '['}{lo:g}, {hi:g}]"
                raise InvalidInputError(name, rng, float(a[i]), f"patient index {i}")


def stream_id(name: str) -> int:
    """Stable RNG stream of a named quantity (independent of parameter order)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def standard_normals(seed: int, patient_id: np.ndarray, name: str) -> np.ndarray:
    """One N(0,1) draw per patient for the named quantity, keyed by (seed, patient, name)."""
    u = uniform_np(seed, patient_id.astype(np.uint64), stream_id(name),
                   np.zeros(patient_id.shape[0], dtype=np.uint64))
    return ndtri(u)


def build(
    cohort: Cohort,
    product: Product,
    seed: int,
    variability: bool = True,
    overrides: dict[str, float] | None = None,
    model: Model | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-patient parameter matrix (n, N_PARAMS) and initial state (n, N_STATES) at day −5.

    With ``model`` (a core model plus add-on mechanisms, :func:`cartsim.model.layout.model`),
    the add-ons' parameters and states are appended after the core columns (same core values).
    """
    n = cohort.n
    p = np.empty((n, N_PARAMS))
    mult = product.construct.multipliers()

    def sample(spec: ParameterSpec) -> np.ndarray:
        v = np.full(n, spec.default)
        if overrides and spec.name in overrides:
            v[:] = spec.validate(overrides[spec.name], f"parameter {spec.name}")
        v *= mult.get(spec.name, 1.0)
        if variability and spec.iiv_sd > 0:
            v *= np.exp(spec.iiv_sd * standard_normals(seed, cohort.patient_id, spec.name))
        return v

    for i, spec in enumerate(MODEL_PARAMS):
        p[:, i] = sample(spec)
    w = cohort.weight_kg
    p[:, P.weight_kg] = w
    p[:, P.age_y] = cohort.age_y
    p[:, P.blood_ul] = BLOOD_ML_PER_KG * 1e3 * w
    p[:, P.marrow_cells] = p[:, P.marrow_cells_per_kg] * w
    p[:, P.K_N] = p[:, P.K_N_per_kg] * w
    p[:, P.B_ss] = p[:, P.B_per_kg] * w
    # body size (model/body.py): plasma volume for cytokine concentrations, and the factor
    # that scales the whole-body constants quoted for the reference adult
    p[:, P.plasma_ml] = p[:, P.plasma_ml_per_kg] * w
    p[:, P.body_scale] = w / p[:, P.ref_weight_kg]
    p[:, P.b_prog_out0] = 0.3
    p[:, P.igg0] = 700.0
    p[:, P.anc0] = cohort.anc0
    p[:, P.plt0] = cohort.plt0
    p[:, P.hb0] = cohort.hb0
    p[:, P.map0] = np.where(cohort.age_y < 12, 70.0, 85.0)
    lbcl = cohort.disease == "lbcl"
    p[:, P.disease_lbcl] = 1.0 if lbcl else 0.0
    p[:, P.cart_access] = 0.5 if lbcl else 1.0
    p[:, P.cns_disease] = cohort.cns_disease
    if lbcl:
        p[:, P.tumour_cap_cells] = LBCL_CAP_CELLS_REF * p[:, P.body_scale]
        p[:, P.r_tumour] *= 0.6  # LBCL grows slower than r/r B-ALL (Kimmel 2021 r_B range)
    else:
        p[:, P.tumour_cap_cells] = p[:, P.tumour_capacity] * p[:, P.marrow_cells]
    c = product.construct
    for t in ("CD19", "CD20", "CD22"):
        p[:, P[f"product_{t.lower()}"]] = 1.0 if t in c.targets else 0.0
    p[:, P.affinity] = c.affinity
    # clones
    cd20 = 1.0 if lbcl else 0.2  # CD20 is dim on most B-ALL blasts
    synapse = np.where(cohort.cd58_loss > 0.5, CD58_LOSS_SYNAPSE, 1.0)
    if "CD2" in c.armour:
        synapse = np.ones(n)  # CD2-co-stimulated CAR bypasses CD58 (review B11)
    for k in range(N_CLONES):
        base = clone_param_index(k, 0)
        p[:, base + C.cd19] = cohort.cd19_density if k == 0 else 0.0
        p[:, base + C.cd20] = cd20
        p[:, base + C.cd22] = 0.5
        p[:, base + C.pfn_sensitivity] = np.where(cohort.noxa_low > 0.5, NOXA_LOW_PFN, 1.0)
        p[:, base + C.dr_sensitivity] = 1.0 - (1.0 - DR_DEFECT_FLOOR) * cohort.dr_defect
        p[:, base + C.ifng_sensitivity] = 1.0
        p[:, base + C.synapse_quality] = synapse
        p[:, base + C.cd19_surface_fraction] = 1.0
        p[:, base + C.pdl1] = cohort.pdl1
        p[:, base + C.tp53_altered] = cohort.tp53_altered
        p[:, base + C.growth_mult] = 1.0
    # initial state (day −5, before lymphodepletion)
    y = np.zeros((n, N_STATES))
    if lbcl:
        tumour = cohort.tumour_volume_ml * LBCL_CELLS_PER_ML  # type: ignore[operator]
    else:
        bf = np.clip(cohort.marrow_blasts_pct / 100.0, 0.0, 0.99)  # type: ignore[operator]
        tumour = bf / (1.0 - bf) * p[:, P.marrow_cells]
    fneg = cohort.cd19_negative_fraction
    y[:, S.T0] = tumour * (1.0 - fneg)
    y[:, S.T1] = tumour * fneg
    # sanctuary (CNS/testis): occult seeding in proportion to the disease, plus overt disease
    y[:, S.TS] = (p[:, P.cns_seed_frac] * tumour * (1.0 - fneg)
                  + cohort.cns_disease * p[:, P.cns_overt_cells])
    y[:, S.N_T] = p[:, P.N0_frac] * p[:, P.K_N]
    out0 = p[:, P.b_prog_out0]
    y[:, S.B_out] = out0
    y[:, S.B_prog] = out0 * p[:, P.B_ss] / p[:, P.tau_B] * p[:, P.tau_I]
    y[:, S.B] = out0 * p[:, P.B_ss]
    y[:, S.IgG] = p[:, P.igg0]
    y[:, S.IL6] = p[:, P.il6_base]
    for s0 in ("NP", "NT1", "NT2", "NT3", "NC"):
        y[:, S[s0]] = cohort.anc0
    for s0 in ("PP", "PT1", "PT2", "PT3", "PC"):
        y[:, S[s0]] = cohort.plt0
    y[:, S.HB] = cohort.hb0
    assert p.shape[1] == N_PARAMS and len(ALL_PARAMS) == N_PARAMS_BASE
    if model is not None and model.addons:
        p = np.column_stack([p, *(sample(spec) for spec in model.addon_params())])
        y = np.column_stack([y, *(np.full(n, s0.initial) for s0 in model.addons_states())])
        assert p.shape[1] == model.n_params and y.shape[1] == model.n_states
    return p, y


def doses(cohort: Cohort, product: Product) -> np.ndarray:
    """Total CAR+ cells per patient: the cohort's own doses, else the product's dose rule."""
    if cohort.dose is not None:
        return cohort.dose
    return np.array([product.dose_rule.dose(float(w)) for w in cohort.weight_kg])
