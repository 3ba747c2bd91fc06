"""Adjoints of Python's arithmetic operators and of the NumPy ufuncs that share their math.

The engine maps `a + b` to `operator.add`, `a @ b` to `operator.matmul` and so on. The NumPy
spellings (`numpy.add`, `numpy.matmul`, ...) are aliases of the same templates. Binary operators
broadcast, so every contribution goes through `tangent.unbroadcast`, which also turns the
adjoint of a Python scalar into a float.

Each adjoint is followed by its forward-mode template, `@tangent_(name)`, with the same
parameters: `d[x]` reads the tangent of input `x`, `d[y] = e` / `d[y] += e` builds the result's
tangent with one statement per differentiable input (the engine drops the statements that read
the tangent of an inactive input), and each statement alone gives `d[y]` the shape of `y`.
"""
import operator

import numpy
import tangent


@adjoint(numpy.add)
@adjoint(operator.add)
def add(z, x1, x2):
    g = tangent.grad_like(d[z], z)
    d[x1] = tangent.unbroadcast(g, x1)
    d[x2] = tangent.unbroadcast(g, x2)


@tangent_(numpy.add)
@tangent_(operator.add)
def add(z, x1, x2):
    # Each statement alone must give z's shape (the other input may be inactive); `* 1.0` makes
    # the broadcast view a fresh, writable float array like z.
    d[z] = numpy.broadcast_to(d[x1], numpy.shape(z)) * 1.0
    d[z] += numpy.broadcast_to(d[x2], numpy.shape(z)) * 1.0


@adjoint(numpy.subtract)
@adjoint(operator.sub)
def subtract(z, x1, x2):
    g = tangent.grad_like(d[z], z)
    d[x1] = tangent.unbroadcast(g, x1)
    d[x2] = tangent.unbroadcast(-g, x2)


@tangent_(numpy.subtract)
@tangent_(operator.sub)
def subtract(z, x1, x2):
    d[z] = numpy.broadcast_to(d[x1], numpy.shape(z)) * 1.0
    d[z] += -numpy.broadcast_to(d[x2], numpy.shape(z))


@adjoint(numpy.multiply)
@adjoint(operator.mul)
def multiply(z, x1, x2):
    d[x1] = tangent.unbroadcast(d[z] * x2, x1)
    d[x2] = tangent.unbroadcast(d[z] * x1, x2)


@tangent_(numpy.multiply)
@tangent_(operator.mul)
def multiply(z, x1, x2):
    d[z] = d[x1] * x2
    d[z] += x1 * d[x2]


@adjoint(numpy.divide)
@adjoint(numpy.true_divide)
@adjoint(operator.truediv)
def divide(z, x1, x2):
    d[x1] = tangent.unbroadcast(d[z] / x2, x1)
    d[x2] = tangent.unbroadcast(-d[z] * z / x2, x2)


@tangent_(numpy.divide)
@tangent_(numpy.true_divide)
@tangent_(operator.truediv)
def divide(z, x1, x2):
    d[z] = d[x1] / x2
    d[z] += -d[x2] * z / x2


@adjoint(numpy.floor_divide)
@adjoint(operator.floordiv)
def floor_divide(z, x1, x2):
    # Piecewise constant: the derivative is zero wherever it exists.
    d[x1] = tangent.init_grad(x1)
    d[x2] = tangent.init_grad(x2)


@tangent_(numpy.floor_divide)
@tangent_(operator.floordiv)
def floor_divide(z, x1, x2):
    # Piecewise constant: a zero tangent shaped like z.
    d[z] = numpy.zeros(numpy.shape(z)) * d[x1]
    d[z] += numpy.zeros(numpy.shape(z)) * d[x2]


@adjoint(numpy.mod)
@adjoint(numpy.remainder)
@adjoint(operator.mod)
def mod(z, x1, x2):
    # x1 % x2 == x1 - floor(x1 / x2) * x2 (Python and NumPy both round towards -inf).
    g = tangent.grad_like(d[z], z)
    d[x1] = tangent.unbroadcast(g, x1)
    d[x2] = tangent.unbroadcast(-g * numpy.floor_divide(x1, x2), x2)


@tangent_(numpy.mod)
@tangent_(numpy.remainder)
@tangent_(operator.mod)
def mod(z, x1, x2):
    d[z] = numpy.broadcast_to(d[x1], numpy.shape(z)) * 1.0
    d[z] += -d[x2] * numpy.floor_divide(x1, x2)


@adjoint(numpy.power)
@adjoint(numpy.pow)
@adjoint(numpy.float_power)
@adjoint(operator.pow)
def power(z, x1, x2):
    # Where x2 == 0 the power is constant; the exponent is nudged so that 0 ** -1 never appears.
    d[x1] = tangent.unbroadcast(d[z] * x2 * numpy.power(x1, numpy.where(x2 == 0, 1.0, x2 - 1.0)), x1)
    # d(x1 ** x2)/dx2 = z * log(x1), only defined for x1 > 0; taken as 0 elsewhere.
    d[x2] = tangent.unbroadcast(d[z] * z * numpy.where(x1 > 0, numpy.log(numpy.where(x1 > 0, x1, 1.0)), 0.0), x2)


@tangent_(numpy.power)
@tangent_(numpy.pow)
@tangent_(numpy.float_power)
@tangent_(operator.pow)
def power(z, x1, x2):
    d[z] = d[x1] * x2 * numpy.power(x1, numpy.where(x2 == 0, 1.0, x2 - 1.0))
    d[z] += d[x2] * z * numpy.where(x1 > 0, numpy.log(numpy.where(x1 > 0, x1, 1.0)), 0.0)


@adjoint(numpy.negative)
@adjoint(operator.neg)
def negative(y, x):
    d[x] = tangent.unbroadcast(-d[y], x)


@tangent_(numpy.negative)
@tangent_(operator.neg)
def negative(y, x):
    d[y] = -d[x]


@adjoint(numpy.positive)
@adjoint(operator.pos)
def positive(y, x):
    d[x] = tangent.unbroadcast(d[y], x)


@tangent_(numpy.positive)
@tangent_(operator.pos)
def positive(y, x):
    d[y] = +d[x]


@adjoint(numpy.matmul)
@adjoint(operator.matmul)
def matmul(z, x1, x2):
    # g @ x2.T and x1.T @ g; the runtime also handles 1-D operands and stacks of matrices.
    d[x1] = tangent.matmul_adjoint_a(d[z], x1, x2)
    d[x2] = tangent.matmul_adjoint_b(d[z], x1, x2)


@tangent_(numpy.matmul)
@tangent_(operator.matmul)
def matmul(z, x1, x2):
    d[z] = numpy.matmul(d[x1], x2)
    d[z] += numpy.matmul(x1, d[x2])


nondifferentiable(
    operator.lt, operator.le, operator.eq, operator.ne, operator.gt, operator.ge,
    operator.not_, operator.truth, operator.is_, operator.is_not, operator.contains,
    operator.and_, operator.or_, operator.xor, operator.invert, operator.index,
)
