"""Timing of cartsim.screen: analysis of a ~77,000-sgRNA × 6-sample table and a Brunello-scale
simulation (targets: < 10 s and < 30 s on 2 cores).

Run: ``python benchmarks/bench_screen.py``.
"""

from __future__ import annotations

import time
import warnings

from cartsim.screen.analysis import mageck_test
from cartsim.screen.simulate import ScreenDesign, simulate_screen


def main() -> None:
    """Time one Brunello-scale simulation and the analysis of its CAR-T vs control arms."""
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    sim = simulate_screen(ScreenDesign(seed=0))
    t1 = time.perf_counter()
    n, m = sim.counts.n_sgrna, len(sim.treatment) + len(sim.control)
    res = mageck_test(sim.counts, sim.treatment, sim.control, control_sgrnas=sim.control_sgrnas)
    t2 = time.perf_counter()
    print(f"simulate Brunello-scale ({n} sgRNAs x {len(sim.counts.samples)} samples): "
          f"{t1 - t0:.2f} s (target < 30 s)")
    print(f"analyse {n} sgRNAs x {m} samples (control-sgRNA null): {t2 - t1:.2f} s "
          f"(target < 10 s); {len(res.gene_summary)} genes")
    t3 = time.perf_counter()
    mageck_test(sim.counts, sim.treatment, sim.control, permutations=100,
                control_sgrnas=None, norm_method="median")
    print(f"analyse without control list (uniform null): {time.perf_counter() - t3:.2f} s")


if __name__ == "__main__":
    main()
