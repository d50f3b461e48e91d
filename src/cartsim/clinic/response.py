"""Response criteria: B-ALL (CR, CRi, MRD, relapse with CD19 status) and Lugano 2014 (§6).

Vectorised: arguments broadcast; results are NumPy string arrays (or a ``str`` for scalars).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cartsim.clinic._arrays import as_bool, as_code, as_float, check_choice, result

CD19_STATUS: tuple[str, ...] = ("positive", "dim", "negative", "unknown")
UPTAKE_CHANGE: tuple[str, ...] = ("reduced", "unchanged", "increased")
MRD_NEGATIVE_BELOW_PCT = 0.01  # < 10⁻⁴


def ball_response(
    marrow_blasts_pct: ArrayLike,
    anc_per_ul: ArrayLike,
    platelets_per_ul: ArrayLike,
    blood_blasts: ArrayLike = False,
    extramedullary_disease: ArrayLike = False,
    prior_remission: ArrayLike = False,
    relapse_blasts_pct: float = 5.0,
    inclusive_counts: bool = True,
) -> Any:
    """B-ALL haematologic response: ``"CR"``, ``"CRi"``, ``"NR"`` or ``"relapse"``.

    CR: marrow blasts < 5 %, no blood blasts, no extramedullary disease, ANC ≥ 1000/µL and
    platelets ≥ 100,000/µL (``inclusive_counts=False`` uses the NCCN strict ">"). CRi: the
    same except the counts. After a remission (``prior_remission``), blood blasts, marrow
    blasts > ``relapse_blasts_pct`` or extramedullary disease is relapse (§6.1).
    """
    blasts = as_float("marrow_blasts_pct", marrow_blasts_pct, 0, 100)
    anc = as_float("anc_per_ul", anc_per_ul, 0, 1e6)
    plt = as_float("platelets_per_ul", platelets_per_ul, 0, 1e7)
    pb = as_bool("blood_blasts", blood_blasts)
    emd = as_bool("extramedullary_disease", extramedullary_disease)
    prior = as_bool("prior_remission", prior_remission)
    counts_ok = (anc >= 1000) & (plt >= 100_000) if inclusive_counts else (anc > 1000) & (
        plt > 100_000
    )
    morph = (blasts < 5.0) & ~pb & ~emd
    relapse = prior & (pb | emd | (blasts > relapse_blasts_pct))
    out = np.where(relapse, "relapse", np.where(morph & counts_ok, "CR",
                                                np.where(morph, "CRi", "NR")))
    return result(np.asarray(out))


def mrd_status(mrd_pct: ArrayLike) -> Any:
    """``"negative"`` (< 0.01 %, i.e. < 10⁻⁴), ``"positive"`` or ``"not_done"`` (NaN)."""
    m = as_float("mrd_pct", mrd_pct, 0, 100)
    out = np.where(np.isnan(m), "not_done",
                   np.where(m < MRD_NEGATIVE_BELOW_PCT, "negative", "positive"))
    return result(np.asarray(out))


def ball_assessment(
    marrow_blasts_pct: ArrayLike,
    anc_per_ul: ArrayLike,
    platelets_per_ul: ArrayLike,
    mrd_pct: ArrayLike = np.nan,
    cd19_status: str = "unknown",
    **kwargs: Any,
) -> str:
    """One readable label for a single assessment, e.g. ``"CR, MRD-negative"`` or
    ``"relapse, CD19-negative"`` (wraps :func:`ball_response` and :func:`mrd_status`)."""
    check_choice("cd19_status", cd19_status, CD19_STATUS)
    resp = str(ball_response(marrow_blasts_pct, anc_per_ul, platelets_per_ul, **kwargs))
    if resp == "relapse":
        return f"relapse, CD19-{cd19_status}"
    mrd = str(mrd_status(mrd_pct))
    if resp in ("CR", "CRi") and mrd != "not_done":
        return f"{resp}, MRD-{mrd}"
    return resp


def lugano_pet_response(
    deauville: ArrayLike,
    uptake_change: ArrayLike = 1,
    new_lesions: ArrayLike = False,
    marrow_fdg_avid: ArrayLike = False,
) -> Any:
    """Lugano 2014 PET-CT response: ``"CR"`` (5PS 1–3, no new lesions, no FDG-avid marrow),
    ``"PR"`` (5PS 4–5 with reduced uptake), ``"SD"`` (no change) or ``"PD"`` (increased
    uptake, new FDG-avid foci or new marrow disease). ``uptake_change``: 0 reduced,
    1 unchanged, 2 increased versus baseline."""
    ps = as_code("deauville", deauville, range(1, 6), [str(i) for i in range(1, 6)])
    ch = as_code("uptake_change", uptake_change, range(3), UPTAKE_CHANGE)
    new = as_bool("new_lesions", new_lesions)
    marrow = as_bool("marrow_fdg_avid", marrow_fdg_avid)
    pd = new | marrow | ((ps >= 4) & (ch == 2))
    out = np.where(pd, "PD", np.where(ps <= 3, "CR", np.where(ch == 0, "PR", "SD")))
    return result(np.asarray(out))


def lugano_lesion_progression(
    nadir_ldi_cm: ArrayLike, nadir_sdi_cm: ArrayLike, ldi_cm: ArrayLike, sdi_cm: ArrayLike
) -> Any:
    """CT progression of one target lesion (Lugano 2014): LDi > 1.5 cm, PPD ≥ +50 % from
    nadir, and LDi or SDi ≥ +0.5 cm (nadir LDi ≤ 2 cm) or ≥ +1.0 cm (nadir LDi > 2 cm)."""
    nl = as_float("nadir_ldi_cm", nadir_ldi_cm, 0, 100)
    ns = as_float("nadir_sdi_cm", nadir_sdi_cm, 0, 100)
    ld = as_float("ldi_cm", ldi_cm, 0, 100)
    sd = as_float("sdi_cm", sdi_cm, 0, 100)
    nadir_ppd = nl * ns
    ppd = ld * sd
    ppd_up = ppd >= 1.5 * nadir_ppd
    need = np.where(nl <= 2.0, 0.5, 1.0)
    diam_up = ((ld - nl) >= need - 1e-9) | ((sd - ns) >= need - 1e-9)
    return result(np.asarray((ld > 1.5) & ppd_up & diam_up))


def lugano_spleen_progression(
    baseline_cm: ArrayLike, current_cm: ArrayLike, normal_cm: float = 13.0
) -> Any:
    """Splenic progression: with splenomegaly, growth by > 50 % of the excess over normal;
    without it, growth ≥ 2 cm or new splenomegaly."""
    b = as_float("baseline_spleen_cm", baseline_cm, 0, 50)
    c = as_float("current_spleen_cm", current_cm, 0, 50)
    enlarged = b > normal_cm
    pd = np.where(enlarged, (c - b) > 0.5 * (b - normal_cm), ((c - b) >= 2.0) | (c > normal_cm))
    return result(np.asarray(pd))


def lugano_ct_response(
    baseline_spd_cm2: ArrayLike,
    current_spd_cm2: ArrayLike,
    progression: ArrayLike = False,
    new_lesions: ArrayLike = False,
    all_nodes_normal: ArrayLike = False,
    marrow_involved: ArrayLike = False,
) -> Any:
    """Lugano 2014 CT response: ``"PD"`` (any progression criterion or new lesion), ``"CR"``
    (all target nodes ≤ 1.5 cm LDi, marrow clear), ``"PR"`` (SPD decrease ≥ 50 %) or
    ``"SD"``. Pass lesion/spleen progression from :func:`lugano_lesion_progression` and
    :func:`lugano_spleen_progression` as ``progression``."""
    b = as_float("baseline_spd_cm2", baseline_spd_cm2, 0, 1e4)
    c = as_float("current_spd_cm2", current_spd_cm2, 0, 1e4)
    pd = as_bool("progression", progression) | as_bool("new_lesions", new_lesions)
    cr = as_bool("all_nodes_normal", all_nodes_normal) & ~as_bool("marrow_involved",
                                                                  marrow_involved)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (c - b) / b
    out = np.where(pd, "PD", np.where(cr, "CR", np.where(change <= -0.5, "PR", "SD")))
    return result(np.asarray(out))
