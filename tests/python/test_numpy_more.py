"""NumPy functions added to recipes/numpy.py: `average`, `nansum`, `nanmean`, `nanmax`,
`nanmin`, `ptp`, `sinc`, `cross`, `kron`, `linalg.multi_dot`, `linalg.matrix_power`,
`linalg.pinv`, `column_stack`, `row_stack`, `dstack`, `diff`, `convolve`, `correlate`, `interp`.

Every function below is differentiated through the engine with respect to each of its
differentiable arguments: `tangent.grad` (optimized and not) against central differences in
float64, `tangent.jvp` against the central difference along a random direction, and
`tangent.hvp` against the central difference of the gradient along a random direction; and,
where autograd is installed and has the function, gradient and Hessian-vector product against
autograd's. Functions under test live at module level and spell NumPy `np`, so that autograd's
twin of each is the same code with `np` bound to `autograd.numpy`.
"""

import types
import warnings

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad

RNG = np.random.default_rng(20250607)


def arr(*shape):
    return RNG.uniform(-1.0, 1.0, size=shape)


def pos(*shape):
    return RNG.uniform(0.5, 2.0, size=shape)


def wellconditioned(n):
    return arr(n, n) + 3.0 * np.eye(n)


def spd(n):
    w = wellconditioned(n)
    return w @ w.T


W3 = arr(3)
W23 = arr(2, 3)
W6 = arr(6)

# --------------------------------------------------------------------------- average


def average_axis(a):
    return np.sum(np.sin(np.average(a, axis=0)))


def average_all_keepdims(a):
    return np.sum(np.average(a, keepdims=True) * a)


def average_weights_along_axis(a, w):
    return np.sum(np.average(a, axis=1, weights=w) ** 2)


def average_weights_full(a, w):
    return np.average(a, weights=w) ** 2 + np.average(a * a, None, w)


def average_weights_positional(a, w):
    return np.sum(np.cos(np.average(a, 0, w)))


def average_weights_axes(a, w):
    return np.sum(np.average(a, axis=(2, 0), weights=w, keepdims=True) * a)


def average_weights_negative_axis(a, w):
    return np.sum(np.exp(np.average(a, axis=-1, weights=w, keepdims=True)))


# --------------------------------------------------------------------------- NaN-aware reductions


def nansum_axis(a):
    return np.sum(np.nansum(a, axis=1) ** 2) + np.nansum(a * 0.5)


def nanmean_axis(a):
    return np.sum(np.sin(np.nanmean(a, axis=0))) + np.nanmean(a) ** 2


def nanmax_nanmin(a):
    return np.sum(np.nanmax(a, axis=1) ** 2) - np.nanmin(a) ** 3


def ptp_axis(a):
    return np.sum(np.ptp(a, axis=1) ** 2) + np.ptp(a) * np.sum(a)


def ptp_keepdims(a):
    return np.sum(np.ptp(a, axis=0, keepdims=True) * a)


def sinc_weighted(x):
    return np.sum(np.sinc(x) * np.cos(x))


def sinc_scalar(x):
    return np.sinc(x) * x


# --------------------------------------------------------------------------- products


def cross_broadcast(a, b):
    return np.sum(np.cross(a, b) ** 2) + np.sum(np.cross(a, b) * a)


def cross_axis(a, b):
    return np.sum(np.sin(np.cross(a, b, axis=0)))


def cross_axes(a, b):
    return np.sum(np.cross(a, b, axisa=0, axisc=0) * W23.T[:, :1])


def cross_planar(a, b):
    return np.sum(np.cross(a, b) ** 2)


def cross_mixed(a, b):
    return np.sum(np.cross(a, b) * np.cross(b, a + 1.0))


def kron_matrices(a, b):
    return np.sum(np.sin(np.kron(a, b)))


def kron_vector_matrix(a, b):
    return np.sum(np.kron(a, b) ** 2)


def multi_dot_three(A, B, C):
    return np.sum(np.sin(np.linalg.multi_dot([A, B, C])))


def multi_dot_vectors(v, B, C, w):
    return np.tanh(np.linalg.multi_dot([v, B, C, w]))


def multi_dot_two(A, B):
    return np.sum(np.linalg.multi_dot((A, B)) ** 2)


def multi_dot_list(mats):
    return np.sum(np.exp(np.linalg.multi_dot(mats) * 0.5))


def matrix_power_cube(a):
    return np.sum(np.linalg.matrix_power(a, 3) * W3)


def matrix_power_inverse(a):
    return np.sum(np.sin(np.linalg.matrix_power(a, -2)))


def matrix_power_zero_one(a):
    return np.sum(np.linalg.matrix_power(a, 0) * a) + np.sum(np.linalg.matrix_power(a, n=1) ** 2)


def matrix_power_stack(a):
    return np.sum(np.linalg.matrix_power(a, 2) ** 2)


def pinv_square(a):
    return np.sum(np.sin(np.linalg.pinv(a)))


def pinv_rectangular(a):
    return np.sum(np.linalg.pinv(a) ** 2) + np.sum(np.linalg.pinv(a.T) * a)


def pinv_hermitian(a):
    return np.sum(np.linalg.pinv(a, hermitian=True) * W3)


# --------------------------------------------------------------------------- shapes


def column_stack_mixed(u, M):
    return np.sum(np.sin(np.column_stack([u, M, u * 2.0])))


def row_stack_rows(u, M):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.sum(np.row_stack([u, M]) ** 2 * np.arange(1.0, 4.0))


def dstack_mixed(A, B):
    return np.sum(np.cos(np.dstack((A, B, A * B))))


def dstack_vectors(u, v):
    return np.sum(np.dstack([u, v]) ** 3)


def atleast_shapes(x):
    return np.sum(np.atleast_2d(x) * W3) + np.sum(np.atleast_1d(x[0]) ** 2)


# --------------------------------------------------------------------------- differences, signals


def diff_second(a):
    return np.sum(np.diff(a, 2) ** 2)


def diff_axis(a):
    return np.sum(np.sin(np.diff(a, axis=0)))


def diff_prepend_append(a, p, q):
    return np.sum(np.diff(a, n=2, prepend=p, append=q) ** 2)


def convolve_modes(a, v):
    return (np.sum(np.convolve(a, v) ** 2) + np.sum(np.sin(np.convolve(a, v, 'same')))
            + np.sum(np.convolve(v, a, mode='valid') * 0.3))


def correlate_modes(a, v):
    return (np.sum(np.correlate(a, v) ** 2) + np.sum(np.sin(np.correlate(a, v, 'same')))
            + np.sum(np.correlate(v, a, mode='full') ** 2))


def interp_all(x, xp, fp):
    return np.sum(np.sin(np.interp(x, xp, fp)) * x)


def interp_bounds(x, fp, left, right):
    return np.sum(np.interp(x, XP, fp, left=left, right=right) ** 2)


XP = np.array([-1.0, -0.2, 0.5, 1.0])


def nan_at(a, *where):
    out = a.copy()
    for index in where:
        out[index] = np.nan
    return out


# (function, arguments, positions to differentiate, autograd has every function it calls)
CASES = [
    ("average_axis", average_axis, (arr(3, 4),), (0,), False),
    ("average_all_keepdims", average_all_keepdims, (arr(2, 3),), (0,), False),
    ("average_weights_along_axis", average_weights_along_axis, (arr(2, 3), pos(3)), (0, 1), False),
    ("average_weights_full", average_weights_full, (arr(2, 3), pos(2, 3)), (0, 1), False),
    ("average_weights_positional", average_weights_positional, (arr(3, 2), pos(3)), (0, 1), False),
    ("average_weights_axes", average_weights_axes, (arr(2, 3, 4), pos(4, 2)), (0, 1), False),
    ("average_weights_negative_axis", average_weights_negative_axis, (arr(2, 3), pos(2, 3)), (0, 1), False),
    ("nansum_axis", nansum_axis, (nan_at(arr(3, 4), (0, 1), (2, 3)),), (0,), False),
    ("nanmean_axis", nanmean_axis, (nan_at(arr(3, 4), (0, 1), (2, 3)),), (0,), False),
    ("nanmax_nanmin", nanmax_nanmin, (nan_at(arr(3, 4), (1, 2)),), (0,), False),
    ("ptp_axis", ptp_axis, (arr(3, 4),), (0,), False),
    ("ptp_keepdims", ptp_keepdims, (arr(3, 4),), (0,), False),
    # (autograd's sinc derivative is NaN at 0)
    ("sinc_weighted", sinc_weighted, (np.array([0.0, 2e-4, -0.3, 0.7, 1.0, -2.5]),), (0,), False),
    ("sinc_away_from_zero", sinc_weighted, (np.array([0.05, -0.3, 0.7, 1.0, -2.5]),), (0,), True),
    ("sinc_scalar", sinc_scalar, (0.37,), (0,), True),
    # (autograd's cross adjoints do not sum over broadcast axes nor handle 2-vectors)
    ("cross_broadcast", cross_broadcast, (arr(4, 3), arr(3)), (0, 1), False),
    ("cross_axis", cross_axis, (arr(3, 4), arr(3, 4)), (0, 1), True),
    ("cross_axes", cross_axes, (arr(3, 2), arr(2, 3)), (0, 1), True),
    ("cross_planar", cross_planar, (arr(4, 2), arr(2)), (0, 1), False),
    ("cross_mixed", cross_mixed, (arr(3, 2), arr(3, 3)), (0, 1), False),
    ("kron_matrices", kron_matrices, (arr(2, 3), arr(3, 2)), (0, 1), True),
    ("kron_vector_matrix", kron_vector_matrix, (arr(3), arr(2, 2)), (0, 1), True),
    ("multi_dot_three", multi_dot_three, (arr(2, 3), arr(3, 4), arr(4, 2)), (0, 1, 2), False),
    ("multi_dot_vectors", multi_dot_vectors, (arr(3), arr(3, 4), arr(4, 2), arr(2)), (0, 1, 2, 3), True),
    ("multi_dot_two", multi_dot_two, (arr(2, 3), arr(3)), (0, 1), True),
    ("multi_dot_list", multi_dot_list, ([arr(2, 3), arr(3, 3), arr(3, 2)],), (0,), False),
    ("matrix_power_cube", matrix_power_cube, (arr(3, 3),), (0,), False),
    ("matrix_power_inverse", matrix_power_inverse, (wellconditioned(3),), (0,), False),
    ("matrix_power_zero_one", matrix_power_zero_one, (arr(2, 2),), (0,), False),
    ("matrix_power_stack", matrix_power_stack, (arr(2, 3, 3),), (0,), False),
    ("pinv_square", pinv_square, (wellconditioned(3),), (0,), True),
    ("pinv_rectangular", pinv_rectangular, (arr(4, 2),), (0,), True),
    ("pinv_hermitian", pinv_hermitian, (spd(3),), (0,), False),
    ("column_stack_mixed", column_stack_mixed, (arr(3), arr(3, 2)), (0, 1), True),
    ("row_stack_rows", row_stack_rows, (arr(3), arr(2, 3)), (0, 1), False),
    ("dstack_mixed", dstack_mixed, (arr(2, 3), arr(2, 3)), (0, 1), False),
    ("dstack_vectors", dstack_vectors, (arr(3), arr(3)), (0, 1), True),
    ("atleast_shapes", atleast_shapes, (arr(3),), (0,), True),
    ("diff_second", diff_second, (arr(6),), (0,), True),
    ("diff_axis", diff_axis, (arr(3, 4),), (0,), True),
    ("diff_prepend_append", diff_prepend_append, (arr(5), 0.3, arr(2)), (0, 1, 2), False),
    ("convolve_modes", convolve_modes, (arr(5), arr(3)), (0, 1), False),
    ("correlate_modes", correlate_modes, (arr(3), arr(6)), (0, 1), False),
    ("interp_all", interp_all, (np.array([-1.4, -0.6, 0.1, 0.3, 0.9, 1.6]), XP.copy(), arr(4)), (0, 1, 2), False),
    ("interp_bounds", interp_bounds, (np.array([-1.4, 0.1, 0.7, 1.6]), arr(4), 0.4, -0.2), (0, 1, 2, 3), False),
]
def _numpy_has(name):
    """Whether the installed NumPy still computes case ``name``: NumPy 2.5 dropped
    `row_stack` and the cross product of 2-vectors (the recipes stay for older NumPy)."""
    if name.startswith("row_stack"):
        return hasattr(np, "row_stack")
    if name in ("cross_planar", "cross_mixed"):
        try:
            np.cross(np.ones(2), np.ones(2))
        except ValueError:
            return False
    return True


PARAMS = [
    pytest.param(
        *c[1:],
        id=c[0],
        marks=[] if _numpy_has(c[0]) else [pytest.mark.skip(reason=f"NumPy {np.__version__} no longer computes {c[0]}")],
    )
    for c in CASES
]

pytestmark = [
    # The planar (2-vector) cross product is deprecated by NumPy 2 but still computed.
    pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors:DeprecationWarning"),
    # autograd's Hessian-vector product of a function linear in the argument.
    pytest.mark.filterwarnings("ignore:Output seems independent of input:UserWarning"),
]


def copied(args):
    return [a.copy() if isinstance(a, np.ndarray) else ([x.copy() for x in a] if isinstance(a, list) else a)
            for a in args]


def direction(value, rng):
    """A random direction shaped like `value` (a list of arrays for a list)."""
    if isinstance(value, list):
        return [direction(v, rng) for v in value]
    if isinstance(value, np.ndarray):
        return rng.normal(size=value.shape)
    return float(rng.normal())


def moved(value, d, h):
    if isinstance(value, list):
        return [moved(v, e, h) for v, e in zip(value, d)]
    return value + h * d


def dot(a, b):
    if isinstance(a, list):
        return sum(dot(u, v) for u, v in zip(a, b))
    return float(np.sum(np.asarray(a) * np.asarray(b)))


def at(args, p, value):
    out = copied(args)
    out[p] = value
    return out


def finite_mask(value):
    """Where the argument holds numbers (NaN entries have no derivative to compare)."""
    if isinstance(value, list):
        return [finite_mask(v) for v in value]
    return np.isfinite(value)


def masked(value, mask):
    if isinstance(value, list):
        return [masked(v, m) for v, m in zip(value, mask)]
    return np.where(mask, value, 0.0)


@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "plain"])
@pytest.mark.parametrize("f, args, wrt, _", PARAMS)
def test_grad_matches_finite_differences(f, args, wrt, _, optimized):
    grads = tangent.grad(f, wrt=wrt, optimized=optimized)(*copied(args))
    expected = numeric_grad(f, copied(args), wrt)
    if len(wrt) == 1:
        grads, expected = (grads,), (expected,)
    for p, g, e in zip(wrt, grads, expected):
        mask = finite_mask(args[p])
        assert_close(masked(g, mask), masked(e, mask), rtol=1e-5, atol=1e-6, what=f"d{f.__name__}/d arg {p}")


@pytest.mark.parametrize("f, args, wrt, _", PARAMS)
def test_jvp_matches_finite_differences(f, args, wrt, _):
    rng = np.random.default_rng(3)
    for p in wrt:
        d = masked(direction(args[p], rng), finite_mask(args[p]))
        got = tangent.jvp(f, wrt=(p,))(*copied(args), d)
        h = 1e-6
        expected = (f(*at(args, p, moved(args[p], d, h))) - f(*at(args, p, moved(args[p], d, -h)))) / (2 * h)
        assert_close(got, expected, rtol=1e-5, atol=1e-6, what=f"jvp of {f.__name__} along arg {p}")


@pytest.mark.parametrize("f, args, wrt, _", PARAMS)
def test_hvp_matches_finite_differences_of_the_gradient(f, args, wrt, _):
    rng = np.random.default_rng(4)
    for p in wrt:
        mask = finite_mask(args[p])
        v = masked(direction(args[p], rng), mask)
        got = tangent.hvp(f, wrt=(p,))(*copied(args), v)
        df = tangent.grad(f, wrt=(p,))
        h = 1e-5
        up, down = df(*at(args, p, moved(args[p], v, h))), df(*at(args, p, moved(args[p], v, -h)))
        expected = _difference(up, down, h)
        assert_close(masked(got, mask), masked(expected, mask), rtol=1e-4, atol=1e-5,
                     what=f"hvp of {f.__name__} in arg {p}")


def _difference(up, down, h):
    if isinstance(up, list):
        return [_difference(u, d, h) for u, d in zip(up, down)]
    return (np.asarray(up) - np.asarray(down)) / (2 * h)


# --------------------------------------------------------------------------- autograd


def _autograd_twin(f):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp

    namespace = dict(f.__globals__, np=anp)
    return autograd, types.FunctionType(f.__code__, namespace, f.__name__, f.__defaults__, f.__closure__)


@pytest.mark.parametrize("f, args, wrt, has_autograd", [p for p in PARAMS if p.values[3]])
def test_against_autograd(f, args, wrt, has_autograd):
    autograd, twin = _autograd_twin(f)
    rng = np.random.default_rng(6)
    for p in wrt:
        expected = autograd.grad(twin, p)(*copied(args))
        got = tangent.grad(f, wrt=(p,))(*copied(args))
        assert_close(got, expected, rtol=1e-9, atol=1e-10, what=f"gradient of {f.__name__} in arg {p} vs autograd")
        v = direction(args[p], rng)
        expected = autograd.hessian_vector_product(twin, p)(*copied(args), v)
        got = tangent.hvp(f, wrt=(p,))(*copied(args), v)
        assert_close(got, expected, rtol=1e-8, atol=1e-9, what=f"hvp of {f.__name__} in arg {p} vs autograd")


# --------------------------------------------------------------------------- special cases


def average_returned(a, w):
    avg, total = np.average(a, weights=w, returned=True)
    return avg


def interp_periodic(x, fp):
    return np.sum(np.interp(x, XP, fp, period=2.5))


def test_refused_cases_give_nan_not_a_wrong_derivative():
    """`average(..., returned=True)` and `interp(..., period=...)` are not handled: their
    derivatives are NaN (as for the unhandled matrix norms), in both modes."""
    a, w = arr(4), pos(4)
    da, dw = tangent.grad(average_returned, wrt=(0, 1))(a, w)
    assert np.all(np.isnan(da)) and np.all(np.isnan(dw))
    assert np.isnan(tangent.jvp(average_returned)(a, w, np.ones(4)))
    x, fp = np.array([-0.5, 0.2]), arr(4)
    assert np.all(np.isnan(tangent.grad(interp_periodic, wrt=(1,))(x, fp)))
    assert np.isnan(tangent.jvp(interp_periodic, wrt=(1,))(x, fp, np.ones(4)))


def correlate_same(a, v):
    return np.sum(np.correlate(a, v, 'same') * np.arange(1.0, max(len(a), len(v)) + 1.0))


def convolve_same(a, v):
    return np.sum(np.convolve(a, v, 'same') * np.arange(1.0, max(len(a), len(v)) + 1.0))


@pytest.mark.parametrize("n, m", [(5, 3), (3, 5), (4, 4), (4, 7), (7, 4), (2, 6), (6, 2), (1, 3), (3, 1)])
def test_convolve_and_correlate_same_windows(n, m):
    """The window of mode 'same' within the full result depends on which operand is shorter
    (and differs between convolve and correlate): every pair of lengths, both operands."""
    a, v = arr(n), arr(m)
    for f in (convolve_same, correlate_same):
        expected = numeric_grad(f, [a, v], (0, 1))
        assert_close(tangent.grad(f, wrt=(0, 1))(a, v), expected, what=f.__name__)


def nan_reductions_keep_nan_out(a):
    return np.nansum(a * 2.0) + np.nanmean(a, axis=0)[1]


def test_nan_entries_get_zero_derivatives():
    a = nan_at(arr(3, 2), (0, 0), (2, 1))
    g = tangent.grad(nan_reductions_keep_nan_out)(a)
    assert g[0, 0] == 0.0 and g[2, 1] == 0.0 and np.all(np.isfinite(g))
    assert_close(g, np.where(np.isnan(a), 0.0, 2.0 + np.array([[0.0, 0.5]] * 3)))
