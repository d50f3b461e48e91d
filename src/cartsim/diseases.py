"""The diseases cartsim simulates, declared once (issue 11 item 4).

* ``b-all`` — B-cell acute lymphoblastic leukaemia: the disease site is the marrow; burden is
  marrow blasts (%), response is haematologic (CR/CRi, MRD).
* ``lbcl`` — large B-cell lymphoma: nodal site; burden is tumour volume (mL), response is
  Lugano 2014 from the SPD readout.
* ``mcl`` — mantle-cell lymphoma: nodal site plus, in some patients, marrow/blood (leukaemic)
  involvement (covariate ``marrow_involved``); burden, response and progression as LBCL.
* ``fl`` — follicular lymphoma: indolent nodal lymphoma (marrow involvement optional as in
  MCL); burden, response and progression as LBCL.

The lymphomas share the model's nodal site (model parameter ``disease_lbcl`` = 1, "nodal
lymphoma"), the tumour-volume covariate, the SPD readout and Lugano response; each has its own
growth rate, CAR-T access, carrying capacity, CD20 density and progression-death hazard
(:data:`cartsim.population.POPULATION_PARAMS`, :data:`cartsim.trial.outcomes.DEATH_PARAMS`),
so tuning LBCL leaves MCL and FL where they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from cartsim.errors import UnknownNameError


@dataclass(frozen=True)
class Disease:
    """One disease: its name, what it is, its main site and its response criteria."""

    name: str
    label: str
    site: str  # "marrow" or "nodal"
    response: str  # "b-all" (CR/CRi, MRD) or "lugano" (Lugano 2014 from SPD)
    burden: str  # the covariate that measures baseline burden


DISEASE_TABLE: tuple[Disease, ...] = (
    Disease("b-all", "B-cell acute lymphoblastic leukaemia", "marrow", "b-all",
            "marrow_blasts_pct"),
    Disease("lbcl", "large B-cell lymphoma", "nodal", "lugano", "tumour_volume_ml"),
    Disease("mcl", "mantle-cell lymphoma", "nodal", "lugano", "tumour_volume_ml"),
    Disease("fl", "follicular lymphoma", "nodal", "lugano", "tumour_volume_ml"),
)
BY_NAME: dict[str, Disease] = {d.name: d for d in DISEASE_TABLE}
DISEASES: tuple[str, ...] = tuple(BY_NAME)
#: Nodal lymphomas: tumour-volume burden, SPD readout, Lugano response, PFS.
LYMPHOMAS: tuple[str, ...] = tuple(d.name for d in DISEASE_TABLE if d.site == "nodal")
#: Lymphomas added after LBCL, each with its own ``<name>_*`` population and death parameters.
NEW_LYMPHOMAS: tuple[str, ...] = ("mcl", "fl")


def get_disease(name: str) -> Disease:
    """The disease of this name; an unknown name raises an error listing the allowed ones."""
    if name not in BY_NAME:
        raise UnknownNameError("disease", name, DISEASES)
    return BY_NAME[name]


def is_lymphoma(name: str) -> bool:
    """True for a nodal lymphoma (LBCL, MCL, FL)."""
    return name in LYMPHOMAS
