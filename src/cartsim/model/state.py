"""Named layout of one patient's state vector (whole-body cell counts unless noted).

The compiled right-hand side indexes the state through the :data:`S` IntEnum. States after
:data:`FIRST_ACCUMULATOR` are daily integrals that feed the stochastic layer; nothing in the
vector field depends on them, so the solver may skip their Jacobian columns.
"""

from __future__ import annotations

from enum import IntEnum

#: Tumour clone slots at the main disease site (marrow for B-ALL, nodes for LBCL):
#: 0 = dominant clone, 1 = pre-existing antigen-negative/low subclone, 2 = acquired antigen-loss
#: clone (seeded by the stochastic layer from clone 0). The dominant clone also lives in a
#: sanctuary site (state ``TS``: CNS/testis) that CAR-T cells reach poorly and that exchanges
#: cells with the marrow.
N_CLONES = 3

STATE_INFO: tuple[tuple[str, str, str], ...] = (
    # name, unit, meaning
    ("M_b", "cells", "memory/stem-like CAR-T, blood"),
    ("E_b", "cells", "effector CAR-T, blood"),
    ("X_b", "cells", "exhausted CAR-T, blood"),
    ("M_t", "cells", "memory CAR-T, tissue/disease site"),
    ("E_t", "cells", "effector CAR-T, tissue/disease site"),
    ("X_t", "cells", "exhausted CAR-T, tissue/disease site"),
    ("N_T", "cells", "normal T cells (the lymphocyte niche)"),
    ("T0", "cells", "tumour clone 0 (dominant)"),
    ("T1", "cells", "tumour clone 1 (pre-existing antigen-negative/low)"),
    ("T2", "cells", "tumour clone 2 (acquired antigen loss)"),
    ("TS", "cells", "dominant clone in the sanctuary site (CNS/testis; limited CAR-T access)"),
    ("B_out", "–", "B-progenitor output, fraction of normal"),
    ("B_prog", "cells", "CD19+ B progenitors (marrow)"),
    ("B", "cells", "mature B cells"),
    ("IgG", "mg/dL", "serum IgG"),
    ("IL6", "pg/mL", "serum IL-6"),
    ("IFNG", "pg/mL", "serum IFN-γ"),
    ("MY", "–", "myeloid activation"),
    ("EN", "–", "endothelial activation"),
    ("ENC", "–", "encephalopathy state"),
    ("NP", "cells/µL", "neutrophil proliferating compartment"),
    ("NT1", "cells/µL", "neutrophil transit 1"),
    ("NT2", "cells/µL", "neutrophil transit 2"),
    ("NT3", "cells/µL", "neutrophil transit 3"),
    ("NC", "cells/µL", "circulating neutrophils (ANC)"),
    ("PP", "cells/µL", "platelet proliferating compartment"),
    ("PT1", "cells/µL", "platelet transit 1"),
    ("PT2", "cells/µL", "platelet transit 2"),
    ("PT3", "cells/µL", "platelet transit 3"),
    ("PC", "cells/µL", "circulating platelets"),
    ("HB", "g/dL", "haemoglobin"),
    ("LD", "unit", "lymphodepleting chemotherapy exposure (1 unit = one day of Flu/Cy)"),
    ("TOCI", "µg/mL", "tocilizumab concentration"),
    ("STER", "mg dex-eq", "corticosteroid effect (dexamethasone equivalents)"),
    ("ANAK", "mg", "anakinra amount"),
    ("SILT", "µg/mL", "siltuximab concentration"),
    ("GCSF", "unit", "G-CSF exposure (1 unit = one daily dose)"),
    ("HZ0", "–", "∫ per-capita death hazard, clone 0 (daily)"),
    ("HZ1", "–", "∫ per-capita death hazard, clone 1 (daily)"),
    ("HZ2", "–", "∫ per-capita death hazard, clone 2 (daily)"),
    ("BR0", "–", "∫ per-capita birth rate, clone 0 (daily)"),
    ("BR1", "–", "∫ per-capita birth rate, clone 1 (daily)"),
    ("BR2", "–", "∫ per-capita birth rate, clone 2 (daily)"),
    ("MUT", "cells", "∫ antigen-loss mutant production from clone 0 (daily)"),
    ("HZS", "–", "∫ per-capita death + exit hazard, sanctuary clone (daily)"),
    ("BRS", "–", "∫ per-capita birth rate, sanctuary clone (daily)"),
    ("IMS", "cells", "∫ marrow → sanctuary seeding flux (daily)"),
    ("IMM", "cells", "∫ sanctuary → marrow reseeding flux into clone 0 (daily)"),
)

S = IntEnum("S", {name: i for i, (name, _, _) in enumerate(STATE_INFO)})  # type: ignore[misc]
N_STATES = len(STATE_INFO)
FIRST_ACCUMULATOR = int(S.HZ0)
CLONE_STATES = (int(S.T0), int(S.T1), int(S.T2))
CART_BLOOD = (int(S.M_b), int(S.E_b), int(S.X_b))
CART_TISSUE = (int(S.M_t), int(S.E_t), int(S.X_t))
