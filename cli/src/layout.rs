//! Where artifacts go, and writing them safely.
//!
//! Beside the source (the import hook keeps its own files in `__tangent__/imports/`, which
//! builds leave alone):
//! `<dir>/__tangent__/<stem>.__grad__.<first 16 hex of the source hash>.py`.
//! With `--out DIR`, a mirrored tree with stable names: `DIR/<rel dir>/<stem>.__grad__.py`.

use std::io::Write;
use std::path::{Path, PathBuf};
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
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..n]);
    head.lines()
        .next()
        .is_some_and(|l| l.contains(&format!("{}{hash}", tangent::SOURCE_HASH_MARKER)))
}

/// `(stem, path)` of each `<stem>.__grad__.<16 hex>.py` in `dir`.
fn artifacts_in(dir: &Path) -> Vec<(String, PathBuf)> {
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
            (ok && !stem.is_empty()).then(|| (stem.to_string(), e.path()))
        })
        .collect();
    v.sort();
    v
}

/// Writes `content` to `path` unless it already holds exactly that: a temporary file in the
/// same directory, synced, then renamed over. Returns whether it wrote.
pub fn write_if_changed(path: &Path, content: &str) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(false);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
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
