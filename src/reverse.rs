//! Reverse mode: builds the forward sweep and the backward sweep of one function.
//!
//! The forward sweep is the primal code plus pushes of values that are overwritten and needed
//! later; the backward sweep walks the statements in reverse, instantiates recipes, and pops
//! the saved values. Adjoints are tracked with a definite-assignment state so that the first
//! contribution is a plain assignment, later ones accumulate, and an adjoint that is certainly
//! zero produces no code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::activity::Activity;
use crate::code::{Code, all_uses, is_empty, names_in, names_in_stmt};
use crate::diagnostics::{Diagnostic, DiagnosticKind};
use crate::ir::{Atom, Callee, Expr, Function, InPlace, Index, Stmt};
use crate::parse::SourceFile;
use crate::recipes::{Bound, RecipeSet, TemplateStmt};
use crate::shapes::{Fact, ShapeFacts, TemplateFacts};

/// Definite-assignment state of an adjoint variable in the backward sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Da {
    /// Holds no contribution yet: the adjoint is zero (its variable may hold a stale value).
    Zero,
    Assigned,
    /// Assigned on some paths; on the others it is `None`.
    Maybe,
}

fn merge(a: Da, b: Da) -> Da {
    if a == b { a } else { Da::Maybe }
}

/// The adjoints' definite-assignment states, and which adjoints may not have their
/// variable's exact shape (a seed as the caller gave it, an item of a container's adjoint):
/// the others do, which lets shape facts leave out helper calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct State {
    da: BTreeMap<String, Da>,
    inexact: BTreeSet<String>,
}

impl State {
    fn get(&self, v: &str) -> Da {
        self.da.get(v).copied().unwrap_or(Da::Zero)
    }
    fn set(&mut self, v: &str, d: Da) {
        if d == Da::Zero {
            self.da.remove(v);
            self.inexact.remove(v);
        } else {
            self.da.insert(v.to_string(), d);
        }
    }
    fn is_exact(&self, v: &str) -> bool {
        !self.inexact.contains(v)
    }
    fn set_exact(&mut self, v: &str, exact: bool) {
        if exact {
            self.inexact.remove(v);
        } else {
            self.inexact.insert(v.to_string());
        }
    }
    fn merge(&self, other: &State) -> State {
        let keys: BTreeSet<&String> = self.da.keys().chain(other.da.keys()).collect();
        State {
            da: keys
                .into_iter()
                .map(|k| (k.clone(), merge(self.get(k), other.get(k))))
                .filter(|(_, d)| *d != Da::Zero)
                .collect(),
            inexact: self.inexact.union(&other.inexact).cloned().collect(),
        }
    }
}

/// Backward code before the values to save are known.
#[derive(Debug, Clone)]
enum B {
    Code(Code),
    /// Restore `var` to the value it had before the statement (a pop), if it was saved.
    RestoreVar {
        var: String,
        key: usize,
    },
    /// Put back in place the contents `var`'s object had before the call `key` changed it
    /// (an argument a helper writes into), if they were saved.
    RestoreUpdated {
        var: String,
        key: usize,
    },
    /// Restore `var[index]` (pushed by the forward sweep before the write).
    RestoreItem {
        var: String,
        index: Index,
        key: usize,
    },
    /// Undo `var.append(...)`.
    RestoreAppend {
        var: String,
        key: usize,
    },
    /// Undo `var.pop()` (its last element was pushed by the forward sweep).
    RestorePopLast {
        var: String,
        key: usize,
    },
    /// `adj = None` when `adj` is one of the adjoints that can be `None`.
    ResetNone(String),
    If {
        test: Expr,
        body: Vec<B>,
        orelse: Vec<B>,
    },
    Loop {
        key: usize,
        target: Option<String>,
        body: Vec<B>,
    },
    /// `if adj is not None:`
    Guard {
        adj: String,
        body: Vec<B>,
    },
}

/// Fresh, deterministic names that avoid every name of the function.
#[derive(Debug, Default, Clone)]
pub struct Names {
    taken: BTreeSet<String>,
    /// Module-level names, shared by every function of a module (cheap to clone).
    shared: std::sync::Arc<BTreeSet<String>>,
    adjoints: BTreeMap<String, String>,
    counters: BTreeMap<String, usize>,
}

impl Names {
    pub fn new(taken: BTreeSet<String>) -> Self {
        Names {
            taken,
            ..Default::default()
        }
    }

    /// Names avoiding the function's own `taken` names and the module's `shared` ones.
    pub fn with_shared(taken: BTreeSet<String>, shared: std::sync::Arc<BTreeSet<String>>) -> Self {
        Names {
            taken,
            shared,
            ..Default::default()
        }
    }

    pub fn reserve(&mut self, name: &str) {
        self.taken.insert(name.to_string());
    }

    pub fn is_taken(&self, name: &str) -> bool {
        self.taken.contains(name) || self.shared.contains(name)
    }

    /// `b<name>` (or `_b<name>` for temporaries), made unique.
    pub fn adjoint(&mut self, var: &str) -> String {
        if let Some(a) = self.adjoints.get(var) {
            return a.clone();
        }
        let base = match var.strip_prefix('_') {
            Some(rest) => format!("_b{rest}"),
            None => format!("b{var}"),
        };
        let mut name = base.clone();
        while self.is_taken(&name) {
            name.push('_');
        }
        self.taken.insert(name.clone());
        self.adjoints.insert(var.to_string(), name.clone());
        name
    }

    /// `_<hint><n>`, unique.
    pub fn fresh(&mut self, hint: &str) -> String {
        let hint = hint.trim_start_matches('_');
        loop {
            let n = self.counters.entry(hint.to_string()).or_insert(0);
            *n += 1;
            let sep = if hint.ends_with(|c: char| c.is_ascii_digit()) {
                "_"
            } else {
                ""
            };
            let name = format!("_{hint}{sep}{n}");
            if !self.is_taken(&name) {
                self.taken.insert(name.clone());
                return name;
            }
        }
    }
}

/// What reverse mode needs to know about other functions of the module.
pub trait Callees {
    /// A module-level name for a new generated function, starting from `base`.
    fn function_name(&mut self, base: &str) -> String;
    /// Parameter names of a function of the same module.
    fn params(&self, function: &str) -> Option<Vec<String>>;
    /// Parameters a function of the same module modifies in place (`p[i] = ...`, `p.append`).
    fn mutated_params(&self, function: &str) -> Vec<String>;
    /// What a function of the module does besides computing its result (see `effects`).
    fn summary(&self, function: &str) -> Option<crate::effects::Summary>;
    /// Is the code being differentiated the user's (its sharing of memory is checked), not
    /// generated code differentiated again (taken as written)?
    fn user_code(&self) -> bool;
    /// Name of the generated derivative of `function` w.r.t. parameter positions `wrt`
    /// (joint motion, seed as keyword `seed_name`), generating it if needed.
    fn derivative(
        &mut self,
        function: &str,
        wrt: &[usize],
        site: &Stmt,
    ) -> Result<(String, String), Diagnostic>;
    /// The two halves of `function`'s derivative w.r.t. `wrt` that a caller runs inside its
    /// own sweeps, `(forward, backward)`, generating them if needed: the forward half runs the
    /// function once, on the caller's stack (`forward(stack, args...)` returns its value), and
    /// the backward half reuses what it saved (`backward(stack, seed)` returns the adjoints).
    /// `None` when the function must be differentiated jointly instead (a recursive one).
    /// `updates`: positions of parameters the function writes into, whose new values the
    /// halves return after its result (see `ir::InPlace::Updates`).
    fn split(
        &mut self,
        function: &str,
        wrt: &[usize],
        updates: &[usize],
        site: &Stmt,
    ) -> Result<Option<(String, String)>, Diagnostic>;
}

pub struct Reverse<'a> {
    pub f: &'a Function,
    pub act: &'a Activity,
    pub recipes: &'a RecipeSet,
    pub file: SourceFile<'a>,
    pub names: &'a mut Names,
    pub callees: &'a mut dyn Callees,
    /// Adjoints seen in the `Maybe` state somewhere: they are initialized to `None`.
    noneable: BTreeSet<String>,
    /// Assignments that may overwrite a value assigned before (by address of the statement).
    overwrites: BTreeSet<usize>,
    /// Loops whose backward sweep is not empty, by address of their IR statement.
    live_loops: BTreeSet<usize>,
    loop_counters: BTreeMap<usize, String>,
    /// Names read by the backward sweep: values that must be right when it runs.
    needed: BTreeSet<String>,
    /// Variables pushed before they are certainly defined (first loop iteration).
    preinit: BTreeSet<String>,
    pub uses_stack: bool,
    /// The stack the forward sweep saves values on: `_stack`, unless the function has its own
    /// (a generated gradient differentiated again).
    stack: String,
    /// Adjoint stacks of the function's own stacks (reverse over generated code): adjoints
    /// of popped values are pushed on them and popped at the matching push.
    adjoint_stacks: BTreeSet<String>,
    /// Shape facts of the primal, when optimizing (see `shapes`).
    shapes: Option<ShapeFacts>,
    /// Whether the adjoint of the statement being differentiated has its value's exact shape.
    result_adjoint_exact: bool,
    /// Checkpointed loops (see `checkpoint`), by address.
    checkpointed: BTreeMap<usize, &'a Stmt>,
    /// Of each live checkpointed loop: the list its snapshots go on, and the names they hold.
    snapshots: BTreeMap<usize, (String, Vec<String>)>,
    /// Of each live checkpointed loop: its body with taping, run again in the backward pass.
    recomputes: BTreeMap<usize, Vec<Code>>,
    /// Whether the forward sweep being generated saves values for the backward pass (not in
    /// the first run of a checkpointed loop).
    taping: bool,
    /// The state after a loop's backward pass by loop and state before it, for the trial runs
    /// of an enclosing loop's fixpoint (which need only the state): without it, n nested
    /// loops take 2^n runs of the innermost body.
    loop_exits: HashMap<(usize, State), State>,
    /// How many fixpoint trial runs enclose the statement being differentiated.
    trials: usize,
    /// Calls of helpers whose backward sweep calls their backward half, by address of the
    /// statement: the forward sweep calls the forward half there (with the stack) instead of
    /// the helper itself, so the helper runs once and its backward half reuses its values.
    split_calls: BTreeMap<usize, String>,
    /// Which names share memory, and what each change in place changes (see `aliases`).
    sharing: crate::aliases::Sharing,
    /// Whether the forward sweep snapshots parameters changed in place and the backward pass
    /// gives them back their final contents (top-level derivatives, not a helper's halves).
    pub redo_parameters: bool,
    /// Objects whose contents the backward pass puts back in place.
    restored: BTreeSet<crate::aliases::Obj>,
    /// Results of calls of split helpers that write into their arguments (their new values
    /// are checked to be the caller's objects).
    split_results: BTreeSet<String>,
    /// Names the backward pass reads to put back what was changed in place.
    restore_reads: BTreeSet<String>,
}

/// The two sweeps of one function.
pub struct Sweeps {
    pub forward: Vec<Code>,
    pub backward: Vec<Code>,
    /// Statements to put before the forward sweep (`x = None` for pre-initialized names).
    pub prologue: Vec<Code>,
    /// Gradients to return, one per `wrt` parameter.
    pub gradients: Vec<String>,
    /// Names read by the backward sweep (live at the end of the forward sweep).
    pub needed: BTreeSet<String>,
    /// Names certainly assigned when the forward sweep ends.
    pub defined_at_end: BTreeSet<String>,
    /// The stack's name (`_stack` unless the function uses that name itself).
    pub stack: String,
    /// Names the forward sweep defines besides the function's own that the backward sweep
    /// reads (snapshots of parameters, see `Reverse::redo_parameters`).
    pub carried: Vec<String>,
    /// May the backward sweep put back in place contents of an object the result shares (so
    /// a value returned before it runs must be a snapshot)?
    pub result_restored_in_place: bool,
}

type R<T> = Result<T, Diagnostic>;

impl<'a> Reverse<'a> {
    pub fn new(
        f: &'a Function,
        act: &'a Activity,
        recipes: &'a RecipeSet,
        file: SourceFile<'a>,
        names: &'a mut Names,
        callees: &'a mut dyn Callees,
        optimized: bool,
    ) -> Self {
        let mut overwrites = BTreeSet::new();
        let mut may: BTreeSet<String> = f.params.iter().map(|p| p.name.clone()).collect();
        find_overwrites(&f.body, &mut may, &mut overwrites);
        let stack = if f.names.contains("_stack") {
            names.fresh("stack")
        } else {
            "_stack".to_string()
        };
        Reverse {
            f,
            act,
            recipes,
            file,
            names,
            callees,
            noneable: BTreeSet::new(),
            overwrites,
            live_loops: BTreeSet::new(),
            loop_counters: BTreeMap::new(),
            needed: BTreeSet::new(),
            preinit: BTreeSet::new(),
            uses_stack: false,
            stack,
            adjoint_stacks: BTreeSet::new(),
            shapes: if optimized {
                ShapeFacts::analyze(f)
            } else {
                None
            },
            result_adjoint_exact: false,
            checkpointed: crate::ir::all_statements(&f.body)
                .into_iter()
                .filter(|s| {
                    matches!(
                        s,
                        Stmt::For {
                            checkpoint: true,
                            ..
                        }
                    )
                })
                .map(|s| (s as *const Stmt as usize, s))
                .collect(),
            snapshots: BTreeMap::new(),
            recomputes: BTreeMap::new(),
            taping: true,
            loop_exits: HashMap::new(),
            trials: 0,
            split_calls: BTreeMap::new(),
            sharing: crate::aliases::Sharing::default(),
            redo_parameters: true,
            restored: BTreeSet::new(),
            split_results: BTreeSet::new(),
            restore_reads: BTreeSet::new(),
        }
    }

    /// Runs reverse mode: `outputs` are the returned atoms, seeded from `seed`
    /// (the seed's name, or per-output expressions).
    pub fn run(mut self, outputs: &[Atom], seeds: &[String], wrt: &[String]) -> R<Sweeps> {
        let sharing = {
            let callees = &*self.callees;
            crate::aliases::analyze(
                self.f,
                outputs,
                self.recipes,
                &|n| callees.summary(n),
                self.file,
                callees.user_code(),
            )?
        };
        self.sharing = sharing;
        let mut state = State::default();
        let mut start = Vec::new();
        for (out, seed) in outputs.iter().zip(seeds) {
            if let Atom::Name(n) = out {
                if self.act.is_active(n) {
                    let adj = self.names.adjoint(n);
                    // The caller's seed for a value known to be a scalar is a scalar; any other
                    // seed may be smaller than its value (a float seed of an array). When
                    // optimizing a value a loop computes, the seed is spread to the value's
                    // shape once, so that the adjoints the loop carries have their values'
                    // exact shapes and each iteration can leave helper calls out.
                    let scalar = self.returns_scalar(n);
                    let spread =
                        self.shapes.is_some() && !scalar && assigned_in_loop(&self.f.body, n);
                    let value = if spread {
                        format!("tangent.grad_like({seed}, {n})")
                    } else {
                        seed.clone()
                    };
                    if adj == *seed && !spread {
                        state.set(&adj, Da::Assigned);
                        state.set_exact(&adj, scalar);
                    } else {
                        self.accumulate(
                            &mut start,
                            &mut state,
                            n,
                            Contribution::add(n, value, scalar || spread),
                        );
                    }
                }
            }
        }
        let mut backward_b = start;
        backward_b.extend(self.backward_block(&self.f.body, &mut state, false)?);
        // Gradients of the parameters.
        let mut gradients = Vec::new();
        let mut tail = Vec::new();
        for p in wrt {
            let adj = self.names.adjoint(p);
            match state.get(&adj) {
                Da::Assigned => {}
                Da::Zero => tail.push(B::Code(Code::assign(
                    &adj,
                    &format!("tangent.init_grad({p})"),
                    true,
                ))),
                Da::Maybe => tail.push(B::Code(Code::If {
                    test: format!("{adj} is None"),
                    uses: vec![adj.clone()],
                    body: vec![Code::assign(&adj, &format!("tangent.init_grad({p})"), true)],
                    orelse: vec![],
                })),
            }
            gradients.push(adj);
        }
        if !tail.is_empty() {
            backward_b.push(B::Code(Code::Comment(
                "Parameters no computation reached have zero gradient".into(),
            )));
        }
        backward_b.extend(tail);
        // A parameter container's gradient maps every differentiable attribute to its
        // gradient, also the attributes the function did not read.
        for p in wrt {
            if reads_attributes(&self.f.body, p) {
                let adj = self.names.adjoint(p);
                backward_b.push(B::Code(Code::assign(
                    &adj,
                    &format!("tangent.attribute_grads({adj}, {p})"),
                    true,
                )));
            }
        }

        // Which values the backward sweep reads decides what the forward sweep saves.
        let mut needed = BTreeSet::new();
        collect_b_uses(&backward_b, &mut needed);
        // A checkpointed loop runs again in the backward pass: what it reads from outside
        // must still be there.
        for s in self.checkpointed.values() {
            if let Stmt::For { iter, body, .. } = s {
                let bound: BTreeSet<String> = crate::checkpoint::bound(body).into_iter().collect();
                needed.extend(
                    crate::checkpoint::reads(body)
                        .into_iter()
                        .filter(|r| !bound.contains(r)),
                );
                needed.extend(iter.reads().into_iter().map(str::to_string));
            }
        }
        // A helper's backward half reads what its forward half saved, arguments included by
        // reference: when it runs they must be as the call left them.
        for s in crate::ir::all_statements(&self.f.body) {
            if let (
                true,
                Stmt::Assign {
                    value: Expr::Call { args, kwargs, .. },
                    ..
                },
            ) = (
                self.split_calls.contains_key(&(s as *const Stmt as usize)),
                s,
            ) {
                needed.extend(
                    args.iter()
                        .chain(kwargs.iter().map(|(_, a)| a))
                        .filter_map(Atom::name)
                        .map(str::to_string),
                );
            }
        }
        // Undoing a change in place reads the name it changed: that name must hold the
        // right object when the backward pass gets there (its own overwrites saved too).
        loop {
            let before = needed.len();
            for s in crate::ir::all_statements(&self.f.body) {
                if self
                    .sharing
                    .change_is_read(s as *const Stmt as usize, &needed)
                {
                    needed.extend(
                        crate::aliases::changed_names(s)
                            .into_iter()
                            .map(str::to_string),
                    );
                }
            }
            if needed.len() == before {
                break;
            }
        }
        self.needed = needed;
        let mut backward = Vec::new();
        // Adjoints that may be None start as None.
        let noneable: Vec<String> = self.noneable.iter().cloned().collect();
        let seeded: BTreeSet<&String> = seeds.iter().collect();
        for adj in &noneable {
            if !seeded.contains(adj) {
                backward.push(Code::assign(adj, "None", true));
            }
        }
        for adj in &self.adjoint_stacks {
            backward.push(Code::assign(adj, "tangent.Stack()", false));
        }
        backward.extend(self.finalize(backward_b));
        // A split helper's backward pass may put back in place what it changed (its
        // arguments' contents) and its result's contents.
        for key in self.split_calls.keys() {
            if let Some(changed) = self.sharing.changes.get(key) {
                self.restored.extend(changed.iter().cloned());
            }
        }
        for s in crate::ir::all_statements(&self.f.body) {
            if let (true, Stmt::Assign { target, .. }) = (
                self.split_calls.contains_key(&(s as *const Stmt as usize)),
                s,
            ) {
                self.restored.extend(
                    self.sharing
                        .objects
                        .get(target)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
        let restored: BTreeSet<crate::aliases::Obj> =
            self.restored.iter().map(|o| o.whole().clone()).collect();
        let touches_restored = |objs: &BTreeSet<crate::aliases::Obj>| {
            objs.iter().any(|o| restored.contains(o.whole()))
        };
        // Parameters whose contents the backward pass put back get their final contents
        // again at its end: a derivative call leaves them as one call of the function does.
        let mut carried = Vec::new();
        let mut snapshots = Vec::new();
        let mut given = Vec::new();
        if self.redo_parameters {
            for (i, p) in self.f.params.iter().enumerate() {
                // The parameter's object, or one it holds (an array appended to a list).
                let reached = self.sharing.held_by(crate::aliases::Obj::Param(i));
                if !touches_restored(&reached) {
                    continue;
                }
                // The object the caller passed, also when the name is given another value.
                let object = if crate::ir::assignments_of(&self.f.body, &p.name).is_empty() {
                    p.name.clone()
                } else {
                    let object = self.names.fresh(&format!("{}_given", p.name));
                    given.push(Code::assign(&object, &p.name, false));
                    carried.push(object.clone());
                    object
                };
                let saved = self.names.fresh(&format!("{}_final", p.name));
                snapshots.push(Code::assign(
                    &saved,
                    &format!("tangent.snapshot({object})"),
                    false,
                ));
                backward.push(Code::effect(&format!(
                    "tangent.write_into({object}, {saved})"
                )));
                self.restore_reads.insert(object);
                carried.push(saved);
            }
        }
        let result_restored_in_place = outputs
            .iter()
            .filter_map(Atom::name)
            .any(|n| touches_restored(&self.sharing.reachable(n)));
        let mut defined: BTreeSet<String> = self.f.params.iter().map(|p| p.name.clone()).collect();
        let mut forward = given;
        forward.extend(self.forward_block(&self.f.body, false, &mut defined, &[])?);
        forward.extend(snapshots);
        crate::checkpoint::splice(&mut backward, &mut self.recomputes);
        let defined_at_end = defined;
        let mut prologue = Vec::new();
        if self.callees.user_code() {
            prologue.extend(
                self.sharing
                    .entry_guards(self.f, self.file)
                    .iter()
                    .map(|g| Code::effect(g)),
            );
        }
        if self.uses_stack {
            prologue.push(Code::assign(&self.stack, "tangent.Stack()", false));
        }
        for v in &self.preinit {
            prologue.push(Code::assign(v, "None", false));
        }
        let mut needed = self.needed;
        needed.extend(self.restore_reads);
        Ok(Sweeps {
            forward,
            backward,
            prologue,
            gradients,
            needed,
            defined_at_end,
            stack: self.stack,
            carried,
            result_restored_in_place,
        })
    }

    /// Is `name`, returned by the function, certainly a scalar (by the shape facts)?
    fn returns_scalar(&self, name: &str) -> bool {
        let Some(shapes) = &self.shapes else {
            return false;
        };
        let scalar = |f: Option<&Fact>| f.is_some_and(|f| f.shape.is_empty());
        scalar(shapes.at_end(name))
            && crate::ir::all_statements(&self.f.body)
                .into_iter()
                .filter(|s| matches!(s, Stmt::Return { .. }))
                .all(|s| {
                    scalar(
                        shapes
                            .at(s)
                            .and_then(|f| f.reads.get(name))
                            .map(|(fact, _)| fact),
                    )
                })
    }

    /// Must the value `var` holds before statement `key` be saved? Only when the statement
    /// may overwrite an earlier value and the backward sweep reads `var`.
    fn save_var(&self, var: &str, key: usize) -> bool {
        self.taping
            && self.overwrites.contains(&key)
            && (self.needed.contains(var) || self.sharing.change_is_read(key, &self.needed))
    }

    /// Must the contents of `var`, an argument the call `key` writes into, be saved before the
    /// call and put back in place after its backward pass?
    fn save_updated(&self, var: &str, key: usize) -> bool {
        self.taping && (self.needed.contains(var) || self.sharing.change_is_read(key, &self.needed))
    }

    /// Must the container `var` changed in place by statement `key` (`var[i] = v`,
    /// `var.append(v)`) be restored by the backward pass?
    fn restores_container(&self, var: &str, key: usize) -> bool {
        self.needed.contains(var) || self.sharing.change_is_read(key, &self.needed)
    }

    /// `var = tangent.write_into(var, stack.pop())`: the saved contents go back into the
    /// object (views and saved references see them too).
    fn put_back_in_place(&self, var: &str) -> Code {
        Code::stmt(
            &format!("{var} = tangent.write_into({var}, {}.pop())", self.stack),
            vec![var.to_string()],
            false,
        )
    }

    /// Records that the backward pass puts back, into `var`, what statement `key` changed
    /// in place.
    fn note_restored(&mut self, key: usize, var: &str) {
        if let Some(changed) = self.sharing.changes.get(&key) {
            self.restored.extend(changed.iter().cloned());
        }
        self.restore_reads.insert(var.to_string());
    }

    // ---------------------------------------------------------------- backward

    fn backward_block(&mut self, body: &[Stmt], state: &mut State, in_loop: bool) -> R<Vec<B>> {
        let mut out = Vec::new();
        for s in body.iter().rev() {
            out.extend(self.backward_stmt(s, state, in_loop)?);
        }
        Ok(out)
    }

    fn comment(&self, s: &Stmt) -> B {
        B::Code(Code::Comment(format!("Grad of: {}", s.origin().text)))
    }

    fn backward_stmt(&mut self, s: &Stmt, state: &mut State, in_loop: bool) -> R<Vec<B>> {
        let mut out = Vec::new();
        match s {
            Stmt::Assign { target, value, .. }
                if crate::activity::popped_stack(value).is_some() =>
            {
                // The popped value's adjoint goes back to the value that was pushed: on an
                // adjoint stack, taken off at the matching push. Always pushed, so pops match.
                let restore = B::RestoreVar {
                    var: target.clone(),
                    key: s as *const Stmt as usize,
                };
                if self.act.is_active(target) {
                    let stack = crate::activity::popped_stack(value).unwrap_or_default();
                    let adjoint_stack = self.names.adjoint(stack);
                    self.adjoint_stacks.insert(adjoint_stack.clone());
                    let adj = self.names.adjoint(target);
                    out.push(self.comment(s));
                    // A name is pushed, so that this code pairs its pushes and pops by name
                    // too and can be differentiated once more.
                    let zero = Code::assign(&adj, &format!("tangent.init_grad({target})"), false);
                    match state.get(&adj) {
                        Da::Zero => out.push(B::Code(zero)),
                        Da::Assigned => {}
                        Da::Maybe => {
                            self.noneable.insert(adj.clone());
                            out.push(B::Code(Code::If {
                                test: format!("{adj} is None"),
                                uses: vec![adj.clone()],
                                body: vec![zero],
                                orelse: vec![],
                            }));
                        }
                    }
                    out.push(B::Code(Code::effect(&format!(
                        "{adjoint_stack}.append({adj})"
                    ))));
                    state.set(&adj, Da::Zero);
                    out.push(restore);
                    out.push(B::ResetNone(adj));
                } else {
                    out.push(restore);
                }
            }
            Stmt::Assign {
                target,
                value,
                inplace,
                ..
            } => {
                let key = s as *const Stmt as usize;
                // What the forward sweep saved for this statement, put back (last saved
                // first): the arguments a helper wrote into, then the target's old value (none
                // for the new value of such an argument, the same object, saved with the call).
                let mut restore: Vec<B> = Vec::new();
                if let Some(InPlace::Updates(updated)) = inplace {
                    restore.extend(updated.iter().rev().map(|(_, n)| B::RestoreUpdated {
                        var: n.clone(),
                        key,
                    }));
                }
                if !matches!(inplace, Some(InPlace::Updated)) {
                    restore.push(B::RestoreVar {
                        var: target.clone(),
                        key,
                    });
                }
                if !self.act.is_active(target) {
                    out.extend(restore);
                    return Ok(out);
                }
                let adj = self.names.adjoint(target);
                let da = state.get(&adj);
                if da == Da::Zero {
                    out.extend(restore);
                    return Ok(out);
                }
                out.push(self.comment(s));
                self.result_adjoint_exact = state.is_exact(&adj);
                let self_read = value.reads().contains(&target.as_str());
                // The adjoint of the new value; the variable's adjoint restarts at zero for
                // the old value.
                let (seed, result_name) = if self_read {
                    let saved_adj = self
                        .names
                        .fresh(&format!("b{}", target.trim_start_matches('_')));
                    out.push(B::Code(Code::assign(&saved_adj, &adj, true)));
                    let saved_val = self.names.fresh(target);
                    // A change in place may be undone in place below: keep a copy.
                    let value = if inplace.is_some() {
                        format!("tangent.copy({target})")
                    } else {
                        target.clone()
                    };
                    out.push(B::Code(Code::assign(&saved_val, &value, true)));
                    (saved_adj, saved_val)
                } else {
                    (adj.clone(), target.clone())
                };
                state.set(&adj, Da::Zero);
                // A split helper's backward half pops what its forward half pushed after the
                // caller saved the old value: it runs before that value is restored (and it
                // reads no value of the caller's), whenever its forward half ran, with a zero
                // seed when the result's adjoint is None.
                let split = self.is_split_call(s, value)?;
                if self_read {
                    if !split {
                        out.extend(restore.clone());
                    }
                    out.push(B::ResetNone(adj.clone()));
                }
                let da = if da == Da::Maybe && split {
                    self.noneable.insert(adj.clone());
                    let zero =
                        Code::assign(&seed, &format!("tangent.init_grad({result_name})"), false);
                    out.push(B::Code(Code::If {
                        test: format!("{seed} is None"),
                        uses: vec![seed.clone()],
                        body: vec![zero],
                        orelse: vec![],
                    }));
                    Da::Assigned
                } else {
                    da
                };
                let mut contributions = Vec::new();
                self.contributions(
                    s,
                    target,
                    &result_name,
                    value,
                    &seed,
                    state,
                    &mut contributions,
                )?;
                if da == Da::Maybe {
                    self.noneable.insert(adj.clone());
                    let before = state.clone();
                    let mut inner = state.clone();
                    let mut body = Vec::new();
                    self.apply(&mut body, &mut inner, contributions);
                    *state = before.merge(&inner);
                    self.note_maybe(state);
                    out.push(B::Guard {
                        adj: seed.clone(),
                        body,
                    });
                } else {
                    self.apply(&mut out, state, contributions);
                }
                if !self_read {
                    out.extend(restore);
                    out.push(B::ResetNone(adj));
                } else if split {
                    out.extend(restore);
                }
            }
            Stmt::AssignIndex {
                target,
                index,
                value,
                ..
            } => self.backward_write(s, target, index, value, state, &mut out),
            Stmt::Restore {
                container,
                index,
                saved,
                ..
            } => {
                let index = Index {
                    text: index.to_string(),
                    arg: index.to_string(),
                    reads: index.name().into_iter().map(str::to_string).collect(),
                };
                self.backward_write(s, container, &index, saved, state, &mut out);
            }
            Stmt::PopLast { target, .. } => {
                // Going back, the list gets its last element again, and its adjoint a zero one.
                out.push(B::RestorePopLast {
                    var: target.clone(),
                    key: s as *const Stmt as usize,
                });
                if self.act.is_active(target) {
                    let adj = self.names.adjoint(target);
                    let da = state.get(&adj);
                    if da != Da::Zero {
                        out.push(self.comment(s));
                        let body = vec![B::Code(Code::assign(
                            &adj,
                            &format!("tangent.appended({adj}, tangent.init_grad({target}[-1]))"),
                            true,
                        ))];
                        if da == Da::Maybe {
                            self.noneable.insert(adj.clone());
                            out.push(B::Guard { adj, body });
                        } else {
                            out.extend(body);
                        }
                    }
                }
            }
            Stmt::Push { stack, value, .. } => {
                if let Atom::Name(v) = value {
                    if self.act.is_active(v) {
                        let adjoint_stack = self.names.adjoint(stack);
                        self.adjoint_stacks.insert(adjoint_stack.clone());
                        out.push(self.comment(s));
                        // Not pure: the pop must run even when the adjoint is not used later.
                        let adj = self.names.adjoint(v);
                        let popped = format!("{adjoint_stack}.pop()");
                        let text = match state.get(&adj) {
                            Da::Zero => popped,
                            _ => format!("tangent.add_grad({adj}, {popped})"),
                        };
                        out.push(B::Code(Code::assign(&adj, &text, false)));
                        state.set(&adj, Da::Assigned);
                        state.set_exact(&adj, false);
                    }
                }
            }
            Stmt::Append { target, value, .. } => {
                self.backward_container_write(
                    s,
                    target,
                    value,
                    |adj, _| format!("{adj}[-1]"),
                    |adj| format!("{adj}[:-1]"),
                    state,
                    &mut out,
                );
                out.push(B::RestoreAppend {
                    var: target.clone(),
                    key: s as *const Stmt as usize,
                });
            }
            Stmt::If {
                test, body, orelse, ..
            } => {
                let mut s1 = state.clone();
                let b1 = self.backward_block(body, &mut s1, in_loop)?;
                let mut s2 = state.clone();
                let b2 = self.backward_block(orelse, &mut s2, in_loop)?;
                *state = s1.merge(&s2);
                self.note_maybe(state);
                if !b1.is_empty() || !b2.is_empty() {
                    out.push(self.comment(s));
                    out.push(B::If {
                        test: test.clone(),
                        body: b1,
                        orelse: b2,
                    });
                }
            }
            Stmt::For { target, body, .. } => {
                let b = self.backward_loop(s, body, state)?;
                out.push(self.comment(s));
                out.push(B::Loop {
                    key: s as *const Stmt as usize,
                    target: Some(target.clone()),
                    body: b,
                });
            }
            Stmt::While { body, .. } => {
                let b = self.backward_loop(s, body, state)?;
                out.push(self.comment(s));
                out.push(B::Loop {
                    key: s as *const Stmt as usize,
                    target: None,
                    body: b,
                });
            }
            Stmt::InsertGradOf {
                var, alias, body, ..
            } => {
                if self.act.is_active(var) {
                    let adj = self.names.adjoint(var);
                    out.push(self.comment(s));
                    // A copy: the surgery may write into it, and adjoints may share arrays.
                    let value = match state.get(&adj) {
                        Da::Zero => format!("tangent.init_grad({var})"),
                        Da::Assigned => format!("tangent.copy({adj})"),
                        Da::Maybe => format!(
                            "tangent.init_grad({var}) if {adj} is None else tangent.copy({adj})"
                        ),
                    };
                    out.push(B::Code(Code::assign(alias, &value, false)));
                    let text = body.join("\n");
                    out.push(B::Code(Code::Stmt {
                        text: text.clone(),
                        defs: vec![alias.clone()],
                        uses: names_in_stmt(&text),
                        pure: false,
                    }));
                    out.push(B::Code(Code::assign(&adj, alias, false)));
                    state.set(&adj, Da::Assigned);
                    state.set_exact(&adj, false);
                }
            }
            Stmt::Break { .. }
            | Stmt::Continue { .. }
            | Stmt::Opaque { .. }
            | Stmt::Return { .. } => {}
        }
        Ok(out)
    }

    /// `target[index] = value` (or a generated gradient's `tangent.restore_item`).
    fn backward_write(
        &mut self,
        s: &Stmt,
        target: &str,
        index: &Index,
        value: &Atom,
        state: &mut State,
        out: &mut Vec<B>,
    ) {
        // The written value may have been broadcast into the slot.
        let item = |adj: &str, v: &str| format!("tangent.unbroadcast({adj}[{}], {v})", index.text);
        let rest = |adj: &str| format!("tangent.zero_at({adj}, {})", index.arg);
        self.backward_container_write(s, target, value, item, rest, state, out);
        out.push(B::RestoreItem {
            var: target.to_string(),
            index: index.clone(),
            key: s as *const Stmt as usize,
        });
    }

    /// The adjoint of a write of `value` into the container `target`: the written value's
    /// adjoint is taken out of the container's (`item(adj, value)`), which keeps the rest
    /// (`rest(adj)`).
    #[allow(clippy::too_many_arguments)]
    fn backward_container_write(
        &mut self,
        s: &Stmt,
        target: &str,
        value: &Atom,
        item: impl Fn(&str, &str) -> String,
        rest: impl Fn(&str) -> String,
        state: &mut State,
        out: &mut Vec<B>,
    ) {
        if !self.act.is_active(target) {
            return;
        }
        let adj = self.names.adjoint(target);
        let da = state.get(&adj);
        if da == Da::Zero {
            return;
        }
        out.push(self.comment(s));
        let mut body = Vec::new();
        let mut inner = state.clone();
        let mut rest_done = false;
        if let Atom::Name(v) = value {
            if self.act.is_active(v) {
                // `item` gives the value's adjoint its shape (by unbroadcast) or takes it
                // from a container's adjoint.
                let exact = item(&adj, v).starts_with("tangent.unbroadcast(");
                if v == target {
                    // `v[...] = v`: the item is taken out of the adjoint before its slot is
                    // cleared, and then added back to what remains.
                    let held = self.names.fresh(&adj);
                    body.push(B::Code(Code::assign(&held, &item(&adj, v), true)));
                    body.push(B::Code(Code::assign(&adj, &rest(&adj), true)));
                    rest_done = true;
                    self.accumulate(&mut body, &mut inner, v, Contribution::add(v, held, exact));
                } else {
                    self.accumulate(
                        &mut body,
                        &mut inner,
                        v,
                        Contribution::add(v, item(&adj, v), exact),
                    );
                }
            }
        }
        if !rest_done {
            body.push(B::Code(Code::assign(&adj, &rest(&adj), true)));
        }
        if da == Da::Maybe {
            self.noneable.insert(adj.clone());
            *state = state.merge(&inner);
            self.note_maybe(state);
            out.push(B::Guard { adj, body });
        } else {
            *state = inner;
            out.extend(body);
        }
    }

    fn backward_loop(&mut self, s: &Stmt, body: &[Stmt], state: &mut State) -> R<Vec<B>> {
        let key = (s as *const Stmt as usize, state.clone());
        if self.trials > 0 {
            if let Some(exit) = self.loop_exits.get(&key) {
                *state = exit.clone();
                return Ok(Vec::new());
            }
        }
        // Fixpoint of the state at the top of an iteration: before the loop, or after one.
        // Iterated to the end, never a fixed number of times: an adjoint passed along a chain of
        // n assignments (`a = b; b = c; ...` in the body) needs n rounds to be seen as possibly
        // assigned, and stopping early left it "certainly zero" and its contributions out.
        // Each round only moves adjoints towards `Maybe` (joining with the previous entry), so
        // this ends.
        let pre = state.clone();
        let mut entry = pre.clone();
        loop {
            let mut s = entry.clone();
            // Trial runs must not use up fresh names: the final run reuses them.
            let names = self.names.clone();
            self.trials += 1;
            let trial = self.backward_block(body, &mut s, true);
            self.trials -= 1;
            *self.names = names;
            trial?;
            let next = entry.merge(&s);
            if next == entry {
                break;
            }
            entry = next;
        }
        self.note_maybe(&entry);
        let mut s = entry.clone();
        let b = self.backward_block(body, &mut s, true)?;
        *state = pre.merge(&s);
        self.note_maybe(state);
        self.loop_exits.insert(key, state.clone());
        Ok(b)
    }

    fn note_maybe(&mut self, state: &State) {
        for (k, d) in &state.da {
            if *d == Da::Maybe {
                self.noneable.insert(k.clone());
            }
        }
    }

    /// Adds `value` to the adjoint of `var`.
    fn accumulate(&mut self, out: &mut Vec<B>, state: &mut State, var: &str, c: Contribution) {
        let Contribution::Add {
            value,
            exact,
            plain,
            effect,
            ..
        } = c
        else {
            return;
        };
        let adj = self.names.adjoint(var);
        let was = state.get(&adj);
        let text = match was {
            Da::Zero => value,
            // Two arrays (or numbers) of the variable's shape: NumPy adds them.
            Da::Assigned if plain && state.is_exact(&adj) => {
                format!("{adj} + {}", crate::recipes::parenthesize(&value))
            }
            _ => format!("tangent.add_grad({adj}, {value})"),
        };
        out.push(B::Code(Code::assign(&adj, &text, !effect)));
        // A sum has the broadcast shape of its terms: exact when one of them is.
        let exact = exact || (was == Da::Assigned && state.is_exact(&adj));
        state.set(&adj, Da::Assigned);
        state.set_exact(&adj, exact);
    }

    fn apply(&mut self, out: &mut Vec<B>, state: &mut State, contributions: Vec<Contribution>) {
        for c in contributions {
            match c {
                Contribution::Local(code) => out.push(B::Code(code)),
                Contribution::Add { ref var, .. } => {
                    let var = var.clone();
                    self.accumulate(out, state, &var, c)
                }
                Contribution::AddAt { var, index, value } => {
                    let adj = self.names.adjoint(&var);
                    let current = match state.get(&adj) {
                        Da::Zero => "None".to_string(),
                        _ => adj.clone(),
                    };
                    let exact = current == "None" || state.is_exact(&adj);
                    out.push(B::Code(Code::assign(
                        &adj,
                        &format!(
                            "tangent.add_grad_at({current}, {var}, {}, {value})",
                            index.arg
                        ),
                        true,
                    )));
                    state.set(&adj, Da::Assigned);
                    state.set_exact(&adj, exact);
                }
            }
        }
    }

    fn no_recipe(&self, s: &Stmt, what: &str, help: String) -> Diagnostic {
        let (start, end) = self.locate(s, what);
        self.file
            .diagnostic(
                DiagnosticKind::NoRecipe,
                format!("no derivative known for {what}"),
                start,
                end,
            )
            .with_help(help)
    }

    /// The span of the call or attribute named in `what` (its text between backquotes) inside
    /// the statement, so the caret points at it; the whole statement otherwise.
    fn locate(&self, s: &Stmt, what: &str) -> (usize, usize) {
        locate(self.file.text, s, what)
    }

    /// The contributions of `target = value` to the adjoints of its operands.
    #[allow(clippy::too_many_arguments)]
    fn contributions(
        &mut self,
        s: &Stmt,
        target: &str,
        result_name: &str,
        value: &Expr,
        seed: &str,
        state: &State,
        out: &mut Vec<Contribution>,
    ) -> R<()> {
        let _ = state;
        let active = |a: &Atom| self.act.atom_active(a);
        match value {
            Expr::Atom(a) => {
                if let Atom::Name(n) = a {
                    if active(a) {
                        out.push(Contribution::add(
                            n,
                            seed.to_string(),
                            self.result_adjoint_exact,
                        ));
                    }
                }
            }
            Expr::BinOp { op, left, right } => {
                let Some(name) = crate::ir::binary_operator_recipe(op) else {
                    return Err(self.no_recipe(s, &format!("the operator `{op}`"), "bitwise operators have no derivative; compute this value from inactive data".into()));
                };
                self.recipe(
                    s,
                    name,
                    result_name,
                    &[left.clone(), right.clone()],
                    &[],
                    seed,
                    out,
                )?;
            }
            Expr::UnaryOp { op, operand } => {
                let Some(name) = crate::ir::unary_operator_recipe(op) else {
                    return Ok(());
                };
                self.recipe(s, name, result_name, &[operand.clone()], &[], seed, out)?;
            }
            Expr::Compare { .. } => {}
            e @ Expr::Opaque { .. } if e.carries_no_derivative() => {}
            Expr::Opaque { text, reads } => {
                let active_read = reads.iter().find(|r| self.act.is_active(r));
                if let Some(r) = active_read {
                    let kind = reads
                        .iter()
                        .find_map(|r| r.strip_prefix("__opaque:"))
                        .unwrap_or("this expression");
                    let o = s.origin();
                    return Err(self.file.diagnostic(
                        DiagnosticKind::Unsupported,
                        format!("{kind} over the differentiated value `{r}` cannot be differentiated: `{text}`"),
                        o.start,
                        o.end,
                    ).with_help("write it as a `for` loop, or with NumPy array operations"));
                }
            }
            Expr::Subscript { value: v, index } => {
                if let Atom::Name(n) = v {
                    if active(v) {
                        out.push(Contribution::AddAt {
                            var: n.clone(),
                            index: index.clone(),
                            value: seed.to_string(),
                        });
                    }
                }
            }
            Expr::Attribute { value: v, attr } => {
                if !active(v) {
                    return Ok(());
                }
                match attr.as_str() {
                    "T" => self.recipe(
                        s,
                        "numpy.transpose",
                        result_name,
                        &[v.clone()],
                        &[],
                        seed,
                        out,
                    )?,
                    "real" => out.push(Contribution::add(
                        &v.to_string(),
                        seed.to_string(),
                        self.result_adjoint_exact,
                    )),
                    "imag" | "flat" => {
                        return Err(self.no_recipe(
                            s,
                            &format!("the attribute `.{attr}`"),
                            "use a NumPy function with a known derivative".into(),
                        ));
                    }
                    // An attribute of an object (a parameter container, `self`): the object's
                    // adjoint maps attribute names to adjoints.
                    _ => {
                        if let Atom::Name(n) = v {
                            out.push(Contribution::add(n, format!("{{{attr:?}: {seed}}}"), false));
                        }
                    }
                }
            }
            Expr::Tuple(items) | Expr::List(items) => {
                for (i, a) in items.iter().enumerate() {
                    if let Atom::Name(n) = a {
                        if active(a) {
                            out.push(Contribution::add(n, format!("{seed}[{i}]"), false));
                        }
                    }
                }
            }
            Expr::Dict(items) => {
                for (k, a) in items {
                    if let Atom::Name(n) = a {
                        if active(a) {
                            out.push(Contribution::add(n, format!("{seed}[{k}]"), false));
                        }
                    }
                }
            }
            Expr::Call {
                callee,
                args,
                kwargs,
            } => {
                self.call(s, target, result_name, callee, args, kwargs, seed, out)?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        s: &Stmt,
        _target: &str,
        result_name: &str,
        callee: &Callee,
        args: &[Atom],
        kwargs: &[(String, Atom)],
        seed: &str,
        out: &mut Vec<Contribution>,
    ) -> R<()> {
        let project_function = self.project_function(callee);
        let callee = project_function.as_ref().unwrap_or(callee);
        match callee {
            // A function of this module with a recipe of the user's: the recipe, not its body.
            Callee::Function {
                text, local: true, ..
            } if self.recipes.adjoints.contains_key(text) => {
                self.recipe(s, text, result_name, args, kwargs, seed, out)
            }
            Callee::Function {
                text, local: true, ..
            } => {
                let params = self.callees.params(text).unwrap_or_default();
                let positions = self.act.active_arguments(&params, args, kwargs);
                if positions.is_empty() {
                    return Ok(());
                }
                let updates = updated_positions(s);
                // A helper of another module that writes into its arguments changes values
                // behind the caller's back (the module's own are differentiated with the
                // new values they give those arguments, `InPlace::Updates`).
                let mutated = if project_function.is_some() {
                    self.callees.mutated_params(text)
                } else {
                    Vec::new()
                };
                if let Some(p) = mutated.first() {
                    let (start, end) = self.locate(s, &format!("`{text}`"));
                    return Err(self.file.diagnostic(
                        DiagnosticKind::Unsupported,
                        format!("`{text}` modifies its argument `{p}` in place, which cannot be differentiated"),
                        start,
                        end,
                    ).with_help(format!("make `{text}` return the new value instead of writing into `{p}`")));
                }
                let wrt: Vec<usize> = positions.iter().map(|p| p.0).collect();
                let (call, effect) = match self.callees.split(text, &wrt, &updates, s)? {
                    // The helper ran once in the forward sweep (its forward half, on this
                    // stack); its backward half reuses what that run saved.
                    Some((forward, backward)) => {
                        if self.trials == 0 {
                            self.split_calls.insert(s as *const Stmt as usize, forward);
                        }
                        self.uses_stack = true;
                        (format!("{backward}({}, {seed})", self.stack), true)
                    }
                    None => {
                        // A recursive helper: its derivative runs it again.
                        if let Some(effect) = self.callees.summary(text).and_then(|s| s.impure) {
                            let (start, end) = self.locate(s, &format!("`{text}`"));
                            return Err(self.file.diagnostic(
                                DiagnosticKind::Unsupported,
                                format!("`{text}` calls itself, so its derivative runs it again, which would repeat what it does: it {}", effect.what),
                                start,
                                end,
                            ).with_help(format!("move what `{text}` does besides computing its result out of it (draw random numbers before calling it, and pass them in)")));
                        }
                        if !updates.is_empty() {
                            let (start, end) = self.locate(s, &format!("`{text}`"));
                            return Err(self.file.diagnostic(
                                DiagnosticKind::Unsupported,
                                format!("`{text}` calls itself and changes its arguments in place: its derivative would run it, and change them, again"),
                                start,
                                end,
                            ).with_help(format!("make `{text}` return the new values instead of writing into its arguments")));
                        }
                        let (dname, seed_param) = self.callees.derivative(text, &wrt, s)?;
                        let mut parts = crate::ir::call_arguments(args, kwargs);
                        parts.push(format!("{seed_param}={seed}"));
                        (format!("{dname}({})", parts.join(", ")), false)
                    }
                };
                if positions.len() == 1 {
                    // A split helper's backward half pops the stack: it runs even when the
                    // adjoint it gives is not used.
                    out.push(Contribution::Add {
                        var: positions[0].1.to_string(),
                        value: call,
                        exact: false,
                        plain: false,
                        effect,
                    });
                } else {
                    let tmp = self
                        .names
                        .fresh(&format!("b{}", text.rsplit('.').next().unwrap_or(text)));
                    out.push(Contribution::Local(Code::assign(&tmp, &call, false)));
                    for (k, (_, var)) in positions.iter().enumerate() {
                        out.push(Contribution::add(
                            &var.to_string(),
                            format!("{tmp}[{k}]"),
                            false,
                        ));
                    }
                }
                Ok(())
            }
            Callee::Function {
                text, canonical, ..
            } => {
                let Some(canon) = canonical else {
                    if text.starts_with('_') || self.act.is_active(text) {
                        // Point at the lambda itself when the called value is one.
                        let site = find_definition(&self.f.body, text).unwrap_or(s);
                        let o = site.origin();
                        if let Some(Stmt::Assign {
                            value: Expr::Opaque { text: code, .. },
                            ..
                        }) = find_definition(&self.f.body, text)
                        {
                            return Err(self.file.diagnostic(
                                DiagnosticKind::Unsupported,
                                format!("a lambda over a differentiated value cannot be differentiated: `{code}`"),
                                o.start,
                                o.end,
                            ).with_help("define the function with `def` at module level: Tangent differentiates it too"));
                        }
                        return Err(self.file.diagnostic(
                            DiagnosticKind::Unsupported,
                            "calling a lambda or a computed function on a differentiated value is not supported",
                            o.start,
                            o.end,
                        ).with_help("define the function with `def` at module level: Tangent differentiates it too"));
                    }
                    if self.act.call_inputs_inactive(None, args, kwargs) {
                        return Ok(());
                    }
                    let keywords: Vec<String> = kwargs.iter().map(|(k, _)| k.clone()).collect();
                    return Err(self.no_recipe(
                        s,
                        &format!("`{text}`"),
                        format!("`{text}` is neither a function of this module nor an import Tangent knows; define it in this module, or {}", crate::recipes::recipe_suggestion(text, args.len(), &keywords, false)),
                    ));
                };
                if self.recipes.nondifferentiable.contains(canon) {
                    return Ok(());
                }
                // Tangent's runtime helpers have recipes; the stack is handled by statement.
                let runtime_without_recipe =
                    canon.starts_with("tangent.") && !self.recipes.adjoints.contains_key(canon);
                if canon == "numpy.copyto"
                    || kwargs.iter().any(|(k, _)| k == "out")
                    || runtime_without_recipe
                {
                    let (start, end) = self.locate(s, &format!("`{text}`"));
                    return Err(self.file.diagnostic(
                        DiagnosticKind::Unsupported,
                        format!("`{text}` writes into an argument in place (or manages Tangent's own stack), which cannot be differentiated"),
                        start,
                        end,
                    ).with_help("assign the result to a new variable instead"));
                }
                if !self.recipes.adjoints.contains_key(canon)
                    && self.act.call_inputs_inactive(None, args, kwargs)
                {
                    return Ok(());
                }
                self.recipe(s, canon, result_name, args, kwargs, seed, out)
            }
            Callee::Method { object, method } => {
                let (name, all_args) = match method.as_str() {
                    "copy" | "astype" => {
                        if let Atom::Name(n) = object {
                            if self.act.atom_active(object) {
                                out.push(Contribution::add(
                                    n,
                                    seed.to_string(),
                                    self.result_adjoint_exact,
                                ));
                            }
                        }
                        return Ok(());
                    }
                    m => crate::ir::method_recipe(object, m, args),
                };
                if !self.recipes.adjoints.contains_key(&name) {
                    if self.recipes.nondifferentiable.contains(&name)
                        || self.act.call_inputs_inactive(Some(object), args, kwargs)
                    {
                        return Ok(());
                    }
                    return Err(self.no_recipe(
                        s,
                        &format!("the method `.{method}()`"),
                        crate::ir::method_help(method, &name),
                    ));
                }
                self.recipe(s, &name, result_name, &all_args, kwargs, seed, out)
            }
        }
    }

    /// A function of another module of the project is differentiated like one of this
    /// module, under its canonical name.
    fn project_function(&self, callee: &Callee) -> Option<Callee> {
        match callee {
            Callee::Function {
                canonical: Some(c),
                local: false,
                ..
            } if !self.recipes.adjoints.contains_key(c)
                && !self.recipes.nondifferentiable.contains(c)
                && self.callees.params(c).is_some() =>
            {
                Some(Callee::Function {
                    text: c.clone(),
                    canonical: None,
                    local: true,
                })
            }
            _ => None,
        }
    }

    /// Is `value` a call whose derivative is the backward half of a split helper (see
    /// `Callees::split`)? Its backward half must run whenever its forward half ran, so its
    /// seed is never left `None`.
    fn is_split_call(&mut self, s: &Stmt, value: &Expr) -> R<bool> {
        let Expr::Call {
            callee,
            args,
            kwargs,
        } = value
        else {
            return Ok(false);
        };
        let project_function = self.project_function(callee);
        let Callee::Function {
            text, local: true, ..
        } = project_function.as_ref().unwrap_or(callee)
        else {
            return Ok(false);
        };
        if self.recipes.adjoints.contains_key(text)
            || (project_function.is_some() && !self.callees.mutated_params(text).is_empty())
        {
            return Ok(false);
        }
        let params = self.callees.params(text).unwrap_or_default();
        let wrt: Vec<usize> = self
            .act
            .active_arguments(&params, args, kwargs)
            .iter()
            .map(|p| p.0)
            .collect();
        if wrt.is_empty() {
            return Ok(false);
        }
        Ok(self
            .callees
            .split(text, &wrt, &updated_positions(s), s)?
            .is_some())
    }

    #[allow(clippy::too_many_arguments)]
    fn recipe(
        &mut self,
        s: &Stmt,
        name: &str,
        result_name: &str,
        args: &[Atom],
        kwargs: &[(String, Atom)],
        seed: &str,
        out: &mut Vec<Contribution>,
    ) -> R<()> {
        // `x * x` is `x` squared: one contribution `2 x d[y]` instead of two products added.
        let squared = matches!(name, "operator.mul" | "numpy.multiply")
            && args.len() == 2
            && kwargs.is_empty()
            && args[0] == args[1]
            && args[0].name().is_some();
        let (name, args) = if squared && self.recipes.adjoints.contains_key("numpy.square") {
            ("numpy.square", &args[..1])
        } else {
            (name, args)
        };
        let Some(recipe) = self.recipes.adjoints.get(name) else {
            // Suggest the recipe as the user spells the call (`np.i0`, not `numpy.i0`).
            let spelled = called_as(s).unwrap_or(name);
            let keywords: Vec<String> = kwargs.iter().map(|(k, _)| k.clone()).collect();
            return Err(self.no_recipe(
                s,
                &format!("`{spelled}`"),
                crate::recipes::recipe_suggestion(spelled, args.len(), &keywords, false),
            ));
        };
        let bindings = recipe.bind(args, kwargs).map_err(|e| {
            let o = s.origin();
            self.file.diagnostic(
                DiagnosticKind::Unsupported,
                format!("cannot apply the recipe for `{name}`: {e}"),
                o.start,
                o.end,
            )
        })?;
        if recipe.user {
            out.push(Contribution::Local(Code::Comment(format!(
                "{} ({})",
                crate::code::RECIPE_CITATION,
                recipe.origin
            ))));
        }
        // The user's recipes are taken as written: nothing vouches for their shapes.
        let mut facts = if recipe.user {
            None
        } else {
            self.template_facts(s, result_name, seed, &bindings)
        };
        let names = &mut *self.names;
        let stmts = recipe.instantiate(
            result_name,
            seed,
            &bindings,
            &mut |hint| names.fresh(hint),
            facts.as_mut(),
        );
        for t in stmts {
            match t {
                TemplateStmt::Local { name, value } => {
                    out.push(Contribution::Local(Code::assign(&name, &value, true)))
                }
                TemplateStmt::Other(text) => {
                    out.push(Contribution::Local(Code::stmt(&text, vec![], false)))
                }
                TemplateStmt::Contribution { param, value, fact } => {
                    if let Some(Bound::Atom(Atom::Name(n))) = bindings.get(&param) {
                        if self.act.is_active(n) {
                            let var = facts.as_mut().map(|f| f.fact_of_name(n));
                            let (exact, plain) = match (&fact, &var) {
                                (Some(value), Some(var)) => {
                                    (value.shape == var.shape, value.numeric && var.numeric)
                                }
                                _ => (false, false),
                            };
                            out.push(Contribution::Add {
                                var: n.clone(),
                                value,
                                exact,
                                plain,
                                effect: false,
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// What the shape facts know of the names a recipe instantiated at `s` reads: its
    /// arguments (with stand-ins), its result, and the result's adjoint `seed` when that has
    /// the result's exact shape.
    fn template_facts(
        &self,
        s: &Stmt,
        result_name: &str,
        seed: &str,
        bindings: &BTreeMap<String, Bound>,
    ) -> Option<TemplateFacts> {
        let at = self.shapes.as_ref()?.at(s)?;
        let mut facts = TemplateFacts::new();
        for b in bindings.values() {
            if let Bound::Atom(Atom::Name(n)) = b {
                if let Some((fact, stand_in)) = at.reads.get(n) {
                    facts.bind(n, fact.clone(), stand_in.clone());
                }
            }
        }
        let result: Fact = at.result.clone()?;
        if self.result_adjoint_exact {
            facts.bind(seed, result.clone(), None);
        }
        facts.bind(result_name, result, None);
        Some(facts)
    }

    // ---------------------------------------------------------------- finalize

    fn finalize(&mut self, b: Vec<B>) -> Vec<Code> {
        let mut out: Vec<Code> = Vec::new();
        let mut last_comment: Option<String> = None;
        for item in b {
            match item {
                // Consecutive blocks from one user statement share one comment.
                B::Code(Code::Comment(text)) if text.starts_with(crate::code::RECIPE_CITATION) => {
                    out.push(Code::Comment(text))
                }
                B::Code(Code::Comment(text)) => {
                    if last_comment.as_deref() != Some(text.as_str()) {
                        last_comment = Some(text.clone());
                        out.push(Code::Comment(text));
                    }
                }
                B::Code(c) => out.push(c),
                B::RestoreVar { var, key } => {
                    if self.save_var(&var, key) {
                        self.uses_stack = true;
                        if self.sharing.changes.contains_key(&key) {
                            // A change in place: the old contents go back into the object.
                            self.note_restored(key, &var);
                            out.push(self.put_back_in_place(&var));
                        } else {
                            out.push(Code::stmt(
                                &format!("{var} = {stack}.pop()", stack = self.stack),
                                vec![var.clone()],
                                false,
                            ));
                        }
                    }
                }
                B::RestoreUpdated { var, key } => {
                    if self.save_updated(&var, key) {
                        self.uses_stack = true;
                        self.note_restored(key, &var);
                        out.push(self.put_back_in_place(&var));
                    }
                }
                B::RestoreItem { var, index, key } => {
                    if self.restores_container(&var, key) {
                        self.uses_stack = true;
                        self.note_restored(key, &var);
                        out.push(Code::effect(&format!(
                            "tangent.restore_item({var}, {}, {stack}.pop())",
                            index.arg,
                            stack = self.stack
                        )));
                    }
                }
                B::RestoreAppend { var, key } => {
                    if self.restores_container(&var, key) {
                        self.note_restored(key, &var);
                        out.push(Code::effect(&format!("{var}.pop()")));
                    }
                }
                B::RestorePopLast { var, key } => {
                    if self.restores_container(&var, key) {
                        self.uses_stack = true;
                        self.note_restored(key, &var);
                        out.push(Code::effect(&format!(
                            "{var}.append({stack}.pop())",
                            stack = self.stack
                        )));
                    }
                }
                B::ResetNone(adj) => {
                    if self.noneable.contains(&adj) {
                        out.push(Code::assign(&adj, "None", true));
                    }
                }
                B::If { test, body, orelse } => {
                    let body = self.finalize(body);
                    let orelse = self.finalize(orelse);
                    if is_empty(&body) && is_empty(&orelse) {
                        // Drop the comment that announced it.
                        if matches!(out.last(), Some(Code::Comment(_))) {
                            out.pop();
                        }
                        continue;
                    }
                    let uses = test.reads().into_iter().map(str::to_string).collect();
                    out.push(Code::If {
                        test: test.to_string(),
                        uses,
                        body,
                        orelse,
                    });
                }
                B::Loop {
                    key,
                    target: _,
                    body,
                } if self.checkpointed.contains_key(&key) => {
                    let body = self.finalize(body);
                    if is_empty(&body) {
                        if matches!(out.last(), Some(Code::Comment(_))) {
                            out.pop();
                        }
                        continue;
                    }
                    out.extend(self.checkpointed_backward(key, body));
                }
                B::Loop { key, target, body } => {
                    let mut inner = Vec::new();
                    if let Some(t) = &target {
                        if self.needed.contains(t) {
                            inner.push(Code::stmt(
                                &format!("{t} = {stack}.pop()", stack = self.stack),
                                vec![t.clone()],
                                false,
                            ));
                        }
                    }
                    let body = self.finalize(body);
                    if is_empty(&body) {
                        if matches!(out.last(), Some(Code::Comment(_))) {
                            out.pop();
                        }
                        continue;
                    }
                    inner.extend(body);
                    self.uses_stack = true;
                    self.live_loops.insert(key);
                    let counter = self.names.fresh("iterations");
                    self.loop_counters.insert(key, counter.clone());
                    out.push(Code::stmt(
                        &format!("{counter} = {stack}.pop()", stack = self.stack),
                        vec![counter.clone()],
                        false,
                    ));
                    // `_` unless the function reads a `_` of its own (`for _, x in
                    // enumerate(xs)` indexes `xs` with it), which the body restores and reads.
                    let var = if crate::activity::first_use(&self.f.body, "_").is_some() {
                        self.names.fresh("rep")
                    } else {
                        "_".to_string()
                    };
                    out.push(Code::Loop {
                        header: format!("for {var} in range({counter})"),
                        defs: vec![var],
                        uses: vec![counter.clone()],
                        body: inner,
                    });
                }
                B::Guard { adj, body } => {
                    let body = self.finalize(body);
                    if !is_empty(&body) {
                        out.push(Code::If {
                            test: format!("{adj} is not None"),
                            uses: vec![adj.clone()],
                            body,
                            orelse: vec![],
                        });
                    }
                }
            }
        }
        out
    }

    /// The backward pass of checkpointed loop `key` (its body's backward pass `body`): for
    /// each snapshot, last first, restore it, run the iteration again with taping (spliced in
    /// where the marker is, once the forward sweep is generated), then its backward pass.
    fn checkpointed_backward(&mut self, key: usize, body: Vec<Code>) -> Vec<Code> {
        let Some(Stmt::For {
            target,
            iter,
            body: primal,
            ..
        }) = self.checkpointed.get(&key).copied()
        else {
            unreachable!()
        };
        let mut outside = crate::checkpoint::bound_outside(&self.f.body, self.checkpointed[&key]);
        outside.extend(self.f.params.iter().map(|p| p.name.clone()));
        let names = crate::checkpoint::snapshot(target, primal, &outside, &self.needed);
        let list = self.names.fresh("checkpoints");
        self.uses_stack = true;
        self.live_loops.insert(key);
        self.snapshots.insert(key, (list.clone(), names.clone()));
        let mut inner = vec![
            Code::Comment(
                "Run this part again from its checkpoint, saving what its backward pass reads"
                    .into(),
            ),
            crate::checkpoint::marker(key),
        ];
        inner.extend(body);
        let snapshot = crate::checkpoint::pattern(&names);
        // The loop variable (a segment of the user's loop) comes from the loop's sequence.
        let (header, mut defs, mut uses) = match iter {
            Expr::Atom(Atom::Name(seq)) if crate::checkpoint::reads(primal).contains(target) => (
                format!("for {target}, {snapshot} in zip({seq}[::-1], {list}[::-1])"),
                vec![target.clone()],
                vec![seq.clone()],
            ),
            _ => (format!("for {snapshot} in {list}[::-1]"), vec![], vec![]),
        };
        defs.extend(names);
        uses.push(list.clone());
        vec![
            Code::stmt(
                &format!("{list} = {stack}.pop()", stack = self.stack),
                vec![list],
                false,
            ),
            Code::Loop {
                header,
                defs,
                uses,
                body: inner,
            },
        ]
    }

    /// The forward sweep of a live checkpointed loop: the loop without taping, saving a
    /// snapshot at the start of each iteration; the taped body is kept for the backward pass.
    fn checkpointed_forward(
        &mut self,
        s: &Stmt,
        target: &str,
        iter: &Expr,
        body: &[Stmt],
        defined: &BTreeSet<String>,
    ) -> R<Vec<Code>> {
        let key = s as *const Stmt as usize;
        let (list, names) = self.snapshots[&key].clone();
        for n in &names {
            if n != target && !defined.contains(n) {
                self.preinit.insert(n.clone());
            }
        }
        let copied = crate::checkpoint::changed_in_place(body);
        let mut inner = vec![Code::effect(&format!(
            "{list}.append({})",
            crate::checkpoint::saved(&names, &copied)
        ))];
        let mut d = defined.clone();
        d.insert(target.to_string());
        self.taping = false;
        let untaped = self.forward_block(body, true, &mut d, &[]);
        self.taping = true;
        inner.extend(untaped?);
        let mut d = defined.clone();
        d.extend(names.iter().cloned());
        d.insert(target.to_string());
        let taped = self.forward_block(body, true, &mut d, &[])?;
        self.recomputes.insert(key, taped);
        Ok(vec![
            Code::assign(&list, "[]", false),
            Code::Loop {
                header: format!("for {target} in {iter}"),
                defs: vec![target.to_string()],
                uses: iter.reads().into_iter().map(str::to_string).collect(),
                body: inner,
            },
            Code::effect(&format!("{stack}.append({list})", stack = self.stack)),
        ])
    }

    // ---------------------------------------------------------------- forward

    /// `epilogue`: statements to run before leaving an iteration of the innermost loop.
    fn forward_block(
        &mut self,
        body: &[Stmt],
        in_loop: bool,
        defined: &mut BTreeSet<String>,
        epilogue: &[Code],
    ) -> R<Vec<Code>> {
        let mut out = Vec::new();
        for s in body {
            // A change in place another name may see: checked before it happens.
            if let Some(guard) = self.sharing.guarded.get(&(s as *const Stmt as usize)) {
                // A name it checks may not be assigned yet (a later iteration's): None until it is.
                for o in guard.names() {
                    if !defined.contains(o) {
                        self.preinit.insert(o.clone());
                    }
                }
                out.extend(guard.code().iter().map(|c| Code::effect(c)));
            }
            match s {
                Stmt::Assign {
                    target,
                    value,
                    inplace,
                    ..
                } => {
                    let key = s as *const Stmt as usize;
                    // The new value of an argument a helper wrote into is the same object,
                    // saved with the call.
                    if !matches!(inplace, Some(InPlace::Updated)) && self.save_var(target, key) {
                        self.uses_stack = true;
                        if !defined.contains(target) {
                            self.preinit.insert(target.clone());
                        }
                        // Changed in place below: its old contents, not the object.
                        let saved = if inplace.is_some() {
                            format!("tangent.copy({target})")
                        } else {
                            target.clone()
                        };
                        out.push(Code::effect(&format!(
                            "{stack}.append({saved})",
                            stack = self.stack
                        )));
                    }
                    if let Some(InPlace::Updates(updated)) = inplace {
                        for (_, u) in updated {
                            if self.save_updated(u, key) {
                                self.uses_stack = true;
                                out.push(Code::effect(&format!(
                                    "{stack}.append(tangent.copy({u}))",
                                    stack = self.stack
                                )));
                            }
                        }
                    }
                    let split = self.split_calls.get(&key).filter(|_| self.taping);
                    // A change in place reads the object it changes (and what it passes).
                    let mut uses: Vec<String> =
                        value.reads().into_iter().map(str::to_string).collect();
                    if let Some(how) = inplace {
                        uses.push(target.clone());
                        if let InPlace::Updates(updated) = how {
                            uses.extend(updated.iter().map(|(_, n)| n.clone()));
                        }
                    }
                    let (text, pure) = match (split, value, inplace) {
                        // A split helper: its forward half runs it and saves on the stack (and
                        // returns the new values of the arguments it writes into with its value).
                        (Some(forward), Expr::Call { args, kwargs, .. }, _) => {
                            self.uses_stack = true;
                            if matches!(inplace, Some(InPlace::Updates(_))) {
                                self.split_results.insert(target.clone());
                            }
                            let mut parts = vec![self.stack.clone()];
                            parts.extend(crate::ir::call_arguments(args, kwargs));
                            (format!("{target} = {forward}({})", parts.join(", ")), false)
                        }
                        // The argument's new value, as the helper's forward half gave it: the
                        // caller's object itself, or the helper gave its parameter a new value
                        // (a number), which the caller does not see, and the derivative would
                        // be wrong.
                        (
                            _,
                            Expr::Subscript {
                                value: Atom::Name(result),
                                ..
                            },
                            Some(InPlace::Updated),
                        ) if self.split_results.contains(result) => {
                            out.push(Code::effect(&format!(
                                "tangent.check_updated({target}, {value})"
                            )));
                            (format!("{target} = {value}"), false)
                        }
                        (_, _, Some(how)) => (crate::ir::in_place_text(target, value, how), false),
                        _ => (format!("{target} = {value}"), is_pure(value, self.recipes)),
                    };
                    out.push(Code::Stmt {
                        text,
                        defs: vec![target.clone()],
                        uses,
                        pure,
                    });
                    defined.insert(target.clone());
                }
                Stmt::AssignIndex {
                    target,
                    index,
                    value,
                    ..
                } => {
                    if self.taping && self.restores_container(target, s as *const Stmt as usize) {
                        self.uses_stack = true;
                        out.push(Code::effect(&format!(
                            "{stack}.append(tangent.save_item({target}, {}))",
                            index.arg,
                            stack = self.stack
                        )));
                    }
                    let mut uses = vec![target.clone()];
                    uses.extend(index.reads.iter().cloned());
                    uses.extend(value.name().map(str::to_string));
                    out.push(Code::Stmt {
                        text: format!("{target}[{}] = {value}", index.text),
                        defs: vec![],
                        uses,
                        pure: false,
                    });
                }
                Stmt::Append { target, value, .. } => {
                    out.push(Code::Stmt {
                        text: format!("{target}.append({value})"),
                        defs: vec![],
                        uses: vec![target.clone()]
                            .into_iter()
                            .chain(value.name().map(str::to_string))
                            .collect(),
                        pure: false,
                    });
                }
                Stmt::If {
                    test, body, orelse, ..
                } => {
                    let mut d1 = defined.clone();
                    let b1 = self.forward_block(body, in_loop, &mut d1, epilogue)?;
                    let mut d2 = defined.clone();
                    let b2 = self.forward_block(orelse, in_loop, &mut d2, epilogue)?;
                    let exits1 = ends_with_exit(body);
                    let exits2 = ends_with_exit(orelse);
                    *defined = match (exits1, exits2) {
                        (true, true) => defined.clone(),
                        (true, false) => d2,
                        (false, true) => d1,
                        (false, false) => d1.intersection(&d2).cloned().collect(),
                    };
                    out.push(Code::If {
                        test: test.to_string(),
                        uses: test.reads().into_iter().map(str::to_string).collect(),
                        body: b1,
                        orelse: b2,
                    });
                }
                Stmt::For {
                    target,
                    iter,
                    body,
                    checkpoint: true,
                    ..
                } if self.taping && self.live_loops.contains(&(s as *const Stmt as usize)) => {
                    out.extend(self.checkpointed_forward(s, target, iter, body, defined)?);
                }
                Stmt::For {
                    target, iter, body, ..
                } => {
                    let key = s as *const Stmt as usize;
                    let live = self.live_loops.contains(&key) && self.taping;
                    let mut inner = Vec::new();
                    let mut epi = Vec::new();
                    let counter = self.loop_counters.get(&key).cloned();
                    if live {
                        let c = counter.clone().unwrap();
                        out.push(Code::assign(&c, "0", false));
                        inner.push(Code::assign(&c, &format!("{c} + 1"), false));
                        if self.needed.contains(target) {
                            epi.push(Code::effect(&format!(
                                "{stack}.append({target})",
                                stack = self.stack
                            )));
                        }
                    }
                    let mut d = defined.clone();
                    d.insert(target.clone());
                    inner.extend(self.forward_block(body, true, &mut d, &epi)?);
                    if !ends_with_exit(body) {
                        inner.extend(epi.iter().cloned());
                    }
                    out.push(Code::Loop {
                        header: format!("for {target} in {iter}"),
                        defs: vec![target.clone()],
                        uses: iter.reads().into_iter().map(str::to_string).collect(),
                        body: inner,
                    });
                    if let (true, Some(c)) = (live, counter) {
                        out.push(Code::effect(&format!(
                            "{stack}.append({c})",
                            stack = self.stack
                        )));
                    }
                }
                Stmt::While { test, body, .. } => {
                    let key = s as *const Stmt as usize;
                    let live = self.live_loops.contains(&key) && self.taping;
                    let mut inner = Vec::new();
                    let counter = self.loop_counters.get(&key).cloned();
                    if live {
                        let c = counter.clone().unwrap();
                        out.push(Code::assign(&c, "0", false));
                        inner.push(Code::assign(&c, &format!("{c} + 1"), false));
                    }
                    let mut d = defined.clone();
                    inner.extend(self.forward_block(body, true, &mut d, &[])?);
                    out.push(Code::Loop {
                        header: format!("while {test}"),
                        defs: vec![],
                        uses: test.reads().into_iter().map(str::to_string).collect(),
                        body: inner,
                    });
                    if let (true, Some(c)) = (live, counter) {
                        out.push(Code::effect(&format!(
                            "{stack}.append({c})",
                            stack = self.stack
                        )));
                    }
                }
                Stmt::Break { .. } => {
                    out.extend(epilogue.iter().cloned());
                    out.push(Code::effect("break"));
                }
                Stmt::Continue { .. } => {
                    out.extend(epilogue.iter().cloned());
                    out.push(Code::effect("continue"));
                }
                Stmt::InsertGradOf { .. } => {}
                Stmt::Push { stack, value, .. } => {
                    out.push(Code::effect(&format!("{stack}.append({value})")))
                }
                Stmt::Restore {
                    container,
                    index,
                    saved,
                    ..
                } => {
                    if self.taping && self.restores_container(container, s as *const Stmt as usize)
                    {
                        self.uses_stack = true;
                        out.push(Code::effect(&format!(
                            "{stack}.append(tangent.save_item({container}, {index}))",
                            stack = self.stack
                        )));
                    }
                    out.push(Code::effect(&format!(
                        "tangent.restore_item({container}, {index}, {saved})"
                    )))
                }
                Stmt::PopLast { target, .. } => {
                    if self.taping && self.restores_container(target, s as *const Stmt as usize) {
                        self.uses_stack = true;
                        out.push(Code::effect(&format!(
                            "{stack}.append({target}[-1])",
                            stack = self.stack
                        )));
                    }
                    out.push(Code::Stmt {
                        text: format!("{target}.pop()"),
                        defs: vec![],
                        uses: vec![target.clone()],
                        pure: false,
                    });
                }
                Stmt::Opaque { text, reads, .. } => {
                    out.push(Code::Stmt {
                        text: text.clone(),
                        defs: vec![],
                        uses: reads
                            .iter()
                            .filter(|r| !r.starts_with("__"))
                            .cloned()
                            .collect(),
                        pure: false,
                    });
                }
                Stmt::Return { .. } => {}
            }
        }
        Ok(out)
    }
}

#[derive(Debug)]
enum Contribution {
    Local(Code),
    /// Adds `value` to `var`'s adjoint. `exact`: the value has `var`'s exact shape; `plain`:
    /// it and `var` are numeric (arrays or numbers), so adjoints of `var` add with `+`;
    /// `effect`: computing it has an effect (a split helper's backward half pops the stack),
    /// so it is never removed as dead code.
    Add {
        var: String,
        value: String,
        exact: bool,
        plain: bool,
        effect: bool,
    },
    AddAt {
        var: String,
        index: Index,
        value: String,
    },
}

impl Contribution {
    fn add(var: &str, value: String, exact: bool) -> Contribution {
        Contribution::Add {
            var: var.to_string(),
            value,
            exact,
            plain: false,
            effect: false,
        }
    }
}

/// The span of the call or attribute named in `what` (its text between backquotes) inside
/// the statement, so the caret points at it; the whole statement otherwise.
pub(crate) fn locate(source: &str, s: &Stmt, what: &str) -> (usize, usize) {
    let o = s.origin();
    let text = &source[o.start.min(source.len())..o.end.min(source.len())];
    let needle = what.split('`').nth(1).unwrap_or("");
    let needle = needle.trim_start_matches('.').trim_end_matches("()");
    let short = needle.rsplit('.').next().unwrap_or(needle);
    for candidate in [needle, short] {
        if candidate.is_empty() {
            continue;
        }
        if let Some(i) = text.find(&format!("{candidate}(")) {
            let close = matching_paren(&text[i + candidate.len()..])
                .map_or(text.len(), |j| i + candidate.len() + j + 1);
            return (o.start + i, o.start + close);
        }
        if let Some(i) = text.find(candidate) {
            return (o.start + i, o.start + i + candidate.len());
        }
    }
    (o.start, o.end)
}

/// The function a call statement names, as the user wrote it.
pub(crate) fn called_as(s: &Stmt) -> Option<&str> {
    match s {
        Stmt::Assign {
            value:
                Expr::Call {
                    callee: Callee::Function { text, .. },
                    ..
                },
            ..
        } => Some(text),
        _ => None,
    }
}

fn ends_with_exit(block: &[Stmt]) -> bool {
    matches!(
        block.last(),
        Some(Stmt::Break { .. } | Stmt::Continue { .. } | Stmt::Return { .. })
    )
}

/// Can this primal operation be deleted when its result is unused?
fn is_pure(e: &Expr, recipes: &RecipeSet) -> bool {
    match e {
        Expr::Call {
            callee: Callee::Function {
                canonical: Some(c), ..
            },
            ..
        } => {
            (recipes.adjoints.contains_key(c) || recipes.nondifferentiable.contains(c))
                && !c.starts_with("numpy.random")
                && c != "builtins.print"
        }
        Expr::Call { .. } | Expr::Opaque { .. } => false,
        _ => true,
    }
}

/// Does `body` read an attribute of the object `name` (other than an array's `.T`, `.real`...)?
fn reads_attributes(body: &[Stmt], name: &str) -> bool {
    let of_array = |attr: &str| {
        matches!(attr, "T" | "real" | "imag" | "flat")
            || crate::activity::INERT_ATTRIBUTES.contains(&attr)
    };
    crate::ir::all_statements(body).into_iter().any(|s| {
        matches!(s, Stmt::Assign { value: Expr::Attribute { value: Atom::Name(n), attr }, .. } if n == name && !of_array(attr))
    })
}

/// Is `name` assigned inside a loop of `body`?
fn assigned_in_loop(body: &[Stmt], name: &str) -> bool {
    body.iter().any(|s| match s {
        Stmt::For { body, .. } | Stmt::While { body, .. } => {
            !crate::ir::assignments_of(body, name).is_empty()
        }
        Stmt::If { body, orelse, .. } => {
            assigned_in_loop(body, name) || assigned_in_loop(orelse, name)
        }
        _ => false,
    })
}

/// Marks the assignments that may overwrite an earlier value: `may` holds the names that may
/// be defined at this point on some path (including earlier iterations of enclosing loops).
fn find_overwrites(body: &[Stmt], may: &mut BTreeSet<String>, out: &mut BTreeSet<usize>) {
    for s in body {
        match s {
            Stmt::Assign { target, .. } => {
                if !may.insert(target.clone()) {
                    out.insert(s as *const Stmt as usize);
                }
            }
            Stmt::If { body, orelse, .. } => {
                let mut m1 = may.clone();
                find_overwrites(body, &mut m1, out);
                let mut m2 = may.clone();
                find_overwrites(orelse, &mut m2, out);
                may.extend(m1);
                may.extend(m2);
            }
            Stmt::For { body, .. } | Stmt::While { body, .. } => {
                // A later iteration sees what earlier ones assigned.
                let mut assigned = BTreeMap::new();
                count_assignments(body, &mut assigned);
                if let Stmt::For { target, .. } = s {
                    may.insert(target.clone());
                }
                may.extend(assigned.into_keys());
                find_overwrites(body, &mut may.clone(), out);
            }
            _ => {}
        }
    }
}

fn count_assignments(body: &[Stmt], out: &mut BTreeMap<String, usize>) {
    for s in body {
        match s {
            Stmt::Assign { target, .. } => *out.entry(target.clone()).or_insert(0) += 1,
            Stmt::If { body, orelse, .. } => {
                count_assignments(body, out);
                count_assignments(orelse, out);
            }
            Stmt::For { target, body, .. } => {
                *out.entry(target.clone()).or_insert(0) += 2;
                count_assignments(body, out);
            }
            Stmt::While { body, .. } => count_assignments(body, out),
            _ => {}
        }
    }
}

fn collect_b_uses(b: &[B], out: &mut BTreeSet<String>) {
    for item in b {
        match item {
            B::Code(c) => all_uses(std::slice::from_ref(c), out),
            B::RestoreVar { .. }
            | B::RestoreUpdated { .. }
            | B::RestoreAppend { .. }
            | B::RestorePopLast { .. }
            | B::ResetNone(_) => {}
            B::RestoreItem { index, .. } => out.extend(index.reads.iter().cloned()),
            B::If { test, body, orelse } => {
                out.extend(test.reads().into_iter().map(str::to_string));
                collect_b_uses(body, out);
                collect_b_uses(orelse, out);
            }
            B::Loop { body, .. } => collect_b_uses(body, out),
            B::Guard { body, .. } => collect_b_uses(body, out),
        }
    }
    let _ = names_in;
}

/// Offset of the parenthesis closing the one `text` starts with.
fn matching_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, ch) in text.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The assignment that defines `name`, if there is exactly one.
fn find_definition<'s>(body: &'s [Stmt], name: &str) -> Option<&'s Stmt> {
    let mut found = crate::ir::assignments_of(body, name);
    if found.len() == 1 { found.pop() } else { None }
}

/// The parameter positions whose new values a call statement gets back with its result
/// (`ir::InPlace::Updates`).
fn updated_positions(s: &Stmt) -> Vec<usize> {
    match s {
        Stmt::Assign {
            inplace: Some(InPlace::Updates(updated)),
            ..
        } => updated.iter().map(|(p, _)| *p).collect(),
        _ => Vec::new(),
    }
}
