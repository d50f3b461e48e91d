"""The external (held-out) library, cartsim/data/external: pivotal trials that are not in the
calibration set, with their own targets file. Checks that it is a well-formed library whose
every row maps to a simulated quantity, that specs are built only from baseline/design rows,
that none of its studies is in the calibration targets (else it would not be held out), and that
``cartsim validate --external`` runs it end to end and refuses to be mixed with another library.
"""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from cartsim.calibrate.space import default_space_path
from cartsim.cli import app
from cartsim.trial.spec import load_spec
from cartsim.validate.library import external_dir, load_library
from cartsim.validate.mapping import default_mapping
from cartsim.validate.targets import default_targets_path, read_targets

EXT = external_dir()


def _rows() -> dict[int, dict[str, str]]:
    lines = (EXT / "targets.csv").read_text(encoding="utf-8").splitlines()
    rows = list(csv.DictReader(lines))
    assert len(lines) == len(rows) + 1, "a row spans several lines: line numbers would shift"
    return {i + 2: r for i, r in enumerate(rows)}


def test_external_targets_parse_without_row_errors() -> None:
    t = read_targets(EXT / "targets.csv", default_mapping())
    assert t.errors == []
    assert len(t.rows) == len(_rows())


def test_every_external_study_is_served_and_every_spec_loads() -> None:
    lib = load_library(EXT)
    studies = {r["study"] for r in _rows().values()}
    served = {s for e in lib.entries for s in e.studies}
    assert studies == served
    for e in lib.entries:
        load_spec(e.spec)


def test_external_specs_are_built_from_baseline_rows_of_their_own_studies() -> None:
    rows = _rows()
    mapping = default_mapping()  # its [baseline] table says which endpoints are inputs
    for e in load_library(EXT).entries:
        for line in e.sources:
            assert rows[line]["study"] in e.studies, (e.spec.name, line)
            assert mapping.classify(rows[line]["endpoint"]) == "baseline", (e.spec.name, line)


def test_every_external_row_says_where_it_was_read() -> None:
    """The folder's rule (README.md): each figure names its source in `notes` ("seen in: ...")
    and its citation; a row without them could not be checked against the paper."""
    for line, r in _rows().items():
        assert "seen in" in r["notes"].lower(), (line, r["study"], r["endpoint"])
        assert r["citation"].strip(), (line, r["study"])


def test_no_external_study_is_in_the_calibration_targets() -> None:
    with open(default_targets_path(), encoding="utf-8") as f:
        calibration = {r["study"] for r in csv.DictReader(f)}
    external = {r["study"] for r in _rows().values()}
    assert external.isdisjoint(calibration)
    # and the calibration space cannot name them either
    text = default_space_path().read_text(encoding="utf-8")
    for e in load_library(EXT).entries:
        assert f'"{e.spec.stem}"' not in text, e.spec.stem


def test_external_flag_refuses_another_library(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["validate", "--external", "--specs", str(tmp_path),
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "--external" in r.output
    assert not (tmp_path / "o").exists()


def test_external_validate_runs_end_to_end(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["validate", "--external", "--out", str(tmp_path),
                                 "--patients", "10", "--no-report", "--studies", "zuma3",
                                 "--workers", "1"])
    assert r.exit_code == 0, r.output
    import pandas as pd

    table = pd.read_csv(tmp_path / "validation.csv")
    compared = table[(table.study == "ZUMA-3 phase 2")
                     & table.endpoint.isin(["CR_CRi", "OS_median"])]
    assert len(compared) == 2
    assert compared.simulated.notna().all()
    assert (compared.simulated.iloc[0] > 0) and (compared.simulated.iloc[1] > 0)
