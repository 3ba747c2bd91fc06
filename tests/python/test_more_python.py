"""More of Python in differentiated code: keyword arguments and defaults (also keyword-only
parameters), `*args` unpacking in calls, read-only module constants, `x.T` / `x.shape`,
`assert`, `pass` and docstrings. Reverse mode against finite differences (optimized and
not), forward mode against reverse mode."""

import numpy as np
import pytest

import tangent
from gradcheck import assert_close, check_grad, numeric_grad

RNG = np.random.default_rng(5)

SCALE = 1.5
OFFSETS = (0.25, -0.5)


def affine(x, k=2.0, *, shift=0.5):
    return x * k + shift


def uses_keywords_and_defaults(x, w):
    return np.sum(affine(x, k=w) * affine(x) + affine(x, shift=w))


def keyword_only_loss(x, *, scale=2.0, shift):
    """A loss with keyword-only parameters."""
    return np.sum(np.tanh(x * scale) + shift * x)


def unpacks_a_tuple(x, w):
    args = (x, w)
    extra = [x * w]
    return np.sum(affine(*args) + affine(*extra, 0.5))


def unpacks_a_literal(x):
    return np.sum(affine(*(x, 3.0)))


def module_constants(x):
    """Docstring: ignored."""
    assert x.shape[0] > 0, "needs values"
    pass
    return np.sum(x * SCALE + OFFSETS[0]) + x.T @ x * OFFSETS[1]


def matrix_attributes(m, v):
    n = m.shape[0]
    return np.sum(m.T @ v) / n + np.sum(m.T.T * 2.0)


CASES = [
    (uses_keywords_and_defaults, lambda: (RNG.standard_normal(3), 0.7), (), (0, 1)),
    (keyword_only_loss, lambda: (RNG.standard_normal(4),), {"shift": 0.3}, (0,)),
    (unpacks_a_tuple, lambda: (RNG.standard_normal(3), 1.3), (), (0, 1)),
    (unpacks_a_literal, lambda: (RNG.standard_normal(3),), (), (0,)),
    (module_constants, lambda: (RNG.standard_normal(4),), (), (0,)),
    (matrix_attributes, lambda: (RNG.standard_normal((3, 2)), RNG.standard_normal(3)), (), (0, 1)),
]


def _ids():
    return [f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "unoptimized"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=_ids())
def test_reverse_mode(case, optimized):
    f, make_args, kwargs, wrt = CASES[case]
    args = make_args()
    if not kwargs:
        check_grad(f, args, wrt=wrt, optimized=optimized)
        return
    # Keyword arguments: differentiate the function with them bound.
    df = tangent.grad(f, wrt=wrt, optimized=optimized)
    got = df(*args, **kwargs)
    eps = 1e-6
    x = np.array(args[0], dtype=float)
    expected = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = eps
        expected.flat[i] = (f(x + e, **kwargs) - f(x - e, **kwargs)) / (2 * eps)
    assert_close(got, expected)


def test_gradient_with_respect_to_a_keyword_only_parameter():
    x = RNG.standard_normal(4)
    df = tangent.grad(keyword_only_loss, wrt=("scale", "shift"))
    dscale, dshift = df(x, scale=1.3, shift=0.2)
    eps = 1e-6
    fd_scale = (keyword_only_loss(x, scale=1.3 + eps, shift=0.2) - keyword_only_loss(x, scale=1.3 - eps, shift=0.2)) / (2 * eps)
    fd_shift = (keyword_only_loss(x, scale=1.3, shift=0.2 + eps) - keyword_only_loss(x, scale=1.3, shift=0.2 - eps)) / (2 * eps)
    assert_close(dscale, fd_scale)
    assert_close(dshift, fd_shift)
    # Forward mode along the same parameter.
    jvp = tangent.jvp(keyword_only_loss, wrt=("scale",))
    assert_close(jvp(x, 1.0, scale=1.3, shift=0.2), fd_scale)


@pytest.mark.parametrize("case", [i for i, c in enumerate(CASES) if not c[2]], ids=[c[0].__name__ for c in CASES if not c[2]])
def test_forward_mode_matches_reverse(case):
    f, make_args, _, wrt = CASES[case]
    args = make_args()
    grads = tangent.grad(f, wrt=wrt)(*args)
    grads = grads if len(wrt) > 1 else (grads,)
    for p, g in zip(wrt, grads):
        direction = RNG.standard_normal(np.shape(args[p]))
        if np.ndim(args[p]) == 0:
            direction = float(direction)
        got = tangent.jvp(f, wrt=(p,))(*args, direction)
        assert_close(got, float(np.sum(np.asarray(g) * direction)), rtol=1e-6, atol=1e-8)


def unknown_length(x, args):
    return np.sum(affine(*args) * x)


def test_unpacking_a_value_of_unknown_length_is_reported():
    with pytest.raises(tangent.TangentError) as e:
        tangent.grad(unknown_length)
    assert "length is known" in str(e.value)
    assert e.value.line > 0


# --- recursion with a base case that does not depend on the differentiated values ---------


def power(x, n):
    if n == 0:
        return 1.0
    return x * power(x, n - 1)


def tree_sum(x, depth):
    if depth == 0:
        return np.sum(np.sin(x))
    return tree_sum(x * 0.5, depth - 1) + tree_sum(x + 1.0, depth - 1)


def even(x, n):
    if n == 0:
        return x * x
    return odd(x * 2.0, n - 1)


def odd(x, n):
    if n == 0:
        return np.sin(x)
    return even(x + 1.0, n - 1)


@pytest.mark.parametrize(
    "f, args",
    [
        (power, (1.3, 5)),
        (power, (0.7, 0)),
        (tree_sum, (np.array([0.2, -0.4, 1.1]), 3)),
        (even, (0.3, 4)),
        (even, (0.3, 3)),
    ],
    ids=["power", "power-base", "tree", "mutual-even", "mutual-odd"],
)
@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "unoptimized"])
def test_recursion(f, args, optimized):
    check_grad(f, args, optimized=optimized)
    g = tangent.grad(f)(*args)
    direction = RNG.standard_normal(np.shape(args[0])) if np.ndim(args[0]) else 0.8
    jvp = tangent.jvp(f)(*args, direction)
    assert_close(jvp, float(np.sum(np.asarray(g) * direction)), rtol=1e-6, atol=1e-8)


def test_a_parameter_named_twice_in_wrt_is_an_error():
    with pytest.raises(tangent.InvalidWrtError, match="named twice"):
        tangent.grad(affine, wrt=(0, "x"))
    with pytest.raises(tangent.InvalidWrtError, match="named twice"):
        tangent.jvp(affine, wrt=(1, 1))


# --- aliases changed in place -------------------------------------------------------------


ALIASES = '''
import numpy as np


def appended_through_alias(x):
    a = [x]
    res = a
    res.append(x * 2.0)
    return np.sum(a[1])


def written_through_alias(x):
    a = np.zeros(3)
    b = a
    b[0] = x * 3.0
    return np.sum(a)


def parameter_written_through_alias(x, buf):
    b = buf
    b[0] = x * 2.0
    return np.sum(buf * x)


def alias_in_a_loop(x):
    acc = [x]
    for i in range(3):
        cur = acc
        cur.append(x * i)
    return np.sum(acc[2])


def alias_after_the_changes(y):
    buf = y * 1.0
    buf[0] = y[1] * 2.0
    z = buf
    return np.sum(z * y)


def strings_over_several_lines(x, label):
    """Implicitly joined strings spanning lines inside the user's brackets: the generated code
    must keep them one expression."""
    parts = []
    for i in range(2):
        msg = (f"step {i} "
               f"of {label}")
        parts.append(msg)
    note = ("a"
            "b")
    assert len(parts) == 2 and note == "ab", (
        "two parts")
    return np.sum(x * x) * len(parts)


def alias_rebound_not_changed(x):
    h = x
    h = np.sin(h) * 2.0
    return np.sum(h * x)


def changed_name_not_read_again(x):
    a = np.zeros(3)
    b = a
    b[0] = x * 3.0
    return np.sum(b)
'''


@pytest.fixture(scope="module")
def aliases(tmp_path_factory):
    import importlib.util

    path = tmp_path_factory.mktemp("aliases") / "alias_cases.py"
    path.write_text(ALIASES)
    spec = importlib.util.spec_from_file_location("alias_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "name, args",
    [
        ("appended_through_alias", (0.7,)),
        ("written_through_alias", (0.7,)),
        ("parameter_written_through_alias", (0.7, np.array([0.5, -1.0, 2.0]))),
        ("alias_in_a_loop", (0.7,)),
    ],
)
def test_an_alias_changed_in_place_and_read_again_is_differentiated(aliases, name, args):
    """Python changes what both names see: so does the derivative (the other name is given
    its new value after the change), in both modes; the caller's array changes as in a call."""
    import copy

    f = getattr(aliases, name)

    def on_copies(*a):
        return f(*copy.deepcopy(a))

    expected = numeric_grad(on_copies, args)
    mine = copy.deepcopy(args)
    got = tangent.grad(f)(*mine)
    assert_close(got, expected, rtol=1e-6, atol=1e-8, what="gradient")
    after = copy.deepcopy(args)
    f(*after)
    assert_close(list(mine[1:]), list(after[1:]), rtol=0, atol=0, what="arguments after the call")
    assert_close(tangent.jvp(f)(*copy.deepcopy(args), 1.0), expected, rtol=1e-6, atol=1e-8, what="jvp")


def test_strings_spanning_lines_stay_one_expression(aliases):
    x = np.array([0.3, -0.4, 0.8])
    check_grad(aliases.strings_over_several_lines, (x, "run"))
    direction = np.array([1.0, 0.5, -2.0])
    jvp = tangent.jvp(aliases.strings_over_several_lines)(x, "run", direction)
    assert_close(jvp, float(np.dot(4.0 * x, direction)), rtol=1e-10, atol=1e-12, what="jvp")


@pytest.mark.parametrize("name", ["alias_after_the_changes", "alias_rebound_not_changed", "changed_name_not_read_again"])
def test_aliases_that_change_nothing_the_gradient_reads_are_differentiated(aliases, name):
    f = getattr(aliases, name)
    args = (np.array([0.5, 1.0]),) if name == "alias_after_the_changes" else (np.array([0.3, -0.4, 0.8]),)
    if name == "changed_name_not_read_again":
        args = (0.7,)
    check_grad(f, args)
    direction = np.ones_like(np.asarray(args[0], dtype=float))
    jvp = tangent.jvp(f)(*args, direction if np.ndim(args[0]) else 1.0)
    assert_close(np.asarray(jvp, dtype=float), np.sum(tangent.grad(f)(*args) * direction), rtol=1e-8, atol=1e-10, what="jvp")
