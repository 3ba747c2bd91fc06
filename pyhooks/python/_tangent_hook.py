"""Start-up part of Tangent's import hook: makes ``from model.__grad__ import dloss`` work.

``tangent_hook.pth`` (installed next to this file in site-packages) runs
``import _tangent_hook; _tangent_hook.activate()`` when the interpreter starts. This module
must stay cheap: it imports nothing beyond ``sys`` and ``os`` (both already loaded by ``site``),
never imports ``tangent`` (NumPy) or the native engine, and adds no work to ordinary imports:

- a meta path finder, appended to ``sys.meta_path``, answers only names ending in
  ``.__grad__``. Being last, it is never asked about modules an earlier finder finds; for every
  other name it returns ``None`` after one string comparison.
- CPython refuses ``import model.__grad__`` when ``model`` is a plain module (it reads
  ``model.__path__`` before asking any finder). ``importlib._bootstrap._find_and_load`` is the
  function the interpreter calls (looked up by name at each call) for every module that is not
  yet in ``sys.modules``; it is wrapped by a function that sends names ending in ``.__grad__``
  here and calls the original for everything else. The wrapper is compiled under importlib's
  own file name so that the interpreter trims it from import tracebacks like importlib's frames.

Everything else (reading the source, the cache, calling the engine) lives in
``tangent._import_hook`` and is imported on the first ``__grad__`` import.

Set ``TANGENT_NO_IMPORT_HOOK=1`` to keep the hook from being activated at start-up;
``install()`` and ``uninstall()`` switch it on and off by hand.
"""

import os
import sys

__all__ = ["activate", "install", "uninstall", "installed", "DISABLE_ENV", "SUFFIX"]

#: Environment variable that disables activation at interpreter start-up.
DISABLE_ENV = "TANGENT_NO_IMPORT_HOOK"

#: Modules whose name ends with this are gradient modules.
SUFFIX = ".__grad__"

#: Forward-mode (``model.__jvp__``) and Hessian-vector-product (``model.__hvp__``) modules.
OTHER_SUFFIXES = (".__jvp__", ".__hvp__")


def _suffix_of(name):
    if name.endswith(SUFFIX):
        return SUFFIX
    for suffix in OTHER_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return None


class GradFinder:
    """Meta path finder for ``<module>.__grad__`` (used when ``<module>`` is a package)."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        suffix = _suffix_of(fullname)
        if suffix is None:
            return None
        from tangent import _import_hook

        if suffix == SUFFIX:
            return _import_hook.find_spec(fullname)
        return _import_hook.find_derivative_spec(fullname, suffix)

    @classmethod
    def invalidate_caches(cls):
        pass


def _load_grad_of_module(name, import_, original):
    """``_find_and_load`` for ``X.__grad__``: handles a plain-module ``X``, defers the rest."""
    suffix = _suffix_of(name) or SUFFIX
    parent_name = name[: -len(suffix)]
    if not parent_name or not _state["finder"]:  # uninstalled while another wrapper was on top
        return original(name, import_)
    if parent_name not in sys.modules:
        _state["bootstrap"]._call_with_frames_removed(import_, parent_name)
    parent = sys.modules.get(parent_name)
    if parent is None or hasattr(parent, "__path__") or name in sys.modules:
        # A package (the meta path finder answers), or already loaded/being loaded: the
        # original handles locking, `None` entries and circular imports.
        return original(name, import_)
    bootstrap = _state["bootstrap"]
    with bootstrap._ModuleLockManager(name):
        if name not in sys.modules:
            spec = GradFinder.find_spec(name)
            if spec is None:
                raise ModuleNotFoundError(
                    f"No module named {name!r}; {parent_name!r} is not a package", name=name
                )
            module = bootstrap._load_unlocked(spec)
            try:
                setattr(parent, suffix[1:], module)
            except AttributeError:
                pass
            return module
    return original(name, import_)


_original = None  # in the wrapper's globals: the wrapped `_find_and_load`


def _find_and_load(name, import_):
    # Template of the wrapper: `_make_wrapper` gives it importlib's file name and globals.
    if name[-9:] == ".__grad__" or name[-8:] == ".__jvp__" or name[-8:] == ".__hvp__":
        return _load_grad_of_module(name, import_, _original)
    return _original(name, import_)


_state = {"finder": False, "bootstrap": None, "original": None, "wrapper": None}


def _as_importlib(function, scope):
    """``function`` with importlib's file name, so import tracebacks hide it like importlib."""
    code = function.__code__.replace(co_filename="<frozen importlib._bootstrap>")
    return type(function)(code, scope, function.__name__, function.__defaults__)


def _make_wrapper(original):
    """The wrapper of ``original`` (see the module docstring)."""
    scope = {
        "__builtins__": __builtins__,
        "_original": original,
        "_load_grad_of_module": _as_importlib(_load_grad_of_module, globals()),
    }
    wrapper = _as_importlib(_find_and_load, scope)
    wrapper.__doc__ = "Tangent's wrapper of importlib._bootstrap._find_and_load."
    wrapper.__wrapped__ = original
    return wrapper


def install():
    """Activates the hook in this interpreter (idempotent). Returns True."""
    if not _state["finder"]:
        if GradFinder not in sys.meta_path:
            sys.meta_path.append(GradFinder)
        _state["finder"] = True
    if _state["wrapper"] is None:
        bootstrap = sys.modules.get("_frozen_importlib")
        original = getattr(bootstrap, "_find_and_load", None)
        if (
            original is not None
            and hasattr(bootstrap, "_ModuleLockManager")
            and hasattr(bootstrap, "_load_unlocked")
            and hasattr(bootstrap, "_call_with_frames_removed")
        ):
            wrapper = _make_wrapper(original)
            _state.update(bootstrap=bootstrap, original=original, wrapper=wrapper)
            bootstrap._find_and_load = wrapper
        # Otherwise (another Python implementation): packages still work, plain modules don't.
    return True


def uninstall():
    """Deactivates the hook (idempotent). Modules already imported stay as they are."""
    try:
        sys.meta_path.remove(GradFinder)
    except ValueError:
        pass
    _state["finder"] = False
    bootstrap, wrapper = _state["bootstrap"], _state["wrapper"]
    # If someone wrapped `_find_and_load` after us, their wrapper stays, and ours with it (it
    # then defers everything to the original, see `_load_grad_of_module`).
    if wrapper is not None and getattr(bootstrap, "_find_and_load", None) is wrapper:
        bootstrap._find_and_load = _state["original"]
        _state.update(bootstrap=None, original=None, wrapper=None)


def installed():
    """Is the hook active in this interpreter?"""
    return _state["finder"]


def activate():
    """Called by ``tangent_hook.pth`` at start-up: installs unless ``$TANGENT_NO_IMPORT_HOOK``."""
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return False
    return install()
