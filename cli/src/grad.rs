//! `tangent grad FILE.py:FUNC`: prints the source of FUNC's derivative on stdout.
//! Exit codes: 0 success, 1 a diagnostic (every problem with the file, from "cannot read it"
//! to "cannot differentiate it", has a code: see docs/errors.md), 2 usage or configuration error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use tangent::{Diagnostic, DiagnosticKind, Motion, Options, Request};

#[derive(clap::Args)]
pub struct GradArgs {
    /// The function to differentiate, as FILE.py:FUNC.
    #[arg(value_name = "FILE.py:FUNC", value_parser = parse_target)]
    target: Target,
    /// Parameters to differentiate with respect to, by name or 0-based position (default: the first parameter).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    wrt: Vec<String>,
    /// Skip the optimization passes (dead code, constant folding, assignment propagation).
    #[arg(long)]
    no_optimize: bool,
    /// Joint: one function; split: separate forward and backward functions.
    #[arg(long, value_enum, default_value_t = MotionArg::Joint)]
    motion: MotionArg,
    /// Return `(gradient, value)` instead of the gradient alone.
    #[arg(long)]
    preserve_result: bool,
    /// Reverse mode (gradients, VJPs), forward mode (JVPs: the function takes one tangent per
    /// `--wrt` parameter after its own arguments) or hvp (Hessian-vector products, forward
    /// over reverse: the gradient, its forward derivative and `hvp_<f>`).
    #[arg(long, value_enum, default_value_t = ModeArg::Reverse)]
    mode: ModeArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Reverse,
    Forward,
    Hvp,
}

#[derive(Clone, Debug)]
struct Target {
    file: PathBuf,
    function: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum MotionArg {
    Joint,
    Split,
}

fn parse_target(s: &str) -> Result<Target, String> {
    match s.rsplit_once(':') {
        Some((file, function)) if !file.is_empty() && !function.is_empty() => Ok(Target {
            file: PathBuf::from(file),
            function: function.to_string(),
        }),
        _ => Err(format!("expected FILE.py:FUNC, got `{s}`")),
    }
}

/// Why `grad` failed; each maps to an exit code.
enum Failure {
    /// A configuration we could not use (exit 2).
    Input(String),
    /// A diagnostic about the file: unreadable, not text, too large, or the engine's (exit 1).
    Engine(Box<Diagnostic>),
    /// A problem with the project's recipe files, rendered (exit 1).
    Recipes(String),
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Failure::Engine(Box::new(d))
    }
}

pub fn run(args: &GradArgs) -> ExitCode {
    // The engine recurses once per level of nesting: give it the stack its limits assume.
    match tangent::parse::with_stack(|| grad(args)) {
        Ok(source) => {
            let mut out = std::io::stdout().lock();
            let newline = if source.ends_with('\n') { "" } else { "\n" };
            // A closed pipe (`tangent grad ... | head`) is not an error worth reporting.
            let _ = write!(out, "{source}{newline}").and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(Failure::Engine(diagnostic)) => {
            eprint!("{}", diagnostic.render());
            ExitCode::from(1)
        }
        Err(Failure::Recipes(rendered)) => {
            eprint!("{rendered}");
            ExitCode::from(1)
        }
        Err(Failure::Input(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn grad(args: &GradArgs) -> Result<String, Failure> {
    let file = &args.target.file;
    let shown = file.display().to_string();
    let source = source_text(file, &shown)?;
    let function = args.target.function.as_str();
    let wrt = if args.wrt.is_empty() {
        vec![0]
    } else {
        tangent::parameter_positions(&source, &shown, function, &args.wrt)?
    };
    let options = Options {
        wrt,
        optimized: !args.no_optimize,
        preserve_result: args.preserve_result,
        motion: match args.motion {
            MotionArg::Joint => Motion::Joint,
            MotionArg::Split => Motion::Split,
        },
        seed_required: false,
    };
    // The project's shared recipes (`[tool.tangent] recipes` of the nearest pyproject.toml).
    let config = crate::config::load(&crate::config::start_dir(std::slice::from_ref(file)))
        .map_err(Failure::Input)?;
    let shared = crate::project::load_recipes(&config.recipes).map_err(Failure::Recipes)?;
    let request = Request {
        module_source: &source,
        path: &shown,
        function,
        function_source: None,
        function_first_line: 1,
        definition_line: None,
        context_source: None,
        project_recipes: shared.as_deref(),
        object_classes: &[],
    };
    let generated = match args.mode {
        ModeArg::Reverse => tangent::generate(&request, &options)?,
        ModeArg::Forward => tangent::generate_forward(&request, &options)?,
        ModeArg::Hvp => tangent::generate_hvp(&request, &options)?,
    };
    Ok(generated.source)
}

/// The text of a source file, or the diagnostic (T010 unreadable, T008 not UTF-8 text, T009
/// too large) that says why not.
pub(crate) fn source_text(file: &std::path::Path, shown: &str) -> Result<String, Diagnostic> {
    tangent::parse::decode(read(file, shown)?, shown)
}

/// The bytes of the source file: at most the engine's size limit is read.
fn read(file: &std::path::Path, shown: &str) -> Result<Vec<u8>, Diagnostic> {
    use std::io::Read;
    let io = |e: std::io::Error| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::IsADirectory => "it is a directory".to_string(),
            _ => e.to_string(),
        };
        Diagnostic::without_span(
            DiagnosticKind::Io,
            format!("cannot read `{shown}`: {reason}"),
            shown,
        )
    };
    let mut bytes = Vec::new();
    let limit = tangent::parse::MAX_SOURCE_BYTES as u64 + 1;
    let f = std::fs::File::open(file).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len >= limit {
        return Err(tangent::parse::too_large(len, tangent::parse::MAX_SOURCE_BYTES, shown).into());
    }
    f.take(limit).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}
