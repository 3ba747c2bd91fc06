"""Stable error codes (docs/errors.md) in the Python API: every `TangentError` class has the
code and kind the page documents, the engine passes its code along, and the engine's limits
(deeply nested or very long code) raise `LimitExceededError`, never crash the interpreter."""

import re
import textwrap
import threading
from pathlib import Path

import pytest

import tangent
from tangent import errors
from test_errors import load

REPO = Path(__file__).resolve().parents[2]


def documented():
    """`{code: (kind, exception name)}` from the table of docs/errors.md."""
    text = (REPO / "docs" / "errors.md").read_text()
    rows = re.findall(r"^\| \[(T\d{3})\]\(#[^)]*\) \| `([a-z-]+)` \| `(\w+)`", text, re.MULTILINE)
    return {code: (kind, name) for code, kind, name in rows}


def test_every_exception_class_has_its_documented_code():
    table = documented()
    assert len(table) == len(errors.ERRORS_BY_KIND) == 12
    for code, (kind, name) in table.items():
        cls = getattr(tangent, name)
        assert issubclass(cls, tangent.TangentError)
        assert (cls.code, cls.kind) == (code, kind), name
        assert errors.ERRORS_BY_KIND[kind] is cls
        assert cls.help


def test_python_side_errors_render_like_the_engine():
    error = errors.make_error(errors.InvalidWrtError, "no parameter `z`", path="m.py", line=2, column=5,
                              source_line="    return x")
    text = str(error)
    assert text.startswith("error[T006 invalid-wrt]: no parameter `z`\n  --> m.py:2:5\n"), text
    assert text.endswith("help: " + errors.InvalidWrtError.help), text
    assert error.code == "T006"


def test_engine_errors_carry_their_code(tmp_path, monkeypatch):
    module, path, _ = load(tmp_path, monkeypatch, "codes_gen", "def gen(x):\n    yield x * 2.0\n")
    with pytest.raises(tangent.UnsupportedError) as info:
        tangent.grad(module.gen)
    error = info.value
    assert (error.code, error.kind) == ("T002", "unsupported")
    assert str(error).startswith("error[T002 unsupported]: "), str(error)
    assert f"{path.name}:2:5" in str(error)
    assert "\nhelp: " in str(error)
    engine = pytest.importorskip("tangent._engine")
    with pytest.raises(engine.EngineError) as info:
        engine.generate("def f(x):\n    return x $ 2\n", "bad.py", "f", None, 1, [0], True, False, "joint", False)
    assert info.value.code == "T001"
    kind, message, rendered, path, line, column = info.value.args
    assert (kind, path, line, column) == ("syntax", "bad.py", 2, 14)
    assert rendered.startswith("error[T001 syntax]: ")


DEEP = [
    pytest.param("def f(x):\n    return " + " + ".join(["x"] * 1100) + "\n", (2, 12), id="nested_sum"),
    pytest.param("def f(x):\n    return " + " + ".join(["x"] * 200_000) + "\n", (2, 8014), id="long_sum"),
    pytest.param("def f(x):\n    return " + "(" * 100_000 + "x" + ")" * 100_000 + "\n", (2, 212), id="parens"),
    pytest.param(
        "def f(x):\n"
        + "".join("    " * i + "if x > 0.0:\n" for i in range(1, 150))
        + "    " * 150 + "x = x * 2.0\n    return x\n",
        (102, 405),
        id="nested_ifs",
    ),
]


@pytest.mark.parametrize("source, where", DEEP)
def test_limits_raise_limit_exceeded_error(tmp_path, monkeypatch, source, where):
    # Python itself rejects some of these modules (201 brackets, 101 levels of indentation):
    # they go to the engine directly, as the text of a module it is asked to differentiate.
    engine = pytest.importorskip("tangent._engine")
    with pytest.raises(engine.EngineError) as info:
        engine.generate(source, "deep.py", "f", None, 1, [0], True, False, "joint", False)
    error = errors.error_from_engine(info.value)
    assert isinstance(error, tangent.LimitExceededError) and isinstance(error, ValueError)
    assert (error.code, error.kind, error.path, (error.line, error.column)) == ("T009", "limit", "deep.py", where)
    assert "panicked" not in str(error)


def test_limits_hold_on_a_small_thread_stack(tmp_path, monkeypatch):
    # The engine runs on a stack of its own: a Python thread with a small stack is fine, even
    # for code just within the limits.
    source = "def f(x):\n    return " + " + ".join(["x"] * 980) + "\n"
    module, _, _ = load(tmp_path, monkeypatch, "codes_deep_ok", source)
    results = []
    old = threading.stack_size(1 << 20)
    try:
        thread = threading.Thread(target=lambda: results.append(tangent.grad(module.f)(1.0)))
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old)
    assert results == [pytest.approx(980.0)]


def test_gradient_of_a_module_over_the_limit_is_an_error_not_a_crash(tmp_path, monkeypatch):
    source = textwrap.dedent(
        """
        def f(x):
            if x < 0.0:
                x = x * 2.0
        """
    ).lstrip() + "".join(f"    elif x < {i}.5:\n        x = x * 3.0\n" for i in range(1100)) + "    return x\n"
    module, path, _ = load(tmp_path, monkeypatch, "codes_elif", source)
    with pytest.raises(tangent.LimitExceededError) as info:
        tangent.grad(module.f)
    assert info.value.code == "T009"
    assert re.search(rf"{path.name}:\d+:\d+", str(info.value)), str(info.value)
