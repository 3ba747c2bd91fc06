"""Names from the running program: what the engine cannot read in the function's file.

The engine reads source text and never runs code, so it knows a name through the file's
imports and definitions. A function object knows more: in a notebook its imports and helpers
live in other cells; a closure a factory made holds functions in its cells; a helper may have
been defined again in a later cell (or in the other branch of an ``if``) so that the name is
bound to another definition than the file's last one. For those names this module writes a
*prelude*: import lines and the helpers' own source, appended to the text the engine reads
(after the file's lines, so the file's line numbers stay true). The generated code runs in a
namespace holding the same objects (see ``api._load``), so the derivative differentiates
exactly the code that runs.

Nothing is executed: only the objects the function refers to are inspected.
"""

from __future__ import annotations

import ast
import dis
import inspect
import keyword
import os
import sys
import textwrap
import threading
import types

__all__ = ["Prelude", "closure_values", "lambda_source", "prelude", "readable_source"]

# Modules whose functions the engine knows by canonical name (recipes), tried in this order
# for a builtin or ufunc bound to a name (`act = np.tanh`).
_KNOWN_MODULES = ("numpy", "math", "scipy.special", "numpy.linalg", "builtins")


class Prelude:
    """``text`` to append to the module's source; ``namespace``: values the generated code
    needs under names the function's globals do not have (a closure's cells); ``origins``:
    ``(first, count, path, line, indent)`` for each function's source in ``text`` (its
    ``count`` lines from 0-based line ``first`` of ``text`` are lines ``line``... of ``path``,
    dedented by ``indent`` columns), so that an error in them is told at their own place."""

    __slots__ = ("text", "namespace", "origins")

    def __init__(self, text, namespace, origins=()):
        self.text = text
        self.namespace = namespace
        self.origins = tuple(origins)

    def place(self, line_in_text, column):
        """``(path, line, column)`` of 0-based line ``line_in_text`` of ``text``, or None."""
        for first, count, path, line, indent in self.origins:
            if first <= line_in_text < first + count:
                return path, line + line_in_text - first, column + indent
        return None


_MISSING = object()
_lock = threading.Lock()
_bindings_cache: dict[str, dict] = {}
_names_cache: dict[types.CodeType, frozenset] = {}


def prelude(fn, module_source, path, free_values=None, follow_project=False):
    """The prelude for ``fn`` (a plain function) whose file text is ``module_source`` (at
    ``path``), or None when the text already binds every name as the running program does.
    ``free_values``: the closure's ``{name: value}`` (cells) to resolve besides globals."""
    bindings = _top_level_bindings(module_source)
    if bindings is None:
        return None
    writer = _Writer(fn, bindings, path, follow_project)
    writer.visit(fn, dict(free_values or {}))
    if not writer.lines:
        return None
    text = "\n\n# Names of the running program that this file does not bind (added by Tangent)\n"
    origins = []
    line = text.count("\n")
    for entry in writer.lines:
        where = writer.origins.get(id(entry))
        if where is not None:
            origins.append((line, entry.count("\n") + 1, *where))
        line += entry.count("\n") + 1
    return Prelude(text + "\n".join(writer.lines) + "\n", writer.namespace, origins)


class _Writer:
    def __init__(self, fn, bindings, path, follow_project=False):
        self.root = fn
        self.globals = fn.__globals__
        # A function Tangent wrote (`functools.partial`) has a namespace over its module's.
        self.module_globals = getattr(fn.__globals__, "_globals", fn.__globals__)
        self.project_dir = _project_dir(fn, path)
        self.size = 0
        # Forward mode and HVPs: functions of the project's other modules come as source
        # (their derivatives are not in those modules' gradient modules).
        self.follow_project = follow_project
        self.bindings = bindings
        self.path = path
        self.lines: list[str] = []
        # id of a line of `lines` holding a function's source -> (path, first line, indent).
        self.origins: dict[int, tuple] = {}
        self.namespace: dict[str, object] = {}
        self.done: dict[str, object] = {}
        self.seen: set[int] = set()

    def visit(self, function, free):
        if id(function) in self.seen:
            return
        self.seen.add(id(function))
        for name in sorted(_global_names(function.__code__)):
            if name in free:
                continue
            value = _lookup(function.__globals__, name)
            if value is not _MISSING:
                self.resolve(name, value)
        for name, value in free.items():
            self.resolve(name, value, cell=True)

    def resolve(self, name, value, cell=False):
        if name in self.done or not name.isidentifier() or keyword.iskeyword(name):
            return  # (names tools inject, such as pytest's `@pytest_ar`, are no Python names)
        self.done[name] = value
        bound = self.bindings.get(name)
        if isinstance(value, types.ModuleType):
            if bound is None or bound[0] != "import" or _import_is(bound, value) is False:
                self.lines.append(_import_module(name, value))
            return
        if isinstance(value, types.FunctionType):
            self.function(name, value, bound, cell)
            return
        if isinstance(value, type):
            if bound is None and value.__module__ != self.root.__module__:
                line = _import_from(name, value)
                if line:
                    self.lines.append(line)
            return
        if (bound is None or bound[0] == "value") and callable(value):
            line = _known_callable(name, value)
            if line:
                self.lines.append(line)

    def function(self, name, value, bound, cell):
        code = value.__code__
        if bound is not None and bound[0] == "import" and _import_is(bound, value) is not False:
            if not (self.follow_project and self.in_project(value)) and not _followed_installed(value):
                return
        if bound is not None and bound[0] == "def" and _same_file(code.co_filename, self.path) and bound[1] == code.co_firstlineno:
            # The file's own definition, the one the name is bound to: follow its calls.
            self.visit(value, closure_values(value))
            return
        # From here on, the file binds `name` to something else than `value` (or not at all):
        # whatever the engine is told must be `value`, or nothing it could differentiate.
        if not self.inline_function(name, value, cell) and bound is not None:
            self.opaque(name, value)

    def imported(self, value):
        """Is ``value`` (a function of another module) better imported than inlined: a function
        of a library with recipes (NumPy, SciPy, ...) or of a module of the same project
        (whose derivatives come through the import hook)? Others are inlined (their source
        read, nothing run)."""
        if _followed_installed(value):
            return False
        if _installed_function(value) and _engine_knows(value):
            return True  # an installed function with a recipe (or the engine reads it)
        module = getattr(value, "__module__", None) or ""
        if module.split(".")[0] in _LIBRARIES:
            return True
        return not self.follow_project and self.in_project(value)

    def in_project(self, value):
        """Is ``value`` a function of a module of the same project (importable by its name
        from the project's directory, as the engine finds modules)?"""
        module = getattr(value, "__module__", None) or ""
        if self.project_dir is None or module.split(".")[0] in _LIBRARIES:
            return False
        loaded = sys.modules.get(module)
        path = getattr(loaded, "__file__", None)
        if not path:
            return False
        # Importable by its name from the project's directory, as the engine finds modules.
        stem = os.path.join(self.project_dir, *module.split("."))
        return os.path.abspath(path) in (stem + ".py", os.path.join(stem, "__init__.py"))

    def function_alias(self, module_name, attr, function):
        """A name for ``function``, called as ``module_name.attr`` in a function's source."""
        alias = f"{module_name}_{attr}"
        while self.done.get(alias, function) is not function or _lookup(self.globals, alias) not in (_MISSING, function):
            alias += "_"
        return alias

    def module_alias(self, name, module):
        """A name of its own for ``module`` (``sp_scipy_sparse``), imported in the prelude."""
        alias = f"{name}_{module.__name__.replace('.', '_')}"
        if alias not in self.done:
            self.done[alias] = module
            self.namespace[alias] = module
            self.lines.append(_import_module(alias, module))
        return alias

    def opaque(self, name, value):
        """Binds ``name`` to a plain value after the file's binding: the engine then refuses
        calls of it rather than differentiate the file's other definition."""
        what = getattr(value, "__qualname__", type(value).__name__)
        self.lines.append(f"from tangent._live import source_unreadable as {name}  # `{what}` when running")

    def inline_function(self, name, value, cell):
        """Tells the engine ``value`` under ``name`` (an import line or its source); False
        when it cannot."""
        foreign = value.__globals__ is not self.globals and value.__globals__ is not self.module_globals
        renames: dict[str, str] = {}
        # An installed function's decorator wrapper: the function it wraps is read.
        source_of = _unwrapped(value) if foreign and _installed_function(value) else value
        if foreign:
            line = _import_from(name, value) if self.imported(value) else None
            if line is not None:
                # A top-level function of a module that can be imported: as the file would
                # import it (a project module's derivative comes through the import hook).
                self.lines.append(line)
                return True
            # A closure or a function of a namespace that cannot be imported: its source comes
            # along, provided each name it reads means the same here.
            names = _global_names(source_of.__code__) | _default_names(source_of)
            reads = {n: source_of.__globals__[n] for n in names if n in source_of.__globals__}
            for n, v in reads.items():
                here = self.done.get(n, self.namespace.get(n, _lookup(self.globals, n)))
                if here is not _MISSING and here is not v:
                    if not isinstance(v, types.ModuleType):
                        return False
                    # A module its file names as another module is named here (`sp`,
                    # scipy.sparse there, scipy here): read under a name of its own.
                    renames[n] = self.module_alias(n, v)
        else:
            reads = {}
        if not readable_source(source_of):
            return False
        if value.__name__ == "<lambda>":
            text = lambda_source(value)
            if text is None:
                return False
            source = f"def {name}{text}"
        else:
            try:
                raw = inspect.getsource(source_of)
            except (OSError, TypeError):
                return False
            source = textwrap.dedent(raw)
            # The columns the dedent took off (the same from every line).
            indent = len(raw.splitlines()[0]) - len(source.splitlines()[0]) if raw else 0
            if not _defines(source, source_of):
                return False
            if foreign:
                source = _undecorated(source)
            source = _renamed(source, value.__name__, name)
            if source is None:
                return False
            # Functions it calls through their modules (`_array_api.supported_float_dtypes`),
            # read as functions of their own under a name each.
            attributes = _module_functions(source, source_of.__globals__) if foreign else {}
            aliases = {key: self.function_alias(*key, fn) for key, fn in attributes.items()}
            if renames or aliases:
                source = _names_replaced(source, renames, aliases)
                if source is None:
                    return False
                for n in renames:
                    del reads[n]
        cells = closure_values(source_of)
        for cell_name, cell_value in cells.items():
            here = self.namespace.get(cell_name, _lookup(self.globals, cell_name))
            if here is not _MISSING and here is not cell_value:
                return False  # the closure's name means another value here
        for n, v in reads.items():
            # What the function reads from its own module (its imports too): the generated
            # code, run among the caller's globals, reads the same objects.
            if _lookup(self.globals, n) is _MISSING:
                self.namespace[n] = v
        for cell_name, cell_value in cells.items():
            if not isinstance(cell_value, (types.FunctionType, types.ModuleType, type)):
                self.namespace[cell_name] = cell_value
        if cell or foreign:
            self.namespace[name] = value
        self.size += len(source)
        if self.size > _MAX_PRELUDE_CHARS:
            return False  # a library's worth of code: left to the engine's refusal
        entry = source.rstrip("\n") + "\n"
        if value.__name__ != "<lambda>":
            # The line the kept source starts at in its file (decorators cut off count).
            skipped = len(raw.splitlines()) - len(source.splitlines())
            self.origins[id(entry)] = (source_of.__code__.co_filename, _first_line(source_of) + skipped, indent)
        self.lines.append(entry)
        for (module_name, attr), alias in (aliases.items() if foreign and value.__name__ != "<lambda>" else ()):
            self.resolve(alias, attributes[(module_name, attr)])
        self.visit(source_of, cells)
        return True


def _first_line(function):
    """The first line of ``function``'s source (its first decorator's, else its ``def``)."""
    try:
        return inspect.getsourcelines(function)[1]
    except (OSError, TypeError):
        return function.__code__.co_firstlineno


def _followed_installed(value):
    """Is ``value`` a pure-Python function of an installed package whose source the engine
    is given (the engine has no recipe for it, and it is not NumPy's, the standard
    library's or Tangent's own)? Its source is read from the package's file; nothing runs."""
    return _installed_function(value) and not _engine_knows(value)


def _installed_function(value):
    """Is ``value`` a pure-Python function of an installed package (not NumPy's, the
    standard library's or Tangent's own), its source in a file under site-packages?"""
    if not isinstance(value, types.FunctionType) or not readable_source(value):
        return False
    module = getattr(value, "__module__", None) or ""
    top = module.split(".")[0]
    if not module or module == "__main__" or top in _NEVER_FOLLOWED:
        return False
    path = _unwrapped(value).__code__.co_filename
    return bool(path) and os.path.isfile(path) and _installed_file(path)


def _unwrapped(value):
    """The function an installed package's decorator wrapped (``functools.wraps``: argument
    validation such as scikit-learn's ``validate_params``), else ``value``. Its source is
    what the engine reads; the wrapper still runs when the derivative calls the function."""
    inner = value
    for _ in range(8):
        wrapped = getattr(inner, "__wrapped__", None)
        if not isinstance(wrapped, types.FunctionType):
            break
        inner = wrapped
    return inner


def _installed_file(path):
    """Is ``path`` a file of an installed package (under site-packages or dist-packages)?"""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def _engine_knows(value):
    """Has the engine a recipe for ``value`` (under its module's name or the public module
    it is imported from), or does it read calls of it itself (array-namespace getters)?"""
    qualname = getattr(value, "__qualname__", "")
    module = getattr(value, "__module__", None) or ""
    if value.__name__ in _NAMESPACE_GETTERS:
        return True
    names = _recipe_names()
    if f"{module}.{qualname}" in names:
        return True
    public = _public_module(module, qualname, value)
    return f"{public}.{qualname}" in names


_recipe_name_set = None


def _recipe_names():
    global _recipe_name_set
    if _recipe_name_set is None:
        from tangent import _engine

        _recipe_name_set = frozenset(name for name, *_ in _engine.recipe_names())
    return _recipe_name_set


def _undecorated(source):
    """``source`` of a function without its decorator lines (an installed function's
    decorators check arguments or record capabilities; the engine reads the function)."""
    try:
        node = ast.parse(source).body[0]
    except (SyntaxError, ValueError, RecursionError, MemoryError, IndexError):
        return source
    if not getattr(node, "decorator_list", None):
        return source
    lines = source.splitlines(keepends=True)
    return "".join(lines[node.lineno - 1 :])


# Packages whose functions are never inlined: NumPy (recipes, or compiled), the standard
# library's modules with recipes, and Tangent itself.
_NEVER_FOLLOWED = frozenset({"numpy", "math", "builtins", "tangent", "cmath", "operator"})

# Functions of the array-API idiom the engine reads itself (`xp = array_namespace(x)`,
# `x = xp_promote(x, force_floating=True, xp=xp)`).
_NAMESPACE_GETTERS = frozenset({"array_namespace", "get_namespace", "get_namespace_and_device", "xp_promote"})

# Most source the prelude inlines (functions of other modules read for one derivative).
_MAX_PRELUDE_CHARS = 400_000

# Top-level packages whose functions the engine knows by recipe: imported, never inlined.
_LIBRARIES = frozenset({"numpy", "scipy", "math", "builtins", "tangent", "cmath", "operator"})


def _project_dir(fn, path):
    """The directory holding the top-level package of ``fn``'s module (the project whose
    modules' derivatives the import hook gives), or None (a notebook, a script run as
    ``__main__``, a file that is not there)."""
    name = getattr(fn, "__module__", None) or ""
    if not name or name == "__main__" or not path or not os.path.isfile(path):
        return None
    from tangent._import_hook import _project_roots

    return _project_roots(name, path)[0]


def _lookup(namespace, name):
    """``namespace[name]``, also through a generated function's namespace over its module's
    globals (``api._LiveNamespace``: ``_globals``); ``_MISSING`` when unbound."""
    if name in namespace:
        return namespace[name]
    inner = getattr(namespace, "_globals", None)
    if inner is not None and name in inner:
        return inner[name]
    return _MISSING


def _import_is(bound, value):
    """Whether the file's import ``bound`` gives ``value`` (None when that cannot be told
    without importing: a relative import or a module not loaded)."""
    _, _, module, attr = bound
    loaded = sys.modules.get(module) if module else None
    if loaded is None:
        return None
    if attr is None:
        return loaded is value
    if not hasattr(loaded, attr):
        return None  # a submodule not imported yet, or a lazy attribute
    return getattr(loaded, attr) is value


def readable_source(function):
    """Does ``function`` come from a file or a notebook cell whose text Python keeps (not code
    run from a string, whose `<string>` text another string may stand in for)?"""
    filename = function.__code__.co_filename or ""
    return not filename.startswith("<") or filename.startswith("<ipython-input-")


def _defines(source, function):
    """Is ``source`` (dedented) the definition of ``function``: a ``def`` of its name with its
    parameters, spanning the lines its code does?"""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name != function.__name__:
        return False
    code = function.__code__
    params = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
    if params != list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]):
        return False
    lines = [line for _, _, line in code.co_lines() if line is not None]
    if lines:
        # Every line the code runs stands within the definition's text.
        first = code.co_firstlineno
        span = node.end_lineno - min([node.lineno] + [d.lineno for d in node.decorator_list])
        if max(lines) - first > span or min(lines) < first:
            return False
    return True


def closure_values(function):
    """``function``'s closure as ``{name: value}`` (cells not yet assigned left out)."""
    out = {}
    for name, cell in zip(function.__code__.co_freevars, function.__closure__ or ()):
        try:
            out[name] = cell.cell_contents
        except ValueError:
            pass
    return out


def _same_file(a, b):
    return a == b or (bool(a) and bool(b) and os.path.abspath(a) == os.path.abspath(b))


def _global_names(code):
    """Names ``code`` (and the code nested in it) reads as globals."""
    with _lock:
        cached = _names_cache.get(code)
    if cached is not None:
        return cached
    names = set()
    todo = [code]
    while todo:
        c = todo.pop()
        for ins in dis.get_instructions(c):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(ins.argval, str):
                names.add(ins.argval)
        todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    result = frozenset(names)
    with _lock:
        if len(_names_cache) > 4096:
            _names_cache.clear()
        _names_cache[code] = result
    return result


def _top_level_bindings(text):
    """``{name: (kind, line)}`` for the names the module's top level binds, the last binding
    of each as the engine takes it (definitions in module-level blocks included, an
    ``except`` handler's before its ``try`` body's). ``kind``: "def", "class", "import",
    "value"; ``line``: a definition's first line (its first decorator). None if the text does
    not parse."""
    with _lock:
        cached = _bindings_cache.get(text)
    if cached is not None:
        return cached
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    out: dict[str, tuple] = {}

    def first_line(node):
        return min([node.lineno] + [d.lineno for d in node.decorator_list])

    def bind_target(target):
        if isinstance(target, ast.Name):
            out[target.id] = ("value", target.lineno)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                bind_target(t)
        elif isinstance(target, ast.Starred):
            bind_target(target.value)

    def walk(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out[node.name] = ("def", first_line(node))
            elif isinstance(node, ast.ClassDef):
                out[node.name] = ("class", first_line(node))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        out[alias.asname] = ("import", node.lineno, alias.name, None)
                    else:
                        top = alias.name.split(".")[0]
                        out[top] = ("import", node.lineno, top, None)
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name != "*":
                        module = node.module if not node.level else None
                        out[alias.asname or alias.name] = ("import", node.lineno, module, alias.name)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    bind_target(t)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                bind_target(node.target)
            elif isinstance(node, ast.If):
                walk(node.body)
                walk(node.orelse)
            elif isinstance(node, ast.Try) or (sys.version_info >= (3, 11) and isinstance(node, ast.TryStar)):
                for handler in node.handlers:
                    walk(handler.body)
                walk(node.body)
                walk(node.orelse)
                walk(node.finalbody)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                walk(node.body)
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
                walk(node.body)
                walk(node.orelse)

    walk(tree.body)
    with _lock:
        if len(_bindings_cache) > 64:
            _bindings_cache.clear()
        _bindings_cache[text] = out
    return out


def _import_module(name, module):
    full = module.__name__
    if full == name:
        return f"import {full}"
    return f"import {full} as {name}"


def _import_from(name, value):
    """``from <module> import <name> as <local>`` for a function or class defined at the top
    level of an importable module, else None."""
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", "")
    if not module or "." in qualname or "<" in qualname or module == "__main__":
        return None
    if getattr(sys.modules.get(module), qualname, None) is not value:
        return None
    return _from_line(_public_module(module, qualname, value), qualname, name)


def _public_module(module, attr, value):
    """The shortest enclosing package of ``module`` that has ``value`` as ``attr``
    (``scipy.special`` for ``scipy.special._logsumexp``): the name recipes know."""
    parts = module.split(".")
    for i in range(1, len(parts)):
        candidate = ".".join(parts[:i])
        if getattr(sys.modules.get(candidate), attr, None) is value:
            return candidate
    return module


def _known_callable(name, value):
    """The import line of a builtin or ufunc bound to ``name`` (``act = np.tanh``)."""
    short = getattr(value, "__name__", None)
    if not isinstance(short, str):
        return None
    candidates = [getattr(value, "__module__", None), *_KNOWN_MODULES]
    for module in candidates:
        if module and getattr(sys.modules.get(module), short, None) is value:
            if module == "builtins":
                return None if short == name else f"{name} = {short}"
            return _from_line(_public_module(module, short, value), short, name)
    return None


def _from_line(module, attr, name):
    if attr == name:
        return f"from {module} import {attr}"
    return f"from {module} import {attr} as {name}"


def _renamed(source, old, new):
    """``source`` (a dedented ``def``, maybe decorated) with the function named ``new``."""
    if old == new:
        return source
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name != old:
        return None
    lines = source.splitlines(keepends=True)
    row = node.lineno - 1
    line = lines[row]
    at = line.find(f"def {old}")
    if at < 0:
        return None
    lines[row] = line[:at] + f"def {new}" + line[at + 4 + len(old) :]
    return "".join(lines)


def _default_names(function):
    """The global names the default values of ``function``'s parameters read (evaluated in
    its module when it was defined; a specialized call reads them where it is inlined)."""
    if not (function.__defaults__ or function.__kwdefaults__):
        return frozenset()
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return frozenset()
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return frozenset()
    defaults = [d for d in node.args.defaults + node.args.kw_defaults if d is not None]
    return frozenset(n.id for d in defaults for n in ast.walk(d) if isinstance(n, ast.Name))


def _module_functions(source, namespace):
    """``{(module_name, attr): function}`` for the calls ``module_name.attr(...)`` in
    ``source`` of pure-Python functions of installed packages (read as source, see
    `_followed_installed`), ``module_name`` a module in ``namespace``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    found = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        base = node.func.value
        if not isinstance(base, ast.Name) or node.func.lineno != node.func.end_lineno:
            continue
        module = namespace.get(base.id)
        if not isinstance(module, types.ModuleType):
            continue
        function = getattr(module, node.func.attr, None)
        if isinstance(function, types.FunctionType) and _followed_installed(function):
            found[(base.id, node.func.attr)] = function
    return found


def _names_replaced(source, renames, attributes=None):
    """``source`` with each name ``renames`` maps read under its new name, and each
    ``module_name.attr`` of ``attributes`` (one line) under its name (None when the text does
    not parse)."""
    attributes = attributes or {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    spots = []

    def walk(node):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.lineno == node.end_lineno:
            alias = attributes.get((node.value.id, node.attr))
            if alias is not None:
                spots.append((node.lineno, node.col_offset, node.end_col_offset, alias))
                return
        if isinstance(node, ast.Name) and node.id in renames:
            spots.append((node.lineno, node.col_offset, node.end_col_offset, renames[node.id]))
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(tree)
    lines = [line.encode() for line in source.splitlines(keepends=True)]
    for lineno, start, end, new in sorted(spots, reverse=True):
        line = lines[lineno - 1]
        lines[lineno - 1] = line[:start] + new.encode() + line[end:]
    return b"".join(lines).decode()


def lambda_source(fn):
    """``(params):\n    return <body>`` for a lambda, from the source of its file or cell
    (None when its line holds several lambdas with these parameters that its code does not
    tell apart)."""
    code = fn.__code__
    try:
        lines, _ = inspect.findsource(fn)
    except (OSError, TypeError, IndexError):
        return None
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    params = list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    found = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Lambda)
        and n.lineno == code.co_firstlineno
        and [a.arg for a in n.args.posonlyargs + n.args.args + n.args.kwonlyargs] == params
    ]
    if len(found) > 1:
        # Tell them apart by where the lambda's instructions stand in the line.
        spots = {(p[0], p[2]) for p in code.co_positions() if p[0] is not None and p[2] is not None}
        found = [
            n
            for n in found
            if any(
                (n.body.lineno, n.body.col_offset) <= spot <= (n.body.end_lineno, n.body.end_col_offset)
                for spot in spots
            )
        ]
    if len(found) != 1:
        return None
    node = found[0]
    return f"({ast.unparse(node.args)}):\n    return {ast.unparse(node.body)}\n"


def source_unreadable(*args, **kwargs):
    """What the prelude binds a name to when the running program binds it to a function whose
    source Tangent cannot read (the engine refuses to differentiate calls of it). Never called
    by generated code: the primal calls the program's own function."""
    raise RuntimeError("tangent: internal placeholder called")
