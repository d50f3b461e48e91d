"""Bedside chemistry: acute-phase proteins, coagulation and tumour-lysis labs (issue 14 item 3).

Slow lab states integrated on the daily grid, downstream of the model: they read the solver's
state once a day (IL-6 signal, IFN-γ, myeloid and endothelial activation, tumour cells, MAP)
and never feed back, so every other readout — and the core reference trajectory — is
unchanged. Each state is a first-order process ``dx/dt = a(t) − k(t)·x`` advanced one day at
a time by its exact solution with the inputs averaged over the day (trapezoid of the two
daily samples): ``x₁ = x_ss + (x₀ − x_ss)·exp(−k·Δt)``, ``x_ss = a/k``.

* **CRP** (mg/L): hepatic acute-phase response to the IL-6 *signal* (so tocilizumab, which
  raises serum IL-6 but blocks its receptor, lowers CRP as it does at the bedside). A hepatic
  induction state H follows the saturating IL-6 signal with a lag of about a day, and CRP
  follows H with its 19-h plasma half-life: CRP peaks ≈ 2 days after IL-6.
* **Ferritin** (ng/mL): secreted by activated macrophages (the myeloid activation state, Hill
  2), amplified by IFN-γ; slow clearance (t½ ≈ 2 days), so ferritin peaks after CRS and stays
  high while macrophage activation persists (the IEC-HS phenotype).
* **Fibrinogen** (mg/dL): an acute-phase protein (synthesis rises with H), consumed by
  activated endothelium (DIC-like consumption in severe CRS) and by activated macrophages
  (plasminogen activator; hypofibrinogenaemia of IEC-HS).
* **Tumour lysis**: the cells lysed per day are the net daily fall of whole-body tumour plus
  the tumour's own turnover; a fraction of their content (potassium, phosphate, purines →
  urate, LDH) reaches the extracellular fluid, the kidneys clear it in proportion to the GFR.
* **GFR and creatinine**: the GFR fraction falls with hypoperfusion (MAP below the patient's
  baseline) and recovers more slowly (acute kidney injury); creatinine is produced at the
  age-dependent baseline rate and cleared with the GFR.
* **Calcium** (mg/dL, algebraic): falls as phosphate rises (calcium-phosphate precipitation),
  saturating at ``ca_drop_max``.

Renal replacement therapy is not modelled: with a GFR near zero the lysis products keep
accumulating.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cartsim._fastnp import nan_to_num
from cartsim.model.parameters import P
from cartsim.model.state import N_CLONES, S
from cartsim.params import ParameterSpec, ParameterTable

_A = "assumed (issue 14 item 3, uncalibrated)"
LAB_PARAMS = ParameterTable((
    # ---- acute-phase response
    ParameterSpec("k_hep", "1/d", 1.0, 0.1, 20.0,
                  "assumed (CRP starts rising 6–8 h after the IL-6 stimulus and peaks at "
                  "≈ 48 h; Pepys & Hirschfield 2003)",
                  "rate of the hepatic acute-phase induction following the IL-6 signal"),
    ParameterSpec("K_hep_il6", "pg/mL", 60.0, 0.1, 1e4, _A,
                  "IL-6 signal (after receptor blockade) for half-maximal hepatic induction "
                  "(Hill 2)"),
    ParameterSpec("crp_base", "mg/L", 2.0, 0.0, 50.0, "typical healthy CRP (< 5 mg/L)",
                  "CRP without inflammation"),
    ParameterSpec("crp_max", "mg/L", 300.0, 1.0, 1000.0,
                  "assumed (CRP peaks of 100–300 mg/L in severe CRS; Teachey 2016)",
                  "CRP at full hepatic induction"),
    ParameterSpec("k_crp", "1/d", 0.875, 0.1, 10.0,
                  "CRP plasma half-life ≈ 19 h (Pepys & Hirschfield 2003): ln 2 / 0.79 d",
                  "CRP clearance"),
    # ---- ferritin
    ParameterSpec("fer_base", "ng/mL", 400.0, 1.0, 1e4,
                  "assumed (transfused relapsed/refractory patients; CAR-HEMATOTOX's 650 ng/mL "
                  "cut-off sits above the median)",
                  "ferritin without macrophage activation"),
    ParameterSpec("k_fer", "1/d", 0.35, 0.01, 10.0,
                  "assumed (ferritin halves in ≈ 2 days once HLH is controlled)",
                  "ferritin clearance"),
    ParameterSpec("p_fer", "ng/mL/d", 4000.0, 0.0, 1e6,
                  "assumed: peaks of several thousand ng/mL in moderate and > 10,000 in severe "
                  "CRS/IEC-HS (Teachey 2016; Hines 2023); hand-set on one ELIANA-like cohort",
                  "ferritin secretion by fully activated macrophages (myeloid Hill term = 1, no "
                  "IFN-γ)"),
    ParameterSpec("K_fer_my", "–", 2.5, 0.01, 100.0, _A,
                  "myeloid activation for half-maximal ferritin secretion (Hill 2)"),
    ParameterSpec("w_fer_ifng", "–", 1.0, 0.0, 10.0,
                  "assumed (IFN-γ drives the macrophage activation of HLH; Hines 2023)",
                  "extra ferritin secretion at saturating IFN-γ, relative"),
    ParameterSpec("K_fer_ifng", "pg/mL", 50.0, 0.01, 1e5, _A,
                  "IFN-γ for half of the extra ferritin secretion"),
    # ---- fibrinogen
    ParameterSpec("fib_base", "mg/dL", 300.0, 50.0, 800.0, "normal fibrinogen 200–400 mg/dL",
                  "fibrinogen without inflammation"),
    ParameterSpec("k_fib", "1/d", 0.2, 0.01, 5.0, "fibrinogen half-life ≈ 3.5 days",
                  "fibrinogen turnover"),
    ParameterSpec("a_fib", "–", 1.0, 0.0, 5.0,
                  "assumed (fibrinogen roughly doubles in an acute-phase response)",
                  "extra fibrinogen synthesis at full hepatic induction, relative"),
    ParameterSpec("c_fib_en", "1/d", 1.5, 0.0, 20.0,
                  "assumed (consumptive coagulopathy in severe CRS; Jiang 2019)",
                  "maximal fibrinogen consumption by activated endothelium"),
    ParameterSpec("K_fib_en", "–", 3.0, 0.01, 100.0,
                  "assumed; checked against the ELIANA+ENSIGN fibrinogen < 1 g/L row "
                  "(calibration set), session 8: ~54 % of CRS patients below 1 g/L against "
                  "a published 8 % until the myeloid tolerance (k_my_tol) shortened the "
                  "myeloid activation; with it ~9 %. A retuning to 4 (and K_fib_my 6) "
                  "tried before the tolerance went to 0.5 % with it, so it was undone",
                  "endothelial activation for half-maximal consumption (Hill 4)"),
    ParameterSpec("c_fib_my", "1/d", 1.5, 0.0, 20.0,
                  "assumed (hypofibrinogenaemia of HLH/IEC-HS: macrophage plasminogen "
                  "activator; Hines 2023)",
                  "maximal fibrinogen consumption by activated macrophages"),
    ParameterSpec("K_fib_my", "–", 3.5, 0.01, 100.0,
                  "assumed; checked against the ELIANA+ENSIGN fibrinogen < 1 g/L row "
                  "(calibration set), session 8: see K_fib_en",
                  "myeloid activation for half-maximal consumption (Hill 4)"),
    # ---- tumour lysis
    ParameterSpec("lysis_release", "fraction", 0.1, 0.0, 1.0,
                  "assumed (CAR-T killing is largely apoptotic and phagocytes take up much of "
                  "the debris; TLS after CAR-T is uncommon); hand-set, session 5: 0.3 gave "
                  "urate > 30 mg/dL in 94 %-blast B-ALL",
                  "fraction of a lysed cell's content that reaches the extracellular fluid"),
    ParameterSpec("tumour_turnover", "1/d", 0.02, 0.0, 1.0,
                  "assumed (spontaneous blast death of a few % a day)",
                  "daily spontaneous death of tumour cells (adds to the lysis)"),
    ParameterSpec("k_per_1e9", "mmol per 10⁹ cells", 0.1, 0.0, 1.0,
                  "≈ 140 mmol/L cell water × 0.7 mL per 10⁹ cells",
                  "potassium content of 10⁹ tumour cells"),
    ParameterSpec("phos_per_1e9", "mg P per 10⁹ cells", 3.0, 0.0, 30.0,
                  "≈ 0.1 mmol phosphorus per 10⁹ lymphoblasts (≈ 4× a normal lymphocyte; "
                  "Cairo & Bishop 2004)", "phosphate (as P) content of 10⁹ tumour cells"),
    ParameterSpec("urate_per_1e9", "mg per 10⁹ cells", 5.0, 0.0, 50.0,
                  "≈ 3e-14 mol purine nucleotide per cell (6.6 pg DNA plus RNA) × 168 g/mol",
                  "urate formed from the purines of 10⁹ tumour cells"),
    ParameterSpec("ldh_per_1e9", "U per 10⁹ cells", 150.0, 0.0, 1e4,
                  "assumed; hand-set so that high-burden B-ALL starts near 1,000–2,000 U/L "
                  "(10¹² blasts turning over at 2 %/d)",
                  "LDH activity of 10⁹ tumour cells"),
    ParameterSpec("ecf_l_per_kg", "L/kg", 0.2, 0.05, 0.5, "extracellular fluid ≈ 20 % of weight",
                  "distribution volume of phosphate"),
    ParameterSpec("k_vd_l_per_kg", "L/kg", 0.4, 0.05, 1.0,
                  "assumed (half of an acute potassium load shifts into cells)",
                  "distribution volume of an acute potassium load"),
    ParameterSpec("urate_vd_l_per_kg", "L/kg", 0.3, 0.05, 1.0,
                  "urate pool ≈ 1.2 g at 6 mg/dL in a 70-kg adult",
                  "distribution volume of urate"),
    ParameterSpec("k_base", "mmol/L", 4.0, 2.5, 6.0, "normal potassium 3.5–5.0 mmol/L",
                  "potassium without lysis"),
    ParameterSpec("k_k", "1/d", 3.0, 0.1, 50.0,
                  "assumed (kidneys excrete most of an acute potassium load within hours)",
                  "renal removal of excess potassium at normal GFR"),
    ParameterSpec("phos_base_adult", "mg/dL", 3.5, 1.0, 8.0, "normal adult phosphate 2.5–4.5",
                  "adult phosphate without lysis"),
    ParameterSpec("phos_base_child_extra", "mg/dL", 1.8, 0.0, 5.0,
                  "children's phosphate is higher (≈ 4–6 mg/dL); falls linearly to the adult "
                  "value at 18 years", "extra phosphate at birth"),
    ParameterSpec("k_phos", "1/d", 1.0, 0.05, 20.0, _A,
                  "renal removal of excess phosphate at normal GFR"),
    ParameterSpec("urate_base", "mg/dL", 4.5, 1.0, 10.0, "normal urate 2.5–7 mg/dL",
                  "urate without lysis"),
    ParameterSpec("k_urate", "1/d", 0.5, 0.05, 10.0,
                  "urate pool turnover ≈ 0.5/d (≈ 600 mg/d of a 1.2-g pool)",
                  "renal urate clearance at normal GFR"),
    ParameterSpec("ldh_base", "U/L", 180.0, 50.0, 1000.0, "normal LDH 120–250 U/L",
                  "LDH without tumour or tissue damage"),
    ParameterSpec("k_ldh", "1/d", 0.5, 0.05, 10.0,
                  "assumed (LDH isoenzyme half-lives from ≈ 10 h to 4 days)", "LDH clearance"),
    ParameterSpec("ldh_my", "U/L/d", 150.0, 0.0, 1e4,
                  "assumed (LDH rises in HLH with tissue and marrow damage; Hines 2023)",
                  "LDH release at full macrophage activation"),
    ParameterSpec("ca_base", "mg/dL", 9.4, 6.0, 12.0, "normal total calcium 8.5–10.5 mg/dL",
                  "calcium without lysis"),
    ParameterSpec("ca_per_phos", "–", 0.3, 0.0, 2.0,
                  "assumed (calcium-phosphate precipitation)",
                  "initial calcium fall (mg/dL) per mg/dL of phosphate above its baseline"),
    ParameterSpec("ca_drop_max", "mg/dL", 5.0, 0.0, 8.0,
                  "assumed (the fall saturates: x·m/(x + m) with x = ca_per_phos × excess)",
                  "largest calcium fall"),
    # ---- kidney
    ParameterSpec("K_gfr_map", "–", 0.3, 0.01, 1.0,
                  "assumed (renal autoregulation fails below ≈ 65 mmHg: a 30 % MAP fall halves "
                  "the GFR)", "fractional MAP fall that halves the GFR (Hill 2)"),
    ParameterSpec("k_aki_on", "1/d", 2.0, 0.05, 20.0, _A, "rate at which the GFR falls"),
    ParameterSpec("k_aki_off", "1/d", 0.3, 0.01, 10.0,
                  "assumed (acute kidney injury recovers over days)",
                  "rate at which the GFR recovers"),
    ParameterSpec("cr_base_adult", "mg/dL", 0.9, 0.3, 2.0, "typical adult creatinine",
                  "adult creatinine at normal GFR"),
    ParameterSpec("cr_base_infant", "mg/dL", 0.3, 0.1, 1.0,
                  "typical creatinine ≈ 0.3 mg/dL at 1 year; linear in age to the adult value "
                  "at 18 (muscle mass)", "creatinine at normal GFR at age 0"),
    ParameterSpec("k_cr", "1/d", 3.0, 0.1, 50.0,
                  "creatinine half-life ≈ 4 h at normal GFR is damped by its ≈ 0.6 L/kg "
                  "distribution (GFR 144 L/d / 42 L ≈ 3.4/d)",
                  "creatinine clearance at normal GFR"),
))

#: Normal (healthy adult) ranges of the lab readouts: (low, high, unit).
LAB_NORMAL_RANGES: dict[str, tuple[float, float, str]] = {
    "crp_mg_l": (0.0, 5.0, "mg/L"),
    "ferritin_ng_ml": (20.0, 400.0, "ng/mL"),  # transfused patients often start above
    "fibrinogen_mg_dl": (150.0, 400.0, "mg/dL"),
    "ldh_u_l": (120.0, 250.0, "U/L"),
    "urate_mg_dl": (2.5, 7.0, "mg/dL"),
    "potassium_mmol_l": (3.5, 5.0, "mmol/L"),
    "phosphate_mg_dl": (2.5, 6.5, "mg/dL"),  # the upper limit is 4.5 in adults
    "calcium_mg_dl": (8.5, 10.5, "mg/dL"),
    "creatinine_mg_dl": (0.2, 1.2, "mg/dL"),  # age-dependent
}
LAB_COLUMNS: tuple[str, ...] = tuple(LAB_NORMAL_RANGES)
_STATE = ("hep", "crp", "fer", "fib", "ldh", "urate", "k", "phos", "gfr", "cr")


def _step(x: np.ndarray, a: np.ndarray, k: np.ndarray | float, dt: float) -> np.ndarray:
    """Exact solution of dx/dt = a − k·x over dt with a, k constant."""
    k = np.maximum(k, 1e-12)
    xs = a / k
    return xs + (x - xs) * np.exp(-k * dt)


def _drivers(y: np.ndarray, p: np.ndarray, q: Mapping[str, float]) -> dict[str, np.ndarray]:
    """The day's inputs of the lab states, from the model state."""
    il6 = np.maximum(y[:, S.IL6], 0.0)
    toci = np.maximum(y[:, S.TOCI], 0.0)
    silt = np.maximum(y[:, S.SILT], 0.0)
    sig = il6 * (1 - toci / (toci + p[:, P.toci_ec50])) * (1 - silt / (silt + p[:, P.silt_ec50]))
    my = np.maximum(y[:, S.MY], 0.0)
    en = np.maximum(y[:, S.EN], 0.0)
    ifng = np.maximum(y[:, S.IFNG], 0.0)
    tum = np.maximum(y[:, [S.T0 + c for c in range(N_CLONES)]], 0.0).sum(axis=1) \
        + np.maximum(y[:, S.TS], 0.0)
    map_ = p[:, P.map0] * (1.0 - p[:, P.map_drop] * en**2 / (en**2 + p[:, P.K_map] ** 2))
    hypo = np.maximum(1.0 - map_ / p[:, P.map0], 0.0)
    return {
        "hep_target": sig**2 / (sig**2 + q["K_hep_il6"] ** 2),
        "fer_drive": my**2 / (my**2 + q["K_fer_my"] ** 2)
        * (1.0 + q["w_fer_ifng"] * ifng / (ifng + q["K_fer_ifng"])),
        "fib_cons": q["c_fib_en"] * en**4 / (en**4 + q["K_fib_en"] ** 4)
        + q["c_fib_my"] * my**4 / (my**4 + q["K_fib_my"] ** 4),
        "my_frac": my**2 / (my**2 + q["K_fer_my"] ** 2),
        "tumour": nan_to_num(tum),
        "gfr_target": 1.0 / (1.0 + (hypo / q["K_gfr_map"]) ** 2),
    }


def _baselines(p: np.ndarray, q: Mapping[str, float]) -> dict[str, np.ndarray]:
    age = np.clip(p[:, P.age_y], 0.0, 18.0)
    return {
        "phos": q["phos_base_adult"] + q["phos_base_child_extra"] * (1.0 - age / 18.0),
        "cr": q["cr_base_infant"] + (q["cr_base_adult"] - q["cr_base_infant"]) * age / 18.0,
    }


class LabCourse:
    """The lab states of a cohort, advanced once a day by :meth:`step` (day order)."""

    def __init__(self, p: np.ndarray, overrides: Mapping[str, float] | None = None) -> None:
        """``overrides``: replacement values of :data:`LAB_PARAMS` (population constants, the
        same for every patient); names that are not lab parameters are ignored, so a
        simulation's whole override mapping may be passed."""
        self.p = p
        self.q = LAB_PARAMS.resolve({k: v for k, v in (overrides or {}).items()
                                     if k in LAB_PARAMS.names})
        self.base = _baselines(p, self.q)
        self.x: dict[str, np.ndarray] | None = None
        self.prev: dict[str, np.ndarray] | None = None
        self.day: int | None = None

    def _init(self, d: dict[str, np.ndarray]) -> None:
        q, n = self.q, self.p.shape[0]
        one = np.ones(n)
        w = self.p[:, P.weight_kg]
        ldh0 = q["ldh_base"] + self._ldh_tumour(d["tumour"], 0.0) / q["k_ldh"]
        self.x = {"hep": d["hep_target"].copy(), "crp": q["crp_base"] + q["crp_max"]
                  * d["hep_target"], "fer": q["fer_base"] * one, "fib": q["fib_base"] * one,
                  "ldh": ldh0, "urate": q["urate_base"] * one, "k": q["k_base"] * one,
                  "phos": self.base["phos"].copy(), "gfr": one.copy(), "cr": self.base["cr"]
                  .copy()}
        # the tumour's own turnover keeps urate, potassium and phosphate a little above the
        # healthy values before treatment
        for name, content, vd_dl, kk in self._releases(w):
            self.x[name] = self.x[name] + self._release(d["tumour"], 0.0, content, vd_dl) / kk

    def _releases(self, w: np.ndarray) -> tuple[tuple[str, float, np.ndarray, float], ...]:
        q = self.q
        return (("urate", q["urate_per_1e9"], q["urate_vd_l_per_kg"] * w * 10.0, q["k_urate"]),
                ("k", q["k_per_1e9"], q["k_vd_l_per_kg"] * w, q["k_k"]),
                ("phos", q["phos_per_1e9"], q["ecf_l_per_kg"] * w * 10.0, q["k_phos"]))

    def _release(self, tumour: np.ndarray, lysed: np.ndarray | float, content: float,
                 vd: np.ndarray) -> np.ndarray:
        """Concentration rate (per day) from the lysed cells' content over the volume."""
        cells = np.asarray(lysed) + self.q["tumour_turnover"] * tumour
        return self.q["lysis_release"] * content * cells / 1e9 / vd

    def _ldh_tumour(self, tumour: np.ndarray, lysed: np.ndarray | float) -> np.ndarray:
        return self._release(tumour, lysed, self.q["ldh_per_1e9"], self.p[:, P.plasma_ml] / 1e3)

    def step(self, day: int, y: np.ndarray, p: np.ndarray | None = None
             ) -> dict[str, np.ndarray]:
        """Advance to ``day`` with the state ``y`` of that day; return the lab readouts."""
        q = self.q
        d = _drivers(y, self.p, q)
        if self.x is None or self.prev is None or self.day is None:
            self._init(d)
        else:
            dt = float(day - self.day)
            if dt <= 0:
                raise ValueError(f"lab states advance forward only (day {day} after {self.day})")
            x, pv = self.x, self.prev
            m = {k: 0.5 * (nan_to_num(d[k]) + nan_to_num(pv[k])) for k in d}
            lysed = np.maximum(pv["tumour"] - d["tumour"], 0.0) / dt
            tum = m["tumour"]
            x["hep"] = _step(x["hep"], q["k_hep"] * m["hep_target"], q["k_hep"], dt)
            x["crp"] = _step(x["crp"], q["k_crp"] * (q["crp_base"] + q["crp_max"] * x["hep"]),
                             q["k_crp"], dt)
            x["fer"] = _step(x["fer"], q["k_fer"] * q["fer_base"] + q["p_fer"] * m["fer_drive"],
                             q["k_fer"], dt)
            x["fib"] = _step(x["fib"], q["k_fib"] * q["fib_base"] * (1 + q["a_fib"] * x["hep"]),
                             q["k_fib"] + m["fib_cons"], dt)
            x["ldh"] = _step(x["ldh"], q["k_ldh"] * q["ldh_base"] + self._ldh_tumour(tum, lysed)
                             + q["ldh_my"] * m["my_frac"], q["k_ldh"], dt)
            falling = m["gfr_target"] < x["gfr"]
            kg = np.where(falling, q["k_aki_on"], q["k_aki_off"])
            x["gfr"] = _step(x["gfr"], kg * m["gfr_target"], kg, dt)
            g = x["gfr"]
            x["cr"] = _step(x["cr"], q["k_cr"] * self.base["cr"], q["k_cr"] * g, dt)
            base = {"urate": q["urate_base"], "k": q["k_base"], "phos": self.base["phos"]}
            for name, content, vd, kk in self._releases(self.p[:, P.weight_kg]):
                # renal clearance of the excess over the healthy value, scaled by the GFR
                rel = self._release(tum, lysed, content, vd)
                excess = _step(x[name] - base[name], rel, kk * g, dt)
                x[name] = base[name] + excess
        self.prev = d
        self.day = day
        x = self.x
        assert x is not None
        ca_fall = q["ca_per_phos"] * np.maximum(x["phos"] - self.base["phos"], 0.0)
        return {
            "crp_mg_l": x["crp"].copy(),
            "ferritin_ng_ml": x["fer"].copy(),
            "fibrinogen_mg_dl": x["fib"].copy(),
            "ldh_u_l": x["ldh"].copy(),
            "urate_mg_dl": x["urate"].copy(),
            "potassium_mmol_l": x["k"].copy(),
            "phosphate_mg_dl": x["phos"].copy(),
            "calcium_mg_dl": q["ca_base"] - q["ca_drop_max"] * ca_fall
            / (ca_fall + q["ca_drop_max"]),
            "creatinine_mg_dl": x["cr"].copy(),
        }
