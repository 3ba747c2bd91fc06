//! The artifact cache (the sled store of `tangent::store`) as the commands use it, and the
//! `tangent cache stats|clear` command.
//!
//! The store is a cache: when another process holds it (a running `tangent watch`) or it
//! cannot be written, the commands warn once and carry on without it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::store::{self, Store, StoreError};

pub struct Cache {
    store: Option<std::sync::Arc<Store>>,
    dir: PathBuf,
}

impl Cache {
    /// Opens the store in `dir`, or a cache that remembers nothing (with a warning).
    pub fn open(dir: &Path) -> Cache {
        let store = match Store::open(dir) {
            Ok(s) => Some(std::sync::Arc::new(s)),
            Err(StoreError::Busy) => {
                tracing::warn!(
                    "the cache at {} is in use by another process (a running `tangent watch`?); going on without it",
                    dir.display()
                );
                None
            }
            Err(e) => {
                tracing::warn!(
                    "cannot open the cache at {}: {e}; going on without it",
                    dir.display()
                );
                None
            }
        };
        Cache {
            store,
            dir: dir.to_path_buf(),
        }
    }

    /// A cache that remembers nothing.
    pub fn none(dir: &Path) -> Cache {
        Cache {
            store: None,
            dir: dir.to_path_buf(),
        }
    }

    /// The store itself, for the engine's per-function artifacts.
    pub fn shared(&self) -> Option<std::sync::Arc<Store>> {
        self.store.clone()
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<String> {
        self.store.as_ref()?.get(key)
    }

    /// Stores `value`; on the first failure, warns and stops using the store.
    pub fn put(&mut self, key: &[u8; 32], value: &str) {
        if let Some(Err(e)) = self.store.as_ref().map(|s| s.put(key, value)) {
            self.disable(&e);
        }
    }

    /// Writes the store to disk (failures are logged by the store: losing entries is harmless).
    pub fn flush(&self) {
        if let Some(s) = &self.store {
            s.flush();
        }
    }

    fn disable(&mut self, e: &StoreError) {
        tracing::warn!(
            "cannot write the cache at {}: {e}; going on without it",
            self.dir.display()
        );
        self.store = None;
    }
}

#[derive(clap::Subcommand)]
pub enum CacheCommand {
    /// Entries, size, location and engine version of the cache.
    Stats(CacheArgs),
    /// Remove every entry of the cache.
    Clear(CacheArgs),
}

#[derive(clap::Args)]
pub struct CacheArgs {
    /// The cache directory (default: TANGENT_CACHE_DIR, `[tool.tangent] cache-dir`, or
    /// `<project root>/.tangent/cache`).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

/// The cache directory: the flag, else TANGENT_CACHE_DIR, else `[tool.tangent] cache-dir`, else
/// `<project root>/.tangent/cache`.
pub fn cache_dir(flag: Option<&Path>, config: &crate::config::Config) -> PathBuf {
    if let Some(dir) = flag {
        return crate::config::absolute(dir);
    }
    if let Some(dir) = std::env::var_os("TANGENT_CACHE_DIR").filter(|d| !d.is_empty()) {
        return crate::config::absolute(Path::new(&dir));
    }
    if let Some(dir) = &config.cache_dir {
        return dir.clone();
    }
    store::default_cache_dir(&config.project_root)
}

/// The first directory from `root` (excluded) down to `dir` that is a symbolic link, if any
/// (`dir` not below `root`: none). A cache directory the repository chose (the default
/// `.tangent/cache`, or `cache-dir` in pyproject.toml) is not used through one: a link planted in
/// a repository must not make builds write, or delete, the store's files somewhere else.
pub fn linked_component(root: &Path, dir: &Path) -> Option<PathBuf> {
    let rel = dir.strip_prefix(root).ok()?;
    let mut at = root.to_path_buf();
    for c in rel.components() {
        at.push(c);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(at);
        }
    }
    None
}

pub fn run(command: &CacheCommand) -> ExitCode {
    let args = match command {
        CacheCommand::Stats(a) | CacheCommand::Clear(a) => a,
    };
    let config = match crate::config::load(&crate::config::start_dir(&[])) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = cache_dir(args.cache_dir.as_deref(), &config);
    let store = match Store::open(&dir) {
        Ok(s) => s,
        Err(StoreError::Busy) => {
            eprintln!(
                "error: the cache at {} is in use by another process (a running `tangent watch`?)",
                dir.display()
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("error: cannot open the cache at {}: {e}", dir.display());
            return ExitCode::from(1);
        }
    };
    match command {
        CacheCommand::Stats(_) => {
            let stats = store.stats();
            println!("dir: {}", stats.dir.display());
            println!("entries: {}", stats.entries);
            println!("size: {} ({} bytes)", human(stats.bytes), stats.bytes);
            println!("engine version: {}", stats.engine_version);
            println!("engine build: {}", stats.engine_build);
            println!("recipe hash: {}", stats.recipe_hash);
            ExitCode::SUCCESS
        }
        CacheCommand::Clear(_) => {
            let before = store.stats().entries;
            match store.clear() {
                Ok(()) => {
                    println!("cleared {before} entries from {}", dir.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot clear the cache at {}: {e}", dir.display());
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn human(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
