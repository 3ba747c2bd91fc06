"""Objects made inside the differentiated function: `layer = Linear(w, b)` then
`layer.forward(x)`, dataclasses built from differentiated values, constructors with defaults.
Their constructors get recipes written from `__init__` (or the dataclass fields); a method
call on such an object is its class's method, checked when it runs. Gradients, JVPs and HVPs
against central finite differences."""

import importlib.util
import sys

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad

MODULE = '''
import numpy as np
from dataclasses import dataclass


class Linear:
    """A dense layer."""

    def __init__(self, w, b):
        self.w = w
        self.b = b

    def forward(self, x):
        return x @ self.w + self.b


class Scaled(Linear):
    def forward(self, x):
        return 2.0 * super().forward(x)


class Affine:
    def __init__(self, w, shift=0.5):
        self.weights = w
        self.shift = shift

    def __call__(self, x):
        return x * self.weights + self.shift


@dataclass
class Gaussian:
    mean: np.ndarray
    log_std: np.ndarray
    floor: float = 1e-3

    def logpdf(self, x):
        std = np.exp(self.log_std) + self.floor
        return np.sum(-0.5 * ((x - self.mean) / std) ** 2 - np.log(std))


class Logged:
    def __init__(self, w):
        self.w = np.log(w)  # not a plain store: no constructor recipe

    def value(self):
        return self.w


def two_layers(w1, b1, w2, b2, x, y):
    hidden = Linear(w1, b1)
    output = Linear(w2, b2)
    h = np.tanh(hidden.forward(x))
    return np.mean((output.forward(h) - y) ** 2)


def subclass_layer(w, b, x):
    layer = Scaled(w, b)
    return np.sum(layer.forward(x) ** 2)


def dataclass_loss(mean, log_std, x):
    g = Gaussian(mean, log_std)
    return -g.logpdf(x) + 0.1 * np.sum(g.mean ** 2)


def default_argument(w, x):
    f = Affine(w)
    return np.sum(np.sin(f.weights * x) + f.shift)


def not_a_store(w):
    obj = Logged(w)
    return np.sum(obj.value())
'''

RNG = np.random.default_rng(11)


def _module(tmp_path_factory, stem, text):
    """``text`` written to ``<stem>_mod.py`` and imported (a file, as the engine reads)."""
    path = tmp_path_factory.mktemp(stem) / f"{stem}_mod.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"{stem}_mod", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def m(tmp_path_factory):
    return _module(tmp_path_factory, "objects_made", MODULE)


def all_modes(f, args, wrt, optimized):
    grads = tangent.grad(f, wrt=wrt, optimized=optimized)(*args)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for g, numeric in zip(grads, (numeric_grad(f, args, wrt=(i,)) for i in wrt)):
        assert_close(g, numeric, rtol=1e-5, atol=1e-6)
    directions = [np.linspace(-1.0, 1.0, np.size(args[i])).reshape(np.shape(args[i])) for i in wrt]

    def moved(t):
        out = list(args)
        for i, v in zip(wrt, directions):
            out[i] = args[i] + t * v
        return out

    eps = 1e-6
    numeric_jv = (f(*moved(eps)) - f(*moved(-eps))) / (2 * eps)
    assert_close(tangent.jvp(f, wrt=wrt, optimized=optimized)(*args, *directions), numeric_jv, rtol=1e-5, atol=1e-6)
    first = wrt[0]
    dfdx = tangent.grad(f, wrt=first, optimized=optimized)
    v = directions[0]

    def at(t):
        out = list(args)
        out[first] = args[first] + t * v
        return dfdx(*out)

    numeric_hv = (at(1e-5) - at(-1e-5)) / 2e-5
    assert_close(tangent.hvp(f, wrt=first, optimized=optimized)(*args, v), numeric_hv, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimized", [True, False])
def test_layers_made_inside(m, optimized):
    args = (RNG.normal(size=(3, 4)), RNG.normal(size=4), RNG.normal(size=(4, 2)), RNG.normal(size=2),
            RNG.normal(size=(5, 3)), RNG.normal(size=(5, 2)))
    all_modes(m.two_layers, args, (0, 1, 2, 3), optimized)
    all_modes(m.subclass_layer, args[:2] + (args[4],), (0, 1), optimized)


@pytest.mark.parametrize("optimized", [True, False])
def test_dataclass_and_defaults(m, optimized):
    all_modes(m.dataclass_loss, (RNG.normal(size=3), 0.3 * RNG.normal(size=3), RNG.normal(size=3)), (0, 1), optimized)
    all_modes(m.default_argument, (RNG.normal(size=3), RNG.normal(size=3)), (0,), optimized)


def test_a_constructor_that_computes_is_refused(m):
    with pytest.raises(tangent.TangentError, match="Logged"):
        tangent.grad(m.not_a_store)


HELD = '''
import numpy as np


class LogLink:
    def inverse(self, eta):
        return np.exp(eta)


class IdentityLink:
    def inverse(self, eta):
        return eta


class Poisson:
    def __init__(self):
        self.link = LogLink()

    def loglike(self, y, mu):
        return np.sum(y * np.log(mu) - mu)


class Gaussian:
    def __init__(self, link):
        self.link = link

    def loglike(self, y, mu):
        return -0.5 * np.sum((y - mu) ** 2)


class GLM:
    def __init__(self, family, alpha=0.1):
        self.family = family
        self.alpha = alpha

    def mean(self, beta, X):
        return self.family.link.inverse(X @ beta)

    def loss(self, beta, X, y):
        mu = self.mean(beta, X)
        return -self.family.loglike(y, mu) / len(y) + self.alpha * np.sum(beta ** 2)
'''


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    return _module(tmp_path_factory, "objects_held", HELD)


@pytest.mark.parametrize("optimized", [True, False])
def test_methods_of_objects_held_in_attributes_of_a_bound_method_s_object(held, optimized):
    X = 0.3 * RNG.normal(size=(8, 3))
    y = RNG.poisson(2.0, size=8).astype(float)
    beta = 0.2 * RNG.normal(size=3)
    for model in (held.GLM(held.Poisson()), held.GLM(held.Gaussian(held.IdentityLink()), alpha=0.3)):
        all_modes(model.loss, (beta, X, y), (0,), optimized)


def test_an_attribute_object_replaced_by_another_class_is_refused(held):
    model = held.GLM(held.Poisson())
    dloss = tangent.grad(model.loss)
    X = 0.3 * RNG.normal(size=(4, 3))
    y = np.ones(4)
    beta = np.zeros(3)
    dloss(beta, X, y)
    model.family = held.Gaussian(held.LogLink())  # the derivative was written for Poisson
    with pytest.raises(TypeError, match="loglike"):
        dloss(beta, X, y)
