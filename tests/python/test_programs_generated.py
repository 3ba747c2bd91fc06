"""The realistic programs (``tests/programs/``) through the other two doors: the import hook
(``programs.<name>.__grad__`` / ``__jvp__`` / ``__hvp__``) and ``tangent build``.

Every case of ``test_programs`` whose callable is a module function or a method of a top-level
class has a name in the program's gradient module (``d<f>``, ``d<f>_d<p>...``,
``d<Class>_<method>`` w.r.t. ``self``). Those derivatives, generated from the program's source
alone (no live objects: what ``tangent build`` writes), are checked against central
differences as the API's are. Cases whose callable is a closure, a partial, a lambda or a
callable instance have no such name and are not collected here.

A derivative the static engine refuses (a function handed in as a parameter it calls, a class
known only from the live object) is ``xfail(strict=True)`` with the refusal it gives: an
``ImportError`` naming the line, never a wrong number. ``tangent build`` writes the same text
as the hook (the hook adds a trailer of its own), checked byte for byte.
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import test_programs as T
from gradcheck import assert_close

ROOT = Path(T.ROOT)

# Case id -> why the program's own source does not tell the engine enough: `tangent build`
# has no such derivative, and the import hook makes it from the live module instead (as
# `tangent.grad` does: functions, objects and keywords known when it is called).
LIVE = {
    "bayesian_linear_regression.objective_function_argument": "`logprob` is a parameter the function calls",
    "variational_inference.elbo_logprob_argument": "`logprob` is a parameter the function calls",
    "layers.network_loss_list_of_layers": "the classes of the layers in the list",
    "layers.sequential_loss": "the classes of the layers in the list",
    "quadratic.energy": "`quad` is a callable object handed in",
    "quadratic.total_objective_list_of_callables": "the callables in the list",
    "activation_model.unbound_loss_wrt_self": "`self.activation` may be any object given to `__init__`",
    "activation_model.logits_bound_wrt_self": "`self.activation` may be any object given to `__init__`",
    "activation_model.bound_loss_wrt_self_swish": "`self.activation` may be any object given to `__init__`",
    "base_class_model.exp_unbound": "`Regressor.loss` calls the abstract `predict`: the object's class tells which",
    "glm.poisson_loglike_method": "`self.family` is given to `GLM.__init__`",
    "glm.mean_method_link_object": "`self.family` is given to `GLM.__init__`",
    "glm.gamma_penalized_nll_method": "`self.family` is given to `GLM.__init__`",
    "penalized_regression.penalized_loss_default": "`**penalty_kwargs` of the differentiated function itself",
    "penalized_regression.penalized_loss_smooth_l1": "`**penalty_kwargs` of the differentiated function itself",
}

# Case id -> what the gradient module gives instead of a right derivative: a TypeError when it
# runs (a derivative for a parameter's default, given another function), or a known NaN of
# reverse mode; never a wrong number.
REFUSED = {
    "mlp.objective_relu_argument": "TypeError: the derivative is for the activation's default (np.tanh), checked when it runs",
    "neural_ode.trajectory_loss_linear_dynamics": "TypeError: the derivative is for the dynamics' default, checked when it runs",
    "glm.poisson_deviance": "NaN: np.where(y > 0, y * np.log(y / mu), 0.0) differentiates the branch not taken too",
}


def _names(fn):
    return list(inspect.signature(fn).parameters)


def _generated(case):
    """(module name, derivative name, function, arguments, positions) for ``case``, or
    ``None`` when its callable has no name in a gradient module."""
    target, args = case.make()
    if isinstance(target, types.MethodType) and case.wrt == ("self",):
        cls, fn = type(target.__self__), target.__func__
        module = sys.modules[cls.__module__]
        if getattr(module, cls.__name__, None) is not cls:
            return None
        return cls.__module__, f"d{cls.__name__}_{fn.__name__}", fn, [target.__self__, *args], [0]
    if not isinstance(target, types.FunctionType):
        return None
    module = sys.modules[target.__module__]
    parts = target.__qualname__.split(".")
    if len(parts) == 1 and getattr(module, parts[0], None) is target:
        stem = parts[0]
    elif len(parts) == 2 and isinstance(getattr(module, parts[0], None), type):
        stem = f"{parts[0]}_{parts[1]}"
    else:
        return None
    names = _names(target)
    positions = [names.index(w) if isinstance(w, str) else w for w in case.wrt]
    suffix = "" if positions == [0] else "".join(f"_d{names[p]}" for p in positions)
    return target.__module__, f"d{stem}{suffix}", target, list(args), positions


CASES = [(c, g) for c in T.CASES if (g := _generated(c)) is not None]


def _params(kind):
    out = []
    for case, generated in CASES:
        if kind == "jvp" and not case.jvp or kind == "hvp" and not case.hvp:
            continue
        marks = []
        reason = REFUSED.get(case.id)
        if reason and not (reason.startswith("NaN") and kind == "jvp"):
            raises = {"NaN": AssertionError, "TypeError": TypeError}.get(reason.split(":")[0], ImportError)
            marks.append(pytest.mark.xfail(strict=True, reason=reason, raises=raises))
        out.append(pytest.param(case, generated, id=case.id, marks=marks))
    return out


def _derivative(kind, module, name):
    """``module.__<kind>__.<name>``; a refusal is an ImportError naming the program's line."""
    gen = importlib.import_module(f"{module}.__{kind}__")
    try:
        return getattr(gen, name)
    except (ImportError, AttributeError) as e:
        message = str(e)
        assert "programs" in message and ".py:" in message, message
        raise ImportError(message) from None


def _is_static(derivative, module):
    """Generated from the source alone (what `tangent build` writes), not from the live
    module (the API's derivatives keep the user function's module)."""
    return derivative.__module__ == f"{module}.__grad__"


def _moved(args, positions, directions, t):
    """``args`` with each differentiated argument moved by ``t`` times its direction."""
    call = list(args)
    for p, v in zip(positions, directions):
        call[p] = T.axpy(args[p], t, v)
    return call


def _along_directions(kind, generated):
    """The ``kind`` derivative of the case along fixed directions: ``(name, function,
    arguments, positions, the differentiated arguments, directions, value)``."""
    module, name, fn, args, positions = generated
    d = _derivative(kind, module, name)
    likes = [args[p] for p in positions]
    directions = [T._direction(like, i) for i, like in enumerate(likes)]
    return name, fn, args, positions, likes, directions, d(*args, *directions)


def test_every_program_has_cases_here():
    """Most programs' main losses are module functions or methods: at least 20 here."""
    assert len({generated[0] for _, generated in CASES}) >= 20


@pytest.mark.parametrize("case, generated", _params("grad"))
def test_gradient_module(case, generated):
    module, name, fn, args, positions = generated
    d = _derivative("grad", module, name)
    assert _is_static(d, module) == (case.id not in LIVE), (case.id, d.__module__)
    actual = d(*args)
    expected = T.numeric_gradients(fn, args, positions)
    likes = [args[p] for p in positions]
    T._check_blocks(T._as_blocks(actual, len(positions)), expected, likes, case.rtol, case.atol, name)


@pytest.mark.parametrize("case, generated", _params("jvp"))
def test_jvp_module(case, generated):
    name, fn, args, positions, likes, directions, actual = _along_directions("jvp", generated)

    def along(t):
        return np.asarray(fn(*_moved(args, positions, directions, t)), dtype=np.float64)

    eps = 1e-6
    expected = (along(eps) - along(-eps)) / (2 * eps)
    assert_close(np.asarray(actual, dtype=np.float64), expected, case.rtol * 10, case.atol * 10, name)


@pytest.mark.parametrize("case, generated", _params("hvp"))
def test_hvp_module(case, generated):
    name, fn, args, positions, likes, directions, actual = _along_directions("hvp", generated)
    h = 1e-3

    def grads_at(t):
        return T.numeric_gradients(fn, _moved(args, positions, directions, t), positions, eps=1e-5)

    plus, minus = grads_at(h), grads_at(-h)
    expected = [(a - b) / (2 * h) for a, b in zip(plus, minus)]
    scale = max(1.0, max(np.max(np.abs(e)) for e in expected))
    T._check_blocks(T._as_blocks(actual, len(positions)), expected, likes, 1e-4, 1e-5 * scale, name)


def _build(out, cache):
    """``tangent build tests/programs --out OUT``, checked to succeed."""
    from test_script_layouts import cli

    proc = subprocess.run(
        [cli(), "build", T.PROGRAMS, "--out", str(out), "--cache-dir", str(cache)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert " 0 failed" in proc.stdout + proc.stderr
    return out


HOOK_TRAILER = "\n# --- Written by Tangent's import hook"


def test_tangent_build_writes_what_the_hook_loads(tmp_path):
    """``tangent build tests/programs --out DIR``: one artifact per program, each the text the
    import hook generated for the same source (without the hook's trailer)."""
    out = _build(tmp_path / "out", tmp_path / "cache")
    compared = 0
    for name in T.SCRIPTS:
        artifact = (out / f"{name}.__grad__.py").read_text()
        hooked = importlib.import_module(f"programs.{name}.__grad__")
        text = Path(hooked.__file__).read_text()
        assert HOOK_TRAILER in text, hooked.__file__
        # Messages in generated code name the source as each door was given it (the hook an
        # absolute path, the build one relative to the tree it was asked for).
        body = text[: text.index(HOOK_TRAILER)].replace(T.PROGRAMS + os.sep, "")
        assert body.rstrip("\n") == artifact.rstrip("\n"), name
        compared += 1
    assert compared == len(T.SCRIPTS) >= 20
    # Built twice: byte for byte the same, all from the cache.
    again = _build(tmp_path / "again", tmp_path / "cache")
    for name in T.SCRIPTS:
        assert (again / f"{name}.__grad__.py").read_bytes() == (out / f"{name}.__grad__.py").read_bytes()


def test_refusals_point_at_the_program():
    """Every function of a program that neither the source nor the live module lets Tangent
    differentiate is an ImportError naming its program's file and line."""
    from tangent._import_hook import _exported

    refused = 0
    for name in T.SCRIPTS:
        gen = importlib.import_module(f"programs.{name}.__grad__")
        for function in gen.__tangent_skipped__:
            try:
                getattr(gen, _exported(function))
            except ImportError as e:
                assert os.path.join(T.PROGRAMS, f"{name}.py") + ":" in str(e), str(e)
                refused += 1
    assert refused >= 10


def test_build_has_exactly_the_static_derivatives(tmp_path):
    """The artifact of `tangent build` defines `d<f>` for every case the hook serves from the
    source alone, and for none it serves from the live module."""
    out = _build(tmp_path / "out", tmp_path / "cache")
    for case, (module, name, _fn, _args, positions) in CASES:
        if positions != [0] or REFUSED.get(case.id, "").startswith("TypeError"):
            continue  # `d<f>_d<p>` names are made on first use, not written by `build`
        text = (out / f"{module.split('.')[-1]}.__grad__.py").read_text()
        assert (f"\ndef {name}(" in text) == (case.id not in LIVE), case.id


def test_a_refusal_is_told_again_without_differentiating_again(monkeypatch):
    """A name neither the source nor the live module allows (`_fd.flatten`: a comprehension
    over the differentiated value): the second access raises the same ImportError without
    asking the engine again."""
    import tangent._import_hook as hook

    gen = importlib.import_module("programs._fd.__grad__")
    assert "flatten" in gen.__tangent_skipped__
    with pytest.raises(ImportError) as first:
        gen.dflatten
    calls = []
    monkeypatch.setattr(hook, "_api_derivative", lambda *a: calls.append(a))
    with pytest.raises(ImportError) as second:
        gen.dflatten
    assert str(second.value) == str(first.value) and not calls
