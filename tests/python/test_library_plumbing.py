"""The plumbing library functions wrap their arithmetic in (issue 14, item 4).

Validation helpers and array-API utilities of scikit-learn and SciPy are written with guard
clauses (`if not arrays: return ...`), `try` blocks whose handlers turn one error into another,
`with warnings.catch_warnings()` around filters, a namespace handed in as `xp`, conversions
with `tuple(...)`, `np.result_type(*dtypes)` over a list of unknown length, flags choosing how
many values come back (`return X, norms` or `return X`), and validators that may change what
they are given on paths dense arrays never take. The functions below are written that way (in
this file, so each construct is tested on its own); every gradient is compared with central
finite differences, JVPs with directional differences, and HVPs with differences of gradients.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad


# ---------------------------------------------------------------- helpers written as libraries


def first_floating(*arrays, xp):
    """Two exits, a spread of unknown length into a function without a derivative."""
    dtypes = [a.dtype for a in arrays if xp.isdtype(a.dtype, "real floating")]
    if dtypes:
        return xp.result_type(*dtypes)
    return xp.asarray(0.0).dtype


def as_arrays(*arrays, xp):
    """Guard clauses, a conversion of a list by `tuple`, a helper's `try` that only raises."""
    if not arrays:
        return ()
    converted = []
    for a in arrays:
        try:
            converted.append(xp.asarray(a, dtype=first_floating(a, xp=xp)))
        except TypeError as error:
            raise ValueError("not an array") from error
    return converted[0] if len(converted) == 1 else tuple(converted)


def scaled_rows(x, scale, *, return_norm=False):
    """How many values come back depends on a flag."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        norms = np.sqrt(np.sum(x * x, axis=1)) + scale
    out = x / norms[:, None]
    if return_norm:
        return out, norms
    else:
        return out


def squash(v, *cuts):
    """Returns in `if` branches at several depths, and falling through to the last one."""
    if not cuts:
        return v
    c = cuts[0]
    if c > 1.0:
        return v * c
    elif c < 0.0:
        t = v - c
        return t * t
    return v + c


def sum_of_exp(x, xp):
    return xp.sum(xp.exp(x) * x, axis=0)


def validate(x, copy=False):
    """Gives its parameter a new value and may change it in place, only on a path (a list
    given) that makes a copy first: for arrays the caller's object is never changed."""
    if isinstance(x, list):
        x = np.array(x)
        x *= 1.0
    elif copy:
        x = x.copy()
    return x


def validate_in_place(x, scale):
    """Changes the caller's array whenever a flag asks (not on every path)."""
    if scale != 1.0:
        x *= scale
    x = np.asarray(x)
    return x


def always_in_place(x):
    """Changes the caller's array on every call, then names another value `x`."""
    x *= 2.0
    x = x + 1.0
    return x


def always_written(x):
    """Writes into the caller's array on every call, then names another value `x`."""
    x[0] = 0.0
    x = x * 2.0
    return x


# ---------------------------------------------------------------- differentiated functions


def loss_with_spread_helpers(w, y):
    a, b = as_arrays(w, y, xp=np)
    return np.sum((a - b) ** 2 * np.exp(a))


def loss_single_array(w):
    a = as_arrays(w, xp=np)
    return np.sum(np.sin(a) * a)


def loss_norm_flag(x):
    rows, norms = scaled_rows(x, 0.5, return_norm=True)
    only = scaled_rows(x * 2.0, 0.25)
    return np.sum(rows * only) + np.sum(norms**2)


def loss_guard_clauses(x):
    return (
        np.sum(squash(x, 2.0))
        + np.sum(squash(x, -0.5))
        + np.sum(squash(x, 0.5))
        + np.sum(squash(x))
    )


def loss_nested_early_return(x):
    def inner(a):
        if a[0] > 0:
            return np.sin(a)
        b = a * 3.0
        return b**2

    return np.sum(inner(x)) + np.sum(inner(-x))


def loss_namespace_parameter(x):
    return sum_of_exp(x, np) * 2.0


def loss_validated(x):
    v = validate(x)
    return np.sum(np.tanh(v) * v)


def loss_validated_in_place(x, scale):
    v = validate_in_place(x, scale)
    return np.sum(v**2)


def loss_tuple_list(x):
    parts = [x * 2.0, np.sin(x)]
    a, b = tuple(parts)
    c = list((a, b))
    rows = tuple(np.outer(x, x))
    return np.sum(a * b) + np.sum(c[0]) + np.sum(rows[1] ** 2)


def loss_try_raises(x):
    try:
        w = np.exp(x)
    except FloatingPointError:
        raise
    else:
        w = w + 1.0
    return np.sum(np.log(w))


def softmax_rows(X, copy=True):
    """scikit-learn's softmax: a copy changed in place, `np.exp` writing into it through
    `out=np.asarray(X)`."""
    if copy:
        X = np.array(X, dtype=float)
    max_prob = np.max(X, axis=1).reshape((-1, 1))
    X -= max_prob
    np.exp(X, out=np.asarray(X))
    sum_prob = np.sum(X, axis=1).reshape((-1, 1))
    X /= sum_prob
    return X


def loss_softmax(x):
    return np.sum(softmax_rows(x * 1.5) * np.arange(x.size).reshape(x.shape))


def loss_average_unweighted(x, w):
    return np.average(x) + np.average(x * w, weights=None)


X = np.array([[0.3, -0.7, 1.1], [0.5, 0.2, -0.4]])
V = np.array([0.3, 0.7, -1.2])

CASES = [
    (loss_with_spread_helpers, (V, np.array([0.1, 0.2, 0.3]))),
    (loss_single_array, (V,)),
    (loss_norm_flag, (X,)),
    (loss_guard_clauses, (V,)),
    (loss_nested_early_return, (V,)),
    (loss_namespace_parameter, (V,)),
    (loss_validated, (V,)),
    (loss_tuple_list, (V,)),
    (loss_try_raises, (V,)),
    (loss_average_unweighted, (V, np.array([1.0, 2.0, 3.0]))),
    (loss_softmax, (X,)),
]
IDS = [f.__name__ for f, _ in CASES]


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f, args", CASES, ids=IDS)
def test_gradient(f, args, optimized):
    got = tangent.grad(f, optimized=optimized)(*args)
    assert_close(got, numeric_grad(f, args), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("f, args", CASES, ids=IDS)
def test_jvp(f, args):
    x = args[0]
    direction = np.linspace(0.4, -0.6, x.size).reshape(x.shape)
    got = tangent.jvp(f)(*args, direction)
    eps = 1e-6
    expected = (f(x + eps * direction, *args[1:]) - f(x - eps * direction, *args[1:])) / (2 * eps)
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("f, args", CASES, ids=IDS)
def test_hvp(f, args):
    x = args[0]
    direction = np.linspace(0.4, -0.6, x.size).reshape(x.shape)
    got = tangent.hvp(f)(*args, direction)
    grad = tangent.grad(f)
    eps = 1e-5
    expected = (grad(x + eps * direction, *args[1:]) - grad(x - eps * direction, *args[1:])) / (2 * eps)
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_the_namespace_parameter_is_checked_when_the_derivative_runs():
    import math

    def loss(x, xp):
        return xp.sum(xp.asarray(x, dtype=xp.float64) ** 2)

    assert_close(tangent.grad(loss)(V, np), 2 * V)
    with pytest.raises(tangent.UnsupportedError, match="array namespace `xp` as NumPy"):
        tangent.grad(loss)(V, math)


def test_an_array_named_xp_is_not_a_namespace():
    def interp(x, xp, fp):
        return np.sum(np.interp(x, xp, fp) * xp[0])

    grid = np.array([0.0, 1.0, 2.0])
    values = np.array([0.5, 1.5, 0.2])
    args = (np.array([0.3, 1.4]), grid, values)
    got = tangent.grad(interp, wrt=(0, 2))(*args)
    expected = numeric_grad(interp, args, wrt=(0, 2))
    for g, e in zip(got, expected):
        assert_close(g, e, rtol=1e-6, atol=1e-8)


def test_warning_filters_set_in_a_block_stay_in_it():
    before = list(warnings.filters)
    tangent.grad(loss_norm_flag)(X)
    tangent.jvp(loss_norm_flag)(X, np.ones_like(X))
    assert warnings.filters == before


def test_a_try_with_a_handler_that_does_not_raise_is_refused_at_its_line():
    def fallback(x):
        try:
            w = np.exp(x)
        except FloatingPointError:
            w = x
        return np.sum(w)

    with pytest.raises(tangent.UnsupportedError, match="handlers only raise") as info:
        tangent.grad(fallback)(V)
    assert "try:" in str(info.value)


def test_a_helper_that_may_change_its_argument_is_checked_when_it_runs():
    x = V.copy()
    assert_close(tangent.grad(loss_validated_in_place)(x, 1.0), numeric_grad(loss_validated_in_place, (x, 1.0)))
    assert np.array_equal(x, V)
    with pytest.raises(tangent.UnsupportedError, match="changed in place what it was given"):
        tangent.grad(loss_validated_in_place)(V.copy(), 3.0)


def loss_always_in_place(x):
    return np.sum(always_in_place(x))


def loss_always_written(x):
    return np.sum(always_written(x))


def test_a_helper_that_always_changes_its_argument_is_refused():
    # `x op= v`: a number is not changed in place (the caller's stays as it was).
    assert_close(tangent.grad(loss_always_in_place)(0.5), 2.0)
    with pytest.raises(tangent.UnsupportedError, match=r"changes its argument `x` in place \(`x op= ...`"):
        tangent.grad(loss_always_in_place)(V.copy())
    with pytest.raises(tangent.UnsupportedError, match="changes its argument `x` in place and also gives"):
        tangent.grad(loss_always_written)


def refused_in_inlined_helper(v, *cuts):
    if cuts and cuts[0] == "sparse":
        try:
            dense = v.toarray()
        except AttributeError:
            dense = v
        return np.sum(dense)
    return np.sum(np.cos(v) * v)


def loss_calling_helper_with_refused_branch(x):
    return refused_in_inlined_helper(x, 2.0) * 3.0


def loss_taking_refused_branch(x):
    return refused_in_inlined_helper(x, "sparse")


def test_a_branch_of_an_inlined_helper_is_left_out_and_raises_only_if_it_runs():
    got = tangent.grad(loss_calling_helper_with_refused_branch)(V)
    assert_close(got, numeric_grad(loss_calling_helper_with_refused_branch, (V,)))
    with pytest.raises(tangent.UnsupportedError, match="this branch ran") as info:
        tangent.grad(loss_taking_refused_branch)(V)
    assert "test_library_plumbing.py" in str(info.value)


# ---------------------------------------------------------------- results that carry no derivative


def device_of(a):
    if isinstance(a, np.ndarray) or not hasattr(a, "device"):
        return "cpu"
    return a.device


def doubled_rows(a):
    n = a.shape[0]
    return n * 2


def zeros_filled(u):
    """Starts from an array without a derivative (`np.zeros_like`) and writes into it: the
    result carries `u`'s derivative."""
    lap = np.zeros_like(u)
    lap[1:-1] = u[2:] - 2.0 * u[1:-1] + u[:-2]
    return lap


def zeros_handed_on(u):
    out = np.zeros_like(u)
    np.copyto(out, u * 3.0)
    return out


def on_device(a, device=None):
    if device == "cpu":
        return a * 2.0
    return a


def loss_inert_helpers(x):
    d = device_of(x)
    n = doubled_rows(x)
    return np.sum(on_device(x, device=d) ** 2) * n + np.sum(zeros_filled(x) ** 2) + np.sum(zeros_handed_on(x) * x)


def test_helpers_whose_results_carry_no_derivative_are_called_as_written():
    args = (np.array([0.3, -0.7, 1.1, 0.4]),)
    assert_close(tangent.grad(loss_inert_helpers)(*args), numeric_grad(loss_inert_helpers, args))
    direction = np.array([0.5, -0.2, 0.1, 0.3])
    eps = 1e-6
    expected = (loss_inert_helpers(args[0] + eps * direction) - loss_inert_helpers(args[0] - eps * direction)) / (2 * eps)
    assert np.isclose(tangent.jvp(loss_inert_helpers)(*args, direction), expected, rtol=1e-6)
    import inspect

    generated = tangent.grad(loss_inert_helpers)
    with open(inspect.getsourcefile(getattr(generated, "__wrapped__", generated))) as file:
        source = file.read()
    # Called as the function calls them, with no derivative of their own.
    assert "d = device_of(x)" in source and "n = doubled_rows(x)" in source
    assert "zeros_filled_forward" in source and "zeros_handed_on_forward" in source


def exp_into(X):
    np.exp(X, out=np.asarray(X))
    return X


def loss_exp_into_list(x):
    # A list: `np.asarray` copies it, the exponentials go into the copy, the list is unchanged.
    return np.sum(np.asarray(exp_into([x[0], x[1]])))


def test_out_into_asarray_of_a_non_array_is_refused_when_it_runs():
    x = np.array([[0.5, 1.0], [0.2, -0.3]])
    assert np.isclose(loss_exp_into_list(x), np.sum(x))
    with pytest.raises(tangent.UnsupportedError, match="is not `X` itself"):
        tangent.grad(loss_exp_into_list)(x)


# ---------------------------------------------------------------- **kwargs read as a dict


def with_options(x, **options):
    total = 0.0
    for k in sorted(options):
        total = total + options[k]
    if options:
        return x * total
    return x


def popping_options(x, **options):
    scale = options.pop("scale", 1.0)
    return with_options(x, **options) * scale


def loss_options(x):
    return np.sum(with_options(x, a=2.0, b=0.5) ** 2) + np.sum(with_options(x))


def loss_popping_options(x):
    return np.sum(popping_options(x, scale=3.0, a=2.0))


def test_kwargs_read_as_a_dict():
    args = (V,)
    assert_close(tangent.grad(loss_options)(*args), numeric_grad(loss_options, args))


def test_kwargs_changed_by_the_helper_is_not_specialized():
    # Each use would read a fresh dict: refused rather than differentiated so.
    with pytest.raises(tangent.UnsupportedError, match=r"\*\*kwargs"):
        tangent.grad(loss_popping_options)(V)


# ---------------------------------------------------------------- recursion through a specialized helper


def nested_sum(obj, convert):
    """Recursive, given a function, with returns in branches (numpy's `_inspect.strseq`):
    specialized once at the call, its call of itself left a call (inlining it again and
    again used to exhaust the memory of a whole-tree build)."""
    if type(obj) in [list, tuple]:
        return np.sum([nested_sum(o, convert) for o in obj])
    return np.sum(convert(obj))


def loss_recursive_helper(x):
    return nested_sum([x, x * 2.0], np.sin)


def test_a_recursive_helper_given_a_function_is_refused_at_its_line():
    with pytest.raises(tangent.UnsupportedError, match="`nested_sum` calls itself") as info:
        tangent.grad(loss_recursive_helper)(V)
    assert info.value.line > 0
