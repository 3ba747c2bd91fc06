//! `tangent build`: the gradient module of every Python source under the PATHs, written as
//! artifacts (see `layout`). Also the per-file pipeline `check` and `watch` share.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::generate::{FileError, Generator, read_source};
use crate::layout::{self, Layout};
use crate::logging::Verbosity;
use crate::project::{Project, ProjectArgs};
use crate::walk::{self, Found, Source};

/// Set by a Ctrl-C handler (`watch`): a build in progress stops taking new files.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Write artifacts, or only compare them with what would be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Write,
    Compare,
}

/// The artifact on disk, relative to what the source calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactState {
    /// Already holds exactly the module.
    Current,
    /// Written now (write mode).
    Written,
    /// Not there (compare mode).
    Missing,
    /// There with other content (compare mode).
    Stale,
}

/// What became of one source file.
#[derive(Debug)]
pub struct Done {
    pub artifact: PathBuf,
    pub state: ArtifactState,
    pub reused: bool,
    /// blake3 of the source text.
    pub hash: String,
    pub skipped: Vec<(String, String)>,
    /// Artifacts of older versions of this source: removed (write) or found (compare).
    pub extra: Vec<PathBuf>,
    /// Names the source defines more than once at its top level.
    pub redefined: Vec<tangent::db::Redefinition>,
}

pub struct FileReport {
    pub source: Source,
    pub outcome: Result<Done, FileError>,
}

/// Reads, generates (or reuses) and writes or compares the artifact of one source.
pub fn process_text(
    generator: &Generator,
    layout: &Layout,
    source: &Source,
    text: &str,
    mode: Mode,
) -> Result<Done, FileError> {
    let module = generator.module(&source.path, text)?;
    let artifact = layout.artifact(source, &module.hash);
    // A symbolic link at the artifact's place is no artifact (it is replaced when writing).
    let on_disk = layout
        .reachable(source, &artifact)
        .then(|| layout::read_artifact(&artifact))
        .flatten();
    let state = match (mode, on_disk) {
        (_, Some(old)) if old == module.source.as_bytes() => ArtifactState::Current,
        (Mode::Compare, None) => ArtifactState::Missing,
        (Mode::Compare, Some(_)) => ArtifactState::Stale,
        (Mode::Write, _) => {
            layout::write_if_changed(&layout.base(source), &artifact, &module.source).map_err(
                |e| FileError::Write(format!("cannot write {}: {e}", artifact.display())),
            )?;
            ArtifactState::Written
        }
    };
    let extra = layout.stale_siblings(source, Some(&artifact), Some(&module.hash));
    if mode == Mode::Write {
        for old in &extra {
            if let Err(e) = layout::remove_artifact(old) {
                tracing::warn!("cannot remove the stale artifact {}: {e}", old.display());
            }
        }
    }
    Ok(Done {
        artifact,
        state,
        reused: module.reused,
        hash: module.hash,
        skipped: module.skipped,
        extra,
        redefined: module.redefined,
    })
}

fn process(
    generator: &Generator,
    layout: &Layout,
    source: &Source,
    mode: Mode,
) -> Result<Done, FileError> {
    let text = read_source(&source.path)?;
    process_text(generator, layout, source, &text, mode)
}

/// Runs every source of `found` (in parallel), with a progress bar on a terminal.
pub fn run_all(
    project: &Project,
    generator: &Generator,
    found: &Found,
    mode: Mode,
    verbosity: Verbosity,
) -> Vec<FileReport> {
    let sources = &found.sources;
    // With `--out` and several PATHs, two sources may map to one artifact: the first wins.
    let mut collisions: HashMap<usize, FileError> = HashMap::new();
    if let Layout::Out(_) = project.layout {
        let mut owners: HashMap<PathBuf, usize> = HashMap::new();
        for (i, s) in sources.iter().enumerate() {
            let artifact = project.layout.artifact(s, "");
            if let Some(&first) = owners.get(&artifact) {
                collisions.insert(
                    i,
                    FileError::Write(format!(
                        "its artifact {} is already the one of {}",
                        artifact.display(),
                        sources[first].path.display()
                    )),
                );
            } else {
                owners.insert(artifact, i);
            }
        }
    }
    let bar =
        (sources.len() > 50 && verbosity != Verbosity::Quiet && std::io::stderr().is_terminal())
            .then(|| {
                let bar = indicatif::ProgressBar::with_draw_target(
                    Some(sources.len() as u64),
                    indicatif::ProgressDrawTarget::stderr(),
                );
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
                {
                    bar.set_style(style);
                }
                bar
            });
    let results: Mutex<Vec<Option<Result<Done, FileError>>>> =
        Mutex::new((0..sources.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    // Twice the cores: writing an artifact waits on fsync, and another thread can generate
    // meanwhile.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get() * 2)
        .clamp(2, 8)
        .min(sources.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    if interrupted() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(source) = sources.get(i) else { break };
                    let outcome = match collisions.get(&i) {
                        Some(e) => Err(e.clone()),
                        None => process(generator, &project.layout, source, mode),
                    };
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                    if let Some(bar) = &bar {
                        bar.set_message(source.path.display().to_string());
                        bar.inc(1);
                    }
                }
            });
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    generator.flush();
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    if mode == Mode::Write {
        // Temporary files of writers killed mid-write (a build or watch stopped by SIGKILL).
        let dirs: HashSet<PathBuf> = results
            .iter()
            .flatten()
            .flatten()
            .filter_map(|d| d.artifact.parent().map(Path::to_path_buf))
            .collect();
        for dir in dirs {
            layout::sweep_temporaries(&dir);
        }
    }
    sources
        .iter()
        .zip(results)
        .map(|(source, outcome)| FileReport {
            source: source.clone(),
            outcome: outcome.unwrap_or_else(|| Err(FileError::Read("not processed".into()))),
        })
        .collect()
}

/// Artifacts in the walked directories whose source is gone (beside layout: the file does not
/// exist; `--out`: it is not among the sources).
pub fn orphans(layout: &Layout, found: &Found) -> Vec<PathBuf> {
    let sources: HashSet<PathBuf> = found
        .sources
        .iter()
        .map(|s| crate::config::absolute(&s.path))
        .collect();
    let mut v = Vec::new();
    for (root, dir) in &found.dirs {
        for (source, artifact) in layout.artifacts_for_dir(root, dir) {
            let listed = sources.contains(&crate::config::absolute(&source));
            let orphan = match layout {
                Layout::Beside => !listed && !source.exists(),
                Layout::Out(_) => !listed,
            };
            if orphan {
                v.push(artifact);
            }
        }
    }
    v.sort();
    v.dedup();
    v
}

/// Counts for the summary line.
#[derive(Debug, Default)]
pub struct Summary {
    pub generated: usize,
    pub reused: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Summary {
    pub fn add(&mut self, report: &FileReport) {
        match &report.outcome {
            Ok(d) if d.reused => self.reused += 1,
            Ok(_) => self.generated += 1,
            Err(_) => self.failed += 1,
        }
        if let Ok(d) = &report.outcome {
            self.skipped += d.skipped.len();
        }
    }

    pub fn line(&self) -> String {
        let functions = if self.skipped == 1 {
            "function"
        } else {
            "functions"
        };
        format!(
            "{} generated, {} reused, {} failed, {} {functions} skipped",
            self.generated, self.reused, self.failed, self.skipped
        )
    }
}

/// One warning per name the source at `path` defines more than once at its top level, saying
/// which definition the artifact's derivatives belong to (the last: what the name is bound
/// to once the module has run).
pub fn redefinition_warnings(path: &Path, redefined: &[tangent::db::Redefinition]) -> Vec<String> {
    let path = path.display();
    redefined
        .iter()
        .map(|r| {
            let places: Vec<String> = r.lines.iter().map(|l| format!("{path}:{l}")).collect();
            let (first, bound) = (r.lines.first().copied().unwrap_or(0), r.bound());
            let what = if r.class {
                format!("class `{}`", r.name)
            } else {
                format!("`{}`", r.name)
            };
            let derivatives = if r.class {
                format!("the derivatives of its methods (`d{}_<method>`) belong", r.name)
            } else {
                format!("`d{}` belongs", r.name)
            };
            format!(
                "warning: {path}:{first}: {what} is defined more than once at the top level ({}); in the gradient module {derivatives} to the definition at {path}:{bound}, the one the name is bound to when the module has run",
                places.join(", ")
            )
        })
        .collect()
}

/// Prints failures (stderr), warnings (stderr, unless quiet) and, with `-v`, skipped
/// functions (stdout); returns the counts.
pub fn report(reports: &[FileReport], found: &Found, verbosity: Verbosity) -> Summary {
    let mut summary = Summary::default();
    for (path, reason) in &found.errors {
        eprintln!(
            "error[{}]: {}: {reason}",
            tangent::DiagnosticKind::Io,
            path.display()
        );
        summary.failed += 1;
    }
    for r in reports {
        summary.add(r);
        if let (Ok(d), false) = (&r.outcome, verbosity == Verbosity::Quiet) {
            for warning in redefinition_warnings(&r.source.path, &d.redefined) {
                eprintln!("{warning}");
            }
        }
        match &r.outcome {
            Err(e) => eprint!("{}", e.render(&r.source.path)),
            Ok(d) if verbosity == Verbosity::Verbose => {
                for (function, reason) in &d.skipped {
                    println!("skipped {}:{function}: {reason}", r.source.path.display());
                }
            }
            Ok(_) => {}
        }
    }
    summary
}

pub fn run(args: &ProjectArgs, verbosity: Verbosity) -> ExitCode {
    let project = match Project::resolve(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let found = walk::walk(&project.paths, &project.filter);
    tracing::debug!("{} sources found", found.sources.len());
    let generator = match project.generator() {
        Ok(g) => g,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(1);
        }
    };
    let reports = run_all(&project, &generator, &found, Mode::Write, verbosity);
    remove_orphans(&project.layout, &found);
    let summary = report(&reports, &found, verbosity);
    if verbosity != Verbosity::Quiet {
        println!("{}", summary.line());
    }
    if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn remove_orphans(layout: &Layout, found: &Found) {
    for (root, dir) in &found.dirs {
        if let Some(artifacts) = layout.artifact_dir(root, dir) {
            layout::sweep_temporaries(&artifacts);
        }
    }
    for artifact in orphans(layout, found) {
        match layout::remove_artifact(&artifact) {
            Ok(()) => tracing::debug!("removed {} (its source is gone)", artifact.display()),
            Err(e) => tracing::warn!("cannot remove {}: {e}", artifact.display()),
        }
    }
}
