"""Checks every recipe template in `recipes/` without the engine.

Each `@adjoint(name)` alias found by parsing the recipe files is instantiated in Python (see
recipe_harness.py) and its contributions are compared with central finite differences of
`sum(seed * primal(*args, **kwargs))`, for every argument case listed for that name in CASES
below, with an array seed shaped like the result and with a Python float seed. An alias without
cases fails `test_every_recipe_has_cases`. Names listed in `nondifferentiable(...)` must resolve
to callables.
"""
import ast
import copy
import inspect
import types

import numpy
import pytest

import recipe_harness as harness

# Valid inputs must not make a template emit NumPy warnings (divide by zero, invalid value).
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

FILES = harness.load_recipes()
RECIPES = {alias: recipe for f in FILES for recipe in f.recipes for alias in recipe.aliases}
NONDIFFERENTIABLE = [name for f in FILES for name in f.nondifferentiable]

# --------------------------------------------------------------------------- argument cases

_rng = numpy.random.default_rng(20240531)


def _draw(shape, lo, hi):
    if shape == ():
        return float(_rng.uniform(lo, hi))
    return _rng.uniform(lo, hi, size=shape)


def arr(*shape):
    """Values in [-1, 1]; a Python float when no shape is given."""
    return _draw(shape, -1.0, 1.0)


def pos(*shape):
    """Values in [0.5, 2]."""
    return _draw(shape, 0.5, 2.0)


def unit(*shape):
    """Values in [-0.8, 0.8] (domain of arcsin, arctanh, ...)."""
    return _draw(shape, -0.8, 0.8)


def nonzero(*shape):
    """Values in [0.5, 2] with random signs."""
    signs = _rng.choice([-1.0, 1.0], size=shape) if shape else float(_rng.choice([-1.0, 1.0]))
    return signs * pos(*shape)


def big(*shape):
    """Values in [1.2, 3] (domain of arccosh)."""
    return _draw(shape, 1.2, 3.0)


def wellconditioned(*shape):
    """Square matrices (stacks) close to 3 * identity."""
    return arr(*shape) + 3.0 * numpy.eye(shape[-1])


def spd(*shape):
    """Symmetric positive definite matrices (stacks): w w^T for w close to 3 * identity."""
    w = wellconditioned(*shape)
    return numpy.matmul(w, numpy.swapaxes(w, -1, -2))


def zero_d(value):
    return numpy.asarray(value)


class Case:
    def __init__(self, args, kwargs, wrt):
        self.args, self.kwargs, self.wrt = args, kwargs, wrt

    def __repr__(self):
        def show(v):
            if isinstance(v, numpy.ndarray):
                return f"array{v.shape}" if v.ndim else "array()"
            if isinstance(v, (list, tuple)):
                inner = ", ".join(show(u) for u in v)
                return f"[{inner}]" if isinstance(v, list) else f"({inner})"
            if isinstance(v, float):
                return "float"
            return repr(v)
        parts = [show(a) for a in self.args] + [f"{k}={show(v)}" for k, v in self.kwargs.items()]
        return ", ".join(parts)


def C(*args, wrt=None, **kwargs):
    """One call `primal(*args, **kwargs)`; `wrt` names the template parameters to check
    (default: every argument holding floats)."""
    return Case(args, kwargs, wrt)


def unary(gen, scalar=True):
    cases = [C(gen(4)), C(gen(2, 3)), C(zero_d(gen()))]
    return ([C(gen())] if scalar else []) + cases


def binary(gen1, gen2=None):
    gen2 = gen2 or gen1
    return [
        C(gen1(), gen2()),
        C(gen1(3), gen2(3)),
        C(gen1(2, 3), gen2(3)),
        C(gen1(3), gen2(2, 3)),
        C(gen1(2, 3), gen2(2, 1)),
        C(gen1(4, 1, 3), gen2(2, 3)),
        C(gen1(2, 3), gen2()),
        C(gen1(), gen2(2, 3)),
        C(gen1(2, 3), zero_d(gen2())),
    ]


def reductions(gen, scalar=True):
    cases = [
        C(gen(4)),
        C(gen(2, 3)),
        C(gen(2, 3), axis=0),
        C(gen(2, 3), axis=-1),
        C(gen(2, 3), 1),
        C(gen(2, 3, 4), axis=(0, 2)),
        C(gen(2, 3, 4), (-1, 0)),
        C(gen(2, 3), axis=1, keepdims=True),
        C(gen(2, 3, 4), axis=(1, 2), keepdims=True),
        C(gen(2, 3), keepdims=True),
        C(gen(2, 3, 4), axis=(-1, 0), keepdims=True),
        C(gen(2, 3), axis=-2, keepdims=False),
    ]
    return cases + ([C(gen())] if scalar else [])


ADD = binary(arr)
SUB = binary(arr)
MUL = binary(arr)
DIV = binary(arr, nonzero)
FLOORDIV = [C(numpy.array([3.3, -2.7, 5.1]), numpy.array([2.0, 1.7, -1.4])), C(3.3, 2.0),
            C(numpy.array([[3.3], [-2.7]]), 1.3)]
MOD = [C(numpy.array([3.3, -2.7, 5.1]), numpy.array([2.0, 1.7, -1.4])), C(3.3, 2.0), C(-3.3, 2.0),
       C(numpy.array([[3.3, 0.4], [-2.7, 1.1]]), numpy.array([1.3, -0.9]))]
POW = [
    C(pos(), arr()),
    C(pos(3), arr(3)),
    C(pos(2, 3), arr(3)),
    C(pos(2, 3), arr(2, 1)),
    C(pos(3), 2),
    C(pos(2, 3), 0.5),
    C(pos(), arr(2, 3)),
    C(nonzero(4), 3, wrt=[0]),
    C(nonzero(4), 2.0, wrt=[0]),
    C(numpy.array([-1.5, 2.0]), 3.0, wrt=[0]),
    C(numpy.array([0.0, 1.5]), 2.0),
    C(pos(3), 0.0),
    C(pos(3), 0),
    C(numpy.array([0.0, 1.5]), numpy.array([0.0, 0.0]), wrt=[0]),
]
NEG = unary(arr)
MATMUL = [
    C(arr(3, 4), arr(4, 2)),
    C(arr(4), arr(4, 3)),
    C(arr(3, 4), arr(4)),
    C(arr(4), arr(4)),
    C(arr(2, 3, 4), arr(4, 5)),
    C(arr(2, 3, 4), arr(1, 4, 2)),
    C(arr(4), arr(2, 4, 3)),
    C(arr(2, 3, 4), arr(4)),
    C(arr(3, 1, 2, 4), arr(5, 4, 2)),
]

SUM_LIKE = reductions(arr)
EXTREMA = reductions(arr) + [C(numpy.array([1.0, 3.0, 3.0, 2.0])),
                             C(numpy.array([[1.0, 3.0], [3.0, 3.0]]), axis=0)]
NORM = [
    C(arr(4)),
    C(arr(2, 3)),
    C(arr(2, 3, 4)),
    C(arr(2, 3), axis=1),
    C(arr(2, 3), axis=0, keepdims=True),
    C(arr(2, 3), 'fro'),
    C(arr(2, 3, 4), axis=(1, 2)),
    C(arr(2, 3, 4), None, (0, 2), True),
    C(arr(4), 1, wrt=["x"]),
    C(arr(4), 3, wrt=["x"]),
    C(arr(4), 0.5, wrt=["x"]),
    C(arr(4), numpy.inf, wrt=["x"]),
    C(arr(4), -numpy.inf, wrt=["x"]),
    C(arr(3, 4), ord=1, axis=1, wrt=["x"]),
    C(arr(3, 4), ord=numpy.inf, axis=(0,), wrt=["x"]),
]

# ------------------------------------------------------------ runtime.py (generated code)
RUNTIME_CASES = {
    "tangent.unravel": [
        C(arr(6), arr(2, 3), "C", wrt=["g"]),
        C(arr(6), arr(2, 3), "F", wrt=["g"]),
        C(arr(6), numpy.asfortranarray(arr(2, 3)), "K", wrt=["g"]),
        C(arr(6), arr(3, 2).T, "A", wrt=["g"]),
    ],
    "tangent.unbroadcast": [
        C(arr(2, 3), arr(3), wrt=["g"]),
        C(arr(3), arr(2, 3), wrt=["g"]),
        C(arr(2, 3), arr(1, 3), wrt=["g"]),
        C(arr(4), 0.5, wrt=["g"]),
    ],
    "tangent.unreduce": [
        C(arr(2), arr(2, 3), 1, False, wrt=["g"]),
        C(arr(2, 1), arr(2, 3), 1, True, wrt=["g"]),
        C(arr(3), arr(2, 3), 0, False, wrt=["g"]),
    ],
    "tangent.add_grad": [C(arr(3), arr(3)), C(arr(2, 3), arr(2, 3))],
    "tangent.add_grad_at": [
        C(arr(4), arr(4), 1, arr(), wrt=["b", "g"]),
        C(arr(2, 3), arr(2, 3), (0, slice(None)), arr(3), wrt=["b", "g"]),
    ],
    "tangent.zero_at": [C(arr(4), 2, wrt=["b"]), C(arr(2, 3), (1, slice(None)), wrt=["b"])],
    "tangent.copy": [C(arr(3)), C(arr(2, 3))],
    # Put back in place: the result is `value`'s, whatever `obj` held.
    # (An object that cannot take the value, so that the checks' calls change no argument.)
    "tangent.write_into": [C(arr(2), arr(3), wrt=["value"]), C(arr(3), arr(2, 3), wrt=["value"]), C(0.5, arr(), wrt=["value"])],
    "tangent.snapshot": [C(arr(3)), C(arr(2, 3))],
    "tangent.broadcast_into": [C(arr(3), arr(2, 3), wrt=["value"]), C(arr(), arr(4), wrt=["value"])],
    # A parameter container's gradient completed with zeros for the attributes not read.
    "tangent.attribute_grads": [
        C({"W": arr(2, 3)}, types.SimpleNamespace(W=arr(2, 3), b=arr(2), name="layer"), wrt=["g"]),
        C({"W": arr(2, 3), "s": arr()}, types.SimpleNamespace(W=arr(2, 3), s=arr(), b=arr(2)), wrt=["g"]),
    ],
    # An object made in the differentiated function: its tangent or gradient by attribute.
    "tangent.attribute_tangent": [
        C({"w": arr(2, 3), "b": arr(2)}, "w", arr(2, 3), wrt=["t"]),
        C({"b": arr(2)}, "w", arr(2, 3), wrt=["t"]),
    ],
    "tangent.object_tangent": [C("w", arr(2, 3), wrt=["t"]), C("s", arr(), wrt=["t"])],
    "tangent.appended": [C([arr(), arr()], arr()), C([arr(3)], arr(3)), C([], arr(2))],
    # The checks compare results as one array: pieces of one shape here (ragged ones are
    # covered end to end by the concatenate/hstack/vstack cases and their HVPs).
    "tangent.split_like": [
        C(arr(4), [arr(2), arr(2)], 0, wrt=["g"]),
        C(arr(2, 4), (arr(2, 2), arr(2, 2)), 1, wrt=["g"]),
        C(arr(8), [arr(2, 2), arr(2, 2)], None, wrt=["g"]),
        C(arr(2), [arr(), arr()], 0, 1, wrt=["g"]),
        C(arr(2, 3), [arr(3), arr(3)], 0, 2, wrt=["g"]),
    ],
    "tangent.join_like": [
        C([arr(2), arr(3)], [arr(2), arr(3)], 0, wrt=["pieces"]),
        C((arr(2, 2), arr(2, 3)), [arr(2, 2), arr(2, 3)], 1, wrt=["pieces"]),
        C([arr(2, 2), arr(2)], [arr(2, 2), arr(2)], None, wrt=["pieces"]),
        C([arr(), arr(2)], [arr(), arr(2)], 0, 1, wrt=["pieces"]),
        C([arr(2), arr(2, 2)], [arr(2), arr(2, 2)], 0, 2, wrt=["pieces"]),
    ],
    "tangent.to_rows": [C(arr(2, 3)), C(arr(2, 3, 4), 1), C(arr(2, 3, 4), (0, 2)), C(arr(3), -1), C(arr())],
    "tangent.from_rows": [
        C(arr(1, 6), arr(2, 3), wrt=["m"]),
        C(arr(8, 3), arr(2, 3, 4), 1, wrt=["m"]),
        C(arr(3, 8), arr(2, 3, 4), (0, 2), wrt=["m"]),
    ],
    "tangent.diagonal_like": [
        C(arr(3), arr(3, 3), wrt=["g"]),
        C(arr(2), arr(3, 4), 2, wrt=["g"]),
        C(arr(2), arr(3, 2), -1, wrt=["g"]),
        C(arr(2, 3), arr(3, 2, 3), 0, 0, 2, wrt=["g"]),
    ],
    "tangent.scatter_along_axis": [
        C(arr(4), numpy.array([2, 0, 1, 0]), 0, arr(3), wrt=["g"]),
        C(arr(2, 3), numpy.array([[1, 0, 2], [2, 2, 0]]), 1, arr(2, 3), wrt=["g"]),
        C(arr(3), numpy.array([5, 1, 1]), None, arr(2, 3), wrt=["g"]),
    ],
    "tangent.unstack": [
        C(arr(3, 2), [arr(2), arr(2), arr(2)], 0, wrt=["g"]),
        C(arr(2, 3), (arr(2), arr(2), arr(2)), 1, wrt=["g"]),
        C(arr(2), [arr(), arr()], 0, wrt=["g"]),
    ],
    "tangent.sequence_like": [C([arr(3), arr(3)], [arr(3), arr(3)], wrt=["g"]),
                              C((arr(), arr()), (arr(), arr()), wrt=["g"]),
                              C([arr(2), arr(2)], arr(2, 2), wrt=["g"])],
    "tangent.grad_like": [C(arr(), arr(2, 3), wrt=["g"]), C(arr(3), arr(2, 3), wrt=["g"]), C(arr(2, 3), arr(3), wrt=["g"])],
    "tangent.save_item": [C(arr(4), 1, wrt=["container"]), C(arr(2, 3), (0, slice(None)), wrt=["container"])],
    "tangent.matmul_adjoint_a": [
        C(arr(2, 4), arr(2, 3), arr(3, 4), wrt=["g", "b"]),
        C(arr(4), arr(3), arr(3, 4), wrt=["g", "b"]),
        C(arr(2), arr(2, 3), arr(3), wrt=["g", "b"]),
    ],
    "tangent.matmul_adjoint_b": [
        C(arr(2, 4), arr(2, 3), arr(3, 4), wrt=["g", "a"]),
        C(arr(4), arr(3), arr(3, 4), wrt=["g", "a"]),
        C(arr(2), arr(2, 3), arr(3), wrt=["g", "a"]),
    ],
    "tangent.dot_adjoint_a": [
        C(arr(2, 4), arr(2, 3), arr(3, 4), wrt=["g", "b"]),
        C(arr(2), arr(2, 3), arr(3), wrt=["g", "b"]),
    ],
    "tangent.dot_adjoint_b": [
        C(arr(2, 4), arr(2, 3), arr(3, 4), wrt=["g", "a"]),
        C(arr(2), arr(2, 3), arr(3), wrt=["g", "a"]),
    ],
}

CASES = {
    # ------------------------------------------------------------ operators.py
    "operator.add": ADD, "numpy.add": ADD,
    "operator.sub": SUB, "numpy.subtract": SUB,
    "operator.mul": MUL, "numpy.multiply": MUL,
    "operator.truediv": DIV, "numpy.divide": DIV, "numpy.true_divide": DIV,
    "operator.floordiv": FLOORDIV, "numpy.floor_divide": FLOORDIV,
    "operator.mod": MOD, "numpy.mod": MOD, "numpy.remainder": MOD,
    "operator.pow": POW, "numpy.power": POW, "numpy.float_power": POW,
    "operator.neg": NEG, "numpy.negative": NEG,
    "operator.pos": NEG, "numpy.positive": NEG,
    "operator.matmul": MATMUL, "numpy.matmul": MATMUL,
    # ------------------------------------------------------------ numpy.py, elementwise
    "numpy.exp": unary(arr), "numpy.expm1": unary(arr), "numpy.exp2": unary(arr),
    "numpy.log": unary(pos), "numpy.log2": unary(pos), "numpy.log10": unary(pos),
    "numpy.log1p": unary(unit), "numpy.sqrt": unary(pos), "numpy.cbrt": unary(nonzero),
    "numpy.square": unary(arr), "numpy.reciprocal": unary(nonzero),
    "numpy.sin": unary(arr), "numpy.cos": unary(arr), "numpy.tan": unary(arr),
    "numpy.arcsin": unary(unit), "numpy.arccos": unary(unit), "numpy.arctan": unary(arr),
    "numpy.sinh": unary(arr), "numpy.cosh": unary(arr), "numpy.tanh": unary(arr),
    "numpy.arcsinh": unary(arr), "numpy.arccosh": unary(big), "numpy.arctanh": unary(unit),
    "numpy.absolute": unary(nonzero), "numpy.abs": unary(nonzero), "numpy.fabs": unary(nonzero),
    "numpy.deg2rad": unary(arr), "numpy.radians": unary(arr),
    "numpy.rad2deg": unary(arr), "numpy.degrees": unary(arr),
    "numpy.arctan2": binary(arr, nonzero), "numpy.hypot": binary(nonzero),
    "numpy.logaddexp": binary(arr), "numpy.logaddexp2": binary(arr),
    "numpy.maximum": binary(arr) + [C(numpy.array([1.0, 2.0]), numpy.array([1.0, 3.0]))],
    "numpy.minimum": binary(arr) + [C(numpy.array([1.0, 2.0]), numpy.array([1.0, 3.0]))],
    # NaN in one argument: the other one is the result (a NaN in both would make every
    # finite difference NaN; arrays holding NaN would fail the checks' equality tests).
    "numpy.fmax": binary(arr) + [C(numpy.array([1.0, 2.0]), numpy.array([1.0, 3.0])),
                                 C(numpy.nan, 1.5), C(1.5, numpy.nan), C(arr(2, 3), numpy.nan), C(numpy.nan, arr(3))],
    "numpy.fmin": binary(arr) + [C(numpy.array([1.0, 2.0]), numpy.array([1.0, 3.0])),
                                 C(numpy.nan, 1.5), C(1.5, numpy.nan), C(arr(2, 3), numpy.nan), C(numpy.nan, arr(3))],
    "numpy.fmod": [C(numpy.array([3.3, -2.7, 5.1]), numpy.array([2.0, 1.7, -1.4])), C(-3.3, 2.0),
                   C(numpy.array([[3.3, 0.4], [-2.7, 1.1]]), numpy.array([1.3, -0.9]))],
    "numpy.where": [
        C(arr(2, 3) > 0, arr(2, 3), arr(2, 3)),
        C(arr(2, 3) > 0, arr(3), 0.5),
        C(arr(2, 1) > 0, arr(), arr(2, 3)),
        C(True, arr(2), arr(2)),
    ],
    "numpy.clip": [
        C(arr(5), -0.3, 0.4),
        C(arr(2, 3), arr(2, 3) * 0.3 - 0.3, 0.5),
        C(arr(2, 3), -0.5, arr(3) * 0.3 + 0.3),
        C(arr(4), None, 0.2),
        C(arr(4), a_min=-0.2, a_max=None),
        C(arr(2, 3), a_min=-0.5, a_max=0.5),
        C(arr(), -0.3, 0.3),
        C(arr(5), min=-0.3, max=0.4),
        C(arr(2, 3), min=arr(2, 3) * 0.3 - 0.3),
        C(arr(2, 3), max=arr(3) * 0.3 + 0.3),
        C(arr(4), min=-0.2),
    ],
    # ------------------------------------------------------------ numpy.py, reductions
    "numpy.sum": SUM_LIKE,
    "numpy.mean": SUM_LIKE,
    "numpy.prod": reductions(nonzero) + [
        C(numpy.array([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0], [1.2, 0.7, 0.9]]), axis=1),
        C(numpy.array([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0], [1.2, 0.7, 0.9]]), axis=0, keepdims=True),
        C(numpy.array([1.5, 0.0, 2.0])),
        C(numpy.array([0.0, 0.0, 2.0])),
    ],
    "numpy.var": reductions(arr) + [C(arr(5), ddof=1), C(arr(3, 4), 1, None, None, 1, True)],
    "numpy.std": reductions(arr, scalar=False) + [C(arr(5), ddof=1), C(arr(3, 4), axis=0, ddof=2)],
    "numpy.max": EXTREMA, "numpy.amax": EXTREMA, "numpy.min": EXTREMA, "numpy.amin": EXTREMA,
    "numpy.cumsum": [C(arr(4)), C(arr(2, 3)), C(arr(2, 3), axis=1), C(arr(2, 3), axis=-2),
                     C(arr(2, 3, 2), 1), C(arr(2, 3), axis=None), C(arr(3), dtype=numpy.float64), C(arr())],
    "numpy.cumprod": [
        C(nonzero(4)), C(nonzero(2, 3)), C(nonzero(2, 3), axis=1), C(nonzero(2, 3), axis=-2),
        C(nonzero(2, 3, 2), 1), C(nonzero(3), dtype=numpy.float64), C(nonzero()),
        # zeros: one, several, at the start, per slice along an axis
        C(numpy.array([1.5, 0.0, 2.0, 0.5])),
        C(numpy.array([1.5, 0.0, 2.0, 0.0, 3.0])),
        C(numpy.array([0.0, 0.0, 2.0])),
        C(numpy.array([[1.5, 0.0, 2.0], [0.0, 0.7, 3.0], [1.2, 0.7, 0.9]]), axis=1),
        C(numpy.array([[1.5, 0.0, 2.0], [0.0, 0.7, 3.0], [1.2, 0.0, 0.9]]), axis=0),
        C(numpy.array([[1.5, 0.0], [2.0, 0.5]])),
    ],
    "numpy.trace": [
        C(arr(3, 3)),
        C(arr(3, 4), 1),
        C(arr(4, 3), offset=-1),
        C(arr(2, 3, 3), axis1=1, axis2=2),
        C(arr(3, 2, 4), 1, 0, 2),
        C(arr(3, 4, 2), offset=1, axis1=1, axis2=0),
        C(arr(2, 3, 3), axis1=-1, axis2=-2),
    ],
    # ------------------------------------------------------------ numpy.py, products
    "numpy.dot": [
        C(arr(3), arr(3)),
        C(arr(2, 3), arr(3)),
        C(arr(2, 3), arr(3, 4)),
        C(arr(3), arr(3, 4)),
        C(arr(2, 3, 4), arr(4)),
        C(arr(2, 3, 4), arr(5, 4, 2)),
        C(arr(), arr(3)),
        C(arr(2, 3), arr()),
        C(arr(), arr()),
    ],
    "numpy.inner": [
        C(arr(3), arr(3)),
        C(arr(2, 3), arr(4, 3)),
        C(arr(2, 3), arr(3)),
        C(arr(3), arr(2, 4, 3)),
        C(arr(2, 2, 3), arr(4, 3)),
        C(arr(), arr(3)),
        C(arr(2, 3), arr()),
    ],
    "numpy.vdot": [C(arr(3), arr(3)), C(arr(2, 3), arr(2, 3)), C(arr(2, 3), arr(6))],
    "numpy.outer": [C(arr(3), arr(4)), C(arr(2, 2), arr(3)), C(arr(), arr(3))],
    "numpy.tensordot": [
        C(arr(2, 3, 4), arr(3, 4, 5)),
        C(arr(3, 4), arr(4, 5), 1),
        C(arr(2, 3, 4), arr(4, 3, 5), axes=([1, 2], [1, 0])),
        C(arr(2, 3), arr(4), axes=0),
        C(arr(3, 2), arr(4, 3), axes=([0], [1])),
        C(arr(2, 3), arr(3, 4), axes=(1, 0)),
        C(arr(2, 3), arr(3, 4), axes=([-1], [-2])),
        C(arr(3, 4), arr(3, 4), 2),
    ],
    "numpy.linalg.det": [C(wellconditioned(3, 3)), C(wellconditioned(2, 3, 3)), C(wellconditioned(1, 1))],
    "numpy.linalg.inv": [C(wellconditioned(3, 3)), C(wellconditioned(2, 2, 2))],
    "numpy.linalg.solve": [
        C(wellconditioned(3, 3), arr(3)),
        C(wellconditioned(3, 3), arr(3, 2)),
        C(wellconditioned(2, 3, 3), arr(2, 3, 2)),
        C(wellconditioned(2, 3, 3), arr(3)),
        C(wellconditioned(2, 3, 3), arr(3, 1)),
    ],
    "numpy.linalg.norm": NORM + [
        C(arr(2, 3), axis=-1),
        C(arr(2, 3, 4), axis=(-1, 0), keepdims=True),
        C(arr(2, 3, 4), None, -2, True),
        C(arr(2, 3), ord=3, axis=-2, keepdims=True, wrt=["x"]),
    ],
    "numpy.linalg.slogdet": [C(wellconditioned(3, 3)), C(wellconditioned(2, 3, 3)), C(-wellconditioned(3, 3)),
                             C(wellconditioned(1, 1)), C(a=wellconditioned(2, 2))],
    "numpy.linalg.cholesky": [
        C(spd(3, 3)), C(spd(2, 3, 3)), C(spd(1, 1)), C(spd(3, 3), upper=True), C(spd(2, 2, 2), upper=True),
        # NumPy reads one triangle only: the other one has no derivative
        C(spd(3, 3) + numpy.triu(arr(3, 3), 1)),
        C(spd(3, 3) + numpy.tril(arr(3, 3), -1), upper=True),
    ],
    "numpy.einsum": [
        C('ij,jk->ik', arr(2, 3), arr(3, 4)),
        C('ij,ij->', arr(2, 3), arr(2, 3)),
        C('ii->i', arr(3, 3)),
        C('ij->ji', arr(2, 3)),
        C('bij,bjk->bik', arr(2, 2, 3), arr(2, 3, 4)),
        C('i,i->', arr(3), arr(3)),
        C('ij,j->i', arr(2, 3), arr(3)),
        C('ij,jk', arr(2, 3), arr(3, 4)),  # implicit output: 'ik'
        C('ii', arr(3, 3)),  # implicit output: '' (the trace)
        C('ba', arr(2, 3)),  # implicit output: 'ab' (a transpose)
        C('ij->i', arr(2, 3)),
        C('ij->', arr(2, 3)),
        C('i,j->ij', arr(2), arr(3)),
        C('iij->ij', arr(3, 3, 2)),
        C('ii,i->i', arr(3, 3), arr(3)),
        C('...ij,...jk->...ik', arr(1, 2, 3), arr(2, 3, 2)),
        C('...i,i', arr(2, 3), arr(3)),
        C('ij,ij->ij', arr(1, 3), arr(2, 3)),  # size-1 axes broadcast
        C(',i->i', arr(), arr(3)),
        C('i,i,i->', arr(3), arr(3), arr(3)),
        C('ij,jk,kl->il', arr(2, 3), arr(3, 2), arr(2, 2)),
        C('ij, jk -> ik', arr(2, 2), arr(2, 2)),
        C('Ab,bC->AC', arr(2, 3), arr(3, 2)),
    ],
    # runtime helpers behind the einsum recipes (recipes/runtime.py)
    "tangent.einsum": [C('ij,jk->ik', arr(2, 3), arr(3, 4)), C('ii->i', arr(3, 3)), C('i,i->', arr(3), arr(3)),
                       C('i,i,i->', arr(3), arr(3), arr(3)), C(',i->i', arr(), arr(3))],
    "tangent.einsum_adjoint": [
        C(arr(2, 4), 'ij,jk->ik', 0, arr(2, 3), arr(3, 4)),
        C(arr(2, 4), 'ij,jk->ik', 1, arr(2, 3), arr(3, 4)),
        C(arr(3), 'ii->i', 0, arr(3, 3)),
        C(arr(2), 'ij->i', 0, arr(2, 3)),
        C(arr(), 'i,i,i->', 1, arr(3), arr(3), arr(3)),
        C(0.5, 'ij,ij->ij', 0, arr(1, 3), arr(2, 3)),
        C(arr(2, 3), ',ij->ij', 0, arr(), arr(2, 3)),
    ],
    # ------------------------------------------------------------ numpy.py, shapes
    "numpy.reshape": [C(arr(2, 3), (3, 2)), C(arr(2, 3), (-1,)), C(arr(6), shape=(2, 3)),
                      C(arr(2, 3), (3, 2), order='F'), C(arr(2, 3, 2), (4, 3), 'F'), C(arr(), (1, 1))],
    "numpy.ravel": [C(arr(2, 3)), C(arr(2, 3), 'F'), C(arr(2, 3, 2), order='F'), C(arr(4)),
                    # 'K'/'A' read memory order; finite differences perturb C-ordered copies, so
                    # the cases are C-ordered (tangent.unravel's own cases cover other layouts).
                    C(arr(2, 3), 'K'), C(arr(2, 3), order='A')],
    "numpy.expand_dims": [C(arr(3), 0), C(arr(2, 3), -1), C(arr(2, 3), (0, 3)), C(arr(), 0),
                          C(arr(2, 3), axis=1)],
    "numpy.squeeze": [C(arr(1, 3, 1)), C(arr(1, 3, 1), axis=0), C(arr(1, 3, 1), (0, 2)), C(arr(1, 1))],
    "numpy.atleast_1d": [C(arr()), C(arr(3)), C(arr(2, 3)), C(zero_d(arr()))],
    "numpy.atleast_2d": [C(arr()), C(arr(3)), C(arr(2, 3)), C(arr(2, 3, 4))],
    "numpy.atleast_3d": [C(arr()), C(arr(3)), C(arr(2, 3)), C(arr(2, 3, 4))],
    "numpy.transpose": [C(arr(2, 3)), C(arr(2, 3, 4), (2, 0, 1)), C(arr(2, 3, 4), axes=(1, -1, 0)),
                        C(arr(3))],
    "numpy.permute_dims": [C(arr(2, 3)), C(arr(2, 3, 4), (2, 0, 1)), C(arr(2, 3, 4), axes=(1, -1, 0))],
    "numpy.swapaxes": [C(arr(2, 3, 4), 0, 2), C(arr(2, 3), -1, 0), C(arr(2, 3, 4), axis1=1, axis2=-1)],
    "numpy.moveaxis": [C(arr(2, 3, 4), 0, -1), C(arr(2, 3, 4), (0, 1), (2, 0)),
                       C(arr(2, 3, 4), source=2, destination=0)],
    "numpy.flip": [C(arr(2, 3)), C(arr(2, 3), 1), C(arr(2, 3, 4), axis=(0, 2)), C(arr(4), -1)],
    "numpy.fliplr": [C(arr(2, 3)), C(arr(2, 3, 4))],
    "numpy.flipud": [C(arr(2, 3)), C(arr(4))],
    "numpy.roll": [C(arr(5), 2), C(arr(2, 3), 1, axis=1), C(arr(2, 3), (1, -1), (0, 1)),
                   C(arr(2, 3), -4), C(arr(2, 3), shift=5, axis=-1)],
    "numpy.broadcast_to": [C(arr(3), (2, 3)), C(arr(2, 1), (2, 4)), C(arr(), (2, 2)),
                           C(arr(1, 3), shape=(4, 2, 3))],
    "numpy.tile": [C(arr(3), 2), C(arr(2, 3), (2, 1)), C(arr(3), (2, 2)), C(arr(2, 3), (2,)),
                   C(arr(2, 1, 3), (2, 3)), C(arr(), 3), C(arr(2, 3), reps=(3, 1, 2))],
    "numpy.repeat": [C(arr(3), 2), C(arr(2, 3), 2, axis=1), C(arr(2, 3), [1, 0, 2], axis=1),
                     C(arr(2, 2), [2, 0, 1, 3]), C(arr(2, 3), 3, -2), C(arr(), 3),
                     C(arr(2, 3), repeats=[2, 1], axis=0)],
    "numpy.take": [
        C(arr(5), [0, 3, 3, -1]),
        C(arr(2, 3), [2, 0, 2], axis=1),
        C(arr(3, 4), numpy.array([[0, 1], [2, 2]]), axis=0),
        C(arr(2, 3, 2), numpy.array([[0, 1], [2, 2]]), axis=1),
        C(arr(2, 5), 17, mode='wrap'),
        C(arr(5), [6, -1], mode='clip'),
        C(arr(2, 3), [[0, 5], [6, -7]], axis=1, mode='wrap'),
        C(arr(4), 2),
        C(arr(3, 2), 1, -1),
        C(arr(3, 2), indices=[2, 0], axis=0, mode='raise'),
    ],
    "numpy.bincount": [C(numpy.array([0, 2, 2, 1, 2]), arr(5)), C(numpy.array([3, 0, 3]), arr(3), 6),
                       C(numpy.array([1, 1]), weights=arr(2), minlength=4), C(numpy.array([0, 1]), [arr(), arr()])],
    "numpy.sort": [C(arr(5)), C(arr(2, 4)), C(arr(2, 4), axis=0), C(arr(2, 3), axis=None),
                   C(arr(3, 3), -1, 'stable')],
    "numpy.diagonal": [
        C(arr(3, 3)), C(arr(3, 4), 1), C(arr(4, 3), offset=-2), C(arr(2, 3, 3), 0, 1, 2),
        C(arr(3, 2, 4), offset=1, axis1=2, axis2=0),
    ],
    "numpy.take_along_axis": [
        C(arr(4), numpy.array([3, 0, 0, 2]), 0),
        C(arr(2, 3), numpy.array([[2, 0], [1, 1]]), axis=1),
        C(arr(2, 3), numpy.array([[1, 0, 1]]), 0),
        C(arr(2, 3), numpy.array([4, 1, 5]), None),
    ],
    "numpy.diag": [C(arr(3)), C(arr(3), 1), C(arr(3), k=-2), C(arr(3, 3)), C(arr(3, 4), 1),
                   C(arr(4, 3), -1), C(arr(2, 4), k=-1), C(arr(3, 4), 2), C(v=arr(3, 3), k=1)],
    # ------------------------------------------------------------ the array API's spellings
    "numpy.asin": unary(unit), "numpy.acos": unary(unit), "numpy.atan": unary(arr),
    "numpy.asinh": unary(arr), "numpy.acosh": unary(big), "numpy.atanh": unary(unit),
    "numpy.atan2": binary(arr, nonzero), "numpy.pow": POW,
    "numpy.concat": [C([arr(2), arr(3)]), C([arr(2, 3), arr(2, 2)], axis=1), C((arr(2, 2), arr(3)), axis=None)],
    "numpy.astype": [C(arr(2, 3), numpy.float64), C(arr(3), "float64", copy=False)],
    "numpy.matrix_transpose": [C(arr(2, 3)), C(arr(4, 2, 3))],
    "numpy.linalg.matrix_transpose": [C(arr(2, 3)), C(arr(2, 2, 3))],
    "numpy.linalg.vecdot": [C(arr(3), arr(3)), C(arr(2, 3), arr(3)), C(arr(3, 2), arr(3, 2), axis=0),
                            C(arr(2, 3, 4), arr(2, 3, 4), axis=-2)],
    "numpy.linalg.vector_norm": [C(arr(4)), C(arr(2, 3)), C(arr(2, 3), axis=1), C(arr(2, 3), axis=0, keepdims=True),
                                 C(arr(3), ord=1), C(arr(2, 3), ord=3), C(arr(2, 3), axis=(0, 1), ord=2)],
    "numpy.append": [C(arr(3), arr(2)), C(arr(2, 3), arr(1, 3), axis=0), C(arr(2, 3), arr(2, 2), axis=1),
                     C(arr(2, 2), arr(3)), C(arr(3), 1.5)],
    "numpy.concatenate": [
        C([arr(2), arr(3)]),
        C([arr(2, 3), arr(1, 3)]),
        C([arr(2, 3), arr(2, 2)], axis=1),
        C([arr(2, 3), arr(2, 2)], -1),
        C((arr(2, 2), arr(3)), axis=None),
        C([arr(2, 3), arr(4, 3), arr(1, 3)], 0),
        C([arr(3)]),
        C([arr(2), arr(3)], axis=0, dtype=numpy.float64, casting='same_kind'),
    ],
    "numpy.stack": [C([arr(3), arr(3)]), C([arr(2, 3), arr(2, 3), arr(2, 3)], axis=1),
                    C([arr(2), arr(2)], -1), C([arr(), arr()]), C((arr(2), arr(2)), axis=1),
                    C([arr(3), arr(3)], axis=1, dtype=numpy.float64)],
    "numpy.hstack": [C([arr(2), arr(3)]), C([arr(2, 1), arr(2, 3)]), C([arr(), arr(2)]),
                     C([arr(), arr()]), C((arr(2, 2, 1), arr(2, 1, 1))), C([arr(2), arr(2)], dtype=numpy.float64)],
    "numpy.vstack": [C([arr(3), arr(3)]), C([arr(2, 3), arr(3)]), C([arr(), arr()]),
                     C((arr(2, 2, 2), arr(1, 2, 2))), C(tup=[arr(3), arr(3)], casting='same_kind')],
    # pieces of equal shapes only: the checks compare the pieces as one array
    "numpy.split": [C(arr(6), 2), C(arr(6), 3), C(arr(6), [2, 4]), C(arr(2, 4), 2, axis=1),
                    C(arr(4, 3), [2], 0), C(arr(2, 6), indices_or_sections=3, axis=-1)],
    "numpy.array_split": [C(arr(6), 3), C(arr(2, 4), 2, axis=1), C(arr(6), [2, 4]), C(arr(2, 6), 2, -1)],
    "numpy.pad": [
        C(arr(3), 1),
        C(arr(3), (1, 2)),
        C(arr(2, 3), ((1, 0), (2, 1))),
        C(arr(2, 3), 1, constant_values=arr()),
        C(arr(2, 3), ((1, 2), (0, 1)), 'constant', constant_values=(arr(), arr())),
        C(arr(2, 3), 1, constant_values=((arr(), arr()), (arr(), arr()))),
        C(arr(2, 3), ((2, 1), (1, 2)), constant_values=arr(2, 2)),
        C(arr(2, 2, 2), ((1, 0), (0, 1), (1, 1)), constant_values=arr(3, 2)),
        C(arr(3), 2, mode='edge'),
        C(arr(2, 3), (1, 2), mode='reflect'),
        C(arr(2, 3), 2, mode='symmetric'),
        C(arr(2, 3), ((1, 0), (4, 2)), mode='wrap'),
        C(array=arr(2, 3), pad_width=1, mode='constant', constant_values=arr()),
    ],
    "numpy.triu": [C(arr(3, 3)), C(arr(3, 4), 1), C(arr(4, 3), k=-1), C(arr(2, 3, 3)), C(arr(3)), C(arr(3), k=1)],
    "numpy.tril": [C(arr(3, 3)), C(arr(3, 4), 1), C(arr(4, 3), k=-1), C(arr(2, 3, 3)), C(arr(3)), C(m=arr(3), k=-1)],
    # ------------------------------------------------------------ numpy.py, conversions
    "numpy.array": [C([arr(), arr(), arr()]), C(arr(2, 3)), C([arr(3), arr(3)]), C(arr(3), ndmin=2),
                    C(arr()), C((arr(), arr())), C([arr(), arr()], dtype=numpy.float64),
                    C(arr(2, 2), copy=True, order='F')],
    "numpy.asarray": [C(arr(3)), C([arr(), arr()]), C(arr()), C([arr(2), arr(2)]),
                      C(arr(2, 2), dtype=numpy.float64)],
    "numpy.asanyarray": [C(arr(3)), C([arr(), arr()]), C(arr())],
    "numpy.copy": [C(arr(3)), C(arr()), C(arr(2, 2), order='F')],
    "numpy.float64": [C(arr()), C(zero_d(arr())), C(arr(3))],
    # ------------------------------------------------------------ math.py
    "math.exp": [C(arr()), C(1.7)], "math.expm1": [C(arr()), C(1e-3)], "math.exp2": [C(arr()), C(2.5)],
    "math.log": [C(pos()), C(pos(), 2.0), C(3.0, 10.0), C(0.7, 0.5)],
    "math.log2": [C(pos()), C(8.0)], "math.log10": [C(pos()), C(100.0)],
    "math.log1p": [C(unit()), C(3.0)], "math.sqrt": [C(pos()), C(4.0)],
    "math.cbrt": [C(pos()), C(-2.0)],
    "math.pow": [C(pos(), arr()), C(-2.0, 3.0, wrt=["x"]), C(0.0, 2.0), C(2.0, 0.0), C(1.5, 2)],
    "math.sin": [C(arr()), C(2.5)], "math.cos": [C(arr()), C(2.5)], "math.tan": [C(arr()), C(-1.2)],
    "math.asin": [C(unit()), C(-0.5)], "math.acos": [C(unit()), C(0.5)], "math.atan": [C(arr()), C(3.0)],
    "math.atan2": [C(0.3, -1.2), C(-2.0, 0.5), C(1.0, 1.0)],
    "math.sinh": [C(arr()), C(1.5)], "math.cosh": [C(arr()), C(-1.5)], "math.tanh": [C(arr()), C(0.5)],
    "math.asinh": [C(arr()), C(-2.0)], "math.acosh": [C(big()), C(2.0)], "math.atanh": [C(unit()), C(-0.3)],
    "math.fabs": [C(1.3), C(-0.7)],
    "math.fmod": [C(5.3, 2.0), C(-5.3, 2.0), C(5.3, -1.7)],
    "math.erf": [C(0.3), C(-1.1)], "math.erfc": [C(0.3), C(-1.1)],
    "math.degrees": [C(arr()), C(2.0)], "math.radians": [C(arr()), C(90.0)],
    # ------------------------------------------------------------ builtins.py
    "builtins.abs": [C(1.3), C(-0.7), C(nonzero(3)), C(nonzero(2, 2))],
    "builtins.pow": [C(pos(), arr()), C(pos(3), 2), C(-1.5, 3, wrt=["base"]), C(base=pos(), exp=1.5),
                     C(pos(2, 2), arr(2, 2)), C(2.0, 0.0)],
    "builtins.float": [C(arr()), C(zero_d(arr())), C(numpy.float64(arr()))],
    "builtins.sum": [C([arr(), arr(), arr()]), C(arr(4)), C(arr(3, 2)), C([arr(2), arr(2)]),
                     C([arr(), arr()], 1.5), C([arr(), arr()], start=arr()), C((arr(), arr()))],
    "builtins.tuple": [C([arr(3), arr(3)]), C((arr(), arr())), C(arr(3, 2)), C(arr(4))],
    "builtins.list": [C([arr(3), arr(3)]), C((arr(), arr())), C(arr(3, 2)), C(arr(4))],
    "builtins.max": [C(0.3, 0.7), C(0.7, 0.3), C(-1.0, 2.0)],
    "builtins.min": [C(0.3, 0.7), C(0.7, 0.3), C(-1.0, 2.0)],
}
CASES.update(RUNTIME_CASES)


# ------------------------------------------------ math.py (more), scipy.py, special functions
def prob(*shape):
    """Values in [0.1, 0.9] (domain of logit, ndtri)."""
    return _draw(shape, 0.1, 0.9)


def around_one(*shape):
    """Values in [0.2, 1.8] (domain of erfcinv)."""
    return _draw(shape, 0.2, 1.8)


# Points across digamma's range: negative non-integers, near 0, its positive zero, large.
SPECIAL_POINTS = numpy.array([-3.7, -0.4, 0.05, 0.2, 1.4616, 7.0, 25.0])
GAMMA_POINTS = numpy.array([-2.5, -0.5, 0.3, 1.0, 5.5])
DIGAMMA = unary(pos) + [C(SPECIAL_POINTS), C(-2.5), C(1.4616321449683622)]

MATH_SCIPY_CASES = {
    # ------------------------------------------------------------ math.py
    "math.gamma": [C(pos()), C(0.3), C(4.5), C(-1.5), C(-0.3), C(12.0)],
    "math.lgamma": [C(pos()), C(0.01), C(1.4616), C(7.5), C(-2.5), C(-0.6), C(30.0)],
    "math.hypot": [C(3.0, 4.0), C(-1.2, 0.5), C(2.0), C(-0.7), C(1.0, -2.0, 2.0), C(arr(), arr(), arr(), arr()),
                   C(0.0, 0.0), C(0.0, 0.0, 0.0)],
    "math.dist": [C((1.0, 2.0), (0.5, -1.0)), C([arr(), arr(), arr()], [arr(), arr(), arr()]), C(arr(4), arr(4)),
                  C([1.5], [0.5]), C((1.0, 2.0), (1.0, 2.0)), C([arr(), arr()], (0.5, 0.5), wrt=["p"])],
    "math.fsum": [C([arr(), arr(), arr()]), C((0.1, 0.2, 0.3)), C(arr(5)), C([1e16, 1.0, -1e16])],
    "math.prod": [C([arr(), arr(), arr()]), C((1.5, -2.0)), C(nonzero(4)), C([1.5, 0.0, 2.0]), C([0.0, 0.0, 2.0]),
                  C([arr(), arr()], start=arr()), C([arr(2), arr(2)]), C([nonzero(), nonzero()], start=2)],
    "math.sumprod": [C([arr(), arr(), arr()], [arr(), arr(), arr()]), C((1.5, 2.0), (0.5, -1.0)), C(arr(4), arr(4))],
    "math.fma": [C(arr(), arr(), arr()), C(1.5, -2.0, 0.25)],
    "math.copysign": [C(1.3, -2.0), C(-0.7, 0.5), C(-0.7, -0.5), C(2.0, 0.0, wrt=["x"]), C(0.0, 1.0, wrt=["y"])],
    "math.ldexp": [C(arr(), 3), C(1.7, -2), C(-0.3, 0)],
    "math.remainder": [C(5.3, 2.0), C(-5.3, 2.0), C(7.9, -1.7), C(0.4, 3.0)],
    "math.nextafter": [C(1.3, 2.0), C(-0.7, -5.0), C(0.5, 0.5)],
    "math.modf": [C(2.3), C(-1.7), C(arr())],
    "math.frexp": [C(2.3), C(-0.3), C(1000.5), C(arr())],
    # ------------------------------------------------------------ scipy.py
    "scipy.special.expit": unary(arr) + [C(numpy.array([-30.0, 0.0, 30.0]))],
    "scipy.special.log_expit": unary(arr) + [C(numpy.array([-40.0, 0.0, 40.0]))],
    "scipy.special.logit": unary(prob),
    "scipy.special.logsumexp": [
        C(arr(4)), C(arr(2, 3)), C(arr(2, 3), axis=0), C(arr(2, 3), axis=-1), C(arr(2, 3), 1, keepdims=True),
        C(arr(2, 3, 4), axis=(0, 2)), C(arr(2, 3, 4), (2, 1), None, True), C(arr(2, 3), axis=None, keepdims=True),
        C(arr(2, 3), b=pos(2, 3)), C(arr(2, 3), axis=1, b=pos(3)), C(arr(3), b=pos(2, 3), axis=-1),
        C(arr(2, 3), 0, pos(2, 1), True), C(arr(4), b=numpy.array([1.0, 0.0, 2.0, 0.5])),
        C(arr(2, 3), b=2.5), C(arr()), C(zero_d(arr())), C(numpy.array([1000.0, 1000.5, 999.0])),
    ],
    "scipy.special.softmax": [C(arr(4)), C(arr(2, 3)), C(arr(2, 3), axis=0), C(arr(2, 3), axis=-1),
                              C(arr(2, 3, 2), axis=(0, 2)), C(arr(2, 3), 1), C(arr()), C(numpy.array([800.0, 801.0]))],
    "scipy.special.log_softmax": [C(arr(4)), C(arr(2, 3)), C(arr(2, 3), axis=0), C(arr(2, 3), axis=-1),
                                  C(arr(2, 3, 2), axis=(0, 2)), C(arr(2, 3), 1), C(arr()), C(numpy.array([800.0, 801.0]))],
    "scipy.special.erf": unary(arr), "scipy.special.erfc": unary(arr),
    "scipy.special.erfcx": unary(arr) + [C(numpy.array([-2.0, 5.0, 30.0]))],
    "scipy.special.erfinv": unary(unit), "scipy.special.erfcinv": unary(around_one),
    "scipy.special.ndtr": unary(arr) + [C(numpy.array([-6.0, 6.0]))],
    "scipy.special.log_ndtr": unary(arr) + [C(numpy.array([-20.0, -5.0, 3.0, 10.0]))],
    "scipy.special.ndtri": unary(prob),
    "scipy.special.gamma": unary(pos) + [C(GAMMA_POINTS)],
    "scipy.special.gammaln": unary(pos) + [C(SPECIAL_POINTS), C(40.0)],
    "scipy.special.digamma": DIGAMMA, "scipy.special.psi": DIGAMMA,
    "scipy.special.polygamma": [C(1, pos(3)), C(numpy.array([0, 1, 2]), pos(3)), C(2, numpy.array([-1.5, 0.3, 4.0])),
                                C(0, pos()), C(numpy.array([[0], [2]]), pos(3)), C(n=3, x=pos(2, 2))],
    "scipy.special.xlogy": binary(arr, pos) + [
        C(numpy.array([0.0, 1.5, 0.0]), numpy.array([2.0, 2.0, 3.0])),
        C(numpy.array([0.0, 0.0]), numpy.array([0.0, 1.0]), wrt=["y"]),
    ],
    "scipy.special.xlog1py": binary(arr, pos) + [
        C(numpy.array([0.0, 1.5, 0.0]), numpy.array([-0.5, 2.0, 3.0])),
        C(numpy.array([0.0, 0.0]), numpy.array([-1.0, 1.0]), wrt=["y"]),
    ],
    "scipy.special.entr": unary(pos),
    # ------------------------------------------------------------ runtime.py, special functions
    "tangent.digamma": DIGAMMA,
    "tangent.polygamma": [C(1, pos()), C(0, pos(3)), C(2, numpy.array([-1.5, 0.3, 4.0])), C(3, pos(2, 2)),
                          C(numpy.array([0, 1, 2]), pos(3)), C(numpy.array([[0], [1]]), pos(3)), C(1, SPECIAL_POINTS)],
}
CASES.update(MATH_SCIPY_CASES)


# ------------------------------------------------ numpy.py: more reductions, products, shapes
XP = numpy.array([-1.0, -0.2, 0.5, 1.0])  # interp's knots: the random points fall between them
VSTACK_CASES = [C([arr(3), arr(3)]), C([arr(2, 3), arr(3)]), C([arr(), arr()]),
                C((arr(2, 2, 2), arr(1, 2, 2))), C(tup=[arr(3), arr(3)], casting='same_kind')]
NUMPY_MORE_CASES = {
    "numpy.average": [
        C(arr(4)), C(arr(2, 3), axis=0), C(arr(2, 3), 1), C(arr()), C(arr(2, 3), keepdims=True),
        C(arr(2, 3), weights=pos(2, 3)), C(arr(2, 3), None, pos(2, 3)), C(arr(2, 3), axis=-1, weights=pos(2, 3)),
        C(arr(2, 3), 1, pos(3)), C(arr(2, 3), axis=0, weights=pos(2)), C(arr(2, 3), axis=1, weights=pos(3), keepdims=True),
        C(arr(2, 3, 4), axis=(0, 2), weights=pos(2, 4)), C(arr(2, 3, 4), axis=(2, 0), weights=pos(4, 2)),
        C(arr(2, 3, 4), axis=(-1, 1), weights=pos(4, 3), keepdims=True), C(arr(3), weights=[pos(), pos(), pos()]),
    ],
    "numpy.nansum": SUM_LIKE, "numpy.nanmean": SUM_LIKE,
    "numpy.nanmax": EXTREMA, "numpy.nanmin": EXTREMA,
    "numpy.ptp": reductions(arr) + [C(numpy.array([1.0, 3.0, 3.0, 2.0])), C(numpy.array([[1.0, 3.0], [3.0, 3.0]]), axis=0)],
    "numpy.sinc": unary(arr) + [C(numpy.array([0.0, 1e-4, -5e-4, 2e-3, 1.0, -2.5])), C(0.0)],
    "numpy.cross": [
        C(arr(3), arr(3)), C(arr(2, 3), arr(3)), C(arr(4, 1, 3), arr(2, 3)), C(arr(3, 4), arr(4, 3), axisa=0),
        C(arr(3, 4), arr(3, 4), axis=0), C(arr(2, 3), arr(2, 3), axisc=0), C(arr(3, 2, 3), arr(3, 1, 2, 3), -1, -1, 1),
        # (2-vectors, deprecated by NumPy 2, warn: they are checked in test_numpy_more.py)
    ],
    "numpy.kron": [C(arr(2), arr(3)), C(arr(2, 2), arr(2, 3)), C(arr(2), arr(2, 3)), C(arr(2, 3), arr(2)),
                   C(arr(), arr(3)), C(arr(2, 1, 2), arr(3, 2)), C(arr(), arr())],
    "numpy.linalg.multi_dot": [
        C([arr(2, 3), arr(3, 4)]), C([arr(2, 3), arr(3, 4), arr(4, 2)]), C([arr(3), arr(3, 4), arr(4)]),
        C([arr(3), arr(3, 2)]), C((arr(2, 3), arr(3))), C([arr(2, 3), arr(3, 3), arr(3, 2), arr(2, 4)]),
        C([arr(3), arr(3)]), C(arrays=[arr(4), arr(4, 2), arr(2, 3)]),
    ],
    "numpy.linalg.matrix_power": [
        C(wellconditioned(3, 3), 2), C(arr(3, 3), 3), C(wellconditioned(3, 3), -2), C(wellconditioned(3, 3), 0),
        C(arr(3, 3), 1), C(arr(2, 3, 3), 2), C(wellconditioned(2, 2), n=-1), C(a=arr(2, 2), n=4),
    ],
    "numpy.linalg.pinv": [
        C(wellconditioned(3, 3)), C(arr(4, 2)), C(arr(2, 4)), C(arr(2, 3, 2)), C(a=arr(3, 2)),
        C(spd(3, 3), hermitian=True), C(spd(3, 3) + numpy.triu(arr(3, 3), 1), None, True), C(spd(2, 3, 3), hermitian=True),
        C(arr(3, 2), rtol=1e-12),
    ],
    "numpy.row_stack": VSTACK_CASES,
    "numpy.column_stack": [C([arr(3), arr(3)]), C([arr(3, 2), arr(3)]), C((arr(2, 2), arr(2, 1))), C([arr(), arr()]),
                           C([arr(3)]), C(tup=[arr(2, 3, 2), arr(2, 1, 2)])],
    "numpy.dstack": [C([arr(3), arr(3)]), C([arr(2, 3), arr(2, 3)]), C([arr(2, 2, 2), arr(2, 2)]), C([arr(), arr()]),
                     C((arr(2, 1, 3), arr(2, 1, 1))), C(tup=[arr(2)])],
    "numpy.diff": [
        C(arr(5)), C(arr(5), 2), C(arr(3, 4), axis=0), C(arr(3, 4), 1, -1), C(arr(2, 5), n=3), C(arr(4), 0),
        C(arr(4), prepend=arr()), C(arr(4), append=arr(2)), C(arr(3, 4), axis=0, prepend=arr(1, 4), append=arr()),
        C(arr(3, 4), 2, 0, arr(), arr(2, 4)), C(arr(2, 3), n=2, axis=-1, prepend=arr(2, 2), append=arr(2, 1)),
    ],
    "numpy.convolve": [
        C(arr(5), arr(3)), C(arr(3), arr(5)), C(arr(5), arr(3), 'same'), C(arr(3), arr(6), 'same'), C(arr(4), arr(4), 'same'),
        C(arr(6), arr(3), mode='valid'), C(arr(3), arr(5), 'valid'), C(arr(1), arr(4)), C(arr(5), arr(2), 'same'),
        C(arr(2), arr(5), 'same'), C(arr(4), arr(6), 'same'), C(a=arr(4), v=arr(4), mode='full'),
    ],
    "numpy.correlate": [
        C(arr(5), arr(3)), C(arr(3), arr(5)), C(arr(5), arr(3), 'same'), C(arr(3), arr(6), 'same'), C(arr(4), arr(4), 'same'),
        C(arr(6), arr(3), mode='full'), C(arr(3), arr(5), 'full'), C(arr(1), arr(4), 'same'), C(arr(5), arr(2), 'same'),
        C(arr(2), arr(5), 'same'), C(arr(4), arr(6), 'same'), C(arr(4), arr(7), 'same'), C(a=arr(4), v=arr(4), mode='valid'),
    ],
    "numpy.interp": [
        C(arr(5), XP, arr(4)), C(arr(), XP, arr(4)), C(numpy.array([-1.5, -0.6, 0.1, 0.9, 1.7]), XP, arr(4)),
        C(numpy.array([-1.5, 0.1, 1.7]), XP, arr(4), left=arr(), right=arr()), C(arr(2, 3), XP, arr(4)),
        C(numpy.array([-1.5, 0.3]), XP, arr(4), right=arr()), C(arr(3), [-1.0, 0.0, 1.0], [arr(), arr(), arr()]),
        C(x=numpy.array([1.5, -0.3]), xp=XP, fp=arr(4), left=arr(), right=None),
    ],
}
CASES.update(NUMPY_MORE_CASES)


# ------------------------------------------------ scipy_stats.py
def near(lo, hi):
    """Values in [lo, hi]: a float without a shape."""
    return lambda *shape: _draw(shape, lo, hi)


def simplex(k, *points):
    """Dirichlet points: k positive components along the first axis, summing to 1."""
    w = _rng.uniform(0.5, 2.0, size=(k,) + points)
    return w / numpy.sum(w, axis=0)


def location_scale(x_gen, shapes=(), refused=(), first_name="x"):
    """Cases of f(x, *shapes, loc=0, scale=1): `shapes` are (name, generator) pairs; `refused`
    the parameters whose derivative the recipe refuses (left out of wrt)."""
    small, wide = near(-0.1, 0.1), near(1.2, 1.5)
    names = [first_name] + [n for n, _ in shapes]
    every = [p for p in names + ["loc", "scale"] if p not in refused]
    first = [p for p in names if p not in refused]

    def draw(*shape):
        return [g(*shape) for _, g in shapes]

    return [
        C(x_gen(), *draw(), wrt=first),
        C(x_gen(4), *draw(), wrt=first),
        C(x_gen(2, 3), *draw(3), small(), wide(2, 1), wrt=every),
        C(x_gen(3), *draw(), loc=small(3), scale=wide(), wrt=every),
        C(x_gen(), *draw(2, 2), small(), wide(), wrt=every),
        C(zero_d(x_gen()), *draw(), wrt=first),
    ]


def _stats_cases():
    cases = {}
    for f in ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"):
        cases[f"scipy.stats.norm.{f}"] = location_scale(arr) + [C(numpy.array([-6.0, -2.0, 3.0, 6.0]), 0.5, 2.0)]
        refusing = f not in ("logpdf", "pdf")
        cases[f"scipy.stats.t.{f}"] = location_scale(arr, [("df", near(1.5, 8.0))], ("df",) if refusing else ())
        cases[f"scipy.stats.chi2.{f}"] = location_scale(near(0.5, 3.0), [("df", near(1.5, 6.0))],
                                                        ("df",) if refusing else ())
        cases[f"scipy.stats.gamma.{f}"] = location_scale(near(0.5, 3.0), [("a", near(0.7, 4.0))],
                                                         ("a",) if refusing else ())
        cases[f"scipy.stats.beta.{f}"] = location_scale(near(0.2, 0.8), [("a", near(0.7, 3.0)), ("b", near(0.7, 3.0))],
                                                        ("a", "b") if refusing else ())
    for f in ("ppf", "isf"):
        cases[f"scipy.stats.norm.{f}"] = location_scale(prob, first_name="q")
    ks = numpy.array([0, 1, 3, 6])
    for f in ("logpmf", "pmf", "cdf", "logcdf", "sf", "logsf"):
        cases[f"scipy.stats.poisson.{f}"] = [
            C(2, pos()), C(ks, pos()), C(ks, pos(4)), C(numpy.array([[0], [4]]), pos(3)), C(5, mu=near(2.0, 6.0)(2, 2)),
            C(ks + 1, near(1.0, 4.0)(), loc=1), C(ks, 2.5, -1),
        ]
    for f in ("logpdf", "pdf"):
        cases[f"scipy.stats.multivariate_normal.{f}"] = [
            C(arr(3), arr(3), spd(3, 3)),
            C(arr(4, 3), arr(3), spd(3, 3)),
            C(arr(2, 2, 3), mean=arr(3), cov=spd(3, 3)),
            C(arr(1, 3), arr(3), spd(3, 3)),
            C(arr(4, 2), arr(2), pos(2)),
            C(arr(4, 2), arr(2), pos()),
            C(arr(3), cov=spd(3, 3)),
            C(arr(5), arr(), pos()),
            C(arr(), 0.5, pos()),
            C(arr(3), arr(3), spd(3, 3) + numpy.triu(arr(3, 3), 1)),
        ]
        cases[f"scipy.stats.dirichlet.{f}"] = [
            # With all K components SciPy checks that they sum to 1, which a finite difference in x
            # breaks: x is checked with K - 1 components (the last one is 1 - their sum).
            C(simplex(3), pos(3), wrt=["alpha"]),
            C(simplex(3, 4), pos(3), wrt=["alpha"]),
            C(simplex(4, 6), pos(4), wrt=["alpha"]),
            C(simplex(3, 1), alpha=pos(3), wrt=["alpha"]),
            C(simplex(3, 5)[:2], pos(3)),
            C(simplex(3)[:2], pos(3)),
            C(simplex(4, 2)[:3], pos(4)),
        ]
    return cases


CASES.update(_stats_cases())


# ------------------------------------------------ scipy_linalg.py
def _garbage_factor(lower):
    """A Cholesky factor in one triangle of c, arbitrary values in the other (as cho_factor)."""
    factor = numpy.linalg.cholesky(spd(3, 3))
    return factor + numpy.triu(arr(3, 3), 1) if lower else factor.T + numpy.tril(arr(3, 3), -1)


LINALG_CASES = {
    "scipy.linalg.solve": [
        C(wellconditioned(3, 3), arr(3)), C(wellconditioned(3, 3), arr(3, 2)), C(wellconditioned(2, 3, 3), arr(3)),
        C(wellconditioned(2, 3, 3), arr(2, 3, 2)), C(wellconditioned(3, 3), arr(3), transposed=True),
        C(wellconditioned(3, 3), arr(3, 2), assume_a="gen"), C(spd(3, 3), arr(3)),
        C(spd(3, 3) + numpy.tril(arr(3, 3), -1), arr(3), assume_a="sym"),
        C(spd(3, 3) + numpy.triu(arr(3, 3), 1), arr(3, 2), True, assume_a="pos"),
        C(spd(3, 3) + numpy.triu(arr(3, 3), 1), arr(3), lower=True, assume_a="symmetric", transposed=True),
        C(wellconditioned(3, 3), arr(3), assume_a="upper triangular"),
        C(wellconditioned(3, 3), arr(3, 2), assume_a="lower triangular", transposed=True),
        C(wellconditioned(3, 3), arr(3), assume_a="diagonal"),
        C(wellconditioned(4, 4), arr(4), assume_a="tridiagonal"),
    ],
    "scipy.linalg.solve_triangular": [
        C(wellconditioned(3, 3), arr(3)), C(wellconditioned(3, 3), arr(3, 2), lower=True),
        C(wellconditioned(3, 3), arr(3), trans=1), C(wellconditioned(3, 3), arr(3, 2), trans="T", lower=True),
        C(wellconditioned(3, 3), arr(3), unit_diagonal=True), C(wellconditioned(3, 3), arr(3, 2), 2, True, True),
        C(wellconditioned(3, 3), arr(3), "N", False, True),
    ],
    "scipy.linalg.cholesky": [
        C(spd(3, 3)), C(spd(3, 3), lower=True), C(spd(3, 3), True),
        C(spd(3, 3) + numpy.tril(arr(3, 3), -1)), C(spd(3, 3) + numpy.triu(arr(3, 3), 1), lower=True),
        C(spd(2, 3, 3)),
    ],
    "scipy.linalg.cho_solve": [
        C((_garbage_factor(True), True), arr(3), wrt=["b"]),
        C((_garbage_factor(False), False), arr(3, 2), wrt=["b"]),
        C((_garbage_factor(True), True), b=arr(3, 2), wrt=["b"]),
    ],
}
CASES.update(LINALG_CASES)
EXPM_CASES = {
    "scipy.linalg.expm": [C(arr(3, 3)), C(3.0 * arr(3, 3)), C(0.1 * arr(2, 2)), C(arr(2, 3, 3)), C(wellconditioned(3, 3)),
                          C(numpy.zeros((2, 2)))],
}
CASES.update(EXPM_CASES)

# --------------------------------------------------------------------------- helpers


def is_float_value(value):
    """Values the engine could treat as active: floats, float arrays, lists/tuples of those."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, (float, numpy.floating)):
        return True
    if isinstance(value, numpy.ndarray):
        return numpy.issubdtype(value.dtype, numpy.floating)
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(is_float_value(v) for v in value)
    if isinstance(value, dict):  # a parameter container's gradient
        return len(value) > 0 and all(is_float_value(v) for v in value.values())
    return False


def leaves(value, path=()):
    """Paths of every float scalar inside `value`."""
    if isinstance(value, numpy.ndarray):
        return [path + (i,) for i in numpy.ndindex(value.shape)]
    if isinstance(value, (list, tuple)):
        return [p for k, v in enumerate(value) for p in leaves(v, path + (k,))]
    if isinstance(value, dict):
        return [p for k in sorted(value) for p in leaves(value[k], path + (k,))]
    return [path]


def get_leaf(value, path):
    if not path:
        return float(value)
    if isinstance(value, numpy.ndarray):
        return float(value[path[0]])
    if isinstance(value, (list, tuple, dict)):
        return get_leaf(value[path[0]], path[1:])
    return float(value)  # a float standing for a 0-d array (path ((),))


def with_leaf(value, path, delta):
    """A copy of `value` with the float at `path` moved by `delta`."""
    if not path:
        if isinstance(value, numpy.ndarray):  # 0-d
            return numpy.asarray(value + delta)
        return type(value)(value + delta) if isinstance(value, numpy.floating) else value + delta
    if isinstance(value, numpy.ndarray):
        out = value.copy()
        out[path[0]] += delta
        return out
    if isinstance(value, dict):
        return {**value, path[0]: with_leaf(value[path[0]], path[1:], delta)}
    items = list(value)
    items[path[0]] = with_leaf(items[path[0]], path[1:], delta)
    return type(value)(items)


def check_structure(contribution, arg, label):
    """The contribution to an argument's adjoint must have the argument's structure."""
    if isinstance(arg, dict):
        assert isinstance(contribution, dict), f"{label}: adjoint of a mapping must be a dict, got {type(contribution).__name__}"
        assert contribution.keys() == arg.keys(), f"{label}: keys {sorted(contribution)} != {sorted(arg)}"
        for k in arg:
            check_structure(contribution[k], arg[k], f"{label}[{k!r}]")
        return
    if isinstance(arg, (list, tuple)):
        assert isinstance(contribution, (list, tuple)), f"{label}: adjoint of a sequence must be a list, got {type(contribution).__name__}"
        assert len(contribution) == len(arg), f"{label}: length {len(contribution)} != {len(arg)}"
        for k, (c, a) in enumerate(zip(contribution, arg)):
            check_structure(c, a, f"{label}[{k}]")
        return
    if isinstance(arg, numpy.ndarray) and arg.ndim > 0:
        assert isinstance(contribution, numpy.ndarray), f"{label}: adjoint of an array must be an array, got {type(contribution).__name__}"
    else:
        assert not (isinstance(contribution, numpy.ndarray) and contribution.ndim > 0), f"{label}: adjoint of a scalar has shape {contribution.shape}"
        if not isinstance(arg, numpy.ndarray):
            assert not isinstance(contribution, numpy.ndarray), f"{label}: adjoint of a Python float must not be a 0-d array"
    assert numpy.shape(contribution) == numpy.shape(arg), f"{label}: shape {numpy.shape(contribution)} != {numpy.shape(arg)}"
    assert numpy.issubdtype(numpy.asarray(contribution).dtype, numpy.inexact), f"{label}: dtype {numpy.asarray(contribution).dtype}"


def same_values(a, b):
    if isinstance(a, dict):  # keyword arguments
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_values(u, v) for u, v in zip(a, b))
    if isinstance(a, numpy.ndarray):
        return isinstance(b, numpy.ndarray) and a.shape == b.shape and numpy.array_equal(a, b)
    if isinstance(a, types.SimpleNamespace):  # a parameter container
        return isinstance(b, types.SimpleNamespace) and same_values(vars(a), vars(b))
    return type(a) is type(b) and (a == b or (a != a and b != b))


def bind(recipe, args, kwargs):
    """Template parameter name -> (value, how to rebuild the call with a new value)."""
    signature = inspect.signature(harness.instantiate(recipe))
    bound = signature.bind(None, None, None, *args, **kwargs)
    params = recipe.params
    where = {}
    for i in range(len(args)):
        where[params[i]] = ("arg", i)
    for k in kwargs:
        where[k] = ("kw", k)
    return {name: (bound.arguments[name], where[name]) for name in params if name in where}


def call_with(primal, args, kwargs, slot, value):
    args, kwargs = list(args), dict(kwargs)
    kind, key = slot
    if kind == "arg":
        args[key] = value
    else:
        kwargs[key] = value
    return primal(*args, **kwargs)


# --------------------------------------------------------------------------- tests


def test_recipe_files_parse_cleanly():
    assert FILES, "no recipe files found"
    problems = [p for f in FILES for p in f.problems]
    assert not problems, "\n".join(problems)


def test_recipe_files_have_docstrings():
    missing = [f.path.name for f in FILES if ast_docstring(f) is None]
    assert not missing, f"recipe files without a module docstring: {missing}"


def ast_docstring(recipe_file):
    return ast.get_docstring(recipe_file.tree)


def test_aliases_are_unique():
    seen = {}
    duplicates = []
    for f in FILES:
        for recipe in f.recipes:
            for alias in recipe.aliases:
                if alias in seen:
                    duplicates.append(f"{alias}: {seen[alias]} and {recipe.where}")
                seen[alias] = recipe.where
    both = sorted(set(seen) & set(NONDIFFERENTIABLE))
    repeated = sorted(n for n in set(NONDIFFERENTIABLE) if NONDIFFERENTIABLE.count(n) > 1)
    assert not duplicates, duplicates
    assert not both, f"both a recipe and nondifferentiable: {both}"
    assert not repeated, f"listed twice as nondifferentiable: {repeated}"


def test_every_recipe_has_cases():
    missing = sorted(alias for alias in RECIPES if not CASES.get(alias))
    stale = sorted(name for name in CASES if name not in RECIPES)
    assert not missing, f"recipes without argument cases in CASES: {missing}"
    assert not stale, f"CASES entries without a recipe: {stale}"


@pytest.mark.parametrize("alias", sorted(RECIPES))
def test_template_follows_the_rules(alias):
    problems = harness.template_problems(RECIPES[alias])
    assert not problems, f"{RECIPES[alias].where}:\n" + "\n".join(problems)


@pytest.mark.parametrize("alias", sorted(RECIPES))
def test_primal_exists_and_signature_matches(alias):
    """Template parameters mirror the primal's: same names where they can be passed by keyword,
    same positions for positional parameters, same defaults where NumPy states one."""
    primal = harness.resolve(alias)
    assert callable(primal), alias
    try:
        signature = inspect.signature(primal)
    except (TypeError, ValueError):
        pytest.skip(f"{alias} has no introspectable signature")
    recipe = RECIPES[alias]
    template = {a.arg: a for a in recipe.node.args.args[1:]}
    defaults = dict(zip([a.arg for a in recipe.node.args.args][::-1], recipe.node.args.defaults[::-1]))
    real = list(signature.parameters.values())
    positional = [p for p in real if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    has_varargs = any(p.kind == p.VAR_POSITIONAL for p in real)
    by_name = {p.name: p for p in real if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    problems = []
    for i, name in enumerate(recipe.params):
        if i < len(positional):
            p = positional[i]
            if p.kind == p.POSITIONAL_OR_KEYWORD and p.name != name:
                problems.append(f"parameter {i + 1} is {name!r}, the primal's is {p.name!r}")
        elif name in by_name:
            p = by_name[name]
        elif has_varargs and not by_name.keys() & set(recipe.params[:i]):
            continue  # leading items of f(*args): atleast_1d(arys), einsum(subscripts, operand0, ...)
        elif any(p.kind == p.VAR_KEYWORD for p in real) and i >= len(positional):
            continue  # a keyword taken by f(..., **kwargs), such as pad's constant_values
        else:
            problems.append(f"parameter {name!r} is not a parameter of the primal")
            continue
        if name in defaults and p.default is not p.empty and repr(p.default) != "<no value>":
            try:
                ours = ast.literal_eval(defaults[name])
            except ValueError:
                continue  # a numpy/math name such as math.e
            if ours != p.default:
                problems.append(f"default of {name!r} is {ours!r}, the primal's is {p.default!r}")
    assert not problems, f"{recipe.where} vs {alias}{signature}:\n" + "\n".join(problems)


def _gradient_cases():
    for alias in sorted(RECIPES):
        for i, case in enumerate(CASES.get(alias, [])):
            for seed_kind in ("array", "float"):
                yield pytest.param(alias, case, seed_kind, id=f"{alias}-{i}-{seed_kind}")


@pytest.mark.parametrize("alias, case, seed_kind", list(_gradient_cases()))
def test_gradient_matches_finite_differences(alias, case, seed_kind):
    recipe = RECIPES[alias]
    primal = harness.resolve(alias)
    args, kwargs = case.args, case.kwargs
    snapshot = copy.deepcopy((args, kwargs))
    result = primal(*args, **kwargs)

    rng = numpy.random.default_rng(7)
    if seed_kind == "array" and numpy.ndim(result) > 0:
        seed = rng.normal(size=numpy.shape(result))
    else:
        seed = 0.7  # a Python float seed, even when the result is an array

    bound = bind(recipe, args, kwargs)
    if case.wrt is None:
        wrt = [name for name, (value, _) in bound.items() if is_float_value(value)]
    else:
        wrt = [recipe.params[w] if isinstance(w, int) else w for w in case.wrt]
    assert wrt, f"case {case!r} has no float argument to check"

    template = harness.instantiate(recipe)
    result_snapshot = copy.deepcopy(result)
    contributions = template(seed, lambda name: name in wrt, result, *args, **kwargs)
    assert same_values(snapshot, (args, kwargs)), "the template modified the primal's arguments"
    assert same_values(result_snapshot, result), "the template modified the primal's result"

    def objective(slot, value):
        out = call_with(primal, args, kwargs, slot, value)
        if isinstance(out, dict):  # a parameter container's gradient: its entries in a row
            out = numpy.concatenate([numpy.ravel(out[k]) for k in sorted(out)])
        return float(numpy.sum(numpy.asarray(seed) * numpy.asarray(out, dtype=numpy.float64)))

    for name in wrt:
        value, slot = bound[name]
        numeric = []
        for path in leaves(value):
            h = 1e-6 * max(1.0, abs(get_leaf(value, path)))
            up = objective(slot, with_leaf(value, path, h))
            down = objective(slot, with_leaf(value, path, -h))
            numeric.append((up - down) / (2.0 * h))
        numeric = numpy.array(numeric)
        scale = max(1.0, float(numpy.max(numpy.abs(numeric), initial=0.0)))
        label = f"d[{name}] of {alias}({case!r})"
        if name not in contributions:
            assert numpy.allclose(numeric, 0.0, atol=1e-6 * scale), f"{label}: no contribution, but the numeric gradient is {numeric}"
            continue
        contribution = contributions[name]
        check_structure(contribution, value, label)
        analytic = numpy.array([get_leaf(contribution, path) for path in leaves(value)])
        numpy.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6 * scale, err_msg=label)


def test_norm_marks_unhandled_matrix_norms():
    """Matrix norms other than Frobenius are not handled; their adjoint must be NaN, not wrong."""
    recipe = RECIPES["numpy.linalg.norm"]
    x = arr(3, 3)
    for ord in (1, 2, numpy.inf, 'nuc'):
        y = numpy.linalg.norm(x, ord)
        out = harness.instantiate(recipe)(1.0, lambda name: True, y, x, ord)
        assert numpy.all(numpy.isnan(out["x"])), ord


@pytest.mark.parametrize("name", sorted(set(NONDIFFERENTIABLE)))
def test_nondifferentiable_name_resolves(name):
    assert callable(harness.resolve(name)), name


def test_runtime_helpers_follow_the_contract():
    """The runtime the gradient tests use (real or reference) behaves as ARCHITECTURE.md says."""
    rt = harness.RUNTIME
    print("runtime under test:", harness.RUNTIME_SOURCE)
    g = numpy.arange(6.0).reshape(2, 3)
    assert isinstance(rt.unbroadcast(g, 1.5), float) and rt.unbroadcast(g, 1.5) == 15.0
    numpy.testing.assert_array_equal(rt.unbroadcast(g, numpy.zeros(3)), [3.0, 5.0, 7.0])
    numpy.testing.assert_array_equal(rt.unbroadcast(g, numpy.zeros((2, 1))), [[3.0], [12.0]])
    numpy.testing.assert_array_equal(rt.unbroadcast(g, numpy.zeros((1, 3))), [[3.0, 5.0, 7.0]])
    numpy.testing.assert_array_equal(rt.unbroadcast(2.0, numpy.zeros((2, 2))), numpy.full((2, 2), 2.0))
    numpy.testing.assert_array_equal(rt.unbroadcast(numpy.ones(3), numpy.zeros((2, 3))), numpy.ones((2, 3)))
    numpy.testing.assert_array_equal(rt.unreduce(1.0, numpy.zeros((2, 3)), None, False), numpy.ones((2, 3)))
    numpy.testing.assert_array_equal(rt.unreduce(numpy.array([1.0, 2.0]), numpy.zeros((2, 3)), 1, False),
                                     [[1.0] * 3, [2.0] * 3])
    numpy.testing.assert_array_equal(rt.unreduce(numpy.array([1.0, 2.0]), numpy.zeros((3, 2)), -2, False),
                                     [[1.0, 2.0]] * 3)
    numpy.testing.assert_array_equal(rt.unreduce(numpy.array([[1.0], [2.0]]), numpy.zeros((2, 3)), 1, True),
                                     [[1.0] * 3, [2.0] * 3])
    numpy.testing.assert_array_equal(rt.unreduce(numpy.array([1.0, 2.0]), numpy.zeros((2, 3, 4)), (1, 2), False),
                                     numpy.broadcast_to(numpy.array([1.0, 2.0])[:, None, None], (2, 3, 4)))
    b = rt.add_grad_at(None, numpy.zeros(3), numpy.array([0, 2, 2]), numpy.ones(3))
    numpy.testing.assert_array_equal(b, [1.0, 0.0, 2.0])
    assert rt.init_grad(2) == 0.0 and rt.init_grad([1.0, numpy.ones(2)])[0] == 0.0
