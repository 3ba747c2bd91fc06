//! Checkpointing: what a `with tangent.checkpoint():` loop must save to run an iteration again.
//!
//! Reverse mode normally tapes every iteration of a loop (pushes each overwritten value), so
//! the backward pass of a loop of T steps holds T states. A checkpointed loop (`Stmt::For` with
//! `checkpoint`) instead saves, at the start of each of its iterations, the *snapshot*: the
//! values its body carries into that iteration. The backward pass takes the snapshots in
//! reverse, restores one, runs that iteration again with taping, then its backward pass. The
//! normalizer makes the checkpointed loop run over segments of the user's loop
//! (`tangent.checkpoint_segments`), so T steps keep about sqrt(T) snapshots and one segment's
//! tape at a time, for one extra forward run (with `levels=n`, segments of segments: n nested
//! checkpointed loops).
//!
//! A snapshot holds references, not copies: the body may rebind names but must not change in
//! place a container that lives across iterations (checked by [`obstacle`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::code::Code;
use crate::ir::Stmt;

/// Names read anywhere in `body`.
pub fn reads(body: &[Stmt]) -> BTreeSet<String> {
    crate::ir::all_statements(body)
        .into_iter()
        .flat_map(Stmt::header_reads)
        .map(str::to_string)
        .collect()
}

/// Names bound anywhere in `body` (assignment targets and loop variables), in order of
/// their first binding.
pub fn bound(body: &[Stmt]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in crate::ir::all_statements(body) {
        let name = match s {
            Stmt::Assign { target, .. } | Stmt::For { target, .. } => target,
            _ => continue,
        };
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// Names `body` may read before it certainly binds them: what one iteration takes from the
/// previous one (or from before the loop).
pub fn exposed(body: &[Stmt]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    exposed_in(body, &mut BTreeSet::new(), &mut out);
    out
}

/// Walks `body` with `bound` (certainly bound so far), adding reads of unbound names to `out`.
fn exposed_in(body: &[Stmt], bound: &mut BTreeSet<String>, out: &mut BTreeSet<String>) {
    for s in body {
        for r in s.header_reads() {
            if !bound.contains(r) {
                out.insert(r.to_string());
            }
        }
        match s {
            Stmt::Assign { target, .. } => {
                bound.insert(target.clone());
            }
            Stmt::If { body, orelse, .. } => {
                let mut b1 = bound.clone();
                exposed_in(body, &mut b1, out);
                let mut b2 = bound.clone();
                exposed_in(orelse, &mut b2, out);
                *bound = b1.intersection(&b2).cloned().collect();
            }
            // A loop may run no iteration: what it binds is not certainly bound after it.
            Stmt::For { target, body, .. } => {
                let mut inner = bound.clone();
                inner.insert(target.clone());
                exposed_in(body, &mut inner, out);
            }
            Stmt::While { body, .. } => exposed_in(body, &mut bound.clone(), out),
            _ => {}
        }
    }
}

/// The snapshot of checkpointed loop `target`/`body`: what an iteration must find restored to
/// run again as it ran the first time, and to leave behind what the backward pass of the
/// statements before the loop reads. `outside`: names bound outside the loop (parameters
/// too); `needed`: names the backward pass reads. In order of first binding. The loop
/// variable is not part of it: the backward pass takes it from the loop's sequence (so that
/// snapshots hold only values, which a derivative of the gradient differentiates).
pub fn snapshot(
    target: &str,
    body: &[Stmt],
    outside: &BTreeSet<String>,
    needed: &BTreeSet<String>,
) -> Vec<String> {
    let carried = exposed(body);
    bound(body)
        .into_iter()
        .filter(|name| name != target)
        // Carried into the next iteration, or a value from outside the loop that the loop
        // overwrites and a backward pass after it (before the loop) may read.
        .filter(|name| carried.contains(name) || (needed.contains(name) && outside.contains(name)))
        .collect()
}

/// Names bound by the statements of `body` outside the loop statement `skip`.
pub fn bound_outside(body: &[Stmt], skip: &Stmt) -> BTreeSet<String> {
    fn walk(body: &[Stmt], skip: &Stmt, out: &mut BTreeSet<String>) {
        for s in body {
            if std::ptr::eq(s, skip) {
                continue;
            }
            match s {
                Stmt::Assign { target, .. } => {
                    out.insert(target.clone());
                }
                Stmt::For { target, body, .. } => {
                    out.insert(target.clone());
                    walk(body, skip, out);
                }
                Stmt::If { body, orelse, .. } => {
                    walk(body, skip, out);
                    walk(orelse, skip, out);
                }
                Stmt::While { body, .. } => walk(body, skip, out),
                _ => {}
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(body, skip, &mut out);
    out
}

/// Why `body` cannot be checkpointed, if it cannot: the statement at fault and what it does.
/// A snapshot holds references, so a container changed in place that lives across
/// iterations (not created afresh in each) would be seen changed when an iteration runs
/// again; a `return` or a `break` of the checkpointed loop would end only the segment.
pub fn obstacle(body: &[Stmt]) -> Option<(&Stmt, &'static str)> {
    let carried = exposed(body);
    let fresh: BTreeSet<String> = bound(body).into_iter().collect();
    let lives_across = |name: &str| carried.contains(name) || !fresh.contains(name);
    fn exits<'s>(body: &'s [Stmt], depth: usize, found: &mut Option<&'s Stmt>) {
        for s in body {
            match s {
                Stmt::Return { .. } => *found = found.or(Some(s)),
                Stmt::Break { .. } if depth == 0 => *found = found.or(Some(s)),
                Stmt::If { body, orelse, .. } => {
                    exits(body, depth, found);
                    exits(orelse, depth, found);
                }
                Stmt::For { body, .. } | Stmt::While { body, .. } => exits(body, depth + 1, found),
                _ => {}
            }
        }
    }
    let mut exit = None;
    exits(body, 0, &mut exit);
    if let Some(s) = exit {
        return Some((s, "leaves the checkpointed loop early"));
    }
    for s in crate::ir::all_statements(body) {
        let changed = match s {
            Stmt::AssignIndex { target, .. }
            | Stmt::Append { target, .. }
            | Stmt::PopLast { target, .. } => target,
            Stmt::Restore { container, .. } => container,
            Stmt::Push { stack, .. } => stack,
            Stmt::InsertGradOf { .. } => {
                return Some((s, "has gradient surgery (`insert_grad_of`)"));
            }
            _ => continue,
        };
        if lives_across(changed) {
            return Some((
                s,
                "changes a container that lives across iterations in place",
            ));
        }
    }
    None
}

/// The names `body` changes in place (`h *= 0.9`, `np.tanh(h, out=h)`, a helper writing
/// into `h`): a snapshot keeps a copy of them, not the object the iteration goes on to change.
pub fn changed_in_place(body: &[Stmt]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in crate::ir::all_statements(body) {
        if let Stmt::Assign {
            target,
            inplace: Some(how),
            ..
        } = s
        {
            match how {
                crate::ir::InPlace::Updates(updated) => {
                    out.extend(updated.iter().map(|(_, n)| n.clone()))
                }
                _ => {
                    out.insert(target.clone());
                }
            }
        }
    }
    out
}

/// The snapshot `names` as a tuple display, copies of those in `copied`: `(h,)`,
/// `(tangent.copy(h), c)`.
pub fn saved(names: &[String], copied: &BTreeSet<String>) -> String {
    let items: Vec<String> = names
        .iter()
        .map(|n| {
            if copied.contains(n) {
                format!("tangent.copy({n})")
            } else {
                n.clone()
            }
        })
        .collect();
    pattern(&items)
}

/// A snapshot as a tuple display and a loop target: `(h,)`, `(_segment1, h, c)`, `()`.
pub fn pattern(names: &[String]) -> String {
    match names {
        [one] => format!("({one},)"),
        _ => format!("({})", names.join(", ")),
    }
}

const MARKER: &str = "\u{1}run again: ";

/// Where the backward pass of checkpointed loop `key` runs its body again; replaced by
/// [`splice`] once the forward sweep (which generates that body) is done.
pub fn marker(key: usize) -> Code {
    Code::Comment(format!("{MARKER}{key}"))
}

/// Replaces every marker in `code` by the taped body it stands for.
pub fn splice(code: &mut Vec<Code>, bodies: &mut BTreeMap<usize, Vec<Code>>) {
    let mut out = Vec::with_capacity(code.len());
    for mut c in code.drain(..) {
        match &mut c {
            Code::Comment(text) if text.starts_with(MARKER) => {
                let key: usize = text[MARKER.len()..].parse().unwrap_or_default();
                let mut body = bodies.remove(&key).unwrap_or_default();
                splice(&mut body, bodies);
                out.extend(body);
                continue;
            }
            Code::If { body, orelse, .. } => {
                splice(body, bodies);
                splice(orelse, bodies);
            }
            Code::Loop { body, .. } => splice(body, bodies),
            _ => {}
        }
        out.push(c);
    }
    *code = out;
}
