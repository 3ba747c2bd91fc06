"""Elman RNN for sequence regression: predict the next value of a noisy sine wave."""

import numpy as np


class RNNParams:
    def __init__(self, n_in, n_hidden, n_out, rng):
        self.Wxh = 0.3 * rng.standard_normal((n_hidden, n_in))
        self.Whh = 0.3 * rng.standard_normal((n_hidden, n_hidden))
        self.bh = np.zeros(n_hidden)
        self.Why = 0.3 * rng.standard_normal((n_out, n_hidden))
        self.by = np.zeros(n_out)


def rnn_forward(params, inputs, h0):
    """inputs: (T, n_in). Returns the hidden states (T, n_hidden) and outputs (T, n_out)."""
    h = h0
    hs, ys = [], []
    for t in range(inputs.shape[0]):
        h = np.tanh(params.Wxh @ inputs[t] + params.Whh @ h + params.bh)
        y = params.Why @ h + params.by
        hs.append(h)
        ys.append(y)
    return np.stack(hs), np.stack(ys)


def sequence_loss(params, inputs, targets, h0):
    _, outputs = rnn_forward(params, inputs, h0)
    return 0.5 * np.mean(np.sum((outputs - targets) ** 2, axis=1))


def rnn_loss_weights(Wxh, Whh, Why, inputs, targets):
    """Same model with explicit weight matrices (no biases), as many tutorials write it."""
    hidden_size = Whh.shape[0]
    h = np.zeros(hidden_size)
    loss = 0.0
    for x, target in zip(inputs, targets):
        h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, h))
        y = np.dot(Why, h)
        loss += 0.5 * np.sum((y - target) ** 2)
    return loss / len(inputs)


def make_sequence(T=12, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 3 * np.pi, T + 1)
    series = np.sin(t) + 0.05 * rng.standard_normal(T + 1)
    return series[:-1, None], series[1:, None]


if __name__ == "__main__":
    import tangent

    rng = np.random.default_rng(0)
    inputs, targets = make_sequence()
    params = RNNParams(1, 6, 1, rng)
    h0 = np.zeros(6)
    dloss = tangent.grad(sequence_loss)
    for step in range(25):
        grads = dloss(params, inputs, targets, h0)
        for name, g in grads.items():
            setattr(params, name, getattr(params, name) - 0.1 * np.clip(g, -1, 1))
        if step % 5 == 0:
            print(step, sequence_loss(params, inputs, targets, h0))
