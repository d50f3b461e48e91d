"""Design aid: power to recover strong hits versus coverage, E:T and replicates."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pandas as pd
from matplotlib.figure import Figure

from cartsim.atomic import atomic_write
from cartsim.screen.analysis import mageck_test
from cartsim.screen.simulate import ScreenDesign, simulate_screen, strong_genes


def power_grid(
    base: ScreenDesign,
    coverages: Sequence[float] = (100, 300, 500, 1000),
    et_ratios: Sequence[float] = (0.1, 0.25, 0.5),
    replicates: Sequence[int] = (2, 3),
    seeds: int = 3,
    fdr: float = 0.05,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Fraction of strong resistance genes (pos) and sensitisers (neg) found at FDR < ``fdr``.

    One row per (coverage, E:T, replicates) with the mean power over ``seeds`` simulated
    screens and the mean number of false positives (neutral genes at FDR < ``fdr``).
    """
    rows = []
    grid = list(itertools.product(coverages, et_ratios, replicates))
    total = len(grid) * seeds
    done = 0
    for cov, et, reps in grid:
        for sd in range(seeds):
            d = base.model_copy(update={"coverage": cov, "et_ratio": et, "replicates": reps,
                                        "seed": base.seed + sd})
            sim = simulate_screen(d)
            g = mageck_test(sim.counts, sim.treatment, sim.control,
                            control_sgrnas=sim.control_sgrnas).gene_summary.set_index("id")
            res, sen = strong_genes(sim.truth)
            neutral = sim.truth.loc[sim.truth["class"] == "neutral", "gene"]
            fp = int(((g.loc[neutral, "pos|fdr"] < fdr) | (g.loc[neutral, "neg|fdr"] < fdr)).sum())
            rows.append({
                "coverage": cov, "et_ratio": et, "replicates": reps, "seed": d.seed,
                "power_resistance": float((g.loc[res, "pos|fdr"] < fdr).mean()) if res else 1.0,
                "power_sensitiser": float((g.loc[sen, "neg|fdr"] < fdr).mean()) if sen else 1.0,
                "false_positives": fp,
            })
            done += 1
            if progress:
                progress(done, total)
    df = pd.DataFrame(rows)
    return (df.groupby(["coverage", "et_ratio", "replicates"], as_index=False)
              [["power_resistance", "power_sensitiser", "false_positives"]].mean())


def power_figure(table: pd.DataFrame, path: str) -> None:
    """Power versus coverage, one line per (E:T, replicates), resistance and sensitiser panels."""
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, col, name in ((axes[0], "power_resistance", "resistance genes (h ≤ 0.6)"),
                          (axes[1], "power_sensitiser", "sensitisers (h ≥ 1.4)")):
        for (et, reps), sub in table.groupby(["et_ratio", "replicates"]):
            ax.plot(sub["coverage"], sub[col], marker="o", label=f"E:T {et:g}, {reps} reps")
        ax.set_xscale("log")
        ax.set_xlabel("coverage (cells per sgRNA)")
        ax.set_title(name)
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("power at FDR < 0.05")
    axes[1].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda t: fig.savefig(t, dpi=120, format="png"))
