"""The runtime benchmark's baselines (benches/runtime): each hand-written gradient against
central finite differences, Tangent against the hand-written gradient, and a smoke run of
`run.py --quick` for one workload."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tangent
from gradcheck import numeric_grad

BENCH = Path(__file__).resolve().parents[2] / "benches" / "runtime"


def _load_workloads():
    spec = importlib.util.spec_from_file_location("runtime_bench_workloads", BENCH / "workloads.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


W = _load_workloads()
KEYS = [w.key for w in W.WORKLOADS]

# Parameters with more entries than this are checked along random directions, not entry by
# entry (W1 of the MLP has 100,352).
FULL_FD_MAX = 2000


def _directional(f, args, i, v, eps=1e-6):
    plus, minus = list(args), list(args)
    plus[i] = args[i] + eps * v
    minus[i] = args[i] - eps * v
    return (f(*plus) - f(*minus)) / (2 * eps)


@pytest.mark.parametrize("key", KEYS)
def test_hand_written_gradient_matches_finite_differences(key):
    work = W.BY_KEY[key]
    args = work.data(np.random.default_rng(0))
    hand = W.as_tuple(work.grad(*args), work.wrt)
    rng = np.random.default_rng(1)
    for i, g in zip(work.wrt, hand):
        assert np.shape(g) == np.shape(args[i])
        if np.size(args[i]) <= FULL_FD_MAX:
            expected = numeric_grad(work.loss, args, wrt=(i,))
            np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-7, err_msg=f"{key}, parameter {i}")
        else:
            for _ in range(3):
                v = rng.standard_normal(np.shape(args[i]))
                expected = _directional(work.loss, args, i, v)
                np.testing.assert_allclose(np.sum(g * v), expected, rtol=1e-5, err_msg=f"{key}, parameter {i}")


@pytest.mark.parametrize("optimized", [True, False])
@pytest.mark.parametrize("key", KEYS)
def test_tangent_matches_hand_written_gradient(key, optimized):
    work = W.BY_KEY[key]
    args = work.data(np.random.default_rng(0))
    hand = W.as_tuple(work.grad(*args), work.wrt)
    got = W.as_tuple(tangent.grad(work.loss, wrt=work.wrt, optimized=optimized)(*args), work.wrt)
    assert len(got) == len(hand)
    for g, h in zip(got, hand):
        np.testing.assert_allclose(g, h, rtol=1e-6, atol=1e-12)


def test_quick_run_writes_results(tmp_path):
    # About 3 s with JAX installed (most of it importing JAX and compiling one function).
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--rounds", "2", "--only", "logistic",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    [row] = results["workloads"]
    assert row["key"] == "logistic"
    for name in ("forward", "hand-written", "tangent", "tangent (unoptimized)"):
        assert row["timings"][name]["median_us"] > 0
    assert row["timings"]["hand-written"]["ratio"] == 1.0
    assert row["first_gradient"]["cold"]["grad_cold_s"] > 0
    assert "| logistic regression |" in (tmp_path / "results.md").read_text()
