"""Adjoints of functions of the `math` module.

Arguments and results are Python floats, so the templates use `math` for the derivatives and
plain conditional expressions where a derivative is piecewise. `math.dist`, `math.fsum`,
`math.prod` and `math.sumprod` take sequences (lists, tuples or 1-D arrays) of floats: their
adjoints have the sequence's structure (`tangent.grad_like`), their tangents read the
sequence's tangent as an array. `math.modf` and `math.frexp` return pairs: their adjoint
reads the pair's adjoint, their tangent is a pair (the integral part's is 0.0). The gamma function's derivatives use the runtime's
`tangent.digamma` (plain NumPy, differentiable again through `tangent.polygamma`).
`math.hypot` takes one to four coordinates (a template has a fixed number of parameters).
Functions newer than the oldest supported Python (`math.sumprod` 3.12, `math.fma` 3.13) have
recipes all the same: the engine only matches names.

Each adjoint is followed by its forward-mode template, `@tangent_(name)`, with the same
parameters: `d[x]` reads the tangent of input `x`, `d[y] = e` / `d[y] += e` builds the result's
tangent with one statement per differentiable input (the engine drops the statements that read
the tangent of an inactive input), and each statement alone gives `d[y]` the shape of `y`.
"""
import math

import numpy
import tangent


@adjoint(math.exp)
def exp(y, x):
    d[x] = d[y] * y


@tangent_(math.exp)
def exp(y, x):
    d[y] = d[x] * y


@adjoint(math.expm1)
def expm1(y, x):
    d[x] = d[y] * (y + 1.0)


@tangent_(math.expm1)
def expm1(y, x):
    d[y] = d[x] * (y + 1.0)


@adjoint(math.exp2)
def exp2(y, x):
    d[x] = d[y] * y * math.log(2.0)


@tangent_(math.exp2)
def exp2(y, x):
    d[y] = d[x] * y * math.log(2.0)


@adjoint(math.log)
def log(y, x, base=math.e):
    d[x] = d[y] / (x * math.log(base))
    # log_b(x) = ln(x) / ln(b), so d/db = -log_b(x) / (b ln(b)).
    d[base] = -d[y] * y / (base * math.log(base))


@tangent_(math.log)
def log(y, x, base=math.e):
    d[y] = d[x] / (x * math.log(base))
    d[y] += -d[base] * y / (base * math.log(base))


@adjoint(math.log2)
def log2(y, x):
    d[x] = d[y] / (x * math.log(2.0))


@tangent_(math.log2)
def log2(y, x):
    d[y] = d[x] / (x * math.log(2.0))


@adjoint(math.log10)
def log10(y, x):
    d[x] = d[y] / (x * math.log(10.0))


@tangent_(math.log10)
def log10(y, x):
    d[y] = d[x] / (x * math.log(10.0))


@adjoint(math.log1p)
def log1p(y, x):
    d[x] = d[y] / (1.0 + x)


@tangent_(math.log1p)
def log1p(y, x):
    d[y] = d[x] / (1.0 + x)


@adjoint(math.sqrt)
def sqrt(y, x):
    d[x] = d[y] / (2.0 * y)


@tangent_(math.sqrt)
def sqrt(y, x):
    d[y] = d[x] / (2.0 * y)


@adjoint(math.cbrt)
def cbrt(y, x):
    d[x] = d[y] / (3.0 * y * y)


@tangent_(math.cbrt)
def cbrt(y, x):
    d[y] = d[x] / (3.0 * y * y)


@adjoint(math.pow)
def pow(z, x, y):
    # Where y == 0 the power is constant (and math.pow(0.0, -1.0) would raise).
    d[x] = 0.0 if y == 0 else d[z] * y * math.pow(x, y - 1.0)
    # d(x ** y)/dy = z * log(x), only defined for x > 0; taken as 0 elsewhere.
    d[y] = d[z] * z * math.log(x) if x > 0 else 0.0


@tangent_(math.pow)
def pow(z, x, y):
    d[z] = 0.0 if y == 0 else d[x] * y * math.pow(x, y - 1.0)
    d[z] += d[y] * z * math.log(x) if x > 0 else 0.0


@adjoint(math.sin)
def sin(y, x):
    d[x] = d[y] * math.cos(x)


@tangent_(math.sin)
def sin(y, x):
    d[y] = d[x] * math.cos(x)


@adjoint(math.cos)
def cos(y, x):
    d[x] = -d[y] * math.sin(x)


@tangent_(math.cos)
def cos(y, x):
    d[y] = -d[x] * math.sin(x)


@adjoint(math.tan)
def tan(y, x):
    d[x] = d[y] * (1.0 + y * y)


@tangent_(math.tan)
def tan(y, x):
    d[y] = d[x] * (1.0 + y * y)


@adjoint(math.asin)
def asin(y, x):
    d[x] = d[y] / math.sqrt(1.0 - x * x)


@tangent_(math.asin)
def asin(y, x):
    d[y] = d[x] / math.sqrt(1.0 - x * x)


@adjoint(math.acos)
def acos(y, x):
    d[x] = -d[y] / math.sqrt(1.0 - x * x)


@tangent_(math.acos)
def acos(y, x):
    d[y] = -d[x] / math.sqrt(1.0 - x * x)


@adjoint(math.atan)
def atan(y, x):
    d[x] = d[y] / (1.0 + x * x)


@tangent_(math.atan)
def atan(y, x):
    d[y] = d[x] / (1.0 + x * x)


@adjoint(math.atan2)
def atan2(z, y, x):
    r2 = x * x + y * y
    d[y] = d[z] * x / r2
    d[x] = -d[z] * y / r2


@tangent_(math.atan2)
def atan2(z, y, x):
    r2 = x * x + y * y
    d[z] = d[y] * x / r2
    d[z] += -d[x] * y / r2


@adjoint(math.sinh)
def sinh(y, x):
    d[x] = d[y] * math.cosh(x)


@tangent_(math.sinh)
def sinh(y, x):
    d[y] = d[x] * math.cosh(x)


@adjoint(math.cosh)
def cosh(y, x):
    d[x] = d[y] * math.sinh(x)


@tangent_(math.cosh)
def cosh(y, x):
    d[y] = d[x] * math.sinh(x)


@adjoint(math.tanh)
def tanh(y, x):
    d[x] = d[y] * (1.0 - y * y)


@tangent_(math.tanh)
def tanh(y, x):
    d[y] = d[x] * (1.0 - y * y)


@adjoint(math.asinh)
def asinh(y, x):
    d[x] = d[y] / math.sqrt(x * x + 1.0)


@tangent_(math.asinh)
def asinh(y, x):
    d[y] = d[x] / math.sqrt(x * x + 1.0)


@adjoint(math.acosh)
def acosh(y, x):
    d[x] = d[y] / math.sqrt(x * x - 1.0)


@tangent_(math.acosh)
def acosh(y, x):
    d[y] = d[x] / math.sqrt(x * x - 1.0)


@adjoint(math.atanh)
def atanh(y, x):
    d[x] = d[y] / (1.0 - x * x)


@tangent_(math.atanh)
def atanh(y, x):
    d[y] = d[x] / (1.0 - x * x)


@adjoint(math.fabs)
def fabs(y, x):
    d[x] = d[y] if x > 0 else (-d[y] if x < 0 else 0.0)


@tangent_(math.fabs)
def fabs(y, x):
    d[y] = d[x] if x > 0 else (-d[x] if x < 0 else 0.0)


@adjoint(math.hypot)
def hypot(r, x, y=0.0, z=0.0, w=0.0):
    # hypot(*coordinates) with one to four coordinates (omitted ones are 0.0 and inactive).
    # At the origin (r == 0) the derivative is taken as 0.
    s = 0.0 if r == 0 else d[r] / r
    d[x] = s * x
    d[y] = s * y
    d[z] = s * z
    d[w] = s * w


@tangent_(math.hypot)
def hypot(r, x, y=0.0, z=0.0, w=0.0):
    s = 0.0 if r == 0 else 1.0 / r
    d[r] = d[x] * x * s
    d[r] += d[y] * y * s
    d[r] += d[z] * z * s
    d[r] += d[w] * w * s


@adjoint(math.dist)
def dist(y, p, q):
    # y = |p - q| for sequences of coordinates; at p == q the derivative is taken as 0.
    u = numpy.subtract(p, q) * (0.0 if y == 0 else 1.0 / y)
    d[p] = tangent.grad_like(d[y] * u, p)
    d[q] = tangent.grad_like(-d[y] * u, q)


@tangent_(math.dist)
def dist(y, p, q):
    u = numpy.subtract(p, q) * (0.0 if y == 0 else 1.0 / y)
    d[y] = numpy.dot(u, numpy.asarray(d[p]))
    d[y] += -numpy.dot(u, numpy.asarray(d[q]))


@adjoint(math.fsum)
def fsum(y, seq):
    # unreduce spreads the adjoint over the items: a list for a list, an array for an array.
    d[seq] = tangent.unreduce(d[y], seq, 0, False)


@tangent_(math.fsum)
def fsum(y, seq):
    d[y] = math.fsum(d[seq])


@adjoint(math.prod)
def prod(y, iterable, start=1):
    # start * x_0 * x_1 * ...: each factor's derivative is start times the product of the
    # others, the product of those before it times those after it (no division, exact at zeros).
    a = numpy.asarray(iterable, dtype=numpy.float64)
    rows = tangent.to_rows(a, 0)
    ones = numpy.ones((numpy.shape(rows)[0], 1))
    before = numpy.cumprod(numpy.concatenate([ones, rows[:, :-1]], axis=1), axis=1)
    after = numpy.flip(numpy.cumprod(numpy.flip(numpy.concatenate([rows[:, 1:], ones], axis=1), 1), axis=1), 1)
    others = tangent.from_rows(before * after, a, 0)
    d[iterable] = tangent.grad_like(d[y] * start * others, iterable)
    d[start] = tangent.unbroadcast(d[y] * numpy.prod(a, axis=0), start)


@tangent_(math.prod)
def prod(y, iterable, start=1):
    # start times the sum of each factor's tangent times the product of the others (those
    # before it times those after it, as in the adjoint).
    a = numpy.asarray(iterable, dtype=numpy.float64)
    rows = tangent.to_rows(a, 0)
    ones = numpy.ones((numpy.shape(rows)[0], 1))
    before = numpy.cumprod(numpy.concatenate([ones, rows[:, :-1]], axis=1), axis=1)
    after = numpy.flip(numpy.cumprod(numpy.flip(numpy.concatenate([rows[:, 1:], ones], axis=1), 1), axis=1), 1)
    others = tangent.from_rows(before * after, a, 0)
    d[y] = numpy.sum(numpy.asarray(d[iterable]) * others, axis=0) * start
    d[y] += d[start] * numpy.prod(a, axis=0)


@adjoint(math.sumprod)
def sumprod(y, p, q):
    # Python 3.12+: sum(p_i * q_i).
    d[p] = tangent.grad_like(d[y] * numpy.asarray(q, dtype=numpy.float64), p)
    d[q] = tangent.grad_like(d[y] * numpy.asarray(p, dtype=numpy.float64), q)


@tangent_(math.sumprod)
def sumprod(y, p, q):
    d[y] = numpy.dot(numpy.asarray(d[p]), numpy.asarray(q, dtype=numpy.float64))
    d[y] += numpy.dot(numpy.asarray(p, dtype=numpy.float64), numpy.asarray(d[q]))


@adjoint(math.fma)
def fma(r, x, y, z):
    # Python 3.13+: x * y + z with one rounding.
    d[x] = d[r] * y
    d[y] = d[r] * x
    d[z] = d[r] * 1.0


@tangent_(math.fma)
def fma(r, x, y, z):
    d[r] = d[x] * y
    d[r] += d[y] * x
    d[r] += d[z] * 1.0


@adjoint(math.copysign)
def copysign(z, x, y):
    # |x| with the sign of y: slope +-1 in x (taken as 0 at x == 0), piecewise constant in y.
    d[x] = 0.0 if x == 0 else d[z] * math.copysign(1.0, x) * math.copysign(1.0, y)


@tangent_(math.copysign)
def copysign(z, x, y):
    d[z] = 0.0 if x == 0 else d[x] * math.copysign(1.0, x) * math.copysign(1.0, y)


@adjoint(math.ldexp)
def ldexp(y, x, i):
    # x * 2 ** i with an integer i.
    d[x] = d[y] * math.ldexp(1.0, i)


@tangent_(math.ldexp)
def ldexp(y, x, i):
    d[y] = d[x] * math.ldexp(1.0, i)


@adjoint(math.remainder)
def remainder(z, x, y):
    # remainder(x, y) == x - n * y with n the integer nearest to x / y; (x - z) / y is n up to
    # rounding, and floor(. + 0.5) recovers it exactly.
    d[x] = d[z] * 1.0
    d[y] = -d[z] * math.floor((x - z) / y + 0.5)


@tangent_(math.remainder)
def remainder(z, x, y):
    d[z] = d[x] * 1.0
    d[z] += -d[y] * math.floor((x - z) / y + 0.5)


@adjoint(math.nextafter)
def nextafter(z, x, y):
    # The float next to x towards y: x moved by one unit in the last place, slope 1 in x.
    d[x] = d[z] * 1.0


@tangent_(math.nextafter)
def nextafter(z, x, y):
    d[z] = d[x] * 1.0


@adjoint(math.modf)
def modf(y, x):
    # y = (fractional part, integral part): slope 1 and 0. The adjoint of the pair is a pair
    # (grad_like turns a scalar seed into one).
    d[x] = tangent.grad_like(d[y], y)[0]


@tangent_(math.modf)
def modf(y, x):
    d[y] = (d[x] * 1.0, 0.0)


@adjoint(math.frexp)
def frexp(y, x):
    # y = (m, e) with x == m * 2 ** e and an integer e: dm/dx = 2 ** -e, e is piecewise constant.
    d[x] = tangent.grad_like(d[y], y)[0] * math.ldexp(1.0, -y[1])


@tangent_(math.frexp)
def frexp(y, x):
    d[y] = (d[x] * math.ldexp(1.0, -y[1]), 0.0)


@adjoint(math.fmod)
def fmod(z, x, y):
    # fmod(x, y) == x - trunc(x / y) * y
    d[x] = d[z]
    d[y] = -d[z] * math.trunc(x / y)


@tangent_(math.fmod)
def fmod(z, x, y):
    d[z] = d[x] * 1.0
    d[z] += -d[y] * math.trunc(x / y)


@adjoint(math.erf)
def erf(y, x):
    d[x] = d[y] * 2.0 / math.sqrt(math.pi) * math.exp(-x * x)


@tangent_(math.erf)
def erf(y, x):
    d[y] = d[x] * 2.0 / math.sqrt(math.pi) * math.exp(-x * x)


@adjoint(math.erfc)
def erfc(y, x):
    d[x] = -d[y] * 2.0 / math.sqrt(math.pi) * math.exp(-x * x)


@tangent_(math.erfc)
def erfc(y, x):
    d[y] = -d[x] * 2.0 / math.sqrt(math.pi) * math.exp(-x * x)


@adjoint(math.gamma)
def gamma(y, x):
    # Gamma'(x) = Gamma(x) psi(x).
    d[x] = d[y] * y * tangent.digamma(x)


@tangent_(math.gamma)
def gamma(y, x):
    d[y] = d[x] * y * tangent.digamma(x)


@adjoint(math.lgamma)
def lgamma(y, x):
    # lgamma(x) = log|Gamma(x)|, whose derivative is psi(x) for negative x too.
    d[x] = d[y] * tangent.digamma(x)


@tangent_(math.lgamma)
def lgamma(y, x):
    d[y] = d[x] * tangent.digamma(x)


@adjoint(math.degrees)
def degrees(y, x):
    d[x] = d[y] * (180.0 / math.pi)


@tangent_(math.degrees)
def degrees(y, x):
    d[y] = d[x] * (180.0 / math.pi)


@adjoint(math.radians)
def radians(y, x):
    d[x] = d[y] * (math.pi / 180.0)


@tangent_(math.radians)
def radians(y, x):
    d[y] = d[x] * (math.pi / 180.0)


nondifferentiable(
    math.floor, math.ceil, math.trunc, math.isnan, math.isinf, math.isfinite, math.isclose,
    math.factorial, math.gcd, math.lcm, math.comb, math.perm, math.isqrt, math.ulp,
)
