"""The five workloads of the runtime benchmark (see run.py).

Each workload has a loss written in plain NumPy the way a user would write it (Tangent reads
its source), a hand-written NumPy gradient (the baseline every ratio divides by), its inputs
and the positions of the parameters it is differentiated with respect to.

The autograd and JAX contenders run the *same* loss functions: `with_numpy(loss, module)`
rebinds the name `np` in the function's globals to `autograd.numpy` or `jax.numpy`, so the
text of the code they differentiate is exactly the text Tangent reads.

Workloads are plain module-level functions (not lambdas or closures) because Tangent needs
their source; everything is float64.
"""

import types
from dataclasses import dataclass, field

import numpy as np

# ---------------------------------------------------------------------------------------------
# 1. Logistic regression: mean log-loss of labels y in {0, 1}, gradient w.r.t. w.


def logistic_loss(w, X, y):
    logits = np.dot(X, w)
    # log(1 + exp(-z)) for y = 1 and log(1 + exp(z)) for y = 0.
    signs = 1.0 - 2.0 * y
    return np.mean(np.log1p(np.exp(signs * logits)))


def logistic_grad(w, X, y):
    signs = 1.0 - 2.0 * y
    z = signs * (X @ w)
    # d/dz log1p(exp(z)) = sigmoid(z) = 1 / (1 + exp(-z)).
    dz = signs / (1.0 + np.exp(-z)) / X.shape[0]
    return X.T @ dz


def logistic_data(rng):
    X = rng.standard_normal((256, 32))
    y = (rng.random(256) > 0.5).astype(np.float64)
    w = 0.1 * rng.standard_normal(32)
    return (w, X, y)


# ---------------------------------------------------------------------------------------------
# 2. Two-layer tanh MLP with a softmax cross-entropy loss, gradients of W1, b1, W2, b2.


def mlp_loss(W1, b1, W2, b2, X, onehot):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(np.sum(onehot * log_probs, axis=1))


def mlp_grad(W1, b1, W2, b2, X, onehot):
    n = X.shape[0]
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    e = np.exp(shifted)
    probs = e / np.sum(e, axis=1, keepdims=True)
    # d loss / d logits = (softmax * rowsum(onehot) - onehot) / n; rows of onehot sum to 1
    # for a real one-hot matrix, but the general form costs one extra reduction only.
    dlogits = (probs * np.sum(onehot, axis=1, keepdims=True) - onehot) / n
    dW2 = h.T @ dlogits
    db2 = np.sum(dlogits, axis=0)
    dpre = (dlogits @ W2.T) * (1.0 - h * h)
    dW1 = X.T @ dpre
    db1 = np.sum(dpre, axis=0)
    return (dW1, db1, dW2, db2)


def mlp_data(rng):
    W1 = 0.1 * rng.standard_normal((784, 128))
    b1 = 0.1 * rng.standard_normal(128)
    W2 = 0.1 * rng.standard_normal((128, 10))
    b2 = 0.1 * rng.standard_normal(10)
    X = rng.standard_normal((64, 784))
    onehot = np.eye(10)[rng.integers(0, 10, 64)]
    return (W1, b1, W2, b2, X, onehot)


# ---------------------------------------------------------------------------------------------
# 3. Tanh RNN, T = 50 steps in a Python loop, gradients of W (16x16) and U (16x8).


def rnn_loss(W, U, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(np.dot(W, h) + np.dot(U, xs[t]))
    return np.sum(h * h)


def rnn_grad(W, U, xs, h0):
    # Forward pass, keeping every hidden state.
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
    # Backward pass through time.
    dW = np.zeros_like(W)
    dU = np.zeros_like(U)
    dh = 2.0 * hs[-1]
    for t in range(xs.shape[0] - 1, -1, -1):
        da = dh * (1.0 - hs[t + 1] * hs[t + 1])
        dW += np.outer(da, hs[t])
        dU += np.outer(da, xs[t])
        dh = W.T @ da
    return (dW, dU)


def rnn_data(rng):
    W = 0.3 * rng.standard_normal((16, 16))
    U = 0.3 * rng.standard_normal((16, 8))
    xs = rng.standard_normal((50, 8))
    h0 = np.zeros(16)
    return (W, U, xs, h0)


# ---------------------------------------------------------------------------------------------
# 4. Scalar Python loop: 1000 float updates, gradient w.r.t. the start value x.


def scalar_loop_loss(x, a):
    for i in range(1000):
        x = x + 0.01 * np.sin(x) * a
    return x


def scalar_loop_grad(x, a):
    # Forward: keep the iterates; backward: dx_{k+1}/dx_k = 1 + 0.01 * a * cos(x_k).
    xs = []
    for i in range(1000):
        xs.append(x)
        x = x + 0.01 * np.sin(x) * a
    g = 1.0
    for xk in reversed(xs):
        g = g * (1.0 + 0.01 * a * np.cos(xk))
    return g


def scalar_loop_data(rng):
    return (0.5, 0.1)


# ---------------------------------------------------------------------------------------------
# 5. A chain of 21 elementwise NumPy operations on arrays of 10 values, then a sum.


def chain_loss(x, y):
    a = np.sin(x)
    b = a * y
    c = b + x
    d = np.exp(-c * c)
    e = d * 3.0 - y
    f = np.tanh(e)
    g = f / (1.0 + x * x)
    h = np.cos(g) + a
    i = np.log1p(h * h)
    k = i - b
    m = np.sqrt(k * k + 1.0)
    return np.sum(m * y)


def chain_grad(x, y):
    # Forward, as in chain_loss (keeping 1 / (1 + x * x)).
    a = np.sin(x)
    b = a * y
    c = b + x
    d = np.exp(-c * c)
    f = np.tanh(d * 3.0 - y)
    r = 1.0 / (1.0 + x * x)
    g = f * r
    h = np.cos(g) + a
    k = np.log1p(h * h) - b
    m = np.sqrt(k * k + 1.0)
    # Backward, from sum(m * y).
    dk = y * k / m
    db = -dk
    dh = dk * 2.0 * h / (1.0 + h * h)
    dg = -np.sin(g) * dh
    dx = -2.0 * x * g * r * dg
    dc = -6.0 * c * d * (1.0 - f * f) * r * dg
    db = db + dc
    dx = dx + dc + (dh + db * y) * np.cos(x)
    return dx


def chain_data(rng):
    return (rng.standard_normal(10), rng.standard_normal(10))


# ---------------------------------------------------------------------------------------------
# The table


@dataclass
class Workload:
    key: str  # short name, for --only and the JSON file
    title: str  # row label in the tables
    description: str
    loss: object  # the plain NumPy loss
    grad: object  # the hand-written gradient: same arguments, same result structure
    data: object  # rng -> arguments of loss
    wrt: tuple  # parameter positions differentiated
    notes: list = field(default_factory=list)


WORKLOADS = [
    Workload(
        "logistic",
        "logistic regression",
        "Logistic regression, X 256x32, labels in {0,1}, mean log-loss; gradient w.r.t. w (32).",
        logistic_loss,
        logistic_grad,
        logistic_data,
        (0,),
    ),
    Workload(
        "mlp",
        "MLP 784-128-10",
        "2-layer tanh MLP 784-128-10 + softmax cross-entropy, batch 64; gradients of W1, b1, W2, b2.",
        mlp_loss,
        mlp_grad,
        mlp_data,
        (0, 1, 2, 3),
    ),
    Workload(
        "rnn",
        "tanh RNN, T=50",
        "tanh RNN, 50 steps in a Python for loop, hidden 16, input 8, loss = sum(h_T**2); "
        "gradients of W (16x16) and U (16x8).",
        rnn_loss,
        rnn_grad,
        rnn_data,
        (0, 1),
    ),
    Workload(
        "scalar_loop",
        "scalar loop, 1000 steps",
        "1000 Python-float updates x = x + 0.01 * np.sin(x) * a; gradient w.r.t. the start value x.",
        scalar_loop_loss,
        scalar_loop_grad,
        scalar_loop_data,
        (0,),
    ),
    Workload(
        "chain",
        "21 elementwise ops, n=10",
        "A chain of 21 elementwise NumPy operations on two arrays of 10 values, then np.sum; "
        "gradient w.r.t. x.",
        chain_loss,
        chain_grad,
        chain_data,
        (0,),
    ),
]

BY_KEY = {w.key: w for w in WORKLOADS}


def with_numpy(f, numpy_module):
    """The function `f` with the global name `np` bound to `numpy_module` (autograd.numpy,
    jax.numpy): same code object, so the same text, differentiated by another library."""
    namespace = dict(f.__globals__)
    namespace["np"] = numpy_module
    return types.FunctionType(f.__code__, namespace, f.__name__, f.__defaults__, f.__closure__)


def as_tuple(g, wrt):
    """A gradient as a tuple of arrays, one per parameter in `wrt`."""
    return tuple(g) if len(wrt) > 1 else (g,)
