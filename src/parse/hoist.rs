//! Definitions where scripts put them: functions, classes and imports inside module-level
//! `if` / `try` / `with` / `for` / `while` blocks (`if __name__ == "__main__":`, `try: import
//! scipy ... except ImportError:`) are lifted to the module's top level, in the order of the
//! text, so that every later stage finds them as it finds top-level ones.
//!
//! The last definition of a name is the one the engine uses, so the order encodes which
//! definition a script normally binds: an `except` handler's fallbacks come before the `try`
//! body's definitions (the `try` body is what runs when nothing fails), then the `else` and
//! `finally` bodies. A name defined in both branches of an `if` keeps the last branch's
//! definition; the Python API passes the definition the function object was made from
//! (`Request::definition_line`), so it picks the right one there.
//!
//! Only the statements' place changes: ranges stay those of the text, so diagnostics point at
//! the lines the user wrote. Statements that only make sense inside their block (`break`,
//! `continue`) are dropped; the tests of `if`/`while` and the iterables of `for` are not kept.

use ruff_python_ast::{ExceptHandler, Stmt};

/// `body` (a module's statements) with the statements of its compound statements lifted.
pub fn hoist_definitions(body: Vec<Stmt>) -> Vec<Stmt> {
    let mut out = Vec::with_capacity(body.len());
    lift_all(body, &mut out);
    out
}

/// A statement whose body `hoist_definitions` lifts.
pub fn is_block(stmt: &Stmt) -> bool {
    matches!(
        stmt,
        Stmt::If(_) | Stmt::Try(_) | Stmt::With(_) | Stmt::For(_) | Stmt::While(_)
    )
}

fn lift_all(body: impl IntoIterator<Item = Stmt>, out: &mut Vec<Stmt>) {
    for stmt in body {
        lift(stmt, out);
    }
}

fn lift(stmt: Stmt, out: &mut Vec<Stmt>) {
    match stmt {
        Stmt::If(s) => {
            lift_all(s.body, out);
            for clause in s.elif_else_clauses {
                lift_all(clause.body, out);
            }
        }
        Stmt::Try(s) => {
            for ExceptHandler::ExceptHandler(h) in s.handlers {
                lift_all(h.body, out);
            }
            lift_all(s.body, out);
            lift_all(s.orelse, out);
            lift_all(s.finalbody, out);
        }
        Stmt::With(s) => lift_all(s.body, out),
        Stmt::For(s) => {
            lift_all(s.body, out);
            lift_all(s.orelse, out);
        }
        Stmt::While(s) => {
            lift_all(s.body, out);
            lift_all(s.orelse, out);
        }
        Stmt::Break(_) | Stmt::Continue(_) => {}
        other => out.push(other),
    }
}
