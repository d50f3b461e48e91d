"""What a lab or bedside would report, computed from the state (vectorised over patients).

All functions take ``y`` (n, N_STATES) and ``p`` (n, N_PARAMS) and return arrays of shape (n,).
Units are those of clinical reports: cells/µL, copies/µg genomic DNA, %, pg/mL, °C, mmHg.
Normal ranges of the inflammation readouts (:data:`NORMAL_RANGES`): IL-6 < 7 pg/mL, IFN-γ
< 15 pg/mL, IL-1β < 5 pg/mL, serum NfL < 20 pg/mL (adults; age-dependent), temperature
36.1–37.9 °C, ICE 10 points.
``tumour_cells`` is whole-body disease (main site + sanctuary); blast %, MRD, SPD and the CD19-
negative fraction describe the main disease site (marrow aspirate for B-ALL, nodes for LBCL);
``cns_tumour_cells`` is the sanctuary (CNS/testis) load.
"""

from __future__ import annotations

import numpy as np

from cartsim.model.burden import blast_fraction_array
from cartsim.model.parameters import N_PARAMS_BASE, C, P
from cartsim.model.state import N_CLONES, S
from cartsim.params import ParameterSpec, ParameterTable

#: The readout layer's constants (units, defaults, provenance; values unchanged).
READOUT_PARAMS = ParameterTable((
    ParameterSpec("t_blood_fraction", "fraction", 0.01, 0.001, 0.1,
                  "assumed (≈ 2 % of whole-body lymphocytes circulate)",
                  "share of whole-body normal T cells in blood"),
    ParameterSpec("b_blood_fraction", "fraction", 0.05, 0.001, 0.5, "assumed",
                  "share of whole-body mature B cells in blood"),
    ParameterSpec("copies_per_ug_per_cell_fraction", "copies/µg", 1.5e5, 1e4, 1e6,
                  "≈ 6.6 pg DNA per diploid cell (shared/reference/models.md §3)",
                  "genome copies per µg DNA when every nucleated blood cell carries one copy"),
    ParameterSpec("vcn", "copies/cell", 0.3, 0.01, 10.0,
                  "calibrated to Stein 2019 Cmax ≈ 2.4e4 copies/µg",
                  "detected vector copies per CAR+ cell"),
    ParameterSpec("cd19_negative_density", "relative density", 0.05, 0.0, 1.0,
                  "assumed (below flow cytometry's detection)",
                  "clones whose surface CD19 is below this count as CD19-negative"),
    ParameterSpec("spd_cm2_per_ml23", "cm²/mL^(2/3)", 1.5, 0.1, 10.0,
                  "assumed (roughly spherical set of nodes)",
                  "SPD per volume^(2/3) of nodal disease"),
    ParameterSpec("temp_base_c", "°C", 36.8, 35.0, 38.0, "normal core temperature",
                  "afebrile core temperature"),
    ParameterSpec("temp_rise_max_c", "°C", 3.4, 1.0, 6.0,
                  "assumed (≈ 40.2 °C ceiling of CRS fevers)",
                  "maximal cytokine-driven temperature rise"),
    ParameterSpec("w_ifng_fever", "–", 0.3, 0.0, 5.0, "assumed",
                  "pyrogenic weight of the IFN-γ signal relative to IL-6"),
    ParameterSpec("w_il1_fever", "–", 3.0, 0.0, 20.0,
                  "assumed (IL-1β is the most potent endogenous pyrogen, active at a few pg/mL)",
                  "pyrogenic weight of the IL-1 signal relative to IL-6"),
    ParameterSpec("spo2_base_pct", "%", 98.0, 90.0, 100.0, "normal room-air SpO₂",
                  "room-air SpO₂ without capillary leak"),
    ParameterSpec("ice_max", "points", 10.0, 10.0, 10.0, "ASTCT ICE score (Lee 2019)",
                  "ICE score scale; falls with encephalopathy as 10·(1 − E²/(E² + 1))"),
    ParameterSpec("mono_per_anc", "–", 0.1, 0.0, 1.0, "assumed",
                  "monocytes per neutrophil in the white-cell count"),
    ParameterSpec("mono_base_per_ul", "cells/µL", 100.0, 0.0, 1000.0, "assumed",
                  "monocytes independent of the neutrophil count"),
))
_R = READOUT_PARAMS.defaults()

#: Normal (healthy adult) range of each inflammation/neurological readout: (low, high, unit).
NORMAL_RANGES: dict[str, tuple[float, float, str]] = {
    "il6_pg_ml": (0.0, 7.0, "pg/mL"),
    "ifng_pg_ml": (0.0, 15.0, "pg/mL"),
    "il1_pg_ml": (0.0, 5.0, "pg/mL"),
    "nfl_pg_ml": (0.0, 20.0, "pg/mL"),
    "temperature_c": (36.1, 37.9, "°C"),
    "ice_score": (10.0, 10.0, "points"),
}
T_BLOOD_FRACTION = _R["t_blood_fraction"]
B_BLOOD_FRACTION = _R["b_blood_fraction"]
COPIES_PER_UG_PER_CELL_FRACTION = _R["copies_per_ug_per_cell_fraction"]
VCN = _R["vcn"]
CD19_NEGATIVE_DENSITY = _R["cd19_negative_density"]
SPD_CM2_PER_ML23 = _R["spd_cm2_per_ml23"]
# Physiology layer (assumed shapes; the rates and half-saturations are model ParameterSpecs):
TEMP_BASE_C = _R["temp_base_c"]
TEMP_RISE_MAX_C = _R["temp_rise_max_c"]
W_IFNG_FEVER = _R["w_ifng_fever"]
W_IL1_FEVER = _R["w_il1_fever"]
SPO2_BASE_PCT = _R["spo2_base_pct"]
ICE_MAX = _R["ice_max"]
MONO_PER_ANC = _R["mono_per_anc"]
MONO_BASE_PER_UL = _R["mono_base_per_ul"]


def _clone_field(p: np.ndarray, clone: int, field: int) -> np.ndarray:
    return p[:, N_PARAMS_BASE + clone * len(C) + field]


def spo2_fall(en: np.ndarray, drop_max: np.ndarray, hill: np.ndarray,
              k_ox: np.ndarray) -> np.ndarray:
    """Room-air SpO₂ fall (points) at endothelial activation ``en``:
    drop_max · en^h / (en^h + K_ox^h). Exponent 3 is computed as en·en·en, as before the
    exponent became a parameter, so the old shape comes back bit for bit."""
    three = hill == 3.0
    en_h = np.where(three, en**3, en ** np.where(three, 1.0, hill))
    k_h = np.where(three, k_ox**3, k_ox ** np.where(three, 1.0, hill))
    return drop_max * en_h / (en_h + k_h)


def cart_blood(y: np.ndarray) -> np.ndarray:
    return y[:, S.M_b] + y[:, S.E_b] + y[:, S.X_b]


def effector_fraction(y: np.ndarray) -> np.ndarray:
    """Effectors' share of the CAR-T in blood; NaN without CAR-T. Each population is
    clipped at zero first, so that a population a hair below zero (the continuous output
    may leave one there) cannot take the share outside [0, 1]."""
    e = np.maximum(y[:, S.E_b], 0.0)
    tot = e + np.maximum(y[:, S.M_b], 0.0) + np.maximum(y[:, S.X_b], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0.0, e / tot, np.nan)


#: The names of :func:`compute`'s columns, in its order (a test keeps them equal).
READOUT_NAMES: tuple[str, ...] = (
    "cart_cells_per_ul", "transgene_copies_per_ug", "cart_effector_fraction", "tumour_cells",
    "cns_tumour_cells", "marrow_blast_pct", "mrd_fraction", "spd_cm2",
    "cd19_negative_tumour_fraction", "lineage_switch_fraction", "b_cells_per_ul",
    "t_cells_per_ul", "igg_mg_dl",
    "il6_pg_ml", "ifng_pg_ml", "temperature_c", "map_mmhg", "spo2_pct", "encephalopathy",
    "ice_score", "il1_pg_ml", "nfl_pg_ml", "anc_per_ul", "platelets_per_ul", "hemoglobin_g_dl",
    "wbc_per_ul",
)


def compute(y: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """All daily readouts as named columns."""
    bl = p[:, P.blood_ul]
    car_ul = np.maximum(cart_blood(y), 0.0) / bl
    b_ul = np.maximum(y[:, S.B], 0.0) * B_BLOOD_FRACTION / bl
    t_ul = np.maximum(y[:, S.N_T], 0.0) * T_BLOOD_FRACTION / bl
    anc = np.maximum(y[:, S.NC], 0.0)
    mono = MONO_PER_ANC * anc + MONO_BASE_PER_UL
    wbc = anc + mono + t_ul + b_ul + car_ul
    copies = COPIES_PER_UG_PER_CELL_FRACTION * VCN * car_ul / wbc
    clones = np.maximum(y[:, [S.T0 + c for c in range(N_CLONES)]], 0.0)
    site = clones.sum(axis=1)  # marrow (B-ALL) or nodal (LBCL) disease
    cns = np.maximum(y[:, S.TS], 0.0)
    tumour = site + cns
    neg = np.zeros_like(tumour)
    for c in range(N_CLONES):
        surf = _clone_field(p, c, C.cd19) * _clone_field(p, c, C.cd19_surface_fraction)
        neg += np.where(surf < CD19_NEGATIVE_DENSITY, clones[:, c], 0.0)
    lbcl = p[:, P.disease_lbcl] > 0.5
    frac = blast_fraction_array(site, p[:, P.marrow_cells], p[:, P.ball_packing])
    blast_pct = np.where(lbcl, np.nan, 100.0 * frac)
    mrd = np.where(lbcl, np.nan, frac)
    # the lineage-switched (myeloid) share: clone 2 of a patient drawn to hold one
    # (population.build sets lineage_switched); a CD19-negative share, never a B-lineage one
    switched = np.where(p[:, P.lineage_switched] > 0.5, clones[:, 2], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        neg_frac = np.where(site >= 1.0, neg / site, np.nan)
        switch_frac = np.where(site >= 1.0, switched / site, np.nan)
    vol_ml = site / 1e9
    spd = np.where(lbcl, SPD_CM2_PER_ML23 * vol_ml ** (2.0 / 3.0), np.nan)
    il6 = np.maximum(y[:, S.IL6], 0.0)
    ifng = np.maximum(y[:, S.IFNG], 0.0)
    toci = np.maximum(y[:, S.TOCI], 0.0)
    silt = np.maximum(y[:, S.SILT], 0.0)
    sig = il6 * (1 - toci / (toci + p[:, P.toci_ec50])) * (1 - silt / (silt + p[:, P.silt_ec50]))
    il1 = np.maximum(y[:, S.IL1], 0.0)
    x = (sig + W_IFNG_FEVER * ifng + W_IL1_FEVER * il1) / p[:, P.K_fever]
    x2 = np.minimum(x, 1e100) ** 2  # saturating Hill term; the cap only avoids overflow
    temp = TEMP_BASE_C + TEMP_RISE_MAX_C * x2 / (1.0 + x2)
    en = np.maximum(y[:, S.EN], 0.0)
    map_ = p[:, P.map0] * (1.0 - p[:, P.map_drop] * en**2 / (en**2 + p[:, P.K_map] ** 2))
    spo2 = SPO2_BASE_PCT - spo2_fall(en, p[:, P.spo2_drop_max], p[:, P.spo2_hill], p[:, P.K_ox])
    enc = np.maximum(y[:, S.ENC], 0.0)
    ice = np.rint(ICE_MAX * (1.0 - enc**2 / (enc**2 + 1.0)))
    nfl = np.maximum(y[:, S.NFL], 0.0)
    return {
        "cart_cells_per_ul": car_ul,
        "transgene_copies_per_ug": copies,
        "cart_effector_fraction": effector_fraction(y),
        "tumour_cells": tumour,
        "cns_tumour_cells": cns,
        "marrow_blast_pct": blast_pct,
        "mrd_fraction": mrd,
        "spd_cm2": spd,
        "cd19_negative_tumour_fraction": neg_frac,
        "lineage_switch_fraction": switch_frac,
        "b_cells_per_ul": b_ul,
        "t_cells_per_ul": t_ul,
        "igg_mg_dl": np.maximum(y[:, S.IgG], 0.0),
        "il6_pg_ml": il6,
        "ifng_pg_ml": ifng,
        "temperature_c": temp,
        "map_mmhg": map_,
        "spo2_pct": spo2,
        "encephalopathy": enc,
        "ice_score": ice,
        "il1_pg_ml": il1,
        "nfl_pg_ml": nfl,
        "anc_per_ul": anc,
        "platelets_per_ul": np.maximum(y[:, S.PC], 0.0) + np.maximum(y[:, S.PTX], 0.0),
        "hemoglobin_g_dl": np.maximum(y[:, S.HB], 0.0),
        "wbc_per_ul": wbc,
    }
