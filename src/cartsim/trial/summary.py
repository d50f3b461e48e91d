"""Trial statistics from ``patients.parquet``: rates with Clopper–Pearson CIs, Kaplan–Meier
estimates and medians (log-log CIs), log-rank/Cox arm comparisons and subgroup tables.

Uses :mod:`cartsim.trial.stats` only; writes ``summary.json`` and CSV tables atomically.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cartsim import covariates
from cartsim.errors import CartsimError
from cartsim.status import Status
from cartsim.trial.spec import TrialSpec
from cartsim.trial.stats import KaplanMeier, binomial_rate, compare_arms, quartile_bins
from cartsim.trial.stats import subgroup_rates as _subgroup_rates

#: Binary endpoints: name → (description, function of the arm's table giving 0/1/NaN).
TIME_TO_EVENT = ("efs", "os", "pfs", "rfs", "dor", "dss")


def binary_endpoints(df: pd.DataFrame) -> dict[str, tuple[str, pd.Series]]:
    """0/1 outcomes per patient (NaN = not applicable), with their descriptions."""
    out: dict[str, tuple[str, pd.Series]] = {
        "responder": ("overall response (CR/CRi B-ALL; CR/PR lymphoma) within the window",
                      df["responder"].astype(float)),
        "complete_response": ("best response CR", df["complete_response"].astype(float)),
    }
    if "mrd_negative_remission" in df:
        out["mrd_negative_remission"] = ("CR/CRi with MRD < 1e-4 at the same assessment",
                                         df["mrd_negative_remission"].astype(float))
    resp = df["responder"] == 1
    rel = df["relapse"] == 1
    out["relapse_among_responders"] = ("relapse/progression after response (responders)",
                                       df["relapse"].astype(float).where(resp))
    out["cd19_negative_among_relapses"] = (
        "CD19-negative relapse (relapsed patients)",
        (df["relapse_phenotype"] == "CD19-negative").astype(float).where(rel))
    if "kmt2a" in df:  # B-ALL (a column of every arm alike, so the arms' tables match)
        out["lineage_switch_among_relapses"] = (
            "lineage-switch (myeloid) relapse (relapsed patients)",
            (df["relapse_phenotype"] == "lineage switch").astype(float).where(rel))
    out["crs_any"] = ("CRS any grade (ASTCT)", (df["crs_max_grade"] >= 1).astype(float))
    out["crs_grade_ge3"] = ("CRS grade ≥ 3 (ASTCT)", (df["crs_max_grade"] >= 3).astype(float))
    for col in df.columns:
        if col.startswith("crs_max_grade_") and col != "crs_max_grade_astct":
            scale = col.removeprefix("crs_max_grade_")
            out[f"crs_any_{scale}"] = (f"CRS any grade ({scale})",
                                       (df[col] >= 1).astype(float))
            out[f"crs_grade_ge3_{scale}"] = (f"CRS grade ≥ 3 ({scale})",
                                             (df[col] >= 3).astype(float))
    out["icans_any"] = ("ICANS any grade", (df["icans_max_grade"] >= 1).astype(float))
    out["icans_grade_ge3"] = ("ICANS grade ≥ 3", (df["icans_max_grade"] >= 3).astype(float))
    for version in ("4.03", "5.0"):
        col = f"neuro_max_grade_ctcae_v{version}"
        if col in df:
            out[f"neurotox_any_ctcae_v{version}"] = (
                f"neurological event any grade (CTCAE v{version})", (df[col] >= 1).astype(float))
            out[f"neurotox_grade_ge3_ctcae_v{version}"] = (
                f"neurological event grade ≥ 3 (CTCAE v{version})", (df[col] >= 3).astype(float))
    if "iechs" in df:
        out["iechs_any"] = ("IEC-HS any grade (Hines 2023)", df["iechs"].astype(float))
        out["iechs_grade_ge3"] = ("IEC-HS grade ≥ 3", (df["iechs_max_grade"] >= 3)
                                  .astype(float))
        out["hypofibrinogenemia"] = ("fibrinogen < 150 mg/dL", df["hypofibrinogenemia"]
                                     .astype(float))
        out["tls_laboratory"] = ("laboratory TLS (Cairo–Bishop)", df["tls_laboratory"]
                                 .astype(float))
        out["tls_clinical"] = ("clinical TLS (Cairo–Bishop)", df["tls_clinical"].astype(float))
    out["tocilizumab"] = ("received tocilizumab", (df["tocilizumab_doses"] > 0).astype(float))
    out["steroids"] = ("received corticosteroids", df["steroids_given"].astype(float))
    out["neutropenia_grade_ge3"] = ("neutropenia CTCAE grade ≥ 3",
                                    (df["neutropenia_max_grade"] >= 3).astype(float))
    out["thrombocytopenia_grade_ge3"] = ("thrombocytopenia CTCAE grade ≥ 3",
                                         (df["thrombocytopenia_max_grade"] >= 3).astype(float))
    if "neutropenia_emergent_grade" in df:  # as trials' adverse-event tables count them
        for col, label in (("neutropenia", "neutropenia"),
                           ("thrombocytopenia", "thrombocytopenia"), ("anemia", "anaemia")):
            out[f"{col}_emergent_ge3"] = (
                f"{label} CTCAE grade ≥ 3, treatment-emergent (worse than before "
                "lymphodepletion)", (df[f"{col}_emergent_grade"] >= 3).astype(float))
    out["icaht_early_ge3"] = ("early ICAHT grade ≥ 3", (df["icaht_early_grade"] >= 3)
                              .astype(float))
    if "platelet_transfusion_given" in df:
        out["platelet_transfusion"] = ("received platelet transfusions",
                                       df["platelet_transfusion_given"].astype(float))
        out["rbc_transfusion"] = ("received red-cell transfusions",
                                  df["rbc_transfusion_given"].astype(float))
        out["transfusion_late"] = ("transfused on days 31-180 (late phase)",
                                   df["transfusion_d31_180"].astype(float))
    out["b_cell_aplasia"] = ("B-cell aplasia at any time", df["bca_onset_day"].notna()
                             .astype(float))
    out["death"] = ("death (any cause)", df["death"].astype(float))
    if "infections" in df:
        out["infection_any"] = ("≥ 1 infection episode (state-driven hazard)",
                                (df["infections"] > 0).astype(float))
    for cause in ("progression", "toxicity", "infection"):
        out[f"death_{cause}"] = (f"death from {cause}",
                                 (df["death_cause"] == cause).astype(float))
    out["hsct"] = ("HSCT consolidation given", df["hsct"].astype(float))
    return out


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf → None, numpy scalars → Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def rate_table(df: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    rows = []
    for arm in arms:
        sub = df[df["arm"] == arm]
        for name, (desc, s) in binary_endpoints(sub).items():
            y = s.dropna()
            n, k = int(y.size), int(y.sum())
            est, lo, hi = binomial_rate(k, n) if n else (math.nan, math.nan, math.nan)
            rows.append({"arm": arm, "endpoint": name, "description": desc, "n": n, "k": k,
                         "rate": est, "lower": lo, "upper": hi})
    return pd.DataFrame(rows)


def km_tables(df: pd.DataFrame, arms: list[str], times: tuple[float, ...]
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    at_rows, med_rows = [], []
    for ep in TIME_TO_EVENT:
        for arm in arms:
            sub = df[(df["arm"] == arm) & df[f"{ep}_days"].notna()]
            if sub.empty:
                continue
            km = KaplanMeier(conf_type="log-log").fit(sub[f"{ep}_days"], sub[f"{ep}_event"],
                                                      label=arm)
            s = km.summary()
            med_rows.append({"endpoint": ep, "arm": arm, "n": s["n"], "events": s["events"],
                             "median": s["median"], "median_lower": s["median_lower"],
                             "median_upper": s["median_upper"]})
            tab = km.at(list(times))
            for _, r in tab.iterrows():
                at_rows.append({"endpoint": ep, "arm": arm, "time": r["time"],
                                "n_risk": r["n_risk"], "surv": r["surv"],
                                "lower": r["lower"], "upper": r["upper"]})
    return pd.DataFrame(at_rows), pd.DataFrame(med_rows)


def comparison_table(df: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    if len(arms) < 2:
        return pd.DataFrame()
    rows = []
    for ep in ("efs", "os", "pfs"):
        sub = df[df[f"{ep}_days"].notna()]
        try:
            c = compare_arms(sub, f"{ep}_days", f"{ep}_event", "arm", reference=arms[0])
        except (CartsimError, ValueError, np.linalg.LinAlgError) as e:
            rows.append(pd.DataFrame([{"endpoint": ep, "arm": None, "reference": arms[0],
                                       "error": str(e)}]))
            continue
        c.insert(0, "endpoint", ep)
        rows.append(c)
    return pd.concat(rows, ignore_index=True)


def subgroup_table(df: pd.DataFrame, disease: str) -> pd.DataFrame:
    work = df.copy()
    burden = covariates.burden(disease)
    groups: dict[str, pd.Series] = {}
    for name, col in (("burden_quartile", burden), ("dose_quartile", "dose_per_kg")):
        if work[col].nunique() > 1:
            groups[name] = quartile_bins(work[col]).astype(str)
        else:
            groups[name] = pd.Series("all", index=work.index)
    for col in covariates.BINARY:  # flags of other diseases (kmt2a, marrow_involved) are absent
        if col in work:
            groups[col] = work[col].map({0.0: "no", 1.0: "yes"})
    for col in covariates.GRADED_TRAITS:  # resistance traits given as a fraction (B5–B12)
        if col in work and work[col].nunique() > 1:
            groups[col] = np.where(work[col] >= 0.5, "yes", "no")
    rows = []
    for name, g in groups.items():
        work["_level"] = g
        t = _subgroup_rates(work, "responder", ["arm", "_level"])
        t = t.rename(columns={"_level": "level"})
        t.insert(1, "subgroup", name)
        rows.append(t)
    return pd.concat(rows, ignore_index=True)


def continuous_table(df: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """n, median, quartiles, min and max of every numeric column per arm (missing values
    left out). One NumPy reduction per statistic over all columns: the same numbers as
    pandas' per-column ``median``/``quantile`` (linear interpolation; a test compares them),
    at a tenth of the cost, which a calibration pays for every study of every evaluation."""
    cols = [c for c in df.columns if c not in ("arm", "arm_index", "patient_id")
            and pd.api.types.is_numeric_dtype(df[c])]
    rows = []
    arm_of = df["arm"].to_numpy()
    for arm in arms:
        m = df.loc[arm_of == arm, cols].to_numpy(dtype=np.float64, na_value=np.nan)
        n = (~np.isnan(m)).sum(axis=0)
        if not m.shape[0]:
            m = np.full((1, len(cols)), np.nan)  # an empty arm: every statistic missing
        with warnings.catch_warnings():  # all-missing columns: NaN, as reported below
            warnings.simplefilter("ignore", RuntimeWarning)
            stats = {"median": np.nanmedian(m, axis=0),
                     "q1": np.nanpercentile(m, 25, axis=0),
                     "q3": np.nanpercentile(m, 75, axis=0),
                     "min": np.nanmin(m, axis=0), "max": np.nanmax(m, axis=0)}
        for j, c in enumerate(cols):
            row: dict[str, Any] = {"arm": arm, "column": c, "n": int(n[j])}
            for k, v in stats.items():
                row[k] = float(v[j]) if n[j] else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


def categorical_table(df: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    cols = [c for c in df.columns if c != "arm" and df[c].dtype == object]
    rows = []
    for arm in arms:
        sub = df[df["arm"] == arm]
        for c in cols:
            for level, k in sub[c].fillna("").value_counts().sort_index().items():
                rows.append({"arm": arm, "column": c, "level": level or "(none)",
                             "k": int(k), "n": len(sub)})
    return pd.DataFrame(rows)


def status_table(df: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """Patients per arm and simulation status (``solver_status`` column), with each code's
    message: patients stopped by the solver or the plausibility check are counted, never
    silently censored. Every arm has its ``ok`` row (possibly 0)."""
    rows = []
    codes = df["solver_status"] if "solver_status" in df else pd.Series(0, index=df.index)
    for arm in arms:
        sub = codes[df["arm"] == arm].astype(int)
        counts = sub.value_counts()
        for code in sorted(set(counts.index) | {int(Status.OK)}):
            try:
                label = Status(code).label
            except ValueError:
                label = "unknown"
            rows.append({"arm": arm, "status": label, "code": int(code),
                         "n": int(counts.get(code, 0)), "of": int(sub.size),
                         "message": Status.describe(code).split(": ", 1)[-1]})
    return pd.DataFrame(rows, columns=["arm", "status", "code", "n", "of", "message"])


def build_summary(df: pd.DataFrame, spec: TrialSpec) -> dict[str, Any]:
    arms = [a.name for a in spec.arms]
    rates = rate_table(df, arms)
    status = status_table(df, arms)
    km_at, medians = km_tables(df, arms, spec.km_times)
    return {
        "trial": spec.name,
        "seed": spec.seed,
        "disease": spec.population.disease,
        "patients_per_arm": spec.population.size,
        "arms": arms,
        "stopped_patients": int((status["code"] != int(Status.OK)).mul(status["n"]).sum()),
        "status": status,
        "rates": rates,
        "km": km_at,
        "medians": medians,
        "comparisons": comparison_table(df, arms),
        "subgroups": subgroup_table(df, spec.population.disease),
        "continuous": continuous_table(df, arms),
        "categorical": categorical_table(df, arms),
    }


def write_summary(df: pd.DataFrame, spec: TrialSpec, out: Path) -> dict[str, Any]:
    """Write summary.json and one CSV per table into ``out``; returns the summary."""
    from cartsim.atomic import write_text_atomic

    s = build_summary(df, spec)
    doc: dict[str, Any] = {}
    for k, v in s.items():
        if isinstance(v, pd.DataFrame):
            doc[k] = v.to_dict(orient="records")
            write_text_atomic(Path(out) / f"{k}.csv",
                              v.to_csv(index=False, lineterminator="\n"))
        else:
            doc[k] = v
    write_text_atomic(Path(out) / "summary.json",
                      json.dumps(_clean(doc), indent=1, ensure_ascii=False, sort_keys=False))
    return s
