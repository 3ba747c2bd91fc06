#!/usr/bin/env python3
"""Runtime of generated gradients: Tangent against a hand-written gradient, autograd and JAX.

    .venv/bin/python benches/runtime/run.py                  # full run (about 2 minutes)
    .venv/bin/python benches/runtime/run.py --quick          # smoke run: 5 rounds, short timings
    .venv/bin/python benches/runtime/run.py --only logistic,rnn --out /tmp/rt

Workloads and their hand-written gradients are in workloads.py. Contenders, per workload:

  forward                the loss alone (NumPy)
  hand-written           the hand-written NumPy gradient: every ratio divides by its time
  tangent                tangent.grad(loss, wrt), optimized=True
  tangent (unoptimized)  the same with optimized=False
  autograd               autograd.grad of the same code with np = autograd.numpy
  jax eager              jax.grad of the same code with np = jax.numpy (float64)
  jax jit                jax.jit(jax.grad(...)); Python loops are unrolled at trace time

autograd and JAX are optional: a contender that cannot be imported is skipped with a note.
Before timing, every gradient is checked against the hand-written one (np.allclose, rtol 1e-6);
a mismatch stops the run. Timing: interleaved rounds (each round times every contender once,
in a shuffled order; each measurement repeats the call enough times to take >= 20 ms, with the
garbage collector off as in timeit); medians over the rounds, per call. BLAS, OpenMP and XLA
are pinned to one thread before NumPy or JAX is imported (the script re-executes itself when
they were imported too early).

Time to first gradient (Tangent): `tangent.grad` in a fresh process with an empty
TANGENT_GENERATED_DIR (measured in subprocesses), `tangent.grad` again in the same process on a
new function object of the same code (the module executed again, as a notebook cell run again
or a reload does: Tangent's in-process cache is keyed by the code object), on the same function
object (memoized), and the first call of the generated gradient; beside JAX jit's first call
(trace + compile + run).

Writes results.json, results.md and results.png (matplotlib, optional) to --out.
"""

import os
import sys

# ---------------------------------------------------------------------------------------------
# One thread everywhere, set before NumPy or JAX is imported.

THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "BLIS_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def _pin_threads():
    missing = {k: v for k, v in THREAD_ENV.items() if os.environ.get(k) != v}
    if not missing:
        return
    os.environ.update(missing)
    if any(m in sys.modules for m in ("numpy", "jax", "scipy")):
        # Too late for this interpreter (the libraries read these at load time): start again.
        os.execv(sys.executable, [sys.executable, *sys.argv])


if __name__ == "__main__":
    _pin_threads()

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import tangent  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads as W  # noqa: E402

CONTENDERS = [
    "forward",
    "hand-written",
    "tangent",
    "tangent (unoptimized)",
    "autograd",
    "jax eager",
    "jax jit",
]
RTOL = 1e-6


# ---------------------------------------------------------------------------------------------
# Optional peers


def load_autograd(notes):
    try:
        import autograd
        import autograd.numpy as anp
    except Exception as error:  # not installed, or broken
        notes.append(f"autograd skipped: cannot import it ({type(error).__name__}: {error})")
        return None
    return autograd, anp


def load_jax(notes):
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        # Initialize the backend now, so that no workload's first call pays for it.
        jax.block_until_ready(jnp.ones(3) + 1.0)
    except Exception as error:
        notes.append(f"jax skipped: cannot import it ({type(error).__name__}: {error})")
        return None
    return jax, jnp


def version_of(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------
# Contenders


class Contender:
    """A callable taking no arguments (its inputs are bound), and how to read its result."""

    def __init__(self, name, call, gradient=None):
        self.name = name
        self.call = call  # () -> result; JAX results are waited for
        self.gradient = gradient  # () -> tuple of NumPy arrays, to check; None: not a gradient
        self.first_call_s = None  # jax jit: the first call (trace + compile + run)


def build_contenders(work, args, peers):
    wrt = work.wrt
    out = []

    def bind(fn, fn_args, to_tuple=True):
        call = lambda: fn(*fn_args)  # noqa: E731
        grad = (lambda: W.as_tuple(call(), wrt)) if to_tuple else None
        return call, grad

    call, _ = bind(work.loss, args)
    out.append(Contender("forward", call))
    out.append(Contender("hand-written", *bind(work.grad, args)))
    out.append(Contender("tangent", *bind(tangent.grad(work.loss, wrt=wrt), args)))
    unopt = tangent.grad(work.loss, wrt=wrt, optimized=False)
    out.append(Contender("tangent (unoptimized)", *bind(unopt, args)))

    if peers.get("autograd"):
        autograd, anp = peers["autograd"]
        argnum = wrt if len(wrt) > 1 else wrt[0]
        ag = autograd.grad(W.with_numpy(work.loss, anp), argnum)
        out.append(Contender("autograd", *bind(ag, args)))

    if peers.get("jax"):
        jax, jnp = peers["jax"]
        argnums = wrt if len(wrt) > 1 else wrt[0]
        jf = W.with_numpy(work.loss, jnp)
        # Inputs live on the device already; Python floats stay Python floats.
        jargs = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
        eager = jax.grad(jf, argnums=argnums)
        jitted = jax.jit(jax.grad(jf, argnums=argnums))
        for name, fn in (("jax eager", eager), ("jax jit", jitted)):
            def call(fn=fn):
                return jax.block_until_ready(fn(*jargs))

            def grad(call=call):
                return tuple(np.asarray(g) for g in W.as_tuple(call(), wrt))

            c = Contender(name, call, grad)
            if name == "jax jit":
                # The first call traces and compiles: time it before anything else calls it.
                start = time.perf_counter()
                call()
                c.first_call_s = time.perf_counter() - start
            out.append(c)
    return out


def verify(work, contenders, expected):
    """Every contender's gradient against the hand-written one; a mismatch is an error."""
    expected = [np.asarray(e, dtype=np.float64) for e in expected]
    for c in contenders:
        if c.gradient is None or c.name == "hand-written":
            continue
        got = c.gradient()
        if len(got) != len(expected):
            raise SystemExit(
                f"error: {c.name} on {work.key}: {len(got)} gradients, expected {len(expected)}"
            )
        for i, (g, e) in enumerate(zip(got, expected)):
            g = np.asarray(g, dtype=np.float64)
            if g.shape != e.shape or not np.allclose(g, e, rtol=RTOL):
                err = np.max(np.abs(g - e)) if g.shape == e.shape else f"shape {g.shape} != {e.shape}"
                raise SystemExit(
                    f"error: gradient mismatch: contender {c.name!r}, workload {work.key!r}, "
                    f"parameter {work.wrt[i]}: max abs difference {err} (rtol {RTOL})"
                )


# ---------------------------------------------------------------------------------------------
# Timing


def time_calls(call, number):
    """Seconds for `number` calls, with the garbage collector off (as timeit does)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            call()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def calibrate(call, target):
    """A repeat count for which one measurement takes at least `target` seconds."""
    number = 1
    while True:
        elapsed = time_calls(call, number)
        if elapsed >= target:
            return number
        # Aim 20% above the target; at least double.
        guess = number * target * 1.2 / max(elapsed, 1e-9)
        number = max(number * 2, math.ceil(guess))


def measure(contenders, rounds, target, rng):
    """Interleaved rounds; returns {name: {median_us, min_us, number, samples_us}}."""
    for c in contenders:
        c.call()  # warm up (caches, lazy imports)
    numbers = {c.name: calibrate(c.call, target) for c in contenders}
    samples = {c.name: [] for c in contenders}
    order = list(contenders)
    for _ in range(rounds):
        rng.shuffle(order)
        for c in order:
            n = numbers[c.name]
            samples[c.name].append(time_calls(c.call, n) / n * 1e6)
    return {
        name: {
            "median_us": statistics.median(s),
            "min_us": min(s),
            "max_us": max(s),
            "number": numbers[name],
            "samples_us": s,
        }
        for name, s in samples.items()
    }


# ---------------------------------------------------------------------------------------------
# Time to first gradient

# Run in a fresh interpreter: import, tangent.grad, first call, then steady-state calls.
COLD_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import tangent
t2 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import workloads as W
work = W.BY_KEY[sys.argv[2]]
args = work.data(np.random.default_rng(0))
t3 = time.perf_counter()
df = tangent.grad(work.loss, wrt=work.wrt)
t4 = time.perf_counter()
df(*args)
t5 = time.perf_counter()
steady = []
for _ in range(5):
    s = time.perf_counter(); df(*args); steady.append(time.perf_counter() - s)
print(json.dumps({"import_numpy_s": t1 - t0, "import_tangent_s": t2 - t1,
                  "grad_cold_s": t4 - t3, "first_call_s": t5 - t4,
                  "steady_call_s": sorted(steady)[len(steady) // 2]}))
"""


def cold_run(work):
    with tempfile.TemporaryDirectory(prefix="tangent-bench-") as empty:
        env = dict(os.environ, TANGENT_GENERATED_DIR=empty)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", COLD_SCRIPT, str(HERE), work.key],
            env=env, capture_output=True, text=True, check=False,
        )
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: cold tangent.grad of {work.key} failed:\n{proc.stderr}")
    run = json.loads(proc.stdout.strip().splitlines()[-1])
    run["process_wall_s"] = wall
    return run


def cold_generation(work, repeats):
    """Medians over `repeats` fresh processes, each with an empty TANGENT_GENERATED_DIR."""
    runs = [cold_run(work) for _ in range(repeats)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]} | {"repeats": repeats}


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def warm_generation(work, repeats, scratch):
    """tangent.grad in this process (which has differentiated `work.loss` already): on the same
    function object, on a new function object of the same code (the module re-executed), and
    on an edited module (a comment added: the engine runs again, already loaded)."""
    tangent.grad(work.loss, wrt=work.wrt)  # make sure the caches are populated
    source = Path(W.__file__).read_text()
    same, fresh, edited = [], [], []
    for i in range(repeats):
        path = Path(scratch) / f"_workloads_edit_{work.key}_{i}.py"
        path.write_text(source + f"\n# edit {i}\n")
        loss = getattr(load_module(path.stem, path), work.loss.__name__)
        start = time.perf_counter()
        tangent.grad(loss, wrt=work.wrt)
        edited.append(time.perf_counter() - start)

        start = time.perf_counter()
        tangent.grad(work.loss, wrt=work.wrt)
        same.append(time.perf_counter() - start)
        # Execute workloads.py again: new function objects, new (equal) code objects.
        loss = getattr(load_module(f"_workloads_again_{i}", W.__file__), work.loss.__name__)
        start = time.perf_counter()
        tangent.grad(loss, wrt=work.wrt)
        fresh.append(time.perf_counter() - start)
    return {
        "grad_same_function_s": statistics.median(same),
        "grad_new_function_same_code_s": statistics.median(fresh),
        "grad_edited_module_s": statistics.median(edited),
    }


# ---------------------------------------------------------------------------------------------
# Reports


def fmt_us(us):
    if us >= 1e5:
        return f"{us / 1e3:,.0f} ms"
    if us >= 100:
        return f"{us:,.0f} µs"
    return f"{us:.1f} µs"


def fmt_s(s):
    if s is None:
        return "—"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def markdown(results):
    lines = ["# Runtime benchmark", ""]
    m = results["machine"]
    lines.append(
        f"Python {m['python']}, NumPy {m['numpy']}, autograd {m['autograd'] or '—'}, "
        f"JAX {m['jax'] or '—'} (jaxlib {m['jaxlib'] or '—'}), Tangent {m['tangent']}; "
        f"{m['cpu_count']} CPUs ({m['affinity']} usable), one thread per library; "
        f"{results['settings']['rounds']} interleaved rounds, >= "
        f"{results['settings']['target_ms']:g} ms per measurement."
    )
    lines += [
        "",
        (
            "Each cell: time / hand-written time (median time per call). autograd and JAX run "
            "the same loss functions with `np` bound to `autograd.numpy` / `jax.numpy`; "
            "`jax jit` unrolls the Python loops of the RNN and the scalar loop at trace time. "
            "Generation times depend on how the engine was built (`maturin develop` builds the "
            "debug profile)."
        ),
        "",
    ]
    names = [c for c in CONTENDERS if any(c in w["timings"] for w in results["workloads"])]
    lines.append("| workload | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for w in results["workloads"]:
        base = w["timings"]["hand-written"]["median_us"]
        cells = []
        for name in names:
            t = w["timings"].get(name)
            cells.append("—" if t is None else f"{t['median_us'] / base:.2f}x ({fmt_us(t['median_us'])})")
        lines.append(f"| {w['title']} | " + " | ".join(cells) + " |")
    lines += ["", "## Time to first gradient", ""]
    lines.append(
        "Tangent, in a fresh process with an empty TANGENT_GENERATED_DIR: `import tangent`, the "
        "first `tangent.grad` (the engine's first generation, with its one-time set-up), the "
        "first and a steady-state call of the generated gradient. In a process "
        "that has differentiated the loss already: `tangent.grad` of an edited module (the engine "
        "runs again), of a new function object of the same code (the module executed again: "
        "cached), of the same function object (memoized). JAX jit: the first call (trace + "
        "compile + run) and the compile time, first call - steady-state call."
    )
    lines.append("")
    lines.append(
        "| workload | import tangent | tangent.grad cold | tangent first call "
        "| tangent steady call | tangent.grad, edited module | tangent.grad, same code "
        "| tangent.grad, same function | jax jit first call | jax jit compile |"
    )
    lines.append("|---|" + "---:|" * 9)
    for w in results["workloads"]:
        f = w["first_gradient"]
        cold, warm = f["cold"], f["warm"]
        lines.append(
            f"| {w['title']} | {fmt_s(cold['import_tangent_s'])} "
            f"| {fmt_s(cold['grad_cold_s'])} "
            f"| {fmt_s(cold['first_call_s'])} | {fmt_s(cold['steady_call_s'])} "
            f"| {fmt_s(warm['grad_edited_module_s'])} "
            f"| {fmt_s(warm['grad_new_function_same_code_s'])} "
            f"| {fmt_s(warm['grad_same_function_s'])} "
            f"| {fmt_s(f.get('jax_jit_first_call_s'))} | {fmt_s(f.get('jax_jit_compile_s'))} |"
        )
    if results["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    lines += ["", "## Workloads", ""]
    lines += [f"- **{w['title']}** (`{w['key']}`): {w['description']}" for w in results["workloads"]]
    return "\n".join(lines) + "\n"


def chart(results, path, notes):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as error:
        notes.append(f"results.png skipped: cannot import matplotlib ({type(error).__name__})")
        path.unlink(missing_ok=True)  # not a chart of an older run
        return False
    names = [
        c for c in CONTENDERS
        if c != "hand-written" and any(c in w["timings"] for w in results["workloads"])
    ]
    rows = results["workloads"]
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(8, 2.2 * len(rows)), 5))
    for i, name in enumerate(names):
        xs, ys = [], []
        for j, w in enumerate(rows):
            t = w["timings"].get(name)
            if t is not None:
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(t["median_us"] / w["timings"]["hand-written"]["median_us"])
        ax.bar(xs, ys, width, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([w["title"] for w in rows], fontsize=9)
    ax.set_ylabel("time / hand-written gradient (log)")
    ax.set_title("Gradient runtime relative to a hand-written NumPy gradient (median)")
    ax.legend(fontsize=8, ncol=3)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def machine_info():
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]["name"]
    except Exception:
        blas = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "blas": blas,
        "tangent": tangent.__version__,
        "autograd": version_of("autograd"),
        "jax": version_of("jax"),
        "jaxlib": version_of("jaxlib"),
        "matplotlib": version_of("matplotlib"),
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV},
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds, 5 ms per measurement")
    parser.add_argument("--out", default=str(HERE / "results"), help="output directory")
    parser.add_argument("--only", default="", help="comma-separated workload keys: " + ",".join(W.BY_KEY))
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 15, 5 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(argv)

    rounds = opts.rounds or (5 if opts.quick else 15)
    target = 0.005 if opts.quick else 0.020
    cold_repeats = 1 if opts.quick else 5
    warm_repeats = 3 if opts.quick else 10
    keys = [k for k in opts.only.split(",") if k] or list(W.BY_KEY)
    unknown = [k for k in keys if k not in W.BY_KEY]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(W.BY_KEY)}")

    notes = []
    peers = {"autograd": load_autograd(notes), "jax": load_jax(notes)}
    machine = machine_info()
    rng = random.Random(opts.seed)
    results = {
        "machine": machine,
        "settings": {"rounds": rounds, "target_ms": target * 1e3, "quick": opts.quick,
                     "cold_repeats": cold_repeats, "rtol": RTOL},
        "notes": notes,
        "workloads": [],
    }
    # Edited copies of workloads.py, and the files tangent.grad writes in this process.
    scratch_dir = tempfile.TemporaryDirectory(prefix="tangent-bench-")
    scratch = scratch_dir.name
    os.environ["TANGENT_GENERATED_DIR"] = os.path.join(scratch, "generated")
    for key in keys:
        work = W.BY_KEY[key]
        print(f"==> {key}: {work.description}", file=sys.stderr, flush=True)
        args = work.data(np.random.default_rng(opts.seed))
        expected = W.as_tuple(work.grad(*args), work.wrt)
        contenders = build_contenders(work, args, peers)
        verify(work, contenders, expected)
        timings = measure(contenders, rounds, target, rng)
        first = {
            "cold": cold_generation(work, cold_repeats),
            "warm": warm_generation(work, warm_repeats, scratch),
        }
        for c in contenders:
            if c.first_call_s is not None:
                first["jax_jit_first_call_s"] = c.first_call_s
                first["jax_jit_compile_s"] = c.first_call_s - timings[c.name]["median_us"] * 1e-6
        base = timings["hand-written"]["median_us"]
        for t in timings.values():
            t["ratio"] = t["median_us"] / base
        results["workloads"].append({
            "key": key, "title": work.title, "description": work.description, "wrt": list(work.wrt),
            "timings": timings, "first_gradient": first,
        })
        summary = ", ".join(f"{n} {t['ratio']:.2f}x" for n, t in timings.items())
        print(f"    {summary}", file=sys.stderr, flush=True)

    scratch_dir.cleanup()
    machine["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    png = chart(results, out / "results.png", notes)
    (out / "results.md").write_text(markdown(results))
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    print(f"wrote {out}/results.json, results.md" + (", results.png" if png else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
