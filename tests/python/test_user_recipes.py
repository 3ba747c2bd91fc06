"""Recipes written in the user's own module (``@tangent.adjoint(f)``, ``@tangent.tangent_(f)``):
found statically by the engine for ``tangent.grad``/``tangent.jvp``, the import hook and
``tangent build``; they replace built-in recipes; generated code cites them; bad ones are
reported at their line; missing recipes suggest the lines to add."""

import importlib
import inspect
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

import tangent
from gradcheck import numeric_grad

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODEL = '''
import numpy as np
import tangent


def softplus(x):
    return np.log1p(np.exp(x))


@tangent.adjoint(softplus)
def softplus_adjoint(result, x):
    d[x] = d[result] * SCALE / (1.0 + np.exp(-x))


@tangent.tangent_(softplus)
def softplus_tangent(result, x):
    d[result] = d[x] * SCALE / (1.0 + np.exp(-x))


def loss(w, x):
    return np.sum(softplus(w * x) ** 2)


def uses_sin(x):
    return np.sum(np.sin(x) * x)


@tangent.adjoint(np.sin)
def sin_adjoint(y, x):
    d[x] = d[y] * 10.0


SCALE = {scale}
'''


def load(tmp_path, text, name=None):
    name = name or f"user_model_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(text)
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


def run_fresh(directory, check):
    """Runs `check` in a new interpreter (the import hook active) and expects it to print ok."""
    env = dict(os.environ, PYTHONPATH=str(directory))
    result = subprocess.run([sys.executable, "-c", check], cwd=directory, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


W = np.array([0.3, -1.0, 0.8])
X = np.array([2.0, 0.5, -1.5])


def test_recipe_of_a_module_function_is_used_by_grad_and_jvp(tmp_path):
    model = load(tmp_path, MODEL.format(scale="1.0"))
    expected = numeric_grad(lambda w: model.loss(w, X), (W,))
    dloss = tangent.grad(model.loss)
    np.testing.assert_allclose(dloss(W, X), expected, rtol=1e-6)
    source = inspect.getsource(dloss)
    assert "Your recipe (" in source and f"{model.__name__}.py:10)" in source
    t = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(tangent.jvp(model.loss)(W, X, t), expected @ t, rtol=1e-6)
    assert "Your recipe (" in inspect.getsource(tangent.jvp(model.loss))


def test_the_recipe_replaces_the_body(tmp_path):
    """A recipe that scales the derivative by 3 proves the recipe, not the body, is used."""
    model = load(tmp_path, MODEL.format(scale="3.0"))
    true = numeric_grad(lambda w: model.loss(w, X), (W,))
    h = model.softplus(W * X)
    # d/dw sum(softplus(w x)^2) = 2 softplus(wx) softplus'(wx) x; the recipe triples softplus'.
    sig = 1.0 / (1.0 + np.exp(-W * X))
    np.testing.assert_allclose(tangent.grad(model.loss)(W, X), 3.0 * 2 * h * sig * X, rtol=1e-10)
    assert not np.allclose(tangent.grad(model.loss)(W, X), true)
    # The function's own gradient goes through its recipe too.
    assert tangent.grad(model.softplus)(0.3) == pytest.approx(3.0 / (1.0 + np.exp(-0.3)))
    assert tangent.jvp(model.softplus)(0.3, 2.0) == pytest.approx(6.0 / (1.0 + np.exp(-0.3)))


def test_a_user_recipe_replaces_a_built_in_one(tmp_path):
    model = load(tmp_path, MODEL.format(scale="1.0"))
    x = np.array([0.1, 0.2])
    # sin_adjoint says d sin(x)/dx = 10: d/dx sum(sin(x) x) = 10 x + sin(x).
    np.testing.assert_allclose(tangent.grad(model.uses_sin)(x), 10.0 * x + np.sin(x))
    # No tangent recipe of the user's for np.sin: forward mode keeps the built-in one.
    t = np.array([1.0, 0.0])
    np.testing.assert_allclose(tangent.jvp(model.uses_sin)(x, t), (np.cos(x) * x + np.sin(x)) @ t)


def test_import_hook_uses_the_recipe_and_does_not_export_templates(tmp_path):
    name = f"hooked_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(MODEL.format(scale="3.0"))
    check = f"""
import numpy as np, inspect
from {name}.__grad__ import dloss, dsoftplus
import {name} as model
w = np.array([0.3, -1.0, 0.8]); x = np.array([2.0, 0.5, -1.5])
h = model.softplus(w * x); sig = 1.0 / (1.0 + np.exp(-w * x))
assert np.allclose(dloss(w, x), 3.0 * 2 * h * sig * x), dloss(w, x)
assert abs(dsoftplus(0.3) - 3.0 / (1.0 + np.exp(-0.3))) < 1e-12
assert "Your recipe ({name}.py:10)" in inspect.getsource(dloss)
try:
    from {name}.__grad__ import dsoftplus_adjoint
except ImportError:
    pass
else:
    raise AssertionError("a recipe template was differentiated")
print("ok")
"""
    run_fresh(tmp_path, check)


def test_invalid_recipe_is_reported_at_its_line(tmp_path):
    text = '''
import numpy as np
import tangent


def f(x):
    return np.exp(x)


@tangent.adjoint(f)
def f_adjoint(result, x):
    d[y] = d[result] * result


def g(x):
    return f(x) * 2.0
'''
    model = load(tmp_path, text)
    with pytest.raises(tangent.InvalidRecipeError) as info:
        tangent.grad(model.g)
    error = info.value
    assert error.line == 12 and error.path.endswith(".py")
    assert "`d[y]` names neither the result nor a parameter" in str(error)


def test_recipe_for_a_name_the_engine_cannot_resolve_is_reported(tmp_path):
    text = '''
import numpy as np
import tangent

lib = np


def g(x):
    return np.sum(lib.sin(x))


@tangent.adjoint(lib.sin)
def sin_adjoint(result, x):
    d[x] = d[result] * lib.cos(x)
'''
    path = tmp_path / "m.py"
    path.write_text(text)
    # Read statically (the command line), `lib` is a value the engine cannot follow.
    from tangent import _engine as engine

    with pytest.raises(engine.EngineError) as info:
        engine.generate(text, str(path), "g", None, 1, [0], True, False, "joint", False)
    assert "not `lib.sin`" in str(info.value)
    # The API reads what `lib` is bound to (numpy) from the running module: it resolves.
    model = load(tmp_path, text)
    x = np.array([0.3, -1.2])
    assert np.allclose(tangent.grad(model.g)(x), np.cos(x))


def test_missing_recipe_suggests_the_lines_to_add(tmp_path):
    text = '''
import numpy as np


def f(x, y):
    return np.sum(np.i0(x) * y)
'''
    model = load(tmp_path, text)
    with pytest.raises(tangent.NoRecipeError) as info:
        tangent.grad(model.f)
    message = str(info.value)
    assert "`np.i0`" in message and "line 6" not in message
    assert "@tangent.adjoint(np.i0)" in message and "def i0_adjoint(result, x):" in message
    assert "d[x] = d[result] * ..." in message
    with pytest.raises(tangent.NoRecipeError) as info:
        tangent.jvp(model.f)
    assert "@tangent.tangent_(np.i0)" in str(info.value) and "def i0_tangent(result, x):" in str(info.value)


def test_a_suggested_recipe_once_filled_in_works(tmp_path):
    text = '''
import numpy as np
import tangent


def f(x, y):
    return np.sum(np.i0(x) * y)


@tangent.adjoint(np.i0)
def i0_adjoint(result, x):
    d[x] = d[result] * np.i0_prime(x)


@tangent.tangent_(np.i0)
def i0_tangent(result, x):
    d[result] = d[x] * np.i0_prime(x)
'''
    # np.i0' = I1; written here through a finite difference of np.i0 to stay self-contained.
    text = text.replace("np.i0_prime(x)", "(np.i0(x + 1e-6) - np.i0(x - 1e-6)) / 2e-6")
    model = load(tmp_path, text)
    x = np.array([0.4, 1.3])
    y = np.array([2.0, -1.0])
    expected = numeric_grad(lambda v: model.f(v, y), (x,))
    np.testing.assert_allclose(tangent.grad(model.f)(x, y), expected, rtol=1e-5)
    np.testing.assert_allclose(tangent.jvp(model.f)(x, y, np.array([1.0, 1.0])), expected.sum(), rtol=1e-5)


def test_decorators_return_the_template_and_record_it():
    def f(x):
        return x

    def template(result, x):
        pass

    assert tangent.adjoint(f)(template) is template
    assert tangent.tangent_(f)(template) is template
    with pytest.raises(TypeError):
        tangent.adjoint()


def test_recipes_command_lists_built_in_and_user_recipes(tmp_path):
    binary = os.path.join(REPO, "target", "debug", "tangent")
    if not os.path.exists(binary):
        pytest.skip("the CLI is built by cargo test")
    (tmp_path / "model.py").write_text(MODEL.format(scale="1.0"))
    out = subprocess.run([binary, "recipes", "--json", str(tmp_path / "model.py")], capture_output=True, text=True, check=True)
    entries = {e["name"]: e for e in json.loads(out.stdout)}
    assert entries["numpy.exp"]["modes"] == ["reverse", "forward"] and not entries["numpy.exp"]["user"]
    assert entries["softplus"]["user"] and entries["softplus"]["source"] == "model.py:10"
    assert entries["numpy.sin"]["user"] and entries["numpy.sin"]["source"] == "model.py:28"
    assert entries["numpy.shape"]["nondifferentiable"]
    text = subprocess.run([binary, "recipes"], capture_output=True, text=True, check=True).stdout
    assert "numpy.sin" in text and "reverse, forward" in text and "with recipes" in text


# --- recipe files shared by a project: [tool.tangent] recipes = [...] ------------------------

OPS = """
import math
import numpy


def fancy(x):
    # A comprehension over math.sin: Tangent cannot differentiate this body.
    return 2.0 * numpy.array([math.sin(v) for v in x])
"""

SHARED = """
import numpy as np
import tangent
from {pkg}.ops import fancy


@tangent.adjoint(fancy)
def fancy_adjoint(result, x):
    d[x] = d[result] * SCALE * np.cos(x)


@tangent.tangent_(fancy)
def fancy_tangent(result, x):
    d[result] = d[x] * SCALE * np.cos(x)
"""

USER = """
import numpy
from {pkg}.ops import fancy


def loss(x):
    return numpy.sum(fancy(x) * x)
"""


def shared_project(tmp_path, scale="2.0"):
    pkg = f"lib_{uuid.uuid4().hex[:8]}"
    (tmp_path / "pyproject.toml").write_text('[tool.tangent]\nrecipes = ["tools/recipes.py"]\n')
    (tmp_path / pkg).mkdir()
    (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / pkg / "ops.py").write_text(OPS)
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "recipes.py").write_text(SHARED.format(pkg=pkg).replace("SCALE", scale))
    model = load(tmp_path, USER.format(pkg=pkg))
    return pkg, model


def test_a_shared_recipe_file_applies_to_the_api(tmp_path):
    _, model = shared_project(tmp_path)
    x = np.array([0.3, -1.2, 2.0])
    expected = numeric_grad(model.loss, (x,))
    np.testing.assert_allclose(tangent.grad(model.loss)(x), expected, rtol=1e-6)
    np.testing.assert_allclose(tangent.jvp(model.loss)(x, np.ones(3)), expected.sum(), rtol=1e-6)
    source = inspect.getsource(tangent.grad(model.loss))
    assert "# Your recipe (recipes.py:7)" in source
    # The recipe file's `np` comes along: the user's module never imported numpy as np.
    assert "import numpy as np" in open(inspect.getsourcefile(tangent.grad(model.loss))).read()


def test_editing_a_shared_recipe_file_changes_the_next_derivative(tmp_path):
    _, model = shared_project(tmp_path)
    x = np.array([0.3, -1.2])
    before = tangent.grad(model.loss)(x)
    recipes = tmp_path / "tools" / "recipes.py"
    text = recipes.read_text().replace("2.0 * np.cos", "4.0 * np.cos")
    recipes.write_text(text)
    os.utime(recipes, ns=(0, os.stat(recipes).st_mtime_ns + 10**9))
    after = tangent.grad(model.loss)(x)
    fancy = 2.0 * np.sin(x)
    np.testing.assert_allclose(after - fancy, 2.0 * (before - fancy), rtol=1e-10)


def test_the_import_hook_uses_shared_recipes(tmp_path):
    pkg, model = shared_project(tmp_path)
    check = f"""
import numpy as np
from {model.__name__}.__grad__ import dloss
from {pkg}.ops.__grad__ import dfancy
x = np.array([0.3, -1.2, 2.0])
assert np.allclose(dfancy(x), 2.0 * np.cos(x))
assert np.allclose(dloss(x), 2.0 * np.sin(x) + 2.0 * np.cos(x) * x)
print("ok")
"""
    run_fresh(tmp_path, check)


def test_a_shared_recipe_must_import_what_it_uses(tmp_path):
    _, model = shared_project(tmp_path, scale="helper(x)")
    with pytest.raises(tangent.InvalidRecipeError, match="uses `helper`, which its file does not import"):
        tangent.grad(model.loss)


def test_a_module_binding_a_shared_recipes_name_otherwise_is_told(tmp_path):
    pkg, _ = shared_project(tmp_path)
    clash = USER.format(pkg=pkg) + "\nnp = 'not numpy'\n"
    model = load(tmp_path, clash)
    with pytest.raises(tangent.InvalidRecipeError, match="binds `np` to something else"):
        tangent.grad(model.loss)
