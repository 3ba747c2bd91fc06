//! Functions inlined where they are called (nested functions, helpers specialized at the
//! call) give their value by one `return` at their end. Guard clauses and returns in
//! branches (`if floating: return widest` ... `return default`) are brought to that form:
//! the statements after an `if` that may return move into those of its branches that go on,
//! and each `return v` becomes an assignment of the one value returned at the end.

use std::collections::BTreeSet;

use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::{Ranged, TextRange};

use super::scopes::contains_return;
use super::{collect_all_names, collect_assigned};

/// Most statements the rewritten body may hold (statements after an `if` are copied into
/// its branches).
const MAX_STATEMENTS: usize = 2000;

/// `def` with one `return <value>` at its end: itself when it has that form already, the
/// rewritten function when its returns stand in `if` branches, `None` when a return stands
/// in a loop, `try` or `with` (or the rewrite would be too large).
pub(super) fn single_exit(def: &ast::StmtFunctionDef) -> Option<ast::StmtFunctionDef> {
    let (last, rest) = def.body.split_last()?;
    let returns_early = rest.iter().any(contains_return);
    if !returns_early && matches!(last, AStmt::Return(r) if r.value.is_some()) {
        return Some(def.clone());
    }
    if !returns_early && !contains_return(last) {
        // No `return` at all: not a function giving a value.
        return None;
    }
    let result = unused_name(def, "returned");
    let mut budget = MAX_STATEMENTS;
    let mut body = tail(&def.body, &result, &mut budget)?;
    let range = last.range();
    body.push(AStmt::Return(ast::StmtReturn {
        node_index: ast::AtomicNodeIndex::NONE,
        range,
        value: Some(Box::new(name(&result, range, ast::ExprContext::Load))),
    }));
    let mut out = def.clone();
    out.body = body.into();
    Some(out)
}

/// `body` (the rest of the function from here) with each `return v` made `result = v`, and
/// no statement after one that may return.
fn tail(body: &[AStmt], result: &str, budget: &mut usize) -> Option<Vec<AStmt>> {
    let mut out = Vec::new();
    for (i, stmt) in body.iter().enumerate() {
        *budget = budget.checked_sub(1)?;
        match stmt {
            AStmt::Return(r) => {
                let range = r.range();
                let value = r.value.as_deref().cloned().unwrap_or(AExpr::NoneLiteral(
                    ast::ExprNoneLiteral {
                        node_index: ast::AtomicNodeIndex::NONE,
                        range,
                    },
                ));
                out.push(assign(result, value, range));
                return Some(out);
            }
            AStmt::If(s) if contains_return(stmt) => {
                let rest = &body[i + 1..];
                let then_rest = |branch: &[AStmt], budget: &mut usize| {
                    let joined: Vec<AStmt> = branch.iter().chain(rest).cloned().collect();
                    tail(&joined, result, budget)
                };
                let mut branched = s.clone();
                branched.body = then_rest(&s.body, budget)?.into();
                for clause in &mut branched.elif_else_clauses {
                    clause.body = then_rest(&clause.body, budget)?.into();
                }
                if branched
                    .elif_else_clauses
                    .last()
                    .is_none_or(|c| c.test.is_some())
                {
                    branched.elif_else_clauses.push(ast::ElifElseClause {
                        node_index: ast::AtomicNodeIndex::NONE,
                        range: s.range(),
                        test: None,
                        body: then_rest(&[], budget)?.into(),
                    });
                }
                out.push(AStmt::If(branched));
                return Some(out);
            }
            // A return in a loop, `try` or `with`: not rewritten.
            other if contains_return(other) => return None,
            other => out.push(other.clone()),
        }
    }
    // Falling off the end returns None.
    let range = body.last().map_or_else(TextRange::default, Ranged::range);
    out.push(assign(
        result,
        AExpr::NoneLiteral(ast::ExprNoneLiteral {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
        }),
        range,
    ));
    Some(out)
}

fn assign(target: &str, value: AExpr, range: TextRange) -> AStmt {
    AStmt::Assign(ast::StmtAssign {
        node_index: ast::AtomicNodeIndex::NONE,
        range,
        targets: vec![name(target, range, ast::ExprContext::Store)],
        value: Box::new(value),
    })
}

fn name(id: &str, range: TextRange, ctx: ast::ExprContext) -> AExpr {
    AExpr::Name(ast::ExprName {
        node_index: ast::AtomicNodeIndex::NONE,
        range,
        id: id.into(),
        ctx,
    })
}

/// `hint`, or `hint` with a number, used nowhere in `def`.
pub(super) fn unused_name(def: &ast::StmtFunctionDef, hint: &str) -> String {
    let mut used: BTreeSet<String> = BTreeSet::new();
    collect_all_names(&def.body, &mut used);
    collect_assigned(&def.body, &mut used);
    used.extend(def.parameters.iter().map(|p| p.name().to_string()));
    (0..)
        .map(|i| {
            if i == 0 {
                hint.to_string()
            } else {
                format!("{hint}{i}")
            }
        })
        .find(|n| !used.contains(n))
        .expect("some name is free")
}
