"""The headline endpoints (``headline.toml``): the rows issue 10's acceptance names for ELIANA,
ZUMA-1, ZUMA-4 and NCI CD19-28z, picked out of a validation table and judged one by one."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cartsim.errors import InvalidInputError

HEADLINE_PATH = Path(__file__).with_name("headline.toml")
_KEYS = {"study", "endpoint", "timepoint", "arm_or_subgroup", "label"}


@dataclass(frozen=True)
class HeadlineRow:
    """One headline endpoint: the targets rows whose columns equal the given values."""

    label: str
    study: str
    endpoint: str
    timepoint: str | None = None
    arm_or_subgroup: str | None = None


def load_headline(path: str | Path | None = None) -> list[HeadlineRow]:
    """The entries of ``headline.toml`` (or ``path``); a bad entry names its index and field."""
    p = Path(path) if path is not None else HEADLINE_PATH
    data = tomllib.loads(p.read_text("utf-8"))
    rows = data.get("row", [])
    out = []
    for i, r in enumerate(rows):
        unknown = set(r) - _KEYS
        if unknown:
            raise InvalidInputError(f"{p.name} row[{i}]", "keys " + ", ".join(sorted(_KEYS)),
                                    ", ".join(sorted(unknown)))
        for k in ("study", "endpoint", "label"):
            if not isinstance(r.get(k), str) or not r[k]:
                raise InvalidInputError(f"{p.name} row[{i}].{k}", "a non-empty string",
                                        r.get(k))
        out.append(HeadlineRow(r["label"], r["study"], r["endpoint"], r.get("timepoint"),
                               r.get("arm_or_subgroup")))
    return out


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def select(table: pd.DataFrame, h: HeadlineRow, subgroup_column: str = "subgroup") -> Any:
    """Boolean mask of the rows of ``table`` (a validation table, or the targets file with
    ``subgroup_column="arm_or_subgroup"``) that the headline entry ``h`` names."""
    m = (table["study"] == h.study) & (table["endpoint"] == h.endpoint)
    if h.timepoint is not None:
        m &= table["timepoint"].fillna("") == h.timepoint
    if h.arm_or_subgroup is not None:
        m &= table[subgroup_column].fillna("") == h.arm_or_subgroup
    return m


def headline_summary(table: pd.DataFrame, rows: list[HeadlineRow] | None = None
                     ) -> dict[str, Any]:
    """Each headline entry's published and simulated value and verdict: ``pass``, ``fail``,
    ``not judged`` (compared but without a criterion), ``not compared`` (the row exists but was
    not compared; the reason is in validation.csv), ``not found`` (the study has rows, none
    matches) or ``not run`` (the table has no row of the study: not selected).
    An entry that matches several compared rows takes the first (the targets file's order)."""
    rows = load_headline() if rows is None else rows
    items = []
    for h in rows:
        hit = table[select(table, h)]
        item: dict[str, Any] = {"label": h.label, "study": h.study, "endpoint": h.endpoint}
        if not (table["study"] == h.study).any():
            item["verdict"] = "not run"      # the study was not selected (--studies)
            items.append(item)
            continue
        if hit.empty:
            item["verdict"] = "not found"
            items.append(item)
            continue
        comp = hit[hit["status"] == "compared"]
        r = (comp if not comp.empty else hit).iloc[0]
        item.update(line=int(r["line"]), published=_num(r["published"]),
                    published_ci_low=_num(r["published_ci_low"]),
                    published_ci_high=_num(r["published_ci_high"]),
                    simulated=_num(r["simulated"]))
        if comp.empty:
            item["verdict"] = "not compared"
            item["reason"] = str(r.get("reason", ""))
        elif pd.isna(r["passes"]):
            item["verdict"] = "not judged"
        else:
            item["verdict"] = "pass" if bool(r["passes"]) else "fail"
        items.append(item)
    judged = [i for i in items if i["verdict"] in ("pass", "fail")]
    return {"rows": items, "judged": len(judged),
            "passing": sum(i["verdict"] == "pass" for i in judged), "entries": len(items)}
