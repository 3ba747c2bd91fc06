"""The import hook: ``from model.__grad__ import dloss`` in a fresh interpreter.

Every test runs its Python code in a FRESH subprocess (``sys.executable``) with a temporary
project directory on ``PYTHONPATH``, so what is tested is what a user gets: the hook activated
at start-up by ``tangent_hook.pth``, nothing set up by hand. ``PYTHONDONTWRITEBYTECODE`` is
removed from the child environment so that ``.pyc`` files are written, as on users' machines.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

MODEL = '''\
import numpy as np

SCALE = 2.0


def helper(a, b):
    return a * b + np.sin(a)


def loss(w, x, y):
    pred = helper(x, w)
    return np.sum((pred - y) ** 2) * SCALE


def bad(n, x):
    s = 0.0
    for i in range(n):
        s = s + x
    return s
'''

# Line and column of `n` in `range(n)` in MODEL.
BAD_LINE = MODEL.splitlines().index("    for i in range(n):") + 1
BAD_COLUMN = "    for i in range(n):".index("(n)") + 2

TIMEOUT = 120


def child_env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "TANGENT_NO_IMPORT_HOOK", "TANGENT_GENERATED_DIR")
    }
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def run(project, code, *, check=True, **env):
    """Runs ``code`` in a fresh interpreter with ``project`` on PYTHONPATH."""
    env = child_env(**env)
    env["PYTHONPATH"] = str(project) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(  # noqa: PLW1510 (the return code is checked below)
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=str(project),
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_json(project, code, **env):
    """Runs ``code``, which must print one JSON document as its last line."""
    proc = run(project, code, **env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session", autouse=True)
def hook_is_installed(tmp_path_factory):
    proc = run(
        tmp_path_factory.mktemp("probe"),
        "import sys, _tangent_hook; sys.exit(0 if _tangent_hook.installed() else 3)",
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            "the import hook is not active at start-up: tangent_hook.pth is missing from "
            "site-packages (scripts/_env.sh's build_extension installs it)\n" + proc.stderr
        )


@pytest.fixture
def plain(tmp_path):
    """A project with a plain module ``model.py``."""
    (tmp_path / "model.py").write_text(MODEL)
    return tmp_path


@pytest.fixture
def package(tmp_path):
    """A project with a package ``model/__init__.py``."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "__init__.py").write_text(MODEL)
    return tmp_path


# Gradients in the child are compared with central differences and with tangent.grad.
COMPARE = """
import json, sys
import numpy as np
import model
import tangent

rng = np.random.default_rng(0)
w = rng.normal(size=3)
x = rng.normal(size=3)
y = rng.normal(size=3)

def numeric(f, args, i, eps=1e-6):
    args = [np.array(a, dtype=float) for a in args]
    g = np.zeros_like(args[i])
    for k in np.ndindex(g.shape):
        hi = [a.copy() for a in args]; lo = [a.copy() for a in args]
        hi[i][k] += eps; lo[i][k] -= eps
        g[k] = (f(*hi) - f(*lo)) / (2 * eps)
    return g

out = {}
"""


@pytest.mark.parametrize("layout", ["plain", "package"])
def test_grad_module_matches_tangent_grad(layout, request):
    project = request.getfixturevalue(layout)
    result = run_json(
        project,
        COMPARE
        + """
from model.__grad__ import dloss
import model.__grad__
ref = tangent.grad(model.loss)(w, x, y)
out["close_to_grad"] = bool(np.allclose(dloss(w, x, y), ref, rtol=1e-12, atol=1e-12))
out["close_to_numeric"] = bool(np.allclose(dloss(w, x, y), numeric(model.loss, (w, x, y), 0),
                                           rtol=1e-5, atol=1e-6))
out["attribute"] = model.__grad__.dloss is dloss
out["file"] = model.__grad__.__file__
out["module"] = dloss.__module__
out["all"] = sorted(model.__grad__.__all__)
print(json.dumps(out))
""",
    )
    assert result["close_to_grad"] and result["close_to_numeric"]
    assert result["attribute"]
    assert result["module"] == "model.__grad__"
    assert result["all"] == ["dhelper", "dloss"]
    generated = result["file"]
    source_dir = project / "model" if layout == "package" else project
    assert os.path.dirname(generated) == str(source_dir / "__tangent__" / "imports")
    assert re.fullmatch(r"model\.__grad__\.[0-9a-f]{16}\.py", os.path.basename(generated))
    with open(generated) as f:
        first = f.readline()
    assert re.fullmatch(r"# tangent-source-hash: [0-9a-f]{64}\n", first)


def test_cached_module_is_loaded_without_the_engine(plain):
    code = """
    import json, sys
    from model.__grad__ import dloss
    print(json.dumps({"engine": "tangent._engine" in sys.modules, "value": dloss(1.5, 2.0, 0.5),
                      "file": sys.modules["model.__grad__"].__file__}))
    """
    first = run_json(plain, code)
    second = run_json(plain, code)
    assert first["engine"] is True  # generated by the engine
    assert second["engine"] is False  # loaded from the file: the native module is not loaded
    assert first["value"] == second["value"] and first["file"] == second["file"]
    pycache = plain / "__tangent__" / "imports" / "__pycache__"
    assert any(name.startswith("model.__grad__.") for name in os.listdir(pycache))


@pytest.mark.parametrize("layout", ["plain", "package"])
def test_gradients_with_respect_to_named_parameters(layout, request):
    project = request.getfixturevalue(layout)
    code = COMPARE + """
from model.__grad__ import dloss_dx, dloss_dw_dy
out["dx"] = bool(np.allclose(dloss_dx(w, x, y), tangent.grad(model.loss, wrt="x")(w, x, y)))
out["dx_numeric"] = bool(np.allclose(dloss_dx(w, x, y), numeric(model.loss, (w, x, y), 1),
                                     rtol=1e-5, atol=1e-6))
both = dloss_dw_dy(w, x, y)
ref = tangent.grad(model.loss, wrt=("w", "y"))(w, x, y)
out["tuple"] = isinstance(both, tuple) and len(both) == 2
out["dw_dy"] = all(bool(np.allclose(a, b)) for a, b in zip(both, ref))
out["dy_numeric"] = bool(np.allclose(both[1], numeric(model.loss, (w, x, y), 2),
                                     rtol=1e-5, atol=1e-6))
out["files"] = [dloss_dx.__code__.co_filename, dloss_dw_dy.__code__.co_filename]
print(json.dumps(out))
"""
    first = run_json(project, code)
    assert first["dx"] and first["dx_numeric"] and first["tuple"] and first["dw_dy"]
    assert first["dy_numeric"]
    for path in first["files"]:
        assert os.path.isfile(path)
        assert re.search(r"model\.__grad__\.[0-9a-f]{16}\.dloss_d\w+\.py$", path)
    # A second process loads the files generated on access without the engine.
    second = run_json(
        project,
        """
        import json, sys
        from model.__grad__ import dloss_dx, dloss_dw_dy
        print(json.dumps({"engine": "tangent._engine" in sys.modules,
                          "dx": float(dloss_dx(1.5, 2.0, 0.5)),
                          "dw_dy": [float(v) for v in dloss_dw_dy(1.5, 2.0, 0.5)]}))
        """,
    )
    assert second["engine"] is False
    assert second["dw_dy"][0] == pytest.approx(
        run_json(project, "import json\nfrom model.__grad__ import dloss\n"
                 "print(json.dumps(dloss(1.5, 2.0, 0.5)))")
    )


def test_not_differentiable_raises_import_error_with_diagnostic(plain):
    result = run_json(
        plain,
        """
        import json
        out = {}
        try:
            from model.__grad__ import dbad
        except ImportError as e:
            out["dbad"] = [type(e).__name__, str(e), e.name]
        try:
            from model.__grad__ import dbad_dn
        except ImportError as e:
            out["dbad_dn"] = [type(e).__name__, str(e)]
        from model.__grad__ import dbad_dx, dloss
        out["dbad_dx"] = dbad_dx(3, 2.0)
        print(json.dumps(out))
        """,
    )
    kind, message, name = result["dbad"]
    assert kind == "GradientImportError"
    assert name == "model.__grad__"
    where = f"{plain / 'model.py'}:{BAD_LINE}:{BAD_COLUMN}"
    assert where in message, message
    assert "for i in range(n):" in message and "not-differentiable" in message
    assert "cannot import name 'dbad'" in message
    assert where in result["dbad_dn"][1]
    assert result["dbad_dx"] == 3.0
    # The diagnostic is in the generated file: a second process does not need the engine.
    again = run_json(
        plain,
        """
        import json, sys
        try:
            from model.__grad__ import dbad
        except ImportError as e:
            print(json.dumps([str(e), "tangent._engine" in sys.modules]))
        """,
    )
    assert where in again[0] and again[1] is False


def test_unknown_names(plain):
    result = run_json(
        plain,
        """
        import json
        out = {}
        try:
            from model.__grad__ import dnothing
        except ImportError as e:
            out["from"] = [type(e).__name__, str(e)]
        import model.__grad__ as g
        for name in ("nothing", "dloss_dz", "dloss_dx_dx", "dhelper_dy", "__path__"):
            try:
                getattr(g, name)
            except AttributeError as e:
                out[name] = str(e)
        out["hasattr"] = hasattr(g, "dloss_dz")
        print(json.dumps(out))
        """,
    )
    assert result["from"][0] == "ImportError"
    assert "cannot import name 'dnothing'" in result["from"][1]
    for name in ("nothing", "dloss_dz", "dloss_dx_dx", "dhelper_dy", "__path__"):
        assert "has no attribute" in result[name]
    assert result["hasattr"] is False


def test_changed_source_gives_fresh_code_same_second_same_size(plain):
    model = plain / "model.py"
    model.write_text("def f(x):\n    return x * 2.0\n")
    code = """
    import json, sys
    from model.__grad__ import df
    print(json.dumps([df(1.0), sys.modules["model.__grad__"].__file__]))
    """
    value, first_file = run_json(plain, code)
    assert value == 2.0
    assert os.path.isdir(plain / "__tangent__" / "imports" / "__pycache__")
    before = os.stat(model)
    model.write_text("def f(x):\n    return x * 3.0\n")  # same size
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
    after = os.stat(model)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    # CPython itself now runs model.py from its stale .pyc (same mtime and size): the hook
    # refuses to pair the new gradient with the old function instead of answering wrongly.
    failed = run(plain, code, check=False)
    assert failed.returncode != 0
    assert "changed after 'model' was imported" in failed.stderr
    # Once model's own bytecode is fresh, the gradient module is fresh too (its file name
    # carries the source's hash, so its .pyc can never be stale).
    for pyc in (plain / "__pycache__").glob("model.*.pyc"):
        pyc.unlink()
    value, second_file = run_json(plain, code)
    assert value == 3.0
    assert second_file != first_file


def test_inspect_getsource_and_pdb_show_generated_lines(plain):
    result = run_json(
        plain,
        """
        import inspect, io, json, pdb
        from model.__grad__ import dloss, dloss_dx
        out = {"source": inspect.getsource(dloss), "file": inspect.getsourcefile(dloss),
               "dx": inspect.getsource(dloss_dx)}
        stdout = io.StringIO()
        debugger = pdb.Pdb(stdin=io.StringIO("list\\ncontinue\\n"), stdout=stdout)
        debugger.runcall(dloss, 1.5, 2.0, 0.5)
        out["pdb"] = stdout.getvalue()
        print(json.dumps(out))
        """,
    )
    with open(result["file"]) as f:
        text = f.read()
    assert result["source"].startswith("def dloss") and result["source"] in text
    assert "pred = helper_db_forward(_stack, x, w)" in result["source"]
    assert result["dx"].startswith("def dloss") and "with respect to `x`" in result["dx"]
    assert result["file"].endswith(".py") and "__tangent__" in result["file"]
    assert "pred = helper_db_forward(_stack, x, w)" in result["pdb"]
    assert os.path.basename(result["file"]) in result["pdb"]


def test_traceback_points_into_generated_file(plain):
    result = run_json(
        plain,
        """
        import json, traceback
        from model.__grad__ import dloss
        try:
            dloss("not a number", 2.0, 0.5)
        except TypeError as e:
            frames = traceback.extract_tb(e.__traceback__)
            print(json.dumps({"frames": [[f.filename, f.lineno, f.line] for f in frames],
                              "file": dloss.__code__.co_filename}))
        """,
    )
    generated = [f for f in result["frames"] if f[0] == result["file"]]
    assert generated, result["frames"]
    filename, line, text = generated[0]
    with open(filename) as f:
        assert f.read().splitlines()[line - 1].strip() == text
    assert text == "pred = helper_db_forward(_stack, x, w)"


def test_concurrent_importers(plain):
    code = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        from model.__grad__ import dloss, dloss_dx
        w = np.linspace(0.0, 1.0, 5)
        print(json.dumps([dloss(w, 2.0, 0.5).tolist(), dloss_dx(w, 2.0, 0.5),
                          sys.modules["model.__grad__"].__file__]))
        """
    )
    env = child_env()
    env["PYTHONPATH"] = str(plain)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=str(plain), env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(8)
    ]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert all(o == outputs[0] for o in outputs)
    directory = plain / "__tangent__" / "imports"
    names = sorted(os.listdir(directory))
    assert not [n for n in names if n.endswith(".tmp")], names
    generated = [n for n in names if n.endswith(".py")]
    assert len(generated) == 2, names
    for name in generated:
        text = (directory / name).read_text()
        assert text.startswith("# tangent-source-hash: ")
        compile(text, name, "exec")


def test_hook_disabled_by_environment_variable(plain):
    result = run_json(
        plain,
        """
        import json, sys, _frozen_importlib, _tangent_hook
        out = {"installed": _tangent_hook.installed(),
               "finder": _tangent_hook.GradFinder in sys.meta_path,
               "wrapped": hasattr(_frozen_importlib._find_and_load, "__wrapped__")}
        try:
            from model.__grad__ import dloss
        except ImportError as e:
            out["error"] = [type(e).__name__, str(e)]
        print(json.dumps(out))
        """,
        TANGENT_NO_IMPORT_HOOK="1",
    )
    assert result == {
        "installed": False,
        "finder": False,
        "wrapped": False,
        "error": ["ModuleNotFoundError", "No module named 'model.__grad__'; 'model' is not a package"],
    }
    assert not (plain / "__tangent__").exists()


def test_ordinary_imports_unaffected(tmp_path):
    (tmp_path / "other.py").write_text("VALUE = 41\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("VALUE = 42\n")
    (tmp_path / "broken.py").write_text("x = 1\nraise ValueError('boom at import')\n")
    code = """
    import importlib, json, sys, traceback
    out = {"heavy_at_start": sorted(m for m in ("tangent", "numpy", "tangent._engine")
                                    if m in sys.modules)}
    import other, pkg.mod
    out["values"] = [other.VALUE, pkg.mod.VALUE, importlib.import_module("json").__name__]
    for statement in ("import other.sub", "import nonexistent_module_xyz", "import pkg.nope",
                      "import broken"):
        try:
            exec(statement)
        except Exception as e:
            out[statement] = [type(e).__name__, str(e),
                              [(f.name, f.line) for f in traceback.extract_tb(e.__traceback__)]]
    out["after"] = sorted(m for m in ("tangent", "numpy", "tangent._engine") if m in sys.modules)
    print(json.dumps(out))
    """
    with_hook = run_json(tmp_path, code)
    without_hook = run_json(tmp_path, code, TANGENT_NO_IMPORT_HOOK="1")
    assert with_hook == without_hook
    assert with_hook["heavy_at_start"] == [] and with_hook["after"] == []
    assert with_hook["values"] == [41, 42, "json"]
    assert with_hook["import other.sub"][1] == "No module named 'other.sub'; 'other' is not a package"
    assert not (tmp_path / "__tangent__").exists()


def test_generated_dir_environment_variable(plain, tmp_path_factory):
    generated = tmp_path_factory.mktemp("generated")
    path = run_json(
        plain,
        """
        import json, sys
        from model.__grad__ import dloss
        print(json.dumps(sys.modules["model.__grad__"].__file__))
        """,
        TANGENT_GENERATED_DIR=str(generated),
    )
    assert os.path.dirname(path) == str(generated)
    assert not (plain / "__tangent__").exists()


def test_gradient_name_taken_by_user_function(tmp_path):
    # `dscale` exists in the module and `loss` calls it: `__grad__.dscale` is the gradient of
    # `scale`, while the generated code still calls the user's `dscale`.
    (tmp_path / "model.py").write_text(
        "def scale(v):\n    return 3.0 * v\n\n\n"
        "def dscale(v):\n    return 5.0 * v\n\n\n"
        "def loss(x):\n    return dscale(x) * x\n"
    )
    result = run_json(
        tmp_path,
        """
        import json
        import model, tangent
        from model.__grad__ import dscale, dloss, ddscale
        print(json.dumps([dscale(2.0), ddscale(2.0), dloss(2.0), tangent.grad(model.loss)(2.0)]))
        """,
    )
    assert result == [3.0, 5.0, 20.0, 20.0]


def test_old_generated_files_are_removed(plain):
    code = """
    import json, sys
    from model.__grad__ import dloss, dloss_dx
    print(json.dumps(sys.modules["model.__grad__"].__file__))
    """
    old = run_json(plain, code)
    directory = plain / "__tangent__" / "imports"
    old_files = sorted(n for n in os.listdir(directory) if n.endswith(".py"))
    assert len(old_files) == 2
    old_pycs = os.listdir(directory / "__pycache__")
    assert len(old_pycs) == 2
    for name in old_files:  # generated long ago
        os.utime(directory / name, (0, 0))
    (plain / "model.py").write_text(MODEL.replace("SCALE = 2.0", "SCALE = 4.0"))
    new = run_json(plain, code)
    assert new != old and os.path.isfile(new)
    remaining = sorted(n for n in os.listdir(directory) if n.endswith(".py"))
    assert not set(remaining) & set(old_files)
    assert not set(os.listdir(directory / "__pycache__")) & set(old_pycs)
    assert (directory / ".gitignore").read_text().splitlines()[-1] == "*"


def test_unusable_source_directory_falls_back_to_user_cache(plain, tmp_path_factory):
    # A file where the `__tangent__` directory would go (root ignores read-only modes, so this
    # is how the test makes the directory next to the source unusable).
    (plain / "__tangent__").write_text("not a directory")
    cache = tmp_path_factory.mktemp("xdg-cache")
    code = """
    import json, sys
    from model.__grad__ import dloss, dloss_dx
    print(json.dumps([sys.modules["model.__grad__"].__file__, dloss_dx.__code__.co_filename,
                      "tangent._engine" in sys.modules]))
    """
    main, lazy, engine = run_json(plain, code, XDG_CACHE_HOME=str(cache))
    assert engine is True
    for path in (main, lazy):
        assert os.path.dirname(path) == str(cache / "tangent" / "generated")
    assert run_json(plain, code, XDG_CACHE_HOME=str(cache)) == [main, lazy, False]
