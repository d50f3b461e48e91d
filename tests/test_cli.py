from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cartsim.cli import app

runner = CliRunner()
BASE = ["simulate", "--product", "tisagenlecleucel", "--disease", "b-all", "--days", "30"]


def test_simulate_writes_outputs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = runner.invoke(app, [*BASE, "--patients", "3", "--seed", "4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "stopped patients" in r.output  # failures are counted, not hidden
    traj = pd.read_parquet(out / "trajectories.parquet")
    need = {"patient_id", "day", "cart_cells_per_ul", "transgene_copies_per_ug",
            "marrow_blast_pct", "mrd_fraction", "cd19_negative_tumour_fraction",
            "b_cells_per_ul", "il6_pg_ml", "temperature_c", "map_mmhg", "spo2_pct",
            "anc_per_ul", "platelets_per_ul"}
    assert need <= set(traj.columns)
    assert len(traj) == 3 * (30 + 6)
    ev = pd.read_parquet(out / "events.parquet")
    assert {"lymphodepletion", "cart_infusion"} <= set(ev["event"])
    assert (out / "trajectories.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--dose-per-kg", "-1"], "dose-per-kg"),
        (["--marrow-blasts", "101"], "marrow_blasts"),
        (["--weight", "0"], "weight"),
        (["--product", "unknown-cel"], "product"),
        (["--lymphodepletion", "flu=80x3"], "fludarabine_mg_m2"),
        (["--lymphodepletion", "heavy"], "lymphodepletion"),
    ],
)
def test_bad_input_exits_nonzero_and_writes_nothing(tmp_path: Path, args: list[str],
                                                    word: str) -> None:
    out = tmp_path / "bad"
    argv = [*BASE, "--out", str(out), *args]
    r = runner.invoke(app, argv)
    assert r.exit_code != 0
    assert word in r.output
    assert not out.exists()


def test_version_flag() -> None:
    from typer.testing import CliRunner

    import cartsim
    from cartsim.cli import app

    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"cartsim {cartsim.__version__}"


def test_importing_the_cli_loads_no_heavy_library() -> None:
    """`cartsim --help` and every command start fast: pandas, matplotlib, scipy, numba and
    the simulator load only inside the command that needs them (fresh interpreter); so do
    pydantic and the clinic's protocol models and graders (``cartsim.clinic`` is lazy)."""
    import subprocess
    import sys

    heavy = ["pandas", "matplotlib", "scipy", "numba", "pyarrow", "pydantic",
             "cartsim.simulation", "cartsim.clinic.protocol", "cartsim.clinic.crs"]
    code = ("import sys, cartsim.cli; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"imported at CLI import time: {out}"


def test_no_plot_skips_the_png_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--no-plot` writes the Parquet files without trajectories.png, and without touching
    matplotlib (the PNG is the only reason a one-patient run needs it): every matplotlib
    module is made unimportable for the run."""
    import sys

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "noplot"
    r = runner.invoke(app, [*BASE, "--no-plot", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert not (out / "trajectories.png").exists()
    assert (out / "trajectories.parquet").exists() and (out / "events.parquet").exists()
    assert "trajectories.png" not in r.output


def test_loading_freezes_the_imports_only_in_a_fresh_process() -> None:
    """`cartsim simulate` imports its libraries with the cyclic collector paused and freezes
    them (a fresh process: cheaper collections while it runs and at shutdown); in a process
    that has the simulation loaded already (this one) the collector is left alone."""
    import gc
    import subprocess
    import sys

    import cartsim.simulation  # noqa: F401
    from cartsim.cli import _loading

    before = gc.get_freeze_count()
    with _loading():
        assert gc.isenabled()
    assert gc.get_freeze_count() == before and gc.isenabled()

    code = ("import gc, cartsim.cli as c\n"
            "with c._loading():\n"
            "    paused = not gc.isenabled()\n"
            "print(paused, gc.isenabled(), gc.get_freeze_count() > 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "True", "True"]


def test_simulate_takes_a_lymphodepletion_course(tmp_path: Path) -> None:
    """--lymphodepletion gives the course's exposure on the three lymphodepletion days
    (JULIET's Flu 25 + Cy 250 x3: 2/3 of the reference course); 'none' gives none."""
    out = tmp_path / "course"
    r = runner.invoke(app, [*BASE, "--out", str(out), "--no-plot",
                            "--lymphodepletion", "flu=25x3,cy=250x3"])
    assert r.exit_code == 0, r.output
    ev = pd.read_parquet(out / "events.parquet")
    ld = ev[ev["event"] == "lymphodepletion"]
    assert len(ld) == 3 and ld["value"].round(6).eq(0.666667).all()
    out2 = tmp_path / "none"
    r = runner.invoke(app, [*BASE, "--out", str(out2), "--no-plot", "--lymphodepletion", "none"])
    assert r.exit_code == 0, r.output
    assert "lymphodepletion" not in set(pd.read_parquet(out2 / "events.parquet")["event"])
