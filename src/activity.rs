//! Activity analysis: a variable is active when it is *varied* (depends on a differentiated
//! input through differentiable operations) and *useful* (the output depends on it through
//! differentiable operations). Only active variables get adjoints, so inactive code — loop
//! counters, shapes, masks, constants — produces no backward code at all.
//!
//! The analysis is flow-insensitive over the normalized IR (a fixpoint over all statements):
//! conservative, cheap, and exact for the code people write.

use std::collections::BTreeSet;

use crate::ir::{Atom, Callee, Expr, Function, Stmt};
use crate::recipes::RecipeSet;

/// Attributes whose value does not depend differentiably on the object.
const INERT_ATTRIBUTES: &[&str] = &["shape", "ndim", "size", "dtype", "itemsize", "nbytes", "strides"];
/// Methods whose result does not depend differentiably on the object.
const INERT_METHODS: &[&str] = &[
    "argmax", "argmin", "argsort", "nonzero", "any", "all", "astype_int", "tolist_int", "keys",
    "index", "count", "__len__",
];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Activity {
    pub varied: BTreeSet<String>,
    pub useful: BTreeSet<String>,
}

impl Activity {
    pub fn is_active(&self, name: &str) -> bool {
        self.varied.contains(name) && self.useful.contains(name)
    }

    pub fn atom_active(&self, a: &Atom) -> bool {
        a.name().is_some_and(|n| self.is_active(n))
    }
}

/// Names read by `e` through which derivatives flow.
pub fn differentiable_reads<'e>(e: &'e Expr, recipes: &RecipeSet) -> Vec<&'e str> {
    match e {
        Expr::Compare { .. } => vec![],
        // Opaque code (lambdas, comprehensions) may compute with what it reads: the target is
        // active if they are, and reverse mode then reports it as unsupported.
        Expr::Opaque { reads, .. } => reads.iter().filter(|r| !r.starts_with("__")).map(String::as_str).collect(),
        Expr::UnaryOp { op, .. } if op == "not" || op == "~" => vec![],
        Expr::Subscript { value, .. } => value.name().into_iter().collect(),
        Expr::Attribute { value, attr } => {
            if INERT_ATTRIBUTES.contains(&attr.as_str()) {
                vec![]
            } else {
                value.name().into_iter().collect()
            }
        }
        Expr::Dict(items) => items.iter().filter_map(|(_, v)| v.name()).collect(),
        Expr::Call { callee, .. } => {
            let inert = match callee {
                Callee::Function { canonical: Some(c), .. } => recipes.nondifferentiable.contains(c),
                Callee::Method { method, .. } => {
                    INERT_METHODS.contains(&method.as_str())
                        || recipes.nondifferentiable.contains(&format!("numpy.{method}"))
                }
                _ => false,
            };
            if inert { vec![] } else { e.reads() }
        }
        _ => e.reads(),
    }
}

/// One def-use edge: `target` depends differentiably on `source`.
fn edges(body: &[Stmt], recipes: &RecipeSet, out: &mut Vec<(String, String)>) {
    for s in body {
        match s {
            Stmt::Assign { target, value, .. } => {
                for r in differentiable_reads(value, recipes) {
                    out.push((target.clone(), r.to_string()));
                }
            }
            Stmt::AssignIndex { target, value, .. }
            | Stmt::Append { target, value, .. }
            | Stmt::Push { stack: target, value, .. }
            | Stmt::Restore { container: target, saved: value, .. } => {
                if let Some(v) = value.name() {
                    out.push((target.clone(), v.to_string()));
                }
            }
            Stmt::If { body, orelse, .. } => {
                edges(body, recipes, out);
                edges(orelse, recipes, out);
            }
            Stmt::For { body, .. } | Stmt::While { body, .. } => edges(body, recipes, out),
            _ => {}
        }
    }
}

pub fn analyze(f: &Function, wrt: &[String], outputs: &[Atom], recipes: &RecipeSet) -> Activity {
    let mut deps = Vec::new();
    edges(&f.body, recipes, &mut deps);
    let mut varied: BTreeSet<String> = wrt.iter().cloned().collect();
    loop {
        let before = varied.len();
        for (t, s) in &deps {
            if varied.contains(s) {
                varied.insert(t.clone());
            }
        }
        if varied.len() == before {
            break;
        }
    }
    let mut useful: BTreeSet<String> = outputs.iter().filter_map(|a| a.name().map(str::to_string)).collect();
    loop {
        let before = useful.len();
        for (t, s) in &deps {
            if useful.contains(t) {
                useful.insert(s.clone());
            }
        }
        if useful.len() == before {
            break;
        }
    }
    Activity { varied, useful }
}

/// Does any statement read `name` differentiably?
pub fn has_differentiable_use(body: &[Stmt], name: &str, recipes: &RecipeSet) -> bool {
    let mut deps = Vec::new();
    edges(body, recipes, &mut deps);
    deps.iter().any(|(_, s)| s == name)
}

/// The first statement that reads `name` at all (for diagnostics).
pub fn first_use<'s>(body: &'s [Stmt], name: &str) -> Option<&'s Stmt> {
    for s in body {
        let found = match s {
            Stmt::Assign { value, .. } => value.reads().contains(&name),
            Stmt::AssignIndex { index, value, .. } => {
                index.reads.iter().any(|r| r == name) || value.name() == Some(name)
            }
            Stmt::Append { value, .. } => value.name() == Some(name),
            Stmt::If { test, body, orelse, .. } => {
                if test.reads().contains(&name) {
                    true
                } else if let Some(s) = first_use(body, name).or_else(|| first_use(orelse, name)) {
                    return Some(s);
                } else {
                    false
                }
            }
            Stmt::For { iter, body, .. } => {
                if iter.reads().contains(&name) {
                    true
                } else if let Some(s) = first_use(body, name) {
                    return Some(s);
                } else {
                    false
                }
            }
            Stmt::While { test, body, .. } => {
                if test.reads().contains(&name) {
                    true
                } else if let Some(s) = first_use(body, name) {
                    return Some(s);
                } else {
                    false
                }
            }
            Stmt::Opaque { reads, .. } => reads.iter().any(|r| r == name),
            _ => false,
        };
        if found {
            return Some(s);
        }
    }
    None
}
