"""Low-rank matrix completion: R ~ U S V^T on the observed entries, with L2 regularisation."""

import numpy as np
import scipy.sparse


def reconstruct(U, V, S=None):
    if S is None:
        return U @ V.T
    return np.linalg.multi_dot([U, S, V.T])


def masked_mse(R, R_hat, mask):
    if scipy.sparse.issparse(R):
        R = R.toarray()
    err = (R - R_hat) * mask
    return np.sum(err ** 2) / np.sum(mask)


def mf_loss(params, R, mask, reg=0.01):
    U, V = params
    R_hat = reconstruct(U, V)
    return masked_mse(R, R_hat, mask) + reg * (np.sum(U ** 2) + np.sum(V ** 2))


def tri_factor_loss(U, S, V, R, mask, reg=0.01):
    R_hat = reconstruct(U, V, S)
    penalty = np.linalg.norm(U) ** 2 + np.linalg.norm(V) ** 2 + np.linalg.norm(S) ** 2
    return masked_mse(R, R_hat, mask) + reg * penalty


def make_ratings(n_users=8, n_items=6, rank=2, seed=8):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, rank))
    V = rng.normal(size=(n_items, rank))
    R = U @ V.T + 0.1 * rng.normal(size=(n_users, n_items))
    mask = (rng.uniform(size=R.shape) < 0.6).astype(float)
    return R, mask


if __name__ == "__main__":
    import tangent

    R, mask = make_ratings()
    rng = np.random.default_rng(0)
    params = (0.5 * rng.normal(size=(8, 2)), 0.5 * rng.normal(size=(6, 2)))
    grad_fn = tangent.grad(mf_loss)
    for it in range(100):
        dU, dV = grad_fn(params, R, mask)
        params = (params[0] - 0.1 * dU, params[1] - 0.1 * dV)
    print("train loss", mf_loss(params, R, mask))

    U, V = params
    S = np.eye(2)
    dU, dS, dV = tangent.grad(tri_factor_loss, wrt=(0, 1, 2))(U, S, V, R, mask)
    print("|dS| =", np.linalg.norm(dS))
