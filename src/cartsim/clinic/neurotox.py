"""CTCAE neurological events from the same bedside findings as ASTCT ICANS (issue 14 item 6).

Trials before the ASTCT consensus (ELIANA, ZUMA-1, JULIET) reported "neurological events" on
CTCAE v4.03: each event graded with its own term, the patient's neurotoxicity the worst grade
of any term. :func:`ctcae_neuro_grade` grades those terms from the findings the ICANS grader
reads (ICE or CAPD, level of consciousness, seizure, motor weakness, cerebral oedema) plus
the terms ICANS ignores (tremor, headache; ICANS-R4). Term wording (NCI CTCAE v4.03 and
v5.0, nervous system and psychiatric disorders; clinical_standards.md §3.5 and §4):

* **Confusion / encephalopathy / dysphasia** — grade 1 mild (mild disorientation;
  awareness of aphasia without impaired communication), 2 moderate, limiting instrumental
  ADL (impaired spontaneous communication), 3 severe, limiting self-care (unable to read,
  write or communicate intelligibly). Read from the ICE score with the ICANS bands:
  ICE 7–9 → 1, 3–6 → 2, 0–2 → 3 [I: CTCAE has no ICE; the ICE bands are where ASTCT put the
  same descriptors]. Children (CAPD): 9–17 (delirium) → 2, ≥ 18 → 3 [I]; a CAPD of 1–8 is
  no CTCAE event: it is below the validated delirium cut-off of 9 (Traube 2014 Crit Care Med
  42:656) and within what well young children score, so a trial investigator recording
  adverse events did not see it (ASTCT ICANS, a CAPD-based scale, does grade 1–8 as 1; session
  12: counting it here made 55 % of ELIANA children neurotoxic against 40 % reported).
* **Depressed level of consciousness / somnolence** — 2 sedation, slow response to
  stimuli (awakens to voice), 3 difficult to arouse, obtundation or stupor (awakens only to
  touch), 4 life-threatening (unarousable, coma).
* **Seizure** — v4.03: 1 brief partial, 2 brief generalised, 3 consciousness altered /
  breakthrough despite treatment, 4 prolonged repetitive (status). v5.0: grade 3 also reads
  "new onset seizures", so a first seizure after CAR-T is grade 3. A self-limiting seizure
  (ICANS code 1) is therefore grade 2 on v4.03 and grade 3 on v5.0; prolonged or repetitive
  (code 2) is grade 4 on both.
* **Deep focal motor weakness** (hemiparesis, paraparesis) — grade 3 (severe, limiting
  self-care) [I; ICANS makes it 4].
* **Edema cerebral** — CTCAE has only grade 4 (life-threatening) and 5: any cerebral oedema
  (ICANS code 1 or 2) is grade 4 [ICANS makes focal oedema 3].
* **Tremor**, **headache** — passed as their own CTCAE grades (0–3), counted as they are.

Died of neurotoxicity → 5. NaN ICE/CAPD means not done (no cognitive grade).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cartsim.clinic._arrays import as_bool, as_code, as_float, check_choice, result
from cartsim.clinic.icans import CONSCIOUSNESS_LEVELS, EDEMA_LEVELS, SEIZURE_LEVELS

NEURO_VERSIONS: tuple[str, ...] = ("4.03", "5.0")
_LOC = np.array([0, 2, 3, 4], dtype=np.int8)
_SEIZURE = {"4.03": np.array([0, 2, 4], dtype=np.int8),
            "5.0": np.array([0, 3, 4], dtype=np.int8)}
_EDEMA = np.array([0, 4, 4], dtype=np.int8)


def cognitive_grade(ice_score: ArrayLike = np.nan, capd_score: ArrayLike = np.nan,
                    child: ArrayLike = False) -> Any:
    """Confusion/encephalopathy/dysphasia grade from ICE (adults) or CAPD (children)."""
    ice = as_float("ice_score", ice_score, 0, 10)
    capd = as_float("capd_score", capd_score, 0, 32)
    g_ice = np.select([ice <= 2, ice <= 6, ice <= 9], [3, 2, 1], 0)
    g_capd = np.select([capd >= 18, capd >= 9], [3, 2], 0)
    g = np.where(as_bool("child", child), g_capd, g_ice)
    return result(np.asarray(g, dtype=np.int8))


def ctcae_neuro_grade(
    ice_score: ArrayLike = np.nan,
    consciousness: ArrayLike = 0,
    seizure: ArrayLike = 0,
    motor_weakness: ArrayLike = 0,
    cerebral_edema: ArrayLike = 0,
    *,
    capd_score: ArrayLike = np.nan,
    age_y: ArrayLike = np.nan,
    tremor_grade: ArrayLike = 0,
    headache_grade: ArrayLike = 0,
    sedated: ArrayLike = False,
    died_of_neurotoxicity: ArrayLike = False,
    version: str = "4.03",
    capd_age_cutoff_y: float = 12.0,
) -> Any:
    """Worst CTCAE grade (0–5) over the neurological terms above, on ``version`` (4.03/5.0).

    Codes of ``consciousness``, ``seizure`` and ``cerebral_edema`` are those of
    :mod:`cartsim.clinic.icans`; ``age_y`` below ``capd_age_cutoff_y`` grades cognition with
    CAPD (NaN age = adult). When ``sedated``, cognition and consciousness are not graded.
    """
    check_choice("ctcae_version", version, NEURO_VERSIONS)
    loc = as_code("consciousness", consciousness, range(4), CONSCIOUSNESS_LEVELS)
    sz = as_code("seizure", seizure, range(3), SEIZURE_LEVELS)
    ed = as_code("cerebral_edema", cerebral_edema, range(3), EDEMA_LEVELS)
    mw = as_bool("motor_weakness", motor_weakness)
    tremor = as_float("tremor_grade", tremor_grade, 0, 3, allow_nan=False)
    headache = as_float("headache_grade", headache_grade, 0, 3, allow_nan=False)
    age = as_float("age_y", age_y, 0, 130)
    cog = np.asarray(cognitive_grade(ice_score, capd_score, age < capd_age_cutoff_y))
    g = np.where(as_bool("sedated", sedated), 0, np.maximum(cog, _LOC[loc]))
    g = np.maximum(g, _SEIZURE[version][sz])
    g = np.maximum(g, np.where(mw, 3, 0))
    g = np.maximum(g, _EDEMA[ed])
    g = np.maximum(g, np.maximum(tremor, headache).astype(np.int8))
    g = np.where(as_bool("died_of_neurotoxicity", died_of_neurotoxicity), 5, g)
    return result(np.asarray(g, dtype=np.int8))
