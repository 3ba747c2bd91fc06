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
import numbers

import numpy

__all__ = [
    "Stack",
    "push",
    "pop",
    "init_grad",
    "add_grad",
    "unbroadcast",
    "unreduce",
    "grad_like",
    "add_grad_at",
    "zero_at",
    "copy",
    "appended",
    "save_item",
    "restore_item",
    "insert_grad_of",
]


# --------------------------------------------------------------------------------------------
# Stack


class Stack(list):
    """LIFO of values saved by the forward sweep for the backward sweep."""

    __slots__ = ()

    def __repr__(self):
        return f"Stack({list.__repr__(self)})"


def push(stack, value):
    """Saves ``value`` on ``stack``."""
    stack.append(value)


def pop(stack):
    """Removes and returns the value pushed last on ``stack``."""
    if not stack:
        raise IndexError(
            "tangent.pop: the stack is empty; the backward pass popped more values than the "
            "forward pass pushed (this is a bug in the generated code, please report it)"
        )
    return stack.pop()


# --------------------------------------------------------------------------------------------
# Helpers


_SEQUENCES = (list, tuple)
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
    if isinstance(x, (str, bytes, bytearray, range, slice, type)) or callable(x):
        # Values that cannot carry a derivative: their adjoint is always zero.
        return None
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return numpy.zeros(numpy.shape(x), dtype=_float_dtype(x.dtype))
    raise TypeError(f"tangent.init_grad: no zero adjoint for a value of type {type(x).__name__}")


def add_grad(a, b):
    """The sum of two adjoints; ``None`` is zero; lists, tuples and dicts add elementwise.

    The result is a new object: it never aliases an array argument.
    """
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


def unbroadcast(g, x):
    """Reduces (sums) or expands the adjoint ``g`` to the shape of ``x``.

    A scalar ``x`` gives ``float(sum(g))``. For an array ``x``, ``g`` is summed over its extra
    leading axes and over the axes where ``x`` has size 1, and a smaller ``g`` is broadcast up
    to ``x.shape``; the result is always a new writable array. Lists and tuples are handled
    elementwise.
    """
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


def grad_like(g, like):
    """The adjoint ``g`` given the layout of ``like``, for the derivatives of the helpers here.

    For arrays and scalars, ``g`` is broadcast up to the broadcast of both shapes (a scalar
    seed of an array output becomes an array; a larger ``g`` stays as it is). Lists, tuples
    and dicts already carry their structure and come back as they are. ``None`` (a zero
    adjoint) gives zeros like ``like``.
    """
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


@contextlib.contextmanager
def insert_grad_of(x):
    """Gradient surgery: ``with tangent.insert_grad_of(x) as dx: ...`` in a primal function.

    The engine turns the body into code run on the adjoint of ``x`` in the backward pass. When
    the primal itself runs as plain Python, the body runs on a zero adjoint and has no effect.
    """
    yield init_grad(x)


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


def matmul_adjoint_a(g, a, b):
    """The adjoint of ``a`` in ``a @ b`` given the adjoint ``g`` of the product: ``g @ b.T``."""
    a, b, a2, b2, g2 = _matmul_operands(g, a, b)
    ga = numpy.matmul(g2, numpy.swapaxes(b2, -1, -2))
    return numpy.reshape(unbroadcast(ga, a2), a.shape)


def matmul_adjoint_b(g, a, b):
    """The adjoint of ``b`` in ``a @ b`` given the adjoint ``g`` of the product: ``a.T @ g``."""
    a, b, a2, b2, g2 = _matmul_operands(g, a, b)
    gb = numpy.matmul(numpy.swapaxes(a2, -1, -2), g2)
    return numpy.reshape(unbroadcast(gb, b2), b.shape)


def dot_adjoint_a(g, a, b):
    """The adjoint of ``a`` in ``numpy.dot(a, b)``."""
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
