"""The neutral values of the mechanisms added together in session 4 (each branch's own
"switched off" set), shared by the tests that compare against the reference written before
them (`tests/data/core_trajectory_reference_ee4a1e4.npz`).

The CRS/ICANS physiology of issue 14 replaced the inflammation equations rather than adding
switchable terms, so its readouts (:data:`CRS_READOUTS`) are left out of such comparisons.
"""

FAILURE_ROUTES_OFF = {"fit_rho": 0.0, "fit_ex": 0.0, "fit_mem": 0.0, "k_reject": 0.0,
                      "ex_overload": 0.0, "bulk_access_cells": 0.0, "antigen_hill": 1.0,
                      "low_clone_cd19": 0.0, "cd19_spread": 0.0}
MARROW_OFF = {"crowd_max": 0.0, "stem_ld_kill": 0.0, "stem_infl_kill": 0.0}
TRAITS_OFF = {"productive_stim": 0.0, "ex_resist": 0.0, "pdl1_suppression": 0.0,
              "tp53_infiltration": 0.0, "noxa_low_pfn": 0.35}
ALL_OFF = {**FAILURE_ROUTES_OFF, **MARROW_OFF, **TRAITS_OFF}
CRS_READOUTS = frozenset({"il6_pg_ml", "ifng_pg_ml", "temperature_c", "map_mmhg", "spo2_pct",
                          "encephalopathy", "ice_score"})
#: Session 5: age-dependent endothelial and blood–brain-barrier vulnerability (inflammation.py).
AGE_TOX_OFF = {"en_age_per_decade": 0.0, "bbb_age_exp": 0.0}
