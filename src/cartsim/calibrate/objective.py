"""The calibration objective: the log-likelihood of the published figures given the simulated
trial, as a deviance (−2 × log-likelihood ratio against the saturated model, so a perfect fit
scores 0 and each term is ≥ 0).

Per compared row of a validation table (docs/calibration.md):

* **rates** (``rate``, ``daily_rate``; counts are already percent of their denominator): the
  published count k = round(value × n) of n patients is Binomial(n, p_sim), with n the targets'
  ``n`` column (or a count's "of N" denominator) and p_sim the simulated share, smoothed as
  (k_sim + ½)/(n_sim + 1) so that 0 % and 100 % have finite likelihood. Rows without n but with a
  published CI use the normal approximation below; rows with neither are skipped.
* **Kaplan–Meier landmarks** (``km``): normal approximation with the sd read off the published
  95 % CI (the half on the side of the simulated value, so asymmetric CIs count); without a CI,
  binomial with the effective n of the targets' ``n`` column.
* **medians, ratios** (``km_median``, ``median``; ``geomean_ratio``, ``hazard_ratio`` on the
  log scale): normal on the published CI;
  skipped without one.

Skipped rows are counted with the reason (``terms`` table), never dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from cartsim.validate.mapping import MappingTable, normalise_unit
from cartsim.validate.targets import Targets

Z95 = float(sps.norm.ppf(0.975))
TERM_COLUMNS = ("line", "study", "spec", "endpoint", "kind", "method", "published", "simulated",
                "n_published", "sd_published", "loglik", "deviance", "used", "reason")


@dataclass(frozen=True)
class Objective:
    """Total deviance and log-likelihood over the used rows, with every row's term."""

    deviance: float
    loglik: float
    used: int
    skipped: int
    terms: pd.DataFrame

    def per_study(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for spec, t in self.terms.groupby("spec", sort=True):
            u = t[t["used"]]
            out[str(spec)] = {"deviance": round(float(u["deviance"].sum()), 4),
                              "rows_used": int(len(u)), "rows_skipped": int((~t["used"]).sum())}
        return out


#: Row kinds compared on the log scale (their CIs are symmetric in log).
RATIO_KINDS = ("hazard_ratio", "geomean_ratio")


def binomial_term(k: int, n: int, p_sim: float) -> tuple[float, float]:
    """(log-likelihood, deviance) of k of n given the simulated probability ``p_sim``."""
    p = min(max(p_sim, 1e-12), 1.0 - 1e-12)
    ll = float(sps.binom.logpmf(k, n, p))
    sat = float(sps.binom.logpmf(k, n, k / n))
    return ll, max(0.0, -2.0 * (ll - sat))


def normal_term(x: float, mean: float, sd: float) -> tuple[float, float]:
    """(log-likelihood, deviance) of the simulated ``x`` under N(published, sd²)."""
    z = (x - mean) / sd
    ll = -0.5 * z * z - math.log(sd) - 0.5 * math.log(2.0 * math.pi)
    return ll, z * z


def ci_sd(value: float, lo: float | None, hi: float | None, x: float) -> float | None:
    """The published sd from its 95 % CI: the half-width on the side of ``x``, / 1.96."""
    if lo is None and hi is None:
        return None
    if lo is None or (hi is not None and x >= value):
        half = (hi - value) if hi is not None else None
    else:
        half = value - lo
    if half is None or not half > 0:
        other = [h for h in ((hi - value) if hi is not None else None,
                             (value - lo) if lo is not None else None) if h is not None and h > 0]
        half = max(other) if other else None
    return None if half is None else half / Z95


def _isnum(x: Any) -> bool:
    return x is not None and not pd.isna(x) and math.isfinite(float(x))


def row_term(rec: dict[str, Any], kind: str, n_pub: int | None) -> dict[str, Any]:
    """One term (a ``TERM_COLUMNS`` record) for a compared validation row."""
    out = {c: rec.get(c) for c in ("line", "study", "spec", "endpoint", "published",
                                   "simulated")}
    out.update(kind=kind, method="", n_published=n_pub, sd_published=None, loglik=0.0,
               deviance=0.0, used=False, reason="")
    pub, sim = float(rec["published"]), float(rec["simulated"])
    lo = float(rec["published_ci_low"]) if _isnum(rec.get("published_ci_low")) else None
    hi = float(rec["published_ci_high"]) if _isnum(rec.get("published_ci_high")) else None
    binomial = kind in ("rate", "daily_rate") or (kind == "km" and lo is None and hi is None)
    if binomial and rec.get("unit") == "percent" and n_pub:
        k = int(round(pub / 100.0 * n_pub))
        n_sim = int(rec["n_simulated"]) if _isnum(rec.get("n_simulated")) else 0
        k_sim = sim / 100.0 * n_sim
        p_sim = (k_sim + 0.5) / (n_sim + 1.0) if n_sim else sim / 100.0
        ll, dev = binomial_term(k, n_pub, p_sim)
        out.update(method="binomial" if kind != "km" else "binomial (effective n)",
                   loglik=ll, deviance=dev, used=True)
        return out
    if kind in RATIO_KINDS:
        # a ratio's CI is symmetric on the log scale: compare log(simulated) with
        # N(log(published), sd from the log CI); a non-positive value has no log
        if not (pub > 0 and sim > 0 and math.isfinite(sim)):
            out["reason"] = "ratio not positive and finite"
            return out
        llo = math.log(lo) if lo is not None and lo > 0 else None
        lhi = math.log(hi) if hi is not None and hi > 0 else None
        sd = ci_sd(math.log(pub), llo, lhi, math.log(sim))
        if sd is None:
            out["reason"] = "no published CI"
            return out
        ll, dev = normal_term(math.log(sim), math.log(pub), sd)
        out.update(method="normal on log (published CI)", sd_published=sd, loglik=ll,
                   deviance=dev, used=True)
        return out
    sd = ci_sd(pub, lo, hi, sim)
    if sd is None:
        why = "no published n or CI" if binomial else "no published CI"
        out["reason"] = why
        return out
    ll, dev = normal_term(sim, pub, sd)
    out.update(method="normal (published CI)", sd_published=sd, loglik=ll, deviance=dev,
               used=True)
    return out


def compute_objective(table: pd.DataFrame, targets: Targets, mapping: MappingTable,
                      studies: set[str] | None = None) -> Objective:
    """The objective over ``table``'s compared rows (of ``studies``' spec names, if given).

    Rows that are not compared (unmapped, baseline, error, e.g. a simulated median not reached)
    are listed as skipped with their validation reason.
    """
    by_line = {r.line: r for r in targets.rows}
    terms: list[dict[str, Any]] = []
    for rec in table.to_dict("records"):
        if studies is not None and rec.get("spec") not in studies:
            continue
        if rec["status"] in ("baseline", "unexpressible"):
            continue
        row = by_line.get(int(rec["line"]))
        q = mapping.quantities.get(str(rec["endpoint"]))
        if rec["status"] != "compared" or row is None or q is None:
            t = {c: rec.get(c) for c in TERM_COLUMNS if c in rec}
            t.update(kind=q.kind if q else "", method="", used=False, loglik=0.0,
                     deviance=0.0, reason=f"not compared: {rec.get('reason') or rec['status']}")
            terms.append(t)
            continue
        _, den = normalise_unit(row.unit)
        n_pub = den or row.n
        terms.append(row_term(rec, q.kind, n_pub))
    df = pd.DataFrame(terms, columns=list(TERM_COLUMNS))
    df["used"] = df["used"].astype(bool)
    used = df[df["used"]]
    dev = float(np.sum(used["deviance"].to_numpy(dtype=float)))
    ll = float(np.sum(used["loglik"].to_numpy(dtype=float)))
    return Objective(dev, ll, int(len(used)), int(len(df) - len(used)), df)
