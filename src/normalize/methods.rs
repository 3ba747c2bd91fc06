//! Methods of the module's top-level classes: which class a method is seen from, and calls of
//! other methods on `self` (own, inherited, `super()`) as calls of those methods as functions.

use ruff_python_ast::{self as ast, Expr as AExpr};
use ruff_text_size::Ranged;

use super::{Normalizer, Result};
use crate::diagnostics::DiagnosticKind;
use crate::parse::SourceFile;
use crate::resolve::ModuleScope;

impl Normalizer<'_> {
    /// In a method: `self.m(...)` (the class's `m` or an inherited one) and `super().m(...)`
    /// (a base class's) as `(Owner.m, self)`: the call of that method as a function with
    /// `self` first. Resolved statically, as written in the classes, not a subclass's override.
    pub(super) fn method_receiver(&self, c: &ast::ExprCall) -> Option<(String, String)> {
        // A callable object passed in (`quad(x)`, `terms[0](x)`): its class's `__call__`.
        if let Some((held, path)) = self.passed_object(&c.func) {
            let owner = self.scope.method_owner(held, "__call__")?;
            return Some((format!("{}.__call__", owner.name), path));
        }
        let AExpr::Attribute(a) = c.func.as_ref() else {
            return None;
        };
        let method = a.attr.as_str();
        // An object the function made itself (`layer = Linear(w, b)`): its class's method.
        if let AExpr::Name(n) = a.value.as_ref()
            && let Some(class) = self.object_classes.get(n.id.as_str())
        {
            let owner = self.scope.method_owner(class, method)?;
            return Some((format!("{}.{method}", owner.name), n.id.to_string()));
        }
        // An object passed in (`def loss(model, x): ... model.forward(x)`, `model.head.apply`,
        // `layers[0].forward`) whose class the API found on the argument.
        if let Some((held, path)) = self.passed_object(&a.value) {
            let owner = self.scope.method_owner(held, method)?;
            return Some((format!("{}.{method}", owner.name), path));
        }
        let (self_name, class) = self.method.as_ref()?;
        // An object in an attribute whose class the API found (`self.family.loglike(...)`).
        if let Some(path) = parameter_path(a.value.as_ref())
            && let Some(rest) = path.strip_prefix(&format!("{self_name}."))
        {
            let key = (class.clone(), format!("self.{rest}"));
            let held = self.attribute_classes.and_then(|m| m.get(&key))?;
            let owner = self.scope.method_owner(held, method)?;
            return Some((format!("{}.{method}", owner.name), path));
        }
        let owner = match a.value.as_ref() {
            AExpr::Name(n) if n.id.as_str() == self_name => {
                self.scope.method_owner(class, method)?
            }
            AExpr::Call(s)
                if s.arguments.args.is_empty()
                    && s.arguments.keywords.is_empty()
                    && matches!(s.func.as_ref(), AExpr::Name(n) if n.id.as_str() == "super") =>
            {
                self.scope.inherited_method_owner(class, method)?
            }
            _ => return None,
        };
        Some((format!("{}.{method}", owner.name), self_name.clone()))
    }

    /// The class the API found for the object `e` reaches from a parameter (`model`,
    /// `model.head`, `layers[1]`) on the arguments the derivative was called with (keyed by
    /// `def <function>`, a key no class has), and that path.
    fn passed_object(&self, e: &AExpr) -> Option<(&String, String)> {
        let path = parameter_path(e)?;
        let key = (format!("def {}", self.function_name), path);
        let held = self.attribute_classes?.get(&key)?;
        Some((held, key.1))
    }

    /// `self.m(...)` in a method, where neither the class nor its bases in this module define
    /// `m` (an abstract method a subclass provides): said plainly, with the way out.
    pub(super) fn check_self_call(&self, c: &ast::ExprCall) -> Result<()> {
        let Some((self_name, class)) = &self.method else {
            return Ok(());
        };
        let AExpr::Attribute(a) = c.func.as_ref() else {
            return Ok(());
        };
        if !matches!(a.value.as_ref(), AExpr::Name(n) if n.id.as_str() == self_name) {
            return Ok(());
        }
        let method = a.attr.as_str();
        Err(self
            .file
            .diagnostic(
                DiagnosticKind::NoRecipe,
                format!("`{self_name}.{method}` is not a method of `{class}` or of its bases in this module"),
                usize::from(c.range().start()),
                usize::from(c.range().end()),
            )
            .with_help(format!(
                "when a subclass defines `{method}`, differentiate the method of an instance (`tangent.grad(model.{0})`): it is looked up in the instance's class",
                self.function_name
            )))
    }
}

/// The locals of `body` that only ever hold objects of one class of the module, made by
/// calling it (`layer = Linear(w, b)`): their methods are that class's.
pub(super) fn object_classes(
    body: &[ast::Stmt],
    scope: &ModuleScope,
) -> std::collections::BTreeMap<String, String> {
    use ruff_python_ast::visitor::{Visitor, walk_stmt};
    use std::collections::{BTreeMap, BTreeSet};
    struct V<'s> {
        scope: &'s ModuleScope,
        classes: BTreeMap<String, String>,
        other: BTreeSet<String>,
    }
    impl<'a> Visitor<'a> for V<'_> {
        fn visit_stmt(&mut self, stmt: &'a ast::Stmt) {
            if let ast::Stmt::Assign(a) = stmt {
                let class = class_made_by(&a.value, self.scope);
                for t in &a.targets {
                    if let (AExpr::Name(n), Some(class)) = (t, &class) {
                        let name = n.id.to_string();
                        if self.classes.get(&name).is_some_and(|k| k != class) {
                            self.other.insert(name);
                        } else {
                            self.classes.insert(name, class.clone());
                        }
                        continue;
                    }
                    let mut names = BTreeSet::new();
                    super::collect_target(t, &mut names);
                    self.other.extend(names);
                }
                return;
            }
            if !matches!(stmt, ast::Stmt::FunctionDef(_) | ast::Stmt::ClassDef(_)) {
                walk_stmt(self, stmt);
            }
        }
    }
    let mut v = V {
        scope,
        classes: BTreeMap::new(),
        other: BTreeSet::new(),
    };
    for s in body {
        v.visit_stmt(s);
    }
    // Names bound any other way (a loop target, `x op= v`, a `with ... as`) are not known.
    let mut bound = BTreeSet::new();
    super::collect_bound_plain(body, &mut bound);
    v.classes
        .into_iter()
        .filter(|(n, _)| !v.other.contains(n) && !bound.contains(n))
        .collect()
}

/// The class of the module `value` calls to make an object (`Linear(w, b)`), if any.
fn class_made_by(value: &AExpr, scope: &ModuleScope) -> Option<String> {
    match value {
        AExpr::Call(c) => match c.func.as_ref() {
            AExpr::Name(n) if scope.classes.iter().any(|k| k.name == n.id.as_str()) => {
                Some(n.id.to_string())
            }
            _ => None,
        },
        _ => None,
    }
}

/// `(self, class, methods)` when `def` is a plain method of a top-level class of the module
/// `file` holds (not a static or class method).
pub(super) fn method_context(
    file: SourceFile<'_>,
    scope: &ModuleScope,
    def: &ast::StmtFunctionDef,
) -> Option<(String, String)> {
    // The scope may be another text's (a function given on its own): the class must be there.
    // (A class's range starts at its decorators: `@dataclass` then `class Model:`.)
    let in_module = scope.class_containing(def.range()).filter(|class| {
        file.text
            .get(class.range.start().to_usize()..class.range.end().to_usize())
            .is_some_and(|text| {
                text.lines()
                    .find_map(|l| l.trim_start().strip_prefix("class "))
                    .is_some_and(|rest| rest.trim_start().starts_with(class.name.as_str()))
            })
    });
    // A method's own text (the query database's): `class C:` and then the method.
    let own_text = || {
        let header = file.text.strip_prefix("class ")?.lines().next()?;
        let name = header.split([':', '(']).next()?.trim();
        // The class may inherit the method (`class Sub:` over a base class's method).
        scope.method_owner(name, def.name.as_str())?;
        scope.classes.iter().rev().find(|c| c.name == name)
    };
    let class = in_module.or_else(own_text)?;
    let decorated = def.decorator_list.iter().any(|d| matches!(&d.expression, AExpr::Name(n) if matches!(n.id.as_str(), "staticmethod" | "classmethod")));
    let first = def
        .parameters
        .posonlyargs
        .iter()
        .chain(def.parameters.args.iter())
        .next()?;
    (!decorated).then(|| (first.parameter.name.to_string(), class.name.clone()))
}

/// `model`, `model.head`, `layers[1]`, `layers[1].act`: the path of an object reached from a
/// name by attributes and integer indices.
pub(super) fn parameter_path(e: &AExpr) -> Option<String> {
    match e {
        AExpr::Name(n) => Some(n.id.to_string()),
        AExpr::Attribute(a) => Some(format!("{}.{}", parameter_path(&a.value)?, a.attr)),
        AExpr::Subscript(s) => match s.slice.as_ref() {
            AExpr::NumberLiteral(ast::ExprNumberLiteral {
                value: ast::Number::Int(i),
                ..
            }) => Some(format!("{}[{i}]", parameter_path(&s.value)?)),
            _ => None,
        },
        _ => None,
    }
}

/// The classes of objects held in attributes, as the module's source tells them (what
/// `tangent build` knows; the Python API reads them from the live object): `(Class,
/// "self.link")` -> `LogLink` when every assignment of `self.link` in `Class`'s methods and
/// its module bases' (or in the class body) makes an object of that one class of the module
/// (`self.link = LogLink()`), and through such objects to three levels (`self.family.link`).
/// The derivative checks the object's class when it runs (`tangent.resolves_to`), so an
/// object put there by other code raises rather than differentiating the wrong method.
pub fn attribute_classes(
    body: &[ast::Stmt],
    scope: &ModuleScope,
) -> std::collections::BTreeMap<(String, String), String> {
    use std::collections::BTreeMap;
    // Per class: attribute -> the one class its assignments make, or `None` when they differ
    // or make something else.
    let mut own: BTreeMap<String, BTreeMap<String, Option<Made>>> = BTreeMap::new();
    for stmt in body {
        if let ast::Stmt::ClassDef(class) = stmt {
            own.insert(class.name.to_string(), assigned_attributes(class, scope));
        }
    }
    // With the bases' assignments (any disagreement makes the attribute unknown).
    let mut direct: BTreeMap<(String, String), String> = BTreeMap::new();
    for class in own.keys() {
        let mut merged: BTreeMap<String, Option<Made>> = BTreeMap::new();
        let mut todo = vec![class.clone()];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(c) = todo.pop() {
            if !seen.insert(c.clone()) {
                continue;
            }
            for (attr, made) in own.get(&c).into_iter().flatten() {
                merged
                    .entry(attr.clone())
                    .and_modify(|m| {
                        if m != made {
                            *m = None;
                        }
                    })
                    .or_insert_with(|| made.clone());
            }
            if let Some(info) = scope.classes.iter().rev().find(|k| k.name == c) {
                todo.extend(info.bases.iter().cloned());
            }
        }
        for (attr, made) in merged {
            match made {
                Some(Made::Object(made)) => {
                    direct.insert((class.clone(), format!("self.{attr}")), made);
                }
                // A list of objects (`self.layers = [Dense(...), Relu()]`): item by item.
                Some(Made::Items(items)) => {
                    for (i, made) in items.into_iter().enumerate() {
                        direct.insert((class.clone(), format!("self.{attr}[{i}]")), made);
                    }
                }
                None => {}
            }
        }
    }
    // Through the objects held: `self.family.link`, to three levels.
    let mut all = direct.clone();
    let mut level = direct.clone();
    for _ in 1..3 {
        let mut next = BTreeMap::new();
        for ((class, path), held) in &level {
            for ((owner, inner), made) in &direct {
                if owner == held {
                    let rest = inner.strip_prefix("self").unwrap_or(inner);
                    next.insert((class.clone(), format!("{path}{rest}")), made.clone());
                }
            }
        }
        all.extend(next.clone());
        level = next;
    }
    all
}

/// What an attribute's assignments make: one object of a class of the module, or a list (or
/// tuple) of such objects, item by item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Made {
    Object(String),
    Items(Vec<String>),
}

impl Made {
    fn of(value: &AExpr, scope: &ModuleScope) -> Option<Made> {
        let items = match value {
            AExpr::List(l) => &l.elts,
            AExpr::Tuple(t) => &t.elts,
            other => return class_made_by(other, scope).map(Made::Object),
        };
        items
            .iter()
            .map(|e| class_made_by(e, scope))
            .collect::<Option<Vec<_>>>()
            .map(Made::Items)
    }
}

/// `attr` -> the class of the module every assignment of `self.attr` in `class`'s methods
/// (and `attr = ...` in its body) calls, or `None` when they do not agree on one.
fn assigned_attributes(
    class: &ast::StmtClassDef,
    scope: &ModuleScope,
) -> std::collections::BTreeMap<String, Option<Made>> {
    use ruff_python_ast::visitor::{Visitor, walk_stmt};
    use std::collections::BTreeMap;
    let made_class = |value: &AExpr| Made::of(value, scope);
    let mut out: BTreeMap<String, Option<Made>> = BTreeMap::new();
    let mut note = |attr: String, made: Option<Made>| {
        out.entry(attr)
            .and_modify(|m| {
                if *m != made {
                    *m = None;
                }
            })
            .or_insert(made);
    };
    struct Writes<'n> {
        self_name: &'n str,
        found: Vec<(String, Option<&'n AExpr>)>,
    }
    impl<'a: 'n, 'n> Visitor<'a> for Writes<'n> {
        fn visit_stmt(&mut self, stmt: &'a ast::Stmt) {
            let (targets, value): (Vec<&AExpr>, Option<&AExpr>) = match stmt {
                ast::Stmt::Assign(a) => (a.targets.iter().collect(), Some(&a.value)),
                ast::Stmt::AnnAssign(a) => (vec![&a.target], a.value.as_deref()),
                ast::Stmt::AugAssign(a) => (vec![&a.target], None),
                ast::Stmt::FunctionDef(_) | ast::Stmt::ClassDef(_) => return,
                _ => (Vec::new(), None),
            };
            for t in targets {
                self.target(t, value);
            }
            walk_stmt(self, stmt);
        }
    }
    impl<'n> Writes<'n> {
        fn target(&mut self, t: &'n AExpr, value: Option<&'n AExpr>) {
            match t {
                AExpr::Attribute(a) if matches!(a.value.as_ref(), AExpr::Name(n) if n.id.as_str() == self.self_name) =>
                {
                    self.found.push((a.attr.to_string(), value));
                }
                // `self.a, self.b = ...`: not one call each.
                AExpr::Tuple(t) => t.elts.iter().for_each(|e| self.target(e, None)),
                AExpr::List(l) => l.elts.iter().for_each(|e| self.target(e, None)),
                AExpr::Starred(s) => self.target(&s.value, None),
                _ => {}
            }
        }
    }
    for stmt in &class.body {
        match stmt {
            ast::Stmt::FunctionDef(def) => {
                let Some(first) = def
                    .parameters
                    .posonlyargs
                    .iter()
                    .chain(def.parameters.args.iter())
                    .next()
                else {
                    continue;
                };
                let mut writes = Writes {
                    self_name: first.parameter.name.as_str(),
                    found: Vec::new(),
                };
                for s in &def.body {
                    writes.visit_stmt(s);
                }
                for (attr, value) in writes.found {
                    note(attr, value.and_then(made_class));
                }
            }
            ast::Stmt::Assign(a) => {
                for t in &a.targets {
                    if let AExpr::Name(n) = t {
                        note(n.id.to_string(), made_class(&a.value));
                    }
                }
            }
            ast::Stmt::AnnAssign(a) => {
                if let AExpr::Name(n) = a.target.as_ref() {
                    note(n.id.to_string(), a.value.as_deref().and_then(made_class));
                }
            }
            _ => {}
        }
    }
    out
}
