"""Figures for screen results: volcano and rank plots of a gene summary."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cartsim.atomic import atomic_write


def volcano_rank_plot(
    gene_summary: pd.DataFrame,
    path: str | os.PathLike[str],
    fdr: float = 0.05,
    n_label: int = 10,
    title: str = "",
) -> Path:
    """Write a two-panel PNG: volcano (gene LFC vs −log10 p) and rank plot (−log10 RRA score).

    Genes at FDR < ``fdr`` are coloured (red = enriched/resistance, blue = depleted/sensitiser);
    the top ``n_label`` genes of each direction are labelled.
    """
    g = gene_summary
    lfc = g["neg|lfc"].to_numpy(dtype=float)
    p = np.minimum(g["neg|p-value"].to_numpy(float), g["pos|p-value"].to_numpy(float))
    pos_hit = g["pos|fdr"].to_numpy(float) < fdr
    neg_hit = g["neg|fdr"].to_numpy(float) < fdr
    fig = Figure(figsize=(11, 4.5))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.scatter(lfc, -np.log10(p), s=5, c="0.7", lw=0)
    ax1.scatter(lfc[pos_hit], -np.log10(p[pos_hit]), s=9, c="tab:red", lw=0,
                label=f"pos FDR<{fdr}")
    ax1.scatter(lfc[neg_hit], -np.log10(p[neg_hit]), s=9, c="tab:blue", lw=0,
                label=f"neg FDR<{fdr}")
    ax1.set_xlabel("gene log2 fold change (treatment / control)")
    ax1.set_ylabel("−log10 RRA p-value (best direction)")
    ax1.legend(frameon=False, fontsize=8)
    score = np.where(lfc >= 0, g["pos|score"].to_numpy(float), g["neg|score"].to_numpy(float))
    signed = np.sign(lfc) * -np.log10(np.maximum(score, 1e-300))
    order = np.argsort(signed)
    ax2.scatter(np.arange(order.size), signed[order], s=5, c="0.5", lw=0)
    for d, sgn, col in (("pos", 1, "tab:red"), ("neg", -1, "tab:blue")):
        top = g.sort_values(f"{d}|rank").head(n_label)
        for _, row in top.iterrows():
            i = int(np.flatnonzero(g["id"].to_numpy() == row["id"])[0])
            y = sgn * -np.log10(max(float(row[f"{d}|score"]), 1e-300))
            x = int(np.flatnonzero(order == i)[0])
            ax2.scatter([x], [y], s=12, c=col)
            ax2.annotate(str(row["id"]), (x, y), fontsize=7, color=col,
                         xytext=(-4 * sgn, 0), textcoords="offset points",
                         ha="right" if sgn > 0 else "left", va="center")
    ax2.set_xlabel("gene rank")
    ax2.set_ylabel("signed −log10 RRA score (+ enriched, − depleted)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    dest = Path(path)
    atomic_write(dest, lambda t: fig.savefig(t, dpi=120, format="png"))
    return dest
