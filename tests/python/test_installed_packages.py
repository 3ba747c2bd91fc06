"""Calls into installed packages, followed as shipped (issue 14, item 4).

Each wrapper below calls a function of scikit-learn or SciPy that ships a hand-written
gradient, or a helper those use, exactly as installed: the engine reads the function's source
in site-packages (nothing is copied into this file), with the array-API idiom
(`xp = array_namespace(x)`), decorators, and code for sparse matrices that the dense inputs
never run. Gradients are compared with central finite differences, the library's own
gradient where it ships one, JVPs with directional differences.
"""

from __future__ import annotations

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, numeric_grad

sklearn = pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from scipy.optimize import rosen, rosen_der  # noqa: E402
from sklearn.linear_model._huber import _huber_loss_and_gradient  # noqa: E402
from sklearn.neural_network._base import binary_log_loss, log_loss, squared_loss  # noqa: E402
from sklearn.utils._array_api import get_namespace  # noqa: E402
from sklearn.utils.extmath import fast_logdet, row_norms, safe_sparse_dot, softmax, squared_norm  # noqa: E402
from sklearn.decomposition._nmf import _beta_divergence  # noqa: E402
from sklearn.mixture._gaussian_mixture import _compute_log_det_cholesky, _estimate_log_gaussian_prob  # noqa: E402
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score  # noqa: E402
from sklearn.metrics.pairwise import (  # noqa: E402
    cosine_similarity,
    euclidean_distances,
    linear_kernel,
    polynomial_kernel,
    rbf_kernel,
    sigmoid_kernel,
)
from sklearn.preprocessing import normalize  # noqa: E402

RNG = np.random.default_rng(14)
X = RNG.normal(size=(7, 3))
Y = RNG.normal(size=7)
PROBS = np.array([[0.2, 0.8], [0.6, 0.4], [0.35, 0.65]])
LABELS = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
SPD = np.array([[2.0, 0.3, 0.1], [0.3, 1.5, 0.2], [0.1, 0.2, 1.2]])
NMF_W = RNG.uniform(0.5, 1.5, size=(4, 2))
NMF_H = RNG.uniform(0.5, 1.5, size=(2, 3))
NMF_X = RNG.uniform(0.5, 1.5, size=(4, 3))
MEANS = RNG.normal(size=(2, 2))
PRECISIONS = np.array([[[1.2, 0.0], [0.3, 0.9]], [[0.8, 0.0], [-0.2, 1.1]]])


def scipy_rosen(x):
    return rosen(x)


def sk_squared_loss(pred, y):
    return squared_loss(y, pred)


def sk_log_loss(prob, y):
    return log_loss(y, prob)


def sk_binary_log_loss(prob, y):
    return binary_log_loss(y, prob)


def sk_squared_norm(w):
    return squared_norm(w)


def sk_row_norms(a):
    return np.sum(row_norms(a, squared=True) ** 1.5)


def sk_fast_logdet(a):
    return fast_logdet(a)


def sk_safe_sparse_dot(w, a, y):
    residual = y - safe_sparse_dot(a, w)
    return np.sum(residual**2)


def sk_huber(w, a, y):
    loss, _ = _huber_loss_and_gradient(w, a, y, 1.35, 0.1, np.ones(a.shape[0]))
    return loss


def scipy_rosen_der(x):
    return np.sum(rosen_der(x) ** 2)


def nmf_kullback_leibler(w, x, h):
    return _beta_divergence(x, w, h, 1)


def nmf_frobenius(w, x, h):
    return _beta_divergence(x, w, h, 2)


def nmf_itakura_saito(w, x, h):
    return _beta_divergence(x, w, h, 0)


def gmm_log_prob_full(means, x, precisions_cholesky):
    return np.sum(_estimate_log_gaussian_prob(x, means, precisions_cholesky, "full"))


def gmm_log_prob_diag(means, x, precisions_cholesky):
    return np.sum(_estimate_log_gaussian_prob(x, means, precisions_cholesky, "diag"))


def gmm_log_det(precisions_cholesky):
    return np.sum(_compute_log_det_cholesky(precisions_cholesky, "full", 2))


# Metrics and kernels: input validation (check_array, check_consistent_length), the array-API
# plumbing (get_namespace_and_device, move_to, device, _find_matching_floating_dtype, each
# with `*arrays`), `try`/`with warnings.catch_warnings()` blocks, sparse branches never taken.
def sk_mean_squared_error(pred, y):
    return mean_squared_error(y, pred)


def sk_mean_absolute_error(pred, y):
    return mean_absolute_error(y, pred)


def sk_r2_score(pred, y):
    return r2_score(y, pred)


def sk_rbf_kernel(a, b):
    return np.sum(rbf_kernel(a, b, gamma=0.3) * b[0, 0])


def sk_linear_kernel(a, b):
    return np.sum(np.sin(linear_kernel(a, b)))


def sk_polynomial_kernel(a, b):
    return np.sum(polynomial_kernel(a, b, degree=2, gamma=0.5, coef0=1.0))


def sk_sigmoid_kernel(a, b):
    return np.sum(sigmoid_kernel(a, b, gamma=0.2, coef0=0.1))


def sk_cosine_similarity(a, b):
    return np.sum(cosine_similarity(a, b) ** 2)


def sk_euclidean_distances(a, b):
    return np.sum(euclidean_distances(a, b))


def sk_normalize(a, b):
    return np.sum(normalize(a) * b[:1])


def sk_softmax(a):
    # A copy changed in place, `np.exp(X, out=np.asarray(X))` writing into it.
    return np.sum(softmax(a) ** 2)


def array_api_user(x):
    xp, _ = get_namespace(x)
    return xp.sum(xp.exp(x) * x, axis=0)


CASES = [
    (scipy_rosen, (np.array([0.3, 0.7, 1.2, -0.4]),)),
    (sk_squared_loss, (np.array([0.3, 0.7, 1.2]), np.array([0.1, 0.9, 1.0]))),
    (sk_log_loss, (PROBS, LABELS)),
    (sk_binary_log_loss, (PROBS, LABELS)),
    (sk_squared_norm, (np.array([0.3, -0.7, 1.2]),)),
    (sk_row_norms, (X,)),
    (sk_fast_logdet, (SPD,)),
    (sk_safe_sparse_dot, (np.array([0.5, -0.2, 0.3]), X, Y)),
    (sk_huber, (np.array([0.5, -0.2, 0.1, 0.3, 1.0]), X, Y)),
    (array_api_user, (np.array([0.3, -0.7, 1.2]),)),
    (scipy_rosen_der, (np.array([0.3, 0.7, 1.2]),)),
    (nmf_kullback_leibler, (NMF_W, NMF_X, NMF_H)),
    (nmf_frobenius, (NMF_W, NMF_X, NMF_H)),
    (nmf_itakura_saito, (NMF_W, NMF_X, NMF_H)),
    (gmm_log_prob_full, (MEANS, X[:, :2], PRECISIONS)),
    (gmm_log_prob_diag, (MEANS, X[:, :2], np.full((2, 2), 1.1))),
    (gmm_log_det, (PRECISIONS,)),
    (sk_mean_squared_error, (Y + 0.3, Y)),
    (sk_mean_absolute_error, (Y + np.linspace(0.2, 0.9, Y.size), Y)),
    (sk_r2_score, (Y + 0.3, Y)),
    (sk_rbf_kernel, (X, X[:4] + 0.1)),
    (sk_linear_kernel, (X, X[:4] + 0.1)),
    (sk_polynomial_kernel, (X, X[:4] + 0.1)),
    (sk_sigmoid_kernel, (X, X[:4] + 0.1)),
    (sk_cosine_similarity, (X, X[:4] + 0.1)),
    (sk_euclidean_distances, (X, X[:4] + 0.1)),
    (sk_normalize, (X, X[:4] + 0.1)),
    (sk_softmax, (X,)),
]


@pytest.mark.parametrize("optimized", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("f, args", CASES, ids=[f.__name__ for f, _ in CASES])
def test_gradient_through_installed_package(f, args, optimized):
    got = tangent.grad(f, optimized=optimized)(*args)
    assert_close(got, numeric_grad(f, args), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f, args", CASES, ids=[f.__name__ for f, _ in CASES])
def test_jvp_through_installed_package(f, args):
    x = np.asarray(args[0], dtype=float)
    direction = np.linspace(0.3, -0.5, x.size).reshape(x.shape)
    got = tangent.jvp(f)(*args, direction)
    eps = 1e-6
    up = f(x + eps * direction, *args[1:])
    down = f(x - eps * direction, *args[1:])
    assert np.allclose(got, (up - down) / (2 * eps), rtol=1e-5, atol=1e-6)


def test_rosenbrock_matches_scipys_own_gradient_and_hessian_vector_product():
    x = np.array([0.3, 0.7, 1.2, -0.4])
    assert_close(tangent.grad(scipy_rosen)(x), rosen_der(x), rtol=1e-10, atol=1e-10)
    from scipy.optimize import rosen_hess_prod

    v = np.array([1.0, -0.5, 0.25, 2.0])
    assert_close(tangent.hvp(scipy_rosen)(x, v), rosen_hess_prod(x, v), rtol=1e-8, atol=1e-8)


def test_huber_matches_scikit_learns_hand_written_gradient():
    w = np.array([0.5, -0.2, 0.1, 0.3, 1.0])
    _, shipped = _huber_loss_and_gradient(w, X, Y, 1.35, 0.1, np.ones(X.shape[0]))
    assert_close(tangent.grad(sk_huber)(w, X, Y), shipped, rtol=1e-8, atol=1e-10)


def test_a_never_taken_sparse_branch_raises_only_when_it_runs():
    sparse = pytest.importorskip("scipy.sparse")
    w = np.array([0.5, -0.2, 0.3])
    dense = tangent.grad(sk_row_norms)(X)
    assert np.all(np.isfinite(dense))
    with pytest.raises(tangent.TangentError) as info:
        tangent.grad(sk_row_norms)(sparse.csr_matrix(X))
    text = str(info.value)
    assert "this branch ran" in text
    assert "extmath.py" in text
    del w


def test_the_engine_does_not_copy_installed_code_into_site_packages():
    import os

    root = os.path.dirname(sklearn.__file__)
    tangent.grad(sk_squared_norm)(np.array([1.0, 2.0]))
    for _, dirs, files in os.walk(root):
        assert "__grad__.py" not in files
        assert not any(name.startswith("__grad__") for name in files)


HOOKED = """
from sklearn.neural_network._base import log_loss, squared_loss
from sklearn.utils.extmath import row_norms, squared_norm
from scipy.optimize import rosen


def sk_squared_loss(pred, y):
    return squared_loss(y, pred)


def sk_log_loss(prob, y):
    return log_loss(y, prob)


def sk_row_norms(a):
    return row_norms(a, squared=True).sum()


def sk_squared_norm(w):
    return squared_norm(w)


def scipy_rosen(x):
    return rosen(x)
"""


def test_the_import_hook_follows_installed_packages_too(tmp_path, monkeypatch):
    """`from <module>.__grad__ import d<f>`: the source alone leaves the package calls to
    recipes (none: `tangent build` skips them); the hook's derivatives are `tangent.grad`'s."""
    import importlib

    (tmp_path / "hooked_sk.py").write_text(HOOKED)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("hooked_sk")
    gradients = importlib.import_module("hooked_sk.__grad__")
    cases = {
        "sk_squared_loss": (Y + 0.1, Y),
        "sk_log_loss": (PROBS, LABELS),
        "sk_row_norms": (X,),
        "sk_squared_norm": (Y,),
        "scipy_rosen": (np.array([0.3, 0.7, 1.2]),),
    }
    for name, args in cases.items():
        assert name in gradients.__tangent_skipped__, name
        f = getattr(module, name)
        got = getattr(gradients, f"d{name}")(*args)
        assert_close(got, numeric_grad(f, args), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "f, args",
    [
        (sk_mean_squared_error, (Y + 0.3, Y)),
        (sk_linear_kernel, (X, X[:4] + 0.1)),
        (sk_polynomial_kernel, (X, X[:4] + 0.1)),
        (sk_cosine_similarity, (X, X[:4] + 0.1)),
    ],
    ids=["mean_squared_error", "linear_kernel", "polynomial_kernel", "cosine_similarity"],
)
def test_hessian_vector_product_through_installed_package(f, args):
    x = args[0]
    v = np.linspace(0.4, -0.6, x.size).reshape(x.shape)
    got = tangent.hvp(f)(*args, v)
    grad = tangent.grad(f)
    eps = 1e-5
    expected = (grad(x + eps * v, *args[1:]) - grad(x - eps * v, *args[1:])) / (2 * eps)
    assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_a_validator_changing_a_list_it_converted_leaves_arrays_alone():
    """check_array may change in place only what it made (a copy); the caller's array is
    checked unchanged after each call, and the derivative gives it back as it was."""
    pred = Y + 0.3
    before = pred.copy()
    tangent.grad(sk_mean_squared_error)(pred, Y)
    assert np.array_equal(pred, before)
