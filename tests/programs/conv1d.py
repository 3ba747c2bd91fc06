"""A 1-D convolutional signal classifier: valid convolution, average pooling, linear readout."""

import numpy as np


def conv1d(x, kernels, bias):
    """x: (length,), kernels: (n_filters, width) -> (n_filters, length - width + 1)."""
    n_filters, width = kernels.shape
    out_len = x.shape[0] - width + 1
    out = np.zeros((n_filters, out_len))
    for k in range(width):
        out += kernels[:, k:k + 1] * x[k:k + out_len][None, :]
    return out + bias[:, None]


def avg_pool(h, size=2):
    n_filters, length = h.shape
    usable = (length // size) * size
    return h[:, :usable].reshape(n_filters, length // size, size).mean(axis=2)


def cnn_logit(params, x):
    h = np.tanh(conv1d(x, params["kernels"], params["bias"]))
    pooled = avg_pool(h)
    return np.sum(pooled * params["readout"]) + params["offset"]


def batch_loss(params, signals, labels):
    total = 0.0
    for x, label in zip(signals, labels):
        z = cnn_logit(params, x)
        total += np.logaddexp(0.0, z) - label * z
    return total / len(signals)


def make_signals(n=12, length=16, seed=13):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    labels = rng.integers(0, 2, size=n).astype(float)
    freqs = np.where(labels > 0, 6.0, 2.0)
    signals = np.sin(2 * np.pi * freqs[:, None] * t[None, :]) + 0.2 * rng.normal(size=(n, length))
    return signals, labels


def init_params(rng, n_filters=3, width=4, length=16):
    pooled_len = (length - width + 1) // 2
    return {
        "kernels": 0.5 * rng.normal(size=(n_filters, width)),
        "bias": np.zeros(n_filters),
        "readout": 0.1 * rng.normal(size=(n_filters, pooled_len)),
        "offset": 0.0,
    }


if __name__ == "__main__":
    import tangent

    signals, labels = make_signals()
    params = init_params(np.random.default_rng(0))
    dloss = tangent.grad(batch_loss)
    for epoch in range(30):
        grads = dloss(params, signals, labels)
        for key in params:
            params[key] = params[key] - 0.3 * grads[key]
    print("loss", batch_loss(params, signals, labels))
