"""Compatibility regression suite: the kinds of programs the first Tangent's reverse-mode
tests exercised, written afresh for this project, and the ways its users called it.

Each group below stands for one category of construct (scalar operators, overwrites, branches,
counted and conditional loops, calls of module functions, NumPy calls, containers and
subscripts, gradient surgery, small models). Every function is checked with ``tangent.grad``
and with ``tangent.autodiff`` in joint and split motion, optimized or not, against central
differences, over a grid of inputs that includes negative values (so both sides of every
branch are taken). Functions under test live at module level.

The last sections check the original's calling conventions (``grad``'s ``mode`` and
``motion``, the seed positionally or as ``init_grad=``, forward-mode tangents after the
arguments) and its stack API called from the user's code (``tangent.push(stack, x, op_id)``,
``tangent.pop(stack, op_id)``), to second order.
"""

import itertools

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, check_autodiff, check_grad, numeric_grad, numeric_vjp
from tangent import Stack, insert_grad_of, pop, push

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


# --- the original's calling conventions ----------------------------------------------------
#
# `tangent.grad(f, wrt, optimized, mode, motion, preserve_result, check_dims, verbose)` and
# `tangent.autodiff(...)`, as the original took them; every reverse-mode derivative takes its
# seed after f's arguments, positionally (the original's joint-motion tests) or as
# `init_grad=` (its split-motion tests); forward mode takes the tangents after the arguments.


def compat_scalar(v):
    w = v * v
    if v > 0:
        w = w * np.sin(v)
    return w + 2.0 * np.exp(0.5 * v)


def compat_vector(vec):
    h = np.tanh(vec * 1.5)
    return np.sum(h * vec)


def compat_vector_output(vec):
    return np.sin(vec) * vec


def compat_several(p, q, r):
    s = p * q + np.cos(r) * p
    return s * r


def compat_matrix(weights, inputs):
    hidden = np.tanh(np.dot(inputs, weights))
    return np.sum(hidden * hidden)


COMPAT_CASES = [
    pytest.param(compat_scalar, (0.7,), (0,), id="scalar-positive"),
    pytest.param(compat_scalar, (-1.3,), (0,), id="scalar-negative"),
    pytest.param(compat_vector, (VECTORS[1],), (0,), id="vector"),
    pytest.param(compat_vector_output, (VECTORS[0],), (0,), id="vector-output"),
    pytest.param(compat_several, (0.4, -1.2, 0.9), (0, 1, 2), id="several-scalars"),
    pytest.param(compat_several, (0.4, -1.2, 0.9), (2, 0), id="several-reordered"),
    pytest.param(
        compat_matrix, (RNG.standard_normal((3, 2)), RNG.standard_normal((4, 3))), (0, 1), id="several-arrays"
    ),
]


def _compat_seed(value):
    """A seed that is not 1 (so a seed that is ignored shows): 0.75 times ones."""
    return 0.75 * np.ones_like(value) if np.ndim(value) else 0.75


def _autograd_vjp(f, args, wrt, seed):
    """The VJP from autograd (f's `np` rebound to autograd.numpy), or None when not installed."""
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        return None
    import types

    namespace = dict(f.__globals__, np=anp)
    twin = types.FunctionType(f.__code__, namespace, f.__name__, f.__defaults__, f.__closure__)
    grads = []
    for p in wrt:
        vjp, _ = autograd.make_vjp(twin, p)(*_copied(args))
        grads.append(vjp(seed))
    return grads[0] if len(grads) == 1 else tuple(grads)


@pytest.mark.parametrize("seed_form", ["positional", "init_grad"])
@pytest.mark.parametrize("preserve_result", [False, True], ids=["grads", "preserve"])
@OPTS
@pytest.mark.parametrize("motion", MOTIONS)
@pytest.mark.parametrize("api", ["grad", "autodiff"])
@pytest.mark.parametrize("f, args, wrt", COMPAT_CASES)
def test_seed_positional_or_init_grad(f, args, wrt, api, motion, optimized, preserve_result, seed_form):
    value = f(*_copied(args))
    seed = _compat_seed(value)
    if api == "grad":
        df = tangent.grad(f, wrt, optimized, "reverse", motion, preserve_result)
    else:
        df = tangent.autodiff(f, wrt, optimized, motion, "reverse", preserve_result)
    if seed_form == "positional":
        out = df(*_copied(args), seed)
    else:
        out = df(*_copied(args), init_grad=seed)
    if preserve_result:
        # The value follows the gradients in one flat tuple: (dx, value), (dx, dy, value).
        assert isinstance(out, tuple) and len(out) == len(wrt) + 1, out
        assert_close(out[-1], value, what="value")
        out = out[0] if len(wrt) == 1 else out[:-1]
    expected = numeric_vjp(f, _copied(args), seed, wrt)
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    reference = _autograd_vjp(f, args, wrt, seed)
    if reference is not None:
        assert_close(out, reference, rtol=1e-9, atol=1e-12, what="gradient against autograd")


@OPTS
@pytest.mark.parametrize("f, args, wrt", COMPAT_CASES)
def test_grad_seed_defaults_to_one(f, args, wrt, optimized):
    expected = numeric_grad(f, _copied(args), wrt)
    df = tangent.grad(f, wrt=wrt, optimized=optimized)
    assert_close(df(*_copied(args)), expected)
    # The generated seed parameter (`b<f>`) by its own name as well.
    assert_close(df(*_copied(args), **{f"b{f.__name__}": 2.0}), numeric_vjp(f, _copied(args), 2.0, wrt))


def _directional(f, args, wrt, tangents, eps=1e-6):
    """Central difference of f along the tangents of the `wrt` arguments (float64)."""
    plus, minus = list(_copied(args)), list(_copied(args))
    for p, t in zip(wrt, tangents):
        plus[p] = np.float64(args[p]) + eps * np.asarray(t, dtype=np.float64)
        minus[p] = np.float64(args[p]) - eps * np.asarray(t, dtype=np.float64)
        if np.ndim(args[p]) == 0:
            plus[p], minus[p] = float(plus[p]), float(minus[p])
    return (np.asarray(f(*plus), dtype=np.float64) - np.asarray(f(*minus), dtype=np.float64)) / (2 * eps)


def _tangents_for(args, wrt):
    rng = np.random.default_rng(17)
    return [rng.standard_normal(np.shape(args[p])) if np.ndim(args[p]) else 1.0 for p in wrt]


@pytest.mark.parametrize("preserve_result", [False, True], ids=["jvp", "preserve"])
@OPTS
@pytest.mark.parametrize("f, args, wrt", COMPAT_CASES)
def test_forward_mode_through_grad(f, args, wrt, optimized, preserve_result):
    tangents = _tangents_for(args, wrt)
    df = tangent.grad(f, mode="forward", preserve_result=preserve_result, wrt=wrt, optimized=optimized)
    out = df(*_copied(args), *tangents)
    if preserve_result:
        assert isinstance(out, tuple) and len(out) == 2, out
        out, value = out
        assert_close(value, f(*_copied(args)), what="value")
    assert_close(out, _directional(f, args, wrt, tangents), rtol=1e-5, atol=1e-6)


def test_forward_mode_as_the_original_harness_called_it(capsys):
    # tangent.grad(func, mode='forward', preserve_result=..., wrt=wrt, optimized=True,
    # verbose=1), then df(*args, 1.0).
    df = tangent.grad(
        compat_scalar, mode="forward", preserve_result=False, wrt=(0,), optimized=True, verbose=1
    )
    assert "def jvp_compat_scalar(" in capsys.readouterr().out
    for v in SCALARS:
        assert_close(df(v, 1.0), numeric_grad(compat_scalar, (v,)))
    # The original's positional order: (func, wrt, optimized, mode, motion, preserve_result).
    df = tangent.grad(compat_scalar, (0,), True, "forward")
    assert_close(df(0.3, 2.0), 2.0 * numeric_grad(compat_scalar, (0.3,)))
    grads, value = tangent.grad(compat_scalar, (0,), False, "reverse", "split", True)(0.3)
    assert_close(grads, numeric_grad(compat_scalar, (0.3,)))
    assert_close(value, compat_scalar(0.3), what="value")


@pytest.mark.parametrize("motion", MOTIONS)
@pytest.mark.parametrize("api", ["grad", "autodiff"])
def test_seed_given_twice_or_an_unknown_keyword_is_a_type_error(api, motion):
    make = tangent.grad if api == "grad" else tangent.autodiff
    df = make(compat_several, wrt=(0, 1), motion=motion)
    args = (0.4, -1.2, 0.9)
    twice = r"dcompat_several\(\) got the output seed twice, positionally and as init_grad="
    with pytest.raises(TypeError, match=twice):
        df(*args, 1.0, init_grad=1.0)
    with pytest.raises(TypeError, match=r"got the output seed twice, as bcompat_several= and as init_grad="):
        df(*args, bcompat_several=1.0, init_grad=1.0)
    unknown = (
        r"dcompat_several\(\) got an unexpected keyword argument 'seed'; it takes the arguments "
        r"of `[\w.]*compat_several` \(p, q, r\), then the output seed, positionally or as init_grad="
    )
    with pytest.raises(TypeError, match=unknown):
        df(*args, seed=1.0)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'init_grads'"):
        df(*args, init_grad=1.0, init_grads=1.0)
    # The function's own parameters may still be passed by keyword, with the seed either way.
    expected = numeric_vjp(compat_several, args, 0.5, (0, 1))
    assert_close(df(0.4, q=-1.2, r=0.9, init_grad=0.5), expected)
    assert_close(df(0.4, -1.2, 0.9, 0.5), expected)


def test_reverse_mode_options_are_checked():
    with pytest.raises(ValueError, match="tangent.grad: mode must be 'reverse' or 'forward'"):
        tangent.grad(compat_scalar, mode="sideways")
    with pytest.raises(ValueError, match="tangent.grad: motion must be 'joint' or 'split'"):
        tangent.grad(compat_scalar, motion="sideways")
    # A bool where the original took `mode` (an old positional preserve_result) is refused.
    with pytest.raises(ValueError, match="mode must be"):
        tangent.grad(compat_scalar, (0,), True, True)


def takes_init_grad(v, init_grad):
    return v * init_grad


def test_a_parameter_named_init_grad_keeps_its_name():
    df = tangent.autodiff(takes_init_grad)
    assert_close(df(1.5, init_grad=3.0, btakes_init_grad=2.0), 6.0)
    assert_close(df(1.5, 3.0, 2.0), 6.0)


class CompatModel:
    def __init__(self, scale):
        self.scale = scale

    def loss(self, v, u):
        return self.scale * np.sin(v) * u


@pytest.mark.parametrize("motion", MOTIONS)
def test_bound_method_derivative_takes_the_seed_either_way(motion):
    model = CompatModel(1.5)
    df = tangent.grad(model.loss, wrt=(0, 1), motion=motion)
    expected = numeric_vjp(model.loss, (0.3, 2.0), 0.5, (0, 1))
    assert_close(df(0.3, 2.0, 0.5), expected)
    assert_close(df(0.3, 2.0, init_grad=0.5), expected)
    with pytest.raises(TypeError, match="got the output seed twice"):
        df(0.3, 2.0, 0.5, init_grad=0.5)


def test_derivative_still_shows_the_generated_code():
    import inspect

    df = tangent.grad(compat_scalar)
    source = inspect.getsource(df)
    assert source.startswith("def dcompat_scalar(v, bcompat_scalar=1.0):"), source
    assert df.__name__ == "dcompat_scalar" and "compat_scalar" in df.__doc__
    assert df.__code__.co_filename == inspect.unwrap(df).__code__.co_filename
    assert list(inspect.signature(df).parameters) == ["v", "bcompat_scalar"]
    # Differentiated again: the generated function, to second order.
    ddf = tangent.grad(df)
    for v in SCALARS:
        expected = numeric_grad(lambda x: df(x), (v,))
        assert_close(ddf(v), expected, rtol=1e-5, atol=1e-5)
        assert_close(ddf(v, 1.0, init_grad=2.0), 2.0 * expected, rtol=1e-5, atol=1e-5)


# --- the stack API in the user's code -------------------------------------------------------
#
# The original's tests differentiated functions that call the stack API themselves, with an
# op_id naming each push/pop pair.


def stack_pushing(a):
    stack = tangent.Stack()
    y = a * a
    tangent.push(stack, a, 'abc')
    aa = tangent.pop(stack, 'abc')
    z = y * aa
    z = z * aa
    return z


def useless_stack_ops(a):
    _stack = tangent.Stack()
    b = a * a
    tangent.push(_stack, b, 'abc')
    b = tangent.pop(_stack, 'abc')
    return a


def redefining_var_as_list(a):
    _stack = tangent.Stack()
    x = a
    tangent.push(_stack, x, 'abc')
    x = [a]
    x = tangent.pop(_stack, 'abc')
    return a


def stack_op_ids_in_loops(vec, n):
    stack = tangent.Stack()
    for _ in range(n):
        tangent.push(stack, vec, op_id="saved")
        vec = np.sin(vec) * vec
    for _ in range(n):
        vec = vec + 0.5 * tangent.pop(stack, op_id="saved")
    return np.sum(vec * vec)


def stack_names_imported(a):
    saved = Stack()
    b = a * 3.0
    push(saved, b, "b")
    c = np.cos(a) * pop(saved, "b")
    return c * a


STACK_CASES = [
    pytest.param(stack_pushing, (v,), id=f"stack_pushing-{v}") for v in (-1.2, 0.4, 1.5)
] + [
    pytest.param(f, (v,), id=f"{f.__name__}-{v}")
    for f in (useless_stack_ops, redefining_var_as_list)
    for v in (-0.7, 1.3)
] + [
    pytest.param(stack_names_imported, (v,), id=f"stack_names_imported-{v}") for v in (-0.7, 1.3)
] + [
    pytest.param(stack_op_ids_in_loops, (VECTORS[0], n), id=f"stack_op_ids_in_loops-{n}") for n in (1, 3)
]


def _direction(x):
    return np.random.default_rng(3).standard_normal(np.shape(x)) if np.ndim(x) else 1.0


def test_runtime_push_and_pop_take_an_op_id():
    stack = tangent.Stack()
    tangent.push(stack, 1.0, "first")
    tangent.push(stack, 2.0)
    tangent.push(stack, 3.0, op_id="third")
    assert tangent.pop(stack, op_id="third") == 3.0
    assert tangent.pop(stack) == 2.0
    assert tangent.pop(stack, "first") == 1.0
    assert not stack
    assert_close(stack_pushing(1.5), 1.5**4, what="value")


@pytest.mark.parametrize("motion", MOTIONS)
@OPTS
@pytest.mark.parametrize("f, args", STACK_CASES)
def test_stack_functions_gradient(f, args, optimized, motion):
    expected = numeric_grad(f, _copied(args))
    assert_close(tangent.grad(f, optimized=optimized, motion=motion)(*_copied(args)), expected)
    seed = 0.5
    df = tangent.autodiff(f, optimized=optimized, motion=motion)
    assert_close(df(*_copied(args), init_grad=seed), seed * expected)


@OPTS
@pytest.mark.parametrize("f, args", STACK_CASES)
def test_stack_functions_forward_mode(f, args, optimized):
    t = _direction(args[0])
    expected = _directional(f, args, (0,), [t])
    assert_close(tangent.jvp(f, optimized=optimized)(*_copied(args), t), expected)
    assert_close(tangent.grad(f, mode="forward", optimized=optimized)(*_copied(args), t), expected)


def _second_directional(f, args, t, eps=1e-4):
    """t^T H t of f along t by second differences (float64), for the scalar case."""
    x = np.float64(args[0])
    plus, minus = (x + eps * t,) + tuple(args[1:]), (x - eps * t,) + tuple(args[1:])
    return (f(*plus) - 2.0 * f(*_copied(args)) + f(*minus)) / eps**2


@OPTS
@pytest.mark.parametrize("f, args", STACK_CASES)
def test_stack_functions_second_order(f, args, optimized):
    df = tangent.grad(f, optimized=optimized)
    t = _direction(args[0])
    # H t, by central differences of the gradient (itself checked against differences above).
    expected = _directional(lambda x, *rest: df(x, *rest), args, (0,), [t])
    assert_close(tangent.hvp(f, optimized=optimized)(*_copied(args), t), expected, rtol=1e-5, atol=1e-5)
    if np.ndim(args[0]) == 0:
        # f'' from f alone, by second differences.
        assert_close(expected, _second_directional(f, args, 1.0), rtol=1e-4, atol=1e-4)
        ddf = tangent.grad(df, optimized=optimized)
        assert_close(ddf(*_copied(args)), expected, rtol=1e-5, atol=1e-5)
        # Forward over forward, and reverse over forward.
        jjf = tangent.jvp(tangent.jvp(f, optimized=optimized), optimized=optimized)
        assert_close(jjf(*_copied(args), 1.0, 1.0), expected, rtol=1e-5, atol=1e-5)
        assert_close(tangent.grad(tangent.jvp(f))(*_copied(args), 1.0), expected, rtol=1e-5, atol=1e-5)
    else:
        # Reverse over reverse: the gradient's VJP along t is H t.
        hv = tangent.autodiff(df, optimized=optimized)(*_copied(args), 1.0, t)
        assert_close(hv, expected, rtol=1e-5, atol=1e-5)


def test_stack_op_ids_that_do_not_pair_are_refused():
    with pytest.raises(tangent.UnsupportedError, match="same op_id"):
        tangent.grad(unpaired_op_ids)
    literal = "the op_id of `tangent.push` and `tangent.pop` must be a literal"
    with pytest.raises(tangent.UnsupportedError, match=literal):
        tangent.grad(variable_op_id)


def unpaired_op_ids(a):
    stack = tangent.Stack()
    tangent.push(stack, a, "one")
    b = tangent.pop(stack, "two")
    return b * a


def variable_op_id(a, key):
    stack = tangent.Stack()
    tangent.push(stack, a, key)
    b = tangent.pop(stack, key)
    return b * a
