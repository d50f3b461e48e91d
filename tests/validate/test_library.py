"""The study library's index.toml loader and the default-library error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cartsim.cli import app
from cartsim.validate import run as run_module
from cartsim.validate.library import LibraryError, load_library

DATA = Path(__file__).parent / "data"


def test_test_library_loads() -> None:
    lib = load_library(DATA)
    assert [e.key for e in lib.entries] == ["eliana", "zuma1", "zuma4", "nci_cd19_28z",
                                            "tandem_cd19_cd20"]
    e = lib.entry_for("ZUMA-1 (2-year)")
    assert e is not None and e.key == "zuma1" and e.spec.is_file()
    assert e.subgroups["phase 2"] == "all" and 162 in e.sources
    assert lib.entry_for("ELIANA+ENSIGN pooled safety") is None
    assert lib.unexpressible == {"NOXA and CAR-T resistance":
                                 "in vitro / no clinical cohort the model can express"}


def test_every_problem_is_listed(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("name = 'a'\n", encoding="utf-8")
    (tmp_path / "index.toml").write_text("""
colour = "blue"
[[study]]
study = ["A", "B"]
spec = "a.toml"
sources = [1]
flavour = "x"
[[study]]
study = "B"
spec = "missing.toml"
[study.subgroups]
"TP53" = ""
[[unexpressible]]
study = "A"
reason = "also has a spec"
[[unexpressible]]
study = "C"
""", encoding="utf-8")
    with pytest.raises(LibraryError) as exc:
        load_library(tmp_path)
    msg = str(exc.value)
    for part in ("unknown top-level key(s) ['colour']", "study[0]: unknown key(s) ['flavour']",
                 "study[0].sources: a list of line numbers >= 2",
                 "study[1].study: 'B' already served by study[0]",
                 "study[1].spec:", "missing.toml does not exist",
                 "study[1].subgroups:", "unexpressible[0].study: 'A' also has a spec",
                 "unexpressible[1]: needs study"):
        assert part in msg, part
    assert len(exc.value.problems) == 8


def test_missing_index_names_specs_option(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="pass --specs"):
        load_library(tmp_path)


def test_no_shipped_library_asks_for_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setattr(run_module, "default_specs_dir", lambda: tmp_path / "studies")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["validate", "--out", str(out)])
    assert res.exit_code == 2
    assert "shipped study library is not installed" in res.output and "--specs" in res.output
    assert not out.exists()


def test_unknown_studies_name(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["validate", "--out", str(tmp_path / "o"), "--specs",
                                   str(DATA), "--studies", "eliana,no_such_trial"])
    assert res.exit_code == 2 and "--studies" in res.output and "no_such_trial" in res.output
