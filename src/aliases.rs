//! Aliases changed in place: `b = a` makes `b` a second name for the same list or array; a
//! later `b[i] = v` or `b.append(v)` changes what `a` names too. The IR treats names as
//! values, so a reverse-mode gradient through code that then reads the other name would miss
//! that flow and be silently wrong: it is refused instead, with the way out (a copy, or one
//! name). The same holds for forward mode, whose tangents do not alias as their values do.

use crate::ir::{Atom, Expr, Stmt};

/// A statement in program order: its position and the position ranges of the loops around
/// it (a statement in a loop may run after any other statement of that loop).
struct Placed<'s> {
    stmt: &'s Stmt,
    at: usize,
    loops: Vec<(usize, usize)>,
}

fn place<'s>(body: &'s [Stmt], loops: &mut Vec<(usize, usize)>, out: &mut Vec<Placed<'s>>) {
    for s in body {
        let at = out.len();
        out.push(Placed { stmt: s, at, loops: loops.clone() });
        match s {
            Stmt::If { body, orelse, .. } => {
                place(body, loops, out);
                place(orelse, loops, out);
            }
            Stmt::For { body, .. } | Stmt::While { body, .. } => {
                // The loop's range is known once its body is placed.
                loops.push((at, usize::MAX));
                let first = out.len();
                place(body, loops, out);
                loops.pop();
                let end = out.len();
                for p in &mut out[first..end] {
                    for range in p.loops.iter_mut().filter(|r| r.0 == at) {
                        range.1 = end;
                    }
                }
            }
            _ => {}
        }
    }
}

/// May `later` run after `earlier`?
fn may_follow(earlier: &Placed<'_>, later: &Placed<'_>) -> bool {
    later.at > earlier.at || later.loops.iter().any(|&(start, end)| (start..end).contains(&earlier.at))
}

/// The first user-written `b = a` (both plain names) after which one of the two is changed in
/// place and the other is read after that change: `(alias statement, in-place change)`.
/// The diagnostic for [`changed_alias`] in `body` (read from `file`), if any.
pub fn check(body: &[Stmt], file: crate::parse::SourceFile<'_>) -> Result<(), crate::diagnostics::Diagnostic> {
    let Some((alias, change)) = changed_alias(body) else { return Ok(()) };
    let (a, c) = (alias.origin(), change.origin());
    Err(file
        .diagnostic(
            crate::diagnostics::DiagnosticKind::Unsupported,
            format!("`{}` makes two names for one value, and `{}` changes it in place: Tangent does not follow such aliases", a.text, c.text),
            a.start,
            a.end,
        )
        .with_help("copy it (`b = a.copy()`, `b = list(a)`) or use one name".to_string()))
}

/// Generated code differentiated again (it restores items it saved: `Restore`, `Push`,
/// `PopLast`) is taken as written: its aliasing is the one the first derivative relied on.
/// Activity is no filter: an alias fools it too (`b = a; b[0] = x` leaves `a` "inactive").
pub fn changed_alias(body: &[Stmt]) -> Option<(&Stmt, &Stmt)> {
    let generated = crate::ir::all_statements(body).iter().any(|s| matches!(s, Stmt::Restore { .. } | Stmt::Push { .. } | Stmt::PopLast { .. }));
    if generated {
        return None;
    }
    let mut placed = Vec::new();
    place(body, &mut Vec::new(), &mut placed);
    let changes: Vec<(&str, &Placed<'_>)> = placed.iter().filter_map(|p| changed_name(p.stmt).map(|n| (n, p))).collect();
    if changes.is_empty() {
        return None;
    }
    for alias in &placed {
        let Stmt::Assign { target, value: Expr::Atom(Atom::Name(source)), origin } = alias.stmt else { continue };
        // Only what the user wrote as `b = a` (the normalizer's own copies are not aliases
        // the user relies on).
        if origin.text.replace(' ', "") != format!("{target}={source}") || target == source {
            continue;
        }
        for (changed, change) in &changes {
            let other = match *changed {
                c if c == target => source,
                c if c == source => target,
                _ => continue,
            };
            if !may_follow(alias, change) {
                continue;
            }
            let read_after = placed.iter().any(|r| {
                !std::ptr::eq(r.stmt, alias.stmt) && may_follow(change, r) && r.stmt.header_reads().contains(&other.as_str())
            });
            if read_after {
                return Some((alias.stmt, change.stmt));
            }
        }
    }
    None
}

/// The name a statement changes in place, if any.
fn changed_name(s: &Stmt) -> Option<&str> {
    match s {
        Stmt::AssignIndex { target, .. } | Stmt::Append { target, .. } | Stmt::PopLast { target, .. } => Some(target),
        Stmt::Restore { container, .. } => Some(container),
        _ => None,
    }
}
