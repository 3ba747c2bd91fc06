"""Random differentiable Python programs, and differential checks of Tangent on them.

The generator writes seeded random modules in the subset Tangent differentiates: a function
``f`` (the one checked) and helpers it calls, which call each other; arithmetic with
``+ - * / **`` and unary minus; NumPy and ``math`` calls with recipes; reductions, matrix
products and reshapes; broadcasting between scalars, vectors ``(3,)`` and ``(2,)``, matrices
``(2, 3)``, rows ``(1, 3)`` and columns ``(2, 1)``; if/elif/else, ``for`` over ``range`` and
over rows, ``while`` with a counter, ``break``/``continue``, early returns; subscript reads and
writes; overwrites and augmented assignments; tuples; lists with ``append``. Values stay
moderate (each expression carries a bound; growing ones are squashed) so that central finite
differences are accurate, and ops with kinks are rare; a point near a kink is detected (finite
differences with two step sizes disagree) and only the exact checks run there.

``check(program)`` runs the checks on one program:

- ``tangent.grad`` against central finite differences, per float parameter and for all of them;
- optimized against unoptimized gradients (so the optimizer, ``src/shapes.rs`` included, never
  changes a value), split against joint motion, ``preserve_result``;
- ``tangent.jvp`` along a random direction against ``dot(gradient, direction)``;
- ``tangent.hvp`` against finite differences of the gradient (``hvp=True``);
- autograd, when installed and the program is in its subset, as an independent reference.

A clean ``TangentError`` (not ``InternalError``) is a *rejection*, fine for a program outside
the subset; the generator should rarely cause one, and callers assert a high acceptance rate.

Effects class (``--effects``, ``generate(..., effects=True)``; issue 13): most programs (the
share ``EFFECTS_SHARE``) have effects, aliasing and in-place writes, mixed with the constructs
above: ``f`` takes a random state ``rs`` and a list ``log``, passed down to helpers that draw
(``rs.randn(3)``, ``rs.normal(size=...)``, draws not used, draws in conditions), append and
print; helpers that write into an array they are given (``def h(p, out): out[...] = ...``) or
change a parameter in place; ``out=`` (keyword and positional), ``np.copyto``, ``.fill``,
slice writes, augmented assignment on fresh, aliased and parameter arrays; views kept and read
after an in-place change (``w = v[:2]``, ``m.T``, ``v.reshape(-1)``, views of views, rows of
``for row in m``) and ``b = a`` followed by a change in place or a rebinding. Every evaluation
gets fresh arguments (a new ``RandomState`` with the same seed, a new list, copies of arrays),
so the derivative is well defined; and every derivative call must have the effects of one call
of ``f``: the same next draw of the random state, the same list, the same output, the same
in-place changes of array arguments (failure kinds ``effects-draws``, ``effects-list``,
``effects-stdout``, ``effects-args``, reported after wrong values). Acceptance is counted
apart for these programs (``Stats.effects_acceptance``): the engine may refuse them.

Command line (for long runs; ``scripts/fuzz.sh`` calls it)::

    python tests/python/fuzzgen.py --programs 2000 --seed 7      # check 2000 programs
    python tests/python/fuzzgen.py --minutes 10                  # as many as fit, random seed
    python tests/python/fuzzgen.py --show 7:12                   # print program 12 of seed 7
    python tests/python/fuzzgen.py --seed 7 --only 12 --minimize # minimize a failure
    ... --save DIR                                               # write minimized failures
    ... --effects                                                # with the effects class
    ... --per-kind 3 --minimize-seconds 60                       # minimize fewer, faster

Program ``i`` of seed ``s`` is the same on every machine (``random.Random(f"{s}:{i}")``).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib.util
import io
import itertools
import json
import math
import os
import random
import re
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from gradcheck import numeric_grad

M, N = 2, 3
SHAPES = [(), (N,), (M,), (M, N), (1, N), (M, 1)]
SCALAR = ()


def _broadcast(a, b):
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


#: For each shape, the operand shape pairs whose broadcast is that shape.
PAIRS = {s: [(a, b) for a in SHAPES for b in SHAPES if _broadcast(a, b) == s] for s in SHAPES}
#: Index of each dimension size, for subscripts.
SIZE = {(N,): N, (M,): M}


# ---------------------------------------------------------------------------------- programs


@dataclass
class Program:
    """A module's source, the arguments to call ``f`` with, and what the generator knows."""

    source: str
    args: list
    label: str = ""
    #: Positions of the float (differentiable) parameters of ``f``.
    float_positions: list = field(default_factory=list)
    #: Seed of the random directions of the checks.
    rng_seed: int = 0
    #: A program of the effects class (``--effects``): every derivative call must have the
    #: effects of one call of ``f`` (see ``_observe``); arguments may be changed in place.
    effects: bool = False

    def describe(self):
        klass = f"{EFFECTS_MARK}\n" if self.effects else ""
        return f"# program {self.label}\n{klass}# fuzz-args: {encode_args(self.args)}\n{self.source}"


#: The line that marks a saved program of the effects class.
EFFECTS_MARK = "# fuzz-class: effects"


class RandomStateArg:
    """An argument of ``f`` that is a ``np.random.RandomState(seed)``: every evaluation (primal,
    finite differences, each derivative) gets a fresh one with the same seed, so that the
    function is deterministic and its derivative well defined."""

    def __init__(self, seed):
        self.seed = seed

    def make(self):
        return np.random.RandomState(self.seed)

    def __repr__(self):
        return f"RandomState({self.seed})"


class ListArg:
    """An argument of ``f`` that is a list (a log the program appends to): every evaluation
    gets a fresh copy of ``items``."""

    def __init__(self, items=()):
        self.items = list(items)

    def make(self):
        return [x.copy() if isinstance(x, np.ndarray) else x for x in self.items]

    def __repr__(self):
        return f"list({self.items})"


def encode_args(args):
    """JSON for a list of arguments: arrays as {"array": nested lists}."""
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            out.append({"array": a.tolist()})
        elif isinstance(a, RandomStateArg):
            out.append({"random_state": a.seed})
        elif isinstance(a, ListArg):
            out.append({"list": a.items})
        else:
            out.append(a)
    return json.dumps(out)


def decode_args(text):
    out = []
    for a in json.loads(text):
        if isinstance(a, dict) and "random_state" in a:
            out.append(RandomStateArg(a["random_state"]))
        elif isinstance(a, dict) and "list" in a:
            out.append(ListArg(a["list"]))
        elif isinstance(a, dict):
            out.append(np.array(a["array"], dtype=np.float64))
        else:
            out.append(a)
    return out


def program_from_file(path):
    """A program from a file with a ``# fuzz-args: [...]`` line (regression fixtures)."""
    with open(path) as f:
        source = f.read()
    match = re.search(r"^# fuzz-args: (.*)$", source, re.MULTILINE)
    if not match:
        raise ValueError(f"{path}: no `# fuzz-args: [...]` line")
    args = decode_args(match.group(1))
    positions = [i for i, a in enumerate(args) if isinstance(a, (float, np.ndarray))]
    effects = re.search(rf"^{EFFECTS_MARK}$", source, re.MULTILINE) is not None or any(isinstance(a, (RandomStateArg, ListArg)) for a in args)
    return Program(source, args, os.path.basename(path), positions, effects=effects)


@dataclass
class Var:
    name: str
    shape: tuple
    bound: float
    #: May be updated in place (`v += ...`, `v[i] = ...`): created fresh, never aliased since.
    mutable: bool = False
    is_list: bool = False
    #: Appends that certainly happened (lists).
    min_len: int = 0
    #: A loop variable and its largest value.
    loop_max: int | None = None
    #: Effects programs: names known to share memory with this array (views, `b = a`); an
    #: in-place change raises their bounds too.
    aliases: frozenset = frozenset()


class _Scope:
    def __init__(self, vars=(), handles=()):
        self.vars = {v.name: v for v in vars}
        #: Effect handles the function has (parameters `rs`, `log`; effects programs only).
        self.handles = tuple(handles)

    def copy(self):
        return _Scope((copy.copy(v) for v in self.vars.values()), self.handles)

    def of_shape(self, shape):
        return [v for v in self.vars.values() if not v.is_list and v.loop_max is None and v.shape == shape]

    def lists(self, shape=None, nonempty=False):
        return [v for v in self.vars.values() if v.is_list and (shape is None or v.shape == shape) and (not nonempty or v.min_len > 0)]

    def loop_vars(self):
        return [v for v in self.vars.values() if v.loop_max is not None]


@dataclass
class _Helper:
    name: str
    params: list  # (name, shape)
    returns: list  # one shape, or two for a pair; none for a helper writing into `out`
    default: bool  # a trailing scalar parameter `c=0.5`
    #: Effect handles passed after the parameters (`rs`, `log`).
    handles: tuple = ()
    #: Parameters the helper may change in place.
    written: frozenset = frozenset()


class _Expr:
    """Generated expression: text, shape, bound on its magnitude, whether it is a new array (not
    a view or alias of a variable), and the variable names it reads."""

    __slots__ = ("bound", "fresh", "names", "shape", "text")

    def __init__(self, text, shape, bound, fresh, names):
        self.text, self.shape, self.bound, self.fresh, self.names = text, shape, bound, fresh, names


def _atomic(text):
    """`text` safe before `.attr`, `[i]` or as an operand: parenthesized unless it is a name, a
    call, a subscript or an attribute."""
    body = ast.parse(text, mode="eval").body
    if isinstance(body, (ast.Name, ast.Call, ast.Subscript, ast.Attribute)):
        return text
    return f"({text})"


class Generator:
    """Writes one random program; see the module docstring."""

    CONSTS = ("0.5", "1.5", "-0.7", "2.0", "0.3", "-1.2", "0.25")

    def __init__(self, rng: random.Random, effects=False):
        self.rng = rng
        self.lines = []
        self.helpers: list[_Helper] = []
        self.uses_math = False
        self.counter = itertools.count()
        #: Write a program of the effects class (see `effect_statements`); without it, the generator
        #: draws exactly the random numbers it always drew (default programs do not change).
        self.effects = effects
        #: Effects programs: whether functions print.
        self.prints = False
        #: Names changed in place in the function being written (effects programs).
        self.written = set()

    # ---------------------------------------------------------------- helpers

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, items, weights=None):
        return self.rng.choices(items, weights=weights)[0] if weights else self.rng.choice(items)

    def fresh_name(self, prefix="v"):
        return f"{prefix}{next(self.counter)}"

    def emit(self, depth, text):
        self.lines.append("    " * depth + text)

    # ------------------------------------------------------------ expressions

    def const(self, shape):
        if shape == SCALAR:
            c = self.pick(self.CONSTS)
            return _Expr(c, shape, abs(float(c)), True, set())
        size = int(np.prod(shape))
        lo, hi = self.pick([(-1.0, 1.0), (0.5, 1.5), (-0.5, 0.25)])
        text = f"np.linspace({lo}, {hi}, {size})"
        if len(shape) == 2:
            text += f".reshape({shape[0]}, {shape[1]})"
        return _Expr(text, shape, max(abs(lo), abs(hi)), True, set())

    def leaf(self, scope, shape):
        """A variable of `shape` (recent ones more likely), an item of one, or a constant."""
        candidates = scope.of_shape(shape)
        weights = [1 + k for k in range(len(candidates))]
        if shape == SCALAR:
            # Items of vectors and matrices are scalars too.
            for v in scope.of_shape((N,)) + scope.of_shape((M,)):
                candidates.append(("item", v))
                weights.append(2)
            for v in scope.of_shape((M, N)):
                candidates.append(("item2", v))
                weights.append(2)
        if not candidates or self.chance(0.06):
            return self.const(shape)
        choice = self.pick(candidates, weights)
        if isinstance(choice, tuple):
            kind, v = choice
            if kind == "item":
                return _Expr(f"{v.name}[{self.index(scope, v.shape[0])}]", SCALAR, v.bound, True, {v.name})
            return _Expr(f"{v.name}[{self.rng.randrange(M)}, {self.rng.randrange(N)}]", SCALAR, v.bound, True, {v.name})
        return _Expr(choice.name, shape, choice.bound, shape == SCALAR, {choice.name})

    def available(self, scope, shape):
        return bool(scope.of_shape(shape)) or (shape == SCALAR and any(scope.of_shape(s) for s in SHAPES))

    def derived(self, scope, shape, depth):
        """An expression of `shape` built from variables of other shapes (when none has it)."""
        options = [(a, b) for a, b in PAIRS[shape] if self.available(scope, a) and self.available(scope, b)]
        if options:
            sa, sb = self.pick(options)
            a, b = self.leaf(scope, sa), self.leaf(scope, sb)
            op = self.pick(["+", "-", "*"])
            return _Expr(f"{_atomic(a.text)} {op} {_atomic(b.text)}", shape, a.bound * b.bound if op == "*" else a.bound + b.bound, True, a.names | b.names)
        for kind in ("reduce", "matmul", "index", "reshape"):
            e = getattr(self, "_" + kind)(scope, shape, -1)
            if e is not None and e.names:
                return e
        return self.const(shape)

    def index(self, scope, size):
        """An index below `size`: a constant, or a loop variable known to stay below it."""
        loops = [v for v in scope.loop_vars() if v.loop_max < size]
        if loops and self.chance(0.6):
            return self.pick(loops).name
        k = self.rng.randrange(size)
        return str(k - size if self.chance(0.2) else k)

    def squash(self, e):
        """`e` with its bound brought back to about 1 (when it grew)."""
        if e.bound <= 4.0:
            return e
        fn = self.pick(["np.tanh", "np.sin"])
        return _Expr(f"{fn}({e.text})", e.shape, 1.0, True, e.names)

    def expr(self, scope, shape, depth):
        if depth <= 0 or self.chance(0.22):
            if not self.available(scope, shape) and depth >= 0 and self.chance(0.9):
                return self.derived(scope, shape, depth)
            return self.leaf(scope, shape)
        kinds = ["binop", "unary", "div", "reduce", "matmul", "index", "reshape", "call", "ifexp", "list", "kink", "method"]
        weights = [10, 7, 2, 3, 3, 2, 2, 3, 1, 1, 1, 1]
        if self.effects and "rs" in scope.handles:
            kinds, weights = kinds + ["draw"], weights + [2]
        for _ in range(8):
            kind = self.pick(kinds, weights)
            e = getattr(self, "_" + kind)(scope, shape, depth - 1)
            if e is not None:
                return self.squash(e) if e.bound > 50.0 else e
        return self.leaf(scope, shape)

    def _binop(self, scope, shape, depth):
        sa, sb = self.pick(PAIRS[shape])
        a, b = self.expr(scope, sa, depth), self.expr(scope, sb, depth)
        op = self.pick(["+", "-", "*", "**"] if sb == SCALAR else ["+", "-", "*"], [4, 3, 4, 1] if sb == SCALAR else None)
        if op == "**":
            a = self.squash(a)
            p = self.pick(["2", "3"])
            return _Expr(f"{_atomic(a.text)} ** {p}", sa if _broadcast(sa, SCALAR) == shape else shape, a.bound ** int(p), True, a.names) if sa == shape else None
        bound = a.bound * b.bound if op == "*" else a.bound + b.bound
        return _Expr(f"{_atomic(a.text)} {op} {_atomic(b.text)}", shape, bound, True, a.names | b.names)

    def _div(self, scope, shape, depth):
        a = self.expr(scope, shape, depth)
        sb = self.pick([SCALAR, shape])
        b = self.squash(self.expr(scope, sb, depth))
        if self.chance(0.5):
            text = f"{_atomic(a.text)} / ({self.pick(['1.0', '2.0'])} + {_atomic(b.text)} * {_atomic(b.text)})"
        else:
            text = f"{_atomic(a.text)} / (2.0 + np.sin({b.text}))"
        return _Expr(text, shape, a.bound, True, a.names | b.names)

    def _unary(self, scope, shape, depth):
        a = self.expr(scope, shape, depth)
        t = a.text
        options = [
            ("np.sin", 1.0), ("np.cos", 1.0), ("np.tanh", 1.0), ("neg", a.bound), ("np.exp", None),
            ("log", None), ("sqrt", None), ("np.square", a.bound ** 2), ("softplus", None), ("np.arctan", 2.0),
            ("constpow", None), ("tuple", a.bound),
        ]
        if shape == SCALAR:
            options += [("math.sin", 1.0), ("math.tanh", 1.0), ("math.exp", None), ("mathlog", None), ("float", a.bound)]
        fn, bound = self.pick(options)
        if fn == "neg":
            return _Expr(f"-{_atomic(t)}", shape, bound, True, a.names)
        if fn == "constpow":
            # A negative constant as the base of a power (the sign must survive printing).
            c = self.pick(["-0.5", "-1.5", "-2.0"])
            p = self.pick(["2", "3"])
            return _Expr(f"({c}) ** {p} * {_atomic(t)}", shape, abs(float(c)) ** int(p) * a.bound, True, a.names)
        if fn == "tuple":
            # Through a tuple: built, then indexed.
            b = self.leaf(scope, SCALAR)
            if self.chance(0.5):
                return _Expr(f"({t}, {b.text})[0]", shape, a.bound, a.fresh, a.names | b.names)
            return _Expr(f"({b.text}, {t})[-1]", shape, a.bound, a.fresh, a.names | b.names)
        if fn in ("np.exp", "math.exp"):
            a = self.squash(a) if a.bound > 3.0 else a
            if fn == "math.exp":
                self.uses_math = True
            return _Expr(f"{fn}({a.text})", shape, math.exp(min(a.bound, 4.0)), True, a.names)
        if fn == "log":
            return _Expr(f"np.log(1.0 + {_atomic(t)} * {_atomic(t)})", shape, 2 * math.log1p(a.bound) + 0.1, True, a.names)
        if fn == "mathlog":
            self.uses_math = True
            return _Expr(f"math.log(1.0 + {_atomic(t)} ** 2)", shape, 2 * math.log1p(a.bound) + 0.1, True, a.names)
        if fn == "sqrt":
            return _Expr(f"np.sqrt({_atomic(t)} ** 2 + 1.0)", shape, a.bound + 1.0, True, a.names)
        if fn == "softplus":
            a = self.squash(a) if a.bound > 20.0 else a
            return _Expr(f"np.log1p(np.exp({a.text}))", shape, a.bound + 1.0, True, a.names)
        if fn.startswith("math."):
            self.uses_math = True
        return _Expr(f"{fn}({t})", shape, bound, True, a.names)

    def _reduce(self, scope, shape, depth):
        if shape == SCALAR:
            src = self.pick([(N,), (M,), (M, N), (1, N), (M, 1)])
            a = self.expr(scope, src, depth)
            size = int(np.prod(src))
            fn = self.pick(["np.sum", "np.mean", "method_sum", "dot"])
            if fn == "method_sum":
                return _Expr(f"{_atomic(a.text)}.sum()", SCALAR, a.bound * size, True, a.names)
            if fn == "dot" and len(src) == 1:
                b = self.expr(scope, src, depth)
                return _Expr(f"np.dot({a.text}, {b.text})", SCALAR, a.bound * b.bound * size, True, a.names | b.names)
            return _Expr(f"{'np.sum' if fn != 'np.mean' else 'np.mean'}({a.text})", SCALAR, a.bound * (size if fn != "np.mean" else 1), True, a.names)
        axis = {(N,): (0, False), (M,): (1, False), (1, N): (0, True), (M, 1): (1, True)}.get(shape)
        if axis is None:
            return None
        ax, keep = axis
        a = self.expr(scope, (M, N), depth)
        fn = self.pick(["np.sum", "np.mean"])
        kw = f", axis={ax}" + (", keepdims=True" if keep else "")
        factor = (M if ax == 0 else N) if fn == "np.sum" else 1
        if not keep and self.chance(0.3):
            return _Expr(f"{_atomic(a.text)}.{fn[3:]}(axis={ax})", shape, a.bound * factor, True, a.names)
        return _Expr(f"{fn}({a.text}{kw})", shape, a.bound * factor, True, a.names)

    def _matmul(self, scope, shape, depth):
        if shape == (M,):
            m, v = self.expr(scope, (M, N), depth), self.expr(scope, (N,), depth)
            text = self.pick([f"np.dot({m.text}, {v.text})", f"{_atomic(m.text)} @ {_atomic(v.text)}"])
            return _Expr(text, shape, m.bound * v.bound * N, True, m.names | v.names)
        if shape == (N,):
            w, m = self.expr(scope, (M,), depth), self.expr(scope, (M, N), depth)
            text = self.pick([f"np.dot({w.text}, {m.text})", f"{_atomic(w.text)} @ {_atomic(m.text)}", f"{_atomic(m.text)}.T @ {_atomic(w.text)}"])
            return _Expr(text, shape, m.bound * w.bound * M, True, m.names | w.names)
        if shape == (M, N):
            if self.chance(0.5):
                w, v = self.expr(scope, (M,), depth), self.expr(scope, (N,), depth)
                return _Expr(f"np.outer({w.text}, {v.text})", shape, w.bound * v.bound, True, w.names | v.names)
            c, r = self.expr(scope, (M, 1), depth), self.expr(scope, (1, N), depth)
            return _Expr(f"{_atomic(c.text)} @ {_atomic(r.text)}", shape, c.bound * r.bound, True, c.names | r.names)
        if shape == SCALAR:
            s = self.pick([(N,), (M,)])
            a, b = self.expr(scope, s, depth), self.expr(scope, s, depth)
            return _Expr(f"{_atomic(a.text)} @ {_atomic(b.text)}", shape, a.bound * b.bound * s[0], True, a.names | b.names)
        return None

    def _index(self, scope, shape, depth):
        # Indexing a named value (views of arrays are read, never kept past a write: see
        # `store`).
        if shape == SCALAR:
            return self.leaf(scope, SCALAR)
        if shape == (N,):
            mats = scope.of_shape((M, N))
            if mats:
                m = self.pick(mats)
                return _Expr(f"{m.name}[{self.index(scope, M)}]", shape, m.bound, False, {m.name})
            rows = scope.of_shape((1, N))
            if rows:
                r = self.pick(rows)
                return _Expr(f"{r.name}[0]", shape, r.bound, False, {r.name})
        if shape == (M,):
            mats = scope.of_shape((M, N))
            if mats:
                m = self.pick(mats)
                return _Expr(f"{m.name}[:, {self.index(scope, N)}]", shape, m.bound, False, {m.name})
        return None

    def _reshape(self, scope, shape, depth):
        if shape == (1, N):
            v = self.expr(scope, (N,), depth)
            text = self.pick([f"{_atomic(v.text)}[None, :]", f"{_atomic(v.text)}.reshape(1, {N})", f"np.expand_dims({v.text}, 0)", f"np.reshape({v.text}, (1, {N}))"])
            return _Expr(text, shape, v.bound, v.fresh and "reshape(" not in text and "[" not in text, v.names)
        if shape == (M, 1):
            w = self.expr(scope, (M,), depth)
            text = self.pick([f"{_atomic(w.text)}[:, None]", f"{_atomic(w.text)}.reshape({M}, 1)"])
            return _Expr(text, shape, w.bound, False, w.names)
        if shape == (N,):
            r = self.expr(scope, (1, N), depth)
            text = self.pick([f"{_atomic(r.text)}.ravel()", f"np.squeeze({r.text})", f"np.reshape({r.text}, ({N},))"])
            return _Expr(text, shape, r.bound, False, r.names)
        if shape == (M,):
            c = self.expr(scope, (M, 1), depth)
            return _Expr(f"{_atomic(c.text)}[:, 0]", shape, c.bound, False, c.names)
        if shape == (M, N) and self.chance(0.5):
            m = self.expr(scope, (M, N), depth)
            return _Expr(f"np.transpose({_atomic(m.text)}.T)", shape, m.bound, False, m.names)
        return None

    def _call(self, scope, shape, depth):
        options = [h for h in self.helpers if len(h.returns) == 1 and h.returns[0] == shape and set(h.handles) <= set(scope.handles)]
        if not options:
            return None
        h = self.pick(options)
        args = [self.squash(self.expr(scope, s, depth)) for _, s in h.params]
        texts = [a.text for a in args] + list(h.handles)
        names = set().union(*(a.names for a in args)) if args else set()
        if h.written:
            # The helper changes these arguments in place: the caller's arrays they are.
            for a, (p, _) in zip(args, h.params):
                if p in h.written and not a.fresh:
                    self.bump(scope, a.names)
        if h.default:
            c = self.squash(self.expr(scope, SCALAR, depth))
            names |= c.names
            choice = self.rng.randrange(3)
            if choice == 1:
                texts.append(c.text)
            elif choice == 2:
                texts.append(f"c={c.text}")
        # What a helper returns is squashed to about 1 (see `function`).
        return _Expr(f"{h.name}({', '.join(texts)})", shape, 4.0, False, names)

    def _ifexp(self, scope, shape, depth):
        a, b = self.expr(scope, shape, depth), self.expr(scope, shape, depth)
        return _Expr(f"({a.text} if {self.cond(scope, depth)} else {b.text})", shape, max(a.bound, b.bound), False, a.names | b.names)

    def _list(self, scope, shape, depth):
        lists = scope.lists(shape, nonempty=True)
        if not lists:
            return None
        lst = self.pick(lists)
        form = self.rng.randrange(3)
        if form == 0:
            return _Expr(f"{lst.name}[0]", shape, lst.bound, False, {lst.name})
        if form == 1:
            return _Expr(f"{lst.name}[-1]", shape, lst.bound, False, {lst.name})
        return _Expr(f"sum({lst.name})", shape, lst.bound * 8, True, {lst.name})

    def _kink(self, scope, shape, depth):
        a, b = self.expr(scope, shape, depth), self.expr(scope, shape, depth)
        if a.text == b.text:
            return None
        fn = self.pick(["np.maximum", "np.minimum", "where", "abs"])
        if fn == "abs":
            return _Expr(f"np.abs({a.text})", shape, a.bound, True, a.names)
        if fn == "where":
            c = self.expr(scope, shape, depth)
            return _Expr(f"np.where({_atomic(c.text)} > 0.1, {a.text}, {b.text})", shape, max(a.bound, b.bound), True, a.names | b.names | c.names)
        return _Expr(f"{fn}({a.text}, {b.text})", shape, max(a.bound, b.bound), True, a.names | b.names)

    def _method(self, scope, shape, depth):
        if shape == SCALAR:
            a = self.expr(scope, self.pick([(N,), (M, N)]), depth)
            m = self.pick(["sum", "mean"])
            return _Expr(f"{_atomic(a.text)}.{m}()", SCALAR, a.bound * (int(np.prod(a.shape)) if m == "sum" else 1), True, a.names)
        if shape == (N,) and self.chance(0.5):
            a, b = self.expr(scope, (N,), depth), self.expr(scope, (N, ), depth)
            return _Expr(f"{_atomic(a.text)} * {_atomic(b.text)}.dot({_atomic(b.text)}) / {float(N)}", shape, a.bound * b.bound * b.bound, True, a.names | b.names)
        a = self.expr(scope, shape, depth)
        return _Expr(f"np.copy({a.text})", shape, a.bound, True, a.names)

    def cond(self, scope, depth):
        loops = scope.loop_vars()
        ints = [v for v in scope.vars.values() if v.shape == "int"]
        options = ["data", "data"]
        if loops:
            options += ["loop", "loop"]
        if ints:
            options.append("int")
        if self.effects:
            options += ["draw"] * ("rs" in scope.handles) + ["loglen"] * ("log" in scope.handles)
        kind = self.pick(options)
        if kind == "draw":
            return self.pick(["rs.rand() < 0.5", "rs.randn() > 0.0", "rs.uniform() > 0.3"])
        if kind == "loglen":
            return f"len(log) {self.pick(['>', '>=', '<'])} {self.pick(['1', '2'])}"
        if kind == "loop":
            i = self.pick(loops).name
            return self.pick([f"{i} % 2 == 0", f"{i} < 1", f"{i} == 1", f"{i} >= 2"])
        if kind == "int":
            return f"{self.pick(ints).name} > 2"
        a = self.expr(scope, SCALAR, min(depth, 1))
        c = f"{a.text} {self.pick(['>', '<', '>=', '<='])} {self.pick(['0.0', '0.5', '-0.3'])}"
        if self.chance(0.15):
            c = f"not {c}" if self.chance(0.5) else f"{c} and {self.pick(['True', 'False'])}"
        return c

    # ------------------------------------------------------------- statements

    def store(self, scope, e):
        """Values that an alias now shares (`e` not fresh) may no longer be updated in place
        (effects programs: only half of the time, so that aliased arrays are updated too)."""
        if self.effects and self.chance(0.5):
            return
        if not e.fresh:
            for n in e.names:
                if n in scope.vars:
                    scope.vars[n].mutable = False

    def block(self, scope, depth, *, in_loop, returns, count=None, loop_depth=0):
        count = count if count is not None else self.rng.randint(1, 4)
        start = len(self.lines)
        for _ in range(count):
            self.statement(scope, depth, in_loop=in_loop, returns=returns, loop_depth=loop_depth)
        if len(self.lines) == start:
            self.emit(depth, "pass")

    def statement(self, scope, depth, *, in_loop, returns, loop_depth):
        kinds = ["assign", "overwrite", "aug", "tuple", "buffer", "list", "if", "for", "while", "return", "exit", "swap", "unpack", "shift"]
        weights = [8, 6, 3, 1, 2, 2, 3, 3 if loop_depth < 2 else 0, 1 if loop_depth < 2 else 0, 1, 2 if in_loop else 0, 1, 1, 2 if in_loop else 0]
        if depth > 4:
            weights[6:9] = [0, 0, 0]
        if self.effects:
            more = self.effect_statements(scope, depth, loop_depth)
            kinds, weights = kinds + list(more), weights + list(more.values())
        kind = self.pick(kinds, weights)
        getattr(self, "_s_" + kind)(scope, depth, in_loop=in_loop, returns=returns, loop_depth=loop_depth)

    def _value_shape(self, scope):
        known = [v.shape for v in scope.vars.values() if not v.is_list and v.loop_max is None and v.shape != "int"]
        return self.pick(known) if known and self.chance(0.7) else self.pick(SHAPES)

    def _s_assign(self, scope, depth, *, in_loop, **_):
        shape = self._value_shape(scope)
        e = self.expr(scope, shape, 3)
        name = self.fresh_name()
        self.store(scope, e)
        self.emit(depth, f"{name} = {e.text}")
        # New names inside loops and branches are not read after them (see `_merge`).
        scope.vars[name] = Var(name, shape, e.bound, mutable=e.fresh)

    def _targets(self, scope, params_ok=True):
        return [v for v in scope.vars.values() if not v.is_list and v.loop_max is None and v.shape != "int"]

    def _s_overwrite(self, scope, depth, *, in_loop, **kw):
        targets = self._targets(scope)
        if not targets:
            return self._s_assign(scope, depth, in_loop=in_loop)
        v = self.pick(targets)
        e = self.expr(scope, v.shape, 3)
        if in_loop and e.bound > max(v.bound, 1.0):
            e = _Expr(f"np.tanh({e.text})", v.shape, 1.0, True, e.names)
        self.store(scope, e)
        self.emit(depth, f"{v.name} = {e.text}")
        v.bound = max(v.bound, e.bound) if in_loop else e.bound
        v.mutable = e.fresh and v.name not in e.names

    def _s_aug(self, scope, depth, *, in_loop, **kw):
        targets = [v for v in self._targets(scope) if v.mutable or v.shape == SCALAR]
        if not targets:
            return self._s_overwrite(scope, depth, in_loop=in_loop)
        v = self.pick(targets)
        sb = self.pick([s for s in SHAPES if _broadcast(v.shape, s) == v.shape])
        op = self.pick(["+=", "-=", "*="])
        e = self.expr(scope, sb, 2)
        if op == "*=":
            e = _Expr(f"np.cos({e.text})", sb, 1.0, True, e.names)
        self.store(scope, e)
        self.emit(depth, f"{v.name} {op} {e.text}")
        if op != "*=":
            v.bound += e.bound * (4 if in_loop else 1)
        if self.effects:
            self.touch(scope, v)

    def _s_tuple(self, scope, depth, *, in_loop, **_):
        s1, s2 = self._value_shape(scope), self._value_shape(scope)
        e1, e2 = self.expr(scope, s1, 2), self.expr(scope, s2, 2)
        a, b = self.fresh_name(), self.fresh_name()
        self.store(scope, e1)
        self.store(scope, e2)
        self.emit(depth, f"{a}, {b} = {e1.text}, {e2.text}")
        scope.vars[a] = Var(a, s1, e1.bound, mutable=e1.fresh)
        scope.vars[b] = Var(b, s2, e2.bound, mutable=e2.fresh)

    def _s_swap(self, scope, depth, **_):
        by_shape = {}
        for v in self._targets(scope):
            by_shape.setdefault(v.shape, []).append(v)
        pairs = [vs for vs in by_shape.values() if len(vs) >= 2]
        if not pairs:
            return
        a, b = self.rng.sample(self.pick(pairs), 2)
        self.emit(depth, f"{a.name}, {b.name} = {b.name}, {a.name}")
        a.bound = b.bound = max(a.bound, b.bound)
        a.mutable = b.mutable = False

    def _s_shift(self, scope, depth, *, in_loop, **_):
        """A shift register: `a = b; b = c; ...; z = <new value>` (in loops: values move one
        place per iteration, and liveness and adjoints must follow the whole chain)."""
        by_shape = {}
        for v in self._targets(scope):
            by_shape.setdefault(v.shape, []).append(v)
        chains = [vs for vs in by_shape.values() if len(vs) >= 3]
        if not chains:
            return self._s_overwrite(scope, depth, in_loop=in_loop)
        vs = self.pick(chains)
        vs = self.rng.sample(vs, min(len(vs), self.rng.randint(3, 7)))
        for a, b in itertools.pairwise(vs):
            self.emit(depth, f"{a.name} = {b.name}")
            a.bound = max(a.bound, b.bound)
            a.mutable = b.mutable = False
        last = vs[-1]
        e = self.expr(scope, last.shape, 2)
        if e.bound > max(last.bound, 1.0):
            e = _Expr(f"np.tanh({e.text})", last.shape, 1.0, True, e.names)
        self.store(scope, e)
        self.emit(depth, f"{last.name} = {e.text}")
        last.bound = max(last.bound, e.bound)

    def _s_unpack(self, scope, depth, *, in_loop, **_):
        pairs = [h for h in self.helpers if len(h.returns) == 2 and set(h.handles) <= set(scope.handles)]
        if not pairs:
            return self._s_tuple(scope, depth, in_loop=in_loop)
        h = self.pick(pairs)
        args = [self.squash(self.expr(scope, s, 2)) for _, s in h.params]
        for a in args:
            self.store(scope, a)
        if h.written:
            for x, (p, _) in zip(args, h.params):
                if p in h.written and not x.fresh:
                    self.bump(scope, x.names)
        a, b = self.fresh_name(), self.fresh_name()
        self.emit(depth, f"{a}, {b} = {h.name}({', '.join([x.text for x in args] + list(h.handles))})")
        scope.vars[a] = Var(a, h.returns[0], 4.0)
        scope.vars[b] = Var(b, h.returns[1], 4.0)

    def _s_buffer(self, scope, depth, *, in_loop, loop_depth, **_):
        """An array built item by item: `b = np.zeros(...)`, then writes of its items."""
        shape = self.pick([(N,), (M,), (M, N)])
        name = self.fresh_name("buf")
        base = self.pick(["zeros", "copy"])
        sources = scope.of_shape(shape)
        if base == "copy" and sources:
            self.emit(depth, f"{name} = {self.pick(sources).name} * 1.0")
        else:
            self.emit(depth, f"{name} = np.zeros({shape if len(shape) > 1 else shape[0]})")
        scope.vars[name] = Var(name, shape, max([v.bound for v in sources] + [0.0]), mutable=True)
        self.buffer_writes(scope, depth, name, loop_depth=loop_depth)

    def buffer_writes(self, scope, depth, name, *, loop_depth):
        v = scope.vars[name]
        shape = v.shape
        if loop_depth < 2 and self.chance(0.6):
            i = self.fresh_name("i")
            size = shape[0]
            self.emit(depth, f"for {i} in range({size}):")
            inner = scope.copy()
            inner.vars[i] = Var(i, "int", 0.0, loop_max=size - 1)
            self.item_write(inner, depth + 1, inner.vars[name], i)
            v.bound = inner.vars[name].bound
        else:
            for _ in range(self.rng.randint(1, 2)):
                self.item_write(scope, depth, v, str(self.rng.randrange(shape[0])))

    def item_write(self, scope, depth, v, index):
        op = self.pick(["=", "+="])
        if len(v.shape) == 1:
            e = self.squash(self.expr(scope, SCALAR, 2))
            self.emit(depth, f"{v.name}[{index}] {op} {e.text}")
        elif self.chance(0.5):
            e = self.squash(self.expr(scope, (N,), 2))
            self.store(scope, e)
            self.emit(depth, f"{v.name}[{index}] {op} {e.text}")
        else:
            e = self.squash(self.expr(scope, SCALAR, 2))
            self.emit(depth, f"{v.name}[{index}, {self.rng.randrange(N)}] {op} {e.text}")
        v.bound = max(v.bound, 4.0) + (4.0 if op == "+=" else 0.0)
        if self.effects:
            self.touch(scope, v)

    def _s_list(self, scope, depth, *, in_loop, loop_depth, **_):
        shape = self.pick([SCALAR, SCALAR, (N,), (M,)])
        name = self.fresh_name("lst")
        self.emit(depth, f"{name} = []")
        lst = Var(name, shape, 0.0, is_list=True)
        scope.vars[name] = lst
        if loop_depth < 2 and self.chance(0.6):
            k = self.rng.randint(1, 3)
            i = self.fresh_name("i")
            self.emit(depth, f"for {i} in range({k}):")
            inner = scope.copy()
            inner.vars[i] = Var(i, "int", 0.0, loop_max=k - 1)
            e = self.squash(self.expr(inner, shape, 2))
            self.store(inner, e)
            self.emit(depth + 1, f"{name}.append({e.text})")
            lst.bound = max(lst.bound, e.bound)
            lst.min_len += k
        else:
            for _ in range(self.rng.randint(1, 2)):
                e = self.squash(self.expr(scope, shape, 2))
                self.store(scope, e)
                self.emit(depth, f"{name}.append({e.text})")
                lst.bound = max(lst.bound, e.bound)
                lst.min_len += 1
        if lst.min_len >= 1 and self.chance(0.3):
            e = self.squash(self.expr(scope, shape, 2))
            self.store(scope, e)
            self.emit(depth, f"{name}[{self.rng.randrange(lst.min_len)}] = {e.text}")
            lst.bound = max(lst.bound, e.bound)
        if lst.min_len >= 2 and self.chance(0.3):
            out = self.fresh_name()
            self.emit(depth, f"{out} = {name}.pop()")
            lst.min_len -= 1
            scope.vars[out] = Var(out, shape, lst.bound)

    def _merge(self, scope, branches):
        """After branches: the names every branch had before (bounds: the largest); mutability
        only where every branch kept it."""
        for name, v in scope.vars.items():
            for b in branches:
                w = b.vars.get(name)
                if w is None:
                    continue
                v.bound = max(v.bound, w.bound)
                v.mutable = v.mutable and w.mutable
                if v.is_list:
                    v.min_len = min(v.min_len, w.min_len)

    def _s_if(self, scope, depth, *, in_loop, returns, loop_depth):
        branches = []
        self.emit(depth, f"if {self.cond(scope, 2)}:")
        b = scope.copy()
        self.block(b, depth + 1, in_loop=in_loop, returns=returns, loop_depth=loop_depth)
        branches.append(b)
        for _ in range(self.rng.choice([0, 0, 1])):
            self.emit(depth, f"elif {self.cond(scope, 2)}:")
            b = scope.copy()
            self.block(b, depth + 1, in_loop=in_loop, returns=returns, loop_depth=loop_depth)
            branches.append(b)
        if self.chance(0.6):
            self.emit(depth, "else:")
            b = scope.copy()
            self.block(b, depth + 1, in_loop=in_loop, returns=returns, loop_depth=loop_depth)
            branches.append(b)
        self._merge(scope, branches)

    def _loop_body(self, scope, depth, *, returns, loop_depth, extra_vars=()):
        # Inside a loop, values may grow with each iteration: bounds of what the body updates
        # are kept by squashing (`_s_overwrite`) or accounted for (`_s_aug`). A value the body
        # aliases (so it may no longer be updated in place) must not have been updated in place
        # earlier in the body either (the next iteration would change the alias): such a body is
        # written again with those values frozen from the start.
        start = len(self.lines)
        for attempt in range(4):
            body = scope.copy()
            for v in extra_vars:
                body.vars[v.name] = copy.copy(v)
            self.block(body, depth + 1, in_loop=True, returns=returns, loop_depth=loop_depth + 1)
            lowered = [n for n, v in scope.vars.items() if v.mutable and not body.vars[n].mutable]
            if not lowered:
                break
            del self.lines[start:]
            for n in lowered if attempt < 2 else list(scope.vars):
                scope.vars[n].mutable = False
        self._merge(scope, [body])

    def _s_for(self, scope, depth, *, returns, loop_depth, **_):
        i = self.fresh_name("i")
        form = self.rng.randrange(5)
        ints = [v for v in scope.vars.values() if v.shape == "int" and v.loop_max is None]
        if form == 0 and ints:
            k = self.pick(ints)
            self.emit(depth, f"for {i} in range({k.name}):")
            self._loop_body(scope, depth, returns=returns, loop_depth=loop_depth, extra_vars=[Var(i, "int", 0.0, loop_max=3)])
        elif form == 1 and scope.of_shape((M, N)):
            m = self.pick(scope.of_shape((M, N)))
            row = self.fresh_name("row")
            self.emit(depth, f"for {row} in {m.name}:")
            if self.chance(0.3):
                # The body rebinds the matrix it iterates over (the rows stay the old ones).
                self.emit(depth + 1, f"{m.name} = np.tanh({m.name} * {self.pick(self.CONSTS)})")
                m.mutable = True
            self._loop_body(scope, depth, returns=returns, loop_depth=loop_depth, extra_vars=[Var(row, (N,), m.bound)])
        elif form == 2 and scope.lists(nonempty=False):
            lst = self.pick(scope.lists())
            item = self.fresh_name("item")
            if self.chance(0.5):
                self.emit(depth, f"for {item} in {lst.name}:")
            else:
                self.emit(depth, f"for _, {item} in enumerate({lst.name}):")
            self._loop_body(scope, depth, returns=returns, loop_depth=loop_depth, extra_vars=[Var(item, lst.shape, lst.bound)])
        else:
            lo = self.pick([0, 0, 1])
            k = self.rng.randint(lo + 1, 4)
            rng_text = f"range({k})" if lo == 0 else f"range({lo}, {k})"
            self.emit(depth, f"for {i} in {rng_text}:")
            self._loop_body(scope, depth, returns=returns, loop_depth=loop_depth, extra_vars=[Var(i, "int", 0.0, loop_max=k - 1)])

    def _s_while(self, scope, depth, *, returns, loop_depth, **_):
        j = self.fresh_name("j")
        k = self.rng.randint(1, 4)
        self.emit(depth, f"{j} = 0")
        scalars = scope.of_shape(SCALAR)
        if scalars and self.chance(0.25):
            self.emit(depth, f"while {j} < {k} and {self.pick(scalars).name} < 3.0:")
        else:
            self.emit(depth, f"while {j} < {k}:")
        self.emit(depth + 1, f"{j} += 1")
        self._loop_body(scope, depth, returns=returns, loop_depth=loop_depth, extra_vars=[Var(j, "int", 0.0, loop_max=k)])

    def _s_return(self, scope, depth, *, returns, in_loop, **_):
        """An early return under a condition."""
        self.emit(depth, f"if {self.cond(scope, 1)}:")
        parts = [self.squash(self.expr(scope, s, 2)).text for s in returns]
        self.emit(depth + 1, f"return {', '.join(parts)}".rstrip())

    def _s_exit(self, scope, depth, **_):
        self.emit(depth, f"if {self.cond(scope, 1)}:")
        self.emit(depth + 1, self.pick(["break", "continue"]))

    # ---------------------------------------------- effects, aliasing, in-place writes (issue 13)
    #
    # Effects programs only (`Generator(rng, effects=True)`): `f` may take a random state `rs`
    # and a list `log`, passed down to helpers that draw from it (`rs.randn(3)`, `rs.normal(size=
    # ...)`, draws whose value is not used), append to it or print; helpers may write into an
    # array they are given (`def h(p, out): out[...] = ...`) or change a parameter in place;
    # arrays are changed in place with augmented assignment, `out=` (keyword and positional),
    # `np.copyto`, `.fill`, slice writes; views (`v[:2]`, `m[i]`, `m.T`, `v.reshape(-1)`, `v[::-1]`,
    # views of views, rows of `for row in m`) and aliases (`b = a`) are kept and read after an
    # in-place change of what they share memory with, next to the same code that rebinds instead
    # (`a = a + 1.0`). The programs stay valid NumPy (in place only on float arrays, shapes
    # consistent); their value is a function of the arguments (a fresh `RandomState` with the
    # same seed for every evaluation), so derivatives are well defined. `Var.mutable` only says
    # whether an array was made fresh (in-place changes of the others happen too).

    def effect_statements(self, scope, depth, loop_depth):
        """The effects statement kinds possible here, with their weights."""
        arrays = self._arrays(scope)
        more = {"inplace": 4}
        if "rs" in scope.handles:
            more["draw"] = 3
        if "log" in scope.handles:
            more["logapp"] = 2
        if self.prints:
            more["print"] = 1
        if arrays:
            more["view"] = 3
            more["alias"] = 2
        if depth <= 4 and loop_depth < 2 and any(v.shape == (M, N) for v in arrays):
            more["rowloop"] = 1
        if self._fill_helpers(scope):
            more["fillcall"] = 3
        return more

    def _arrays(self, scope):
        return [v for v in scope.vars.values() if not v.is_list and v.loop_max is None and v.shape not in (SCALAR, "int")]

    def _fill_helpers(self, scope):
        return [h for h in self.helpers if not h.returns and set(h.handles) <= set(scope.handles)]

    def _recent(self, vs):
        return self.pick(vs, [1 + k for k in range(len(vs))])

    def _small(self):
        return self.pick(["0.5", "-0.7", "1.5", "0.25", "-1.2"])

    def touch(self, scope, v):
        """`v` was changed in place: what shares its memory may be as large now."""
        self.written.add(v.name)
        for n in v.aliases:
            w = scope.vars.get(n)
            if w is not None:
                w.bound = max(w.bound, v.bound)
                self.written.add(n)

    def bump(self, scope, names):
        """Arrays among `names` were changed in place by a helper."""
        for n in names:
            v = scope.vars.get(n)
            if v is not None and not v.is_list and v.shape not in (SCALAR, "int"):
                v.bound = max(v.bound, 4.0) + 1.0
                self.touch(scope, v)

    def link(self, scope, a, b):
        """`a` and `b` share memory."""
        group = a.aliases | b.aliases | {a.name, b.name}
        for n in group:
            if n in scope.vars:
                scope.vars[n].aliases = frozenset(group - {n})

    def unlink(self, scope, a):
        """`a` was rebound: it shares memory with nothing now."""
        for n in a.aliases:
            if n in scope.vars:
                scope.vars[n].aliases = scope.vars[n].aliases - {a.name}
        a.aliases = frozenset()

    def draw(self, shape):
        """A draw from `rs` of `shape`, and a bound on it (a heuristic: a normal draw above 4 is
        rare)."""
        if shape == SCALAR:
            return self.pick([("rs.randn()", 4.0), ("rs.rand()", 1.0), ("rs.uniform(-1.0, 1.0)", 1.0), ("rs.normal(0.0, 0.5)", 2.0), ("rs.standard_normal()", 4.0), ("rs.uniform()", 1.0)])
        dims = ", ".join(map(str, shape))
        size = str(shape[0]) if len(shape) == 1 else f"({dims})"
        return self.pick(
            [
                (f"rs.randn({dims})", 4.0), (f"rs.rand({dims})", 1.0), (f"rs.normal(size={size})", 4.0), (f"rs.normal(0.0, 0.3, size={size})", 1.2),
                (f"rs.uniform(-1.0, 1.0, size={size})", 1.0), (f"rs.standard_normal({size})", 4.0),
            ]
        )

    def _draw(self, scope, shape, depth):
        """An expression that draws from `rs`: noise, or a random permutation of a vector."""
        if shape in ((N,), (M,)) and self.chance(0.2):
            vs = scope.of_shape(shape)
            if vs:
                v = self.pick(vs)
                return _Expr(f"{v.name}[rs.permutation({shape[0]})]", shape, v.bound, True, {v.name})
        text, bound = self.draw(shape)
        if self.chance(0.5):
            c = self.pick(["0.1", "0.3", "0.5"])
            return _Expr(f"{c} * {text}", shape, bound * float(c), True, set())
        return _Expr(text, shape, bound, True, set())

    def _s_draw(self, scope, depth, **_):
        shape = self._value_shape(scope)
        text, bound = self.draw(shape)
        form = self.pick(["keep", "keep", "keep", "mix", "discard", "unused"])
        if form == "discard":
            # The value is not used; the state still advances.
            self.emit(depth, text)
            return
        name = self.fresh_name("eps")
        if form == "mix":
            a = self.leaf(scope, shape)
            c = self.pick(["0.1", "0.2", "0.5"])
            self.emit(depth, f"{name} = {_atomic(a.text)} + {c} * {text}")
            bound = a.bound + float(c) * bound
        else:
            self.emit(depth, f"{name} = {text}")
        if form != "unused":
            scope.vars[name] = Var(name, shape, bound, mutable=True)

    def _s_logapp(self, scope, depth, **_):
        arrays = self._arrays(scope)
        form = self.pick(["float", "value", "array", "copy", "tag"])
        if form == "array" and arrays:
            # The list keeps the array itself: an in-place change later shows in the log.
            x = self._recent(arrays).name
        elif form == "copy" and arrays:
            x = f"np.copy({self._recent(arrays).name})"
        elif form == "tag":
            loops = scope.loop_vars()
            x = f'("{self.fname}", {self.pick(loops).name})' if loops else "len(log)"
        elif form == "float":
            x = f"float({self.squash(self.expr(scope, SCALAR, 1)).text})"
        else:
            x = self.squash(self.expr(scope, SCALAR, 1)).text
        self.emit(depth, f"log.append({x})")

    def _s_print(self, scope, depth, **_):
        loops = scope.loop_vars()
        arrays = self._arrays(scope)
        form = self.pick(["tag", "value", "value", "fstring", "array"])
        if form == "tag":
            x = f'"{self.fname}", {self.pick(loops).name}' if loops else f'"{self.fname}"'
        elif form == "array" and arrays:
            x = f"np.round({self._recent(arrays).name}, 3)"
        elif form == "fstring":
            e = self.squash(self.expr(scope, SCALAR, 1))
            x = f'f"{self.fname}: {{{e.text}:.3f}}"'
        else:
            x = f"np.round({self.squash(self.expr(scope, SCALAR, 1)).text}, 3)"
        self.emit(depth, f"print({x})")

    def _broadcastable(self, shape):
        return self.pick([s for s in SHAPES if _broadcast(shape, s) == shape])

    def inplace(self, scope, depth, v, *, in_loop=False, overwrite=False):
        """One in-place change of the array `v`: `out=` (keyword or positional), augmented
        assignment, `np.copyto`, `.fill`, slice writes. `overwrite`: every item is written (`v`
        was made with `np.empty` and is not in `scope` yet)."""
        s, n = v.shape, v.name
        grow = 4 if in_loop else 1
        forms = ["ufunc_self", "scale", "add", "ufunc_other", "copyto", "fill", "slice_set", "slice_aug"]
        weights = [3, 2, 3, 3, 2, 1, 2, 2] if not overwrite else [0, 0, 0, 3, 2, 1, 2, 0]
        form = self.pick(forms, weights)
        full = True  # every item gets a new value (bounded by `bound`)
        if form == "ufunc_self":
            # (Not in loops: exp of exp of ... overflows. The test after the draw keeps the
            # programs of a seed as they were.)
            if v.bound <= 2.0 and self.chance(0.3) and not in_loop:
                fn, bound = "np.exp", math.exp(v.bound)
            else:
                fn, bound = self.pick([("np.tanh", 1.0), ("np.sin", 1.0), ("np.cos", 1.0), ("np.arctan", 1.6)])
            text = self.pick([f"{fn}({n}, out={n})", f"{fn}({n}, {n})"])
        elif form == "scale":
            c = self.pick(["0.5", "-0.7", "1.5", "2.0"])
            op = self.pick(["multiply", "*=", "/="])
            factor = abs(float(c)) if op != "/=" else 1.0 / abs(float(c))
            text = f"np.multiply({n}, {c}, out={n})" if op == "multiply" else f"{n} {op} {c}"
            bound = v.bound * max(1.0, factor) ** grow
        elif form == "add":
            e = self.squash(self.expr(scope, self._broadcastable(s), 2))
            op = self.pick(["+", "-"])
            fn = "np.add" if op == "+" else "np.subtract"
            text = self.pick([f"{fn}({n}, {e.text}, out={n})", f"{n} {op}= {e.text}"])
            bound = v.bound + e.bound * grow
        elif form == "ufunc_other":
            e = self.squash(self.expr(scope, self.pick([s, s, SCALAR]), 2))
            if self.chance(0.7):
                fn = self.pick(["np.tanh", "np.sin", "np.cos"])
                text, bound = self.pick([f"{fn}({e.text}, out={n})", f"{fn}({e.text}, {n})"]), 1.0
            else:
                e2 = self.squash(self.expr(scope, self._broadcastable(s), 2))
                fn = self.pick(["multiply", "add", "subtract"])
                text = f"np.{fn}({e.text}, {e2.text}, out={n})"
                bound = e.bound * e2.bound if fn == "multiply" else e.bound + e2.bound
        elif form == "copyto":
            e = self.squash(self.expr(scope, self._broadcastable(s), 2))
            text, bound = f"np.copyto({n}, {e.text})", e.bound
        elif form == "fill":
            e = self.squash(self.expr(scope, SCALAR, 2))
            text, bound = f"{n}.fill({e.text})", e.bound
        elif form == "slice_set":
            e = self.squash(self.expr(scope, self._broadcastable(s), 2))
            text, bound = f"{n}[{self.pick([':', '...'])}] = {e.text}", e.bound
        else:
            targets = {
                (N,): [(f"{n}[:2]", (M,)), (f"{n}[1:]", (M,)), (f"{n}[::2]", (M,))],
                (M,): [(f"{n}[1:]", None), (f"{n}[:1]", None)],
                (M, N): [(f"{n}[0]", (N,)), (f"{n}[-1]", (N,)), (f"{n}[:, 1]", (M,)), (f"{n}[:, 1:]", None), (f"{n}[:1]", (1, N))],
                (1, N): [(f"{n}[0]", (N,)), (f"{n}[:, :2]", None)],
                (M, 1): [(f"{n}[:, 0]", (M,)), (f"{n}[1:]", None)],
            }[s]
            target, ts = self.pick(targets)
            e = self.squash(self.expr(scope, ts if ts is not None and self.chance(0.5) else SCALAR, 2))
            op = self.pick(["+=", "-=", "*="])
            if op == "*=":
                text, bound = f"{target} *= np.cos({e.text})", v.bound
            else:
                text, bound = f"{target} {op} {e.text}", v.bound + e.bound * grow
            full = False
        self.emit(depth, text)
        v.bound = bound if full and not in_loop and not overwrite else max(v.bound, bound)
        v.mutable = v.mutable or overwrite
        self.touch(scope, v)

    def fresh_local(self, scope, depth, shape=None, *, allow_empty=True):
        """`a = np.zeros(...)` (or a copy, `np.empty` ...): a new local array; returns its `Var`
        (not in `scope` when made with `np.empty`: it must be written all over first)."""
        shape = shape or self.pick([(N,), (M,), (M, N), (1, N), (M, 1)])
        st = str(shape[0]) if len(shape) == 1 else f"({shape[0]}, {shape[1]})"
        sources = scope.of_shape(shape)
        forms = ["zeros", "ones"] + ["empty"] * allow_empty + ["copy", "copy", "np.copy", "zeros_like"] * bool(sources)
        form = self.pick(forms)
        name = self.fresh_name("a")
        bound = 0.0
        if form in ("zeros", "ones", "empty"):
            text, bound = f"np.{form}({st})", 1.0
        else:
            src = self._recent(sources)
            text = {"copy": f"{src.name} * 1.0", "np.copy": self.pick([f"np.copy({src.name})", f"{src.name}.copy()"]), "zeros_like": f"np.zeros_like({src.name})"}[form]
            bound = src.bound
        self.emit(depth, f"{name} = {text}")
        v = Var(name, shape, bound, mutable=True)
        if form != "empty":
            scope.vars[name] = v
        return v

    def read(self, scope, depth, v):
        """`r = <a value computed from v>` (after an in-place change of what `v` shares)."""
        name = self.fresh_name()
        form = self.pick(["scale", "tanh", "sum"])
        if form == "sum":
            shape, text, bound = SCALAR, f"np.sum({v.name})", v.bound * int(np.prod(v.shape))
        elif form == "tanh":
            shape, text, bound = v.shape, f"np.tanh({v.name})", 1.0
        else:
            c = self._small()
            shape, text, bound = v.shape, f"{v.name} * {c}", v.bound * abs(float(c))
        self.emit(depth, f"{name} = {text}")
        scope.vars[name] = Var(name, shape, bound, mutable=True)

    def _s_inplace(self, scope, depth, *, in_loop, **_):
        arrays = self._arrays(scope)
        fresh = [v for v in arrays if v.mutable]
        if fresh and self.chance(0.55):
            return self.inplace(scope, depth, self._recent(fresh), in_loop=in_loop)
        if arrays and self.chance(0.25):
            # An array that was not made fresh: an alias, a view or a parameter.
            return self.inplace(scope, depth, self._recent(arrays), in_loop=in_loop)
        v = self.fresh_local(scope, depth)
        empty = v.name not in scope.vars
        self.inplace(scope, depth, v, in_loop=in_loop, overwrite=empty)
        scope.vars[v.name] = v

    def _views(self, v):
        """Views of `v`: (text, shape), the shape a name of `SHAPES` or one the generator does not
        track ("T", "flat", "block")."""
        n = v.name
        return {
            (N,): [(f"{n}[:2]", (M,)), (f"{n}[1:]", (M,)), (f"{n}[::2]", (M,)), (f"{n}.reshape(1, {N})", (1, N)), (f"{n}[None, :]", (1, N)), (f"{n}[::-1]", (N,)), (f"{n}[:]", (N,)), (f"{n}.reshape(-1)", (N,))],
            (M,): [(f"{n}[:, None]", (M, 1)), (f"{n}.reshape({M}, 1)", (M, 1)), (f"{n}[::-1]", (M,)), (f"{n}[:]", (M,))],
            (M, N): [
                (f"{n}[{self.rng.randrange(M)}]", (N,)), (f"{n}[:, {self.rng.randrange(N)}]", (M,)), (f"{n}[1:]", (1, N)), (f"{n}[:, 1:2]", (M, 1)), (f"{n}.T", "T"),
                (f"np.transpose({n})", "T"), (f"{n}.reshape(-1)", "flat"), (f"{n}.ravel()", "flat"), (f"{n}[:, :2]", "block"),
            ],
            (1, N): [(f"{n}[0]", (N,)), (f"{n}.reshape({N})", (N,)), (f"{n}.ravel()", (N,))],
            (M, 1): [(f"{n}[:, 0]", (M,)), (f"{n}.reshape({M})", (M,))],
        }[v.shape]

    def _s_view(self, scope, depth, *, in_loop, **_):
        b = self._recent(self._arrays(scope))
        text, shape = self.pick(self._views(b))
        w = self.fresh_name("w")
        self.emit(depth, f"{w} = {text}")
        if shape in SHAPES:
            # A view the rest of the function may read and change (views of views too).
            view = Var(w, shape, b.bound, mutable=True)
            scope.vars[w] = view
            self.link(scope, b, view)
            if self.chance(0.7):
                target = self.pick([b, view])
                self.inplace(scope, depth, target, in_loop=in_loop)
                if self.chance(0.7):
                    self.read(scope, depth, view if target is b else b)
            return
        # A view of a shape the generator does not track: a change through it or its base, then
        # a value read through it.
        s = self.squash(self.expr(scope, SCALAR, 1))
        c = self._small()
        if self.chance(0.4):
            self.inplace(scope, depth, b, in_loop=in_loop)
        else:
            changes = {
                "T": [f"{w} *= {c}", f"{w}[{self.rng.randrange(N)}] = {s.text}", f"{w}[:, {self.rng.randrange(M)}] += {s.text}", f"np.tanh({w}, out={w})"],
                "flat": [f"{w}[{self.rng.randrange(M * N)}] = {s.text}", f"{w}[{self.rng.randrange(M * N)}] += {s.text}", f"{w}[1:4] *= {c}", f"{w} *= {c}"],
                "block": [f"{w} *= {c}", f"{w} += {s.text}", f"{w}[0] = {s.text}"],
            }[shape]
            self.emit(depth, self.pick(changes))
            b.bound = (b.bound + s.bound) * (2.0 if not in_loop else 8.0)
            self.touch(scope, b)
        reads = {
            "T": [(f"np.sum({w}, axis=1)", (N,), M), (f"{w}.T * 1.0", (M, N), 1), (f"{w}[{self.rng.randrange(N)}] * 1.0", (M,), 1), (f"np.sum({w}, axis=0)", (M,), N)],
            "flat": [(f"{w}[:3] * 1.0", (N,), 1), (f"{w}[3:] + 0.0", (N,), 1), (f"{w}.reshape({M}, {N}) * 1.0", (M, N), 1), (f"np.sum({w})", SCALAR, M * N)],
            "block": [(f"np.sum({w}, axis=1)", (M,), 2), (f"{w}[:, 0] * 1.0", (M,), 1)],
        }[shape]
        rt, rs, factor = self.pick(reads)
        r = self.fresh_name()
        self.emit(depth, f"{r} = {rt}")
        scope.vars[r] = Var(r, rs, b.bound * factor, mutable=True)

    def _s_alias(self, scope, depth, *, in_loop, **_):
        a = self._recent(self._targets(scope))
        name = self.fresh_name("b")
        self.emit(depth, f"{name} = {a.name}")
        b = Var(name, a.shape, a.bound, mutable=True)
        scope.vars[name] = b
        if a.shape != SCALAR:
            self.link(scope, a, b)
        form = self.pick(["change_a", "change_b", "rebind_a", "rebind_a", "none"])
        if form in ("change_a", "change_b"):
            target = a if form == "change_a" else b
            if target.shape == SCALAR:
                # Floats are immutable: `a += e` rebinds `a`, `b` keeps the old value.
                e = self.squash(self.expr(scope, SCALAR, 1))
                self.emit(depth, f"{target.name} {self.pick(['+=', '-='])} {e.text}")
                target.bound += e.bound * (4 if in_loop else 1)
            else:
                self.inplace(scope, depth, target, in_loop=in_loop)
        elif form == "rebind_a":
            e = self.squash(self.expr(scope, self._broadcastable(a.shape) if a.shape != SCALAR else SCALAR, 1))
            op = self.pick(["+", "-", "*"])
            self.emit(depth, f"{a.name} = {a.name} {op} {_atomic(e.text)}")
            a.bound = a.bound * e.bound if op == "*" else a.bound + e.bound
            if in_loop:
                a.bound = max(a.bound, 1.0) * 4.0
            self.unlink(scope, a)
            a.mutable = True
        if form != "none" and self.chance(0.7):
            self.read(scope, depth, a if form == "change_b" else b)

    def _s_rowloop(self, scope, depth, *, in_loop, returns, loop_depth):
        m = self._recent([v for v in self._arrays(scope) if v.shape == (M, N)])
        row = self.fresh_name("row")
        self.emit(depth, f"for {row} in {m.name}:")
        form = self.pick(["scale_row", "set_item", "acc_m", "tanh_row", "add_row"])
        inner = scope.copy()
        inner.vars[row] = Var(row, (N,), m.bound)
        if form == "scale_row":
            c = self._small()
            self.emit(depth + 1, f"{row} *= {c}")
            bound = m.bound * max(1.0, abs(float(c)))
        elif form == "set_item":
            e = self.squash(self.expr(inner, SCALAR, 1))
            self.emit(depth + 1, f"{row}[{self.rng.randrange(N)}] = {e.text}")
            bound = max(m.bound, e.bound)
        elif form == "acc_m":
            # The loop changes the matrix it iterates over (and so the rows still to come).
            self.emit(depth + 1, self.pick([f"{m.name} += {row} * 0.5", f"{m.name} += {row}", f"{m.name} -= 0.5 * {row}"]))
            bound = m.bound * 2.0**M
        elif form == "tanh_row":
            self.emit(depth + 1, f"np.tanh({row}, out={row})")
            bound = max(m.bound, 1.0)
        else:
            e = self.squash(self.expr(inner, self.pick([(N,), SCALAR]), 1))
            self.emit(depth + 1, f"{row} += {e.text}")
            bound = m.bound + e.bound * M
        m.bound = bound * (4.0 if in_loop else 1.0)
        self.touch(scope, m)
        if self.chance(0.35):
            self._loop_body(scope, depth, returns=returns, loop_depth=loop_depth, extra_vars=[Var(row, (N,), m.bound, mutable=True, aliases=frozenset({m.name}))])

    def _s_fillcall(self, scope, depth, *, in_loop, **_):
        """A call of a helper that writes into the array it is given (a new one, an existing one
        that may be an alias, a view or a parameter, or a row of a matrix)."""
        h = self.pick(self._fill_helpers(scope))
        shape = h.params[-1][1]
        args = [self.squash(self.expr(scope, s, 2)) for _, s in h.params[:-1]]
        existing = [v for v in self._arrays(scope) if v.shape == shape]
        mats = [v for v in self._arrays(scope) if v.shape == (M, N)]
        if shape == (N,) and mats and self.chance(0.2):
            dest = self._recent(mats)
            dest_text = f"{dest.name}[{self.rng.randrange(M)}]"
        elif existing and self.chance(0.4):
            dest = self._recent(existing)
            dest_text = dest.name
        else:
            dest = self.fresh_local(scope, depth, shape, allow_empty=False)
            dest_text = dest.name
        self.emit(depth, f"{h.name}({', '.join([a.text for a in args] + [dest_text] + list(h.handles))})")
        for a, (p, _) in zip(args, h.params):
            if p in h.written and not a.fresh:
                self.bump(scope, a.names)
        dest.bound = max(dest.bound, 4.0) + 1.0
        self.touch(scope, dest)
        if self.chance(0.3):
            self.read(scope, depth, dest)

    def effect_prologue(self, scope, params):
        """Effects programs, at the start of a function: some array parameters may be changed
        in place (`out` always); a first draw."""
        for p, s in params:
            if p == "out" or (s != SCALAR and self.chance(0.3)):
                scope.vars[p].mutable = True
        if "rs" in scope.handles and self.chance(0.6):
            self._s_draw(scope, 1)

    def effect_epilogue(self, scope):
        if "log" in scope.handles and self.chance(0.5):
            self._s_logapp(scope, 1)
        if self.prints and self.chance(0.3):
            self._s_print(scope, 1)

    def write_out(self, scope, params, body_start):
        """The last statement of a helper that writes into its parameter `out` (which every
        other parameter reaches)."""
        out = scope.vars["out"]
        text = self.squash(self.expr(scope, out.shape, 3)).text
        body = "\n".join(self.lines[body_start:]) + text
        for p, s in params:
            if p != "out" and not re.search(rf"\b{p}\b", body):
                text += f" + 0.5 * {f'np.sin({p})' if s in (out.shape, SCALAR) else f'np.mean(np.sin({p}))'}"
        self.emit(
            1,
            self.pick(
                [
                    f"out[...] = {text}", f"out[:] = {text}", f"np.copyto(out, {text})", f"np.tanh({text}, out=out)", f"out += 0.5 * np.tanh({text})",
                    f"out *= np.cos({text})", f"np.add(out, np.sin({text}), out=out)",
                ]
            ),
        )

    # -------------------------------------------------------------- functions

    def function(self, name, params, returns, *, ints=(), default=False, statements=None, handles=()):
        """Writes `def name(params):` with a random body returning `returns` (shapes; none:
        the function writes into its parameter `out`, effects programs). Returns the
        parameters it may change in place (effects programs)."""
        names = [p for p, _ in params] + list(handles) + list(ints) + (["c=0.5"] if default else [])
        self.emit(0, f"def {name}({', '.join(names)}):")
        scope = _Scope([Var(p, s, 1.5) for p, s in params] + [Var(k, "int", 0.0) for k in ints], handles)
        if default:
            scope.vars["c"] = Var("c", SCALAR, 1.0)
        body_start = len(self.lines)
        self.fname, self.written = name, set()
        if self.effects:
            self.effect_prologue(scope, params)
        self.block(scope, 1, in_loop=False, returns=returns, count=statements or self.rng.randint(2, 7))
        written = frozenset(self.written & {p for p, _ in params})
        if not returns:
            self.write_out(scope, params, body_start)
            self.emit(0, "")
            self.emit(0, "")
            return written | {"out"}
        if self.effects:
            self.effect_epilogue(scope)
        parts = []
        for s in returns:
            e = self.squash(self.expr(scope, s, 3))
            parts.append(e.text)
        # The most recent values reach the result (else most of the body would be dead code).
        recent = [v for v in scope.vars.values() if not v.is_list and v.loop_max is None and v.shape != "int"][-3:]
        for v in recent:
            if self.chance(0.7) and not re.search(rf"\b{v.name}\b", " ".join(parts)):
                k = self.rng.randrange(len(parts))
                term = f"np.sin({v.name})" if v.shape in (returns[k], SCALAR) else f"np.mean(np.sin({v.name}))"
                parts[k] = f"{parts[k]} + {self.pick(['0.5', '0.25', '-0.3'])} * {term}"
        # Every float parameter reaches the result differentiably, so that each has a gradient.
        body = "\n".join(self.lines[body_start:]) + " ".join(parts)
        for p, s in params:
            if not re.search(rf"\b{p}\b", body):
                k = self.rng.randrange(len(parts))
                term = f"np.sin({p})" if s == returns[k] or s == SCALAR else f"np.mean(np.sin({p}))"
                parts[k] = f"{parts[k]} + 0.5 * {term}"
        self.emit(1, f"return {', '.join(parts)}")
        self.emit(0, "")
        self.emit(0, "")
        return written

    def program(self, label=""):
        rng = self.rng
        self.emit(0, "import math")
        self.emit(0, "")
        self.emit(0, "import numpy as np")
        self.emit(0, "")
        self.emit(0, "")
        handles = ()
        if self.effects:
            # `f(x, ..., rs, log)`: a random state and a list, passed down to helpers.
            handles = tuple(h for h, p in (("rs", 0.75), ("log", 0.35)) if self.chance(p))
            self.prints = self.chance(0.25)
        count = rng.choice([0, 1, 1, 2, 3]) if not self.effects else rng.choice([1, 1, 2, 2, 3])
        for h in range(count):
            params = [(f"p{k}", self.pick(SHAPES)) for k in range(rng.randint(1, 3))]
            returns = [self.pick(SHAPES)] if self.chance(0.8) else [self.pick(SHAPES), self.pick(SHAPES)]
            helper = _Helper(f"h{h}", params, returns, self.chance(0.3))
            if self.effects:
                helper.handles = tuple(x for x in handles if self.chance(0.65))
                if "rs" in handles and "rs" not in helper.handles and h == count - 1 and not any("rs" in k.handles for k in self.helpers):
                    helper.handles = ("rs",) + helper.handles  # some helper draws
                if self.chance(0.35):
                    # A helper that writes into an array it is given: `def h(p, out): out[...] = ...`.
                    helper.params = params + [("out", self.pick([(N,), (M,), (M, N), (1, N), (M, 1)]))]
                    helper.returns, helper.default = [], False
            helper.written = self.function(helper.name, helper.params, helper.returns, default=helper.default, statements=rng.randint(1, 4), handles=helper.handles)
            self.helpers.append(helper)
        params = [(p, self.pick([SCALAR, (N,), (M, N), (M,), SCALAR])) for p in ["x", "y", "z"][: rng.randint(1, 3)]]
        ints = ["k"] if self.chance(0.3) else []
        self.function("f", params, [SCALAR], ints=ints, handles=handles)
        source = "\n".join(self.lines).rstrip() + "\n"
        args = []
        for _, shape in params:
            if shape == SCALAR:
                args.append(round(rng.uniform(-1.2, 1.2), 3))
            else:
                args.append(np.round(np.array([rng.gauss(0.0, 0.8) for _ in range(int(np.prod(shape)))]).reshape(shape), 3))
        args += [RandomStateArg(rng.randrange(1000)) if h == "rs" else ListArg() for h in handles]
        args += [rng.choice([2, 3]) for _ in ints]
        return Program(source, args, label, list(range(len(params))), effects=self.effects)


#: With `effects=True`, the share of programs of the effects class (the others are the
#: programs `effects=False` writes).
EFFECTS_SHARE = 0.75


def generate(seed, index, effects=False):
    """Program `index` of `seed` (deterministic). With `effects`, most programs are of the
    effects class (random draws, lists and prints passed down to helpers, in-place writes,
    `out=`, views and aliases: see `Generator.effect_statements`); the others are the programs
    `effects=False` gives."""
    klass = effects and random.Random(f"{seed}:{index}:effects").random() < EFFECTS_SHARE
    program = Generator(random.Random(f"{seed}:{index}"), effects=klass).program(f"{seed}:{index}")
    program.rng_seed = index
    return program


# ------------------------------------------------------------------------------------ checks


@dataclass
class Outcome:
    """`status`: "ok", "rejected" (a clean TangentError), "invalid" (the program itself fails or
    is not smooth enough to check), or "failed" (a bug: `kind` says which check)."""

    status: str
    kind: str = ""
    message: str = ""
    checks: int = 0
    #: Checks against finite differences left out because the point is near a kink.
    kinks: int = 0

    def __str__(self):
        return f"{self.status} {self.kind}: {self.message}".strip()


class _Failure(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class _Rejected(Exception):
    pass


_modules = itertools.count()


def load(source, workdir, stem="fuzz"):
    """Writes `source` to a fresh file in `workdir` and imports it (Tangent reads the file)."""
    name = f"{stem}_{os.getpid()}_{next(_modules)}"
    path = os.path.join(workdir, name + ".py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copy_args(args):
    """Fresh arguments for one evaluation: arrays copied (a program may change them in place),
    a new `RandomState` and list for `RandomStateArg` and `ListArg`."""
    return [a.copy() if isinstance(a, np.ndarray) else a.make() if isinstance(a, (RandomStateArg, ListArg)) else a for a in args]


def _same(a, b):
    return all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))


def _close(actual, expected, rtol, atol, kind, what):
    actual_arr = np.asarray(actual, dtype=float)
    expected_arr = np.asarray(expected, dtype=float)
    if actual_arr.shape != expected_arr.shape:
        raise _Failure(kind, f"{what}: shape {actual_arr.shape} != expected {expected_arr.shape}")
    if not np.allclose(actual_arr, expected_arr, rtol=rtol, atol=atol, equal_nan=False):
        raise _Failure(kind, f"{what}:\n  got      {np.array2string(actual_arr, precision=8)}\n  expected {np.array2string(expected_arr, precision=8)}")


def _derive(make, what):
    """Calls the API; a clean Tangent error is a rejection, anything else a failure."""
    import tangent

    try:
        return make()
    except tangent.InternalError as error:
        raise _Failure("internal", f"{what}: {error}") from None
    except tangent.TangentError as error:
        raise _Rejected(f"{what}: {type(error).__name__}: {str(error).splitlines()[0]}") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 (a pyo3 PanicException is a BaseException)
        raise _Failure("engine-crash", f"{what}: {type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}") from None


def _run(fn, args, what, effects=None):
    """Calls a derivative on `args` (fresh: see `_copy_args`). With `effects` (an `_Effects`,
    effects programs), the call's effects are compared with those of one call of `f`."""
    import tangent

    try:
        with np.errstate(all="ignore"), _capture_stdout(effects is not None) as out:
            result = fn(*args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except tangent.InternalError as error:
        raise _Failure("gradient-raised", f"{what} raised {type(error).__name__}: {error}\n{traceback.format_exc(limit=6)}") from None
    except tangent.TangentError as error:
        # A refusal the generated code makes at run time, where it cannot know before (a
        # change in place of memory another name shares): clean, at the user's line.
        raise _Rejected(f"{what}: {type(error).__name__} at run time: {str(error).splitlines()[0]}") from None
    except BaseException as error:  # noqa: BLE001 (whatever generated code raises is a bug)
        raise _Failure("gradient-raised", f"{what} raised {type(error).__name__}: {error}\n{traceback.format_exc(limit=6)}") from None
    if effects is not None:
        effects.compare(_observe(args[: effects.count], out.getvalue()), what)
    return result


@contextlib.contextmanager
def _capture_stdout(capture):
    out = io.StringIO()
    if not capture:
        yield out
        return
    with contextlib.redirect_stdout(out):
        yield out


def _fd(f, args, p, eps):
    """Central differences of `f` in parameter `p`, every evaluation with fresh arguments (the
    same random state, a new list, copies of arrays that the program may change in place)."""

    def fresh(*call):
        return f(*_copy_args(call))

    with np.errstate(all="ignore"):
        return numeric_grad(fresh, list(args), wrt=(p,), eps=eps)


def _snapshot(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value)
    return value


def _observe(args, stdout):
    """What a call of `f` did, seen from outside: for each argument, the next draw of a random
    state, the items of a list, the value of an array (changed in place?); what it printed."""
    seen = []
    for a in args:
        if isinstance(a, np.random.RandomState):
            seen.append(("draw", float(a.randn()), int(a.get_state()[2])))
        elif isinstance(a, list):
            seen.append(("list", _snapshot(a)))
        elif isinstance(a, np.ndarray):
            seen.append(("array", a.copy()))
        else:
            seen.append(("value", a))
    seen.append(("stdout", stdout))
    return seen


def _same_items(a, b):
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same_items(x, y) for x, y in zip(a, b))
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    try:
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return a == b
    return x.shape == y.shape and np.allclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True)


class _Effects:
    """The effects of one call of `f` (`_observe`), which every derivative call must have too
    (no more draws, appends or prints, none fewer, the same in-place changes of arguments);
    differences are collected, and reported after the value checks (`check`)."""

    def __init__(self, expected, count):
        self.expected, self.count = expected, count
        self.differences = []

    def compare(self, seen, what):
        for position, (exp, got) in enumerate(zip(self.expected, seen)):
            kind = exp[0]
            where = f"argument {position}" if kind != "stdout" else "stdout"
            if kind == "draw" and got[1] != exp[1]:
                self.differences.append(
                    (
                        "effects-draws",
                        f"{what}: after the call, the random state ({where}) draws {got[1]!r} next, after one call of f {exp[1]!r} "
                        f"(the derivative drew another number of values; state position {got[2]} against {exp[2]})",
                    )
                )
            elif kind == "list" and not _same_items(got[1], exp[1]):
                self.differences.append(("effects-list", f"{what}: after the call, the list ({where}) is {_short(got[1])}, after one call of f {_short(exp[1])}"))
            elif kind == "array" and not _same_items(got[1], exp[1]):
                self.differences.append(("effects-args", f"{what}: after the call, the array {where} is {_short(got[1])}, after one call of f {_short(exp[1])}"))
            elif kind == "stdout" and got[1] != exp[1]:
                self.differences.append(("effects-stdout", f"{what}: the call printed {_short(got[1])}, one call of f {_short(exp[1])}"))

    def first(self):
        return self.differences[0] if self.differences else None


def _short(value, limit=300):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds):
    """Raises `_Timeout` in the code run inside after `seconds` (main thread only: a SIGALRM
    timer; elsewhere no limit). Engine calls finish first; loops in Python code stop."""
    import signal
    import threading

    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check(program, workdir, *, hvp=False, autograd=True, rng_seed=None, seconds=120.0):
    """Runs the checks of the module docstring on `program`; returns an `Outcome`. A program
    whose checks take more than `seconds` fails with kind "timeout" (generated programs end:
    the time goes into an engine bug, or an endless loop in generated code)."""
    outcome = Outcome("ok")
    rng_seed = program.rng_seed if rng_seed is None else rng_seed
    effects = []
    try:
        # Effects programs print: their output is compared (`_Effects`), not shown.
        with _time_limit(seconds), _capture_stdout(program.effects):
            _check(program, workdir, outcome, hvp=hvp, autograd=autograd, rng_seed=rng_seed, effects=effects)
    except _Timeout:
        outcome.status, outcome.kind, outcome.message = "failed", "timeout", f"the checks took more than {seconds} s"
    except _Failure as failure:
        outcome.status, outcome.kind, outcome.message = "failed", failure.kind, str(failure)
    except _Rejected as rejection:
        outcome.status, outcome.message = "rejected", str(rejection)
    # A derivative call with other effects than one call of `f` is a failure (reported after
    # wrong values, and even when a later derivative was refused).
    first = effects[0].first() if effects else None
    if first is not None and outcome.status in ("ok", "rejected"):
        outcome.status, outcome.kind, outcome.message = "failed", first[0], first[1]
    return outcome


class _Invalid(Exception):
    pass


def _primal(program, workdir, outcome):
    """Loads `program` and calls `f` (twice for effects programs, which must be deterministic
    given fresh arguments); returns `(f, value, effects)`, or None when the program is invalid
    (`outcome` says why)."""
    try:
        module = load(program.source, workdir)
        f = module.f
        args = _copy_args(program.args)
        with np.errstate(all="ignore"), _capture_stdout(program.effects) as out:
            value = f(*args)
        effects = None
        if program.effects:
            effects = _Effects(_observe(args, out.getvalue()), len(program.args))
            again = _copy_args(program.args)
            with np.errstate(all="ignore"), _capture_stdout(True) as out:
                value2 = f(*again)
            effects.compare(_observe(again, out.getvalue()), "a second call of f")
            if effects.differences or not _same_items(value, value2):
                outcome.status, outcome.kind, outcome.message = "invalid", "nondeterministic", (effects.first() or ("", "another value"))[1]
                return None
    except Exception as error:  # noqa: BLE001 (the generator's fault)
        outcome.status, outcome.kind, outcome.message = "invalid", "program-raised", f"{type(error).__name__}: {error}"
        return None
    # Programs of the effects class may change their arguments in place (every evaluation gets
    # copies); the others must not.
    if not program.effects and not _same(args, program.args):
        outcome.status, outcome.kind, outcome.message = "invalid", "mutates-arguments", ""
        return None
    try:
        good = np.ndim(value) == 0 and bool(np.isfinite(value)) and abs(value) <= 1e6
    except (TypeError, ValueError):  # not a number (a ragged tuple: ValueError)
        good = False
    if not good:
        outcome.status, outcome.kind, outcome.message = "invalid", "bad-value", repr(value)
        return None
    return f, value, effects


def run_primal(program, workdir):
    """The `Outcome` of only running `program` (no derivatives): "ok", or "invalid" and why."""
    outcome = Outcome("ok")
    with _capture_stdout(program.effects):
        _primal(program, workdir, outcome)
    return outcome


def _check(program, workdir, outcome, *, hvp, autograd, rng_seed, effects):
    import tangent

    primal = _primal(program, workdir, outcome)
    if primal is None:
        return
    f, value, fx = primal
    if fx is not None:
        effects.append(fx)
    rng = np.random.default_rng(rng_seed)
    grads = {}
    for p in program.float_positions:
        x = program.args[p]
        pname = f"parameter {p}"
        df = _derive(lambda p=p: tangent.grad(f, wrt=(p,)), f"grad wrt {p}")
        g = _run(df, _copy_args(program.args), f"grad wrt {p}", fx)
        grads[p] = g
        if np.shape(g) != np.shape(x):
            raise _Failure("grad-shape", f"gradient of {pname} has shape {np.shape(g)}, the parameter {np.shape(x)}")
        if isinstance(x, np.ndarray) and not (isinstance(g, np.ndarray) and g.dtype == np.float64):
            raise _Failure("grad-type", f"gradient of array {pname} is {type(g).__name__} {getattr(g, 'dtype', '')}")
        # Finite differences with two step sizes: if they disagree, the point is near a kink.
        fd1, fd2 = _fd(f, program.args, p, 1e-6), _fd(f, program.args, p, 1e-4)
        scale = 1.0 + float(np.max(np.abs(fd1)))
        if np.allclose(fd1, fd2, rtol=1e-3, atol=1e-5 * scale):
            _close(g, fd1, 1e-4, 1e-5 * scale, "grad-vs-fd", f"grad wrt {pname} against finite differences")
            outcome.checks += 1
        else:
            outcome.kinks += 1
        df0 = _derive(lambda p=p: tangent.grad(f, wrt=(p,), optimized=False), f"unoptimized grad wrt {p}")
        _close(_run(df0, _copy_args(program.args), "unoptimized grad", fx), g, 1e-9, 1e-12, "optimized-vs-unoptimized", f"unoptimized against optimized grad wrt {pname}")
        u = rng.standard_normal(np.shape(x)) if isinstance(x, np.ndarray) else float(rng.standard_normal())
        jf = _derive(lambda p=p: tangent.jvp(f, wrt=(p,)), f"jvp wrt {p}")
        jv = _run(jf, _copy_args(program.args) + [u], "jvp", fx)
        _close(jv, np.sum(np.asarray(g) * u), 1e-8, 1e-10 * scale, "jvp-vs-grad", f"jvp wrt {pname} against dot(grad, direction)")
        outcome.checks += 3
        if p == program.float_positions[0]:
            sf = _derive(lambda p=p: tangent.autodiff(f, wrt=(p,), motion="split"), "split motion")
            _close(_run(sf, _copy_args(program.args) + [0.5], "split motion", fx), np.asarray(g) * 0.5, 1e-9, 1e-12, "split-vs-joint", "split-motion vjp with seed 0.5 against 0.5 * grad")
            pf = _derive(lambda p=p: tangent.grad(f, wrt=(p,), preserve_result=True, optimized=False), "preserve_result")
            pg, pv = _run(pf, _copy_args(program.args), "preserve_result", fx)
            _close(pg, g, 1e-9, 1e-12, "preserve-result", "gradient with preserve_result")
            _close(pv, value, 1e-12, 1e-12, "preserve-result", "value with preserve_result")
            outcome.checks += 2
        if hvp and p == program.float_positions[0]:
            _check_hvp(f, program, p, g, rng, outcome, fx)
    if len(program.float_positions) > 1:
        wrt = tuple(program.float_positions)
        df = _derive(lambda: tangent.grad(f, wrt=wrt), "grad wrt all")
        together = _run(df, _copy_args(program.args), "grad wrt all", fx)
        if not isinstance(together, tuple) or len(together) != len(wrt):
            raise _Failure("multi-wrt", f"grad wrt {wrt} returned {type(together).__name__}")
        for p, gp in zip(wrt, together):
            _close(gp, grads[p], 1e-9, 1e-12, "multi-wrt", f"grad wrt {wrt}, item for parameter {p}")
        outcome.checks += 1
    if autograd:
        _check_autograd(program, workdir, grads, outcome)


def _check_hvp(f, program, p, g, rng, outcome, fx=None):
    import tangent

    x = program.args[p]
    v = rng.standard_normal(np.shape(x)) if isinstance(x, np.ndarray) else float(rng.standard_normal())
    hf = _derive(lambda: tangent.hvp(f, wrt=(p,)), "hvp")
    hv = _run(hf, _copy_args(program.args) + [v], "hvp", fx)
    df = tangent.grad(f, wrt=(p,))

    def along(h):
        args = _copy_args(program.args)
        args[p] = x + h * v
        with np.errstate(all="ignore"):
            return np.asarray(df(*args), dtype=float)

    fd1 = (along(1e-5) - along(-1e-5)) / 2e-5
    fd2 = (along(1e-3) - along(-1e-3)) / 2e-3
    scale = 1.0 + float(np.max(np.abs(fd1)))
    if np.allclose(fd1, fd2, rtol=1e-2, atol=1e-4 * scale):
        _close(hv, fd1, 1e-3, 1e-4 * scale, "hvp-vs-fd", "hvp against finite differences of the gradient")
        outcome.checks += 1
    else:
        outcome.kinks += 1


_UNARY_UFUNCS = {"tanh", "sin", "cos", "exp", "arctan", "log", "sqrt", "square", "negative", "abs", "log1p"}


def _writes_into_arrays(source):
    """Whether `source` writes into an array through a call (outside autograd's subset):
    `out=`, a unary ufunc's positional output (`np.tanh(a, a)`), `np.copyto`, `.fill`."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        if any(k.arg == "out" for k in node.keywords):
            return True
        if isinstance(node.func, ast.Attribute):
            if node.func.attr in ("copyto", "fill"):
                return True
            if node.func.attr in _UNARY_UFUNCS and len(node.args) >= 2:
                return True
    return False


def _check_autograd(program, workdir, grads, outcome):
    try:
        import autograd
    except ImportError:
        return
    body = program.source.split("import numpy as np", 1)[1]
    if "math." in body or re.search(r"\]\s*(\+|-|\*)?=[^=]", body) or re.search(r"[\w\]]\s*(\+|-|\*|/)=", body):
        # Outside autograd's subset: math.* of its boxes, item assignment, and augmented
        # assignment (in place on an array autograd does not trace, which its tape may have
        # kept a view of: `v1 = v0[:, 2] @ x; v0 *= v0` gives it a wrong gradient).
        return
    if _writes_into_arrays(program.source):
        return
    source = program.source.replace("import numpy as np", "import autograd.numpy as np", 1)
    import warnings

    try:
        module = load(source, workdir, "fuzz_autograd")
        for p, g in grads.items():
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = autograd.grad(module.f, p)(*_copy_args(program.args))
            _close(g, expected, 1e-7, 1e-9, "grad-vs-autograd", f"grad wrt parameter {p} against autograd")
            outcome.checks += 1
    except _Failure:
        raise
    except Exception:  # noqa: BLE001
        return  # a construct autograd does not support


# ------------------------------------------------------------------------------ minimizing


def _statement_lists(tree):
    for node in ast.walk(tree):
        for attr in ("body", "orelse"):
            block = getattr(node, attr, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield node, attr


def _nth_statement(tree, k):
    """The `k`-th statement of `tree`, counting every statement list in `ast.walk` order, with
    its list's owner and attribute and its place there."""
    seen = 0
    for node, attr in list(_statement_lists(tree)):
        block = getattr(node, attr)
        if seen + len(block) > k:
            return node, attr, k - seen
        seen += len(block)
    raise IndexError(k)


def _replace(tree, k, replacement):
    """The source of `tree` with its `k`-th statement replaced by the statements `replacement`."""
    node, attr, i = _nth_statement(tree, k)
    block = getattr(node, attr)
    setattr(node, attr, block[:i] + list(replacement) + block[i + 1 :] or [ast.Pass()])
    return ast.unparse(ast.fix_missing_locations(tree))


_EXPRS = (ast.BinOp, ast.Call, ast.IfExp, ast.UnaryOp, ast.Subscript)


def _candidates(source):
    """Smaller variants of `source`: a statement or helper removed, a compound statement
    replaced by its body, an expression replaced by one of its operands."""
    tree = ast.parse(source)
    count = sum(len(getattr(node, attr)) for node, attr in _statement_lists(tree))
    # Statements, last first (later statements depend on earlier ones, not the reverse).
    for k in range(count - 1, -1, -1):
        t = ast.parse(source)
        node, attr, i = _nth_statement(t, k)
        stmt = getattr(node, attr)[i]
        if (isinstance(stmt, ast.FunctionDef) and stmt.name == "f") or isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(stmt, (ast.If, ast.For, ast.While)):
            yield _replace(t, k, stmt.body + stmt.orelse)
        yield _replace(ast.parse(source), k, [])
    # Expressions: a node replaced by one of its operands.
    total = sum(isinstance(n, _EXPRS) for n in ast.walk(tree))
    for idx in range(total):
        for choice in range(3):
            t = ast.parse(source)
            node = [n for n in ast.walk(t) if isinstance(n, _EXPRS)][idx]
            sub = None
            if isinstance(node, ast.BinOp):
                sub = [node.left, node.right, None][choice]
            elif isinstance(node, ast.Call) and choice < len(node.args) and not isinstance(node.func, ast.Name):
                sub = node.args[choice]
            elif isinstance(node, ast.IfExp):
                sub = [node.body, node.orelse, None][choice]
            elif isinstance(node, ast.UnaryOp) and choice == 0:
                sub = node.operand
            elif isinstance(node, ast.Subscript) and choice == 0:
                sub = node.value
            if sub is not None:
                text = _substitute(t, node, sub)
                if text is not None:
                    yield text


def _substitute(tree, target, sub):
    class Swap(ast.NodeTransformer):
        def generic_visit(self, node):
            if node is target:
                return sub
            return super().generic_visit(node)

    try:
        return ast.unparse(ast.fix_missing_locations(Swap().visit(tree)))
    except Exception:  # noqa: BLE001 (an invalid tree: not a candidate)
        return None


def minimize(program, kind, workdir, *, seconds=120.0, hvp=False, log=None):
    """Greedy delta debugging: the smallest variant of `program` (same arguments) that still
    fails with `kind`. After a smaller variant is found, the search goes on from the same
    candidate (earlier ones were tried already), and passes repeat until one finds nothing.
    Stops after `seconds`."""
    deadline = time.monotonic() + seconds
    hvp = hvp or kind.startswith("hvp")
    header = "\n".join(line for line in program.source.splitlines() if line.startswith("#"))
    best = program.source
    resume = 0
    while time.monotonic() < deadline:
        improved = False
        for k, candidate in enumerate(_candidates(best)):
            if k < resume:
                continue
            if time.monotonic() > deadline:
                break
            if candidate is None or len(candidate) >= len(best):
                continue
            trial = Program(candidate, program.args, program.label, program.float_positions, program.rng_seed, program.effects)
            # A smaller program may loop for ever (its counter's increment removed).
            limit = max(1.0, min(15.0, deadline - time.monotonic()))
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                outcome = check(trial, workdir, hvp=hvp, seconds=limit)
            if outcome.status == "failed" and outcome.kind == kind:
                best, resume, improved = candidate, k, True
                if log:
                    log(f"  minimized to {len(best.splitlines())} lines")
                break
        if not improved:
            if resume == 0:
                break
            resume = 0  # one more pass from the start
    source = best if best.endswith("\n") else best + "\n"
    if header and not source.startswith("#"):
        source = header + "\n" + source
    return Program(source, program.args, program.label, program.float_positions, program.rng_seed, program.effects)


# ----------------------------------------------------------------------------- batch runs


@dataclass
class Stats:
    programs: int = 0
    ok: int = 0
    rejected: int = 0
    invalid: int = 0
    failed: int = 0
    checks: int = 0
    kinks: int = 0
    reasons: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    #: The programs of the effects class among these, counted again on their own (their
    #: refusals must not hide failures of the others: `acceptance` leaves them out).
    effects: Stats | None = None

    def add(self, program, outcome, *, top=True):
        if top and program.effects:
            if self.effects is None:
                self.effects = Stats()
            self.effects.add(program, outcome, top=False)
        self.programs += 1
        self.checks += outcome.checks
        self.kinks += outcome.kinks
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        if outcome.status in ("rejected", "invalid"):
            key = (outcome.kind + " " + outcome.message)[:120].strip()
            key = re.sub(r"\b(fuzz_\w+)\.py", "<module>.py", key)
            self.reasons[key] = self.reasons.get(key, 0) + 1
        if outcome.status == "failed":
            self.failures.append((program, outcome))

    @property
    def acceptance(self):
        """Accepted programs among the valid ones, programs of the effects class left out."""
        e = self.effects or Stats()
        return (self.ok - e.ok) / max(1, (self.programs - e.programs) - (self.invalid - e.invalid))

    @property
    def effects_acceptance(self):
        """Accepted programs among the valid ones of the effects class."""
        e = self.effects or Stats()
        return e.ok / max(1, e.programs - e.invalid)

    def _lines(self, what, acceptance):
        lines = [
            (
                f"{self.programs} {what}: {self.ok} ok, {self.rejected} rejected by the engine, {self.invalid} invalid, "
                f"{self.failed} FAILED; {self.checks} checks passed, {self.kinks} finite-difference checks skipped near "
                f"kinks; acceptance {acceptance:.1%}"
            )
        ]
        for reason, n in sorted(self.reasons.items(), key=lambda kv: -kv[1])[:12]:
            lines.append(f"  {n:4d}  {reason}")
        if self.failures and self.effects is None:
            kinds = {}
            for _, outcome in self.failures:
                kinds[outcome.kind] = kinds.get(outcome.kind, 0) + 1
            lines.append("  failures: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])))
        return lines

    def summary(self):
        if self.effects is None:
            return "\n".join(self._lines("programs", self.acceptance))
        plain = Stats()
        for name in ("programs", "ok", "rejected", "invalid", "failed", "checks", "kinks"):
            setattr(plain, name, getattr(self, name) - getattr(self.effects, name))
        plain.reasons = {k: n - self.effects.reasons.get(k, 0) for k, n in self.reasons.items() if n > self.effects.reasons.get(k, 0)}
        effect_failures = {id(p) for p, _ in self.effects.failures}
        plain.failures = [(p, o) for p, o in self.failures if id(p) not in effect_failures]
        return "\n".join(plain._lines("programs without effects", self.acceptance) + self.effects._lines("programs of the effects class", self.effects_acceptance))


def run(seed, indices, workdir, *, hvp_every=3, deadline=None, log=None, effects=False):
    stats = Stats()
    for i in indices:
        if deadline is not None and time.monotonic() > deadline:
            break
        program = generate(seed, i, effects=effects)
        outcome = check(program, workdir, hvp=hvp_every > 0 and i % hvp_every == 0)
        stats.add(program, outcome)
        if outcome.status == "failed" and log:
            log(f"FAILED {program.label}: {outcome.kind}: {outcome.message.splitlines()[0]}")
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", default=None, help="seed (default: random)")
    parser.add_argument("--programs", type=int, default=None, help="number of programs (default 300, or unlimited with --minutes)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument("--only", type=int, default=None, help="check only program ONLY of the seed")
    parser.add_argument("--show", default=None, metavar="SEED:INDEX", help="print a program and exit")
    parser.add_argument("--minimize", action="store_true", help="minimize failures")
    parser.add_argument("--save", default=None, metavar="DIR", help="write minimized failures to DIR")
    parser.add_argument("--no-hvp", action="store_true", help="skip Hessian-vector products")
    parser.add_argument(
        "--effects",
        action="store_true",
        help="also programs with effects, aliasing and in-place writes (random draws, lists and prints passed to helpers, out=, views; issue 13)",
    )
    parser.add_argument("--per-kind", type=int, default=None, metavar="N", help="minimize and save only the first N failures of each kind")
    parser.add_argument("--minimize-seconds", type=float, default=120.0, metavar="S", help="time limit of each minimization (default 120)")
    args = parser.parse_args(argv)
    if args.show:
        seed, index = args.show.rsplit(":", 1)
        print(generate(seed, int(index), effects=args.effects).describe())
        return 0
    seed = args.seed if args.seed is not None else str(random.SystemRandom().randrange(10**9))
    if args.only is not None:
        indices = [args.only]
    elif args.programs is not None:
        indices = range(args.programs)
    else:
        indices = itertools.count() if args.minutes else range(300)
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else None
    print(f"differential fuzzer: seed {seed}{' (with programs of the effects class)' if args.effects else ''}", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tangent-fuzz-") as workdir:
        os.environ.setdefault("TANGENT_GENERATED_DIR", os.path.join(workdir, "generated"))
        stats = run(seed, indices, workdir, hvp_every=0 if args.no_hvp else 3, deadline=deadline, log=lambda m: print(m, flush=True), effects=args.effects)
        print(stats.summary())
        print(f"{time.monotonic() - started:.1f} s")
        per_kind = {}
        for program, outcome in stats.failures:
            per_kind[outcome.kind] = per_kind.get(outcome.kind, 0) + 1
            if args.per_kind is not None and per_kind[outcome.kind] > args.per_kind:
                print(f"\n=== {program.label}: {outcome.status} {outcome.kind} (not minimized: --per-kind {args.per_kind})")
                continue
            print(f"\n=== {program.label}: {outcome}")
            if args.minimize or args.save:
                program = minimize(program, outcome.kind, workdir, seconds=args.minimize_seconds, log=lambda m: print(m, flush=True))
            print(program.describe())
            if args.save:
                os.makedirs(args.save, exist_ok=True)
                name = f"fuzz_{re.sub(r'[^0-9a-zA-Z]+', '_', program.label)}_{outcome.kind.replace('-', '_')}.py"
                with open(os.path.join(args.save, name), "w") as f:
                    first = outcome.message.splitlines()[0] if outcome.message else ""
                    flag = " --effects" if program.effects else ""
                    f.write(f"# Found by tests/python/fuzzgen.py{flag} (program {program.label}): {outcome.kind}: {first}\n")
                    if program.effects:
                        f.write(EFFECTS_MARK + "\n")
                    f.write(f"# fuzz-args: {encode_args(program.args)}\n")
                    f.write(program.source)
                print(f"saved {os.path.join(args.save, name)}")
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
