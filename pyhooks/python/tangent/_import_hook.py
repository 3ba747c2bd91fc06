"""Gradient modules: ``from model.__grad__ import dloss`` (the part loaded on first use).

The start-up part is ``_tangent_hook`` (a top-level module activated by ``tangent_hook.pth``);
it routes every import of a name ending in ``.__grad__`` to :func:`find_spec` here.

``model.__grad__`` holds, for every top-level function ``f`` of ``model`` that the engine can
differentiate, ``d<f>``: the gradient w.r.t. ``f``'s first parameter, exactly what
``tangent.grad(model.f)`` returns. Other names are generated on first access by the module's
``__getattr__``: ``d<f>_d<p>`` is the gradient w.r.t. parameter ``p`` (``tangent.grad(model.f,
wrt="p")``), ``d<f>_d<p>_d<q>`` w.r.t. several (a tuple). A function that cannot be
differentiated raises ``ImportError`` carrying the engine's diagnostic (``file:line:col``).

Files. Every generated module is a real file, written atomically (temp file + ``os.replace``),
so tracebacks, ``inspect.getsource`` and pdb show generated lines and concurrent importers never
read half a file. The directory is ``$TANGENT_GENERATED_DIR`` if set, else ``__tangent__/imports/``
next to the source file, else (not writable) a per-user cache directory. File names carry a key:
``model.__grad__.<key>.py`` and ``model.__grad__.<key>.<name>.py`` for names generated on
access. The key is a SHA-256 of the source bytes, its path, the engine binary's identity (its
name, size, mtime, ctime and inode: any rebuilt or reinstalled engine is a new file, so a new
key, even with the same version number) and :data:`FORMAT`; it is computed here without the
engine, so when the file for the current key exists, the module is imported without loading
``tangent._engine`` at all. The engine's blake3 source hash is the first line of every file
(``# tangent-source-hash: <hash>``).

Trust. A generated file is executed only after it is verified: its last line is
``# tangent-content-hash: <SHA-256 of every byte before that line>``; a file that fails (edited,
truncated, replaced by hand) is generated again and written over, never run. Its bytecode is
cached as a *checked hash-based* ``.pyc`` (PEP 552), valid only for the exact bytes verified,
so a stale or foreign ``.pyc`` (same mtime and size) is never used either. Directories are used
only when they are no symbolic link (``__tangent__``, ``imports``), not world-writable and owned
by the user; the ones the hook creates are ``0o755`` and its files ``0o644``, whatever the umask.

Execution. The generated module's namespace is first filled with the user module's names
(except dunders), so generated code sees its ``np`` alias, helpers and constants; then the
generated code runs on top, and ``__file__`` is the generated file.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import inspect
import marshal
import os
import re
import sys
import tempfile
import threading
import time
from importlib.machinery import SourceFileLoader
from importlib.util import decode_source, spec_from_file_location
from types import FunctionType as _FunctionType

from tangent import _project
from tangent.errors import TangentError

__all__ = ["find_spec", "find_derivative_spec", "GradLoader", "GradientImportError", "FORMAT", "SUFFIX"]

#: Version of the layout of generated files (bump when it changes: it is part of the key).
FORMAT = "tangent-grad-module-2"

SUFFIX = ".__grad__"

#: Environment variable naming the directory for generated sources (shared with tangent.grad).
GENERATED_DIR_ENV = "TANGENT_GENERATED_DIR"

#: Name of the per-source cache directory (shared with `tangent build`'s artifacts).
CACHE_DIR_NAME = "__tangent__"

#: The hook's own subdirectory of it: `tangent build` / `check` never touch it, and the hook's
#: clean-up never touches the build's artifacts.
IMPORTS_DIR_NAME = "imports"

#: Older generated files of the same module are removed once they are this old (seconds).
STALE_AFTER = 600.0

_MARKER = "# tangent-source-hash: "

#: The last line of every file the hook writes: the SHA-256 of everything before it.
_CONTENT_MARKER = b"# tangent-content-hash: "

#: Modes of what the hook creates (explicit: a umask of 0 must not make them world-writable).
_DIR_MODE = 0o755
_FILE_MODE = 0o644

_lock = threading.RLock()
_engine_stamp = None


class GradientImportError(ImportError):
    """A gradient that cannot be generated. ``str()`` carries the engine's diagnostic;
    ``kind`` is the diagnostic kind (e.g. ``"not-differentiable"``)."""

    def __init__(self, message, *, kind=None, rendered=None, **kwargs):
        super().__init__(message, **kwargs)
        self.kind = kind
        self.rendered = rendered


# --------------------------------------------------------------------------------------------
# Finding the module


def find_spec(fullname):
    """The spec of ``<parent>.__grad__`` (the parent is already imported), or None."""
    parent_name = fullname[: -len(SUFFIX)]
    parent = sys.modules.get(parent_name)
    if parent is None or not fullname.endswith(SUFFIX):
        return None
    source_path = _source_path(parent)
    if source_path is None:
        raise ImportError(
            f"cannot import {fullname!r}: {parent_name!r} has no Python source file to "
            "differentiate",
            name=fullname,
        )
    try:
        with open(source_path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ImportError(
            f"cannot import {fullname!r}: cannot read {source_path}: {error}", name=fullname
        ) from None
    _check_parent_is_current(parent, fullname, source_path, data)
    key = _key(source_path, data)
    stem = f"{parent_name}{SUFFIX}.{key}"
    dirs = _cache_dirs(source_path)
    path = _existing(stem + ".py", dirs)
    if path is None:
        path = _writable_target(stem + ".py", dirs)
        if path is None:
            raise ImportError(
                f"cannot import {fullname!r}: no usable directory for generated code (tried "
                f"{', '.join(dirs)}: each is not writable, a symbolic link, owned by another "
                f"user or writable by everyone; set ${GENERATED_DIR_ENV})",
                name=fullname,
            )
    loader = GradLoader(fullname, path)
    loader._tangent = _State(fullname, parent, source_path, data, key, stem, dirs)
    return spec_from_file_location(fullname, path, loader=loader)


class _State:
    """What a gradient module needs to generate more of itself."""

    __slots__ = ("fullname", "parent", "source_path", "data", "key", "stem", "dirs", "_text")

    def __init__(self, fullname, parent, source_path, data, key, stem, dirs):
        self.fullname = fullname
        self.parent = parent
        self.source_path = source_path
        self.data = data
        self.key = key
        self.stem = stem
        self.dirs = dirs
        self._text = None

    @property
    def text(self):
        if self._text is None:
            self._text = decode_source(self.data)
        return self._text


def _source_path(module):
    spec = getattr(module, "__spec__", None)
    path = None
    if spec is not None and getattr(spec, "has_location", False):
        path = spec.origin
    if path is None:
        path = getattr(module, "__file__", None)
    if not isinstance(path, str) or not path.endswith((".py", ".pyw")):
        return None
    path = os.path.abspath(path)
    return path if os.path.isfile(path) else None


def _key(source_path, data):
    h = hashlib.sha256()
    # The project's shared recipe files change the generated code too.
    try:
        recipes = _project.recipe_stamp(_project.recipe_files(source_path))
    except TangentError:  # reported when the module is generated
        recipes = "unreadable"
    for part in (FORMAT, _stamp_of_engine(), source_path, recipes):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    h.update(data)
    return h.hexdigest()[:16]


def _shared_recipes(state):
    """The project's recipe files (``[tool.tangent] recipes``), or ImportError saying why not."""
    try:
        return _project.recipe_files(state.source_path)
    except TangentError as error:
        raise GradientImportError(f"cannot import {state.fullname!r}: {error}", name=state.fullname) from None


def _stamp_of_engine():
    """Identifies the engine binary without loading it (its file name, size and mtime)."""
    global _engine_stamp
    if _engine_stamp is None:
        here = os.path.dirname(os.path.abspath(__file__))
        stamp = "no-engine"
        try:
            names = sorted(os.listdir(here))
        except OSError:
            names = []
        for name in names:
            if name.startswith("_engine.") and name.endswith((".so", ".pyd", ".dylib")):
                st = os.stat(os.path.join(here, name))
                # ctime and inode too: a reinstalled engine is a new file even when an
                # installer restores the mtime and the size happens to be the same.
                stamp = f"{name}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
                break
        _engine_stamp = stamp
    return _engine_stamp


# --------------------------------------------------------------------------------------------
# Directories and files


def _check_parent_is_current(parent, fullname, source_path, data):
    """Raises ImportError when ``parent`` was run from an older version of its file.

    Gradients are generated from the file as it is now and run on the parent's names: if a
    function changed in between (an editor saved while a notebook kept the old module), they
    would silently differentiate code that is not the code in memory.
    """
    try:
        code = compile(data, source_path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return  # the engine reports the file's problem
    compiled = {c.co_name: c for c in code.co_consts if hasattr(c, "co_code")}
    for name, value in list(vars(parent).items()):
        loaded = getattr(value, "__code__", None)
        if loaded is None or getattr(value, "__module__", None) != parent.__name__:
            continue
        if loaded.co_name != name:  # a decorator's wrapper or an alias: not comparable
            continue
        current = compiled.get(name)
        if current is None or current != loaded:
            raise GradientImportError(
                f"cannot import {fullname!r}: {source_path} changed after "
                f"{parent.__name__!r} was imported (function `{name}` differs); reload "
                f"{parent.__name__!r} (importlib.reload) or restart, then import its "
                "gradients again",
                kind="stale-module",
                name=fullname,
                path=source_path,
            )


def _cache_dirs(source_path):
    configured = os.environ.get(GENERATED_DIR_ENV)
    if configured:
        return [os.path.abspath(os.path.expanduser(configured))]
    return [os.path.join(os.path.dirname(source_path), CACHE_DIR_NAME, IMPORTS_DIR_NAME), _user_cache_dir()]


def _beside_source(d):
    """Is `d` the hook's directory next to a source file (`__tangent__/imports`)?"""
    return os.path.basename(d) == IMPORTS_DIR_NAME and os.path.basename(os.path.dirname(d)) == CACHE_DIR_NAME


def _user_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        if sys.platform == "win32":
            base = os.environ.get("LOCALAPPDATA")
        elif sys.platform == "darwin":
            base = os.path.expanduser("~/Library/Caches")
        else:
            base = os.path.expanduser("~/.cache")
    if not base or base.startswith("~"):
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        return os.path.join(tempfile.gettempdir(), f"tangent-{uid}", "generated")
    return os.path.join(base, "tangent", "generated")


def _existing(filename, dirs):
    for d in dirs:
        path = os.path.join(d, filename)
        if os.path.isfile(path) and _trusted_dir(d):
            return path
    return None


def _writable_target(filename, dirs):
    for d in dirs:
        if _ensure_dir(d):
            return os.path.join(d, filename)
    return None


def _ensure_dir(d):
    try:
        if _beside_source(d) and _linked(d):
            return False  # never created, written or read through a link
        if not os.path.isdir(d) and not os.path.islink(d):
            _makedirs(d)
            if _beside_source(d):
                _write_atomic(os.path.join(d, ".gitignore"), b"# Written by Tangent.\n*\n")
        return _trusted_dir(d) and os.access(d, os.W_OK | os.X_OK)
    except OSError:
        return False


def _linked(d):
    """Is ``__tangent__/imports`` (``d``) or its ``__tangent__`` a symbolic link?"""
    return os.path.islink(d) or os.path.islink(os.path.dirname(d))


def _makedirs(d):
    """``os.makedirs`` with every created level ``0o755`` (``os.makedirs`` gives intermediate
    levels ``0o777`` minus the umask: world-writable under umask 0)."""
    parent = os.path.dirname(d)
    if parent and parent != d and not os.path.isdir(parent):
        _makedirs(parent)
    try:
        os.mkdir(d, _DIR_MODE)
    except FileExistsError:
        if not os.path.isdir(d):
            raise


def _trusted_dir(d):
    """May generated code in ``d`` be executed? Not when ``d`` (or, next to a source, its
    ``__tangent__``) is a symbolic link, and not when someone else could have put files there:
    a directory owned by another user or writable by everyone, or one in a parent directory
    where someone else could replace it."""
    try:
        if _beside_source(d) and _linked(d):
            return False
        st = os.stat(d)
        parent = os.stat(os.path.dirname(os.path.abspath(d)))
    except OSError:
        return False
    if hasattr(os, "getuid"):
        uid = os.getuid()
        if st.st_uid != uid or st.st_mode & 0o002:
            return False
        # Nor may anyone else be able to swap the directory itself for another: its parent is
        # the user's or root's, and not writable by everyone unless sticky (like /tmp).
        if parent.st_uid not in (uid, 0) or (parent.st_mode & 0o002 and not parent.st_mode & 0o1000):
            return False
    return True


def _seal(text):
    """``text`` as the bytes of a generated file: with its content-hash line at the end."""
    data = text.encode("utf-8", "surrogatepass")
    if not data.endswith(b"\n"):
        data += b"\n"
    return data + _CONTENT_MARKER + hashlib.sha256(data).hexdigest().encode("ascii") + b"\n"


def _verified(data):
    """Are ``data`` the bytes of a generated file exactly as the hook wrote it?"""
    if data is None or not data.endswith(b"\n"):
        return False
    start = data.rfind(b"\n", 0, len(data) - 1) + 1
    line = data[start:-1]
    if not line.startswith(_CONTENT_MARKER):
        return False
    return line[len(_CONTENT_MARKER):] == hashlib.sha256(data[:start]).hexdigest().encode("ascii")


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


#: Flags of a checked hash-based ``.pyc`` (PEP 552): valid for the source bytes it was made from.
_CHECKED_HASH_PYC = 0b11


def _code_for(path, source):
    """The code object of the verified generated file ``path`` (bytes ``source``), through a
    checked hash-based ``.pyc`` keyed by exactly those bytes."""
    from importlib.util import MAGIC_NUMBER, cache_from_source, source_hash

    key = source_hash(source)
    try:
        pyc = cache_from_source(path)
    except (NotImplementedError, ValueError):
        pyc = None
    if pyc is not None:
        data = _read(pyc)
        if (
            data is not None
            and len(data) > 16
            and data[:4] == MAGIC_NUMBER
            and int.from_bytes(data[4:8], "little") == _CHECKED_HASH_PYC
            and data[8:16] == key
        ):
            try:
                return marshal.loads(memoryview(data)[16:])
            except (ValueError, EOFError, TypeError):
                pass
    code = compile(source, path, "exec", dont_inherit=True)
    if pyc is not None and not sys.dont_write_bytecode:
        data = MAGIC_NUMBER + _CHECKED_HASH_PYC.to_bytes(4, "little") + key + marshal.dumps(code)
        try:
            _makedirs(os.path.dirname(pyc))
            _write_atomic(pyc, data)
        except OSError:
            pass  # no bytecode cache: compiled again next time
    return code


def _write_atomic(path, data):
    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _remove_stale(directory, parent_name, key):
    """Removes old generated files of the same module (another key) and their ``.pyc``."""
    pattern = re.compile(
        re.escape(parent_name + SUFFIX) + r"\.([0-9a-f]{16})((?:\.[A-Za-z_][A-Za-z0-9_]*)?)\.py$"
    )
    # Temporary files of writers killed before their rename (``.<name>.<random>.tmp``).
    temporary = re.compile(r"\." + re.escape(parent_name + SUFFIX) + r"\.[0-9a-f]{16}.*\.tmp$")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    now = time.time()
    for name in names:
        if temporary.match(name):
            try:
                if now - os.stat(os.path.join(directory, name)).st_mtime >= STALE_AFTER:
                    os.unlink(os.path.join(directory, name))
            except OSError:
                pass
            continue
        match = pattern.match(name)
        if match is None or match.group(1) == key:
            continue
        path = os.path.join(directory, name)
        try:
            if now - os.stat(path).st_mtime < STALE_AFTER:
                continue
            os.unlink(path)
        except OSError:
            continue
        pycache = os.path.join(directory, "__pycache__")
        try:
            for pyc in os.listdir(pycache):
                if pyc.startswith(name[:-3] + ".") and pyc.endswith(".pyc"):
                    os.unlink(os.path.join(pycache, pyc))
        except OSError:
            pass


# --------------------------------------------------------------------------------------------
# Loading


def _project_roots(module_name, source_path):
    """The directory that holds the top-level package of `module_name` (found from its file).

    Calls into other modules of the same project resolve against it.
    """
    directory = os.path.dirname(os.path.abspath(source_path))
    depth = module_name.count(".")
    if os.path.basename(source_path) == "__init__.py":
        depth += 1
    for _ in range(depth):
        directory = os.path.dirname(directory)
    return [directory]


class GradLoader(SourceFileLoader):
    """Loads a generated gradient module, generating its file first when it is missing."""

    _tangent: _State

    def exec_module(self, module):
        state = self._tangent
        module.__dict__.update(_user_names(state.parent))
        super().exec_module(module)  # through get_code below
        _finish(module, state)

    def get_code(self, fullname):
        return _code_for(self.path, self.get_data(self.path))

    def get_data(self, path):
        """The generated file's bytes, verified: a file that is missing (removed by a
        stale-file sweep), damaged or edited by hand is generated again, never executed."""
        if path != self.path:
            return super().get_data(path)
        data = _read(path)
        if _verified(data):
            return data
        return self._generate()

    def _generate(self):
        state = self._tangent
        engine = _engine(state.fullname)
        try:
            source, source_hash, generated, skipped = engine.grad_module(
                state.text,
                state.source_path,
                True,
                module_name=state.parent.__name__,
                roots=_project_roots(state.parent.__name__, state.source_path),
                recipe_files=_shared_recipes(state) or None,
            )
        except engine.EngineError as error:
            kind, _message, rendered = error.args[:3]
            raise GradientImportError(
                f"cannot import {state.fullname!r}: Tangent cannot read "
                f"{state.source_path}:\n{rendered.rstrip()}",
                kind=kind,
                rendered=rendered,
                name=state.fullname,
                path=state.source_path,
            ) from None
        names = {f for f, _ in generated} | {f for f, _, _ in skipped}
        parameters = _parameters(state.text, names)
        gradients = dict(generated)
        lines = [
            "",
            "# --- Written by Tangent's import hook (tangent/_import_hook.py) ---",
            f"__tangent_source_hash__ = {source_hash!r}",
            f"__tangent_source_path__ = {state.source_path!r}",
            f"__tangent_gradients__ = {gradients!r}",
            f"__tangent_parameters__ = {parameters!r}",
            f"__tangent_skipped__ = {({f: (k, r) for f, k, r in skipped})!r}",
        ]
        # The engine avoids names the module already uses (`dloss` -> `dloss_`): alias them.
        lines += [f"{_exported(f)} = {g}" for f, g in generated if g != _exported(f)]
        lines.append(f"__all__ = {[_exported(f) for f, _ in generated]!r}")
        text = source if source.endswith("\n") else source + "\n"
        text += "\n".join(lines) + "\n"
        data = _seal(text)
        _write_atomic(self.path, data)
        if _beside_source(os.path.dirname(self.path)):
            _remove_stale(os.path.dirname(self.path), state.fullname[: -len(SUFFIX)], state.key)
        return data


def _engine(fullname):
    try:
        from tangent import _engine as engine
    except ImportError as error:
        engine, cause = None, error
    else:
        cause = getattr(sys.modules.get("tangent"), "_engine_import_error", None)
    if engine is None:
        raise ImportError(
            f"cannot import {fullname!r}: tangent._engine (the Rust engine) is not built; run "
            "`maturin develop` in pyhooks/",
            name=fullname,
        ) from cause
    return engine


def _user_names(parent):
    return {
        k: v
        for k, v in list(vars(parent).items())
        if not (k.startswith("__") and k.endswith("__"))
    }


def _parameters(text, names):
    """``{function: (positional parameter names)}`` of the top-level functions and methods
    (``Class.method``, also inherited from a base class of the module) in ``names``."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}

    def method(cls, name, depth=0):
        node = classes.get(cls)
        if node is None or depth > 32:
            return None
        for item in reversed(node.body):  # the last definition of a name is the class's
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == name:
                return item
        bases = (method(b.id, name, depth + 1) for b in node.bases if isinstance(b, ast.Name))
        return next((found for found in bases if found is not None), None)

    out = {}
    for name in sorted(names):  # a set: the order of the trailer must not vary between runs
        cls, _, attr = name.rpartition(".")
        node = method(cls, attr) if cls else functions.get(name)
        if node is not None:
            out[name] = tuple(a.arg for a in node.args.posonlyargs + node.args.args)
    return out


def _exported(function):
    """The name a gradient module exports for ``function``: ``dloss``; ``dModel_loss`` for the
    method ``Model.loss``."""
    return "d" + function.replace(".", "_")


def _finish(module, state):
    _unshadow_aliases(module, state)
    module.__dict__["__getattr__"] = _make_getattr(module, state)


def _unshadow_aliases(module, state):
    """Keeps generated code correct when an exported ``d<f>`` hides a user name.

    The engine names the gradient of ``f`` ``d<f>_`` when the module already has a ``d<f>``,
    and the trailer exports it as ``d<f>``. If generated code reads the user's ``d<f>`` as a
    global, the generated functions get their own globals, where ``d<f>`` is the user's.
    """
    namespace = module.__dict__
    renamed = {
        _exported(f): g for f, g in namespace.get("__tangent_gradients__", {}).items() if g != _exported(f)
    }
    user = vars(state.parent)
    shadowed = {alias for alias in renamed if alias in user}
    if not shadowed:
        return
    filename = module.__file__
    defined = {
        name: value
        for name, value in namespace.items()
        if isinstance(value, _FunctionType)
        and value.__name__ == name
        and value.__code__.co_filename == filename
    }
    if not any(shadowed & _global_names(fn.__code__) for fn in defined.values()):
        return
    scope = dict(namespace)
    for alias in shadowed:
        scope[alias] = user[alias]
    for name, fn in defined.items():
        copy = _FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
        copy.__kwdefaults__ = fn.__kwdefaults__
        copy.__doc__ = fn.__doc__
        copy.__qualname__ = fn.__qualname__
        copy.__dict__.update(fn.__dict__)
        scope[name] = namespace[name] = copy
    for alias, generated in renamed.items():
        namespace[alias] = scope[generated]


def _global_names(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, type(code)):
            names |= _global_names(const)
    return names


def _make_getattr(module, state):
    fullname = state.fullname

    def __getattr__(name):
        if name.startswith("__") or not name.startswith("d"):
            raise AttributeError(f"module {fullname!r} has no attribute {name!r}")
        return _generate_on_access(module, state, name)

    __getattr__.__qualname__ = f"{fullname}.__getattr__"
    return __getattr__


def _parse_name(name, parameters):
    """``d<f>_d<p>_d<q>`` -> ``(f, (p, q))`` for a known ``f`` and parameters, or None (the
    method ``Class.m`` is spelled ``Class_m`` in the name)."""
    rest = name[1:]
    for f in sorted(parameters, key=len, reverse=True):
        stem = _exported(f)[1:]
        if rest.startswith(stem + "_d"):
            found = _match_parameters(rest[len(stem) :], parameters[f], ())
            if found:
                return f, found
    return None


def _match_parameters(tail, params, chosen):
    if not tail:
        return chosen
    for p in params:
        prefix = "_d" + p
        if p not in chosen and tail.startswith(prefix):
            rest = tail[len(prefix) :]
            if not rest or rest.startswith("_d"):
                found = _match_parameters(rest, params, chosen + (p,))
                if found:
                    return found
    return None


def _not_differentiable(state, name, function, kind, rendered, path):
    return GradientImportError(
        f"cannot import name {name!r} from {state.fullname!r}: Tangent cannot differentiate "
        f"`{function}`:\n{rendered.rstrip()}",
        kind=kind,
        rendered=rendered,
        name=state.fullname,
        path=path,
    )


# A refusal the live module cannot change (what the function does with its own parameter):
# told without calling the engine again.
_NO_DERIVATIVE_EITHER_WAY = re.compile(r"cannot differentiate `[^`]+` with respect to `[^`]+`: it is used ")


def _from_live_module(namespace, state, name, function, wrt):
    """For a derivative the module's source alone does not allow (a function, an object or
    keywords it is given, an installed package it calls, a branch it cannot differentiate):
    the derivative ``tangent.grad`` makes from the live module, as ``__jvp__`` / ``__hvp__``
    do, kept in the gradient module under ``name``; None when ``tangent.grad`` refuses it too
    (or the module is not imported)."""
    parent = sys.modules.get(state.fullname[: -len(".__grad__")])
    refused = namespace.setdefault("__tangent_live_refused__", set())
    if parent is None or not wrt or name in refused:
        return None
    import tangent

    try:
        value = _api_derivative(parent, function, wrt, "grad")
    except (tangent.TangentError, AttributeError):
        refused.add(name)  # asked again (`hasattr`), told again without the engine
        return None
    namespace[name] = value
    return value


def _generate_on_access(module, state, name):
    namespace = module.__dict__
    skipped = namespace.get("__tangent_skipped__", {})
    function = next((f for f in skipped if _exported(f) == name), name[1:])
    if function in skipped:
        kind, rendered = skipped[function]
        if not _NO_DERIVATIVE_EITHER_WAY.search(rendered):
            parameters = namespace.get("__tangent_parameters__", {}).get(function)
            wrt = parameters[:1] if parameters else None
            live = _from_live_module(namespace, state, name, function, wrt)
            if live is not None:
                return live
        raise _not_differentiable(state, name, function, kind, rendered, module.__file__)
    parsed = _parse_name(name, namespace.get("__tangent_parameters__", {}))
    if parsed is None:
        raise AttributeError(f"module {state.fullname!r} has no attribute {name!r}")
    function, wrt = parsed
    with _lock:
        if name in namespace:
            return namespace[name]
        filename = f"{state.stem}.{name}.py"
        dirs = [os.path.dirname(module.__file__)] + [
            d for d in state.dirs if d != os.path.dirname(module.__file__)
        ]
        path = _existing(filename, dirs)
        data = _read(path) if path is not None else None
        if path is None:
            path = _writable_target(filename, dirs)
            if path is None:
                raise ImportError(
                    f"cannot import name {name!r} from {state.fullname!r}: no writable "
                    f"directory for generated code (tried {', '.join(dirs)})",
                    name=state.fullname,
                )
        if not _verified(data):
            # Not there yet, or damaged or edited by hand: generated (again), never executed.
            data = _generate_partial(module, state, name, function, wrt, path)
        code = _code_for(path, data)
        scope = _user_names(state.parent)
        scope.update(__name__=state.fullname, __file__=path, __builtins__=builtins)
        exec(code, scope)
        if "__tangent_error__" in scope:
            kind, _message, rendered = scope["__tangent_error__"]
            live = _from_live_module(namespace, state, name, function, wrt)
            if live is not None:
                return live
            raise _not_differentiable(state, name, function, kind, rendered, path)
        value = scope[scope["__tangent_entry__"]]
        # Its public name (the engine calls it `d<f>`): repr and pickling by reference.
        value.__name__ = value.__qualname__ = name
        namespace[name] = value
        return value


def _generate_partial(module, state, name, function, wrt, path):
    engine = _engine(state.fullname)
    header = f"{_MARKER}{module.__dict__.get('__tangent_source_hash__', '')}\n"
    try:
        positions = engine.parameter_positions(state.text, state.source_path, function, list(wrt))
        # Through the project-aware engine, so calls into other modules resolve.
        source, entry = engine.derivative_in_project(
            state.text,
            state.source_path,
            state.parent.__name__,
            _project_roots(state.parent.__name__, state.source_path),
            function,
            list(positions),
            True,
            recipe_files=_shared_recipes(state) or None,
        )
    except engine.EngineError as error:
        kind, message, rendered = error.args[:3]
        if kind == "internal":  # an engine bug: don't keep it
            raise _not_differentiable(state, name, function, kind, rendered, None)
        text = (
            f"{header}# Tangent cannot differentiate `{function}` w.r.t. {', '.join(wrt)}.\n"
            f"__tangent_error__ = {(kind, message, rendered)!r}\n"
        )
    else:
        body = source if source.endswith("\n") else source + "\n"
        text = f"{header}{body}\n__tangent_entry__ = {entry!r}\n"
    data = _seal(text)
    _write_atomic(path, data)
    return data


# --------------------------------------------------------------------------------------------
# Forward-mode and Hessian-vector-product modules: ``model.__jvp__`` and ``model.__hvp__``


def _functions_of(parent, parent_name):
    """``{name: parameter names}`` of the functions defined in module ``parent`` and of the
    plain methods (``Class.method``, not special ones) of the classes defined there."""
    out = {}
    for n, v in vars(parent).items():
        if getattr(v, "__module__", None) != parent_name:
            continue
        if isinstance(v, _FunctionType):
            out[n] = list(inspect.signature(v).parameters)
        elif isinstance(v, type):
            # Its own methods and those it inherits (differentiated as seen from it).
            for m in dir(v):
                f = getattr(v, m, None)
                if isinstance(f, _FunctionType) and not (m.startswith("__") and m.endswith("__")):
                    out[f"{n}.{m}"] = list(inspect.signature(f).parameters)
    return out


def _api_derivative(parent, function, wrt, kind):
    """The derivative ``tangent.grad`` / ``jvp`` / ``hvp`` (``kind``) gives of ``function``
    (``f`` or ``Class.method``) of module ``parent`` w.r.t. the parameters ``wrt``: made from
    the live module, so functions, objects and keywords it is given are known when it is
    called. Raises the API's TangentError."""
    from tangent.api import _derivative

    owner, _, attr = function.rpartition(".")
    cls = getattr(parent, owner) if owner else None
    target = getattr(cls, attr) if cls is not None else getattr(parent, function)
    if cls is not None and getattr(target, "__qualname__", None) == f"{cls.__qualname__}.{attr}":
        # The class's own method: as `tangent.grad(Class.method)`, for the class of the
        # object it is called on (a subclass's overrides of what it calls are used).
        cls = None
    # An inherited method as an instance of `cls` finds it (`self.other(...)` is `cls`'s).
    return _derivative(
        target,
        wrt=tuple(wrt),
        optimized=True,
        preserve_result=False,
        motion={"grad": "joint", "jvp": "forward", "hvp": "hvp"}[kind],
        seed_required=kind == "jvp",
        verbose=0,
        instance_of=cls,
    )


class _DerivativeLoader:
    """Loads ``<parent>.__jvp__`` / ``.__hvp__``: a module whose names are generated on
    access, with the same naming as ``__grad__`` (``d<f>``, ``d<f>_d<p>``, ...), through
    ``tangent.jvp`` / ``tangent.hvp`` (so each is backed by a real generated file)."""

    def __init__(self, parent_name, kind):
        self.parent_name = parent_name
        self.kind = kind

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        parent_name, kind = self.parent_name, self.kind
        cache = {}

        def __getattr__(name):
            if name in cache:
                return cache[name]
            if name.startswith("__"):
                raise AttributeError(name)
            parent = sys.modules[parent_name]
            functions = _functions_of(parent, parent_name)
            exported = {_exported(f): f for f in functions}
            if name in exported and functions[exported[name]]:
                function = exported[name]
                wrt = (functions[function][0],)
            else:
                parsed = _parse_name(name, functions)
                if parsed is None:
                    raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
                function, wrt = parsed
            import tangent

            try:
                value = _api_derivative(parent, function, wrt, kind)
            except tangent.TangentError as error:
                raise GradientImportError(
                    f"cannot import name {name!r} from {module.__name__!r}: Tangent cannot "
                    f"differentiate `{function}`:\n{str(error).rstrip()}",
                    kind=getattr(error, "kind", None),
                    rendered=str(error),
                    name=module.__name__,
                ) from None
            cache[name] = value
            return value

        module.__getattr__ = __getattr__
        module.__doc__ = (
            f"{'Forward-mode derivatives (JVPs)' if kind == 'jvp' else 'Hessian-vector products'} "
            f"of the functions of {parent_name!r}, generated by Tangent on first access."
        )


def find_derivative_spec(fullname, suffix):
    """The spec of ``<parent>.__jvp__`` or ``<parent>.__hvp__`` (the parent is imported)."""
    from importlib.machinery import ModuleSpec

    parent_name = fullname[: -len(suffix)]
    if sys.modules.get(parent_name) is None:
        return None
    return ModuleSpec(fullname, _DerivativeLoader(parent_name, suffix.strip("_.")[:3]))
