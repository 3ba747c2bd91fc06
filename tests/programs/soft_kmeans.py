"""Soft k-means: differentiable clustering objective with temperature-controlled assignments."""

import numpy as np


def pairwise_sq_dists(X, C):
    diff = X[:, None, :] - C[None, :, :]
    return np.einsum("nkd,nkd->nk", diff, diff)


def soft_assignments(X, centroids, beta=2.0):
    d2 = pairwise_sq_dists(X, centroids)
    logits = -beta * d2
    logits = logits - logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    return w / w.sum(axis=1, keepdims=True)


def soft_kmeans_loss(centroids, X, beta=2.0):
    d2 = pairwise_sq_dists(X, centroids)
    r = soft_assignments(X, centroids, beta)
    loss = np.sum(r * d2) / X.shape[0]
    del d2, r
    return loss


def free_energy(centroids, X, beta=2.0):
    """-1/beta * sum log sum exp(-beta d2): the smooth minimum of the distances."""
    d2 = pairwise_sq_dists(X, centroids)
    m = np.min(d2, axis=1)
    with np.errstate(under="ignore"):
        s = np.sum(np.exp(-beta * (d2 - m[:, None])), axis=1)
    return np.mean(m - np.log(s) / beta)


def make_clusters(seed=7):
    rng = np.random.default_rng(seed)
    centers = np.array([[-2.0, 0.0], [2.0, 0.5], [0.0, 3.0]])
    return np.vstack([c + 0.6 * rng.standard_normal((20, 2)) for c in centers])


if __name__ == "__main__":
    import tangent

    X = make_clusters()
    rng = np.random.default_rng(1)
    C = X[rng.choice(len(X), 3, replace=False)] + 0.1
    dloss = tangent.grad(free_energy)
    for it in range(60):
        C = C - 0.5 * dloss(C, X)
    print("centroids:\n", C)
    print("soft k-means loss:", soft_kmeans_loss(C, X))
