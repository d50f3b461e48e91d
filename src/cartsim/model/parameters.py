"""Model parameters: one :class:`~cartsim.params.ParameterSpec` per rate, capacity or gain.

Each mechanism module declares its own parameters (``PARAMS``); :mod:`cartsim.model.layout`
composes them, in mechanism order, then the patient-level parameters and the per-clone fields,
into the per-patient parameter vector. The compiled right-hand side reads it through the
:data:`P` IntEnum (``p[P.rho_max]``), so there are no positional magic numbers. Per-patient
values are ``default × product multiplier × exp(iiv_sd·z)`` (see :mod:`cartsim.population`).
Docs tables are generated from this list (``python -m cartsim.model.parameters``).

Provenance tags: a citation where the number is taken from a publication (via
``shared/reference/models.md``), "calibrated to X" where the number was tuned so that an
emergent quantity lands on published kinetics, "assumed" where no source was found (these are
the first candidates for calibration).
"""

from __future__ import annotations

from math import log

from cartsim.model.clones import CLONE_FIELDS, N_CLONE_FIELDS, C
from cartsim.model.layout import CORE, PATIENT_PARAMS
from cartsim.model.tumour import clone_param_index
from cartsim.params import ParameterSpec, ParameterTable, markdown_table

LN2 = log(2.0)

#: The core mechanisms' parameters, in layout order.
MODEL_PARAMS: tuple[ParameterSpec, ...] = tuple(s for m in CORE.core for s in m.params)

ALL_PARAMS: tuple[ParameterSpec, ...] = MODEL_PARAMS + PATIENT_PARAMS
PARAMS = ParameterTable(ALL_PARAMS)

#: Named indices into the per-patient parameter vector (usable inside numba code).
P = CORE.P

N_PARAMS_BASE = CORE.n_params_base

__all__ = [
    "ALL_PARAMS", "C", "CLONE_FIELDS", "LN2", "MODEL_PARAMS", "N_CLONE_FIELDS", "N_PARAMS_BASE",
    "P", "PARAMS", "PATIENT_PARAMS", "clone_param_index",
]


def main() -> None:  # pragma: no cover - documentation generator
    print("## Model parameters\n")
    print(markdown_table(MODEL_PARAMS))
    print("\n## Patient-level parameters\n")
    print(markdown_table(PATIENT_PARAMS))
    from cartsim.model.layout import ADDONS

    for name, mech in ADDONS.items():
        print(f"\n## Add-on `{name}` parameters\n")
        print(markdown_table(mech.params))


if __name__ == "__main__":  # pragma: no cover
    main()
