//! Effect summaries: what each function of a module does besides computing its result.
//!
//! For every top-level function and every method of a top-level class (`Class.method`), read
//! from its source (nothing runs), a [`Summary`] says
//! - which parameters it **writes** in place: `p[i] = v`, `p.attr = v`, `p += v` (in place for
//!   arrays and lists), `p.append(v)` and the other mutating methods, `out=p` (and the
//!   positional `out` of a ufunc), `np.copyto(p, v)` and the other NumPy functions that write
//!   into their first argument, through names that share `p`'s memory (`row = p[0]; row *= 2`,
//!   `q = p.T`, `for row in p: ...`), and through the helpers it calls;
//! - which parameters its **result may share memory with** (`return p`, `return p[0]`,
//!   `return p.reshape(-1)`, a helper that returns one of its arguments);
//! - its first **effect outside its values**, if any: a random draw, `print` or other I/O, a
//!   write into a module-level object, a call whose effects are unknown (a function that is
//!   neither the module's nor one with a recipe, a method of an object that is not an array).
//!
//! The analysis is flow-insensitive and conservative: a name is taken to share memory with
//! everything it is ever assigned from (views, items, attributes, containers built from it,
//! results of calls that may return an argument); summaries of functions that call each other
//! are iterated to a fixed point. Reverse mode uses `writes` to differentiate a call as one
//! that also returns the new values of the arguments it writes (`ir::InPlace::Updates`),
//! `result_aliases` to know what a call's result shares, and `impure` to refuse running code
//! twice (checkpointing, recursive helpers) when that would repeat an effect.

use std::collections::{BTreeMap, BTreeSet};

use ruff_python_ast::visitor::{Visitor, walk_expr};
use ruff_python_ast::{self as ast, Expr as AExpr, Stmt as AStmt};
use ruff_text_size::Ranged;

use crate::recipes::RecipeSet;
use crate::resolve::ModuleScope;

/// What a function does besides computing its result (see the module documentation).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Its parameters, in order (keyword-only ones last).
    pub params: Vec<String>,
    /// Parameters whose objects it changes in place.
    pub writes: BTreeSet<String>,
    /// Those of `writes` it changes only with `p op= v` (on `p` or a name sharing it): in
    /// place for arrays and lists, while a number just gets a new value, which the caller
    /// does not see.
    pub augmented_writes: BTreeSet<String>,
    /// Parameters whose memory its result may share.
    pub result_aliases: BTreeSet<String>,
    /// Parameters it gives a new value (`p = ...`): after that, `p` no longer names the
    /// caller's object.
    pub rebinds: BTreeSet<String>,
    /// Its first effect outside its values: what, and the byte range of the code doing it.
    pub impure: Option<Effect>,
    /// Those of `writes` it changes whenever it runs, before anything could give them a new
    /// value (by a statement of its body's top level, none before it assigning them): the
    /// caller's object is certainly changed.
    pub certain_writes: BTreeSet<String>,
    /// Its result carries no derivative, whatever it is given: each `return` gives a
    /// constant, a size or type (`a.shape`, `a.device`, `len(a)`), a test, or a call of a
    /// function without a derivative (see [`inert_results`]).
    pub returns_inert: bool,
}

impl Summary {
    /// Positions (in `params`) of the parameters it writes.
    pub fn written_positions(&self) -> Vec<usize> {
        self.params
            .iter()
            .enumerate()
            .filter(|(_, p)| self.writes.contains(*p))
            .map(|(i, _)| i)
            .collect()
    }
}

/// An effect outside a function's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub what: String,
    pub start: usize,
    pub end: usize,
}

/// The summaries of a module's functions, by name (`f`, `Class.method`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    by_function: BTreeMap<String, Summary>,
}

/// Attributes of arrays that are not views of them.
const INERT_ATTRIBUTES: &[&str] = &[
    "shape", "ndim", "size", "dtype", "itemsize", "nbytes", "strides",
];

/// NumPy functions whose result may share memory with their first argument.
const VIEW_FUNCTIONS: &[&str] = &[
    "numpy.reshape",
    "numpy.ravel",
    "numpy.transpose",
    "numpy.swapaxes",
    "numpy.moveaxis",
    "numpy.rollaxis",
    "numpy.squeeze",
    "numpy.expand_dims",
    "numpy.atleast_1d",
    "numpy.atleast_2d",
    "numpy.atleast_3d",
    "numpy.asarray",
    "numpy.asanyarray",
    "numpy.ascontiguousarray",
    "numpy.asfortranarray",
    "numpy.broadcast_to",
    "numpy.broadcast_arrays",
    "numpy.diagonal",
    "numpy.split",
    "numpy.array_split",
    "numpy.hsplit",
    "numpy.vsplit",
    "numpy.dsplit",
    "numpy.flip",
    "numpy.fliplr",
    "numpy.flipud",
    "numpy.rot90",
    "numpy.real",
    "numpy.imag",
    "numpy.matrix_transpose",
    "numpy.permute_dims",
    "numpy.unstack",
    "numpy.lib.stride_tricks.as_strided",
    "numpy.lib.stride_tricks.sliding_window_view",
];

/// Does the NumPy function `canonical` return a view of its first argument (or views)?
pub fn is_view_function(canonical: &str) -> bool {
    VIEW_FUNCTIONS.contains(&canonical)
}

/// Array methods whose result may share memory with the array.
pub const VIEW_METHODS: &[&str] = &[
    "reshape",
    "ravel",
    "transpose",
    "swapaxes",
    "squeeze",
    "view",
    "diagonal",
    "__getitem__",
];

/// Methods that change the object they are called on (arrays, lists, dicts, sets).
pub const MUTATING_METHODS: &[&str] = &[
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "sort",
    "reverse",
    "fill",
    "resize",
    "put",
    "itemset",
    "setflags",
    "partition",
    "update",
    "setdefault",
    "popitem",
    "add",
    "discard",
    "__setitem__",
    "__delitem__",
    "__iadd__",
    "__isub__",
    "__imul__",
    "__itruediv__",
];

/// Methods of random generators (`numpy.random.RandomState`, `Generator`): each draws random
/// numbers into a new value.
pub const DRAW_METHODS: &[&str] = &[
    "randn",
    "rand",
    "random",
    "random_sample",
    "normal",
    "uniform",
    "standard_normal",
    "integers",
    "randint",
    "binomial",
    "poisson",
    "exponential",
    "beta",
    "gamma",
    "multivariate_normal",
    "laplace",
    "lognormal",
    "dirichlet",
    "standard_t",
    "chisquare",
    "logistic",
    "gumbel",
    "standard_exponential",
    "standard_gamma",
];

/// Functions that write into their first argument.
pub const MUTATING_FUNCTIONS: &[&str] = &[
    "numpy.copyto",
    "numpy.fill_diagonal",
    "numpy.put",
    "numpy.place",
    "numpy.putmask",
    "numpy.put_along_axis",
    "numpy.random.shuffle",
    "random.shuffle",
];

/// Calls whose effect is outside the values (their results may differ from call to call).
const EFFECT_PREFIXES: &[(&str, &str)] = &[
    ("numpy.random.", "draws random numbers"),
    ("random.", "draws random numbers"),
    ("builtins.print", "prints"),
    ("builtins.open", "opens a file"),
    ("builtins.input", "reads input"),
    ("time.", "reads the clock"),
    ("os.", "uses the operating system"),
    ("sys.", "uses the interpreter's state"),
    ("logging.", "logs"),
];

/// The number of inputs of a NumPy (or SciPy special) ufunc: a positional argument after
/// them is its `out`. `None` for functions that are not ufuncs.
pub fn ufunc_inputs(canonical: &str) -> Option<usize> {
    const UNARY: &[&str] = &[
        "abs",
        "absolute",
        "negative",
        "positive",
        "exp",
        "exp2",
        "expm1",
        "log",
        "log2",
        "log10",
        "log1p",
        "sqrt",
        "cbrt",
        "square",
        "reciprocal",
        "sin",
        "cos",
        "tan",
        "arcsin",
        "arccos",
        "arctan",
        "sinh",
        "cosh",
        "tanh",
        "arcsinh",
        "arccosh",
        "arctanh",
        "deg2rad",
        "rad2deg",
        "degrees",
        "radians",
        "sign",
        "floor",
        "ceil",
        "trunc",
        "rint",
        "fabs",
        "conjugate",
        "conj",
        "isnan",
        "isinf",
        "isfinite",
        "logical_not",
        "invert",
        "signbit",
        "spacing",
        "sinc",
    ];
    const BINARY: &[&str] = &[
        "add",
        "subtract",
        "multiply",
        "divide",
        "true_divide",
        "floor_divide",
        "power",
        "float_power",
        "mod",
        "remainder",
        "fmod",
        "maximum",
        "minimum",
        "fmax",
        "fmin",
        "arctan2",
        "hypot",
        "logaddexp",
        "logaddexp2",
        "copysign",
        "nextafter",
        "ldexp",
        "greater",
        "greater_equal",
        "less",
        "less_equal",
        "equal",
        "not_equal",
        "logical_and",
        "logical_or",
        "logical_xor",
        "bitwise_and",
        "bitwise_or",
        "bitwise_xor",
        "heaviside",
        "gcd",
        "lcm",
        "matmul",
    ];
    const SPECIAL_UNARY: &[&str] = &[
        "expit", "logit", "erf", "erfc", "erfcx", "erfinv", "erfcinv", "gamma", "gammaln",
        "digamma", "psi", "ndtr", "ndtri", "log_ndtr", "i0", "i1", "entr",
    ];
    const SPECIAL_BINARY: &[&str] = &[
        "xlogy",
        "xlog1py",
        "polygamma",
        "rel_entr",
        "kl_div",
        "beta",
        "betaln",
    ];
    if let Some(name) = canonical.strip_prefix("numpy.") {
        if UNARY.contains(&name) {
            return Some(1);
        }
        if BINARY.contains(&name) {
            return Some(2);
        }
    }
    if let Some(name) = canonical.strip_prefix("scipy.special.") {
        if SPECIAL_UNARY.contains(&name) {
            return Some(1);
        }
        if SPECIAL_BINARY.contains(&name) {
            return Some(2);
        }
    }
    None
}

impl Effects {
    /// The summaries of the functions and methods of a module's statements `body`, names
    /// resolved in `scope`, known functions from `recipes`.
    pub fn of_module(body: &[AStmt], scope: &ModuleScope, recipes: &RecipeSet) -> Effects {
        let mut defs: BTreeMap<String, (&ast::StmtFunctionDef, Option<String>)> = BTreeMap::new();
        for s in body {
            match s {
                AStmt::FunctionDef(f) => {
                    defs.insert(f.name.to_string(), (f, None));
                }
                AStmt::ClassDef(c) => {
                    for m in c.body.iter() {
                        if let AStmt::FunctionDef(f) = m {
                            defs.insert(
                                format!("{}.{}", c.name, f.name),
                                (f, Some(c.name.to_string())),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        let mut effects = Effects {
            by_function: defs
                .iter()
                .map(|(name, (f, _))| {
                    (
                        name.clone(),
                        Summary {
                            params: crate::parse::param_names(f),
                            ..Summary::default()
                        },
                    )
                })
                .collect(),
        };
        // Summaries only grow (sets of names, a first effect once found): iterate until none
        // changes. Each round reads the previous round's summaries of the callees, and runs
        // again only the functions calling one whose summary changed.
        let mut callers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut todo: BTreeSet<String> = defs.keys().cloned().collect();
        for _ in 0..64 {
            let mut changed: BTreeSet<String> = BTreeSet::new();
            for name in &todo {
                let (def, class) = &defs[name];
                let (mut summary, calls) =
                    Analysis::run(def, class.as_deref(), scope, recipes, &effects);
                // The effect reported is the first one found: a recursive function would
                // otherwise describe it again each round (`calls f, which calls f, ...`).
                if let Some(previous) = effects.by_function.get(name).and_then(|s| s.impure.clone())
                {
                    summary.impure = Some(previous);
                }
                for callee in calls {
                    callers.entry(callee).or_default().insert(name.clone());
                }
                if effects.by_function.get(name) != Some(&summary) {
                    changed.insert(name.clone());
                    effects.by_function.insert(name.clone(), summary);
                }
            }
            todo = changed
                .iter()
                .flat_map(|c| callers.get(c).cloned().unwrap_or_default())
                .collect();
            if todo.is_empty() {
                break;
            }
        }
        for name in inert_results(&defs, scope, recipes) {
            if let Some(summary) = effects.by_function.get_mut(&name) {
                summary.returns_inert = true;
            }
        }
        effects
    }

    pub fn get(&self, function: &str) -> Option<&Summary> {
        self.by_function.get(function)
    }
}

/// The functions of `defs` whose results carry no derivative (see
/// [`Summary::returns_inert`]): found from none, adding those whose returns are all inert
/// given the ones found so far (a recursive function is never inert on its own account).
fn inert_results(
    defs: &BTreeMap<String, (&ast::StmtFunctionDef, Option<String>)>,
    scope: &ModuleScope,
    recipes: &RecipeSet,
) -> BTreeSet<String> {
    let mut inert: BTreeSet<String> = BTreeSet::new();
    loop {
        let found: Vec<String> = defs
            .iter()
            .filter(|(name, (def, class))| {
                class.is_none()
                    && !inert.contains(*name)
                    && Inert::of(def, scope, recipes, &inert).returns()
            })
            .map(|(name, _)| name.clone())
            .collect();
        if found.is_empty() {
            return inert;
        }
        inert.extend(found);
    }
}

/// Which values of one function carry no derivative, read from its text.
struct Inert<'a> {
    def: &'a ast::StmtFunctionDef,
    scope: &'a ModuleScope,
    recipes: &'a RecipeSet,
    functions: &'a BTreeSet<String>,
    /// What each local is assigned (`None`: assigned some other way, a loop's target, ...).
    assigned: BTreeMap<String, Vec<Option<&'a AExpr>>>,
    /// Locals that may be changed in place after they are assigned (`lap[1:-1] = ...` into
    /// `lap = np.zeros_like(u)`, a method called on them, handed to a call): never inert.
    changed: BTreeSet<String>,
    params: BTreeSet<String>,
}

impl<'a> Inert<'a> {
    fn of(
        def: &'a ast::StmtFunctionDef,
        scope: &'a ModuleScope,
        recipes: &'a RecipeSet,
        functions: &'a BTreeSet<String>,
    ) -> Self {
        let mut inert = Inert {
            def,
            scope,
            recipes,
            functions,
            assigned: BTreeMap::new(),
            changed: changed_in_place(&def.body),
            params: crate::parse::param_names(def).into_iter().collect(),
        };
        if let Some(v) = &def.parameters.vararg {
            inert.params.insert(v.name.to_string());
        }
        if let Some(k) = &def.parameters.kwarg {
            inert.params.insert(k.name.to_string());
        }
        inert.collect(&def.body);
        inert
    }

    fn collect(&mut self, body: &'a [AStmt]) {
        for s in body {
            match s {
                AStmt::Assign(a) => {
                    for t in &a.targets {
                        match t {
                            AExpr::Name(n) => self
                                .assigned
                                .entry(n.id.to_string())
                                .or_default()
                                .push(Some(&a.value)),
                            other => self.unknown(std::slice::from_ref(other)),
                        }
                    }
                }
                AStmt::If(i) => {
                    self.collect(&i.body);
                    for c in &i.elif_else_clauses {
                        self.collect(&c.body);
                    }
                }
                AStmt::For(f) => {
                    self.unknown(std::slice::from_ref(&f.target));
                    self.collect(&f.body);
                    self.collect(&f.orelse);
                }
                AStmt::While(w) => {
                    self.collect(&w.body);
                    self.collect(&w.orelse);
                }
                AStmt::With(w) => {
                    for item in &w.items {
                        if let Some(v) = &item.optional_vars {
                            self.unknown(std::slice::from_ref(v.as_ref()));
                        }
                    }
                    self.collect(&w.body);
                }
                AStmt::Try(t) => {
                    self.collect(&t.body);
                    for h in &t.handlers {
                        let ast::ExceptHandler::ExceptHandler(h) = h;
                        self.collect(&h.body);
                    }
                    self.collect(&t.orelse);
                    self.collect(&t.finalbody);
                }
                other => {
                    let mut names = BTreeSet::new();
                    crate::normalize::collect_assigned(std::slice::from_ref(other), &mut names);
                    for n in names {
                        self.assigned.entry(n).or_default().push(None);
                    }
                }
            }
        }
    }

    fn unknown(&mut self, targets: &[AExpr]) {
        let mut names = BTreeSet::new();
        for t in targets {
            crate::normalize::collect_target(t, &mut names);
        }
        for n in names {
            self.assigned.entry(n).or_default().push(None);
        }
    }

    /// Are all of the function's returns inert (it has at least one)?
    fn returns(&self) -> bool {
        use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
        struct Returns<'r>(Vec<Option<&'r AExpr>>);
        impl<'r> StatementVisitor<'r> for Returns<'r> {
            fn visit_stmt(&mut self, stmt: &'r AStmt) {
                match stmt {
                    AStmt::Return(r) => self.0.push(r.value.as_deref()),
                    AStmt::FunctionDef(_) | AStmt::ClassDef(_) => {}
                    _ => walk_stmt(self, stmt),
                }
            }
        }
        let mut returns = Returns(Vec::new());
        returns.visit_body(&self.def.body);
        let mut seen = BTreeSet::new();
        !returns.0.is_empty()
            && returns
                .0
                .iter()
                .all(|r| r.is_none_or(|e| self.expr(e, &mut seen)))
    }

    fn expr(&self, e: &AExpr, seen: &mut BTreeSet<String>) -> bool {
        match e {
            AExpr::NumberLiteral(_)
            | AExpr::StringLiteral(_)
            | AExpr::BytesLiteral(_)
            | AExpr::BooleanLiteral(_)
            | AExpr::NoneLiteral(_)
            | AExpr::EllipsisLiteral(_)
            | AExpr::FString(_)
            | AExpr::Compare(_) => true,
            AExpr::UnaryOp(u) => u.op == ast::UnaryOp::Not || self.expr(&u.operand, seen),
            AExpr::Attribute(a) => {
                crate::activity::INERT_ATTRIBUTES.contains(&a.attr.as_str())
                    || crate::normalize::dotted_name(e).is_some_and(|d| {
                        let head = d.split('.').next().unwrap_or_default();
                        !self.params.contains(head) && !self.assigned.contains_key(head)
                    })
            }
            AExpr::BoolOp(b) => b.values.iter().all(|v| self.expr(v, seen)),
            AExpr::BinOp(b) => self.expr(&b.left, seen) && self.expr(&b.right, seen),
            // An item of a size, a type or a constant (`a.shape[0]`).
            AExpr::Subscript(s) => self.expr(&s.value, seen) && self.expr(&s.slice, seen),
            AExpr::Slice(s) => [&s.lower, &s.upper, &s.step]
                .into_iter()
                .all(|part| part.as_deref().is_none_or(|p| self.expr(p, seen))),
            AExpr::If(i) => self.expr(&i.body, seen) && self.expr(&i.orelse, seen),
            AExpr::Tuple(t) => t.elts.iter().all(|v| self.expr(v, seen)),
            AExpr::List(l) => l.elts.iter().all(|v| self.expr(v, seen)),
            AExpr::Name(n) => self.name(n.id.as_str(), seen),
            AExpr::Call(c) => self.call(c),
            _ => false,
        }
    }

    /// A local all of whose values are inert, or a global (which no parameter reaches).
    fn name(&self, name: &str, seen: &mut BTreeSet<String>) -> bool {
        if self.params.contains(name) || self.changed.contains(name) {
            return false;
        }
        let Some(values) = self.assigned.get(name) else {
            return true;
        };
        if !seen.insert(name.to_string()) {
            return true; // (its other values decide)
        }
        values.iter().all(|v| v.is_some_and(|v| self.expr(v, seen)))
    }

    fn call(&self, c: &ast::ExprCall) -> bool {
        let Some(dotted) = crate::normalize::dotted_name(&c.func) else {
            return false;
        };
        if PURE_BUILTINS.contains(&dotted.as_str()) {
            return true;
        }
        if self.functions.contains(&dotted) && !self.assigned.contains_key(&dotted) {
            return true;
        }
        self.scope
            .canonical(&dotted)
            .is_some_and(|canon| self.recipes.nondifferentiable.contains(&canon))
    }
}

/// Builtins that change nothing they are given.
const PURE_BUILTINS: &[&str] = &[
    "len",
    "isinstance",
    "issubclass",
    "hasattr",
    "type",
    "str",
    "repr",
    "id",
    "callable",
];

/// The names `body` may change in place: roots of item and attribute assignments, targets of
/// `x op= v`, objects whose methods it calls, names it hands to calls (other than
/// [`PURE_BUILTINS`]).
fn changed_in_place(body: &[AStmt]) -> BTreeSet<String> {
    use ruff_python_ast::visitor::{Visitor, walk_expr, walk_stmt};
    fn root(e: &AExpr) -> Option<&str> {
        match e {
            AExpr::Name(n) => Some(n.id.as_str()),
            AExpr::Subscript(s) => root(&s.value),
            AExpr::Attribute(a) => root(&a.value),
            AExpr::Starred(s) => root(&s.value),
            _ => None,
        }
    }
    struct V(BTreeSet<String>);
    impl V {
        fn target(&mut self, t: &AExpr, augmented: bool) {
            match t {
                AExpr::Name(n) if augmented => {
                    self.0.insert(n.id.to_string());
                }
                AExpr::Subscript(_) | AExpr::Attribute(_) => {
                    self.0.extend(root(t).map(str::to_string));
                }
                AExpr::Tuple(tuple) => tuple.elts.iter().for_each(|e| self.target(e, augmented)),
                AExpr::List(list) => list.elts.iter().for_each(|e| self.target(e, augmented)),
                AExpr::Starred(s) => self.target(&s.value, augmented),
                _ => {}
            }
        }
    }
    impl<'a> Visitor<'a> for V {
        fn visit_stmt(&mut self, stmt: &'a AStmt) {
            match stmt {
                AStmt::Assign(a) => a.targets.iter().for_each(|t| self.target(t, false)),
                AStmt::AugAssign(a) => self.target(&a.target, true),
                AStmt::AnnAssign(a) => self.target(&a.target, false),
                AStmt::Delete(d) => d.targets.iter().for_each(|t| self.target(t, false)),
                _ => {}
            }
            walk_stmt(self, stmt);
        }
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Call(c) = expr {
                if let AExpr::Attribute(a) = c.func.as_ref() {
                    self.0.extend(root(&a.value).map(str::to_string));
                }
                let pure = matches!(c.func.as_ref(), AExpr::Name(n) if PURE_BUILTINS.contains(&n.id.as_str()));
                if !pure {
                    let given = c
                        .arguments
                        .args
                        .iter()
                        .chain(c.arguments.keywords.iter().map(|k| &k.value));
                    for a in given {
                        self.0.extend(root(a).map(str::to_string));
                    }
                }
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

/// One function's summary, from its body.
struct Analysis<'a> {
    scope: &'a ModuleScope,
    recipes: &'a RecipeSet,
    effects: &'a Effects,
    /// In a method: the class, and the name of its first parameter (`self`).
    class: Option<(&'a str, String)>,
    params: BTreeSet<String>,
    locals: BTreeSet<String>,
    /// Local name -> the parameters it may be (or be a view of): writing into it writes
    /// into them.
    links: BTreeMap<String, BTreeSet<String>>,
    /// Local name -> the parameters its value may hold (a list's items, a dict's values):
    /// writing into it does not change them, but its items are them.
    holds: BTreeMap<String, BTreeSet<String>>,
    summary: Summary,
    /// Parameters written other than by `x op= v` on a name, and by it.
    definite: BTreeSet<String>,
    augmented: BTreeSet<String>,
    /// The functions of the module it calls.
    calls: BTreeSet<String>,
    /// Parameters written through a call of a module function that may not write them
    /// (not one of its `certain_writes`), in the statement being recorded.
    uncertain: BTreeSet<String>,
}

impl<'a> Analysis<'a> {
    /// The summary of `def`, and the functions of the module it calls.
    fn run(
        def: &ast::StmtFunctionDef,
        class: Option<&'a str>,
        scope: &'a ModuleScope,
        recipes: &'a RecipeSet,
        effects: &'a Effects,
    ) -> (Summary, BTreeSet<String>) {
        let params: Vec<String> = crate::parse::param_names(def);
        let mut locals: BTreeSet<String> = params.iter().cloned().collect();
        collect_locals(&def.body, &mut locals);
        let self_name = params.first().cloned().unwrap_or_default();
        let mut a = Analysis {
            scope,
            recipes,
            effects,
            class: class.map(|c| (c, self_name)),
            params: params.iter().cloned().collect(),
            locals,
            links: BTreeMap::new(),
            holds: BTreeMap::new(),
            summary: Summary {
                params,
                ..Summary::default()
            },
            definite: BTreeSet::new(),
            augmented: BTreeSet::new(),
            calls: BTreeSet::new(),
            uncertain: BTreeSet::new(),
        };
        // Names share what they are assigned from: iterate until the links settle.
        for _ in 0..32 {
            let before = (a.links.clone(), a.holds.clone());
            a.block(&def.body, false);
            if (a.links.clone(), a.holds.clone()) == before {
                break;
            }
        }
        a.recorded_body(&def.body);
        a.summary.augmented_writes = a.augmented.difference(&a.definite).cloned().collect();
        (a.summary, a.calls)
    }

    /// The last pass over the body, recording effects; notes the writes of its top-level
    /// simple statements made before any statement assigns the parameter (`certain_writes`).
    fn recorded_body(&mut self, body: &[AStmt]) {
        let mut assigned: BTreeSet<String> = BTreeSet::new();
        for s in body {
            let before = std::mem::take(&mut self.summary.writes);
            self.uncertain.clear();
            self.stmt(s, true);
            let written = std::mem::replace(&mut self.summary.writes, before);
            let simple = !crate::parse::is_block(s)
                && !matches!(
                    s,
                    AStmt::Match(_) | AStmt::FunctionDef(_) | AStmt::ClassDef(_)
                );
            if simple {
                self.summary.certain_writes.extend(
                    written
                        .iter()
                        .filter(|p| {
                            self.params.contains(*p)
                                && !assigned.contains(*p)
                                && !self.uncertain.contains(*p)
                        })
                        .cloned(),
                );
            }
            self.summary.writes.extend(written);
            crate::normalize::collect_assigned(std::slice::from_ref(s), &mut assigned);
        }
    }

    /// The parameters a name may be (or be a view of).
    fn name_links(&self, name: &str) -> BTreeSet<String> {
        let mut out = self.links.get(name).cloned().unwrap_or_default();
        if self.params.contains(name) {
            out.insert(name.to_string());
        }
        out
    }

    /// What the value of a name may be or hold.
    fn name_shares(&self, name: &str) -> Shared {
        Shared {
            is: self.name_links(name),
            holds: self.holds.get(name).cloned().unwrap_or_default(),
        }
    }

    fn link(&mut self, target: &AExpr, with: &Shared) {
        match target {
            AExpr::Name(n) => {
                if self.params.contains(n.id.as_str()) {
                    self.summary.rebinds.insert(n.id.to_string());
                }
                self.links
                    .entry(n.id.to_string())
                    .or_default()
                    .extend(with.is.iter().cloned());
                self.holds
                    .entry(n.id.to_string())
                    .or_default()
                    .extend(with.holds.iter().cloned());
            }
            // Unpacking gives the items of the value.
            AExpr::Tuple(_) | AExpr::List(_) | AExpr::Starred(_) => {
                let items = with.items();
                match target {
                    AExpr::Tuple(t) => t.elts.iter().for_each(|e| self.link(e, &items)),
                    AExpr::List(l) => l.elts.iter().for_each(|e| self.link(e, &items)),
                    AExpr::Starred(s) => self.link(&s.value, &with.clone()),
                    _ => {}
                }
            }
            // `c[i] = v`, `c.a = v`: the container now holds what `v` is and holds (writing
            // into it changes the container, not those).
            AExpr::Subscript(_) | AExpr::Attribute(_) => {
                if let Some(base) = base_name(target) {
                    let held = self.holds.entry(base.to_string()).or_default();
                    held.extend(with.is.iter().cloned());
                    held.extend(with.holds.iter().cloned());
                }
            }
            _ => {}
        }
    }

    /// The parameters the value of `e` may be or hold.
    fn shares(&self, e: &AExpr) -> Shared {
        match e {
            AExpr::Name(n) => self.name_shares(n.id.as_str()),
            // A view of an array is the array; an item of a list is what the list holds.
            AExpr::Subscript(s) => self.shares(&s.value).items(),
            AExpr::Attribute(a) if INERT_ATTRIBUTES.contains(&a.attr.as_str()) => Shared::default(),
            AExpr::Attribute(a) => self.shares(&a.value).items(),
            AExpr::Starred(s) => self.shares(&s.value),
            AExpr::Named(n) => self.shares(&n.value),
            AExpr::If(i) => self.shares(&i.body).union(self.shares(&i.orelse)),
            AExpr::BoolOp(b) => b
                .values
                .iter()
                .fold(Shared::default(), |acc, v| acc.union(self.shares(v))),
            AExpr::Tuple(t) => Shared::holding(t.elts.iter().map(|v| self.shares(v))),
            AExpr::List(l) => Shared::holding(l.elts.iter().map(|v| self.shares(v))),
            AExpr::Set(s) => Shared::holding(s.elts.iter().map(|v| self.shares(v))),
            AExpr::Dict(d) => Shared::holding(d.items.iter().map(|i| self.shares(&i.value))),
            AExpr::Call(c) => self.call_shares(c),
            // Comprehensions and lambdas: whatever they read.
            AExpr::ListComp(_)
            | AExpr::SetComp(_)
            | AExpr::DictComp(_)
            | AExpr::Generator(_)
            | AExpr::Lambda(_) => {
                let mut names = Vec::new();
                collect_names(e, &mut names);
                Shared::holding(names.iter().map(|n| self.name_shares(n)))
            }
            // Arithmetic and literals make new values.
            _ => Shared::default(),
        }
    }

    fn call_shares(&self, c: &ast::ExprCall) -> Shared {
        let all_args = || -> Shared {
            let args = c
                .arguments
                .args
                .iter()
                .chain(c.arguments.keywords.iter().map(|k| &k.value));
            args.fold(Shared::default(), |acc, a| {
                acc.union(self.shares(a).items())
            })
        };
        match self.callee(c) {
            Callee::View => c
                .arguments
                .args
                .first()
                .map(|a| self.shares(a))
                .unwrap_or_default(),
            Callee::ViewMethod(object) => self.shares(object),
            Callee::UnknownMethod(object) => self.shares(object).items().union(all_args()),
            Callee::Fresh | Callee::Mutating(_) | Callee::Draw => Shared::default(),
            Callee::Local { summary, bound, .. } => {
                let mut out = Shared::default();
                for (param, arg) in bound {
                    if summary.result_aliases.contains(&param) {
                        out = out.union(self.shares(arg).items());
                    }
                }
                out
            }
            Callee::Unknown | Callee::Builtin => all_args(),
        }
    }

    /// What `c` calls.
    fn callee<'c>(&self, c: &'c ast::ExprCall) -> Callee<'c>
    where
        'a: 'c,
    {
        let dotted = crate::normalize::dotted_name(&c.func);
        // A method of this class on `self`, or `Class.method(obj, ...)` of the module.
        if let AExpr::Attribute(a) = c.func.as_ref() {
            if let AExpr::Name(obj) = a.value.as_ref() {
                let method_of = if let Some((class, self_name)) = &self.class {
                    (obj.id.as_str() == self_name)
                        .then(|| self.scope.method_owner(class, a.attr.as_str()))
                        .flatten()
                        .map(|k| (k.name.clone(), true))
                } else {
                    None
                };
                let method_of = method_of.or_else(|| {
                    (!self.locals.contains(obj.id.as_str()))
                        .then(|| self.scope.method_owner(obj.id.as_str(), a.attr.as_str()))
                        .flatten()
                        .map(|k| (k.name.clone(), false))
                });
                if let Some((owner, on_self)) = method_of {
                    let name = format!("{owner}.{}", a.attr);
                    if let Some(summary) = self.effects.get(&name) {
                        let mut args: Vec<&AExpr> = Vec::new();
                        if on_self {
                            args.push(a.value.as_ref());
                        }
                        args.extend(c.arguments.args.iter());
                        return Callee::Local {
                            name,
                            summary,
                            bound: bind(summary, &args, c),
                        };
                    }
                }
            }
        }
        if let AExpr::Name(n) = c.func.as_ref() {
            let name = n.id.as_str();
            if !self.locals.contains(name) {
                if let Some(summary) = self
                    .effects
                    .get(name)
                    .filter(|_| self.scope.functions.contains_key(name))
                {
                    let args: Vec<&AExpr> = c.arguments.args.iter().collect();
                    return Callee::Local {
                        name: name.to_string(),
                        summary,
                        bound: bind(summary, &args, c),
                    };
                }
            }
        }
        let canonical = dotted.as_deref().and_then(|d| {
            let first = d.split('.').next().unwrap_or("");
            if self.locals.contains(first) {
                None
            } else if let Some(c) = self.scope.canonical(d) {
                Some(c)
            } else if crate::resolve::BUILTINS.contains(&d) {
                Some(format!("builtins.{d}"))
            } else {
                None
            }
        });
        if let Some(canon) = canonical {
            if MUTATING_FUNCTIONS.contains(&canon.as_str()) || canon.ends_with(".at") {
                return Callee::Mutating(c.arguments.args.first());
            }
            if VIEW_FUNCTIONS.contains(&canon.as_str()) {
                return Callee::View;
            }
            if canon.starts_with("builtins.") {
                return Callee::Builtin;
            }
            if self.known(&canon) {
                return Callee::Fresh;
            }
            return Callee::Unknown;
        }
        if let AExpr::Attribute(a) = c.func.as_ref() {
            let method = a.attr.as_str();
            if method == "shuffle" {
                return Callee::Mutating(c.arguments.args.first());
            }
            if DRAW_METHODS.contains(&method) {
                return Callee::Draw;
            }
            if MUTATING_METHODS.contains(&method) {
                return Callee::Mutating(Some(a.value.as_ref()));
            }
            if VIEW_METHODS.contains(&method) {
                return Callee::ViewMethod(a.value.as_ref());
            }
            if matches!(method, "copy" | "astype" | "flatten" | "tolist" | "item")
                || self.known(&format!("numpy.{method}"))
            {
                return Callee::Fresh;
            }
            return Callee::UnknownMethod(a.value.as_ref());
        }
        Callee::Unknown
    }

    fn known(&self, canonical: &str) -> bool {
        self.recipes.knows(canonical)
    }

    /// Records that `target`'s object changes: its parameters are written, a module-level
    /// object is an effect outside the function.
    fn writes(&mut self, target: &AExpr, range: ruff_text_size::TextRange, record: bool) {
        self.write(target, range, record, false);
    }

    /// Records that `target`'s object changes (`augmented`: by `x op= v` on a name, which
    /// changes only arrays and lists in place).
    fn write(
        &mut self,
        target: &AExpr,
        range: ruff_text_size::TextRange,
        record: bool,
        augmented: bool,
    ) {
        let Some(base) = base_name(target) else {
            return;
        };
        if !record {
            return;
        }
        if self.locals.contains(base) {
            let written = self.name_links(base);
            if augmented {
                self.augmented.extend(written.iter().cloned());
            } else {
                self.definite.extend(written.iter().cloned());
            }
            self.summary.writes.extend(written);
        } else {
            self.effect(format!("changes the module-level `{base}`"), range);
        }
    }

    fn effect(&mut self, what: String, range: ruff_text_size::TextRange) {
        if self.summary.impure.is_none() {
            self.summary.impure = Some(Effect {
                what,
                start: range.start().to_usize(),
                end: range.end().to_usize(),
            });
        }
    }

    fn block(&mut self, body: &[AStmt], record: bool) {
        for s in body {
            self.stmt(s, record);
        }
    }

    fn stmt(&mut self, s: &AStmt, record: bool) {
        self.calls_in_stmt(s, record);
        match s {
            AStmt::Assign(a) => {
                let shares = self.shares(&a.value);
                for t in &a.targets {
                    if matches!(t, AExpr::Subscript(_) | AExpr::Attribute(_)) {
                        self.writes(t, t.range(), record);
                    }
                    self.link(t, &shares);
                }
            }
            AStmt::AnnAssign(a) => {
                if let Some(v) = &a.value {
                    let shares = self.shares(v);
                    if matches!(a.target.as_ref(), AExpr::Subscript(_) | AExpr::Attribute(_)) {
                        self.writes(&a.target, a.target.range(), record);
                    }
                    self.link(&a.target, &shares);
                }
            }
            // In place for arrays and lists (a new value for numbers).
            AStmt::AugAssign(a) => self.write(
                &a.target,
                a.target.range(),
                record,
                matches!(a.target.as_ref(), AExpr::Name(_)),
            ),
            AStmt::Delete(d) => {
                for t in &d.targets {
                    if matches!(t, AExpr::Subscript(_) | AExpr::Attribute(_)) {
                        self.writes(t, t.range(), record);
                    }
                }
            }
            AStmt::For(f) => {
                let shares = self.shares(&f.iter).items();
                self.link(&f.target, &shares);
                self.block(&f.body, record);
                self.block(&f.orelse, record);
            }
            AStmt::While(w) => {
                self.block(&w.body, record);
                self.block(&w.orelse, record);
            }
            AStmt::If(i) => {
                self.block(&i.body, record);
                for clause in &i.elif_else_clauses {
                    self.block(&clause.body, record);
                }
            }
            AStmt::With(w) => {
                for item in &w.items {
                    if let Some(v) = &item.optional_vars {
                        let shares = self.shares(&item.context_expr);
                        self.link(v, &shares);
                    }
                }
                self.block(&w.body, record);
            }
            AStmt::Try(t) => {
                self.block(&t.body, record);
                for h in &t.handlers {
                    let ast::ExceptHandler::ExceptHandler(h) = h;
                    self.block(&h.body, record);
                }
                self.block(&t.orelse, record);
                self.block(&t.finalbody, record);
            }
            AStmt::Return(r) => {
                if let Some(v) = &r.value {
                    let shares = self.shares(v);
                    if record {
                        self.summary.result_aliases.extend(shares.all());
                    }
                }
            }
            AStmt::Global(g) if record => self.effect(
                format!(
                    "assigns the module-level `{}`",
                    g.names.first().map(|n| n.as_str()).unwrap_or("")
                ),
                g.range(),
            ),
            AStmt::Nonlocal(n) if record => self.effect(
                "assigns a variable of an enclosing function".into(),
                n.range(),
            ),
            // Nested functions run where they are called: their effects are the function's.
            AStmt::FunctionDef(f) => self.block(&f.body, record),
            _ => {}
        }
    }

    /// The effects of the calls in `s`'s own expressions (not its nested blocks).
    fn calls_in_stmt(&mut self, s: &AStmt, record: bool) {
        // Calls only change what is recorded (links come from assignments).
        if !record {
            return;
        }
        let mut calls: Vec<&ast::ExprCall> = Vec::new();
        let exprs: Vec<&AExpr> = match s {
            AStmt::Expr(e) => vec![&e.value],
            AStmt::Assign(a) => std::iter::once(a.value.as_ref())
                .chain(a.targets.iter())
                .collect(),
            AStmt::AugAssign(a) => vec![a.value.as_ref(), a.target.as_ref()],
            AStmt::AnnAssign(a) => a.value.iter().map(|v| v.as_ref()).collect(),
            AStmt::Return(r) => r.value.iter().map(|v| v.as_ref()).collect(),
            AStmt::If(i) => std::iter::once(i.test.as_ref())
                .chain(i.elif_else_clauses.iter().filter_map(|c| c.test.as_ref()))
                .collect(),
            AStmt::While(w) => vec![&w.test],
            AStmt::For(f) => vec![&f.iter],
            AStmt::With(w) => w.items.iter().map(|i| &i.context_expr).collect(),
            AStmt::Assert(a) => std::iter::once(a.test.as_ref())
                .chain(a.msg.iter().map(|m| m.as_ref()))
                .collect(),
            AStmt::Raise(r) => r.exc.iter().map(|e| e.as_ref()).collect(),
            _ => Vec::new(),
        };
        for e in exprs {
            collect_calls(e, &mut calls);
        }
        for c in calls {
            self.call_effects(c, record);
        }
    }

    fn call_effects(&mut self, c: &ast::ExprCall, record: bool) {
        // `out=` writes the array it names, as does the positional `out` of a ufunc.
        for k in c.arguments.keywords.iter() {
            if k.arg.as_ref().is_some_and(|a| a.as_str() == "out") {
                self.writes_value(&k.value, record);
            }
        }
        let canonical = crate::normalize::dotted_name(&c.func).and_then(|d| {
            let first = d.split('.').next().unwrap_or("").to_string();
            (!self.locals.contains(&first))
                .then(|| self.scope.canonical(&d))
                .flatten()
        });
        if let Some(n) = canonical.as_deref().and_then(ufunc_inputs) {
            if let Some(out) = c.arguments.args.get(n) {
                self.writes_value(out, record);
            }
        }
        if let Some(canon) = canonical.as_deref() {
            if let Some((_, what)) = EFFECT_PREFIXES.iter().find(|(p, _)| canon.starts_with(p)) {
                if record {
                    self.effect(format!("{what} (`{}`)", short(canon)), c.range());
                }
            }
        }
        if let AExpr::Name(n) = c.func.as_ref() {
            if n.id.as_str() == "print" && !self.locals.contains("print") && record {
                self.effect("prints (`print`)".into(), c.range());
            }
        }
        match self.callee(c) {
            Callee::Mutating(Some(target)) => self.writes_value(target, record),
            Callee::Local {
                name,
                summary,
                bound,
            } => {
                self.calls.insert(name);
                for (param, arg) in &bound {
                    if summary.writes.contains(param) {
                        let augmented = summary.augmented_writes.contains(param);
                        // `h(p if c else q)`: the object written may be either.
                        for root in object_roots(arg) {
                            if let Some(base) = base_name(root) {
                                self.write(root, arg.range(), record, augmented);
                                if !summary.certain_writes.contains(param) {
                                    let written = self.name_links(base);
                                    self.uncertain.extend(written);
                                }
                            }
                        }
                    }
                }
                if let (Some(e), true) = (&summary.impure, record) {
                    let name = crate::normalize::dotted_name(&c.func).unwrap_or_default();
                    self.effect(format!("calls `{name}`, which {}", e.what), c.range());
                }
            }
            Callee::Unknown if record => {
                let name = crate::normalize::dotted_name(&c.func)
                    .unwrap_or_else(|| "a computed function".into());
                self.effect(
                    format!("calls `{name}`, whose effects Tangent does not know"),
                    c.range(),
                );
            }
            Callee::Draw if record => {
                let name = crate::normalize::dotted_name(&c.func)
                    .unwrap_or_else(|| format!(".{}()", method_name(c)));
                self.effect(format!("draws random numbers (`{name}`)"), c.range());
            }
            Callee::UnknownMethod(object) if record => {
                // Methods of values the function computes are array methods; methods of
                // other objects (a random generator, a model) may do anything.
                let name = crate::normalize::dotted_name(&c.func)
                    .unwrap_or_else(|| format!(".{}()", method_name(c)));
                let _ = object;
                self.effect(
                    format!("calls `{name}`, whose effects Tangent does not know"),
                    c.range(),
                );
            }
            _ => {}
        }
    }

    fn writes_value(&mut self, e: &AExpr, record: bool) {
        if base_name(e).is_some() {
            self.writes(e, e.range(), record);
        }
    }
}

fn method_name(c: &ast::ExprCall) -> String {
    match c.func.as_ref() {
        AExpr::Attribute(a) => a.attr.to_string(),
        _ => String::new(),
    }
}

fn short(canonical: &str) -> &str {
    canonical.strip_prefix("builtins.").unwrap_or(canonical)
}

/// What a call calls, for the summaries.
enum Callee<'c> {
    /// A NumPy function returning a view of its first argument.
    View,
    /// An array method returning a view of the object.
    ViewMethod(&'c AExpr),
    /// A function or method with a recipe, or known to compute a new value.
    Fresh,
    /// A function or method changing its argument (or object).
    Mutating(Option<&'c AExpr>),
    /// A function of the module: its summary, and its parameters bound to the arguments.
    Local {
        name: String,
        summary: &'c Summary,
        bound: Vec<(String, &'c AExpr)>,
    },
    /// A builtin such as `list(xs)`, `max(a, b)`, `zip(...)`: its result may hold its arguments.
    Builtin,
    /// A random generator's method: a new value, and an effect (the generator's state).
    Draw,
    /// A function Tangent does not know.
    Unknown,
    /// A method of an object Tangent does not know.
    UnknownMethod(&'c AExpr),
}

/// The parameters of `summary` bound to the arguments of a call (`args` positional, then the
/// call's keywords).
fn bind<'c>(
    summary: &Summary,
    args: &[&'c AExpr],
    c: &'c ast::ExprCall,
) -> Vec<(String, &'c AExpr)> {
    let mut out: Vec<(String, &AExpr)> = summary
        .params
        .iter()
        .cloned()
        .zip(args.iter().copied())
        .collect();
    for k in c.arguments.keywords.iter() {
        if let Some(arg) = &k.arg {
            out.push((arg.to_string(), &k.value));
        }
    }
    out
}

/// The name at the root of `x`, `x[i]`, `x.a`, `x[i].a[j]`.
pub fn base_name(e: &AExpr) -> Option<&str> {
    match e {
        AExpr::Name(n) => Some(n.id.as_str()),
        AExpr::Subscript(s) => base_name(&s.value),
        AExpr::Attribute(a) => base_name(&a.value),
        AExpr::Starred(s) => base_name(&s.value),
        _ => None,
    }
}

fn collect_calls<'e>(e: &'e AExpr, out: &mut Vec<&'e ast::ExprCall>) {
    struct V<'e, 'o>(&'o mut Vec<&'e ast::ExprCall>);
    impl<'e> Visitor<'e> for V<'e, '_> {
        fn visit_expr(&mut self, expr: &'e AExpr) {
            if let AExpr::Call(c) = expr {
                self.0.push(c);
            }
            // A lambda's body runs where it is called, which the caller's summary covers.
            if !matches!(expr, AExpr::Lambda(_)) {
                walk_expr(self, expr);
            }
        }
    }
    V(out).visit_expr(e);
}

fn collect_names(e: &AExpr, out: &mut Vec<String>) {
    struct V<'o>(&'o mut Vec<String>);
    impl<'a> Visitor<'a> for V<'_> {
        fn visit_expr(&mut self, expr: &'a AExpr) {
            if let AExpr::Name(n) = expr {
                self.0.push(n.id.to_string());
            }
            walk_expr(self, expr);
        }
    }
    V(out).visit_expr(e);
}

/// The names a body binds, with those of the functions nested in it (inlined where called).
fn collect_locals(body: &[AStmt], out: &mut BTreeSet<String>) {
    crate::normalize::collect_assigned(body, out);
    for s in body {
        match s {
            AStmt::FunctionDef(f) => {
                out.extend(crate::parse::param_names(f));
                collect_locals(&f.body, out);
            }
            AStmt::If(i) => {
                collect_locals(&i.body, out);
                for c in &i.elif_else_clauses {
                    collect_locals(&c.body, out);
                }
            }
            AStmt::For(f) => collect_locals(&f.body, out),
            AStmt::While(w) => collect_locals(&w.body, out),
            AStmt::With(w) => collect_locals(&w.body, out),
            _ => {}
        }
    }
}

/// The parameters a value may be (or be a view of), and those it may hold.
#[derive(Debug, Default, Clone)]
struct Shared {
    is: BTreeSet<String>,
    holds: BTreeSet<String>,
}

impl Shared {
    fn union(mut self, other: Shared) -> Shared {
        self.is.extend(other.is);
        self.holds.extend(other.holds);
        self
    }

    /// What an item, an attribute or a view of the value may be and hold.
    fn items(&self) -> Shared {
        let all = self.all();
        Shared {
            is: all.clone(),
            holds: all,
        }
    }

    /// A container holding values that may be or hold these.
    fn holding(parts: impl Iterator<Item = Shared>) -> Shared {
        Shared {
            is: BTreeSet::new(),
            holds: parts.flat_map(|p| p.all()).collect(),
        }
    }

    fn all(&self) -> BTreeSet<String> {
        self.is.union(&self.holds).cloned().collect()
    }
}

/// The first statement of `body` (at any depth) with an effect outside its values (see
/// [`Summary::impure`]), and what it does: code that runs twice (checkpointing runs a loop
/// again in the backward pass, a recursive helper's derivative runs it again) would repeat
/// it. `summaries` gives the module's functions' summaries.
pub fn first_effect<'s>(
    body: &'s [crate::ir::Stmt],
    known: &dyn Fn(&str) -> bool,
    summaries: &dyn Fn(&str) -> Option<Summary>,
) -> Option<(&'s crate::ir::Stmt, String)> {
    use crate::ir::{Callee, Expr, Stmt};
    let call_effect = |callee: &Callee| -> Option<String> {
        match callee {
            Callee::Function {
                canonical: Some(c), ..
            } => {
                if let Some((_, what)) = EFFECT_PREFIXES.iter().find(|(p, _)| c.starts_with(p)) {
                    return Some(format!("{what} (`{}`)", short(c)));
                }
                (!known(c) && !c.starts_with("builtins.") && !c.starts_with("tangent."))
                    .then(|| format!("calls `{c}`, whose effects Tangent does not know"))
            }
            Callee::Function {
                text, local: true, ..
            } => summaries(text)
                .and_then(|s| s.impure)
                .map(|e| format!("calls `{text}`, which {}", e.what)),
            Callee::Function { text, .. } => Some(format!(
                "calls `{text}`, whose effects Tangent does not know"
            )),
            Callee::Method { method, .. } if DRAW_METHODS.contains(&method.as_str()) => {
                Some(format!("draws random numbers (`.{method}()`)"))
            }
            Callee::Method { method, .. } => (!known(&format!("numpy.{method}"))
                && !matches!(
                    method.as_str(),
                    "copy" | "astype" | "flatten" | "tolist" | "item"
                ))
            .then(|| format!("calls `.{method}()`, whose effects Tangent does not know")),
        }
    };
    for s in crate::ir::all_statements(body) {
        let found = match s {
            Stmt::Assign {
                value: Expr::Call { callee, .. },
                ..
            } => call_effect(callee),
            Stmt::Opaque { text, .. } if text.starts_with("print(") => {
                Some("prints (`print`)".into())
            }
            // A call made for its effect alone (`rs.shuffle(x)`, `LOG.append(x)`).
            Stmt::Opaque { text, .. }
                if text.contains('(')
                    && !text.starts_with("assert")
                    && !text.starts_with("raise")
                    && !text.starts_with("tangent.") =>
            {
                Some(format!(
                    "calls `{}`, whose effects Tangent does not know",
                    text.split('(').next().unwrap_or(text)
                ))
            }
            _ => None,
        };
        if let Some(what) = found {
            return Some((s, what));
        }
    }
    None
}

/// The expressions whose object `e`'s value may be: both branches of `a if c else b`, each
/// operand of `a or b`, the value of `(x := v)`; else `e` itself.
fn object_roots(e: &AExpr) -> Vec<&AExpr> {
    match e {
        AExpr::If(i) => {
            let mut out = object_roots(&i.body);
            out.extend(object_roots(&i.orelse));
            out
        }
        AExpr::BoolOp(b) => b.values.iter().flat_map(object_roots).collect(),
        AExpr::Named(n) => object_roots(&n.value),
        _ => vec![e],
    }
}
