"""Methods in gradient modules: `from model.__grad__ import dLinear_loss` (the import hook,
in a fresh interpreter) and `tangent build` artifacts hold `d<Class>_<method>` for the plain
methods of top-level classes, differentiated w.r.t. `self` (a dict of attribute gradients),
with `_d<param>` variants on demand; checked against finite differences and tangent.grad."""

import subprocess

import pytest

from test_concurrency import tangent_binary
from test_import_hook import run_json

MODEL = '''\
from dataclasses import dataclass

import numpy as np
import tangent


@dataclass
class Linear:
    W: np.ndarray
    b: np.ndarray

    def forward(self, x):
        return np.tanh(self.W @ x + self.b)

    def loss(self, x, y):
        """Squared error of the forward pass."""
        err = self.forward(x) - y
        return np.sum(err * err)


class Scaled:
    def __init__(self, s):
        self.s = s

    def __repr__(self):
        return "Scaled"

    def apply(self, x):
        with_self = self.twice(x)
        return np.sum(np.sin(with_self) * self.s)

    def twice(self, x):
        return x * 2.0

    @tangent.checkpoint
    def rollout(self, x):
        h = x
        for i in range(6):
            h = np.sin(h) * self.s + x
        return np.sum(h)

    @staticmethod
    def helper(x):
        return x * 3.0


def plain(x):
    return np.sum(x * x)


class Abstract:
    def __init__(self, W):
        self.W = W

    def loss(self, x):
        return np.sum(self.predict(x) ** 2)


class Concrete(Abstract):
    def predict(self, x):
        return np.tanh(self.W @ x)
'''

CHILD = """
import json
import numpy as np
import tangent
import model
from model.__grad__ import dLinear_loss, dLinear_forward, dScaled_apply, dScaled_rollout, dplain
from model.__grad__ import dLinear_loss_dx

rng = np.random.default_rng(0)
m = model.Linear(rng.standard_normal((3, 4)), rng.standard_normal(3))
x, y = rng.standard_normal(4), rng.standard_normal(3)

def numeric(f, obj, attr, eps=1e-6):
    value = getattr(obj, attr)
    g = np.zeros_like(value)
    for k in np.ndindex(value.shape):
        old = value[k]
        value[k] = old + eps; hi = f()
        value[k] = old - eps; lo = f()
        value[k] = old
        g[k] = (hi - lo) / (2 * eps)
    return g

out = {}
g = dLinear_loss(m, x, y)
out["keys"] = sorted(g)
out["fd"] = max(float(np.abs(g[a] - numeric(lambda: model.Linear.loss(m, x, y), m, a)).max()) for a in ("W", "b"))
api = tangent.grad(model.Linear.loss)(m, x, y)
out["api"] = max(float(np.abs(g[a] - api[a]).max()) for a in ("W", "b"))
out["dx"] = float(np.abs(dLinear_loss_dx(m, x, y) - tangent.grad(model.Linear.loss, wrt=1)(m, x, y)).max())
s = model.Scaled(np.array([0.5, -1.0]))
gs = dScaled_apply(s, np.array([0.3, 0.7]))
out["scaled"] = float(np.abs(gs["s"] - np.sin(2.0 * np.array([0.3, 0.7]))).max())
x2 = np.array([0.3, 0.7])
rolled = dScaled_rollout(s, x2)["s"]
eps = 1e-6
fd = np.array([(model.Scaled(s.s + eps * e).rollout(x2) - model.Scaled(s.s - eps * e).rollout(x2)) / (2 * eps) for e in np.eye(2)])
out["rollout"] = float(np.abs(rolled - fd).max())
# Inherited: `Concrete.loss` is Abstract's loss calling Concrete's predict.
from model.__grad__ import dConcrete_loss, dConcrete_loss_dx
from model.__jvp__ import dConcrete_loss_dx as jConcrete_loss_dx
c = model.Concrete(rng.standard_normal((3, 4)))
gc = dConcrete_loss(c, x)
out["inherited"] = float(np.abs(gc["W"] - numeric(lambda: c.loss(x), c, "W")).max())
fd_x = np.array([(c.loss(x + 1e-6 * e) - c.loss(x - 1e-6 * e)) / 2e-6 for e in np.eye(4)])
out["inherited_dx"] = float(np.abs(dConcrete_loss_dx(c, x) - fd_x).max())
direction = rng.standard_normal(4)
out["inherited_jvp"] = float(abs(jConcrete_loss_dx(c, x, direction) - fd_x @ direction))
try:
    from model.__grad__ import dScaled___init__
    out["init"] = "imported"
except ImportError as e:
    out["init"] = type(e).__name__
print(json.dumps(out))
"""


def test_methods_are_exported_by_the_import_hook(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    out = run_json(tmp_path, CHILD)
    assert out["keys"] == ["W", "b"]
    assert out["fd"] < 1e-6, out
    assert out["api"] < 1e-12, out
    assert out["dx"] < 1e-12, out
    assert out["scaled"] < 1e-12, out
    assert out["rollout"] < 1e-6, out
    assert out["init"] == "ImportError", out
    assert out["inherited"] < 1e-6 and out["inherited_dx"] < 1e-6 and out["inherited_jvp"] < 1e-6, out


def test_tangent_build_writes_the_methods_derivatives(tmp_path):
    binary = tangent_binary()
    (tmp_path / "model.py").write_text(MODEL)
    proc = subprocess.run([str(binary), "-v", "build", "."], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    [artifact] = (tmp_path / "__tangent__").glob("model.__grad__.*.py")
    text = artifact.read_text()
    for name in ("dLinear_forward", "dLinear_loss", "dScaled_apply", "dScaled_twice", "dScaled_rollout", "dplain", "dConcrete_loss", "dConcrete_predict"):
        assert f"def {name}(" in text, name
    assert "tangent.checkpoint_segments(" in text  # the decorated method's loop
    # Special methods and static methods are not differentiated as targets.
    assert "__init__" not in text and "helper" not in text
    # The hook serves the built artifact: the same gradients.
    out = run_json(tmp_path, CHILD)
    assert out["fd"] < 1e-6 and out["api"] < 1e-12, out
    check = subprocess.run([str(binary), "check", "."], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
