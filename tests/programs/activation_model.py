"""A configurable classifier whose activation and output head are pluggable objects."""

import numpy as np


class Tanh:
    def fn(self, z):
        return np.tanh(z)


class Swish:
    def __init__(self, beta=1.0):
        self.beta = beta

    def fn(self, z):
        return z / (1.0 + np.exp(-self.beta * z))


class BinaryHead:
    def loglike(self, logits, y):
        return np.sum(y * logits - np.logaddexp(0.0, logits))


class TwoLayerNet:
    def __init__(self, W1, b1, w2, activation=None, head=None):
        self.W1 = W1
        self.b1 = b1
        self.w2 = w2
        self.activation = activation if activation is not None else Tanh()
        self.head = head if head is not None else BinaryHead()

    def hidden(self, X):
        z = X @ self.W1 + self.b1
        return self.activation.fn(z)

    def logits(self, X):
        return self.hidden(X) @ self.w2

    def loss(self, X, y):
        return -self.head.loglike(self.logits(X), y) / len(y)


def make_model(rng, n_in=3, n_hidden=4, activation=None):
    return TwoLayerNet(
        0.5 * rng.normal(size=(n_in, n_hidden)),
        0.1 * rng.normal(size=n_hidden),
        0.5 * rng.normal(size=n_hidden),
        activation=activation,
    )


def make_data(rng, n=30):
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] * X[:, 1] > 0).astype(float)
    return X, y


if __name__ == "__main__":
    import tangent

    rng = np.random.default_rng(0)
    X, y = make_data(rng)
    model = make_model(rng, activation=Swish(beta=1.5))
    dloss = tangent.grad(TwoLayerNet.loss)
    for it in range(40):
        g = dloss(model, X, y)
        model.W1 -= 0.5 * g["W1"]
        model.b1 -= 0.5 * g["b1"]
        model.w2 -= 0.5 * g["w2"]
    print("loss:", model.loss(X, y))
