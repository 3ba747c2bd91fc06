"""Early exits: `return` inside loops and nested branches, checked against finite differences."""

import math

import numpy as np
import pytest

from gradcheck import check_autodiff, check_grad


def newton_sqrt(a):
    x = a
    for i in range(50):
        x_new = 0.5 * (x + a / x)
        if abs(x_new - x) < 1e-12:
            return x_new
        x = x_new
    return x


def first_large(v, w):
    for i in range(v.shape[0]):
        if v[i] * w > 1.0:
            return v[i] * w * 2.0
    return np.sum(v) * w


def nested_return(x):
    s = x
    for i in range(4):
        for j in range(3):
            s = s * 1.1 + math.sin(s)
            if s > 5.0:
                return s * x
    return s


def while_return(x):
    y = x
    while True:
        y = y * 1.5
        if y > 10.0:
            return y - x


def return_in_else(x, k):
    if k > 0:
        y = x * x
    else:
        return x * 3.0
    return y * k


def tuple_return_in_loop(x):
    a = x
    b = x * 2.0
    for i in range(5):
        a = a * 1.2
        b = b + a
        if b > 6.0:
            return a, b
    return b, a


CASES = [
    (newton_sqrt, [(2.0,), (9.0,), (0.5,)]),
    (first_large, [(np.array([0.1, 0.5, 2.0, 3.0]), 0.9), (np.array([0.1, 0.2]), 1.3)]),
    (nested_return, [(0.3,), (0.05,), (1.7,)]),
    (while_return, [(0.7,), (3.0,)]),
    (return_in_else, [(1.3, 2.0), (1.3, -1.0)]),
    (tuple_return_in_loop, [(0.4,), (1.5,)]),
]
IDS = [f.__name__ for f, _ in CASES]


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f,inputs", CASES, ids=IDS)
def test_grad(f, inputs, optimized):
    for args in inputs:
        check_grad(f, args, optimized=optimized)


@pytest.mark.parametrize("motion", ["joint", "split"])
@pytest.mark.parametrize("f,inputs", CASES, ids=IDS)
def test_autodiff(f, inputs, motion):
    for args in inputs:
        out = f(*args)
        seed = tuple(0.7 + i for i in range(len(out))) if isinstance(out, tuple) else 0.8
        for optimized in (True, False):
            check_autodiff(f, args, seed, motion=motion, optimized=optimized)


def scaled_product(x, y):
    return x * y * 3.0


@pytest.mark.parametrize("motion", ["joint", "split"])
def test_input_derivative_default_one_makes_the_seed_optional(motion):
    import tangent
    from tangent.grad_util import INPUT_DERIVATIVE

    df = tangent.autodiff(scaled_product, wrt=(0, 1), motion=motion, input_derivative=INPUT_DERIVATIVE.DefaultOne)
    assert df(2.0, 5.0) == pytest.approx((15.0, 6.0))
    assert df(2.0, 5.0, 2.0) == pytest.approx((30.0, 12.0))
    required = tangent.autodiff(scaled_product, motion=motion, input_derivative=tangent.INPUT_DERIVATIVE.Required)
    with pytest.raises(TypeError):
        required(2.0, 5.0)
    assert required(2.0, 5.0, 1.0) == pytest.approx(15.0)


def test_preserve_result_is_flat_like_the_original():
    import tangent

    dx, dy, value = tangent.grad(scaled_product, wrt=(0, 1), preserve_result=True)(2.0, 5.0)
    assert (dx, dy, value) == pytest.approx((15.0, 6.0, 30.0))
