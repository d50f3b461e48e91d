"""cartsim's unit strings as SBML unit definitions.

A unit string is a product of known units over an optional denominator (``1/d``,
``cells/µL``, ``1/(unit·d)``, ``pg/mL``). Known units are the ones the model's parameter
tables use; a string with anything else (``× normal marrow``, ``pg/d per 1e9 kills/d``) is
exported as dimensionless, and the exporter keeps the original string in the element's notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: unit → (SBML base unit kind, scale (power of ten), multiplier)
_ATOMS: dict[str, tuple[str, int, float]] = {
    "cells": ("item", 0, 1.0), "cell": ("item", 0, 1.0), "targets": ("item", 0, 1.0),
    "effector": ("item", 0, 1.0), "kills": ("item", 0, 1.0), "engaged": ("item", 0, 1.0),
    "d": ("second", 0, 86400.0), "h": ("second", 0, 3600.0), "y": ("second", 0, 31557600.0),
    "kg": ("kilogram", 0, 1.0), "g": ("gram", 0, 1.0), "mg": ("gram", -3, 1.0),
    "µg": ("gram", -6, 1.0), "ng": ("gram", -9, 1.0), "pg": ("gram", -12, 1.0),
    "L": ("litre", 0, 1.0), "dL": ("litre", -1, 1.0), "mL": ("litre", -3, 1.0),
    "µL": ("litre", -6, 1.0), "mmHg": ("pascal", 0, 133.322387415),
}
_DIMENSIONLESS = {"", "–", "-", "0/1", "fraction", "relative", "relative density", "unit",
                  "units", "ratio", "flag", "dose", "mg dex-eq", "state unit"}


@dataclass(frozen=True)
class Unit:
    """A parsed unit: SBML id and its (kind, exponent, scale, multiplier) factors; ``exact``
    is False when the string was not understood (exported as dimensionless)."""

    sid: str
    factors: tuple[tuple[str, float, int, float], ...]
    exact: bool


def _side(text: str) -> list[str] | None:
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    toks = [t for t in re.split(r"[·*\s]+", text) if t]
    out = []
    for t in toks:
        if t in _DIMENSIONLESS or t == "1":
            continue
        if t not in _ATOMS:
            return None
        out.append(t)
    return out


def parse(unit: str) -> Unit:
    """The SBML unit of a cartsim unit string (see the module docstring)."""
    text = unit.strip()
    if text in _DIMENSIONLESS:
        return Unit("dimensionless", (), True)
    # "mg dex-eq (70-kg reference; × body_scale)": the unit is what precedes the comment
    text = re.sub(r"\s*\(\d+-kg reference[^)]*\)", "", text)
    if text == "mg dex-eq":
        text = "mg"
    num, _, den = text.partition("/")
    a, b = _side(num), _side(den) if den else []
    if a is None or b is None:
        return Unit("dimensionless", (), False)
    powers: dict[str, tuple[float, int, float]] = {}
    for toks, sign in ((a, 1.0), (b, -1.0)):
        for t in toks:
            kind, scale, mult = _ATOMS[t]
            key = f"{kind}:{scale}:{mult}"
            e, _, _ = powers.get(key, (0.0, scale, mult))
            powers[key] = (e + sign, scale, mult)
    factors = tuple((k.split(":")[0], e, s, m) for k, (e, s, m) in powers.items() if e != 0)
    if not factors:
        return Unit("dimensionless", (), True)
    sid = "u_" + "_".join(
        f"{k}{'' if s == 0 else f'e{s}'.replace('-', 'm')}"
        f"{'' if m == 1.0 else '_x' + f'{m:g}'.replace('.', 'p')}"
        f"{'' if e == 1 else '_pow' + f'{e:g}'.replace('-', 'm')}"
        for k, e, s, m in factors)
    return Unit(re.sub(r"[^A-Za-z0-9_]", "_", sid), factors, True)
