//! Helpers shared by the `build`/`check`/`cache` and `watch` tests: temporary project trees and
//! runs of the real `tangent` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A temporary project directory, removed on drop. It lives under the system temp directory,
/// outside this repository, so that the repository's own `.gitignore` does not apply to it.
pub struct Project {
    pub root: PathBuf,
}

impl Project {
    pub fn new(name: &str) -> Project {
        let root = std::env::temp_dir().join(format!("tangent-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Project { root }
    }

    /// A project with `pyproject.toml` (marks the root) and the given files.
    pub fn with_files(name: &str, files: &[(&str, &str)]) -> Project {
        let p = Project::new(name);
        p.write("pyproject.toml", "[project]\nname = \"demo\"\n");
        for (path, text) in files {
            p.write(path, text);
        }
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// Runs `tangent args...` in the project root, with a clean environment for Tangent.
    pub fn run(&self, args: &[&str]) -> Output {
        run_in(&self.root, args)
    }

    /// Every artifact file below the root, as sorted paths relative to it.
    pub fn artifacts(&self) -> Vec<String> {
        let mut v = Vec::new();
        collect(&self.root, &self.root, &mut v);
        v.sort();
        v
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            collect(root, &path, out);
        } else if e.file_name().to_string_lossy().contains(".__grad__") {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tangent"));
    c.args(args)
        .current_dir(dir)
        .env_remove("TANGENT_CACHE_DIR")
        .env_remove("RUST_LOG");
    c
}

pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    command(dir, args)
        .output()
        .expect("failed to run the tangent binary")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// The artifact name of a source beside it: `<stem>.__grad__.<16 hex of blake3>.py`.
pub fn artifact_name(stem: &str, text: &str) -> String {
    format!("{stem}.__grad__.{}.py", &tangent::source_hash(text)[..16])
}

/// What `build` must write for `text` (file name `name`): the engine's module, byte for byte.
pub fn expected_module(text: &str, name: &str, optimized: bool) -> String {
    tangent::grad_module(text, name, optimized).unwrap().source
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub const MODEL: &str =
    "import numpy as np\n\n\ndef square_sum(x, y):\n    z = x * y\n    return np.sum(z * z)\n";

pub const HELPER: &str = "import math\n\n\ndef soft(x):\n    return math.exp(x) * x\n";

/// One function the engine differentiates and one it skips (a computed function on an
/// active value).
pub const PARTLY: &str =
    "def cube(x):\n    return x * x * x\n\n\ndef apply(x, f):\n    return f(x * 2.0)\n";

/// A project of `n` modules in package `pkg` (plus `pkg/__init__.py`): each module has three
/// functions (one with a loop) and most call a function of another module of the package, so
/// gradient modules import each other's derivatives. `version` changes every tenth module.
pub fn package_modules(n: usize, version: usize) -> Vec<(String, String)> {
    let mut files = vec![("pkg/__init__.py".to_string(), String::new())];
    for i in 0..n {
        let j = (i * 7 + 3) % n;
        let (dep, call) = if j < i {
            (
                format!("from pkg.m{j} import act{j}\n"),
                format!("act{j}(z)"),
            )
        } else {
            (String::new(), "np.tanh(z)".to_string())
        };
        let scale = if i % 10 == version % 10 && version > 0 {
            format!("{}.25", i + version)
        } else {
            format!("{}.0", i + 1)
        };
        let text = format!(
            "import numpy as np\n{dep}\n\ndef act{i}(z):\n    return np.sin(z) * {scale} + z * z\n\n\n\
             def loss{i}(w, x):\n    z = w * x + {i}.5\n    y = {call} + act{i}(z)\n    return np.sum(y * y)\n\n\n\
             def step{i}(w, x, lr):\n    s = 0.0\n    for k in range(3):\n        s = s + np.exp(-w * k) * x\n    return np.sum(s) * lr\n"
        );
        files.push((format!("pkg/m{i}.py"), text));
    }
    files
}

/// `with_files` for owned file lists.
pub fn project_of(name: &str, files: &[(String, String)]) -> Project {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    Project::with_files(name, &refs)
}

/// Every artifact below the root (as `artifacts()` finds them) with its bytes.
pub fn artifact_contents(p: &Project) -> std::collections::BTreeMap<String, Vec<u8>> {
    p.artifacts()
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(p.path(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

/// Asserts that `actual` holds exactly the artifacts of `expected` (names and bytes).
pub fn assert_same_artifacts(
    actual: &std::collections::BTreeMap<String, Vec<u8>>,
    expected: &std::collections::BTreeMap<String, Vec<u8>>,
    context: &str,
) {
    let names =
        |m: &std::collections::BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    let missing: Vec<_> = names(expected)
        .into_iter()
        .filter(|k| !actual.contains_key(k))
        .collect();
    let extra: Vec<_> = names(actual)
        .into_iter()
        .filter(|k| !expected.contains_key(k))
        .collect();
    let differ: Vec<_> = expected
        .iter()
        .filter(|(k, v)| actual.get(*k).is_some_and(|a| a != *v))
        .map(|(k, _)| k.clone())
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "{context}: artifacts differ from a clean build\nmissing: {missing:?}\nextra: {extra:?}\ndifferent bytes: {differ:?}"
    );
}

/// A small deterministic generator (xorshift), seeded from the clock unless
/// `TANGENT_TEST_SEED` is set; the seed is printed so a failure can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn from_env_or_clock(test: &str) -> Rng {
        let seed = std::env::var("TANGENT_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("{test}: TANGENT_TEST_SEED={seed}");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `lo..hi` (milliseconds, say).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}
