"""The co-stimulation class of a published product (validation summary ``per_costim``)."""

from __future__ import annotations

import pandas as pd
import pytest

from cartsim.validate.run import summarise
from cartsim.validate.targets import COSTIM_CLASSES, costim_class


@pytest.mark.parametrize(("text", "cls"), [
    ("CD28", "CD28"),
    ("4-1BB", "4-1BB"),
    ("4-1BB [not confirmed in retrieved text]", "4-1BB"),
    ("41BB", "4-1BB"),
    ("mixed", COSTIM_CLASSES[2]),
    ("not stated", COSTIM_CLASSES[2]),
    ("CD28 and 4-1BB", COSTIM_CLASSES[2]),
    ("", COSTIM_CLASSES[2]),
])
def test_costim_class(text: str, cls: str) -> None:
    assert costim_class(text) == cls


def test_summary_counts_rows_per_costim_and_reads_tables_without_the_column() -> None:
    base = {"status": "compared", "inside_published_ci": None, "within_10_points": True,
            "passes": True, "family": "response", "disease": "LBCL", "study": "s"}
    t = pd.DataFrame([dict(base, costim="CD28"), dict(base, costim="4-1BB", passes=False),
                      dict(base, costim="4-1BB")])
    s = summarise(t)
    assert s["per_costim"]["CD28"]["passing"] == 1
    assert (s["per_costim"]["4-1BB"]["judged"], s["per_costim"]["4-1BB"]["passing"]) == (2, 1)
    old = summarise(t.drop(columns="costim"))  # a table written before the column existed
    assert old["per_costim"] == {} and old["overall"]["judged"] == 3
