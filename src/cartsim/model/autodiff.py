"""Analytic Jacobian of a composed vector field by source transformation (forward mode).

:func:`jacobian_source` reads the generated ``rhs(t, y, p, dy)`` of a composed model and, through
it, the Python source of every kernel and helper it calls, and writes the source of
``jac(t, y, p, J)``: the same arithmetic, flattened, plus the partial derivative of every
intermediate value with respect to each state it depends on (forward-mode automatic
differentiation with the dependency sets resolved at generation time, so only structurally
non-zero partials are ever computed; the output writes only the non-zero entries of J).

How: a partial evaluator walks the source. Loops over constant ranges are unrolled, calls are
inlined, indices such as ``y[S.T0 + c]`` fold to constants, branches on parameters or on
constants fold where they can and otherwise become ``if``/``else`` blocks whose assignments are
merged afterwards. Derivative rules: ``+ - * / **``, unary minus, ``max``/``min``/``abs``
(the derivative of the branch taken; at a tie, the first argument's), conditional expressions
and ``exp``/``log``/``sqrt``. Anything else in a path that depends on the state (``while``,
``break``, a state-dependent index, an unknown function of the state, a write to ``y``) raises
:class:`NotDifferentiable`; the caller then keeps the finite-difference Jacobian.
"""

from __future__ import annotations

import ast
import inspect
import math
import operator
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class NotDifferentiable(Exception):
    """The vector field uses a construct the transformation does not handle."""


@dataclass(frozen=True)
class _Arr:
    """One of the arrays of the vector field: ``y`` (state), ``p`` (parameters), ``dy``."""

    name: str


@dataclass
class _Var:
    """A run-time value: expression text of the value and, per state index, of its partial."""

    val: str
    tan: dict[int, str] = field(default_factory=dict)


_FUNCS_1 = {  # name → derivative of f at the value text x (f(x) text given as fx)
    "exp": lambda x, fx: fx,
    "log": lambda x, fx: f"(1.0 / {x})",
    "sqrt": lambda x, fx: f"(0.5 / {fx})",
}


class _Gen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.indent = 1
        self.counter = 0
        self.names: dict[str, Any] = {"np": np, "math": math}
        self.inline_depth = 0

    # ------------------------------------------------------------------ emission helpers
    def emit(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def fresh(self, stem: str = "v") -> str:
        self.counter += 1
        return f"_{stem}{self.counter}"

    def bind(self, expr: str, tan: dict[int, str]) -> _Var:
        """Emit ``v = expr`` and the partials as locals (partials first: they read the
        operands' current values)."""
        out: dict[int, str] = {}
        for j, d in tan.items():
            if _is_atom(d):
                out[j] = d
            else:
                nm = self.fresh("d")
                self.emit(f"{nm} = {d}")
                out[j] = nm
        v = self.fresh()
        self.emit(f"{v} = {expr}")
        return _Var(v, out)

    def opaque(self, fn: Any) -> str:
        for k, v in self.names.items():
            if v is fn:
                return k
        nm = self.fresh("f")
        self.names[nm] = fn
        return nm


def _is_atom(s: str) -> bool:
    return s.replace("_", "a").replace(".", "a").isalnum() or _is_number(s)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _txt(v: Any) -> str:
    if isinstance(v, _Var):
        return v.val
    if isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return repr(int(v)) if v >= 0 else f"({int(v)!r})"
    if isinstance(v, float):
        if not math.isfinite(v):
            return f"float('{v}')"
        return repr(v) if v >= 0.0 else f"({v!r})"
    raise NotDifferentiable(f"value {v!r} cannot appear in generated code")


def _is_one(v: Any) -> bool:
    return _is_const(v) and not isinstance(v, bool) and isinstance(v, (int, float)) and v == 1


def _is_zero(v: Any) -> bool:
    return _is_const(v) and not isinstance(v, bool) and isinstance(v, (int, float)) and v == 0


def _tan(v: Any) -> dict[int, str]:
    return v.tan if isinstance(v, _Var) else {}


def _mul(a: str, b: str) -> str:
    if a == "1.0":
        return b
    if b == "1.0":
        return a
    return f"{a} * {b}"


def _is_const(v: Any) -> bool:
    return not isinstance(v, (_Var, _Arr, tuple))


class _Return(Exception):
    pass


class _Scope:
    def __init__(self, glb: dict[str, Any], loc: dict[str, Any]) -> None:
        self.glb = glb
        self.loc = loc


class _Eval:
    """Partial evaluator and differentiator over one flattened vector field."""

    def __init__(self, gen: _Gen, dy: dict[int, Any]) -> None:
        self.g = gen
        self.dy = dy

    # ------------------------------------------------------------------ expressions
    def expr(self, node: ast.expr, sc: _Scope) -> Any:
        g = self.g
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in sc.loc:
                return sc.loc[node.id]
            if node.id in sc.glb:
                return sc.glb[node.id]
            import builtins
            if hasattr(builtins, node.id):
                return getattr(builtins, node.id)
            raise NotDifferentiable(f"unknown name {node.id}")
        if isinstance(node, ast.Attribute):
            base = self.expr(node.value, sc)
            if isinstance(base, (_Var, _Arr)):
                raise NotDifferentiable(f"attribute of a run-time value: {ast.unparse(node)}")
            return getattr(base, node.attr)
        if isinstance(node, ast.Tuple):
            return tuple(self.expr(e, sc) for e in node.elts)
        if isinstance(node, ast.Subscript):
            base = self.expr(node.value, sc)
            idx = self.expr(node.slice, sc)
            if not isinstance(base, _Arr):
                if _is_const(base) and _is_const(idx):
                    return base[idx]
                if isinstance(base, tuple) and _is_const(idx):
                    return base[int(idx)]
                raise NotDifferentiable(f"subscript {ast.unparse(node)}")
            if base.name == "p":
                if isinstance(idx, _Var) and idx.tan:
                    raise NotDifferentiable("parameter index depends on the state")
                return _Var(f"p[{_txt(idx)}]")
            if isinstance(idx, _Var):
                raise NotDifferentiable(f"state index not constant: {ast.unparse(node)}")
            i = int(idx)
            if base.name == "y":
                return _Var(f"y[{i}]", {i: "1.0"})
            if i not in self.dy:
                raise NotDifferentiable(f"dy[{i}] read before it is written")
            return self.dy[i]
        if isinstance(node, ast.UnaryOp):
            a = self.expr(node.operand, sc)
            if _is_const(a):
                return {ast.USub: lambda x: -x, ast.UAdd: lambda x: +x,
                        ast.Not: lambda x: not x}[type(node.op)](a)
            if isinstance(node.op, ast.USub):
                return g.bind(f"-{a.val}", {j: f"-{d}" for j, d in a.tan.items()})
            if isinstance(node.op, ast.UAdd):
                return a
            if isinstance(node.op, ast.Not):
                return _Var(g.bind(f"not {a.val}", {}).val)
            raise NotDifferentiable(ast.unparse(node))
        if isinstance(node, ast.BinOp):
            return self.binop(node.op, self.expr(node.left, sc), self.expr(node.right, sc))
        if isinstance(node, ast.Compare):
            vals = [self.expr(node.left, sc)] + [self.expr(c, sc) for c in node.comparators]
            if all(_is_const(v) for v in vals):
                ok = True
                for op, x, z in zip(node.ops, vals, vals[1:], strict=False):
                    ok = ok and _CMP[type(op)](x, z)
                return ok
            ops = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
                   ast.NotEq: "!="}
            parts = [_txt(vals[0])]
            for op, v in zip(node.ops, vals[1:], strict=True):
                if type(op) not in ops:
                    raise NotDifferentiable(ast.unparse(node))
                parts += [ops[type(op)], _txt(v)]
            return g.bind("(" + " ".join(parts) + ")", {})
        if isinstance(node, ast.BoolOp):
            vals = [self.expr(v, sc) for v in node.values]
            if all(_is_const(v) for v in vals):
                out = vals[0]
                for v in vals[1:]:
                    out = (out and v) if isinstance(node.op, ast.And) else (out or v)
                return out
            word = " and " if isinstance(node.op, ast.And) else " or "
            return g.bind("(" + word.join(f"({_txt(v)})" for v in vals) + ")", {})
        if isinstance(node, ast.IfExp):
            c = self.expr(node.test, sc)
            if _is_const(c):
                return self.expr(node.body if c else node.orelse, sc)
            a = self.expr(node.body, sc)
            b = self.expr(node.orelse, sc)
            js = sorted(set(_tan(a)) | set(_tan(b)))
            return g.bind(
                f"({_txt(a)} if {c.val} else {_txt(b)})",
                {j: f"({_tan(a).get(j, '0.0')} if {c.val} else {_tan(b).get(j, '0.0')})"
                 for j in js})
        if isinstance(node, ast.Call):
            return self.call(node, sc)
        raise NotDifferentiable(f"expression {ast.unparse(node)}")

    def binop(self, op: ast.operator, a: Any, b: Any) -> Any:
        g = self.g
        if _is_const(a) and _is_const(b):
            return _CONST_OPS[type(op)](a, b)
        # identities that keep the generated code short (x * 1.0 is x in IEEE arithmetic;
        # x + 0.0 is x except for x = -0.0, which no state derivative distinguishes)
        if isinstance(op, ast.Mult) and _is_one(a):
            return b
        if isinstance(op, (ast.Mult, ast.Div)) and _is_one(b):
            return a
        if isinstance(op, ast.Add) and _is_zero(a):
            return b
        if isinstance(op, (ast.Add, ast.Sub)) and _is_zero(b):
            return a
        ta, tb = _tan(a), _tan(b)
        x, z = _txt(a), _txt(b)
        js = sorted(set(ta) | set(tb))
        if isinstance(op, (ast.Add, ast.Sub)):
            s = "+" if isinstance(op, ast.Add) else "-"
            tan = {}
            for j in js:
                if j in ta and j in tb:
                    tan[j] = f"{ta[j]} {s} {tb[j]}"
                elif j in ta:
                    tan[j] = ta[j]
                else:
                    tan[j] = tb[j] if s == "+" else f"-{tb[j]}"
            return g.bind(f"{x} {s} {z}", tan)
        if isinstance(op, ast.Mult):
            tan = {}
            for j in js:
                terms = []
                if j in ta:
                    terms.append(_mul(ta[j], z))
                if j in tb:
                    terms.append(_mul(x, tb[j]))
                tan[j] = " + ".join(terms)
            return g.bind(f"{x} * {z}", tan)
        if isinstance(op, ast.Div):
            if not tb:
                return g.bind(f"{x} / {z}", {j: f"{ta[j]} / {z}" for j in js})
            q = g.bind(f"{x} / {z}", {})  # value first: partials reuse it
            tan = {}
            for j in js:
                if j not in tb:
                    tan[j] = f"{ta[j]} / {z}"
                    continue
                num = f"{ta[j]} - {_mul(q.val, tb[j])}" if j in ta else f"-{_mul(q.val, tb[j])}"
                tan[j] = f"({num}) / {z}"
            return g.bind(q.val, tan)
        if isinstance(op, ast.Pow):
            if isinstance(b, (int, float)) and not isinstance(b, bool):
                if b == 2:
                    return self.binop(ast.Mult(), a, a)
                return g.bind(f"{x} ** {z}", {j: f"{_mul(repr(float(b)), x)} ** {float(b) - 1.0!r}"
                                              f" * {ta[j]}" for j in js})
            if not tb:
                # exponent constant for the derivative (a parameter)
                return g.bind(f"{x} ** {z}",
                              {j: f"{z} * {x} ** ({z} - 1.0) * {ta[j]}" for j in js})
            v = g.bind(f"{x} ** {z}", {})
            tan = {}
            for j in js:
                terms = []
                if j in ta:
                    terms.append(f"{z} * {x} ** ({z} - 1.0) * {ta[j]}")
                terms.append(f"{v.val} * np.log({x}) * {tb[j]}")
                tan[j] = " + ".join(terms)
            return g.bind(v.val, tan)
        raise NotDifferentiable(f"operator {type(op).__name__} on a run-time value")

    def call(self, node: ast.Call, sc: _Scope) -> Any:
        g = self.g
        fn = self.expr(node.func, sc)
        args = [self.expr(a, sc) for a in node.args]
        kw = {k.arg: self.expr(k.value, sc) for k in node.keywords if k.arg}
        if len(kw) != len(node.keywords):
            raise NotDifferentiable("**kwargs in a call")
        if fn in (max, min) and len(args) == 2 and not kw:
            a, b = args
            if _is_const(a) and _is_const(b):
                return fn(a, b)
            cmp = ">=" if fn is max else "<="
            c = g.bind(f"({_txt(a)} {cmp} {_txt(b)})", {})
            js = sorted(set(_tan(a)) | set(_tan(b)))
            return g.bind(
                f"({_txt(a)} if {c.val} else {_txt(b)})",
                {j: f"({_tan(a).get(j, '0.0')} if {c.val} else {_tan(b).get(j, '0.0')})"
                 for j in js})
        if fn is abs and len(args) == 1:
            a = args[0]
            if _is_const(a):
                return abs(a)
            c = g.bind(f"({a.val} >= 0.0)", {})
            return g.bind(f"abs({a.val})",
                          {j: f"({d} if {c.val} else -{d})" for j, d in a.tan.items()})
        if fn in (float, int) and len(args) == 1:
            a = args[0]
            if _is_const(a):
                return fn(a)
            if fn is int and a.tan:
                raise NotDifferentiable("int() of a state-dependent value")
            return g.bind(f"{fn.__name__}({a.val})", dict(a.tan))
        if fn is range:
            if all(_is_const(a) for a in args):
                return range(*args)
            raise NotDifferentiable("range over run-time bounds")
        for name, rule in _FUNCS_1.items():
            if fn in (getattr(math, name), getattr(np, name)) and len(args) == 1:
                a = args[0]
                if _is_const(a):
                    return float(fn(a))
                v = g.bind(f"np.{name}({a.val})", {})
                d = rule(a.val, v.val)
                return g.bind(v.val, {j: _mul(d, t) for j, t in a.tan.items()})
        py = getattr(fn, "py_func", fn)
        if inspect.isfunction(py):
            return self.inline(py, args, kw)
        if all(_is_const(a) or (isinstance(a, _Var) and not a.tan) for a in args) and not kw:
            return g.bind(f"{g.opaque(fn)}({', '.join(_txt(a) for a in args)})", {})
        raise NotDifferentiable(f"call of {fn!r} on state-dependent arguments")

    # ------------------------------------------------------------------ functions
    def inline(self, py: Any, args: list[Any], kw: dict[str, Any]) -> Any:
        g = self.g
        g.inline_depth += 1
        if g.inline_depth > 40:
            raise NotDifferentiable("recursion")
        try:
            src = textwrap.dedent(inspect.getsource(py))
        except (OSError, TypeError) as e:
            raise NotDifferentiable(f"no source for {py.__qualname__}") from e
        fdef = next(n for n in ast.parse(src).body
                    if isinstance(n, ast.FunctionDef))
        sig = inspect.signature(py)
        try:
            bound = sig.bind(*args, **kw)
        except TypeError as e:
            raise NotDifferentiable(str(e)) from e
        bound.apply_defaults()
        glb = dict(py.__globals__)
        if py.__closure__:
            for name, cell in zip(py.__code__.co_freevars, py.__closure__, strict=True):
                glb[name] = cell.cell_contents
        sc = _Scope(glb, dict(bound.arguments))
        try:
            out = self.block(fdef.body, sc)
        finally:
            g.inline_depth -= 1
        return out[1] if out[0] == "ret" else None

    # ------------------------------------------------------------------ statements
    def block(self, stmts: list[ast.stmt], sc: _Scope) -> tuple[str, Any]:
        """Run ``stmts``; ('fall', None) or ('ret', value)."""
        for i, st in enumerate(stmts):
            if isinstance(st, ast.Return):
                return "ret", (None if st.value is None else self.expr(st.value, sc))
            if isinstance(st, ast.If):
                c = self.expr(st.test, sc)
                if _is_const(c):
                    r = self.block(st.body if c else st.orelse, sc)
                    if r[0] == "ret":
                        return r
                    continue
                rest = stmts[i + 1:]
                if _returns(st.body) or _returns(st.orelse):
                    return self.branch(c, st.body + rest, st.orelse + rest, sc, tail=True)
                self.branch(c, st.body, st.orelse, sc, tail=False)
                continue
            self.stmt(st, sc)
        return "fall", None

    def branch(self, c: _Var, body: list[ast.stmt], orelse: list[ast.stmt], sc: _Scope,
               tail: bool) -> tuple[str, Any]:
        """Both arms of a run-time ``if``; afterwards every local and every ``dy`` entry
        that differs between them is merged into a fresh variable assigned in each arm."""
        g = self.g
        outer_lines, indent = g.lines, g.indent
        dy0 = dict(self.dy)
        arms = []
        for stmts in (body, orelse):
            g.lines, g.indent = [], indent + 1
            self.dy = dict(dy0)
            s = _Scope(sc.glb, dict(sc.loc))
            r = self.block(stmts, s)
            arms.append((g.lines, s, self.dy, r))
        g.lines, g.indent = outer_lines, indent
        (la, sa, dya, ra), (lb, sb, dyb, rb) = arms

        def merge(a: Any, b: Any) -> Any:
            if a is b or (_is_const(a) and _is_const(b) and type(a) is type(b) and a == b):
                return a
            if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
                return tuple(merge(x, z) for x, z in zip(a, b, strict=True))
            if isinstance(a, _Arr) or isinstance(b, _Arr) or isinstance(a, tuple) \
                    or isinstance(b, tuple):
                raise NotDifferentiable("arrays or tuples differ between branches")
            if not (isinstance(a, (_Var, int, float)) and isinstance(b, (_Var, int, float))):
                raise NotDifferentiable(f"cannot merge {a!r} and {b!r}")
            m = g.fresh("m")
            js = sorted(set(_tan(a)) | set(_tan(b)))
            tan = {j: f"{m}_{j}" for j in js}
            pad = "    " * (indent + 1)
            for lines, v in ((la, a), (lb, b)):
                for j in js:
                    lines.append(f"{pad}{tan[j]} = {_tan(v).get(j, '0.0')}")
                lines.append(f"{pad}{m} = {_txt(v)}")
            return _Var(m, tan)

        if tail:
            if ra[0] != rb[0]:
                raise NotDifferentiable("a branch returns and the other falls through")
            rv = None if ra[1] is None and rb[1] is None else merge(ra[1], rb[1])
        for k in set(sa.loc) & set(sb.loc):
            sc.loc[k] = merge(sa.loc[k], sb.loc[k])
        for k in set(sc.loc) - (set(sa.loc) & set(sb.loc)):
            del sc.loc[k]
        newdy = {}
        for k in set(dya) | set(dyb):
            if k not in dya or k not in dyb:
                raise NotDifferentiable(f"dy[{k}] written in one branch only")
            newdy[k] = merge(dya[k], dyb[k])
        self.dy = newdy
        g.emit(f"if {c.val}:")
        g.lines.extend(la or ["    " * (indent + 1) + "pass"])
        g.emit("else:")
        g.lines.extend(lb or ["    " * (indent + 1) + "pass"])
        if tail:
            return ra[0], rv
        return "fall", None

    def stmt(self, st: ast.stmt, sc: _Scope) -> None:
        if isinstance(st, ast.Expr):
            if isinstance(st.value, ast.Constant):
                return  # docstring
            self.expr(st.value, sc)
            return
        if isinstance(st, ast.Pass):
            return
        if isinstance(st, ast.Assign):
            v = self.expr(st.value, sc)
            for t in st.targets:
                self.assign(t, v, sc)
            return
        if isinstance(st, ast.AnnAssign):
            if st.value is not None:
                self.assign(st.target, self.expr(st.value, sc), sc)
            return
        if isinstance(st, ast.AugAssign):
            cur = self.expr(_load(st.target), sc)
            self.assign(st.target, self.binop(st.op, cur, self.expr(st.value, sc)), sc)
            return
        if isinstance(st, ast.For):
            it = self.expr(st.iter, sc)
            if isinstance(it, (_Var, _Arr)) or st.orelse:
                raise NotDifferentiable("loop over run-time values")
            for x in it:
                self.assign(st.target, x, sc)
                r = self.block(st.body, sc)
                if r[0] == "ret":
                    raise NotDifferentiable("return inside a loop")
            return
        if isinstance(st, ast.If):  # only reached through block()
            raise AssertionError
        raise NotDifferentiable(f"statement {type(st).__name__}: {ast.unparse(st)[:60]}")

    def assign(self, target: ast.expr, v: Any, sc: _Scope) -> None:
        if isinstance(target, ast.Name):
            sc.loc[target.id] = v
            return
        if isinstance(target, ast.Tuple):
            if not isinstance(v, tuple) or len(v) != len(target.elts):
                raise NotDifferentiable("tuple assignment from a non-tuple")
            for t, x in zip(target.elts, v, strict=True):
                self.assign(t, x, sc)
            return
        if isinstance(target, ast.Subscript):
            base = self.expr(target.value, sc)
            idx = self.expr(target.slice, sc)
            if not (isinstance(base, _Arr) and base.name == "dy") or not _is_const(idx):
                raise NotDifferentiable(f"write to {ast.unparse(target)}")
            if isinstance(v, _Var) and not _is_atom(v.val):
                v = self.g.bind(v.val, v.tan)
            self.dy[int(idx)] = v
            return
        raise NotDifferentiable(f"assignment target {ast.unparse(target)}")


def _load(t: ast.expr) -> ast.expr:
    t2 = ast.parse(ast.unparse(t), mode="eval").body
    return t2


def _returns(stmts: list[ast.stmt]) -> bool:
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, ast.Return):
                return True
    return False


_CMP = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

_CONST_OPS = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b, ast.Mod: lambda a, b: a % b,
    ast.FloorDiv: lambda a, b: a // b,
}


@dataclass
class JacobianCode:
    """Generated ``jac(t, y, p, J)`` source, the globals it needs and its pattern."""

    source: str
    names: dict[str, Any]
    pattern: np.ndarray
    #: ``rhs_flat(t, y, p, dy)``: the flattened vector field the partials were taken of (the
    #: same statements, values only written out; for tests, run as plain Python)
    flat_source: str = ""


def jacobian_source(rhs_source: str, rhs_globals: dict[str, Any], n_states: int,
                    header: str = "") -> JacobianCode:
    """The analytic Jacobian of the generated ``rhs`` (see the module docstring).

    Raises :class:`NotDifferentiable` when a construct on a state-dependent path is not
    handled."""
    fdef = next(n for n in ast.parse(rhs_source).body if isinstance(n, ast.FunctionDef))
    gen = _Gen()
    ev = _Eval(gen, {})
    sc = _Scope(dict(rhs_globals), {"t": _Var("t"), "y": _Arr("y"), "p": _Arr("p"),
                                    "dy": _Arr("dy")})
    ev.block(fdef.body, sc)
    pattern = np.zeros((n_states, n_states), dtype=bool)
    out: list[str] = []
    for i in sorted(ev.dy):
        v = ev.dy[i]
        for j, d in sorted(_tan(v).items()):
            if not 0 <= j < n_states:
                raise NotDifferentiable(f"state index {j} out of range")
            pattern[i, j] = True
            out.append(f"    J[{i}, {j}] = {d}")
    for i in range(n_states):
        if i not in ev.dy:
            raise NotDifferentiable(f"dy[{i}] never written")
    src = "\n".join([header, "", "", "def jac(t, y, p, J):", *gen.lines, *out, ""])
    vals = [f"    dy[{i}] = {_txt(ev.dy[i])}" for i in sorted(ev.dy)]
    flat = "\n".join(["def rhs_flat(t, y, p, dy):", *gen.lines, *vals, ""])
    return JacobianCode(src, gen.names, pattern, flat)
