"""Robust linear regression with a pseudo-Huber loss and an intercept column."""

import numpy as np


def design_matrix(X):
    return np.column_stack([np.ones(X.shape[0]), X])


def pseudo_huber(r, delta=1.0):
    return delta ** 2 * (np.sqrt(1.0 + (r / delta) ** 2) - 1.0)


def split_params(theta, n_features):
    coef = theta[: n_features + 1]
    log_delta = theta[n_features + 1]
    return coef, log_delta


def robust_loss(theta, X, y, sample_weight):
    coef, *_ = split_params(theta, X.shape[1])
    A = design_matrix(X)
    residuals = y - A @ coef
    return np.average(pseudo_huber(residuals), weights=sample_weight)


def adaptive_loss(theta, X, y, sample_weight):
    coef, log_delta = split_params(theta, X.shape[1])
    delta = np.exp(log_delta)
    residuals = y - design_matrix(X) @ coef
    # the delta-dependent normaliser keeps the scale identifiable
    return np.average(pseudo_huber(residuals, delta) / delta + np.log(delta), weights=sample_weight)


def least_squares_init(X, y):
    A = design_matrix(X)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return coef


def make_data(n=40, seed=12):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = 1.0 + X @ np.array([2.0, -1.0]) + 0.2 * rng.standard_t(2, size=n)
    y[:3] += 8.0  # outliers
    weights = np.where(np.arange(n) % 5 == 0, 2.0, 1.0)
    return X, y, weights


if __name__ == "__main__":
    import tangent

    X, y, weights = make_data()
    theta = np.concatenate([least_squares_init(X, y), [0.0]])
    dloss = tangent.grad(robust_loss)
    for it in range(200):
        theta = theta - 0.5 * dloss(theta, X, y, weights)
    print("robust coefficients:", theta[:3])
    print("adaptive gradient:", tangent.grad(adaptive_loss)(theta, X, y, weights))
