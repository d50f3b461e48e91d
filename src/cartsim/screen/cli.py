"""``cartsim screen`` commands: ``test`` (MAGeCK-compatible analysis), ``simulate``, ``power``.

The main CLI mounts this with ``app.add_typer(screen_app, name="screen")``. Flag names follow
MAGeCK so a ``mageck test`` command line works after replacing ``mageck`` by ``cartsim screen``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cartsim.errors import CartsimError

screen_app = typer.Typer(
    help="Pooled CRISPR knockout screens with CAR-T co-culture: analyse (MAGeCK-compatible "
    "α-RRA), simulate, and plan (power).",
    no_args_is_help=True,
)
console = Console(stderr=True)


def _fail(err: Exception) -> None:
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


#: ScreenDesign fields → the command-line flag a user typed.
_FLAGS = {"n_genes": "--n-genes", "sgrnas_per_gene": "--sgrnas-per-gene",
          "n_controls": "--n-controls", "coverage": "--coverage", "moi": "--moi",
          "et_ratio": "--et", "coculture_days": "--days", "replicates": "--replicates",
          "depth": "--depth", "preset": "--preset", "null": "--null", "seed": "--seed"}


def _design(**options: object):  # type: ignore[no-untyped-def]
    """A validated :class:`ScreenDesign`; a bad option raises one error naming its flag."""
    from pydantic import ValidationError

    from cartsim.errors import InvalidInputError, pydantic_message
    from cartsim.screen.simulate import ScreenDesign

    try:
        return ScreenDesign(**options)
    except ValidationError as exc:
        e = exc.errors()[0]
        name = str(e["loc"][0]) if e.get("loc") else "design"
        allowed = pydantic_message(e, with_value=False).removeprefix("must be ")
        raise InvalidInputError(_FLAGS.get(name, name), allowed, options.get(name)) from None


@screen_app.command("test")
def test_cmd(
    count_table: Annotated[
        Path, typer.Option("-k", "--count-table", help="MAGeCK count table.")
    ],
    treatment_id: str = typer.Option(
        ..., "-t", "--treatment-id", help="Treatment samples: labels or 0-based indices, comma-"
        "separated (index counted after the sgRNA and gene columns)."
    ),
    control_id: str = typer.Option(..., "-c", "--control-id", help="Control samples."),
    output_prefix: str = typer.Option("sample1", "-n", "--output-prefix", help="Output prefix."),
    norm_method: str = typer.Option("median", "--norm-method",
                                    help="median | total | control | none."),
    control_sgrna: Annotated[
        Path | None,
        typer.Option("--control-sgrna",
                     help="Control sgRNA ids, one per line (normalisation and RRA null)."),
    ] = None,
    gene_test_fdr_threshold: float = typer.Option(
        0.25, "--gene-test-fdr-threshold", help="τ: one-sided sgRNA p cut that sets α."
    ),
    adjust_method: str = typer.Option("fdr", "--adjust-method", help="fdr | holm (sgRNA FDR)."),
    remove_zero: str = typer.Option("both", "--remove-zero",
                                    help="both | any | control | treatment | none."),
    gene_lfc_method: str = typer.Option(
        "median", "--gene-lfc-method", help="median | mean | alphamedian | alphamean | "
        "secondbest."
    ),
    permutation_round: int = typer.Option(
        100, "--permutation-round", help="RRA permutation passes P ≥ 1 (raised so that "
        "P × genes ≥ 100,000, as RRA does); 0 is refused."),
    seed: int = typer.Option(0, "--seed", help="Seed of the RRA permutation null."),
    sort_criteria: str = typer.Option("neg", "--sort-criteria", help="neg | pos."),
    plot: bool = typer.Option(True, "--plot/--no-plot",
                              help="Write PREFIX.volcano.png (volcano + rank plot)."),
) -> None:
    """Rank genes by α-RRA (MAGeCK ``test``); writes PREFIX.gene_summary.txt and
    PREFIX.sgrna_summary.txt in MAGeCK's layout."""
    from cartsim.screen.analysis import mageck_test
    from cartsim.screen.io import read_count_table, read_id_list
    from cartsim.screen.plot import volcano_rank_plot

    try:
        table = read_count_table(count_table)
        controls = read_id_list(control_sgrna) if control_sgrna else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = mageck_test(
                table, treatment_id, control_id, norm_method=norm_method,
                control_sgrnas=controls, gene_test_fdr_threshold=gene_test_fdr_threshold,
                adjust_method=adjust_method, remove_zero=remove_zero,
                gene_lfc_method=gene_lfc_method, permutations=permutation_round, seed=seed,
            )
        for w in caught:
            console.print(f"[yellow]warning:[/yellow] {w.message}")
        if sort_criteria == "pos":
            res.gene_summary = res.gene_summary.sort_values("pos|rank").reset_index(drop=True)
        elif sort_criteria != "neg":
            raise CartsimError(f"--sort-criteria must be neg or pos, got {sort_criteria!r}")
        gpath, spath = res.write(output_prefix)
        if plot:
            volcano_rank_plot(res.gene_summary, output_prefix + ".volcano.png",
                              title=Path(output_prefix).name)
    except (CartsimError, ValueError) as err:
        _fail(err)
        return
    g = res.gene_summary
    console.print(
        f"size factors {[round(float(x), 4) for x in res.size_factors if x == x]}; "
        f"variance model k={res.k:.4f} b={res.b:.4f}; α_low={res.alpha_low:.4f} "
        f"α_high={res.alpha_high:.4f}; {len(g)} genes"
    )
    tab = Table(title="top genes")
    for col in ("rank", "neg (depleted)", "neg|fdr", "pos (enriched)", "pos|fdr"):
        tab.add_column(col)
    neg = g.sort_values("neg|rank").head(10)
    pos = g.sort_values("pos|rank").head(10)
    for i in range(min(10, len(g))):
        tab.add_row(str(i + 1), str(neg["id"].iloc[i]), f"{neg['neg|fdr'].iloc[i]:.3g}",
                    str(pos["id"].iloc[i]), f"{pos['pos|fdr'].iloc[i]:.3g}")
    Console().print(tab)
    console.print(
        f"FDR<0.05: {(g['neg|fdr'] < 0.05).sum()} neg, {(g['pos|fdr'] < 0.05).sum()} pos; "
        f"wrote {gpath} and {spath}"
    )


@screen_app.command("qc")
def qc_cmd(
    count_table: Annotated[
        Path, typer.Option("-k", "--count-table", help="MAGeCK count table.")
    ],
    output_prefix: str = typer.Option("sample1", "-n", "--output-prefix", help="Output prefix."),
) -> None:
    """Count QC per sample (reads, zero-count sgRNAs, Gini index); writes
    PREFIX.countsummary.txt in MAGeCK's layout, which MultiQC reads."""
    from cartsim.screen.io import count_summary, read_count_table, write_count_summary

    try:
        table = read_count_table(count_table)
        path = write_count_summary(table, output_prefix + ".countsummary.txt")
    except (CartsimError, ValueError) as err:
        _fail(err)
        return
    df = count_summary(table)
    tab = Table(title=f"count QC — {table.n_sgrna} sgRNAs")
    for col in ("Label", "Reads", "Zerocounts", "GiniIndex"):
        tab.add_column(col)
    for r in df.itertuples(index=False):
        tab.add_row(r.Label, f"{float(r.Reads):,.0f}", r.Zerocounts, r.GiniIndex)
    Console().print(tab)
    console.print(f"wrote {path}")


@screen_app.command("compare")
def compare_cmd(
    ours: Annotated[Path, typer.Argument(help="gene_summary.txt to check.")],
    reference: Annotated[Path, typer.Argument(help="Reference gene_summary.txt (MAGeCK's).")],
    top: int = typer.Option(10, "--top", help="Compare the top-N genes of each direction."),
    fdr: float = typer.Option(0.05, "--fdr", help="FDR cut for the hit counts."),
) -> None:
    """Compare two gene summaries: top-N order, hits at FDR < cut, Spearman of scores."""
    from cartsim.screen.analysis import compare_gene_summaries, read_gene_summary

    try:
        res = compare_gene_summaries(read_gene_summary(ours), read_gene_summary(reference),
                                     top=top, fdr=fdr)
    except (CartsimError, ValueError, KeyError) as err:
        _fail(err)
        return
    for d, r in res.items():
        Console().print(
            f"{d}: top-{top} identical={r['top_identical']} | FDR<{fdr}: ours {r['n_ours']} "
            f"ref {r['n_ref']} | Spearman(score)={r['spearman']:.6f}"
        )


def _progress_bar(description: str):  # type: ignore[no-untyped-def]
    """A rich progress bar and a callback ``(done, total)`` updating it."""
    from rich.progress import Progress

    prog = Progress(console=console, transient=True)
    task = prog.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        prog.update(task, completed=done, total=total)

    return prog, update


@screen_app.command("simulate")
def simulate_cmd(
    output_prefix: str = typer.Option("screen_sim", "-n", "--output-prefix"),
    n_genes: int = typer.Option(19114, "--n-genes", help="Targeted genes (Brunello 19,114)."),
    sgrnas_per_gene: int = typer.Option(4, "--sgrnas-per-gene"),
    n_controls: int = typer.Option(1000, "--n-controls", help="Non-targeting controls."),
    coverage: float = typer.Option(1000, "--coverage", help="Cells per sgRNA."),
    moi: float = typer.Option(0.3, "--moi"),
    et_ratio: float = typer.Option(0.25, "--et", help="Effector:target ratio (0.25 = 1:4)."),
    coculture_days: float = typer.Option(7.0, "--days", help="Co-culture duration (days)."),
    replicates: int = typer.Option(3, "--replicates"),
    depth: float = typer.Option(300, "--depth", help="Reads per sgRNA per sample."),
    preset: str = typer.Option("human_liquid", "--preset",
                               help="Killing-route preset (traits.py)."),
    truth: Annotated[Path | None, typer.Option("--truth", help="gene,h[,s] table.")] = None,
    null: bool = typer.Option(False, "--null", help="All h = 1 (null screen)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Simulate a pooled CRISPR-KO screen with CAR-T co-culture; writes a MAGeCK count table
    (PREFIX.count.txt), control list and truth tables."""
    from cartsim.screen.simulate import read_truth_table, simulate_screen

    try:
        d = _design(n_genes=n_genes, sgrnas_per_gene=sgrnas_per_gene,
                         n_controls=n_controls, coverage=coverage, moi=moi, et_ratio=et_ratio,
                         coculture_days=coculture_days, replicates=replicates, depth=depth,
                         preset=preset, null=null, seed=seed)
        user = read_truth_table(truth) if truth else None
        prog, update = _progress_bar("simulating passages")
        with prog:
            sim = simulate_screen(d, user, progress=update)
        paths = sim.write(output_prefix)
    except (CartsimError, ValueError) as err:
        _fail(err)
        return
    console.print(f"{sim.counts.n_sgrna} sgRNAs × {len(sim.counts.samples)} samples; wrote "
                  + ", ".join(str(p) for p in paths))
    console.print(f"analyse with: cartsim screen test -k {output_prefix}.count.txt -t "
                  f"{','.join(sim.treatment)} -c {','.join(sim.control)} --control-sgrna "
                  f"{output_prefix}.control_sgrnas.txt -n {output_prefix}")


def _number_list(text: str, flag: str, kind: Callable[[str], float]) -> list[float]:
    """Comma-separated numbers of a CLI option; the error names the option and the token."""
    out = []
    for tok in text.split(","):
        try:
            out.append(kind(tok.strip()))
        except ValueError:
            raise CartsimError(f"{flag}: {tok.strip()!r} is not "
                               f"{'an integer' if kind is int else 'a number'}") from None
    return out


@screen_app.command("power")
def power_cmd(
    output_prefix: str = typer.Option("screen_power", "-n", "--output-prefix"),
    coverages: str = typer.Option("100,300,500,1000", "--coverages"),
    et_ratios: str = typer.Option("0.1,0.25,0.5", "--et"),
    replicates: str = typer.Option("2,3", "--replicates"),
    seeds: int = typer.Option(3, "--seeds", help="Simulated screens per grid point."),
    n_genes: int = typer.Option(2000, "--n-genes", help="Library size (smaller = faster)."),
    n_controls: int = typer.Option(200, "--n-controls"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Power to recover strong hits versus coverage, E:T and replicates (table + figure)."""
    from cartsim.screen.power import power_figure, power_grid

    try:
        covs = _number_list(coverages, "--coverages", float)
        ets = _number_list(et_ratios, "--et", float)
        reps = [int(x) for x in _number_list(replicates, "--replicates", int)]
        base = _design(n_genes=n_genes, n_controls=n_controls, seed=seed)
        for cov in covs:
            _design(n_genes=n_genes, coverage=cov)
        for et in ets:
            _design(n_genes=n_genes, et_ratio=et)
        for rep in reps:
            _design(n_genes=n_genes, replicates=rep)
        prog, update = _progress_bar("power grid")
        with prog:
            tab = power_grid(base, covs, ets, reps, seeds=seeds, progress=update)
        from cartsim.atomic import write_text_atomic

        write_text_atomic(output_prefix + ".power.txt", tab.to_csv(sep="\t", index=False))
        power_figure(tab, output_prefix + ".power.png")
    except (CartsimError, ValueError) as err:
        _fail(err)
        return
    Console().print(tab.to_string(index=False))
    console.print(f"wrote {output_prefix}.power.txt and {output_prefix}.power.png")
