"""Body size: the reference adult and the plasma volume that whole-body constants scale with.

Cell counts in the model are whole-body counts (marrow, niche, B-cell pool, tumour, CAR-T), and
the per-patient ones already scale with body weight (``marrow_cells_per_kg`` and the like). The
constants that are compared with those counts (the half-saturations of CAR-T stimulation and
killing, the LBCL nodal capacity, steroid and anakinra exposures) are quoted for a reference
adult of ``ref_weight_kg`` and multiplied per patient by ``body_scale`` = weight /
``ref_weight_kg``. Cytokines are concentrations: the amount produced per day is divided by the
patient's plasma volume (``plasma_ml_per_kg`` × weight). So two patients who differ only in
weight, at equal dose per kg and equal marrow blast %, have the same trajectories in
concentrations, fractions and cells/µL; at the reference weight every value is the one quoted.
No states or kernels of its own: :func:`cartsim.population.build` derives ``plasma_ml`` and
``body_scale`` from these parameters, and the other mechanisms read them.
"""

from __future__ import annotations

from cartsim.model.mechanism import Mechanism
from cartsim.model.mechanism import param as _p

PARAMS = (
    _p("ref_weight_kg", "kg", 70.0, 10.0, 200.0,
       "convention: the 70-kg reference adult of pharmacokinetics (ICRP reference man ≈ 70 kg)",
       "reference body weight at which whole-body half-saturations and capacities are quoted",
       0.0, "body"),
    _p("plasma_ml_per_kg", "mL/kg", 40.0, 20.0, 80.0,
       "≈ 39 (men) – 40 (women) mL/kg (Mosby's Medical Dictionary, 8th ed.); children the same "
       "when normalised for body size (Raes 2006, BMC Pediatr 6:3)",
       "plasma volume per kg body weight: the distribution volume of serum cytokines",
       0.0, "body"),
)

MECHANISM = Mechanism(
    name="body",
    module=__name__,
    summary="body size: reference weight and plasma volume (scaling of whole-body constants)",
    params=PARAMS,
)
