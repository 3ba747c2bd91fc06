"""Gradients across the modules of a package, through the import hook, in fresh interpreters.

`pkg.model` calls `dense` from `.layers` (a relative import) and `scale` through
`import pkg.utils as U`; its gradient module imports their derivatives from their own
gradient modules. Checked against central finite differences, and after editing a callee.
"""

import os
import subprocess
import sys
import textwrap

import pytest

LAYERS = """
import numpy as np


def dense(x, W):
    return np.tanh(x @ W)
"""

UTILS = """
def scale(v, s):
    return v * s
"""

MODEL = """
import numpy as np
import pkg.utils as U
from .layers import dense


def loss(x, W):
    h = dense(x, W)
    return np.sum(U.scale(h, 2.0) ** 2)
"""

CHECK = """
import numpy as np
from pkg.model import loss
from pkg.model.__grad__ import dloss, dloss_dW, dloss_dx_dW

rng = np.random.default_rng(0)
x = rng.normal(size=3)
W = rng.normal(size=(3, 2))
eps = 1e-6


def numeric(f, a, *rest):
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[i] = eps
        g[i] = (f(a + e, *rest) - f(a - e, *rest)) / (2 * eps)
    return g


assert np.allclose(dloss(x, W), numeric(loss, x, W), atol=1e-6)
assert np.allclose(dloss_dW(x, W), numeric(lambda w, x: loss(x, w), W, x), atol=1e-6)
gx, gW = dloss_dx_dW(x, W)
assert np.allclose(gx, numeric(loss, x, W), atol=1e-6)
assert np.allclose(gW, numeric(lambda w, x: loss(x, w), W, x), atol=1e-6)
print("ok", float(np.sum(gx)))
"""


def write_package(root, layers=LAYERS):
    pkg = root / "pkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "layers.py").write_text(textwrap.dedent(layers))
    (pkg / "utils.py").write_text(textwrap.dedent(UTILS))
    (pkg / "model.py").write_text(textwrap.dedent(MODEL))


def run(root):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "TANGENT_GENERATED_DIR")}
    env["PYTHONPATH"] = str(root)
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_gradients_cross_module_calls(tmp_path):
    write_package(tmp_path)
    assert run(tmp_path).startswith("ok")
    generated = list((tmp_path / "pkg" / "__tangent__").glob("imports/*model.__grad__*.py"))
    assert generated, "the model's gradient module is backed by a real file"
    text = generated[0].read_text()
    assert "from pkg.layers.__grad__ import ddense" in text
    assert "from pkg.utils.__grad__ import dscale" in text


def test_editing_a_callee_is_seen_by_the_callers_gradient(tmp_path):
    write_package(tmp_path)
    first = run(tmp_path)
    write_package(tmp_path, layers=LAYERS.replace("np.tanh(x @ W)", "np.tanh(x @ W) * 0.5"))
    second = run(tmp_path)
    assert first != second  # a different function, a different (checked) gradient


IN_PROCESS = """
import numpy as np
import tangent
from pkg.model import loss

rng = np.random.default_rng(1)
x = rng.normal(size=3)
W = rng.normal(size=(3, 2))
eps = 1e-6
numeric = np.array([(loss(x + eps * e, W) - loss(x - eps * e, W)) / (2 * eps) for e in np.eye(3)])
for motion in ("joint", "split"):
    gx, gW = tangent.autodiff(loss, wrt=(0, 1), motion=motion)(x, W, 1.0)
    assert np.allclose(gx, numeric, atol=1e-6), motion
g, value = tangent.grad(loss, preserve_result=True)(x, W)
assert np.allclose(g, numeric, atol=1e-6) and np.isclose(value, loss(x, W))
print("ok")
"""


@pytest.mark.parametrize("hook_at_start", [True, False], ids=["hook", "no-hook-at-start"])
def test_tangent_grad_differentiates_calls_into_other_modules(tmp_path, hook_at_start):
    write_package(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "TANGENT_GENERATED_DIR")}
    env["PYTHONPATH"] = str(tmp_path)
    if not hook_at_start:
        env["TANGENT_NO_IMPORT_HOOK"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", IN_PROCESS], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


FORWARD_MODEL = """
import numpy as np
from .layers import dense
from pkg.utils import scale


def loss(x, W):
    return np.sum(scale(dense(x, W), 2.0) ** 2)
"""

FORWARD_CHECK = """
import numpy as np
import tangent
from pkg.model import loss

rng = np.random.default_rng(2)
x = rng.normal(size=3)
W = rng.normal(size=(3, 2))
V = rng.normal(size=(3, 2))
eps = 1e-6
numeric_jv = (loss(x, W + eps * V) - loss(x, W - eps * V)) / (2 * eps)
assert np.isclose(tangent.jvp(loss, wrt=1)(x, W, V), numeric_jv, atol=1e-6)
dW = tangent.grad(loss, wrt=1)
numeric_hv = (dW(x, W + 1e-5 * V) - dW(x, W - 1e-5 * V)) / 2e-5
assert np.allclose(tangent.hvp(loss, wrt=1)(x, W, V), numeric_hv, atol=1e-5)
print("ok")
"""


def test_forward_mode_and_hvps_follow_functions_imported_from_other_modules(tmp_path):
    """The source of `dense` and `scale` (other modules of the project) comes along for
    forward mode and HVPs; `import pkg.utils as U; U.scale(...)` is refused there, clearly."""
    write_package(tmp_path)
    (tmp_path / "pkg" / "model.py").write_text(textwrap.dedent(FORWARD_MODEL))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "TANGENT_GENERATED_DIR")}
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", FORWARD_CHECK], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    (tmp_path / "pkg" / "model.py").write_text(textwrap.dedent(MODEL))  # `U.scale(...)`
    result = subprocess.run(
        [sys.executable, "-c", FORWARD_CHECK], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "no forward-mode derivative known for `U.scale`" in result.stderr
