"""Checkpointing (`with tangent.checkpoint():`): gradients equal the non-checkpointed ones
and finite differences, in reverse mode (optimized and not), forward mode and
forward-over-reverse; the backward pass keeps about sqrt(T) states; blocks that cannot be
checkpointed are refused with the statement at fault."""

import ast
import importlib.util
import inspect
import math
import sys
import textwrap

import numpy as np
import pytest

import tangent
import checkpoint_cases as cases
from gradcheck import assert_close, check_grad

ARGS = cases.make_args(np.random.default_rng(5))
NAMES = sorted(ARGS)


def _is_marker(node):
    func = node.func if isinstance(node, ast.Call) else node
    return ast.unparse(func) in ("checkpoint", "tangent.checkpoint")


class _DropCheckpoints(ast.NodeTransformer):
    """`with tangent.checkpoint(...): body` -> `body`; `@tangent.checkpoint` dropped."""

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        node.decorator_list = [d for d in node.decorator_list if not _is_marker(d)]
        return node

    def visit_With(self, node):
        self.generic_visit(node)
        [item] = node.items
        return node.body if _is_marker(item.context_expr) else node


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The cases module with its checkpoint markers removed (the same code, taped)."""
    tree = _DropCheckpoints().visit(ast.parse(inspect.getsource(cases)))
    path = tmp_path_factory.mktemp("plain") / "checkpoint_cases_plain.py"
    path.write_text(ast.unparse(ast.fix_missing_locations(tree)))
    spec = importlib.util.spec_from_file_location("checkpoint_cases_plain", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert "checkpoint" not in inspect.getsource(module.rnn)
    return module


def _flat(g):
    if isinstance(g, dict):
        return np.concatenate([_flat(g[k]) for k in sorted(g)])
    if isinstance(g, (tuple, list)):
        return np.concatenate([_flat(v) for v in g]) if g else np.zeros(0)
    return np.atleast_1d(np.asarray(g, dtype=float)).ravel()


@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "unoptimized"])
@pytest.mark.parametrize("name", NAMES)
def test_gradient_equals_the_non_checkpointed_one_and_finite_differences(name, optimized, plain):
    args, wrt = ARGS[name]
    f = getattr(cases, name)
    got = tangent.grad(f, wrt=wrt, optimized=optimized)(*args)
    expected = tangent.grad(getattr(plain, name), wrt=wrt, optimized=optimized)(*args)
    assert_close(_flat(got), _flat(expected), rtol=1e-12, atol=1e-12, what="checkpointed vs taped gradient")
    check_grad(f, args, wrt=wrt, optimized=optimized)


@pytest.mark.parametrize("name", NAMES)
def test_split_motion_and_preserved_result(name):
    """The forward and backward functions of split motion, and `preserve_result`, carry the
    snapshots like the joint gradient."""
    args, wrt = ARGS[name]
    f = getattr(cases, name)
    joint = tangent.grad(f, wrt=wrt)(*args)
    split = tangent.autodiff(f, wrt=wrt, motion="split")(*args, 1.0)
    assert_close(_flat(split), _flat(joint), rtol=1e-12, atol=1e-12, what="split vs joint")
    *grads, value = tangent.grad(f, wrt=wrt, preserve_result=True)(*args)
    assert_close(_flat(tuple(grads)), _flat(joint), rtol=1e-12, atol=1e-12, what="gradient with its value")
    assert_close(np.asarray(value, dtype=float), np.asarray(f(*args), dtype=float), rtol=1e-12, atol=0, what="value")


@pytest.mark.parametrize("name", NAMES)
def test_forward_mode_matches_reverse_mode(name):
    args, wrt = ARGS[name]
    f = getattr(cases, name)
    rng = np.random.default_rng(8)
    for p in wrt:
        direction = rng.standard_normal(np.shape(args[p]))
        if isinstance(args[p], list):
            direction = list(direction)
        jvp = tangent.jvp(f, wrt=(p,))(*args, direction)
        g = tangent.grad(f, wrt=(p,))(*args)
        assert_close(np.asarray(jvp, dtype=float), np.sum(_flat(g) * _flat(direction)), rtol=1e-8, atol=1e-10, what=f"jvp along {p}")


@pytest.mark.parametrize("name", NAMES)
def test_hessian_vector_product_through_checkpoints(name):
    """Forward over reverse: the generated gradient (with its snapshots) differentiated
    again, against central differences of the gradient."""
    args, wrt = ARGS[name]
    f = getattr(cases, name)
    if isinstance(args[0], list):
        pytest.skip("H v here is along the first parameter of array cases")
    rng = np.random.default_rng(9)
    v = rng.standard_normal(np.shape(args[0]))
    hv = tangent.hvp(f, wrt=(0,))(*args, v)
    grad = tangent.grad(f, wrt=(0,))
    eps = 1e-5
    plus = list(args)
    minus = list(args)
    plus[0] = args[0] + eps * v
    minus[0] = args[0] - eps * v
    expected = (_flat(grad(*plus)) - _flat(grad(*minus))) / (2 * eps)
    assert_close(_flat(hv), expected, rtol=1e-5, atol=1e-6, what="H v")


@pytest.mark.parametrize("name", NAMES)
def test_reverse_over_reverse_through_checkpoints(name):
    """`vjp(grad(f))`: the generated gradient's snapshots and re-runs differentiated in
    reverse mode, against central differences of the gradient."""
    args, _ = ARGS[name]
    if isinstance(args[0], list):
        pytest.skip("H v here is along the first parameter of array cases")
    f = getattr(cases, name)
    df = tangent.grad(f, wrt=(0,))
    vdf = tangent.vjp(df, wrt=(0,))
    v = np.random.default_rng(10).standard_normal(np.shape(args[0]))
    full = list(inspect.signature(df).bind(*args).arguments.values()) + [1.0]
    got = vdf(*full, v)
    eps = 1e-5
    plus = [args[0] + eps * v, *args[1:]]
    minus = [args[0] - eps * v, *args[1:]]
    expected = (_flat(df(*plus)) - _flat(df(*minus))) / (2 * eps)
    assert_close(_flat(got), expected, rtol=1e-5, atol=1e-6, what="v^T H")


def test_gradient_with_respect_to_an_object_read_in_the_loop(plain):
    rng = np.random.default_rng(3)
    cell = cases.Cell(rng.standard_normal((3, 3)) * 0.5, rng.standard_normal(3))
    xs = rng.standard_normal((9, 3))
    got = tangent.grad(cases.rnn_cell_object)(cell, xs)
    expected = tangent.grad(plain.rnn_cell_object)(cell, xs)
    assert sorted(got) == ["W", "b"]
    for attr in ("W", "b"):
        assert_close(got[attr], expected[attr], rtol=1e-12, atol=1e-12, what=attr)
        value = getattr(cell, attr)
        numeric = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            old = value[i]
            value[i] = old + 1e-6
            up = cases.rnn_cell_object(cell, xs)
            value[i] = old - 1e-6
            down = cases.rnn_cell_object(cell, xs)
            value[i] = old
            numeric[i] = (up - down) / 2e-6
        assert_close(got[attr], numeric, rtol=1e-5, atol=1e-7, what=f"d/d{attr} vs finite differences")


# --- what the backward pass keeps -----------------------------------------------------------


class _CountingStack(tangent.Stack):
    """A stack that remembers its largest size and the largest snapshot list pushed on it."""

    deepest = 0
    snapshots = 0

    def append(self, value):
        super().append(value)
        _CountingStack.deepest = max(_CountingStack.deepest, len(self))
        if isinstance(value, list):
            _CountingStack.snapshots = max(_CountingStack.snapshots, len(value))


def _stack_use(f, args, monkeypatch):
    _CountingStack.deepest = 0
    _CountingStack.snapshots = 0
    monkeypatch.setattr(tangent, "Stack", _CountingStack)
    tangent.grad(f, wrt=(0, 1))(*args)
    return _CountingStack.deepest, _CountingStack.snapshots


@pytest.mark.parametrize("steps", [1, 2, 10, 99, 100, 101, 2500])
def test_backward_pass_keeps_about_sqrt_t_states(steps, plain, monkeypatch):
    rng = np.random.default_rng(steps)
    args = (rng.standard_normal((4, 3)) * 0.3, rng.standard_normal((4, 4)) * 0.3, rng.standard_normal((steps, 3)), rng.standard_normal(4))
    taped, _ = _stack_use(plain.rnn, args, monkeypatch)
    deepest, snapshots = _stack_use(cases.rnn, args, monkeypatch)
    every = math.isqrt(steps - 1) + 1 if steps > 1 else 1
    assert snapshots == -(-steps // every)
    per_step = (taped - 1) / steps  # the taped loop pushes this much per iteration (plus a count)
    assert per_step >= 4
    # One segment's tape, its iteration count and the snapshot list.
    assert deepest <= per_step * every + 3, (deepest, per_step, every)


@pytest.mark.parametrize("steps", [2500])
def test_levels_of_segments_keep_fewer_states(steps, plain, monkeypatch):
    """`levels=2`: segments of segments; the backward pass holds one innermost segment's tape
    (about T^(1/3) steps) and the snapshot lists of both levels."""
    rng = np.random.default_rng(steps)
    args = (rng.standard_normal((4, 3)) * 0.3, rng.standard_normal((4, 4)) * 0.3, rng.standard_normal((steps, 3)), rng.standard_normal(4))
    taped, _ = _stack_use(plain.rnn, args, monkeypatch)
    deepest, snapshots = _stack_use(cases.rnn_levels_2, args, monkeypatch)
    outer = len(tangent.checkpoint_segments(range(steps), levels=2)[0])
    inner = len(tangent.checkpoint_segments(range(outer))[0])
    assert (outer, inner) == (185, 14)
    per_step = (taped - 1) / steps
    assert deepest <= per_step * inner + 6, (deepest, per_step, inner)
    assert snapshots == max(-(-steps // outer), -(-outer // inner))


def test_checkpoint_segments_cut_the_iterations():
    assert tangent.checkpoint_segments(range(10)) == [range(0, 4), range(4, 8), range(8, 10)]
    assert tangent.checkpoint_segments(range(9)) == [range(0, 3), range(3, 6), range(6, 9)]
    assert tangent.checkpoint_segments(range(0)) == []
    assert tangent.checkpoint_segments(range(1)) == [range(0, 1)]
    assert tangent.checkpoint_segments(range(5), 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert tangent.checkpoint_segments(range(3), 10) == [range(0, 3)]
    assert [len(s) for s in tangent.checkpoint_segments(range(10_000))] == [100] * 100
    assert [len(s) for s in tangent.checkpoint_segments(range(1000), levels=2)] == [100] * 10
    assert [len(s) for s in tangent.checkpoint_segments(range(10_000), levels=3)] == [1000] * 10
    assert tangent.checkpoint_segments(range(1), levels=3) == [range(0, 1)]
    for bad_levels in (0, 9, 1.5, True):
        with pytest.raises(ValueError, match="levels"):
            tangent.checkpoint(levels=bad_levels)
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="positive int"):
            tangent.checkpoint_segments(range(4), bad)
        with pytest.raises(ValueError, match="positive int"):
            tangent.checkpoint(every=bad)


def test_the_marker_does_nothing_when_the_primal_runs():
    args, _ = ARGS["rnn"]
    with tangent.checkpoint(every=2) as bound:
        assert bound is None
    assert np.isfinite(cases.rnn(*args))


def test_generated_code_reads_as_the_checkpointed_loop():
    source = inspect.getsource(tangent.grad(cases.rnn, wrt=(0, 1)))
    assert "tangent.checkpoint_segments(range(xs.shape[0]))" in source
    assert "_checkpoints" in source and ".append((h,))" in source
    assert "# Grad of: with tangent.checkpoint():" in source
    assert "# Run this part again from its checkpoint" in source


def test_a_decorated_function_checkpoints_the_loops_it_can():
    source = inspect.getsource(tangent.grad(cases.leapfrog_decorated, wrt=(0, 1)))
    assert source.count("tangent.checkpoint_segments(") == 1, source
    assert "# Grad of: for i in range(20): (checkpointed by @tangent.checkpoint)" in source
    assert cases.leapfrog_decorated.__name__ == "leapfrog_decorated"  # the decorator returns it


def test_checkpoint_option_checkpoints_an_unmarked_function(plain):
    """`checkpoint=True` in the API: the function's loops as under `@tangent.checkpoint`,
    for gradients, split motion, HVPs and bound methods; line numbers of errors unchanged."""
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal(3), rng.standard_normal(3) * 0.5
    f = cases.unmarked_loops
    df = tangent.grad(f, wrt=(0, 1), checkpoint=True)
    source = inspect.getsource(df)
    assert source.count("tangent.checkpoint_segments(") == 2, source
    assert "checkpoint_segments" not in inspect.getsource(tangent.grad(f, wrt=(0, 1)))
    expected = tangent.grad(f, wrt=(0, 1))(x, w)
    assert_close(_flat(df(x, w)), _flat(expected), rtol=1e-12, atol=1e-12, what="checkpoint=True")
    check_grad(f, (x, w), wrt=(0, 1), checkpoint=True)
    split = tangent.vjp(f, wrt=(0, 1), motion="split", checkpoint=True)(x, w, 1.0)
    assert_close(_flat(split), _flat(expected), rtol=1e-12, atol=1e-12, what="split")
    v = rng.standard_normal(3)
    assert_close(tangent.hvp(f, checkpoint=True)(x, w, v), tangent.hvp(f)(x, w, v), rtol=1e-10, atol=1e-12, what="H v")
    cell = cases.Cell(rng.standard_normal((3, 3)) * 0.5, rng.standard_normal(3))
    xs = rng.standard_normal((7, 3))
    on_object = tangent.grad(plain.rnn_cell_object, wrt=(0,), checkpoint=True)
    assert "checkpoint_segments" in inspect.getsource(on_object)
    got, want = on_object(cell, xs), tangent.grad(plain.rnn_cell_object)(cell, xs)
    assert_close(_flat(got), _flat(want), rtol=1e-12, atol=1e-12, what="object")


# --- refused ------------------------------------------------------------------------------


REFUSED = {
    "break": ("def f(x):\n    with tangent.checkpoint():\n        for i in range(3):\n            if i > 1:\n                break\n            x = x * 2.0\n    return x\n", "break"),
    "return": ("def f(x):\n    with tangent.checkpoint():\n        for i in range(3):\n            if i > 1:\n                return x\n            x = x * 2.0\n    return x\n", "early"),
    "outer list": ("def f(x):\n    out = []\n    with tangent.checkpoint():\n        for i in range(3):\n            x = x * 2.0\n            out.append(x)\n    return out[-1]\n", "out.append(x)"),
    "outer array": ("def f(x, buf):\n    with tangent.checkpoint():\n        for i in range(3):\n            x = x * 2.0\n            buf[i] = x\n    return x + buf[0]\n", "buf[i] = x"),
    "as": ("def f(x):\n    with tangent.checkpoint() as c:\n        x = x * 2.0\n    return x\n", "binds no name"),
    "every on a block": ("def f(x):\n    with tangent.checkpoint(every=2):\n        x = x * 2.0\n        x = x * 3.0\n    return x\n", "one `for` loop"),
    "decorator arguments": ("@tangent.checkpoint(every=3)\ndef f(x):\n    for i in range(3):\n        x = x * 2.0\n    return x\n", "takes no arguments"),
    "levels zero": ("def f(x):\n    with tangent.checkpoint(levels=0):\n        for i in range(3):\n            x = x * 2.0\n    return x\n", "from 1 to 8"),
    "levels not a literal": ("def f(x, n):\n    with tangent.checkpoint(levels=n):\n        for i in range(3):\n            x = x * 2.0\n    return x\n", "from 1 to 8"),
    "every and levels": ("def f(x):\n    with tangent.checkpoint(every=2, levels=2):\n        for i in range(3):\n            x = x * 2.0\n    return x\n", "not both"),
    "levels on a block": ("def f(x):\n    with tangent.checkpoint(levels=2):\n        x = x * 2.0\n    return x\n", "one `for` loop"),
    "arguments": ("def f(x):\n    with tangent.checkpoint(2, 3):\n        x = x * 2.0\n    return x\n", "`every` (iterations per segment) or `levels`"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_blocks_that_cannot_be_checkpointed_are_refused(case, tmp_path, monkeypatch):
    body, needle = REFUSED[case]
    path = tmp_path / f"refused_{case.replace(' ', '_')}.py"
    path.write_text("import tangent\n\n\n" + body)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(path.stem)
    with pytest.raises(tangent.UnsupportedError) as info:
        tangent.grad(module.f)
    message = str(info.value)
    assert needle in message, message
    assert f"{path.name}:" in message and "^" in message
    assert info.value.code == "T002", info.value.code


def test_source_of_refused_block_example_is_dedented_python():
    for body, _ in REFUSED.values():
        compile(textwrap.dedent(body), "<case>", "exec")
