"""Derivatives of the runtime helpers that generated gradients call.

They let a generated gradient be differentiated again: in forward mode, which is how Tangent
builds Hessian-vector products (forward over reverse). Every adjoint helper here is linear in
the adjoints it receives: each tangent is the same helper applied to the tangents, and each
adjoint is the transposed operation. The special functions that derivative recipes call
(`tangent.digamma`, `tangent.polygamma`) are not linear: each one's derivative is the next
polygamma function, so they can be differentiated any number of times.
"""
import numpy
import tangent


@adjoint(tangent.unbroadcast)
def unbroadcast(y, g, x):
    # y sums g down (or broadcasts it up) to x's shape: the adjoint goes back to g's shape.
    gy = tangent.grad_like(d[y], y)
    d[g] = tangent.unbroadcast(tangent.grad_like(gy, g), g)


@tangent_(tangent.unbroadcast)
def unbroadcast(y, g, x):
    d[y] = tangent.unbroadcast(d[g], x)


@adjoint(tangent.unravel)
def unravel(y, g, a, order='C'):
    # y lays the flat g out in a's shape: the adjoint reads it back in ravel's order.
    d[g] = tangent.unbroadcast(tangent.ravel_like(tangent.grad_like(d[y], y), a, order), g)


@tangent_(tangent.unravel)
def unravel(y, g, a, order='C'):
    d[y] = tangent.unravel(d[g], a, order)


@adjoint(tangent.unreduce)
def unreduce(y, g, x, axis=None, keepdims=False):
    gy = tangent.grad_like(d[y], y)
    d[g] = tangent.unbroadcast(numpy.sum(gy, axis=axis, keepdims=keepdims), g)


@tangent_(tangent.unreduce)
def unreduce(y, g, x, axis=None, keepdims=False):
    d[y] = tangent.unreduce(d[g], x, axis, keepdims)


@adjoint(tangent.add_grad)
def add_grad(y, a, b):
    d[a] = tangent.unbroadcast(d[y], a)
    d[b] = tangent.unbroadcast(d[y], b)


@tangent_(tangent.add_grad)
def add_grad(y, a, b):
    # `a` may be a zero adjoint (None, tangent None) while `b` is not: `y` is then not None,
    # and neither may its tangent be (a forward derivative would return None for a zero).
    d[y] = tangent.add_grad(d[a], tangent.init_grad(b) if d[a] is None else None)
    d[y] += d[b]


@adjoint(tangent.attribute_grads)
def attribute_grads(y, g, obj):
    # y is g with zero entries for obj's other attributes: g's adjoint is y's at g's entries.
    d[g] = tangent.attribute_grads_adjoint(d[y], g)


@tangent_(tangent.attribute_grads)
def attribute_grads(y, g, obj):
    d[y] = tangent.attribute_grads(d[g], obj)


@adjoint(tangent.attribute_tangent)
def attribute_tangent(y, t, name, value):
    # y is the entry `name` of the object gradient or tangent t (zeros like value if absent):
    # t's adjoint is y's at that entry, zero at t's others.
    d[t] = tangent.attribute_grads_adjoint(
        tangent.object_tangent(name, tangent.grad_like(d[y], value)), t
    )


@tangent_(tangent.attribute_tangent)
def attribute_tangent(y, t, name, value):
    d[y] = tangent.attribute_tangent(d[t], name, value)


@adjoint(tangent.object_tangent)
def object_tangent(y, name, t):
    d[t] = tangent.attribute_tangent(d[y], name, t)


@tangent_(tangent.object_tangent)
def object_tangent(y, name, t):
    d[y] = tangent.object_tangent(name, d[t])


@adjoint(tangent.add_grad_at)
def add_grad_at(y, b, x, index, g):
    gy = tangent.grad_like(d[y], y)
    d[b] = gy
    d[g] = tangent.unbroadcast(gy[index], g)


@tangent_(tangent.add_grad_at)
def add_grad_at(y, b, x, index, g):
    d[y] = tangent.add_grad_at(d[b], x, index, 0.0)
    d[y] += tangent.add_grad_at(None, x, index, d[g])


@adjoint(tangent.zero_at)
def zero_at(y, b, index):
    d[b] = tangent.zero_at(tangent.grad_like(d[y], y), index)


@tangent_(tangent.zero_at)
def zero_at(y, b, index):
    d[y] = tangent.zero_at(d[b], index)


@adjoint(tangent.copy)
def copy(y, v):
    d[v] = tangent.unbroadcast(d[y], v)


@tangent_(tangent.copy)
def copy(y, v):
    d[y] = tangent.copy(d[v])


@adjoint(tangent.write_into)
def write_into(y, obj, value):
    # The object's old contents are overwritten: only `value` reaches the result.
    d[value] = tangent.unbroadcast(d[y], value)


@tangent_(tangent.write_into)
def write_into(y, obj, value):
    d[y] = tangent.copy(d[value])


@adjoint(tangent.snapshot)
def snapshot(y, v):
    d[v] = tangent.unbroadcast(d[y], v)


@tangent_(tangent.snapshot)
def snapshot(y, v):
    d[y] = tangent.copy(d[v])


@adjoint(tangent.broadcast_into)
def broadcast_into(y, value, like):
    d[value] = tangent.unbroadcast(tangent.grad_like(d[y], y), value)


@tangent_(tangent.broadcast_into)
def broadcast_into(y, value, like):
    d[y] = tangent.broadcast_into(d[value], like)


@adjoint(tangent.matmul_adjoint_a)
def matmul_adjoint_a(y, g, a, b):
    # y = g @ b.T
    gy = tangent.grad_like(d[y], y)
    d[g] = tangent.unbroadcast(numpy.matmul(gy, b), g)
    d[b] = tangent.matmul_adjoint_b(g, gy, b)


@tangent_(tangent.matmul_adjoint_a)
def matmul_adjoint_a(y, g, a, b):
    # g @ b.T: linear in g and in b.
    d[y] = tangent.matmul_adjoint_a(d[g], a, b)
    d[y] += tangent.matmul_adjoint_a(g, a, d[b])


@adjoint(tangent.matmul_adjoint_b)
def matmul_adjoint_b(y, g, a, b):
    # y = a.T @ g
    gy = tangent.grad_like(d[y], y)
    d[g] = tangent.unbroadcast(numpy.matmul(a, gy), g)
    d[a] = tangent.matmul_adjoint_a(g, a, gy)


@tangent_(tangent.matmul_adjoint_b)
def matmul_adjoint_b(y, g, a, b):
    # a.T @ g: linear in g and in a.
    d[y] = tangent.matmul_adjoint_b(d[g], a, b)
    d[y] += tangent.matmul_adjoint_b(g, d[a], b)


@adjoint(tangent.dot_adjoint_a)
def dot_adjoint_a(y, g, a, b):
    # Vectors and matrices: as matmul_adjoint_a.
    gy = tangent.grad_like(d[y], y)
    d[g] = tangent.unbroadcast(numpy.matmul(gy, b), g)
    d[b] = tangent.dot_adjoint_b(g, gy, b)


@tangent_(tangent.dot_adjoint_a)
def dot_adjoint_a(y, g, a, b):
    d[y] = tangent.dot_adjoint_a(d[g], a, b)
    d[y] += tangent.dot_adjoint_a(g, a, d[b])


@adjoint(tangent.dot_adjoint_b)
def dot_adjoint_b(y, g, a, b):
    gy = tangent.grad_like(d[y], y)
    d[g] = tangent.unbroadcast(numpy.matmul(a, gy), g)
    d[a] = tangent.dot_adjoint_a(g, a, gy)


@tangent_(tangent.dot_adjoint_b)
def dot_adjoint_b(y, g, a, b):
    d[y] = tangent.dot_adjoint_b(d[g], a, b)
    d[y] += tangent.dot_adjoint_b(g, d[a], b)


@adjoint(tangent.save_item)
def save_item(y, container, index):
    # A copy of container[index], saved before it is overwritten.
    d[container] = tangent.add_grad_at(None, container, index, d[y])


@tangent_(tangent.save_item)
def save_item(y, container, index):
    d[y] = tangent.save_item(d[container], index)


@adjoint(tangent.appended)
def appended(y, items, value):
    gy = tangent.grad_like(d[y], y)
    d[items] = gy[:-1]
    d[value] = tangent.unbroadcast(gy[-1], value)


@tangent_(tangent.appended)
def appended(y, items, value):
    d[y] = tangent.appended(d[items], tangent.init_grad(value))
    d[y] += tangent.appended(tangent.init_grad(items), d[value])


@adjoint(tangent.split_like)
def split_like(y, g, parts, axis, ndmin=0):
    d[g] = tangent.join_like(tangent.grad_like(d[y], y), parts, axis, ndmin)


@tangent_(tangent.split_like)
def split_like(y, g, parts, axis, ndmin=0):
    d[y] = tangent.split_like(d[g], parts, axis, ndmin)


@adjoint(tangent.join_like)
def join_like(y, pieces, parts, axis, ndmin=0):
    d[pieces] = tangent.split_like(tangent.grad_like(d[y], y), parts, axis, ndmin)


@tangent_(tangent.join_like)
def join_like(y, pieces, parts, axis, ndmin=0):
    d[y] = tangent.join_like(d[pieces], parts, axis, ndmin)


@adjoint(tangent.unstack)
def unstack(y, g, parts, axis):
    d[g] = numpy.stack(tangent.grad_like(d[y], y), axis)


@tangent_(tangent.unstack)
def unstack(y, g, parts, axis):
    d[y] = tangent.unstack(d[g], parts, axis)


@adjoint(tangent.to_rows)
def to_rows(y, a, axis=None):
    d[a] = tangent.from_rows(tangent.grad_like(d[y], y), a, axis)


@tangent_(tangent.to_rows)
def to_rows(y, a, axis=None):
    d[y] = tangent.to_rows(d[a], axis)


@adjoint(tangent.from_rows)
def from_rows(y, m, like, axis=None):
    d[m] = tangent.to_rows(tangent.grad_like(d[y], y), axis)


@tangent_(tangent.from_rows)
def from_rows(y, m, like, axis=None):
    d[y] = tangent.from_rows(d[m], like, axis)


@adjoint(tangent.diagonal_like)
def diagonal_like(y, g, like, offset=0, axis1=0, axis2=1):
    d[g] = numpy.diagonal(tangent.grad_like(d[y], y), offset, axis1, axis2)


@tangent_(tangent.diagonal_like)
def diagonal_like(y, g, like, offset=0, axis1=0, axis2=1):
    d[y] = tangent.diagonal_like(d[g], like, offset, axis1, axis2)


@adjoint(tangent.scatter_along_axis)
def scatter_along_axis(y, g, indices, axis, like):
    source = numpy.ravel(tangent.grad_like(d[y], y)) if axis is None else tangent.grad_like(d[y], y)
    d[g] = numpy.take_along_axis(source, indices, -1 if axis is None else axis)


@tangent_(tangent.scatter_along_axis)
def scatter_along_axis(y, g, indices, axis, like):
    d[y] = tangent.scatter_along_axis(d[g], indices, axis, like)


@adjoint(tangent.grad_like)
def grad_like(y, g, like):
    d[g] = tangent.unbroadcast(tangent.grad_like(d[y], y), g)


@tangent_(tangent.grad_like)
def grad_like(y, g, like):
    d[y] = tangent.grad_like(d[g], like)


# tangent.einsum (numpy.einsum of the operands that are not None) shares numpy.einsum's
# templates: see recipes/numpy.py.


@adjoint(tangent.einsum_adjoint)
def einsum_adjoint(y, g, subscripts, k, operand0, operand1=None, operand2=None):
    # y is the einsum of g with the operands other than the k-th (which only gives y its
    # shape): linear in g and in each of them. Its adjoint for g is the original einsum with
    # operand k replaced by gy (the adjoint of y); for another operand j, einsum_adjoint of j
    # with operand k replaced by gy. Operand k itself gets nothing.
    gy = tangent.grad_like(d[y], y)
    in0 = gy if k == 0 else operand0
    in1 = gy if k == 1 else operand1
    in2 = gy if k == 2 else operand2
    d[g] = tangent.unbroadcast(tangent.einsum(subscripts, in0, in1, in2), g)
    d[operand0] = tangent.init_grad(operand0) if k == 0 else tangent.einsum_adjoint(g, subscripts, 0, in0, in1, in2)
    d[operand1] = tangent.init_grad(operand1) if k == 1 else tangent.einsum_adjoint(g, subscripts, 1, in0, in1, in2)
    d[operand2] = tangent.init_grad(operand2) if k == 2 else tangent.einsum_adjoint(g, subscripts, 2, in0, in1, in2)


@tangent_(tangent.einsum_adjoint)
def einsum_adjoint(y, g, subscripts, k, operand0, operand1=None, operand2=None):
    # Linear in g and in every operand but the k-th, whose tangent changes nothing.
    d[y] = tangent.einsum_adjoint(d[g], subscripts, k, operand0, operand1, operand2)
    d[y] += tangent.init_grad(y) if k == 0 else tangent.einsum_adjoint(g, subscripts, k, d[operand0], operand1, operand2)
    d[y] += tangent.init_grad(y) if k == 1 else tangent.einsum_adjoint(g, subscripts, k, operand0, d[operand1], operand2)
    d[y] += tangent.init_grad(y) if k == 2 else tangent.einsum_adjoint(g, subscripts, k, operand0, operand1, d[operand2])


@adjoint(tangent.digamma)
def digamma(y, x):
    d[x] = d[y] * tangent.polygamma(1, x)


@tangent_(tangent.digamma)
def digamma(y, x):
    d[y] = d[x] * tangent.polygamma(1, x)


@adjoint(tangent.polygamma)
def polygamma(y, n, x):
    # The order n is an integer: only x has a derivative, the polygamma function of order n + 1.
    d[x] = tangent.unbroadcast(d[y] * tangent.polygamma(n + 1, x), x)


@tangent_(tangent.polygamma)
def polygamma(y, n, x):
    d[y] = d[x] * tangent.polygamma(n + 1, x)


nondifferentiable(tangent.init_grad, tangent.Stack, tangent.in_place_check, tangent.check_updated, tangent.is_mutable, tangent.check_unchanged, tangent.is_view_of, tangent.keys_of)


@adjoint(tangent.sequence_like)
def sequence_like(y, g, like):
    # y lays g's items out as like's: the adjoint lays them back out as g's.
    d[g] = tangent.sequence_like(tangent.grad_like(d[y], y), g)


@tangent_(tangent.sequence_like)
def sequence_like(y, g, like):
    d[y] = tangent.sequence_like(d[g], like)
