import math

import pytest

from cartsim.errors import InvalidInputError
from cartsim.model.traits import WILD_TYPE, gene_kill_multiplier, knockout_traits
from cartsim.params import ParameterSpec, ParameterTable, markdown_table


def _spec(**kw):
    base = dict(name="dose", unit="cells/kg", default=1.0, lower=0.0, upper=10.0,
                provenance="test", description="a dose", lower_open=True)
    base.update(kw)
    return ParameterSpec(**base)


def test_validate_accepts_in_range_and_names_field_out_of_range():
    s = _spec()
    assert s.validate("2.5") == 2.5
    with pytest.raises(InvalidInputError) as e:
        s.validate(-1)
    msg = str(e.value)
    assert "dose" in msg and "(0, 10]" in msg and "-1" in msg
    with pytest.raises(InvalidInputError):
        s.validate(0.0)  # open lower bound
    with pytest.raises(InvalidInputError):
        s.validate(math.nan)
    with pytest.raises(InvalidInputError):
        s.validate("abc")


def test_spec_refuses_missing_provenance_and_bad_default():
    with pytest.raises(ValueError):
        _spec(provenance=" ")
    with pytest.raises(ValueError):
        _spec(default=20.0)


def test_table_resolve_and_markdown():
    t = ParameterTable((_spec(), _spec(name="weight", unit="kg", default=30.0, upper=200.0)))
    assert t.resolve({"weight": 40})["weight"] == 40.0
    with pytest.raises(InvalidInputError, match="parameter name"):
        t.resolve({"wieght": 40})
    md = markdown_table(t)
    assert "`weight`" in md and "kg" in md


def test_knockouts_map_to_route_effects():
    assert gene_kill_multiplier("FADD") < 1.0 < gene_kill_multiplier("CFLAR")
    assert gene_kill_multiplier("NOT_A_GENE") == pytest.approx(1.0)
    assert gene_kill_multiplier("IFNGR1") == pytest.approx(1.0)  # liquid tumours: B5
    assert gene_kill_multiplier("IFNGR1", "murine_ball_invitro") < 0.2
    assert (knockout_traits([]) == WILD_TYPE).all()
