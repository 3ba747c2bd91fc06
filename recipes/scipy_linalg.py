"""Adjoints of `scipy.linalg` solvers and factorizations: `solve`, `solve_triangular`,
`cholesky`, `cho_solve` and `expm`, mirroring `numpy.linalg`'s recipes.

Registered under canonical names (`scipy.linalg.solve`), which `from scipy.linalg import
solve`, `import scipy.linalg as sl` and `from scipy import linalg` all resolve to. As in
scipy.py, generated code never imports SciPy: the templates use NumPy only (a triangular or
Cholesky system is solved again with `numpy.linalg.solve`, which costs more than SciPy's
triangular solvers but needs nothing else). Keyword defaults fold away: with the defaults, the
code is the general case.

SciPy reads only part of the matrix in several cases, and the adjoint lives on that part (an
entry SciPy does not read gets no gradient; an entry below the diagonal of a symmetric matrix
read from its lower triangle stands for itself and its mirror image):
- `solve(a, b, assume_a=...)`: 'sym'/'her'/'pos' (and their long names) read the triangle
  `lower` names (upper by default), 'upper triangular'/'lower triangular' that triangle,
  'diagonal' the diagonal, 'tridiagonal' the three diagonals; None (structure detected from the
  values), 'gen' and 'banded' the whole matrix. `transposed=True` solves a^T x = b.
- `cholesky(a, lower=False)`: SciPy returns the UPPER factor U (a = U^T U) by default and reads
  a's upper triangle (the lower one with lower=True): `numpy.linalg.cholesky(a, upper=not
  lower)`.
- `solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False)`: the triangle `lower`
  names, without its diagonal when `unit_diagonal`; `trans` 1, 2, 'T' or 'C' (real matrices:
  the same) solves with its transpose.
- `cho_solve((c, lower), b)` reads the factor from c's triangle `lower` names (c may come from
  `cholesky(a, lower=lower)`; `cho_factor` has no recipe yet); its adjoint for the pair
  `(c, lower)` is `(adjoint of c, 0.0)`.
A 1-D b is one vector; otherwise b is a matrix (or a stack of them) of right-hand sides.
`expm(A)` (stacks too) is differentiated by the Frechet derivative of a NumPy Pade
approximant, as SciPy's `expm_frechet` does (see the comment above its recipes); its second
derivatives go through `numpy.linalg.matrix_power`'s recipe.
"""
import numpy
import scipy.linalg
import tangent


# ---------------------------------------------------------------- solve


@adjoint(scipy.linalg.solve)
def solve(x, a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True, assume_a=None, transposed=False):
    # m: the matrix SciPy solves with (the part of a it reads, by assume_a; the conditions fold
    # away for the defaults), op = m or m^T. With x = op^-1 b: d[b] = op^-T g, and op's adjoint
    # -d[b] x^T goes back to the entries of a that m reads.
    m = (a if assume_a is None or assume_a in ('gen', 'general', 'banded')
         else (numpy.tril(a) + numpy.swapaxes(numpy.tril(a, -1), -1, -2) if lower else numpy.triu(a) + numpy.swapaxes(numpy.triu(a, 1), -1, -2))
         if assume_a in ('sym', 'symmetric', 'her', 'hermitian', 'pos', 'positive definite')
         else a * (numpy.triu(numpy.ones(numpy.shape(a)[-2:])) if assume_a == 'upper triangular'
                   else numpy.tril(numpy.ones(numpy.shape(a)[-2:])) if assume_a == 'lower triangular'
                   else numpy.eye(numpy.shape(a)[-1]) if assume_a == 'diagonal'
                   else numpy.tril(numpy.triu(numpy.ones(numpy.shape(a)[-2:]), -1), 1)))
    op = numpy.swapaxes(m, -1, -2) if transposed else m
    vector = numpy.ndim(b) == 1
    g = tangent.grad_like(d[x], x)
    g_m = numpy.expand_dims(g, -1) if vector else g
    x_m = numpy.expand_dims(x, -1) if vector else x
    g_b = numpy.linalg.solve(numpy.swapaxes(op, -1, -2), g_m)
    g_op = -numpy.matmul(g_b, numpy.swapaxes(x_m, -1, -2))
    g_a = numpy.swapaxes(g_op, -1, -2) if transposed else g_op
    d[a] = tangent.unbroadcast(
        g_a if assume_a is None or assume_a in ('gen', 'general', 'banded')
        else (numpy.tril(g_a + numpy.swapaxes(g_a, -1, -2)) if lower else numpy.triu(g_a + numpy.swapaxes(g_a, -1, -2))) - g_a * numpy.eye(numpy.shape(a)[-1])
        if assume_a in ('sym', 'symmetric', 'her', 'hermitian', 'pos', 'positive definite')
        else g_a * (numpy.triu(numpy.ones(numpy.shape(a)[-2:])) if assume_a == 'upper triangular'
                    else numpy.tril(numpy.ones(numpy.shape(a)[-2:])) if assume_a == 'lower triangular'
                    else numpy.eye(numpy.shape(a)[-1]) if assume_a == 'diagonal'
                    else numpy.tril(numpy.triu(numpy.ones(numpy.shape(a)[-2:]), -1), 1)), a)
    d[b] = tangent.unbroadcast(g_b[..., 0] if vector else g_b, b)


@tangent_(scipy.linalg.solve)
def solve(x, a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True, assume_a=None, transposed=False):
    # op x = b, so op dx = db - dop x, with dop the same part of d[a] (transposed likewise).
    m = (a if assume_a is None or assume_a in ('gen', 'general', 'banded')
         else (numpy.tril(a) + numpy.swapaxes(numpy.tril(a, -1), -1, -2) if lower else numpy.triu(a) + numpy.swapaxes(numpy.triu(a, 1), -1, -2))
         if assume_a in ('sym', 'symmetric', 'her', 'hermitian', 'pos', 'positive definite')
         else a * (numpy.triu(numpy.ones(numpy.shape(a)[-2:])) if assume_a == 'upper triangular'
                   else numpy.tril(numpy.ones(numpy.shape(a)[-2:])) if assume_a == 'lower triangular'
                   else numpy.eye(numpy.shape(a)[-1]) if assume_a == 'diagonal'
                   else numpy.tril(numpy.triu(numpy.ones(numpy.shape(a)[-2:]), -1), 1)))
    op = numpy.swapaxes(m, -1, -2) if transposed else m
    x_m = numpy.expand_dims(x, -1) if numpy.ndim(b) == 1 else x
    d[x] = numpy.reshape(numpy.linalg.solve(op, -numpy.matmul(numpy.swapaxes(
        d[a] if assume_a is None or assume_a in ('gen', 'general', 'banded')
        else ((numpy.tril(d[a]) + numpy.swapaxes(numpy.tril(d[a], -1), -1, -2) if lower else numpy.triu(d[a]) + numpy.swapaxes(numpy.triu(d[a], 1), -1, -2))
        if assume_a in ('sym', 'symmetric', 'her', 'hermitian', 'pos', 'positive definite')
        else d[a] * (numpy.triu(numpy.ones(numpy.shape(a)[-2:])) if assume_a == 'upper triangular' else numpy.tril(numpy.ones(numpy.shape(a)[-2:]))
        if assume_a == 'lower triangular' else numpy.eye(numpy.shape(a)[-1]) if assume_a == 'diagonal' else numpy.tril(numpy.triu(numpy.ones(numpy.shape(a)[-2:]), -1), 1))), -1, -2)
        if transposed else (
        d[a] if assume_a is None or assume_a in ('gen', 'general', 'banded')
        else ((numpy.tril(d[a]) + numpy.swapaxes(numpy.tril(d[a], -1), -1, -2) if lower else numpy.triu(d[a]) + numpy.swapaxes(numpy.triu(d[a], 1), -1, -2))
        if assume_a in ('sym', 'symmetric', 'her', 'hermitian', 'pos', 'positive definite')
        else d[a] * (numpy.triu(numpy.ones(numpy.shape(a)[-2:])) if assume_a == 'upper triangular' else numpy.tril(numpy.ones(numpy.shape(a)[-2:]))
        if assume_a == 'lower triangular' else numpy.eye(numpy.shape(a)[-1]) if assume_a == 'diagonal' else numpy.tril(numpy.triu(numpy.ones(numpy.shape(a)[-2:]), -1), 1)))), x_m)), numpy.shape(x))
    d[x] += numpy.reshape(numpy.linalg.solve(op, numpy.expand_dims(d[b], -1) if numpy.ndim(b) == 1 else d[b]), numpy.shape(x))


# ---------------------------------------------------------------- solve_triangular


@adjoint(scipy.linalg.solve_triangular)
def solve_triangular(x, a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False, check_finite=True):
    # m: the triangle of a SciPy reads (ones on the diagonal when unit_diagonal), op = m or m^T;
    # as solve, with op's adjoint passed back to that triangle.
    n = numpy.shape(a)[-1]
    m = (numpy.tril(a, -1) if lower else numpy.triu(a, 1)) + numpy.eye(n) if unit_diagonal else (numpy.tril(a) if lower else numpy.triu(a))
    op = numpy.swapaxes(m, -1, -2) if trans != 0 and trans != 'N' else m
    vector = numpy.ndim(b) == 1
    g = tangent.grad_like(d[x], x)
    g_m = numpy.expand_dims(g, -1) if vector else g
    x_m = numpy.expand_dims(x, -1) if vector else x
    g_b = numpy.linalg.solve(numpy.swapaxes(op, -1, -2), g_m)
    g_op = -numpy.matmul(g_b, numpy.swapaxes(x_m, -1, -2))
    g_m_ = numpy.swapaxes(g_op, -1, -2) if trans != 0 and trans != 'N' else g_op
    d[a] = tangent.unbroadcast(numpy.tril(g_m_, -1 if unit_diagonal else 0) if lower else numpy.triu(g_m_, 1 if unit_diagonal else 0), a)
    d[b] = tangent.unbroadcast(g_b[..., 0] if vector else g_b, b)


@tangent_(scipy.linalg.solve_triangular)
def solve_triangular(x, a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False, check_finite=True):
    n = numpy.shape(a)[-1]
    m = (numpy.tril(a, -1) if lower else numpy.triu(a, 1)) + numpy.eye(n) if unit_diagonal else (numpy.tril(a) if lower else numpy.triu(a))
    op = numpy.swapaxes(m, -1, -2) if trans != 0 and trans != 'N' else m
    x_m = numpy.expand_dims(x, -1) if numpy.ndim(b) == 1 else x
    d[x] = numpy.reshape(numpy.linalg.solve(op, -numpy.matmul(
        numpy.swapaxes(numpy.tril(d[a], -1 if unit_diagonal else 0) if lower else numpy.triu(d[a], 1 if unit_diagonal else 0), -1, -2)
        if trans != 0 and trans != 'N'
        else (numpy.tril(d[a], -1 if unit_diagonal else 0) if lower else numpy.triu(d[a], 1 if unit_diagonal else 0)), x_m)), numpy.shape(x))
    d[x] += numpy.reshape(numpy.linalg.solve(op, numpy.expand_dims(d[b], -1) if numpy.ndim(b) == 1 else d[b]), numpy.shape(x))


# ---------------------------------------------------------------- cholesky


@adjoint(scipy.linalg.cholesky)
def cholesky(y, a, lower=False, overwrite_a=False, check_finite=True):
    # numpy.linalg.cholesky(a, upper=not lower): SciPy's default is the upper factor, from a's
    # upper triangle. With L the lower factor (y^T by default) and Lbar its adjoint,
    #     P = L^-T Phi(L^T Lbar) L^-1    (Phi: the lower triangle, diagonal halved)
    # is the adjoint for symmetric changes of the matrix; an entry off the diagonal stands for
    # itself and its mirror image, so it gets P_ij + P_ji, in the triangle SciPy reads.
    # `numpy.swapaxes(v, -1, mirror)` transposes v by default and leaves it as is with lower=True.
    mirror = -1 if lower else -2
    eye = numpy.eye(numpy.shape(y)[-1])
    l = numpy.swapaxes(y, -1, mirror)
    l_inv = numpy.linalg.inv(l)
    l_bar = numpy.swapaxes(tangent.grad_like(d[y], y), -1, mirror)
    phi = numpy.tril(numpy.matmul(numpy.swapaxes(l, -1, -2), l_bar) * (1.0 - 0.5 * eye))
    p = numpy.matmul(numpy.swapaxes(l_inv, -1, -2), numpy.matmul(phi, l_inv))
    d[a] = numpy.swapaxes(numpy.tril(p + numpy.swapaxes(p, -1, -2)) - p * eye, -1, mirror)


@tangent_(scipy.linalg.cholesky)
def cholesky(y, a, lower=False, overwrite_a=False, check_finite=True):
    # A = L L^T, so dL = L Phi(L^-1 dA L^-T) with dA the symmetric change SciPy sees (the read
    # triangle of d[a], in the lower factor's orientation, and its mirror image).
    mirror = -1 if lower else -2
    eye = numpy.eye(numpy.shape(y)[-1])
    l = numpy.swapaxes(y, -1, mirror)
    l_inv = numpy.linalg.inv(l)
    l_inv_t = numpy.swapaxes(l_inv, -1, -2)
    d[y] = numpy.swapaxes(numpy.matmul(l, numpy.tril((1.0 - 0.5 * eye) * numpy.matmul(l_inv, numpy.matmul(
        numpy.tril(numpy.swapaxes(d[a], -1, mirror))
        + numpy.swapaxes(numpy.tril(numpy.swapaxes(d[a], -1, mirror), -1), -1, -2), l_inv_t)))), -1, mirror)


# ---------------------------------------------------------------- cho_solve


@adjoint(scipy.linalg.cho_solve)
def cho_solve(x, c_and_lower, b, overwrite_b=False, check_finite=True):
    # x = A^-1 b with A = L L^T, L the lower factor (c's lower triangle, or its upper one
    # transposed). d[b] = A^-1 g; A's adjoint G = -d[b] x^T gives L the adjoint (G + G^T) L, on
    # the triangle of c that holds the factor.
    c = c_and_lower[0]
    lower = c_and_lower[1]
    l = numpy.tril(c) if lower else numpy.swapaxes(numpy.triu(c), -1, -2)
    vector = numpy.ndim(b) == 1
    g = tangent.grad_like(d[x], x)
    g_m = numpy.expand_dims(g, -1) if vector else g
    x_m = numpy.expand_dims(x, -1) if vector else x
    g_b = numpy.linalg.solve(numpy.matmul(l, numpy.swapaxes(l, -1, -2)), g_m)
    g_a = -numpy.matmul(g_b, numpy.swapaxes(x_m, -1, -2))
    g_l = numpy.tril(numpy.matmul(g_a + numpy.swapaxes(g_a, -1, -2), l))
    d[c_and_lower] = (tangent.unbroadcast(g_l if lower else numpy.swapaxes(g_l, -1, -2), c), 0.0)
    d[b] = tangent.unbroadcast(g_b[..., 0] if vector else g_b, b)


@tangent_(scipy.linalg.cho_solve)
def cho_solve(x, c_and_lower, b, overwrite_b=False, check_finite=True):
    # A x = b, A = L L^T: A dx = db - (dL L^T + L dL^T) x.
    c = c_and_lower[0]
    lower = c_and_lower[1]
    l = numpy.tril(c) if lower else numpy.swapaxes(numpy.triu(c), -1, -2)
    a = numpy.matmul(l, numpy.swapaxes(l, -1, -2))
    x_m = numpy.expand_dims(x, -1) if numpy.ndim(b) == 1 else x
    d[x] = numpy.reshape(numpy.linalg.solve(a, -numpy.matmul(
        numpy.matmul(numpy.tril(d[c_and_lower][0]) if lower else numpy.swapaxes(numpy.triu(d[c_and_lower][0]), -1, -2), numpy.swapaxes(l, -1, -2))
        + numpy.matmul(l, numpy.swapaxes(numpy.tril(d[c_and_lower][0]) if lower else numpy.swapaxes(numpy.triu(d[c_and_lower][0]), -1, -2), -1, -2)),
        x_m)), numpy.shape(x))
    d[x] += numpy.reshape(numpy.linalg.solve(a, numpy.expand_dims(d[b], -1) if numpy.ndim(b) == 1 else d[b]), numpy.shape(x))


# ---------------------------------------------------------------- expm
#
# The Frechet derivative L(A, E) of the matrix exponential, by Al-Mohy and Higham's method
# (SciPy's `expm_frechet`): the [13/13] Pade approximant r = (V - U)^-1 (V + U) of exp(A / 2^s),
# with s squarings (s from A's 1-norm and theta_13 = 5.37...), differentiated along E / 2^s
# (M2, M4, M6: the derivatives of the even powers; Lu, Lv: of U and V; the coefficients are
# Higham's b_13 ... b_0); the squarings are done
# at once as the power 2^s of the block matrix [[R, L], [0, R]], whose top-right block is the
# derivative of R^(2^s). The adjoint is L(A^T, G). Differentiating again goes through
# `numpy.linalg.matrix_power`'s recipe. Stacks of matrices share one s (the largest norm's).
# In the tangent template, `0.0 * d[A]` only marks a statement as reading A's tangent (the rule
# for locals computed from a tangent); it adds nothing.


@adjoint(scipy.linalg.expm)
def expm(y, A):
    n = numpy.shape(A)[-1]
    eye = numpy.eye(n)
    a_t = numpy.swapaxes(A, -1, -2)
    squarings = numpy.ceil(numpy.maximum(0.0, numpy.log2(numpy.maximum(numpy.max(numpy.sum(numpy.abs(A), axis=-1)), 1e-300) / 5.371920351148152)))
    scale = numpy.exp2(squarings)
    a1 = a_t / scale
    a2 = numpy.matmul(a1, a1)
    a4 = numpy.matmul(a2, a2)
    a6 = numpy.matmul(a4, a2)
    w1 = 1.0 * a6 + 16380.0 * a4 + 40840800.0 * a2
    w2 = 33522128640.0 * a6 + 10559470521600.0 * a4 + 1187353796428800.0 * a2 + 32382376266240000.0 * eye
    z1 = 182.0 * a6 + 960960.0 * a4 + 1323241920.0 * a2
    z2 = 670442572800.0 * a6 + 129060195264000.0 * a4 + 7771770303897600.0 * a2 + 64764752532480000.0 * eye
    w = numpy.matmul(a6, w1) + w2
    u = numpy.matmul(a1, w)
    v = numpy.matmul(a6, z1) + z2
    r = numpy.linalg.solve(v - u, v + u)
    e1 = tangent.grad_like(d[y], y) / scale
    m2 = numpy.matmul(a1, e1) + numpy.matmul(e1, a1)
    m4 = numpy.matmul(a2, m2) + numpy.matmul(m2, a2)
    m6 = numpy.matmul(a4, m2) + numpy.matmul(m4, a2)
    lw = numpy.matmul(a6, 1.0 * m6 + 16380.0 * m4 + 40840800.0 * m2) + numpy.matmul(m6, w1) + 33522128640.0 * m6 + 10559470521600.0 * m4 + 1187353796428800.0 * m2
    lu = numpy.matmul(a1, lw) + numpy.matmul(e1, w)
    lv = numpy.matmul(a6, 182.0 * m6 + 960960.0 * m4 + 1323241920.0 * m2) + numpy.matmul(m6, z1) + 670442572800.0 * m6 + 129060195264000.0 * m4 + 7771770303897600.0 * m2
    l = numpy.linalg.solve(v - u, lu + lv + numpy.matmul(lu - lv, r))
    d[A] = numpy.linalg.matrix_power(numpy.concatenate((numpy.concatenate((r, l), axis=-1), numpy.concatenate((numpy.zeros_like(r), r), axis=-1)), axis=-2), numpy.int64(scale))[..., :n, n:]


@tangent_(scipy.linalg.expm)
def expm(y, A):
    n = numpy.shape(A)[-1]
    eye = numpy.eye(n)
    squarings = numpy.ceil(numpy.maximum(0.0, numpy.log2(numpy.maximum(numpy.max(numpy.sum(numpy.abs(A), axis=-2)), 1e-300) / 5.371920351148152)))
    scale = numpy.exp2(squarings)
    a1 = A / scale
    a2 = numpy.matmul(a1, a1)
    a4 = numpy.matmul(a2, a2)
    a6 = numpy.matmul(a4, a2)
    w1 = 1.0 * a6 + 16380.0 * a4 + 40840800.0 * a2
    w2 = 33522128640.0 * a6 + 10559470521600.0 * a4 + 1187353796428800.0 * a2 + 32382376266240000.0 * eye
    z1 = 182.0 * a6 + 960960.0 * a4 + 1323241920.0 * a2
    z2 = 670442572800.0 * a6 + 129060195264000.0 * a4 + 7771770303897600.0 * a2 + 64764752532480000.0 * eye
    w = numpy.matmul(a6, w1) + w2
    u = numpy.matmul(a1, w)
    v = numpy.matmul(a6, z1) + z2
    r = numpy.linalg.solve(v - u, v + u)
    m2 = (numpy.matmul(a1, d[A]) + numpy.matmul(d[A], a1)) / scale
    m4 = numpy.matmul(a2, m2) + numpy.matmul(m2, a2) + 0.0 * d[A]
    m6 = numpy.matmul(a4, m2) + numpy.matmul(m4, a2) + 0.0 * d[A]
    lw = numpy.matmul(a6, 1.0 * m6 + 16380.0 * m4 + 40840800.0 * m2) + numpy.matmul(m6, w1) + 33522128640.0 * m6 + 10559470521600.0 * m4 + 1187353796428800.0 * m2 + 0.0 * d[A]
    lu = numpy.matmul(a1, lw) + numpy.matmul(d[A] / scale, w)
    lv = numpy.matmul(a6, 182.0 * m6 + 960960.0 * m4 + 1323241920.0 * m2) + numpy.matmul(m6, z1) + 670442572800.0 * m6 + 129060195264000.0 * m4 + 7771770303897600.0 * m2 + 0.0 * d[A]
    d[y] = numpy.linalg.matrix_power(numpy.concatenate((numpy.concatenate((r, numpy.linalg.solve(v - u, lu + lv + numpy.matmul(lu - lv, r) + 0.0 * d[A])), axis=-1), numpy.concatenate((numpy.zeros_like(r), r), axis=-1)), axis=-2), numpy.int64(scale))[..., :n, n:]
