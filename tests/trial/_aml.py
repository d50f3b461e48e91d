"""The survival::aml reference data set, inlined (no R needed)."""

from __future__ import annotations

import pandas as pd

# survival::aml (Acute Myelogenous Leukemia survival data; Miller 1981, Embury et al. 1977).
# time = weeks to relapse or censoring; status 1 = relapse; x = maintenance chemotherapy.
AML_MAINTAINED = (
    [9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161],
    [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0],
)
AML_NONMAINTAINED = (
    [5, 5, 8, 8, 12, 16, 23, 27, 30, 33, 43, 45],
    [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1],
)


def aml_frame() -> pd.DataFrame:
    """The 23-row ``aml`` data frame in R's row order."""
    rows = [(t, s, "Maintained") for t, s in zip(*AML_MAINTAINED, strict=True)]
    rows += [(t, s, "Nonmaintained") for t, s in zip(*AML_NONMAINTAINED, strict=True)]
    return pd.DataFrame(rows, columns=["time", "status", "x"])
