"""Changes in place, right or refused (issue 13): writes into arguments, `out=`, views and
aliases.

Every derivative is compared with central finite differences in float64; every derivative
call must leave its arguments as one call of the function does (a gradient changes an array
it is given in place exactly as the function does). Code that changes memory another name
still reads is refused, at generation when that is certain, else by the generated code at
run time (with the file and line), never answered with a wrong number.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad

RNG = np.random.default_rng(1313)


# --- helpers that write into their arguments ----------------------------------------------


def fill(z, out):
    out[0] = z ** 2
    out[1] = np.sin(z)
    return 0.0


def loss_fill(z):
    out = np.zeros(3)
    fill(z, out)
    return np.sum(out * out) + out[2]


def scale(a):
    a *= 3.0


def loss_scale(x):
    a = x * 1.0
    scale(a)
    return np.sum(a * a)


def scale_number(x):
    # `scale` on a number changes nothing the caller sees: `t` keeps its value.
    t = np.sum(x)
    scale(t)
    return t * t


def inplace_logistic(X):
    X *= -1
    np.exp(X, out=X)
    X += 1
    np.reciprocal(X, out=X)


def inplace_tanh(X):
    np.tanh(X, out=X)


def mlp(W, x):
    h = x @ W
    inplace_tanh(h)
    o = h @ W.T
    inplace_logistic(o)
    return np.sum(o * o)


def accumulate(total, v):
    total += v * v
    return total


def loss_accumulate(x):
    acc = np.zeros(3)
    for k in range(3):
        accumulate(acc, x * k)
    return np.sum(acc * x)


def nested_writer(a, v):
    fill(v, a)
    a *= 2.0
    return np.sum(a)


def loss_nested_writer(x):
    buf = np.ones(3)
    s = nested_writer(buf, x[0])
    return s * x[1] + np.sum(buf * x)


# --- NumPy writing into an array -----------------------------------------------------------


def exp_out(x):
    a = x * 1.0
    np.exp(a, out=a)
    return np.sum(a)


def tanh_positional_out(x):
    a = x * 1.0
    np.tanh(a, a)
    return np.sum(a * x)


def multiply_out_other(x):
    b = np.empty(3)
    c = np.multiply(x, 2.0, out=b)
    return np.sum(b * c)


def copyto_square(x):
    a = np.zeros(3)
    np.copyto(a, x * x)
    return np.sum(a * x)


def copyto_broadcast(x):
    a = np.zeros((2, 3))
    np.copyto(a, x)
    return np.sum(a * a)


# --- the function's own arguments and names -----------------------------------------------


def scales_its_argument(x, y):
    y *= 2.0
    return np.sum(x * y)


def appends_to_its_argument(x, log):
    log.append(x * 2.0)
    return np.sum(log[-1] * x)


def writes_its_argument(x):
    x[0] = x[1] * 3.0
    return np.sum(x * x)


def counter_and_sum(x):
    total = 0.0
    n = 0
    for v in x:
        total += v * v
        n += 1
    return total / n


def number_alias_rebinds(x):
    t = np.sum(x)
    t_prev = t
    t += 1.0
    return t * t_prev


def rows_added_in_place(v):
    v = v * 1.0
    for row in v:
        v += row
    return np.sum(v * v)


# --- views kept in step with their bases -------------------------------------------------------


def view_then_base_changed(v):
    v = v * 1.0
    head = v[:2]
    v *= 3.0
    return np.sum(head * head) + np.sum(v)


def transpose_then_changed(m):
    m = m * 1.0
    t = m.T
    m *= 2.0
    return np.sum(t ** 2 * np.arange(4.0).reshape(2, 2))


def write_through_reshape(v):
    v = v * 1.0
    r = v.reshape(-1)
    r[0] = 5.0 * r[1]
    return np.sum(v * v * np.arange(4.0).reshape(2, 2))


def row_scaled_in_place(m):
    m = m * 1.0
    for row in m:
        row *= 2.0
    return np.sum(m * m)


def rows_normalized(A):
    # The textbook way to make rows sum to one.
    B = np.exp(A)
    for row in B:
        row /= row.sum()
    return np.sum(B ** 3)


def view_of_a_view(v):
    v = v * 1.0
    a = v[1:]
    b = a[:2]
    v *= 2.0
    return np.sum(b * b * np.array([1.0, 3.0]))


def sibling_views(v):
    v = np.sin(v)
    a = v[:3]
    b = v[1:]
    a *= v[3]
    return np.sum(b ** 3) + np.sum(a)


def view_changed_through_a_view_of_it(v):
    v = v * 1.0
    a = v[1:]
    b = a[:2]
    b += np.cos(v[0])
    return np.sum(v ** 2 * np.arange(4.0)) + np.sum(a * a)


def view_of_the_argument_changed(x):
    # Changes the caller's array (as the function does), through a reshape of it.
    w = x.reshape(2, 2)
    w -= np.sin(np.copy(w))
    return np.sum(x ** 2 * np.arange(4.0))


def transpose_written_by_out(m):
    m = m * 1.0
    t = m.T
    np.tanh(t, out=t)
    return np.sum(m * np.arange(4.0).reshape(2, 2))


def helper_scales_a_view(x):
    v = x * 1.0
    head = v[1:3]
    scale(head)
    return np.sum(v ** 2 * np.arange(4.0))


def column_written_in_a_loop(m):
    m = m * 1.0
    col = m[:, 0]
    for i in range(2):
        col[i] = np.sin(m[i, 1]) * col[i]
    return np.sum(m ** 2) + np.sum(col)


def advanced_index_is_a_copy(v):
    v = v * 1.0
    picked = v[[0, 2]]
    v *= 3.0
    picked += 1.0
    return np.sum(picked * picked) + np.sum(v * v)


def number_from_a_vector(v):
    v = v * 1.0
    first = v[0]
    v *= 3.0
    return first * np.sum(v)


def reshape_of_a_strided_slice_copies(v):
    v = v * 1.0
    r = v[::2].reshape(-1)
    v *= 2.0
    r *= 5.0
    return np.sum(r * r) + np.sum(v)


def alias_then_changed(x):
    a = x * 1.0
    b = a
    a += 1.0
    return np.sum(b * b * x)


def list_alias_appended(x):
    xs = [x * 1.0]
    ys = xs
    xs.append(np.sin(x))
    return np.sum(ys[-1] * ys[0])


def alias_of_a_view(v):
    v = v * 1.0
    head = v[:2]
    first = head
    v *= np.cos(v)
    return np.sum(first * v[1:3])


def view_changed_in_a_branch(v, flag):
    v = v * 1.0
    head = v[:2]
    if flag > 0:
        v *= 3.0
    else:
        head += 1.0
    return np.sum(head * v[1:3]) + np.sum(v ** 2)


def _normalize_rows(A):
    for row in A:
        row /= row.sum()
    return A


def softmax_rows(X):
    # A helper normalizing the rows of its argument in place and returning it.
    E = np.exp(X)
    P = _normalize_rows(E)
    return np.sum(P * np.arange(1.0, 1.0 + X.size).reshape(X.shape))


def views_made_in_a_while_loop(v):
    v = v * 1.0
    i = 0
    while i < 3:
        w = v[i:i + 2]
        w *= np.cos(v[i])
        i += 1
    return np.sum(v ** 2)


def columns_written_by_out(m):
    m = np.tanh(m)
    for j in range(m.shape[1]):
        col = m[:, j]
        np.exp(col, out=col)
    return np.sum(m * m)


def ravel_written(m):
    m = m * 1.0
    flat = m.ravel()
    flat[::2] = flat[1::2] ** 2
    return np.sum(m ** 3)


def rows_swapped_through_views(m):
    m = m * 1.0
    a = m[0]
    b = m[1]
    t = a.copy()
    a[:] = b
    b[:] = t * 2.0
    return np.sum(m * np.arange(4.0).reshape(2, 2)) + np.sum(a * b)


CASES = [
    (loss_fill, lambda: (0.7,)),
    (loss_scale, lambda: (RNG.standard_normal(3),)),
    (scale_number, lambda: (RNG.standard_normal(3),)),
    (mlp, lambda: (RNG.standard_normal((3, 2)) * 0.5, RNG.standard_normal(3))),
    (loss_accumulate, lambda: (RNG.standard_normal(3),)),
    (loss_nested_writer, lambda: (RNG.standard_normal(3),)),
    (exp_out, lambda: (RNG.standard_normal(3),)),
    (tanh_positional_out, lambda: (RNG.standard_normal(3),)),
    (multiply_out_other, lambda: (RNG.standard_normal(3),)),
    (copyto_square, lambda: (RNG.standard_normal(3),)),
    (copyto_broadcast, lambda: (RNG.standard_normal(3),)),
    (scales_its_argument, lambda: (RNG.standard_normal(3), RNG.standard_normal(3))),
    (writes_its_argument, lambda: (RNG.standard_normal(3),)),
    (counter_and_sum, lambda: (RNG.standard_normal(4),)),
    (number_alias_rebinds, lambda: (RNG.standard_normal(3),)),
    (rows_added_in_place, lambda: (RNG.standard_normal((3, 2)),)),
    (view_then_base_changed, lambda: (RNG.standard_normal(3),)),
    (transpose_then_changed, lambda: (RNG.standard_normal((2, 2)),)),
    (write_through_reshape, lambda: (RNG.standard_normal((2, 2)),)),
    (row_scaled_in_place, lambda: (RNG.standard_normal((2, 2)),)),
    (rows_normalized, lambda: (RNG.standard_normal((3, 4)),)),
    (view_of_a_view, lambda: (RNG.standard_normal(4),)),
    (sibling_views, lambda: (RNG.standard_normal(4),)),
    (view_changed_through_a_view_of_it, lambda: (RNG.standard_normal(4),)),
    (view_of_the_argument_changed, lambda: (RNG.standard_normal(4),)),
    (transpose_written_by_out, lambda: (RNG.standard_normal((2, 2)),)),
    (helper_scales_a_view, lambda: (RNG.standard_normal(4),)),
    (column_written_in_a_loop, lambda: (RNG.standard_normal((2, 2)),)),
    (advanced_index_is_a_copy, lambda: (RNG.standard_normal(3),)),
    (number_from_a_vector, lambda: (RNG.standard_normal(3),)),
    (reshape_of_a_strided_slice_copies, lambda: (RNG.standard_normal(4),)),
    (alias_then_changed, lambda: (RNG.standard_normal(3),)),
    (softmax_rows, lambda: (RNG.standard_normal((3, 4)),)),
    (views_made_in_a_while_loop, lambda: (RNG.standard_normal(5),)),
    (columns_written_by_out, lambda: (RNG.standard_normal((2, 3)),)),
    (ravel_written, lambda: (RNG.standard_normal((2, 2)),)),
    (rows_swapped_through_views, lambda: (RNG.standard_normal((2, 2)),)),
    (list_alias_appended, lambda: (RNG.standard_normal(3),)),
    (alias_of_a_view, lambda: (RNG.standard_normal(4),)),
    (view_changed_in_a_branch, lambda: (RNG.standard_normal(4), 1.0)),
    (view_changed_in_a_branch, lambda: (RNG.standard_normal(4), -1.0)),
]
IDS = [f"{f.__name__}{i}" if [g for g, _ in CASES].count(f) > 1 else f.__name__ for i, (f, _) in enumerate(CASES)]


def _fd(f, args):
    """Central differences of `f` (each evaluation on copies: `f` may change its arguments)."""
    return numeric_grad(lambda *a: f(*copy.deepcopy(a)), copy.deepcopy(args))


def _after(fn, args):
    """(result, the arguments after the call) for a call on copies of `args`."""
    mine = copy.deepcopy(args)
    return fn(*mine), mine


@pytest.mark.parametrize("f, make", CASES, ids=IDS)
@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_gradient(f, make, optimized):
    args = make()
    value, primal_args = _after(f, args)
    (grad, grad_value), grad_args = _after(tangent.grad(f, optimized=optimized, preserve_result=True), args)
    assert_close(grad_value, value, rtol=1e-12, atol=1e-12, what="value")
    assert_close(grad, _fd(f, args), rtol=1e-5, atol=1e-6)
    assert_close(list(grad_args), list(primal_args), rtol=1e-12, atol=1e-12, what="arguments after the call")


@pytest.mark.parametrize("f, make", CASES, ids=IDS)
@pytest.mark.parametrize("motion", ["joint", "split"])
def test_vjp(f, make, motion):
    args = make()
    _, primal_args = _after(f, args)
    got, vjp_args = _after(tangent.autodiff(f, motion=motion), args + (0.5,))
    assert_close(got, 0.5 * _fd(f, args), rtol=1e-5, atol=1e-6)
    assert_close(list(vjp_args[:-1]), list(primal_args), rtol=1e-12, atol=1e-12, what="arguments after the call")


@pytest.mark.parametrize("f, make", CASES, ids=IDS)
@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_jvp(f, make, optimized):
    args = make()
    _, primal_args = _after(f, args)
    direction = RNG.standard_normal(np.shape(args[0])) if np.ndim(args[0]) else 0.9
    got, jvp_args = _after(tangent.jvp(f, optimized=optimized), args + (direction,))
    expected = float(np.sum(_fd(f, args) * direction))
    assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert_close(list(jvp_args[:-1]), list(primal_args), rtol=1e-12, atol=1e-12, what="arguments after the call")


@pytest.mark.parametrize("f, make", CASES, ids=IDS)
def test_hvp(f, make):
    args = make()
    v = RNG.standard_normal(np.shape(args[0])) if np.ndim(args[0]) else 0.9
    got = tangent.hvp(f)(*copy.deepcopy(args), v)
    g = tangent.grad(f)
    eps = 1e-5
    plus = copy.deepcopy(args)
    minus = copy.deepcopy(args)
    plus = (plus[0] + eps * v,) + plus[1:]
    minus = (minus[0] - eps * v,) + minus[1:]
    assert_close(got, (g(*plus) - g(*minus)) / (2 * eps), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("f", [loss_fill, scale_number, number_alias_rebinds])
def test_reverse_over_reverse(f):
    x = 0.7 if f is loss_fill else np.array([0.3, -0.2, 0.9])
    if f is loss_fill:
        second = tangent.grad(tangent.grad(f))(x)
        g = tangent.grad(f)
        assert_close(second, (g(x + 1e-5) - g(x - 1e-5)) / 2e-5, rtol=1e-5, atol=1e-6)
    else:
        hv = tangent.vjp(tangent.grad(f))(x, 1.0, np.ones(3))
        assert_close(hv, tangent.hvp(f)(x, np.ones(3)), rtol=1e-8, atol=1e-10)


def test_appends_to_the_callers_list_once():
    x = RNG.standard_normal(3)
    log = [np.zeros(3)]
    appends_to_its_argument(x, log)
    assert len(log) == 2
    mine = [np.zeros(3)]
    g = tangent.grad(appends_to_its_argument)(x, mine)
    assert len(mine) == 2 and np.allclose(mine[1], 2.0 * x)
    assert_close(g, 4.0 * x, rtol=1e-12, atol=1e-12)


# --- refused: memory another name still reads, not through a view ---------------------------


def item_of_a_list_changed_by_a_helper(x, W):
    acts = [x]
    acts.append(acts[0] @ W)
    inplace_tanh(acts[1])
    return np.sum(acts[1])


def row_of_a_list_scaled(x):
    rows = [x * 1.0, x * 2.0]
    for row in rows:
        row *= 2.0
    return np.sum(rows[0] * rows[1])


def view_made_by_a_helper(x):
    v = x * 1.0
    head = _head_of(v)
    v *= 3.0
    return np.sum(head * head)


def _head_of(v):
    return v[:2]


def view_whose_shape_list_changed(x):
    # Making `w` again after `v` changes would give another shape: not kept in step.
    v = x * 1.0
    s = [2, 2]
    w = v.reshape(s)
    s[0] = 4
    s[1] = 1
    v *= 2.0
    return np.sum(w ** 2)


@pytest.mark.parametrize(
    "f, args, line",
    [
        (item_of_a_list_changed_by_a_helper, (np.array([0.5, -0.3]), np.ones((2, 2))), "inplace_tanh(acts[1])"),
        (row_of_a_list_scaled, (np.array([0.5, -0.3]),), "row *= 2.0"),
        (view_made_by_a_helper, (np.array([0.5, -0.3, 0.8]),), "v *= 3.0"),
        (view_whose_shape_list_changed, (np.arange(4.0),), "v *= 2.0"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
@pytest.mark.parametrize("mode", ["grad", "jvp"])
def test_changes_seen_through_another_name_are_refused(f, args, line, mode):
    with pytest.raises(tangent.UnsupportedError) as info:
        if mode == "grad":
            tangent.grad(f)(*copy.deepcopy(args))
        else:
            tangent.jvp(f)(*copy.deepcopy(args), np.ones_like(args[0]))
    message = str(info.value)
    assert line in message and "test_inplace.py" in message, message


def test_alias_of_a_number_changed_is_differentiated():
    # The same code as `alias_then_changed`, given a number: `a += 1.0` makes a new value.
    def f(x):
        a = x * 1.0
        b = a
        a += 1.0
        return b * b + a

    assert_close(tangent.grad(f)(0.3), 2 * 0.3 + 1.0, rtol=1e-12, atol=1e-12)


def test_out_with_where_is_refused():
    def f(x):
        a = x * 1.0
        np.exp(a, out=a, where=a > 0)
        return np.sum(a)

    with pytest.raises(tangent.UnsupportedError, match="where="):
        tangent.grad(f)


# --- calls Tangent does not know, methods, views of views ----------------------------------


def _normalize_in_place(h):
    h /= np.linalg.norm(h)


def _looks_at(h):
    return float(np.max(h))


TOOLS = {"normalize": _normalize_in_place, "look": _looks_at}


def unknown_call_changes_a_value(w, x):
    h = np.tanh(x * w)
    tool = TOOLS["normalize"]
    tool(h)
    return np.sum(h)


def unknown_call_only_reads(w, x):
    h = np.tanh(x * w)
    tool = TOOLS["look"]
    tool(h)
    return np.sum(h * h)


def test_an_unknown_call_changing_a_value_is_refused_at_its_line():
    w, x = np.array([0.5, 0.2]), np.array([1.0, 2.0])
    with pytest.raises(tangent.UnsupportedError, match=r"test_inplace.py:\d+: `tool\(h\)` changed in place"):
        tangent.grad(unknown_call_changes_a_value)(w, x)
    with pytest.raises(tangent.UnsupportedError, match="changed in place"):
        tangent.jvp(unknown_call_changes_a_value)(w, x, np.ones(2))


def test_an_unknown_call_that_only_reads_is_differentiated():
    w, x = np.array([0.5, 0.2]), np.array([1.0, 2.0])
    assert_close(tangent.grad(unknown_call_only_reads)(w, x), _fd(unknown_call_only_reads, (w, x)), rtol=1e-5, atol=1e-6)


class Noisy:
    def __init__(self, W, seed):
        self.W = W
        self.rs = np.random.RandomState(seed)
        self.s = 1.5

    def jitter(self, h):
        return h + 0.1 * self.rs.randn(*np.shape(h))

    def scale_(self, a):
        a *= self.s

    def loss(self, x):
        h = self.jitter(x @ self.W)
        self.scale_(h)
        return np.sum(np.tanh(h) ** 2)


def test_methods_draw_once_and_write_into_their_arguments():
    W = RNG.standard_normal((3, 2))
    x = RNG.standard_normal(3)
    primal = Noisy(W, 5)
    value = primal.loss(x)
    after_primal = primal.rs.randn()
    model = Noisy(W, 5)
    g, got_value = tangent.grad(model.loss, preserve_result=True)(x)
    assert_close(got_value, value, rtol=1e-12, atol=1e-12, what="value")
    assert model.rs.randn() == after_primal, "the gradient drew a different number of random numbers"

    def fresh_loss(x):
        return Noisy(W, 5).loss(x)

    assert_close(g, _fd(fresh_loss, (x,)), rtol=1e-5, atol=1e-6)
    direction = RNG.standard_normal(3)
    model = Noisy(W, 5)
    jv = tangent.jvp(model.loss)(x, direction)
    assert model.rs.randn() == after_primal
    assert_close(jv, float(np.dot(g, direction)), rtol=1e-5, atol=1e-6)


def spread_shapes(x, shape, seed):
    rs = np.random.RandomState(seed)
    y = x.reshape(*shape)
    noise = rs.randn(*x.shape) + rs.rand(*np.shape(x))
    return np.sum(np.sin(y) ** 2) + np.sum(noise * x)


def test_calls_that_spread_a_shape_of_unknown_length():
    x = RNG.standard_normal(6)
    g = tangent.grad(spread_shapes)(x, (2, 3), 3)
    assert_close(g, _fd(lambda x: spread_shapes(x, (2, 3), 3), (x,)), rtol=1e-5, atol=1e-6)
    jv = tangent.jvp(spread_shapes)(x, (2, 3), 3, np.ones(6))
    assert_close(jv, float(np.sum(g)), rtol=1e-6, atol=1e-8)


class RowNormalizer:
    def __init__(self, scale):
        self.scale = scale

    def _normalize(self, B):
        for row in B:
            row /= row.sum()

    def loss(self, A):
        B = np.exp(A) * self.scale
        head = B[:, :2]
        self._normalize(B)
        return np.sum(B ** 3) + np.sum(head * head)


def test_a_method_changing_rows_through_views_is_differentiated():
    model = RowNormalizer(1.5)
    A = RNG.standard_normal((3, 4))
    expected = _fd(model.loss, (A,))
    assert_close(tangent.grad(model.loss)(A.copy()), expected, rtol=1e-5, atol=1e-6)
    direction = RNG.standard_normal((3, 4))
    assert_close(tangent.jvp(model.loss)(A.copy(), direction), float(np.sum(expected * direction)), rtol=1e-5, atol=1e-6)
    g = tangent.grad(model.loss)
    eps = 1e-5
    expected_hv = (g(A + eps * direction) - g(A - eps * direction)) / (2 * eps)
    assert_close(tangent.hvp(model.loss)(A.copy(), direction), expected_hv, rtol=1e-4, atol=1e-6)


# A helper changing in place the object a conditional expression gives it (fuzz 1912:218):
# the caller writes whichever the expression is, a change the derivative must not miss.


def _subtract_into(p0, p1):
    p1 -= p0
    return np.sum(p1)


def _passes_either(p0, log):
    return _subtract_into(np.tanh(p0), (p0 if len(log) >= 2 else p0))


def _reads_after_conditional_write(y, log):
    v = np.tanh(y)
    s = _passes_either(v, log)
    return v[1] + s


def _passes_itself(p0, log):
    return _subtract_into(np.tanh(p0), p0)


def _reads_after_direct_write(y, log):
    v = np.tanh(y)
    s = _passes_itself(v, log)
    return v[1] + s


def test_a_write_through_a_conditional_argument_is_refused_never_missed():
    y = np.array([0.3, -0.4, 0.8])
    with pytest.raises(tangent.UnsupportedError, match="changes in place memory that `p0` shares"):
        tangent.grad(_reads_after_conditional_write)(y, [])
    got = tangent.grad(_reads_after_direct_write)(y, [])
    assert_close(got, numeric_grad(lambda y: _reads_after_direct_write(y, []), (y,)), rtol=1e-6, atol=1e-8)
