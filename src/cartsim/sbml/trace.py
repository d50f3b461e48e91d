"""The composed model's vector field as expressions, traced from the mechanisms' kernels.

A kernel is a numba function of ``(y, p, dy, *consumed quantities)``; its Python source is the
declaration of its equations. :func:`trace_model` runs every kernel's Python function (and the
numba helpers it calls, recursively) on symbolic arguments: ``y[i]`` is the state named by the
layout, ``p[i]`` the parameter (a clone field is ``clone<c>_<field>``), a consumed quantity is
its name, and ``dy[i] = ...`` records the derivative. Arithmetic builds an expression graph
(:class:`Expr`, hash-consed, so a subexpression the kernel computes once is one node);
``max``/``min``/``abs`` become piecewise expressions. A comparison whose operands are known
numbers or parameters of the exported patient is decided with the patient's values (a
structural switch such as "does the product target CD20"); a comparison involving states or
quantities is a branch: the kernel runs once per outcome and the results are merged into
``piecewise`` expressions. Anything else (an unsupported call, a float conversion, reading an
unknown index) raises :class:`TraceError` naming the mechanism and kernel.

:func:`check_trace` evaluates the traced expressions at random states and compares them with
the compiled ``model.rhs`` for every state, so the export can never silently differ from the
simulator.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cartsim.errors import CartsimError
from cartsim.model.mechanism import Model


class TraceError(CartsimError, ValueError):
    """A kernel uses a construct the tracer cannot express (names the mechanism)."""


@dataclass(eq=False)
class Expr:
    """A node: ``op`` in num, sym, neg, add, sub, mul, div, pow, pw (piecewise), lt, le, gt,
    ge, eq, ne, and, not. ``value``: known number (numbers and parameters), else None."""

    op: str
    args: tuple[Any, ...]
    value: float | None
    ctx: _Context = field(repr=False)

    # -- arithmetic ---------------------------------------------------------------------
    def _bin(self, op: str, other: Any, rev: bool = False) -> Expr:
        o = self.ctx.lift(other)
        a, b = (o, self) if rev else (self, o)
        return self.ctx.node(op, a, b)

    def __add__(self, o: Any) -> Expr:
        return self._bin("add", o)

    def __radd__(self, o: Any) -> Expr:
        return self._bin("add", o, True)

    def __sub__(self, o: Any) -> Expr:
        return self._bin("sub", o)

    def __rsub__(self, o: Any) -> Expr:
        return self._bin("sub", o, True)

    def __mul__(self, o: Any) -> Expr:
        return self._bin("mul", o)

    def __rmul__(self, o: Any) -> Expr:
        return self._bin("mul", o, True)

    def __truediv__(self, o: Any) -> Expr:
        return self._bin("div", o)

    def __rtruediv__(self, o: Any) -> Expr:
        return self._bin("div", o, True)

    def __pow__(self, o: Any) -> Expr:
        return self._bin("pow", o)

    def __rpow__(self, o: Any) -> Expr:
        return self._bin("pow", o, True)

    def __neg__(self) -> Expr:
        return self.ctx.node("neg", self)

    def __pos__(self) -> Expr:
        return self

    # -- comparisons: a condition, decided when it is a branch point ---------------------
    def __lt__(self, o: Any) -> Expr:
        return self._bin("lt", o)

    def __le__(self, o: Any) -> Expr:
        return self._bin("le", o)

    def __gt__(self, o: Any) -> Expr:
        return self._bin("gt", o)

    def __ge__(self, o: Any) -> Expr:
        return self._bin("ge", o)

    def __eq__(self, o: Any) -> Expr:  # type: ignore[override]
        return self._bin("eq", o)

    def __ne__(self, o: Any) -> Expr:  # type: ignore[override]
        return self._bin("ne", o)

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        return self.ctx.decide(self)

    def __float__(self) -> float:
        if self.value is not None:
            return float(self.value)
        raise TraceError(f"{self.ctx.where}: converts a state-dependent value to a number")

    def __index__(self) -> int:
        raise TraceError(f"{self.ctx.where}: indexes with a computed value")


_CMP = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
        "eq": np.equal, "ne": np.not_equal}


def _fold(op: str, vals: Sequence[float]) -> float | bool:
    if op == "neg":
        return -vals[0]
    if op in ("exp", "ln", "sqrt"):
        return float({"exp": np.exp, "ln": np.log, "sqrt": np.sqrt}[op](np.float64(vals[0])))
    if op in _CMP:
        return bool(_CMP[op](vals[0], vals[1]))
    a, b = vals
    with np.errstate(all="ignore"):
        return float({
            "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
            "pow": np.power,
        }[op](np.float64(a), np.float64(b)))


class _Fork(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, cond: Expr) -> None:
        self.cond = cond


class _Context:
    """Hash-consed node store and the branch decisions of the current run."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[Any, ...], Expr] = {}
        self.decisions: dict[int, bool] = {}
        self.where = ""

    def node(self, op: str, *args: Any, value: float | None = None) -> Expr:
        key = (op, *(id(a) if isinstance(a, Expr) else a for a in args))
        found = self.nodes.get(key)
        if found is not None:
            return found
        if op not in ("num", "sym", "pw") and value is None:
            vals = [a.value for a in args]
            if all(v is not None for v in vals):
                folded = _fold(op, vals)  # type: ignore[arg-type]
                value = float(folded)
        e = Expr(op, args, value, self)
        self.nodes[key] = e
        return e

    def num(self, v: float) -> Expr:
        return self.node("num", float(v), value=float(v))

    def lift(self, v: Any) -> Expr:
        if isinstance(v, Expr):
            return v
        if isinstance(v, (bool, int, float, np.floating, np.integer)):
            return self.num(float(v))
        raise TraceError(f"{self.where}: arithmetic with {type(v).__name__}")

    def decide(self, cond: Expr) -> bool:
        if cond.op not in _CMP:
            raise TraceError(f"{self.where}: uses a value as a condition ({cond.op})")
        if cond.value is not None:  # numbers and the patient's parameters: decided now
            return bool(cond.value)
        got = self.decisions.get(id(cond))
        if got is None:
            raise _Fork(cond)
        return got

    def pw(self, a: Expr, cond: Expr, b: Expr) -> Expr:
        if a is b:
            return a
        if cond.value is not None:
            return a if cond.value else b
        return self.node("pw", a, cond, b)


class _Array:
    """``y`` or ``p``: indexing returns the named symbol."""

    def __init__(self, ctx: _Context, names: Sequence[str], values: Sequence[float] | None,
                 what: str) -> None:
        self.ctx, self.names, self.values, self.what = ctx, names, values, what

    def __getitem__(self, i: Any) -> Expr:
        if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < len(self.names):
            raise TraceError(f"{self.ctx.where}: reads {self.what}[{i!r}], outside the layout")
        i = int(i)
        v = None if self.values is None else float(self.values[i])
        return self.ctx.node("sym", self.names[i], value=v)

    def __setitem__(self, i: Any, v: Any) -> None:
        raise TraceError(f"{self.ctx.where}: writes {self.what}[{i!r}]")


class _Derivs:
    def __init__(self, ctx: _Context, names: Sequence[str]) -> None:
        self.ctx, self.names = ctx, names
        self.out: dict[str, Expr] = {}

    def __setitem__(self, i: Any, v: Any) -> None:
        if not isinstance(i, (int, np.integer)) or not 0 <= int(i) < len(self.names):
            raise TraceError(f"{self.ctx.where}: writes dy[{i!r}], outside the layout")
        self.out[self.names[int(i)]] = self.ctx.lift(v)

    def __getitem__(self, i: Any) -> Expr:
        name = self.names[int(i)]
        if name not in self.out:
            raise TraceError(f"{self.ctx.where}: reads dy[{name}] before writing it")
        return self.out[name]


def _symbolic_builtins(ctx: _Context) -> dict[str, Callable[..., Any]]:
    def smax(*args: Any) -> Any:
        vals = list(args[0]) if len(args) == 1 else list(args)
        if not any(isinstance(v, Expr) for v in vals):
            return max(vals)
        out = ctx.lift(vals[0])
        for v in vals[1:]:
            e = ctx.lift(v)
            out = ctx.pw(out, ctx.node("gt", out, e), e)
        return out

    def smin(*args: Any) -> Any:
        vals = list(args[0]) if len(args) == 1 else list(args)
        if not any(isinstance(v, Expr) for v in vals):
            return min(vals)
        out = ctx.lift(vals[0])
        for v in vals[1:]:
            e = ctx.lift(v)
            out = ctx.pw(out, ctx.node("lt", out, e), e)
        return out

    def sabs(v: Any) -> Any:
        if not isinstance(v, Expr):
            return abs(v)
        return ctx.pw(v, ctx.node("ge", v, ctx.num(0.0)), ctx.node("neg", v))

    def sfloat(v: Any) -> Any:
        return v if isinstance(v, Expr) else float(v)

    return {"max": smax, "min": smin, "abs": sabs, "float": sfloat}


def _unary(ctx: _Context, op: str, real: Callable[[float], float]) -> Callable[[Any], Any]:
    def f(v: Any) -> Any:
        if not isinstance(v, Expr):
            return real(v)
        if v.value is not None:
            return ctx.node(op, v, value=float(real(v.value)))
        return ctx.node(op, v)

    return f


#: Functions a kernel may call on states (by ``math.``/``np.`` or imported by name).
_FUNCS: dict[str, Callable[[float], float]] = {"exp": math.exp, "log": math.log,
                                               "sqrt": math.sqrt}
_OPS = {"exp": "exp", "log": "ln", "sqrt": "sqrt"}


class _MathShim:
    """``math``/``np`` inside a traced kernel: exp, log, sqrt and constants only."""

    def __init__(self, ctx: _Context, name: str) -> None:
        self._ctx, self._name = ctx, name

    def __getattr__(self, attr: str) -> Any:
        if attr in _FUNCS:
            return _unary(self._ctx, _OPS[attr], _FUNCS[attr])
        if attr in ("pi", "e", "inf"):
            return getattr(math, attr)
        raise TraceError(f"{self._ctx.where}: calls {self._name}.{attr} (the tracer "
                         f"translates exp, log and sqrt)")


def _symbolic_fn(fn: Any, ctx: _Context, S: Any, P: Any, memo: dict[int, Any]) -> Any:
    """A plain-Python copy of kernel/helper ``fn`` whose globals are symbolic-friendly: the
    layouts ``S``/``P``, symbolic ``max``/``min``/``abs`` and every numba function it calls
    replaced by its own symbolic copy."""
    py = getattr(fn, "py_func", fn)
    if id(py) in memo:
        return memo[id(py)]
    glb = dict(py.__globals__)
    glb.update(_symbolic_builtins(ctx))
    if "S" in glb:
        glb["S"] = S
    if "P" in glb:
        glb["P"] = P
    out = types.FunctionType(py.__code__, glb, py.__name__, py.__defaults__, py.__closure__)
    memo[id(py)] = out
    for name in py.__code__.co_names:
        if name in ("S", "P"):
            continue
        g = py.__globals__.get(name)
        if g is not None and hasattr(g, "py_func"):
            glb[name] = _symbolic_fn(g, ctx, S, P, memo)
        elif isinstance(g, types.ModuleType) and g.__name__ in ("math", "numpy"):
            glb[name] = _MathShim(ctx, g.__name__)
        else:
            for fname, real in _FUNCS.items():
                if g is real or g is getattr(np, fname):
                    glb[name] = _unary(ctx, _OPS[fname], real)
    return out


@dataclass
class TracedModel:
    """The composed vector field as expressions.

    ``rates``: state name → d/dt expression; ``quantities``: shared quantity name →
    expression, in evaluation order; ``state_names``/``param_names``: the layouts;
    ``param_values``: the patient's parameter vector the structural switches were decided with.
    """

    ctx: _Context
    state_names: tuple[str, ...]
    param_names: tuple[str, ...]
    param_values: np.ndarray
    rates: dict[str, Expr]
    quantities: dict[str, Expr]


def param_names(model: Model) -> tuple[str, ...]:
    """Names of the parameter vector's entries (clone fields as ``clone<c>_<field>``)."""
    names = [""] * model.n_params
    for name, member in model.P.__members__.items():
        names[int(member)] = name
    base = model.n_params_base
    nf = len(model.clone_fields)
    for c in range(model.n_clones):
        for f, fname in enumerate(model.clone_fields):
            names[base + c * nf + f] = f"clone{c}_{fname}"
    missing = [i for i, n in enumerate(names) if not n]
    if missing:
        raise TraceError(f"parameter vector entries without a name: {missing}")
    return tuple(names)


def _run_paths(ctx: _Context, call: Callable[[], dict[str, Expr]]) -> dict[str, Expr]:
    """Run ``call`` once per outcome of each state-dependent branch; merge into piecewise."""

    def explore(depth: int) -> dict[str, Expr]:
        if depth > 24:
            raise TraceError(f"{ctx.where}: more than 24 nested state-dependent branches")
        try:
            return call()
        except _Fork as f:
            ctx.decisions[id(f.cond)] = True
            yes = explore(depth + 1)
            ctx.decisions[id(f.cond)] = False
            no = explore(depth + 1)
            del ctx.decisions[id(f.cond)]
            if set(yes) != set(no):
                raise TraceError(f"{ctx.where}: writes different derivatives on the two "
                                 f"sides of a state-dependent branch") from None
            return {k: ctx.pw(yes[k], f.cond, no[k]) for k in yes}

    return explore(0)


def trace_model(model: Model, p: np.ndarray) -> TracedModel:
    """Trace ``model``'s kernels for one patient's parameter vector ``p`` (see module doc)."""
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (model.n_params,):
        raise TraceError(f"parameter vector has shape {p.shape}, the model needs "
                         f"({model.n_params},)")
    ctx = _Context()
    snames = tuple(s.name for s in model.states)
    pnames = param_names(model)
    memo: dict[int, Any] = {}
    from cartsim.model.mechanism import _kernel_order  # the composition's own order

    quantities: dict[str, Expr] = {}
    rates: dict[str, Expr] = {}
    provided = {q for m in model.mechanisms for q in m.provides}
    seen_product: set[str] = set()
    for m, k in _kernel_order(model.mechanisms):
        kname = getattr(k.fn, "py_func", k.fn).__name__
        ctx.where = f"mechanism {m.name!r}, kernel {kname}"
        for q in k.consumes:
            if q not in quantities and q not in provided:
                quantities[q] = ctx.num(float(model.quantities[q].neutral))  # type: ignore[arg-type]
        fn = _symbolic_fn(k.fn, ctx, model.S, model.P, memo)
        args = [ctx.node("sym", q) for q in k.consumes]

        def call(fn: Any = fn, args: list[Expr] = args, k: Any = k) -> dict[str, Expr]:
            y = _Array(ctx, snames, None, "y")
            pa = _Array(ctx, pnames, p, "p")
            dy = _Derivs(ctx, snames)
            try:
                ret = fn(y, pa, dy, *args)
            except (TraceError, _Fork):
                raise
            except Exception as exc:  # a construct outside the translatable subset
                raise TraceError(f"{ctx.where}: cannot be traced ({type(exc).__name__}: "
                                 f"{exc})") from exc
            outs = dict(("d:" + s, e) for s, e in dy.out.items())
            vals = () if not k.provides else (ret if len(k.provides) > 1 else (ret,))
            if len(vals) != len(k.provides):
                raise TraceError(f"{ctx.where}: returns {len(vals)} values, declares "
                                 f"{len(k.provides)}")
            for q, v in zip(k.provides, vals, strict=True):
                outs["q:" + q] = ctx.lift(v)
            return outs

        got = _run_paths(ctx, call)
        for key, e in got.items():
            kind, name = key.split(":", 1)
            if kind == "d":
                if name in rates:
                    raise TraceError(f"{ctx.where}: writes d{name}/dt, already written by "
                                     f"another kernel")
                owner = next(mm for mm in model.mechanisms
                             if any(s.name == name for s in mm.states))
                if owner is not m:
                    raise TraceError(f"{ctx.where}: writes d{name}/dt of mechanism "
                                     f"{owner.name!r}")
                rates[name] = e
            elif model.quantities[name].combine == "product" and name in seen_product:
                quantities[name] = ctx.node("mul", quantities[name], e)
            else:
                quantities[name] = e
                seen_product.add(name)
    ctx.where = "composition"
    for s in snames:
        rates.setdefault(s, ctx.num(0.0))
    return TracedModel(ctx, snames, pnames, p, rates, quantities)


# -- numerical evaluation (the check against the compiled vector field) ----------------------
def evaluate(traced: TracedModel, y: np.ndarray) -> np.ndarray:
    """d/dt of every state at states ``y`` (n, n_states), from the traced expressions."""
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    env: dict[str, np.ndarray] = {n: y[:, i] for i, n in enumerate(traced.state_names)}
    for i, n in enumerate(traced.param_names):
        env[n] = np.full(y.shape[0], traced.param_values[i])
    cache: dict[int, np.ndarray] = {}

    def ev(e: Expr) -> np.ndarray:
        got = cache.get(id(e))
        if got is not None:
            return got
        op, a = e.op, e.args
        with np.errstate(all="ignore"):
            if op == "num":
                r = np.full(y.shape[0], a[0])
            elif op == "sym":
                if a[0] not in env:
                    env[a[0]] = ev(traced.quantities[a[0]])
                r = env[a[0]]
            elif op == "neg":
                r = -ev(a[0])
            elif op in ("exp", "ln", "sqrt"):
                r = {"exp": np.exp, "ln": np.log, "sqrt": np.sqrt}[op](ev(a[0]))
            elif op == "pw":
                r = np.where(ev(a[1]).astype(bool), ev(a[0]), ev(a[2]))
            elif op in _CMP:
                r = _CMP[op](ev(a[0]), ev(a[1])).astype(np.float64)
            else:
                x, z = ev(a[0]), ev(a[1])
                r = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                     "div": np.divide, "pow": np.power}[op](x, z)
        cache[id(e)] = r
        return r

    return np.column_stack([ev(traced.rates[n]) for n in traced.state_names])


def check_trace(model: Model, traced: TracedModel, y0: np.ndarray, n: int = 64,
                seed: int = 0, rtol: float = 1e-9) -> None:
    """Compare the traced derivatives with ``model.rhs`` at ``n`` random states around ``y0``
    (spread over orders of magnitude, some exactly zero); raise :class:`TraceError` naming
    the first state (and its mechanism) that differs."""
    rng = np.random.default_rng(seed)
    y0 = np.asarray(y0, dtype=np.float64)
    scale = np.maximum(np.abs(y0), 1.0)
    ys = scale * 10.0 ** rng.uniform(-4, 1, (n, y0.size))
    ys[rng.uniform(size=ys.shape) < 0.1] = 0.0
    ys[0] = y0
    want = np.empty_like(ys)
    dy = np.empty(y0.size)
    for i in range(n):
        model.rhs(0.0, ys[i], traced.param_values, dy)
        want[i] = dy
    got = evaluate(traced, ys)
    for j, name in enumerate(traced.state_names):
        w, g = want[:, j], got[:, j]
        tol = rtol * np.maximum(np.abs(w), 1e-300) + 1e-12 * np.max(np.abs(w))
        bad = ~((np.abs(w - g) <= tol) | (np.isnan(w) & np.isnan(g)))
        if bad.any():
            owner = next((m.name for m in model.mechanisms
                          if any(s.name == name for s in m.states)), "?")
            i = int(np.flatnonzero(bad)[0])
            raise TraceError(f"mechanism {owner!r}: traced d{name}/dt = {g[i]!r} but the "
                             f"compiled vector field gives {w[i]!r} at a test state")


