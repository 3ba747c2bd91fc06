//! Where artifacts go, and writing them safely.
//!
//! Beside the source (the import hook keeps its own files in `__tangent__/imports/`, which
//! builds leave alone):
//! `<dir>/__tangent__/<stem>.__grad__.<first 16 hex of the source hash>.py`.
//! With `--out DIR`, a mirrored tree with stable names: `DIR/<rel dir>/<stem>.__grad__.py`.
//!
//! Safety rules for what is written and removed:
//! - **Never through a symbolic link.** Artifacts are written below a *base*: the source's own
//!   directory (beside layout) or DIR (`--out`; DIR itself may be a link, the user named it).
//!   Every directory between the base and the artifact must be a real directory: a
//!   `__tangent__` (or a mirrored directory under DIR) that is a symbolic link is refused, so a
//!   link planted in a repository cannot send generated files, or their removal, elsewhere.
//!   An artifact path that is itself a link is replaced by a regular file (the rename replaces
//!   the link, never its target), and is never read as an artifact.
//! - **Atomic and crash-safe.** A temporary file in the same directory (created exclusively,
//!   so a planted link there is not followed), synced, then renamed over. A writer killed
//!   mid-write leaves only its temporary file (`.<name>.<pid>.<n>.tmp`), never half an
//!   artifact; [`sweep_temporaries`] removes those of processes that are gone.
//! - **Private modes.** Artifacts are `0o644` and created directories `0o755` on Unix,
//!   whatever the umask (a umask of 0 must not make them world-writable).

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::walk::Source;

pub const ARTIFACT_DIR: &str = "__tangent__";
const HASH_CHARS: usize = 16;

#[derive(Debug, Clone)]
pub enum Layout {
    Beside,
    Out(PathBuf),
}

impl Layout {
    /// The artifact of `source` whose blake3 (hex) is `hash`.
    pub fn artifact(&self, source: &Source, hash: &str) -> PathBuf {
        let stem = source.stem();
        match self {
            Layout::Beside => source
                .path
                .parent()
                .unwrap_or(Path::new(""))
                .join(ARTIFACT_DIR)
                .join(format!(
                    "{stem}.__grad__.{}.py",
                    &hash[..HASH_CHARS.min(hash.len())]
                )),
            Layout::Out(dir) => {
                let rel_dir = source.rel.parent().unwrap_or(Path::new(""));
                dir.join(rel_dir).join(format!("{stem}.__grad__.py"))
            }
        }
    }

    /// The directory below which the artifact of `source` is written without following a
    /// symbolic link (see the module documentation).
    pub fn base(&self, source: &Source) -> PathBuf {
        match self {
            Layout::Beside => source.path.parent().unwrap_or(Path::new("")).to_path_buf(),
            Layout::Out(dir) => dir.clone(),
        }
    }

    /// Is `artifact` (of `source`) reached from the base without a symbolic link? Only then
    /// is what is there read as the artifact.
    pub fn reachable(&self, source: &Source, artifact: &Path) -> bool {
        real_dirs_below(
            &self.base(source),
            artifact.parent().unwrap_or(Path::new("")),
        )
    }

    /// Artifacts of `source` beside it other than `keep` that were generated from another text
    /// than the one whose hash is `current` (every one when `current` is None). A sibling whose
    /// header names the current source hash is left alone: another writer (the import hook)
    /// made it from the same source.
    pub fn stale_siblings(
        &self,
        source: &Source,
        keep: Option<&Path>,
        current: Option<&str>,
    ) -> Vec<PathBuf> {
        match self {
            Layout::Out(_) => Vec::new(),
            Layout::Beside => {
                let dir = source
                    .path
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(ARTIFACT_DIR);
                artifacts_in(&dir)
                    .into_iter()
                    .filter(|(stem, path)| *stem == source.stem() && Some(path.as_path()) != keep)
                    .map(|(_, path)| path)
                    .filter(|path| current.is_none_or(|hash| !made_from(path, hash)))
                    .collect()
            }
        }
    }

    /// The directory holding the artifacts of the sources in `dir` (which lies under `root`).
    pub fn artifact_dir(&self, root: &Path, dir: &Path) -> Option<PathBuf> {
        match self {
            Layout::Beside => Some(dir.join(ARTIFACT_DIR)),
            Layout::Out(out) => crate::walk::relative_to(root, dir)
                .map(|rel| out.join(rel))
                .filter(|target| real_dirs_below(out, target)),
        }
    }

    /// The artifacts of `source` on disk, of any version (what deleting the source removes);
    /// never one reached through a symbolic link.
    pub fn artifacts_of(&self, source: &Source) -> Vec<PathBuf> {
        match self {
            Layout::Beside => self.stale_siblings(source, None, None),
            Layout::Out(dir) => {
                let artifact = self.artifact(source, "");
                let parent = artifact.parent().unwrap_or(Path::new(""));
                let file = std::fs::symlink_metadata(&artifact).is_ok_and(|m| m.is_file());
                if file && real_dirs_below(dir, parent) {
                    vec![artifact]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Every artifact of this layout belonging to a source file in `dir` (which lies under
    /// `root`), as `(source path it would come from, artifact)`.
    pub fn artifacts_for_dir(&self, root: &Path, dir: &Path) -> Vec<(PathBuf, PathBuf)> {
        match self {
            // A dotted stem is no module's file name: it is the import hook's `package.module`.
            Layout::Beside => artifacts_in(&dir.join(ARTIFACT_DIR))
                .into_iter()
                .filter(|(stem, _)| !stem.contains('.'))
                .map(|(stem, a)| (dir.join(format!("{stem}.py")), a))
                .collect(),
            Layout::Out(out) => {
                let Some(rel) = crate::walk::relative_to(root, dir) else {
                    return Vec::new();
                };
                let target = out.join(rel);
                // Never list (and so never remove) through a symbolic link below DIR.
                if !real_dirs_below(out, &target) {
                    return Vec::new();
                }
                let Ok(entries) = std::fs::read_dir(&target) else {
                    return Vec::new();
                };
                let mut v: Vec<_> = entries
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_str()?.to_string();
                        let stem = name.strip_suffix(".__grad__.py")?;
                        e.file_type()
                            .ok()?
                            .is_file()
                            .then(|| (dir.join(format!("{stem}.py")), e.path()))
                    })
                    .collect();
                v.sort();
                v
            }
        }
    }
}

/// Does the header of the generated file `path` name the source hash `hash`?
fn made_from(path: &Path, hash: &str) -> bool {
    use std::io::Read;
    let mut head = [0u8; 256];
    let Ok(mut f) = open_no_follow(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..n]);
    head.lines()
        .next()
        .is_some_and(|l| l.contains(&format!("{}{hash}", tangent::SOURCE_HASH_MARKER)))
}

/// `(stem, path)` of each `<stem>.__grad__.<16 hex>.py` in `dir` (regular files only; nothing
/// when `dir` is a symbolic link).
fn artifacts_in(dir: &Path) -> Vec<(String, PathBuf)> {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let rest = name.strip_suffix(".py")?;
            let (stem, hash) = rest.rsplit_once(".__grad__.")?;
            let ok = hash.len() == HASH_CHARS && hash.bytes().all(|b| b.is_ascii_hexdigit());
            let file = e.file_type().is_ok_and(|t| t.is_file());
            (ok && file && !stem.is_empty()).then(|| (stem.to_string(), e.path()))
        })
        .collect();
    v.sort();
    v
}

/// Opens `path` for reading, failing when it is a symbolic link (the artifact is then "not
/// there": it gets replaced by a regular file).
fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// The bytes of the artifact at `path`, if it is a regular file (never through a link).
pub fn read_artifact(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut f = open_no_follow(path).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// `.` for the empty path (a source in the current directory has the parent `""`).
fn or_dot(path: &Path) -> &Path {
    if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    }
}

/// Is every directory from `base` (excluded) down to `dir` (included) a real directory, not a
/// symbolic link? False when `dir` is not below `base`.
fn real_dirs_below(base: &Path, dir: &Path) -> bool {
    let Ok(rel) = dir.strip_prefix(base) else {
        return false;
    };
    let mut at = or_dot(base).to_path_buf();
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return false;
        };
        at.push(name);
        if !std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir()) {
            return false;
        }
    }
    true
}

/// Creates the directories from `base` down to `dir` (`0o755`), refusing any that is a
/// symbolic link or not a directory. `base` itself is created if missing and may be a link.
fn ensure_dirs(base: &Path, dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
    let root = or_dot(base);
    if !root.is_dir() {
        builder.recursive(true).create(root)?;
        builder.recursive(false);
    }
    let rel = dir.strip_prefix(base).map_err(|_| {
        std::io::Error::other(format!("{} is not below {}", dir.display(), root.display()))
    })?;
    let mut at = root.to_path_buf();
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return Err(std::io::Error::other(format!(
                "unexpected `{}` in {}",
                c.as_os_str().to_string_lossy(),
                dir.display()
            )));
        };
        at.push(name);
        for attempt in 0..2 {
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => break,
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(std::io::Error::other(format!(
                        "{} is a symbolic link: refusing to write artifacts through it",
                        at.display()
                    )));
                }
                Ok(_) => {
                    return Err(std::io::Error::other(format!(
                        "{} is not a directory",
                        at.display()
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt == 0 => {
                    match builder.create(&at) {
                        Ok(()) => break,
                        // Created meanwhile by another writer: look again.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Writes the artifact `path` (below `base`, see the module documentation) unless it already
/// holds exactly `content`: a temporary file in the same directory, synced, then renamed over.
/// Returns whether it wrote.
pub fn write_if_changed(base: &Path, path: &Path, content: &str) -> std::io::Result<bool> {
    if read_artifact(path).is_some_and(|old| old == content.as_bytes()) {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    ensure_dirs(base, dir)?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = or_dot(dir).join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        // Exclusive: a link planted under the temporary name is never followed.
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
        let mut f = options.open(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    // The directory is not synced: a rename lost to a power cut leaves the previous artifact
    // (or none), which the next build regenerates; the file itself was synced before the
    // rename, so nobody ever reads half of one.
    Ok(true)
}

/// Removes `path`; one already gone is fine.
pub fn remove_artifact(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A temporary file left by an artifact writer that was killed: `.<artifact>.<pid>.<n>.tmp`.
/// Returns the writer's pid.
fn temporary_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (rest, n) = rest.rsplit_once('.')?;
    let (artifact, pid) = rest.rsplit_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(n) && digits(pid) && crate::walk::is_generated(artifact))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Is process `pid` running? (A pid reused by another process counts as running: its
/// temporary files are removed later, once old.)
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // Signal 0: only the existence (and permission) check.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Temporary files of writers that are gone, or older than this, are removed.
const TEMPORARY_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes, in the artifact directory `dir`, the temporary files of artifact writers that were
/// killed before renaming them (their process is gone, or they are more than an hour old).
/// Returns how many it removed. Never follows a symbolic link.
pub fn sweep_temporaries(dir: &Path) -> usize {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let own = std::process::id();
    let mut removed = 0;
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(temporary_of) else {
            continue;
        };
        if pid == own {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > TEMPORARY_MAX_AGE));
        if (old || !process_alive(pid)) && std::fs::remove_file(e.path()).is_ok() {
            tracing::debug!(
                "removed {} (left by a writer that was stopped)",
                e.path().display()
            );
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised() {
        assert_eq!(
            temporary_of(".model.__grad__.0123456789abcdef.py.4242.7.tmp"),
            Some(4242)
        );
        assert_eq!(temporary_of(".model.__grad__.py.17.0.tmp"), Some(17));
        assert_eq!(temporary_of(".model.py.17.0.tmp"), None);
        assert_eq!(temporary_of("model.__grad__.py.17.0.tmp"), None);
        assert_eq!(temporary_of(".model.__grad__.py.x.0.tmp"), None);
    }
}
