"""Gradients the shape facts could get wrong: optimizing leaves out `unbroadcast`/`grad_like`
calls and reads stand-ins for values needed only for their shape, which is right only when the
shapes really agree. These functions broadcast between different shapes, change a value's
shape across loop iterations and branches, return arrays seeded with scalars, and go through
lists, tuples and ints. Each gradient, optimized and not, is checked against finite
differences, and must have its parameter's shape and be a writable float array the caller
owns."""

import numpy as np
import pytest

import tangent
from gradcheck import check_autodiff, numeric_vjp, assert_close

RNG = np.random.default_rng(7)


def broadcast_add(x, b):
    y = np.sin(x) + b
    z = y * y
    return z


def broadcast_chain(x, b):
    c = x * b
    d = np.exp(-c * c)
    e = d * 3.0 - b
    return np.sum(np.tanh(e) / (1.0 + x * x))


def growing_loop(x, a):
    for i in range(3):
        x = x + np.sin(x) * a
    return np.sum(x * x)


def growing_while(x, a):
    n = 0
    while n < 3:
        x = x * 0.5 + np.cos(x) * a
        n = n + 1
        if n > 5:
            break
    return np.sum(x)


def branch_shapes(x, w, flag):
    if flag > 0:
        y = x * w
    else:
        y = x * 2.0
    z = y + x
    return np.sum(z * z)


def tuple_output(x):
    a = np.sin(x)
    b = a * 2.0 + a
    t = (a, b)
    return t


def tuple_items_summed(x, w):
    t = (np.sin(x), x * w)
    u = t[0] + t[1]
    return np.sum(u * u)


def list_param(xs, w):
    s = np.sin(xs) * w
    return np.sum(s + xs)


def int_param(x, n):
    y = x * n
    return y * y + n * x


def appended(x, w):
    items = [x, x * w]
    items.append(np.sin(x))
    a = np.stack(items)
    return np.sum(a * a)


def keepdims_softmax(x):
    shifted = x - np.max(x, axis=1, keepdims=True)
    e = np.exp(shifted)
    p = e / np.sum(e, axis=1, keepdims=True)
    return np.mean(np.log(p) * p)


def scalar_square(x):
    y = x * x
    return y + np.sin(y)


def mean_of_outer(x, y):
    m = np.outer(x, y)
    s = np.tanh(m) + x[:, None]
    return np.mean(s * 2.0)


def reassigned_shape(x, v):
    y = np.sin(x)
    y = y * v
    y = np.sum(y, axis=0)
    return y * y


def copy_of_output(x, b):
    y = np.exp(x) + b
    z = y
    return z


CASES = [
    (broadcast_add, lambda: (RNG.standard_normal((3, 4)), RNG.standard_normal(4)), (0, 1)),
    (broadcast_add, lambda: (RNG.standard_normal((3, 4)), RNG.standard_normal((3, 1))), (0, 1)),
    (broadcast_add, lambda: (0.7, RNG.standard_normal(5)), (0, 1)),
    (broadcast_add, lambda: (RNG.standard_normal(5), 0.3), (0, 1)),
    (broadcast_chain, lambda: (RNG.standard_normal(6), RNG.standard_normal((2, 6))), (0, 1)),
    (broadcast_chain, lambda: (0.4, RNG.standard_normal(3)), (0, 1)),
    (growing_loop, lambda: (0.3, RNG.standard_normal(4)), (0, 1)),
    (growing_loop, lambda: (RNG.standard_normal(4), 0.2), (0, 1)),
    (growing_loop, lambda: (RNG.standard_normal((2, 1)), RNG.standard_normal(3)), (0, 1)),
    (growing_while, lambda: (0.3, RNG.standard_normal(4)), (0, 1)),
    (branch_shapes, lambda: (0.5, RNG.standard_normal(3), 1.0), (0, 1)),
    (branch_shapes, lambda: (0.5, RNG.standard_normal(3), -1.0), (0, 1)),
    (branch_shapes, lambda: (RNG.standard_normal(3), 0.7, 1.0), (0, 1)),
    (tuple_output, lambda: (RNG.standard_normal(4),), (0,)),
    (tuple_output, lambda: (0.3,), (0,)),
    (tuple_items_summed, lambda: (0.4, RNG.standard_normal(3)), (0, 1)),
    (list_param, lambda: ([0.1, 0.5, -0.3], RNG.standard_normal(3)), (0, 1)),
    (list_param, lambda: ([0.1, 0.5, -0.3], 0.8), (0, 1)),
    (int_param, lambda: (RNG.standard_normal(3), 3), (0,)),
    (int_param, lambda: (0.6, 2), (0,)),
    (appended, lambda: (RNG.standard_normal(3), RNG.standard_normal(3)), (0, 1)),
    (keepdims_softmax, lambda: (RNG.standard_normal((4, 5)),), (0,)),
    (scalar_square, lambda: (0.8,), (0,)),
    (scalar_square, lambda: (RNG.standard_normal(3),), (0,)),
    (mean_of_outer, lambda: (RNG.standard_normal(3), RNG.standard_normal(4)), (0, 1)),
    (reassigned_shape, lambda: (RNG.standard_normal((3, 2)), RNG.standard_normal(2)), (0, 1)),
    (reassigned_shape, lambda: (RNG.standard_normal((3, 2)), 1.5), (0, 1)),
    (copy_of_output, lambda: (RNG.standard_normal(4), 0.5), (0, 1)),
    (copy_of_output, lambda: (0.5, RNG.standard_normal(4)), (0, 1)),
]


def _seeds(value):
    """A float seed, and one of the value's own structure."""
    if isinstance(value, tuple):
        yield tuple(1.0 for _ in value)
        yield tuple(RNG.standard_normal(np.shape(v)) if np.ndim(v) else 0.7 for v in value)
        return
    yield 1.0
    if np.ndim(value):
        yield RNG.standard_normal(np.shape(value))


def _ids():
    return [f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(CASES)]


def _check_owned(grads, args, wrt):
    grads = grads if len(wrt) > 1 else (grads,)
    for g, p in zip(grads, wrt):
        arg = args[p]
        if isinstance(arg, np.ndarray):
            assert isinstance(g, np.ndarray) and g.shape == arg.shape, (np.shape(g), arg.shape)
            assert g.dtype.kind == "f" and g.flags.writeable
        elif isinstance(arg, list):
            assert len(g) == len(arg)
        else:
            assert np.ndim(g) == 0


@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "unoptimized"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=_ids())
def test_gradients_through_changing_shapes(case, optimized):
    f, make_args, wrt = CASES[case]
    args = make_args()
    value = f(*args)
    for seed in _seeds(value):
        grads = check_autodiff(f, args, seed, wrt=wrt, optimized=optimized)
        _check_owned(grads, args, wrt)


@pytest.mark.parametrize("case", range(len(CASES)), ids=_ids())
def test_optimized_matches_unoptimized(case):
    f, make_args, wrt = CASES[case]
    args = make_args()
    seed = next(_seeds(f(*args)))
    fast = tangent.autodiff(f, wrt=wrt, optimized=True)(*args, seed)
    plain = tangent.autodiff(f, wrt=wrt, optimized=False)(*args, seed)
    assert_close(fast, plain, rtol=1e-12, atol=1e-12)
    assert_close(fast, numeric_vjp(f, args, seed, wrt=wrt))


def logistic(w, X, y):
    logits = np.dot(X, w)
    signs = 1.0 - 2.0 * y
    return np.mean(np.log1p(np.exp(signs * logits)))


def test_values_needed_only_for_their_shape_are_not_computed():
    # The loss itself (log1p, mean) is needed by the backward pass only for its shape: the
    # optimized gradient reads the exp's input instead and never computes the loss.
    import inspect

    forward = inspect.getsource(tangent.grad(logistic)).split("# Backward pass")[0]
    assert "np.exp(" in forward
    assert "log1p(" not in forward and "np.mean(" not in forward
    unoptimized = inspect.getsource(tangent.grad(logistic, optimized=False)).split("# Backward pass")[0]
    assert "log1p(" in unoptimized
    w, X = RNG.standard_normal(5), RNG.standard_normal((20, 5))
    y = (RNG.random(20) > 0.5).astype(float)
    check_autodiff(logistic, (w, X, y), 1.0, wrt=(0,))
