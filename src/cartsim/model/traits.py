"""Tumour resistance traits, the gene → trait map and the killing-route kernel.

This module is the single place where a gene knockout becomes a change in how a tumour cell
dies. The patient model (:mod:`cartsim.model.system`) and the pooled-screen simulator
(:mod:`cartsim.screen`) both call :func:`route_kill_factor`, so a screen hit and a clinical
resistance phenotype come from the same mechanism (review B6–B12).

Killing by an engaged CAR-T cell is split into three routes (review B6):

* perforin/granzyme → intrinsic (mitochondrial) apoptosis, which needs NOXA (B7);
* death receptors FasL/TRAIL → extrinsic apoptosis through FADD/CASP8/BID/TNFRSF10B (B8, B9),
  the only route that also kills antigen-negative bystanders;
* the cytokine route through IFN-γ signalling (IFNGR1/2, JAK1/2, STAT1; B5).

A clone's trait vector holds one *sensitivity multiplier per route* plus modifiers of the
synapse (CD58, B11), surface antigen (CD81, SPPL3, B2/B11), PD-L1 (B12) and TP53 (B10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cartsim.params import ParameterSpec, ParameterTable

# ---- trait vector layout (one row per clone) -------------------------------------------------
PFN_SENS = 0  # perforin/granzyme-route sensitivity (1 = wild type; NOXA loss lowers it)
DR_SENS = 1  # death-receptor-route sensitivity (FADD/CASP8 loss lowers, CFLAR loss raises)
IFNG_SENS = 2  # IFN-γ-route sensitivity (IFNGR/JAK/STAT1 loss lowers)
SYNAPSE = 3  # synapse quality: scales kill and CAR-T stimulation (CD58 loss lowers)
SURFACE = 4  # fraction of CD19 reaching the surface in a recognisable form (CD81, SPPL3)
PDL1 = 5  # PD-L1 expression, 0 = none, 1 = high (suppresses and exhausts CAR-T)
TP53 = 6  # TP53 alteration, 0 or 1 (weaker apoptosis, faster growth)
N_TRAITS = 7

TRAIT_NAMES: tuple[str, ...] = (
    "pfn_sensitivity",
    "dr_sensitivity",
    "ifng_sensitivity",
    "synapse_quality",
    "cd19_surface_fraction",
    "pdl1",
    "tp53_altered",
)

WILD_TYPE = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0])

#: TP53 alteration weakens both apoptosis routes and the IFN-γ response (B10).
TRAIT_PARAMS = ParameterTable((
    ParameterSpec("tp53_pfn_factor", "fraction", 0.6, 0.0, 1.0,
                  "assumed (review B10: TP53 loss blunts CAR-T-induced apoptosis)",
                  "perforin-route sensitivity of a TP53-altered clone, relative to wild type"),
    ParameterSpec("tp53_dr_factor", "fraction", 0.8, 0.0, 1.0,
                  "assumed (review B10: TP53 loss blunts death-receptor apoptosis)",
                  "death-receptor-route sensitivity of a TP53-altered clone"),
    ParameterSpec("tp53_ifng_factor", "fraction", 0.7, 0.0, 1.0,
                  "assumed (review B10)",
                  "IFN-γ-route sensitivity of a TP53-altered clone"),
))
TP53_PFN_FACTOR = TRAIT_PARAMS["tp53_pfn_factor"].default
TP53_DR_FACTOR = TRAIT_PARAMS["tp53_dr_factor"].default
TP53_IFNG_FACTOR = TRAIT_PARAMS["tp53_ifng_factor"].default


@dataclass(frozen=True)
class RouteWeights:
    """Share of wild-type killing carried by each route in a given context (sums to 1).

    ``human_liquid``: B-ALL/NHL lines against human CD19 CAR-T; the IFN-γ route is not needed
    for killing liquid tumours (Larson 2022, review B5), and at low E:T with long co-culture
    death receptors carry most of the kill (Singh 2020: FADD/CASP8 top hits).
    ``murine_ball_invitro``: the Ramos 2023 mouse B-ALL in-vitro screen, where IFN-γ-pathway
    knockouts are strong hits.
    """

    pfn: float
    dr: float
    ifng: float

    def __post_init__(self) -> None:
        tot = self.pfn + self.dr + self.ifng
        if min(self.pfn, self.dr, self.ifng) < 0 or abs(tot - 1.0) > 1e-9:
            raise ValueError("route weights must be non-negative and sum to 1")

    def as_array(self) -> np.ndarray:
        return np.array([self.pfn, self.dr, self.ifng])


ROUTE_PRESETS: dict[str, RouteWeights] = {
    "human_liquid": RouteWeights(pfn=0.4, dr=0.6, ifng=0.0),
    "murine_ball_invitro": RouteWeights(pfn=0.04, dr=0.06, ifng=0.9),
}

# ---- gene → trait multipliers ------------------------------------------------------------------
# Each entry multiplies (or, for PDL1/TP53, sets) trait values when the gene is knocked out.
# Multipliers were chosen so that, with ``human_liquid`` weights, the kill-hazard ratio of the
# knockout reproduces the relative effect sizes proposed in shared/reference/crispr.md §5
# (assumptions there, to be calibrated against count tables).
GENE_TRAIT_EFFECTS: dict[str, dict[str, float]] = {
    "CD19": {"cd19_surface_fraction": 0.02},  # residual antigen-independent (bystander) kill
    "CD81": {"cd19_surface_fraction": 0.35},  # CD19 chaperone (B11)
    "SPPL3": {"cd19_surface_fraction": 0.4},  # glycosylation masks CD19 (B2, Heard 2022)
    "FADD": {"dr_sensitivity": 0.0},  # B9
    "CASP8": {"dr_sensitivity": 1.0 / 6.0},
    "BID": {"dr_sensitivity": 0.25},
    "TNFRSF10B": {"dr_sensitivity": 1.0 / 6.0},
    "PMAIP1": {"pfn_sensitivity": 0.0},  # NOXA (B7)
    "CD58": {"synapse_quality": 0.6},  # B11
    "IFNGR1": {"ifng_sensitivity": 0.0},  # B5
    "IFNGR2": {"ifng_sensitivity": 0.0},
    "JAK1": {"ifng_sensitivity": 0.0},
    "JAK2": {"ifng_sensitivity": 0.0},
    "STAT1": {"ifng_sensitivity": 0.0},
    "CFLAR": {"dr_sensitivity": 1.0 + 1.0 / 0.6},  # c-FLIP loss sensitises (B9)
    "TRAF2": {"dr_sensitivity": 1.0 + 0.5 / 0.6},
    "BIRC2": {"dr_sensitivity": 1.0 + 0.4 / 0.6},
    "RIPK1": {"dr_sensitivity": 1.0 + 0.3 / 0.6},
    "CD274": {"pdl1": 0.0},
    "TP53": {"tp53_altered": 1.0},
}

_SET_TRAITS = {"pdl1", "tp53_altered"}


def knockout_traits(genes: str | list[str], base: np.ndarray | None = None) -> np.ndarray:
    """Trait vector of a cell with ``genes`` knocked out (genes not in the map are neutral)."""
    t = (WILD_TYPE if base is None else np.asarray(base, dtype=np.float64)).copy()
    for g in [genes] if isinstance(genes, str) else genes:
        for trait, value in GENE_TRAIT_EFFECTS.get(g.upper(), {}).items():
            i = TRAIT_NAMES.index(trait)
            t[i] = value if trait in _SET_TRAITS else t[i] * value
    return t


def route_kill_factor(
    pfn_sens: Any,
    dr_sens: Any,
    ifng_sens: Any,
    synapse: Any,
    tp53: Any,
    w_pfn: float,
    w_dr: float,
    w_ifng: float,
    mito: Any = 0.0,
) -> Any:
    """Kill hazard of an *engaged* target relative to a wild-type engaged target.

    ``mito`` (0–1, default 0 = none): mitochondrial priming by a BH3 mimetic, which restores
    that share of the intrinsic (perforin-route) apoptosis the clone has lost, whether to NOXA
    loss or to a TP53 alteration (:mod:`cartsim.model.salvage_drugs`).

    The one route-kill function of the project: numba inlines it into the compiled right-hand
    side of the patient model (scalars), and :func:`kill_multiplier` calls it on arrays for the
    screen simulator. Pure arithmetic (``min(tp53, 1)`` written with ``abs``), so both work.
    Antigen enters separately, through engagement.
    """
    tp = 0.5 * (tp53 + 1.0 - abs(tp53 - 1.0))  # min(tp53, 1) for scalars and arrays
    f_pfn = pfn_sens * (1.0 - tp * (1.0 - TP53_PFN_FACTOR))
    f_pfn = f_pfn + mito * (1.0 - f_pfn)
    f_dr = dr_sens * (1.0 - tp * (1.0 - TP53_DR_FACTOR))
    f_if = ifng_sens * (1.0 - tp * (1.0 - TP53_IFNG_FACTOR))
    return synapse * (w_pfn * f_pfn + w_dr * f_dr + w_ifng * f_if)


def kill_multiplier(traits: np.ndarray, weights: RouteWeights) -> np.ndarray:
    """:func:`route_kill_factor` × surface-antigen fraction over rows of ``traits``.

    For a saturating engagement in its low-density regime, engagement is proportional to surface
    antigen, so the screen's per-gene kill-hazard multiplier ``h_g`` is this product.
    """
    t = np.atleast_2d(np.asarray(traits, dtype=np.float64))
    f = route_kill_factor(t[:, PFN_SENS], t[:, DR_SENS], t[:, IFNG_SENS], t[:, SYNAPSE],
                          t[:, TP53], weights.pfn, weights.dr, weights.ifng)
    return np.asarray(f * t[:, SURFACE])


def gene_kill_multiplier(gene: str, preset: str = "human_liquid") -> float:
    """The kill-hazard multiplier h_g of a single-gene knockout (1 = neutral)."""
    w = ROUTE_PRESETS[preset]
    return float(kill_multiplier(knockout_traits(gene), w)[0])


# ---- patient covariates → trait vector ---------------------------------------------------------
#: How a patient-level tumour covariate (a measured phenotype in [0, 1], 0 = neutral) sets the
#: trait vector of the patient's tumour clones. Each phenotype is a *partial* version of a
#: screen knockout of :data:`GENE_TRAIT_EFFECTS` and acts through the same trait (so through
#: :func:`route_kill_factor`); value 1 gives the factor below, values in between interpolate
#: linearly, and 0 is the wild type exactly.
PATIENT_TRAIT_PARAMS = ParameterTable((
    ParameterSpec("noxa_low_pfn", "fraction", 0.1, 0.0, 1.0,
                  "assumed: NOXA-low by IHC (review B7, < 4) treated as near the PMAIP1 knockout "
                  "of the screens (perforin route 0)",
                  "perforin-route sensitivity of a NOXA-low tumour (noxa_low = 1)"),
    ParameterSpec("dr_defect_floor", "fraction", 0.1, 0.0, 1.0,
                  "assumed (review B9: low death-receptor score; FADD knockout = 0)",
                  "residual death-receptor sensitivity of a fully defective tumour"),
    ParameterSpec("ifng_defect_sens", "fraction", 0.0, 0.0, 1.0,
                  "GENE_TRAIT_EFFECTS IFNGR1/2, JAK1/2, STAT1 (review B5)",
                  "IFN-γ-route sensitivity of a tumour with a defective IFN-γ pathway"),
    ParameterSpec("cd58_loss_synapse", "fraction", 0.6, 0.0, 1.0,
                  "GENE_TRAIT_EFFECTS['CD58'] (review B11)",
                  "synapse quality of a CD58-lost tumour (CD2-co-stimulated CARs bypass it)"),
    ParameterSpec("cd19_surface_loss_fraction", "fraction", 0.35, 0.0, 1.0,
                  "GENE_TRAIT_EFFECTS['CD81'] (review B11; SPPL3 loss 0.4, B2)",
                  "fraction of CD19 reaching the surface in a recognisable form when the CD19 "
                  "chaperone/glycosylation route is lost (cd19_surface_loss = 1)"),
))
#: trait covariate → (trait it sets, parameter holding its value at covariate = 1, or None
#: when the covariate value *is* the trait value)
PATIENT_TRAIT_COVARIATES: dict[str, tuple[str, str | None]] = {
    "noxa_low": ("pfn_sensitivity", "noxa_low_pfn"),
    "dr_defect": ("dr_sensitivity", "dr_defect_floor"),
    "ifng_defect": ("ifng_sensitivity", "ifng_defect_sens"),
    "cd58_loss": ("synapse_quality", "cd58_loss_synapse"),
    "cd19_surface_loss": ("cd19_surface_fraction", "cd19_surface_loss_fraction"),
    "pdl1": ("pdl1", None),
    "tp53_altered": ("tp53_altered", None),
}


def patient_traits(covariates: dict[str, np.ndarray], n: int, *, cd2_armour: bool = False,
                   params: dict[str, float] | None = None) -> np.ndarray:
    """Trait matrix (n, N_TRAITS) of a cohort's tumour clones from its trait covariates.

    Missing covariates are neutral; all covariates at 0 give :data:`WILD_TYPE` exactly. A CAR
    with CD2 co-stimulation engages CD2 itself and bypasses tumour CD58 loss (review B11).
    """
    q = PATIENT_TRAIT_PARAMS.resolve(params or {})
    t = np.tile(WILD_TYPE, (n, 1))
    for cov, (trait, pname) in PATIENT_TRAIT_COVARIATES.items():
        v = covariates.get(cov)
        if v is None:
            continue
        v = np.broadcast_to(np.asarray(v, dtype=np.float64), (n,))
        i = TRAIT_NAMES.index(trait)
        if pname is None:
            t[:, i] = v
        elif not (cov == "cd58_loss" and cd2_armour):
            t[:, i] = 1.0 - v * (1.0 - q[pname])
    return t
