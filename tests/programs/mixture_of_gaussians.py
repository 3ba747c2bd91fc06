"""Maximum-likelihood fit of a 1-D mixture of Gaussians by gradient ascent."""

import numpy as np
from scipy.special import logsumexp

LOG_2PI = np.log(2 * np.pi)


def normal_logpdf(x, mu, log_sigma):
    return -0.5 * ((x - mu) / np.exp(log_sigma)) ** 2 - log_sigma - 0.5 * LOG_2PI


def unpack(params):
    logits, means, log_sigmas = params
    log_weights = logits - logsumexp(logits)
    return log_weights, means, log_sigmas


def component_log_probs(params, data):
    log_weights, means, log_sigmas = unpack(params)
    cols = [normal_logpdf(data, means[k], log_sigmas[k]) + log_weights[k] for k in range(len(means))]
    return np.column_stack(cols)


def mog_log_likelihood(params, data):
    return np.sum(logsumexp(component_log_probs(params, data), axis=1))


def responsibilities(params, data):
    lp = component_log_probs(params, data)
    return np.exp(lp - logsumexp(lp, axis=1, keepdims=True))


def mog_loglike_2d(logits, means, log_scales, data):
    """Isotropic 2-D mixture written with broadcasting: data (N, 2), means (K, 2)."""
    diffs = data[:, None, :] - means[None, :, :]
    scales = np.exp(log_scales)
    log_norm = -2.0 * log_scales - LOG_2PI
    sq = np.sum(diffs ** 2, axis=2) / scales ** 2
    log_w = logits - logsumexp(logits)
    return np.sum(logsumexp(log_w + log_norm - 0.5 * sq, axis=1))


def sample_data(n=60, seed=4):
    rng = np.random.default_rng(seed)
    z = rng.uniform(size=n) < 0.4
    return np.where(z, rng.normal(-2.0, 0.5, size=n), rng.normal(1.5, 1.0, size=n))


if __name__ == "__main__":
    import tangent

    data = sample_data()
    params = [np.zeros(2), np.array([-1.0, 1.0]), np.zeros(2)]
    neg_ll = lambda p, x: -mog_log_likelihood(p, x) / len(x)
    dparams = tangent.grad(neg_ll)
    for step in range(100):
        grads = dparams(params, data)
        params = [p - 0.1 * g for p, g in zip(params, grads)]
    print("weights", np.exp(unpack(params)[0]), "means", params[1], "sigmas", np.exp(params[2]))
