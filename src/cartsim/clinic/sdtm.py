"""Records as clinics and registries keep them: CDISC SDTM-style domains and Excel workbooks.

:func:`load_records` reads any of

* the long CSV of ``docs/records_format.md``;
* SDTM-style domain files — DM, VS (vital signs), LB (labs), AE (adverse events), CM
  (concomitant medications), EX (exposure) — as CSV or SAS transport (``.xpt``, via
  :func:`pandas.read_sas`), given as files or as a directory holding them;
* an Excel workbook (``.xlsx``/``.xlsm``, read with openpyxl) with either a sheet in the long
  format or one sheet per domain (named ``VS``, ``LB`` … or carrying a ``DOMAIN`` column);

and turns them into the long table that :func:`cartsim.clinic.records.parse_records` grades:
one row per observation with its source (``_source``) and row number (``_line``: the CSV line,
or the data row + 1 in XPT and Excel, header = 1). Each domain is checked with a pandera
schema first: a missing key column is a fatal error naming the file and column; a row that
fails a check (no subject id, no study day or date) is rejected with the reason.

Study day: the CAR-T infusion is day 0. With dates (``--DTC``), day = date − the subject's
CAR-T infusion date (the first EX record whose treatment is not a lymphodepleting drug, else
``DM.RFXSTDTC``); without dates, SDTM's study day ``--DY`` (no day 0: day 1 is the reference
date) becomes ``DY − 1`` for ``DY ≥ 1`` and ``DY`` before it, i.e. the reference start is taken
to be the infusion.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from cartsim.clinic.records import (
    LINE,
    PROBLEM,
    REQUIRED_COLUMNS,
    chart_word,
    read_records,
)
from cartsim.errors import InvalidInputError

DOMAINS = ("DM", "VS", "LB", "AE", "CM", "EX")
SOURCE = "_source"
LYMPHODEPLETION = ("fludarabine", "cyclophosphamide", "bendamustine", "mesna")

#: VSTESTCD → records measure (CDISC controlled terminology codes, and common variants).
VS_TESTS = {"TEMP": "temperature", "SYSBP": "sbp", "MAP": "map", "MAPBP": "map",
            "MEANBP": "map", "OXYSAT": "spo2", "SPO2": "spo2", "WEIGHT": "weight"}
#: LBTESTCD → records measure.
LB_TESTS = {"NEUT": "anc", "ANC": "anc", "PLAT": "platelets", "HGB": "hemoglobin",
            "CRP": "crp", "FERRITIN": "ferritin", "FERRITN": "ferritin", "LDH": "ldh",
            "CREAT": "creatinine", "IGG": "igg", "IL6": "il6", "FIBRINO": "fibrinogen",
            "FIBRINOG": "fibrinogen", "URATE": "urate", "K": "potassium", "PHOS": "phosphate",
            "CA": "calcium", "ALT": "alt", "AST": "ast"}
#: CM/EX treatments the grader uses: drugs with doses, vasopressors, oxygen.
DOSED_DRUGS = ("tocilizumab", "dexamethasone", "methylprednisolone")
VASOPRESSOR_WORDS = ("norepinephrine", "noradrenaline", "levophed", "epinephrine",
                     "adrenaline", "phenylephrine", "dopamine", "vasopressin",
                     "angiotensin", "giapreza", "dobutamine", "milrinone")
OXYGEN_WORDS = ("oxygen", "cannula", "hfnc", "high flow", "high-flow", "facemask", "face mask",
                "non-rebreather", "nonrebreather", "venturi", "cpap", "bipap", "niv",
                "ventilat", "intubat", "blow-by", "blow by", "optiflow")
#: AE terms (AEDECOD/AETERM) that are findings of the ICANS/CRS graders.
AE_SEIZURE = re.compile(r"seizure|epilep|convuls", re.I)
AE_HYPOTENSION = re.compile(r"^hypotension$", re.I)
AE_OEDEMA = re.compile(r"(cerebral|brain)\s+o?edema", re.I)


def _schema(domain: str):  # type: ignore[no-untyped-def]
    """The pandera schema of one SDTM domain: key columns, their checks, and the day/date
    columns of which at least one must be given per row (checked in :func:`_validate`)."""
    import pandera.pandas as pa

    text = pa.Check.str_length(min_value=1, error="is empty")
    cols = {"USUBJID": pa.Column(str, text, nullable=False)}
    extra = {
        "DM": {},
        "VS": {"VSTESTCD": pa.Column(str, text)},
        "LB": {"LBTESTCD": pa.Column(str, text)},
        "AE": {"AETERM": pa.Column(str, required=False), "AEDECOD": pa.Column(str, required=False)},
        "CM": {"CMTRT": pa.Column(str, text)},
        "EX": {"EXTRT": pa.Column(str, text)},
    }[domain]
    return pa.DataFrameSchema({**cols, **extra}, coerce=True, strict=False)


def _validate(df: pd.DataFrame, domain: str, source: str) -> pd.Series:
    """Check a domain with its pandera schema; return the per-row problem ("" = fine).
    A missing key column is fatal."""
    import pandera.pandas as pa

    missing = [c for c in ("USUBJID", *{"VS": ("VSTESTCD",), "LB": ("LBTESTCD",),
                                         "CM": ("CMTRT",), "EX": ("EXTRT",)}.get(domain, ()))
               if c not in df.columns]
    if domain == "AE" and "AETERM" not in df.columns and "AEDECOD" not in df.columns:
        missing.append("AETERM or AEDECOD")
    if missing:
        raise InvalidInputError(f"{source} columns", f"the SDTM {domain} columns USUBJID, "
                                + ", ".join(missing), ", ".join(map(str, df.columns)),
                                hint="missing " + ", ".join(missing))
    problems = pd.Series("", index=df.index, dtype=object)
    try:
        _schema(domain).validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        for _, f in fc[fc["index"].notna()].iterrows():
            i = f["index"]
            if i in problems.index and not problems[i]:
                problems[i] = f"{f['column']} {f['check']}".replace("str_length(1, None)",
                                                                    "is empty")
    return problems


def _read_table(path: Path) -> pd.DataFrame:
    """One domain file (CSV or XPT) as strings, upper-case column names."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".xpt":
            df = pd.read_sas(path, format="xport", encoding="latin-1")
        else:
            df = read_raw_csv(path)
    except InvalidInputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError("records", "a readable SDTM domain file (CSV or SAS XPT)",
                                str(path), hint=str(exc).split("\n")[0]) from None
    return _as_text(df)


def read_raw_csv(path: Path) -> pd.DataFrame:
    """A CSV with any header, as strings (UTF-8, else Windows-1252)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    import io

    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidInputError("records", "a readable CSV file", str(path),
                                hint=str(exc).strip().split("\n")[0]) from None


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.columns = [str(c).strip().upper() for c in out.columns]
    for c in out.columns:
        out[c] = pd.Series([("" if v is None or (isinstance(v, float) and np.isnan(v))
                             else (f"{v:g}" if isinstance(v, float) else str(v)).strip())
                            for v in out[c]], index=out.index, dtype=object)
    return out.reset_index(drop=True)


def _domain_of(df: pd.DataFrame, name: str) -> str | None:
    if "DOMAIN" in df.columns:
        vals = {v.upper() for v in df["DOMAIN"] if v}
        if len(vals) == 1 and next(iter(vals)) in DOMAINS:
            return next(iter(vals))
    stem = re.sub(r"[^A-Za-z]", "", Path(name).stem).upper()
    for d in DOMAINS:
        if stem == d or stem.endswith(d) and len(stem) <= len(d) + 4:
            return d
    for d, key in (("VS", "VSTESTCD"), ("LB", "LBTESTCD"), ("CM", "CMTRT"), ("EX", "EXTRT"),
                   ("AE", "AETERM"), ("AE", "AEDECOD"), ("DM", "RFXSTDTC")):
        if key in df.columns:
            return d
    return None


def _is_long(columns: Iterable[str]) -> bool:
    cols = {str(c).strip().lower() for c in columns}
    return all(c in cols for c in REQUIRED_COLUMNS)


# ---------------------------------------------------------------------------- study days
def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values.where(values != ""), errors="coerce", format="mixed")


def _infusion_dates(domains: dict[str, tuple[pd.DataFrame, str]]) -> dict[str, pd.Timestamp]:
    """Per subject: the CAR-T infusion date (EX), else DM.RFXSTDTC."""
    out: dict[str, pd.Timestamp] = {}
    if "DM" in domains and "RFXSTDTC" in domains["DM"][0].columns:
        dm = domains["DM"][0]
        for sid, d in zip(dm["USUBJID"], _dates(dm["RFXSTDTC"]), strict=True):
            if sid and not pd.isna(d):
                out[sid] = d
    if "EX" in domains and "EXSTDTC" in domains["EX"][0].columns:
        ex = domains["EX"][0]
        car = ~ex["EXTRT"].str.lower().str.contains("|".join(LYMPHODEPLETION), regex=True)
        d = _dates(ex["EXSTDTC"])
        for sid, date, keep in zip(ex["USUBJID"], d, car, strict=True):
            if keep and sid and not pd.isna(date) and (sid not in out or date < out[sid]):
                out[sid] = date
    return out


def _study_day(df: pd.DataFrame, prefix: str, which: str, infusion: dict[str, pd.Timestamp]
               ) -> tuple[pd.Series, pd.Series]:
    """(day since infusion, problem) per row from ``--{which}DTC`` or ``--{which}DY``."""
    day = pd.Series(np.nan, index=df.index)
    dtc, dy = f"{prefix}{which}DTC", f"{prefix}{which}DY"
    if dtc in df.columns:
        dates = _dates(df[dtc])
        ref = df["USUBJID"].map(infusion)
        delta = (dates - pd.to_datetime(ref)).dt.total_seconds() / 86400.0
        day = delta.where(dates.notna() & ref.notna())
    if dy in df.columns:
        raw = pd.to_numeric(df[dy].where(df[dy] != ""), errors="coerce")
        converted = np.where(raw >= 1, raw - 1, raw)
        day = day.fillna(pd.Series(converted, index=df.index))
    problem = pd.Series("", index=df.index, dtype=object)
    problem[day.isna()] = (f"no study day: {dy} or {dtc} (with the subject's CAR-T infusion "
                           "date in EX or DM.RFXSTDTC) is needed")
    return day, problem


# ------------------------------------------------------------------------------ mapping
def _rows(df: pd.DataFrame, source: str, base_problem: pd.Series, day: pd.Series,
          day_problem: pd.Series, measure: pd.Series, value: pd.Series, unit: pd.Series,
          skip: pd.Series | None = None) -> pd.DataFrame:
    problem = base_problem.where(base_problem != "", day_problem)
    out = pd.DataFrame({
        "patient_id": df["USUBJID"], "day": [("" if np.isnan(d) else repr(float(d)))
                                             for d in day],
        "measure": measure, "value": value, "unit": unit, PROBLEM: problem,
        "_note": "", LINE: (df.index + 2).astype(str), SOURCE: source})
    if skip is not None:
        out = out[~skip.to_numpy()]
    return out


def _result(df: pd.DataFrame, p: str) -> tuple[pd.Series, pd.Series]:
    """(value, unit): standardised result when given, else the original."""
    std_n, std_c, std_u = f"{p}STRESN", f"{p}STRESC", f"{p}STRESU"
    org, org_u = f"{p}ORRES", f"{p}ORRESU"
    value = pd.Series("", index=df.index, dtype=object)
    unit = pd.Series("", index=df.index, dtype=object)
    for vcol, ucol in ((org, org_u), (std_c, std_u), (std_n, std_u)):
        if vcol in df.columns:
            has = df[vcol] != ""
            value = value.where(~has, df[vcol])
            unit = unit.where(~has, df[ucol] if ucol in df.columns else "")
    return value, unit


def _tests(df: pd.DataFrame, source: str, domain: str, table: dict[str, str],
           infusion: dict[str, pd.Timestamp], problems: pd.Series,
           ignored: dict[tuple[str, str], tuple[str, int]]) -> pd.DataFrame:
    p = domain
    codes = df[f"{p}TESTCD"].str.upper()
    measure = codes.map(table).fillna("")
    for code, i in zip(codes[measure == ""], df.index[measure == ""], strict=True):
        ignored.setdefault((source, code), (domain, i + 2))
    day, day_problem = _study_day(df, p, "", infusion)
    value, unit = _result(df, p)
    if f"{p}STAT" in df.columns:  # NOT DONE
        nd = df[f"{p}STAT"].str.upper() == "NOT DONE"
        problems = problems.where(~nd, f"{p}STAT = NOT DONE")
    return _rows(df, source, problems, day, day_problem, measure, value, unit,
                 skip=(measure == ""))


def _treatment_days(df: pd.DataFrame, p: str, infusion: dict[str, pd.Timestamp]
                    ) -> tuple[pd.Series, pd.Series, pd.Series]:
    start, prob = _study_day(df, p, "ST", infusion)
    end, _ = _study_day(df, p, "EN", infusion)
    end = end.where(end.notna() & (end >= start), start)
    return start, end, prob


def _cm(df: pd.DataFrame, source: str, infusion: dict[str, pd.Timestamp],
        problems: pd.Series, ignored: dict[tuple[str, str], tuple[str, int]]) -> pd.DataFrame:
    """Medications: dosed drugs on their start day; vasopressors and oxygen on every day
    from start to end (one row per day)."""
    def col(c: str) -> pd.Series:
        return df[c] if c in df.columns else pd.Series("", index=df.index)

    name = col("CMDECOD").where(col("CMDECOD") != "", df["CMTRT"])
    start, end, day_problem = _treatment_days(df, "CM", infusion)
    dose, dosu, route = col("CMDOSE"), col("CMDOSU"), col("CMROUTE")
    rows = []
    for i in df.index:
        text = f"{name[i]} {df['CMTRT'][i]}".lower()
        problem = problems[i] or day_problem[i]
        base = {"patient_id": df["USUBJID"][i], PROBLEM: problem, "_note": "",
                LINE: str(i + 2), SOURCE: source}
        drug = next((d for d in DOSED_DRUGS if d in text), None)
        s0 = start[i]
        if drug:
            rows.append({**base, "day": "" if np.isnan(s0) else repr(float(s0)),
                         "measure": drug, "value": dose[i], "unit": dosu[i]})
            continue
        if any(w in text for w in VASOPRESSOR_WORDS):
            kind, value = "vasopressor", df["CMTRT"][i]
        elif any(w in text or w in route[i].lower() for w in OXYGEN_WORDS):
            kind, value = "oxygen_device", _oxygen_text(df["CMTRT"][i], route[i], dose[i],
                                                        dosu[i])
        else:
            ignored.setdefault((source, chart_word(name[i])), ("CM", i + 2))
            continue
        if np.isnan(s0):
            rows.append({**base, "day": "", "measure": kind, "value": value, "unit": ""})
            continue
        first, last = int(np.floor(s0)), int(np.floor(end[i]))
        for d in range(first, last + 1):
            day = float(s0) if d == first else float(d)
            rows.append({**base, "day": repr(day), "measure": kind, "value": value,
                         "unit": ""})
    return pd.DataFrame(rows, columns=_empty().columns) if rows else _empty()


def _oxygen_text(name: str, route: str, dose: str, unit: str) -> str:
    """One chart-style oxygen text ("nasal cannula 4 L/min") from CM fields."""
    device = name if name.lower().strip() not in ("oxygen", "o2", "oxygen therapy") else route
    flow = f" {dose} L/min" if dose and unit.lower().replace(" ", "") in (
        "l/min", "lpm", "l/m") else ""
    return f"{device}{flow}".strip()


def _ae(df: pd.DataFrame, source: str, infusion: dict[str, pd.Timestamp],
        problems: pd.Series, ignored: dict[tuple[str, str], tuple[str, int]]) -> pd.DataFrame:
    term = df["AETERM"] if "AETERM" in df.columns else df["AEDECOD"]
    decod = df["AEDECOD"] if "AEDECOD" in df.columns else term
    label = decod.where(decod != "", term)
    day, day_problem = _study_day(df, "AE", "ST", infusion)
    measure = pd.Series("", index=df.index, dtype=object)
    value = pd.Series("", index=df.index, dtype=object)
    for i in df.index:
        text = f"{label[i]} {term[i]}"
        if AE_SEIZURE.search(text):
            measure[i] = "seizure"
            t = term[i].lower()
            value[i] = ("status epilepticus" if "status" in t or "prolonged" in t
                        or "repetitive" in t else "seizure")
        elif AE_HYPOTENSION.search(label[i].strip()):
            measure[i], value[i] = "hypotension", "yes"
        elif AE_OEDEMA.search(text):
            measure[i] = "cerebral_edema"
            value[i] = "focal" if "focal" in term[i].lower() else "diffuse"
        else:
            ignored.setdefault((source, chart_word(label[i])), ("AE", i + 2))
    return _rows(df, source, problems, day, day_problem, measure, value,
                 pd.Series("", index=df.index), skip=(measure == ""))


def _dm(df: pd.DataFrame, source: str, problems: pd.Series) -> pd.DataFrame:
    if "AGE" not in df.columns:
        return _empty()
    unit = (df["AGEU"] if "AGEU" in df.columns else pd.Series("YEARS", index=df.index))
    return _rows(df, source, problems, pd.Series(-1.0, index=df.index),
                 pd.Series("", index=df.index), pd.Series("age", index=df.index), df["AGE"],
                 unit.str.lower(), skip=(df["AGE"] == ""))


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=[*REQUIRED_COLUMNS, PROBLEM, "_note", LINE, SOURCE])


def sdtm_to_long(domains: dict[str, tuple[pd.DataFrame, str]]) -> tuple[pd.DataFrame,
                                                                         list[tuple]]:
    """SDTM domains {name: (table, source)} → long rows, and notes on ignored tests/terms
    as (row, patient_id, measure, warning)."""
    infusion = _infusion_dates(domains)
    ignored: dict[tuple[str, str], tuple[str, int]] = {}
    parts = []
    for d, (df, source) in domains.items():
        problems = _validate(df, d, source)
        if df.empty:
            continue
        if d in ("VS", "LB"):
            parts.append(_tests(df, source, d, VS_TESTS if d == "VS" else LB_TESTS, infusion,
                                problems, ignored))
        elif d == "CM":
            parts.append(_cm(df, source, infusion, problems, ignored))
        elif d == "AE":
            parts.append(_ae(df, source, infusion, problems, ignored))
        elif d == "DM":
            parts.append(_dm(df, source, problems))
    notes = [(line, "", term, f"{source}: {dom} entry {term!r} is not used by the graders "
              "(first on this row; other rows with it are skipped too)")
             for (source, term), (dom, line) in ignored.items()]
    long = pd.concat([p for p in parts if not p.empty] or [_empty()], ignore_index=True)
    return long, notes


# ------------------------------------------------------------------------------ inputs
def load_records(paths: Path | Iterable[Path]) -> tuple[pd.DataFrame, list[tuple]]:
    """Read records in any supported layout (module docstring) → (long table, notes)."""
    items = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not items:
        raise InvalidInputError("records", "one or more files or a directory", "nothing")
    files: list[Path] = []
    for p in items:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in (".csv", ".xpt")
                           and _domain_of(pd.DataFrame(), f.name))
            if not found:
                raise InvalidInputError("records", "a directory of SDTM domain files "
                                        "(dm/vs/lb/ae/cm/ex .csv or .xpt)", str(p))
            files += found
        elif not p.exists():
            raise InvalidInputError("records", "an existing file or directory", str(p))
        else:
            files.append(p)
    long_parts: list[pd.DataFrame] = []
    domains: dict[str, tuple[pd.DataFrame, str]] = {}
    for f in files:
        if f.suffix.lower() in (".xlsx", ".xlsm"):
            for name, df, kind in _workbook(f):
                _add(kind, df, f"{f.name}[{name}]", long_parts, domains)
            continue
        if f.suffix.lower() == ".xpt":
            df = _read_table(f)
            _add(_domain_of(df, f.name), df, f.name, long_parts, domains)
            continue
        head = {c.lower() for c in _peek_header(f)}
        if _is_long(head) or {"patient_id", "measure"} & head:  # long (maybe incomplete)
            long = read_records(f)
            long[SOURCE] = f.name
            long_parts.append(long)
        else:
            df = _read_table(f)
            _add(_domain_of(df, f.name), df, f.name, long_parts, domains)
    notes: list[tuple] = []
    if domains:
        sd, notes = sdtm_to_long(domains)
        long_parts.append(sd)
    out = pd.concat(long_parts, ignore_index=True) if long_parts else _empty()
    if out.empty:
        raise InvalidInputError("records", "at least one observation the graders use",
                                ", ".join(str(p) for p in items))
    return out.fillna(""), notes


def _add(kind: str | None, df: pd.DataFrame, source: str, long_parts: list[pd.DataFrame],
         domains: dict[str, tuple[pd.DataFrame, str]]) -> None:
    if kind == "long":
        df = df.copy()
        df.columns = [c.lower() for c in df.columns]
        df[PROBLEM], df["_note"] = "", ""
        df[LINE] = (df.index + 2).astype(str)
        df[SOURCE] = source
        long_parts.append(df)
        return
    if kind is None:
        raise InvalidInputError(f"{source}", "the long records format or an SDTM domain "
                                "(DM, VS, LB, AE, CM, EX)", ", ".join(map(str, df.columns)),
                                hint="cannot tell which domain this is")
    if kind in domains:
        prev, psrc = domains[kind]
        domains[kind] = (pd.concat([prev, df], ignore_index=True), f"{psrc}+{source}")
    else:
        domains[kind] = (df, source)


def _peek_header(path: Path) -> list[str]:
    """The first non-blank line's cells (to tell the long format from an SDTM domain)."""
    try:
        with path.open("rb") as fh:
            first = b""
            for _ in range(100):
                first = fh.readline(65536)
                if not first or first.strip():
                    break
    except OSError as exc:
        raise InvalidInputError("records", "a readable file", str(path),
                                hint=exc.strerror or "") from None
    text = first.decode("utf-8-sig", errors="replace")
    return [c.strip().strip('"') for c in text.split(",")]


def _workbook(path: Path) -> list[tuple[str, pd.DataFrame, str | None]]:
    """Every non-empty sheet: (name, table as text, 'long' | SDTM domain | None)."""
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="openpyxl")
    except ImportError:  # pragma: no cover - openpyxl is a dependency
        raise InvalidInputError("records", "an Excel workbook (needs openpyxl)",
                                str(path)) from None
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInputError("records", "a readable Excel workbook (.xlsx)", str(path),
                                hint=str(exc).split("\n")[0]) from None
    out = []
    for name, raw in sheets.items():
        if raw.dropna(how="all").empty:
            continue
        if _is_long(raw.columns):
            df = raw.fillna("").astype(str)
            df.columns = [str(c).strip().lower() for c in df.columns]
            out.append((str(name), df, "long"))
            continue
        df = _as_text(raw)
        out.append((str(name), df, _domain_of(df, str(name))))
    if not out:
        raise InvalidInputError("records", "a workbook with at least one non-empty sheet",
                                str(path))
    return out


# ------------------------------------------------------------------------------ outputs
#: Graded daily columns written as AE rows: (column, AETERM/AEDECOD, grading scale).
AE_TERMS = (
    ("crs_grade_astct", "Cytokine release syndrome", "ASTCT 2019"),
    ("icans_grade_astct", "Immune effector cell-associated neurotoxicity syndrome",
     "ASTCT 2019"),
    ("neutropenia_grade", "Neutrophil count decreased", "CTCAE"),
    ("thrombocytopenia_grade", "Platelet count decreased", "CTCAE"),
    ("anemia_grade", "Anaemia", "CTCAE"),
    ("febrile_neutropenia_grade", "Febrile neutropenia", "CTCAE"),
)
AE_COLUMNS = ("STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AETERM", "AEDECOD", "AESTDY",
              "AEENDY", "AETOXGR", "AEGRSCL")


def _sdtm_day(day: float) -> int:
    """Days since infusion (0 = infusion) → SDTM study day (no day 0; infusion = day 1)."""
    d = int(np.floor(day))
    return d + 1 if d >= 0 else d


def graded_ae_rows(grades: pd.DataFrame, ctcae_version: str = "5.0",
                   studyid: str = "CARTSIM") -> pd.DataFrame:
    """Graded output as SDTM-like AE rows: one row per patient and episode (consecutive days
    graded ≥ 1, a gap of more than one day ends it) of CRS and ICANS (ASTCT grades) and of the
    CTCAE cytopenias; ``AETOXGR`` is the episode's maximum grade, ``AESTDY``/``AEENDY`` SDTM
    study days (infusion = day 1), ``AEGRSCL`` the grading scale (the value SUPPAE would
    carry)."""
    rows = []
    if grades.empty:
        return pd.DataFrame(columns=list(AE_COLUMNS))
    for pid, g in grades.sort_values(["patient_id", "day"]).groupby("patient_id", sort=True):
        days = g["day"].to_numpy(dtype=float)
        for col, term, scale in AE_TERMS:
            if col not in g.columns:
                continue
            gr = pd.to_numeric(g[col], errors="coerce").fillna(0).to_numpy(dtype=float)
            on = np.flatnonzero(gr >= 1)
            if on.size == 0:
                continue
            breaks = np.flatnonzero(np.diff(days[on]) > 1) + 1
            for ep in np.split(on, breaks):
                rows.append({
                    "STUDYID": studyid, "DOMAIN": "AE", "USUBJID": str(pid), "AETERM": term,
                    "AEDECOD": term, "AESTDY": _sdtm_day(days[ep[0]]),
                    "AEENDY": _sdtm_day(days[ep[-1]]), "AETOXGR": int(gr[ep].max()),
                    "AEGRSCL": scale if scale != "CTCAE" else f"CTCAE v{ctcae_version}"})
    df = pd.DataFrame(rows, columns=[c for c in AE_COLUMNS if c != "AESEQ"])
    df = df.sort_values(["USUBJID", "AESTDY", "AETERM"], kind="stable").reset_index(drop=True)
    df.insert(3, "AESEQ", df.groupby("USUBJID").cumcount() + 1)
    return df
