//! `tangent`: command-line front end of the engine.
//!
//! - `tangent grad FILE.py:FUNC`: the source of one derivative, on stdout.
//! - `tangent build PATH...`: the gradient module of every Python source, as artifact files.
//! - `tangent check PATH...`: are those artifacts up to date?
//! - `tangent watch PATH...`: build, then keep the artifacts up to date as sources change.
//! - `tangent cache stats|clear`: the artifact cache.
//!
//! Exit codes: 0 success, 1 a file failed (or is out of date, for `check`), 2 usage error.

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
    match &cli.command {
        Command::Grad(args) => grad::run(args),
        Command::Build(args) => build::run(args, verbosity),
        Command::Check(args) => check::run(args, verbosity),
        Command::Watch(args) => watch::run(args, verbosity),
        Command::Cache(command) => cache::run(command),
        Command::Recipes(args) => recipes::run(args),
    }
}
