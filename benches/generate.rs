//! Generation speed: `tangent::generate` from module text to derivative source.
//!
//! Reported as functions per second (`Throughput::Elements`):
//! - `logistic`: the logistic-regression loss of the README (one small function);
//! - `mlp`: a two-layer tanh MLP with a softmax cross-entropy loss;
//! - `module_50_functions`: every function of a 50-function module, one `generate` each
//!   (each call parses and resolves the whole module, as the Python API does).
//!
//! `cargo bench --bench generate`; for a quick look on a busy machine add
//! `-- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tangent::{Options, Request};

const LOGISTIC: &str = include_str!("../tests/fixtures/snapshots/logistic.py");
const MLP: &str = include_str!("../tests/fixtures/snapshots/mlp.py");

fn request<'a>(module: &'a str, function: &'a str) -> Request<'a> {
    Request {
        module_source: module,
        path: "bench.py",
        function,
        function_source: None,
        function_first_line: 1,
        definition_line: None,
        context_source: None,
        project_recipes: None,
        object_classes: &[],
    }
}

/// A module of `n` functions of assorted shapes (arithmetic, NumPy, loops, branches, helpers,
/// subscripts), named `f0`, `f1`, ...; each is differentiated w.r.t. its first parameter.
fn module_of(n: usize) -> (String, Vec<String>) {
    let mut src = String::from(
        "import numpy as np\nimport math\n\n\ndef helper(a, b):\n    return np.tanh(a * b) + a\n",
    );
    let mut names = Vec::new();
    for k in 0..n {
        let name = format!("f{k}");
        let c = k as f64 + 1.0;
        let body = match k % 7 {
            0 => format!(
                "def {name}(x, y):\n    z = x * y + {c:.1}\n    w = z * z - x / (y + 1.0)\n    return w * {c:.1}\n"
            ),
            1 => format!(
                "def {name}(w, X):\n    h = np.tanh(np.dot(X, w) + {c:.1})\n    return np.mean(h * h)\n"
            ),
            2 => format!(
                "def {name}(x, n):\n    s = x\n    for i in range(n):\n        s = s * 0.5 + np.sin(s) * x\n    return s\n"
            ),
            3 => format!(
                "def {name}(x, a):\n    if x > {c:.1}:\n        y = a * math.log(x)\n    elif x < -{c:.1}:\n        y = -a * x * x\n    else:\n        y = math.sin(x) * a + x\n    return y\n"
            ),
            4 => format!(
                "def {name}(x, W):\n    h = helper(x, W)\n    g = helper(h, {c:.1})\n    return np.sum(g)\n"
            ),
            5 => format!(
                "def {name}(x, tol):\n    y = x\n    while y * y > tol:\n        y = 0.5 * y + 0.1 * x\n    return y\n"
            ),
            _ => format!(
                "def {name}(x):\n    y = np.zeros(x.shape[0])\n    y[0] = x[0]\n    for i in range(1, x.shape[0]):\n        y[i] = 0.5 * y[i - 1] + x[i] * {c:.1}\n    return np.sum(y * y)\n"
            ),
        };
        src.push_str("\n\n");
        src.push_str(&body);
        names.push(name);
    }
    (src, names)
}

/// Fails loudly if a benchmark input does not generate: timing the error path would mislead.
/// A loop nest `depth` deep around one update: generation time must grow with the depth, not
/// double with each level (each loop's backward pass is a fixpoint over its body).
fn nested_loops(depth: usize) -> String {
    let mut text = String::from("import numpy as np\n\n\ndef f(x):\n    s = x\n");
    for d in 0..depth {
        text.push_str(&format!("{}for i{d} in range(2):\n", "    ".repeat(d + 1)));
    }
    text.push_str(&format!(
        "{}s = np.sin(s) * 0.9 + x\n    return np.sum(s)\n",
        "    ".repeat(depth + 1)
    ));
    text
}

fn check(module: &str, function: &str, options: &Options) {
    if let Err(d) = tangent::generate(&request(module, function), options) {
        panic!(
            "benchmark input `{function}` does not generate:\n{}",
            d.render()
        );
    }
}

fn bench_generate(c: &mut Criterion) {
    let default = Options::default();
    let mlp_all = Options {
        wrt: vec![0, 1, 2, 3],
        ..Options::default()
    };
    let (module, names) = module_of(50);
    check(LOGISTIC, "loss", &default);
    check(MLP, "mlp_loss", &mlp_all);
    for name in &names {
        check(&module, name, &default);
    }

    let mut group = c.benchmark_group("generate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("logistic", |b| {
        b.iter(|| tangent::generate(&request(black_box(LOGISTIC), "loss"), &default).unwrap())
    });
    group.bench_function("mlp", |b| {
        b.iter(|| tangent::generate(&request(black_box(MLP), "mlp_loss"), &mlp_all).unwrap())
    });
    for depth in [4, 12] {
        let nest = nested_loops(depth);
        check(&nest, "f", &default);
        group.bench_function(format!("nested_loops_{depth}"), |b| {
            b.iter(|| tangent::generate(&request(black_box(&nest), "f"), &default).unwrap())
        });
    }
    group.throughput(Throughput::Elements(names.len() as u64));
    group.bench_function("module_50_functions", |b| {
        b.iter(|| {
            for name in &names {
                black_box(tangent::generate(&request(black_box(&module), name), &default).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_generate);
criterion_main!(benches);
