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
