"""Functions with `with tangent.checkpoint():` blocks, for test_checkpoint.py.

Each runs as plain Python too (the marker does nothing then); the test builds the same module
without the markers to compare gradients with the non-checkpointed ones.
"""

import numpy as np

import tangent
from tangent import checkpoint


def rnn(Wx, Wh, xs, h0):
    h = h0
    with tangent.checkpoint():
        for t in range(xs.shape[0]):
            h = np.tanh(np.dot(Wx, xs[t]) + np.dot(Wh, h))
    return np.sum(h * h)


def rnn_every_3(Wx, Wh, xs, h0):
    h = h0
    with tangent.checkpoint(every=3):
        for t in range(xs.shape[0]):
            h = np.tanh(np.dot(Wx, xs[t]) + np.dot(Wh, h))
    return np.sum(h * h)


def rnn_levels_2(Wx, Wh, xs, h0):
    h = h0
    with tangent.checkpoint(levels=2):
        for t in range(xs.shape[0]):
            h = np.tanh(np.dot(Wx, xs[t]) + np.dot(Wh, h))
    return np.sum(h * h)


def two_carried_levels_3(x):
    a = x
    b = 0.0 * x
    with tangent.checkpoint(levels=3):
        for i in range(17):
            if i % 3 == 0:
                a = np.sin(a) + b
            else:
                b = b + 0.1 * a * a
    return np.sum(a * b)


def rnn_every_param(Wx, Wh, xs, h0, k=4):
    h = h0
    with tangent.checkpoint(every=k):
        for t in range(xs.shape[0]):
            h = np.tanh(np.dot(Wx, xs[t]) + np.dot(Wh, h))
    return np.sum(h * h)


def two_carried_with_branches(x):
    a = x
    b = 0.0 * x
    with tangent.checkpoint(every=3):
        for i in range(8):
            if i % 2 == 0:
                a = np.sin(a) + b
            else:
                b = b + a * a
    return np.sum(a * b)


def overwritten_inside_read_before(x):
    a = np.sin(x)
    b = a * x
    with checkpoint(every=2):
        for i in range(5):
            a = x * i
            b = b + a * b * 0.1
    return np.sum(b * a)


def read_in_loop_overwritten_after(x, w):
    y = x * 2.0
    with tangent.checkpoint():
        for i in range(9):
            y = y * w + np.sin(y)
    w = w * 3.0
    y = y * w
    return np.sum(y)


def block_of_statements(x):
    with tangent.checkpoint():
        y = np.tanh(x) * 2.0
        z = np.exp(y) + x
    return np.sum(z * y)


def nested_checkpoints(x):
    s = x
    with tangent.checkpoint(every=2):
        for k in range(5):
            with tangent.checkpoint():
                for i in range(4):
                    s = np.cos(s) * 0.9 + x * k
    return np.sum(s)


def inside_plain_loop(x):
    s = x
    for k in range(3):
        with tangent.checkpoint(every=2):
            for i in range(5):
                s = np.sin(s) + x * k
    return np.sum(s)


def inner_loop_in_body(x):
    s = x
    with tangent.checkpoint():
        for i in range(6):
            for j in range(3):
                s = np.cos(s) * 0.9 + x
    return np.sum(s)


def over_rows(xs, w):
    h = w * 0.0
    with tangent.checkpoint():
        for x in xs:
            h = np.tanh(h * w + x)
    return np.sum(h)


def zip_enumerate(xs, ws):
    h = 0.0
    with tangent.checkpoint(every=2):
        for x, w in zip(xs, ws):
            h = np.sin(h) + x * w
    with tangent.checkpoint():
        for i, x in enumerate(xs):
            h = h * np.cos(x) + i
    return h


def helper_step(h, x, w):
    return np.tanh(h * w + x)


def calls_a_helper(xs, w):
    h = np.zeros_like(w)
    with tangent.checkpoint():
        for t in range(len(xs)):
            h = helper_step(h, xs[t], w)
    return np.sum(h * h)


def fresh_list_each_iteration(x):
    s = x
    with tangent.checkpoint():
        for i in range(7):
            parts = []
            parts.append(np.sin(s))
            parts.append(s * 0.5)
            s = parts[0] + parts[1]
    return np.sum(s)


def carried_previous_value(x):
    s = x
    prev = x
    with tangent.checkpoint(every=2):
        for i in range(7):
            nxt = s + 0.3 * np.sin(prev)
            prev = s
            s = nxt
    return np.sum(s * prev)


def no_iterations(x, n):
    h = x * 2.0
    with tangent.checkpoint():
        for i in range(n):
            h = np.sin(h)
    return np.sum(h)


def loop_with_continue(x):
    s = x
    with tangent.checkpoint(every=3):
        for i in range(9):
            if i % 3 == 1:
                continue
            s = s * np.cos(s) + 0.1 * x
    return np.sum(s)


def while_in_block(x):
    s = x
    with tangent.checkpoint():
        k = 0
        while k < 4:
            s = np.sin(s) * 1.1
            k = k + 1
    return np.sum(s * x)


@tangent.checkpoint
def leapfrog_decorated(x, v):
    """Every loop of a decorated function is checkpointed when it can be (the second one has
    a `break`, so it stays taped)."""
    p = x
    for i in range(20):
        v = v - 0.1 * np.sin(p)
        p = p + 0.1 * v
    s = 0.0 * x
    for j in range(5):
        if j > 3:
            break
        s = s + p * j
    return np.sum(p * v) + np.sum(s)


@checkpoint
def decorated_loop_in_branch(x, n):
    y = x
    if n > 2:
        for i in range(n):
            for j in range(2):
                y = np.sin(y) + 0.5 * x
    else:
        y = y * 3.0
    return np.sum(y * y)


def unmarked_loops(x, w):
    """No marker: `tangent.grad(..., checkpoint=True)` checkpoints its loops."""
    s = x
    for i in range(12):
        s = np.sin(s) * w + 0.1 * x
    t = 0.0 * x
    for j in range(4):
        for k in range(3):
            t = t + np.cos(s * (j + k))
    return np.sum(s * t)


class Cell:
    def __init__(self, W, b):
        self.W = W
        self.b = b


def rnn_cell_object(cell, xs):
    h = np.zeros(cell.b.shape[0])
    with tangent.checkpoint():
        for t in range(xs.shape[0]):
            h = np.tanh(np.dot(cell.W, h) + xs[t] + cell.b)
    return np.sum(h)


def make_args(rng):
    """Arguments and wrt of every case, by name."""
    n, d = 4, 3
    Wx = rng.standard_normal((n, d)) * 0.5
    Wh = rng.standard_normal((n, n)) * 0.5
    xs = rng.standard_normal((11, d))
    h0 = rng.standard_normal(n)
    x = rng.standard_normal(3)
    return {
        "rnn": ((Wx, Wh, xs, h0), (0, 1, 3)),
        "rnn_every_3": ((Wx, Wh, xs, h0), (0, 1, 3)),
        "rnn_every_param": ((Wx, Wh, xs, h0, 4), (0, 1)),
        "rnn_levels_2": ((Wx, Wh, xs, h0), (0, 1, 3)),
        "two_carried_levels_3": ((x,), (0,)),
        "two_carried_with_branches": ((x,), (0,)),
        "overwritten_inside_read_before": ((x,), (0,)),
        "read_in_loop_overwritten_after": ((x, rng.standard_normal(3) * 0.5), (0, 1)),
        "block_of_statements": ((x,), (0,)),
        "nested_checkpoints": ((x,), (0,)),
        "inside_plain_loop": ((x,), (0,)),
        "inner_loop_in_body": ((x,), (0,)),
        "over_rows": ((rng.standard_normal((6, 3)), rng.standard_normal(3)), (0, 1)),
        "zip_enumerate": ((list(rng.standard_normal(5)), list(rng.standard_normal(5))), (0, 1)),
        "calls_a_helper": ((rng.standard_normal((5, 3)), rng.standard_normal(3)), (0, 1)),
        "fresh_list_each_iteration": ((x,), (0,)),
        "carried_previous_value": ((x,), (0,)),
        "no_iterations": ((x, 0), (0,)),
        "loop_with_continue": ((x,), (0,)),
        "while_in_block": ((x,), (0,)),
        "leapfrog_decorated": ((x, rng.standard_normal(3)), (0, 1)),
        "decorated_loop_in_branch": ((x, 7), (0,)),
    }
