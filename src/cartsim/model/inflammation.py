"""Cytokines, myeloid amplification, endothelium and encephalopathy (MODEL.md §5).

IL-6 is produced in proportion to killing (DAMP-driven, Hardiansyah 2019) and amplified by
activated myeloid cells (Santurio 2025); IFN-γ by antigen-engaged effectors. Production is an
amount per day; the serum concentration it adds is that amount over the patient's plasma volume
(``plasma_ml``, :mod:`cartsim.model.body`), and damage-driven myeloid activation reads the kill
rate per litre of plasma, so CRS does not depend on body size at equal dose per kg and burden.
Tocilizumab blocks IL-6 signalling and receptor-mediated clearance (serum IL-6 rises),
siltuximab neutralises IL-6, steroids damp production and myeloid activation, anakinra damps
the myeloid loop. Endothelial activation follows the IL-6 signal and IFN-γ; the
encephalopathy state follows endothelial activation (blood–brain-barrier leak, review A16).
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.mechanism import Kernel, Mechanism, StateSpec, unbound
from cartsim.model.mechanism import param as _p

S = unbound("S")  # state layout, bound by cartsim.model.layout
P = unbound("P")  # parameter layout, bound by cartsim.model.layout

PARAMS = (
    _p("il6_base", "pg/mL", 3.0, 0.0, 1e3, "typical healthy serum IL-6", "baseline IL-6", 0.3,
       "inflam"),
    _p("p_il6", "pg/d per 1e9 kills/d", 1400.0, 0.0, 1e8,
       "calibrated to CRS IL-6 peaks (Hardiansyah 2019 structure): 0.5 pg/mL/d in the 2800 mL "
       "plasma of the 70-kg reference adult",
       "IL-6 amount produced per killing activity (concentration = amount / plasma_ml)",
       0.8, "inflam"),
    _p("d_il6", "1/d", 3.96, 0.1, 100.0, "Hardiansyah 2019", "IL-6 clearance", 0.0, "inflam"),
    _p("p_ifng", "pg/d per 1e9 engaged", 2800.0, 0.0, 1e8,
       "assumed (Hardiansyah 2019 structure): 1 pg/mL/d in the 2800 mL plasma of the 70-kg "
       "reference adult",
       "IFN-γ amount produced per antigen-engaged effector (concentration = amount / plasma_ml)",
       0.6, "inflam"),
    _p("d_ifng", "1/d", 1.51, 0.1, 100.0, "Hardiansyah 2019", "IFN-γ clearance", 0.0, "inflam"),
    _p("k_my", "1/d", 0.6, 0.0, 10.0, "assumed (Santurio 2025 structure)",
       "myeloid activation rate", 0.4, "inflam"),
    _p("d_my", "1/d", 0.5, 0.01, 10.0, "assumed", "myeloid deactivation rate", 0.0, "inflam"),
    _p("a_my", "–", 4.0, 0.0, 100.0, "assumed (Santurio 2025: myeloid cells dominate IL-6)",
       "IL-6 amplification by fully activated myeloid cells", 0.3, "inflam"),
    _p("K_ifng", "pg/mL", 50.0, 0.01, 1e5, "assumed", "IFN-γ for half-maximal myeloid activation",
       0.0, "inflam"),
    _p("k_en", "1/d", 0.8, 0.0, 10.0, "assumed", "endothelial activation rate", 0.4, "inflam"),
    _p("d_en", "1/d", 0.35, 0.01, 10.0, "assumed (CRS resolves over days)",
       "endothelial recovery rate", 0.2, "inflam"),
    _p("K_en_il6", "pg/mL", 150.0, 0.01, 1e5, "assumed",
       "IL-6 signal for half-maximal endothelial activation", 0.5, "inflam"),
    _p("w_ifng_en", "–", 0.5, 0.0, 10.0, "assumed",
       "weight of IFN-γ saturation relative to the IL-6 term in endothelial activation",
       0.0, "inflam"),
    _p("K_my_kill", "10⁹ cells/d per L plasma", 10.0 / 2.8, 0.001, 1e4,
       "assumed (tumour-cell death products activate myeloid cells; Liu 2020 pyroptosis): "
       "10⁹ × 10 kills/d in the 2.8 L plasma of the 70-kg reference adult",
       "CAR-T kill rate per litre of plasma (damage-signal concentration) giving half-maximal "
       "damage-driven myeloid activation", 0.0, "inflam"),
    _p("k_enc", "1/d", 0.6, 0.0, 10.0, "assumed", "encephalopathy onset rate", 0.5, "inflam"),
    _p("d_enc", "1/d", 0.4, 0.01, 10.0, "assumed (ICANS resolves over days)",
       "encephalopathy recovery rate", 0.2, "inflam"),
    _p("K_enc", "–", 1.2, 0.01, 100.0, "assumed", "endothelial activation for half-maximal "
       "encephalopathy drive", 0.4, "inflam"),
    _p("K_fever", "pg/mL", 25.0, 0.01, 1e5, "assumed (fever at IL-6 tens of pg/mL)",
       "IL-6 signal for half-maximal fever", 0.3, "inflam"),
    _p("map_drop", "–", 0.45, 0.0, 0.9, "assumed", "maximal fractional MAP fall", 0.0, "inflam"),
    _p("K_map", "–", 1.6, 0.01, 100.0, "assumed", "endothelial activation for half MAP drop",
       0.3, "inflam"),
    _p("K_ox", "–", 2.0, 0.01, 100.0, "assumed", "endothelial activation for half SpO₂ fall",
       0.3, "inflam"),
)


@numba.njit(inline="always")
def il6_signal(il6: float, occ_toci: float, occ_silt: float) -> float:
    return max(il6, 0.0) * (1.0 - occ_toci) * (1.0 - occ_silt)


@numba.njit(inline="always")
def derivs(
    y: np.ndarray,
    p: np.ndarray,
    dy: np.ndarray,
    kills: float,
    engaged: float,
    toci_occupancy: float,
    silt_occupancy: float,
    steroid_effect: float,
    anakinra_effect: float,
) -> None:
    # amounts per day over the plasma volume: concentrations do not depend on body size
    vol = p[P.plasma_ml]
    k9 = kills * 1e-9
    e9 = engaged * 1e-9
    k9_l = k9 * 1e3 / vol  # 10⁹ kills/d per litre of plasma
    il6, ifng = max(y[S.IL6], 0.0), max(y[S.IFNG], 0.0)
    my, en, enc = y[S.MY], y[S.EN], y[S.ENC]
    cyto = 1.0 - p[P.ster_cyto] * steroid_effect
    dy[S.IL6] = (
        p[P.d_il6] * p[P.il6_base]
        + p[P.p_il6] * k9 / vol * (1.0 + p[P.a_my] * max(my, 0.0)) * cyto
        - p[P.d_il6] * (1.0 - p[P.toci_clear_frac] * toci_occupancy) * y[S.IL6]
    )
    dy[S.IFNG] = p[P.p_ifng] * e9 / vol * cyto - p[P.d_ifng] * y[S.IFNG]
    f_ifng = ifng / (ifng + p[P.K_ifng])
    damp = k9_l / (k9_l + p[P.K_my_kill])
    dy[S.MY] = (
        p[P.k_my] * (f_ifng + damp) * (1.0 - p[P.ster_my] * steroid_effect)
        * (1.0 - p[P.anak_my] * anakinra_effect)
        - p[P.d_my] * my
    )
    sig = il6_signal(il6, toci_occupancy, silt_occupancy)
    drive_en = sig / (sig + p[P.K_en_il6]) + p[P.w_ifng_en] * f_ifng
    dy[S.EN] = p[P.k_en] * drive_en * (1.0 - p[P.ster_en] * steroid_effect) - p[P.d_en] * en
    en2 = max(en, 0.0) ** 2
    drive_enc = en2 / (en2 + p[P.K_enc] ** 2)
    dy[S.ENC] = p[P.k_enc] * drive_enc * (1.0 - p[P.ster_enc] * steroid_effect) * (
        1.0 - p[P.anak_enc] * anakinra_effect) - (
        p[P.d_enc] * enc
    )


MECHANISM = Mechanism(
    name="inflammation",
    module=__name__,
    summary="IL-6, IFN-γ, myeloid activation, endothelium and encephalopathy",
    states=(
        StateSpec("IL6", "pg/mL", "serum IL-6"),
        StateSpec("IFNG", "pg/mL", "serum IFN-γ"),
        StateSpec("MY", "–", "myeloid activation"),
        StateSpec("EN", "–", "endothelial activation"),
        StateSpec("ENC", "–", "encephalopathy state"),
    ),
    params=PARAMS,
    kernels=(Kernel(derivs, consumes=("kills", "engaged", "toci_occupancy", "silt_occupancy",
                                      "steroid_effect", "anakinra_effect")),),
)
