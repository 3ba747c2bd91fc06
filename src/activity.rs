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
pub(crate) const INERT_ATTRIBUTES: &[&str] = &[
    "shape", "ndim", "size", "dtype", "itemsize", "nbytes", "strides", "device", "flags",
];
/// Methods whose result does not depend differentiably on the object.
const INERT_METHODS: &[&str] = &[
    "argmax",
    "argmin",
    "argsort",
    "nonzero",
    "any",
    "all",
    "astype_int",
    "tolist_int",
    "keys",
    "index",
    "count",
    "__len__",
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

    /// Does a call read no active value (its object, arguments and keywords)? Then its
    /// result is a constant of the differentiation (`e = rs.normal(size=3)` before `e` is
    /// given a differentiated value): no derivative flows through it, recipe or not.
    pub fn call_inputs_inactive(
        &self,
        object: Option<&Atom>,
        args: &[Atom],
        kwargs: &[(String, Atom)],
    ) -> bool {
        object
            .into_iter()
            .chain(args)
            .chain(kwargs.iter().map(|(_, a)| a))
            .all(|a| !self.atom_active(a))
    }

    /// The active arguments of a call to a function with parameters `params`, with their
    /// parameter positions, in position order (keywords bound by name).
    pub fn active_arguments<'c>(
        &self,
        params: &[String],
        args: &'c [Atom],
        kwargs: &'c [(String, Atom)],
    ) -> Vec<(usize, &'c Atom)> {
        let mut out: Vec<(usize, &Atom)> = args
            .iter()
            .enumerate()
            .filter(|(_, a)| self.atom_active(a))
            .collect();
        for (k, a) in kwargs {
            if self.atom_active(a) {
                if let Some(i) = params.iter().position(|p| p == k) {
                    out.push((i, a));
                }
            }
        }
        out.sort_by_key(|p| p.0);
        out
    }
}

/// Names read by `e` through which derivatives flow.
pub fn differentiable_reads<'e>(e: &'e Expr, recipes: &RecipeSet) -> Vec<&'e str> {
    match e {
        Expr::Compare { .. } => vec![],
        // Opaque code (lambdas, comprehensions) may compute with what it reads: the target is
        // active if they are, and reverse mode then reports it as unsupported.
        Expr::Opaque { .. } if e.carries_no_derivative() => vec![],
        Expr::Opaque { reads, .. } => reads
            .iter()
            .filter(|r| !r.starts_with("__"))
            .map(String::as_str)
            .collect(),
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
                Callee::Function {
                    canonical: Some(c), ..
                } => recipes.nondifferentiable.contains(c),
                Callee::Method { method, .. } => {
                    INERT_METHODS.contains(&method.as_str())
                        || recipes
                            .nondifferentiable
                            .contains(&format!("numpy.{method}"))
                }
                _ => false,
            };
            if inert { vec![] } else { e.reads() }
        }
        _ => e.reads(),
    }
}

/// `tangent.pop(stack)` (the call generated code restores saved values with).
pub fn popped_stack(value: &Expr) -> Option<&str> {
    match value {
        Expr::Call {
            callee: Callee::Function {
                canonical: Some(c), ..
            },
            args,
            kwargs,
        } if c == "tangent.pop" && args.len() == 1 && kwargs.is_empty() => args[0].name(),
        _ => None,
    }
}

/// How values pushed on a stack by generated code pair with the values popped from it.
///
/// Generated code pops a value back into the variable it pushed (`tangent.push(_stack, y)`
/// ... `y = tangent.pop(_stack)`). A few other pairs have fixed shapes: an element saved with
/// `tangent.save_item(c, i)` comes back through `tangent.restore_item(c, i, ...)`; the last
/// item of a list pushed before `xs.pop()` comes back through `xs.append(...)`; a popped
/// adjoint is added into the adjoint it belongs to (`bx = tangent.add_grad(bx, ...)`). Each
/// pair shares a *slot*, a pseudo variable such as `stack[y]` or `stack[item of c]`. Activity
/// treats a slot and the variables that go through it as one (edges both ways), so a value
/// and the one it is restored into are both active or both inactive, and a derivative pushes
/// a tangent or adjoint exactly when the matching pop takes one off.
#[derive(Debug, Default)]
pub struct StackSlots {
    /// Temporaries pushed that stand for something else: name -> what (`item of c`).
    pushed_as: std::collections::BTreeMap<String, String>,
    /// Temporaries popped into something else: name -> what.
    popped_as: std::collections::BTreeMap<String, String>,
    /// `(stack, name)` of every name pushed: a pop into such a name pairs with its push.
    pushed_names: BTreeSet<(String, String)>,
}

impl StackSlots {
    pub fn new(body: &[Stmt]) -> Self {
        let mut slots = StackSlots::default();
        for s in crate::ir::all_statements(body) {
            if let Stmt::Push {
                stack,
                value: Atom::Name(v),
                ..
            } = s
            {
                slots.pushed_names.insert((stack.clone(), v.clone()));
            }
        }
        slots.collect(body);
        slots
    }

    fn collect(&mut self, body: &[Stmt]) {
        for (i, s) in body.iter().enumerate() {
            // A temporary popped by the statement just before this one.
            let popped_before = |t: &str| {
                i > 0
                    && matches!(&body[i - 1], Stmt::Assign { target: p, value, .. } if p == t && popped_stack(value).is_some())
            };
            // ... that no push saved by its name: `bx = tangent.add_grad(bx, _t)` after
            // `_t = bstack.pop()` adds the adjoint `bstack.append(bx)` saved, but after
            // `by = bstack.pop()` it adds `by`, which `bstack.append(by)` saved (`y = x`,
            // `stack.append(y)` in the code differentiated).
            let popped_temporary = |t: &str| {
                i > 0
                    && matches!(&body[i - 1], Stmt::Assign { target: p, value, .. }
                        if p == t && popped_stack(value).is_some_and(|stack| !self.pushed_names.contains(&(stack.to_string(), t.to_string()))))
            };
            match s {
                Stmt::Assign {
                    target,
                    value:
                        Expr::Call {
                            callee:
                                Callee::Function {
                                    canonical: Some(c), ..
                                },
                            args,
                            ..
                        },
                    ..
                } if c == "tangent.save_item" => {
                    if let Some(container) = args.first().and_then(Atom::name) {
                        self.pushed_as
                            .insert(target.clone(), format!("item of {container}"));
                    }
                }
                // The old contents of `x` saved before a change in place, put back by
                // `x = tangent.write_into(x, s.pop())`.
                Stmt::Assign {
                    target,
                    value:
                        Expr::Call {
                            callee:
                                Callee::Function {
                                    canonical: Some(c), ..
                                },
                            args,
                            ..
                        },
                    ..
                } if c == "tangent.copy" && args.len() == 1 => {
                    if let Some(x) = args[0].name() {
                        self.pushed_as
                            .insert(target.clone(), format!("contents of {x}"));
                    }
                }
                Stmt::Assign {
                    target,
                    value:
                        Expr::Call {
                            callee:
                                Callee::Function {
                                    canonical: Some(c), ..
                                },
                            args,
                            ..
                        },
                    ..
                } if c == "tangent.write_into"
                    && args.len() == 2
                    && args[0].name() == Some(target.as_str()) =>
                {
                    if let Some(t) = args[1].name().filter(|t| popped_before(t)) {
                        self.popped_as
                            .insert(t.to_string(), format!("contents of {target}"));
                    }
                }
                // `tangent.push(s, xs[-1])` right before `xs.pop()`.
                Stmt::Assign {
                    target,
                    value:
                        Expr::Subscript {
                            value: Atom::Name(list),
                            index,
                        },
                    ..
                } if index.text == "-1"
                    && matches!(body.get(i + 1), Some(Stmt::Push { value: Atom::Name(v), .. }) if v == target)
                    && matches!(body.get(i + 2), Some(Stmt::PopLast { target: t, .. }) if t == list) =>
                {
                    self.pushed_as
                        .insert(target.clone(), format!("last of {list}"));
                }
                Stmt::Restore {
                    container,
                    saved: Atom::Name(t),
                    ..
                } => {
                    self.popped_as
                        .insert(t.clone(), format!("item of {container}"));
                }
                Stmt::Append {
                    target,
                    value: Atom::Name(t),
                    ..
                } if popped_before(t) => {
                    self.popped_as
                        .insert(t.clone(), format!("last of {target}"));
                }
                Stmt::Assign {
                    target,
                    value:
                        Expr::Call {
                            callee:
                                Callee::Function {
                                    canonical: Some(c), ..
                                },
                            args,
                            ..
                        },
                    ..
                } if c == "tangent.add_grad"
                    && args.len() == 2
                    && args[0].name() == Some(target.as_str()) =>
                {
                    if let Some(t) = args[1].name().filter(|t| popped_temporary(t)) {
                        self.popped_as.insert(t.to_string(), target.clone());
                    }
                }
                Stmt::If { body, orelse, .. } => {
                    self.collect(body);
                    self.collect(orelse);
                }
                Stmt::For { body, .. } | Stmt::While { body, .. } => self.collect(body),
                _ => {}
            }
        }
    }

    /// The slot a pushed value goes into.
    pub fn pushed(&self, stack: &str, value: &Atom) -> String {
        match value {
            Atom::Name(v) => format!("{stack}[{}]", self.pushed_as.get(v).unwrap_or(v)),
            Atom::Const(c) => format!("{stack}[constant {c}]"),
        }
    }

    /// The slot `target = tangent.pop(stack)` takes its value from.
    pub fn popped(&self, stack: &str, target: &str) -> String {
        format!(
            "{stack}[{}]",
            self.popped_as.get(target).map_or(target, String::as_str)
        )
    }
}

/// A stack the function pushes on or pops from without creating it (`s = tangent.Stack()`):
/// split motion's backward pass pops what its forward pass pushed, in another function.
pub fn foreign_stack_use(body: &[Stmt]) -> Option<(&Stmt, String)> {
    let statements = crate::ir::all_statements(body);
    let created: BTreeSet<&str> = statements
        .iter()
        .filter_map(|s| match s {
            Stmt::Assign {
                target,
                value:
                    Expr::Call {
                        callee:
                            Callee::Function {
                                canonical: Some(c), ..
                            },
                        ..
                    },
                ..
            } if c == "tangent.Stack" => Some(target.as_str()),
            _ => None,
        })
        .collect();
    statements.into_iter().find_map(|s| {
        let used = match s {
            Stmt::Push { stack, .. } => Some(stack.as_str()),
            Stmt::Assign { value, .. } => popped_stack(value),
            _ => None,
        };
        used.filter(|stack| !created.contains(stack))
            .map(|stack| (s, stack.to_string()))
    })
}

/// A stack whose pushes and pops do not pair by slot (hand-edited generated code): the
/// derivative could not tell which tangent or adjoint belongs to which value.
pub fn unpaired_stack_use<'s>(body: &'s [Stmt]) -> Option<(&'s Stmt, String)> {
    let slots = StackSlots::new(body);
    let mut pushed: std::collections::BTreeMap<String, (&Stmt, String)> = Default::default();
    let mut popped: std::collections::BTreeMap<String, (&Stmt, String)> = Default::default();
    for s in crate::ir::all_statements(body) {
        match s {
            Stmt::Push { stack, value, .. } => {
                pushed
                    .entry(slots.pushed(stack, value))
                    .or_insert((s, value.to_string()));
            }
            Stmt::Assign { target, value, .. } => {
                if let Some(stack) = popped_stack(value) {
                    popped
                        .entry(slots.popped(stack, target))
                        .or_insert((s, target.clone()));
                }
            }
            _ => {}
        }
    }
    if let Some((slot, (s, v))) = pushed.iter().find(|(slot, _)| !popped.contains_key(*slot)) {
        let stack = slot.split('[').next().unwrap_or(slot);
        return Some((
            *s,
            format!("`{v}` is pushed on `{stack}` but never popped back into `{v}`"),
        ));
    }
    if let Some((slot, (s, v))) = popped.iter().find(|(slot, _)| !pushed.contains_key(*slot)) {
        let stack = slot.split('[').next().unwrap_or(slot);
        return Some((
            *s,
            format!("`{v}` is popped from `{stack}` but `{v}` is never pushed on it"),
        ));
    }
    None
}

/// One def-use edge: `target` depends differentiably on `source`.
fn edges(body: &[Stmt], recipes: &RecipeSet, out: &mut Vec<(String, String)>) {
    let slots = StackSlots::new(body);
    edges_with(body, recipes, &slots, out);
}

fn edges_with(
    body: &[Stmt],
    recipes: &RecipeSet,
    slots: &StackSlots,
    out: &mut Vec<(String, String)>,
) {
    for s in body {
        match s {
            Stmt::Assign { target, value, .. } if popped_stack(value).is_some() => {
                let slot = slots.popped(popped_stack(value).unwrap_or_default(), target);
                out.push((target.clone(), slot.clone()));
                out.push((slot, target.clone()));
            }
            Stmt::Assign { target, value, .. } => {
                for r in differentiable_reads(value, recipes) {
                    out.push((target.clone(), r.to_string()));
                }
            }
            Stmt::Push { stack, value, .. } => {
                if let Some(v) = value.name() {
                    let slot = slots.pushed(stack, value);
                    out.push((slot.clone(), v.to_string()));
                    out.push((v.to_string(), slot));
                }
            }
            Stmt::AssignIndex { target, value, .. }
            | Stmt::Append { target, value, .. }
            | Stmt::Restore {
                container: target,
                saved: value,
                ..
            } => {
                if let Some(v) = value.name() {
                    out.push((target.clone(), v.to_string()));
                }
            }
            Stmt::If { body, orelse, .. } => {
                edges_with(body, recipes, slots, out);
                edges_with(orelse, recipes, slots, out);
            }
            Stmt::For { body, .. } | Stmt::While { body, .. } => {
                edges_with(body, recipes, slots, out)
            }
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
    let mut useful: BTreeSet<String> = outputs
        .iter()
        .filter_map(|a| a.name().map(str::to_string))
        .collect();
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
            Stmt::Append { value, .. } | Stmt::Push { value, .. } => value.name() == Some(name),
            Stmt::If {
                test, body, orelse, ..
            } => {
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
