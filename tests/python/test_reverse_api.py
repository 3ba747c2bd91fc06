"""The public API around reverse mode: preserve_result, several wrt, wrt by name, readable and
deterministic generated source, repeated calls, and agreement with autograd where installed.
Functions under test live at module level."""

import inspect
import types

import numpy as np
import pytest

import tangent
from gradcheck import check_grad

RNG = np.random.default_rng(6)

OPTIMIZED = pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])


def two_params(x, y):
    return x * np.sin(y) + y * y


def named_state(weights, inputs):
    hidden = np.tanh(weights @ inputs)
    activation = hidden * 2.0
    return np.sum(activation**2)


def loss(w, X, y):
    logits = np.dot(X, w)
    signs = 1.0 - 2.0 * y
    return np.mean(np.log1p(np.exp(signs * logits)))


def dense(W, v, b):
    return np.tanh(np.dot(W, v) + b)


def mlp(W1, W2, v):
    h = dense(W1, v, 0.1)
    out = dense(W2, h, -0.1)
    return np.sum(out * out)


def rnn_loss(W, U, xs):
    h = np.zeros(3)
    for t in range(len(xs)):
        h = np.tanh(np.dot(W, h) + U * xs[t])
    return np.sum(h * h)


def power_loop(x, w):
    for i in range(4):
        x = x * w + np.sin(x)
    return x


def piecewise(x):
    if x > 1.0:
        y = x * x
    elif x > -1.0:
        y = np.sin(x) * 3.0
    else:
        y = -x
    return y * x


def halving(x):
    s = x
    while s > 0.1:
        s = s * 0.5 + 0.01 * x
    return s


def softmax_cross_entropy(W, X, labels):
    z = np.dot(X, W)
    z = z - np.mean(z, axis=1, keepdims=True)
    log_norm = np.log(np.sum(np.exp(z), axis=1))
    return np.mean(log_norm - np.sum(z * labels, axis=1))


def logistic_data(n=12, d=3):
    X = RNG.standard_normal((n, d))
    y = (RNG.random(n) < 0.5).astype(float)
    w = 0.5 * RNG.standard_normal(d)
    return w, X, y


# --- preserve_result, several wrt, wrt by name ---------------------------------------------


@OPTIMIZED
@pytest.mark.parametrize("x, y", [(1.2, 0.4), (-0.5, 2.0), (3.0, -1.0)])
def test_preserve_result_returns_gradient_and_value(x, y, optimized):
    g, value = tangent.grad(two_params, preserve_result=True, optimized=optimized)(x, y)
    assert value == pytest.approx(two_params(x, y))
    assert g == pytest.approx(np.sin(y))


@OPTIMIZED
def test_preserve_result_with_arrays(optimized):
    w, X, y = logistic_data()
    g, value = tangent.grad(loss, preserve_result=True, optimized=optimized)(w, X, y)
    assert value == pytest.approx(loss(w, X, y))
    np.testing.assert_allclose(g, tangent.grad(loss, optimized=optimized)(w, X, y))


@OPTIMIZED
def test_preserve_result_with_several_wrt(optimized):
    gx, gy, value = tangent.grad(
        two_params, wrt=(0, 1), preserve_result=True, optimized=optimized
    )(1.2, 0.4)
    assert value == pytest.approx(two_params(1.2, 0.4))
    assert gx == pytest.approx(np.sin(0.4))
    assert gy == pytest.approx(1.2 * np.cos(0.4) + 0.8)


@OPTIMIZED
@pytest.mark.parametrize("x, y", [(1.2, 0.4), (-0.5, 2.0), (3.0, -1.0)])
def test_several_wrt_return_a_tuple(x, y, optimized):
    grads = tangent.grad(two_params, wrt=(0, 1), optimized=optimized)(x, y)
    assert isinstance(grads, tuple)
    assert len(grads) == 2
    assert grads[0] == pytest.approx(np.sin(y))
    assert grads[1] == pytest.approx(x * np.cos(y) + 2.0 * y)


@OPTIMIZED
def test_several_wrt_with_arrays(optimized):
    w, X, y = logistic_data()
    check_grad(loss, (w, X, y), wrt=(0, 1), optimized=optimized)


@OPTIMIZED
def test_wrt_by_parameter_name(optimized):
    by_name = tangent.grad(two_params, wrt=("y",), optimized=optimized)(1.2, 0.4)
    by_position = tangent.grad(two_params, wrt=(1,), optimized=optimized)(1.2, 0.4)
    assert by_name == pytest.approx(by_position)
    both = tangent.grad(named_state, wrt=("weights", "inputs"), optimized=optimized)
    weights, inputs = RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    expected = tangent.grad(named_state, wrt=(0, 1), optimized=optimized)(weights, inputs)
    for got, want in zip(both(weights, inputs), expected):
        np.testing.assert_allclose(got, want)


def test_wrt_unknown_name_is_an_error():
    with pytest.raises(tangent.TangentError) as excinfo:
        tangent.grad(two_params, wrt=("z",))(1.0, 2.0)
    assert "z" in str(excinfo.value)


# --- the generated code ----------------------------------------------------------------------


@OPTIMIZED
def test_getsource_shows_user_names(optimized):
    df = tangent.grad(named_state, wrt=(0,), optimized=optimized)
    source = inspect.getsource(df)
    assert "def dnamed_state" in source
    for name in ("weights", "inputs", "hidden"):
        assert name in source, source
    # Every backward block starts with a comment naming the primal statement.
    comments = [line.strip() for line in source.splitlines() if line.strip().startswith("#")]
    assert any("hidden" in c for c in comments), source
    if not optimized:
        assert "bhidden" in source, source


def test_generation_is_deterministic():
    first = inspect.getsource(tangent.grad(mlp, wrt=(0, 1, 2)))
    second = inspect.getsource(tangent.grad(mlp, wrt=(0, 1, 2)))
    assert first == second


def test_verbose_prints_the_same_code_every_time(capsys):
    tangent.grad(loss, verbose=1)
    first = capsys.readouterr().out
    tangent.grad(loss, verbose=1)
    second = capsys.readouterr().out
    assert "def dloss" in first
    assert first == second


@OPTIMIZED
def test_derivative_can_be_called_repeatedly(optimized):
    drnn = tangent.grad(rnn_loss, wrt=(0, 1), optimized=optimized)
    W, U, xs = 0.5 * RNG.standard_normal((3, 3)), RNG.standard_normal(3), RNG.standard_normal(4)
    first = drnn(W, U, xs)
    other = drnn(W, U, RNG.standard_normal(7))
    again = drnn(W, U, xs)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert len(other) == 2


@OPTIMIZED
def test_derivative_does_not_mutate_inputs(optimized):
    w, X, y = logistic_data()
    copies = [a.copy() for a in (w, X, y)]
    tangent.grad(loss, wrt=(0, 1), optimized=optimized)(w, X, y)
    for original, copy in zip((w, X, y), copies):
        np.testing.assert_array_equal(original, copy)


# --- agreement with autograd -------------------------------------------------------------------


def autograd_twin(f):
    """`f` re-bound so that `np` means autograd.numpy (helpers of this module too)."""
    anp = pytest.importorskip("autograd.numpy")
    namespace = dict(globals())
    namespace["np"] = anp
    for name, value in list(namespace.items()):
        if isinstance(value, types.FunctionType) and value.__module__ == __name__:
            namespace[name] = types.FunctionType(
                value.__code__, namespace, name, value.__defaults__, value.__closure__
            )
    return namespace[f.__name__]


def labels_onehot(n, k):
    return np.eye(k)[RNG.integers(0, k, n)]


AUTOGRAD_CASES = [
    pytest.param(loss, logistic_data(), (0, 1), id="loss"),
    pytest.param(
        mlp,
        (RNG.standard_normal((4, 3)), RNG.standard_normal((2, 4)), RNG.standard_normal(3)),
        (0, 1, 2),
        id="mlp",
    ),
    pytest.param(
        rnn_loss,
        (0.5 * RNG.standard_normal((3, 3)), RNG.standard_normal(3), RNG.standard_normal(5)),
        (0, 1, 2),
        id="rnn_loss",
    ),
    pytest.param(power_loop, (0.7, 1.1), (0, 1), id="power_loop"),
    pytest.param(piecewise, (1.5,), (0,), id="piecewise-0"),
    pytest.param(piecewise, (0.3,), (0,), id="piecewise-1"),
    pytest.param(piecewise, (-2.0,), (0,), id="piecewise-2"),
    pytest.param(halving, (3.0,), (0,), id="halving"),
    pytest.param(
        softmax_cross_entropy,
        (RNG.standard_normal((3, 4)), RNG.standard_normal((5, 3)), labels_onehot(5, 4)),
        (0, 1),
        id="softmax_cross_entropy",
    ),
]


@OPTIMIZED
@pytest.mark.parametrize("f, args, wrt", AUTOGRAD_CASES)
def test_matches_autograd(f, args, wrt, optimized):
    autograd = pytest.importorskip("autograd")
    twin = autograd_twin(f)
    expected = [autograd.grad(twin, i)(*args) for i in wrt]
    got = tangent.grad(f, wrt=wrt, optimized=optimized)(*args)
    if len(wrt) == 1:
        got = (got,)
    assert len(got) == len(wrt)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-12)


def sum_of_both(x, y):
    return np.sum(x + y)


def reshaped(x):
    return x.reshape(2, 2)


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_returned_gradients_share_no_memory_with_each_other_or_the_seed(optimized):
    """Adjoints share arrays inside a gradient; what the caller gets does not, so writing into
    one gradient never changes another one or the seed."""
    gx, gy = tangent.grad(sum_of_both, wrt=(0, 1), optimized=optimized)(np.ones(3), np.ones(3))
    assert not np.shares_memory(gx, gy)
    gx *= 0.0
    np.testing.assert_array_equal(gy, np.ones(3))
    seed = np.arange(4.0).reshape(2, 2)
    g = tangent.vjp(reshaped, optimized=optimized)(np.ones(4), seed)
    assert not np.shares_memory(g, seed)
    g *= 0.0
    np.testing.assert_array_equal(seed, np.arange(4.0).reshape(2, 2))


def identity(x):
    return x


def test_a_jvp_is_never_the_callers_tangent():
    t = np.arange(3.0)
    jt = tangent.jvp(identity)(np.ones(3), t)
    np.testing.assert_array_equal(jt, t)
    assert not np.shares_memory(jt, t)
