"""Objects held in attributes, known from the source alone (issue 14, item 3): `tangent build`
and the gradient modules read the class of `self.link` from `self.link = LogLink()` in
`__init__` (or any method, or a base class's, or the class body), through held objects to
three levels (`self.family.link.inverse(eta)`), and check the object's class when the
derivative runs. Attributes assigned objects of different classes, or given to `__init__`,
stay unknown: `tangent build` skips the method and the import hook falls back to the live
module (as `tangent.grad` does).
"""

from __future__ import annotations

import importlib
import subprocess

import numpy as np
import pytest

from gradcheck import assert_close, numeric_grad

MODEL = '''
import numpy as np


class LogLink:
    scale = 1.0

    def inverse(self, eta):
        return np.exp(eta * self.scale)


class SoftplusLink:
    def inverse(self, eta):
        return np.log1p(np.exp(eta))


class Poisson:
    def __init__(self):
        self.link = LogLink()

    def loglike(self, y, mu):
        return np.sum(y * np.log(mu) - mu)


class Base:
    def __init__(self):
        self.family = Poisson()


class GLM(Base):
    def __init__(self, alpha=0.1):
        super().__init__()
        self.alpha = alpha

    def mean(self, beta, X):
        return self.family.link.inverse(X @ beta)

    def loglike(self, beta, X, y):
        mu = self.mean(beta, X)
        return self.family.loglike(y, mu) - self.alpha * np.sum(beta ** 2)


class Either:
    def __init__(self, soft=False):
        if soft:
            self.link = SoftplusLink()
        else:
            self.link = LogLink()

    def mean(self, eta):
        return np.sum(self.link.inverse(eta))


def fit(beta, X, y):
    model = GLM()
    return -model.loglike(beta, X, y)
'''

RNG = np.random.default_rng(14)
X = RNG.normal(size=(6, 3)) * 0.5
Y = RNG.poisson(2.0, size=6).astype(float)
BETA = np.array([0.2, -0.1, 0.3])


@pytest.fixture
def glm(tmp_path, monkeypatch):
    (tmp_path / "glm_static.py").write_text(MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("glm_static")
    yield module, importlib.import_module("glm_static.__grad__"), tmp_path
    for name in ("glm_static", "glm_static.__grad__", "glm_static.__jvp__"):
        __import__("sys").modules.pop(name, None)


def _static(derivative):
    return derivative.__module__ == "glm_static.__grad__"


def test_a_function_making_the_model_and_its_methods_differentiate_from_the_source(glm):
    module, gradients, _ = glm
    d = gradients.dfit
    assert _static(d)
    assert_close(d(BETA, X, Y), numeric_grad(module.fit, (BETA, X, Y)), rtol=1e-6, atol=1e-8)
    d = gradients.dGLM_loglike_dbeta
    assert _static(d)
    model = module.GLM()
    want = numeric_grad(lambda b: model.loglike(b, X, Y), (BETA,))
    assert_close(d(model, BETA, X, Y), want, rtol=1e-6, atol=1e-8)


def test_the_gradient_with_respect_to_self_reaches_the_held_objects(glm):
    module, gradients, _ = glm
    d = gradients.dGLM_mean
    assert _static(d)
    model = module.GLM()
    model.family.link.scale = 0.7
    got = d(model, BETA, X)
    scale = model.family.link.scale

    def with_scale(s):
        model.family.link.scale = s
        return np.sum(model.mean(BETA, X))

    eps = 1e-6
    want = (with_scale(scale + eps) - with_scale(scale - eps)) / (2 * eps)
    assert np.isclose(got["family"]["link"]["scale"], want, rtol=1e-6)


def test_an_object_of_another_class_put_there_is_refused_when_it_runs(glm):
    module, gradients, _ = glm
    model = module.GLM()
    model.family.link = module.SoftplusLink()
    with pytest.raises(TypeError, match="inverse"):
        gradients.dGLM_loglike_dbeta(model, BETA, X, Y)


def test_an_attribute_of_two_classes_is_left_to_the_live_module(glm):
    module, gradients, tmp_path = glm
    assert "Either.mean" in gradients.__tangent_skipped__
    d = gradients.dEither_mean_deta
    assert not _static(d)
    for soft in (False, True):
        obj = module.Either(soft)
        eta = np.array([0.3, -0.2])
        assert_close(d(obj, eta), numeric_grad(obj.mean, (eta,)), rtol=1e-6, atol=1e-8)


def test_tangent_build_writes_them(glm):
    from test_script_layouts import cli

    _, gradients, tmp_path = glm
    out = tmp_path / "out"
    proc = subprocess.run([cli(), "build", ".", "--out", str(out), "-v"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = (out / "glm_static.__grad__.py").read_text()
    for name in ("dfit", "dGLM_mean", "dGLM_loglike", "dPoisson_loglike", "dLogLink_inverse"):
        assert f"\ndef {name}(" in text, name
    assert "assert tangent.resolves_to(" in text
    assert "Either.mean" in proc.stdout + proc.stderr and "dEither_mean" not in text


SEQUENTIAL = '''
import numpy as np


class Dense:
    def __init__(self, n_in, n_out, seed):
        rng = np.random.default_rng(seed)
        self.W = 0.5 * rng.normal(size=(n_in, n_out))
        self.b = 0.1 * rng.normal(size=n_out)

    def forward(self, x):
        return x @ self.W + self.b


class Tanh:
    def forward(self, x):
        return np.tanh(x)


class Sequential:
    def __init__(self):
        self.layers = [Dense(3, 4, 0), Tanh(), Dense(4, 1, 1)]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def loss(self, x, y):
        return np.mean((self.forward(x)[:, 0] - y) ** 2)
'''


def test_a_list_of_layers_made_in_init_is_unrolled_from_the_source(tmp_path, monkeypatch):
    (tmp_path / "seq_static.py").write_text(SEQUENTIAL)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("seq_static")
    d = importlib.import_module("seq_static.__grad__").dSequential_loss
    assert d.__module__ == "seq_static.__grad__"
    model = module.Sequential()
    x, y = X[:, :3], Y / 4.0
    got = d(model, x, y)
    for i, name in [(0, "W"), (0, "b"), (2, "W"), (2, "b")]:
        layer = model.layers[i]
        value = getattr(layer, name)

        def loss_at(v, layer=layer, name=name, value=value):
            setattr(layer, name, v)
            try:
                return model.loss(x, y)
            finally:
                setattr(layer, name, value)

        assert_close(got["layers"][i][name], numeric_grad(loss_at, (value,)), rtol=1e-6, atol=1e-8)
    model.layers.append(module.Tanh())
    with pytest.raises(AssertionError, match="3 objects in `self.layers`"):
        d(model, x, y)
