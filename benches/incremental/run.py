#!/usr/bin/env python3
"""Incremental benchmark of the `tangent` CLI (and, when installed, the import hook).

    python3 benches/incremental/run.py                  # 1,000 modules x 10 functions
    python3 benches/incremental/run.py --modules 100    # quick run

Generates a synthetic NumPy-style codebase in a temporary directory, then measures with
wall-clock time:

  (a) cold `tangent build` (fresh cache, no artifacts), on all cores and pinned to one core;
  (b) warm `tangent build` (nothing changed: everything reused);
  (c) one-function edits under `tangent watch`: time from the atomic replace of the source to
      the regenerated artifact (named by the new source hash) appearing on disk;
  (d) warm import-hook overhead: `from <module>.__grad__ import d<f>` for 100 modules whose
      generated files already exist, in a fresh interpreter, minus the plain imports.

Prints a Markdown table and writes results.json next to this file. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

TARGETS = {
    "cold_fps_one_core": 2000.0,  # functions per second, one core, at least
    "warm_build_s": 1.0,  # seconds, whole codebase, at most
    "edit_ms": 50.0,  # milliseconds from save to regenerated artifact, at most
    "hook_ms_per_module": 2.0,  # milliseconds per gradient module import, at most
}

ARTIFACT_DIR = "__tangent__"


# ---------------------------------------------------------------------------------------------
# The synthetic codebase


def fmt(c: float) -> str:
    return f"{c:.6f}"


class Function:
    """One function: a template with `{K}` (the editable constant) and its current value."""

    def __init__(self, name: str, template: str, k: float):
        self.name = name
        self.template = template
        self.k = k

    def render(self) -> str:
        return self.template.replace("{K}", fmt(self.k))


def chain(rng: random.Random, var: str, n: int) -> list[str]:
    """n extra arithmetic statements updating `var` (varies the size of functions)."""
    ops = [
        lambda: f"{var} = {var} * w + {fmt(rng.uniform(0.1, 2))}",
        lambda: f"{var} = {var} - {fmt(rng.uniform(0.1, 2))} * x",
        lambda: f"{var} = {var} * {var} * {fmt(rng.uniform(0.01, 0.5))} + x",
        lambda: f"{var} = np.tanh({var}) + {fmt(rng.uniform(0.1, 2))} * w",
        lambda: f"{var} = {var} / (1.0 + w * w)",
    ]
    return [rng.choice(ops)() for _ in range(n)]


def make_function(rng: random.Random, name: str, kind: str) -> Function:
    body: list[str]
    extra = chain(rng, "t", rng.randint(0, 3))
    if kind == "arith":
        body = [
            "t = x * w + {K}",
            *extra,
            f"u = t * t - {fmt(rng.uniform(0.1, 1))} * x",
            "return np.sum(u / (1.0 + w * w))",
        ]
    elif kind == "tanh":
        body = [
            "t = np.tanh(x * {K} + w)",
            *extra,
            "return np.sum(t * w)",
        ]
    elif kind == "exp":
        body = [
            "t = np.exp(-{K} * x * x)",
            *extra,
            "return np.sum(t * w) + np.sum(x)",
        ]
    elif kind == "loop":
        body = [
            "s = 0.0",
            "t = x",
            f"for i in range({rng.randint(2, 5)}):",
            "    t = np.tanh(t * w + {K})",
            "    s = s + np.sum(t)",
            *extra,
            "return s + np.sum(t)",
        ]
    elif kind == "branch":
        body = [
            "if np.sum(w) > {K}:",
            "    t = x * w",
            "else:",
            f"    t = np.exp(x) - {fmt(rng.uniform(0.1, 1))} * w",
            *extra,
            "return np.sum(t * t)",
        ]
    elif kind == "calls":
        body = [
            "h = helper(x, w)",
            "t = h * {K} + x",
            *extra,
            "return np.sum(t) + np.sum(np.exp(h))",
        ]
    else:
        raise ValueError(kind)
    text = f"def {name}(x, w):\n" + "".join(f"    {line}\n" for line in body)
    return Function(name, text, rng.uniform(0.1, 3.0))


KINDS = ["arith", "tanh", "exp", "loop", "branch", "calls"]


class Module:
    def __init__(self, rng: random.Random, index: int, functions: int, package: str):
        self.index = index
        self.package = package
        self.stem = f"m{index:04d}"
        self.name = f"{package}.{self.stem}"
        helper = Function(
            "helper",
            "def helper(x, w):\n    return np.tanh(x * w) + {K} * x\n",
            rng.uniform(0.1, 1.0),
        )
        self.functions = [helper]
        for j in range(1, functions):
            kind = KINDS[(index + j) % len(KINDS)] if rng.random() < 0.5 else rng.choice(KINDS)
            self.functions.append(make_function(rng, f"f{j}", kind))

    def render(self) -> str:
        head = f'"""Synthetic module {self.name} (generated by benches/incremental/run.py)."""\n\n'
        head += "import numpy as np\n\n\n"
        return head + "\n\n".join(f.render() for f in self.functions)


def generate_codebase(root: Path, modules: int, functions: int, per_package: int, seed: int):
    rng = random.Random(seed)
    mods = []
    for i in range(modules):
        package = f"pkg{i // per_package:03d}"
        pdir = root / package
        if i % per_package == 0:
            pdir.mkdir(parents=True, exist_ok=True)
            (pdir / "__init__.py").write_text("")
        m = Module(rng, i, functions, package)
        (pdir / f"{m.stem}.py").write_text(m.render())
        mods.append(m)
    return mods


def source_path(root: Path, m: Module) -> Path:
    return root / m.package / f"{m.stem}.py"


def remove_artifacts(root: Path):
    for d in root.rglob(ARTIFACT_DIR):
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Helpers


def run_timed(cmd, *, cpu: int | None = None, cwd=None):
    """Runs cmd; returns (wall seconds, child cpu seconds, completed process)."""
    pre = None
    if cpu is not None:
        def pre():
            os.sched_setaffinity(0, {cpu})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=pre, cwd=cwd)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu_s, p


SUMMARY_RE = re.compile(
    r"(\d+) generated, (\d+) reused, (\d+) failed, (\d+) functions? skipped"
)


def summary(p: subprocess.CompletedProcess) -> dict:
    m = SUMMARY_RE.search(p.stdout)
    if not m:
        raise SystemExit(
            f"unexpected output of tangent (exit {p.returncode}):\n{p.stdout}\n{p.stderr}"
        )
    g, r, f, s = map(int, m.groups())
    return {"generated": g, "reused": r, "failed": f, "skipped": s}


def check_ok(p: subprocess.CompletedProcess, what: str):
    if p.returncode != 0:
        raise SystemExit(f"{what} failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")


def log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def find_venv_python(explicit: str | None) -> str | None:
    """An interpreter that can import `tangent` (the import hook lives there)."""
    candidates = [explicit] if explicit else [sys.executable, str(REPO / ".venv" / "bin" / "python")]
    for c in candidates:
        if not c or not Path(c).exists():
            continue
        p = subprocess.run(
            [c, "-c", "import tangent, _tangent_hook; print(_tangent_hook.installed())"],
            capture_output=True, text=True, cwd=tempfile.gettempdir(),
        )
        if p.returncode == 0:
            return c
    return None


def engine_hashes(python: str | None, texts: list[str]) -> list[str] | None:
    """The engine's source hash (blake3 hex) of each text, via tangent._engine; None if absent."""
    if python is None:
        return None
    code = (
        "import json, sys\n"
        "from tangent import _engine\n"
        "print(json.dumps([_engine.source_hash(t) for t in json.load(sys.stdin)]))\n"
    )
    p = subprocess.run([python, "-c", code], input=json.dumps(texts), capture_output=True,
                       text=True, cwd=tempfile.gettempdir())
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)


def machine_info(tangent: str) -> dict:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run([tangent, "--version"], capture_output=True, text=True).stdout.strip()
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                           capture_output=True, text=True).stdout.strip() != ""
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "loadavg_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "tangent_version": version,
        "tangent_binary": tangent,
        "git": git + ("-dirty" if dirty else ""),
    }


# ---------------------------------------------------------------------------------------------
# (a), (b): build


def bench_cold(tangent, src, work, reps, cpu, total_functions):
    runs = []
    for r in range(reps):
        remove_artifacts(src)
        cache = work / f"cache-cold-{'one' if cpu is not None else 'all'}-{r}"
        shutil.rmtree(cache, ignore_errors=True)
        wall, cpu_s, p = run_timed([tangent, "build", str(src), "--cache-dir", str(cache)], cpu=cpu)
        check_ok(p, "cold build")
        s = summary(p)
        runs.append({"wall_s": wall, "cpu_s": cpu_s, **s})
        log(f"  cold build ({'1 core' if cpu is not None else 'all cores'}) #{r + 1}: "
            f"{wall:.2f} s wall, {cpu_s:.2f} s cpu, {s}")
    wall = statistics.median(x["wall_s"] for x in runs)
    cpu_s = statistics.median(x["cpu_s"] for x in runs)
    return {
        "runs": runs,
        "wall_s_median": wall,
        "cpu_s_median": cpu_s,
        "functions_per_s": total_functions / wall,
        "functions_per_cpu_s": total_functions / cpu_s if cpu_s > 0 else None,
        "loadavg_after": os.getloadavg(),
    }


def bench_warm(tangent, src, cache, reps):
    runs = []
    for r in range(reps):
        wall, cpu_s, p = run_timed([tangent, "build", str(src), "--cache-dir", str(cache)])
        check_ok(p, "warm build")
        s = summary(p)
        if s["generated"]:
            log(f"  warning: warm build generated {s['generated']} modules")
        runs.append({"wall_s": wall, "cpu_s": cpu_s, **s})
    log("  warm build: " + ", ".join(f"{x['wall_s'] * 1000:.0f} ms" for x in runs))
    return {
        "runs": runs,
        "wall_s_median": statistics.median(x["wall_s"] for x in runs),
        "wall_s_min": min(x["wall_s"] for x in runs),
        "cpu_s_median": statistics.median(x["cpu_s"] for x in runs),
    }


def bench_cache_only(tangent, src, cache, reps):
    """Artifacts deleted, cache warm (e.g. a fresh checkout with a shared cache)."""
    runs = []
    for _ in range(reps):
        remove_artifacts(src)
        wall, cpu_s, p = run_timed([tangent, "build", str(src), "--cache-dir", str(cache)])
        check_ok(p, "cache-hit build")
        runs.append({"wall_s": wall, "cpu_s": cpu_s, **summary(p)})
    log("  cache-hit build (no artifacts): " + ", ".join(f"{x['wall_s'] * 1000:.0f} ms" for x in runs))
    return {"runs": runs, "wall_s_median": statistics.median(x["wall_s"] for x in runs)}


# ---------------------------------------------------------------------------------------------
# (c): watch


class Reader(threading.Thread):
    """Collects the lines of a pipe, with the time each arrived."""

    def __init__(self, pipe, name):
        super().__init__(daemon=True, name=name)
        self.pipe = pipe
        self.lines: queue.Queue = queue.Queue()
        self.all: list[tuple[float, str]] = []

    def run(self):
        for line in self.pipe:
            item = (time.perf_counter(), line.rstrip("\n"))
            self.all.append(item)
            self.lines.put(item)


REGEN_RE = re.compile(r"^regenerated (.*) -> (.*) \((\d+) ms\)$")


def bench_watch(tangent, src, cache, mods, edits, seed, hash_python, settle_s, timeout_s):
    rng = random.Random(seed + 1)
    chosen = rng.sample(mods, min(edits, len(mods)))
    # Every edit: one constant in one function body (not the helper, so only that body changes).
    plan = []
    for m in chosen:
        f = rng.choice(m.functions[1:] or m.functions)
        old = f.k
        new_k = round(old + rng.uniform(0.001, 0.5), 6)
        f.k = new_k
        plan.append((m, f, new_k, m.render()))
        f.k = old  # applied for real during the edit
    hashes = engine_hashes(hash_python, [t for *_, t in plan])
    if hashes is None:
        log("  note: tangent._engine unavailable: detecting the new artifact by its new name")

    cmd = [tangent, "watch", str(src), "--cache-dir", str(cache)]
    t_start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            bufsize=1)
    out, err = Reader(proc.stdout, "watch-stdout"), Reader(proc.stderr, "watch-stderr")
    out.start()
    err.start()
    result = {"edits": []}
    try:
        # Idle: the line printed once the initial build is done.
        deadline = time.monotonic() + 600
        ready_at = None
        while ready_at is None:
            if time.monotonic() > deadline:
                raise SystemExit("tangent watch did not become ready")
            try:
                t, line = out.lines.get(timeout=0.2)
            except queue.Empty:
                if proc.poll() is not None:
                    raise SystemExit(f"tangent watch exited: {[l for _, l in err.all]}")
                continue
            if line.startswith("watching "):
                ready_at = t
        result["initial_build_s"] = ready_at - t_start
        log(f"  watch ready after {result['initial_build_s']:.2f} s")
        time.sleep(settle_s)

        for i, (m, f, new_k, text) in enumerate(plan):
            path = source_path(src, m)
            adir = path.parent / ARTIFACT_DIR
            prefix = f"{m.stem}.__grad__."
            before = {n for n in os.listdir(adir) if n.startswith(prefix)} if adir.is_dir() else set()
            expected = adir / f"{prefix}{hashes[i][:16]}.py" if hashes else None
            tmp = path.parent / f".{path.name}.bench-{os.getpid()}.tmp"
            tmp.write_text(text)
            # Drain old output so the regenerated line belongs to this edit.
            while not out.lines.empty():
                out.lines.get_nowait()
            t0 = time.perf_counter()
            os.replace(tmp, path)
            found = None
            while True:
                now = time.perf_counter()
                if expected is not None:
                    if os.path.exists(expected):
                        found = expected
                else:
                    try:
                        new = [n for n in os.listdir(adir) if n.startswith(prefix)
                               and n.endswith(".py") and n not in before]
                    except OSError:
                        new = []
                    if new:
                        found = adir / new[0]
                if found is not None or now - t0 > timeout_s:
                    break
                time.sleep(0.001)
            latency = time.perf_counter() - t0
            f.k = new_k  # the module's state now matches the file
            # The "regenerated ... (N ms)" line: the watch's own processing time.
            internal_ms = None
            line_at = None
            t_wait = time.perf_counter() + 0.5
            while found is not None and time.perf_counter() < t_wait:
                try:
                    t, line = out.lines.get(timeout=0.05)
                except queue.Empty:
                    continue
                mm = REGEN_RE.match(line)
                if mm and Path(mm.group(2)).name == found.name:
                    internal_ms = int(mm.group(3))
                    line_at = t
                    break
            e = {
                "module": m.name,
                "function": f.name,
                "latency_ms": latency * 1000 if found is not None else None,
                "watch_reported_ms": internal_ms,
                "line_after_save_ms": (line_at - t0) * 1000 if line_at else None,
                "artifact": found.name if found is not None else None,
            }
            result["edits"].append(e)
            if found is None:
                log(f"  edit {i + 1}: {m.name}.{f.name}: no artifact after {timeout_s:.1f} s")
            else:
                log(f"  edit {i + 1}: {m.name}.{f.name}: {e['latency_ms']:.1f} ms "
                    f"(watch says {internal_ms} ms)")
            time.sleep(settle_s)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.join(timeout=2)
        err.join(timeout=2)
    result["exit_code"] = proc.returncode
    result["stopped_cleanly"] = any(line == "stopped" for _, line in out.all)
    result["stderr_tail"] = [line for _, line in err.all][-10:]
    lat = [e["latency_ms"] for e in result["edits"] if e["latency_ms"] is not None]
    rep = [e["watch_reported_ms"] for e in result["edits"] if e["watch_reported_ms"] is not None]
    result["latency_ms_median"] = statistics.median(lat) if lat else None
    result["latency_ms_max"] = max(lat) if lat else None
    result["latency_ms_min"] = min(lat) if lat else None
    result["watch_reported_ms_median"] = statistics.median(rep) if rep else None
    # Save -> artifact, minus what the watch reports for its own work: event delivery,
    # debouncing and scheduling.
    gaps = [e["latency_ms"] - e["watch_reported_ms"] for e in result["edits"]
            if e["latency_ms"] is not None and e["watch_reported_ms"] is not None]
    result["outside_processing_ms_median"] = statistics.median(gaps) if gaps else None
    result["missed"] = sum(1 for e in result["edits"] if e["latency_ms"] is None)
    return result


# ---------------------------------------------------------------------------------------------
# (d): import hook


HOOK_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import numpy  # every module imports it: not part of either measurement
pc = time.perf_counter
plain = []
grad = []
{body}
print(json.dumps({{"plain": plain, "grad": grad}}))
"""


def hook_script(root: Path, pairs: list[tuple[str, str]], with_grad: bool) -> str:
    lines = []
    for name, _ in pairs:
        lines.append(f"t = pc(); import {name}; plain.append(pc() - t)")
    if with_grad:
        for name, fn in pairs:
            lines.append(f"t = pc(); from {name}.__grad__ import d{fn}; grad.append(pc() - t)")
    return HOOK_SCRIPT.format(root=str(root), body="\n".join(lines))


def bench_hook(python, src, mods, count, reps, work):
    rng = random.Random(7)
    chosen = sorted(rng.sample(mods, min(count, len(mods))), key=lambda m: m.index)
    pairs = [(m.name, m.functions[1].name if len(m.functions) > 1 else m.functions[0].name)
             for m in chosen]
    base_env = dict(os.environ)
    for k in ("TANGENT_GENERATED_DIR", "TANGENT_NO_IMPORT_HOOK", "PYTHONDONTWRITEBYTECODE"):
        base_env.pop(k, None)
    script_grad = work / "hook_grad.py"
    script_plain = work / "hook_plain.py"
    script_grad.write_text(hook_script(src, pairs, True))
    script_plain.write_text(hook_script(src, pairs, False))

    def count_files():
        return sum(len([n for n in os.listdir(d) if ".__grad__." in n and n.endswith(".py")])
                   for d in src.rglob(ARTIFACT_DIR))

    env_pyc = base_env
    # Like PYTHONDONTWRITEBYTECODE=1 from the start: no .pyc of the tree's modules (measured
    # first: the variable stops writing .pyc files, not reading them).
    env_nopyc = dict(base_env, PYTHONDONTWRITEBYTECODE="1")
    files_before = count_files()
    # Warm-up: the first imports generate what the hook needs.
    t0 = time.perf_counter()
    p = subprocess.run([python, str(script_grad)], capture_output=True, text=True,
                       env=env_nopyc, cwd=str(work))
    warmup_s = time.perf_counter() - t0
    if p.returncode != 0:
        return {"available": False,
                "note": "warm-up import failed: " + (p.stderr.strip().splitlines() or ["?"])[-1],
                "stderr": p.stderr[-2000:]}
    files_after = count_files()
    log(f"  hook warm-up (first imports, generating): {warmup_s:.2f} s; "
        f"{files_after - files_before} generated files added beside the sources")

    def measure(env):
        res_grad, res_plain, wall_grad, wall_plain = [], [], [], []
        for _ in range(reps):
            for script, res, walls in ((script_plain, res_plain, wall_plain),
                                       (script_grad, res_grad, wall_grad)):
                t0 = time.perf_counter()
                p = subprocess.run([python, str(script)], capture_output=True, text=True,
                                   env=env, cwd=str(work))
                walls.append(time.perf_counter() - t0)
                if p.returncode != 0:
                    raise RuntimeError(p.stderr[-500:])
                res.append(json.loads(p.stdout.strip().splitlines()[-1]))
        n = len(pairs)
        med = statistics.median
        return {
            # Sum of the `from X.__grad__ import dF` statements (X already imported).
            "overhead_ms_per_module": med(sum(r["grad"]) for r in res_grad) / n * 1000,
            # The first one also imports the `tangent` package (once per process).
            "first_grad_import_ms": med(r["grad"][0] for r in res_grad) * 1000,
            "steady_overhead_ms_per_module":
                med(sum(r["grad"][1:]) / max(1, n - 1) for r in res_grad) * 1000,
            "plain_import_ms_per_module": med(sum(r["plain"]) for r in res_plain) / n * 1000,
            # Whole processes: (grad script - plain script) / n.
            "process_wall_s_plain": med(wall_plain),
            "process_wall_s_grad": med(wall_grad),
            "process_overhead_ms_per_module": (med(wall_grad) - med(wall_plain)) / n * 1000,
        }

    try:
        no_pyc = measure(env_nopyc)
        # Writes the .pyc files of plain and gradient modules.
        subprocess.run([python, str(script_grad)], capture_output=True, env=env_pyc,
                       cwd=str(work), check=True)
        with_pyc = measure(env_pyc)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        return {"available": False, "note": f"import failed: {e}"}
    result = {
        "available": True,
        "modules": len(pairs),
        "reps": reps,
        "warmup_s": warmup_s,
        "generated_files_added_by_warmup": files_after - files_before,
        "inherited_PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        **with_pyc,
        "no_bytecode": no_pyc,
    }
    for label, r in (("with .pyc", with_pyc), ("no .pyc", no_pyc)):
        log(f"  hook ({label}): {r['overhead_ms_per_module']:.2f} ms/module "
            f"(first import {r['first_grad_import_ms']:.1f} ms, then "
            f"{r['steady_overhead_ms_per_module']:.2f} ms/module); plain import "
            f"{r['plain_import_ms_per_module']:.2f} ms/module")
    return result


# ---------------------------------------------------------------------------------------------
# Report


def status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def table(results: dict) -> str:
    rows = [("Measurement", "Measured", "Target", "")]
    cfg = results["config"]
    n = cfg["total_functions"]
    c1 = results.get("cold_one_core")
    ca = results.get("cold_all_cores")
    if c1:
        rows.append((
            f"Cold build, 1 core ({n:,} functions, median of {len(c1['runs'])})",
            f"{c1['functions_per_s']:,.0f} functions/s ({c1['wall_s_median']:.2f} s wall; "
            f"{c1['functions_per_cpu_s']:,.0f} per cpu-s)",
            f">= {TARGETS['cold_fps_one_core']:,.0f} functions/s",
            status(c1["functions_per_s"] >= TARGETS["cold_fps_one_core"]),
        ))
    if ca:
        rows.append((
            f"Cold build, all {results['machine']['cpus_usable']} cores",
            f"{ca['functions_per_s']:,.0f} functions/s ({ca['wall_s_median']:.2f} s; "
            f"{ca['functions_per_cpu_s']:,.0f} per cpu-s)",
            "(for reference)", "",
        ))
    w = results.get("warm_build")
    if w:
        rows.append((
            f"Warm build, nothing changed (median of {len(w['runs'])})",
            f"{w['wall_s_median'] * 1000:,.0f} ms",
            f"< {TARGETS['warm_build_s']:.0f} s",
            status(w["wall_s_median"] < TARGETS["warm_build_s"]),
        ))
    c = results.get("cache_hit_build")
    if c:
        rows.append((
            "Build with warm cache, artifacts deleted",
            f"{c['wall_s_median'] * 1000:,.0f} ms", "(for reference)", "",
        ))
    wt = results.get("watch")
    if wt and wt.get("latency_ms_median") is not None:
        k = len(wt["edits"]) - wt["missed"]
        rows.append((
            f"One-function edit under watch ({k} edits): median",
            f"{wt['latency_ms_median']:.1f} ms (watch's own work {wt['watch_reported_ms_median']} ms, "
            f"before it {wt['outside_processing_ms_median']:.0f} ms)",
            f"<= {TARGETS['edit_ms']:.0f} ms",
            status(wt["latency_ms_median"] <= TARGETS["edit_ms"]),
        ))
        rows.append((
            "One-function edit under watch: max",
            f"{wt['latency_ms_max']:.1f} ms" + (f" ({wt['missed']} missed)" if wt["missed"] else ""),
            f"<= {TARGETS['edit_ms']:.0f} ms",
            status(wt["latency_ms_max"] <= TARGETS["edit_ms"] and not wt["missed"]),
        ))
        rows.append((
            "Watch: initial build (warm cache)",
            f"{wt['initial_build_s'] * 1000:,.0f} ms", "(for reference)", "",
        ))
    h = results.get("hook")
    if h and h.get("available"):
        rows.append((
            f"Import hook, warm, {h['modules']} modules (median of {h['reps']} interpreters)",
            f"{h['overhead_ms_per_module']:.2f} ms/module (first {h['first_grad_import_ms']:.0f} ms, "
            f"then {h['steady_overhead_ms_per_module']:.2f} ms/module)",
            f"< {TARGETS['hook_ms_per_module']:.0f} ms/module",
            status(h["overhead_ms_per_module"] < TARGETS["hook_ms_per_module"]),
        ))
        nb = h["no_bytecode"]
        rows.append((
            "Import hook, warm, no .pyc (PYTHONDONTWRITEBYTECODE=1)",
            f"{nb['overhead_ms_per_module']:.2f} ms/module (first {nb['first_grad_import_ms']:.0f} ms, "
            f"then {nb['steady_overhead_ms_per_module']:.2f} ms/module)",
            "(for reference)", "",
        ))
        rows.append((
            "Plain module import (baseline; without .pyc)",
            f"{h['plain_import_ms_per_module']:.2f} ms/module ({nb['plain_import_ms_per_module']:.2f})",
            "", "",
        ))
    elif h:
        rows.append(("Import hook", "skipped: " + h.get("note", ""), "< 2 ms/module", "n/a"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for j, r in enumerate(rows):
        out.append("| " + " | ".join(r[i].ljust(widths[i]) for i in range(4)) + " |")
        if j == 0:
            out.append("|" + "|".join("-" * (widths[i] + 2) for i in range(4)) + "|")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", type=int, default=1000)
    ap.add_argument("--functions", type=int, default=10, help="functions per module")
    ap.add_argument("--per-package", type=int, default=25, help="modules per package directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cold-reps", type=int, default=3)
    ap.add_argument("--warm-reps", type=int, default=5)
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--hook-modules", type=int, default=100)
    ap.add_argument("--hook-reps", type=int, default=5)
    ap.add_argument("--settle", type=float, default=0.3,
                    help="seconds to wait after each edit before the next one")
    ap.add_argument("--tangent", default=str(REPO / "target" / "release" / "tangent"))
    ap.add_argument("--python", help="interpreter with tangent installed (default: this one or "
                                     "the repository's .venv)")
    ap.add_argument("--skip", action="append", default=[],
                    choices=["cold", "one-core", "warm", "watch", "hook"])
    ap.add_argument("--json", default=str(HERE / "results.json"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    tangent = os.path.abspath(args.tangent)
    if not os.access(tangent, os.X_OK):
        raise SystemExit(f"{tangent} not found: cargo build --release -p tangent-cli")

    work = Path(tempfile.mkdtemp(prefix="tangent-bench-"))
    src = work / "src"
    src.mkdir()
    results: dict = {
        "config": {
            "modules": args.modules,
            "functions_per_module": args.functions,
            "total_functions": args.modules * args.functions,
            "modules_per_package": args.per_package,
            "seed": args.seed,
        },
        "targets": TARGETS,
        "machine": machine_info(tangent),
    }
    try:
        t0 = time.perf_counter()
        mods = generate_codebase(src, args.modules, args.functions, args.per_package, args.seed)
        size = sum(source_path(src, m).stat().st_size for m in mods)
        results["config"]["source_bytes"] = size
        log(f"generated {len(mods)} modules ({size / 1e6:.1f} MB) in {work} "
            f"({time.perf_counter() - t0:.1f} s)")
        total = args.modules * args.functions

        if "cold" not in args.skip:
            if "one-core" not in args.skip:
                cpu = sorted(os.sched_getaffinity(0))[0]
                results["cold_one_core"] = bench_cold(tangent, src, work, args.cold_reps, cpu, total)
            results["cold_all_cores"] = bench_cold(tangent, src, work, args.cold_reps, None, total)
        # The warm cache for everything below: artifacts and cache from one build.
        cache = work / "cache"
        remove_artifacts(src)
        _, _, p = run_timed([tangent, "build", str(src), "--cache-dir", str(cache)])
        check_ok(p, "build")
        results["skipped_functions"] = summary(p)["skipped"]
        if results["skipped_functions"]:
            log(f"  note: {results['skipped_functions']} functions skipped by the engine")

        if "warm" not in args.skip:
            results["warm_build"] = bench_warm(tangent, src, cache, args.warm_reps)
            results["cache_hit_build"] = bench_cache_only(tangent, src, cache, 3)
            # Leave the artifacts in place for the watch.
            _, _, p = run_timed([tangent, "build", str(src), "--cache-dir", str(cache)])
            check_ok(p, "build")

        hook_python = find_venv_python(args.python)
        if "watch" not in args.skip:
            results["watch"] = bench_watch(tangent, src, cache, mods, args.edits, args.seed,
                                           hook_python, args.settle, timeout_s=5.0)

        if "hook" not in args.skip:
            if hook_python is None:
                note = "tangent (with _tangent_hook) is not importable; skipped"
                log("  " + note)
                results["hook"] = {"available": False, "note": note}
            else:
                results["machine"]["hook_python"] = hook_python
                results["hook"] = bench_hook(hook_python, src, mods, args.hook_modules,
                                             args.hook_reps, work)
                if not results["hook"].get("available"):
                    log("  hook skipped: " + results["hook"].get("note", ""))
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    results["machine"]["loadavg_at_end"] = os.getloadavg()
    md = table(results)
    print()
    print(f"Tangent incremental benchmark: {args.modules:,} modules x {args.functions} functions "
          f"({results['machine']['tangent_version']}, {results['machine']['nproc']} cpus, "
          f"Python {results['machine']['python']})")
    print()
    print(md)
    results["markdown"] = md
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
