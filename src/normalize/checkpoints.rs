//! `with tangent.checkpoint():` blocks and `@tangent.checkpoint` functions, lowered to loops
//! marked `checkpoint` (see `crate::checkpoint` for what reverse mode does with them).

use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::Ranged;

use super::{Normalizer, Result, dotted_name};
use crate::diagnostics::DiagnosticKind;
use crate::ir::{Atom, Callee, Expr, Origin, Stmt};

impl Normalizer<'_> {
    /// `with tangent.checkpoint():` or `with tangent.checkpoint(every=k):` (also `checkpoint`
    /// imported from tangent): `Some(every)`.
    pub(super) fn checkpoint_marker<'w>(&self, w: &'w ast::StmtWith) -> Result<Option<Option<&'w AExpr>>> {
        let [item] = w.items.as_slice() else { return Ok(None) };
        let AExpr::Call(c) = &item.context_expr else { return Ok(None) };
        let is_marker = dotted_name(&c.func).is_some_and(|d| d == "checkpoint" || d == "tangent.checkpoint");
        if !is_marker {
            return Ok(None);
        }
        if item.optional_vars.is_some() {
            return Err(self.unsupported(item.range(), "`with tangent.checkpoint()` binds no name (drop the `as ...`)"));
        }
        let args = &c.arguments;
        let every = match (args.args.as_ref(), args.keywords.as_ref()) {
            ([], []) => None,
            ([e], []) => Some(e),
            ([], [k]) if k.arg.as_ref().is_some_and(|a| a.as_str() == "every") => Some(&k.value),
            _ => {
                return Err(self.unsupported(c.range(), "`tangent.checkpoint` takes one argument, `every` (iterations per segment)"));
            }
        };
        Ok(Some(every))
    }

    /// A checkpointed block (see `checkpoint`). A block that is one `for` loop becomes a loop
    /// over its segments (`every` iterations each; about the square root of the count when
    /// not given) whose body is the user's loop over one segment; any other block becomes a
    /// loop of one iteration. Either way the outer loop is marked `checkpoint`.
    pub(super) fn checkpoint_block(&mut self, w: &ast::StmtWith, every: Option<&AExpr>) -> Result<()> {
        let origin = self.origin.clone();
        let every = every.map(|e| self.atom(e, "every")).transpose()?;
        let mut block = self.block(&w.body)?;
        let single_for = matches!(w.body.as_slice(), [AStmt::For(f)] if f.orelse.is_empty());
        if single_for && matches!(block.last(), Some(Stmt::For { checkpoint: false, .. })) {
            let Some(Stmt::For { target, iter, body, origin: loop_origin, .. }) = block.pop() else { unreachable!() };
            self.check_checkpointable(&body)?;
            // The loop's own prologue (its bound, the sequences it reads) runs once, before.
            self.out.extend(block);
            let segmented = self.segmented(target, iter, body, loop_origin, every, origin);
            self.out.extend(segmented);
            return Ok(());
        }
        if every.is_some() {
            return Err(self.unsupported(w.range(), "`every` needs a block that is one `for` loop (a checkpointed block of other statements runs again as a whole)"));
        }
        self.check_checkpointable(&block)?;
        let once = self.fresh("once");
        let range = Callee::Function { text: "range".into(), canonical: Some("builtins.range".into()), local: false };
        let iter = Expr::Call { callee: range, args: vec![Atom::Const("1".into())], kwargs: vec![] };
        self.emit(Stmt::For { target: once, iter, body: block, origin, checkpoint: true });
        Ok(())
    }

    /// `for target in iter: body` as a checkpointed loop over its segments (of `every`
    /// iterations, or about the square root of their count): the statements that replace it.
    fn segmented(&mut self, target: String, iter: Expr, body: Vec<Stmt>, loop_origin: Origin, every: Option<Atom>, origin: Origin) -> Vec<Stmt> {
        let steps = self.fresh("steps");
        let segments = self.fresh("segments");
        let segment = self.fresh("segment");
        let mut args = vec![Atom::Name(steps.clone())];
        args.extend(every);
        let split = Callee::Function {
            text: "tangent.checkpoint_segments".into(),
            canonical: Some("tangent.checkpoint_segments".into()),
            local: false,
        };
        let user_loop = Stmt::For { target, iter: Expr::Atom(Atom::Name(segment.clone())), body, origin: loop_origin, checkpoint: false };
        vec![
            Stmt::Assign { target: steps, value: iter, origin: origin.clone() },
            Stmt::Assign { target: segments.clone(), value: Expr::Call { callee: split, args, kwargs: vec![] }, origin: origin.clone() },
            Stmt::For { target: segment, iter: Expr::Atom(Atom::Name(segments)), body: vec![user_loop], origin, checkpoint: true },
        ]
    }

    /// A function decorated `@tangent.checkpoint`: every `for` loop of `body` that is not
    /// inside another loop and can be checkpointed is (the others stay taped).
    pub(super) fn checkpoint_loops(&mut self, body: Vec<Stmt>) -> Vec<Stmt> {
        let mut out = Vec::with_capacity(body.len());
        for s in body {
            match s {
                Stmt::For { target, iter, body, origin, checkpoint: false } if crate::checkpoint::obstacle(&body).is_none() => {
                    let outer = Origin { text: format!("{} (checkpointed by @tangent.checkpoint)", origin.text), ..origin.clone() };
                    out.extend(self.segmented(target, iter, body, origin, None, outer));
                }
                Stmt::If { test, body, orelse, origin } => {
                    let body = self.checkpoint_loops(body);
                    let orelse = self.checkpoint_loops(orelse);
                    out.push(Stmt::If { test, body, orelse, origin });
                }
                other => out.push(other),
            }
        }
        out
    }

    /// Is `def` decorated `@tangent.checkpoint` (checkpoint its loops)?
    pub(super) fn checkpoints_loops(&self, def: &ast::StmtFunctionDef) -> Result<bool> {
        let mut marked = false;
        for d in &def.decorator_list {
            let (func, called) = match &d.expression {
                AExpr::Call(c) => (c.func.as_ref(), true),
                e => (e, false),
            };
            if !dotted_name(func).is_some_and(|n| n == "checkpoint" || n == "tangent.checkpoint") {
                continue;
            }
            if called {
                return Err(self.unsupported(d.range(), "`@tangent.checkpoint` takes no arguments (for a fixed segment length, put the loop in `with tangent.checkpoint(every=k):`)"));
            }
            marked = true;
        }
        Ok(marked)
    }

    fn check_checkpointable(&self, body: &[Stmt]) -> Result<()> {
        match crate::checkpoint::obstacle(body) {
            None => Ok(()),
            Some((s, why)) => {
                let o = s.origin();
                Err(self.file
                    .diagnostic(DiagnosticKind::Unsupported, format!("cannot checkpoint this block: `{}` {why}", o.text), o.start, o.end)
                    .with_help("a checkpointed block runs again from a snapshot of its state: leave this block out of `with tangent.checkpoint()`, or keep containers it changes local to one iteration (and exits outside it)".to_string()))
            }
        }
    }
}
