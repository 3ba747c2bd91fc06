"""Every recipe of the engine's registry, through the real engine: for each argument case of
``test_recipe_templates.CASES`` a module-level function calling the primal (positional and
keyword arguments as the case gives them) is differentiated with ``tangent.grad`` (reverse)
and ``tangent.jvp`` (forward) and checked against central finite differences in float64.

The template tests check each template in isolation; these check what users get: argument
binding by the engine, instantiation, constant folding and the generated module's imports.
The registry comes from the engine itself, so a recipe without cases fails here too.
"""

import importlib.util
import itertools

import numpy
import pytest

import test_recipe_templates as templates
from test_recipe_templates import CASES, RECIPES, bind, get_leaf, is_float_value, leaves, with_leaf

# Runtime helpers are called by generated code, not by users: the second-order suites cover them.
INTERNAL = ("tangent.",)


def _registry():
    from tangent import _engine

    return {name: (adjoint, tangent_) for name, adjoint, tangent_, nondiff in _engine.recipe_names() if not nondiff}


def test_every_engine_recipe_has_cases():
    missing = sorted(n for n in _registry() if not n.startswith(INTERNAL) and not CASES.get(n))
    assert not missing, f"engine recipes without cases in test_recipe_templates.CASES: {missing}"


def _needs(alias):
    root = alias.split(".")[0]
    if root == "scipy":
        pytest.importorskip("scipy.special")
        return "import scipy.special"
    return f"import {root}"


def _cases():
    for alias in sorted(CASES):
        if alias.startswith(INTERNAL) or alias not in RECIPES:
            continue
        for i, case in enumerate(CASES[alias]):
            yield pytest.param(alias, i, id=f"{alias}-{i}")


_modules = {}


def _weights(value, rng):
    """Random weights shaped like the float parts of the primal's result (None elsewhere)."""
    if isinstance(value, (tuple, list)):
        return [_weights(v, rng) for v in value]
    if not is_float_value(value) and not (isinstance(value, numpy.ndarray) and numpy.issubdtype(value.dtype, numpy.floating)):
        return None
    return rng.normal(size=numpy.shape(value)) if numpy.ndim(value) else float(rng.normal())


def _flat_weights(weights, out):
    if isinstance(weights, list):
        for w in weights:
            _flat_weights(w, out)
    elif weights is not None:
        out.append(weights)
    return out


def _objective(weights, name, counter):
    if isinstance(weights, list):
        parts = [_objective(w, f"{name}[{k}]", counter) for k, w in enumerate(weights)]
        return " + ".join(p for p in parts if p)
    if weights is None:
        return ""
    k = next(counter)
    return f"numpy.sum({name} * W[{k}])"


def _module_for(alias, i, case, tmp_path_factory):
    """A module with `f(<the case's arguments>)` returning sum(W * primal(...))."""
    key = (alias, i)
    if key in _modules:
        return _modules[key]
    primal = templates.harness.resolve(alias)
    result = primal(*case.args, **case.kwargs)
    rng = numpy.random.default_rng(11)
    weights = _weights(result, rng)
    objective = _objective(weights, "result", itertools.count())
    if not objective:
        _modules[key] = None
        return None
    params = [f"a{k}" for k in range(len(case.args))] + [f"k_{name}" for name in case.kwargs]
    call_args = [f"a{k}" for k in range(len(case.args))] + [f"{name}=k_{name}" for name in case.kwargs]
    source = "\n".join([
        "import numpy",
        _needs(alias),
        "",
        "W = None",
        "",
        "",
        f"def f({', '.join(params)}):",
        f"    result = {alias}({', '.join(call_args)})",
        f"    return {objective}",
        "",
    ])
    directory = tmp_path_factory.mktemp("recipes")
    name = f"e2e_{alias.replace('.', '_')}_{i}"
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.W = _flat_weights(weights, [])
    _modules[key] = module
    return module


def _positions_to_check(alias, case):
    recipe = RECIPES[alias]
    bound = bind(recipe, case.args, case.kwargs)
    if case.wrt is None:
        names = [n for n, (value, _) in bound.items() if is_float_value(value)]
    else:
        names = [recipe.params[w] if isinstance(w, int) else w for w in case.wrt]
    positions = []
    for n in names:
        kind, where = bound[n][1]
        positions.append(where if kind == "arg" else len(case.args) + list(case.kwargs).index(where))
    return sorted(set(positions))


def _all_args(case):
    return list(case.args) + list(case.kwargs.values())


def _numeric(f, args, position):
    value = args[position]
    out = []
    for path in leaves(value):
        h = 1e-6 * max(1.0, abs(get_leaf(value, path)))
        up, down = list(args), list(args)
        up[position] = with_leaf(value, path, h)
        down[position] = with_leaf(value, path, -h)
        out.append((f(*up) - f(*down)) / (2 * h))
    return numpy.array(out)


def _prepared(alias, i, tmp_path_factory):
    """The case's function, its arguments and the positions to differentiate (or a skip)."""
    case = CASES[alias][i]
    module = _module_for(alias, i, case, tmp_path_factory)
    if module is None:
        pytest.skip("the result has no float part")
    positions = _positions_to_check(alias, case)
    if not positions:
        pytest.skip("no float argument to differentiate")
    return module.f, _all_args(case), positions


@pytest.mark.parametrize("alias, i", list(_cases()))
def test_reverse_and_forward_through_the_engine(alias, i, tmp_path_factory):
    import tangent

    f, args, positions = _prepared(alias, i, tmp_path_factory)
    grads = tangent.grad(f, wrt=tuple(positions))(*args)
    if len(positions) == 1:
        grads = (grads,)
    rng = numpy.random.default_rng(5)
    directions = []
    expected_jvp = 0.0
    for position, g in zip(positions, grads):
        numeric = _numeric(f, args, position)
        scale = max(1.0, float(numpy.max(numpy.abs(numeric), initial=0.0)))
        analytic = numpy.array([get_leaf(g, p) for p in leaves(args[position])])
        numpy.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6 * scale, err_msg=f"reverse, argument {position}")
        direction = rng.normal(size=len(numeric))
        directions.append(direction)
        expected_jvp += float(direction @ numeric)
    tangents = [_shaped_like(args[p], d) for p, d in zip(positions, directions)]
    jvp = tangent.jvp(f, wrt=tuple(positions))(*args, *tangents)
    scale = max(1.0, abs(expected_jvp))
    numpy.testing.assert_allclose(float(jvp), expected_jvp, rtol=1e-5, atol=1e-6 * scale, err_msg="forward")


def _shaped_like(value, flat):
    """`flat` (one number per float leaf of `value`, in `leaves` order) in `value`'s structure."""
    items = iter(flat)

    def build(v):
        if isinstance(v, numpy.ndarray):
            return numpy.array([next(items) for _ in range(v.size)], dtype=float).reshape(v.shape)
        if isinstance(v, (list, tuple)):
            built = [build(u) for u in v]
            return built if isinstance(v, list) else tuple(built)
        return float(next(items))

    return build(value)


@pytest.mark.parametrize("alias, i", list(_cases()))
def test_second_order_through_the_engine(alias, i, tmp_path_factory):
    """The recipe's own derivative templates differentiate again: Hessian-vector products
    forward over reverse (`tangent.hvp`) and reverse over reverse (`vjp(grad(f))`), against
    central differences of the (first-order checked) gradient."""
    import tangent

    f, args, positions = _prepared(alias, i, tmp_path_factory)
    p = positions[0]
    df = tangent.grad(f, wrt=(p,))
    rng = numpy.random.default_rng(9)
    v = _shaped_like(args[p], rng.normal(size=len(leaves(args[p]))))
    expected = _numeric_hvp(df, args, p, v, 1e-5)
    scale = max(1.0, float(numpy.max(numpy.abs(expected), initial=0.0)))
    if not numpy.allclose(expected, _numeric_hvp(df, args, p, v, 1e-4), rtol=1e-3, atol=1e-4 * scale):
        pytest.skip("the gradient is not smooth at this point (a tie, a kink or a jump)")
    try:
        hvp = tangent.hvp(f, wrt=(p,))(*args, v)
    except tangent.NotDifferentiableError as error:
        # The gradient does not depend on the argument differentiably (floor division...).
        assert numpy.allclose(expected, 0.0, atol=1e-6 * scale), str(error)
        return
    got = numpy.array([get_leaf(hvp, q) for q in leaves(args[p])])
    numpy.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale, err_msg="forward over reverse")
    full = list(args) + [1.0]
    rr = tangent.vjp(df)(*full, v) if p == 0 else tangent.vjp(df, wrt=(p,))(*full, v)
    got = numpy.array([get_leaf(rr, q) for q in leaves(args[p])])
    numpy.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale, err_msg="reverse over reverse")


def _numeric_hvp(df, args, p, v, h):
    """Central difference (step `h`) of the gradient `df` along `v` in argument `p`."""
    flat_v = numpy.array([get_leaf(v, q) for q in leaves(args[p])])
    up, down = list(args), list(args)
    up[p] = _shaped_like(args[p], [get_leaf(args[p], q) + h * x for q, x in zip(leaves(args[p]), flat_v)])
    down[p] = _shaped_like(args[p], [get_leaf(args[p], q) - h * x for q, x in zip(leaves(args[p]), flat_v)])
    g_up, g_down = df(*up), df(*down)
    return numpy.array([(get_leaf(g_up, q) - get_leaf(g_down, q)) / (2 * h) for q in leaves(args[p])])
