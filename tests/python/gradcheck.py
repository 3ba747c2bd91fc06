"""Finite-difference references for gradient tests.

    from gradcheck import check_grad, check_autodiff, numeric_grad

- ``numeric_grad(f, args, wrt=(0,), eps=1e-6)``: central differences (float64) of the scalar
  ``sum of all outputs of f`` with respect to the arguments at positions ``wrt``.
- ``check_grad(f, args, wrt=(0,), rtol=1e-5, atol=1e-6, **grad_kwargs)``: ``tangent.grad``
  against ``numeric_grad``; returns the gradient(s) from Tangent.
- ``check_autodiff(f, args, seed, wrt=(0,), motion="joint", optimized=True, ...)``:
  ``tangent.autodiff(...)(*args, seed)`` against finite differences of ``<seed, f(*args)>``.

Arguments may be Python numbers, NumPy arrays, or lists/tuples of them; gradients have the
same structure. As in Tangent, ``wrt`` with one position gives one gradient, several give a
tuple. ``wrt`` entries may also be parameter names.
"""

from __future__ import annotations

import inspect
import numbers

import numpy
import numpy.testing

__all__ = ["numeric_grad", "numeric_vjp", "check_grad", "check_autodiff", "assert_close"]


def _positions(f, wrt):
    items = (wrt,) if isinstance(wrt, (int, str)) else tuple(wrt)
    names = list(inspect.signature(f).parameters)
    return [names.index(item) if isinstance(item, str) else item for item in items]


def _total(value, seed=None):
    """sum(seed * value) over a nested structure of outputs (seed None: all ones)."""
    if isinstance(value, (list, tuple)):
        if seed is None:
            return sum(_total(v) for v in value)
        if not isinstance(seed, (list, tuple)) or len(seed) != len(value):
            raise ValueError("the seed must have the structure of the output")
        return sum(_total(v, s) for v, s in zip(value, seed))
    if isinstance(value, dict):
        return sum(_total(value[k], None if seed is None else seed[k]) for k in value)
    value = numpy.asarray(value, dtype=numpy.result_type(numpy.asarray(value).dtype, float))
    if seed is None:
        return numpy.sum(value)
    return numpy.sum(numpy.asarray(seed) * value)


def _as_float(x):
    if isinstance(x, numpy.ndarray):
        return x.astype(numpy.float64)
    if isinstance(x, (list, tuple)):
        items = [_as_float(v) for v in x]
        return items if isinstance(x, list) else tuple(items)
    if isinstance(x, (numbers.Real, numpy.generic)):
        return float(x)
    raise TypeError(f"cannot differentiate numerically with respect to {type(x).__name__}")


def _partial(scalar_of, x, eps):
    """Central differences of ``scalar_of(x)`` with respect to every entry of ``x``."""
    if isinstance(x, numpy.ndarray):
        grad = numpy.zeros(x.shape, dtype=numpy.float64)
        for idx in numpy.ndindex(*x.shape):
            plus, minus = x.copy(), x.copy()
            plus[idx] += eps
            minus[idx] -= eps
            grad[idx] = (scalar_of(plus) - scalar_of(minus)) / (2 * eps)
        return grad
    if isinstance(x, (list, tuple)):
        parts = []
        for i in range(len(x)):

            def scalar_of_item(v, i=i):
                items = list(x)
                items[i] = v
                return scalar_of(items if isinstance(x, list) else tuple(items))

            parts.append(_partial(scalar_of_item, x[i], eps))
        return parts if isinstance(x, list) else tuple(parts)
    return float((scalar_of(x + eps) - scalar_of(x - eps)) / (2 * eps))


def numeric_vjp(f, args, seed=None, wrt=(0,), eps=1e-6):
    """Central-difference gradient of ``sum(seed * f(*args))`` w.r.t. the ``wrt`` arguments."""
    positions = _positions(f, wrt)
    args = list(args)
    grads = []
    for p in positions:
        x = _as_float(args[p])

        def scalar_of(v, p=p):
            call = list(args)
            call[p] = v
            return float(_total(f(*call), seed))

        grads.append(_partial(scalar_of, x, eps))
    return grads[0] if len(grads) == 1 else tuple(grads)


def numeric_grad(f, args, wrt=(0,), eps=1e-6):
    """Central-difference gradient of the sum of ``f``'s outputs w.r.t. the ``wrt`` arguments."""
    return numeric_vjp(f, args, None, wrt, eps)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, what="gradient"):
    """Recursive ``assert_allclose`` over lists/tuples/dicts of numbers and arrays."""
    if isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)), f"{what}: expected a sequence, got {actual!r}"
        assert len(actual) == len(expected), f"{what}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, rtol, atol, f"{what}[{i}]")
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), what
        for k in expected:
            assert_close(actual[k], expected[k], rtol, atol, f"{what}[{k!r}]")
        return
    assert actual is not None, f"{what}: got None, expected {expected!r}"
    expected_arr = numpy.asarray(expected)
    actual_arr = numpy.asarray(actual)
    assert actual_arr.shape == expected_arr.shape, (
        f"{what}: shape {actual_arr.shape} != expected {expected_arr.shape}"
    )
    numpy.testing.assert_allclose(actual_arr, expected_arr, rtol=rtol, atol=atol, err_msg=what)


def _split_value(out, wrt):
    """(gradients, value) from a preserve_result output: like the original tangent, the value
    follows the gradients in one flat tuple (`(dx, value)` or `(dx, dy, value)`)."""
    several = not isinstance(wrt, (int, str)) and len(tuple(wrt)) > 1
    assert isinstance(out, tuple), "preserve_result returns a tuple"
    if several:
        assert len(out) == len(tuple(wrt)) + 1, "preserve_result gives (*grads, value)"
        return tuple(out[:-1]), out[-1]
    assert len(out) == 2, "preserve_result gives (grad, value)"
    return out[0], out[1]


def check_grad(f, args, wrt=(0,), rtol=1e-5, atol=1e-6, eps=1e-6, **grad_kwargs):
    """Checks ``tangent.grad(f, wrt, **grad_kwargs)(*args)`` against central differences.

    With ``preserve_result=True`` the value is also compared with ``f(*args)``. Returns what
    the derivative returned.
    """
    import tangent

    df = tangent.grad(f, wrt=wrt, **grad_kwargs)
    out = df(*args)
    grads = out
    if grad_kwargs.get("preserve_result"):
        grads, value = _split_value(out, wrt)
        assert_close(value, f(*args), rtol, atol, "value")
    expected = numeric_grad(f, args, wrt, eps)
    assert_close(grads, expected, rtol, atol)
    return out


def check_autodiff(
    f,
    args,
    seed,
    wrt=(0,),
    motion="joint",
    optimized=True,
    rtol=1e-5,
    atol=1e-6,
    eps=1e-6,
    **autodiff_kwargs,
):
    """Checks ``tangent.autodiff(f, ...)(*args, seed)`` against finite-difference VJPs."""
    import tangent

    df = tangent.autodiff(f, wrt=wrt, motion=motion, optimized=optimized, **autodiff_kwargs)
    out = df(*args, seed)
    grads = out
    if autodiff_kwargs.get("preserve_result"):
        grads, value = _split_value(out, wrt)
        assert_close(value, f(*args), rtol, atol, "value")
    expected = numeric_vjp(f, args, seed, wrt, eps)
    assert_close(grads, expected, rtol, atol, "vjp")
    return out
