"""L2-regularised logistic regression on synthetic data, with per-sample weights."""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def log_loss(y_true, p, sample_weight=None):
    eps = 1e-12
    p = np.clip(p, eps, 1 - eps)
    losses = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
    return np.average(losses, weights=sample_weight)


def predict_proba(w, b, X):
    return sigmoid(X @ w + b)


def nll(w, b, X, y, l2=1e-2):
    p = predict_proba(w, b, X)
    return log_loss(y, p) + 0.5 * l2 * np.dot(w, w)


def make_loss(X, y, sample_weight=None, l2=1e-2):
    n_features = X.shape[1]

    def loss(params):
        w = params["w"]
        b = params["b"]
        p = predict_proba(w, b, X)
        return log_loss(y, p, sample_weight) + 0.5 * l2 * np.sum(w ** 2) / n_features

    return loss


def make_data(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    true_w = rng.normal(size=d)
    y = (rng.uniform(size=n) < sigmoid(X @ true_w)).astype(float)
    weights = rng.uniform(0.5, 1.5, size=n)
    return X, y, weights


def accuracy(params, X, y):
    return np.mean((predict_proba(params["w"], params["b"], X) > 0.5) == y)


if __name__ == "__main__":
    import tangent

    X, y, weights = make_data()
    loss = make_loss(X, y, sample_weight=weights)
    params = {"w": np.zeros(X.shape[1]), "b": 0.0}
    dloss = tangent.grad(loss)
    for step in range(50):
        g = dloss(params)
        params = {k: params[k] - 0.5 * g[k] for k in params}
        if step % 10 == 0:
            print(f"step {step:3d}  loss {loss(params):.4f}  acc {accuracy(params, X, y):.2f}")

    dw, db = tangent.grad(nll, wrt=(0, 1))(params["w"], params["b"], X, y)
    print("final |dw| =", np.linalg.norm(dw), "db =", db)
