"""CRS/ICANS management protocol as data, and its vectorised daily decision function.

A protocol is a TOML file (shipped ones live in ``cartsim/data/protocols``) validated with
pydantic; a file may name a ``base`` protocol and override only some settings. The simulator
calls :meth:`Policy.decide` once per day for all patients::

    policy = load_protocol("default")        # or a path to a TOML file
    state = policy.initial_state(n_patients)
    actions, state = policy.decide(day, obs, state)

See ``docs/clinic.md`` for the ``obs``/``actions`` contract and every decision rule.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cartsim._fastnp import nan_to_num
from cartsim.clinic._arrays import trusted_inputs
from cartsim.clinic.crs import (
    DEVICE_CODE,
    OXYGEN_DEVICES,
    hypotension_component,
    lee2014_crs_grade,
    oxygen_component,
    support_features,
)
from cartsim.clinic.dosing import tocilizumab_dose_mg
from cartsim.clinic.icans import astct_icans_grade
from cartsim.clinic.neurotox import ctcae_neuro_grade
from cartsim.errors import InvalidInputError, UnknownNameError, pydantic_message

PROTOCOL_DIR = Path(__file__).resolve().parent.parent / "data" / "protocols"

# --------------------------------------------------------------------------------------------
# Configuration schema
# --------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GradingConfig(_Model):
    """Grading thresholds used at the bedside."""

    fever_threshold_c: float = Field(38.0, ge=37.0, le=40.0)
    capd_age_cutoff_y: float = Field(12.0, ge=0.0, le=21.0)
    # the scale whose grade the ``icans_steroids`` grades (and the refractory ICANS rule) read:
    # ASTCT ICANS (2019 consensus, the ASCO default) or the CTCAE neurological-event grade the
    # pre-consensus trials managed by (ZUMA-1, ELIANA: CTCAE v4.03). The reported
    # ``icans_grade`` action stays ASTCT either way.
    neuro_scale: Literal["astct", "ctcae_4.03", "ctcae_5.0"] = "astct"
    # the CRS scale whose grade the tocilizumab, CRS-steroid and refractory-CRS rules read:
    # ASTCT (the bedside default) or Lee 2014, by which ZUMA-1 and the NCI trials graded and
    # treated (grade 3: high-dose or several vasopressors, FiO2 >= 40 %; ASTCT 3: any
    # vasopressor, high-flow oxygen). The reported ``crs_grade`` action stays ASTCT either way.
    crs_scale: Literal["astct", "lee2014"] = "astct"
    # Lee 2014's "high-dose" vasopressor (norepinephrine >= 20 ug/min) read from the MAP deficit
    # the first agent answers (the trial endpoints' norepinephrine_ug_min_per_mmhg; a test keeps
    # them equal)
    norepinephrine_ug_min_per_mmhg: float = Field(2.0, ge=0.0, le=10.0)


class TocilizumabConfig(_Model):
    """Tocilizumab dosing and triggers (labels; ASCO 2021)."""

    mg_per_kg: float = Field(8.0, gt=0, le=12)
    max_mg: float = Field(800.0, gt=0, le=1200)
    child_mg_per_kg: float = Field(12.0, gt=0, le=12)
    child_below_kg: float = Field(30.0, ge=0, le=60)
    min_interval_h: float = Field(8.0, ge=8.0, le=72)
    max_doses_24h: int = Field(3, ge=1, le=3)
    max_doses_total: int = Field(4, ge=1, le=4)
    max_doses_per_day: int = Field(1, ge=1, le=3)
    trigger_crs_grade: int = Field(2, ge=1, le=4)
    repeat_if_not_improved: bool = True
    il6_fold_trigger: float | None = Field(None, gt=1.0, le=1000.0)
    il6_min_crs_grade: int = Field(1, ge=0, le=4)
    prophylactic_days: list[int] = Field(default_factory=list)
    # "severe CRS with haemodynamic instability" (the CTL019/Penn algorithm, KYMRIAH label):
    # when either is set, the grade trigger also needs at least this many vasopressors today
    # or at least this oxygen device (0 / None: no such requirement)
    require_vasopressors_at_least: int = Field(0, ge=0, le=3)
    require_oxygen_device_at_least: str | None = None

    @model_validator(mode="after")
    def _known_required_device(self) -> TocilizumabConfig:
        dev = self.require_oxygen_device_at_least
        if dev is not None and dev not in OXYGEN_DEVICES[1:]:
            raise ValueError("require_oxygen_device_at_least must be one of "
                             + ", ".join(OXYGEN_DEVICES[1:]))
        return self


class CrsSteroidConfig(_Model):
    """Corticosteroids for CRS by ASTCT grade (ASCO 2021)."""

    grade1_dexamethasone_mg_day: float = Field(0.0, ge=0, le=200)
    grade2_dexamethasone_mg_day: float = Field(20.0, ge=0, le=200)
    grade2_requires_prior_tocilizumab: bool = True
    grade3_dexamethasone_mg_day: float = Field(40.0, ge=0, le=200)
    grade4_methylprednisolone_mg_day: list[float] = Field(
        default_factory=lambda: [1000.0, 1000.0, 1000.0, 500.0, 500.0, 250.0, 250.0],
        min_length=1,
    )
    grade4_maintenance_mg_day: float = Field(120.0, ge=0, le=2000)
    maintenance_until_grade_at_most: int = Field(1, ge=0, le=3)
    escalate_when_tocilizumab_unavailable: bool = True
    # every CRS steroid (any grade) only after tocilizumab on an earlier day (Penn algorithm:
    # steroids when CRS does not respond to tocilizumab)
    require_prior_tocilizumab: bool = False
    # with require_prior_tocilizumab: at least this many tocilizumab doses on earlier days (CHOP/
    # Penn: "tocilizumab in one or two doses, then adding corticosteroids")
    prior_tocilizumab_doses_at_least: int = Field(1, ge=1, le=4)
    # a CRS steroid also needs, that day, the severity the tocilizumab rule requires
    # (tocilizumab.require_vasopressors_at_least / require_oxygen_device_at_least): the KYMRIAH
    # label (clinical_standards.md §7.4) gives tocilizumab, then methylprednisolone if there is
    # no improvement, in its "moderate to aggressive intervention" tier (high-dose or multiple
    # vasopressors, ventilation); a patient back in its "mild intervention" tier (oxygen, fluids,
    # low-dose vasopressors) gets supportive care. Needs such a tocilizumab severity (checked
    # when the protocol is loaded)
    require_tocilizumab_severity: bool = False

    @model_validator(mode="after")
    def _doses_in_range(self) -> CrsSteroidConfig:
        if any(d < 0 or d > 2000 for d in self.grade4_methylprednisolone_mg_day):
            raise ValueError("grade4_methylprednisolone_mg_day values must be in [0, 2000]")
        return self


class IcansSteroidConfig(_Model):
    """Corticosteroids for ICANS by ASTCT grade (ASCO 2021)."""

    grade1_dexamethasone_mg_day: float = Field(0.0, ge=0, le=200)
    grade2_dexamethasone_mg_day: float = Field(20.0, ge=0, le=200)
    grade3_dexamethasone_mg_day: float = Field(40.0, ge=0, le=200)
    grade4_methylprednisolone_mg_day: list[float] = Field(
        default_factory=lambda: [1000.0, 1000.0, 1000.0], min_length=1
    )


class RefractoryConfig(_Model):
    """Anti-cytokine therapy for steroid-refractory CRS or ICANS."""

    agent: Literal["anakinra", "siltuximab", "none"] = "anakinra"
    crs_grade_at_least: int = Field(3, ge=1, le=4)
    icans_grade_at_least: int = Field(3, ge=1, le=4)
    # whether the agent is also given for steroid-refractory ICANS (anakinra: yes, ASCO/ASTCT;
    # siltuximab in the CTL019 era: for refractory CRS only)
    treat_icans: bool = True
    after_steroid_days: int = Field(2, ge=0, le=14)
    anakinra_mg_per_kg_day: float = Field(8.0, gt=0, le=10)
    anakinra_max_mg_day: float = Field(400.0, gt=0, le=1000)
    siltuximab_mg_per_kg: float = Field(11.0, gt=0, le=15)
    siltuximab_min_interval_days: int = Field(21, ge=1, le=60)


class OxygenRung(_Model):
    """One rung of the oxygen ladder."""

    max_deficit_pct: float = Field(gt=0, le=100)
    device: str

    @model_validator(mode="after")
    def _known_device(self) -> OxygenRung:
        if self.device not in OXYGEN_DEVICES[1:]:
            raise ValueError("device must be one of " + ", ".join(OXYGEN_DEVICES[1:]))
        return self


class HemodynamicConfig(_Model):
    """The haemodynamic rule: MAP target by age and the deficits that call for fluids,
    vasopressors and vasopressin. Its defaults are the reference rule the trial's endpoint
    layer applies when no protocol records support (the shipped default protocol uses the same
    values; a test keeps them equal)."""

    map_target_adult_mmhg: float = Field(65.0, ge=40, le=90)
    child_below_age_y: float = Field(10.0, ge=0, le=18)
    map_target_child_base_mmhg: float = Field(50.0, ge=30, le=80)
    map_target_child_per_year_mmhg: float = Field(1.5, ge=0, le=5)
    fluid_bolus_ml_per_kg: float = Field(20.0, ge=0, le=60)
    fluid_bolus_max_ml: float = Field(1000.0, ge=0, le=3000)
    fluid_responsive_deficit_mmhg: float = Field(5.0, ge=0, le=30)
    second_vasopressor_deficit_mmhg: float = Field(20.0, gt=0, le=80)
    third_vasopressor_deficit_mmhg: float = Field(30.0, gt=0, le=100)
    vasopressin_deficit_mmhg: float = Field(25.0, gt=0, le=100)


class SupportiveConfig(HemodynamicConfig):
    """Fluids, vasopressors and oxygen chosen from physiology."""

    spo2_target_pct: float = Field(92.0, ge=85, le=100)
    blow_by_below_age_y: float = Field(1.0, ge=0, le=5)
    oxygen_ladder: list[OxygenRung] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> SupportiveConfig:
        if not (self.fluid_responsive_deficit_mmhg < self.second_vasopressor_deficit_mmhg
                <= self.third_vasopressor_deficit_mmhg):
            raise ValueError("need fluid_responsive < second_vasopressor <= third_vasopressor")
        lims = [r.max_deficit_pct for r in self.oxygen_ladder]
        if lims != sorted(lims) or len(set(lims)) != len(lims):
            raise ValueError("oxygen_ladder max_deficit_pct must be strictly increasing")
        return self


def map_target(s: HemodynamicConfig, age_y: NDArray[np.float64]) -> NDArray[np.float64]:
    """MAP target: adult value, or base + per-year × age below ``child_below_age_y``."""
    child = s.map_target_child_base_mmhg + s.map_target_child_per_year_mmhg * age_y
    return np.where(age_y < s.child_below_age_y, np.minimum(child, s.map_target_adult_mmhg),
                    s.map_target_adult_mmhg)


def hemodynamic_support(
    s: HemodynamicConfig, map_mmhg: NDArray[np.float64], age_y: NDArray[np.float64],
    weight_kg: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.int8], NDArray[np.bool_], NDArray[np.bool_]]:
    """Fluids, vasopressor count and vasopressin from the MAP deficit below target.

    deficit = target − MAP without vasopressors (NaN → 0). deficit > 0: hypotension, one
    fluid bolus (ml/kg, capped); > fluid_responsive: 1 vasopressor; > second: 2; > third: 3;
    > vasopressin threshold: vasopressin added (not counted among vasopressors).
    """
    deficit = nan_to_num(map_target(s, age_y) - map_mmhg, nan=0.0)
    hypotension = deficit > 0
    w = nan_to_num(weight_kg, nan=70.0)
    fluids = np.where(hypotension, np.minimum(s.fluid_bolus_ml_per_kg * w,
                                              s.fluid_bolus_max_ml), 0.0)
    n_vp = ((deficit > s.fluid_responsive_deficit_mmhg).astype(np.int8)
            + (deficit > s.second_vasopressor_deficit_mmhg)
            + (deficit > s.third_vasopressor_deficit_mmhg)).astype(np.int8)
    vasopressin = deficit > s.vasopressin_deficit_mmhg
    return fluids, n_vp, vasopressin, hypotension


class IvigConfig(_Model):
    """IVIG replacement by IgG (EBMT/JACIE, ASCO)."""

    igg_below_mg_dl: float = Field(400.0, ge=0, le=2000)
    dose_g_per_kg: float = Field(0.4, ge=0, le=2)
    min_interval_days: int = Field(28, ge=1, le=90)


class GcsfConfig(_Model):
    """G-CSF policy (EHA/EBMT ICAHT recommendations; ASCO)."""

    enabled: bool = True
    anc_below_per_ul: float = Field(500.0, ge=0, le=5000)
    from_day: int = Field(14, ge=0, le=365)
    withhold_if_crs_grade_at_least: int = Field(2, ge=1, le=5)
    withhold_if_icans_grade_at_least: int = Field(1, ge=1, le=5)


class TransfusionConfig(_Model):
    """Platelet and red-cell transfusion by the day's count, at the restrictive thresholds of
    the AABB guidelines: prophylactic platelets at ≤ 10,000/µL in therapy-induced
    hypoproliferative thrombocytopenia (Kaufman 2015 Ann Intern Med 162:205) and red cells below
    7 g/dL haemoglobin (Carson 2023 JAMA 330:1892). One transfusion a day at most; what it
    raises the count by is the simulator's (:data:`cartsim.simulation.SIMULATION_PARAMS`)."""

    enabled: bool = True
    platelets_at_or_below_per_ul: float = Field(10000.0, ge=0, le=100000)
    hb_below_g_dl: float = Field(7.0, ge=0, le=15)


class ProphylaxisConfig(_Model):
    """Prophylactic corticosteroid given to every patient on fixed days (ZUMA-1 cohort 6:
    dexamethasone 10 mg on days 0, 1 and 2; Oluwole 2021)."""

    dexamethasone_mg_day: float = Field(0.0, ge=0, le=200)
    dexamethasone_days: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _days(self) -> ProphylaxisConfig:
        if any(d < 0 or d > 365 for d in self.dexamethasone_days):
            raise ValueError("dexamethasone_days must be days in [0, 365]")
        return self


class ProtocolConfig(_Model):
    """A whole management protocol (one TOML file)."""

    name: str = Field(min_length=1)
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    base: str | None = None
    grading: GradingConfig = GradingConfig()
    tocilizumab: TocilizumabConfig = TocilizumabConfig()
    crs_steroids: CrsSteroidConfig = CrsSteroidConfig()
    icans_steroids: IcansSteroidConfig = IcansSteroidConfig()
    refractory: RefractoryConfig = RefractoryConfig()
    supportive: SupportiveConfig
    ivig: IvigConfig = IvigConfig()
    gcsf: GcsfConfig = GcsfConfig()
    transfusion: TransfusionConfig = TransfusionConfig()
    prophylaxis: ProphylaxisConfig = ProphylaxisConfig()


def shipped_protocols() -> list[str]:
    """Names of the protocols shipped in ``cartsim/data/protocols``."""
    return sorted(p.stem for p in PROTOCOL_DIR.glob("*.toml"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError("protocol", "a valid TOML file", str(path), hint=str(exc)) from None
    except OSError as exc:
        raise InvalidInputError("protocol", "a readable TOML file", str(path),
                                hint=str(exc)) from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _resolve(name_or_path: str | Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        path = p
    elif str(name_or_path) in shipped_protocols():
        path = PROTOCOL_DIR / f"{name_or_path}.toml"
    else:
        raise UnknownNameError("protocol", str(name_or_path), shipped_protocols())
    if not path.exists():
        raise InvalidInputError("protocol", "an existing TOML file or " + ", ".join(
            shipped_protocols()), str(path))
    raw = _read_toml(path)
    base = raw.get("base")
    if base is None:
        return raw
    if str(base) in seen:
        raise InvalidInputError("base", "a protocol that does not inherit from itself", base)
    base_path = Path(str(base))
    if not base_path.is_absolute() and (path.parent / f"{base}.toml").exists():
        base_path = path.parent / f"{base}.toml"
    merged = _merge(_resolve(base_path if base_path.exists() else str(base),
                             (*seen, str(base))), raw)
    merged["base"] = base
    return merged


def validate_protocol(raw: dict[str, Any]) -> ProtocolConfig:
    """Validate a protocol mapping; the error names the first bad field (dotted path)."""
    try:
        cfg = ProtocolConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "protocol"
        raise InvalidInputError(loc, pydantic_message(dict(err), with_value=False),
                                err.get("input")) from None
    t = cfg.tocilizumab
    if cfg.crs_steroids.require_tocilizumab_severity and (
            t.require_vasopressors_at_least <= 0 and t.require_oxygen_device_at_least is None):
        raise InvalidInputError(
            "crs_steroids.require_tocilizumab_severity",
            "true only with a severity in the tocilizumab rule "
            "(tocilizumab.require_vasopressors_at_least >= 1 or require_oxygen_device_at_least)",
            True)
    return cfg


def load_protocol(name_or_path: str | Path = "default") -> Policy:
    """Load a shipped protocol by name, or a TOML file by path, and return its :class:`Policy`."""
    return Policy(validate_protocol(_resolve(name_or_path)))


# --------------------------------------------------------------------------------------------
# Observations, state and actions
# --------------------------------------------------------------------------------------------

#: obs key → (lower, upper) allowed (NaN = missing is always accepted except for ``alive``).
OBS_SPEC: dict[str, tuple[float, float]] = {
    "temperature_c": (25.0, 45.0),
    "map_mmhg": (0.0, 250.0),
    "spo2_room_air_pct": (0.0, 100.0),
    "ice_score": (0.0, 10.0),
    "capd_score": (0.0, 32.0),
    "consciousness": (0.0, 3.0),
    "seizure": (0.0, 2.0),
    "motor_weakness": (0.0, 1.0),
    "cerebral_edema": (0.0, 2.0),
    "il6_pg_ml": (0.0, 1e7),
    "il6_baseline_pg_ml": (0.0, 1e7),
    "anc_per_ul": (0.0, 1e6),
    "platelets_per_ul": (0.0, 1e7),
    "hemoglobin_g_dl": (0.0, 30.0),
    "igg_mg_dl": (0.0, 1e4),
    "crp_mg_l": (0.0, 5e3),
    "ferritin_ng_ml": (0.0, 1e7),
    "weight_kg": (0.5, 400.0),
    "age_y": (0.0, 130.0),
    "alive": (0.0, 1.0),
}
_INTEGER_OBS = ("consciousness", "seizure", "motor_weakness", "cerebral_edema")

#: actions key → dtype.
ACTION_DTYPES: dict[str, type] = {
    "tocilizumab_mg": np.float64,
    "dexamethasone_mg": np.float64,
    "methylprednisolone_mg": np.float64,
    "anakinra_mg": np.float64,
    "siltuximab_mg": np.float64,
    "fluid_bolus_ml": np.float64,
    "vasopressors": np.int8,
    "vasopressin": np.bool_,
    "oxygen_device": np.int8,
    "ivig_g": np.float64,
    "gcsf": np.bool_,
    "platelet_transfusion": np.bool_,
    "rbc_transfusion": np.bool_,
    "crs_grade": np.int8,
    "icans_grade": np.int8,
}


@dataclass
class PolicyState:
    """Per-patient counters carried from one day to the next (all arrays of length N)."""

    toci_times_h: NDArray[np.float64]
    toci_count: NDArray[np.int64]
    anticytokine_started: NDArray[np.bool_]
    in_crs_episode: NDArray[np.bool_]
    prev_crs_grade: NDArray[np.int8]
    prev_icans_grade: NDArray[np.int8]
    crs_mp_day: NDArray[np.int64]
    icans_mp_day: NDArray[np.int64]
    steroid_days: NDArray[np.int64]
    last_siltuximab_day: NDArray[np.float64]
    last_ivig_day: NDArray[np.float64]

    def copy(self) -> PolicyState:
        """Deep copy (``decide`` never mutates its input state)."""
        return PolicyState(**{f.name: getattr(self, f.name).copy() for f in fields(self)})

    @property
    def n(self) -> int:
        """Number of patients."""
        return int(self.toci_count.shape[0])


def _validate_obs(obs: dict[str, Any], n: int | None) -> dict[str, NDArray[Any]]:
    missing = [k for k in OBS_SPEC if k not in obs]
    if missing:
        raise InvalidInputError("obs", "a dict with keys " + ", ".join(OBS_SPEC),
                                "missing " + ", ".join(missing))
    out: dict[str, NDArray[Any]] = {}
    for key, (lo, hi) in OBS_SPEC.items():
        try:
            arr = np.asarray(obs[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"obs['{key}']", "float array", obs[key]) from None
        if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
            raise InvalidInputError(f"obs['{key}']", f"an array of shape ({n},)", arr.shape)
        finite = arr[~np.isnan(arr)]
        if finite.size and (finite.min() < lo or finite.max() > hi):
            bad = finite[(finite < lo) | (finite > hi)][0]
            raise InvalidInputError(f"obs['{key}']", f"[{lo:g}, {hi:g}] or NaN", float(bad))
        if key in _INTEGER_OBS and finite.size and np.any(finite != np.round(finite)):
            raise InvalidInputError(f"obs['{key}']", "integer codes", obs[key])
        out[key] = arr
    if np.isnan(out["alive"]).any():
        raise InvalidInputError("obs['alive']", "true/false", "NaN")
    return out


class Policy:
    """A validated protocol with its vectorised daily decision function."""

    def __init__(self, config: ProtocolConfig) -> None:
        self.config = config
        self._ladder_limits = np.array([r.max_deficit_pct for r in config.supportive.oxygen_ladder])
        self._ladder_devices = np.array(
            [DEVICE_CODE[r.device] for r in config.supportive.oxygen_ladder]
            + [DEVICE_CODE["mechanical_ventilation"]], dtype=np.int8
        )
        self._crs_mp = np.array(config.crs_steroids.grade4_methylprednisolone_mg_day)
        self._icans_mp = np.array(config.icans_steroids.grade4_methylprednisolone_mg_day)

    @property
    def name(self) -> str:
        """Protocol name."""
        return self.config.name

    def initial_state(self, n_patients: int) -> PolicyState:
        """Counters for ``n_patients`` patients before day 0."""
        if not isinstance(n_patients, int | np.integer) or n_patients < 1:
            raise InvalidInputError("n_patients", "an integer ≥ 1", n_patients)
        n = int(n_patients)
        return PolicyState(
            toci_times_h=np.full((n, self.config.tocilizumab.max_doses_total), np.nan),
            toci_count=np.zeros(n, dtype=np.int64),
            anticytokine_started=np.zeros(n, dtype=bool),
            in_crs_episode=np.zeros(n, dtype=bool),
            prev_crs_grade=np.zeros(n, dtype=np.int8),
            prev_icans_grade=np.zeros(n, dtype=np.int8),
            crs_mp_day=np.full(n, -1, dtype=np.int64),
            icans_mp_day=np.full(n, -1, dtype=np.int64),
            steroid_days=np.zeros(n, dtype=np.int64),
            last_siltuximab_day=np.full(n, np.nan),
            last_ivig_day=np.full(n, np.nan),
        )

    # ---------------------------------------------------------------- supportive care
    def map_target(self, age_y: NDArray[np.float64]) -> NDArray[np.float64]:
        """MAP target for ``age_y`` under this protocol (:func:`map_target`)."""
        return map_target(self.config.supportive, age_y)

    def hemodynamic_support(
        self, map_mmhg: NDArray[np.float64], age_y: NDArray[np.float64],
        weight_kg: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], NDArray[np.int8], NDArray[np.bool_], NDArray[np.bool_]]:
        """This protocol's :func:`hemodynamic_support`."""
        return hemodynamic_support(self.config.supportive, map_mmhg, age_y, weight_kg)

    def oxygen_device(
        self, spo2_room_air_pct: NDArray[np.float64], age_y: NDArray[np.float64]
    ) -> NDArray[np.int8]:
        """Least device (code into :data:`OXYGEN_DEVICES`) that holds the SpO2 target.

        deficit = target − SpO2 on room air (NaN → 0). No device when deficit ≤ 0; otherwise the
        first ladder rung whose ``max_deficit_pct`` ≥ deficit, mechanical ventilation beyond the
        last rung. Infants below ``blow_by_below_age_y`` get blow-by instead of a low-flow
        cannula (same ASTCT component).
        """
        s = self.config.supportive
        deficit = nan_to_num(s.spo2_target_pct - spo2_room_air_pct, nan=0.0)
        rung = np.searchsorted(self._ladder_limits, deficit, side="left")
        dev = np.where(deficit > 0, self._ladder_devices[rung], DEVICE_CODE["none"])
        infant = (age_y < s.blow_by_below_age_y) & (dev == DEVICE_CODE["low_flow_nasal_cannula"])
        return np.where(infant, DEVICE_CODE["blow_by"], dev).astype(np.int8)

    # ---------------------------------------------------------------- daily decision
    def decide(
        self, day: int | float, obs: dict[str, Any], state: PolicyState
    ) -> tuple[dict[str, NDArray[Any]], PolicyState]:
        """Decide today's treatment for all patients; returns ``(actions, new_state)``.

        Vectorised over patients. The input ``state`` is not modified.
        """
        return self._decide(day, _validate_obs(obs, state.n), state)

    def decide_trusted(
        self, day: int | float, obs: dict[str, Any], state: PolicyState
    ) -> tuple[dict[str, NDArray[Any]], PolicyState]:
        """:meth:`decide` for a caller whose observations are already valid (the simulator,
        which range-checks the state every day and takes runaway patients out): the same
        actions and state, without the input checks of ``decide`` and of the graders it calls
        (most of its cost at a few hundred patients). Invalid input is not caught."""
        o = {key: np.asarray(obs[key], dtype=np.float64) for key in OBS_SPEC}
        with trusted_inputs():
            return self._decide(day, o, state)

    def _decide(
        self, day: int | float, o: dict[str, NDArray[Any]], state: PolicyState
    ) -> tuple[dict[str, NDArray[Any]], PolicyState]:
        """The day's decision: the rules below for the patients who need one, the known
        nothing-to-do answer for the rest (the same actions and state, bit for bit: every rule
        is per patient; ``tests/clinic/test_protocol_quiet.py`` compares the two paths)."""
        n = state.n
        if (self._quiet_day_possible(day)
                and all(v.shape == (n,) for v in o.values())):
            active = self._needs_decision(day, o, state)
            if not active.all():
                return self._decide_some(day, o, state, active)
        return self._decide_all(day, o, state)

    def _quiet_day_possible(self, day: int | float) -> bool:
        """False on the protocol's prophylaxis days (every patient is treated)."""
        cfg = self.config
        if int(day) in cfg.tocilizumab.prophylactic_days:
            return False
        return not (cfg.prophylaxis.dexamethasone_mg_day > 0
                    and float(day) in cfg.prophylaxis.dexamethasone_days)

    def _needs_decision(
        self, day: int | float, o: dict[str, NDArray[Any]], state: PolicyState
    ) -> NDArray[np.bool_]:
        """Patients for whom some rule could act today (a superset: a patient outside it gets
        no treatment, grade 0 and the quiet state update of :meth:`_decide_some`).

        Quiet means, for a patient alive today: no fever, MAP at or above target and SpO2 at
        or above target (no support), ICE 10 or not done, CAPD 0 or not done, no
        consciousness, seizure, motor or oedema finding, IgG not low with an IVIG dose due,
        no G-CSF indication, no count at a transfusion threshold, no IL-6 trigger that needs
        no grade; and for anyone, no CRS episode and no methylprednisolone course running."""
        cfg = self.config
        t = cfg.tocilizumab
        g = cfg.gcsf
        alive = o["alive"] == 1
        age = o["age_y"]
        weight = nan_to_num(o["weight_kg"], nan=70.0)
        with np.errstate(invalid="ignore"):
            acts = o["temperature_c"] >= cfg.grading.fever_threshold_c
            acts |= self.hemodynamic_support(o["map_mmhg"], age, weight)[3]  # hypotension
            acts |= self.oxygen_device(o["spo2_room_air_pct"], age) != DEVICE_CODE["none"]
            # any ICE below 10 or CAPD above 0 is grade ≥ 1 on the ASTCT and CTCAE scales
            acts |= (o["ice_score"] <= 9) | (o["capd_score"] >= 1)
            for key in ("consciousness", "seizure", "motor_weakness", "cerebral_edema"):
                acts |= nan_to_num(o[key]) != 0
            acts |= (o["igg_mg_dl"] < cfg.ivig.igg_below_mg_dl) & self._ivig_due(day, state)
            if g.enabled and day >= g.from_day:
                acts |= o["anc_per_ul"] < g.anc_below_per_ul
            platelets, rbc = self._transfusions(o)
            acts |= platelets | rbc
            if t.il6_fold_trigger is not None and t.il6_min_crs_grade < 1:
                with np.errstate(divide="ignore"):
                    acts |= o["il6_pg_ml"] / o["il6_baseline_pg_ml"] >= t.il6_fold_trigger
        return ((alive & acts) | state.in_crs_episode | (state.crs_mp_day >= 0)
                | (state.icans_mp_day >= 0))

    def _transfusions(self, o: dict[str, NDArray[Any]]
                      ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Patients whose platelet count / haemoglobin today is at its transfusion threshold
        (none when the protocol's transfusions are off; a missing count transfuses nobody)."""
        tr = self.config.transfusion
        if not tr.enabled:
            none = np.zeros(o["platelets_per_ul"].shape, dtype=bool)
            return none, none
        with np.errstate(invalid="ignore"):
            return (o["platelets_per_ul"] <= tr.platelets_at_or_below_per_ul,
                    o["hemoglobin_g_dl"] < tr.hb_below_g_dl)

    def _ivig_due(self, day: int | float, state: PolicyState) -> NDArray[np.bool_]:
        """Patients whose next IVIG dose may be given today (none yet, or the interval
        passed)."""
        with np.errstate(invalid="ignore"):
            return np.isnan(state.last_ivig_day) | (
                day - state.last_ivig_day >= self.config.ivig.min_interval_days)

    def _decide_some(
        self, day: int | float, o: dict[str, NDArray[Any]], state: PolicyState,
        active: NDArray[np.bool_],
    ) -> tuple[dict[str, NDArray[Any]], PolicyState]:
        """:meth:`_decide_all` for the ``active`` patients; the rest get nothing."""
        n = state.n
        st = state.copy()
        quiet = ~active
        st.in_crs_episode[quiet] = False
        st.prev_crs_grade[quiet] = 0
        st.prev_icans_grade[quiet] = 0
        st.steroid_days[quiet] = 0
        actions = {k: np.zeros(n, dtype=dt) for k, dt in ACTION_DTYPES.items()}
        idx = np.flatnonzero(active)
        if idx.size:
            sub = PolicyState(**{f.name: getattr(state, f.name)[idx] for f in fields(state)})
            acts, sub_st = self._decide_all(day, {k: v[idx] for k, v in o.items()}, sub)
            for k, v in acts.items():
                actions[k][idx] = v
            for f in fields(st):
                getattr(st, f.name)[idx] = getattr(sub_st, f.name)
        return actions, st

    def _decide_all(
        self, day: int | float, o: dict[str, NDArray[Any]], state: PolicyState
    ) -> tuple[dict[str, NDArray[Any]], PolicyState]:
        cfg = self.config
        st = state.copy()
        n = st.n
        alive = o["alive"] == 1
        age = o["age_y"]
        weight = nan_to_num(o["weight_kg"], nan=70.0)

        # supportive care from physiology
        fluids, n_vp, vasopressin, hypotension = self.hemodynamic_support(
            o["map_mmhg"], age, weight)
        device = self.oxygen_device(o["spo2_room_air_pct"], age)

        # ASTCT CRS grade at the bedside (fever + the support chosen), with fever masking
        fever = o["temperature_c"] >= cfg.grading.fever_threshold_c
        support = np.maximum(hypotension_component(hypotension, n_vp, vasopressin),
                             oxygen_component(device))
        fever_ok = fever | (st.in_crs_episode & st.anticytokine_started)
        crs_grade = np.where(fever_ok, np.maximum(support, 1), 0)
        crs_grade = np.where(fever_ok & ~fever & (support == 0), 0, crs_grade)
        crs_grade = np.where(alive, crs_grade, 0).astype(np.int8)
        st.in_crs_episode = alive & fever_ok & ~(~fever & (support == 0))
        # the grade the CRS treatment rules read (the protocol's era scale)
        treat_crs = crs_grade
        # (no CRS today in anyone: the Lee grade below is masked to 0 for every patient)
        if cfg.grading.crs_scale == "lee2014" and crs_grade.any():
            deficit = np.maximum(nan_to_num(
                self.map_target(age) - o["map_mmhg"], nan=0.0), 0.0)
            lee = np.asarray(lee2014_crs_grade(support_features(
                fever_ok, hypotension, n_vp, vasopressin, device, deficit,
                cfg.grading.norepinephrine_ug_min_per_mmhg)))
            treat_crs = np.where(alive & (crs_grade > 0), np.atleast_1d(lee), 0).astype(np.int8)

        icans_grade = astct_icans_grade(
            np.atleast_1d(o["ice_score"]), nan_to_num(o["consciousness"]),
            nan_to_num(o["seizure"]), nan_to_num(o["motor_weakness"]),
            nan_to_num(o["cerebral_edema"]), capd_score=o["capd_score"], age_y=age,
            capd_age_cutoff_y=cfg.grading.capd_age_cutoff_y,
        )
        icans_grade = np.where(alive, np.atleast_1d(icans_grade), 0).astype(np.int8)
        # the neurotoxicity grade the protocol treats by (its era's scale)
        neuro_grade = icans_grade
        if cfg.grading.neuro_scale != "astct":
            ctcae = ctcae_neuro_grade(
                np.atleast_1d(o["ice_score"]), nan_to_num(o["consciousness"]),
                nan_to_num(o["seizure"]), nan_to_num(o["motor_weakness"]),
                nan_to_num(o["cerebral_edema"]), capd_score=o["capd_score"], age_y=age,
                version=cfg.grading.neuro_scale.removeprefix("ctcae_"),
                capd_age_cutoff_y=cfg.grading.capd_age_cutoff_y,
            )
            neuro_grade = np.where(alive, np.minimum(np.atleast_1d(ctcae), 4), 0).astype(np.int8)

        prior_toci = state.toci_count > 0
        prior_toci_doses = state.toci_count.copy()
        toci_mg, toci_unavailable = self._tocilizumab(day, o, st, treat_crs, alive, weight,
                                                      n_vp, device)
        severe = (self._severe(n, n_vp, device)
                  if cfg.crs_steroids.require_tocilizumab_severity else None)
        dex, mp = self._steroids(st, treat_crs, neuro_grade, toci_unavailable, alive, prior_toci,
                                 prior_toci_doses, severe)
        pro = cfg.prophylaxis
        if pro.dexamethasone_mg_day > 0 and float(day) in pro.dexamethasone_days:
            dex = np.where(alive & (mp == 0), np.maximum(dex, pro.dexamethasone_mg_day), dex)
        anakinra, siltuximab = self._refractory(day, st, treat_crs, neuro_grade, weight, alive,
                                                toci_unavailable)
        st.anticytokine_started |= (toci_mg > 0) | (dex > 0) | (mp > 0)

        ivig = np.zeros(n)
        low_igg = alive & (o["igg_mg_dl"] < cfg.ivig.igg_below_mg_dl)
        give_ivig = low_igg & self._ivig_due(day, st)
        ivig = np.where(give_ivig, cfg.ivig.dose_g_per_kg * weight, 0.0)
        st.last_ivig_day = np.where(give_ivig, float(day), st.last_ivig_day)

        g = cfg.gcsf
        gcsf = (alive & g.enabled & (o["anc_per_ul"] < g.anc_below_per_ul) & (day >= g.from_day)
                & (crs_grade < g.withhold_if_crs_grade_at_least)
                & (icans_grade < g.withhold_if_icans_grade_at_least))

        platelets, rbc = self._transfusions(o)

        st.prev_crs_grade = treat_crs
        st.prev_icans_grade = icans_grade
        actions: dict[str, NDArray[Any]] = {
            "tocilizumab_mg": toci_mg,
            "dexamethasone_mg": dex,
            "methylprednisolone_mg": mp,
            "anakinra_mg": anakinra,
            "siltuximab_mg": siltuximab,
            "fluid_bolus_ml": np.where(alive, fluids, 0.0),
            "vasopressors": np.where(alive, n_vp, 0),
            "vasopressin": alive & vasopressin,
            "oxygen_device": np.where(alive, device, 0),
            "ivig_g": ivig,
            "gcsf": gcsf,
            "platelet_transfusion": alive & platelets,
            "rbc_transfusion": alive & rbc,
            "crs_grade": crs_grade,
            "icans_grade": icans_grade,
        }
        return {k: np.asarray(v).astype(ACTION_DTYPES[k]) for k, v in actions.items()}, st

    def _severe(self, n: int, n_vp: NDArray[np.int8] | None,
                device: NDArray[np.int8] | None) -> NDArray[np.bool_] | None:
        """Patients meeting the tocilizumab rule's vasopressor/oxygen requirement today (None
        when the rule sets none)."""
        t = self.config.tocilizumab
        if t.require_vasopressors_at_least <= 0 and t.require_oxygen_device_at_least is None:
            return None
        zeros = np.zeros(n, dtype=np.int8)
        vp = zeros if n_vp is None else n_vp
        dv = zeros if device is None else device
        severe = np.zeros(n, dtype=bool)
        if t.require_vasopressors_at_least > 0:
            severe |= vp >= t.require_vasopressors_at_least
        if t.require_oxygen_device_at_least is not None:
            severe |= dv >= DEVICE_CODE[t.require_oxygen_device_at_least]
        return severe

    def _tocilizumab(
        self, day: float, o: dict[str, NDArray[Any]], st: PolicyState,
        crs_grade: NDArray[np.int8], alive: NDArray[np.bool_], weight: NDArray[np.float64],
        n_vp: NDArray[np.int8] | None = None, device: NDArray[np.int8] | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        t = self.config.tocilizumab
        trigger = crs_grade >= t.trigger_crs_grade
        severe = self._severe(st.n, n_vp, device)
        if severe is not None:
            trigger &= severe
        if t.il6_fold_trigger is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                fold = o["il6_pg_ml"] / o["il6_baseline_pg_ml"]
            trigger |= (fold >= t.il6_fold_trigger) & (crs_grade >= t.il6_min_crs_grade)
        had = st.toci_count > 0
        if t.repeat_if_not_improved:
            # a repeat dose only while CRS is not improving (ASCO: "repeat if needed")
            trigger &= ~had | (crs_grade >= st.prev_crs_grade)
        prophylactic = (int(day) in t.prophylactic_days) & (float(day) == int(day)) & ~had
        want = alive & (trigger | prophylactic)
        dose = tocilizumab_dose_mg(weight, t.mg_per_kg, t.max_mg, t.child_mg_per_kg,
                                   t.child_below_kg)
        given = np.zeros(st.n, dtype=np.int64)
        blocked = np.zeros(st.n, dtype=bool)
        if not want.any():  # (the loop below would give nothing and block nothing)
            return given * dose, blocked
        rows = np.arange(st.n)
        for k in range(t.max_doses_per_day):
            now = float(day) * 24.0 + k * t.min_interval_h
            times = st.toci_times_h
            with np.errstate(invalid="ignore"):
                last = np.nanmax(np.where(np.isnan(times), -np.inf, times), axis=1)
                in24 = np.sum(times > now - 24.0, axis=1)
            ok = ((st.toci_count < t.max_doses_total) & (now - last >= t.min_interval_h)
                  & (in24 < t.max_doses_24h))
            cand = want & (given == k)
            if k > 0:
                cand &= crs_grade >= 3
            give = cand & ok
            blocked |= cand & ~ok & (k == 0)
            slot = np.minimum(st.toci_count, t.max_doses_total - 1)
            st.toci_times_h[rows[give], slot[give]] = now
            st.toci_count = st.toci_count + give
            given = given + give
        unavailable = want & blocked & (crs_grade >= t.trigger_crs_grade)
        return given * dose, unavailable

    def _course(self, day_idx: NDArray[np.int64], schedule: NDArray[np.float64],
                maintenance: float, keep: NDArray[np.bool_]) -> tuple[NDArray[Any], NDArray[Any]]:
        """Dose of a methylprednisolone course on its day ``day_idx`` (−1 = no course)."""
        active = day_idx >= 0
        in_sched = active & (day_idx < schedule.size)
        dose = np.where(in_sched, schedule[np.clip(day_idx, 0, schedule.size - 1)], 0.0)
        maint = active & ~in_sched & keep
        dose = np.where(maint, maintenance, dose)
        ended = active & ~in_sched & ~keep
        return dose, np.where(ended, -1, day_idx)

    def _steroids(
        self, st: PolicyState, crs_grade: NDArray[np.int8], icans_grade: NDArray[np.int8],
        toci_unavailable: NDArray[np.bool_], alive: NDArray[np.bool_],
        prior_toci: NDArray[np.bool_], prior_toci_doses: NDArray[np.int64] | None = None,
        severe: NDArray[np.bool_] | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """CRS and ICANS (``icans_grade``: the protocol's neuro-scale grade) steroids; the larger
        regimen wins, methylprednisolone replaces dex."""
        c = self.config.crs_steroids
        i = self.config.icans_steroids
        eff = crs_grade.astype(np.int64)
        if c.escalate_when_tocilizumab_unavailable:
            eff = np.where(toci_unavailable & (eff >= 2), np.minimum(eff + 1, 4), eff)
        # grade 2: only once tocilizumab was given on an earlier day (no improvement, ASCO)
        g2_ok = prior_toci if c.grade2_requires_prior_tocilizumab else np.ones_like(prior_toci)
        doses = prior_toci.astype(np.int64) if prior_toci_doses is None else prior_toci_doses
        any_ok = (doses >= c.prior_tocilizumab_doses_at_least if c.require_prior_tocilizumab
                  else np.ones_like(prior_toci))
        if severe is not None:
            any_ok = any_ok & severe
        crs_dex = np.select([eff >= 3, (eff == 2) & g2_ok, eff == 1],
                            [c.grade3_dexamethasone_mg_day, c.grade2_dexamethasone_mg_day,
                             c.grade1_dexamethasone_mg_day], 0.0)
        crs_dex = np.where(any_ok, crs_dex, 0.0)
        # grade-4 methylprednisolone course
        start = alive & (eff >= 4) & any_ok & (
            (st.crs_mp_day < 0) | (st.crs_mp_day >= self._crs_mp.size))
        st.crs_mp_day = np.where(start, 0, np.where(st.crs_mp_day >= 0, st.crs_mp_day + 1, -1))
        keep = crs_grade > c.maintenance_until_grade_at_most
        crs_mp, st.crs_mp_day = self._course(st.crs_mp_day, self._crs_mp,
                                             c.grade4_maintenance_mg_day, keep)
        icans_dex = np.select([icans_grade >= 3, icans_grade == 2, icans_grade == 1],
                              [i.grade3_dexamethasone_mg_day, i.grade2_dexamethasone_mg_day,
                               i.grade1_dexamethasone_mg_day], 0.0)
        start_i = alive & (icans_grade >= 4) & (st.icans_mp_day < 0)
        st.icans_mp_day = np.where(start_i, 0, np.where(st.icans_mp_day >= 0,
                                                        st.icans_mp_day + 1, -1))
        icans_mp, st.icans_mp_day = self._course(st.icans_mp_day, self._icans_mp, 0.0,
                                                 np.zeros_like(keep))
        mp = np.where(alive, np.maximum(crs_mp, icans_mp), 0.0)
        dex = np.where(alive & (mp == 0), np.maximum(crs_dex, icans_dex), 0.0)
        on = (mp > 0) | (dex > 0)
        st.steroid_days = np.where(on, st.steroid_days + 1, 0)
        return dex, mp

    def _refractory(
        self, day: float, st: PolicyState, crs_grade: NDArray[np.int8],
        icans_grade: NDArray[np.int8], weight: NDArray[np.float64], alive: NDArray[np.bool_],
        toci_unavailable: NDArray[np.bool_],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        r = self.config.refractory
        zeros = np.zeros(st.n)
        if r.agent == "none":
            return zeros, zeros
        long_steroids = st.steroid_days > r.after_steroid_days
        crs_ref = (crs_grade >= r.crs_grade_at_least) & long_steroids & (
            (st.toci_count >= 2) | toci_unavailable)
        icans_ref = (icans_grade >= r.icans_grade_at_least) & long_steroids & r.treat_icans
        refractory = alive & (crs_ref | icans_ref)
        if r.agent == "anakinra":
            dose = np.minimum(r.anakinra_mg_per_kg_day * weight, r.anakinra_max_mg_day)
            return np.where(refractory, dose, 0.0), zeros
        due = np.isnan(st.last_siltuximab_day) | (
            day - st.last_siltuximab_day >= r.siltuximab_min_interval_days)
        give = refractory & due
        st.last_siltuximab_day = np.where(give, float(day), st.last_siltuximab_day)
        return zeros, np.where(give, r.siltuximab_mg_per_kg * weight, 0.0)
