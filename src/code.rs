//! The generated program as a small tree of statements, each knowing which names it defines
//! and reads, so the optimizer can analyse it and the emitter can print it.

use std::collections::BTreeSet;

use ruff_python_ast::visitor::{Visitor, walk_expr};
use ruff_python_ast::{Expr as AExpr, ExprContext};

/// How generated code cites a recipe of the user's: `# Your recipe (model.py:12)`.
pub const RECIPE_CITATION: &str = "Your recipe";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// One simple statement.
    Stmt {
        text: String,
        defs: Vec<String>,
        uses: Vec<String>,
        /// May be deleted when its definitions are dead (no side effects).
        pure: bool,
    },
    /// `# text` on a line of its own.
    Comment(String),
    If {
        test: String,
        uses: Vec<String>,
        body: Vec<Code>,
        orelse: Vec<Code>,
    },
    /// `for ...:` or `while ...:`; `defs` are the loop variables.
    Loop {
        header: String,
        defs: Vec<String>,
        uses: Vec<String>,
        body: Vec<Code>,
    },
}

impl Code {
    /// `target = value`, with the names of `value` found by parsing it.
    pub fn assign(target: &str, value: &str, pure: bool) -> Code {
        Code::Stmt {
            text: format!("{target} = {value}"),
            defs: vec![target.to_string()],
            uses: names_in(value),
            pure,
        }
    }

    /// A statement evaluated for its effect (e.g. `tangent.push(...)`).
    pub fn effect(text: &str) -> Code {
        Code::Stmt {
            text: text.to_string(),
            defs: vec![],
            uses: names_in_stmt(text),
            pure: false,
        }
    }

    /// A statement with its defined names, the rest found by parsing.
    pub fn stmt(text: &str, defs: Vec<String>, pure: bool) -> Code {
        let uses = names_in_stmt(text);
        Code::Stmt {
            text: text.to_string(),
            defs,
            uses,
            pure,
        }
    }

    pub fn is_comment(&self) -> bool {
        matches!(self, Code::Comment(_))
    }
}

/// True when `block` holds nothing but comments.
pub fn is_empty(block: &[Code]) -> bool {
    block.iter().all(Code::is_comment)
}

struct Names<'o>(&'o mut Vec<String>);

impl<'a> Visitor<'a> for Names<'_> {
    fn visit_expr(&mut self, expr: &'a AExpr) {
        if let AExpr::Name(n) = expr {
            if n.ctx == ExprContext::Load && !self.0.iter().any(|x| x == n.id.as_str()) {
                self.0.push(n.id.to_string());
            }
        }
        walk_expr(self, expr);
    }
}

/// Names read by a Python expression (generated code: no f-strings).
///
/// A scanner rather than a parse: it runs for every generated statement. It skips strings,
/// numbers, keywords, attribute names after `.` and keyword-argument names; it may also report
/// a comprehension's own variable, which only makes the optimizer more careful.
pub fn names_in(expr: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "and", "or", "not", "in", "is", "if", "else", "for", "lambda", "None", "True", "False",
        "await", "yield",
    ];
    let bytes = expr.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' => {
                // Skip a string literal (single or triple quoted).
                let triple = bytes[i..].starts_with(&[c, c, c]);
                let quote_len = if triple { 3 } else { 1 };
                i += quote_len;
                while i < bytes.len() {
                    if bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == c && (!triple || bytes[i..].starts_with(&[c, c, c])) {
                        i += quote_len;
                        break;
                    }
                    i += 1;
                }
            }
            b'0'..=b'9' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
                {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                let word = &expr[start..i];
                // A string prefix (`b'..'`, `r"..."`) belongs to the literal that follows.
                if i < bytes.len() && (bytes[i] == b'\'' || bytes[i] == b'"') && word.len() <= 2 {
                    continue;
                }
                let before = expr[..start].trim_end();
                let after = expr[i..].trim_start();
                let attribute = before.ends_with('.') && !before.ends_with("..");
                let keyword_arg = depth > 0 && after.starts_with('=') && !after.starts_with("==");
                if !attribute
                    && !keyword_arg
                    && !KEYWORDS.contains(&word)
                    && !out.iter().any(|w| w == word)
                {
                    out.push(word.to_string());
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Names read by a Python expression, found by parsing it (the exact answer).
pub fn names_in_parsed(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(parsed) = ruff_python_parser::parse_expression(expr) {
        Names(&mut out).visit_expr(parsed.expr());
    }
    out
}

/// Names read by Python statements.
pub fn names_in_stmt(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(parsed) = ruff_python_parser::parse_module(text) {
        let mut v = Names(&mut out);
        for s in parsed.suite() {
            ruff_python_ast::visitor::walk_stmt(&mut v, s);
        }
    }
    out
}

/// Every name read anywhere in `code`.
pub fn all_uses(code: &[Code], out: &mut BTreeSet<String>) {
    for c in code {
        match c {
            Code::Stmt { uses, .. } => out.extend(uses.iter().cloned()),
            Code::Comment(_) => {}
            Code::If {
                uses, body, orelse, ..
            } => {
                out.extend(uses.iter().cloned());
                all_uses(body, out);
                all_uses(orelse, out);
            }
            Code::Loop { uses, body, .. } => {
                out.extend(uses.iter().cloned());
                all_uses(body, out);
            }
        }
    }
}
