"""Gaussian-process regression: optimise kernel hyper-parameters by the log marginal likelihood."""

import numpy as np
import scipy.linalg


def sq_dists(X1, X2):
    n1 = np.sum(X1 ** 2, axis=1)
    n2 = np.sum(X2 ** 2, axis=1)
    return n1[:, None] + n2[None, :] - 2.0 * X1 @ X2.T


def rbf_kernel(X1, X2, lengthscale, variance):
    return variance * np.exp(-0.5 * sq_dists(X1, X2) / lengthscale ** 2)


def unpack(log_params):
    lengthscale = np.exp(log_params[0])
    variance = np.exp(log_params[1])
    noise = np.exp(log_params[2])
    return lengthscale, variance, noise


def neg_log_marginal_likelihood(log_params, X, y):
    lengthscale, variance, noise = unpack(log_params)
    n = X.shape[0]
    K = rbf_kernel(X, X, lengthscale, variance) + (noise + 1e-8) * np.eye(n)
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
    data_fit = 0.5 * y @ alpha
    complexity = np.sum(np.log(np.diag(L)))
    return data_fit + complexity + 0.5 * n * np.log(2 * np.pi)


def nlml_scipy(log_params, X, y):
    """The same objective written with scipy's Cholesky helpers."""
    lengthscale, variance, noise = unpack(log_params)
    K = rbf_kernel(X, X, lengthscale, variance) + noise * np.eye(len(X))
    L = scipy.linalg.cholesky(K, lower=True)
    alpha = scipy.linalg.cho_solve((L, True), y)
    return 0.5 * np.dot(y, alpha) + np.log(np.diag(L)).sum() + 0.5 * len(X) * np.log(2 * np.pi)


def posterior_mean(log_params, X, y, X_test):
    lengthscale, variance, noise = unpack(log_params)
    K = rbf_kernel(X, X, lengthscale, variance) + noise * np.eye(len(X))
    K_s = rbf_kernel(X_test, X, lengthscale, variance)
    return K_s @ np.linalg.solve(K, y)


def make_data(n=15, seed=3):
    rng = np.random.default_rng(seed)
    X = np.sort(rng.uniform(-3, 3, size=(n, 1)), axis=0)
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(n)
    return X, y


if __name__ == "__main__":
    import tangent

    X, y = make_data()
    log_params = np.array([0.0, 0.0, np.log(0.1)])
    dnlml = tangent.grad(neg_log_marginal_likelihood)
    for it in range(30):
        log_params = log_params - 0.05 * dnlml(log_params, X, y)
    print("hyper-parameters:", np.exp(log_params))
    print("NLML:", neg_log_marginal_likelihood(log_params, X, y))
