//! The persistent artifact store: a cache of generated code keyed by content hash.
//!
//! # Why it is built the way it is
//!
//! The store is on [sled] 0.34, which is beta, unmaintained since 2021 and has reports of
//! corruption after crashes. So the store is a *verifiable cache*, never the only copy of
//! anything: every artifact can be regenerated from the source it was derived from, and
//! every rule below prefers "forget" over "serve something doubtful".
//!
//! - **Every value carries its own checksum** (blake3 of key and payload). A value whose
//!   checksum fails (half written, bit rot, a page of sled gone wrong, a value filed under the
//!   wrong key) is removed and reported as a miss.
//! - **Versions are recorded.** A metadata tree holds the engine version
//!   ([`crate::ENGINE_VERSION`]), the engine's build fingerprint
//!   ([`crate::ENGINE_FINGERPRINT`]: a hash of its source, so an engine rebuilt from changed
//!   code with the same version number counts as another engine), the recipe-set hash
//!   ([`crate::recipes::recipe_set_hash`]) and the store's own format. When any of them differs
//!   from the running engine, every artifact is dropped: a different engine never serves code
//!   another engine generated.
//! - **A store that cannot be read is rebuilt, not repaired.** When sled fails to open the
//!   directory for any reason other than the lock or the environment (permissions, full
//!   disk), or the metadata does not decode, the store logs a `tracing::warn!`, deletes sled's
//!   files and starts empty. Opening never panics: a panic inside sled while it replays a
//!   damaged log is caught and handled as corruption.
//! - **One process at a time.** sled takes an exclusive file lock. When another process (a
//!   watcher, a pytest-xdist worker) holds it, [`Store::open`] retries for at most about
//!   250 ms and then returns [`StoreError::Busy`]: the caller generates without persisting.
//!   Within one process, open the store once and share it (`Store` is `Send + Sync`).
//! - **Environment problems are errors, not corruption.** A read-only or permission-denied
//!   directory gives [`StoreError::Io`] with the path in the message; nothing is deleted.
//! - **Unflushed writes may be lost** on SIGKILL (sled flushes every 500 ms and on
//!   [`Store::flush`]). That is acceptable for a cache; call `flush` before exiting.
//!
//! Deleting a store only ever removes the files sled itself creates (`conf`, `db`, `blobs/`,
//! `snap.*`), so a cache directory pointed at a shared folder by mistake loses nothing else.
//!
//! **Permissions.** A directory the store creates is private to the user (`0o700` on Unix,
//! whatever the umask), and sled's files in it lose any group or world write permission when
//! the store is opened and flushed: a cache holds code that gets written into the project, so
//! nobody else may plant entries in it.

use std::fmt;
use std::fs;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Name of the sled tree that holds the recorded versions.
#[doc(hidden)]
pub const META_TREE: &str = "meta";
/// Name of the sled tree that holds the artifacts.
#[doc(hidden)]
pub const ARTIFACT_TREE: &str = "artifacts";

/// Metadata keys.
const META_ENGINE: &[u8] = b"engine_version";
const META_BUILD: &[u8] = b"engine_build";
const META_RECIPES: &[u8] = b"recipe_hash";
const META_FORMAT: &[u8] = b"format";

/// Version of the value encoding below; changing it drops every artifact.
const FORMAT: &str = "1";

/// Length of the checksum that prefixes every stored value.
const CHECKSUM_LEN: usize = 32;

/// Pauses between attempts to take sled's lock: about 200 ms in all, then `Busy`.
const LOCK_RETRY_DELAYS_MS: [u64; 4] = [20, 40, 60, 80];

/// sled's page cache limit: artifacts are small text and the OS caches the file anyway.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// Why the store could not be opened or written.
#[derive(Debug)]
pub enum StoreError {
    /// Another process holds the store's lock. Work without persisting.
    Busy,
    /// The file system refused (permission denied, read-only, disk full...). The message
    /// names the directory.
    Io(io::Error),
    /// sled reported something that is neither an IO error nor the lock (a write into a store
    /// it has declared broken, an internal error).
    Backend(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Busy => write!(f, "the artifact store is in use by another process"),
            StoreError::Io(e) => write!(f, "{e}"),
            StoreError::Backend(msg) => write!(f, "artifact store error: {msg}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io(e) => e
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            _ => None,
        }
    }
}

/// What [`Store::stats`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStats {
    /// Number of artifacts (including any not yet verified by a `get`).
    pub entries: usize,
    /// Space the store's files take on disk (what deleting the directory would free).
    pub bytes: u64,
    /// The store's directory.
    pub dir: PathBuf,
    /// Engine version recorded in the store (always the running engine's once open).
    pub engine_version: String,
    /// Engine build fingerprint recorded in the store (always the running engine's once open).
    pub engine_build: String,
    /// Recipe-set hash recorded in the store (always the running engine's once open).
    pub recipe_hash: String,
}

/// The persistent artifact store. See the [module documentation](self) for its rules.
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    artifacts: sled::Tree,
    dir: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The cache directory: `TANGENT_CACHE_DIR` when it is set (and not empty), else
/// `<project_root>/.tangent/cache`.
pub fn default_cache_dir(project_root: &Path) -> PathBuf {
    match std::env::var_os("TANGENT_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => project_root.join(".tangent").join("cache"),
    }
}

/// A store key: blake3 of the parts, each prefixed with its length (as a little-endian
/// `u64`), so that `("ab", "c")` and `("a", "bc")` give different keys.
pub fn key(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for part in parts {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    *h.finalize().as_bytes()
}

/// Why one attempt to open sled failed.
enum OpenFailure {
    /// Another process (or another handle in this one) holds the lock.
    Locked,
    /// The environment refused: report it, delete nothing.
    Io(io::Error),
    /// The files are not a store sled can read: rebuild.
    Corrupt(String),
}

/// Why a freshly opened store could not be used.
enum AttachFailure {
    /// The metadata does not decode: rebuild.
    Corrupt(String),
    Error(StoreError),
}

impl Store {
    /// Opens (creating if needed) the store in `dir`. See the [module documentation](self)
    /// for what happens to stale, corrupted and locked stores.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(dir)
            .map_err(|e| io_error(dir, "cannot create the artifact store directory", e))?;
        let reason = match open_db(dir)? {
            Ok(db) => match Store::attach(db, dir) {
                Ok(store) => return Ok(store),
                Err(AttachFailure::Error(e)) => return Err(e),
                Err(AttachFailure::Corrupt(reason)) => reason,
            },
            Err(reason) => reason,
        };
        tracing::warn!(
            dir = %dir.display(),
            "the artifact store is unreadable ({reason}); deleting it and starting empty"
        );
        reset_dir(dir)?;
        match open_db(dir)? {
            Ok(db) => match Store::attach(db, dir) {
                Ok(store) => Ok(store),
                Err(AttachFailure::Error(e)) => Err(e),
                Err(AttachFailure::Corrupt(reason)) => Err(StoreError::Backend(format!(
                    "the artifact store in {} is unreadable even after rebuilding it: {reason}",
                    dir.display()
                ))),
            },
            Err(reason) => Err(StoreError::Backend(format!(
                "the artifact store in {} is unreadable even after rebuilding it: {reason}",
                dir.display()
            ))),
        }
    }

    /// Opens the trees and checks the recorded versions, dropping every artifact when they
    /// differ from the running engine's.
    fn attach(db: sled::Db, dir: &Path) -> Result<Store, AttachFailure> {
        let failure = |e: sled::Error| match classify(e) {
            OpenFailure::Locked => AttachFailure::Error(StoreError::Busy),
            OpenFailure::Io(e) => AttachFailure::Error(StoreError::Io(e)),
            OpenFailure::Corrupt(reason) => AttachFailure::Corrupt(reason),
        };
        let meta = db.open_tree(META_TREE).map_err(failure)?;
        let artifacts = db.open_tree(ARTIFACT_TREE).map_err(failure)?;
        let store = Store {
            db,
            meta,
            artifacts,
            dir: dir.to_path_buf(),
        };
        let engine = crate::ENGINE_VERSION;
        let build = crate::ENGINE_FINGERPRINT;
        let recipes = crate::recipes::recipe_set_hash();
        let recorded_engine = store
            .meta_text(META_ENGINE)
            .map_err(AttachFailure::Corrupt)?;
        let recorded_build = store
            .meta_text(META_BUILD)
            .map_err(AttachFailure::Corrupt)?;
        let recorded_recipes = store
            .meta_text(META_RECIPES)
            .map_err(AttachFailure::Corrupt)?;
        let recorded_format = store
            .meta_text(META_FORMAT)
            .map_err(AttachFailure::Corrupt)?;
        let current = recorded_engine.as_deref() == Some(engine)
            && recorded_build.as_deref() == Some(build)
            && recorded_recipes.as_deref() == Some(recipes.as_str())
            && recorded_format.as_deref() == Some(FORMAT);
        if !current {
            if recorded_engine.is_some() || !store.artifacts.is_empty() {
                tracing::info!(
                    dir = %dir.display(),
                    recorded_engine = recorded_engine.as_deref().unwrap_or("none"),
                    recorded_build = recorded_build.as_deref().unwrap_or("none"),
                    engine,
                    build,
                    "the artifact store was written by another engine or recipe set; dropping its artifacts"
                );
            }
            // Artifacts first, versions last: a crash in between leaves the old versions
            // recorded, so the next open drops again.
            let write = || -> sled::Result<()> {
                store.artifacts.clear()?;
                store.meta.insert(META_ENGINE, engine.as_bytes())?;
                store.meta.insert(META_BUILD, build.as_bytes())?;
                store.meta.insert(META_RECIPES, recipes.as_bytes())?;
                store.meta.insert(META_FORMAT, FORMAT.as_bytes())?;
                store.db.flush()?;
                Ok(())
            };
            write().map_err(|e| AttachFailure::Error(write_error(dir, e)))?;
        }
        restrict_files(dir);
        Ok(store)
    }

    /// A metadata record as text; `Err` when it exists but does not decode.
    fn meta_text(&self, key: &[u8]) -> Result<Option<String>, String> {
        match self.meta.get(key) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => match std::str::from_utf8(&bytes) {
                Ok(text) => Ok(Some(text.to_string())),
                Err(_) => Err(format!(
                    "metadata record `{}` does not decode",
                    String::from_utf8_lossy(key)
                )),
            },
            Err(e) => Err(format!(
                "cannot read metadata record `{}`: {e}",
                String::from_utf8_lossy(key)
            )),
        }
    }

    /// The artifact stored under `key`, if there is one and its checksum holds. A value that
    /// fails its checksum is removed and reported as a miss; so is any read error.
    pub fn get(&self, key: &[u8; 32]) -> Option<String> {
        let raw = match self.artifacts.get(key) {
            Ok(raw) => raw?,
            Err(e) => {
                // Once per process: a broken store would otherwise warn for every artifact.
                static WARNED: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(dir = %self.dir.display(), "cannot read the artifact store: {e}");
                }
                return None;
            }
        };
        if let Some(text) = decode(key, &raw) {
            return Some(text.to_string());
        }
        tracing::warn!(
            dir = %self.dir.display(),
            key = %hex(key),
            "an artifact failed its checksum; removing it"
        );
        // Remove only the bad value, not one another thread has just written.
        match self
            .artifacts
            .compare_and_swap(key, Some(raw), None as Option<&[u8]>)
        {
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), "cannot remove a corrupted artifact: {e}")
            }
        }
        None
    }

    /// Stores `value` under `key` (with its checksum). Not durable until the next flush
    /// (sled flushes every 500 ms; see [`Store::flush`]).
    pub fn put(&self, key: &[u8; 32], value: &str) -> Result<(), StoreError> {
        self.artifacts
            .insert(key, encode(key, value.as_bytes()))
            .map(|_| ())
            .map_err(|e| write_error(&self.dir, e))
    }

    /// Writes everything to disk. Call before the process exits; errors are logged (losing
    /// cache entries is harmless).
    pub fn flush(&self) {
        if let Err(e) = self.db.flush() {
            tracing::warn!(dir = %self.dir.display(), "cannot flush the artifact store: {e}; going on (entries not yet on disk are generated again next time)");
        }
        restrict_files(&self.dir);
    }

    /// Number of entries, size on disk, directory and recorded versions.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            entries: self.artifacts.len(),
            bytes: self.db.size_on_disk().unwrap_or(0),
            dir: self.dir.clone(),
            engine_version: self
                .meta_text(META_ENGINE)
                .ok()
                .flatten()
                .unwrap_or_default(),
            engine_build: self
                .meta_text(META_BUILD)
                .ok()
                .flatten()
                .unwrap_or_default(),
            recipe_hash: self
                .meta_text(META_RECIPES)
                .ok()
                .flatten()
                .unwrap_or_default(),
        }
    }

    /// Removes every artifact (the recorded versions stay) and flushes.
    pub fn clear(&self) -> Result<(), StoreError> {
        self.artifacts
            .clear()
            .map_err(|e| write_error(&self.dir, e))?;
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| write_error(&self.dir, e))
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records other versions in the metadata tree, as an older engine would have: the next
    /// [`Store::open`] must drop every artifact. For tests.
    #[doc(hidden)]
    pub fn set_recorded_versions_for_tests(
        &self,
        engine_version: &str,
        recipe_hash: &str,
    ) -> Result<(), StoreError> {
        self.meta
            .insert(META_ENGINE, engine_version.as_bytes())
            .map_err(|e| write_error(&self.dir, e))?;
        self.meta
            .insert(META_RECIPES, recipe_hash.as_bytes())
            .map_err(|e| write_error(&self.dir, e))?;
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| write_error(&self.dir, e))
    }

    /// Records another engine build fingerprint, as an engine rebuilt from other code (same
    /// version number) would have: the next [`Store::open`] must drop every artifact. For tests.
    #[doc(hidden)]
    pub fn set_recorded_build_for_tests(&self, fingerprint: &str) -> Result<(), StoreError> {
        self.meta
            .insert(META_BUILD, fingerprint.as_bytes())
            .map_err(|e| write_error(&self.dir, e))?;
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| write_error(&self.dir, e))
    }

    /// Every key with bytes stored under it, verified or not. For tests.
    #[doc(hidden)]
    pub fn keys_for_tests(&self) -> Vec<[u8; 32]> {
        self.artifacts
            .iter()
            .keys()
            .filter_map(|k| k.ok())
            .filter_map(|k| k.as_ref().try_into().ok())
            .collect()
    }

    /// The bytes stored under `key`, unverified. For tests.
    #[doc(hidden)]
    pub fn raw_get_for_tests(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        self.artifacts.get(key).ok().flatten().map(|v| v.to_vec())
    }

    /// Stores `bytes` under `key` exactly as given (no checksum added), to plant corrupted
    /// values. For tests.
    #[doc(hidden)]
    pub fn raw_put_for_tests(&self, key: &[u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        self.artifacts
            .insert(key, bytes)
            .map(|_| ())
            .map_err(|e| write_error(&self.dir, e))
    }

    /// Whether any bytes at all are stored under `key`, verified or not. For tests.
    #[doc(hidden)]
    pub fn contains_raw_for_tests(&self, key: &[u8; 32]) -> bool {
        matches!(self.artifacts.contains_key(key), Ok(true))
    }

    /// The stored encoding of `value` under `key`. For tests.
    #[doc(hidden)]
    pub fn encode_for_tests(key: &[u8; 32], value: &str) -> Vec<u8> {
        encode(key, value.as_bytes())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // sled flushes on drop too, but say so explicitly: a cache that is never flushed is
        // a cache that is never there.
        let _ = self.db.flush();
    }
}

/// `checksum || payload`, the checksum covering the key too so that a value can never be
/// served under another key.
fn encode(key: &[u8; 32], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHECKSUM_LEN + payload.len());
    out.extend_from_slice(checksum(key, payload).as_bytes());
    out.extend_from_slice(payload);
    out
}

fn decode<'a>(key: &[u8; 32], raw: &'a [u8]) -> Option<&'a str> {
    if raw.len() < CHECKSUM_LEN {
        return None;
    }
    let (sum, payload) = raw.split_at(CHECKSUM_LEN);
    // blake3::Hash compares in constant time; timing does not matter here, equality does.
    if checksum(key, payload) != blake3::Hash::from_bytes(sum.try_into().ok()?) {
        return None;
    }
    std::str::from_utf8(payload).ok()
}

fn checksum(key: &[u8; 32], payload: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(key);
    h.update(payload);
    h.finalize()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens sled in `dir`, retrying briefly while another process holds the lock. The outer
/// `Err` is final (busy, environment); the inner `Err` means "corrupted: rebuild".
fn open_db(dir: &Path) -> Result<Result<sled::Db, String>, StoreError> {
    let mut delays = LOCK_RETRY_DELAYS_MS.iter();
    loop {
        match open_db_once(dir) {
            Ok(db) => return Ok(Ok(db)),
            Err(OpenFailure::Corrupt(reason)) => return Ok(Err(reason)),
            Err(OpenFailure::Io(e)) => {
                return Err(io_error(dir, "cannot open the artifact store", e));
            }
            Err(OpenFailure::Locked) => match delays.next() {
                Some(ms) => std::thread::sleep(Duration::from_millis(*ms)),
                None => return Err(StoreError::Busy),
            },
        }
    }
}

fn open_db_once(dir: &Path) -> Result<sled::Db, OpenFailure> {
    let config = sled::Config::new().path(dir).cache_capacity(CACHE_CAPACITY);
    // sled may panic while replaying a damaged log; that is corruption, not a crash of ours.
    match panic::catch_unwind(AssertUnwindSafe(|| config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(classify(e)),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string());
            Err(OpenFailure::Corrupt(format!(
                "sled panicked while opening: {msg}"
            )))
        }
    }
}

/// Sorts a sled error into lock / environment / corruption.
fn classify(e: sled::Error) -> OpenFailure {
    match e {
        sled::Error::Io(io) => {
            let msg = io.to_string();
            if msg.contains("could not acquire lock") {
                // sled wraps the lock error in `ErrorKind::Other`; only `WouldBlock` (or
                // Windows' lock violation, code 33) means "someone else has it". Any other lock failure (no locks on this file
                // system...) is the environment's: never delete a store over it.
                if msg.contains("WouldBlock")
                    || msg.contains("os error 11")
                    || msg.contains("code: 33")
                {
                    OpenFailure::Locked
                } else {
                    OpenFailure::Io(io)
                }
            } else if is_environment(io.kind()) {
                OpenFailure::Io(io)
            } else {
                OpenFailure::Corrupt(msg)
            }
        }
        other => OpenFailure::Corrupt(other.to_string()),
    }
}

/// IO errors that say "this machine refuses", not "these files are damaged".
fn is_environment(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        PermissionDenied
            | ReadOnlyFilesystem
            | StorageFull
            | QuotaExceeded
            | OutOfMemory
            | NotADirectory
            | ResourceBusy
            | WouldBlock
            | TimedOut
            | Interrupted
            | FileTooLarge
    )
}

/// An IO error whose message names the directory and what was being done.
fn io_error(dir: &Path, doing: &str, e: io::Error) -> StoreError {
    StoreError::Io(io::Error::new(
        e.kind(),
        format!("{doing} in {}: {e}", dir.display()),
    ))
}

fn write_error(dir: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => io_error(dir, "cannot write the artifact store", io),
        other => StoreError::Backend(format!(
            "cannot write the artifact store in {}: {other}",
            dir.display()
        )),
    }
}

/// Deletes sled's files in `dir` (and nothing else), holding sled's lock while doing so, so
/// that a process that opens the store meanwhile cannot have its files removed under it.
fn reset_dir(dir: &Path) -> Result<(), StoreError> {
    let db_path = dir.join("db");
    let lock = match fs::OpenOptions::new().read(true).write(true).open(&db_path) {
        Ok(file) => {
            // A handle of this process dropped a moment ago may still hold the lock while
            // sled's background threads wind down: retry like `open_db` does.
            let mut delays = LOCK_RETRY_DELAYS_MS.iter();
            loop {
                match file.try_lock() {
                    Ok(()) => break Some(file),
                    Err(fs::TryLockError::WouldBlock) => match delays.next() {
                        Some(ms) => std::thread::sleep(Duration::from_millis(*ms)),
                        None => return Err(StoreError::Busy),
                    },
                    Err(fs::TryLockError::Error(e)) => {
                        return Err(io_error(
                            dir,
                            "cannot lock the artifact store to rebuild it",
                            e,
                        ));
                    }
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(io_error(
                dir,
                "cannot open the artifact store to rebuild it",
                e,
            ));
        }
    };
    let remove = |path: &Path| -> Result<(), StoreError> {
        let result = if path.is_dir() && !path.is_symlink() {
            fs::remove_dir_all(path)
        } else {
            fs::remove_file(path)
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(
                dir,
                "cannot delete the unreadable artifact store",
                e,
            )),
        }
    };
    remove(&dir.join("conf"))?;
    remove(&dir.join("blobs"))?;
    let entries = fs::read_dir(dir)
        .map_err(|e| io_error(dir, "cannot list the artifact store directory", e))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("snap.") {
            remove(&entry.path())?;
        }
    }
    // Last, and after releasing the lock (Windows cannot delete a file that is open).
    drop(lock);
    remove(&db_path)
}

/// Creates `dir` and its missing parents, private to the user (`0o700` on Unix whatever the
/// umask). A directory that exists keeps its mode: the user chose it.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Takes group and world write permission off sled's files in `dir` (they are created with
/// the process's umask, which may be 0). Errors are ignored: this only ever removes rights.
fn restrict_files(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let restrict = |path: &Path| {
            // Never through a symbolic link: only sled's own files are touched.
            if let Ok(meta) = fs::symlink_metadata(path)
                && !meta.file_type().is_symlink()
                && meta.permissions().mode() & 0o022 != 0
            {
                let _ = fs::set_permissions(
                    path,
                    fs::Permissions::from_mode(meta.permissions().mode() & !0o022),
                );
            }
        };
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "conf" || name == "db" || name.starts_with("snap.") {
                restrict(&entry.path());
            } else if name == "blobs" {
                restrict(&entry.path());
                if let Ok(blobs) = fs::read_dir(entry.path()) {
                    for blob in blobs.flatten() {
                        restrict(&blob.path());
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}
