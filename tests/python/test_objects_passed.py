"""Objects passed as arguments to a plain function (issue 14, item 3).

`loss(layer, x, y)` calling `layer.forward(x)`, `net.predict(x)` whose method calls the
methods of the objects `net` holds: the classes are read from the arguments the derivative is
called with (one derivative per set of classes), and the generated code checks them.
"""

from __future__ import annotations

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad


class Tanh:
    def fn(self, z):
        return np.tanh(z)


class Softplus:
    def fn(self, z):
        return np.log1p(np.exp(z))


class Linear:
    def __init__(self, w, b, act):
        self.w = w
        self.b = b
        self.act = act

    def forward(self, x):
        return self.act.fn(x @ self.w + self.b)


class Scaled(Linear):
    def forward(self, x):
        return 2.0 * super().forward(x)


class Net:
    def __init__(self, first, second):
        self.first = first
        self.second = second

    def predict(self, x):
        return self.second.forward(self.first.forward(x))


def layer_loss(layer, x, y):
    return np.sum((layer.forward(x) - y) ** 2)


def net_loss(net, x, y):
    return np.mean((net.predict(x) - y) ** 2)


def held_loss(net, x):
    h = net.first.forward(x)
    return np.sum(net.second.forward(h))


def weights_loss(w, layer, x):
    return np.sum(layer.act.fn(x @ w) * layer.b)


RNG = np.random.default_rng(1414)
X = RNG.normal(size=(4, 3))
Y = RNG.normal(size=(4, 2))


def linear(n_in, n_out, act=None):
    return Linear(RNG.normal(size=(n_in, n_out)), RNG.normal(size=n_out), act or Tanh())


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_method_of_an_object_argument(optimized):
    layer = linear(3, 2)
    got = tangent.grad(layer_loss, wrt=(1,), optimized=optimized)(layer, X, Y)
    assert_close(got, numeric_grad(layer_loss, (layer, X, Y), wrt=(1,)), rtol=1e-6, atol=1e-8)
    by_object = tangent.grad(layer_loss, optimized=optimized)(layer, X, Y)
    assert set(by_object) == {"w", "b", "act"}
    eps = 1e-6
    for name in ("w", "b"):
        value = getattr(layer, name)
        fd = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            up, down = value.copy(), value.copy()
            up[i] += eps
            down[i] -= eps
            hi = layer_loss(Linear(up if name == "w" else layer.w, up if name == "b" else layer.b, layer.act), X, Y)
            lo = layer_loss(Linear(down if name == "w" else layer.w, down if name == "b" else layer.b, layer.act), X, Y)
            fd[i] = (hi - lo) / (2 * eps)
        assert_close(by_object[name], fd, rtol=1e-6, atol=1e-8)


def test_objects_held_by_an_argument_and_their_methods():
    net = Net(linear(3, 3, Softplus()), linear(3, 2, Softplus()))
    assert_close(tangent.grad(net_loss, wrt=(1,))(net, X, Y), numeric_grad(net_loss, (net, X, Y), wrt=(1,)), rtol=1e-6, atol=1e-8)
    assert_close(tangent.grad(held_loss, wrt=(1,))(net, X), numeric_grad(held_loss, (net, X), wrt=(1,)), rtol=1e-6, atol=1e-8)


def test_another_class_gets_its_own_derivative():
    df = tangent.grad(layer_loss, wrt=(1,))
    plain, scaled = linear(3, 2), Scaled(RNG.normal(size=(3, 2)), RNG.normal(size=2), Softplus())
    assert_close(df(plain, X, Y), numeric_grad(layer_loss, (plain, X, Y), wrt=(1,)), rtol=1e-6, atol=1e-8)
    assert_close(df(scaled, X, Y), numeric_grad(layer_loss, (scaled, X, Y), wrt=(1,)), rtol=1e-6, atol=1e-8)


def test_forward_mode_and_hvp_with_an_object_argument():
    layer = linear(3, 2)
    w = RNG.normal(size=(3, 2))
    v = RNG.normal(size=(3, 2))
    eps = 1e-6
    fd = (weights_loss(w + eps * v, layer, X) - weights_loss(w - eps * v, layer, X)) / (2 * eps)
    assert np.isclose(tangent.jvp(weights_loss)(w, layer, X, v), fd, rtol=1e-6, atol=1e-8)
    g = tangent.grad(weights_loss)
    fd_hv = (g(w + eps * v, layer, X) - g(w - eps * v, layer, X)) / (2 * eps)
    assert_close(tangent.hvp(weights_loss)(w, layer, X, v), fd_hv, rtol=1e-5, atol=1e-6)


def test_an_argument_of_no_known_class_is_still_refused():
    with pytest.raises(tangent.NoRecipeError, match="forward"):
        tangent.grad(layer_loss, wrt=(1,))(object(), X, Y)


def test_objects_of_one_class_holding_different_classes_are_refused_not_guessed():
    """Two `Linear`s whose `act` are of different classes: `Linear.forward` cannot be one
    derivative for both; refused with the line, never a gradient of the wrong method."""
    net = Net(linear(3, 3, Tanh()), linear(3, 2, Softplus()))
    with pytest.raises(tangent.TangentError):
        tangent.grad(net_loss, wrt=(1,))(net, X, Y)


class Quadratic:
    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __call__(self, x):
        return 0.5 * x @ self.a @ x - self.b @ x


class Barrier:
    def __init__(self, strength):
        self.strength = strength

    def __call__(self, x):
        return -self.strength * np.sum(np.log(4.0 - x * x))


class Sequential:
    def __init__(self, layers):
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def loss(self, x, y):
        return np.mean((self.forward(x) - y) ** 2)


def network_loss(layers, x, y):
    h = x
    for layer in layers:
        h = layer.forward(h)
    return np.mean((h - y) ** 2)


def energy(x, quad):
    return quad(x) + 0.1 * np.sum(x**4)


def total(x, terms):
    return sum(term(x) for term in terms)


def stacked(x, terms):
    values = [term(x) for term in terms]
    return values[0] * values[-1]


class SoftplusLayer:
    def forward(self, x):
        return np.log1p(np.exp(x))


def layers_of_kinds():
    """Layers of three classes (the `act` of each `Linear` is a `Tanh`: objects of one class
    holding different classes at one attribute are refused, see above)."""
    return [linear(3, 4), SoftplusLayer(), linear(4, 4), Scaled(RNG.normal(size=(4, 2)), RNG.normal(size=2), Tanh())]


def spd(n):
    m = RNG.normal(size=(n, n))
    return m @ m.T / n + np.eye(n)


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_a_list_of_objects_of_different_classes_iterated(optimized):
    layers = layers_of_kinds()
    df = tangent.grad(network_loss, wrt=(1,), optimized=optimized)
    assert_close(df(layers, X, Y), numeric_grad(network_loss, (layers, X, Y), wrt=(1,)), rtol=1e-6, atol=1e-8)
    longer = layers[:2] + [SoftplusLayer()] + layers[2:]
    assert_close(df(longer, X, Y), numeric_grad(network_loss, (longer, X, Y), wrt=(1,)), rtol=1e-6, atol=1e-8)
    v = RNG.normal(size=X.shape)
    eps = 1e-6
    fd = (network_loss(layers, X + eps * v, Y) - network_loss(layers, X - eps * v, Y)) / (2 * eps)
    assert np.isclose(tangent.jvp(network_loss, wrt=(1,))(layers, X, Y, v), fd, rtol=1e-6, atol=1e-8)


def test_a_model_holding_a_list_of_layers():
    model = Sequential(layers_of_kinds())
    dloss = tangent.grad(model.loss)
    assert_close(dloss(X, Y), numeric_grad(model.loss, (X, Y)), rtol=1e-6, atol=1e-8)

    def sequential_loss(m, x, y):
        return np.mean((m.forward(x) - y) ** 2)

    globals()["sequential_loss"] = sequential_loss  # a function of this module, as written
    try:
        assert_close(
            tangent.grad(sequential_loss, wrt=(1,))(model, X, Y),
            numeric_grad(sequential_loss, (model, X, Y), wrt=(1,)),
            rtol=1e-6,
            atol=1e-8,
        )
    finally:
        del globals()["sequential_loss"]
    # The list changed after the derivative was made: refused when it runs, not wrong.
    model.layers.append(linear(2, 2, Tanh()))
    with pytest.raises(AssertionError, match="generated for 4 objects"):
        dloss(X, Y)


@pytest.mark.parametrize("f", [energy, total, stacked], ids=["callable_argument", "sum_over_callables", "list_of_callables"])
def test_callable_objects_passed_in(f):
    x = RNG.uniform(-1.0, 1.0, size=4)
    quad = Quadratic(spd(4), RNG.normal(size=4))
    arg = quad if f is energy else [quad, Barrier(0.1)]
    assert_close(tangent.grad(f)(x, arg), numeric_grad(f, (x, arg)), rtol=1e-6, atol=1e-8)
    v = RNG.normal(size=4)
    eps = 1e-6
    fd = (f(x + eps * v, arg) - f(x - eps * v, arg)) / (2 * eps)
    assert np.isclose(tangent.jvp(f)(x, arg, v), fd, rtol=1e-6, atol=1e-8)
    g = tangent.grad(f)
    fd_hv = (g(x + eps * v, arg) - g(x - eps * v, arg)) / (2 * eps)
    assert_close(tangent.hvp(f)(x, arg, v), fd_hv, rtol=1e-5, atol=1e-6)
