//! Emission: prints the generated code tree as Python through ruff_python_codegen.
//!
//! The tree is first written as text with each comment replaced by a placeholder call, parsed
//! back (which proves the output is valid Python), printed by ruff's generator, and the
//! placeholders are turned into comments at the same indentation.

use ruff_python_codegen::{Generator, Indentation};
use ruff_source_file::LineEnding;

use crate::code::Code;
use crate::diagnostics::{Diagnostic, DiagnosticKind};

const PLACEHOLDER: &str = "__tangent_comment__";

/// A generated function: `def header:` then the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionText {
    pub header: String,
    pub docstring: Option<String>,
    pub body: Vec<Code>,
}

struct Writer {
    text: String,
    comments: Vec<String>,
}

impl Writer {
    fn line(&mut self, depth: usize, s: &str) {
        for l in s.lines() {
            self.text.push_str(&"    ".repeat(depth));
            self.text.push_str(l);
            self.text.push('\n');
        }
    }

    fn block(&mut self, depth: usize, code: &[Code]) {
        let mut wrote = false;
        let mut last_comment: Option<&str> = None;
        for c in code {
            // Consecutive blocks from one user statement share one comment.
            if let Code::Comment(text) = c {
                if last_comment == Some(text.as_str()) {
                    continue;
                }
                last_comment = Some(text.as_str());
            }
            match c {
                Code::Stmt { text, .. } => {
                    self.line(depth, text);
                    wrote = true;
                }
                Code::Comment(c) => {
                    self.comments.push(c.clone());
                    self.line(
                        depth,
                        &format!("{PLACEHOLDER}({})", self.comments.len() - 1),
                    );
                }
                Code::If {
                    test, body, orelse, ..
                } => {
                    self.if_chain(depth, "if", test, body, orelse);
                    wrote = true;
                }
                Code::Loop { header, body, .. } => {
                    self.line(depth, &format!("{header}:"));
                    self.block(depth + 1, body);
                    wrote = true;
                }
            }
        }
        if !wrote {
            self.line(depth, "pass");
        }
    }

    /// `if`, with an `else` holding just another `if` printed as `elif`.
    fn if_chain(
        &mut self,
        depth: usize,
        keyword: &str,
        test: &str,
        body: &[Code],
        orelse: &[Code],
    ) {
        if body.iter().all(Code::is_comment) && orelse.iter().any(|c| !c.is_comment()) {
            // Nothing to do when the test holds: test its negation instead.
            self.line(
                depth,
                &format!("{keyword} not {}:", parenthesize_test(test)),
            );
            self.block(depth + 1, orelse);
            return;
        }
        self.line(depth, &format!("{keyword} {test}:"));
        self.block(depth + 1, body);
        let rest: Vec<&Code> = orelse.iter().filter(|c| !c.is_comment()).collect();
        match rest.as_slice() {
            [] => {}
            [
                Code::If {
                    test, body, orelse, ..
                },
            ] => self.if_chain(depth, "elif", test, body, orelse),
            _ => {
                self.line(depth, "else:");
                self.block(depth + 1, orelse);
            }
        }
    }
}

/// `test` ready to follow `not`: comparisons bind tighter than `not`, boolean operators don't.
fn parenthesize_test(test: &str) -> String {
    if test.contains(" and ") || test.contains(" or ") || test.contains(" if ") {
        format!("({test})")
    } else {
        test.to_string()
    }
}

/// Prints functions alone (no header, no imports): one artifact of a module.
pub fn functions(functions: &[FunctionText]) -> Result<String, Diagnostic> {
    let text = module("", &[], functions)?;
    Ok(text.trim_start_matches('\n').to_string())
}

/// The text of every statement of `functions`, one per line (to scan for names).
pub fn all_text(functions: &[FunctionText]) -> String {
    fn walk(code: &[Code], out: &mut String) {
        for c in code {
            match c {
                Code::Stmt { text, .. } => out.push_str(text),
                Code::Comment(_) => {}
                Code::If {
                    test, body, orelse, ..
                } => {
                    out.push_str(test);
                    walk(body, out);
                    walk(orelse, out);
                }
                Code::Loop { header, body, .. } => {
                    out.push_str(header);
                    walk(body, out);
                }
            }
            out.push('\n');
        }
    }
    let mut out = String::new();
    for f in functions {
        walk(&f.body, &mut out);
    }
    out
}

/// Does any statement of `functions` use `module.` as a qualified name?
pub fn mentions_module(functions: &[FunctionText], module: &str) -> bool {
    fn walk(code: &[Code], module: &str) -> bool {
        code.iter().any(|c| match c {
            Code::Stmt { text, .. } => crate::mentions_module(text, module),
            Code::Comment(_) => false,
            Code::If {
                test, body, orelse, ..
            } => crate::mentions_module(test, module) || walk(body, module) || walk(orelse, module),
            Code::Loop { header, body, .. } => {
                crate::mentions_module(header, module) || walk(body, module)
            }
        })
    }
    functions.iter().any(|f| walk(&f.body, module))
}

/// The header as comment lines, then the import lines.
fn preamble(header: &str, imports: &[&str]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for imp in imports {
        out.push_str(imp);
        out.push('\n');
    }
    out
}

/// Joins artifacts printed by [`functions`] under a header and imports, as [`module`] would.
pub fn assemble(header: &str, imports: &[&str], parts: &[String]) -> String {
    let mut out = preamble(header, imports);
    for part in parts {
        out.push_str("\n\n");
        out.push_str(part);
    }
    out
}

/// Prints a module: a header comment, imports, then the functions.
pub fn module(
    header: &str,
    imports: &[&str],
    functions: &[FunctionText],
) -> Result<String, Diagnostic> {
    let mut w = Writer {
        text: String::new(),
        comments: Vec::new(),
    };
    for f in functions {
        w.line(0, &format!("def {}:", f.header));
        if let Some(doc) = &f.docstring {
            w.line(1, &format!("{doc:?}").replace("\\'", "'"));
        }
        w.block(1, &f.body);
    }
    let parsed = ruff_python_parser::parse_module(&w.text).map_err(|e| {
        Diagnostic::without_span(
            DiagnosticKind::Internal,
            format!("the engine produced invalid Python ({}); please report this with the input function\n{}", e.error, w.text),
            "<generated>",
        )
    })?;
    let indent = Indentation::new("    ".to_string());
    let mut out = preamble(header, imports);
    for stmt in parsed.suite() {
        out.push_str("\n\n");
        let printed = Generator::new(&indent, LineEnding::Lf).stmt(stmt);
        for line in printed.lines() {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix(&format!("{PLACEHOLDER}(")) {
                let idx: usize = rest.trim_end_matches(')').parse().unwrap_or(0);
                let pad = &line[..line.len() - trimmed.len()];
                out.push_str(pad);
                out.push_str("# ");
                out.push_str(&w.comments[idx]);
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
    }
    Ok(out)
}

/// `text` as a Python string literal (single-quoted, escapes where Python needs them).
pub fn python_string(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}
