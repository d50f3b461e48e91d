"""Paired virtual trials for the resistance traits (review B5–B12), dose (A8) and HSCT (A10).

Each experiment runs the same virtual patients (same seed, same draws) twice, changing one
factor: a trait covariate fixed at its neutral value vs its resistant value, a dose level, or
HSCT consolidation on/off. Prints one line per experiment with the figures docs/model.md
quotes. Usage::

    nice .venv/bin/python benchmarks/traits_paired.py [--patients 300] [--only noxa_low,...]
"""

from __future__ import annotations

import argparse
import copy
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from cartsim import Trial

ROOT = Path(__file__).resolve().parents[1]

#: trait covariate → (neutral value, resistant value)
TRAITS: dict[str, tuple[float, float]] = {
    "noxa_low": (0.0, 1.0),
    "dr_defect": (0.0, 1.0),
    "ifng_defect": (0.0, 1.0),
    "tp53_altered": (0.0, 1.0),
    "cd58_loss": (0.0, 1.0),
    "pdl1": (0.0, 1.0),
    "cd19_surface_loss": (0.0, 1.0),
}


def _spec(path: str) -> dict:
    with open(ROOT / path, "rb") as f:
        return tomllib.load(f)


def _run(data: dict, n: int) -> pd.DataFrame:
    t = Trial.from_dict(data).with_overrides(size=n)
    return t.run(report=False).patients


def _km(days: np.ndarray, event: np.ndarray, t: float) -> float:
    """Kaplan–Meier survival at t."""
    order = np.argsort(days)
    d, e = np.asarray(days)[order], np.asarray(event)[order]
    s, at = 1.0, len(d)
    for di, ei in zip(d, e, strict=True):
        if di > t:
            break
        if ei:
            s *= 1 - 1 / at
        at -= 1
    return s


def _hr(a: pd.DataFrame, b: pd.DataFrame, ep: str) -> float:
    """Crude hazard ratio b vs a (events / person-time)."""
    ra = a[f"{ep}_event"].sum() / max(a[f"{ep}_days"].sum(), 1)
    rb = b[f"{ep}_event"].sum() / max(b[f"{ep}_days"].sum(), 1)
    return float(rb / ra) if ra > 0 else float("nan")


def _line(name: str, a: pd.DataFrame, b: pd.DataFrame) -> str:
    def prog6(df: pd.DataFrame) -> float:
        return 1 - _km(df["pfs_days"].to_numpy(), df["pfs_event"].to_numpy(), 182)

    def os12(df: pd.DataFrame) -> float:
        return _km(df["os_days"].to_numpy(), df["os_event"].to_numpy(), 365)

    def cr(df: pd.DataFrame) -> float:
        col = "best_response"
        return float(df[col].isin(["CR", "CRi"]).mean()) if col in df else float("nan")

    def cmax(df: pd.DataFrame) -> float:
        return float(np.nanmedian(df["cart_cmax"])) if "cart_cmax" in df else float("nan")

    return (f"{name:34s} CR {cr(a):5.1%}→{cr(b):5.1%}  6-mo progression {prog6(a):5.1%}→"
            f"{prog6(b):5.1%}  1-y OS {os12(a):5.1%}→{os12(b):5.1%}  PFS HR {_hr(a, b, 'pfs'):.2f}"
            f"  OS HR {_hr(a, b, 'os'):.2f}  median Cmax {cmax(a):.3g}→{cmax(b):.3g}")


def traits(n: int, only: set[str] | None, antigen_positive: bool = False) -> None:
    base = _spec("examples/zuma1.toml")
    tag = "zuma1 LBCL"
    if antigen_positive:  # isolate the CD19-positive disease the traits act on
        base["population"]["cd19_negative_fraction"] = {"kind": "fixed", "value": 0.0}
        tag = "zuma1, no CD19-neg"
    for trait, (neutral, resistant) in TRAITS.items():
        if only and trait not in only:
            continue
        out = []
        for v in (neutral, resistant):
            d = copy.deepcopy(base)
            d["population"][trait] = {"kind": "fixed", "value": v}
            out.append(_run(d, n))
        print(_line(f"{trait} ({tag})", *out), flush=True)


def dose(n: int, low_burden: bool = False) -> None:
    base = _spec("examples/eliana.toml")
    tag = "eliana"
    if low_burden:  # antigen-limited expansion: marrow blasts 0.1–5 %
        base["population"]["marrow_blasts_pct"] = {"kind": "uniform", "low": 0.1, "high": 5}
        tag = "eliana, blasts 0.1–5 %"
    out = []
    for per_kg in (0.6e6, 3.0e6):
        d = copy.deepcopy(base)
        d["arms"][0]["dose"] = {"per_kg": per_kg}
        out.append(_run(d, n))
    a, b = out
    print(_line(f"dose 0.6→3.0e6/kg ({tag})", a, b)
          + f"  EFS HR {_hr(a, b, 'efs'):.2f}", flush=True)


def hsct(n: int) -> None:
    base = _spec("examples/nci_cd19_28z.toml")
    df = _run(base, n)
    arms = list(dict.fromkeys(df["arm"]))
    a, b = (df[df["arm"] == x].reset_index(drop=True) for x in arms)
    rel = [float(x["relapse"].mean()) for x in (a, b)]
    tx = b[b["hsct"] == 1]
    print(_line(f"HSCT {arms[0]}→{arms[1]}", a, b)
          + f"  relapse {rel[0]:.1%}→{rel[1]:.1%}  transplanted {len(tx)}"
          + f"  relapse among transplanted {tx['relapse'].mean():.1%}"
          + f" vs same patients untransplanted {a.loc[tx.index, 'relapse'].mean():.1%}",
          flush=True)


def dose_probe(blasts_pct: float) -> None:
    """One 30-kg B-ALL patient without variability at four doses per kg."""
    from cartsim.population import Cohort
    from cartsim.products import get_product
    from cartsim.simulation import simulate

    w, per_kg = 30.0, np.array([0.3e6, 0.6e6, 3e6, 6e6])
    n = per_kg.size
    c = Cohort("b-all", weight_kg=np.full(n, w), age_y=np.full(n, 10.0),
               marrow_blasts_pct=np.full(n, blasts_pct), dose=per_kg * w)
    t = simulate(c, get_product("tisagenlecleucel"), days=365, seed=1,
                 variability=False).trajectories
    for i in range(n):
        ti = t[t["patient_id"] == i]
        pk = ti.loc[ti["cart_cells_per_ul"].idxmax()]
        d = ti.set_index("day")
        print(f"blasts {blasts_pct:g} %  dose/kg {per_kg[i]:8.2g}  Cmax "
              f"{pk['cart_cells_per_ul']:8.3g}  Tmax {pk['day']:4.0f}  CAR-T d180 "
              f"{d.loc[180, 'cart_cells_per_ul']:8.3g}  tumour d365 "
              f"{d.loc[365, 'tumour_cells']:9.3g}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--only", default="")
    ap.add_argument("--antigen-positive", action="store_true",
                    help="trait experiments without pre-existing CD19-negative disease")
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else None
    traits(a.patients, only, a.antigen_positive)
    if not only or "dose" in only:
        dose(a.patients)
    if not only or "dose_low" in only:
        dose(a.patients, low_burden=True)
    if not only or "dose_probe" in only:
        dose_probe(74.0)
        dose_probe(1.0)
    if not only or "hsct" in only:
        hsct(a.patients)


if __name__ == "__main__":
    main()
