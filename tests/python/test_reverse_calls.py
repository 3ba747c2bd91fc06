"""Reverse mode through calls to other functions of the same module (helpers used several times,
helpers calling helpers, keyword arguments and defaults), and gradient surgery with
`tangent.insert_grad_of`. Functions under test live at module level."""

import numpy as np
import pytest

import tangent
from gradcheck import check_autodiff, check_grad

RNG = np.random.default_rng(4)


# --- helpers -----------------------------------------------------------------------------


def square(v):
    return v * v


def softplus(v):
    return np.log1p(np.exp(v))


def affine(v, w, b):
    return w * v + b


def layer(v, w, b):
    return softplus(affine(v, w, b))


def scale(v, factor=3.0):
    return v * factor


def sum_and_product(x, y):
    return x + y, x * y


def decay(v):
    v = v * 0.5
    v = v + square(v)
    return v


def poly(x, n):
    s = 0.0
    for i in range(n):
        s = s * x + 1.0
    return s


def dense(W, v, b):
    return np.tanh(W @ v + b)


# --- callers -----------------------------------------------------------------------------


def helper_twice(x, y):
    return square(x) + square(y * x) + square(2.0)


def helper_chain(x, w):
    h = layer(x, w, 0.5)
    return layer(h, w, -0.2)


def helper_keywords(x):
    return scale(x) + scale(x, factor=x) + scale(v=x, factor=0.5)


def helper_tuple(x, y):
    s, p = sum_and_product(x, y)
    return s * p


def helper_arrays(v, w):
    return np.sum(layer(v, w, 0.1) ** 2)


def helper_in_loop(x):
    for i in range(3):
        x = softplus(x) * 0.5 + square(x) * 0.1
    return x


def helper_in_branch(x):
    if x > 0.0:
        return square(x) * x
    return softplus(x)


def helper_inactive_argument(x, c):
    return affine(x, c, c) * affine(c, x, 1.0)


def helper_reassigns_parameter(x):
    return decay(decay(x) * x)


def helper_with_loop(x):
    return poly(x, 3) * poly(x * 2.0, 2)


def mlp(W1, W2, v):
    h = dense(W1, v, 0.1)
    return np.sum(dense(W2, h, -0.1) ** 2)


# --- gradient surgery --------------------------------------------------------------------


def surgery_zero(x):
    y = x * x
    with tangent.insert_grad_of(y) as dy:
        dy = dy * 0.0
    return y + 3.0 * x


def surgery_scale(x):
    y = np.sin(x)
    with tangent.insert_grad_of(y) as dy:
        dy = dy * 0.5
    return y * y


def surgery_clip(v):
    h = v * 3.0
    with tangent.insert_grad_of(h) as dh:
        dh = np.clip(dh, -1.0, 1.0)
    return np.sum(h * h)


def surgery_input(x, y):
    with tangent.insert_grad_of(x) as dx:
        dx = dx * 2.0
    return x * y + x * x


def surgery_in_loop(x):
    for i in range(3):
        x = x * 2.0
        with tangent.insert_grad_of(x) as dx:
            dx = dx * 0.5
    return x


def normals(*shape, scale=1.0):
    return scale * RNG.standard_normal(shape)


PAIRS = [(0.5, 1.5), (1.3, -0.4), (-0.8, 2.0)]
SINGLES = [(0.5,), (1.3,), (-0.8,)]

CASES = [
    (square, (0,), SINGLES),
    (helper_twice, (0, 1), PAIRS),
    (helper_chain, (0, 1), PAIRS),
    (helper_keywords, (0,), SINGLES),
    (helper_tuple, (0, 1), PAIRS),
    (helper_arrays, (0, 1), [(normals(4), normals(4)) for _ in range(3)]),
    (helper_in_loop, (0,), SINGLES),
    (helper_in_branch, (0,), SINGLES),
    (helper_inactive_argument, (0,), PAIRS),
    (helper_reassigns_parameter, (0,), SINGLES),
    (helper_with_loop, (0,), SINGLES),
    (mlp, (0, 1, 2), [(normals(4, 3), normals(2, 4), normals(3)) for _ in range(3)]),
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


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f, args, wrt", params(CASES))
def test_grad(f, args, wrt, optimized):
    check_grad(f, args, wrt=wrt, optimized=optimized)


@pytest.mark.parametrize("motion", ["joint", "split"])
@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f, args, wrt", params(CASES))
def test_autodiff(f, args, wrt, optimized, motion):
    seed = seed_like(f(*args))
    check_autodiff(f, args, seed, wrt=wrt, motion=motion, optimized=optimized)


# The expected gradients below are worked out by hand: the block of `insert_grad_of(v)` runs in
# the backward pass where `v`'s adjoint is complete, i.e. after every later use was differentiated.

OPTIMIZED = pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])


@OPTIMIZED
@pytest.mark.parametrize("x", [0.5, 1.3, -0.8])
def test_surgery_zero_cuts_the_path(x, optimized):
    # Only the direct 3 * x term is left.
    assert tangent.grad(surgery_zero, optimized=optimized)(x) == pytest.approx(3.0)


@OPTIMIZED
@pytest.mark.parametrize("x", [0.5, 1.3, -0.8])
def test_surgery_scales_the_adjoint(x, optimized):
    # d(y*y)/dy = 2 sin x, halved, times cos x.
    g = tangent.grad(surgery_scale, optimized=optimized)(x)
    assert g == pytest.approx(np.sin(x) * np.cos(x))


@OPTIMIZED
def test_surgery_clips_array_adjoint(optimized):
    v = np.array([-1.0, 0.1, 0.05, 2.0])
    # adjoint of h is 2 h = 6 v = [-6, 0.6, 0.3, 12], clipped to [-1, 1], times 3.
    g = tangent.grad(surgery_clip, optimized=optimized)(v)
    np.testing.assert_allclose(g, [-3.0, 1.8, 0.9, 3.0])


@OPTIMIZED
@pytest.mark.parametrize("x, y", PAIRS)
def test_surgery_on_input_scales_its_whole_gradient(x, y, optimized):
    gx, gy = tangent.grad(surgery_input, wrt=(0, 1), optimized=optimized)(x, y)
    assert gx == pytest.approx(2.0 * (y + 2.0 * x))
    assert gy == pytest.approx(x)


@OPTIMIZED
@pytest.mark.parametrize("x", [0.5, 1.3, -0.8])
def test_surgery_inside_loop_runs_every_iteration(x, optimized):
    # Each iteration doubles x and halves the adjoint again: 2**3 * 0.5**3.
    assert tangent.grad(surgery_in_loop, optimized=optimized)(x) == pytest.approx(1.0)


def test_surgery_leaves_primal_value_alone():
    g, value = tangent.grad(surgery_zero, preserve_result=True)(1.5)
    assert value == pytest.approx(surgery_zero(1.5))
    assert g == pytest.approx(3.0)
