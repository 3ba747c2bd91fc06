//! A name defined twice in a module (issue 13): `Request::definition_line` picks the
//! definition a function object was made from; calls of a name reach its last definition; a
//! gradient module differentiates what each name is bound to and says so.
//!
//! These check which definition's code comes out (its operations, its place in the header);
//! the Python suite (`tests/python/test_redefinition.py`) checks the numbers against finite
//! differences.

#![allow(clippy::result_large_err)]

use tangent::db::{Database, SourceFile, grad_module};
use tangent::{Diagnostic, DiagnosticKind, Generated, Options, Request};

const PATH: &str = "pkg/model.py";

/// `f` twice (lines 5 and 12), a helper around them (lines 1 and 16), a class twice.
const MODULE: &str = "\
def helper(x):
    return x * 3.0


def f(x):
    return helper(x) * 2.0


f1 = f


def f(x):
    return x * x * 5.0


def helper(x):
    return x * x


class Model:
    def loss(self, x):
        return x * 7.0

    def gone(self, x):
        return x * 11.0


class Model:
    def loss(self, x):
        return x * x * 13.0
";

fn request<'a>(source: &'a str, function: &'a str, line: Option<usize>) -> Request<'a> {
    Request {
        module_source: source,
        path: PATH,
        function,
        function_source: None,
        function_first_line: 1,
        definition_line: line,
        context_source: None,
        project_recipes: None,
        object_classes: &[],
    }
}

fn reverse(source: &str, function: &str, line: Option<usize>) -> Result<Generated, Diagnostic> {
    // A method w.r.t. `x`, a function w.r.t. its first parameter.
    let wrt = if function.contains('.') {
        vec![1]
    } else {
        vec![0]
    };
    tangent::generate(
        &request(source, function, line),
        &Options {
            wrt,
            ..Options::default()
        },
    )
}

fn ok(result: Result<Generated, Diagnostic>) -> String {
    match result {
        Ok(g) => g.source,
        Err(d) => panic!("generation failed:\n{}", d.render()),
    }
}

fn line_of(source: &str, needle: &str) -> usize {
    source
        .lines()
        .position(|l| l == needle)
        .unwrap_or_else(|| panic!("no line {needle:?}"))
        + 1
}

#[test]
fn the_line_picks_the_definition_and_none_is_the_last() {
    assert_eq!(line_of(MODULE, "def f(x):"), 5);
    let first = ok(reverse(MODULE, "f", Some(5)));
    assert!(
        first.contains("# Grad of: return helper(x) * 2.0"),
        "{first}"
    );
    assert!(!first.contains("5.0"), "{first}");
    assert!(
        first.contains("this differentiates the definition at model.py:5."),
        "{first}"
    );
    let second = ok(reverse(MODULE, "f", Some(12)));
    assert!(second.contains("# Grad of: return x * x * 5.0"), "{second}");
    assert!(second.contains("`f` is defined more than once in model.py (lines 5, 12): this differentiates the definition at model.py:12."), "{second}");
    // Without a line: the definition the name is bound to, the same code.
    assert_eq!(ok(reverse(MODULE, "f", None)), second);
}

#[test]
fn calls_in_the_first_definition_reach_the_last_helper() {
    let first = ok(reverse(MODULE, "f", Some(5)));
    // The helper's halves are those of `return x * x` (line 16), not of `x * 3.0`.
    assert!(first.contains("def helper_forward(_stack, x):"), "{first}");
    assert!(first.contains("helper = x * x"), "{first}");
    assert!(!first.contains("3.0"), "{first}");
    // Forward mode too.
    let forward = tangent::generate_forward(&request(MODULE, "f", Some(5)), &Options::default())
        .unwrap()
        .source;
    assert!(
        forward.contains("def jvp_helper(x, dx):") && !forward.contains("3.0"),
        "{forward}"
    );
    assert!(
        forward.contains("this differentiates the definition at model.py:5."),
        "{forward}"
    );
}

#[test]
fn forward_mode_and_hvp_pick_the_definition_too() {
    let options = Options::default();
    let first = tangent::generate_forward(&request(MODULE, "f", Some(5)), &options)
        .unwrap()
        .source;
    assert!(
        first.contains("jvp_helper(") && !first.contains("5.0"),
        "{first}"
    );
    let second = tangent::generate_forward(&request(MODULE, "f", Some(12)), &options)
        .unwrap()
        .source;
    assert!(
        second.contains("5.0") && !second.contains("jvp_helper"),
        "{second}"
    );
    let hvp = tangent::generate_hvp(&request(MODULE, "f", Some(5)), &options)
        .unwrap()
        .source;
    assert!(
        hvp.contains("def hvp_f(x, vx):") && hvp.contains("# Grad of: return helper(x) * 2.0"),
        "{hvp}"
    );
    assert!(!hvp.contains("5.0"), "{hvp}");
}

#[test]
fn methods_of_a_class_defined_twice() {
    assert_eq!(line_of(MODULE, "    def loss(self, x):"), 21);
    let first = ok(reverse(MODULE, "Model.loss", Some(21)));
    assert!(first.contains("7.0") && !first.contains("13.0"), "{first}");
    assert!(first.contains("`Model.loss` is defined more than once in model.py (lines 21, 29): this differentiates the definition at model.py:21."), "{first}");
    let gone = ok(reverse(MODULE, "Model.gone", Some(24)));
    assert!(
        gone.contains("11.0") && !gone.contains("more than once"),
        "{gone}"
    );
    let second = ok(reverse(MODULE, "Model.loss", Some(29)));
    assert!(
        second.contains("13.0") && !second.contains("7.0"),
        "{second}"
    );
    assert_eq!(ok(reverse(MODULE, "Model.loss", None)), second);
    // Another method's line is no definition of it.
    let d = reverse(MODULE, "Model.loss", Some(24)).unwrap_err();
    assert_eq!(
        (d.kind, d.line),
        (DiagnosticKind::FunctionNotFound, 24),
        "{}",
        d.render()
    );
    assert!(
        d.message.contains("defined at lines 21, 29 now"),
        "{}",
        d.message
    );
}

#[test]
fn a_name_defined_once_gives_the_same_code_with_its_line() {
    let source = "import numpy as np\n\n\n@tangent.checkpoint\ndef g(x):\n    return np.sin(x) * x\n\n\ndef h(x):\n    return g(x) * 2.0\n";
    for (function, line) in [("g", 4), ("h", 9)] {
        let with_line = ok(reverse(source, function, Some(line)));
        assert_eq!(with_line, ok(reverse(source, function, None)), "{function}");
        assert!(!with_line.contains("more than once"), "{with_line}");
        let options = Options::default();
        let forward = tangent::generate_forward(&request(source, function, Some(line)), &options)
            .unwrap()
            .source;
        assert_eq!(
            forward,
            tangent::generate_forward(&request(source, function, None), &options)
                .unwrap()
                .source
        );
    }
}

#[test]
fn a_decorated_definition_starts_at_its_first_decorator() {
    let source = "\
def deco(f):
    return f


@deco
@deco
def k(x):
    return x * 2.0


@deco
def k(x):
    return x * x * 3.0
";
    let first = ok(reverse(source, "k", Some(5)));
    assert!(first.contains("2.0") && !first.contains("3.0"), "{first}");
    assert!(
        first.contains("(lines 5, 11): this differentiates the definition at model.py:5."),
        "{first}"
    );
    let second = ok(reverse(source, "k", Some(11)));
    assert!(second.contains("3.0"), "{second}");
    // The `def` line of a decorated function is not where Python says it starts.
    let d = reverse(source, "k", Some(7)).unwrap_err();
    assert_eq!(
        (d.kind, d.line, d.column),
        (DiagnosticKind::FunctionNotFound, 7, 1),
        "{}",
        d.render()
    );
}

#[test]
fn a_line_without_the_definition_is_an_error_at_that_line() {
    // The first `f` moved two lines down since the function object was made at line 5.
    let edited = format!("# comment\n# comment\n{MODULE}");
    let d = reverse(&edited, "f", Some(5)).unwrap_err();
    assert_eq!(
        (d.kind, d.line, d.column),
        (DiagnosticKind::FunctionNotFound, 5, 1),
        "{}",
        d.render()
    );
    assert!(
        d.message
            .contains("the source of `f` changed since it was loaded"),
        "{}",
        d.message
    );
    assert!(
        d.message.contains("`f` is defined at lines 7, 14 now"),
        "{}",
        d.message
    );
    // Line 5 is blank now.
    let rendered = d.render();
    assert!(rendered.contains("--> pkg/model.py:5:1"), "{rendered}");
    assert!(rendered.contains("reload the module"), "{rendered}");
    // On a line with text (shown), and past the end of the file.
    let d = reverse(&edited, "f", Some(3)).unwrap_err();
    let rendered = d.render();
    assert!(
        rendered.contains("--> pkg/model.py:3:1") && rendered.contains("def helper(x):"),
        "{rendered}"
    );
    let d = reverse(&edited, "f", Some(400)).unwrap_err();
    assert_eq!((d.kind, d.line), (DiagnosticKind::FunctionNotFound, 0));
    assert!(
        d.message.contains("it started at line 400"),
        "{}",
        d.message
    );
    // Forward mode and HVPs say the same; so does a name the module no longer defines.
    let options = Options::default();
    let d = tangent::generate_forward(&request(&edited, "f", Some(5)), &options).unwrap_err();
    assert_eq!((d.kind, d.line), (DiagnosticKind::FunctionNotFound, 5));
    let d = tangent::generate_hvp(&request(&edited, "f", Some(5)), &options).unwrap_err();
    assert_eq!((d.kind, d.line), (DiagnosticKind::FunctionNotFound, 5));
    let d = reverse("x = 1\n", "f", Some(1)).unwrap_err();
    assert!(
        d.message.contains("defines no `f` at its top level now"),
        "{}",
        d.message
    );
}

#[test]
fn parameter_names_are_those_of_the_definition_at_the_line() {
    let source = "def m(a, b):\n    return a * b\n\n\ndef m(b, a):\n    return a * b\n";
    let names = ["a".to_string()];
    assert_eq!(
        tangent::parameter_positions_at(source, PATH, "m", Some(1), &names).unwrap(),
        vec![0]
    );
    assert_eq!(
        tangent::parameter_positions_at(source, PATH, "m", Some(5), &names).unwrap(),
        vec![1]
    );
    assert_eq!(
        tangent::parameter_positions(source, PATH, "m", &names).unwrap(),
        vec![1]
    );
    let d = tangent::parameter_positions_at(source, PATH, "m", Some(2), &names).unwrap_err();
    assert_eq!(d.kind, DiagnosticKind::FunctionNotFound);
}

#[test]
fn the_first_definition_calling_its_own_name_calls_the_last_one() {
    // At run time `power` in the first body is the second, recursive definition: its
    // derivative is that one's, never the first's own (`dpower`).
    let source = "\
def power(x, n):
    return power(x, n) * 2.0


def power(x, n):
    if n == 0:
        return 1.0
    return x * power(x, n - 1)
";
    let first = ok(reverse(source, "power", Some(1)));
    assert!(first.contains("def dpower_(x, n, bpower=1.0):"), "{first}");
    assert!(first.contains("dpower_(x, n, bpower="), "{first}");
    let body = first.split("def dpower(").nth(1).expect("the entry");
    assert!(
        !body.contains("dpower(x"),
        "the entry never calls itself:\n{first}"
    );
    // The last definition is its own derivative's recursive call.
    let last = ok(reverse(source, "power", Some(5)));
    assert!(!last.contains("dpower_"), "{last}");
}

// --- gradient modules ------------------------------------------------------------------------

#[test]
fn a_gradient_module_differentiates_what_each_name_is_bound_to() {
    let db = Database::default();
    let file = SourceFile::new(&db, PATH.into(), "pkg.model".into(), MODULE.into());
    let out = grad_module(&db, file, true).unwrap();
    let names: Vec<&str> = out.generated.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        ["f", "helper", "Model.loss"],
        "once each; no `Model.gone`: {:?}",
        out.skipped
    );
    assert!(out.skipped.is_empty(), "{:?}", out.skipped);
    let source = &out.source;
    assert_eq!(source.matches("def df(").count(), 1, "{source}");
    let df = source.split("def df(").nth(1).unwrap();
    assert!(df.contains("# Grad of: return x * x * 5.0"), "{source}");
    assert!(
        !source.contains("* 3.0") && !source.contains("7.0") && !source.contains("11.0"),
        "{source}"
    );
    for note in [
        "# `f` is defined more than once in model.py (lines 5, 12): this differentiates the definition at model.py:12, the one the name is bound to.\ndef df(",
        "# `helper` is defined more than once in model.py (lines 1, 16): this differentiates the definition at model.py:16, the one the name is bound to.\ndef dhelper(",
        "# class `Model` is defined more than once in model.py (lines 20, 28): this differentiates `Model.loss` of the definition at model.py:28, the one the name is bound to.\ndef dModel_loss(",
    ] {
        assert!(source.contains(note), "{note}\n{source}");
    }
    let redefined = tangent::ProjectModule::load(MODULE, PATH, "pkg.model", &[]).redefinitions();
    let found: Vec<(&str, &[usize], bool)> = redefined
        .iter()
        .map(|r| (r.name.as_str(), r.lines.as_slice(), r.class))
        .collect();
    assert_eq!(
        found,
        [
            ("helper", &[1, 16][..], false),
            ("f", &[5, 12][..], false),
            ("Model", &[20, 28][..], true)
        ]
    );
}

#[test]
fn one_derivative_of_a_module_is_the_bound_definition_too() {
    let module =
        tangent::derivative_in_project(MODULE, PATH, "pkg.model", &[], "f", &[0], true).unwrap();
    assert!(
        module.source.contains("# Grad of: return x * x * 5.0"),
        "{}",
        module.source
    );
    assert!(module.source.contains("this differentiates the definition at model.py:12, the one the name is bound to.\ndef df("), "{}", module.source);
}

#[test]
fn a_module_without_redefinitions_has_no_notes() {
    let source = MODULE.replace(
        "def f(x):\n    return x * x * 5.0",
        "def f2(x):\n    return x * x * 5.0",
    );
    let source = source.replace(
        "def helper(x):\n    return x * x\n",
        "def helper2(x):\n    return x * x\n",
    );
    let source = source.replace(
        "class Model:\n    def loss(self, x):\n        return x * x * 13.0\n",
        "class Model2:\n    def loss(self, x):\n        return x * x * 13.0\n",
    );
    let db = Database::default();
    let file = SourceFile::new(&db, PATH.into(), "pkg.model".into(), source.clone());
    let out = grad_module(&db, file, true).unwrap();
    assert!(!out.source.contains("more than once"), "{}", out.source);
    assert!(
        tangent::ProjectModule::load(&source, PATH, "pkg.model", &[])
            .redefinitions()
            .is_empty()
    );
    // `Model.gone` is differentiated again now that `Model` is defined once.
    assert!(
        out.generated.iter().any(|(f, _)| f == "Model.gone"),
        "{:?}",
        out.generated
    );
}

#[test]
fn a_method_its_class_defines_twice_is_the_last_one() {
    let source = "class C:\n    def m(self, x):\n        return x * 7.0 * self.a\n\n    def m(self, x):\n        return x * x * self.a\n";
    let db = Database::default();
    let file = SourceFile::new(&db, PATH.into(), "pkg.model".into(), source.into());
    let out = grad_module(&db, file, true).unwrap();
    assert_eq!(out.generated, [("C.m".to_string(), "dC_m".to_string())]);
    assert!(
        out.source.contains("# Grad of: return x * x * self.a\n") && !out.source.contains("7.0"),
        "{}",
        out.source
    );
    // The API picks either by its line.
    assert!(ok(reverse(source, "C.m", Some(2))).contains("7.0"));
    assert!(!ok(reverse(source, "C.m", Some(5))).contains("7.0"));
}

#[test]
fn overload_signatures_and_throwaway_names_are_no_redefinitions() {
    let source = "\
from typing import overload
import typing


@overload
def f(x: int) -> int: ...
@typing.overload
def f(x: float) -> float: ...
def f(x):
    return x * 2.0


def _(x):
    return x


def _(x):
    return x * x
";
    let db = Database::default();
    let file = SourceFile::new(&db, PATH.into(), "pkg.model".into(), source.into());
    let out = grad_module(&db, file, true).unwrap();
    assert!(!out.source.contains("more than once"), "{}", out.source);
    assert!(
        out.source.contains("# Grad of: return x * 2.0"),
        "the implementation:\n{}",
        out.source
    );
    assert!(
        tangent::ProjectModule::load(source, PATH, "pkg.model", &[])
            .redefinitions()
            .is_empty()
    );
}
