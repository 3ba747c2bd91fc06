"""Second derivatives by differentiating generated code again, through the public API, on
every scalar-valued construct of the reverse-mode suites:

- reverse over reverse: ``vjp(grad(f))``, H v as a vector-Jacobian product of the gradient;
- forward over forward: ``jvp(jvp(f))``, w^T H u;
- reverse over forward: ``grad(jvp(f))``, H u;
- forward over reverse: ``autodiff(grad(f), mode='forward')``, H u.

Each is checked against central finite differences of a first derivative that the other
suites already check against finite differences of the function. Constructs a composition
does not handle are skipped with the engine's reason, so a gap stays visible.
"""

import inspect

import numpy as np
import pytest
import tangent as tangent_runtime

from test_forward import CASES as FORWARD_CASES
from test_forward import _direction_like, _flatten, _is_float_input, _move

EPS = 1e-5


def _scalar_cases():
    return [pytest.param(*param.values[:2], param.values[2][:1], id=param.id) for param in FORWARD_CASES]


def _full_args(fn, args):
    """``args`` completed with ``fn``'s defaults, so that trailing arguments can follow."""
    bound = inspect.signature(fn).bind(*args)
    bound.apply_defaults()
    return list(bound.arguments.values())


def _require_scalar_float(f, args, i):
    value = f(*args)
    if isinstance(value, (tuple, list, dict)) or np.ndim(value) != 0:
        pytest.skip("second derivatives here are of scalar functions")
    if not _is_float_input(args[i]):
        pytest.skip("integer inputs have no derivative")


def _derive(make):
    import tangent

    try:
        return make()
    except tangent.UnsupportedError as error:
        pytest.skip(f"not supported yet: {str(error).splitlines()[0]}")


def _along(g, args, i, direction):
    """Central difference of ``g`` at ``args`` along ``direction`` in argument ``i``."""
    plus, minus = list(args), list(args)
    plus[i] = _move(args[i], direction, EPS)
    minus[i] = _move(args[i], direction, -EPS)
    return (_flatten(g(*plus)) - _flatten(g(*minus))) / (2 * EPS)


def _check(got, expected):
    np.testing.assert_allclose(_flatten(got), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("f, args, wrt", _scalar_cases())
def test_reverse_over_reverse(f, args, wrt):
    import tangent

    (i,) = wrt
    _require_scalar_float(f, args, i)
    df = tangent.grad(f, wrt=wrt)
    vdf = _derive(lambda: tangent.vjp(df, wrt=wrt))
    v = _direction_like(args[i], np.random.default_rng(11))
    got = vdf(*_full_args(df, args), v)
    # The Hessian is symmetric: v^T H = (H v)^T.
    _check(got, _along(df, args, i, v))


@pytest.mark.parametrize("f, args, wrt", _scalar_cases())
def test_forward_over_forward(f, args, wrt):
    import tangent

    (i,) = wrt
    _require_scalar_float(f, args, i)
    jf = tangent.jvp(f, wrt=wrt)
    jjf = _derive(lambda: tangent.jvp(jf, wrt=wrt))
    rng = np.random.default_rng(12)
    u = _direction_like(args[i], rng)
    w = _direction_like(args[i], rng)
    full = _full_args(f, args)
    got = jjf(*full, u, w)
    _check(got, _along(lambda *a: jf(*a, u), full, i, w))


@pytest.mark.parametrize("f, args, wrt", _scalar_cases())
def test_reverse_over_forward(f, args, wrt):
    import tangent

    (i,) = wrt
    _require_scalar_float(f, args, i)
    jf = tangent.jvp(f, wrt=wrt)
    gjf = _derive(lambda: tangent.grad(jf, wrt=wrt))
    u = _direction_like(args[i], np.random.default_rng(13))
    full = _full_args(f, args)
    got = gjf(*full, u)
    _check(got, _along(tangent.grad(f, wrt=wrt), args, i, u))


@pytest.mark.parametrize("f, args, wrt", _scalar_cases())
def test_forward_over_reverse(f, args, wrt):
    import tangent

    (i,) = wrt
    _require_scalar_float(f, args, i)
    df = tangent.grad(f, wrt=wrt)
    jdf = _derive(lambda: tangent.autodiff(df, mode="forward", wrt=wrt))
    u = _direction_like(args[i], np.random.default_rng(14))
    got = jdf(*_full_args(df, args), u)
    _check(got, _along(df, args, i, u))


def power_by_loop(x, n):
    y = 1.0
    for _ in range(n):
        y = y * x
    return y


def cubic_with_state(x):
    total = 0.0
    xs = []
    for k in range(3):
        xs.append(x * (k + 1.0))
        total = total + xs[-1] * np.sin(x)
    return total * x


def test_second_derivative_of_a_loop_matches_the_closed_form():
    """d^2/dx^2 of x^n computed by repeated multiplication: n (n - 1) x^(n-2)."""
    import tangent

    ddf = tangent.grad(tangent.grad(power_by_loop))
    for x in (1.5, -0.3):
        assert ddf(x, 4) == pytest.approx(4 * 3 * x**2, rel=1e-12)
        assert ddf(x, 1) == 0.0


def test_third_derivatives_agree_across_compositions():
    """d^3/dx^3 four ways (reverse^3, forward^3, and mixes) against finite differences."""
    import tangent

    f = cubic_with_state
    d2 = tangent.grad(tangent.grad(f))
    rrr = tangent.grad(tangent.grad(tangent.grad(f)))
    fff = tangent.jvp(tangent.jvp(tangent.jvp(f)))
    frr = tangent.autodiff(tangent.grad(tangent.grad(f)), mode="forward")
    rff = tangent.grad(tangent.jvp(tangent.jvp(f)))
    for x in (0.7, -1.3):
        expected = (d2(x + 1e-5) - d2(x - 1e-5)) / 2e-5
        assert rrr(x) == pytest.approx(expected, rel=1e-6)
        assert fff(x, 1.0, 1.0, 1.0) == pytest.approx(expected, rel=1e-6)
        assert frr(x, 1.0, 1.0, 1.0) == pytest.approx(expected, rel=1e-6)
        assert rff(x, 1.0, 1.0) == pytest.approx(expected, rel=1e-6)


def test_generated_code_differentiated_again_stays_readable():
    """The second derivative's source keeps the user's names, comments each block with the
    statement of the gradient it differentiates, and saves on its own stack."""
    import tangent

    ddf = tangent.grad(tangent.grad(power_by_loop))
    source = inspect.getsource(ddf)
    assert "def ddpower_by_loop(x, n" in source
    assert "# Grad of: y = y * x" in source
    assert "_stack1 = tangent.Stack()" in source and "_bstack" in source


def hand_edited_gradient(x):
    # Pushes `x` but pops into another name: which tangent or adjoint goes where is unknowable.
    _stack = tangent_runtime.Stack()
    tangent_runtime.push(_stack, x)
    y = x * 2.0
    z = tangent_runtime.pop(_stack)
    return z * y


def test_stack_use_that_does_not_pair_is_reported():
    import tangent

    with pytest.raises(tangent.UnsupportedError, match="`x` is pushed on `_stack` but never popped back into `x`"):
        tangent.grad(hand_edited_gradient)
    with pytest.raises(tangent.UnsupportedError, match="never popped back"):
        tangent.jvp(hand_edited_gradient)


def test_split_motion_derivatives_are_reported_not_differentiated():
    """Split motion's backward function pops what another function pushed."""
    import tangent

    vf = tangent.autodiff(cubic_with_state, motion="split")
    with pytest.raises(tangent.UnsupportedError, match="split-motion forward pass") as info:
        tangent.vjp(vf)
    assert "joint-motion" in str(info.value)
