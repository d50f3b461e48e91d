"""ICANS grading (ASTCT 2019) with the ICE score, CAPD for children, and CARTOX-10 / CRES.

Codes used by every function (and by the simulator's observations):

* ``consciousness``: 0 alert (awakens spontaneously), 1 awakens to voice, 2 awakens only to
  touch, 3 unarousable / needs vigorous stimuli.
* ``seizure``: 0 none, 1 clinical or EEG seizure that resolves rapidly (focal or generalised),
  2 prolonged (> 5 min) or repetitive without return to baseline.
* ``motor_weakness``: 0/1 deep focal motor weakness (hemiparesis, paraparesis).
* ``cerebral_edema``: 0 none, 1 focal/local oedema, 2 diffuse oedema, posturing, CN VI palsy,
  papilloedema or Cushing's triad.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cartsim.clinic._arrays import as_bool, as_code, as_float, check_choice, result
from cartsim.errors import InvalidInputError

CONSCIOUSNESS_LEVELS: tuple[str, ...] = (
    "alert", "awakens_to_voice", "awakens_to_touch", "unarousable"
)
SEIZURE_LEVELS: tuple[str, ...] = ("none", "self_limiting", "prolonged_or_repetitive")
EDEMA_LEVELS: tuple[str, ...] = ("none", "focal", "diffuse")
CAPD_ANSWERS: tuple[str, ...] = ("never", "rarely", "sometimes", "often", "always")

_LOC_CONTRIB = np.array([0, 2, 3, 4], dtype=np.int8)
_SEIZURE_CONTRIB = np.array([0, 3, 4], dtype=np.int8)
_EDEMA_CONTRIB = np.array([0, 3, 4], dtype=np.int8)


def ice_score(
    orientation: ArrayLike,
    naming: ArrayLike,
    follows_commands: ArrayLike,
    writing: ArrayLike,
    attention: ArrayLike,
) -> Any:
    """Immune effector cell encephalopathy (ICE) score, 0–10 (§2.1).

    Orientation 0–4 (year, month, city, hospital), naming 0–3, following commands 0–1,
    writing 0–1, attention (count back from 100 by 10) 0–1. A missing item (NaN) makes the
    score NaN ("incomplete", §2.5): never scored as 0 nor as full credit.
    """
    parts = [
        as_float("orientation", orientation, 0, 4),
        as_float("naming", naming, 0, 3),
        as_float("follows_commands", follows_commands, 0, 1),
        as_float("writing", writing, 0, 1),
        as_float("attention", attention, 0, 1),
    ]
    return result(np.asarray(sum(parts), dtype=np.float64))


def capd_score(items: ArrayLike) -> Any:
    """CAPD total (0–32) from eight already-scored items (last axis of length 8, each 0–4)."""
    arr = as_float("capd_items", items, 0, 4)
    if arr.shape[-1:] != (8,):
        raise InvalidInputError("capd_items", "8 items on the last axis", arr.shape)
    return result(np.asarray(arr.sum(axis=-1)))


def capd_score_from_answers(answers: Sequence[str]) -> int:
    """CAPD total from the eight frequency answers (never … always), items 1–4 reverse-scored.

    Items: 1 eye contact, 2 purposeful actions, 3 aware of surroundings, 4 communicates needs
    (reverse: never = 4 … always = 0); 5 restless, 6 inconsolable, 7 underactive, 8 slow to
    respond (direct: never = 0 … always = 4) (Traube 2014, §2.4).
    """
    if len(answers) != 8:
        raise InvalidInputError("capd_answers", "exactly 8 answers", len(answers))
    total = 0
    for i, ans in enumerate(answers):
        v = CAPD_ANSWERS.index(check_choice(f"capd_answers[{i}]", ans, CAPD_ANSWERS))
        total += 4 - v if i < 4 else v
    return total


def ice_contribution(ice: ArrayLike) -> NDArray[np.int8]:
    """ICE domain contribution: 10 → 0, 7–9 → 1, 3–6 → 2, 0–2 → 3, NaN → 0 (ICANS-R9)."""
    x = as_float("ice_score", ice, 0, 10)
    g = np.select([x <= 2, x <= 6, x <= 9], [3, 2, 1], 0)
    return g.astype(np.int8)


def capd_contribution(capd: ArrayLike) -> NDArray[np.int8]:
    """CAPD domain contribution: 0 → 0, 1–8 → 1, ≥ 9 → 3, NaN → 0 (ICANS-R8/R9)."""
    x = as_float("capd_score", capd, 0, 32)
    return np.select([x >= 9, x >= 1], [3, 1], 0).astype(np.int8)


def astct_icans_grade(
    ice_score: ArrayLike = np.nan,
    consciousness: ArrayLike = 0,
    seizure: ArrayLike = 0,
    motor_weakness: ArrayLike = 0,
    cerebral_edema: ArrayLike = 0,
    *,
    capd_score: ArrayLike = np.nan,
    age_y: ArrayLike = np.nan,
    developmental_delay: ArrayLike = False,
    sedated: ArrayLike = False,
    died_of_icans: ArrayLike = False,
    tremor_or_myoclonus: ArrayLike = False,
    intracranial_hemorrhage: ArrayLike = False,
    capd_age_cutoff_y: float = 12.0,
) -> Any:
    """ASTCT ICANS grade (0–5): the most severe domain (ICANS-R1, R9).

    Patients younger than ``capd_age_cutoff_y`` (or with developmental delay) are graded with
    CAPD instead of ICE (ICANS-R7/R8); ``age_y`` NaN means adult. ICE 0 in an awake patient is
    grade 3; unarousable (not sedated) is grade 4 (ICANS-R2). When ``sedated`` the ICE/CAPD and
    consciousness domains are not assessable: the grade comes from seizure, motor and oedema
    only and grade 4 is not imputed (§2.5; see :func:`ice_not_assessable`). ICE/CAPD NaN means
    not done. Tremor/myoclonus and intracranial haemorrhage are recorded but never change the
    grade (ICANS-R4, R5).
    """
    as_bool("tremor_or_myoclonus", tremor_or_myoclonus)
    as_bool("intracranial_hemorrhage", intracranial_hemorrhage)
    loc = as_code("consciousness", consciousness, range(4), CONSCIOUSNESS_LEVELS)
    sz = as_code("seizure", seizure, range(3), SEIZURE_LEVELS)
    mw = as_bool("motor_weakness", motor_weakness)
    ed = as_code("cerebral_edema", cerebral_edema, range(3), EDEMA_LEVELS)
    age = as_float("age_y", age_y, 0, 130)
    child = (age < capd_age_cutoff_y) | as_bool("developmental_delay", developmental_delay)
    sed = as_bool("sedated", sedated)
    cognitive = np.where(child, capd_contribution(capd_score), ice_contribution(ice_score))
    assessable = np.maximum(cognitive, _LOC_CONTRIB[loc])
    g = np.where(sed, 0, assessable)
    g = np.maximum(g, _SEIZURE_CONTRIB[sz])
    g = np.maximum(g, np.where(mw, 4, 0))
    g = np.maximum(g, _EDEMA_CONTRIB[ed])
    g = np.where(as_bool("died_of_icans", died_of_icans), 5, g)
    return result(np.asarray(g, dtype=np.int8))


def ice_not_assessable(
    ice_score: ArrayLike = np.nan,
    capd_score: ArrayLike = np.nan,
    age_y: ArrayLike = np.nan,
    sedated: ArrayLike = False,
    consciousness: ArrayLike = 0,
    capd_age_cutoff_y: float = 12.0,
) -> Any:
    """The ``ICE_NOT_ASSESSABLE`` flag (§2.5): sedated, or the age-appropriate tool not done
    in a patient who is not unarousable (an unarousable patient is graded 4, not flagged)."""
    age = as_float("age_y", age_y, 0, 130)
    child = age < capd_age_cutoff_y
    tool = np.where(child, as_float("capd_score", capd_score, 0, 32),
                    as_float("ice_score", ice_score, 0, 10))
    loc = as_code("consciousness", consciousness, range(4), CONSCIOUSNESS_LEVELS)
    flag = as_bool("sedated", sedated) | (np.isnan(tool) & (loc < 3))
    return result(np.asarray(flag))


def cartox10_score(
    orientation: ArrayLike, naming: ArrayLike, writing: ArrayLike, attention: ArrayLike
) -> Any:
    """CARTOX-10 (§3.3): orientation incl. head of government 0–5, naming 0–3, writing 0–1,
    counting back 0–1."""
    parts = [
        as_float("orientation", orientation, 0, 5),
        as_float("naming", naming, 0, 3),
        as_float("writing", writing, 0, 1),
        as_float("attention", attention, 0, 1),
    ]
    return result(np.asarray(sum(parts), dtype=np.float64))


def cres_grade(
    cartox10: ArrayLike = np.nan,
    obtunded: ArrayLike = False,
    seizure: ArrayLike = 0,
    motor_weakness: ArrayLike = 0,
    raised_icp: ArrayLike = 0,
) -> Any:
    """CARTOX CRES grade (§3.3) = worst of CARTOX-10 (7–9 → 1, 3–6 → 2, 0–2 → 3, obtunded → 4),
    ICP (``raised_icp`` 1 = papilloedema 1–2 / opening pressure < 20 mmHg → 3; 2 = papilloedema
    3–5, pressure ≥ 20 mmHg or cerebral oedema → 4), seizure (1 partial or EEG-only responsive →
    3; 2 generalised or status → 4) and new motor weakness (→ 4)."""
    c = as_float("cartox10", cartox10, 0, 10)
    g = np.select([c <= 2, c <= 6, c <= 9], [3, 2, 1], 0)
    g = np.where(as_bool("obtunded", obtunded), 4, g)
    sz = as_code("seizure", seizure, range(3), SEIZURE_LEVELS)
    icp = as_code("raised_icp", raised_icp, range(3), ("none", "mild", "severe"))
    g = np.maximum(g, _SEIZURE_CONTRIB[sz])
    g = np.maximum(g, _EDEMA_CONTRIB[icp])
    g = np.maximum(g, np.where(as_bool("motor_weakness", motor_weakness), 4, 0))
    return result(np.asarray(g, dtype=np.int8))
