"""Checks every forward-mode (`@tangent_`) template in `recipes/` without the engine.

Each `@tangent_(name)` alias found by parsing the recipe files is instantiated in Python (see
`recipe_harness.instantiate_tangent`) for every argument case the adjoint tests list for that
name (`test_recipe_templates.CASES`), with random tangents for the active inputs, and its
`d[y]` is compared with central finite differences of the primal along that direction.

Every non-empty subset of the differentiable arguments is made active in turn. An inactive
input is treated exactly as the engine treats it: the statements reading its tangent are
dropped and the first surviving `d[y] += e` becomes `d[y] = e`. The tangent must have the
primal result's structure: an array of the same shape and dtype for an array result (writable
when the result is), a float for a scalar result.

Every function with an adjoint recipe needs a tangent recipe (`test_every_adjoint_has_a_tangent`),
unless listed in NO_TANGENT with the reason.
"""
import ast
import copy
import inspect
import itertools
import warnings

import numpy
import pytest

import recipe_harness as harness
import test_recipe_templates as adjoint_tests

# Valid inputs must not make a template emit NumPy warnings (divide by zero, invalid value).
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

FILES = harness.load_recipes()
ADJOINTS = {alias: recipe for f in FILES for recipe in f.recipes for alias in recipe.aliases}
TANGENTS = {alias: recipe for f in FILES for recipe in f.tangents for alias in recipe.aliases}
NONDIFFERENTIABLE = [name for f in FILES for name in f.nondifferentiable]
CASES = adjoint_tests.CASES

# Functions with an adjoint recipe but no tangent recipe: dotted name -> why it cannot have one.
NO_TANGENT = {}


# --------------------------------------------------------------------------- helpers


def random_tangent(value, rng):
    """A random tangent with the structure of `value` (0-d arrays stay 0-d arrays)."""
    if isinstance(value, dict):
        return {k: random_tangent(v, rng) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(random_tangent(v, rng) for v in value)
    if isinstance(value, numpy.ndarray):
        return numpy.array(rng.normal(size=value.shape), dtype=value.dtype)
    if isinstance(value, numpy.floating):
        return type(value)(rng.normal())
    return float(rng.normal())


def moved(value, tangent, h):
    """`value + h * tangent`, keeping the type of `value`."""
    if isinstance(value, dict):
        return {k: moved(v, tangent[k], h) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(moved(v, t, h) for v, t in zip(value, tangent))
    if isinstance(value, numpy.ndarray):
        return numpy.array(value + h * tangent, dtype=value.dtype)
    if isinstance(value, numpy.floating):
        return type(value)(value + h * tangent)
    return float(value + h * tangent)


def as_floats(value):
    """`value` as a float64 array; a mapping (a parameter container's gradient) as its
    entries in a row, by key."""
    if isinstance(value, dict):
        return numpy.concatenate([numpy.ravel(as_floats(value[k])) for k in sorted(value)])
    return numpy.asarray(value, dtype=numpy.float64)


def largest(value):
    if isinstance(value, dict):
        return max((largest(v) for v in value.values()), default=0.0)
    if isinstance(value, (list, tuple)):
        return max((largest(v) for v in value), default=0.0)
    return float(numpy.max(numpy.abs(value), initial=0.0))


def same_values(a, b):
    """Equal values (dicts by key, arrays elementwise), for detecting in-place modification."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_values(u, v) for u, v in zip(a, b))
    return adjoint_tests.same_values(a, b)


def bind(recipe, args, kwargs):
    """Template parameter name -> (value, slot of the call that holds it)."""
    signature = inspect.signature(harness.instantiate_tangent(recipe, ()))
    bound = signature.bind(None, None, *args, **kwargs)
    where = {}
    for i in range(len(args)):
        where[recipe.params[i]] = ("arg", i)
    for k in kwargs:
        where[k] = ("kw", k)
    return {name: (bound.arguments[name], where[name]) for name in recipe.params if name in where}


def directional_difference(primal, args, kwargs, moves):
    """Central difference of the primal along `moves` ({slot: (value, tangent)}), in float64."""
    h = 1e-6 * max([1.0] + [largest(value) for value, _ in moves.values()])

    def at(step):
        a, k = list(args), dict(kwargs)
        for (kind, key), (value, tangent) in moves.items():
            (a if kind == "arg" else k)[key] = moved(value, tangent, step)
        return as_floats(primal(*a, **k))

    return (at(h) - at(-h)) / (2.0 * h)


def wrt_of(recipe, case, bound):
    if case.wrt is None:
        return [name for name, (value, _) in bound.items() if adjoint_tests.is_float_value(value)]
    return [recipe.params[w] if isinstance(w, int) else w for w in case.wrt]


def check_tangent_structure(tangent, result, label):
    """d[y] has y's structure: same shape and float dtype; writable if y is a writable array."""
    adjoint_tests.check_structure(tangent, result, label)
    if isinstance(result, numpy.ndarray):
        assert isinstance(tangent, numpy.ndarray) or result.ndim == 0, f"{label}: tangent of an array must be an array"
        if numpy.issubdtype(result.dtype, numpy.inexact):
            assert numpy.asarray(tangent).dtype == result.dtype, f"{label}: dtype {numpy.asarray(tangent).dtype} != {result.dtype}"
        if result.ndim > 0 and result.flags.writeable:
            assert tangent.flags.writeable, f"{label}: the result is writable, its tangent is a read-only view"
    elif isinstance(result, (float, numpy.floating)):
        assert isinstance(tangent, (float, numpy.floating)), f"{label}: tangent of a float is a {type(tangent).__name__}"


# --------------------------------------------------------------------------- structure tests


def test_recipe_files_parse_cleanly():
    assert FILES, "no recipe files found"
    problems = [p for f in FILES for p in f.problems]
    assert not problems, "\n".join(problems)
    assert TANGENTS, "no @tangent_ templates found"


def test_every_adjoint_has_a_tangent():
    missing = sorted(set(ADJOINTS) - set(TANGENTS) - set(NO_TANGENT))
    orphans = sorted(set(TANGENTS) - set(ADJOINTS))
    stale = sorted(name for name in NO_TANGENT if name in TANGENTS or name not in ADJOINTS)
    assert not missing, f"functions with an adjoint recipe but no @tangent_ recipe: {missing}"
    assert not orphans, f"@tangent_ recipes without an adjoint recipe (no cases, no differentiable parameters): {orphans}"
    assert not stale, f"NO_TANGENT entries that have a tangent or no adjoint: {stale}"


def test_tangent_aliases_are_unique():
    seen, duplicates = {}, []
    for f in FILES:
        for recipe in f.tangents:
            for alias in recipe.aliases:
                if alias in seen:
                    duplicates.append(f"{alias}: {seen[alias]} and {recipe.where}")
                seen[alias] = recipe.where
    both = sorted(set(seen) & set(NONDIFFERENTIABLE))
    assert not duplicates, duplicates
    assert not both, f"both a tangent recipe and nondifferentiable: {both}"


def test_every_tangent_has_cases():
    missing = sorted(alias for alias in TANGENTS if not CASES.get(alias))
    assert not missing, f"tangent recipes without argument cases in test_recipe_templates.CASES: {missing}"


@pytest.mark.parametrize("alias", sorted(TANGENTS))
def test_tangent_follows_the_rules(alias):
    problems = harness.tangent_template_problems(TANGENTS[alias], ADJOINTS.get(alias))
    assert not problems, f"{TANGENTS[alias].where}:\n" + "\n".join(problems)


def test_rule_checker_rejects_bad_templates():
    """The rule checker itself: each template below breaks one rule."""
    adjoint = ADJOINTS["operator.mul"]
    bad = {
        "two tangents": "d[z] = d[x1] * x2 + x1 * d[x2]",
        "first is +=": "d[z] += d[x1] * x2\n    d[z] += x1 * d[x2]",
        "second is =": "d[z] = d[x1] * x2\n    d[z] = x1 * d[x2]",
        "reads no tangent": "d[z] = d[x1] * x2\n    d[z] += x1 * d[x2]\n    d[z] += 0.0 * z",
        "reads the result": "d[z] = d[x1] * x2\n    d[z] += x1 * d[x2] + 0.0 * d[z]",
        "misses an input": "d[z] = d[x1] * x2",
        "sets an input": "d[z] = d[x1] * x2\n    d[x2] = x1",
        "local used alone": "t = d[x2] * x1\n    d[z] = d[x1] * x2\n    d[z] += t * d[x1]",
        "unknown name": "d[z] = d[x1] * x2\n    d[z] += x1 * d[x2] * q",
        "unknown helper": "d[z] = tangent.jvp(d[x1], x2)\n    d[z] += x1 * d[x2]",
    }
    for what, body in bad.items():
        source = f"@tangent_(operator.mul)\ndef multiply(z, x1, x2):\n    {body}\n"
        node = ast.parse(source).body[0]
        recipe = harness.Recipe("multiply", adjoint.path, ["operator.mul"], node, kind="tangent")
        assert harness.tangent_template_problems(recipe, adjoint), f"not rejected: {what}"
    good = "t = d[x2] * x1\n    d[z] = d[x1] * x2\n    d[z] += t * 1.0 + 0.0 * d[x2]"
    node = ast.parse(f"@tangent_(operator.mul)\ndef multiply(z, x1, x2):\n    {good}\n").body[0]
    recipe = harness.Recipe("multiply", adjoint.path, ["operator.mul"], node, kind="tangent")
    assert not harness.tangent_template_problems(recipe, adjoint)


def test_instantiation_drops_statements_like_the_engine():
    node = ast.parse(
        "@tangent_(operator.mul)\ndef multiply(z, x1, x2):\n"
        "    d[z] = d[x1] * x2\n    t = d[x2] * x1\n    d[z] += t * d[x2]\n    d[z] += d[x2] * 0.5\n").body[0]
    recipe = harness.Recipe("multiply", ADJOINTS["operator.mul"].path, ["operator.mul"], node, kind="tangent")
    assert harness.instantiate_tangent(recipe, {"x1", "x2"})({"x1": 1.0, "x2": 10.0}, 6.0, 2.0, 3.0) == 208.0
    assert harness.instantiate_tangent(recipe, {"x1"})({"x1": 1.0}, 6.0, 2.0, 3.0) == 3.0
    # x1 inactive: `d[z] += t * d[x2]` becomes the assignment, the next one accumulates.
    assert harness.instantiate_tangent(recipe, {"x2"})({"x2": 10.0}, 6.0, 2.0, 3.0) == 205.0
    assert harness.instantiate_tangent(recipe, set())({}, 6.0, 2.0, 3.0) is None


# --------------------------------------------------------------------------- numeric tests


def _tangent_cases():
    for alias in sorted(TANGENTS):
        recipe = TANGENTS[alias]
        for i, case in enumerate(CASES.get(alias, [])):
            bound = bind(recipe, case.args, case.kwargs)
            wrt = wrt_of(recipe, case, bound)
            for n in range(len(wrt), 0, -1):
                for active in itertools.combinations(wrt, n):
                    yield pytest.param(alias, case, active, id=f"{alias}-{i}-{'+'.join(active)}")


@pytest.mark.parametrize("alias, case, active", list(_tangent_cases()))
def test_tangent_matches_finite_differences(alias, case, active):
    recipe = TANGENTS[alias]
    primal = harness.resolve(alias)
    args, kwargs = case.args, case.kwargs
    result = primal(*args, **kwargs)
    bound = bind(recipe, args, kwargs)

    rng = numpy.random.default_rng(11)
    tangents = {name: random_tangent(bound[name][0], rng) for name in active}
    snapshot = copy.deepcopy((args, kwargs, result, tangents))

    template = harness.instantiate_tangent(recipe, active)
    out = template(tangents, result, *args, **kwargs)
    assert same_values(snapshot, (args, kwargs, result, tangents)), \
        "the template modified the primal's arguments, its result or an input tangent"

    label = f"d[{recipe.result}] of {alias}({case!r}) with {'+'.join(active)} active"
    # The derivative along all active inputs at once; where a joint step leaves the primal's
    # domain (x ** y at x == 0, ...) the sum of the one-input derivatives.
    singles = [directional_difference(primal, args, kwargs, {bound[name][1]: (bound[name][0], tangents[name])})
               for name in active]
    numeric = sum(singles[1:], singles[0])
    if len(active) > 1:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                joint = directional_difference(
                    primal, args, kwargs, {bound[name][1]: (bound[name][0], tangents[name]) for name in active})
            if numpy.all(numpy.isfinite(joint)):
                numeric = joint
        except (ArithmeticError, ValueError, RuntimeWarning):
            pass
    scale = max(1.0, float(numpy.max(numpy.abs(numeric), initial=0.0)))

    if out is None:  # every statement dropped: the tangent is zero
        assert numpy.allclose(numeric, 0.0, atol=1e-6 * scale), f"{label}: zero tangent, but the numeric one is {numeric}"
        return
    check_tangent_structure(out, result, label)
    numpy.testing.assert_allclose(as_floats(out), numeric, rtol=1e-5, atol=1e-6 * scale,
                                  err_msg=label)


def test_norm_marks_unhandled_matrix_norms():
    """Matrix norms other than Frobenius are not handled; their tangent must be NaN, not wrong."""
    recipe = TANGENTS["numpy.linalg.norm"]
    x = adjoint_tests.arr(3, 3)
    for ord in (1, 2, numpy.inf, 'nuc'):
        y = numpy.linalg.norm(x, ord)
        out = harness.instantiate_tangent(recipe, {"x"})({"x": numpy.ones((3, 3))}, y, x, ord)
        assert numpy.isnan(out), ord
