"""MAP estimation for Bayesian linear regression with a Gaussian prior (scipy.stats)."""

import numpy as np
from scipy.stats import norm

rng = np.random.RandomState(42)
N, D = 40, 3
X_data = rng.randn(N, D)
true_weights = np.array([1.5, -2.0, 0.5])
y_data = X_data @ true_weights + 0.3 * rng.randn(N)


def make_model(X, y, prior_scale=1.0):
    def log_prior(params):
        weights, log_noise = params[:-1], params[-1]
        return np.sum(norm.logpdf(weights, 0.0, prior_scale)) + norm.logpdf(log_noise, 0.0, 1.0)

    def log_likelihood(params):
        weights, log_noise = params[:-1], params[-1]
        mean = X @ weights
        return np.sum(norm.logpdf(y, mean, np.exp(log_noise)))

    def log_posterior(params):
        return log_prior(params) + log_likelihood(params)

    return log_posterior


log_density = make_model(X_data, y_data)


def objective(params, logprob):
    return -logprob(params)


def gaussian_loglike(params, X, y):
    """The likelihood written out by hand, for comparison."""
    w, log_sigma = params[:-1], params[-1]
    sigma = np.exp(log_sigma)
    resid = y - X.dot(w)
    return -0.5 * np.sum(resid ** 2) / sigma ** 2 - len(y) * (log_sigma + 0.5 * np.log(2 * np.pi))


if __name__ == "__main__":
    import tangent
    from _fd import check_gradient

    params = np.zeros(D + 1)
    grad_neg_log_post = tangent.grad(lambda p: -log_density(p))
    check_gradient(lambda p: -log_density(p), grad_neg_log_post(params), params)
    for i in range(200):
        params = params - 0.005 * grad_neg_log_post(params)
    print("MAP weights:", params[:-1], "noise:", np.exp(params[-1]))

    dobjective = tangent.grad(objective)
    print("gradient of the objective at the MAP:", dobjective(params, log_density))
