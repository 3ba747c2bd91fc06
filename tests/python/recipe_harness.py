"""Engine-independent tools for the recipe templates in `recipes/`.

The engine parses the recipe files and instantiates the templates itself; this module does the
same in Python so the templates can be checked without the engine:

- `load_recipes()` parses every `recipes/*.py` with `ast` (never importing them);
- `template_problems(recipe)` checks a template against the template rules (statement kinds,
  names it may use, one contribution per parameter, runtime helpers that exist);
- `instantiate(recipe)` turns a template into a Python function that, given the incoming
  adjoint, the primal result and the primal's arguments, returns the contributions `d[x]`;
- `tangent_template_problems(recipe, adjoint)` and `instantiate_tangent(recipe, active)` do the
  same for the forward-mode (`@tangent_`) templates, dropping statements exactly as the engine
  does for inactive inputs;
- `RUNTIME` is the `tangent` runtime the templates run against: the real
  `tangent.runtime` when it can be loaded, otherwise `ReferenceRuntime`, a small
  implementation of the contract in ARCHITECTURE.md ("Runtime").
"""
from __future__ import annotations

import ast
import builtins
import dataclasses
import importlib
import importlib.util
import math
import operator
import os
import pathlib
import types

import numpy

REPO = pathlib.Path(__file__).resolve().parents[2]
# TANGENT_RECIPES_DIR points the checks at another directory of recipe files.
RECIPES_DIR = pathlib.Path(os.environ.get("TANGENT_RECIPES_DIR", REPO / "recipes"))
RUNTIME_FILE = REPO / "pyhooks" / "python" / "tangent" / "runtime.py"

# The runtime helpers templates may call, as listed in ARCHITECTURE.md.
RUNTIME_HELPERS = ("unbroadcast", "unreduce", "init_grad", "add_grad", "add_grad_at", "zero_at", "copy")
# Runtime helpers templates may call that the reference runtime does not mirror.
RUNTIME_ONLY_HELPERS = ("matmul_adjoint_a", "matmul_adjoint_b", "dot_adjoint_a", "dot_adjoint_b", "save_item", "grad_like", "sequence_like", "appended", "attribute_grads", "attribute_grads_adjoint", "attribute_tangent", "object_tangent", "split_like", "join_like", "unstack", "diagonal_like", "scatter_along_axis", "to_rows", "from_rows",
                        "digamma", "polygamma", "einsum", "einsum_adjoint", "broadcast_into", "unravel", "ravel_like")
# Modules a template may name.
TEMPLATE_MODULES = ("numpy", "math", "tangent")
# Roots of the dotted names recipes are registered under.
PRIMAL_MODULES = {"numpy": numpy, "math": math, "operator": operator, "builtins": builtins}
try:  # the runtime helpers generated gradients call have recipes too (recipes/runtime.py)
    import tangent.runtime as _tangent_runtime

    PRIMAL_MODULES["tangent"] = _tangent_runtime
except ImportError:  # pragma: no cover - the package is built before the suite runs
    pass
# Roots of recipe names whose module may be missing: checks of their recipes skip.
OPTIONAL_PRIMAL_MODULES = {"scipy": "scipy.special"}
try:  # recipes/scipy.py (templates never call SciPy; only the checks need the primals)
    import scipy.special

    PRIMAL_MODULES["scipy"] = scipy
except ImportError:
    pass
# Functions newer than the oldest supported Python (3.11): checks of their recipes skip on
# an older one.
NEWER_PRIMALS = {"math.sumprod": "3.12", "math.fma": "3.13"}
# Functions that newer versions of their library removed (the recipe stays for older ones):
# name -> the version that removed it.
REMOVED_PRIMALS = {"numpy.row_stack": "NumPy 2.5"}


# --------------------------------------------------------------------------- reference runtime


def _is_sequence(value):
    return isinstance(value, (list, tuple))


class ReferenceRuntime:
    """The subset of the `tangent` runtime templates use, written from ARCHITECTURE.md."""

    @staticmethod
    def init_grad(x):
        if x is None:
            return None
        if isinstance(x, numpy.ndarray):
            dtype = x.dtype if numpy.issubdtype(x.dtype, numpy.inexact) else numpy.float64
            return numpy.zeros(x.shape, dtype=dtype)
        if isinstance(x, list):
            return [ReferenceRuntime.init_grad(v) for v in x]
        if isinstance(x, tuple):
            return tuple(ReferenceRuntime.init_grad(v) for v in x)
        if isinstance(x, dict):
            return {k: ReferenceRuntime.init_grad(v) for k, v in x.items()}
        return 0.0

    @staticmethod
    def add_grad(a, b):
        if a is None:
            return b
        if b is None:
            return a
        if _is_sequence(a) and _is_sequence(b):
            return type(a)(ReferenceRuntime.add_grad(u, v) for u, v in zip(a, b))
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for k, v in b.items():
                out[k] = ReferenceRuntime.add_grad(out.get(k), v)
            return out
        return a + b

    @staticmethod
    def unbroadcast(g, x):
        if numpy.ndim(x) == 0:
            return float(numpy.sum(g))
        shape = numpy.shape(x)
        g = numpy.asarray(g)
        if not numpy.issubdtype(g.dtype, numpy.inexact):
            g = g.astype(numpy.float64)
        while g.ndim > len(shape):
            g = g.sum(axis=0)
        offset = len(shape) - g.ndim
        axes = tuple(i for i in range(g.ndim) if shape[i + offset] == 1 and g.shape[i] != 1)
        if axes:
            g = g.sum(axis=axes, keepdims=True)
        if g.shape != shape:
            g = numpy.broadcast_to(g, shape).copy()
        return g

    @staticmethod
    def unreduce(g, x, axis, keepdims):
        shape = numpy.shape(x)
        g = numpy.asarray(g)
        if axis is not None and not keepdims:
            axes = (axis,) if numpy.ndim(axis) == 0 else tuple(axis)
            if g.ndim + len(axes) == len(shape):  # else g is a scalar seed: just broadcast it
                g = numpy.expand_dims(g, tuple(sorted(a % max(len(shape), 1) for a in axes)))
        if len(shape) == 0:
            return float(g.reshape(()))
        if not numpy.issubdtype(g.dtype, numpy.inexact):
            g = g.astype(numpy.float64)
        return numpy.broadcast_to(g, shape).copy()

    @staticmethod
    def add_grad_at(b, x, index, g):
        b = ReferenceRuntime.init_grad(x) if b is None else ReferenceRuntime.copy(b)
        if isinstance(b, numpy.ndarray):
            numpy.add.at(b, index, g)
            return b
        if isinstance(b, tuple):
            b = list(b)
        b[index] = ReferenceRuntime.add_grad(b[index], g)
        return b

    @staticmethod
    def zero_at(b, index):
        if b is None:
            return None
        b = ReferenceRuntime.copy(b)
        if isinstance(b, numpy.ndarray):
            b[index] = 0
            return b
        b[index] = ReferenceRuntime.init_grad(b[index])
        return b

    @staticmethod
    def copy(v):
        if isinstance(v, numpy.ndarray):
            return v.copy()
        if isinstance(v, (list, dict)):
            return type(v)(v)
        return v


def _load_runtime():
    """The real runtime when loadable (package, then the source file alone), else the reference.

    Set TANGENT_RECIPES_RUNTIME=reference to force the reference implementation.
    Returns (namespace, description).
    """
    if os.environ.get("TANGENT_RECIPES_RUNTIME") == "reference":
        module, source = None, "reference (forced by TANGENT_RECIPES_RUNTIME)"
    else:
        module, source = None, "reference (tangent.runtime not available)"
        try:
            module = importlib.import_module("tangent.runtime")
            source = f"tangent.runtime from {module.__file__}"
        except Exception:
            module = None
        if module is None and RUNTIME_FILE.exists():
            try:
                spec = importlib.util.spec_from_file_location("_tangent_runtime_under_test", RUNTIME_FILE)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                source = f"{RUNTIME_FILE.relative_to(REPO)} (loaded as a file)"
            except Exception as error:  # the runtime is being written by someone else
                module = None
                source = f"reference ({RUNTIME_FILE.relative_to(REPO)} failed to load: {error!r})"
        if module is not None and not all(hasattr(module, h) for h in ("unbroadcast", "unreduce")):
            module, source = None, "reference (tangent.runtime lacks unbroadcast/unreduce)"
    helpers = {}
    for name in RUNTIME_HELPERS:
        helpers[name] = getattr(module, name, None) if module is not None else None
        if helpers[name] is None:
            helpers[name] = getattr(ReferenceRuntime, name)
    # Helpers the reference does not mirror (e.g. the matrix-product adjoints) come from the
    # real runtime only.
    if module is not None:
        for name in dir(module):
            if not name.startswith("_") and name not in helpers and callable(getattr(module, name)):
                helpers[name] = getattr(module, name)
    return types.SimpleNamespace(**helpers), source


RUNTIME, RUNTIME_SOURCE = _load_runtime()


# --------------------------------------------------------------------------- parsing


def dotted_name(node):
    """`numpy.linalg.det` for the expression numpy.linalg.det; bare names are builtins."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ValueError(f"not a dotted name: {ast.unparse(node)}")
    parts.append(node.id)
    if len(parts) == 1:
        parts.append("builtins")
    return ".".join(reversed(parts))


def resolve(name):
    """The object a dotted name like `numpy.linalg.det` or `operator.add` denotes.

    A name of a module that is not installed (`OPTIONAL_PRIMAL_MODULES`) or of a function this
    Python does not have yet (`NEWER_PRIMALS`) skips the calling test.
    """
    root, *rest = name.split(".")
    if root not in PRIMAL_MODULES and root in OPTIONAL_PRIMAL_MODULES:
        _skip(f"{name}: {OPTIONAL_PRIMAL_MODULES[root]} is not installed")
    value = PRIMAL_MODULES[root]
    for part in rest:
        if not hasattr(value, part) and name in NEWER_PRIMALS:
            _skip(f"{name} needs Python {NEWER_PRIMALS[name]}")
        if not hasattr(value, part) and name in REMOVED_PRIMALS:
            _skip(f"{name} was removed in {REMOVED_PRIMALS[name]}")
        value = getattr(value, part)
    return value


def _skip(reason):
    import pytest  # only the test suite resolves names that may be missing

    pytest.skip(reason)


@dataclasses.dataclass
class Recipe:
    function: str  # the template's Python function name
    path: pathlib.Path
    aliases: list  # dotted names from the @adjoint (or @tangent_) decorators, top to bottom
    node: ast.FunctionDef
    kind: str = "adjoint"  # "adjoint" (@adjoint) or "tangent" (@tangent_)

    @property
    def result(self):
        return self.node.args.args[0].arg

    @property
    def params(self):
        return [a.arg for a in self.node.args.args[1:]]

    @property
    def where(self):
        return f"{self.path.name}:{self.node.lineno} {self.function}"


@dataclasses.dataclass
class RecipeFile:
    path: pathlib.Path
    tree: ast.Module
    recipes: list
    nondifferentiable: list  # dotted names
    problems: list  # top-level statements that are neither recipes nor allowed boilerplate
    tangents: list = dataclasses.field(default_factory=list)  # the @tangent_ templates


DECORATORS = {"adjoint": "adjoint", "tangent_": "tangent"}


def parse_recipe_file(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    recipes, tangents, nondiff, problems = [], [], [], []
    for index, stmt in enumerate(tree.body):
        if isinstance(stmt, ast.FunctionDef):
            aliases = {"adjoint": [], "tangent": []}
            for dec in stmt.decorator_list:
                if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Name) and dec.func.id in DECORATORS
                        and len(dec.args) == 1 and not dec.keywords):
                    aliases[DECORATORS[dec.func.id]].append(dotted_name(dec.args[0]))
                else:
                    problems.append(f"{path.name}:{stmt.lineno}: decorator {ast.unparse(dec)} is not @adjoint(name) or @tangent_(name)")
            if aliases["adjoint"] and aliases["tangent"]:
                problems.append(f"{path.name}:{stmt.lineno}: function {stmt.name} mixes @adjoint and @tangent_ "
                                "(an adjoint and a tangent template are separate functions)")
            if aliases["tangent"]:
                tangents.append(Recipe(stmt.name, path, aliases["tangent"], stmt, kind="tangent"))
            elif aliases["adjoint"]:
                recipes.append(Recipe(stmt.name, path, aliases["adjoint"], stmt))
            else:
                problems.append(f"{path.name}:{stmt.lineno}: function {stmt.name} has no @adjoint or @tangent_ decorator")
                recipes.append(Recipe(stmt.name, path, [], stmt))
        elif (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
              and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "nondifferentiable"):
            nondiff.extend(dotted_name(arg) for arg in stmt.value.args)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            pass
        elif index == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            pass  # module docstring
        else:
            problems.append(f"{path.name}:{stmt.lineno}: unexpected top-level statement {ast.unparse(stmt)[:60]}")
    return RecipeFile(path, tree, recipes, nondiff, problems, tangents)


def load_recipes(directory=RECIPES_DIR):
    return [parse_recipe_file(p) for p in sorted(directory.glob("*.py"))]


# --------------------------------------------------------------------------- template rules


def _adjoint_key(node):
    """For `d[name]` return name, else None."""
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "d"
            and isinstance(node.slice, ast.Name)):
        return node.slice.id
    return None


class _NameChecker(ast.NodeVisitor):
    """Reports names and constructs a template expression may not use."""

    FORBIDDEN = (ast.Lambda, ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await, ast.GeneratorExp,
                 ast.SetComp, ast.DictComp)

    def __init__(self, recipe, known, problems):
        self.recipe, self.known, self.problems = recipe, set(known), problems

    def visit(self, node):
        if isinstance(node, self.FORBIDDEN):
            self.problems.append(f"{type(node).__name__} is not allowed: {ast.unparse(node)[:60]}")
            return
        super().visit(node)

    def visit_Subscript(self, node):
        key = _adjoint_key(node)
        if key is not None:
            if key != self.recipe.result:
                self.problems.append(f"reads d[{key}]: only d[{self.recipe.result}] (the incoming adjoint) can be read")
            return
        self.generic_visit(node)

    def visit_ListComp(self, node):
        saved = set(self.known)
        for gen in node.generators:
            self.visit(gen.iter)
            for target in ast.walk(gen.target):
                if isinstance(target, ast.Name):
                    self.known.add(target.id)
            for cond in gen.ifs:
                self.visit(cond)
        self.visit(node.elt)
        self.known = saved

    def visit_Attribute(self, node):
        try:
            name = dotted_name(node)
        except ValueError:
            self.generic_visit(node)
            return
        root = name.split(".")[0]
        if root == "tangent":
            helper = name.split(".")[1]
            if helper not in RUNTIME_HELPERS + RUNTIME_ONLY_HELPERS or name.count(".") != 1:
                self.problems.append(f"unknown runtime helper {name}")
            return
        if root in ("numpy", "math"):
            obj = {"numpy": numpy, "math": math}[root]
            for part in name.split(".")[1:]:
                if not hasattr(obj, part):
                    self.problems.append(f"{name} does not exist")
                    return
                obj = getattr(obj, part)
            return
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id == "d":
            self.problems.append("`d` may only appear as d[name]")
        elif node.id not in self.known:
            self.problems.append(f"unknown name {node.id!r} (templates may use parameters, locals, numpy, math, tangent)")


def parameter_problems(args):
    """Problems of a template's parameter list, and the parameter names (None without any)."""
    problems = []
    if args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg:
        problems.append("parameters must be plain (no /, *, *args, **kwargs)")
    if not args.args:
        problems.append("the first parameter (the primal result) is missing")
        return problems, None
    names = [a.arg for a in args.args]
    if len(set(names)) != len(names):
        problems.append("duplicate parameter names")
    for name in names:
        if name in TEMPLATE_MODULES or name == "d":
            problems.append(f"parameter {name!r} shadows a template name")
    if len(args.defaults) == len(args.args):
        problems.append("the result parameter cannot have a default")
    return problems, names


def template_problems(recipe):
    """Everything in `recipe` that breaks the template rules; empty when it is valid."""
    fn = recipe.node
    args = fn.args
    problems, names = parameter_problems(args)
    if names is None:
        return problems
    for default in args.defaults:
        try:
            ast.literal_eval(default)  # constants, -1, tuples of constants
            continue
        except ValueError:
            pass
        try:
            root = dotted_name(default).split(".")[0]
        except ValueError:
            root = None
        if root not in ("numpy", "math"):
            problems.append(f"default {ast.unparse(default)} must be a literal or a numpy/math name")

    known = set(names) | set(TEMPLATE_MODULES)
    locals_seen = set()
    contributed = set()
    body = fn.body
    if not body:
        problems.append("empty body")
    for stmt in body:
        where = f"line {stmt.lineno}"
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue  # a docstring
        if not isinstance(stmt, ast.Assign):
            problems.append(f"{where}: only assignments are allowed, found {type(stmt).__name__}")
            continue
        if len(stmt.targets) != 1:
            problems.append(f"{where}: chained assignment")
            continue
        value_problems = []
        _NameChecker(recipe, known, value_problems).visit(stmt.value)
        problems.extend(f"{where}: {p}" for p in value_problems)
        target = stmt.targets[0]
        key = _adjoint_key(target)
        if key is not None:
            if key not in names[1:]:
                problems.append(f"{where}: d[{key}] is not a parameter of the primal")
            elif key in contributed:
                problems.append(f"{where}: d[{key}] is assigned twice")
            contributed.add(key)
        elif isinstance(target, ast.Name):
            if target.id in known:
                problems.append(f"{where}: local {target.id!r} reassigns a parameter, module or earlier local")
            known.add(target.id)
            locals_seen.add(target.id)
        else:
            problems.append(f"{where}: target must be a local name or d[param]")
    if not contributed:
        problems.append("no d[param] contribution")
    return problems


# --------------------------------------------------------------------------- instantiation


class _Lower(ast.NodeTransformer):
    """d[result] -> __seed__; `d[p] = e` -> `if __wants__('p'): __adjoints__['p'] = e`."""

    def __init__(self, result):
        self.result = result

    def visit_Subscript(self, node):
        if _adjoint_key(node) == self.result and isinstance(node.ctx, ast.Load):
            return ast.copy_location(ast.Name("__seed__", ast.Load()), node)
        return self.generic_visit(node)

    def visit_Assign(self, node):
        key = _adjoint_key(node.targets[0])
        node.value = self.visit(node.value)
        if key is None:
            return node
        store = ast.Assign(
            targets=[ast.Subscript(ast.Name("__adjoints__", ast.Load()), ast.Constant(key), ast.Store())],
            value=node.value)
        test = ast.Call(ast.Name("__wants__", ast.Load()), [ast.Constant(key)], [])
        return ast.copy_location(ast.If(test=test, body=[store], orelse=[]), node)


def instantiate(recipe, runtime=None):
    """A Python function `f(seed, wants, result, *args, **kwargs) -> {param: contribution}`.

    `wants(param)` says which contributions to compute (the engine only emits those of active
    arguments); arguments bind to the template's parameters exactly as they bind to the primal.
    The function runs without builtins, with only numpy, math and the runtime as `tangent`.
    """
    fn = recipe.node
    lines = [f"def template_{recipe.function}(__seed__, __wants__, {ast.unparse(fn.args)}):",
             "    __adjoints__ = {}"]
    for stmt in fn.body:
        lowered = ast.fix_missing_locations(_Lower(recipe.result).visit(ast.parse(ast.unparse(stmt)).body[0]))
        lines.extend("    " + line for line in ast.unparse(lowered).splitlines())
    lines.append("    return __adjoints__")
    module = ast.parse("\n".join(lines) + "\n")
    namespace = {"numpy": numpy, "math": math, "tangent": runtime or RUNTIME, "__builtins__": {}}
    exec(compile(module, f"<template {recipe.where}>", "exec"), namespace)
    return namespace[f"template_{recipe.function}"]


# --------------------------------------------------------------------------- tangent templates
#
# A forward-mode template, `@tangent_(name)`, has the parameters of the adjoint template of the
# same function (primal result first). Its body is a sequence of
#   - `local = expr`         a template local (assigned once);
#   - `d[y] = expr`          the first statement setting the result's tangent `d[y]`;
#   - `d[y] += expr`         every later one (the engine writes `dy = dy + (expr)`, never in place).
# `d[x]` in an expression reads the tangent of input `x`. The engine instantiates the template
# for the inputs that are active: every statement reading the tangent of an inactive input is
# dropped, and the first surviving `d[y] += e` becomes `d[y] = e`; when no `d[y]` statement
# survives the result's tangent is zero. Hence each statement reads at most one input tangent,
# and a local reading one may only be used by statements that read the same tangent.


def _tangent_reads(node):
    """The x of every `d[x]` read in expression `node`, in order of appearance (with repeats)."""
    return [_adjoint_key(n) for n in ast.walk(node) if _adjoint_key(n) is not None]


def _names_used(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


class _TangentNameChecker(_NameChecker):
    """As _NameChecker, but `d[x]` reads the tangent of a differentiable input x."""

    def __init__(self, recipe, known, problems, readable):
        super().__init__(recipe, known, problems)
        self.readable = readable

    def visit_Subscript(self, node):
        key = _adjoint_key(node)
        if key is not None:
            if key == self.recipe.result:
                self.problems.append(f"reads d[{key}], the tangent being computed (use `d[{key}] += ...`)")
            elif key not in self.recipe.params:
                self.problems.append(f"d[{key}] is not a parameter of the primal")
            elif self.readable is not None and key not in self.readable:
                self.problems.append(f"reads d[{key}], but {key!r} is not differentiable (the adjoint template "
                                     f"contributes only to {sorted(self.readable)})")
            return
        if isinstance(node.value, ast.Name) and node.value.id == "d":
            self.problems.append(f"`d[...]` must name a parameter: {ast.unparse(node)}")
            return
        self.generic_visit(node)


def differentiable_params(adjoint_recipe):
    """The parameters an adjoint template contributes to (`d[p] = ...`)."""
    out = []
    for stmt in adjoint_recipe.node.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            key = _adjoint_key(stmt.targets[0])
            if key is not None and key not in out:
                out.append(key)
    return out


def tangent_template_problems(recipe, adjoint=None):
    """Everything in tangent template `recipe` that breaks the tangent template rules.

    With `adjoint` (the adjoint template of the same function) the parameters must be the
    adjoint's, `d[x]` may only read inputs the adjoint contributes to, and each of those must be
    read by some `d[y]` statement.
    """
    fn = recipe.node
    args = fn.args
    problems, names = parameter_problems(args)
    if names is None:
        return problems
    readable = None
    if adjoint is not None:
        if ast.unparse(adjoint.node.args) != ast.unparse(args):
            problems.append(f"parameters ({ast.unparse(args)}) differ from the adjoint template's "
                            f"({ast.unparse(adjoint.node.args)}) at {adjoint.where}")
        readable = set(differentiable_params(adjoint))
    result = recipe.result
    known = set(names) | set(TEMPLATE_MODULES)
    local_reads = {}  # local -> the tangents its value reads
    result_statements = 0
    read_by_result = set()
    for stmt in fn.body:
        where = f"line {stmt.lineno}"
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue  # a docstring
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1:
                problems.append(f"{where}: chained assignment")
                continue
            target, accumulate = stmt.targets[0], False
        elif isinstance(stmt, ast.AugAssign):
            target, accumulate = stmt.target, True
            if not isinstance(stmt.op, ast.Add) or _adjoint_key(target) != result:
                problems.append(f"{where}: the only augmented assignment is `d[{result}] += ...`")
                continue
        else:
            problems.append(f"{where}: only assignments are allowed, found {type(stmt).__name__}")
            continue
        value_problems = []
        _TangentNameChecker(recipe, known, value_problems, readable).visit(stmt.value)
        problems.extend(f"{where}: {p}" for p in value_problems)
        reads = set(_tangent_reads(stmt.value))
        if len(reads) > 1:
            problems.append(f"{where}: reads the tangents of {sorted(reads)}; a statement may read at most one "
                            "(the engine drops a statement when the tangent it reads is zero)")
        for local in sorted(_names_used(stmt.value) & set(local_reads)):
            missing = local_reads[local] - reads
            if missing:
                problems.append(f"{where}: uses local {local!r}, which reads d[{sorted(missing)[0]}], without reading "
                                f"d[{sorted(missing)[0]}] itself (it would be undefined when that tangent is zero)")
        key = _adjoint_key(target)
        if key is not None:
            if key != result:
                problems.append(f"{where}: assigns d[{key}]; a tangent template only sets d[{result}]")
                continue
            if result_statements == 0 and accumulate:
                problems.append(f"{where}: the first statement setting d[{result}] must be `d[{result}] = ...`")
            if result_statements > 0 and not accumulate:
                problems.append(f"{where}: d[{result}] is set again; later contributions are `d[{result}] += ...`")
            if not reads:
                problems.append(f"{where}: a d[{result}] statement must read one input tangent (a tangent is linear "
                                "in the input tangents: a statement reading none could only add zero)")
            result_statements += 1
            read_by_result |= reads
        elif isinstance(target, ast.Name):
            if target.id in known:
                problems.append(f"{where}: local {target.id!r} reassigns a parameter, module or earlier local")
            known.add(target.id)
            local_reads[target.id] = reads
        else:
            problems.append(f"{where}: target must be a local name or d[{result}]")
    if not result_statements:
        problems.append(f"no d[{result}] statement")
    if readable is not None:
        unread = sorted(readable - read_by_result)
        if unread:
            problems.append(f"no d[{result}] statement reads the tangent of {unread}, which the adjoint template "
                            "differentiates")
    return problems


class _LowerTangent(ast.NodeTransformer):
    """d[x] (a read) -> __tangents__['x']."""

    def visit_Subscript(self, node):
        key = _adjoint_key(node)
        if key is not None and isinstance(node.ctx, ast.Load):
            return ast.copy_location(
                ast.Subscript(ast.Name("__tangents__", ast.Load()), ast.Constant(key), ast.Load()), node)
        return self.generic_visit(node)


def instantiate_tangent(recipe, active, runtime=None):
    """A Python function `f(tangents, result, *args, **kwargs) -> d[result]` (None when zero).

    `active` are the parameters whose tangent is nonzero; like the engine, the instance keeps
    only the statements that read no other tangent, and the first surviving `d[y] += e` becomes
    `d[y] = e` (later ones `d[y] = d[y] + (e)`). `tangents` maps each active parameter to its
    tangent. Arguments bind to the template's parameters as they bind to the primal. The function
    runs without builtins, with only numpy, math and the runtime as `tangent`.
    """
    active = set(active)
    fn = recipe.node
    lines = [f"def tangent_{recipe.function}(__tangents__, {ast.unparse(fn.args)}):",
             "    __tangent__ = None"]
    assigned = False
    for stmt in fn.body:
        if isinstance(stmt, ast.Expr):
            continue  # a docstring
        value = stmt.value
        if not set(_tangent_reads(value)) <= active:
            continue  # reads a zero tangent: dropped
        text = ast.unparse(ast.fix_missing_locations(_LowerTangent().visit(ast.parse(ast.unparse(value), mode="eval"))))
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
        if _adjoint_key(target) is not None:
            if isinstance(stmt, ast.AugAssign) and assigned and recipe.where.startswith("runtime.py"):
                # As the engine does: the runtime's tangents may be lists, added as adjoints.
                lines.append(f"    __tangent__ = tangent.add_grad(__tangent__, {text})")
            elif isinstance(stmt, ast.AugAssign) and assigned:
                lines.append(f"    __tangent__ = __tangent__ + ({text})")
            else:
                lines.append(f"    __tangent__ = {text}")
            assigned = True
        else:
            lines.append(f"    {target.id} = {text}")
    lines.append("    return __tangent__")
    module = ast.parse("\n".join(lines) + "\n")
    namespace = {"numpy": numpy, "math": math, "tangent": runtime or RUNTIME, "__builtins__": {}}
    exec(compile(module, f"<tangent template {recipe.where}>", "exec"), namespace)
    return namespace[f"tangent_{recipe.function}"]
