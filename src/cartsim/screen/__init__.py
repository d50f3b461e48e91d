"""Pooled CRISPR knockout screens for CAR-T resistance: simulate and analyse.

Analysis re-implements ``mageck test`` (median/total/control normalisation, mean–variance
model, truncated-normal sgRNA statistics, α-RRA with a permutation null) and writes MAGeCK's
``gene_summary``/``sgrna_summary`` files; see ``docs/screen.md``.
"""

from cartsim.screen.analysis import (
    ScreenTestResult,
    compare_gene_summaries,
    fit_mean_variance,
    mageck_test,
    size_factors,
    write_summaries,
)
from cartsim.screen.io import CountTable, CountTableError, read_count_table, read_id_list

__all__ = [
    "CountTable",
    "CountTableError",
    "ScreenTestResult",
    "compare_gene_summaries",
    "fit_mean_variance",
    "mageck_test",
    "read_count_table",
    "read_id_list",
    "size_factors",
    "write_summaries",
]
