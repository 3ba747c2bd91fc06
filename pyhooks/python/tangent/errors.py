"""Exceptions of the Python API, one per kind of engine diagnostic."""

from __future__ import annotations

__all__ = [
    "TangentError",
    "TangentSyntaxError",
    "UnsupportedError",
    "NoRecipeError",
    "NotDifferentiableError",
    "FunctionNotFoundError",
    "InvalidWrtError",
    "InternalError",
    "error_from_engine",
]


class TangentError(Exception):
    """Base class of every error of Tangent.

    ``str(error)`` is the rendered diagnostic (``path:line:col``, the source line, a caret).
    Attributes: ``kind`` (the engine's kind, e.g. ``"no-recipe"``), ``message`` (one line),
    ``path``, ``line`` and ``column`` (1-based; 0 when unknown).
    """

    kind = "internal"

    def __init__(self, rendered, *, kind=None, message=None, path=None, line=0, column=0):
        super().__init__(rendered)
        self.rendered = rendered
        if kind is not None:
            self.kind = kind
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


class UnsupportedError(TangentError, NotImplementedError):
    """The function uses a construct Tangent cannot differentiate."""

    kind = "unsupported"


class NoRecipeError(TangentError, NotImplementedError):
    """A call on a differentiated value has no derivative recipe and no source."""

    kind = "no-recipe"


class NotDifferentiableError(TangentError, ValueError):
    """The requested derivative does not exist."""

    kind = "not-differentiable"


class FunctionNotFoundError(TangentError, ValueError):
    """The function (or its source) cannot be found."""

    kind = "function-not-found"


class InvalidWrtError(TangentError, ValueError):
    """``wrt`` names a parameter the function does not have."""

    kind = "invalid-wrt"


class InvalidRecipeError(TangentError, ValueError):
    """A recipe written with ``@tangent.adjoint(f)`` / ``@tangent.tangent_(f)`` breaks the
    template rules (see the README)."""

    kind = "invalid-recipe"


class InternalError(TangentError, RuntimeError):
    """A bug in Tangent."""

    kind = "internal"


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
        InternalError,
    )
}


def error_from_engine(engine_error):
    """The ``TangentError`` for a ``tangent._engine.EngineError``."""
    kind, message, rendered, path, line, column = engine_error.args
    cls = ERRORS_BY_KIND.get(kind, InternalError)
    return cls(rendered, kind=kind, message=message, path=path, line=line, column=column)


def make_error(cls, message, *, path=None, line=0, column=0, source_line=None):
    """A ``TangentError`` raised by the Python side, rendered like the engine's diagnostics."""
    title = f"error: {message} [{cls.kind}]"
    if path is None:
        rendered = title + "\n"
    elif line <= 0:
        rendered = f"{title}\n  --> {path}\n"
    else:
        where = f"{path}:{line}:{max(column, 1)}"
        rendered = f"{title}\n  --> {where}\n"
        if source_line:
            gutter = " " * len(str(line))
            caret = " " * max(column - 1, 0) + "^"
            rendered += f"{gutter} |\n{line} | {source_line}\n{gutter} | {caret}\n"
    return cls(rendered, message=message, path=path, line=line, column=column)
