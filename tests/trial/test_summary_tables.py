"""The trial summary's continuous table gives pandas' per-column statistics (session 36).

``continuous_table`` reduces all numeric columns of an arm at once with NumPy; the numbers
must be those of pandas' ``median``/``quantile``/``min``/``max`` on each column with missing
values left out, including all-missing columns, integer and boolean columns, single-patient
arms and an arm with no patients.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cartsim.trial.summary import continuous_table


def _reference(df: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    cols = [c for c in df.columns if c not in ("arm", "arm_index", "patient_id")
            and pd.api.types.is_numeric_dtype(df[c])]
    rows = []
    for arm in arms:
        sub = df[df["arm"] == arm]
        for c in cols:
            v = sub[c].astype(float).dropna()
            rows.append({"arm": arm, "column": c, "n": int(v.size),
                         "median": float(v.median()) if v.size else math.nan,
                         "q1": float(v.quantile(0.25)) if v.size else math.nan,
                         "q3": float(v.quantile(0.75)) if v.size else math.nan,
                         "min": float(v.min()) if v.size else math.nan,
                         "max": float(v.max()) if v.size else math.nan})
    return pd.DataFrame(rows)


def test_continuous_table_equals_pandas_per_column_statistics() -> None:
    rng = np.random.default_rng(36)
    n = 257
    arm = rng.choice(["a", "b", "one"], n, p=[0.6, 0.4 - 1 / n, 1 / n])
    arm[0] = "one"
    arm[1:][arm[1:] == "one"] = "a"
    x = rng.lognormal(3, 2, n)
    x[rng.random(n) < 0.3] = np.nan
    df = pd.DataFrame({
        "arm": arm, "arm_index": 0, "patient_id": np.arange(n),
        "x": x, "days": rng.integers(0, 900, n).astype(np.int64),
        "flag": rng.random(n) < 0.4, "grade": rng.integers(0, 5, n).astype(np.int8),
        "nullable": pd.array(np.where(rng.random(n) < 0.5, None, rng.integers(0, 9, n)),
                             dtype="Int64"),
        "none": np.full(n, np.nan), "label": rng.choice(["CR", "NR"], n),
    })
    arms = ["a", "b", "one", "empty"]
    got = continuous_table(df, arms)
    want = _reference(df, arms)
    assert got.to_csv(index=False) == want.to_csv(index=False)
    assert set(got["column"]) == {"x", "days", "flag", "grade", "nullable", "none"}
    empty = got[got["arm"] == "empty"]
    assert (empty["n"] == 0).all() and empty["median"].isna().all()
    one = got[(got["arm"] == "one") & (got["column"] == "days")].iloc[0]
    assert one["n"] == 1 and one["q1"] == one["q3"] == one["median"] == df["days"].iloc[0]
