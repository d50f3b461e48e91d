"""Cytokines, myeloid amplification, endothelium and encephalopathy (MODEL.md §5).

IL-6 is produced in proportion to killing (DAMP-driven, Hardiansyah 2019) and amplified by
activated myeloid cells (Santurio 2025); IFN-γ by antigen-engaged effectors. Tocilizumab blocks
IL-6 signalling and receptor-mediated clearance (serum IL-6 rises), siltuximab neutralises IL-6,
steroids damp production and myeloid activation, anakinra damps the myeloid loop. Endothelial
activation follows the IL-6 signal and IFN-γ; the encephalopathy state follows endothelial
activation (blood–brain-barrier leak, review A16).
"""

from __future__ import annotations

import numba
import numpy as np

from cartsim.model.parameters import P
from cartsim.model.state import S


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
    occ_toci: float,
    occ_silt: float,
    ster: float,
    anak: float,
) -> None:
    k9 = kills * 1e-9
    e9 = engaged * 1e-9
    il6, ifng = max(y[S.IL6], 0.0), max(y[S.IFNG], 0.0)
    my, en, enc = y[S.MY], y[S.EN], y[S.ENC]
    cyto = 1.0 - p[P.ster_cyto] * ster
    dy[S.IL6] = (
        p[P.d_il6] * p[P.il6_base]
        + p[P.p_il6] * k9 * (1.0 + p[P.a_my] * max(my, 0.0)) * cyto
        - p[P.d_il6] * (1.0 - p[P.toci_clear_frac] * occ_toci) * y[S.IL6]
    )
    dy[S.IFNG] = p[P.p_ifng] * e9 * cyto - p[P.d_ifng] * y[S.IFNG]
    f_ifng = ifng / (ifng + p[P.K_ifng])
    damp = k9 / (k9 + p[P.K_my_kill])
    dy[S.MY] = (
        p[P.k_my] * (f_ifng + damp) * (1.0 - p[P.ster_my] * ster) * (1.0 - p[P.anak_my] * anak)
        - p[P.d_my] * my
    )
    sig = il6_signal(il6, occ_toci, occ_silt)
    drive_en = sig / (sig + p[P.K_en_il6]) + p[P.w_ifng_en] * f_ifng
    dy[S.EN] = p[P.k_en] * drive_en * (1.0 - p[P.ster_en] * ster) - p[P.d_en] * en
    en2 = max(en, 0.0) ** 2
    drive_enc = en2 / (en2 + p[P.K_enc] ** 2)
    dy[S.ENC] = p[P.k_enc] * drive_enc * (1.0 - p[P.ster_enc] * ster) * (
        1.0 - p[P.anak_enc] * anak) - (
        p[P.d_enc] * enc
    )
