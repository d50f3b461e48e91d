"""Endpoint mapping table, timepoints, units, scales and subgroup labels (no simulation)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from cartsim.validate.mapping import (
    DAYS_PER_MONTH,
    MappingTableError,
    choose_subgroup,
    crs_scale,
    default_mapping,
    is_whole_cohort,
    normalise_unit,
    parse_mapping,
    parse_timepoint,
)
from cartsim.validate.targets import default_targets_path


def test_every_reference_endpoint_is_classified() -> None:
    """No endpoint of the shipped reference set is unknown: each is compared, baseline or
    unmapped with a reason (the table is the vocabulary of targets files)."""
    m = default_mapping()
    with default_targets_path().open(encoding="utf-8") as f:
        names = {r["endpoint"] for r in csv.DictReader(f)}
    classes = {n: m.classify(n) for n in names}
    assert not [n for n, c in classes.items() if c == "unknown"]
    assert sum(c == "compared" for c in classes.values()) > 60
    assert all(m.unmapped[n].strip() for n, c in classes.items() if c == "unmapped")


@pytest.mark.parametrize(("endpoint", "kind", "family", "expr"), [
    ("ORR_CR_CRi", "rate", "response", "responder == 1"),
    ("CR", "rate", "response", "complete_response == 1"),
    ("CRS_grade_ge3", "rate", "crs", "{crs} >= 3"),
    ("CRS_severe", "rate", "crs", "{crs} >= 3"),
    ("neurotox_grade_ge3", "rate", "neurotox", "{neuro} >= 3"),
    ("tocilizumab_among_CRS", "rate", "supportive", "tocilizumab_doses > 0"),
    ("OS", "km", "survival", ""),
    ("alive", "km", "survival", ""),
    ("PFS_median", "km_median", "survival", ""),
    ("OS_median_after_relapse", "km_median", "survival", ""),
    ("CRS_onset_median", "median", "crs", ""),
    ("prolonged_neutropenia_grade_ge3", "daily_rate", "cytopenia", "anc_per_ul < 1000"),
    ("B_cell_recovery", "rate", "b_cells", "bca_ongoing == 0"),
])
def test_representative_mappings(endpoint: str, kind: str, family: str, expr: str) -> None:
    q = default_mapping().quantities[endpoint]
    assert (q.kind, q.family) == (kind, family)
    if expr:
        assert q.event == expr


def test_aliases_inherit_and_baseline_and_unmapped() -> None:
    m = default_mapping()
    assert m.quantities["OS_median_after_relapse"].column == "prs"  # from the relapse day
    assert m.quantities["LFS"].column == "rfs" and "leukaemia-free" in m.quantities["LFS"].note
    assert m.quantities["progression_CD19_neg_or_low"].among == "relapse == 1"
    for name in ("baseline_age_median", "dose_median_per_kg", "lymphodepletion_fludarabine",
                 "infused", "followup_median"):
        assert m.classify(name) == "baseline"
    assert m.classify("HR_TP53") == "unmapped" and "hazard" in m.unmapped["HR_TP53"]
    assert m.classify("no_such_endpoint") == "unknown"
    assert m.quantities["B_cells_undetectable"].at_landmark == "b_cells_per_ul < 20"
    assert [r.use for r in m.context] == ["CR_morphologic", "CR_morphologic"]


def test_context_rule_and_at_landmark_errors() -> None:
    base = {"endpoint": {"CR": {"family": "response", "kind": "rate", "event": "x == 1",
                                "units": ["percent"]}}}
    with pytest.raises(MappingTableError, match="use 'nope' must both be mapped"):
        parse_mapping({**base, "context": [{"endpoint": "CR", "disease": "B-ALL",
                                             "use": "nope", "note": "n"}]})
    with pytest.raises(MappingTableError, match=r"context\[0\].note"):
        parse_mapping({**base, "context": [{"endpoint": "CR", "disease": "B-ALL",
                                             "use": "CR"}]})
    bad = {"endpoint": {"OS": {"family": "survival", "kind": "km", "column": "os",
                               "units": ["percent"], "at_landmark": "x < 1"}}}
    with pytest.raises(MappingTableError, match="at_landmark: only for kinds"):
        parse_mapping(bad)


def test_mapping_table_errors_name_the_entry() -> None:
    with pytest.raises(MappingTableError, match=r"endpoint.X.kind"):
        parse_mapping({"endpoint": {"X": {"kind": "mean", "family": "crs", "units": ["days"]}}})
    with pytest.raises(MappingTableError, match=r"endpoint.X.event"):
        parse_mapping({"endpoint": {"X": {"kind": "rate", "family": "crs",
                                          "units": ["percent"]}}})
    with pytest.raises(MappingTableError, match=r"same_as"):
        parse_mapping({"endpoint": {"X": {"same_as": "Y"}}})


@pytest.mark.parametrize(("text", "kind", "start", "end"), [
    ("", "none", 0.0, math.inf),
    ("12 months", "landmark", 0.0, 12 * DAYS_PER_MONTH),
    ("3 months", "landmark", 0.0, 3 * DAYS_PER_MONTH),
    ("day 28", "landmark", 0.0, 28.0),
    ("1 year", "landmark", 0.0, 365.25),
    ("2 years", "landmark", 0.0, 730.5),
    ("at 5-year cut-off", "landmark", 0.0, 5 * 365.25),
    ("within 3 months", "window", 0.0, 3 * DAYS_PER_MONTH),
    ("day 0-28", "window", 0.0, 28.0),
    ("day 29-90", "window", 29.0, 90.0),
    ("> 1 year", "window", 365.25, math.inf),
    ("first month", "window", 0.0, DAYS_PER_MONTH),
    ("median FU 15.4 months", "followup", 0.0, 15.4 * DAYS_PER_MONTH),
    ("median follow-up", "followup", 0.0, math.inf),
    ("primary analysis", "followup", 0.0, math.inf),
    ("at progression", "unparsed", 0.0, math.inf),
])
def test_parse_timepoint(text: str, kind: str, start: float, end: float) -> None:
    tp = parse_timepoint(text)
    assert tp.kind == kind
    assert tp.start == pytest.approx(start) and tp.end == pytest.approx(end)


@pytest.mark.parametrize(("unit", "norm", "den"), [
    ("percent", "percent", None), ("percent (approx.)", "percent", None),
    ("count", "count", None), ("count (of 79)", "count", 79), ("months", "months", None),
    ("months (lower bound)", "months", None), ("days", "days", None),
    ("CAR-T cells/uL", "cells_per_ul", None), ("hazard ratio", "ratio", None),
    ("mg/m2/day x3 days", "", None),
])
def test_normalise_unit(unit: str, norm: str, den: int | None) -> None:
    assert normalise_unit(unit) == (norm, den)


@pytest.mark.parametrize(("text", "scale"), [
    ("Lee 2014 (modified) [scale not stated in abstract]", "lee2014"),
    ("Lee 2014 [as cited]", "lee2014"), ("Penn", "penn"),
    ("Penn [scale not stated in release]", "penn"), ("CARTOX (CRES)", "cartox"),
    ("MSKCC/CTCAE [not stated]", "mskcc"), ("CTCAE v4.03", "ctcae_v4.03"),
    ("CTCAE", "ctcae_v4.03"), ("CTCAE v5.0", "ctcae_v5.0"), ("ASTCT", "astct"),
    ("", "penn"), ("mixed", "penn"), ("not stated in abstract", "penn"),
])
def test_crs_scale_normalisation(text: str, scale: str) -> None:
    got, note = crs_scale(text, "penn")
    assert got == scale
    if not text or text in ("mixed", "not stated in abstract"):
        assert "spec's crs_scale" in note


@pytest.mark.parametrize(("label", "whole"), [
    ("all", True), ("", True), ("all infused", True), ("infused", True), ("treated", True),
    ("ITT", True), ("phase 2 treated", True), ("infused (n not stated)", True),
    ("phase 1+2 (some figures may be phase 2 only)", True), ("TP53 altered", False),
    ("responders", False), ("2e6/kg", False), ("high vs low burden", False),
])
def test_whole_cohort_labels(label: str, whole: bool) -> None:
    assert is_whole_cohort(label) is whole


def test_choose_subgroup() -> None:
    table = {"TP53 altered": "tp53_altered == 1", "everyone": "all"}
    assert choose_subgroup("TP53 altered", table, "a", 1).query == "tp53_altered == 1"
    assert choose_subgroup("everyone", table, "a", 1).query is None
    assert choose_subgroup("all infused", table, "a", 1).query is None
    two = choose_subgroup("all infused", table, "tisa", 2)
    assert two.query == "arm == 'tisa'" and "first arm" in two.note
    assert choose_subgroup("responders", {}, "a", 1).query == "responder == 1"
    # a label restating the endpoint's own denominator is the whole cohort
    own = choose_subgroup("relapses with CD19 status", {}, "a", 1, "relapse == 1")
    assert own.query is None and not own.error
    bad = choose_subgroup("relapses with CD19 status", {}, "a", 1, "")
    assert bad.error and "[study.subgroups]" in bad.error
    assert choose_subgroup("NOXA low", table, "a", 1).error


def test_a_row_without_a_neurotoxicity_scale_takes_the_trial_protocols_scale() -> None:
    from cartsim.trial.spec import load_spec
    from cartsim.validate.mapping import neuro_scale
    from cartsim.validate.run import protocol_neuro_scale

    # stated scales win; an unstated one follows the protocol (CTCAE for pre-consensus trials)
    assert neuro_scale("CTCAE v5.0", "ctcae_4.03")[0] == "neuro_max_grade_ctcae_v5.0"
    assert neuro_scale("ASTCT", "ctcae_4.03")[0] == "icans_max_grade"
    assert neuro_scale("", "ctcae_4.03")[0] == "neuro_max_grade_ctcae_v4.03"
    assert "protocol" in neuro_scale("", "ctcae_4.03")[1]
    assert neuro_scale("", "astct")[0] == "icans_max_grade"
    assert neuro_scale("")[0] == "icans_max_grade"
    studies = Path(__file__).resolve().parents[2] / "src" / "cartsim" / "data" / "studies"
    assert protocol_neuro_scale(load_spec(studies / "chop_ctl019_pilot.toml")) == "ctcae_4.03"
    assert protocol_neuro_scale(load_spec(studies / "tancar7.toml")) == "astct"
