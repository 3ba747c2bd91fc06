//! The driver: runs the pipeline for one request and for every same-module function the
//! differentiated code calls (each differentiated once per set of parameters).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ruff_python_ast::{ModModule, StmtFunctionDef};

use crate::Motion;
use crate::activity::{self, Activity};
use crate::code::Code;
use crate::diagnostics::{Diagnostic, DiagnosticKind};
use crate::emit::FunctionText;
use crate::ir::{Atom, Stmt};
use crate::normalize::{Halves, Normalized};
use crate::optimize;
use crate::parse::{SourceFile, find_function};
use crate::recipes::RecipeSet;
use crate::resolve::ModuleScope;
use crate::reverse::{Callees, Names, Reverse};

type R<T> = Result<T, Diagnostic>;

pub struct Driver<'a> {
    pub module: &'a ModModule,
    pub module_file: SourceFile<'a>,
    pub scope: ModuleScope,
    pub recipes: &'a RecipeSet,
    pub optimized: bool,
    /// Generated functions, in the order they were finished.
    pub functions: Vec<FunctionText>,
    done: BTreeMap<(String, Vec<usize>), (String, String)>,
    in_progress: Vec<String>,
    /// Check that the requested derivative exists (`check_wrt_use`); helpers' derivatives are
    /// never checked.
    pub check_wrt_use: bool,
    /// Names the generated module must not redefine.
    reserved: BTreeSet<String>,
    /// The project around the module, for calls into its other modules.
    pub project: Option<&'a crate::ProjectModule>,
    /// `from pkg.layers.__grad__ import ddense` lines the generated module needs.
    pub imports: BTreeSet<String>,
    /// How many leading statements of `module` are the module's own; the rest is the context
    /// it runs in (see `Request::context_source`), whose definitions yield to the module's.
    pub own_statements: usize,
    /// Whether each function seen is part of a cycle of calls (see `recursive`).
    recursive: BTreeMap<String, bool>,
    /// The generated helper halves among the module's functions (generated code that is
    /// differentiated again), inlined where they are called.
    halves: Halves,
    /// What the module's functions do besides computing their results (computed on first
    /// use, once `scope` is final).
    effects: std::cell::OnceCell<crate::effects::Effects>,
    /// Classes of objects held in attributes (see `Request::object_classes`), by
    /// `(class, path)`.
    pub object_classes: BTreeMap<(String, String), String>,
    /// Branches left out of derivatives, raising their refusal if they run.
    left_out: crate::normalize::LeftOut,
}

/// How the seed (the adjoint of the output) is passed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SeedStyle {
    /// Defaults to 1.0 per output (`tangent.grad`).
    DefaultOne,
    /// A required argument after all of the function's (helpers, which callers pass it by
    /// keyword): `=None` when a parameter before it has a default.
    Required,
    /// A required argument right after the function's parameters without a default, before
    /// those with one (what a user calls: `jvp_f(x, dx, scale=2.0)`), so that no default
    /// swallows the seed or tangent given positionally after the required arguments.
    Leading,
}

pub struct Spec<'s> {
    pub name: String,
    pub wrt: &'s [usize],
    pub seed: SeedStyle,
    pub preserve_result: bool,
    pub motion: Motion,
    /// `(forward, backward)`: package the derivative as the two halves a caller runs inside
    /// its own sweeps (see `Callees::split`) instead of as `motion` says.
    pub halves: Option<(String, String)>,
    /// Positions of parameters the function writes into: their final values are outputs too,
    /// after the result (`with_updates`).
    pub updates: &'s [usize],
}

impl<'a> Driver<'a> {
    pub fn new(
        module: &'a ModModule,
        module_file: SourceFile<'a>,
        recipes: &'a RecipeSet,
        optimized: bool,
    ) -> Self {
        let scope = ModuleScope::new(module);
        let mut reserved: BTreeSet<String> = scope.functions.keys().cloned().collect();
        reserved.extend(scope.imports.keys().cloned());
        reserved.insert("tangent".into());
        reserved.insert("numpy".into());
        Driver {
            module,
            module_file,
            scope,
            recipes,
            optimized,
            functions: Vec::new(),
            done: BTreeMap::new(),
            in_progress: Vec::new(),
            check_wrt_use: true,
            reserved,
            project: None,
            imports: BTreeSet::new(),
            own_statements: module.body.len(),
            recursive: BTreeMap::new(),
            halves: Halves::of_module(&module.body),
            effects: std::cell::OnceCell::new(),
            object_classes: BTreeMap::new(),
            left_out: crate::normalize::LeftOut::new(),
        }
    }

    /// The definition `function` names: the module's own, else its context's.
    fn definition(&self, function: &str) -> Option<&'a ruff_python_ast::StmtFunctionDef> {
        let own = &self.module.body[..self.own_statements.min(self.module.body.len())];
        crate::parse::find_function_in(own, function)
            .or_else(|| find_function(self.module, function))
    }

    /// Does `function` call itself, directly or through other functions of the module? Such
    /// a function is differentiated jointly (its derivative runs it again), never split.
    fn recursive(&mut self, function: &str) -> bool {
        if let Some(&known) = self.recursive.get(function) {
            return known;
        }
        let mut seen = BTreeSet::new();
        let mut todo = self.local_callees(function);
        let mut found = false;
        while let Some(g) = todo.pop() {
            if g == function {
                found = true;
                break;
            }
            if seen.insert(g.clone()) {
                todo.extend(self.local_callees(&g));
            }
        }
        self.recursive.insert(function.to_string(), found);
        found
    }

    /// The functions of the module that `function` calls.
    fn local_callees(&self, function: &str) -> Vec<String> {
        let Some(def) = self.definition(function) else {
            return Vec::new();
        };
        let Ok(norm) = self.normalized(self.module_file, def, false) else {
            return Vec::new();
        };
        crate::ir::all_statements(&norm.function.body)
            .into_iter()
            .filter_map(|s| match s {
                Stmt::Assign {
                    value:
                        crate::ir::Expr::Call {
                            callee:
                                crate::ir::Callee::Function {
                                    text, local: true, ..
                                },
                            ..
                        },
                    ..
                } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// The IR of `def` (see [`normalized_with`]).
    fn normalized(
        &self,
        file: SourceFile<'_>,
        def: &StmtFunctionDef,
        forward: bool,
    ) -> R<Normalized> {
        let context = crate::normalize::Context {
            halves: Some(&self.halves),
            effects: Some(self.effects()),
            recipes: Some(self.recipes),
            generated: !self.check_wrt_use,
            // Module functions are inlined only where their ranges index this text.
            module: std::ptr::eq(file.text, self.module_file.text).then_some(&self.module.body[..]),
            object_classes: Some(&self.object_classes),
            left_out: Some(&self.left_out),
        };
        normalized_with(file, &self.scope, def, self.recipes, forward, context)
    }

    /// The effect summaries of the module's functions.
    pub fn effects(&self) -> &crate::effects::Effects {
        self.effects.get_or_init(|| {
            crate::effects::Effects::of_module(&self.module.body, &self.scope, self.recipes)
        })
    }

    /// Marks `function` as being differentiated (so a call back into it is reported).
    pub fn in_progress_push(&mut self, function: &str) {
        self.in_progress.push(function.to_string());
    }

    /// A module-level name for a new generated function.
    pub fn function_name(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        while self.reserved.contains(&name) {
            name.push('_');
        }
        self.reserved.insert(name.clone());
        name
    }

    /// Differentiates `def` (read from `file`) as described by `spec`; returns the entry name
    /// and the seed parameter's name.
    pub fn derive(
        &mut self,
        def: &StmtFunctionDef,
        file: SourceFile<'_>,
        spec: &Spec<'_>,
    ) -> R<(String, String)> {
        // A derivative callers could call too (seed by keyword, joint, only the gradients):
        // a recursive call of the function calls it rather than a copy.
        let key = (def.name.to_string(), spec.wrt.to_vec());
        let callable = spec.seed == SeedStyle::DefaultOne
            && spec.motion == Motion::Joint
            && !spec.preserve_result;
        // A top-level definition the module defines again later is not what a call of its
        // name reaches (Python calls the last one): its derivative is not the calls' either.
        let replaced =
            self.module.body.iter().any(
                |s| matches!(s, ruff_python_ast::Stmt::FunctionDef(f) if std::ptr::eq(f, def)),
            ) && self
                .definition(&key.0)
                .is_some_and(|d| !std::ptr::eq(d, def));
        if callable && !replaced && !self.done.contains_key(&key) {
            if let Ok(norm) = self.normalized(file, def, false) {
                let seed = seed_param_name(&norm, &Arc::new(self.reserved.clone()));
                self.done.insert(key, (spec.name.clone(), seed));
            }
        }
        self.in_progress.push(def.name.to_string());
        let result = self.derive_inner(def, file, spec);
        self.in_progress.pop();
        result
    }

    /// [`Self::derive_attempt`], again without each `if` branch it refuses (see
    /// `normalize::branches`): a branch that cannot be differentiated raises if it runs.
    fn derive_inner(
        &mut self,
        def: &StmtFunctionDef,
        file: SourceFile<'_>,
        spec: &Spec<'_>,
    ) -> R<(String, String)> {
        self.leaving_out_branches(def, file, |driver| driver.derive_attempt(def, file, spec))
    }

    /// `attempt` (a derivative of `def`), made again without each `if` branch of `def` it
    /// refuses, until it succeeds or refuses something else.
    fn leaving_out_branches<T>(
        &mut self,
        def: &StmtFunctionDef,
        file: SourceFile<'_>,
        mut attempt: impl FnMut(&mut Self) -> R<T>,
    ) -> R<T> {
        let mut left_out = 0;
        loop {
            match attempt(self) {
                Err(refusal) if left_out < crate::normalize::MAX_LEFT_OUT => {
                    let Some(branch) = crate::normalize::branch_of(def, file, &refusal) else {
                        return Err(refusal);
                    };
                    if self.left_out.contains_key(&branch) {
                        return Err(refusal);
                    }
                    self.left_out.insert(branch, refusal);
                    left_out += 1;
                }
                result => return result,
            }
        }
    }

    fn derive_attempt(
        &mut self,
        def: &StmtFunctionDef,
        file: SourceFile<'_>,
        spec: &Spec<'_>,
    ) -> R<(String, String)> {
        let norm = with_updates(self.normalized(file, def, false)?, spec.updates);
        let (act, wrt_names) = analyze(&norm, spec.wrt, self.recipes, file)?;
        if self.check_wrt_use && self.in_progress.len() <= 1 {
            check_wrt_use(&norm, &act, &wrt_names, self.recipes, file)?;
        }
        let reserved = Arc::new(self.reserved.clone());
        let recipes = self.recipes;
        let optimized = self.optimized;
        let mut packaged = derive_function(
            &norm, &act, &wrt_names, file, spec, recipes, &reserved, self, optimized,
        )?;
        for f in &mut packaged.functions {
            if self.optimized {
                optimize::optimize(&mut f.body);
            }
            optimize::tidy_comments(&mut f.body);
        }
        self.functions.extend(packaged.functions);
        Ok((spec.name.clone(), packaged.seed_param))
    }
}

/// The IR of `def`: its body, or, when the user wrote a recipe for the function itself (for
/// this mode), a call the recipe differentiates.
/// The name of the derivative of `function` w.r.t. parameter positions `wrt`, before clashes
/// are avoided: `d<f>` for the first parameter, `d<f>_d<p>_d<q>` otherwise; a method
/// `Model.forward` is `dModel_forward`.
pub fn derivative_stem(function: &str, params: &[String], wrt: &[usize]) -> String {
    let function = function.replace('.', "_");
    if wrt == [0] {
        format!("d{function}")
    } else {
        format!(
            "d{function}_{}",
            wrt.iter()
                .map(|&i| format!("d{}", params.get(i).map(String::as_str).unwrap_or("x")))
                .collect::<Vec<_>>()
                .join("_")
        )
    }
}

pub fn normalized(
    file: SourceFile<'_>,
    scope: &ModuleScope,
    def: &StmtFunctionDef,
    recipes: &RecipeSet,
    forward: bool,
) -> R<Normalized> {
    normalized_with(
        file,
        scope,
        def,
        recipes,
        forward,
        crate::normalize::Context::default(),
    )
}

/// [`normalized`], with what is known of the module around the function (its effect
/// summaries; the generated helper halves to inline when generated code is differentiated
/// again).
pub fn normalized_with(
    file: SourceFile<'_>,
    scope: &ModuleScope,
    def: &StmtFunctionDef,
    recipes: &RecipeSet,
    forward: bool,
    context: crate::normalize::Context<'_>,
) -> R<Normalized> {
    let own = if forward {
        recipes.tangents.get(def.name.as_str())
    } else {
        recipes.adjoints.get(def.name.as_str())
    };
    if own.is_some_and(|r| r.user) {
        crate::normalize::through_recipe(file, scope, def)
    } else {
        crate::normalize::normalize_with(file, scope, def, context)
    }
}

/// Activity analysis of a normalized function w.r.t. parameter positions `wrt`, with the
/// checks that the requested derivative exists. Returns the activity and the `wrt` names.
pub fn analyze(
    norm: &Normalized,
    wrt: &[usize],
    recipes: &RecipeSet,
    file: SourceFile<'_>,
) -> R<(Activity, Vec<String>)> {
    let f = &norm.function;
    let mut wrt_names = Vec::new();
    if wrt.is_empty() {
        return Err(Diagnostic::without_span(
            DiagnosticKind::InvalidWrt,
            format!(
                "no parameter of `{}` to differentiate with respect to: name at least one",
                f.name
            ),
            file.path,
        ));
    }
    if let Some((_, &i)) = wrt.iter().enumerate().find(|(k, i)| wrt[..*k].contains(i)) {
        let name = f
            .params
            .get(i)
            .map_or_else(|| format!("position {i}"), |p| format!("`{}`", p.name));
        return Err(Diagnostic::without_span(
            DiagnosticKind::InvalidWrt,
            format!("{name} is named twice in wrt: each parameter gets one gradient"),
            file.path,
        ));
    }
    for &i in wrt {
        match f.params.get(i) {
            Some(p) => wrt_names.push(p.name.clone()),
            None => {
                return Err(Diagnostic::without_span(
                    DiagnosticKind::InvalidWrt,
                    format!(
                        "`{}` has {} parameter(s); cannot differentiate with respect to position {i}",
                        f.name,
                        f.params.len()
                    ),
                    file.path,
                ));
            }
        }
    }
    if let Some((start, end)) = norm.returns_nothing {
        return Err(file.diagnostic(
            DiagnosticKind::NotDifferentiable,
            format!("function `{}` returns nothing to differentiate", f.name),
            start,
            end,
        ));
    }
    if let Some((stmt, stack)) = activity::foreign_stack_use(&f.body) {
        let o = stmt.origin();
        return Err(file
            .diagnostic(
                DiagnosticKind::Unsupported,
                format!("`{stack}` holds values saved by another function (a split-motion forward pass), which cannot be differentiated"),
                o.start,
                o.end,
            )
            .with_help("differentiate the joint-motion derivative instead (`tangent.grad`, or `motion='joint'`)"));
    }
    if let Some((stmt, why)) = activity::unpaired_stack_use(&f.body) {
        let o = stmt.origin();
        return Err(file
            .diagnostic(DiagnosticKind::Unsupported, format!("cannot differentiate this use of Tangent's stack: {why}"), o.start, o.end)
            .with_help(
                "a value saved with `stack.append(v)` must come back as `v = stack.pop()`, as in generated code; \
                 `tangent.push(stack, v, op_id)` pairs with `tangent.pop(stack, op_id)` of the same op_id",
            ));
    }
    let act = activity::analyze(f, &wrt_names, &norm.result, recipes);
    Ok((act, wrt_names))
}

/// The derivative the user asked for exists: each `wrt` parameter reaches the output through
/// differentiable operations (see `check_differentiable_use`). Not checked for the
/// derivatives of the helpers it calls: an argument a helper ignores, or only compares,
/// simply has a zero derivative there (`h(x, c=2 * x)` with `def h(p, c): ...` that never
/// differentiably uses `c`), also when a generated derivative that passes `c` to
/// `tangent.init_grad(c)` is differentiated again.
pub fn check_wrt_use(
    norm: &Normalized,
    act: &Activity,
    wrt_names: &[String],
    recipes: &RecipeSet,
    file: SourceFile<'_>,
) -> R<()> {
    for p in wrt_names {
        check_differentiable_use(&norm.function, p, act, recipes, file)?;
    }
    Ok(())
}

/// The generated functions of one derivative (one, or three in split motion), unoptimized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packaged {
    pub functions: Vec<FunctionText>,
    pub seed_param: String,
}

/// Reverse mode on an analysed function, packaged as Python functions (before optimization).
#[allow(clippy::too_many_arguments)]
pub fn derive_function(
    norm: &Normalized,
    act: &Activity,
    wrt_names: &[String],
    file: SourceFile<'_>,
    spec: &Spec<'_>,
    recipes: &RecipeSet,
    reserved: &Arc<BTreeSet<String>>,
    callees: &mut dyn Callees,
    optimized: bool,
) -> R<Packaged> {
    let f = &norm.function;
    let mut functions = Vec::new();
    let mut names = Names::with_shared(taken_names(norm), reserved.clone());

    // The seed is named after the function (`bloss`), so renaming a local never changes
    // the derivative's signature; one seed per output of a tuple return.
    let seed_param = names.adjoint(&f.name);
    let seeds: Vec<String> = if norm.result_is_tuple {
        (0..norm.result.len())
            .map(|i| format!("{seed_param}[{i}]"))
            .collect()
    } else {
        vec![seed_param.clone()]
    };
    let outputs = norm.result.clone();
    let mut reverse_names = names;
    let sweeps = {
        let mut rev = Reverse::new(
            f,
            act,
            recipes,
            file,
            &mut reverse_names,
            callees,
            optimized,
        );
        // A helper's halves leave what they changed as the caller's backward pass needs it.
        rev.redo_parameters = spec.halves.is_none();
        rev.run(&outputs, &seeds, wrt_names)?
    };
    let mut names = reverse_names;

    // Adjoints may share arrays inside the gradient (they are never written in place); what
    // is returned does not: each gradient is its own array, never the caller's seed.
    let owned = format!(
        "tangent.unshared({}, seed={seed_param})",
        sweeps.gradients.join(", ")
    );
    let grads = owned.clone();
    let value_expr = if norm.result_is_tuple {
        format!(
            "({})",
            outputs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        outputs[0].to_string()
    };
    let any_default = positional_default(f);
    // A returned name bound once to a tuple is seeded like a tuple return.
    let tuple_len = if norm.result_is_tuple {
        Some(outputs.len())
    } else {
        outputs[0]
            .name()
            .and_then(|n| single_tuple_definition(&f.body, n))
    };
    let seed_default = match spec.seed {
        SeedStyle::DefaultOne => Some(if let Some(n) = tuple_len {
            format!(
                "({})",
                vec!["1.0"; n].join(", ") + if n == 1 { "," } else { "" }
            )
        } else {
            "1.0".to_string()
        }),
        SeedStyle::Required if any_default => Some("None".to_string()),
        SeedStyle::Required | SeedStyle::Leading => None,
    };
    let leading = spec.seed == SeedStyle::Leading;
    let seed_decl = match &seed_default {
        Some(d) => format!("{seed_param}={d}"),
        None => seed_param.clone(),
    };
    let doc = Some(format!(
        "Gradient of `{}` with respect to {}, generated by Tangent.",
        f.name,
        wrt_names
            .iter()
            .map(|w| format!("`{w}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // The value returned with `preserve_result`: snapshot it if the backward sweep restores it.
    let mut forward = sweeps.forward;
    let mut backward = sweeps.backward;
    let mut value_ref = value_expr.clone();
    // The value returned before the backward sweep runs (a split motion's forward
    // function) or after it: kept aside when the backward sweep restores it, as a
    // snapshot when it may put back contents of its objects in place.
    let split_motion = spec.halves.is_none() && spec.motion == Motion::Split;
    let rebound = spec.preserve_result
        && outputs
            .iter()
            .any(|o| o.name().is_some_and(|n| backward_assigns(&backward, n)));
    let in_place = (spec.preserve_result || split_motion) && sweeps.result_restored_in_place;
    if rebound || in_place {
        let v = names.fresh("value");
        let value = if in_place {
            format!("tangent.snapshot({value_expr})")
        } else {
            value_expr.clone()
        };
        forward.push(Code::assign(&v, &value, false));
        value_ref = v;
    }
    // As in the original tangent, the value follows the gradients in one flat tuple.
    let ret = if spec.preserve_result {
        if sweeps.gradients.len() == 1 {
            format!("return {owned}, {value_ref}")
        } else {
            format!("return (*{owned}, {value_ref})")
        }
    } else {
        format!("return {grads}")
    };

    if let Some((fwd_name, bwd_name)) = &spec.halves {
        functions.extend(helper_halves(
            f,
            &sweeps.stack,
            sweeps.prologue,
            forward,
            backward,
            &sweeps.needed,
            &sweeps.defined_at_end,
            &value_expr,
            &sweeps.gradients,
            &seed_param,
            fwd_name,
            bwd_name,
        ));
        return Ok(Packaged {
            functions,
            seed_param,
        });
    }
    match spec.motion {
        Motion::Joint => {
            let mut body = sweeps.prologue;
            body.extend(forward);
            if !backward.is_empty() {
                body.push(Code::Comment("Backward pass".into()));
            }
            body.append(&mut backward);
            body.push(Code::effect(&ret));
            functions.push(FunctionText {
                header: format!(
                    "{}({})",
                    spec.name,
                    signature(f, std::slice::from_ref(&seed_decl), leading)
                ),
                docstring: doc,
                body,
            });
        }
        Motion::Split => {
            // The forward function returns the value and the state the backward one needs.
            let assigned = assigned_names(&f.body);
            // Only what the backward function reads.
            let mut state: Vec<String> = f
                .params
                .iter()
                .map(|p| p.name.clone())
                .filter(|p| sweeps.needed.contains(p))
                .collect();
            for n in &sweeps.needed {
                if assigned.contains(n) && !state.contains(n) {
                    state.push(n.clone());
                }
            }
            state.extend(sweeps.carried.iter().cloned());
            let mut prologue = sweeps.prologue;
            let uses_stack = prologue
                .iter()
                .any(|c| matches!(c, Code::Stmt { defs, .. } if defs.contains(&sweeps.stack)));
            if uses_stack {
                state.insert(0, sweeps.stack.clone());
            }
            for n in &state {
                if assigned.contains(n)
                    && !sweeps.defined_at_end.contains(n)
                    && !prologue_defines(&prologue, n)
                {
                    prologue.push(Code::assign(n, "None", false));
                }
            }
            let state_tuple = format!(
                "({}{})",
                state.join(", "),
                if state.len() == 1 { "," } else { "" }
            );
            let fwd_name = callees.function_name(&format!("{}_forward", f.name));
            let bwd_name = callees.function_name(&format!("{}_backward", f.name));
            let mut fbody = prologue;
            fbody.extend(forward);
            fbody.push(Code::effect(&format!("return {value_ref}, {state_tuple}")));
            let mut bbody = vec![Code::stmt(
                &format!(
                    "{} = _state",
                    state_tuple
                        .trim_start_matches('(')
                        .trim_end_matches(')')
                        .trim_end_matches(',')
                ),
                state.clone(),
                false,
            )];
            if state.len() == 1 {
                bbody = vec![Code::stmt(
                    &format!("({},) = _state", state[0]),
                    state.clone(),
                    false,
                )];
            }
            if state.is_empty() {
                bbody.clear();
            }
            bbody.append(&mut backward);
            bbody.push(Code::effect(&format!("return {grads}")));
            let seed_decl_bwd = match &seed_default {
                Some(d) => format!("{seed_param}={d}"),
                None => seed_param.clone(),
            };
            functions.push(FunctionText {
                    header: format!("{fwd_name}({})", signature(f, &[], false)),
                    docstring: Some(format!("Forward pass of `{}`: returns its value and the state its backward pass needs.", f.name)),
                    body: fbody,
                });
            functions.push(FunctionText {
                header: format!("{bwd_name}(_state, {seed_decl_bwd})"),
                docstring: Some(format!("Backward pass of `{}`.", f.name)),
                body: bbody,
            });
            let value_var = names.fresh("value");
            let mut wbody = vec![Code::stmt(
                &format!(
                    "{value_var}, _state = {fwd_name}({})",
                    forwarded_arguments(f)
                ),
                vec![value_var.clone(), "_state".into()],
                false,
            )];
            if spec.preserve_result {
                if wrt_names.len() > 1 {
                    wbody.push(Code::effect(&format!(
                        "return (*{bwd_name}(_state, {seed_param}), {value_var})"
                    )));
                } else {
                    wbody.push(Code::effect(&format!(
                        "return {bwd_name}(_state, {seed_param}), {value_var}"
                    )));
                }
            } else {
                wbody.push(Code::effect(&format!(
                    "return {bwd_name}(_state, {seed_param})"
                )));
            }
            functions.push(FunctionText {
                header: format!(
                    "{}({})",
                    spec.name,
                    signature(f, std::slice::from_ref(&seed_decl), leading)
                ),
                docstring: doc,
                body: wbody,
            });
        }
    }
    Ok(Packaged {
        functions,
        seed_param,
    })
}

/// The two halves of a called helper's derivative (see `Callees::split`): the forward half
/// takes the caller's stack first, runs the forward sweep, pushes what the backward sweep
/// reads (its state, one value at a time, so that pushes and pops pair by name when the
/// caller is differentiated again) and returns the value; the backward half pops the state,
/// runs the backward sweep and returns the adjoints.
#[allow(clippy::too_many_arguments)]
fn helper_halves(
    f: &crate::ir::Function,
    stack: &str,
    prologue: Vec<Code>,
    forward: Vec<Code>,
    backward: Vec<Code>,
    needed: &BTreeSet<String>,
    defined_at_end: &BTreeSet<String>,
    value: &str,
    gradients: &[String],
    seed_param: &str,
    fwd_name: &str,
    bwd_name: &str,
) -> Vec<FunctionText> {
    let assigned = assigned_names(&f.body);
    let mut state: Vec<String> = f
        .params
        .iter()
        .map(|p| p.name.clone())
        .filter(|p| needed.contains(p))
        .collect();
    for n in needed {
        if assigned.contains(n) && !state.contains(n) {
            state.push(n.clone());
        }
    }
    // The stack is the caller's: not created here.
    let mut fbody: Vec<Code> = prologue
        .into_iter()
        .filter(|c| !matches!(c, Code::Stmt { defs, .. } if defs.iter().any(|d| d == stack)))
        .collect();
    for n in &state {
        if assigned.contains(n) && !defined_at_end.contains(n) && !prologue_defines(&fbody, n) {
            fbody.push(Code::assign(n, "None", false));
        }
    }
    fbody.extend(forward);
    if !state.is_empty() {
        fbody.push(Code::Comment(format!("Saved for `{bwd_name}`")));
    }
    for n in &state {
        fbody.push(Code::effect(&format!("{stack}.append({n})")));
    }
    fbody.push(Code::effect(&format!("return {value}")));
    let mut bbody: Vec<Code> = state
        .iter()
        .rev()
        .map(|n| Code::stmt(&format!("{n} = {stack}.pop()"), vec![n.clone()], false))
        .collect();
    bbody.extend(backward);
    let grads = if gradients.len() == 1 {
        gradients[0].clone()
    } else {
        format!("({})", gradients.join(", "))
    };
    bbody.push(Code::effect(&format!("return {grads}")));
    vec![
        FunctionText {
            header: format!("{fwd_name}({stack}, {})", signature(f, &[], false)),
            docstring: Some(format!(
                "Runs `{}` once for a caller's gradient, saving on `{stack}` what `{bwd_name}` reads.",
                f.name
            )),
            body: fbody,
        },
        FunctionText {
            header: format!("{bwd_name}({stack}, {seed_param})"),
            docstring: Some(format!(
                "Backward pass of `{}`, from what `{fwd_name}` saved.",
                f.name
            )),
            body: bbody,
        },
    ]
}

impl Callees for Driver<'_> {
    fn function_name(&mut self, base: &str) -> String {
        Driver::function_name(self, base)
    }

    fn mutated_params(&self, function: &str) -> Vec<String> {
        if function.contains('.') {
            return self
                .project
                .and_then(|p| p.external_signature(function))
                .map(|s| s.1)
                .unwrap_or_default();
        }
        self.definition(function)
            .map(crate::normalize::mutated_params)
            .unwrap_or_default()
    }

    fn params(&self, function: &str) -> Option<Vec<String>> {
        if let Some(def) = self.definition(function).filter(|_| function.contains('.')) {
            return Some(crate::parse::param_names(def)); // a method: `Class.method`
        }
        if function.contains('.') {
            return self
                .project
                .and_then(|p| p.external_signature(function))
                .map(|s| s.0);
        }
        let def = self.definition(function)?;
        Some(crate::parse::param_names(def))
    }

    fn derivative(&mut self, function: &str, wrt: &[usize], site: &Stmt) -> R<(String, String)> {
        let method = function.contains('.') && self.definition(function).is_some();
        if let (true, false, Some(project)) = (function.contains('.'), method, self.project) {
            // Another module's derivative: imported from its gradient module.
            let (alias, seed, import) = project.external_derivative(function, wrt)?;
            self.imports.insert(import);
            return Ok((alias, seed));
        }
        let key = (function.to_string(), wrt.to_vec());
        if let Some(done) = self.done.get(&key) {
            return Ok(done.clone());
        }
        let Some(def) = self.definition(function) else {
            let o = site.origin();
            return Err(self.module_file.diagnostic(
                DiagnosticKind::NoRecipe,
                format!("no source for `{function}`"),
                o.start,
                o.end,
            ));
        };
        let params = self.params(function).unwrap_or_default();
        let name = self.function_name(&derivative_stem(function, &params, wrt));
        let file = self.module_file;
        // The same function as `tangent.grad` would give: callers pass the seed by keyword.
        let spec = Spec {
            name: name.clone(),
            wrt,
            seed: SeedStyle::DefaultOne,
            preserve_result: false,
            motion: Motion::Joint,
            halves: None,
            updates: &[],
        };
        // Known before it is generated, so that a recursive call calls it.
        let norm = self.normalized(file, def, false)?;
        let seed = seed_param_name(&norm, &Arc::new(self.reserved.clone()));
        self.done.insert(key.clone(), (name, seed));
        let result = self.derive(def, file, &spec);
        if result.is_err() {
            self.done.remove(&key);
        }
        result
    }

    fn summary(&self, function: &str) -> Option<crate::effects::Summary> {
        self.effects().get(function).cloned()
    }

    fn user_code(&self) -> bool {
        self.check_wrt_use
    }

    fn split(
        &mut self,
        function: &str,
        wrt: &[usize],
        updates: &[usize],
        site: &Stmt,
    ) -> R<Option<(String, String)>> {
        let method = function.contains('.') && self.definition(function).is_some();
        // Another module's function: its joint derivative, imported from its gradient module.
        if (function.contains('.') && !method) || self.recursive(function) {
            return Ok(None);
        }
        let key = (format!("split {function} {updates:?}"), wrt.to_vec());
        if let Some((forward, backward)) = self.done.get(&key) {
            return Ok(Some((forward.clone(), backward.clone())));
        }
        let Some(def) = self.definition(function) else {
            let o = site.origin();
            return Err(self.module_file.diagnostic(
                DiagnosticKind::NoRecipe,
                format!("no source for `{function}`"),
                o.start,
                o.end,
            ));
        };
        let params = self.params(function).unwrap_or_default();
        // One stem for both halves (`<stem>_forward` / `<stem>_backward`), free for both, so
        // that generated code differentiated again pairs them (`normalize::Halves`).
        let mut stem = halves_stem(function, &params, wrt);
        while self.reserved.contains(&format!("{stem}_forward"))
            || self.reserved.contains(&format!("{stem}_backward"))
        {
            stem.push('_');
        }
        let forward = self.function_name(&format!("{stem}_forward"));
        let backward = self.function_name(&format!("{stem}_backward"));
        self.done
            .insert(key.clone(), (forward.clone(), backward.clone()));
        let spec = Spec {
            name: forward.clone(),
            wrt,
            seed: SeedStyle::Required,
            preserve_result: false,
            motion: Motion::Joint,
            halves: Some((forward.clone(), backward.clone())),
            updates,
        };
        let file = self.module_file;
        match self.derive(def, file, &spec) {
            Ok(_) => Ok(Some((forward, backward))),
            Err(e) => {
                self.done.remove(&key);
                Err(e)
            }
        }
    }
}

/// `norm` with the final values of the parameters at `updates` (which it writes into) as
/// outputs after its result: the derivative of a call that gives the caller those new values
/// (`ir::InPlace::Updates`). The result is packed into one value first when it is a tuple.
pub fn with_updates(mut norm: Normalized, updates: &[usize]) -> Normalized {
    if updates.is_empty() {
        return norm;
    }
    // The result under a name of its own: its adjoint must not be the seed's name (a result
    // named after the function has the seed's adjoint name, `bf`).
    let mut packed = "_returned".to_string();
    while norm.function.names.contains(&packed) {
        packed.push('_');
    }
    norm.function.names.insert(packed.clone());
    let origin = crate::ir::Origin {
        text: "return".into(),
        start: 0,
        end: 0,
        id: 0,
    };
    let value = if norm.result_is_tuple {
        crate::ir::Expr::Tuple(norm.result.clone())
    } else {
        crate::ir::Expr::Atom(norm.result[0].clone())
    };
    norm.function.body.push(Stmt::Assign {
        target: packed.clone(),
        value,
        origin,
        inplace: None,
    });
    let result = Atom::Name(packed);
    let mut outputs = vec![result];
    outputs.extend(
        updates
            .iter()
            .filter_map(|&i| norm.function.params.get(i))
            .map(|p| Atom::Name(p.name.clone())),
    );
    norm.result = outputs;
    norm.result_is_tuple = true;
    norm.returns_nothing = None;
    norm
}

/// The stem of the names of a helper's two halves (`<stem>_forward`, `<stem>_backward`):
/// the function's name, with the parameters when not only the first is differentiated.
pub fn halves_stem(function: &str, params: &[String], wrt: &[usize]) -> String {
    derivative_stem(function, params, wrt)
        .strip_prefix('d')
        .unwrap_or_default()
        .to_string()
}

/// A parameter differentiated with respect to must reach the output through differentiable
/// operations; one that is only used as a loop bound, an index or in a condition has no
/// derivative, and saying so beats returning a silent zero.
fn check_differentiable_use(
    f: &crate::ir::Function,
    p: &str,
    act: &Activity,
    recipes: &RecipeSet,
    file: SourceFile<'_>,
) -> R<()> {
    if act.varied.contains(p) && act.useful.contains(p) {
        return Ok(());
    }
    if activity::has_differentiable_use(&f.body, p, recipes) {
        return Ok(());
    }
    let Some(stmt) = activity::first_use(&f.body, p) else {
        return Ok(());
    };
    let o = stmt.origin();
    let text = &file.text[o.start..o.end.min(file.text.len())];
    let offset = find_word(text, p).unwrap_or(0);
    let what = match stmt {
        Stmt::For { .. } => "as a loop bound",
        Stmt::If { .. } | Stmt::While { .. } => "in a condition",
        _ => "only in ways that have no derivative (indices, sizes, comparisons, loop bounds)",
    };
    Err(file
        .diagnostic(
            DiagnosticKind::NotDifferentiable,
            format!(
                "cannot differentiate `{}` with respect to `{p}`: it is used {what}",
                f.name
            ),
            o.start + offset,
            o.start + offset + p.len(),
        )
        .with_help(format!(
            "remove `{p}` from `wrt`, or make the output depend on it through arithmetic"
        )))
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(i) = text[start..].find(word) {
        let at = start + i;
        let before = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let end = at + word.len();
        let after =
            end >= bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_');
        if before && after {
            return Some(at);
        }
        start = at + word.len();
    }
    None
}

fn backward_assigns(code: &[Code], name: &str) -> bool {
    code.iter().any(|c| match c {
        Code::Stmt { defs, .. } => defs.iter().any(|d| d == name),
        Code::If { body, orelse, .. } => {
            backward_assigns(body, name) || backward_assigns(orelse, name)
        }
        Code::Loop { body, .. } => backward_assigns(body, name),
        Code::Comment(_) => false,
    })
}

fn assigned_names(body: &[Stmt]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    fn walk(body: &[Stmt], out: &mut BTreeSet<String>) {
        for s in body {
            match s {
                Stmt::Assign { target, .. } => {
                    out.insert(target.clone());
                }
                Stmt::If { body, orelse, .. } => {
                    walk(body, out);
                    walk(orelse, out);
                }
                Stmt::For { target, body, .. } => {
                    out.insert(target.clone());
                    walk(body, out);
                }
                Stmt::While { body, .. } => walk(body, out),
                _ => {}
            }
        }
    }
    walk(body, &mut out);
    out
}

fn prologue_defines(prologue: &[Code], name: &str) -> bool {
    prologue
        .iter()
        .any(|c| matches!(c, Code::Stmt { defs, .. } if defs.iter().any(|d| d == name)))
}

/// The length of the tuple `name` is bound to, if its only assignment is a tuple display.
fn single_tuple_definition(body: &[Stmt], name: &str) -> Option<usize> {
    match crate::ir::assignments_of(body, name).as_slice() {
        [
            Stmt::Assign {
                value: crate::ir::Expr::Tuple(items),
                ..
            },
        ] => Some(items.len()),
        _ => None,
    }
}

/// Names a derivative of `norm` must not invent (besides the module's): the function's own.
fn taken_names(norm: &Normalized) -> BTreeSet<String> {
    let mut taken = norm.function.names.clone();
    taken.extend(["_stack", "_state", "tangent", "numpy", "_"].map(String::from));
    taken
}

/// The seed parameter `derive_function` gives the derivative of `norm`.
pub fn seed_param_name(norm: &Normalized, reserved: &Arc<BTreeSet<String>>) -> String {
    Names::with_shared(taken_names(norm), reserved.clone()).adjoint(&norm.function.name)
}

impl crate::forward::ForwardCallees for Driver<'_> {
    fn params(&self, function: &str) -> Option<Vec<String>> {
        Callees::params(self, function)
    }

    fn jvp(
        &mut self,
        function: &str,
        wrt: &[usize],
        updates: &[usize],
        site: &Stmt,
    ) -> R<(String, Vec<String>)> {
        let key = (format!("forward:{function} {updates:?}"), wrt.to_vec());
        if let Some((name, tangents)) = self.done.get(&key) {
            return Ok((
                name.clone(),
                tangents.split(',').map(str::to_string).collect(),
            ));
        }
        let Some(def) = self.definition(function) else {
            let o = site.origin();
            return Err(self.module_file.diagnostic(
                DiagnosticKind::NoRecipe,
                format!("no source for `{function}`"),
                o.start,
                o.end,
            ));
        };
        let params = crate::parse::param_names(def);
        let function = &function.replace('.', "_");
        let mut base = format!(
            "jvp_{function}{}",
            if wrt == [0] {
                String::new()
            } else {
                wrt.iter()
                    .map(|&i| format!("_d{}", params.get(i).map(String::as_str).unwrap_or("x")))
                    .collect::<String>()
            }
        );
        if !updates.is_empty() {
            base.push_str("_updating");
        }
        let name = self.function_name(&base);
        let file = self.module_file;
        // The caller runs it instead of the function: it returns the value too.
        let spec = Spec {
            name: name.clone(),
            wrt,
            seed: SeedStyle::Required,
            preserve_result: true,
            motion: Motion::Joint,
            halves: None,
            updates,
        };
        // Known before it is generated, so that a recursive call calls it.
        let norm = self.normalized(file, def, true)?;
        let wrt_names: Vec<String> = wrt
            .iter()
            .filter_map(|&i| norm.function.params.get(i).map(|p| p.name.clone()))
            .collect();
        let mut names = Names::with_shared(taken_names(&norm), Arc::new(self.reserved.clone()));
        let expected: Vec<String> = wrt_names
            .iter()
            .map(|p| crate::forward::tangent_name(&mut names, p))
            .collect();
        self.done
            .insert(key.clone(), (name.clone(), expected.join(",")));
        self.in_progress.push(function.to_string());
        let result = self.derive_forward(def, file, &spec);
        self.in_progress.pop();
        let tangents = match result {
            Ok(t) => t,
            Err(e) => {
                self.done.remove(&key);
                return Err(e);
            }
        };
        debug_assert_eq!(tangents, expected, "tangent parameters named as announced");
        self.done.insert(key, (name.clone(), tangents.join(",")));
        Ok((name, tangents))
    }
}

impl Driver<'_> {
    /// Forward mode: `spec.name(<f's params>, d<p>...)` returning the tangent of the output
    /// (with the value after it when `spec.preserve_result`). Returns the tangent parameters.
    pub fn derive_forward(
        &mut self,
        def: &StmtFunctionDef,
        file: SourceFile<'_>,
        spec: &Spec<'_>,
    ) -> R<Vec<String>> {
        self.leaving_out_branches(def, file, |driver| {
            driver.derive_forward_attempt(def, file, spec)
        })
    }

    fn derive_forward_attempt(
        &mut self,
        def: &StmtFunctionDef,
        file: SourceFile<'_>,
        spec: &Spec<'_>,
    ) -> R<Vec<String>> {
        let norm = with_updates(self.normalized(file, def, true)?, spec.updates);
        let (act, wrt_names) = analyze(&norm, spec.wrt, self.recipes, file)?;
        // The request itself (a helper's forward derivative runs with its caller in progress).
        if self.check_wrt_use && self.in_progress.len() <= 1 {
            check_wrt_use(&norm, &act, &wrt_names, self.recipes, file)?;
        }
        let reserved = Arc::new(self.reserved.clone());
        let recipes = self.recipes;
        let f = &norm.function;
        let mut names = Names::with_shared(taken_names(&norm), reserved);
        let (body, tangent_params, outputs) = {
            // Forward mode reads only the checks (of the user's code): generated code
            // differentiated again needs no analysis (the bulk of an HVP's time otherwise).
            let sharing = if self.check_wrt_use {
                crate::aliases::analyze(
                    f,
                    &norm.result,
                    recipes,
                    &|n| self.effects().get(n).cloned(),
                    file,
                    true,
                )?
            } else {
                crate::aliases::Sharing::default()
            };
            // Names a check before a change in place reads may not be assigned yet (a later
            // iteration's): None until they are.
            let params: BTreeSet<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
            let checked: BTreeSet<String> = sharing
                .guarded
                .values()
                .flat_map(|g| g.names().cloned())
                .filter(|o| !params.contains(o.as_str()))
                .collect();
            let entry_guards = if self.check_wrt_use {
                sharing.entry_guards(f, file)
            } else {
                Vec::new()
            };
            let mut fwd = crate::forward::Forward::new(f, &act, recipes, file, &mut names, self);
            fwd.sharing = sharing;
            let tangent_params: Vec<String> = wrt_names.iter().map(|p| fwd.tangent(p)).collect();
            // Other parameters that become active (reassigned from active values) start with a
            // zero tangent.
            let mut body: Vec<Code> = checked
                .iter()
                .map(|o| Code::assign(o, "None", false))
                .collect();
            body.extend(entry_guards.iter().map(|g| Code::effect(g)));
            for p in &f.params {
                if act.is_active(&p.name) && !wrt_names.contains(&p.name) {
                    let dp = fwd.tangent(&p.name);
                    body.push(Code::assign(
                        &dp,
                        &format!("tangent.init_grad({})", p.name),
                        false,
                    ));
                }
            }
            body.extend(fwd.block(&f.body)?);
            let outputs: Vec<String> = norm
                .result
                .iter()
                .map(|o| match o {
                    Atom::Name(n) if act.is_active(n) => fwd.tangent(n),
                    other => format!("tangent.init_grad({other})"),
                })
                .collect();
            (body, tangent_params, outputs)
        };
        let jvp = if norm.result_is_tuple {
            format!(
                "({}{})",
                outputs.join(", "),
                if outputs.len() == 1 { "," } else { "" }
            )
        } else {
            outputs[0].clone()
        };
        // The caller owns what comes back: never one of their tangents (see `unshared`).
        let seed = if tangent_params.len() == 1 {
            tangent_params[0].clone()
        } else {
            format!("({})", tangent_params.join(", "))
        };
        let jvp = format!("tangent.unshared({jvp}, seed={seed})");
        let value = if norm.result_is_tuple {
            format!(
                "({})",
                norm.result
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            norm.result[0].to_string()
        };
        let mut body = body;
        body.push(Code::effect(&if spec.preserve_result {
            format!("return {jvp}, {value}")
        } else {
            format!("return {jvp}")
        }));
        if self.optimized {
            optimize::optimize(&mut body);
        }
        optimize::tidy_comments(&mut body);
        let leading = spec.seed == SeedStyle::Leading;
        let any_default = positional_default(f) && !leading;
        let tangent_decls: Vec<String> = tangent_params
            .iter()
            .map(|t| {
                if any_default {
                    format!("{t}=None")
                } else {
                    t.clone()
                }
            })
            .collect();
        self.functions.push(FunctionText {
            header: format!("{}({})", spec.name, signature(f, &tangent_decls, leading)),
            docstring: Some(format!(
                "Forward-mode derivative of `{}` along tangents of {}, generated by Tangent.",
                f.name,
                wrt_names
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            body,
        });
        Ok(tangent_params)
    }
}

/// A generated function's parameter list: `f`'s positional parameters as declared (`x`,
/// `scale=2.0`), then `extra` (seeds, tangents), then `*` and `f`'s keyword-only ones; with
/// `leading`, `extra` goes before the first positional parameter with a default.
fn signature(f: &crate::ir::Function, extra: &[String], leading: bool) -> String {
    let declared = |p: &crate::ir::Param| match &p.default {
        Some(d) => format!("{}={d}", p.name),
        None => p.name.clone(),
    };
    let mut parts: Vec<String> = f
        .params
        .iter()
        .filter(|p| !p.keyword_only)
        .map(declared)
        .collect();
    let at = if leading {
        f.params
            .iter()
            .filter(|p| !p.keyword_only)
            .take_while(|p| p.default.is_none())
            .count()
    } else {
        parts.len()
    };
    parts.splice(at..at, extra.iter().cloned());
    let keyword_only: Vec<String> = f
        .params
        .iter()
        .filter(|p| p.keyword_only)
        .map(declared)
        .collect();
    if !keyword_only.is_empty() {
        parts.push("*".into());
        parts.extend(keyword_only);
    }
    parts.join(", ")
}

/// Does a positional parameter of `f` have a default (so what follows it needs one too)?
fn positional_default(f: &crate::ir::Function) -> bool {
    f.params
        .iter()
        .any(|p| !p.keyword_only && p.default.is_some())
}

/// `f`'s parameters passed on to a function of the same signature: `x, scale, *, k=k`.
fn forwarded_arguments(f: &crate::ir::Function) -> String {
    f.params
        .iter()
        .map(|p| {
            if p.keyword_only {
                format!("{0}={0}", p.name)
            } else {
                p.name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
