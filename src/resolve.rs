//! Static name resolution: which module-level names are imports (and of what), which are
//! functions of the same module. Nothing is imported or executed.

use std::collections::BTreeMap;

use ruff_python_ast::{ModModule, Stmt};

/// Canonical spellings for modules that are NumPy under another name.
const MODULE_ALIASES: &[(&str, &str)] = &[("autograd.numpy", "numpy"), ("np", "numpy")];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModuleScope {
    /// Local name -> canonical dotted name (`np` -> `numpy`, `exp` -> `math.exp`).
    pub imports: BTreeMap<String, String>,
    /// Names of functions defined at the module's top level.
    pub functions: BTreeMap<String, usize>,
    /// Other names the module binds at its top level (constants, arrays, classes).
    pub globals: std::collections::BTreeSet<String>,
    /// Local name -> an import statement that binds it (`import numpy as np`), with relative
    /// imports made absolute: what generated code elsewhere needs to bind the same name.
    pub import_statements: BTreeMap<String, String>,
    /// Top-level classes: their source range and the names of their methods.
    pub classes: Vec<ClassInfo>,
}

/// A top-level class, for differentiating its methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassInfo {
    pub name: String,
    pub range: ruff_text_size::TextRange,
    pub methods: std::collections::BTreeSet<String>,
    /// Its base classes named plainly (`class Child(Base):`), in order.
    pub bases: Vec<String>,
}

impl ModuleScope {
    /// The class of this module whose `method` an instance of `class` calls: `class` itself
    /// when it defines it, else its bases, depth first (Python's order for single inheritance
    /// and simple hierarchies). `None` when no class of the module defines it.
    pub fn method_owner(&self, class: &str, method: &str) -> Option<&ClassInfo> {
        self.method_owner_within(class, method, 0)
    }

    /// [`Self::method_owner`] among the bases of `class` only (`super().method`).
    pub fn inherited_method_owner(&self, class: &str, method: &str) -> Option<&ClassInfo> {
        let info = self.classes.iter().rev().find(|c| c.name == class)?;
        info.bases
            .iter()
            .find_map(|b| self.method_owner_within(b, method, 1))
    }

    fn method_owner_within(&self, class: &str, method: &str, depth: usize) -> Option<&ClassInfo> {
        // Deeper than any real hierarchy: a cycle of names (classes redefined) ends here.
        if depth > 32 {
            return None;
        }
        let info = self.classes.iter().rev().find(|c| c.name == class)?;
        if info.methods.contains(method) {
            return Some(info);
        }
        info.bases
            .iter()
            .find_map(|b| self.method_owner_within(b, method, depth + 1))
    }

    /// The class whose body defines the function at `range` (a method), if any.
    pub fn class_containing(&self, range: ruff_text_size::TextRange) -> Option<&ClassInfo> {
        self.classes
            .iter()
            .rev()
            .find(|c| c.range.contains_range(range) && c.range != range)
    }
}

fn canonical_module(name: &str) -> String {
    for (alias, canon) in MODULE_ALIASES {
        if name == *alias {
            return (*canon).to_string();
        }
        if let Some(rest) = name.strip_prefix(&format!("{alias}.")) {
            return format!("{canon}.{rest}");
        }
    }
    name.to_string()
}

impl ModuleScope {
    pub fn new(module: &ModModule) -> Self {
        ModuleScope::new_in(module, None)
    }

    /// The scope of a module that knows where it lives: `(dotted name, is a package)`, so
    /// relative imports (`from .layers import dense`) resolve to absolute names.
    pub fn new_in(module: &ModModule, location: Option<(&str, bool)>) -> Self {
        ModuleScope::from_body(&module.body, location)
    }

    /// The scope of a module's leading statements `body`.
    pub fn from_body(body: &[Stmt], location: Option<(&str, bool)>) -> Self {
        let mut scope = ModuleScope::default();
        scope.collect(body, location);
        scope
    }

    /// Lets `own`'s bindings win over this scope's (a module over the context it runs in).
    pub fn prefer(&mut self, own: &ModuleScope) {
        for (name, canonical) in &own.imports {
            self.functions.remove(name);
            self.globals.remove(name);
            self.imports.insert(name.clone(), canonical.clone());
        }
        for (name, index) in &own.functions {
            self.imports.remove(name);
            self.globals.remove(name);
            self.functions.insert(name.clone(), *index);
        }
        for name in &own.globals {
            self.imports.remove(name);
            self.functions.remove(name);
            self.globals.insert(name.clone());
        }
    }

    fn collect(&mut self, body: &[Stmt], location: Option<(&str, bool)>) {
        for (i, stmt) in body.iter().enumerate() {
            match stmt {
                Stmt::Import(imp) => {
                    for alias in &imp.names {
                        let full = alias.name.as_str();
                        match &alias.asname {
                            Some(asname) => {
                                self.functions.remove(asname.as_str());
                                self.globals.remove(asname.as_str());
                                self.imports
                                    .insert(asname.to_string(), canonical_module(full));
                                self.import_statements.insert(
                                    asname.to_string(),
                                    format!("import {full} as {asname}"),
                                );
                            }
                            None => {
                                let first = full.split('.').next().unwrap_or(full);
                                self.functions.remove(first);
                                self.globals.remove(first);
                                self.imports
                                    .insert(first.to_string(), canonical_module(first));
                                self.import_statements
                                    .insert(first.to_string(), format!("import {full}"));
                            }
                        }
                    }
                }
                Stmt::ImportFrom(imp) => {
                    let named = imp.module.as_ref().map(|m| m.as_str()).unwrap_or("");
                    let module = if imp.level == 0 {
                        named.to_string()
                    } else {
                        let Some(base) = location.and_then(|(name, is_package)| {
                            relative_base(name, is_package, imp.level)
                        }) else {
                            continue;
                        };
                        match (base.is_empty(), named.is_empty()) {
                            (true, _) => named.to_string(),
                            (false, true) => base,
                            (false, false) => format!("{base}.{named}"),
                        }
                    };
                    if module.is_empty() {
                        continue;
                    }
                    for alias in &imp.names {
                        if alias.name.as_str() == "*" {
                            continue;
                        }
                        let local = alias.asname.as_ref().unwrap_or(&alias.name).to_string();
                        let full = canonical_module(&format!("{module}.{}", alias.name));
                        let statement = match &alias.asname {
                            Some(asname) => {
                                format!("from {module} import {} as {asname}", alias.name)
                            }
                            None => format!("from {module} import {}", alias.name),
                        };
                        self.functions.remove(&local);
                        self.globals.remove(&local);
                        self.import_statements.insert(local.clone(), statement);
                        self.imports.insert(local, full);
                    }
                }
                Stmt::FunctionDef(f) => {
                    self.imports.remove(f.name.as_str());
                    self.functions.insert(f.name.to_string(), i);
                }
                Stmt::ClassDef(c) => {
                    self.globals.insert(c.name.to_string());
                    let methods = c.body.iter().filter_map(|s| match s {
                        Stmt::FunctionDef(f) => Some(f.name.to_string()),
                        _ => None,
                    });
                    let bases = c.bases().iter().filter_map(|b| match b {
                        ruff_python_ast::Expr::Name(n) => Some(n.id.to_string()),
                        _ => None,
                    });
                    self.classes.push(ClassInfo {
                        name: c.name.to_string(),
                        range: c.range,
                        methods: methods.collect(),
                        bases: bases.collect(),
                    });
                }
                Stmt::Assign(a) => {
                    for t in &a.targets {
                        self.bind(t);
                    }
                }
                Stmt::AnnAssign(a) => self.bind(&a.target),
                Stmt::AugAssign(a) => self.bind(&a.target),
                Stmt::For(f) => {
                    self.bind(&f.target);
                    self.collect(&f.body, location);
                }
                Stmt::With(w) => {
                    for item in &w.items {
                        if let Some(v) = &item.optional_vars {
                            self.bind(v);
                        }
                    }
                    self.collect(&w.body, location);
                }
                // Imports guarded by `if`/`try` (e.g. optional dependencies) still count.
                Stmt::If(s) => {
                    self.collect(&s.body, location);
                    for clause in &s.elif_else_clauses {
                        self.collect(&clause.body, location);
                    }
                }
                Stmt::Try(t) => {
                    self.collect(&t.body, location);
                    for handler in &t.handlers {
                        let ruff_python_ast::ExceptHandler::ExceptHandler(h) = handler;
                        self.collect(&h.body, location);
                    }
                    self.collect(&t.orelse, location);
                }
                _ => {}
            }
        }
    }

    /// Records the names an assignment target binds.
    fn bind(&mut self, target: &ruff_python_ast::Expr) {
        use ruff_python_ast::Expr;
        match target {
            Expr::Name(n) => {
                self.globals.insert(n.id.to_string());
            }
            Expr::Tuple(t) => t.elts.iter().for_each(|e| self.bind(e)),
            Expr::List(l) => l.elts.iter().for_each(|e| self.bind(e)),
            Expr::Starred(s) => self.bind(&s.value),
            _ => {}
        }
    }

    /// Is `name` bound at the module's top level (import, function, or other global)?
    pub fn binds(&self, name: &str) -> bool {
        self.imports.contains_key(name)
            || self.functions.contains_key(name)
            || self.globals.contains(name)
    }

    /// Canonical dotted name of a dotted reference such as `np.linalg.det`, if its first
    /// component is an import.
    pub fn canonical(&self, dotted: &str) -> Option<String> {
        let (first, rest) = match dotted.split_once('.') {
            Some((f, r)) => (f, Some(r)),
            None => (dotted, None),
        };
        let base = self.imports.get(first)?;
        Some(match rest {
            Some(r) => format!("{base}.{r}"),
            None => base.clone(),
        })
    }
}

/// Python's builtin functions that a differentiated function may call.
pub const BUILTINS: &[&str] = &[
    "abs",
    "all",
    "any",
    "bool",
    "callable",
    "complex",
    "dict",
    "divmod",
    "enumerate",
    "float",
    "getattr",
    "hasattr",
    "id",
    "int",
    "isinstance",
    "issubclass",
    "len",
    "list",
    "max",
    "min",
    "pow",
    "print",
    "range",
    "repr",
    "reversed",
    "round",
    "sorted",
    "str",
    "sum",
    "tuple",
    "type",
    "zip",
];

/// The package a relative import of `level` dots starts from, in module `name`.
fn relative_base(name: &str, is_package: bool, level: u32) -> Option<String> {
    let mut parts: Vec<&str> = name.split('.').filter(|p| !p.is_empty()).collect();
    if !is_package {
        parts.pop()?;
    }
    for _ in 1..level {
        parts.pop()?;
    }
    Some(parts.join("."))
}
