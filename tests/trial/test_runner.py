"""Runner: resume after a kill, chunk-size and worker invariance, manifest checks.

Few processes on purpose (each compiles the model once, ~20–40 s): one in-process trial per
chunk size, one subprocess killed after its first chunk and one resumed subprocess that uses
two workers (so resume and worker-count invariance are checked by the same run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cartsim.errors import InvalidInputError, OptionalDependencyError
from cartsim.trial.runner import plan_chunks, run_trial
from cartsim.trial.spec import load_spec

SRC = Path(__file__).resolve().parents[2] / "src"
SPEC = """
name = "small"
seed = 11
follow_up_days = 90
assessment_days = [28, 56]
crs_scale = "lee2014"

[population]
disease = "b-all"
size = 12
age_y = { kind = "uniform", low = 3, high = 25 }
marrow_blasts_pct = { kind = "uniform", low = 5, high = 95 }
tp53_altered = { kind = "bernoulli", p = 0.3 }
cd19_negative_fraction = { kind = "beta", a = 0.5, b = 50, low = 0, high = 0.1 }

[[arms]]
name = "tisa"
product = "tisagenlecleucel"

[[arms]]
name = "cd28_hsct"
protocol = "none"
lymphodepletion = false
dose = { per_kg = { kind = "uniform", low = 1e6, high = 3e6 }, cap = 2e8 }
consolidation = { hsct = { day = 40, if_mrd_below = 1e-4 } }
[arms.construct]
name = "CD19-28z"
costim = "CD28"
"""


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("spec") / "small.toml"
    p.write_text(SPEC, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def reference(spec_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    run_trial(load_spec(spec_file), out, chunk_size=20, report=False)
    return out


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from cartsim.cli import app; app()", "trial", "run", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def test_plan_ids_are_interleaved_and_stable() -> None:
    from cartsim.trial.spec import validate_spec

    s = validate_spec({"population": {"disease": "b-all", "size": 5},
                       "arms": [{"name": "a", "product": "kymriah"},
                                {"name": "b", "product": "kymriah"}]})
    plans = plan_chunks(s, 2)
    assert [p.ids for p in plans] == [(0, 2), (4, 6), (8,), (1, 3), (5, 7), (9,)]
    bigger = plan_chunks(s.with_overrides(size=6), 100)
    assert bigger[0].ids[:5] == (0, 2, 4, 6, 8)  # growing the trial keeps existing patients
    paired = validate_spec({**s.canonical(), "population": {**s.canonical()["population"],
                                                            "paired": True}})
    assert [p.ids for p in plan_chunks(paired, 5)] == [(0, 1, 2, 3, 4)] * 2


def test_reference_run_outputs(reference: Path) -> None:
    p = pd.read_parquet(reference / "patients.parquet")
    assert list(p["arm"].unique()) == ["tisa", "cd28_hsct"]
    assert len(p) == 24 and p["patient_id"].is_unique
    assert (p.groupby("arm", sort=False)["patient_id"].apply(lambda s: s.is_monotonic_increasing)
            ).all()
    tisa, cd28 = p[p.arm == "tisa"], p[p.arm == "cd28_hsct"]
    assert (tisa["crs_grade_source"] == "protocol").all()
    assert (cd28["crs_grade_source"] == "physiology").all()
    assert "crs_max_grade_lee2014" in p and tisa["dose_per_kg"].nunique() > 1
    # HSCT only in the consolidation arm, only on day 40, only for MRD-negative patients
    assert tisa["hsct"].sum() == 0
    assert set(cd28.loc[cd28.hsct == 1, "hsct_day"]) <= {40.0}
    # time-to-event columns are complete and consistent
    for ep in ("efs", "os", "pfs"):
        assert p[f"{ep}_days"].notna().all()
        assert (p[f"{ep}_days"] <= 90).all()
    assert (p.loc[p.death == 1, "os_event"] == 1).all()
    s = json.loads((reference / "summary.json").read_text(encoding="utf-8"))
    assert {r["endpoint"] for r in s["rates"]} >= {"responder", "crs_any", "death"}
    assert {c["endpoint"] for c in s["comparisons"]} == {"efs", "os", "pfs"}
    m = json.loads((reference / "manifest.json").read_text(encoding="utf-8"))
    assert m["status"] == "complete" and m["seed"] == 11 and len(m["chunks"]) == 2
    d = pd.read_parquet(reference / "daily.parquet")
    assert set(d["day"]) >= {0, 28, 90} and len(d["patient_id"].unique()) == 24


def test_chunk_size_does_not_change_results(spec_file: Path, reference: Path,
                                            tmp_path: Path) -> None:
    run_trial(load_spec(spec_file), tmp_path / "c7", chunk_size=7, report=False)
    assert len(list((tmp_path / "c7" / "chunks" / "tisa").glob("chunk_*.parquet"))) == 2
    for f in ("patients.parquet", "daily.parquet"):
        assert (tmp_path / "c7" / f).read_bytes() == (reference / f).read_bytes(), f


def test_resume_after_kill_with_two_workers_gives_identical_bytes(
        spec_file: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(str(spec_file), "--out", str(out), "--chunk-size", "3",
                                 "--no-report"),
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if list(out.glob("chunks/*/chunk_*.parquet")):
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = list(out.glob("chunks/*/chunk_*.parquet"))
    assert 1 <= len(done) < 8, "the run must be interrupted after its first chunk"
    assert not (out / "patients.parquet").exists()
    first_mtime = {f: f.stat().st_mtime_ns for f in done}
    # a different seed is refused before anything runs
    bad = subprocess.run(_cli(str(spec_file), "--out", str(out), "--resume", "--seed", "12"),
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--resume" in bad.stderr and "seed 11" in bad.stderr
    res = subprocess.run(_cli(str(spec_file), "--out", str(out), "--resume", "--workers", "2",
                              "--no-report"),
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"({len(done)} resumed)" in " ".join(res.stderr.split())
    for f, t in first_mtime.items():
        assert f.stat().st_mtime_ns == t  # completed chunks were not redone
    for f in ("patients.parquet", "daily.parquet"):
        assert (out / f).read_bytes() == (reference / f).read_bytes(), f


def test_existing_output_needs_resume_and_dask_needs_the_extra(
        spec_file: Path, reference: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInputError, match="--resume"):
        run_trial(load_spec(spec_file), reference, chunk_size=20, report=False)
    # without dask installed (simulated: a None entry makes the import fail)
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(OptionalDependencyError, match=r"cartsim\[dask\]"):
        run_trial(load_spec(spec_file), reference / "x", executor="dask")


def test_spec_covariates_reach_the_model_cohort(spec_file: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """CNS disease and the resistance traits drawn by the spec are what the model receives."""
    import numpy as np

    import cartsim.simulation as simulation
    from cartsim.trial.runner import simulate_chunk

    seen = {}

    class Captured(Exception):
        pass

    def fake_simulate(cohort, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen["cohort"] = cohort
        raise Captured

    monkeypatch.setattr(simulation, "simulate", fake_simulate)
    spec = load_spec(spec_file)
    data = spec.canonical()
    data["population"]["cns_disease"] = {"kind": "bernoulli", "p": 1.0}
    from cartsim.trial.spec import validate_spec

    with pytest.raises(Captured):
        simulate_chunk(validate_spec(data), 0, np.arange(6))
    co = seen["cohort"]
    assert (co.cns_disease == 1.0).all()
    assert set(np.unique(co.tp53_altered)) <= {0.0, 1.0}


# slow (43 s on a cold compile cache): the default suite is at its 5-minute budget; the chunk-size
# and two-worker resume tests keep the invariance in the default run
@pytest.mark.slow
def test_dask_executor_gives_identical_bytes(spec_file: Path, reference: Path,
                                             tmp_path: Path) -> None:
    """The Dask executor (a local cluster of two worker processes) changes nothing."""
    pytest.importorskip("dask.distributed")
    out = tmp_path / "dask"
    run_trial(load_spec(spec_file), out, chunk_size=5, executor="dask", workers=2,
              report=False)
    for f in ("patients.parquet", "daily.parquet"):
        assert (out / f).read_bytes() == (reference / f).read_bytes(), f


@pytest.mark.slow  # ~20 s of the default suite; kept for `pytest -m slow`
def test_dask_scheduler_address(spec_file: Path, reference: Path, tmp_path: Path) -> None:
    """``--executor dask --address HOST:PORT`` submits to an existing scheduler."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        out = tmp_path / "addr"
        run_trial(load_spec(spec_file), out, chunk_size=20, executor="dask",
                  address=cluster.scheduler_address, report=False)
    assert (out / "patients.parquet").read_bytes() == (reference / "patients.parquet").read_bytes()


def test_resume_reruns_a_corrupted_chunk(spec_file: Path, reference: Path,
                                         tmp_path: Path) -> None:
    """A chunk damaged on disk (flipped bytes in a page, a truncated daily file) is run again
    by ``--resume`` instead of ending in a traceback or being merged as it is."""
    import shutil

    out = tmp_path / "damaged"
    shutil.copytree(reference, out)
    for f in ("patients.parquet", "daily.parquet"):
        (out / f).unlink()
    tisa = sorted(out.glob("chunks/tisa/chunk_*.parquet"))[0]
    raw = bytearray(tisa.read_bytes())
    mid = len(raw) // 3
    raw[mid:mid + 16] = bytes(b ^ 0xFF for b in raw[mid:mid + 16])
    tisa.write_bytes(bytes(raw))
    other = sorted(out.glob("chunks/cd28_hsct/daily_*.parquet"))[0]
    other.write_bytes(other.read_bytes()[: other.stat().st_size // 2])
    run = run_trial(load_spec(spec_file), out, resume=True, report=False)
    assert run.n_skipped == 0 and run.n_chunks == 2
    for f in ("patients.parquet", "daily.parquet"):
        assert (out / f).read_bytes() == (reference / f).read_bytes(), f
