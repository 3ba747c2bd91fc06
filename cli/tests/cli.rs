//! Drives the real `tangent` binary: exit codes, stdout for gradients, stderr for diagnostics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `tangent` with `args` from `dir`.
fn tangent(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tangent"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("failed to run the tangent binary")
}

/// A fresh directory holding `name` with `contents`; returns the directory.
fn scratch(test: &str, name: &str, contents: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli-tests")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), contents).unwrap();
    dir
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// `stderr` names `file:line:<column>` with a numeric column.
fn assert_location(err: &str, file: &str, line: usize) {
    let needle = format!("{file}:{line}:");
    let found = err.match_indices(&needle).any(|(i, _)| {
        err[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    });
    assert!(found, "expected `{needle}<col>` in stderr:\n{err}");
}

const SIMPLE: &str =
    "import numpy as np\n\n\ndef square_sum(x, y):\n    z = x * y\n    return np.sum(z * z)\n";

// --- success ---------------------------------------------------------------------------

#[test]
fn grad_of_example_prints_derivative() {
    let o = tangent(&workspace_root(), &["grad", "examples/logistic.py:loss"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("def dloss"), "stdout:\n{}", stdout(&o));
    assert!(stderr(&o).is_empty(), "stderr:\n{}", stderr(&o));
}

#[test]
fn grad_of_example_with_all_options() {
    let args = [
        "grad",
        "examples/logistic.py:loss",
        "--wrt",
        "w,X",
        "--no-optimize",
        "--motion",
        "split",
        "--preserve-result",
    ];
    let o = tangent(&workspace_root(), &args);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("def loss_forward"), "stdout:\n{out}");
    assert!(out.contains("def loss_backward"), "stdout:\n{out}");
}

#[test]
fn output_is_deterministic() {
    let dir = scratch("deterministic", "m.py", SIMPLE.as_bytes());
    let a = tangent(&dir, &["grad", "m.py:square_sum", "--wrt", "x,y"]);
    let b = tangent(&dir, &["grad", "m.py:square_sum", "--wrt", "x,y"]);
    assert_exit(&a, 0);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn wrt_defaults_to_first_parameter() {
    let dir = scratch("wrt_default", "m.py", SIMPLE.as_bytes());
    let default = tangent(&dir, &["grad", "m.py:square_sum"]);
    let named = tangent(&dir, &["grad", "m.py:square_sum", "--wrt", "x"]);
    assert_exit(&default, 0);
    assert!(stdout(&default).contains("def dsquare_sum"));
    assert_eq!(default.stdout, named.stdout);
}

#[test]
fn wrt_accepts_repeated_flag() {
    let dir = scratch("wrt_repeated", "m.py", SIMPLE.as_bytes());
    let comma = tangent(&dir, &["grad", "m.py:square_sum", "--wrt", "x,y"]);
    let repeated = tangent(
        &dir,
        &["grad", "m.py:square_sum", "--wrt", "x", "--wrt", "y"],
    );
    assert_exit(&comma, 0);
    assert_eq!(comma.stdout, repeated.stdout);
}

#[test]
fn wrt_accepts_positions() {
    let dir = scratch("wrt_positions", "m.py", SIMPLE.as_bytes());
    let named = tangent(&dir, &["grad", "m.py:square_sum", "--wrt", "x,y"]);
    let positions = tangent(&dir, &["grad", "m.py:square_sum", "--wrt", "0,1"]);
    assert_exit(&positions, 0);
    assert_eq!(named.stdout, positions.stdout);
    let past_the_end = tangent(&dir, &["grad", "m.py:square_sum", "--wrt", "7"]);
    assert_exit(&past_the_end, 1);
    assert!(
        stderr(&past_the_end).contains("T006"),
        "{}",
        stderr(&past_the_end)
    );
}

// --- diagnostics: exit 1 ---------------------------------------------------------------

#[test]
fn syntax_error_points_at_file_line_col() {
    let dir = scratch("syntax", "bad.py", b"def f(x):\n    return x $ 2\n");
    let o = tangent(&dir, &["grad", "bad.py:f"]);
    assert_exit(&o, 1);
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert_location(&err, "bad.py", 2);
    assert!(err.contains("return x $ 2"), "stderr:\n{err}");
    assert!(err.contains('^'), "stderr:\n{err}");
}

#[test]
fn yield_is_unsupported_with_location() {
    let src = b"def gen(x):\n    y = x * 2.0\n    yield y\n";
    let dir = scratch("yield", "gen.py", src);
    let o = tangent(&dir, &["grad", "gen.py:gen"]);
    assert_exit(&o, 1);
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(err.contains("gen.py:3:5"), "stderr:\n{err}");
    assert!(err.contains("yield y"), "stderr:\n{err}");
    assert!(err.contains('^'), "stderr:\n{err}");
}

#[test]
fn missing_function_is_reported() {
    let dir = scratch("missing_function", "m.py", SIMPLE.as_bytes());
    let o = tangent(&dir, &["grad", "m.py:nosuch"]);
    assert_exit(&o, 1);
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(err.contains("nosuch"), "stderr:\n{err}");
    assert!(err.contains("m.py"), "stderr:\n{err}");
}

#[test]
fn unknown_wrt_name_is_reported() {
    let dir = scratch("unknown_wrt", "m.py", SIMPLE.as_bytes());
    let o = tangent(&dir, &["grad", "m.py:square_sum", "--wrt", "nosuch"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("nosuch"), "stderr:\n{}", stderr(&o));
}

// --- files that cannot be used: exit 1 with a code, like every diagnostic ---------------

#[test]
fn missing_file_is_an_io_error() {
    let dir = scratch("missing_file", "other.py", b"");
    let o = tangent(&dir, &["grad", "does_not_exist.py:f"]);
    assert_exit(&o, 1);
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(err.starts_with("error[T010 io]: "), "stderr:\n{err}");
    assert!(err.contains("does_not_exist.py"), "stderr:\n{err}");
}

#[test]
fn non_utf8_file_is_invalid_input_at_its_place() {
    let dir = scratch(
        "non_utf8",
        "latin1.py",
        b"# caf\xe9\ndef f(x):\n    return x\n",
    );
    let o = tangent(&dir, &["grad", "latin1.py:f"]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.starts_with("error[T008 invalid-input]: "),
        "stderr:\n{err}"
    );
    assert!(err.contains("UTF-8"), "stderr:\n{err}");
    assert!(err.contains("latin1.py:1:6"), "stderr:\n{err}");
}

// --- usage errors: exit 2 (these do not need the engine) -------------------------------

#[test]
fn target_without_function_exits_2() {
    let dir = scratch("no_function", "m.py", SIMPLE.as_bytes());
    assert_exit(&tangent(&dir, &["grad", "m.py"]), 2);
    assert_exit(&tangent(&dir, &["grad", "m.py:"]), 2);
}

#[test]
fn bad_motion_exits_2() {
    let dir = scratch("bad_motion", "m.py", SIMPLE.as_bytes());
    let o = tangent(&dir, &["grad", "m.py:square_sum", "--motion", "sideways"]);
    assert_exit(&o, 2);
}

#[test]
fn no_subcommand_exits_2() {
    let o = tangent(&workspace_root(), &[]);
    assert_exit(&o, 2);
}

#[test]
fn recipes_of_a_file_that_cannot_be_read_is_a_coded_error() {
    let dir = scratch(
        "recipes_unreadable",
        "latin1.py",
        b"# caf\xe9\ndef f(x):\n    return x\n",
    );
    let missing = tangent(&dir, &["recipes", "missing.py"]);
    assert_exit(&missing, 1);
    assert!(
        stderr(&missing).contains("error[T010 io]: cannot read `missing.py`: no such file"),
        "{}",
        stderr(&missing)
    );
    let not_text = tangent(&dir, &["recipes", "latin1.py"]);
    assert_exit(&not_text, 1);
    assert!(
        stderr(&not_text).contains("error[T008 invalid-input]"),
        "{}",
        stderr(&not_text)
    );
}

#[test]
fn an_hvp_error_inside_the_generated_gradient_points_into_the_gradient() {
    let source = b"import numpy as np\nimport tangent\n\n\ndef f(x):\n    y = np.sin(x)\n    with tangent.insert_grad_of(y) as dy:\n        try:\n            dy = dy * 2.0\n        except ValueError:\n            pass\n    return np.sum(y * x)\n";
    let dir = scratch("hvp_error_in_gradient", "surgery.py", source);
    let o = tangent(&dir, &["grad", "surgery.py:f", "--mode", "hvp"]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("in the generated gradient of `f`"), "{err}");
    // `--> gradient `df` of surgery.py:LINE:COL`, LINE counted in the gradient `tangent grad` prints.
    let location = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> gradient `df` of surgery.py:"))
        .expect(&err);
    let line: usize = location.split(':').next().unwrap().parse().unwrap();
    let gradient = stdout(&tangent(&dir, &["grad", "surgery.py:f"]));
    assert!(
        gradient
            .lines()
            .nth(line - 1)
            .is_some_and(|l| l.trim() == "try:"),
        "line {line} of\n{gradient}"
    );
}
