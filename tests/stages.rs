//! Tests of each pipeline stage through the public module APIs, and of `generate` end to end.
//!
//! These assert on meaning (kinds, line numbers, the presence and place of key statements, the
//! values a normalized body computes), never on whole outputs: `tests/snapshots.rs` covers those.

// `Diagnostic` is the engine's error type as it is; the helpers pass it through unchanged.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use tangent::code::Code;
use tangent::emit::{self, FunctionText};
use tangent::ir::{self, Atom, Callee, Expr, Stmt};
use tangent::recipes::{self, Bound, RecipeSet, TemplateStmt};
use tangent::{
    Diagnostic, DiagnosticKind, Generated, Motion, Options, Request, activity, normalize, optimize,
    parse, resolve,
};

// ------------------------------------------------------------------------------------ helpers

fn file(text: &str) -> parse::SourceFile<'_> {
    parse::SourceFile {
        text,
        path: "pkg/model.py",
        line_offset: 0,
        lines_read: None,
    }
}

/// Parses `src` and normalizes its function `name`.
fn try_normalize(src: &str, name: &str) -> Result<normalize::Normalized, Diagnostic> {
    let f = file(src);
    let module = parse::parse(&f)?;
    let scope = resolve::ModuleScope::new(module.syntax());
    let def = parse::find_function(module.syntax(), name).expect("function in test source");
    normalize::normalize(f, &scope, def)
}

fn normalized(src: &str, name: &str) -> normalize::Normalized {
    try_normalize(src, name).unwrap_or_else(|d| panic!("normalize failed:\n{}", d.render()))
}

fn printed(body: &[Stmt]) -> String {
    let mut out = String::new();
    ir::print_block(body, 0, &mut out);
    out
}

/// Every statement of a body, depth first, with its nesting depth.
fn walk(body: &[Stmt]) -> Vec<(usize, &Stmt)> {
    fn go<'s>(body: &'s [Stmt], depth: usize, out: &mut Vec<(usize, &'s Stmt)>) {
        for s in body {
            out.push((depth, s));
            match s {
                Stmt::If { body, orelse, .. } => {
                    go(body, depth + 1, out);
                    go(orelse, depth + 1, out);
                }
                Stmt::For { body, .. } | Stmt::While { body, .. } => go(body, depth + 1, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    go(body, 0, &mut out);
    out
}

fn gen_with(src: &str, function: &str, options: &Options) -> Result<Generated, Diagnostic> {
    let request = Request {
        module_source: src,
        path: "pkg/model.py",
        function,
        function_source: None,
        function_first_line: 1,
        definition_line: None,
        context_source: None,
        project_recipes: None,
        object_classes: &[],
    };
    tangent::generate(&request, options)
}

fn gen_ok(src: &str, function: &str, options: &Options) -> String {
    match gen_with(src, function, options) {
        Ok(g) => g.source,
        Err(d) => panic!("generate failed:\n{}", d.render()),
    }
}

fn gen_err(src: &str, function: &str, options: &Options) -> Diagnostic {
    match gen_with(src, function, options) {
        Ok(g) => panic!("expected a diagnostic, got code:\n{}", g.source),
        Err(d) => d,
    }
}

fn wrt(positions: &[usize]) -> Options {
    Options {
        wrt: positions.to_vec(),
        ..Options::default()
    }
}

fn assert_parses(source: &str) {
    if let Err(e) = ruff_python_parser::parse_module(source) {
        panic!("generated code does not parse ({e}):\n{source}");
    }
}

/// The statements of the function body `def name` in `source`, trimmed, one per line.
fn lines_of(source: &str) -> Vec<&str> {
    source.lines().map(str::trim).collect()
}

// A tiny interpreter of the normalized IR over numbers, to check that normalization preserves
// what the function computes. Booleans are 1.0 / 0.0.

#[derive(Debug, PartialEq)]
enum Flow {
    Normal,
    Break,
    Continue,
    Return(Vec<f64>),
}

type Env = BTreeMap<String, f64>;

fn value(a: &Atom, env: &Env) -> f64 {
    match a {
        Atom::Name(n) => *env
            .get(n)
            .unwrap_or_else(|| panic!("`{n}` read before assignment")),
        Atom::Const(c) => match c.as_str() {
            "True" => 1.0,
            "False" => 0.0,
            c => c
                .parse()
                .unwrap_or_else(|_| panic!("constant `{c}` in test interpreter")),
        },
    }
}

fn eval_expr(e: &Expr, env: &Env) -> f64 {
    let b = |v: bool| if v { 1.0 } else { 0.0 };
    match e {
        Expr::Atom(a) => value(a, env),
        Expr::BinOp { op, left, right } => {
            let (l, r) = (value(left, env), value(right, env));
            match op.as_str() {
                "+" => l + r,
                "-" => l - r,
                "*" => l * r,
                "/" => l / r,
                op => panic!("operator {op} in test interpreter"),
            }
        }
        Expr::UnaryOp { op, operand } => match op.as_str() {
            "-" => -value(operand, env),
            "not" => b(value(operand, env) == 0.0),
            op => panic!("unary {op} in test interpreter"),
        },
        Expr::Compare { op, left, right } => {
            let (l, r) = (value(left, env), value(right, env));
            b(match op.as_str() {
                "<" => l < r,
                "<=" => l <= r,
                ">" => l > r,
                ">=" => l >= r,
                "==" => l == r,
                "!=" => l != r,
                op => panic!("comparison {op} in test interpreter"),
            })
        }
        Expr::Call {
            callee: Callee::Function {
                canonical: Some(c), ..
            },
            args,
            kwargs,
        } if kwargs.is_empty() && args.len() == 1 => {
            let x = value(&args[0], env);
            match c.as_str() {
                "numpy.sin" | "math.sin" => x.sin(),
                "numpy.exp" | "math.exp" => x.exp(),
                other => panic!("function {other} in test interpreter"),
            }
        }
        other => panic!("expression `{other}` in test interpreter"),
    }
}

fn exec(body: &[Stmt], env: &mut Env) -> Flow {
    for s in body {
        let flow = match s {
            Stmt::Assign { target, value, .. } => {
                let v = eval_expr(value, env);
                env.insert(target.clone(), v);
                Flow::Normal
            }
            Stmt::If {
                test, body, orelse, ..
            } => {
                if eval_expr(test, env) != 0.0 {
                    exec(body, env)
                } else {
                    exec(orelse, env)
                }
            }
            Stmt::For {
                target,
                iter: Expr::Call { args, .. },
                body,
                ..
            } => {
                let n = value(&args[0], env) as i64;
                let mut flow = Flow::Normal;
                for i in 0..n {
                    env.insert(target.clone(), i as f64);
                    match exec(body, env) {
                        Flow::Break => break,
                        r @ Flow::Return(_) => {
                            flow = r;
                            break;
                        }
                        _ => {}
                    }
                }
                flow
            }
            Stmt::While { test, body, .. } => {
                let mut flow = Flow::Normal;
                let mut guard = 0;
                while eval_expr(test, env) != 0.0 {
                    guard += 1;
                    assert!(guard < 10_000, "runaway loop in test interpreter");
                    match exec(body, env) {
                        Flow::Break => break,
                        r @ Flow::Return(_) => {
                            flow = r;
                            break;
                        }
                        _ => {}
                    }
                }
                flow
            }
            Stmt::Break { .. } => Flow::Break,
            Stmt::Continue { .. } => Flow::Continue,
            Stmt::Return { value: vs, .. } => {
                Flow::Return(vs.iter().map(|a| value(a, env)).collect())
            }
            other => panic!("statement {other:?} in test interpreter"),
        };
        if flow != Flow::Normal {
            return flow;
        }
    }
    Flow::Normal
}

/// Runs a normalized function on numbers and returns its result(s).
fn run(n: &normalize::Normalized, args: &[f64]) -> Vec<f64> {
    let mut env = Env::new();
    for (p, a) in n.function.params.iter().zip(args) {
        env.insert(p.name.clone(), *a);
    }
    match exec(&n.function.body, &mut env) {
        Flow::Normal => {}
        other => panic!("normalized body ended with {other:?}; its returns should be assignments"),
    }
    n.result.iter().map(|a| value(a, &env)).collect()
}

// ------------------------------------------------------------------------------------ parse

#[test]
fn parse_syntax_error_has_kind_line_and_column() {
    let src = "import numpy as np\n\ndef f(x):\n    return x )\n";
    let err = parse::parse(&file(src)).map(|_| ()).unwrap_err();
    assert_eq!(err.kind, DiagnosticKind::Syntax);
    assert_eq!((err.line, err.column), (4, 14), "points at the stray `)`");
    assert_eq!(err.source_line, "    return x )");
    assert_eq!(err.path, "pkg/model.py");
    let text = err.render();
    assert!(
        text.contains("pkg/model.py:4:14"),
        "render shows path:line:col:\n{text}"
    );
    assert!(
        text.contains("    return x )"),
        "render shows the source line:\n{text}"
    );
    assert!(text.contains('^'), "render shows a caret:\n{text}");
    assert!(
        text.starts_with("error[T001 syntax]: "),
        "render names the code and kind:\n{text}"
    );
}

#[test]
fn parse_syntax_error_column_counts_characters_not_bytes() {
    // Two-byte characters before the error must not shift the column.
    let src = "def f(x):\n    s = 'éé' )\n";
    let err = parse::parse(&file(src)).map(|_| ()).unwrap_err();
    assert_eq!(err.kind, DiagnosticKind::Syntax);
    assert_eq!((err.line, err.column), (2, 14));
    let text = err.render();
    assert!(text.contains("pkg/model.py:2:14"), "{text}");
    let caret_line = text
        .lines()
        .find(|l| l.contains('^'))
        .expect("a caret line");
    let source_line = text
        .lines()
        .find(|l| l.contains("'éé' )"))
        .expect("the source line");
    // The caret sits under the `)`, counting characters.
    let caret_col = caret_line.chars().position(|c| c == '^').unwrap();
    let paren_col = source_line.chars().position(|c| c == ')').unwrap();
    assert_eq!(caret_col, paren_col, "caret under the `)`:\n{text}");
}

#[test]
fn parse_syntax_error_in_unclosed_bracket_points_into_the_file() {
    let src = "def f(x):\n    y = (x +\n    return y\n";
    let err = parse::parse(&file(src)).map(|_| ()).unwrap_err();
    assert_eq!(err.kind, DiagnosticKind::Syntax);
    assert!(
        err.line >= 2 && err.line <= 4,
        "line {} is inside the broken statement",
        err.line
    );
    assert!(err.column >= 1);
}

#[test]
fn parse_line_offset_shifts_reported_lines() {
    let src = "def f(x):\n    return x )\n";
    let f = parse::SourceFile {
        text: src,
        path: "pkg/model.py",
        line_offset: 10,
        lines_read: None,
    };
    let err = parse::parse(&f).map(|_| ()).unwrap_err();
    assert_eq!((err.line, err.column), (12, 14));
    assert!(err.render().contains("pkg/model.py:12:14"));
}

#[test]
fn parse_find_function_top_level_only_and_last_definition_wins() {
    let src = "def f(x):\n    return 1\n\nclass C:\n    def g(self):\n        return 2\n\ndef f(y):\n    return y\n";
    let module = parse::parse(&file(src)).unwrap();
    let f = parse::find_function(module.syntax(), "f").unwrap();
    assert_eq!(
        f.parameters.args[0].parameter.name.as_str(),
        "y",
        "a redefinition replaces the first"
    );
    assert!(
        parse::find_function(module.syntax(), "g").is_none(),
        "methods are not top-level functions"
    );
    assert!(parse::find_function(module.syntax(), "h").is_none());
}

// ------------------------------------------------------------------------------------ resolve

fn scope(src: &str) -> resolve::ModuleScope {
    let module = parse::parse(&file(src)).unwrap();
    resolve::ModuleScope::new(module.syntax())
}

#[test]
fn resolve_import_as() {
    let s = scope("import numpy as np\n");
    assert_eq!(s.imports.get("np").map(String::as_str), Some("numpy"));
    assert_eq!(s.canonical("np.exp").as_deref(), Some("numpy.exp"));
    assert_eq!(
        s.canonical("np.linalg.det").as_deref(),
        Some("numpy.linalg.det")
    );
    assert_eq!(
        s.canonical("numpy.exp"),
        None,
        "only the bound name `np` is known"
    );
}

#[test]
fn resolve_from_import() {
    let s = scope("from math import exp\nfrom math import log as ln\n");
    assert_eq!(s.canonical("exp").as_deref(), Some("math.exp"));
    assert_eq!(s.canonical("ln").as_deref(), Some("math.log"));
    assert_eq!(s.canonical("log"), None);
}

#[test]
fn resolve_dotted_import_binds_first_component() {
    let s = scope("import numpy.linalg\n");
    assert_eq!(s.imports.get("numpy").map(String::as_str), Some("numpy"));
    assert_eq!(
        s.canonical("numpy.linalg.inv").as_deref(),
        Some("numpy.linalg.inv")
    );
    assert!(!s.imports.contains_key("linalg"));
}

#[test]
fn resolve_from_package_import_submodule_as() {
    let s = scope("from numpy import linalg as la\n");
    assert_eq!(s.canonical("la").as_deref(), Some("numpy.linalg"));
    assert_eq!(s.canonical("la.inv").as_deref(), Some("numpy.linalg.inv"));
}

#[test]
fn resolve_aliases_of_numpy_are_canonicalized() {
    let s = scope("import autograd.numpy as anp\n");
    assert_eq!(s.canonical("anp.tanh").as_deref(), Some("numpy.tanh"));
}

#[test]
fn resolve_same_module_functions_and_shadowing() {
    let src = "from math import exp\n\ndef helper(x):\n    return x\n\ndef exp(x):\n    return x\n\ndef main(x):\n    return helper(x)\n";
    let s = scope(src);
    assert!(s.functions.contains_key("helper"));
    assert!(s.functions.contains_key("main"));
    assert!(s.functions.contains_key("exp"));
    assert_eq!(
        s.canonical("exp"),
        None,
        "a later `def exp` shadows the import"
    );
}

#[test]
fn resolve_relative_imports_are_not_resolved() {
    let s = scope("from . import sibling\nfrom .pkg import thing\n");
    assert!(s.imports.is_empty(), "{:?}", s.imports);
}

#[test]
fn resolve_calls_in_normalized_ir_carry_canonical_names() {
    let src = "import numpy as np\nfrom math import exp\nfrom numpy import linalg as la\n\n\
               def helper(a):\n    return a\n\n\
               def f(x):\n    a = np.tanh(x)\n    b = exp(a)\n    c = la.norm(b)\n    d = helper(c)\n    e = unknown(d)\n    return e\n";
    let n = normalized(src, "f");
    let mut calls = BTreeMap::new();
    for (_, s) in walk(&n.function.body) {
        if let Stmt::Assign {
            target,
            value:
                Expr::Call {
                    callee:
                        Callee::Function {
                            text,
                            canonical,
                            local,
                        },
                    ..
                },
            ..
        } = s
        {
            calls.insert(target.clone(), (text.clone(), canonical.clone(), *local));
        }
    }
    assert_eq!(
        calls["a"],
        ("np.tanh".into(), Some("numpy.tanh".into()), false)
    );
    assert_eq!(calls["b"], ("exp".into(), Some("math.exp".into()), false));
    assert_eq!(
        calls["c"],
        ("la.norm".into(), Some("numpy.linalg.norm".into()), false)
    );
    assert_eq!(calls["d"], ("helper".into(), None, true));
    assert_eq!(calls["e"], ("unknown".into(), None, false));
}

#[test]
fn resolve_local_variable_shadows_import() {
    // Inside `f`, `np` is a parameter, so `np.exp` is a method call on it.
    let src = "import numpy as np\n\ndef f(x, np):\n    return np.exp(x)\n";
    let n = normalized(src, "f");
    let callee = walk(&n.function.body)
        .into_iter()
        .find_map(|(_, s)| match s {
            Stmt::Assign {
                value: Expr::Call { callee, .. },
                ..
            } => Some(callee.clone()),
            _ => None,
        });
    assert!(matches!(callee, Some(Callee::Method { .. })), "{callee:?}");
}

// ------------------------------------------------------------------------------------ normalize

#[test]
fn normalize_one_operation_per_statement() {
    let src = "import numpy as np\n\ndef f(x, y):\n    z = x * y + np.sin(x) / 2.0\n    return z\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    let assigns: Vec<_> = n
        .function
        .body
        .iter()
        .map(|s| match s {
            Stmt::Assign { target, value, .. } => (target.as_str(), value),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(assigns.len(), 4, "x*y, sin, /, +:\n{text}");
    // Every operand of every operation is a name or a literal (the IR's atoms), and every
    // intermediate is an engine temporary.
    for (target, _) in &assigns[..3] {
        assert!(
            target.starts_with('_'),
            "temporary `{target}` starts with `_`:\n{text}"
        );
    }
    assert!(
        matches!(assigns[1].1, Expr::Call { callee: Callee::Function { canonical: Some(c), .. }, args, .. } if c == "numpy.sin" && args == &[Atom::Name("x".into())])
    );
    let (last_target, last) = assigns[3];
    assert_eq!(
        last_target, "z",
        "the user's name is kept for the user's value"
    );
    assert!(
        matches!(last, Expr::BinOp { op, .. } if op == "+"),
        "{text}"
    );
    assert_eq!(n.result, vec![Atom::Name("z".into())]);
    assert!(!n.result_is_tuple);
    assert_eq!(run(&n, &[3.0, 4.0])[0], 3.0 * 4.0 + 3f64.sin() / 2.0);
}

#[test]
fn normalize_desugars_augmented_assignment() {
    let src = "def f(x):\n    y = x\n    y += x * 2\n    y *= 3\n    y -= 1\n    return y\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    // Each is `y = y op v` for the IR, and stays an operation in place for generated code
    // (arrays change in place, as in the user's program).
    let ops: Vec<&str> = n
        .function
        .body
        .iter()
        .filter_map(|s| match s {
            Stmt::Assign {
                target,
                value:
                    Expr::BinOp {
                        op,
                        left: Atom::Name(l),
                        ..
                    },
                inplace: Some(tangent::ir::InPlace::Augmented),
                ..
            } if target == "y" && l == "y" => Some(op.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ops, ["+", "*", "-"], "{text}");
    assert!(text.lines().any(|l| l.starts_with("y += _")), "{text}");
    assert!(text.lines().any(|l| l == "y *= 3"), "{text}");
    assert!(text.lines().any(|l| l == "y -= 1"), "{text}");
    assert_eq!(run(&n, &[2.0]), vec![(2.0 + 4.0) * 3.0 - 1.0]);
}

#[test]
fn normalize_desugars_augmented_assignment_into_subscript() {
    let src = "def f(x, v, i):\n    x[i] += v\n    return x\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    assert!(!text.contains("+="), "{text}");
    let kinds: Vec<_> = n.function.body.iter().map(std::mem::discriminant).collect();
    let last = n.function.body.last().unwrap();
    assert!(
        matches!(last, Stmt::AssignIndex { target, index, .. } if target == "x" && index.text == "i"),
        "ends with the write into x[i]:\n{text}"
    );
    assert_eq!(kinds.len(), 3, "read x[i], add, write back:\n{text}");
}

#[test]
fn normalize_tuple_swap() {
    let src = "def f(a, b):\n    a, b = b, a\n    return a - 10 * b\n";
    let n = normalized(src, "f");
    assert_eq!(
        run(&n, &[1.0, 2.0]),
        vec![2.0 - 10.0 * 1.0],
        "{}",
        printed(&n.function.body)
    );
}

#[test]
fn normalize_tuple_rotation_and_unpacking() {
    let src = "def f(a, b, c):\n    a, b, c = b, c, a\n    t = (a, b)\n    p, q = t\n    return p * 100 + q * 10 + c\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    assert!(
        text.contains("t[0]") && text.contains("t[1]"),
        "unpacking a tuple reads its items:\n{text}"
    );
    // Tuples are not in the interpreter, so only check the rotation part numerically.
    let rot = normalized(
        "def f(a, b, c):\n    a, b, c = b, c, a\n    return a * 100 + b * 10 + c\n",
        "f",
    );
    assert_eq!(run(&rot, &[1.0, 2.0, 3.0]), vec![231.0]);
}

#[test]
fn normalize_chained_comparison() {
    let src = "def f(a, b, c):\n    if a < b <= c:\n        r = 1.0\n    else:\n        r = 0.0\n    return r\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    let compares = walk(&n.function.body)
        .into_iter()
        .filter(|(_, s)| {
            matches!(
                s,
                Stmt::Assign {
                    value: Expr::Compare { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(compares, 2, "one comparison per statement:\n{text}");
    for (a, b, c) in [
        (1.0, 2.0, 3.0),
        (1.0, 2.0, 2.0),
        (2.0, 1.0, 3.0),
        (1.0, 3.0, 2.0),
        (3.0, 2.0, 1.0),
    ] {
        let expected = if a < b && b <= c { 1.0 } else { 0.0 };
        assert_eq!(
            run(&n, &[a, b, c]),
            vec![expected],
            "{a} < {b} <= {c}:\n{text}"
        );
    }
}

#[test]
fn normalize_boolean_operators_short_circuit() {
    let src = "def f(a, b):\n    if a > 0 and b > 0 or a < -5:\n        r = 1.0\n    else:\n        r = 0.0\n    return r\n";
    let n = normalized(src, "f");
    for (a, b) in [
        (1.0, 1.0),
        (1.0, -1.0),
        (-1.0, 1.0),
        (-6.0, 1.0),
        (-6.0, -1.0),
    ] {
        let expected = if (a > 0.0 && b > 0.0) || a < -5.0 {
            1.0
        } else {
            0.0
        };
        assert_eq!(
            run(&n, &[a, b]),
            vec![expected],
            "a={a} b={b}:\n{}",
            printed(&n.function.body)
        );
    }
}

#[test]
fn normalize_elif_becomes_nested_if() {
    let src = "def f(x):\n    if x > 1:\n        y = x\n    elif x < -1:\n        y = -x\n    elif x == 0:\n        y = 7.0\n    else:\n        y = 2 * x\n    return y\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    assert!(!text.contains("elif"), "{text}");
    // The first `if` has the second as (part of) its else branch, and so on.
    let Some(Stmt::If { orelse, .. }) = n
        .function
        .body
        .iter()
        .rev()
        .find(|s| matches!(s, Stmt::If { .. }))
    else {
        panic!("no if:\n{text}");
    };
    assert!(
        orelse.iter().any(|s| matches!(s, Stmt::If { .. })),
        "elif nests in the else branch:\n{text}"
    );
    let depth = walk(&n.function.body)
        .iter()
        .filter(|(_, s)| matches!(s, Stmt::If { .. }))
        .map(|(d, _)| *d)
        .max();
    assert_eq!(depth, Some(2), "three tests, nested twice:\n{text}");
    for x in [2.0, -2.0, 0.0, 0.5] {
        let expected = if x > 1.0 {
            x
        } else if x < -1.0 {
            -x
        } else if x == 0.0 {
            7.0
        } else {
            2.0 * x
        };
        assert_eq!(run(&n, &[x]), vec![expected], "x={x}:\n{text}");
    }
}

#[test]
fn normalize_if_test_reassigned_in_branch_is_snapshotted() {
    // The test variable is reassigned in the branch; the branch decision must not change.
    let src = "def f(x):\n    c = x > 0\n    if c:\n        c = x < 0\n        y = 1.0\n    else:\n        y = 2.0\n    return y\n";
    let n = normalized(src, "f");
    assert_eq!(run(&n, &[1.0]), vec![1.0]);
    assert_eq!(run(&n, &[-1.0]), vec![2.0]);
}

/// Names assigned anywhere in `body` (targets of assignments, index writes, appends, loops).
fn assigned_in(body: &[Stmt]) -> std::collections::BTreeSet<String> {
    walk(body)
        .into_iter()
        .filter_map(|(_, s)| match s {
            Stmt::Assign { target, .. }
            | Stmt::AssignIndex { target, .. }
            | Stmt::Append { target, .. }
            | Stmt::For { target, .. } => Some(target.clone()),
            _ => None,
        })
        .collect()
}

/// The backward sweep re-evaluates an `if`'s test after the branch ran (in reverse), so the
/// test must read nothing its branches assign; otherwise the backward sweep may take the other
/// branch than the forward sweep did (wrong gradient, and misaligned stack pops in loops).
fn assert_if_tests_stable(src: &str) {
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    for (_, s) in walk(&n.function.body) {
        if let Stmt::If {
            test, body, orelse, ..
        } = s
        {
            let mut assigned = assigned_in(body);
            assigned.extend(assigned_in(orelse));
            let clash: Vec<_> = test
                .reads()
                .into_iter()
                .filter(|r| assigned.contains(*r))
                .collect();
            assert!(
                clash.is_empty(),
                "`if {test}:` reads {clash:?}, which its branches assign:\n{text}"
            );
        }
    }
}

#[test]
fn normalize_if_test_stable_when_user_reassigns_it() {
    assert_if_tests_stable(
        "def f(x):\n    c = x > 0\n    if c:\n        c = x < 0\n        x = x * 2\n    return x\n",
    );
    assert_if_tests_stable("def f(x):\n    if x > 0:\n        x = x * 2\n    return x\n");
}

#[test]
fn normalize_if_test_stable_after_break_lifting() {
    // `if s > 1.0: return s` then `s = s * x`: the lifted `s = s * x` lands in the else branch.
    assert_if_tests_stable(
        "def f(x):\n    s = x - 1.0\n    if s > 1.0:\n        return s\n    s = s * x\n    return s\n",
    );
    assert_if_tests_stable(
        "def f(x):\n    s = x\n    done = False\n    for i in range(4):\n        if done:\n            break\n        s = s * x\n        done = s > 2.0\n    return s\n",
    );
}

#[test]
fn normalize_if_test_stable_chained_comparison() {
    assert_if_tests_stable(
        "def f(x, n):\n    s = x\n    for i in range(n):\n        if 0.0 < s < 10.0:\n            s = s * x\n    return s\n",
    );
}

#[test]
fn normalize_if_test_stable_boolean_operators() {
    assert_if_tests_stable(
        "def f(x, n):\n    s = x\n    for i in range(n):\n        if s > 0.0 and s < 10.0:\n            s = s * x\n    return s\n",
    );
}

#[test]
fn normalize_break_lifts_following_statements_into_else() {
    let src = "def f(x, n):\n    s = 0.0\n    for i in range(n):\n        if i > 2:\n            break\n        s = s + x\n        s = s * 2.0\n    return s\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    let Some(Stmt::For { body, .. }) = n
        .function
        .body
        .iter()
        .find(|s| matches!(s, Stmt::For { .. }))
    else {
        panic!("no for loop:\n{text}");
    };
    let Some(Stmt::If {
        body: then, orelse, ..
    }) = body.last()
    else {
        panic!("the loop body ends with the `if` that breaks:\n{text}");
    };
    assert!(matches!(then.last(), Some(Stmt::Break { .. })), "{text}");
    let assigned: Vec<_> = orelse
        .iter()
        .filter_map(|s| match s {
            Stmt::Assign { target, .. } => Some(target.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        assigned.iter().filter(|t| **t == "s").count() == 2,
        "both updates of s moved into else:\n{text}"
    );
    for (x, steps) in [(1.0, 0.0), (1.0, 2.0), (1.5, 3.0), (1.0, 10.0)] {
        let mut s = 0.0;
        for i in 0..steps as i64 {
            if i > 2 {
                break;
            }
            s = (s + x) * 2.0;
        }
        assert_eq!(run(&n, &[x, steps]), vec![s], "x={x} n={steps}:\n{text}");
    }
}

#[test]
fn normalize_continue_lifts_following_statements() {
    let src = "def f(x, n):\n    s = 0.0\n    for i in range(n):\n        if i == 1:\n            continue\n        s = s + x * i\n    return s\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    for (_, s) in walk(&n.function.body) {
        if let Stmt::For { body, .. } = s {
            assert!(
                matches!(body.last(), Some(Stmt::If { .. })),
                "statements after `continue`'s if moved into it:\n{text}"
            );
        }
    }
    assert_eq!(
        run(&n, &[2.0, 4.0]),
        vec![2.0 * (0.0 + 2.0 + 3.0)],
        "{text}"
    );
}

#[test]
fn normalize_unreachable_code_after_break_is_dropped() {
    let src = "def f(x):\n    while x > 0:\n        x = x - 1\n        break\n        x = x + 100\n    return x\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    assert!(!text.contains("100"), "{text}");
    assert_eq!(run(&n, &[5.0]), vec![4.0]);
}

#[test]
fn normalize_for_over_array_becomes_index_loop() {
    let src = "def f(xs):\n    s = 0.0\n    for v in xs:\n        s = s + v\n    return s\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    let Some(Stmt::For {
        target, iter, body, ..
    }) = n
        .function
        .body
        .iter()
        .find(|s| matches!(s, Stmt::For { .. }))
    else {
        panic!("no for:\n{text}");
    };
    assert!(
        target.starts_with('_'),
        "the index is an engine temporary:\n{text}"
    );
    let Expr::Call {
        callee: Callee::Function { text: range, .. },
        args,
        ..
    } = iter
    else {
        panic!("iterates over a call:\n{text}");
    };
    assert_eq!(range, "range", "{text}");
    // range(len(xs)), possibly through a temporary.
    let len_of_xs = match &args[0] {
        Atom::Name(n_len) => n.function.body.iter().any(|s| matches!(s,
            Stmt::Assign { target, value: Expr::Call { callee: Callee::Function { text, .. }, args, .. }, .. }
                if target == n_len && text == "len" && args == &[Atom::Name("xs".into())])),
        Atom::Const(_) => false,
    };
    assert!(len_of_xs, "the range is len(xs):\n{text}");
    assert!(
        matches!(body.first(), Some(Stmt::Assign { target: v, value: Expr::Subscript { value: Atom::Name(seq), index }, .. })
            if v == "v" && seq == "xs" && index.text == *target),
        "the body starts with `v = xs[i]`:\n{text}"
    );
}

#[test]
fn normalize_for_over_range_stays_a_range_loop() {
    let src = "def f(x, n):\n    for i in range(1, n, 2):\n        x = x * 2\n    return x\n";
    let n = normalized(src, "f");
    let Some(Stmt::For { target, iter, .. }) = n.function.body.first() else {
        panic!("{}", printed(&n.function.body));
    };
    assert_eq!(target, "i");
    assert_eq!(iter.to_string(), "range(1, n, 2)");
}

#[test]
fn normalize_return_inside_if_becomes_one_result() {
    let src = "def f(x):\n    if x > 0:\n        return x * x\n    y = x + 1\n    return y\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    assert!(
        walk(&n.function.body)
            .iter()
            .all(|(_, s)| !matches!(s, Stmt::Return { .. })),
        "no return left:\n{text}"
    );
    assert_eq!(n.result.len(), 1);
    let Atom::Name(result) = &n.result[0] else {
        panic!("result is a name")
    };
    // Both paths assign the one result.
    let Some(Stmt::If { body, orelse, .. }) = n.function.body.last() else {
        panic!("{text}")
    };
    for branch in [body, orelse] {
        assert!(
            branch
                .iter()
                .any(|s| matches!(s, Stmt::Assign { target, .. } if target == result)),
            "every path assigns `{result}`:\n{text}"
        );
    }
    assert_eq!(run(&n, &[3.0]), vec![9.0]);
    assert_eq!(run(&n, &[-3.0]), vec![-2.0]);
}

#[test]
fn normalize_tuple_return() {
    let src = "def f(x, y):\n    return x * y, x + y\n";
    let n = normalized(src, "f");
    assert!(n.result_is_tuple);
    assert_eq!(run(&n, &[2.0, 5.0]), vec![10.0, 7.0]);
}

#[test]
fn normalize_conditional_expression() {
    let src = "def f(x):\n    y = x * 2 if x > 0 else -x\n    return y\n";
    let n = normalized(src, "f");
    assert_eq!(run(&n, &[3.0]), vec![6.0]);
    assert_eq!(run(&n, &[-3.0]), vec![3.0]);
}

#[test]
fn normalize_while_with_complex_test() {
    let src = "def f(x):\n    n = 0\n    while x * x > 2.0:\n        x = x / 2\n        n = n + 1\n    return n\n";
    let n = normalized(src, "f");
    assert_eq!(run(&n, &[10.0]), vec![3.0], "{}", printed(&n.function.body));
}

#[test]
fn normalize_keeps_docstrings_and_pass_out() {
    let src = "def f(x):\n    \"\"\"Doc.\"\"\"\n    pass\n    return x\n";
    let n = normalized(src, "f");
    assert!(n.function.body.is_empty(), "{}", printed(&n.function.body));
}

#[test]
fn normalize_temporaries_do_not_clash_with_user_names() {
    let src = "def f(x, _t1):\n    _t2 = x * _t1 + x\n    return _t2\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    let targets: Vec<_> = n
        .function
        .body
        .iter()
        .filter_map(|s| match s {
            Stmt::Assign { target, .. } => Some(target.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(targets.iter().filter(|t| **t == "_t2").count(), 1, "{text}");
    assert!(!targets.contains(&"_t1"), "{text}");
    assert_eq!(run(&n, &[2.0, 3.0]), vec![8.0]);
}

#[test]
fn normalize_origins_cite_the_user_statement() {
    let src = "def f(x):\n    y = x * x + 1.0\n    return y\n";
    let n = normalized(src, "f");
    for s in &n.function.body {
        assert_eq!(s.origin().text, "y = x * x + 1.0");
        assert_eq!(&src[s.origin().start..s.origin().end], "y = x * x + 1.0");
    }
}

/// The original Tangent's stack calls, `tangent.push(stack, v, op_id)` and
/// `tangent.pop(stack, op_id)`: the push and the pop of one op_id go through one variable,
/// so they pair by name like generated code's (the value may come back under another name).
#[test]
fn normalize_stack_calls_with_op_id_pair_through_one_variable() {
    let src = "import tangent\n\ndef f(a):\n    stack = tangent.Stack()\n    y = a * a\n    tangent.push(stack, a, 'abc')\n    aa = tangent.pop(stack, op_id=\"abc\")\n    return y * aa\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    let pushed: Vec<&str> = walk(&n.function.body)
        .into_iter()
        .filter_map(|(_, s)| match s {
            Stmt::Push {
                stack,
                value: Atom::Name(v),
                ..
            } if stack == "stack" => Some(v.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(pushed.len(), 1, "{text}");
    let var = pushed[0];
    assert!(var.starts_with("_op_abc"), "{text}");
    let popped_into: Vec<&str> = walk(&n.function.body)
        .into_iter()
        .filter_map(|(_, s)| match s {
            Stmt::Assign { target, value, .. } => activity::popped_stack(value).map(|stack| {
                assert_eq!(stack, "stack", "{text}");
                target.as_str()
            }),
            _ => None,
        })
        .collect();
    // Quotes do not matter: 'abc' and "abc" are one op_id.
    assert_eq!(popped_into, vec![var], "{text}");
    assert!(has_stmt_line(&text, &format!("{var} = a")), "{text}");
    assert!(has_stmt_line(&text, &format!("aa = {var}")), "{text}");
    assert!(
        activity::unpaired_stack_use(&n.function.body).is_none(),
        "{text}"
    );
    let a = analyze(src, "f", &["a"]);
    assert!(a.is_active(var) && a.is_active("aa"), "{a:?}");
}

fn has_stmt_line(printed: &str, line: &str) -> bool {
    printed.lines().any(|l| l.trim() == line)
}

#[test]
fn normalize_stack_calls_with_other_op_ids_do_not_pair() {
    let src = "import tangent\n\ndef f(a):\n    stack = tangent.Stack()\n    tangent.push(stack, a, 'one')\n    aa = tangent.pop(stack, 'two')\n    return aa\n";
    let n = normalized(src, "f");
    let (_, why) = activity::unpaired_stack_use(&n.function.body).expect("unpaired");
    assert!(why.contains("_op_one"), "{why}");
    let d = gen_err(src, "f", &Options::default());
    assert_eq!(d.kind, DiagnosticKind::Unsupported, "{}", d.render());
    assert!(d.render().contains("op_id"), "{}", d.render());
}

#[test]
fn normalize_stack_call_op_id_must_be_a_literal() {
    let src = "import tangent\n\ndef f(a, key):\n    stack = tangent.Stack()\n    tangent.push(stack, a, key)\n    a = tangent.pop(stack, key)\n    return a\n";
    let d = try_normalize(src, "f").expect_err("a variable op_id");
    assert_eq!(d.kind, DiagnosticKind::Unsupported, "{}", d.render());
    assert!(
        d.message.contains("op_id") && d.message.contains("literal"),
        "{}",
        d.message
    );
}

#[test]
fn normalize_stack_call_op_id_none_is_no_op_id() {
    let src = "import tangent\n\ndef f(a):\n    stack = tangent.Stack()\n    b = a * a\n    tangent.push(stack, b, None)\n    b = tangent.pop(stack, op_id=None)\n    return b\n";
    let n = normalized(src, "f");
    let text = printed(&n.function.body);
    assert!(!text.contains("_op"), "{text}");
    assert!(
        activity::unpaired_stack_use(&n.function.body).is_none(),
        "{text}"
    );
}

#[test]
fn generate_stack_calls_with_op_id_in_both_modes() {
    let src = "import tangent\n\ndef f(a):\n    stack = tangent.Stack()\n    y = a * a\n    tangent.push(stack, a, 'abc')\n    aa = tangent.pop(stack, 'abc')\n    z = y * aa\n    z = z * aa\n    return z\n";
    let out = gen_ok(src, "f", &Options::default());
    assert_parses(&out);
    // The op_id is gone from the generated code (the runtime never used it); the pair goes
    // through one variable, pushed and popped by name.
    let code_lines = |text: &str| {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#') && l.contains("'abc'"))
            .count()
    };
    assert_eq!(code_lines(&out), 0, "{out}");
    assert!(out.contains("stack.append(_op_abc1)"), "{out}");
    assert!(out.contains("_op_abc1 = tangent.pop(stack)"), "{out}");
    // The popped value's adjoint reaches `a`.
    assert!(out.contains("ba = _bop_abc1"), "{out}");
    let request = Request {
        module_source: src,
        path: "pkg/model.py",
        function: "f",
        function_source: None,
        function_first_line: 1,
        definition_line: None,
        context_source: None,
        project_recipes: None,
        object_classes: &[],
    };
    let forward = match tangent::generate_forward(&request, &Options::default()) {
        Ok(g) => g.source,
        Err(d) => panic!("forward mode failed:\n{}", d.render()),
    };
    assert_parses(&forward);
    assert_eq!(code_lines(&forward), 0, "{forward}");
    // The value's tangent goes through the stack beside it.
    assert!(forward.contains("stack.append(_dop_abc1)"), "{forward}");
    assert!(forward.contains("daa = _dop_abc1"), "{forward}");
}

/// A pushed copy (`y = x`, `stack.append(y)`) in a loop: the gradient adds the popped
/// adjoint of `y` into `bx` (`by = bstack.pop()`, `bx = tangent.add_grad(bx, by)`), which is
/// `by`'s pop, not one of `bx` (the slot `bstack[by]`), so the gradient differentiates again.
#[test]
fn generate_hvp_of_a_copy_pushed_in_a_loop() {
    for (push, pop) in [
        (
            "y = x\n        tangent.push(stack, y)",
            "y = tangent.pop(stack)",
        ),
        (
            "tangent.push(stack, x, 'saved')",
            "y = tangent.pop(stack, 'saved')",
        ),
    ] {
        let src = format!(
            "import numpy as np\nimport tangent\n\ndef f(x, n):\n    stack = tangent.Stack()\n    for _ in range(n):\n        {push}\n        x = np.sin(x) * x\n    for _ in range(n):\n        {pop}\n        x = x + y\n    return np.sum(x * x)\n"
        );
        let request = Request {
            module_source: &src,
            path: "pkg/model.py",
            function: "f",
            function_source: None,
            function_first_line: 1,
            definition_line: None,
            context_source: None,
            project_recipes: None,
            object_classes: &[],
        };
        match tangent::generate_hvp(&request, &Options::default()) {
            Ok(g) => assert_parses(&g.source),
            Err(d) => panic!("HVP failed:\n{}", d.render()),
        }
    }
}

// ------------------------------------------------------------------------------------ activity

fn analyze(src: &str, name: &str, wrt: &[&str]) -> activity::Activity {
    let n = normalized(src, name);
    let wrt: Vec<String> = wrt.iter().map(|s| s.to_string()).collect();
    activity::analyze(&n.function, &wrt, &n.result, recipes::builtin())
}

#[test]
fn activity_loop_counter_is_not_active() {
    let src =
        "def f(x, n):\n    s = 0.0\n    for i in range(n):\n        s = s + x * i\n    return s\n";
    let a = analyze(src, "f", &["x"]);
    assert!(a.is_active("x") && a.is_active("s"), "{a:?}");
    assert!(!a.is_active("i"), "{a:?}");
    assert!(!a.is_active("n"), "{a:?}");
}

#[test]
fn activity_constant_values_are_not_active() {
    let src = "import numpy as np\n\ndef f(x):\n    c = 2.0 * 3.0\n    k = np.sqrt(c)\n    y = x * k\n    return y\n";
    let a = analyze(src, "f", &["x"]);
    assert!(a.is_active("y"));
    assert!(
        a.useful.contains("c") && a.useful.contains("k"),
        "useful: {:?}",
        a.useful
    );
    assert!(
        !a.varied.contains("c") && !a.varied.contains("k"),
        "varied: {:?}",
        a.varied
    );
    assert!(!a.is_active("c") && !a.is_active("k"));
}

#[test]
fn activity_varied_but_unused_is_not_useful() {
    let src = "def f(x):\n    unused = x * 2.0\n    y = x + 1.0\n    return y\n";
    let a = analyze(src, "f", &["x"]);
    assert!(a.varied.contains("unused"));
    assert!(!a.useful.contains("unused"));
    assert!(!a.is_active("unused"));
    assert!(a.is_active("y"));
}

#[test]
fn activity_shapes_and_comparisons_do_not_carry_derivatives() {
    let src = "import numpy as np\n\ndef f(x):\n    n = np.shape(x)\n    m = x.shape\n    c = x > 0\n    z = np.zeros(n)\n    i = np.argmax(x)\n    y = x * 2.0 + z\n    return y\n";
    let a = analyze(src, "f", &["x"]);
    for inactive in ["n", "m", "c", "z", "i"] {
        assert!(
            !a.varied.contains(inactive),
            "`{inactive}` is not varied: {:?}",
            a.varied
        );
    }
    assert!(a.is_active("y"));
}

#[test]
fn activity_flows_through_containers_and_subscripts() {
    let src = "def f(x):\n    xs = []\n    xs.append(x)\n    y = xs[0]\n    return y\n";
    let a = analyze(src, "f", &["x"]);
    assert!(a.is_active("xs") && a.is_active("y"), "{a:?}");
}

#[test]
fn activity_only_wrt_inputs_are_varied() {
    let src = "def f(x, w):\n    y = x * w\n    return y\n";
    let a = analyze(src, "f", &["x"]);
    assert!(a.is_active("x"));
    assert!(!a.is_active("w"), "w is not differentiated: {a:?}");
}

// ------------------------------------------------------------------------------------ recipes

#[test]
fn recipes_builtin_contents() {
    let set = recipes::builtin();
    for name in [
        "numpy.exp",
        "operator.mul",
        "operator.add",
        "numpy.sum",
        "math.exp",
        "numpy.dot",
    ] {
        assert!(set.adjoints.contains_key(name), "missing recipe for {name}");
    }
    for name in [
        "numpy.shape",
        "numpy.zeros",
        "builtins.len",
        "builtins.range",
    ] {
        assert!(
            set.nondifferentiable.contains(name),
            "{name} should be nondifferentiable"
        );
    }
    assert!(!set.adjoints.contains_key("numpy.shape"));
    let exp = &set.adjoints["numpy.exp"];
    assert!(exp.names.iter().any(|n| n == "numpy.exp"));
    assert!(exp.origin.starts_with("numpy.py:"), "{}", exp.origin);
    let mul = &set.adjoints["operator.mul"];
    assert_eq!(mul.params.len(), 2);
    assert_eq!(
        mul.differentiable.len(),
        2,
        "both factors receive a contribution"
    );
}

#[test]
fn recipes_nondifferentiable_is_disjoint_from_adjoints() {
    let set = recipes::builtin();
    let both: Vec<_> = set
        .nondifferentiable
        .iter()
        .filter(|n| set.adjoints.contains_key(*n))
        .collect();
    assert!(
        both.is_empty(),
        "both a recipe and nondifferentiable: {both:?}"
    );
}

#[test]
fn recipes_bind_positional_keyword_and_defaults() {
    let sum = &recipes::builtin().adjoints["numpy.sum"];
    let x = Atom::Name("x".into());
    let b = sum
        .bind(
            std::slice::from_ref(&x),
            &[("axis".into(), Atom::Const("1".into()))],
        )
        .unwrap();
    assert_eq!(b["a"], Bound::Atom(x.clone()));
    assert_eq!(b["axis"], Bound::Atom(Atom::Const("1".into())));
    assert_eq!(b["keepdims"], Bound::Default("False".into()));
    assert_eq!(b["keepdims"].text(), "False");

    let b = sum
        .bind(&[x.clone(), Atom::Const("0".into())], &[])
        .unwrap();
    assert_eq!(
        b["axis"],
        Bound::Atom(Atom::Const("0".into())),
        "second positional is axis"
    );

    assert!(
        sum.bind(
            std::slice::from_ref(&x),
            &[("axes".into(), Atom::Const("0".into()))]
        )
        .is_err(),
        "unknown keyword"
    );
    assert!(
        sum.bind(
            &[x.clone(), Atom::Const("0".into())],
            &[("axis".into(), Atom::Const("1".into()))]
        )
        .is_err(),
        "given twice"
    );
    assert!(sum.bind(&[], &[]).is_err(), "missing required argument");
    let too_many: Vec<Atom> = (0..10).map(|i| Atom::Const(i.to_string())).collect();
    assert!(sum.bind(&too_many, &[]).is_err(), "too many arguments");
}

const TEST_RECIPES: &str = r#"
import numpy
import tangent


@adjoint(mylib.scaled, mylib.scaled_alias)
def scaled(y, x, scale=2.0, other=None):
    """Docstrings are dropped."""
    t = d[y] * scale
    u = t + y
    d[x] = u * x
    d[other] = d[y]


nondifferentiable(mylib.size, helper)
"#;

fn test_recipes() -> RecipeSet {
    let mut set = RecipeSet::default();
    set.load("mylib.py", TEST_RECIPES).unwrap();
    set
}

#[test]
fn recipes_load_aliases_and_nondifferentiable() {
    let set = test_recipes();
    assert!(
        set.adjoints.contains_key("mylib.scaled")
            && set.adjoints.contains_key("mylib.scaled_alias")
    );
    assert_eq!(set.adjoints["mylib.scaled"].origin, "mylib.py:scaled");
    assert_eq!(set.adjoints["mylib.scaled"].result, "y");
    assert!(set.nondifferentiable.contains("mylib.size"));
    assert!(
        set.nondifferentiable.contains("builtins.helper"),
        "bare names are builtins"
    );
    let r = &set.adjoints["mylib.scaled"];
    assert!(r.differentiable.contains("x") && r.differentiable.contains("other"));
    assert!(!r.differentiable.contains("scale"));
}

#[test]
fn recipes_load_rejects_broken_templates() {
    let mut set = RecipeSet::default();
    assert!(set.load("bad.py", "@adjoint(m.f)\ndef f(:\n").is_err());
    assert!(
        set.load("bad.py", "@adjoint(m.f)\ndef f():\n    pass\n")
            .is_err(),
        "no result parameter"
    );
}

#[test]
fn recipes_instantiate_renames_locals_and_substitutes_arguments() {
    let set = test_recipes();
    let r = &set.adjoints["mylib.scaled"];
    let bindings = r
        .bind(
            &[Atom::Name("a".into())],
            &[("other".into(), Atom::Name("w".into()))],
        )
        .unwrap();
    let mut counter = 0;
    let mut fresh = |hint: &str| {
        counter += 1;
        format!("_{hint}{counter}")
    };
    let stmts = r.instantiate("out", "bout", &bindings, &mut fresh, None);
    assert_eq!(
        stmts,
        vec![
            TemplateStmt::Local {
                name: "_t1".into(),
                value: "bout * 2.0".into()
            },
            TemplateStmt::Local {
                name: "_u2".into(),
                value: "_t1 + out".into()
            },
            TemplateStmt::Contribution {
                param: "x".into(),
                value: "_u2 * a".into(),
                fact: None
            },
            TemplateStmt::Contribution {
                param: "other".into(),
                value: "bout".into(),
                fact: None
            },
        ]
    );
}

#[test]
fn recipes_instantiate_parenthesizes_substituted_expressions() {
    let mul = &recipes::builtin().adjoints["operator.mul"];
    let bindings = mul
        .bind(&[Atom::Name("a".into()), Atom::Const("-2.0".into())], &[])
        .unwrap();
    let stmts = mul.instantiate("z", "bz[0] + 1", &bindings, &mut |h| format!("_{h}"), None);
    let values: Vec<String> = stmts
        .iter()
        .map(|s| match s {
            TemplateStmt::Contribution { value, .. } | TemplateStmt::Local { value, .. } => {
                value.clone()
            }
            TemplateStmt::Other(t) => t.clone(),
        })
        .collect();
    // `d[z] * x2` with d[z] = `bz[0] + 1` must keep the sum together.
    assert!(
        values
            .iter()
            .any(|v| v.contains("(bz[0] + 1) * -2.0") || v.contains("(bz[0] + 1) * (-2.0)")),
        "{values:?}"
    );
}

// ------------------------------------------------------------------------------------ optimize

fn stmt_texts(code: &[Code]) -> Vec<String> {
    let mut out = Vec::new();
    for c in code {
        match c {
            Code::Stmt { text, .. } => out.push(text.clone()),
            Code::Comment(t) => out.push(format!("# {t}")),
            Code::If {
                test, body, orelse, ..
            } => {
                out.push(format!("if {test}:"));
                out.extend(stmt_texts(body).into_iter().map(|t| format!("    {t}")));
                if !orelse.is_empty() {
                    out.push("else:".into());
                    out.extend(stmt_texts(orelse).into_iter().map(|t| format!("    {t}")));
                }
            }
            Code::Loop { header, body, .. } => {
                out.push(format!("{header}:"));
                out.extend(stmt_texts(body).into_iter().map(|t| format!("    {t}")));
            }
        }
    }
    out
}

fn has_stmt(code: &[Code], text: &str) -> bool {
    stmt_texts(code).iter().any(|t| t.trim() == text)
}

#[test]
fn optimize_removes_dead_pure_statements() {
    let mut body = vec![
        Code::assign("a", "x * 2", true),
        Code::assign("unused", "a + 1", true),
        Code::assign("b", "a * 3", true),
        Code::effect("return b"),
    ];
    optimize::optimize(&mut body);
    let texts = stmt_texts(&body);
    assert!(!texts.iter().any(|t| t.contains("unused")), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("b =") || t.contains("return") && t.contains('3')),
        "{texts:?}"
    );
    assert!(
        has_stmt(&body, "return b") || texts.iter().any(|t| t.starts_with("return")),
        "{texts:?}"
    );
}

#[test]
fn optimize_removes_chains_of_dead_statements() {
    let mut body = vec![
        Code::assign("d1", "x * 2", true),
        Code::assign("d2", "d1 + 1", true),
        Code::assign("d3", "d2 * d1", true),
        Code::effect("return x"),
    ];
    optimize::optimize(&mut body);
    assert_eq!(stmt_texts(&body), vec!["return x".to_string()]);
}

#[test]
fn optimize_keeps_side_effects() {
    let mut body = vec![
        Code::assign("_stack", "tangent.Stack()", false),
        Code::effect("tangent.push(_stack, x)"),
        Code::assign("r", "numpy.random.rand()", false),
        Code::effect("print(x)"),
        Code::effect("return x"),
    ];
    optimize::optimize(&mut body);
    for kept in [
        "_stack = tangent.Stack()",
        "tangent.push(_stack, x)",
        "r = numpy.random.rand()",
        "print(x)",
        "return x",
    ] {
        assert!(
            has_stmt(&body, kept),
            "`{kept}` is kept: {:?}",
            stmt_texts(&body)
        );
    }
}

#[test]
fn optimize_keeps_while_test_variables_updated_in_the_body() {
    // `i` is read only by the loop header; its update in the body is live.
    let mut body = vec![
        Code::assign("i", "0", true),
        Code::assign("s", "0.0", true),
        Code::Loop {
            header: "while i < n".into(),
            defs: vec![],
            uses: vec!["i".into(), "n".into()],
            body: vec![
                Code::assign("s", "s + x", true),
                Code::assign("i", "i + 1", true),
            ],
        },
        Code::effect("return s"),
    ];
    optimize::optimize(&mut body);
    assert!(has_stmt(&body, "i = i + 1"), "{:?}", stmt_texts(&body));
    assert!(has_stmt(&body, "i = 0"), "{:?}", stmt_texts(&body));
    assert!(has_stmt(&body, "s = s + x"), "{:?}", stmt_texts(&body));
}

#[test]
fn optimize_keeps_loop_carried_values() {
    // `t` is read by the next iteration (through `s`), and `s` after the loop.
    let mut body = vec![
        Code::assign("s", "x", true),
        Code::Loop {
            header: "for k in range(n)".into(),
            defs: vec!["k".into()],
            uses: vec!["n".into()],
            body: vec![
                Code::assign("t", "s * 2", true),
                Code::assign("dead", "t + k", true),
                Code::assign("s", "t", true),
            ],
        },
        Code::effect("return s"),
    ];
    optimize::optimize(&mut body);
    optimize::tidy_comments(&mut body);
    let texts = stmt_texts(&body);
    assert!(!texts.iter().any(|t| t.contains("dead")), "{texts:?}");
    assert!(has_stmt(&body, "s = x"), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.trim().starts_with("s = ") && t.contains("* 2") || t.trim() == "s = t"),
        "{texts:?}"
    );
}

#[test]
fn optimize_keeps_values_read_in_either_branch() {
    let mut body = vec![
        Code::assign("a", "x + 1", true),
        Code::assign("b", "x + 2", true),
        Code::If {
            test: "c".into(),
            uses: vec!["c".into()],
            body: vec![Code::assign("r", "a", true)],
            orelse: vec![Code::assign("r", "b", true)],
        },
        Code::effect("return r"),
    ];
    optimize::optimize(&mut body);
    let texts = stmt_texts(&body).join("\n");
    assert!(
        texts.contains("x + 1") && texts.contains("x + 2"),
        "{texts}"
    );
}

#[test]
fn optimize_drops_comments_left_announcing_nothing() {
    let mut body = vec![
        Code::Comment("Grad of: dead = x".into()),
        Code::assign("dead", "x * 2", true),
        Code::Comment("Grad of: y = x".into()),
        Code::assign("bx", "by", true),
        Code::effect("return bx"),
    ];
    optimize::optimize(&mut body);
    optimize::tidy_comments(&mut body);
    let texts = stmt_texts(&body);
    assert!(!texts.iter().any(|t| t.contains("dead")), "{texts:?}");
    assert!(texts.iter().any(|t| t == "# Grad of: y = x"), "{texts:?}");
}

// ------------------------------------------------------------------------------------ emit

#[test]
fn emit_prints_comments_at_their_indentation_and_valid_python() {
    let body = vec![
        Code::Comment("Grad of: y = x * x".into()),
        Code::assign("bx", "2.0 * x * by", true),
        Code::If {
            test: "x > 0".into(),
            uses: vec!["x".into()],
            body: vec![
                Code::Comment("Grad of: z = x".into()),
                Code::assign("bx", "bx + by", true),
            ],
            orelse: vec![],
        },
        Code::effect("return bx"),
    ];
    let f = FunctionText {
        header: "df(x, by=1.0)".into(),
        docstring: Some("Gradient of `f`.".into()),
        body,
    };
    let out = emit::module(
        "Generated for a test.\nSecond line.",
        &["import numpy", "import tangent"],
        &[f],
    )
    .unwrap();
    assert_parses(&out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "# Generated for a test.");
    assert_eq!(lines[1], "# Second line.");
    assert!(lines.contains(&"import numpy") && lines.contains(&"import tangent"));
    assert!(lines.contains(&"def df(x, by=1.0):"), "{out}");
    assert!(lines.contains(&"    # Grad of: y = x * x"), "{out}");
    assert!(
        lines.contains(&"        # Grad of: z = x"),
        "nested comment indented with its block:\n{out}"
    );
    assert!(out.contains("Gradient of `f`."), "{out}");
    assert!(
        !out.contains("__tangent_comment__"),
        "placeholders are gone:\n{out}"
    );
}

#[test]
fn emit_empty_block_gets_pass_and_repeated_comments_are_merged() {
    let body = vec![
        Code::Comment("Grad of: a".into()),
        Code::Comment("Grad of: a".into()),
        Code::Loop {
            header: "for _ in range(3)".into(),
            defs: vec!["_".into()],
            uses: vec![],
            body: vec![],
        },
        Code::effect("return 0.0"),
    ];
    let f = FunctionText {
        header: "g()".into(),
        docstring: None,
        body,
    };
    let out = emit::module("h", &[], &[f]).unwrap();
    assert_parses(&out);
    assert_eq!(out.matches("# Grad of: a").count(), 1, "{out}");
    assert!(out.lines().any(|l| l.trim() == "pass"), "{out}");
}

#[test]
fn emit_rejects_invalid_python_as_internal_error() {
    let f = FunctionText {
        header: "bad(x)".into(),
        docstring: None,
        body: vec![Code::effect("return (x")],
    };
    let Err(d) = emit::module("h", &[], &[f]) else {
        panic!("invalid Python was printed")
    };
    assert_eq!(d.kind, DiagnosticKind::Internal);
}

// ------------------------------------------------------------------------------------ diagnostics

#[test]
fn diagnostic_render_format() {
    let src = "def f(x):\n    y = foo(x)\n    return y\n";
    let start = src.find("foo(x)").unwrap();
    let d = Diagnostic::at(
        DiagnosticKind::NoRecipe,
        "no derivative known for `foo`",
        "pkg/model.py",
        src,
        start,
        start + 6,
    )
    .with_help("add a recipe");
    assert_eq!((d.line, d.column, d.width), (2, 9, 6));
    assert_eq!(d.source_line, "    y = foo(x)");
    let text = d.render();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "error[T003 no-recipe]: no derivative known for `foo`",
        "{text}"
    );
    assert!(text.contains("--> pkg/model.py:2:9"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("2 |") && l.ends_with("    y = foo(x)")),
        "gutter with the line number:\n{text}"
    );
    let carets = lines.iter().find(|l| l.contains('^')).expect("caret line");
    assert_eq!(
        carets.matches('^').count(),
        6,
        "caret as wide as the span:\n{text}"
    );
    let source = lines.iter().find(|l| l.ends_with("y = foo(x)")).unwrap();
    assert_eq!(
        carets.find('^').unwrap(),
        source.find("foo").unwrap(),
        "caret under `foo`:\n{text}"
    );
    assert_eq!(lines.last(), Some(&"help: add a recipe"), "{text}");
    assert_eq!(text, d.to_string(), "Display renders the same text");
}

#[test]
fn diagnostic_without_span() {
    let d = Diagnostic::without_span(
        DiagnosticKind::FunctionNotFound,
        "no function named `g`",
        "m.py",
    );
    assert_eq!((d.line, d.column), (0, 0));
    assert_eq!(
        d.render(),
        format!(
            "error[T005 function-not-found]: no function named `g`\n  --> m.py\nhelp: {}\n",
            DiagnosticKind::FunctionNotFound.default_help()
        )
    );
}

#[test]
fn diagnostic_at_end_of_file_and_crlf() {
    let src = "def f(x):\r\n    return x +\r\n";
    let start = src.find('+').unwrap();
    let d = Diagnostic::at(
        DiagnosticKind::Syntax,
        "bad",
        "m.py",
        src,
        start,
        src.len() + 10,
    );
    assert_eq!((d.line, d.column), (2, 14));
    assert_eq!(
        d.source_line, "    return x +",
        "no carriage return in the source line"
    );
    assert_eq!(
        d.width, 2,
        "the span is clamped to the line (`+` and the `\\r`)"
    );
    let past = Diagnostic::at(
        DiagnosticKind::Syntax,
        "eof",
        "m.py",
        src,
        src.len() + 5,
        src.len() + 9,
    );
    assert_eq!(past.line, 3);
    let _ = past.render();
}

#[test]
fn diagnostic_kinds_have_distinct_names() {
    let kinds = DiagnosticKind::ALL;
    let names: std::collections::BTreeSet<_> = kinds.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), kinds.len());
}

// ------------------------------------------------------------------------------------ generate

const LOGISTIC: &str = "import numpy as np\n\n\
def loss(w, X, y):\n    logits = np.dot(X, w)\n    signs = 1.0 - 2.0 * y\n    return np.mean(np.log1p(np.exp(signs * logits)))\n";

#[test]
fn generate_logistic_end_to_end() {
    let g = gen_with(LOGISTIC, "loss", &Options::default()).unwrap();
    assert_eq!(g.entry, "dloss");
    assert_parses(&g.source);
    let lines = lines_of(&g.source);
    assert!(
        lines[0].starts_with("# Generated by Tangent") && lines[0].contains("model.py:loss"),
        "{}",
        g.source
    );
    assert!(lines.contains(&"import numpy") && lines.contains(&"import tangent"));
    assert!(
        g.source.contains("def dloss(w, X, y, bloss=1.0):"),
        "{}",
        g.source
    );
    assert!(
        lines.contains(&"return tangent.unshared(bw, seed=bloss)"),
        "{}",
        g.source
    );
    assert!(
        g.source.contains("# Grad of: logits = np.dot(X, w)"),
        "{}",
        g.source
    );
    // `y` and `signs` are not differentiated: no adjoint for them.
    assert!(
        !g.source.contains("by =") && !g.source.contains("bsigns ="),
        "{}",
        g.source
    );
}

#[test]
fn generate_is_deterministic_and_path_independent() {
    let options = Options {
        wrt: vec![0, 1],
        ..Options::default()
    };
    let a = gen_ok(LOGISTIC, "loss", &options);
    let b = gen_ok(LOGISTIC, "loss", &options);
    assert_eq!(a, b, "same input twice gives byte-identical output");
    let request = Request {
        module_source: LOGISTIC,
        path: "/some/abs/dir/model.py",
        function: "loss",
        function_source: None,
        function_first_line: 1,
        definition_line: None,
        context_source: None,
        project_recipes: None,
        object_classes: &[],
    };
    let c = tangent::generate(&request, &options).unwrap().source;
    assert_eq!(
        a, c,
        "the directory of the file does not show in the output"
    );
    assert!(!c.contains("/some/abs"));
}

#[test]
fn generate_multiple_wrt_returns_a_tuple() {
    let src = "def f(x, y):\n    return x * y\n";
    let out = gen_ok(src, "f", &wrt(&[0, 1]));
    assert_parses(&out);
    assert!(
        lines_of(&out).contains(&"return tangent.unshared(bx, by, seed=bf)"),
        "{out}"
    );
}

#[test]
fn generate_preserve_result_and_required_seed() {
    let src = "def f(x):\n    return x * x\n";
    let out = gen_ok(
        src,
        "f",
        &Options {
            preserve_result: true,
            ..Options::default()
        },
    );
    assert!(
        out.lines().any(|l| l
            .trim()
            .starts_with("return tangent.unshared(bx, seed=bf), ")),
        "{out}"
    );
    let out = gen_ok(
        src,
        "f",
        &Options {
            seed_required: true,
            ..Options::default()
        },
    );
    assert!(
        out.contains("def df(x, bf):"),
        "the seed has no default:\n{out}"
    );
}

#[test]
fn generate_split_motion_has_forward_and_backward() {
    let out = gen_ok(
        LOGISTIC,
        "loss",
        &Options {
            motion: Motion::Split,
            ..Options::default()
        },
    );
    assert_parses(&out);
    for def in [
        "def loss_forward(w, X, y):",
        "def loss_backward(_state, bloss=1.0):",
        "def dloss(w, X, y, bloss=1.0):",
    ] {
        assert!(out.contains(def), "missing `{def}`:\n{out}");
    }
}

#[test]
fn generate_nested_function_source_reports_file_lines() {
    let module = "import numpy as np\n";
    let nested = "def inner(x):\n    y = yield x\n    return y\n";
    let request = Request {
        module_source: module,
        path: "pkg/model.py",
        function: "inner",
        function_source: Some(nested),
        function_first_line: 20,
        definition_line: None,
        context_source: None,
        project_recipes: None,
        object_classes: &[],
    };
    let d = tangent::generate(&request, &Options::default()).unwrap_err();
    assert_eq!(d.kind, DiagnosticKind::Unsupported);
    assert_eq!(d.line, 21, "line of the nested function within its file");
}

#[test]
fn generate_invalid_wrt_position() {
    let d = gen_err("def f(x, y):\n    return x * y\n", "f", &wrt(&[2]));
    assert_eq!(d.kind, DiagnosticKind::InvalidWrt);
    assert!(d.message.contains('2'), "{}", d.message);
}

#[test]
fn generate_invalid_wrt_name() {
    let d =
        tangent::parameter_positions("def f(x, y):\n    return x\n", "m.py", "f", &["z".into()])
            .unwrap_err();
    assert_eq!(d.kind, DiagnosticKind::InvalidWrt);
    assert!(
        d.message.contains("`z`") && d.message.contains("x, y"),
        "{}",
        d.message
    );
    let ok = tangent::parameter_positions(
        "def f(x, y):\n    return x\n",
        "m.py",
        "f",
        &["y".into(), "x".into()],
    )
    .unwrap();
    assert_eq!(ok, vec![1, 0]);
}

#[test]
fn generate_missing_function() {
    let d = gen_err("def f(x):\n    return x\n", "g", &Options::default());
    assert_eq!(d.kind, DiagnosticKind::FunctionNotFound);
    assert!(d.message.contains("`g`"), "{}", d.message);
    assert_eq!(d.path, "pkg/model.py");
}

#[test]
fn generate_syntax_error() {
    let d = gen_err(
        "import numpy as np\ndef f(x):\n    return x +* 2\n",
        "f",
        &Options::default(),
    );
    assert_eq!(d.kind, DiagnosticKind::Syntax);
    assert_eq!(d.line, 3);
}

fn assert_unsupported(src: &str, line: usize, needle: &str) {
    let d = gen_err(src, "f", &Options::default());
    assert_eq!(d.kind, DiagnosticKind::Unsupported, "{}", d.render());
    assert_eq!(d.line, line, "{}", d.render());
    assert!(
        d.message.contains(needle),
        "message mentions `{needle}`:\n{}",
        d.render()
    );
    let rendered = d.render();
    assert!(
        rendered.contains(&format!("pkg/model.py:{line}:")),
        "{rendered}"
    );
}

#[test]
fn generate_unsupported_yield() {
    assert_unsupported(
        "def f(x):\n    y = x * 2\n    z = yield y\n    return z\n",
        3,
        "yield",
    );
}

#[test]
fn generate_unsupported_global() {
    assert_unsupported(
        "K = 2.0\n\ndef f(x):\n    global K\n    return x * K\n",
        4,
        "global",
    );
}

#[test]
fn generate_unsupported_try() {
    assert_unsupported(
        "def f(x):\n    y = x\n    try:\n        y = x * x\n    except ValueError:\n        pass\n    return y\n",
        3,
        "try",
    );
}

#[test]
fn generate_unsupported_async_def() {
    assert_unsupported(
        "import math\n\nasync def f(x):\n    return x * x\n",
        3,
        "async",
    );
}

#[test]
fn generate_unsupported_lambda_over_active_value() {
    assert_unsupported(
        "def f(x):\n    g = (lambda t: t * x)(2.0)\n    return g + x\n",
        2,
        "lambda",
    );
}

#[test]
fn generate_unsupported_comprehension_over_active_value() {
    assert_unsupported(
        "import numpy as np\n\ndef f(x):\n    y = sum({v * 2.0 for v in x})\n    return y + np.sum(x)\n",
        4,
        "comprehension",
    );
}

#[test]
fn generate_unsupported_with_other_than_insert_grad_of() {
    assert_unsupported(
        "def f(x):\n    with open('a') as fh:\n        y = x\n    return y\n",
        2,
        "with",
    );
}

#[test]
fn generate_no_recipe_for_unknown_call_on_active_value() {
    let src = "import scipy.special\n\ndef f(x):\n    y = x * 2.0\n    z = scipy.special.zeta(y)\n    return z\n";
    let d = gen_err(src, "f", &Options::default());
    assert_eq!(d.kind, DiagnosticKind::NoRecipe, "{}", d.render());
    assert_eq!(d.line, 5);
    assert!(d.message.contains("scipy.special.zeta"), "{}", d.message);
    assert_eq!(d.column, 9, "caret on the call:\n{}", d.render());
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.contains("@tangent.adjoint(scipy.special.zeta)")),
        "{:?}",
        d.help
    );
}

#[test]
fn generate_no_recipe_for_unresolved_name() {
    let d = gen_err(
        "def f(x):\n    return mystery(x)\n",
        "f",
        &Options::default(),
    );
    assert_eq!(d.kind, DiagnosticKind::NoRecipe, "{}", d.render());
    assert_eq!(d.line, 2);
    assert!(d.message.contains("mystery"), "{}", d.message);
}

#[test]
fn generate_unknown_call_on_inactive_value_is_fine() {
    let src = "def f(x, n):\n    k = mystery(n)\n    return x * k\n";
    let out = gen_ok(src, "f", &Options::default());
    assert_parses(&out);
}

#[test]
fn generate_not_differentiable_wrt_loop_bound() {
    let src =
        "def f(x, n):\n    s = 0.0\n    for i in range(n):\n        s = s + x\n    return s\n";
    let d = gen_err(src, "f", &wrt(&[1]));
    assert_eq!(d.kind, DiagnosticKind::NotDifferentiable, "{}", d.render());
    assert_eq!(d.line, 3);
    assert!(d.message.contains("`n`"), "{}", d.message);
    assert_eq!(d.column, 20, "caret on `n` in range(n):\n{}", d.render());
}

#[test]
fn generate_imports_every_module_the_recipes_use() {
    // The user imported the functions, not the module: `math` is not in their namespace.
    let src = "from math import log, sin\n\ndef f(x):\n    return log(x) * sin(x)\n";
    let out = gen_ok(src, "f", &Options::default());
    for module in ["math", "numpy", "tangent"] {
        if out.contains(&format!("{module}.")) {
            assert!(
                lines_of(&out).contains(&format!("import {module}").as_str()),
                "uses `{module}.` without importing it:\n{out}"
            );
        }
    }
}

#[test]
fn generate_helper_function_is_differentiated_once() {
    let src =
        "def sq(a):\n    return a * a\n\ndef f(x):\n    y = sq(x)\n    z = sq(y)\n    return z\n";
    let out = gen_ok(src, "f", &Options::default());
    assert_parses(&out);
    // Its two halves, each defined once and each called twice: the helper runs once per
    // call, its backward half reusing what its forward half saved.
    assert_eq!(out.matches("def sq_forward(").count(), 1, "{out}");
    assert_eq!(out.matches("def sq_backward(").count(), 1, "{out}");
    assert_eq!(
        out.matches("= sq_forward(_stack, ").count(),
        2,
        "called twice:\n{out}"
    );
    assert_eq!(
        out.matches("= sq_backward(_stack, ").count(),
        2,
        "called twice:\n{out}"
    );
    assert!(
        !out.contains("dsq("),
        "no joint derivative, which would run `sq` again:\n{out}"
    );
}

#[test]
fn generate_rejects_a_parameter_named_twice_in_wrt() {
    let d = gen_err("def f(x, y):\n    return x * y\n", "f", &wrt(&[1, 1]));
    assert_eq!(d.kind, DiagnosticKind::InvalidWrt, "{}", d.render());
    assert!(d.message.contains("`y` is named twice"), "{}", d.message);
}

#[test]
fn generate_mutually_recursive_helpers_call_their_derivatives() {
    let src = "def f(x, n):\n    if n == 0:\n        return x\n    y = g(x * 2.0, n - 1)\n    return y\n\ndef g(x, n):\n    z = f(x + 1.0, n)\n    return z\n";
    let out = gen_ok(src, "f", &Options::default());
    // One derivative per function, each calling the other's (no copies).
    assert_eq!(out.matches("def df(").count(), 1, "{out}");
    assert_eq!(out.matches("def dg(").count(), 1, "{out}");
    assert!(
        out.contains("dg(") && out.contains("df(") && out.contains("bf="),
        "{out}"
    );
}

#[test]
fn generate_inactive_code_produces_no_backward_code() {
    let src = "import numpy as np\n\ndef f(x, n):\n    s = x\n    k = 0\n    for i in range(n):\n        k = k + i\n    return s * 2.0\n";
    let out = gen_ok(src, "f", &Options::default());
    assert!(!out.contains("bk") && !out.contains("bi ="), "{out}");
    assert!(
        !out.contains("tangent.pop"),
        "nothing is saved for an inactive loop:\n{out}"
    );
}

#[test]
fn generate_every_backward_block_starts_with_a_comment() {
    let src = "import numpy as np\n\ndef f(x, w):\n    h = np.tanh(x * w)\n    if np.sum(h) > 0:\n        h = h * 2.0\n    return np.sum(h)\n";
    let out = gen_ok(src, "f", &wrt(&[0, 1]));
    assert_parses(&out);
    let backward = out.split("# Grad of:").count() - 1;
    assert!(backward >= 3, "{out}");
    for needed in [
        "# Grad of: h = np.tanh(x * w)",
        "# Grad of: if np.sum(h) > 0:",
    ] {
        assert!(out.contains(needed), "missing `{needed}`:\n{out}");
    }
}

#[test]
fn generate_never_panics_on_odd_input() {
    let cases = [
        "",
        "def f(x):\n    return\n",
        "def f(x):\n    pass\n",
        "def f():\n    return 1.0\n",
        "def f(*args):\n    return args[0]\n",
        "def f(x, **kw):\n    return x\n",
        "def f(x, *, y):\n    return x * y\n",
        "def f(x):\n    return x if x else -x\n",
        "def f(x):\n    a = b = x * 2\n    return a + b\n",
        "def f(x):\n    (a, (b, c)) = (x, (x, x))\n    return a * b * c\n",
        "def f(x):\n    x[0] = x[1]\n    return x\n",
        "def f(x):\n    del x\n    return 1\n",
        "def f(x):\n    while True:\n        x = x * 0.5\n        if x < 1:\n            break\n    return x\n",
        "def f(x):\n    return x.T.T\n",
        "def f(x):\n    return {'a': x}['a']\n",
        "def f(x):\n    return [x, x][0] @ x\n",
        "def f(x):\n    return f'{x}'\n",
        "def f(x):\n    return x ** 2 // 3 % 5\n",
        "def f(x):\n    return ~x\n",
        "def f(x):\n    y: float = x\n    return y\n",
        "def f(x):\n    assert x > 0, 'positive'\n    return x\n",
        "def f(x):\n    match x:\n        case 1:\n            return x\n    return x\n",
        "import numpy as np\ndef f(x):\n    return np.sum(x, axis=0, keepdims=True, where=x)\n",
        "def f(x):\n    for a, b in zip(x, x):\n        x = a * b\n    return x\n",
        "def f(x):\n    for i, v in enumerate(x):\n        x = v * i\n    return x\n",
        "def f(x):\n    return (lambda: x)()\n",
        "def f(x):\n    print(x)\n    return x\n",
    ];
    for src in cases {
        for options in [
            Options::default(),
            Options {
                optimized: false,
                motion: Motion::Split,
                ..Options::default()
            },
        ] {
            let result = std::panic::catch_unwind(|| gen_with(src, "f", &options));
            match result {
                Err(_) => panic!("generate panicked on:\n{src}"),
                Ok(Ok(g)) => assert_parses(&g.source),
                Ok(Err(d)) => {
                    assert_ne!(
                        d.kind,
                        DiagnosticKind::Internal,
                        "internal error on:\n{src}\n{}",
                        d.render()
                    );
                    let _ = d.render();
                }
            }
        }
    }
}

#[test]
fn code_name_scanner_finds_every_name_the_parser_finds() {
    use tangent::code::{names_in, names_in_parsed};
    let cases = [
        "tangent.unbroadcast(_bt2 * signs, logits)",
        "numpy.sum(x, axis=1, keepdims=True) + y",
        "[numpy.reshape(p[k], numpy.shape(_t1[k])) for k in numpy.arange(n)]",
        "a if b is None else c[d:e, ::2]",
        "{'key': v, \"other\": w}",
        "f(x)(y).attr[z]",
        "1.5e-3 * x1 - 0x1F + b'raw'",
        "lambda t: t * scale",
        "not flag and (u == v)",
        "tangent.add_grad_at(None, x, (i, slice(None, j)), g)",
    ];
    for case in cases {
        let scanned = names_in(case);
        for name in names_in_parsed(case) {
            assert!(
                scanned.contains(&name),
                "{case}: scanner missed `{name}` ({scanned:?})"
            );
        }
        for name in &scanned {
            assert!(
                !["numpy", "tangent"].contains(&name.as_str())
                    || case.contains(&format!("{name}.")),
                "{case}"
            );
            assert_ne!(name, "axis");
            assert_ne!(name, "keepdims");
            assert_ne!(name, "key");
        }
    }
}
