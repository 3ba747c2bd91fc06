"""A small multi-layer perceptron for regression, parameters as a list of (W, b) pairs."""

import functools

import numpy as np


def relu(x):
    return np.maximum(x, 0.0)


def softplus(x):
    return np.logaddexp(0.0, x)


def init_params(layer_sizes, rng, scale=0.5):
    params = []
    for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        W = scale * rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
        b = scale * rng.standard_normal(n_out)
        params.append((W, b))
    return params


def predict(params, inputs, nonlinearity=np.tanh):
    hidden = inputs
    for W, b in params[:-1]:
        hidden = nonlinearity(hidden @ W + b)
    W_out, b_out = params[-1]
    return hidden @ W_out + b_out


def mse_loss(params, inputs, targets, nonlinearity=np.tanh):
    preds = predict(params, inputs, nonlinearity)
    return np.mean((preds - targets) ** 2)


def l2_norm(params):
    return sum(np.sum(W ** 2) + np.sum(b ** 2) for W, b in params)


def objective(params, inputs, targets, nonlinearity=np.tanh, weight_decay=1e-3):
    return mse_loss(params, inputs, targets, nonlinearity) + weight_decay * l2_norm(params)


relu_objective = functools.partial(objective, nonlinearity=relu)
softplus_objective = functools.partial(objective, nonlinearity=softplus, weight_decay=0.0)


def make_data(n=32, seed=1):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    y = np.sin(X[:, :1]) * np.cos(X[:, 1:]) + 0.05 * rng.randn(n, 1)
    return X, y


if __name__ == "__main__":
    import tangent

    X, y = make_data()
    rng = np.random.default_rng(0)
    params = init_params([2, 8, 8, 1], rng)
    grad_fn = tangent.grad(objective)
    for epoch in range(30):
        grads = grad_fn(params, X, y)
        params = [(W - 0.1 * dW, b - 0.1 * db) for (W, b), (dW, db) in zip(params, grads)]
        if epoch % 10 == 0:
            print(epoch, objective(params, X, y))

    relu_grad = tangent.grad(relu_objective)
    print("relu grad norm", sum(np.sum(dW ** 2) for dW, _ in relu_grad(params, X, y)))
