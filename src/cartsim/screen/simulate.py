"""Pooled CRISPR knockout screen with CAR-T co-culture: a stochastic compartment simulator.

Compartments are (replicate, sgRNA, loss-of-function state a ∈ {0, 1, 2}); all arrays are
vectorised and only passages are looped over (``shared/reference/crispr.md`` §7.2):

1. plasmid abundance ``p_i ∝ 10^N(0, σ²)``; transduction of ``coverage × n_sgRNA`` cells
   (multinomial; MOI sets how many cells are exposed, reported in the QC);
2. editing: a cell with sgRNA efficiency e is in state 0/1/2 with probabilities
   ``1 − e + e/9, 4e/9, 4e/9``;
3. growth to T0 and through the co-culture, ``n → Poisson(n·exp(r(1 + m_a s_g)Δt − (1 +
   m_a(h_g − 1))Λ))`` with ``m_a = (0, dominance, 1)``, Λ = k_kill·(E:T)·Δt the wild-type
   cumulative CAR-T hazard of an interval (E:T restored at each passage by re-challenge);
4. passages: binomial thinning to ``coverage × n_sgRNA`` cells;
5. harvest and sequencing: reads ~ Poisson(depth·n_sgRNA·q), q ∝ cells × Gamma(1/φ, φ).

The kill-hazard multiplier h_g of each gene comes from :mod:`cartsim.model.traits` (the same
gene → trait map and killing-route kernel as the patient model); genes absent from that map are
neutral unless a user truth table says otherwise. Essential genes (CEGv2) and random "grey"
background effects are screen-specific and live here.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from cartsim.atomic import atomic_write
from cartsim.errors import InvalidInputError
from cartsim.model.traits import GENE_TRAIT_EFFECTS, ROUTE_PRESETS, gene_kill_multiplier
from cartsim.screen.io import CountTable, write_count_summary, write_count_table

#: ln 2 per day at E:T 1:4 → a wild-type population loses ~50 % in 24 h (Dufva 2020 set-up).
DEFAULT_K_KILL = float(np.log(2.0) / 0.25)
#: genes targeted by the Brunello library (Doench 2016), the default library size.
BRUNELLO_GENES = 19114


class ScreenDesign(BaseModel):
    """Parameters of a simulated screen (units in the field descriptions; sources in docs)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n_genes: int = Field(BRUNELLO_GENES, ge=20, description="targeted genes (Brunello: 19,114)")
    sgrnas_per_gene: int = Field(4, ge=1, le=20, description="sgRNAs per gene")
    n_controls: int = Field(1000, ge=0, description="non-targeting control sgRNAs")
    coverage: float = Field(1000.0, ge=10, description="cells per sgRNA at transduction/passage")
    moi: float = Field(0.3, gt=0, le=2, description="multiplicity of infection")
    plasmid_sd_log10: float = Field(0.30, ge=0, le=1, description="σ of log10 plasmid abundance")
    days_to_t0: float = Field(7.0, ge=0, le=365,
                              description="selection/expansion before T0 (days)")
    doubling_time: float = Field(1.5, gt=0, description="tumour doubling time (days)")
    et_ratio: float = Field(0.25, ge=0, le=10, description="effector:target ratio (1:4 = 0.25)")
    coculture_days: float = Field(7.0, ge=0, le=365, description="co-culture duration (days)")
    passage_interval: float = Field(3.5, gt=0, description="days between passages/re-challenge")
    k_kill: float = Field(DEFAULT_K_KILL, ge=0,
                          description="wild-type kill hazard per day per unit E:T")
    replicates: int = Field(3, ge=1, le=20, description="independent transductions")
    depth: float = Field(300.0, gt=0, description="sequencing reads per sgRNA per sample")
    phi_pcr: float = Field(0.01, ge=0, description="PCR/sequencing gamma over-dispersion")
    growth_jitter: float = Field(0.02, ge=0, description="replicate growth-rate SD (per day)")
    dominance: float = Field(0.5, ge=0, le=1, description="phenotype of a one-allele LoF cell")
    preset: str = Field("human_liquid", description="killing-route preset of traits.py")
    grey_fraction: float = Field(0.005, ge=0, le=1, description="genes with random effects")
    grey_sd_log: float = Field(0.3, ge=0, description="SD of log h of grey genes")
    essential_genes: bool = Field(True, description="CEGv2 core essentials drop out")
    null: bool = Field(False, description="all h = 1 (essential-gene dropout kept)")
    maintain_coverage: bool = Field(
        True, description="seed the CAR-T arm with enough cells that expected wild-type "
        "survivors keep `coverage` cells per sgRNA at every passage and at harvest")
    max_seed_factor: float = Field(
        10.0, ge=1, description="most cells (× coverage × sgRNAs) a CAR-T arm is seeded with "
        "when maintaining coverage; beyond it the arm is bottlenecked")
    seed: int = Field(0, ge=0, description="seed of SeedSequence")


@dataclass
class SimulatedScreen:
    """A simulated count table, the gene truth table and per-sgRNA truth."""

    counts: CountTable
    truth: pd.DataFrame
    sgrna_truth: pd.DataFrame
    treatment: list[str]
    control: list[str]
    control_sgrnas: list[str]

    def write(self, prefix: str | os.PathLike[str]) -> list[Path]:
        """Write PREFIX.count.txt, .countsummary.txt (MAGeCK's QC layout), .control_sgrnas.txt,
        .truth.txt and .sgrna_truth.txt atomically."""
        pre = str(prefix)
        out = [write_count_table(self.counts, pre + ".count.txt"),
               write_count_summary(self.counts, pre + ".countsummary.txt")]
        out.append(atomic_write(pre + ".control_sgrnas.txt",
                                lambda t: t.write_text("\n".join(self.control_sgrnas) + "\n")))
        for name, df in (("truth", self.truth), ("sgrna_truth", self.sgrna_truth)):
            out.append(atomic_write(pre + f".{name}.txt",
                                    lambda t, d=df: d.to_csv(t, sep="\t", index=False)))
        return out


def core_essentials() -> list[str]:
    """CEGv2 core-essential genes (Hart lab, MIT; shipped in cartsim/data/screen)."""
    ref = resources.files("cartsim.data") / "screen" / "CEGv2.txt"
    lines = ref.read_text().splitlines()[1:]
    return [ln.split("\t")[0] for ln in lines if ln.strip()]


def read_truth_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """User truth table: columns ``gene``, ``h`` (kill multiplier) and optional ``s`` (growth).

    Raises :class:`InvalidInputError` naming the file (and the line and column of a bad cell)
    for a missing, unreadable, non-UTF-8 or malformed table.
    """
    p = Path(path)
    field = f"truth table {p}"
    if not p.is_file():
        raise InvalidInputError(field, "an existing file (columns gene, h and optional s)",
                                str(p), "file not found" if not p.exists() else "not a file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(field, "a UTF-8 text file", str(p),
                                f"undecodable byte at offset {exc.start}") from None
    except OSError as exc:
        raise InvalidInputError(field, "a readable file", str(p), exc.strerror or "") from None
    first = text.split("\n", 1)[0]
    sep = "\t" if "\t" in first else ("," if "," in first else r"\s+")
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                         engine="python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise InvalidInputError(field, "a tab-, comma- or space-separated table",
                                str(p), str(exc).strip().split("\n")[0]) from None
    df.columns = [str(c).strip() for c in df.columns]
    for col in ("gene", "h"):
        if col not in df.columns:
            raise InvalidInputError(f"truth table {p.name} header",
                                    "columns gene, h and optional s", list(df.columns),
                                    f"missing column {col}")
    if df.empty:
        raise InvalidInputError(field, "at least one gene row", "0 rows")
    genes = df["gene"].astype(str).str.strip()
    if (genes == "").any():
        i = int(np.flatnonzero((genes == "").to_numpy())[0])
        raise InvalidInputError(f"truth table {p.name} line {i + 2} column gene",
                                "a non-empty gene symbol", "")
    df["gene"] = genes
    if "s" not in df.columns:
        df["s"] = "0"
    for col in ("h", "s"):
        v = pd.to_numeric(df[col].astype(str).str.strip(), errors="coerce")
        bad = ~np.isfinite(v.to_numpy(dtype=float)) | (v < 0 if col == "h" else v < -1)
        if bad.any():
            i = int(np.flatnonzero(np.asarray(bad))[0])
            raise InvalidInputError(f"truth table {p.name} line {i + 2} column {col}",
                                    "a finite number h ≥ 0" if col == "h"
                                    else "a finite number s ≥ −1", df[col].iloc[i])
        df[col] = v.astype(float)
    return df[["gene", "h", "s"]].reset_index(drop=True)


def build_truth(design: ScreenDesign, rng: np.random.Generator,
                user: pd.DataFrame | None = None) -> pd.DataFrame:
    """Gene list and per-gene (h, s, class) for a Brunello-like synthetic library."""
    if design.preset not in ROUTE_PRESETS:
        raise InvalidInputError("preset", "one of " + ", ".join(ROUTE_PRESETS), design.preset)
    named = list(GENE_TRAIT_EFFECTS)
    ess = core_essentials() if design.essential_genes else []
    ess = [g for g in ess if g not in GENE_TRAIT_EFFECTS]
    # A smaller library is a random slice of the genome: it keeps the genome-wide share of core
    # essentials (CEGv2 684 of Brunello's 19,114 genes, 3.6 %) instead of being filled with them,
    # because α-RRA percentiles are library-wide and a library dominated by low-count essential
    # sgRNAs shifts every other gene's p-values.
    n_ess = min(len(ess), int(round(len(ess) * design.n_genes / BRUNELLO_GENES)))
    ess = ess[:n_ess]
    user_genes = [] if user is None else [g for g in user["gene"] if g not in named]
    genes = list(dict.fromkeys(named + user_genes + ess))[: design.n_genes]
    n_fill = design.n_genes - len(genes)
    genes += [f"GENE{i:05d}" for i in range(1, n_fill + 1)]
    g = np.asarray(genes, dtype=object)
    h = np.array([gene_kill_multiplier(x, design.preset) if x in GENE_TRAIT_EFFECTS else 1.0
                  for x in genes])
    s = np.zeros(g.size)
    cls = np.where(np.isin(g, named), "trait_map", "neutral").astype(object)
    is_ess = np.isin(g, ess)
    s[is_ess] = -rng.uniform(0.3, 1.0, size=int(is_ess.sum()))
    cls[is_ess] = "essential"
    filler = np.flatnonzero(cls == "neutral")
    n_grey = int(round(design.grey_fraction * design.n_genes))
    if n_grey and filler.size:
        grey = rng.choice(filler, size=min(n_grey, filler.size), replace=False)
        h[grey] = np.exp(rng.normal(0.0, design.grey_sd_log, size=grey.size))
        cls[grey] = "grey"
    if user is not None:
        idx = pd.Index(g).get_indexer(user["gene"])
        ok = idx >= 0
        h[idx[ok]] = user["h"].to_numpy()[ok]
        s[idx[ok]] = user["s"].to_numpy()[ok]
        cls[idx[ok]] = "user"
    if design.null:
        h[:] = 1.0
        cls[cls != "essential"] = "neutral"
    return pd.DataFrame({"gene": g.astype(str), "h": h, "s": s, "class": cls.astype(str)})


def _grow_kill(n: np.ndarray, log_fold: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson realisation of expected counts ``n·exp(log_fold)``."""
    return rng.poisson(n * np.exp(log_fold)).astype(np.float64)


def _passage(n: np.ndarray, cap: float, rng: np.random.Generator) -> np.ndarray:
    """Bottleneck: binomial thinning of a replicate's compartments to ``cap`` cells."""
    tot = n.sum()
    if tot <= cap:
        return n
    return rng.binomial(n.astype(np.int64), cap / tot).astype(np.float64)


def _sequence(cells: np.ndarray, reads: float, phi: float,
              rng: np.random.Generator) -> np.ndarray:
    """Read counts of one sample from per-sgRNA cell numbers."""
    q = cells.astype(np.float64)
    if phi > 0:
        q = q * rng.gamma(1.0 / phi, phi, size=q.shape)
    tot = q.sum()
    if tot <= 0:
        return np.zeros_like(q)
    return rng.poisson(reads * q / tot).astype(np.float64)


def simulate_screen(
    design: ScreenDesign | None = None,
    truth_table: pd.DataFrame | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedScreen:
    """Simulate one screen; replicate k uses the k-th generator spawned from SeedSequence(seed).

    Samples: ``plasmid``, ``T0_rK``, ``ctrl_rK`` (irrelevant-CAR arm: same passages, no
    killing) and ``CART_rK`` (CAR-T arm) for each replicate K.
    """
    d = design or ScreenDesign()
    ss = np.random.SeedSequence(d.seed)
    lib_ss, *rep_ss = ss.spawn(d.replicates + 1)
    lib_rng = np.random.default_rng(lib_ss)
    truth = build_truth(d, lib_rng, truth_table)
    per = d.sgrnas_per_gene
    n_t = truth.shape[0] * per
    n_sg = n_t + d.n_controls
    sg_gene = np.concatenate([np.repeat(truth["gene"].to_numpy(), per),
                              np.full(d.n_controls, "NonTargeting")])
    sg_id = np.concatenate([
        np.char.add(np.char.add(np.repeat(truth["gene"].to_numpy().astype(str), per), "_sg"),
                    np.tile(np.arange(1, per + 1).astype(str), truth.shape[0])),
        np.char.add("NTC_", np.arange(1, d.n_controls + 1).astype(str)),
    ])
    h = np.concatenate([np.repeat(truth["h"].to_numpy(), per), np.ones(d.n_controls)])
    s = np.concatenate([np.repeat(truth["s"].to_numpy(), per), np.zeros(d.n_controls)])
    # sgRNA efficiency 0.85·Beta(8,2) + 0.15·Beta(1,9); controls do not edit
    weak = lib_rng.random(n_sg) < 0.15
    eff = np.where(weak, lib_rng.beta(1, 9, n_sg), lib_rng.beta(8, 2, n_sg))
    eff[n_t:] = 0.0
    plasmid = 10.0 ** lib_rng.normal(0.0, d.plasmid_sd_log10, n_sg)
    plasmid /= plasmid.sum()

    m_a = np.array([0.0, d.dominance, 1.0])
    h_eff = 1.0 + m_a[None, :] * (h[:, None] - 1.0)  # (n_sg, 3)
    s_eff = m_a[None, :] * s[:, None]
    r = np.log(2.0) / d.doubling_time
    cap = d.coverage * n_sg
    reads = d.depth * n_sg
    n_int = max(1, int(round(d.coculture_days / d.passage_interval))) if d.coculture_days else 0
    dt_co = d.coculture_days / n_int if n_int else 0.0
    lam = d.k_kill * d.et_ratio * dt_co
    n_pre = max(1, int(round(d.days_to_t0 / d.passage_interval))) if d.days_to_t0 else 0
    dt_pre = d.days_to_t0 / n_pre if n_pre else 0.0
    # Coverage maintenance: a wild-type cell's expected log fold change per co-culture interval
    # is r·Δt − Λ; when negative, the CAR-T arm is seeded with exp(−(r·Δt − Λ)·m) × coverage
    # cells for m remaining intervals, so the expected survivors never fall below coverage. The
    # extra cells come from expanding the T0 population for t_expand days without CAR-T.
    loss = max(0.0, lam - r * dt_co) if d.maintain_coverage else 0.0
    seed_factor = np.minimum(np.exp(loss * (n_int - np.arange(n_int + 1))), d.max_seed_factor)
    t_expand = float(np.log(seed_factor[0]) / r) if n_int else 0.0

    samples: dict[str, np.ndarray] = {}
    plas_rng = np.random.default_rng(ss.spawn(1)[0])
    samples["plasmid"] = _sequence(plasmid * cap, reads, d.phi_pcr, plas_rng)
    total_steps = d.replicates * (n_pre + 2 * n_int)
    step = 0
    for k in range(d.replicates):
        rng = np.random.default_rng(rep_ss[k])
        n0 = rng.multinomial(int(cap), plasmid).astype(np.float64)
        p_state = np.stack([1 - eff + eff / 9, 4 * eff / 9, 4 * eff / 9], axis=1)
        cells = rng.multinomial(n0.astype(np.int64), p_state).astype(np.float64)
        for _ in range(n_pre):
            jit = rng.normal(0.0, d.growth_jitter, size=(n_sg, 1))
            cells = _grow_kill(cells, (r * (1 + s_eff) + jit) * dt_pre, rng)
            cells = _passage(cells, cap, rng)
            step += 1
            if progress:
                progress(step, total_steps)
        samples[f"T0_r{k + 1}"] = _sequence(cells.sum(axis=1), reads, d.phi_pcr, rng)
        if t_expand > 0:
            jit = rng.normal(0.0, d.growth_jitter, size=(n_sg, 1))
            cells = _grow_kill(cells, (r * (1 + s_eff) + jit) * t_expand, rng)
        arms = {}
        for arm, hazard in (("ctrl", 0.0), ("CART", lam)):
            c = cells.copy()
            for j in range(n_int):
                jit = rng.normal(0.0, d.growth_jitter, size=(n_sg, 1))
                c = _grow_kill(c, (r * (1 + s_eff) + jit) * dt_co - h_eff * hazard, rng)
                c = _passage(c, cap * (seed_factor[j + 1] if arm == "CART" else 1.0), rng)
                step += 1
                if progress:
                    progress(step, total_steps)
            arms[arm] = c
        samples[f"ctrl_r{k + 1}"] = _sequence(arms["ctrl"].sum(axis=1), reads, d.phi_pcr, rng)
        samples[f"CART_r{k + 1}"] = _sequence(arms["CART"].sum(axis=1), reads, d.phi_pcr, rng)
    order = (["plasmid"] + [f"T0_r{k + 1}" for k in range(d.replicates)]
             + [f"ctrl_r{k + 1}" for k in range(d.replicates)]
             + [f"CART_r{k + 1}" for k in range(d.replicates)])
    counts = CountTable(sgrna=sg_id.astype(str), gene=sg_gene.astype(str), samples=tuple(order),
                        counts=np.stack([samples[o] for o in order], axis=1))
    sg_truth = pd.DataFrame({"sgrna": counts.sgrna, "gene": counts.gene, "efficiency": eff,
                             "plasmid_fraction": plasmid, "h": h, "s": s})
    truth = truth.assign(n_sgrna=per)
    return SimulatedScreen(
        counts=counts, truth=truth, sgrna_truth=sg_truth,
        treatment=[f"CART_r{k + 1}" for k in range(d.replicates)],
        control=[f"ctrl_r{k + 1}" for k in range(d.replicates)],
        control_sgrnas=counts.sgrna[n_t:].tolist(),
    )


def strong_genes(truth: pd.DataFrame, low: float = 0.6, high: float = 1.4) -> tuple[list[str],
                                                                                   list[str]]:
    """(resistance genes h ≤ low, sensitisers h ≥ high) among the non-grey truth genes."""
    t = truth[truth["class"] != "grey"]
    res = t.loc[t["h"] <= low + 1e-9, "gene"].tolist()
    sen = t.loc[t["h"] >= high - 1e-9, "gene"].tolist()
    return res, sen
