"""Named layout of one patient's state vector (whole-body cell counts unless noted).

Composed from the states the mechanism modules declare (:mod:`cartsim.model.layout`). The
compiled right-hand side indexes the state through the :data:`S` IntEnum. States after
:data:`FIRST_ACCUMULATOR` are daily integrals that feed the stochastic layer; nothing in the
vector field depends on them, so the solver may skip their Jacobian columns.
"""

from __future__ import annotations

from cartsim.model.clones import N_CLONES
from cartsim.model.layout import CORE

#: (name, unit, meaning) of every state, in layout order.
STATE_INFO: tuple[tuple[str, str, str], ...] = CORE.state_info()

S = CORE.S
N_STATES = CORE.n_states
FIRST_ACCUMULATOR = CORE.first_accumulator
CLONE_STATES = (int(S.T0), int(S.T1), int(S.T2))
CART_BLOOD = (int(S.M_b), int(S.E_b), int(S.X_b))
CART_TISSUE = (int(S.M_t), int(S.E_t), int(S.X_t))

__all__ = ["CART_BLOOD", "CART_TISSUE", "CLONE_STATES", "FIRST_ACCUMULATOR", "N_CLONES",
           "N_STATES", "S", "STATE_INFO"]
