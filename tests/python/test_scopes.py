"""Comprehensions, generator expressions, nested functions, closures and lambdas inside a
differentiated function: reverse mode against finite differences, forward mode against
reverse mode, optimized and not."""

import math

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, check_grad, numeric_grad

RNG = np.random.default_rng(11)


# --- comprehensions ----------------------------------------------------------------------


def weighted_sum(ws, xs):
    return sum(w * x for w, x in zip(ws, xs))


def list_comp_with_condition(x):
    ys = [np.sin(x) * i for i in range(4) if i != 1]
    return np.sum(ys[0] + ys[1] * ys[2])


def nested_generators(x, y):
    return sum(a * b for a in x for b in y)


def comp_over_array_rows(m, v):
    rows = [np.dot(r, v) for r in m]
    return np.sum(np.tanh(np.stack(rows)))


def comp_shadows_outer_name(x):
    i = 2.0
    parts = [x * i for i in range(3)]
    return np.sum(parts[2]) * i


def comp_with_enumerate(xs):
    return sum(x * k for k, x in enumerate(xs))


def comp_with_enumerate_zip(xs, ws):
    return sum(x * w * (i + 1) for i, (x, w) in enumerate(zip(xs, ws)))


def loop_with_enumerate_zip(xs, ws):
    h = 0.0
    for i, (x, w) in enumerate(zip(xs, ws)):
        h = np.sin(h) + x * w * (i + 1)
    return h


def comp_of_comp(x):
    grid = [[x * i + j for j in range(2)] for i in range(3)]
    return sum(np.sum(row[0] * row[1]) for row in grid)


def genexp_max(x):
    return max(np.sum(x * k) for k in [1.0, -2.0, 0.5])


def comp_filter_on_value(x):
    big = [v * v for v in x if v > 0.0]
    return sum(big)


# --- nested functions, closures, lambdas -------------------------------------------------


def nested_square(x):
    def sq(v):
        return v * v

    return np.sum(sq(x) + x)


def closure_reads_enclosing(x, w):
    scale = 2.0 * w

    def inner(v):
        return np.tanh(v * scale)

    return np.sum(inner(x) + inner(x * 0.5))


def closure_sees_current_value(x):
    k = 1.0

    def times_k(v):
        return v * k

    a = times_k(x)
    k = 3.0
    b = times_k(x)
    return np.sum(a + b)


def nested_with_defaults_and_keywords(x):
    def affine(v, a=2.0, b=0.5):
        t = v * a
        return t + b

    return np.sum(affine(x) * affine(x, b=1.0) + affine(x, a=-1.0))


def nested_calls_nested(x):
    def f(v):
        return np.exp(v * 0.3)

    def g(v):
        u = f(v)
        return u * f(u)

    return np.sum(g(x))


def lambda_assigned(x, y):
    f = lambda v, c=1.5: v * c + y
    return np.sum(f(x) * f(x, 0.5))


def lambda_in_loop(x):
    total = 0.0
    for i in range(3):
        g = lambda v: np.sin(v * (i + 1))
        total = total + np.sum(g(x))
    return total


def nested_in_loop(x):
    acc = x
    for i in range(3):
        def step(v):
            return v * 0.5 + np.cos(v)

        acc = step(acc)
    return np.sum(acc)


# --- closures made by a factory, calling one another ----------------------------------------


def make_mlp(W1, b1, w2):
    scale = 0.5

    def hidden(v):
        return np.tanh(W1 @ v + b1)

    def readout(v):
        return w2 @ hidden(v) * scale

    def objective(v, target):
        r = readout(v) - target
        return r * r + 0.01 * np.sum(v * v)

    return objective


def make_recurrence(a):
    def step(h, x):
        return np.sin(h * a + x)

    def unrolled(xs):
        h = 0.0
        for x in xs:
            h = step(h, x)
        return h

    return unrolled


FACTORY_MLP = make_mlp(RNG.standard_normal((3, 2)) * 0.7, RNG.standard_normal(3) * 0.3, RNG.standard_normal(3))
FACTORY_RECURRENCE = make_recurrence(0.8)


CASES = [
    (weighted_sum, lambda: ([0.5, -1.0, 2.0], [1.5, 0.3, -0.7]), (0, 1)),
    (weighted_sum, lambda: (RNG.standard_normal(4), RNG.standard_normal(4)), (0, 1)),
    (list_comp_with_condition, lambda: (RNG.standard_normal(3),), (0,)),
    (nested_generators, lambda: (RNG.standard_normal(3), RNG.standard_normal(2)), (0, 1)),
    (comp_over_array_rows, lambda: (RNG.standard_normal((3, 4)), RNG.standard_normal(4)), (0, 1)),
    (comp_shadows_outer_name, lambda: (RNG.standard_normal(3),), (0,)),
    (comp_with_enumerate, lambda: (RNG.standard_normal(4),), (0,)),
    (comp_of_comp, lambda: (RNG.standard_normal(2),), (0,)),
    (comp_with_enumerate_zip, lambda: (RNG.standard_normal(4), RNG.standard_normal(4)), (0, 1)),
    (loop_with_enumerate_zip, lambda: ([0.3, -0.5, 0.8], [1.2, 0.4, -0.7]), (0, 1)),
    (genexp_max, lambda: (RNG.standard_normal(3),), (0,)),
    (comp_filter_on_value, lambda: (np.array([0.5, -0.3, 1.2, -2.0]),), (0,)),
    (nested_square, lambda: (RNG.standard_normal(3),), (0,)),
    (closure_reads_enclosing, lambda: (RNG.standard_normal(3), 0.7), (0, 1)),
    (closure_sees_current_value, lambda: (RNG.standard_normal(3),), (0,)),
    (nested_with_defaults_and_keywords, lambda: (RNG.standard_normal(3),), (0,)),
    (nested_calls_nested, lambda: (RNG.standard_normal(3),), (0,)),
    (lambda_assigned, lambda: (RNG.standard_normal(3), 0.4), (0, 1)),
    (lambda_in_loop, lambda: (RNG.standard_normal(3),), (0,)),
    (nested_in_loop, lambda: (RNG.standard_normal(3),), (0,)),
    (FACTORY_MLP, lambda: (RNG.standard_normal(2), 0.4), (0, 1)),
    (FACTORY_RECURRENCE, lambda: (RNG.standard_normal(5),), (0,)),
]


def _ids():
    return [f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(CASES)]


@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "unoptimized"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=_ids())
def test_reverse_mode(case, optimized):
    f, make_args, wrt = CASES[case]
    check_grad(f, make_args(), wrt=wrt, optimized=optimized)


def _flat(x):
    return np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in (x if isinstance(x, (list, tuple)) else [x])])


@pytest.mark.parametrize("case", range(len(CASES)), ids=_ids())
def test_forward_mode_matches_reverse(case):
    f, make_args, wrt = CASES[case]
    args = make_args()
    grads = tangent.grad(f, wrt=wrt)(*args)
    grads = grads if len(wrt) > 1 else (grads,)
    for p, g in zip(wrt, grads):
        direction = RNG.standard_normal(np.shape(args[p]))
        if isinstance(args[p], list):
            direction = list(direction)
        elif np.ndim(args[p]) == 0:
            direction = float(direction)
        jvp = tangent.jvp(f, wrt=(p,))(*args, direction)
        expected = float(np.dot(_flat(g), _flat(direction)))
        assert_close(np.asarray(jvp, dtype=float), expected, rtol=1e-6, atol=1e-8, what=f"jvp along parameter {p}")


# --- what stays unsupported, with its reason ---------------------------------------------


def recursive_nested(x):
    def fact(v, n):
        return v if n == 0 else v * fact(v, n - 1)

    return fact(x, 3)


def nested_assigns_enclosing(x):
    total = x

    def bump(v):
        nonlocal total
        total = total + v
        return total

    return bump(x)


def nested_returns_in_loop(x):
    def first_big(v):
        for item in v:
            if item > 1.0:
                return item
        return v[0]

    return first_big(x) * 2.0


@pytest.mark.parametrize(
    "f, message",
    [
        (recursive_nested, "recursive nested functions"),
        (nested_assigns_enclosing, "may read enclosing variables, not assign them"),
        (nested_returns_in_loop, "not in a loop, `try` or `with`"),
    ],
)
def test_unsupported_nested_functions_are_reported(f, message):
    with pytest.raises(tangent.TangentError) as e:
        tangent.grad(f)
    assert message in str(e.value)
    assert e.value.line > 0


def test_factory_closure_hessian_vector_product():
    f = FACTORY_MLP
    v, target = RNG.standard_normal(2), 0.4
    u = RNG.standard_normal(2)
    grad = tangent.grad(f)
    expected = (grad(v + 1e-5 * u, target) - grad(v - 1e-5 * u, target)) / 2e-5
    assert_close(tangent.hvp(f)(v, target, u), expected, rtol=1e-5, atol=1e-7, what="H u")


def test_factory_closure_error_points_at_the_file(tmp_path, monkeypatch):
    """A construct Tangent cannot differentiate inside a sibling closure is reported at its own
    line of the file."""
    path = tmp_path / "factory_errors.py"
    path.write_text(
        "import numpy as np\n\n\ndef make(W):\n    def helper(x):\n        try:\n            return W @ x\n"
        "        except ValueError:\n            return x\n\n    def loss(x):\n        return np.sum(helper(x) ** 2)\n\n    return loss\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("factory_errors")
    with pytest.raises(tangent.UnsupportedError) as info:
        tangent.grad(module.make(np.eye(2)))
    assert f"{path}:6:" in str(info.value), str(info.value)
