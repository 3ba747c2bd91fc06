//! Project settings: the project root and `[tool.tangent]` of the nearest pyproject.toml.
//!
//! Keys: `out` (directory), `cache-dir` (directory), `optimize` (bool), `exclude` (list of
//! glob patterns), `recipes` (list of recipe files shared by the project). Relative paths are
//! relative to the pyproject.toml that names them.
//! Command-line flags win over these.
//!
//! `out` and `cache-dir` are where `build` writes: in `pyproject.toml` (which comes with the
//! repository, so possibly from someone else) they must name a directory inside the directory
//! of that `pyproject.toml` (no absolute path, no `..` leading out of it); a usage error
//! otherwise. `--out`, `--cache-dir` and `TANGENT_CACHE_DIR` (the user's own choice) may name
//! any directory.

use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone)]
pub struct Config {
    /// Nearest ancestor holding pyproject.toml or .git (else the starting directory).
    pub project_root: PathBuf,
    /// The pyproject.toml the settings came from.
    pub pyproject: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub optimize: Option<bool>,
    pub exclude: Vec<String>,
    /// Recipe files whose `@tangent.adjoint(f)` recipes apply to every module.
    pub recipes: Vec<PathBuf>,
}

/// Absolute form of `path` (against the current directory), without `.` components and
/// without resolving links.
pub fn absolute(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    abs.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// The directory the settings are looked up from: the first PATH (or its parent for a file),
/// else the current directory.
pub fn start_dir(paths: &[PathBuf]) -> PathBuf {
    let first = paths
        .first()
        .map(|p| absolute(p))
        .unwrap_or_else(|| absolute(Path::new(".")));
    if first.is_dir() {
        first
    } else {
        first.parent().map(Path::to_path_buf).unwrap_or(first)
    }
}

pub fn project_root(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|d| d.join("pyproject.toml").is_file() || d.join(".git").exists())
        .unwrap_or(start)
        .to_path_buf()
}

/// Reads the settings that apply to `start` (an absolute directory).
pub fn load(start: &Path) -> Result<Config, String> {
    let mut config = Config {
        project_root: project_root(start),
        ..Config::default()
    };
    let Some(pyproject) = start
        .ancestors()
        .map(|d| d.join("pyproject.toml"))
        .find(|p| p.is_file())
    else {
        return Ok(config);
    };
    let text = std::fs::read_to_string(&pyproject)
        .map_err(|e| format!("cannot read {}: {e}", pyproject.display()))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", pyproject.display()))?;
    let base = pyproject.parent().unwrap_or(Path::new(".")).to_path_buf();
    config.pyproject = Some(pyproject.clone());
    let Some(section) = doc.get("tool").and_then(|t| t.get("tangent")) else {
        return Ok(config);
    };
    let Some(section) = section.as_table() else {
        return Err(format!(
            "{}: [tool.tangent] must be a table",
            pyproject.display()
        ));
    };
    let bad = |key: &str, want: &str| {
        format!(
            "{}: [tool.tangent] {key} must be {want}",
            pyproject.display()
        )
    };
    for (key, value) in section {
        match key.as_str() {
            "out" => {
                let s = value.as_str().ok_or_else(|| bad(key, "a string"))?;
                config.out =
                    Some(base.join(inside(s).ok_or_else(|| outside(&pyproject, key, s, "--out"))?));
            }
            "cache-dir" => {
                let s = value.as_str().ok_or_else(|| bad(key, "a string"))?;
                config.cache_dir = Some(
                    base.join(inside(s).ok_or_else(|| outside(&pyproject, key, s, "--cache-dir"))?),
                );
            }
            "optimize" => {
                config.optimize = Some(value.as_bool().ok_or_else(|| bad(key, "true or false"))?)
            }
            "exclude" => {
                let list = value
                    .as_array()
                    .ok_or_else(|| bad(key, "a list of strings"))?;
                config.exclude = list
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| bad(key, "a list of strings"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "recipes" => {
                let list = value
                    .as_array()
                    .ok_or_else(|| bad(key, "a list of file paths"))?;
                config.recipes = list
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(|s| base.join(s))
                            .ok_or_else(|| bad(key, "a list of file paths"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => tracing::warn!(
                "{}: unknown key `{other}` in [tool.tangent]",
                pyproject.display()
            ),
        }
    }
    Ok(config)
}

/// `path` (relative) without `.` and with `..` applied, if it stays inside the directory it is
/// relative to; `None` for an absolute path or one that leads out.
fn inside(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            std::path::Component::Normal(name) => out.push(name),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            std::path::Component::RootDir | std::path::Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn outside(pyproject: &Path, key: &str, value: &str, flag: &str) -> String {
    format!(
        "{}: [tool.tangent] {key} = {value:?} leads outside the project (the directory of this \
         pyproject.toml); name a directory inside it, or use {flag} on the command line",
        pyproject.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_paths_stay_inside() {
        assert_eq!(inside("gen"), Some(PathBuf::from("gen")));
        assert_eq!(inside("./a/../b/./c"), Some(PathBuf::from("b/c")));
        assert_eq!(inside("a/.."), Some(PathBuf::new()));
        assert_eq!(inside(".."), None);
        assert_eq!(inside("a/../../b"), None);
        assert_eq!(inside("/tmp/x"), None);
    }
}
