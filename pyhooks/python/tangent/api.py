"""`tangent.grad` and `tangent.autodiff`: find the source, call the engine, load the result.

The engine (``tangent._engine``, Rust) turns source text into source text and never runs user
code. This module finds the text of the function and its module, calls the engine, writes the
generated source to a real file (so tracebacks and ``inspect.getsource`` show it) and executes
it in a copy of the function's globals.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import linecache
import os
import re
import tempfile
import sys
import textwrap
import threading
import types
import weakref

from tangent import _live, _project
from tangent.errors import (
    FunctionNotFoundError,
    NoRecipeError,
    InvalidDirectionError,
    InvalidWrtError,
    TangentError,
    UnsupportedError,
    error_from_engine,
    make_error,
)

__all__ = ["grad", "autodiff", "jvp", "vjp", "hvp"]

#: Environment variable naming the directory where generated sources are written.
GENERATED_DIR_ENV = "TANGENT_GENERATED_DIR"

_MOTIONS = ("joint", "split")


def grad(
    f,
    wrt=(0,),
    optimized=True,
    mode="reverse",
    motion="joint",
    preserve_result=False,
    check_dims=True,
    verbose=0,
    checkpoint=False,
):
    """Returns a function computing the gradient of ``f``.

    ``df(*args)`` takes ``f``'s arguments and returns the gradient with respect to the
    parameter at position ``wrt`` (an int, a parameter name, or a tuple of them; a tuple gives
    a tuple of gradients). The output seed defaults to ``1.0``; it may be passed after ``f``'s
    arguments, positionally or as ``init_grad=``. With ``preserve_result=True`` it returns
    ``(gradient, value)`` (``(dx, dy, value)`` for several ``wrt``).

    The parameters are the original google/tangent's, in its order. ``mode='forward'`` returns
    the forward-mode derivative instead: ``df(*args, *tangents)``, one tangent per ``wrt``
    parameter (see :func:`jvp`). ``motion='split'`` generates separate forward and backward
    functions (see :func:`autodiff`). ``optimized`` runs the engine's optimization passes on
    the generated code. ``verbose >= 1`` prints the generated source. ``checkpoint=True``
    checkpoints ``f``'s loops as ``@tangent.checkpoint`` on it would (see
    :func:`tangent.checkpoint`; reverse mode). ``check_dims`` is accepted for compatibility
    and currently has no effect.
    """
    from tangent.grad_util import INPUT_DERIVATIVE

    del check_dims  # accepted for API compatibility
    return _autodiff(
        "tangent.grad",
        f,
        wrt=wrt,
        optimized=optimized,
        motion=motion,
        mode=mode,
        preserve_result=preserve_result,
        input_derivative=INPUT_DERIVATIVE.DefaultOne,
        verbose=verbose,
        checkpoint=checkpoint,
    )


def autodiff(
    f,
    wrt=(0,),
    optimized=True,
    motion="joint",
    mode="reverse",
    preserve_result=False,
    check_dims=True,
    input_derivative=None,
    verbose=0,
    checkpoint=False,
):
    """Returns a function computing a vector-Jacobian product of ``f`` (reverse mode).

    ``df(*args, seed)`` takes ``f``'s arguments followed by the required adjoint of ``f``'s
    output (a tuple of seeds when ``f`` returns a tuple; by keyword, ``init_grad=seed``) and
    returns the adjoints of the parameters in ``wrt``. ``motion`` is ``'joint'`` or
    ``'split'`` (split also generates ``<f>_forward`` and ``<f>_backward`` in the same
    module). ``mode='forward'`` returns the forward-mode derivative instead (see :func:`jvp`):
    ``jf(*args, *tangents)``. ``checkpoint=True``: as for :func:`grad` (reverse mode; forward
    mode keeps nothing). ``input_derivative=INPUT_DERIVATIVE.DefaultOne`` (from
    ``tangent.grad_util``, as in google/tangent) makes the seed optional, defaulting to 1.0.
    ``check_dims`` is accepted for compatibility and has no effect.
    """
    del check_dims  # accepted for API compatibility
    return _autodiff(
        "tangent.autodiff",
        f,
        wrt=wrt,
        optimized=optimized,
        motion=motion,
        mode=mode,
        preserve_result=preserve_result,
        input_derivative=input_derivative,
        verbose=verbose,
        checkpoint=checkpoint,
    )


def _autodiff(
    caller, f, *, wrt, optimized, motion, mode, preserve_result, input_derivative, verbose, checkpoint
):
    """`grad` and `autodiff` (``caller`` names the one called, for error messages)."""
    from tangent.grad_util import INPUT_DERIVATIVE

    if input_derivative is None:
        input_derivative = INPUT_DERIVATIVE.Required
    if not isinstance(input_derivative, INPUT_DERIVATIVE):
        raise ValueError(
            f"{caller}: input_derivative must be INPUT_DERIVATIVE.Required or "
            f"INPUT_DERIVATIVE.DefaultOne, not {input_derivative!r}"
        )
    if mode == "forward":
        # The tangents of the `wrt` parameters follow f's arguments; returns the directional
        # derivative (and the value after it with preserve_result=True). `motion` and
        # `checkpoint` concern reverse mode only.
        return _derivative(
            f,
            wrt=wrt,
            optimized=optimized,
            preserve_result=preserve_result,
            motion="forward",
            seed_required=True,
            verbose=verbose,
        )
    if mode != "reverse":
        raise ValueError(f"{caller}: mode must be 'reverse' or 'forward', not {mode!r}")
    if motion not in _MOTIONS:
        raise ValueError(f"{caller}: motion must be 'joint' or 'split', not {motion!r}")
    return _derivative(
        f,
        wrt=wrt,
        optimized=optimized,
        preserve_result=preserve_result,
        motion=motion,
        seed_required=input_derivative is INPUT_DERIVATIVE.Required,
        checkpoint=checkpoint,
        verbose=verbose,
    )


def jvp(f, wrt=(0,), optimized=True, preserve_result=False, verbose=0):
    """Forward mode: ``jf(*args, *tangents)`` returns the directional derivative of ``f`` at
    ``args`` along one tangent per ``wrt`` parameter (``autodiff(f, mode='forward')``).

    >>> jf = tangent.jvp(loss, wrt=(0,))
    >>> jf(w, X, y, direction)          # d/dt loss(w + t * direction, X, y) at t = 0
    """
    return autodiff(f, wrt=wrt, optimized=optimized, mode="forward", preserve_result=preserve_result, verbose=verbose)


def vjp(f, wrt=(0,), optimized=True, motion="joint", preserve_result=False, verbose=0, checkpoint=False):
    """Reverse mode: ``vf(*args, seed)`` returns seed^T J, the adjoints of the ``wrt``
    parameters for the output adjoint ``seed`` (``autodiff(f)``).

    >>> vf = tangent.vjp(predict)
    >>> vf(W, x, output_seed)
    """
    return autodiff(f, wrt=wrt, optimized=optimized, motion=motion, preserve_result=preserve_result, verbose=verbose, checkpoint=checkpoint)


def hvp(f, wrt=(0,), optimized=True, verbose=0, checkpoint=False):
    """Hessian-vector products, forward over reverse: ``hf(*args, *vectors)`` returns H v,
    where H is the Hessian of the scalar ``f`` w.r.t. the ``wrt`` parameters (one vector per
    parameter; a tuple of blocks for several). The generated source holds the gradient and its
    forward derivative, both readable.

    >>> hf = tangent.hvp(loss)
    >>> hf(w, X, y, v)                  # the Hessian of loss w.r.t. w, times v
    """
    return _derivative(
        f,
        wrt=wrt,
        optimized=optimized,
        preserve_result=False,
        motion="hvp",
        seed_required=False,
        verbose=verbose,
        checkpoint=checkpoint,
    )


# --------------------------------------------------------------------------------------------
# Implementation


class _Generated:
    """One engine result, compiled: shared by every function object with the same code.

    ``context`` is the source of the modules its code runs among (the user's module, then the
    modules that one was generated from): differentiating a generated function again resolves
    the names it uses but does not define (``np``, the user's helpers) there. ``origin`` is
    the user's file, where the project around it is found.
    """

    __slots__ = ("source", "entry", "filename", "code", "doc", "context", "origin")

    def __init__(self, source, entry, filename, code, doc, context=None, origin=None):
        self.source = source
        self.entry = entry
        self.filename = filename
        self.code = code
        self.doc = doc
        self.context = context
        self.origin = origin


_lock = threading.Lock()
# (code object, module source hash, options) -> _Generated
_generated = {}
# function object -> {(module source hash, options): derivative function}
_derivatives = weakref.WeakKeyDictionary()
# generated file -> _Generated, to find the engine result of any function of a generated module
_generated_by_file = {}
_fallback_dir = None


def _engine():
    try:
        from tangent import _engine as engine
    except ImportError as error:
        engine, cause = None, error
    else:
        # `tangent._engine` is None when the extension failed to import (see __init__.py).
        cause = None if engine is not None else _package_engine_error()
    if engine is None:
        raise ImportError(
            "tangent._engine (the Rust engine) is not built; run ./scripts/test.sh or "
            "`maturin develop` in pyhooks/ to build it"
        ) from cause
    return engine


def _package_engine_error():
    import tangent

    return getattr(tangent, "_engine_import_error", None)


def _engine_name(fn):
    """The name the engine finds ``fn`` under: ``Class.method`` for a method of a top-level
    class (the engine then resolves ``self.other(...)`` to the class's methods), else the
    function's name."""
    qualname = fn.__qualname__
    if qualname.count(".") == 1 and "<" not in qualname:
        return qualname
    return fn.__name__


def _plain_function(f):
    fn = inspect.unwrap(f, stop=lambda g: not hasattr(g, "__wrapped__"))
    if isinstance(fn, (staticmethod, classmethod)):
        fn = fn.__func__
    if inspect.ismethod(fn):
        raise TypeError(
            "tangent: cannot differentiate a bound method of a class method; differentiate "
            f"the function ({type(fn.__self__).__name__}.{fn.__func__.__name__})"
        )
    if not inspect.isfunction(fn):
        raise TypeError(
            "tangent: can only differentiate a Python function defined with `def`, "
            f"not {type(fn).__name__} {fn!r}"
        )
    return fn


class _Source:
    __slots__ = ("path", "module_source", "module_hash", "function_source", "first_line", "engine_name")

    def replaced(self, **changes):
        """A copy with some fields changed; a new `module_source` gets its own hash."""
        copy = _Source()
        for name in self.__slots__:
            setattr(copy, name, changes.get(name, getattr(self, name)))
        if "module_source" in changes:
            copy.module_hash = _text_hash(copy.module_source)
        return copy


def _text_hash(text):
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _find_source(fn):
    code = fn.__code__
    path = None
    try:
        path = inspect.getsourcefile(fn)
    except TypeError:
        path = None
    if path is None and code.co_filename in linecache.cache:
        path = code.co_filename
    if path is not None and not _live.readable_source(fn):
        # Only a notebook cell's text (`<ipython-input-...>`) stands for a file; never
        # `<string>`, whose cached text may be another string's.
        path = None
    lines = []
    if path is not None:
        linecache.checkcache(path)
        lines = linecache.getlines(path, fn.__globals__)
    if not lines:
        raise make_error(
            FunctionNotFoundError,
            f"cannot find the source of `{fn.__qualname__}` (defined in {code.co_filename}); "
            "Tangent needs functions defined in a file or a notebook cell",
            path=code.co_filename,
        )
    src = _Source()
    src.path = path
    src.module_source = "".join(lines)
    src.module_hash = _text_hash(src.module_source)
    src.first_line = code.co_firstlineno
    src.engine_name = _engine_name(fn)
    if fn.__name__ == "<lambda>":
        # A lambda: differentiated as the `def` it stands for, at its line.
        text = _live.lambda_source(fn)
        if text is None:
            raise make_error(
                UnsupportedError,
                "cannot find this lambda's source: its line holds several lambdas with the same "
                "parameters; define the function with `def`",
                path=path,
                line=code.co_firstlineno,
                source_line=linecache.getline(path, code.co_firstlineno).rstrip("\r\n"),
            )
        src.engine_name = _LAMBDA_NAME
        src.function_source = f"def {_LAMBDA_NAME}{text}"
        return src
    if fn.__qualname__ == fn.__name__ or _engine_name(fn) == fn.__qualname__:
        src.function_source = None
    else:
        try:
            src.function_source = textwrap.dedent(inspect.getsource(fn))
        except OSError as error:
            raise make_error(
                FunctionNotFoundError,
                f"cannot find the source of `{fn.__qualname__}`: {error}",
                path=path,
                line=code.co_firstlineno,
            ) from None
    return src


# The name a lambda is differentiated under (`d_lambda`).
_LAMBDA_NAME = "_lambda"


def _object_classes(instance, fn, depth=3):
    """``(class, path, held class)`` for the objects ``instance`` holds in attributes (to
    ``depth`` levels), seen from each object on the way and each of its classes (a method
    inherited from a base class is differentiated as that class's): in a method of ``class``,
    ``self.<path>`` holds a ``held class``. Classes of ``fn``'s module only; a path where two
    objects of one class hold different classes is left out (the derivative would then refuse
    the call rather than guess)."""

    def module_classes(obj):
        return [c.__name__ for c in type(obj).__mro__ if _is_module_class(fn, c)]

    def held(obj, level):
        """``(relative path, object)`` for the objects under ``obj``."""
        if level == 0:
            return
        attributes = getattr(obj, "__dict__", None)
        if not isinstance(attributes, dict):
            return
        for name, value in attributes.items():
            if name.startswith("__"):
                continue
            if isinstance(value, (list, tuple)) and len(value) <= _MAX_UNROLLED:
                # A list of objects (`self.layers`): each item, for a loop over it.
                for i, item in enumerate(value):
                    if module_classes(item):
                        yield f"{name}[{i}]", item
                        for rest, deeper in held(item, level - 1):
                            yield f"{name}[{i}].{rest}", deeper
                continue
            if not module_classes(value):
                continue
            yield name, value
            for rest, deeper in held(value, level - 1):
                yield f"{name}.{rest}", deeper

    found, conflicts = {}, set()
    seen, todo = set(), [(instance, depth)]
    while todo:
        obj, level = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        owners = module_classes(obj)
        for path, value in held(obj, level):
            cls = type(value).__name__
            for owner in owners:
                key = (owner, f"self.{path}")
                if found.setdefault(key, cls) != cls:
                    conflicts.add(key)
            if "." not in path:
                todo.append((value, level - 1))
    return tuple(sorted((owner, path, cls) for (owner, path), cls in found.items() if (owner, path) not in conflicts))


_NO_RECIPE = re.compile(r"no (?:forward-mode )?derivative known for `([\w.]+)`")
_PLACEHOLDERS = ("x", "y", "z", "u", "v", "w")


def _explained(error, fn):
    """``error`` with what the running program tells about a callee with no derivative: the
    recipe the help suggests names the callee's real parameters, and a note says when the
    callee is compiled code or a function of an installed package."""
    if error.kind != "no-recipe":
        return error
    found = _NO_RECIPE.search(error.message or "")
    callee = _resolve_dotted(fn, found.group(1)) if found else None
    if callee is None:
        return error
    try:
        names = [
            p.name
            for p in inspect.signature(callee).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        names = []
    placeholders = list(_PLACEHOLDERS) + [f"x{i}" for i in range(len(_PLACEHOLDERS), 32)]
    mapping = {placeholders[i]: n for i, n in enumerate(names) if n not in placeholders}
    head, sep, suggestion = error.rendered.partition("help: ")
    if mapping and sep:
        # Only inside the suggested recipe: its parameter list, `d[...]` and comments.
        real = lambda name: mapping.get(name, name)  # noqa: E731
        suggestion = re.sub(r"\bd\[(\w+)\]", lambda m: f"d[{real(m.group(1))}]", suggestion)
        suggestion = re.sub(
            r"(def \w+\(result, )([^)]*)\)",
            lambda m: m.group(1) + ", ".join(real(a.strip()) for a in m.group(2).split(",")) + ")",
            suggestion,
        )
        suggestion = re.sub(r"(of )(\w+)$", lambda m: m.group(1) + real(m.group(2)), suggestion, flags=re.M)
    rendered = head + sep + suggestion
    where = _callee_origin(callee)
    if where:
        rendered = rendered.rstrip("\n") + f"\nnote: `{found.group(1)}` {where}\n"
    error.rendered = rendered
    error.args = (rendered,)
    return error


def _resolve_dotted(fn, dotted):
    """The callable ``dotted`` (``scipy.linalg.logm``, ``norm.logpdf``) names in ``fn``'s
    globals, or None. Attributes are only read (modules' loaded submodules, class members)."""
    import builtins

    head, *rest = dotted.split(".")
    value = fn.__globals__.get(head, getattr(builtins, head, None))
    for part in rest:
        if value is None:
            return None
        if isinstance(value, types.ModuleType):
            value = value.__dict__.get(part)
        else:
            value = inspect.getattr_static(value, part, None)
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
    return value if callable(value) else None


def _callee_origin(callee):
    """Where a callee with no derivative lives, when that explains why Tangent cannot follow
    it: compiled code, or a function of an installed package."""
    if not inspect.isfunction(callee) and not inspect.ismethod(callee):
        return f"is compiled code ({type(callee).__name__}): Tangent cannot read its source; give it a recipe"
    path = getattr(callee.__code__, "co_filename", "") or ""
    if path and _live._installed_file(path):
        package = (getattr(callee, "__module__", "") or "").split(".")[0]
        return f"is a function of the installed package `{package}` ({path}); give it a recipe"
    return None


def _sibling_functions(fn):
    """The functions defined in the same enclosing function as ``fn`` (a factory's
    ``predict``, read by its ``loss``) that ``fn`` reaches through closures, directly or
    through one another."""
    prefix = fn.__qualname__.rsplit(".<locals>.", 1)[0] + ".<locals>."
    out = {}
    todo = [fn]
    while todo:
        f = todo.pop()
        for name, cell in zip(f.__code__.co_freevars, f.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if (
                inspect.isfunction(value)
                and value.__qualname__ == prefix + value.__name__ == prefix + name
                and value is not fn
                and name not in out
            ):
                out[name] = value
                todo.append(value)
    return out


def _with_sibling_closures(src, fn):
    """``src`` for a closure that calls functions defined beside it in a top-level factory:
    the module's text with that factory's nested definitions lifted to the top level at their
    own lines (its other lines blank), so that the engine differentiates the calls as calls of
    module functions (and error locations stay the file's). None when that does not apply or
    a lifted name would clash with a top-level one."""
    siblings = _sibling_functions(fn)
    factory_name = fn.__qualname__.rsplit(".<locals>.", 1)[0]
    if not siblings or "." in factory_name or "<" in factory_name:
        return None
    try:
        tree = ast.parse(src.module_source)
    except SyntaxError:
        return None
    # The factory `fn` was made by (the module may define its name again).
    line = fn.__code__.co_firstlineno
    factories = [
        n
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        and n.name == factory_name
        and n.lineno < line <= n.end_lineno
    ]
    if not factories:
        return None
    factory = factories[-1]
    nested = [n for n in factory.body if isinstance(n, ast.FunctionDef)]
    names = {n.name for n in nested}
    top = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    top |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    if fn.__name__ not in names or not set(siblings) <= names or names & (top - {factory_name}):
        return None
    lines = src.module_source.splitlines(keepends=True)
    first = min([factory.lineno] + [d.lineno for d in factory.decorator_list]) - 1
    kept = {}
    for n in nested:
        start = min([n.lineno] + [d.lineno for d in n.decorator_list]) - 1
        for i in range(start, n.end_lineno):
            kept[i] = n.col_offset
    for i in range(first, factory.end_lineno):
        if i in kept:
            indent = kept[i]
            line = lines[i]
            lines[i] = line[indent:] if not line[:indent].strip() else line.lstrip()
        else:
            lines[i] = "\n" if lines[i].endswith("\n") else ""
    return src.replaced(module_source="".join(lines), engine_name=fn.__name__, function_source=None)


def _as_method_of(src, fn, cls):
    """``src`` for ``fn`` looked up on ``cls``, a top-level class of ``fn``'s module that
    inherits ``fn`` (a bound method of a subclass instance): the engine sees the method under
    ``class cls:``, so that ``self.other(...)`` calls ``cls``'s methods, as Python does. None
    when ``fn`` is ``cls``'s own method or ``cls`` is not such a class."""
    name = fn.__name__
    if (
        cls is None
        or cls.__qualname__ != cls.__name__
        or fn.__globals__.get(cls.__name__) is not cls
        or getattr(cls, name, None) is not fn
        or src.engine_name == f"{cls.__name__}.{name}"
        or src.engine_name.count(".") != 1
    ):
        return None
    try:
        method = inspect.getsource(fn)
    except OSError:
        return None
    return src.replaced(
        engine_name=f"{cls.__name__}.{name}",
        function_source=f"class {cls.__name__}:\n{method}",
        first_line=src.first_line - 1,  # the header stands on the line before the method
    )


def _with_checkpointing(src, fn):
    """``src`` with ``@tangent.checkpoint`` on the function (``checkpoint=True``): the engine
    sees the decorated text, the file's line numbers kept."""
    if src.function_source is not None:
        text, first_line = src.function_source, src.first_line
    else:
        try:
            text, first_line = inspect.getsource(fn), src.first_line
        except OSError as error:
            raise make_error(FunctionNotFoundError, f"cannot find the source of `{fn.__qualname__}`: {error}", path=src.path) from None
        if "." in src.engine_name:  # a method: under its class
            text = f"class {src.engine_name.split('.')[0]}:\n{text}"
            first_line -= 1
        else:  # a function, maybe nested in another
            text = textwrap.dedent(text)
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith(("def ", "@", "async def ")))
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at, f"{indent}@tangent.checkpoint\n")
    # The inserted line stands before the definition.
    return src.replaced(function_source="".join(lines), first_line=first_line - 1)


def _wrt_items(src, wrt):
    """``wrt`` as a tuple of validated positions (int >= 0) and parameter names (str)."""
    if isinstance(wrt, (int, str)):
        items = (wrt,)
    else:
        try:
            items = tuple(wrt)
        except TypeError:
            raise make_error(
                InvalidWrtError,
                f"wrt must be a parameter position (int), a name (str) or a tuple of them, "
                f"not {wrt!r}",
                path=src.path,
                line=src.first_line,
            ) from None
    if not items:
        raise make_error(
            InvalidWrtError,
            "wrt is empty: name at least one parameter",
            path=src.path,
            line=src.first_line,
        )
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise make_error(
                InvalidWrtError,
                f"wrt entries must be parameter positions (int) or names (str), not {item!r}",
                path=src.path,
                line=src.first_line,
            )
        if isinstance(item, int) and item < 0:
            raise make_error(
                InvalidWrtError,
                f"wrt position {item} is negative; positions count parameters from 0",
                path=src.path,
                line=src.first_line,
            )
    return tuple(item if isinstance(item, str) else int(item) for item in items)


def _wrt_positions(fn, src, items):
    """The parameter positions of validated ``wrt`` items (names are resolved by the engine)."""
    names = [item for item in items if isinstance(item, str)]
    if not names:
        return items
    engine = _engine()
    if src.function_source is None:
        text, line = src.module_source, src.first_line
    else:
        # Pad so that line numbers in diagnostics are those of the file.
        text, line = "\n" * (src.first_line - 1) + src.function_source, None
    try:
        positions = engine.parameter_positions(text, src.path, src.engine_name, names, line=line)
    except engine.EngineError as error:
        raise error_from_engine(error) from None
    by_name = dict(zip(names, positions))
    return tuple(by_name[item] if isinstance(item, str) else int(item) for item in items)


def _project_of(fn, path):
    """The module name and project root of ``fn``'s module (in file ``path``), so that calls
    into other modules of the project are differentiated too (their derivatives come through
    the import hook)."""
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    name = getattr(module, "__name__", None)
    if not name or name == "__main__" or not path or not os.path.isfile(path):
        return {}
    from tangent._import_hook import _project_roots

    return {"module_name": name, "roots": _project_roots(name, path)}


def _generated_context(fn):
    """``(context, origin)`` when ``fn`` is itself a generated derivative (differentiated
    again: second and higher derivatives): the source its code runs among, and the user's
    file. ``(None, None)`` for the user's own functions."""
    filename = fn.__code__.co_filename
    parent = getattr(fn, "__tangent_generated__", None)
    if parent is None:
        # Helpers of a generated module (`d<helper>`, split-motion halves) share its file.
        parent = _generated_by_file.get(filename)
    if parent is not None and parent.filename == filename:
        return parent.context, parent.origin
    source_path = getattr(fn, "__globals__", {}).get("__tangent_source_path__")
    if source_path and filename != source_path and os.path.isfile(source_path):
        # A function of an import-hook module (`model.__grad__`): it runs among the user
        # module's names.
        linecache.checkcache(source_path)
        return "".join(linecache.getlines(source_path)), source_path
    return None, None


def _derivative(f, *, wrt, optimized, preserve_result, motion, seed_required, verbose, instance_of=None, instance=None, checkpoint=False):
    options = dict(optimized=optimized, preserve_result=preserve_result, motion=motion, seed_required=seed_required, verbose=verbose, checkpoint=checkpoint)
    if isinstance(f, functools.partial):
        # `partial(f, *args, **kwargs)`: positions in `wrt` count the parameters it leaves open.
        wrapper = _partial_function(f)
        if wrapper is not None:
            # A function calling `f` with the bound arguments, differentiated as written:
            # functions among them are followed (specialized), as at any call.
            return _derivative(wrapper, wrt=wrt, instance_of=instance_of, **options)
        df = _derivative(f.func, wrt=_shifted(wrt, len(f.args)), instance_of=instance_of, **options)
        return functools.partial(df, *f.args, **f.keywords)
    if not inspect.isfunction(f) and not inspect.ismethod(f) and inspect.isfunction(getattr(type(f), "__call__", None)):
        # A callable object (`tangent.grad(quad)`): its `__call__`, bound to it.
        f = types.MethodType(type(f).__call__, f)
    if inspect.ismethod(f) and inspect.isfunction(f.__func__) and not isinstance(f.__self__, type):
        # A bound method (`model.loss`): positions count its parameters after `self` (names
        # may also name `self`); the derivative is bound to the same object.
        df = _derivative(f.__func__, wrt=_shifted(wrt, 1), instance_of=type(f.__self__), instance=f.__self__, **options)
        return types.MethodType(df, f.__self__)
    fn = _plain_function(f)
    options.update(instance_of=instance_of, instance=instance)
    subclasses = _overriding_subclasses(fn) if instance is None and instance_of is None else ()
    try:
        df = _derivative_of(fn, wrt=wrt, **options)
        if instance is None and not hasattr(fn, "__tangent_source__"):
            df = _with_other_functions(df, fn, wrt, options)
        if subclasses:
            df = _per_class(fn, wrt, options, df, None)
        return df
    except TangentError as error:
        if subclasses:
            # A method of a base class (`tangent.grad(ExpRegressor.loss)` is `Regressor.loss`)
            # calling what subclasses define: differentiated for the class of the object it
            # is called on.
            return _per_class(fn, wrt, options, None, error)
        return _derivative_refused(fn, wrt, options, instance, error)


def _derivative_refused(fn, wrt, options, instance, error):
    """What a refusal of ``fn``'s derivative leaves: a derivative made when it is called (for
    the objects, keywords or functions it is given), or ``error``. (A bound method's
    ``instance`` already tells what the call would.)"""
    if instance is not None:
        raise error
    if isinstance(error, UnsupportedError):
        if _COMPUTED_CALLEE in str(error) and _module_has_classes(fn):
            # An object of a list passed in, called (`sum(term(x) for term in terms)`).
            return _specialized_for_objects(fn, wrt, options, error)
        code = fn.__code__
        if (
            "`**kwargs` parameters" in (error.message or "")
            and code.co_flags & inspect.CO_VARKEYWORDS
            and not code.co_flags & inspect.CO_VARARGS
            and not hasattr(fn, "__tangent_source__")
        ):
            # `def loss(w, X, y, **penalty_kwargs)`: the keywords it is given, bound when the
            # derivative is called.
            return _specialized_for_keywords(fn, wrt, options, error)
        raise error
    if isinstance(error, NoRecipeError):
        if _passes_a_cell_function(error, fn, options):
            # `def objective(params): return -elbo(params, logprob, noise)` in a factory
            # (`logprob` a function in its cells, or of the module): read as a module function,
            # its calls specialized.
            try:
                return _derivative_of(fn, wrt=wrt, rehomed=True, **options)
            except TangentError:
                raise error from None
        if _called_object(error, fn) and _module_has_classes(fn):
            # A method of an object passed in (`loss(model, x)` calling `model.forward`): its
            # class is known when the derivative is called, from the argument.
            return _specialized_for_objects(fn, wrt, options, error)
        # Read only on this path: a refusal is rare, a derivative asked for often.
        called = _called_parameters(fn) if not hasattr(fn, "__tangent_source__") else ()
        if any(f"`{name}`" in (error.message or "") for name in called):
            # A parameter the function calls, with no function known until the derivative is
            # called: specialized then, for the function it is given.
            return _specialized_at_call(fn, wrt, called, options, error)
    raise error


def _at_own_place(error, src, live):
    """``error`` told at the construct's own file and line when it stands in source the
    prelude brought along (a helper of another module, an installed package's function)."""
    place = _prelude_place(src, live, error.path, error.line, error.column)
    if place is None:
        return error
    from tangent.errors import relocated

    return relocated(error, *place)


def _prelude_place(src, live, path, line, column):
    """``(path, line, column)`` in its own file of ``line``/``column`` of the text the engine
    read (``src.module_source``, the prelude ``live`` at its end), when that stands in source
    the prelude brought along; else None."""
    if live is None or not line or path != src.path:
        return None
    own_lines = src.module_source[: len(src.module_source) - len(live.text)].count("\n")
    return live.place(line - own_lines - 1, column)


_LEFT_OUT_BRANCH = re.compile(
    r"(tangent\.branch_not_differentiated\((?:'(?:[^'\\]|\\.)*', ){2})('(?:[^'\\]|\\.)*'), (\d+), (\d+)\)"
)


def _branches_at_own_place(source, src, live):
    """``source`` (generated) with each branch it leaves out told at the branch's own place
    when the branch stands in source the prelude brought along (see `_at_own_place`)."""
    if live is None or "branch_not_differentiated" not in source:
        return source

    def moved(match):
        try:
            path = ast.literal_eval(match.group(2))
        except (ValueError, SyntaxError):
            return match.group(0)
        place = _prelude_place(src, live, path, int(match.group(3)), int(match.group(4)))
        if place is None:
            return match.group(0)
        return f"{match.group(1)}{place[0]!r}, {place[1]}, {place[2]})"

    return _LEFT_OUT_BRANCH.sub(moved, source)


def _derivative_of(fn, *, wrt, optimized, preserve_result, motion, seed_required, verbose, instance_of=None, instance=None, checkpoint=False, argument_classes=(), rehomed=False):
    """The derivative of the plain function ``fn`` (see `_derivative`)."""
    src = _find_source(fn)
    src = _with_sibling_closures(src, fn) or _as_method_of(src, fn, instance_of) or src
    if checkpoint:
        src = _with_checkpointing(src, fn)
    parent_context, parent_origin = _generated_context(fn)
    live = None
    if parent_context is None:
        # Names the file does not bind as the running program does (a notebook's other cells,
        # a closure's functions, a helper defined again): their imports and source follow it.
        live = _live.prelude(
            fn, src.module_source, src.path, _live.closure_values(fn), follow_project=motion in ("forward", "hvp")
        )
        if live is not None:
            src = src.replaced(module_source=src.module_source + live.text)
    synthetic = getattr(fn, "__tangent_source__", None)
    if rehomed and src.function_source is not None and synthetic is None:
        # A closure read as a function of its module (its cells are the prelude's names), so
        # that the module's functions it gives functions to are specialized at its calls.
        synthetic = src.function_source
    if synthetic is not None:
        # A function Tangent wrote (`functools.partial`): after the file's text.
        text = src.module_source.rstrip("\n") + "\n\n\n"
        src = src.replaced(
            module_source=text + synthetic,
            first_line=text.count("\n") + 1,
            engine_name=fn.__name__,
            function_source=None,
        )
    optimized = bool(optimized)
    preserve_result = bool(preserve_result)
    wrt_items = _wrt_items(src, wrt)
    options = (wrt_items, optimized, preserve_result, motion, seed_required, bool(checkpoint))
    origin = parent_origin or src.path
    recipe_files = _project.recipe_files(origin)
    # The values the prelude's names hold (a closure's cells): a new closure of the same text
    # is a new derivative (the namespace holds them, so their ids stay theirs).
    live_values = tuple(sorted((k, id(v)) for k, v in live.namespace.items())) if live else ()
    # The classes of the objects a bound method's object holds (`self.family.loglike(...)`).
    object_classes = _object_classes(instance, fn) if instance is not None else ()
    # The classes of objects passed as arguments (`_specialized_for_objects`).
    object_classes = tuple(sorted(set(object_classes) | set(argument_classes)))
    # Editing a project recipe file changes the derivatives that use it.
    per_function_key = (src.module_hash, _project.recipe_stamp(recipe_files), options, src.engine_name, live_values, object_classes)

    with _lock:
        cached = _derivatives.get(fn, {}).get(per_function_key)
    if cached is not None:
        if verbose:
            print(_generated_of(cached).source)
        return cached

    generated_key = (fn.__code__, src.module_hash, src.function_source, per_function_key[1], options, object_classes)
    with _lock:
        generated = _generated.get(generated_key)
    if generated is None:
        positions = _wrt_positions(fn, src, wrt_items)
        engine = _engine()
        extra = _project_of(fn, origin)
        if recipe_files:
            extra["recipe_files"] = recipe_files
        if object_classes:
            extra["object_classes"] = list(object_classes)
        context = src.module_source
        if parent_context is not None:
            extra["context_source"] = parent_context
            context = f"{src.module_source}\n\n{parent_context}"
        try:
            source, entry = engine.generate(
                src.module_source,
                src.path,
                src.engine_name,
                src.function_source,
                src.first_line,
                list(positions),
                optimized,
                preserve_result,
                motion,
                seed_required,
                # The definition `fn` was made from, also when the module defines its name
                # again (`fn.__code__.co_firstlineno`: its first decorator, else `def`).
                definition_line=src.first_line if src.function_source is None else None,
                **extra,
            )
        except engine.EngineError as error:
            raise _explained(_at_own_place(error_from_engine(error), src, live), fn) from None
        source = _branches_at_own_place(source, src, live)
        filename = _write_source(fn, source)
        code = compile(source, filename, "exec", dont_inherit=True)
        doc = _docstring(fn, positions, seed_required)
        generated = _Generated(source, entry, filename, code, doc, context=context, origin=origin)
        with _lock:
            generated = _generated.setdefault(generated_key, generated)
            _generated_by_file[generated.filename] = generated

    df = _load(fn, generated, live.namespace if live else None)
    if motion in _MOTIONS:
        df = _with_init_grad(df, fn)
    else:
        df = _with_directions(df, fn, _wrt_positions(fn, src, wrt_items))
    if verbose:
        print(generated.source)
    with _lock:
        try:
            _derivatives.setdefault(fn, {})[per_function_key] = df
        except TypeError:  # not weak-referenceable: no per-function cache
            pass
    return df


_PARTIAL_NAME = "_partial"


def _partial_function(p, keep_positional=False):
    """A function standing for ``functools.partial`` object ``p`` of a module-level function:
    ``def _partial(<open parameters>): return f(<bound arguments>, <open parameters>)``, its
    text carried in ``__tangent_source__`` (appended to the module's text for the engine) and
    the bound values held in its globals' own names. None when ``p`` is not of that kind."""
    inner = p.func
    if not inspect.isfunction(inner) or inner.__globals__.get(inner.__name__) is not inner or "<" in inner.__qualname__:
        return None
    code = inner.__code__
    if code.co_flags & inspect.CO_VARARGS and p.args:
        return None
    params = list(inspect.signature(inner).parameters.values())
    values = {}

    def held(prefix, name, value):
        if inspect.isfunction(value) and inner.__globals__.get(value.__name__) is value and value.__name__.isidentifier():
            return value.__name__  # a function of the module: by its own name
        key = f"_{_PARTIAL_NAME}_{prefix}_{name}"
        values[key] = value
        return key

    bound = [held("arg", str(i), a) for i, a in enumerate(p.args)]
    decl, call = [], list(bound)
    keyword_only = by_keyword = False
    positional = [q for q in params if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
    for q in positional[len(p.args):] + [q for q in params if q.kind == q.KEYWORD_ONLY]:
        if q.name in p.keywords:
            if q.kind != q.KEYWORD_ONLY:
                by_keyword = True  # what follows is passed on by keyword
                # ... and can only be given so, as in Python (unless kept positional).
                keyword_only = keyword_only or not keep_positional
            continue
        if (q.kind == q.KEYWORD_ONLY or keyword_only) and "*" not in decl:
            decl.append("*")
        decl.append(q.name if q.default is q.empty else f"{q.name}={held('default', q.name, q.default)}")
        call.append(f"{q.name}={q.name}" if "*" in decl or by_keyword else q.name)
    call.extend(f"{k}={held('keyword', k, v)}" for k, v in p.keywords.items())
    text = f"def {_PARTIAL_NAME}({', '.join(decl)}):\n    return {inner.__name__}({', '.join(call)})\n"
    namespace = _LiveNamespace(inner.__globals__)
    namespace.update(values)
    module_code = compile(text, code.co_filename, "exec")
    function_code = next(c for c in module_code.co_consts if isinstance(c, types.CodeType))
    wrapper = types.FunctionType(function_code, namespace, _PARTIAL_NAME)
    wrapper.__tangent_source__ = text
    wrapper.__module__ = inner.__module__
    return wrapper


def _called_parameters(fn):
    """The parameters ``fn`` calls as functions (``logprob(x)``), that have no default."""
    code = fn.__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    try:
        sig = inspect.signature(fn)
        defaults = {n for n, p in sig.parameters.items() if p.default is not p.empty}
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, ValueError, SyntaxError):
        return ()
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    return tuple(n for n in names if n in called and n not in defaults)


# Most objects of a list passed in whose loop is unrolled, one copy per object.
_MAX_UNROLLED = 64

# The engine's help for a method called on an object whose class it cannot tell.
_OBJECT_OF_UNKNOWN_CLASS = "it is called on an object whose class Tangent"
# The engine's refusal of a call of a value it cannot tell (an item of a list passed in).
_COMPUTED_CALLEE = "calling a lambda or a computed function"


def _called_object(error, fn):
    """Is ``error`` the engine's refusal of a method of an object it cannot tell, or of a call
    of a local value (an item of a list passed in, in forward mode)?"""
    if _OBJECT_OF_UNKNOWN_CLASS in str(error):
        return True
    found = _NO_RECIPE.search(error.message or "")
    if found is None:
        return False
    callee = found.group(1)
    code = fn.__code__
    parameters = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    # (A parameter called is specialized for what it is given: `_specialized_at_call`.)
    # A name the function reads as a global (bound or not) is no local value.
    return "." not in callee and callee not in parameters and callee not in _live._global_names(code)


def _module_has_classes(fn):
    """Does ``fn``'s module define classes (whose objects a call could be given)?"""
    module = getattr(fn, "__module__", None)
    return any(isinstance(v, type) and v.__module__ == module for v in list(fn.__globals__.values()))


def _specialized_for_objects(fn, wrt, options, error):
    """A derivative of ``fn`` that, when called, reads the classes of the objects it is given
    (and of the objects they hold) and differentiates ``fn`` with their methods known: one
    derivative per set of classes. The generated code checks each object's class when it
    runs. Without an object of a class of ``fn``'s module among the arguments, ``error``."""
    code = fn.__code__
    names = list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    positional = names[: code.co_argcount]
    cache = {}

    @functools.wraps(fn)
    def derivative(*args, **kwargs):
        given = dict(zip(positional, args))
        given.update((k, v) for k, v in kwargs.items() if k in names)
        hints = set()
        for name, value in given.items():
            hints.update(_argument_classes(fn, name, value))
        # A path where two objects of one class hold different classes is left out (the
        # engine then refuses the call there rather than guess).
        classes_at = {}
        for owner, path, cls in hints:
            classes_at.setdefault((owner, path), set()).add(cls)
        hints = {h for h in hints if len(classes_at[h[:2]]) == 1}
        if not hints:
            raise error
        key = tuple(sorted(hints))
        df = cache.get(key)
        if df is None:
            df = _derivative_of(fn, wrt=wrt, argument_classes=key, **options)
            cache[key] = df
        return df(*args, **kwargs)

    return derivative


def _argument_classes(fn, name, value, depth=3):
    """``(owner, path, class)`` hints for the object ``value`` given for parameter ``name``
    of ``fn``: ``("def <fn>", "name[.attr...]", class)`` for it and the objects it holds
    (``name[i]`` for the items of a list), and the hints of `_object_classes` for the methods
    of their classes. Classes of ``fn``'s module only."""
    out = []
    todo = [(name, value, depth)]
    while todo:
        path, obj, level = todo.pop()
        if isinstance(obj, (list, tuple)) and len(obj) <= _MAX_UNROLLED and level > 0:
            # A list of objects (`layers`): each item's class, for a loop over it.
            todo.extend((f"{path}[{i}]", item, level - 1) for i, item in enumerate(obj))
            continue
        if not _is_object_of_module(fn, obj):
            continue
        out.append((f"def {fn.__name__}", path, type(obj).__name__))
        out.extend(_object_classes(obj, fn))
        attributes = getattr(obj, "__dict__", None)
        if level > 1 and isinstance(attributes, dict):
            for attr, held in attributes.items():
                if not attr.startswith("__"):
                    todo.append((f"{path}.{attr}", held, level - 1))
    return out


def _passes_a_cell_function(error, fn, options):
    """Could a function defined inside another (a factory's closure), read on its own, have
    failed on a function it gives to a function of the module (which is specialized only
    where the module's text is read)? ``fn``'s name must be free at module level, where it
    is then read."""
    if _NO_RECIPE.search(error.message or "") is None or fn.__name__ == "<lambda>":
        return False
    if "<locals>" not in fn.__qualname__ or fn.__name__ in fn.__globals__ or options.get("checkpoint"):
        return False
    return fn.__name__.isidentifier()


def _overriding_subclasses(fn):
    """The classes of ``fn``'s module deriving from the class ``fn`` is a method of (defined
    in its body), when any of them defines a method of its own; else ()."""
    owner_name, _, name = fn.__qualname__.rpartition(".")
    if not owner_name or "." in owner_name or "<" in owner_name:
        return ()
    owner = fn.__globals__.get(owner_name)
    if not isinstance(owner, type) or owner.__dict__.get(name) is not fn:
        return ()
    found = []
    todo = list(owner.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if _is_module_class(fn, cls) and any(
            inspect.isfunction(v) and owner.__dict__.get(k) is not v for k, v in vars(cls).items()
        ):
            found.append(cls)
    return tuple(found)


def _per_class(fn, wrt, options, df, error):
    """A derivative of the method ``fn`` that, called on an object of a subclass of the class
    defining ``fn``, is the derivative of ``fn`` looked up on that subclass (its overrides
    called, the classes of the objects it holds known), made at the first call per class;
    on an object of the defining class, ``df`` (or ``error`` when ``fn`` has none there)."""
    owner = fn.__globals__.get(fn.__qualname__.rpartition(".")[0])
    first = fn.__code__.co_varnames[0] if fn.__code__.co_argcount else None
    rest = {k: v for k, v in options.items() if k not in ("instance_of", "instance")}
    cache = {}

    @functools.wraps(fn)
    def derivative(*args, **kwargs):
        obj = args[0] if args else kwargs.get(first)
        cls = type(obj)
        if cls is not owner and isinstance(obj, owner) and _is_module_class(fn, cls):
            key = (cls, _object_classes(obj, fn))
            made = cache.get(key)
            if made is None:
                made = _derivative_of(fn, wrt=wrt, instance_of=cls, instance=obj, **rest)
                cache[key] = made
            return made(*args, **kwargs)
        if df is None:
            raise error
        return df(*args, **kwargs)

    return derivative


def _with_other_functions(df, fn, wrt, options):
    """``df`` (generated for the functions ``fn``'s parameters default to, checked when it
    runs), which, called with another function for such a parameter, differentiates ``fn``
    with that function instead (one derivative per function given, as for a parameter with
    no default: `_specialized_at_call`)."""
    defaults = _function_defaults(fn)
    if not defaults:
        return df
    refusal = TypeError("tangent: no derivative for the functions given")
    other = _specialized_at_call(fn, wrt, tuple(defaults), options, refusal)

    @functools.wraps(df)
    def derivative(*args, **kwargs):
        for name, default in defaults.items():
            given = _given(fn, name, args, kwargs)
            if given is not _live._MISSING and given is not default and callable(given):
                return other(*args, **kwargs)
        return df(*args, **kwargs)

    return derivative


def _function_defaults(fn):
    """``{parameter: default}`` for ``fn``'s parameters whose default is a function."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        q.name: q.default
        for q in parameters
        if q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)
        and q.default is not q.empty
        and callable(q.default)
        and not isinstance(q.default, type)
    }


def _wrt_names(fn, wrt):
    """``wrt`` with positions of ``fn``'s positional parameters given as their names (which
    stay valid once other parameters are bound)."""
    positional = fn.__code__.co_varnames[: fn.__code__.co_argcount]
    items = (wrt,) if isinstance(wrt, (int, str)) else tuple(wrt)
    return tuple(
        positional[i] if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(positional) else i
        for i in items
    )


def _given(fn, name, args, kwargs):
    """The value a call ``fn(*args, **kwargs)`` gives parameter ``name``, else ``_live._MISSING``."""
    if name in kwargs:
        return kwargs[name]
    positional = fn.__code__.co_varnames[: fn.__code__.co_argcount]
    if name in positional and positional.index(name) < len(args):
        return args[positional.index(name)]
    return _live._MISSING


def _call_bound(fn, values, names, options, error, cache, args, kwargs):
    """Calls the derivative (w.r.t. ``names``) of ``fn`` with ``values`` bound by name, as
    ``functools.partial`` would bind them, on ``args`` without the positional arguments of
    those parameters and on ``kwargs``: one derivative per set of values, kept in ``cache``
    (with the values, so that their ids stay theirs); ``error`` when it cannot be made."""
    positional = fn.__code__.co_varnames[: fn.__code__.co_argcount]
    drop = {positional.index(n) for n in values if n in positional and positional.index(n) < len(args)}
    kept = [a for i, a in enumerate(args) if i not in drop]
    key = tuple(sorted((n, id(v)) for n, v in values.items()))
    entry = cache.get(key)
    if entry is None:
        bound = _partial_function(functools.partial(fn, **values), keep_positional=True)
        if bound is None:
            raise error
        entry = (_derivative(bound, wrt=names, **options), tuple(values.values()))
        cache[key] = entry
    return entry[0](*kept, **kwargs)


def _specialized_for_keywords(fn, wrt, options, error):
    """A derivative of ``fn`` (which takes ``**kwargs``) that, when called, binds the extra
    keywords it is given (none is a case too) as ``functools.partial`` would and
    differentiates that: one derivative per set of keyword values."""
    code = fn.__code__
    named = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    names = _wrt_names(fn, wrt)
    defaults = _function_defaults(fn)
    cache = {}

    @functools.wraps(fn)
    def derivative(*args, **kwargs):
        extra = {k: v for k, v in kwargs.items() if k not in named}
        given = {k: v for k, v in kwargs.items() if k in named}
        # Another function than a parameter's default is bound too (the derivative of the
        # default would refuse it).
        for name, default in defaults.items():
            value = _given(fn, name, args, given)
            if value is not _live._MISSING and value is not default and callable(value):
                extra[name] = value
                given.pop(name, None)
        return _call_bound(fn, extra, names, options, error, cache, args, given)

    return derivative


def _specialized_at_call(fn, wrt, called, options, error):
    """A derivative of ``fn`` that, when called, takes the functions given for the parameters
    in ``called`` and differentiates ``fn`` with them bound (one derivative per set of
    functions, kept while the functions live); without a function there, ``error``."""
    names = _wrt_names(fn, wrt)
    objects = _specialized_for_objects(fn, wrt, options, error)
    if any(n in called for n in names):
        return objects
    cache = {}

    @functools.wraps(fn)
    def derivative(*args, **kwargs):
        chosen = {name: _given(fn, name, args, kwargs) for name in called}
        chosen = {name: value for name, value in chosen.items() if value is not _live._MISSING}
        if any(_is_object_of_module(fn, v) for v in chosen.values()):
            # A callable object (`energy(x, quad)` calling `quad(x)`): its class's `__call__`.
            return objects(*args, **kwargs)
        if not chosen or not all(callable(v) for v in chosen.values()):
            raise error
        rest = {k: v for k, v in kwargs.items() if k not in chosen}
        return _call_bound(fn, chosen, names, options, error, cache, args, rest)

    return derivative


def _is_module_class(fn, cls):
    """Is ``cls`` a top-level class of ``fn``'s module, bound there under its name?"""
    return cls.__qualname__ == cls.__name__ and fn.__globals__.get(cls.__name__) is cls


def _is_object_of_module(fn, value):
    """Is ``value`` an object of a class of ``fn``'s module (a callable object, not a
    function given as a value)?"""
    return _is_module_class(fn, type(value))


def _shifted(wrt, by):
    """``wrt`` with its positions moved ``by`` parameters on (names stay)."""
    items = (wrt,) if isinstance(wrt, (int, str)) else tuple(wrt)
    return tuple(item + by if isinstance(item, int) and not isinstance(item, bool) and item >= 0 else item for item in items)


def _generated_of(df):
    return df.__tangent_generated__


class _LiveNamespace(dict):
    """The globals of a generated module: its own definitions, plus ``fn``'s closure and the
    values of names the engine was told about (``_live``), over ``fn``'s module globals read
    *at each use* (a name the program binds again after the derivative was made, as notebooks
    do, is seen as the primal sees it; never a stale copy). CPython reads globals that are
    not exactly a ``dict`` through ``__getitem__``, so ``__missing__`` applies."""

    __slots__ = ("_globals",)

    def __init__(self, module_globals):
        super().__init__()
        self._globals = module_globals

    def __missing__(self, name):
        return self._globals[name]


def _load(fn, generated, extra=None):
    """Executes the generated module in a namespace over ``fn``'s globals (read live), with
    ``fn``'s closure and ``extra`` (values of the prelude's names) in it."""
    namespace = _LiveNamespace(fn.__globals__)
    if extra:
        namespace.update(extra)
    code = fn.__code__
    namespace.update(_live.closure_values(fn))
    # Functions of the same factory that the generated code calls read their own closures.
    for sibling in _sibling_functions(fn).values():
        for name, value in _live.closure_values(sibling).items():
            if name not in code.co_freevars:  # inside the sibling, its closure shadows globals
                namespace[name] = value
    namespace["__file__"] = generated.filename
    # Make sure tracebacks and inspect.getsource see the text even if the file is gone.
    _register_lines(generated.filename, generated.source)
    if ".__grad__ import " in generated.source:
        # It calls derivatives of other project modules: they come through the import hook,
        # even when its start-up activation is switched off.
        import tangent

        tangent.install_import_hook()
    exec(generated.code, namespace)
    try:
        df = namespace[generated.entry]
    except KeyError:
        raise make_error(
            FunctionNotFoundError,
            f"the generated module has no function `{generated.entry}` (engine bug)",
            path=generated.filename,
        ) from None
    if not df.__doc__:
        df.__doc__ = generated.doc
    try:
        df.__tangent_generated__ = generated
    except AttributeError:
        pass
    return df


# The function that takes the reverse-mode derivative's calls (see `_with_init_grad`).
_SEED_WRAPPER = """\
def derivative(*args, **kwargs):
    if kwargs:
        args, kwargs = _seed_keyword(args, kwargs)
    return _derivative(*args, **kwargs)
"""


def _extras(df, fn):
    """``(first, count)``: where the parameters ``df`` adds to ``f``'s (its seed, tangents or
    vectors) stand among its positional parameters."""
    code = df.__code__
    params = code.co_varnames[: code.co_argcount]
    fcode = fn.__code__
    own = set(fcode.co_varnames[: fcode.co_argcount + fcode.co_kwonlyargcount])
    extra = [i for i, p in enumerate(params) if p not in own]
    if not extra:
        return code.co_argcount, 0
    return extra[0], len(extra)


def _trailing_extras(args, first, count, positional, name):
    """``args`` given the original way, the seed or tangents after all of ``f``'s arguments
    (``jf(w, 3.0, v)`` for ``f(w, scale=2.0)``), in the generated function's order, which has
    them before ``f``'s parameters with defaults (``jvp_f(w, dw, scale=2.0)``)."""
    given = len(args)
    if given <= first + count:
        return args
    if given > positional:
        raise TypeError(f"{name}() takes at most {positional} positional arguments ({given} given)")
    args = tuple(args)
    return args[:first] + args[given - count :] + args[first : given - count]


def _direction_problem(value, direction):
    """Why ``direction`` cannot be a tangent of ``value`` (None when it can, or cannot be told)."""
    import numpy

    if isinstance(value, (bool, numpy.bool_)) or not isinstance(value, (int, float, complex, numpy.ndarray, numpy.number)):
        return None  # containers and objects: their derivative checks their parts
    if direction is None or not isinstance(direction, (int, float, complex, numpy.ndarray, numpy.number)) or isinstance(direction, bool):
        return f"is {type(direction).__name__}, not a number or array"
    if numpy.shape(direction) != numpy.shape(value):
        return f"has shape {numpy.shape(direction)}, but the argument has shape {numpy.shape(value)}"
    return None


def _with_directions(df, fn, positions):
    """``df``, a generated forward-mode derivative or Hessian-vector product, taking its
    tangents (vectors) also after all of ``f``'s arguments, and checking that each has its
    argument's shape (`InvalidDirectionError`, never an error deep in generated code)."""
    code = df.__code__
    first, count = _extras(df, fn)
    params = code.co_varnames[: code.co_argcount]
    names = params[first : first + count]
    fparams = fn.__code__.co_varnames[: fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount]
    pairs = [(fparams[p], n) for p, n in zip(positions, names) if p < len(fparams)]
    defaults = dict(zip(params[len(params) - len(df.__defaults__ or ()):], df.__defaults__ or ()))
    defaults.update(df.__kwdefaults__ or {})
    name = df.__name__
    positional = code.co_argcount

    def arrange(args, kwargs):
        if len(args) > first + count:
            args = _trailing_extras(args, first, count, positional, name)
        for param, direction_name in pairs:
            where = params.index(param) if param in params else None
            value = args[where] if where is not None and where < len(args) else kwargs.get(param, defaults.get(param))
            at = params.index(direction_name)
            if at < len(args):
                direction = args[at]
            elif direction_name in kwargs:
                direction = kwargs[direction_name]
            else:
                continue  # missing: Python's own TypeError names it
            problem = _direction_problem(value, direction)
            if problem is not None:
                raise make_error(
                    InvalidDirectionError,
                    f"{name}(): the direction `{direction_name}` for `{param}` {problem}",
                    path=code.co_filename,
                    line=code.co_firstlineno,
                )
        return args, kwargs

    tree = ast.parse(_DIRECTIONS_WRAPPER)
    return _compiled_wrapper(tree, df, {"_arrange": arrange, "_derivative": df})


def _compiled_wrapper(tree, df, names):
    """The wrapper function of ``tree`` named and placed as ``df`` (its code attributed to
    ``df``'s ``def`` line in the generated file, so tracebacks show the derivative)."""
    import functools

    code = df.__code__
    name = df.__name__
    tree.body[0].name = name
    line = code.co_firstlineno
    text = linecache.getline(code.co_filename, line).rstrip()
    for node in ast.walk(tree):
        if "lineno" in node._attributes:
            node.lineno = node.end_lineno = line
            node.col_offset, node.end_col_offset = 0, len(text.encode("utf-8"))
    namespace = dict(names, __name__=df.__module__)
    exec(compile(tree, code.co_filename, "exec", dont_inherit=True), namespace)
    return functools.update_wrapper(namespace[name], df)


# The function that takes a forward-mode derivative's calls (see `_with_directions`).
_DIRECTIONS_WRAPPER = """\
def derivative(*args, **kwargs):
    args, kwargs = _arrange(args, kwargs)
    return _derivative(*args, **kwargs)
"""


def _with_init_grad(df, fn):
    """``df``, a generated reverse-mode derivative ``d<f>(<f's params>, b<f>)``, also taking
    its seed by the keyword ``init_grad`` (the original Tangent's calling convention), besides
    positionally after ``f``'s arguments and as ``b<f>=``.

    The wrapper is ``df`` for ``functools`` and ``inspect`` (``__wrapped__``, name, docstring,
    ``inspect.getsource`` and ``inspect.signature``), and its code is attributed to ``df``'s
    ``def`` line in the generated file: ``__code__.co_filename`` is the generated file, and a
    traceback through it shows the derivative's signature. Calls without keywords go straight
    through. ``df`` differentiated again is the generated function (``_plain_function``
    unwraps). When ``f`` has a parameter named ``init_grad`` the keyword is that parameter's.
    """
    code = df.__code__
    params = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    seed_index, count = _extras(df, fn)
    if count != 1:  # not a derivative of `fn` (the seed is always one parameter)
        seed_index = code.co_argcount - 1
    seed = params[seed_index]
    positional = code.co_argcount
    # The seed stands before `f`'s parameters with defaults (`autodiff`): also taken after them.
    trailing = seed_index + 1 < positional
    name = df.__name__
    accepted = frozenset(params[code.co_posonlyargcount :])
    own_init_grad = "init_grad" in params
    others = ", ".join(p for p in params if p != seed)
    where = f"{fn.__module__}.{fn.__qualname__}" if fn.__module__ else fn.__qualname__

    def seed_keyword(args, kwargs):
        if trailing and len(args) > seed_index + 1:
            args = _trailing_extras(args, seed_index, 1, positional, name)
        if "init_grad" in kwargs and not own_init_grad:
            kwargs = dict(kwargs)
            value = kwargs.pop("init_grad")
            if len(args) > seed_index or seed in kwargs:
                how = "positionally" if len(args) > seed_index else f"as {seed}="
                raise TypeError(
                    f"{name}() got the output seed twice, {how} and as init_grad=; pass it once"
                )
            kwargs[seed] = value
        for key in kwargs:
            if key not in accepted:
                raise TypeError(
                    f"{name}() got an unexpected keyword argument {key!r}; it takes the arguments "
                    f"of `{where}` ({others}), then the output seed, positionally or as init_grad="
                )
        return args, kwargs

    tree = ast.parse(_DIRECTIONS_WRAPPER if trailing else _SEED_WRAPPER)
    arrange = seed_keyword
    return _compiled_wrapper(tree, df, {"_seed_keyword": seed_keyword, "_arrange": arrange, "_derivative": df})


def _docstring(fn, positions, seed_required):
    code = fn.__code__
    params = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    names = [params[p] if p < len(params) else f"#{p}" for p in positions]
    what = "Vector-Jacobian product" if seed_required else "Gradient"
    where = f"{fn.__module__}.{fn.__qualname__}" if fn.__module__ else fn.__qualname__
    return (
        f"{what} of `{where}` with respect to {', '.join(names)}.\n\n"
        "Generated by Tangent from the source of the function."
    )


def _register_lines(filename, source):
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)


# --------------------------------------------------------------------------------------------
# Generated files


def generated_dir():
    """The directory for generated sources: ``$TANGENT_GENERATED_DIR`` or a per-user temp dir."""
    global _fallback_dir
    configured = os.environ.get(GENERATED_DIR_ENV)
    if configured:
        path = os.path.abspath(os.path.expanduser(configured))
        if not os.path.isdir(path):
            # Every level it creates 0o755, whatever the umask (os.makedirs would leave the
            # intermediate ones world-writable under umask 0).
            from tangent._import_hook import _makedirs

            _makedirs(path)
        return path
    if _fallback_dir is not None:
        return _fallback_dir
    uid = os.getuid() if hasattr(os, "getuid") else _user_name()
    path = os.path.join(tempfile.gettempdir(), f"tangent-generated-{uid}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    if hasattr(os, "getuid") and os.stat(path).st_uid != os.getuid():
        # Someone else owns the shared name: use a private directory instead.
        path = tempfile.mkdtemp(prefix="tangent-generated-")
    _fallback_dir = path
    return path


def _user_name():
    try:
        import getpass

        return re.sub(r"[^A-Za-z0-9_.-]", "_", getpass.getuser())
    except Exception:
        return "user"


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"


def _write_source(fn, source):
    """Writes ``source`` atomically to the cache directory; returns the file name to use."""
    digest = _text_hash(source)[:16]
    name = f"{_safe(fn.__module__ or 'module')}_{_safe(fn.__name__)}_{digest}.py"
    data = source.encode("utf-8", "surrogatepass")
    try:
        directory = generated_dir()
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as existing:
                if existing.read() == data:
                    return path
        except OSError:
            pass
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path
    except OSError:
        # Read-only or missing temp dir: keep the text in linecache only.
        return f"<tangent-generated {name}>"
