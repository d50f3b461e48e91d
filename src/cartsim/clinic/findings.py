"""Bedside ICANS findings implied by the model's encephalopathy state.

Shared by the simulator (what the virtual clinician observes each day) and the trial's
endpoint layer (physiology-graded ICANS when no protocol grades it), so the thresholds live
here once, below both.

* The cognitive tools share one encephalopathy fraction f = E²/(E² + 1): the ICE score is
  10·(1 − f) (:mod:`cartsim.model.readouts`) and CAPD is ``capd_max``·f up to f = 0.75, with
  ``capd_max`` chosen so that CAPD ≥ 9 (ICANS grade 3 in a child) comes at the same E as
  ICE ≤ 2 (grade 3 in an adult, f > 0.75): children and adults with the same encephalopathy
  get the same grade. Beyond that point CAPD rises linearly in f to ``capd_unresponsive`` at
  f = 1 (an unresponsive child), so the deeper delirium grades that the CAPD range holds
  (CTCAE grade 3 at CAPD ≥ 18, :mod:`cartsim.clinic.neurotox`) can be reached; with the
  session-20 law (``capd_max``·f throughout) CAPD never passed 11.
* Consciousness drops a level at each of three thresholds of E.
* Seizures, deep focal motor weakness and cerebral oedema are chance events: each day a
  patient has one with probability 1 − exp(−h), the hazard h = h_max·(E/K)ⁿ/(1 + (E/K)ⁿ)
  set by the state. The hazard is steep (n = ``event_hill`` = 6): these events belong to
  severe encephalopathy (ICANS grade ≥ 3), and a shallower law let the weeks of mild
  encephalopathy that follow CRS in the model add up to seizures in a quarter and cerebral
  oedema in a tenth of patients (session 6, issue 14 item 2). The draws come from the
  counter-based generator keyed by (seed, patient, stream, day), so they never depend on
  chunking; without a key (no seed) the expected
  finding is reported instead (h_max·… ≥ ½ day⁻¹ counts as present).
"""

from __future__ import annotations

import numpy as np

from cartsim._fastnp import nan_to_num
from cartsim.engine.rng import uniform_np
from cartsim.errors import InvalidInputError
from cartsim.params import ParameterSpec, ParameterTable

_PROV = "assumed (uncalibrated; docs/clinic.md)"
FINDINGS_PARAMS = ParameterTable((
    ParameterSpec("capd_max", "points", 11.3, 0.0, 32.0,
                  "assumed: CAPD ≥ 9 at the E where ICE ≤ 2 (f > 0.75; ASTCT grade 3 either way)",
                  "CAPD score per unit encephalopathy fraction f = E²/(E² + 1) up to the "
                  "ICE ≤ 2 point f = 0.75 (CAPD = capd_max · f there)"),
    ParameterSpec("capd_unresponsive", "points", 24.0, 0.0, 32.0,
                  "CAPD item scoring (Traube 2014 Crit Care Med 42:656; 8 items, 0-4 each): "
                  "an awake but unresponsive child scores 4 on the six items of awareness, "
                  "purposeful action, communication, activity and response time and 0 on "
                  "restlessness and inconsolability (hypoactive delirium): 24. Neutral "
                  "(session-20) value: capd_max, the straight line through the origin",
                  "CAPD score at full encephalopathy (f = 1); between f = 0.75 and 1 CAPD "
                  "rises linearly from capd_max · 0.75 to it"),
    ParameterSpec("enc_awakens_to_voice", "dimensionless", 2.5, 0.0, 100.0, _PROV,
                  "E above which consciousness drops to 'awakens to voice'"),
    ParameterSpec("enc_awakens_to_touch", "dimensionless", 4.0, 0.0, 100.0, _PROV,
                  "E above which consciousness drops to 'awakens to tactile stimulus'"),
    ParameterSpec("enc_unarousable", "dimensionless", 6.0, 0.0, 100.0, _PROV,
                  "E above which the patient is unarousable"),
    ParameterSpec("seizure_hazard_max", "1/d", 0.4, 0.0, 10.0,
                  "assumed (seizures in ≈ 5–10 % of axi-cel patients, Neelapu 2017)",
                  "maximal daily seizure hazard"),
    ParameterSpec("seizure_enc_half", "dimensionless", 4.0, 0.01, 100.0, _PROV,
                  "E at half-maximal seizure hazard"),
    ParameterSpec("motor_hazard_max", "1/d", 0.1, 0.0, 10.0, _PROV,
                  "maximal daily hazard of deep focal motor weakness"),
    ParameterSpec("motor_enc_half", "dimensionless", 5.0, 0.01, 100.0, _PROV,
                  "E at half-maximal motor-weakness hazard"),
    ParameterSpec("edema_hazard_max", "1/d", 0.3, 0.0, 10.0,
                  "assumed (fatal cerebral oedema is rare, < 1 %; Gust 2017)",
                  "maximal daily cerebral-oedema hazard"),
    ParameterSpec("edema_enc_half", "dimensionless", 7.0, 0.01, 100.0, _PROV,
                  "E at half-maximal cerebral-oedema hazard"),
    ParameterSpec("event_hill", "–", 6.0, 1.0, 10.0,
                  "hand-tuned (issue 14 item 2, session 6) so that the chance events belong to "
                  "severe encephalopathy as in the clinic: seizures in ≈ 5–10 % of axi-cel "
                  "patients (Neelapu 2017 NEJM; non-convulsive status on EEG in 8 of 100, Strati "
                  "2020 Blood Adv 4:3943), cerebral oedema and severe motor deficits rare "
                  "(Santomasso, Gust & Perna 2023 Blood 141:2443; none in ELIANA, Maude 2018). "
                  "With n = 3 the hazard summed over the weeks of mild encephalopathy "
                  "(ICE 5–9) the model holds after CRS: 28 % seizures, 14 % motor weakness and "
                  "14 % cerebral oedema expected in ZUMA-1, 13 % seizures in TanCAR7 (60 "
                  "virtual patients each); n = 6 gives 9 / 1.4 / 0.6 % and 1 / 0.1 / 0 %. "
                  "Neutral (session-5) value 3",
                  "steepness n of the event hazards in E"),
))
_Q = FINDINGS_PARAMS.defaults()
CAPD_MAX = _Q["capd_max"]
CAPD_UNRESPONSIVE = _Q["capd_unresponsive"]
#: The encephalopathy fraction at which ICE ≤ 2 begins (ICE = round(10·(1 − f)) ≤ 2).
F_ICE_SEVERE = 0.75
EVENT_HILL = _Q["event_hill"]
ENC_CONSCIOUSNESS = (_Q["enc_awakens_to_voice"], _Q["enc_awakens_to_touch"],
                     _Q["enc_unarousable"])
#: (stream, hazard_max, E half) of each chance event; streams differ from every other draw's.
EVENT_STREAMS = {
    "seizure": (301, _Q["seizure_hazard_max"], _Q["seizure_enc_half"]),
    "motor_weakness": (302, _Q["motor_hazard_max"], _Q["motor_enc_half"]),
    "cerebral_edema": (303, _Q["edema_hazard_max"], _Q["edema_enc_half"]),
}
DAY_OFFSET = 1000  # days may be negative; counters must not be


def event_hazard(enc: np.ndarray, h_max: float, half: float,
                 hill: float = EVENT_HILL) -> np.ndarray:
    """Daily hazard (1/d) of a neurological chance event at encephalopathy ``enc``."""
    if not 1.0 <= hill <= 10.0:
        raise InvalidInputError("event_hill", "a number in [1, 10]", hill)
    x = (np.maximum(enc, 0.0) / half) ** hill
    return h_max * x / (1.0 + x)


def capd_from_fraction(f: np.ndarray, capd_max: float | None = None,
                       capd_unresponsive: float | None = None) -> np.ndarray:
    """CAPD (before rounding) at encephalopathy fraction ``f``: ``capd_max``·f up to
    :data:`F_ICE_SEVERE`, then linear to ``capd_unresponsive`` at f = 1 (defaults: the
    module's :data:`CAPD_MAX` and :data:`CAPD_UNRESPONSIVE`)."""
    capd_max = CAPD_MAX if capd_max is None else capd_max
    capd_unresponsive = CAPD_UNRESPONSIVE if capd_unresponsive is None else capd_unresponsive
    knee = capd_max * F_ICE_SEVERE
    above = knee + (capd_unresponsive - knee) * (f - F_ICE_SEVERE) / (1.0 - F_ICE_SEVERE)
    return np.where(f <= F_ICE_SEVERE, capd_max * f, above)


def icans_findings(enc: np.ndarray, seed: int | None = None,
                   patient_id: np.ndarray | None = None,
                   day: np.ndarray | int | None = None,
                   hill: float = EVENT_HILL) -> dict[str, np.ndarray]:
    """Bedside ICANS findings implied by the encephalopathy state (any array shape).

    ``patient_id`` and ``day`` broadcast against ``enc`` (e.g. ``pid[:, None]`` and
    ``days[None, :]`` for a patients × days course); with ``seed`` they key the chance events.
    ``hill`` is the steepness of the event hazards in E (``event_hill``; 3 = session 5).
    """
    e = np.maximum(nan_to_num(np.asarray(enc, dtype=np.float64)), 0.0)
    f = e**2 / (e**2 + 1.0)
    out = {
        "capd_score": np.rint(capd_from_fraction(f)),
        "consciousness": np.digitize(e, ENC_CONSCIOUSNESS).astype(np.float64),
    }
    for name, (stream, h_max, half) in EVENT_STREAMS.items():
        p_day = -np.expm1(-event_hazard(e, h_max, half, hill))
        if seed is None or patient_id is None or day is None:
            hit = p_day >= 0.5
        else:
            ctr = np.asarray(day, dtype=np.int64) + DAY_OFFSET
            u = uniform_np(seed, np.asarray(patient_id, dtype=np.uint64),
                           stream, ctr.astype(np.uint64))
            hit = u < p_day
        out[name] = np.where(hit, 1.0, 0.0)
    return out
