//! Shape facts: which values are NumPy arrays or numbers, and which of them certainly have the
//! same shape.
//!
//! Reverse mode uses them in two ways (only when optimizing):
//! - it leaves out helper calls that would change nothing: `tangent.unbroadcast(g, x)` when `g`
//!   already has `x`'s shape, `tangent.grad_like(g, y)` when `g` is at least as large as `y`;
//! - where a recipe reads a value only for its shape (`unbroadcast(g, t)`, `numpy.size(t)`), it
//!   reads the earliest computed value of the same shape instead, so the forward sweep need not
//!   compute, or save on the stack, a value the backward sweep never looks into.
//!
//! A shape is a set of *atoms*: the broadcast of the atoms' shapes (the empty set is a scalar).
//! An atom stands for one concrete, unknown shape: a parameter's, a matrix product's, a
//! variable's at the top of a loop iteration. Two values have the same shape when their atom
//! sets are equal; unknown relations get fresh atoms, so the analysis is conservative.
//!
//! *Numeric* values are NumPy arrays, NumPy scalars and Python floats and complex numbers: the
//! values arithmetic and the runtime helpers treat as arrays. Python ints are not (`2 * xs`
//! repeats a list), nor are lists, tuples, dicts or anything unknown.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ruff_python_ast::visitor::transformer::{Transformer, walk_expr};
use ruff_python_ast::{self as ast, Expr as AExpr};

use crate::ir::{Atom, Callee, Expr, Function, Stmt};

/// The broadcast of the shapes of a set of atoms.
pub type Shape = BTreeSet<u32>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fact {
    pub shape: Shape,
    pub numeric: bool,
}

impl Fact {
    fn scalar(numeric: bool) -> Fact {
        Fact {
            shape: Shape::new(),
            numeric,
        }
    }
}

/// What is known at one assignment: the facts of the names it reads (with the earliest defined
/// name of the same numeric fact, when there is one) and of the value it assigns.
#[derive(Debug, Clone, Default)]
pub struct StmtFacts {
    pub reads: BTreeMap<String, (Fact, Option<String>)>,
    pub result: Option<Fact>,
}

/// Facts per assignment and return statement, keyed by the statement's address (as reverse
/// mode keys statements).
#[derive(Debug, Default)]
pub struct ShapeFacts {
    at: HashMap<usize, StmtFacts>,
    /// Facts of the names defined when the body ends (the function's result is among them).
    end: BTreeMap<String, Fact>,
}

impl ShapeFacts {
    /// The facts of `f`; `None` when the function lets the user edit adjoints
    /// (`insert_grad_of`), whose shapes nothing then vouches for.
    pub fn analyze(f: &Function) -> Option<ShapeFacts> {
        if crate::ir::all_statements(&f.body)
            .iter()
            .any(|s| matches!(s, Stmt::InsertGradOf { .. }))
        {
            return None;
        }
        let mut a = Analyzer::default();
        for p in &f.params {
            let fact = a.fresh(false);
            a.define(&p.name, fact);
        }
        a.block(&f.body);
        let end = a.env.into_iter().map(|(n, e)| (n, e.fact)).collect();
        Some(ShapeFacts { at: a.out, end })
    }

    pub fn at(&self, s: &Stmt) -> Option<&StmtFacts> {
        self.at.get(&(s as *const Stmt as usize))
    }

    pub fn at_end(&self, name: &str) -> Option<&Fact> {
        self.end.get(name)
    }
}

/// NumPy (and SciPy, math) functions of one array whose result has the argument's shape.
const ELEMENTWISE_UNARY: &[&str] = &[
    "numpy.sin",
    "numpy.cos",
    "numpy.tan",
    "numpy.arcsin",
    "numpy.arccos",
    "numpy.arctan",
    "numpy.sinh",
    "numpy.cosh",
    "numpy.tanh",
    "numpy.arcsinh",
    "numpy.arccosh",
    "numpy.arctanh",
    "numpy.exp",
    "numpy.exp2",
    "numpy.expm1",
    "numpy.log",
    "numpy.log2",
    "numpy.log10",
    "numpy.log1p",
    "numpy.sqrt",
    "numpy.cbrt",
    "numpy.square",
    "numpy.abs",
    "numpy.absolute",
    "numpy.fabs",
    "numpy.negative",
    "numpy.positive",
    "numpy.reciprocal",
    "numpy.sign",
    "numpy.floor",
    "numpy.ceil",
    "numpy.rint",
    "numpy.trunc",
    "numpy.deg2rad",
    "numpy.rad2deg",
    "numpy.degrees",
    "numpy.radians",
    "numpy.sinc",
    "numpy.real",
    "numpy.imag",
    "numpy.conj",
    "numpy.conjugate",
    "scipy.special.expit",
    "scipy.special.logit",
    "scipy.special.erf",
    "scipy.special.erfc",
    "scipy.special.gammaln",
    "scipy.special.digamma",
    "tangent.digamma",
];

/// Elementwise functions of two arrays: the result has the broadcast shape.
const ELEMENTWISE_BINARY: &[&str] = &[
    "numpy.add",
    "numpy.subtract",
    "numpy.multiply",
    "numpy.divide",
    "numpy.true_divide",
    "numpy.power",
    "numpy.float_power",
    "numpy.maximum",
    "numpy.minimum",
    "numpy.fmax",
    "numpy.fmin",
    "numpy.arctan2",
    "numpy.hypot",
    "numpy.logaddexp",
    "numpy.logaddexp2",
    "numpy.copysign",
    "scipy.special.xlogy",
    "scipy.special.xlog1py",
];

/// Reductions that, given only the array, reduce it to a scalar.
const FULL_REDUCTIONS: &[&str] = &[
    "numpy.sum",
    "numpy.mean",
    "numpy.prod",
    "numpy.max",
    "numpy.min",
    "numpy.amax",
    "numpy.amin",
    "numpy.std",
    "numpy.var",
    "scipy.special.logsumexp",
];

/// `math` functions whose result is a float.
const MATH_FLOATS: &[&str] = &[
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "atan2",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "exp",
    "expm1",
    "exp2",
    "log",
    "log1p",
    "log2",
    "log10",
    "sqrt",
    "cbrt",
    "pow",
    "fabs",
    "hypot",
    "erf",
    "erfc",
    "gamma",
    "lgamma",
    "copysign",
    "fmod",
    "remainder",
    "ldexp",
    "dist",
    "fsum",
    "degrees",
    "radians",
];

/// NumPy functions whose result is an array (or a NumPy scalar) of a shape of its own.
const ARRAY_RESULTS: &[&str] = &[
    "numpy.dot",
    "numpy.matmul",
    "numpy.outer",
    "numpy.inner",
    "numpy.tensordot",
    "numpy.einsum",
    "numpy.transpose",
    "numpy.reshape",
    "numpy.ravel",
    "numpy.stack",
    "numpy.vstack",
    "numpy.hstack",
    "numpy.concatenate",
    "numpy.cumsum",
    "numpy.cumprod",
    "numpy.diff",
    "numpy.clip",
    "numpy.where",
    "numpy.tile",
    "numpy.repeat",
    "numpy.squeeze",
    "numpy.expand_dims",
    "numpy.diagonal",
    "numpy.trace",
    "numpy.triu",
    "numpy.tril",
    "numpy.pad",
    "numpy.take_along_axis",
    "numpy.linalg.inv",
    "numpy.linalg.det",
    "numpy.linalg.norm",
    "numpy.linalg.solve",
    "numpy.linalg.cholesky",
    "numpy.sum",
    "numpy.mean",
    "numpy.prod",
    "numpy.max",
    "numpy.min",
    "numpy.amax",
    "numpy.amin",
    "numpy.std",
    "numpy.var",
    "numpy.array",
    "numpy.asarray",
    "numpy.zeros_like",
    "numpy.ones_like",
    "numpy.full_like",
];

#[derive(Clone)]
struct Entry {
    fact: Fact,
    /// Definition order: earlier definitions are preferred stand-ins.
    order: u64,
}

#[derive(Default)]
struct Analyzer {
    next_atom: u32,
    next_order: u64,
    env: BTreeMap<String, Entry>,
    out: HashMap<usize, StmtFacts>,
}

impl Analyzer {
    fn fresh(&mut self, numeric: bool) -> Fact {
        self.next_atom += 1;
        Fact {
            shape: Shape::from([self.next_atom]),
            numeric,
        }
    }

    fn define(&mut self, name: &str, fact: Fact) {
        self.next_order += 1;
        self.env.insert(
            name.to_string(),
            Entry {
                fact,
                order: self.next_order,
            },
        );
    }

    fn fact(&mut self, name: &str) -> Fact {
        match self.env.get(name) {
            Some(e) => e.fact.clone(),
            None => self.fresh(false),
        }
    }

    fn atom(&mut self, a: &Atom) -> Fact {
        match a {
            Atom::Name(n) => self.fact(n),
            Atom::Const(c) => match literal_numeric(c) {
                Some(numeric) => Fact::scalar(numeric),
                None => self.fresh(false),
            },
        }
    }

    /// The earliest defined numeric name with `fact`, other than `except`.
    fn stand_in(&self, fact: &Fact, except: &str) -> Option<String> {
        if !fact.numeric {
            return None;
        }
        self.env
            .iter()
            .filter(|(n, e)| e.fact == *fact && n.as_str() != except)
            .min_by_key(|(_, e)| e.order)
            .map(|(n, _)| n.clone())
    }

    /// A statement that may change lists, dicts or objects in place: every non-numeric value
    /// may be one of them (through aliases), so each gets a fresh shape.
    fn havoc(&mut self) {
        let names: Vec<String> = self
            .env
            .iter()
            .filter(|(_, e)| !e.fact.numeric)
            .map(|(n, _)| n.clone())
            .collect();
        for n in names {
            let fact = self.fresh(false);
            if let Some(e) = self.env.get_mut(&n) {
                e.fact = fact;
            }
        }
    }

    fn record(&mut self, s: &Stmt, reads: Vec<&str>, target: Option<&str>) {
        let mut facts = StmtFacts::default();
        for r in reads {
            if facts.reads.contains_key(r) {
                continue;
            }
            let fact = self.fact(r);
            let stand_in = self.stand_in(&fact, target.unwrap_or(""));
            facts.reads.insert(r.to_string(), (fact, stand_in));
        }
        self.out.insert(s as *const Stmt as usize, facts);
    }

    fn block(&mut self, body: &[Stmt]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Assign { target, value, .. } => {
                self.record(s, value.reads(), Some(target));
                let fact = self.eval(value);
                if let Some(f) = self.out.get_mut(&(s as *const Stmt as usize)) {
                    f.result = Some(fact.clone());
                }
                self.define(target, fact);
            }
            Stmt::Return { value, .. } => {
                let reads: Vec<&str> = value.iter().filter_map(Atom::name).collect();
                self.record(s, reads, None);
            }
            Stmt::AssignIndex { target, .. }
            | Stmt::Restore {
                container: target, ..
            } => {
                // An array keeps its shape when an element is written; a container may not.
                if !self.fact(target).numeric {
                    self.havoc();
                }
            }
            Stmt::Append { .. }
            | Stmt::PopLast { .. }
            | Stmt::Push { .. }
            | Stmt::Opaque { .. }
            | Stmt::InsertGradOf { .. } => self.havoc(),
            Stmt::Break { .. } | Stmt::Continue { .. } => {}
            Stmt::If { body, orelse, .. } => {
                let before = self.env.clone();
                self.block(body);
                let after_body = std::mem::replace(&mut self.env, before);
                self.block(orelse);
                let after_else = std::mem::take(&mut self.env);
                self.env = match (ends_with_exit(body), ends_with_exit(orelse)) {
                    (true, false) => after_else,
                    (false, true) => after_body,
                    _ => self.merge(after_body, after_else),
                };
            }
            Stmt::For { target, body, .. } => self.lool(body, Some(target)),
            Stmt::While { body, .. } => self.lool(body, None),
        }
    }

    /// Names defined on both paths: kept when the facts agree, a fresh shape otherwise.
    fn merge(
        &mut self,
        a: BTreeMap<String, Entry>,
        b: BTreeMap<String, Entry>,
    ) -> BTreeMap<String, Entry> {
        let mut out = BTreeMap::new();
        for (name, ea) in a {
            let Some(eb) = b.get(&name) else { continue };
            if ea.fact == eb.fact && ea.order == eb.order {
                out.insert(name, ea);
            } else if ea.fact == eb.fact {
                self.next_order += 1;
                out.insert(
                    name,
                    Entry {
                        fact: ea.fact,
                        order: self.next_order,
                    },
                );
            } else {
                let fact = self.fresh(ea.fact.numeric && eb.fact.numeric);
                self.next_order += 1;
                out.insert(
                    name,
                    Entry {
                        fact,
                        order: self.next_order,
                    },
                );
            }
        }
        out
    }

    /// A loop: names the body assigns get a fresh shape at the top of each iteration (numeric
    /// when they are numeric before the loop and at the end of the body), and after the loop.
    fn lool(&mut self, body: &[Stmt], target: Option<&String>) {
        let mut assigned = BTreeSet::new();
        assigned_in(body, &mut assigned);
        if let Some(t) = target {
            assigned.insert(t.clone());
        }
        let jumps = has_jump(body);
        let before = self.env.clone();
        // Which assigned names stay numeric: shrinks to a fixpoint (one or two rounds).
        let mut numeric: BTreeSet<String> = if jumps {
            BTreeSet::new()
        } else {
            assigned
                .iter()
                .filter(|n| before.get(*n).is_some_and(|e| e.fact.numeric))
                .cloned()
                .collect()
        };
        let mut rounds = 0;
        loop {
            self.env = before.clone();
            for n in &assigned {
                if self.env.contains_key(n) {
                    let fact = self.fresh(numeric.contains(n));
                    self.define(n, fact);
                }
            }
            if let Some(t) = target {
                let fact = self.fresh(false);
                self.define(t, fact);
            }
            self.block(body);
            let still: BTreeSet<String> = numeric
                .iter()
                .filter(|n| self.env.get(*n).is_some_and(|e| e.fact.numeric))
                .cloned()
                .collect();
            rounds += 1;
            if still == numeric {
                break;
            }
            numeric = if rounds >= 3 { BTreeSet::new() } else { still };
        }
        // After the loop: what was defined before, with fresh shapes for what the loop assigns.
        self.env = before;
        for n in &assigned {
            if self.env.contains_key(n) {
                let fact = self.fresh(numeric.contains(n));
                self.define(n, fact);
            }
        }
        if assigned.iter().any(|n| !numeric.contains(n)) {
            // The body may have changed containers the loop does not assign.
            self.havoc();
        }
    }

    fn eval(&mut self, value: &Expr) -> Fact {
        match value {
            Expr::Atom(a) => self.atom(a),
            Expr::BinOp { op, left, right } => {
                let (l, r) = (self.atom(left), self.atom(right));
                let arithmetic = matches!(op.as_str(), "+" | "-" | "*" | "/" | "//" | "**")
                    || (op == "%" && l.numeric);
                // `x * x` is elementwise whatever `x` is (a list cannot multiply a list).
                let square = left.name().is_some()
                    && left == right
                    && matches!(op.as_str(), "*" | "**" | "/");
                if op == "@" {
                    // Only arrays multiply as matrices (lists and numbers cannot).
                    self.fresh(true)
                } else if square && !l.numeric {
                    Fact {
                        shape: l.shape,
                        numeric: false,
                    }
                } else if arithmetic && (l.numeric || r.numeric) {
                    Fact {
                        shape: l.shape.union(&r.shape).copied().collect(),
                        numeric: true,
                    }
                } else {
                    self.fresh(false)
                }
            }
            Expr::UnaryOp { op, operand } => {
                let f = self.atom(operand);
                if matches!(op.as_str(), "-" | "+") && f.numeric {
                    f
                } else {
                    self.fresh(false)
                }
            }
            Expr::Call {
                callee:
                    Callee::Function {
                        canonical: Some(c), ..
                    },
                args,
                kwargs,
            } => {
                let facts: Vec<Fact> = args.iter().map(|a| self.atom(a)).collect();
                self.call(c, &facts, !kwargs.is_empty())
            }
            Expr::Call {
                callee: Callee::Method { object, method },
                args,
                kwargs,
            } => {
                let object_fact = self.atom(object);
                if !object_fact.numeric {
                    self.havoc();
                    return self.fresh(false);
                }
                let mut facts = vec![object_fact];
                facts.extend(args.iter().map(|a| self.atom(a)));
                self.call(&format!("numpy.{method}"), &facts, !kwargs.is_empty())
            }
            Expr::Call { .. } => {
                // A function of the user's: it may change containers it is given.
                self.havoc();
                self.fresh(false)
            }
            Expr::Subscript { value, .. } => {
                let numeric = self.atom(value).numeric;
                self.fresh(numeric)
            }
            Expr::Attribute { value, attr } => {
                let f = self.atom(value);
                match attr.as_str() {
                    "real" | "imag" if f.numeric => f,
                    "T" if f.numeric => self.fresh(true),
                    _ => self.fresh(false),
                }
            }
            Expr::Opaque { .. } => {
                self.havoc();
                self.fresh(false)
            }
            Expr::Compare { .. } | Expr::Tuple(_) | Expr::List(_) | Expr::Dict(_) => {
                self.fresh(false)
            }
        }
    }

    /// A call of the function `name` on arguments with facts `args`.
    fn call(&mut self, name: &str, args: &[Fact], keywords: bool) -> Fact {
        let union = |fs: &[Fact]| Fact {
            shape: fs.iter().flat_map(|f| f.shape.iter().copied()).collect(),
            numeric: true,
        };
        match (args.len(), keywords) {
            (1, false) if ELEMENTWISE_UNARY.contains(&name) => return union(args),
            (2, false) if ELEMENTWISE_BINARY.contains(&name) => return union(args),
            (3, false) if name == "numpy.where" => return union(args),
            (1, false) if FULL_REDUCTIONS.contains(&name) => return Fact::scalar(true),
            _ => {}
        }
        if let Some(f) = name.strip_prefix("math.") {
            return if MATH_FLOATS.contains(&f) {
                Fact::scalar(true)
            } else {
                self.fresh(false)
            };
        }
        if ARRAY_RESULTS.contains(&name) {
            return self.fresh(true);
        }
        if !name.starts_with("numpy.") && !name.starts_with("scipy.") {
            // Not a library function: it may change containers it is given.
            self.havoc();
        }
        self.fresh(false)
    }
}

/// Is the literal a number other than a Python int (`1.0`, `-2.5e3`, `1j`): `Some(true)`; an
/// int or a bool: `Some(false)`; anything else: `None`.
fn literal_numeric(text: &str) -> Option<bool> {
    let t = text.trim_start_matches(['-', '+']).replace('_', "");
    if t == "True" || t == "False" {
        return Some(false);
    }
    if !t.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let hex_or_other_base =
        lower.starts_with("0x") || lower.starts_with("0o") || lower.starts_with("0b");
    if !hex_or_other_base && (lower.contains('.') || lower.contains('e') || lower.ends_with('j')) {
        return Some(true);
    }
    Some(false)
}

fn ends_with_exit(body: &[Stmt]) -> bool {
    matches!(
        body.last(),
        Some(Stmt::Return { .. } | Stmt::Break { .. } | Stmt::Continue { .. })
    )
}

/// Does a loop body leave an iteration early (`break`, `continue`, `return`)?
fn has_jump(body: &[Stmt]) -> bool {
    crate::ir::all_statements(body).iter().any(|s| {
        matches!(
            s,
            Stmt::Break { .. } | Stmt::Continue { .. } | Stmt::Return { .. }
        )
    })
}

fn assigned_in(body: &[Stmt], out: &mut BTreeSet<String>) {
    for s in crate::ir::all_statements(body) {
        match s {
            Stmt::Assign { target, .. }
            | Stmt::AssignIndex { target, .. }
            | Stmt::Append { target, .. }
            | Stmt::PopLast { target, .. } => {
                out.insert(target.clone());
            }
            Stmt::Restore { container, .. } => {
                out.insert(container.clone());
            }
            Stmt::For { target, .. } => {
                out.insert(target.clone());
            }
            _ => {}
        }
    }
}

// ------------------------------------------------------------------------------------------
// Recipe templates

/// Simplifies instantiated recipe code with the facts of the names it reads.
pub struct TemplateFacts {
    names: BTreeMap<String, Fact>,
    stand_ins: BTreeMap<String, String>,
    /// Template locals that simplified to another name.
    aliases: BTreeMap<String, AExpr>,
    next_atom: u32,
}

impl TemplateFacts {
    pub fn new() -> TemplateFacts {
        // Atoms of template-only unknowns never meet the primal's (counted from the top).
        TemplateFacts {
            names: BTreeMap::new(),
            stand_ins: BTreeMap::new(),
            aliases: BTreeMap::new(),
            next_atom: u32::MAX,
        }
    }

    /// `name` has `fact`; `stand_in`, when given, may be read instead where only the shape counts.
    pub fn bind(&mut self, name: &str, fact: Fact, stand_in: Option<String>) {
        if let Some(s) = stand_in.filter(|s| s != name) {
            self.stand_ins.insert(name.to_string(), s);
        }
        self.names.insert(name.to_string(), fact);
    }

    pub fn fact_of_name(&mut self, name: &str) -> Fact {
        match self.names.get(name) {
            Some(f) => f.clone(),
            None => self.fresh(),
        }
    }

    fn fresh(&mut self) -> Fact {
        self.next_atom -= 1;
        Fact {
            shape: Shape::from([self.next_atom]),
            numeric: false,
        }
    }

    /// Simplifies `e` in place and returns its fact.
    pub fn simplify(&mut self, e: &mut AExpr) -> Fact {
        // Aliases first: a local that became another name is that name.
        struct Alias<'a>(&'a BTreeMap<String, AExpr>);
        impl Transformer for Alias<'_> {
            fn visit_expr(&self, expr: &mut AExpr) {
                if let AExpr::Name(n) = expr {
                    if let Some(v) = self.0.get(n.id.as_str()) {
                        *expr = v.clone();
                    }
                    return;
                }
                walk_expr(self, expr);
            }
        }
        if !self.aliases.is_empty() {
            Alias(&self.aliases).visit_expr(e);
        }
        self.expr(e)
    }

    /// A template local `name = value` (already simplified, with fact `fact`): a bare name
    /// becomes an alias, and the statement can go. Returns true when it can go.
    pub fn local(&mut self, name: &str, value: &AExpr, fact: Fact) -> bool {
        self.aliases.remove(name);
        self.names.insert(name.to_string(), fact);
        if let AExpr::Name(_) = value {
            self.aliases.insert(name.to_string(), value.clone());
            return true;
        }
        false
    }

    fn expr(&mut self, e: &mut AExpr) -> Fact {
        match e {
            AExpr::Name(n) => self.fact_of_name(n.id.as_str()),
            AExpr::NumberLiteral(n) => Fact::scalar(!matches!(n.value, ast::Number::Int(_))),
            AExpr::BinOp(b) => {
                let l = self.expr(&mut b.left);
                let r = self.expr(&mut b.right);
                let arithmetic = matches!(
                    b.op,
                    ast::Operator::Add
                        | ast::Operator::Sub
                        | ast::Operator::Mult
                        | ast::Operator::Div
                        | ast::Operator::Pow
                );
                if arithmetic && (l.numeric || r.numeric) {
                    Fact {
                        shape: l.shape.union(&r.shape).copied().collect(),
                        numeric: true,
                    }
                } else {
                    self.fresh()
                }
            }
            AExpr::UnaryOp(u) => {
                let f = self.expr(&mut u.operand);
                if matches!(u.op, ast::UnaryOp::USub | ast::UnaryOp::UAdd) && f.numeric {
                    f
                } else {
                    self.fresh()
                }
            }
            AExpr::Call(_) => self.call(e),
            // Not looked into (nor simplified inside): conditional expressions, subscripts...
            _ => self.fresh(),
        }
    }

    fn call(&mut self, e: &mut AExpr) -> Fact {
        let AExpr::Call(c) = e else { unreachable!() };
        let name = crate::recipes::dotted(&c.func);
        let plain = c.arguments.keywords.is_empty();
        let mut facts = Vec::new();
        for a in c.arguments.args.iter_mut() {
            facts.push(self.expr(a));
        }
        for k in c.arguments.keywords.iter_mut() {
            self.expr(&mut k.value);
        }
        let Some(name) = name else {
            return self.fresh();
        };
        let args = &mut c.arguments.args;
        match (name.as_str(), facts.as_slice()) {
            // Reads its second argument only for its shape.
            ("tangent.unbroadcast", [g, like]) if plain => {
                let result = Fact {
                    shape: like.shape.clone(),
                    numeric: like.numeric,
                };
                if g.numeric && like.numeric && g.shape == like.shape {
                    *e = args[0].clone();
                    return result;
                }
                self.use_stand_in(&mut args[1]);
                result
            }
            ("tangent.grad_like", [g, like]) if plain => {
                if g.numeric && like.numeric && like.shape.is_subset(&g.shape) {
                    let g = g.clone();
                    *e = args[0].clone();
                    return g;
                }
                self.use_stand_in(&mut args[1]);
                if g.numeric && like.numeric {
                    Fact {
                        shape: g.shape.union(&like.shape).copied().collect(),
                        numeric: true,
                    }
                } else {
                    self.fresh()
                }
            }
            ("tangent.unreduce", [_, like, ..]) => {
                let result = Fact {
                    shape: like.shape.clone(),
                    numeric: like.numeric,
                };
                self.use_stand_in(&mut args[1]);
                result
            }
            // Adjoints of a product's operands have the operand's shape (and kind).
            ("tangent.dot_adjoint_a" | "tangent.matmul_adjoint_a", [_, a, _]) if plain => a.clone(),
            ("tangent.dot_adjoint_b" | "tangent.matmul_adjoint_b", [_, _, b]) if plain => b.clone(),
            ("tangent.init_grad", [x]) if plain => x.clone(),
            ("numpy.size", [x]) if plain && x.shape.is_empty() => {
                *e = crate::recipes::parse_expr("1");
                Fact::scalar(false)
            }
            ("numpy.size" | "numpy.shape" | "numpy.ndim", [_]) if plain => {
                self.use_stand_in(&mut args[0]);
                self.fresh()
            }
            (n, [_]) if plain && ELEMENTWISE_UNARY.contains(&n) => Fact {
                shape: facts[0].shape.clone(),
                numeric: true,
            },
            (n, [a, b]) if plain && ELEMENTWISE_BINARY.contains(&n) => Fact {
                shape: a.shape.union(&b.shape).copied().collect(),
                numeric: true,
            },
            (n, _) if n.starts_with("math.") && MATH_FLOATS.contains(&&n[5..]) => {
                Fact::scalar(true)
            }
            _ => self.fresh(),
        }
    }

    /// Reads the stand-in of `arg` (a name) when it has one.
    fn use_stand_in(&self, arg: &mut AExpr) {
        if let AExpr::Name(n) = arg
            && let Some(s) = self.stand_ins.get(n.id.as_str())
        {
            n.id = s.as_str().into();
        }
    }
}

impl Default for TemplateFacts {
    fn default() -> Self {
        Self::new()
    }
}
