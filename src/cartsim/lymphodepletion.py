"""Lymphodepletion courses (fludarabine/cyclophosphamide) as exposure: the simulator gives a
course as daily units of the model's lymphodepletion state, 1 for the reference course.

Kept apart from :mod:`cartsim.simulation` so that trial specs (and what reads them) can convert
a course without importing the simulator.
"""

from __future__ import annotations

import math

from cartsim.errors import InvalidInputError
from cartsim.params import ParameterSpec, ParameterTable

#: The reference course and how a course's two agents add up, with units and provenance.
LYMPHODEPLETION_PARAMS = ParameterTable((
    ParameterSpec("ld_ref_fludarabine_mg_m2", "mg/m²", 90.0, 10.0, 300.0,
                  "axicabtagene ciloleucel label and ZUMA-1: fludarabine 30 mg/m² daily × 3 "
                  "(the course the model's lymphodepletion parameters describe)",
                  "fludarabine of the reference lymphodepletion course (exposure 1)"),
    ParameterSpec("ld_ref_cyclophosphamide_mg_m2", "mg/m²", 1500.0, 100.0, 10000.0,
                  "axicabtagene ciloleucel label and ZUMA-1: cyclophosphamide 500 mg/m² daily "
                  "× 3",
                  "cyclophosphamide of the reference lymphodepletion course (exposure 1)"),
    ParameterSpec("ld_fludarabine_weight", "–", 0.5, 0.0, 1.0,
                  "assumed (equal shares of the two agents; fludarabine exposure predicts "
                  "relapse after tisagenlecleucel, Fabrizio 2022 Blood Adv 6:1961 and Dekker "
                  "2022 Blood Adv 6:1969, and cyclophosphamide alone lymphodepletes less, "
                  "Turtle 2016 Sci Transl Med 8:355ra116, but neither sets the ratio)",
                  "fludarabine's share of a course's lymphodepleting exposure (the rest is "
                  "cyclophosphamide's), each relative to the reference course"),
))
_Q = LYMPHODEPLETION_PARAMS.defaults()

#: Largest lymphodepletion exposure the simulator accepts, in reference courses.
LD_MAX_EXPOSURE = 3.0


def lymphodepletion_exposure(fludarabine_mg_m2: float, cyclophosphamide_mg_m2: float) -> float:
    """Exposure of a fludarabine/cyclophosphamide course (total mg/m² of each agent), relative
    to the reference course (fludarabine 30 and cyclophosphamide 500 mg/m² daily × 3 = 1):
    ``w · Flu/Flu_ref + (1 − w) · Cy/Cy_ref`` with ``w`` = ``ld_fludarabine_weight``. The
    simulator gives it as equal daily exposure units on its lymphodepletion days (−5 to −3),
    whatever the course's own number of days."""
    flu, cy = float(fludarabine_mg_m2), float(cyclophosphamide_mg_m2)
    for name, v in (("fludarabine_mg_m2", flu), ("cyclophosphamide_mg_m2", cy)):
        if not (math.isfinite(v) and v >= 0):
            raise InvalidInputError(name, "a finite total dose >= 0 mg/m²", v)
    w = _Q["ld_fludarabine_weight"]
    # rounded so that courses equal to the reference in exposure (e.g. Flu 30 × 4 + Cy 500 × 2)
    # give exactly 1, not 1 − 1e-16
    return round(w * flu / _Q["ld_ref_fludarabine_mg_m2"]
                 + (1.0 - w) * cy / _Q["ld_ref_cyclophosphamide_mg_m2"], 12)
