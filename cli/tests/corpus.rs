//! The corpus of bad inputs (`tests/fixtures/bad_inputs/`, described by its `manifest.txt`,
//! plus huge and deeply nested inputs generated here): every entry gives its documented error
//! (docs/errors.md) with exit code 1, its location and a caret, a help line, no panic and no
//! name from inside the engine. And every code is documented, and produced by the corpus.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn corpus_dir() -> PathBuf {
    workspace_root().join("tests/fixtures/bad_inputs")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    /// `build` and `check` fail with the same code.
    Fail,
    /// `build -v` succeeds and lists the function as skipped.
    Skip,
    No,
}

#[derive(Debug, Clone)]
enum Contents {
    /// The file of the corpus directory.
    Fixture,
    Bytes(Vec<u8>),
    Directory,
    Missing,
}

#[derive(Debug, Clone)]
struct Entry {
    file: String,
    function: String,
    code: String,
    /// Line and column of the caret; `None`: a diagnostic without a place.
    location: Option<(usize, usize)>,
    build: Build,
    args: Vec<String>,
    contents: Contents,
}

impl Entry {
    fn generated(
        file: &str,
        code: &str,
        location: Option<(usize, usize)>,
        build: Build,
        contents: Contents,
    ) -> Entry {
        Entry {
            file: file.into(),
            function: "f".into(),
            code: code.into(),
            location,
            build,
            args: vec![],
            contents,
        }
    }

    fn label(&self) -> String {
        format!("{}:{} {}", self.file, self.function, self.args.join(" "))
    }
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(corpus_dir().join("manifest.txt")).unwrap();
    let mut entries = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (fields, args) = line.split_once(" -- ").unwrap_or((line, ""));
        let f: Vec<&str> = fields.split_whitespace().collect();
        assert_eq!(f.len(), 5, "manifest line: {line}");
        let location = (f[3] != "-").then(|| {
            let (l, c) = f[3].split_once(':').expect("LINE:COL");
            (l.parse().unwrap(), c.parse().unwrap())
        });
        let build = match f[4] {
            "fail" => Build::Fail,
            "skip" => Build::Skip,
            "-" => Build::No,
            other => panic!("BUILD is fail, skip or -, not {other}"),
        };
        entries.push(Entry {
            file: f[0].into(),
            function: f[1].into(),
            code: f[2].into(),
            location,
            build,
            args: args.split_whitespace().map(String::from).collect(),
            contents: Contents::Fixture,
        });
    }
    entries
}

/// Inputs too large to keep in the repository, written at run time.
fn generated() -> Vec<Entry> {
    let function = |body: &str| format!("def f(x):\n    return {body}\n").into_bytes();
    let nested_ifs = |n: usize, indent: &str| {
        let mut s = String::from("def f(x):\n");
        for i in 1..=n {
            s.push_str(&format!("{}if x > 0.0:\n", indent.repeat(i)));
        }
        s.push_str(&format!(
            "{}x = x * 2.0\n{indent}return x\n",
            indent.repeat(n + 1)
        ));
        s.into_bytes()
    };
    let mut elifs = String::from("def f(x):\n    if x < 0.0:\n        x = x * 2.0\n");
    for i in 0..1100 {
        elifs.push_str(&format!("    elif x < {i}.5:\n        x = x * 3.0\n"));
    }
    elifs.push_str("    return x\n");
    let mut huge = Vec::with_capacity(50 << 20);
    let mut i = 0;
    while huge.len() < 50 << 20 {
        huge.extend_from_slice(
            format!("def f{i}(x):\n    return x * {i}.5 + x * x\n\n\n").as_bytes(),
        );
        i += 1;
    }
    huge.extend_from_slice(b"def f(x):\n    return x\n");
    use Build::*;
    use Contents::Bytes;
    vec![
        // 100,000 nested parentheses: the 201st is too many (`    return ` is 11 columns).
        Entry::generated(
            "deep_parens.py",
            "T009",
            Some((2, 212)),
            Fail,
            Bytes(function(&format!(
                "{}x{}",
                "(".repeat(100_000),
                ")".repeat(100_000)
            ))),
        ),
        Entry::generated(
            "deep_lists.py",
            "T009",
            Some((2, 212)),
            No,
            Bytes(function(&format!(
                "{}x{}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ))),
        ),
        Entry::generated(
            "deep_calls.py",
            "T009",
            Some((2, 12 + 4 * 200 + 3)),
            No,
            Bytes(function(&format!(
                "{}x{}",
                "abs(".repeat(1000),
                ")".repeat(1000)
            ))),
        ),
        Entry::generated(
            "deep_fstring.py",
            "T009",
            Some((2, 12 + 3 * 200 + 2)),
            No,
            Bytes(function(&format!(
                "{}x{}",
                "f'{".repeat(300),
                "}'".repeat(300)
            ))),
        ),
        // 200,000 terms: the 2,001st `+` (at column 4k + 10 for the k-th) is too many.
        Entry::generated(
            "long_sum.py",
            "T009",
            Some((2, 4 * 2001 + 10)),
            Fail,
            Bytes(function(&vec!["x"; 200_000].join(" + "))),
        ),
        Entry::generated(
            "long_unary.py",
            "T009",
            Some((2, 12 + 2000)),
            No,
            Bytes(function(&format!("{}x", "-".repeat(100_000)))),
        ),
        Entry::generated(
            "long_lambda.py",
            "T009",
            Some((2, 12 + 8 * 2000)),
            No,
            Bytes(function(&format!("{}x", "lambda: ".repeat(100_000)))),
        ),
        // 1,100 terms: within the chain limit, 1,100 levels of nesting (the limit is 1,000).
        Entry::generated(
            "nested_sum.py",
            "T009",
            Some((2, 12)),
            Fail,
            Bytes(function(&vec!["x"; 1100].join(" + "))),
        ),
        Entry::generated(
            "nested_and.py",
            "T009",
            Some((2, 12 + 6 * 997)),
            No,
            Bytes(function(&vec!["x"; 1100].join(" and "))),
        ),
        Entry::generated(
            "nested_elif.py",
            "T009",
            Some((1995, 13)),
            Fail,
            Bytes(elifs.into_bytes()),
        ),
        // 150 nested blocks: the 101st level of indentation (line 102) is too many.
        Entry::generated(
            "indent_150.py",
            "T009",
            Some((102, 4 * 101 + 1)),
            Fail,
            Bytes(nested_ifs(150, "    ")),
        ),
        // 5,000 nested blocks cannot be written in less than 12.5 MB: too large.
        Entry::generated(
            "nested_ifs_5000.py",
            "T009",
            None,
            Fail,
            Bytes(nested_ifs(5000, " ")),
        ),
        Entry::generated("huge_50mb.py", "T009", None, Fail, Bytes(huge)),
        Entry::generated("missing.py", "T010", None, Fail, Contents::Missing),
        Entry::generated("directory.py", "T010", None, No, Contents::Directory),
    ]
}

fn all_entries() -> Vec<Entry> {
    let mut v = manifest();
    v.extend(generated());
    v
}

/// Writes `entry`'s file into `dir`.
fn place(entry: &Entry, dir: &Path) {
    let path = dir.join(&entry.file);
    match &entry.contents {
        Contents::Fixture => {
            std::fs::copy(corpus_dir().join(&entry.file), &path).unwrap();
        }
        Contents::Bytes(b) => std::fs::write(&path, b).unwrap(),
        Contents::Directory => std::fs::create_dir_all(&path).unwrap(),
        Contents::Missing => {}
    }
}

/// Names the user never wrote: temporaries and stacks of generated code, Rust types.
fn internal_names(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    for word in line.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let temporary = ["_t", "_bt", "_b", "_stack", "_bstack", "_tmp"]
            .iter()
            .any(|p| {
                word.strip_prefix(p).is_some_and(|rest| {
                    rest.chars().all(|c| c.is_ascii_digit())
                        && (!rest.is_empty() || p.ends_with("stack"))
                })
            });
        if temporary {
            found.push(word.to_string());
        }
    }
    for rust in [
        "::",
        "Vec<",
        "Option<",
        "Box<",
        "&str",
        "Some(",
        "Diagnostic",
        "StmtFunctionDef",
        "ExprCall",
    ] {
        if line.contains(rust) {
            found.push(rust.to_string());
        }
    }
    found
}

/// What is wrong with one run's output (empty: nothing).
fn problems(
    entry: &Entry,
    what: &str,
    o: &Output,
    expected_exit: i32,
    expect_code: bool,
) -> Vec<String> {
    let err = stderr(o);
    let out = stdout(o);
    let all = format!("{out}{err}");
    let mut p = Vec::new();
    let mut fail = |m: String| {
        p.push(format!(
            "{} [{what}]: {m}\n--- stdout\n{out}--- stderr\n{err}",
            entry.label()
        ))
    };
    if o.status.code() != Some(expected_exit) {
        fail(format!(
            "exit {:?}, expected {expected_exit}",
            o.status.code()
        ));
    }
    for panic in ["panicked", "RUST_BACKTRACE", "thread '", "stack overflow"] {
        if all.contains(panic) {
            fail(format!("the output mentions `{panic}`"));
        }
    }
    if !expect_code {
        return p;
    }
    let kind = tangent::DiagnosticKind::from_name(&entry.code).expect("a documented code");
    let header = format!("error[{} {}]: ", entry.code, kind.as_str());
    if !err.contains(&header) {
        fail(format!("no `{header}`"));
    }
    // The message and help lines (not the source lines shown) name no internals.
    let prose = err.lines().filter(|l| {
        let t = l.trim_start();
        !(t.starts_with('|')
            || t.split_once(" |")
                .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit())))
    });
    for line in prose {
        let names = internal_names(line);
        if !names.is_empty() {
            fail(format!("internal names {names:?} in `{line}`"));
        }
    }
    if what.starts_with("grad") {
        if !err.contains("\nhelp: ") {
            fail("no help line".into());
        }
        if !out.is_empty() {
            fail("something on stdout".into());
        }
        match entry.location {
            Some((line, column)) => {
                let at = format!("--> {}:{line}:{column}\n", entry.file);
                if !err.contains(&at) {
                    fail(format!("no `{}`", at.trim_end()));
                }
                if !err.contains(&format!("\n{line} | "))
                    || !err
                        .lines()
                        .any(|l| l.trim_start().starts_with('|') && l.contains('^'))
                {
                    fail("no source line with a caret".into());
                }
            }
            None => {
                if kind != tangent::DiagnosticKind::Io
                    && !err.contains(&format!("--> {}\n", entry.file))
                {
                    fail(format!("no `--> {}`", entry.file));
                }
                if err.contains('^') {
                    fail("a caret without a location".into());
                }
            }
        }
    } else if let Some((line, _)) = entry.location
        && !err.contains(&format!("{}:{line}:", entry.file))
    {
        fail(format!("no `{}:{line}:`", entry.file));
    }
    p
}

fn check_entry(entry: &Entry, index: usize) -> Vec<String> {
    let p = Project::with_files(&format!("corpus-{index}"), &[]);
    place(entry, &p.root);
    let target = format!("{}:{}", entry.file, entry.function);
    let mut args = vec!["grad", target.as_str()];
    args.extend(entry.args.iter().map(String::as_str));
    let mut found = problems(entry, "grad", &p.run(&args), 1, true);
    match entry.build {
        Build::Fail => {
            found.extend(problems(
                entry,
                "build",
                &p.run(&["build", &entry.file]),
                1,
                true,
            ));
            found.extend(problems(
                entry,
                "check",
                &p.run(&["check", &entry.file]),
                1,
                true,
            ));
        }
        Build::Skip => {
            let o = p.run(&["build", "-v", &entry.file]);
            found.extend(problems(entry, "build -v", &o, 0, false));
            let kind = tangent::DiagnosticKind::from_name(&entry.code).unwrap();
            let skipped = format!("skipped {}:{}: ", entry.file, entry.function);
            let listed = stdout(&o)
                .lines()
                .any(|l| l.starts_with(&skipped) && l.contains(&format!("[{}]", kind.as_str())));
            if !listed {
                found.push(format!(
                    "{} [build -v]: `{skipped}... [{}]` not listed\n{}",
                    entry.label(),
                    kind.as_str(),
                    stdout(&o)
                ));
            }
        }
        Build::No => {}
    }
    found
}

#[test]
fn every_bad_input_gives_its_documented_error() {
    let entries = all_entries();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(entry) = entries.get(i) else { break };
                    let found = check_entry(entry, i);
                    failures.lock().unwrap().extend(found);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} problems:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The codes and kinds documented in docs/errors.md: its `## T001 syntax` headings.
fn documented() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(workspace_root().join("docs/errors.md")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("## T"))
        .map(|rest| {
            let (code, kind) = rest.split_once(' ').expect("`## T001 kind`");
            (format!("T{code}"), kind.trim().to_string())
        })
        .collect()
}

#[test]
fn every_code_is_documented_and_produced_by_the_corpus() {
    let engine: BTreeSet<(String, String)> = tangent::DiagnosticKind::ALL
        .iter()
        .map(|k| (k.code().to_string(), k.as_str().to_string()))
        .collect();
    // Raised by the Python API only (a direction checked before generated code runs).
    let python_only: BTreeSet<(String, String)> =
        [("T011".to_string(), "invalid-direction".to_string())].into();
    assert_eq!(
        documented()
            .difference(&python_only)
            .cloned()
            .collect::<BTreeSet<_>>(),
        engine,
        "docs/errors.md documents exactly the engine's codes and kinds (and the API's own)"
    );
    let table = std::fs::read_to_string(workspace_root().join("docs/errors.md")).unwrap();
    for (code, kind) in &engine {
        let row = format!("| [{code}](#{}-{kind}) | `{kind}` |", code.to_lowercase());
        assert!(table.contains(&row), "docs/errors.md: no table row `{row}`");
    }
    let produced: BTreeSet<String> = all_entries().into_iter().map(|e| e.code).collect();
    for (code, kind) in &engine {
        if kind != "internal" {
            assert!(
                produced.contains(code),
                "no corpus entry produces {code} {kind}"
            );
        }
    }
    for code in &produced {
        assert!(
            engine.iter().any(|(c, _)| c == code),
            "the corpus expects {code}, which is not a code"
        );
    }
    // Every file of the corpus directory is in the manifest.
    let listed: BTreeSet<String> = manifest().into_iter().map(|e| e.file).collect();
    for file in std::fs::read_dir(corpus_dir()).unwrap() {
        let name = file.unwrap().file_name().to_string_lossy().into_owned();
        if name != "manifest.txt" {
            assert!(
                listed.contains(&name),
                "{name} is not in tests/fixtures/bad_inputs/manifest.txt"
            );
        }
    }
}
