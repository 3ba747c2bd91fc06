"""What the import hook and ``tangent.grad`` trust and create.

- A generated file edited, truncated or replaced by hand (same size and mtime included) is
  never executed: it is generated again (its last line is a content hash of the rest).
- Generation never runs user code: after ``import hostile`` (which Python runs, of course),
  the hook, ``tangent.grad``/``jvp``/``hvp`` and ``hostile.__hvp__`` only read its source.
- Under umask 0, nothing the hook or ``tangent.grad`` creates is writable by group or others.
- A ``__tangent__`` that is a symbolic link, and a generated-code directory writable by everyone,
  are never used: nothing is written there, and a file planted there is never executed.

Every test runs in fresh interpreters (see test_import_hook.py).
"""

import os
import stat

import pytest

from test_import_hook import MODEL, run, run_json

GRADS = """
import json, sys
import numpy as np
import model
from model.__grad__ import dloss, dloss_dx
w, x, y = np.array([0.5, -1.0]), np.array([2.0, 0.25]), np.array([1.0, 3.0])
print(json.dumps({
    "dloss": dloss(w, x, y).tolist(),
    "dloss_dx": dloss_dx(w, x, y).tolist(),
    "files": [sys.modules["model.__grad__"].__file__, dloss_dx.__code__.co_filename],
    "engine": "tangent._engine" in sys.modules,
}))
"""


@pytest.fixture
def plain(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    return tmp_path


def _tamper(path, how, marker):
    data = path.read_bytes()
    before = os.stat(path)
    evil = f"open({str(marker)!r}, 'w').close()\n".encode()
    if how == "appended":
        data = data + evil
    elif how == "truncated":
        data = data[: len(data) // 2]
    elif how == "same-size":
        # The same length, and the mtime put back: Python's own .pyc check cannot tell.
        data = evil + data[len(evil):]
    elif how == "replaced":
        data = evil
    path.write_bytes(data)
    if how == "same-size":
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("how", ["appended", "truncated", "same-size", "replaced"])
def test_a_generated_file_changed_by_hand_is_regenerated_never_run(plain, how):
    first = run_json(plain, GRADS)
    assert first["engine"] is True
    originals = {f: open(f, "rb").read() for f in first["files"]}
    marker = plain / "marker"
    for f in first["files"]:
        _tamper(__import__("pathlib").Path(f), how, marker)
    second = run_json(plain, GRADS)
    assert not marker.exists(), "a tampered generated file was executed"
    assert second["dloss"] == first["dloss"] and second["dloss_dx"] == first["dloss_dx"]
    assert second["files"] == first["files"]
    assert second["engine"] is True  # it had to generate them again
    for f, data in originals.items():
        assert open(f, "rb").read() == data, f"{f} was not restored"
    # And then they are trusted again, without the engine.
    third = run_json(plain, GRADS)
    assert third["engine"] is False and third["dloss"] == first["dloss"]


def test_a_foreign_pyc_is_never_used(plain):
    """A timestamp .pyc made from other code, with the generated file's mtime and size."""
    first = run_json(plain, GRADS)
    main = first["files"][0]
    marker = plain / "marker"
    code = f"""
import importlib.util, marshal, os, sys
path = {main!r}
st = os.stat(path)
evil = compile("open({str(marker)!r}, 'w').close()", path, "exec")
pyc = importlib.util.cache_from_source(path)
header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little")
header += (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
os.makedirs(os.path.dirname(pyc), exist_ok=True)
open(pyc, "wb").write(header + marshal.dumps(evil))
"""
    run(plain, code)
    second = run_json(plain, GRADS)
    assert not marker.exists(), "a .pyc that does not match the verified source was executed"
    assert second["dloss"] == first["dloss"]


HOSTILE = """\
import os
import numpy as np

open(os.environ["MARKER"] + ".top", "w").close()


def f(x, y):
    os.mkdir(os.environ["MARKER"] + ".f")
    os._exit(97)
    return np.sin(x) * y


def g(x):
    os.system("touch " + os.environ["MARKER"] + ".g")
    return f(x, 2.0) * x
"""


def test_generation_never_runs_user_code(tmp_path):
    (tmp_path / "hostile.py").write_text(HOSTILE)
    marker = tmp_path / "marker"
    code = """
import json, os, sys
import hostile                      # Python runs the module, as any import does
os.remove(os.environ["MARKER"] + ".top")
import tangent
from hostile.__grad__ import df, dg
done = [df.__name__, dg.__name__]
from hostile.__grad__ import df_dy
done.append(df_dy.__name__)
for make in (tangent.grad, tangent.jvp, tangent.hvp):
    try:
        done.append(make(hostile.f).__name__)
    except tangent.TangentError as error:  # cannot be differentiated: fine, nothing ran
        done.append(type(error).__name__)
import hostile.__hvp__ as h
done.append(h.df.__name__)
print(json.dumps(done))
"""
    done = run_json(tmp_path, code, MARKER=str(marker))
    assert len(done) == 7
    left = sorted(p.name for p in tmp_path.glob("marker*"))
    assert left == [], f"user code ran during generation: {left}"


def _modes(root):
    bad = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o022:
                bad.append(f"{path} {oct(st.st_mode & 0o777)}")
    return bad


def test_nothing_created_is_writable_by_others_under_umask_0(plain, tmp_path_factory):
    generated = tmp_path_factory.mktemp("generated") / "new" / "nested"
    code = """
import json, os, sys
os.umask(0)
import numpy as np
import model, tangent
from model.__grad__ import dloss, dloss_dx
df = tangent.grad(model.loss)
print(json.dumps([sys.modules["model.__grad__"].__file__, df.__code__.co_filename]))
"""
    hook_file, grad_file = run_json(plain, code, TANGENT_GENERATED_DIR=str(generated))
    assert os.path.dirname(hook_file) == os.path.dirname(grad_file) == str(generated)
    assert _modes(generated.parent.parent) == []
    # Next to the source, with the user-cache fallback's directories too.
    os.unlink(plain / "model.py")
    (plain / "model.py").write_text(MODEL)
    beside = run_json(plain, code.replace("tangent.grad(model.loss)", "dloss"))
    assert os.path.dirname(beside[0]) == str(plain / "__tangent__" / "imports")
    assert _modes(plain / "__tangent__") == []
    assert os.stat(plain / "__tangent__").st_mode & 0o777 == 0o755
    assert os.stat(beside[0]).st_mode & 0o777 == 0o644
    xdg = tmp_path_factory.mktemp("xdg") / "deeper"
    other = tmp_path_factory.mktemp("other")
    (other / "model.py").write_text(MODEL)
    (other / "__tangent__").write_text("a file where the directory would go")
    fallback = run_json(other, code.replace("tangent.grad(model.loss)", "dloss"), XDG_CACHE_HOME=str(xdg))
    assert fallback[0].startswith(str(xdg))
    assert _modes(xdg) == []


def test_a_linked_or_world_writable_directory_is_never_used(plain, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    os.symlink(outside, plain / "__tangent__")
    xdg = tmp_path_factory.mktemp("xdg")
    result = run_json(plain, GRADS, XDG_CACHE_HOME=str(xdg))
    assert all(f.startswith(str(xdg)) for f in result["files"]), result["files"]
    assert os.listdir(outside) == []

    # A shared, world-writable directory: a file planted under the right name is not run.
    shared = tmp_path_factory.mktemp("shared")
    os.chmod(shared, 0o777)
    os.unlink(plain / "__tangent__")
    first = run_json(plain, GRADS)
    marker = plain / "marker"
    planted = shared / os.path.basename(first["files"][0])
    planted.write_text(f"open({str(marker)!r}, 'w').close()\n")
    proc = run(plain, GRADS, check=False, TANGENT_GENERATED_DIR=str(shared))
    assert proc.returncode != 0 and "writable by everyone" in proc.stderr, proc.stderr
    assert not marker.exists()
