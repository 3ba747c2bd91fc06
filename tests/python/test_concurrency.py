"""Concurrency with real processes: `tangent watch`, the import hook, `tangent build` and
`tangent.grad` all working on one project at the same time.

A temporary project holds a plain module (``model.py``) and a package (``pkg/``). With
``tangent watch`` running on it, eight fresh interpreters import gradients through the hook
while this process replaces ``model.py`` twice; a ``tangent build`` runs meanwhile (it cannot
take the cache's lock, so it must warn and go on). Then eight interpreters call ``tangent.grad``
in-process at once, sharing one ``TANGENT_GENERATED_DIR`` (what pytest-xdist workers do), and
the watcher is stopped with SIGINT. A second test replays, deterministically, the one race the
first may hit: ``model.py`` replaced between ``import model`` and ``import model.__grad__``.

Children are fresh interpreters (``sys.executable``) with ``PYTHONDONTWRITEBYTECODE`` removed,
so ``.pyc`` files are written as on users' machines. Every wait polls with a deadline; every
process started here is killed in ``finally``. The CLI is taken from ``target/debug`` or
``target/release`` (the newer one); the test is skipped when neither is built.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0  # for any single wait; polling returns as soon as the condition holds
IMPORTERS = 8

#: What the hook says when a module's file changed after the module was imported.
STALE = "was imported (function"


# Three versions of model.py. They differ in size too, so that Python's own mtime+size check
# of model's .pyc can never pick up the bytecode of an older version (see STACK-NOTES.md).
MODEL = '''\
import numpy as np

VERSION = {version}
SCALE = {scale}


def act(z):
    return {act}


def loss(w, x, y):
    pred = act(w * x)
    return np.sum((pred - y) ** 2) * SCALE
'''
VERSIONS = {
    1: MODEL.format(version=1, scale="2.0", act="np.tanh(z)"),
    2: MODEL.format(version=2, scale="3.5", act="np.sin(z) + 0.25 * z"),
    3: MODEL.format(version=3, scale="1.25", act="np.tanh(z) * np.cos(0.5 * z) + z * z"),
}

PKG_INIT = '''\
import numpy as np

BIAS = 0.5


def dense(w, x):
    return np.exp(0.1 * w) * np.sin(x)


def predict(w, x):
    return np.sum(dense(w, x) + BIAS)
'''

PKG_LAYERS = '''\
import numpy as np


def relu_sum(z):
    return np.sum(np.maximum(z, 0.0))
'''

# Shared by the children: central differences.
NUMERIC = '''
def numeric(f, args, i, eps=1e-6):
    args = [np.array(a, dtype=float) for a in args]
    g = np.zeros_like(args[i])
    for k in np.ndindex(g.shape):
        hi = [a.copy() for a in args]
        lo = [a.copy() for a in args]
        hi[i][k] += eps
        lo[i][k] -= eps
        g[k] = (f(*hi) - f(*lo)) / (2 * eps)
    return g


def close(a, b):
    return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))
'''

# Waits for the file `go` in the control directory (after saying it is ready), then the
# given delay: the children start importing together, while the parent edits model.py.
BARRIER = '''
import json, os, sys, time
import numpy as np

control, index, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
open(os.path.join(control, f"ready.{index}"), "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(os.path.join(control, "go")):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.002)
time.sleep(delay)
'''

# Imports gradients through the hook and checks them against central differences of the
# functions of the module it imported.
IMPORTER = BARRIER + NUMERIC + '''
import model
from model.__grad__ import dloss
from model.__grad__ import dloss_dx
from pkg.__grad__ import dpredict
import pkg

rng = np.random.default_rng(index)
w, x, y = rng.normal(size=(3, 4))
grad_module = sys.modules["model.__grad__"]
out = {
    "version": model.VERSION,
    "grad_source_hash": grad_module.__tangent_source_hash__,
    "dloss": close(dloss(w, x, y), numeric(model.loss, (w, x, y), 0)),
    "dloss_dx": close(dloss_dx(w, x, y), numeric(model.loss, (w, x, y), 1)),
    "dpredict": close(dpredict(w, x), numeric(pkg.predict, (w, x), 0)),
}
print(json.dumps(out))
'''

# After the edits: the hook's gradients and the watcher's artifact, against the final source.
FINAL = NUMERIC + '''
import json, sys
import numpy as np
import model, pkg
from model.__grad__ import dloss, dloss_dx
from pkg.__grad__ import dpredict

rng = np.random.default_rng(99)
w, x, y = rng.normal(size=(3, 4))
artifact = sys.argv[1]
scope = {k: v for k, v in vars(model).items() if not k.startswith("__")}
with open(artifact) as f:
    exec(compile(f.read(), artifact, "exec"), scope)
out = {
    "version": model.VERSION,
    "grad_source_hash": sys.modules["model.__grad__"].__tangent_source_hash__,
    "dloss": close(dloss(w, x, y), numeric(model.loss, (w, x, y), 0)),
    "dloss_dx": close(dloss_dx(w, x, y), numeric(model.loss, (w, x, y), 1)),
    "dpredict": close(dpredict(w, x), numeric(pkg.predict, (w, x), 0)),
    "artifact_dloss": close(scope["dloss"](w, x, y), numeric(model.loss, (w, x, y), 0)),
}
print(json.dumps(out))
'''

# pytest-xdist-like: tangent.grad in-process, every worker writing to one generated dir.
IN_PROCESS = BARRIER + NUMERIC + '''
import model, pkg, tangent

rng = np.random.default_rng(index)
w, x, y = rng.normal(size=(3, 4))
dloss = tangent.grad(model.loss)
dloss_dy = tangent.grad(model.loss, wrt="y")
dpredict = tangent.grad(pkg.predict, wrt=("w", "x"))
dw, dx = dpredict(w, x)
out = {
    "dloss": close(dloss(w, x, y), numeric(model.loss, (w, x, y), 0)),
    "dloss_dy": close(dloss_dy(w, x, y), numeric(model.loss, (w, x, y), 2)),
    "dpredict": close(dw, numeric(pkg.predict, (w, x), 0))
    and close(dx, numeric(pkg.predict, (w, x), 1)),
    "files": sorted(f.__code__.co_filename for f in (dloss, dloss_dy, dpredict)),
}
print(json.dumps(out))
'''


def tangent_binary():
    candidates = [REPO / "target" / profile / "tangent" for profile in ("debug", "release")]
    built = [c for c in candidates if c.is_file() and os.access(c, os.X_OK)]
    if not built:
        pytest.skip(
            "the tangent CLI is not built (run `cargo build -p tangent-cli`); looked for "
            + ", ".join(str(c) for c in candidates)
        )
    return max(built, key=lambda c: c.stat().st_mtime)


def child_env(project, **extra):
    drop = (
        "PYTHONDONTWRITEBYTECODE",
        "TANGENT_NO_IMPORT_HOOK",
        "TANGENT_GENERATED_DIR",
        "TANGENT_CACHE_DIR",
        "RUST_LOG",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = str(project)
    env.update(extra)
    return env


def wait_until(condition, what, context=lambda: "", timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{context()}")
        time.sleep(0.02)


def replace_atomically(path, text):
    """An editor-style save: a temporary file in the same directory renamed over `path`."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Processes:
    """Every process started by a test, so that `finally` can kill what is still running."""

    def __init__(self):
        self.all = []

    def popen(self, args, **kwargs):
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
        )
        self.all.append(proc)
        return proc

    def kill_all(self):
        for proc in self.all:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.communicate(timeout=5)
            except (subprocess.TimeoutExpired, ValueError, OSError):
                pass


class Watcher:
    """`tangent -v watch DIR`, its output collected by threads."""

    def __init__(self, processes, binary, project, env):
        self.proc = processes.popen(
            [str(binary), "-v", "watch", str(project)], cwd=str(project), env=env
        )
        self.out, self.err = [], []
        self.threads = [
            threading.Thread(target=self._collect, args=(s, buf), daemon=True)
            for s, buf in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for t in self.threads:
            t.start()

    @staticmethod
    def _collect(stream, buffer):
        for line in iter(stream.readline, ""):
            buffer.append(line)

    def stdout(self):
        return "".join(self.out)

    def context(self):
        return f"--- watch stdout\n{self.stdout()}--- watch stderr\n{''.join(self.err)}"

    def wait_for_stdout(self, needle):
        def seen():
            if self.proc.poll() is not None:
                pytest.fail(f"the watcher exited ({self.proc.returncode})\n{self.context()}")
            return needle in self.stdout()

        wait_until(seen, f"`{needle}` from the watcher", self.context)

    def interrupt(self):
        """SIGINT (Ctrl-C); returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the watcher did not stop on SIGINT\n{self.context()}")
        for t in self.threads:
            t.join(timeout=5)
        return self.proc.returncode


def run_together(processes, script, count, project, control, env, delay, during=None):
    """Starts `count` interpreters running `script` (BARRIER first), lets them go at once,
    calls `during()` meanwhile and returns their JSON results."""
    control.mkdir()
    children = [
        processes.popen(
            [sys.executable, "-c", script, str(control), str(i), str(delay * i)],
            cwd=str(project),
            env=env,
        )
        for i in range(count)
    ]

    def all_ready():
        failed = [c for c in children if c.poll() is not None]
        if failed:
            _, err = failed[0].communicate()
            pytest.fail(f"a child exited before the start ({failed[0].returncode}):\n{err}")
        return len(list(control.glob("ready.*"))) == count

    wait_until(all_ready, "the children to start")
    (control / "go").touch()
    extra = during() if during else None
    results = []
    for i, child in enumerate(children):
        try:
            out, err = child.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"child {i} did not finish in {TIMEOUT:.0f} s")
        if child.returncode != 0 and STALE in err:
            # It imported one version of the module and found another on disk when it asked
            # for gradients: the hook refuses (rather than differentiate the wrong code).
            results.append({"stale": True})
            continue
        assert child.returncode == 0, f"child {i} failed ({child.returncode}):\n{out}\n{err}"
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results, extra


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    # The project root (the cache goes to project/.tangent/cache), whatever encloses tmp_path.
    (root / "pyproject.toml").write_text('[project]\nname = "concurrency-test"\n')
    (root / "model.py").write_text(VERSIONS[1])
    (root / "pkg" / "__init__.py").write_text(PKG_INIT)
    (root / "pkg" / "layers.py").write_text(PKG_LAYERS)
    return root


def test_watch_importers_edits_build_and_in_process_grad(project, tmp_path):
    assert len({len(text) for text in VERSIONS.values()}) == len(VERSIONS)
    binary = tangent_binary()
    engine = pytest.importorskip("tangent._engine")
    hashes = {v: engine.source_hash(text) for v, text in VERSIONS.items()}
    env = child_env(project)
    model = project / "model.py"
    artifacts = project / "__tangent__"

    def cli_artifact(version):
        return artifacts / f"model.__grad__.{hashes[version][:16]}.py"

    processes = Processes()
    try:
        # 1. The watcher's initial build.
        watcher = Watcher(processes, binary, project, env)
        watcher.wait_for_stdout("watching ")
        assert "3 generated, 0 reused, 0 failed" in watcher.stdout(), watcher.context()
        assert cli_artifact(1).is_file(), watcher.context()

        # 2. Importers at once, two atomic edits of model.py and a build in the middle.
        def edit_and_build():
            build = processes.popen(
                [str(binary), "build", str(project)], cwd=str(project), env=env
            )
            time.sleep(0.05)
            replace_atomically(model, VERSIONS[2])
            time.sleep(0.12)
            replace_atomically(model, VERSIONS[3])
            try:
                return build.communicate(timeout=TIMEOUT) + (build.returncode,)
            except subprocess.TimeoutExpired:
                pytest.fail(f"`tangent build` did not finish in {TIMEOUT:.0f} s")

        results, (build_out, build_err, build_code) = run_together(
            processes, IMPORTER, IMPORTERS, project, tmp_path / "importers", env,
            delay=0.03, during=edit_and_build,
        )
        # Each importer's gradient module must be generated from the text of the module it
        # imported: checked last (below), so that a mismatch does not hide the other checks.
        version_of = {h: v for v, h in hashes.items()}
        mismatched = []
        assert sum(1 for r in results if not r.get("stale")) >= 1, results
        for i, r in enumerate(results):
            if r.get("stale"):
                continue
            assert r["version"] in VERSIONS and r["dpredict"], (i, r)
            grad_version = version_of.get(r["grad_source_hash"], "unknown")
            if grad_version != r["version"]:
                mismatched.append((i, r["version"], grad_version, r))
            else:
                assert r["dloss"] and r["dloss_dx"], (i, r)

        assert build_code == 0, f"{build_out}\n{build_err}"
        assert "in use by another process" in build_err, build_err
        assert "0 failed" in build_out, build_out

        # 3. The watcher catches up with the final source: its artifact is exactly what the
        # engine makes of it, and the artifacts of older versions are gone.
        expected = engine.grad_module(VERSIONS[3], "model.py", True)[0]
        wait_until(
            lambda: cli_artifact(3).is_file() and cli_artifact(3).read_text() == expected,
            "the watcher's artifact of the final model.py",
            watcher.context,
        )
        wait_until(
            lambda: not cli_artifact(1).exists() and not cli_artifact(2).exists(),
            "the artifacts of older versions of model.py to go",
            lambda: f"{sorted(os.listdir(artifacts))}\n{watcher.context()}",
        )

        # A fresh importer gets the gradients of the final source; so does the artifact.
        final = subprocess.run(
            [sys.executable, "-c", FINAL, str(cli_artifact(3))],
            check=False, cwd=str(project), env=env, capture_output=True, text=True, timeout=TIMEOUT,
        )
        assert final.returncode == 0, final.stderr
        final = json.loads(final.stdout.strip().splitlines()[-1])
        assert final == {
            "version": 3,
            "grad_source_hash": hashes[3],
            "dloss": True,
            "dloss_dx": True,
            "dpredict": True,
            "artifact_dloss": True,
        }

        # 4. pytest-xdist-like: tangent.grad in eight processes at once, one generated dir.
        generated = tmp_path / "generated"
        results, _ = run_together(
            processes, IN_PROCESS, IMPORTERS, project, tmp_path / "in-process",
            child_env(project, TANGENT_GENERATED_DIR=str(generated)), delay=0.0,
        )
        for i, r in enumerate(results):
            assert r["dloss"] and r["dloss_dy"] and r["dpredict"], (i, r)
            assert all(os.path.dirname(f) == str(generated) for f in r["files"]), r["files"]
        assert all(r["files"] == results[0]["files"] for r in results)
        names = sorted(os.listdir(generated))
        assert not [n for n in names if n.endswith(".tmp")], names
        assert sorted(n for n in names if n.endswith(".py")) == sorted(
            os.path.basename(f) for f in results[0]["files"]
        )

        # 5. Ctrl-C.
        assert watcher.interrupt() == 0, watcher.context()
        assert "stopped" in watcher.stdout(), watcher.context()

        assert not mismatched, "\n".join(
            f"importer {i} imported model.py version {v} but got the gradient module of "
            f"version {g} (its gradients are wrong: {r})"
            for i, v, g, r in mismatched
        )
    finally:
        processes.kill_all()


# The race of the test above, made deterministic: model.py changes between `import model` and
# `import model.__grad__` (as when an editor saves while a program or a notebook is starting).
EDITED_AFTER_IMPORT = NUMERIC + '''
import json, sys
import numpy as np
import model

with open(model.__file__, "w") as f:
    f.write(sys.argv[1])
rng = np.random.default_rng(0)
w, x, y = rng.normal(size=(3, 4))
try:
    from model.__grad__ import dloss
except ImportError as error:
    out = {"error": str(error)}
else:
    out = {"dloss": close(dloss(w, x, y), numeric(model.loss, (w, x, y), 0)),
           "grad_source_hash": sys.modules["model.__grad__"].__tangent_source_hash__}
print(json.dumps(out))
'''


def test_source_edited_between_import_and_gradient_import(project):
    """`model.__grad__` must belong to the `model` that was imported: either its gradients are
    those of the imported functions, or the import fails and says why. Never the gradient of
    the new text run against the old module's globals."""
    engine = pytest.importorskip("tangent._engine")
    proc = subprocess.run(
        [sys.executable, "-c", EDITED_AFTER_IMPORT, VERSIONS[2]],
        check=False, cwd=str(project), env=child_env(project), capture_output=True, text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if "error" not in out:
        made_from = {engine.source_hash(t): v for v, t in VERSIONS.items()}
        assert out["dloss"], (
            "model version 1 was imported, then model.py was replaced by version 2; "
            "`from model.__grad__ import dloss` gave the gradient module of version "
            f"{made_from.get(out['grad_source_hash'], 'unknown')} run in version 1's globals, "
            f"and its gradients are wrong: {out}"
        )
