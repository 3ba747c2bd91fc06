"""``model.__jvp__`` and ``model.__hvp__``: forward-mode derivatives and Hessian-vector
products through the import hook, for plain modules and packages, in fresh interpreters."""

import os
import subprocess
import sys

MODEL = """
import numpy as np


def loss(w, x):
    return np.sum(np.tanh(w * x) ** 2)


def bad(x):
    try:
        return x
    except Exception:
        return x
"""

CHECK = """
import numpy as np
import tangent
from {name}.__jvp__ import dloss, dloss_dx
from {name}.__hvp__ import dloss as hloss, dloss_dw_dx
from {name} import loss

w = np.array([0.3, -0.2]); x = np.array([1.5, 0.7]); t = np.array([1.0, 2.0]); u = np.array([-0.5, 0.4])
eps = 1e-6
assert np.isclose(dloss(w, x, t), (loss(w + eps * t, x) - loss(w - eps * t, x)) / (2 * eps), atol=1e-7)
assert np.isclose(dloss_dx(w, x, t), (loss(w, x + eps * t) - loss(w, x - eps * t)) / (2 * eps), atol=1e-7)
g = tangent.grad(loss)
assert np.allclose(hloss(w, x, t), (g(w + eps * t, x) - g(w - eps * t, x)) / (2 * eps), atol=1e-6)
gw, gx = tangent.grad(loss, wrt=(0, 1)), None
both = dloss_dw_dx(w, x, t, u)
g2 = tangent.grad(loss, wrt=(0, 1))
plus, minus = g2(w + eps * t, x + eps * u), g2(w - eps * t, x - eps * u)
for block, p, m in zip(both, plus, minus):
    assert np.allclose(block, (p - m) / (2 * eps), atol=1e-6)
# Imported derivatives differentiate again through the API, among the user's module.
from {name}.__grad__ import dloss as gloss
vg = tangent.vjp(gloss)
assert np.allclose(vg(w, x, 1.0, t), hloss(w, x, t), atol=1e-10)
from {name}.__jvp__ import dloss as jloss
assert np.allclose(tangent.grad(jloss)(w, x, t), hloss(w, x, t), atol=1e-10)
assert np.allclose(tangent.jvp(jloss)(w, x, t, u), np.dot(u, hloss(w, x, t)), atol=1e-10)
try:
    from {name}.__jvp__ import dbad
except ImportError as error:
    assert "try" in str(error) and "model" in str(error) or "__init__" in str(error), str(error)
else:
    raise AssertionError("dbad imported")
print("ok")
"""


def run(root, name):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(root)
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(name=name)],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_plain_module(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    run(tmp_path, "model")


def test_package(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text(MODEL)
    run(tmp_path, "pkg")
