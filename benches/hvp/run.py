"""How much a Hessian-vector product costs, as a multiple of one gradient evaluation.

    python3 benches/hvp/run.py

Models: the bundled logistic regression (examples/logistic.py) and a 2-layer tanh MLP with a
softmax cross-entropy loss. Medians of interleaved repetitions; BLAS pinned to one thread.
Every HVP is checked against finite differences of the gradient before it is timed.
"""

import json
import os
import pathlib
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

import tangent  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "examples"))
sys.path.insert(0, str(HERE.parent / "runtime"))

from logistic import loss as logistic_loss  # noqa: E402
from workloads import mlp_loss  # noqa: E402  (the MLP the runtime benchmark times)


def median_time(fn, args, inner):
    fn(*args)
    samples = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(inner):
            fn(*args)
        samples.append((time.perf_counter() - start) / inner)
    return float(np.median(samples))


def check(grad, hvp, args, wrt_index, v):
    eps = 1e-5
    plus = list(args)
    minus = list(args)
    plus[wrt_index] = args[wrt_index] + eps * v
    minus[wrt_index] = args[wrt_index] - eps * v
    expected = (grad(*plus) - grad(*minus)) / (2 * eps)
    got = hvp(*args, v)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def main():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 32))
    y = (rng.random(256) > 0.5).astype(float)
    w = rng.standard_normal(32)
    W1 = 0.1 * rng.standard_normal((784, 128))
    b1 = np.zeros(128)
    W2 = 0.1 * rng.standard_normal((128, 10))
    b2 = np.zeros(10)
    images = rng.standard_normal((64, 784))
    onehot = np.eye(10)[rng.integers(0, 10, 64)]
    workloads = [
        ("logistic regression, X 256x32, w.r.t. w", logistic_loss, (w, X, y), 0, 2000),
        ("2-layer tanh MLP 784-128-10, batch 64, w.r.t. W2", mlp_loss, (W1, b1, W2, b2, images, onehot), 2, 50),
    ]
    rows = []
    for name, f, args, index, inner in workloads:
        grad = tangent.grad(f, wrt=(index,))
        hvp = tangent.hvp(f, wrt=(index,))
        v = rng.standard_normal(np.shape(args[index]))
        check(grad, hvp, args, index, v)
        # Interleave the two so that drifts in machine load hit both.
        g_times, h_times = [], []
        for _ in range(3):
            g_times.append(median_time(grad, args, inner))
            h_times.append(median_time(hvp, args + (v,), inner))
        g, h = float(np.median(g_times)), float(np.median(h_times))
        rows.append({"workload": name, "gradient_s": g, "hvp_s": h, "ratio": h / g})
    print("| workload | gradient | HVP | HVP / gradient |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['gradient_s'] * 1e6:.0f} us | {r['hvp_s'] * 1e6:.0f} us | {r['ratio']:.2f}x |")
    (HERE / "results.json").write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
