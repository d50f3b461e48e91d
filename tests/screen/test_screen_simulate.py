"""Simulator: determinism, shape, shared trait map, truth recovery, null calibration, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest
from typer.testing import CliRunner

from cartsim.model.traits import gene_kill_multiplier
from cartsim.screen.analysis import mageck_test
from cartsim.screen.cli import screen_app
from cartsim.screen.io import read_count_table
from cartsim.screen.simulate import (
    ScreenDesign,
    SimulatedScreen,
    simulate_screen,
    strong_genes,
)


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
    # CD19 (h = 0.02) has the largest effect; its α-RRA rank also depends on how many of its
    # four sgRNAs happen to be weak in this library draw, so check the median LFC instead.
    assert g["pos|lfc"].idxmax() == "CD19"


def _null_summary(sim: SimulatedScreen, use_controls: bool) -> pd.DataFrame:
    ctrl = sim.control_sgrnas if use_controls else None
    return mageck_test(sim.counts, sim.treatment, sim.control, control_sgrnas=ctrl).gene_summary


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_null_screen_calibrated_both_directions(seed: int) -> None:
    """All h = 1: enriched and depleted gene p-values are uniform and nothing is called."""
    sim = simulate_screen(ScreenDesign(n_genes=2000, n_controls=0, seed=seed, null=True))
    assert (sim.truth["h"] == 1.0).all()
    g = _null_summary(sim, use_controls=False)
    for d in ("pos", "neg"):
        assert kstest(g[f"{d}|p-value"], "uniform").pvalue > 0.01, d
        assert (g[f"{d}|fdr"] < 0.05).sum() == 0, d
        # a real miscalibration would show up as an excess of small p-values
        assert (g[f"{d}|p-value"] < 0.05).mean() < 0.08, d


def test_null_detects_a_planted_depletion() -> None:
    """The null check has power: the same design with a sensitiser planted finds it."""
    truth = pd.DataFrame({"gene": ["CFLAR"], "h": [2.0], "s": [0.0]})
    d = ScreenDesign(n_genes=2000, n_controls=0, seed=0, null=True)
    sim = simulate_screen(d.model_copy(update={"null": False, "grey_fraction": 0.0}), truth)
    g = _null_summary(sim, use_controls=False).set_index("id")
    assert g.loc["CFLAR", "neg|fdr"] < 0.05
    assert g.loc["CFLAR", "neg|rank"] <= 3


@pytest.mark.slow
def test_null_twenty_seeds_brunello() -> None:
    """Brunello-scale null screens (crispr.md §6 target 4), both directions, 20 seeds.

    The uniform-null analysis gives continuous p-values, so KS applies; with the 1,000
    non-targeting controls as the RRA null (MAGeCK's ``--control-sgrna``) p-values take only
    ~800 distinct values, so there we check false discoveries instead of KS.
    """
    ks_fail = {"pos": 0, "neg": 0}
    seeds_with_hits = {"uniform": 0, "controls": 0}
    calls_controls = 0
    for seed in range(20):
        sim = simulate_screen(ScreenDesign(seed=seed, null=True))
        g = _null_summary(sim, use_controls=False)
        ks = {d: kstest(g[f"{d}|p-value"], "uniform").pvalue for d in ("pos", "neg")}
        for d in ("pos", "neg"):
            ks_fail[d] += int(ks[d] <= 0.01)
        seeds_with_hits["uniform"] += int(((g["pos|fdr"] < 0.05) | (g["neg|fdr"] < 0.05)).any())
        gc = _null_summary(sim, use_controls=True)
        seeds_with_hits["controls"] += int(((gc["pos|fdr"] < 0.05) | (gc["neg|fdr"] < 0.05)).any())
        calls_controls += int((gc["pos|fdr"] < 0.05).sum() + (gc["neg|fdr"] < 0.05).sum())
        print(f"seed {seed}: KS p pos {ks['pos']:.3g} neg {ks['neg']:.3g}; FDR<0.05 calls "
              f"uniform {int((g['pos|fdr'] < 0.05).sum())}/{int((g['neg|fdr'] < 0.05).sum())}, "
              f"controls {int((gc['pos|fdr'] < 0.05).sum())}/{int((gc['neg|fdr'] < 0.05).sum())}")
    # at level 0.01, 20 calibrated seeds fail KS ≥ 2 times with probability 1.7 %
    assert ks_fail["pos"] <= 1 and ks_fail["neg"] <= 1, ks_fail
    # BH at 0.05 under the complete null allows a call in ≤ 5 % of screens per direction:
    # ≤ 1 of 20 seeds for the continuous uniform null. The discrete control-sgRNA null (1,000
    # NTC) misses that target (5 of 20 seeds with 1–2 calls on this branch, an open item in
    # docs/screen.md); here only "few": under one false call per 19,114-gene screen on average.
    assert seeds_with_hits["uniform"] <= 1, seeds_with_hits
    assert calls_controls < 20, calls_controls


@pytest.mark.slow
def test_power_twenty_seeds() -> None:
    """Default design (crispr.md §6 target 4): every strong gene found in ≥ 18 of 20 seeds."""
    hits: dict[str, int] = {}
    for seed in range(20):
        sim = simulate_screen(ScreenDesign(seed=seed))
        g = mageck_test(sim.counts, sim.treatment, sim.control,
                        control_sgrnas=sim.control_sgrnas).gene_summary.set_index("id")
        res, sen = strong_genes(sim.truth)
        assert {"TRAF2", "BIRC2", "CFLAR"} <= set(sen)
        for x in res:
            hits[x] = hits.get(x, 0) + int(g.loc[x, "pos|fdr"] < 0.05)
        for x in sen:
            hits[x] = hits.get(x, 0) + int(g.loc[x, "neg|fdr"] < 0.05)
    print("recovered of 20:", hits)
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


def test_cli_simulate_writes_all_outputs(tmp_path: Path) -> None:
    runner = CliRunner()
    pre = str(tmp_path / "s")
    r = runner.invoke(screen_app, ["simulate", "-n", pre, "--n-genes", "200", "--n-controls",
                                   "30", "--replicates", "2", "--seed", "5"])
    assert r.exit_code == 0, r.output
    t = read_count_table(pre + ".count.txt")
    assert t.n_sgrna == 200 * 4 + 30
    assert t.samples == ("plasmid", "T0_r1", "T0_r2", "ctrl_r1", "ctrl_r2", "CART_r1", "CART_r2")
    assert (t.counts >= 0).all() and (t.counts == np.round(t.counts)).all()
    ctrl = Path(pre + ".control_sgrnas.txt").read_text().split()
    assert len(ctrl) == 30 and set(ctrl) <= set(t.sgrna)
    truth = pd.read_csv(pre + ".truth.txt", sep="\t").set_index("gene")
    assert truth.shape[0] == 200
    assert truth.loc["FADD", "h"] == pytest.approx(gene_kill_multiplier("FADD"))
    sg = pd.read_csv(pre + ".sgrna_truth.txt", sep="\t")
    assert list(sg["sgrna"]) == list(t.sgrna)
    assert (sg.loc[sg["gene"] == "NonTargeting", "efficiency"] == 0).all()
    # same seed through the API gives the same table
    api = simulate_screen(ScreenDesign(n_genes=200, n_controls=30, replicates=2, seed=5))
    np.testing.assert_array_equal(api.counts.counts, t.counts)


def test_cli_simulate_bad_truth_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "truth.tsv"
    bad.write_text("gene\th\nFADD\t0.4\nCFLAR\t-2\n")
    r = CliRunner().invoke(screen_app, ["simulate", "-n", str(tmp_path / "x"), "--n-genes", "100",
                                        "--truth", str(bad)])
    assert r.exit_code == 2
    assert "line 3" in r.output and "column h" in r.output
    assert not (tmp_path / "x.count.txt").exists()


def test_cli_power_writes_table_and_figure(tmp_path: Path) -> None:
    pre = str(tmp_path / "pw")
    r = CliRunner().invoke(screen_app, ["power", "-n", pre, "--coverages", "30,1000", "--et",
                                        "0.25", "--replicates", "2", "--seeds", "1",
                                        "--n-genes", "300", "--n-controls", "40"])
    assert r.exit_code == 0, r.output
    tab = pd.read_csv(pre + ".power.txt", sep="\t")
    assert list(tab.columns) == ["coverage", "et_ratio", "replicates", "power_resistance",
                                 "power_sensitiser", "false_positives"]
    assert tab.shape[0] == 2 and tab["power_resistance"].between(0, 1).all()
    # 1000 cells per sgRNA finds at least as many resistance genes as a 30x bottleneck
    lo, hi = tab.sort_values("coverage")["power_resistance"]
    assert hi >= lo and hi > 0.5
    png = Path(pre + ".power.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_cli_power_rejects_bad_grid(tmp_path: Path) -> None:
    r = CliRunner().invoke(screen_app, ["power", "-n", str(tmp_path / "p"), "--coverages",
                                        "100,abc"])
    assert r.exit_code == 2
    assert "--coverages" in r.output and "abc" in r.output
    assert not (tmp_path / "p.power.txt").exists()


def test_cd274_knockout_is_neutral_in_pd_l1_negative_line() -> None:
    """CD274 acts through PD-1 on CAR-T (exhaustion), not the per-contact kill route; the default
    line (Nalm6-like) has pdl1 = 0, so its knockout leaves h at 1 (docs/screen.md)."""
    assert gene_kill_multiplier("CD274") == 1.0
    sim = simulate_screen(ScreenDesign(n_genes=100, n_controls=5, seed=0))
    assert sim.truth.set_index("gene").loc["CD274", "h"] == 1.0
