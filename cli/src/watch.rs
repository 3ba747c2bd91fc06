//! `tangent watch`: an initial build, then regenerate modules as their sources change.
//!
//! Every create/modify/rename of a `*.py` means: re-read, compare blake3 with the last text
//! seen, regenerate that one module if it changed. A deleted source deletes its artifact. A new
//! directory is scanned at once (inotify misses files written right after a nested directory is
//! created). A save that does not parse keeps the last good artifact. The store stays open for
//! the whole session; other processes read the artifact files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer_opt};

use crate::build::{self, ArtifactState, Mode, Summary};
use crate::generate::{FileError, Generator, read_source};
use crate::layout::{self, Layout};
use crate::logging::Verbosity;
use crate::project::{Project, ProjectArgs};
use crate::walk::{self, Source};

// Short enough that a save is regenerated within tens of milliseconds (the debouncer checks a
// quarter of this period), long enough to merge an editor's temp-write-and-rename into one event.
const DEBOUNCE: Duration = Duration::from_millis(24);

enum Message {
    Fs(DebounceEventResult),
    Stop,
}

/// A PATH being watched.
struct Root {
    /// As given (paths are shown in this form).
    given: PathBuf,
    /// Absolute, as the watcher reports paths.
    abs: PathBuf,
    /// What is watched: `abs`, or its target when it is a symbolic link (links below the
    /// roots are not followed; a PATH that is one is the user's choice). Events under it are
    /// mapped back to `abs`.
    watched: PathBuf,
    is_file: bool,
}

/// What we last saw of a source.
struct Seen {
    source: Source,
    /// blake3 of the text last read (None when it could not be read).
    hash: Option<String>,
}

struct Watch {
    project: Project,
    generator: Generator,
    roots: Vec<Root>,
    /// By path in the given form.
    seen: HashMap<PathBuf, Seen>,
    out_abs: Option<PathBuf>,
    verbosity: Verbosity,
    /// The shared recipe files, absolute: a change to one rebuilds everything.
    recipe_files: Vec<PathBuf>,
}

pub fn run(args: &ProjectArgs, verbosity: Verbosity) -> ExitCode {
    let project = match Project::resolve(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut roots = Vec::new();
    for given in &project.paths {
        match std::fs::metadata(given) {
            Ok(meta) => {
                let abs = crate::config::absolute(given);
                let linked =
                    std::fs::symlink_metadata(&abs).is_ok_and(|m| m.file_type().is_symlink());
                let watched = if linked && meta.is_dir() {
                    std::fs::canonicalize(&abs).unwrap_or_else(|_| abs.clone())
                } else {
                    abs.clone()
                };
                roots.push(Root {
                    given: given.clone(),
                    abs,
                    watched,
                    is_file: !meta.is_dir(),
                })
            }
            Err(e) => {
                eprintln!("error: {}: {e}", given.display());
                return ExitCode::from(2);
            }
        }
    }
    let (tx, rx) = mpsc::channel::<Message>();
    let stop = tx.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        // Also seen by a build in progress, which then stops early.
        build::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = stop.send(Message::Stop);
    }) {
        eprintln!("error: cannot handle Ctrl-C: {e}");
        return ExitCode::from(2);
    }
    // Watch first, build second: nothing saved during the initial build is missed.
    // Symbolic links are not followed: a linked directory is no part of the project (the walk
    // does not enter it either), and following one could watch the whole disk.
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut debouncer = match new_debouncer_opt::<_, notify::RecommendedWatcher, _>(
        DEBOUNCE,
        None,
        move |r| {
            let _ = tx.send(Message::Fs(r));
        },
        notify_debouncer_full::RecommendedCache::new(),
        config,
    ) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot watch for changes: {e}");
            return ExitCode::from(2);
        }
    };
    let recipe_files: Vec<PathBuf> = project
        .recipe_files
        .iter()
        .map(|p| crate::config::absolute(p))
        .collect();
    // Recipe files outside the watched trees are watched too.
    for file in &recipe_files {
        if roots.iter().any(|r| file.starts_with(&r.abs)) {
            continue;
        }
        if let Some(dir) = file.parent()
            && let Err(e) = debouncer.watch(dir, RecursiveMode::NonRecursive)
        {
            tracing::warn!("cannot watch {}: {e}", dir.display());
        }
    }
    for root in &roots {
        let (target, mode) = if root.is_file {
            (
                root.abs.parent().unwrap_or(Path::new("/")).to_path_buf(),
                RecursiveMode::NonRecursive,
            )
        } else {
            (root.watched.clone(), RecursiveMode::Recursive)
        };
        if let Err(e) = debouncer.watch(&target, mode) {
            eprintln!("error: cannot watch {}: {e}", root.given.display());
            return ExitCode::from(2);
        }
    }
    let out_abs = match &project.layout {
        Layout::Out(dir) => Some(crate::config::absolute(dir)),
        Layout::Beside => None,
    };
    let generator = match project.generator() {
        Ok(g) => g,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(1);
        }
    };
    let mut watch = Watch {
        project,
        generator,
        roots,
        seen: HashMap::new(),
        out_abs,
        verbosity,
        recipe_files,
    };
    watch.initial_build(verbosity);
    if build::interrupted() {
        return ExitCode::SUCCESS;
    }
    println!(
        "watching {} for changes (Ctrl-C to stop)",
        watch.describe_roots()
    );
    while let Ok(message) = rx.recv() {
        let mut batch = Vec::new();
        let mut stopping = false;
        // Take whatever else is queued, so one burst is one batch.
        for m in std::iter::once(message).chain(rx.try_iter()) {
            match m {
                Message::Stop => stopping = true,
                Message::Fs(Ok(events)) => batch.extend(events),
                Message::Fs(Err(errors)) => {
                    for e in errors {
                        if matches!(
                            e.kind,
                            notify::ErrorKind::PathNotFound | notify::ErrorKind::WatchNotFound
                        ) {
                            // A directory removed while being watched: its events tell the rest.
                            tracing::debug!("watch: {e}");
                            continue;
                        }
                        // Events may have been lost: look at everything again.
                        tracing::warn!("watch error: {e}; rescanning");
                        batch.push(notify_debouncer_full::DebouncedEvent::new(
                            notify::Event::new(notify::EventKind::Other)
                                .set_flag(notify::event::Flag::Rescan),
                            Instant::now(),
                        ));
                    }
                }
            }
        }
        if stopping {
            break;
        }
        watch.handle(&batch);
        watch.generator.flush();
    }
    debouncer.stop();
    watch.generator.flush();
    if verbosity != Verbosity::Quiet {
        println!("stopped");
    }
    ExitCode::SUCCESS
}

impl Watch {
    fn describe_roots(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.given.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn initial_build(&mut self, verbosity: Verbosity) {
        let found = walk::walk(&self.project.paths, &self.project.filter);
        let reports = build::run_all(
            &self.project,
            &self.generator,
            &found,
            Mode::Write,
            verbosity,
        );
        if build::interrupted() {
            return;
        }
        build::remove_orphans(&self.project.layout, &found);
        let summary: Summary = build::report(&reports, &found, verbosity);
        for r in reports {
            let hash = r.outcome.as_ref().ok().map(|d| d.hash.clone());
            self.seen.insert(
                r.source.path.clone(),
                Seen {
                    source: r.source,
                    hash,
                },
            );
        }
        if verbosity != Verbosity::Quiet {
            println!("{}", summary.line());
        }
    }

    /// The root `abs` lies in, and `abs` in the given form.
    fn locate(&self, abs: &Path) -> Option<(usize, PathBuf)> {
        self.roots.iter().enumerate().find_map(|(i, r)| {
            if r.is_file {
                (abs == r.abs).then(|| (i, walk::tidy(&r.given)))
            } else {
                abs.strip_prefix(&r.abs)
                    .or_else(|_| abs.strip_prefix(&r.watched))
                    .ok()
                    .map(|rel| (i, walk::tidy(&r.given.join(rel))))
            }
        })
    }

    /// The walk root of root `i` and the `Source` for `path` (given form) in it.
    fn source(&self, i: usize, path: &Path) -> Source {
        let root = &self.roots[i];
        let walk_root = if root.is_file {
            root.given
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        } else {
            root.given.clone()
        };
        Source::new(&walk_root, path.to_path_buf())
    }

    fn handle(&mut self, events: &[notify_debouncer_full::DebouncedEvent]) {
        if events
            .iter()
            .any(|e| e.paths.iter().any(|p| self.recipe_files.contains(p)))
        {
            self.reload_recipes();
            return;
        }
        if events.iter().any(|e| e.need_rescan()) {
            tracing::debug!("rescanning everything");
            self.rescan_all();
            return;
        }
        // Each path once, remembering whether anything may have appeared or moved there
        // (only then is a directory worth scanning).
        let mut paths: Vec<(PathBuf, bool)> = Vec::new();
        for e in events {
            use notify::EventKind;
            use notify::event::ModifyKind;
            let structural = match e.kind {
                EventKind::Access(_) => continue,
                EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Metadata(_)) => false,
                _ => true,
            };
            for p in &e.paths {
                match paths.iter_mut().find(|(q, _)| q == p) {
                    Some((_, s)) => *s |= structural,
                    None => paths.push((p.clone(), structural)),
                }
            }
        }
        for (abs, structural) in paths {
            // An artifact written or removed by another process (a `tangent build` of an older
            // text removes the newer artifact as stale): check its source's artifact again.
            if let Some(owner) = self.owner_of_artifact(&abs) {
                tracing::debug!("artifact changed: {}", abs.display());
                let source = self.seen[&owner].source.clone();
                self.update(source);
                continue;
            }
            // Our own output (and the store's files) are not sources.
            if self.out_abs.as_ref().is_some_and(|o| abs.starts_with(o))
                || abs.starts_with(&self.project.cache_dir)
            {
                continue;
            }
            let Some((i, path)) = self.locate(&abs) else {
                continue;
            };
            tracing::debug!("changed: {}", path.display());
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() && !structural => {}
                Ok(meta) if meta.is_dir() => {
                    // A new (or moved-in) directory: scan it now, and drop what moved away.
                    let found = walk::rescan(
                        &self.roots[i].given.clone(),
                        &path,
                        &self.project.filter,
                        None,
                    );
                    for s in found.sources {
                        self.update(s);
                    }
                    self.forget_missing_under(&path);
                }
                Ok(_) => {
                    let root = self.roots[i].given.clone();
                    if self.roots[i].is_file
                        || walk::admits_file(&root, &path, &self.project.filter)
                    {
                        let source = self.source(i, &path);
                        self.update(source);
                    }
                }
                Err(_) => {
                    self.forget_missing_under(&path);
                    if !self.seen.contains_key(&path) && path.extension().is_some_and(|e| e == "py")
                    {
                        // A source never built (e.g. one that failed) may still have artifacts.
                        let source = self.source(i, &path);
                        self.deleted(&source);
                    }
                }
            }
        }
    }

    /// The source (as a key of `seen`) whose artifact `abs` is, when it is one.
    fn owner_of_artifact(&self, abs: &Path) -> Option<PathBuf> {
        let name = abs.file_name()?.to_str()?;
        let (stem, _) = name.split_once(".__grad__.")?;
        if !name.ends_with(".py") {
            return None;
        }
        match &self.project.layout {
            Layout::Beside => {
                let dir = abs.parent()?;
                if dir.file_name()? != layout::ARTIFACT_DIR {
                    return None;
                }
                let (_, path) = self.locate(&dir.parent()?.join(format!("{stem}.py")))?;
                self.seen.contains_key(&path).then_some(path)
            }
            Layout::Out(_) => {
                let out = self.out_abs.as_ref()?;
                if !abs.starts_with(out) {
                    return None;
                }
                let layout = &self.project.layout;
                self.seen
                    .iter()
                    .find(|(_, s)| crate::config::absolute(&layout.artifact(&s.source, "")) == abs)
                    .map(|(p, _)| p.clone())
            }
        }
    }

    /// A shared recipe file changed: every module may differ, so all are generated again (a
    /// broken recipe file is reported and the previous recipes stay in force).
    fn reload_recipes(&mut self) {
        match self.project.recipes() {
            Ok(recipes) => {
                self.generator.set_shared_recipes(recipes);
                if self.verbosity != Verbosity::Quiet {
                    println!("recipes changed: regenerating every module");
                }
                self.seen.clear();
                self.initial_build(self.verbosity);
            }
            Err(e) => eprint!("{e}"),
        }
    }

    fn rescan_all(&mut self) {
        let found = walk::walk(&self.project.paths, &self.project.filter);
        for s in found.sources {
            self.update(s);
        }
        let gone: Vec<PathBuf> = self.seen.keys().filter(|p| !p.exists()).cloned().collect();
        for p in gone {
            if let Some(s) = self.seen.remove(&p) {
                self.deleted(&s.source);
            }
        }
    }

    /// Sources at or below `path` that no longer exist: delete their artifacts.
    fn forget_missing_under(&mut self, path: &Path) {
        let gone: Vec<PathBuf> = self
            .seen
            .keys()
            .filter(|p| p.starts_with(path) && !p.exists())
            .cloned()
            .collect();
        for p in gone {
            if let Some(s) = self.seen.remove(&p) {
                self.deleted(&s.source);
            }
        }
    }

    fn deleted(&self, source: &Source) {
        for a in self.project.layout.artifacts_of(source) {
            match layout::remove_artifact(&a) {
                Ok(()) => println!(
                    "removed {} ({} was deleted)",
                    a.display(),
                    source.path.display()
                ),
                Err(e) => eprintln!("error: cannot remove {}: {e}", a.display()),
            }
        }
    }

    /// Makes the artifact of an unchanged `source` (text `text`) what it should be again, in
    /// case another process replaced or removed it; quiet unless something was rewritten.
    /// Cheap when nothing changed: the module comes from the query cache.
    fn restore(&self, source: &Source, text: &str) {
        let layout = &self.project.layout;
        match build::process_text(&self.generator, layout, source, text, Mode::Write) {
            Ok(done) if done.state == ArtifactState::Written => println!(
                "restored {} (it had been changed by another process)",
                done.artifact.display()
            ),
            Ok(_) => {}
            // Reported when the text was first seen.
            Err(e) => tracing::debug!("{}: still failing: {e:?}", source.path.display()),
        }
    }

    /// Re-reads `source`; regenerates its module if the text changed (otherwise restores its
    /// artifact if another process changed it).
    fn update(&mut self, source: Source) {
        let start = Instant::now();
        let text = match read_source(&source.path) {
            Ok(t) => t,
            Err(e) => {
                if !source.path.exists() {
                    if let Some(s) = self.seen.remove(&source.path) {
                        self.deleted(&s.source);
                    }
                    return;
                }
                eprint!("{}", e.render(&source.path));
                self.seen
                    .insert(source.path.clone(), Seen { source, hash: None });
                return;
            }
        };
        let hash = tangent::source_hash(&text);
        if self
            .seen
            .get(&source.path)
            .is_some_and(|s| s.hash.as_deref() == Some(hash.as_str()))
        {
            tracing::debug!("{}: unchanged", source.path.display());
            self.restore(&source, &text);
            return;
        }
        match build::process_text(
            &self.generator,
            &self.project.layout,
            &source,
            &text,
            Mode::Write,
        ) {
            Ok(done) => {
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                if done.state == ArtifactState::Written {
                    println!(
                        "regenerated {} -> {} ({ms:.0} ms)",
                        source.path.display(),
                        done.artifact.display()
                    );
                } else {
                    tracing::debug!("{}: artifact already up to date", source.path.display());
                }
                for (function, reason) in &done.skipped {
                    tracing::debug!("skipped {}:{function}: {reason}", source.path.display());
                }
                for warning in build::redefinition_warnings(&source.path, &done.redefined) {
                    eprintln!("{warning}");
                }
            }
            Err(e) => {
                eprint!("{}", e.render(&source.path));
                if matches!(e, FileError::Engine(_)) {
                    eprintln!(
                        "note: keeping the last good artifact of {}",
                        source.path.display()
                    );
                }
            }
        }
        self.seen.insert(
            source.path.clone(),
            Seen {
                source,
                hash: Some(hash),
            },
        );
    }
}
