"""The Python side of tangent.grad/autodiff, with a fake engine: finding sources, calling the
engine with the right arguments, loading the generated module, caching, and error mapping.
Also self-tests of the gradcheck helpers. The real engine is only asked for its version and
for one diagnostic."""

import functools
import inspect
import linecache
import os
import pickle

import numpy
import pytest

import gradcheck
import tangent
import tangent.api


def square(x):
    return x * x


def product(x, y):
    return x * y


def make_scaled(scale):
    def scaled(a):
        return a * scale

    return scaled


GRADIENTS = {
    "square": "def dsquare(x, bout=1.0):\n    return 2.0 * x * bout\n",
    "product": (
        "def dproduct(x, y, bout=1.0):\n"
        "    # Grad of: return x * y\n"
        "    bx = y * bout\n"
        "    by = x * bout\n"
        "    return bx, by\n"
    ),
    "scaled": "def dscaled(a, bout=1.0):\n    return scale * bout\n",
    "failing": "def dfailing(x, bout=1.0):\n    raise ValueError('inside generated code')\n",
}


class FakeEngine:
    """Stands in for tangent._engine: returns hand-written gradients."""

    class EngineError(Exception):
        pass

    def __init__(self):
        self.calls = []

    def version(self):
        return "fake"

    def generate(self, module_source, path, function, function_source, first_line, wrt,
                 optimized, preserve_result, motion, seed_required, module_name=None, roots=None,
                 definition_line=None):
        self.calls.append(
            dict(module_source=module_source, path=path, function=function,
                 function_source=function_source, first_line=first_line, wrt=wrt,
                 optimized=optimized, preserve_result=preserve_result, motion=motion,
                 seed_required=seed_required, definition_line=definition_line)
        )
        if function not in GRADIENTS:
            raise self.EngineError(
                "function-not-found", f"no function `{function}`",
                f"error: no function `{function}` [function-not-found]\n  --> {path}\n",
                path, 0, 0,
            )
        return "import numpy\nimport tangent\n\n\n" + GRADIENTS[function], "d" + function

    def parameter_positions(self, module_source, path, function, names, line=None):
        self.calls.append(dict(positions=names, module_source=module_source, line=line))
        params = {"x": 0, "y": 1, "a": 0}
        return [params[n] for n in names]


@pytest.fixture
def fake(monkeypatch, tmp_path):
    engine = FakeEngine()
    monkeypatch.setattr(tangent, "_engine", engine)
    monkeypatch.setenv("TANGENT_GENERATED_DIR", str(tmp_path / "generated"))
    tangent.api._generated.clear()
    tangent.api._derivatives.clear()
    yield engine
    # Never leave fake results in the caches for tests that use the real engine.
    tangent.api._generated.clear()
    tangent.api._derivatives.clear()


def test_top_level_function(fake, tmp_path):
    df = tangent.grad(square)
    assert df(3.0) == 6.0
    (call,) = fake.calls
    assert call["function"] == "square"
    assert call["function_source"] is None
    assert call["path"] == os.path.abspath(__file__) or os.path.samefile(call["path"], __file__)
    with open(__file__) as f:
        assert call["module_source"] == f.read()
    assert call["wrt"] == [0]
    assert call["optimized"] is True and call["preserve_result"] is False
    assert call["motion"] == "joint" and call["seed_required"] is False
    assert call["first_line"] == square.__code__.co_firstlineno
    # The definition the function object was made from (the module may define `square` again).
    assert call["definition_line"] == square.__code__.co_firstlineno


def test_generated_file_source_and_doc(fake, tmp_path):
    df = tangent.grad(square)
    files = os.listdir(tmp_path / "generated")
    assert len(files) == 1
    name = files[0]
    assert name.startswith("test_api_loader_square_") and name.endswith(".py")
    assert len(name) == len("test_api_loader_square_") + 16 + 3
    assert inspect.getsource(df) == GRADIENTS["square"]
    assert df.__code__.co_filename == str(tmp_path / "generated" / name)
    assert "square" in df.__doc__ and "x" in df.__doc__
    # The text stays available to inspect/tracebacks after the file is gone.
    os.unlink(tmp_path / "generated" / name)
    linecache.checkcache()
    assert inspect.getsource(df) == GRADIENTS["square"]


def test_same_file_rewritten_identically(fake, tmp_path):
    tangent.grad(square)
    tangent.api._generated.clear()
    tangent.api._derivatives.clear()
    tangent.grad(square)
    assert len(os.listdir(tmp_path / "generated")) == 1  # no stray temp files


def test_traceback_points_into_generated_file(fake):
    def failing(x):
        return x

    df = tangent.grad(failing)
    with pytest.raises(ValueError) as info:
        df(1.0)
    frame = info.traceback[-1]
    assert os.path.basename(str(frame.path)).startswith("test_api_loader_failing_")
    assert "raise ValueError" in str(frame.statement)


def test_nested_function_and_closure(fake):
    scaled = make_scaled(4.0)
    df = tangent.grad(scaled)
    assert df(1.0) == 4.0
    (call,) = fake.calls
    assert call["function"] == "scaled"
    assert call["function_source"] == "def scaled(a):\n    return a * scale\n"
    assert call["first_line"] == scaled.__code__.co_firstlineno
    assert call["definition_line"] is None  # its own text, not a top-level definition
    # A second closure with the same code reuses the generated code with its own values.
    df2 = tangent.grad(make_scaled(10.0))
    assert df2(1.0) == 10.0
    assert df(1.0) == 4.0
    assert len(fake.calls) == 1


def test_cache(fake):
    df = tangent.grad(product, wrt=(0, 1))
    assert tangent.grad(product, wrt=(0, 1)) is df
    assert len(fake.calls) == 1
    tangent.grad(product, wrt=(0, 1), optimized=False)
    tangent.grad(product, wrt=(0, 1), preserve_result=True)
    tangent.autodiff(product, wrt=(0, 1))
    tangent.autodiff(product, wrt=(0, 1), motion="split")
    assert len(fake.calls) == 5
    assert [c["optimized"] for c in fake.calls] == [True, False, True, True, True]
    assert [c["preserve_result"] for c in fake.calls] == [False, False, True, False, False]
    assert [c["seed_required"] for c in fake.calls] == [False, False, False, True, True]
    assert [c["motion"] for c in fake.calls] == ["joint"] * 4 + ["split"]
    assert df(2.0, 3.0) == (3.0, 2.0)


def test_wrt_forms(fake):
    tangent.grad(product, wrt=1)
    assert fake.calls[-1]["wrt"] == [1]
    tangent.grad(product, wrt=[1, 0])
    assert fake.calls[-1]["wrt"] == [1, 0]
    tangent.grad(product, wrt=("y", 0))
    assert fake.calls[-2]["positions"] == ["y"]
    assert fake.calls[-1]["wrt"] == [1, 0]
    tangent.grad(product, wrt="x")
    assert fake.calls[-1]["wrt"] == [0]


def test_wrt_names_of_nested_function_keep_line_numbers(fake):
    scaled = make_scaled(1.0)
    tangent.grad(scaled, wrt="a")
    text = fake.calls[0]["module_source"]
    first = scaled.__code__.co_firstlineno
    assert text.splitlines()[first - 1] == "def scaled(a):"


@pytest.mark.parametrize("wrt", [-1, (), (0, True), 1.5, (None,)])
def test_invalid_wrt(fake, wrt):
    with pytest.raises(tangent.InvalidWrtError) as info:
        tangent.grad(product, wrt=wrt)
    assert isinstance(info.value, ValueError)
    assert info.value.kind == "invalid-wrt"
    assert not fake.calls


def test_wrapped_function_is_unwrapped(fake):
    @functools.wraps(square)
    def wrapper(*args):
        return square(*args)

    df = tangent.grad(wrapper)
    assert fake.calls[0]["function"] == "square"
    assert df(2.0) == 4.0


def test_rejects_non_functions(fake):
    # A lambda goes to the engine as the `def` it stands for, at its line (the real
    # engine's derivatives of lambdas: test_live_names.py); two on one line are told apart.
    f, g = (lambda x: x * 2.0), (lambda x: x * 3.0)
    with pytest.raises(tangent.FunctionNotFoundError):
        tangent.grad(g)
    call = fake.calls.pop()
    assert call["function"] == "_lambda"
    assert call["function_source"] == "def _lambda(x):\n    return x * 3.0\n"
    assert call["first_line"] == g.__code__.co_firstlineno
    with pytest.raises(TypeError):
        tangent.grad(numpy.sin)

    class C:
        @classmethod
        def m(cls, x):
            return x

    # Bound methods of objects are differentiated (test_objects.py); of classes, not.
    with pytest.raises(TypeError, match="bound method"):
        tangent.grad(C.m)
    assert not fake.calls


def test_source_not_found(fake):
    namespace = {}
    exec(compile("def g(x):\n    return x\n", "<nowhere>", "exec"), namespace)
    with pytest.raises(tangent.FunctionNotFoundError, match="cannot find the source"):
        tangent.grad(namespace["g"])


def test_modes_and_motions(fake):
    with pytest.raises(ValueError):
        tangent.autodiff(square, mode="sideways")
    with pytest.raises(ValueError):
        tangent.autodiff(square, motion="other")


def test_verbose_prints_source(fake, capsys):
    tangent.grad(square, verbose=1)
    assert "def dsquare" in capsys.readouterr().out
    tangent.grad(square, verbose=1)  # cached
    assert "def dsquare" in capsys.readouterr().out
    tangent.grad(square)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "kind, cls, base",
    [
        ("syntax", tangent.TangentSyntaxError, SyntaxError),
        ("unsupported", tangent.UnsupportedError, NotImplementedError),
        ("no-recipe", tangent.NoRecipeError, NotImplementedError),
        ("not-differentiable", tangent.NotDifferentiableError, ValueError),
        ("function-not-found", tangent.FunctionNotFoundError, ValueError),
        ("invalid-wrt", tangent.InvalidWrtError, ValueError),
        ("internal", tangent.InternalError, RuntimeError),
    ],
)
def test_engine_errors_are_mapped(fake, monkeypatch, kind, cls, base):
    rendered = f"error: bad thing [{kind}]\n  --> m.py:3:5\n  |\n3 | y = x\n  |     ^\n"

    def generate(*args, **kwargs):
        raise fake.EngineError(kind, "bad thing", rendered, "m.py", 3, 5)

    monkeypatch.setattr(fake, "generate", generate)
    with pytest.raises(cls) as info:
        tangent.grad(square)
    error = info.value
    assert isinstance(error, tangent.TangentError) and isinstance(error, base)
    assert (error.kind, error.path, error.line, error.column) == (kind, "m.py", 3, 5)
    assert error.message == "bad thing"
    assert str(error) == rendered.rstrip("\n")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is cls and str(again) == str(error) and again.line == 3


def test_gradcheck_helpers_with_fake_engine(fake):
    x = numpy.array([1.0, -2.0, 3.0])
    gradcheck.check_grad(square, (x,))
    gradcheck.check_grad(product, (2.0, 5.0), wrt=(0, 1))
    gradcheck.check_autodiff(product, (x, x + 1.0), numpy.array([1.0, 2.0, 3.0]), wrt=(0, 1))
    with pytest.raises(AssertionError):
        gradcheck.check_grad(make_scaled(2.0), (1.0,))  # the fake ignores `a`: still right
        gradcheck.check_grad(product, (2.0, 5.0), wrt=(1, 0))  # order swapped: wrong


def test_numeric_grad():
    def f(x, ys):
        return numpy.sum(x**2) * ys[0] + ys[1], ys[1]

    x = numpy.array([[1.0, 2.0], [3.0, 4.0]])
    gx, gys = gradcheck.numeric_grad(f, (x, [2.0, 3.0]), wrt=(0, 1))
    numpy.testing.assert_allclose(gx, 2 * x * 2.0, rtol=1e-6)
    numpy.testing.assert_allclose(gys, [30.0, 2.0], rtol=1e-6)
    vjp = gradcheck.numeric_vjp(f, (x, [2.0, 3.0]), (2.0, 0.0), wrt="ys")
    numpy.testing.assert_allclose(vjp, [60.0, 2.0], rtol=1e-6)


def test_real_engine_binding():
    from tangent import _engine

    assert isinstance(_engine.version(), str)
    assert issubclass(_engine.EngineError, Exception)
    with pytest.raises(_engine.EngineError) as info:
        _engine.generate("def f(x:\n", "bad.py", "f", None, 1, [0], True, False, "joint", False)
    kind, message, rendered, path, line, column = info.value.args
    assert kind in ("syntax", "internal")
    assert isinstance(message, str) and message in rendered
    assert path == "bad.py" and "bad.py" in rendered
    assert isinstance(line, int) and isinstance(column, int)
    with pytest.raises(ValueError, match="motion"):
        _engine.generate("", "p.py", "f", None, 1, [0], True, False, "sideways", False)
