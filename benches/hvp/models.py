"""Models for the HVP benchmark (plain NumPy; Tangent reads their source)."""

import numpy as np


def mlp_loss(W1, b1, W2, b2, X, onehot):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(np.sum(onehot * log_probs, axis=1))
