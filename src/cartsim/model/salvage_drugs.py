"""Salvage drugs given with or after CAR-T (issue 11 item 5), each an add-on mechanism.

Every drug here is a one-compartment amount ``A`` (in the dose route's unit, in the body) that
a schedule item raises by each dose (a jump between days) and that decays with the drug's
elimination half-life, dA/dt = −ln 2 / t½ · A. Its effect is an Emax function of the amount,
E = Emax · A / (A + EC50 · body_scale): EC50 is quoted as an amount for the 70-kg reference
adult and scaled by weight, so exposure is amount over a distribution volume proportional to
weight (as the supportive drugs of :mod:`cartsim.model.drugs`). Where the pharmacodynamic
effect outlasts the plasma exposure (gene induction, covalent target binding, surface-antigen
turnover), an effect compartment ``X`` follows E with a first-order turnover k_e0:
dX/dt = k_e0 · (E − X) (Sheiner's effect-compartment model).

Each drug acts on one named quantity of the core model that is neutral when no drug provides
it, so a model without the add-on is exactly the core model (bit for bit; tests):

========================  ======================  ===============================================
dose route (add-on)       quantity (consumer)     where it acts
========================  ======================  ===============================================
``hdac_inhibitor``        ``noxa_induction``      restores that share of a clone's lost
                          (killing)               perforin-route sensitivity (NOXA; review B7)
``bh3_mimetic``           ``mito_priming``        restores that share of a clone's lost intrinsic
                          (killing)               apoptosis, NOXA loss and TP53 alike (MCL1/BCL-2)
``anti_pd1``              ``pd1_blockade``        removes that share of PD-L1 → PD-1 suppression
                          (killing)               of kill/proliferation and of its exhaustion (B12)
``dasatinib``             ``cart_pause``          blocks that share of CAR signalling: stimulation
                          (killing)               (so proliferation, recall, exhaustion, IFN-γ,
                                                  myeloid contact) and killing (so kill-driven IL-6)
``btk_inhibitor``         ``tcell_fitness``       × antigen-driven proliferation, ÷ exhaustion
                          (cart)
``bryostatin``            ``cd22_upregulation``   × the tumour clones' CD22 density (not normal
                          (killing)               B cells); acts only for a CD22-recognising CAR
========================  ======================  ===============================================

A γ-secretase inhibitor (raises BCMA on myeloma cells) has no target here: the model has no
BCMA antigen and no myeloma, so it is not implemented.

Effects not modelled: the drugs' own antitumour activity (venetoclax and ibrutinib kill
lymphoma cells on their own), their toxicities (venetoclax tumour lysis and cytopenias,
dasatinib's effect on host T/NK cells), and any drug–drug interaction.
"""

from __future__ import annotations

from math import log

import numba
import numpy as np

from cartsim.model.mechanism import DoseRoute, Kernel, Mechanism, StateSpec, unbound
from cartsim.model.mechanism import param as _p

S = unbound("S")  # state layout, bound by the composition (add-on: per model)
P = unbound("P")  # parameter layout, bound by the composition (add-on: per model)
LN2 = log(2.0)

_REF = "(70-kg reference; × body_scale)"

# ---- HDAC inhibitor: NOXA induction (review B7) ----------------------------------------------
HDACI_PARAMS = (
    _p("hdaci_half_life", "d", 2.0 / 24.0, 0.005, 10.0,
       "vorinostat label (Zolinza USPI: mean terminal t½ ≈ 2 h after oral dosing)",
       "HDAC-inhibitor elimination half-life", 0.2, "drug"),
    _p("hdaci_ec50", f"mg {_REF}", 100.0, 0.01, 1e5,
       "assumed, order of magnitude (a quarter of the 400 mg daily vorinostat dose)",
       "HDAC-inhibitor amount in the body for half-maximal NOXA induction", 0.0, "drug"),
    _p("hdaci_emax", "–", 0.8, 0.0, 1.0,
       "assumed size; direction: Yan 2022 Signal Transduct Target Ther 7:98 (HDAC inhibitors "
       "raise NOXA and 'dramatically' sensitise NOXA-low B-cell lines to CAR-T in vitro and "
       "in vivo; review B7)",
       "largest share of a clone's lost perforin-route sensitivity restored by NOXA "
       "induction; 0 = no effect (the off switch)", 0.0, "drug"),
    _p("hdaci_ke0", "1/d", 0.5, 0.01, 100.0,
       "assumed, order of magnitude (NOXA induction needs histone acetylation and "
       "transcription and outlasts a 2-h plasma exposure)",
       "turnover rate of the NOXA-induction effect compartment", 0.0, "drug"),
)


@numba.njit(inline="always")
def hdaci(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> float:
    """HDAC-inhibitor elimination and NOXA induction; returns ``noxa_induction`` (0–1)."""
    a = max(y[S.HDACI], 0.0)
    dy[S.HDACI] = -LN2 / p[P.hdaci_half_life] * y[S.HDACI]
    e = p[P.hdaci_emax] * a / (a + p[P.hdaci_ec50] * p[P.body_scale])
    dy[S.NOXA_IND] = p[P.hdaci_ke0] * (e - y[S.NOXA_IND])
    return min(max(y[S.NOXA_IND], 0.0), 1.0)


HDAC_INHIBITOR = Mechanism(
    name="hdac_inhibitor",
    module=__name__,
    summary="HDAC inhibitor: one-compartment PK, NOXA induction restores perforin-route kill",
    states=(StateSpec("HDACI", "mg", "HDAC inhibitor amount in the body"),
            StateSpec("NOXA_IND", "–", "NOXA induction by the HDAC inhibitor (effect "
                      "compartment, share of lost perforin-route sensitivity restored)")),
    params=HDACI_PARAMS,
    kernels=(Kernel(hdaci, provides=("noxa_induction",)),),
    doses=(DoseRoute("hdac_inhibitor", "HDACI", "mg",
                     "HDAC inhibitor (vorinostat-like) oral dose"),),
)

# ---- BH3 mimetic (MCL1/BCL-2 inhibitor, venetoclax-like): mitochondrial priming ------------
BH3_PARAMS = (
    _p("bh3_half_life", "d", 26.0 / 24.0, 0.01, 20.0,
       "venetoclax label (Venclexta USPI: terminal t½ ≈ 26 h)",
       "BH3-mimetic elimination half-life", 0.2, "drug"),
    _p("bh3_ec50", f"mg {_REF}", 200.0, 0.01, 1e5,
       "assumed, order of magnitude (half the 400 mg daily venetoclax dose)",
       "BH3-mimetic amount in the body for half-maximal mitochondrial priming", 0.0, "drug"),
    _p("bh3_emax", "–", 0.6, 0.0, 1.0,
       "assumed, order of magnitude; direction: BH3 mimetics lower the apoptotic threshold "
       "and raise cytotoxic T-cell killing through the mitochondrial pathway (Saxena/Yee "
       "2024 preprint, AML; MCL1 is the protein NOXA neutralises, so an MCL1 inhibitor "
       "substitutes for lost NOXA)",
       "largest share of a clone's lost intrinsic (perforin-route) apoptosis, from NOXA loss "
       "or a TP53 alteration, restored; 0 = no effect (the off switch)", 0.0, "drug"),
)


@numba.njit(inline="always")
def bh3(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> float:
    """BH3-mimetic elimination; returns ``mito_priming`` (0–1)."""
    a = max(y[S.BH3M], 0.0)
    dy[S.BH3M] = -LN2 / p[P.bh3_half_life] * y[S.BH3M]
    return p[P.bh3_emax] * a / (a + p[P.bh3_ec50] * p[P.body_scale])


BH3_MIMETIC = Mechanism(
    name="bh3_mimetic",
    module=__name__,
    summary="MCL1/BCL-2 inhibitor (BH3 mimetic): one-compartment PK, mitochondrial priming",
    states=(StateSpec("BH3M", "mg", "BH3 mimetic (MCL1/BCL-2 inhibitor) amount in the body"),),
    params=BH3_PARAMS,
    kernels=(Kernel(bh3, provides=("mito_priming",)),),
    doses=(DoseRoute("bh3_mimetic", "BH3M", "mg",
                     "BH3 mimetic (venetoclax-like MCL1/BCL-2 inhibitor) oral dose"),),
)

# ---- anti-PD-1 (pembrolizumab-like): relieves PD-L1 suppression (review B12) -----------------
PD1_PARAMS = (
    _p("pd1_half_life", "d", 22.0, 0.5, 100.0,
       "pembrolizumab label (Keytruda USPI: terminal t½ ≈ 22 d)",
       "anti-PD-1 antibody elimination half-life", 0.3, "drug"),
    _p("pd1_ec50", f"mg {_REF}", 5.0, 1e-3, 1e4,
       "assumed, order of magnitude (PD-1 receptor occupancy is near-saturated at the "
       "200 mg every-3-weeks dose)",
       "anti-PD-1 amount in the body for half-maximal PD-1 blockade", 0.0, "drug"),
    _p("pd1_emax", "–", 0.9, 0.0, 1.0,
       "assumed size; direction: review B12 (PD-L1/PD-1 suppress CAR-T; anti-PD-1 salvage "
       "3/5 responded); Chong 2022 Blood 139:1026 (pembrolizumab after CD19 CAR-T failure: "
       "best ORR 3/12, more CAR-T activation and proliferation, less exhaustion in "
       "responders)",
       "largest share of PD-L1 → PD-1 suppression (kill, proliferation signal) and of its "
       "exhaustion removed; 0 = no effect (the off switch)", 0.0, "drug"),
)


@numba.njit(inline="always")
def pd1(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> float:
    """Anti-PD-1 elimination; returns ``pd1_blockade`` (0–1)."""
    a = max(y[S.APD1], 0.0)
    dy[S.APD1] = -LN2 / p[P.pd1_half_life] * y[S.APD1]
    return p[P.pd1_emax] * a / (a + p[P.pd1_ec50] * p[P.body_scale])


ANTI_PD1 = Mechanism(
    name="anti_pd1",
    module=__name__,
    summary="anti-PD-1 antibody: one-compartment PK, relieves PD-L1 suppression of CAR-T",
    states=(StateSpec("APD1", "mg", "anti-PD-1 antibody amount in the body"),),
    params=PD1_PARAMS,
    kernels=(Kernel(pd1, provides=("pd1_blockade",)),),
    doses=(DoseRoute("anti_pd1", "APD1", "mg", "anti-PD-1 antibody (pembrolizumab-like) IV "
                     "dose"),),
)

# ---- dasatinib: a reversible pause of CAR signalling -----------------------------------------
DASA_PARAMS = (
    _p("dasa_half_life", "d", 4.0 / 24.0, 0.005, 5.0,
       "dasatinib label (Sprycel USPI: terminal t½ 3–5 h)",
       "dasatinib elimination half-life", 0.2, "drug"),
    _p("dasa_ec50", f"mg {_REF}", 25.0, 0.01, 1e4,
       "assumed, order of magnitude: ≈ 20 nM (10 ng/mL) in the ≈ 2500 L apparent volume of "
       "the Sprycel label; Mestermann 2019 Sci Transl Med 11:eaau5907 titrate partial to "
       "complete inhibition of CAR-T function over tens of nM",
       "dasatinib amount in the body for half-maximal blockade of CAR signalling", 0.0,
       "drug"),
    _p("dasa_imax", "–", 1.0, 0.0, 1.0,
       "Mestermann 2019 Sci Transl Med 11:eaau5907 (dasatinib blocks LCK, so CD3ζ/ZAP70 "
       "phosphorylation: complete, immediate and fully reversible halt of CAR-T lysis, "
       "cytokine production and proliferation; protects mice from fatal CRS)",
       "largest share of CAR signalling (stimulation and killing) blocked; 0 = no effect "
       "(the off switch)", 0.0, "drug"),
)


@numba.njit(inline="always")
def dasa(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> float:
    """Dasatinib elimination; returns ``cart_pause`` (0–1): immediate and reversible."""
    a = max(y[S.DASA], 0.0)
    dy[S.DASA] = -LN2 / p[P.dasa_half_life] * y[S.DASA]
    return p[P.dasa_imax] * a / (a + p[P.dasa_ec50] * p[P.body_scale])


DASATINIB = Mechanism(
    name="dasatinib",
    module=__name__,
    summary="dasatinib: one-compartment PK, a reversible pause of CAR signalling",
    states=(StateSpec("DASA", "mg", "dasatinib amount in the body"),),
    params=DASA_PARAMS,
    kernels=(Kernel(dasa, provides=("cart_pause",)),),
    doses=(DoseRoute("dasatinib", "DASA", "mg", "dasatinib oral dose"),),
)

# ---- BTK inhibitor (ibrutinib): T-cell fitness -----------------------------------------------
BTKI_PARAMS = (
    _p("btki_half_life", "d", 5.0 / 24.0, 0.005, 5.0,
       "ibrutinib label (Imbruvica USPI: t½ 4–6 h)",
       "BTK-inhibitor elimination half-life", 0.2, "drug"),
    _p("btki_ec50", f"mg {_REF}", 50.0, 0.01, 1e5,
       "assumed, order of magnitude (an eighth of the 420 mg daily ibrutinib dose; binding "
       "to BTK/ITK is covalent, so the effect compartment carries it between doses)",
       "BTK-inhibitor amount in the body for half-maximal effect on T-cell fitness", 0.0,
       "drug"),
    _p("btki_emax", "–", 0.5, 0.0, 5.0,
       "assumed, order of magnitude; direction: Fraietta 2016 Blood 127:1117 (≥ 5 cycles of "
       "ibrutinib improved CTL019 expansion in CLL, with less PD-1 on T cells; concurrent "
       "ibrutinib improved CAR-T engraftment and tumour clearance in xenografts)",
       "largest relative gain of T-cell fitness: proliferation × (1 + x), exhaustion ÷ "
       "(1 + x); 0 = no effect (the off switch)", 0.0, "drug"),
    _p("btki_ke0", "1/d", 0.05, 0.001, 10.0,
       "assumed, order of magnitude (Fraietta 2016: the T-cell benefit builds over months "
       "of therapy; t½ ≈ 2 weeks)",
       "turnover rate of the T-cell-fitness effect compartment", 0.0, "drug"),
)


@numba.njit(inline="always")
def btki(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> float:
    """BTK-inhibitor elimination and T-cell fitness; returns ``tcell_fitness`` (≥ 1)."""
    a = max(y[S.BTKI], 0.0)
    dy[S.BTKI] = -LN2 / p[P.btki_half_life] * y[S.BTKI]
    e = p[P.btki_emax] * a / (a + p[P.btki_ec50] * p[P.body_scale])
    dy[S.TFIT] = p[P.btki_ke0] * (e - y[S.TFIT])
    return 1.0 + max(y[S.TFIT], 0.0)


BTK_INHIBITOR = Mechanism(
    name="btk_inhibitor",
    module=__name__,
    summary="BTK inhibitor (ibrutinib-like): one-compartment PK, CAR-T fitness",
    states=(StateSpec("BTKI", "mg", "BTK inhibitor amount in the body"),
            StateSpec("TFIT", "–", "T-cell fitness gain from the BTK inhibitor (effect "
                      "compartment)")),
    params=BTKI_PARAMS,
    kernels=(Kernel(btki, provides=("tcell_fitness",)),),
    doses=(DoseRoute("btk_inhibitor", "BTKI", "mg", "BTK inhibitor (ibrutinib-like) oral "
                     "dose"),),
)

# ---- bryostatin-1: CD22 up-regulation --------------------------------------------------------
BRYO_PARAMS = (
    _p("bryo_half_life", "d", 1.0, 0.01, 20.0,
       "assumed, order of magnitude (no plasma half-life found with the search tool)",
       "bryostatin elimination half-life", 0.2, "drug"),
    _p("bryo_ec50", f"µg {_REF}", 10.0, 1e-4, 1e4,
       "assumed, order of magnitude (about a fifth of a 25–50 µg/m² adult dose)",
       "bryostatin amount in the body for half-maximal CD22 up-regulation", 0.0, "drug"),
    _p("bryo_emax", "–", 1.0, 0.0, 10.0,
       "assumed size (a doubling); direction: Ramakrishna 2019 Clin Cancer Res 25:5329 "
       "(bryostatin-1 raises CD22 on leukaemia and lymphoma lines for a week after one "
       "exposure and improves CD22 CAR-T function and persistence); Frontiers Immunol 2022 "
       "13:825364 (no change of CD22 on normal B cells)",
       "largest relative rise of the tumour clones' CD22 density: × (1 + x); 0 = no effect "
       "(the off switch)", 0.0, "drug"),
    _p("bryo_ke0", "1/d", 0.15, 0.001, 10.0,
       "assumed from Ramakrishna 2019 (CD22 stays up for about a week after a single "
       "exposure: effect t½ ≈ 4.6 d)",
       "turnover rate of the CD22 up-regulation effect compartment", 0.0, "drug"),
)


@numba.njit(inline="always")
def bryo(y: np.ndarray, p: np.ndarray, dy: np.ndarray) -> float:
    """Bryostatin elimination and CD22 up-regulation; returns ``cd22_upregulation`` (≥ 1)."""
    a = max(y[S.BRYO], 0.0)
    dy[S.BRYO] = -LN2 / p[P.bryo_half_life] * y[S.BRYO]
    e = p[P.bryo_emax] * a / (a + p[P.bryo_ec50] * p[P.body_scale])
    dy[S.CD22UP] = p[P.bryo_ke0] * (e - y[S.CD22UP])
    return 1.0 + max(y[S.CD22UP], 0.0)


BRYOSTATIN = Mechanism(
    name="bryostatin",
    module=__name__,
    summary="bryostatin-1: one-compartment PK, raises tumour CD22 density",
    states=(StateSpec("BRYO", "µg", "bryostatin-1 amount in the body"),
            StateSpec("CD22UP", "–", "relative rise of tumour CD22 density (effect "
                      "compartment)")),
    params=BRYO_PARAMS,
    kernels=(Kernel(bryo, provides=("cd22_upregulation",)),),
    doses=(DoseRoute("bryostatin", "BRYO", "µg", "bryostatin-1 IV dose"),),
)

#: The add-ons of this module by name (= their dose route), in layout order.
MECHANISMS: dict[str, Mechanism] = {
    m.name: m for m in (HDAC_INHIBITOR, BH3_MIMETIC, ANTI_PD1, DASATINIB, BTK_INHIBITOR,
                        BRYOSTATIN)
}
