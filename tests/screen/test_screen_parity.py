"""MAGeCK parity at the edges: fractional counts, empty gene names, --permutation-round 0 and
the count QC file (MAGeCK's countsummary layout, read by MultiQC)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cartsim.errors import InvalidInputError
from cartsim.screen.analysis import mageck_test
from cartsim.screen.cli import screen_app
from cartsim.screen.io import (
    COUNTSUMMARY_COLUMNS,
    CountTableError,
    gini_index,
    read_count_table,
)

DEMO = Path(__file__).parent / "data" / "mageck_demo" / "sample.txt"
runner = CliRunner()


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "counts.txt"
    p.write_text(text, encoding="utf-8")
    return p


def test_fractional_counts_are_analysed(tmp_path: Path) -> None:
    """Normalised or batch-corrected tables have fractional counts; mageck reads them with
    float() and so does cartsim (they used to be refused)."""
    rng = np.random.default_rng(1)
    lines = ["sgRNA\tGene\tc1\tc2\tt1\tt2"]
    for g in range(30):
        for k in range(4):
            c = rng.gamma(5, 40, 4) + 0.25
            lines.append(f"g{g}_{k}\tG{g}\t" + "\t".join(f"{x:.3f}" for x in c))
    table = read_count_table(_write(tmp_path, "\n".join(lines) + "\n"))
    assert not np.all(table.counts == np.round(table.counts))
    res = mageck_test(table, "t1,t2", "c1,c2", permutations=10)
    assert len(res.gene_summary) == 30
    assert res.gene_summary["neg|p-value"].between(0, 1).all()


def test_empty_gene_name_is_an_error(tmp_path: Path) -> None:
    text = "sgRNA\tGene\tc1\tt1\ns1\tA\t1\t2\ns2\t\t3\t4\n"
    with pytest.raises(CountTableError, match=r"line 3 \(sgRNA s2\) column Gene"):
        read_count_table(_write(tmp_path, text))
    r = runner.invoke(screen_app, ["test", "-k", str(tmp_path / "counts.txt"), "-t", "t1",
                                   "-c", "c1", "-n", str(tmp_path / "x")])
    assert r.exit_code == 2 and "line 3" in r.output and "Gene" in r.output


@pytest.mark.parametrize("rounds", [0, -1])
def test_permutation_round_zero_is_refused(tmp_path: Path, rounds: int) -> None:
    table = read_count_table(DEMO)
    with pytest.raises(InvalidInputError, match="permutation-round"):
        mageck_test(table, "HL60.final,KBM7.final", "HL60.initial,KBM7.initial",
                    permutations=rounds)
    r = runner.invoke(screen_app, ["test", "-k", str(DEMO), "-t", "HL60.final,KBM7.final",
                                   "-c", "HL60.initial,KBM7.initial", "--permutation-round",
                                   str(rounds), "-n", str(tmp_path / "p"), "--no-plot"])
    assert r.exit_code == 2 and "permutation-round" in r.output
    assert not list(tmp_path.iterdir())


def _gini_by_definition(x: list[float]) -> float:
    """MAGeCK's count-QC Gini of log(count + 1), written out literally."""
    xs = sorted(math.log(v + 1.0) for v in x)
    n = len(xs)
    weighted = sum((i + 1.0) * xs[i] for i in range(n))
    total = sum(xs) or 1.0
    return 1.0 - 2.0 * (n - weighted / total) / (n - 1)


def test_gini_index() -> None:
    assert gini_index(np.array([[0.0], [1.0], [3.0]]))[0] == pytest.approx(2 / 3, abs=1e-3)
    rng = np.random.default_rng(0)
    c = rng.negative_binomial(3, 0.01, size=(200, 3)).astype(float)
    np.testing.assert_allclose(gini_index(c), [_gini_by_definition(list(c[:, j]))
                                              for j in range(3)], rtol=1e-12)
    assert gini_index(np.full((10, 1), 7.0))[0] == pytest.approx(0.0, abs=1e-12)


def test_countsummary_file_in_mageck_layout(tmp_path: Path) -> None:
    prefix = str(tmp_path / "demo")
    r = runner.invoke(screen_app, ["qc", "-k", str(DEMO), "-n", prefix])
    assert r.exit_code == 0, r.output
    lines = Path(prefix + ".countsummary.txt").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    assert header == list(COUNTSUMMARY_COLUMNS)
    assert header[:8] == ["File", "Label", "Reads", "Mapped", "Percentage", "TotalsgRNAs",
                          "Zerocounts", "GiniIndex"]
    table = read_count_table(DEMO)
    assert len(lines) == 1 + len(table.samples)
    for j, line in enumerate(lines[1:]):
        row = dict(zip(header, line.split("\t"), strict=True))
        assert row["Label"] == row["File"] == table.samples[j]
        assert float(row["Reads"]) == table.counts[:, j].sum() == float(row["Mapped"])
        assert float(row["Percentage"]) == 1.0
        assert int(row["TotalsgRNAs"]) == table.n_sgrna
        assert int(row["Zerocounts"]) == int((table.counts[:, j] == 0).sum())
        assert float(row["GiniIndex"]) == pytest.approx(
            _gini_by_definition(list(table.counts[:, j])), abs=5e-4)
        for col in header[2:]:
            float(row[col])  # every numeric column parses (MultiQC converts them to floats)


def test_simulated_screen_writes_countsummary(tmp_path: Path) -> None:
    prefix = str(tmp_path / "sim")
    r = runner.invoke(screen_app, ["simulate", "--n-genes", "40", "--n-controls", "20",
                                   "--replicates", "1", "--coverage", "50", "-n", prefix])
    assert r.exit_code == 0, r.output
    lines = Path(prefix + ".countsummary.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == list(COUNTSUMMARY_COLUMNS)
    assert len(lines) == 1 + len(read_count_table(prefix + ".count.txt").samples)
