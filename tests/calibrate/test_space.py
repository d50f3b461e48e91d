"""The calibration space file: the shipped one loads; a bad one names the field at fault."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartsim.calibrate.space import SpaceError, load_space
from cartsim.cli import app
from cartsim.parameter_sets import known_specs

GOOD = """
[space]
name = "t"
[studies]
calibration = ["eliana"]
held_out = ["zuma4"]
[[parameter]]
name = "rho_max"
field = "default"
lower = 0.6
upper = 2.5
scale = "log"
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "space.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_the_shipped_space_names_only_known_upstream_parameters() -> None:
    space = load_space()
    specs = known_specs()
    assert space.dimensions and space.studies and space.held_out
    assert not set(space.studies) & set(space.held_out)
    for d in space.dimensions:
        assert d.parameter in specs
        assert d.lower <= d.current() <= d.upper
    ps = space.parameter_set({d.key: d.current() for d in space.dimensions}, "x", "y")
    assert set(ps.values) == {d.parameter for d in space.dimensions}


@pytest.mark.parametrize(("old", "new", "message"), [
    ('name = "rho_max"', 'name = "ORR"', "parameter[0].name: 'ORR' is not a parameter"),
    ('field = "default"', 'field = "mean"', "parameter[0] (rho_max).field: 'mean'"),
    ("lower = 0.6", "lower = 3.0", "parameter[0] (rho_max).lower: 3 >= upper 2.5"),
    ("lower = 0.6", "lower = 0.0", "a log scale needs lower > 0"),
    ("upper = 2.5", "upper = 9.0", "parameter[0] (rho_max).upper: 9 outside the parameter's"),
    ('scale = "log"', 'scale = "logit"', "parameter[0] (rho_max).scale: 'logit'"),
    ('scale = "log"', 'scale = "log"\nstep = 1', "unknown key(s) step"),
    ('held_out = ["zuma4"]', 'held_out = ["eliana"]', "studies.held_out: eliana also in"),
    ('calibration = ["eliana"]', "calibration = []", "studies.calibration: at least one"),
    ('lower = 0.6', 'lower = "low"', "parameter[0] (rho_max).lower: 'low'"),
])
def test_a_bad_space_names_the_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(SpaceError, match=None) as e:
        load_space(_write(tmp_path, GOOD.replace(old, new)))
    assert message in str(e.value)


def test_iiv_sd_of_a_population_constant_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace('name = "rho_max"', 'name = "lbcl_cart_access"').replace(
        'field = "default"', 'field = "iiv_sd"').replace("upper = 2.5", "upper = 0.9")
    with pytest.raises(SpaceError, match="population constant"):
        load_space(_write(tmp_path, text))


def test_cli_reports_a_bad_space_before_simulating(tmp_path: Path) -> None:
    bad = _write(tmp_path, GOOD.replace('name = "rho_max"', 'name = "CR_rate"'))
    res = CliRunner().invoke(app, ["calibrate", "--out", str(tmp_path / "o"), "--space",
                                   str(bad), "--budget", "2"])
    assert res.exit_code == 2
    assert "parameter[0].name: 'CR_rate' is not a parameter" in res.output
    assert not (tmp_path / "o" / "optuna.db").exists()


def test_a_warm_start_takes_a_sets_values_clipped_and_the_model_elsewhere(
        tmp_path: Path) -> None:
    from cartsim.calibrate.run import start_values
    from cartsim.parameter_sets import ParameterSet

    text = GOOD + ('\n[[parameter]]\nname = "k_ex"\nfield = "default"\nlower = 0.01\n'
                   'upper = 0.1\nscale = "log"\n')
    space = load_space(_write(tmp_path, text))
    ps = ParameterSet("earlier", "an earlier fit", {"rho_max": {"default": 9.0}})
    v = start_values(space, ps)
    assert v["rho_max.default"] == 2.5          # clipped to the space's upper bound
    assert v["k_ex.default"] == known_specs()["k_ex"].default   # not in the set: model value


def test_the_shipped_space_contains_the_models_own_values() -> None:
    """Calibration's first evaluation and the sensitivity's start are the model itself only
    if every dimension's box holds the model's value (mu_loss's box began above the model's
    3e-14 until session 33, so both started from a clipped value)."""
    from cartsim.calibrate.space import load_space
    from cartsim.parameter_sets import known_specs

    for d in load_space().dimensions:
        spec = known_specs()[d.parameter]
        v = spec.default if d.field == "default" else spec.iiv_sd
        assert d.lower <= v <= d.upper, d.key
        assert d.current() == v


_SPACES = sorted(Path(str(files("cartsim") / "data" / "calibration")).glob("space*.toml"))


def test_the_package_ships_the_sessions_spaces() -> None:
    assert {"space.toml", "space_lbcl_kinetics.toml", "space_cd28_kill.toml"} <= {
        p.name for p in _SPACES}


@pytest.mark.parametrize("path", _SPACES, ids=lambda p: p.name)
def test_every_shipped_space_file_loads_and_starts_at_the_model(path: Path) -> None:
    """The sessions' focused spaces (space_lbcl_kinetics.toml, space_cd28_kill.toml, ...) are
    kept so their fits can be repeated: each must still load against today's parameters, keep
    its studies apart, and hold the model's own values in every box (the first evaluation)."""
    space = load_space(path)
    assert space.dimensions and not set(space.studies) & set(space.held_out)
    for d in space.dimensions:
        assert d.lower <= d.current() <= d.upper, d.key
