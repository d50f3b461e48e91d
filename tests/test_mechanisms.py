"""Mechanisms as modules: layout composition, shared quantities and the generated vector field."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from cartsim.model import layout
from cartsim.model.mechanism import Kernel, Mechanism, Quantity, StateSpec, compose
from cartsim.model.mechanism import param as _p
from cartsim.model.parameters import MODEL_PARAMS, P
from cartsim.model.state import FIRST_ACCUMULATOR, N_STATES, STATE_INFO, S

# ---- two toy mechanisms: a source that provides a rate, and a sink that consumes it ---------


@numba.njit(inline="always")
def _source(y, p, dy):  # type: ignore[no-untyped-def]
    dy[0] = -p[0] * y[0]
    return p[0] * y[0]


@numba.njit(inline="always")
def _sink(y, p, dy, flux, boost):  # type: ignore[no-untyped-def]
    dy[1] = flux * boost - p[1] * y[1]


@numba.njit(inline="always")
def _booster(y, p, dy):  # type: ignore[no-untyped-def]
    return 3.0


def _toy(name: str, states: tuple[str, ...], kernels: tuple[Kernel, ...],
         quantities: tuple[Quantity, ...] = (), params: tuple[str, ...] = ()) -> Mechanism:
    return Mechanism(
        name=name, module=__name__, summary="toy",
        states=tuple(StateSpec(s, "–", s) for s in states),
        params=tuple(_p(q, "1/d", 1.0, 0.0, 10.0, "assumed", q) for q in params),
        quantities=quantities, kernels=kernels,
    )


SOURCE = _toy("source", ("A",), (Kernel(_source, provides=("flux",)),),
              (Quantity("flux", "1/d", "outflow of A"),), ("k_a",))
SINK = _toy("sink", ("B",), (Kernel(_sink, consumes=("flux", "boost")),),
            (Quantity("boost", "–", "multiplier", neutral=1.0, combine="product"),), ("k_b",))
BOOSTER = _toy("booster", (), (Kernel(_booster, provides=("boost",)),))


def test_core_layout_is_composed_from_the_mechanisms_in_order() -> None:
    core = layout.CORE
    assert [s[0] for s in STATE_INFO] == [s.name for s in core.states]
    assert N_STATES == core.n_states
    declared = [s.name for m in layout.CORE_MECHANISMS for s in m.states]
    assert sorted(declared) == sorted(S.__members__)
    # accumulators (daily integrals) come after every state that feeds back
    assert all(not s.accumulator for s in core.states[:FIRST_ACCUMULATOR])
    assert all(s.accumulator for s in core.states[FIRST_ACCUMULATOR:])
    assert [s.name for s in MODEL_PARAMS] == [
        s.name for m in layout.CORE_MECHANISMS for s in m.params]
    # patient-level parameters close the base vector (body size last: model/body.py)
    assert int(P.rho_max) == 0 and P.body_scale == core.n_params_base - 1
    assert int(P.weight_kg) == len(MODEL_PARAMS)


def test_every_core_quantity_has_one_provider_and_a_consumer() -> None:
    core = layout.CORE
    provided = [q for m in core.mechanisms for q in m.provides]
    consumed = {q for m in core.mechanisms for q in m.consumes}
    assert len(provided) == len(set(provided))
    for name, q in core.quantities.items():
        assert name in consumed, f"{name} is declared but nobody consumes it"
        assert name in provided or q.neutral is not None


def test_composed_rhs_passes_quantities_by_name_and_neutral_when_unprovided() -> None:
    y = np.array([2.0, 5.0])
    p = np.array([0.5, 0.1])
    dy = np.zeros(2)
    m = compose([SOURCE, SINK])
    assert "boost = 1.0" in m.source  # no provider: the neutral value
    m.rhs(0.0, y, p, dy)
    assert dy[0] == -1.0 and dy[1] == 1.0 * 1.0 - 0.5
    m2 = compose([SINK, SOURCE], [BOOSTER])  # registration order does not matter
    m2.rhs(0.0, y, p, dy)
    assert dy[1] == 1.0 * 3.0 - 0.5
    assert [s.name for s in m2.states] == ["B", "A"]


def test_composition_rejects_wrong_wiring() -> None:
    with pytest.raises(ValueError, match="no mechanism in the model declares"):
        compose([SINK])  # consumes 'flux', declared by no one
    bad = _toy("bad", ("C",), (Kernel(_sink, consumes=("boost", "flux")),))
    with pytest.raises(ValueError, match=r"must take \(y, p, dy, boost, flux\)"):
        compose([SOURCE, SINK, bad])
    twice = _toy("twice", ("D",), (Kernel(_source, provides=("flux",)),))
    with pytest.raises(ValueError, match="several providers"):
        compose([SOURCE, SINK, twice])
    with pytest.raises(ValueError, match="states declared twice"):
        compose([SOURCE, SINK, _toy("dup", ("A",), ())])


def test_core_model_has_no_addons_and_unknown_addons_are_named() -> None:
    assert layout.model() is layout.CORE
    with pytest.raises(ValueError, match="unknown add-on"):
        layout.model(["no_such_drug"])
    with pytest.raises(ValueError, match="unknown dose"):
        layout.addon_for_dose("no_such_drug")
