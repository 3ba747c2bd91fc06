//! Dictionaries of differentiated values, as parameter containers are written:
//! `params.items()`, `params.values()`, `params.keys()` become their items read by key
//! (`[(k, params[k]) for k in tangent.keys_of(params)]`), so that each value is an item of
//! the container the engine differentiates, and the keys are values with no derivative.
//! (`{k: f(v) for k, v in params.items()}` is lowered by `scopes::dict_comprehension`.)

use ruff_python_ast::visitor::transformer::{Transformer, walk_expr};
use ruff_python_ast::{self as ast, Expr as AExpr};
use ruff_text_size::{Ranged, TextRange};

use crate::resolve::ModuleScope;

/// `def` with its dictionary views read by key, and the name the module must bind to
/// `tangent` for it (when it does not import it); `None` when it has none.
pub(super) fn dict_views(
    def: &ast::StmtFunctionDef,
    scope: &ModuleScope,
) -> Option<(ast::StmtFunctionDef, Vec<(String, &'static str)>)> {
    if !super::calls_any(def, &|c| view(c).is_some()) {
        return None;
    }
    let (tangent, bind) = super::module_alias(def, scope, "tangent")?;
    let mut out = def.clone();
    let rewrite = Views {
        tangent: &tangent,
        next: std::cell::Cell::new(0),
    };
    rewrite.visit_body(&mut out.body);
    let bind = bind.then(|| (tangent.clone(), "tangent"));
    Some((out, bind.into_iter().collect()))
}

/// `(container, view)` of a call `container.items()` (`values`, `keys`).
fn view(call: &ast::ExprCall) -> Option<(&AExpr, &str)> {
    let AExpr::Attribute(a) = call.func.as_ref() else {
        return None;
    };
    let plain = call.arguments.args.is_empty()
        && call.arguments.keywords.is_empty()
        && matches!(a.value.as_ref(), AExpr::Name(_) | AExpr::Attribute(_));
    (plain && matches!(a.attr.as_str(), "items" | "values" | "keys"))
        .then(|| (a.value.as_ref(), a.attr.as_str()))
}

struct Views<'v> {
    /// The name `tangent` goes by in the module.
    tangent: &'v str,
    next: std::cell::Cell<usize>,
}

impl Views<'_> {
    fn name(&self, id: &str, range: TextRange, ctx: ast::ExprContext) -> AExpr {
        AExpr::Name(ast::ExprName {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            id: id.into(),
            ctx,
        })
    }

    /// `tangent.keys_of(container)`.
    fn keys(&self, call: &ast::ExprCall, container: &AExpr) -> AExpr {
        let range = call.range();
        let mut keys = call.clone();
        keys.func = Box::new(AExpr::Attribute(ast::ExprAttribute {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            value: Box::new(self.name(self.tangent, range, ast::ExprContext::Load)),
            attr: ast::Identifier::new("keys_of", range),
            ctx: ast::ExprContext::Load,
        }));
        keys.arguments.args = vec![container.clone()].into_boxed_slice();
        AExpr::Call(keys)
    }

    /// `[elt(k) for k in tangent.keys_of(container)]`.
    fn by_key(&self, call: &ast::ExprCall, container: &AExpr, items: bool) -> AExpr {
        let range = call.range();
        let n = self.next.get();
        self.next.set(n + 1);
        let key = format!("_key{n}");
        let value = AExpr::Subscript(ast::ExprSubscript {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            value: Box::new(container.clone()),
            slice: Box::new(self.name(&key, range, ast::ExprContext::Load)),
            ctx: ast::ExprContext::Load,
        });
        let elt = if items {
            AExpr::Tuple(ast::ExprTuple {
                node_index: ast::AtomicNodeIndex::NONE,
                range,
                elts: vec![self.name(&key, range, ast::ExprContext::Load), value],
                ctx: ast::ExprContext::Load,
                parenthesized: true,
            })
        } else {
            value
        };
        AExpr::ListComp(ast::ExprListComp {
            node_index: ast::AtomicNodeIndex::NONE,
            range,
            elt: Box::new(elt),
            generators: vec![ast::Comprehension {
                node_index: ast::AtomicNodeIndex::NONE,
                range,
                target: self.name(&key, range, ast::ExprContext::Store),
                iter: self.keys(call, container),
                ifs: Vec::new(),
                is_async: false,
            }],
        })
    }
}

impl Transformer for Views<'_> {
    fn visit_expr(&self, expr: &mut AExpr) {
        walk_expr(self, expr);
        let AExpr::Call(call) = expr else { return };
        let Some((container, kind)) = view(call) else {
            return;
        };
        let container = container.clone();
        *expr = match kind {
            "items" => self.by_key(call, &container, true),
            "values" => self.by_key(call, &container, false),
            _ => self.keys(call, &container),
        };
    }
}
