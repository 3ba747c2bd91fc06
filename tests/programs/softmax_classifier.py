"""Multinomial logistic regression (softmax classifier) with a hand-written log-sum-exp."""

import numpy as np


def logsumexp(a, axis=None, keepdims=False):
    a_max = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - a_max), axis=axis, keepdims=True)) + a_max
    if not keepdims:
        out = np.squeeze(out, axis=axis)
    return out


def log_softmax(logits):
    return logits - logsumexp(logits, axis=1, keepdims=True)


def one_hot(labels, num_classes):
    return np.eye(num_classes)[labels]


def cross_entropy(params, X, labels, num_classes=3):
    logits = X @ params["W"] + params["b"]
    targets = one_hot(labels, num_classes)
    return -np.sum(targets * log_softmax(logits)) / X.shape[0]


def regularizer(params, lam):
    penalties = {name: 0.5 * lam * np.sum(value ** 2) for name, value in params.items() if name != "b"}
    return sum(penalties.values())


def loss(params, X, labels, lam=1e-3):
    return cross_entropy(params, X, labels) + regularizer(params, lam)


def init_params(n_features, n_classes, rng):
    return {
        "W": 0.1 * rng.normal(size=(n_features, n_classes)),
        "b": np.zeros(n_classes),
    }


def make_blobs(n_per_class=15, seed=2):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])
    X = np.concatenate([c + rng.normal(size=(n_per_class, 2)) for c in centers])
    labels = np.repeat(np.arange(3), n_per_class)
    return X, labels


if __name__ == "__main__":
    import tangent

    X, labels = make_blobs()
    rng = np.random.default_rng(0)
    params = init_params(2, 3, rng)
    dloss = tangent.grad(loss)
    for it in range(40):
        grads = dloss(params, X, labels)
        for name in params:
            params[name] -= 0.5 * grads[name]
    preds = np.argmax(X @ params["W"] + params["b"], axis=1)
    print("train accuracy", np.mean(preds == labels), "loss", loss(params, X, labels))
