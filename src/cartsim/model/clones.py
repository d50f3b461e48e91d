"""Tumour clone slots and the per-clone parameter fields (data only).

Tumour clone slots at the main disease site (marrow for B-ALL, nodes for LBCL):
0 = dominant clone, 1 = pre-existing antigen-negative/low subclone, 2 = acquired antigen-loss
clone (seeded by the stochastic layer from clone 0); in KMT2A-rearranged B-ALL clone 2 also
starts with the lineage-switched myeloid cells and then carries no CD19, CD20 or CD22.
Clone 1 may have lost CD20 and/or CD22 as well (escape of multi-target CARs). The dominant
clone also lives in a sanctuary site (state ``TS``: CNS/testis) that CAR-T cells reach poorly
and that exchanges cells with the marrow. Per clone, the parameter vector holds its antigen
densities, trait vector and growth multiplier after the scalar parameters.
"""

from __future__ import annotations

from enum import IntEnum

from cartsim.model.traits import TRAIT_NAMES

N_CLONES = 3

CLONE_FIELDS: tuple[str, ...] = ("cd19", "cd20", "cd22", *TRAIT_NAMES, "growth_mult")
C = IntEnum("C", {f: i for i, f in enumerate(CLONE_FIELDS)})  # type: ignore[misc]
N_CLONE_FIELDS = len(CLONE_FIELDS)
