//! Why a function named on the command line, in a gradient module or by the API is not one
//! the engine differentiates by name: defined inside another function or class, bound by an
//! assignment (a lambda, a factory's result), or not in the module at all.

use ruff_python_ast::{Expr, Stmt};
use ruff_text_size::Ranged;

use super::SourceFile;
use crate::diagnostics::{Diagnostic, DiagnosticKind};

/// The diagnostic for `name` (a function, or `Class.method`) not found among the top-level
/// definitions of `body`, parsed from `file`.
pub fn function_not_found(file: &SourceFile<'_>, body: &[Stmt], name: &str) -> Diagnostic {
    let wanted = name.rsplit('.').next().unwrap_or(name);
    let mut finder = Finder {
        wanted,
        enclosing: Vec::new(),
        found: None,
    };
    finder.body(body, true);
    match finder.found {
        Some(Found::Nested { start, end, inside }) => file
            .diagnostic(
                DiagnosticKind::FunctionNotFound,
                format!("`{wanted}` is defined inside {inside}, not at the top level of the module"),
                start,
                end,
            )
            .with_help(format!(
                "by name, Tangent differentiates the module's top-level functions (also those in \
                 `if`/`try`/`with` blocks) and the methods of its top-level classes (`Class.method`); \
                 move `{wanted}` to the top level, or differentiate the function object from Python \
                 (`tangent.grad({wanted})` where it is defined)"
            )),
        Some(Found::Assigned { start, end, what }) => file
            .diagnostic(
                DiagnosticKind::FunctionNotFound,
                format!("`{wanted}` is bound to {what} here, not defined with `def`"),
                start,
                end,
            )
            .with_help(format!(
                "by name, Tangent differentiates functions defined with `def`; differentiate the \
                 value from Python (`tangent.grad({wanted})`), which follows lambdas, closures and \
                 `functools.partial`, or define `{wanted}` with `def`"
            )),
        None => {
            let names = top_level_names(body);
            let d = Diagnostic::without_span(
                DiagnosticKind::FunctionNotFound,
                format!("no function named `{name}` in this module"),
                file.path,
            );
            if names.is_empty() {
                d.with_help("the module defines no function")
            } else {
                d.with_help(format!("the module's functions: {}", names.join(", ")))
            }
        }
    }
}

enum Found {
    Nested {
        start: usize,
        end: usize,
        inside: String,
    },
    Assigned {
        start: usize,
        end: usize,
        what: &'static str,
    },
}

struct Finder<'n> {
    wanted: &'n str,
    enclosing: Vec<String>,
    found: Option<Found>,
}

impl Finder<'_> {
    fn body(&mut self, body: &[Stmt], top: bool) {
        for stmt in body {
            if self.found.is_some() {
                return;
            }
            self.stmt(stmt, top);
        }
    }

    fn stmt(&mut self, stmt: &Stmt, top: bool) {
        match stmt {
            Stmt::FunctionDef(f) => {
                if !top && f.name.as_str() == self.wanted {
                    let inside = self.enclosing.last().cloned().unwrap_or_default();
                    self.found = Some(Found::Nested {
                        start: f.name.start().to_usize(),
                        end: f.name.end().to_usize(),
                        inside,
                    });
                    return;
                }
                self.enclosing.push(format!("function `{}`", f.name));
                self.body(&f.body, false);
                self.enclosing.pop();
            }
            Stmt::ClassDef(c) => {
                self.enclosing.push(format!("class `{}`", c.name));
                self.body(&c.body, false);
                self.enclosing.pop();
            }
            Stmt::Assign(a) if top => {
                let binds = a
                    .targets
                    .iter()
                    .any(|t| matches!(t, Expr::Name(n) if n.id.as_str() == self.wanted));
                if binds {
                    let what = match &*a.value {
                        Expr::Lambda(_) => "a lambda",
                        Expr::Call(_) => "the result of a call",
                        _ => "a value",
                    };
                    self.found = Some(Found::Assigned {
                        start: a.start().to_usize(),
                        end: a.value.start().to_usize(),
                        what,
                    });
                }
            }
            _ => {}
        }
    }
}

/// The names of the top-level functions and class methods of `body`, as the engine takes them.
fn top_level_names(body: &[Stmt]) -> Vec<String> {
    let mut names = Vec::new();
    for stmt in body {
        match stmt {
            Stmt::FunctionDef(f) if !names.contains(&f.name.to_string()) => {
                names.push(f.name.to_string())
            }
            Stmt::ClassDef(c) => {
                for s in &c.body {
                    if let Stmt::FunctionDef(f) = s {
                        names.push(format!("{}.{}", c.name, f.name));
                    }
                }
            }
            _ => {}
        }
    }
    const SHOWN: usize = 12;
    if names.len() > SHOWN {
        let more = names.len() - SHOWN;
        names.truncate(SHOWN);
        names.push(format!("... ({more} more)"));
    }
    names
}
