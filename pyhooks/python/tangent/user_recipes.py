"""Recipes written in your own modules: ``@tangent.adjoint(f)`` and ``@tangent.tangent_(f)``.

A recipe is a template, read by the engine from the module's source and never called::

    @tangent.adjoint(softplus)
    def softplus_adjoint(result, x):
        d[x] = d[result] * expit(x)

    @tangent.tangent_(softplus)
    def softplus_tangent(result, x):
        d[result] = d[x] * expit(x)

Its first parameter stands for ``f``'s result, the others for ``f``'s parameters (same names
and defaults as ``f``, so calls bind the same way). In an adjoint, ``d[result]`` is the
incoming adjoint and ``d[x] = ...`` gives the adjoint of parameter ``x``; in a tangent,
``d[x]`` is the tangent of ``x`` and ``d[result] = ...`` (then ``d[result] += ...``) builds the
result's. The body may use anything the module can (its imports and functions): the
generated code runs among the module's names. A recipe replaces what Tangent would do
otherwise, including a built-in recipe (``@tangent.adjoint(np.sinc)``), and the generated
code says which recipe it used.

At run time the decorators only record the template and return it unchanged.
"""

__all__ = ["adjoint", "tangent_", "registered"]

_registered = []


def _recorder(kind, functions):
    if not functions:
        raise TypeError(f"tangent.{kind}() takes the functions the recipe is for")

    def record(template):
        for function in functions:
            _registered.append((kind, function, template))
        return template

    return record


def adjoint(*functions):
    """Marks a reverse-mode recipe (an adjoint template) for ``functions``."""
    return _recorder("adjoint", functions)


def tangent_(*functions):
    """Marks a forward-mode recipe (a tangent template) for ``functions``."""
    return _recorder("tangent_", functions)


def registered():
    """``(kind, function, template)`` for every recipe defined in the modules imported so far."""
    return list(_registered)
