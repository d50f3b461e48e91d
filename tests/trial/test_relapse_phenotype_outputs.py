"""The lineage-switch relapse phenotype in the trial outputs: the summary's binary endpoints
and the report's relapse-phenotype bars."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cartsim.report.trial_plots import relapse_phenotypes
from cartsim.trial.summary import binary_endpoints


def _patients(phenos: list[str], kmt2a: bool = True) -> pd.DataFrame:
    n = len(phenos)
    rel = [0 if p == "" else 1 for p in phenos]
    zero = [0] * n
    return pd.DataFrame({
        "arm": ["a"] * n, "arm_index": zero, "responder": [1] * n,
        "complete_response": [1] * n, "relapse": rel, "relapse_phenotype": phenos,
        "crs_max_grade": zero, "icans_max_grade": zero, "tocilizumab_doses": zero,
        "steroids_given": zero, "neutropenia_max_grade": zero,
        "thrombocytopenia_max_grade": zero, "icaht_early_grade": zero,
        "bca_onset_day": [np.nan] * n, "death": zero, "death_cause": [""] * n, "hsct": zero,
        **({"kmt2a": zero} if kmt2a else {}),
    })


def test_the_summary_gives_the_lineage_switch_share_of_b_all_relapses() -> None:
    df = _patients(["lineage switch", "CD19-negative", "CD19-positive", "CD19-positive", ""])
    out = binary_endpoints(df)
    _, sw = out["lineage_switch_among_relapses"]
    _, neg = out["cd19_negative_among_relapses"]
    assert sw.mean() == 0.25 and neg.mean() == 0.25  # of the 4 relapses; NaN for the rest
    assert np.isnan(sw.iloc[4])
    # every B-ALL arm has the row, with or without a switch (the arms' rate tables match) ...
    _, none = binary_endpoints(_patients(["CD19-negative", "CD19-positive", ""]))[
        "lineage_switch_among_relapses"]
    assert none.mean() == 0.0
    # ... and a lymphoma table (no KMT2A covariate) has none
    assert "lineage_switch_among_relapses" not in binary_endpoints(
        _patients(["CD19-negative", "CD19-positive", ""], kmt2a=False))


def test_the_relapse_phenotype_bars_count_lineage_switches() -> None:
    df = _patients(["lineage switch", "lineage switch", "CD19-negative", "CD19-positive", ""])
    fig = relapse_phenotypes(df)
    ax = fig.axes[0]
    heights = {t.get_label(): sum(p.get_height() for p in t.patches) for t in ax.containers}
    assert heights == {"CD19-positive": 1.0, "CD19-negative": 1.0, "lineage switch": 2.0,
                       "CD19-unknown": 0.0}
