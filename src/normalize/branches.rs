//! Branches a derivative leaves out: a branch of an `if` that cannot be differentiated (code
//! for sparse matrices or 3-D inputs, say, in a function differentiated for dense matrices)
//! becomes a run-time error raised only if that branch runs, at its line, with the engine's
//! reason, instead of a refusal of the whole function. The derivative is then exact on every
//! path it does not raise on: nothing is silently wrong.

use std::collections::BTreeMap;

use ruff_python_ast::{self as ast, Stmt as AStmt};
use ruff_text_size::Ranged;

use super::Normalizer;
use crate::diagnostics::{Diagnostic, DiagnosticKind};
use crate::ir::Stmt;
use crate::parse::SourceFile;

/// Most branches one function may leave out (each found by one more attempt).
pub const MAX_LEFT_OUT: usize = 16;

/// The branches left out, with the refusal that left each out, by where each stands: the
/// path and line offset of the text its function was read from and the offset of the
/// branch's first statement in that text.
pub type LeftOut = BTreeMap<(String, usize, usize), Diagnostic>;

/// The branch of an `if` where `refusal` stands (its key in [`LeftOut`]), in `def` (read
/// from `file`) or in a function of `file` its derivative inlines (a helper specialized at
/// the call, a nested function): the innermost one holding the refusal's line and column.
/// `None` when the refusal is not of a construct (a wrong `wrt`, a syntax error, a bug), or
/// stands outside every branch.
pub fn branch_of(
    def: &ast::StmtFunctionDef,
    file: SourceFile<'_>,
    refusal: &Diagnostic,
) -> Option<(String, usize, usize)> {
    let leaves_out = matches!(
        refusal.kind,
        DiagnosticKind::Unsupported | DiagnosticKind::NoRecipe | DiagnosticKind::NotDifferentiable
    );
    if !leaves_out || refusal.path != file.path || refusal.line <= file.line_offset {
        return None;
    }
    let offset = offset_of(file.text, refusal.line - file.line_offset, refusal.column)?;
    let within_def =
        def.range().start().to_usize() <= offset && offset <= def.range().end().to_usize();
    let branch = if within_def {
        innermost_branch(def_holding(&def.body, offset).unwrap_or(def), offset)?
    } else {
        // In a function of the text inlined where `def` calls it.
        let parsed = crate::parse::parse(&file).ok()?;
        innermost_branch(def_holding(&parsed.syntax().body, offset)?, offset)?
    };
    Some(key(file, branch))
}

/// The branch of `def`'s body holding `offset`, unless a jump stands there.
fn innermost_branch(def: &ast::StmtFunctionDef, offset: usize) -> Option<usize> {
    if jump_at(&def.body, offset) {
        // `break`/`continue`/`return` where they cannot be: the structure around them is
        // refused, not something the branch computes.
        return None;
    }
    innermost(&def.body, offset)
}

/// The innermost function defined in `body` (at any depth: in classes, blocks, other
/// functions) whose text holds `offset`.
fn def_holding(body: &[AStmt], offset: usize) -> Option<&ast::StmtFunctionDef> {
    let stmt = body
        .iter()
        .find(|s| s.range().start().to_usize() <= offset && offset <= s.range().end().to_usize())?;
    let inner: Vec<&[AStmt]> = match stmt {
        AStmt::FunctionDef(d) => {
            return def_holding(&d.body, offset).or(Some(d));
        }
        AStmt::ClassDef(c) => vec![&c.body],
        AStmt::If(s) => std::iter::once(&s.body[..])
            .chain(s.elif_else_clauses.iter().map(|c| &c.body[..]))
            .collect(),
        AStmt::For(s) => vec![&s.body, &s.orelse],
        AStmt::While(s) => vec![&s.body, &s.orelse],
        AStmt::With(s) => vec![&s.body],
        AStmt::Try(s) => {
            let mut all: Vec<&[AStmt]> = vec![&s.body, &s.orelse, &s.finalbody];
            all.extend(s.handlers.iter().map(|h| match h {
                ast::ExceptHandler::ExceptHandler(h) => &h.body[..],
            }));
            all
        }
        _ => Vec::new(),
    };
    inner.into_iter().find_map(|b| def_holding(b, offset))
}

fn key(file: SourceFile<'_>, branch: usize) -> (String, usize, usize) {
    (file.path.to_string(), file.line_offset, branch)
}

/// Byte offset of 1-based `line` and `column` (in characters) of `text`.
fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let start = if line == 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)?
    };
    let rest = &text[start..];
    let within = rest
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(rest.len(), |(i, _)| i);
    Some(start + within)
}

fn innermost(body: &[AStmt], offset: usize) -> Option<usize> {
    for stmt in body {
        let range = stmt.range();
        if offset < range.start().to_usize() || offset > range.end().to_usize() {
            continue;
        }
        return match stmt {
            AStmt::If(s) => {
                let branches = std::iter::once(&s.body[..])
                    .chain(s.elif_else_clauses.iter().map(|c| &c.body[..]));
                for branch in branches {
                    if let Some(found) = within_branch(branch, offset) {
                        return Some(found);
                    }
                }
                None
            }
            AStmt::For(s) => innermost(&s.body, offset).or_else(|| innermost(&s.orelse, offset)),
            AStmt::While(s) => innermost(&s.body, offset).or_else(|| innermost(&s.orelse, offset)),
            AStmt::With(s) => innermost(&s.body, offset),
            _ => None,
        };
    }
    None
}

/// Is the simple statement holding `offset` a `break`, `continue`, or a `return` of a
/// name (a refusal of the jump itself, not of something the branch computes)?
fn jump_at(body: &[AStmt], offset: usize) -> bool {
    let holds =
        |s: &AStmt| s.range().start().to_usize() <= offset && offset <= s.range().end().to_usize();
    let Some(stmt) = body.iter().find(|s| holds(s)) else {
        return false;
    };
    match stmt {
        AStmt::Break(_) | AStmt::Continue(_) => true,
        // A `return` that computes something may be refused for what it computes (the
        // branch's); one returning a name or nothing only for where it stands.
        AStmt::Return(r) => r.value.as_ref().is_none_or(|v| {
            matches!(
                v.as_ref(),
                ast::Expr::Name(_) | ast::Expr::NoneLiteral(_) | ast::Expr::NumberLiteral(_)
            )
        }),
        AStmt::If(s) => {
            jump_at(&s.body, offset) || s.elif_else_clauses.iter().any(|c| jump_at(&c.body, offset))
        }
        AStmt::For(s) => jump_at(&s.body, offset) || jump_at(&s.orelse, offset),
        AStmt::While(s) => jump_at(&s.body, offset) || jump_at(&s.orelse, offset),
        AStmt::With(s) => jump_at(&s.body, offset),
        AStmt::Try(s) => {
            jump_at(&s.body, offset) || jump_at(&s.orelse, offset) || jump_at(&s.finalbody, offset)
        }
        _ => false,
    }
}

/// `branch`'s own offset, or a branch nested in it, when it holds `offset`.
fn within_branch(branch: &[AStmt], offset: usize) -> Option<usize> {
    let (first, last) = (branch.first()?, branch.last()?);
    if offset < first.range().start().to_usize() || offset > last.range().end().to_usize() {
        return None;
    }
    innermost(branch, offset).or(Some(first.range().start().to_usize()))
}

impl Normalizer<'_> {
    /// The statement a left-out branch becomes: raising its refusal, if it runs.
    pub(super) fn left_out(&mut self, body: &[AStmt]) -> bool {
        let Some(refused) = self.left_out else {
            return false;
        };
        let Some(refusal) = body
            .first()
            .and_then(|s| refused.get(&key(self.file, s.range().start().to_usize())))
        else {
            return false;
        };
        let python_string = crate::emit::python_string;
        let text = format!(
            "raise tangent.branch_not_differentiated({}, {}, {}, {}, {})",
            python_string(refusal.kind.as_str()),
            python_string(&refusal.message),
            python_string(&refusal.path),
            refusal.line,
            refusal.column
        );
        let origin = self.origin.clone();
        self.emit(Stmt::Opaque {
            text,
            reads: Vec::new(),
            origin,
        });
        true
    }
}
