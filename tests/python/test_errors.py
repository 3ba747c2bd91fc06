"""Errors users see: each is a `tangent.TangentError` that is also the built-in exception they
would catch, and its message points at file:line:col, shows the source line and a caret."""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tangent

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path, monkeypatch, name, source):
    """Writes `source` to tmp_path/name.py and imports it; returns (module, path, source)."""
    source = textwrap.dedent(source).lstrip("\n")
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module, path, source


def position_of(source, marker):
    """1-based (line, column) of the first occurrence of `marker` in `source`."""
    for number, line in enumerate(source.splitlines(), start=1):
        if marker in line:
            return number, line.index(marker) + 1
    raise AssertionError(f"{marker!r} not in source")


def line_text(source, line):
    return source.splitlines()[line - 1].strip()


def assert_points_at(message, path, source, marker, exact_column=True):
    """`message` has `path:line:col` of `marker`, the source line, and a caret."""
    line, column = position_of(source, marker)
    if exact_column:
        assert f"{path.name}:{line}:{column}" in message, message
    else:
        assert re.search(rf"{re.escape(path.name)}:{line}:\d+", message), message
    assert line_text(source, line) in message, message
    assert "^" in message, message


# --- exception types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, builtin",
    [
        ("TangentSyntaxError", SyntaxError),
        ("UnsupportedError", NotImplementedError),
        ("NoRecipeError", NotImplementedError),
        ("NotDifferentiableError", ValueError),
    ],
)
def test_exception_types(name, builtin):
    cls = getattr(tangent, name)
    assert issubclass(cls, tangent.TangentError)
    assert issubclass(cls, builtin)


# --- unsupported constructs ---------------------------------------------------------------------

UNSUPPORTED = [
    pytest.param(
        "gen",
        """
        import numpy as np


        def gen(x):
            y = x * 2.0
            yield y
        """,
        "yield y",
        True,
        id="yield",
    ),
    pytest.param(
        "uses_global",
        """
        counter = 0


        def uses_global(x):
            global counter
            counter += 1
            return x * 2.0
        """,
        "global counter",
        True,
        id="global",
    ),
    pytest.param(
        "uses_try",
        """
        def uses_try(x):
            y = x * 3.0
            try:
                y = x * 2.0
            except ZeroDivisionError:
                y = x
            return y
        """,
        "try:",
        True,
        id="try",
    ),
    pytest.param(
        "coroutine",
        """
        async def coroutine(x):
            return x * 2.0
        """,
        "async def",
        False,
        id="async_def",
    ),
    pytest.param(
        "outer",
        """
        def helper(v):
            try:
                return v * 2.0
            finally:
                pass


        def outer(x):
            return helper(x) * x
        """,
        "try:",
        True,
        id="try_in_helper",
    ),
]


@pytest.mark.parametrize("function, source, marker, exact_column", UNSUPPORTED)
def test_unsupported_construct(tmp_path, monkeypatch, function, source, marker, exact_column):
    module, path, source = load(tmp_path, monkeypatch, f"unsupported_{function}", source)
    with pytest.raises(tangent.UnsupportedError) as excinfo:
        tangent.grad(getattr(module, function))(1.5)
    assert isinstance(excinfo.value, NotImplementedError)
    assert isinstance(excinfo.value, tangent.TangentError)
    assert_points_at(str(excinfo.value), path, source, marker, exact_column)


# --- no recipe --------------------------------------------------------------------------------

UNKNOWN_CALL = """
from mystery_lib import mystery


def calls_unknown(x):
    y = x * 2.0
    z = mystery(y)
    return z * x


def unknown_on_constant(x):
    c = mystery(2.0)
    return x * c
"""


def load_unknown(tmp_path, monkeypatch):
    # A function the engine cannot see: defined in a module outside the project (another
    # directory on sys.path, like an installed library), so no source and no recipe.
    site = tmp_path.parent / f"{tmp_path.name}-site"
    site.mkdir(exist_ok=True)
    (site / "mystery_lib.py").write_text("def mystery(v):\n    return v * 3.0\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "mystery_lib", raising=False)
    return load(tmp_path, monkeypatch, "unknown_call", UNKNOWN_CALL)


def test_unknown_function_on_active_value(tmp_path, monkeypatch):
    module, path, source = load_unknown(tmp_path, monkeypatch)
    with pytest.raises(tangent.NoRecipeError) as excinfo:
        tangent.grad(module.calls_unknown)(1.5)
    assert isinstance(excinfo.value, NotImplementedError)
    assert isinstance(excinfo.value, tangent.TangentError)
    assert_points_at(str(excinfo.value), path, source, "mystery(y)")
    assert "mystery" in str(excinfo.value)


def test_unknown_function_on_inactive_value_is_fine(tmp_path, monkeypatch):
    module, _, _ = load_unknown(tmp_path, monkeypatch)
    assert tangent.grad(module.unknown_on_constant)(1.5) == pytest.approx(6.0)


# --- not differentiable -------------------------------------------------------------------------

INTEGER_BOUND = """
def repeat(x, n):
    s = x
    for i in range(n):
        s = s * x
    return s
"""


@pytest.mark.parametrize("wrt", [(1,), ("n",)], ids=["position", "name"])
def test_wrt_integer_loop_bound(tmp_path, monkeypatch, wrt):
    module, path, source = load(tmp_path, monkeypatch, "integer_bound", INTEGER_BOUND)
    with pytest.raises(tangent.NotDifferentiableError) as excinfo:
        tangent.grad(module.repeat, wrt=wrt)(1.5, 3)
    assert isinstance(excinfo.value, ValueError)
    assert isinstance(excinfo.value, tangent.TangentError)
    message = str(excinfo.value)
    # Either the parameter or its use as a bound is a fair place to point at.
    places = [position_of(source, "def repeat")[0], position_of(source, "range(n)")[0]]
    found = re.findall(rf"{re.escape(path.name)}:(\d+):\d+", message)
    assert any(int(line) in places for line in found), message
    assert "^" in message, message


def test_wrt_integer_loop_bound_other_parameter_is_fine(tmp_path, monkeypatch):
    module, _, _ = load(tmp_path, monkeypatch, "integer_bound_ok", INTEGER_BOUND)
    assert tangent.grad(module.repeat)(1.5, 3) == pytest.approx(4 * 1.5**3)


# --- syntax errors ----------------------------------------------------------------------------

GOOD = """
import numpy as np


def good(x):
    return np.sin(x) * x
"""

BROKEN = GOOD + """

def broken(x):
    return x $ 2
"""


def test_syntax_error_in_edited_module(tmp_path, monkeypatch):
    # The module imported fine, then its file was edited and no longer parses: tangent reads
    # the current source, so it reports the syntax error where it is.
    module, path, _ = load(tmp_path, monkeypatch, "edited", GOOD)
    source = textwrap.dedent(BROKEN).lstrip("\n")
    path.write_text(source)
    with pytest.raises(tangent.TangentSyntaxError) as excinfo:
        tangent.grad(module.good)(1.5)
    assert isinstance(excinfo.value, SyntaxError)
    assert isinstance(excinfo.value, tangent.TangentError)
    assert_points_at(str(excinfo.value), path, source, "$", exact_column=False)


def test_syntax_error_from_engine(tmp_path):
    engine = pytest.importorskip("tangent._engine")
    source = textwrap.dedent(BROKEN).lstrip("\n")
    path = tmp_path / "broken.py"
    with pytest.raises(engine.EngineError) as excinfo:
        engine.generate(
            module_source=source,
            path=str(path),
            function="good",
            function_source=None,
            function_first_line=1,
            wrt=[0],
            optimized=True,
            preserve_result=False,
            motion="joint",
            seed_required=False,
        )
    kind, _message, rendered, _path, line, _column = excinfo.value.args
    assert kind == "syntax"
    assert line == position_of(source, "$")[0]
    assert_points_at(rendered, path, source, "$", exact_column=False)


def cli_binary():
    name = "tangent.exe" if os.name == "nt" else "tangent"
    for profile in ("debug", "release"):
        candidate = REPO / "target" / profile / name
        if candidate.is_file():
            return str(candidate)
    return None


def test_syntax_error_from_cli(tmp_path):
    binary = cli_binary()
    if binary is None:
        pytest.skip("the tangent CLI is not built (cargo build -p tangent-cli)")
    source = textwrap.dedent(BROKEN).lstrip("\n")
    path = tmp_path / "broken.py"
    path.write_text(source)
    result = subprocess.run(
        [binary, "grad", f"{path.name}:good"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert_points_at(result.stderr, path, source, "$", exact_column=False)


def test_cli_missing_file_is_an_io_error(tmp_path):
    binary = cli_binary()
    if binary is None:
        pytest.skip("the tangent CLI is not built (cargo build -p tangent-cli)")
    result = subprocess.run(
        [binary, "grad", "no_such_file.py:f"], cwd=tmp_path, capture_output=True, text=True
    )
    # Every problem with the file is a diagnostic with a code (docs/errors.md): exit 1.
    assert result.returncode == 1
    assert result.stderr.startswith("error[T010 io]: "), result.stderr
