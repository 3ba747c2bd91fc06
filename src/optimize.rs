//! Optimization of generated code: dead-code elimination and propagation of single-use
//! temporaries. Works on the `Code` tree, using each statement's defined and read names.

use std::collections::{BTreeMap, BTreeSet};

use ruff_python_ast::visitor::transformer::{Transformer, walk_expr};
use ruff_python_ast::{Expr as AExpr, ExprContext};
use ruff_python_codegen::{Generator, Indentation};
use ruff_source_file::LineEnding;

use crate::code::{Code, names_in};

pub fn optimize(body: &mut Vec<Code>) {
    let mut counts = Counts::default();
    counts.collect(body);
    propagate(body, &counts);
    // Iterate: removing one dead statement can make its inputs dead.
    for _ in 0..8 {
        let mut live = BTreeSet::new();
        if !dce(body, &mut live) {
            break;
        }
    }
}

/// Backward liveness over a block; removes pure statements whose definitions are dead.
/// `live` is the set of names live after the block, updated to those live before it.
fn dce(block: &mut Vec<Code>, live: &mut BTreeSet<String>) -> bool {
    let mut changed = false;
    let mut keep = vec![true; block.len()];
    for (i, c) in block.iter_mut().enumerate().rev() {
        match c {
            Code::Stmt {
                defs, uses, pure, ..
            } => {
                if !live_through(defs, uses, *pure, live) {
                    keep[i] = false;
                    changed = true;
                }
            }
            Code::Comment(_) => {}
            Code::If {
                uses, body, orelse, ..
            } => {
                let mut l1 = live.clone();
                changed |= dce(body, &mut l1);
                let mut l2 = live.clone();
                changed |= dce(orelse, &mut l2);
                // Tests are comparisons of names: an `if` with nothing left in it can go.
                if crate::code::is_empty(body) && crate::code::is_empty(orelse) {
                    keep[i] = false;
                    changed = true;
                    continue;
                }
                live.extend(l1);
                live.extend(l2);
                live.extend(uses.iter().cloned());
            }
            Code::Loop {
                defs, uses, body, ..
            } => {
                // Names live at the top of an iteration are live at its end too.
                // The header (a `while` test) runs again after every iteration.
                let mut l = live.clone();
                l.extend(uses.iter().cloned());
                let inner = loop_top(body, &l);
                let mut at_top = inner.clone();
                changed |= dce(body, &mut at_top);
                l.extend(at_top);
                for d in defs.iter() {
                    l.remove(d);
                }
                l.extend(uses.iter().cloned());
                *live = l;
            }
        }
    }
    let mut i = 0;
    block.retain(|_| {
        let k = keep[i];
        i += 1;
        k
    });
    changed
}

/// The names live at the top of an iteration of a loop with body `body`, `live` being those
/// live after the loop and in its header: a fixpoint, since what the body reads is live at its
/// end too. Iterated until nothing changes, never a fixed number of times: a value passed
/// along a chain of n assignments in the body (`a = b; b = c; ...`) is live at the top only
/// after n rounds, and stopping early deleted statements the next iteration needs. Each round
/// is one pass over the body that copies no code; the tops of nested loops are kept between
/// rounds (they only grow), so nested loops cost rounds x size, not size to the power of the
/// depth.
fn loop_top(body: &[Code], live: &BTreeSet<String>) -> BTreeSet<String> {
    let mut nested = Vec::new();
    let mut top = live.clone();
    loop {
        let mut changed = false;
        let mut at_top = top.clone();
        flow(body, &mut at_top, &mut nested, &mut 0, &mut changed);
        let before = top.len();
        top.extend(at_top);
        if !changed && top.len() == before {
            return top;
        }
    }
}

/// One round of `loop_top`: what `dce` computes into `live` for `block`, without changing it
/// (a pure statement whose definitions are all dead reads nothing, nor an `if` left with no
/// code), with the tops of the loops inside (`tops`, by order of appearance, from the previous
/// round) brought one round further; `changed` when one grew. Returns whether `dce` would keep
/// any code of the block.
fn flow(
    block: &[Code],
    live: &mut BTreeSet<String>,
    tops: &mut Vec<BTreeSet<String>>,
    ordinal: &mut usize,
    changed: &mut bool,
) -> bool {
    let mut kept = false;
    for c in block.iter().rev() {
        match c {
            Code::Stmt {
                defs, uses, pure, ..
            } => kept |= live_through(defs, uses, *pure, live),
            Code::Comment(_) => {}
            Code::If {
                uses, body, orelse, ..
            } => {
                let mut l1 = live.clone();
                let k1 = flow(body, &mut l1, tops, ordinal, changed);
                let mut l2 = live.clone();
                let k2 = flow(orelse, &mut l2, tops, ordinal, changed);
                if !k1 && !k2 {
                    continue;
                }
                kept = true;
                live.extend(l1);
                live.extend(l2);
                live.extend(uses.iter().cloned());
            }
            Code::Loop {
                defs, uses, body, ..
            } => {
                kept = true;
                let k = *ordinal;
                *ordinal += 1;
                if tops.len() <= k {
                    tops.resize(k + 1, BTreeSet::new());
                }
                let mut l = live.clone();
                l.extend(uses.iter().cloned());
                let mut top: BTreeSet<String> = tops[k].union(&l).cloned().collect();
                let mut at_top = top.clone();
                flow(body, &mut at_top, tops, ordinal, changed);
                top.extend(at_top.iter().cloned());
                if top != tops[k] {
                    tops[k] = top;
                    *changed = true;
                }
                l.extend(at_top);
                for d in defs.iter() {
                    l.remove(d);
                }
                l.extend(uses.iter().cloned());
                *live = l;
            }
        }
    }
    kept
}

/// Liveness through one statement (`live`: the names live after it, updated to those live
/// before it). False, with `live` unchanged, for a pure statement that defines only dead
/// names: `dce` removes it.
fn live_through(defs: &[String], uses: &[String], pure: bool, live: &mut BTreeSet<String>) -> bool {
    if pure && !defs.is_empty() && defs.iter().all(|d| !live.contains(d)) {
        return false;
    }
    for d in defs {
        live.remove(d);
    }
    live.extend(uses.iter().cloned());
    true
}

/// Removes `# Grad of:` comments left with no code under them (followed by another comment or
/// by the end of their block), at every level.
pub fn tidy_comments(block: &mut Vec<Code>) {
    let is_grad_of = |c: &Code| matches!(c, Code::Comment(t) if t.starts_with("Grad of:"));
    let mut out: Vec<Code> = Vec::with_capacity(block.len());
    for mut c in block.drain(..) {
        match &mut c {
            Code::If { body, orelse, .. } => {
                tidy_comments(body);
                tidy_comments(orelse);
            }
            Code::Loop { body, .. } => tidy_comments(body),
            _ => {}
        }
        // A recipe citation belongs under its block's comment.
        let cites_recipe =
            matches!(&c, Code::Comment(t) if t.starts_with(crate::code::RECIPE_CITATION));
        if c.is_comment() && !cites_recipe && out.last().is_some_and(is_grad_of) {
            out.pop();
        }
        out.push(c);
    }
    if out.last().is_some_and(is_grad_of) {
        out.pop();
    }
    *block = out;
}

/// Propagation stops before a line grows past this.
const MAX_LINE: usize = 88;

/// How often each name is defined and read in a function.
#[derive(Default)]
struct Counts {
    defs: BTreeMap<String, usize>,
    uses: BTreeMap<String, usize>,
}

impl Counts {
    fn collect(&mut self, code: &[Code]) {
        for c in code {
            match c {
                Code::Stmt { defs, uses, .. } => {
                    for d in defs {
                        *self.defs.entry(d.clone()).or_default() += 1;
                    }
                    for u in uses {
                        *self.uses.entry(u.clone()).or_default() += 1;
                    }
                }
                Code::Comment(_) => {}
                Code::If {
                    uses, body, orelse, ..
                } => {
                    for u in uses {
                        *self.uses.entry(u.clone()).or_default() += 1;
                    }
                    self.collect(body);
                    self.collect(orelse);
                }
                Code::Loop {
                    defs, uses, body, ..
                } => {
                    for d in defs {
                        *self.defs.entry(d.clone()).or_default() += 2;
                    }
                    for u in uses {
                        *self.uses.entry(u.clone()).or_default() += 1;
                    }
                    self.collect(body);
                }
            }
        }
    }
}

/// Assignment propagation: an engine temporary (`_name`) defined once, by a pure statement,
/// and read once, by the very next statement, is replaced by its value there.
fn propagate(block: &mut Vec<Code>, counts: &Counts) {
    let mut i = 0;
    while i + 1 < block.len() {
        let candidate = match &block[i] {
            Code::Stmt {
                text,
                defs,
                pure: true,
                ..
            } if defs.len() == 1 => {
                let name = &defs[0];
                let once = counts.defs.get(name) == Some(&1) && counts.uses.get(name) == Some(&1);
                let value = text.split_once(" = ").map(|(_, v)| v.to_string());
                match value {
                    Some(v)
                        if once
                            && name.starts_with('_')
                            && name != "_stack"
                            && name != "_state" =>
                    {
                        Some((name.clone(), v))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((name, value)) = candidate {
            if let Code::Stmt {
                text,
                defs,
                uses,
                pure,
            } = &block[i + 1]
            {
                // Values are pushed by name, so that pushes pair with pops by name.
                if uses.contains(&name)
                    && !text.contains(".append(")
                    && !text.starts_with("tangent.push(")
                {
                    // Only while the line stays short enough to read at a glance.
                    if let Some(new_text) = substitute(text, &name, &value)
                        .filter(|t| t.lines().all(|l| l.len() <= MAX_LINE))
                    {
                        let mut new_uses: Vec<String> =
                            uses.iter().filter(|u| **u != name).cloned().collect();
                        for u in names_in(&value) {
                            if !new_uses.contains(&u) {
                                new_uses.push(u);
                            }
                        }
                        block[i + 1] = Code::Stmt {
                            text: new_text,
                            defs: defs.clone(),
                            uses: new_uses,
                            pure: *pure,
                        };
                        block.remove(i);
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
    for c in block.iter_mut() {
        match c {
            Code::If { body, orelse, .. } => {
                propagate(body, counts);
                propagate(orelse, counts);
            }
            Code::Loop { body, .. } => propagate(body, counts),
            _ => {}
        }
    }
}

/// `text` with every read of `name` replaced by `value`, parenthesized as needed.
fn substitute(text: &str, name: &str, value: &str) -> Option<String> {
    let parsed = ruff_python_parser::parse_module(text).ok()?;
    let value = ruff_python_parser::parse_expression(value)
        .ok()?
        .into_expr();
    struct Replace<'v> {
        name: &'v str,
        value: &'v AExpr,
    }
    impl Transformer for Replace<'_> {
        fn visit_expr(&self, expr: &mut AExpr) {
            if let AExpr::Name(n) = expr {
                if n.id.as_str() == self.name && n.ctx == ExprContext::Load {
                    *expr = self.value.clone();
                }
                return;
            }
            walk_expr(self, expr);
        }
    }
    let indent = Indentation::new("    ".to_string());
    let mut out = Vec::new();
    for stmt in parsed.into_syntax().body {
        let mut stmt = stmt;
        Replace {
            name,
            value: &value,
        }
        .visit_stmt(&mut stmt);
        out.push(Generator::new(&indent, LineEnding::Lf).stmt(&stmt));
    }
    Some(out.join("\n"))
}
