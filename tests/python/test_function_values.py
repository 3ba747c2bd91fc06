"""Functions as values, specialized where the callee is known (as a compiler would): a
function passed to a module helper, a function default (`nonlinearity=np.tanh`), lambdas as
arguments, `*args`/`**kwargs` helpers, `functools.partial` with functions and keywords, a
callable object, and the idioms `with np.errstate(...)`, `del name`, starred targets.
Gradients, JVPs and HVPs against central finite differences, optimized and not."""

import functools
import textwrap

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad

MODULE = """
import functools
import numpy as np

def relu(x):
    return np.maximum(x, 0.0)

def softplus(x):
    return np.log1p(np.exp(x))

def predict(params, x, nonlinearity=np.tanh):
    h = x
    for W in params[:-1]:
        h = nonlinearity(h @ W)
    return h @ params[-1]

def mse(params, x, y, nonlinearity=np.tanh):
    return np.mean((predict(params, x, nonlinearity) - y) ** 2)

def mse_softplus(params, x, y):
    return mse(params, x, y, nonlinearity=softplus)

def mse_lambda(params, x, y):
    return mse(params, x, y, lambda z: np.sin(z) * 0.5)

def apply_twice(f, x):
    return f(f(x))

def twice_sin(x):
    return np.sum(apply_twice(lambda t: np.sin(t) * 1.5, x))

def l2_penalty(w, lam=1.0):
    return lam * np.sum(w ** 2)

def smooth_l1(w, lam=1.0, eps=1e-2):
    return lam * np.sum(np.sqrt(w ** 2 + eps))

def apply_penalty(penalty, w, *args, **kwargs):
    return penalty(w, *args, **kwargs)

def add_terms(*terms, weights=None):
    if weights is None:
        weights = [1.0] * len(terms)
    total = 0.0
    for term, weight in zip(terms, weights):
        total = total + weight * term
    return total

def penalized(w, X, y, penalty=l2_penalty, **penalty_kwargs):
    data = 0.5 * np.mean((X @ w - y) ** 2)
    return add_terms(data, apply_penalty(penalty, w, **penalty_kwargs))

def elastic(w, X, y, alpha=0.1):
    return add_terms(
        0.5 * np.mean((X @ w - y) ** 2), smooth_l1(w), l2_penalty(w, 0.5),
        weights=[1.0, alpha, 0.5 * alpha],
    )

def rk4_step(f, y, t, dt, *args):
    k1 = f(y, t, *args)
    k2 = f(y + 0.5 * dt * k1, t + 0.5 * dt, *args)
    k3 = f(y + 0.5 * dt * k2, t + 0.5 * dt, *args)
    k4 = f(y + dt * k3, t + dt, *args)
    return y + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)

def damped(y, t, k, c):
    return np.array([y[1], -k * y[0] - c * y[1]])

def simulate(p, y0):
    y = y0
    for i in range(5):
        y = rk4_step(damped, y, 0.1 * i, 0.1, p[0], p[1])
    return np.sum(y ** 2)

def idioms(w, X, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log1p(np.exp(X @ w))
    r = z - y
    scratch = r * 2.0
    del scratch
    first, *middle, last = r
    coef, *_ = (w * 2.0, w, None)
    return np.sum(r ** 2) + first * last + sum(middle) + np.sum(coef ** 2)

def square(t):
    return t * t

def iteration_builtins(w, items):
    order = sorted(items, key=lambda p: p[1])
    total = 0.0
    for name, rank in order:
        total = total + np.sum(w) * rank
    parts = list(map(square, [w, 2.0 * w]))
    scaled = list(map(lambda t: np.sin(t) * 0.5, parts))
    more = list(x * 3.0 for x in scaled)
    return total + np.sum(parts[0]) + np.sum(parts[1]) + np.sum(more[1])

def objective(w, logprob, scale):
    return -logprob(w) * scale

def gaussian_logprob(w):
    return -0.5 * np.sum(w ** 2)

def banana_logprob(w):
    return -0.5 * (w[0] ** 2 + (w[1] - w[0] ** 2) ** 2) + 0.1 * np.sum(np.sin(w))

class Quadratic:
    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __call__(self, x):
        return 0.5 * x @ self.a @ x - self.b @ x
"""

RNG = np.random.default_rng(3)
X = RNG.normal(size=(6, 3))
Y = RNG.normal(size=6)
W = RNG.normal(size=3)
V = RNG.normal(size=3)
PARAMS = [RNG.normal(size=(3, 4)) * 0.5, RNG.normal(size=(4, 2)) * 0.5, RNG.normal(size=2) * 0.5]
XIN = RNG.normal(size=(5, 3))
YOUT = RNG.normal(size=5)


def _module(path, name, text):
    """``text`` written to ``path`` and imported as ``name`` (a file, as the engine reads)."""
    import importlib.util
    import sys

    path.write_text(textwrap.dedent(text))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def m(tmp_path_factory):
    return _module(tmp_path_factory.mktemp("fv") / "function_values_mod.py", "function_values_mod", MODULE)


def check(f, args, optimized, hvp=True):
    """grad vs finite differences (w.r.t. the first argument), jvp and hvp along a direction."""
    g = tangent.grad(f, optimized=optimized)(*args)
    assert_close(g, numeric_grad(f, args), rtol=1e-5, atol=1e-6)
    x = args[0]
    if not isinstance(x, np.ndarray):
        return
    v = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    rest = args[1:]
    eps = 1e-6
    numeric_jv = (f(x + eps * v, *rest) - f(x - eps * v, *rest)) / (2 * eps)
    assert_close(tangent.jvp(f, optimized=optimized)(*args, v), numeric_jv, rtol=1e-5, atol=1e-6)
    if hvp:
        dfdx = tangent.grad(f, optimized=optimized)
        numeric_hv = (dfdx(x + 1e-5 * v, *rest) - dfdx(x - 1e-5 * v, *rest)) / 2e-5
        assert_close(tangent.hvp(f, optimized=optimized)(*args, v), numeric_hv, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimized", [True, False])
def test_function_default_and_function_arguments(m, optimized):
    first, second, out = PARAMS
    mse, mse_softplus, mse_lambda = m.mse, m.mse_softplus, m.mse_lambda
    # Lambdas of this file calling the other module's functions (their source comes along).
    check(lambda W1: mse([W1, second, out], XIN, YOUT), (first,), optimized)
    check(lambda W1: mse_softplus([W1, second, out], XIN, YOUT), (first,), optimized)
    check(lambda W1: mse_lambda([W1, second, out], XIN, YOUT), (first,), optimized)
    check(m.twice_sin, (W,), optimized)


def test_a_function_default_given_another_function_gets_its_derivative(m):
    """The derivative made for the default (`nonlinearity=np.tanh`), given another function
    when called, differentiates the function with that one (one derivative per function)."""
    dmse = tangent.grad(m.mse)
    for other in (m.softplus, m.softplus, np.tanh):
        numeric = numeric_grad(lambda p0: m.mse([p0, PARAMS[1], PARAMS[2]], XIN, YOUT, other), (PARAMS[0],))
        assert_close(dmse(PARAMS, XIN, YOUT, other)[0], numeric, rtol=1e-5, atol=1e-6)
        assert_close(dmse(PARAMS, XIN, YOUT, nonlinearity=other)[0], numeric, rtol=1e-5, atol=1e-6)
    # The partial of the other function is differentiated.
    relu_loss = functools.partial(m.mse, nonlinearity=m.softplus)
    g = tangent.grad(relu_loss)(PARAMS, XIN, YOUT)
    numeric = numeric_grad(lambda p0: m.mse([p0, PARAMS[1], PARAMS[2]], XIN, YOUT, m.softplus), (PARAMS[0],))
    assert_close(g[0], numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimized", [True, False])
def test_args_and_kwargs_helpers(m, optimized):
    check(m.elastic, (W, X, Y), optimized)
    check(m.simulate, (np.array([2.0, 0.3]), np.array([1.0, 0.0])), optimized)
    ridge = functools.partial(m.penalized, penalty=m.l2_penalty, lam=0.1)
    check(ridge, (W, X, Y), optimized)
    lasso = functools.partial(m.penalized, penalty=m.smooth_l1, lam=0.05, eps=1e-3)
    check(lasso, (W, X, Y), optimized)


@pytest.mark.parametrize("optimized", [True, False])
def test_idioms_errstate_del_and_starred_targets(m, optimized):
    check(m.idioms, (W, X, Y), optimized)


def test_partial_binding_positions_and_keywords(m):
    bound_data = functools.partial(m.penalized, X=X, y=Y)
    assert_close(tangent.grad(bound_data)(W), numeric_grad(bound_data, (W,)), rtol=1e-5, atol=1e-6)
    leading = functools.partial(m.elastic, W)  # wrt counts the open parameters: X
    dX = tangent.grad(leading)(X, Y)
    assert_close(dX, numeric_grad(lambda X_: m.elastic(W, X_, Y), (X,)), rtol=1e-5, atol=1e-6)


def test_a_callable_object(m):
    A = np.array([[2.0, 0.3, 0.0], [0.3, 1.5, 0.2], [0.0, 0.2, 1.0]])
    quad = m.Quadratic(A, V)
    assert_close(tangent.grad(quad)(W), A @ W - V)
    assert_close(tangent.hvp(quad)(W, V), A @ V)


def test_errstate_that_raises_is_refused(tmp_path):
    module = _module(
        tmp_path / "raising.py",
        "raising_errstate",
        """
        import numpy as np

        def f(w):
            with np.errstate(all="raise"):
                z = np.exp(w)
            return np.sum(z)
        """,
    )
    with pytest.raises(tangent.UnsupportedError, match="change no value"):
        tangent.grad(module.f)


@pytest.mark.parametrize("optimized", [True, False])
def test_map_list_and_sorted_with_a_key(m, optimized):
    items = [("b", 2.0), ("a", 0.5), ("c", 1.5)]
    check(functools.partial(m.iteration_builtins, items=items), (W,), optimized)


@pytest.mark.parametrize("optimized", [True, False])
def test_a_function_given_only_when_the_derivative_is_called(m, optimized):
    """`tangent.grad(objective)(w, logprob, 2.0)`: specialized for the function it is given,
    once per function."""
    w = np.array([0.4, -0.3])
    dobjective = tangent.grad(m.objective, optimized=optimized)
    for logprob in (m.gaussian_logprob, m.banana_logprob, m.gaussian_logprob):
        f = lambda x: m.objective(x, logprob, 2.0)  # noqa: E731
        assert_close(dobjective(w, logprob, 2.0), numeric_grad(f, (w,)), rtol=1e-5, atol=1e-6)
        assert_close(dobjective(w, logprob=logprob, scale=2.0), numeric_grad(f, (w,)), rtol=1e-5, atol=1e-6)
        v = np.array([0.5, 1.0])
        numeric_jv = (f(w + 1e-6 * v) - f(w - 1e-6 * v)) / 2e-6
        assert_close(tangent.jvp(m.objective, optimized=optimized)(w, logprob, 2.0, v), numeric_jv, rtol=1e-5, atol=1e-6)
        numeric_hv = (dobjective(w + 1e-5 * v, logprob, 2.0) - dobjective(w - 1e-5 * v, logprob, 2.0)) / 2e-5
        assert_close(tangent.hvp(m.objective, optimized=optimized)(w, logprob, 2.0, v), numeric_hv, rtol=1e-4, atol=1e-5)
    with pytest.raises(tangent.NoRecipeError, match="`logprob`"):
        dobjective(w, 3.0, 2.0)  # not a function: the refusal it had


def test_a_helper_reading_a_global_the_caller_shadows_is_not_inlined(tmp_path):
    """Inlining `apply(f, w)` into a caller with a local `scale` would make the helper's global
    `scale` read the caller's: refused instead, never that wrong gradient."""
    import importlib.util

    module = _module(
        tmp_path / "shadowing_mod.py",
        "shadowing_mod",
        """
        import numpy as np
        scale = 2.0

        def apply(f, w):
            return f(w) * scale

        def caller(w):
            scale = 5.0
            return np.sum(apply(np.sin, w)) + scale
        """,
    )
    with pytest.raises(tangent.TangentError, match="`f`"):
        tangent.grad(module.caller)


@pytest.mark.parametrize("optimized", [True, False])
def test_keyword_arguments_of_the_differentiated_function(m, optimized):
    """`def penalized(w, X, y, penalty=l2_penalty, **penalty_kwargs)` differentiated itself:
    the keywords (and another penalty) it is called with are bound when it is called."""
    dpen = tangent.grad(m.penalized, optimized=optimized)
    cases = [
        ((W, X, Y), {}),
        ((W, X, Y), {"lam": 0.3}),
        ((W, X, Y, m.smooth_l1), {"lam": 0.05, "eps": 1e-3}),
        ((W, X, Y), {"penalty": m.smooth_l1, "lam": 0.2}),
    ]
    for args, kwargs in cases:
        numeric = numeric_grad(lambda w: m.penalized(w, *args[1:], **kwargs), (args[0],))
        assert_close(dpen(*args, **kwargs), numeric, rtol=1e-5, atol=1e-6)


def test_a_closure_giving_its_cell_function_to_a_module_helper():
    """A factory's closure calling a module helper with a function from its cells: read as a
    function of its module, the helper specialized for that function."""
    objective = m_factory_objective()
    w = np.array([0.3, -0.2, 0.5])
    numeric = numeric_grad(objective, (w,))
    assert_close(tangent.grad(objective)(w), numeric, rtol=1e-6, atol=1e-8)
    v = np.array([1.0, 0.5, -0.25])
    g = tangent.grad(objective)
    eps = 1e-6
    assert_close(tangent.hvp(objective)(w, v), (g(w + eps * v) - g(w - eps * v)) / (2 * eps), rtol=1e-5, atol=1e-6)


def _cubed_log(z):
    return np.log1p(z**2) * z


def _helper_given_function(w, fn, scale):
    return scale * np.sum(fn(w))


def m_factory_objective():
    scale = 0.7

    def objective(w):
        return _helper_given_function(w, _cubed_log, scale) + np.sum(w**2)

    return objective
