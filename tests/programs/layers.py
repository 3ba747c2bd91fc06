"""Hand-rolled layer classes: a list of layers of different kinds, each with forward()."""

import numpy as np


class Linear:
    def __init__(self, w, b):
        self.w = w
        self.b = b

    def forward(self, x):
        return x @ self.w + self.b


class Tanh:
    def forward(self, x):
        return np.tanh(x)


class Softplus:
    def __init__(self, beta=1.0):
        self.beta = beta

    def forward(self, x):
        return np.log1p(np.exp(self.beta * x)) / self.beta


class Sequential:
    def __init__(self, layers):
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x


def two_layer_loss(w1, b1, w2, b2, x, y):
    hidden = Linear(w1, b1)
    output = Linear(w2, b2)
    h = np.tanh(hidden.forward(x))
    pred = output.forward(h)
    return np.mean((pred - y) ** 2)


def network_loss(layers, x, y):
    h = x
    for layer in layers:
        h = layer.forward(h)
    return np.mean((h - y) ** 2)


def sequential_loss(model, x, y):
    return np.mean((model.forward(x) - y) ** 2)


def build_network(rng, sizes=(3, 5, 2)):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(0.5 * rng.normal(size=(n_in, n_out)), np.zeros(n_out)))
        if i < len(sizes) - 2:
            layers.append(Tanh())
    layers.append(Softplus(beta=2.0))
    return layers


def make_data(rng, n=10):
    x = rng.normal(size=(n, 3))
    y = np.abs(np.sin(x[:, :2]))
    return x, y


if __name__ == "__main__":
    import tangent

    rng = np.random.default_rng(0)
    x, y = make_data(rng)
    w1, b1 = 0.5 * rng.normal(size=(3, 5)), np.zeros(5)
    w2, b2 = 0.5 * rng.normal(size=(5, 2)), np.zeros(2)
    grads = tangent.grad(two_layer_loss, wrt=(0, 1, 2, 3))
    for it in range(30):
        dw1, db1, dw2, db2 = grads(w1, b1, w2, b2, x, y)
        w1, b1, w2, b2 = w1 - 0.1 * dw1, b1 - 0.1 * db1, w2 - 0.1 * dw2, b2 - 0.1 * db2
    print("two-layer loss:", two_layer_loss(w1, b1, w2, b2, x, y))

    layers = build_network(rng)
    dnet = tangent.grad(network_loss)
    for it in range(30):
        g = dnet(layers, x, y)
        for layer, lg in zip(layers, g):
            if isinstance(layer, Linear):
                layer.w = layer.w - 0.1 * lg["w"]
                layer.b = layer.b - 0.1 * lg["b"]
    print("network loss:", network_loss(layers, x, y))
