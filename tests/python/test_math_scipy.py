"""End to end: functions of `math` and `scipy.special` differentiated by the engine.

The small functions below are differentiated with `tangent.grad` (reverse mode), `tangent.jvp`
(forward mode) and `tangent.hvp` (forward over reverse, so the generated gradients, with their
`tangent.digamma` / `tangent.polygamma` calls, are differentiated again), and compared with
central finite differences in float64. The runtime's special functions are checked against
known values and, when SciPy is installed, against SciPy. Tests that need SciPy skip without
it; the generated code itself never imports SciPy.
"""
import inspect
import math
from math import lgamma

import numpy as np
import pytest
import tangent
from gradcheck import assert_close, check_grad

try:
    import scipy.special
    import scipy.special as sc
    from scipy import special
    from scipy.special import expit, gammaln, log_softmax, logsumexp, softmax
except ImportError:  # the scipy tests skip
    scipy = None

needs_scipy = pytest.mark.skipif(scipy is None, reason="scipy is not installed")

EULER_GAMMA = 0.57721566490153286061


# --------------------------------------------------------------------------- math functions


def gamma_family(x):
    return math.lgamma(x) * math.gamma(x / 2.0) + lgamma(x + 1.0)


def log_beta(a, b):
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def gamma_of_negative(x):
    # Gamma and log|Gamma| between the poles -2 and -1.
    return math.gamma(x) + 3.0 * math.lgamma(x)


def hypot_forms(x, y):
    return math.hypot(x, y, 2.0 * x) + math.hypot(y) + math.hypot(x, y) + math.hypot(x, 1.0, y, 0.5)


def log_pow_atan2(x, b):
    return math.log(x, b) + math.pow(x, b) + math.atan2(x, b) + math.log(x)


def over_sequences(x, y):
    return math.prod([x, y, 2.0]) + math.fsum([x, y, x * y]) + math.dist((x, y), (1.0, -2.0))


def prod_with_start(x, y):
    return math.prod((x, x, y), start=y)


def piecewise(x):
    frac, whole = math.modf(3.0 * x)
    m, e = math.frexp(x)
    return (math.copysign(x, -1.0) + math.ldexp(x, 3) + math.remainder(5.0 * x, 2.0)
            + frac * whole + m * e + math.nextafter(x, 0.0))


def lgamma_in_a_loop(x):
    total = 0.0
    for k in range(3):
        total = total + math.lgamma(x + k) * math.erf(x / (k + 1.0))
    return total


def sumprod_of(x, y):
    return math.sumprod([x, y, 1.0], [y, 2.0, x])


MATH_CASES = [
    pytest.param(gamma_family, (2.3,), (0,), id="gamma_family"),
    pytest.param(gamma_family, (0.4,), (0,), id="gamma_family-small"),
    pytest.param(log_beta, (1.7, 0.6), (0, 1), id="log_beta"),
    pytest.param(gamma_of_negative, (-1.4,), (0,), id="gamma_of_negative"),
    pytest.param(hypot_forms, (1.2, -0.5), (0, 1), id="hypot_forms"),
    pytest.param(log_pow_atan2, (2.5, 1.7), (0, 1), id="log_pow_atan2"),
    pytest.param(over_sequences, (1.5, -0.7), (0, 1), id="over_sequences"),
    pytest.param(prod_with_start, (1.3, -0.8), (0, 1), id="prod_with_start"),
    pytest.param(piecewise, (1.37,), (0,), id="piecewise"),
    pytest.param(lgamma_in_a_loop, (1.9,), (0,), id="lgamma_in_a_loop"),
    pytest.param(sumprod_of, (1.5, -0.7), (0, 1), id="sumprod",
                 marks=pytest.mark.skipif(not hasattr(math, "sumprod"), reason="math.sumprod needs Python 3.12")),
]


# --------------------------------------------------------------------------- scipy.special


def lse_axis(x):
    return np.sum(logsumexp(x, axis=1) ** 2)


def lse_keepdims(x):
    return np.sum(logsumexp(x, axis=0, keepdims=True) * x)


def lse_axes(x):
    return np.sum(np.sin(logsumexp(x, axis=(0, 2))))


def lse_all(x):
    return logsumexp(x)


def lse_weights(x, w):
    # The second weights (3, 3) broadcast x (3,) up.
    return logsumexp(x, b=w) + np.sum(logsumexp(x, axis=0, b=np.outer(w, w)))


def expit_gammaln(x):
    return np.sum(scipy.special.expit(x) * gammaln(x))


def softmaxes(x):
    return np.sum(softmax(x, axis=-1) * np.arange(3.0)) + np.sum(log_softmax(x, axis=0) ** 2) + np.sum(softmax(x) * x)


def special_module(x):
    y = special.erf(x) + special.erfc(2.0 * x) + special.logit(expit(x) * 0.5 + 0.2)
    y = y + special.xlogy(x, x + 2.0) + special.xlog1py(x * x, x) + special.entr(x + 1.5)
    return np.sum(y * special.log_expit(x) + special.ndtr(x) * special.log_ndtr(-x))


def inverses(p):
    return np.sum(special.erfinv(p) ** 2 + special.erfcinv(p + 0.5) + special.ndtri(p * 0.5 + 0.5) * special.erfcx(p))


def polygammas(x):
    return np.sum(scipy.special.digamma(x) * scipy.special.polygamma(1, x) + special.psi(x + 1.0) + special.gamma(x))


def gammaln_of_negative(x):
    return np.sum(gammaln(x) * x)


def aliased_module(x):
    return np.sum(sc.gammaln(x) + sc.expit(x) * sc.logsumexp(x))


SCIPY_CASES = [
    pytest.param(lse_axis, (np.array([[0.3, -1.2, 0.8], [2.0, 0.1, -0.4]]),), (0,), id="lse_axis"),
    pytest.param(lse_keepdims, (np.array([[0.3, -1.2, 0.8], [2.0, 0.1, -0.4]]),), (0,), id="lse_keepdims"),
    pytest.param(lse_axes, (np.linspace(-1.0, 1.5, 24).reshape(2, 3, 4),), (0,), id="lse_axes"),
    pytest.param(lse_all, (np.array([0.5, -0.2, 1.1, 0.0]),), (0,), id="lse_all"),
    pytest.param(lse_all, (np.array([1000.0, 1000.5, 999.0]),), (0,), id="lse_all-large"),
    pytest.param(lse_weights, (np.array([0.5, -0.2, 1.1]), np.array([1.5, 0.3, 0.7])), (0, 1), id="lse_weights"),
    pytest.param(expit_gammaln, (np.array([0.3, 1.4616, 2.5, 7.0]),), (0,), id="expit_gammaln"),
    pytest.param(softmaxes, (np.array([[0.3, -1.2, 0.8], [2.0, 0.1, -0.4]]),), (0,), id="softmaxes"),
    pytest.param(special_module, (np.array([0.3, -0.6, 0.9]),), (0,), id="special_module"),
    pytest.param(inverses, (np.array([0.3, -0.4, 0.1]),), (0,), id="inverses"),
    pytest.param(polygammas, (np.array([0.4, 1.3, 3.5]),), (0,), id="polygammas"),
    pytest.param(gammaln_of_negative, (np.array([-2.5, -0.3, 0.7]),), (0,), id="gammaln_of_negative"),
    pytest.param(aliased_module, (np.array([0.5, 1.5, 4.0]),), (0,), id="aliased_module"),
]


# --------------------------------------------------------------------------- checks


def _direction(x, rng):
    if isinstance(x, np.ndarray):
        return rng.normal(size=x.shape)
    return float(rng.normal())


def _moved(args, wrt, directions, h):
    args = list(args)
    for p, v in zip(wrt, directions):
        args[p] = args[p] + h * v
    return args


def _directional_difference(f, args, wrt, directions, eps=1e-6):
    up = np.asarray(f(*_moved(args, wrt, directions, eps)), dtype=np.float64)
    down = np.asarray(f(*_moved(args, wrt, directions, -eps)), dtype=np.float64)
    return (up - down) / (2.0 * eps)


def check_jvp(f, args, wrt):
    rng = np.random.default_rng(3)
    directions = [_direction(args[p], rng) for p in wrt]
    out = tangent.jvp(f, wrt=wrt)(*args, *directions)
    assert_close(out, _directional_difference(f, args, wrt, directions), what="jvp")


def check_hvp(f, args, wrt):
    """H v against central differences of the generated gradient along v."""
    rng = np.random.default_rng(5)
    directions = [_direction(args[p], rng) for p in wrt]
    out = tangent.hvp(f, wrt=wrt)(*args, *directions)
    df = tangent.grad(f, wrt=wrt)

    def gradient(*a):
        g = df(*a)
        return np.concatenate([np.ravel(v) for v in g]) if len(wrt) > 1 else np.ravel(g)

    expected = _directional_difference(gradient, args, wrt, directions)
    actual = np.concatenate([np.ravel(v) for v in out]) if len(wrt) > 1 else np.ravel(out)
    assert_close(actual, expected, rtol=1e-5, atol=1e-6, what="hvp")


@pytest.mark.parametrize("f, args, wrt", MATH_CASES)
def test_math_grad(f, args, wrt):
    check_grad(f, args, wrt=wrt)


@pytest.mark.parametrize("f, args, wrt", MATH_CASES)
def test_math_jvp(f, args, wrt):
    check_jvp(f, args, wrt)


@pytest.mark.parametrize("f, args, wrt", [MATH_CASES[0], MATH_CASES[2], MATH_CASES[3], MATH_CASES[6]])
def test_math_hvp(f, args, wrt):
    check_hvp(f, args, wrt)


@needs_scipy
@pytest.mark.parametrize("f, args, wrt", SCIPY_CASES)
def test_scipy_grad(f, args, wrt):
    check_grad(f, args, wrt=wrt)


@needs_scipy
@pytest.mark.parametrize("f, args, wrt", SCIPY_CASES)
def test_scipy_jvp(f, args, wrt):
    check_jvp(f, args, wrt)


@needs_scipy
@pytest.mark.parametrize("f, args, wrt", [SCIPY_CASES[0], SCIPY_CASES[5], SCIPY_CASES[6], SCIPY_CASES[7], SCIPY_CASES[10]])
def test_scipy_hvp(f, args, wrt):
    check_hvp(f, args, wrt)


def test_generated_code_uses_the_runtime_not_scipy():
    """The derivative of gammaln is tangent.digamma; nothing in the generated code needs SciPy
    beyond the user's own call."""
    source = inspect.getsource(tangent.grad(gamma_family))
    assert "tangent.digamma(" in source, source
    if scipy is not None:
        source = inspect.getsource(tangent.grad(expit_gammaln))
        assert "tangent.digamma(" in source, source
        code = [line for line in source.splitlines() if not line.strip().startswith("#")]
        uses = [line for line in code if "scipy" in line]
        assert len(uses) == 1 and uses[0].endswith("= scipy.special.expit(x)"), source


def lse_with_sign(x):
    return logsumexp(x, return_sign=True)[0]


@needs_scipy
def test_unsupported_keyword_is_reported():
    with pytest.raises(tangent.UnsupportedError, match="return_sign"):
        tangent.grad(lse_with_sign)


# --------------------------------------------------------------------------- runtime helpers


def test_digamma_known_values():
    assert tangent.digamma(1.0) == pytest.approx(-EULER_GAMMA, rel=1e-14)
    assert tangent.digamma(0.5) == pytest.approx(-EULER_GAMMA - 2.0 * math.log(2.0), rel=1e-14)
    assert tangent.polygamma(1, 1.0) == pytest.approx(math.pi**2 / 6.0, rel=1e-14)
    assert tangent.polygamma(1, 0.5) == pytest.approx(math.pi**2 / 2.0, rel=1e-14)
    # psi(x + 1) = psi(x) + 1/x, also across zero and for negative x (reflection formula).
    for x in (0.3, 1.4616321449683622, 3.7, 25.5, -0.4, -3.7, -12.25):
        assert tangent.digamma(x + 1.0) == pytest.approx(tangent.digamma(x) + 1.0 / x, rel=1e-12, abs=1e-14)
        for n in (1, 2, 3):
            step = (-1) ** n * math.factorial(n) / x ** (n + 1)
            assert tangent.polygamma(n, x + 1.0) == pytest.approx(tangent.polygamma(n, x) + step, rel=1e-12)
    # psi's positive zero, to full relative accuracy around it.
    assert abs(tangent.digamma(1.4616321449683622)) < 1e-16
    root = 1.4616321449683622
    step = math.ulp(root) * 4096
    assert tangent.digamma(root + step) == pytest.approx(step * tangent.polygamma(1, root), rel=1e-8)


def test_digamma_poles_types_and_shapes():
    assert math.isnan(tangent.digamma(0.0)) and math.isnan(tangent.digamma(-3.0))
    assert math.isnan(tangent.digamma(-math.inf)) and np.isnan(tangent.digamma(np.array([-np.inf, np.nan]))).all()
    assert tangent.digamma(math.inf) == math.inf and tangent.polygamma(2, math.inf) == 0.0
    assert type(tangent.digamma(2)) is float and type(tangent.digamma(np.float32(2.0))) is float
    assert type(tangent.digamma(np.array(2.0))) is float
    x = np.array([[0.5, -1.5], [3.0, 0.0]])
    out = tangent.digamma(x)
    assert out.shape == (2, 2) and out.dtype == np.float64 and np.isnan(out[1, 1])
    assert tangent.digamma(np.ones(3, dtype=np.float32)).dtype == np.float32
    both = tangent.polygamma(np.array([[0], [1]]), np.array([0.5, 2.0, -0.5]))
    assert both.shape == (2, 3)
    assert_close(both[1], tangent.polygamma(1, np.array([0.5, 2.0, -0.5])), rtol=1e-15, atol=0.0)
    with pytest.raises(ValueError):
        tangent.polygamma(-1, 1.0)
    with pytest.raises(ValueError):
        tangent.polygamma(1.5, 1.0)
    # Scalars and arrays take different code paths: they agree.
    xs = np.linspace(-7.9, 30.0, 97)
    for n in (0, 1, 4):
        assert_close(tangent.polygamma(n, xs), np.array([tangent.polygamma(n, float(v)) for v in xs]), rtol=1e-13,
                     atol=1e-300)


@needs_scipy
@pytest.mark.parametrize("n", [0, 1, 2, 3, 5])
def test_polygamma_matches_scipy(n):
    rng = np.random.default_rng(n)
    x = np.concatenate([rng.uniform(1e-3, 40.0, 2000), [1e-6, 1.0, 1.4616, 100.0, 1e6]])
    ours = tangent.polygamma(n, x)
    ref = scipy.special.polygamma(n, x)
    np.testing.assert_allclose(ours, ref, rtol=1e-13)
    negative = rng.uniform(-20.0, 0.0, 2000)
    negative = negative[np.abs(negative - np.round(negative)) > 1e-3]  # away from the poles
    np.testing.assert_allclose(tangent.polygamma(n, negative), scipy.special.polygamma(n, negative), rtol=1e-9,
                               atol=1e-12)
    if n == 0:
        near_zero = np.linspace(1.3, 1.6, 3001)
        np.testing.assert_allclose(tangent.digamma(near_zero), scipy.special.digamma(near_zero), rtol=1e-13)
