"""Mechanisms as modules, and the model composed from them (see ``docs/extending.md``).

A :class:`Mechanism` is the declaration one module makes about itself: the states it owns
(:class:`StateSpec`), its parameters (:class:`~cartsim.params.ParameterSpec`), the named shared
quantities it defines (:class:`Quantity`), its kernels (numba functions that read the state,
write the derivatives of the states it owns and return the quantities it provides) and the
doses it accepts (:class:`DoseRoute`). Mechanisms interact only through named quantities:
a kernel ``fn(y, p, dy, *consumes) -> provides`` receives what it consumes as arguments, by
name, from whichever mechanism provides it.

:func:`compose` lays out the state vector and the parameter vector from the declarations and
generates the vector field ``rhs(t, y, p, dy)`` as Python source that calls each kernel in
dependency order with the shared quantities as local variables, then compiles it with numba.
The arithmetic is exactly the kernels' own, so the composed model is bit-identical to the
same equations written by hand.

Inside a kernel, states and parameters are read by name through the layout enums ``S`` and
``P`` (``y[S.T0]``, ``p[P.rho_max]``). They are global names of the mechanism's module,
bound by the composition: the core mechanisms' modules are bound once to the core layout
(:mod:`cartsim.model.layout`), and an add-on mechanism's kernels are re-bound for every model
it joins (its states and parameters are appended after the core ones, so core indices never
move and a model without the add-on is exactly the core model).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import numba
import numpy as np

from cartsim.params import ParameterSpec, ParameterTable

#: Absolute solver tolerances by state unit (a state may set its own ``atol``).
SOLVER_ATOL: tuple[ParameterSpec, ...] = (
    ParameterSpec("atol_cells", "cells", 1e-3, 1e-9, 1.0, "assumed (well below one cell)",
                  "absolute solver tolerance of cell-count states"),
    ParameterSpec("atol_cells_per_ul", "cells/µL", 1e-4, 1e-9, 1.0, "assumed",
                  "absolute solver tolerance of concentration-of-cells states"),
    ParameterSpec("atol_other", "state unit", 1e-6, 1e-12, 1.0, "assumed",
                  "absolute solver tolerance of every other state"),
)
_ATOL = {s.name: s.default for s in SOLVER_ATOL}


def param(
    name: str,
    unit: str,
    default: float,
    lower: float,
    upper: float,
    provenance: str,
    description: str,
    iiv: float = 0.0,
    group: str = "",
) -> ParameterSpec:
    """Shorthand for a model :class:`ParameterSpec` (positional, as the tables are written)."""
    return ParameterSpec(
        name=name, unit=unit, default=default, lower=lower, upper=upper, provenance=provenance,
        description=description, iiv_sd=iiv, group=group,
    )


class _Unbound:
    """Placeholder for ``S``/``P`` in a mechanism module before the composition binds them."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise RuntimeError(
            f"layout {self._name} is not bound yet: import cartsim.model.layout (or compose a "
            f"model) before compiling a mechanism's kernels"
        )


def unbound(name: str) -> Any:
    """The value a mechanism module gives ``S`` or ``P`` until the composition binds it."""
    return _Unbound(name)


@dataclass(frozen=True)
class StateSpec:
    """One state variable.

    ``accumulator``: a daily integral read by the stochastic layer; nothing in the vector field
    depends on it (the solver skips its Jacobian column). ``initial``: value at day −5 unless
    the population builder sets it from the patient. ``atol``: absolute tolerance; by default
    10⁻³ for ``cells``, 10⁻⁴ for ``cells/µL`` and 10⁻⁶ otherwise.
    """

    name: str
    unit: str
    meaning: str
    accumulator: bool = False
    initial: float = 0.0
    atol: float | None = None

    def tolerance(self) -> float:
        if self.atol is not None:
            return self.atol
        return {"cells": _ATOL["atol_cells"], "cells/µL": _ATOL["atol_cells_per_ul"]}.get(
            self.unit, _ATOL["atol_other"])


@dataclass(frozen=True)
class Quantity:
    """A named quantity shared between mechanisms.

    ``neutral``: its value in a model where no mechanism provides it (e.g. 1.0 for a
    multiplier an optional drug raises); ``None`` means some mechanism must provide it.
    ``combine``: how values from several providers merge: ``"single"`` (only one provider
    allowed) or ``"product"`` (multipliers, multiplied in registration order).
    """

    name: str
    unit: str
    meaning: str
    neutral: float | None = None
    combine: str = "single"

    def __post_init__(self) -> None:
        if self.combine not in ("single", "product"):
            raise ValueError(f"quantity {self.name}: combine must be 'single' or 'product'")
        if not self.name.isidentifier():
            raise ValueError(f"quantity name {self.name!r} is not an identifier")


@dataclass(frozen=True)
class Kernel:
    """``fn(y, p, dy, *consumes) -> provides`` (a tuple if several, nothing if none).

    ``fn`` is a ``numba.njit(inline="always")`` function of the mechanism's module; it writes
    the derivatives of the states its mechanism owns and nothing else.
    """

    fn: Callable[..., Any]
    consumes: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()


@dataclass(frozen=True)
class DoseRoute:
    """A dose given as a schedule item: ``amount`` (in ``unit``, per patient) is added to
    ``state`` at the start of a day, converted by ``convert(amount, p, P)`` into state units
    when given (e.g. mg → µg/mL through a per-kg volume of distribution; default: as is)."""

    name: str
    state: str
    unit: str
    meaning: str
    convert: Callable[[np.ndarray, np.ndarray, Any], np.ndarray] | None = None


@dataclass(frozen=True)
class Mechanism:
    """Everything one module declares about itself (see the module docstring)."""

    name: str
    module: str
    summary: str
    states: tuple[StateSpec, ...] = ()
    params: tuple[ParameterSpec, ...] = ()
    quantities: tuple[Quantity, ...] = ()
    kernels: tuple[Kernel, ...] = ()
    doses: tuple[DoseRoute, ...] = ()

    @property
    def provides(self) -> tuple[str, ...]:
        return tuple(q for k in self.kernels for q in k.provides)

    @property
    def consumes(self) -> tuple[str, ...]:
        return tuple(q for k in self.kernels for q in k.consumes)


@dataclass
class Model:
    """A composed model: layouts, shared quantities, dose routes and the compiled vector field.

    The state vector is the core mechanisms' states (accumulators last), then the add-ons'
    states; the parameter vector is the core mechanisms' parameters, the patient-level
    parameters, the per-clone fields, then the add-ons' parameters.
    """

    core: tuple[Mechanism, ...]
    addons: tuple[Mechanism, ...]
    states: tuple[StateSpec, ...]
    params: tuple[ParameterSpec, ...]
    n_params_base: int
    clone_fields: tuple[str, ...]
    n_clones: int
    quantities: dict[str, Quantity]
    S: Any
    P: Any
    first_accumulator: int
    rhs: Any = None
    source: str = ""
    doses: dict[str, tuple[DoseRoute, Mechanism]] = field(default_factory=dict)
    #: Globals of the generated ``rhs`` (its kernels by generated name), for code generators
    #: that read the same source (the analytic Jacobian, :mod:`cartsim.model.autodiff`).
    rhs_globals: dict[str, Any] = field(default_factory=dict)
    #: :func:`analytic_jacobian`'s result, once computed.
    jac_cache: tuple[Any, np.ndarray] | str | None = None

    @property
    def mechanisms(self) -> tuple[Mechanism, ...]:
        return self.core + self.addons

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def n_params(self) -> int:
        return len(self.params) + self.n_clones * len(self.clone_fields)

    @property
    def n_core_states(self) -> int:
        return sum(len(m.states) for m in self.core)

    @property
    def n_core_params(self) -> int:
        return self.n_params_base + self.n_clones * len(self.clone_fields)

    @property
    def n_jac(self) -> int:
        """States that may feed back into the vector field: all but the core accumulators
        when there are no add-on states after them, else all."""
        return self.first_accumulator if not self.addons_states() else self.n_states

    def addons_states(self) -> tuple[StateSpec, ...]:
        return tuple(s for m in self.addons for s in m.states)

    def addon_params(self) -> tuple[ParameterSpec, ...]:
        return tuple(s for m in self.addons for s in m.params)

    def param_index(self, name: str) -> int:
        return int(self.P[name])

    def atol(self) -> np.ndarray:
        """Absolute tolerance per state (see :meth:`StateSpec.tolerance`)."""
        return np.array([s.tolerance() for s in self.states], dtype=np.float64)

    def state_info(self) -> tuple[tuple[str, str, str], ...]:
        return tuple((s.name, s.unit, s.meaning) for s in self.states)

    def param_table(self) -> ParameterTable:
        return ParameterTable(self.params)


def _layout_enums(
    core: Sequence[Mechanism],
    addons: Sequence[Mechanism],
    patient_params: Sequence[ParameterSpec],
    clone_fields: Sequence[str],
    n_clones: int,
) -> tuple[tuple[StateSpec, ...], tuple[ParameterSpec, ...], int, Any, Any, int]:
    core_states = [s for m in core for s in m.states]
    states = (
        [s for s in core_states if not s.accumulator]
        + [s for s in core_states if s.accumulator]
        + [s for m in addons for s in m.states]
    )
    first_acc = sum(1 for s in core_states if not s.accumulator)
    core_params = [s for m in core for s in m.params] + list(patient_params)
    n_base = len(core_params)
    params = core_params + [s for m in addons for s in m.params]
    ParameterTable(tuple(params))  # duplicate names are an error
    names = [s.name for s in states]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"states declared twice: {sorted(dup)}")
    S = IntEnum("S", {s.name: i for i, s in enumerate(states)})  # type: ignore[misc]
    n_clone_block = n_clones * len(clone_fields)
    pidx = {s.name: i for i, s in enumerate(core_params)}
    for j, s in enumerate(params[n_base:]):
        pidx[s.name] = n_base + n_clone_block + j
    P = IntEnum("P", pidx)  # type: ignore[misc]
    return tuple(states), tuple(params), n_base, S, P, first_acc


def _check_quantities(mechs: Sequence[Mechanism]) -> dict[str, Quantity]:
    declared: dict[str, Quantity] = {}
    for m in mechs:
        for q in m.quantities:
            if q.name in declared:
                raise ValueError(f"quantity {q.name} declared twice ({m.name})")
            declared[q.name] = q
    for m in mechs:
        for name in m.provides + m.consumes:
            if name not in declared:
                raise ValueError(
                    f"mechanism {m.name} uses quantity {name!r}, which no mechanism in the "
                    f"model declares"
                )
    providers: dict[str, list[str]] = {}
    for m in mechs:
        for name in m.provides:
            providers.setdefault(name, []).append(m.name)
    for name, q in declared.items():
        got = providers.get(name, [])
        if len(got) > 1 and q.combine == "single":
            raise ValueError(f"quantity {name} has several providers {got} but combine='single'")
        if not got and q.neutral is None and any(name in m.consumes for m in mechs):
            raise ValueError(f"quantity {name} is consumed but provided by no mechanism and "
                             f"has no neutral value")
    return declared


def _check_signatures(mechs: Sequence[Mechanism]) -> None:
    """A kernel's arguments after ``(y, p, dy)`` are named exactly as the quantities it
    consumes, so a quantity can never arrive in the wrong position."""
    for m in mechs:
        for k in m.kernels:
            args = list(inspect.signature(_py(k.fn)).parameters)
            if args[:3] != ["y", "p", "dy"] or tuple(args[3:]) != k.consumes:
                raise ValueError(
                    f"kernel {m.name}.{_py(k.fn).__name__}{tuple(args)} must take "
                    f"(y, p, dy, {', '.join(k.consumes)})"
                )


def _kernel_order(mechs: Sequence[Mechanism]) -> list[tuple[Mechanism, Kernel]]:
    """Registration order, except that a kernel waits until every quantity it consumes (and
    every contribution to a combined quantity) has been computed."""
    pending = [(m, k) for m in mechs for k in m.kernels]
    remaining: dict[str, int] = {}
    for _, k in pending:
        for q in k.provides:
            remaining[q] = remaining.get(q, 0) + 1
    order: list[tuple[Mechanism, Kernel]] = []
    while pending:
        for i, (m, k) in enumerate(pending):
            if all(remaining.get(q, 0) == 0 for q in k.consumes):
                order.append((m, k))
                for q in k.provides:
                    remaining[q] -= 1
                del pending[i]
                break
        else:
            raise ValueError("shared quantities form a cycle: "
                             + ", ".join(f"{m.name}.{k.fn.__name__}" for m, k in pending))
    return order


def _py(fn: Any) -> Any:
    return getattr(fn, "py_func", fn)


def _rebind(fn: Any, S: Any, P: Any, name: str) -> Any:
    """An inline-compiled copy of kernel ``fn`` whose globals ``S``/``P`` are this model's."""
    py = _py(fn)
    glb = dict(py.__globals__)
    glb.update(S=S, P=P)
    out = types.FunctionType(py.__code__, glb, name, py.__defaults__, py.__closure__)
    out.__qualname__ = name
    return numba.njit(inline="always")(out)


def _generate(order: list[tuple[Mechanism, Kernel]], quantities: dict[str, Quantity],
              provided: set[str], digest: str) -> tuple[str, list[str]]:
    """Source of ``rhs`` and the names of the kernel globals it calls, in order."""
    lines = [
        '"""Generated by cartsim.model.mechanism.compose: do not edit."""',
        f"# mechanism sources: {digest}",
        "",
        "",
        "def rhs(t, y, p, dy):",
    ]
    defined: set[str] = set()
    knames: list[str] = []
    seen_product: set[str] = set()

    def ensure(qs: tuple[str, ...]) -> None:
        for q in qs:
            if q not in defined and q not in provided:
                lines.append(f"    {q} = {float(quantities[q].neutral)!r}")
                defined.add(q)

    for i, (m, k) in enumerate(order):
        ensure(k.consumes)
        kname = f"_k{i}_{m.name}_{_py(k.fn).__name__}"
        knames.append(kname)
        args = ", ".join(["y", "p", "dy", *k.consumes])
        outs = []
        post = []
        for q in k.provides:
            if quantities[q].combine == "product" and q in seen_product:
                outs.append(f"_{q}_{i}")
                post.append(f"    {q} = {q} * _{q}_{i}")
            else:
                outs.append(q)
                seen_product.add(q)
            defined.add(q)
        call = f"{kname}({args})"
        if not outs:
            lines.append(f"    {call}")
        elif len(outs) == 1:
            lines.append(f"    {outs[0]} = {call}")
        else:
            lines.append(f"    {', '.join(outs)} = {call}")
        lines.extend(post)
    lines.append("")
    return "\n".join(lines), knames


def _sources_digest(mechs: Sequence[Mechanism]) -> str:
    """Hash of every file the generated vector field may inline: the mechanisms' modules and
    every module of this package (kernels call helpers that are not mechanisms, e.g. traits),
    so that numba's on-disk caches keyed on the generated source never go stale."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    for m in mechs:
        mod = sys.modules.get(m.module)
        try:
            h.update(Path(inspect.getfile(mod)).read_bytes())  # type: ignore[arg-type]
        except (OSError, TypeError):
            h.update(m.module.encode())
    return h.hexdigest()


def _cache_dir() -> Path:
    root = os.environ.get("CARTSIM_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cartsim"


def _load_generated(source: str, glb: dict[str, Any], tag: str, kind: str = "rhs") -> Any:
    """Execute the generated source from a real file (so numba's on-disk cache can key on it)
    in a cache directory; in memory if that directory is not writable. Returns its function
    ``kind`` (``rhs``, or ``jac`` for :func:`analytic_jacobian`)."""
    from cartsim.atomic import atomic_write

    name = f"cartsim_generated_{kind}_{tag}"
    try:
        path = _cache_dir() / "generated" / f"{name}.py"
        if not path.exists() or path.read_text(encoding="utf-8") != source:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda tmp: Path(tmp).write_text(source, encoding="utf-8"))
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        mod.__dict__.update(glb)
        spec.loader.exec_module(mod)
        # registered, so numba names it (not '<dynamic>') in cached code that a later
        # process loads: that process composes the same model, hence the same module, first
        sys.modules[name] = mod
        return getattr(mod, kind)
    except OSError:
        ns: dict[str, Any] = dict(glb)
        exec(compile(source, f"<{name}>", "exec"), ns)  # noqa: S102 - our own generated code
        return ns[kind]


def analytic_jacobian(model: Model) -> tuple[Any, np.ndarray] | str:
    """The compiled analytic Jacobian ``jac(t, y, p, J)`` of ``model`` and its pattern, or
    the reason it cannot be generated (a construct :mod:`cartsim.model.autodiff` does not
    differentiate; the solver then keeps finite differences).

    Generated from the same source as ``model.rhs`` (its kernels and their helpers), once per
    model and process; the file it is compiled from is named by the hash of its source, so
    numba's on-disk cache keys on it like the right-hand side's.
    """
    if model.jac_cache is not None:
        return model.jac_cache
    got = _jacobian_code(model)
    if isinstance(got, str):
        model.jac_cache = got
        return model.jac_cache
    source, names, pattern = got
    tag = hashlib.sha256(source.encode()).hexdigest()[:16]
    # numpy error model: a conditional expression's unused arm may divide by zero (the
    # generated code evaluates both arms), which must give inf there, not raise
    jac = numba.njit(error_model="numpy")(_load_generated(source, names, tag, kind="jac"))
    model.jac_cache = (jac, pattern)
    return model.jac_cache


def jacobian_cache_key(model: Model) -> str:
    """Key of a model's generated Jacobian in the on-disk cache: a hash of the generated
    right-hand side (whose header hashes every module of this package, the generator
    included, and the mechanisms' modules) and of the layout (state and parameter names)."""
    h = hashlib.sha256(model.source.encode())
    h.update(repr(([s.name for s in model.states], [p.name for p in model.params],
                   model.clone_fields, model.n_clones, model.n_params_base)).encode())
    return h.hexdigest()


def _jacobian_code(model: Model) -> tuple[str, dict[str, Any], np.ndarray] | str:
    """Source, globals and pattern of ``model``'s analytic Jacobian, or why there is none.

    Generating it (:func:`cartsim.model.autodiff.jacobian_source`) costs seconds, every
    process: the result is kept in the cache directory (``$CARTSIM_CACHE_DIR``, default
    ``~/.cache/cartsim``) under :func:`jacobian_cache_key`, so that a fresh process reads the
    same source, compiles nothing new and finds numba's cached solver."""
    import math

    from cartsim.atomic import atomic_write
    from cartsim.model.autodiff import NotDifferentiable, jacobian_source

    plain = {"np": np, "math": math}
    path: Path | None = (_cache_dir() / "generated"
                         / f"jacobian-{jacobian_cache_key(model)[:32]}.npz")
    try:
        assert path is not None
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                if "reason" in z.files:
                    return str(z["reason"])
                return str(z["source"]), dict(plain), z["pattern"].astype(bool)
    except (OSError, ValueError, KeyError, EOFError):
        pass  # unreadable: generated afresh and written again
    try:
        code = jacobian_source(model.source, model.rhs_globals, model.n_states,
                               header=model.source.split("\n\n\n")[0])
    except NotDifferentiable as e:
        out: tuple[str, dict[str, Any], np.ndarray] | str = str(e)
        arrays = {"reason": np.array(str(e))}
    else:
        out = (code.source, code.names, code.pattern)
        arrays = {"source": np.array(code.source), "pattern": code.pattern}
        # the source's globals must be rebuilt from nothing in a later process
        if any(code.names.get(k) is not v for k, v in plain.items()) or (
                set(code.names) != set(plain)):
            path = None
    if path is not None:
        def write(tmp: Path) -> None:
            with Path(tmp).open("wb") as fh:
                np.savez(fh, **arrays)

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, write)
        except OSError:
            pass  # a read-only cache only costs the generation next time
    return out


def compose(
    core: Sequence[Mechanism],
    addons: Sequence[Mechanism] = (),
    *,
    patient_params: Sequence[ParameterSpec] = (),
    clone_fields: Sequence[str] = (),
    n_clones: int = 0,
    bind_core: bool = False,
) -> Model:
    """Lay out states and parameters and compile the vector field of ``core + addons``.

    ``bind_core``: bind the layout into the core mechanisms' modules (their globals ``S``,
    ``P`` and, where declared, ``CLONE_BASE`` = first per-clone parameter; done once, by
    :mod:`cartsim.model.layout`); otherwise the core modules must already be bound to a
    layout whose core part equals this one.
    """
    core, addons = tuple(core), tuple(addons)
    mechs = core + addons
    names = [m.name for m in mechs]
    if len(set(names)) != len(names):
        raise ValueError(f"a mechanism appears twice: {names}")
    states, params, n_base, S, P, first_acc = _layout_enums(
        core, addons, patient_params, clone_fields, n_clones)
    if any(s.accumulator for m in addons for s in m.states):
        raise ValueError("add-on mechanisms cannot declare accumulator states")
    quantities = _check_quantities(mechs)
    _check_signatures(mechs)
    model = Model(core, addons, states, params, n_base, tuple(clone_fields), n_clones,
                  quantities, S, P, first_acc)
    for m in mechs:
        for d in m.doses:
            if d.name in model.doses:
                raise ValueError(f"dose route {d.name} declared twice")
            if d.state not in S.__members__:
                raise ValueError(f"dose route {d.name}: unknown state {d.state}")
            model.doses[d.name] = (d, m)
    if bind_core:
        for m in core:
            mod = sys.modules[m.module]
            mod.S, mod.P = S, P  # type: ignore[attr-defined]
            if hasattr(mod, "CLONE_BASE"):
                mod.CLONE_BASE = n_base  # type: ignore[attr-defined]
    order = _kernel_order(mechs)
    provided = {q for m in mechs for q in m.provides}
    # the layout too: kernels read S/P members as compile-time constants, and a patient
    # parameter declared outside this package shifts P without changing any source hashed here
    layout_key = repr(([s.name for s in states], [q.name for q in params], n_base, n_clones,
                       tuple(clone_fields)))
    digest = hashlib.sha256((_sources_digest(mechs) + layout_key).encode()).hexdigest()
    source, knames = _generate(order, quantities, provided, digest)
    glb: dict[str, Any] = {}
    addon_set = set(id(m) for m in addons)
    for kname, (m, k) in zip(knames, order, strict=True):
        glb[kname] = _rebind(k.fn, S, P, kname) if id(m) in addon_set else k.fn
    tag = hashlib.sha256(source.encode()).hexdigest()[:16]
    model.source = source
    model.rhs_globals = glb
    model.rhs = numba.njit(_load_generated(source, glb, tag))
    return model
