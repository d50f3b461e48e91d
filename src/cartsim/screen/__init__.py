"""Pooled CRISPR knockout screens for CAR-T resistance: simulate and analyse.

Analysis re-implements ``mageck test`` (median/total/control normalisation, mean–variance
model, truncated-normal sgRNA statistics, α-RRA with a permutation null) and writes MAGeCK's
``gene_summary``/``sgrna_summary`` files; see ``docs/screen.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cartsim.screen.analysis import (
        ScreenTestResult,
        compare_gene_summaries,
        fit_mean_variance,
        mageck_test,
        size_factors,
        write_summaries,
    )
    from cartsim.screen.io import CountTable, CountTableError, read_count_table, read_id_list

# The public names load on first use (PEP 562): `cartsim screen --help` and the other CLI
# commands must not pay for pandas/scipy just because the screen sub-command is mounted.
_WHERE = {
    "ScreenTestResult": "analysis", "compare_gene_summaries": "analysis",
    "fit_mean_variance": "analysis", "mageck_test": "analysis", "size_factors": "analysis",
    "write_summaries": "analysis", "CountTable": "io", "CountTableError": "io",
    "read_count_table": "io", "read_id_list": "io",
}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'cartsim.screen' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cartsim.screen.{mod}"), name)


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
