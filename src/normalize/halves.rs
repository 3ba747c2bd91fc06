//! Generated code differentiated again: the two halves of a called helper's derivative
//! (`<g>_forward(stack, ...)` and `<g>_backward(stack, seed)`, see `derive::helper_halves`)
//! are inlined where the gradient calls them.
//!
//! The forward half pushes what the backward half pops, on the caller's stack: inlined, the
//! pushes and pops stand in one function, where reverse and forward mode pair them by name.
//! Both halves of one helper therefore get the *same* new name for each of their locals
//! (`eps` pushed by the forward half and `eps` popped by the backward half stay one name),
//! whatever the call site; the stack parameter becomes the caller's stack.

use std::collections::{BTreeMap, BTreeSet};

use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::Ranged;

use super::scopes::Nested;
use super::{Normalizer, Result, collect_assigned, is_generated_stack_name};
use crate::ir::Expr;

/// Halves nested deeper than this are reported (a helper's halves calling themselves).
const MAX_DEPTH: usize = 32;

/// The generated helper halves of a module, by function name.
#[derive(Debug, Default, Clone)]
pub struct Halves {
    defs: BTreeMap<String, (ast::StmtFunctionDef, String)>,
}

impl Halves {
    /// The pairs `<stem>_forward` / `<stem>_backward` among `body`'s functions whose first
    /// parameter is a stack of generated code.
    pub fn of_module(body: &[AStmt]) -> Halves {
        let defs: BTreeMap<&str, &ast::StmtFunctionDef> = body
            .iter()
            .filter_map(|s| match s {
                AStmt::FunctionDef(f) => Some((f.name.as_str(), f)),
                _ => None,
            })
            .collect();
        let takes_stack = |f: &ast::StmtFunctionDef| {
            f.parameters
                .posonlyargs
                .iter()
                .chain(f.parameters.args.iter())
                .next()
                .is_some_and(|p| is_generated_stack_name(p.parameter.name.as_str()))
        };
        let mut out = BTreeMap::new();
        for (name, def) in &defs {
            let Some(stem) = name.strip_suffix("_forward") else {
                continue;
            };
            let Some(partner) = defs.get(format!("{stem}_backward").as_str()) else {
                continue;
            };
            if takes_stack(def)
                && takes_stack(partner)
                && ends_with_return(def)
                && ends_with_return(partner)
            {
                out.insert(name.to_string(), ((*def).clone(), stem.to_string()));
                out.insert(
                    format!("{stem}_backward"),
                    ((*partner).clone(), stem.to_string()),
                );
            }
        }
        Halves { defs: out }
    }

    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }
}

fn ends_with_return(def: &ast::StmtFunctionDef) -> bool {
    matches!(def.body.last(), Some(AStmt::Return(r)) if r.value.is_some())
}

impl Normalizer<'_> {
    /// A call of a helper half: its stack parameter is the caller's stack, its other
    /// parameters are bound to the arguments, its body is normalized in place with its locals
    /// renamed (the same way for both halves of a helper), and its `return` is the value.
    pub(super) fn inline_half(&mut self, name: &str, call: &ast::ExprCall) -> Result<Expr> {
        let Some((def, stem)) = self.halves.and_then(|h| h.defs.get(name)).cloned() else {
            unreachable!("checked by the caller")
        };
        if self.half_path.len() >= MAX_DEPTH {
            return Err(self.unsupported(
                call.range(),
                format!("`{name}` calls itself: its gradient cannot be differentiated again"),
            ));
        }
        let params: Vec<&ast::ParameterWithDefault> = def
            .parameters
            .posonlyargs
            .iter()
            .chain(def.parameters.args.iter())
            .chain(def.parameters.kwonlyargs.iter())
            .collect();
        let positional = def.parameters.posonlyargs.len() + def.parameters.args.len();
        let stack = match call.arguments.args.first() {
            Some(AExpr::Name(n)) if self.stacks.contains(n.id.as_str()) && positional > 0 => {
                n.id.to_string()
            }
            _ => {
                return Err(self.unsupported(
                    call.range(),
                    format!("`{name}` must be given a stack of generated code first"),
                ));
            }
        };
        // The arguments as Python binds them (the stack aside): by position, then by keyword,
        // then the defaults.
        let mut bound: BTreeMap<String, &AExpr> = BTreeMap::new();
        for (i, a) in call.arguments.args.iter().enumerate().skip(1) {
            match params.get(i).filter(|_| i < positional) {
                Some(p) if !matches!(a, AExpr::Starred(_)) => {
                    bound.insert(p.parameter.name.to_string(), a);
                }
                _ => {
                    return Err(self.unsupported(
                        a.range(),
                        format!("`{name}` takes its arguments as generated code passes them"),
                    ));
                }
            }
        }
        for k in call.arguments.keywords.iter() {
            let known = k.arg.as_ref().filter(|arg| {
                params
                    .iter()
                    .skip(1)
                    .any(|p| p.parameter.name.as_str() == arg.as_str())
            });
            let Some(arg) = known else {
                return Err(self.unsupported(
                    k.range(),
                    format!("`{name}` takes its arguments as generated code passes them"),
                ));
            };
            if bound.insert(arg.to_string(), &k.value).is_some() {
                return Err(self.unsupported(k.range(), format!("`{arg}` is given twice")));
            }
        }
        let mut arguments: Vec<(String, AExpr)> = Vec::new();
        for p in params.iter().skip(1) {
            let pname = p.parameter.name.as_str();
            match (bound.get(pname), &p.default) {
                (Some(a), _) => arguments.push((pname.to_string(), (*a).clone())),
                (None, Some(d)) => arguments.push((pname.to_string(), d.as_ref().clone())),
                (None, None) => {
                    return Err(self.unsupported(
                        call.range(),
                        format!("missing argument `{pname}` for `{name}`"),
                    ));
                }
            }
        }
        self.half_path.push(stem.clone());
        let scope_key = self.half_path.join("/");
        let mut locals: BTreeSet<String> = arguments.iter().map(|(p, _)| p.clone()).collect();
        collect_assigned(&def.body, &mut locals);
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for local in locals {
            let key = (scope_key.clone(), local.clone());
            let renamed = match self.half_names.get(&key) {
                Some(n) => n.clone(),
                None => {
                    let n = self.fresh(&format!("{stem}_{local}"));
                    self.half_names.insert(key, n.clone());
                    n
                }
            };
            self.locals.insert(renamed.clone());
            map.insert(local, renamed);
        }
        map.insert(params[0].parameter.name.to_string(), stack);
        let result = (|| {
            // Arguments are evaluated before the body runs (defaults at the call, as for
            // nested functions).
            let mut values = Vec::new();
            for (p, a) in &arguments {
                values.push((p, self.atom(a, p)?));
            }
            for (p, value) in values {
                self.assign(&map[p.as_str()], Expr::Atom(value));
            }
            let nested = Nested::Def(Box::new(def.clone()));
            self.inline_body(&nested, &map)
        })();
        self.half_path.pop();
        result
    }
}
