//! `tangent`: command-line front end of the engine.
//!
//! - `tangent grad FILE.py:FUNC`: the source of one derivative, on stdout.
//! - `tangent build PATH...`: the gradient module of every Python source, as artifact files.
//! - `tangent check PATH...`: are those artifacts up to date?
//! - `tangent watch PATH...`: build, then keep the artifacts up to date as sources change.
//! - `tangent cache stats|clear`: the artifact cache.
//!
//! Exit codes: 0 success, 1 a file failed (or is out of date, for `check`), 2 usage error.
//! Every failure of a file has a stable code (`error[T003 no-recipe]: ...`), listed in
//! docs/errors.md; a bug in Tangent is `T999 internal` (exit 1), never a raw panic message.

mod build;
mod cache;
mod check;
mod config;
mod generate;
mod grad;
mod layout;
mod logging;
mod project;
mod recipes;
mod walk;
mod watch;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use tangent::store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use logging::Verbosity;

#[derive(Parser)]
#[command(
    name = "tangent",
    version,
    about = "Source-to-source automatic differentiation of Python"
)]
struct Cli {
    /// Show debug messages (and, for build, every skipped function).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    verbose: bool,
    /// Print errors only.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the source of a function's gradient.
    Grad(grad::GradArgs),
    /// Write the gradient module of every Python source under the PATHs.
    Build(project::ProjectArgs),
    /// Check that the artifacts `build` would write are on disk and up to date.
    Check(project::ProjectArgs),
    /// Build, then regenerate modules as their sources change (Ctrl-C to stop).
    Watch(project::ProjectArgs),
    /// Inspect or clear the artifact cache.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// List the functions Tangent has recipes for, and the modes each supports.
    Recipes(recipes::RecipesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    logging::init(verbosity);
    report_panics_as_internal_errors();
    let run = || match &cli.command {
        Command::Grad(args) => grad::run(args),
        Command::Build(args) => build::run(args, verbosity),
        Command::Check(args) => check::run(args, verbosity),
        Command::Watch(args) => watch::run(args, verbosity),
        Command::Cache(command) => cache::run(command),
        Command::Recipes(args) => recipes::run(args),
    };
    // A panic is a bug in Tangent: the hook below has reported it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or(ExitCode::from(1))
}

/// Replaces Rust's panic message (`thread 'main' panicked at ...`, `RUST_BACKTRACE`) with a
/// diagnostic of kind `internal` (once per process: a panic in a build thread panics `main`
/// too). `RUST_BACKTRACE=1` still prints Rust's own report, for debugging Tangent.
fn report_panics_as_internal_errors() {
    if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
        return;
    }
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        if REPORTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".to_string());
        let at = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        let kind = tangent::DiagnosticKind::Internal;
        eprintln!(
            "error[{kind}]: internal error in Tangent: {what}{at}\nhelp: {}",
            kind.default_help()
        );
    }));
}
