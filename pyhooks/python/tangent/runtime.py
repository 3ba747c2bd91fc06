"""Runtime support called by generated gradient code.

Every function here is part of the contract in ARCHITECTURE.md ("Runtime"): the engine emits
calls to them by name as ``tangent.<name>``. Adjoints are plain Python values: floats, NumPy
arrays, and lists/tuples/dicts of adjoints. ``None`` always means "zero adjoint".

Rules that generated code relies on:

- no function mutates its arguments; results never alias an argument array, so generated code
  may update a result in place or push it on a stack safely;
- a scalar primal (Python or NumPy scalar, 0-d array) has a Python ``float`` adjoint
  (``complex`` when the values are complex).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fractions
import functools
import math
import numbers
import types

import numpy

__all__ = [
    "Stack",
    "push",
    "pop",
    "init_grad",
    "attribute_grads",
    "attribute_tangent",
    "add_grad",
    "unbroadcast",
    "unravel",
    "ravel_like",
    "unreduce",
    "grad_like",
    "add_grad_at",
    "zero_at",
    "copy",
    "appended",
    "unshared",
    "split_like",
    "join_like",
    "unstack",
    "diagonal_like",
    "to_rows",
    "from_rows",
    "scatter_along_axis",
    "save_item",
    "restore_item",
    "write_into",
    "snapshot",
    "broadcast_into",
    "check_updated",
    "in_place_check",
    "is_mutable",
    "check_unchanged",
    "insert_grad_of",
    "einsum",
    "einsum_adjoint",
    "digamma",
    "polygamma",
    "branch_not_differentiated",
    "keys_of",
    "numpy_namespace",
    "same_object",
    "sequence_like",
    "enter_warnings_scope",
    "exit_warnings_scope",
]


# --------------------------------------------------------------------------------------------
# Stack


class Stack(list):
    """LIFO of values saved by the forward sweep for the backward sweep."""

    __slots__ = ()

    def __repr__(self):
        return f"Stack({list.__repr__(self)})"


def push(stack, value, op_id=None):
    """Saves ``value`` on ``stack``.

    ``op_id`` (the original Tangent's calling convention) names the push/pop pair: the engine
    pairs a push with the pop of the same ``op_id`` (a literal) when it differentiates code
    that calls these functions; at run time it is not used.
    """
    stack.append(value)


def pop(stack, op_id=None):
    """Removes and returns the value pushed last on ``stack`` (``op_id``: see :func:`push`)."""
    if not stack:
        raise IndexError(
            "tangent.pop: the stack is empty; the backward pass popped more values than the "
            "forward pass pushed (this is a bug in the generated code, please report it)"
        )
    return stack.pop()


# --------------------------------------------------------------------------------------------
# Helpers


_SEQUENCES = (list, tuple)
# The types of the fast paths below, bound once: generated code calls these helpers for
# every operation, often on Python floats (np.sin of a float is a numpy.float64).
_ndarray = numpy.ndarray
_float64 = numpy.float64
_AxisError = getattr(getattr(numpy, "exceptions", numpy), "AxisError", ValueError)


def _is_scalar(x):
    """Python numbers, NumPy scalars and 0-d arrays."""
    if isinstance(x, numpy.ndarray):
        return x.ndim == 0
    return isinstance(x, (numbers.Number, numpy.generic))


def _is_complex(x):
    if isinstance(x, complex):
        return True
    if isinstance(x, (numpy.ndarray, numpy.generic)):
        return numpy.iscomplexobj(x)
    return False


def _to_scalar(value):
    """A Python float (complex when the value is complex) from a number or 0-d array."""
    if _is_complex(value):
        return complex(value)
    return float(value)


def _float_dtype(dtype):
    """The dtype of an adjoint of values of ``dtype``: floating and complex are kept."""
    dtype = numpy.dtype(dtype)
    if numpy.issubdtype(dtype, numpy.floating) or numpy.issubdtype(dtype, numpy.complexfloating):
        return dtype
    return numpy.dtype(numpy.float64)


def _fresh_array(g, shape=None):
    """A new writable float array from ``g`` (broadcast to ``shape`` when given)."""
    g = numpy.asarray(g)
    dtype = _float_dtype(g.dtype)
    if shape is not None and g.shape != tuple(shape):
        g = numpy.broadcast_to(g, shape)
    return numpy.array(g, dtype=dtype, copy=True)


def _normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (list, tuple)):
        axes = axis
    else:
        axes = (axis,)
    normalized = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise _AxisError(a, ndim)
        normalized.append(a % ndim)
    return tuple(sorted(set(normalized)))


def _restructure(arr, x):
    """Gives ``arr`` (an array shaped like ``numpy.asarray(x)``) the structure of ``x``."""
    if isinstance(x, _SEQUENCES):
        items = [_restructure(arr[i], xi) for i, xi in enumerate(x)]
        return items if isinstance(x, list) else tuple(items)
    if isinstance(x, numpy.ndarray):
        return _fresh_array(arr, x.shape)
    return _to_scalar(arr)


# --------------------------------------------------------------------------------------------
# Zeros and sums of adjoints


def init_grad(x):
    """The zero adjoint shaped like ``x``.

    Floats, ints, bools and NumPy scalars give ``0.0`` (``0j`` when complex); arrays give zeros
    of their dtype when it is floating or complex, else ``float64``; lists, tuples and dicts
    give the same structure of zeros; ``None`` gives ``None``.
    """
    if x is None or x is _MISSING:
        return None
    if isinstance(x, numpy.ndarray):
        return numpy.zeros(x.shape, dtype=_float_dtype(x.dtype))
    if isinstance(x, numpy.generic):
        kind = x.dtype.kind
        if kind == "c":
            return 0j
        return 0.0 if kind in "biuf" else None  # numpy.str_, numpy.datetime64, ...: no adjoint
    if isinstance(x, numbers.Number):
        return 0.0 if isinstance(x, numbers.Real) else 0j
    if isinstance(x, list):
        return [init_grad(v) for v in x]
    if isinstance(x, tuple):
        return tuple(init_grad(v) for v in x)
    if isinstance(x, dict):
        return {k: init_grad(v) for k, v in x.items()}
    if isinstance(x, (str, bytes, bytearray, range, slice, type, numpy.dtype, types.ModuleType)) or callable(x):
        # Values that cannot carry a derivative: their adjoint is always zero.
        return None
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return numpy.zeros(numpy.shape(x), dtype=_float_dtype(x.dtype))
    attributes = _attributes(x)
    if attributes is not None:
        # A parameter container (a dataclass, an object with attributes): a mapping of the
        # zero adjoints of its differentiable attributes.
        zeros = {name: init_grad(v) for name, v in attributes.items() if _carries_adjoint(v)}
        return {name: z for name, z in zeros.items() if z is not None}
    raise TypeError(f"tangent.init_grad: no zero adjoint for a value of type {type(x).__name__}")


# Callables that are code, not objects holding parameters.
_NOT_CONTAINERS = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    numpy.ufunc,
)


def _attributes(obj):
    """The attributes of a parameter container by name: a dataclass's fields, else the
    instance's `__dict__` or `__slots__`; None for anything else."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if hasattr(obj, f.name)}
    if isinstance(obj, _NOT_CONTAINERS):
        return None
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        slots = getattr(cls, "__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    if not names:
        # An object of a user's class with no attributes (a stateless activation, a loss
        # head): an empty container; anything else is not one.
        return {} if isinstance(getattr(obj, "__dict__", None), dict) else None
    return {n: getattr(obj, n) for n in names if not n.startswith("__") and hasattr(obj, n)}


def _carries_adjoint(v):
    """Floats, complex numbers, float arrays and containers of them; not ints or flags."""
    if isinstance(v, (bool, int, numpy.integer, numpy.bool_)):
        return False
    if isinstance(v, numpy.ndarray):
        return v.dtype.kind in "fc"
    return isinstance(v, (float, complex, numpy.floating, numpy.complexfloating, list, tuple, dict)) or _attributes(v) is not None


def attribute_grads(g, obj):
    """The gradient of a parameter container: a mapping with an entry for every
    differentiable attribute of ``obj`` (zero for those the function did not read).

    A parameter the function reads attributes of may be an array after all (``X.format``
    checked for sparse matrices, ``X.dtype``): its adjoint is then the whole value's, kept."""
    if g is not None and not isinstance(g, dict):
        return g
    if isinstance(obj, tuple) and hasattr(type(obj), "_fields"):  # a named tuple read by name
        full = {f: init_grad(v) for f, v in zip(obj._fields, obj) if _carries_adjoint(v)}
    else:
        full = init_grad(obj)
    if isinstance(g, dict):
        full.update(g)
    return full


def resolves_to(obj, name, function):
    """True when ``obj.name`` is the method ``function`` (the one a generated derivative was
    written for); raises TypeError when ``obj``'s class overrides it."""
    found = getattr(type(obj), name, None)
    if found is function:
        return True
    cls = type(obj).__name__
    owner = getattr(function, "__qualname__", "").rpartition(".")[0]
    if type(obj).__qualname__ == owner and type(obj).__module__ == getattr(function, "__module__", None):
        # Not an override: the object's class is an earlier class of the same name, which
        # its module defined again (the derivative can only name the one bound to it now).
        raise TypeError(
            f"this {cls} is an instance of a class `{cls}` that its module defined again later "
            f"({_defined_at(function)}): the derivative calls that class's `{name}`, not this "
            f"object's ({_defined_at(found)}); a method of the earlier class that calls "
            f"`self.{name}` cannot be differentiated once the name `{cls}` is bound to another class"
        )
    raise TypeError(
        f"`{name}` of this {cls} is not `{function.__qualname__}`, which this derivative was "
        f"generated for: differentiate {cls}'s own method (tangent.grad({cls}.<method>) or the "
        f"bound method) so that its override is used"
    )


def enter_warnings_scope():
    """What ``with warnings.catch_warnings():`` does on entering, for a derivative that runs
    the block's statements without the ``with``: the warning filters they set are undone by
    ``exit_warnings_scope`` when the block is done."""
    import warnings

    scope = warnings.catch_warnings()
    scope.__enter__()
    return scope


def exit_warnings_scope(scope):
    """Restores the warning filters ``enter_warnings_scope`` saved."""
    scope.__exit__(None, None, None)


def same_object(value, original, message):
    """Raises ``UnsupportedError(message)`` unless ``value`` is ``original`` itself (what a
    derivative read ``out=np.asarray(x)`` as: the write goes into ``x``)."""
    if value is not original:
        from tangent.errors import UnsupportedError

        raise UnsupportedError(message)


def numpy_namespace(xp):
    """Checks that ``xp``, an array namespace a function was handed (``def f(x, xp)``), is
    NumPy or a compatibility layer over it: the derivative was generated reading ``xp`` as
    NumPy. Raises UnsupportedError for any other."""
    name = getattr(xp, "__name__", "")
    if xp is numpy or name == "numpy" or name.endswith("array_api_compat.numpy"):
        return
    from tangent.errors import UnsupportedError

    raise UnsupportedError(
        f"this derivative reads the array namespace `xp` as NumPy, but it was given {xp!r}: "
        "Tangent differentiates NumPy arrays; call the function with NumPy's namespace"
    )


def is_function(value, expected, name):
    """True when parameter ``name`` holds ``expected``, the function its default names, which a
    derivative was specialized for; raises TypeError when it was given another function."""
    if value is expected:
        return True
    wanted = getattr(expected, "__qualname__", None) or repr(expected)
    given = getattr(value, "__qualname__", None) or repr(value)
    raise TypeError(
        f"this derivative was generated for `{name}={wanted}` (the parameter's default), and was "
        f"given `{name}={given}`: differentiate `functools.partial(f, {name}={given})` (or a "
        "function calling f with it) to get that function's derivative"
    )


def _defined_at(function):
    """``file:line`` of a function's definition, or its repr when it has no code."""
    code = getattr(function, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else repr(function)


class ObjectTangent(dict):
    """The tangent of an object made inside a differentiated function (``Linear(w, b)``): its
    attributes' tangents by name, read back by ``attribute_tangent``; ``+`` merges two (entries
    of the same attribute add)."""

    __slots__ = ()

    def __add__(self, other):
        if other is None or (type(other) in (int, float) and other == 0):
            return ObjectTangent(self)
        if not isinstance(other, dict):
            return NotImplemented
        return ObjectTangent(add_grad(dict(self), dict(other)))

    __radd__ = __add__


def object_tangent(name, t):
    """The tangent of an object whose attribute ``name`` has tangent ``t`` (others zero)."""
    return ObjectTangent({name: t})


def attribute_grads_adjoint(gy, g):
    """The adjoint of ``attribute_grads(g, obj)`` with respect to ``g``: the entries of ``gy``
    (a mapping; None for zero; a number for the same number in every entry) at ``g``'s
    attributes."""
    if not isinstance(g, dict):
        return None
    if gy is None:
        return {k: init_grad(v) for k, v in g.items()}
    if not isinstance(gy, dict):  # a scalar seed standing for every entry
        return {k: grad_like(gy, v) for k, v in g.items()}
    return {k: gy[k] if k in gy else init_grad(v) for k, v in g.items()}


def attribute_tangent(t, name, value):
    """The tangent of ``obj.name`` given the tangent ``t`` of ``obj``: a mapping (or an object
    with that attribute); a missing entry is zero."""
    if isinstance(t, dict):
        d = t.get(name)
    elif isinstance(t, (float, numpy.floating)) or (type(t) is int):
        return grad_like(t, value)  # a number seeds every entry alike
    else:
        d = getattr(t, name, None)
    return init_grad(value) if d is None else d


def add_grad(a, b):
    """The sum of two adjoints; ``None`` is zero; lists, tuples and dicts add elementwise.

    The result is a new object: it never aliases an array argument.
    """
    ta = type(a)
    if ta is float or ta is _ndarray or ta is _float64:
        tb = type(b)
        if tb is float or tb is _ndarray or tb is _float64:
            return a + b  # a new value (a new array when either is one)
    if a is None:
        return _copy_grad(b)
    if b is None:
        return _copy_grad(a)
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            raise TypeError(
                "tangent.add_grad: cannot add a dict adjoint and a "
                f"{type(b if isinstance(a, dict) else a).__name__} adjoint"
            )
        out = {k: add_grad(v, b.get(k)) for k, v in a.items()}
        for k, v in b.items():
            if k not in out:
                out[k] = _copy_grad(v)
        return out
    if isinstance(a, _SEQUENCES) or isinstance(b, _SEQUENCES):
        seq = a if isinstance(a, _SEQUENCES) else b
        other = b if seq is a else a
        # A zero written as a number (a zero tangent of a list's derivative): adds nothing.
        if type(other) in (int, float) and other == 0:
            return _copy_grad(seq)
        if len(a) != len(b):
            raise ValueError(
                f"tangent.add_grad: cannot add adjoints of lengths {len(a)} and {len(b)}"
            )
        items = [add_grad(a[i], b[i]) for i in range(len(seq))]
        return items if isinstance(seq, list) else tuple(items)
    if isinstance(a, numpy.ndarray) or isinstance(b, numpy.ndarray):
        return numpy.add(a, b)  # always a new array
    return a + b


def _copy_grad(g):
    """A copy of an adjoint deep enough that no array is shared."""
    if isinstance(g, numpy.ndarray):
        return g.copy()
    if isinstance(g, list):
        return [_copy_grad(v) for v in g]
    if isinstance(g, tuple):
        return tuple(_copy_grad(v) for v in g)
    if isinstance(g, dict):
        return {k: _copy_grad(v) for k, v in g.items()}
    return g


# --------------------------------------------------------------------------------------------
# Shapes


def unravel(g, a, order="C"):
    """The adjoint of ``numpy.ravel(a, order)``: the flat ``g`` laid back into ``a``'s shape,
    each element where ``ravel`` took it from (``'K'``/``'A'``: in ``a``'s memory order)."""
    shape = numpy.shape(a)
    if order in ("C", "F"):
        return numpy.reshape(g, shape, order=order)
    out = numpy.zeros(numpy.size(a), dtype=numpy.result_type(g, float))
    out[_ravelled_positions(a, order)] = numpy.ravel(g)
    return out.reshape(shape)


def ravel_like(g, a, order="C"):
    """``g`` (shaped as ``a``) flattened in the order ``numpy.ravel(a, order)`` reads ``a``:
    the inverse of :func:`unravel`."""
    if order in ("C", "F"):
        return numpy.ravel(g, order=order)
    return numpy.ravel(g)[_ravelled_positions(a, order)]


def _ravelled_positions(a, order):
    """The C-order position of each element ``numpy.ravel(a, order)`` gives, in its order
    (``'K'``/``'A'`` read ``a`` as it is laid out in memory)."""
    layout = numpy.empty_like(numpy.asarray(a), dtype=numpy.intp)
    layout[...] = numpy.arange(layout.size).reshape(numpy.shape(a))
    return numpy.ravel(layout, order=order)


def unbroadcast(g, x):
    """Reduces (sums) or expands the adjoint ``g`` to the shape of ``x``.

    A scalar ``x`` gives ``float(sum(g))``. For an array ``x``, ``g`` is summed over its extra
    leading axes and over the axes where ``x`` has size 1, and a smaller ``g`` is broadcast up
    to ``x.shape``; the result is a writable float array (``g`` itself when it already is one
    of ``x``'s shape: adjoints are never updated in place). Lists and tuples are handled
    elementwise.
    """
    # Fast paths first: generated code calls this for every broadcasting operand.
    tx = type(x)
    if tx is _ndarray:
        if type(g) is _ndarray and g.shape == x.shape and g.dtype.kind in "fc" and g.flags.writeable:
            return g
    elif tx is float or tx is _float64:
        tg = type(g)
        if tg is float:
            return g
        if tg is _float64:
            return float(g)
    if g is None or x is None:
        return None
    if _is_scalar(x):
        return _to_scalar(numpy.sum(g))
    if isinstance(x, _SEQUENCES):
        n = len(x)
        if isinstance(g, _SEQUENCES) or (isinstance(g, numpy.ndarray) and g.ndim >= 1):
            if len(g) != n:
                raise ValueError(
                    f"tangent.unbroadcast: adjoint of length {len(g)} for a value of length {n}"
                )
            items = [unbroadcast(g[i], x[i]) for i in range(n)]
        else:
            items = [unbroadcast(g, xi) for xi in x]
        return items if isinstance(x, list) else tuple(items)
    if isinstance(x, numpy.ndarray) or hasattr(x, "shape"):
        shape = tuple(numpy.shape(x))
        g = numpy.asarray(g)
        extra = g.ndim - len(shape)
        if extra > 0:
            g = g.sum(axis=tuple(range(extra)))
        # Right-align g with x; sum where x has size 1 and g does not.
        offset = len(shape) - g.ndim
        axes = tuple(i for i in range(g.ndim) if shape[i + offset] == 1 and g.shape[i] != 1)
        if axes:
            g = g.sum(axis=axes, keepdims=True)
        return _fresh_array(g, shape)
    return _copy_grad(g)


def sequence_like(g, like):
    """The adjoint (or tangent) ``g`` of the items of a sequence, laid out as ``like``: a list
    or a tuple of the items' adjoints (zeros for ``None``), or for an array the array of its
    rows' adjoints (``tuple(a)``, ``list(a)`` iterate rows)."""
    if g is None:
        return init_grad(like)
    if isinstance(g, (list, tuple)) and isinstance(like, (numbers.Number, numpy.generic)):
        # The adjoint of a number given to every item (a seed): what the items give back.
        return float(numpy.sum([numpy.sum(x) for x in g if x is not None]))
    count = len(like) if isinstance(like, (list, tuple)) or numpy.ndim(like) > 0 else 0
    if isinstance(g, (list, tuple)) or (numpy.ndim(g) > 0 and len(g) == count):
        items = list(g)
    else:
        items = [g] * count  # a seed for every item (a number, or an array each broadcasts)
    if isinstance(like, numpy.ndarray):
        rows = [numpy.zeros(like.shape[1:]) if x is None else grad_like(x, like[i]) for i, x in enumerate(items)]
        return numpy.reshape(numpy.stack(rows), like.shape) if rows else init_grad(like)
    if isinstance(like, (list, tuple)):
        filled = [init_grad(v) if x is None else grad_like(x, v) for x, v in zip(items, like)]
        return type(like)(filled) if type(like) in (list, tuple) else filled
    return items


def grad_like(g, like):
    """The adjoint ``g`` given the layout of ``like``, for the derivatives of the helpers here.

    For arrays and scalars, ``g`` is broadcast up to the broadcast of both shapes (a scalar
    seed of an array output becomes an array; a larger ``g`` stays as it is). Lists, tuples
    and dicts already carry their structure and come back as they are. ``None`` (a zero
    adjoint) gives zeros like ``like``.
    """
    tg, tl = type(g), type(like)
    if tg is _ndarray:
        if tl is _ndarray and g.shape == like.shape:
            return g
    elif tg is float or tg is _float64:
        if tl is float or tl is _float64:
            return g
    if g is None:
        return init_grad(like)
    if isinstance(g, (list, tuple, dict)) or isinstance(like, dict):
        return g
    if isinstance(like, (list, tuple)):
        # An array standing for a list's adjoint (one row per item).
        return _restructure(numpy.broadcast_to(g, numpy.shape(like)), like)
    return numpy.broadcast_to(g, numpy.broadcast_shapes(numpy.shape(g), numpy.shape(like)))


def unreduce(g, x, axis=None, keepdims=False):
    """Expands the adjoint ``g`` of a reduction of ``x`` over ``axis`` back to ``x``'s shape.

    ``axis`` is None, an int or a tuple of ints (negative allowed). When ``keepdims`` is false
    the reduced axes are re-inserted first. The result is a new array (a float for scalar
    ``x``; the structure of ``x`` for lists and tuples).
    """
    # Fast paths: a float seed of a whole-array reduction, a scalar reduced to itself.
    tg = type(g)
    if tg is float or tg is numpy.float64:
        tx = type(x)
        if tx is numpy.ndarray and axis is None:
            out = numpy.empty(x.shape)  # float64, as g is
            out.fill(g)  # faster than numpy.full for small arrays
            return out
        if tx is float or tx is numpy.float64:
            return float(g)
    if g is None or x is None:
        return None
    if _is_scalar(x):
        return _to_scalar(numpy.sum(g))
    shape = tuple(numpy.shape(x))
    g = numpy.asarray(g)
    if not keepdims:
        axes = _normalize_axes(axis, len(shape))
        if g.ndim + len(axes) == len(shape):
            g = numpy.expand_dims(g, axes) if axes else g
    result = _fresh_array(g, shape)
    if isinstance(x, _SEQUENCES):
        return _restructure(result, x)
    return result


# --------------------------------------------------------------------------------------------
# Indexing


def _index_basic_only(index):
    """True when ``index`` selects each element at most once (no integer arrays)."""
    parts = index if isinstance(index, tuple) else (index,)
    for part in parts:
        if part is None or part is Ellipsis or isinstance(part, (slice, numbers.Integral)):
            continue
        if isinstance(part, numpy.integer):
            continue
        arr = numpy.asarray(part)
        if arr.dtype == numpy.bool_:
            continue
        return False
    return True


def _sequence_positions(seq, index):
    if isinstance(index, slice):
        return list(range(*index.indices(len(seq))))
    if isinstance(index, (numbers.Integral, numpy.integer)):
        return [int(index)]
    raise TypeError(
        f"tangent: a {type(seq).__name__} adjoint can only be indexed by an int or a slice, "
        f"not {type(index).__name__}"
    )


def add_grad_at(b, x, index, g):
    """A copy of adjoint ``b`` with ``g`` added at ``index`` (``b`` itself is not changed).

    ``None`` for ``b`` means zeros shaped like ``x``. Arrays follow ``numpy.add.at`` (repeated
    integer indices accumulate); lists take an int or a slice; dicts take a key.
    """
    if b is None:
        b = init_grad(x)
    if g is None:
        return _copy_grad(b)
    if isinstance(b, dict):
        out = dict(b)
        out[index] = add_grad(out.get(index), g)
        return out
    if isinstance(b, _SEQUENCES):
        out = list(b)
        if isinstance(index, slice):
            positions = _sequence_positions(out, index)
            if isinstance(g, _SEQUENCES) or (isinstance(g, numpy.ndarray) and g.ndim >= 1):
                if len(g) != len(positions):
                    raise ValueError(
                        f"tangent.add_grad_at: adjoint of length {len(g)} for a slice of "
                        f"length {len(positions)}"
                    )
                for gi, i in zip(g, positions):
                    out[i] = add_grad(out[i], gi)
            else:
                for i in positions:
                    out[i] = add_grad(out[i], g)
        else:
            (i,) = _sequence_positions(out, index)
            out[i] = add_grad(out[i], g)
        return out if isinstance(b, list) else tuple(out)
    if _is_scalar(b) and not isinstance(b, numpy.ndarray):
        # A scalar adjoint indexed by `()` or `...`: the whole value.
        return add_grad(b, _to_scalar(numpy.sum(g)))
    base = numpy.asarray(b)
    dtype = numpy.result_type(_float_dtype(base.dtype), numpy.asarray(g).dtype)
    out = numpy.array(base, dtype=_float_dtype(dtype), copy=True)
    if _index_basic_only(index):
        out[index] += g
    else:
        numpy.add.at(out, index, g)
    return out


def zero_at(b, index):
    """A copy of adjoint ``b`` whose entry at ``index`` is zero (``None`` stays ``None``)."""
    if b is None:
        return None
    if isinstance(b, dict):
        out = dict(b)
        if index in out:
            out[index] = init_grad(out[index])
        return out
    if isinstance(b, _SEQUENCES):
        out = list(b)
        for i in _sequence_positions(out, index):
            out[i] = init_grad(out[i])
        return out if isinstance(b, list) else tuple(out)
    if isinstance(b, numpy.ndarray):
        out = b.copy()
        out[index] = 0
        return out
    return init_grad(b)


def copy(v):
    """A copy of arrays (so that pushed slices are not views), lists and dicts; others as is."""
    if isinstance(v, numpy.ndarray):
        return v.copy()
    if isinstance(v, list):
        return list(v)
    if isinstance(v, dict):
        return dict(v)
    return v


def _lifted_shape(part, axis, ndmin):
    """The shape `part` has where it is joined: at least `ndmin` dimensions (NumPy's
    atleast_1d/2d rules), flattened when `axis` is None."""
    if axis is None:
        return (numpy.size(part),)
    shape = numpy.shape(part)
    # atleast_1d: () -> (1,); atleast_2d: () -> (1, 1), (n,) -> (1, n).
    return (1,) * max(ndmin - len(shape), 0) + shape


def _as_sequence_of(items, like):
    return items if isinstance(like, list) else tuple(items)


def split_like(g, parts, axis, ndmin=0):
    """The adjoint of joining ``parts`` along ``axis`` (``concatenate``, ``hstack``,
    ``vstack``): ``g`` cut at the parts' boundaries, each piece with its part's shape (a float
    for a scalar part). ``axis`` None means the parts were flattened; ``ndmin`` is the rank
    they were raised to first (1 for hstack, 2 for vstack)."""
    g = numpy.asarray(g)
    shapes = [_lifted_shape(p, axis, ndmin) for p in parts]
    along = 0 if axis is None else axis
    sizes = [s[along] for s in shapes]
    source = numpy.ravel(g) if axis is None else g
    pieces = numpy.split(source, numpy.cumsum(sizes)[:-1], axis=along)
    if axis is None:  # flattened parts: each piece back in its part's shape
        pieces = [numpy.reshape(piece, numpy.shape(part)) for piece, part in zip(pieces, parts)]
    return _as_sequence_of([unbroadcast(piece, part) for piece, part in zip(pieces, parts)], parts)


def join_like(pieces, parts, axis, ndmin=0):
    """The adjoint of ``split_like``: the pieces (adjoints shaped like ``parts``) raised as
    the parts were and joined along ``axis`` (flattened and joined when ``axis`` is None)."""
    shapes = [_lifted_shape(p, axis, ndmin) for p in parts]
    raised = [numpy.reshape(numpy.broadcast_to(piece, numpy.shape(part)), shape) for piece, part, shape in zip(pieces, parts, shapes)]
    return numpy.concatenate(raised, axis=0 if axis is None else axis)


def unstack(g, parts, axis):
    """The adjoint of ``numpy.stack(parts, axis)``: ``g``'s slices along ``axis``, each with its
    part's shape (a float for a scalar part)."""
    g = numpy.asarray(g)
    slices = numpy.moveaxis(g, axis, 0)
    return _as_sequence_of([unbroadcast(s, part) for s, part in zip(slices, parts)], parts)


def _row_layout(shape, axis):
    axes = _normalize_axes(axis, len(shape))
    kept = [i for i in range(len(shape)) if i not in axes]
    return kept, list(axes)


def to_rows(a, axis=None):
    """``a`` as a 2-D array with one row per slice that a reduction over ``axis`` (None: every
    axis) combines: the reduced axes last, flattened. ``from_rows`` undoes it."""
    a = numpy.asarray(a)
    kept, axes = _row_layout(a.shape, axis)
    n = 1
    for i in axes:
        n *= a.shape[i]
    rows = 1
    for i in kept:
        rows *= a.shape[i]
    return numpy.reshape(numpy.transpose(a, kept + axes), (rows, n))


def from_rows(m, like, axis=None):
    """The inverse of ``to_rows(like, axis)``: the rows ``m`` laid out like ``like``."""
    shape = numpy.shape(like)
    kept, axes = _row_layout(shape, axis)
    moved = numpy.reshape(m, [shape[i] for i in kept + axes])
    out = numpy.transpose(moved, numpy.argsort(kept + axes))
    return out if isinstance(like, numpy.ndarray) or out.ndim else _to_scalar(out)


def diagonal_like(g, like, offset=0, axis1=0, axis2=1):
    """The adjoint of ``numpy.diagonal(like, offset, axis1, axis2)``: zeros shaped like
    ``like`` with ``g`` on that diagonal."""
    g = numpy.asarray(g)
    out = numpy.zeros(numpy.shape(like), dtype=_float_dtype(numpy.result_type(g, like)))
    moved = numpy.moveaxis(out, (axis1, axis2), (-2, -1))  # a view: writing it writes out
    n = g.shape[-1] if g.ndim else 0
    rows = numpy.arange(n) + max(-offset, 0)
    cols = numpy.arange(n) + max(offset, 0)
    moved[..., rows, cols] = g
    return out


def scatter_along_axis(g, indices, axis, like):
    """The adjoint of ``numpy.take_along_axis(like, indices, axis)``: zeros shaped like
    ``like`` with each element of ``g`` added where it was taken from (repeated indices add up;
    ``axis`` None means ``like`` was flattened)."""
    g = numpy.asarray(g)
    indices = numpy.asarray(indices)
    shape = numpy.shape(like)
    out = numpy.zeros(numpy.size(like) if axis is None else shape, dtype=_float_dtype(numpy.result_type(g, like)))
    where = list(numpy.ix_(*[numpy.arange(n) for n in indices.shape]))
    where[-1 if axis is None else axis] = indices
    numpy.add.at(out, tuple(where), numpy.broadcast_to(g, indices.shape))
    return numpy.reshape(out, shape)


def unshared(*grads, seed=None):
    """The gradients a generated function returns, each its own memory: inside a gradient,
    adjoints share arrays (nothing writes them in place), but the caller may. An array that may
    share memory with the seed or with an earlier gradient comes back as a copy (also inside
    lists and tuples). One gradient comes back alone, several as a tuple."""
    if len(grads) == 1 and type(seed) is float:
        # The common case: one gradient, a float seed that no array can share memory with.
        g = grads[0]
        if type(g) is not numpy.ndarray or (g.dtype.kind in "fc" and g.flags.writeable):
            if type(g) is numpy.ndarray or not isinstance(g, (list, tuple, dict)):
                return g
    seen = list(seed) if isinstance(seed, (tuple, list)) else [seed]
    owned = tuple(_owned(g, seen) for g in grads)
    return owned[0] if len(owned) == 1 else owned


def _owned(g, seen):
    # A plain function, not a closure: a recursive closure would be a reference cycle that
    # keeps the gradients' arrays alive until the garbage collector runs.
    if isinstance(g, numpy.ndarray):
        if g.dtype.kind not in "fc":
            g = g.astype(numpy.float64)  # an int seed gives int adjoints
        elif not g.flags.writeable or any(isinstance(s, numpy.ndarray) and numpy.may_share_memory(g, s) for s in seen):
            g = g.copy()  # a read-only broadcast of a seed, or memory the caller has
        seen.append(g)
        return g
    if isinstance(g, list):
        return [_owned(v, seen) for v in g]
    if isinstance(g, tuple):
        return tuple(_owned(v, seen) for v in g)
    if isinstance(g, dict):
        return {k: _owned(v, seen) for k, v in g.items()}
    return g


def appended(items, value):
    """A new list: ``items`` followed by ``value`` (the tangent of ``items.append(value)``; the
    caller's list is never changed)."""
    return [*items, value]


class _Missing:
    """Marks a dict key that did not exist before an item assignment."""

    __slots__ = ()

    def __repr__(self):
        return "<missing item>"


_MISSING = _Missing()


def save_item(container, index):
    """The value at ``container[index]`` before an assignment overwrites it.

    Arrays give a copy (not a view that the assignment would change). A dict key that does not
    exist yet gives a marker that ``restore_item`` turns back into a deletion.
    """
    if isinstance(container, dict) and index not in container:
        return _MISSING
    return copy(container[index])


def restore_item(container, index, saved):
    """Undoes an item assignment in place: ``container[index] = saved`` (the backward sweep)."""
    if saved is _MISSING:
        container.pop(index, None)
    else:
        container[index] = saved


# --------------------------------------------------------------------------------------------
# Changes in place (see ARCHITECTURE.md, "Effects")


def _is_mutable(v):
    return isinstance(v, (numpy.ndarray, list, dict, set))


def write_into(obj, value):
    """``obj`` holding ``value``'s contents, changed in place when it can be (the same object
    for an array of the same shape, a list, a dict, recursively for their items); otherwise
    ``value`` itself (a number, a tuple, an array of another shape or type).

    Generated code gives an object back the contents it had (the backward pass undoing a
    change in place, so that every name sharing the object sees them) and applies a change in
    place computed aside (forward mode). Its value is ``value``'s.
    """
    if type(obj) is numpy.ndarray and type(value) is numpy.ndarray:
        if obj.shape == value.shape and obj.dtype == value.dtype and obj.flags.writeable and obj is not value:
            obj[...] = value
            return obj
        return value
    if type(obj) is numpy.ndarray and obj.flags.writeable and obj.ndim == 0 and isinstance(value, (numbers.Number, numpy.generic)):
        obj[...] = value
        return obj
    if isinstance(obj, list) and isinstance(value, list) and obj is not value:
        if len(obj) == len(value):
            obj[:] = [write_into(a, b) for a, b in zip(obj, value)]
        else:
            obj[:] = value
        return obj
    if isinstance(obj, dict) and isinstance(value, dict) and obj is not value:
        items = {k: write_into(obj[k], v) if k in obj else v for k, v in value.items()}
        obj.clear()
        obj.update(items)
        return obj
    return value


def snapshot(v):
    """A copy of ``v`` that later changes in place of ``v`` (or of the arrays, lists and dicts
    in it) do not reach: what ``write_into`` puts back."""
    if isinstance(v, numpy.ndarray):
        return v.copy()
    if isinstance(v, list):
        return [snapshot(x) for x in v]
    if isinstance(v, tuple):
        return tuple(snapshot(x) for x in v)
    if isinstance(v, dict):
        return {k: snapshot(x) for k, x in v.items()}
    return v


def broadcast_into(value, like):
    """What ``numpy.copyto(like, value)`` leaves in ``like``: ``value`` broadcast to its shape
    (a new array)."""
    out = numpy.empty_like(like)
    numpy.copyto(out, value)
    return out


def check_updated(argument, value, message=None):
    """Checks that ``value``, the new value of an ``argument`` a helper wrote into, is that same
    object (the helper changed it in place). A helper that gave its parameter a new value
    instead (a number: ``p *= 2`` rebinds it) did not change the caller's ``argument``, so its
    derivative would not be the caller's: an error, never a wrong derivative."""
    if value is not argument:
        from tangent.errors import UnsupportedError

        raise UnsupportedError(
            message
            or "a helper Tangent took for one changing its argument in place gave it a new value "
            f"instead (an argument of type {type(argument).__name__}): differentiate a helper that "
            "returns the new value"
        )


def _shares(value, other, depth=0):
    """May ``other`` (or something it holds) share memory with ``value``?"""
    if other is value:
        return True
    if type(other) is numpy.ndarray and type(value) is numpy.ndarray:
        return numpy.may_share_memory(value, other)
    if depth < 32:
        if isinstance(other, (list, tuple)):
            return any(_shares(value, o, depth + 1) for o in other)
        if isinstance(other, dict):
            return any(_shares(value, o, depth + 1) for o in other.values())
    return False


def in_place_check(value, message, *others, views=()):
    """Raises ``UnsupportedError(message)`` before a change in place of ``value`` that one of
    ``others`` would see (it shares ``value``'s memory, holds it, or is it) and the derivative
    could not follow. A number is never changed in place (``x op= v`` gives it a new value).
    Without ``others`` or ``views``, any array, list, dict or set raises.

    ``views``: (view, base) pairs the statements after the change keep in step when they
    share memory as arrays (``is_view_of``); sharing of another kind (a list holding the
    array) raises."""
    if not _is_mutable(value):
        return
    if not any(_shares(v, b) and not is_view_of(v, b) for v, b in views):
        if others and not any(_shares(value, o) for o in others):
            return
        if not others and views:
            return
    from tangent.errors import UnsupportedError

    raise UnsupportedError(message)


def is_view_of(view, base):
    """Are ``view`` and ``base`` the same array, list or dict, or NumPy arrays sharing memory
    (one a view of the other)?
    Generated code branches on it to keep a view and its base in step after a change in place
    of one of them; a copy (advanced indexing, a reshape that had to copy) shares nothing."""
    if view is base:
        return _is_mutable(view)
    return type(view) is numpy.ndarray and type(base) is numpy.ndarray and numpy.may_share_memory(view, base)


def _same(a, b, depth=0):
    if type(a) is numpy.ndarray:
        return type(b) is numpy.ndarray and a.shape == b.shape and numpy.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if depth < 32 and isinstance(a, (list, tuple)) and type(a) is type(b):
        return len(a) == len(b) and all(_same(x, y, depth + 1) for x, y in zip(a, b))
    if depth < 32 and isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], depth + 1) for k in a)
    return True


def check_unchanged(values, saved, message):
    """Raises ``UnsupportedError(message)`` when ``values`` (what a call Tangent does not know
    was given) differ from their snapshot ``saved`` taken before it: the call changed them in
    place, which the derivative does not see."""
    if not _same(saved, values):
        from tangent.errors import UnsupportedError

        raise UnsupportedError(message)


def is_mutable(*values):
    """Are all ``values`` changed in place by ``x op= v`` (arrays, lists, dicts, sets), or
    none (numbers, tuples)? Generated code branches on it; a mix raises."""
    kinds = {_is_mutable(v) for v in values}
    if len(kinds) > 1:
        from tangent.errors import UnsupportedError

        raise UnsupportedError("arguments a helper changes with `op=` are some arrays, some numbers: Tangent cannot differentiate that call")
    return kinds == {True}


@contextlib.contextmanager
def insert_grad_of(x):
    """Gradient surgery: ``with tangent.insert_grad_of(x) as dx: ...`` in a primal function.

    The engine turns the body into code run on the adjoint of ``x`` in the backward pass. When
    the primal itself runs as plain Python, the body runs on a zero adjoint and has no effect.
    """
    yield init_grad(x)


def _check_every(every):
    if every is not None and (isinstance(every, bool) or not isinstance(every, (int, numpy.integer)) or every < 1):
        raise ValueError(f"checkpoint(every=...) needs a positive int, not {every!r}")


class _CheckpointBlock:
    """What ``with tangent.checkpoint():`` enters: nothing, when the primal runs."""

    __slots__ = ("every",)

    def __init__(self, every):
        self.every = every

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False

    def __call__(self, function):
        # `@tangent.checkpoint(every=k)`: the primal runs; generating its gradient says why not.
        return function


def checkpoint(every=None, levels=1):
    """Trades compute for memory in the gradient; does nothing when the primal runs.

    ``with tangent.checkpoint():`` around a ``for`` loop: the gradient keeps the loop's state
    at the start of each segment of ``every`` iterations (about the square root of the count
    when not given) instead of every iteration's values, and runs each segment again just
    before its backward pass. Around other statements: the block's values are computed again
    instead of kept. ``@tangent.checkpoint`` on a function: each of its ``for`` loops (not
    inside another loop) that can be checkpointed is. ``levels=n`` (a literal, 1 to 8) nests
    segments in segments: about (n + 1) T^(1 / (n + 1)) values kept for n extra forward runs
    (``levels=3`` on 10,000 steps: about 40 values instead of 200).
    """
    if callable(every) and not isinstance(every, (int, numpy.integer)):
        return every  # @tangent.checkpoint: the function itself, unchanged
    _check_every(every)
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= 8:
        raise ValueError(f"checkpoint(levels=...) needs an int from 1 to 8, not {levels!r}")
    return _CheckpointBlock(every)


def checkpoint_segments(steps, every=None, levels=1):
    """The iterations ``steps`` (a range) cut into consecutive segments of ``every``, by
    default of about len(steps) ** (levels / (levels + 1)): with ``levels`` nested levels of
    segments (each cut again with one level less), T iterations keep about
    (levels + 1) * T ** (1 / (levels + 1)) values; one level is the square root, the fewest
    for one extra forward run."""
    n = len(steps)
    _check_every(every)
    if every is None:
        every = _segment_length(n, levels)
    every = int(every)
    return [steps[i:i + every] for i in range(0, n, every)]


def _segment_length(n, levels):
    if n <= 1:
        return 1
    if levels == 1:
        return math.isqrt(n - 1) + 1  # the ceiling of sqrt(n), exactly
    length = max(1, math.ceil(n ** (levels / (levels + 1)) - 1e-9))
    return min(length, n)


# -------------------------------------------------------------------- special functions
#
# The derivatives of the gamma function family need the digamma function psi = (log Gamma)'
# and its derivatives psi^(n) (polygamma). NumPy has neither, and generated code must not
# need SciPy, so they are computed here in float64:
#
# - x >= 10 + n: the asymptotic (Stirling) series
#       psi(x)     ~ log(x) - 1/(2x) - sum_k B_2k / (2k x^2k)
#       psi^(n)(x) ~ (-1)^(n+1) [(n-1)!/x^n + n!/(2 x^(n+1)) + sum_k B_2k (2k+n-1)!/((2k)! x^(2k+n))]
#   with the Bernoulli numbers B_2 ... B_20 (the first omitted term is below 1e-17 relative);
# - 0 < x < 10 + n: the recurrence psi^(n)(x) = psi^(n)(x + 1) - (-1)^n n! / x^(n+1), applied
#   until the argument reaches the series' range;
# - psi within 1/4 of its positive zero x0 = 1.46163...: the Taylor series at x0 (the
#   recurrence would cancel there), with coefficients psi^(k)(x0) / k! computed once as above;
# - x < 0: the reflection formula, psi(1 - x) - psi(x) = pi cot(pi x) differentiated n times:
#   psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi^(n+1) P_n(cot(pi x)), where P_0(c) = c and
#   P_(k+1)(c) = -(1 + c^2) P_k'(c) (so that d^n/dx^n cot(pi x) = pi^n P_n(cot(pi x)));
# - x = 0, -1, -2, ...: poles, NaN.
#
# Accuracy: about 1e-15 relative for x > 0; for x < 0 about 1e-13, the conditioning of psi^(n)
# close to its poles and zeros there. Python floats take a scalar path (the same method with
# `math`), arrays a vectorized one.

_BERNOULLI_EVEN = (  # B_2, B_4, ..., B_20 as (numerator, denominator)
    (1, 6), (-1, 30), (1, 42), (-1, 30), (5, 66), (-691, 2730), (7, 6), (-3617, 510),
    (43867, 798), (-174611, 330),
)
# psi's positive zero 1.4616321449683623412626595... as the nearest double plus the rest.
_DIGAMMA_ROOT = (1.4616321449683622, 9.549995429965697e-17)
_DIGAMMA_ROOT_RADIUS = 0.25


# The tables below are computed on first use and cached (functools.cache: safe across threads).


@functools.cache
def _polygamma_series(n):
    """The coefficients c_k of psi^(n)'s asymptotic series in powers of 1/x^2, highest first."""
    coefficients = []
    for k, (num, den) in enumerate(_BERNOULLI_EVEN, start=1):
        b = fractions.Fraction(num, den)
        if n == 0:
            coefficients.append(float(b / (2 * k)))
        else:
            coefficients.append(float(b * math.factorial(2 * k + n - 1) / math.factorial(2 * k)))
    return tuple(reversed(coefficients))


@functools.cache
def _cot_derivative(n):
    """Integer coefficients of P_n (constant term first), d^n/dx^n cot(pi x) = pi^n P_n(cot(pi x))."""
    if n == 0:
        return (0, 1)  # P_0(c) = c
    p = _cot_derivative(n - 1)
    derivative = [i * p[i] for i in range(1, len(p))]
    out = [0] * (len(derivative) + 2)  # -(1 + c^2) P'(c)
    for i, a in enumerate(derivative):
        out[i] -= a
        out[i + 2] -= a
    return tuple(out)


@functools.cache
def _digamma_root_taylor():
    """psi^(k)(x0) / k! for k = 24, ..., 1 (highest first) at psi's positive zero x0."""
    hi, lo = _DIGAMMA_ROOT
    coefficients = []
    for k in range(24, 0, -1):
        value = _polygamma_large(k, _polygamma_shift(k, hi)) + _polygamma_large(k + 1, _polygamma_shift(k + 1, hi)) * lo
        coefficients.append(value / math.factorial(k))
    return tuple(coefficients)


def _polygamma_shift(n, x):
    """(t, s): x moved up by whole steps to t >= 10 + n, and s = sum of 1 / (each step's x)^(n+1)."""
    threshold = 10.0 + n
    if isinstance(x, float):
        s = 0.0
        while x < threshold:
            s += 1.0 / x ** (n + 1)
            x += 1.0
        return x, s
    t = numpy.array(x, dtype=numpy.float64, copy=True)
    s = numpy.zeros_like(t)
    small = t < threshold
    while small.any():
        s[small] += 1.0 / t[small] ** (n + 1)
        t[small] += 1.0
        small = t < threshold
    return t, s


def _polygamma_large(n, shifted):
    """psi^(n)(x) from ``_polygamma_shift(n, x)``: the asymptotic series and the recurrence."""
    t, s = shifted
    inv = 1.0 / t
    z = inv * inv
    series = 0.0
    for c in _polygamma_series(n):
        series = (series + c) * z
    if n == 0:
        log = math.log(t) if isinstance(t, float) else numpy.log(t)
        return log - 0.5 * inv - series - s
    value = inv**n * (math.factorial(n - 1) + 0.5 * math.factorial(n) * inv + series)
    # (-1)^(n+1) times the series, minus (-1)^n n! s.
    return (value + math.factorial(n) * s) if n % 2 else -(value + math.factorial(n) * s)


def _polygamma_float(n, x):
    """psi^(n)(x) for a Python float."""
    if math.isnan(x) or x == -math.inf or (x <= 0.0 and x.is_integer()):
        return math.nan  # NaN, a pole, or -inf (a limit of poles)
    if x < 0.0:
        r = x - round(x)
        c = 1.0 / math.tan(math.pi * r) if abs(r) <= 0.25 else math.copysign(math.tan(math.pi * (0.5 - abs(r))), r)
        poly = 0.0
        for a in reversed(_cot_derivative(n)):
            poly = poly * c + a
        reflected = _polygamma_float(n, 1.0 - x)
        return (reflected if n % 2 == 0 else -reflected) - math.pi ** (n + 1) * poly
    if n == 0 and abs(x - _DIGAMMA_ROOT[0]) < _DIGAMMA_ROOT_RADIUS:
        dx = (x - _DIGAMMA_ROOT[0]) - _DIGAMMA_ROOT[1]
        value = 0.0
        for a in _digamma_root_taylor():
            value = (value + a) * dx
        return value
    return float(_polygamma_large(n, _polygamma_shift(n, x)))


def _polygamma_array(n, x):
    """psi^(n) of a float64 array, for one order ``n >= 0``: the same method, elementwise."""
    out = numpy.full(x.shape, numpy.nan)
    pole = (x <= 0) & (x == numpy.floor(x))
    negative = (x < 0) & ~pole
    positive = x > 0  # NaN is in neither set and stays NaN
    if n == 0:
        root = positive & (numpy.abs(x - _DIGAMMA_ROOT[0]) < _DIGAMMA_ROOT_RADIUS)
        if root.any():
            dx = (x[root] - _DIGAMMA_ROOT[0]) - _DIGAMMA_ROOT[1]
            value = numpy.zeros_like(dx)
            for a in _digamma_root_taylor():
                value = (value + a) * dx
            out[root] = value
            positive &= ~root
    if positive.any():
        out[positive] = _polygamma_large(n, _polygamma_shift(n, x[positive]))
    if negative.any():
        xn = x[negative]
        r = xn - numpy.round(xn)
        near_half = numpy.abs(r) > 0.25
        c = numpy.empty_like(r)
        c[~near_half] = 1.0 / numpy.tan(numpy.pi * r[~near_half])
        c[near_half] = numpy.sign(r[near_half]) * numpy.tan(numpy.pi * (0.5 - numpy.abs(r[near_half])))
        poly = numpy.zeros_like(c)
        for a in reversed(_cot_derivative(n)):
            poly = poly * c + a
        reflected = _polygamma_array(n, 1.0 - xn)
        out[negative] = (reflected if n % 2 == 0 else -reflected) - math.pi ** (n + 1) * poly
    return out


def _polygamma_value(n, x):
    """psi^(n)(x) for one integer order: a Python float for scalar ``x``, else an array of
    ``x``'s floating dtype (float64 for integers)."""
    if _is_complex(x):
        raise TypeError("tangent.digamma/polygamma: complex arguments are not supported")
    if _is_scalar(x):
        return _polygamma_float(n, float(x))
    arr = numpy.asarray(x)
    out = _polygamma_array(n, arr.astype(numpy.float64))
    return out.astype(arr.dtype) if arr.dtype.kind == "f" and arr.dtype != numpy.float64 else out


def polygamma(n, x):
    """The ``n``-th derivative of the digamma function at ``x`` (``n = 0``: digamma itself).

    ``n`` is a non-negative integer, or an array of them broadcast against ``x``; ``x`` a real
    number or array. Poles (``x = 0, -1, -2, ...``) give NaN. A scalar gives a Python float, an
    array a new array of ``x``'s float dtype. NumPy only (see the comment above for the method).
    """
    orders = numpy.asarray(n)
    if (orders.dtype.kind not in "iuf" or numpy.any(orders < 0)
            or numpy.any(orders != numpy.floor(orders))):
        raise ValueError(f"tangent.polygamma: the order must be a non-negative integer, not {n!r}")
    if orders.ndim == 0:
        return _polygamma_value(int(orders), x)
    xs = numpy.asarray(x)
    orders, values = numpy.broadcast_arrays(orders, xs)
    out = numpy.empty(values.shape, dtype=numpy.float64 if xs.dtype.kind != "f" else xs.dtype)
    for order in numpy.unique(orders):
        mask = orders == order
        out[mask] = _polygamma_value(int(order), values[mask])
    return out


def digamma(x):
    """The digamma function psi(x) = d/dx log|Gamma(x)|, elementwise; ``polygamma(0, x)``.

    The derivative of ``math.lgamma`` and ``scipy.special.gammaln``; ``math.gamma``'s is
    ``gamma(x) * digamma(x)``. NaN at the poles ``x = 0, -1, -2, ...``.
    """
    return _polygamma_value(0, x)


# -------------------------------------------------------------------- matrix products
#
# The adjoints of `a @ b` are `g @ b.T` and `a.T @ g` for matrices. These helpers say so in
# one call and also handle what numpy.matmul allows: 1-D operands (promoted to a row or a
# column, then squeezed), stacks of matrices with broadcast batch axes, and a scalar seed.


def _matmul_operands(g, a, b):
    a = numpy.asarray(a)
    b = numpy.asarray(b)
    a2 = a[numpy.newaxis, :] if a.ndim == 1 else a
    b2 = b[:, numpy.newaxis] if b.ndim == 1 else b
    batch = numpy.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    g2 = numpy.asarray(g)
    full = batch + (a2.shape[-2], b2.shape[-1])
    if g2.ndim == 0:
        g2 = numpy.broadcast_to(g2, full)
    else:
        if b.ndim == 1:
            g2 = g2[..., numpy.newaxis]
        if a.ndim == 1:
            g2 = g2[..., numpy.newaxis, :]
        g2 = numpy.broadcast_to(g2, full)
    return a, b, a2, b2, g2


def _plain_matmul(g, a, b):
    """Matrices and vectors without batch axes, and an array adjoint of the product's shape:
    the common case, done without the general machinery."""
    return (
        type(g) is numpy.ndarray and type(a) is numpy.ndarray and type(b) is numpy.ndarray
        and a.ndim <= 2 and b.ndim <= 2 and a.ndim + b.ndim >= 3 and g.ndim == a.ndim + b.ndim - 2
    )


def _plain_adjoint_a(g, a, b):
    if b.ndim == 2:
        return g @ b.T  # also for a vector a: g (n,) @ b.T (n, k) is (k,)
    return g[:, numpy.newaxis] * b  # a matrix times a vector: the outer product of g and b


def _plain_adjoint_b(g, a, b):
    if a.ndim == 2:
        return a.T @ g
    return a[:, numpy.newaxis] * g  # a vector times a matrix: the outer product of a and g


def matmul_adjoint_a(g, a, b):
    """The adjoint of ``a`` in ``a @ b`` given the adjoint ``g`` of the product: ``g @ b.T``."""
    if _plain_matmul(g, a, b):
        return _plain_adjoint_a(g, a, b)
    a, b, a2, b2, g2 = _matmul_operands(g, a, b)
    ga = numpy.matmul(g2, numpy.swapaxes(b2, -1, -2))
    return numpy.reshape(unbroadcast(ga, a2), a.shape)


def matmul_adjoint_b(g, a, b):
    """The adjoint of ``b`` in ``a @ b`` given the adjoint ``g`` of the product: ``a.T @ g``."""
    if _plain_matmul(g, a, b):
        return _plain_adjoint_b(g, a, b)
    a, b, a2, b2, g2 = _matmul_operands(g, a, b)
    gb = numpy.matmul(numpy.swapaxes(a2, -1, -2), g2)
    return numpy.reshape(unbroadcast(gb, b2), b.shape)


def dot_adjoint_a(g, a, b):
    """The adjoint of ``a`` in ``numpy.dot(a, b)``."""
    if type(g) is numpy.ndarray and type(b) is numpy.ndarray and type(a) is numpy.ndarray:
        # A matrix times a vector or a matrix, the adjoint of the product's shape.
        if b.ndim == 2 and a.ndim <= 2 and g.ndim == a.ndim:
            return g @ b.T
    if _plain_matmul(g, a, b):  # matrices and vectors: dot is matmul
        return _plain_adjoint_a(g, a, b)
    if numpy.ndim(a) == 0 or numpy.ndim(b) == 0:
        return unbroadcast(numpy.asarray(g) * b, a)
    if numpy.ndim(b) <= 2:
        return matmul_adjoint_a(g, a, b)
    # N-D: dot contracts a's last axis with b's second-to-last one.
    y_ndim = numpy.ndim(a) - 1 + numpy.ndim(b) - 1
    g = numpy.broadcast_to(g, _dot_shape(a, b))
    b_axis = numpy.ndim(b) - 2
    b_free = [i for i in range(numpy.ndim(b)) if i != b_axis]
    g_from_b = list(range(numpy.ndim(a) - 1, y_ndim))
    return numpy.tensordot(g, b, (g_from_b, b_free))


def dot_adjoint_b(g, a, b):
    """The adjoint of ``b`` in ``numpy.dot(a, b)``."""
    if type(g) is numpy.ndarray and type(a) is numpy.ndarray and type(b) is numpy.ndarray:
        if a.ndim == 2 and b.ndim <= 2 and g.ndim == b.ndim:
            return a.T @ g
    if _plain_matmul(g, a, b):
        return _plain_adjoint_b(g, a, b)
    if numpy.ndim(a) == 0 or numpy.ndim(b) == 0:
        return unbroadcast(numpy.asarray(g) * a, b)
    if numpy.ndim(b) <= 2 and numpy.ndim(a) <= 2:
        return matmul_adjoint_b(g, a, b)
    g = numpy.broadcast_to(g, _dot_shape(a, b))
    b_axis = max(numpy.ndim(b) - 2, 0)
    a_free = list(range(numpy.ndim(a) - 1))
    return numpy.moveaxis(numpy.tensordot(a, g, (a_free, a_free)), 0, b_axis)


def _dot_shape(a, b):
    a_shape = numpy.shape(a)
    b_shape = numpy.shape(b)
    if len(b_shape) == 1:
        return a_shape[:-1]
    return a_shape[:-1] + b_shape[:-2] + b_shape[-1:]


# -------------------------------------------------------------------- einsum
#
# numpy.einsum(subscripts, *operands) is linear in each operand. The adjoint of operand k is
# itself an einsum: of the result's adjoint (labelled with the output subscripts) and the other
# operands, summed into operand k's labels. Plain einsum cannot produce everything that needs:
# a label repeated in operand k ('ii->i': the adjoint lies on a diagonal), a label only operand
# k has ('ij->i': the adjoint is constant along it) and operands broadcast against each other
# (a size-1 axis gets the sum). `einsum_adjoint` does those steps around one numpy.einsum call.

_EINSUM_LABELS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_present(operand0, operand1, operand2):
    """The operands actually passed (the recipes bind missing ones to None)."""
    operands = [operand0, operand1, operand2]
    while operands and operands[-1] is None:
        operands.pop()
    return operands


def _einsum_terms(subscripts, operands):
    """(input terms, output term, spare labels) of ``numpy.einsum(subscripts, *operands)``,
    with '...' replaced by letters (right-aligned, as NumPy broadcasts) and the implicit output
    (labels used once, in sorted order, after the broadcast axes) spelled out."""
    if not isinstance(subscripts, str):
        raise TypeError("tangent: the derivative of numpy.einsum needs the subscripts-string form")
    spec = subscripts.replace(" ", "")
    explicit = "->" in spec
    inputs_text, output_text = spec.split("->") if explicit else (spec, None)
    inputs = inputs_text.split(",")
    if len(inputs) != len(operands):
        raise ValueError(
            f"tangent: the einsum subscripts {subscripts!r} name {len(inputs)} operands, but "
            f"{len(operands)} were given (the einsum recipes handle one to three operands)"
        )
    spare = [c for c in _EINSUM_LABELS if c not in spec]
    ellipsis_ndims = [numpy.ndim(op) - (len(t) - 3) if "..." in t else 0 for t, op in zip(inputs, operands)]
    width = max(ellipsis_ndims, default=0)
    broadcast, spare = "".join(spare[:width]), spare[width:]
    inputs = [t.replace("...", broadcast[width - n:]) for t, n in zip(inputs, ellipsis_ndims)]
    if explicit:
        output = output_text.replace("...", broadcast)
    else:
        labels = [c for t in inputs for c in t if c not in broadcast]
        output = broadcast + "".join(sorted(c for c in set(labels) if labels.count(c) == 1))
    return inputs, output, spare


def _einsum_sizes(inputs, operands):
    """Label -> size, the largest over the operands (size-1 axes broadcast)."""
    sizes = {}
    for term, op in zip(inputs, operands):
        for label, n in zip(term, numpy.shape(op)):
            sizes[label] = max(sizes.get(label, 1), n)
    return sizes


def einsum(subscripts, operand0, operand1=None, operand2=None):
    """``numpy.einsum(subscripts, operand0, ...)`` of the operands that are not None (the
    tangent of an einsum in forward mode); an array result is a new array, never a view."""
    out = numpy.einsum(subscripts, *_einsum_present(operand0, operand1, operand2))
    return numpy.array(out, copy=True) if isinstance(out, numpy.ndarray) and out.ndim else out


def einsum_adjoint(g, subscripts, k, operand0, operand1=None, operand2=None):
    """The adjoint of operand ``k`` (0, 1 or 2) of ``numpy.einsum(subscripts, operand0, ...)``
    given the adjoint ``g`` of the result; shaped like that operand (a float for a scalar).

    Linear in ``g`` and in the other operands; operand ``k`` itself only gives the shape.
    """
    operands = _einsum_present(operand0, operand1, operand2)
    inputs, output, spare = _einsum_terms(subscripts, operands)
    sizes = _einsum_sizes(inputs, operands)
    target, x = inputs[k], operands[k]
    g = numpy.broadcast_to(g, tuple(sizes[c] for c in output))
    others = [j for j in range(len(operands)) if j != k]
    # 1. Sum g times the other operands into the labels of operand k that appear elsewhere.
    labels = "".join(dict.fromkeys(target))
    elsewhere = set(output).union(*(inputs[j] for j in others))
    kept = "".join(c for c in labels if c in elsewhere)
    spec = ",".join([output] + [inputs[j] for j in others]) + "->" + kept
    r = numpy.einsum(spec, g, *(operands[j] for j in others))
    # 2. Labels only operand k has: the result does not depend on them, the adjoint is constant.
    only_here = tuple(i for i, c in enumerate(labels) if c not in elsewhere)
    if only_here:
        r = numpy.broadcast_to(numpy.expand_dims(r, only_here), tuple(sizes[c] for c in labels))
    # 3. A label repeated in operand k reads its diagonal: put the adjoint back on it, each
    #    repetition renamed and tied to the first by an identity matrix.
    if len(labels) < len(target):
        renamed, ties, ones = [], [], []
        for i, c in enumerate(target):
            if c in target[:i]:
                new = spare.pop(0)
                renamed.append(new)
                ties.append(c + new)
                ones.append(numpy.eye(sizes[c]))
            else:
                renamed.append(c)
        r = numpy.einsum(",".join([labels] + ties) + "->" + "".join(renamed), r, *ones)
    # 4. Axes operand k broadcast (size 1) get the sum.
    return unbroadcast(r, x)


# --------------------------------------------------------------------------------------------
# Branches left out of a derivative


def branch_not_differentiated(kind, message, path, line, column):
    """The error a derivative raises when a branch it could not differentiate runs (code for
    sparse matrices, say, in a function differentiated for dense arrays): the engine's
    refusal of that branch, at its line, raised only if the branch is taken."""
    import linecache

    from tangent import errors

    cls = errors.ERRORS_BY_KIND.get(kind, errors.NotDifferentiableError)
    source_line = linecache.getline(path, line).rstrip("\n") if path and line else None
    error = errors.make_error(
        cls,
        f"{message} (this branch ran; Tangent differentiated the function only where it does not)",
        path=path,
        line=line,
        column=column,
        source_line=source_line,
    )
    return error


def keys_of(mapping):
    """The keys of ``mapping`` as a list (``params.items()`` read by key in a derivative)."""
    return list(mapping.keys())
