"""One virtual patient's model as SBML Level 3 (``cartsim export-sbml``).

Generated from the mechanism declarations, never written by hand: every state of the composed
model is an SBML parameter with a rate rule (its derivative as traced from the kernels,
:mod:`cartsim.sbml.trace`), every model parameter a constant parameter with its unit, value
for this patient and provenance in its notes, every shared quantity an assignment rule, and
the schedule (lymphodepletion, the CAR-T infusion, scheduled drugs) events that add their
amounts at the start of their day. SBML time 0 is the first simulated day (cartsim day −5,
the first day of lymphodepletion); the assignment rule ``day`` = time + ``first_day`` gives
cartsim's day (day 0 = infusion).

What SBML does not carry: the stochastic layer for small tumour clones (the exported model is
its deterministic skeleton: clones below ``stoch_threshold`` are not redrawn, antigen-loss
mutants arrive continuously through the MUT integral only) and the clinic's management
protocol (no drug given in response to CRS). Comparisons whose operands are parameters (e.g.
"does the product target CD20") are decided with this patient's values at export; the ones
involving states are ``piecewise``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cartsim.errors import InvalidInputError
from cartsim.model import layout
from cartsim.model.mechanism import Model
from cartsim.population import Cohort, build, doses
from cartsim.products import Product
from cartsim.sbml import units
from cartsim.sbml.trace import _CMP, Expr, TracedModel, check_trace, trace_model
from cartsim.simulation import LD_DAYS, LD_FIRST_DAY

#: cartsim day at SBML time 0: the first simulated day (the first day of lymphodepletion)
FIRST_DAY = LD_FIRST_DAY

_MATHML_NS = "http://www.w3.org/1998/Math/MathML"
_TIME_URL = "http://www.sbml.org/sbml/symbols/time"
_MATH_OPS = {"add": "plus", "sub": "minus", "mul": "times", "div": "divide", "pow": "power",
             "lt": "lt", "le": "leq", "gt": "gt", "ge": "geq", "eq": "eq", "ne": "neq",
             "exp": "exp", "ln": "ln"}


@dataclass(frozen=True)
class Dosing:
    """One event of the exported schedule: add ``amount`` to ``state`` at ``day``."""

    day: int
    state: str
    amount: float
    event: str
    unit: str


def _libsbml() -> Any:
    try:
        import libsbml
    except ImportError:
        raise InvalidInputError(
            "sbml", "python-libsbml installed (pip install 'cartsim[sbml]')", "not installed"
        ) from None
    return libsbml


def patient_schedule(cohort: Cohort, product: Product, p: np.ndarray, model: Model,
                     lymphodepletion: bool = True, drugs: Sequence[Any] = ()
                     ) -> list[list[Dosing]]:
    """The schedule :func:`cartsim.simulation.simulate` applies, per patient (same items)."""
    n = cohort.n
    dose = doses(cohort, product)
    mem = product.construct.memory_fraction
    out: list[list[Dosing]] = [[] for _ in range(n)]
    for i in range(n):
        if lymphodepletion:
            out[i] += [Dosing(d, "LD", 1.0, "lymphodepletion (Flu/Cy day)", "unit")
                       for d in LD_DAYS]
        out[i].append(Dosing(0, "M_b", float(mem * dose[i]), "CAR-T infusion, memory", "cells"))
        out[i].append(Dosing(0, "E_b", float((1.0 - mem) * dose[i]),
                             "CAR-T infusion, effector", "cells"))
    for d in drugs:
        route, _ = model.doses[d.name]
        amt = np.broadcast_to(np.asarray(d.amount, dtype=np.float64), (n,)).copy()
        inc = amt if route.convert is None else route.convert(amt, p, model.P)
        for i in range(n):
            out[i].append(Dosing(int(d.day), route.state, float(inc[i]), d.name, route.unit))
    return out


class _Writer:
    """MathML for traced expressions; shared subexpressions become assignment rules."""

    def __init__(self, traced: TracedModel, ids: dict[str, str]) -> None:
        self.traced, self.ids = traced, ids
        self.names: dict[int, str] = {}
        refs: dict[int, int] = {}
        seen: set[int] = set()
        stack: list[Expr] = [*traced.rates.values(), *traced.quantities.values()]
        while stack:
            e = stack.pop()
            for a in e.args:
                if isinstance(a, Expr):
                    refs[id(a)] = refs.get(id(a), 0) + 1
                    if id(a) not in seen:
                        seen.add(id(a))
                        stack.append(a)
        self.nodes = {id(e): e for e in traced.ctx.nodes.values()}
        k = 0
        for e in traced.ctx.nodes.values():  # creation order: operands before users
            if refs.get(id(e), 0) >= 2 and e.op not in ("num", "sym") and e.op not in _CMP:
                self.names[id(e)] = f"x{k}"
                k += 1

    def shared(self) -> list[tuple[str, Expr]]:
        return [(n, self.nodes[i]) for i, n in self.names.items()]

    def math(self, e: Expr, top: bool = True) -> str:
        if not top and id(e) in self.names:
            return f"<ci>{self.names[id(e)]}</ci>"
        op, a = e.op, e.args
        if op == "num":
            v = float(a[0])
            if np.isnan(v):
                return "<notanumber/>"
            if np.isinf(v):
                return "<infinity/>" if v > 0 else "<apply><minus/><infinity/></apply>"
            return f"<cn>{v!r}</cn>"
        if op == "sym":
            return f"<ci>{self.ids[a[0]]}</ci>"
        if op == "neg":
            return f"<apply><minus/>{self.math(a[0], False)}</apply>"
        if op == "sqrt":
            return f"<apply><root/>{self.math(a[0], False)}</apply>"
        if op == "pw":
            return (f"<piecewise><piece>{self.math(a[0], False)}{self.math(a[1], False)}"
                    f"</piece><otherwise>{self.math(a[2], False)}</otherwise></piecewise>")
        inner = "".join(self.math(x, False) for x in a)
        return f"<apply><{_MATH_OPS[op]}/>{inner}</apply>"


def _notes(*lines: str) -> str:
    body = "".join(f"<p>{html.escape(s)}</p>" for s in lines if s)
    return f'<body xmlns="http://www.w3.org/1999/xhtml">{body}</body>'


def _set_math(libsbml: Any, el: Any, mathml: str, what: str) -> None:
    ast = libsbml.readMathMLFromString(f'<math xmlns="{_MATHML_NS}">{mathml}</math>')
    if ast is None:
        raise ValueError(f"SBML export: could not build the MathML of {what}")
    el.setMath(ast)


def build_document(model: Model, traced: TracedModel, y0: np.ndarray,
                   schedule: Sequence[Dosing], title: str, meta: dict[str, Any]) -> Any:
    """An ``SBMLDocument`` (L3V2) of the traced model for one patient."""
    libsbml = _libsbml()
    doc = libsbml.SBMLDocument(3, 2)
    m = doc.createModel()
    m.setId("cartsim_patient")
    m.setName(title)
    m.setNotes(_notes(
        "Generated by cartsim export-sbml from the mechanism declarations of the installed "
        f"cartsim model; time in days from the first simulated day: SBML time 0 is cartsim "
        f"day {FIRST_DAY} (parameter first_day; the assignment rule 'day' gives the cartsim "
        f"day, 0 = CAR-T infusion).",
        "Deterministic skeleton: cartsim's stochastic layer for small tumour clones and the "
        "clinic's management protocol are not part of the SBML.",
        *(f"{k}: {v}" for k, v in meta.items()),
    ))
    # ids: states, parameters and quantities share SBML's namespace
    ids: dict[str, str] = {}
    used: set[str] = set()

    def claim(name: str, kind: str) -> str:
        sid = name if name not in used else f"{kind}_{name}"
        if sid in used or not sid.isidentifier() or not sid.isascii():
            raise ValueError(f"SBML export: {kind} name {name!r} is not a usable SBML id")
        used.add(sid)
        return sid

    for s in traced.state_names:
        ids[s] = claim(s, "state")
    for pn in traced.param_names:
        ids[pn] = claim(pn, "param")
    for q in traced.quantities:
        ids[q] = claim(q, "quantity")
    unit_defs: dict[str, units.Unit] = {}

    def unit_id(text: str) -> tuple[str, bool]:
        u = units.parse(text)
        if u.sid != "dimensionless" and u.sid not in unit_defs:
            unit_defs[u.sid] = u
            ud = m.createUnitDefinition()
            ud.setId(u.sid)
            for kind, exp, scale, mult in u.factors:
                un = ud.createUnit()
                un.setKind(libsbml.UnitKind_forName(kind))
                un.setExponent(exp)
                un.setScale(scale)
                un.setMultiplier(mult)
        return u.sid, u.exact

    day_id, _ = unit_id("d")
    m.setTimeUnits(day_id)
    par = m.createParameter()
    par.setId(claim("first_day", "param"))
    par.setConstant(True)
    par.setValue(float(FIRST_DAY))
    par.setUnits(day_id)
    par.setName("cartsim day at SBML time 0 (the first simulated day)")
    par = m.createParameter()
    par.setId(claim("day", "param"))
    par.setConstant(False)
    par.setUnits(day_id)
    par.setName("cartsim day (day 0 = CAR-T infusion)")
    rule = m.createAssignmentRule()
    rule.setVariable("day")
    _set_math(libsbml, rule, f'<apply><plus/><csymbol encoding="text" definitionURL='
              f'"{_TIME_URL}">time</csymbol><ci>first_day</ci></apply>', "day")
    specs = {s.name: s for s in model.params}
    pnames = traced.param_names
    for i, name in enumerate(pnames):
        par = m.createParameter()
        par.setId(ids[name])
        par.setConstant(True)
        par.setValue(float(traced.param_values[i]))
        spec = specs.get(name)
        if spec is not None:
            uid, exact = unit_id(spec.unit)
            par.setName(spec.description)
            par.setNotes(_notes(f"unit: {spec.unit}" + ("" if exact else " (not an SBML unit)"),
                                f"provenance: {spec.provenance}",
                                f"default {spec.default:g}, bounds [{spec.lower:g}, "
                                f"{spec.upper:g}], IIV sd {spec.iiv_sd:g}"))
        else:
            uid = "dimensionless"
            par.setNotes(_notes("per-clone field of the tumour clone (cartsim.model.clones)"))
        par.setUnits(uid)
    for i, s in enumerate(model.states):
        par = m.createParameter()
        par.setId(ids[s.name])
        par.setName(s.meaning)
        par.setConstant(False)
        par.setValue(float(y0[i]))
        uid, exact = unit_id(s.unit)
        par.setUnits(uid)
        owner = next(mm.name for mm in model.mechanisms if s in mm.states)
        par.setNotes(_notes(f"state of mechanism {owner}; unit: {s.unit}"
                            + ("" if exact else " (not an SBML unit)")))
    writer = _Writer(traced, ids)
    for q, e in traced.quantities.items():
        par = m.createParameter()
        par.setId(ids[q])
        par.setConstant(False)
        qd = model.quantities[q]
        par.setName(qd.meaning)
        uid, _ = unit_id(qd.unit)
        par.setUnits(uid)
        rule = m.createAssignmentRule()
        rule.setVariable(ids[q])
        _set_math(libsbml, rule, writer.math(e), f"quantity {q}")
    for name, e in writer.shared():
        par = m.createParameter()
        par.setId(name)
        par.setConstant(False)
        par.setNotes(_notes("subexpression shared by several rules"))
        rule = m.createAssignmentRule()
        rule.setVariable(name)
        _set_math(libsbml, rule, writer.math(e), f"subexpression {name}")
    for s in traced.state_names:
        rule = m.createRateRule()
        rule.setVariable(ids[s])
        _set_math(libsbml, rule, writer.math(traced.rates[s]), f"d{s}/dt")
    by_day: dict[int, list[Dosing]] = {}
    for item in schedule:
        by_day.setdefault(item.day, []).append(item)
    for day in sorted(by_day):
        ev = m.createEvent()
        ev.setId(f"day_{day}".replace("-", "m"))
        ev.setName("; ".join(f"{it.event}: {it.amount:g} {it.unit}" for it in by_day[day]))
        ev.setUseValuesFromTriggerTime(True)
        trig = ev.createTrigger()
        trig.setInitialValue(False)
        trig.setPersistent(True)
        _set_math(libsbml, trig, f'<apply><geq/><csymbol encoding="text" '
                  f'definitionURL="{_TIME_URL}">time</csymbol>'
                  f'<cn>{float(day - FIRST_DAY)!r}</cn></apply>', f"trigger of day {day}")
        total: dict[str, float] = {}
        for it in by_day[day]:
            total[it.state] = total.get(it.state, 0.0) + it.amount
        for state, amount in total.items():
            ea = ev.createEventAssignment()
            ea.setVariable(ids[state])
            _set_math(libsbml, ea, f"<apply><plus/><ci>{ids[state]}</ci><cn>{amount!r}</cn>"
                      f"</apply>", f"dose into {state} on day {day}")
    doc.checkInternalConsistency()
    errors = [doc.getError(i) for i in range(doc.getNumErrors())
              if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR]
    if errors:
        raise ValueError("SBML export: invalid document: " + errors[0].getMessage().strip())
    return doc


def export_patient(
    cohort: Cohort,
    product: Product,
    *,
    seed: int = 0,
    variability: bool = True,
    overrides: dict[str, float] | None = None,
    lymphodepletion: bool = True,
    drugs: Sequence[Any] = (),
    patient: int = 0,
    check: bool = True,
) -> tuple[str, np.ndarray, np.ndarray, Model]:
    """SBML text of patient ``patient`` (row of ``cohort``), with its parameter vector, initial
    state and the composed model. ``check``: compare the traced vector field with the
    compiled one at random states first (:func:`cartsim.sbml.trace.check_trace`)."""
    if not 0 <= patient < cohort.n:
        raise InvalidInputError("patient", f"a row of the cohort, [0, {cohort.n - 1}]", patient)
    addons = {layout.addon_for_dose(d.name) for d in drugs} - {""}
    model = layout.model(addons)
    p, y = build(cohort, product, seed, variability=variability, overrides=overrides,
                 model=model if model.addons else None)
    traced = trace_model(model, p[patient])
    if check:
        check_trace(model, traced, y[patient])
    sched = patient_schedule(cohort, product, p, model, lymphodepletion, drugs)[patient]
    libsbml = _libsbml()
    meta = {"product": product.name, "disease": cohort.disease, "seed": seed,
            "variability": variability,
            "mechanisms": ", ".join(mm.name for mm in model.mechanisms)}
    doc = build_document(model, traced, y[patient], sched,
                         f"cartsim virtual patient ({product.name}, {cohort.disease})", meta)
    return libsbml.writeSBMLToString(doc), p[patient], y[patient], model


def write_patient(path: Path, cohort: Cohort, product: Product, **kw: Any) -> Path:
    """Write :func:`export_patient`'s SBML atomically to ``path``."""
    from cartsim.atomic import atomic_write

    text, *_ = export_patient(cohort, product, **kw)
    path = Path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path
