//! User-facing errors: every failure of the engine is a `Diagnostic` that points at
//! file:line:col, shows the source line and a caret, and says what to do.
//!
//! Each kind has a stable code (`T001`...), documented in `docs/errors.md`, and rendered with
//! the kind's name: `error[T003 no-recipe]: no derivative known for ...`.

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
    /// The file is not Python source text: not UTF-8, or binary (NUL bytes).
    InvalidInput,
    /// The source exceeds one of the engine's limits (size, nesting depth, expression length).
    Limit,
    /// A file could not be read.
    Io,
    /// A bug in the engine: it produced something it cannot print, or panicked.
    Internal,
}

impl DiagnosticKind {
    /// Every kind, in code order.
    pub const ALL: [DiagnosticKind; 11] = [
        DiagnosticKind::Syntax,
        DiagnosticKind::Unsupported,
        DiagnosticKind::NoRecipe,
        DiagnosticKind::NotDifferentiable,
        DiagnosticKind::FunctionNotFound,
        DiagnosticKind::InvalidWrt,
        DiagnosticKind::InvalidRecipe,
        DiagnosticKind::InvalidInput,
        DiagnosticKind::Limit,
        DiagnosticKind::Io,
        DiagnosticKind::Internal,
    ];

    /// The kind's name (the Python API's `TangentError.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticKind::Syntax => "syntax",
            DiagnosticKind::Unsupported => "unsupported",
            DiagnosticKind::NoRecipe => "no-recipe",
            DiagnosticKind::NotDifferentiable => "not-differentiable",
            DiagnosticKind::FunctionNotFound => "function-not-found",
            DiagnosticKind::InvalidWrt => "invalid-wrt",
            DiagnosticKind::InvalidRecipe => "invalid-recipe",
            DiagnosticKind::InvalidInput => "invalid-input",
            DiagnosticKind::Limit => "limit",
            DiagnosticKind::Io => "io",
            DiagnosticKind::Internal => "internal",
        }
    }

    /// The stable code, documented in `docs/errors.md`. Codes are never reused.
    pub fn code(self) -> &'static str {
        match self {
            DiagnosticKind::Syntax => "T001",
            DiagnosticKind::Unsupported => "T002",
            DiagnosticKind::NoRecipe => "T003",
            DiagnosticKind::NotDifferentiable => "T004",
            DiagnosticKind::FunctionNotFound => "T005",
            DiagnosticKind::InvalidWrt => "T006",
            DiagnosticKind::InvalidRecipe => "T007",
            DiagnosticKind::InvalidInput => "T008",
            DiagnosticKind::Limit => "T009",
            DiagnosticKind::Io => "T010",
            DiagnosticKind::Internal => "T999",
        }
    }

    /// The kind with this name or code (`"no-recipe"` or `"T003"`).
    pub fn from_name(name: &str) -> Option<DiagnosticKind> {
        DiagnosticKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name || k.code() == name)
    }

    /// The help line of a diagnostic that brings no advice of its own.
    pub fn default_help(self) -> &'static str {
        match self {
            DiagnosticKind::Syntax => {
                "the whole file must be valid Python 3; fix the code at the caret"
            }
            DiagnosticKind::Unsupported => {
                "rewrite this without the construct, or move it into a function with its own recipe (`@tangent.adjoint`)"
            }
            DiagnosticKind::NoRecipe => {
                "give the function a recipe with `@tangent.adjoint(...)` (see \"Your own recipes\" in the README)"
            }
            DiagnosticKind::NotDifferentiable => {
                "differentiate with respect to a parameter the result depends on through arithmetic (`wrt`)"
            }
            DiagnosticKind::FunctionNotFound => {
                "name a function defined with `def` at the top level of the file (FILE.py:FUNC)"
            }
            DiagnosticKind::InvalidWrt => {
                "`wrt` takes the names or positions of the function's parameters, each once"
            }
            DiagnosticKind::InvalidRecipe => {
                "see \"Your own recipes\" in the README for the rules of recipe templates"
            }
            DiagnosticKind::InvalidInput => {
                "Tangent reads Python source files as UTF-8 text (PEP 3120); save the file as UTF-8"
            }
            DiagnosticKind::Limit => {
                "split the code into smaller expressions or functions (the limits are listed in docs/errors.md)"
            }
            DiagnosticKind::Io => "check that the file exists and can be read",
            DiagnosticKind::Internal => {
                "this is a bug in Tangent; please report it with the code that caused it"
            }
        }
    }
}

impl std::fmt::Display for DiagnosticKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.as_str())
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
    /// Extra advice printed after the snippet (e.g. how to add a recipe); the kind's
    /// default help when `None`.
    pub help: Option<String>,
}

/// Source lines longer than this (in characters) are shown as a window around the caret.
const MAX_SHOWN_LINE: usize = 160;

impl Diagnostic {
    /// Builds a diagnostic for byte range `start..end` of `source`. Offsets that are not on a
    /// character boundary are moved back to the start of their character.
    pub fn at(
        kind: DiagnosticKind,
        message: impl Into<String>,
        path: &str,
        source: &str,
        start: usize,
        end: usize,
    ) -> Self {
        let start = floor_char_boundary(source, start.min(source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source.as_bytes()[..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        let column = source[line_start..start].chars().count() + 1;
        let source_line = source[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        let end = floor_char_boundary(source, end.clamp(start, line_end));
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

    /// The stable code of the diagnostic's kind (`T003`).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The help line: the diagnostic's own advice, or its kind's.
    pub fn help_text(&self) -> &str {
        self.help.as_deref().unwrap_or(self.kind.default_help())
    }

    /// Plain-text rendering: `error[T003 no-recipe]: message`, then `--> path:line:col`, the
    /// line and a caret, then `help: ...`.
    pub fn render(&self) -> String {
        let id = format!("{} {}", self.kind.code(), self.kind.as_str());
        // One line: a message never breaks the `error[...]: ` line in two.
        let title = self.message.replace(['\r', '\n'], " ");
        let mut out = if self.line == 0 {
            format!("error[{id}]: {title}\n  --> {}\n", self.path)
        } else if self.source_line.trim().is_empty() {
            // A blank line: nothing to underline (the snippet renderer would lose the place).
            format!(
                "error[{id}]: {title}\n  --> {}:{}:{}\n",
                self.path,
                self.line,
                self.column.max(1)
            )
        } else {
            let (shown, column) = window(&self.source_line, self.column);
            let len = shown.len();
            let start = byte_offset_of_column(&shown, column);
            let end = byte_offset_of_column(&shown, column + self.width).max(start);
            let snippet = Snippet::source(&shown)
                .line_start(self.line)
                .origin(&self.path)
                .annotation(Level::Error.span(start.min(len)..end.min(len)).label(""));
            let message = Level::Error.title(&title).id(&id).snippet(snippet);
            // annotate-snippets prints `--> path:line:col` itself (the column of `shown`).
            // `window` already cut long lines: no second cut by the renderer.
            let rendered = Renderer::plain()
                .term_width(10 * MAX_SHOWN_LINE)
                .render(message)
                .to_string();
            let shown_at = format!("{}:{}:{}", self.path, self.line, column);
            let real_at = format!("{}:{}:{}", self.path, self.line, self.column);
            rendered.replacen(&shown_at, &real_at, 1) + "\n"
        };
        // The help may span lines (e.g. the recipe to add).
        out.push_str("help: ");
        out.push_str(self.help_text().trim_end());
        out.push('\n');
        out
    }
}

/// The part of a long `line` shown around `column`, and the column in it. Control characters
/// (from a binary file) are shown as U+FFFD, one for one.
fn window(line: &str, column: usize) -> (String, usize) {
    let printable = |c: char| {
        if c.is_control() && c != '\t' {
            '\u{fffd}'
        } else {
            c
        }
    };
    let count = line.chars().count();
    if count <= MAX_SHOWN_LINE {
        return (line.chars().map(printable).collect(), column);
    }
    let first = column
        .saturating_sub(MAX_SHOWN_LINE / 3)
        .max(1)
        .min(count - MAX_SHOWN_LINE + 1);
    let last = (first + MAX_SHOWN_LINE).min(count + 1);
    let mut shown: String = line
        .chars()
        .skip(first - 1)
        .take(last - first)
        .map(printable)
        .collect();
    let mut column = column - first + 1;
    if first > 1 {
        shown.insert_str(0, "...");
        column += 3;
    }
    if last <= count {
        shown.push_str("...");
    }
    (shown, column)
}

fn byte_offset_of_column(line: &str, column: usize) -> usize {
    line.char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i)
}

/// The largest character boundary of `s` at or before `i` (`i <= s.len()`).
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostic {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_names_round_trip() {
        let mut codes: Vec<_> = DiagnosticKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), DiagnosticKind::ALL.len());
        for k in DiagnosticKind::ALL {
            assert_eq!(DiagnosticKind::from_name(k.as_str()), Some(k));
            assert_eq!(DiagnosticKind::from_name(k.code()), Some(k));
        }
    }

    #[test]
    fn render_shows_code_kind_location_caret_and_help() {
        let source = "def f(x):\n    return g(x)\n";
        let d = Diagnostic::at(
            DiagnosticKind::NoRecipe,
            "no derivative known for `g`",
            "m.py",
            source,
            21,
            25,
        );
        let text = d.render();
        assert!(
            text.starts_with("error[T003 no-recipe]: no derivative known for `g`\n"),
            "{text}"
        );
        assert!(text.contains("--> m.py:2:12"), "{text}");
        assert!(text.contains("    return g(x)"), "{text}");
        assert!(text.contains("^^^^"), "{text}");
        assert!(
            text.ends_with(&format!(
                "help: {}\n",
                DiagnosticKind::NoRecipe.default_help()
            )),
            "{text}"
        );
        let text = d.with_help("add a recipe").render();
        assert!(text.ends_with("help: add a recipe\n"), "{text}");
    }

    #[test]
    fn offsets_inside_a_character_do_not_panic() {
        let source = "x = (é";
        let d = Diagnostic::at(
            DiagnosticKind::Syntax,
            "bad",
            "m.py",
            source,
            source.len() - 1,
            source.len(),
        );
        assert_eq!((d.line, d.column), (1, 6));
        d.render();
    }

    #[test]
    fn long_lines_are_shown_around_the_caret() {
        let line = format!("y = {}z", "x + ".repeat(1000));
        let column = line.len();
        let d = Diagnostic::at(
            DiagnosticKind::Limit,
            "too long",
            "m.py",
            &line,
            column - 1,
            column,
        );
        let text = d.render();
        assert!(text.contains(&format!("--> m.py:1:{column}")), "{text}");
        assert!(text.lines().all(|l| l.len() < 250), "{text}");
        assert!(
            text.contains("1 | ...") && text.contains("x + x + z\n"),
            "{text}"
        );
    }
}
