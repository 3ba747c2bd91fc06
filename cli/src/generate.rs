//! One source file to its gradient module, through the cache.
//!
//! The cache key holds no path: the engine (version and build fingerprint), the recipe set, the options, the file name
//! and the source text. The engine is given the file name only (it appears in the generated
//! header), so the same source gives byte-identical artifacts in any directory, on any machine.

use std::path::Path;
use std::sync::Mutex;

use tangent::Diagnostic;

use crate::cache::Cache;
use crate::store;

/// A generated (or reused) gradient module.
#[derive(Debug, Clone)]
pub struct Module {
    pub source: String,
    /// blake3 of the module's source text, hex.
    pub hash: String,
    /// Functions that could not be differentiated, with a one-line reason.
    pub skipped: Vec<(String, String)>,
    /// Taken from the cache rather than generated.
    pub reused: bool,
    /// Names the source defines more than once at its top level (the module differentiates
    /// the last definition of each).
    pub redefined: Vec<tangent::db::Redefinition>,
}

/// Why a source file produced no module.
#[derive(Debug, Clone)]
pub enum FileError {
    /// Unreadable, not UTF-8, vanished: a one-line reason.
    Read(String),
    /// The engine's diagnostic (a syntax error), pointing at the real path.
    Engine(Box<Diagnostic>),
    /// The artifact could not be written.
    Write(String),
}

impl FileError {
    /// `path: reason` (one line), or the rendered diagnostic.
    pub fn render(&self, path: &Path) -> String {
        match self {
            FileError::Read(r) | FileError::Write(r) => {
                format!(
                    "error[{}]: {}: {r}\n",
                    tangent::DiagnosticKind::Io,
                    path.display()
                )
            }
            FileError::Engine(d) => d.render(),
        }
    }
}

/// Reads a source file as UTF-8 text.
pub fn read_source(path: &Path) -> Result<String, FileError> {
    let bytes = std::fs::read(path).map_err(|e| {
        FileError::Read(match e.kind() {
            std::io::ErrorKind::NotFound if path.symlink_metadata().is_ok() => {
                "cannot read: it is a broken symbolic link".to_string()
            }
            std::io::ErrorKind::NotFound => "vanished during the build".to_string(),
            _ => format!("cannot read: {e}"),
        })
    })?;
    // Not UTF-8 or too large: a diagnostic with its code, like the engine's.
    tangent::parse::decode(bytes, &path.display().to_string())
        .map_err(|d| FileError::Engine(Box::new(d)))
}

pub struct Generator {
    cache: Mutex<Cache>,
    optimize: bool,
    recipe_hash: String,
    /// The project's shared recipes (`[tool.tangent] recipes`).
    shared: Option<std::sync::Arc<tangent::recipes::ProjectRecipes>>,
}

/// The options part of the cache key (shared with the import hook's keys).
fn options_tag(optimize: bool) -> &'static [u8] {
    if optimize {
        b"optimize=1"
    } else {
        b"optimize=0"
    }
}

/// Prefix of the key under which the skipped functions of a module are kept.
const SKIPPED_KEY: &[u8] = b"tangent-cli/skipped-functions/v1";

impl Generator {
    pub fn new(
        cache: Cache,
        optimize: bool,
        shared: Option<std::sync::Arc<tangent::recipes::ProjectRecipes>>,
    ) -> Generator {
        let mut generator = Generator {
            cache: Mutex::new(cache),
            optimize,
            recipe_hash: String::new(),
            shared: None,
        };
        generator.set_shared_recipes(shared);
        generator
    }

    /// Replaces the project's shared recipes (a recipe file changed under `watch`).
    pub fn set_shared_recipes(
        &mut self,
        shared: Option<std::sync::Arc<tangent::recipes::ProjectRecipes>>,
    ) {
        // The shared recipes are part of what every module's code depends on.
        self.recipe_hash = match &shared {
            Some(r) => format!("{}+{}", tangent::recipes::recipe_set_hash(), r.hash),
            None => tangent::recipes::recipe_set_hash(),
        };
        self.shared = shared;
    }

    /// The file name is part of the key (the generated header names it), the path is not.
    fn keys(&self, file_name: &str, text: &str) -> ([u8; 32], [u8; 32]) {
        let parts: [&[u8]; 5] = [
            tangent::engine_id().as_bytes(),
            self.recipe_hash.as_bytes(),
            options_tag(self.optimize),
            file_name.as_bytes(),
            text.as_bytes(),
        ];
        let module = store::key(&parts);
        let mut skipped_parts = vec![SKIPPED_KEY];
        skipped_parts.extend_from_slice(&parts);
        (module, store::key(&skipped_parts))
    }

    /// The gradient module of `text`, the contents of the file `path`.
    ///
    /// Calls into other modules of the project resolve (their derivatives are imported), so
    /// the cache key also covers the sources of the project modules this one imports.
    pub fn module(&self, path: &Path, text: &str) -> Result<Module, FileError> {
        let hash = tangent::source_hash(text);
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        let (module_name, root) = tangent::module_location(path);
        let roots = [root];
        let loaded = tangent::ProjectModule::load(text, &file_name, &module_name, &roots)
            .with_recipes(self.shared.clone());
        let dependencies = loaded.dependencies();
        let redefined = loaded.redefinitions();
        let context: String = std::iter::once(format!("module={module_name}\n"))
            .chain(dependencies.iter().map(|(m, h)| format!("{m}={h}\n")))
            .collect();
        let keyed_text = format!("{context}\0{text}");
        let (module_key, skipped_key) = self.keys(&file_name, &keyed_text);
        if let Some(m) = self.cached(&module_key, &skipped_key, &hash) {
            tracing::debug!("{}: reused from the cache", path.display());
            return Ok(Module { redefined, ..m });
        }
        let store = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shared();
        // The engine recurses once per level of nesting: give it the stack its limits assume
        // (build threads have small stacks).
        let generated = tangent::parse::with_stack(|| loaded.grad_module(self.optimize, store))
            .map_err(|mut d| {
                d.path = path.display().to_string();
                FileError::Engine(Box::new(d))
            })?;
        let skipped: Vec<(String, String)> = generated
            .skipped
            .iter()
            .map(|(f, d)| (f.clone(), one_line(d)))
            .collect();
        let encoded: String = skipped.iter().map(|(f, r)| format!("{f}\t{r}\n")).collect();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.put(&skipped_key, &encoded);
        cache.put(&module_key, &generated.source);
        Ok(Module {
            source: generated.source,
            hash,
            skipped,
            reused: false,
            redefined,
        })
    }

    fn cached(&self, module_key: &[u8; 32], skipped_key: &[u8; 32], hash: &str) -> Option<Module> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let source = cache.get(module_key)?;
        // A cache can be damaged: the entry must name the source it was made from.
        let first = source.lines().next()?;
        if !first.contains(&format!("{}{hash}", tangent::SOURCE_HASH_MARKER)) {
            tracing::debug!("cache entry does not match its source hash; regenerating");
            return None;
        }
        let skipped = cache
            .get(skipped_key)?
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(f, r)| (f.to_string(), r.to_string()))
            .collect();
        Some(Module {
            source,
            hash: hash.to_string(),
            skipped,
            reused: true,
            redefined: Vec::new(),
        })
    }

    pub fn flush(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }
}

/// `line N: message [kind]` on one line.
fn one_line(d: &Diagnostic) -> String {
    let message = d.message.split_whitespace().collect::<Vec<_>>().join(" ");
    if d.line > 0 {
        format!("line {}: {message} [{}]", d.line, d.kind.as_str())
    } else {
        format!("{message} [{}]", d.kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_vanished_is_reported_as_such() {
        let dir = std::env::temp_dir().join(format!("tangent-vanished-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("gone.py");
        std::fs::write(&path, "def f(x):\n    return x\n").unwrap();
        std::fs::remove_file(&path).unwrap(); // between the walk and the read
        match read_source(&path) {
            Err(FileError::Read(reason)) => assert!(reason.contains("vanished"), "{reason}"),
            other => panic!("expected a read error, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_non_utf8_file_is_reported_with_the_offset() {
        let dir = std::env::temp_dir().join(format!("tangent-latin1-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("latin1.py");
        std::fs::write(&path, b"x = '\xe9'\n").unwrap();
        match read_source(&path) {
            Err(FileError::Engine(d)) => {
                assert!(
                    d.message.contains("UTF-8") && d.message.contains("offset 5"),
                    "{}",
                    d.message
                );
                assert_eq!(
                    (d.kind, d.line, d.column),
                    (tangent::DiagnosticKind::InvalidInput, 1, 6)
                );
            }
            other => panic!("expected a diagnostic, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
