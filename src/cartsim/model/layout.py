"""The core model, composed from the registered mechanisms (see :mod:`cartsim.model.mechanism`).

:data:`CORE_MECHANISMS` lists the mechanism modules in layout order: their states, in this
order, make the state vector (accumulators last) and their parameters, then the patient-level
parameters and the per-clone fields, the parameter vector. :data:`ADDONS` are mechanisms a
simulation includes only when it uses them (a drug given by a schedule): they append their
states and parameters after the core ones, so a model without them is exactly the core model.
:func:`model` returns (and caches) the composed model for a set of add-ons.
"""

from __future__ import annotations

from collections.abc import Iterable

from cartsim.model import (
    bcells,
    body,
    cart,
    drugs,
    gvl,
    iap_inhibitor,
    inflammation,
    killing,
    marrow,
    niche,
    salvage_drugs,
    tumour,
)
from cartsim.model.clones import CLONE_FIELDS, N_CLONES
from cartsim.model.mechanism import Mechanism, Model, compose
from cartsim.model.mechanism import param as _p
from cartsim.params import ParameterSpec

#: Patient-level quantities the population sampler sets per patient (not rates).
PATIENT_PARAMS: tuple[ParameterSpec, ...] = (
    _p("weight_kg", "kg", 30.0, 2.0, 300.0, "input", "body weight"),
    _p("age_y", "y", 10.0, 0.0, 100.0, "input", "age"),
    _p("blood_ul", "µL", 2.25e6, 1e4, 1e8, "75 mL/kg × weight", "blood volume"),
    _p("marrow_cells", "cells", 3.3e11, 1e8, 1e14, "marrow_cells_per_kg × weight",
       "normal nucleated marrow cells"),
    _p("K_N", "cells", 1.08e11, 1e6, 1e14, "K_N_per_kg × weight", "lymphocyte niche capacity"),
    _p("B_ss", "cells", 1.08e10, 1e4, 1e13, "B_per_kg × weight", "steady-state B cells"),
    _p("b_prog_out0", "–", 0.3, 0.0, 1.0, "assumed (prior chemotherapy)",
       "B-progenitor output at start, fraction of normal"),
    _p("igg0", "mg/dL", 700.0, 0.0, 5000.0, "assumed", "baseline IgG"),
    _p("anc0", "cells/µL", 1500.0, 0.0, 1e5, "input", "baseline ANC"),
    _p("plt0", "cells/µL", 100e3, 0.0, 2e6, "input", "baseline platelets"),
    _p("hb0", "g/dL", 10.0, 2.0, 25.0, "input", "baseline haemoglobin"),
    _p("blast_frac0", "fraction", 0.0, 0.0, 1.0, "input (Cohort.marrow_blasts_pct; 0 in LBCL)",
       "marrow blast fraction at day −5 (blast crowding of the marrow chains)"),
    _p("map0", "mmHg", 80.0, 30.0, 150.0, "age-dependent normal", "baseline MAP"),
    _p("tumour_cap_cells", "cells", 1e13, 1e6, 1e15, "tumour_capacity × marrow cells (B-ALL); "
       "1e12 cells ≈ 1 L × body_scale (LBCL)", "tumour carrying capacity"),
    _p("disease_lbcl", "0/1", 0.0, 0.0, 1.0, "input",
       "1 = nodal lymphoma site (LBCL, MCL, FL), 0 = B-ALL (marrow)"),
    _p("cart_access", "–", 1.0, 0.0, 1.0, "assumed: 1 in marrow, lower in bulky nodes",
       "relative CAR-T access to the disease site"),
    _p("cns_disease", "0/1", 0.0, 0.0, 1.0, "input (Cohort.cns_disease)",
       "1 = overt CNS/testicular disease at baseline"),
    _p("lineage_switched", "0/1", 0.0, 0.0, 1.0,
       "population.build: a KMT2A-rearranged B-ALL drawn to hold a switched clone "
       "(tumour switch_frac, switch_present)",
       "1 = tumour clone 2 is the lineage-switched (myeloid) clone; read by the "
       "lineage_switch_fraction readout, no equation uses it"),
    _p("product_cd19", "0/1", 1.0, 0.0, 1.0, "product", "CAR recognises CD19"),
    _p("product_cd20", "0/1", 0.0, 0.0, 1.0, "product", "CAR recognises CD20"),
    _p("product_cd22", "0/1", 0.0, 0.0, 1.0, "product", "CAR recognises CD22"),
    _p("affinity", "–", 1.0, 1e-3, 1e3, "product", "binder affinity relative to FMC63"),
    _p("plasma_ml", "mL", 1200.0, 10.0, 3e4, "plasma_ml_per_kg × weight",
       "plasma volume (distribution volume of serum cytokines)"),
    _p("body_scale", "–", 30.0 / 70.0, 0.001, 30.0, "weight_kg / ref_weight_kg",
       "body size relative to the reference adult; multiplies whole-body half-saturations "
       "and capacities"),
)

CORE_MECHANISMS: tuple[Mechanism, ...] = (
    cart.MECHANISM,
    niche.MECHANISM,
    tumour.MECHANISM,
    killing.MECHANISM,
    bcells.MECHANISM,
    inflammation.MECHANISM,
    marrow.MECHANISM,
    drugs.MECHANISM,
    body.MECHANISM,
)

#: Optional mechanisms by name, in the order they are laid out when several join a model.
ADDONS: dict[str, Mechanism] = {
    "iap_inhibitor": iap_inhibitor.MECHANISM,
    "gvl": gvl.MECHANISM,
    **salvage_drugs.MECHANISMS,
}

CORE: Model = compose(CORE_MECHANISMS, patient_params=PATIENT_PARAMS,
                      clone_fields=CLONE_FIELDS, n_clones=N_CLONES, bind_core=True)

_MODELS: dict[tuple[str, ...], Model] = {(): CORE}


def model(addons: Iterable[str] = ()) -> Model:
    """The core model plus the named add-on mechanisms (composed and compiled once each)."""
    wanted = set(addons)
    unknown = wanted - set(ADDONS)
    if unknown:
        raise ValueError(f"unknown add-on mechanism(s) {sorted(unknown)}; "
                         f"registered: {sorted(ADDONS)}")
    key = tuple(n for n in ADDONS if n in wanted)
    found = _MODELS.get(key)
    if found is None:
        found = compose(CORE_MECHANISMS, [ADDONS[n] for n in key],
                        patient_params=PATIENT_PARAMS, clone_fields=CLONE_FIELDS,
                        n_clones=N_CLONES)
        _MODELS[key] = found
    return found


def addon_for_dose(name: str) -> str:
    """The add-on mechanism that declares dose route ``name`` (core routes return "")."""
    if name in CORE.doses:
        return ""
    for key, m in ADDONS.items():
        if any(d.name == name for d in m.doses):
            return key
    routes = sorted([*CORE.doses, *(d.name for m in ADDONS.values() for d in m.doses)])
    raise ValueError(f"unknown dose {name!r}; one of {routes}")


def markdown() -> str:
    """The mechanisms table for docs/model.md: states, parameters and shared quantities."""
    rows = ["| mechanism | module | states | parameters | consumes | provides |",
            "|---|---|---|---|---|---|"]
    for m in CORE_MECHANISMS + tuple(ADDONS.values()):
        kind = "" if m in CORE_MECHANISMS else " (add-on)"
        rows.append(
            f"| `{m.name}`{kind} | `{m.module}` | {', '.join(s.name for s in m.states) or '–'} "
            f"| {len(m.params)} | {', '.join(dict.fromkeys(m.consumes)) or '–'} "
            f"| {', '.join(m.provides) or '–'} |"
        )
    rows += ["", "| quantity | unit | meaning | value when not provided |", "|---|---|---|---|"]
    for m in CORE_MECHANISMS:
        for q in m.quantities:
            neutral = "–" if q.neutral is None else f"{q.neutral:g} ({q.combine})"
            rows.append(f"| `{q.name}` | {q.unit} | {q.meaning} | {neutral} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover - documentation generator
    print(markdown())
