//! Forward mode: the tangent of every active variable is computed beside its primal value,
//! statement by statement, in the primal's own control flow (no stack, no second sweep).
//!
//! The tangent of `v` is `d<v>`; tangents of inactive values are zero and never written.
//! Each statement instantiates the callee's `@tangent_` template, dropping the terms of
//! inputs whose tangent is zero.

use std::collections::BTreeMap;

use crate::activity::Activity;
use crate::code::Code;
use crate::diagnostics::{Diagnostic, DiagnosticKind};
use crate::ir::{Atom, Callee, Expr, Function, InPlace, Stmt};
use crate::parse::SourceFile;
use crate::recipes::{Bound, RecipeSet};
use crate::reverse::Names;

type R<T> = Result<T, Diagnostic>;

/// What forward mode needs to know about other functions of the module.
pub trait ForwardCallees {
    /// Parameter names of a function of the same module.
    fn params(&self, function: &str) -> Option<Vec<String>>;
    /// Name of the generated forward derivative of `function` w.r.t. positions `wrt`: it takes
    /// the function's arguments, then one tangent per position, and returns the output's
    /// tangent and the output, `(tangent, value)`: the caller runs it instead of the function,
    /// so the function runs once.
    /// Returns the name and the names of its tangent parameters (passed by keyword).
    /// `updates`: positions of parameters the function writes into, whose new values (and
    /// tangents) it returns after its result (see `ir::InPlace::Updates`).
    fn jvp(
        &mut self,
        function: &str,
        wrt: &[usize],
        updates: &[usize],
        site: &Stmt,
    ) -> R<(String, Vec<String>)>;
}

pub struct Forward<'a> {
    pub f: &'a Function,
    pub act: &'a Activity,
    pub recipes: &'a RecipeSet,
    pub file: SourceFile<'a>,
    pub names: &'a mut Names,
    pub callees: &'a mut dyn ForwardCallees,
    tangents: BTreeMap<String, String>,
    /// Which names share memory (see `aliases`): changes in place checked at run time.
    pub sharing: crate::aliases::Sharing,
    /// Results of JVP calls of helpers that write into their arguments.
    updating_results: std::collections::BTreeSet<String>,
}

impl<'a> Forward<'a> {
    pub fn new(
        f: &'a Function,
        act: &'a Activity,
        recipes: &'a RecipeSet,
        file: SourceFile<'a>,
        names: &'a mut Names,
        callees: &'a mut dyn ForwardCallees,
    ) -> Self {
        Forward {
            f,
            act,
            recipes,
            file,
            names,
            callees,
            tangents: BTreeMap::new(),
            sharing: crate::aliases::Sharing::default(),
            updating_results: Default::default(),
        }
    }

    /// `d<v>`, unique.
    pub fn tangent(&mut self, var: &str) -> String {
        if let Some(t) = self.tangents.get(var) {
            return t.clone();
        }
        let name = tangent_name(self.names, var);
        self.tangents.insert(var.to_string(), name.clone());
        name
    }

    fn tangent_of_atom(&mut self, a: &Atom) -> Option<String> {
        match a {
            Atom::Name(n) if self.act.is_active(n) => Some(self.tangent(n)),
            _ => None,
        }
    }

    /// The tangent of an atom as an expression: its tangent variable, or a zero like it.
    fn tangent_or_zero(&mut self, a: &Atom) -> String {
        self.tangent_of_atom(a)
            .unwrap_or_else(|| format!("tangent.init_grad({a})"))
    }

    pub fn block(&mut self, body: &[Stmt]) -> R<Vec<Code>> {
        let mut out = Vec::new();
        for s in body {
            self.stmt(s, &mut out)?;
        }
        Ok(out)
    }

    fn comment(&self, s: &Stmt, out: &mut Vec<Code>) {
        let text = format!("Tangent of: {}", s.origin().text);
        if !matches!(out.last(), Some(Code::Comment(t)) if *t == text) {
            out.push(Code::Comment(text));
        }
    }

    fn stmt(&mut self, s: &Stmt, out: &mut Vec<Code>) -> R<()> {
        // A change in place another name may see: checked before it happens.
        if let Some(guard) = self.sharing.guarded.get(&(s as *const Stmt as usize)) {
            out.extend(guard.code().iter().map(|c| Code::effect(c)));
        }
        match s {
            Stmt::Assign { target, value, .. } if stack_call(value) == Some("tangent.Stack") => {
                out.push(Code::assign(target, &value.to_string(), false));
            }
            Stmt::Assign { target, value, .. } if stack_call(value) == Some("tangent.pop") => {
                let stack = crate::activity::popped_stack(value).unwrap_or_default();
                if self.act.is_active(target) {
                    // Its tangent was pushed right after it: it comes off the stack first.
                    let dt = self.tangent(target);
                    out.push(Code::assign(&dt, &format!("{stack}.pop()"), false));
                }
                out.push(Code::assign(target, &format!("{stack}.pop()"), false));
            }
            Stmt::Push { stack, value, .. } => {
                out.push(Code::effect(&format!("{stack}.append({value})")));
                if let Some(dv) = self.tangent_of_atom(value) {
                    out.push(Code::effect(&format!("{stack}.append({dv})")));
                }
            }
            Stmt::Assign {
                target,
                value:
                    value @ Expr::Call {
                        callee,
                        args,
                        kwargs,
                    },
                inplace,
                ..
            } if self.act.is_active(target) && self.local_call(callee).is_some() => {
                // A function of the module: its derivative runs it once and returns both
                // its tangent and its value.
                let text = self.local_call(callee).unwrap_or_default();
                let params = self.callees.params(&text).unwrap_or_default();
                let positions = self.act.active_arguments(&params, args, kwargs);
                let updates: Vec<usize> = match inplace {
                    Some(InPlace::Updates(updated)) => updated.iter().map(|(p, _)| *p).collect(),
                    _ => Vec::new(),
                };
                let primal = match inplace {
                    Some(how) => crate::ir::in_place_text(target, value, how),
                    None => format!("{target} = {value}"),
                };
                if positions.is_empty() {
                    out.push(Code::stmt(&primal, vec![target.clone()], false));
                    let dt = self.tangent(target);
                    out.push(Code::assign(
                        &dt,
                        &format!("tangent.init_grad({target})"),
                        false,
                    ));
                    return Ok(());
                }
                let wrt: Vec<usize> = positions.iter().map(|p| p.0).collect();
                let (name, tangent_params) = self.callees.jvp(&text, &wrt, &updates, s)?;
                if !updates.is_empty() {
                    self.updating_results.insert(target.clone());
                }
                let mut parts = crate::ir::call_arguments(args, kwargs);
                for ((_, a), p) in positions.iter().zip(&tangent_params) {
                    let d = self.tangent_of_atom(a).unwrap_or_default();
                    parts.push(format!("{p}={d}"));
                }
                let dt = self.tangent(target);
                self.comment(s, out);
                out.push(Code::stmt(
                    &format!("{dt}, {target} = {name}({})", parts.join(", ")),
                    vec![dt.clone(), target.clone()],
                    false,
                ));
            }
            Stmt::Assign {
                target,
                value,
                inplace,
                ..
            } => {
                let text = match (inplace, value) {
                    // The new value of an argument a helper's JVP wrote into: the caller's
                    // object, unless the helper gave its parameter a new value (a number).
                    (
                        Some(InPlace::Updated),
                        Expr::Subscript {
                            value: Atom::Name(result),
                            ..
                        },
                    ) if self.updating_results.contains(result) => {
                        out.push(Code::effect(&format!(
                            "tangent.check_updated({target}, {value})"
                        )));
                        format!("{target} = {value}")
                    }
                    (Some(how), _) => crate::ir::in_place_text(target, value, how),
                    (None, _) => format!("{target} = {value}"),
                };
                // A change in place reads the object it changes.
                let mut uses: Vec<String> = value.reads().into_iter().map(str::to_string).collect();
                if inplace.is_some() {
                    uses.push(target.clone());
                }
                let primal = Code::Stmt {
                    text,
                    defs: vec![target.clone()],
                    uses,
                    pure: false,
                };
                if !self.act.is_active(target) {
                    out.push(primal);
                    return Ok(());
                }
                let final_dt = self.tangent(target);
                // A statement that reads its own target computes the new value and its tangent
                // aside first, so the tangent sees the operands' old values (and old tangents).
                let self_read = value.reads().contains(&target.as_str());
                let result = if self_read {
                    self.names.fresh(target)
                } else {
                    target.clone()
                };
                let dt = if self_read {
                    self.names.fresh(&final_dt)
                } else {
                    final_dt.clone()
                };
                let mut tangent_stmts = self.tangent_stmts(s, &result, &dt, value)?;
                if tangent_stmts.is_empty() {
                    tangent_stmts.push(Code::assign(
                        &dt,
                        &format!("tangent.init_grad({result})"),
                        false,
                    ));
                }
                if self_read {
                    out.push(Code::Stmt {
                        text: format!("{result} = {value}"),
                        defs: vec![result.clone()],
                        uses: value.reads().into_iter().map(str::to_string).collect(),
                        pure: false,
                    });
                    self.comment(s, out);
                    out.extend(tangent_stmts);
                    // A change in place: the new value goes into the object, as the user's
                    // statement does (a number gets the new value).
                    let new = if inplace.is_some() {
                        format!("tangent.write_into({target}, {result})")
                    } else {
                        result.clone()
                    };
                    out.push(Code::assign(target, &new, false));
                    out.push(Code::assign(&final_dt, &dt, false));
                } else {
                    out.push(primal);
                    self.comment(s, out);
                    out.extend(tangent_stmts);
                }
            }
            Stmt::AssignIndex {
                target,
                index,
                value,
                ..
            } => {
                out.push(Code::Stmt {
                    text: format!("{target}[{}] = {value}", index.text),
                    defs: vec![],
                    uses: vec![target.clone()],
                    pure: false,
                });
                if self.act.is_active(target) {
                    let dt = self.tangent(target);
                    let dv = self.tangent_or_zero(value);
                    self.comment(s, out);
                    // A copy: the tangent may be the caller's seed, never written in place.
                    out.push(Code::assign(
                        &dt,
                        &format!("tangent.add_grad_at(tangent.zero_at({dt}, {idx}), {target}, {idx}, {dv})", idx = index.arg),
                        false,
                    ));
                }
            }
            Stmt::Append { target, value, .. } => {
                out.push(Code::effect(&format!("{target}.append({value})")));
                if self.act.is_active(target) {
                    let dt = self.tangent(target);
                    let dv = self.tangent_or_zero(value);
                    self.comment(s, out);
                    out.push(Code::assign(
                        &dt,
                        &format!("tangent.appended({dt}, {dv})"),
                        false,
                    ));
                }
            }
            Stmt::PopLast { target, .. } => {
                out.push(Code::effect(&format!("{target}.pop()")));
                if self.act.is_active(target) {
                    let dt = self.tangent(target);
                    self.comment(s, out);
                    out.push(Code::assign(&dt, &format!("{dt}[:-1]"), false));
                }
            }
            Stmt::If {
                test, body, orelse, ..
            } => {
                let body = self.block(body)?;
                let orelse = self.block(orelse)?;
                out.push(Code::If {
                    test: test.to_string(),
                    uses: test.reads().into_iter().map(str::to_string).collect(),
                    body,
                    orelse,
                });
            }
            Stmt::For {
                target, iter, body, ..
            } => {
                let mut body = self.block(body)?;
                if self.act.is_active(target) {
                    // Loop indices (here saved and restored through the stack) have no tangent.
                    let dt = self.tangent(target);
                    body.insert(
                        0,
                        Code::assign(&dt, &format!("tangent.init_grad({target})"), false),
                    );
                }
                out.push(Code::Loop {
                    header: format!("for {target} in {iter}"),
                    defs: vec![target.clone()],
                    uses: iter.reads().into_iter().map(str::to_string).collect(),
                    body,
                });
            }
            Stmt::While { test, body, .. } => {
                let body = self.block(body)?;
                out.push(Code::Loop {
                    header: format!("while {test}"),
                    defs: vec![],
                    uses: test.reads().into_iter().map(str::to_string).collect(),
                    body,
                });
            }
            Stmt::Break { .. } => out.push(Code::effect("break")),
            Stmt::Continue { .. } => out.push(Code::effect("continue")),
            Stmt::Restore {
                container,
                index,
                saved,
                ..
            } => {
                // The saved element's tangent was saved beside it and is put back the same way.
                out.push(Code::effect(&format!(
                    "tangent.restore_item({container}, {index}, {saved})"
                )));
                if let (Some(dc), Some(ds)) = (
                    self.tangent_of_atom(&Atom::Name(container.clone())),
                    self.tangent_of_atom(saved),
                ) {
                    out.push(Code::effect(&format!(
                        "tangent.restore_item({dc}, {index}, {ds})"
                    )));
                }
            }
            Stmt::Opaque { text, reads, .. } => out.push(Code::Stmt {
                text: text.clone(),
                defs: vec![],
                uses: reads
                    .iter()
                    .filter(|r| !r.starts_with("__"))
                    .cloned()
                    .collect(),
                pure: false,
            }),
            // Gradient surgery changes the backward pass only.
            Stmt::InsertGradOf { .. } | Stmt::Return { .. } => {}
        }
        Ok(())
    }

    /// The function of the module `callee` calls, differentiated through its own body (not a
    /// recipe of the user's).
    fn local_call(&self, callee: &Callee) -> Option<String> {
        match callee {
            Callee::Function {
                text, local: true, ..
            } if !self.recipes.tangents.contains_key(text) => Some(text.clone()),
            _ => None,
        }
    }

    fn no_recipe(&self, s: &Stmt, what: &str) -> Diagnostic {
        let (start, end) = crate::reverse::locate(self.file.text, s, what);
        let d = self.file.diagnostic(
            DiagnosticKind::NoRecipe,
            format!("no forward-mode derivative known for {what}"),
            start,
            end,
        );
        match s {
            Stmt::Assign { value: Expr::Call { callee: Callee::Function { text, .. }, args, kwargs }, .. } => {
                let keywords: Vec<String> = kwargs.iter().map(|(k, _)| k.clone()).collect();
                d.with_help(crate::recipes::recipe_suggestion(text, args.len(), &keywords, true))
            }
            _ => d.with_help("compute it with functions that have forward-mode recipes (`tangent recipes` lists them)"),
        }
    }

    /// The statements computing `dt`, the tangent of `result = value`.
    fn tangent_stmts(&mut self, s: &Stmt, result: &str, dt: &str, value: &Expr) -> R<Vec<Code>> {
        let mut out = Vec::new();
        match value {
            Expr::Atom(a) => {
                if let Some(da) = self.tangent_of_atom(a) {
                    out.push(Code::assign(dt, &da, true));
                }
            }
            Expr::BinOp { op, left, right } => {
                let Some(name) = crate::ir::binary_operator_recipe(op) else {
                    return Err(self.no_recipe(s, &format!("`{op}`")));
                };
                out = self.template(s, name, result, dt, &[left.clone(), right.clone()], &[])?;
            }
            Expr::UnaryOp { op, operand } => {
                let Some(name) = crate::ir::unary_operator_recipe(op) else {
                    return Ok(out);
                };
                out = self.template(s, name, result, dt, &[operand.clone()], &[])?;
            }
            Expr::Compare { .. } => {}
            e @ Expr::Opaque { .. } if e.carries_no_derivative() => {}
            Expr::Opaque { text, .. } => {
                let o = s.origin();
                return Err(self.file.diagnostic(
                    DiagnosticKind::Unsupported,
                    format!("`{text}` over a differentiated value cannot be differentiated"),
                    o.start,
                    o.end,
                ));
            }
            Expr::Subscript { value: v, index } => {
                if let Some(dv) = self.tangent_of_atom(v) {
                    out.push(Code::assign(dt, &format!("{dv}[{}]", index.text), true));
                }
            }
            Expr::Attribute { value: v, attr } => {
                if self.tangent_of_atom(v).is_some() {
                    match attr.as_str() {
                        "T" => {
                            out =
                                self.template(s, "numpy.transpose", result, dt, &[v.clone()], &[])?
                        }
                        "real" => {
                            let dv = self.tangent_of_atom(v).unwrap();
                            out.push(Code::assign(dt, &format!("{dv}.real"), true));
                        }
                        "imag" | "flat" => {
                            return Err(self.no_recipe(s, &format!("the attribute `.{attr}`")));
                        }
                        // An attribute of an object: its tangent is the attribute of the
                        // object's tangent (a mapping or an object of the same kind).
                        _ => {
                            let dv = self.tangent_of_atom(v).unwrap();
                            out.push(Code::assign(
                                dt,
                                &format!("tangent.attribute_tangent({dv}, {attr:?}, {v}.{attr})"),
                                true,
                            ));
                        }
                    }
                }
            }
            Expr::Tuple(items) | Expr::List(items) => {
                let parts: Vec<String> = items.iter().map(|a| self.tangent_or_zero(a)).collect();
                let text = if matches!(value, Expr::Tuple(_)) {
                    format!(
                        "({}{})",
                        parts.join(", "),
                        if parts.len() == 1 { "," } else { "" }
                    )
                } else {
                    format!("[{}]", parts.join(", "))
                };
                out.push(Code::assign(dt, &text, true));
            }
            Expr::Dict(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", self.tangent_or_zero(v)))
                    .collect();
                out.push(Code::assign(dt, &format!("{{{}}}", parts.join(", ")), true));
            }
            Expr::Call {
                callee,
                args,
                kwargs,
            } => out = self.call(s, result, dt, callee, args, kwargs)?,
        }
        Ok(out)
    }

    fn call(
        &mut self,
        s: &Stmt,
        result: &str,
        dt: &str,
        callee: &Callee,
        args: &[Atom],
        kwargs: &[(String, Atom)],
    ) -> R<Vec<Code>> {
        match callee {
            // A function of this module with a recipe of the user's: the recipe, not its body.
            Callee::Function {
                text, local: true, ..
            } if self.recipes.tangents.contains_key(text) => {
                self.template(s, text, result, dt, args, kwargs)
            }
            Callee::Function { local: true, .. } => {
                unreachable!("calls of the module's functions are differentiated by `stmt`")
            }
            Callee::Function {
                text, canonical, ..
            } => {
                let Some(canon) = canonical else {
                    return Err(self.no_recipe(s, &format!("`{text}`")));
                };
                if self.recipes.nondifferentiable.contains(canon)
                    || (!self.recipes.tangents.contains_key(canon)
                        && self.act.call_inputs_inactive(None, args, kwargs))
                {
                    return Ok(Vec::new());
                }
                self.template(s, canon, result, dt, args, kwargs)
            }
            Callee::Method { object, method } => {
                if matches!(method.as_str(), "copy" | "astype") {
                    return Ok(self
                        .tangent_of_atom(object)
                        .map(|d| vec![Code::assign(dt, &d, true)])
                        .unwrap_or_default());
                }
                let (name, all) = crate::ir::method_recipe(object, method, args);
                if self.recipes.nondifferentiable.contains(&name)
                    || (!self.recipes.tangents.contains_key(&name)
                        && self.act.call_inputs_inactive(Some(object), args, kwargs))
                {
                    return Ok(Vec::new());
                }
                if !self.recipes.tangents.contains_key(&name) {
                    let what = format!("the method `.{method}()`");
                    let (start, end) = crate::reverse::locate(self.file.text, s, &what);
                    return Err(self
                        .file
                        .diagnostic(
                            DiagnosticKind::NoRecipe,
                            format!("no forward-mode derivative known for {what}"),
                            start,
                            end,
                        )
                        .with_help(crate::ir::method_help(method, &name)));
                }
                self.template(s, &name, result, dt, &all, kwargs)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn template(
        &mut self,
        s: &Stmt,
        name: &str,
        result: &str,
        dt: &str,
        args: &[Atom],
        kwargs: &[(String, Atom)],
    ) -> R<Vec<Code>> {
        let Some(recipe) = self.recipes.tangents.get(name) else {
            return Err(self.no_recipe(
                s,
                &format!("`{}`", crate::reverse::called_as(s).unwrap_or(name)),
            ));
        };
        let bindings = recipe.bind(args, kwargs).map_err(|e| {
            let o = s.origin();
            self.file.diagnostic(
                DiagnosticKind::Unsupported,
                format!("cannot apply the tangent recipe for `{name}`: {e}"),
                o.start,
                o.end,
            )
        })?;
        // Tangents of the bound names, decided before the template asks.
        let mut known: BTreeMap<String, String> = BTreeMap::new();
        for b in bindings.values() {
            if let Bound::Atom(Atom::Name(n)) = b {
                if self.act.is_active(n) {
                    let t = self.tangent(n);
                    known.insert(n.clone(), t);
                }
            }
        }
        let names = &mut *self.names;
        let lookup = |n: &str| known.get(n).cloned();
        let stmts =
            recipe.instantiate_tangent(result, dt, &bindings, &lookup, &mut |h| names.fresh(h));
        let cite = recipe.user.then(|| {
            Code::Comment(format!(
                "{} ({})",
                crate::code::RECIPE_CITATION,
                recipe.origin
            ))
        });
        Ok(cite
            .into_iter()
            .chain(stmts.into_iter().map(|text| {
                let (target, value) = text.split_once(" = ").unwrap_or((&text, ""));
                Code::assign(target, value, true)
            }))
            .collect())
    }
}

/// `tangent.Stack` / `tangent.pop` when `value` calls one of them (generated code's stack).
fn stack_call(value: &Expr) -> Option<&str> {
    match value {
        Expr::Call {
            callee: Callee::Function {
                canonical: Some(c), ..
            },
            ..
        } if c == "tangent.Stack" || c == "tangent.pop" => Some(c.as_str()),
        _ => None,
    }
}

/// A fresh name for the tangent of `var`: `d<var>` (`_d<rest>` for temporaries), made unique.
pub fn tangent_name(names: &mut Names, var: &str) -> String {
    let base = match var.strip_prefix('_') {
        Some(rest) => format!("_d{rest}"),
        None => format!("d{var}"),
    };
    let mut name = base;
    while names.is_taken(&name) {
        name.push('_');
    }
    names.reserve(&name);
    name
}
