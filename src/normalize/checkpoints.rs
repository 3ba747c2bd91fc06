//! `with tangent.checkpoint():` blocks and `@tangent.checkpoint` functions, lowered to loops
//! marked `checkpoint` (see `crate::checkpoint` for what reverse mode does with them).

use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::Ranged;

use super::{Normalizer, Result, dotted_name};
use crate::diagnostics::DiagnosticKind;
use crate::ir::{Atom, Callee, Expr, Origin, Stmt};

/// Checkpoint levels beyond this are refused: each level is one more loop in the generated
/// code and one more forward run of the loop.
const MAX_LEVELS: usize = 8;

/// What `tangent.checkpoint(...)` asks for.
pub(super) struct Marker<'w> {
    /// Iterations per segment (one level).
    every: Option<&'w AExpr>,
    /// Levels of segments: T iterations keep about (levels + 1) T^(1 / (levels + 1)) values,
    /// for `levels` more forward runs of the loop.
    levels: usize,
}

/// Is `e` the marker, `tangent.checkpoint` (or `checkpoint` imported from tangent)?
pub fn is_checkpoint(e: &AExpr) -> bool {
    matches!(
        dotted_name(e).as_deref(),
        Some("checkpoint" | "tangent.checkpoint")
    )
}

impl Normalizer<'_> {
    /// `with tangent.checkpoint():`, `with tangent.checkpoint(every=k):` or
    /// `with tangent.checkpoint(levels=n):` (also `checkpoint` imported from tangent).
    pub(super) fn checkpoint_marker<'w>(&self, w: &'w ast::StmtWith) -> Result<Option<Marker<'w>>> {
        let [item] = w.items.as_slice() else {
            return Ok(None);
        };
        let AExpr::Call(c) = &item.context_expr else {
            return Ok(None);
        };
        if !is_checkpoint(&c.func) {
            return Ok(None);
        }
        if item.optional_vars.is_some() {
            return Err(self.unsupported(
                item.range(),
                "`with tangent.checkpoint()` binds no name (drop the `as ...`)",
            ));
        }
        let args = &c.arguments;
        let wrong = || {
            self.unsupported(c.range(), "`tangent.checkpoint` takes `every` (iterations per segment) or `levels` (a number from 1 to 8), not both")
        };
        let mut marker = Marker {
            every: args.args.first(),
            levels: 1,
        };
        if args.args.len() > 1 {
            return Err(wrong());
        }
        for k in args.keywords.iter() {
            match k.arg.as_ref().map(|a| a.as_str()) {
                Some("every") if marker.every.is_none() => marker.every = Some(&k.value),
                Some("levels") => {
                    let levels = match &k.value {
                        AExpr::NumberLiteral(n) => n.value.as_int().and_then(|i| i.as_usize()),
                        _ => None,
                    };
                    match levels {
                        Some(l) if (1..=MAX_LEVELS).contains(&l) => marker.levels = l,
                        _ => {
                            return Err(self.unsupported(
                                k.value.range(),
                                "`levels` is a number written in the source, from 1 to 8",
                            ));
                        }
                    }
                }
                _ => return Err(wrong()),
            }
        }
        if marker.every.is_some() && marker.levels > 1 {
            return Err(wrong());
        }
        Ok(Some(marker))
    }

    /// A checkpointed block (see `checkpoint`). A block that is one `for` loop becomes a loop
    /// over its segments (`every` iterations each; about the square root of the count when
    /// not given) whose body is the user's loop over one segment; any other block becomes a
    /// loop of one iteration. Either way the outer loop is marked `checkpoint`.
    pub(super) fn checkpoint_block(&mut self, w: &ast::StmtWith, marker: Marker<'_>) -> Result<()> {
        let origin = self.origin.clone();
        let every = marker.every.map(|e| self.atom(e, "every")).transpose()?;
        let mut block = self.block(&w.body)?;
        let single_for = matches!(w.body.as_slice(), [AStmt::For(f)] if f.orelse.is_empty());
        if single_for
            && matches!(
                block.last(),
                Some(Stmt::For {
                    checkpoint: false,
                    ..
                })
            )
        {
            let Some(Stmt::For {
                target,
                iter,
                body,
                origin: loop_origin,
                ..
            }) = block.pop()
            else {
                unreachable!()
            };
            self.check_checkpointable(&body)?;
            // The loop's own prologue (its bound, the sequences it reads) runs once, before.
            self.out.extend(block);
            let segmented = self.segmented(
                target,
                iter,
                body,
                loop_origin,
                every,
                marker.levels,
                origin,
            );
            self.out.extend(segmented);
            return Ok(());
        }
        if every.is_some() || marker.levels > 1 {
            return Err(self.unsupported(w.range(), "`every` and `levels` need a block that is one `for` loop (a checkpointed block of other statements runs again as a whole)"));
        }
        self.check_checkpointable(&block)?;
        let once = self.fresh("once");
        let range = Callee::Function {
            text: "range".into(),
            canonical: Some("builtins.range".into()),
            local: false,
        };
        let iter = Expr::Call {
            callee: range,
            args: vec![Atom::Const("1".into())],
            kwargs: vec![],
        };
        self.emit(Stmt::For {
            target: once,
            iter,
            body: block,
            origin,
            checkpoint: true,
        });
        Ok(())
    }

    /// `for target in iter: body` as checkpointed loops over its segments: `levels` loops,
    /// each over segments of the one around it (the outermost of `every` iterations, when
    /// given), the user's loop over the innermost segment. The statements that replace it.
    #[allow(clippy::too_many_arguments)]
    fn segmented(
        &mut self,
        target: String,
        iter: Expr,
        body: Vec<Stmt>,
        loop_origin: Origin,
        every: Option<Atom>,
        levels: usize,
        origin: Origin,
    ) -> Vec<Stmt> {
        let split = |args: Vec<Atom>, levels: usize| Expr::Call {
            callee: Callee::Function {
                text: "tangent.checkpoint_segments".into(),
                canonical: Some("tangent.checkpoint_segments".into()),
                local: false,
            },
            args,
            kwargs: if levels > 1 {
                vec![("levels".to_string(), Atom::Const(levels.to_string()))]
            } else {
                vec![]
            },
        };
        let steps = self.fresh("steps");
        let names: Vec<(String, String)> = (0..levels)
            .map(|_| (self.fresh("segments"), self.fresh("segment")))
            .collect();
        // Inside out: the user's loop over the innermost segment, then each level around it.
        let mut inner = vec![Stmt::For {
            target,
            iter: Expr::Atom(Atom::Name(names[levels - 1].1.clone())),
            body,
            origin: loop_origin,
            checkpoint: false,
        }];
        for level in (0..levels).rev() {
            let (segments, segment) = &names[level];
            let (over, mut args) = if level == 0 {
                (steps.clone(), vec![])
            } else {
                (names[level - 1].1.clone(), vec![])
            };
            args.insert(0, Atom::Name(over));
            if level == 0 {
                args.extend(every.clone());
            }
            let lp = Stmt::For {
                target: segment.clone(),
                iter: Expr::Atom(Atom::Name(segments.clone())),
                body: inner,
                origin: origin.clone(),
                checkpoint: true,
            };
            inner = vec![
                Stmt::Assign {
                    target: segments.clone(),
                    value: split(args, levels - level),
                    origin: origin.clone(),
                    inplace: None,
                },
                lp,
            ];
        }
        let mut out = vec![Stmt::Assign {
            target: steps,
            value: iter,
            origin,
            inplace: None,
        }];
        out.extend(inner);
        out
    }

    /// A function decorated `@tangent.checkpoint`: every `for` loop of `body` that is not
    /// inside another loop and can be checkpointed is (the others stay taped).
    pub(super) fn checkpoint_loops(&mut self, body: Vec<Stmt>) -> Vec<Stmt> {
        let mut out = Vec::with_capacity(body.len());
        for s in body {
            match s {
                Stmt::For {
                    target,
                    iter,
                    body,
                    origin,
                    checkpoint: false,
                } if crate::checkpoint::obstacle(&body).is_none()
                    && self.check_checkpointable(&body).is_ok() =>
                {
                    let outer = Origin {
                        text: format!("{} (checkpointed by @tangent.checkpoint)", origin.text),
                        ..origin.clone()
                    };
                    out.extend(self.segmented(target, iter, body, origin, None, 1, outer));
                }
                Stmt::If {
                    test,
                    body,
                    orelse,
                    origin,
                } => {
                    let body = self.checkpoint_loops(body);
                    let orelse = self.checkpoint_loops(orelse);
                    out.push(Stmt::If {
                        test,
                        body,
                        orelse,
                        origin,
                    });
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
            if !is_checkpoint(func) {
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
        // Run again in the backward pass, it would repeat an effect (another random draw).
        let known = |c: &str| crate::recipes::builtin().knows(c);
        let summaries = |f: &str| self.effects.and_then(|e| e.get(f)).cloned();
        if let Some((s, what)) = crate::effects::first_effect(body, &known, &summaries) {
            let o = s.origin();
            return Err(self.file
                .diagnostic(DiagnosticKind::Unsupported, format!("cannot checkpoint this block: `{}` {what}, and checkpointing runs the block again in the backward pass", o.text), o.start, o.end)
                .with_help("leave this statement out of `with tangent.checkpoint()` (draw the random numbers before the loop, and pass them in)".to_string()));
        }
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
