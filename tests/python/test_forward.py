"""Forward mode on every construct of the reverse-mode suites: JVPs against central finite
differences of the function along a random direction, optimized and not.

The cases are the reverse-mode test modules' own tables (functions and inputs), so every
construct reverse mode is tested on is tested here too.
"""

import importlib

import numpy as np
import pytest

MODULES = [
    "test_reverse_arith",
    "test_reverse_control",
    "test_reverse_calls",
    "test_reverse_numpy",
    "test_reverse_structures",
    "test_reverse_exits",
]


def _specs(module):
    """(function, wrt, list of argument tuples) from a module's case tables."""
    out = []
    for name in ("SCALAR_CASES", "ARRAY_CASES", "CASES"):
        table = getattr(module, name, None)
        if not table:
            continue
        for item in table:
            values = getattr(item, "values", None)
            if values is not None:  # a pytest.param(f, args, wrt)
                f, args, wrt = values[:3]
                out.append((f, wrt, [args]))
            elif len(item) == 3 and callable(item[0]) and isinstance(item[2], list):
                f, second, third = item
                out.append((f, second, third))
            elif len(item) == 2 and callable(item[0]):
                out.append((item[0], (0,), item[1]))
    return out


def _cases():
    params = []
    seen = set()
    for name in MODULES:
        module = importlib.import_module(name)
        for f, wrt, arg_sets in _specs(module):
            wrt = (wrt,) if isinstance(wrt, int) else tuple(wrt)
            for k, args in enumerate(arg_sets):
                key = (name, f.__name__, k)
                if key in seen:
                    continue
                seen.add(key)
                params.append(pytest.param(f, tuple(args), wrt, id=f"{name[12:]}-{f.__name__}-{k}"))
    return params


def _direction_like(x, rng):
    if isinstance(x, (list, tuple)):
        items = [_direction_like(v, rng) for v in x]
        return items if isinstance(x, list) else tuple(items)
    if isinstance(x, dict):
        return {k: _direction_like(v, rng) for k, v in x.items()}
    if np.ndim(x) == 0:
        return float(rng.standard_normal())
    return rng.standard_normal(np.shape(x))


def _move(x, t, eps):
    if isinstance(x, (list, tuple)):
        items = [_move(a, b, eps) for a, b in zip(x, t)]
        return items if isinstance(x, list) else tuple(items)
    if isinstance(x, dict):
        return {k: _move(x[k], t[k], eps) for k in x}
    if np.ndim(x) == 0:
        return float(x) + eps * t
    return np.asarray(x, dtype=float) + eps * t


def _flatten(value):
    if isinstance(value, (list, tuple)):
        return np.concatenate([_flatten(v) for v in value]) if value else np.zeros(0)
    if isinstance(value, dict):
        return np.concatenate([_flatten(value[k]) for k in sorted(value)])
    return np.ravel(np.asarray(value, dtype=float))


def _is_float_input(x):
    if isinstance(x, (bool, int)) and not isinstance(x, float):
        return False
    if isinstance(x, np.ndarray):
        return np.issubdtype(x.dtype, np.floating)
    if isinstance(x, (list, tuple)):
        return all(_is_float_input(v) for v in x)
    if isinstance(x, dict):
        return all(_is_float_input(v) for v in x.values())
    return isinstance(x, float)


CASES = _cases()


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f, args, wrt", CASES)
def test_jvp_matches_finite_differences(f, args, wrt, optimized):
    import tangent

    if not all(_is_float_input(args[i]) for i in wrt):
        pytest.skip("integer inputs have no tangent")
    rng = np.random.default_rng(7)
    tangents = [_direction_like(args[i], rng) for i in wrt]
    jvp = tangent.autodiff(f, mode="forward", wrt=wrt, optimized=optimized)(*args, *tangents)
    eps = 1e-6
    plus = list(args)
    minus = list(args)
    for i, t in zip(wrt, tangents):
        plus[i] = _move(args[i], t, eps)
        minus[i] = _move(args[i], t, -eps)
    expected = (_flatten(f(*plus)) - _flatten(f(*minus))) / (2 * eps)
    np.testing.assert_allclose(_flatten(jvp), expected, rtol=1e-5, atol=1e-6)


def test_preserve_result_returns_the_value_after_the_jvp():
    import tangent

    module = importlib.import_module("test_reverse_exits")
    jvp, value = tangent.autodiff(module.newton_sqrt, mode="forward", preserve_result=True)(4.0, 1.0)
    assert value == pytest.approx(2.0)
    assert jvp == pytest.approx(0.25)


@pytest.mark.parametrize("f, args, wrt", [c for c in CASES if len(c.values[2]) > 1])
def test_jvp_along_one_parameter_of_several(f, args, wrt):
    """The other parameters get no tangent (and a zero one when they become active)."""
    test_jvp_matches_finite_differences(f, args, wrt[-1:], True)
