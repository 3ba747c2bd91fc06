"""Heteroscedastic regression with parameters in a dataclass."""

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass
class Params:
    W: np.ndarray
    b: np.ndarray
    log_scale: float
    name: str = "hetero"


@dataclass
class Config:
    hidden: int = 6
    l2: float = 1e-3


def forward(p, X):
    out = X @ p.W + p.b
    mean, raw_scale = out[:, 0], out[:, 1]
    scale = np.exp(p.log_scale) * np.log1p(np.exp(raw_scale))
    return mean, scale


def gaussian_nll(p, X, y, config=Config()):
    mean, scale = forward(p, X)
    nll = np.mean(0.5 * ((y - mean) / scale) ** 2 + np.log(scale))
    return nll + config.l2 * np.sum(p.W ** 2)


def sgd_update(p, grads, lr):
    return dataclasses.replace(
        p,
        W=p.W - lr * grads["W"],
        b=p.b - lr * grads["b"],
        log_scale=p.log_scale - lr * grads["log_scale"],
    )


def make_data(n=40, seed=9):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + (0.1 + 0.3 * np.abs(X[:, 0])) * rng.normal(size=n)
    return X, y


if __name__ == "__main__":
    import tangent

    X, y = make_data()
    rng = np.random.default_rng(0)
    params = Params(W=0.1 * rng.normal(size=(3, 2)), b=np.zeros(2), log_scale=0.0)
    dnll = tangent.grad(gaussian_nll)
    for epoch in range(50):
        params = sgd_update(params, dnll(params, X, y), lr=0.1)
    print(params.name, "nll", gaussian_nll(params, X, y))
