#!/usr/bin/env python3
"""Checkpointing: peak memory and run time of an RNN gradient as the sequence grows.

    .venv/bin/python benches/runtime/checkpoint.py            # T = 625 ... 10,000 (about 1 minute)
    .venv/bin/python benches/runtime/checkpoint.py --quick    # T = 100 ... 1,600, fewer rounds
    .venv/bin/python benches/runtime/checkpoint.py --out /tmp/ckpt

The workload is a tanh RNN (hidden 32, input 8, float64) over T steps, the gradient taken
w.r.t. both weight matrices, in two versions of the same code: the loop as written (every
step's values taped) and the loop inside `with tangent.checkpoint():` (the hidden state kept
every ceil(sqrt(T)) steps, each segment run again before its backward pass). Both gradients are
checked to agree (rtol 1e-10) before anything is measured.

Peak memory: tracemalloc's peak (NumPy reports its array buffers to it) during one gradient
call, minus what was allocated before the call: what the gradient itself holds at its worst.
Run time: median over interleaved rounds of one gradient call (garbage collector off).
Expected: the taped peak grows linearly in T, the checkpointed one as sqrt(T); the
checkpointed run time is the taped one plus one more forward pass (a constant factor,
below 2).

Writes checkpoint.json and checkpoint.md to --out (default benches/runtime/results).
"""

import argparse
import gc
import json
import math
import os
import pathlib
import statistics
import sys
import tempfile
import time
import tracemalloc

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "pyhooks" / "python"))

import tangent  # noqa: E402

HIDDEN, INPUT = 32, 8

SOURCE = '''
import numpy as np
import tangent


def rnn_taped(Wx, Wh, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(np.dot(Wx, xs[t]) + np.dot(Wh, h))
    return np.sum(h * h)


def rnn_checkpointed(Wx, Wh, xs, h0):
    h = h0
    with tangent.checkpoint():
        for t in range(xs.shape[0]):
            h = np.tanh(np.dot(Wx, xs[t]) + np.dot(Wh, h))
    return np.sum(h * h)


def rnn_levels_2(Wx, Wh, xs, h0):
    h = h0
    with tangent.checkpoint(levels=2):
        for t in range(xs.shape[0]):
            h = np.tanh(np.dot(Wx, xs[t]) + np.dot(Wh, h))
    return np.sum(h * h)


def rnn_levels_3(Wx, Wh, xs, h0):
    h = h0
    with tangent.checkpoint(levels=3):
        for t in range(xs.shape[0]):
            h = np.tanh(np.dot(Wx, xs[t]) + np.dot(Wh, h))
    return np.sum(h * h)
'''


def load_workload(directory):
    """The two losses, from a real file (Tangent reads functions' source)."""
    path = pathlib.Path(directory) / "rnn_checkpoint_bench.py"
    path.write_text(SOURCE)
    sys.path.insert(0, str(directory))
    import rnn_checkpoint_bench

    return rnn_checkpoint_bench


def arguments(steps, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((HIDDEN, INPUT)) * 0.3,
        rng.standard_normal((HIDDEN, HIDDEN)) * (0.9 / math.sqrt(HIDDEN)),
        rng.standard_normal((steps, INPUT)),
        rng.standard_normal(HIDDEN) * 0.1,
    )


def peak_bytes(grad, args):
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    grad(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - before


def median_seconds(grads, args, rounds):
    times = {name: [] for name in grads}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, grad in grads.items():
                start = time.perf_counter()
                grad(*args)
                times[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="T = 100 ... 1,600 and 3 rounds")
    parser.add_argument("--out", default=str(HERE / "results"))
    options = parser.parse_args()
    out = pathlib.Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    steps_list = [100, 400, 1600] if options.quick else [625, 2500, 10000]
    rounds = 3 if options.quick else 7

    module = load_workload(tempfile.mkdtemp(prefix="tangent-checkpoint-bench-"))
    grads = {
        "taped": tangent.grad(module.rnn_taped, wrt=(0, 1)),
        "checkpointed": tangent.grad(module.rnn_checkpointed, wrt=(0, 1)),
        "levels=2": tangent.grad(module.rnn_levels_2, wrt=(0, 1)),
        "levels=3": tangent.grad(module.rnn_levels_3, wrt=(0, 1)),
    }
    rows = []
    for steps in steps_list:
        args = arguments(steps)
        taped = grads["taped"](*args)
        for name, grad in grads.items():
            for a, b in zip(taped, grad(*args)):
                if not np.allclose(a, b, rtol=1e-10, atol=1e-12):
                    sys.exit(f"T={steps}: the {name} gradient differs from the taped one")
        memory = {name: peak_bytes(g, args) for name, g in grads.items()}
        seconds = median_seconds(grads, args, rounds)
        rows.append({
            "steps": steps,
            "segment": math.isqrt(steps - 1) + 1,
            "peak_bytes": memory,
            "seconds": seconds,
        })
        print(f"T={steps:>6}: " + "; ".join(
            f"{name} {memory[name] / 1e6:.2f} MB {seconds[name] * 1e3:.1f} ms" for name in grads))

    (out / "checkpoint.json").write_text(json.dumps({"hidden": HIDDEN, "input": INPUT, "rows": rows}, indent=2) + "\n")
    lines = [
        f"RNN (hidden {HIDDEN}, input {INPUT}), gradient w.r.t. both weight matrices; peak memory "
        "held by one gradient call (tracemalloc) and median time per call (and its ratio to the "
        "taped gradient's). `checkpointed`: `with tangent.checkpoint():` (sqrt(T) segments); "
        "`levels=n`: segments of segments, n levels deep.",
        "",
        "| T | " + " | ".join(f"{name}" for name in grads) + " |",
        "|---|" + "---|" * len(grads),
    ]
    for r in rows:
        m, s = r["peak_bytes"], r["seconds"]
        cells = [
            f"{m[name] / 1e6:.2f} MB, {s[name] * 1e3:.1f} ms" + ("" if name == "taped" else f" ({s[name] / s['taped']:.2f}x)")
            for name in grads
        ]
        lines.append(f"| {r['steps']:,} | " + " | ".join(cells) + " |")
    first, last = rows[0], rows[-1]
    growth = last["steps"] / first["steps"]
    lines += [
        "",
        f"T grows {growth:.0f}x: the taped peak grows "
        f"{last['peak_bytes']['taped'] / first['peak_bytes']['taped']:.1f}x, the checkpointed one "
        f"{last['peak_bytes']['checkpointed'] / first['peak_bytes']['checkpointed']:.1f}x "
        f"(sqrt: {math.sqrt(growth):.1f}x), with levels=2 "
        f"{last['peak_bytes']['levels=2'] / first['peak_bytes']['levels=2']:.1f}x, with levels=3 "
        f"{last['peak_bytes']['levels=3'] / first['peak_bytes']['levels=3']:.1f}x.",
    ]
    (out / "checkpoint.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
