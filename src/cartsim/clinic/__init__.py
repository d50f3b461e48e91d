"""The clinician's rules: pure grading and response functions over arrays or records.

Graders (vectorised; scalars or arrays such as patients × days):

* :mod:`cartsim.clinic.crs` — ASTCT CRS (single time point and course with fever masking),
  Lee 2014, Penn, CARTOX, MSKCC, CTCAE v4.03/v5.0 CRS, carHLH.
* :mod:`cartsim.clinic.icans` — ASTCT ICANS with ICE, CAPD (< 12 y), sedation handling;
  CARTOX-10 and CRES.
* :mod:`cartsim.clinic.ctcae` — cytopenias, febrile neutropenia, fever, hypoxia (version setting).
* :mod:`cartsim.clinic.hematotox` — CAR-HEMATOTOX, EASIX, m-EASIX, ICAHT early/late.
* :mod:`cartsim.clinic.response` — B-ALL (CR, CRi, MRD, CD19-negative relapse), Lugano 2014.
* :mod:`cartsim.clinic.protocol` — management protocol as TOML data and its daily decision.
* :mod:`cartsim.clinic.records` / :mod:`cartsim.clinic.cli` — real records CSV → grades.

Names are loaded on first use (module ``__getattr__``), so importing a submodule such as
:mod:`cartsim.clinic.cli` (which ``cartsim --help`` mounts) does not build the protocol's
pydantic models or the graders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cartsim._lazy import lazy_names

#: Lazily loaded names → the submodule that defines them.
_LAZY: dict[str, str] = {
    "grade_cohort": "cartsim.clinic.cohort",
    "OXYGEN_DEVICES": "cartsim.clinic.crs",
    "CrsFeatures": "cartsim.clinic.crs",
    "astct_crs_course": "cartsim.clinic.crs",
    "astct_crs_grade": "cartsim.clinic.crs",
    "crs_grade_all_scales": "cartsim.clinic.crs",
    "astct_icans_grade": "cartsim.clinic.icans",
    "capd_score_from_answers": "cartsim.clinic.icans",
    "ice_score": "cartsim.clinic.icans",
    "Policy": "cartsim.clinic.protocol",
    "PolicyState": "cartsim.clinic.protocol",
    "load_protocol": "cartsim.clinic.protocol",
    "shipped_protocols": "cartsim.clinic.protocol",
}

__all__ = [
    "OXYGEN_DEVICES",
    "CrsFeatures",
    "Policy",
    "PolicyState",
    "astct_crs_course",
    "astct_crs_grade",
    "astct_icans_grade",
    "capd_score_from_answers",
    "crs_grade_all_scales",
    "grade_cohort",
    "ice_score",
    "load_protocol",
    "shipped_protocols",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), submodules=True)


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from cartsim.clinic.cohort import grade_cohort
    from cartsim.clinic.crs import (
        OXYGEN_DEVICES,
        CrsFeatures,
        astct_crs_course,
        astct_crs_grade,
        crs_grade_all_scales,
    )
    from cartsim.clinic.icans import astct_icans_grade, capd_score_from_answers, ice_score
    from cartsim.clinic.protocol import Policy, PolicyState, load_protocol, shipped_protocols
