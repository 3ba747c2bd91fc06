"""Project settings the API and the import hook share with ``tangent build``: the recipe files
``[tool.tangent] recipes = [...]`` of the nearest ``pyproject.toml`` names (paths relative to
it), whose recipes apply to every module of the project."""

import hashlib
import os
import threading

from tangent.errors import make_error, InvalidRecipeError

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11 has no tomllib
    tomllib = None

_lock = threading.Lock()
# pyproject path -> (stamp of the pyproject and the recipe files, [(path, text)])
_cache = {}


def _pyproject_above(path):
    directory = os.path.dirname(os.path.abspath(path))
    while True:
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _mtime(path):
    try:
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size)
    except OSError:
        return None


def _named_files(pyproject):
    with open(pyproject, "rb") as f:
        data = tomllib.load(f)
    names = data.get("tool", {}).get("tangent", {}).get("recipes", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise make_error(
            InvalidRecipeError,
            "[tool.tangent] recipes must be a list of file paths",
            path=pyproject,
        )
    base = os.path.dirname(pyproject)
    return [os.path.normpath(os.path.join(base, n)) for n in names]


def recipe_files(path):
    """``[(path, text)]`` of the project recipe files that apply to the module in ``path``."""
    if tomllib is None or not path:
        return []
    pyproject = _pyproject_above(path)
    if pyproject is None:
        return []
    with _lock:
        cached = _cache.get(pyproject)
    if cached is not None:
        stamp, files = cached
        if stamp == (_mtime(pyproject), tuple(_mtime(p) for p, _ in files)):
            return files
    try:
        named = _named_files(pyproject)
    except (OSError, ValueError) as error:
        raise make_error(InvalidRecipeError, f"cannot read {pyproject}: {error}", path=pyproject) from None
    files = []
    for name in named:
        try:
            with open(name, encoding="utf-8") as f:
                files.append((name, f.read()))
        except (OSError, UnicodeDecodeError) as error:
            raise make_error(
                InvalidRecipeError,
                f"cannot read the recipe file {name} that {pyproject} names: {error}",
                path=pyproject,
            ) from None
    stamp = (_mtime(pyproject), tuple(_mtime(p) for p, _ in files))
    with _lock:
        _cache[pyproject] = (stamp, files)
    return files


def recipe_stamp(files):
    """A short hash of the recipe files' paths and texts (for cache keys)."""
    h = hashlib.sha256()
    for path, text in files:
        h.update(path.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:16] if files else ""
