//! `tangent check`: what `build` would write, compared with what is on disk. Never writes
//! artifacts (the cache is used and filled as usual).

use std::process::ExitCode;

use crate::build::{self, ArtifactState, Mode};
use crate::logging::Verbosity;
use crate::project::{Project, ProjectArgs};
use crate::walk;

pub fn run(args: &ProjectArgs, verbosity: Verbosity) -> ExitCode {
    let project = match Project::resolve(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let found = walk::walk(&project.paths, &project.filter);
    let generator = match project.generator() {
        Ok(g) => g,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(1);
        }
    };
    let reports = build::run_all(&project, &generator, &found, Mode::Compare, verbosity);
    let summary = build::report(&reports, &found, verbosity);
    let mut out_of_date = 0;
    let mut current = 0;
    for r in &reports {
        let Ok(done) = &r.outcome else { continue };
        let source = r.source.path.display();
        match done.state {
            ArtifactState::Missing => {
                println!("missing: {} (from {source})", done.artifact.display())
            }
            ArtifactState::Stale => println!("stale: {} (from {source})", done.artifact.display()),
            ArtifactState::Current | ArtifactState::Written => current += 1,
        }
        if !matches!(done.state, ArtifactState::Current | ArtifactState::Written) {
            out_of_date += 1;
        }
        for extra in &done.extra {
            println!("extra: {} (older version of {source})", extra.display());
            out_of_date += 1;
        }
    }
    for orphan in build::orphans(&project.layout, &found) {
        println!("extra: {} (its source is gone)", orphan.display());
        out_of_date += 1;
    }
    if summary.failed > 0 {
        eprintln!("{} failed", summary.failed);
    }
    if out_of_date > 0 {
        println!("{out_of_date} artifacts out of date; run `tangent build`");
        return ExitCode::from(1);
    }
    if summary.failed > 0 {
        return ExitCode::from(1);
    }
    if verbosity != Verbosity::Quiet {
        println!("OK: {current} artifacts up to date");
    }
    ExitCode::SUCCESS
}
