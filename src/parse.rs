//! Parsing: ruff_python_parser, with syntax errors turned into diagnostics.

use ruff_python_ast::{ModModule, Stmt, StmtFunctionDef};
use ruff_python_parser::{Parsed, parse_module};

use crate::diagnostics::{Diagnostic, DiagnosticKind};

/// A source text with its path and the line it starts at in its file (for nested functions).
#[derive(Debug, Clone, Copy)]
pub struct SourceFile<'a> {
    pub text: &'a str,
    pub path: &'a str,
    /// Added to every line number reported for this text.
    pub line_offset: usize,
}

impl<'a> SourceFile<'a> {
    pub fn diagnostic(
        &self,
        kind: DiagnosticKind,
        message: impl Into<String>,
        start: usize,
        end: usize,
    ) -> Diagnostic {
        let mut d = Diagnostic::at(kind, message, self.path, self.text, start, end);
        d.line += self.line_offset;
        d
    }
}

pub fn parse(file: &SourceFile<'_>) -> Result<Parsed<ModModule>, Diagnostic> {
    parse_module(file.text).map_err(|err| {
        let mut start = usize::from(err.location.start());
        let mut end = usize::from(err.location.end());
        // "Unexpected end of file" points past the text: show the last line that has code.
        let content_end = file.text.trim_end().len();
        if start >= content_end || (start == 0 && end == 0 && content_end > 0 && err.error.to_string().contains("EOF")) {
            start = content_end.saturating_sub(1);
            end = content_end;
        }
        file.diagnostic(DiagnosticKind::Syntax, format!("syntax error: {}", err.error), start, end)
    })
}

/// The top-level function named `name`.
pub fn find_function<'m>(module: &'m ModModule, name: &str) -> Option<&'m StmtFunctionDef> {
    find_function_in(&module.body, name)
}

/// The last top-level definition of `name` among `body`'s statements; `Class.method` names a
/// method of a top-level class.
pub fn find_function_in<'m>(body: &'m [Stmt], name: &str) -> Option<&'m StmtFunctionDef> {
    if let Some((class, method)) = name.split_once('.') {
        let class_body = body.iter().rev().find_map(|s| match s {
            Stmt::ClassDef(c) if c.name.as_str() == class => Some(&c.body),
            _ => None,
        })?;
        return find_function_in(class_body, method);
    }
    body.iter().rev().find_map(|s| match s {
        Stmt::FunctionDef(f) if f.name.as_str() == name => Some(f),
        _ => None,
    })
}

/// The names of a function's positional parameters, in order.
pub fn param_names(def: &StmtFunctionDef) -> Vec<String> {
    let p = &def.parameters;
    // Keyword-only parameters last, as `inspect.signature` lists them.
    p.posonlyargs.iter().chain(p.args.iter()).chain(p.kwonlyargs.iter()).map(|p| p.parameter.name.to_string()).collect()
}
