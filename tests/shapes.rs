//! The shape facts (`tangent::shapes`): which values are numeric and which certainly share a
//! shape, at each assignment of a normalized function. Each case is a function and claims
//! about the names read by the statement that assigns a given target.

use tangent::ir::{self, Stmt};
use tangent::shapes::{Fact, ShapeFacts, StmtFacts};
use tangent::{normalize, parse, resolve};

fn analyzed(src: &str) -> (normalize::Normalized, Option<ShapeFacts>) {
    let f = parse::SourceFile {
        text: src,
        path: "model.py",
        line_offset: 0,
        lines_read: None,
    };
    let module = parse::parse(&f).expect("parses");
    let scope = resolve::ModuleScope::new(module.syntax());
    let def = parse::find_function(module.syntax(), "f").expect("a function f");
    let norm = normalize::normalize(f, &scope, def).unwrap_or_else(|d| panic!("{}", d.render()));
    let facts = ShapeFacts::analyze(&norm.function);
    (norm, facts)
}

/// The facts at the last assignment to `target`.
fn at<'f>(norm: &normalize::Normalized, facts: &'f ShapeFacts, target: &str) -> &'f StmtFacts {
    let s = ir::all_statements(&norm.function.body)
        .into_iter()
        .filter(|s| matches!(s, Stmt::Assign { target: t, .. } if t == target))
        .last()
        .unwrap_or_else(|| panic!("no assignment to {target}"));
    facts.at(s).expect("facts for every assignment")
}

fn read<'f>(facts: &'f StmtFacts, name: &str) -> &'f Fact {
    &facts
        .reads
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not read"))
        .0
}

fn stand_in(facts: &StmtFacts, name: &str) -> Option<String> {
    facts.reads.get(name).and_then(|r| r.1.clone())
}

#[test]
fn elementwise_operations_keep_shapes_and_broadcasting_unions_them() {
    let (norm, facts) = analyzed(
        "import numpy as np\n\ndef f(x, y):\n    a = np.sin(x)\n    b = a * 2.0\n    c = b * y\n    d = np.exp(c)\n    e = d + a\n    return e\n",
    );
    let facts = facts.unwrap();
    let e = at(&norm, &facts, "e");
    // a and b have x's shape; c, d and e the broadcast of x's and y's.
    assert_eq!(read(e, "a").shape, read(at(&norm, &facts, "c"), "b").shape);
    assert_ne!(read(e, "a").shape, read(e, "d").shape);
    assert!(read(e, "a").shape.is_subset(&read(e, "d").shape));
    assert!(read(e, "d").numeric && read(e, "a").numeric);
    // The parameters themselves may be lists: not numeric.
    assert!(!read(at(&norm, &facts, "a"), "x").numeric);
    // A value needed for its shape reads the earliest of that shape instead.
    assert_eq!(stand_in(e, "d").as_deref(), Some("c"));
    assert_eq!(stand_in(at(&norm, &facts, "c"), "b").as_deref(), Some("a"));
}

#[test]
fn full_reductions_are_scalars_and_other_calls_are_their_own_shape() {
    let (norm, facts) = analyzed(
        "import numpy as np\n\ndef f(w, X):\n    z = np.dot(X, w)\n    s = np.sum(z)\n    m = np.mean(z, axis=0)\n    t = s * m\n    return t\n",
    );
    let facts = facts.unwrap();
    let t = at(&norm, &facts, "t");
    assert!(read(t, "s").shape.is_empty() && read(t, "s").numeric);
    assert!(!read(t, "m").shape.is_empty() && read(t, "m").numeric);
    assert_ne!(read(t, "m").shape, read(at(&norm, &facts, "s"), "z").shape);
}

#[test]
fn loops_give_carried_values_a_fresh_shape_each_iteration() {
    let (norm, facts) = analyzed(
        "import numpy as np\n\ndef f(x, a):\n    x = x * 1.0\n    for i in range(3):\n        u = np.sin(x)\n        x = x + u * a\n    v = x * 2.0\n    return v\n",
    );
    let facts = facts.unwrap();
    let inside = at(&norm, &facts, "u");
    let before = ir::all_statements(&norm.function.body)
        .into_iter()
        .find(|s| matches!(s, Stmt::Assign { target, .. } if target == "x"))
        .and_then(|s| facts.at(s))
        .unwrap();
    // x inside the loop is not x before it (a may be an array that x grows into).
    let x_before = before.result.clone().unwrap();
    assert_ne!(read(inside, "x").shape, x_before.shape);
    assert!(
        read(inside, "x").numeric,
        "numeric before the loop and at the end of the body"
    );
    // Nor is x after the loop the x of the last iteration's top.
    assert_ne!(
        read(at(&norm, &facts, "v"), "x").shape,
        read(inside, "x").shape
    );
}

#[test]
fn branches_keep_only_what_both_agree_on() {
    let (norm, facts) = analyzed(
        "import numpy as np\n\ndef f(x, w, c):\n    a = np.sin(x)\n    if c > 0:\n        y = a * w\n        b = a\n    else:\n        y = a * 2.0\n        b = a\n    z = y + b\n    return z\n",
    );
    let facts = facts.unwrap();
    let z = at(&norm, &facts, "z");
    assert_eq!(
        read(z, "b").shape,
        read(at(&norm, &facts, "b"), "a").shape,
        "the same in both branches"
    );
    assert_ne!(
        read(z, "y").shape,
        read(z, "b").shape,
        "differs between the branches"
    );
    assert!(read(z, "y").numeric);
}

#[test]
fn changing_a_container_forgets_the_shapes_of_every_container() {
    let (norm, facts) = analyzed(
        // `ys` is `xs` through a tuple (a plain `ys = xs` then `xs.append` is refused as an
        // alias changed in place; this one the alias check cannot see).
        "import numpy as np\n\ndef f(xs, x):\n    ys = (xs, x)[0]\n    a = np.sin(ys)\n    xs.append(x)\n    b = np.sin(ys)\n    c = a + b\n    return c\n",
    );
    let facts = facts.unwrap();
    let c = at(&norm, &facts, "c");
    assert_ne!(
        read(c, "a").shape,
        read(c, "b").shape,
        "ys is xs: the append changed its length"
    );
}

#[test]
fn squares_of_anything_and_literals() {
    let (norm, facts) =
        analyzed("def f(x, n):\n    y = x * x\n    z = n * 2\n    w = y * 0.5 + z\n    return w\n");
    let facts = facts.unwrap();
    let y = at(&norm, &facts, "y");
    assert_eq!(
        read(y, "x").shape,
        at(&norm, &facts, "y").result.clone().unwrap().shape
    );
    let z = at(&norm, &facts, "z").result.clone().unwrap();
    assert!(!z.numeric, "an int times an int may be a list repeated");
}

#[test]
fn gradient_surgery_turns_the_analysis_off() {
    let (_, facts) = analyzed(
        "import tangent\n\ndef f(x):\n    y = x * 2.0\n    with tangent.insert_grad_of(y) as g:\n        g = g * 0.0\n    return y\n",
    );
    assert!(facts.is_none());
}
