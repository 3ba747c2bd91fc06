"""Logistic regression: the gradient of the loss, checked against finite differences.

    python examples/logistic.py                # prints the generated code and the check
    tangent grad examples/logistic.py:loss     # prints the generated code only
"""

import sys

import numpy as np


def loss(w, X, y):
    """Mean negative log-likelihood of labels y in {0, 1} under p = sigmoid(X @ w)."""
    logits = np.dot(X, w)
    # log(1 + exp(-z)) for y = 1 and log(1 + exp(z)) for y = 0.
    signs = 1.0 - 2.0 * y
    return np.mean(np.log1p(np.exp(signs * logits)))


def finite_differences(f, w, eps=1e-6):
    g = np.zeros_like(w)
    for i in range(w.size):
        step = np.zeros_like(w)
        step[i] = eps
        g[i] = (f(w + step) - f(w - step)) / (2.0 * eps)
    return g


if __name__ == "__main__":
    import tangent

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = (rng.random(20) < 0.5).astype(float)
    w = 0.5 * rng.standard_normal(3)

    dloss = tangent.grad(loss, verbose=1)
    g = dloss(w, X, y)
    expected = finite_differences(lambda v: loss(v, X, y), w)
    error = np.max(np.abs(g - expected))
    print(f"loss = {loss(w, X, y):.6f}")
    print(f"gradient = {g}")
    print(f"max abs error vs finite differences = {error:.2e}")
    sys.exit(0 if error <= 1e-6 else 1)
