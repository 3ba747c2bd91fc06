//! The array-API idiom of libraries: `xp = array_namespace(x)` (SciPy),
//! `xp, _ = get_namespace(X)` (scikit-learn), then `xp.sum(x, axis=0)`.
//!
//! For NumPy arrays the namespace a getter returns is NumPy (or a thin compatibility layer
//! over it that computes the same values), and NumPy 2 spells the array API's functions as
//! the standard does. So a function whose namespace name is bound only by such getters is
//! read with that name meaning `numpy`: the getter's statement goes (its other results, a
//! flag and a device, become `False` and `None`, what they are for NumPy arrays), and each
//! use of the name becomes the module's name for NumPy, whose functions have recipes.

use std::collections::BTreeSet;

use ruff_python_ast::visitor::transformer::{Transformer, walk_expr, walk_stmt};
use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::{Ranged, TextRange};

use crate::resolve::ModuleScope;

/// Functions returning an array namespace, by the last part of their canonical name.
const GETTERS: &[&str] = &[
    "array_namespace",
    "get_namespace",
    "get_namespace_and_device",
];

/// Packages whose getters are known to return NumPy's namespace for NumPy arrays.
const GETTER_PACKAGES: &[&str] = &["sklearn", "scipy", "array_api_compat"];

/// The name array-API code gives a namespace it is handed (`def _helper(x, xp): ...`).
const NAMESPACE_PARAMETER: &str = "xp";

/// `def` with its array-namespace names read as NumPy, and the names the module must bind
/// for it (NumPy's, when the module has no import of NumPy the function can use; Tangent's,
/// for the check of a namespace parameter); `None` when the function uses no namespace.
///
/// A namespace handed in as a parameter (`xp`, never assigned otherwise) is read as NumPy
/// too, and checked when the derivative runs: anything but NumPy (or a compatibility layer
/// over it) raises there, as the derivative would not compute what the function does.
pub(super) fn numpy_namespaces(
    def: &ast::StmtFunctionDef,
    scope: &ModuleScope,
) -> Option<(ast::StmtFunctionDef, Vec<(String, &'static str)>)> {
    read_as_numpy(def, scope, true)
}

/// [`numpy_namespaces`]; a namespace parameter is read as NumPy only when `parameters` (an
/// inlined callee has it replaced by what the call gives instead).
pub(super) fn read_as_numpy(
    def: &ast::StmtFunctionDef,
    scope: &ModuleScope,
    parameters: bool,
) -> Option<(ast::StmtFunctionDef, Vec<(String, &'static str)>)> {
    let promotes = super::calls_any(def, &|c| is_promote(c, scope) || is_spread_reshape(c));
    let mut bindings = Bindings {
        scope,
        getter_targets: BTreeSet::new(),
        other_targets: BTreeSet::new(),
    };
    bindings.block(&def.body);
    let handed: Vec<String> = def
        .parameters
        .iter_non_variadic_params()
        .map(|p| p.parameter.name.to_string())
        .filter(|p| {
            parameters
                && p == NAMESPACE_PARAMETER
                && !bindings.getter_targets.contains(p)
                && !bindings.other_targets.contains(p)
                && used_as_namespace(def, p)
        })
        .collect();
    let names: BTreeSet<String> = bindings
        .getter_targets
        .difference(&bindings.other_targets)
        .cloned()
        .chain(handed.iter().cloned())
        .collect();
    if names.is_empty() && !promotes {
        return None;
    }
    let (alias, bind) = super::module_alias(def, scope, "numpy")?;
    let mut out = def.clone();
    let rewrite = Rewrite {
        scope,
        names: &names,
        alias: &alias,
    };
    rewrite.visit_body(&mut out.body);
    let mut binds: Vec<(String, &'static str)> = Vec::new();
    if bind {
        binds.push((alias.clone(), "numpy"));
    }
    if !handed.is_empty() {
        let (tangent, bind) = super::module_alias(def, scope, "tangent")?;
        if bind {
            binds.push((tangent.clone(), "tangent"));
        }
        let checks = handed.iter().map(|p| namespace_check(&tangent, p, def));
        out.body = checks.chain(out.body).collect();
    }
    Some((out, binds))
}

/// Is `name` read in `def` only as a namespace: its attributes (`xp.sum`), or handed on as
/// `xp=xp` (not an array named `xp`, as `np.interp(x, xp, fp)` names one)?
pub(super) fn used_as_namespace(def: &ast::StmtFunctionDef, name: &str) -> bool {
    use ruff_python_ast::visitor::{Visitor, walk_expr, walk_keyword};
    struct Uses<'n> {
        name: &'n str,
        attributes: usize,
        other: usize,
    }
    impl<'a> Visitor<'a> for Uses<'_> {
        fn visit_expr(&mut self, expr: &'a AExpr) {
            match expr {
                AExpr::Attribute(a) if matches!(a.value.as_ref(), AExpr::Name(n) if n.id.as_str() == self.name) =>
                {
                    self.attributes += 1;
                }
                AExpr::Name(n) if n.id.as_str() == self.name => self.other += 1,
                _ => walk_expr(self, expr),
            }
        }
        fn visit_keyword(&mut self, keyword: &'a ast::Keyword) {
            let handed_on = keyword
                .arg
                .as_ref()
                .is_some_and(|a| a.as_str() == self.name)
                && matches!(&keyword.value, AExpr::Name(n) if n.id.as_str() == self.name);
            if !handed_on {
                walk_keyword(self, keyword);
            }
        }
    }
    let mut uses = Uses {
        name,
        attributes: 0,
        other: 0,
    };
    for s in &def.body {
        uses.visit_stmt(s);
    }
    uses.attributes > 0 && uses.other == 0
}

/// `tangent.numpy_namespace(xp)`: raises unless the namespace parameter `p` holds NumPy.
fn namespace_check(tangent: &str, p: &str, def: &ast::StmtFunctionDef) -> AStmt {
    let range = def
        .parameters
        .iter_non_variadic_params()
        .find(|q| q.parameter.name.as_str() == p)
        .map_or(def.range(), |q| q.range());
    let call = AExpr::Call(ast::ExprCall {
        node_index: ast::AtomicNodeIndex::NONE,
        range_start: range.start(),
        func: Box::new(attribute_of(tangent, "numpy_namespace", range)),
        arguments: ast::Arguments {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            args: vec![name_at(p, range)].into_boxed_slice(),
            keywords: Default::default(),
        },
    });
    AStmt::Expr(ast::StmtExpr {
        node_index: ast::AtomicNodeIndex::NONE,
        range,
        value: Box::new(call),
    })
}

/// The name `id` read, at `range`.
fn name_at(id: &str, range: TextRange) -> AExpr {
    AExpr::Name(ast::ExprName {
        node_index: ast::AtomicNodeIndex::NONE,
        range,
        id: id.into(),
        ctx: ast::ExprContext::Load,
    })
}

/// `module.attr` read, at `range`.
fn attribute_of(module: &str, attr: &str, range: TextRange) -> AExpr {
    AExpr::Attribute(ast::ExprAttribute {
        node_index: ast::AtomicNodeIndex::NONE,
        range,
        value: Box::new(name_at(module, range)),
        attr: ast::Identifier::new(attr, range),
        ctx: ast::ExprContext::Load,
    })
}

/// Is `call` a namespace getter of a known package?
fn is_getter(call: &ast::ExprCall, scope: &ModuleScope) -> bool {
    let Some(dotted) = super::dotted_name(&call.func) else {
        return false;
    };
    let Some(canon) = scope.canonical(&dotted) else {
        return false;
    };
    let package = canon.split('.').next().unwrap_or("");
    let last = canon.rsplit('.').next().unwrap_or("");
    GETTER_PACKAGES.contains(&package) && GETTERS.contains(&last)
}

/// The namespace name a getter statement binds (`xp` of `xp, _ = get_namespace(X)`).
fn getter_target<'s>(stmt: &'s AStmt, scope: &ModuleScope) -> Option<&'s str> {
    let AStmt::Assign(a) = stmt else { return None };
    let AExpr::Call(call) = a.value.as_ref() else {
        return None;
    };
    if a.targets.len() != 1 || !is_getter(call, scope) {
        return None;
    }
    match &a.targets[0] {
        AExpr::Name(n) => Some(n.id.as_str()),
        AExpr::Tuple(t) => match t.elts.first() {
            Some(AExpr::Name(n)) => Some(n.id.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// Names bound by getters, and names bound (also) otherwise.
struct Bindings<'s> {
    scope: &'s ModuleScope,
    getter_targets: BTreeSet<String>,
    other_targets: BTreeSet<String>,
}

impl Bindings<'_> {
    fn block(&mut self, body: &[AStmt]) {
        for stmt in body {
            if let Some(name) = getter_target(stmt, self.scope) {
                self.getter_targets.insert(name.to_string());
                continue;
            }
            match stmt {
                AStmt::If(s) => {
                    self.block(&s.body);
                    for clause in &s.elif_else_clauses {
                        self.block(&clause.body);
                    }
                }
                AStmt::While(s) => {
                    self.block(&s.body);
                    self.block(&s.orelse);
                }
                AStmt::Try(s) => {
                    self.block(&s.body);
                    for handler in &s.handlers {
                        let ast::ExceptHandler::ExceptHandler(h) = handler;
                        if let Some(name) = &h.name {
                            self.other_targets.insert(name.to_string());
                        }
                        self.block(&h.body);
                    }
                    self.block(&s.orelse);
                    self.block(&s.finalbody);
                }
                AStmt::For(s) => {
                    super::collect_target(&s.target, &mut self.other_targets);
                    self.block(&s.body);
                    self.block(&s.orelse);
                }
                AStmt::With(s) => {
                    for item in &s.items {
                        if let Some(v) = &item.optional_vars {
                            super::collect_target(v, &mut self.other_targets);
                        }
                    }
                    self.block(&s.body);
                }
                _ => super::collect_assigned(std::slice::from_ref(stmt), &mut self.other_targets),
            }
        }
    }
}

struct Rewrite<'r> {
    scope: &'r ModuleScope,
    names: &'r BTreeSet<String>,
    alias: &'r str,
}

impl Transformer for Rewrite<'_> {
    fn visit_stmt(&self, stmt: &mut AStmt) {
        if getter_target(stmt, self.scope).is_some_and(|n| self.names.contains(n)) {
            *stmt = other_results(stmt);
            return;
        }
        if let AStmt::FunctionDef(f) = stmt {
            let shadows = f
                .parameters
                .iter_non_variadic_params()
                .any(|p| self.names.contains(p.parameter.name.as_str()));
            if shadows {
                return;
            }
        }
        walk_stmt(self, stmt);
    }

    fn visit_expr(&self, expr: &mut AExpr) {
        if let AExpr::Call(call) = expr {
            if let Some(promoted) = promoted(call, self.scope, self.alias) {
                *expr = promoted;
            } else if let Some(packed) = packed_shape(call) {
                call.arguments.args = vec![packed].into_boxed_slice();
            }
        }
        if let AExpr::Name(n) = expr {
            if n.ctx == ast::ExprContext::Load && self.names.contains(n.id.as_str()) {
                n.id = self.alias.into();
            }
            return;
        }
        walk_expr(self, expr);
    }
}

/// What a getter statement leaves: its other targets bound to what a getter gives for NumPy
/// arrays (`is_array_api_compliant = False`, `device = None`), or `pass`.
fn other_results(stmt: &AStmt) -> AStmt {
    let range = stmt.range();
    let AStmt::Assign(a) = stmt else {
        return stmt.clone();
    };
    let rest: Vec<AExpr> = match &a.targets[0] {
        AExpr::Tuple(t) => t.elts.iter().skip(1).cloned().collect(),
        _ => Vec::new(),
    };
    if rest.is_empty() {
        return AStmt::Pass(ast::StmtPass {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
        });
    }
    let values: Vec<AExpr> = (0..rest.len())
        .map(|i| {
            if i == 0 {
                AExpr::BooleanLiteral(ast::ExprBooleanLiteral {
                    node_index: ast::AtomicNodeIndex::NONE,
                    range,
                    value: false,
                })
            } else {
                AExpr::NoneLiteral(ast::ExprNoneLiteral {
                    node_index: ast::AtomicNodeIndex::NONE,
                    range,
                })
            }
        })
        .collect();
    let tuple = |elts: Vec<AExpr>, ctx| {
        AExpr::Tuple(ast::ExprTuple {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            elts,
            ctx,
            parenthesized: false,
        })
    };
    let (target, value) = if rest.len() == 1 {
        (rest[0].clone(), values[0].clone())
    } else {
        (
            tuple(rest, ast::ExprContext::Store),
            tuple(values, ast::ExprContext::Load),
        )
    };
    AStmt::Assign(ast::StmtAssign {
        node_index: ast::AtomicNodeIndex::NONE,
        range,
        targets: vec![target],
        value: Box::new(value),
    })
}

/// SciPy's `xp_promote(a, b, force_floating=True, xp=xp)`: its arguments as arrays of their
/// common type (floating when forced), spelled in NumPy; `None` for other calls and for
/// broadcasting ones (left to the engine, which refuses them).
fn promoted(call: &ast::ExprCall, scope: &ModuleScope, numpy: &str) -> Option<AExpr> {
    if !is_promote(call, scope) {
        return None;
    }
    let mut floating = false;
    for k in call.arguments.keywords.iter() {
        match (k.arg.as_ref().map(|a| a.as_str()), &k.value) {
            (Some("xp"), _) => {}
            (Some("broadcast"), AExpr::BooleanLiteral(b)) if !b.value => {}
            (Some("force_floating"), AExpr::BooleanLiteral(b)) => floating = b.value,
            _ => return None,
        }
    }
    let args = &call.arguments.args;
    if args.is_empty()
        || args
            .iter()
            .any(|a| matches!(a, AExpr::Starred(_) | AExpr::NoneLiteral(_)))
    {
        return None;
    }
    let range = call.range();
    let attribute = |attr: &str| attribute_of(numpy, attr, range);
    let call_of = |func: AExpr, args: Vec<AExpr>, keywords: Vec<ast::Keyword>| {
        let mut made = call.clone();
        made.func = Box::new(func);
        made.arguments.args = args.into_boxed_slice();
        made.arguments.keywords = keywords.into();
        AExpr::Call(made)
    };
    let mut types: Vec<AExpr> = args.to_vec();
    if floating {
        types.push(AExpr::NumberLiteral(ast::ExprNumberLiteral {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            value: ast::Number::Float(1.0),
        }));
    }
    let dtype = call_of(attribute("result_type"), types, Vec::new());
    let converted: Vec<AExpr> = args
        .iter()
        .map(|a| {
            let keyword = ast::Keyword {
                node_index: ast::AtomicNodeIndex::NONE,
                range,
                arg: Some(ast::Identifier::new("dtype", range)),
                value: dtype.clone(),
            };
            call_of(attribute("asarray"), vec![a.clone()], vec![keyword])
        })
        .collect();
    if converted.len() == 1 {
        return converted.into_iter().next();
    }
    Some(AExpr::Tuple(ast::ExprTuple {
        node_index: ast::AtomicNodeIndex::NONE,
        range,
        elts: converted,
        ctx: ast::ExprContext::Load,
        parenthesized: true,
    }))
}

fn is_promote(call: &ast::ExprCall, scope: &ModuleScope) -> bool {
    super::dotted_name(&call.func)
        .and_then(|d| scope.canonical(&d))
        .is_some_and(|c| c == "scipy._lib._array_api.xp_promote")
}

/// `x.reshape(n, *rest.shape[1:])`, a shape spread over the arguments of `reshape`: the
/// shape as one tuple, `(n,) + tuple(rest.shape[1:])`, whose length need not be known.
fn packed_shape(call: &ast::ExprCall) -> Option<AExpr> {
    if !is_spread_reshape(call) {
        return None;
    }
    let range = call.range();
    let tuple_of = |elts: Vec<AExpr>| {
        AExpr::Tuple(ast::ExprTuple {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            elts,
            ctx: ast::ExprContext::Load,
            parenthesized: true,
        })
    };
    let mut parts: Vec<AExpr> = Vec::new();
    let mut plain: Vec<AExpr> = Vec::new();
    for arg in call.arguments.args.iter() {
        match arg {
            AExpr::Starred(s) => {
                if !plain.is_empty() {
                    parts.push(tuple_of(std::mem::take(&mut plain)));
                }
                let mut as_tuple = call.clone();
                as_tuple.func = Box::new(AExpr::Name(ast::ExprName {
                    node_index: ast::AtomicNodeIndex::NONE,
                    range,
                    id: "tuple".into(),
                    ctx: ast::ExprContext::Load,
                }));
                as_tuple.arguments.args = vec![(*s.value).clone()].into_boxed_slice();
                as_tuple.arguments.keywords = Default::default();
                parts.push(AExpr::Call(as_tuple));
            }
            other => plain.push(other.clone()),
        }
    }
    if !plain.is_empty() {
        parts.push(tuple_of(plain));
    }
    parts.into_iter().reduce(|left, right| {
        AExpr::BinOp(ast::ExprBinOp {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            left: Box::new(left),
            op: ast::Operator::Add,
            right: Box::new(right),
        })
    })
}

/// A method call `x.reshape(...)` with a starred argument.
fn is_spread_reshape(call: &ast::ExprCall) -> bool {
    matches!(call.func.as_ref(), AExpr::Attribute(a) if a.attr.as_str() == "reshape")
        && call.arguments.keywords.is_empty()
        && call
            .arguments
            .args
            .iter()
            .any(|a| matches!(a, AExpr::Starred(_)))
}
