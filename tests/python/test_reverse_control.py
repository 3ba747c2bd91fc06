"""Reverse mode through control flow: nested if/elif/else, for over ranges, arrays and lists,
while loops with data-dependent conditions, break and continue, overwrites inside loops,
nested loops and an RNN-like loop. Functions under test live at module level."""

import numpy as np
import pytest

import tangent
from gradcheck import check_autodiff, check_grad

RNG = np.random.default_rng(3)


# --- if / elif / else ------------------------------------------------------------------


def nested_if(x, y):
    if x > 0.0:
        if y > 0.0:
            z = x * y
        elif y > -1.0:
            z = x + y * y
        else:
            z = x - y
    else:
        if y > x:
            z = np.sin(x) * y
        else:
            z = x * x * y
    return z


def if_without_else(x):
    y = x
    if x > 1.0:
        y = y * x
    return y * 2.0


def if_in_loop(x):
    s = 0.0
    for i in range(5):
        if i % 2 == 0:
            s = s + x**i
        else:
            s = s * x
    return s


def return_in_branches(x):
    if x > 2.0:
        return x * 3.0
    elif x > 0.0:
        return x * x
    return np.exp(x)


# --- for over range -----------------------------------------------------------------------


def range_one_arg(x, n):
    s = x
    for i in range(n):
        s = s * x + 1.0
    return s


def range_two_args(x):
    s = 0.0
    for i in range(1, 5):
        s = s + x**i / i
    return s


def range_three_args(x):
    s = x
    for i in range(6, 0, -2):
        s = s * i * 0.1 + np.sin(s * x)
    return s


def range_step_variable(x, n):
    s = 1.0
    for i in range(0, n, 2):
        s = s * x - i
    return s


def range_len_index(v):
    s = 0.0
    for i in range(1, len(v)):
        s = s + v[i] * v[i - 1]
    return s


# --- for over arrays and lists --------------------------------------------------------------


def for_over_rows(X, w):
    s = 0.0
    for row in X:
        s = s + np.tanh(np.dot(row, w))
    return s


def for_over_elements(v):
    p = 1.0
    for e in v:
        p = p * e + 1.0
    return p


def for_over_list_literal(x):
    s = 0.0
    for t in [x, x * 2.0, np.sin(x)]:
        s = s + t * t
    return s


def for_over_list_variable(x, y):
    terms = [x, y, x * y]
    total = 1.0
    for t in terms:
        total = total * t + 1.0
    return total


# --- overwrites inside loops, nested loops --------------------------------------------------


def loop_overwrite_argument(x, w, n):
    for i in range(n):
        x = x * w
    return x


def loop_overwrite_array(v, w):
    for i in range(3):
        v = np.sin(v) * w
    return np.sum(v)


def loop_two_carried_values(x, y):
    a = x
    b = y
    for i in range(4):
        a, b = b * 0.5, a * b + 0.1
    return a + b


def nested_loops(x, W):
    s = x
    for i in range(3):
        for j in range(i + 1):
            s = s * W[i, j] + np.cos(s)
    return s


def nested_loops_inner_break(x):
    s = x
    for i in range(4):
        for j in range(4):
            if j > i:
                break
            s = s * 0.9 + x * i * j
    return s


# --- while, break, continue: trip counts that depend on data --------------------------------


def while_doubling(x):
    n = 0
    while x < 10.0:
        x = x * 2.0
        n = n + 1
    return x + n


def while_counter(x):
    i = 0
    s = x
    while i < 4:
        s = s * x - 0.5
        i += 1
    return s


def while_newton_sqrt(x):
    y = 1.0
    while np.abs(y * y - x) > 1e-4:
        y = 0.5 * (y + x / y)
    return y


def while_true_break(x):
    s = x
    while True:
        s = s * 1.5 + x
        if s > 20.0:
            break
    return s


def for_break(x):
    s = 0.0
    for i in range(10):
        if x * i > 5.0:
            break
        s = s + x * i
    return s


def for_continue(x):
    s = 1.0
    for i in range(6):
        if i % 2 == 0:
            continue
        s = s * x + i
    return s


def while_continue(x):
    s = x
    i = 0
    while i < 6:
        i += 1
        if i == 3:
            continue
        s = s * x * 0.5 + i
    return s


# --- RNN-like loops ---------------------------------------------------------------------


def rnn(W, U, h0, xs):
    h = h0
    for t in range(len(xs)):
        h = np.tanh(np.dot(W, h) + U * xs[t])
    return np.sum(h * h)


def rnn_over_rows(W, U, xs):
    h = np.zeros(3)
    for x_t in xs:
        h = np.tanh(W @ h + U @ x_t)
    return np.mean(h)


def normals(*shape, scale=1.0):
    return scale * RNG.standard_normal(shape)


CASES = [
    (
        nested_if,
        (0, 1),
        [(1.0, 2.0), (1.0, -0.5), (1.0, -2.0), (-1.0, 0.5), (-1.0, -2.0)],
    ),
    (if_without_else, (0,), [(0.5,), (1.5,), (3.0,)]),
    (if_in_loop, (0,), [(0.5,), (1.3,), (-0.8,)]),
    (return_in_branches, (0,), [(3.0,), (1.0,), (-0.5,)]),
    (range_one_arg, (0,), [(0.5, 0), (0.5, 1), (1.2, 3), (-0.7, 5)]),
    (range_two_args, (0,), [(0.5,), (1.3,), (-0.8,)]),
    (range_three_args, (0,), [(0.5,), (1.3,), (-0.8,)]),
    (range_step_variable, (0,), [(0.5, 1), (1.3, 4), (-0.8, 7)]),
    (range_len_index, (0,), [(normals(4),), (normals(2),), (normals(6),)]),
    (for_over_rows, (0, 1), [(normals(4, 3), normals(3)) for _ in range(3)]),
    (for_over_elements, (0,), [(normals(3),), (normals(5),), (normals(1),)]),
    (for_over_list_literal, (0,), [(0.5,), (1.3,), (-0.8,)]),
    (for_over_list_variable, (0, 1), [(0.5, 1.5), (1.3, -0.4), (-0.8, 2.0)]),
    (loop_overwrite_argument, (0, 1), [(1.5, 0.9, 3), (-0.5, 1.2, 1), (2.0, -0.7, 4)]),
    (loop_overwrite_array, (0, 1), [(normals(3), normals(3)) for _ in range(3)]),
    (loop_two_carried_values, (0, 1), [(0.5, 1.5), (1.3, -0.4), (-0.8, 2.0)]),
    (nested_loops, (0, 1), [(0.3, normals(3, 3, scale=0.5)) for _ in range(3)]),
    (nested_loops_inner_break, (0,), [(0.5,), (1.3,), (-0.8,)]),
    (while_doubling, (0,), [(1.3,), (3.0,), (0.7,), (12.0,)]),
    (while_counter, (0,), [(0.5,), (1.3,), (-0.8,)]),
    (while_newton_sqrt, (0,), [(2.0,), (5.0,), (0.3,)]),
    (while_true_break, (0,), [(0.5,), (2.0,), (30.0,)]),
    (for_break, (0,), [(0.7,), (1.3,), (2.2,), (0.4,)]),
    (for_continue, (0,), [(0.5,), (1.3,), (-0.8,)]),
    (while_continue, (0,), [(0.5,), (1.3,), (-0.8,)]),
    (
        rnn,
        (0, 1, 2),
        [(normals(3, 3, scale=0.5), normals(3), normals(3), normals(5)) for _ in range(3)],
    ),
    (
        rnn_over_rows,
        (0, 1, 2),
        [(normals(3, 3, scale=0.5), normals(3, 2), normals(4, 2)) for _ in range(3)],
    ),
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


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_loop_gradient_matches_closed_form(optimized):
    # x * w**n: d/dx = w**n, d/dw = n * x * w**(n - 1).
    gx, gw = tangent.grad(loop_overwrite_argument, wrt=(0, 1), optimized=optimized)(1.5, 0.9, 3)
    assert gx == pytest.approx(0.9**3)
    assert gw == pytest.approx(3 * 1.5 * 0.9**2)


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_data_dependent_trip_count_changes_between_calls(optimized):
    # The same generated function must handle 3 and 6 doublings: x * 2**k, gradient 2**k.
    dwhile = tangent.grad(while_doubling, optimized=optimized)
    assert dwhile(1.3) == pytest.approx(8.0)
    assert dwhile(0.2) == pytest.approx(64.0)
    assert dwhile(1.3) == pytest.approx(8.0)
