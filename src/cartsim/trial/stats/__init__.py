"""Statistics for virtual-trial reports, numerically matched to R's ``survival`` package.

Public API:

* :func:`binomial_rate` — proportion with exact Clopper–Pearson interval (R ``binom.test``).
* :func:`subgroup_rates`, :func:`quartile_bins` — subgroup response tables.
* :class:`KaplanMeier` — KM curve, Greenwood CIs (log-log / log / plain), medians (R ``survfit``).
"""

from cartsim.trial.stats.binomial import BinomialRate, binomial_rate, quartile_bins, subgroup_rates
from cartsim.trial.stats.km import CONF_TYPES, KaplanMeier, confidence_limits

__all__ = [
    "CONF_TYPES",
    "BinomialRate",
    "KaplanMeier",
    "binomial_rate",
    "confidence_limits",
    "quartile_bins",
    "subgroup_rates",
]
