"""Tiny finite-difference checker used by the programs' ``__main__`` blocks.

    from _fd import check_gradient
    check_gradient(loss, grad_value, params, *rest)

Parameters may be floats, arrays, or dicts/lists/tuples of them.
"""

import numpy as np


def _leaves(x):
    if isinstance(x, dict):
        return [leaf for k in x for leaf in _leaves(x[k])]
    if isinstance(x, (list, tuple)):
        return [leaf for v in x for leaf in _leaves(v)]
    return [np.asarray(x, dtype=float)]


def _rebuild(x, flat, pos=0):
    if isinstance(x, dict):
        out = {}
        for k in x:
            out[k], pos = _rebuild(x[k], flat, pos)
        return out, pos
    if isinstance(x, (list, tuple)):
        items = []
        for v in x:
            item, pos = _rebuild(v, flat, pos)
            items.append(item)
        return (items if isinstance(x, list) else tuple(items)), pos
    size = np.size(x)
    chunk = flat[pos:pos + size]
    if np.ndim(x) == 0:
        return float(chunk[0]), pos + size
    return chunk.reshape(np.shape(x)).copy(), pos + size


def flatten(x):
    return np.concatenate([leaf.ravel() for leaf in _leaves(x)])


def unflatten(like, flat):
    return _rebuild(like, flat)[0]


def numeric_gradient(f, params, *args, eps=1e-6):
    theta = flatten(params)
    grad = np.zeros_like(theta)
    for i in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus[i] += eps
        minus[i] -= eps
        grad[i] = (f(unflatten(params, plus), *args) - f(unflatten(params, minus), *args)) / (2 * eps)
    return unflatten(params, grad)


def check_gradient(f, grad, params, *args, rtol=1e-5, atol=1e-6):
    expected = numeric_gradient(f, params, *args)
    actual, wanted = flatten(grad), flatten(expected)
    if not np.allclose(actual, wanted, rtol=rtol, atol=atol):
        raise AssertionError(
            f"gradient check failed: max abs error {np.max(np.abs(actual - wanted)):.3e}"
        )
    print("gradient check OK")
