//! Snapshot tests of generated source, driven by the fixtures in `tests/fixtures/snapshots/`.
//!
//! Each fixture is a Python module whose leading comment declares one or more cases:
//!
//! ```text
//! # case: NAME function=FUNC [wrt=0,1 | wrt=W1,b1] [optimize=false] [motion=split] [mode=forward|hvp|grad-of-grad|jvp-of-jvp]
//! #       [preserve_result] [seed=required]
//! ```
//!
//! Every case becomes the snapshot `tests/snapshots/NAME.snap`. All cases run even when one
//! fails, and the test lists every failure at the end. To accept changed output, review the
//! `.snap.new` files (`cargo insta review`), or regenerate them all with
//! `INSTA_UPDATE=always cargo test --test snapshots`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tangent::{Motion, Options, Request};

const FIXTURES: &str = "tests/fixtures/snapshots";

#[derive(Debug)]
struct Case {
    name: String,
    fixture: PathBuf,
    function: String,
    wrt: Vec<String>,
    options: Options,
    /// The directive as written, recorded in the snapshot's header.
    directive: String,
    mode: String,
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .collect();
    files.sort();
    files
}

fn parse_cases(path: &Path, source: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for line in source.lines() {
        let Some(rest) = line.strip_prefix("# case:") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let name = words
            .next()
            .unwrap_or_else(|| panic!("{}: `# case:` without a name", path.display()));
        let mut case = Case {
            name: name.to_string(),
            fixture: path.to_path_buf(),
            function: String::new(),
            wrt: Vec::new(),
            options: Options::default(),
            directive: rest.trim().to_string(),
            mode: "reverse".to_string(),
        };
        for word in words {
            match word.split_once('=') {
                Some(("function", f)) => case.function = f.to_string(),
                Some(("wrt", w)) => case.wrt = w.split(',').map(str::to_string).collect(),
                Some(("optimize", v)) => {
                    case.options.optimized = v.parse().expect("optimize=true|false")
                }
                Some(("motion", "split")) => case.options.motion = Motion::Split,
                Some(("motion", "joint")) => case.options.motion = Motion::Joint,
                Some(("seed", "required")) => case.options.seed_required = true,
                Some((
                    "mode",
                    m @ ("reverse" | "forward" | "hvp" | "grad-of-grad" | "jvp-of-jvp"),
                )) => case.mode = m.to_string(),
                None if word == "preserve_result" => case.options.preserve_result = true,
                _ => panic!("{}: unknown case option `{word}`", path.display()),
            }
        }
        assert!(
            !case.function.is_empty(),
            "{}: case `{name}` has no function=",
            path.display()
        );
        cases.push(case);
    }
    assert!(
        !cases.is_empty(),
        "{} declares no `# case:`",
        path.display()
    );
    cases
}

fn all_cases() -> Vec<Case> {
    let cases: Vec<Case> = fixtures()
        .iter()
        .flat_map(|p| parse_cases(p, &std::fs::read_to_string(p).unwrap()))
        .collect();
    let mut seen = BTreeSet::new();
    for c in &cases {
        assert!(
            seen.insert(c.name.clone()),
            "two cases are named `{}`",
            c.name
        );
    }
    cases
}

fn generate(case: &Case) -> String {
    let source = std::fs::read_to_string(&case.fixture).unwrap();
    let file_name = case
        .fixture
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let path = format!("{FIXTURES}/{file_name}");
    let mut options = case.options.clone();
    if !case.wrt.is_empty() {
        options.wrt = if case.wrt.iter().all(|w| w.parse::<usize>().is_ok()) {
            case.wrt.iter().map(|w| w.parse().unwrap()).collect()
        } else {
            tangent::parameter_positions(&source, &path, &case.function, &case.wrt)
                .unwrap_or_else(|d| panic!("{}", d.render()))
        };
    }
    let request = Request {
        module_source: &source,
        path: &path,
        function: &case.function,
        function_source: None,
        function_first_line: 1,
        definition_line: None,
        context_source: None,
        project_recipes: None,
        object_classes: &[],
    };
    let generated = match case.mode.as_str() {
        "forward" => tangent::generate_forward(&request, &options),
        "hvp" => tangent::generate_hvp(&request, &options),
        "grad-of-grad" => twice(&request, &options, tangent::generate),
        "jvp-of-jvp" => twice(&request, &options, tangent::generate_forward),
        _ => tangent::generate(&request, &options),
    }
    .unwrap_or_else(|d| panic!("case `{}` failed to generate:\n{}", case.name, d.render()));
    if let Err(e) = ruff_python_parser::parse_module(&generated.source) {
        panic!(
            "case `{}`: generated code does not parse ({e}):\n{}",
            case.name, generated.source
        );
    }
    assert!(
        generated
            .source
            .contains(&format!("def {}(", generated.entry)),
        "case `{}`: entry `{}` is not defined",
        case.name,
        generated.entry
    );
    // The engine version is in the header; keep snapshots stable across version bumps.
    generated.source.replacen(
        concat!("Tangent ", env!("CARGO_PKG_VERSION")),
        "Tangent <version>",
        1,
    )
}

/// The derivative of the derivative, as `tangent.grad(tangent.grad(f))` builds it: the
/// generated module is differentiated among the user's module.
fn twice(
    request: &Request<'_>,
    options: &tangent::Options,
    derive: fn(&Request<'_>, &tangent::Options) -> Result<tangent::Generated, tangent::Diagnostic>,
) -> Result<tangent::Generated, tangent::Diagnostic> {
    let first = derive(request, options)?;
    let again = Request {
        module_source: &first.source,
        path: request.path,
        function: &first.entry,
        function_source: None,
        function_first_line: 1,
        definition_line: None,
        context_source: Some(request.module_source),
        project_recipes: None,
        object_classes: &[],
    };
    derive(&again, options)
}

#[test]
fn generated_code_snapshots() {
    let cases = all_cases();
    let mut failures = Vec::new();
    for case in &cases {
        let result = std::panic::catch_unwind(|| {
            let output = generate(case);
            let fixture = case.fixture.file_name().unwrap().to_string_lossy();
            insta::with_settings!({
                description => format!("{FIXTURES}/{fixture}: {}", case.directive),
                omit_expression => true,
                prepend_module_to_snapshot => false,
            }, {
                insta::assert_snapshot!(case.name.as_str(), output);
            });
        });
        if result.is_err() {
            failures.push(case.name.clone());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} snapshot cases failed: {failures:?}",
        failures.len(),
        cases.len()
    );
}

/// A snapshot without a case is stale (a renamed or deleted case): delete it.
#[test]
fn no_orphan_snapshots() {
    let names: BTreeSet<String> = all_cases().into_iter().map(|c| c.name).collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut orphans = Vec::new();
    for e in entries {
        let path = e.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file
            .strip_suffix(".snap")
            .is_some_and(|stem| !names.contains(stem))
        {
            orphans.push(file);
        }
    }
    orphans.sort();
    assert!(
        orphans.is_empty(),
        "snapshots with no case in {FIXTURES}: {orphans:?}"
    );
}

/// Generation is a pure function of its input: the same case twice gives the same bytes.
#[test]
fn snapshot_cases_are_deterministic() {
    for case in all_cases() {
        assert_eq!(generate(&case), generate(&case), "case `{}`", case.name);
    }
}
