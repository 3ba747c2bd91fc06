//! The normalized intermediate representation: one operation per statement.
//!
//! Operands are atoms (names or literals), so every statement reads a fixed set of names and
//! writes at most one. Each statement remembers the user statement it came from (`Origin`), which
//! the generated code cites in its comments and diagnostics point at.

use std::fmt;

/// A name or a literal, printed as Python.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Atom {
    Name(String),
    /// Python literal text: `1.0`, `None`, `'abc'`, `True`, `-2`.
    Const(String),
}

impl Atom {
    pub fn name(&self) -> Option<&str> {
        match self {
            Atom::Name(n) => Some(n),
            Atom::Const(_) => None,
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Name(n) | Atom::Const(n) => f.write_str(n),
        }
    }
}

/// An index expression of a subscript, kept as text: indices are never differentiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub text: String,
    /// The same index as a value, for passing to a function: `(i, slice(1, None))`.
    pub arg: String,
    /// Names the index reads.
    pub reads: Vec<String>,
}

/// What is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callee {
    /// A module-level or imported function: the text the user wrote (`np.exp`) and, when known,
    /// its canonical dotted name (`numpy.exp`). `local` is set for functions of the same module.
    Function {
        text: String,
        canonical: Option<String>,
        local: bool,
    },
    /// A method called on a value: `x.sum(axis=0)`.
    Method { object: Atom, method: String },
}

/// Among the reads of an [`Expr::Opaque`]: no derivative flows through it (a call of a
/// function without one, its result inactive whatever it reads).
const NO_DERIVATIVE_READS: &str = "__no_derivative";

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Atom(Atom),
    /// `left op right` where op is a Python binary operator symbol.
    BinOp {
        op: String,
        left: Atom,
        right: Atom,
    },
    /// `op operand`: `-`, `+`, `not`, `~`.
    UnaryOp {
        op: String,
        operand: Atom,
    },
    /// One comparison `left op right`.
    Compare {
        op: String,
        left: Atom,
        right: Atom,
    },
    Call {
        callee: Callee,
        args: Vec<Atom>,
        kwargs: Vec<(String, Atom)>,
    },
    Subscript {
        value: Atom,
        index: Index,
    },
    Attribute {
        value: Atom,
        attr: String,
    },
    Tuple(Vec<Atom>),
    List(Vec<Atom>),
    Dict(Vec<(Atom, Atom)>),
    /// An expression we do not look into (only allowed when it reads nothing active).
    Opaque {
        text: String,
        reads: Vec<String>,
    },
}

impl Expr {
    /// `text`, computed as written, reading `reads`, its value carrying no derivative.
    pub fn without_derivative(text: String, mut reads: Vec<String>) -> Expr {
        reads.push(NO_DERIVATIVE_READS.to_string());
        Expr::Opaque { text, reads }
    }

    /// Is this an [`Expr::without_derivative`]?
    pub fn carries_no_derivative(&self) -> bool {
        matches!(self, Expr::Opaque { reads, .. } if reads.iter().any(|r| r == NO_DERIVATIVE_READS))
    }

    /// Names this expression reads, in order of appearance (may repeat).
    pub fn reads(&self) -> Vec<&str> {
        let mut out = Vec::new();
        fn atom<'e>(a: &'e Atom, out: &mut Vec<&'e str>) {
            if let Atom::Name(n) = a {
                out.push(n.as_str());
            }
        }
        match self {
            Expr::Atom(a) => atom(a, &mut out),
            Expr::BinOp { left, right, .. } | Expr::Compare { left, right, .. } => {
                atom(left, &mut out);
                atom(right, &mut out);
            }
            Expr::UnaryOp { operand, .. } => atom(operand, &mut out),
            Expr::Call {
                callee,
                args,
                kwargs,
            } => {
                match callee {
                    Callee::Method { object, .. } => atom(object, &mut out),
                    // Calling a value (a local lambda, a function passed in) reads it.
                    Callee::Function {
                        text,
                        canonical: None,
                        local: false,
                    } if !text.contains('.') => out.push(text.as_str()),
                    _ => {}
                }
                for a in args {
                    atom(a, &mut out);
                }
                for (_, a) in kwargs {
                    atom(a, &mut out);
                }
            }
            Expr::Subscript { value, index } => {
                atom(value, &mut out);
                out.extend(index.reads.iter().map(String::as_str));
            }
            Expr::Attribute { value, .. } => atom(value, &mut out),
            Expr::Tuple(items) | Expr::List(items) => {
                for a in items {
                    atom(a, &mut out);
                }
            }
            Expr::Dict(items) => {
                for (k, v) in items {
                    atom(k, &mut out);
                    atom(v, &mut out);
                }
            }
            Expr::Opaque { reads, .. } => out.extend(reads.iter().map(String::as_str)),
        }
        out
    }
}

/// `a` where Python reads what follows it as part of it: the object of `.attr`, `.m(...)` and
/// `[...]`, the base of `**`. A number literal is parenthesized there (`(1).real`: `1.real` does
/// not parse; `(-2.0) ** 2`: `-2.0 ** 2` is `-(2.0 ** 2)`).
struct Tight<'a>(&'a Atom);

impl fmt::Display for Tight<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Atom::Const(c)
                if c.starts_with(|ch: char| {
                    ch == '-' || ch == '+' || ch == '.' || ch.is_ascii_digit()
                }) =>
            {
                write!(f, "({c})")
            }
            a => write!(f, "{a}"),
        }
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Atom(a) => write!(f, "{a}"),
            Expr::BinOp { op, left, right } if op == "**" => {
                write!(f, "{} {op} {right}", Tight(left))
            }
            Expr::BinOp { op, left, right } => write!(f, "{left} {op} {right}"),
            Expr::UnaryOp { op, operand } if op == "not" => write!(f, "not {operand}"),
            Expr::UnaryOp { op, operand } => write!(f, "{op}{operand}"),
            Expr::Compare { op, left, right } => write!(f, "{left} {op} {right}"),
            Expr::Call {
                callee,
                args,
                kwargs,
            } => {
                match callee {
                    Callee::Function { text, .. } => write!(f, "{text}(")?,
                    Callee::Method { object, method } => write!(f, "{}.{method}(", Tight(object))?,
                }
                let mut parts: Vec<String> = args.iter().map(ToString::to_string).collect();
                parts.extend(kwargs.iter().map(|(k, v)| format!("{k}={v}")));
                write!(f, "{})", parts.join(", "))
            }
            Expr::Subscript { value, index } => write!(f, "{}[{}]", Tight(value), index.text),
            Expr::Attribute { value, attr } => write!(f, "{}.{attr}", Tight(value)),
            Expr::Tuple(items) if items.len() == 1 => write!(f, "({},)", items[0]),
            Expr::Tuple(items) => write!(f, "({})", join(items)),
            Expr::List(items) => write!(f, "[{}]", join(items)),
            Expr::Dict(items) => {
                let parts: Vec<String> = items.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                write!(f, "{{{}}}", parts.join(", "))
            }
            Expr::Opaque { text, .. } => f.write_str(text),
        }
    }
}

/// The user statement a normalized statement came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Source text of the user's statement (first line only for compound statements).
    pub text: String,
    /// Byte range in the module source.
    pub start: usize,
    pub end: usize,
    /// Sequence number of the user statement: statements sharing it form one block.
    pub id: usize,
}

/// How an assignment changes an object in place (Python's in-place operations). The IR gives
/// the target its new value, as for any assignment; the generated primal code performs the
/// operation on the same object (so that every name sharing it sees the change, as in the
/// user's program), and reverse mode saves a copy of the old contents and puts them back in
/// place (see `aliases` for which changes must be undone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InPlace {
    /// `target op= right`, the value being `target op right`: in place for arrays and lists,
    /// a new value for numbers.
    Augmented,
    /// A statement writing the value into `target`'s object (`numpy.exp(a, out=target)`,
    /// `numpy.copyto(target, v)`, `target.sort()`), kept as its text.
    Into(String),
    /// A call of a function of the module that also changes some of its arguments, given as
    /// `(parameter position, the caller's name passed there)`: the value is the tuple
    /// `(result, new value of each)` (see `effects`).
    Updates(Vec<(usize, String)>),
    /// The new value of an argument that a call changed (`b = _g[1]` after `_g = g(a, b)`):
    /// the same object, already saved with the call.
    Updated,
}

/// A normalized statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    /// `target = value`; `inplace` when the user's statement changes an object in place.
    Assign {
        target: String,
        value: Expr,
        origin: Origin,
        inplace: Option<InPlace>,
    },
    /// `target[index] = value`.
    AssignIndex {
        target: String,
        index: Index,
        value: Atom,
        origin: Origin,
    },
    /// `target.append(value)` on a list.
    Append {
        target: String,
        value: Atom,
        origin: Origin,
    },
    /// `target.pop()` on a list, its result unused: a generated gradient undoing an append.
    PopLast {
        target: String,
        origin: Origin,
    },
    /// `tangent.push(stack, value)`: in generated code that is differentiated again (HVPs).
    Push {
        stack: String,
        value: Atom,
        origin: Origin,
    },
    /// `tangent.restore_item(container, index, saved)`: a generated gradient putting back an
    /// element it saved before the primal overwrote it (`container[index] = saved`).
    Restore {
        container: String,
        index: Atom,
        saved: Atom,
        origin: Origin,
    },
    /// `if test:` where `test` is an atom or one comparison/`not` of atoms.
    If {
        test: Expr,
        body: Vec<Stmt>,
        orelse: Vec<Stmt>,
        origin: Origin,
    },
    /// `for target in iter:` (iter is a name or a `range(...)` call kept as text).
    /// `checkpoint`: the loop of `with tangent.checkpoint():` — reverse mode saves the state
    /// its body carries at the start of each iteration instead of taping the body, and runs
    /// each iteration again (taped) just before its backward pass.
    For {
        target: String,
        iter: Expr,
        body: Vec<Stmt>,
        origin: Origin,
        checkpoint: bool,
    },
    /// `while test:`; `test` is one operation on atoms (`while True:` for complex conditions).
    While {
        test: Expr,
        body: Vec<Stmt>,
        origin: Origin,
    },
    Break {
        origin: Origin,
    },
    Continue {
        origin: Origin,
    },
    Return {
        value: Vec<Atom>,
        tuple: bool,
        origin: Origin,
    },
    /// `with insert_grad_of(var) as alias:` — the body (kept as source lines, dedented)
    /// runs in the backward pass on the adjoint of `var`.
    InsertGradOf {
        var: String,
        alias: String,
        body: Vec<String>,
        origin: Origin,
    },
    /// A statement with no effect on values we track (`assert`, `print(...)`, `pass`).
    Opaque {
        text: String,
        reads: Vec<String>,
        origin: Origin,
    },
}

impl Stmt {
    /// Names a statement reads (for a compound statement: its header).
    pub fn header_reads(&self) -> Vec<&str> {
        match self {
            Stmt::Assign { value, .. } => value.reads(),
            Stmt::AssignIndex {
                target,
                index,
                value,
                ..
            } => {
                let mut r = vec![target.as_str()];
                r.extend(index.reads.iter().map(String::as_str));
                r.extend(value.name());
                r
            }
            Stmt::Append { target, value, .. } => std::iter::once(target.as_str())
                .chain(value.name())
                .collect(),
            Stmt::PopLast { target, .. } => vec![target.as_str()],
            Stmt::Push { stack, value, .. } => std::iter::once(stack.as_str())
                .chain(value.name())
                .collect(),
            Stmt::Restore {
                container,
                index,
                saved,
                ..
            } => std::iter::once(container.as_str())
                .chain(index.name())
                .chain(saved.name())
                .collect(),
            Stmt::If { test, .. } | Stmt::While { test, .. } => test.reads(),
            Stmt::For { iter, .. } => iter.reads(),
            Stmt::Return { value, .. } => value.iter().filter_map(|a| a.name()).collect(),
            Stmt::InsertGradOf { var, .. } => vec![var.as_str()],
            Stmt::Opaque { reads, .. } => reads.iter().map(String::as_str).collect(),
            Stmt::Break { .. } | Stmt::Continue { .. } => vec![],
        }
    }

    pub fn origin(&self) -> &Origin {
        match self {
            Stmt::Assign { origin, .. }
            | Stmt::AssignIndex { origin, .. }
            | Stmt::Append { origin, .. }
            | Stmt::PopLast { origin, .. }
            | Stmt::Push { origin, .. }
            | Stmt::Restore { origin, .. }
            | Stmt::If { origin, .. }
            | Stmt::For { origin, .. }
            | Stmt::While { origin, .. }
            | Stmt::Break { origin }
            | Stmt::Continue { origin }
            | Stmt::Return { origin, .. }
            | Stmt::InsertGradOf { origin, .. }
            | Stmt::Opaque { origin, .. } => origin,
        }
    }
}

/// A parameter of the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    /// Default value as source text.
    pub default: Option<String>,
    /// Declared after `*`: passed by keyword only.
    pub keyword_only: bool,
}

/// A normalized function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub params: Vec<Param>,
    pub body: Vec<Stmt>,
    /// Every name assigned or read in the body, user and temporary: fresh names avoid them.
    pub names: std::collections::BTreeSet<String>,
}

/// Prints statements as Python source (used by emit and by tests).
pub fn print_block(stmts: &[Stmt], indent: usize, out: &mut String) {
    let pad = "    ".repeat(indent);
    for s in stmts {
        match s {
            Stmt::Assign {
                target,
                value,
                inplace: None | Some(InPlace::Updated),
                ..
            } => out.push_str(&format!("{pad}{target} = {value}\n")),
            Stmt::Assign {
                target,
                value,
                inplace: Some(how),
                ..
            } => out.push_str(&format!("{pad}{}\n", in_place_text(target, value, how))),
            Stmt::AssignIndex {
                target,
                index,
                value,
                ..
            } => out.push_str(&format!("{pad}{target}[{}] = {value}\n", index.text)),
            Stmt::Append { target, value, .. } => {
                out.push_str(&format!("{pad}{target}.append({value})\n"))
            }
            Stmt::PopLast { target, .. } => out.push_str(&format!("{pad}{target}.pop()\n")),
            Stmt::Push { stack, value, .. } => {
                out.push_str(&format!("{pad}{stack}.append({value})\n"))
            }
            Stmt::Restore {
                container,
                index,
                saved,
                ..
            } => out.push_str(&format!(
                "{pad}tangent.restore_item({container}, {index}, {saved})\n"
            )),
            Stmt::If {
                test, body, orelse, ..
            } => {
                out.push_str(&format!("{pad}if {test}:\n"));
                print_suite(body, indent + 1, out);
                if !orelse.is_empty() {
                    out.push_str(&format!("{pad}else:\n"));
                    print_suite(orelse, indent + 1, out);
                }
            }
            Stmt::For {
                target,
                iter,
                body,
                checkpoint,
                ..
            } => {
                let note = if *checkpoint { "  # checkpointed" } else { "" };
                out.push_str(&format!("{pad}for {target} in {iter}:{note}\n"));
                print_suite(body, indent + 1, out);
            }
            Stmt::While { test, body, .. } => {
                out.push_str(&format!("{pad}while {test}:\n"));
                print_suite(body, indent + 1, out);
            }
            Stmt::Break { .. } => out.push_str(&format!("{pad}break\n")),
            Stmt::Continue { .. } => out.push_str(&format!("{pad}continue\n")),
            Stmt::Return { value, tuple, .. } => {
                if *tuple {
                    out.push_str(&format!("{pad}return {}\n", Expr::Tuple(value.clone())))
                } else {
                    out.push_str(&format!("{pad}return {}\n", value[0]))
                }
            }
            Stmt::InsertGradOf {
                var, alias, body, ..
            } => {
                out.push_str(&format!(
                    "{pad}with tangent.insert_grad_of({var}) as {alias}:\n"
                ));
                for line in body {
                    out.push_str(&format!("{pad}    {line}\n"));
                }
            }
            Stmt::Opaque { text, .. } => {
                for line in text.lines() {
                    out.push_str(&format!("{pad}{line}\n"));
                }
            }
        }
    }
}

fn print_suite(stmts: &[Stmt], indent: usize, out: &mut String) {
    if stmts.is_empty() {
        out.push_str(&format!("{}pass\n", "    ".repeat(indent)));
    } else {
        print_block(stmts, indent, out);
    }
}

/// Every statement of `body` at any depth, in program order (a compound statement before
/// the statements of its blocks).
pub fn all_statements(body: &[Stmt]) -> Vec<&Stmt> {
    fn walk<'s>(body: &'s [Stmt], out: &mut Vec<&'s Stmt>) {
        for s in body {
            out.push(s);
            match s {
                Stmt::If { body, orelse, .. } => {
                    walk(body, out);
                    walk(orelse, out);
                }
                Stmt::For { body, .. } | Stmt::While { body, .. } => walk(body, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(body, &mut out);
    out
}

/// Every assignment `name = ...` in `body`, at any depth, in order.
pub fn assignments_of<'s>(body: &'s [Stmt], name: &str) -> Vec<&'s Stmt> {
    all_statements(body)
        .into_iter()
        .filter(|s| matches!(s, Stmt::Assign { target, .. } if target == name))
        .collect()
}

/// The recipe of a binary operator: `+` is `operator.add`, and so on.
pub fn binary_operator_recipe(op: &str) -> Option<&'static str> {
    Some(match op {
        "+" => "operator.add",
        "-" => "operator.sub",
        "*" => "operator.mul",
        "/" => "operator.truediv",
        "//" => "operator.floordiv",
        "**" => "operator.pow",
        "@" => "operator.matmul",
        "%" => "operator.mod",
        _ => return None,
    })
}

/// The recipe of a unary operator (`-x` is `operator.neg`); `not` and `~` have none.
pub fn unary_operator_recipe(op: &str) -> Option<&'static str> {
    match op {
        "-" => Some("operator.neg"),
        "+" => Some("operator.pos"),
        _ => None,
    }
}

/// A method call on a value as the NumPy function it stands for: `x.sum(axis=0)` is
/// `numpy.sum(x, axis=0)`. `x.reshape(2, 3)` and `x.transpose(1, 0)` take the shape as
/// separate arguments, which become one tuple. Returns the recipe name and all arguments.
/// A call's arguments as source text: the positional ones, then `key=value`.
pub fn call_arguments(args: &[Atom], kwargs: &[(String, Atom)]) -> Vec<String> {
    args.iter()
        .map(ToString::to_string)
        .chain(kwargs.iter().map(|(k, v)| format!("{k}={v}")))
        .collect()
}

/// The methods of NumPy arrays (a method of another name is called on an object of a class
/// Tangent does not know, never an array).
pub const ARRAY_METHODS: &[&str] = &[
    "all",
    "any",
    "argmax",
    "argmin",
    "argpartition",
    "argsort",
    "astype",
    "byteswap",
    "choose",
    "clip",
    "compress",
    "conj",
    "conjugate",
    "copy",
    "cumprod",
    "cumsum",
    "diagonal",
    "dot",
    "fill",
    "flatten",
    "item",
    "max",
    "mean",
    "min",
    "nonzero",
    "partition",
    "prod",
    "ptp",
    "put",
    "ravel",
    "repeat",
    "reshape",
    "resize",
    "round",
    "searchsorted",
    "sort",
    "squeeze",
    "std",
    "sum",
    "swapaxes",
    "take",
    "tolist",
    "trace",
    "transpose",
    "var",
    "view",
];

/// The help for a call of method `method` with no derivative known: an array method has a
/// NumPy function's recipe (`recipe`) to add; any other method is an object's whose class is
/// unknown where it is called.
pub fn method_help(method: &str, recipe: &str) -> String {
    if ARRAY_METHODS.contains(&method) {
        return format!(
            "call a NumPy function with a known derivative instead, or add a recipe for `{recipe}`"
        );
    }
    format!(
        "`.{method}()` is not an array method: it is called on an object whose class Tangent \
         cannot tell here. Make the object's class known: make the object in the function \
         (`obj = Model(...)`, a class of the module), differentiate a bound method \
         (`tangent.grad(model.loss)`: the classes of the objects it holds are read from it), or \
         call a function of the module"
    )
}

pub fn method_recipe(object: &Atom, method: &str, args: &[Atom]) -> (String, Vec<Atom>) {
    let name = if method == "flatten" {
        "numpy.ravel".to_string()
    } else {
        format!("numpy.{method}")
    };
    let mut all = vec![object.clone()];
    if matches!(method, "reshape" | "transpose") && args.len() > 1 {
        all.push(Atom::Const(format!(
            "({})",
            args.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    } else {
        all.extend(args.iter().cloned());
    }
    (name, all)
}

/// The primal statement of an in-place assignment, as generated code performs it: `a += b`,
/// the statement writing into the target (`numpy.exp(a, out=a)`), or a call that changes its
/// arguments giving its result with their new values, `t = (g(a, b), b)`.
pub fn in_place_text(target: &str, value: &Expr, how: &InPlace) -> String {
    match (how, value) {
        (InPlace::Augmented, Expr::BinOp { op, right, .. }) => format!("{target} {op}= {right}"),
        (InPlace::Into(text), _) => text.clone(),
        (InPlace::Updates(updated), Expr::Call { .. }) => {
            let names: Vec<&str> = updated.iter().map(|(_, n)| n.as_str()).collect();
            format!("{target} = ({value}, {})", names.join(", "))
        }
        _ => format!("{target} = {value}"),
    }
}
