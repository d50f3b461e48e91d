"""Malformed count tables and sample selections give errors that name the row or column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cartsim.errors import InvalidInputError
from cartsim.screen.analysis import mageck_test, size_factors
from cartsim.screen.cli import screen_app
from cartsim.screen.io import CountTableError, read_count_table, write_count_table

GOOD = (
    "sgRNA\tGene\tc1\tc2\tt1\tt2\n"
    "s1\tA\t10\t12\t30\t31\ns2\tA\t20\t22\t5\t6\ns3\tB\t7\t9\t8\t9\n"
)


def write(tmp_path: Path, text: str, name: str = "counts.txt") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_table_roundtrip(tmp_path: Path) -> None:
    t = read_count_table(write(tmp_path, GOOD))
    assert t.samples == ("c1", "c2", "t1", "t2")
    assert t.counts.shape == (3, 4)
    out = write_count_table(t, tmp_path / "again.txt")
    t2 = read_count_table(out)
    np.testing.assert_array_equal(t.counts, t2.counts)


def test_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(CountTableError, match="missing columns"):
        read_count_table(write(tmp_path, "sgRNA\tGene\ns1\tA\n"))
    # comma-separated content in a .txt file is one column: also reported as missing columns
    with pytest.raises(CountTableError, match="header"):
        read_count_table(write(tmp_path, "sgRNA,Gene,c1\ns1,A,3\n"))


def test_non_integer_count_only_when_integers_are_demanded(tmp_path: Path) -> None:
    bad = GOOD.replace("s2\tA\t20", "s2\tA\t20.5")
    assert read_count_table(write(tmp_path, bad)).counts[1, 0] == 20.5  # as mageck reads it
    with pytest.raises(CountTableError, match=r"line 3 \(sgRNA s2\) column c1.*integer"):
        read_count_table(write(tmp_path, bad), allow_fractional=False)


def test_non_numeric_count(tmp_path: Path) -> None:
    bad = GOOD.replace("s3\tB\t7\t9\t8\t9", "s3\tB\t7\tabc\t8\t9")
    with pytest.raises(CountTableError, match=r"line 4 \(sgRNA s3\) column c2.*'abc'"):
        read_count_table(write(tmp_path, bad))


def test_missing_count(tmp_path: Path) -> None:
    bad = GOOD.replace("s3\tB\t7\t9\t8\t9", "s3\tB\t7\t9\t8\t")
    with pytest.raises(CountTableError, match=r"line 4 \(sgRNA s3\) column t2"):
        read_count_table(write(tmp_path, bad))


def test_negative_count(tmp_path: Path) -> None:
    bad = GOOD.replace("s1\tA\t10\t12\t30", "s1\tA\t10\t12\t-30")
    with pytest.raises(CountTableError, match=r"line 2 \(sgRNA s1\) column t1.*non-negative"):
        read_count_table(write(tmp_path, bad))


def test_duplicate_sgrna(tmp_path: Path) -> None:
    bad = GOOD + "s2\tC\t1\t1\t1\t1\n"
    with pytest.raises(CountTableError, match=r"line 5 column sgRNA.*'s2'.*duplicate of line 3"):
        read_count_table(write(tmp_path, bad))


def test_duplicate_sample_label(tmp_path: Path) -> None:
    bad = GOOD.replace("c1\tc2", "c1\tc1", 1)
    with pytest.raises(CountTableError, match="unique sample labels"):
        read_count_table(write(tmp_path, bad))


def test_unknown_sample_names(tmp_path: Path) -> None:
    t = read_count_table(write(tmp_path, GOOD))
    with pytest.raises(CountTableError, match=r"treatment samples \(-t\).*'t9'.*unknown sample"):
        mageck_test(t, "t1,t9", "c1,c2")
    with pytest.raises(CountTableError, match=r"control samples \(-c\).*'7'.*out of range"):
        mageck_test(t, "t1,t2", "0,7")
    with pytest.raises(InvalidInputError, match="disjoint"):
        mageck_test(t, "t1,t2", "t1,c1")


def test_indices_equal_labels(tmp_path: Path) -> None:
    t = read_count_table(write(tmp_path, GOOD))
    a = mageck_test(t, "t1,t2", "c1,c2").gene_summary
    b = mageck_test(t, "2,3", "0,1").gene_summary
    assert a.equals(b)


def test_csv_read_comma(tmp_path: Path) -> None:
    t = read_count_table(write(tmp_path, GOOD.replace("\t", ","), "counts.csv"))
    assert t.n_sgrna == 3


def test_control_norm_needs_matching_ids(tmp_path: Path) -> None:
    t = read_count_table(write(tmp_path, GOOD))
    with pytest.raises(InvalidInputError, match="control-sgrna"):
        size_factors(t, "control", ["nope"])
    with pytest.raises(InvalidInputError, match="norm-method"):
        size_factors(t, "quantile")


def test_total_normalisation_equalises_totals(tmp_path: Path) -> None:
    t = read_count_table(write(tmp_path, GOOD))
    t.counts[:, 1] *= 3
    f = size_factors(t, "total")
    totals = (t.counts * f).sum(axis=0)
    np.testing.assert_allclose(totals, totals.mean())


def test_cli_test_and_error(tmp_path: Path) -> None:
    runner = CliRunner()
    p = Path(__file__).parent / "data" / "mageck_demo" / "sample.txt"
    prefix = str(tmp_path / "demo")
    r = runner.invoke(screen_app, ["test", "-k", str(p), "-t", "HL60.final,KBM7.final",
                                   "-c", "HL60.initial,KBM7.initial", "-n", prefix])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "demo.gene_summary.txt").read_text().startswith("id\tnum\tneg|score")
    assert (tmp_path / "demo.sgrna_summary.txt").exists()
    assert (tmp_path / "demo.volcano.png").stat().st_size > 10_000
    r = runner.invoke(screen_app, ["test", "-k", str(p), "-t", "HL60.final,nope",
                                   "-c", "0,1", "-n", prefix])
    assert r.exit_code == 2
    assert "nope" in r.output
