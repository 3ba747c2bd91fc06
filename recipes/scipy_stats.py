"""Derivatives of `scipy.stats` distributions: `norm`, `t`, `gamma`, `beta`, `chi2`, `poisson`,
`multivariate_normal` and `dirichlet`.

The recipes are registered under canonical dotted names (`scipy.stats.norm.logpdf`), which is
what every spelling resolves to: `from scipy.stats import norm; norm.logpdf(...)`,
`import scipy.stats as st; st.norm.logpdf(...)`, `from scipy import stats;
stats.norm.logpdf(...)` and `import scipy.stats; scipy.stats.norm.logpdf(...)`. The call in
generated code stays the user's SciPy call; the templates below never call SciPy (generated
code imports `numpy`, `tangent` and `math` only): they use NumPy and the runtime's
`tangent.digamma`. Most are written with the primal result `y` (pdf = y * d log pdf), which is
exact and makes their derivatives (second order) follow from the same recipes.

Parameters are SciPy's, with its names and defaults, positional or by keyword:
`norm.logpdf(x, loc=0, scale=1)`, `t.logpdf(x, df, loc=0, scale=1)`, `gamma.logpdf(x, a,
loc=0, scale=1)`, `beta.logpdf(x, a, b, loc=0, scale=1)`, `chi2.logpdf(x, df, loc=0,
scale=1)`, `poisson.logpmf(k, mu, loc=0)`, `multivariate_normal.logpdf(x, mean=None, cov=1,
allow_singular=False)`, `dirichlet.logpdf(x, alpha)`. The univariate ones broadcast like ufuncs:
each contribution is reduced to its argument's shape with `tangent.unbroadcast`.

Location-scale families: with z = (x - loc) / scale and s = d log f(z) / dz for the standard
density f, log pdf = log f(z) - log(scale) has derivatives s / scale in x, -s / scale in loc
and -(s z + 1) / scale in scale; a cdf F(z) has f(z) / scale, -f(z) / scale and
-f(z) z / scale.

What is not differentiated, and why:
- cdf, logcdf, sf and logsf of `t`, `gamma`, `beta` and `chi2` with respect to their shape
  parameters (`df`, `a`, `b`): the derivative of the regularized incomplete beta and gamma
  functions in their parameters has no closed form. Their contribution raises an
  AssertionError naming the function and the parameter when (and only when) that parameter is
  differentiated; x, loc and scale work.
- `poisson` in `k` and `loc`: integers (the pmf and cdf are piecewise constant in them); only
  `mu` has a derivative.
- `multivariate_normal.cdf`/`logcdf` have no recipe (the engine reports them). For
  `multivariate_normal`, SciPy reads only the lower triangle of a 2-D `cov` (it factors the
  symmetric matrix that triangle spells), so the adjoint of `cov` lives on that triangle (an
  entry below the diagonal stands for itself and its mirror image), as for
  `numpy.linalg.cholesky`; a 1-D `cov` is a diagonal and a scalar one a multiple of the
  identity. `allow_singular=True` is accepted, but the derivative assumes a nonsingular `cov`.
- `dirichlet` takes the components along the first axis of x, K of them or K - 1 (the last is
  then 1 - sum(x)), as SciPy does.

The densities that the derivatives of cdfs need carry log Gamma, which NumPy lacks: it is
written out below as the Lanczos approximation (g = 7, 9 terms) of log Gamma(v + 1), minus
log(v), about 1e-15 relative for v > 0.
"""
import numpy
import scipy.stats
import tangent


# ---------------------------------------------------------------- norm


@adjoint(scipy.stats.norm.logpdf)
def norm_logpdf(y, x, loc=0, scale=1):
    z = (x - loc) / scale
    d[x] = tangent.unbroadcast(-d[y] * z / scale, x)
    d[loc] = tangent.unbroadcast(d[y] * z / scale, loc)
    d[scale] = tangent.unbroadcast(d[y] * (z * z - 1.0) / scale, scale)


@tangent_(scipy.stats.norm.logpdf)
def norm_logpdf(y, x, loc=0, scale=1):
    z = (x - loc) / scale
    d[y] = -d[x] * z / scale
    d[y] += d[loc] * z / scale
    d[y] += d[scale] * (z * z - 1.0) / scale


@adjoint(scipy.stats.norm.pdf)
def norm_pdf(y, x, loc=0, scale=1):
    z = (x - loc) / scale
    d[x] = tangent.unbroadcast(-d[y] * y * z / scale, x)
    d[loc] = tangent.unbroadcast(d[y] * y * z / scale, loc)
    d[scale] = tangent.unbroadcast(d[y] * y * (z * z - 1.0) / scale, scale)


@tangent_(scipy.stats.norm.pdf)
def norm_pdf(y, x, loc=0, scale=1):
    z = (x - loc) / scale
    d[y] = -d[x] * y * z / scale
    d[y] += d[loc] * y * z / scale
    d[y] += d[scale] * y * (z * z - 1.0) / scale


@adjoint(scipy.stats.norm.cdf)
def norm_cdf(y, x, loc=0, scale=1):
    # p: the density at x.
    z = (x - loc) / scale
    p = numpy.exp(-0.5 * z * z) / (2.5066282746310002 * scale)
    d[x] = tangent.unbroadcast(d[y] * p, x)
    d[loc] = tangent.unbroadcast(-d[y] * p, loc)
    d[scale] = tangent.unbroadcast(-d[y] * p * z, scale)


@tangent_(scipy.stats.norm.cdf)
def norm_cdf(y, x, loc=0, scale=1):
    z = (x - loc) / scale
    p = numpy.exp(-0.5 * z * z) / (2.5066282746310002 * scale)
    d[y] = d[x] * p
    d[y] += -d[loc] * p
    d[y] += -d[scale] * p * z


@adjoint(scipy.stats.norm.logcdf)
def norm_logcdf(y, x, loc=0, scale=1):
    # q: density / cdf = exp(log density - y), accurate far in the left tail too.
    z = (x - loc) / scale
    q = numpy.exp(-0.5 * z * z - y) / (2.5066282746310002 * scale)
    d[x] = tangent.unbroadcast(d[y] * q, x)
    d[loc] = tangent.unbroadcast(-d[y] * q, loc)
    d[scale] = tangent.unbroadcast(-d[y] * q * z, scale)


@tangent_(scipy.stats.norm.logcdf)
def norm_logcdf(y, x, loc=0, scale=1):
    z = (x - loc) / scale
    q = numpy.exp(-0.5 * z * z - y) / (2.5066282746310002 * scale)
    d[y] = d[x] * q
    d[y] += -d[loc] * q
    d[y] += -d[scale] * q * z


@adjoint(scipy.stats.norm.sf)
def norm_sf(y, x, loc=0, scale=1):
    z = (x - loc) / scale
    p = numpy.exp(-0.5 * z * z) / (2.5066282746310002 * scale)
    d[x] = tangent.unbroadcast(-d[y] * p, x)
    d[loc] = tangent.unbroadcast(d[y] * p, loc)
    d[scale] = tangent.unbroadcast(d[y] * p * z, scale)


@tangent_(scipy.stats.norm.sf)
def norm_sf(y, x, loc=0, scale=1):
    z = (x - loc) / scale
    p = numpy.exp(-0.5 * z * z) / (2.5066282746310002 * scale)
    d[y] = -d[x] * p
    d[y] += d[loc] * p
    d[y] += d[scale] * p * z


@adjoint(scipy.stats.norm.logsf)
def norm_logsf(y, x, loc=0, scale=1):
    z = (x - loc) / scale
    q = numpy.exp(-0.5 * z * z - y) / (2.5066282746310002 * scale)
    d[x] = tangent.unbroadcast(-d[y] * q, x)
    d[loc] = tangent.unbroadcast(d[y] * q, loc)
    d[scale] = tangent.unbroadcast(d[y] * q * z, scale)


@tangent_(scipy.stats.norm.logsf)
def norm_logsf(y, x, loc=0, scale=1):
    z = (x - loc) / scale
    q = numpy.exp(-0.5 * z * z - y) / (2.5066282746310002 * scale)
    d[y] = -d[x] * q
    d[y] += d[loc] * q
    d[y] += d[scale] * q * z


@adjoint(scipy.stats.norm.ppf)
def norm_ppf(y, q, loc=0, scale=1):
    # y = loc + scale * z with z the standard quantile: dz/dq = 1 / density(z).
    z = (y - loc) / scale
    d[q] = tangent.unbroadcast(d[y] * scale * 2.5066282746310002 * numpy.exp(0.5 * z * z), q)
    d[loc] = tangent.unbroadcast(tangent.grad_like(d[y], y), loc)
    d[scale] = tangent.unbroadcast(d[y] * z, scale)


@tangent_(scipy.stats.norm.ppf)
def norm_ppf(y, q, loc=0, scale=1):
    z = (y - loc) / scale
    d[y] = d[q] * scale * 2.5066282746310002 * numpy.exp(0.5 * z * z)
    d[y] += d[loc] + 0.0 * z
    d[y] += d[scale] * z


@adjoint(scipy.stats.norm.isf)
def norm_isf(y, q, loc=0, scale=1):
    # The quantile of 1 - q.
    z = (y - loc) / scale
    d[q] = tangent.unbroadcast(-d[y] * scale * 2.5066282746310002 * numpy.exp(0.5 * z * z), q)
    d[loc] = tangent.unbroadcast(tangent.grad_like(d[y], y), loc)
    d[scale] = tangent.unbroadcast(d[y] * z, scale)


@tangent_(scipy.stats.norm.isf)
def norm_isf(y, q, loc=0, scale=1):
    z = (y - loc) / scale
    d[y] = -d[q] * scale * 2.5066282746310002 * numpy.exp(0.5 * z * z)
    d[y] += d[loc] + 0.0 * z
    d[y] += d[scale] * z


# ---------------------------------------------------------------- t
#
# log f(z) = lgamma((df + 1) / 2) - lgamma(df / 2) - log(df pi) / 2 - (df + 1) / 2 log(1 + z^2 / df):
# s = -(df + 1) z / (df + z^2), and in df
# (psi((df + 1) / 2) - psi(df / 2) - 1 / df - log1p(z^2 / df)) / 2 + (df + 1) z^2 / (2 df (df + z^2)).


@adjoint(scipy.stats.t.logpdf)
def t_logpdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    w = df + z * z
    s = -(df + 1.0) * z / w
    d[x] = tangent.unbroadcast(d[y] * s / scale, x)
    d[df] = tangent.unbroadcast(d[y] * (0.5 * (tangent.digamma(0.5 * (df + 1.0)) - tangent.digamma(0.5 * df) - 1.0 / df - numpy.log1p(z * z / df))
        + 0.5 * (df + 1.0) * z * z / (df * w)), df)
    d[loc] = tangent.unbroadcast(-d[y] * s / scale, loc)
    d[scale] = tangent.unbroadcast(-d[y] * (s * z + 1.0) / scale, scale)


@tangent_(scipy.stats.t.logpdf)
def t_logpdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    w = df + z * z
    s = -(df + 1.0) * z / w
    d[y] = d[x] * s / scale
    d[y] += d[df] * (0.5 * (tangent.digamma(0.5 * (df + 1.0)) - tangent.digamma(0.5 * df) - 1.0 / df - numpy.log1p(z * z / df))
        + 0.5 * (df + 1.0) * z * z / (df * w))
    d[y] += -d[loc] * s / scale
    d[y] += -d[scale] * (s * z + 1.0) / scale


@adjoint(scipy.stats.t.pdf)
def t_pdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    w = df + z * z
    s = -(df + 1.0) * z / w
    g = d[y] * y
    d[x] = tangent.unbroadcast(g * s / scale, x)
    d[df] = tangent.unbroadcast(g * (0.5 * (tangent.digamma(0.5 * (df + 1.0)) - tangent.digamma(0.5 * df) - 1.0 / df - numpy.log1p(z * z / df))
        + 0.5 * (df + 1.0) * z * z / (df * w)), df)
    d[loc] = tangent.unbroadcast(-g * s / scale, loc)
    d[scale] = tangent.unbroadcast(-g * (s * z + 1.0) / scale, scale)


@tangent_(scipy.stats.t.pdf)
def t_pdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    w = df + z * z
    s = -(df + 1.0) * z / w
    d[y] = d[x] * y * s / scale
    d[y] += d[df] * y * (0.5 * (tangent.digamma(0.5 * (df + 1.0)) - tangent.digamma(0.5 * df) - 1.0 / df - numpy.log1p(z * z / df))
        + 0.5 * (df + 1.0) * z * z / (df * w))
    d[y] += -d[loc] * y * s / scale
    d[y] += -d[scale] * y * (s * z + 1.0) / scale


@adjoint(scipy.stats.t.cdf)
def t_cdf(y, x, df, loc=0, scale=1):
    # p: the density at x. The derivative in df (of the regularized incomplete beta function in
    # its parameters) has no closed form: refused.
    z = (x - loc) / scale
    h = 0.5 * df
    h1 = 0.5 * df + 0.5
    p = numpy.exp((0.9189385332046727 + (h1 + 0.5) * numpy.log(h1 + 7.5) - (h1 + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h1 + 1.0) - 1259.1392167224028 / (h1 + 2.0)
        + 771.32342877765313 / (h1 + 3.0) - 176.61502916214059 / (h1 + 4.0) + 12.507343278686905 / (h1 + 5.0)
        - 0.13857109526572012 / (h1 + 6.0) + 9.9843695780195716e-6 / (h1 + 7.0) + 1.5056327351493116e-7 / (h1 + 8.0)) / h1)) - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - 0.5 * numpy.log(3.141592653589793 * df) - h1 * numpy.log1p(z * z / df)) / scale
    d[x] = tangent.unbroadcast(d[y] * p, x)
    d[df] = numpy.testing.assert_(
        False, "scipy.stats.t.cdf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(-d[y] * p, loc)
    d[scale] = tangent.unbroadcast(-d[y] * p * z, scale)


@tangent_(scipy.stats.t.cdf)
def t_cdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    h1 = 0.5 * df + 0.5
    p = numpy.exp((0.9189385332046727 + (h1 + 0.5) * numpy.log(h1 + 7.5) - (h1 + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h1 + 1.0) - 1259.1392167224028 / (h1 + 2.0)
        + 771.32342877765313 / (h1 + 3.0) - 176.61502916214059 / (h1 + 4.0) + 12.507343278686905 / (h1 + 5.0)
        - 0.13857109526572012 / (h1 + 6.0) + 9.9843695780195716e-6 / (h1 + 7.0) + 1.5056327351493116e-7 / (h1 + 8.0)) / h1)) - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - 0.5 * numpy.log(3.141592653589793 * df) - h1 * numpy.log1p(z * z / df)) / scale
    d[y] = d[x] * p
    d[y] += d[df] * numpy.testing.assert_(
        False, "scipy.stats.t.cdf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[y] += -d[loc] * p
    d[y] += -d[scale] * p * z


@adjoint(scipy.stats.t.logcdf)
def t_logcdf(y, x, df, loc=0, scale=1):
    # q: density / cdf.
    z = (x - loc) / scale
    h = 0.5 * df
    h1 = 0.5 * df + 0.5
    q = numpy.exp((0.9189385332046727 + (h1 + 0.5) * numpy.log(h1 + 7.5) - (h1 + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h1 + 1.0) - 1259.1392167224028 / (h1 + 2.0)
        + 771.32342877765313 / (h1 + 3.0) - 176.61502916214059 / (h1 + 4.0) + 12.507343278686905 / (h1 + 5.0)
        - 0.13857109526572012 / (h1 + 6.0) + 9.9843695780195716e-6 / (h1 + 7.0) + 1.5056327351493116e-7 / (h1 + 8.0)) / h1)) - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - 0.5 * numpy.log(3.141592653589793 * df) - h1 * numpy.log1p(z * z / df) - y) / scale
    d[x] = tangent.unbroadcast(d[y] * q, x)
    d[df] = numpy.testing.assert_(
        False, "scipy.stats.t.logcdf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(-d[y] * q, loc)
    d[scale] = tangent.unbroadcast(-d[y] * q * z, scale)


@tangent_(scipy.stats.t.logcdf)
def t_logcdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    h1 = 0.5 * df + 0.5
    q = numpy.exp((0.9189385332046727 + (h1 + 0.5) * numpy.log(h1 + 7.5) - (h1 + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h1 + 1.0) - 1259.1392167224028 / (h1 + 2.0)
        + 771.32342877765313 / (h1 + 3.0) - 176.61502916214059 / (h1 + 4.0) + 12.507343278686905 / (h1 + 5.0)
        - 0.13857109526572012 / (h1 + 6.0) + 9.9843695780195716e-6 / (h1 + 7.0) + 1.5056327351493116e-7 / (h1 + 8.0)) / h1)) - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - 0.5 * numpy.log(3.141592653589793 * df) - h1 * numpy.log1p(z * z / df) - y) / scale
    d[y] = d[x] * q
    d[y] += d[df] * numpy.testing.assert_(
        False, "scipy.stats.t.logcdf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[y] += -d[loc] * q
    d[y] += -d[scale] * q * z


@adjoint(scipy.stats.t.sf)
def t_sf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    h1 = 0.5 * df + 0.5
    p = numpy.exp((0.9189385332046727 + (h1 + 0.5) * numpy.log(h1 + 7.5) - (h1 + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h1 + 1.0) - 1259.1392167224028 / (h1 + 2.0)
        + 771.32342877765313 / (h1 + 3.0) - 176.61502916214059 / (h1 + 4.0) + 12.507343278686905 / (h1 + 5.0)
        - 0.13857109526572012 / (h1 + 6.0) + 9.9843695780195716e-6 / (h1 + 7.0) + 1.5056327351493116e-7 / (h1 + 8.0)) / h1)) - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - 0.5 * numpy.log(3.141592653589793 * df) - h1 * numpy.log1p(z * z / df)) / scale
    d[x] = tangent.unbroadcast(-d[y] * p, x)
    d[df] = numpy.testing.assert_(
        False, "scipy.stats.t.sf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(d[y] * p, loc)
    d[scale] = tangent.unbroadcast(d[y] * p * z, scale)


@tangent_(scipy.stats.t.sf)
def t_sf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    h1 = 0.5 * df + 0.5
    p = numpy.exp((0.9189385332046727 + (h1 + 0.5) * numpy.log(h1 + 7.5) - (h1 + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h1 + 1.0) - 1259.1392167224028 / (h1 + 2.0)
        + 771.32342877765313 / (h1 + 3.0) - 176.61502916214059 / (h1 + 4.0) + 12.507343278686905 / (h1 + 5.0)
        - 0.13857109526572012 / (h1 + 6.0) + 9.9843695780195716e-6 / (h1 + 7.0) + 1.5056327351493116e-7 / (h1 + 8.0)) / h1)) - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - 0.5 * numpy.log(3.141592653589793 * df) - h1 * numpy.log1p(z * z / df)) / scale
    d[y] = -d[x] * p
    d[y] += d[df] * numpy.testing.assert_(
        False, "scipy.stats.t.sf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[loc] * p
    d[y] += d[scale] * p * z


@adjoint(scipy.stats.t.logsf)
def t_logsf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    h1 = 0.5 * df + 0.5
    q = numpy.exp((0.9189385332046727 + (h1 + 0.5) * numpy.log(h1 + 7.5) - (h1 + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h1 + 1.0) - 1259.1392167224028 / (h1 + 2.0)
        + 771.32342877765313 / (h1 + 3.0) - 176.61502916214059 / (h1 + 4.0) + 12.507343278686905 / (h1 + 5.0)
        - 0.13857109526572012 / (h1 + 6.0) + 9.9843695780195716e-6 / (h1 + 7.0) + 1.5056327351493116e-7 / (h1 + 8.0)) / h1)) - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - 0.5 * numpy.log(3.141592653589793 * df) - h1 * numpy.log1p(z * z / df) - y) / scale
    d[x] = tangent.unbroadcast(-d[y] * q, x)
    d[df] = numpy.testing.assert_(
        False, "scipy.stats.t.logsf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(d[y] * q, loc)
    d[scale] = tangent.unbroadcast(d[y] * q * z, scale)


@tangent_(scipy.stats.t.logsf)
def t_logsf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    h1 = 0.5 * df + 0.5
    q = numpy.exp((0.9189385332046727 + (h1 + 0.5) * numpy.log(h1 + 7.5) - (h1 + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h1 + 1.0) - 1259.1392167224028 / (h1 + 2.0)
        + 771.32342877765313 / (h1 + 3.0) - 176.61502916214059 / (h1 + 4.0) + 12.507343278686905 / (h1 + 5.0)
        - 0.13857109526572012 / (h1 + 6.0) + 9.9843695780195716e-6 / (h1 + 7.0) + 1.5056327351493116e-7 / (h1 + 8.0)) / h1)) - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - 0.5 * numpy.log(3.141592653589793 * df) - h1 * numpy.log1p(z * z / df) - y) / scale
    d[y] = -d[x] * q
    d[y] += d[df] * numpy.testing.assert_(
        False, "scipy.stats.t.logsf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[loc] * q
    d[y] += d[scale] * q * z


# ---------------------------------------------------------------- gamma
#
# log f(z) = (a - 1) log z - z - lgamma(a): s = (a - 1) / z - 1, so -(s z + 1) = z - a, and in
# a: log z - psi(a).


@adjoint(scipy.stats.gamma.logpdf)
def gamma_logpdf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    s = (a - 1.0) / z - 1.0
    d[x] = tangent.unbroadcast(d[y] * s / scale, x)
    d[a] = tangent.unbroadcast(d[y] * (numpy.log(z) - tangent.digamma(a)), a)
    d[loc] = tangent.unbroadcast(-d[y] * s / scale, loc)
    d[scale] = tangent.unbroadcast(d[y] * (z - a) / scale, scale)


@tangent_(scipy.stats.gamma.logpdf)
def gamma_logpdf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    s = (a - 1.0) / z - 1.0
    d[y] = d[x] * s / scale
    d[y] += d[a] * (numpy.log(z) - tangent.digamma(a))
    d[y] += -d[loc] * s / scale
    d[y] += d[scale] * (z - a) / scale


@adjoint(scipy.stats.gamma.pdf)
def gamma_pdf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    s = (a - 1.0) / z - 1.0
    g = d[y] * y
    d[x] = tangent.unbroadcast(g * s / scale, x)
    d[a] = tangent.unbroadcast(g * (numpy.log(z) - tangent.digamma(a)), a)
    d[loc] = tangent.unbroadcast(-g * s / scale, loc)
    d[scale] = tangent.unbroadcast(g * (z - a) / scale, scale)


@tangent_(scipy.stats.gamma.pdf)
def gamma_pdf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    s = (a - 1.0) / z - 1.0
    d[y] = d[x] * y * s / scale
    d[y] += d[a] * y * (numpy.log(z) - tangent.digamma(a))
    d[y] += -d[loc] * y * s / scale
    d[y] += d[scale] * y * (z - a) / scale


@adjoint(scipy.stats.gamma.cdf)
def gamma_cdf(y, x, a, loc=0, scale=1):
    # p: the density at x. The derivative in a (of the regularized incomplete gamma function in
    # its parameter) has no closed form: refused.
    z = (x - loc) / scale
    p = numpy.exp((a - 1.0) * numpy.log(z) - z - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a))) / scale
    d[x] = tangent.unbroadcast(d[y] * p, x)
    d[a] = numpy.testing.assert_(
        False, "scipy.stats.gamma.cdf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(-d[y] * p, loc)
    d[scale] = tangent.unbroadcast(-d[y] * p * z, scale)


@tangent_(scipy.stats.gamma.cdf)
def gamma_cdf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    p = numpy.exp((a - 1.0) * numpy.log(z) - z - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a))) / scale
    d[y] = d[x] * p
    d[y] += d[a] * numpy.testing.assert_(
        False, "scipy.stats.gamma.cdf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[y] += -d[loc] * p
    d[y] += -d[scale] * p * z


@adjoint(scipy.stats.gamma.logcdf)
def gamma_logcdf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    q = numpy.exp((a - 1.0) * numpy.log(z) - z - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - y) / scale
    d[x] = tangent.unbroadcast(d[y] * q, x)
    d[a] = numpy.testing.assert_(
        False, "scipy.stats.gamma.logcdf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(-d[y] * q, loc)
    d[scale] = tangent.unbroadcast(-d[y] * q * z, scale)


@tangent_(scipy.stats.gamma.logcdf)
def gamma_logcdf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    q = numpy.exp((a - 1.0) * numpy.log(z) - z - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - y) / scale
    d[y] = d[x] * q
    d[y] += d[a] * numpy.testing.assert_(
        False, "scipy.stats.gamma.logcdf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[y] += -d[loc] * q
    d[y] += -d[scale] * q * z


@adjoint(scipy.stats.gamma.sf)
def gamma_sf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    p = numpy.exp((a - 1.0) * numpy.log(z) - z - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a))) / scale
    d[x] = tangent.unbroadcast(-d[y] * p, x)
    d[a] = numpy.testing.assert_(
        False, "scipy.stats.gamma.sf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(d[y] * p, loc)
    d[scale] = tangent.unbroadcast(d[y] * p * z, scale)


@tangent_(scipy.stats.gamma.sf)
def gamma_sf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    p = numpy.exp((a - 1.0) * numpy.log(z) - z - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a))) / scale
    d[y] = -d[x] * p
    d[y] += d[a] * numpy.testing.assert_(
        False, "scipy.stats.gamma.sf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[loc] * p
    d[y] += d[scale] * p * z


@adjoint(scipy.stats.gamma.logsf)
def gamma_logsf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    q = numpy.exp((a - 1.0) * numpy.log(z) - z - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - y) / scale
    d[x] = tangent.unbroadcast(-d[y] * q, x)
    d[a] = numpy.testing.assert_(
        False, "scipy.stats.gamma.logsf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(d[y] * q, loc)
    d[scale] = tangent.unbroadcast(d[y] * q * z, scale)


@tangent_(scipy.stats.gamma.logsf)
def gamma_logsf(y, x, a, loc=0, scale=1):
    z = (x - loc) / scale
    q = numpy.exp((a - 1.0) * numpy.log(z) - z - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - y) / scale
    d[y] = -d[x] * q
    d[y] += d[a] * numpy.testing.assert_(
        False, "scipy.stats.gamma.logsf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[loc] * q
    d[y] += d[scale] * q * z


# ---------------------------------------------------------------- chi2
#
# The gamma distribution with a = df / 2 and scale 2: log f(z) = (df / 2 - 1) log z - z / 2 -
# (df / 2) log 2 - lgamma(df / 2): s = (df / 2 - 1) / z - 1 / 2, -(s z + 1) = z / 2 - df / 2,
# and in df: (log(z / 2) - psi(df / 2)) / 2.


@adjoint(scipy.stats.chi2.logpdf)
def chi2_logpdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    s = (0.5 * df - 1.0) / z - 0.5
    d[x] = tangent.unbroadcast(d[y] * s / scale, x)
    d[df] = tangent.unbroadcast(d[y] * 0.5 * (numpy.log(0.5 * z) - tangent.digamma(0.5 * df)), df)
    d[loc] = tangent.unbroadcast(-d[y] * s / scale, loc)
    d[scale] = tangent.unbroadcast(d[y] * 0.5 * (z - df) / scale, scale)


@tangent_(scipy.stats.chi2.logpdf)
def chi2_logpdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    s = (0.5 * df - 1.0) / z - 0.5
    d[y] = d[x] * s / scale
    d[y] += d[df] * 0.5 * (numpy.log(0.5 * z) - tangent.digamma(0.5 * df))
    d[y] += -d[loc] * s / scale
    d[y] += d[scale] * 0.5 * (z - df) / scale


@adjoint(scipy.stats.chi2.pdf)
def chi2_pdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    s = (0.5 * df - 1.0) / z - 0.5
    g = d[y] * y
    d[x] = tangent.unbroadcast(g * s / scale, x)
    d[df] = tangent.unbroadcast(g * 0.5 * (numpy.log(0.5 * z) - tangent.digamma(0.5 * df)), df)
    d[loc] = tangent.unbroadcast(-g * s / scale, loc)
    d[scale] = tangent.unbroadcast(g * 0.5 * (z - df) / scale, scale)


@tangent_(scipy.stats.chi2.pdf)
def chi2_pdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    s = (0.5 * df - 1.0) / z - 0.5
    d[y] = d[x] * y * s / scale
    d[y] += d[df] * y * 0.5 * (numpy.log(0.5 * z) - tangent.digamma(0.5 * df))
    d[y] += -d[loc] * y * s / scale
    d[y] += d[scale] * y * 0.5 * (z - df) / scale


@adjoint(scipy.stats.chi2.cdf)
def chi2_cdf(y, x, df, loc=0, scale=1):
    # p: the density at x; no closed-form derivative in df (as gamma.cdf in a): refused.
    z = (x - loc) / scale
    h = 0.5 * df
    p = numpy.exp((h - 1.0) * numpy.log(z) - 0.5 * z - 0.6931471805599453 * h - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h))) / scale
    d[x] = tangent.unbroadcast(d[y] * p, x)
    d[df] = numpy.testing.assert_(
        False, "scipy.stats.chi2.cdf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(-d[y] * p, loc)
    d[scale] = tangent.unbroadcast(-d[y] * p * z, scale)


@tangent_(scipy.stats.chi2.cdf)
def chi2_cdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    p = numpy.exp((h - 1.0) * numpy.log(z) - 0.5 * z - 0.6931471805599453 * h - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h))) / scale
    d[y] = d[x] * p
    d[y] += d[df] * numpy.testing.assert_(
        False, "scipy.stats.chi2.cdf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[y] += -d[loc] * p
    d[y] += -d[scale] * p * z


@adjoint(scipy.stats.chi2.logcdf)
def chi2_logcdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    q = numpy.exp((h - 1.0) * numpy.log(z) - 0.5 * z - 0.6931471805599453 * h - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - y) / scale
    d[x] = tangent.unbroadcast(d[y] * q, x)
    d[df] = numpy.testing.assert_(
        False, "scipy.stats.chi2.logcdf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(-d[y] * q, loc)
    d[scale] = tangent.unbroadcast(-d[y] * q * z, scale)


@tangent_(scipy.stats.chi2.logcdf)
def chi2_logcdf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    q = numpy.exp((h - 1.0) * numpy.log(z) - 0.5 * z - 0.6931471805599453 * h - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - y) / scale
    d[y] = d[x] * q
    d[y] += d[df] * numpy.testing.assert_(
        False, "scipy.stats.chi2.logcdf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[y] += -d[loc] * q
    d[y] += -d[scale] * q * z


@adjoint(scipy.stats.chi2.sf)
def chi2_sf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    p = numpy.exp((h - 1.0) * numpy.log(z) - 0.5 * z - 0.6931471805599453 * h - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h))) / scale
    d[x] = tangent.unbroadcast(-d[y] * p, x)
    d[df] = numpy.testing.assert_(
        False, "scipy.stats.chi2.sf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(d[y] * p, loc)
    d[scale] = tangent.unbroadcast(d[y] * p * z, scale)


@tangent_(scipy.stats.chi2.sf)
def chi2_sf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    p = numpy.exp((h - 1.0) * numpy.log(z) - 0.5 * z - 0.6931471805599453 * h - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h))) / scale
    d[y] = -d[x] * p
    d[y] += d[df] * numpy.testing.assert_(
        False, "scipy.stats.chi2.sf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[loc] * p
    d[y] += d[scale] * p * z


@adjoint(scipy.stats.chi2.logsf)
def chi2_logsf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    q = numpy.exp((h - 1.0) * numpy.log(z) - 0.5 * z - 0.6931471805599453 * h - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - y) / scale
    d[x] = tangent.unbroadcast(-d[y] * q, x)
    d[df] = numpy.testing.assert_(
        False, "scipy.stats.chi2.logsf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(d[y] * q, loc)
    d[scale] = tangent.unbroadcast(d[y] * q * z, scale)


@tangent_(scipy.stats.chi2.logsf)
def chi2_logsf(y, x, df, loc=0, scale=1):
    z = (x - loc) / scale
    h = 0.5 * df
    q = numpy.exp((h - 1.0) * numpy.log(z) - 0.5 * z - 0.6931471805599453 * h - (0.9189385332046727 + (h + 0.5) * numpy.log(h + 7.5) - (h + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (h + 1.0) - 1259.1392167224028 / (h + 2.0)
        + 771.32342877765313 / (h + 3.0) - 176.61502916214059 / (h + 4.0) + 12.507343278686905 / (h + 5.0)
        - 0.13857109526572012 / (h + 6.0) + 9.9843695780195716e-6 / (h + 7.0) + 1.5056327351493116e-7 / (h + 8.0)) / h)) - y) / scale
    d[y] = -d[x] * q
    d[y] += d[df] * numpy.testing.assert_(
        False, "scipy.stats.chi2.logsf has no closed-form derivative with respect to df; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[loc] * q
    d[y] += d[scale] * q * z


# ---------------------------------------------------------------- beta
#
# log f(z) = (a - 1) log z + (b - 1) log(1 - z) - lgamma(a) - lgamma(b) + lgamma(a + b):
# s = (a - 1) / z - (b - 1) / (1 - z); in a: log z - psi(a) + psi(a + b); in b:
# log(1 - z) - psi(b) + psi(a + b).


@adjoint(scipy.stats.beta.logpdf)
def beta_logpdf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    s = (a - 1.0) / z - (b - 1.0) / (1.0 - z)
    psi_ab = tangent.digamma(a + b)
    d[x] = tangent.unbroadcast(d[y] * s / scale, x)
    d[a] = tangent.unbroadcast(d[y] * (numpy.log(z) - tangent.digamma(a) + psi_ab), a)
    d[b] = tangent.unbroadcast(d[y] * (numpy.log1p(-z) - tangent.digamma(b) + psi_ab), b)
    d[loc] = tangent.unbroadcast(-d[y] * s / scale, loc)
    d[scale] = tangent.unbroadcast(-d[y] * (s * z + 1.0) / scale, scale)


@tangent_(scipy.stats.beta.logpdf)
def beta_logpdf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    s = (a - 1.0) / z - (b - 1.0) / (1.0 - z)
    psi_ab = tangent.digamma(a + b)
    d[y] = d[x] * s / scale
    d[y] += d[a] * (numpy.log(z) - tangent.digamma(a) + psi_ab)
    d[y] += d[b] * (numpy.log1p(-z) - tangent.digamma(b) + psi_ab)
    d[y] += -d[loc] * s / scale
    d[y] += -d[scale] * (s * z + 1.0) / scale


@adjoint(scipy.stats.beta.pdf)
def beta_pdf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    s = (a - 1.0) / z - (b - 1.0) / (1.0 - z)
    psi_ab = tangent.digamma(a + b)
    g = d[y] * y
    d[x] = tangent.unbroadcast(g * s / scale, x)
    d[a] = tangent.unbroadcast(g * (numpy.log(z) - tangent.digamma(a) + psi_ab), a)
    d[b] = tangent.unbroadcast(g * (numpy.log1p(-z) - tangent.digamma(b) + psi_ab), b)
    d[loc] = tangent.unbroadcast(-g * s / scale, loc)
    d[scale] = tangent.unbroadcast(-g * (s * z + 1.0) / scale, scale)


@tangent_(scipy.stats.beta.pdf)
def beta_pdf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    s = (a - 1.0) / z - (b - 1.0) / (1.0 - z)
    psi_ab = tangent.digamma(a + b)
    d[y] = d[x] * y * s / scale
    d[y] += d[a] * y * (numpy.log(z) - tangent.digamma(a) + psi_ab)
    d[y] += d[b] * y * (numpy.log1p(-z) - tangent.digamma(b) + psi_ab)
    d[y] += -d[loc] * y * s / scale
    d[y] += -d[scale] * y * (s * z + 1.0) / scale


@adjoint(scipy.stats.beta.cdf)
def beta_cdf(y, x, a, b, loc=0, scale=1):
    # p: the density at x. The derivatives in a and b (of the regularized incomplete beta
    # function in its parameters) have no closed form: refused.
    z = (x - loc) / scale
    ab = a + b
    p = numpy.exp((a - 1.0) * numpy.log(z) + (b - 1.0) * numpy.log1p(-z) - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - (0.9189385332046727 + (b + 0.5) * numpy.log(b + 7.5) - (b + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (b + 1.0) - 1259.1392167224028 / (b + 2.0)
        + 771.32342877765313 / (b + 3.0) - 176.61502916214059 / (b + 4.0) + 12.507343278686905 / (b + 5.0)
        - 0.13857109526572012 / (b + 6.0) + 9.9843695780195716e-6 / (b + 7.0) + 1.5056327351493116e-7 / (b + 8.0)) / b)) + (0.9189385332046727 + (ab + 0.5) * numpy.log(ab + 7.5) - (ab + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (ab + 1.0) - 1259.1392167224028 / (ab + 2.0)
        + 771.32342877765313 / (ab + 3.0) - 176.61502916214059 / (ab + 4.0) + 12.507343278686905 / (ab + 5.0)
        - 0.13857109526572012 / (ab + 6.0) + 9.9843695780195716e-6 / (ab + 7.0) + 1.5056327351493116e-7 / (ab + 8.0)) / ab))) / scale
    d[x] = tangent.unbroadcast(d[y] * p, x)
    d[a] = numpy.testing.assert_(
        False, "scipy.stats.beta.cdf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[b] = numpy.testing.assert_(
        False, "scipy.stats.beta.cdf has no closed-form derivative with respect to b; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(-d[y] * p, loc)
    d[scale] = tangent.unbroadcast(-d[y] * p * z, scale)


@tangent_(scipy.stats.beta.cdf)
def beta_cdf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    ab = a + b
    p = numpy.exp((a - 1.0) * numpy.log(z) + (b - 1.0) * numpy.log1p(-z) - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - (0.9189385332046727 + (b + 0.5) * numpy.log(b + 7.5) - (b + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (b + 1.0) - 1259.1392167224028 / (b + 2.0)
        + 771.32342877765313 / (b + 3.0) - 176.61502916214059 / (b + 4.0) + 12.507343278686905 / (b + 5.0)
        - 0.13857109526572012 / (b + 6.0) + 9.9843695780195716e-6 / (b + 7.0) + 1.5056327351493116e-7 / (b + 8.0)) / b)) + (0.9189385332046727 + (ab + 0.5) * numpy.log(ab + 7.5) - (ab + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (ab + 1.0) - 1259.1392167224028 / (ab + 2.0)
        + 771.32342877765313 / (ab + 3.0) - 176.61502916214059 / (ab + 4.0) + 12.507343278686905 / (ab + 5.0)
        - 0.13857109526572012 / (ab + 6.0) + 9.9843695780195716e-6 / (ab + 7.0) + 1.5056327351493116e-7 / (ab + 8.0)) / ab))) / scale
    d[y] = d[x] * p
    d[y] += d[a] * numpy.testing.assert_(
        False, "scipy.stats.beta.cdf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[b] * numpy.testing.assert_(
        False, "scipy.stats.beta.cdf has no closed-form derivative with respect to b; Tangent differentiates it with respect to x, loc and scale")
    d[y] += -d[loc] * p
    d[y] += -d[scale] * p * z


@adjoint(scipy.stats.beta.logcdf)
def beta_logcdf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    ab = a + b
    q = numpy.exp((a - 1.0) * numpy.log(z) + (b - 1.0) * numpy.log1p(-z) - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - (0.9189385332046727 + (b + 0.5) * numpy.log(b + 7.5) - (b + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (b + 1.0) - 1259.1392167224028 / (b + 2.0)
        + 771.32342877765313 / (b + 3.0) - 176.61502916214059 / (b + 4.0) + 12.507343278686905 / (b + 5.0)
        - 0.13857109526572012 / (b + 6.0) + 9.9843695780195716e-6 / (b + 7.0) + 1.5056327351493116e-7 / (b + 8.0)) / b)) + (0.9189385332046727 + (ab + 0.5) * numpy.log(ab + 7.5) - (ab + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (ab + 1.0) - 1259.1392167224028 / (ab + 2.0)
        + 771.32342877765313 / (ab + 3.0) - 176.61502916214059 / (ab + 4.0) + 12.507343278686905 / (ab + 5.0)
        - 0.13857109526572012 / (ab + 6.0) + 9.9843695780195716e-6 / (ab + 7.0) + 1.5056327351493116e-7 / (ab + 8.0)) / ab)) - y) / scale
    d[x] = tangent.unbroadcast(d[y] * q, x)
    d[a] = numpy.testing.assert_(
        False, "scipy.stats.beta.logcdf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[b] = numpy.testing.assert_(
        False, "scipy.stats.beta.logcdf has no closed-form derivative with respect to b; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(-d[y] * q, loc)
    d[scale] = tangent.unbroadcast(-d[y] * q * z, scale)


@tangent_(scipy.stats.beta.logcdf)
def beta_logcdf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    ab = a + b
    q = numpy.exp((a - 1.0) * numpy.log(z) + (b - 1.0) * numpy.log1p(-z) - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - (0.9189385332046727 + (b + 0.5) * numpy.log(b + 7.5) - (b + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (b + 1.0) - 1259.1392167224028 / (b + 2.0)
        + 771.32342877765313 / (b + 3.0) - 176.61502916214059 / (b + 4.0) + 12.507343278686905 / (b + 5.0)
        - 0.13857109526572012 / (b + 6.0) + 9.9843695780195716e-6 / (b + 7.0) + 1.5056327351493116e-7 / (b + 8.0)) / b)) + (0.9189385332046727 + (ab + 0.5) * numpy.log(ab + 7.5) - (ab + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (ab + 1.0) - 1259.1392167224028 / (ab + 2.0)
        + 771.32342877765313 / (ab + 3.0) - 176.61502916214059 / (ab + 4.0) + 12.507343278686905 / (ab + 5.0)
        - 0.13857109526572012 / (ab + 6.0) + 9.9843695780195716e-6 / (ab + 7.0) + 1.5056327351493116e-7 / (ab + 8.0)) / ab)) - y) / scale
    d[y] = d[x] * q
    d[y] += d[a] * numpy.testing.assert_(
        False, "scipy.stats.beta.logcdf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[b] * numpy.testing.assert_(
        False, "scipy.stats.beta.logcdf has no closed-form derivative with respect to b; Tangent differentiates it with respect to x, loc and scale")
    d[y] += -d[loc] * q
    d[y] += -d[scale] * q * z


@adjoint(scipy.stats.beta.sf)
def beta_sf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    ab = a + b
    p = numpy.exp((a - 1.0) * numpy.log(z) + (b - 1.0) * numpy.log1p(-z) - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - (0.9189385332046727 + (b + 0.5) * numpy.log(b + 7.5) - (b + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (b + 1.0) - 1259.1392167224028 / (b + 2.0)
        + 771.32342877765313 / (b + 3.0) - 176.61502916214059 / (b + 4.0) + 12.507343278686905 / (b + 5.0)
        - 0.13857109526572012 / (b + 6.0) + 9.9843695780195716e-6 / (b + 7.0) + 1.5056327351493116e-7 / (b + 8.0)) / b)) + (0.9189385332046727 + (ab + 0.5) * numpy.log(ab + 7.5) - (ab + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (ab + 1.0) - 1259.1392167224028 / (ab + 2.0)
        + 771.32342877765313 / (ab + 3.0) - 176.61502916214059 / (ab + 4.0) + 12.507343278686905 / (ab + 5.0)
        - 0.13857109526572012 / (ab + 6.0) + 9.9843695780195716e-6 / (ab + 7.0) + 1.5056327351493116e-7 / (ab + 8.0)) / ab))) / scale
    d[x] = tangent.unbroadcast(-d[y] * p, x)
    d[a] = numpy.testing.assert_(
        False, "scipy.stats.beta.sf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[b] = numpy.testing.assert_(
        False, "scipy.stats.beta.sf has no closed-form derivative with respect to b; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(d[y] * p, loc)
    d[scale] = tangent.unbroadcast(d[y] * p * z, scale)


@tangent_(scipy.stats.beta.sf)
def beta_sf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    ab = a + b
    p = numpy.exp((a - 1.0) * numpy.log(z) + (b - 1.0) * numpy.log1p(-z) - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - (0.9189385332046727 + (b + 0.5) * numpy.log(b + 7.5) - (b + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (b + 1.0) - 1259.1392167224028 / (b + 2.0)
        + 771.32342877765313 / (b + 3.0) - 176.61502916214059 / (b + 4.0) + 12.507343278686905 / (b + 5.0)
        - 0.13857109526572012 / (b + 6.0) + 9.9843695780195716e-6 / (b + 7.0) + 1.5056327351493116e-7 / (b + 8.0)) / b)) + (0.9189385332046727 + (ab + 0.5) * numpy.log(ab + 7.5) - (ab + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (ab + 1.0) - 1259.1392167224028 / (ab + 2.0)
        + 771.32342877765313 / (ab + 3.0) - 176.61502916214059 / (ab + 4.0) + 12.507343278686905 / (ab + 5.0)
        - 0.13857109526572012 / (ab + 6.0) + 9.9843695780195716e-6 / (ab + 7.0) + 1.5056327351493116e-7 / (ab + 8.0)) / ab))) / scale
    d[y] = -d[x] * p
    d[y] += d[a] * numpy.testing.assert_(
        False, "scipy.stats.beta.sf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[b] * numpy.testing.assert_(
        False, "scipy.stats.beta.sf has no closed-form derivative with respect to b; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[loc] * p
    d[y] += d[scale] * p * z


@adjoint(scipy.stats.beta.logsf)
def beta_logsf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    ab = a + b
    q = numpy.exp((a - 1.0) * numpy.log(z) + (b - 1.0) * numpy.log1p(-z) - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - (0.9189385332046727 + (b + 0.5) * numpy.log(b + 7.5) - (b + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (b + 1.0) - 1259.1392167224028 / (b + 2.0)
        + 771.32342877765313 / (b + 3.0) - 176.61502916214059 / (b + 4.0) + 12.507343278686905 / (b + 5.0)
        - 0.13857109526572012 / (b + 6.0) + 9.9843695780195716e-6 / (b + 7.0) + 1.5056327351493116e-7 / (b + 8.0)) / b)) + (0.9189385332046727 + (ab + 0.5) * numpy.log(ab + 7.5) - (ab + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (ab + 1.0) - 1259.1392167224028 / (ab + 2.0)
        + 771.32342877765313 / (ab + 3.0) - 176.61502916214059 / (ab + 4.0) + 12.507343278686905 / (ab + 5.0)
        - 0.13857109526572012 / (ab + 6.0) + 9.9843695780195716e-6 / (ab + 7.0) + 1.5056327351493116e-7 / (ab + 8.0)) / ab)) - y) / scale
    d[x] = tangent.unbroadcast(-d[y] * q, x)
    d[a] = numpy.testing.assert_(
        False, "scipy.stats.beta.logsf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[b] = numpy.testing.assert_(
        False, "scipy.stats.beta.logsf has no closed-form derivative with respect to b; Tangent differentiates it with respect to x, loc and scale")
    d[loc] = tangent.unbroadcast(d[y] * q, loc)
    d[scale] = tangent.unbroadcast(d[y] * q * z, scale)


@tangent_(scipy.stats.beta.logsf)
def beta_logsf(y, x, a, b, loc=0, scale=1):
    z = (x - loc) / scale
    ab = a + b
    q = numpy.exp((a - 1.0) * numpy.log(z) + (b - 1.0) * numpy.log1p(-z) - (0.9189385332046727 + (a + 0.5) * numpy.log(a + 7.5) - (a + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (a + 1.0) - 1259.1392167224028 / (a + 2.0)
        + 771.32342877765313 / (a + 3.0) - 176.61502916214059 / (a + 4.0) + 12.507343278686905 / (a + 5.0)
        - 0.13857109526572012 / (a + 6.0) + 9.9843695780195716e-6 / (a + 7.0) + 1.5056327351493116e-7 / (a + 8.0)) / a)) - (0.9189385332046727 + (b + 0.5) * numpy.log(b + 7.5) - (b + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (b + 1.0) - 1259.1392167224028 / (b + 2.0)
        + 771.32342877765313 / (b + 3.0) - 176.61502916214059 / (b + 4.0) + 12.507343278686905 / (b + 5.0)
        - 0.13857109526572012 / (b + 6.0) + 9.9843695780195716e-6 / (b + 7.0) + 1.5056327351493116e-7 / (b + 8.0)) / b)) + (0.9189385332046727 + (ab + 0.5) * numpy.log(ab + 7.5) - (ab + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (ab + 1.0) - 1259.1392167224028 / (ab + 2.0)
        + 771.32342877765313 / (ab + 3.0) - 176.61502916214059 / (ab + 4.0) + 12.507343278686905 / (ab + 5.0)
        - 0.13857109526572012 / (ab + 6.0) + 9.9843695780195716e-6 / (ab + 7.0) + 1.5056327351493116e-7 / (ab + 8.0)) / ab)) - y) / scale
    d[y] = -d[x] * q
    d[y] += d[a] * numpy.testing.assert_(
        False, "scipy.stats.beta.logsf has no closed-form derivative with respect to a; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[b] * numpy.testing.assert_(
        False, "scipy.stats.beta.logsf has no closed-form derivative with respect to b; Tangent differentiates it with respect to x, loc and scale")
    d[y] += d[loc] * q
    d[y] += d[scale] * q * z


# ---------------------------------------------------------------- poisson
#
# With n = k - loc (an integer), log pmf = n log mu - mu - lgamma(n + 1): its derivative in mu
# is n / mu - 1. The cdf at k sums the pmf up to m = floor(k - loc), and its derivative in mu is
# -pmf(m) (the sf's is pmf(m)); for m < 0 the cdf is 0 and does not depend on mu.


@adjoint(scipy.stats.poisson.logpmf)
def poisson_logpmf(y, k, mu, loc=0):
    n = k - loc
    d[mu] = tangent.unbroadcast(d[y] * numpy.where(n >= 0, n / mu - 1.0, 0.0), mu)


@tangent_(scipy.stats.poisson.logpmf)
def poisson_logpmf(y, k, mu, loc=0):
    n = k - loc
    d[y] = d[mu] * numpy.where(n >= 0, n / mu - 1.0, 0.0)


@adjoint(scipy.stats.poisson.pmf)
def poisson_pmf(y, k, mu, loc=0):
    n = k - loc
    d[mu] = tangent.unbroadcast(d[y] * y * (n / mu - 1.0), mu)


@tangent_(scipy.stats.poisson.pmf)
def poisson_pmf(y, k, mu, loc=0):
    n = k - loc
    d[y] = d[mu] * y * (n / mu - 1.0)


@adjoint(scipy.stats.poisson.cdf)
def poisson_cdf(y, k, mu, loc=0):
    # p: pmf(m) (0 for m < 0).
    m = numpy.floor(k - loc)
    v = numpy.maximum(m, 0.0) + 1.0
    p = numpy.where(m >= 0, numpy.exp(m * numpy.log(mu) - mu - (0.9189385332046727 + (v + 0.5) * numpy.log(v + 7.5) - (v + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (v + 1.0) - 1259.1392167224028 / (v + 2.0)
        + 771.32342877765313 / (v + 3.0) - 176.61502916214059 / (v + 4.0) + 12.507343278686905 / (v + 5.0)
        - 0.13857109526572012 / (v + 6.0) + 9.9843695780195716e-6 / (v + 7.0) + 1.5056327351493116e-7 / (v + 8.0)) / v))), 0.0)
    d[mu] = tangent.unbroadcast(-d[y] * p, mu)


@tangent_(scipy.stats.poisson.cdf)
def poisson_cdf(y, k, mu, loc=0):
    m = numpy.floor(k - loc)
    v = numpy.maximum(m, 0.0) + 1.0
    p = numpy.where(m >= 0, numpy.exp(m * numpy.log(mu) - mu - (0.9189385332046727 + (v + 0.5) * numpy.log(v + 7.5) - (v + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (v + 1.0) - 1259.1392167224028 / (v + 2.0)
        + 771.32342877765313 / (v + 3.0) - 176.61502916214059 / (v + 4.0) + 12.507343278686905 / (v + 5.0)
        - 0.13857109526572012 / (v + 6.0) + 9.9843695780195716e-6 / (v + 7.0) + 1.5056327351493116e-7 / (v + 8.0)) / v))), 0.0)
    d[y] = -d[mu] * p


@adjoint(scipy.stats.poisson.logcdf)
def poisson_logcdf(y, k, mu, loc=0):
    # pmf(m) / cdf.
    m = numpy.floor(k - loc)
    v = numpy.maximum(m, 0.0) + 1.0
    q = numpy.where(m >= 0, numpy.exp(m * numpy.log(mu) - mu - (0.9189385332046727 + (v + 0.5) * numpy.log(v + 7.5) - (v + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (v + 1.0) - 1259.1392167224028 / (v + 2.0)
        + 771.32342877765313 / (v + 3.0) - 176.61502916214059 / (v + 4.0) + 12.507343278686905 / (v + 5.0)
        - 0.13857109526572012 / (v + 6.0) + 9.9843695780195716e-6 / (v + 7.0) + 1.5056327351493116e-7 / (v + 8.0)) / v)) - numpy.where(m >= 0, y, 0.0)), 0.0)
    d[mu] = tangent.unbroadcast(-d[y] * q, mu)


@tangent_(scipy.stats.poisson.logcdf)
def poisson_logcdf(y, k, mu, loc=0):
    m = numpy.floor(k - loc)
    v = numpy.maximum(m, 0.0) + 1.0
    q = numpy.where(m >= 0, numpy.exp(m * numpy.log(mu) - mu - (0.9189385332046727 + (v + 0.5) * numpy.log(v + 7.5) - (v + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (v + 1.0) - 1259.1392167224028 / (v + 2.0)
        + 771.32342877765313 / (v + 3.0) - 176.61502916214059 / (v + 4.0) + 12.507343278686905 / (v + 5.0)
        - 0.13857109526572012 / (v + 6.0) + 9.9843695780195716e-6 / (v + 7.0) + 1.5056327351493116e-7 / (v + 8.0)) / v)) - numpy.where(m >= 0, y, 0.0)), 0.0)
    d[y] = -d[mu] * q


@adjoint(scipy.stats.poisson.sf)
def poisson_sf(y, k, mu, loc=0):
    m = numpy.floor(k - loc)
    v = numpy.maximum(m, 0.0) + 1.0
    p = numpy.where(m >= 0, numpy.exp(m * numpy.log(mu) - mu - (0.9189385332046727 + (v + 0.5) * numpy.log(v + 7.5) - (v + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (v + 1.0) - 1259.1392167224028 / (v + 2.0)
        + 771.32342877765313 / (v + 3.0) - 176.61502916214059 / (v + 4.0) + 12.507343278686905 / (v + 5.0)
        - 0.13857109526572012 / (v + 6.0) + 9.9843695780195716e-6 / (v + 7.0) + 1.5056327351493116e-7 / (v + 8.0)) / v))), 0.0)
    d[mu] = tangent.unbroadcast(d[y] * p, mu)


@tangent_(scipy.stats.poisson.sf)
def poisson_sf(y, k, mu, loc=0):
    m = numpy.floor(k - loc)
    v = numpy.maximum(m, 0.0) + 1.0
    p = numpy.where(m >= 0, numpy.exp(m * numpy.log(mu) - mu - (0.9189385332046727 + (v + 0.5) * numpy.log(v + 7.5) - (v + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (v + 1.0) - 1259.1392167224028 / (v + 2.0)
        + 771.32342877765313 / (v + 3.0) - 176.61502916214059 / (v + 4.0) + 12.507343278686905 / (v + 5.0)
        - 0.13857109526572012 / (v + 6.0) + 9.9843695780195716e-6 / (v + 7.0) + 1.5056327351493116e-7 / (v + 8.0)) / v))), 0.0)
    d[y] = d[mu] * p


@adjoint(scipy.stats.poisson.logsf)
def poisson_logsf(y, k, mu, loc=0):
    m = numpy.floor(k - loc)
    v = numpy.maximum(m, 0.0) + 1.0
    q = numpy.where(m >= 0, numpy.exp(m * numpy.log(mu) - mu - (0.9189385332046727 + (v + 0.5) * numpy.log(v + 7.5) - (v + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (v + 1.0) - 1259.1392167224028 / (v + 2.0)
        + 771.32342877765313 / (v + 3.0) - 176.61502916214059 / (v + 4.0) + 12.507343278686905 / (v + 5.0)
        - 0.13857109526572012 / (v + 6.0) + 9.9843695780195716e-6 / (v + 7.0) + 1.5056327351493116e-7 / (v + 8.0)) / v)) - y), 0.0)
    d[mu] = tangent.unbroadcast(d[y] * q, mu)


@tangent_(scipy.stats.poisson.logsf)
def poisson_logsf(y, k, mu, loc=0):
    m = numpy.floor(k - loc)
    v = numpy.maximum(m, 0.0) + 1.0
    q = numpy.where(m >= 0, numpy.exp(m * numpy.log(mu) - mu - (0.9189385332046727 + (v + 0.5) * numpy.log(v + 7.5) - (v + 7.5) + numpy.log((
        0.99999999999980993 + 676.5203681218851 / (v + 1.0) - 1259.1392167224028 / (v + 2.0)
        + 771.32342877765313 / (v + 3.0) - 176.61502916214059 / (v + 4.0) + 12.507343278686905 / (v + 5.0)
        - 0.13857109526572012 / (v + 6.0) + 9.9843695780195716e-6 / (v + 7.0) + 1.5056327351493116e-7 / (v + 8.0)) / v)) - y), 0.0)
    d[y] = d[mu] * q


# ---------------------------------------------------------------- multivariate_normal
#
# SciPy's layout: dim = mean's size (cov's order when mean is None, 1 for a scalar cov); x holds
# points along its last axis (for dim 1, one point per entry); the result has one value per
# point, squeezed (a float for a single point). With r = x - mean and S the covariance matrix,
# log pdf = -(dim log(2 pi) + log det S + r^T S^-1 r) / 2: its derivative in x is -S^-1 r, in
# mean S^-1 r, and in S (S^-1 r r^T S^-1 - S^-1) / 2, passed to the lower triangle SciPy reads
# (a 2-D cov), the diagonal (1-D) or the trace (a scalar). `sr` holds the points' S^-1 r as rows.


@adjoint(scipy.stats.multivariate_normal.logpdf)
def multivariate_normal_logpdf(y, x, mean=None, cov=1, allow_singular=False):
    dim = numpy.size(mean) if mean is not None else (numpy.shape(cov)[-1] if numpy.ndim(cov) == 2 else 1)
    eye = numpy.eye(dim)
    r = numpy.reshape(x, (-1, dim)) - (0.0 if mean is None else numpy.reshape(mean, (dim,)))
    sigma = (numpy.tril(cov) + numpy.swapaxes(numpy.tril(cov, -1), -1, -2)) if numpy.ndim(cov) == 2 else (numpy.diag(cov) if numpy.ndim(cov) == 1 else cov * eye)
    sigma_inv = numpy.linalg.inv(sigma)
    sr = numpy.matmul(r, sigma_inv)
    g = numpy.reshape(tangent.grad_like(d[y], y), (-1, 1))
    gs = 0.5 * (numpy.matmul(numpy.swapaxes(sr, -1, -2), g * sr) - numpy.sum(g) * sigma_inv)
    d[x] = tangent.unbroadcast(numpy.reshape(-g * sr, numpy.shape(x)), x)
    d[mean] = tangent.unbroadcast(numpy.reshape(numpy.sum(g * sr, axis=0), numpy.shape(mean)), mean)
    d[cov] = (numpy.tril(gs + numpy.swapaxes(gs, -1, -2)) - gs * eye) if numpy.ndim(cov) == 2 else tangent.unbroadcast(numpy.diagonal(gs) if numpy.ndim(cov) == 1 else numpy.trace(gs), cov)


@tangent_(scipy.stats.multivariate_normal.logpdf)
def multivariate_normal_logpdf(y, x, mean=None, cov=1, allow_singular=False):
    dim = numpy.size(mean) if mean is not None else (numpy.shape(cov)[-1] if numpy.ndim(cov) == 2 else 1)
    eye = numpy.eye(dim)
    r = numpy.reshape(x, (-1, dim)) - (0.0 if mean is None else numpy.reshape(mean, (dim,)))
    sigma = (numpy.tril(cov) + numpy.swapaxes(numpy.tril(cov, -1), -1, -2)) if numpy.ndim(cov) == 2 else (numpy.diag(cov) if numpy.ndim(cov) == 1 else cov * eye)
    sigma_inv = numpy.linalg.inv(sigma)
    sr = numpy.matmul(r, sigma_inv)
    d[y] = tangent.unbroadcast(numpy.reshape(-numpy.sum(sr * numpy.reshape(d[x], (-1, dim)), axis=-1), numpy.shape(y)), y)
    d[y] += tangent.unbroadcast(numpy.reshape(numpy.matmul(sr, numpy.reshape(d[mean], (dim,))), numpy.shape(y)), y)
    d[y] += tangent.unbroadcast(numpy.reshape(0.5 * numpy.sum(numpy.matmul(sr, (numpy.tril(d[cov]) + numpy.swapaxes(numpy.tril(d[cov], -1), -1, -2)) if numpy.ndim(cov) == 2 else (numpy.diag(d[cov]) if numpy.ndim(cov) == 1 else d[cov] * eye)) * sr, axis=-1) - 0.5 * numpy.sum(sigma_inv * ((numpy.tril(d[cov]) + numpy.swapaxes(numpy.tril(d[cov], -1), -1, -2)) if numpy.ndim(cov) == 2 else (numpy.diag(d[cov]) if numpy.ndim(cov) == 1 else d[cov] * eye))), numpy.shape(y)), y)


@adjoint(scipy.stats.multivariate_normal.pdf)
def multivariate_normal_pdf(y, x, mean=None, cov=1, allow_singular=False):
    # pdf = exp(logpdf): the logpdf adjoint with the incoming adjoint times y.
    dim = numpy.size(mean) if mean is not None else (numpy.shape(cov)[-1] if numpy.ndim(cov) == 2 else 1)
    eye = numpy.eye(dim)
    r = numpy.reshape(x, (-1, dim)) - (0.0 if mean is None else numpy.reshape(mean, (dim,)))
    sigma = (numpy.tril(cov) + numpy.swapaxes(numpy.tril(cov, -1), -1, -2)) if numpy.ndim(cov) == 2 else (numpy.diag(cov) if numpy.ndim(cov) == 1 else cov * eye)
    sigma_inv = numpy.linalg.inv(sigma)
    sr = numpy.matmul(r, sigma_inv)
    g = numpy.reshape(tangent.grad_like(d[y], y) * y, (-1, 1))
    gs = 0.5 * (numpy.matmul(numpy.swapaxes(sr, -1, -2), g * sr) - numpy.sum(g) * sigma_inv)
    d[x] = tangent.unbroadcast(numpy.reshape(-g * sr, numpy.shape(x)), x)
    d[mean] = tangent.unbroadcast(numpy.reshape(numpy.sum(g * sr, axis=0), numpy.shape(mean)), mean)
    d[cov] = (numpy.tril(gs + numpy.swapaxes(gs, -1, -2)) - gs * eye) if numpy.ndim(cov) == 2 else tangent.unbroadcast(numpy.diagonal(gs) if numpy.ndim(cov) == 1 else numpy.trace(gs), cov)


@tangent_(scipy.stats.multivariate_normal.pdf)
def multivariate_normal_pdf(y, x, mean=None, cov=1, allow_singular=False):
    dim = numpy.size(mean) if mean is not None else (numpy.shape(cov)[-1] if numpy.ndim(cov) == 2 else 1)
    eye = numpy.eye(dim)
    r = numpy.reshape(x, (-1, dim)) - (0.0 if mean is None else numpy.reshape(mean, (dim,)))
    sigma = (numpy.tril(cov) + numpy.swapaxes(numpy.tril(cov, -1), -1, -2)) if numpy.ndim(cov) == 2 else (numpy.diag(cov) if numpy.ndim(cov) == 1 else cov * eye)
    sigma_inv = numpy.linalg.inv(sigma)
    sr = numpy.matmul(r, sigma_inv)
    d[y] = y * tangent.unbroadcast(numpy.reshape(-numpy.sum(sr * numpy.reshape(d[x], (-1, dim)), axis=-1), numpy.shape(y)), y)
    d[y] += y * tangent.unbroadcast(numpy.reshape(numpy.matmul(sr, numpy.reshape(d[mean], (dim,))), numpy.shape(y)), y)
    d[y] += y * tangent.unbroadcast(numpy.reshape(0.5 * numpy.sum(numpy.matmul(sr, (numpy.tril(d[cov]) + numpy.swapaxes(numpy.tril(d[cov], -1), -1, -2)) if numpy.ndim(cov) == 2 else (numpy.diag(d[cov]) if numpy.ndim(cov) == 1 else d[cov] * eye)) * sr, axis=-1) - 0.5 * numpy.sum(sigma_inv * ((numpy.tril(d[cov]) + numpy.swapaxes(numpy.tril(d[cov], -1), -1, -2)) if numpy.ndim(cov) == 2 else (numpy.diag(d[cov]) if numpy.ndim(cov) == 1 else d[cov] * eye))), numpy.shape(y)), y)


# ---------------------------------------------------------------- dirichlet
#
# log pdf = sum_i (alpha_i - 1) log x_i - sum_i lgamma(alpha_i) + lgamma(sum(alpha)), with the
# components along x's first axis (points along the others; the result, one value per point, is
# squeezed). Given K - 1 components, the K-th is `last` = 1 - sum(x) and each given one's
# derivative also has -(alpha_K - 1) / last. In alpha_i: log x_i - psi(alpha_i) + psi(sum(alpha)).


@adjoint(scipy.stats.dirichlet.logpdf)
def dirichlet_logpdf(y, x, alpha):
    full = numpy.shape(x)[0] == numpy.shape(alpha)[0]
    column = numpy.reshape(alpha, (-1,) + (1,) * (numpy.ndim(x) - 1))
    last = 1.0 - numpy.sum(x, axis=0)
    log_x = numpy.log(x) if full else numpy.concatenate((numpy.log(x), numpy.expand_dims(numpy.log(last), 0)), axis=0)
    g = numpy.reshape(tangent.grad_like(d[y], y), numpy.shape(x)[1:])
    d[x] = tangent.unbroadcast(g * ((column - 1.0) / x if full else (column[:-1] - 1.0) / x - (column[-1] - 1.0) / last), x)
    d[alpha] = tangent.unbroadcast(numpy.sum(numpy.reshape(g * log_x, (numpy.shape(alpha)[0], -1)), axis=1) + numpy.sum(g) * (tangent.digamma(numpy.sum(alpha)) - tangent.digamma(alpha)), alpha)


@tangent_(scipy.stats.dirichlet.logpdf)
def dirichlet_logpdf(y, x, alpha):
    full = numpy.shape(x)[0] == numpy.shape(alpha)[0]
    column = numpy.reshape(alpha, (-1,) + (1,) * (numpy.ndim(x) - 1))
    last = 1.0 - numpy.sum(x, axis=0)
    log_x = numpy.log(x) if full else numpy.concatenate((numpy.log(x), numpy.expand_dims(numpy.log(last), 0)), axis=0)
    d[y] = tangent.unbroadcast(numpy.reshape(numpy.sum(d[x] * ((column - 1.0) / x if full else (column[:-1] - 1.0) / x - (column[-1] - 1.0) / last), axis=0), numpy.shape(y)), y)
    d[y] += tangent.unbroadcast(numpy.reshape(numpy.sum(numpy.reshape(d[alpha], numpy.shape(column)) * log_x, axis=0) + numpy.sum(d[alpha] * (tangent.digamma(numpy.sum(alpha)) - tangent.digamma(alpha))), numpy.shape(y)), y)


@adjoint(scipy.stats.dirichlet.pdf)
def dirichlet_pdf(y, x, alpha):
    full = numpy.shape(x)[0] == numpy.shape(alpha)[0]
    column = numpy.reshape(alpha, (-1,) + (1,) * (numpy.ndim(x) - 1))
    last = 1.0 - numpy.sum(x, axis=0)
    log_x = numpy.log(x) if full else numpy.concatenate((numpy.log(x), numpy.expand_dims(numpy.log(last), 0)), axis=0)
    g = numpy.reshape(tangent.grad_like(d[y], y) * y, numpy.shape(x)[1:])
    d[x] = tangent.unbroadcast(g * ((column - 1.0) / x if full else (column[:-1] - 1.0) / x - (column[-1] - 1.0) / last), x)
    d[alpha] = tangent.unbroadcast(numpy.sum(numpy.reshape(g * log_x, (numpy.shape(alpha)[0], -1)), axis=1) + numpy.sum(g) * (tangent.digamma(numpy.sum(alpha)) - tangent.digamma(alpha)), alpha)


@tangent_(scipy.stats.dirichlet.pdf)
def dirichlet_pdf(y, x, alpha):
    full = numpy.shape(x)[0] == numpy.shape(alpha)[0]
    column = numpy.reshape(alpha, (-1,) + (1,) * (numpy.ndim(x) - 1))
    last = 1.0 - numpy.sum(x, axis=0)
    log_x = numpy.log(x) if full else numpy.concatenate((numpy.log(x), numpy.expand_dims(numpy.log(last), 0)), axis=0)
    d[y] = y * tangent.unbroadcast(numpy.reshape(numpy.sum(d[x] * ((column - 1.0) / x if full else (column[:-1] - 1.0) / x - (column[-1] - 1.0) / last), axis=0), numpy.shape(y)), y)
    d[y] += y * tangent.unbroadcast(numpy.reshape(numpy.sum(numpy.reshape(d[alpha], numpy.shape(column)) * log_x, axis=0) + numpy.sum(d[alpha] * (tangent.digamma(numpy.sum(alpha)) - tangent.digamma(alpha))), numpy.shape(y)), y)
