"""The public Python API in a few lines (README "From Python"); run from the repository root:

    python examples/api_quickstart.py
"""

import cartsim

cohort = cartsim.Cohort("b-all", weight_kg=[30.0], age_y=[10.0], marrow_blasts_pct=[60.0],
                        dose=[4.5e7])
sim = cartsim.simulate(cohort, cartsim.get_product("tisa-cel"), days=365, seed=1,
                       protocol=cartsim.load_protocol("default"))
print("status:", [cartsim.Status(int(s)).label for s in sim.status])
print("peak CAR-T cells/µL:", round(float(sim.array("cart_cells_per_ul").max()), 1))

trial = cartsim.Trial.from_toml("examples/eliana.toml").with_overrides(size=40)
result = trial.run(out="eliana_api_out")
rates = result.summary["rates"].set_index("endpoint")
print("response rate:", rates.loc["responder", ["k", "n", "rate", "lower", "upper"]].to_dict())
print("EFS median (days):", result.km("efs").summary()["median"])
print("stopped patients:", result.summary["stopped_patients"])
print("report:", result.report())
