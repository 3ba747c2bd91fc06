"""Penalised least squares assembled from small helpers: *args/**kwargs pass-through,
functools.partial, and penalties chosen by name."""

import functools

import numpy as np


def l2_penalty(w, lam=1.0):
    return lam * np.sum(w ** 2)


def smooth_l1_penalty(w, lam=1.0, eps=1e-2):
    return lam * np.sum(np.sqrt(w ** 2 + eps))


PENALTIES = {"l2": l2_penalty, "smooth_l1": smooth_l1_penalty}


def squared_error(w, X, y):
    r = X @ w - y
    return 0.5 * np.mean(r ** 2)


def add_terms(*terms, weights=None):
    if weights is None:
        weights = [1.0] * len(terms)
    total = 0.0
    for term, weight in zip(terms, weights):
        total = total + weight * term
    return total


def apply_penalty(penalty, w, *args, **kwargs):
    return penalty(w, *args, **kwargs)


def penalized_loss(w, X, y, penalty=l2_penalty, **penalty_kwargs):
    data_term = squared_error(w, X, y)
    reg_term = apply_penalty(penalty, w, **penalty_kwargs)
    return add_terms(data_term, reg_term)


def elastic_net(w, X, y, alpha=0.1, l1_ratio=0.5):
    return add_terms(
        squared_error(w, X, y),
        smooth_l1_penalty(w),
        l2_penalty(w),
        weights=[1.0, alpha * l1_ratio, 0.5 * alpha * (1 - l1_ratio)],
    )


ridge_loss = functools.partial(penalized_loss, penalty=l2_penalty, lam=0.1)
lasso_like_loss = functools.partial(penalized_loss, penalty=PENALTIES["smooth_l1"], lam=0.05)


def make_data(n=30, d=5, seed=11):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w_true = np.array([1.0, 0.0, -2.0, 0.0, 0.5])
    return X, X @ w_true + 0.1 * rng.normal(size=n)


if __name__ == "__main__":
    import tangent

    X, y = make_data()
    for name, loss in [("ridge", ridge_loss), ("lasso-like", lasso_like_loss)]:
        dloss = tangent.grad(loss)
        w = np.zeros(X.shape[1])
        for it in range(200):
            w = w - 0.1 * dloss(w, X, y)
        print(name, np.round(w, 3))
    print("elastic net grad:", tangent.grad(elastic_net)(w, X, y))
