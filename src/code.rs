//! The generated program as a small tree of statements, each knowing which names it defines
//! and reads, so the optimizer can analyse it and the emitter can print it.

use std::collections::BTreeSet;

use ruff_python_ast::visitor::{Visitor, walk_expr};
use ruff_python_ast::{Expr as AExpr, ExprContext};

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
    If { test: String, uses: Vec<String>, body: Vec<Code>, orelse: Vec<Code> },
    /// `for ...:` or `while ...:`; `defs` are the loop variables.
    Loop { header: String, defs: Vec<String>, uses: Vec<String>, body: Vec<Code> },
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
        Code::Stmt { text: text.to_string(), defs: vec![], uses: names_in_stmt(text), pure: false }
    }

    /// A statement with its defined names, the rest found by parsing.
    pub fn stmt(text: &str, defs: Vec<String>, pure: bool) -> Code {
        let uses = names_in_stmt(text);
        Code::Stmt { text: text.to_string(), defs, uses, pure }
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

/// Names read by a Python expression.
pub fn names_in(expr: &str) -> Vec<String> {
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
            Code::If { uses, body, orelse, .. } => {
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
