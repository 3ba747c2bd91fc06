//! Code with scopes of its own, lowered into the function's: comprehensions become loops that
//! append to a fresh list, and nested functions and lambdas are inlined where they are called.
//!
//! Python gives a comprehension's variables and a nested function's locals their own scope,
//! so they are renamed to fresh names first; names they only read are the enclosing
//! function's (closures read the current value, as Python's late binding does).

use std::collections::{BTreeMap, BTreeSet};

use ruff_python_ast::visitor::transformer::{Transformer, walk_expr, walk_stmt};
use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::Ranged;

use super::{Normalizer, Result, collect_assigned, collect_target};
use crate::ir::{Atom, Expr, Stmt};

/// A function defined inside the differentiated one: inlined at its calls.
#[derive(Clone)]
pub(super) enum Nested {
    Def(Box<ast::StmtFunctionDef>),
    Lambda(Box<ast::ExprLambda>),
}

/// Nested calls deeper than this are reported (recursion through nested functions).
const MAX_INLINE_DEPTH: usize = 32;

/// Renames names (read or written) by a map.
struct Rename<'m>(&'m BTreeMap<String, String>);

impl Transformer for Rename<'_> {
    fn visit_expr(&self, expr: &mut AExpr) {
        if let AExpr::Name(n) = expr {
            if let Some(new) = self.0.get(n.id.as_str()) {
                n.id = new.as_str().into();
            }
            return;
        }
        walk_expr(self, expr);
    }
}

pub(super) fn renamed_expr(e: &AExpr, map: &BTreeMap<String, String>) -> AExpr {
    let mut e = e.clone();
    Rename(map).visit_expr(&mut e);
    e
}

pub(super) fn renamed_stmt(s: &AStmt, map: &BTreeMap<String, String>) -> AStmt {
    let mut s = s.clone();
    // Only the statement's expressions: `walk_stmt` visits targets and values alike.
    walk_stmt(&Rename(map), &mut s);
    s
}

impl Normalizer<'_> {
    /// Fresh names for `names`, recorded as locals of the function.
    pub(super) fn fresh_locals(
        &mut self,
        names: impl IntoIterator<Item = String>,
    ) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for n in names {
            let fresh = self.fresh(&n);
            self.locals.insert(fresh.clone());
            map.insert(n, fresh);
        }
        map
    }

    /// `[elt for target in iter if cond ...]` (or the same generator expression): a fresh list
    /// filled by nested loops. A generator expression is consumed whole by what it is passed
    /// to (`sum(...)`, `max(...)`), so a list gives the same result.
    pub(super) fn comprehension(
        &mut self,
        elt: &AExpr,
        generators: &[ast::Comprehension],
    ) -> Result<Expr> {
        self.comprehension_into(elt, None, generators)
    }

    /// `{key: value for target in iter if cond ...}`: a fresh dict filled by nested loops.
    pub(super) fn dict_comprehension(
        &mut self,
        key: &AExpr,
        value: &AExpr,
        generators: &[ast::Comprehension],
    ) -> Result<Expr> {
        self.comprehension_into(key, Some(value), generators)
    }

    /// A list of `elt` (or, with `value`, a dict from `elt` to `value`) over `generators`.
    fn comprehension_into(
        &mut self,
        elt: &AExpr,
        value: Option<&AExpr>,
        generators: &[ast::Comprehension],
    ) -> Result<Expr> {
        let mut targets = BTreeSet::new();
        for g in generators {
            if g.is_async {
                return Err(self.unsupported(
                    g.range(),
                    "`async for` in a comprehension cannot be differentiated",
                ));
            }
            match &g.target {
                AExpr::Name(_) | AExpr::Tuple(_) => collect_target(&g.target, &mut targets),
                other => {
                    return Err(self.unsupported(other.range(), "unsupported comprehension target"));
                }
            }
        }
        let map = self.fresh_locals(targets);
        // The first iterable is evaluated in the enclosing scope; the rest see the targets.
        let levels: Vec<(AExpr, AExpr, Vec<AExpr>)> = generators
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let iter = if i == 0 {
                    g.iter.clone()
                } else {
                    renamed_expr(&g.iter, &map)
                };
                (
                    renamed_expr(&g.target, &map),
                    iter,
                    g.ifs.iter().map(|c| renamed_expr(c, &map)).collect(),
                )
            })
            .collect();
        let elt = renamed_expr(elt, &map);
        let value = value.map(|v| renamed_expr(v, &map));
        let result = self.fresh("items");
        self.locals.insert(result.clone());
        let empty = if value.is_some() {
            Expr::Dict(Vec::new())
        } else {
            Expr::List(Vec::new())
        };
        self.assign(&result, empty);
        self.comprehension_level(&levels, &elt, value.as_ref(), &result)?;
        Ok(Expr::Atom(Atom::Name(result)))
    }

    fn comprehension_level(
        &mut self,
        levels: &[(AExpr, AExpr, Vec<AExpr>)],
        elt: &AExpr,
        value: Option<&AExpr>,
        result: &str,
    ) -> Result<()> {
        let Some(((target, iter, ifs), rest)) = levels.split_first() else {
            let item = self.atom(elt, "item")?;
            let origin = self.origin.clone();
            match value {
                None => self.emit(Stmt::Append {
                    target: result.to_string(),
                    value: item,
                    origin,
                }),
                Some(value) => {
                    let value = self.atom(value, "value")?;
                    let text = item.to_string();
                    let reads = match &item {
                        Atom::Name(n) => vec![n.clone()],
                        Atom::Const(_) => Vec::new(),
                    };
                    self.emit(Stmt::AssignIndex {
                        target: result.to_string(),
                        index: crate::ir::Index {
                            text: text.clone(),
                            arg: text,
                            reads,
                        },
                        value,
                        origin,
                    });
                }
            }
            return Ok(());
        };
        // A comprehension's own variables are fresh names: the iterables cannot be rebound.
        let mut rebound = BTreeSet::new();
        collect_target(target, &mut rebound);
        self.for_loop(target, iter, &rebound, |me| {
            me.filtered(ifs, &mut |me| {
                me.comprehension_level(rest, elt, value, result)
            })
        })
    }

    /// `inner` under `if c1: if c2: ...` (each condition evaluated only when the ones before
    /// it hold, as in Python).
    fn filtered(
        &mut self,
        conditions: &[AExpr],
        inner: &mut dyn FnMut(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let Some((first, rest)) = conditions.split_first() else {
            return inner(self);
        };
        let test = self.atom(first, "cond")?;
        let origin = self.origin.clone();
        let saved = std::mem::take(&mut self.out);
        let result = self.filtered(rest, inner);
        let body = std::mem::replace(&mut self.out, saved);
        result?;
        self.emit(Stmt::If {
            test: Expr::Atom(test),
            body,
            orelse: Vec::new(),
            origin,
        });
        Ok(())
    }

    /// Records `def name(...)` inside the function, to be inlined at its calls.
    pub(super) fn nested_def(&mut self, def: &ast::StmtFunctionDef) -> Result<()> {
        if def.is_async {
            return Err(
                self.unsupported(def.range(), "nested `async def` cannot be differentiated")
            );
        }
        if !def.decorator_list.is_empty() {
            return Err(self.unsupported(
                def.decorator_list[0].range(),
                "decorated nested functions cannot be differentiated",
            ));
        }
        self.check_simple_parameters(&def.parameters)?;
        // The value is the last statement's `return`; returns in `if` branches are brought
        // there (see `exits`), others (in loops, `try`, `with`) are refused.
        let Some(def) = super::exits::single_exit(def) else {
            return Err(self.unsupported(def.range(), format!("the nested function `{}` must give its value by `return <value>` at its end or in `if` branches (not in a loop, `try` or `with`) to be differentiated", def.name)));
        };
        let def = &def;
        if let Some(s) = def
            .body
            .iter()
            .find(|s| matches!(s, AStmt::Nonlocal(_) | AStmt::Global(_)))
        {
            return Err(self.unsupported(
                s.range(),
                "a nested function may read enclosing variables, not assign them",
            ));
        }
        self.nested
            .insert(def.name.to_string(), Nested::Def(Box::new(def.clone())));
        Ok(())
    }

    /// Records `name = lambda ...: ...`, to be inlined at its calls.
    pub(super) fn nested_lambda(&mut self, name: &str, lambda: &ast::ExprLambda) -> Result<()> {
        if let Some(p) = &lambda.parameters {
            self.check_simple_parameters(p)?;
        }
        self.nested
            .insert(name.to_string(), Nested::Lambda(Box::new(lambda.clone())));
        Ok(())
    }

    fn check_simple_parameters(&self, p: &ast::Parameters) -> Result<()> {
        if let Some(v) = &p.vararg {
            return Err(self.unsupported(
                v.range(),
                "`*args` parameters of a nested function are not supported",
            ));
        }
        if let Some(k) = &p.kwarg {
            return Err(self.unsupported(
                k.range(),
                "`**kwargs` parameters of a nested function are not supported",
            ));
        }
        Ok(())
    }

    /// A call of a nested function or lambda: its parameters are bound to the arguments (or
    /// their defaults), its body is normalized in place with its locals renamed, and the value
    /// of its `return` is the call's value.
    pub(super) fn inline_call(&mut self, name: &str, call: &ast::ExprCall) -> Result<Expr> {
        let nested = self.nested.get(name).cloned().expect("a nested function");
        if self.inline_depth >= MAX_INLINE_DEPTH {
            return Err(self.unsupported(call.range(), format!("`{name}` calls itself: recursive nested functions cannot be differentiated; define it at module level")));
        }
        let (parameters, body_locals): (Option<&ast::Parameters>, BTreeSet<String>) = match &nested
        {
            Nested::Def(def) => {
                let mut assigned = BTreeSet::new();
                collect_assigned(&def.body, &mut assigned);
                // Functions defined inside it keep their names (they are recorded by name).
                for s in def.body.iter() {
                    if let AStmt::FunctionDef(f) = s {
                        assigned.remove(f.name.as_str());
                    }
                }
                (Some(&def.parameters), assigned)
            }
            Nested::Lambda(l) => (l.parameters.as_deref(), BTreeSet::new()),
        };
        let params: Vec<&ast::ParameterWithDefault> = parameters
            .map(|p| {
                p.posonlyargs
                    .iter()
                    .chain(p.args.iter())
                    .chain(p.kwonlyargs.iter())
                    .collect()
            })
            .unwrap_or_default();
        let positional = parameters.map_or(0, |p| p.posonlyargs.len() + p.args.len());
        // Bind the arguments as Python does, before anything of the body runs.
        let mut bound: BTreeMap<String, Atom> = BTreeMap::new();
        for (i, a) in call.arguments.args.iter().enumerate() {
            if let AExpr::Starred(s) = a {
                return Err(self.unsupported(
                    s.range(),
                    "`*args` in a call of a nested function is not supported",
                ));
            }
            let Some(p) = params.get(i).filter(|_| i < positional) else {
                return Err(self.unsupported(a.range(), format!("too many arguments for `{name}`")));
            };
            let value = self.atom(a, p.parameter.name.as_str())?;
            bound.insert(p.parameter.name.to_string(), value);
        }
        for k in call.arguments.keywords.iter() {
            let Some(arg) = &k.arg else {
                return Err(self.unsupported(k.range(), "`**kwargs` in calls is not supported"));
            };
            if !params
                .iter()
                .any(|p| p.parameter.name.as_str() == arg.as_str())
            {
                return Err(
                    self.unsupported(k.range(), format!("`{name}` has no parameter `{arg}`"))
                );
            }
            let value = self.atom(&k.value, arg.as_str())?;
            if bound.insert(arg.to_string(), value).is_some() {
                return Err(self.unsupported(k.range(), format!("`{arg}` is given twice")));
            }
        }
        let mut locals: BTreeSet<String> = params
            .iter()
            .map(|p| p.parameter.name.to_string())
            .collect();
        locals.extend(body_locals);
        let map = self.fresh_locals(locals);
        for p in &params {
            let pname = p.parameter.name.as_str();
            let value = match bound.remove(pname) {
                Some(v) => v,
                None => match &p.default {
                    // Defaults are evaluated at the call (Python evaluates them at the
                    // definition: the same unless what they read changes in between).
                    Some(d) => self.atom(d, pname)?,
                    None => {
                        return Err(self.unsupported(
                            call.range(),
                            format!("missing argument `{pname}` for `{name}`"),
                        ));
                    }
                },
            };
            self.assign(&map[pname], Expr::Atom(value));
        }
        self.inline_depth += 1;
        let result = self.inline_body(&nested, &map);
        self.inline_depth -= 1;
        result
    }

    pub(super) fn inline_body(
        &mut self,
        nested: &Nested,
        map: &BTreeMap<String, String>,
    ) -> Result<Expr> {
        match nested {
            Nested::Lambda(l) => {
                self.renaming += 1;
                let result = self.expr(&renamed_expr(&l.body, map));
                self.renaming -= 1;
                result
            }
            Nested::Def(def) => {
                let caller_origin = self.origin.clone();
                let (last, rest) = def.body.split_last().expect("a body ending with return");
                // Nested definitions inside it belong to it: they are inlined too.
                self.renaming += 1;
                let result = (|| {
                    for s in rest {
                        self.stmt(&renamed_stmt(s, map))?;
                    }
                    let AStmt::Return(r) = renamed_stmt(last, map) else {
                        unreachable!()
                    };
                    self.set_origin(last);
                    let value = r.value.expect("checked: return with a value");
                    let value = self.atom(&value, "value")?;
                    Ok(Expr::Atom(value))
                })();
                self.renaming -= 1;
                self.origin = caller_origin;
                result
            }
        }
    }
}

pub(super) fn contains_return(s: &AStmt) -> bool {
    use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
    struct V(bool);
    impl<'a> StatementVisitor<'a> for V {
        fn visit_stmt(&mut self, stmt: &'a AStmt) {
            match stmt {
                AStmt::Return(_) => self.0 = true,
                AStmt::FunctionDef(_) | AStmt::ClassDef(_) => {}
                _ => walk_stmt(self, stmt),
            }
        }
    }
    let mut v = V(false);
    v.visit_stmt(s);
    v.0
}
