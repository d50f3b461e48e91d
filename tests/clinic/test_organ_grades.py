"""CTCAE "creatinine increased" and "ALT/AST increased" (clinical_standards.md §4) and the
organ-toxicity, coagulopathy and hospitalisation criteria of the older CRS scales (§3.1-3.5)."""

from __future__ import annotations

import numpy as np
import pytest

from cartsim.clinic import crs, ctcae
from cartsim.errors import InvalidInputError


@pytest.mark.parametrize(("cr", "uln", "base", "grade"), [
    (0.9, 1.0, np.nan, 0),   # below ULN
    (1.2, 1.0, np.nan, 1),   # > ULN-1.5 × ULN
    (1.5, 1.0, np.nan, 1),   # 1.5 × ULN is still grade 1 (">1.5")
    (1.6, 1.0, np.nan, 2),   # > 1.5-3.0 × ULN
    (3.1, 1.0, np.nan, 3),   # > 3.0-6.0 × ULN
    (6.5, 1.0, np.nan, 4),   # > 6.0 × ULN
    (0.5, 0.7, 0.3, 2),      # 1.67 × baseline, still below the child's ULN
    (0.95, 0.7, 0.3, 3),     # > 3.0 × baseline (1.36 × ULN)
    (1.0, 1.2, 0.9, 0),      # 1.1 × baseline, below ULN
])
def test_creatinine_increased_bands(cr: float, uln: float, base: float, grade: int) -> None:
    assert ctcae.creatinine_increased_grade(cr, uln, base) == grade


@pytest.mark.parametrize(("x_uln", "grade"), [
    (1.0, 0), (1.5, 1), (3.0, 1), (3.5, 2), (5.0, 2), (5.5, 3), (20.0, 3), (25.0, 4),
    (np.nan, 0),
])
def test_transaminase_increased_bands(x_uln: float, grade: int) -> None:
    assert ctcae.transaminase_increased_grade(x_uln) == grade


def test_creatinine_grade_is_elementwise_and_rejects_a_missing_uln() -> None:
    g = ctcae.creatinine_increased_grade([0.5, 2.0, np.nan], 1.0, [0.5, 0.5, 0.5])
    assert g.tolist() == [0, 3, 0]  # 4 × baseline → 3; a missing value grades 0
    with pytest.raises(InvalidInputError, match="uln_mg_dl"):
        ctcae.creatinine_increased_grade(1.0, np.nan)


def test_older_scales_grade_organ_toxicity_coagulopathy_and_admission_asct_does_not() -> None:
    f = crs.CrsFeatures(
        fever=True,
        creatinine_grade=[0, 2, 3, 0, 0], organ_toxicity_grade=[0, 2, 3, 0, 0],
        coagulopathy_needing_products=[False, False, False, True, False],
        hospitalised_for_crs=[False, False, False, False, True])
    g = crs.crs_grade_all_scales(f)
    assert g["penn"].tolist() == [1, 2, 3, 3, 2]
    assert g["lee2014"].tolist() == [1, 2, 3, 1, 1]
    assert g["astct"].tolist() == [1, 1, 1, 1, 1]  # ASTCT ignores organ toxicity (§3.7)
    # CTCAE v4.03: admission → 2; renal impairment needing admission (organ grade 3) → 3
    assert g["ctcae_v4.03"].tolist() == [1, 1, 3, 1, 2]


def test_ctcae_v403_crs_puts_low_flow_oxygen_at_grade_2_and_fio2_40_at_grade_3() -> None:
    # v4.03 names no oxygen criterion; the boundary is v5.0's (hypoxia responding to < 40 % O2
    # is grade 2), so the two versions agree on oxygen and differ only on pressors
    low = crs.CrsFeatures(fever=True, oxygen_device=crs.device_code("low_flow_nasal_cannula"),
                          oxygen_flow_l_min=2.0, fio2_pct=28.0)
    high = crs.CrsFeatures(fever=True, oxygen_device=crs.device_code("venturi"), fio2_pct=50.0)
    g = {k: crs.crs_grade_all_scales(f) for k, f in (("low", low), ("high", high))}
    assert g["low"]["ctcae_v4.03"] == g["low"]["ctcae_v5.0"] == 2
    assert g["high"]["ctcae_v4.03"] == g["high"]["ctcae_v5.0"] == 3
    # organ sequelae still make grade 3 on v4.03 without any oxygen
    organ = crs.CrsFeatures(fever=True, organ_toxicity_grade=3)
    assert crs.crs_grade_all_scales(organ)["ctcae_v4.03"] == 3
