"""Property tests: grades are monotone in the severity of their inputs, never raise on valid
input, and invalid input raises an error naming the field and the allowed values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartsim.clinic import crs, ctcae, hematotox, icans
from cartsim.errors import InvalidInputError

SETTINGS = settings(max_examples=150, deadline=None)

#: oxygen devices ordered so that each is at least as severe (ASTCT component) as the previous
DEVICE_ORDER = sorted(range(len(crs.OXYGEN_DEVICES)), key=lambda c: crs.DEVICE_ASTCT_COMPONENT[c])

temps = st.floats(25.0, 45.0)
flows = st.floats(0.0, 80.0)


@SETTINGS
@given(temp=temps, dt=st.floats(0, 5), vp=st.integers(0, 4), dvp=st.integers(0, 3),
       d1=st.integers(0, 9), d2=st.integers(0, 9), flow=flows, hyp=st.booleans(),
       vasopressin=st.booleans())
def test_astct_crs_monotone(temp: float, dt: float, vp: int, dvp: int, d1: int, d2: int,
                            flow: float, hyp: bool, vasopressin: bool) -> None:
    lo_dev, hi_dev = DEVICE_ORDER[min(d1, d2)], DEVICE_ORDER[max(d1, d2)]
    # a low-flow cannula above 6 L/min is grade 3 (§1), above blow-by's 2: the device order
    # holds for the milder device at its own grade-2 flows, so it keeps ≤ 6 L/min when the
    # devices differ (the same device compares at the same flow)
    mild_flow = flow if lo_dev == hi_dev else min(flow, 6.0)
    mild = crs.astct_crs_grade(temp, hyp, vp, vasopressin, lo_dev, mild_flow)
    severe = crs.astct_crs_grade(min(temp + dt, 45.0), True, vp + dvp, vasopressin, hi_dev,
                                 flow)
    assert 0 <= mild <= severe <= 4


@SETTINGS
@given(flow=flows, dflow=st.floats(0, 20))
def test_nasal_cannula_flow_monotone(flow: float, dflow: float) -> None:
    nc = crs.DEVICE_CODE["low_flow_nasal_cannula"]
    assert crs.oxygen_component(nc, flow) <= crs.oxygen_component(nc, min(flow + dflow, 80.0))


@SETTINGS
@given(ice=st.integers(0, 10), dice=st.integers(0, 10), loc=st.integers(0, 3),
       dloc=st.integers(0, 3), sz=st.integers(0, 2), ed=st.integers(0, 2),
       mw=st.integers(0, 1), sed=st.booleans())
def test_astct_icans_monotone_adult(ice: int, dice: int, loc: int, dloc: int, sz: int,
                                    ed: int, mw: int, sed: bool) -> None:
    mild = icans.astct_icans_grade(ice, loc, sz, 0, ed, sedated=sed)
    severe = icans.astct_icans_grade(max(ice - dice, 0), min(loc + dloc, 3), sz, mw, ed,
                                     sedated=sed)
    assert 0 <= mild <= severe <= 4


@SETTINGS
@given(capd=st.integers(0, 32), dcapd=st.integers(0, 32), loc=st.integers(0, 3),
       age=st.floats(0, 11.99))
def test_astct_icans_monotone_child(capd: int, dcapd: int, loc: int, age: float) -> None:
    mild = icans.astct_icans_grade(consciousness=loc, capd_score=capd, age_y=age)
    severe = icans.astct_icans_grade(consciousness=loc, capd_score=min(capd + dcapd, 32),
                                     age_y=age)
    assert 0 <= mild <= severe <= 4


@SETTINGS
@given(x=st.floats(0, 1e6), f=st.floats(0, 1), version=st.sampled_from(ctcae.CTCAE_VERSIONS))
def test_cytopenia_grades_monotone(x: float, f: float, version: str) -> None:
    # a lower count never gets a milder grade
    for fn in (ctcae.neutrophil_grade, ctcae.platelet_grade, ctcae.lymphocyte_grade,
               ctcae.wbc_grade):
        assert fn(x, version=version) <= fn(x * f, version=version)
    hb = min(x, 30.0)
    assert ctcae.anemia_grade(hb, version=version) <= ctcae.anemia_grade(hb * f,
                                                                         version=version)


@SETTINGS
@given(plt=st.floats(0, 1e6), anc=st.floats(0, 1e5), hb=st.floats(0, 30), crp=st.floats(0, 500),
       fer=st.floats(0, 1e5), f=st.floats(0, 1), g=st.floats(1, 5))
def test_hematotox_monotone(plt: float, anc: float, hb: float, crp: float, fer: float,
                            f: float, g: float) -> None:
    base = hematotox.car_hematotox(plt, anc, hb, crp, fer)
    worse = hematotox.car_hematotox(plt * f, anc * f, hb * f, min(crp * g, 1000),
                                    min(fer * g, 1e7))
    assert 0 <= base <= worse <= 7


@SETTINGS
@given(anc=st.lists(st.floats(0, 3000), min_size=31, max_size=31), f=st.floats(0, 1))
def test_icaht_early_monotone(anc: list[float], f: float) -> None:
    a = np.asarray(anc)
    days = np.arange(31)
    g_base = hematotox.icaht_early_grade(a, days)
    g_worse = hematotox.icaht_early_grade(a * f, days)
    assert 0 <= g_base <= g_worse <= 4


@SETTINGS
@given(anc=st.lists(st.floats(0, 3000), min_size=3, max_size=12), f=st.floats(0, 1))
def test_icaht_late_monotone(anc: list[float], f: float) -> None:
    days = 31 + np.arange(len(anc)) * 7.0
    a = np.asarray(anc)
    assert hematotox.icaht_late_grade(a, days) <= hematotox.icaht_late_grade(a * f, days) <= 4


@SETTINGS
@given(temps=st.lists(temps, min_size=2, max_size=10), n_vp=st.integers(0, 3))
def test_crs_course_never_raises_and_bounded(temps: list[float], n_vp: int) -> None:
    t = np.asarray(temps)[None, :]
    course = crs.astct_crs_course(t, vasopressors=n_vp, anticytokine_given=True)
    assert course.grade.shape == t.shape
    assert ((course.grade >= 0) & (course.grade <= 4)).all()
    # no fever ever → no CRS whatever the support
    if (t < 38.0).all():
        assert (course.grade == 0).all()


@pytest.mark.parametrize(
    ("call", "field", "allowed_fragment"),
    [
        pytest.param(lambda: crs.astct_crs_grade(50.0), "temperature_c", "[25, 45]", id="temp"),
        pytest.param(lambda: crs.astct_crs_grade(39.0, oxygen_device=11), "oxygen_device",
                     "9=mechanical_ventilation", id="device"),
        pytest.param(lambda: crs.device_code("tent"), "oxygen_device", "venturi", id="name"),
        pytest.param(lambda: crs.astct_crs_grade(39.0, vasopressors=-1), "vasopressors",
                     "[0, 10]", id="vasopressors"),
        pytest.param(lambda: icans.astct_icans_grade(ice_score=11), "ice_score", "[0, 10]",
                     id="ice"),
        pytest.param(lambda: icans.astct_icans_grade(10, consciousness=4), "consciousness",
                     "3=unarousable", id="consciousness"),
        pytest.param(lambda: icans.astct_icans_grade(10, seizure=0.5), "seizure",
                     "2=prolonged_or_repetitive", id="seizure"),
        pytest.param(lambda: icans.capd_score_from_answers(["never"] * 7 + ["sometimess"]),
                     "capd_answers[7]", "sometimes", id="capd-answer"),
        pytest.param(lambda: ctcae.neutrophil_grade(-1.0), "anc_per_ul", "[0, 1e+06]",
                     id="anc"),
        pytest.param(lambda: ctcae.neutrophil_grade(100.0, version="7.0"), "ctcae_version",
                     "5.0", id="ctcae-version"),
        pytest.param(lambda: hematotox.car_hematotox(1e5, 1e3, 10, -2, 100), "crp_mg_l",
                     "[0, 1000]", id="crp"),
        pytest.param(lambda: hematotox.icaht_early_grade([100, 200], [0, 0]), "days",
                     "increasing", id="icaht-days"),
    ],
)
def test_invalid_input_names_field_and_allowed(call, field: str, allowed_fragment: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        call()
    assert exc.value.field == field
    assert allowed_fragment in exc.value.allowed
    assert field in str(exc.value)


@SETTINGS
@given(bad=st.one_of(st.floats(100.01, 1e6), st.floats(-1e6, -0.01)))
def test_out_of_range_spo2_always_rejected(bad: float) -> None:
    with pytest.raises(InvalidInputError) as exc:
        ctcae.hypoxia_grade(bad)
    assert exc.value.field == "spo2_pct"
