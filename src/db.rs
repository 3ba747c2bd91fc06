//! The incremental database: salsa queries over source files, one per pipeline stage and
//! function, so an edit recomputes only what it touched.
//!
//! Inputs are [`SourceFile`]s (path, text). A function is identified by its file and name
//! ([`FunctionId`]); a derivative by its function, `wrt` and options ([`DerivKey`]).
//! Queries: `parse` (whole file) -> `function_text` / `function_line` / `module_scope`
//! (backdated, so edits elsewhere in the file stop here) -> `normalize` -> `activity` ->
//! `adjoint` -> `optimize` -> `emit`, and `artifact_key` (content hash of everything a
//! derivative depends on) and `grad_module` (the assembled module of a file).
//!
//! Every query is a pure function of its inputs, except that `emit_cached` consults the
//! content-addressed artifact store: a hit returns exactly what `emit` would.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use ruff_python_ast::Stmt as AStmt;
use ruff_text_size::Ranged;

use crate::Motion;
use crate::activity::Activity;
use crate::derive::{self, Packaged, SeedStyle, Spec};
use crate::diagnostics::{Diagnostic, DiagnosticKind};
use crate::emit::{self as emitting, FunctionText};
use crate::ir::{Callee, Expr, Stmt};
use crate::normalize::{self as normalizing, Normalized};
use crate::optimize as optimizing;
use crate::parse::{self as parsing, SourceFile as Text};
use crate::recipes;
use crate::resolve::ModuleScope;
use crate::reverse::Callees;
use crate::store::{self, Store};

type R<T> = Result<T, Diagnostic>;

#[salsa::input(debug)]
pub struct SourceFile {
    #[returns(ref)]
    pub path: String,
    /// Dotted module name (`pkg.layers`); empty when unknown (relative imports then don't
    /// resolve).
    #[returns(ref)]
    pub module: String,
    #[returns(ref)]
    pub text: String,
}

/// The modules of a project, by dotted name: calls into them resolve across files.
#[salsa::input(debug)]
pub struct Project {
    #[returns(ref)]
    pub modules: BTreeMap<String, SourceFile>,
}

#[salsa::interned(debug)]
pub struct FunctionId<'db> {
    #[returns(copy)]
    pub file: SourceFile,
    #[returns(ref)]
    pub name: String,
}

#[salsa::interned(debug)]
pub struct DerivKey<'db> {
    #[returns(copy)]
    pub function: FunctionId<'db>,
    #[returns(ref)]
    pub wrt: Vec<usize>,
    #[returns(copy)]
    pub optimized: bool,
    /// The two halves callers run in their own sweeps (`derive::Spec::halves`), not the
    /// joint derivative.
    #[returns(copy)]
    pub halves: bool,
    /// Positions of parameters the function writes into, whose new values are outputs too
    /// (`derive::with_updates`).
    #[returns(ref)]
    pub updates: Vec<usize>,
}

/// One top-level function of a module, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionEntry {
    pub name: String,
    /// Source of the definition (from its first decorator), starting at column 0.
    pub text: String,
    /// Line of the definition's first line in the file, minus one.
    pub line_offset: usize,
    pub params: Vec<String>,
    /// It calls a function of the module that callers specialize (one taking functions or
    /// spreading arguments: `normalize::takes_functions_or_spreads`), whose body is inlined at
    /// the call: it is read in the module's text (see [`reads_module_text`]).
    pub calls_specialized: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleIndex {
    pub scope: ModuleScope,
    /// The functions a name of the module is bound to once it has run: of a name defined
    /// more than once (`def` or `class`), only the last definition's.
    pub functions: Vec<FunctionEntry>,
    /// The names the module defines more than once at its top level.
    pub redefined: Vec<Redefinition>,
    /// The module's own recipe templates (`@tangent.adjoint(f)`), as text: they are not
    /// functions to differentiate.
    pub recipes: Vec<FunctionEntry>,
    /// Recipes for the constructors of the module's classes, written from their definitions
    /// (`recipes::constructor_templates`), as text.
    pub constructors: String,
    /// The classes of objects the module's classes hold in attributes, as its source tells
    /// them (`normalize::attribute_classes`).
    pub attribute_classes: BTreeMap<(String, String), String>,
}

/// A name a module binds more than once with `def` or `class` at its top level: calls of it
/// (and the gradient module's `d<name>`) reach the last definition, as when Python has run
/// the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redefinition {
    pub name: String,
    /// The line (1-based) of each definition (its first decorator, else `def` / `class`), in
    /// order: the last is the one the name is bound to.
    pub lines: Vec<usize>,
    /// The last definition is a class (its methods are differentiated as `Class.method`).
    pub class: bool,
}

impl Redefinition {
    /// The line of the definition the name is bound to.
    pub fn bound(&self) -> usize {
        self.lines.last().copied().unwrap_or(0)
    }

    /// For generated code: which definition the derivatives of `function` (`name` itself, or
    /// `name.method`) belong to, naming the file `file_name`.
    pub fn note(&self, function: &str, file_name: &str) -> String {
        let lines = self
            .lines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let what = if self.class {
            format!("class `{}`", self.name)
        } else {
            format!("`{}`", self.name)
        };
        let of = if function == self.name {
            String::new()
        } else {
            format!("`{function}` of ")
        };
        format!(
            "{what} is defined more than once in {file_name} (lines {lines}): this differentiates {of}the definition at {file_name}:{}, the one the name is bound to.",
            self.bound()
        )
    }
}

/// The recipes in force in a module: the built-in ones with the module's own on top.
#[derive(Debug, Clone)]
pub struct ModuleRecipes {
    /// `None`: the built-in recipes alone (most modules; no copy made).
    own: Option<Arc<recipes::RecipeSet>>,
    /// Content hash of the module's own recipes (all zero when it has none).
    pub hash: [u8; 32],
}

impl PartialEq for ModuleRecipes {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
    }
}

impl Eq for ModuleRecipes {}

impl ModuleRecipes {
    pub fn set(&self) -> &recipes::RecipeSet {
        self.own.as_deref().unwrap_or(recipes::builtin())
    }
}

/// What one derivative needs from other functions: `(function, wrt)` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjointArtifact {
    pub functions: Vec<FunctionText>,
    pub requires: Vec<(String, Vec<usize>, bool, Vec<usize>)>,
}

/// The gradient module of a file, assembled from per-function artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradModuleArtifact {
    pub source: String,
    pub source_hash: String,
    pub generated: Vec<(String, String)>,
    pub skipped: Vec<(String, Diagnostic)>,
}

#[salsa::db]
pub trait Db: salsa::Database {
    /// The artifact store, when this process holds it.
    fn store(&self) -> Option<&Store>;
    /// The project the files belong to, when calls across modules should resolve.
    fn project(&self) -> Option<Project>;
    /// Recipes shared by the whole project (`[tool.tangent] recipes`), if any.
    fn project_recipes(&self) -> Option<&recipes::ProjectRecipes>;
}

/// Counts of query executions by query name (filled by salsa's event hook).
pub type ExecutionLog = Arc<Mutex<BTreeMap<String, usize>>>;

#[salsa::db]
#[derive(Clone)]
pub struct Database {
    storage: salsa::Storage<Self>,
    store: Option<Arc<Store>>,
    project: Option<Project>,
    project_recipes: Option<Arc<recipes::ProjectRecipes>>,
    log: ExecutionLog,
}

impl Default for Database {
    fn default() -> Self {
        Database::new(None)
    }
}

impl Database {
    pub fn new(store: Option<Arc<Store>>) -> Self {
        let log: ExecutionLog = Arc::default();
        let sink = log.clone();
        let storage = salsa::Storage::new(Some(Box::new(move |event: salsa::Event| {
            if let salsa::EventKind::WillExecute { database_key } = event.kind {
                let text = format!("{database_key:?}");
                let name = text.split('(').next().unwrap_or(&text).to_string();
                *sink.lock().unwrap().entry(name).or_insert(0) += 1;
            }
        })));
        Database {
            storage,
            store,
            project: None,
            project_recipes: None,
            log,
        }
    }

    /// Attaches (or detaches) the artifact store. Set it before running queries.
    pub fn set_store(&mut self, store: Option<Arc<Store>>) {
        self.store = store;
    }

    /// Applies the project's shared recipes to every module. Set it before running queries.
    pub fn set_project_recipes(&mut self, recipes: Option<Arc<recipes::ProjectRecipes>>) {
        self.project_recipes = recipes.filter(|r| !r.is_empty());
    }

    /// Makes calls across the modules of `project` resolve. Set it before running queries.
    pub fn set_project(&mut self, project: Project) {
        self.project = Some(project);
    }

    /// Query executions since the last call, by query name.
    pub fn take_executions(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

#[salsa::db]
impl salsa::Database for Database {}

#[salsa::db]
impl Db for Database {
    fn store(&self) -> Option<&Store> {
        self.store.as_deref()
    }

    fn project(&self) -> Option<Project> {
        self.project
    }

    fn project_recipes(&self) -> Option<&recipes::ProjectRecipes> {
        self.project_recipes.as_deref()
    }
}

fn file_text(db: &dyn Db, file: SourceFile) -> Text<'_> {
    Text {
        text: file.text(db),
        path: file.path(db),
        line_offset: 0,
        lines_read: None,
    }
}

/// Parses a file into its module scope and the text of each top-level function.
#[salsa::tracked(returns(ref))]
pub fn parse(db: &dyn Db, file: SourceFile) -> R<ModuleIndex> {
    let text = file_text(db, file);
    let parsed = parsing::parse(&text)?;
    let module = parsed.syntax();
    let name = file.module(db);
    let location =
        (!name.is_empty()).then(|| (name.as_str(), file.path(db).ends_with("__init__.py")));
    let scope = ModuleScope::new_in(module, location);
    let mut functions = Vec::new();
    let mut recipe_defs = Vec::new();
    // The module's functions callers specialize (the last definition of each name counts).
    let mut specialized: BTreeSet<&str> = BTreeSet::new();
    for stmt in &module.body {
        if let AStmt::FunctionDef(def) = stmt {
            if normalizing::takes_functions_or_spreads(def) {
                specialized.insert(def.name.as_str());
            } else {
                specialized.remove(def.name.as_str());
            }
        }
    }
    let calls_specialized = |def: &ruff_python_ast::StmtFunctionDef| {
        !specialized.is_empty()
            && normalizing::calls_any(
                def,
                &|call| matches!(&*call.func, ruff_python_ast::Expr::Name(n) if specialized.contains(n.id.as_str())),
            )
    };
    // Line numbers counted incrementally: one pass over the file, not one per function.
    let (mut counted_to, mut lines) = (0usize, 0usize);
    // The entry of `def` under `name`; a `header` line (`class C:\n`) goes before its text and
    // stands in for the line before it.
    let mut entry_of = |name: String, def: &ruff_python_ast::StmtFunctionDef, header: String| {
        let (start, end) = (
            usize::from(def.range().start()),
            usize::from(def.range().end()),
        );
        let line_start = text.text[..start].rfind('\n').map_or(0, |i| i + 1);
        lines += text.text[counted_to..line_start].matches('\n').count();
        counted_to = line_start;
        // A definition lifted from a module-level block (`if __name__ == "__main__":`) keeps
        // its indentation: a block header before it makes the text parse (and is lifted too).
        let header = if header.is_empty() && start > line_start {
            "if True:\n".to_string()
        } else {
            header
        };
        FunctionEntry {
            name,
            line_offset: lines.saturating_sub(usize::from(!header.is_empty())),
            // (Only a definition standing at the top level as written: not a method, nor
            // one lifted from a block.)
            calls_specialized: header.is_empty() && calls_specialized(def),
            text: header + &text.text[line_start..end],
            params: parsing::param_names(def),
        }
    };
    // The statement that binds each name last (`def` and `class`), and the names bound more
    // than once.
    let mut last_binding: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bindings: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, stmt) in module.body.iter().enumerate() {
        let name = match stmt {
            AStmt::FunctionDef(def) => def.name.as_str(),
            AStmt::ClassDef(class) => class.name.as_str(),
            _ => continue,
        };
        last_binding.insert(name, i);
        bindings.entry(name).or_default().push(i);
    }
    // Not worth a word: `@overload` signatures before the implementation, and `_`, the name
    // meant to be thrown away (`@f.register def _(...)`).
    let overload = |i: usize| {
        matches!(&module.body[i], AStmt::FunctionDef(def) if def.decorator_list.iter().any(|d| match &d.expression {
            ruff_python_ast::Expr::Name(n) => n.id.as_str() == "overload",
            ruff_python_ast::Expr::Attribute(a) => a.attr.as_str() == "overload",
            _ => false,
        }))
    };
    let mut redefined: Vec<(usize, Redefinition)> = bindings
        .iter()
        .filter(|(name, at)| {
            at.len() > 1 && **name != "_" && !at[..at.len() - 1].iter().all(|&i| overload(i))
        })
        .map(|(name, at)| {
            let lines = at
                .iter()
                .map(|&i| parsing::line_of(text.text, module.body[i].start().to_usize()))
                .collect();
            let class = matches!(module.body[*at.last().unwrap_or(&0)], AStmt::ClassDef(_));
            (
                at[0],
                Redefinition {
                    name: name.to_string(),
                    lines,
                    class,
                },
            )
        })
        .collect();
    redefined.sort_by_key(|(first, _)| *first);
    for (i, stmt) in module.body.iter().enumerate() {
        // A definition the module replaces later is no function of the module's.
        let replaced = |name: &str| last_binding.get(name).is_some_and(|&last| last != i);
        match stmt {
            AStmt::FunctionDef(def)
                if replaced(def.name.as_str()) && !recipes::is_recipe_template(def, &scope) => {}
            AStmt::ClassDef(class) if replaced(class.name.as_str()) => {}
            AStmt::FunctionDef(def) => {
                let entry = entry_of(def.name.to_string(), def, String::new());
                if recipes::is_recipe_template(def, &scope) {
                    recipe_defs.push(entry)
                } else {
                    functions.push(entry)
                }
            }
            // Plain methods of top-level classes, as `Class.method`: their text is the class's
            // header line, then the method as written (so it parses, and `self.m(...)`
            // resolves in its class).
            AStmt::ClassDef(class) => {
                for (k, item) in class.body.iter().enumerate() {
                    let AStmt::FunctionDef(def) = item else {
                        continue;
                    };
                    // A method the class body defines again is not the class's.
                    if class.body[k + 1..].iter().any(|s| matches!(s, AStmt::FunctionDef(later) if later.name.as_str() == def.name.as_str())) {
                        continue;
                    }
                    // Not static or class methods, properties and the like: only undecorated
                    // ones (or marked `@tangent.checkpoint`) take the object first.
                    let plain = def
                        .decorator_list
                        .iter()
                        .all(|d| normalizing::is_checkpoint(&d.expression));
                    if !plain
                        || def
                            .parameters
                            .posonlyargs
                            .iter()
                            .chain(&def.parameters.args)
                            .next()
                            .is_none()
                    {
                        continue;
                    }
                    functions.push(entry_of(
                        format!("{}.{}", class.name, def.name),
                        def,
                        format!("class {}:\n", class.name),
                    ));
                }
            }
            _ => {}
        }
    }
    functions.extend(inherited_methods(&scope, &functions));
    let redefined = redefined.into_iter().map(|(_, r)| r).collect();
    Ok(ModuleIndex {
        functions,
        redefined,
        recipes: recipe_defs,
        constructors: recipes::constructor_templates(&module.body),
        attribute_classes: normalizing::attribute_classes(&module.body, &scope),
        scope,
    })
}

/// `Sub.m` for each method `m` a top-level class inherits from a base class of the module:
/// the base's method seen from the subclass (its text under `class Sub:`), so that
/// `self.other(...)` in it calls the subclass's methods, as for an instance of `Sub`.
fn inherited_methods(scope: &ModuleScope, own: &[FunctionEntry]) -> Vec<FunctionEntry> {
    let mut out = Vec::new();
    for class in &scope.classes {
        let mut ancestors: Vec<&str> = class.bases.iter().map(String::as_str).collect();
        let mut seen = BTreeSet::new();
        while let Some(base) = ancestors.pop() {
            if !seen.insert(base) || seen.len() > 64 {
                continue;
            }
            let Some(info) = scope.classes.iter().rev().find(|c| c.name == base) else {
                continue;
            };
            ancestors.extend(info.bases.iter().map(String::as_str));
            for method in &info.methods {
                let name = format!("{}.{method}", class.name);
                let owner = scope
                    .method_owner(&class.name, method)
                    .map(|c| c.name.as_str());
                if owner == Some(class.name.as_str())
                    || out.iter().any(|e: &FunctionEntry| e.name == name)
                {
                    continue;
                }
                // The owner's own entry (a plain method): its text, under this class's name.
                let Some(entry) =
                    owner.and_then(|o| own.iter().find(|e| e.name == format!("{o}.{method}")))
                else {
                    continue;
                };
                let body = entry.text.split_once('\n').map_or("", |(_, rest)| rest);
                out.push(FunctionEntry {
                    name,
                    text: format!("class {}:\n{body}", class.name),
                    line_offset: entry.line_offset,
                    params: entry.params.clone(),
                    calls_specialized: false,
                });
            }
        }
    }
    out
}

/// The recipes in force in a file: unchanged (backdated) unless its recipe templates change.
#[salsa::tracked(returns(ref))]
pub fn module_recipes(db: &dyn Db, file: SourceFile) -> R<ModuleRecipes> {
    let index = parse(db, file).as_ref().map_err(Clone::clone)?;
    let shared = db.project_recipes();
    let base_hash = shared.map_or(String::new(), |p| p.hash.clone());
    if index.recipes.is_empty() && index.constructors.is_empty() {
        return Ok(match shared {
            None => ModuleRecipes {
                own: None,
                hash: [0; 32],
            },
            Some(p) => ModuleRecipes {
                own: Some(Arc::new(
                    recipes::builtin().overlaid(&p.for_module(file.module(db))),
                )),
                hash: store::key(&[base_hash.as_bytes()]),
            },
        });
    }
    let mut user = recipes::constructor_recipes(&index.constructors);
    let mut parts: Vec<Vec<u8>> = vec![
        base_hash.into_bytes(),
        index.constructors.clone().into_bytes(),
    ];
    for entry in &index.recipes {
        let text = Text {
            text: &entry.text,
            path: file.path(db),
            line_offset: entry.line_offset,
            lines_read: None,
        };
        let parsed = parsing::parse(&text)?;
        user = user.overlaid(&recipes::user_recipes(
            &parsed.syntax().body,
            text,
            &index.scope,
        )?);
        parts.push(format!("{}:{}", entry.line_offset, entry.text).into_bytes());
    }
    let hash = store::key(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let base = match shared {
        Some(p) => recipes::builtin().overlaid(&p.for_module(file.module(db))),
        None => recipes::builtin().clone(),
    };
    Ok(ModuleRecipes {
        own: Some(Arc::new(base.overlaid(&user))),
        hash,
    })
}

/// The module's imports and function names: unchanged by edits inside function bodies.
#[salsa::tracked(returns(ref))]
pub fn module_scope(db: &dyn Db, file: SourceFile) -> Option<ModuleScope> {
    parse(db, file).as_ref().ok().map(|m| m.scope.clone())
}

fn entry<'db>(db: &'db dyn Db, function: FunctionId<'db>) -> Option<&'db FunctionEntry> {
    let index = parse(db, function.file(db)).as_ref().ok()?;
    index
        .functions
        .iter()
        .rev()
        .find(|f| &f.name == function.name(db))
}

/// The text of one function: unchanged when other parts of the file change.
#[salsa::tracked(returns(ref))]
pub fn function_text<'db>(db: &'db dyn Db, function: FunctionId<'db>) -> Option<String> {
    entry(db, function).map(|e| e.text.clone())
}

/// Where the function starts in its file (only diagnostics depend on it).
#[salsa::tracked]
pub fn function_line<'db>(db: &'db dyn Db, function: FunctionId<'db>) -> usize {
    entry(db, function).map_or(0, |e| e.line_offset)
}

/// Parameters of a function of the module.
#[salsa::tracked(returns(ref))]
pub fn function_params<'db>(db: &'db dyn Db, function: FunctionId<'db>) -> Option<Vec<String>> {
    entry(db, function).map(|e| e.params.clone())
}

/// Parameters of a function of the module, and those it modifies in place.
pub fn function_signature<'db>(
    db: &'db dyn Db,
    function: FunctionId<'db>,
) -> Option<(Vec<String>, Vec<String>)> {
    function_params(db, function)
        .clone()
        .map(|params| (params, written_params(db, function)))
}

/// The classes of objects the file's classes hold in attributes, as its source tells them
/// (`normalize::attribute_classes`); backdated.
#[salsa::tracked(returns(ref))]
pub fn attribute_classes(db: &dyn Db, file: SourceFile) -> BTreeMap<(String, String), String> {
    parse(db, file)
        .as_ref()
        .map(|index| index.attribute_classes.clone())
        .unwrap_or_default()
}

/// Is `function` read in its module's whole text rather than its own: a top-level function
/// calling one the module's callers specialize (`FunctionEntry::calls_specialized`), whose
/// body is inlined at the call (the ranges of what is inlined index the module's text). Only
/// such functions depend on the rest of the file's text.
#[salsa::tracked]
pub fn reads_module_text<'db>(db: &'db dyn Db, function: FunctionId<'db>) -> bool {
    entry(db, function).is_some_and(|e| e.calls_specialized)
}

/// `run` on the text a per-function query reads: the function's own text, its lines counted
/// from its first line, so that the result does not depend on where the function stands in
/// its file; run again with its place in the file only when the first run reported a line (a
/// diagnostic, a message generated code carries). A function read in its module's text
/// (`reads_module_text`) is read there once.
fn on_function_source<'db, T>(
    db: &'db dyn Db,
    function: FunctionId<'db>,
    run: impl Fn(Text<'_>) -> R<T>,
) -> R<T> {
    let file = function.file(db);
    if *reads_module_text(db, function) {
        return run(file_text(db, file));
    }
    let Some(text) = function_text(db, function) else {
        return Err(function_not_found(db, file, function.name(db)));
    };
    let read = std::cell::Cell::new(false);
    let own = Text {
        text,
        path: file.path(db),
        line_offset: 0,
        lines_read: Some(&read),
    };
    let out = run(own);
    if !read.get() {
        return out;
    }
    run(Text {
        line_offset: *function_line(db, function),
        lines_read: None,
        ..own
    })
}

/// Why `name` is not among the file's functions (see `parse::function_not_found`); parses
/// the file again, on this error path only.
fn function_not_found(db: &dyn Db, file: SourceFile, name: &str) -> Diagnostic {
    let text = file_text(db, file);
    match parsing::parse(&text) {
        Ok(parsed) => parsing::function_not_found(&text, &parsed.syntax().body, name),
        Err(d) => d,
    }
}

/// The effect summaries of a file's functions (backdated: an edit that changes none of them
/// stops here). Computed only when a function of the file is normalized (not for a build
/// that finds everything in the cache).
#[salsa::tracked(returns(ref))]
pub fn module_effects(db: &dyn Db, file: SourceFile) -> crate::effects::Effects {
    let Some(scope) = module_scope(db, file) else {
        return Default::default();
    };
    let text = file_text(db, file);
    let Ok(parsed) = parsing::parse(&text) else {
        return Default::default();
    };
    crate::effects::Effects::of_module(&parsed.syntax().body, scope, recipes::builtin())
}

/// The parameters a function changes in place (see `effects`); an inherited method's are
/// those of the method it inherits.
pub fn written_params(db: &dyn Db, function: FunctionId<'_>) -> Vec<String> {
    let file = function.file(db);
    let effects = module_effects(db, file);
    let name = function.name(db);
    let inherited = || {
        let (class, method) = name.split_once('.')?;
        let owner = module_scope(db, file)
            .as_ref()?
            .method_owner(class, method)?;
        effects.get(&format!("{}.{method}", owner.name))
    };
    effects
        .get(name)
        .or_else(inherited)
        .map(|e| {
            e.params
                .iter()
                .filter(|p| e.writes.contains(*p))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[salsa::tracked(returns(ref))]
pub fn normalize<'db>(db: &'db dyn Db, function: FunctionId<'db>) -> R<Normalized> {
    let file = function.file(db);
    let Some(scope) = module_scope(db, file) else {
        return Err(parse(db, file).clone().err().unwrap_or_else(|| {
            Diagnostic::without_span(DiagnosticKind::Internal, "unparsable module", file.path(db))
        }));
    };
    let whole = *reads_module_text(db, function);
    let recipes = module_recipes(db, file).as_ref().map_err(Clone::clone)?;
    on_function_source(db, function, |text| {
        let parsed = parsing::parse(&text)?;
        let def = parsing::find_function(parsed.syntax(), function.name(db)).ok_or_else(|| {
            Diagnostic::without_span(
                DiagnosticKind::Internal,
                "function text without its definition",
                text.path,
            )
        })?;
        let context = crate::normalize::Context {
            halves: None,
            effects: Some(module_effects(db, file)),
            recipes: Some(recipes.set()),
            generated: false,
            // The module's statements when the text is the module's (see `reads_module_text`).
            module: whole.then_some(&parsed.syntax().body[..]),
            object_classes: Some(attribute_classes(db, file)),
            left_out: None,
        };
        derive::normalized_with(text, scope, def, recipes.set(), false, context)
    })
}

/// The IR a derivative differentiates: the function's, with the parameters it writes into
/// as outputs too when the derivative's callers get their new values.
#[salsa::tracked(returns(ref))]
pub fn normalize_for<'db>(db: &'db dyn Db, key: DerivKey<'db>) -> R<Normalized> {
    let norm = normalize(db, key.function(db))
        .as_ref()
        .map_err(Clone::clone)?;
    Ok(derive::with_updates(norm.clone(), key.updates(db)))
}

#[salsa::tracked(returns(ref))]
pub fn activity<'db>(db: &'db dyn Db, key: DerivKey<'db>) -> R<(Activity, Vec<String>)> {
    let function = key.function(db);
    let norm = normalize_for(db, key).as_ref().map_err(Clone::clone)?;
    let recipes = module_recipes(db, function.file(db))
        .as_ref()
        .map_err(Clone::clone)?;
    on_function_source(db, function, |text| {
        derive::analyze(norm, key.wrt(db), recipes.set(), text)
    })
}

/// The derivative `key` names exists (`derive::check_wrt_use`): checked for the derivatives a
/// module is asked for, not for those of the helpers they call.
fn check_target(db: &dyn Db, key: DerivKey<'_>) -> R<()> {
    let function = key.function(db);
    let norm = normalize(db, function).as_ref().map_err(Clone::clone)?;
    let (act, wrt_names) = activity(db, key).as_ref().map_err(Clone::clone)?;
    let recipes = module_recipes(db, function.file(db))
        .as_ref()
        .map_err(Clone::clone)?;
    on_function_source(db, function, |text| {
        derive::check_wrt_use(norm, act, wrt_names, recipes.set(), text)
    })
}

/// Module-level names a generated function must not take.
#[salsa::tracked(returns(ref))]
pub fn reserved_names(db: &dyn Db, file: SourceFile) -> Arc<BTreeSet<String>> {
    let mut reserved: BTreeSet<String> = ["tangent", "numpy", "math"].map(String::from).into();
    if let Some(scope) = module_scope(db, file) {
        reserved.extend(scope.functions.keys().cloned());
        reserved.extend(scope.imports.keys().cloned());
    }
    Arc::new(reserved)
}

/// A hash of the module-level names (generated names avoid them).
#[salsa::tracked]
pub fn reserved_hash(db: &dyn Db, file: SourceFile) -> [u8; 32] {
    let names: Vec<&[u8]> = reserved_names(db, file)
        .iter()
        .map(|n| n.as_bytes())
        .collect();
    store::key(&names)
}

/// The name of the derivative of `function` w.r.t. parameter positions `wrt`
/// (`derive::derivative_stem`), `_` appended while it clashes.
pub fn derivative_name(
    function: &str,
    params: &[String],
    wrt: &[usize],
    reserved: &BTreeSet<String>,
) -> String {
    let mut name = derive::derivative_stem(function, params, wrt);
    while reserved.contains(&name) {
        name.push('_');
    }
    name
}

/// The seed parameter of a function's derivative (`b<f>`, unless the function uses that name).
#[salsa::tracked(returns(ref))]
pub fn seed_name<'db>(db: &'db dyn Db, function: FunctionId<'db>) -> R<String> {
    let norm = normalize(db, function).as_ref().map_err(Clone::clone)?;
    Ok(derive::seed_param_name(
        norm,
        reserved_names(db, function.file(db)),
    ))
}

/// Answers reverse mode's questions about other functions from the database, recording
/// which derivatives the generated code calls instead of generating them.
struct DbCallees<'db> {
    db: &'db dyn Db,
    file: SourceFile,
    optimized: bool,
    requires: Vec<(String, Vec<usize>, bool, Vec<usize>)>,
}

impl<'db> DbCallees<'db> {
    /// A function (or `Class.method`) of this module by name, or of another module by dotted
    /// name.
    fn target(&self, name: &str) -> Option<FunctionId<'db>> {
        if name.contains('.') {
            // A method of this module's classes (`Linear.forward`), else another module's.
            let method = FunctionId::new(self.db, self.file, name.to_string());
            function_params(self.db, method)
                .is_some()
                .then_some(method)
                .or_else(|| project_function(self.db, name))
        } else {
            Some(FunctionId::new(self.db, self.file, name.to_string()))
        }
    }
}

/// The function a dotted name of the project refers to (`pkg.layers.dense`).
pub fn project_function<'db>(db: &'db dyn Db, dotted: &str) -> Option<FunctionId<'db>> {
    let project = db.project()?;
    let (module, name) = dotted.rsplit_once('.')?;
    let file = *project.modules(db).get(module)?;
    let id = FunctionId::new(db, file, name.to_string());
    function_params(db, id).is_some().then_some(id)
}

/// The name under which `file`'s generated module imports the derivative `dname` of
/// `function` from `module`'s gradient module.
pub fn import_alias(
    db: &dyn Db,
    file: SourceFile,
    module: &str,
    function: &str,
    dname: &str,
) -> String {
    let clashes = reserved_names(db, file).contains(dname)
        || module_scope(db, file)
            .as_ref()
            .is_some_and(|s| s.functions.contains_key(function));
    if clashes {
        format!("{dname}_{}", module.replace('.', "_"))
    } else {
        dname.to_string()
    }
}

impl Callees for DbCallees<'_> {
    fn function_name(&mut self, base: &str) -> String {
        let reserved = reserved_names(self.db, self.file);
        let mut name = base.to_string();
        while reserved.contains(&name) {
            name.push('_');
        }
        name
    }

    fn params(&self, function: &str) -> Option<Vec<String>> {
        let id = self.target(function)?;
        function_params(self.db, id).clone()
    }

    fn mutated_params(&self, function: &str) -> Vec<String> {
        self.target(function)
            .map(|id| written_params(self.db, id))
            .unwrap_or_default()
    }

    fn derivative(&mut self, function: &str, wrt: &[usize], _site: &Stmt) -> R<(String, String)> {
        let id = self.target(function).ok_or_else(|| {
            Diagnostic::without_span(
                DiagnosticKind::NoRecipe,
                format!("no source for `{function}`"),
                self.file.path(self.db),
            )
        })?;
        let params = self.params(function).unwrap_or_default();
        let callee_file = id.file(self.db);
        let fname = id.name(self.db).clone();
        let dname = derivative_name(&fname, &params, wrt, reserved_names(self.db, callee_file));
        let seed = seed_name(self.db, id).clone()?;
        // The caller's derivative is regenerated whenever the callee's changes (its key is
        // part of the caller's): reading it here makes that dependency explicit.
        let optimized = self.optimized;
        let _ = artifact_key(
            self.db,
            DerivKey::new(self.db, id, wrt.to_vec(), optimized, false, Vec::new()),
        );
        if callee_file == self.file {
            self.requires.push((fname, wrt.to_vec(), false, Vec::new()));
            Ok((dname, seed))
        } else {
            // Imported from the other module's gradient module (see `grad_module`).
            let module = callee_file.module(self.db).clone();
            Ok((
                import_alias(self.db, self.file, &module, &fname, &dname),
                seed,
            ))
        }
    }

    fn summary(&self, function: &str) -> Option<crate::effects::Summary> {
        let id = self.target(function)?;
        module_effects(self.db, id.file(self.db))
            .get(id.name(self.db))
            .cloned()
    }

    fn user_code(&self) -> bool {
        true
    }

    fn split(
        &mut self,
        function: &str,
        wrt: &[usize],
        updates: &[usize],
        _site: &Stmt,
    ) -> R<Option<(String, String)>> {
        let Some(id) = self.target(function) else {
            return Ok(None);
        };
        // Another module's functions and recursive ones are differentiated jointly.
        if id.file(self.db) != self.file || in_cycle(self.db, id) {
            return Ok(None);
        }
        let params = self.params(function).unwrap_or_default();
        let names = halves_names(
            id.name(self.db),
            &params,
            wrt,
            updates,
            reserved_names(self.db, self.file),
        );
        let _ = artifact_key(
            self.db,
            DerivKey::new(
                self.db,
                id,
                wrt.to_vec(),
                self.optimized,
                true,
                updates.to_vec(),
            ),
        );
        self.requires.push((
            id.name(self.db).clone(),
            wrt.to_vec(),
            true,
            updates.to_vec(),
        ));
        Ok(Some(names))
    }
}

/// The names of the two halves of `function`'s derivative w.r.t. `wrt` (`derive::halves_stem`
/// with `_forward` / `_backward`), `_` appended while one clashes.
pub fn halves_names(
    function: &str,
    params: &[String],
    wrt: &[usize],
    updates: &[usize],
    reserved: &BTreeSet<String>,
) -> (String, String) {
    let mut stem = derive::halves_stem(function, params, wrt);
    // The halves that also give back the arguments the function writes into.
    if !updates.is_empty() {
        stem.push_str("_updating");
    }
    while reserved.contains(&format!("{stem}_forward"))
        || reserved.contains(&format!("{stem}_backward"))
    {
        stem.push('_');
    }
    (format!("{stem}_forward"), format!("{stem}_backward"))
}

/// The same-module functions `function` calls (by name), whatever is differentiated.
#[salsa::tracked(returns(ref))]
pub fn local_calls<'db>(db: &'db dyn Db, function: FunctionId<'db>) -> Vec<String> {
    let Ok(norm) = normalize(db, function) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for s in crate::ir::all_statements(&norm.function.body) {
        if let Stmt::Assign {
            value:
                Expr::Call {
                    callee:
                        Callee::Function {
                            text, local: true, ..
                        },
                    ..
                },
            ..
        } = s
        {
            if !out.contains(text) {
                out.push(text.clone());
            }
        }
    }
    out
}

/// Does `function` call itself, directly or through other functions of its module? Such a
/// function is differentiated jointly (its derivative runs it again), never split.
pub fn in_cycle(db: &dyn Db, function: FunctionId<'_>) -> bool {
    let file = function.file(db);
    let start = function.name(db).clone();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = local_calls(db, function).clone();
    while let Some(g) = todo.pop() {
        if g == start {
            return true;
        }
        if seen.insert(g.clone()) {
            todo.extend(
                local_calls(db, FunctionId::new(db, file, g))
                    .iter()
                    .cloned(),
            );
        }
    }
    false
}

/// Reverse mode for one derivative: the generated functions before optimization, and the
/// derivatives of other functions they call.
#[salsa::tracked(returns(ref))]
pub fn adjoint<'db>(db: &'db dyn Db, key: DerivKey<'db>) -> R<AdjointArtifact> {
    let function = key.function(db);
    let file = function.file(db);
    let norm = normalize_for(db, key).as_ref().map_err(Clone::clone)?;
    let (act, wrt_names) = activity(db, key).as_ref().map_err(Clone::clone)?;
    let reserved = reserved_names(db, file);
    let params: Vec<String> = norm
        .function
        .params
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let name = derivative_name(function.name(db), &params, key.wrt(db), reserved);
    let halves = key.halves(db).then(|| {
        halves_names(
            function.name(db),
            &params,
            key.wrt(db),
            key.updates(db),
            reserved,
        )
    });
    let seed = if halves.is_some() {
        SeedStyle::Required
    } else {
        SeedStyle::DefaultOne
    };
    let spec = Spec {
        name,
        wrt: key.wrt(db),
        seed,
        preserve_result: false,
        motion: Motion::Joint,
        halves,
        updates: key.updates(db),
    };
    let recipes = module_recipes(db, file).as_ref().map_err(Clone::clone)?;
    on_function_source(db, function, |text| {
        let mut callees = DbCallees {
            db,
            file,
            optimized: key.optimized(db),
            requires: Vec::new(),
        };
        let Packaged { functions, .. } = derive::derive_function(
            norm,
            act,
            wrt_names,
            text,
            &spec,
            recipes.set(),
            reserved,
            &mut callees,
            key.optimized(db),
        )?;
        Ok(AdjointArtifact {
            functions,
            requires: callees.requires,
        })
    })
}

#[salsa::tracked(returns(ref))]
pub fn optimize<'db>(db: &'db dyn Db, key: DerivKey<'db>) -> R<Vec<FunctionText>> {
    let artifact = adjoint(db, key).as_ref().map_err(Clone::clone)?;
    let mut functions = artifact.functions.clone();
    for f in &mut functions {
        if key.optimized(db) {
            optimizing::optimize(&mut f.body);
        }
        optimizing::tidy_comments(&mut f.body);
    }
    Ok(functions)
}

/// The printed source of one derivative's functions.
#[salsa::tracked(returns(ref))]
pub fn emit<'db>(db: &'db dyn Db, key: DerivKey<'db>) -> R<String> {
    let functions = optimize(db, key).as_ref().map_err(Clone::clone)?;
    emitting::functions(functions)
}

/// The derivatives of other functions that `key`'s code calls, found from the normalized IR
/// and activity alone (without running reverse mode), so keys can be computed cheaply.
/// A derivative another one calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub file: SourceFile,
    pub function: String,
    pub wrt: Vec<usize>,
    /// The halves callers run in their sweeps (`DerivKey::halves`), not the joint derivative.
    pub halves: bool,
    /// The parameters whose new values the callers get back (`DerivKey::updates`).
    pub updates: Vec<usize>,
}

#[salsa::tracked(returns(ref))]
pub fn requirements<'db>(db: &'db dyn Db, key: DerivKey<'db>) -> R<Vec<Requirement>> {
    let function = key.function(db);
    let norm = normalize_for(db, key).as_ref().map_err(Clone::clone)?;
    let (act, _) = activity(db, key).as_ref().map_err(Clone::clone)?;
    let recipes = module_recipes(db, function.file(db))
        .as_ref()
        .map_err(Clone::clone)?;
    let mut out = Vec::new();
    collect_requirements(
        db,
        function.file(db),
        &norm.function.body,
        act,
        recipes.set(),
        &mut out,
    );
    Ok(out)
}

fn collect_requirements(
    db: &dyn Db,
    file: SourceFile,
    body: &[Stmt],
    act: &Activity,
    recipes: &recipes::RecipeSet,
    out: &mut Vec<Requirement>,
) {
    for s in body {
        match s {
            Stmt::Assign {
                target,
                value:
                    Expr::Call {
                        callee:
                            Callee::Function {
                                text,
                                local,
                                canonical,
                            },
                        args,
                        kwargs,
                    },
                inplace,
                ..
            } if act.is_active(target) => {
                let id = if *local {
                    // A recipe of the user's covers the call: nothing else to differentiate.
                    if recipes.adjoints.contains_key(text) {
                        continue;
                    }
                    FunctionId::new(db, file, text.clone())
                } else {
                    match canonical {
                        Some(c)
                            if !recipes.adjoints.contains_key(c)
                                && !recipes.nondifferentiable.contains(c) =>
                        {
                            match project_function(db, c) {
                                Some(id) => id,
                                None => continue,
                            }
                        }
                        _ => continue,
                    }
                };
                let params = function_params(db, id).clone().unwrap_or_default();
                let wrt: Vec<usize> = act
                    .active_arguments(&params, args, kwargs)
                    .into_iter()
                    .map(|(i, _)| i)
                    .collect();
                // As `DbCallees::split` decides: same-module functions outside call cycles.
                let halves = id.file(db) == file && !in_cycle(db, id);
                let updates: Vec<usize> = match inplace {
                    Some(crate::ir::InPlace::Updates(updated)) if halves => {
                        updated.iter().map(|(p, _)| *p).collect()
                    }
                    _ => Vec::new(),
                };
                let req = Requirement {
                    file: id.file(db),
                    function: id.name(db).clone(),
                    wrt,
                    halves,
                    updates,
                };
                if !req.wrt.is_empty() && !out.contains(&req) {
                    out.push(req);
                }
            }
            Stmt::If { body, orelse, .. } => {
                collect_requirements(db, file, body, act, recipes, out);
                collect_requirements(db, file, orelse, act, recipes, out);
            }
            Stmt::For { body, .. } | Stmt::While { body, .. } => {
                collect_requirements(db, file, body, act, recipes, out)
            }
            _ => {}
        }
    }
}

/// Content hash of everything one derivative's text depends on: its normalized code, the
/// options, the engine (version and build fingerprint) and recipe versions, and the keys of
/// the derivatives it calls.
#[salsa::tracked(returns(clone), cycle_result = artifact_key_cycle)]
pub fn artifact_key<'db>(db: &'db dyn Db, key: DerivKey<'db>) -> Result<[u8; 32], String> {
    let function = key.function(db);
    let norm = normalize_for(db, key)
        .as_ref()
        .map_err(|d| d.message.clone())?;
    let reqs = requirements(db, key)
        .as_ref()
        .map_err(|d| d.message.clone())?;
    let mut body = String::new();
    crate::ir::print_block(&norm.function.body, 0, &mut body);
    let params: Vec<String> = norm
        .function
        .params
        .iter()
        .map(|p| format!("{}={:?}", p.name, p.default))
        .collect();
    let wrt = format!("{:?}", key.wrt(db));
    let opts = format!(
        "optimized={} halves={} updates={:?}",
        key.optimized(db),
        key.halves(db),
        key.updates(db)
    );
    let result = format!("{:?}{}", norm.result, norm.result_is_tuple);
    let reserved = reserved_hash(db, function.file(db));
    let recipe_hash = recipes::recipe_set_hash();
    let own_recipes = module_recipes(db, function.file(db))
        .as_ref()
        .map_or([0; 32], |r| r.hash);
    let mut callee_keys = Vec::new();
    for req in reqs {
        let id = FunctionId::new(db, req.file, req.function.clone());
        let k = DerivKey::new(
            db,
            id,
            req.wrt.clone(),
            key.optimized(db),
            req.halves,
            req.updates.clone(),
        );
        // A function calling itself: its own text is in the key already.
        if k == key {
            continue;
        }
        callee_keys.extend_from_slice(&artifact_key(db, k)?);
    }
    Ok(store::key(&[
        crate::engine_id().as_bytes(),
        recipe_hash.as_bytes(),
        function.name(db).as_bytes(),
        params.join(",").as_bytes(),
        body.as_bytes(),
        result.as_bytes(),
        wrt.as_bytes(),
        opts.as_bytes(),
        reserved.as_slice(),
        own_recipes.as_slice(),
        &callee_keys,
    ]))
}

fn artifact_key_cycle<'db>(
    _db: &'db dyn Db,
    _id: salsa::Id,
    _key: DerivKey<'db>,
) -> Result<[u8; 32], String> {
    Err("recursive calls cannot be differentiated".to_string())
}

/// `emit`, through the artifact store: a stored artifact for the same key is returned
/// without running any generation stage.
pub fn emit_cached<'db>(db: &'db dyn Db, key: DerivKey<'db>) -> R<String> {
    let store_key = artifact_key(db, key);
    if let (Some(store), Ok(k)) = (db.store(), &store_key) {
        if let Some(text) = store.get(k) {
            return Ok(text);
        }
    }
    let text = emit(db, key).clone()?;
    if let (Some(store), Ok(k)) = (db.store(), &store_key) {
        // A full or read-only cache is worth one warning, not one per function.
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if let Err(e) = store.put(k, &text) {
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    "cannot save generated code in the cache ({e}); going on without saving"
                );
            }
        }
    }
    Ok(text)
}

/// The gradient module of a file: `d<f>` for every top-level function that can be
/// differentiated, plus the derivatives they call, each printed once.
pub fn grad_module(db: &dyn Db, file: SourceFile, optimized: bool) -> R<GradModuleArtifact> {
    let index = parse(db, file).clone()?;
    // A broken recipe of the user's is the module's error, not each function's.
    module_recipes(db, file).as_ref().map_err(Clone::clone)?;
    // Methods are differentiated w.r.t. `self` (the model's parameters); special methods
    // (`__init__`, ...) only as callees.
    let special = |name: &str| {
        name.rsplit('.')
            .next()
            .is_some_and(|m| m.starts_with("__") && m.ends_with("__"))
    };
    let targets: Vec<(String, Vec<usize>)> = index
        .functions
        .iter()
        .filter(|e| !e.params.is_empty() && !special(&e.name))
        .map(|e| (e.name.clone(), vec![0]))
        .collect();
    derivative_module(db, file, &targets, optimized)
}

/// A module holding the derivatives `targets` (`(function, wrt)`) of functions of `file`,
/// each named `d<f>` / `d<f>_d<p>...`, plus the same-module derivatives they call; targets
/// that cannot be differentiated are reported in `skipped`.
pub fn derivative_module(
    db: &dyn Db,
    file: SourceFile,
    targets: &[(String, Vec<usize>)],
    optimized: bool,
) -> R<GradModuleArtifact> {
    let index = parse(db, file).clone()?;
    module_recipes(db, file).as_ref().map_err(Clone::clone)?;
    let mut generated = Vec::new();
    let mut skipped = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    let mut emitted: BTreeSet<(String, Vec<usize>, bool, Vec<usize>)> = BTreeSet::new();
    let mut imports: BTreeSet<String> = BTreeSet::new();
    let reserved = reserved_names(db, file);
    for (target, target_wrt) in targets {
        let Some(entry) = index.functions.iter().rev().find(|e| &e.name == target) else {
            skipped.push((target.clone(), function_not_found(db, file, target)));
            continue;
        };
        if target_wrt.iter().any(|&i| i >= entry.params.len()) {
            skipped.push((
                target.clone(),
                Diagnostic::without_span(
                    DiagnosticKind::InvalidWrt,
                    format!("`{target}` has {} parameter(s)", entry.params.len()),
                    file.path(db),
                ),
            ));
            continue;
        }
        let id = FunctionId::new(db, file, entry.name.clone());
        if let Err(d) = check_target(
            db,
            DerivKey::new(db, id, target_wrt.clone(), optimized, false, Vec::new()),
        ) {
            skipped.push((entry.name.clone(), d));
            continue;
        }
        let mut needed = Vec::new();
        match closure(db, id, target_wrt.clone(), optimized, &mut needed) {
            Ok(()) => {}
            Err(d) => {
                // `visit` already placed it in the file.
                skipped.push((entry.name.clone(), d));
                continue;
            }
        }
        let mut texts = Vec::new();
        let mut failed = None;
        for (name, wrt, halves, updates) in &needed {
            let k = (name.clone(), wrt.clone(), *halves, updates.clone());
            if emitted.contains(&k) {
                continue;
            }
            let fid = FunctionId::new(db, file, name.clone());
            match emit_cached(
                db,
                DerivKey::new(db, fid, wrt.clone(), optimized, *halves, updates.clone()),
            ) {
                Ok(t) => texts.push((k, t)),
                Err(d) => {
                    failed = Some(d);
                    break;
                }
            }
        }
        if let Some(d) = failed {
            skipped.push((entry.name.clone(), d));
            continue;
        }
        for (k, t) in texts {
            // Which definition it belongs to, when the module defines the name more than once.
            let binding = k.0.split('.').next().unwrap_or(&k.0);
            match index.redefined.iter().find(|r| r.name == binding) {
                Some(r) => parts.push(format!("# {}\n{t}", r.note(&k.0, file_name(file.path(db))))),
                None => parts.push(t),
            }
            emitted.insert(k);
        }
        for (name, wrt, halves, updates) in &needed {
            let fid = FunctionId::new(db, file, name.clone());
            if let Ok(reqs) = requirements(
                db,
                DerivKey::new(db, fid, wrt.clone(), optimized, *halves, updates.clone()),
            ) {
                for req in reqs.iter().filter(|r| r.file != file) {
                    imports.insert(import_line(db, file, req));
                }
            }
        }
        generated.push((
            entry.name.clone(),
            derivative_name(&entry.name, &entry.params, target_wrt, reserved),
        ));
    }
    let source_text = file.text(db);
    let hash = crate::source_hash(source_text);
    let file_name = file_name(file.path(db));
    let header = format!(
        "{}{hash}\nGradients of {file_name}, generated by Tangent {}. Regenerate rather than edit.",
        crate::SOURCE_HASH_MARKER,
        crate::ENGINE_VERSION
    );
    let all: String = parts.concat();
    let mut import_lines: Vec<&str> = if crate::mentions_module(&all, "math") {
        vec!["import math", "import numpy", "import tangent"]
    } else {
        vec!["import numpy", "import tangent"]
    };
    // What the project's shared recipes used in this module's code import.
    let shared_imports = match db.project_recipes() {
        Some(p) => p.import_lines(&all, &index.scope, file.path(db))?,
        None => Vec::new(),
    };
    import_lines.extend(shared_imports.iter().map(String::as_str));
    import_lines.extend(imports.iter().map(String::as_str));
    let source = emitting::assemble(&header, &import_lines, &parts);
    Ok(GradModuleArtifact {
        source,
        source_hash: hash,
        generated,
        skipped,
    })
}

/// The file name of `path` (generated code never names the directories).
fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// `from pkg.layers.__grad__ import ddense_dx` for a derivative of another module.
pub fn import_line(db: &dyn Db, file: SourceFile, req: &Requirement) -> String {
    let id = FunctionId::new(db, req.file, req.function.clone());
    let params = function_params(db, id).clone().unwrap_or_default();
    let dname = derivative_name(
        &req.function,
        &params,
        &req.wrt,
        reserved_names(db, req.file),
    );
    let module = req.file.module(db);
    let alias = import_alias(db, file, module, &req.function, &dname);
    if alias == dname {
        format!("from {module}.__grad__ import {dname}")
    } else {
        format!("from {module}.__grad__ import {dname} as {alias}")
    }
}

/// The derivatives `(function, wrt)` needs, itself first, in a fixed order (a recursive call
/// needs a derivative already listed).
fn closure<'db>(
    db: &'db dyn Db,
    function: FunctionId<'db>,
    wrt: Vec<usize>,
    optimized: bool,
    out: &mut Vec<(String, Vec<usize>, bool, Vec<usize>)>,
) -> R<()> {
    let mut stack: Vec<String> = Vec::new();
    visit(
        db,
        function,
        wrt,
        (false, Vec::new()),
        optimized,
        out,
        &mut stack,
    )
}

#[allow(clippy::too_many_arguments)]
fn visit<'db>(
    db: &'db dyn Db,
    function: FunctionId<'db>,
    wrt: Vec<usize>,
    (halves, updates): (bool, Vec<usize>),
    optimized: bool,
    out: &mut Vec<(String, Vec<usize>, bool, Vec<usize>)>,
    stack: &mut Vec<String>,
) -> R<()> {
    let name = function.name(db).clone();
    let entry = (name.clone(), wrt.clone(), halves, updates.clone());
    if out.contains(&entry) {
        return Ok(());
    }
    out.push(entry);
    let key = DerivKey::new(db, function, wrt, optimized, halves, updates);
    let reqs = requirements(db, key).clone()?;
    stack.push(name);
    for req in reqs {
        // Derivatives of other modules are imported, not generated here.
        if req.file != function.file(db) {
            continue;
        }
        let id = FunctionId::new(db, req.file, req.function);
        visit(
            db,
            id,
            req.wrt,
            (req.halves, req.updates),
            optimized,
            out,
            stack,
        )?;
    }
    stack.pop();
    Ok(())
}
