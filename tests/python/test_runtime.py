"""Unit tests of the runtime called by generated code (tangent/runtime.py)."""

import pickle

import numpy
import pytest
from numpy.testing import assert_array_equal

import tangent
from tangent import (
    Stack,
    add_grad,
    add_grad_at,
    copy,
    init_grad,
    insert_grad_of,
    pop,
    push,
    restore_item,
    save_item,
    unbroadcast,
    unreduce,
    zero_at,
)


def assert_fresh(result, *inputs):
    """``result`` is a writable array sharing no memory with any input."""
    assert isinstance(result, numpy.ndarray)
    assert result.flags.writeable
    for x in inputs:
        if isinstance(x, numpy.ndarray):
            assert not numpy.shares_memory(result, x)


# --------------------------------------------------------------------------------------------
# Stack


class TestStack:
    def test_lifo(self):
        s = Stack()
        push(s, 1)
        push(s, "two")
        push(s, None)
        assert len(s) == 3
        assert pop(s) is None
        assert pop(s) == "two"
        assert pop(s) == 1
        assert len(s) == 0

    def test_pop_empty_is_clear(self):
        s = Stack()
        with pytest.raises(IndexError, match="stack is empty"):
            pop(s)
        push(s, 1.0)
        pop(s)
        with pytest.raises(IndexError, match="popped more values than the forward pass pushed"):
            pop(s)

    def test_push_keeps_identity(self):
        s = Stack()
        a = numpy.ones(3)
        push(s, a)
        assert pop(s) is a

    def test_copy_before_push_protects_value(self):
        s = Stack()
        a = numpy.arange(4.0)
        push(s, copy(a[1:3]))
        a[:] = -1
        assert_array_equal(pop(s), [1.0, 2.0])

    def test_repr_and_pickle(self):
        s = Stack()
        push(s, 1.5)
        assert "1.5" in repr(s)
        t = pickle.loads(pickle.dumps(s))
        assert isinstance(t, Stack)
        assert pop(t) == 1.5

    def test_independent_stacks(self):
        a, b = Stack(), Stack()
        push(a, 1)
        assert len(b) == 0


# --------------------------------------------------------------------------------------------
# init_grad


class TestInitGrad:
    @pytest.mark.parametrize("x", [3.0, 2, True, numpy.float32(1.5), numpy.int64(3), numpy.bool_(1)])
    def test_real_scalars(self, x):
        z = init_grad(x)
        assert z == 0.0 and type(z) is float

    @pytest.mark.parametrize("x", [1j, 2 + 3j, numpy.complex128(1j), numpy.complex64(1)])
    def test_complex_scalars(self, x):
        z = init_grad(x)
        assert z == 0 and type(z) is complex

    def test_none(self):
        assert init_grad(None) is None

    @pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32, numpy.complex128])
    def test_float_arrays_keep_dtype(self, dtype):
        x = numpy.ones((2, 3), dtype=dtype)
        z = init_grad(x)
        assert z.shape == (2, 3) and z.dtype == dtype and not z.any()
        assert not numpy.shares_memory(z, x)

    @pytest.mark.parametrize("dtype", [numpy.int32, numpy.int64, numpy.bool_, numpy.uint8])
    def test_int_arrays_give_float64(self, dtype):
        z = init_grad(numpy.ones((4,), dtype=dtype))
        assert z.dtype == numpy.float64 and z.shape == (4,) and not z.any()

    def test_zero_d_array(self):
        z = init_grad(numpy.array(2.0))
        assert isinstance(z, numpy.ndarray) and z.shape == () and z == 0

    def test_empty_array(self):
        assert init_grad(numpy.zeros((0, 3))).shape == (0, 3)

    def test_structures(self):
        x = [1.0, numpy.ones(2), (3, {"a": 2.0, "b": [1.0]}), None]
        z = init_grad(x)
        assert isinstance(z, list) and len(z) == 4
        assert z[0] == 0.0
        assert_array_equal(z[1], [0.0, 0.0])
        assert isinstance(z[2], tuple)
        assert z[2][0] == 0.0
        assert z[2][1] == {"a": 0.0, "b": [0.0]}
        assert z[3] is None

    def test_empty_structures(self):
        assert init_grad([]) == []
        assert init_grad(()) == ()
        assert init_grad({}) == {}

    def test_non_numeric_leaves_are_zero(self):
        assert init_grad("name") is None
        assert init_grad(["a", 1.0]) == [None, 0.0]

    def test_unknown_object_raises(self):
        with pytest.raises(TypeError, match="object"):
            init_grad(object())  # no attributes it could hold parameters in

    def test_an_object_without_attributes_is_an_empty_container(self):
        class Tanh:  # a stateless layer held by a model
            def fn(self, z):
                return z

        assert init_grad(Tanh()) == {}


# --------------------------------------------------------------------------------------------
# add_grad


class TestAddGrad:
    def test_numbers(self):
        assert add_grad(1.5, 2.0) == 3.5
        assert add_grad(1j, 1.0) == 1 + 1j

    def test_none_is_zero(self):
        assert add_grad(None, None) is None
        assert add_grad(None, 2.0) == 2.0
        assert add_grad(2.0, None) == 2.0

    def test_none_with_array_returns_copy(self):
        a = numpy.arange(3.0)
        for r in (add_grad(None, a), add_grad(a, None)):
            assert_array_equal(r, a)
            assert_fresh(r, a)

    def test_arrays_new_object(self):
        a = numpy.ones(3)
        b = numpy.arange(3.0)
        r = add_grad(a, b)
        assert_array_equal(r, [1.0, 2.0, 3.0])
        assert_fresh(r, a, b)
        r[:] = 0
        assert_array_equal(a, [1.0, 1.0, 1.0])

    def test_array_and_scalar(self):
        assert_array_equal(add_grad(numpy.ones(2), 2.0), [3.0, 3.0])
        assert_array_equal(add_grad(2.0, numpy.ones(2)), [3.0, 3.0])

    def test_array_broadcast(self):
        r = add_grad(numpy.ones((2, 1)), numpy.ones(3))
        assert r.shape == (2, 3)

    def test_lists_elementwise(self):
        r = add_grad([1.0, numpy.ones(2), None], [2.0, numpy.ones(2), 3.0])
        assert isinstance(r, list)
        assert r[0] == 3.0
        assert_array_equal(r[1], [2.0, 2.0])
        assert r[2] == 3.0

    def test_tuples_elementwise(self):
        r = add_grad((1.0, None), (None, 2.0))
        assert r == (1.0, 2.0) and isinstance(r, tuple)

    def test_nested_none_entries(self):
        assert add_grad([None, [None, 1.0]], [1.0, [2.0, None]]) == [1.0, [2.0, 1.0]]

    def test_length_mismatch(self):
        with pytest.raises(ValueError, match="lengths 2 and 3"):
            add_grad([1.0, 2.0], [1.0, 2.0, 3.0])

    def test_list_and_array(self):
        r = add_grad([1.0, 2.0], numpy.array([10.0, 20.0]))
        assert isinstance(r, list)
        assert r == [11.0, 22.0]

    def test_dicts_key_union(self):
        r = add_grad({"a": 1.0, "b": 2.0}, {"b": 3.0, "c": 4.0})
        assert r == {"a": 1.0, "b": 5.0, "c": 4.0}

    def test_dict_values_not_aliased(self):
        a = numpy.ones(2)
        r = add_grad({"x": a}, {})
        r["x"][0] = 5.0
        assert a[0] == 1.0
        r = add_grad({}, {"x": a})
        r["x"][0] = 5.0
        assert a[0] == 1.0

    def test_dict_with_other(self):
        with pytest.raises(TypeError):
            add_grad({"a": 1.0}, [1.0])

    def test_inputs_unchanged(self):
        a = [1.0, 2.0]
        b = [3.0, 4.0]
        add_grad(a, b)
        assert a == [1.0, 2.0] and b == [3.0, 4.0]


# --------------------------------------------------------------------------------------------
# unbroadcast


class TestUnbroadcast:
    @pytest.mark.parametrize("x", [2.0, 3, numpy.float64(1.0), numpy.float32(1.0), numpy.array(5.0)])
    def test_scalar_target_sums_to_float(self, x):
        r = unbroadcast(numpy.ones((2, 3)), x)
        assert type(r) is float and r == 6.0

    def test_scalar_g_scalar_x(self):
        r = unbroadcast(2.5, 1.0)
        assert type(r) is float and r == 2.5

    def test_complex_kept(self):
        r = unbroadcast(numpy.array([1j, 2.0]), 1.0)
        assert type(r) is complex and r == 2 + 1j

    def test_same_shape_writable_float_is_passed_through(self):
        # Adjoints are never updated in place, so the common case costs nothing.
        g = numpy.arange(6.0).reshape(2, 3)
        x = numpy.zeros((2, 3))
        assert unbroadcast(g, x) is g

    def test_same_shape_read_only_or_integer_is_a_fresh_copy(self):
        x = numpy.zeros((2, 3))
        view = numpy.broadcast_to(numpy.arange(3.0), (2, 3))
        r = unbroadcast(view, x)
        assert_array_equal(r, view)
        assert_fresh(r, view, x)
        ints = numpy.arange(6).reshape(2, 3)
        r = unbroadcast(ints, x)
        assert r.dtype == numpy.float64
        assert_fresh(r, ints, x)

    def test_scalars_give_floats(self):
        assert type(unbroadcast(numpy.float64(2.5), 1.0)) is float
        assert type(unbroadcast(2.5, numpy.float64(1.0))) is float
        assert type(unreduce(numpy.float64(2.5), 1.0)) is float

    def test_leading_axes_summed(self):
        g = numpy.ones((4, 2, 3))
        r = unbroadcast(g, numpy.zeros(3))
        assert r.shape == (3,)
        assert_array_equal(r, [8.0, 8.0, 8.0])

    def test_size_one_axes_summed_keepdims(self):
        g = numpy.arange(6.0).reshape(2, 3)
        r = unbroadcast(g, numpy.zeros((2, 1)))
        assert r.shape == (2, 1)
        assert_array_equal(r, [[3.0], [12.0]])
        r = unbroadcast(g, numpy.zeros((1, 3)))
        assert r.shape == (1, 3)
        assert_array_equal(r, [[3.0, 5.0, 7.0]])

    def test_leading_and_size_one(self):
        g = numpy.ones((5, 2, 3))
        r = unbroadcast(g, numpy.zeros((1, 3)))
        assert r.shape == (1, 3)
        assert_array_equal(r, [[10.0, 10.0, 10.0]])

    def test_all_size_one(self):
        r = unbroadcast(numpy.ones((2, 3)), numpy.zeros((1, 1)))
        assert r.shape == (1, 1) and r[0, 0] == 6.0

    def test_scalar_g_broadcast_up(self):
        x = numpy.zeros((2, 2))
        r = unbroadcast(3.0, x)
        assert r.shape == (2, 2)
        assert_array_equal(r, numpy.full((2, 2), 3.0))
        assert_fresh(r, x)
        r[0, 0] = 1.0  # writable, not a broadcast view

    def test_fewer_dims_broadcast_up(self):
        g = numpy.array([1.0, 2.0, 3.0])
        r = unbroadcast(g, numpy.zeros((2, 3)))
        assert_array_equal(r, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
        assert_fresh(r, g)

    def test_fewer_dims_with_size_one_axes(self):
        # x (4, 1, 3) * y (2, 3) with a scalar seed: the adjoint of x arrives as (2, 3).
        g = numpy.arange(6.0).reshape(2, 3)
        r = unbroadcast(g, numpy.zeros((4, 1, 3)))
        assert r.shape == (4, 1, 3)
        for i in range(4):
            assert_array_equal(r[i], [[3.0, 5.0, 7.0]])

    def test_matches_broadcast_vjp(self):
        rng = numpy.random.default_rng(2)
        shapes = [((3,), (2, 3)), ((2, 1), (2, 3)), ((1, 3), (4, 2, 3)), ((4, 1, 3), (2, 3)),
                  ((), (2, 2)), ((1,), (3,)), ((2, 3), (2, 3)), ((5, 1, 1), (1, 4, 2))]
        for xs, ys in shapes:
            x = rng.normal(size=xs)
            y = rng.normal(size=ys)
            seed = rng.normal(size=numpy.broadcast_shapes(xs, ys))
            r = unbroadcast(seed * y, x)
            # d/dx <seed, x * y> == unbroadcast(seed * y, x): check on a random direction.
            v = rng.normal(size=xs)
            lhs = numpy.sum(seed * (v * y))
            assert numpy.allclose(lhs, numpy.sum(numpy.asarray(r) * v)), (xs, ys)
            assert numpy.shape(r) == xs

    def test_int_g_becomes_float(self):
        r = unbroadcast(numpy.ones((2,), dtype=int), numpy.zeros(2))
        assert r.dtype.kind == "f"

    def test_float32_kept(self):
        r = unbroadcast(numpy.ones((2, 2), dtype=numpy.float32), numpy.zeros((1, 2)))
        assert r.dtype == numpy.float32

    def test_zero_size(self):
        r = unbroadcast(numpy.ones((0, 3)), numpy.zeros(3))
        assert_array_equal(r, [0.0, 0.0, 0.0])

    def test_list_elementwise(self):
        g = [numpy.ones((2, 3)), numpy.ones(2)]
        x = [numpy.zeros(3), 1.0]
        r = unbroadcast(g, x)
        assert isinstance(r, list)
        assert_array_equal(r[0], [2.0, 2.0, 2.0])
        assert r[1] == 2.0

    def test_tuple_elementwise_from_array(self):
        r = unbroadcast(numpy.array([1.0, 2.0]), (1.0, 2.0))
        assert r == (1.0, 2.0) and isinstance(r, tuple)

    def test_list_with_scalar_g(self):
        assert unbroadcast(2.0, [1.0, 3.0]) == [2.0, 2.0]

    def test_none(self):
        assert unbroadcast(None, numpy.zeros(2)) is None
        assert unbroadcast(numpy.ones(2), None) is None


# --------------------------------------------------------------------------------------------
# unreduce


class TestUnreduce:
    def test_axis_none(self):
        x = numpy.zeros((2, 3))
        r = unreduce(2.0, x, None, False)
        assert_array_equal(r, numpy.full((2, 3), 2.0))
        assert_fresh(r, x)

    def test_axis_none_keepdims(self):
        r = unreduce(numpy.full((1, 1), 2.0), numpy.zeros((2, 3)), None, True)
        assert_array_equal(r, numpy.full((2, 3), 2.0))

    def test_axis_int(self):
        g = numpy.array([1.0, 2.0, 3.0])  # sum over axis 0 of a (2, 3)
        r = unreduce(g, numpy.zeros((2, 3)), 0, False)
        assert_array_equal(r, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
        g = numpy.array([1.0, 2.0])  # sum over axis 1
        r = unreduce(g, numpy.zeros((2, 3)), 1, False)
        assert_array_equal(r, [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])

    def test_negative_axis(self):
        g = numpy.array([1.0, 2.0])
        r = unreduce(g, numpy.zeros((2, 3)), -1, False)
        assert_array_equal(r, [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])

    def test_tuple_axes(self):
        x = numpy.zeros((2, 3, 4))
        g = numpy.array([1.0, 2.0, 3.0])
        r = unreduce(g, x, (0, 2), False)
        assert r.shape == (2, 3, 4)
        for j in range(3):
            assert (r[:, j, :] == j + 1).all()
        r2 = unreduce(g, x, (-1, 0), False)
        assert_array_equal(r, r2)

    def test_keepdims(self):
        g = numpy.array([[1.0], [2.0]])
        r = unreduce(g, numpy.zeros((2, 3)), 1, True)
        assert_array_equal(r, [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])

    def test_matches_numpy_sum_vjp(self):
        rng = numpy.random.default_rng(0)
        x = rng.normal(size=(3, 4, 5))
        for axis in (None, 0, 1, 2, -1, (0, 1), (1, 2), (0, 2), (0, 1, 2)):
            for keepdims in (False, True):
                y = numpy.sum(x, axis=axis, keepdims=keepdims)
                seed = rng.normal(size=numpy.shape(y))
                r = unreduce(seed, x, axis, keepdims)
                # <seed, sum(x)> == <unreduce(seed), x> for all x.
                assert numpy.allclose(numpy.sum(seed * y), numpy.sum(r * x))
                assert r.shape == x.shape

    def test_scalar_x(self):
        r = unreduce(numpy.array(3.0), 2.0, None, False)
        assert type(r) is float and r == 3.0

    def test_zero_d_x(self):
        r = unreduce(3.0, numpy.array(1.0), None, False)
        assert r == 3.0

    def test_list_x(self):
        r = unreduce(2.0, [1.0, 2.0, 3.0], None, False)
        assert r == [2.0, 2.0, 2.0] and isinstance(r, list)

    def test_int_x_gives_float(self):
        r = unreduce(1, numpy.ones(3, dtype=int), None, False)
        assert r.dtype == numpy.float64

    def test_bad_axis(self):
        with pytest.raises((ValueError, IndexError)):
            unreduce(1.0, numpy.zeros((2, 2)), 2, False)

    def test_none(self):
        assert unreduce(None, numpy.zeros(2), None, False) is None


# --------------------------------------------------------------------------------------------
# add_grad_at


class TestAddGradAt:
    def test_none_starts_from_zeros(self):
        x = numpy.arange(4.0)
        r = add_grad_at(None, x, 1, 5.0)
        assert_array_equal(r, [0.0, 5.0, 0.0, 0.0])
        assert_fresh(r, x)

    def test_does_not_mutate(self):
        b = numpy.ones(3)
        r = add_grad_at(b, numpy.zeros(3), 0, 2.0)
        assert_array_equal(b, [1.0, 1.0, 1.0])
        assert_array_equal(r, [3.0, 1.0, 1.0])
        assert_fresh(r, b)

    def test_slice(self):
        r = add_grad_at(None, numpy.zeros(5), slice(1, 4), numpy.array([1.0, 2.0, 3.0]))
        assert_array_equal(r, [0.0, 1.0, 2.0, 3.0, 0.0])

    def test_step_slice_and_negative_index(self):
        r = add_grad_at(None, numpy.zeros(5), slice(None, None, 2), 1.0)
        assert_array_equal(r, [1.0, 0.0, 1.0, 0.0, 1.0])
        r = add_grad_at(None, numpy.zeros(5), -1, 7.0)
        assert_array_equal(r, [0.0, 0.0, 0.0, 0.0, 7.0])

    def test_repeated_fancy_indices_accumulate(self):
        r = add_grad_at(None, numpy.zeros(4), numpy.array([0, 2, 0, 0]), numpy.array([1.0, 2.0, 3.0, 4.0]))
        assert_array_equal(r, [8.0, 0.0, 2.0, 0.0])
        r = add_grad_at(None, numpy.zeros(3), [1, 1, 1], 1.0)
        assert_array_equal(r, [0.0, 3.0, 0.0])

    def test_repeated_fancy_2d(self):
        x = numpy.zeros((3, 3))
        rows = numpy.array([0, 0, 2])
        cols = numpy.array([1, 1, 2])
        r = add_grad_at(None, x, (rows, cols), numpy.array([1.0, 2.0, 3.0]))
        expected = numpy.zeros((3, 3))
        expected[0, 1] = 3.0
        expected[2, 2] = 3.0
        assert_array_equal(r, expected)

    def test_matches_indexing_vjp(self):
        rng = numpy.random.default_rng(1)
        x = rng.normal(size=(4, 5))
        indices = [
            2,
            -1,
            slice(1, 3),
            (slice(None), 2),
            (1, slice(None, None, -1)),
            (Ellipsis, 0),
            (None, 1),
            numpy.array([3, 0, 3]),
            (numpy.array([0, 0, 1]), numpy.array([4, 4, 4])),
            x > 0,
            (slice(None), numpy.array([True, False, True, False, True])),
            [[0, 0], [1, 1]],
        ]
        for index in indices:
            y = x[index]
            seed = rng.normal(size=numpy.shape(y))
            r = add_grad_at(None, x, index, seed)
            assert r.shape == x.shape
            # <seed, x[index]> == <r, x> for all x, so compare on a second random x.
            x2 = rng.normal(size=x.shape)
            assert numpy.allclose(numpy.sum(seed * x2[index]), numpy.sum(r * x2)), index

    def test_boolean_mask(self):
        x = numpy.array([1.0, -1.0, 2.0])
        r = add_grad_at(None, x, x > 0, numpy.array([10.0, 20.0]))
        assert_array_equal(r, [10.0, 0.0, 20.0])

    def test_broadcast_g(self):
        r = add_grad_at(None, numpy.zeros((2, 3)), 0, 1.0)
        assert_array_equal(r, [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])

    def test_int_x_float_adjoint(self):
        r = add_grad_at(None, numpy.arange(3), 1, 0.5)
        assert r.dtype == numpy.float64 and r[1] == 0.5

    def test_complex_g_upcasts(self):
        r = add_grad_at(numpy.zeros(2), numpy.zeros(2), 0, 1j)
        assert r[0] == 1j

    def test_accumulates_on_existing(self):
        b = numpy.array([1.0, 1.0])
        r = add_grad_at(add_grad_at(b, None, 0, 1.0), None, 0, 1.0)
        assert_array_equal(r, [3.0, 1.0])

    def test_g_none(self):
        b = numpy.ones(2)
        r = add_grad_at(b, None, 0, None)
        assert_array_equal(r, b)
        assert_fresh(r, b)
        assert add_grad_at(None, [1.0], 0, None) == [0.0]

    def test_list_int_index(self):
        x = [1.0, numpy.ones(2), 3.0]
        b = init_grad(x)
        r = add_grad_at(b, x, 1, numpy.array([1.0, 2.0]))
        assert isinstance(r, list)
        assert_array_equal(r[1], [1.0, 2.0])
        assert_array_equal(b[1], [0.0, 0.0])  # b unchanged
        r2 = add_grad_at(r, x, -1, 4.0)
        assert r2[2] == 4.0 and r[2] == 0.0

    def test_list_none_b(self):
        r = add_grad_at(None, [1.0, 2.0], 0, 3.0)
        assert r == [3.0, 0.0]

    def test_list_none_entry(self):
        r = add_grad_at([None, None], [1.0, 2.0], 1, 3.0)
        assert r == [None, 3.0]

    def test_list_slice(self):
        r = add_grad_at(None, [1.0, 2.0, 3.0, 4.0], slice(1, 3), [10.0, 20.0])
        assert r == [0.0, 10.0, 20.0, 0.0]
        r = add_grad_at(None, [1.0, 2.0, 3.0, 4.0], slice(None, None, 2), numpy.array([1.0, 2.0]))
        assert r == [1.0, 0.0, 2.0, 0.0]

    def test_list_slice_length_mismatch(self):
        with pytest.raises(ValueError):
            add_grad_at(None, [1.0, 2.0, 3.0], slice(0, 2), [1.0, 2.0, 3.0])

    def test_list_repeated(self):
        b = add_grad_at(None, [1.0, 2.0], 0, 1.0)
        b = add_grad_at(b, [1.0, 2.0], 0, 1.0)
        assert b == [2.0, 0.0]

    def test_tuple(self):
        r = add_grad_at(None, (1.0, 2.0), 1, 3.0)
        assert r == (0.0, 3.0) and isinstance(r, tuple)

    def test_list_bad_index(self):
        with pytest.raises(TypeError):
            add_grad_at(None, [1.0, 2.0], (0,), 1.0)

    def test_dict(self):
        x = {"a": 1.0, "b": numpy.ones(2)}
        b = init_grad(x)
        r = add_grad_at(b, x, "b", numpy.array([1.0, 2.0]))
        assert_array_equal(r["b"], [1.0, 2.0])
        assert_array_equal(b["b"], [0.0, 0.0])
        r = add_grad_at(r, x, "a", 2.0)
        assert r["a"] == 2.0

    def test_dict_new_key_and_none(self):
        r = add_grad_at(None, {"a": 1.0}, "a", 2.0)
        assert r == {"a": 2.0}
        r = add_grad_at({}, {"a": 1.0}, "z", 2.0)
        assert r == {"z": 2.0}


# --------------------------------------------------------------------------------------------
# zero_at


class TestZeroAt:
    def test_none(self):
        assert zero_at(None, 0) is None

    def test_array(self):
        b = numpy.arange(1.0, 5.0)
        r = zero_at(b, 1)
        assert_array_equal(r, [1.0, 0.0, 3.0, 4.0])
        assert_array_equal(b, [1.0, 2.0, 3.0, 4.0])
        assert_fresh(r, b)

    def test_array_indices(self):
        b = numpy.ones((3, 3))
        assert_array_equal(zero_at(b, (slice(None), 0))[:, 0], [0.0, 0.0, 0.0])
        r = zero_at(b, numpy.array([0, 0, 2]))
        assert_array_equal(r.sum(axis=1), [0.0, 3.0, 0.0])
        mask = numpy.eye(3, dtype=bool)
        assert_array_equal(zero_at(b, mask), 1 - numpy.eye(3))
        assert_array_equal(zero_at(b, Ellipsis), numpy.zeros((3, 3)))

    def test_list(self):
        b = [1.0, numpy.ones(2), 3.0]
        r = zero_at(b, 1)
        assert isinstance(r, list)
        assert_array_equal(r[1], [0.0, 0.0])
        assert_array_equal(b[1], [1.0, 1.0])
        assert r[0] == 1.0 and r[2] == 3.0

    def test_list_slice_and_negative(self):
        assert zero_at([1.0, 2.0, 3.0], slice(0, 2)) == [0.0, 0.0, 3.0]
        assert zero_at([1.0, 2.0, 3.0], -1) == [1.0, 2.0, 0.0]

    def test_list_none_entry(self):
        assert zero_at([None, 2.0], 0) == [None, 2.0]

    def test_tuple(self):
        r = zero_at((1.0, 2.0), 0)
        assert r == (0.0, 2.0) and isinstance(r, tuple)

    def test_dict(self):
        b = {"a": 1.0, "b": 2.0}
        r = zero_at(b, "a")
        assert r == {"a": 0.0, "b": 2.0}
        assert b == {"a": 1.0, "b": 2.0}
        assert zero_at(b, "missing") == b

    def test_scalar(self):
        assert zero_at(3.0, ()) == 0.0


# --------------------------------------------------------------------------------------------
# copy


class TestCopy:
    def test_array(self):
        a = numpy.arange(5.0)
        view = a[1:3]
        c = copy(view)
        a[:] = 0
        assert_array_equal(c, [1.0, 2.0])
        assert not numpy.shares_memory(c, a)

    def test_list_is_shallow_copy(self):
        inner = [1.0]
        v = [inner, 2.0]
        c = copy(v)
        assert c == v and c is not v and c[0] is inner

    def test_dict(self):
        v = {"a": 1.0}
        c = copy(v)
        assert c == v and c is not v

    @pytest.mark.parametrize("v", [1.0, 3, None, "s", (1.0, 2.0)])
    def test_others_as_is(self, v):
        assert copy(v) is v


# --------------------------------------------------------------------------------------------
# save_item / restore_item (undoing `x[i] = v` in the backward sweep)


class TestSaveRestoreItem:
    def test_array_round_trip(self):
        x = numpy.arange(5.0)
        saved = save_item(x, slice(1, 3))
        x[1:3] = [10.0, 20.0]
        assert_array_equal(saved, [1.0, 2.0])  # a copy, not a view
        restore_item(x, slice(1, 3), saved)
        assert_array_equal(x, numpy.arange(5.0))

    def test_array_indices(self):
        rng = numpy.random.default_rng(3)
        original = rng.normal(size=(3, 4))
        for index in [1, (0, 2), (slice(None), 1), numpy.array([0, 0, 2]), original > 0,
                      (Ellipsis, -1)]:
            x = original.copy()
            saved = save_item(x, index)
            x[index] = 99.0
            restore_item(x, index, saved)
            assert_array_equal(x, original)

    def test_nested_writes_lifo(self):
        x = numpy.zeros(3)
        s = Stack()
        push(s, save_item(x, 0))
        x[0] = 1.0
        push(s, save_item(x, 0))
        x[0] = 2.0
        restore_item(x, 0, pop(s))
        assert x[0] == 1.0
        restore_item(x, 0, pop(s))
        assert x[0] == 0.0

    def test_list(self):
        x = [1.0, 2.0, 3.0]
        saved = save_item(x, -1)
        x[-1] = 7.0
        restore_item(x, -1, saved)
        assert x == [1.0, 2.0, 3.0]
        saved = save_item(x, slice(0, 2))
        x[0:2] = [5.0, 6.0]
        restore_item(x, slice(0, 2), saved)
        assert x == [1.0, 2.0, 3.0]

    def test_dict_existing_and_new_key(self):
        d = {"a": 1.0}
        saved_a = save_item(d, "a")
        saved_b = save_item(d, "b")
        d["a"] = 2.0
        d["b"] = 3.0
        restore_item(d, "b", saved_b)
        restore_item(d, "a", saved_a)
        assert d == {"a": 1.0}
        assert "missing" in repr(saved_b)


# --------------------------------------------------------------------------------------------
# insert_grad_of


class TestInsertGradOf:
    def test_yields_zero_adjoint(self):
        with insert_grad_of(3.0) as d:
            assert d == 0.0
        x = numpy.ones(3)
        with insert_grad_of(x) as d:
            assert_array_equal(d, [0.0, 0.0, 0.0])
            d *= 2  # harmless
        assert_array_equal(x, [1.0, 1.0, 1.0])

    def test_primal_runs_unchanged(self):
        def f(x):
            with tangent.insert_grad_of(x) as dx:
                dx = dx * 0.5  # noqa: F841 - gradient surgery, a no-op in the primal
            return x * 2

        assert f(3.0) == 6.0

    def test_exceptions_propagate(self):
        with pytest.raises(KeyError):
            with insert_grad_of(1.0):
                raise KeyError("x")


# --------------------------------------------------------------------------------------------
# Namespace


def test_runtime_names_exported():
    for name in (
        "Stack",
        "push",
        "pop",
        "init_grad",
        "add_grad",
        "unbroadcast",
        "unreduce",
        "add_grad_at",
        "zero_at",
        "copy",
        "save_item",
        "restore_item",
        "insert_grad_of",
        "grad",
        "autodiff",
    ):
        assert callable(getattr(tangent, name)), name


class TestUnshared:
    def test_one_gradient_comes_back_alone_and_several_as_a_tuple(self):
        a = numpy.ones(2)
        assert tangent.unshared(a) is a
        assert tangent.unshared(1.0, 2.0) == (1.0, 2.0)

    def test_repeated_and_seed_arrays_are_copied(self):
        a = numpy.ones(3)
        seed = numpy.zeros(3)
        first, second, third = tangent.unshared(a, a, seed[::2], seed=seed)
        assert first is a
        assert not numpy.shares_memory(second, a) and numpy.array_equal(second, a)
        assert not numpy.shares_memory(third, seed)

    def test_containers_are_walked(self):
        a = numpy.ones(2)
        first, second = tangent.unshared([a, 1.0], {"k": a})
        assert first[0] is a and not numpy.shares_memory(second["k"], a)
