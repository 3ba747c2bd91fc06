"""Dictionaries of differentiated values (issue 14, item 3): parameter dicts read through
`.items()`, `.values()`, `.keys()`, and dict comprehensions over them."""

from __future__ import annotations

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad


def l2_by_items(params, lam):
    total = 0.0
    for name, value in params.items():
        total = total + lam * np.sum(value**2)
    return total


def l2_by_values(params):
    return sum(np.sum(v**2) for v in params.values())


def weighted_by_keys(params, weights):
    total = 0.0
    for key in params.keys():
        total = total + weights[key] * np.sum(np.tanh(params[key]))
    return total


def penalties_comprehension(params, lam):
    penalties = {name: 0.5 * lam * np.sum(value**2) for name, value in params.items() if name != "b"}
    return sum(penalties.values())


def scaled_then_used(params, x):
    scaled = {k: 2.0 * v for k, v in params.items()}
    return np.sum(np.tanh(x @ scaled["W"] + scaled["b"]))


RNG = np.random.default_rng(2024)
PARAMS = {"W": RNG.normal(size=(3, 2)), "b": RNG.normal(size=2)}
X = RNG.normal(size=(4, 3))


def _fd(f, args):
    """Finite differences w.r.t. the dict (first argument), entry by entry."""
    params, rest = args[0], args[1:]
    out = {}
    for key, value in params.items():
        def g(v, key=key):
            return f({**params, key: v}, *rest)

        out[key] = numeric_grad(g, (value,))
    return out


CASES = [
    (l2_by_items, (PARAMS, 0.1)),
    (l2_by_values, (PARAMS,)),
    (weighted_by_keys, (PARAMS, {"W": 0.5, "b": 2.0})),
    (penalties_comprehension, (PARAMS, 0.3)),
    (scaled_then_used, (PARAMS, X)),
]


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f, args", CASES, ids=[f.__name__ for f, _ in CASES])
def test_gradient_of_a_dict(f, args, optimized):
    got = tangent.grad(f, optimized=optimized)(*args)
    want = _fd(f, args)
    for key in want:
        assert_close(got[key], want[key], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("f, args", CASES, ids=[f.__name__ for f, _ in CASES])
def test_jvp_and_hvp_of_a_dict(f, args):
    direction = {k: RNG.normal(size=np.shape(v)) for k, v in args[0].items()}
    eps = 1e-6
    up = f({k: v + eps * direction[k] for k, v in args[0].items()}, *args[1:])
    down = f({k: v - eps * direction[k] for k, v in args[0].items()}, *args[1:])
    assert np.isclose(tangent.jvp(f)(*args, direction), (up - down) / (2 * eps), rtol=1e-6, atol=1e-8)
    g = tangent.grad(f)
    hv = tangent.hvp(f)(*args, direction)
    g_up = g({k: v + eps * direction[k] for k, v in args[0].items()}, *args[1:])
    g_down = g({k: v - eps * direction[k] for k, v in args[0].items()}, *args[1:])
    for key in args[0]:
        assert_close(hv[key], (g_up[key] - g_down[key]) / (2 * eps), rtol=1e-5, atol=1e-6)
