//! User-facing errors: every failure of the engine is a `Diagnostic` that points at
//! file:line:col, shows the source line and a caret, and says what to do.

use annotate_snippets::{Level, Renderer, Snippet};

/// What went wrong; the Python side maps each kind to an exception type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosticKind {
    /// The source does not parse.
    Syntax,
    /// A construct the engine cannot differentiate (`yield`, `try`, `global`, ...).
    Unsupported,
    /// A call on an active value with no recipe and no source to differentiate.
    NoRecipe,
    /// The requested derivative does not exist (e.g. w.r.t. an integer loop bound).
    NotDifferentiable,
    /// The function to differentiate is not in the module.
    FunctionNotFound,
    /// `wrt` names a parameter the function does not have.
    InvalidWrt,
    /// A user-defined recipe (`@tangent.adjoint(f)`) that breaks the template rules.
    InvalidRecipe,
    /// A bug in the engine: it produced something it cannot print.
    Internal,
}

impl DiagnosticKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticKind::Syntax => "syntax",
            DiagnosticKind::Unsupported => "unsupported",
            DiagnosticKind::NoRecipe => "no-recipe",
            DiagnosticKind::NotDifferentiable => "not-differentiable",
            DiagnosticKind::FunctionNotFound => "function-not-found",
            DiagnosticKind::InvalidWrt => "invalid-wrt",
            DiagnosticKind::InvalidRecipe => "invalid-recipe",
            DiagnosticKind::Internal => "internal",
        }
    }
}

/// One error, with its location resolved to line and column (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub kind: DiagnosticKind,
    pub message: String,
    pub path: String,
    pub line: usize,
    pub column: usize,
    /// The full text of the offending line (without its newline); empty when unknown.
    pub source_line: String,
    /// Width of the caret underline, at least 1.
    pub width: usize,
    /// Extra advice printed after the snippet (e.g. how to add a recipe).
    pub help: Option<String>,
}

impl Diagnostic {
    /// Builds a diagnostic for byte range `start..end` of `source`.
    pub fn at(
        kind: DiagnosticKind,
        message: impl Into<String>,
        path: &str,
        source: &str,
        start: usize,
        end: usize,
    ) -> Self {
        let start = start.min(source.len());
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..].find('\n').map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let source_line = source[line_start..line_end].trim_end_matches('\r').to_string();
        let end = end.clamp(start, line_end);
        let width = source[start..end].chars().count().max(1);
        Diagnostic {
            kind,
            message: message.into(),
            path: path.to_string(),
            line,
            column,
            source_line,
            width,
            help: None,
        }
    }

    /// A diagnostic with no source position (e.g. a function that is not there).
    pub fn without_span(kind: DiagnosticKind, message: impl Into<String>, path: &str) -> Self {
        Diagnostic {
            kind,
            message: message.into(),
            path: path.to_string(),
            line: 0,
            column: 0,
            source_line: String::new(),
            width: 1,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Plain-text rendering: `error[kind]: message`, then `--> path:line:col`, the line and a caret.
    pub fn render(&self) -> String {
        let title = format!("{} [{}]", self.message, self.kind.as_str());
        let mut out = if self.line == 0 {
            format!("error: {title}\n  --> {}\n", self.path)
        } else {
            let len = self.source_line.len();
            let start = byte_offset_of_column(&self.source_line, self.column);
            let end = byte_offset_of_column(&self.source_line, self.column + self.width).max(start);
            let snippet = Snippet::source(&self.source_line)
                .line_start(self.line)
                .origin(&self.path)
                .annotation(Level::Error.span(start.min(len)..end.min(len)).label(""));
            let message = Level::Error.title(&title).snippet(snippet);
            // annotate-snippets prints `--> path:line:col` itself.
            Renderer::plain().render(message).to_string() + "\n"
        };
        if let Some(help) = &self.help {
            out.push_str("help: ");
            out.push_str(help);
            out.push('\n');
        }
        out
    }
}

fn byte_offset_of_column(line: &str, column: usize) -> usize {
    line.char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i)
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostic {}
