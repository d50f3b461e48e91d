"""`cartsim simulate` at scale (issue 13, item 5): chunks streamed to Parquet, bounded memory,
and a warning with an estimate before a run that would not fit."""

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cartsim.cli import app
from cartsim.streaming import estimate, resource_warnings

runner = CliRunner()
BASE = ["simulate", "--product", "tisagenlecleucel", "--disease", "b-all", "--days", "6",
        "--patients", "4", "--seed", "2"]


def test_chunks_stream_to_parquet_row_groups_with_the_same_content(tmp_path: Path) -> None:
    """Each chunk is appended as it finishes (one row group per chunk: the whole cohort is
    never held in memory), and the files hold exactly what one chunk of everyone gives."""
    streamed, whole = tmp_path / "streamed", tmp_path / "whole"
    r = runner.invoke(app, [*BASE, "--chunk-size", "2", "--out", str(streamed)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*BASE, "--chunk-size", "4", "--out", str(whole)])
    assert r.exit_code == 0, r.output
    assert pq.ParquetFile(streamed / "trajectories.parquet").num_row_groups == 2
    assert pq.ParquetFile(whole / "trajectories.parquet").num_row_groups == 1
    for name in ("trajectories.parquet", "events.parquet"):
        a = pd.read_parquet(streamed / name)
        b = pd.read_parquet(whole / name)
        pd.testing.assert_frame_equal(a, b)
    assert sorted(pd.read_parquet(streamed / "trajectories.parquet").patient_id.unique()) == [
        0, 1, 2, 3]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_warns_with_an_estimate_before_a_run_that_would_not_fit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cartsim.cli
    import cartsim.streaming

    monkeypatch.setattr(cartsim.streaming, "available_memory", lambda: 1e6)
    monkeypatch.setattr(cartsim.streaming, "free_disk", lambda path: 1e3)

    def no_run(*a: object, **k: object) -> object:
        raise cartsim.errors.InvalidInputError("run", "not reached in this test", "stopped")

    monkeypatch.setattr(cartsim.cli, "simulate_chunk", no_run)
    out = tmp_path / "run"
    r = runner.invoke(app, [*BASE, "--out", str(out)])
    assert r.exit_code != 0
    text = " ".join(r.output.split())
    # the warnings come before the (stopped) simulation, with the estimate and the remedy
    assert text.index("memory") < text.index("not reached")
    assert "GB" in text or "MB" in text
    assert "--chunk-size" in text and "free where --out is" in text
    assert not out.exists()


def test_estimate_scales_with_chunk_for_memory_and_cohort_for_disk(tmp_path: Path) -> None:
    small, big = estimate(10_000, 365, 1000), estimate(10_000, 365, 5000)
    assert big.memory > small.memory and big.disk == small.disk
    # the measurement: 10,000 patients × 371 days wrote 588 MB
    assert 0.5e9 < estimate(10_000, 365, 5000).disk < 0.8e9
    assert resource_warnings(10, 30, 10, tmp_path, memory=1e12, disk=1e12) == []
    assert len(resource_warnings(100_000, 365, 100_000, tmp_path, memory=8e9,
                                 disk=1e12)) == 1
