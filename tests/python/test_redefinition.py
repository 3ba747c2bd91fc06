"""A name defined twice in a module (issue 13).

``f1 = f`` before a second ``def f`` keeps the first function object alive: Tangent
differentiates the definition that object was made from (found by its code's first line), in
every mode, never the later one the name now stands for. Calls inside a differentiated function
of a name the module defines twice reach the last definition, as Python's do once the module
has run. A gradient module (``model.__grad__``) differentiates the definition each name is
bound to, and its code says which one.

This module itself defines names twice at its top level (that is the subject), hence the
``noqa: F811``. Every derivative is compared with central finite differences in float64 of
the function object that was differentiated, so a derivative of the wrong definition fails.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad, numeric_vjp

X = 0.7
W = np.array([0.5, -1.2, 2.0])
V = np.array([0.3, 0.9, -0.4])


def directional(f, args, v, eps=1e-6):
    """Central difference of ``f`` along ``v`` in its first argument (float64)."""
    w = np.asarray(args[0], dtype=np.float64)
    rest = tuple(args[1:])
    return (np.asarray(f(w + eps * v, *rest)) - np.asarray(f(w - eps * v, *rest))) / (2 * eps)


def numeric_hvp(f, args, v, h=1e-4):
    """H v of the scalar ``f`` in its first argument: central differences (step ``h`` along
    ``v``) of its central-difference gradient."""
    w = np.asarray(args[0], dtype=np.float64)
    rest = tuple(args[1:])
    plus = numeric_grad(f, (w + h * v, *rest))
    minus = numeric_grad(f, (w - h * v, *rest))
    return (np.asarray(plus) - np.asarray(minus)) / (2 * h)


def second_derivative(f, x, h=1e-4):
    return (f(x + h) - 2.0 * f(x) + f(x - h)) / (h * h)


# --- a function defined twice; the helper it calls is defined twice around it -------------


def scale(x):
    return x * 3.0  # replaced below: never what `loss` calls once the module has run


def loss(x):
    return np.sum(np.sin(scale(x)) * x)


first_loss = loss


def loss(x):  # noqa: F811
    return np.sum(np.cos(x) * x**2)


def scale(x):  # noqa: F811
    return x * x


def predict(w):
    return np.tanh(w) * scale(w)


first_predict = predict


def predict(w):  # noqa: F811
    return w**3 - w


# A scalar function for derivatives of derivatives.
def curve(x):
    return np.sin(scale(x)) * x


first_curve = curve


def curve(x):  # noqa: F811
    return np.exp(0.5 * x) * x * x


# Parameters in another order: `wrt` by name follows the definition differentiated.
def mix(a, b):
    return a * np.sin(b) + b * b


first_mix = mix


def mix(b, a):  # noqa: F811
    return np.exp(b) * a


# The first definition calls its own name: at run time that is the second, recursive one.
def power(x, n):
    return power(x, n) * 2.0


first_power = power


def power(x, n):  # noqa: F811
    if n == 0:
        return 1.0
    return x * power(x, n - 1)


def test_the_reference_sees_the_first_definition_and_last_helper():
    # What every test below compares with: the functions as Python runs them.
    assert first_loss(X) == pytest.approx(np.sin(X * X) * X)
    assert loss(X) == pytest.approx(np.cos(X) * X * X)
    assert first_power(X, 3) == pytest.approx(2.0 * X**3)


@pytest.mark.parametrize("fn", [first_loss, loss], ids=["first", "second"])
@pytest.mark.parametrize("motion", ["joint", "split"])
def test_grad_of_each_definition(fn, motion):
    for arg in (X, W):
        df = tangent.grad(fn, motion=motion)
        assert_close(df(arg), numeric_grad(fn, (arg,)))


def test_the_two_definitions_have_different_gradients():
    # The first definition's gradient is not the second's: the tests above can tell them apart.
    assert abs(tangent.grad(first_loss)(X) - tangent.grad(loss)(X)) > 0.1
    assert abs(numeric_grad(first_loss, (X,)) - numeric_grad(loss, (X,))) > 0.1


@pytest.mark.parametrize("fn", [first_loss, loss], ids=["first", "second"])
def test_forward_mode_of_each_definition(fn):
    jf = tangent.jvp(fn)
    assert_close(jf(W, V), directional(fn, (W,), V))
    jf = tangent.grad(fn, mode="forward")
    assert_close(jf(X, 1.0), numeric_grad(fn, (X,)))


@pytest.mark.parametrize("fn", [first_loss, loss], ids=["first", "second"])
def test_hvp_of_each_definition(fn):
    hf = tangent.hvp(fn)
    assert_close(hf(W, V), numeric_hvp(fn, (W,), V), rtol=1e-4, atol=1e-5, what="H v")


@pytest.mark.parametrize("fn", [first_predict, predict], ids=["first", "second"])
@pytest.mark.parametrize("motion", ["joint", "split"])
def test_vjp_of_each_definition(fn, motion):
    seed = np.array([1.5, -0.5, 2.0])
    vf = tangent.vjp(fn, motion=motion)
    assert_close(vf(W, seed), numeric_vjp(fn, (W,), seed))
    af = tangent.autodiff(fn, motion=motion)
    assert_close(af(W, init_grad=seed), numeric_vjp(fn, (W,), seed))


@pytest.mark.parametrize("fn", [first_curve, curve], ids=["first", "second"])
def test_higher_order(fn):
    ddf = tangent.grad(tangent.grad(fn))
    assert_close(ddf(X), second_derivative(fn, X), rtol=1e-5, atol=1e-6, what="second derivative")
    jdf = tangent.jvp(tangent.grad(fn))
    # Its arguments: x, the seed of the gradient, then the tangent of x.
    assert_close(jdf(X, 1.0, 1.0), second_derivative(fn, X), rtol=1e-5, atol=1e-6, what="jvp of grad")
    hf = tangent.hvp(fn)
    assert_close(hf(X, 1.0), second_derivative(fn, X), rtol=1e-5, atol=1e-6, what="hvp")


@pytest.mark.parametrize("fn", [first_mix, mix], ids=["first", "second"])
def test_wrt_by_name_follows_the_definition(fn):
    args = {"a": 0.8, "b": -0.3}
    ordered = tuple(args[p] for p in fn.__code__.co_varnames[:2])
    for wrt in ("a", "b", ("b", "a")):
        assert_close(tangent.grad(fn, wrt=wrt)(*ordered), numeric_grad(fn, ordered, wrt=wrt))
        jf = tangent.jvp(fn, wrt=wrt)
        n = 1 if isinstance(wrt, str) else len(wrt)
        # Along every wrt parameter at once, with tangent 1: the sum of the partials.
        expected = numeric_grad(fn, ordered, wrt=wrt)
        assert_close(jf(*ordered, *([1.0] * n)), expected if n == 1 else sum(expected))


def test_a_call_of_its_own_name_reaches_the_later_definition():
    # `first_power` calls `power`, the second (recursive) definition, not itself.
    for motion in ("joint", "split"):
        assert_close(tangent.grad(first_power, motion=motion)(X, 3), numeric_grad(first_power, (X, 3)))
    assert_close(tangent.jvp(first_power)(X, 3, 1.0), numeric_grad(first_power, (X, 3)))
    assert_close(tangent.grad(power)(X, 3), numeric_grad(power, (X, 3)))


def test_the_generated_code_says_which_definition():
    source = tangent.grad(first_loss).__wrapped__.__tangent_generated__.source
    line = first_loss.__code__.co_firstlineno
    assert f"this differentiates the definition at test_redefinition.py:{line}." in source
    second = tangent.jvp(loss).__tangent_generated__.source
    assert f"test_redefinition.py:{loss.__code__.co_firstlineno}." in second


# --- methods, and a class defined twice ------------------------------------------------------


class Model:
    def __init__(self, w):
        self.w = w

    def loss(self, x):
        return np.sum(np.tanh(self.w * x) * scale(x))

    def total(self, x):
        return self.loss(x) * 2.0


FirstModel = Model


class Model:  # noqa: F811
    def __init__(self, w):
        self.w = w

    def loss(self, x):
        return np.sum(self.w * x**3)

    def total(self, x):
        return self.loss(x) + np.sum(x)


@pytest.mark.parametrize("cls", [FirstModel, Model], ids=["first", "second"])
def test_methods_of_a_class_defined_twice(cls):
    model = cls(V)
    for motion in ("joint", "split"):
        df = tangent.grad(cls.loss, wrt=1, motion=motion)
        assert_close(df(model, W), numeric_grad(cls.loss, (model, W), wrt=1))
    # Bound: positions count after `self`.
    assert_close(tangent.grad(model.loss)(W), numeric_grad(model.loss, (W,)))
    assert_close(tangent.jvp(cls.loss, wrt=1)(model, W, V), directional(lambda x: model.loss(x), (W,), V))
    assert_close(tangent.hvp(model.loss)(W, V), numeric_hvp(model.loss, (W,), V), rtol=1e-4, atol=1e-5)


def test_a_method_calling_self_in_the_class_defined_last():
    model = Model(V)
    assert_close(tangent.grad(Model.total, wrt=1)(model, W), numeric_grad(Model.total, (model, W), wrt=1))


def test_a_method_calling_self_in_a_class_defined_again_refuses():
    # `self.loss` of the first class's object is the first class's `loss`, but the derivative
    # can only name the class the module's `Model` is bound to: it refuses, never a wrong number.
    model = FirstModel(V)
    df = tangent.grad(FirstModel.total, wrt=1)
    with pytest.raises(TypeError, match="defined again"):
        df(model, W)


# --- nested functions -----------------------------------------------------------------------


def make_pair():
    def g(x):
        return np.sin(x) * x

    first = g

    def g(x):  # noqa: F811
        return x**3 + x

    return first, g


def make_loss(c):
    def shift(x):
        return x * c

    def objective(x):
        return np.sum(np.sin(shift(x)))

    return objective


first_make_loss = make_loss


def make_loss(c):  # noqa: F811
    def shift(x):
        return x + c

    def objective(x):
        return np.sum(shift(x) ** 2)

    return objective


def test_nested_functions_defined_twice():
    for fn in make_pair():
        assert_close(tangent.grad(fn)(W.sum()), numeric_grad(fn, (W.sum(),)))
        assert_close(tangent.jvp(fn)(X, 1.0), numeric_grad(fn, (X,)))


@pytest.mark.parametrize("factory", [first_make_loss, make_loss], ids=["first", "second"])
def test_closures_of_a_factory_defined_twice(factory):
    fn = factory(1.7)
    assert_close(tangent.grad(fn)(W), numeric_grad(fn, (W,)))
    assert_close(tangent.jvp(fn)(W, V), directional(fn, (W,), V))


# --- decorated functions --------------------------------------------------------------------


def identity(f):
    return f


def tagged(*tags):
    def decorate(f):
        f.tags = tags
        return f

    return decorate


def traced(f):
    @functools.wraps(f)
    def wrapper(*args):
        return f(*args)

    return wrapper


@identity
@traced
def cubic(x):
    return x**3 * 2.0 + scale(x)


first_cubic = cubic


@tagged(
    "second",
    "multi-line decorator",
)
@traced
def cubic(x):  # noqa: F811
    return np.sin(x) * 4.0


@tagged("method")
def plain(x):
    return np.cos(x) * x


first_plain = plain


def plain(x):  # noqa: F811
    return x**4


@pytest.mark.parametrize("fn", [first_cubic, cubic, first_plain, plain], ids=["first", "second", "first-plain", "second-plain"])
def test_decorated_functions(fn):
    assert_close(tangent.grad(fn)(X), numeric_grad(fn, (X,)))
    assert_close(tangent.jvp(fn)(X, 1.0), numeric_grad(fn, (X,)))
    assert_close(tangent.grad(fn, motion="split")(W), numeric_grad(fn, (W,)))
    assert_close(tangent.grad(tangent.grad(fn))(X), second_derivative(fn, X), rtol=1e-5, atol=1e-6)


# --- the source changed since the function was made -----------------------------------------

MODULE = """\
import numpy as np


def f(x):
    return x * 2.0


f1 = f


def f(x):
    return np.sin(x) * x
"""


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda text: "# a comment above\n\n" + text, id="lines-moved"),
        pytest.param(lambda text: text.replace("def f(x):\n    return x * 2.0", "def g(x):\n    return x * 2.0"), id="renamed"),
        pytest.param(lambda text: text.replace("def f(x):\n    return x * 2.0\n\n\nf1 = f\n", ""), id="removed"),
    ],
)
def test_a_changed_source_is_an_error_naming_the_place(tmp_path, edit):
    path = tmp_path / f"edited_{abs(hash(str(tmp_path)))}.py"
    path.write_text(MODULE)
    module = load(path, path.stem)
    assert_close(tangent.grad(module.f1)(X), 2.0)
    line = module.f1.__code__.co_firstlineno
    text = edit(MODULE)
    assert text != MODULE
    path.write_text(text)
    os.utime(path, (1, 1))  # a different mtime whatever the clock's resolution
    for make in (tangent.grad, tangent.jvp, tangent.hvp):
        with pytest.raises(tangent.FunctionNotFoundError) as info:
            make(module.f1)
        error = info.value
        assert error.path == str(path) and error.line == line, str(error)
        assert "changed since it was loaded" in error.message, error.message
        assert f"{path}:{line}:1" in str(error), str(error)
    with pytest.raises(tangent.FunctionNotFoundError):
        tangent.grad(module.f1, wrt="x")


def test_an_unchanged_second_definition_still_works_after_an_edit_elsewhere(tmp_path):
    path = tmp_path / "appended.py"
    path.write_text(MODULE)
    module = load(path, "appended_module")
    path.write_text(MODULE + "\n\ndef h(x):\n    return x\n")
    os.utime(path, (1, 1))
    # Its definition still starts where the function object says.
    assert_close(tangent.grad(module.f)(X), numeric_grad(module.f, (X,)))


# --- the gradient module (import hook) ------------------------------------------------------

HOOK_MODEL = """\
import numpy as np


def helper(x):
    return x * 3.0


def f(x):
    return np.sum(np.sin(helper(x)) * x)


f1 = f


def f(x):
    return np.sum(np.cos(x) * helper(x))


def helper(x):
    return x * x


class Model:
    def loss(self, x):
        return np.sum(x * 2.0)

    def gone(self, x):
        return np.sum(x)


class Model:
    def loss(self, x):
        return np.sum(np.tanh(x))
"""

HOOK_CHILD = """
import json
import numpy as np
import model
from model.__grad__ import df, dhelper
import model.__grad__ as grads
import model.__jvp__ as jvps

w = np.array([0.5, -1.2, 2.0])
v = np.array([0.3, 0.9, -0.4])

def numeric(f, w, eps=1e-6):
    g = np.zeros_like(w)
    for k in range(w.size):
        e = np.zeros_like(w); e[k] = eps
        g[k] = (f(w + e) - f(w - e)) / (2 * eps)
    return g

out = {
    "df": df(w).tolist(),
    "f": numeric(model.f, w).tolist(),
    "f1": numeric(model.f1, w).tolist(),
    "dhelper": float(dhelper(0.7)),
    "jvp": float(jvps.df(w, v)),
    "exports": sorted(n for n in grads.__all__),
    "file": grads.__file__,
}
print(json.dumps(out))
"""


def test_gradient_module_differentiates_what_each_name_is_bound_to(tmp_path):
    (tmp_path / "model.py").write_text(HOOK_MODEL)
    env = {k: v for k, v in os.environ.items() if k not in ("TANGENT_NO_IMPORT_HOOK", "TANGENT_GENERATED_DIR")}
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(HOOK_CHILD)],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert_close(np.array(out["df"]), np.array(out["f"]))
    # The first `f` is no function of the module any more: `df` is not its derivative.
    assert not np.allclose(out["f"], out["f1"])
    assert_close(out["dhelper"], 1.4)
    assert_close(out["jvp"], float(np.dot(out["f"], V)))
    # Once each, and no `dModel_gone`: the class `Model` is bound to has no `gone`.
    assert out["exports"] == ["dModel_loss", "df", "dhelper"], out["exports"]
    with open(out["file"]) as generated:
        text = generated.read()
    assert "# `f` is defined more than once in model.py (lines 8, 15): this differentiates the definition at model.py:15" in text
    assert "# class `Model` is defined more than once in model.py (lines 23, 31): this differentiates `Model.loss` of the definition at model.py:31" in text
    assert text.count("def df(") == 1 and text.count("def dhelper(") == 1
