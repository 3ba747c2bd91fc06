"""Notebooks, in a real Jupyter kernel (ipykernel, driven by nbclient): imports, helpers
and losses in separate cells, helpers and losses defined again in later cells, closures made
in one cell and used in another, a global data array bound again. Each check cell compares
Tangent's gradients, JVPs and HVPs with central finite differences inside the kernel."""

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is installed by scripts/test.sh")
nbclient = pytest.importorskip("nbclient", reason="nbclient is installed by scripts/test.sh")
pytest.importorskip("ipykernel", reason="ipykernel is installed by scripts/test.sh")

CHECKS = '''
def fd(f, w, eps=1e-6):
    return np.array([(f(w + eps * e) - f(w - eps * e)) / (2 * eps) for e in np.eye(len(w))])

def check(f, w, label):
    g = tangent.grad(f)(w)
    assert np.allclose(g, fd(f, w), atol=1e-6), (label, g, fd(f, w))
    v = np.linspace(-1.0, 1.0, len(w))
    assert np.allclose(tangent.jvp(f)(w, v), fd(f, w) @ v, atol=1e-6), label
    dfdw = tangent.grad(f)
    numeric_hv = (dfdw(w + 1e-5 * v) - dfdw(w - 1e-5 * v)) / 2e-5
    assert np.allclose(tangent.hvp(f)(w, v), numeric_hv, atol=1e-4), label
    print("ok", label)
'''

CELLS = [
    "import numpy as np\nimport tangent",
    "from scipy.special import logsumexp as lse",
    CHECKS,
    "rng = np.random.default_rng(0)\nX = rng.normal(size=(6, 4))\ny = rng.normal(size=6)\nw = rng.normal(size=4)",
    "def helper(x):\n    return np.tanh(x) * 2.0",
    "def loss(w):\n    return np.sum((helper(X @ w) - y) ** 2) + lse(w)",
    "check(loss, w, 'cells')",
    # The helper defined again: the gradient follows the definition the name has now.
    "def helper(x):\n    return np.sin(x) * 3.0",
    "check(loss, w, 'helper redefined')",
    # Data bound again after the derivative was made: no stale copy.
    "dloss = tangent.grad(loss)\nX = 2.0 * X\nassert np.allclose(dloss(w), fd(loss, w), atol=1e-5)\nprint('ok data rebound')",
    # The loss defined again in a later cell.
    "def loss(w):\n    return np.sum(helper(X @ w) ** 2) * 0.5",
    "check(loss, w, 'loss redefined')",
    # A factory in one cell, its closure stored in a global, used by a loss in another.
    "def make_model(X, y, nonlinearity=np.tanh):\n    def log_density(w):\n        return -np.sum((nonlinearity(X @ w) - y) ** 2)\n    return log_density",
    "log_density = make_model(X, y)",
    "def objective(w):\n    return -log_density(w) + 0.1 * np.sum(w ** 2)",
    "check(objective, w, 'factory closure')\ncheck(lambda p: -log_density(p), w, 'lambda')",
    "act = np.tanh\ndef net(w):\n    return np.sum(act(X @ w) ** 2)\ncheck(net, w, 'ufunc alias')",
]


def test_a_notebook_with_imports_helpers_and_losses_in_separate_cells():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3", allow_errors=False)
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"a notebook cell failed:\n{error}")
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    for label in ("cells", "helper redefined", "data rebound", "loss redefined", "factory closure", "lambda", "ufunc alias"):
        assert f"ok {label}" in printed, printed
