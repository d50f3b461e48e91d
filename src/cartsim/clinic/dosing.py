"""Labelled doses used by the management protocol and for checking product doses (§7.1, §8)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cartsim.clinic._arrays import as_float, check_choice, result
from cartsim.errors import InvalidInputError
from cartsim.params import ParameterSpec

#: Glucocorticoid potency: dexamethasone 0.75 mg ≈ methylprednisolone 4 mg.
DEX_EQ_PER_MP_MG_SPEC = ParameterSpec(
    "dex_eq_per_methylprednisolone_mg", "mg dex / mg MP", 0.75 / 4.0, 0.0, 1.0,
    "standard corticosteroid equivalence (dexamethasone 0.75 mg = methylprednisolone 4 mg)",
    "dexamethasone-equivalent mg per mg methylprednisolone")
DEX_EQ_PER_MP_MG = DEX_EQ_PER_MP_MG_SPEC.default


def tocilizumab_dose_mg(
    weight_kg: ArrayLike,
    mg_per_kg: float = 8.0,
    max_mg: float = 800.0,
    child_mg_per_kg: float = 12.0,
    child_below_kg: float = 30.0,
) -> Any:
    """Tocilizumab dose: 12 mg/kg under 30 kg, else 8 mg/kg capped at 800 mg (labels)."""
    w = as_float("weight_kg", weight_kg, 0.5, 400)
    dose = np.where(w < child_below_kg, child_mg_per_kg * w, np.minimum(mg_per_kg * w, max_mg))
    return result(np.asarray(dose))


#: (product, indication) → rule. "per_kg": (low/kg, high/kg, cap); "flat": (low, high).
_PRODUCT_RULES: dict[tuple[str, str], dict[str, Any]] = {
    ("tisagenlecleucel", "b-all"): {"per_kg": (0.2e6, 5.0e6, None), "flat_above_kg": 50.0,
                                     "flat": (0.1e8, 2.5e8)},
    ("tisagenlecleucel", "lbcl"): {"flat": (0.6e8, 6.0e8)},
    ("tisagenlecleucel", "fl"): {"flat": (0.6e8, 6.0e8)},
    ("axicabtagene_ciloleucel", "lbcl"): {"per_kg": (2e6, 2e6, 2e8)},
    ("axicabtagene_ciloleucel", "fl"): {"per_kg": (2e6, 2e6, 2e8)},
    ("brexucabtagene_autoleucel", "mcl"): {"per_kg": (2e6, 2e6, 2e8)},
    ("brexucabtagene_autoleucel", "b-all"): {"per_kg": (1e6, 1e6, 1e8)},
    ("lisocabtagene_maraleucel", "lbcl"): {"flat": (50e6, 110e6)},
    ("idecabtagene_vicleucel", "myeloma"): {"flat": (300e6, 460e6)},
    ("ciltacabtagene_autoleucel", "myeloma"): {"per_kg": (0.5e6, 1.0e6, 1e8)},
}
PRODUCT_ALIASES = {
    "kymriah": "tisagenlecleucel", "yescarta": "axicabtagene_ciloleucel",
    "tecartus": "brexucabtagene_autoleucel", "breyanzi": "lisocabtagene_maraleucel",
    "abecma": "idecabtagene_vicleucel", "carvykti": "ciltacabtagene_autoleucel",
    "aucatzyl": "obecabtagene_autoleucel",
}


def label_dose_range(product: str, indication: str, weight_kg: float) -> tuple[float, float]:
    """Allowed CAR+ T-cell dose range (cells) from the US label (§8).

    Weight-based doses are per-kg × actual weight, each end capped at the label maximum.
    """
    name = PRODUCT_ALIASES.get(product.lower(), product.lower())
    key = (name, indication.lower())
    if key not in _PRODUCT_RULES:
        raise InvalidInputError(
            "product/indication",
            "one of " + ", ".join(f"{p}/{i}" for p, i in sorted(_PRODUCT_RULES)),
            f"{product}/{indication}",
        )
    w = float(as_float("weight_kg", weight_kg, 0.5, 400, allow_nan=False))
    rule = _PRODUCT_RULES[key]
    if "per_kg" in rule and not (w > rule.get("flat_above_kg", np.inf)):
        lo, hi, cap = rule["per_kg"]
        lo, hi = lo * w, hi * w
        if cap is not None:
            lo, hi = min(lo, cap), min(hi, cap)
        return float(lo), float(hi)
    lo, hi = rule["flat"]
    return float(lo), float(hi)


def obecabtagene_split(marrow_blasts_pct: float) -> tuple[float, float]:
    """Aucatzyl split dose (day 1, day 10 ± 2) set by marrow blasts before lymphodepletion:
    > 20 % → 10 × 10⁶ then 400 × 10⁶; ≤ 20 % → 100 × 10⁶ then 310 × 10⁶."""
    b = float(as_float("marrow_blasts_pct", marrow_blasts_pct, 0, 100, allow_nan=False))
    return (10e6, 400e6) if b > 20 else (100e6, 310e6)


def check_indication(indication: str) -> str:
    """Validate an indication name against the products table."""
    return check_choice("indication", indication.lower(), sorted({i for _, i in _PRODUCT_RULES}))
