//! Logging through tracing-subscriber, on stderr.
//!
//! `-v` shows debug messages of Tangent itself, `-q` only errors; `RUST_LOG` overrides both.
//! salsa logs every query execution at INFO, so it is held at `warn` unless `RUST_LOG` asks.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How chatty the commands are (also decides the summary line and the progress bar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

pub fn init(verbosity: Verbosity) {
    let default = match verbosity {
        Verbosity::Quiet => "error,sled=off",
        Verbosity::Normal => "warn,salsa=warn,sled=off",
        Verbosity::Verbose => "warn,tangent=debug,salsa=warn,sled=off",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => {
            EnvFilter::try_new(&s).unwrap_or_else(|_| EnvFilter::new(default))
        }
        _ => EnvFilter::new(default),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .try_init();
}
