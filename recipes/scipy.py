"""Adjoints of functions of `scipy.special`.

The recipes are registered under the canonical dotted names (`scipy.special.expit`), which is
what `from scipy.special import expit`, `import scipy.special` and `from scipy import special`
all resolve to. The engine only matches names, so this file is embedded whether or not SciPy
is installed.

Generated code imports `numpy`, `tangent` and (when used) `math`, never `scipy`: a template
here must not call SciPy. Derivatives SciPy would give are computed with NumPy, or with the
runtime's special functions (`tangent.digamma`, `tangent.polygamma`). Many are written with
the primal result `y` (expit's y (1 - y), erfinv's sqrt(pi)/2 exp(y^2)), which is exact and
costs nothing.

The elementwise functions are ufuncs: arguments broadcast, and the binary ones reduce their
contributions with `tangent.unbroadcast`. Arguments a recipe does not list are not supported:
the engine reports a call that passes one (`logsumexp(..., return_sign=True)`, `out=`).

Each adjoint is followed by its forward-mode template, `@tangent_(name)`, with the same
parameters: `d[x]` reads the tangent of input `x`, `d[y] = e` / `d[y] += e` builds the result's
tangent with one statement per differentiable input (the engine drops the statements that read
the tangent of an inactive input), and each statement alone gives `d[y]` the shape of `y`.
"""
import numpy
import scipy.special
import tangent


# ---------------------------------------------------------------- logistic and log-sum-exp


@adjoint(scipy.special.expit)
def expit(y, x):
    d[x] = d[y] * y * (1.0 - y)


@tangent_(scipy.special.expit)
def expit(y, x):
    d[y] = d[x] * y * (1.0 - y)


@adjoint(scipy.special.log_expit)
def log_expit(y, x):
    # d/dx log(expit(x)) = 1 - expit(x) = -expm1(y).
    d[x] = -d[y] * numpy.expm1(y)


@tangent_(scipy.special.log_expit)
def log_expit(y, x):
    d[y] = -d[x] * numpy.expm1(y)


@adjoint(scipy.special.logit)
def logit(y, x):
    d[x] = d[y] / (x * (1.0 - x))


@tangent_(scipy.special.logit)
def logit(y, x):
    d[y] = d[x] / (x * (1.0 - x))


@adjoint(scipy.special.logsumexp)
def logsumexp(y, a, axis=None, b=None, keepdims=False):
    # y = log(sum(b * exp(a))) over axis (b = 1 when omitted); b broadcasts against a. The
    # adjoint of a is the incoming one spread back over the reduced axes times the weights
    # b * exp(a - y) (the softmax of a when b is None); that of b is the same without b.
    full = a if b is None else a + numpy.zeros_like(b)
    e = numpy.exp(full - tangent.unreduce(y, full, axis, keepdims))
    g = tangent.unreduce(d[y], full, axis, keepdims)
    d[a] = tangent.unbroadcast(g * (e if b is None else b * e), a)
    d[b] = tangent.unbroadcast(g * e, b)


@tangent_(scipy.special.logsumexp)
def logsumexp(y, a, axis=None, b=None, keepdims=False):
    full = a if b is None else a + numpy.zeros_like(b)
    e = numpy.exp(full - tangent.unreduce(y, full, axis, keepdims))
    d[y] = numpy.sum(d[a] * (e if b is None else b * e), axis=axis, keepdims=keepdims)
    d[y] += numpy.sum(d[b] * e, axis=axis, keepdims=keepdims)


@adjoint(scipy.special.softmax)
def softmax(y, x, axis=None):
    # dx = y * (g - sum(g * y)) over axis.
    gy = tangent.grad_like(d[y], y) * y
    d[x] = tangent.unbroadcast(gy - y * numpy.sum(gy, axis=axis, keepdims=True), x)


@tangent_(scipy.special.softmax)
def softmax(y, x, axis=None):
    d[y] = y * (d[x] - numpy.sum(y * d[x], axis=axis, keepdims=True))


@adjoint(scipy.special.log_softmax)
def log_softmax(y, x, axis=None):
    # dx = g - softmax(x) * sum(g) over axis, with softmax(x) = exp(y).
    g = tangent.grad_like(d[y], y)
    d[x] = tangent.unbroadcast(g - numpy.exp(y) * numpy.sum(g, axis=axis, keepdims=True), x)


@tangent_(scipy.special.log_softmax)
def log_softmax(y, x, axis=None):
    d[y] = d[x] - numpy.sum(numpy.exp(y) * d[x], axis=axis, keepdims=True)


# ---------------------------------------------------------------- error function and normal


@adjoint(scipy.special.erf)
def erf(y, x):
    d[x] = d[y] * (2.0 / numpy.sqrt(numpy.pi)) * numpy.exp(-x * x)


@tangent_(scipy.special.erf)
def erf(y, x):
    d[y] = d[x] * (2.0 / numpy.sqrt(numpy.pi)) * numpy.exp(-x * x)


@adjoint(scipy.special.erfc)
def erfc(y, x):
    d[x] = -d[y] * (2.0 / numpy.sqrt(numpy.pi)) * numpy.exp(-x * x)


@tangent_(scipy.special.erfc)
def erfc(y, x):
    d[y] = -d[x] * (2.0 / numpy.sqrt(numpy.pi)) * numpy.exp(-x * x)


@adjoint(scipy.special.erfcx)
def erfcx(y, x):
    # erfcx(x) = exp(x^2) erfc(x): its derivative is 2 x erfcx(x) - 2 / sqrt(pi).
    d[x] = d[y] * (2.0 * x * y - 2.0 / numpy.sqrt(numpy.pi))


@tangent_(scipy.special.erfcx)
def erfcx(y, x):
    d[y] = d[x] * (2.0 * x * y - 2.0 / numpy.sqrt(numpy.pi))


@adjoint(scipy.special.erfinv)
def erfinv(y, x):
    # The inverse's derivative, 1 / erf'(y).
    d[x] = d[y] * (numpy.sqrt(numpy.pi) / 2.0) * numpy.exp(y * y)


@tangent_(scipy.special.erfinv)
def erfinv(y, x):
    d[y] = d[x] * (numpy.sqrt(numpy.pi) / 2.0) * numpy.exp(y * y)


@adjoint(scipy.special.erfcinv)
def erfcinv(y, x):
    d[x] = -d[y] * (numpy.sqrt(numpy.pi) / 2.0) * numpy.exp(y * y)


@tangent_(scipy.special.erfcinv)
def erfcinv(y, x):
    d[y] = -d[x] * (numpy.sqrt(numpy.pi) / 2.0) * numpy.exp(y * y)


@adjoint(scipy.special.ndtr)
def ndtr(y, x):
    # The standard normal CDF: its derivative is the normal density.
    d[x] = d[y] * numpy.exp(-0.5 * x * x) / numpy.sqrt(2.0 * numpy.pi)


@tangent_(scipy.special.ndtr)
def ndtr(y, x):
    d[y] = d[x] * numpy.exp(-0.5 * x * x) / numpy.sqrt(2.0 * numpy.pi)


@adjoint(scipy.special.log_ndtr)
def log_ndtr(y, x):
    # density / CDF = exp(-x^2 / 2 - y) / sqrt(2 pi), accurate far in the left tail too.
    d[x] = d[y] * numpy.exp(-0.5 * x * x - y) / numpy.sqrt(2.0 * numpy.pi)


@tangent_(scipy.special.log_ndtr)
def log_ndtr(y, x):
    d[y] = d[x] * numpy.exp(-0.5 * x * x - y) / numpy.sqrt(2.0 * numpy.pi)


@adjoint(scipy.special.ndtri)
def ndtri(y, x):
    # The inverse of ndtr: 1 / density(y).
    d[x] = d[y] * numpy.sqrt(2.0 * numpy.pi) * numpy.exp(0.5 * y * y)


@tangent_(scipy.special.ndtri)
def ndtri(y, x):
    d[y] = d[x] * numpy.sqrt(2.0 * numpy.pi) * numpy.exp(0.5 * y * y)


# ---------------------------------------------------------------- gamma function family


@adjoint(scipy.special.gamma)
def gamma(y, x):
    d[x] = d[y] * y * tangent.digamma(x)


@tangent_(scipy.special.gamma)
def gamma(y, x):
    d[y] = d[x] * y * tangent.digamma(x)


@adjoint(scipy.special.gammaln)
def gammaln(y, x):
    # log|Gamma(x)|: the derivative is psi(x), for negative x too.
    d[x] = d[y] * tangent.digamma(x)


@tangent_(scipy.special.gammaln)
def gammaln(y, x):
    d[y] = d[x] * tangent.digamma(x)


@adjoint(scipy.special.digamma)
@adjoint(scipy.special.psi)
def digamma(y, x):
    d[x] = d[y] * tangent.polygamma(1, x)


@tangent_(scipy.special.digamma)
@tangent_(scipy.special.psi)
def digamma(y, x):
    d[y] = d[x] * tangent.polygamma(1, x)


@adjoint(scipy.special.polygamma)
def polygamma(y, n, x):
    # The order n is an integer (array): only x has a derivative.
    d[x] = tangent.unbroadcast(d[y] * tangent.polygamma(n + 1, x), x)


@tangent_(scipy.special.polygamma)
def polygamma(y, n, x):
    d[y] = d[x] * tangent.polygamma(n + 1, x)


# ---------------------------------------------------------------- x log y and entropy


@adjoint(scipy.special.xlogy)
def xlogy(z, x, y):
    # x * log(y), defined as 0 where x == 0 (whatever y): there the derivative in y is 0. At
    # y == 0 the value is finite only for x == 0, and the derivative in x is taken as 0.
    log_y = numpy.log(numpy.where(y == 0, 1.0, y))
    d[x] = tangent.unbroadcast(d[z] * log_y, x)
    d[y] = tangent.unbroadcast(d[z] * numpy.where(x == 0, 0.0, x / numpy.where(x == 0, 1.0, y)), y)


@tangent_(scipy.special.xlogy)
def xlogy(z, x, y):
    d[z] = d[x] * numpy.log(numpy.where(y == 0, 1.0, y))
    d[z] += d[y] * numpy.where(x == 0, 0.0, x / numpy.where(x == 0, 1.0, y))


@adjoint(scipy.special.xlog1py)
def xlog1py(z, x, y):
    # x * log1p(y), 0 where x == 0; as xlogy with 1 + y for y.
    log1p_y = numpy.log1p(numpy.where(y == -1, 0.0, y))
    d[x] = tangent.unbroadcast(d[z] * log1p_y, x)
    d[y] = tangent.unbroadcast(d[z] * numpy.where(x == 0, 0.0, x / numpy.where(x == 0, 1.0, 1.0 + y)), y)


@tangent_(scipy.special.xlog1py)
def xlog1py(z, x, y):
    d[z] = d[x] * numpy.log1p(numpy.where(y == -1, 0.0, y))
    d[z] += d[y] * numpy.where(x == 0, 0.0, x / numpy.where(x == 0, 1.0, 1.0 + y))


@adjoint(scipy.special.entr)
def entr(y, x):
    # -x log(x) for x > 0 (0 at 0, -inf below): the derivative -(log(x) + 1), taken as 0 where
    # x <= 0.
    d[x] = d[y] * numpy.where(x > 0, -numpy.log(numpy.where(x > 0, x, 1.0)) - 1.0, 0.0)


@tangent_(scipy.special.entr)
def entr(y, x):
    d[y] = d[x] * numpy.where(x > 0, -numpy.log(numpy.where(x > 0, x, 1.0)) - 1.0, 0.0)
