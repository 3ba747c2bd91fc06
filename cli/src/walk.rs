//! Finding the Python sources under the PATHs, the way ruff does: `.gitignore`, `.ignore` and
//! hidden entries are skipped (via the `ignore` crate), as are virtual environments, build
//! output, caches and Tangent's own artifacts, plus the `exclude` globs of `[tool.tangent]`.
//!
//! Symbolic links never take the build out of the project: linked directories are not
//! entered, and a linked `*.py` file is a source only when its target lies inside the PATH it
//! was found under or inside the project (the directory of `pyproject.toml`, else the project
//! root); one pointing elsewhere is skipped with a warning, so that (say) a link to a secret
//! named `x.py` never gets parsed and quoted in a diagnostic. A broken link or a link loop is
//! reported as a file that cannot be read.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// Directory names never entered.
pub const SKIPPED_DIRS: &[&str] = &[
    ".venv",
    "venv",
    "env",
    "build",
    "dist",
    "__pycache__",
    "__tangent__",
    ".tangent",
    "site-packages",
    "node_modules",
];

/// One Python source to build.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// The path as found (relative to the working directory when the PATH was).
    pub path: PathBuf,
    /// The PATH it was found under (the parent directory for a PATH that is a file).
    pub root: PathBuf,
    /// `path` relative to `root`.
    pub rel: PathBuf,
}

impl Source {
    pub fn new(root: &Path, path: PathBuf) -> Source {
        let (root, path) = (tidy(root), tidy(&path));
        let rel = relative_to(&root, &path)
            .unwrap_or_else(|| PathBuf::from(path.file_name().unwrap_or_default()));
        Source { path, root, rel }
    }

    pub fn stem(&self) -> String {
        self.path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    }
}

/// `path` without `.` components (`./pkg/a.py` is shown as `pkg/a.py`); `.` when nothing is left.
pub fn tidy(path: &Path) -> PathBuf {
    let t: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    if t.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        t
    }
}

/// `path` relative to `root` (both as `tidy` leaves them), if it lies below it.
pub fn relative_to(root: &Path, path: &Path) -> Option<PathBuf> {
    let (root, path) = (tidy(root), tidy(path));
    if root == Path::new(".") && path.is_relative() {
        return Some(if path == Path::new(".") {
            PathBuf::new()
        } else {
            path
        });
    }
    path.strip_prefix(&root).ok().map(Path::to_path_buf)
}

/// Everything one walk found.
#[derive(Debug, Default)]
pub struct Found {
    pub sources: Vec<Source>,
    /// Directories entered, as `(root, dir)`: where stale artifacts may be left.
    pub dirs: Vec<(PathBuf, PathBuf)>,
    /// PATHs or entries that could not be walked, as `(path, reason)`.
    pub errors: Vec<(PathBuf, String)>,
}

/// Is `name` an artifact Tangent wrote (`<stem>.__grad__[.<hash>].py`)?
pub fn is_generated(name: &str) -> bool {
    name.ends_with(".py") && name.contains(".__grad__")
}

fn is_python_source(path: &Path) -> bool {
    path.extension() == Some(OsStr::new("py"))
        && path
            .file_name()
            .and_then(OsStr::to_str)
            .is_none_or(|n| !is_generated(n))
}

/// What to leave out besides ignore files: skipped directory names, hidden entries, globs.
#[derive(Debug, Clone)]
pub struct Filter {
    exclude: GlobSet,
    /// Globs are matched against paths relative to this directory (absolute), and names.
    base: PathBuf,
}

impl Filter {
    pub fn new(patterns: &[String], base: &Path) -> Result<Filter, String> {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            let glob = Glob::new(p).map_err(|e| format!("invalid exclude pattern `{p}`: {e}"))?;
            builder.add(glob);
            // `foo/` and `foo` both mean the directory and what is inside it.
            let trimmed = p.trim_end_matches('/');
            if !trimmed.ends_with("**")
                && let Ok(g) = Glob::new(&format!("{trimmed}/**"))
            {
                builder.add(g);
            }
        }
        let exclude = builder
            .build()
            .map_err(|e| format!("invalid exclude patterns: {e}"))?;
        Ok(Filter {
            exclude,
            base: crate::config::absolute(base),
        })
    }

    fn excluded(&self, path: &Path) -> bool {
        if self.exclude.is_empty() {
            return false;
        }
        if path.file_name().is_some_and(|n| self.exclude.is_match(n)) {
            return true;
        }
        let abs = crate::config::absolute(path);
        match abs.strip_prefix(&self.base) {
            Ok(rel) => self.exclude.is_match(rel),
            Err(_) => self.exclude.is_match(&abs),
        }
    }

    /// Is the symbolic link `path`, found under `root`, one to build (its target lies inside
    /// `root` or the project)? `None` when it cannot be resolved (broken, a loop): then
    /// reading it reports the problem.
    pub fn link_inside(&self, root: &Path, path: &Path) -> Option<bool> {
        let target = std::fs::canonicalize(path).ok()?;
        let inside = |dir: &Path| std::fs::canonicalize(dir).is_ok_and(|d| target.starts_with(d));
        Some(inside(root) || inside(&self.base))
    }

    /// Whether a directory entry (not a walk root) is left out by name or glob.
    fn skips(&self, path: &Path, is_dir: bool) -> bool {
        let name = path.file_name().and_then(OsStr::to_str).unwrap_or("");
        (is_dir && SKIPPED_DIRS.contains(&name)) || self.excluded(path)
    }

    /// Whether every component of `path` below `root` passes the name rules (hidden entries,
    /// skipped directories, globs). Ignore files are not consulted here.
    pub fn admits_below(&self, root: &Path, path: &Path) -> bool {
        let Some(rel) = relative_to(root, path) else {
            return false;
        };
        let mut at = tidy(root);
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            let Component::Normal(name) = c else {
                return false;
            };
            at.push(name);
            let last = i + 1 == comps.len();
            if name.to_str().is_some_and(|n| n.starts_with('.')) {
                return false;
            }
            if self.skips(&at, !last || at.is_dir()) {
                return false;
            }
            // Linked directories are never entered (the full walk does not follow them).
            if !last && std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return false;
            }
        }
        true
    }
}

fn builder(dir: &Path, filter: &Arc<Filter>, max_depth: Option<usize>) -> ignore::WalkBuilder {
    let mut b = ignore::WalkBuilder::new(dir);
    b.hidden(true)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .ignore(true)
        .parents(true)
        .require_git(false)
        .follow_links(false)
        .max_depth(max_depth)
        .sort_by_file_name(|a, b| a.cmp(b));
    let f = Arc::clone(filter);
    b.filter_entry(move |e| {
        e.depth() == 0 || !f.skips(e.path(), e.file_type().is_some_and(|t| t.is_dir()))
    });
    b
}

/// Walks `dir` (inside `root`) and adds what it finds to `found`.
fn walk_dir(
    root: &Path,
    dir: &Path,
    filter: &Arc<Filter>,
    max_depth: Option<usize>,
    found: &mut Found,
) {
    for entry in builder(dir, filter, max_depth).build() {
        match entry {
            Ok(e) => {
                let is_dir = e.file_type().is_some_and(|t| t.is_dir());
                if is_dir {
                    found.dirs.push((tidy(root), tidy(e.path())));
                } else if e.file_type().is_some_and(|t| t.is_file() || t.is_symlink())
                    && is_python_source(e.path())
                {
                    if e.path_is_symlink() && filter.link_inside(root, e.path()) == Some(false) {
                        warn_outside(e.path());
                        continue;
                    }
                    found
                        .sources
                        .push(Source::new(root, e.path().to_path_buf()));
                }
            }
            Err(err) => {
                let path = match &err {
                    ignore::Error::WithPath { path, .. } => path.clone(),
                    _ => dir.to_path_buf(),
                };
                found.errors.push((path, err.to_string()));
            }
        }
    }
}

/// The sources under `paths`, each once, in a stable order.
pub fn walk(paths: &[PathBuf], filter: &Arc<Filter>) -> Found {
    let mut found = Found::default();
    for path in paths {
        match std::fs::metadata(path) {
            Err(e) => found.errors.push((path.clone(), e.to_string())),
            Ok(meta) if meta.is_dir() => walk_dir(path, path, filter, None, &mut found),
            Ok(_) => {
                if is_python_source(path) {
                    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
                    found.sources.push(Source::new(&root, path.clone()));
                } else {
                    tracing::warn!("{}: not a Python source (*.py), skipped", path.display());
                }
            }
        }
    }
    dedup(&mut found);
    found
}

fn dedup(found: &mut Found) {
    let mut seen = HashSet::new();
    found
        .sources
        .retain(|s| seen.insert(crate::config::absolute(&s.path)));
    let mut seen_dirs = HashSet::new();
    found
        .dirs
        .retain(|(_, d)| seen_dirs.insert(crate::config::absolute(d)));
}

fn warn_outside(path: &Path) {
    let target = std::fs::canonicalize(path)
        .map(|t| t.display().to_string())
        .unwrap_or_default();
    tracing::warn!(
        "{}: skipped: a symbolic link to {target}, outside the project",
        path.display()
    );
}

/// Rescans `dir` below `root` (a directory just created, or a parent whose entry changed):
/// the sources the full walk would have found there. `max_depth` 1 lists only `dir` itself.
pub fn rescan(root: &Path, dir: &Path, filter: &Arc<Filter>, max_depth: Option<usize>) -> Found {
    let mut found = Found::default();
    if tidy(dir) != tidy(root)
        && (!filter.admits_below(root, dir)
            || std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()))
    {
        return found;
    }
    walk_dir(root, dir, filter, max_depth, &mut found);
    found
}

/// Would the full walk of `root` take the file `path` (which exists)?
pub fn admits_file(root: &Path, path: &Path, filter: &Arc<Filter>) -> bool {
    if !is_python_source(path) {
        return false;
    }
    if tidy(root) == tidy(path) {
        return true;
    }
    if !filter.admits_below(root, path) {
        return false;
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        && filter.link_inside(root, path) == Some(false)
    {
        warn_outside(path);
        return false;
    }
    let Some(parent) = path.parent() else {
        return false;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let path = tidy(path);
    rescan(root, parent, filter, Some(1))
        .sources
        .iter()
        .any(|s| s.path == path)
}
