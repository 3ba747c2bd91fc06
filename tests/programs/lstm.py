"""A single-layer LSTM language-model-style loss over a short sequence of one-hot tokens."""

import numpy as np


def sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def init_lstm(n_in, n_hidden, n_out, rng):
    scale = 1.0 / np.sqrt(n_in + n_hidden)
    return {
        "W": scale * rng.standard_normal((n_in + n_hidden, 4 * n_hidden)),
        "b": np.zeros(4 * n_hidden),
        "W_out": scale * rng.standard_normal((n_hidden, n_out)),
        "b_out": np.zeros(n_out),
    }


def lstm_step(params, x, h, c):
    z = np.concatenate([x, h]) @ params["W"] + params["b"]
    i, f, o, g = np.split(z, 4)
    i = sigmoid(i)
    f = sigmoid(f + 1.0)  # forget-gate bias trick
    o = sigmoid(o)
    g = np.tanh(g)
    c = f * c + i * g
    h = o * np.tanh(c)
    return h, c


def log_softmax(v):
    v = v - np.max(v)
    return v - np.log(np.sum(np.exp(v)))


def lstm_nll(params, tokens, vocab_size):
    n_hidden = params["W_out"].shape[0]
    h = np.zeros(n_hidden)
    c = np.zeros(n_hidden)
    total = 0.0
    for t in range(len(tokens) - 1):
        x = np.zeros(vocab_size)
        x[tokens[t]] = 1.0
        h, c = lstm_step(params, x, h, c)
        logits = h @ params["W_out"] + params["b_out"]
        total = total - log_softmax(logits)[tokens[t + 1]]
    return total / (len(tokens) - 1)


if __name__ == "__main__":
    import tangent

    rng = np.random.default_rng(0)
    vocab = 5
    tokens = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    params = init_lstm(vocab, 8, vocab, rng)
    dnll = tangent.grad(lstm_nll)
    for step in range(20):
        grads = dnll(params, tokens, vocab)
        params = {k: v - 0.5 * grads[k] for k, v in params.items()}
        if step % 5 == 0:
            print(f"step {step}: nll {lstm_nll(params, tokens, vocab):.3f}")
