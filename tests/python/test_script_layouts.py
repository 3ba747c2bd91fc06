"""Functions where scripts define them: inside `if __name__ == "__main__":`, `try:` /
`except ImportError:` fallbacks, `with` and `for` blocks, and a function defined in both
branches of an `if`. Through the API (a script run as `__main__`), the import hook and
`tangent build`; gradients against finite differences. Also: the signatures of `jvp`, `hvp`
and `vjp` of functions with defaults, and what a missing function's error says."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad

REPO = Path(__file__).resolve().parents[2]

SCRIPT = '''
import numpy as np
import tangent

try:
    from scipy.special import logsumexp
except ImportError:  # an old SciPy
    def logsumexp(a):
        return np.log(np.sum(np.exp(a)))

with np.errstate(all="ignore"):
    def softplus(x):
        return np.log1p(np.exp(x))

for _unused in range(1):
    def penalty(w):
        return 0.01 * np.sum(w ** 2)

if __name__ == "__main__":
    rng = np.random.RandomState(0)
    X = rng.randn(6, 3)
    y = rng.randn(6)

    def predict(w, X):
        return softplus(X @ w)

    def loss(w, X, y, scale=2.0):
        return logsumexp(predict(w, X) - y) * scale + penalty(w)

    def fd(f, w, eps=1e-6):
        return np.array([(f(w + eps * e) - f(w - eps * e)) / (2 * eps) for e in np.eye(len(w))])

    w = rng.randn(3)
    for step in range(3):
        g = tangent.grad(loss)(w, X, y)
        assert np.allclose(g, fd(lambda w: loss(w, X, y), w), atol=1e-6), (g, fd(lambda w: loss(w, X, y), w))
        w = w - 0.1 * g
    v = rng.randn(3)
    jv = tangent.jvp(loss)(w, X, y, v)
    assert np.allclose(jv, fd(lambda w: loss(w, X, y), w) @ v, atol=1e-6)
    dloss = tangent.grad(loss)
    hv = tangent.hvp(loss)(w, X, y, v)
    numeric_hv = (dloss(w + 1e-5 * v, X, y) - dloss(w - 1e-5 * v, X, y)) / 2e-5
    assert np.allclose(hv, numeric_hv, atol=1e-5), (hv, numeric_hv)
    print("trained", float(loss(w, X, y)))
'''


def run_script(path, *args, env=None):
    full_env = {k: v for k, v in os.environ.items() if k != "TANGENT_GENERATED_DIR"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True, timeout=240, env=full_env, cwd=path.parent
    )


def test_a_script_whose_loss_is_defined_in_its_main_block(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    result = run_script(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("trained")


MODULE = '''
import numpy as np

try:
    from scipy.special import expit
except ImportError:
    def expit(x):
        return 1.0 / (1.0 + np.exp(-x))

HAVE_FAST = False
if HAVE_FAST:
    def activation(x):
        return np.maximum(x, 0.0)
else:
    def activation(x):
        return np.tanh(x)

with open(__file__) as _f:
    def loss(w, x):
        return np.sum(expit(activation(w * x)) ** 2)
'''


def test_the_import_hook_finds_definitions_in_blocks(tmp_path):
    (tmp_path / "blocks.py").write_text(MODULE)
    check = tmp_path / "check.py"
    check.write_text(
        textwrap.dedent(
            """
            import numpy as np
            import tangent
            tangent.install_import_hook()
            from blocks import loss
            from blocks.__grad__ import dloss
            w = np.array([0.3, -0.2, 0.5]); x = np.array([1.0, 2.0, -1.0])
            eps = 1e-6
            fd = np.array([(loss(w + eps * e, x) - loss(w - eps * e, x)) / (2 * eps) for e in np.eye(3)])
            assert np.allclose(dloss(w, x), fd, atol=1e-7), (dloss(w, x), fd)
            print("ok")
            """
        )
    )
    result = run_script(check, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_api_differentiates_the_branch_that_ran(tmp_path):
    """`activation` is defined in both branches of an `if`; the one bound is the else
    branch's (the last), and a module where the first branch ran gets that one."""
    for flag, expected in (("False", np.tanh), ("True", lambda z: np.maximum(z, 0.0))):
        name = f"branches_{flag.lower()}"
        (tmp_path / f"{name}.py").write_text(MODULE.replace("HAVE_FAST = False", f"HAVE_FAST = {flag}"))
        sys.path.insert(0, str(tmp_path))
        try:
            module = __import__(name)
        finally:
            sys.path.remove(str(tmp_path))
        w = np.array([0.3, -0.2, 0.5])
        x = np.array([1.0, 2.0, -1.0])
        g = tangent.grad(module.loss)(w, x)
        assert_close(g, numeric_grad(module.loss, (w, x)), rtol=1e-5, atol=1e-7)
        assert module.activation(np.array([-1.0]))[0] == expected(np.array([-1.0]))[0]


def cli():
    for profile in ("debug", "release"):
        candidate = REPO / "target" / profile / "tangent"
        if candidate.is_file():
            return str(candidate)
    pytest.skip("the tangent CLI is not built (cargo build -p tangent-cli)")


def test_tangent_build_and_grad_see_definitions_in_blocks(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    result = subprocess.run([cli(), "grad", "train.py:loss"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "def dloss(w, X, y, scale=2.0, bloss=1.0):" in result.stdout
    # The try body's import is what the name is bound to, not the fallback.
    assert "logsumexp_forward" not in result.stdout
    out = tmp_path / "out"
    result = subprocess.run([cli(), "build", ".", "--out", str(out)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    generated = "".join(p.read_text() for p in out.rglob("*.py"))
    for name in ("dloss", "dpredict", "dsoftplus", "dpenalty"):
        assert f"def {name}(" in generated, name


def test_a_function_that_is_not_at_the_top_level_is_explained(tmp_path):
    (tmp_path / "nested.py").write_text(
        "import numpy as np\n\ndef main():\n    def objective(w):\n        return np.sum(w ** 2)\n    return objective\n\n"
        "loss = lambda w: np.sum(w)\n"
    )
    result = subprocess.run([cli(), "grad", "nested.py:objective"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0
    assert "error[T005 function-not-found]: `objective` is defined inside function `main`" in result.stderr
    assert "nested.py:4:9" in result.stderr
    result = subprocess.run([cli(), "grad", "nested.py:loss"], cwd=tmp_path, capture_output=True, text=True)
    assert "`loss` is bound to a lambda here" in result.stderr and "nested.py:8:1" in result.stderr
    result = subprocess.run([cli(), "grad", "nested.py:nothing"], cwd=tmp_path, capture_output=True, text=True)
    assert "no function named `nothing` in this module" in result.stderr
    assert "the module's functions: main" in result.stderr


# ------------------------------------------------------------------------------ signatures


def loss_with_defaults(w, x, scale=2.0, *, bias=0.5):
    return np.sum(np.tanh(w * x) * scale + bias * w ** 2)


W = np.array([0.1, -0.3, 0.7])
XS = np.array([1.0, 2.0, 0.5])
V = np.array([1.0, 0.5, -1.0])


def directional(f, eps=1e-6):
    return (f(W + eps * V) - f(W - eps * V)) / (2 * eps)


@pytest.mark.parametrize("optimized", [True, False])
def test_jvp_takes_its_direction_after_the_required_arguments(optimized):
    jf = tangent.jvp(loss_with_defaults, optimized=optimized)
    base = directional(lambda w: loss_with_defaults(w, XS))
    assert_close(jf(W, XS, V), base)
    assert_close(jf(W, XS, V, scale=3.0, bias=1.0), directional(lambda w: loss_with_defaults(w, XS, 3.0, bias=1.0)))
    # The original's order: the direction after every argument.
    assert_close(jf(W, XS, 3.0, V), directional(lambda w: loss_with_defaults(w, XS, 3.0)))
    import inspect

    assert str(inspect.signature(jf)) == "(w, x, dw, scale=2.0, *, bias=0.5)"


def test_hvp_keeps_defaults_and_keyword_only_parameters():
    hf = tangent.hvp(loss_with_defaults)
    dloss = tangent.grad(loss_with_defaults)
    for args, kwargs in (((), {}), ((3.0,), {"bias": 2.0})):
        numeric = (dloss(W + 1e-5 * V, XS, *args, **kwargs) - dloss(W - 1e-5 * V, XS, *args, **kwargs)) / 2e-5
        assert_close(hf(W, XS, *args, V, **kwargs), numeric, rtol=1e-4, atol=1e-5)
        if not args:
            assert_close(hf(W, XS, V, **kwargs), numeric, rtol=1e-4, atol=1e-5)


def test_vjp_seed_is_not_swallowed_by_a_default():
    vf = tangent.vjp(loss_with_defaults)
    g = tangent.grad(loss_with_defaults)
    assert_close(vf(W, XS, 2.0), 2.0 * g(W, XS))
    assert_close(vf(W, XS, 3.0, 2.0), 2.0 * g(W, XS, 3.0))
    assert_close(vf(W, XS, init_grad=2.0), 2.0 * g(W, XS))


def test_a_direction_of_the_wrong_shape_or_type_is_a_clear_error():
    jf = tangent.jvp(loss_with_defaults)
    with pytest.raises(tangent.InvalidDirectionError, match=r"`dw` for `w` has shape \(2,\)"):
        jf(W, XS, V[:2])
    with pytest.raises(tangent.InvalidDirectionError, match="NoneType"):
        jf(W, XS, None)
    with pytest.raises(tangent.InvalidDirectionError):
        tangent.hvp(loss_with_defaults)(W, XS, np.ones((3, 1)))


def test_cli_forward_and_hvp_signatures(tmp_path):
    (tmp_path / "m.py").write_text(
        "import numpy as np\n\ndef loss(w, x, scale=2.0, *, bias=None):\n    return np.sum(np.tanh(w * x) * scale)\n"
    )
    forward = subprocess.run([cli(), "grad", "m.py:loss", "--mode", "forward"], cwd=tmp_path, capture_output=True, text=True)
    assert "def jvp_loss(w, x, dw, scale=2.0, *, bias=None):" in forward.stdout, forward.stdout + forward.stderr
    hvp = subprocess.run([cli(), "grad", "m.py:loss", "--mode", "hvp"], cwd=tmp_path, capture_output=True, text=True)
    assert "def hvp_loss(w, x, vw, scale=2.0, *, bias=None):" in hvp.stdout, hvp.stdout + hvp.stderr
    assert "return jvp_dloss(w, x, vw, scale=scale, bias=bias)" in hvp.stdout


# ------------------------------------------------------------------------ errors, as users read them

ERRORS = '''
import numpy as np
import scipy.linalg


def installed(x):
    return np.sum(scipy.linalg.logm(x))


def compiled(x):
    return np.sum(np.frexp(x)[0])


def unknown_object(w, model):
    return np.sum(model.forward_pass(w))
'''


def test_no_recipe_help_names_the_callee_s_parameters_and_where_it_lives(tmp_path):
    path = tmp_path / "errors_mod.py"
    path.write_text(ERRORS)
    import importlib.util

    spec = importlib.util.spec_from_file_location("errors_mod", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(tangent.NoRecipeError) as info:
        tangent.grad(module.installed)
    text = str(info.value)
    assert "def logm_adjoint(result, A):" in text and "d[A] = d[result]" in text, text
    assert "installed package `scipy`" in text
    assert "errors_mod.py:7:19" in text
    with pytest.raises(tangent.NoRecipeError, match="compiled code"):
        tangent.grad(module.compiled)
    for mode in (tangent.grad, tangent.jvp):
        with pytest.raises(tangent.NoRecipeError) as info:
            mode(module.unknown_object)
        text = str(info.value)
        assert "`.forward_pass()` is not an array method" in text, text
        assert "numpy.forward_pass" not in text
