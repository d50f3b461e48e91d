"""α-RRA gene ranking with a permutation null (MAGeCK's ``RRA`` program, re-implemented).

Algorithm (Li et al. 2014, Genome Biol 15:554; details follow the MAGeCK 0.5.9 ``RRA`` code as
described in ``shared/reference/crispr.md`` §1.5):

1. sgRNAs are ranked by a value (ascending = most selected first); percentile
   ``u = (rank − ½)/N`` with ties averaged.
2. For a gene with n sgRNAs and sorted percentiles ``u_(1) ≤ … ≤ u_(n)``, with ``j*`` = the
   number of percentiles ≤ α, the lo-value is
   ``ρ = min_{j = 1..max(1, j*)} I_{u_(j)}(j, n − j + 1)`` (regularised incomplete beta).
3. p-value: for each sgRNA count n, ``G·(P+1)`` null genes with n i.i.d. Uniform(0,1)
   percentiles (or percentiles resampled from the control sgRNAs) give a null distribution
   of ρ; p = (#null below ρ + ½)/R with ties split in half.
4. FDR: Benjamini–Hochberg over every gene group, including groups made only of control
   sgRNAs and genes named NA, which count with p = 1 but are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import betainc

#: gene names MAGeCK skips in the permutation (``--skip-gene NA --skip-gene na``).
SKIP_GENES = ("NA", "na")
#: minimum number of null genes per sgRNA-count group (P·G ≥ this, as in MAGeCK).
MIN_NULL_GENES = 100_000
#: cap on null percentiles drawn for one sgRNA-count group.
MAX_NULL_CELLS = 20_000_000


@dataclass(frozen=True)
class RRAResult:
    """Per-gene RRA output for one direction (rows in the order of ``genes``)."""

    genes: np.ndarray
    num: np.ndarray
    score: np.ndarray
    pvalue: np.ndarray
    fdr: np.ndarray
    rank: np.ndarray
    goodsgrna: np.ndarray


def percentiles(values: np.ndarray) -> np.ndarray:
    """Percentile ``(rank − ½)/N`` of each value in ascending order, ties averaged.

    As in MAGeCK's RRA, ties are detected within ±1e-9 via two binary searches.
    """
    v = np.asarray(values, dtype=np.float64)
    s = np.sort(v)
    lo = np.searchsorted(s, v - 1e-9, side="left")
    hi = np.searchsorted(s, v + 1e-9, side="right")
    return ((lo + hi) / 2.0) / v.size


def lo_values(u_sorted: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """α-truncated RRA lo-values of rows of sorted percentiles (m × n).

    Returns ``(rho, goodsgrna)``: ``goodsgrna`` = number of percentiles ≤ α per row.
    """
    u = np.asarray(u_sorted, dtype=np.float64)
    m, n = u.shape
    good = np.sum(u <= alpha, axis=1)
    jmax = np.maximum(good, 1)
    rho = betainc(1.0, float(n), u[:, 0]) if n > 0 else np.ones(m)
    for j in range(2, n + 1):
        rows = np.flatnonzero(jmax >= j)
        if rows.size == 0:
            break
        b = betainc(float(j), float(n - j + 1), u[rows, j - 1])
        rho[rows] = np.minimum(rho[rows], b)
    return rho, good


def bh_fdr(p: np.ndarray, m_total: int | None = None) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values; ``m_total`` ≥ len(p) adds p = 1 tests."""
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    m = n if m_total is None else max(int(m_total), n)
    if n == 0:
        return p.copy()
    order = np.argsort(p, kind="mergesort")
    ranked = p[order] * m / np.arange(1, n + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adj, 1.0)
    return out


def alpha_rra(
    values: np.ndarray,
    genes: np.ndarray,
    alpha: float,
    is_control: np.ndarray | None = None,
    permutations: int = 100,
    rng: np.random.Generator | None = None,
) -> tuple[RRAResult, int]:
    """Rank genes by α-RRA and attach permutation p-values and BH FDRs.

    Args:
        values: per-sgRNA ranking value; smaller = stronger selection in this direction.
        genes: gene symbol per sgRNA.
        alpha: percentile threshold of "good" sgRNAs.
        is_control: boolean mask of control sgRNAs; if any, the null percentiles are resampled
            from theirs and genes made only of controls are not reported.
        permutations: P, raised so that P·G ≥ 100,000 (G = number of gene groups).
        rng: random generator for the null (a fixed-seed one if omitted).

    Returns:
        (result for the reported genes, total number of gene groups G used in the BH step).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    values = np.asarray(values, dtype=np.float64)
    genes = np.asarray(genes).astype(str)
    ctrl = np.zeros(values.size, bool) if is_control is None else np.asarray(is_control, bool)
    u = percentiles(values)

    codes, uniq = pd.factorize(genes, sort=False)
    uniq = np.asarray(uniq).astype(str)
    g_total = uniq.size
    n_per = np.bincount(codes, minlength=g_total)
    n_ctrl = np.bincount(codes, weights=ctrl.astype(float), minlength=g_total)
    report = (n_ctrl < n_per) & ~np.isin(uniq, SKIP_GENES)

    # sorted percentile rows per gene, grouped by sgRNA count
    order = np.lexsort((u, codes))
    u_sorted_all = u[order]
    starts = np.concatenate([[0], np.cumsum(n_per)[:-1]])
    rho = np.ones(g_total)
    good = np.zeros(g_total, dtype=np.int64)
    sizes = np.unique(n_per[report])
    for n in sizes:
        gi = np.flatnonzero(report & (n_per == n))
        idx = starts[gi][:, None] + np.arange(n)[None, :]
        r, gd = lo_values(u_sorted_all[idx], alpha)
        rho[gi] = r
        good[gi] = gd

    passes = int(permutations)
    if passes * g_total < MIN_NULL_GENES:
        passes = MIN_NULL_GENES // max(g_total, 1) + 1
    n_null = g_total * (passes + 1)
    ctrl_u = u[ctrl]
    pval = np.ones(g_total)
    for n in sizes:
        # very large groups (e.g. 1,000 non-targeting guides under one name) get fewer null
        # draws so that memory and time stay bounded (≤ ~2·10⁷ percentiles per group)
        r_n = int(min(n_null, max(10_000, MAX_NULL_CELLS // int(n))))
        if ctrl_u.size > 0:
            draws = ctrl_u[rng.integers(0, ctrl_u.size, size=(r_n, n))]
        else:
            draws = rng.random((r_n, n))
        draws.sort(axis=1)
        null_rho, _ = lo_values(draws, alpha)
        null_rho.sort()
        gi = np.flatnonzero(report & (n_per == n))
        lo = np.searchsorted(null_rho, rho[gi], side="left")
        hi = np.searchsorted(null_rho, rho[gi], side="right")
        pval[gi] = np.minimum(((lo + hi) / 2.0 + 0.5) / r_n, 1.0)

    rep = np.flatnonzero(report)
    fdr = bh_fdr(pval[rep], m_total=g_total)
    # rank by lo-value (ties: p-value, then gene name)
    rorder = np.lexsort((uniq[rep], pval[rep], rho[rep]))
    rank = np.empty(rep.size, dtype=np.int64)
    rank[rorder] = np.arange(1, rep.size + 1)
    return (
        RRAResult(
            genes=uniq[rep],
            num=n_per[rep],
            score=rho[rep],
            pvalue=pval[rep],
            fdr=fdr,
            rank=rank,
            goodsgrna=good[rep],
        ),
        g_total,
    )
