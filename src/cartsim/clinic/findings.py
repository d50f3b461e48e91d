"""Bedside ICANS findings implied by the model's encephalopathy state.

Shared by the simulator (what the virtual clinician observes each day) and the trial's
endpoint layer (physiology-graded ICANS when no protocol grades it), so the thresholds live
here once, below both. The mapping is assumed and uncalibrated (docs/clinic.md): CAPD rises as
``capd_max·E²/(E² + 1)`` (≥ 9 is abnormal from E ≈ 0.7); consciousness drops a level at each of
the three consciousness thresholds (awakens to voice, to touch, unarousable); seizures above
the seizure threshold; cerebral oedema above the oedema threshold.
"""

from __future__ import annotations

import numpy as np

from cartsim.params import ParameterSpec, ParameterTable

_PROV = "assumed (uncalibrated; docs/clinic.md)"
FINDINGS_PARAMS = ParameterTable((
    ParameterSpec("capd_max", "points", 27.0, 0.0, 32.0, _PROV,
                  "CAPD score approached as the encephalopathy state E grows"),
    ParameterSpec("enc_awakens_to_voice", "dimensionless", 2.0, 0.0, 100.0, _PROV,
                  "E above which consciousness drops to 'awakens to voice'"),
    ParameterSpec("enc_awakens_to_touch", "dimensionless", 4.0, 0.0, 100.0, _PROV,
                  "E above which consciousness drops to 'awakens to tactile stimulus'"),
    ParameterSpec("enc_unarousable", "dimensionless", 8.0, 0.0, 100.0, _PROV,
                  "E above which the patient is unarousable"),
    ParameterSpec("enc_seizure", "dimensionless", 6.0, 0.0, 100.0, _PROV,
                  "E above which the patient seizes"),
    ParameterSpec("enc_cerebral_edema", "dimensionless", 10.0, 0.0, 100.0, _PROV,
                  "E above which cerebral oedema is present"),
))
_Q = FINDINGS_PARAMS.defaults()
CAPD_MAX = _Q["capd_max"]
ENC_CONSCIOUSNESS = (_Q["enc_awakens_to_voice"], _Q["enc_awakens_to_touch"],
                     _Q["enc_unarousable"])
ENC_SEIZURE = _Q["enc_seizure"]
ENC_EDEMA = _Q["enc_cerebral_edema"]


def icans_findings(enc: np.ndarray) -> dict[str, np.ndarray]:
    """Bedside ICANS findings implied by the encephalopathy state (any array shape)."""
    return {
        "capd_score": np.rint(CAPD_MAX * enc**2 / (enc**2 + 1.0)),
        "consciousness": np.digitize(enc, ENC_CONSCIOUSNESS).astype(np.float64),
        "seizure": np.where(enc > ENC_SEIZURE, 1.0, 0.0),
        "cerebral_edema": np.where(enc > ENC_EDEMA, 1.0, 0.0),
    }
