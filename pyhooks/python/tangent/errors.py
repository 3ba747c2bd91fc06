"""Exceptions of the Python API, one per kind of engine diagnostic.

Each kind has a stable code (``T001``...), listed with its causes in ``docs/errors.md``.
"""

from __future__ import annotations

__all__ = [
    "TangentError",
    "TangentSyntaxError",
    "UnsupportedError",
    "NoRecipeError",
    "NotDifferentiableError",
    "FunctionNotFoundError",
    "InvalidWrtError",
    "InvalidRecipeError",
    "InvalidInputError",
    "LimitExceededError",
    "TangentIOError",
    "InternalError",
    "error_from_engine",
]


class TangentError(Exception):
    """Base class of every error of Tangent.

    ``str(error)`` is the rendered diagnostic (``error[T003 no-recipe]: ...``, then
    ``path:line:col``, the source line, a caret and a help line).
    Attributes: ``kind`` (the engine's kind, e.g. ``"no-recipe"``), ``code`` (its stable code,
    e.g. ``"T003"``), ``message`` (one line), ``path``, ``line`` and ``column`` (1-based; 0 when
    unknown).
    """

    kind = "internal"
    code = "T999"
    help = "this is a bug in Tangent; please report it with the code that caused it"

    def __init__(self, rendered, *, kind=None, message=None, path=None, line=0, column=0, code=None):
        super().__init__(rendered)
        self.rendered = rendered
        if kind is not None:
            self.kind = kind
        if code is not None:
            self.code = code
        self.message = message if message is not None else rendered
        self.path = path
        self.line = line
        self.column = column

    def __str__(self):
        return self.rendered.rstrip("\n")

    def __reduce__(self):
        return (_rebuild, (type(self), self.rendered, dict(self.__dict__)))


def _rebuild(cls, rendered, state):
    error = cls(rendered)
    error.__dict__.update(state)
    return error


class TangentSyntaxError(TangentError, SyntaxError):
    """The source of the module or function does not parse."""

    kind = "syntax"
    code = "T001"
    help = "the whole file must be valid Python 3; fix the code at the caret"


class UnsupportedError(TangentError, NotImplementedError):
    """The function uses a construct Tangent cannot differentiate."""

    kind = "unsupported"
    code = "T002"
    help = (
        "rewrite this without the construct, or move it into a function with its own recipe "
        "(`@tangent.adjoint`)"
    )


class NoRecipeError(TangentError, NotImplementedError):
    """A call on a differentiated value has no derivative recipe and no source."""

    kind = "no-recipe"
    code = "T003"
    help = 'give the function a recipe with `@tangent.adjoint(...)` (see "Your own recipes" in the README)'


class NotDifferentiableError(TangentError, ValueError):
    """The requested derivative does not exist."""

    kind = "not-differentiable"
    code = "T004"
    help = "differentiate with respect to a parameter the result depends on through arithmetic (`wrt`)"


class FunctionNotFoundError(TangentError, ValueError):
    """The function (or its source) cannot be found."""

    kind = "function-not-found"
    code = "T005"
    help = "name a function defined with `def` at the top level of the file (FILE.py:FUNC)"


class InvalidWrtError(TangentError, ValueError):
    """``wrt`` names a parameter the function does not have."""

    kind = "invalid-wrt"
    code = "T006"
    help = "`wrt` takes the names or positions of the function's parameters, each once"


class InvalidRecipeError(TangentError, ValueError):
    """A recipe written with ``@tangent.adjoint(f)`` / ``@tangent.tangent_(f)`` breaks the
    template rules (see the README)."""

    kind = "invalid-recipe"
    code = "T007"
    help = 'see "Your own recipes" in the README for the rules of recipe templates'


class InvalidInputError(TangentError, ValueError):
    """The source is not Python text: not UTF-8, or binary (NUL bytes)."""

    kind = "invalid-input"
    code = "T008"
    help = "Tangent reads Python source files as UTF-8 text (PEP 3120); save the file as UTF-8"


class InvalidDirectionError(TangentError, ValueError):
    """A forward-mode tangent or Hessian-vector product's vector does not match its argument
    (another shape, or not a number or array)."""

    kind = "invalid-direction"
    code = "T011"
    help = "give one direction per differentiated argument, of that argument's shape and type"


class LimitExceededError(TangentError, ValueError):
    """The source exceeds one of Tangent's limits (size, nesting, expression length)."""

    kind = "limit"
    code = "T009"
    help = "split the code into smaller expressions or functions (the limits are listed in docs/errors.md)"


class TangentIOError(TangentError, OSError):
    """A file could not be read."""

    kind = "io"
    code = "T010"
    help = "check that the file exists and can be read"


class InternalError(TangentError, RuntimeError):
    """A bug in Tangent."""

    kind = "internal"
    code = "T999"


ERRORS_BY_KIND = {
    cls.kind: cls
    for cls in (
        TangentSyntaxError,
        UnsupportedError,
        NoRecipeError,
        NotDifferentiableError,
        FunctionNotFoundError,
        InvalidWrtError,
        InvalidRecipeError,
        InvalidInputError,
        InvalidDirectionError,
        LimitExceededError,
        TangentIOError,
        InternalError,
    )
}


def error_from_engine(engine_error):
    """The ``TangentError`` for a ``tangent._engine.EngineError``."""
    kind, message, rendered, path, line, column = engine_error.args
    cls = ERRORS_BY_KIND.get(kind, InternalError)
    code = getattr(engine_error, "code", None) or cls.code
    return cls(rendered, kind=kind, message=message, path=path, line=line, column=column, code=code)


def relocated(error, path, line, column):
    """``error`` (a ``TangentError``) told at ``path:line:column``, its snippet that line's."""
    import linecache

    source_line = linecache.getline(path, line).rstrip("\n")
    lines = error.rendered.splitlines(keepends=True)
    tail_at = next((i for i, text in enumerate(lines) if text.startswith(("help:", "note:"))), len(lines))
    title = (lines[0].rstrip("\n") if lines else f"error[{error.code} {error.kind}]: {error.message}") + "\n"
    rendered = title + _location(path, line, column, source_line) + "".join(lines[tail_at:])
    if not rendered.endswith("\n"):
        rendered += "\n"
    moved = type(error)(
        rendered, kind=error.kind, message=error.message, path=path, line=line, column=column, code=error.code
    )
    return moved


def _location(path, line, column, source_line):
    """``  --> path:line:col``, then the line and a caret under the column (when known)."""
    rendered = f"  --> {path}:{line}:{max(column, 1)}\n"
    if source_line:
        gutter = " " * len(str(line))
        caret = " " * max(column - 1, 0) + "^"
        rendered += f"{gutter} |\n{line} | {source_line}\n{gutter} | {caret}\n"
    return rendered


def make_error(cls, message, *, path=None, line=0, column=0, source_line=None):
    """A ``TangentError`` raised by the Python side, rendered like the engine's diagnostics."""
    title = f"error[{cls.code} {cls.kind}]: {message}"
    if path is None:
        rendered = title + "\n"
    elif line <= 0:
        rendered = f"{title}\n  --> {path}\n"
    else:
        rendered = f"{title}\n" + _location(path, line, column, source_line)
    rendered += f"help: {cls.help}\n"
    return cls(rendered, message=message, path=path, line=line, column=column)
