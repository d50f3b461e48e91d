"""Simulator: determinism, shape, shared trait map, truth recovery, null calibration, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kstest
from typer.testing import CliRunner

from cartsim.model.traits import gene_kill_multiplier
from cartsim.screen.analysis import mageck_test
from cartsim.screen.cli import screen_app
from cartsim.screen.io import read_count_table
from cartsim.screen.simulate import ScreenDesign, simulate_screen, strong_genes


def test_deterministic_and_nonnegative() -> None:
    d = ScreenDesign(n_genes=300, n_controls=50, seed=7)
    a, b = simulate_screen(d), simulate_screen(d)
    np.testing.assert_array_equal(a.counts.counts, b.counts.counts)
    assert a.counts.counts.shape == (300 * 4 + 50, 1 + 3 * 3)
    assert (a.counts.counts >= 0).all()
    assert len(set(a.counts.sgrna)) == a.counts.n_sgrna


def test_h_comes_from_traits_module() -> None:
    sim = simulate_screen(ScreenDesign(n_genes=300, n_controls=10, seed=1))
    t = sim.truth.set_index("gene")
    for g in ("CD19", "FADD", "CFLAR", "PMAIP1", "STAT1"):
        assert t.loc[g, "h"] == pytest.approx(gene_kill_multiplier(g, "human_liquid"))
    murine = simulate_screen(ScreenDesign(n_genes=300, n_controls=10,
                                          preset="murine_ball_invitro"))
    assert murine.truth.set_index("gene").loc["STAT1", "h"] < 0.2


def test_recovers_strong_hits_one_seed() -> None:
    sim = simulate_screen(ScreenDesign(n_genes=2000, n_controls=200, seed=11))
    g = mageck_test(sim.counts, sim.treatment, sim.control,
                    control_sgrnas=sim.control_sgrnas).gene_summary.set_index("id")
    res, sen = strong_genes(sim.truth)
    assert len(res) == 9 and len(sen) == 3
    assert (g.loc[res, "pos|fdr"] < 0.05).mean() >= 0.9
    assert (g.loc[sen, "neg|fdr"] < 0.05).mean() >= 2 / 3
    assert g.loc["CD19", "pos|rank"] == 1


@pytest.mark.parametrize("seed", [0, 1])
def test_null_screen_calibrated(seed: int) -> None:
    sim = simulate_screen(ScreenDesign(n_genes=2000, n_controls=0, seed=seed, null=True))
    g = mageck_test(sim.counts, sim.treatment, sim.control).gene_summary
    assert (g["pos|fdr"] < 0.05).sum() == 0 and (g["neg|fdr"] < 0.05).sum() == 0
    ess = set(sim.truth.loc[sim.truth["class"] == "essential", "gene"])
    ne = g[~g["id"].isin(ess)]
    assert kstest(ne["pos|p-value"], "uniform").pvalue > 0.01


@pytest.mark.slow
def test_power_twenty_seeds() -> None:
    hits: dict[str, int] = {}
    for seed in range(20):
        sim = simulate_screen(ScreenDesign(seed=seed))
        g = mageck_test(sim.counts, sim.treatment, sim.control,
                        control_sgrnas=sim.control_sgrnas).gene_summary.set_index("id")
        res, sen = strong_genes(sim.truth)
        for x in res:
            hits[x] = hits.get(x, 0) + int(g.loc[x, "pos|fdr"] < 0.05)
        for x in sen:
            hits[x] = hits.get(x, 0) + int(g.loc[x, "neg|fdr"] < 0.05)
    assert all(v >= 18 for v in hits.values()), str(hits)


def test_cli_simulate_then_test(tmp_path: Path) -> None:
    runner = CliRunner()
    pre = str(tmp_path / "sim")
    r = runner.invoke(screen_app, ["simulate", "-n", pre, "--n-genes", "300",
                                   "--n-controls", "40", "--seed", "3"])
    assert r.exit_code == 0, r.output
    t = read_count_table(pre + ".count.txt")
    assert t.samples[-1] == "CART_r3"
    r = runner.invoke(screen_app, ["test", "-k", pre + ".count.txt", "-t", "CART_r1,CART_r2",
                                   "-c", "ctrl_r1,ctrl_r2", "--control-sgrna",
                                   pre + ".control_sgrnas.txt", "-n", pre, "--no-plot"])
    assert r.exit_code == 0, r.output
