"""Single-head self-attention block with layer normalisation (a tiny transformer layer)."""

import numpy as np


def softmax(x, axis=-1):
    x = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def layer_norm(x, gamma, beta, eps=1e-5):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


def self_attention(params, x):
    """x: (T, d_model) -- or (B, T, d_model) for a batch."""
    if x.ndim == 3:
        return np.stack([self_attention(params, xb) for xb in x])
    q = x @ params["Wq"]
    k = x @ params["Wk"]
    v = x @ params["Wv"]
    scores = q @ k.T / np.sqrt(q.shape[-1])
    weights = softmax(scores, axis=-1)
    return weights @ v @ params["Wo"]


def transformer_block(params, x):
    h = layer_norm(x + self_attention(params, x), params["gamma"], params["beta"])
    ff = np.tanh(h @ params["W1"]) @ params["W2"]
    return layer_norm(h + ff, params["gamma"], params["beta"])


def regression_loss(params, x, target):
    out = transformer_block(params, x)
    return np.mean((out.mean(axis=0) - target) ** 2)


def init_params(d_model, d_ff, rng):
    s = 1.0 / np.sqrt(d_model)
    return {
        "Wq": s * rng.normal(size=(d_model, d_model)),
        "Wk": s * rng.normal(size=(d_model, d_model)),
        "Wv": s * rng.normal(size=(d_model, d_model)),
        "Wo": s * rng.normal(size=(d_model, d_model)),
        "W1": s * rng.normal(size=(d_model, d_ff)),
        "W2": s * rng.normal(size=(d_ff, d_model)),
        "gamma": np.ones(d_model),
        "beta": np.zeros(d_model),
    }


if __name__ == "__main__":
    import tangent

    rng = np.random.default_rng(0)
    params = init_params(4, 8, rng)
    x = rng.normal(size=(5, 4))
    target = np.array([0.5, -0.5, 1.0, 0.0])
    dloss = tangent.grad(regression_loss)
    for it in range(30):
        grads = dloss(params, x, target)
        params = {name: value - 0.1 * grads[name] for name, value in params.items()}
    print("loss:", regression_loss(params, x, target))
