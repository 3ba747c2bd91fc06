"""End to end: `scipy.stats` distributions (recipes/scipy_stats.py) and `scipy.linalg` solvers
(recipes/scipy_linalg.py, with `expm`) differentiated by the engine.

Each small function below calls one distribution method and reduces its result to a number
(`sum(sin(...))`, so the seed the recipe sees is not all ones). It is differentiated with
`tangent.grad` (reverse mode, optimized and not) against central finite differences of the
function itself, with `tangent.jvp` (forward mode) against directional differences, and with
`tangent.hvp` (forward over reverse: the generated gradient differentiated again) against
differences of the generated gradient; the value `preserve_result` returns is SciPy's. Arguments
mix Python floats and arrays that broadcast against each other, positional and by keyword, and
the functions use every import spelling (`from scipy.stats import norm`, `import scipy.stats as
st`, `from scipy import stats`, `import scipy.stats`).

Derivatives the recipes refuse (cdfs in the shape parameters of t, gamma, beta and chi2) raise
with a message naming the function and the parameter; `multivariate_normal.cdf` and
`scipy.linalg.cho_factor` have no recipe. Where SciPy reads only part of a matrix (a triangle of
`cov`, of a Cholesky input, of a `solve(..., assume_a='pos')` matrix), the finite differences
see that too, so the entries it ignores must get no gradient.
"""
import inspect

import numpy as np
import pytest
import tangent
from gradcheck import assert_close, numeric_grad

pytest.importorskip("scipy.stats")

import scipy.stats  # noqa: E402
import scipy.stats as st  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.stats import beta, chi2, dirichlet, gamma, multivariate_normal, norm, poisson, t  # noqa: E402
from scipy.stats import multivariate_normal as mvn  # noqa: E402

import scipy.linalg  # noqa: E402
import scipy.linalg as sl  # noqa: E402
from scipy import linalg  # noqa: E402
from scipy.linalg import cho_factor, cho_solve, cholesky, expm, solve, solve_triangular  # noqa: E402

# --------------------------------------------------------------------------- norm, every spelling


def norm_logpdf(x, loc, scale):
    return np.sum(np.sin(norm.logpdf(x, loc, scale)))


def norm_logpdf_st(x, loc, scale):
    return np.sum(np.sin(st.norm.logpdf(x, loc=loc, scale=scale)))


def norm_logpdf_stats(x, loc, scale):
    return np.sum(np.sin(stats.norm.logpdf(x, loc, scale=scale)))


def norm_logpdf_scipy(x, loc, scale):
    return np.sum(np.sin(scipy.stats.norm.logpdf(x, scale=scale, loc=loc)))


def norm_logpdf_standard(x):
    return np.sum(np.sin(norm.logpdf(x)))


def norm_pdf(x, loc, scale):
    return np.sum(np.sin(st.norm.pdf(x, loc, scale)))


def norm_cdf(x, loc, scale):
    return np.sum(np.sin(stats.norm.cdf(x, loc, scale)))


def norm_logcdf(x, loc, scale):
    return np.sum(np.sin(scipy.stats.norm.logcdf(x, loc, scale)))


def norm_sf(x, loc, scale):
    return np.sum(np.sin(norm.sf(x, loc=loc, scale=scale)))


def norm_logsf(x, loc, scale):
    return np.sum(np.sin(norm.logsf(x, loc, scale)))


def norm_ppf(q, loc, scale):
    return np.sum(np.sin(norm.ppf(q, loc, scale)))


def norm_isf(q, loc, scale):
    return np.sum(np.sin(st.norm.isf(q, loc, scale)))


# --------------------------------------------------------------------------- t


def t_logpdf(x, df, loc, scale):
    return np.sum(np.sin(st.t.logpdf(x, df, loc, scale)))


def t_pdf(x, df, loc, scale):
    return np.sum(np.sin(t.pdf(x, df, loc=loc, scale=scale)))


def t_cdf(x, df, loc, scale):
    return np.sum(np.sin(stats.t.cdf(x, df, loc, scale)))


def t_logcdf(x, df, loc, scale):
    return np.sum(np.sin(scipy.stats.t.logcdf(x, df, loc, scale)))


def t_sf(x, df, loc, scale):
    return np.sum(np.sin(t.sf(x, df, loc, scale)))


def t_logsf(x, df, loc, scale):
    return np.sum(np.sin(st.t.logsf(x, df, loc=loc, scale=scale)))


# --------------------------------------------------------------------------- gamma


def gamma_logpdf(x, a, loc, scale):
    return np.sum(np.sin(stats.gamma.logpdf(x, a, loc, scale)))


def gamma_pdf(x, a, loc, scale):
    return np.sum(np.sin(gamma.pdf(x, a, loc=loc, scale=scale)))


def gamma_cdf(x, a, loc, scale):
    return np.sum(np.sin(st.gamma.cdf(x, a, loc, scale)))


def gamma_logcdf(x, a, loc, scale):
    return np.sum(np.sin(gamma.logcdf(x, a, loc, scale)))


def gamma_sf(x, a, loc, scale):
    return np.sum(np.sin(scipy.stats.gamma.sf(x, a, loc, scale)))


def gamma_logsf(x, a, loc, scale):
    return np.sum(np.sin(stats.gamma.logsf(x, a, loc, scale)))


def gamma_keywords(x, a):
    return np.sum(np.sin(gamma.logpdf(x, a=a)))


# --------------------------------------------------------------------------- beta


def beta_logpdf(x, a, b, loc, scale):
    return np.sum(np.sin(scipy.stats.beta.logpdf(x, a, b, loc, scale)))


def beta_pdf(x, a, b, loc, scale):
    return np.sum(np.sin(beta.pdf(x, a, b, loc=loc, scale=scale)))


def beta_cdf(x, a, b, loc, scale):
    return np.sum(np.sin(st.beta.cdf(x, a, b, loc, scale)))


def beta_logcdf(x, a, b, loc, scale):
    return np.sum(np.sin(beta.logcdf(x, a, b, loc, scale)))


def beta_sf(x, a, b, loc, scale):
    return np.sum(np.sin(stats.beta.sf(x, a, b, loc, scale)))


def beta_logsf(x, a, b, loc, scale):
    return np.sum(np.sin(beta.logsf(x, a, b, loc, scale)))


# --------------------------------------------------------------------------- chi2


def chi2_logpdf(x, df, loc, scale):
    return np.sum(np.sin(chi2.logpdf(x, df, loc, scale)))


def chi2_pdf(x, df, loc, scale):
    return np.sum(np.sin(st.chi2.pdf(x, df, loc, scale)))


def chi2_cdf(x, df, loc, scale):
    return np.sum(np.sin(chi2.cdf(x, df, loc=loc, scale=scale)))


def chi2_logcdf(x, df, loc, scale):
    return np.sum(np.sin(stats.chi2.logcdf(x, df, loc, scale)))


def chi2_sf(x, df, loc, scale):
    return np.sum(np.sin(scipy.stats.chi2.sf(x, df, loc, scale)))


def chi2_logsf(x, df, loc, scale):
    return np.sum(np.sin(chi2.logsf(x, df, loc, scale)))


# --------------------------------------------------------------------------- poisson

COUNTS = np.array([0, 1, 3, 6])


def poisson_logpmf(mu):
    return np.sum(np.sin(poisson.logpmf(COUNTS, mu)))


def poisson_pmf(mu):
    return np.sum(np.sin(st.poisson.pmf(COUNTS, mu, loc=-1)))


def poisson_cdf(mu):
    return np.sum(np.sin(stats.poisson.cdf(COUNTS, mu)))


def poisson_logcdf(mu):
    return np.sum(np.sin(scipy.stats.poisson.logcdf(COUNTS, mu)))


def poisson_sf(mu):
    return np.sum(np.sin(poisson.sf(COUNTS, mu)))


def poisson_logsf(mu):
    return np.sum(np.sin(poisson.logsf(COUNTS, mu=mu)))


def poisson_scalar(mu):
    return poisson.logpmf(3, mu) + poisson.logcdf(2, mu) * poisson.pmf(1, mu)


# --------------------------------------------------------------------------- multivariate_normal


def mvn_logpdf(x, mean, cov):
    return np.sum(np.sin(multivariate_normal.logpdf(x, mean, cov)))


def mvn_pdf(x, mean, cov):
    return np.sum(np.sin(mvn.pdf(x, mean=mean, cov=cov)))


def mvn_logpdf_stats(x, mean, cov):
    return np.sum(np.sin(stats.multivariate_normal.logpdf(x, mean=mean, cov=cov)))


def mvn_no_mean(x, cov):
    return np.sum(np.sin(st.multivariate_normal.logpdf(x, cov=cov)))


def mvn_cdf(x, mean, cov):
    return multivariate_normal.cdf(x, mean, cov)


# --------------------------------------------------------------------------- dirichlet


def dirichlet_logpdf(x, alpha):
    # K - 1 components: the last is 1 - sum(x).
    return np.sum(np.sin(dirichlet.logpdf(x, alpha)))


def dirichlet_pdf(x, alpha):
    return np.sum(np.sin(scipy.stats.dirichlet.pdf(x, alpha)))


def dirichlet_normalized(w, alpha):
    # All K components: SciPy checks that they sum to 1, so x is made to.
    return np.sum(np.sin(st.dirichlet.logpdf(w / np.sum(w, axis=0), alpha)))


def dirichlet_pdf_normalized(w, alpha):
    return np.sum(np.sin(dirichlet.pdf(w / np.sum(w, axis=0), alpha)))


# --------------------------------------------------------------------------- scipy.linalg


def la_solve(a, b):
    return np.sum(np.sin(solve(a, b)))


def la_solve_transposed(a, b):
    return np.sum(np.sin(sl.solve(a, b, transposed=True)))


def la_solve_pos(a, b):
    # Reads a's lower triangle only.
    return np.sum(np.sin(linalg.solve(a, b, assume_a="pos", lower=True)))


def la_solve_sym(a, b):
    # Reads a's upper triangle only.
    return np.sum(np.sin(scipy.linalg.solve(a, b, assume_a="sym")))


def la_solve_triangular(a, b):
    return np.sum(np.sin(solve_triangular(a, b)))


def la_solve_triangular_options(a, b):
    return np.sum(np.sin(sl.solve_triangular(a, b, trans="T", lower=True, unit_diagonal=True)))


def la_cholesky(a):
    # The upper factor, from a's upper triangle.
    return np.sum(np.sin(cholesky(a)))


def la_cholesky_lower(a):
    return np.sum(np.sin(linalg.cholesky(a, lower=True)))


def la_cho_solve(c, b):
    return np.sum(np.sin(cho_solve((c, True), b)))


def la_cho_solve_upper(a, b):
    return np.sum(np.sin(sl.cho_solve((sl.cholesky(a), False), b)))


def la_expm(a):
    return np.sum(np.sin(expm(a)))


def la_expm_scaled(a, t):
    return np.sum(sl.expm(t * a) * a)


def la_cho_factor(a, b):
    return np.sum(cho_solve(cho_factor(a), b))


# --------------------------------------------------------------------------- cases

X = np.array([-0.7, 0.4, 1.3])
LOC = np.array([[0.1], [-0.2]])
SCALE = np.array([[1.4], [0.8]])
XP = np.array([0.6, 1.5, 2.7])  # positive
LOCP = np.array([[0.05], [-0.1]])
XB = np.array([0.2, 0.45, 0.7])  # in (0, 1) after loc and scale
LOCB = np.array([[0.02], [-0.05]])
Q = np.array([0.1, 0.45, 0.8])
DF = np.array([2.5, 4.0, 7.0])
A = np.array([1.7, 2.5, 3.2])
B = np.array([[1.3], [2.4]])
COV = np.array([[2.0, 0.3, -0.2], [0.3, 1.0, 0.1], [-0.2, 0.1, 1.5]])
PTS = np.array([[0.1, 0.2, -0.4], [0.5, -0.3, 0.0], [1.0, 0.0, 0.7], [-0.6, 0.9, 0.2]])
MEAN = np.array([0.1, -0.2, 0.3])
SIMPLEX2 = np.array([[0.2, 0.3, 0.1], [0.5, 0.1, 0.3]])  # K - 1 = 2 rows, 3 points
ALPHA = np.array([1.5, 2.0, 3.0])
WEIGHTS = np.array([[1.0, 2.0], [0.5, 1.5], [2.0, 0.7]])
MAT = np.array([[3.0, 0.5, -0.4], [0.2, 2.5, 0.3], [-0.6, 0.4, 4.0]])
SPD = MAT @ MAT.T
VEC = np.array([0.3, -0.5, 1.2])
RHS = np.array([[0.3, 1.0], [-0.5, 0.2], [1.2, -0.7]])

P = pytest.param
CASES = [
    # norm: every spelling, positional and keyword loc/scale, floats and broadcasting arrays.
    P(norm_logpdf, (X, LOC, 1.3), (0, 1, 2), id="norm.logpdf"),
    P(norm_logpdf, (0.3, -0.2, 1.7), (0, 1, 2), id="norm.logpdf-floats"),
    P(norm_logpdf_st, (X, 0.1, SCALE), (0, 1, 2), id="st.norm.logpdf-keywords"),
    P(norm_logpdf_stats, (0.3, LOC, 1.3), (0, 1, 2), id="stats.norm.logpdf"),
    P(norm_logpdf_scipy, (X, LOC, SCALE), (0, 1, 2), id="scipy.stats.norm.logpdf"),
    P(norm_logpdf_standard, (X,), (0,), id="norm.logpdf-defaults"),
    P(norm_pdf, (X, LOC, SCALE), (0, 1, 2), id="norm.pdf"),
    P(norm_cdf, (X, LOC, 1.3), (0, 1, 2), id="norm.cdf"),
    P(norm_cdf, (0.3, -0.2, 1.7), (0, 1, 2), id="norm.cdf-floats"),
    P(norm_logcdf, (np.array([-6.0, -0.5, 2.0]), LOC, SCALE), (0, 1, 2), id="norm.logcdf"),
    P(norm_sf, (X, LOC, SCALE), (0, 1, 2), id="norm.sf"),
    P(norm_logsf, (np.array([-2.0, 0.5, 6.0]), LOC, 1.3), (0, 1, 2), id="norm.logsf"),
    P(norm_ppf, (Q, LOC, SCALE), (0, 1, 2), id="norm.ppf"),
    P(norm_isf, (0.3, LOC, 1.3), (0, 1, 2), id="norm.isf"),
    # t
    P(t_logpdf, (X, DF, LOC, SCALE), (0, 1, 2, 3), id="t.logpdf"),
    P(t_logpdf, (0.3, 3.5, -0.2, 1.7), (0, 1, 2, 3), id="t.logpdf-floats"),
    P(t_pdf, (X, DF, LOC, 1.3), (0, 1, 2, 3), id="t.pdf"),
    P(t_cdf, (X, DF, LOC, SCALE), (0, 2, 3), id="t.cdf"),
    P(t_logcdf, (X, DF, LOC, SCALE), (0, 2, 3), id="t.logcdf"),
    P(t_sf, (0.3, 3.5, LOC, 1.3), (0, 2, 3), id="t.sf"),
    P(t_logsf, (X, 5.0, LOC, SCALE), (0, 2, 3), id="t.logsf"),
    # gamma
    P(gamma_logpdf, (XP, A, LOCP, SCALE), (0, 1, 2, 3), id="gamma.logpdf"),
    P(gamma_logpdf, (1.3, 2.2, 0.1, 1.5), (0, 1, 2, 3), id="gamma.logpdf-floats"),
    P(gamma_pdf, (XP, A, LOCP, 1.3), (0, 1, 2, 3), id="gamma.pdf"),
    P(gamma_cdf, (XP, A, LOCP, SCALE), (0, 2, 3), id="gamma.cdf"),
    P(gamma_logcdf, (XP, 0.8, LOCP, SCALE), (0, 2, 3), id="gamma.logcdf"),
    P(gamma_sf, (1.3, A, LOCP, 1.3), (0, 2, 3), id="gamma.sf"),
    P(gamma_logsf, (XP, A, LOCP, SCALE), (0, 2, 3), id="gamma.logsf"),
    P(gamma_keywords, (XP, A), (0, 1), id="gamma.logpdf-a-keyword"),
    # beta
    P(beta_logpdf, (XB, A, B, LOCB, 1.2), (0, 1, 2, 3, 4), id="beta.logpdf"),
    P(beta_logpdf, (0.4, 1.5, 2.5, 0.0, 1.0), (0, 1, 2, 3, 4), id="beta.logpdf-floats"),
    P(beta_pdf, (XB, A, B, LOCB, 1.2), (0, 1, 2, 3, 4), id="beta.pdf"),
    P(beta_cdf, (XB, A, B, LOCB, 1.2), (0, 3, 4), id="beta.cdf"),
    P(beta_logcdf, (XB, A, 0.6, LOCB, 1.2), (0, 3, 4), id="beta.logcdf"),
    P(beta_sf, (XB, A, B, 0.0, 1.0), (0, 3, 4), id="beta.sf"),
    P(beta_logsf, (0.4, A, B, LOCB, 1.2), (0, 3, 4), id="beta.logsf"),
    # chi2
    P(chi2_logpdf, (XP, DF, LOCP, SCALE), (0, 1, 2, 3), id="chi2.logpdf"),
    P(chi2_logpdf, (1.3, 2.5, 0.1, 1.5), (0, 1, 2, 3), id="chi2.logpdf-floats"),
    P(chi2_pdf, (XP, DF, LOCP, 1.3), (0, 1, 2, 3), id="chi2.pdf"),
    P(chi2_cdf, (XP, DF, LOCP, SCALE), (0, 2, 3), id="chi2.cdf"),
    P(chi2_logcdf, (XP, 3.0, LOCP, SCALE), (0, 2, 3), id="chi2.logcdf"),
    P(chi2_sf, (1.3, DF, LOCP, 1.3), (0, 2, 3), id="chi2.sf"),
    P(chi2_logsf, (XP, DF, LOCP, SCALE), (0, 2, 3), id="chi2.logsf"),
    # poisson: only mu
    P(poisson_logpmf, (np.array([0.7, 1.5, 2.0, 4.0]),), (0,), id="poisson.logpmf"),
    P(poisson_logpmf, (2.5,), (0,), id="poisson.logpmf-float"),
    P(poisson_pmf, (np.array([[0.7], [3.0]]),), (0,), id="poisson.pmf"),
    P(poisson_cdf, (np.array([0.7, 1.5, 2.0, 4.0]),), (0,), id="poisson.cdf"),
    P(poisson_logcdf, (2.5,), (0,), id="poisson.logcdf"),
    P(poisson_sf, (np.array([0.7, 1.5, 2.0, 4.0]),), (0,), id="poisson.sf"),
    P(poisson_logsf, (np.array([[0.7], [3.0]]),), (0,), id="poisson.logsf"),
    P(poisson_scalar, (1.7,), (0,), id="poisson-floats"),
    # multivariate_normal: points along the last axis, a 2-D, 1-D (diagonal) or scalar cov
    P(mvn_logpdf, (PTS, MEAN, COV), (0, 1, 2), id="multivariate_normal.logpdf"),
    P(mvn_logpdf, (PTS[0], MEAN, COV), (0, 1, 2), id="multivariate_normal.logpdf-one-point"),
    P(mvn_logpdf, (PTS.reshape(2, 2, 3), MEAN, np.array([1.5, 0.7, 2.0])), (0, 1, 2), id="multivariate_normal.logpdf-diagonal"),
    P(mvn_logpdf, (PTS[:, :2], MEAN[:2], 1.3), (0, 1, 2), id="multivariate_normal.logpdf-scalar-cov"),
    P(mvn_logpdf, (X, 0.2, 1.3), (0, 1, 2), id="multivariate_normal.logpdf-1d"),
    P(mvn_pdf, (PTS, MEAN, COV), (0, 1, 2), id="multivariate_normal.pdf"),
    P(mvn_logpdf_stats, (PTS, MEAN, COV + np.triu(np.ones((3, 3)), 1)), (0, 1, 2), id="multivariate_normal.logpdf-upper-ignored"),
    P(mvn_no_mean, (PTS, COV), (0, 1), id="multivariate_normal.logpdf-no-mean"),
    # dirichlet: components along the first axis
    P(dirichlet_logpdf, (SIMPLEX2, ALPHA), (0, 1), id="dirichlet.logpdf"),
    P(dirichlet_logpdf, (SIMPLEX2[:, 0], ALPHA), (0, 1), id="dirichlet.logpdf-one-point"),
    P(dirichlet_pdf, (SIMPLEX2, ALPHA), (0, 1), id="dirichlet.pdf"),
    P(dirichlet_normalized, (WEIGHTS, ALPHA), (0, 1), id="dirichlet.logpdf-all-components"),
    P(dirichlet_pdf_normalized, (WEIGHTS[:, 0], ALPHA), (0, 1), id="dirichlet.pdf-all-components"),
    # scipy.linalg: entries SciPy does not read get no gradient (finite differences agree)
    P(la_solve, (MAT, VEC), (0, 1), id="linalg.solve"),
    P(la_solve, (np.stack([MAT, MAT.T]), RHS), (0, 1), id="linalg.solve-stack"),
    P(la_solve_transposed, (MAT, RHS), (0, 1), id="linalg.solve-transposed"),
    P(la_solve_pos, (SPD + np.triu(MAT, 1), VEC), (0, 1), id="linalg.solve-pos-lower"),
    P(la_solve_sym, (SPD + np.tril(MAT, -1), RHS), (0, 1), id="linalg.solve-sym"),
    P(la_solve_triangular, (MAT, VEC), (0, 1), id="linalg.solve_triangular"),
    P(la_solve_triangular_options, (MAT, RHS), (0, 1), id="linalg.solve_triangular-options"),
    P(la_cholesky, (SPD + np.tril(MAT, -1),), (0,), id="linalg.cholesky-upper"),
    P(la_cholesky_lower, (SPD + np.triu(MAT, 1),), (0,), id="linalg.cholesky-lower"),
    P(la_cho_solve, (np.linalg.cholesky(SPD) + np.triu(MAT, 1), VEC), (0, 1), id="linalg.cho_solve"),
    P(la_cho_solve_upper, (SPD, RHS), (0, 1), id="linalg.cho_solve-upper"),
    P(la_expm, (MAT / 4.0,), (0,), id="linalg.expm"),
    P(la_expm, (np.stack([MAT / 4.0, -MAT.T / 3.0]),), (0,), id="linalg.expm-stack"),
    P(la_expm_scaled, (MAT - 2.0 * np.eye(3), 4.0), (0, 1), id="linalg.expm-squarings"),
]

# Tangents of the cdfs involve log Gamma written out in NumPy (about 1e-15 relative).
RTOL, ATOL = 1e-5, 1e-6


def _flat(value, several):
    if several:
        return np.concatenate([np.ravel(v) for v in value])
    return np.ravel(value)


def _direction(x, rng):
    if isinstance(x, np.ndarray):
        return rng.normal(size=x.shape)
    return float(rng.normal())


def _moved(args, wrt, directions, h):
    args = list(args)
    for p, v in zip(wrt, directions):
        args[p] = args[p] + h * v
    return args


def _directional_difference(f, args, wrt, directions, eps=1e-6):
    up = np.asarray(f(*_moved(args, wrt, directions, eps)), dtype=np.float64)
    down = np.asarray(f(*_moved(args, wrt, directions, -eps)), dtype=np.float64)
    return (up - down) / (2.0 * eps)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "plain"])
@pytest.mark.parametrize("f, args, wrt", CASES)
def test_grad(f, args, wrt, optimized):
    out = tangent.grad(f, wrt=wrt, optimized=optimized, preserve_result=True)(*args)
    grads, value = (out[:-1], out[-1]) if len(wrt) > 1 else (out[0], out[1])
    assert value == pytest.approx(f(*args), rel=1e-12, abs=1e-12)  # SciPy's primal
    expected = numeric_grad(f, args, wrt=wrt)
    assert_close(grads, expected, rtol=RTOL, atol=ATOL)
    for g, p in zip(grads if len(wrt) > 1 else (grads,), wrt):
        assert np.shape(g) == np.shape(args[p])


@pytest.mark.parametrize("f, args, wrt", CASES)
def test_jvp(f, args, wrt):
    rng = np.random.default_rng(3)
    directions = [_direction(args[p], rng) for p in wrt]
    out = tangent.jvp(f, wrt=wrt)(*args, *directions)
    assert_close(out, _directional_difference(f, args, wrt, directions), rtol=RTOL, atol=ATOL, what="jvp")


@pytest.mark.parametrize("f, args, wrt", CASES)
def test_hvp(f, args, wrt):
    """H v against central differences of the generated gradient along v."""
    rng = np.random.default_rng(5)
    directions = [_direction(args[p], rng) for p in wrt]
    several = len(wrt) > 1
    out = tangent.hvp(f, wrt=wrt)(*args, *directions)
    df = tangent.grad(f, wrt=wrt)

    def gradient(*a):
        return _flat(df(*a), several)

    expected = _directional_difference(gradient, args, wrt, directions)
    assert_close(_flat(out, several), expected, rtol=1e-4, atol=1e-5, what="hvp")


def test_every_spelling_resolves_to_the_same_recipe():
    args = (X, LOC, SCALE)
    expected = tangent.grad(norm_logpdf, wrt=(0, 1, 2))(*args)
    for f in (norm_logpdf_st, norm_logpdf_stats, norm_logpdf_scipy):
        assert_close(tangent.grad(f, wrt=(0, 1, 2))(*args), expected, rtol=1e-12, atol=1e-14)


def test_generated_code_does_not_call_scipy():
    """The adjoint is NumPy (and tangent.digamma); the only SciPy call is the user's."""
    source = inspect.getsource(tangent.grad(gamma_logpdf, wrt=(0, 1, 2, 3)))
    code = [line for line in source.splitlines() if not line.strip().startswith("#")]
    uses = [line for line in code if "gamma." in line and "stats.gamma" in line]
    assert len(uses) == 1 and "stats.gamma.logpdf(" in uses[0], source
    assert "tangent.digamma(" in source
    source = inspect.getsource(tangent.grad(norm_cdf, wrt=(0, 1, 2)))
    assert "import scipy" not in source


REFUSED = [
    P(t_cdf, (X, DF, LOC, SCALE), 1, "scipy.stats.t.cdf", "df", id="t.cdf-df"),
    P(t_logsf, (X, 5.0, LOC, SCALE), 1, "scipy.stats.t.logsf", "df", id="t.logsf-df"),
    P(gamma_cdf, (XP, A, LOCP, SCALE), 1, "scipy.stats.gamma.cdf", "a", id="gamma.cdf-a"),
    P(gamma_logcdf, (XP, 0.8, LOCP, SCALE), 1, "scipy.stats.gamma.logcdf", "a", id="gamma.logcdf-a"),
    P(beta_cdf, (XB, A, B, LOCB, 1.2), 2, "scipy.stats.beta.cdf", "b", id="beta.cdf-b"),
    P(beta_sf, (XB, A, B, 0.0, 1.0), 1, "scipy.stats.beta.sf", "a", id="beta.sf-a"),
    P(chi2_sf, (1.3, DF, LOCP, 1.3), 1, "scipy.stats.chi2.sf", "df", id="chi2.sf-df"),
]


@pytest.mark.parametrize("f, args, p, name, param", REFUSED)
def test_cdf_in_shape_parameters_is_refused(f, args, p, name, param):
    message = f"{name} has no closed-form derivative with respect to {param}"
    with pytest.raises(AssertionError, match=message):
        tangent.grad(f, wrt=(0, p))(*args)
    with pytest.raises(AssertionError, match=message):
        tangent.jvp(f, wrt=(p,))(*args, np.ones_like(args[p]))
    # Without that parameter the same call differentiates.
    tangent.grad(f, wrt=(0,))(*args)


def test_multivariate_normal_cdf_has_no_recipe():
    with pytest.raises(tangent.NoRecipeError, match="multivariate_normal.cdf"):
        tangent.grad(mvn_cdf)(PTS[0], MEAN, COV)


def test_multivariate_normal_cov_gradient_lives_on_the_lower_triangle():
    """SciPy reads only cov's lower triangle: the upper one gets no gradient."""
    g = tangent.grad(mvn_logpdf, wrt=2)(PTS, MEAN, COV)
    assert np.all(np.triu(g, 1) == 0.0)
    assert np.any(np.tril(g, -1) != 0.0)


def test_cho_factor_has_no_recipe_and_its_source_stops_at_lapack():
    """No recipe: SciPy's source is followed, to the LAPACK routine it fetches, where the
    refusal is told at SciPy's own line."""
    with pytest.raises(tangent.TangentError) as info:
        tangent.grad(la_cho_factor)(SPD, VEC)
    text = str(info.value)
    assert "_decomp_cholesky.py" in text or "cho_factor" in text, text
