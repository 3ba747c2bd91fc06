"""Adjoints of NumPy functions (elementwise math, reductions, linear algebra, shape functions).

The arithmetic ufuncs shared with Python operators (`numpy.add`, `numpy.multiply`,
`numpy.power`, `numpy.matmul`, ...) live in operators.py. The incoming adjoint `d[y]` may be a
Python float even when `y` is an array (a scalar seed), so templates whose math does not
broadcast by itself start from `tangent.grad_like(d[y], y)`.
Contributions may be read-only views; the runtime never updates an adjoint in place.
A function returning a tuple or a list (`numpy.linalg.slogdet`, `numpy.split`) gets `d[y]` as
a tuple or list of adjoints, one per item (items the code never used have zero adjoints), and
`tangent.grad_like(d[y], y)` also lays out a scalar seed that way; its tangent template builds
a tuple or list like `y`. A function taking a list of arrays (`numpy.concatenate`,
`numpy.linalg.multi_dot`, `numpy.column_stack`) gets the list of their adjoints as `d[arrays]`
and reads the list of their tangents as `d[arrays]`; a template goes through such a list with a
list comprehension over a local (`[... for k_ in positions]`, with `positions` a
`numpy.arange`), whose variables end in `_` so that no argument's name can capture them.

Each adjoint is followed by its forward-mode template, `@tangent_(name)`, with the same
parameters: `d[x]` reads the tangent of input `x`, `d[y] = e` / `d[y] += e` builds the result's
tangent with one statement per differentiable input (the engine drops the statements that read
the tangent of an inactive input), and each statement alone gives `d[y]` the shape of `y`.
"""
import numpy
import tangent


# ---------------------------------------------------------------- elementwise, one argument


@adjoint(numpy.exp)
def exp(y, x):
    d[x] = d[y] * y


@tangent_(numpy.exp)
def exp(y, x):
    d[y] = d[x] * y


@adjoint(numpy.expm1)
def expm1(y, x):
    d[x] = d[y] * (y + 1.0)


@tangent_(numpy.expm1)
def expm1(y, x):
    d[y] = d[x] * (y + 1.0)


@adjoint(numpy.exp2)
def exp2(y, x):
    d[x] = d[y] * y * numpy.log(2.0)


@tangent_(numpy.exp2)
def exp2(y, x):
    d[y] = d[x] * y * numpy.log(2.0)


@adjoint(numpy.log)
def log(y, x):
    d[x] = d[y] / x


@tangent_(numpy.log)
def log(y, x):
    d[y] = d[x] / x


@adjoint(numpy.log2)
def log2(y, x):
    d[x] = d[y] / (x * numpy.log(2.0))


@tangent_(numpy.log2)
def log2(y, x):
    d[y] = d[x] / (x * numpy.log(2.0))


@adjoint(numpy.log10)
def log10(y, x):
    d[x] = d[y] / (x * numpy.log(10.0))


@tangent_(numpy.log10)
def log10(y, x):
    d[y] = d[x] / (x * numpy.log(10.0))


@adjoint(numpy.log1p)
def log1p(y, x):
    d[x] = d[y] / (1.0 + x)


@tangent_(numpy.log1p)
def log1p(y, x):
    d[y] = d[x] / (1.0 + x)


@adjoint(numpy.sqrt)
def sqrt(y, x):
    d[x] = d[y] / (2.0 * y)


@tangent_(numpy.sqrt)
def sqrt(y, x):
    d[y] = d[x] / (2.0 * y)


@adjoint(numpy.cbrt)
def cbrt(y, x):
    d[x] = d[y] / (3.0 * y * y)


@tangent_(numpy.cbrt)
def cbrt(y, x):
    d[y] = d[x] / (3.0 * y * y)


@adjoint(numpy.square)
def square(y, x):
    d[x] = d[y] * 2.0 * x


@tangent_(numpy.square)
def square(y, x):
    d[y] = d[x] * 2.0 * x


@adjoint(numpy.reciprocal)
def reciprocal(y, x):
    d[x] = -d[y] * y * y


@tangent_(numpy.reciprocal)
def reciprocal(y, x):
    d[y] = -d[x] * y * y


@adjoint(numpy.sin)
def sin(y, x):
    d[x] = d[y] * numpy.cos(x)


@tangent_(numpy.sin)
def sin(y, x):
    d[y] = d[x] * numpy.cos(x)


@adjoint(numpy.cos)
def cos(y, x):
    d[x] = -d[y] * numpy.sin(x)


@tangent_(numpy.cos)
def cos(y, x):
    d[y] = -d[x] * numpy.sin(x)


@adjoint(numpy.tan)
def tan(y, x):
    d[x] = d[y] * (1.0 + y * y)


@tangent_(numpy.tan)
def tan(y, x):
    d[y] = d[x] * (1.0 + y * y)


@adjoint(numpy.arcsin)
@adjoint(numpy.asin)
def arcsin(y, x):
    d[x] = d[y] / numpy.sqrt(1.0 - x * x)


@tangent_(numpy.arcsin)
@tangent_(numpy.asin)
def arcsin(y, x):
    d[y] = d[x] / numpy.sqrt(1.0 - x * x)


@adjoint(numpy.arccos)
@adjoint(numpy.acos)
def arccos(y, x):
    d[x] = -d[y] / numpy.sqrt(1.0 - x * x)


@tangent_(numpy.arccos)
@tangent_(numpy.acos)
def arccos(y, x):
    d[y] = -d[x] / numpy.sqrt(1.0 - x * x)


@adjoint(numpy.arctan)
@adjoint(numpy.atan)
def arctan(y, x):
    d[x] = d[y] / (1.0 + x * x)


@tangent_(numpy.arctan)
@tangent_(numpy.atan)
def arctan(y, x):
    d[y] = d[x] / (1.0 + x * x)


@adjoint(numpy.sinh)
def sinh(y, x):
    d[x] = d[y] * numpy.cosh(x)


@tangent_(numpy.sinh)
def sinh(y, x):
    d[y] = d[x] * numpy.cosh(x)


@adjoint(numpy.cosh)
def cosh(y, x):
    d[x] = d[y] * numpy.sinh(x)


@tangent_(numpy.cosh)
def cosh(y, x):
    d[y] = d[x] * numpy.sinh(x)


@adjoint(numpy.tanh)
def tanh(y, x):
    d[x] = d[y] * (1.0 - y * y)


@tangent_(numpy.tanh)
def tanh(y, x):
    d[y] = d[x] * (1.0 - y * y)


@adjoint(numpy.arcsinh)
@adjoint(numpy.asinh)
def arcsinh(y, x):
    d[x] = d[y] / numpy.sqrt(x * x + 1.0)


@tangent_(numpy.arcsinh)
@tangent_(numpy.asinh)
def arcsinh(y, x):
    d[y] = d[x] / numpy.sqrt(x * x + 1.0)


@adjoint(numpy.arccosh)
@adjoint(numpy.acosh)
def arccosh(y, x):
    d[x] = d[y] / numpy.sqrt(x * x - 1.0)


@tangent_(numpy.arccosh)
@tangent_(numpy.acosh)
def arccosh(y, x):
    d[y] = d[x] / numpy.sqrt(x * x - 1.0)


@adjoint(numpy.arctanh)
@adjoint(numpy.atanh)
def arctanh(y, x):
    d[x] = d[y] / (1.0 - x * x)


@tangent_(numpy.arctanh)
@tangent_(numpy.atanh)
def arctanh(y, x):
    d[y] = d[x] / (1.0 - x * x)


@adjoint(numpy.absolute)
@adjoint(numpy.abs)
@adjoint(numpy.fabs)
def absolute(y, x):
    d[x] = d[y] * numpy.sign(x)


@tangent_(numpy.absolute)
@tangent_(numpy.abs)
@tangent_(numpy.fabs)
def absolute(y, x):
    d[y] = d[x] * numpy.sign(x)


@adjoint(numpy.deg2rad)
@adjoint(numpy.radians)
def deg2rad(y, x):
    d[x] = tangent.unbroadcast(d[y] * (numpy.pi / 180.0), x)


@tangent_(numpy.deg2rad)
@tangent_(numpy.radians)
def deg2rad(y, x):
    d[y] = d[x] * (numpy.pi / 180.0)


@adjoint(numpy.rad2deg)
@adjoint(numpy.degrees)
def rad2deg(y, x):
    d[x] = tangent.unbroadcast(d[y] * (180.0 / numpy.pi), x)


@tangent_(numpy.rad2deg)
@tangent_(numpy.degrees)
def rad2deg(y, x):
    d[y] = d[x] * (180.0 / numpy.pi)


@adjoint(numpy.sinc)
def sinc(y, x):
    # sinc(x) = sin(pi x) / (pi x) has the slope (cos(pi x) - sinc(x)) / x. Near 0, where that
    # cancels and divides by zero, its Taylor polynomial -pi^2 x / 3 + pi^4 x^3 / 30 (exact to
    # rounding for |x| < 1e-3, with the right derivatives at 0); `shifted` keeps the other
    # branch, multiplied by 0 there, away from 0.
    small = numpy.abs(x) < 1e-3
    shifted = x + small
    slope = (small * (numpy.pi ** 4 / 30.0 * x ** 3 - numpy.pi ** 2 / 3.0 * x)
             + numpy.logical_not(small) * (numpy.cos(numpy.pi * shifted) - numpy.sinc(shifted)) / shifted)
    d[x] = d[y] * slope


@tangent_(numpy.sinc)
def sinc(y, x):
    small = numpy.abs(x) < 1e-3
    shifted = x + small
    slope = (small * (numpy.pi ** 4 / 30.0 * x ** 3 - numpy.pi ** 2 / 3.0 * x)
             + numpy.logical_not(small) * (numpy.cos(numpy.pi * shifted) - numpy.sinc(shifted)) / shifted)
    d[y] = d[x] * slope


# ---------------------------------------------------------------- elementwise, two arguments


@adjoint(numpy.arctan2)
@adjoint(numpy.atan2)
def arctan2(z, x1, x2):
    r2 = x1 * x1 + x2 * x2
    d[x1] = tangent.unbroadcast(d[z] * x2 / r2, x1)
    d[x2] = tangent.unbroadcast(-d[z] * x1 / r2, x2)


@tangent_(numpy.arctan2)
@tangent_(numpy.atan2)
def arctan2(z, x1, x2):
    r2 = x1 * x1 + x2 * x2
    d[z] = d[x1] * x2 / r2
    d[z] += -d[x2] * x1 / r2


@adjoint(numpy.hypot)
def hypot(z, x1, x2):
    d[x1] = tangent.unbroadcast(d[z] * x1 / z, x1)
    d[x2] = tangent.unbroadcast(d[z] * x2 / z, x2)


@tangent_(numpy.hypot)
def hypot(z, x1, x2):
    d[z] = d[x1] * x1 / z
    d[z] += d[x2] * x2 / z


@adjoint(numpy.logaddexp)
def logaddexp(z, x1, x2):
    d[x1] = tangent.unbroadcast(d[z] * numpy.exp(x1 - z), x1)
    d[x2] = tangent.unbroadcast(d[z] * numpy.exp(x2 - z), x2)


@tangent_(numpy.logaddexp)
def logaddexp(z, x1, x2):
    d[z] = d[x1] * numpy.exp(x1 - z)
    d[z] += d[x2] * numpy.exp(x2 - z)


@adjoint(numpy.logaddexp2)
def logaddexp2(z, x1, x2):
    d[x1] = tangent.unbroadcast(d[z] * numpy.exp2(x1 - z), x1)
    d[x2] = tangent.unbroadcast(d[z] * numpy.exp2(x2 - z), x2)


@tangent_(numpy.logaddexp2)
def logaddexp2(z, x1, x2):
    d[z] = d[x1] * numpy.exp2(x1 - z)
    d[z] += d[x2] * numpy.exp2(x2 - z)


@adjoint(numpy.maximum)
def maximum(z, x1, x2):
    # Ties share the adjoint equally.
    d[x1] = tangent.unbroadcast(d[z] * ((x1 > x2) + 0.5 * (x1 == x2)), x1)
    d[x2] = tangent.unbroadcast(d[z] * ((x2 > x1) + 0.5 * (x1 == x2)), x2)


@tangent_(numpy.maximum)
def maximum(z, x1, x2):
    # Ties take the mean of both tangents (the transpose of the adjoint's equal split).
    d[z] = d[x1] * ((x1 > x2) + 0.5 * (x1 == x2))
    d[z] += d[x2] * ((x2 > x1) + 0.5 * (x1 == x2))


@adjoint(numpy.minimum)
def minimum(z, x1, x2):
    d[x1] = tangent.unbroadcast(d[z] * ((x1 < x2) + 0.5 * (x1 == x2)), x1)
    d[x2] = tangent.unbroadcast(d[z] * ((x2 < x1) + 0.5 * (x1 == x2)), x2)


@tangent_(numpy.minimum)
def minimum(z, x1, x2):
    d[z] = d[x1] * ((x1 < x2) + 0.5 * (x1 == x2))
    d[z] += d[x2] * ((x2 < x1) + 0.5 * (x1 == x2))


@adjoint(numpy.fmax)
def fmax(z, x1, x2):
    # As maximum (ties share equally), except that a NaN loses: the other argument is the
    # result and gets the whole adjoint. Two NaNs give NaN, and no adjoint to either.
    only_x1 = numpy.logical_and(numpy.isnan(x2), numpy.logical_not(numpy.isnan(x1)))
    only_x2 = numpy.logical_and(numpy.isnan(x1), numpy.logical_not(numpy.isnan(x2)))
    d[x1] = tangent.unbroadcast(d[z] * ((x1 > x2) + 0.5 * (x1 == x2) + only_x1), x1)
    d[x2] = tangent.unbroadcast(d[z] * ((x2 > x1) + 0.5 * (x1 == x2) + only_x2), x2)


@tangent_(numpy.fmax)
def fmax(z, x1, x2):
    only_x1 = numpy.logical_and(numpy.isnan(x2), numpy.logical_not(numpy.isnan(x1)))
    only_x2 = numpy.logical_and(numpy.isnan(x1), numpy.logical_not(numpy.isnan(x2)))
    d[z] = d[x1] * ((x1 > x2) + 0.5 * (x1 == x2) + only_x1)
    d[z] += d[x2] * ((x2 > x1) + 0.5 * (x1 == x2) + only_x2)


@adjoint(numpy.fmin)
def fmin(z, x1, x2):
    only_x1 = numpy.logical_and(numpy.isnan(x2), numpy.logical_not(numpy.isnan(x1)))
    only_x2 = numpy.logical_and(numpy.isnan(x1), numpy.logical_not(numpy.isnan(x2)))
    d[x1] = tangent.unbroadcast(d[z] * ((x1 < x2) + 0.5 * (x1 == x2) + only_x1), x1)
    d[x2] = tangent.unbroadcast(d[z] * ((x2 < x1) + 0.5 * (x1 == x2) + only_x2), x2)


@tangent_(numpy.fmin)
def fmin(z, x1, x2):
    only_x1 = numpy.logical_and(numpy.isnan(x2), numpy.logical_not(numpy.isnan(x1)))
    only_x2 = numpy.logical_and(numpy.isnan(x1), numpy.logical_not(numpy.isnan(x2)))
    d[z] = d[x1] * ((x1 < x2) + 0.5 * (x1 == x2) + only_x1)
    d[z] += d[x2] * ((x2 < x1) + 0.5 * (x1 == x2) + only_x2)


@adjoint(numpy.fmod)
def fmod(z, x1, x2):
    # fmod(x1, x2) == x1 - trunc(x1 / x2) * x2
    g = tangent.grad_like(d[z], z)
    d[x1] = tangent.unbroadcast(g, x1)
    d[x2] = tangent.unbroadcast(-g * numpy.trunc(x1 / x2), x2)


@tangent_(numpy.fmod)
def fmod(z, x1, x2):
    d[z] = numpy.broadcast_to(d[x1], numpy.shape(z)) * 1.0
    d[z] += -d[x2] * numpy.trunc(x1 / x2)


@adjoint(numpy.where)
def where(z, condition, x, y):
    g = tangent.grad_like(d[z], z)
    d[x] = tangent.unbroadcast(numpy.where(condition, g, 0.0), x)
    d[y] = tangent.unbroadcast(numpy.where(condition, 0.0, g), y)


@tangent_(numpy.where)
def where(z, condition, x, y):
    # z is always an ndarray (0-d for scalars); the zeros give each statement z's shape.
    d[z] = numpy.where(condition, d[x], numpy.zeros(numpy.shape(z)))
    d[z] += numpy.where(condition, numpy.zeros(numpy.shape(z)), d[y])


@adjoint(numpy.clip)
def clip(y, a, a_min=None, a_max=None, out=None, min=None, max=None):
    # clip(a, lo, hi) == minimum(maximum(a, lo), hi); None means no bound. NumPy >= 2.1 also
    # takes the bounds as `min` and `max` (ndarray.clip's names); one spelling is None.
    lo = a_min if min is None else min
    hi = a_max if max is None else max
    above_min = True if a_min is None and min is None else a >= lo
    raised = a if a_min is None and min is None else numpy.maximum(a, lo)
    below_max = True if a_max is None and max is None else raised <= hi
    d[a] = tangent.unbroadcast(d[y] * numpy.logical_and(above_min, below_max), a)
    d[a_min] = tangent.unbroadcast(d[y] * numpy.logical_and(numpy.logical_not(above_min), below_max), a_min)
    d[min] = tangent.unbroadcast(d[y] * numpy.logical_and(numpy.logical_not(above_min), below_max), min)
    d[a_max] = tangent.unbroadcast(d[y] * numpy.logical_not(below_max), a_max)
    d[max] = tangent.unbroadcast(d[y] * numpy.logical_not(below_max), max)


@tangent_(numpy.clip)
def clip(y, a, a_min=None, a_max=None, out=None, min=None, max=None):
    lo = a_min if min is None else min
    hi = a_max if max is None else max
    above_min = True if a_min is None and min is None else a >= lo
    raised = a if a_min is None and min is None else numpy.maximum(a, lo)
    below_max = True if a_max is None and max is None else raised <= hi
    d[y] = d[a] * numpy.logical_and(above_min, below_max)
    d[y] += d[a_min] * numpy.logical_and(numpy.logical_not(above_min), below_max)
    d[y] += d[min] * numpy.logical_and(numpy.logical_not(above_min), below_max)
    d[y] += d[a_max] * numpy.logical_not(below_max)
    d[y] += d[max] * numpy.logical_not(below_max)


# ---------------------------------------------------------------- reductions


@adjoint(numpy.sum)
def sum(y, a, axis=None, dtype=None, out=None, keepdims=False):
    d[a] = tangent.unreduce(d[y], a, axis, keepdims)


@tangent_(numpy.sum)
def sum(y, a, axis=None, dtype=None, out=None, keepdims=False):
    d[y] = numpy.sum(d[a], axis=axis, dtype=dtype, keepdims=keepdims)


@adjoint(numpy.mean)
def mean(y, a, axis=None, dtype=None, out=None, keepdims=False):
    # size(y) / size(a) is 1 / (number of averaged elements), whatever axis and keepdims are;
    # scaled before it is spread, so a float seed is scaled once, not element by element.
    d[a] = tangent.unreduce(d[y] * (numpy.size(y) / numpy.size(a)), a, axis, keepdims)


@tangent_(numpy.mean)
def mean(y, a, axis=None, dtype=None, out=None, keepdims=False):
    d[y] = numpy.mean(d[a], axis=axis, dtype=dtype, keepdims=keepdims)


@adjoint(numpy.average)
def average(y, a, axis=None, weights=None, returned=False, keepdims=False):
    # sum(a * w, axis) / sum(w, axis), with w = 1 without weights. Weights of a's shape are w;
    # weights shaped like a's axis (or, for a tuple axis, its axes in that order) are laid
    # along it as NumPy lays them (`laid_out`, `order`). returned=True (a pair) is refused:
    # the adjoints are NaN.
    refused = numpy.nan if returned else 1.0
    nd = numpy.ndim(a)
    axes = numpy.atleast_1d(numpy.mod(numpy.arange(nd) if axis is None else axis, numpy.maximum(nd, 1)))
    order = numpy.argsort(axes)
    along = numpy.any(numpy.equal(numpy.expand_dims(numpy.arange(nd), 1), axes), axis=1)
    laid_out = numpy.where(along, numpy.shape(a), 1)
    same = numpy.shape(weights) == numpy.shape(a)
    w = 1.0 if weights is None else (weights if same else numpy.reshape(numpy.transpose(weights, order), laid_out))
    total = numpy.sum(w * numpy.ones(numpy.shape(a)), axis=axis, keepdims=True)
    mean = numpy.reshape(y[0] if returned else y, numpy.shape(total))
    g = tangent.unreduce(tangent.grad_like(d[y], y)[0] if returned else d[y], a, axis, keepdims) * refused
    d[a] = tangent.unbroadcast(g * w / total, a)
    g_w = g * (a - mean) / total
    d[weights] = None if weights is None else tangent.unbroadcast(g_w if same else numpy.transpose(numpy.reshape(tangent.unbroadcast(g_w, w), numpy.shape(numpy.transpose(weights, order))), numpy.argsort(order)), weights)


@tangent_(numpy.average)
def average(y, a, axis=None, weights=None, returned=False, keepdims=False):
    # returned=True is refused: NaN for both items of the pair (stacked in an array, which the
    # statements can add).
    refused = numpy.full((2,) + numpy.shape(y[0]), numpy.nan) if returned else 1.0
    nd = numpy.ndim(a)
    axes = numpy.atleast_1d(numpy.mod(numpy.arange(nd) if axis is None else axis, numpy.maximum(nd, 1)))
    order = numpy.argsort(axes)
    along = numpy.any(numpy.equal(numpy.expand_dims(numpy.arange(nd), 1), axes), axis=1)
    laid_out = numpy.where(along, numpy.shape(a), 1)
    same = numpy.shape(weights) == numpy.shape(a)
    w = 1.0 if weights is None else (weights if same else numpy.reshape(numpy.transpose(weights, order), laid_out))
    total = numpy.sum(w * numpy.ones(numpy.shape(a)), axis=axis, keepdims=True)
    mean = numpy.reshape(y[0] if returned else y, numpy.shape(total))
    total_y = numpy.sum(w * numpy.ones(numpy.shape(a)), axis=axis, keepdims=keepdims)
    d[y] = numpy.sum(numpy.asarray(d[a]) * w, axis=axis, keepdims=keepdims) / total_y * refused
    d[y] += numpy.zeros(numpy.shape(y)) if weights is None else numpy.sum((d[weights] if same else numpy.reshape(numpy.transpose(d[weights], order), laid_out)) * (a - mean), axis=axis, keepdims=keepdims) / total_y * refused


@adjoint(numpy.nansum)
def nansum(y, a, axis=None, dtype=None, out=None, keepdims=False):
    # NaNs count as zeros: no adjoint for them.
    d[a] = tangent.unreduce(d[y], a, axis, keepdims) * numpy.logical_not(numpy.isnan(a))


@tangent_(numpy.nansum)
def nansum(y, a, axis=None, dtype=None, out=None, keepdims=False):
    d[y] = numpy.sum(numpy.where(numpy.isnan(a), 0.0, d[a]), axis=axis, dtype=dtype, keepdims=keepdims)


@adjoint(numpy.nanmean)
def nanmean(y, a, axis=None, dtype=None, out=None, keepdims=False):
    # The mean of the numbers that are not NaN: each gets the adjoint over their count.
    kept = numpy.logical_not(numpy.isnan(a))
    d[a] = tangent.unreduce(d[y], a, axis, keepdims) * kept / numpy.sum(kept, axis=axis, keepdims=True)


@tangent_(numpy.nanmean)
def nanmean(y, a, axis=None, dtype=None, out=None, keepdims=False):
    kept = numpy.logical_not(numpy.isnan(a))
    d[y] = numpy.sum(numpy.where(kept, d[a], 0.0), axis=axis, dtype=dtype, keepdims=keepdims) / numpy.sum(kept, axis=axis, keepdims=keepdims)


@adjoint(numpy.prod)
def prod(y, a, axis=None, dtype=None, out=None, keepdims=False):
    # The derivative of each factor is the product of the others: the product of those before
    # it times the product of those after it (exclusive running products along each slice), so
    # zeros need no special case and the rule differentiates again exactly.
    rows = tangent.to_rows(a, axis)
    ones = numpy.ones((numpy.shape(rows)[0], 1))
    before = numpy.cumprod(numpy.concatenate([ones, rows[:, :-1]], axis=1), axis=1)
    after = numpy.flip(numpy.cumprod(numpy.flip(numpy.concatenate([rows[:, 1:], ones], axis=1), 1), axis=1), 1)
    others = tangent.from_rows(before * after, a, axis)
    d[a] = tangent.unreduce(d[y], a, axis, keepdims) * others


@tangent_(numpy.prod)
def prod(y, a, axis=None, dtype=None, out=None, keepdims=False):
    # The sum of each factor's tangent times the product of the others: the product of those
    # before it times the product of those after it (exclusive running products along each
    # slice), so zeros need no special case and the rule differentiates again exactly.
    rows = tangent.to_rows(a, axis)
    ones = numpy.ones((numpy.shape(rows)[0], 1))
    before = numpy.cumprod(numpy.concatenate([ones, rows[:, :-1]], axis=1), axis=1)
    after = numpy.flip(numpy.cumprod(numpy.flip(numpy.concatenate([rows[:, 1:], ones], axis=1), 1), axis=1), 1)
    others = tangent.from_rows(before * after, a, axis)
    d[y] = numpy.sum(others * d[a], axis=axis, dtype=dtype, keepdims=keepdims)


@adjoint(numpy.var)
def var(y, a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    count = numpy.size(a) / numpy.size(y)
    centered = a - numpy.mean(a, axis=axis, keepdims=True)
    d[a] = tangent.unreduce(d[y], a, axis, keepdims) * (2.0 / (count - ddof)) * centered


@tangent_(numpy.var)
def var(y, a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    count = numpy.size(a) / numpy.size(y)
    centered = a - numpy.mean(a, axis=axis, keepdims=True)
    d[y] = numpy.sum(centered * d[a], axis=axis, dtype=dtype, keepdims=keepdims) * (2.0 / (count - ddof))


@adjoint(numpy.std)
def std(y, a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    count = numpy.size(a) / numpy.size(y)
    centered = a - numpy.mean(a, axis=axis, keepdims=True)
    d[a] = tangent.unreduce(d[y] / y, a, axis, keepdims) * centered / (count - ddof)


@tangent_(numpy.std)
def std(y, a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    count = numpy.size(a) / numpy.size(y)
    centered = a - numpy.mean(a, axis=axis, keepdims=True)
    d[y] = numpy.sum(centered * d[a], axis=axis, dtype=dtype, keepdims=keepdims) / ((count - ddof) * y)


@adjoint(numpy.max)
@adjoint(numpy.amax)
@adjoint(numpy.min)
@adjoint(numpy.amin)
@adjoint(numpy.nanmax)
@adjoint(numpy.nanmin)
def extremum(y, a, axis=None, out=None, keepdims=False):
    # The adjoint goes to the elements equal to the extremum, split equally between ties (a
    # NaN equals nothing: nanmax and nanmin give it none).
    hit = a == tangent.unreduce(y, a, axis, keepdims)
    d[a] = tangent.unreduce(d[y], a, axis, keepdims) * hit / numpy.sum(hit, axis=axis, keepdims=True)


@tangent_(numpy.max)
@tangent_(numpy.amax)
@tangent_(numpy.min)
@tangent_(numpy.amin)
@tangent_(numpy.nanmax)
@tangent_(numpy.nanmin)
def extremum(y, a, axis=None, out=None, keepdims=False):
    # The mean of the tangents of the elements equal to the extremum.
    hit = a == tangent.unreduce(y, a, axis, keepdims)
    d[y] = numpy.sum(hit * d[a], axis=axis, keepdims=keepdims) / numpy.sum(hit, axis=axis, keepdims=keepdims)


@adjoint(numpy.ptp)
def ptp(y, a, axis=None, out=None, keepdims=False):
    # max - min: the adjoint goes to the maxima (split between ties) and, negated, to the minima.
    top = a == numpy.max(a, axis=axis, keepdims=True)
    bottom = a == numpy.min(a, axis=axis, keepdims=True)
    share = top / numpy.sum(top, axis=axis, keepdims=True) - bottom / numpy.sum(bottom, axis=axis, keepdims=True)
    d[a] = tangent.unreduce(d[y], a, axis, keepdims) * share


@tangent_(numpy.ptp)
def ptp(y, a, axis=None, out=None, keepdims=False):
    top = a == numpy.max(a, axis=axis, keepdims=True)
    bottom = a == numpy.min(a, axis=axis, keepdims=True)
    share = top / numpy.sum(top, axis=axis, keepdims=True) - bottom / numpy.sum(bottom, axis=axis, keepdims=True)
    d[y] = numpy.sum(share * d[a], axis=axis, keepdims=keepdims)


@adjoint(numpy.cumsum)
def cumsum(y, a, axis=None, dtype=None, out=None):
    # Reverse cumulative sum; with axis=None y is the cumsum of the flattened a.
    g = tangent.grad_like(d[y], y)
    d[a] = tangent.unbroadcast(numpy.reshape(numpy.flip(numpy.cumsum(numpy.flip(g, axis), axis), axis), numpy.shape(a)), a)


@tangent_(numpy.cumsum)
def cumsum(y, a, axis=None, dtype=None, out=None):
    d[y] = numpy.cumsum(d[a], axis=axis, dtype=dtype)


@adjoint(numpy.cumprod)
def cumprod(y, a, axis=None, dtype=None, out=None):
    # dy_j/da_i (i <= j) is the product of a_0..a_j without a_i. With no zero in a it is
    # y_j / a_i: a_i gets the reverse cumsum of g * y, divided by a_i (O(n) work). With zeros,
    # `others` (the axis last) holds others[..., i, j] = that product, the cumprod of a with a_i
    # taken as 1, kept for j >= i; a_i gets sum_j others[i, j] g_j (O(n^2) work per slice, but
    # a polynomial in a: exact, and so are its own derivatives). With axis=None y is the
    # cumprod of the flattened a.
    source = numpy.ravel(a) if axis is None else a
    along = 0 if axis is None else axis
    g = tangent.grad_like(d[y], y)
    has_zero = numpy.any(source == 0)
    n = numpy.shape(source)[along]
    fast = None if has_zero else numpy.flip(numpy.cumsum(numpy.flip(g * y, along), along), along) / source
    others = numpy.triu(numpy.cumprod(numpy.where(numpy.eye(n, dtype=numpy.bool_), 1.0, numpy.expand_dims(numpy.moveaxis(source, along, -1), -2)), axis=-1)) if has_zero else None
    exact = numpy.moveaxis(numpy.sum(others * numpy.expand_dims(numpy.moveaxis(g, along, -1), -2), axis=-1), -1, along) if has_zero else None
    d[a] = tangent.unbroadcast(numpy.reshape(exact if has_zero else fast, numpy.shape(a)), a)


@tangent_(numpy.cumprod)
def cumprod(y, a, axis=None, dtype=None, out=None):
    # dy_j = sum over i <= j of (product of a_0..a_j without a_i) da_i: y_j * cumsum(da / a)_j
    # with no zero in a, else sum_i others[i, j] da_i with `others` as in the adjoint.
    source = numpy.ravel(a) if axis is None else a
    along = 0 if axis is None else axis
    has_zero = numpy.any(source == 0)
    n = numpy.shape(source)[along]
    others = numpy.triu(numpy.cumprod(numpy.where(numpy.eye(n, dtype=numpy.bool_), 1.0, numpy.expand_dims(numpy.moveaxis(source, along, -1), -2)), axis=-1)) if has_zero else None
    d[y] = (numpy.moveaxis(numpy.sum(others * numpy.expand_dims(numpy.moveaxis(numpy.reshape(d[a], numpy.shape(source)), along, -1), -1), axis=-2), -1, along)
            if has_zero else y * numpy.cumsum(numpy.reshape(d[a], numpy.shape(source)) / source, axis=along))


@adjoint(numpy.trace)
def trace(y, a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    # The identity (shifted by offset) laid on the axis1/axis2 plane, scaled by the adjoint.
    diagonal = numpy.eye(numpy.shape(a)[axis1], numpy.shape(a)[axis2], offset)
    padded = numpy.reshape(diagonal, numpy.shape(diagonal) + (1,) * (numpy.ndim(a) - 2))
    plane = numpy.moveaxis(padded, (0, 1), (axis1, axis2))
    d[a] = numpy.expand_dims(tangent.grad_like(d[y], y), (axis1, axis2)) * plane


@tangent_(numpy.trace)
def trace(y, a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    d[y] = numpy.trace(d[a], offset=offset, axis1=axis1, axis2=axis2, dtype=dtype)


# ---------------------------------------------------------------- products and linear algebra


@adjoint(numpy.dot)
def dot(y, a, b, out=None):
    # For matrices and vectors the same as `a @ b`; N-D operands contract a's last axis with
    # b's second-to-last (the runtime does the bookkeeping).
    d[a] = tangent.dot_adjoint_a(d[y], a, b)
    d[b] = tangent.dot_adjoint_b(d[y], a, b)


@tangent_(numpy.dot)
def dot(y, a, b, out=None):
    d[y] = numpy.dot(d[a], b)
    d[y] += numpy.dot(a, d[b])


@adjoint(numpy.inner)
def inner(y, a, b):
    # inner contracts the last axes; y's axes are a's other axes, then b's.
    scalar = numpy.ndim(a) == 0 or numpy.ndim(b) == 0
    g = tangent.grad_like(d[y], y)
    a_free = numpy.arange(numpy.ndim(a) - 1)
    b_free = numpy.arange(numpy.ndim(b) - 1)
    g_from_b = numpy.arange(numpy.ndim(a) - 1, numpy.ndim(y))
    d[a] = tangent.unbroadcast(g * b, a) if scalar else numpy.tensordot(g, b, (g_from_b, b_free))
    d[b] = tangent.unbroadcast(g * a, b) if scalar else numpy.tensordot(g, a, (a_free, a_free))


@tangent_(numpy.inner)
def inner(y, a, b):
    d[y] = numpy.inner(d[a], b)
    d[y] += numpy.inner(a, d[b])


@adjoint(numpy.vdot)
def vdot(y, a, b):
    # Real inputs only: vdot is the sum of the flattened elementwise product.
    d[a] = tangent.unbroadcast(d[y] * numpy.reshape(b, numpy.shape(a)), a)
    d[b] = tangent.unbroadcast(d[y] * numpy.reshape(a, numpy.shape(b)), b)


@tangent_(numpy.vdot)
def vdot(y, a, b):
    d[y] = numpy.vdot(d[a], b)
    d[y] += numpy.vdot(a, d[b])


@adjoint(numpy.outer)
def outer(y, a, b, out=None):
    g = numpy.reshape(tangent.grad_like(d[y], y), (numpy.size(a), numpy.size(b)))
    d[a] = tangent.unbroadcast(numpy.reshape(numpy.matmul(g, numpy.ravel(b)), numpy.shape(a)), a)
    d[b] = tangent.unbroadcast(numpy.reshape(numpy.matmul(numpy.ravel(a), g), numpy.shape(b)), b)


@tangent_(numpy.outer)
def outer(y, a, b, out=None):
    d[y] = numpy.outer(d[a], b)
    d[y] += numpy.outer(a, d[b])


@adjoint(numpy.tensordot)
def tensordot(y, a, b, axes=2):
    # Normalise axes to two lists of paired contracted axes; y's axes are a's free axes then
    # b's free axes. Each adjoint is a tensordot of g with the other operand, then a transpose
    # putting the axes back in the operand's order.
    # (Indexing `numpy.atleast_1d(axes)`, not `axes`: an int `axes` must not be subscripted.)
    count = numpy.ndim(axes) == 0
    pairs = numpy.atleast_1d(axes)
    a_given = numpy.arange(numpy.ndim(a) - axes, numpy.ndim(a)) if count else numpy.atleast_1d(pairs[0])
    b_given = numpy.arange(axes) if count else numpy.atleast_1d(pairs[-1])
    a_axes = numpy.mod(a_given, numpy.maximum(numpy.ndim(a), 1))
    b_axes = numpy.mod(b_given, numpy.maximum(numpy.ndim(b), 1))
    a_free = numpy.setdiff1d(numpy.arange(numpy.ndim(a)), a_axes)
    b_free = numpy.setdiff1d(numpy.arange(numpy.ndim(b)), b_axes)
    g = tangent.grad_like(d[y], y)
    g_from_a = numpy.arange(numpy.size(a_free))
    g_from_b = numpy.arange(numpy.size(a_free), numpy.ndim(y))
    # tensordot leaves the other operand's contracted axes in sorted order, paired by position.
    a_order = numpy.concatenate([a_free, a_axes[numpy.argsort(b_axes)]])
    b_order = numpy.concatenate([b_axes[numpy.argsort(a_axes)], b_free])
    d[a] = numpy.transpose(numpy.tensordot(g, b, (g_from_b, b_free)), numpy.argsort(a_order))
    d[b] = numpy.transpose(numpy.tensordot(a, g, (a_free, g_from_a)), numpy.argsort(b_order))


@tangent_(numpy.tensordot)
def tensordot(y, a, b, axes=2):
    d[y] = numpy.tensordot(d[a], b, axes)
    d[y] += numpy.tensordot(a, d[b], axes)


@adjoint(numpy.linalg.det)
def det(y, a):
    # d det(A) / dA = det(A) * inv(A)^T, for each matrix of a stack.
    d[a] = numpy.expand_dims(d[y] * y, (-1, -2)) * numpy.swapaxes(numpy.linalg.inv(a), -1, -2)


@tangent_(numpy.linalg.det)
def det(y, a):
    # d det(A) = det(A) * trace(inv(A) dA), for each matrix of a stack.
    d[y] = y * numpy.trace(numpy.linalg.solve(a, d[a]), axis1=-2, axis2=-1)


@adjoint(numpy.linalg.inv)
def inv(y, a):
    g = tangent.grad_like(d[y], y)
    y_t = numpy.swapaxes(y, -1, -2)
    d[a] = -numpy.matmul(y_t, numpy.matmul(g, y_t))


@tangent_(numpy.linalg.inv)
def inv(y, a):
    d[y] = -numpy.matmul(y, numpy.matmul(d[a], y))


@adjoint(numpy.linalg.solve)
def solve(x, a, b):
    # With x = solve(a, b): d[b] = solve(a^T, g) and d[a] = -d[b] x^T. A 1-D b is one vector,
    # anything else a stack of matrices (NumPy 2 rules).
    vector = numpy.ndim(b) == 1
    g = tangent.grad_like(d[x], x)
    g_m = numpy.expand_dims(g, -1) if vector else g
    x_m = numpy.expand_dims(x, -1) if vector else x
    g_b = numpy.linalg.solve(numpy.swapaxes(a, -1, -2), g_m)
    d[a] = tangent.unbroadcast(-numpy.matmul(g_b, numpy.swapaxes(x_m, -1, -2)), a)
    d[b] = tangent.unbroadcast(g_b[..., 0] if vector else g_b, b)


@tangent_(numpy.linalg.solve)
def solve(x, a, b):
    # a x = b, so a dx = db - da x. A 1-D b is one vector, anything else a stack of matrices.
    x_m = numpy.expand_dims(x, -1) if numpy.ndim(b) == 1 else x
    d[x] = numpy.reshape(numpy.linalg.solve(a, -numpy.matmul(d[a], x_m)), numpy.shape(x))
    d[x] += numpy.linalg.solve(a, d[b])


@adjoint(numpy.linalg.slogdet)
def slogdet(y, a):
    # y is the pair (sign, logabsdet). The sign is piecewise constant: only logabsdet's adjoint
    # counts, and d log|det A| / dA = inv(A)^T for each matrix of a stack. grad_like gives a
    # scalar or array seed the layout of the pair.
    g = tangent.grad_like(d[y], y)[1]
    d[a] = numpy.expand_dims(g, (-1, -2)) * numpy.swapaxes(numpy.linalg.inv(a), -1, -2)


@tangent_(numpy.linalg.slogdet)
def slogdet(y, a):
    # A pair like y: zero for the sign, d log|det A| = trace(inv(A) dA) for logabsdet.
    d[y] = (y[0] * 0.0, numpy.trace(numpy.linalg.solve(a, d[a]), axis1=-2, axis2=-1))


@adjoint(numpy.linalg.cholesky)
def cholesky(y, a, upper=False):
    # NumPy reads only a's lower triangle (the upper one with upper=True) and factors the
    # symmetric matrix it spells, so the adjoint lives on that triangle. With L the lower factor
    # (y, or y^T with upper=True) and Lbar its adjoint,
    #     P = L^-T Phi(L^T Lbar) L^-1    (Phi: the lower triangle, diagonal halved)
    # is the adjoint for symmetric changes of the matrix; an entry off the diagonal stands for
    # itself and its mirror image, so it gets P_ij + P_ji. Stacks of matrices work the same.
    # `numpy.swapaxes(v, -1, mirror)` transposes v with upper=True and leaves it as is otherwise.
    mirror = -2 if upper else -1
    eye = numpy.eye(numpy.shape(y)[-1])
    l = numpy.swapaxes(y, -1, mirror)
    l_inv = numpy.linalg.inv(l)
    l_bar = numpy.swapaxes(tangent.grad_like(d[y], y), -1, mirror)
    phi = numpy.tril(numpy.matmul(numpy.swapaxes(l, -1, -2), l_bar) * (1.0 - 0.5 * eye))
    p = numpy.matmul(numpy.swapaxes(l_inv, -1, -2), numpy.matmul(phi, l_inv))
    d[a] = numpy.swapaxes(numpy.tril(p + numpy.swapaxes(p, -1, -2)) - p * eye, -1, mirror)


@tangent_(numpy.linalg.cholesky)
def cholesky(y, a, upper=False):
    # A = L L^T, so L^-1 dA L^-T = X + X^T with X = L^-1 dL lower triangular:
    #     dL = L Phi(L^-1 dA L^-T)    (Phi: the lower triangle, diagonal halved)
    # where dA is the symmetric change NumPy sees: the read triangle of d[a] (in the lower
    # factor's orientation, `tril(w)`) and its mirror image (`tril(w, -1)` transposed).
    mirror = -2 if upper else -1
    eye = numpy.eye(numpy.shape(y)[-1])
    l = numpy.swapaxes(y, -1, mirror)
    l_inv = numpy.linalg.inv(l)
    l_inv_t = numpy.swapaxes(l_inv, -1, -2)
    d[y] = numpy.swapaxes(numpy.matmul(l, numpy.tril((1.0 - 0.5 * eye) * numpy.matmul(l_inv, numpy.matmul(
        numpy.tril(numpy.swapaxes(d[a], -1, mirror))
        + numpy.swapaxes(numpy.tril(numpy.swapaxes(d[a], -1, mirror), -1), -1, -2), l_inv_t)))), -1, mirror)


@adjoint(numpy.cross)
def cross(y, a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    # The vectors are moved to the last axis and given three components (a 2-vector's third is
    # 0): y is cross(a3, b3) with its last axis moved to axisc, or only its third component
    # when both are 2-vectors. <g, a x b> = <a, b x g> = <b, g x a> gives the adjoints, cut to
    # the vectors' lengths, put back on their axes and summed over broadcast axes.
    along_a = numpy.mod(axisa if axis is None else axis, numpy.ndim(a)) - numpy.ndim(a)
    along_b = numpy.mod(axisb if axis is None else axis, numpy.ndim(b)) - numpy.ndim(b)
    along_c = axisc if axis is None else axis
    a_last = numpy.moveaxis(a, along_a, -1)
    b_last = numpy.moveaxis(b, along_b, -1)
    size_a = numpy.shape(a_last)[-1]
    size_b = numpy.shape(b_last)[-1]
    a3 = numpy.concatenate([a_last, numpy.zeros(numpy.shape(a_last)[:-1] + (3 - size_a,))], axis=-1)
    b3 = numpy.concatenate([b_last, numpy.zeros(numpy.shape(b_last)[:-1] + (3 - size_b,))], axis=-1)
    planar = size_a == 2 and size_b == 2
    g = tangent.grad_like(d[y], y)
    g3 = numpy.stack([numpy.zeros(numpy.shape(g)), numpy.zeros(numpy.shape(g)), g], axis=-1) if planar else numpy.moveaxis(g, along_c, -1)
    d[a] = tangent.unbroadcast(numpy.moveaxis(numpy.cross(b3, g3)[..., :size_a], -1, along_a), a)
    d[b] = tangent.unbroadcast(numpy.moveaxis(numpy.cross(g3, a3)[..., :size_b], -1, along_b), b)


@tangent_(numpy.cross)
def cross(y, a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    along_a = numpy.mod(axisa if axis is None else axis, numpy.ndim(a)) - numpy.ndim(a)
    along_b = numpy.mod(axisb if axis is None else axis, numpy.ndim(b)) - numpy.ndim(b)
    along_c = axisc if axis is None else axis
    a_last = numpy.moveaxis(a, along_a, -1)
    b_last = numpy.moveaxis(b, along_b, -1)
    size_a = numpy.shape(a_last)[-1]
    size_b = numpy.shape(b_last)[-1]
    pad_a = numpy.zeros(numpy.shape(a_last)[:-1] + (3 - size_a,))
    pad_b = numpy.zeros(numpy.shape(b_last)[:-1] + (3 - size_b,))
    a3 = numpy.concatenate([a_last, pad_a], axis=-1)
    b3 = numpy.concatenate([b_last, pad_b], axis=-1)
    planar = size_a == 2 and size_b == 2
    d[y] = (numpy.cross(numpy.concatenate([numpy.moveaxis(d[a], along_a, -1), pad_a], axis=-1), b3)[..., 2] if planar
            else numpy.moveaxis(numpy.cross(numpy.concatenate([numpy.moveaxis(d[a], along_a, -1), pad_a], axis=-1), b3), -1, along_c))
    d[y] += (numpy.cross(a3, numpy.concatenate([numpy.moveaxis(d[b], along_b, -1), pad_b], axis=-1))[..., 2] if planar
             else numpy.moveaxis(numpy.cross(a3, numpy.concatenate([numpy.moveaxis(d[b], along_b, -1), pad_b], axis=-1)), -1, along_c))


@adjoint(numpy.kron)
def kron(y, a, b):
    # With both operands given n = max(ndim) axes, y[i * shape(b) + j] = a[i] b[j]: g seen as
    # blocks (a0, b0, a1, b1, ...), its a axes moved first, contracts with b for a's adjoint
    # and with a for b's.
    n = numpy.maximum(numpy.ndim(a), numpy.ndim(b))
    shape_a = numpy.concatenate([numpy.ones(n - numpy.ndim(a), dtype=numpy.intp), numpy.array(numpy.shape(a), dtype=numpy.intp)])
    shape_b = numpy.concatenate([numpy.ones(n - numpy.ndim(b), dtype=numpy.intp), numpy.array(numpy.shape(b), dtype=numpy.intp)])
    g = tangent.grad_like(d[y], y)
    blocks = numpy.transpose(numpy.reshape(g, numpy.ravel(numpy.stack([shape_a, shape_b], axis=1))),
                             numpy.concatenate([numpy.arange(0, 2 * n, 2), numpy.arange(1, 2 * n, 2)]))
    d[a] = tangent.unbroadcast(numpy.reshape(numpy.tensordot(blocks, numpy.reshape(b, shape_b), n), numpy.shape(a)), a)
    d[b] = tangent.unbroadcast(numpy.reshape(numpy.tensordot(numpy.reshape(a, shape_a), blocks, n), numpy.shape(b)), b)


@tangent_(numpy.kron)
def kron(y, a, b):
    d[y] = numpy.kron(d[a], b)
    d[y] += numpy.kron(a, d[b])


@adjoint(numpy.linalg.multi_dot)
def multi_dot(y, arrays, out=None):
    # A list of two or more arrays, the first a row and the last a column when 1-D: as
    # matrices M_0 ... M_(n-1), M_k's adjoint is (M_0 ... M_(k-1))^T g (M_(k+1) ... M_(n-1))^T
    # (the products before and after it, identities at the ends), given M_k's shape.
    count = numpy.size([0.0 for part_ in arrays])
    positions = numpy.arange(count)
    first = numpy.atleast_2d(arrays[0])
    last = numpy.reshape(arrays[-1], (-1, 1)) if numpy.ndim(arrays[-1]) == 1 else arrays[-1]
    matrices = [first if k_ == 0 else (last if k_ == count - 1 else arrays[k_]) for k_ in positions]
    g = numpy.reshape(tangent.grad_like(d[y], y), (numpy.shape(first)[0], numpy.shape(last)[1]))
    before = [numpy.eye(numpy.shape(first)[0]) if k_ == 0 else (first if k_ == 1 else numpy.linalg.multi_dot(matrices[:k_])) for k_ in positions]
    after = [numpy.eye(numpy.shape(last)[1]) if k_ == count - 1 else (last if k_ == count - 2 else numpy.linalg.multi_dot(matrices[k_ + 1:])) for k_ in positions]
    pieces = [numpy.reshape(numpy.matmul(numpy.matmul(numpy.transpose(before[k_]), g), numpy.transpose(after[k_])), numpy.shape(arrays[k_])) for k_ in positions]
    d[arrays] = tangent.unbroadcast(pieces, arrays)


@tangent_(numpy.linalg.multi_dot)
def multi_dot(y, arrays, out=None):
    # The sum over k of the product with the k-th array replaced by its tangent
    # (d[arrays] is the list of the arrays' tangents).
    positions = numpy.arange(numpy.size([0.0 for part_ in arrays]))
    d[y] = numpy.sum([numpy.linalg.multi_dot([d[arrays][j_] if j_ == k_ else arrays[j_] for j_ in positions]) for k_ in positions], axis=0)


@adjoint(numpy.linalg.matrix_power)
def matrix_power(y, a, n):
    # y = B^m with B = a (n >= 0) or inv(a) (n < 0) and m = |n|. B's adjoint is the sum over
    # k < m of (B^T)^k g (B^T)^(m-1-k); through the inverse, a's is -B^T (that) B^T.
    base = numpy.linalg.inv(a) if n < 0 else a
    base_t = numpy.swapaxes(base, -1, -2)
    g = tangent.grad_like(d[y], y)
    steps = numpy.arange(numpy.abs(n))
    terms = [numpy.matmul(numpy.linalg.matrix_power(base_t, k_), numpy.matmul(g, numpy.linalg.matrix_power(base_t, numpy.abs(n) - 1 - k_))) for k_ in steps]
    g_base = numpy.sum(terms, axis=0) + numpy.zeros(numpy.shape(a))
    d[a] = -numpy.matmul(base_t, numpy.matmul(g_base, base_t)) if n < 0 else g_base


@tangent_(numpy.linalg.matrix_power)
def matrix_power(y, a, n):
    # dB = da (n >= 0) or -B da B (n < 0); d(B^m) is the sum over k < m of B^k dB B^(m-1-k).
    base = numpy.linalg.inv(a) if n < 0 else a
    steps = numpy.arange(numpy.abs(n))
    d[y] = numpy.sum([numpy.matmul(numpy.linalg.matrix_power(base, k_), numpy.matmul(-numpy.matmul(base, numpy.matmul(d[a], base)) if n < 0 else d[a], numpy.linalg.matrix_power(base, numpy.abs(n) - 1 - k_))) for k_ in steps], axis=0) + numpy.zeros(numpy.shape(y))


@adjoint(numpy.linalg.pinv)
def pinv(y, a, rcond=None, hermitian=False, rtol=None):
    # For a (stack of) matrix A of locally constant rank, with Y = pinv(A) (Golub and Pereyra):
    #     dY = -Y dA Y + Y Y^T dA^T (I - A Y) + (I - Y A) dA^T Y^T Y,
    # whose transpose gives the adjoint below. The cutoff (rcond, rtol) is taken as fixed.
    # With hermitian=True NumPy reads a's lower triangle only (the symmetric matrix it spells
    # is `sym`): as for cholesky, an entry below the diagonal stands for itself and its mirror.
    sym = numpy.tril(a) + numpy.swapaxes(numpy.tril(a, -1), -1, -2) if hermitian else a
    y_t = numpy.swapaxes(y, -1, -2)
    g = tangent.grad_like(d[y], y)
    g_t = numpy.swapaxes(g, -1, -2)
    rows = numpy.eye(numpy.shape(a)[-2])
    cols = numpy.eye(numpy.shape(a)[-1])
    p = (-numpy.matmul(y_t, numpy.matmul(g, y_t))
         + numpy.matmul(rows - numpy.matmul(sym, y), numpy.matmul(g_t, numpy.matmul(y, y_t)))
         + numpy.matmul(numpy.matmul(y_t, y), numpy.matmul(g_t, cols - numpy.matmul(y, sym))))
    d[a] = numpy.tril(p + numpy.swapaxes(p, -1, -2)) - p * rows if hermitian else p


@tangent_(numpy.linalg.pinv)
def pinv(y, a, rcond=None, hermitian=False, rtol=None):
    # The change of the matrix NumPy reads is d[a], or with hermitian=True the symmetric matrix
    # spelled by d[a]'s lower triangle.
    sym = numpy.tril(a) + numpy.swapaxes(numpy.tril(a, -1), -1, -2) if hermitian else a
    y_t = numpy.swapaxes(y, -1, -2)
    rows = numpy.eye(numpy.shape(a)[-2])
    cols = numpy.eye(numpy.shape(a)[-1])
    d[y] = -numpy.matmul(y, numpy.matmul(numpy.tril(d[a]) + numpy.swapaxes(numpy.tril(d[a], -1), -1, -2) if hermitian else d[a], y))
    d[y] += numpy.matmul(numpy.matmul(y, y_t), numpy.matmul(numpy.swapaxes(numpy.tril(d[a]) + numpy.swapaxes(numpy.tril(d[a], -1), -1, -2) if hermitian else d[a], -1, -2), rows - numpy.matmul(sym, y)))
    d[y] += numpy.matmul(cols - numpy.matmul(y, sym), numpy.matmul(numpy.swapaxes(numpy.tril(d[a]) + numpy.swapaxes(numpy.tril(d[a], -1), -1, -2) if hermitian else d[a], -1, -2), numpy.matmul(y_t, y)))


@adjoint(numpy.einsum)
@adjoint(tangent.einsum)
def einsum(y, subscripts, operand0, operand1=None, operand2=None):
    # The subscripts-string form with one to three operands (not `out` or `optimize`). y is
    # linear in each operand: the adjoint of one is the einsum of d[y] (labelled by the output)
    # with the others, summed into that operand's labels, e.g. for 'ij,jk->ik' the adjoint of
    # the first is einsum('ik,jk->ij', d[y], operand1). The runtime also handles the implicit
    # output, '...', repeated labels ('ii->i'), labels of one operand only ('ij->i') and
    # operands broadcast against each other.
    d[operand0] = tangent.einsum_adjoint(d[y], subscripts, 0, operand0, operand1, operand2)
    d[operand1] = tangent.einsum_adjoint(d[y], subscripts, 1, operand0, operand1, operand2)
    d[operand2] = tangent.einsum_adjoint(d[y], subscripts, 2, operand0, operand1, operand2)


@tangent_(numpy.einsum)
@tangent_(tangent.einsum)
def einsum(y, subscripts, operand0, operand1=None, operand2=None):
    # The same einsum with one operand replaced by its tangent (tangent.einsum skips the
    # operands that are None, i.e. not passed).
    d[y] = tangent.einsum(subscripts, d[operand0], operand1, operand2)
    d[y] += tangent.einsum(subscripts, operand0, d[operand1], operand2)
    d[y] += tangent.einsum(subscripts, operand0, operand1, d[operand2])


@adjoint(numpy.linalg.norm)
def norm(y, x, ord=None, axis=None, keepdims=False):
    # Handles ord None / 'fro' (2-norm of all reduced elements) and vector norms (x 1-D or
    # axis an int): finite p, inf and -inf. Matrix norms with another ord (1, 2, inf, 'nuc', ...)
    # are not handled: their adjoint is NaN so that a wrong gradient cannot go unnoticed.
    euclidean = ord is None or ord == 'fro'
    matrix = numpy.size(axis) == 2 or (axis is None and numpy.ndim(x) == 2)
    p = 2.0 if euclidean or matrix else ord
    extreme = numpy.isinf(p)
    y_full = tangent.unreduce(y, x, axis, keepdims)
    g_full = tangent.unreduce(d[y], x, axis, keepdims) * numpy.sign(x)
    # inf / -inf: the elements of largest / smallest magnitude share the adjoint.
    hit = numpy.abs(x) == y_full if extreme else None
    d_extreme = g_full * hit / numpy.sum(hit, axis=axis, keepdims=True) if extreme else None
    # finite p: d|x|_p / dx = sign(x) (|x| / |x|_p) ** (p - 1); p == 0 counts nonzeros.
    d_finite = g_full * (numpy.abs(x) / y_full) ** ((1.0 if extreme else p) - 1.0) * (p != 0)
    d[x] = x * numpy.nan if matrix and not euclidean else (d_extreme if extreme else d_finite)


@tangent_(numpy.linalg.norm)
def norm(y, x, ord=None, axis=None, keepdims=False):
    # The same cases as the adjoint: d|x| = sum(w * dx) over the reduced axes, with w the
    # adjoint's weights; unhandled matrix norms give NaN.
    euclidean = ord is None or ord == 'fro'
    matrix = numpy.size(axis) == 2 or (axis is None and numpy.ndim(x) == 2)
    p = 2.0 if euclidean or matrix else ord
    extreme = numpy.isinf(p)
    y_full = tangent.unreduce(y, x, axis, keepdims)
    hit = numpy.abs(x) == y_full if extreme else None
    w_extreme = hit / numpy.sum(hit, axis=axis, keepdims=True) if extreme else None
    w_finite = (numpy.abs(x) / y_full) ** ((1.0 if extreme else p) - 1.0) * (p != 0)
    weight = x * numpy.nan if matrix and not euclidean else numpy.sign(x) * (w_extreme if extreme else w_finite)
    d[y] = numpy.sum(weight * d[x], axis=axis, keepdims=keepdims)


# ---------------------------------------------------------------- shape functions


@adjoint(numpy.reshape)
def reshape(y, a, shape, order='C'):
    g = tangent.grad_like(d[y], y)
    d[a] = tangent.unbroadcast(numpy.reshape(g, numpy.shape(a), order=order), a)


@tangent_(numpy.reshape)
def reshape(y, a, shape, order='C'):
    d[y] = numpy.reshape(d[a], shape, order=order)


@adjoint(numpy.ravel)
def ravel(y, a, order='C'):
    g = tangent.grad_like(d[y], y)
    d[a] = tangent.unbroadcast(tangent.unravel(g, a, order), a)


@tangent_(numpy.ravel)
def ravel(y, a, order='C'):
    d[y] = numpy.ravel(d[a], order=order)


@adjoint(numpy.expand_dims)
def expand_dims(y, a, axis):
    g = tangent.grad_like(d[y], y)
    d[a] = tangent.unbroadcast(numpy.reshape(g, numpy.shape(a)), a)


@tangent_(numpy.expand_dims)
def expand_dims(y, a, axis):
    d[y] = numpy.expand_dims(d[a], axis)


@adjoint(numpy.squeeze)
def squeeze(y, a, axis=None):
    g = tangent.grad_like(d[y], y)
    d[a] = tangent.unbroadcast(numpy.reshape(g, numpy.shape(a)), a)


@tangent_(numpy.squeeze)
def squeeze(y, a, axis=None):
    d[y] = numpy.squeeze(d[a], axis)


@adjoint(numpy.atleast_1d)
@adjoint(numpy.atleast_2d)
@adjoint(numpy.atleast_3d)
def atleast_1d(y, arys):
    # Single-argument form only (with several arguments these return a tuple).
    g = tangent.grad_like(d[y], y)
    d[arys] = tangent.unbroadcast(numpy.reshape(g, numpy.shape(arys)), arys)


@tangent_(numpy.atleast_1d)
@tangent_(numpy.atleast_2d)
@tangent_(numpy.atleast_3d)
def atleast_1d(y, arys):
    d[y] = numpy.reshape(d[arys], numpy.shape(y))


@adjoint(numpy.transpose)
@adjoint(numpy.permute_dims)
def transpose(y, a, axes=None):
    g = tangent.grad_like(d[y], y)
    d[a] = numpy.transpose(g) if axes is None else numpy.transpose(g, numpy.argsort(numpy.mod(axes, numpy.ndim(a))))


@tangent_(numpy.transpose)
@tangent_(numpy.permute_dims)
def transpose(y, a, axes=None):
    d[y] = numpy.transpose(d[a], axes)


@adjoint(numpy.swapaxes)
def swapaxes(y, a, axis1, axis2):
    g = tangent.grad_like(d[y], y)
    d[a] = numpy.swapaxes(g, axis1, axis2)


@tangent_(numpy.swapaxes)
def swapaxes(y, a, axis1, axis2):
    d[y] = numpy.swapaxes(d[a], axis1, axis2)


@adjoint(numpy.moveaxis)
def moveaxis(y, a, source, destination):
    g = tangent.grad_like(d[y], y)
    d[a] = numpy.moveaxis(g, destination, source)


@tangent_(numpy.moveaxis)
def moveaxis(y, a, source, destination):
    d[y] = numpy.moveaxis(d[a], source, destination)


@adjoint(numpy.flip)
def flip(y, m, axis=None):
    g = tangent.grad_like(d[y], y)
    d[m] = numpy.flip(g, axis)


@tangent_(numpy.flip)
def flip(y, m, axis=None):
    d[y] = numpy.flip(d[m], axis)


@adjoint(numpy.fliplr)
def fliplr(y, m):
    g = tangent.grad_like(d[y], y)
    d[m] = numpy.fliplr(g)


@tangent_(numpy.fliplr)
def fliplr(y, m):
    d[y] = numpy.fliplr(d[m])


@adjoint(numpy.flipud)
def flipud(y, m):
    g = tangent.grad_like(d[y], y)
    d[m] = numpy.flipud(g)


@tangent_(numpy.flipud)
def flipud(y, m):
    d[y] = numpy.flipud(d[m])


@adjoint(numpy.roll)
def roll(y, a, shift, axis=None):
    g = tangent.grad_like(d[y], y)
    d[a] = numpy.roll(g, numpy.negative(shift), axis)


@tangent_(numpy.roll)
def roll(y, a, shift, axis=None):
    d[y] = numpy.roll(d[a], shift, axis)


@adjoint(numpy.broadcast_to)
def broadcast_to(y, array, shape, subok=False):
    d[array] = tangent.unbroadcast(tangent.grad_like(d[y], y), array)


@tangent_(numpy.broadcast_to)
def broadcast_to(y, array, shape, subok=False):
    # A read-only view, like y.
    d[y] = numpy.broadcast_to(d[array], shape)


@adjoint(numpy.tile)
def tile(y, A, reps):
    # Pad A's shape and reps to a common length n, view g as (r0, a0, r1, a1, ...), move the
    # r axes first and sum them.
    reps_v = numpy.atleast_1d(reps)
    n = numpy.maximum(numpy.size(reps_v), numpy.ndim(A))
    reps_p = numpy.concatenate([numpy.ones(n - numpy.size(reps_v), dtype=numpy.intp), reps_v])
    shape_v = numpy.array(numpy.shape(A), dtype=numpy.intp)
    shape_p = numpy.concatenate([numpy.ones(n - numpy.ndim(A), dtype=numpy.intp), shape_v])
    g = tangent.grad_like(d[y], y)
    split = numpy.reshape(g, numpy.ravel(numpy.stack([reps_p, shape_p], axis=1)))
    grouped = numpy.transpose(split, numpy.concatenate([numpy.arange(0, 2 * n, 2), numpy.arange(1, 2 * n, 2)]))
    summed = numpy.sum(numpy.reshape(grouped, (numpy.prod(reps_p), -1)), axis=0)
    d[A] = tangent.unbroadcast(numpy.reshape(summed, numpy.shape(A)), A)


@tangent_(numpy.tile)
def tile(y, A, reps):
    d[y] = numpy.tile(d[A], reps)


@adjoint(numpy.repeat)
def repeat(y, a, repeats, axis=None):
    # Each output slice along the axis comes from source slice `owner`; scatter-add g back.
    source = numpy.ravel(a) if axis is None else numpy.moveaxis(a, axis, 0)
    owner = numpy.repeat(numpy.arange(numpy.shape(source)[0]), repeats)
    g = tangent.grad_like(d[y], y)
    summed = tangent.add_grad_at(None, source, owner, g if axis is None else numpy.moveaxis(g, axis, 0))
    d[a] = tangent.unbroadcast(numpy.reshape(summed, numpy.shape(a)), a) if axis is None else numpy.moveaxis(summed, 0, axis)


@tangent_(numpy.repeat)
def repeat(y, a, repeats, axis=None):
    d[y] = numpy.repeat(d[a], repeats, axis)


@adjoint(numpy.take)
def take(y, a, indices, axis=None, out=None, mode='raise'):
    source = numpy.ravel(a) if axis is None else numpy.moveaxis(a, axis, 0)
    n = numpy.shape(source)[0]
    clipped = numpy.clip(indices, 0, n - 1) if mode == 'clip' else indices
    index = numpy.mod(indices, n) if mode == 'wrap' else clipped
    g = tangent.grad_like(d[y], y)
    # Move the axes that came from `indices` to the front, matching add.at's layout.
    start = 0 if axis is None else numpy.mod(axis, numpy.ndim(a))
    g_front = numpy.moveaxis(g, numpy.arange(start, start + numpy.ndim(indices)), numpy.arange(numpy.ndim(indices)))
    summed = tangent.add_grad_at(None, source, index, g_front)
    d[a] = numpy.reshape(summed, numpy.shape(a)) if axis is None else numpy.moveaxis(summed, 0, axis)


@tangent_(numpy.take)
def take(y, a, indices, axis=None, out=None, mode='raise'):
    d[y] = numpy.take(d[a], indices, axis=axis, mode=mode)


@adjoint(numpy.bincount)
def bincount(y, x, weights=None, minlength=0):
    # With weights, y[i] is the sum of the weights of the entries of x equal to i (a
    # scatter-add): each weight gets the adjoint of its bin. Without weights y only counts.
    d[weights] = tangent.unbroadcast(tangent.grad_like(d[y], y)[x], weights)


@tangent_(numpy.bincount)
def bincount(y, x, weights=None, minlength=0):
    d[y] = numpy.bincount(x, d[weights], minlength)


@adjoint(numpy.sort)
def sort(y, a, axis=-1, kind=None, order=None):
    # rank[i] is where element i of a ended up in y (the inverse of the sorting permutation).
    source = numpy.ravel(a) if axis is None else a
    sort_axis = -1 if axis is None else axis
    rank = numpy.argsort(numpy.argsort(source, axis=sort_axis, kind=kind), axis=sort_axis)
    g = tangent.grad_like(d[y], y)
    d[a] = numpy.reshape(numpy.take_along_axis(g, rank, sort_axis), numpy.shape(a))


@tangent_(numpy.sort)
def sort(y, a, axis=-1, kind=None, order=None):
    # The tangents follow their elements through the sorting permutation.
    source = numpy.ravel(a) if axis is None else a
    sort_axis = -1 if axis is None else axis
    permutation = numpy.argsort(source, axis=sort_axis, kind=kind)
    d[y] = numpy.take_along_axis(numpy.reshape(d[a], numpy.shape(source)), permutation, sort_axis)


@adjoint(numpy.diagonal)
def diagonal(y, a, offset=0, axis1=0, axis2=1):
    # Zeros like a with g on that diagonal.
    d[a] = tangent.diagonal_like(tangent.grad_like(d[y], y), a, offset, axis1, axis2)


@tangent_(numpy.diagonal)
def diagonal(y, a, offset=0, axis1=0, axis2=1):
    d[y] = numpy.diagonal(d[a], offset, axis1, axis2)


@adjoint(numpy.take_along_axis)
def take_along_axis(y, arr, indices, axis=-1):
    # Each element of y is a copy of one of arr: the adjoints add up where they came from.
    d[arr] = tangent.scatter_along_axis(tangent.grad_like(d[y], y), indices, axis, arr)


@tangent_(numpy.take_along_axis)
def take_along_axis(y, arr, indices, axis=-1):
    d[y] = numpy.take_along_axis(d[arr], indices, axis)


@adjoint(numpy.diag)
def diag(y, v, k=0):
    # 1-D v: y is a matrix and the adjoint is its k-th diagonal. 2-D v: y is the k-th diagonal
    # and the adjoint is a matrix with g on that diagonal (built square, then padded and cut).
    g = tangent.grad_like(d[y], y)
    rows = numpy.shape(v)[0]
    cols = numpy.shape(v)[-1]
    d[v] = numpy.diagonal(g, k) if numpy.ndim(v) == 1 else numpy.pad(numpy.diag(g, k), ((0, rows), (0, cols)))[:rows, :cols]


@tangent_(numpy.diag)
def diag(y, v, k=0):
    d[y] = numpy.diag(d[v], k)


@adjoint(numpy.concatenate)
@adjoint(numpy.concat)
def concatenate(y, arrays, axis=0, out=None, dtype=None, casting='same_kind'):
    # The adjoint of the list `arrays` is a list: g cut at the part boundaries.
    d[arrays] = tangent.split_like(tangent.grad_like(d[y], y), arrays, axis, 0)


@tangent_(numpy.concatenate)
@tangent_(numpy.concat)
def concatenate(y, arrays, axis=0, out=None, dtype=None, casting='same_kind'):
    # d[arrays] is the list (tuple) of the parts' tangents.
    d[y] = numpy.concatenate(d[arrays], axis=axis, dtype=dtype, casting=casting)


@adjoint(numpy.append)
def append(y, arr, values, axis=None):
    # Joining two parts (flattened when axis is None): g cut at their boundary.
    pieces = tangent.split_like(tangent.grad_like(d[y], y), [arr, values], axis, 0)
    d[arr] = pieces[0]
    d[values] = pieces[1]


@tangent_(numpy.append)
def append(y, arr, values, axis=None):
    d[y] = numpy.append(d[arr], numpy.zeros(numpy.shape(values)), axis=axis)
    d[y] += numpy.append(numpy.zeros(numpy.shape(arr)), d[values], axis=axis)


@adjoint(numpy.stack)
def stack(y, arrays, axis=0, out=None, dtype=None, casting='same_kind'):
    d[arrays] = tangent.unstack(tangent.grad_like(d[y], y), arrays, axis)


@tangent_(numpy.stack)
def stack(y, arrays, axis=0, out=None, dtype=None, casting='same_kind'):
    d[y] = numpy.stack(d[arrays], axis=axis, dtype=dtype, casting=casting)


@adjoint(numpy.hstack)
def hstack(y, tup, dtype=None, casting='same_kind'):
    # hstack joins along axis 0 when the parts are (at most) 1-D, else along axis 1.
    join_axis = 0 if numpy.ndim(tup[0]) <= 1 else 1
    d[tup] = tangent.split_like(tangent.grad_like(d[y], y), tup, join_axis, 1)


@tangent_(numpy.hstack)
def hstack(y, tup, dtype=None, casting='same_kind'):
    d[y] = numpy.hstack(d[tup], dtype=dtype, casting=casting)


@adjoint(numpy.vstack)
@adjoint(numpy.row_stack)
def vstack(y, tup, dtype=None, casting='same_kind'):
    d[tup] = tangent.split_like(tangent.grad_like(d[y], y), tup, 0, 2)


@tangent_(numpy.vstack)
@tangent_(numpy.row_stack)
def vstack(y, tup, dtype=None, casting='same_kind'):
    # (row_stack is vstack's old name.)
    d[y] = numpy.vstack(d[tup], dtype=dtype, casting=casting)


@adjoint(numpy.column_stack)
def column_stack(y, tup):
    # Parts of at most one dimension join as columns, the others as they are, along axis 1:
    # g's columns cut at the parts' widths, each piece in its part's shape.
    widths = [1 if numpy.ndim(part_) < 2 else numpy.shape(part_)[1] for part_ in tup]
    pieces = numpy.split(tangent.grad_like(d[y], y), numpy.cumsum(widths)[:-1], axis=1)
    positions = numpy.arange(numpy.size(widths))
    d[tup] = tangent.unbroadcast([numpy.reshape(pieces[k_], numpy.shape(tup[k_])) for k_ in positions], tup)


@tangent_(numpy.column_stack)
def column_stack(y, tup):
    d[y] = numpy.column_stack(d[tup])


@adjoint(numpy.dstack)
def dstack(y, tup):
    # The parts, raised to three dimensions as atleast_3d raises them, join along axis 2: g cut
    # at their depths, each piece in its part's shape.
    depths = [numpy.shape(numpy.atleast_3d(part_))[2] for part_ in tup]
    pieces = numpy.split(tangent.grad_like(d[y], y), numpy.cumsum(depths)[:-1], axis=2)
    positions = numpy.arange(numpy.size(depths))
    d[tup] = tangent.unbroadcast([numpy.reshape(pieces[k_], numpy.shape(tup[k_])) for k_ in positions], tup)


@tangent_(numpy.dstack)
def dstack(y, tup):
    d[y] = numpy.dstack(d[tup])


@adjoint(numpy.split)
@adjoint(numpy.array_split)
def split(y, ary, indices_or_sections, axis=0):
    # y is a list of pieces and d[y] a list of their adjoints (grad_like lays out a scalar seed
    # like the pieces): joined back along the axis, they are the adjoint of ary.
    d[ary] = numpy.concatenate(tangent.grad_like(d[y], y), axis=axis)


@tangent_(numpy.split)
@tangent_(numpy.array_split)
def split(y, ary, indices_or_sections, axis=0):
    # A list of pieces of the tangent, like y (array_split also splits where split would).
    d[y] = numpy.array_split(d[ary], indices_or_sections, axis)


@adjoint(numpy.pad)
def pad(y, array, pad_width, mode='constant', constant_values=0):
    # Every element of y is a copy of an element of array or, with mode 'constant', one of the
    # constants (one per axis and side; a later axis fills the corners). Padding the indices of
    # array's elements the same way, with the code -1 - (2 * axis + side) for each constant,
    # says where each element of y comes from; the adjoints are the sums of g over each source.
    # Modes computing new values ('linear_ramp', 'mean', ...) are not handled: NaN adjoints.
    n = numpy.ndim(array)
    copying = mode in ('constant', 'edge', 'reflect', 'symmetric', 'wrap')
    ids = numpy.reshape(numpy.arange(numpy.size(array)), numpy.shape(array))
    codes = -1 - numpy.reshape(numpy.arange(2 * n), (n, 2))
    padded = numpy.pad(ids, pad_width, mode=mode) if copying and mode != 'constant' else numpy.pad(ids, pad_width, mode='constant', constant_values=codes)
    source = numpy.ravel(padded)
    g = numpy.ravel(tangent.grad_like(d[y], y))
    from_array = numpy.bincount(source[source >= 0], g[source >= 0], numpy.size(array))
    from_constants = numpy.bincount(-1 - source[source < 0], g[source < 0], 2 * n)
    d[array] = tangent.unbroadcast(numpy.reshape(from_array, numpy.shape(array)) * (1.0 if copying else numpy.nan), array)
    # Summed to the shape of constant_values as NumPy broadcasts it (right-aligned), then given
    # its structure (a float, a tuple, an array).
    by_shape = tangent.unbroadcast(numpy.reshape(from_constants, (n, 2)), numpy.asarray(constant_values))
    d[constant_values] = tangent.unbroadcast(by_shape, constant_values)


@tangent_(numpy.pad)
def pad(y, array, pad_width, mode='constant', constant_values=0):
    # Padding is linear: pad the tangent (with zeros in mode 'constant'), plus zeros padded with
    # the constants' tangents.
    copying = mode in ('constant', 'edge', 'reflect', 'symmetric', 'wrap')
    d[y] = numpy.pad(d[array], pad_width, mode=mode if copying else 'constant') * (1.0 if copying else numpy.nan)
    d[y] += numpy.pad(numpy.zeros(numpy.shape(array)), pad_width, mode='constant', constant_values=d[constant_values])


@adjoint(numpy.triu)
def triu(y, m, k=0):
    # A 1-D m stands for every row of a square matrix: unbroadcast sums the rows back.
    d[m] = tangent.unbroadcast(numpy.triu(tangent.grad_like(d[y], y), k), m)


@tangent_(numpy.triu)
def triu(y, m, k=0):
    d[y] = numpy.triu(d[m], k)


@adjoint(numpy.tril)
def tril(y, m, k=0):
    d[m] = tangent.unbroadcast(numpy.tril(tangent.grad_like(d[y], y), k), m)


@tangent_(numpy.tril)
def tril(y, m, k=0):
    d[y] = numpy.tril(d[m], k)


# ---------------------------------------------------------------- differences, convolution, interpolation


@adjoint(numpy.diff)
def diff(y, a, n=1, axis=-1, prepend=None, append=None):
    # y is the n-th difference of [prepend, a, append] joined along the axis (a scalar prepend
    # or append is one slice). Its adjoint is (-1)^n times the n-th difference of g padded with
    # n zeros at both ends of the axis, cut back into the three parts.
    along = numpy.mod(axis, numpy.ndim(a))
    before = 0 if prepend is None else (1 if numpy.ndim(prepend) == 0 else numpy.shape(prepend)[along])
    length = numpy.shape(a)[along]
    g = tangent.grad_like(d[y], y)
    widths = numpy.outer(numpy.arange(numpy.ndim(a)) == along, [n, n])
    joined = (-1.0) ** n * numpy.diff(numpy.pad(g, widths), n, axis=along)
    parts = numpy.split(joined, [before, before + length], axis=along)
    d[a] = parts[1]
    d[prepend] = tangent.unbroadcast(parts[0], prepend)
    d[append] = tangent.unbroadcast(parts[2], append)


@tangent_(numpy.diff)
def diff(y, a, n=1, axis=-1, prepend=None, append=None):
    # The difference of the joined tangents, each statement with zeros for the other parts.
    along = numpy.mod(axis, numpy.ndim(a))
    at_axis = numpy.arange(numpy.ndim(a)) == along
    zeros_before = numpy.zeros(numpy.where(at_axis, 0 if prepend is None else (1 if numpy.ndim(prepend) == 0 else numpy.shape(prepend)[along]), numpy.shape(a)))
    zeros_after = numpy.zeros(numpy.where(at_axis, 0 if append is None else (1 if numpy.ndim(append) == 0 else numpy.shape(append)[along]), numpy.shape(a)))
    zeros_a = numpy.zeros(numpy.shape(a))
    d[y] = numpy.diff(numpy.concatenate([zeros_before, d[a], zeros_after], axis=along), n, axis=along)
    d[y] += numpy.diff(numpy.concatenate([numpy.broadcast_to(d[prepend], numpy.shape(zeros_before)), zeros_a, zeros_after], axis=along), n, axis=along)
    d[y] += numpy.diff(numpy.concatenate([zeros_before, zeros_a, numpy.broadcast_to(d[append], numpy.shape(zeros_after))], axis=along), n, axis=along)


@adjoint(numpy.convolve)
def convolve(y, a, v, mode='full'):
    # y is the window of the full convolution (length len(a) + len(v) - 1) starting at `start`
    # ('same': (min - 1) // 2, 'valid': min - 1, with min the shorter length). With g put back
    # in its window, a's adjoint is correlate(g, v, 'valid') and v's correlate(g, a, 'valid').
    shorter = numpy.minimum(numpy.size(a), numpy.size(v))
    full = numpy.size(a) + numpy.size(v) - 1
    start = 0 if mode == 'full' else ((shorter - 1) // 2 if mode == 'same' else shorter - 1)
    g = numpy.ravel(tangent.grad_like(d[y], y))
    window = numpy.pad(g, (start, full - start - numpy.size(g)))
    d[a] = tangent.unbroadcast(numpy.correlate(window, numpy.ravel(v), 'valid'), a)
    d[v] = tangent.unbroadcast(numpy.correlate(window, numpy.ravel(a), 'valid'), v)


@tangent_(numpy.convolve)
def convolve(y, a, v, mode='full'):
    d[y] = numpy.convolve(d[a], v, mode)
    d[y] += numpy.convolve(a, d[v], mode)


@adjoint(numpy.correlate)
def correlate(y, a, v, mode='valid'):
    # correlate(a, v) is convolve(a, v reversed), with the window of 'same' starting at
    # (min - 1) // 2, or min // 2 when a is the shorter one.
    shorter = numpy.minimum(numpy.size(a), numpy.size(v))
    full = numpy.size(a) + numpy.size(v) - 1
    centre = shorter // 2 if numpy.size(a) < numpy.size(v) else (shorter - 1) // 2
    start = 0 if mode == 'full' else (centre if mode == 'same' else shorter - 1)
    g = numpy.ravel(tangent.grad_like(d[y], y))
    window = numpy.pad(g, (start, full - start - numpy.size(g)))
    d[a] = tangent.unbroadcast(numpy.correlate(window, numpy.flip(numpy.ravel(v)), 'valid'), a)
    d[v] = tangent.unbroadcast(numpy.flip(numpy.correlate(window, numpy.ravel(a), 'valid')), v)


@tangent_(numpy.correlate)
def correlate(y, a, v, mode='valid'):
    d[y] = numpy.correlate(d[a], v, mode)
    d[y] += numpy.correlate(a, d[v], mode)


@adjoint(numpy.interp)
def interp(y, x, xp, fp, left=None, right=None, period=None):
    # Inside [xp[0], xp[-1]], x in [xp[k], xp[k+1]] at t = (x - xp[k]) / h, h = xp[k+1] - xp[k],
    # gives y = (1 - t) fp[k] + t fp[k+1]: slope s = (fp[k+1] - fp[k]) / h for x, weights 1 - t
    # and t for fp, s (t - 1) and -s t for xp. Outside, y is left / right, or fp[0] / fp[-1]
    # when they are None (`t` clipped to [0, 1] picks those). `period` is not handled: NaN.
    xp_v = numpy.asarray(xp)
    fp_v = numpy.asarray(fp)
    count = numpy.size(xp_v)
    k = numpy.clip(numpy.searchsorted(xp_v, x, side='right') - 1, 0, count - 2)
    h = xp_v[k + 1] - xp_v[k]
    t = (x - xp_v[k]) / h
    s = (fp_v[k + 1] - fp_v[k]) / h
    below = x < xp_v[0]
    above = x > xp_v[-1]
    inside = numpy.logical_not(numpy.logical_or(below, above))
    kept = numpy.logical_and(numpy.logical_or(numpy.logical_not(below), left is None), numpy.logical_or(numpy.logical_not(above), right is None))
    t_in = numpy.clip(t, 0.0, 1.0)
    refused = 1.0 if period is None else numpy.nan
    g = tangent.grad_like(d[y], y)
    d[x] = tangent.unbroadcast(g * s * inside * refused, x)
    at_k = numpy.bincount(numpy.ravel(k), numpy.ravel(g * (1.0 - t_in) * kept), count)
    at_next = numpy.bincount(numpy.ravel(k) + 1, numpy.ravel(g * t_in * kept), count)
    d[fp] = tangent.unbroadcast((at_k + at_next) * refused, fp)
    xp_k = numpy.bincount(numpy.ravel(k), numpy.ravel(g * s * (t - 1.0) * inside), count)
    xp_next = numpy.bincount(numpy.ravel(k) + 1, numpy.ravel(-g * s * t * inside), count)
    d[xp] = tangent.unbroadcast((xp_k + xp_next) * refused, xp)
    d[left] = tangent.unbroadcast(g * below * refused, left)
    d[right] = tangent.unbroadcast(g * above * refused, right)


@tangent_(numpy.interp)
def interp(y, x, xp, fp, left=None, right=None, period=None):
    xp_v = numpy.asarray(xp)
    fp_v = numpy.asarray(fp)
    count = numpy.size(xp_v)
    k = numpy.clip(numpy.searchsorted(xp_v, x, side='right') - 1, 0, count - 2)
    h = xp_v[k + 1] - xp_v[k]
    t = (x - xp_v[k]) / h
    s = (fp_v[k + 1] - fp_v[k]) / h
    below = x < xp_v[0]
    above = x > xp_v[-1]
    inside = numpy.logical_not(numpy.logical_or(below, above))
    kept = numpy.logical_and(numpy.logical_or(numpy.logical_not(below), left is None), numpy.logical_or(numpy.logical_not(above), right is None))
    t_in = numpy.clip(t, 0.0, 1.0)
    refused = 1.0 if period is None else numpy.nan
    d[y] = d[x] * s * inside * refused
    d[y] += (numpy.asarray(d[fp])[k] * (1.0 - t_in) + numpy.asarray(d[fp])[k + 1] * t_in) * kept * refused
    d[y] += (numpy.asarray(d[xp])[k] * (t - 1.0) - numpy.asarray(d[xp])[k + 1] * t) * s * inside * refused
    d[y] += d[left] * below * refused
    d[y] += d[right] * above * refused


# ---------------------------------------------------------------- conversions


@adjoint(numpy.array)
def array(y, object, dtype=None, copy=True, order='K', subok=False, ndmin=0):
    # An ndarray gets an ndarray back, a (nested) list a (nested) list, a scalar a float:
    # unbroadcast lays g out like object, item by item.
    d[object] = tangent.unbroadcast(numpy.reshape(tangent.grad_like(d[y], y), numpy.shape(object)), object)


@tangent_(numpy.array)
def array(y, object, dtype=None, copy=True, order='K', subok=False, ndmin=0):
    # d[object] has object's structure (an array, a nested list of tangents, a float).
    d[y] = numpy.array(d[object], dtype=dtype, copy=copy, order=order, subok=subok, ndmin=ndmin)


@adjoint(numpy.asarray)
@adjoint(numpy.asanyarray)
def asarray(y, a, dtype=None, order=None, device=None, copy=None):
    d[a] = tangent.unbroadcast(numpy.reshape(tangent.grad_like(d[y], y), numpy.shape(a)), a)


@tangent_(numpy.asarray)
@tangent_(numpy.asanyarray)
def asarray(y, a, dtype=None, order=None, device=None, copy=None):
    d[y] = numpy.asarray(d[a], dtype=dtype, order=order)


@adjoint(numpy.copy)
def copy(y, a, order='K', subok=False):
    d[a] = tangent.unbroadcast(d[y], a)


@tangent_(numpy.copy)
def copy(y, a, order='K', subok=False):
    d[y] = numpy.copy(d[a], order=order, subok=subok)


@adjoint(numpy.float64)
def float64(y, x):
    d[x] = tangent.unbroadcast(d[y], x)


@tangent_(numpy.float64)
def float64(y, x):
    d[y] = numpy.float64(d[x])


# ---------------------------------------------------------------- the array API's own spellings
# (what `xp.astype(x, dtype)` and friends mean for NumPy arrays, in libraries using the array API)


@adjoint(numpy.astype)
def astype(y, x, dtype, copy=True, device=None):
    d[x] = tangent.unbroadcast(tangent.grad_like(d[y], y), x)


@tangent_(numpy.astype)
def astype(y, x, dtype, copy=True, device=None):
    d[y] = numpy.astype(d[x], dtype)


@adjoint(numpy.matrix_transpose)
@adjoint(numpy.linalg.matrix_transpose)
def matrix_transpose(y, x):
    d[x] = numpy.matrix_transpose(tangent.grad_like(d[y], y))


@tangent_(numpy.matrix_transpose)
@tangent_(numpy.linalg.matrix_transpose)
def matrix_transpose(y, x):
    d[y] = numpy.matrix_transpose(d[x])


@adjoint(numpy.linalg.vecdot)
def vecdot(y, x1, x2, axis=-1):
    # Real arrays: y = sum(x1 * x2) over `axis` of the broadcast shape.
    g = numpy.expand_dims(tangent.grad_like(d[y], y), axis)
    d[x1] = tangent.unbroadcast(g * x2, x1)
    d[x2] = tangent.unbroadcast(g * x1, x2)


@tangent_(numpy.linalg.vecdot)
def vecdot(y, x1, x2, axis=-1):
    d[y] = numpy.sum(d[x1] * x2, axis=axis)
    d[y] += numpy.sum(x1 * d[x2], axis=axis)


@adjoint(numpy.linalg.vector_norm)
def vector_norm(y, x, axis=None, keepdims=False, ord=2):
    # The vector p-norm over `axis` (all elements when None): finite p, inf and -inf.
    extreme = numpy.isinf(ord)
    y_full = tangent.unreduce(y, x, axis, keepdims)
    g_full = tangent.unreduce(d[y], x, axis, keepdims) * numpy.sign(x)
    hit = numpy.abs(x) == y_full if extreme else None
    d_extreme = g_full * hit / numpy.sum(hit, axis=axis, keepdims=True) if extreme else None
    d_finite = g_full * (numpy.abs(x) / y_full) ** ((1.0 if extreme else ord) - 1.0) * (ord != 0)
    d[x] = d_extreme if extreme else d_finite


@tangent_(numpy.linalg.vector_norm)
def vector_norm(y, x, axis=None, keepdims=False, ord=2):
    extreme = numpy.isinf(ord)
    y_full = tangent.unreduce(y, x, axis, keepdims)
    hit = numpy.abs(x) == y_full if extreme else None
    w_extreme = hit / numpy.sum(hit, axis=axis, keepdims=True) if extreme else None
    w_finite = (numpy.abs(x) / y_full) ** ((1.0 if extreme else ord) - 1.0) * (ord != 0)
    d[y] = numpy.sum(numpy.sign(x) * (w_extreme if extreme else w_finite) * d[x], axis=axis, keepdims=keepdims)


# ---------------------------------------------------------------- no derivative

nondifferentiable(
    numpy.shape, numpy.ndim, numpy.size,
    numpy.zeros, numpy.ones, numpy.empty, numpy.full,
    numpy.zeros_like, numpy.ones_like, numpy.empty_like, numpy.full_like,
    numpy.eye, numpy.identity, numpy.arange, numpy.linspace,
    numpy.argmax, numpy.argmin, numpy.argsort, numpy.argwhere, numpy.nonzero,
    numpy.flatnonzero, numpy.count_nonzero, numpy.searchsorted, numpy.digitize,
    numpy.floor, numpy.ceil, numpy.round, numpy.around, numpy.rint, numpy.trunc, numpy.fix,
    numpy.sign, numpy.signbit, numpy.heaviside,
    numpy.isnan, numpy.isinf, numpy.isfinite, numpy.isclose, numpy.allclose,
    numpy.array_equal, numpy.equal, numpy.not_equal, numpy.less, numpy.less_equal,
    numpy.greater, numpy.greater_equal,
    numpy.logical_and, numpy.logical_or, numpy.logical_not, numpy.logical_xor,
    numpy.any, numpy.all, numpy.int32, numpy.int64, numpy.intp, numpy.bool_,
    numpy.random.seed, numpy.random.default_rng, numpy.random.rand, numpy.random.randn,
    numpy.random.random, numpy.random.random_sample, numpy.random.uniform,
    numpy.random.normal, numpy.random.standard_normal, numpy.random.randint,
    numpy.random.choice, numpy.random.permutation, numpy.random.shuffle,
    numpy.random.binomial, numpy.random.poisson, numpy.random.exponential,
    numpy.isdtype, numpy.finfo, numpy.iinfo, numpy.result_type, numpy.can_cast,
    numpy.dtype, numpy.promote_types, numpy.issubdtype, numpy.min_scalar_type,
    numpy.unique_values, numpy.unique_counts, numpy.unique_inverse, numpy.unique_all,
    numpy.bitwise_and, numpy.bitwise_or, numpy.bitwise_xor, numpy.bitwise_not, numpy.invert,
)
