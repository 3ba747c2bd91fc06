//! The arguments `build`, `check` and `watch` share, resolved against `[tool.tangent]`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::Cache;
use crate::config;
use crate::generate::Generator;
use crate::layout::Layout;
use crate::walk::Filter;

#[derive(clap::Args, Debug)]
pub struct ProjectArgs {
    /// Files and directories to process (default: the current directory).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Write artifacts to a mirrored tree in DIR (stable names) instead of `__tangent__/`
    /// beside each source.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The cache directory (default: TANGENT_CACHE_DIR, `[tool.tangent] cache-dir`, or
    /// `<project root>/.tangent/cache`).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Skip the optimization passes.
    #[arg(long, overrides_with = "optimize")]
    pub no_optimize: bool,
    /// Run the optimization passes (the default; overrides `optimize = false`).
    #[arg(long, overrides_with = "no_optimize")]
    pub optimize: bool,
}

/// Everything a command needs to know about what to build and how.
pub struct Project {
    pub paths: Vec<PathBuf>,
    pub layout: Layout,
    pub optimize: bool,
    pub filter: Arc<Filter>,
    pub cache_dir: PathBuf,
    /// The directory the cache must not be reached through a symbolic link below, when the
    /// repository chose the cache directory (default or pyproject.toml, not a flag or env).
    pub cache_root: Option<PathBuf>,
    /// The project's shared recipe files (`[tool.tangent] recipes`).
    pub recipe_files: Vec<PathBuf>,
}

impl Project {
    pub fn resolve(args: &ProjectArgs) -> Result<Project, String> {
        let paths = if args.paths.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            args.paths.clone()
        };
        let config = config::load(&config::start_dir(&paths))?;
        let layout = match args.out.as_ref().or(config.out.as_ref()) {
            Some(dir) => Layout::Out(dir.clone()),
            None => Layout::Beside,
        };
        let optimize = if args.no_optimize {
            false
        } else if args.optimize {
            true
        } else {
            config.optimize.unwrap_or(true)
        };
        let base = config
            .pyproject
            .as_ref()
            .and_then(|p| p.parent())
            .map(PathBuf::from)
            .unwrap_or_else(|| config.project_root.clone());
        let filter = Arc::new(Filter::new(&config.exclude, &base)?);
        let cache_dir = crate::cache::cache_dir(args.cache_dir.as_deref(), &config);
        let chosen_by_user = args.cache_dir.is_some()
            || std::env::var_os("TANGENT_CACHE_DIR").is_some_and(|d| !d.is_empty());
        let cache_root = (!chosen_by_user).then(|| match (&config.cache_dir, &config.pyproject) {
            (Some(_), Some(pyproject)) => pyproject.parent().map(PathBuf::from).unwrap_or_default(),
            _ => config.project_root.clone(),
        });
        Ok(Project {
            paths,
            layout,
            optimize,
            filter,
            cache_dir,
            cache_root,
            recipe_files: config.recipes,
        })
    }

    /// The project's shared recipes, read and checked; the error is ready to print.
    pub fn recipes(&self) -> Result<Option<Arc<tangent::recipes::ProjectRecipes>>, String> {
        load_recipes(&self.recipe_files)
    }

    /// Opens the cache (or goes on without it) and makes the generator, with the project's
    /// shared recipes; the error (an unreadable or invalid recipe file) is ready to print.
    pub fn generator(&self) -> Result<Generator, String> {
        tracing::debug!("cache: {}", self.cache_dir.display());
        let linked = self
            .cache_root
            .as_deref()
            .and_then(|root| crate::cache::linked_component(root, &self.cache_dir));
        let cache = match linked {
            Some(link) => {
                tracing::warn!(
                    "the cache directory {} is reached through the symbolic link {}; going on without the cache",
                    self.cache_dir.display(),
                    link.display()
                );
                Cache::none(&self.cache_dir)
            }
            None => Cache::open(&self.cache_dir),
        };
        Ok(Generator::new(cache, self.optimize, self.recipes()?))
    }
}

/// Reads and checks recipe files; the error is ready to print.
pub fn load_recipes(
    files: &[PathBuf],
) -> Result<Option<Arc<tangent::recipes::ProjectRecipes>>, String> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut texts = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "error[{}]: cannot read the recipe file {} named in [tool.tangent] recipes: {e}\n",
                tangent::DiagnosticKind::Io,
                path.display()
            )
        })?;
        texts.push((path.display().to_string(), text));
    }
    tangent::recipes::ProjectRecipes::load(&texts)
        .map(|r| Some(Arc::new(r)))
        .map_err(|d| d.render())
}
