//! Shared memory: which names may share an object, and which statements change an object in
//! place (`x[i] = v`, `xs.append(v)`, `x += v`, `out=x`, a helper writing its argument).
//!
//! The IR treats names as values. That is Python's meaning as long as no object changed in
//! place is read through another name afterwards: `head = v[:2]; v *= 3.0; ... head ...`
//! reads the changed memory through `head`, which the IR would take for the old value, and a
//! derivative would be silently wrong. So, for code the user wrote:
//! - a change in place of an object that another name still in use shares (a view, an alias,
//!   a list holding it, an item or attribute of it) is **refused** at that line; for `x op= v`,
//!   which changes arrays in place but gives numbers a new value, the generated code checks
//!   at run time that `x` is not an array or list (and raises at the line if it is), so
//!   `t_prev = t; t += dt` still works for numbers;
//! - reverse mode **undoes** in place, in its backward pass, every change of an object the
//!   backward pass reads through any name ([`Sharing::changes`], [`Sharing::objects`]), so
//!   that views and saved references see each object as it was when the primal read it.
//!
//! The analysis: a flow-sensitive points-to over the IR (each name maps to the abstract
//! objects it may hold: the parameters' objects, one object per statement that makes a new
//! value, module-level objects), with flow-insensitive *contents* (the objects a list, tuple,
//! dict or array holds: a view or item of `c` is taken to share all of `c`), and liveness.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use crate::diagnostics::{Diagnostic, DiagnosticKind};
use crate::effects::Summary;
use crate::ir::{Atom, Callee, Expr, Function, InPlace, Stmt};
use crate::parse::SourceFile;
use crate::recipes::RecipeSet;

/// An abstract object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Obj {
    /// The object of parameter `i`.
    Param(usize),
    /// The latest new value made by the statement at this address.
    Site(usize),
    /// The values that statement made before its latest run (in a loop): told apart from
    /// the latest, so that changing this iteration's new list does not look like changing
    /// the lists earlier iterations stored away.
    Older(usize),
    /// A module-level object.
    Global(String),
    /// A view or an item of an object: it sees changes of the object's memory (an array's
    /// elements), not those of a list's structure (`append`, `pop`).
    Part(Box<Obj>),
}

impl Obj {
    /// The object a view or item is part of (itself for a whole object).
    pub fn whole(&self) -> &Obj {
        match self {
            Obj::Part(o) => o.whole(),
            o => o,
        }
    }

    /// A view or item of this object.
    fn part(&self) -> Obj {
        Obj::Part(Box::new(self.whole().clone()))
    }

    /// The object, whatever the run of the statement that made it (`Older` as `Site`).
    pub fn any_run(&self) -> Obj {
        match self {
            Obj::Older(k) => Obj::Site(*k),
            Obj::Part(o) => Obj::Part(Box::new(o.any_run())),
            o => o.clone(),
        }
    }
}

/// What a change of the memory of `objs` changes: them, their views and items, and the
/// objects they are views of.
fn with_parts(objs: &Objs) -> Objs {
    objs.iter()
        .flat_map(|o| [o.clone(), o.part(), o.whole().clone()])
        .collect()
}

type Objs = BTreeSet<Obj>;

/// A set of objects shared between states until one of them changes it (states are copied
/// at every branch and loop round; most of their sets stay as they were).
type Shared = Rc<Objs>;

/// The analysis state at a point: the objects each name may hold, and the objects each
/// object may hold (a list's items, a tuple's, a dict's values, an object's attributes).
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash)]
struct State {
    names: BTreeMap<String, Shared>,
    contents: BTreeMap<Obj, Shared>,
}

/// `theirs` joined into `mine`, copying `mine` only when it gains something.
fn join_into(mine: &mut Shared, theirs: &Shared) {
    if Rc::ptr_eq(mine, theirs) || theirs.is_subset(mine) {
        return;
    }
    if mine.is_empty() {
        *mine = theirs.clone();
        return;
    }
    Rc::make_mut(mine).extend(theirs.iter().cloned());
}

impl State {
    fn join(&mut self, other: &State) {
        for (k, v) in &other.names {
            join_into(self.names.entry(k.clone()).or_default(), v);
        }
        for (k, v) in &other.contents {
            join_into(self.contents.entry(k.clone()).or_default(), v);
        }
    }

    /// The objects `name` may hold (none when it holds nothing yet).
    fn name(&self, name: &str) -> Objs {
        self.names
            .get(name)
            .map(|o| (**o).clone())
            .unwrap_or_default()
    }

    /// `objs` and everything they hold.
    fn closure(&self, objs: Objs) -> Objs {
        closure(&self.contents, objs)
    }

    /// The statement at `key` makes a new value: the one it made before becomes an older one.
    fn age(&mut self, key: usize) {
        let latest = Obj::Site(key);
        let older = Obj::Older(key);
        let (latest_part, older_part) = (latest.part(), older.part());
        let rename = |objs: &mut Shared| {
            if !objs.contains(&latest) && !objs.contains(&latest_part) {
                return;
            }
            let objs = Rc::make_mut(objs);
            if objs.remove(&latest) {
                objs.insert(older.clone());
            }
            if objs.remove(&latest_part) {
                objs.insert(older_part.clone());
            }
        };
        for objs in self.names.values_mut() {
            rename(objs);
        }
        for objs in self.contents.values_mut() {
            rename(objs);
        }
        if let Some(held) = self.contents.remove(&latest) {
            join_into(self.contents.entry(older).or_default(), &held);
        }
    }
}

fn closure<V: std::borrow::Borrow<Objs>>(contents: &BTreeMap<Obj, V>, mut objs: Objs) -> Objs {
    let mut todo: Vec<Obj> = objs.iter().cloned().collect();
    // Each object's contents are walked once (its views and items share them).
    let mut walked: BTreeSet<&Obj> = BTreeSet::new();
    while let Some(o) = todo.pop() {
        let Some((whole, held)) = contents.get_key_value(o.whole()) else {
            continue;
        };
        if !walked.insert(whole) {
            continue;
        }
        for h in held.borrow() {
            if objs.insert(h.clone()) {
                todo.push(h.clone());
            }
        }
    }
    objs
}

/// What the analysis found (see the module documentation).
#[derive(Debug, Default, Clone)]
pub struct Sharing {
    /// The objects each statement that changes an object in place may change, by address.
    pub changes: BTreeMap<usize, Objs>,
    /// Every object each name may hold somewhere in the function.
    pub objects: BTreeMap<String, Objs>,
    /// Changes in place (by address of the statement) that another name in use may see
    /// (it may share the memory): the generated code checks at run time, before the change,
    /// that it does not, and raises at the line if it does.
    pub guarded: BTreeMap<usize, Guard>,
    /// Objects held by each object, anywhere in the function.
    contents: BTreeMap<Obj, Objs>,
}

impl Sharing {
    /// Every object `name` may hold, and what those hold (whatever the run of the statement
    /// that made each).
    pub fn reachable(&self, name: &str) -> Objs {
        closure(
            &self.contents,
            self.objects.get(name).cloned().unwrap_or_default(),
        )
    }

    /// Checks at the entry of `f`: a parameter it changes in place must not share memory
    /// with another parameter (`f(x, x)`, `f(x, x.T)`), which its derivative takes for
    /// separate values. Empty for generated code.
    pub fn entry_guards(&self, f: &Function, file: SourceFile<'_>) -> Vec<String> {
        let mut out = Vec::new();
        for (i, p) in f.params.iter().enumerate() {
            let param = Obj::Param(i);
            let change = f
                .body
                .iter()
                .flat_map(|s| crate::ir::all_statements(std::slice::from_ref(s)))
                .find(|s| {
                    self.changes
                        .get(&(*s as *const Stmt as usize))
                        .is_some_and(|c| c.iter().any(|o| o.whole() == &param))
                });
            let Some(change) = change else { continue };
            let others: Vec<&str> = f
                .params
                .iter()
                .filter(|q| q.name != p.name)
                .map(|q| q.name.as_str())
                .collect();
            if others.is_empty() {
                continue;
            }
            let o = change.origin();
            let message = format!(
                "{}:{}: `{}` changes `{}` in place, and the same call gave another argument that shares its memory (the same array, or a view of it): Tangent differentiates `{}` for separate arguments; pass a copy",
                file.path,
                file.line_of(o.start),
                o.text,
                p.name,
                f.name,
            );
            out.push(format!(
                "tangent.in_place_check({}, {}, {})",
                p.name,
                crate::emit::python_string(&message),
                others.join(", ")
            ));
        }
        out
    }

    /// `object` and everything it holds, anywhere in the function.
    pub fn held_by(&self, object: Obj) -> Objs {
        closure(&self.contents, [object].into())
    }

    /// Must the change statement `key` makes be undone by the backward pass, given the names
    /// it reads (`needed`)? Yes when one of them may hold (or hold something holding) an
    /// object the statement changes.
    pub fn change_is_read(&self, key: usize, needed: &BTreeSet<String>) -> bool {
        let Some(changed) = self.changes.get(&key) else {
            return false;
        };
        needed
            .iter()
            .any(|n| !self.reachable(n).is_disjoint(changed))
    }
}

/// A check the generated code makes before a change in place (see `Sharing::guarded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// The names whose objects the statement changes.
    pub changed: Vec<String>,
    /// The names read afterwards that may share them.
    pub others: Vec<String>,
    /// The error to raise when one does (with the file and line).
    pub message: String,
    /// The (view, base) pairs the statements after the change keep in step (see
    /// `normalize::views`): they must share memory as arrays do, or not at all (a list
    /// holding an array is not followed).
    pub views: Vec<(String, String)>,
}

impl Guard {
    /// The statements making the check: `tangent.in_place_check(x, message, other...)`.
    pub fn code(&self) -> Vec<String> {
        let message = crate::emit::python_string(&self.message);
        let mut args = self.others.clone();
        if !self.views.is_empty() {
            let pairs: Vec<String> = self
                .views
                .iter()
                .map(|(v, b)| format!("({v}, {b})"))
                .collect();
            args.push(format!("views=({},)", pairs.join(", ")));
        }
        self.changed
            .iter()
            .map(|c| {
                format!(
                    "tangent.in_place_check({c}, {message}, {})",
                    args.join(", ")
                )
            })
            .collect()
    }

    /// Every name the check reads besides the changed ones.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.others
            .iter()
            .chain(self.views.iter().flat_map(|(v, b)| [v, b]))
    }
}

/// The runtime test guarding the statements that keep a view in step (`normalize::views`).
pub const IS_VIEW_OF: &str = "tangent.is_view_of";

/// `_v = tangent.is_view_of(view, base)` followed by `if _v: ...`: the pair `(view, base)`,
/// the name the block gives a new value (`base` written back, or `view` made again), and
/// the block.
fn view_step<'s>(test: &'s Stmt, block: &'s Stmt) -> Option<(String, String, String, &'s [Stmt])> {
    let Stmt::Assign {
        target: flag,
        value:
            Expr::Call {
                callee:
                    Callee::Function {
                        canonical: Some(c), ..
                    },
                args,
                ..
            },
        inplace: None,
        ..
    } = test
    else {
        return None;
    };
    let [Atom::Name(view), Atom::Name(base)] = &args[..] else {
        return None;
    };
    let Stmt::If {
        test: Expr::Atom(Atom::Name(t)),
        body,
        orelse,
        ..
    } = block
    else {
        return None;
    };
    if c != IS_VIEW_OF || t != flag || !orelse.is_empty() {
        return None;
    }
    let named = match body.last()? {
        Stmt::AssignIndex { target, .. } if target == base => base.clone(),
        Stmt::Assign {
            target,
            inplace: None,
            ..
        } if (target == view || target == base) && body.len() == 1 => target.clone(),
        _ => return None,
    };
    Some((view.clone(), base.clone(), named, body))
}

/// For each change in place followed by steps keeping views in step: the names they give new
/// values and the (view, base) pairs; and the statements of those steps (not checked).
#[derive(Default)]
struct ViewSteps {
    after: BTreeMap<usize, (BTreeSet<String>, Vec<(String, String)>)>,
    inside: BTreeSet<usize>,
}

impl ViewSteps {
    fn of(body: &[Stmt]) -> ViewSteps {
        let mut out = ViewSteps::default();
        out.block(body);
        out
    }

    fn block(&mut self, body: &[Stmt]) {
        let mut i = 0;
        while i < body.len() {
            let s = &body[i];
            match s {
                Stmt::If { body, orelse, .. } => {
                    self.block(body);
                    self.block(orelse);
                }
                Stmt::For { body, .. } | Stmt::While { body, .. } => self.block(body),
                _ => {}
            }
            i += 1;
            if !changes_in_place(s) {
                continue;
            }
            // A call changing its arguments: the steps follow their new values.
            while matches!(
                body.get(i),
                Some(Stmt::Assign {
                    inplace: Some(InPlace::Updated),
                    ..
                })
            ) {
                i += 1;
            }
            let mut steps = (BTreeSet::new(), Vec::new());
            while i + 1 < body.len() {
                let Some((view, base, named, block)) = view_step(&body[i], &body[i + 1]) else {
                    break;
                };
                for t in crate::ir::all_statements(block) {
                    self.inside.insert(t as *const Stmt as usize);
                }
                steps.0.insert(named);
                steps.1.push((view, base));
                i += 2;
            }
            if !steps.1.is_empty() {
                self.after.insert(s as *const Stmt as usize, steps);
            }
        }
    }
}

/// How calls of the module's functions share memory: their summaries (see `effects`).
pub type Summaries<'a> = &'a dyn Fn(&str) -> Option<Summary>;

/// The sharing analysis of `f`; for code the user wrote (`check`), a change in place that
/// another name in use would see is an error at its line (see the module documentation).
pub fn analyze(
    f: &Function,
    result: &[Atom],
    recipes: &RecipeSet,
    summaries: Summaries<'_>,
    file: SourceFile<'_>,
    check: bool,
) -> Result<Sharing, Diagnostic> {
    let mode = if check { Checks::Refuse } else { Checks::None };
    analyze_with(f, result, recipes, summaries, file, mode)
}

/// What [`analyze_with`] does about changes another name in use would see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Nothing (generated code).
    None,
    /// Refuses those certain to be seen, guards the others (code the user wrote).
    Refuse,
    /// Guards them all (to plan which to keep in step, see `normalize::views`).
    Guard,
}

/// [`analyze`], with the checks `mode` says.
pub fn analyze_with(
    f: &Function,
    result: &[Atom],
    recipes: &RecipeSet,
    summaries: Summaries<'_>,
    file: SourceFile<'_>,
    mode: Checks,
) -> Result<Sharing, Diagnostic> {
    // Nothing changes in place: nothing to find.
    if !crate::ir::all_statements(&f.body)
        .iter()
        .any(|s| changes_in_place(s))
    {
        return Ok(Sharing::default());
    }
    let mut a = Analysis {
        recipes,
        summaries,
        changes: BTreeMap::new(),
        before: BTreeMap::new(),
        keep_before: mode != Checks::None,
        objects: BTreeMap::new(),
        contents: BTreeMap::new(),
        loops: HashMap::new(),
        loop_depth: 0,
    };
    let mut entry = State::default();
    for (i, p) in f.params.iter().enumerate() {
        entry
            .names
            .insert(p.name.clone(), Rc::new([Obj::Param(i)].into()));
        // What a parameter holds (its items, attributes) is part of it.
        entry
            .contents
            .insert(Obj::Param(i), Rc::new([Obj::Param(i).part()].into()));
    }
    for p in &f.params {
        a.note(&p.name, &entry);
    }
    for (obj, held) in &entry.contents {
        a.contents
            .entry(obj.clone())
            .or_default()
            .extend(held.iter().cloned());
    }
    a.block(&f.body, entry);
    // Facts for the backward pass hold whatever the run: older values as the latest.
    let mut sharing = Sharing {
        objects: a.objects.clone(),
        contents: a.contents.clone(),
        ..Sharing::default()
    };
    for (key, objs) in &a.changes {
        sharing
            .changes
            .insert(*key, objs.iter().map(Obj::any_run).collect());
    }
    let live = Liveness::of(f, result);
    let steps = ViewSteps::of(&f.body);
    for s in crate::ir::all_statements(&f.body) {
        let key = s as *const Stmt as usize;
        let Some(changed) = a.changes.get(&key) else {
            continue;
        };
        // A write-back keeping a view in step changes no value (see `normalize::views`).
        if steps.inside.contains(&key) {
            continue;
        }
        let (kept, views) = steps.after.get(&key).cloned().unwrap_or_default();
        let own = changed_names(s);
        let state = a.before.get(&key).cloned().unwrap_or_default();
        let after = live.after.get(&key).cloned().unwrap_or_default();
        let seen: Vec<&String> = after
            .iter()
            .filter(|n| {
                !own.contains(&n.as_str())
                    && !kept.contains(*n)
                    && !state.closure(state.name(n)).is_disjoint(changed)
            })
            .collect();
        if (seen.is_empty() && views.is_empty()) || mode == Checks::None {
            continue;
        }
        let o = s.origin();
        let augmented = matches!(
            s,
            Stmt::Assign {
                inplace: Some(InPlace::Augmented),
                ..
            }
        );
        // A second name for the very same object (`b = a`): refused here, unless `x op= v`
        // (a number gets a new value, which is fine).
        let whole = |n: &str| {
            state
                .names
                .get(n)
                .filter(|objs| objs.len() == 1 && objs.iter().all(|o| !matches!(o, Obj::Part(_))))
        };
        let certain = seen.iter().find(|n| {
            own.iter()
                .any(|m| whole(m).is_some() && whole(m) == whole(n))
        });
        if let (Some(other), false, Checks::Refuse) = (certain, augmented, mode) {
            return Err(file
                .diagnostic(
                    DiagnosticKind::Unsupported,
                    format!("`{}` changes in place memory that `{other}` shares, and `{other}` is read afterwards: Tangent cannot follow a change through another name", o.text),
                    o.start,
                    o.end,
                )
                .with_help(format!("make `{other}` a copy where it is made (`.copy()`, `list(...)`), or make a new value here instead of changing this one in place")));
        }
        let changed_names: Vec<String> = own.iter().filter(|n| !matches!(s, Stmt::Assign { target, inplace: Some(InPlace::Updates(_)), .. } if target == *n)).map(|n| n.to_string()).collect();
        let others: Vec<String> = seen.iter().map(|n| n.to_string()).collect();
        let mut named = others.clone();
        for n in views.iter().flat_map(|(v, b)| [v, b]) {
            if !changed_names.contains(n) && !named.contains(n) {
                named.push(n.clone());
            }
        }
        let what = if augmented {
            " (it is an array or a list)"
        } else {
            ""
        };
        let message = format!(
            "{}:{}: `{}` changes in place the memory of `{}`{what}, which `{}` shares and reads afterwards: Tangent cannot follow a change through another name; make a new value here (`x = x ...` instead of `x op= ...`), or make `{}` a copy where it is made",
            file.path,
            file.line_of(o.start),
            o.text,
            changed_names.join("`, `"),
            named.join("`, `"),
            named[0],
        );
        sharing.guarded.insert(
            key,
            Guard {
                changed: changed_names,
                others,
                message,
                views,
            },
        );
    }
    Ok(sharing)
}

/// The names a statement changes in place itself (not other names sharing them).
pub fn changed_names(s: &Stmt) -> Vec<&str> {
    match s {
        Stmt::Assign {
            target,
            inplace: Some(InPlace::Updates(updated)),
            ..
        } => std::iter::once(target.as_str())
            .chain(updated.iter().map(|(_, n)| n.as_str()))
            .collect(),
        Stmt::Assign { target, .. }
        | Stmt::AssignIndex { target, .. }
        | Stmt::Append { target, .. }
        | Stmt::PopLast { target, .. } => vec![target],
        Stmt::Restore { container, .. } => vec![container],
        _ => Vec::new(),
    }
}

/// A loop's state after it, by the loop (its body's address, its target) and a hash of the
/// state before it (the states themselves told apart in the list).
type LoopResults = HashMap<(usize, Option<String>, u64), Vec<(State, State)>>;

struct Analysis<'a> {
    recipes: &'a RecipeSet,
    summaries: Summaries<'a>,
    /// The objects each change in place may change, by address of the statement.
    changes: BTreeMap<usize, Objs>,
    /// The state before each change in place, by address (joined over the runs of loops).
    before: BTreeMap<usize, State>,
    /// Whether to keep `before` (only checks read it; it is most of the cost on big
    /// generated functions).
    keep_before: bool,
    /// Every object each name holds somewhere, and every object each holds (whatever the
    /// run of the statement that made it).
    objects: BTreeMap<String, Objs>,
    contents: BTreeMap<Obj, Objs>,
    /// Each loop's state after it, by the address of its body and the state before it: a
    /// loop nested in others is met again with the same state on their later rounds, and
    /// what it records (changes, contents) only grows, so its result is reused (without,
    /// nested loops cost their rounds multiplied).
    loops: LoopResults,
    /// How many loops the statement being analysed is in.
    loop_depth: usize,
}

/// Does `s` itself change an object in place?
fn changes_in_place(s: &Stmt) -> bool {
    matches!(
        s,
        Stmt::AssignIndex { .. }
            | Stmt::Append { .. }
            | Stmt::PopLast { .. }
            | Stmt::Restore { .. }
            | Stmt::Assign {
                inplace: Some(_),
                ..
            }
    )
}

impl Analysis<'_> {
    fn block(&mut self, body: &[Stmt], mut state: State) -> State {
        for s in body {
            state = self.stmt(s, state);
        }
        state
    }

    fn objs(&self, state: &State, a: &Atom) -> Objs {
        match a {
            Atom::Name(n) => state
                .names
                .get(n)
                .map(|o| (**o).clone())
                .unwrap_or_else(|| [Obj::Global(n.clone())].into()),
            Atom::Const(_) => Objs::new(),
        }
    }

    /// What a view, an item or an attribute of `a` may share: part of `a`'s objects, and the
    /// objects they hold.
    fn parts(&self, state: &State, a: &Atom) -> Objs {
        let objs = self.objs(state, a);
        let mut out: Objs = objs.iter().map(Obj::part).collect();
        // What they hold, and what that holds: one walk for all of them.
        let held: Objs = objs
            .iter()
            .filter_map(|o| state.contents.get(o.whole()))
            .flat_map(|held| held.iter())
            .cloned()
            .collect();
        out.extend(state.closure(held));
        out
    }

    fn hold(&mut self, state: &mut State, container: &Objs, held: &Objs) {
        let held_shared: Shared = Rc::new(held.clone());
        for c in container {
            join_into(
                state.contents.entry(c.whole().clone()).or_default(),
                &held_shared,
            );
            self.contents
                .entry(c.whole().any_run())
                .or_default()
                .extend(held.iter().map(Obj::any_run));
        }
    }

    fn change(&mut self, s: &Stmt, objs: Objs) {
        self.changes
            .entry(s as *const Stmt as usize)
            .or_default()
            .extend(objs);
    }

    fn stmt(&mut self, s: &Stmt, state: State) -> State {
        let key = s as *const Stmt as usize;
        if self.keep_before && changes_in_place(s) {
            self.before.entry(key).or_default().join(&state);
        }
        let state = self.transfer(s, key, state);
        // What the statement binds (what it makes a container hold is noted by `hold`).
        if let Stmt::Assign { target, .. } | Stmt::For { target, .. } = s {
            self.note(target, &state);
        }
        state
    }

    /// The statement at `key` makes a new value (see `State::age`); outside loops it runs
    /// once, so no value it made before can be around (and the whole state is not walked).
    fn age(&self, state: &mut State, key: usize) {
        if self.loop_depth > 0 {
            state.age(key);
        }
    }

    /// Notes the objects `name` holds in `state`, whatever the run.
    fn note(&mut self, name: &str, state: &State) {
        if let Some(objs) = state.names.get(name) {
            self.objects
                .entry(name.to_string())
                .or_default()
                .extend(objs.iter().map(Obj::any_run));
        }
    }

    fn transfer(&mut self, s: &Stmt, key: usize, mut state: State) -> State {
        let site: Objs = [Obj::Site(key)].into();
        match s {
            Stmt::Assign {
                target,
                value,
                inplace,
                ..
            } => match inplace {
                Some(InPlace::Augmented) => {
                    let objs = self.objs(&state, &Atom::Name(target.clone()));
                    if let Expr::BinOp { right, .. } = value {
                        let held = self.parts(&state, right);
                        self.hold(&mut state, &objs, &held);
                    }
                    self.change(s, with_parts(&objs));
                }
                Some(InPlace::Into(_)) => {
                    let objs = self.objs(&state, &Atom::Name(target.clone()));
                    self.change(s, with_parts(&objs));
                }
                Some(InPlace::Updates(updated)) => {
                    let mut changed = Objs::new();
                    for (_, n) in updated {
                        let objs = self.objs(&state, &Atom::Name(n.clone()));
                        changed.extend(with_parts(&objs));
                        changed.extend(self.parts(&state, &Atom::Name(n.clone())));
                    }
                    self.change(s, changed.clone());
                    self.age(&mut state, key);
                    let mut held = self.value(s, value, &mut state);
                    held.extend(changed);
                    self.hold(&mut state, &site, &held);
                    state.names.insert(target.clone(), Rc::new(site));
                }
                Some(InPlace::Updated) => {}
                None => {
                    self.age(&mut state, key);
                    let objs = self.value(s, value, &mut state);
                    state.names.insert(target.clone(), Rc::new(objs));
                }
            },
            // The container changes (an array's memory, a list's slot): its items stay the
            // objects they are (names holding an item share the container, see `parts`).
            Stmt::AssignIndex { target, value, .. } => {
                let objs = self.objs(&state, &Atom::Name(target.clone()));
                let held = self.objs(&state, value);
                self.change(s, with_parts(&objs));
                self.hold(&mut state, &objs, &held);
            }
            Stmt::Append { target, value, .. } => {
                let objs = self.objs(&state, &Atom::Name(target.clone()));
                let held = self.objs(&state, value);
                self.hold(&mut state, &objs, &held);
                self.change(s, objs);
            }
            Stmt::PopLast { target, .. } => {
                let objs = self.objs(&state, &Atom::Name(target.clone()));
                self.change(s, objs);
            }
            Stmt::Restore { container, .. } => {
                let objs = self.objs(&state, &Atom::Name(container.clone()));
                self.change(s, with_parts(&objs));
            }
            Stmt::If { body, orelse, .. } => {
                let mut a = self.block(body, state.clone());
                let b = self.block(orelse, state);
                a.join(&b);
                state = a;
            }
            Stmt::For {
                target, iter, body, ..
            } => {
                let items = match iter {
                    Expr::Atom(a @ Atom::Name(_)) => self.parts(&state, a),
                    _ => site,
                };
                state = self.looped(state, body, Some((target, items)));
            }
            Stmt::While { body, .. } => state = self.looped(state, body, None),
            _ => {}
        }
        state
    }

    /// A loop: the state at the top of its body joins the state before it with the state at
    /// the end of its body, until it settles; after the loop, the body may have run or not.
    fn looped(&mut self, state: State, body: &[Stmt], target: Option<(&String, Objs)>) -> State {
        // (An empty body's address is no loop's own: the target tells those apart.)
        let key = (
            body.as_ptr() as usize,
            target.as_ref().map(|(t, _)| (*t).clone()),
            {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                state.hash(&mut hasher);
                hasher.finish()
            },
        );
        if let Some((_, after)) = self
            .loops
            .get(&key)
            .and_then(|seen| seen.iter().find(|(before, _)| *before == state))
        {
            return after.clone();
        }
        let mut top = state.clone();
        self.loop_depth += 1;
        for _ in 0..64 {
            let mut entry = top.clone();
            if let Some((t, items)) = &target {
                entry.names.insert((*t).clone(), Rc::new(items.clone()));
            }
            let end = self.block(body, entry);
            let mut next = top.clone();
            next.join(&end);
            if next == top {
                break;
            }
            top = next;
        }
        self.loop_depth -= 1;
        self.loops
            .entry(key)
            .or_default()
            .push((state, top.clone()));
        top
    }

    /// The objects the value of `value` (computed by `s`) may be.
    fn value(&mut self, s: &Stmt, value: &Expr, state: &mut State) -> Objs {
        let key = s as *const Stmt as usize;
        let site: Objs = [Obj::Site(key)].into();
        let with = |extra: Objs| -> Objs { site.iter().cloned().chain(extra).collect() };
        match value {
            Expr::Atom(a @ Atom::Name(_)) => self.objs(state, a),
            Expr::Subscript { value, .. } => self.parts(state, value),
            Expr::Attribute { attr, .. }
                if crate::activity::INERT_ATTRIBUTES.contains(&attr.as_str()) =>
            {
                site
            }
            Expr::Attribute { value, .. } => self.parts(state, value),
            Expr::Tuple(items) | Expr::List(items) => {
                let held: Objs = items.iter().flat_map(|i| self.objs(state, i)).collect();
                self.hold(state, &site, &held);
                site
            }
            Expr::Dict(items) => {
                let held: Objs = items
                    .iter()
                    .flat_map(|(_, v)| self.objs(state, v))
                    .collect();
                self.hold(state, &site, &held);
                site
            }
            Expr::Call {
                callee,
                args,
                kwargs,
            } => {
                let all = |state: &State| -> Objs {
                    args.iter()
                        .chain(kwargs.iter().map(|(_, a)| a))
                        .flat_map(|a| self.parts(state, a))
                        .collect()
                };
                match callee {
                    Callee::Function {
                        canonical: Some(c), ..
                    } if crate::effects::is_view_function(c) => with(
                        args.first()
                            .map(|a| self.parts(state, a))
                            .unwrap_or_default(),
                    ),
                    Callee::Function {
                        canonical: Some(c), ..
                    } if c.starts_with("builtins.") => with(all(state)),
                    Callee::Function {
                        canonical: Some(c), ..
                    } if self.known(c) => site,
                    Callee::Function {
                        text, local: true, ..
                    } => match (self.summaries)(text) {
                        Some(summary) => {
                            let mut out = Objs::new();
                            for (i, p) in summary.params.iter().enumerate() {
                                if summary.result_aliases.contains(p) {
                                    if let Some(a) = args.get(i).or_else(|| {
                                        kwargs.iter().find(|(k, _)| k == p).map(|(_, a)| a)
                                    }) {
                                        out.extend(self.parts(state, a));
                                    }
                                }
                            }
                            with(out)
                        }
                        None => with(all(state)),
                    },
                    Callee::Method { object, method }
                        if crate::effects::VIEW_METHODS.contains(&method.as_str()) =>
                    {
                        with(self.parts(state, object))
                    }
                    Callee::Method { method, .. }
                        if matches!(
                            method.as_str(),
                            "copy" | "astype" | "flatten" | "tolist" | "item"
                        ) || crate::effects::DRAW_METHODS.contains(&method.as_str()) =>
                    {
                        site
                    }
                    Callee::Method { method, .. } if self.known(&format!("numpy.{method}")) => site,
                    Callee::Method { object, .. } => {
                        let mut out = all(state);
                        out.extend(self.parts(state, object));
                        with(out)
                    }
                    _ => with(all(state)),
                }
            }
            Expr::Opaque { reads, .. } => with(
                reads
                    .iter()
                    .flat_map(|r| self.parts(state, &Atom::Name(r.clone())))
                    .collect(),
            ),
            _ => site,
        }
    }

    fn known(&self, canonical: &str) -> bool {
        self.recipes.knows(canonical)
    }
}

/// The names live after each statement (read later before being assigned again).
struct Liveness {
    after: BTreeMap<usize, BTreeSet<String>>,
}

impl Liveness {
    fn of(f: &Function, result: &[Atom]) -> Liveness {
        let mut l = Liveness {
            after: BTreeMap::new(),
        };
        let out: BTreeSet<String> = result
            .iter()
            .filter_map(|a| a.name().map(str::to_string))
            .collect();
        // Loops make the sets at their top depend on their end: iterate until settled.
        for _ in 0..64 {
            let before = l.after.clone();
            l.block(&f.body, out.clone());
            if l.after == before {
                break;
            }
        }
        l
    }

    /// Live names before `body`, given those live after it.
    fn block(&mut self, body: &[Stmt], mut live: BTreeSet<String>) -> BTreeSet<String> {
        for s in body.iter().rev() {
            let key = s as *const Stmt as usize;
            self.after
                .entry(key)
                .or_default()
                .extend(live.iter().cloned());
            live = self.after[&key].clone();
            live = self.stmt(s, live);
        }
        live
    }

    fn stmt(&mut self, s: &Stmt, mut live: BTreeSet<String>) -> BTreeSet<String> {
        match s {
            Stmt::If { body, orelse, .. } => {
                let mut a = self.block(body, live.clone());
                a.extend(self.block(orelse, live));
                live = a;
            }
            // The body's start is live at its end (another iteration) and after the loop.
            Stmt::For { body, .. } | Stmt::While { body, .. } => {
                let start = self.block(body, live.clone());
                let mut both = live;
                both.extend(start);
                let start = self.block(body, both.clone());
                both.extend(start);
                live = both;
            }
            Stmt::Assign {
                target,
                inplace: None | Some(InPlace::Updated) | Some(InPlace::Updates(_)),
                ..
            } => {
                live.remove(target);
            }
            _ => {}
        }
        live.extend(s.header_reads().into_iter().map(str::to_string));
        live
    }
}
