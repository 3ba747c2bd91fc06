"""Entropic optimal transport (log-domain Sinkhorn) between two point clouds."""

import numpy as np
from scipy.special import logsumexp


def cost_matrix(x, y):
    return np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)


def sinkhorn_log(C, a, b, epsilon=0.5, n_iters=30):
    f = np.zeros_like(a)
    g = np.zeros_like(b)
    log_a, log_b = np.log(a), np.log(b)
    for _ in range(n_iters):
        f = -epsilon * logsumexp((g[None, :] - C) / epsilon + log_b[None, :], axis=1)
        g = -epsilon * logsumexp((f[:, None] - C) / epsilon + log_a[:, None], axis=0)
    return f, g


def transport_plan(C, f, g, a, b, epsilon=0.5):
    return a[:, None] * b[None, :] * np.exp((f[:, None] + g[None, :] - C) / epsilon)


def sinkhorn_cost(x, y, epsilon=0.5):
    a = np.full(x.shape[0], 1.0 / x.shape[0])
    b = np.full(y.shape[0], 1.0 / y.shape[0])
    C = cost_matrix(x, y)
    f, g = sinkhorn_log(C, a, b, epsilon)
    P = transport_plan(C, f, g, a, b, epsilon)
    return np.sum(P * C)


if __name__ == "__main__":
    import tangent
    from _fd import check_gradient

    rng = np.random.default_rng(0)
    target = rng.normal(size=(6, 2)) + np.array([2.0, 0.0])
    source = rng.normal(size=(5, 2))

    def flow_loss(points):
        return sinkhorn_cost(points, target)

    dflow = tangent.grad(flow_loss)
    check_gradient(flow_loss, dflow(source), source, rtol=1e-4, atol=1e-6)
    for it in range(40):
        source = source - 1.0 * dflow(source)
    print("OT cost after the flow:", flow_loss(source))
