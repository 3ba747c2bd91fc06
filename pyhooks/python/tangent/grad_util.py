"""Options shared by the differentiation functions (the names google/tangent used)."""

import enum


class INPUT_DERIVATIVE(enum.Enum):
    """How a derivative function receives the adjoint of the output (the seed).

    ``Required``: it is a required trailing argument (the default of ``tangent.autodiff``).
    ``DefaultOne``: it is optional and defaults to 1.0 per output (as with ``tangent.grad``).
    """

    Required = "required"
    DefaultOne = "default-one"
