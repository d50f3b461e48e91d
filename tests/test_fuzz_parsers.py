"""Fuzz every parser of user files: whatever the bytes, the only exceptions are cartsim's own
error classes (which the CLIs print as one line), never a traceback-producing crash."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartsim.clinic.records import parse_records, read_records
from cartsim.errors import CartsimError
from cartsim.screen.io import read_count_table
from cartsim.screen.simulate import read_truth_table
from cartsim.trial.spec import load_spec, validate_spec

FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# text that looks like the real files: their delimiters, keywords and odd values
_TOKENS = st.sampled_from([
    ",", "\t", "\n", "\r\n", " ", '"', "=", "[", "]", "{", "}", "#", "-", ".", "e", "inf", "nan",
    "1", "0", "-3", "2.5", "1e400", "°F", "µ", "\x00", "\ufeff", "é", "patient_id", "day",
    "measure", "value", "unit", "temperature", "anc", "C", "x10^9/L", "sgRNA", "Gene", "gene",
    "h", "s", "name", "seed", "arms", "population", "size", "disease", "b-all", "product",
    "tisagenlecleucel", "[[arms]]", "[population]", "kind", "normal", "true",
])
_TEXT = st.lists(st.one_of(_TOKENS, st.text(max_size=4)), max_size=60).map("".join)
_BYTES = st.one_of(_TEXT.map(lambda t: t.encode("utf-8")),
                   _TEXT.map(lambda t: t.encode("utf-16")), st.binary(max_size=200))


# Every example writes under one directory that is removed when the session ends (each example
# used to leave its own temporary directory behind: thousands per run).
_FUZZ_ROOT = Path(tempfile.mkdtemp(prefix="cartsim-fuzz-"))
atexit.register(shutil.rmtree, _FUZZ_ROOT, True)


def _file(data: bytes, suffix: str) -> Path:
    d = Path(tempfile.mkdtemp(dir=_FUZZ_ROOT))
    p = d / f"input{suffix}"
    p.write_bytes(data)
    return p


def _only_our_errors(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except CartsimError:
        return None


@FUZZ
@given(_BYTES)
def test_spec_parser(data: bytes) -> None:
    _only_our_errors(load_spec, _file(data, ".toml"))


_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
_SPEC_KEYS = st.sampled_from(["name", "seed", "follow_up_days", "assessment_days", "crs_scale",
                              "population", "arms", "disease", "size", "age_y", "kind", "mean",
                              "sd", "product", "dose", "protocol", "endpoints", "per_kg"])
_JSONISH = st.recursive(_SCALAR, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(_SPEC_KEYS, kids, max_size=5)), max_leaves=20)


@FUZZ
@given(st.dictionaries(_SPEC_KEYS, _JSONISH, max_size=8))
def test_spec_validator(data: dict) -> None:  # type: ignore[type-arg]
    _only_our_errors(validate_spec, data)


@FUZZ
@given(_BYTES)
def test_records_parser(data: bytes) -> None:
    df = _only_our_errors(read_records, _file(data, ".csv"))
    if df is not None:
        parse_records(df)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["P1", "P 1", "", "=cmd", "P/1"]),
                          st.one_of(st.sampled_from(["1", "-2.5", "x", "", "inf", "1e9"]),
                                    st.text(max_size=3)),
                          st.sampled_from(["temperature", "anc", "seizure", "oxygen_device",
                                           "vasopressor", "age", "weight", "bogus", ""]),
                          st.one_of(st.sampled_from(["39", "focal", "hfnc", "norepinephrine",
                                                     "-1", "nan", "yes", ""]),
                                    st.text(max_size=4)),
                          st.sampled_from(["C", "°F", "x10^9/L", "", "agent", "kg", "??"])),
                max_size=12))
def test_records_rows(rows: list[tuple[str, str, str, str, str]]) -> None:
    lines = ["patient_id,day,measure,value,unit"]
    for r in rows:
        lines.append(",".join('"' + c.replace('"', '""') + '"' for c in r))
    df = _only_our_errors(read_records, _file("\n".join(lines).encode("utf-8"), ".csv"))
    if df is not None:
        parsed = parse_records(df)
        assert len(parsed.valid) + len(parsed.rejected) >= 1


@FUZZ
@given(_BYTES, st.sampled_from([".txt", ".csv"]))
def test_count_table_parser(data: bytes, suffix: str) -> None:
    _only_our_errors(read_count_table, _file(data, suffix))


@FUZZ
@given(_BYTES)
def test_truth_table_parser(data: bytes) -> None:
    _only_our_errors(read_truth_table, _file(data, ".csv"))


_CELL = st.one_of(st.sampled_from(["", "S1", "TEMP", "NEUT", "39", "-1", "C", "x10^9/L",
                                   "2024-03-10", "2024-13-45", "3", "abc", "inf", "NOT DONE"]),
                  st.text(max_size=5))


@FUZZ
@given(st.sampled_from(["vs", "lb", "cm", "ae", "ex", "dm"]),
       st.lists(st.tuples(_CELL, _CELL, _CELL, _CELL, _CELL), max_size=8))
def test_sdtm_domain_parser(domain: str, rows: list[tuple[str, ...]]) -> None:
    from cartsim.clinic.records import grade_records

    p = domain.upper()
    header = {"vs": "USUBJID,VSTESTCD,VSORRES,VSORRESU,VSDY",
              "lb": "USUBJID,LBTESTCD,LBSTRESN,LBSTRESU,LBDTC",
              "cm": "USUBJID,CMTRT,CMDOSE,CMDOSU,CMSTDTC",
              "ae": "USUBJID,AETERM,AEDECOD,AESTDY,AESTDTC",
              "ex": "USUBJID,EXTRT,EXSTDTC,EXDOSE,EXDOSU",
              "dm": "USUBJID,AGE,AGEU,RFXSTDTC,SEX"}[domain]
    assert header.split(",")[1].startswith(p) or domain == "dm"
    text = header + "\n" + "".join(
        ",".join('"' + c.replace('"', '""') + '"' for c in r) + "\n" for r in rows)
    d = Path(tempfile.mkdtemp(dir=_FUZZ_ROOT))
    (d / f"{domain}.csv").write_text(text, encoding="utf-8")
    _only_our_errors(grade_records, d)
