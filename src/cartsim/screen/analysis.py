"""MAGeCK-compatible ``test`` (α-RRA) analysis: normalisation, variance model, sgRNA statistics.

Follows the MAGeCK 0.5.9 / mageck2 0.3.0 implementation (which differs from the 2014 paper in
places; see ``shared/reference/crispr.md`` §1): per-group "means" are medians of normalised
counts and variances are taken around that median; sgRNA p-values use a normal approximation
truncated at zero with a mean–variance model fitted on the control samples; genes are ranked
with α-RRA (:mod:`cartsim.screen.rra`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from cartsim.errors import InvalidInputError
from cartsim.screen.io import (
    CountTable,
    CountTableError,
    atomic_write,
    fmt5,
    fmt_fdr,
    fmt_gene,
)
from cartsim.screen.rra import alpha_rra, bh_fdr, percentiles

NormMethod = Literal["median", "total", "control", "none"]
LfcMethod = Literal["median", "mean", "alphamedian", "alphamean", "secondbest"]
NORM_METHODS: tuple[str, ...] = ("median", "total", "control", "none")
LFC_METHODS: tuple[str, ...] = ("median", "mean", "alphamedian", "alphamean", "secondbest")

SGRNA_COLUMNS = [
    "sgrna", "Gene", "control_count", "treatment_count", "control_mean", "treat_mean", "LFC",
    "control_var", "adj_var", "score", "p.low", "p.high", "p.twosided", "FDR",
    "high_in_treatment",
]  # fmt: skip
GENE_COLUMNS = [
    "id", "num", "neg|score", "neg|p-value", "neg|fdr", "neg|rank", "neg|goodsgrna", "neg|lfc",
    "pos|score", "pos|p-value", "pos|fdr", "pos|rank", "pos|goodsgrna", "pos|lfc",
]  # fmt: skip


def _median_factors(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median-of-ratios medians (MAGeCK variant) and per-sample zero fractions of ``x``."""
    keep = x.sum(axis=1) > 0
    xx = x[keep]
    g = np.exp(np.mean(np.log(xx + 1.0), axis=1))
    g[g <= 0] = 1.0
    ratios = np.sort(xx / g[:, None], axis=0)
    med = ratios[ratios.shape[0] // 2, :] if ratios.shape[0] else np.zeros(x.shape[1])
    zero_frac = (x == 0).mean(axis=0) if x.shape[0] else np.ones(x.shape[1])
    return med, zero_frac


def size_factors(
    table: CountTable,
    method: str = "median",
    control_sgrnas: Sequence[str] | None = None,
) -> np.ndarray:
    """Size factors f_j (normalised = raw × f_j) over all samples of the table.

    ``median``: median of ratios to the pseudo-geometric mean exp(mean log(x+1)) over sgRNAs
    with any count (upper median), f = 1/median, falling back to ``total`` if a median is 0 or
    > 45 % of a sample's sgRNAs are zero. ``total``: mean column sum / column sum.
    ``control``: the median rule on the control sgRNAs only. ``none``: all 1.
    """
    if method not in NORM_METHODS:
        raise InvalidInputError("norm-method", "one of " + ", ".join(NORM_METHODS), method)
    x = table.counts
    tot = x.sum(axis=0)
    if np.any(tot <= 0):
        j = int(np.flatnonzero(tot <= 0)[0])
        raise CountTableError(
            f"count table column {table.samples[j]}", "a sample with a positive total", 0
        )
    total_f = tot.mean() / tot
    if method == "none":
        return np.ones(x.shape[1])
    if method == "total":
        return total_f
    if method == "control":
        if not control_sgrnas:
            raise InvalidInputError(
                "control-sgrna", "a control sgRNA list for --norm-method control", None
            )
        mask = np.isin(table.sgrna, np.asarray(list(control_sgrnas), dtype=str))
        if not mask.any():
            raise InvalidInputError(
                "control-sgrna",
                "ids that match column 1 of the count table exactly",
                list(control_sgrnas)[:3],
                "no control sgRNA found in the count table",
            )
        x = x[mask]
    med, zero_frac = _median_factors(x)
    if np.any(med <= 0) or np.any(zero_frac > 0.45):
        warnings.warn(
            "median normalisation impossible (a median is 0 or > 45% of sgRNAs are zero); "
            "using total normalisation",
            stacklevel=2,
        )
        return total_f
    f = 1.0 / med
    if np.any(f < 0.2) or np.any(f > 5):
        warnings.warn(f"extreme size factors {np.round(f, 3).tolist()}", stacklevel=2)
    return f


def _center_var(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MAGeCK's per-row 'mean' (median) and variance around it, divided by n − 1."""
    c = np.median(x, axis=1)
    n = x.shape[1]
    v = ((x - c[:, None]) ** 2).sum(axis=1) / (n - 1) if n > 1 else np.zeros(x.shape[0])
    return c, v


def fit_mean_variance(x: np.ndarray) -> tuple[float, float]:
    """Fit ``log2(v − m + 1) = k·log2(m + 1) + b`` by least squares weighted by m.

    ``x``: normalised counts of the samples used for fitting (sgRNAs × samples). sgRNAs whose
    centre exceeds median + 4 SD of all centres (SD taken around the median) are dropped as
    outliers, and only those with v > m are used. Returns
    (k, b) clamped to k ≥ 1, b ≥ 0; the model variance is then ``m^k·2^b + m``.
    """
    m, v = _center_var(x)
    if m.size > 10:
        # the centre and spread of the per-sgRNA means are themselves MAGeCK's median and
        # median-centred SD (version ≥ 0.5.8 outlier rule)
        cm, cv = _center_var(m[None, :])
        cutoff = cm[0] + 4.0 * np.sqrt(cv[0])
    else:
        cutoff = 2.0 * m.max()
    keep = m < cutoff
    m, v = m[keep], v[keep]
    sel = v > m
    if sel.sum() < 10:
        warnings.warn("fewer than 10 sgRNAs with variance > mean; variance model uses all",
                      stacklevel=2)
        diff = np.maximum(v - m, 0.01)
    else:
        m, diff = m[sel], (v - m)[sel]
    xs = np.log2(m + 1.0)
    ys = np.log2(diff + 1.0)
    w = m
    sw = w.sum()
    if sw <= 0:
        return 1.0, 0.0
    xm, ym = (w * xs).sum() / sw, (w * ys).sum() / sw
    sxx = (w * (xs - xm) ** 2).sum()
    k = (w * (xs - xm) * (ys - ym)).sum() / sxx if sxx > 0 else 1.0
    b = ym - k * xm
    return float(max(k, 1.0)), float(max(b, 0.0))


@dataclass
class ScreenTestResult:
    """Result of :func:`mageck_test`: MAGeCK-layout summaries plus model diagnostics."""

    sgrna_summary: pd.DataFrame
    gene_summary: pd.DataFrame
    size_factors: np.ndarray
    k: float
    b: float
    alpha_low: float
    alpha_high: float
    n_gene_groups: int
    extra: dict[str, object] = field(default_factory=dict)

    def write(self, prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``PREFIX.gene_summary.txt`` and ``PREFIX.sgrna_summary.txt`` atomically."""
        return write_summaries(self, prefix)


def _truncnorm_p(c: np.ndarray, t: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, ...]:
    """MAGeCK's ``getNormalPValue``: lower/upper p of a normal truncated at zero."""
    sd = np.sqrt(var)
    z = (t - c) / sd
    z0 = -c / sd
    p0 = ndtr(z0)
    denom = 1.0 - p0
    plow = (ndtr(z) - p0) / denom
    phigh = (1.0 - ndtr(z)) / denom
    # upper tail without cancellation for large z
    big = z > 5
    if np.any(big):
        phigh[big] = ndtr(-z[big]) / denom[big]
    plow = np.clip(plow, 0.0, 1.0)
    phigh = np.clip(phigh, 0.0, 1.0)
    return plow, phigh, z


def _gene_lfc(lfc: np.ndarray, codes: np.ndarray, n_genes: int, method: str,
              good_mask: np.ndarray | None = None) -> np.ndarray:
    """Per-gene LFC summary of sgRNA LFCs (``median``, ``mean``, ``alpha*``, ``secondbest``)."""
    df = pd.DataFrame({"g": codes, "lfc": lfc})
    if method in ("alphamedian", "alphamean") and good_mask is not None:
        sub = df[good_mask]
        agg = sub.groupby("g")["lfc"].agg("median" if method == "alphamedian" else "mean")
        base = df.groupby("g")["lfc"].median()
        out = base.copy()
        out.loc[agg.index] = agg
    elif method == "secondbest":
        out = df.groupby("g")["lfc"].agg(
            lambda s: np.sort(s.to_numpy())[1] if s.size > 1 else s.iloc[0]
        )
    else:
        out = df.groupby("g")["lfc"].agg("mean" if method == "mean" else "median")
    res = np.zeros(n_genes)
    res[out.index.to_numpy()] = out.to_numpy()
    return res


def mageck_test(
    table: CountTable,
    treatment: str | Sequence[str | int],
    control: str | Sequence[str | int],
    norm_method: str = "median",
    control_sgrnas: Sequence[str] | None = None,
    gene_test_fdr_threshold: float = 0.25,
    adjust_method: str = "fdr",
    remove_zero: str = "both",
    gene_lfc_method: str = "median",
    permutations: int = 100,
    seed: int = 0,
) -> ScreenTestResult:
    """Compare treatment with control samples, as ``mageck test`` does.

    Args:
        table: the count table.
        treatment, control: sample labels or 0-based indices (comma-separated string or list).
        norm_method: ``median`` (default), ``total``, ``control`` or ``none``.
        control_sgrnas: control sgRNA ids (for ``control`` normalisation and the RRA null).
        gene_test_fdr_threshold: τ; α = fraction of sgRNAs with one-sided p ≤ τ, clamped to
            [0.05, 0.5] for negative selection and unclamped for positive selection (0.01 if no
            sgRNA passes), as in MAGeCK ≥ 0.5.7.
        adjust_method: sgRNA-level correction, ``fdr`` (BH) or ``holm``.
        remove_zero: exclude sgRNAs from RRA whose ``both`` group means are 0, ``any``, ``control``,
            ``treatment`` or ``none``.
        gene_lfc_method: ``median``, ``mean``, ``alphamedian``, ``alphamean`` or ``secondbest``.
        permutations: RRA permutation passes P ≥ 1 (raised so that P·G ≥ 100,000, as RRA
            does with its default); 0 is refused.
        seed: seed of the permutation null.
    """
    if gene_lfc_method not in LFC_METHODS:
        raise InvalidInputError("gene-lfc-method", "one of " + ", ".join(LFC_METHODS),
                                gene_lfc_method)
    if adjust_method not in ("fdr", "holm"):
        raise InvalidInputError("adjust-method", "fdr or holm", adjust_method)
    if remove_zero not in ("both", "any", "control", "treatment", "none"):
        raise InvalidInputError("remove-zero", "both, any, control, treatment or none",
                                remove_zero)
    if isinstance(permutations, bool) or not isinstance(permutations, (int, np.integer)) \
            or permutations < 1:
        raise InvalidInputError(
            "permutation-round", "an integer ≥ 1 (permutation passes over all genes; MAGeCK's "
            "RRA has no zero-permutation mode: 0 would still draw one pass and report "
            "p-values from it)", permutations)
    if not 0 < gene_test_fdr_threshold <= 1:
        raise InvalidInputError("gene-test-fdr-threshold", "0 < τ ≤ 1", gene_test_fdr_threshold)
    ti = table.resolve_samples(treatment, "treatment samples (-t)")
    ci = table.resolve_samples(control, "control samples (-c)")
    overlap = set(ti) & set(ci)
    if overlap:
        raise InvalidInputError(
            "treatment/control samples", "disjoint sample sets",
            [table.samples[i] for i in sorted(overlap)],
        )
    # MAGeCK normalises the table restricted to the selected samples (treatment, control)
    sel = ti + ci
    sub = CountTable(
        sgrna=table.sgrna,
        gene=table.gene,
        samples=tuple(table.samples[j] for j in sel),
        counts=table.counts[:, sel],
    )
    f_sel = size_factors(sub, norm_method, control_sgrnas)
    f = np.full(len(table.samples), np.nan)
    f[sel] = f_sel
    x = table.counts * np.nan_to_num(f, nan=0.0)[None, :]
    xc, xt = x[:, ci], x[:, ti]

    fit_cols = ci if len(ci) > 1 else ci + ti
    k, b = fit_mean_variance(x[:, fit_cols])

    cmean, cvar = _center_var(xc)
    tmean = np.median(xt, axis=1)
    # zero handling (MAGeCK replaces zero means by the smallest positive mean)
    cpos = cmean[cmean > 0]
    cmin = cpos.min() if cpos.size else 1.0
    zero_c = cmean == 0
    zero_t = tmean == 0
    cm = np.where(zero_c, cmin, cmean)
    tpos = tmean[tmean > 0]
    tmin = tpos.min() if tpos.size else 1.0
    tm_p = np.where(zero_t, tmin, tmean)
    adj_var = cm**k * 2.0**b + cm

    plow, phigh, z0 = _truncnorm_p(cm, tm_p, adj_var)
    ptwo = np.minimum(2.0 * np.minimum(plow, phigh), 1.0)
    theta0 = (tmean - cm) / np.sqrt(adj_var)
    theta = theta0.copy()
    dep = theta0 < 0
    if np.any(dep):
        pp = plow[dep].copy()
        ppos = plow[plow > 0]
        floor = 0.1 * ppos.min() if ppos.size else 1e-300
        pp[pp <= 0] = floor
        q = ndtri(pp)
        q = np.where(np.isfinite(q), q, theta0[dep])
        theta[dep] = q
    lfc = np.log2(tmean + 1.0) - np.log2(cm + 1.0)

    if remove_zero == "both":
        keep = ~(zero_c & zero_t)
    elif remove_zero == "any":
        keep = ~(zero_c | zero_t)
    elif remove_zero == "control":
        keep = ~zero_c
    elif remove_zero == "treatment":
        keep = ~zero_t
    else:
        keep = np.ones(table.n_sgrna, bool)

    if adjust_method == "fdr":
        sg_fdr = bh_fdr(ptwo)
    else:
        order = np.argsort(ptwo, kind="mergesort")
        m = ptwo.size
        adj = np.maximum.accumulate(ptwo[order] * (m - np.arange(m)))
        sg_fdr = np.empty(m)
        sg_fdr[order] = np.minimum(adj, 1.0)

    ctrl_mask = None
    if control_sgrnas:
        ctrl_mask = np.isin(table.sgrna, np.asarray(list(control_sgrnas), dtype=str))[keep]
    genes_k = table.gene[keep]
    n_k = int(keep.sum())
    if n_k == 0:
        raise InvalidInputError("count table", "at least one sgRNA with a non-zero count", 0)
    a_low = np.clip(np.sum(plow[keep] <= gene_test_fdr_threshold) / n_k, 0.05, 0.5)
    # positive selection: MAGeCK does not clamp α (0.01 when no sgRNA passes)
    n_high = int(np.sum(phigh[keep] <= gene_test_fdr_threshold))
    a_high = n_high / n_k if n_high > 0 else 0.01

    ss = np.random.SeedSequence(seed)
    rng_neg, rng_pos = (np.random.default_rng(s) for s in ss.spawn(2))
    neg, g_total = alpha_rra(theta[keep], genes_k, a_low, ctrl_mask, permutations, rng_neg)
    pos, _ = alpha_rra(-theta[keep], genes_k, a_high, ctrl_mask, permutations, rng_pos)

    # gene LFC over retained sgRNAs
    codes, uniq = pd.factorize(genes_k, sort=False)
    uniq = np.asarray(uniq).astype(str)

    good_neg = percentiles(theta[keep]) <= a_low
    lfc_g = _gene_lfc(lfc[keep], codes, uniq.size, gene_lfc_method, good_neg)
    lfc_map = dict(zip(uniq, lfc_g, strict=True))

    pos_idx = pd.Index(pos.genes).get_indexer(neg.genes)
    gene_df = pd.DataFrame(
        {
            "id": neg.genes,
            "num": neg.num,
            "neg|score": neg.score,
            "neg|p-value": neg.pvalue,
            "neg|fdr": neg.fdr,
            "neg|rank": neg.rank,
            "neg|goodsgrna": neg.goodsgrna,
            "neg|lfc": [lfc_map[g] for g in neg.genes],
            "pos|score": pos.score[pos_idx],
            "pos|p-value": pos.pvalue[pos_idx],
            "pos|fdr": pos.fdr[pos_idx],
            "pos|rank": pos.rank[pos_idx],
            "pos|goodsgrna": pos.goodsgrna[pos_idx],
        }
    )
    gene_df["pos|lfc"] = gene_df["neg|lfc"]
    gene_df = gene_df.sort_values("neg|rank", kind="mergesort").reset_index(drop=True)

    def joined(mat: np.ndarray) -> list[str]:
        return ["/".join(fmt5(v) for v in row) for row in mat]

    sg_df = pd.DataFrame(
        {
            "sgrna": table.sgrna,
            "Gene": table.gene,
            "control_count": joined(xc),
            "treatment_count": joined(xt),
            "control_mean": cm,
            "treat_mean": tmean,
            "LFC": lfc,
            "control_var": cvar,
            "adj_var": adj_var,
            "score": np.abs(theta),
            "p.low": plow,
            "p.high": phigh,
            "p.twosided": ptwo,
            "FDR": sg_fdr,
            "high_in_treatment": tmean > cm,
        }
    )
    sg_df = sg_df.sort_values("score", ascending=False, kind="mergesort").reset_index(drop=True)
    return ScreenTestResult(
        sgrna_summary=sg_df,
        gene_summary=gene_df,
        size_factors=f,
        k=k,
        b=b,
        alpha_low=float(a_low),
        alpha_high=float(a_high),
        n_gene_groups=g_total,
        extra={"n_removed_zero": int((~keep).sum()), "treatment": ti, "control": ci},
    )


def format_gene_summary(df: pd.DataFrame) -> str:
    """Gene summary as MAGeCK prints it (tab-separated, 5 significant digits)."""
    out = pd.DataFrame({"id": df["id"], "num": df["num"].astype(int)})
    for d in ("neg", "pos"):
        out[f"{d}|score"] = [fmt_gene(v) for v in df[f"{d}|score"]]
        out[f"{d}|p-value"] = [fmt_gene(v) for v in df[f"{d}|p-value"]]
        out[f"{d}|fdr"] = [fmt_fdr(v) for v in df[f"{d}|fdr"]]
        out[f"{d}|rank"] = df[f"{d}|rank"].astype(int)
        out[f"{d}|goodsgrna"] = df[f"{d}|goodsgrna"].astype(int)
        out[f"{d}|lfc"] = [fmt5(v) for v in df[f"{d}|lfc"]]
    return out[GENE_COLUMNS].to_csv(sep="\t", index=False)


def format_sgrna_summary(df: pd.DataFrame) -> str:
    """sgRNA summary as MAGeCK prints it."""
    out = df.copy()
    for c in ("control_mean", "treat_mean", "LFC", "control_var", "adj_var", "score", "p.low",
              "p.high", "p.twosided", "FDR"):
        out[c] = [fmt5(v) for v in df[c]]
    out["high_in_treatment"] = ["True" if v else "False" for v in df["high_in_treatment"]]
    return out[SGRNA_COLUMNS].to_csv(sep="\t", index=False)


def write_summaries(result: ScreenTestResult, prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``PREFIX.gene_summary.txt`` and ``PREFIX.sgrna_summary.txt`` atomically."""
    pre = str(prefix)
    g = atomic_write(pre + ".gene_summary.txt",
                     lambda t: t.write_text(format_gene_summary(result.gene_summary)))
    s = atomic_write(pre + ".sgrna_summary.txt",
                     lambda t: t.write_text(format_sgrna_summary(result.sgrna_summary)))
    return g, s


def read_gene_summary(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a MAGeCK ``gene_summary.txt`` (ours or MAGeCK's)."""
    return pd.read_csv(path, sep="\t")


def compare_gene_summaries(
    ours: pd.DataFrame, reference: pd.DataFrame, top: int = 10, fdr: float = 0.05
) -> dict[str, dict[str, object]]:
    """Agreement of two gene summaries per direction (``neg``, ``pos``).

    Returns for each direction: ``top_identical`` (same top-``top`` genes in the same order),
    ``n_ours``/``n_ref`` (genes at FDR < ``fdr``) and ``spearman`` (rank correlation of the
    RRA scores over the shared genes).
    """
    from scipy.stats import spearmanr

    m = reference.merge(ours, on="id", suffixes=("_ref", "_ours"))
    out: dict[str, dict[str, object]] = {}
    for d in ("neg", "pos"):
        t_ref = list(reference.sort_values(f"{d}|rank")["id"][:top])
        t_ours = list(ours.sort_values(f"{d}|rank")["id"][:top])
        out[d] = {
            "top_identical": t_ref == t_ours,
            "n_ours": int((ours[f"{d}|fdr"] < fdr).sum()),
            "n_ref": int((reference[f"{d}|fdr"] < fdr).sum()),
            "spearman": float(spearmanr(m[f"{d}|score_ref"], m[f"{d}|score_ours"])[0]),
            "n_shared": len(m),
        }
    return out
