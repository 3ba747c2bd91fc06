//! Normalization: lowers a ruff function definition to the IR, one operation per statement.
//!
//! Desugars augmented assignment, tuple targets, chained comparisons, boolean operators,
//! conditional expressions and `elif`; turns iteration over values into iteration over indices;
//! moves the code that follows an `if` containing `break`/`continue`/`return` into the branches
//! that fall through, so that every exit ends its block; and turns the returns into assignments
//! to a single result variable.

use std::collections::{BTreeMap, BTreeSet};

use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::Ranged;

use crate::diagnostics::{Diagnostic, DiagnosticKind};
use crate::ir::{Atom, Callee, Expr, Function, InPlace, Index, Origin, Param, Stmt};
use crate::parse::SourceFile;
use crate::resolve::{BUILTINS, ModuleScope};

mod branches;
pub use branches::{LeftOut, MAX_LEFT_OUT, branch_of};
mod checkpoints;
mod dicts;
mod exits;
pub use checkpoints::is_checkpoint;
mod halves;
pub use halves::Halves;
mod inplace;
mod methods;
pub use methods::attribute_classes;
mod namespaces;
mod scopes;
mod specialize;
pub use specialize::takes_functions_or_spreads;
mod unroll;
mod views;

type Result<T> = std::result::Result<T, Diagnostic>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub function: Function,
    /// Name holding the returned value(s) at the end of the body.
    pub result: Vec<Atom>,
    pub result_is_tuple: bool,
    /// For a function that returns nothing (its result is `None`): the span of its name.
    /// Only a helper writing into its arguments has a derivative then (`derive::with_updates`).
    pub returns_nothing: Option<(usize, usize)>,
}

struct Normalizer<'a> {
    file: SourceFile<'a>,
    scope: &'a ModuleScope,
    /// Parameters and every name assigned in the function: Python's local variables.
    locals: BTreeSet<String>,
    /// Every name seen, so temporaries never clash.
    taken: BTreeSet<String>,
    next_temp: usize,
    next_origin: usize,
    /// Statements being produced for the current block.
    out: Vec<Stmt>,
    origin: Origin,
    loop_depth: usize,
    /// The function's own name: `return <expr>` assigns to it.
    function_name: String,
    /// Flag and result variables for `return` inside loops.
    loop_return: Option<(String, Vec<String>, bool)>,
    loop_returns: usize,
    /// Locals holding `tangent.Stack()` (generated code differentiated again): their
    /// `.append(v)` and `.pop()` save and restore values (IR `Push` and `tangent.pop`).
    stacks: BTreeSet<String>,
    /// The variable each `(stack, op_id)` of `tangent.push(stack, v, op_id)` and
    /// `tangent.pop(stack, op_id)` saves and restores through (see `op_id_variable`).
    op_ids: BTreeMap<(String, String), String>,
    /// Functions and lambdas defined inside the function, inlined where they are called.
    nested: BTreeMap<String, scopes::Nested>,
    /// How many inlined calls enclose the code being normalized.
    inline_depth: usize,
    /// The module functions specialized (inlined) around the code being normalized: a call
    /// of one of them is recursion, left as a call rather than inlined again.
    specializing: Vec<String>,
    /// Names the function assigns exactly once, to a tuple or list literal of this length.
    fixed_lengths: BTreeMap<String, usize>,
    /// For a method of a top-level class: its `self` parameter, the class and its methods
    /// (`self.forward(x)` calls `Class.forward(self, x)`).
    /// In a method of a top-level class: the name of `self` and the class.
    method: Option<(String, String)>,
    /// Generated helper halves of the module, inlined at their calls (see `halves`).
    halves: Option<&'a Halves>,
    /// The helpers whose halves are being inlined, outermost first.
    half_path: Vec<String>,
    /// The name each local of an inlined helper half got, by helper path and local.
    half_names: BTreeMap<(String, String), String>,
    /// What the module's functions do besides computing their results (calls of helpers
    /// that write into their arguments return the new values, see `inplace`).
    effects: Option<&'a crate::effects::Effects>,
    /// The span of the function's name when it returns nothing.
    returns_nothing: Option<(usize, usize)>,
    /// The temporaries the normalizer made (`fresh`), which the user's code never names.
    temporaries: BTreeSet<String>,
    /// A generated derivative differentiated again (see `Context::generated`).
    generated: bool,
    /// Inside an inlined body whose names were renamed in the tree (see `scopes`): its text
    /// is printed from the tree.
    renaming: usize,
    /// Branches left out of the derivative (see `branches`).
    left_out: Option<&'a LeftOut>,
    /// The recipes in force (see `Context::recipes`).
    recipes: Option<&'a crate::recipes::RecipeSet>,
    /// The module's statements, when the function's text is the module's (see `specialize`).
    module: Option<&'a [AStmt]>,
    /// Locals holding objects the function made of one class of the module (see
    /// `methods::object_classes`).
    object_classes: BTreeMap<String, String>,
    /// Classes of objects in attributes (`Context::object_classes`).
    attribute_classes: Option<&'a BTreeMap<(String, String), String>>,
    /// Names the function reads other than as the function of a call.
    value_uses: BTreeSet<String>,
}

/// What normalization knows of the module around a function.
#[derive(Debug, Default, Clone, Copy)]
pub struct Context<'a> {
    /// Generated helper halves, inlined at their calls (generated code differentiated again).
    pub halves: Option<&'a Halves>,
    /// The effect summaries of the module's functions.
    pub effects: Option<&'a crate::effects::Effects>,
    /// The recipes in force: functions they know compute new values and change nothing.
    pub recipes: Option<&'a crate::recipes::RecipeSet>,
    /// The function is a generated derivative differentiated again (its views are kept in
    /// step by its own statements; see `views`).
    pub generated: bool,
    /// The module's statements, parsed from the same text as the function: calls of its
    /// functions that take functions or spread arguments are specialized (`specialize`).
    pub module: Option<&'a [AStmt]>,
    /// Classes of objects held in attributes, by `(class, path)` (`Request::object_classes`).
    pub object_classes: Option<&'a BTreeMap<(String, String), String>>,
    /// Branches left out of the derivative: raising their refusal if they run (`branches`).
    pub left_out: Option<&'a LeftOut>,
}

pub fn normalize(
    file: SourceFile<'_>,
    scope: &ModuleScope,
    def: &ast::StmtFunctionDef,
) -> Result<Normalized> {
    normalize_with(file, scope, def, Context::default())
}

/// [`normalize`], with what is known of the module around the function.
pub fn normalize_with(
    file: SourceFile<'_>,
    scope: &ModuleScope,
    def: &ast::StmtFunctionDef,
    context: Context<'_>,
) -> Result<Normalized> {
    // Loops over lists of objects passed in, each item's class known: unrolled.
    let method = methods::method_context(file, scope, def);
    let unrolled = context
        .object_classes
        .and_then(|hints| unroll::unrolled_object_loops(def, hints, method.as_ref()));
    let mut rewritten = unrolled.is_some();
    let mut def = std::borrow::Cow::Borrowed(unrolled.as_ref().unwrap_or(def));
    let mut scope = std::borrow::Cow::Borrowed(scope);
    // `params.items()` / `.values()` / `.keys()`: the items read by key; `xp =
    // array_namespace(x)`: the function read with `xp` meaning NumPy.
    let idioms: [LibraryIdiom; 2] = [dicts::dict_views, namespaces::numpy_namespaces];
    for idiom in idioms {
        if let Some((read, binds)) = idiom(&def, &scope) {
            for (name, module) in binds {
                let bound = scope.to_mut();
                bound.imports.insert(name.clone(), module.to_string());
                bound
                    .import_statements
                    .insert(name, format!("import {module}"));
            }
            def = std::borrow::Cow::Owned(read);
            rewritten = true;
        }
    }
    normalize_read(file, &scope, &def, context, rewritten)
}

/// A rewrite of a function before it is lowered: the function read otherwise, and a name the
/// module must bind to a module for it (`("numpy", "numpy")`); `None` when nothing applies.
type LibraryIdiom = fn(
    &ast::StmtFunctionDef,
    &ModuleScope,
) -> Option<(ast::StmtFunctionDef, Vec<(String, &'static str)>)>;

/// The name `module` (`numpy`, `tangent`) goes by in `def`: an import of it that `def` does
/// not shadow (`(np, false)`), else the module's own name when nothing binds it (`(numpy,
/// true)`: the scope must be told; generated code imports it); `None` when neither.
pub(super) fn module_alias(
    def: &ast::StmtFunctionDef,
    scope: &ModuleScope,
    module: &str,
) -> Option<(String, bool)> {
    let mut locals = BTreeSet::new();
    collect_assigned(&def.body, &mut locals);
    locals.extend(
        def.parameters
            .iter_non_variadic_params()
            .map(|p| p.parameter.name.to_string()),
    );
    if let Some((name, _)) = scope
        .imports
        .iter()
        .find(|(name, canon)| canon.as_str() == module && !locals.contains(name.as_str()))
    {
        return Some((name.clone(), false));
    }
    (!locals.contains(module) && !scope.binds(module)).then(|| (module.to_string(), true))
}

/// Does `def`'s body call anything `wanted` accepts?
pub(super) fn calls_any(
    def: &ast::StmtFunctionDef,
    wanted: &dyn Fn(&ast::ExprCall) -> bool,
) -> bool {
    use ruff_python_ast::visitor::{Visitor, walk_expr};
    struct V<'w>(&'w dyn Fn(&ast::ExprCall) -> bool, bool);
    impl<'a> Visitor<'a> for V<'_> {
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Call(c) = expr {
                self.1 |= (self.0)(c);
            }
            walk_expr(self, expr);
        }
    }
    let mut v = V(wanted, false);
    v.visit_body(&def.body);
    v.1
}

/// [`normalize_with`] of `def` as read; `rewritten`: its tree differs from its source text
/// (names read otherwise), so code is printed from the tree.
fn normalize_read(
    file: SourceFile<'_>,
    scope: &ModuleScope,
    def: &ast::StmtFunctionDef,
    context: Context<'_>,
    rewritten: bool,
) -> Result<Normalized> {
    let mut n = Normalizer::new(file, scope, def);
    n.renaming = usize::from(rewritten);
    n.halves = context.halves.filter(|h| !h.is_empty());
    n.effects = context.effects;
    n.recipes = context.recipes;
    n.generated = context.generated;
    n.module = context.module;
    n.attribute_classes = context.object_classes;
    n.left_out = context.left_out;
    if def.is_async {
        return Err(n.error_at(def.range(), "async functions cannot be differentiated"));
    }
    let params = n.params(def)?;
    for p in &params {
        n.locals.insert(p.name.clone());
    }
    collect_assigned(&def.body, &mut n.locals);
    collect_all_names(&def.body, &mut n.taken);
    n.taken.extend(n.locals.iter().cloned());

    // Parameters whose default is a function the body calls: specialized for it, checked.
    let (mut body, guards) = match (n.generated, n.function_defaults(def)) {
        (false, Some((specialized, guards))) => (n.block(&specialized)?, guards),
        _ => (n.block(&def.body)?, Vec::new()),
    };
    body.splice(0..0, guards);
    if n.checkpoints_loops(def)? {
        body = n.checkpoint_loops(body);
    }
    if let Some((flag, _, _)) = &n.loop_return {
        let origin = Origin {
            text: String::new(),
            start: 0,
            end: 0,
            id: 0,
        };
        body.insert(
            0,
            Stmt::Assign {
                target: flag.clone(),
                value: Expr::Atom(Atom::Const("False".into())),
                origin,
                inplace: None,
            },
        );
    }
    let body = lift_exits(body);
    let mut result_name = None;
    let (body, result, tuple) = n.returns_to_result(body, &mut result_name, def)?;
    let mut body = n.stabilize_tests(body);
    numbers_rebind(&mut body, &params);
    let mut function = Function {
        name: def.name.to_string(),
        params,
        body,
        names: BTreeSet::new(),
    };
    n.keep_views_in_step(&mut function, &result);
    let mut names = n.taken.clone();
    collect_ir_names(&function.body, &mut names);
    function.names = names;
    Ok(Normalized {
        function: Function {
            name: function.name,
            params: function.params,
            body: function.body,
            names: function.names,
        },
        result,
        result_is_tuple: tuple,
        returns_nothing: n.returns_nothing,
    })
}

/// A function with a user recipe of its own (`@tangent.adjoint(f)`) is differentiated
/// through that recipe: its body becomes `result = f(params)`, a call the recipe covers.
pub fn through_recipe(
    file: SourceFile<'_>,
    scope: &ModuleScope,
    def: &ast::StmtFunctionDef,
) -> Result<Normalized> {
    let n = Normalizer::new(file, scope, def);
    let params = n.params(def)?;
    let mut names: BTreeSet<String> = params.iter().map(|p| p.name.clone()).collect();
    names.insert(def.name.to_string());
    let mut result = "result".to_string();
    while names.contains(&result) {
        result.push('_');
    }
    names.insert(result.clone());
    let args: Vec<Atom> = params.iter().map(|p| Atom::Name(p.name.clone())).collect();
    let call = format!(
        "{}({})",
        def.name,
        params
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let origin = Origin {
        text: call,
        start: def.start().to_usize(),
        end: def.start().to_usize(),
        id: 1,
    };
    let value = Expr::Call {
        callee: Callee::Function {
            text: def.name.to_string(),
            canonical: None,
            local: true,
        },
        args,
        kwargs: Vec::new(),
    };
    let body = vec![
        Stmt::Assign {
            target: result.clone(),
            value,
            origin: origin.clone(),
            inplace: None,
        },
        Stmt::Return {
            value: vec![Atom::Name(result.clone())],
            tuple: false,
            origin,
        },
    ];
    Ok(Normalized {
        function: Function {
            name: def.name.to_string(),
            params,
            body,
            names,
        },
        result: vec![Atom::Name(result)],
        result_is_tuple: false,
        returns_nothing: None,
    })
}

impl<'a> Normalizer<'a> {
    fn new(file: SourceFile<'a>, scope: &'a ModuleScope, def: &ast::StmtFunctionDef) -> Self {
        Normalizer {
            file,
            scope,
            locals: BTreeSet::new(),
            taken: BTreeSet::new(),
            next_temp: 0,
            next_origin: 0,
            out: Vec::new(),
            origin: Origin {
                text: String::new(),
                start: 0,
                end: 0,
                id: 0,
            },
            loop_depth: 0,
            function_name: def.name.to_string(),
            loop_return: None,
            loop_returns: 0,
            stacks: stack_names(&def.body, scope),
            op_ids: BTreeMap::new(),
            nested: BTreeMap::new(),
            inline_depth: 0,
            specializing: Vec::new(),
            fixed_lengths: fixed_lengths(&def.body),
            method: methods::method_context(file, scope, def),
            halves: None,
            half_path: Vec::new(),
            half_names: BTreeMap::new(),
            effects: None,
            returns_nothing: None,
            temporaries: BTreeSet::new(),
            generated: false,
            renaming: 0,
            left_out: None,
            recipes: None,
            module: None,
            object_classes: methods::object_classes(&def.body, scope),
            attribute_classes: None,
            value_uses: value_uses(&def.body),
        }
    }

    fn error_at(&self, range: ruff_text_size::TextRange, message: impl Into<String>) -> Diagnostic {
        self.unsupported(range, message)
    }

    fn unsupported(
        &self,
        range: ruff_text_size::TextRange,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.file.diagnostic(
            DiagnosticKind::Unsupported,
            message,
            range.start().into(),
            range.end().into(),
        )
    }

    fn text(&self, node: &impl Ranged) -> String {
        self.file.text[node.range()].to_string()
    }

    /// The source text of expression `e`, to be placed anywhere in generated code: one that
    /// spans lines (implicitly joined strings inside the user's brackets) gets brackets of
    /// its own, without which its line breaks would end the statement.
    fn expr_text(&self, e: &AExpr) -> String {
        // Inlined code (its names renamed in the tree): printed from the tree, not the source.
        if self.renaming > 0 {
            let indent = ruff_python_codegen::Indentation::new("    ".to_string());
            return format!(
                "({})",
                ruff_python_codegen::Generator::new(&indent, ruff_source_file::LineEnding::Lf)
                    .expr(e)
            );
        }
        let text = self.text(e);
        if text.contains('\n') {
            format!("({text})")
        } else {
            text
        }
    }

    fn params(&self, def: &ast::StmtFunctionDef) -> Result<Vec<Param>> {
        let p = &def.parameters;
        if let Some(v) = &p.vararg {
            return Err(self.unsupported(v.range(), "`*args` parameters cannot be differentiated"));
        }
        if let Some(k) = &p.kwarg {
            return Err(
                self.unsupported(k.range(), "`**kwargs` parameters cannot be differentiated")
            );
        }
        let param = |a: &ast::ParameterWithDefault, keyword_only: bool| Param {
            name: a.parameter.name.to_string(),
            default: a.default.as_ref().map(|d| self.text(d.as_ref())),
            keyword_only,
        };
        // Keyword-only parameters come last, as `inspect.signature` lists them.
        Ok(p.posonlyargs
            .iter()
            .chain(p.args.iter())
            .map(|a| param(a, false))
            .chain(p.kwonlyargs.iter().map(|a| param(a, true)))
            .collect())
    }

    fn fresh(&mut self, hint: &str) -> String {
        loop {
            self.next_temp += 1;
            let hint = hint.trim_start_matches('_');
            let sep = if hint.ends_with(|c: char| c.is_ascii_digit()) {
                "_"
            } else {
                ""
            };
            let name = format!("_{hint}{sep}{}", self.next_temp);
            if !self.taken.contains(&name) {
                self.taken.insert(name.clone());
                self.temporaries.insert(name.clone());
                return name;
            }
        }
    }

    fn emit(&mut self, stmt: Stmt) {
        self.out.push(stmt);
    }

    fn assign(&mut self, target: &str, value: Expr) {
        let origin = self.origin.clone();
        self.emit(Stmt::Assign {
            target: target.to_string(),
            value,
            origin,
            inplace: None,
        });
    }

    /// `target` gets `value` by a change of its object in place (see `ir::InPlace`).
    fn assign_in_place(&mut self, target: &str, value: Expr, how: InPlace) {
        let origin = self.origin.clone();
        self.emit(Stmt::Assign {
            target: target.to_string(),
            value,
            origin,
            inplace: Some(how),
        });
    }

    fn set_origin(&mut self, stmt: &AStmt) {
        self.next_origin += 1;
        let full = self.text(stmt);
        let text = match stmt {
            AStmt::If(_) | AStmt::For(_) | AStmt::While(_) | AStmt::With(_) => {
                full.lines().next().unwrap_or("").trim_end().to_string()
            }
            _ => full.lines().map(str::trim).collect::<Vec<_>>().join(" "),
        };
        self.origin = Origin {
            text,
            start: stmt.range().start().into(),
            end: stmt.range().end().into(),
            id: self.next_origin,
        };
    }

    /// Normalizes a block into a fresh statement list.
    fn block(&mut self, body: &[AStmt]) -> Result<Vec<Stmt>> {
        let saved = std::mem::take(&mut self.out);
        let saved_origin = self.origin.clone();
        let result = (|| {
            if self.left_out(body) {
                return Ok(());
            }
            for s in body {
                self.stmt(s)?;
            }
            Ok(())
        })();
        self.origin = saved_origin;
        let out = std::mem::replace(&mut self.out, saved);
        result.map(|()| out)
    }

    fn stmt(&mut self, stmt: &AStmt) -> Result<()> {
        self.set_origin(stmt);
        match stmt {
            AStmt::Expr(e) => match e.value.as_ref() {
                AExpr::StringLiteral(_) | AExpr::EllipsisLiteral(_) => Ok(()),
                AExpr::Call(call) => self.expr_stmt_call(call, stmt),
                other => {
                    let _ = self.expr(other)?;
                    Ok(())
                }
            },
            AStmt::Pass(_) => Ok(()),
            AStmt::Assign(a) => {
                if a.targets.len() == 1 {
                    self.assign_to(&a.targets[0], &a.value)
                } else {
                    let v = self.atom(&a.value, "t")?;
                    for t in &a.targets {
                        self.assign_atom_to(t, v.clone())?;
                    }
                    Ok(())
                }
            }
            AStmt::AnnAssign(a) => match &a.value {
                Some(v) => self.assign_to(&a.target, v),
                None => Ok(()),
            },
            AStmt::AugAssign(a) => self.aug_assign(a),
            AStmt::Return(r) => {
                let values = match &r.value {
                    None => {
                        return Err(self.unsupported(r.range(), "a differentiated function must return a value"));
                    }
                    Some(v) => match v.as_ref() {
                        AExpr::Tuple(t) => {
                            let mut atoms = Vec::new();
                            for e in &t.elts {
                                atoms.push(self.atom(e, "return")?);
                            }
                            (atoms, true)
                        }
                        // `return <expr>` names the value after the function: `loss = ...`.
                        other if self.loop_depth == 0 && self.constant(other).is_none() && !matches!(other, AExpr::Name(_)) => {
                            let value = self.expr(other)?;
                            match value {
                                Expr::Atom(a) => (vec![a], false),
                                value => {
                                    let name = if self.taken.contains(&self.function_name) {
                                        self.fresh("result")
                                    } else {
                                        self.taken.insert(self.function_name.clone());
                                        self.function_name.clone()
                                    };
                                    self.assign(&name, value);
                                    (vec![Atom::Name(name)], false)
                                }
                            }
                        }
                        other => (vec![self.atom(other, "return")?], false),
                    },
                };
                let origin = self.origin.clone();
                if self.loop_depth > 0 {
                    // `return` in a loop: store the value, raise a flag and leave the loop; a
                    // guard after each enclosing loop finishes the exit.
                    let (flag, results, tuple) = self.loop_return_slots(values.0.len(), values.1);
                    if results.len() != values.0.len() || tuple != values.1 {
                        return Err(self.unsupported(r.range(), "all `return` statements must return the same number of values"));
                    }
                    for (name, v) in results.iter().zip(values.0) {
                        self.assign(name, Expr::Atom(v));
                    }
                    self.assign(&flag, Expr::Atom(Atom::Const("True".into())));
                    self.emit(Stmt::Break { origin });
                    self.loop_returns += 1;
                    return Ok(());
                }
                self.emit(Stmt::Return { value: values.0, tuple: values.1, origin });
                Ok(())
            }
            AStmt::If(s) => self.if_stmt(s),
            AStmt::For(f) => self.loop_with_returns(|n| n.for_stmt(f)),
            AStmt::While(w) => self.loop_with_returns(|n| n.while_stmt(w)),
            AStmt::Break(_) => {
                let origin = self.origin.clone();
                self.emit(Stmt::Break { origin });
                Ok(())
            }
            AStmt::Continue(_) => {
                let origin = self.origin.clone();
                self.emit(Stmt::Continue { origin });
                Ok(())
            }
            AStmt::With(w) => self.with_stmt(w),
            AStmt::Assert(_) | AStmt::Raise(_) => {
                let mut reads = Vec::new();
                collect_reads_stmt(stmt, &mut reads);
                let origin = self.origin.clone();
                let text = if self.renaming > 0 {
                    let indent = ruff_python_codegen::Indentation::new("    ".to_string());
                    ruff_python_codegen::Generator::new(&indent, ruff_source_file::LineEnding::Lf).stmt(stmt)
                } else {
                    self.text(stmt)
                };
                self.emit(Stmt::Opaque { text, reads, origin });
                Ok(())
            }
            AStmt::Global(_) => Err(self.unsupported(stmt.range(), "`global` cannot be differentiated")),
            AStmt::Nonlocal(_) => Err(self.unsupported(stmt.range(), "`nonlocal` cannot be differentiated")),
            AStmt::Try(t) => self.try_stmt(t),
            AStmt::FunctionDef(def) => self.nested_def(def),
            AStmt::ClassDef(_) => Err(self.unsupported(stmt.range(), "class definitions inside a differentiated function are not supported")),
            // `del name` only unbinds names: nothing to compute or differentiate.
            AStmt::Delete(d) if d.targets.iter().all(|t| matches!(t, AExpr::Name(_))) => Ok(()),
            AStmt::Delete(_) => Err(self.unsupported(
                stmt.range(),
                "`del` of an item or attribute cannot be differentiated (`del name` can)",
            )),
            AStmt::Match(_) => Err(self.unsupported(stmt.range(), "`match` cannot be differentiated yet")),
            AStmt::Import(_) | AStmt::ImportFrom(_) => Err(self.unsupported(stmt.range(), "imports inside a differentiated function are not supported; import at module level")),
            _ => Err(self.unsupported(stmt.range(), "this statement cannot be differentiated")),
        }
    }

    fn expr_stmt_call(&mut self, call: &ast::ExprCall, stmt: &AStmt) -> Result<()> {
        // `xs.append(v)` on a local list is a tracked mutation.
        if let AExpr::Attribute(attr) = call.func.as_ref() {
            if let AExpr::Name(obj) = attr.value.as_ref() {
                // A stack of generated code saves a value.
                if attr.attr.as_str() == "append"
                    && self.stacks.contains(obj.id.as_str())
                    && call.arguments.args.len() == 1
                    && call.arguments.keywords.is_empty()
                {
                    let value = self.atom(&call.arguments.args[0], "t")?;
                    let origin = self.origin.clone();
                    self.emit(Stmt::Push {
                        stack: obj.id.to_string(),
                        value,
                        origin,
                    });
                    return Ok(());
                }
                if attr.attr.as_str() == "append"
                    && self.locals.contains(obj.id.as_str())
                    && call.arguments.args.len() == 1
                    && call.arguments.keywords.is_empty()
                {
                    let value = self.atom(&call.arguments.args[0], "t")?;
                    let origin = self.origin.clone();
                    self.emit(Stmt::Append {
                        target: obj.id.to_string(),
                        value,
                        origin,
                    });
                    return Ok(());
                }
                // `xs.pop()` with its result unused: generated gradients undo appends so.
                if attr.attr.as_str() == "pop"
                    && self.locals.contains(obj.id.as_str())
                    && call.arguments.args.is_empty()
                    && call.arguments.keywords.is_empty()
                {
                    let origin = self.origin.clone();
                    self.emit(Stmt::PopLast {
                        target: obj.id.to_string(),
                        origin,
                    });
                    return Ok(());
                }
            }
        }
        if let Some(done) = self.mutating_method(call, stmt)? {
            return Ok(done);
        }
        let e = self.expr(&AExpr::Call(call.clone()))?;
        // A call lowered to statements already (`out=`, a helper changing its arguments):
        // its value is not used.
        if matches!(&e, Expr::Atom(_) | Expr::Subscript { .. }) {
            return Ok(());
        }
        if let Some(done) = self.mutating_function(&e)? {
            return Ok(done);
        }
        // `tangent.pop(stack, op_id)` whose value is not used: the pop is emitted (below, in
        // `call`), into the op_id's variable.
        if matches!(&e, Expr::Atom(Atom::Name(n)) if self.op_ids.values().any(|v| v == n)) {
            return Ok(());
        }
        // Generated code that is differentiated again (Hessian-vector products) saves values;
        // so does user code written for the original Tangent (`tangent.push(stack, v, op_id)`).
        if let Expr::Call {
            callee: Callee::Function {
                canonical: Some(c), ..
            },
            args,
            kwargs,
        } = &e
        {
            if c == "tangent.push" && has_op_id_shape(args, kwargs, 2) {
                if let Atom::Name(stack) = &args[0] {
                    let (stack, mut value) = (stack.clone(), args[1].clone());
                    if let Some(var) = self.op_id_variable(call, &stack, 2)? {
                        self.assign(&var, Expr::Atom(value));
                        value = Atom::Name(var);
                    }
                    let origin = self.origin.clone();
                    self.emit(Stmt::Push {
                        stack,
                        value,
                        origin,
                    });
                    return Ok(());
                }
            }
            if c == "tangent.restore_item" && args.len() == 3 && kwargs.is_empty() {
                if let Atom::Name(container) = &args[0] {
                    let origin = self.origin.clone();
                    self.emit(Stmt::Restore {
                        container: container.clone(),
                        index: args[1].clone(),
                        saved: args[2].clone(),
                        origin,
                    });
                    return Ok(());
                }
            }
        }
        if let Expr::Call {
            callee:
                Callee::Method {
                    object: Atom::Name(n),
                    method,
                },
            ..
        } = &e
        {
            // A draw whose numbers are not used (`rs.randn(3)`) only moves the generator on:
            // an effect the derivative performs once, as the primal does.
            if self.locals.contains(n) && !crate::effects::DRAW_METHODS.contains(&method.as_str()) {
                return Err(self.unsupported(
                    stmt.range(),
                    format!(
                        "calling a method that may modify `{n}` in place cannot be differentiated"
                    ),
                ));
            }
        }
        let reads = e.reads().into_iter().map(str::to_string).collect();
        let origin = self.origin.clone();
        self.emit(Stmt::Opaque {
            text: e.to_string(),
            reads,
            origin,
        });
        Ok(())
    }

    fn assign_to(&mut self, target: &AExpr, value: &AExpr) -> Result<()> {
        match target {
            AExpr::Name(n) if matches!(value, AExpr::Lambda(_)) => {
                let AExpr::Lambda(l) = value else {
                    unreachable!()
                };
                self.nested_lambda(n.id.as_str(), l)?;
                // (Generated code never calls a lambda it holds: it passes it on.)
                if self.generated || self.value_uses.contains(n.id.as_str()) {
                    // Also passed as a value (`sorted(xs, key=by_rank)`): the name holds it.
                    let e = self.expr(value)?;
                    self.assign(n.id.as_str(), e);
                }
                Ok(())
            }
            AExpr::Name(n) => {
                let e = self.expr(value)?;
                self.assign(n.id.as_str(), e);
                Ok(())
            }
            AExpr::Tuple(ast::ExprTuple { elts, .. }) | AExpr::List(ast::ExprList { elts, .. }) => {
                if let AExpr::Tuple(ast::ExprTuple { elts: velts, .. })
                | AExpr::List(ast::ExprList { elts: velts, .. }) = value
                {
                    if velts.len() == elts.len()
                        && !velts.iter().any(|e| matches!(e, AExpr::Starred(_)))
                    {
                        // Evaluate every right-hand side first: `a, b = b, a` swaps.
                        let mut atoms = Vec::new();
                        for v in velts {
                            let a = self.atom(v, "t")?;
                            let a = match a {
                                Atom::Name(name) if target_names(elts).contains(&name) => {
                                    let t = self.fresh(&name);
                                    self.assign(&t, Expr::Atom(Atom::Name(name)));
                                    Atom::Name(t)
                                }
                                other => other,
                            };
                            atoms.push(a);
                        }
                        for (t, a) in elts.iter().zip(atoms) {
                            self.assign_atom_to(t, a)?;
                        }
                        return Ok(());
                    }
                }
                let v = self.atom(value, "t")?;
                self.assign_atom_to(target, v)
            }
            _ => {
                let v = self.atom(value, "t")?;
                self.assign_atom_to(target, v)
            }
        }
    }

    fn assign_atom_to(&mut self, target: &AExpr, value: Atom) -> Result<()> {
        match target {
            AExpr::Name(n) => {
                self.assign(n.id.as_str(), Expr::Atom(value));
                Ok(())
            }
            AExpr::Tuple(ast::ExprTuple { elts, .. }) | AExpr::List(ast::ExprList { elts, .. }) => {
                let starred: Vec<usize> = elts
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| matches!(e, AExpr::Starred(_)))
                    .map(|(i, _)| i)
                    .collect();
                if starred.len() > 1 {
                    return Err(
                        self.unsupported(target.range(), "more than one starred assignment target")
                    );
                }
                let source = match value {
                    Atom::Name(n) if !target_names(elts).contains(&n) => Atom::Name(n),
                    other => {
                        let t = self.fresh("t");
                        self.assign(&t, Expr::Atom(other));
                        Atom::Name(t)
                    }
                };
                let after = starred.first().map_or(0, |&k| elts.len() - k - 1);
                for (i, t) in elts.iter().enumerate() {
                    // Targets after a starred one count from the end; the starred one takes
                    // the slice between (`W, *_ = f(x)`: `_ = t[1:]`, a tuple or array slice
                    // rather than a list: the same items).
                    let (text, arg) = match starred.first() {
                        Some(&k) if i == k => match after {
                            0 => (format!("{k}:"), format!("slice({k}, None)")),
                            m => (format!("{k}:-{m}"), format!("slice({k}, -{m})")),
                        },
                        Some(&k) if i > k => {
                            let back = elts.len() - i;
                            (format!("-{back}"), format!("-{back}"))
                        }
                        _ => (i.to_string(), i.to_string()),
                    };
                    let item = Expr::Subscript {
                        value: source.clone(),
                        index: Index {
                            text,
                            arg,
                            reads: vec![],
                        },
                    };
                    let t = match t {
                        AExpr::Starred(s) => s.value.as_ref(),
                        other => other,
                    };
                    match t {
                        AExpr::Name(n) => self.assign(n.id.as_str(), item),
                        nested => {
                            let tmp = self.fresh("t");
                            self.assign(&tmp, item);
                            self.assign_atom_to(nested, Atom::Name(tmp))?;
                        }
                    }
                }
                Ok(())
            }
            AExpr::Subscript(s) => {
                let AExpr::Name(base) = s.value.as_ref() else {
                    return Err(self.unsupported(
                        s.value.range(),
                        "only assignments into a named array or list (`x[i] = ...`) are supported",
                    ));
                };
                if !self.locals.contains(base.id.as_str()) {
                    return Err(self.unsupported(
                        target.range(),
                        "assigning into a global container cannot be differentiated",
                    ));
                }
                let index = self.index(&s.slice)?;
                let value = match value {
                    Atom::Name(n) => Atom::Name(n),
                    c => c,
                };
                let origin = self.origin.clone();
                self.emit(Stmt::AssignIndex {
                    target: base.id.to_string(),
                    index,
                    value,
                    origin,
                });
                Ok(())
            }
            AExpr::Attribute(_) => Err(self.unsupported(
                target.range(),
                "assigning to attributes cannot be differentiated",
            )),
            AExpr::Starred(_) => Err(self.unsupported(
                target.range(),
                "starred assignment targets are not supported",
            )),
            _ => Err(self.unsupported(target.range(), "unsupported assignment target")),
        }
    }

    fn aug_assign(&mut self, a: &ast::StmtAugAssign) -> Result<()> {
        let op = a.op.as_str().to_string();
        match a.target.as_ref() {
            // In place for arrays and lists, a new value for numbers: the IR gives the name
            // its new value and generated code keeps the operation as written.
            AExpr::Name(n) => {
                let right = self.atom(&a.value, n.id.as_str())?;
                let value = Expr::BinOp {
                    op,
                    left: Atom::Name(n.id.to_string()),
                    right,
                };
                self.assign_in_place(n.id.as_str(), value, InPlace::Augmented);
                Ok(())
            }
            AExpr::Subscript(s) => {
                let AExpr::Name(base) = s.value.as_ref() else {
                    return Err(self.unsupported(
                        s.value.range(),
                        "only `x[i] op= ...` on a named array is supported",
                    ));
                };
                let index = self.index(&s.slice)?;
                let right = self.atom(&a.value, "t")?;
                let old = self.fresh(base.id.as_str());
                self.assign(
                    &old,
                    Expr::Subscript {
                        value: Atom::Name(base.id.to_string()),
                        index: index.clone(),
                    },
                );
                let new = self.fresh(base.id.as_str());
                self.assign(
                    &new,
                    Expr::BinOp {
                        op,
                        left: Atom::Name(old),
                        right,
                    },
                );
                let origin = self.origin.clone();
                self.emit(Stmt::AssignIndex {
                    target: base.id.to_string(),
                    index,
                    value: Atom::Name(new),
                    origin,
                });
                Ok(())
            }
            other => {
                Err(self.unsupported(other.range(), "unsupported augmented assignment target"))
            }
        }
    }

    fn if_stmt(&mut self, s: &ast::StmtIf) -> Result<()> {
        let origin = self.origin.clone();
        let test = self.test_expr(&s.test, &s.body, &s.elif_else_clauses)?;
        let body = self.block(&s.body)?;
        let orelse = self.elif_chain(&s.elif_else_clauses)?;
        self.emit(Stmt::If {
            test,
            body,
            orelse,
            origin,
        });
        Ok(())
    }

    /// The test of an `if`: one comparison or `not` of atoms stays as it is (`if a > 0:`);
    /// anything else becomes a temporary. The backward pass re-evaluates it, so the branches
    /// must not reassign what it reads.
    fn test_expr(
        &mut self,
        test: &AExpr,
        body: &[AStmt],
        rest: &[ast::ElifElseClause],
    ) -> Result<Expr> {
        let e = self.expr(test)?;
        let mut assigned = BTreeSet::new();
        collect_assigned(body, &mut assigned);
        for c in rest {
            collect_assigned(&c.body, &mut assigned);
        }
        let simple = matches!(e, Expr::Atom(_) | Expr::Compare { .. })
            || matches!(&e, Expr::UnaryOp { op, .. } if op == "not");
        if simple && !e.reads().iter().any(|r| assigned.contains(*r)) {
            return Ok(e);
        }
        let t = self.fresh("cond");
        self.assign(&t, e);
        Ok(Expr::Atom(Atom::Name(t)))
    }

    fn elif_chain(&mut self, clauses: &[ast::ElifElseClause]) -> Result<Vec<Stmt>> {
        let Some((first, rest)) = clauses.split_first() else {
            return Ok(Vec::new());
        };
        match &first.test {
            None => self.block(&first.body),
            Some(test) => {
                let saved = std::mem::take(&mut self.out);
                self.next_origin += 1;
                let line_end = self.file.text[usize::from(first.range().start())..]
                    .find('\n')
                    .map_or(usize::from(first.range().end()), |i| {
                        usize::from(first.range().start()) + i
                    });
                self.origin = Origin {
                    text: self.file.text[usize::from(first.range().start())..line_end]
                        .trim_end()
                        .to_string(),
                    start: first.range().start().into(),
                    end: line_end,
                    id: self.next_origin,
                };
                let origin = self.origin.clone();
                let result = (|| {
                    let test = self.test_expr(test, &first.body, rest)?;
                    let body = self.block(&first.body)?;
                    let orelse = self.elif_chain(rest)?;
                    self.emit(Stmt::If {
                        test,
                        body,
                        orelse,
                        origin,
                    });
                    Ok(())
                })();
                let out = std::mem::replace(&mut self.out, saved);
                result.map(|()| out)
            }
        }
    }

    /// The flag and result variables of `return`s inside loops, created on first use.
    fn loop_return_slots(&mut self, arity: usize, tuple: bool) -> (String, Vec<String>, bool) {
        if self.loop_return.is_none() {
            let flag = self.fresh("returned");
            let results = (0..arity).map(|_| self.fresh("result")).collect();
            self.loop_return = Some((flag, results, tuple));
        }
        self.loop_return.clone().unwrap()
    }

    /// Runs `emit_loop`; if the loop returned from inside, continues the exit after it.
    fn loop_with_returns(&mut self, emit_loop: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let before = self.loop_returns;
        let origin = self.origin.clone();
        emit_loop(self)?;
        if self.loop_returns > before {
            let (flag, results, tuple) = self.loop_return.clone().unwrap();
            let exit = if self.loop_depth > 0 {
                Stmt::Break {
                    origin: origin.clone(),
                }
            } else {
                Stmt::Return {
                    value: results.into_iter().map(Atom::Name).collect(),
                    tuple,
                    origin: origin.clone(),
                }
            };
            self.emit(Stmt::If {
                test: Expr::Atom(Atom::Name(flag)),
                body: vec![exit],
                orelse: vec![],
                origin,
            });
        }
        Ok(())
    }

    fn for_stmt(&mut self, f: &ast::StmtFor) -> Result<()> {
        if f.is_async {
            return Err(self.unsupported(f.range(), "`async for` cannot be differentiated"));
        }
        if !f.orelse.is_empty() {
            return Err(self.unsupported(f.range(), "`for ... else` is not supported"));
        }
        // Names the loop rebinds (see `for_loop`); `xs op= v` changes an array or list in
        // place, which the loop then iterates over as Python does.
        let mut rebound = BTreeSet::new();
        collect_bound(&f.body, &mut rebound, false);
        collect_target(&f.target, &mut rebound);
        self.for_loop(&f.target, &f.iter, &rebound, |me| {
            for s in &f.body {
                me.stmt(s)?;
            }
            Ok(())
        })
    }

    /// `for target in iter:` with the body `body` normalizes; `rebound` holds the names the
    /// loop (target and body) assigns.
    fn for_loop(
        &mut self,
        target: &AExpr,
        iter: &AExpr,
        rebound: &BTreeSet<String>,
        body: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let origin = self.origin.clone();
        // `for i in range(...)` stays as it is; anything else iterates over indices.
        let call_name = |e: &AExpr| -> Option<String> {
            if let AExpr::Call(c) = e {
                if let AExpr::Name(n) = c.func.as_ref() {
                    if !self.locals.contains(n.id.as_str())
                        && !self.scope.functions.contains_key(n.id.as_str())
                    {
                        return Some(n.id.to_string());
                    }
                }
            }
            None
        };
        let name = call_name(iter);
        let (loop_var, iter_expr, prologue): (String, Expr, Vec<(AExpr, Atom)>) = match (
            name.as_deref(),
            target,
        ) {
            (Some("range"), AExpr::Name(t)) => {
                let AExpr::Call(c) = iter else { unreachable!() };
                let mut args = Vec::new();
                for a in c.arguments.args.iter() {
                    args.push(self.atom(a, "n")?);
                }
                let e = Expr::Call {
                    callee: Callee::Function {
                        text: "range".into(),
                        canonical: Some("builtins.range".into()),
                        local: false,
                    },
                    args,
                    kwargs: vec![],
                };
                (t.id.to_string(), e, vec![])
            }
            // `for i, (a, b) in enumerate(zip(xs, ys))`: the index, and the zipped items.
            (Some("enumerate"), AExpr::Tuple(t))
                if t.elts.len() == 2
                    && matches!(iter, AExpr::Call(c) if c.arguments.args.len() == 1 && c.arguments.keywords.is_empty()
                        && call_name(&c.arguments.args[0]).as_deref() == Some("zip")
                        && matches!(&t.elts[1], AExpr::Tuple(inner) if inner.elts.len() == c_args(&c.arguments.args[0]))) =>
            {
                let (AExpr::Call(c), AExpr::Tuple(inner)) = (iter, &t.elts[1]) else {
                    unreachable!()
                };
                let AExpr::Call(zipped) = &c.arguments.args[0] else {
                    unreachable!()
                };
                let idx = match &t.elts[0] {
                    AExpr::Name(n) => n.id.to_string(),
                    other => return Err(self.unsupported(other.range(), "unsupported loop target")),
                };
                let mut seqs = Vec::new();
                for a in zipped.arguments.args.iter() {
                    seqs.push(self.atom(a, "seq")?);
                }
                let range = self.len_range(seqs.clone());
                (idx, range, inner.elts.iter().cloned().zip(seqs).collect())
            }
            (Some("enumerate"), AExpr::Tuple(t)) if t.elts.len() == 2 => {
                let AExpr::Call(c) = iter else { unreachable!() };
                if c.arguments.args.len() != 1 {
                    return Err(
                        self.unsupported(iter.range(), "`enumerate` with a start is not supported")
                    );
                }
                let seq = self.atom(&c.arguments.args[0], "seq")?;
                let idx = match &t.elts[0] {
                    AExpr::Name(n) => n.id.to_string(),
                    other => return Err(self.unsupported(other.range(), "unsupported loop target")),
                };
                let range = self.len_range(vec![seq.clone()]);
                (idx, range, vec![(t.elts[1].clone(), seq)])
            }
            (Some("zip"), AExpr::Tuple(t)) if t.elts.len() == c_args(iter) => {
                let AExpr::Call(c) = iter else { unreachable!() };
                let mut seqs = Vec::new();
                for a in c.arguments.args.iter() {
                    seqs.push(self.atom(a, "seq")?);
                }
                let idx = self.fresh("i");
                let range = self.len_range(seqs.clone());
                (idx, range, t.elts.iter().cloned().zip(seqs).collect())
            }
            (_, target) => {
                let seq = self.atom(iter, "seq")?;
                match target {
                    AExpr::Name(_) | AExpr::Tuple(_) | AExpr::List(_) => {}
                    other => return Err(self.unsupported(other.range(), "unsupported loop target")),
                }
                let idx = self.fresh("i");
                let range = self.len_range(vec![seq.clone()]);
                (idx, range, vec![(target.clone(), seq)])
            }
        };
        // Python iterates over the object the sequence named when the loop started: a body that
        // rebinds that name (`for row in m: m = ...`) must not change the items read.
        let mut prologue = prologue;
        for (_, seq) in prologue.iter_mut() {
            if let Atom::Name(n) = seq
                && rebound.contains(n.as_str())
            {
                let t = self.fresh("seq");
                self.assign(&t, Expr::Atom(seq.clone()));
                *seq = Atom::Name(t);
            }
        }
        self.loop_depth += 1;
        let saved = std::mem::take(&mut self.out);
        let result = (|| {
            for (target, seq) in &prologue {
                let item = Expr::Subscript {
                    value: seq.clone(),
                    index: Index {
                        text: loop_var.clone(),
                        arg: loop_var.clone(),
                        reads: vec![loop_var.clone()],
                    },
                };
                match target {
                    AExpr::Name(n) => self.assign(n.id.as_str(), item),
                    other => {
                        let t = self.fresh("item");
                        self.assign(&t, item);
                        self.assign_atom_to(other, Atom::Name(t))?;
                    }
                }
            }
            body(self)
        })();
        self.loop_depth -= 1;
        let body = std::mem::replace(&mut self.out, saved);
        result?;
        self.emit(Stmt::For {
            target: loop_var,
            iter: iter_expr,
            body,
            origin,
            checkpoint: false,
        });
        Ok(())
    }

    fn len_range(&mut self, seqs: Vec<Atom>) -> Expr {
        let len = |s: &Atom| Expr::Call {
            callee: Callee::Function {
                text: "len".into(),
                canonical: Some("builtins.len".into()),
                local: false,
            },
            args: vec![s.clone()],
            kwargs: vec![],
        };
        let mut n = {
            let t = self.fresh("n");
            self.assign(&t, len(&seqs[0]));
            Atom::Name(t)
        };
        for s in &seqs[1..] {
            let l = self.fresh("n");
            self.assign(&l, len(s));
            let m = self.fresh("n");
            self.assign(
                &m,
                Expr::Call {
                    callee: Callee::Function {
                        text: "min".into(),
                        canonical: Some("builtins.min".into()),
                        local: false,
                    },
                    args: vec![n, Atom::Name(l)],
                    kwargs: vec![],
                },
            );
            n = Atom::Name(m);
        }
        Expr::Call {
            callee: Callee::Function {
                text: "range".into(),
                canonical: Some("builtins.range".into()),
                local: false,
            },
            args: vec![n],
            kwargs: vec![],
        }
    }

    fn while_stmt(&mut self, w: &ast::StmtWhile) -> Result<()> {
        if !w.orelse.is_empty() {
            return Err(self.unsupported(w.range(), "`while ... else` is not supported"));
        }
        let origin = self.origin.clone();
        // A test that is one operation on atoms stays in the `while` header.
        let saved = std::mem::take(&mut self.out);
        let test = self.expr(&w.test);
        let prelude = std::mem::replace(&mut self.out, saved);
        let test = test?;
        self.loop_depth += 1;
        let body = self.block(&w.body);
        self.loop_depth -= 1;
        let body = body?;
        if prelude.is_empty() && !matches!(test, Expr::Call { .. } | Expr::Subscript { .. }) {
            self.emit(Stmt::While { test, body, origin });
            return Ok(());
        }
        // `while True:` + the test's statements + `if not test: break`.
        let mut full = prelude;
        let cond = self.fresh("cond");
        full.push(Stmt::Assign {
            target: cond.clone(),
            value: test,
            origin: origin.clone(),
            inplace: None,
        });
        full.push(Stmt::If {
            test: Expr::Atom(Atom::Name(cond)),
            body: body,
            orelse: vec![Stmt::Break {
                origin: origin.clone(),
            }],
            origin: origin.clone(),
        });
        self.emit(Stmt::While {
            test: Expr::Atom(Atom::Const("True".into())),
            body: full,
            origin,
        });
        Ok(())
    }

    fn with_stmt(&mut self, w: &ast::StmtWith) -> Result<()> {
        if let Some(marker) = self.checkpoint_marker(w)? {
            return self.checkpoint_block(w, marker);
        }
        let grad_of = match w.items.as_slice() {
            [item] => match (&item.context_expr, item.optional_vars.as_deref()) {
                (AExpr::Call(c), Some(AExpr::Name(alias)))
                    if self.is_insert_grad_of(&c.func) && c.arguments.args.len() == 1 =>
                {
                    match &c.arguments.args[0] {
                        AExpr::Name(var) => Some((var.id.to_string(), alias.id.to_string())),
                        _ => None,
                    }
                }
                _ => None,
            },
            _ => None,
        };
        let Some((var, alias)) = grad_of else {
            if self.value_neutral_context(w) {
                // Its body runs as written; the context changes no value it computes. Warning
                // filters the body sets stay within it, as `catch_warnings` keeps them.
                let scope = self.catches_warnings(w).then(|| {
                    let scope = self.fresh("warnings_scope");
                    self.locals.insert(scope.clone());
                    self.assign(
                        &scope,
                        Expr::Call {
                            callee: inplace::runtime("tangent.enter_warnings_scope"),
                            args: Vec::new(),
                            kwargs: Vec::new(),
                        },
                    );
                    scope
                });
                for s in &w.body {
                    self.stmt(s)?;
                }
                if let Some(scope) = scope {
                    let origin = self.origin.clone();
                    self.emit(Stmt::Opaque {
                        text: format!("tangent.exit_warnings_scope({scope})"),
                        reads: vec![scope],
                        origin,
                    });
                }
                return Ok(());
            }
            return Err(self.unsupported(
                w.range(),
                "only `with insert_grad_of(x) as dx:` blocks and context managers that change no \
                 value (`np.errstate(...)` ignoring or warning, `warnings.catch_warnings()`, \
                 `np.printoptions(...)`) can be differentiated",
            ));
        };
        let first = w
            .body
            .first()
            .map(|s| usize::from(s.range().start()))
            .unwrap_or(0);
        let last = w
            .body
            .last()
            .map(|s| usize::from(s.range().end()))
            .unwrap_or(0);
        let line_start = self.file.text[..first].rfind('\n').map_or(0, |i| i + 1);
        let raw = &self.file.text[line_start..last];
        let indent = raw.len() - raw.trim_start().len();
        let body = raw
            .lines()
            .map(|l| {
                if l.len() >= indent {
                    l[indent..].to_string()
                } else {
                    l.trim_start().to_string()
                }
            })
            .collect();
        let origin = self.origin.clone();
        self.emit(Stmt::InsertGradOf {
            var,
            alias,
            body,
            origin,
        });
        Ok(())
    }

    /// A `with` whose context managers change no value its body computes and raise nothing
    /// the body would not: `numpy.errstate` whose settings only ignore or report floating
    /// point errors (not `raise`/`call`), `warnings.catch_warnings()`, `numpy.printoptions`.
    /// The derivative runs the body without them (warnings may show).
    fn value_neutral_context(&self, w: &ast::StmtWith) -> bool {
        w.items.iter().all(|item| {
            let AExpr::Call(c) = &item.context_expr else {
                return false;
            };
            let Some(canon) = dotted_name(&c.func).and_then(|d| self.scope.canonical(&d)) else {
                return false;
            };
            let quiet = |e: &AExpr| {
                matches!(e, AExpr::StringLiteral(s)
                    if matches!(s.value.to_str(), "ignore" | "warn" | "print" | "log"))
            };
            item.optional_vars.is_none()
                && match canon.as_str() {
                    "numpy.errstate" => {
                        c.arguments.args.is_empty()
                            && c.arguments.keywords.iter().all(|k| quiet(&k.value))
                    }
                    "warnings.catch_warnings" | "numpy.printoptions" => true,
                    _ => false,
                }
        })
    }

    /// A `try` whose handlers only raise (another error, or the one caught, after messages
    /// or cleanup of their own): its body and `else` are what it computes when it gives a
    /// value, so the derivative runs those. An error in the body reaches the caller as
    /// raised, not as the handler's error. Other `try` statements are refused.
    fn try_stmt(&mut self, t: &ast::StmtTry) -> Result<()> {
        let handlers_raise = t.handlers.iter().all(|h| {
            let ast::ExceptHandler::ExceptHandler(h) = h;
            matches!(h.body.last(), Some(AStmt::Raise(_)))
        });
        if t.is_star || !handlers_raise || !t.finalbody.is_empty() {
            return Err(self.unsupported(
                t.range(),
                "`try` cannot be differentiated unless its handlers only raise (no `finally`)",
            ));
        }
        for s in t.body.iter().chain(&t.orelse) {
            self.stmt(s)?;
        }
        Ok(())
    }

    /// Is one of `w`'s context managers `warnings.catch_warnings()`?
    fn catches_warnings(&self, w: &ast::StmtWith) -> bool {
        w.items.iter().any(|item| {
            matches!(&item.context_expr, AExpr::Call(c)
                if dotted_name(&c.func)
                    .and_then(|d| self.scope.canonical(&d))
                    .is_some_and(|canon| canon == "warnings.catch_warnings"))
        })
    }

    fn is_insert_grad_of(&self, func: &AExpr) -> bool {
        let dotted = dotted_name(func);
        match dotted {
            Some(d) => d == "insert_grad_of" || d.ends_with(".insert_grad_of"),
            None => false,
        }
    }

    /// Normalizes `e` to an atom, emitting temporaries for its operations.
    fn atom(&mut self, e: &AExpr, hint: &str) -> Result<Atom> {
        if let Some(c) = self.constant(e) {
            return Ok(Atom::Const(c));
        }
        if let AExpr::Name(n) = e {
            return Ok(Atom::Name(n.id.to_string()));
        }
        let value = self.expr(e)?;
        if let Expr::Atom(a) = value {
            return Ok(a);
        }
        let t = self.fresh(hint);
        self.assign(&t, value);
        Ok(Atom::Name(t))
    }

    /// Literal text if `e` is a constant: numbers, strings, `None`, `True`, `-1.5`, `np.pi`.
    fn constant(&self, e: &AExpr) -> Option<String> {
        match e {
            AExpr::NumberLiteral(_)
            | AExpr::StringLiteral(_)
            | AExpr::BytesLiteral(_)
            | AExpr::BooleanLiteral(_)
            | AExpr::NoneLiteral(_)
            | AExpr::EllipsisLiteral(_) => Some(self.expr_text(e)),
            AExpr::UnaryOp(u)
                if matches!(u.op, ast::UnaryOp::USub | ast::UnaryOp::UAdd)
                    && matches!(u.operand.as_ref(), AExpr::NumberLiteral(_)) =>
            {
                Some(self.text(e))
            }
            AExpr::Attribute(_) => {
                let dotted = dotted_name(e)?;
                let first = dotted.split('.').next()?;
                if !self.locals.contains(first) && self.scope.imports.contains_key(first) {
                    Some(dotted)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Normalizes `e` to one operation on atoms.
    fn expr(&mut self, e: &AExpr) -> Result<Expr> {
        if let Some(c) = self.constant(e) {
            return Ok(Expr::Atom(Atom::Const(c)));
        }
        match e {
            AExpr::Name(n) => Ok(Expr::Atom(Atom::Name(n.id.to_string()))),
            AExpr::BinOp(b) => {
                let left = self.atom(&b.left, "t")?;
                let right = self.atom(&b.right, "t")?;
                Ok(Expr::BinOp {
                    op: b.op.as_str().to_string(),
                    left,
                    right,
                })
            }
            AExpr::UnaryOp(u) => {
                let operand = self.atom(&u.operand, "t")?;
                Ok(Expr::UnaryOp {
                    op: u.op.as_str().to_string(),
                    operand,
                })
            }
            AExpr::Compare(c) => {
                if c.ops.len() == 1 {
                    let left = self.atom(&c.left, "t")?;
                    let right = self.atom(&c.comparators[0], "t")?;
                    return Ok(Expr::Compare {
                        op: c.ops[0].as_str().to_string(),
                        left,
                        right,
                    });
                }
                // `a < b < c` -> `_t = a < b`, then `if _t: _t = b < c`: b is evaluated once
                // and c only when needed.
                let result = self.fresh("cmp");
                let mut left = self.atom(&c.left, "t")?;
                let mut pending: Vec<Vec<Stmt>> = Vec::new();
                let origin = self.origin.clone();
                for (i, (op, right)) in c.ops.iter().zip(c.comparators.iter()).enumerate() {
                    let saved = std::mem::take(&mut self.out);
                    let r = self.atom(right, "t")?;
                    self.assign(
                        &result,
                        Expr::Compare {
                            op: op.as_str().to_string(),
                            left: left.clone(),
                            right: r.clone(),
                        },
                    );
                    let stmts = std::mem::replace(&mut self.out, saved);
                    if i == 0 {
                        self.out.extend(stmts);
                    } else {
                        pending.push(stmts);
                    }
                    left = r;
                }
                let mut nested: Vec<Stmt> = Vec::new();
                for stmts in pending.into_iter().rev() {
                    let mut body = stmts;
                    if !nested.is_empty() {
                        body.push(Stmt::If {
                            test: Expr::Atom(Atom::Name(result.clone())),
                            body: nested,
                            orelse: vec![],
                            origin: origin.clone(),
                        });
                    }
                    nested = body;
                }
                if !nested.is_empty() {
                    self.emit(Stmt::If {
                        test: Expr::Atom(Atom::Name(result.clone())),
                        body: nested,
                        orelse: vec![],
                        origin,
                    });
                }
                Ok(Expr::Atom(Atom::Name(result)))
            }
            AExpr::BoolOp(b) => {
                let result = self.fresh("bool");
                let first = self.atom(&b.values[0], "t")?;
                self.assign(&result, Expr::Atom(first));
                let origin = self.origin.clone();
                let mut chain: Vec<Vec<Stmt>> = Vec::new();
                for v in &b.values[1..] {
                    let saved = std::mem::take(&mut self.out);
                    let a = self.atom(v, "t")?;
                    self.assign(&result, Expr::Atom(a));
                    chain.push(std::mem::replace(&mut self.out, saved));
                }
                let is_and = matches!(b.op, ast::BoolOp::And);
                let mut nested: Vec<Stmt> = Vec::new();
                for stmts in chain.into_iter().rev() {
                    let mut body = stmts;
                    if !nested.is_empty() {
                        body.extend(self.bool_guard(&result, is_and, nested, &origin));
                    }
                    nested = body;
                }
                let guard = self.bool_guard(&result, is_and, nested, &origin);
                self.out.extend(guard);
                Ok(Expr::Atom(Atom::Name(result)))
            }
            AExpr::If(ifx) => {
                let result = self.fresh("t");
                let test = Expr::Atom(self.atom(&ifx.test, "cond")?);
                let origin = self.origin.clone();
                let saved = std::mem::take(&mut self.out);
                let body = self.expr(&ifx.body).map(|v| {
                    self.assign(&result, v);
                });
                let body_stmts = std::mem::take(&mut self.out);
                let orelse = self.expr(&ifx.orelse).map(|v| {
                    self.assign(&result, v);
                });
                let orelse_stmts = std::mem::replace(&mut self.out, saved);
                body?;
                orelse?;
                self.emit(Stmt::If {
                    test,
                    body: body_stmts,
                    orelse: orelse_stmts,
                    origin,
                });
                Ok(Expr::Atom(Atom::Name(result)))
            }
            AExpr::Call(c) => self.call(c),
            AExpr::Subscript(s) => {
                let value = self.atom(&s.value, "t")?;
                let index = self.index(&s.slice)?;
                Ok(Expr::Subscript { value, index })
            }
            AExpr::Attribute(a) => {
                let value = self.atom(&a.value, "t")?;
                Ok(Expr::Attribute {
                    value,
                    attr: a.attr.to_string(),
                })
            }
            AExpr::Tuple(t) => {
                let mut items = Vec::new();
                for e in &t.elts {
                    if let AExpr::Starred(s) = e {
                        return Err(
                            self.unsupported(s.range(), "starred expressions are not supported")
                        );
                    }
                    items.push(self.atom(e, "t")?);
                }
                Ok(Expr::Tuple(items))
            }
            AExpr::List(t) => {
                let mut items = Vec::new();
                for e in &t.elts {
                    if let AExpr::Starred(s) = e {
                        return Err(
                            self.unsupported(s.range(), "starred expressions are not supported")
                        );
                    }
                    items.push(self.atom(e, "t")?);
                }
                Ok(Expr::List(items))
            }
            AExpr::Dict(d) => {
                let mut items = Vec::new();
                for item in &d.items {
                    let Some(k) = &item.key else {
                        return Err(self.unsupported(
                            item.value.range(),
                            "`**` in dict literals is not supported",
                        ));
                    };
                    let k = self.atom(k, "key")?;
                    let v = self.atom(&item.value, "t")?;
                    items.push((k, v));
                }
                Ok(Expr::Dict(items))
            }
            AExpr::Yield(_) | AExpr::YieldFrom(_) => {
                Err(self.unsupported(e.range(), "generators (`yield`) cannot be differentiated"))
            }
            AExpr::Await(_) => Err(self.unsupported(e.range(), "`await` cannot be differentiated")),
            AExpr::Named(_) => {
                Err(self.unsupported(e.range(), "assignment expressions (`:=`) are not supported"))
            }
            AExpr::Starred(_) => {
                Err(self.unsupported(e.range(), "starred expressions are not supported"))
            }
            AExpr::ListComp(lc) if lowerable(&lc.generators) => {
                self.comprehension(&lc.elt, &lc.generators)
            }
            AExpr::Generator(g) if lowerable(&g.generators) => {
                self.comprehension(&g.elt, &g.generators)
            }
            AExpr::DictComp(ast::ExprDictComp {
                key: Some(key),
                value,
                generators,
                ..
            }) if lowerable(generators) => self.dict_comprehension(key, value, generators),
            AExpr::Lambda(_)
            | AExpr::ListComp(_)
            | AExpr::SetComp(_)
            | AExpr::DictComp(_)
            | AExpr::Generator(_)
            | AExpr::FString(_)
            | AExpr::Set(_)
            | AExpr::Slice(_) => {
                let mut reads = Vec::new();
                collect_reads_expr(e, &mut reads);
                let kind = match e {
                    AExpr::Lambda(_) => "a lambda",
                    AExpr::ListComp(_)
                    | AExpr::SetComp(_)
                    | AExpr::DictComp(_)
                    | AExpr::Generator(_) => "a comprehension",
                    _ => "this expression",
                };
                // The sole argument of a call (`sum(y for y in ys)`) is a generator expression
                // without parentheses of its own: they are the call's.
                let text = match e {
                    AExpr::Generator(g) if !g.parenthesized && self.renaming == 0 => {
                        format!("({})", self.text(e))
                    }
                    _ => self.expr_text(e),
                };
                Ok(Expr::Opaque {
                    text,
                    reads: reads
                        .into_iter()
                        .filter(|r| r != "__opaque_kind")
                        .chain(std::iter::once(format!("__opaque:{kind}")))
                        .collect(),
                })
            }
            _ => Err(self.unsupported(e.range(), "this expression cannot be differentiated")),
        }
    }

    fn bool_guard(
        &mut self,
        result: &str,
        is_and: bool,
        body: Vec<Stmt>,
        origin: &Origin,
    ) -> Vec<Stmt> {
        if is_and {
            vec![Stmt::If {
                test: Expr::Atom(Atom::Name(result.to_string())),
                body,
                orelse: vec![],
                origin: origin.clone(),
            }]
        } else {
            vec![Stmt::If {
                test: Expr::Atom(Atom::Name(result.to_string())),
                body: vec![],
                orelse: body,
                origin: origin.clone(),
            }]
        }
    }

    fn call(&mut self, c: &ast::ExprCall) -> Result<Expr> {
        // `map(f, xs)` is `[f(x) for x in xs]`; `list(...)` of a list made here is that list.
        if let Some(lowered) = self.iteration_builtin(c) {
            return self.expr(&lowered);
        }
        // `stack.pop()` on a stack of generated code: the pop the IR knows (`tangent.pop`).
        if let AExpr::Attribute(a) = c.func.as_ref() {
            if let AExpr::Name(obj) = a.value.as_ref() {
                if self.stacks.contains(obj.id.as_str())
                    && a.attr.as_str() == "pop"
                    && c.arguments.is_empty()
                {
                    let callee = Callee::Function {
                        text: "tangent.pop".into(),
                        canonical: Some("tangent.pop".into()),
                        local: false,
                    };
                    return Ok(Expr::Call {
                        callee,
                        args: vec![Atom::Name(obj.id.to_string())],
                        kwargs: Vec::new(),
                    });
                }
                // `xs.pop()` on a local list, its result used: the last item, then the pop
                // the IR knows (`PopLast`, whose adjoint gives the removed item its adjoint
                // back). Without it, the pop's effect on `xs` was lost to the backward pass.
                if self.locals.contains(obj.id.as_str())
                    && a.attr.as_str() == "pop"
                    && c.arguments.is_empty()
                {
                    let list = obj.id.to_string();
                    let item = self.fresh("item");
                    let last = Index {
                        text: "-1".into(),
                        arg: "-1".into(),
                        reads: Vec::new(),
                    };
                    self.assign(
                        &item,
                        Expr::Subscript {
                            value: Atom::Name(list.clone()),
                            index: last,
                        },
                    );
                    let origin = self.origin.clone();
                    self.emit(Stmt::PopLast {
                        target: list,
                        origin,
                    });
                    return Ok(Expr::Atom(Atom::Name(item)));
                }
            }
        }
        if let AExpr::Name(n) = c.func.as_ref() {
            if self.nested.contains_key(n.id.as_str()) {
                return self.inline_call(n.id.as_str(), c);
            }
            if !self.locals.contains(n.id.as_str())
                && self.halves.is_some_and(|h| h.contains(n.id.as_str()))
            {
                return self.inline_half(n.id.as_str(), c);
            }
        }
        if let AExpr::Name(n) = c.func.as_ref()
            && let Some(value) = self.specialized_call(n.id.as_str(), c)?
        {
            return Ok(value);
        }
        let mut receiver = self.method_receiver(c);
        if receiver.is_none() {
            self.check_self_call(c)?;
        }
        // The object a method is called on (`obj` of `obj.m(...)`), or called itself.
        let (object, method) = match c.func.as_ref() {
            AExpr::Attribute(a) => (a.value.as_ref(), a.attr.as_str()),
            other => (other, "__call__"),
        };
        if let Some((_, self_name)) = &mut receiver
            && matches!(object, AExpr::Attribute(_) | AExpr::Subscript(_))
        {
            // An object held in an attribute (`self.family.loglike(...)`) or a list
            // (`layers[0].forward(x)`): read once.
            match self.atom(object, "obj")? {
                Atom::Name(n) => *self_name = n,
                Atom::Const(_) => {}
            }
        }
        if let Some((text, self_name)) = &receiver {
            if matches!(
                object,
                AExpr::Name(_) | AExpr::Attribute(_) | AExpr::Subscript(_)
            ) {
                // Resolved as written: a subclass overriding the method would make the
                // derivative wrong, so the generated code checks the object's class.
                let owner = text.split('.').next().unwrap_or_default().to_string();
                let origin = self.origin.clone();
                self.emit(Stmt::Opaque {
                    text: format!("assert tangent.resolves_to({self_name}, '{method}', {text})"),
                    reads: vec![self_name.clone(), owner],
                    origin,
                });
            }
        }
        // `Class.method(obj, ...)` on a class of the module: that method as a function (as
        // generated gradients call the derivatives of methods).
        let class_method = match c.func.as_ref() {
            AExpr::Attribute(a) => match a.value.as_ref() {
                AExpr::Name(n) if !self.locals.contains(n.id.as_str()) => self
                    .scope
                    .method_owner(n.id.as_str(), a.attr.as_str())
                    .map(|k| format!("{}.{}", k.name, a.attr)),
                _ => None,
            },
            _ => None,
        };
        let callee = match c.func.as_ref() {
            // Another method of the class on `self`: that method, statically (as written in
            // the class, not an override of a subclass).
            _ if receiver.is_some() => {
                let (text, _) = receiver.clone().unwrap_or_default();
                Callee::Function {
                    text,
                    canonical: None,
                    local: true,
                }
            }
            _ if class_method.is_some() => Callee::Function {
                text: class_method.clone().unwrap_or_default(),
                canonical: None,
                local: true,
            },
            AExpr::Name(n) => {
                let name = n.id.as_str();
                if self.locals.contains(name) {
                    Callee::Function {
                        text: name.to_string(),
                        canonical: None,
                        local: false,
                    }
                } else if self.scope.functions.contains_key(name) {
                    Callee::Function {
                        text: name.to_string(),
                        canonical: None,
                        local: true,
                    }
                } else if self.scope.classes.iter().any(|c| c.name == name) {
                    // A class of the module: its constructor, known by the class's name (its
                    // recipe is the user's or written from `__init__`, see `recipes`).
                    Callee::Function {
                        text: name.to_string(),
                        canonical: Some(name.to_string()),
                        local: false,
                    }
                } else if let Some(canon) = self.scope.canonical(name) {
                    Callee::Function {
                        text: name.to_string(),
                        canonical: Some(canon),
                        local: false,
                    }
                } else if BUILTINS.contains(&name) {
                    Callee::Function {
                        text: name.to_string(),
                        canonical: Some(format!("builtins.{name}")),
                        local: false,
                    }
                } else {
                    Callee::Function {
                        text: name.to_string(),
                        canonical: None,
                        local: false,
                    }
                }
            }
            AExpr::Attribute(a) => {
                let dotted = dotted_name(c.func.as_ref());
                let module_ref = dotted.as_ref().and_then(|d| {
                    let first = d.split('.').next().unwrap_or("");
                    if self.locals.contains(first) {
                        None
                    } else {
                        self.scope.canonical(d).map(|canon| (d.clone(), canon))
                    }
                });
                // `lib.f(x)` where `lib` is bound neither here nor at module level (a star
                // import, an injected global): a function Tangent cannot know, not a method.
                let unknown_base = match a.value.as_ref() {
                    AExpr::Name(n) => {
                        let n = n.id.as_str();
                        !self.locals.contains(n)
                            && !self.scope.binds(n)
                            && !crate::resolve::BUILTINS.contains(&n)
                    }
                    _ => false,
                };
                match module_ref {
                    Some((text, canon)) => Callee::Function {
                        text,
                        canonical: Some(canon),
                        local: false,
                    },
                    None if unknown_base && dotted.is_some() => Callee::Function {
                        text: dotted.clone().unwrap_or_default(),
                        canonical: None,
                        local: false,
                    },
                    None => {
                        let object = self.atom(&a.value, "t")?;
                        Callee::Method {
                            object,
                            method: a.attr.to_string(),
                        }
                    }
                }
            }
            other => {
                let f = self.atom(other, "f")?;
                Callee::Function {
                    text: f.to_string(),
                    canonical: None,
                    local: false,
                }
            }
        };
        if let Some(opaque) = self.nondifferentiable_spread(c, &callee) {
            return Ok(opaque);
        }
        let mut args = Vec::new();
        if let Some((_, self_name)) = &receiver {
            args.push(Atom::Name(self_name.clone()));
        }
        let mut callee = callee;
        if let Some((sized, shape)) = self.call_with_spread_shape(c, &callee)? {
            callee = sized;
            args.push(shape);
        } else {
            for a in c.arguments.args.iter() {
                if let AExpr::Starred(s) = a {
                    args.extend(self.unpacked(s)?);
                    continue;
                }
                args.push(self.atom(a, "t")?);
            }
        }
        let mut kwargs = Vec::new();
        for k in c.arguments.keywords.iter() {
            let Some(name) = &k.arg else {
                return Err(self.unsupported(k.range(), "`**kwargs` in calls is not supported"));
            };
            kwargs.push((name.to_string(), self.atom(&k.value, "t")?));
        }
        if let Some(e) = self.call_with_out(c, &callee, &mut args, &mut kwargs)? {
            return Ok(e);
        }
        if let Some(e) = self.call_checked_unchanged(c, &callee, &args, &kwargs) {
            return Ok(e);
        }
        if let Some(e) = self.call_with_updates(c, &callee, &args, &kwargs)? {
            return Ok(e);
        }
        if let Some(e) = self.inert_call(&callee, &args, &kwargs) {
            return Ok(e);
        }
        // `max(items)` / `min(items)`: a loop of the two-argument form (ties keep the first).
        if let Callee::Function {
            canonical: Some(c), ..
        } = &callee
        {
            if (c == "builtins.max" || c == "builtins.min") && args.len() == 1 && kwargs.is_empty()
            {
                return Ok(self.fold_extreme(c, args.remove(0)));
            }
        }
        // Generated code returns its gradients through `tangent.unshared` (copies of shared
        // arrays): the values themselves, for a derivative of that code.
        if matches!(&callee, Callee::Function { canonical: Some(c), .. } if c == "tangent.unshared")
            && !args.is_empty()
        {
            return Ok(if args.len() == 1 {
                Expr::Atom(args.remove(0))
            } else {
                Expr::Tuple(args)
            });
        }
        // `tangent.pop(stack, op_id)`: the pop the IR knows, into the op_id's variable (which
        // the matching push saved), whose value is the call's.
        // An op_id of None is no op_id at all.
        if matches!(&callee, Callee::Function { canonical: Some(name), .. } if name == "tangent.pop")
            && has_op_id_shape(&args, &kwargs, 1)
        {
            if let Some(Atom::Name(stack)) = args.first().cloned() {
                let pop = Expr::Call {
                    callee,
                    args: vec![Atom::Name(stack.clone())],
                    kwargs: Vec::new(),
                };
                return Ok(match self.op_id_variable(c, &stack, 1)? {
                    Some(var) => {
                        self.assign(&var, pop);
                        Expr::Atom(Atom::Name(var))
                    }
                    None => pop,
                });
            }
        }
        Ok(Expr::Call {
            callee,
            args,
            kwargs,
        })
    }

    /// The variable through which `tangent.push(stack, v, op_id)` (`position` 2) and
    /// `tangent.pop(stack, op_id)` (`position` 1) save and restore, when `call` passes an
    /// `op_id` (the original Tangent's form; the runtime ignores it): the push becomes
    /// `var = v` then a push of `var`, the pop a pop into `var`. A push and a pop with the
    /// same op_id on the same stack thus pair by name, as generated code's do (`activity`'s
    /// slots), and the value may come back under another name (`aa = tangent.pop(s, 'a')`).
    /// The op_id must be a literal, so that the pairs are known before the code runs.
    fn op_id_variable(
        &mut self,
        call: &ast::ExprCall,
        stack: &str,
        position: usize,
    ) -> Result<Option<String>> {
        let op_id = call.arguments.args.get(position).or_else(|| {
            call.arguments
                .keywords
                .iter()
                .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "op_id"))
                .map(|k| &k.value)
        });
        let key = match op_id {
            None => return Ok(None),
            Some(AExpr::StringLiteral(s)) => format!("'{}", s.value.to_str()),
            Some(e @ (AExpr::NumberLiteral(_) | AExpr::BooleanLiteral(_))) => self.text(e),
            Some(AExpr::NoneLiteral(_)) => return Ok(None),
            Some(e) => {
                return Err(self.unsupported(e.range(), "the op_id of `tangent.push` and `tangent.pop` must be a literal (a string), so that pushes and pops pair before the code runs"));
            }
        };
        if let Some(var) = self.op_ids.get(&(stack.to_string(), key.clone())) {
            return Ok(Some(var.clone()));
        }
        let readable: String = key
            .chars()
            .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
            .take(24)
            .collect();
        let var = self.fresh(&format!("op_{}", readable.trim_matches('_')));
        self.op_ids.insert((stack.to_string(), key), var.clone());
        Ok(Some(var))
    }

    /// `rs.randn(*shape)`, `np.random.rand(*shape)`, `x.reshape(*shape)`: calls whose sole
    /// argument spreads a shape of a length not known here. Each takes the shape whole as well
    /// (`randn(*s)` draws what `standard_normal(s)` draws, `rand(*s)` what `random_sample(s)`
    /// draws), so the call becomes that form: the callee to use and the shape's atom.
    fn call_with_spread_shape(
        &mut self,
        c: &ast::ExprCall,
        callee: &Callee,
    ) -> Result<Option<(Callee, Atom)>> {
        let [AExpr::Starred(spread)] = &c.arguments.args[..] else {
            return Ok(None);
        };
        if !c.arguments.keywords.is_empty() || self.spread_length_known(spread) {
            return Ok(None);
        }
        let sized_form = |name: &str| match name {
            "randn" => Some("standard_normal"),
            "rand" => Some("random_sample"),
            _ => None,
        };
        let sized = match callee {
            Callee::Method { object, method } if method == "reshape" => Callee::Method {
                object: object.clone(),
                method: method.clone(),
            },
            Callee::Method { object, method } => match sized_form(method) {
                Some(m) => Callee::Method {
                    object: object.clone(),
                    method: m.into(),
                },
                None => return Ok(None),
            },
            Callee::Function {
                text,
                canonical: Some(canon),
                local,
            } => {
                let Some(m) = canon.strip_prefix("numpy.random.").and_then(sized_form) else {
                    return Ok(None);
                };
                let Some((module, _)) = text.rsplit_once('.') else {
                    return Ok(None);
                };
                Callee::Function {
                    text: format!("{module}.{m}"),
                    canonical: Some(format!("numpy.random.{m}")),
                    local: *local,
                }
            }
            Callee::Function { .. } => return Ok(None),
        };
        let shape = self.atom(&spread.value, "shape")?;
        Ok(Some((sized, shape)))
    }

    /// `f(*items)` of a function without a derivative (`np.result_type(*dtypes)`) and a
    /// spread of a length not known here: computed as written, its result inactive.
    fn nondifferentiable_spread(&self, c: &ast::ExprCall, callee: &Callee) -> Option<Expr> {
        let Callee::Function {
            canonical: Some(canon),
            ..
        } = callee
        else {
            return None;
        };
        let inert = self
            .recipes
            .is_some_and(|r| r.nondifferentiable.contains(canon));
        let unknown_spread = c
            .arguments
            .args
            .iter()
            .any(|a| matches!(a, AExpr::Starred(s) if !self.spread_length_known(s)));
        if !inert || !unknown_spread {
            return None;
        }
        let call = AExpr::Call(c.clone());
        let mut reads = Vec::new();
        collect_reads_expr(&call, &mut reads);
        let indent = ruff_python_codegen::Indentation::new("    ".to_string());
        let text = ruff_python_codegen::Generator::new(&indent, ruff_source_file::LineEnding::Lf)
            .expr(&call);
        Some(Expr::without_derivative(text, reads))
    }

    /// A call whose result carries no derivative, computed as written: a function of the
    /// module that returns none and changes nothing (`effects::Summary::returns_inert`,
    /// `_single_array_device(a)`), or `getattr(a, "dtype", None)` of an attribute without
    /// one (as `a.dtype` is).
    fn inert_call(
        &self,
        callee: &Callee,
        args: &[Atom],
        kwargs: &[(String, Atom)],
    ) -> Option<Expr> {
        let inert = match callee {
            Callee::Function {
                text, local: true, ..
            } => self
                .effects
                .and_then(|e| e.get(text))
                .is_some_and(|summary| {
                    // (An effect outside values runs as in the function: the call is made as
                    // written.)
                    summary.returns_inert && summary.writes.is_empty()
                }),
            Callee::Function {
                canonical: Some(c), ..
            } => {
                c == "builtins.getattr"
                    && matches!(args.get(1), Some(Atom::Const(name))
                        if crate::activity::INERT_ATTRIBUTES
                            .contains(&name.trim_matches(['(', ')', '"', '\''])))
            }
            _ => false,
        };
        let Callee::Function { text, .. } = callee else {
            return None;
        };
        inert.then(|| {
            let reads = args
                .iter()
                .chain(kwargs.iter().map(|(_, a)| a))
                .filter_map(|a| a.name().map(str::to_string))
                .collect();
            Expr::without_derivative(
                format!(
                    "{text}({})",
                    crate::ir::call_arguments(args, kwargs).join(", ")
                ),
                reads,
            )
        })
    }

    /// Whether [`Self::unpacked`] knows the length of `*value`.
    fn spread_length_known(&self, s: &ast::ExprStarred) -> bool {
        match s.value.as_ref() {
            AExpr::Tuple(ast::ExprTuple { elts, .. }) | AExpr::List(ast::ExprList { elts, .. }) => {
                !elts.iter().any(|e| matches!(e, AExpr::Starred(_)))
            }
            AExpr::Name(n) => self.fixed_lengths.contains_key(n.id.as_str()),
            _ => false,
        }
    }

    /// The items of `*value` in a call: a tuple or list literal, or a name the function binds
    /// once to one (so its length is known).
    fn unpacked(&mut self, s: &ast::ExprStarred) -> Result<Vec<Atom>> {
        match s.value.as_ref() {
            AExpr::Tuple(ast::ExprTuple { elts, .. }) | AExpr::List(ast::ExprList { elts, .. }) if !elts.iter().any(|e| matches!(e, AExpr::Starred(_))) => {
                elts.iter().map(|e| self.atom(e, "t")).collect()
            }
            AExpr::Name(n) if self.fixed_lengths.contains_key(n.id.as_str()) => {
                let len = self.fixed_lengths[n.id.as_str()];
                let mut items = Vec::new();
                for i in 0..len {
                    let t = self.fresh("arg");
                    let index = Index { text: i.to_string(), arg: i.to_string(), reads: vec![] };
                    self.assign(&t, Expr::Subscript { value: Atom::Name(n.id.to_string()), index });
                    items.push(Atom::Name(t));
                }
                Ok(items)
            }
            _ => Err(self.unsupported(s.range(), "`*args` in a call needs a tuple or list whose length is known here (a literal, or a name assigned once to one)")),
        }
    }

    /// `max(items)` (or `min`) as `m = items[0]`, then `m = max(m, items[i])` for the rest.
    fn fold_extreme(&mut self, builtin: &str, items: Atom) -> Expr {
        let text = builtin.trim_start_matches("builtins.");
        let call = |name: &str, args: Vec<Atom>| Expr::Call {
            callee: Callee::Function {
                text: name.into(),
                canonical: Some(format!("builtins.{name}")),
                local: false,
            },
            args,
            kwargs: vec![],
        };
        let item = |i: &str| Expr::Subscript {
            value: items.clone(),
            index: Index {
                text: i.into(),
                arg: i.into(),
                reads: if i == "0" { vec![] } else { vec![i.into()] },
            },
        };
        let best = self.fresh(text);
        self.assign(&best, item("0"));
        let n = self.fresh("n");
        self.assign(&n, call("len", vec![items.clone()]));
        let i = self.fresh("i");
        let v = self.fresh("item");
        let origin = self.origin.clone();
        let body = vec![
            Stmt::Assign {
                target: v.clone(),
                value: item(&i),
                origin: origin.clone(),
                inplace: None,
            },
            Stmt::Assign {
                target: best.clone(),
                value: call(text, vec![Atom::Name(best.clone()), Atom::Name(v)]),
                origin: origin.clone(),
                inplace: None,
            },
        ];
        let range = call("range", vec![Atom::Const("1".into()), Atom::Name(n)]);
        self.emit(Stmt::For {
            target: i,
            iter: range,
            body,
            origin,
            checkpoint: false,
        });
        Expr::Atom(Atom::Name(best))
    }

    /// An index as text; complex parts are computed into temporaries first.
    fn index(&mut self, e: &AExpr) -> Result<Index> {
        let mut reads = Vec::new();
        let (text, arg) = self.index_part(e, &mut reads, true)?;
        Ok(Index { text, arg, reads })
    }

    /// The index as subscript text and as a value (slices become `slice(...)`).
    fn index_part(
        &mut self,
        e: &AExpr,
        reads: &mut Vec<String>,
        top: bool,
    ) -> Result<(String, String)> {
        match e {
            AExpr::Tuple(t) if top => {
                let mut texts = Vec::new();
                let mut args = Vec::new();
                for item in &t.elts {
                    let (text, arg) = self.index_part(item, reads, false)?;
                    texts.push(text);
                    args.push(arg);
                }
                if texts.len() == 1 {
                    Ok((format!("{},", texts[0]), format!("({},)", args[0])))
                } else {
                    Ok((texts.join(", "), format!("({})", args.join(", "))))
                }
            }
            AExpr::Slice(s) => {
                let mut part =
                    |x: &Option<Box<AExpr>>, this: &mut Self| -> Result<(String, String)> {
                        match x {
                            None => Ok((String::new(), "None".to_string())),
                            Some(v) => this.index_part(v, reads, false),
                        }
                    };
                let lower = part(&s.lower, self)?;
                let upper = part(&s.upper, self)?;
                match &s.step {
                    None => Ok((
                        format!("{}:{}", lower.0, upper.0),
                        format!("slice({}, {})", lower.1, upper.1),
                    )),
                    Some(_) => {
                        let step = part(&s.step, self)?;
                        Ok((
                            format!("{}:{}:{}", lower.0, upper.0, step.0),
                            format!("slice({}, {}, {})", lower.1, upper.1, step.1),
                        ))
                    }
                }
            }
            other => {
                let a = self.atom(other, "idx")?;
                if let Atom::Name(n) = &a {
                    reads.push(n.clone());
                }
                Ok((a.to_string(), a.to_string()))
            }
        }
    }

    /// The backward pass re-evaluates each `if` test after undoing what follows the `if`, but
    /// before undoing the branch: a test that reads a name its own branches assign (after exit
    /// lifting, or in desugared `and`/`or`/chained comparisons) is evaluated once into a
    /// temporary first.
    fn stabilize_tests(&mut self, body: Vec<Stmt>) -> Vec<Stmt> {
        let mut out = Vec::with_capacity(body.len());
        for s in body {
            match s {
                Stmt::If {
                    test,
                    body,
                    orelse,
                    origin,
                } => {
                    let body = self.stabilize_tests(body);
                    let orelse = self.stabilize_tests(orelse);
                    let mut assigned = BTreeSet::new();
                    collect_ir_names(&body, &mut assigned);
                    collect_ir_names(&orelse, &mut assigned);
                    let test = if test.reads().iter().any(|r| assigned.contains(*r)) {
                        let t = self.fresh("cond");
                        out.push(Stmt::Assign {
                            target: t.clone(),
                            value: test,
                            origin: origin.clone(),
                            inplace: None,
                        });
                        Expr::Atom(Atom::Name(t))
                    } else {
                        test
                    };
                    out.push(Stmt::If {
                        test,
                        body,
                        orelse,
                        origin,
                    });
                }
                Stmt::For {
                    target,
                    iter,
                    body,
                    origin,
                    checkpoint,
                } => out.push(Stmt::For {
                    target,
                    iter,
                    body: self.stabilize_tests(body),
                    origin,
                    checkpoint,
                }),
                Stmt::While { test, body, origin } => out.push(Stmt::While {
                    test,
                    body: self.stabilize_tests(body),
                    origin,
                }),
                other => out.push(other),
            }
        }
        out
    }

    /// Turns returns (now at the ends of their paths) into assignments to one result variable.
    fn returns_to_result(
        &mut self,
        body: Vec<Stmt>,
        result_name: &mut Option<String>,
        def: &ast::StmtFunctionDef,
    ) -> Result<(Vec<Stmt>, Vec<Atom>, bool)> {
        let mut returns = Vec::new();
        collect_returns(&body, &mut returns);
        if returns.is_empty() {
            // `None`: a helper writing into its arguments may return nothing.
            self.returns_nothing = Some((
                def.name.range().start().into(),
                def.name.range().end().into(),
            ));
            return Ok((body, vec![Atom::Const("None".into())], false));
        }
        // One return at the very end keeps its own names.
        if returns.len() == 1 {
            if let Some(Stmt::Return { value, tuple, .. }) = body.last() {
                let (value, tuple) = (value.clone(), *tuple);
                let mut body = body;
                body.pop();
                return Ok((body, value, tuple));
            }
        }
        let arity = returns[0].0;
        let tuple = returns[0].1;
        if returns.iter().any(|r| r.0 != arity || r.1 != tuple) {
            return Err(self.unsupported(
                def.range(),
                "all `return` statements must return the same number of values",
            ));
        }
        // One returned value is named after the function (`loss`), so its seed reads `bloss`.
        let names: Vec<String> = if arity == 1 && !self.taken.contains(&self.function_name) {
            self.taken.insert(self.function_name.clone());
            vec![self.function_name.clone()]
        } else {
            (0..arity)
                .map(|i| {
                    if arity == 1 {
                        self.fresh("result")
                    } else {
                        self.fresh(&format!("result{i}_"))
                    }
                })
                .collect()
        };
        *result_name = names.first().cloned();
        let body = replace_returns(body, &names);
        Ok((body, names.into_iter().map(Atom::Name).collect(), tuple))
    }
}

/// Names assigned exactly once in `body`, to a tuple or list literal without `*`: their length.
fn fixed_lengths(body: &[AStmt]) -> BTreeMap<String, usize> {
    use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
    struct V {
        lengths: BTreeMap<String, usize>,
        assigned: BTreeMap<String, usize>,
    }
    impl<'a> StatementVisitor<'a> for V {
        fn visit_stmt(&mut self, stmt: &'a AStmt) {
            let mut targets = BTreeSet::new();
            match stmt {
                AStmt::Assign(a) => {
                    a.targets
                        .iter()
                        .for_each(|t| collect_target(t, &mut targets));
                    if let (
                        [AExpr::Name(n)],
                        AExpr::Tuple(ast::ExprTuple { elts, .. })
                        | AExpr::List(ast::ExprList { elts, .. }),
                    ) = (&a.targets[..], a.value.as_ref())
                    {
                        if !elts.iter().any(|e| matches!(e, AExpr::Starred(_))) {
                            self.lengths.insert(n.id.to_string(), elts.len());
                        }
                    }
                }
                AStmt::AugAssign(a) => collect_target(&a.target, &mut targets),
                AStmt::AnnAssign(a) => collect_target(&a.target, &mut targets),
                AStmt::For(f) => collect_target(&f.target, &mut targets),
                _ => {}
            }
            for t in targets {
                *self.assigned.entry(t).or_default() += 1;
            }
            walk_stmt(self, stmt);
        }
    }
    let mut v = V {
        lengths: BTreeMap::new(),
        assigned: BTreeMap::new(),
    };
    for s in body {
        v.visit_stmt(s);
    }
    v.lengths.retain(|n, _| v.assigned.get(n) == Some(&1));
    // A list whose methods are called (`args.append(...)`) or whose items are deleted may
    // change its length: not expanded.
    use ruff_python_ast::visitor::{Visitor, walk_expr, walk_stmt as walk};
    struct Mutated<'l>(&'l mut BTreeMap<String, usize>);
    impl<'a> Visitor<'a> for Mutated<'_> {
        fn visit_stmt(&mut self, stmt: &'a AStmt) {
            if let AStmt::Delete(d) = stmt {
                for t in &d.targets {
                    if let AExpr::Subscript(s) = t {
                        if let AExpr::Name(n) = s.value.as_ref() {
                            self.0.remove(n.id.as_str());
                        }
                    }
                }
            }
            walk(self, stmt);
        }
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Attribute(a) = expr {
                if let AExpr::Name(n) = a.value.as_ref() {
                    self.0.remove(n.id.as_str());
                }
            }
            walk_expr(self, expr);
        }
    }
    let mut lengths = v.lengths;
    let mut m = Mutated(&mut lengths);
    for s in body {
        m.visit_stmt(s);
    }
    lengths
}

/// Can a comprehension become loops? Its iterables must be sequences the loops can index, or
/// `range`/`zip`/`enumerate` (anything else, e.g. `d.items()`, stays as it is).
fn lowerable(generators: &[ast::Comprehension]) -> bool {
    generators.iter().all(|g| match &g.iter {
        AExpr::Call(c) => {
            matches!(c.func.as_ref(), AExpr::Name(n) if matches!(n.id.as_str(), "range" | "zip" | "enumerate"))
                // The keys of a dict (`dicts`: `params.items()` read by key).
                || matches!(c.func.as_ref(), AExpr::Attribute(a) if a.attr.as_str() == "keys_of")
        }
        AExpr::Name(_) | AExpr::Attribute(_) | AExpr::Subscript(_) | AExpr::List(_) | AExpr::Tuple(_) => true,
        AExpr::ListComp(inner) => lowerable(&inner.generators),
        _ => false,
    })
}

fn c_args(e: &AExpr) -> usize {
    match e {
        AExpr::Call(c) => c.arguments.args.len(),
        _ => 0,
    }
}

fn collect_returns(body: &[Stmt], out: &mut Vec<(usize, bool)>) {
    for s in body {
        match s {
            Stmt::Return { value, tuple, .. } => out.push((value.len(), *tuple)),
            Stmt::If { body, orelse, .. } => {
                collect_returns(body, out);
                collect_returns(orelse, out);
            }
            Stmt::For { body, .. } | Stmt::While { body, .. } => collect_returns(body, out),
            _ => {}
        }
    }
}

fn replace_returns(body: Vec<Stmt>, names: &[String]) -> Vec<Stmt> {
    body.into_iter()
        .flat_map(|s| match s {
            Stmt::Return { value, origin, .. } => names
                .iter()
                .zip(value)
                .map(|(n, v)| Stmt::Assign {
                    target: n.clone(),
                    value: Expr::Atom(v),
                    origin: origin.clone(),
                    inplace: None,
                })
                .collect::<Vec<_>>(),
            Stmt::If {
                test,
                body,
                orelse,
                origin,
            } => vec![Stmt::If {
                test,
                body: replace_returns(body, names),
                orelse: replace_returns(orelse, names),
                origin,
            }],
            other => vec![other],
        })
        .collect()
}

/// Does this statement list end every path with an exit (break, continue, return)?
fn always_exits(block: &[Stmt]) -> bool {
    match block.last() {
        Some(Stmt::Break { .. } | Stmt::Continue { .. } | Stmt::Return { .. }) => true,
        Some(Stmt::If { body, orelse, .. }) => always_exits(body) && always_exits(orelse),
        _ => false,
    }
}

/// May this statement exit the enclosing block (not counting exits of nested loops)?
fn may_exit(stmt: &Stmt) -> bool {
    match stmt {
        Stmt::Break { .. } | Stmt::Continue { .. } | Stmt::Return { .. } => true,
        Stmt::If { body, orelse, .. } => body.iter().any(may_exit) || orelse.iter().any(may_exit),
        _ => false,
    }
}

/// Moves the statements after an `if` that may exit into its fall-through paths, so exits
/// always end their blocks and a backward pass never undoes statements that did not run.
pub fn lift_exits(block: Vec<Stmt>) -> Vec<Stmt> {
    let mut out = Vec::new();
    let mut iter = block.into_iter();
    while let Some(stmt) = iter.next() {
        let stmt = match stmt {
            Stmt::If {
                test,
                body,
                orelse,
                origin,
            } => Stmt::If {
                test,
                body: lift_exits(body),
                orelse: lift_exits(orelse),
                origin,
            },
            Stmt::For {
                target,
                iter: it,
                body,
                origin,
                checkpoint,
            } => Stmt::For {
                target,
                iter: it,
                body: lift_exits(body),
                origin,
                checkpoint,
            },
            Stmt::While { test, body, origin } => Stmt::While {
                test,
                body: lift_exits(body),
                origin,
            },
            other => other,
        };
        let exits = matches!(
            stmt,
            Stmt::Break { .. } | Stmt::Continue { .. } | Stmt::Return { .. }
        );
        if exits {
            out.push(stmt);
            return out; // unreachable code after an exit is dropped
        }
        if matches!(stmt, Stmt::If { .. }) && may_exit(&stmt) {
            let rest = lift_exits(iter.collect());
            let mut stmt = stmt;
            append_to_fallthrough(&mut stmt, &rest);
            out.push(stmt);
            return out;
        }
        out.push(stmt);
    }
    out
}

fn append_to_fallthrough(stmt: &mut Stmt, rest: &[Stmt]) {
    if rest.is_empty() {
        return;
    }
    if let Stmt::If { body, orelse, .. } = stmt {
        for branch in [body, orelse] {
            append_block(branch, rest);
        }
    }
}

fn append_block(block: &mut Vec<Stmt>, rest: &[Stmt]) {
    if always_exits(block) && !matches!(block.last(), Some(Stmt::If { .. })) {
        return;
    }
    match block.last_mut() {
        Some(last @ Stmt::If { .. }) if may_exit(last) => append_to_fallthrough(last, rest),
        Some(Stmt::Break { .. } | Stmt::Continue { .. } | Stmt::Return { .. }) => {}
        _ => block.extend(rest.iter().cloned()),
    }
}

fn target_names(elts: &[AExpr]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for e in elts {
        collect_target(e, &mut out);
    }
    out.into_iter().collect()
}

pub(crate) fn collect_target(e: &AExpr, out: &mut BTreeSet<String>) {
    match e {
        AExpr::Name(n) => {
            out.insert(n.id.to_string());
        }
        AExpr::Tuple(t) => t.elts.iter().for_each(|e| collect_target(e, out)),
        AExpr::List(t) => t.elts.iter().for_each(|e| collect_target(e, out)),
        AExpr::Starred(s) => collect_target(&s.value, out),
        _ => {}
    }
}

/// Names assigned anywhere in `body` (Python's rule for local variables).
pub fn collect_assigned(body: &[AStmt], out: &mut BTreeSet<String>) {
    collect_bound(body, out, true);
}

/// The names `body` binds; with `augmented`, also the targets of `x op= v`.
fn collect_bound(body: &[AStmt], out: &mut BTreeSet<String>, augmented: bool) {
    collect_bound_with(body, out, augmented, true);
}

/// [`collect_bound`]; without `assignments`, leaving out the targets of plain `=`.
fn collect_bound_with(
    body: &[AStmt],
    out: &mut BTreeSet<String>,
    augmented: bool,
    assignments: bool,
) {
    use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
    struct V<'o>(&'o mut BTreeSet<String>, bool, bool);
    impl<'a, 'o> StatementVisitor<'a> for V<'o> {
        fn visit_stmt(&mut self, stmt: &'a AStmt) {
            match stmt {
                AStmt::Assign(a) if self.2 => {
                    a.targets.iter().for_each(|t| collect_target(t, self.0))
                }
                AStmt::AugAssign(a) if self.1 => collect_target(&a.target, self.0),
                AStmt::AnnAssign(a) => collect_target(&a.target, self.0),
                AStmt::For(f) => collect_target(&f.target, self.0),
                AStmt::With(w) => {
                    for item in &w.items {
                        if let Some(v) = &item.optional_vars {
                            collect_target(v, self.0);
                        }
                    }
                }
                AStmt::FunctionDef(f) => {
                    self.0.insert(f.name.to_string());
                    return;
                }
                _ => {}
            }
            walk_stmt(self, stmt);
        }
    }
    let mut v = V(out, augmented, assignments);
    for s in body {
        v.visit_stmt(s);
    }
}

/// The names `body` binds other than by a plain assignment: loop targets, `x op= v`,
/// annotated assignments, `with ... as`, nested definitions.
fn collect_bound_plain(body: &[AStmt], out: &mut BTreeSet<String>) {
    collect_bound_with(body, out, true, false);
}

/// The names `body` reads other than as the function of a call (`f` in `g(f)`, not in `f(x)`).
fn value_uses(body: &[AStmt]) -> BTreeSet<String> {
    use ruff_python_ast::visitor::{Visitor, walk_expr, walk_stmt};
    struct V(BTreeSet<String>);
    impl<'a> Visitor<'a> for V {
        fn visit_expr(&mut self, expr: &'a AExpr) {
            match expr {
                AExpr::Call(c) if matches!(c.func.as_ref(), AExpr::Name(_)) => {
                    for a in c.arguments.args.iter() {
                        self.visit_expr(a);
                    }
                    for k in c.arguments.keywords.iter() {
                        self.visit_expr(&k.value);
                    }
                }
                AExpr::Name(n) if n.ctx == ast::ExprContext::Load => {
                    self.0.insert(n.id.to_string());
                }
                _ => walk_expr(self, expr),
            }
        }
    }
    let mut v = V(BTreeSet::new());
    for s in body {
        walk_stmt(&mut v, s);
    }
    v.0
}

fn collect_all_names(body: &[AStmt], out: &mut BTreeSet<String>) {
    use ruff_python_ast::visitor::{Visitor, walk_expr};
    struct V<'o>(&'o mut BTreeSet<String>);
    impl<'a, 'o> Visitor<'a> for V<'o> {
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Name(n) = expr {
                self.0.insert(n.id.to_string());
            }
            walk_expr(self, expr);
        }
    }
    let mut v = V(out);
    for s in body {
        ruff_python_ast::visitor::walk_stmt(&mut v, s);
    }
}

fn collect_reads_expr(e: &AExpr, out: &mut Vec<String>) {
    use ruff_python_ast::visitor::{Visitor, walk_expr};
    struct V<'o>(&'o mut Vec<String>);
    impl<'a, 'o> Visitor<'a> for V<'o> {
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Name(n) = expr {
                if !self.0.contains(&n.id.to_string()) {
                    self.0.push(n.id.to_string());
                }
            }
            walk_expr(self, expr);
        }
    }
    V(out).visit_expr(e);
}

fn collect_reads_stmt(s: &AStmt, out: &mut Vec<String>) {
    use ruff_python_ast::visitor::{Visitor, walk_expr};
    struct V<'o>(&'o mut Vec<String>);
    impl<'a, 'o> Visitor<'a> for V<'o> {
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Name(n) = expr {
                if !self.0.contains(&n.id.to_string()) {
                    self.0.push(n.id.to_string());
                }
            }
            walk_expr(self, expr);
        }
    }
    ruff_python_ast::visitor::walk_stmt(&mut V(out), s);
}

fn collect_ir_names(body: &[Stmt], out: &mut BTreeSet<String>) {
    for s in body {
        match s {
            Stmt::Assign { target, .. }
            | Stmt::AssignIndex { target, .. }
            | Stmt::Append { target, .. }
            | Stmt::PopLast { target, .. } => {
                out.insert(target.clone());
            }
            Stmt::If { body, orelse, .. } => {
                collect_ir_names(body, out);
                collect_ir_names(orelse, out);
            }
            Stmt::For { target, body, .. } => {
                out.insert(target.clone());
                collect_ir_names(body, out);
            }
            Stmt::While { body, .. } => collect_ir_names(body, out),
            _ => {}
        }
    }
}

/// A call of `tangent.push` (`op_position` 2: stack, value) or `tangent.pop` (1: stack)
/// with those operands, and maybe an `op_id` after them (positional or by keyword).
fn has_op_id_shape(args: &[Atom], kwargs: &[(String, Atom)], op_position: usize) -> bool {
    match kwargs {
        [] => args.len() == op_position || args.len() == op_position + 1,
        [(k, _)] => k == "op_id" && args.len() == op_position,
        _ => false,
    }
}

/// Locals assigned `tangent.Stack()` anywhere in `body` (however `tangent` is imported).
fn stack_names(body: &[AStmt], scope: &ModuleScope) -> BTreeSet<String> {
    use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
    struct V<'s> {
        scope: &'s ModuleScope,
        found: BTreeSet<String>,
    }
    impl<'a> StatementVisitor<'a> for V<'_> {
        fn visit_stmt(&mut self, stmt: &'a AStmt) {
            if let AStmt::Assign(a) = stmt {
                if let (Some(AExpr::Name(target)), AExpr::Call(call)) =
                    (a.targets.first(), a.value.as_ref())
                {
                    let is_stack = dotted_name(&call.func)
                        .and_then(|d| self.scope.canonical(&d))
                        .is_some_and(|c| c == "tangent.Stack");
                    if is_stack && a.targets.len() == 1 {
                        self.found.insert(target.id.to_string());
                    }
                }
            }
            walk_stmt(self, stmt);
        }
    }
    let mut v = V {
        scope,
        found: BTreeSet::new(),
    };
    for s in body {
        v.visit_stmt(s);
    }
    // A stack received from elsewhere (split motion's `_state`) keeps its generated name.
    let mut names = BTreeSet::new();
    collect_all_names(body, &mut names);
    v.found
        .extend(names.into_iter().filter(|n| is_generated_stack_name(n)));
    v.found
}

/// `_stack`, `_stack1`, `_bstack`, `_bstack_`...: the names generated code gives its stacks.
fn is_generated_stack_name(name: &str) -> bool {
    let rest = name.strip_prefix('_').unwrap_or("");
    let rest = rest.strip_prefix('b').unwrap_or(rest);
    rest.strip_prefix("stack")
        .is_some_and(|tail| tail.chars().all(|c| c.is_ascii_digit() || c == '_'))
}

/// `a.b.c` as a dotted string when the expression is a chain of attribute lookups on a name.
pub fn dotted_name(e: &AExpr) -> Option<String> {
    match e {
        AExpr::Name(n) => Some(n.id.to_string()),
        AExpr::Attribute(a) => Some(format!("{}.{}", dotted_name(&a.value)?, a.attr)),
        _ => None,
    }
}

/// Parameters of `def` that its body modifies in place: `p[i] = ...`, `p[i] += ...`,
/// `p.append(...)` and other mutating method calls.
pub fn mutated_params(def: &ast::StmtFunctionDef) -> Vec<String> {
    use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
    let params: BTreeSet<String> = crate::parse::param_names(def).into_iter().collect();
    struct V<'p> {
        params: &'p BTreeSet<String>,
        found: Vec<String>,
    }
    impl V<'_> {
        fn base(&mut self, e: &AExpr) {
            let mut e = e;
            while let AExpr::Subscript(s) = e {
                e = &s.value;
            }
            if let AExpr::Name(n) = e {
                if self.params.contains(n.id.as_str()) && !self.found.contains(&n.id.to_string()) {
                    self.found.push(n.id.to_string());
                }
            }
        }
    }
    impl<'a> StatementVisitor<'a> for V<'_> {
        fn visit_stmt(&mut self, stmt: &'a AStmt) {
            match stmt {
                AStmt::Assign(a) => {
                    for t in &a.targets {
                        if let AExpr::Subscript(s) = t {
                            self.base(&s.value);
                        }
                    }
                }
                AStmt::AugAssign(a) => {
                    if let AExpr::Subscript(s) = a.target.as_ref() {
                        self.base(&s.value);
                    }
                }
                AStmt::Expr(e) => {
                    if let AExpr::Call(c) = e.value.as_ref() {
                        if let AExpr::Attribute(attr) = c.func.as_ref() {
                            if matches!(
                                attr.attr.as_str(),
                                "append"
                                    | "extend"
                                    | "insert"
                                    | "pop"
                                    | "update"
                                    | "fill"
                                    | "sort"
                                    | "clear"
                                    | "remove"
                            ) {
                                self.base(&attr.value);
                            }
                        }
                    }
                }
                _ => {}
            }
            walk_stmt(self, stmt);
        }
    }
    let mut v = V {
        params: &params,
        found: Vec::new(),
    };
    for s in &def.body {
        v.visit_stmt(s);
    }
    v.found
}

/// `x op= v` on a name that certainly holds a number (counters, sums of numbers: every value
/// it is given is a number literal, `len(...)`, a loop index over `range`, or arithmetic of
/// those) gives it a new value, like `x = x op v`: not a change in place.
fn numbers_rebind(body: &mut [Stmt], params: &[Param]) {
    let statements = crate::ir::all_statements(body);
    let mut names: BTreeSet<String> = BTreeSet::new();
    for s in &statements {
        match s {
            Stmt::Assign { target, .. } => {
                names.insert(target.clone());
            }
            Stmt::For { target, .. } => {
                names.insert(target.clone());
            }
            _ => {}
        }
    }
    // Optimistic: all are numbers until one of their values may not be (a parameter's is
    // the caller's).
    for p in params {
        names.remove(&p.name);
    }
    let mut numbers = names;
    loop {
        let before = numbers.len();
        let number = |a: &Atom, numbers: &BTreeSet<String>| match a {
            Atom::Const(c) => c.parse::<f64>().is_ok() || c == "True" || c == "False",
            Atom::Name(n) => numbers.contains(n),
        };
        for s in &statements {
            let keeps = match s {
                Stmt::Assign { value, .. } => match value {
                    Expr::Atom(a) => number(a, &numbers),
                    Expr::BinOp { left, right, .. } => {
                        number(left, &numbers) && number(right, &numbers)
                    }
                    Expr::UnaryOp { operand, .. } => number(operand, &numbers),
                    Expr::Compare { .. } => true,
                    Expr::Call {
                        callee:
                            Callee::Function {
                                canonical: Some(c), ..
                            },
                        ..
                    } => matches!(
                        c.as_str(),
                        "builtins.len" | "builtins.int" | "builtins.float"
                    ),
                    _ => false,
                },
                Stmt::For {
                    iter:
                        Expr::Call {
                            callee:
                                Callee::Function {
                                    canonical: Some(c), ..
                                },
                            ..
                        },
                    ..
                } => c == "builtins.range",
                Stmt::For { .. } => false,
                _ => continue,
            };
            if !keeps {
                let target = match s {
                    Stmt::Assign { target, .. } | Stmt::For { target, .. } => target,
                    _ => continue,
                };
                numbers.remove(target);
            }
        }
        if numbers.len() == before {
            break;
        }
    }
    fn downgrade(body: &mut [Stmt], numbers: &BTreeSet<String>) {
        for s in body {
            match s {
                Stmt::Assign {
                    target, inplace, ..
                } if matches!(inplace, Some(InPlace::Augmented))
                    && numbers.contains(target.as_str()) =>
                {
                    *inplace = None
                }
                Stmt::If { body, orelse, .. } => {
                    downgrade(body, numbers);
                    downgrade(orelse, numbers);
                }
                Stmt::For { body, .. } | Stmt::While { body, .. } => downgrade(body, numbers),
                _ => {}
            }
        }
    }
    downgrade(body, &numbers);
}
