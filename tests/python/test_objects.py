"""Parameter containers: functions that read their parameters from an object's attributes
(dataclasses, plain objects, `__slots__`, nested containers, named tuples). The gradient for
an object is a mapping from each differentiable attribute to its gradient (zero for the
attributes the function does not read); forward mode takes the object's tangent as such a
mapping. Checked against finite differences."""

import collections
import copy
import dataclasses
import inspect

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad

RNG = np.random.default_rng(3)


@dataclasses.dataclass
class Layer:
    W: np.ndarray
    b: np.ndarray
    scale: float = 1.0
    n_units: int = 3
    name: str = "layer"


class Plain:
    def __init__(self, w, c):
        self.w = w
        self.c = c


class Slotted:
    __slots__ = ("w", "c")

    def __init__(self, w, c):
        self.w = w
        self.c = c


@dataclasses.dataclass
class Net:
    first: Layer
    second: Layer
    weights: list


Pair = collections.namedtuple("Pair", ["a", "b"])


def layer_loss(p, x):
    h = np.tanh(p.W @ x + p.b)
    return np.sum(h * h) * p.scale


def unused_attributes(p, x):
    return np.sum(p.W @ x)


def plain_loss(o, x):
    return np.sum(np.sin(o.w * x) + o.c * x)


def net_loss(net, x):
    h = np.tanh(net.first.W @ x + net.first.b)
    y = net.second.W @ h + net.second.b
    return np.sum(y * y) + net.weights[0] * np.sum(h) + net.weights[1]


def pair_loss(p, x):
    return np.sum(p.a * x + p.b * x * x)


def loop_over_layers(layers, x):
    h = x
    for layer in layers:
        h = np.tanh(layer.W @ h + layer.b)
    return np.sum(h)


def _layer(n_out, n_in):
    return Layer(RNG.standard_normal((n_out, n_in)), RNG.standard_normal(n_out), 0.7)


def _fd(f, obj, x, path, eps=1e-6):
    """Central differences with respect to the attribute at `path` of `obj`."""
    def get(o):
        for p in path:
            o = o[p] if isinstance(p, int) else getattr(o, p)
        return o

    def with_value(o, value, path):
        head, rest = path[0], path[1:]
        if isinstance(head, int):
            items = list(o)
            items[head] = value if not rest else with_value(items[head], value, rest)
            return items
        new = value if not rest else with_value(getattr(o, head), value, rest)
        if dataclasses.is_dataclass(o):
            return dataclasses.replace(o, **{head: new})
        if hasattr(o, "_replace"):
            return o._replace(**{head: new})
        clone = type(o).__new__(type(o))
        for k in getattr(o, "__slots__", None) or vars(o):
            setattr(clone, k, getattr(o, k))
        setattr(clone, head, new)
        return clone

    base = np.asarray(get(obj), dtype=float)
    out = np.zeros_like(base)
    for i in range(base.size):
        e = np.zeros_like(base)
        e.flat[i] = eps
        plus = with_value(obj, (base + e) if base.ndim else float(base + e), path)
        minus = with_value(obj, (base - e) if base.ndim else float(base - e), path)
        out.flat[i] = (f(plus, x) - f(minus, x)) / (2 * eps)
    return out


def _at(g, path):
    for p in path:
        g = g[p]
    return g


@pytest.mark.parametrize("optimized", [True, False])
def test_dataclass_parameters(optimized):
    p, x = _layer(3, 4), RNG.standard_normal(4)
    g = tangent.grad(layer_loss, optimized=optimized)(p, x)
    assert set(g) == {"W", "b", "scale"}, "ints and strings have no gradient"
    for path in (["W"], ["b"], ["scale"]):
        assert_close(_at(g, path), _fd(layer_loss, p, x, path))
    # With respect to the object and the array at once.
    gp, gx = tangent.grad(layer_loss, wrt=(0, 1), optimized=optimized)(p, x)
    assert_close(gp["W"], g["W"])
    eps = 1e-6
    fd_x = np.array([(layer_loss(p, x + eps * e) - layer_loss(p, x - eps * e)) / (2 * eps) for e in np.eye(4)])
    assert_close(gx, fd_x)


def test_attributes_not_read_get_zero_gradients():
    p, x = _layer(2, 3), RNG.standard_normal(3)
    g = tangent.grad(unused_attributes)(p, x)
    assert set(g) == {"W", "b", "scale"}
    assert np.all(g["b"] == 0.0) and g["scale"] == 0.0
    assert_close(g["W"], _fd(unused_attributes, p, x, ["W"]))


@pytest.mark.parametrize("cls", [Plain, Slotted])
def test_plain_and_slotted_objects(cls):
    o, x = cls(RNG.standard_normal(3), 0.4), RNG.standard_normal(3)
    g = tangent.grad(plain_loss)(o, x)
    assert set(g) == {"w", "c"}
    assert_close(g["w"], _fd(plain_loss, o, x, ["w"]))
    assert_close(g["c"], _fd(plain_loss, o, x, ["c"]))


def test_nested_containers():
    net = Net(_layer(3, 2), _layer(2, 3), [0.5, -1.5])
    x = RNG.standard_normal(2)
    g = tangent.grad(net_loss)(net, x)
    for path in (["first", "W"], ["first", "b"], ["second", "W"], ["second", "b"], ["weights", 0], ["weights", 1]):
        assert_close(_at(g, path), _fd(net_loss, net, x, path), what=str(path))


def test_named_tuple_attributes():
    p, x = Pair(RNG.standard_normal(3), 0.3), RNG.standard_normal(3)
    g = tangent.grad(pair_loss)(p, x)
    assert_close(g["a"], _fd(pair_loss, p, x, ["a"]))
    assert_close(g["b"], _fd(pair_loss, p, x, ["b"]))


def test_list_of_objects_in_a_loop():
    layers, x = [_layer(3, 2), _layer(3, 3)], RNG.standard_normal(2)
    g = tangent.grad(loop_over_layers)(layers, x)
    for i in range(2):
        for attr in ("W", "b"):
            assert_close(g[i][attr], _fd(loop_over_layers, layers, x, [i, attr]), what=f"layer {i}.{attr}")


def test_forward_mode_takes_a_mapping_tangent():
    p, x = _layer(3, 4), RNG.standard_normal(4)
    g = tangent.grad(layer_loss)(p, x)
    direction = {"W": RNG.standard_normal((3, 4)), "scale": 0.5}
    jvp = tangent.jvp(layer_loss)(p, x, direction)
    assert_close(jvp, np.sum(g["W"] * direction["W"]) + g["scale"] * 0.5)


# --- methods ------------------------------------------------------------------------------


def _activation(v):
    return np.tanh(v)


class Model:
    def __init__(self, W, b, temperature=1.0):
        self.W = W
        self.b = b
        self.temperature = temperature
        self.name = "model"

    def forward(self, x):
        return _activation(self.W @ x + self.b) / self.temperature

    def penalty(self):
        return 0.01 * np.sum(self.W * self.W)

    def loss(self, x, y):
        r = self.forward(x) - y
        return np.sum(r * r) + self.penalty()


@dataclasses.dataclass
class Quadratic:
    A: np.ndarray
    c: float

    def value(self, x):
        return x @ self.A @ x + self.c * np.sum(x)


def _model():
    return Model(RNG.standard_normal((3, 4)), RNG.standard_normal(3), 1.3)


def _fd_x(f, x, eps=1e-6):
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


@pytest.mark.parametrize("optimized", [True, False])
def test_method_gradient_with_respect_to_self(optimized):
    m, x, y = _model(), RNG.standard_normal(4), RNG.standard_normal(3)
    g = tangent.grad(Model.loss, optimized=optimized)(m, x, y)
    assert set(g) == {"W", "b", "temperature"}

    def loss_of(obj, _x):
        return Model.loss(obj, x, y)

    for attr in ("W", "b", "temperature"):
        assert_close(g[attr], _fd(loss_of, m, x, [attr]), what=attr)


def test_bound_method_gradients():
    m, x, y = _model(), RNG.standard_normal(4), RNG.standard_normal(3)
    gx = tangent.grad(m.loss)(x, y)
    assert_close(gx, _fd_x(lambda v: m.loss(v, y), x))
    gx2, gy = tangent.grad(m.loss, wrt=(0, 1))(x, y)
    assert_close(gx2, gx)
    assert_close(gy, _fd_x(lambda v: m.loss(x, v), y))
    gself = tangent.grad(m.loss, wrt="self")(x, y)
    assert_close(gself["W"], tangent.grad(Model.loss)(m, x, y)["W"])


def test_dataclass_method():
    q = Quadratic(RNG.standard_normal((3, 3)), 0.4)
    x = RNG.standard_normal(3)
    assert_close(tangent.grad(q.value)(x), _fd_x(q.value, x))
    g = tangent.grad(Quadratic.value)(q, x)
    assert_close(g["A"], np.outer(x, x))
    assert_close(g["c"], np.sum(x))


def test_method_forward_mode():
    m, x, y = _model(), RNG.standard_normal(4), RNG.standard_normal(3)
    g = tangent.grad(Model.loss)(m, x, y)
    direction = {"W": RNG.standard_normal((3, 4)), "b": RNG.standard_normal(3)}
    jvp = tangent.jvp(Model.loss)(m, x, y, direction)
    assert_close(jvp, np.sum(g["W"] * direction["W"]) + np.sum(g["b"] * direction["b"]))
    dx = RNG.standard_normal(4)
    assert_close(tangent.jvp(m.loss)(x, y, dx), float(tangent.grad(m.loss)(x, y) @ dx))


# --- second order through object gradients ---------------------------------------------


def _direction_like(g, rng):
    """A random direction with the structure of the gradient `g` (dicts, lists, arrays)."""
    if isinstance(g, dict):
        return {k: _direction_like(v, rng) for k, v in g.items()}
    if isinstance(g, list):
        return [_direction_like(v, rng) for v in g]
    return rng.standard_normal(np.shape(g)) if np.ndim(g) else float(rng.standard_normal())


def _moved(obj, direction, eps):
    """A deep copy of `obj` moved by `eps * direction` (a gradient-shaped mapping)."""
    def move(value, d):
        if isinstance(d, dict):
            out = copy.deepcopy(value)
            for k, dk in d.items():
                setattr(out, k, move(getattr(value, k), dk))
            return out
        if isinstance(d, list):
            return [move(v, dv) for v, dv in zip(value, d)]
        return value + eps * d
    return move(obj, direction)


def _flat_grad(g):
    if isinstance(g, dict):
        return np.concatenate([_flat_grad(g[k]) for k in sorted(g)])
    if isinstance(g, list):
        return np.concatenate([_flat_grad(v) for v in g])
    return np.atleast_1d(np.asarray(g, dtype=float)).ravel()


def _second_order_cases():
    x4 = RNG.standard_normal(4)
    net = Net(_layer(3, 4), _layer(2, 3), [0.5, -0.3])
    return {
        "dataclass": (layer_loss, (_layer(3, 4), x4)),
        "plain object": (plain_loss, (Plain(RNG.standard_normal(4), 0.4), x4)),
        "nested and listed": (net_loss, (net, x4)),
        "method calling methods": (Model.loss, (_model(), x4, RNG.standard_normal(3))),
        "dataclass method": (Quadratic.value, (Quadratic(RNG.standard_normal((4, 4)), 0.3), x4)),
    }


SECOND_ORDER = _second_order_cases()


@pytest.mark.parametrize("case", sorted(SECOND_ORDER))
def test_hessian_vector_products_with_respect_to_an_object(case):
    """H v along a direction given as a mapping of attributes (forward over reverse), and
    v^T H by differentiating the gradient again (reverse over reverse), against central
    differences of the object's gradient."""
    f, args = SECOND_ORDER[case]
    grad = tangent.grad(f)
    v = _direction_like(grad(*args), np.random.default_rng(4))
    eps = 1e-5
    plus = grad(_moved(args[0], v, eps), *args[1:])
    minus = grad(_moved(args[0], v, -eps), *args[1:])
    expected = (_flat_grad(plus) - _flat_grad(minus)) / (2 * eps)
    hv = tangent.hvp(f)(*args, v)
    np.testing.assert_allclose(_flat_grad(hv), expected, rtol=1e-5, atol=1e-6)
    vjp = tangent.vjp(grad)
    full = list(inspect.signature(grad).bind(*args).arguments.values()) + [1.0]
    np.testing.assert_allclose(_flat_grad(vjp(*full, v)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["method calling methods", "dataclass method"])
def test_hessian_vector_products_of_methods_with_respect_to_an_argument(case):
    f, args = SECOND_ORDER[case]
    grad = tangent.grad(f, wrt=1)
    v = np.random.default_rng(6).standard_normal(args[1].shape)
    eps = 1e-5
    expected = (grad(args[0], args[1] + eps * v, *args[2:]) - grad(args[0], args[1] - eps * v, *args[2:])) / (2 * eps)
    np.testing.assert_allclose(tangent.hvp(f, wrt=1)(*args, v), expected, rtol=1e-5, atol=1e-6)


# --- inheritance ----------------------------------------------------------------------------


class Base:
    def __init__(self, W, b):
        self.W = W
        self.b = b

    def forward(self, x):
        return np.tanh(self.W @ x + self.b)

    def penalty(self):
        return 0.05 * np.sum(self.W * self.W)


class Inherits(Base):
    def loss(self, x):
        return np.sum(self.forward(x) ** 2) + self.penalty()


class CallsSuper(Base):
    def forward(self, x):
        return super().forward(x) * 1.5 + 0.1 * x[0]

    def loss(self, x):
        return np.sum(self.forward(x) ** 2)


class AbstractLoss:
    def __init__(self, W, b):
        self.W = W
        self.b = b

    def loss(self, x, y):
        r = self.predict(x) - y
        return np.sum(r * r) + self.regularizer()

    def regularizer(self):
        return 0.01 * np.sum(self.W * self.W)


class SinModel(AbstractLoss):
    def predict(self, x):
        return np.sin(self.W @ x) + self.b


class Overrides(Inherits):
    def forward(self, x):
        return np.sin(self.W @ x) * 2.0


def _attribute_fd(obj, f, attr, eps=1e-6):
    value = getattr(obj, attr)
    g = np.zeros_like(value)
    for k in np.ndindex(value.shape):
        old = value[k]
        value[k] = old + eps
        hi = f()
        value[k] = old - eps
        lo = f()
        value[k] = old
        g[k] = (hi - lo) / (2 * eps)
    return g


def _inheritance_objects():
    W, b = RNG.standard_normal((3, 4)) * 0.5, RNG.standard_normal(3) * 0.5
    return {
        "inherited method": Inherits(W.copy(), b.copy()),
        "super()": CallsSuper(W.copy(), b.copy()),
        "abstract base": SinModel(W.copy(), b.copy()),
        "override of a method the loss calls": Overrides(W.copy(), b.copy()),
    }


@pytest.mark.parametrize("case", sorted(_inheritance_objects()))
def test_methods_through_inheritance(case):
    """Bound methods of subclass instances: `self.m(...)` is looked up in the instance's class
    (inherited, overridden, abstract in the base), `super().m(...)` in the bases; gradients
    w.r.t. self and an argument against finite differences, and H v w.r.t. the argument."""
    obj = _inheritance_objects()[case]
    x = RNG.standard_normal(4)
    args = (x, RNG.standard_normal(3)) if isinstance(obj, AbstractLoss) else (x,)
    g = tangent.grad(obj.loss, wrt="self")(*args)
    for attr in ("W", "b"):
        expected = _attribute_fd(obj, lambda: obj.loss(*args), attr)
        assert_close(g[attr], expected, rtol=1e-5, atol=1e-7, what=f"d/d{attr}")
    gx = tangent.grad(obj.loss)(*args)
    eye = np.eye(4)
    fd_x = np.array([(obj.loss(x + 1e-6 * e, *args[1:]) - obj.loss(x - 1e-6 * e, *args[1:])) / 2e-6 for e in eye])
    assert_close(gx, fd_x, rtol=1e-5, atol=1e-7, what="d/dx")
    v = RNG.standard_normal(4)
    hv = tangent.hvp(obj.loss)(*args, v)
    grad_x = tangent.grad(obj.loss)
    expected = (grad_x(x + 1e-5 * v, *args[1:]) - grad_x(x - 1e-5 * v, *args[1:])) / 2e-5
    assert_close(hv, expected, rtol=1e-5, atol=1e-6, what="H v")


def test_unbound_method_of_a_base_class_follows_the_overrides_of_the_object_it_is_called_on():
    """`tangent.grad(Inherits.loss)`, called on an instance whose class overrides `forward`:
    differentiated for that class (its `forward`), at the first call per class; on an
    `Inherits`, Inherits' own."""
    x = RNG.standard_normal(4)
    dloss = tangent.grad(Inherits.loss, wrt=(1,))
    for obj in (Overrides(RNG.standard_normal((3, 4)), RNG.standard_normal(3)), Inherits(RNG.standard_normal((3, 4)), RNG.standard_normal(3))):
        assert_close(dloss(obj, x), numeric_grad(lambda x: obj.loss(x), (x,)), rtol=1e-6, atol=1e-8)
    obj = Overrides(RNG.standard_normal((3, 4)), RNG.standard_normal(3))
    by_object = tangent.grad(Inherits.loss)(obj, x)
    assert_close(by_object["W"], _attribute_fd(obj, lambda: obj.loss(x), "W"), rtol=1e-6, atol=1e-8)


def test_abstract_method_through_the_base_class():
    """`tangent.grad(AbstractLoss.loss)` where only subclasses define `predict`: works on a
    subclass's object; on the base class's own it says how."""
    model, x, y = SinModel(RNG.standard_normal((3, 4)), np.ones(3)), RNG.standard_normal(4), np.ones(3)
    got = tangent.grad(AbstractLoss.loss, wrt=(1,))(model, x, y)
    assert_close(got, numeric_grad(lambda x: model.loss(x, y), (x,)), rtol=1e-6, atol=1e-8)
    with pytest.raises(tangent.NoRecipeError) as info:
        tangent.grad(AbstractLoss.loss)(AbstractLoss(np.ones((3, 4)), np.ones(3)), np.ones(4), np.ones(3))
    message = str(info.value)
    assert "`self.predict` is not a method of `AbstractLoss`" in message
    assert "tangent.grad(model.loss)" in message
