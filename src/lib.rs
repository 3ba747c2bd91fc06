//! Tangent engine: reverse-mode automatic differentiation of Python by source transformation.
//!
//! `generate` takes the text of a Python module, the name of a function in it and options,
//! and returns the Python source of the derivative. No Python interpreter is involved.

// A `Diagnostic` carries the source line and help text: large, but only on the error path,
// where boxing would buy nothing and cost noise at every `?`.
#![allow(clippy::result_large_err)]

pub mod activity;
pub mod aliases;
pub mod checkpoint;
pub mod code;
pub mod db;
pub mod derive;
pub mod diagnostics;
pub mod effects;
pub mod emit;
pub mod forward;
pub mod ir;
pub mod normalize;
pub mod optimize;
pub mod parse;
pub mod recipes;
pub mod resolve;
pub mod reverse;
pub mod shapes;
pub mod store;

pub use diagnostics::{Diagnostic, DiagnosticKind};

/// The engine version, recorded in generated files and in the artifact store.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The engine's build fingerprint: a hash of the engine's source, recipes and locked
/// dependencies, computed by `build.rs`. Two engines with the same version number but
/// different code have different fingerprints; every cache of generated code keys on it
/// (through [`engine_id`]). Generated files do not show it (their header names the version).
pub const ENGINE_FINGERPRINT: &str = env!("TANGENT_ENGINE_FINGERPRINT");

/// What identifies the engine in cache keys and store metadata: `<version>+<fingerprint>`.
pub fn engine_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("{ENGINE_VERSION}+{ENGINE_FINGERPRINT}"))
}

/// How the forward and backward passes are packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Motion {
    /// One function runs the forward pass then the backward pass.
    #[default]
    Joint,
    /// A forward function returns the saved state; a backward function consumes it.
    /// A wrapper with the joint signature calls both.
    Split,
}

/// Options of one derivative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Positions of the parameters to differentiate with respect to.
    pub wrt: Vec<usize>,
    /// Run the optimization passes (dead code, constant folding, assignment propagation).
    pub optimized: bool,
    /// Return `(gradient, value)` instead of `gradient`.
    pub preserve_result: bool,
    pub motion: Motion,
    /// When true the output seed is a required trailing argument (`autodiff`);
    /// when false it defaults to 1.0 per output (`grad`).
    pub seed_required: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wrt: vec![0],
            optimized: true,
            preserve_result: false,
            motion: Motion::Joint,
            seed_required: false,
        }
    }
}

/// What to differentiate.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Text of the whole module: imports and helper functions are resolved in it.
    pub module_source: &'a str,
    /// Path shown in diagnostics.
    pub path: &'a str,
    /// Name of the function to differentiate.
    pub function: &'a str,
    /// Source of the function itself when it is not defined at the module's top level
    /// (e.g. nested in another function); dedented. `None`: look it up in the module.
    pub function_source: Option<&'a str>,
    /// First line of `function_source` within the file, for diagnostics (1-based).
    pub function_first_line: usize,
    /// The line (1-based) where the definition to differentiate starts in `module_source`
    /// (its first decorator, else `def`: Python's `co_firstlineno`), when `function_source`
    /// is `None`: picks one definition of a name the module defines more than once (a
    /// function object made by the first `def f` differentiates that one). `None`: the
    /// definition the module's name is bound to at its end (the last). A line where no
    /// definition of `function` starts is an error (the source changed since it ran).
    pub definition_line: Option<usize>,
    /// Source of the module whose names `module_source` uses without defining them: the
    /// user's module when `module_source` is a generated derivative that is differentiated
    /// again (its code runs among the user module's globals). Definitions in `module_source`
    /// take precedence.
    pub context_source: Option<&'a str>,
    /// Recipes shared by the project (`[tool.tangent] recipes`), under the module's own.
    pub project_recipes: Option<&'a recipes::ProjectRecipes>,
    /// Classes of objects held in attributes, as the Python API finds them on the object a
    /// bound method is taken from: `(class, path, attribute's class)`, e.g. `("GLM",
    /// "self.family", "Poisson")`: in a method of `class`, `self.family.loglike(...)` calls
    /// `Poisson.loglike` (checked when it runs). Classes of the module only.
    pub object_classes: &'a [(String, String, String)],
}

impl Request<'_> {
    /// How names resolve in the request's module (parsed from `resolution_text`): its scope
    /// (relative imports against its place in `project`'s package) and the recipes in force
    /// (`None`: the built-in ones alone).
    fn resolution(
        &self,
        module: &ruff_python_ast::ModModule,
        file: parse::SourceFile<'_>,
        project: Option<&ProjectModule>,
    ) -> Result<(resolve::ModuleScope, Option<recipes::RecipeSet>), Diagnostic> {
        let location =
            project.map(|p| (p.module_name.as_str(), self.path.ends_with("__init__.py")));
        let scope = self.scope(module, location);
        let merged = self.recipe_set(
            &module.body,
            file,
            &scope,
            project.map_or("", |p| p.module_name.as_str()),
        )?;
        Ok((scope, merged))
    }

    /// The driver deriving in the request's module, with `resolution`'s scope and recipes.
    fn driver<'a>(
        &self,
        module: &'a ruff_python_ast::ModModule,
        file: parse::SourceFile<'a>,
        scope: resolve::ModuleScope,
        recipes: &'a Option<recipes::RecipeSet>,
        optimized: bool,
    ) -> derive::Driver<'a> {
        let mut driver = derive::Driver::new(
            module,
            file,
            recipes.as_ref().unwrap_or(recipes::builtin()),
            optimized,
        );
        driver.scope = scope;
        driver.own_statements = own_statements(module, self.module_source.len());
        driver.object_classes = self
            .object_classes
            .iter()
            .map(|(class, path, held)| ((class.clone(), path.clone()), held.clone()))
            .collect();
        driver
    }

    /// The built-in recipes, the project's on top, then the module's own (`body`, `scope`).
    fn recipe_set(
        &self,
        body: &[ruff_python_ast::Stmt],
        file: parse::SourceFile<'_>,
        scope: &resolve::ModuleScope,
        module: &str,
    ) -> Result<Option<recipes::RecipeSet>, Diagnostic> {
        // The user's recipes over those written from the module's constructors.
        let own = recipes::constructor_recipes(&recipes::constructor_templates(body))
            .overlaid(&recipes::user_recipes(body, file, scope)?);
        let shared = self.project_recipes.filter(|p| !p.is_empty());
        Ok(match (shared, own.is_empty()) {
            (None, true) => None,
            (None, false) => Some(recipes::builtin().overlaid(&own)),
            (Some(p), _) => Some(
                recipes::builtin()
                    .overlaid(&p.for_module(module))
                    .overlaid(&own),
            ),
        })
    }

    /// Import lines for the project recipes the generated `functions` use.
    fn shared_imports(
        &self,
        functions: &[emit::FunctionText],
        scope: &resolve::ModuleScope,
    ) -> Result<Vec<String>, Diagnostic> {
        match self.project_recipes.filter(|p| !p.is_empty()) {
            Some(p) => p.import_lines(&emit::all_text(functions), scope, self.path),
            None => Ok(Vec::new()),
        }
    }

    /// The text names resolve in: the module, then its context.
    fn resolution_text(&self) -> std::borrow::Cow<'_, str> {
        match self.context_source {
            Some(context) => format!("{}\n\n{context}", self.module_source).into(),
            None => self.module_source.into(),
        }
    }

    /// The scope of `module` (parsed from `resolution_text`), where the module's own
    /// definitions win over its context's.
    fn scope(
        &self,
        module: &ruff_python_ast::ModModule,
        location: Option<(&str, bool)>,
    ) -> resolve::ModuleScope {
        let mut scope = resolve::ModuleScope::new_in(module, location);
        if self.context_source.is_some() {
            let own = own_statements(module, self.module_source.len());
            scope.prefer(&resolve::ModuleScope::from_body(
                &module.body[..own],
                location,
            ));
        }
        scope
    }
}

/// How many of the leading statements of `module` come from its first `len` bytes.
fn own_statements(module: &ruff_python_ast::ModModule, len: usize) -> usize {
    use ruff_text_size::Ranged;
    module
        .body
        .iter()
        .take_while(|s| s.start().to_usize() < len)
        .count()
}

/// The generated derivative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Python source: imports, then the derivative function(s).
    pub source: String,
    /// Name of the function to call (`d<function>` in joint motion).
    pub entry: String,
}

/// Generates the derivative of `request.function`.
pub fn generate(request: &Request<'_>, options: &Options) -> Result<Generated, Diagnostic> {
    generate_with_project(request, options, None)
}

/// [`generate`] for a function of a module of a project (`module_name`, dotted; project
/// modules are read from `roots`): calls into other modules of the project are
/// differentiated too, their derivatives imported from their gradient modules (which the
/// import hook provides).
pub fn generate_in_project(
    request: &Request<'_>,
    options: &Options,
    module_name: &str,
    roots: &[std::path::PathBuf],
) -> Result<Generated, Diagnostic> {
    let project = ProjectModule::load(request.module_source, request.path, module_name, roots);
    generate_with_project(request, options, Some(&project))
}

fn generate_with_project(
    request: &Request<'_>,
    options: &Options,
    project: Option<&ProjectModule>,
) -> Result<Generated, Diagnostic> {
    let text = request.resolution_text();
    let module_file = parse::SourceFile {
        text: &text,
        path: request.path,
        line_offset: 0,
        lines_read: None,
    };
    let module = parse::parse(&module_file)?;
    let (scope, merged) = request.resolution(module.syntax(), module_file, project)?;
    let mut driver = request.driver(
        module.syntax(),
        module_file,
        scope,
        &merged,
        options.optimized,
    );
    driver.project = project;
    // A generated derivative differentiated again (it runs among `context_source`): a
    // parameter it uses only for shapes or conditions has a zero derivative, not none.
    driver.check_wrt_use = request.context_source.is_none();
    let nested = parse_function_source(request)?;
    let (def, file) = target_function(request, module.syntax(), module_file, &nested)?;
    let note = definition_note(request, module.syntax(), &text, def);
    let entry = driver.function_name(&format!("d{}", request.function.replace('.', "_")));
    let spec = derive::Spec {
        name: entry.clone(),
        wrt: &options.wrt,
        seed: if options.seed_required {
            derive::SeedStyle::Leading
        } else {
            derive::SeedStyle::DefaultOne
        },
        preserve_result: options.preserve_result,
        motion: options.motion,
        halves: None,
        updates: &[],
    };
    driver.derive(def, file, &spec)?;
    let shared = request.shared_imports(&driver.functions, &driver.scope)?;
    let imports: Vec<&str> = shared
        .iter()
        .chain(driver.imports.iter())
        .map(String::as_str)
        .collect();
    let source = module_text(request, "", note.as_deref(), &imports, &driver.functions)?;
    Ok(Generated { source, entry })
}

/// Forward mode: the source of `jvp_<f>(<f's params>, d<p>...)`, the directional derivative
/// of `request.function` along tangents of the `options.wrt` parameters (`motion` and
/// `seed_required` do not apply).
pub fn generate_forward(request: &Request<'_>, options: &Options) -> Result<Generated, Diagnostic> {
    forward_mode(request, options, true)
}

/// [`generate_forward`]; `check_wrt_use`: report a `wrt` parameter with no differentiable use
/// (off for the gradient an HVP differentiates, as for any generated derivative differentiated
/// again: the user's function was checked, and a gradient that uses `x` only for shapes or
/// conditions has a zero derivative).
fn forward_mode(
    request: &Request<'_>,
    options: &Options,
    check_wrt_use: bool,
) -> Result<Generated, Diagnostic> {
    let text = request.resolution_text();
    let module_file = parse::SourceFile {
        text: &text,
        path: request.path,
        line_offset: 0,
        lines_read: None,
    };
    let module = parse::parse(&module_file)?;
    let (scope, merged) = request.resolution(module.syntax(), module_file, None)?;
    let mut driver = request.driver(
        module.syntax(),
        module_file,
        scope,
        &merged,
        options.optimized,
    );
    let nested = parse_function_source(request)?;
    let (def, file) = target_function(request, module.syntax(), module_file, &nested)?;
    let note = definition_note(request, module.syntax(), &text, def);
    let entry = driver.function_name(&format!("jvp_{}", request.function.replace('.', "_")));
    let spec = derive::Spec {
        name: entry.clone(),
        wrt: &options.wrt,
        seed: derive::SeedStyle::Leading,
        preserve_result: options.preserve_result,
        motion: Motion::Joint,
        halves: None,
        updates: &[],
    };
    driver.in_progress_push(request.function);
    driver.check_wrt_use = check_wrt_use && request.context_source.is_none();
    driver.derive_forward(def, file, &spec)?;
    let shared = request.shared_imports(&driver.functions, &driver.scope)?;
    let imports: Vec<&str> = shared.iter().map(String::as_str).collect();
    let source = module_text(
        request,
        " (forward mode)",
        note.as_deref(),
        &imports,
        &driver.functions,
    )?;
    Ok(Generated { source, entry })
}

/// The function's own source when it is not at the module's top level (see `Request`).
fn parse_function_source<'a>(
    request: &Request<'a>,
) -> Result<Option<(parse::ParsedModule, parse::SourceFile<'a>)>, Diagnostic> {
    let Some(text) = request.function_source else {
        return Ok(None);
    };
    let file = parse::SourceFile {
        text,
        path: request.path,
        line_offset: request.function_first_line.saturating_sub(1),
        lines_read: None,
    };
    Ok(Some((parse::parse(&file)?, file)))
}

/// The definition to differentiate, and the text it was parsed from.
fn target_function<'m>(
    request: &Request<'_>,
    module: &'m ruff_python_ast::ModModule,
    module_file: parse::SourceFile<'m>,
    nested: &'m Option<(parse::ParsedModule, parse::SourceFile<'m>)>,
) -> Result<(&'m ruff_python_ast::StmtFunctionDef, parse::SourceFile<'m>), Diagnostic> {
    let found = match nested {
        Some((parsed, file)) => {
            parse::find_function(parsed.syntax(), request.function).map(|d| (d, *file))
        }
        None => {
            // The module's own definition, not its context's.
            let own = &module.body[..own_statements(module, request.module_source.len())];
            match request.definition_line {
                Some(line) => {
                    match parse::find_function_at(own, module_file.text, request.function, line) {
                        Some(def) => Some((def, module_file)),
                        None => return Err(moved_definition(request, own, module_file.text, line)),
                    }
                }
                None => parse::find_function_in(own, request.function).map(|d| (d, module_file)),
            }
        }
    };
    found.ok_or_else(|| match nested {
        Some((parsed, file)) => {
            parse::function_not_found(file, &parsed.syntax().body, request.function)
        }
        None => {
            let own = &module.body[..own_statements(module, request.module_source.len())];
            parse::function_not_found(&module_file, own, request.function)
        }
    })
}

/// No definition of `request.function` starts on `line` (`Request::definition_line`): the
/// module's text is not the one the function was made from. Points at `line`.
fn moved_definition(
    request: &Request<'_>,
    own: &[ruff_python_ast::Stmt],
    text: &str,
    line: usize,
) -> Diagnostic {
    use ruff_text_size::Ranged;
    let function = request.function;
    let lines: Vec<usize> = parse::definitions_in(own, function)
        .iter()
        .map(|d| parse::line_of(text, d.start().to_usize()))
        .collect();
    let now = match lines.as_slice() {
        [] => format!("the module defines no `{function}` at its top level now"),
        [one] => format!("`{function}` is defined at line {one} now"),
        more => format!(
            "`{function}` is defined at lines {} now",
            more.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let message = format!(
        "the source of `{function}` changed since it was loaded: it started at line {line}, where no definition of `{function}` starts any more ({now})"
    );
    let mut d = Diagnostic::without_span(DiagnosticKind::FunctionNotFound, message, request.path);
    // The line as it reads now, if the file still has it.
    if let Some(source_line) = text.lines().nth(line.saturating_sub(1)) {
        d.line = line;
        d.column = 1;
        d.source_line = source_line.trim_end_matches('\r').to_string();
    }
    d.with_help(format!(
        "Tangent differentiates the definition the function object was made from, read from its file; reload the module (or run the cell again) so that `{function}` is made from the current source, then differentiate it"
    ))
}

/// The file name of `path`, as generated code names it (never the directories).
fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// When the module defines `request.function` more than once at its top level: which of its
/// definitions `def` (the one differentiated) is, for the generated module's header.
fn definition_note(
    request: &Request<'_>,
    module: &ruff_python_ast::ModModule,
    text: &str,
    def: &ruff_python_ast::StmtFunctionDef,
) -> Option<String> {
    use ruff_text_size::Ranged;
    if request.function_source.is_some() {
        return None;
    }
    let own = &module.body[..own_statements(module, request.module_source.len())];
    let lines: Vec<usize> = parse::definitions_in(own, request.function)
        .iter()
        .map(|d| parse::line_of(text, d.start().to_usize()))
        .collect();
    if lines.len() < 2 {
        return None;
    }
    let file = file_name(request.path);
    let at = parse::line_of(text, def.start().to_usize());
    Some(format!(
        "`{}` is defined more than once in {file} (lines {}): this differentiates the definition at {file}:{at}.",
        request.function,
        lines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The generated module: a header naming the engine and the function, `import numpy`,
/// `import tangent` (and `import math` when a recipe of the math module is used), `extra`
/// import lines, then the functions.
fn module_text(
    request: &Request<'_>,
    kind: &str,
    note: Option<&str>,
    extra: &[&str],
    functions: &[emit::FunctionText],
) -> Result<String, Diagnostic> {
    let file_name = file_name(request.path);
    let mut header = format!(
        "Generated by Tangent {} from {}:{}{kind}. Regenerate rather than edit.",
        env!("CARGO_PKG_VERSION"),
        file_name,
        request.function
    );
    if let Some(note) = note {
        header.push('\n');
        header.push_str(note);
    }
    let mut imports: Vec<&str> = Vec::new();
    if emit::mentions_module(functions, "math") {
        imports.push("import math");
    }
    imports.extend(["import numpy", "import tangent"]);
    imports.extend(extra);
    emit::module(&header, &imports, functions)
}

/// Hessian-vector products, forward over reverse: the gradient of `request.function` is
/// generated, then differentiated in forward mode. Returns a module with the gradient, its
/// forward derivative and `hvp_<f>(<f's params>, v<p>...)`, which returns H·v (a tuple of
/// blocks for several `wrt` parameters).
pub fn generate_hvp(request: &Request<'_>, options: &Options) -> Result<Generated, Diagnostic> {
    let reverse_options = Options {
        wrt: options.wrt.clone(),
        optimized: options.optimized,
        preserve_result: false,
        motion: Motion::Joint,
        seed_required: false,
    };
    let gradient = generate(request, &reverse_options)?;
    // The gradient is differentiated in the user's module, so its names (imports, helpers)
    // resolve as they do for the gradient itself.
    let combined = format!("{}\n\n{}", request.resolution_text(), gradient.source);
    let forward_request = Request {
        module_source: &combined,
        path: request.path,
        function: &gradient.entry,
        function_source: None,
        function_first_line: 1,
        definition_line: None,
        context_source: None,
        project_recipes: request.project_recipes,
        object_classes: request.object_classes,
    };
    let forward = forward_mode(&forward_request, &Options { preserve_result: false, ..options.clone() }, false).map_err(|mut d| {
        // A place in the generated gradient (after the module's own lines) is named as such,
        // with its line in the gradient's source, never as a line of the user's file.
        let module_lines = combined[..combined.len() - gradient.source.len()].matches('\n').count();
        if d.line > module_lines {
            d.line -= module_lines;
            d.path = format!("gradient `{}` of {}", gradient.entry, request.path);
            d.message = format!(
                "{} (in the generated gradient of `{}`, which a Hessian-vector product differentiates again; `tangent grad` prints it)",
                d.message, request.function
            );
        }
        d
    })?;
    let module_file = parse::SourceFile {
        text: request.module_source,
        path: request.path,
        line_offset: 0,
        lines_read: None,
    };
    let module = parse::parse(&module_file)?;
    let nested = parse_function_source(request)?;
    let (def, def_file) = target_function(request, module.syntax(), module_file, &nested)?;
    let params = parse::param_names(def);
    let vectors: Vec<String> = options
        .wrt
        .iter()
        .map(|&i| format!("v{}", params.get(i).map(String::as_str).unwrap_or("x")))
        .collect();
    let (declared, passed) = hvp_parameters(def, def_file.text, &vectors);
    let entry = format!("hvp_{}", request.function.replace('.', "_"));
    let forward_functions = forward
        .source
        .split_once("\n\n\n")
        .map_or(forward.source.as_str(), |(_, rest)| rest);
    let source = format!(
        "{}\n\n\n{}\n\n\ndef {entry}({}):\n    \"Hessian-vector product of `{}`: the forward derivative of its gradient along {}.\"\n    return {}({})\n",
        gradient.source.trim_end(),
        forward_functions.trim_end(),
        declared,
        request.function,
        vectors
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", "),
        forward.entry,
        passed,
    );
    Ok(Generated { source, entry })
}

/// `hvp_<f>`'s parameter list and the arguments it passes to the gradient's forward
/// derivative: `f`'s parameters with their defaults, the vectors right after those without
/// one (as the forward derivative takes its tangents), the gradient's seed left at 1.0.
fn hvp_parameters(
    def: &ruff_python_ast::StmtFunctionDef,
    text: &str,
    vectors: &[String],
) -> (String, String) {
    use ruff_text_size::Ranged;
    let p = &def.parameters;
    let default_of =
        |d: &Option<Box<ruff_python_ast::Expr>>| d.as_ref().map(|d| text[d.range()].to_string());
    let (mut declared, mut passed) = (Vec::new(), Vec::new());
    let positional: Vec<_> = p.posonlyargs.iter().chain(p.args.iter()).collect();
    let required = positional
        .iter()
        .take_while(|a| a.default.is_none())
        .count();
    for a in &positional[..required] {
        declared.push(a.parameter.name.to_string());
        passed.push(a.parameter.name.to_string());
    }
    declared.extend(vectors.iter().cloned());
    passed.extend(vectors.iter().cloned());
    for a in &positional[required..] {
        let name = a.parameter.name.as_str();
        match default_of(&a.default) {
            Some(d) => declared.push(format!("{name}={d}")),
            None => declared.push(name.to_string()),
        }
        passed.push(format!("{name}={name}"));
    }
    if !p.kwonlyargs.is_empty() {
        declared.push("*".into());
    }
    for a in &p.kwonlyargs {
        let name = a.parameter.name.as_str();
        match default_of(&a.default) {
            Some(d) => declared.push(format!("{name}={d}")),
            None => declared.push(name.to_string()),
        }
        passed.push(format!("{name}={name}"));
    }
    (declared.join(", "), passed.join(", "))
}

/// What Tangent knows about one function (`tangent recipes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeInfo {
    /// Canonical dotted name (`numpy.sin`), or a bare name for a function of the module.
    pub name: String,
    /// Where its reverse-mode recipe is (`numpy.py:sin`, `model.py:12`), if it has one.
    pub reverse: Option<String>,
    /// Where its forward-mode recipe is, if it has one.
    pub forward: Option<String>,
    /// Known to have a zero derivative (`numpy.shape`, `numpy.floor`, ...).
    pub nondifferentiable: bool,
    /// Written by the user (`@tangent.adjoint(f)` in the module).
    pub user: bool,
}

/// Every function with a recipe or known to have no derivative: the built-in recipes, the
/// project's shared ones on top, then the recipes of `module` (`(source, path)`) when given.
/// Sorted by name.
pub fn recipe_listing(
    module: Option<(&str, &str)>,
    shared: Option<&recipes::ProjectRecipes>,
) -> Result<Vec<RecipeInfo>, Diagnostic> {
    let user = match module {
        Some((text, path)) => {
            let file = parse::SourceFile {
                text,
                path,
                line_offset: 0,
                lines_read: None,
            };
            let parsed = parse::parse(&file)?;
            let scope = resolve::ModuleScope::new(parsed.syntax());
            recipes::user_recipes(&parsed.syntax().body, file, &scope)?
        }
        None => recipes::RecipeSet::default(),
    };
    let base = match shared {
        Some(p) => recipes::builtin().overlaid(&p.set),
        None => recipes::builtin().clone(),
    };
    let set = base.overlaid(&user);
    let mut names: std::collections::BTreeSet<&String> =
        set.adjoints.keys().chain(set.tangents.keys()).collect();
    names.extend(set.nondifferentiable.iter());
    Ok(names
        .into_iter()
        .map(|name| {
            let reverse = set.adjoints.get(name);
            let forward = set.tangents.get(name);
            RecipeInfo {
                name: name.clone(),
                reverse: reverse.map(|r| r.origin.clone()),
                forward: forward.map(|r| r.origin.clone()),
                nondifferentiable: set.nondifferentiable.contains(name),
                user: reverse.or(forward).is_some_and(|r| r.user),
            }
        })
        .collect())
}

/// Positions of named parameters of `function` in `module_source`, for `--wrt NAME,...`.
pub fn parameter_positions(
    module_source: &str,
    path: &str,
    function: &str,
    names: &[String],
) -> Result<Vec<usize>, Diagnostic> {
    parameter_positions_at(module_source, path, function, None, names)
}

/// [`parameter_positions`] of the definition of `function` starting at `line` (see
/// `Request::definition_line`; `None`: the one the name is bound to).
pub fn parameter_positions_at(
    module_source: &str,
    path: &str,
    function: &str,
    line: Option<usize>,
    names: &[String],
) -> Result<Vec<usize>, Diagnostic> {
    let file = parse::SourceFile {
        text: module_source,
        path,
        line_offset: 0,
        lines_read: None,
    };
    let module = parse::parse(&file)?;
    let request = Request {
        module_source,
        path,
        function,
        function_source: None,
        function_first_line: 1,
        definition_line: line,
        context_source: None,
        project_recipes: None,
        object_classes: &[],
    };
    let (def, _) = target_function(&request, module.syntax(), file, &None)?;
    let params = parse::param_names(def);
    names
        .iter()
        .map(|n| {
            // A name, or a position (`--wrt 1`, 0-based as in `tangent.grad(f, wrt=(1,))`).
            let position = n.parse::<usize>().ok().filter(|&i| i < params.len());
            params
                .iter()
                .position(|p| p == n)
                .or(position)
                .ok_or_else(|| {
                    Diagnostic::without_span(
                        DiagnosticKind::InvalidWrt,
                        format!(
                            "`{function}` has no parameter named `{n}` (parameters: {})",
                            params.join(", ")
                        ),
                        path,
                    )
                })
        })
        .collect()
}

/// Does `source` use `module.` as a qualified name (not as part of a longer name)?
pub fn mentions_module(source: &str, module: &str) -> bool {
    let pattern = format!("{module}.");
    source.match_indices(&pattern).any(|(i, _)| {
        source[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'))
    })
}

/// The gradient module of a whole source module: `d<f>` (w.r.t. the first parameter, as
/// `tangent.grad(f)`) for every top-level function that can be differentiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradModule {
    /// Python source; its header names the engine version and the source hash.
    pub source: String,
    /// blake3 of the module source, hex.
    pub source_hash: String,
    /// `(function, generated name)` for each function that was differentiated.
    pub generated: Vec<(String, String)>,
    /// Functions that could not be differentiated, with the reason.
    pub skipped: Vec<(String, Diagnostic)>,
}

impl From<db::GradModuleArtifact> for GradModule {
    fn from(out: db::GradModuleArtifact) -> Self {
        GradModule {
            source: out.source,
            source_hash: out.source_hash,
            generated: out.generated,
            skipped: out.skipped,
        }
    }
}

/// The first line of every generated module carries this marker, then the source hash.
pub const SOURCE_HASH_MARKER: &str = "tangent-source-hash: ";

/// blake3 of a source text, as lowercase hex.
pub fn source_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// Generates the gradient module of `module_source` (see [`GradModule`]). Only a syntax error
/// fails the whole module.
pub fn grad_module(
    module_source: &str,
    path: &str,
    optimized: bool,
) -> Result<GradModule, Diagnostic> {
    // The same queries as the incremental database, run once: one implementation, so a
    // module built in one shot is byte-identical to one regenerated under `watch`.
    let database = db::Database::default();
    let file = db::SourceFile::new(
        &database,
        path.to_string(),
        String::new(),
        module_source.to_string(),
    );
    let out = db::grad_module(&database, file, optimized)?;
    Ok(out.into())
}

/// Like [`grad_module`], for a module of a project: `module_name` is its dotted name and the
/// project modules it imports (directly or not) are read from the directories `roots`, so
/// calls into them resolve (`from .layers import dense`). Files are read, never executed.
pub fn grad_module_in_project(
    module_source: &str,
    path: &str,
    module_name: &str,
    roots: &[std::path::PathBuf],
    optimized: bool,
) -> Result<GradModule, Diagnostic> {
    grad_module_in_project_cached(module_source, path, module_name, roots, optimized, None)
}

/// [`grad_module_in_project`] through an artifact store: each function's derivative is looked
/// up by its artifact key first, so only functions whose key changed are generated.
pub fn grad_module_in_project_cached(
    module_source: &str,
    path: &str,
    module_name: &str,
    roots: &[std::path::PathBuf],
    optimized: bool,
    store: Option<std::sync::Arc<store::Store>>,
) -> Result<GradModule, Diagnostic> {
    let (mut database, file) = project_database(module_source, path, module_name, roots);
    database.set_store(store);
    let out = db::grad_module(&database, file, optimized)?;
    Ok(out.into())
}

/// The derivative of `function` w.r.t. parameter positions `wrt` (as `tangent.grad` gives it,
/// named `d<f>` or `d<f>_d<p>...`) in a module of its own, for a module of a project (see
/// [`grad_module_in_project`]). Errors if it cannot be differentiated.
pub fn derivative_in_project(
    module_source: &str,
    path: &str,
    module_name: &str,
    roots: &[std::path::PathBuf],
    function: &str,
    wrt: &[usize],
    optimized: bool,
) -> Result<GradModule, Diagnostic> {
    ProjectModule::load(module_source, path, module_name, roots)
        .derivative(function, wrt, optimized)
}

/// The project modules `module_source` imports, directly or not, with the blake3 hash of each
/// one's source: what a cached gradient module of it must be keyed on besides its own text.
pub fn project_dependencies(
    module_source: &str,
    path: &str,
    module_name: &str,
    roots: &[std::path::PathBuf],
) -> Vec<(String, String)> {
    ProjectModule::load(module_source, path, module_name, roots).dependencies()
}

/// Where a source file sits in its project: its dotted module name and the directory its
/// top-level package is in (the parent directories that are packages, `__init__.py`, count).
pub fn module_location(path: &std::path::Path) -> (String, std::path::PathBuf) {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut parts: Vec<String> = if stem == "__init__" {
        Vec::new()
    } else {
        vec![stem]
    };
    let mut dir = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    while dir.join("__init__.py").is_file() {
        let Some(name) = dir.file_name() else { break };
        parts.insert(0, name.to_string_lossy().to_string());
        match dir.parent() {
            Some(parent) => dir = parent.to_path_buf(),
            None => break,
        }
    }
    (parts.join("."), dir)
}

/// A database holding the module and every project module it imports, directly or not.
fn project_database(
    module_source: &str,
    path: &str,
    module_name: &str,
    roots: &[std::path::PathBuf],
) -> (db::Database, db::SourceFile) {
    let mut database = db::Database::default();
    let file = db::SourceFile::new(
        &database,
        path.to_string(),
        module_name.to_string(),
        module_source.to_string(),
    );
    let mut modules = std::collections::BTreeMap::new();
    modules.insert(module_name.to_string(), file);
    let mut queue = vec![file];
    while let Some(current) = queue.pop() {
        let Ok(index) = db::parse(&database, current) else {
            continue;
        };
        let wanted: Vec<String> = index
            .scope
            .imports
            .values()
            .flat_map(|c| module_prefixes(c))
            .collect();
        for module in wanted {
            if modules.contains_key(&module) {
                continue;
            }
            let Some((found_path, text)) = find_module_source(roots, &module) else {
                continue;
            };
            let source = db::SourceFile::new(&database, found_path, module.clone(), text);
            modules.insert(module, source);
            queue.push(source);
        }
    }
    let project = db::Project::new(&database, modules);
    database.set_project(project);
    (database, file)
}

/// `a.b.c` -> `a.b.c`, `a.b`, `a`: the modules a dotted import may name.
fn module_prefixes(dotted: &str) -> Vec<String> {
    let parts: Vec<&str> = dotted.split('.').collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("."))
        .collect()
}

/// `<root>/a/b.py` or `<root>/a/b/__init__.py` for module `a.b`, read as UTF-8.
fn find_module_source(roots: &[std::path::PathBuf], module: &str) -> Option<(String, String)> {
    let relative: std::path::PathBuf = module.split('.').collect();
    for root in roots {
        for candidate in [
            root.join(&relative).with_extension("py"),
            root.join(&relative).join("__init__.py"),
        ] {
            if let Ok(text) = std::fs::read_to_string(&candidate) {
                return Some((candidate.display().to_string(), text));
            }
        }
    }
    None
}

/// One module of a project, loaded with the project modules it imports: ask for its
/// dependencies (for cache keys) and then, if needed, its gradient module, parsing once.
pub struct ProjectModule {
    database: db::Database,
    file: db::SourceFile,
    module_name: String,
}

impl ProjectModule {
    pub fn load(
        module_source: &str,
        path: &str,
        module_name: &str,
        roots: &[std::path::PathBuf],
    ) -> Self {
        let (database, file) = project_database(module_source, path, module_name, roots);
        ProjectModule {
            database,
            file,
            module_name: module_name.to_string(),
        }
    }

    /// The project modules it imports, directly or not, with the blake3 hash of each source.
    pub fn dependencies(&self) -> Vec<(String, String)> {
        let Some(project) = db::Db::project(&self.database) else {
            return Vec::new();
        };
        project
            .modules(&self.database)
            .iter()
            .filter(|(name, _)| **name != self.module_name)
            .map(|(name, file)| (name.clone(), source_hash(file.text(&self.database))))
            .collect()
    }

    /// The names the module defines more than once at its top level (`def`, `class`): its
    /// gradient module differentiates the last definition of each, which the name is bound
    /// to. Empty when it does not parse.
    pub fn redefinitions(&self) -> Vec<db::Redefinition> {
        db::parse(&self.database, self.file)
            .as_ref()
            .map(|index| index.redefined.clone())
            .unwrap_or_default()
    }

    /// Parameters (and those modified in place) of a function of another project module,
    /// by dotted name (`pkg.layers.dense`).
    pub fn external_signature(&self, dotted: &str) -> Option<(Vec<String>, Vec<String>)> {
        let id = db::project_function(&self.database, dotted)?;
        db::function_signature(&self.database, id)
    }

    /// How this module's generated code calls the derivative of `dotted` w.r.t. `wrt`:
    /// `(local name, seed parameter, import line)`.
    pub fn external_derivative(
        &self,
        dotted: &str,
        wrt: &[usize],
    ) -> Result<(String, String, String), Diagnostic> {
        let missing = || {
            Diagnostic::without_span(
                DiagnosticKind::NoRecipe,
                format!("no source for `{dotted}`"),
                "<project>",
            )
        };
        let id = db::project_function(&self.database, dotted).ok_or_else(missing)?;
        let params = db::function_params(&self.database, id)
            .clone()
            .ok_or_else(missing)?;
        let callee_file = id.file(&self.database);
        let name = id.name(&self.database).clone();
        let dname = db::derivative_name(
            &name,
            &params,
            wrt,
            db::reserved_names(&self.database, callee_file),
        );
        let module = callee_file.module(&self.database).clone();
        let alias = db::import_alias(&self.database, self.file, &module, &name, &dname);
        let seed = db::seed_name(&self.database, id).clone()?;
        let req = db::Requirement {
            file: callee_file,
            function: name,
            wrt: wrt.to_vec(),
            halves: false,
            updates: Vec::new(),
        };
        Ok((
            alias,
            seed,
            db::import_line(&self.database, self.file, &req),
        ))
    }

    /// Applies the project's shared recipes (`[tool.tangent] recipes`).
    pub fn with_recipes(
        mut self,
        recipes: Option<std::sync::Arc<recipes::ProjectRecipes>>,
    ) -> Self {
        self.database.set_project_recipes(recipes);
        self
    }

    /// The derivative of `function` w.r.t. `wrt` in a module of its own (see
    /// [`derivative_in_project`]).
    pub fn derivative(
        &self,
        function: &str,
        wrt: &[usize],
        optimized: bool,
    ) -> Result<GradModule, Diagnostic> {
        let out = db::derivative_module(
            &self.database,
            self.file,
            &[(function.to_string(), wrt.to_vec())],
            optimized,
        )?;
        if let Some((_, d)) = out.skipped.into_iter().next() {
            return Err(d);
        }
        Ok(GradModule {
            source: out.source,
            source_hash: out.source_hash,
            generated: out.generated,
            skipped: Vec::new(),
        })
    }

    /// Its gradient module, through `store` when given (see [`grad_module_in_project_cached`]).
    pub fn grad_module(
        mut self,
        optimized: bool,
        store: Option<std::sync::Arc<store::Store>>,
    ) -> Result<GradModule, Diagnostic> {
        self.database.set_store(store);
        let out = db::grad_module(&self.database, self.file, optimized)?;
        Ok(out.into())
    }
}
