"""Reading and writing MAGeCK-format files, with errors that name the offending row or column.

Count table layout (MAGeCK ``-k``): one header line, column 1 = sgRNA id (unique), column 2 =
gene symbol, then one integer column per sample. Tab-separated, except that a file whose name
ends in ``.csv`` is read comma-separated, as MAGeCK does.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cartsim.atomic import atomic_write
from cartsim.errors import InvalidInputError


class CountTableError(InvalidInputError):
    """A count table or sample selection is malformed; the message names the row or column."""


@dataclass(frozen=True)
class CountTable:
    """An sgRNA × sample count matrix in MAGeCK layout.

    Attributes:
        sgrna: sgRNA ids, unique (length n_sgrna).
        gene: gene symbol of each sgRNA.
        samples: sample labels, in column order (0-based index = MAGeCK's index).
        counts: float64 array (n_sgrna, n_samples) of non-negative counts.
    """

    sgrna: np.ndarray
    gene: np.ndarray
    samples: tuple[str, ...]
    counts: np.ndarray

    @property
    def n_sgrna(self) -> int:
        """Number of sgRNAs (rows)."""
        return int(self.counts.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame with columns sgRNA, Gene, then one column per sample."""
        df = pd.DataFrame({"sgRNA": self.sgrna, "Gene": self.gene})
        body = pd.DataFrame(self.counts, columns=list(self.samples))
        if np.all(self.counts == np.round(self.counts)):
            body = body.astype(np.int64)
        return pd.concat([df, body], axis=1)

    def resolve_samples(self, spec: str | Sequence[str | int], field: str) -> list[int]:
        """Turn MAGeCK sample selectors (labels or 0-based indices) into column indices.

        ``spec`` is a comma-separated string or a sequence. Labels are matched first; a token
        that is not a label but is a non-negative integer below the number of samples is an
        index, counted after the two id columns as MAGeCK counts them.
        """
        tokens: list[str | int]
        if isinstance(spec, str):
            tokens = [t.strip() for t in spec.split(",") if t.strip() != ""]
        else:
            tokens = list(spec)
        if not tokens:
            raise CountTableError(field, "one or more sample labels or 0-based indices", spec)
        lookup = {s: i for i, s in enumerate(self.samples)}
        out: list[int] = []
        allowed = (
            f"a sample label of the count table ({', '.join(self.samples)}) or an index "
            f"0..{len(self.samples) - 1}"
        )
        for tok in tokens:
            if isinstance(tok, str) and tok in lookup:
                out.append(lookup[tok])
                continue
            if isinstance(tok, (int, np.integer)):
                idx = int(tok)
            elif isinstance(tok, str) and tok.isdigit():
                idx = int(tok)
            else:
                raise CountTableError(field, allowed, tok, "unknown sample")
            if not 0 <= idx < len(self.samples):
                raise CountTableError(field, allowed, tok, "sample index out of range")
            out.append(idx)
        if len(set(out)) != len(out):
            raise CountTableError(field, "each sample at most once", spec, "duplicate sample")
        return out


def _read_text(p: Path, what: str) -> str:
    """The file as text (UTF-8, a byte-order mark ignored); the error names the first line
    that is not UTF-8."""
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CountTableError(what, "a readable file", str(p), exc.strerror or "") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CountTableError(f"{what} {p.name} line {line}", "UTF-8 text",
                              data[exc.start:exc.start + 4], "undecodable bytes") from None


def _delimiter(path: Path) -> str:
    return "," if path.suffix.lower() == ".csv" else "\t"


def read_count_table(path: str | os.PathLike[str], allow_fractional: bool = True) -> CountTable:
    """Read and validate a MAGeCK count table.

    Args:
        path: the table (``.csv`` → comma-separated, otherwise tab-separated).
        allow_fractional: accept non-integer counts, as ``mageck`` does (it reads every count
            with ``float``: normalised or batch-corrected tables); ``False`` = integers only.

    Raises:
        CountTableError: missing id/gene/sample columns, empty or duplicate sgRNA ids, an empty
            gene name, missing, non-numeric, non-finite, (if not allowed) non-integer or
            negative counts; the message names the file line (header = line 1), the sgRNA id
            and the column.
    """
    p = Path(path)
    if not p.is_file():
        raise CountTableError("count table", "an existing file", str(p),
                              "file not found" if not p.exists() else "not a file")
    text = _read_text(p, "count table")
    try:
        raw_df = pd.read_csv(io.StringIO(text), sep=_delimiter(p), dtype=str, header=None,
                             keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, csv.Error) as err:
        raise CountTableError(f"count table {p.name}", "the same number of columns on every "
                              "line", str(err).strip().split("\n")[0]) from None
    except pd.errors.EmptyDataError:
        raise CountTableError(f"count table {p.name}", "a header line and sgRNA rows",
                              "an empty file") from None
    cols = [str(c) for c in raw_df.iloc[0]] if len(raw_df) else []
    df = raw_df.iloc[1:].reset_index(drop=True)
    df.columns = list(range(len(cols)))
    if len(cols) < 3:
        raise CountTableError(
            f"count table {p.name} header",
            "columns sgRNA, Gene and at least one sample column",
            cols,
            "missing columns (is the file tab-separated?)",
        )
    for j, c in enumerate(cols):
        if c.strip() == "":
            raise CountTableError(
                f"count table {p.name} header column {j + 1}", "a non-empty label", c
            )
    samples = tuple(cols[2:])
    if len(set(samples)) != len(samples):
        dup = [s for s in samples if samples.count(s) > 1][0]
        raise CountTableError(f"count table {p.name} header", "unique sample labels", dup)
    sg = df.iloc[:, 0].to_numpy(dtype=object)
    gene = df.iloc[:, 1].to_numpy(dtype=object)
    empty = np.flatnonzero((pd.Series(sg).str.strip() == "").to_numpy())
    if empty.size:
        raise CountTableError(
            f"count table {p.name} line {empty[0] + 2} column {cols[0]}", "a non-empty sgRNA id", ""
        )
    no_gene = np.flatnonzero((pd.Series(gene).str.strip() == "").to_numpy())
    if no_gene.size:
        i = int(no_gene[0])
        raise CountTableError(
            f"count table {p.name} line {i + 2} (sgRNA {sg[i]}) column {cols[1]}",
            "a gene name (MAGeCK would silently pool every such sgRNA into one gene '')", "")
    dup_mask = pd.Series(sg).duplicated().to_numpy()
    if dup_mask.any():
        i = int(np.flatnonzero(dup_mask)[0])
        first = int(np.flatnonzero(sg == sg[i])[0])
        raise CountTableError(
            f"count table {p.name} line {i + 2} column {cols[0]}",
            "unique sgRNA ids",
            sg[i],
            f"duplicate of line {first + 2}",
        )
    counts = np.empty((len(df), len(samples)), dtype=np.float64)
    for j, s in enumerate(samples):
        raw = df[j + 2]
        num = pd.to_numeric(raw.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(num)
        what = "a number"
        if not bad.any() and not allow_fractional:
            bad = num != np.round(num)
            what = "an integer count"
        if not bad.any():
            bad = num < 0
            what = "a non-negative count"
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CountTableError(
                f"count table {p.name} line {i + 2} (sgRNA {sg[i]}) column {s}",
                what,
                raw.iloc[i],
            )
        counts[:, j] = num
    return CountTable(
        sgrna=sg.astype(str), gene=gene.astype(str), samples=samples, counts=counts
    )


def read_id_list(path: str | os.PathLike[str], field: str = "control sgRNA file") -> list[str]:
    """Read a one-id-per-line file (first whitespace-separated token of each non-empty line)."""
    p = Path(path)
    if not p.is_file():
        raise CountTableError(field, "an existing file", str(p), "file not found")
    ids = [line.split()[0] for line in _read_text(p, field).splitlines() if line.strip()]
    if not ids:
        raise CountTableError(field, "at least one id", str(p), "file is empty")
    return ids


def fmt5(x: float) -> str:
    """Five significant digits, as MAGeCK prints scores and p-values (``1`` for 1.0)."""
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return f"{x:.5g}"


def fmt_gene(x: float) -> str:
    """Gene-summary score/p-value format (5 significant digits, ``1.0`` style for integers)."""
    s = f"{x:.5g}"
    if "e" not in s and "." not in s and "n" not in s:
        s += ".0"
    return s


def fmt_fdr(x: float) -> str:
    """Gene-summary FDR format (rounded to 6 decimals, as the RRA binary prints it)."""
    return repr(round(float(x), 6))


def write_count_table(table: CountTable, path: str | os.PathLike[str]) -> Path:
    """Write a count table in MAGeCK layout (tab-separated; comma for ``.csv``)."""
    p = Path(path)
    df = table.to_frame()
    return atomic_write(p, lambda t: df.to_csv(t, sep=_delimiter(p), index=False))


#: Columns of MAGeCK's ``PREFIX.countsummary.txt`` (``mageck count``), in its order; MultiQC's
#: MAGeCK module reads this file.
COUNTSUMMARY_COLUMNS = ("File", "Label", "Reads", "Mapped", "Percentage", "TotalsgRNAs",
                        "Zerocounts", "GiniIndex", "NegSelQC", "NegSelQCPval",
                        "NegSelQCPvalPermutation", "NegSelQCPvalPermutationFDR",
                        "NegSelQCGene")


def gini_index(counts: np.ndarray) -> np.ndarray:
    """Gini index per column of ``log(count + 1)``, as MAGeCK's count QC computes it
    (0 = perfectly even sgRNA representation; higher = skewed)."""
    x = np.sort(np.log1p(np.asarray(counts, dtype=np.float64)), axis=0)
    n = x.shape[0]
    if n < 2:
        return np.zeros(x.shape[1])
    total = x.sum(axis=0)
    total = np.where(total == 0, 1.0, total)
    weighted = (np.arange(1, n + 1)[:, None] * x).sum(axis=0)
    return 1.0 - 2.0 * (n - weighted / total) / (n - 1)


def count_summary(table: CountTable) -> pd.DataFrame:
    """Per-sample QC of a count table in MAGeCK's ``countsummary`` layout.

    As ``mageck count -k TABLE`` reports a table it did not map itself: ``File`` and ``Label``
    are the sample label; ``Reads`` = ``Mapped`` = the sample's total count (``Percentage``
    1); ``Zerocounts`` = sgRNAs with count 0; ``GiniIndex`` of log(count + 1). The
    negative-selection QC columns that need a list of essential genes carry MAGeCK's
    not-computed values (0, 1, 1, 1, 0.0).
    """
    c = table.counts
    total = c.sum(axis=0)
    gini = gini_index(c)
    rows = []
    for j, label in enumerate(table.samples):
        reads = float(total[j])
        rows.append({
            "File": label, "Label": label, "Reads": repr(reads), "Mapped": repr(reads),
            "Percentage": f"{reads / max(reads, 1.0):.4g}", "TotalsgRNAs": str(table.n_sgrna),
            "Zerocounts": str(int((c[:, j] == 0).sum())), "GiniIndex": f"{gini[j]:.4g}",
            "NegSelQC": "0", "NegSelQCPval": "1", "NegSelQCPvalPermutation": "1",
            "NegSelQCPvalPermutationFDR": "1", "NegSelQCGene": "0.0",
        })
    return pd.DataFrame(rows, columns=list(COUNTSUMMARY_COLUMNS))


def write_count_summary(table: CountTable, path: str | os.PathLike[str]) -> Path:
    """Write :func:`count_summary` as MAGeCK's tab-separated ``PREFIX.countsummary.txt``."""
    df = count_summary(table)
    text = "\t".join(COUNTSUMMARY_COLUMNS) + "\n" + "".join(
        "\t".join(row) + "\n" for row in df.itertuples(index=False))
    return atomic_write(path, lambda t: t.write_text(text, encoding="utf-8"))
