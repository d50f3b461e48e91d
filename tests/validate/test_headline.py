"""The headline endpoints of issue 10 (validate/headline.toml) and their verdicts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cartsim.errors import InvalidInputError
from cartsim.validate.headline import HeadlineRow, headline_summary, load_headline, select
from cartsim.validate.targets import default_targets_path


def test_every_shipped_headline_entry_names_a_row_of_the_shipped_targets() -> None:
    rows = load_headline()
    assert len(rows) >= 15
    assert {r.study for r in rows} == {"ELIANA", "ZUMA-1", "ZUMA-4 phase 1",
                                       "NCI CD19.28z phase 1"}
    t = pd.read_csv(default_targets_path())
    for h in rows:
        assert select(t, h, "arm_or_subgroup").any(), h.label


def _table() -> pd.DataFrame:
    base = {"timepoint": np.nan, "subgroup": "all", "published_ci_low": np.nan,
            "published_ci_high": np.nan, "reason": ""}
    rows = [
        {"line": 2, "study": "S", "endpoint": "CR", "status": "compared", "published": 60.0,
         "simulated": 65.0, "passes": True},
        {"line": 3, "study": "S", "endpoint": "OS", "timepoint": "12 months",
         "status": "compared", "published": 76.0, "simulated": 50.0, "passes": False},
        {"line": 4, "study": "S", "endpoint": "OS", "timepoint": "6 months",
         "status": "compared", "published": 90.0, "simulated": 89.0, "passes": True},
        {"line": 5, "study": "S", "endpoint": "EFS_median", "status": "compared",
         "published": 24.0, "simulated": 10.0, "passes": np.nan},
        {"line": 6, "study": "S", "endpoint": "CRS_grade_ge3", "status": "unmapped",
         "published": 47.0, "simulated": np.nan, "passes": np.nan, "reason": "no scale"},
    ]
    return pd.DataFrame([{**base, **r} for r in rows])


def test_verdicts_pass_fail_not_judged_not_compared_not_found() -> None:
    rows = [HeadlineRow("cr", "S", "CR"), HeadlineRow("os12", "S", "OS", "12 months"),
            HeadlineRow("efs median", "S", "EFS_median"),
            HeadlineRow("crs", "S", "CRS_grade_ge3"), HeadlineRow("pfs", "S", "PFS"),
            HeadlineRow("cr in arm", "S", "CR", arm_or_subgroup="other arm"),
            HeadlineRow("other study", "T", "CR")]
    h = headline_summary(_table(), rows)
    got = {r["label"]: r["verdict"] for r in h["rows"]}
    assert got == {"cr": "pass", "os12": "fail", "efs median": "not judged",
                   "crs": "not compared", "pfs": "not found", "cr in arm": "not found",
                   "other study": "not run"}
    assert (h["judged"], h["passing"], h["entries"]) == (2, 1, 7)
    os12 = next(r for r in h["rows"] if r["label"] == "os12")
    assert (os12["line"], os12["published"], os12["simulated"]) == (3, 76.0, 50.0)
    crs = next(r for r in h["rows"] if r["label"] == "crs")
    assert crs["reason"] == "no scale"


def test_a_bad_headline_file_names_the_entry_and_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "h.toml"
    p.write_text('[[row]]\nstudy = "S"\nendpoint = "CR"\nlabel = "x"\n'
                 '[[row]]\nstudy = "S"\nendpont = "CR"\nlabel = "y"\n', "utf-8")
    with pytest.raises(InvalidInputError, match=r"row\[1\]"):
        load_headline(p)
    p.write_text('[[row]]\nstudy = "S"\nlabel = "x"\n', "utf-8")
    with pytest.raises(InvalidInputError, match=r"row\[0\]\.endpoint"):
        load_headline(p)
