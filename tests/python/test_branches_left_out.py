"""Branches that are never taken do not block a derivative (issue 14, item 4).

A branch of an `if` that cannot be differentiated (code for sparse matrices, 3-D inputs, a
helper with no recipe) becomes an error raised only if that branch runs, at its own line,
with the engine's reason; the rest of the function is differentiated. The library idioms that
come with such code are covered too: the array-API namespace (`xp = get_namespace(x)`), shape
spreads into `reshape`, parameters whose attributes are read only to tell arrays from sparse
matrices.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad


class SparseLike:
    """Stands for a sparse matrix: an object the branches below refuse to differentiate."""

    format = "csr"
    ndim = 2

    def __init__(self, dense):
        self.dense = dense

    def toarray(self):
        return self.dense


def is_sparse(x):
    return isinstance(x, SparseLike)


def opaque_norms(x):
    return x


def row_energy(x):
    if is_sparse(x):
        dense = x.toarray()
        return np.sum(dense)
    elif x.ndim == 3:
        flat = x.reshape(x.shape[0], -1)
        return np.sum(flat.toarray())
    total = np.sum(x * x, axis=1)
    return np.sum(np.sqrt(total + 1.0))


def scaled(x, w):
    if x.format == "csr" if hasattr(x, "format") else False:
        return np.sum(x.toarray() * w)
    y = x @ w
    return np.sum(np.tanh(y))


def reshaped(x, w):
    out = np.outer(x, w)
    out = out.reshape(x.shape[0], *w.shape)
    return np.sum(np.sin(out))


RNG = np.random.default_rng(1407)
X = RNG.normal(size=(4, 3))
W = RNG.normal(size=3)


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
def test_dense_path_differentiates_and_the_refused_branches_raise_only_when_taken(optimized):
    df = tangent.grad(row_energy, optimized=optimized)
    assert_close(df(X), numeric_grad(row_energy, (X,)), rtol=1e-6, atol=1e-8)
    source = inspect.getsource(df)
    assert source.count("tangent.branch_not_differentiated(") == 2, source
    with pytest.raises(tangent.NoRecipeError) as info:
        df(SparseLike(X))
    text = str(info.value)
    assert "this branch ran" in text and ".toarray()" in text
    assert f"{__file__}:{inspect.getsourcelines(row_energy)[1] + 2}:" in text, text
    assert "dense = x.toarray()" in text


def test_forward_mode_and_hvp_leave_out_the_same_branches():
    v = RNG.normal(size=X.shape)
    got = tangent.jvp(row_energy)(X, v)
    eps = 1e-6
    want = (row_energy(X + eps * v) - row_energy(X - eps * v)) / (2 * eps)
    assert np.isclose(got, want, rtol=1e-6, atol=1e-8)
    hv = tangent.hvp(row_energy)(X, v)
    g = tangent.grad(row_energy)
    fd = (g(X + eps * v) - g(X - eps * v)) / (2 * eps)
    assert_close(hv, fd, rtol=1e-5, atol=1e-6)
    with pytest.raises(tangent.TangentError, match="this branch ran"):
        tangent.jvp(row_energy)(SparseLike(X), v)


def test_a_parameter_whose_attributes_are_only_checked_keeps_its_array_gradient():
    """`x.format` read to tell a sparse matrix: `x` is still an array, its gradient whole."""
    assert_close(tangent.grad(scaled, wrt=(0, 1))(X, W), numeric_grad(scaled, (X, W), wrt=(0, 1)), rtol=1e-6, atol=1e-8)


def test_a_shape_spread_into_reshape():
    x = RNG.normal(size=4)
    assert_close(tangent.grad(reshaped, wrt=(0, 1))(x, W), numeric_grad(reshaped, (x, W), wrt=(0, 1)), rtol=1e-6, atol=1e-8)


def test_refusals_outside_any_branch_still_refuse_the_function():
    def everywhere(x):
        return np.sum(opaque_norms_unknown(x))  # noqa: F821 (no such function: refused)

    with pytest.raises(tangent.TangentError):
        tangent.grad(everywhere)


def test_a_break_a_checkpoint_cannot_hold_is_refused_not_left_out(tmp_path, monkeypatch):
    source = (
        "import tangent\n\n"
        "def f(x):\n"
        "    with tangent.checkpoint():\n"
        "        for i in range(3):\n"
        "            if i > 1:\n"
        "                break\n"
        "            x = x * 2.0\n"
        "    return x\n"
    )
    (tmp_path / "ckpt_break.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    import ckpt_break

    with pytest.raises(tangent.UnsupportedError, match="break"):
        tangent.grad(ckpt_break.f)


# `row_energy` as a module of its own (the hook reads a module's file as it stands; pytest
# rewrites this one's asserts).
HOOKED = "import numpy as np\n\n\n" + inspect.getsource(row_energy).replace("is_sparse(x)", 'hasattr(x, "toarray")')


def test_the_import_hook_leaves_out_the_same_branches(tmp_path, monkeypatch):
    """`from <module>.__grad__ import drow_energy`: the module's source alone refuses the
    function (`tangent build` skips it); the import hook gives the derivative `tangent.grad`
    makes from the live module, branches left out alike."""
    import importlib

    (tmp_path / "hooked_branches.py").write_text(HOOKED)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("hooked_branches")
    gradients = importlib.import_module("hooked_branches.__grad__")
    assert "row_energy" in gradients.__tangent_skipped__
    d = gradients.drow_energy
    assert_close(d(X), numeric_grad(module.row_energy, (X,)), rtol=1e-6, atol=1e-8)
    with pytest.raises(tangent.NoRecipeError, match="this branch ran"):
        d(SparseLike(X))
    v = RNG.normal(size=X.shape)
    jvp = importlib.import_module("hooked_branches.__jvp__").drow_energy
    eps = 1e-6
    want = (module.row_energy(X + eps * v) - module.row_energy(X - eps * v)) / (2 * eps)
    assert np.isclose(jvp(X, v), want, rtol=1e-6, atol=1e-8)
