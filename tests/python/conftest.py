"""Shared fixtures of the Python suite (engine-independent).

Helpers live in ``gradcheck.py`` (import them: ``from gradcheck import check_grad``); the
fixtures below expose the same functions for tests that prefer fixtures.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import gradcheck  # noqa: E402


@pytest.fixture
def numeric_grad():
    """``numeric_grad(f, args, wrt=(0,), eps=1e-6)``: central differences in float64."""
    return gradcheck.numeric_grad


@pytest.fixture
def check_grad():
    """``check_grad(f, args, wrt=(0,), rtol=1e-5, atol=1e-6, **grad_kwargs)``."""
    return gradcheck.check_grad


@pytest.fixture
def check_autodiff():
    """``check_autodiff(f, args, seed, wrt=(0,), motion='joint', optimized=True)``."""
    return gradcheck.check_autodiff
