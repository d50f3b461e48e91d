"""Statistics for virtual-trial reports, numerically matched to R's ``survival`` package.

Public API:

* :func:`binomial_rate` — proportion with exact Clopper–Pearson interval (R ``binom.test``).
* :func:`subgroup_rates`, :func:`quartile_bins` — subgroup response tables.
* :class:`KaplanMeier` — KM curve, Greenwood CIs (log-log / log / plain), medians (R ``survfit``).
* :func:`logrank_test` (R ``survdiff``), :func:`cox_ph` (R ``coxph``, Efron ties),
  :func:`compare_arms` — arm comparison table.
"""

from cartsim.trial.stats.binomial import BinomialRate, binomial_rate, quartile_bins, subgroup_rates
from cartsim.trial.stats.compare import (
    CoxResult,
    LogRankResult,
    compare_arms,
    cox_ph,
    logrank_test,
)
from cartsim.trial.stats.km import CONF_TYPES, KaplanMeier, confidence_limits

__all__ = [
    "CONF_TYPES",
    "BinomialRate",
    "CoxResult",
    "KaplanMeier",
    "LogRankResult",
    "binomial_rate",
    "compare_arms",
    "confidence_limits",
    "cox_ph",
    "logrank_test",
    "quartile_bins",
    "subgroup_rates",
]
