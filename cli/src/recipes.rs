//! `tangent recipes [FILE.py] [--json]`: every function Tangent has a recipe for, with the
//! modes it supports; with FILE.py, that module's own recipes (`@tangent.adjoint(f)`) too.
//! Exit codes: 0 success, 1 a diagnostic (the file unreadable or not Python text, a broken
//! recipe), 2 usage error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use tangent::RecipeInfo;

#[derive(clap::Args)]
pub struct RecipesArgs {
    /// A module whose own recipes are listed too (they replace built-in ones).
    #[arg(value_name = "FILE.py")]
    file: Option<PathBuf>,
    /// One JSON array of {name, modes, nondifferentiable, user, source}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &RecipesArgs) -> ExitCode {
    let source = match &args.file {
        Some(path) => match crate::grad::source_text(path, &path.display().to_string()) {
            Ok(text) => Some((text, path.display().to_string())),
            Err(d) => {
                eprint!("{}", d.render());
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    // The project's shared recipes, from the pyproject.toml above FILE (or the current directory).
    let start = crate::config::start_dir(args.file.as_slice());
    let shared =
        match crate::config::load(&start).and_then(|c| crate::project::load_recipes(&c.recipes)) {
            Ok(shared) => shared,
            Err(e) => {
                eprint!(
                    "{}",
                    if e.ends_with('\n') {
                        e
                    } else {
                        format!("error: {e}\n")
                    }
                );
                return ExitCode::from(1);
            }
        };
    let listing = match tangent::recipe_listing(
        source.as_ref().map(|(t, p)| (t.as_str(), p.as_str())),
        shared.as_deref(),
    ) {
        Ok(listing) => listing,
        Err(d) => {
            eprint!("{}", d.render());
            return ExitCode::from(1);
        }
    };
    let text = if args.json {
        json(&listing)
    } else {
        table(&listing)
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`tangent recipes | head`) is not an error worth reporting.
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
    ExitCode::SUCCESS
}

fn modes(info: &RecipeInfo) -> String {
    if info.nondifferentiable {
        return "zero derivative".into();
    }
    let mut modes = Vec::new();
    if info.reverse.is_some() {
        modes.push("reverse");
    }
    if info.forward.is_some() {
        modes.push("forward");
    }
    modes.join(", ")
}

fn modes_list(info: &RecipeInfo) -> Vec<&'static str> {
    let mut modes = Vec::new();
    if info.reverse.is_some() || info.nondifferentiable {
        modes.push("reverse");
    }
    if info.forward.is_some() || info.nondifferentiable {
        modes.push("forward");
    }
    modes
}

fn table(listing: &[RecipeInfo]) -> String {
    let width = listing.iter().map(|i| i.name.len()).max().unwrap_or(0);
    let mut lines: Vec<String> = listing
        .iter()
        .map(|i| {
            let source = i
                .reverse
                .as_ref()
                .or(i.forward.as_ref())
                .map(|o| format!("  ({}{o})", if i.user { "yours: " } else { "" }))
                .unwrap_or_default();
            format!("{:width$}  {}{source}", i.name, modes(i))
        })
        .collect();
    let differentiable = listing.iter().filter(|i| !i.nondifferentiable).count();
    lines.push(format!(
        "{differentiable} functions with recipes, {} with a zero derivative",
        listing.len() - differentiable
    ));
    lines.join("\n")
}

fn json(listing: &[RecipeInfo]) -> String {
    let items: Vec<serde_json::Value> = listing
        .iter()
        .map(|i| {
            serde_json::json!({
                "name": i.name,
                "modes": modes_list(i),
                "nondifferentiable": i.nondifferentiable,
                "user": i.user,
                "source": i.reverse.as_ref().or(i.forward.as_ref()),
            })
        })
        .collect();
    serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into())
}
