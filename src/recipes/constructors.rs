//! Recipes for the constructors of the module's classes, written from their definitions: an
//! object made inside a differentiated function (`layer = Linear(w, b)`) carries its
//! arguments' derivatives in its attributes.
//!
//! A class qualifies when its constructor only stores parameters in attributes: an
//! `__init__(self, a, b=...)` whose statements are `self.x = a` (a docstring allowed), or a
//! dataclass (its fields are its parameters, in order). The adjoint of `obj = C(a, b)` gives
//! each parameter the entry of the object's gradient (a mapping by attribute, as for
//! parameter containers) at the attribute it was stored in; the tangent of `obj` is the
//! mapping of the parameters' tangents (`tangent.object_tangent`). Other constructors get no
//! recipe: a call of them on differentiated values is refused as before.

use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};

use super::{Recipe, RecipeSet};

/// The Python text of the recipes for the constructors of `body`'s classes (empty when none
/// qualifies): an adjoint and a tangent template per class, named `<Class>__init__`.
pub fn constructor_templates(body: &[AStmt]) -> String {
    let mut out = String::new();
    for stmt in body {
        let AStmt::ClassDef(class) = stmt else {
            continue;
        };
        let Some(fields) = constructor_of(class, body, 0).and_then(stored_parameters) else {
            continue;
        };
        if fields.is_empty() {
            continue;
        }
        let name = class.name.as_str();
        let signature = std::iter::once("result".to_string())
            .chain(fields.iter().map(|f| match &f.default {
                Some(d) => format!("{}={d}", f.param),
                None => f.param.clone(),
            }))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!("def {name}__init__({signature}):\n"));
        for Field { param, attr, .. } in &fields {
            out.push_str(&format!(
                "    d[{param}] = tangent.attribute_tangent(d[result], '{attr}', {param})\n"
            ));
        }
        out.push_str(&format!("\n\ndef {name}__init__({signature}):\n"));
        for (i, Field { param, attr, .. }) in fields.iter().enumerate() {
            let op = if i == 0 { "=" } else { "+=" };
            out.push_str(&format!(
                "    d[result] {op} tangent.object_tangent('{attr}', d[{param}])\n"
            ));
        }
        out.push_str("\n\n");
    }
    out
}

/// The recipes of `text` (from [`constructor_templates`]): the first template of each pair
/// is the adjoint, the second the tangent, both under the class's name.
pub fn constructor_recipes(text: &str) -> RecipeSet {
    let mut set = RecipeSet::default();
    if text.is_empty() {
        return set;
    }
    let Ok(parsed) = ruff_python_parser::parse_module(text) else {
        return set;
    };
    let defs: Vec<&ast::StmtFunctionDef> = parsed
        .syntax()
        .body
        .iter()
        .filter_map(|s| match s {
            AStmt::FunctionDef(f) => Some(f),
            _ => None,
        })
        .collect();
    for pair in defs.chunks(2) {
        let [adjoint, tangent] = pair else { continue };
        let class = adjoint
            .name
            .as_str()
            .trim_end_matches("__init__")
            .to_string();
        let origin = format!("{class}.__init__");
        if let Ok(r) = Recipe::from_def(adjoint, text, origin.clone(), false) {
            set.insert(r, vec![class.clone()], Vec::new());
        }
        if let Ok(r) = Recipe::from_def(tangent, text, origin, false) {
            set.insert(r, Vec::new(), vec![class]);
        }
    }
    set
}

/// The class whose constructor `class` uses: itself when it defines `__init__` (or is a
/// dataclass), else the first base class of the module that does, as Python looks it up.
fn constructor_of<'m>(
    class: &'m ast::StmtClassDef,
    body: &'m [AStmt],
    depth: usize,
) -> Option<&'m ast::StmtClassDef> {
    let own = is_dataclass(class)
        || class
            .body
            .iter()
            .any(|s| matches!(s, AStmt::FunctionDef(f) if f.name.as_str() == "__init__"));
    if own {
        return Some(class);
    }
    if depth > 32 {
        return None;
    }
    let base = class.bases().first()?;
    let AExpr::Name(n) = base else {
        return None;
    };
    let parent = body.iter().rev().find_map(|s| match s {
        AStmt::ClassDef(c) if c.name.as_str() == n.id.as_str() => Some(c),
        _ => None,
    })?;
    constructor_of(parent, body, depth + 1)
}

/// A constructor parameter stored in an attribute, with its default's text.
struct Field {
    param: String,
    attr: String,
    default: Option<String>,
}

fn expression_text(e: &AExpr) -> String {
    let indent = ruff_python_codegen::Indentation::new("    ".to_string());
    ruff_python_codegen::Generator::new(&indent, ruff_source_file::LineEnding::Lf).expr(e)
}

/// The parameters the constructor stores, in the order of the parameters; `None` when the
/// constructor does anything else.
fn stored_parameters(class: &ast::StmtClassDef) -> Option<Vec<Field>> {
    if is_dataclass(class) {
        let init = class
            .body
            .iter()
            .any(|s| matches!(s, AStmt::FunctionDef(f) if f.name.as_str() == "__init__"));
        if init {
            return None;
        }
        return Some(
            class
                .body
                .iter()
                .filter_map(|s| match s {
                    AStmt::AnnAssign(a) => match a.target.as_ref() {
                        AExpr::Name(n) if !is_class_var(&a.annotation) => Some(Field {
                            param: n.id.to_string(),
                            attr: n.id.to_string(),
                            default: a.value.as_deref().map(expression_text),
                        }),
                        _ => None,
                    },
                    _ => None,
                })
                .collect(),
        );
    }
    let init = class.body.iter().find_map(|s| match s {
        AStmt::FunctionDef(f) if f.name.as_str() == "__init__" => Some(f),
        _ => None,
    })?;
    let p = &init.parameters;
    if p.vararg.is_some()
        || p.kwarg.is_some()
        || !p.kwonlyargs.is_empty()
        || !init.decorator_list.is_empty()
    {
        return None;
    }
    let mut all = p.posonlyargs.iter().chain(&p.args);
    let self_name = all.next()?.parameter.name.to_string();
    let params: Vec<&ast::ParameterWithDefault> = all.collect();
    let mut stored: Vec<(String, String)> = Vec::new();
    for (i, s) in init.body.iter().enumerate() {
        match s {
            AStmt::Expr(e) if i == 0 && matches!(e.value.as_ref(), AExpr::StringLiteral(_)) => {}
            AStmt::Assign(a) if a.targets.len() == 1 => {
                let AExpr::Attribute(t) = &a.targets[0] else {
                    return None;
                };
                let (AExpr::Name(obj), AExpr::Name(value)) = (t.value.as_ref(), a.value.as_ref())
                else {
                    return None;
                };
                let param = value.id.to_string();
                if obj.id.as_str() != self_name
                    || !params.iter().any(|q| q.parameter.name.as_str() == param)
                    || stored.iter().any(|(q, _)| *q == param)
                {
                    return None;
                }
                stored.push((param, t.attr.to_string()));
            }
            _ => return None,
        }
    }
    // Every parameter is stored (the recipe names them all, in order).
    let mut ordered = Vec::new();
    for q in params {
        let name = q.parameter.name.as_str();
        let (_, attr) = stored.iter().find(|(p, _)| p == name)?;
        ordered.push(Field {
            param: name.to_string(),
            attr: attr.clone(),
            default: q.default.as_deref().map(expression_text),
        });
    }
    Some(ordered)
}

fn is_dataclass(class: &ast::StmtClassDef) -> bool {
    class.decorator_list.iter().any(|d| {
        let e = match &d.expression {
            AExpr::Call(c) => c.func.as_ref(),
            other => other,
        };
        match e {
            AExpr::Name(n) => n.id.as_str() == "dataclass",
            AExpr::Attribute(a) => a.attr.as_str() == "dataclass",
            _ => false,
        }
    })
}

fn is_class_var(annotation: &AExpr) -> bool {
    let e = match annotation {
        AExpr::Subscript(s) => s.value.as_ref(),
        other => other,
    };
    matches!(e, AExpr::Name(n) if n.id.as_str() == "ClassVar")
        || matches!(e, AExpr::Attribute(a) if a.attr.as_str() == "ClassVar")
}
