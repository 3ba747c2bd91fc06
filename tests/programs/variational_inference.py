"""Black-box variational inference with a diagonal Gaussian and the reparameterization trick."""

import numpy as np
from scipy.special import logsumexp


def log_density_banana(z):
    """An un-normalised 2-D banana-shaped target, evaluated on a batch of samples (S, 2)."""
    x, y = z[:, 0], z[:, 1]
    return -0.5 * x ** 2 / 4.0 - 0.5 * (y - 0.25 * x ** 2) ** 2


def log_density_mixture(z):
    comps = np.stack([
        -0.5 * np.sum((z - 1.0) ** 2, axis=1),
        -0.5 * np.sum((z + 1.0) ** 2, axis=1),
    ])
    return logsumexp(comps, axis=0) - np.log(2.0)


def unpack_params(params):
    D = params.shape[0] // 2
    mean, log_std = params[:D], params[D:]
    return mean, log_std


def gaussian_entropy(log_std):
    D = log_std.shape[0]
    return 0.5 * D * (1.0 + np.log(2 * np.pi)) + np.sum(log_std)


def elbo(params, logprob, noise):
    """noise: (S, D) standard normal draws, fixed by the caller."""
    mean, log_std = unpack_params(params)
    samples = noise * np.exp(log_std) + mean
    return gaussian_entropy(log_std) + np.mean(logprob(samples))


def make_variational_objective(logprob, num_samples, D, seed=0):
    rs = np.random.RandomState(seed)
    noise = rs.randn(num_samples, D)

    def variational_objective(params):
        return -elbo(params, logprob, noise)

    return variational_objective


if __name__ == "__main__":
    import tangent

    objective = make_variational_objective(log_density_banana, num_samples=50, D=2)
    grad_objective = tangent.grad(objective)
    params = np.array([0.5, -0.5, -1.0, -1.0])
    m = np.zeros_like(params)
    for i in range(100):
        g = grad_objective(params)
        m = 0.9 * m + g
        params = params - 0.01 * m
        if i % 25 == 0:
            print(f"iter {i}: -ELBO = {objective(params):.3f}")
    print("mean", params[:2], "std", np.exp(params[2:]))
