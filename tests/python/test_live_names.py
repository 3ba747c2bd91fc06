"""Names the running program binds where the file does not show them: a factory's closures
and the functions in their cells, lambdas, `functools.partial`, a builtin or ufunc bound to a
name, a helper defined again after the function, globals bound again after the derivative was
made. Every derivative is checked against central finite differences."""

import functools
import textwrap

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad

RNG = np.random.default_rng(7)
X = RNG.normal(size=(5, 3))
Y = RNG.normal(size=5)
W = RNG.normal(size=3)
V = RNG.normal(size=3)


def load(tmp_path, source, name="live_mod"):
    """Imports `source` as a module from a file (so the engine reads a real file)."""
    import importlib.util
    import sys

    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(f"{name}_{abs(hash(str(tmp_path)))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def directional(f, w, v, eps=1e-6):
    return (f(w + eps * v) - f(w - eps * v)) / (2 * eps)


def check_all_modes(f, w=W, v=V, optimized=True):
    """grad, jvp and hvp of scalar `f(w)` against finite differences."""
    g = tangent.grad(f, optimized=optimized)(w)
    assert_close(g, numeric_grad(f, (w,)), rtol=1e-5, atol=1e-6)
    assert_close(tangent.jvp(f, optimized=optimized)(w, v), directional(f, w, v), rtol=1e-5, atol=1e-6)
    numeric_hv = directional(lambda x: numeric_grad(f, (x,), eps=1e-4), w, v, eps=1e-4)
    assert_close(tangent.hvp(f, optimized=optimized)(w, v), numeric_hv, rtol=1e-3, atol=1e-4)


FACTORY = """
    import numpy as np

    def make_model(X, y, nonlinearity=np.tanh):
        def log_density(w):
            return -np.sum((nonlinearity(X @ w) - y) ** 2)
        return log_density

    def objective(w):
        return -log_density(w) + 0.1 * np.sum(w ** 2)

    def objective_with(w, logprob):
        return -logprob(w)
"""


@pytest.mark.parametrize("optimized", [True, False])
def test_a_closure_stored_in_a_module_global_is_differentiated_through(tmp_path, optimized):
    m = load(tmp_path, FACTORY)
    m.log_density = m.make_model(X, Y)
    check_all_modes(m.objective, optimized=optimized)


def test_the_closure_itself_and_its_function_valued_cell(tmp_path):
    m = load(tmp_path, FACTORY)
    check_all_modes(m.make_model(X, Y))
    check_all_modes(m.make_model(X, Y, nonlinearity=np.sin))


def test_a_new_closure_of_the_same_text_gets_its_own_derivative(tmp_path):
    m = load(tmp_path, FACTORY)
    m.log_density = m.make_model(X, Y)
    first = tangent.grad(m.objective)(W)
    m.log_density = m.make_model(2.0 * X, Y)
    second = tangent.grad(m.objective)(W)
    assert_close(second, numeric_grad(m.objective, (W,)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(first, second)


def test_lambdas_as_the_objective(tmp_path):
    m = load(tmp_path, FACTORY)
    log_density = m.make_model(X, Y)  # a closure of another module, in this lambda's cell
    check_all_modes(lambda p: -log_density(p))
    check_all_modes(lambda w: np.sum(np.sin(w) * w))
    # Two lambdas on one line: told apart by their code.
    f, g = (lambda w: np.sum(w ** 3)), (lambda w: np.sum(np.exp(w)))
    check_all_modes(f)
    check_all_modes(g)


def test_lambda_with_a_default_and_a_second_parameter():
    f = lambda w, scale=2.0: np.sum(np.tanh(w) * scale)  # noqa: E731
    assert_close(tangent.grad(f)(W, 3.0), numeric_grad(lambda w: f(w, 3.0), (W,)), rtol=1e-5, atol=1e-6)


def test_functools_partial(tmp_path):
    m = load(tmp_path, FACTORY)
    logprob = m.make_model(X, Y)
    obj = functools.partial(m.objective_with, logprob=logprob)
    check_all_modes(obj)

    def loss(w, X, y, reg):
        return np.sum((X @ w - y) ** 2) + reg * np.sum(w ** 2)

    bound = functools.partial(loss, X=X, y=Y, reg=0.5)
    assert_close(tangent.grad(bound)(W), numeric_grad(bound, (W,)), rtol=1e-5, atol=1e-6)
    leading = functools.partial(loss, W)  # wrt counts the parameters left open: X
    dX = tangent.grad(leading)(X, Y, 0.5)
    assert_close(dX, numeric_grad(lambda X_: loss(W, X_, Y, 0.5), (X,)), rtol=1e-5, atol=1e-6)


def test_builtin_and_ufunc_bound_to_names(tmp_path):
    m = load(
        tmp_path,
        """
        import numpy as np
        act = np.tanh
        total = np.sum
        def net(w):
            return total(act(w) ** 2)
        """,
    )
    check_all_modes(m.net)


def test_a_global_bound_again_after_the_derivative_was_made(tmp_path):
    m = load(
        tmp_path,
        """
        import numpy as np
        scale = 2.0
        def loss(w):
            return np.sum(np.sin(w) * scale)
        """,
    )
    dloss = tangent.grad(m.loss)
    assert_close(dloss(W), 2.0 * np.cos(W))
    m.scale = 5.0
    assert_close(dloss(W), 5.0 * np.cos(W))
    assert_close(tangent.grad(m.loss)(W), 5.0 * np.cos(W))


def test_a_helper_defined_again_is_the_one_differentiated(tmp_path):
    m = load(
        tmp_path,
        """
        import numpy as np
        def helper(x):
            return np.tanh(x)
        def loss(w):
            return np.sum(helper(w) ** 2)
        """,
    )
    assert_close(tangent.grad(m.loss)(W), numeric_grad(m.loss, (W,)), rtol=1e-5, atol=1e-6)
    ns = {"np": np}
    exec("def helper(x):\n    return np.sin(x) * 3.0\n", ns)  # noqa: S102 - a later cell's definition
    m.helper = ns["helper"]
    with pytest.raises(tangent.TangentError):
        # Its source is not in a file Tangent can read: refused, never the old helper's.
        tangent.grad(m.loss)(W)


def test_a_helper_of_another_file_bound_again(tmp_path):
    m = load(
        tmp_path,
        """
        import numpy as np
        def helper(x):
            return np.tanh(x)
        def loss(w):
            return np.sum(helper(w) ** 2)
        """,
    )
    elsewhere = tmp_path / "elsewhere"  # outside the first module's project
    elsewhere.mkdir()
    other = load(
        elsewhere,
        """
        import numpy as np
        def helper(x):
            return np.sin(x) * 3.0
        """,
        name="other_helpers",
    )
    m.helper = other.helper
    # The other module's `helper` (outside this project: its source comes along), never
    # the file's own.
    dloss = tangent.grad(m.loss)
    assert_close(dloss(W), numeric_grad(m.loss, (W,)), rtol=1e-5, atol=1e-6)


def test_code_run_from_a_string_is_never_read_from_another_string_s_text(tmp_path):
    """`<string>` names every string `exec` runs: the text linecache holds under it may be
    another's. Such a function (or helper) is refused, never differentiated from that text."""
    import linecache

    ns = {"np": np}
    exec(compile("def f(w):\n    return np.sum(np.sin(w))\n", "<string>", "exec"), ns)  # noqa: S102
    other = "def f(w):\n    return np.sum(w ** 3)\n"
    linecache.cache["<string>"] = (len(other), None, other.splitlines(True), "<string>")
    try:
        with pytest.raises(tangent.FunctionNotFoundError):
            tangent.grad(ns["f"])
        m = load(
            tmp_path,
            """
            import numpy as np
            def helper(x):
                return np.tanh(x)
            def loss(w):
                return np.sum(helper(w) ** 2)
            """,
        )
        m.helper = ns["f"]
        with pytest.raises(tangent.TangentError):
            tangent.grad(m.loss)
    finally:
        linecache.cache.pop("<string>", None)
