//! Calls of module functions that take functions or spread arguments, specialized at the call
//! as a compiler would: `objective(w, logprob=my_logprob)`, `predict(x, nonlinearity=np.tanh)`
//! (a default), `rk4_step(f, y, t, dt, *args)`, `penalty(w, **kwargs)`.
//!
//! The callee's body is inlined where it is called (as nested functions are, `scopes`), with
//! each parameter that receives a function replaced by that function's name in the body
//! (`penalty(w)` becomes `l2_penalty(w)`, a call the engine differentiates like any other),
//! `*args` expanded to the call's extra arguments and `**kwargs` to its extra keywords. The
//! function must be one the engine can inline: one `return` at its end, no names it reads as
//! globals that the caller binds as locals (they would mean the caller's variable); returns
//! in `if` branches are first brought to one at the end (`exits`). Anything
//! else is left as a plain call (and refused there if it is differentiated).

use std::collections::{BTreeMap, BTreeSet};

use ruff_python_ast::visitor::transformer::{Transformer, walk_expr};
use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::Ranged;

use super::scopes::Nested;
use super::{Normalizer, Result, collect_all_names, collect_assigned, collect_target};
use crate::ir::{Atom, Expr};

/// What one parameter of the callee receives at a call.
enum Binding {
    /// A value: the parameter is a local of the inlined body, assigned first.
    Value(Atom),
    /// A function (a name or dotted name the module resolves, or a lambda given a name):
    /// substituted for the parameter in the body.
    Function(AExpr),
    /// `*args`: the names holding the extra positional arguments.
    Spread(Vec<AExpr>),
    /// `**kwargs`: the extra keyword arguments.
    Keywords(Vec<(String, AExpr)>),
}

/// Does a call of `def` get specialized (see [`Normalizer::specialized_call`]) when a caller
/// gives it a function: it has `*args` / `**kwargs`, calls one of its parameters, or returns
/// different numbers of values ([`returns_vary`])? Such callees are why a caller is
/// normalized with its module's text.
pub fn takes_functions_or_spreads(def: &ast::StmtFunctionDef) -> bool {
    let p = &def.parameters;
    if p.vararg.is_some() || p.kwarg.is_some() || returns_vary(def) {
        return true;
    }
    let used = called_parameters(def);
    p.posonlyargs
        .iter()
        .chain(&p.args)
        .chain(&p.kwonlyargs)
        .any(|param| used.contains(param.parameter.name.as_str()))
}

impl Normalizer<'_> {
    /// The module function `name` called as `call`, inlined with its function-valued
    /// parameters and spreads specialized; `None` when the call needs no specializing or
    /// cannot have it (the call is then left as it is).
    pub(super) fn specialized_call(
        &mut self,
        name: &str,
        call: &ast::ExprCall,
    ) -> Result<Option<Expr>> {
        let Some(module) = self.module else {
            return Ok(None);
        };
        if self.locals.contains(name)
            || !self.scope.functions.contains_key(name)
            || self.specializing.iter().any(|s| s == name)
        {
            return Ok(None);
        }
        let Some(def) = crate::parse::find_function_in(module, name) else {
            return Ok(None);
        };
        if !self.needs_specializing(def, call) {
            return Ok(None);
        }
        // Returns in branches: one at the end (see `exits`).
        let Some(mut def) = super::exits::single_exit(def) else {
            return Ok(None);
        };
        // The array-API idiom (`xp, _ = get_namespace(a)`) read as the caller's function is,
        // when it needs no name the module lacks.
        if let Some((read, binds)) = super::namespaces::read_as_numpy(&def, self.scope, false)
            && binds.is_empty()
        {
            def = read;
        }
        let def = &def;
        if !self.can_inline(def) {
            return Ok(None);
        }
        if self.inline_depth >= 32 {
            return Ok(None);
        }
        let mut callee_locals = BTreeSet::new();
        collect_assigned(&def.body, &mut callee_locals);
        let Some(bindings) = self.bind_arguments(def, call)? else {
            return Ok(None);
        };
        // A parameter given a function or a spread and assigned in the body: its uses after
        // the assignment read the new value, under a name of its own.
        let substituted: BTreeSet<String> = bindings
            .iter()
            .filter(|(_, b)| !matches!(b, Binding::Value(_)))
            .map(|(p, _)| p.clone())
            .filter(|p| callee_locals.contains(p))
            .collect();
        let Some(def) = rebinding_renamed(def, &substituted) else {
            return Ok(None);
        };
        let def = &def;
        let mut callee_locals = BTreeSet::new();
        collect_assigned(&def.body, &mut callee_locals);
        // A function handed in must keep its meaning inside: no local of the callee may
        // bear its name.
        let clash = bindings.iter().any(|(_, b)| match b {
            Binding::Function(e) => super::dotted_name(e)
                .is_some_and(|d| callee_locals.contains(d.split('.').next().unwrap_or_default())),
            _ => false,
        });
        if clash {
            return Ok(None);
        }
        // The callee's body, with function-valued parameters and spreads substituted.
        let mut substituted = def.clone();
        let mut functions = BTreeMap::new();
        let mut spreads = BTreeMap::new();
        let mut keywords = BTreeMap::new();
        for (param, binding) in &bindings {
            match binding {
                Binding::Function(e) => {
                    functions.insert(param.clone(), e.clone());
                }
                Binding::Spread(items) => {
                    spreads.insert(param.clone(), items.clone());
                }
                Binding::Keywords(items) => {
                    // Read as a dict literal at each use: a body changing it would change a
                    // copy each time.
                    if dict_changed(&def.body, param) {
                        return Ok(None);
                    }
                    keywords.insert(param.clone(), items.clone());
                }
                Binding::Value(_) => {}
            }
        }
        let substitute = Substitute {
            functions,
            spreads,
            keywords,
        };
        for s in substituted.body.iter_mut() {
            substitute.visit_stmt(s);
        }
        // Its locals get fresh names; the parameters bound to values are assigned first.
        let mut locals: BTreeSet<String> = BTreeSet::new();
        collect_assigned(&substituted.body, &mut locals);
        for (param, binding) in &bindings {
            if matches!(binding, Binding::Value(_)) {
                locals.insert(param.clone());
            }
        }
        let map = self.fresh_locals(locals);
        for (param, binding) in bindings {
            if let Binding::Value(v) = binding {
                self.assign(&map[&param], Expr::Atom(v));
            }
        }
        self.inline_depth += 1;
        self.specializing.push(name.to_string());
        let result = self.inline_body(&Nested::Def(Box::new(substituted)), &map);
        self.specializing.pop();
        self.inline_depth -= 1;
        result.map(Some)
    }

    /// Does the call give a function to a parameter the callee uses as one, or spread into
    /// `*args` / `**kwargs` parameters?
    fn needs_specializing(&self, def: &ast::StmtFunctionDef, call: &ast::ExprCall) -> bool {
        let p = &def.parameters;
        if p.vararg.is_some() || p.kwarg.is_some() || returns_vary(def) {
            return true;
        }
        let positional: Vec<&ast::ParameterWithDefault> =
            p.posonlyargs.iter().chain(p.args.iter()).collect();
        let all: Vec<&ast::ParameterWithDefault> = positional
            .iter()
            .copied()
            .chain(p.kwonlyargs.iter())
            .collect();
        let used = called_parameters(def);
        all.iter().enumerate().any(|(i, param)| {
            let name = param.parameter.name.as_str();
            if !used.contains(name) {
                return false;
            }
            let given = call
                .arguments
                .keywords
                .iter()
                .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == name))
                .map(|k| &k.value)
                .or_else(|| {
                    (i < positional.len())
                        .then(|| call.arguments.args.get(i))
                        .flatten()
                });
            match given {
                Some(e) => self.function_reference(e),
                None => param
                    .default
                    .as_deref()
                    .is_some_and(|d| self.function_reference(d)),
            }
        })
    }

    /// Is `e` a function the engine knows by name here: a function of the module, a nested
    /// function or lambda, an imported function, or a lambda expression?
    fn function_reference(&self, e: &AExpr) -> bool {
        match e {
            AExpr::Lambda(_) => true,
            AExpr::Name(n) => {
                let name = n.id.as_str();
                self.nested.contains_key(name)
                    || (!self.locals.contains(name)
                        && (self.scope.functions.contains_key(name)
                            || self.scope.imports.contains_key(name)))
            }
            AExpr::Attribute(_) => super::dotted_name(e).is_some_and(|d| {
                let head = d.split('.').next().unwrap_or_default();
                !self.locals.contains(head) && self.scope.canonical(&d).is_some()
            }),
            _ => false,
        }
    }

    /// The callee can be inlined: it ends with its only `return <value>`, has no
    /// `global`/`nonlocal`/nested `def` or `class`, is not async or decorated, and reads no
    /// global that the caller binds as a local.
    fn can_inline(&self, def: &ast::StmtFunctionDef) -> bool {
        if def.is_async || !def.decorator_list.is_empty() {
            return false;
        }
        let (Some(AStmt::Return(r)), rest) = (def.body.last(), &def.body[..def.body.len() - 1])
        else {
            return false;
        };
        if r.value.is_none() || rest.iter().any(super::scopes::contains_return) {
            return false;
        }
        if def.body.iter().any(|s| {
            matches!(
                s,
                AStmt::Global(_) | AStmt::Nonlocal(_) | AStmt::FunctionDef(_) | AStmt::ClassDef(_)
            )
        }) {
            return false;
        }
        let mut own: BTreeSet<String> = BTreeSet::new();
        collect_assigned(&def.body, &mut own);
        let p = &def.parameters;
        for param in p.posonlyargs.iter().chain(&p.args).chain(&p.kwonlyargs) {
            own.insert(param.parameter.name.to_string());
        }
        for v in p.vararg.iter().chain(p.kwarg.iter()) {
            own.insert(v.name.to_string());
        }
        own.extend(comprehension_names(&def.body));
        let mut read = BTreeSet::new();
        collect_all_names(&def.body, &mut read);
        !read
            .iter()
            .any(|n| !own.contains(n) && self.locals.contains(n))
    }

    /// Binds the call's arguments to the callee's parameters as Python does; `None` when the
    /// call cannot be bound statically (a `*` or `**` of unknown length at the call).
    fn bind_arguments(
        &mut self,
        def: &ast::StmtFunctionDef,
        call: &ast::ExprCall,
    ) -> Result<Option<Vec<(String, Binding)>>> {
        let p = &def.parameters;
        let positional: Vec<&ast::ParameterWithDefault> =
            p.posonlyargs.iter().chain(p.args.iter()).collect();
        if call
            .arguments
            .args
            .iter()
            .any(|a| matches!(a, AExpr::Starred(_)))
            || call.arguments.keywords.iter().any(|k| k.arg.is_none())
        {
            return Ok(None);
        }
        let used = called_parameters(def);
        let mut given: BTreeMap<String, &AExpr> = BTreeMap::new();
        let mut extra_positional = Vec::new();
        for (i, a) in call.arguments.args.iter().enumerate() {
            match positional.get(i) {
                Some(param) => {
                    given.insert(param.parameter.name.to_string(), a);
                }
                None if p.vararg.is_some() => extra_positional.push(a),
                None => return Ok(None),
            }
        }
        let mut extra_keywords = Vec::new();
        for k in &call.arguments.keywords {
            let arg = k.arg.as_ref().map(|a| a.to_string()).unwrap_or_default();
            let known = positional
                .iter()
                .copied()
                .chain(p.kwonlyargs.iter())
                .any(|param| param.parameter.name.as_str() == arg);
            if known {
                if given.insert(arg, &k.value).is_some() {
                    return Ok(None);
                }
            } else if p.kwarg.is_some() {
                extra_keywords.push((arg, &k.value));
            } else {
                return Ok(None);
            }
        }
        let mut out = Vec::new();
        for param in positional.iter().copied().chain(p.kwonlyargs.iter()) {
            let name = param.parameter.name.as_str();
            let value = match given.get(name) {
                Some(e) => *e,
                None => match param.default.as_deref() {
                    Some(d) => d,
                    None => return Ok(None),
                },
            };
            // A function, or a module handed in as a namespace (`xp=np`): substituted.
            let substituted =
                used.contains(name) || super::namespaces::used_as_namespace(def, name);
            let binding = if substituted && self.function_reference(value) {
                Binding::Function(self.function_expression(value, name)?)
            } else {
                Binding::Value(self.atom(value, name)?)
            };
            out.push((name.to_string(), binding));
        }
        if let Some(v) = &p.vararg {
            let mut items = Vec::new();
            for a in extra_positional {
                items.push(self.argument_expression(a, v.name.as_str())?);
            }
            out.push((v.name.to_string(), Binding::Spread(items)));
        }
        if let Some(k) = &p.kwarg {
            let mut items = Vec::new();
            for (key, value) in extra_keywords {
                items.push((key.clone(), self.argument_expression(value, &key)?));
            }
            out.push((k.name.to_string(), Binding::Keywords(items)));
        }
        Ok(Some(out))
    }

    /// The expression standing for a function argument in the inlined body: its name, or a
    /// lambda recorded as a nested function under a fresh name.
    fn function_expression(&mut self, e: &AExpr, hint: &str) -> Result<AExpr> {
        match e {
            AExpr::Lambda(l) => {
                let name = self.fresh(hint);
                self.nested_lambda(&name, l)?;
                Ok(name_expr(&name))
            }
            other => Ok(other.clone()),
        }
    }

    /// An argument spread into `*args` / `**kwargs`: a function as itself, a value through a
    /// fresh local holding it (evaluated once, at the call, as Python does).
    fn argument_expression(&mut self, e: &AExpr, hint: &str) -> Result<AExpr> {
        if self.function_reference(e) {
            return self.function_expression(e, hint);
        }
        let atom = self.atom(e, hint)?;
        Ok(match atom {
            Atom::Name(n) => name_expr(&n),
            Atom::Const(c) => {
                let local = self.fresh(hint);
                self.locals.insert(local.clone());
                self.assign(&local, Expr::Atom(Atom::Const(c)));
                name_expr(&local)
            }
        })
    }
}

impl Normalizer<'_> {
    /// The function's body with each parameter whose default is a function, and which the
    /// body calls (`nonlinearity=np.tanh`), replaced by that function; and one statement per
    /// such parameter that checks, when the derivative runs, that it was not given another
    /// function (`assert tangent.is_function(nonlinearity, np.tanh, 'nonlinearity')`).
    /// `None` when no parameter is such.
    pub(super) fn function_defaults(
        &mut self,
        def: &ast::StmtFunctionDef,
    ) -> Option<(Vec<AStmt>, Vec<crate::ir::Stmt>)> {
        let used = called_parameters(def);
        let mut assigned = BTreeSet::new();
        collect_assigned(&def.body, &mut assigned);
        let p = &def.parameters;
        let mut functions = BTreeMap::new();
        let mut guards = Vec::new();
        for param in p.posonlyargs.iter().chain(&p.args).chain(&p.kwonlyargs) {
            let name = param.parameter.name.as_str();
            let Some(default) = param.default.as_deref() else {
                continue;
            };
            if !used.contains(name)
                || assigned.contains(name)
                || matches!(default, AExpr::Lambda(_))
                || !self.function_reference(default)
            {
                continue;
            }
            let text = self.text(default);
            let mut reads = vec![name.to_string()];
            if let Some(d) = super::dotted_name(default) {
                reads.push(d.split('.').next().unwrap_or_default().to_string());
            }
            guards.push(crate::ir::Stmt::Opaque {
                text: format!("assert tangent.is_function({name}, {text}, '{name}')"),
                reads,
                origin: crate::ir::Origin {
                    text: format!("{name}={text}"),
                    start: default.range().start().into(),
                    end: default.range().end().into(),
                    id: 0,
                },
            });
            functions.insert(name.to_string(), default.clone());
        }
        if functions.is_empty() {
            return None;
        }
        let substitute = Substitute {
            functions,
            spreads: BTreeMap::new(),
            keywords: BTreeMap::new(),
        };
        let mut body: Vec<AStmt> = def.body.to_vec();
        for s in body.iter_mut() {
            substitute.visit_stmt(s);
        }
        Some((body, guards))
    }
}

impl Normalizer<'_> {
    /// `map(f, xs)` (one iterable, `f` a function the engine knows) as the comprehension
    /// `[f(x) for x in xs]`, and `list(e)` of a comprehension, generator or `map` as `e`'s
    /// list: iteration builtins of Python's, lowered to what the engine differentiates.
    pub(super) fn iteration_builtin(&mut self, c: &ast::ExprCall) -> Option<AExpr> {
        let AExpr::Name(n) = c.func.as_ref() else {
            return None;
        };
        let name = n.id.as_str();
        if self.locals.contains(name) || self.scope.binds(name) || !c.arguments.keywords.is_empty()
        {
            return None;
        }
        match (name, &c.arguments.args[..]) {
            ("map", [f, xs]) if self.function_reference(f) => {
                let item = self.fresh("item");
                let mut applied = c.clone();
                // A lambda is recorded as a nested function, to be inlined at each call.
                applied.func = Box::new(self.function_expression(f, "f").ok()?);
                applied.arguments.args = vec![name_expr(&item)].into_boxed_slice();
                let comprehension = ast::ExprListComp {
                    node_index: ast::AtomicNodeIndex::NONE,
                    range: c.range(),
                    elt: Box::new(AExpr::Call(applied)),
                    generators: vec![ast::Comprehension {
                        node_index: ast::AtomicNodeIndex::NONE,
                        range: c.range(),
                        target: AExpr::Name(ast::ExprName {
                            node_index: ast::AtomicNodeIndex::NONE,
                            range: c.range(),
                            id: item.as_str().into(),
                            ctx: ast::ExprContext::Store,
                        }),
                        iter: xs.clone(),
                        ifs: Vec::new(),
                        is_async: false,
                    }],
                };
                Some(AExpr::ListComp(comprehension))
            }
            ("list", [AExpr::ListComp(_)]) => Some(c.arguments.args[0].clone()),
            ("list", [AExpr::Generator(g)]) => Some(AExpr::ListComp(ast::ExprListComp {
                node_index: ast::AtomicNodeIndex::NONE,
                range: g.range,
                elt: g.elt.clone(),
                generators: g.generators.clone(),
            })),
            ("list", [AExpr::Call(inner)]) => self.iteration_builtin(inner),
            _ => None,
        }
    }
}

fn name_expr(name: &str) -> AExpr {
    AExpr::Name(ast::ExprName {
        node_index: ast::AtomicNodeIndex::NONE,
        range: Default::default(),
        id: name.into(),
        ctx: ast::ExprContext::Load,
    })
}

/// Names used as functions or passed on as arguments in `body` (a function parameter may be
/// handed down: `apply_penalty(penalty, w)`).
/// `def` with each of `params` (given a function or a spread at the call) read under a new
/// name from the statement assigning it on: `arrays = _remove(*arrays)` reads the spread on
/// its right and binds `arrays_` for what follows. `None` when a parameter is assigned other
/// than by one statement of the body's top level (in a branch or loop, or more than once
/// before its uses could be told apart).
fn rebinding_renamed(
    def: &ast::StmtFunctionDef,
    params: &BTreeSet<String>,
) -> Option<ast::StmtFunctionDef> {
    let mut out = def.clone();
    for param in params {
        let first = out.body.iter().position(|s| {
            let mut assigned = BTreeSet::new();
            collect_assigned(std::slice::from_ref(s), &mut assigned);
            assigned.contains(param)
        })?;
        let AStmt::Assign(assign) = &out.body[first] else {
            return None;
        };
        let fresh = super::exits::unused_name(&out, &format!("{param}_"));
        let map: BTreeMap<String, String> = [(param.clone(), fresh)].into();
        let mut renamed = assign.clone();
        renamed.targets = assign
            .targets
            .iter()
            .map(|t| super::scopes::renamed_expr(t, &map))
            .collect();
        out.body[first] = AStmt::Assign(renamed);
        for s in out.body[first + 1..].iter_mut() {
            *s = super::scopes::renamed_stmt(s, &map);
        }
    }
    Some(out)
}

/// The names comprehensions and lambdas in `body` bind for themselves (`a` of
/// `[a.dtype for a in arrays]`): not globals the body reads.
fn comprehension_names(body: &[AStmt]) -> BTreeSet<String> {
    use ruff_python_ast::visitor::{Visitor, walk_expr};
    struct V(BTreeSet<String>);
    impl<'a> Visitor<'a> for V {
        fn visit_comprehension(&mut self, c: &'a ast::Comprehension) {
            collect_target(&c.target, &mut self.0);
            ruff_python_ast::visitor::walk_comprehension(self, c);
        }
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Lambda(l) = expr
                && let Some(p) = &l.parameters
            {
                self.0.extend(p.iter().map(|p| p.name().to_string()));
            }
            walk_expr(self, expr);
        }
    }
    let mut v = V(BTreeSet::new());
    for s in body {
        v.visit_stmt(s);
    }
    v.0
}

/// Does `def` return different numbers of values on different paths (`return X, norms` if
/// a flag asks for them, else `return X`)? Its calls are then specialized (inlined), each
/// giving what its path returns; a function differentiated on its own must return one form.
pub fn returns_vary(def: &ast::StmtFunctionDef) -> bool {
    use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
    struct Arities(BTreeSet<Option<usize>>);
    impl<'a> StatementVisitor<'a> for Arities {
        fn visit_stmt(&mut self, stmt: &'a AStmt) {
            match stmt {
                AStmt::Return(r) => {
                    let arity = match r.value.as_deref() {
                        Some(AExpr::Tuple(t)) if !t.elts.iter().any(AExpr::is_starred_expr) => {
                            Some(t.elts.len())
                        }
                        Some(AExpr::Tuple(_)) => None,
                        _ => Some(1),
                    };
                    self.0.insert(arity);
                }
                AStmt::FunctionDef(_) | AStmt::ClassDef(_) => {}
                _ => walk_stmt(self, stmt),
            }
        }
    }
    let mut arities = Arities(BTreeSet::new());
    arities.visit_body(&def.body);
    arities.0.len() > 1
}

/// The names `def` calls or hands on to calls that it does not assign: the parameters it
/// may use as functions (one it gives a new value is a variable, never substituted).
fn called_parameters(def: &ast::StmtFunctionDef) -> BTreeSet<String> {
    let mut assigned = BTreeSet::new();
    collect_assigned(&def.body, &mut assigned);
    let mut used = called_names(&def.body);
    used.retain(|n| !assigned.contains(n));
    used
}

fn called_names(body: &[AStmt]) -> BTreeSet<String> {
    use ruff_python_ast::visitor::{Visitor, walk_expr, walk_stmt};
    struct V(BTreeSet<String>);
    impl<'a> Visitor<'a> for V {
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Call(c) = expr {
                if let AExpr::Name(n) = c.func.as_ref() {
                    self.0.insert(n.id.to_string());
                }
                for a in c.arguments.args.iter() {
                    if let AExpr::Name(n) = a {
                        self.0.insert(n.id.to_string());
                    }
                }
                for k in c.arguments.keywords.iter() {
                    if let AExpr::Name(n) = &k.value {
                        self.0.insert(n.id.to_string());
                    }
                }
            }
            walk_expr(self, expr);
        }
    }
    let mut v = V(BTreeSet::new());
    for s in body {
        walk_stmt(&mut v, s);
    }
    v.0
}

/// Replaces function-valued parameters by their functions, `*args` in calls by the spread
/// arguments (and `args` elsewhere by their tuple), `**kwargs` in calls by the keywords.
struct Substitute {
    functions: BTreeMap<String, AExpr>,
    spreads: BTreeMap<String, Vec<AExpr>>,
    keywords: BTreeMap<String, Vec<(String, AExpr)>>,
}

impl Transformer for Substitute {
    fn visit_expr(&self, expr: &mut AExpr) {
        if let AExpr::Call(c) = expr {
            let args = std::mem::take(&mut c.arguments.args).into_vec();
            let mut spread = Vec::with_capacity(args.len());
            for a in args {
                match &a {
                    AExpr::Starred(s) => match s.value.as_ref() {
                        AExpr::Name(n) if self.spreads.contains_key(n.id.as_str()) => {
                            spread.extend(self.spreads[n.id.as_str()].iter().cloned());
                        }
                        _ => spread.push(a),
                    },
                    _ => spread.push(a),
                }
            }
            c.arguments.args = spread.into_boxed_slice();
            let keywords: Vec<ast::Keyword> = std::mem::take(&mut c.arguments.keywords)
                .into_iter()
                .collect();
            let mut expanded = Vec::with_capacity(keywords.len());
            for k in keywords {
                match (&k.arg, &k.value) {
                    (None, AExpr::Name(n)) if self.keywords.contains_key(n.id.as_str()) => {
                        for (key, value) in &self.keywords[n.id.as_str()] {
                            expanded.push(ast::Keyword {
                                node_index: ast::AtomicNodeIndex::NONE,
                                range: Default::default(),
                                arg: Some(ast::Identifier::new(key.as_str(), Default::default())),
                                value: value.clone(),
                            });
                        }
                    }
                    _ => expanded.push(k),
                }
            }
            c.arguments.keywords = expanded.into();
        }
        if let AExpr::Name(n) = expr {
            let id = n.id.to_string();
            if let Some(f) = self.functions.get(&id) {
                let range = n.range();
                *expr = f.clone();
                set_range(expr, range);
                return;
            }
            if let Some(items) = self.spreads.get(&id) {
                *expr = AExpr::Tuple(ast::ExprTuple {
                    node_index: ast::AtomicNodeIndex::NONE,
                    range: n.range(),
                    elts: items.clone(),
                    ctx: ast::ExprContext::Load,
                    parenthesized: true,
                });
                return;
            }
            if let Some(items) = self.keywords.get(&id) {
                // `kwargs` read as a value: the dict of the call's extra keywords.
                *expr = keywords_dict(items, n.range());
                return;
            }
            return;
        }
        walk_expr(self, expr);
    }
}

/// Does `body` change the dict `name` holds (`name.pop(...)`, `name[k] = v`, `del name[k]`,
/// `name |= ...`)?
fn dict_changed(body: &[AStmt], name: &str) -> bool {
    use ruff_python_ast::visitor::{Visitor, walk_expr, walk_stmt};
    struct V<'n>(&'n str, bool);
    impl V<'_> {
        fn is_name(&self, e: &AExpr) -> bool {
            matches!(e, AExpr::Name(n) if n.id.as_str() == self.0)
        }
        fn target(&mut self, t: &AExpr) {
            match t {
                AExpr::Subscript(s) if self.is_name(&s.value) => self.1 = true,
                AExpr::Attribute(a) if self.is_name(&a.value) => self.1 = true,
                AExpr::Tuple(t) => t.elts.iter().for_each(|e| self.target(e)),
                AExpr::List(l) => l.elts.iter().for_each(|e| self.target(e)),
                _ => {}
            }
        }
    }
    impl<'a> Visitor<'a> for V<'_> {
        fn visit_stmt(&mut self, stmt: &'a AStmt) {
            match stmt {
                AStmt::Assign(a) => a.targets.iter().for_each(|t| self.target(t)),
                AStmt::AugAssign(a) => {
                    if self.is_name(&a.target) {
                        self.1 = true;
                    }
                    self.target(&a.target);
                }
                AStmt::Delete(d) => d.targets.iter().for_each(|t| self.target(t)),
                _ => {}
            }
            walk_stmt(self, stmt);
        }
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Call(c) = expr
                && let AExpr::Attribute(a) = c.func.as_ref()
                && self.is_name(&a.value)
                && matches!(
                    a.attr.as_str(),
                    "pop" | "popitem" | "update" | "setdefault" | "clear"
                )
            {
                self.1 = true;
            }
            walk_expr(self, expr);
        }
    }
    let mut v = V(name, false);
    for s in body {
        v.visit_stmt(s);
    }
    v.1
}

/// `{"key": value, ...}`: what `**kwargs` holds for the call's extra keywords.
fn keywords_dict(items: &[(String, AExpr)], range: ruff_text_size::TextRange) -> AExpr {
    let key = |k: &str| {
        AExpr::StringLiteral(ast::ExprStringLiteral {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            value: ast::StringLiteralValue::single(ast::StringLiteral {
                range,
                node_index: ast::AtomicNodeIndex::NONE,
                value: k.into(),
                flags: ast::StringLiteralFlags::empty(),
            }),
        })
    };
    AExpr::Dict(ast::ExprDict {
        node_index: ast::AtomicNodeIndex::NONE,
        range,
        items: items
            .iter()
            .map(|(k, v)| ast::DictItem {
                key: Some(key(k)),
                value: v.clone(),
            })
            .collect(),
    })
}

/// Gives a substituted expression the range of the name it replaces (diagnostics point at
/// the callee's use of its parameter).
fn set_range(expr: &mut AExpr, range: ruff_text_size::TextRange) {
    match expr {
        AExpr::Name(n) => n.range = range,
        AExpr::Attribute(a) => a.range = range,
        _ => {}
    }
}
