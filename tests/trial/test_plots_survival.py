"""Kaplan–Meier figure helper (Agg; no display needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _aml import AML_MAINTAINED, AML_NONMAINTAINED
from matplotlib.figure import Figure

from cartsim.errors import InvalidInputError
from cartsim.report.plots_survival import numbers_at_risk, plot_km
from cartsim.trial.stats import KaplanMeier


def _fits() -> list[KaplanMeier]:
    return [
        KaplanMeier().fit(*AML_MAINTAINED, label="Maintained"),
        KaplanMeier().fit(*AML_NONMAINTAINED, label="Nonmaintained"),
    ]


def test_numbers_at_risk() -> None:
    m = _fits()[0]
    assert numbers_at_risk(m, [0, 20, 40, 200]) == [11, 7, 3, 0]


def test_plot_two_arms_with_table(tmp_path: Path) -> None:
    fig = plot_km(_fits(), at_risk_times=[0, 20, 40], title="aml")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "No. at risk" in texts
    assert {"Maintained", "Nonmaintained"} <= set(texts)
    assert texts.count("11") == 1 and "12" in texts and "7" in texts
    assert len(ax.collections) == 2  # one CI band per arm
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "|"]
    assert len(markers) == 2 and len(markers[0].get_xdata()) == 4  # 13, 28, 45, 161 censored
    out = tmp_path / "km.png"
    fig.savefig(out)
    assert out.stat().st_size > 1000


def test_plot_single_fit_on_given_axes() -> None:
    ax = Figure().add_subplot(111)
    fig = plot_km(_fits()[1], ax=ax, ci=False, censor_ticks=False, at_risk=False)
    assert fig is ax.figure
    assert len(ax.collections) == 0 and not ax.texts


def test_plot_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        plot_km([])
    with pytest.raises(InvalidInputError):
        plot_km([KaplanMeier()])
    with pytest.raises(InvalidInputError):
        plot_km(_fits(), colors=["red"])
