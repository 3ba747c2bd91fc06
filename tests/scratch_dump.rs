use tangent::{ir, normalize, parse, resolve};

fn norm(src: &str, name: &str) -> String {
    let file = parse::SourceFile { text: src, path: "t.py", line_offset: 0 };
    let m = parse::parse(&file).unwrap();
    let scope = resolve::ModuleScope::new(m.syntax());
    let def = parse::find_function(m.syntax(), name).unwrap();
    let n = normalize::normalize(file, &scope, def).unwrap();
    let mut out = String::new();
    ir::print_block(&n.function.body, 0, &mut out);
    format!("{out}# result={:?} tuple={}\n", n.result, n.result_is_tuple)
}

#[test]
fn dump() {
    let cases = [
        "def f(x, y):\n    z = x * y + np.sin(x) / 2.0\n    return z\n",
        "def f(x):\n    y = x\n    y += x * 2\n    y *= 3\n    return y\n",
        "def f(a, b):\n    a, b = b, a\n    return a - b\n",
        "def f(a, b, c):\n    if a < b < c:\n        return a\n    return b\n",
        "def f(x):\n    if x > 0:\n        y = x\n    elif x < -1:\n        y = -x\n    else:\n        y = 2 * x\n    return y\n",
        "def f(x, n):\n    s = 0.0\n    for i in range(n):\n        if i > 3:\n            break\n        s = s + x\n        s = s * x\n    return s\n",
        "def f(xs):\n    s = 0.0\n    for v in xs:\n        s = s + v\n    return s\n",
        "def f(x):\n    if x > 0:\n        return x * x\n    else:\n        return -x\n",
        "def f(x):\n    if x > 0:\n        return x * x\n    y = x + 1\n    return y\n",
    ];
    for c in cases {
        println!("----\n{c}====\n{}", norm(c, "f"));
    }
}
