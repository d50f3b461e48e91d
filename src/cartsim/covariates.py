"""The patient covariates, declared once.

Each :class:`Covariate` carries name, unit, allowed range, default, meaning, whether it is a
0/1 flag and which disease it applies to. Everything else is generated from :data:`COVARIATES`:
:class:`cartsim.population.Cohort` defaults and validation, the trial spec's population fields
and their range checks (:mod:`cartsim.trial.spec`), the covariates the trial runner passes to
the simulator and records per patient, the subgroup flags of the trial summary, the table in
``docs/trial.md`` (:func:`markdown_table`) and the invalid-value tests
(``tests/test_covariates.py``). Bounds agree with the model's patient parameters where both
exist (``weight_kg``, ``age_y``, ``anc0``, ``plt0``, ``hb0``, ``cns_disease``; tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cartsim.diseases import LYMPHOMAS, NEW_LYMPHOMAS
from cartsim.params import ParameterSpec


@dataclass(frozen=True)
class Covariate:
    """One patient covariate (per-patient input of the virtual patient)."""

    name: str
    unit: str
    lower: float
    upper: float
    default: float  # NaN: no default (weight is derived from age in trial specs)
    description: str
    provenance: str
    binary: bool = False  # a 0/1 flag (trial draws are binarised at 0.5)
    # only for this disease or these diseases (cartsim.diseases.DISEASES); None: all
    disease: str | tuple[str, ...] | None = None
    simulated: bool = True  # False: recorded only, not a model input

    def spec(self) -> ParameterSpec:
        """As a :class:`ParameterSpec` (validation with field-naming errors, docs)."""
        default = self.default if math.isfinite(self.default) else self.lower
        return ParameterSpec(self.name, self.unit, default, self.lower, self.upper,
                             self.provenance, self.description, group="covariate")

    def applies(self, disease: str) -> bool:
        if self.disease is None:
            return True
        if isinstance(self.disease, tuple):
            return disease in self.disease
        return self.disease == disease

    def diseases_label(self) -> str:
        """The diseases it applies to, for tables (``all`` when every disease)."""
        if self.disease is None:
            return "all"
        return self.disease if isinstance(self.disease, str) else ", ".join(self.disease)


_IN = "input; range: physiological"
COVARIATES: tuple[Covariate, ...] = (
    Covariate("age_y", "years", 0.0, 100.0, 10.0, "age", _IN),
    Covariate("weight_kg", "kg", 2.0, 300.0, math.nan,
              "body weight (trial specs derive it from age when absent)", _IN),
    Covariate("marrow_blasts_pct", "%", 0.0, 100.0, 60.0, "B-ALL marrow blasts", "input",
              disease="b-all"),
    Covariate("tumour_volume_ml", "mL", 0.0, 1e4, 50.0,
              "lymphoma tumour volume (LBCL, MCL, FL; SPD ≈ 1.5 cm² × volume^(2/3))",
              "input (≈ 10⁹ cells per mL)", disease=LYMPHOMAS),
    Covariate("marrow_involved", "0/1", 0.0, 1.0, 0.0,
              "marrow/blood (leukaemic) involvement of MCL or FL: that share of the disease "
              "sits where CAR-T reach it as in the marrow (population mcl_/fl_marrow_share)",
              "input", binary=True, disease=NEW_LYMPHOMAS),
    Covariate("cd19_density", "relative to typical", 0.0, 100.0, 1.0,
              "tumour CD19 surface density", "input; 1 = typical B-ALL blast"),
    Covariate("cd19_negative_fraction", "fraction", 0.0, 1.0, 0.0,
              "pre-existing CD19-negative tumour fraction", "input"),
    Covariate("kmt2a", "0/1", 0.0, 1.0, 0.0,
              "KMT2A (MLL) rearrangement: lineage-plastic B-ALL whose switched myeloid cells "
              "(switch_frac) carry no CD19 and relapse CD19-negative", "input (≈ 70–80 % of "
              "infants, ≈ 5 % of older children; Ghorashian 2022)", binary=True,
              disease="b-all"),
    Covariate("cns_disease", "0/1", 0.0, 1.0, 0.0,
              "overt CNS disease (seeds the sanctuary compartment)", "input", binary=True),
    Covariate("prior_hsct", "0/1", 0.0, 1.0, 0.0,
              "prior allogeneic HSCT (not a model input: raises the death hazard of a later "
              "allogeneic HSCT, trm_prior_hsct_factor)", "input", binary=True,
              simulated=False),
    Covariate("tp53_altered", "0/1", 0.0, 1.0, 0.0,
              "TP53 alteration (mutation or copy loss): weaker apoptosis, faster growth, fewer "
              "infiltrating CAR-T (review B10)", "input", binary=True),
    Covariate("noxa_low", "0/1", 0.0, 1.0, 0.0,
              "NOXA-low tumour (IHC < 4): perforin-route apoptosis blocked (review B7)", "input",
              binary=True),
    Covariate("cd58_loss", "0/1", 0.0, 1.0, 0.0,
              "CD58 loss: weaker CAR synapse, kill and stimulation (review B11)", "input",
              binary=True),
    Covariate("pdl1", "fraction", 0.0, 1.0, 0.0,
              "tumour PD-L1: suppresses and exhausts engaged CAR-T (review B12)", "input"),
    Covariate("dr_defect", "fraction", 0.0, 1.0, 0.0,
              "death-receptor pathway defect (FADD/BID/CASP8/TNFRSF10B; Fas): no extrinsic or "
              "bystander kill, CAR-T dysfunction and less expansion (review B8, B9)", "input"),
    Covariate("ifng_defect", "fraction", 0.0, 1.0, 0.0,
              "IFN-γ pathway defect (IFNGR1/2, JAK1/2, STAT1): no IFN-γ-route kill, which "
              "liquid tumours do not need (review B5)", "input"),
    Covariate("cd19_surface_loss", "fraction", 0.0, 1.0, 0.0,
              "CD19 surface loss by CD81 loss or SPPL3 loss (antigen kept inside or masked; "
              "review B2, B11)", "input"),
    Covariate("anc0", "cells/µL", 0.0, 1e5, 1500.0, "baseline ANC", _IN),
    Covariate("plt0", "cells/µL", 0.0, 2e6, 100e3, "baseline platelets", _IN),
    Covariate("hb0", "g/dL", 2.0, 25.0, 10.0, "baseline haemoglobin", _IN),
)
BY_NAME: dict[str, Covariate] = {c.name: c for c in COVARIATES}
NAMES: tuple[str, ...] = tuple(BY_NAME)
BINARY: tuple[str, ...] = tuple(c.name for c in COVARIATES if c.binary)
#: Tumour resistance traits given as a fraction (review B5–B12); subgroups split them at 0.5.
GRADED_TRAITS: tuple[str, ...] = ("pdl1", "dr_defect", "ifng_defect", "cd19_surface_loss")
#: Covariates that are inputs of the model (fields of :class:`cartsim.population.Cohort`).
SIMULATED: tuple[str, ...] = tuple(c.name for c in COVARIATES if c.simulated)


def for_disease(disease: str) -> tuple[Covariate, ...]:
    """The covariates that apply to ``disease`` (in table order)."""
    return tuple(c for c in COVARIATES if c.applies(disease))


def burden(disease: str) -> str:
    """The covariate that measures tumour burden for ``disease``."""
    return "marrow_blasts_pct" if disease == "b-all" else "tumour_volume_ml"


def markdown_table() -> str:
    """The covariate table of ``docs/trial.md``, generated from :data:`COVARIATES`."""
    rows = ["| covariate | meaning | unit | range | default | flag | disease |",
            "|---|---|---|---|---|---|---|"]
    for c in COVARIATES:
        d = "derived" if not math.isfinite(c.default) else f"{c.default:g}"
        rows.append(f"| `{c.name}` | {c.description} | {c.unit} | [{c.lower:g}, {c.upper:g}] | "
                    f"{d} | {'0/1' if c.binary else '–'} | {c.diseases_label()} |")
    return "\n".join(rows)
