"""Compatibility regression suite: the kinds of programs the first Tangent's reverse-mode
tests exercised, written afresh for this project.

Each group below stands for one category of construct (scalar operators, overwrites, branches,
counted and conditional loops, calls of module functions, NumPy calls, containers and
subscripts, gradient surgery, small models). Every function is checked with ``tangent.grad``
and with ``tangent.autodiff`` in joint and split motion, optimized or not, against central
differences, over a grid of inputs that includes negative values (so both sides of every
branch are taken). Functions under test live at module level.
"""

import itertools

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, check_autodiff, check_grad, numeric_grad
from tangent import insert_grad_of

MOTIONS = ["joint", "split"]
OPTS = pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
SCALARS = [-1.75, -0.6, -0.2, 0.3, 0.8, 1.25, 1.9]
COUNTS = [1, 2, 3]
RNG = np.random.default_rng(20240611)
VECTORS = [RNG.standard_normal(n) for n in (3, 4, 7)]


# --- scalar operators with constants and with themselves ---------------------------------


def scale_right(v):
    return v * 2.5


def scale_left(v):
    return 2.5 * v


def square_by_product(v):
    return v * v


def divide_by_constant(v):
    return v / 4.0


def constant_over(v):
    return 4.0 / v


def ratio_with_itself(v):
    return v / v


def shift_down(v):
    return v - 1.5


def constant_minus(v):
    return 1.5 - v


def difference_with_itself(v):
    return v - v


def sum_with_itself(v):
    return v + v


def add_int_constant(v):
    return v + 2


def negated(v):
    return -v


def identity_value(v):
    return v


def cube_by_products(v):
    return v * v * v


def cube_by_power(v):
    return v**3


def multiply_add(p, q, r):
    return p * q + r


def multiply_add_named_steps(p, q, r):
    prod = p * q
    total = prod + r
    return total


# --- overwriting names, adjoint-like local names -----------------------------------------


def reassign_parameter(v):
    v = v * 1.5
    return v


def reassign_copy(v):
    w = v
    w = w * 1.5
    return w


def copy_then_return(v):
    w = v
    return w


def reassign_temporary(p, q, r):
    acc = p * q
    acc = acc + r
    return acc


def local_shadowing_adjoint_names(v):
    dv = v * v
    bv = dv * v
    return bv + dv


def overwrite_with_reduction(vec):
    vec = np.sum(vec)
    vec = vec * vec
    return vec


def augmented_self_product(v):
    w = v * v
    w *= w
    return w


def augmented_mixed(v):
    w = v
    w += 2.0 * v
    w -= v * v
    w /= 3.0
    return w


# --- branches -------------------------------------------------------------------------


def branch_overwrite(v):
    if v > 0:
        v = v * 2.0
    else:
        v = v * 5.0
    return v


def branch_nested(v):
    if v > 0:
        if v < 1.0:
            v = v * v
    else:
        v = 4.0 * v
    return v


def branch_nested_inside_overwrite(v):
    if v > 0:
        v = v * 2.0
        if v < 2.0:
            v = v * v
        else:
            v = v * 0.5
    return v


def branch_chain_with_elif(v):
    if v > 0.5:
        v = v * 2.0
    elif -0.5 > v:
        v = v * v
    else:
        v = 3.0 * v
    return v


def branch_tests_on_expressions(v):
    if v * v / 2.0 > 0:
        k = 2.0
    else:
        k = 5.0
    v = v * k
    if v < k - v * k:
        v = v * v
    elif v > k + 2.0 * v:
        if v / 3.0 < 0:
            v = v / k
        else:
            v = v * k
    else:
        v = -v
    return v


def branches_in_sequence(v):
    if v > 0:
        v = v * v
    v = v + v
    if v < 0:
        v = 2.0 * v
    return v


def branch_on_two_inputs(p, q):
    if p > q:
        p = p * p
    else:
        p = p * q
    return p


def branch_sqrt_of_magnitude(v):
    if v >= 0:
        out = np.sqrt(v)
    else:
        out = np.sqrt(-v)
    return out


def branch_power_of_magnitude(p, q):
    if p >= 0:
        p = p**q
    else:
        p = (-p) ** q
    return p


# --- loops ----------------------------------------------------------------------------


def repeated_square(v, k):
    for _ in range(k):
        v = v * v
    return v


def two_loops_around_a_step(v, k):
    for _ in range(k):
        v = v * v
    v = 1.5 * v
    for _ in range(k + 1):
        v = v * 2.0
    return v


def branch_then_loop(v, k):
    if v > 0:
        v = v * v
    v = 1.5 * v
    for _ in range(k):
        v = v * v
    return v


def loop_then_branch(v, k):
    for _ in range(k):
        v = v * v
    v = 1.5 * v
    if v > 0:
        v = v * v
    return v


def product_accumulator_from_int(v):
    acc = 1
    for _ in range(4):
        acc = acc * v
    return acc


def product_accumulator_from_value(v):
    acc = v
    for _ in range(4 - 2):
        acc = acc * v
    return acc


def guarded_squares_in_loop(v):
    for _ in range(3):
        if v < 10:
            v = v * v
    return v


def loop_inside_guard(v):
    if v < 10:
        for _ in range(3):
            v = v * v
    return v


def doubly_nested_loops(v):
    for _ in range(2):
        for _ in range(2):
            v = v * v
    return v


def cubing_loop(v):
    for _ in range(2):
        v = v * v * v
    return v


def halve_until_small(v):
    while np.abs(v) > 0.07:
        v = v * 0.5
    return v


def sum_by_iteration(vec):
    total = 0.0
    for item in vec:
        total += item
    return total


# --- calls of module-level functions ----------------------------------------------------


def _product(p, q):
    return p * q


def _plus(p, q):
    return p + q


def multiply_add_by_calls(p, q, r):
    return _plus(_product(p, q), r)


def forward_to_helper(p, q):
    return _product(p, q)


def forward_twice(p, q):
    return forward_to_helper(p, q)


def helper_in_branches(p, q):
    if p > q:
        out = _product(p, q)
    else:
        out = _product(q, p)
    return out


def helper_in_loop(v, k):
    for _ in range(k):
        v = _product(v, v)
    return v


def helper_chain(v):
    s = _product(v, v)
    t = _product(s, s)
    return _product(t, v)


# --- NumPy ----------------------------------------------------------------------------


def np_exp(v):
    return np.exp(v)


def np_exp_of_exp(v):
    return np.exp(np.exp(v) * 0.5)


def np_trig(v):
    return np.sin(v) * np.cos(v) + np.tan(v * 0.5)


def np_hyperbolic(v):
    return np.cosh(v) - np.sinh(v) * np.tanh(v)


def np_inverse_trig(v):
    return np.arcsin(v * 0.4) + np.arccos(v * 0.3) + np.arctan(v)


def np_multiply_call(v):
    return np.multiply(v, 1.5)


def np_sum(vec):
    return np.sum(vec)


def np_mean(vec):
    return np.mean(vec * vec)


def np_sum_of_array_call(vec):
    return np.sum(np.array(vec) * 2.0)


def np_atleast(vec):
    one = np.sum(np.atleast_1d(vec))
    two = np.sum(np.atleast_2d(vec) ** 2)
    three = np.sum(np.atleast_3d(vec) * 3.0)
    return one + two + three


def np_determinant(m):
    return np.linalg.det(m)


def list_literal_with_active_entry(v):
    items = [2, v * v, 5]
    return np.sum(items)


def list_literal_from_vector_entries(vec):
    items = [4, vec[0] * vec[1] * vec[2], 1]
    return np.sum(items)


# --- subscripts and containers ----------------------------------------------------------


def read_two_entries(vec):
    first = vec[0]
    second = vec[1]
    return first * second


def write_into_argument(vec):
    first = vec[0]
    second = vec[1]
    vec[0] = first * second
    return np.sum(vec)


def write_from_derived_array(vec):
    sq = vec**2.0
    vec[0] = sq[1] * sq[2]
    return np.sum(vec * sq)


def list_with_active_middle(v):
    items = [2.0, v, 4.0]
    return items[0] * items[1]


def tail_slice(vec):
    return np.sum(vec[1:] * vec[:-1])


def strided_slice_new_axis(vec):
    return np.sum(vec[::2, np.newaxis] * 2.0)


def copy_entries_in_loop(vec):
    out = np.zeros_like(vec)
    for i in range(len(vec)):
        out[i] = vec[i] * vec[i]
    return np.sum(out)


def unpack_triple(triple):
    p, q, r = triple
    return p * q + r


def first_of_triple(triple):
    p, q, r = triple
    return p


def pick_by_index(p, q, r, which):
    packed = p, q, r
    return packed[which]


def keyed_values(values):
    return values["u"] * values["v"] + values["w"]


def nested_keyed_values(params):
    return params["outer"]["left"] * params["outer"]["right"]


def two_outputs(v):
    return 3 * v, v * v


# --- gradient surgery -------------------------------------------------------------------


def damped_gradient(v):
    sq = v * v
    with insert_grad_of(v) as gv:
        gv = gv * 0.5
    return sq * v


# --- small models -----------------------------------------------------------------------


def logistic_loss(features, target, weights, bias):
    logits = np.dot(features, weights) + bias
    prob = 0.5 * (np.tanh(logits) + 1)
    likelihood = prob * target + (1 - prob) * (1 - target)
    return -np.sum(np.log(likelihood))


def recurrent_rows(seq, weights):
    state = np.zeros((4, 3))
    for t in range(3):
        state[t + 1] = np.dot(seq[t], weights) + state[t]
    return np.sum(state[1:])


def bilinear_tanh(x, h, u, w, b):
    y = np.dot(x, w)
    y = y + np.dot(h, u)
    y = y + b
    y = np.tanh(y)
    return np.sum(y)


# --- cases ------------------------------------------------------------------------------

SCALAR_FUNCS = [
    scale_right, scale_left, square_by_product, divide_by_constant, constant_over,
    ratio_with_itself, shift_down, constant_minus, difference_with_itself, sum_with_itself,
    add_int_constant, negated, identity_value, cube_by_products, cube_by_power,
    reassign_parameter, reassign_copy, copy_then_return, local_shadowing_adjoint_names,
    augmented_self_product, augmented_mixed, branch_overwrite, branch_nested,
    branch_nested_inside_overwrite, branch_chain_with_elif, branch_tests_on_expressions,
    branches_in_sequence, branch_sqrt_of_magnitude, product_accumulator_from_int,
    product_accumulator_from_value, guarded_squares_in_loop, loop_inside_guard,
    doubly_nested_loops, cubing_loop, halve_until_small, helper_chain, np_exp, np_exp_of_exp,
    np_trig, np_hyperbolic, np_inverse_trig, np_multiply_call, list_literal_with_active_entry,
    list_with_active_middle,
]
VECTOR_FUNCS = [
    overwrite_with_reduction, sum_by_iteration, np_sum, np_mean, np_sum_of_array_call,
    np_atleast, list_literal_from_vector_entries, read_two_entries, write_into_argument,
    write_from_derived_array, tail_slice, strided_slice_new_axis, copy_entries_in_loop,
]
PAIR_FUNCS = [branch_on_two_inputs, forward_to_helper, forward_twice, helper_in_branches]
TRIPLE_FUNCS = [multiply_add, multiply_add_named_steps, reassign_temporary, multiply_add_by_calls]
COUNTED_FUNCS = [repeated_square, two_loops_around_a_step, branch_then_loop, loop_then_branch,
                 helper_in_loop]


def _cases():
    for f in SCALAR_FUNCS:
        for v in SCALARS:
            yield f, (v,), (0,)
    for f in VECTOR_FUNCS:
        for vec in VECTORS:
            yield f, (vec,), (0,)
    for f in PAIR_FUNCS:
        for p, q in itertools.product([-1.2, 0.4, 1.7], repeat=2):
            if p != q:
                yield f, (p, q), (0, 1)
    for p, q in itertools.product([-1.3, 0.6, 1.4], [0.5, 2.0, 3.0]):
        yield branch_power_of_magnitude, (p, q), (0,)
    for f in TRIPLE_FUNCS:
        for args in itertools.product([-0.7, 1.1], [0.4, -1.6], [2.2]):
            yield f, args, (0, 1, 2)
    for f in COUNTED_FUNCS:
        for v, k in itertools.product([-1.1, -0.4, 0.5, 1.2], COUNTS):
            yield f, (v, k), (0,)
    for m in (RNG.standard_normal((1, 1)), RNG.standard_normal((4, 4))):
        yield np_determinant, (m,), (0,)


CASES = list(_cases())
IDS = [f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(CASES)]


def _copied(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def _seed_for(value):
    return np.ones_like(value) if np.size(value) > 1 else 1.0


@OPTS
@pytest.mark.parametrize("f, args, wrt", CASES, ids=IDS)
def test_grad_matches_differences(f, args, wrt, optimized):
    expected = numeric_grad(f, _copied(args), wrt)
    got = tangent.grad(f, wrt=wrt, optimized=optimized)(*_copied(args))
    assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
@pytest.mark.parametrize("f, args, wrt", CASES, ids=IDS)
def test_autodiff_matches_differences(f, args, wrt, optimized, motion):
    value = f(*_copied(args))
    expected = numeric_grad(f, _copied(args), wrt)
    df = tangent.autodiff(f, wrt=wrt, motion=motion, optimized=optimized)
    got = df(*_copied(args), _seed_for(value))
    assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
@pytest.mark.parametrize(
    "f, args",
    [
        (branch_chain_with_elif, (-0.8,)),
        (repeated_square, (0.9, 2)),
        (write_into_argument, (VECTORS[1],)),
        (helper_in_branches, (0.3, 1.4)),
        (halve_until_small, (1.7,)),
    ],
    ids=lambda x: getattr(x, "__name__", None),
)
def test_preserve_result_returns_value(f, args, optimized, motion):
    value = f(*_copied(args))
    df = tangent.autodiff(f, motion=motion, optimized=optimized, preserve_result=True)
    grads, kept = df(*_copied(args), 1.0)
    assert_close(kept, value, what="value")
    assert_close(grads, numeric_grad(f, _copied(args)))
    grads2, kept2 = tangent.grad(f, optimized=optimized, preserve_result=True)(*_copied(args))
    assert_close(kept2, value, what="value")
    assert_close(grads2, grads)


# --- containers as arguments -------------------------------------------------------------


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
def test_tuple_argument_unpacked(optimized, motion):
    for p, q, r in [(1.5, -0.5, 2.0), (-2.0, 0.25, -1.0)]:
        df = tangent.autodiff(unpack_triple, motion=motion, optimized=optimized)
        assert_close(df((p, q, r), 1.0), (q, p, 1.0))
        df = tangent.autodiff(first_of_triple, motion=motion, optimized=optimized)
        assert_close(df((p, q, r), 2.0), (2.0, 0.0, 0.0))


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
def test_packed_tuple_indexed_by_argument(optimized, motion):
    df = tangent.autodiff(pick_by_index, wrt=(0, 1, 2), motion=motion, optimized=optimized)
    for which in range(3):
        expected = tuple(3.0 if j == which else 0.0 for j in range(3))
        assert_close(df(0.5, -1.5, 2.5, which, 3.0), expected)


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
def test_dict_argument(optimized, motion):
    values = {"u": 1.5, "v": -2.0, "w": 0.75}
    df = tangent.autodiff(keyed_values, motion=motion, optimized=optimized)
    got = df(dict(values), 1.0)
    assert_close(got, {"u": -2.0, "v": 1.5, "w": 1.0})


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
def test_nested_dict_argument(optimized, motion):
    params = {"outer": {"left": 3.0, "right": -4.0}}
    df = tangent.autodiff(nested_keyed_values, motion=motion, optimized=optimized)
    got = df(params, 2.0)
    assert_close(got, {"outer": {"left": -8.0, "right": 6.0}})


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
def test_tuple_output_takes_tuple_seed(optimized, motion):
    for v in SCALARS:
        check_autodiff(two_outputs, (v,), (1.0, 1.0), motion=motion, optimized=optimized)
        check_autodiff(two_outputs, (v,), (0.5, -2.0), motion=motion, optimized=optimized)


# --- gradient surgery ---------------------------------------------------------------------


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
def test_insert_grad_of_scales_the_adjoint(optimized, motion):
    # The block halves what v's adjoint holds when the backward pass reaches it: only the
    # contribution of `sq * v` (v^2) so far. Then `sq = v * v` adds 2 v^2: 2.5 v^2 in total.
    df = tangent.autodiff(damped_gradient, motion=motion, optimized=optimized)
    for v in SCALARS:
        assert_close(df(v, 1.0), 2.5 * v * v)
    assert_close(damped_gradient(1.5), 1.5**3)


# --- small models ---------------------------------------------------------------------------


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
def test_logistic_loss_weights_and_bias(optimized, motion):
    rng = np.random.default_rng(5)
    weights = rng.standard_normal((3, 5))
    bias = rng.standard_normal(5)
    features = rng.random(3)
    target = np.zeros(5)
    target[2] = 1.0
    check_autodiff(logistic_loss, (features, target, weights, bias), 1.0, wrt=(2, 3),
                   motion=motion, optimized=optimized)


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
def test_recurrent_rows(optimized, motion):
    rng = np.random.default_rng(6)
    seq = rng.standard_normal((3, 2))
    weights = rng.standard_normal((2, 3))
    check_autodiff(recurrent_rows, (seq, weights), 1.0, wrt=(0, 1), motion=motion,
                   optimized=optimized)


@OPTS
def test_bilinear_tanh(optimized):
    rng = np.random.default_rng(7)
    d = 3
    args = (rng.standard_normal((1, d)), rng.standard_normal((1, d)), rng.standard_normal((d, d)),
            rng.standard_normal((d, d)), rng.standard_normal((1, d)))
    check_grad(bilinear_tanh, args, wrt=(0,), optimized=optimized)
    check_grad(bilinear_tanh, args, wrt=(0, 1, 2, 3, 4), optimized=optimized)


# --- what the original reported as an error ---------------------------------------------------


def shape_only(vec):
    return vec.shape


def test_attribute_result_is_rejected_with_value_error():
    with pytest.raises(ValueError):
        tangent.grad(shape_only)(np.array([1.0, 2.0]))


def test_unknown_mode_is_a_value_error():
    with pytest.raises(ValueError):
        tangent.autodiff(scale_right, mode="sideways")
