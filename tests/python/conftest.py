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


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    """Drop the failed test's traceback that pytest keeps in ``sys.last_*`` for post-mortem
    debugging: it holds the test's frames alive, and a runaway test (e.g. an endless loop that
    filled a stack until MemoryError) would keep all its memory for the rest of the run."""
    if report.when == "call" and report.failed:
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                setattr(sys, name, None)
