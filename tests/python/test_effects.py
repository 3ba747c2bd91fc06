"""One gradient call performs the effects of one primal call (issue 13).

A called helper runs once per call of the derivative: its forward half (reverse mode) or its
forward-mode derivative runs it and the backward pass reuses what that run computed, so random
draws, prints and appends to outside lists happen exactly as often, and in the same order, as
in the primal. Every check compares numbers: the derivative against central finite
differences where each evaluation gets a fresh random state with the same seed (so the
derivative is well defined), and the state, the output and the lists after one derivative call
against those after one primal call.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

import tangent
from gradcheck import assert_close

SEED = 1234
W = np.array([0.7, -0.4, 1.3])


def noisy(w, rs):
    eps = rs.randn(3)
    return w * eps


def loss_noisy(w, rs):
    return np.sum(noisy(w, rs) ** 2)


def loss_noisy_twice(w, rs):
    a = noisy(w, rs)
    b = noisy(w * 2.0, rs)
    return np.sum(a * b) + np.sum(np.tanh(a))


def loss_noisy_in_loop(w, rs):
    total = 0.0
    h = w
    for _ in range(3):
        h = np.tanh(noisy(h, rs) + h)
        total = total + np.sum(h ** 2)
    return total


def loss_noisy_in_branch(w, rs):
    if np.sum(w) > 0.0:
        y = noisy(w, rs)
    else:
        y = w * 2.0
    return np.sum(np.sin(y))


def perturbed(w, rs):
    return np.sin(noisy(w, rs)) * w


def loss_nested(w, rs):
    return np.sum(perturbed(w, rs) ** 2) + np.sum(noisy(w, rs))


def logged(w, log):
    log.append(len(log))
    print("step", len(log))
    return np.tanh(w) * 1.5


def loss_logged(w, rs):
    log = []
    y = logged(w, log) + logged(w * 0.5, log)
    print("log", log)
    return np.sum(y ** 2) + np.sum(noisy(y, rs))


OUTSIDE = []


def appends_outside(w):
    OUTSIDE.append(1)
    return w * np.float64(len(OUTSIDE))


def loss_outside(w, rs):
    return np.sum(appends_outside(w) ** 2)


def loss_scalar_noisy(x, rs):
    e = rs.randn()
    y = scalar_helper(x, rs)
    return y * e + x * x * y


def scalar_helper(x, rs):
    return np.sin(x * rs.uniform(0.5, 1.5)) * x


def loss_carried_from_a_draw(w, rs):
    # `e` starts as a draw (a constant of the differentiation), then carries `w`.
    e = rs.normal(size=(1, 3))
    for _ in range(2):
        e = np.sin(w * e)
    return np.sum(e)


def skips_then_draws(w, rs):
    rs.randn(2)  # numbers thrown away: only the generator moves on
    return w * rs.standard_normal(3)


def loss_skipped_draws(w, rs):
    return np.sum(np.tanh(skips_then_draws(w, rs)) ** 2)


CASES = [loss_noisy, loss_noisy_twice, loss_noisy_in_loop, loss_noisy_in_branch, loss_nested, loss_carried_from_a_draw, loss_skipped_draws]


def _fresh():
    return np.random.RandomState(SEED)


def _run(fn, *args):
    """fn(*args, rs) with a fresh state: (result, next draw of the state, stdout)."""
    rs = _fresh()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = fn(*args, rs)
    return result, rs.randn(), out.getvalue()


def _fd(f, w, eps=1e-6):
    g = np.zeros_like(w)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = eps
        with contextlib.redirect_stdout(io.StringIO()):
            g[i] = (f(w + e, _fresh()) - f(w - e, _fresh())) / (2 * eps)
    return g


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_gradient_runs_each_helper_once(f, optimized):
    value, after_primal, printed = _run(f, W)
    (grad, grad_value), after_grad, grad_printed = _run(tangent.grad(f, optimized=optimized, preserve_result=True), W)
    assert_close(grad_value, value, rtol=1e-12, atol=1e-12, what="value")
    assert after_grad == after_primal, "the gradient drew a different number of random numbers"
    assert grad_printed == printed, "the gradient printed something else than the primal"
    assert_close(grad, _fd(f, W), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("motion", ["joint", "split"])
def test_vjp_runs_each_helper_once(f, motion):
    value, after_primal, printed = _run(f, W)
    vjp = tangent.autodiff(f, motion=motion)
    rs = _fresh()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        grad = vjp(W, rs, 2.0)
    assert rs.randn() == after_primal and out.getvalue() == printed
    assert_close(grad, 2.0 * _fd(f, W), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_jvp_runs_each_helper_once(f, optimized):
    direction = np.array([0.3, 1.1, -0.8])
    value, after_primal, printed = _run(f, W)
    jvp = tangent.jvp(f, optimized=optimized)
    rs = _fresh()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        got = jvp(W, rs, direction)
    assert rs.randn() == after_primal, "the JVP drew a different number of random numbers"
    assert out.getvalue() == printed, "the JVP printed something else than the primal"
    assert_close(got, float(np.dot(_fd(f, W), direction)), rtol=1e-5, atol=1e-6)


def _fd_grad(f, w, v, eps=1e-5):
    g = tangent.grad(f)
    with contextlib.redirect_stdout(io.StringIO()):
        return (g(w + eps * v, _fresh()) - g(w - eps * v, _fresh())) / (2 * eps)


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
def test_hvp_runs_each_helper_once(f):
    v = np.array([0.5, -0.2, 0.9])
    _, after_primal, printed = _run(f, W)
    rs = _fresh()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        got = tangent.hvp(f)(W, rs, v)
    assert rs.randn() == after_primal, "the HVP drew a different number of random numbers"
    assert out.getvalue() == printed
    assert_close(got, _fd_grad(f, W, v), rtol=1e-4, atol=1e-6)


def test_reverse_over_reverse_runs_each_helper_once():
    x = 0.8
    _, after_primal, _ = _run(loss_scalar_noisy, x)
    rs = _fresh()
    second = tangent.grad(tangent.grad(loss_scalar_noisy))(x, rs)
    assert rs.randn() == after_primal
    g = tangent.grad(loss_scalar_noisy)
    eps = 1e-5
    assert_close(second, (g(x + eps, _fresh()) - g(x - eps, _fresh())) / (2 * eps), rtol=1e-5, atol=1e-6)


def test_forward_over_forward_and_reverse_over_forward_run_each_helper_once():
    x, u, w2 = 0.8, 1.0, 1.0
    _, after_primal, _ = _run(loss_scalar_noisy, x)
    rs = _fresh()
    jj = tangent.jvp(tangent.jvp(loss_scalar_noisy))(x, rs, u, w2)
    assert rs.randn() == after_primal
    rs = _fresh()
    gj = tangent.grad(tangent.jvp(loss_scalar_noisy))(x, rs, u)
    assert rs.randn() == after_primal
    g = tangent.grad(loss_scalar_noisy)
    eps = 1e-5
    second = (g(x + eps, _fresh()) - g(x - eps, _fresh())) / (2 * eps)
    assert_close(jj, second, rtol=1e-5, atol=1e-6)
    assert_close(gj, second, rtol=1e-5, atol=1e-6)


def test_append_to_a_module_list_happens_once():
    OUTSIDE.clear()
    loss_outside(W, None)
    primal = list(OUTSIDE)
    OUTSIDE.clear()
    g = tangent.grad(loss_outside)(W, None)
    assert OUTSIDE == primal
    assert_close(g, 2.0 * W, rtol=1e-12, atol=1e-12)
    OUTSIDE.clear()
    tangent.jvp(loss_outside)(W, None, np.ones(3))
    assert OUTSIDE == primal
