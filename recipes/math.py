"""Adjoints of functions of the `math` module.

Arguments and results are Python floats, so the templates use `math` for the derivatives and
plain conditional expressions where a derivative is piecewise.

Each adjoint is followed by its forward-mode template, `@tangent_(name)`, with the same
parameters: `d[x]` reads the tangent of input `x`, `d[y] = e` / `d[y] += e` builds the result's
tangent with one statement per differentiable input (the engine drops the statements that read
the tangent of an inactive input), and each statement alone gives `d[y]` the shape of `y`.
"""
import math
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
def hypot(z, x, y):
    # Two-argument form only.
    d[x] = d[z] * x / z
    d[y] = d[z] * y / z


@tangent_(math.hypot)
def hypot(z, x, y):
    d[z] = d[x] * x / z
    d[z] += d[y] * y / z


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
    math.factorial, math.gcd, math.comb, math.perm,
)
