"""cartsim — mechanistic simulation of CAR-T cell therapy for B-cell cancers.

The public API (pinned by ``tests/test_public_api.py``)::

    import cartsim
    res = cartsim.simulate(cartsim.Cohort("b-all", weight_kg=[30], age_y=[10]),
                           cartsim.get_product("tisagenlecleucel"), days=90)
    res.to_frame(); res.status; res.plot()
    trial = cartsim.Trial.from_toml("examples/eliana.toml").with_overrides(size=40)
    result = trial.run()          # or run(out="trial_out")
    result.summary["rates"]; result.km("efs").summary(); result.report("report.html")

Names are loaded on first use (module ``__getattr__``), so ``import cartsim`` stays light: it
imports neither numba, pandas, scipy nor matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cartsim._lazy import lazy_names
from cartsim.errors import CartsimError, InvalidInputError, UnknownNameError
from cartsim.params import ParameterSpec, ParameterTable
from cartsim.status import Status

__version__ = "0.1.0"

#: Lazily loaded public names → the module that defines them.
_LAZY: dict[str, str] = {
    # one patient or a cohort
    "simulate": "cartsim.simulation",
    "SimulationResult": "cartsim.simulation",
    "Dose": "cartsim.simulation",
    "Cohort": "cartsim.population",
    # products
    "Construct": "cartsim.products",
    "DoseRule": "cartsim.products",
    "Product": "cartsim.products",
    "PRESETS": "cartsim.products",
    "get_product": "cartsim.products",
    # management protocols
    "Policy": "cartsim.clinic.protocol",
    "load_protocol": "cartsim.clinic.protocol",
    "shipped_protocols": "cartsim.clinic.protocol",
    # virtual trials
    "Trial": "cartsim.api",
    "TrialResult": "cartsim.api",
    "TrialSpec": "cartsim.trial.spec",
    "SpecError": "cartsim.trial.spec",
    "load_spec": "cartsim.trial.spec",
}

#: The public names (pinned by tests/test_public_api.py).
__all__ = [
    "CartsimError",
    "Cohort",
    "Construct",
    "Dose",
    "DoseRule",
    "InvalidInputError",
    "PRESETS",
    "ParameterSpec",
    "ParameterTable",
    "Policy",
    "Product",
    "SimulationResult",
    "SpecError",
    "Status",
    "Trial",
    "TrialResult",
    "TrialSpec",
    "UnknownNameError",
    "__version__",
    "get_product",
    "load_protocol",
    "load_spec",
    "shipped_protocols",
    "simulate",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), submodules=False)


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from cartsim.api import Trial, TrialResult
    from cartsim.clinic.protocol import Policy, load_protocol, shipped_protocols
    from cartsim.population import Cohort
    from cartsim.products import PRESETS, Construct, DoseRule, Product, get_product
    from cartsim.simulation import SimulationResult, simulate
    from cartsim.trial.spec import SpecError, TrialSpec, load_spec
