"""Reverse mode on scalar and array arithmetic, comparisons, reassignment, augmented assignment
and the math module. Every function under test lives at module level: the engine reads this
file's source."""

import math
from math import exp, log1p

import numpy as np
import pytest

from gradcheck import check_autodiff, check_grad

RNG = np.random.default_rng(1)


# --- operators ---------------------------------------------------------------------------


def add_sub(x, y):
    return x + y - 2.0 * x + 3.0 - y * 0.5


def mul_div(x, y):
    return x * y / (y + 2.5) - 1.5 / x


def power(x, y):
    return x**3 + x**y + 2.0**y + y**0.5


def floordiv_mod(x, y):
    return (x // y) * x + x % y + x / y


def unary(x):
    return -x * x - (-(x + 1.0)) + (+x)


def constants_left(x):
    return 2.0 - x + 3.0 * x**2 - 1.0 / x + 2.0**x


def constants_right(x):
    return (x - 2.0) * 3.0 / 4.0 + x**2.0 - x / 5.0


def int_constants(x, n):
    return x * n + n**2 * x**2 - x // 1 + 2 * x


def matmul(A, B):
    return np.sum((A @ B) ** 2)


def matvec(A, v):
    return v @ (A @ v) + np.sum(np.tanh(A @ v))


def array_arith(v, w):
    return np.sum(v * w - v / (w * w + 1.0) + 2.0 * v**2 - 1.0 / (1.0 + v * v))


# --- comparisons in conditions ------------------------------------------------------------


def if_gt(x):
    if x > 0.0:
        y = x * x
    else:
        y = -3.0 * x
    return y


def if_compare_args(x, y):
    if x < y:
        return x * y
    return x + y * y


def if_mixed_comparisons(x, n):
    if n == 2:
        y = x * 2.0
    elif n != 3 and x >= 0.5:
        y = x * x
    elif x <= -1.0 or n > 4:
        y = np.sin(x)
    else:
        y = x**3
    return y


def if_chained(x):
    if 0.0 < x < 2.0:
        return np.sin(x) * x
    return np.cos(x) * x


def if_not(x, flag):
    if not flag:
        x = x * 3.0
    return x * x


def if_array_condition(v):
    if np.sum(v) > 0.0:
        return np.sum(v**2)
    return np.sum(np.exp(v))


# --- reassignment ------------------------------------------------------------------------


def reassign(x, y):
    z = x * y
    z = z + x
    z = np.sin(z) * z
    x = z * y
    return x + z


def reassign_arg(x):
    x = x * x
    x = x * x
    return x


def reassign_alias(x):
    a = x
    b = a * 2.0
    a = b * a
    return a + b + x


def reassign_array(v, w):
    v = v * w
    v = np.sin(v)
    w = v + w
    return np.sum(v * w)


# --- augmented assignment -----------------------------------------------------------------


def aug_scalar(x, y):
    s = x
    s += y
    s *= x
    s -= 2.0
    s /= y
    s **= 2
    return s


def aug_array(v, w):
    s = v * 1.0
    s += w
    s *= v
    s -= 0.5
    s /= w * w + 1.0
    return np.sum(s)


def aug_in_loop(x):
    s = 0.0
    for i in range(4):
        s += x**i
        s *= 0.9
    return s


# --- math module -------------------------------------------------------------------------


def math_funcs(x):
    return math.sin(x) * math.cos(x) + math.exp(x / 3.0) + math.log(x) + math.sqrt(x)


def math_more(x):
    return math.tanh(x) + math.tan(x / 4.0) + math.pow(x, 2.5) + x * math.pi


def math_from_import(x):
    return exp(x) * log1p(x)


def vec(*values):
    return np.array(values, dtype=float)


SCALAR_CASES = [
    (add_sub, (0, 1), [(1.5, -0.3), (-2.0, 4.0), (0.25, 0.75)]),
    (mul_div, (0, 1), [(1.5, -0.3), (-2.0, 4.0), (0.25, 0.75)]),
    (power, (0, 1), [(1.5, 0.3), (0.8, 2.2), (2.0, 1.0)]),
    (floordiv_mod, (0, 1), [(3.7, 1.3), (-2.3, 0.9), (5.1, 2.2)]),
    (unary, (0,), [(1.5,), (-0.7,), (3.0,)]),
    (constants_left, (0,), [(1.5,), (-0.7,), (3.0,)]),
    (constants_right, (0,), [(1.5,), (-0.7,), (3.0,)]),
    (int_constants, (0,), [(1.5, 2), (-0.7, 3), (3.2, 0)]),
    (if_gt, (0,), [(1.2,), (-0.8,), (2.5,)]),
    (if_compare_args, (0, 1), [(1.0, 2.0), (3.0, 0.5), (-1.0, -0.2)]),
    (if_mixed_comparisons, (0,), [(0.3, 2), (0.9, 1), (-1.5, 1), (0.2, 5), (0.2, 3)]),
    (if_chained, (0,), [(0.5,), (2.5,), (-1.0,)]),
    (if_not, (0,), [(1.5, True), (1.5, False), (-0.4, False)]),
    (reassign, (0, 1), [(0.5, 1.2), (-1.1, 0.3), (2.0, -0.7)]),
    (reassign_arg, (0,), [(1.1,), (-0.6,), (2.0,)]),
    (reassign_alias, (0,), [(1.1,), (-0.6,), (2.0,)]),
    (aug_scalar, (0, 1), [(1.5, 0.7), (-2.0, 3.0), (0.4, -1.2)]),
    (aug_in_loop, (0,), [(0.5,), (1.3,), (-0.8,)]),
    (math_funcs, (0,), [(0.5,), (1.3,), (2.7,)]),
    (math_more, (0,), [(0.5,), (1.3,), (2.7,)]),
    (math_from_import, (0,), [(0.5,), (1.3,), (2.7,)]),
]

ARRAY_CASES = [
    (
        matmul,
        (0, 1),
        [(RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4))) for _ in range(3)],
    ),
    (matvec, (0, 1), [(RNG.standard_normal((3, 3)), RNG.standard_normal(3)) for _ in range(3)]),
    (array_arith, (0, 1), [(RNG.standard_normal(4), RNG.standard_normal(4)) for _ in range(3)]),
    (if_array_condition, (0,), [(vec(1.0, 0.5, -0.2),), (vec(-1.0, 0.5, -0.2),), (vec(0.3),)]),
    (reassign_array, (0, 1), [(RNG.standard_normal(3), RNG.standard_normal(3)) for _ in range(3)]),
    (aug_array, (0, 1), [(RNG.standard_normal(5), RNG.standard_normal(5)) for _ in range(3)]),
]


def params(specs):
    return [
        pytest.param(f, args, wrt, id=f"{f.__name__}-{k}")
        for f, wrt, arg_sets in specs
        for k, args in enumerate(arg_sets)
    ]


def seed_like(value, salt=0):
    """A deterministic, non-trivial seed shaped like the function's output."""
    if isinstance(value, tuple):
        return tuple(seed_like(v, salt + i + 1) for i, v in enumerate(value))
    if np.ndim(value) == 0:
        return 0.7 + 0.1 * salt
    return np.random.default_rng(100 + salt).standard_normal(np.shape(value))


CASES = params(SCALAR_CASES + ARRAY_CASES)


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f, args, wrt", CASES)
def test_grad(f, args, wrt, optimized):
    check_grad(f, args, wrt=wrt, optimized=optimized)


@pytest.mark.parametrize("motion", ["joint", "split"])
@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f, args, wrt", CASES)
def test_autodiff(f, args, wrt, optimized, motion):
    seed = seed_like(f(*args))
    check_autodiff(f, args, seed, wrt=wrt, motion=motion, optimized=optimized)


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("wrt", [(0,), (1,)], ids=["wrt0", "wrt1"])
def test_single_wrt_of_two_argument_function(wrt, optimized):
    check_grad(mul_div, (1.5, -0.3), wrt=wrt, optimized=optimized)
    check_grad(reassign, (0.5, 1.2), wrt=wrt, optimized=optimized)
