//! `tangent._engine`: the Python binding of the Rust engine.
//!
//! The functions here only convert arguments, release the GIL while the engine runs and turn
//! a `Diagnostic` (or a panic, which must never cross into Python) into `EngineError`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

use tangent::{Diagnostic, DiagnosticKind, Motion, Options, Request};

create_exception!(
    tangent._engine,
    EngineError,
    PyException,
    "An engine diagnostic. args = (kind, message, rendered, path, line, column); attribute \
     `code`: the kind's stable code (`T003`, see docs/errors.md)."
);

/// What a failed engine call carries back to Python.
struct Failure {
    kind: &'static str,
    code: &'static str,
    message: String,
    rendered: String,
    path: String,
    line: usize,
    column: usize,
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Failure {
            kind: d.kind.as_str(),
            code: d.kind.code(),
            rendered: d.render(),
            message: d.message,
            path: d.path,
            line: d.line,
            column: d.column,
        }
    }
}

impl Failure {
    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let code = self.code;
        let err = EngineError::new_err((
            self.kind,
            self.message,
            self.rendered,
            self.path,
            self.line,
            self.column,
        ));
        // `args` stays a 6-tuple (callers unpack it); the code rides along as an attribute.
        if let Err(e) = err.value(py).setattr("code", code) {
            return e;
        }
        err
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs `f` without the GIL, turning a diagnostic or a panic into a `Failure`.
fn run_engine<T, F>(py: Python<'_>, path: &str, f: F) -> PyResult<T>
where
    F: FnOnce() -> Result<T, Diagnostic> + Send,
    T: Send,
{
    // The engine recurses once per level of nesting: it runs on a stack of its own, large
    // enough for its limits whatever the Python thread's stack (see `tangent::parse`).
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(|| tangent::parse::with_stack(f))));
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(diagnostic)) => Err(Failure::from(diagnostic).into_pyerr(py)),
        Err(payload) => {
            let diagnostic = Diagnostic::without_span(
                DiagnosticKind::Internal,
                format!(
                    "internal error in Tangent: {}",
                    panic_message(payload.as_ref())
                ),
                path,
            );
            Err(Failure::from(diagnostic).into_pyerr(py))
        }
    }
}

/// Generates the derivative of `function`; returns `(source, entry_name)`. `definition_line`:
/// the line where the top-level definition to differentiate starts (`co_firstlineno`), which
/// picks one of several definitions of the name (see `tangent::Request::definition_line`).
#[pyfunction]
#[pyo3(signature = (
    module_source,
    path,
    function,
    function_source,
    function_first_line,
    wrt,
    optimized,
    preserve_result,
    motion,
    seed_required,
    module_name=None,
    roots=None,
    context_source=None,
    recipe_files=None,
    definition_line=None,
    object_classes=None,
))]
#[allow(clippy::too_many_arguments)]
fn generate(
    py: Python<'_>,
    module_source: String,
    path: String,
    function: String,
    function_source: Option<String>,
    function_first_line: usize,
    wrt: Vec<usize>,
    optimized: bool,
    preserve_result: bool,
    motion: &str,
    seed_required: bool,
    module_name: Option<String>,
    roots: Option<Vec<String>>,
    context_source: Option<String>,
    recipe_files: Option<Vec<(String, String)>>,
    definition_line: Option<usize>,
    object_classes: Option<Vec<(String, String, String)>>,
) -> PyResult<(String, String)> {
    let object_classes = object_classes.unwrap_or_default();
    // `motion="forward"` asks for forward mode (the Python API's `mode='forward'`).
    let motion_name = motion.to_string();
    let motion = match motion {
        "joint" | "forward" | "hvp" => Motion::Joint,
        "split" => Motion::Split,
        other => {
            return Err(PyValueError::new_err(format!(
                "motion must be 'joint' or 'split', not {other:?}"
            )));
        }
    };
    let options = Options {
        wrt,
        optimized,
        preserve_result,
        motion,
        seed_required,
    };
    let generated = run_engine(py, &path, || {
        let shared = project_recipes(recipe_files.as_deref())?;
        let request = Request {
            module_source: &module_source,
            path: &path,
            function: &function,
            function_source: function_source.as_deref(),
            function_first_line,
            definition_line,
            context_source: context_source.as_deref(),
            project_recipes: shared.as_deref(),
            object_classes: &object_classes,
        };
        if motion_name == "forward" {
            return tangent::generate_forward(&request, &options);
        }
        if motion_name == "hvp" {
            return tangent::generate_hvp(&request, &options);
        }
        match &module_name {
            // Calls into other modules of the project resolve (see `generate_in_project`).
            Some(name) => {
                let roots: Vec<std::path::PathBuf> = roots
                    .iter()
                    .flatten()
                    .map(std::path::PathBuf::from)
                    .collect();
                tangent::generate_in_project(&request, &options, name, &roots)
            }
            None => tangent::generate(&request, &options),
        }
    })?;
    Ok((generated.source, generated.entry))
}

/// Positions of the named parameters of `function` (for `wrt` given by name); `line`: of
/// the definition starting there (as `generate`'s `definition_line`).
#[pyfunction]
#[pyo3(signature = (module_source, path, function, names, line=None))]
fn parameter_positions(
    py: Python<'_>,
    module_source: String,
    path: String,
    function: String,
    names: Vec<String>,
    line: Option<usize>,
) -> PyResult<Vec<usize>> {
    run_engine(py, &path, || {
        tangent::parameter_positions_at(&module_source, &path, &function, line, &names)
    })
}

/// What `grad_module` returns: `(source, source_hash, generated, skipped)`.
type GradModuleResult = (
    String,
    String,
    Vec<(String, String)>,
    Vec<(String, &'static str, String)>,
);

/// Generates the gradient module of a whole source module: `d<f>` (w.r.t. the first
/// parameter) for every top-level function that can be differentiated.
///
/// Returns `(source, source_hash, generated, skipped)`: the module text (its first line is
/// `# tangent-source-hash: <source_hash>`), the blake3 hash of `module_source`,
/// `[(function, generated name)]` and `[(function, diagnostic kind, rendered diagnostic)]` for
/// the functions that could not be differentiated. Only a syntax error raises `EngineError`.
///
/// With `module_name` (dotted) and `roots` (directories), calls into other modules of the
/// project found under `roots` resolve, and their derivatives are imported from their own
/// gradient modules.
#[pyfunction]
#[pyo3(signature = (module_source, path, optimized, module_name=None, roots=None, recipe_files=None))]
fn grad_module(
    py: Python<'_>,
    module_source: String,
    path: String,
    optimized: bool,
    module_name: Option<String>,
    roots: Option<Vec<String>>,
    recipe_files: Option<Vec<(String, String)>>,
) -> PyResult<GradModuleResult> {
    let module = run_engine(py, &path, || {
        let shared = project_recipes(recipe_files.as_deref())?;
        let roots: Vec<std::path::PathBuf> = roots
            .iter()
            .flatten()
            .map(std::path::PathBuf::from)
            .collect();
        match (module_name.as_deref(), shared) {
            (None, None) => tangent::grad_module(&module_source, &path, optimized),
            (name, shared) => {
                tangent::ProjectModule::load(&module_source, &path, name.unwrap_or(""), &roots)
                    .with_recipes(shared)
                    .grad_module(optimized, None)
            }
        }
    })?;
    let skipped = module
        .skipped
        .into_iter()
        .map(|(name, d)| (name, d.kind.as_str(), d.render()))
        .collect();
    Ok((module.source, module.source_hash, module.generated, skipped))
}

/// The derivative of `function` w.r.t. positions `wrt` in a module of its own, resolving calls
/// into other modules of the project found under `roots`. Returns `(source, entry name)`.
#[pyfunction]
#[pyo3(signature = (module_source, path, module_name, roots, function, wrt, optimized, recipe_files=None))]
#[allow(clippy::too_many_arguments)]
fn derivative_in_project(
    py: Python<'_>,
    module_source: String,
    path: String,
    module_name: String,
    roots: Vec<String>,
    function: String,
    wrt: Vec<usize>,
    optimized: bool,
    recipe_files: Option<Vec<(String, String)>>,
) -> PyResult<(String, String)> {
    let module = run_engine(py, &path, || {
        let shared = project_recipes(recipe_files.as_deref())?;
        let roots: Vec<std::path::PathBuf> = roots.iter().map(std::path::PathBuf::from).collect();
        tangent::ProjectModule::load(&module_source, &path, &module_name, &roots)
            .with_recipes(shared)
            .derivative(&function, &wrt, optimized)
    })?;
    let entry = module
        .generated
        .first()
        .map(|g| g.1.clone())
        .unwrap_or_default();
    Ok((module.source, entry))
}

/// The project's shared recipes from their files `(path, text)`, loaded once per distinct set
/// of files in this process.
fn project_recipes(
    files: Option<&[(String, String)]>,
) -> Result<Option<std::sync::Arc<tangent::recipes::ProjectRecipes>>, Diagnostic> {
    use std::sync::{Arc, Mutex, OnceLock};
    let Some(files) = files.filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    static LOADED: OnceLock<
        Mutex<Vec<(Vec<(String, String)>, Arc<tangent::recipes::ProjectRecipes>)>>,
    > = OnceLock::new();
    let loaded = LOADED.get_or_init(Mutex::default);
    if let Some((_, recipes)) = loaded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(f, _)| f.as_slice() == files)
    {
        return Ok(Some(recipes.clone()));
    }
    let recipes = Arc::new(tangent::recipes::ProjectRecipes::load(files)?);
    let mut cache = loaded.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= 8 {
        cache.remove(0);
    }
    cache.push((files.to_vec(), recipes.clone()));
    Ok(Some(recipes))
}

/// Every function with a built-in recipe (or known to have no derivative):
/// `[(name, has_adjoint, has_tangent, nondifferentiable)]`, sorted by name.
#[pyfunction]
fn recipe_names(py: Python<'_>) -> PyResult<Vec<(String, bool, bool, bool)>> {
    let listing = run_engine(py, "<recipes>", || tangent::recipe_listing(None, None))?;
    Ok(listing
        .into_iter()
        .map(|i| {
            (
                i.name,
                i.reverse.is_some(),
                i.forward.is_some(),
                i.nondifferentiable,
            )
        })
        .collect())
}

/// The blake3 hash of a source text, as written in `# tangent-source-hash: ` headers.
#[pyfunction]
fn source_hash(text: &str) -> String {
    tangent::source_hash(text)
}

/// Version of the engine crate.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
#[pyo3(name = "_engine")]
fn engine_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EngineError", m.py().get_type::<EngineError>())?;
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    m.add_function(wrap_pyfunction!(parameter_positions, m)?)?;
    m.add_function(wrap_pyfunction!(grad_module, m)?)?;
    m.add_function(wrap_pyfunction!(derivative_in_project, m)?)?;
    m.add_function(wrap_pyfunction!(recipe_names, m)?)?;
    m.add_function(wrap_pyfunction!(source_hash, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add("SOURCE_HASH_MARKER", tangent::SOURCE_HASH_MARKER)?;
    // The engine's build fingerprint (a hash of its source): two builds with the same version
    // number but different code differ here.
    m.add("ENGINE_FINGERPRINT", tangent::ENGINE_FINGERPRINT)?;
    Ok(())
}
