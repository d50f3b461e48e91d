"""cartsim — mechanistic simulation of CAR-T cell therapy for B-cell cancers."""

from cartsim.errors import CartsimError, InvalidInputError, UnknownNameError
from cartsim.params import ParameterSpec, ParameterTable

__version__ = "0.1.0"

__all__ = [
    "CartsimError",
    "InvalidInputError",
    "ParameterSpec",
    "ParameterTable",
    "UnknownNameError",
    "__version__",
]
