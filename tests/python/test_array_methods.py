"""Array methods (`x.sum(axis=0)`, `x.reshape(2, 3)`, `x.T`, ...) through the public API.

The engine maps a method call `x.m(...)` to the recipe of `numpy.m(x, ...)` (`x.flatten()` to
`numpy.ravel`, `x.reshape(2, 3)` and `x.transpose(1, 0)` to one shape tuple, `x.T` to
`numpy.transpose`). Each function below uses one or more methods; `tangent.grad`,
`tangent.jvp` and `tangent.hvp` of it are compared with central finite differences in float64.
Functions under test live at module level.
"""

import numpy as np
import pytest

import tangent
from gradcheck import check_grad

RNG = np.random.default_rng(17)


# --- reductions ----------------------------------------------------------------------------------


def m_sum_axis(x):
    return np.sum(x.sum(axis=0) ** 2) + x.sum()


def m_sum_keepdims(x):
    return np.sum(x.sum(axis=-1, keepdims=True) * x) + np.sum(x.sum(0) ** 2)


def m_mean(x):
    return x.mean() * np.sum(x) + np.sum(x.mean(axis=1) ** 2)


def m_max_min(x):
    return x.max() + 2.0 * x.min() + np.sum(x.max(axis=0) * x.min(axis=0, keepdims=True))


def m_prod(x):
    return x.prod() + np.sum(x.prod(axis=1))


def m_std_var(x):
    return x.std() * x.var() + np.sum(x.var(axis=0, ddof=1)) + np.sum(x.std(axis=-1, keepdims=True) * x)


def m_cumsum(x):
    return np.sum(x.cumsum() ** 2) + np.sum(x.cumsum(axis=1) * x)


def m_cumprod(x):
    return np.sum(x.cumprod() * np.arange(x.size)) + np.sum(x.cumprod(axis=0) ** 2)


def m_trace(x):
    return x.trace() * np.sum(x) + x.trace(offset=1)


# --- elementwise and products ------------------------------------------------------------------


def m_clip(x):
    return np.sum(x.clip(-0.5, 0.5) * x) + np.sum(x.clip(min=-0.2) ** 2) + np.sum(x.clip(max=0.3))


def m_dot(x, y):
    return np.sum(np.tanh(x.dot(y)))


def m_dot_vector(x, v):
    return np.sum(x.dot(v) ** 2) + v.dot(v)


# --- shapes ----------------------------------------------------------------------------------------


def m_reshape_args(x):
    m = x.reshape(2, 3)
    return np.sum(m[0] * m[1]) + np.sum(x.reshape(3, -1)[:, 0] ** 2)


def m_reshape_tuple(x):
    m = x.reshape((2, 3))
    return np.sum(m[:, 1] ** 3) + np.sum(m.reshape((3, 2), order="F")[0])


def m_transpose(x):
    return np.sum(x.transpose() @ x * 0.5) + np.sum(x.transpose(1, 0)[0] ** 2)


def m_transpose_axes(x):
    return np.sum(x.transpose((2, 0, 1))[0] ** 2) + np.sum(x.transpose(1, 2, 0)[:, :, 0])


def m_T(x):
    return np.sum(np.tanh(x.T @ x)) + np.sum(x.T[0] ** 2)


def m_ravel_flatten(x):
    return np.sum(x.ravel() * np.arange(x.size)) + np.sum(x.flatten() ** 2) + np.sum(x.flatten("F")[:2])


def m_squeeze(x):
    return np.sum(x.squeeze() ** 2) + np.sum(x.squeeze(axis=0)[0])


def m_swapaxes(x):
    return np.sum(x.swapaxes(0, 1)[0] ** 2) + np.sum(x.swapaxes(-1, 0) * x.T)


# --- chained -----------------------------------------------------------------------------------------


def m_chain(x, y):
    z = x.T.dot(y).reshape(-1)
    return (z.clip(-1.0, 1.0) ** 2).sum() + x.mean(axis=1).dot(y.max(axis=1))


def m_normalize(x):
    centered = x - x.mean(axis=0, keepdims=True)
    return (centered**2).sum() / x.std()


def normals(*shape):
    return RNG.standard_normal(shape)


def pos(*shape):
    return RNG.uniform(0.5, 1.5, shape)


def away_from_ties(*shape):
    """Values with distinct magnitudes, so max/min and clip are differentiable at them."""
    values = RNG.permutation(np.arange(1, int(np.prod(shape)) + 1)) * 0.173 - 0.9
    return values.reshape(shape)


CASES = [
    (m_sum_axis, (0,), [(normals(2, 3),), (normals(4, 1),)]),
    (m_sum_keepdims, (0,), [(normals(2, 3),), (normals(3, 3),)]),
    (m_mean, (0,), [(normals(2, 3),), (normals(3, 4),)]),
    (m_max_min, (0,), [(away_from_ties(2, 3),), (away_from_ties(3, 3),)]),
    (m_prod, (0,), [(pos(2, 3),), (normals(3, 2),)]),
    (m_std_var, (0,), [(normals(3, 4),), (normals(2, 3),)]),
    (m_cumsum, (0,), [(normals(2, 3),), (normals(3, 3),)]),
    (m_cumprod, (0,), [(normals(2, 3),), (np.array([[1.5, 0.0], [-0.5, 2.0]]),)]),
    (m_trace, (0,), [(normals(3, 3),), (normals(2, 4),)]),
    (m_clip, (0,), [(away_from_ties(2, 4),), (away_from_ties(7),)]),
    (m_dot, (0, 1), [(normals(2, 3), normals(3, 4)), (normals(3), normals(3, 2))]),
    (m_dot_vector, (0, 1), [(normals(2, 3), normals(3))]),
    (m_reshape_args, (0,), [(normals(6),), (normals(2, 3),)]),
    (m_reshape_tuple, (0,), [(normals(6),), (normals(3, 2),)]),
    (m_transpose, (0,), [(normals(2, 3),), (normals(3, 3),)]),
    (m_transpose_axes, (0,), [(normals(2, 3, 4),)]),
    (m_T, (0,), [(normals(2, 3),), (normals(3, 3),)]),
    (m_ravel_flatten, (0,), [(normals(2, 3),), (normals(4),)]),
    (m_squeeze, (0,), [(normals(1, 3),), (normals(1, 2, 1),)]),
    (m_swapaxes, (0,), [(normals(3, 3),), (normals(2, 2),)]),
    (m_chain, (0, 1), [(normals(3, 2), normals(3, 4))]),
    (m_normalize, (0,), [(normals(3, 2),), (normals(4, 3),)]),
]


def params(specs):
    return [
        pytest.param(f, args, wrt, id=f"{f.__name__}-{k}")
        for f, wrt, arg_sets in specs
        for k, args in enumerate(arg_sets)
    ]


def _move(args, wrt, tangents, eps):
    moved = list(args)
    for i, t in zip(wrt, tangents):
        moved[i] = args[i] + eps * t
    return moved


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f, args, wrt", params(CASES))
def test_grad(f, args, wrt, optimized):
    check_grad(f, args, wrt=wrt, optimized=optimized)


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f, args, wrt", params(CASES))
def test_jvp(f, args, wrt, optimized):
    rng = np.random.default_rng(23)
    tangents = [rng.standard_normal(np.shape(args[i])) for i in wrt]
    got = tangent.jvp(f, wrt=wrt, optimized=optimized)(*args, *tangents)
    eps = 1e-6
    expected = (f(*_move(args, wrt, tangents, eps)) - f(*_move(args, wrt, tangents, -eps))) / (2 * eps)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f, args, wrt", params(CASES))
def test_hvp(f, args, wrt):
    """Forward over reverse: the generated gradient (with the methods' recipes) differentiates
    again; compared with central differences of the gradient along v."""
    i = wrt[0]
    v = np.random.default_rng(29).standard_normal(np.shape(args[i]))
    got = tangent.hvp(f, wrt=(i,))(*args, v)
    df = tangent.grad(f, wrt=(i,))
    eps = 1e-5
    expected = (df(*_move(args, (i,), (v,), eps)) - df(*_move(args, (i,), (v,), -eps))) / (2 * eps)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
