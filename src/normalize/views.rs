//! Views kept in step with what they view.
//!
//! `head = v[:2]; v *= 3.0; ... head ...` and `for row in A: row /= row.sum(); ... A ...`
//! change memory that another name reads afterwards. The IR treats names as values, so after
//! such a change each name that sees it must be given its new value explicitly. For a view
//! whose making the function shows (`w = b[index]`, a loop's row `w = b[i]`, `w = b.T`,
//! `w = b.reshape(s)`, `w = np.reshape(b, s)`, `w = b.ravel()`), and whose base and index
//! names still hold what they held then, the change is followed by statements that say what
//! happened to the memory, each under a run-time test that the two really share it
//! (`tangent.is_view_of`: both arrays, overlapping memory; a copy — advanced indexing, a
//! reshape that had to copy — shares nothing, and nothing is done):
//!
//! - up from the changed name to the base: the view's new contents are the base's new
//!   contents there (`b[index] = w`; for `.T`, `b[...] = w.T`; for a reshape,
//!   `b[...] = w.reshape(b.shape)`);
//! - down from a base to the other views read afterwards: each is made again (`head = v[:2]`).
//!
//! The generated primal code runs them as written: a write-back copies memory onto itself and
//! a view made again is the same memory, so they change no value; they give the derivative the
//! paths the change took. A name that shares the changed memory some other way keeps the
//! run-time check that refuses the change at its line (see `aliases`), and so does a list
//! holding an array (`tangent.in_place_check(..., views=...)`).

use std::collections::{BTreeMap, BTreeSet};

use crate::aliases::IS_VIEW_OF;
use crate::ir::{Atom, Callee, Expr, InPlace, Index, Origin, Stmt};

use super::Normalizer;

/// How a view was made from its base.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// `base[index]`.
    Item(Index),
    /// `base.T`, `base.transpose()`, `np.transpose(base)`.
    Transpose,
    /// `base.reshape(...)`, `np.reshape(base, ...)`, `base.ravel()`, `np.ravel(base)`.
    Reshape,
    /// `base` itself (`b = a`): the same object.
    Same,
}

/// A view's making, valid while `base` and the names in `value` are not given new values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ViewDef {
    base: String,
    value: Expr,
    kind: Kind,
}

impl ViewDef {
    fn of(target: &str, value: &Expr) -> Option<ViewDef> {
        let (base, kind) = match value {
            Expr::Atom(Atom::Name(b)) => (b, Kind::Same),
            Expr::Subscript {
                value: Atom::Name(b),
                index,
            } => (b, Kind::Item(index.clone())),
            Expr::Attribute {
                value: Atom::Name(b),
                attr,
            } if attr == "T" => (b, Kind::Transpose),
            Expr::Call {
                callee:
                    Callee::Method {
                        object: Atom::Name(b),
                        method,
                    },
                args,
                kwargs,
            } => match method.as_str() {
                "transpose" if args.is_empty() && kwargs.is_empty() => (b, Kind::Transpose),
                "reshape" if kwargs.is_empty() && !args.is_empty() => (b, Kind::Reshape),
                "ravel" if args.is_empty() && kwargs.is_empty() => (b, Kind::Reshape),
                _ => return None,
            },
            Expr::Call {
                callee:
                    Callee::Function {
                        canonical: Some(c), ..
                    },
                args,
                kwargs,
            } if kwargs.is_empty() => match (c.as_str(), &args[..]) {
                ("numpy.transpose", [Atom::Name(b)]) => (b, Kind::Transpose),
                ("numpy.reshape", [Atom::Name(b), _]) => (b, Kind::Reshape),
                ("numpy.ravel", [Atom::Name(b)]) => (b, Kind::Reshape),
                _ => return None,
            },
            _ => return None,
        };
        let def = ViewDef {
            base: base.clone(),
            value: value.clone(),
            kind,
        };
        (def.base != target && !def.reads().contains(&target)).then_some(def)
    }

    fn reads(&self) -> Vec<&str> {
        self.value.reads()
    }
}

/// The views whose making is valid at a point, by name.
type Defs = BTreeMap<String, ViewDef>;

fn kill(defs: &mut Defs, name: &str) {
    defs.remove(name);
    defs.retain(|_, d| d.base != name && !d.reads().contains(&name));
}

fn meet(a: &Defs, b: &Defs) -> Defs {
    a.iter()
        .filter(|(k, v)| b.get(*k) == Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The views valid before each statement of `keys` (met over the runs of loops).
struct Reaching<'k> {
    keys: &'k BTreeSet<usize>,
    at: BTreeMap<usize, Defs>,
}

impl Reaching<'_> {
    fn block(&mut self, body: &[Stmt], mut defs: Defs) -> Defs {
        for s in body {
            defs = self.stmt(s, defs);
        }
        defs
    }

    fn stmt(&mut self, s: &Stmt, mut defs: Defs) -> Defs {
        let key = s as *const Stmt as usize;
        if self.keys.contains(&key) {
            let met = match self.at.get(&key) {
                Some(old) => meet(old, &defs),
                None => defs.clone(),
            };
            self.at.insert(key, met);
        }
        // An index or shape changed in place (`w = b[idx]`, then `idx[0] = 2`): making the
        // view again would make another one.
        let in_place = matches!(
            s,
            Stmt::AssignIndex { .. }
                | Stmt::Append { .. }
                | Stmt::PopLast { .. }
                | Stmt::Restore { .. }
                | Stmt::Assign {
                    inplace: Some(_),
                    ..
                }
        );
        if in_place {
            for n in crate::aliases::changed_names(s) {
                defs.retain(|_, d| d.base == n || !d.reads().contains(&n));
            }
        }
        match s {
            Stmt::Assign {
                target,
                value,
                inplace,
                ..
            } => match inplace {
                // The same object, changed: views of it stay views of it.
                Some(InPlace::Augmented | InPlace::Into(_) | InPlace::Updated) => {}
                Some(InPlace::Updates(_)) => kill(&mut defs, target),
                None => {
                    kill(&mut defs, target);
                    if let Some(d) = ViewDef::of(target, value) {
                        defs.insert(target.clone(), d);
                    }
                }
            },
            Stmt::If { body, orelse, .. } => {
                let a = self.block(body, defs.clone());
                let b = self.block(orelse, defs);
                defs = meet(&a, &b);
            }
            Stmt::For { target, body, .. } => {
                kill(&mut defs, target);
                defs = self.looped(defs, body, Some(target));
            }
            Stmt::While { body, .. } => defs = self.looped(defs, body, None),
            _ => {}
        }
        defs
    }

    fn looped(&mut self, defs: Defs, body: &[Stmt], target: Option<&String>) -> Defs {
        let mut top = defs;
        for _ in 0..64 {
            let mut entry = top.clone();
            if let Some(t) = target {
                kill(&mut entry, t);
            }
            let end = self.block(body, entry);
            let next = meet(&top, &end);
            if next == top {
                break;
            }
            top = next;
        }
        top
    }
}

/// `name`, its base, its base's base... (as far as valid makings go).
fn ancestors<'d>(defs: &'d Defs, name: &'d str) -> Vec<&'d str> {
    let mut out = vec![name];
    while let Some(d) = defs.get(*out.last().unwrap()) {
        if out.contains(&d.base.as_str()) || out.len() > 32 {
            break;
        }
        out.push(d.base.as_str());
    }
    out
}

/// The statements keeping the views of `changed` in step after a change of its memory, for
/// the names `others` that share it and are read afterwards: write-backs up to the nearest
/// common base of each, then makings again down to it. Empty when none is related so.
fn plan(
    defs: &Defs,
    changed: &[String],
    others: &[String],
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let mut ups: Vec<(String, String)> = Vec::new();
    let mut downs: Vec<(String, String)> = Vec::new();
    for c in changed {
        let up = ancestors(defs, c);
        for o in others {
            let down = ancestors(defs, o);
            let Some((j, common)) = down.iter().enumerate().find(|(_, n)| up.contains(n)) else {
                continue;
            };
            let i = up.iter().position(|n| n == common).unwrap();
            for k in 0..i {
                let link = (up[k].to_string(), up[k + 1].to_string());
                if !ups.contains(&link) {
                    ups.push(link);
                }
            }
            for k in 0..j {
                let link = (down[k].to_string(), down[k + 1].to_string());
                if !downs.contains(&link) {
                    downs.push(link);
                }
            }
        }
    }
    // Bases made again before their views.
    downs.sort_by_key(|(child, _)| ancestors(defs, child).len());
    // A name both written back and made again (it is on the way up): written back only.
    downs.retain(|l| !ups.iter().any(|u| u.0 == l.0));
    (ups, downs)
}

impl Normalizer<'_> {
    /// Inserts the statements keeping views in step after each change in place that a view
    /// or base read afterwards sees (see the module documentation).
    pub(super) fn keep_views_in_step(&mut self, f: &mut crate::ir::Function, result: &[Atom]) {
        let Some(recipes) = self.recipes else { return };
        // Generated code differentiated again (it keeps a stack) already says what its views
        // do: its backward pass puts memory back in place, which changes no value.
        if self.generated || !self.stacks.is_empty() {
            return;
        }
        let summaries = |n: &str| self.effects.and_then(|e| e.get(n)).cloned();
        let Ok(sharing) = crate::aliases::analyze_with(
            f,
            result,
            recipes,
            &summaries,
            self.file,
            crate::aliases::Checks::Guard,
        ) else {
            return;
        };
        if sharing.guarded.is_empty() {
            return;
        }
        let keys: BTreeSet<usize> = sharing.guarded.keys().copied().collect();
        let mut reaching = Reaching {
            keys: &keys,
            at: BTreeMap::new(),
        };
        reaching.block(&f.body, Defs::new());
        let mut inserts: BTreeMap<usize, Vec<Stmt>> = BTreeMap::new();
        // In the order of the code, so that the names made are the same on every run.
        let changes: Vec<(usize, Origin)> = crate::ir::all_statements(&f.body)
            .into_iter()
            .map(|s| (s as *const Stmt as usize, s.origin().clone()))
            .filter(|(k, _)| reaching.at.contains_key(k))
            .collect();
        for (key, origin) in changes {
            let defs = &reaching.at[&key];
            let guard = &sharing.guarded[&key];
            let (ups, downs) = plan(defs, &guard.changed, &guard.others);
            if ups.is_empty() && downs.is_empty() {
                continue;
            }
            let mut out = Vec::new();
            for (child, parent) in &ups {
                let kind = defs[child].kind.clone();
                self.write_back(&mut out, child, parent, kind, &origin);
            }
            for (child, parent) in &downs {
                let value = defs[child].value.clone();
                let body = vec![Stmt::Assign {
                    target: child.clone(),
                    value,
                    origin: origin.clone(),
                    inplace: None,
                }];
                self.when_view(&mut out, child, parent, body, &origin);
            }
            inserts.insert(key, out);
        }
        insert_after(&mut f.body, &mut inserts);
    }

    /// `base[index] = view` (or its transpose, or its reshape to the base's shape), when
    /// `view` shares `base`'s memory.
    fn write_back(
        &mut self,
        out: &mut Vec<Stmt>,
        view: &str,
        base: &str,
        kind: Kind,
        origin: &Origin,
    ) {
        let whole = Index {
            text: "...".into(),
            arg: "Ellipsis".into(),
            reads: Vec::new(),
        };
        let mut body = Vec::new();
        if kind == Kind::Same {
            body.push(Stmt::Assign {
                target: base.to_string(),
                value: Expr::Atom(Atom::Name(view.to_string())),
                origin: origin.clone(),
                inplace: None,
            });
            self.when_view(out, view, base, body, origin);
            return;
        }
        let (index, value) = match kind {
            Kind::Same => unreachable!("handled above"),
            Kind::Item(index) => (index, Atom::Name(view.to_string())),
            Kind::Transpose => {
                let t = self.fresh("t");
                body.push(Stmt::Assign {
                    target: t.clone(),
                    value: Expr::Attribute {
                        value: Atom::Name(view.to_string()),
                        attr: "T".into(),
                    },
                    origin: origin.clone(),
                    inplace: None,
                });
                (whole, Atom::Name(t))
            }
            Kind::Reshape => {
                let shape = self.fresh("shape");
                body.push(Stmt::Assign {
                    target: shape.clone(),
                    value: Expr::Attribute {
                        value: Atom::Name(base.to_string()),
                        attr: "shape".into(),
                    },
                    origin: origin.clone(),
                    inplace: None,
                });
                let t = self.fresh("t");
                let value = Expr::Call {
                    callee: Callee::Method {
                        object: Atom::Name(view.to_string()),
                        method: "reshape".into(),
                    },
                    args: vec![Atom::Name(shape)],
                    kwargs: Vec::new(),
                };
                body.push(Stmt::Assign {
                    target: t.clone(),
                    value,
                    origin: origin.clone(),
                    inplace: None,
                });
                (whole, Atom::Name(t))
            }
        };
        body.push(Stmt::AssignIndex {
            target: base.to_string(),
            index,
            value,
            origin: origin.clone(),
        });
        self.when_view(out, view, base, body, origin);
    }

    /// `_v = tangent.is_view_of(view, base)` and `if _v: body`.
    fn when_view(
        &mut self,
        out: &mut Vec<Stmt>,
        view: &str,
        base: &str,
        body: Vec<Stmt>,
        origin: &Origin,
    ) {
        let flag = self.fresh("shares");
        let test = Expr::Call {
            callee: super::inplace::runtime(IS_VIEW_OF),
            args: vec![Atom::Name(view.to_string()), Atom::Name(base.to_string())],
            kwargs: Vec::new(),
        };
        out.push(Stmt::Assign {
            target: flag.clone(),
            value: test,
            origin: origin.clone(),
            inplace: None,
        });
        out.push(Stmt::If {
            test: Expr::Atom(Atom::Name(flag)),
            body,
            orelse: Vec::new(),
            origin: origin.clone(),
        });
    }
}

/// Puts `inserts[key]` after the statement at address `key`, wherever it is nested.
fn insert_after(body: &mut Vec<Stmt>, inserts: &mut BTreeMap<usize, Vec<Stmt>>) {
    if inserts.is_empty() {
        return;
    }
    let keys: Vec<usize> = body.iter().map(|s| s as *const Stmt as usize).collect();
    for s in body.iter_mut() {
        match s {
            Stmt::If { body, orelse, .. } => {
                insert_after(body, inserts);
                insert_after(orelse, inserts);
            }
            Stmt::For { body, .. } | Stmt::While { body, .. } => insert_after(body, inserts),
            _ => {}
        }
    }
    let old = std::mem::take(body);
    let mut pending: Option<Vec<Stmt>> = None;
    for (s, key) in old.into_iter().zip(keys) {
        // After a call changing its arguments, the steps follow their new values.
        let updated = matches!(
            s,
            Stmt::Assign {
                inplace: Some(InPlace::Updated),
                ..
            }
        );
        if !updated {
            body.extend(pending.take().into_iter().flatten());
        }
        body.push(s);
        if let Some(more) = inserts.remove(&key) {
            pending = Some(more);
        }
    }
    body.extend(pending.take().into_iter().flatten());
}
