"""CAR constructs, label dose rules and the approved-product presets (review A2, A3).

A :class:`Construct` says what the CAR recognises and how it signals; :data:`COSTIM_EFFECTS`
and :data:`GENERATION_EFFECTS` turn that into multipliers of upstream model parameters (never of
outcomes). A :class:`DoseRule` holds the label dose: cells/kg under a weight limit and a flat
dose above it, or flat only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cartsim.errors import InvalidInputError, UnknownNameError
from cartsim.params import ParameterSpec

Costim = Literal["CD28", "4-1BB", "CD28+4-1BB", "none"]
Format = Literal["single", "tandem", "bicistronic", "cocktail"]
KNOWN_TARGETS = ("CD19", "CD20", "CD22")
KNOWN_ARMOUR = ("IL-18", "CD40L", "CD2", "IL-2Rb")

#: Parameter multipliers by co-stimulatory domain. Direction from review A2 and MODEL.md §1
#: (CD28: faster, higher peak, shorter persistence; 4-1BB: slower, durable); magnitudes are
#: assumptions to be calibrated (Stein 2019 vs Kimmel 2021 kinetics).
#: The CD28 multipliers are parameters of the patient builder (``cd28_<name>_x``, in
#: :data:`cartsim.population.POPULATION_PARAMS`), so a parameter set (calibration) may replace
#: them (docs/model.md, "CD28 co-stimulation: the session-10 retune").
CD28_PARAMS: tuple[ParameterSpec, ...] = (
    ParameterSpec("cd28_rho_max_x", "× rho_max", 1.1, 0.5, 3.0,
                  "direction: review A2, CD28 expands faster and higher (Stein 2019 vs Kimmel "
                  "2021 kinetics); size hand-tuned (session 10) with cd28_K_my_car_x against the "
                  "calibration-set rows of ZUMA-1, NCI CD19-28z, MSKCC 19-28z, the CD28 "
                  "paediatric cohort and the axi-cel expansion study (cartsim validate, 200/arm; "
                  "grid 0.9–1.3 × 0.02–1.0, docs/model.md 'CD28 co-stimulation'): 1.3 gave an "
                  "axi-cel median peak of 65 CAR-T/µL against 16 published and CR rates 14–21 "
                  "points too high, 1.1 gives 33/µL", "CD28 co-stimulation: multiplier of the "
                  "maximal proliferation rate relative to 4-1BB"),
    ParameterSpec("cd28_d_E_x", "× d_E", 1.0, 0.25, 5.0,
                  "direction: review A2 and MODEL.md 1 (CD28 products expand faster and "
                  "persist shorter; Kawalekar 2016 Immunity 44:380: CD28 signalling gives "
                  "effector memory, 4-1BB central memory). Kimmel 2021's ZUMA-1 (Moffitt) blood "
                  "CAR-T medians are 27.5 / 9.1 / 2.1 / 0.1 cells/uL on days 7 / 14 / 28 / 90 "
                  "(shared models.md), the model's 6.9 / 35.6 / 35.8 / 3.2 (session 48, "
                  "`cartsim trial trace zuma1 --names cart_cells_per_ul --patients 1000`): "
                  "its CD28 effectors peak late and contract slowly. 1 = as 4-1BB (default); "
                  "2 with cd28_rho_max_x 1.8 gave ZUMA-1 more partial responses and earlier "
                  "progression but NCI CD19-28z's CR 70.8 -> 80.3 % (session 48 probes, "
                  "docs/validation.md 'Session 48'); a lever for the calibration",
                  "CD28 co-stimulation: multiplier of the effector CAR-T death rate d_E "
                  "(> 1: the effectors contract faster after the peak)"),
    ParameterSpec("cd28_k_em_x", "× k_em", 0.5, 0.1, 2.0,
                  "assumed (direction: review A2, CD28 favours effector over memory fate)",
                  "CD28 co-stimulation: multiplier of effector-to-memory conversion"),
    ParameterSpec("cd28_d_M_x", "× d_M", 4.0, 0.5, 10.0,
                  "assumed (direction: review A2, CD28 CAR-T persist weeks to months, 4-1BB "
                  "months to years)", "CD28 co-stimulation: multiplier of memory CAR-T decay"),
    ParameterSpec("cd28_k_ex_x", "× k_ex", 1.5, 0.25, 5.0,
                  "assumed (direction: CD28 signalling drives faster exhaustion, Long 2015)",
                  "CD28 co-stimulation: multiplier of the exhaustion rate"),
    ParameterSpec("cd28_K_my_car_x", "× K_my_car", 0.02, 0.001, 5.0,
                  "direction: CD28 co-stimulation gives faster, more intense CAR signalling "
                  "and more CD40L and GM-CSF per activated cell, the CAR-T signals that "
                  "activate monocytes/macrophages in CRS (Salter 2018 Sci Signal; Giavridis "
                  "2018 Nat Med; Sterner 2019 Blood); size hand-tuned with cd28_rho_max_x "
                  "(same rows and grid): at 1.0 ZUMA-1 CRS (Lee) was 67 % against 93 % "
                  "published with the CAR-T peak 4× too high, at 0.05 it is 84 %; session "
                  "25, with K_my_car 3 -> 0.1 and the cytokine competence (cart.py k_qc): "
                  "0.2 (CD28 K 0.02 against 0.15 before; 1.0 made ZUMA-1's onset day 4-6 "
                  "against 2 and its febrile share 61-74 %, against a published CRS of any "
                  "grade of 93 %: `cartsim trial trace zuma1`, 300 patients, K_my_car 0.1 / "
                  "0.3, k_qc 0.3 / 0.6); session 50: 0.2 -> 0.02 with K_my_car 0.1 -> 1.0, "
                  "so the CD28 products keep their 0.02 × 10⁹/L and the 4-1BB ones signal "
                  "less (docs/validation.md 'Session 50')",
                  "CD28 co-stimulation: multiplier of the antigen-engaged CAR-T concentration "
                  "that half-activates myeloid cells by contact (< 1: each engaged CD28 CAR-T "
                  "activates more myeloid cells; no host-side toxicity constant differs)"),
    ParameterSpec("cd28_K_antigen_x", "× K_antigen", 0.5, 0.05, 2.0,
                  "direction: axi-cel's CD19-CD28ζ construct (CD28 hinge/transmembrane and "
                  "signalling) recognises antigen-low targets that tisa-cel's CD19-4-1BBζ "
                  "misses (Majzner 2020 Cancer Discov 10:702); size assumed and hand-tuned "
                  "with w_mural (inflammation.py), session 26: at 0.5 the same ZUMA-1 "
                  "patients on axi-cel vs tisa-cel (2e6/kg, same protocol, 600 each) reach "
                  "ICANS >= 3 27.0 vs 14.0 % and CR 68.8 vs 63.8 % (29.0 vs 22.0 % and 67.0 vs "
                  "67.7 % in the model before session 26)",
                  "CD28 co-stimulation: multiplier of the antigen density for half-maximal "
                  "engagement (< 1: the CAR engages antigen-low cells)"),
    ParameterSpec("cd28_mem_age_per_decade_x", "× mem_age_per_decade", 0.0, 0.0, 2.0,
                  "direction: CD28 CAR-T in children do not persist (NCI CD19-28z, children "
                  "and young adults, median age 13: CAR detectable to day 68 by qPCR, "
                  "clinical_targets.csv line 117 note) while 4-1BB products persist for months "
                  "to years in children; 4-1BB signalling drives central-memory "
                  "differentiation and oxidative metabolism, CD28 effector memory (Kawalekar "
                  "2016 Immunity 44:380), so a child's naive/stem-like starting material does "
                  "not turn into persistence on a CD28 product. Size assumed (0); session 26: "
                  "with the youth factor (1) the untransplanted NCI CD19-28z children in "
                  "MRD-negative CR kept a median 25 CAR-T/µL at day 90 and 12 at day 200 "
                  "(cartsim trial trace, 84 of the first 120) and 64 % were cured without "
                  "HSCT (docs/validation.md 'Session 26')",
                  "CD28 co-stimulation: multiplier of the youth factor of memory CAR-T decay "
                  "(population.py mem_age_per_decade; 0 = a CD28 child's memory decays as an "
                  "adult's)"),
    ParameterSpec("cd28_ex_overload_x", "× ex_overload", 5.0, 0.0, 100.0,
                  "direction: CD28 signalling under strong or chronic antigen drives "
                  "exhaustion and activation-induced death, 4-1BB protects (Long 2015 Nat Med "
                  "21:581; Kawalekar 2016 Immunity 44:380); CD28 B-ALL products reach fewer "
                  "remissions than 4-1BB ones (NCI CD19-28z 67 %, ZUMA-4 71 % against ELIANA "
                  "81 %). Size hand-chosen with overload_ratio (1000), session 17, against "
                  "the NCI CD19-28z rows among the 18 calibration studies of the targets file "
                  "(a 2-dimensional TPE fit, best 22.5 with overload_ratio 2814; 10 with 1000 "
                  "lies on the same ridge, deviance 1097 -> 1024 and rows 158 -> 159 on the whole "
                  "library; docs/validation.md 'Session 17'); 1 = no CD28 difference (the model "
                  "before session 17; × 3–4 with overload_ratio 10 cost ZUMA-1's ORR, session "
                  "16). 10 → 5 in session 46, once the specs carried their lighter "
                  "lymphodepletion courses (session 45): traced ZUMA-4 responders lost to the "
                  "lighter course respond again with either the help term or this overload "
                  "off; over three root seeds (`cartsim validate --replicates 3`) 5 gave rows "
                  "180.0 → 180.7 of 234, headline 15.7 → 16.3 of 17 and deviance 800.7 → "
                  "799.2 (2 gave 171 rows and 12 headline on the spec seeds; "
                  "docs/validation.md 'Session 46')", "CD28 co-stimulation: multiplier of the "
                  "antigen-overload "
                  "exhaustion (ex_overload)"),
    ParameterSpec("cd28_k_kill_x", "× k_kill", 1.0, 0.25, 5.0,
                  "direction: CD28 signalling is faster and stronger than 4-1BB's (Salter 2018 "
                  "Sci Signal 11:eaat6753: more and quicker phosphorylation; more cytokine and "
                  "cytolytic output per activated cell), the counterpart of the shorter "
                  "persistence that cd28_d_E_x expresses; 1 = as 4-1BB (default); a lever for "
                  "refitting the CD28 kinetics (session 49)",
                  "CD28 co-stimulation: multiplier of the maximal kills per effector k_kill"),
)
COSTIM_EFFECTS: dict[str, dict[str, float]] = {
    "4-1BB": {},
    # no host-side toxicity constants: CD28's earlier, larger CRS/ICANS follows from its
    # expansion and its stronger contact signal to myeloid cells (K_my_car; inflammation.py)
    "CD28": {s.name[5:-2]: s.default for s in CD28_PARAMS},
    "CD28+4-1BB": {"rho_max": 1.2, "k_em": 0.8, "d_M": 1.5, "k_ex": 1.2},
    "none": {"rho_max": 0.35, "k_em": 0.3, "d_M": 10.0},
}
#: Generation 4 (armoured "TRUCKs") and 5 (IL-2Rβ fragment) effects are set by the armour list.
ARMOUR_EFFECTS: dict[str, dict[str, float]] = {
    "IL-18": {"p_ifng": 2.0, "k_my": 1.5},  # review B5
    "CD40L": {"bystander": 2.0, "k_my": 1.3},  # review B4
    "CD2": {},  # restores the CD58-lost synapse; handled in population (review B11)
    "IL-2Rb": {"r_homeo": 2.0, "d_M": 0.6},  # 5th generation JAK–STAT signal (review A3)
}


@dataclass(frozen=True)
class Construct:
    """What the CAR recognises and how it signals."""

    name: str
    targets: tuple[str, ...] = ("CD19",)
    costim: Costim = "4-1BB"
    generation: int = 2
    affinity: float = 1.0
    format: Format = "single"
    armour: tuple[str, ...] = ()
    memory_fraction: float = 0.3

    def __post_init__(self) -> None:
        if not self.targets:
            raise InvalidInputError("construct.targets", "at least one of " +
                                    ", ".join(KNOWN_TARGETS), self.targets)
        for t in self.targets:
            if t not in KNOWN_TARGETS:
                raise UnknownNameError("construct.targets", t, KNOWN_TARGETS)
        if self.costim not in COSTIM_EFFECTS:
            raise UnknownNameError("construct.costim", self.costim, tuple(COSTIM_EFFECTS))
        if self.generation not in (1, 2, 3, 4, 5):
            raise InvalidInputError("construct.generation", "1–5", self.generation)
        if not 1e-3 <= self.affinity <= 1e3:
            raise InvalidInputError("construct.affinity", "[0.001, 1000] relative to FMC63",
                                    self.affinity)
        if not 0.0 <= self.memory_fraction <= 1.0:
            raise InvalidInputError("construct.memory_fraction", "[0, 1]", self.memory_fraction)
        for a in self.armour:
            if a not in ARMOUR_EFFECTS:
                raise UnknownNameError("construct.armour", a, KNOWN_ARMOUR)
        if len(self.targets) > 1 and self.format == "single":
            raise InvalidInputError("construct.format", "tandem, bicistronic or cocktail for "
                                    "more than one target", self.format)

    def multipliers(self, costim: dict[str, float] | None = None) -> dict[str, float]:
        """Upstream-parameter multipliers implied by co-stimulation and armour; ``costim``
        replaces this construct's co-stimulation entry of :data:`COSTIM_EFFECTS` (the
        patient builder passes the CD28 values of the parameter set in force)."""
        out: dict[str, float] = dict(COSTIM_EFFECTS[self.costim] if costim is None
                                     else costim)
        for a in self.armour:
            for k, v in ARMOUR_EFFECTS[a].items():
                out[k] = out.get(k, 1.0) * v
        if self.format == "cocktail":
            # two products infused together: each antigen is seen by half the cells
            out["k_kill"] = out.get("k_kill", 1.0) * 0.75
        return out


@dataclass(frozen=True)
class DoseRule:
    """Label dose: ``per_kg`` cells/kg up to ``max_weight_kg`` and a flat dose above it, or
    ``flat`` only. ``per_kg_range``/``flat_range`` are the label's allowed ranges."""

    per_kg: float | None = None
    per_kg_range: tuple[float, float] | None = None
    max_weight_kg: float | None = None
    flat: float | None = None
    flat_range: tuple[float, float] | None = None
    cap: float | None = None

    def dose(self, weight_kg: float) -> float:
        """Total CAR+ cells for a patient of this weight."""
        if self.per_kg is not None and (self.max_weight_kg is None or
                                        weight_kg <= self.max_weight_kg):
            d = self.per_kg * weight_kg
            return min(d, self.cap) if self.cap else d
        if self.flat is None:
            raise InvalidInputError("weight", f"≤ {self.max_weight_kg} kg for this product's "
                                    "per-kg dose", weight_kg)
        return self.flat


@dataclass(frozen=True)
class Product:
    """A product: construct, label dose, indication and source. ``disease_dose_rules`` holds the
    label doses that differ by disease (brexucabtagene: B-ALL 1×10⁶/kg, MCL 2×10⁶/kg);
    :meth:`dose_rule_for` picks one, ``dose_rule`` is the default."""

    name: str
    construct: Construct
    dose_rule: DoseRule
    indication: str
    source: str
    aliases: tuple[str, ...] = field(default_factory=tuple)
    disease_dose_rules: tuple[tuple[str, DoseRule], ...] = ()

    def dose_rule_for(self, disease: str | None) -> DoseRule:
        """The label dose rule for ``disease`` (the default rule when it has no own one)."""
        return dict(self.disease_dose_rules).get(disease or "", self.dose_rule)


PRESETS: dict[str, Product] = {
    "tisagenlecleucel": Product(
        "tisagenlecleucel",
        Construct("CTL019 (FMC63-41BBζ)", ("CD19",), "4-1BB", 2, 1.0, memory_fraction=0.3),
        DoseRule(per_kg=1.5e6, per_kg_range=(0.2e6, 5.0e6), max_weight_kg=50.0, flat=1.0e8,
                 flat_range=(0.1e8, 2.5e8)),
        "B-ALL ≤ 25 y (DLBCL: 0.6–6.0×10⁸ flat)",
        "Kymriah USPI 2017/2022 (B-ALL: 0.2–5.0×10⁶/kg ≤ 50 kg; 0.1–2.5×10⁸ > 50 kg)",
        ("tisa-cel", "kymriah", "ctl019"),
    ),
    "axicabtagene_ciloleucel": Product(
        "axicabtagene_ciloleucel",
        Construct("KTE-C19 (FMC63-CD28ζ)", ("CD19",), "CD28", 2, 1.0, memory_fraction=0.2),
        DoseRule(per_kg=2.0e6, per_kg_range=(1.0e6, 2.0e6), cap=2.0e8),
        "LBCL; FL (ZUMA-5)", "Yescarta USPI (LBCL and FL: 2×10⁶/kg, max 2×10⁸)",
        ("axi-cel", "yescarta"),
    ),
    # KTE-X19: the axi-cel construct made by a T-cell-enriching process (circulating
    # lymphoma cells removed from the apheresis product, Wang 2020 NEJM 382:1331); the model
    # has no tumour-contaminated product, so the enrichment changes no parameter here
    "brexucabtagene_autoleucel": Product(
        "brexucabtagene_autoleucel",
        Construct("KTE-X19 (FMC63-CD28ζ, T-cell enriched)", ("CD19",), "CD28", 2, 1.0,
                  memory_fraction=0.2),
        DoseRule(per_kg=1.0e6, per_kg_range=(0.5e6, 2.0e6), cap=1.0e8),
        "adult B-ALL; MCL (ZUMA-2: 2×10⁶/kg, max 2×10⁸)",
        "Tecartus USPI (ALL: 1×10⁶/kg, max 1×10⁸; MCL: 2×10⁶/kg, max 2×10⁸)",
        ("brexu-cel", "tecartus", "kte-x19"),
        disease_dose_rules=(("mcl", DoseRule(per_kg=2.0e6, per_kg_range=(0.5e6, 2.0e6),
                                             cap=2.0e8)),),
    ),
    "lisocabtagene_maraleucel": Product(
        "lisocabtagene_maraleucel",
        Construct("JCAR017 (FMC63-41BBζ, CD4:CD8 1:1)", ("CD19",), "4-1BB", 2, 1.0,
                  memory_fraction=0.35),
        DoseRule(flat=1.0e8, flat_range=(0.5e8, 1.1e8)),
        "LBCL", "Breyanzi USPI (50–110×10⁶ CAR+ T cells flat)",
        ("liso-cel", "breyanzi", "jcar017"),
    ),
}

_ALIASES = {a: k for k, prod in PRESETS.items() for a in (k, *prod.aliases)}


def get_product(name: str) -> Product:
    """A preset by name or common alias (case-insensitive)."""
    key = name.strip().lower().replace(" ", "_")
    if key not in _ALIASES:
        raise UnknownNameError("product", name, sorted(_ALIASES))
    return PRESETS[_ALIASES[key]]
