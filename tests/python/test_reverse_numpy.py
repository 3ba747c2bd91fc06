"""Reverse mode through NumPy functions and broadcasting. Functions under test live at module
level."""

import numpy as np
import pytest

import tangent
from gradcheck import check_autodiff, check_grad

RNG = np.random.default_rng(5)


# --- elementwise ---------------------------------------------------------------------------


def np_exp_log(v):
    return np.sum(np.exp(v) * np.log(v))


def np_sqrt_square(v):
    return np.sum(np.sqrt(v) + np.square(v))


def np_trig(v):
    return np.sum(np.sin(v) * np.cos(v) + np.tanh(v))


def np_log1p_exp(v):
    return np.sum(np.log1p(np.exp(-v)))


def np_abs_power(v):
    return np.sum(np.abs(v) ** 1.5 + np.power(v, 3))


def np_ufunc_arith(v, w):
    a = np.add(v, w)
    b = np.subtract(v, np.multiply(w, 2.0))
    return np.sum(np.multiply(a, b) + np.divide(v, w) + np.negative(v))


def np_maximum_minimum(v):
    return np.sum(np.maximum(v, 0.0) * v) + np.sum(np.minimum(v, 0.5))


def np_maximum_two_arrays(v, w):
    return np.sum(np.maximum(v, w) ** 2)


def np_where(v):
    return np.sum(np.where(v > 0.0, v, 0.1 * v) ** 2)


def np_clip(v):
    return np.sum(np.clip(v, -0.5, 0.5) * v)


def np_elementwise_out(v):
    return np.tanh(v) * v


# --- reductions ------------------------------------------------------------------------------


def np_sum_axis(X):
    return np.sum(np.sum(X, axis=0) ** 2) + np.sum(np.sum(X, axis=1, keepdims=True) * X)


def np_mean_axis(X):
    return np.mean(np.mean(X, axis=1) ** 2) + np.sum(np.mean(X, axis=0, keepdims=True) * X)


def np_reductions_combined(v):
    return np.sum(v) * np.mean(v) + np.sum(v * v) / np.sum(np.exp(v))


def np_log_sum_exp(z, onehot):
    return np.log(np.sum(np.exp(z))) - np.sum(z * onehot)


# --- linear algebra and shapes ----------------------------------------------------------------


def np_dot_vectors(v, w):
    return np.dot(v, w) * np.sum(v)


def np_dot_matrix_vector(A, v):
    return np.sum(np.dot(A, v) ** 2)


def np_dot_matrices(A, B):
    return np.sum(np.tanh(np.dot(A, B)))


def np_matmul(A, B):
    return np.sum(np.matmul(A, B) * A[:, :1])


def np_reshape(v):
    M = np.reshape(v, (2, 3))
    return np.sum(M[0] * M[1]) + np.sum(np.reshape(M, (3, 2))[:, 0] ** 2)


def np_transpose(A):
    return np.sum(np.transpose(A) @ A * 0.5)


def np_matrix_out(A, B):
    return np.tanh(A @ B)


# --- einsum, factorizations, cumulative products, splitting and padding -----------------------


def np_einsum_matmul(A, B):
    return np.sum(np.tanh(np.einsum("ij,jk->ik", A, B)))


def np_einsum_forms(A, v):
    # matrix-vector, trace, diagonal, transpose, inner product and the implicit form
    w = np.einsum("ij,j->i", A, v)
    return np.einsum("i,i->", w, v) * np.einsum("ii", A) + np.sum(np.einsum("ii->i", A) * np.einsum("ij->ji", A)[0])


def np_einsum_batch(X, Y):
    return np.sum(np.einsum("bij,bjk->bik", X, Y) ** 2) + np.einsum("bij,bij->", X, X)


def np_slogdet(A):
    sign, logdet = np.linalg.slogdet(A)
    return sign * logdet + np.linalg.slogdet(A @ A.T)[1]


def np_cholesky(A):
    L = np.linalg.cholesky(A @ A.T + 3.0 * np.eye(3))
    U = np.linalg.cholesky(A.T @ A + np.eye(3), upper=True)
    return np.sum(np.tanh(L)) + np.sum(U * U * U)


def np_cumprod(X):
    return np.sum(np.cumprod(X, axis=1) * X) + np.sum(np.cumprod(X))


def np_fmax_fmin(x, y):
    return np.sum(np.fmax(x, y) ** 2 + np.fmin(x, 0.5) * y)


def np_split_pad(v):
    first, middle, last = np.split(v, [2, 4])
    padded = np.pad(middle, (1, 2), constant_values=0.5)
    return np.sum(first * last[:2]) + np.sum(padded**2 * np.arange(5.0))


def np_triangles(A):
    # a 1-D argument stands for the rows of a square matrix
    return np.sum(np.triu(A, 1) * np.tril(A)[:, ::-1] + np.tril(A, -1) ** 2) + np.sum(np.triu(A[0], -1) ** 2)


# --- broadcasting ------------------------------------------------------------------------------


def bcast_column_row(x, y):
    return np.sum((x + y) ** 2 * np.sin(x * y))


def bcast_scalar_array(a, v):
    return np.sum(np.exp(a * v) - a / (v * v + 1.0))


def bcast_matrix_vector(X, b):
    return np.sum(np.tanh(X - b) * (X / (b + 2.0)))


def bcast_maximum(x, y):
    return np.sum(np.maximum(x, y) ** 2)


def bcast_where(x, y):
    return np.sum(np.where(x > y, x * y, y - x))


def bcast_keepdims_normalize(X):
    centered = X - np.mean(X, axis=1, keepdims=True)
    return np.sum(centered**2 * X)


def bcast_out(x, y):
    return x * y + x


def pos(*shape):
    return RNG.uniform(0.5, 2.0, shape)


def normals(*shape):
    return RNG.standard_normal(shape)


def away_from(*values):
    """Values of a fixed pattern kept away from the kinks at 0 and +-0.5 of the tests."""
    return np.array(values, dtype=float)


KINKED = [
    (away_from(-1.3, -0.2, 0.7, 1.9),),
    (away_from(0.3, -0.7, 2.2),),
    (away_from(-2.1, 0.1, 0.6, -0.9, 1.1),),
]

CASES = [
    (np_exp_log, (0,), [(pos(3),), (pos(5),), (pos(2, 2),)]),
    (np_sqrt_square, (0,), [(pos(3),), (pos(5),), (pos(2, 2),)]),
    (np_trig, (0,), [(normals(3),), (normals(5),), (normals(2, 2),)]),
    (np_log1p_exp, (0,), [(normals(3),), (normals(5),), (normals(2, 2),)]),
    (np_abs_power, (0,), KINKED),
    (np_ufunc_arith, (0, 1), [(normals(3), pos(3)) for _ in range(3)]),
    (np_maximum_minimum, (0,), KINKED),
    (
        np_maximum_two_arrays,
        (0, 1),
        [(away_from(1.0, -1.0, 0.3), away_from(0.5, -0.2, 0.9)), (normals(4), normals(4))],
    ),
    (np_where, (0,), KINKED),
    (np_clip, (0,), KINKED),
    (np_sum_axis, (0,), [(normals(2, 3),), (normals(3, 3),), (normals(1, 4),)]),
    (np_mean_axis, (0,), [(normals(2, 3),), (normals(3, 3),), (normals(1, 4),)]),
    (np_reductions_combined, (0,), [(normals(3),), (normals(5),), (normals(2, 2),)]),
    (
        np_log_sum_exp,
        (0,),
        [(normals(4), np.eye(4)[k]) for k in (0, 2, 3)],
    ),
    (np_dot_vectors, (0, 1), [(normals(3), normals(3)) for _ in range(3)]),
    (np_dot_matrix_vector, (0, 1), [(normals(2, 3), normals(3)) for _ in range(3)]),
    (np_dot_matrices, (0, 1), [(normals(2, 3), normals(3, 4)) for _ in range(3)]),
    (np_matmul, (0, 1), [(normals(2, 3), normals(3, 4)) for _ in range(3)]),
    (np_reshape, (0,), [(normals(6),) for _ in range(3)]),
    (np_transpose, (0,), [(normals(2, 3),), (normals(3, 3),), (normals(4, 1),)]),
    (bcast_column_row, (0, 1), [(normals(3, 1), normals(4)) for _ in range(3)]),
    (bcast_scalar_array, (0, 1), [(0.5, normals(4)), (-1.2, normals(3)), (2.0, normals(2, 2))]),
    (bcast_matrix_vector, (0, 1), [(normals(3, 4), pos(4)) for _ in range(3)]),
    (
        bcast_maximum,
        (0, 1),
        [
            (away_from(-1.0, 0.35, 2.0).reshape(3, 1), away_from(0.0, 0.5, 1.0, -0.5)),
            (away_from(0.15, -0.65).reshape(2, 1), away_from(0.3, -0.3, 0.9)),
        ],
    ),
    (
        bcast_where,
        (0, 1),
        [
            (away_from(-1.0, 0.35, 2.0).reshape(3, 1), away_from(0.0, 0.5, 1.0, -0.5)),
            (away_from(0.15, -0.65).reshape(2, 1), away_from(0.3, -0.3, 0.9)),
        ],
    ),
    (bcast_keepdims_normalize, (0,), [(normals(2, 3),), (normals(3, 3),), (normals(1, 4),)]),
    (np_einsum_matmul, (0, 1), [(normals(2, 3), normals(3, 4)), (normals(1, 2), normals(2, 2))]),
    (np_einsum_forms, (0, 1), [(normals(3, 3), normals(3)), (normals(2, 2), normals(2))]),
    (np_einsum_batch, (0, 1), [(normals(2, 2, 3), normals(2, 3, 2))]),
    (np_slogdet, (0,), [(normals(3, 3) + 3.0 * np.eye(3),), (normals(3, 3) - 3.0 * np.eye(3),)]),
    (np_cholesky, (0,), [(normals(3, 3),), (normals(3, 3),)]),
    (np_cumprod, (0,), [(normals(2, 3),), (away_from(1.5, 0.0, -0.5, 2.0).reshape(2, 2),)]),
    (np_fmax_fmin, (0, 1), [(away_from(1.0, -1.0, 0.3), away_from(0.5, -0.2, 0.9)), (normals(4), normals(4))]),
    (np_split_pad, (0,), [(normals(6),), (normals(7),)]),
    (np_triangles, (0,), [(normals(3, 3),), (normals(3, 4),)]),
]

# Outputs that are arrays: only checked with an explicit seed (a vector-Jacobian product).
VJP_ONLY_CASES = [
    (np_elementwise_out, (0,), [(normals(3),), (normals(2, 2),)]),
    (np_matrix_out, (0, 1), [(normals(2, 3), normals(3, 4))]),
    (bcast_out, (0, 1), [(normals(3, 1), normals(4)), (1.5, normals(3)), (normals(2, 3), 0.5)]),
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
@pytest.mark.parametrize("f, args, wrt", params(CASES + VJP_ONLY_CASES))
def test_autodiff(f, args, wrt, optimized, motion):
    seed = seed_like(f(*args))
    check_autodiff(f, args, seed, wrt=wrt, motion=motion, optimized=optimized)


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_broadcast_gradients_have_input_shapes(optimized):
    x, y = normals(3, 1), normals(4)
    gx, gy = tangent.grad(bcast_column_row, wrt=(0, 1), optimized=optimized)(x, y)
    assert np.shape(gx) == (3, 1)
    assert np.shape(gy) == (4,)
    ga, gv = tangent.grad(bcast_scalar_array, wrt=(0, 1), optimized=optimized)(0.5, normals(4))
    assert np.ndim(ga) == 0
    assert np.shape(gv) == (4,)
