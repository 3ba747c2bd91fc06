//! Compiles the recipe templates in `recipes/` into the engine: each `*.py` file is embedded
//! with `include_str!`, in sorted order so builds are reproducible.
//!
//! Also computes the engine's *build fingerprint* (`TANGENT_ENGINE_FINGERPRINT`, read by
//! `tangent::ENGINE_FINGERPRINT`): a hash of everything that decides what the engine generates
//! (`src/**/*.rs`, `recipes/*.py`, this file, `Cargo.toml` and `Cargo.lock`). Caches key on it,
//! so an engine rebuilt from changed code never serves what the old code generated, even when
//! the version number (`CARGO_PKG_VERSION`) stayed the same. The same files give the same
//! fingerprint on any machine (paths are taken relative to the crate, contents as bytes), so a
//! cache copied between checkouts of one commit is still used.

use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("recipes");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "py"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code = String::from("pub static RECIPE_FILES: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_string_lossy();
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("recipe_files.rs");
    fs::write(out, code).unwrap();

    println!(
        "cargo:rustc-env=TANGENT_ENGINE_FINGERPRINT={}",
        fingerprint(root)
    );
}

/// A 128-bit FNV-1a hash of the engine's inputs: each file as (relative path, length,
/// contents), in sorted order. Not cryptographic: it tells engine builds apart, it does not
/// defend against anyone (whoever can edit the engine's source can change its output anyway).
fn fingerprint(root: &Path) -> String {
    let mut inputs: Vec<PathBuf> = Vec::new();
    collect(&root.join("src"), "rs", &mut inputs);
    collect(&root.join("recipes"), "py", &mut inputs);
    inputs.extend(["build.rs", "Cargo.toml", "Cargo.lock"].map(|f| root.join(f)));
    // A directory is scanned recursively by cargo for changes (new files included).
    for watched in ["src", "build.rs", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let mut records: Vec<(String, Vec<u8>)> = inputs
        .iter()
        .filter_map(|p| {
            let bytes = fs::read(p).ok()?;
            let rel = p
                .strip_prefix(root)
                .unwrap_or(p)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            Some((rel, bytes))
        })
        .collect();
    records.sort();
    let mut h = Fnv128::new();
    for (rel, bytes) in &records {
        h.update(&(rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    format!("{:032x}", h.0)
}

fn collect(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect(&path, ext, out),
            Ok(t) if t.is_file() && path.extension().is_some_and(|x| x == ext) => out.push(path),
            _ => {}
        }
    }
}

struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;

    fn new() -> Self {
        Fnv128(Self::OFFSET)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u128;
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }
}
