"""Realistic model programs, written the way people write NumPy model code (not for Tangent).

Each module defines a model and its loss; its ``__main__`` block trains it for a few steps
with ``tangent.grad``. ``tests/python/test_programs.py`` checks Tangent's derivatives of
these programs against finite differences.
"""
