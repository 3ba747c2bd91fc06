"""Load: sixteen interpreters importing gradients of the same modules, through the import hook
(``from model.__grad__ import dloss``) and ``tangent.grad``, over and over, while ``tangent
watch`` and repeated ``tangent build`` runs regenerate their artifacts and this process keeps
saving the sources.

The saves append comments at the end of the files: every save is a new source (new hashes, new
artifacts, new generated files for the hook) whose functions are unchanged, so every gradient
has one right answer, its closed form, and no importer may fail (a save that changed a function
between ``import model`` and ``import model.__grad__`` would rightly be refused by the hook;
see test_concurrency.py for that race). Every child checks each gradient it gets against the
closed form and reports any exception. ``TANGENT_LOAD_SECONDS`` sets how long the children keep
importing (default 3).
"""

import json
import os
import sys
import threading
import time

import pytest

from test_concurrency import Processes, Watcher, child_env, tangent_binary, wait_until

PROCESSES = 16
SECONDS = float(os.environ.get("TANGENT_LOAD_SECONDS", "3"))
TIMEOUT = 60.0 + SECONDS

MODEL = '''\
import numpy as np


def loss(w, x):
    return np.sum(np.sin(w * x) * w + w * w)
'''

PKG_INIT = '''\
import numpy as np
from pkg.layers import dense


def predict(w, x):
    return np.sum(dense(w, x) * 3.0)
'''

PKG_LAYERS = '''\
import numpy as np


def dense(w, x):
    return np.exp(0.5 * w) * x
'''

CHILD = '''
import importlib, json, os, sys, time, traceback
import numpy as np

control, index, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
open(os.path.join(control, f"ready.{index}"), "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(os.path.join(control, "go")):
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.002)

import tangent

rng = np.random.default_rng(index)
w, x = rng.normal(size=(2, 5))
want_loss = np.cos(w * x) * x * w + np.sin(w * x) + 2 * w
want_predict = 1.5 * np.exp(0.5 * w) * x
out = {"iterations": 0, "hook": 0, "grad": 0, "wrong": [], "errors": []}
end = time.monotonic() + seconds
while time.monotonic() < end or out["iterations"] == 0:
    for name in [m for m in sys.modules if m.split(".")[0] in ("model", "pkg")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    try:
        import model
        import pkg
        if (out["iterations"] + index) % 2 == 0:
            from model.__grad__ import dloss
            from pkg.__grad__ import dpredict
            kind = "hook"
        else:
            dloss = tangent.grad(model.loss)
            dpredict = tangent.grad(pkg.predict)
            kind = "grad"
        got = (dloss(w, x), dpredict(w, x))
        out[kind] += 1
        for what, value, want in (("dloss", got[0], want_loss), ("dpredict", got[1], want_predict)):
            if not np.allclose(value, want, rtol=1e-10, atol=1e-12):
                out["wrong"].append([kind, what, out["iterations"]])
    except BaseException:
        out["errors"].append(traceback.format_exc())
    out["iterations"] += 1
print(json.dumps(out))
'''


def _save(path, text):
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_sixteen_importers_while_watch_and_build_regenerate(tmp_path):
    binary = tangent_binary()
    pytest.importorskip("tangent._engine")
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "load-test"\n')
    sources = {
        project / "model.py": MODEL,
        project / "pkg" / "__init__.py": PKG_INIT,
        project / "pkg" / "layers.py": PKG_LAYERS,
    }
    for path, text in sources.items():
        path.write_text(text)
    env = child_env(project)
    control = tmp_path / "control"
    control.mkdir()
    processes = Processes()
    stop = threading.Event()
    saves = [0]
    builds = []

    def keep_saving():
        n = 0
        while not stop.is_set():
            n += 1
            for path, text in sources.items():
                _save(path, text + f"# save {n}\n" + "#" * (n % 7) + "\n")
            saves[0] = n
            time.sleep(0.01)

    def keep_building():
        while not stop.is_set():
            proc = processes.popen([str(binary), "-q", "build", str(project)], cwd=str(project), env=env)
            out, err = proc.communicate(timeout=TIMEOUT)
            builds.append((proc.returncode, err))

    try:
        watcher = Watcher(processes, binary, project, env)
        watcher.wait_for_stdout("watching ")
        children = [
            processes.popen(
                [sys.executable, "-c", CHILD, str(control), str(i), str(SECONDS)],
                cwd=str(project),
                env=env,
            )
            for i in range(PROCESSES)
        ]

        def all_ready():
            failed = [c for c in children if c.poll() is not None]
            if failed:
                _, err = failed[0].communicate()
                pytest.fail(f"a child exited before the start ({failed[0].returncode}):\n{err}")
            return len(list(control.glob("ready.*"))) == PROCESSES

        wait_until(all_ready, "the children to start", timeout=TIMEOUT)
        (control / "go").touch()
        threads = [threading.Thread(target=f, daemon=True) for f in (keep_saving, keep_building)]
        for t in threads:
            t.start()
        results = []
        try:
            for i, child in enumerate(children):
                out, err = child.communicate(timeout=TIMEOUT)
                assert child.returncode == 0, f"child {i} failed ({child.returncode}):\n{out}\n{err}"
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=TIMEOUT)
        for i, r in enumerate(results):
            assert not r["errors"], f"child {i}:\n" + "\n".join(r["errors"][:3])
            assert not r["wrong"], f"child {i} got wrong gradients: {r['wrong'][:5]}"
        assert sum(r["hook"] for r in results) >= PROCESSES // 2
        assert sum(r["grad"] for r in results) >= PROCESSES // 2
        assert saves[0] >= 3 and builds, (saves, builds)
        assert all(code == 0 for code, _ in builds), builds

        # After the last save, the watcher's artifacts are exactly what a build writes.
        def checked():
            proc = processes.popen([str(binary), "check", str(project)], cwd=str(project), env=env)
            out, err = proc.communicate(timeout=TIMEOUT)
            return proc.returncode == 0

        wait_until(checked, "`tangent check` to pass after the last save", watcher.context, timeout=30)
        assert watcher.interrupt() == 0, watcher.context()
        print(
            f"{PROCESSES} processes: {sum(r['iterations'] for r in results)} imports "
            f"({sum(r['hook'] for r in results)} through the hook), {saves[0]} saves, "
            f"{len(builds)} builds"
        )
    finally:
        stop.set()
        processes.kill_all()
