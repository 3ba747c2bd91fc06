"""Generalised linear models (Poisson and Gamma, log link) with pluggable families."""

import numpy as np
from scipy.special import gammaln


class LogLink:
    def inverse(self, eta):
        return np.exp(eta)


class Poisson:
    def __init__(self):
        self.link = LogLink()

    def loglike(self, y, mu):
        return np.sum(y * np.log(mu) - mu - gammaln(y + 1))


class Gamma:
    def __init__(self, shape=2.0):
        self.link = LogLink()
        self.shape = shape

    def loglike(self, y, mu):
        k = self.shape
        return np.sum(k * np.log(k / mu) + (k - 1) * np.log(y) - k * y / mu - gammaln(k))


class GLM:
    def __init__(self, family, alpha=0.0):
        self.family = family
        self.alpha = alpha

    def mean(self, beta, X):
        return self.family.link.inverse(X @ beta)

    def loglike(self, beta, X, y):
        mu = self.mean(beta, X)
        return self.family.loglike(y, mu)

    def penalized_nll(self, beta, X, y):
        return -self.loglike(beta, X, y) / len(y) + 0.5 * self.alpha * np.sum(beta[1:] ** 2)


def poisson_deviance(beta, X, y):
    mu = np.exp(X @ beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return 2.0 * np.sum(term - (y - mu))


def make_count_data(n=50, seed=5):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    beta = np.array([0.5, 0.3, -0.4])
    y = rng.poisson(np.exp(X @ beta)).astype(float)
    return X, y


def make_positive_data(n=50, seed=6):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    mu = np.exp(X @ np.array([1.0, 0.2, 0.1]))
    y = rng.gamma(2.0, mu / 2.0)
    return X, y


if __name__ == "__main__":
    import tangent

    X, y = make_count_data()
    model = GLM(Poisson(), alpha=0.01)
    beta = np.zeros(X.shape[1])
    dnll = tangent.grad(model.penalized_nll)
    for it in range(100):
        beta -= 0.5 * dnll(beta, X, y)
    print("Poisson coefficients:", beta)
    print("deviance gradient:", tangent.grad(poisson_deviance)(beta, X, y))

    Xg, yg = make_positive_data()
    gamma_model = GLM(Gamma(shape=2.0))
    beta_g = np.zeros(3)
    dll = tangent.grad(gamma_model.loglike)
    for it in range(100):
        beta_g += 0.005 * dll(beta_g, Xg, yg)
    print("Gamma coefficients:", beta_g)
