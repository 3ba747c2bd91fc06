"""Reverse mode through tuples, unpacking, multiple return values, subscripts (reads and
writes), lists and dicts. Functions under test live at module level."""

import numpy as np
import pytest

import tangent
from gradcheck import check_autodiff, check_grad

RNG = np.random.default_rng(2)


# --- tuples and unpacking -------------------------------------------------------------


def tuple_build_index(x, y):
    t = (x, y * 2.0, x * y)
    return t[0] * t[2] + t[1] + t[-1]


def tuple_swap(x, y):
    a, b = x, y
    a, b = b, a
    return a * 2.0 + b * b * a


def sum_and_product(x, y):
    return x + y, x * y


def tuple_unpack_call(x, y):
    s, p = sum_and_product(x, y)
    return s * p + s


def nested_unpack(x, y):
    (a, b), c = (x, y), x * y
    return a * c + b


def multi_return(x, y):
    return x * y, np.sin(x) + y, x**2


def return_tuple_variable(x):
    t = x * 2.0, x * x
    return t


def multi_return_arrays(v):
    return v * 2.0, np.sum(v**2)


# --- subscripts: reading ----------------------------------------------------------------


def index_read(x):
    return x[0] * x[1] + x[-1] ** 2


def index_variable(x, i):
    return x[i] * x[i + 1] - x[i - 1]


def slices(x):
    return np.sum(x[1:3] * x[:2]) + np.sum(x[::2]) + np.sum(x[::-1] * x) + x[-2:][0]


def slice_differences(x):
    d = x[1:] - x[:-1]
    return np.sum(d * d)


def matrix_index(X):
    a = X[1, 2] * X[0, 0] + np.sum(X[:, 1] ** 2)
    return a + np.sum(X[1] * X[0]) + np.sum(X[1:, :2] ** 3) + np.sum(X[-1, ::2])


def newaxis(x, y):
    outer = x[:, None] * y[None, :]
    return np.sum(outer**2) + np.sum(x[np.newaxis, :] * 3.0)


def fancy_gather(x, idx):
    return np.sum(x[idx] ** 2)


# --- subscripts: writing into arrays made inside the function ----------------------------


def write_scalar(x):
    y = np.zeros(3)
    y[0] = x[1] * 2.0
    y[1] = x[0] * x[2]
    y[2] = np.sin(x[0])
    return np.sum(y * y)


def write_overwrite(x):
    y = np.zeros(2)
    y[0] = x[0]
    y[0] = y[0] * y[0] + x[1]
    y[1] = y[0] * x[1]
    return np.sum(y)


def write_slice(x):
    y = np.zeros(5)
    y[1:4] = x[:3] * 2.0
    y[::4] = x[3:]
    return np.sum(y**3)


def write_into_copy(x):
    y = x * 1.0
    y[1] = x[0] ** 2
    y[0] = y[1] * x[2]
    return np.sum(y * x)


def write_matrix(x):
    Y = np.zeros((2, 3))
    Y[0] = x
    Y[:, 1] = x[:2] * 3.0
    Y[1, 2] = Y[0, 0] * x[1]
    return np.sum(Y**2)


def write_augmented(x):
    y = np.zeros(3)
    y[0] += x[1]
    y[1:] += x[:2] * x[1:]
    y[0] *= x[2]
    return np.sum(y**2)


def write_in_loop(x):
    y = np.zeros(4)
    for i in range(4):
        y[i] = x[i] * x[3 - i]
    return np.sum(y * y)


def write_index_variable(x, i):
    y = x * 2.0
    y[i] = y[i] * y[i]
    return np.sum(y * x)


# --- lists and dicts ----------------------------------------------------------------------


def list_literal(x, y):
    items = [x, y, x * y]
    return items[0] * items[2] + items[-1] ** 2 + items[1]


def list_write(x, y):
    items = [x, y]
    items[1] = items[1] * items[0]
    items[0] = 3.0 * x
    return items[0] + items[1] * y


def list_of_arrays(v):
    parts = [v * 2.0, np.sin(v)]
    return np.sum(parts[0] * parts[1])


def list_append_loop(x, y):
    xs = []
    for i in range(4):
        xs.append(x * i + y)
    return xs[0] * xs[3] + xs[1] ** 2


def list_append_running(x):
    acc = [x]
    for i in range(3):
        acc.append(np.sin(acc[-1]) * x)
    return acc[-1] + acc[1] * acc[2]


def list_append_arrays(v):
    parts = []
    for k in range(3):
        parts.append(v * (k + 1.0))
    return np.sum(parts[2] * parts[0] + np.cos(parts[1]))


def list_append_branch(x, y):
    xs = [y]
    for i in range(3):
        if i % 2 == 0:
            xs.append(xs[-1] * x)
        else:
            xs.append(xs[-1] + y * y)
    return xs[3] * xs[2]


def dict_build_read(x, y):
    d = {"a": x, "b": x * y}
    return d["a"] * d["b"] + d["b"]


def dict_write(x, y):
    d = {"w": x}
    d["v"] = d["w"] * y
    d["w"] = d["v"] + 1.0
    return d["w"] * d["v"]


def dict_of_arrays(v):
    params = {"scale": 2.0, "v": v}
    return np.sum(params["v"] ** 2 * params["scale"])


def vec(*values):
    return np.array(values, dtype=float)


def normals(*shape, count=3):
    return [(RNG.standard_normal(shape),) for _ in range(count)]


SCALAR_PAIRS = [(1.5, -0.3), (-2.0, 0.6), (0.25, 0.75)]

CASES = [
    (tuple_build_index, (0, 1), SCALAR_PAIRS),
    (tuple_swap, (0, 1), SCALAR_PAIRS),
    (tuple_unpack_call, (0, 1), SCALAR_PAIRS),
    (nested_unpack, (0, 1), SCALAR_PAIRS),
    (sum_and_product, (0, 1), SCALAR_PAIRS),
    (multi_return, (0, 1), SCALAR_PAIRS),
    (return_tuple_variable, (0,), [(1.5,), (-0.4,), (3.0,)]),
    (index_read, (0,), normals(3)),
    (index_variable, (0,), [(RNG.standard_normal(5), i) for i in (1, 2, 3)]),
    (slices, (0,), normals(5)),
    (slice_differences, (0,), normals(6)),
    (matrix_index, (0,), normals(3, 4)),
    (newaxis, (0, 1), [(RNG.standard_normal(3), RNG.standard_normal(4)) for _ in range(3)]),
    (
        fancy_gather,
        (0,),
        [
            (RNG.standard_normal(4), np.array([0, 2, 0, 3])),
            (RNG.standard_normal(4), np.array([1, 1, 1])),
            (RNG.standard_normal(4), np.array([3, 2, 1, 0])),
        ],
    ),
    (write_scalar, (0,), normals(3)),
    (write_overwrite, (0,), normals(2)),
    (write_slice, (0,), normals(5)),
    (write_into_copy, (0,), normals(3)),
    (write_matrix, (0,), normals(3)),
    (write_augmented, (0,), normals(3)),
    (write_in_loop, (0,), normals(4)),
    (write_index_variable, (0,), [(RNG.standard_normal(4), i) for i in (0, 2, -1)]),
    (list_literal, (0, 1), SCALAR_PAIRS),
    (list_write, (0, 1), SCALAR_PAIRS),
    (list_of_arrays, (0,), normals(4)),
    (list_append_loop, (0, 1), SCALAR_PAIRS),
    (list_append_running, (0,), [(0.7,), (-1.2,), (2.0,)]),
    (list_append_arrays, (0,), normals(4)),
    (list_append_branch, (0, 1), SCALAR_PAIRS),
    (dict_build_read, (0, 1), SCALAR_PAIRS),
    (dict_write, (0, 1), SCALAR_PAIRS),
    (dict_of_arrays, (0,), normals(3)),
]

# Outputs that are not scalars: only checked with an explicit seed (a vector-Jacobian product).
VJP_ONLY_CASES = [
    (multi_return_arrays, (0,), normals(3)),
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


@pytest.mark.parametrize("motion", ["joint", "split"])
@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_one_seed_per_output(optimized, motion):
    # Seeding only one output of a tuple selects that output's gradient.
    check_autodiff(multi_return, (0.8, 1.3), (1.0, 0.0, 0.0), wrt=(0, 1), motion=motion,
                   optimized=optimized)
    check_autodiff(multi_return, (0.8, 1.3), (0.0, 0.0, 1.0), wrt=(0, 1), motion=motion,
                   optimized=optimized)


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_gather_with_repeated_index_accumulates(optimized):
    # x[[0, 0, 0]] ** 2 summed: d/dx0 = 3 * 2 * x0; the other entries get nothing.
    x = vec(1.5, -2.0, 0.5)
    g = tangent.grad(fancy_gather, optimized=optimized)(x, np.array([0, 0, 0]))
    np.testing.assert_allclose(g, vec(9.0, 0.0, 0.0))


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_write_does_not_mutate_caller_arrays(optimized):
    x = vec(0.5, -1.0, 2.0)
    before = x.copy()
    tangent.grad(write_into_copy, optimized=optimized)(x)
    np.testing.assert_array_equal(x, before)
