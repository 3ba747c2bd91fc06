"""Adjoints of Python builtins that act on numbers (and on lists or arrays of numbers).

`builtins.max` and `builtins.min` cover the two-argument form only; `builtins.sum` covers a
list of numbers or of equally shaped arrays, and an array (summed over its first axis);
`builtins.tuple` and `builtins.list` a list, a tuple or an array (its rows).

Each adjoint is followed by its forward-mode template, `@tangent_(name)`, with the same
parameters: `d[x]` reads the tangent of input `x`, `d[y] = e` / `d[y] += e` builds the result's
tangent with one statement per differentiable input (the engine drops the statements that read
the tangent of an inactive input), and each statement alone gives `d[y]` the shape of `y`.
"""
import builtins

import numpy
import tangent


@adjoint(builtins.abs)
def abs(y, x):
    d[x] = d[y] * numpy.sign(x)


@tangent_(builtins.abs)
def abs(y, x):
    d[y] = d[x] * numpy.sign(x)


@adjoint(builtins.pow)
def pow(z, base, exp, mod=None):
    # As operator.pow; with `mod` the arguments are integers and nothing is active.
    d[base] = tangent.unbroadcast(d[z] * exp * numpy.power(base, numpy.where(exp == 0, 1.0, exp - 1.0)), base)
    d[exp] = tangent.unbroadcast(d[z] * z * numpy.where(base > 0, numpy.log(numpy.where(base > 0, base, 1.0)), 0.0), exp)


@tangent_(builtins.pow)
def pow(z, base, exp, mod=None):
    d[z] = d[base] * exp * numpy.power(base, numpy.where(exp == 0, 1.0, exp - 1.0))
    d[z] += d[exp] * z * numpy.where(base > 0, numpy.log(numpy.where(base > 0, base, 1.0)), 0.0)


@adjoint(builtins.float)
def float(y, x):
    d[x] = tangent.unbroadcast(d[y], x)


@tangent_(builtins.float)
def float(y, x):
    # A float from a float, a 0-d array or a one-element array.
    d[y] = numpy.float64(numpy.reshape(d[x], ()))


@adjoint(builtins.sum)
def sum(y, iterable, start=0):
    # unreduce gives an ndarray an ndarray, a list a list.
    d[iterable] = tangent.unreduce(d[y], iterable, 0, False)
    d[start] = tangent.unbroadcast(d[y], start)


@tangent_(builtins.sum)
def sum(y, iterable, start=0):
    # d[iterable] is a list (tuple) of tangents, or an array for an array: sum its first axis.
    d[y] = numpy.sum(d[iterable], axis=0)
    d[y] += numpy.broadcast_to(d[start], numpy.shape(y)) * 1.0


@adjoint(builtins.max)
def max(y, arg1, arg2):
    # Python returns the first argument on a tie, so it gets the whole adjoint.
    d[arg1] = 0.0 if arg2 > arg1 else d[y]
    d[arg2] = d[y] if arg2 > arg1 else 0.0


@tangent_(builtins.max)
def max(y, arg1, arg2):
    d[y] = 0.0 if arg2 > arg1 else d[arg1]
    d[y] += d[arg2] if arg2 > arg1 else 0.0


@adjoint(builtins.min)
def min(y, arg1, arg2):
    d[arg1] = 0.0 if arg2 < arg1 else d[y]
    d[arg2] = d[y] if arg2 < arg1 else 0.0


@tangent_(builtins.min)
def min(y, arg1, arg2):
    d[y] = 0.0 if arg2 < arg1 else d[arg1]
    d[y] += d[arg2] if arg2 < arg1 else 0.0


nondifferentiable(
    builtins.len, builtins.range, builtins.int, builtins.bool, builtins.isinstance,
    builtins.round, builtins.type, builtins.hasattr, builtins.callable, builtins.issubclass,
    builtins.id, builtins.repr, builtins.str,
)


@adjoint(builtins.tuple)
def tuple(y, iterable=()):
    d[iterable] = tangent.sequence_like(d[y], iterable)


@tangent_(builtins.tuple)
def tuple(y, iterable=()):
    d[y] = tangent.sequence_like(d[iterable], y)


@adjoint(builtins.list)
def list(y, iterable=()):
    d[iterable] = tangent.sequence_like(d[y], iterable)


@tangent_(builtins.list)
def list(y, iterable=()):
    d[y] = tangent.sequence_like(d[iterable], y)
