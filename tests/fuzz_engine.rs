//! Robustness fuzzing of the engine: on any input it returns `Ok` or a `Diagnostic`, never
//! panics or hangs, and the code it returns is valid Python.
//!
//! Three sources of input, each a proptest strategy (shrinking gives minimal failing inputs):
//! - `programs`: random modules in the supported subset (several functions calling each
//!   other; arithmetic, numpy/math calls with and without recipes, if/elif/else, for and while
//!   loops, break/continue, early returns, subscript reads and writes, overwrites, tuples,
//!   lists and `append`, user recipes, `insert_grad_of`), rendered as Python text;
//! - `noise`: arbitrary bytes (as lossy UTF-8) and soups of Python tokens;
//! - `mutants`: the repository's own Python files (fixtures, examples, benches, recipes, the
//!   Python suite) truncated and mutated (byte flips, deleted, duplicated and swapped lines,
//!   re-indented lines, inserted tokens).
//!
//! Every case asks for derivatives of the functions it finds in several ways (reverse mode
//! joint and split, optimized or not, `preserve_result`, required seeds, forward mode,
//! Hessian-vector products, the derivative of the derivative, whole gradient modules through
//! the incremental database, the recipe listing, parameter positions, nested functions given
//! by their own source), each in a thread with a time limit. Diagnostics are rendered too.
//!
//! Budget (environment variables):
//! - `TANGENT_FUZZ_CASES`: cases per strategy and round (default 200 programs, 500 texts of
//!   noise, 500 mutated files, plus every function of the corpus as it is: about 25 CPU-seconds,
//!   15 s on two idle cores, debug build);
//! - `TANGENT_FUZZ_SECONDS`: keep running rounds with new seeds until this many seconds have
//!   passed (default: one round);
//! - `TANGENT_FUZZ_SEED`: the seed of the first round (default fixed, so CI runs the same
//!   cases every time; `random` for a fresh one). Failures print the seed and the minimized
//!   input; minimized failures are kept as explicit tests in `regressions` below.
//! - `TANGENT_FUZZ_CASE_TIMEOUT_MS`: time limit of one case (default 20000, debug builds).
//!
//! `./scripts/fuzz.sh` runs this file (release build) and the Python differential fuzzer for
//! longer.

// `Diagnostic` is the engine's error type as it is.
#![allow(clippy::result_large_err)]

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use tangent::{Diagnostic, Motion, Options, Request};

// ------------------------------------------------------------------------------------ budget

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn cases(default: u32) -> u32 {
    env_number("TANGENT_FUZZ_CASES").map_or(default, |n| n as u32)
}

fn case_timeout() -> Duration {
    Duration::from_millis(env_number("TANGENT_FUZZ_CASE_TIMEOUT_MS").unwrap_or(20_000))
}

/// The seed of the first round: `TANGENT_FUZZ_SEED` (a number or `random`), else fixed.
fn first_seed(salt: u64) -> u64 {
    match std::env::var("TANGENT_FUZZ_SEED")
        .ok()
        .as_deref()
        .map(str::trim)
    {
        Some("random") => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32) ^ salt
        }
        Some(s) if !s.is_empty() => {
            s.parse::<u64>().unwrap_or_else(|_| {
                panic!("TANGENT_FUZZ_SEED must be a number or `random`, not {s:?}")
            }) ^ salt
        }
        _ => 0x7a6e_6765_6e74 ^ salt,
    }
}

/// Runs `test` on values of `strategy`: one round of `default_cases` cases, or rounds with new
/// seeds until `TANGENT_FUZZ_SECONDS` have passed. A failure panics with the seed and the
/// minimized input, rendered by `show`.
fn fuzz<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    show: impl Fn(&S::Value) -> String,
    test: impl Fn(&S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let start = Instant::now();
    let deadline = env_number("TANGENT_FUZZ_SECONDS").map(|s| start + Duration::from_secs(s));
    let salt = name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)));
    let mut seed = first_seed(salt);
    let mut total = 0u64;
    let mine = std::sync::Arc::new(Counters::default());
    COUNTERS.with(|c| *c.borrow_mut() = mine.clone());
    loop {
        let config = Config {
            cases: cases(default_cases),
            rng_seed: RngSeed::Fixed(seed),
            failure_persistence: None,
            max_shrink_iters: 2_000,
            max_shrink_time: 120_000,
            max_global_rejects: 100_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        match runner.run(&strategy, |v| test(&v)) {
            Ok(()) => {}
            Err(TestError::Fail(reason, value)) => panic!(
                "fuzz_engine/{name}: failure (seed {seed}; rerun with TANGENT_FUZZ_SEED={} and this test only):\n{reason}\n--- minimized input ---\n{}\n--- as a value ---\n{value:?}",
                seed ^ salt,
                show(&value)
            ),
            Err(TestError::Abort(reason)) => {
                panic!("fuzz_engine/{name}: aborted (seed {seed}): {reason}")
            }
        }
        total += u64::from(cases(default_cases));
        match deadline {
            Some(d) if Instant::now() < d => {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407)
            }
            _ => break,
        }
    }
    eprintln!(
        "fuzz_engine/{name}: {total} cases in {:.1} s; engine results: {}",
        start.elapsed().as_secs_f64(),
        outcome_summary(&mine)
    );
}

// ------------------------------------------------------------------- running the engine

/// One way of asking the engine about a function.
#[derive(Debug, Clone)]
struct Variant {
    mode: Mode,
    optimized: bool,
    preserve_result: bool,
    split: bool,
    seed_required: bool,
    /// Parameter positions, taken modulo the number of parameters (+1, so some are invalid).
    wrt: Vec<u8>,
    /// Also differentiate the generated derivative again (as `grad(grad(f))` does).
    again: bool,
    /// Give the function by its own source, as the Python API does for nested functions.
    own_source: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Reverse,
    Forward,
    Hvp,
    /// `tangent build`: the gradient module of the whole module (salsa database).
    Module,
    /// `tangent recipes FILE` and `--wrt NAME`.
    Listing,
}

fn variant() -> impl Strategy<Value = Variant> {
    let mode = prop_oneof![
        6 => Just(Mode::Reverse),
        3 => Just(Mode::Forward),
        1 => Just(Mode::Hvp),
        1 => Just(Mode::Module),
        1 => Just(Mode::Listing),
    ];
    let wrt =
        prop_oneof![19 => proptest::collection::vec(any::<u8>(), 1..3), 1 => Just(Vec::new())];
    (mode, any::<[bool; 6]>(), wrt).prop_map(|(mode, b, wrt)| Variant {
        mode,
        optimized: b[0],
        preserve_result: b[1] && b[2],
        split: b[2] && !b[3],
        seed_required: b[3],
        wrt,
        again: b[4] && b[5],
        own_source: !b[4] && b[5] && b[0],
    })
}

/// A function to ask for: its name, its parameter count (when known) and its own text (dedented,
/// with its first line) for `Request::function_source`.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    params: usize,
    own: Option<(String, usize)>,
    /// Defined inside another function: asked for by its own source, as the Python API does.
    nested: bool,
}

const PATH: &str = "fuzz/model.py";

fn check_python(what: &str, source: &str, input: &str) -> Result<(), String> {
    match ruff_python_parser::parse_module(source) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "{what}: the generated code does not parse ({e}):\n{source}\n--- from ---\n{input}"
        )),
    }
}

/// A diagnostic must render (it is what users see), and not be an internal error: the engine
/// reports as `internal` what it generated and could not print (invalid Python).
fn check_diagnostic(d: &Diagnostic) -> Result<(), String> {
    if d.kind == tangent::DiagnosticKind::Internal {
        return Err(format!("internal error:\n{}", d.render()));
    }
    let text = d.render();
    if text.is_empty() || !text.contains(d.kind.as_str()) {
        return Err(format!("diagnostic renders badly: {text:?}"));
    }
    Ok(())
}

/// Runs `variant` on `target` in `source`; `Err` describes a broken property.
fn exercise(source: &str, target: &Target, variant: &Variant) -> Result<(), String> {
    let nparams = target.params.max(1);
    // Mostly valid positions; sometimes one past the parameters, a far one (255), or none.
    let wrt: Vec<usize> = variant
        .wrt
        .iter()
        .map(|&w| match w {
            255 => 7,
            200.. => usize::from(w) % (nparams + 1),
            _ => usize::from(w) % nparams,
        })
        .collect();
    let options = Options {
        wrt,
        optimized: variant.optimized,
        preserve_result: variant.preserve_result,
        motion: if variant.split {
            Motion::Split
        } else {
            Motion::Joint
        },
        seed_required: variant.seed_required,
    };
    let (function_source, first_line) = match (&target.own, variant.own_source || target.nested) {
        (Some((text, line)), true) => (Some(text.as_str()), *line),
        _ => (None, 1),
    };
    let request = Request {
        module_source: source,
        path: PATH,
        function: &target.name,
        function_source,
        function_first_line: first_line,
        definition_line: None,
        context_source: None,
        project_recipes: None,
        object_classes: &[],
    };
    let what = format!("{:?} of `{}` with {options:?}", variant.mode, target.name);
    let result = match variant.mode {
        Mode::Reverse => tangent::generate(&request, &options),
        Mode::Forward => tangent::generate_forward(&request, &options),
        Mode::Hvp => tangent::generate_hvp(&request, &options),
        Mode::Module => {
            match tangent::grad_module(source, PATH, variant.optimized) {
                Ok(m) => {
                    check_python(&what, &m.source, source)?;
                    for (_, d) in &m.skipped {
                        check_diagnostic(d)?;
                    }
                }
                Err(d) => check_diagnostic(&d)?,
            }
            return Ok(());
        }
        Mode::Listing => {
            if let Err(d) = tangent::recipe_listing(Some((source, PATH)), None) {
                check_diagnostic(&d)?;
            }
            let names = ["x".to_string(), "n".to_string(), target.name.clone()];
            if let Err(d) = tangent::parameter_positions(
                source,
                PATH,
                &target.name,
                &names[..1 + variant.wrt.len()],
            ) {
                check_diagnostic(&d)?;
            }
            return Ok(());
        }
    };
    let generated = match result {
        Ok(g) => {
            count(Ok(()));
            g
        }
        Err(d) => {
            count(Err(&d));
            return check_diagnostic(&d);
        }
    };
    check_python(&what, &generated.source, source)?;
    if !generated
        .source
        .contains(&format!("def {}(", generated.entry))
    {
        return Err(format!(
            "{what}: the entry `{}` is not defined in\n{}",
            generated.entry, generated.source
        ));
    }
    // The same input gives the same bytes.
    if variant.again || variant.seed_required {
        let repeat = match variant.mode {
            Mode::Reverse => tangent::generate(&request, &options),
            Mode::Forward => tangent::generate_forward(&request, &options),
            _ => tangent::generate_hvp(&request, &options),
        };
        if repeat.as_ref().map(|g| &g.source) != Ok(&generated.source) {
            return Err(format!("{what}: a second run gave different output"));
        }
    }
    if variant.again && !variant.split {
        // Differentiate the derivative, among the user's module, as the Python API does.
        let request = Request {
            module_source: &generated.source,
            path: "fuzz/generated.py",
            function: &generated.entry,
            function_source: None,
            function_first_line: 1,
            definition_line: None,
            context_source: Some(source),
            project_recipes: None,
            object_classes: &[],
        };
        let options = Options {
            wrt: vec![0],
            preserve_result: false,
            motion: Motion::Joint,
            ..options
        };
        for forward in [false, true] {
            let again = if forward {
                tangent::generate_forward(&request, &options)
            } else {
                tangent::generate(&request, &options)
            };
            match again {
                Ok(g) => check_python(
                    &format!(
                        "{what}, then {} again",
                        if forward { "forward" } else { "reverse" }
                    ),
                    &g.source,
                    &generated.source,
                )?,
                Err(d) => check_diagnostic(&d)?,
            }
        }
    }
    Ok(())
}

static LEAKED: AtomicUsize = AtomicUsize::new(0);

/// Known engine bugs that live in files this test does not own: a panic whose location and
/// message match is counted and reported but does not fail the run, unless
/// `TANGENT_FUZZ_STRICT=1`. Each entry is (file, message fragment, description); give each an
/// ignored test in `regressions` and remove both when the bug is fixed. Empty now: the one
/// entry it had (a syntax error at the end of a text ending in a multi-byte character panicked
/// in `Diagnostic::at`) was fixed in src/parse.rs and src/diagnostics.rs
/// (`regressions::syntax_error_after_non_ascii_at_end`).
const KNOWN_PANICS: &[(&str, &str, &str)] = &[];

thread_local! {
    /// Where the last panic of this thread happened.
    static PANIC_AT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Fuzz threads (named `fuzz-case`) record where they panic instead of printing a backtrace
/// for every shrinking step; other threads keep the default hook.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("fuzz-case") {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                default(info);
            }
        }));
    });
}

fn known_panic(location: &str, message: &str) -> Option<&'static str> {
    if std::env::var("TANGENT_FUZZ_STRICT").is_ok_and(|v| v == "1") {
        return None;
    }
    KNOWN_PANICS
        .iter()
        .find(|(file, text, _)| location.contains(file) && message.contains(text))
        .map(|(_, _, why)| *why)
}

/// What a fuzzer's cases gave: derivatives generated, then diagnostics by kind (in
/// `DiagnosticKind` order), known bugs hit, and (with `TANGENT_FUZZ_VERBOSE=1`) diagnostic
/// messages by count, for the summary each fuzzer prints: a fuzzer whose inputs all fail early
/// tests little.
#[derive(Default)]
struct Counters {
    /// By outcome: "ok" or the diagnostic's kind.
    outcomes: std::sync::Mutex<std::collections::BTreeMap<&'static str, usize>>,
    known: AtomicUsize,
    messages: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
}

thread_local! {
    /// The counters of the fuzzer this thread works for.
    static COUNTERS: std::cell::RefCell<std::sync::Arc<Counters>> = std::cell::RefCell::new(std::sync::Arc::default());
}

fn counters() -> std::sync::Arc<Counters> {
    COUNTERS.with(|c| c.borrow().clone())
}

fn count(outcome: Result<(), &Diagnostic>) {
    let c = counters();
    let key = outcome.map_or_else(|d| d.kind.as_str(), |()| "ok");
    *c.outcomes.lock().unwrap().entry(key).or_default() += 1;
    if let (Err(d), true) = (outcome, std::env::var_os("TANGENT_FUZZ_VERBOSE").is_some()) {
        let key: String = format!("{}: {}", d.kind.as_str(), d.message)
            .chars()
            .take(90)
            .collect();
        *c.messages.lock().unwrap().entry(key).or_default() += 1;
    }
}

fn outcome_summary(c: &Counters) -> String {
    let mut messages: Vec<(String, usize)> = std::mem::take(&mut *c.messages.lock().unwrap())
        .into_iter()
        .collect();
    messages.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (m, n) in messages.iter().take(40) {
        eprintln!("  {n:5} {m}");
    }
    let outcomes = c.outcomes.lock().unwrap();
    let mut out = format!("ok {}", outcomes.get("ok").unwrap_or(&0));
    for (kind, n) in outcomes.iter().filter(|(k, _)| **k != "ok") {
        let _ = write!(out, ", {kind} {n}");
    }
    let known = c.known.load(Ordering::Relaxed);
    if known > 0 {
        let _ = write!(
            out,
            "; KNOWN BUGS hit {known} times (TANGENT_FUZZ_STRICT=1 fails on them): {}",
            KNOWN_PANICS
                .iter()
                .map(|k| k.2)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    out
}

/// Runs every variant on every target in a thread of its own, with a time limit for the whole
/// case. A case that panics or runs out of time fails.
fn run_case(source: &str, targets: &[Target], variants: &[Variant]) -> Result<(), TestCaseError> {
    let source = source.to_string();
    let jobs: Vec<(Target, Variant)> = targets
        .iter()
        .cloned()
        .zip(variants.iter().cloned().cycle())
        .collect();
    let jobs = if jobs.is_empty() {
        vec![(
            Target {
                name: "f".into(),
                params: 1,
                own: None,
                nested: false,
            },
            variants.first().cloned().unwrap_or_else(default_variant),
        )]
    } else {
        jobs
    };
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let shown = source.clone();
    install_panic_hook();
    let mine = counters();
    std::thread::Builder::new()
        .name("fuzz-case".into())
        // The stack the front ends give the engine (`parse::ENGINE_STACK_BYTES`, 64 MiB).
        .stack_size(64 << 20)
        .spawn(move || {
            COUNTERS.with(|c| *c.borrow_mut() = mine);
            let mut outcome = Ok(());
            for (target, variant) in &jobs {
                let result = catch_unwind(AssertUnwindSafe(|| exercise(&source, target, variant)));
                outcome = match result {
                    Ok(Ok(())) => continue,
                    Ok(Err(broken)) => Err(broken),
                    Err(panic) => {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        let at = PANIC_AT.with(|p| p.borrow().clone());
                        if known_panic(&at, &message).is_some() {
                            counters().known.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let short: String = message.chars().take(300).collect();
                        Err(format!(
                            "the engine panicked at {at} on {variant:?} of `{}`: {short}",
                            target.name
                        ))
                    }
                };
                break;
            }
            let _ = tx.send(outcome);
        })
        .expect("spawn a fuzz thread");
    match rx.recv_timeout(case_timeout()) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(TestCaseError::fail(message)),
        Err(_) => {
            // The thread cannot be stopped; a few may spin while the input is shrunk. The
            // first input that ran out of time is printed (shrinking may not get to finish).
            let leaked = LEAKED.fetch_add(1, Ordering::SeqCst);
            if leaked == 0 {
                eprintln!("fuzz_engine: this input ran out of time:\n{shown}\n--- end of input");
            }
            if leaked >= 4 {
                eprintln!("fuzz_engine: too many cases ran out of time; giving up");
                std::process::abort();
            }
            Err(TestCaseError::fail(format!(
                "the engine did not finish within {:?} (started {:?} ago)",
                case_timeout(),
                started.elapsed()
            )))
        }
    }
}

fn default_variant() -> Variant {
    Variant {
        mode: Mode::Reverse,
        optimized: true,
        preserve_result: false,
        split: false,
        seed_required: false,
        wrt: vec![0],
        again: false,
        own_source: false,
    }
}

// --------------------------------------------------------------- functions in arbitrary text

/// The functions defined in `text` (at any depth), with their parameter counts (guessed) and
/// their own dedented text.
fn functions_in(text: &str) -> Vec<Target> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start_matches([' ', '\t']);
        let Some(rest) = trimmed.strip_prefix("def ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let params = rest
            .split_once('(')
            .and_then(|(_, p)| p.split_once(')'))
            .map_or(1, |(p, _)| {
                p.split(',').filter(|s| !s.trim().is_empty()).count()
            });
        let mut own = String::new();
        for (k, l) in lines[i..].iter().enumerate() {
            let body = l.trim_start_matches([' ', '\t']);
            if k > 0 && !body.trim().is_empty() && l.len() - body.len() <= indent {
                break;
            }
            own.push_str(l.get(indent.min(l.len() - body.len())..).unwrap_or(l));
        }
        out.push(Target {
            name,
            params,
            own: Some((own, i + 1)),
            nested: indent > 0,
        });
    }
    out
}

/// Up to `picks.len()` of the functions of `text`, chosen by `picks`, and sometimes a name
/// that is not there.
fn pick_targets(text: &str, picks: &[u8]) -> Vec<Target> {
    let all = functions_in(text);
    picks
        .iter()
        .map(|&p| match all.len() {
            _ if p == 255 => Target {
                name: "missing".into(),
                params: 1,
                own: None,
                nested: false,
            },
            0 => Target {
                name: "f".into(),
                params: 1,
                own: None,
                nested: false,
            },
            n => all[usize::from(p) % n].clone(),
        })
        .collect()
}

// ----------------------------------------------------------------- random supported programs

const POOL: &[&str] = &["a", "b", "c", "h", "s", "t", "acc", "v"];
const PARAMS: &[&str] = &["x", "y", "z", "n"];
const CONSTS: &[&str] = &[
    "0.0", "1.0", "2.0", "0.5", "3", "-1.5", "1e-3", "2", "0", "1", "True", "10.0",
];

#[derive(Debug, Clone, Copy)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    MatMul,
    FloorDiv,
    Mod,
}

impl Bin {
    fn text(self) -> &'static str {
        match self {
            Bin::Add => "+",
            Bin::Sub => "-",
            Bin::Mul => "*",
            Bin::Div => "/",
            Bin::Pow => "**",
            Bin::MatMul => "@",
            Bin::FloorDiv => "//",
            Bin::Mod => "%",
        }
    }
}

fn bin() -> impl Strategy<Value = Bin> {
    prop_oneof![
        4 => Just(Bin::Add),
        3 => Just(Bin::Sub),
        4 => Just(Bin::Mul),
        2 => Just(Bin::Div),
        2 => Just(Bin::Pow),
        1 => Just(Bin::MatMul),
        1 => Just(Bin::FloorDiv),
        1 => Just(Bin::Mod),
    ]
}

/// Calls: name, arity, keyword arguments. Most have recipes; some are non-differentiable
/// (`len`, `np.argmax`, `np.zeros_like`) or unknown (`unknown`, `np.frobnicate`).
const CALLS: &[(&str, usize, &str)] = &[
    ("np.sin", 1, ""),
    ("np.cos", 1, ""),
    ("np.exp", 1, ""),
    ("np.log", 1, ""),
    ("np.tanh", 1, ""),
    ("np.sqrt", 1, ""),
    ("np.square", 1, ""),
    ("np.abs", 1, ""),
    ("np.log1p", 1, ""),
    ("np.sum", 1, ""),
    ("np.sum", 1, "axis=0"),
    ("np.mean", 1, ""),
    ("np.max", 1, "axis=-1, keepdims=True"),
    ("np.prod", 1, ""),
    ("np.cumsum", 1, ""),
    ("np.linalg.norm", 1, ""),
    ("np.transpose", 1, ""),
    ("np.reshape", 1, "newshape=(-1,)"),
    ("np.dot", 2, ""),
    ("np.outer", 2, ""),
    ("np.maximum", 2, ""),
    ("np.minimum", 2, ""),
    ("np.logaddexp", 2, ""),
    ("np.arctan2", 2, ""),
    ("np.where", 3, ""),
    ("np.clip", 3, ""),
    ("np.stack", 1, ""),
    ("np.concatenate", 1, "axis=0"),
    ("np.array", 1, ""),
    ("math.sin", 1, ""),
    ("math.exp", 1, ""),
    ("math.log", 1, ""),
    ("math.tanh", 1, ""),
    ("math.sqrt", 1, ""),
    ("math.pow", 2, ""),
    ("math.hypot", 2, ""),
    ("exp", 1, ""),
    ("abs", 1, ""),
    ("max", 2, ""),
    ("min", 2, ""),
    ("sum", 1, ""),
    ("float", 1, ""),
    ("len", 1, ""),
    ("range", 1, ""),
    ("np.zeros_like", 1, ""),
    ("np.ones", 1, ""),
    ("np.argmax", 1, ""),
    ("np.frobnicate", 1, ""),
    ("unknown", 2, ""),
    ("sp.expit", 1, ""),
    ("tangent.unbroadcast", 2, ""),
];

const METHODS: &[&str] = &[
    ".sum()",
    ".T",
    ".mean(axis=0)",
    ".reshape(-1)",
    ".shape[0]",
    ".copy()",
    ".max()",
    ".dot(x)",
    ".append(1.0)",
];

#[derive(Debug, Clone)]
enum Expr {
    /// A name in scope, chosen at render time (index modulo the names defined so far).
    Name(u8),
    Num(u8),
    Bin(Bin, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Call(u8, Vec<Expr>),
    /// A call to a function of the module: an earlier one, or (index >= 240) any one, itself
    /// included (recursion).
    Helper(u8, Vec<Expr>),
    Index(Box<Expr>, Index),
    Method(Box<Expr>, u8),
    IfElse(Box<Cond>, Box<Expr>, Box<Expr>),
    Tuple(Vec<Expr>),
    List(Vec<Expr>),
}

#[derive(Debug, Clone)]
enum Index {
    Const(i8),
    /// The innermost loop variable (or 0 outside loops).
    Loop,
    Slice(Option<i8>, Option<i8>),
    Expr(Box<Expr>),
    Pair(i8, i8),
    NewAxis,
}

#[derive(Debug, Clone)]
enum Cond {
    Cmp(u8, Expr, Expr),
    /// `i % 2 == 0` on the loop variable.
    Parity,
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Chain(Expr, Expr, Expr),
}

#[derive(Debug, Clone)]
enum Stmt {
    /// Target: a new name from the pool (< 200) or an overwrite of a name in scope.
    Assign(u8, Expr),
    Aug(u8, Bin, Expr),
    TupleAssign(u8, u8, Expr, Expr),
    Unpack(u8, u8, Expr),
    Swap(u8, u8),
    SetItem(u8, Index, Expr),
    AugItem(u8, Index, Bin, Expr),
    NewList(u8),
    Zeros(u8, u8),
    Append(u8, Expr),
    Pop(u8),
    If(Cond, Vec<Stmt>, Vec<(Cond, Vec<Stmt>)>, Vec<Stmt>),
    ForRange(u8, Vec<Stmt>),
    ForIn(u8, Vec<Stmt>),
    While(u8, Vec<Stmt>),
    Return(Expr),
    /// Mostly like `Return`; with a small first field, the other number of values.
    ReturnTuple(u8, Expr, Expr),
    Break,
    Continue,
    Pass,
    GradOf(u8, Vec<Stmt>),
    Bare(Expr),
}

#[derive(Debug, Clone)]
struct Function {
    params: u8,
    defaults: bool,
    body: Vec<Stmt>,
    result: Expr,
    /// Return a tuple at the end.
    pair: Option<Expr>,
}

#[derive(Debug, Clone)]
struct Module {
    imports: u8,
    functions: Vec<Function>,
    /// A user recipe for function 0: None, or one of `RECIPES`.
    recipe: Option<u8>,
    variants: Vec<Variant>,
    /// Which functions to ask for (indices modulo the function count).
    picks: Vec<u8>,
}

fn expr() -> BoxedStrategy<Expr> {
    let leaf = prop_oneof![
        4 => any::<u8>().prop_map(Expr::Name),
        2 => any::<u8>().prop_map(Expr::Num),
    ];
    leaf.prop_recursive(4, 32, 3, |inner| {
        let args = proptest::collection::vec(inner.clone(), 0..4);
        prop_oneof![
            6 => (bin(), inner.clone(), inner.clone()).prop_map(|(o, a, b)| Expr::Bin(o, Box::new(a), Box::new(b))),
            1 => inner.clone().prop_map(|a| Expr::Neg(Box::new(a))),
            6 => (any::<u8>(), args.clone()).prop_map(|(f, a)| Expr::Call(f, a)),
            2 => (any::<u8>(), args.clone()).prop_map(|(f, a)| Expr::Helper(f, a)),
            2 => (inner.clone(), index(inner.clone())).prop_map(|(e, i)| Expr::Index(Box::new(e), i)),
            1 => (inner.clone(), any::<u8>()).prop_map(|(e, m)| Expr::Method(Box::new(e), m)),
            1 => (cond(inner.clone()), inner.clone(), inner.clone()).prop_map(|(c, a, b)| Expr::IfElse(Box::new(c), Box::new(a), Box::new(b))),
            1 => proptest::collection::vec(inner.clone(), 1..3).prop_map(Expr::Tuple),
            1 => proptest::collection::vec(inner, 0..3).prop_map(Expr::List),
        ]
    })
    .boxed()
}

fn index(inner: impl Strategy<Value = Expr> + Clone + 'static) -> impl Strategy<Value = Index> {
    prop_oneof![
        3 => (-2i8..3).prop_map(Index::Const),
        3 => Just(Index::Loop),
        1 => (proptest::option::of(-2i8..3), proptest::option::of(-2i8..3)).prop_map(|(a, b)| Index::Slice(a, b)),
        1 => inner.prop_map(|e| Index::Expr(Box::new(e))),
        1 => (0i8..2, 0i8..2).prop_map(|(a, b)| Index::Pair(a, b)),
        1 => Just(Index::NewAxis),
    ]
}

fn cond(inner: impl Strategy<Value = Expr> + Clone + 'static) -> BoxedStrategy<Cond> {
    let leaf = prop_oneof![
        6 => (any::<u8>(), inner.clone(), inner.clone()).prop_map(|(op, a, b)| Cond::Cmp(op, a, b)),
        1 => Just(Cond::Parity),
        1 => (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| Cond::Chain(a, b, c)),
    ];
    leaf.prop_recursive(2, 4, 2, |c| {
        prop_oneof![
            (c.clone(), c.clone()).prop_map(|(a, b)| Cond::And(Box::new(a), Box::new(b))),
            (c.clone(), c.clone()).prop_map(|(a, b)| Cond::Or(Box::new(a), Box::new(b))),
            c.prop_map(|a| Cond::Not(Box::new(a))),
        ]
    })
    .boxed()
}

fn stmt() -> impl Strategy<Value = Stmt> {
    let e = expr();
    let leaf = prop_oneof![
        10 => (any::<u8>(), e.clone()).prop_map(|(t, v)| Stmt::Assign(t, v)),
        3 => (any::<u8>(), bin(), e.clone()).prop_map(|(t, o, v)| Stmt::Aug(t, o, v)),
        1 => (any::<u8>(), any::<u8>(), e.clone(), e.clone()).prop_map(|(a, b, x, y)| Stmt::TupleAssign(a, b, x, y)),
        1 => (any::<u8>(), any::<u8>(), e.clone()).prop_map(|(a, b, x)| Stmt::Unpack(a, b, x)),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Stmt::Swap(a, b)),
        2 => (any::<u8>(), index(e.clone()), e.clone()).prop_map(|(t, i, v)| Stmt::SetItem(t, i, v)),
        1 => (any::<u8>(), index(e.clone()), bin(), e.clone()).prop_map(|(t, i, o, v)| Stmt::AugItem(t, i, o, v)),
        1 => any::<u8>().prop_map(Stmt::NewList),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(t, k)| Stmt::Zeros(t, k)),
        2 => (any::<u8>(), e.clone()).prop_map(|(t, v)| Stmt::Append(t, v)),
        1 => any::<u8>().prop_map(Stmt::Pop),
        2 => e.clone().prop_map(Stmt::Return),
        1 => (any::<u8>(), e.clone(), e.clone()).prop_map(|(k, a, b)| Stmt::ReturnTuple(k, a, b)),
        1 => Just(Stmt::Break),
        1 => Just(Stmt::Continue),
        1 => Just(Stmt::Pass),
        1 => e.clone().prop_map(Stmt::Bare),
    ];
    let c = cond(e);
    leaf.prop_recursive(3, 24, 4, move |inner| {
        let block = proptest::collection::vec(inner, 1..4);
        let orelse = prop_oneof![Just(Vec::new()), block.clone()];
        prop_oneof![
            3 => (c.clone(), block.clone(), proptest::collection::vec((c.clone(), block.clone()), 0..2), orelse)
                .prop_map(|(c, b, elifs, orelse)| Stmt::If(c, b, elifs, orelse)),
            3 => (any::<u8>(), block.clone()).prop_map(|(k, b)| Stmt::ForRange(k, b)),
            1 => (any::<u8>(), block.clone()).prop_map(|(k, b)| Stmt::ForIn(k, b)),
            2 => (any::<u8>(), block.clone()).prop_map(|(k, b)| Stmt::While(k, b)),
            1 => (any::<u8>(), block).prop_map(|(k, b)| Stmt::GradOf(k, b)),
        ]
    })
}

fn stmts() -> impl Strategy<Value = Vec<Stmt>> {
    proptest::collection::vec(stmt(), 0..7)
}

fn function() -> impl Strategy<Value = Function> {
    (
        1u8..5,
        any::<bool>(),
        stmts(),
        expr(),
        proptest::option::weighted(0.15, expr()),
    )
        .prop_map(|(params, defaults, body, result, pair)| Function {
            params,
            defaults,
            body,
            result,
            pair,
        })
}

fn module() -> impl Strategy<Value = Module> {
    (
        any::<u8>(),
        proptest::collection::vec(function(), 1..4),
        proptest::option::weighted(0.1, any::<u8>()),
        proptest::collection::vec(variant(), 1..4),
        proptest::collection::vec(any::<u8>(), 1..4),
    )
        .prop_map(|(imports, functions, recipe, variants, picks)| Module {
            imports,
            functions,
            recipe,
            variants,
            picks,
        })
}

/// Renders a module as Python text.
struct Render<'m> {
    module: &'m Module,
    out: String,
    /// Names readable at this point.
    scope: Vec<String>,
    loops: Vec<String>,
    /// Index of the function being rendered.
    current: usize,
}

impl Render<'_> {
    fn name(&self, i: u8) -> String {
        if self.scope.is_empty() {
            return "x".into();
        }
        self.scope[usize::from(i) % self.scope.len()].clone()
    }

    fn target(&mut self, i: u8) -> String {
        let name = if i < 200 || self.scope.is_empty() {
            POOL[usize::from(i) % POOL.len()].to_string()
        } else {
            self.name(i)
        };
        if !self.scope.contains(&name) {
            self.scope.push(name.clone());
        }
        name
    }

    fn function_name(&self, i: usize) -> String {
        format!("f{i}")
    }

    fn expr(&self, e: &Expr) -> String {
        match e {
            Expr::Name(i) => self.name(*i),
            Expr::Num(i) => CONSTS[usize::from(*i) % CONSTS.len()].to_string(),
            Expr::Bin(op, a, b) => {
                let right = match (op, &**b) {
                    // Mostly small constant powers, as real code has.
                    (Bin::Pow, Expr::Num(i)) => {
                        ["2", "3", "0.5", "2.0", "-1"][usize::from(*i) % 5].to_string()
                    }
                    _ => self.expr(b),
                };
                format!("({} {} {right})", self.expr(a), op.text())
            }
            Expr::Neg(a) => format!("(-{})", self.expr(a)),
            Expr::Call(f, args) => {
                let (name, arity, kw) = CALLS[usize::from(*f) % CALLS.len()];
                let mut parts: Vec<String> =
                    args.iter().take(arity).map(|a| self.expr(a)).collect();
                while parts.len() < arity {
                    parts.push(self.name((parts.len() as u8).wrapping_mul(7).wrapping_add(*f)));
                }
                if matches!(name, "np.stack" | "np.concatenate" | "np.array") {
                    parts = vec![format!("[{}, {}]", parts[0], self.name(*f))];
                }
                if !kw.is_empty() {
                    parts.push(kw.to_string());
                }
                format!("{name}({})", parts.join(", "))
            }
            Expr::Helper(f, args) => {
                let count = if *f >= 240 {
                    self.module.functions.len()
                } else {
                    self.current
                };
                if count == 0 {
                    return args.first().map_or_else(|| self.name(*f), |a| self.expr(a));
                }
                let callee = usize::from(*f) % count;
                let params = usize::from(self.module.functions[callee].params);
                let mut parts: Vec<String> =
                    args.iter().take(params).map(|a| self.expr(a)).collect();
                while parts.len() < params {
                    parts.push(self.name((parts.len() as u8).wrapping_add(*f)));
                }
                format!("{}({})", self.function_name(callee), parts.join(", "))
            }
            Expr::Index(e, i) => format!("{}[{}]", self.atom(e), self.index(i)),
            Expr::Method(e, m) => format!(
                "{}{}",
                self.atom(e),
                METHODS[usize::from(*m) % METHODS.len()]
            ),
            Expr::IfElse(c, a, b) => format!(
                "({} if {} else {})",
                self.expr(a),
                self.cond(c),
                self.expr(b)
            ),
            Expr::Tuple(items) => {
                let parts: Vec<String> = items.iter().map(|a| self.expr(a)).collect();
                if parts.len() == 1 {
                    format!("({},)", parts[0])
                } else {
                    format!("({})", parts.join(", "))
                }
            }
            Expr::List(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|a| self.expr(a))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// An expression that can be subscripted or have a method called without parentheses.
    fn atom(&self, e: &Expr) -> String {
        let text = self.expr(e);
        let simple = matches!(
            e,
            Expr::Name(_)
                | Expr::Call(..)
                | Expr::Helper(..)
                | Expr::Index(..)
                | Expr::List(_)
                | Expr::Tuple(_)
        );
        if simple
            && text.starts_with(|c: char| c.is_alphabetic() || c == '_' || c == '[' || c == '(')
        {
            text
        } else {
            format!("({text})")
        }
    }

    fn index(&self, i: &Index) -> String {
        match i {
            Index::Const(k) => k.to_string(),
            Index::Loop => self.loops.last().cloned().unwrap_or_else(|| "0".into()),
            Index::Slice(a, b) => format!(
                "{}:{}",
                a.map(|k| k.to_string()).unwrap_or_default(),
                b.map(|k| k.to_string()).unwrap_or_default()
            ),
            Index::Expr(e) => self.expr(e),
            Index::Pair(a, b) => format!("{a}, {b}"),
            Index::NewAxis => ":, None".into(),
        }
    }

    fn cond(&self, c: &Cond) -> String {
        match c {
            Cond::Cmp(op, a, b) => format!(
                "{} {} {}",
                self.expr(a),
                ["<", ">", "<=", ">=", "==", "!="][usize::from(*op) % 6],
                self.expr(b)
            ),
            Cond::Parity => format!("{} % 2 == 0", self.loops.last().map_or("n", String::as_str)),
            Cond::And(a, b) => format!("({} and {})", self.cond(a), self.cond(b)),
            Cond::Or(a, b) => format!("({} or {})", self.cond(a), self.cond(b)),
            Cond::Not(a) => format!("not ({})", self.cond(a)),
            Cond::Chain(a, b, c) => {
                format!("{} < {} < {}", self.expr(a), self.expr(b), self.expr(c))
            }
        }
    }

    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn block(&mut self, depth: usize, body: &[Stmt]) {
        if body.is_empty() {
            self.line(depth, "pass");
        }
        for s in body {
            self.stmt(depth, s);
        }
    }

    fn stmt(&mut self, depth: usize, s: &Stmt) {
        match s {
            Stmt::Assign(t, e) => {
                let value = self.expr(e);
                let t = self.target(*t);
                self.line(depth, &format!("{t} = {value}"));
            }
            Stmt::Aug(t, op, e) => {
                let value = self.expr(e);
                let t = self.name(*t);
                self.line(depth, &format!("{t} {}= {value}", op.text()));
            }
            Stmt::TupleAssign(a, b, x, y) => {
                let (x, y) = (self.expr(x), self.expr(y));
                let (a, b) = (self.target(*a), self.target(*b));
                self.line(depth, &format!("{a}, {b} = {x}, {y}"));
            }
            Stmt::Unpack(a, b, x) => {
                let x = self.expr(x);
                let (a, b) = (self.target(*a), self.target(*b));
                self.line(depth, &format!("{a}, {b} = {x}"));
            }
            Stmt::Swap(a, b) => {
                let (a, b) = (self.name(*a), self.name(*b));
                self.line(depth, &format!("{a}, {b} = {b}, {a}"));
            }
            Stmt::SetItem(t, i, e) => {
                let (t, i, e) = (self.name(*t), self.index(i), self.expr(e));
                self.line(depth, &format!("{t}[{i}] = {e}"));
            }
            Stmt::AugItem(t, i, op, e) => {
                let (t, i, e) = (self.name(*t), self.index(i), self.expr(e));
                self.line(depth, &format!("{t}[{i}] {}= {e}", op.text()));
            }
            Stmt::NewList(t) => {
                let t = self.target(*t);
                self.line(depth, &format!("{t} = []"));
            }
            Stmt::Zeros(t, k) => {
                let like = self.name(*k);
                let t = self.target(*t);
                let text = match k % 3 {
                    0 => format!("{t} = np.zeros_like({like})"),
                    1 => format!("{t} = np.zeros({})", 1 + k % 4),
                    _ => format!("{t} = np.zeros({like}.shape[0])"),
                };
                self.line(depth, &text);
            }
            Stmt::Append(t, e) => {
                let (t, e) = (self.name(*t), self.expr(e));
                self.line(depth, &format!("{t}.append({e})"));
            }
            Stmt::Pop(t) => {
                let t = self.name(*t);
                let target = self.target(t.len() as u8);
                self.line(depth, &format!("{target} = {t}.pop()"));
            }
            Stmt::If(c, body, elifs, orelse) => {
                let c = self.cond(c);
                self.line(depth, &format!("if {c}:"));
                self.block(depth + 1, body);
                for (c, b) in elifs {
                    let c = self.cond(c);
                    self.line(depth, &format!("elif {c}:"));
                    self.block(depth + 1, b);
                }
                if !orelse.is_empty() {
                    self.line(depth, "else:");
                    self.block(depth + 1, orelse);
                }
            }
            Stmt::ForRange(k, body) => {
                let var = ["i", "j", "k"][self.loops.len().min(2)].to_string();
                let bound = match k % 4 {
                    0 => format!("{}", k % 5),
                    1 => "n".into(),
                    2 => format!("len({})", self.name(*k)),
                    _ => format!("1, {}.shape[0]", self.name(*k)),
                };
                self.line(depth, &format!("for {var} in range({bound}):"));
                self.enter_loop(var, depth, body);
            }
            Stmt::ForIn(k, body) => {
                let var = ["e", "g", "r"][self.loops.len().min(2)].to_string();
                let seq = self.name(*k);
                let header = if k % 2 == 0 {
                    format!("for {var} in {seq}:")
                } else {
                    format!("for _, {var} in enumerate({seq}):")
                };
                self.line(depth, &header);
                self.enter_loop(var, depth, body);
            }
            Stmt::While(k, body) => {
                let counter = ["w", "w2", "w3"][self.loops.len().min(2)].to_string();
                self.line(depth, &format!("{counter} = 0"));
                let test = if k % 3 == 0 {
                    format!("{counter} < {} and {} > 0.0", 1 + k % 4, self.name(*k))
                } else {
                    format!("{counter} < {}", 1 + k % 4)
                };
                self.line(depth, &format!("while {test}:"));
                self.line(depth + 1, &format!("{counter} += 1"));
                self.enter_loop(counter, depth, body);
            }
            // As many values as the function's last `return`; `ReturnTuple` the other count.
            Stmt::Return(e) => {
                let mut e = self.expr(e);
                if self.module.functions[self.current].pair.is_some() {
                    e = format!("{e}, {e}");
                }
                self.line(depth, &format!("return {e}"));
            }
            Stmt::ReturnTuple(k, a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                let pair = self.module.functions[self.current].pair.is_some() != (*k < 8);
                let text = if pair {
                    format!("return {a}, {b}")
                } else {
                    format!("return {a}")
                };
                self.line(depth, &text);
            }
            Stmt::Break => self.line(
                depth,
                if self.loops.is_empty() {
                    "pass"
                } else {
                    "break"
                },
            ),
            Stmt::Continue => self.line(
                depth,
                if self.loops.is_empty() {
                    "pass"
                } else {
                    "continue"
                },
            ),
            Stmt::Pass => self.line(depth, "pass"),
            Stmt::GradOf(t, body) => {
                let t = self.name(*t);
                self.line(depth, &format!("with insert_grad_of({t}) as d{t}:"));
                self.line(depth + 1, &format!("d{t} = np.clip(d{t}, -1.0, 1.0)"));
                self.block(depth + 1, body);
            }
            Stmt::Bare(e) => {
                let e = self.expr(e);
                self.line(depth, &e);
            }
        }
    }

    fn enter_loop(&mut self, var: String, depth: usize, body: &[Stmt]) {
        if !self.scope.contains(&var) {
            self.scope.push(var.clone());
        }
        self.loops.push(var);
        self.block(depth + 1, body);
        self.loops.pop();
    }

    fn module(mut self) -> String {
        let m = self.module;
        let imports = [
            "import numpy as np",
            "import math",
            "from math import exp",
            "import tangent",
            "from tangent import insert_grad_of",
            "import scipy.special as sp",
            "import numpy",
            "from numpy import *",
        ];
        // numpy as np almost always; the rest by bits.
        let mut bits = m.imports | 0b1;
        if m.imports == 0xff {
            bits = 0;
        }
        for (k, line) in imports.iter().enumerate() {
            if bits & (1 << k) != 0 {
                self.out.push_str(line);
                self.out.push('\n');
            }
        }
        for (i, f) in m.functions.iter().enumerate() {
            self.current = i;
            self.out.push_str("\n\n");
            let params: Vec<&str> = PARAMS[..usize::from(f.params).min(PARAMS.len())].to_vec();
            let signature: Vec<String> = params
                .iter()
                .enumerate()
                .map(|(k, p)| {
                    if f.defaults && k + 1 == params.len() && k > 0 {
                        format!("{p}=3")
                    } else {
                        p.to_string()
                    }
                })
                .collect();
            self.line(
                0,
                &format!("def {}({}):", self.function_name(i), signature.join(", ")),
            );
            self.scope = params.iter().map(|p| p.to_string()).collect();
            self.block(1, &f.body);
            let result = self.expr(&f.result);
            match &f.pair {
                Some(p) => {
                    let p = self.expr(p);
                    self.line(1, &format!("return {result}, {p}"));
                }
                None => self.line(1, &format!("return {result}")),
            }
        }
        if let Some(r) = m.recipe {
            let f0 = &m.functions[0];
            let params = PARAMS[..usize::from(f0.params).min(PARAMS.len())].join(", ");
            let body = [
                "    d[x] = d[result] * 2.0",
                "    d[x] = tangent.unbroadcast(d[result] * np.cos(x), x)",
                "    d[q] = d[result]",
                "    d[result] = d[x] * 2.0",
                "    return d[x]",
            ][usize::from(r) % 5];
            let decorator = if r % 7 == 3 {
                "tangent.tangent_"
            } else {
                "tangent.adjoint"
            };
            let _ = write!(
                self.out,
                "\n\n@{decorator}(f0)\ndef f0_recipe(result, {params}):\n{body}\n"
            );
        }
        self.out
    }
}

fn render(m: &Module) -> String {
    Render {
        module: m,
        out: String::new(),
        scope: Vec::new(),
        loops: Vec::new(),
        current: 0,
    }
    .module()
}

fn module_targets(m: &Module, source: &str) -> Vec<Target> {
    let own = functions_in(source);
    m.picks
        .iter()
        .map(|&p| {
            let i = usize::from(p) % m.functions.len();
            let name = format!("f{i}");
            Target {
                own: own
                    .iter()
                    .find(|t| t.name == name)
                    .and_then(|t| t.own.clone()),
                name,
                params: usize::from(m.functions[i].params),
                nested: false,
            }
        })
        .collect()
}

#[test]
fn programs() {
    fuzz("programs", 200, module(), render, |m| {
        let source = render(m);
        // Everything the generator writes is Python (else it tests the parser, not the engine).
        if let Err(e) = ruff_python_parser::parse_module(&source) {
            let at = usize::from(e.location.start()).min(source.len());
            let line = source[..at].lines().last().unwrap_or_default().to_string()
                + source[at..].lines().next().unwrap_or_default();
            return Err(TestCaseError::fail(format!(
                "the generator wrote invalid Python ({e}) in line {line:?}"
            )));
        }
        run_case(&source, &module_targets(m, &source), &m.variants)
    });
}

// -------------------------------------------------------------------------- arbitrary text

const TOKENS: &[&str] = &[
    "def f(x):\n    ",
    "def g(x, y=1.0):\n    ",
    "\n",
    "\n    ",
    "\n        ",
    "    ",
    "\t",
    "return ",
    "x",
    "y",
    "n",
    "i",
    "(",
    ")",
    "[",
    "]",
    ":",
    ",",
    " = ",
    " += ",
    " + ",
    " - ",
    " * ",
    " / ",
    " ** ",
    " @ ",
    "-",
    "np.sin(",
    "np.sum(",
    "np.dot(",
    "math.exp(",
    "f(",
    "g(",
    "for i in range(3):",
    "while ",
    "if ",
    "elif ",
    "else:",
    " and ",
    " or ",
    "not ",
    " < ",
    " == ",
    "1.0",
    "2",
    "0",
    "'s'",
    "\"\"\"",
    "#",
    "lambda",
    "yield",
    "await ",
    "global x",
    "try:",
    "except:",
    "with ",
    " as ",
    "import numpy as np\n",
    "import math\n",
    "@tangent.adjoint(f)\n",
    "d[x]",
    "d[result]",
    "break",
    "continue",
    "pass",
    "*",
    "**",
    ".T",
    ".append(",
    ".pop()",
    "None",
    "True",
    "é",
    "µ",
    "\u{feff}",
    "\r\n",
    "\\\n",
    "\u{3000}",
    "𝑥",
    "x[i]",
    "x[1:]",
    "x[:, None]",
    "{",
    "}",
    "...",
    ";",
    "tangent.",
    "insert_grad_of(x) as dx:",
    "del ",
    "class C:",
    "match x:",
];

fn noise() -> impl Strategy<Value = (String, Vec<u8>, Vec<Variant>)> {
    let text = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        proptest::collection::vec(select(TOKENS), 0..80).prop_map(|t| t.concat()),
        ".{0,120}",
        // A function header, then anything.
        (
            proptest::collection::vec(select(TOKENS), 0..40),
            ".{0,40}",
            any::<bool>()
        )
            .prop_map(|(t, s, end)| format!(
                "import numpy as np\n\ndef f(x, n):\n    {}{s}{}",
                t.concat(),
                if end { "\n    return x\n" } else { "" }
            )),
    ];
    (
        text,
        proptest::collection::vec(any::<u8>(), 1..3),
        proptest::collection::vec(variant(), 1..3),
    )
}

#[test]
fn noise_text() {
    fuzz(
        "noise",
        500,
        noise(),
        |(text, _, _)| text.clone(),
        |(text, picks, variants)| run_case(text, &pick_targets(text, picks), variants),
    );
}

// ----------------------------------------------------------------- mutated files of the repo

/// The repository's Python files, sorted by path.
fn corpus() -> &'static [(String, String)] {
    static CORPUS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in [
            "tests/fixtures",
            "examples",
            "benches",
            "recipes",
            "tests/python",
        ] {
            collect_python(&root.join(dir), &mut files);
        }
        files.sort();
        files
            .into_iter()
            .filter_map(|p| {
                let text = std::fs::read_to_string(&p).ok()?;
                Some((
                    p.strip_prefix(root).unwrap_or(&p).display().to_string(),
                    text,
                ))
            })
            .collect()
    })
}

fn collect_python(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(['.', '_']) && name != "__init__.py" {
            continue;
        }
        if path.is_dir() {
            collect_python(&path, out);
        } else if path.extension().is_some_and(|e| e == "py") {
            out.push(path);
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(u16),
    Flip(u16, u8),
    DeleteLine(u16),
    DuplicateLine(u16),
    SwapLines(u16, u16),
    Reindent(u16, u8),
    Insert(u16, u8),
    /// A token at the end (after a truncation: errors at the end of the text).
    Append(u8),
    /// Cut, then a non-ASCII character: the end of the text inside a multi-byte character.
    CutUnicode(u16, u8),
    DeleteRange(u16, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<u16>().prop_map(Mutation::Truncate),
        3 => (any::<u16>(), any::<u8>()).prop_map(|(p, x)| Mutation::Flip(p, x)),
        2 => any::<u16>().prop_map(Mutation::DeleteLine),
        2 => any::<u16>().prop_map(Mutation::DuplicateLine),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => (any::<u16>(), any::<u8>()).prop_map(|(l, k)| Mutation::Reindent(l, k)),
        3 => (any::<u16>(), any::<u8>()).prop_map(|(p, t)| Mutation::Insert(p, t)),
        1 => any::<u8>().prop_map(Mutation::Append),
        1 => (any::<u16>(), any::<u8>()).prop_map(|(p, c)| Mutation::CutUnicode(p, c)),
        1 => (any::<u16>(), any::<u8>()).prop_map(|(p, n)| Mutation::DeleteRange(p, n)),
    ]
}

/// Positions are fractions of the length (`p / 65536`), so a mutation keeps its meaning when
/// earlier ones change the length.
fn at(p: u16, len: usize) -> usize {
    (usize::from(p) * len) >> 16
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Truncate(p) => bytes.truncate(at(p, len + 1)),
            Mutation::Flip(p, x) if len > 0 => bytes[at(p, len)] ^= x.max(1),
            Mutation::Insert(p, t) => {
                let token = TOKENS[usize::from(t) % TOKENS.len()].as_bytes();
                let i = at(p, len + 1);
                bytes.splice(i..i, token.iter().copied());
            }
            Mutation::Append(t) => {
                bytes.extend_from_slice(TOKENS[usize::from(t) % TOKENS.len()].as_bytes())
            }
            Mutation::CutUnicode(p, c) => {
                bytes.truncate(at(p, len + 1));
                bytes.extend_from_slice(
                    ["é", "µ", "𝑥", "\u{3000}", "\u{feff}", "→", "\u{fffd}"][usize::from(c) % 7]
                        .as_bytes(),
                );
            }
            Mutation::DeleteRange(p, n) => {
                let i = at(p, len + 1);
                bytes.drain(i..(i + usize::from(n)).min(len));
            }
            Mutation::DeleteLine(l)
            | Mutation::DuplicateLine(l)
            | Mutation::SwapLines(l, _)
            | Mutation::Reindent(l, _) => {
                let mut lines: Vec<Vec<u8>> = bytes
                    .split_inclusive(|&b| b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                if lines.is_empty() {
                    continue;
                }
                let i = at(l, lines.len());
                match *m {
                    Mutation::DeleteLine(_) => {
                        lines.remove(i);
                    }
                    Mutation::DuplicateLine(_) => {
                        let line = lines[i].clone();
                        lines.insert(i, line);
                    }
                    Mutation::SwapLines(_, k) => {
                        let k = at(k, lines.len());
                        lines.swap(i, k);
                    }
                    Mutation::Reindent(_, k) => {
                        let body: Vec<u8> = lines[i]
                            .iter()
                            .copied()
                            .skip_while(|&b| b == b' ')
                            .collect();
                        let mut line = vec![b' '; usize::from(k % 13)];
                        line.extend(body);
                        lines[i] = line;
                    }
                    _ => unreachable!(),
                }
                bytes = lines.concat();
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn mutants() -> impl Strategy<Value = (usize, Vec<Mutation>, Vec<u8>, Vec<Variant>)> {
    (
        any::<usize>(),
        proptest::collection::vec(mutation(), 0..5),
        proptest::collection::vec(any::<u8>(), 1..4),
        proptest::collection::vec(variant(), 1..3),
    )
}

#[test]
fn mutated_files() {
    let files = corpus();
    assert!(
        files.len() >= 10,
        "the corpus of Python files is missing: {files:?}"
    );
    let pick = |i: usize| &files[i % files.len()];
    fuzz(
        "mutants",
        500,
        mutants(),
        |(i, ms, _, _)| {
            format!(
                "# {} mutated by {ms:?}\n{}",
                pick(*i).0,
                mutate(&pick(*i).1, ms)
            )
        },
        |(i, ms, picks, variants)| {
            let text = mutate(&pick(*i).1, ms);
            run_case(&text, &pick_targets(&text, picks), variants)
        },
    );
}

/// Each file of the corpus as it is, every function asked for once, so every real function
/// goes through the engine in each CI run.
#[test]
fn corpus_files_as_they_are() {
    let variants = [
        default_variant(),
        Variant {
            mode: Mode::Forward,
            optimized: false,
            ..default_variant()
        },
        Variant {
            split: true,
            preserve_result: true,
            seed_required: true,
            ..default_variant()
        },
    ];
    for (path, text) in corpus() {
        // One case per function (each with its time limit: a long file is many functions).
        for (i, target) in functions_in(text).into_iter().enumerate() {
            let variant = variants[i % variants.len()].clone();
            if let Err(e) = run_case(text, std::slice::from_ref(&target), &[variant]) {
                panic!("{path}: {e}");
            }
        }
    }
}

// ------------------------------------------------------------------------------ regressions

/// Minimized inputs found by the fuzzers above, kept as explicit cases.
mod regressions {
    use super::*;

    fn all_variants() -> Vec<Variant> {
        let mut out = Vec::new();
        for mode in [
            Mode::Reverse,
            Mode::Forward,
            Mode::Hvp,
            Mode::Module,
            Mode::Listing,
        ] {
            for optimized in [false, true] {
                out.push(Variant {
                    mode,
                    optimized,
                    again: true,
                    ..default_variant()
                });
                out.push(Variant {
                    mode,
                    optimized,
                    split: true,
                    preserve_result: true,
                    seed_required: true,
                    wrt: vec![0, 1],
                    own_source: true,
                    ..default_variant()
                });
            }
        }
        out
    }

    /// Every function of `source`, every variant: no panic, valid output.
    fn survives(source: &str) {
        let targets = functions_in(source);
        let targets = if targets.is_empty() {
            vec![Target {
                name: "f".into(),
                params: 1,
                own: None,
                nested: false,
            }]
        } else {
            targets
        };
        for variant in all_variants() {
            if let Err(e) = run_case(source, &targets, std::slice::from_ref(&variant)) {
                panic!("{e}\n--- input ---\n{source}");
            }
        }
    }

    fn request<'a>(source: &'a str, function: &'a str) -> Request<'a> {
        Request {
            module_source: source,
            path: PATH,
            function,
            function_source: None,
            function_first_line: 1,
            definition_line: None,
            context_source: None,
            project_recipes: None,
            object_classes: &[],
        }
    }

    /// Found by `programs`: `wrt=[]` gave `return tangent.unshared(, seed=bf)`, which the engine
    /// reported as an internal error. The Python API and the CLI never pass it; the engine
    /// says what is wrong.
    #[test]
    fn empty_wrt_is_a_diagnostic() {
        let source = "def f(x):\n    return x * x\n";
        for optimized in [false, true] {
            let options = Options {
                wrt: vec![],
                optimized,
                ..Options::default()
            };
            let reverse = tangent::generate(&request(source, "f"), &options).unwrap_err();
            assert_eq!(
                reverse.kind,
                tangent::DiagnosticKind::InvalidWrt,
                "{}",
                reverse.render()
            );
            let forward = tangent::generate_forward(&request(source, "f"), &options).unwrap_err();
            assert_eq!(
                forward.kind,
                tangent::DiagnosticKind::InvalidWrt,
                "{}",
                forward.render()
            );
        }
        survives(source);
    }

    /// Found by `programs` (as `1.T`: invalid Python, reported as an internal error): number
    /// literals before `.attr`, `.method()`, `[...]` and as the base of `**` are printed in
    /// parentheses; `-2.0 ** 2` would also be `-(2.0 ** 2)`, a wrong value (checked by
    /// `tests/fixtures/fuzz_regressions/negative_constant_base.py`).
    #[test]
    fn number_literals_before_attributes_and_powers() {
        let source = "import numpy as np\n\n\ndef f(x):\n    y = (-2.0) ** 2\n    a = (1).real\n    b = (2.5).conjugate()\n    c = (-1.5).real\n    return x * y * a * b * c * (3).T\n";
        for optimized in [false, true] {
            let options = Options {
                optimized,
                ..Options::default()
            };
            let g = tangent::generate(&request(source, "f"), &options)
                .unwrap_or_else(|d| panic!("{}", d.render()));
            check_python("reverse", &g.source, source).unwrap();
            assert!(
                g.source.contains("(-2.0) ** 2") || !g.source.contains("2.0 ** 2"),
                "{}",
                g.source
            );
            assert!(!g.source.contains("-2.0 ** 2"), "{}", g.source);
            let g = tangent::generate_forward(&request(source, "f"), &options)
                .unwrap_or_else(|d| panic!("{}", d.render()));
            check_python("forward", &g.source, source).unwrap();
            assert!(!g.source.contains("-2.0 ** 2"), "{}", g.source);
        }
        survives(source);
    }

    /// Found by `mutants` (a real file cut inside a multi-byte character): a syntax error at the
    /// end of a text whose last character is not ASCII panicked: `parse::parse` moved the
    /// error's start to `content_end - 1`, inside the character, and `Diagnostic::at` sliced
    /// the text there.
    #[test]
    fn syntax_error_after_non_ascii_at_end() {
        for source in [
            "def f(x):\n    return (x + é",
            "def f(x):\n    return x[\u{fffd}",
            "x = (µ",
        ] {
            let result = std::panic::catch_unwind(|| {
                tangent::generate(&request(source, "f"), &Options::default())
            });
            match result {
                Ok(Err(d)) => assert_eq!(d.kind, tangent::DiagnosticKind::Syntax),
                Ok(Ok(g)) => panic!("no syntax error for {source:?}:\n{}", g.source),
                Err(_) => panic!("panicked on {source:?}"),
            }
        }
    }

    /// Found by `mutants` (benches/incremental/run.py as it is, a nested function): a generator
    /// expression as the sole argument of a call (`sum(y for y in ys)`) was copied into
    /// generated code without parentheses (`_t1 = y for y in ys`), which the engine reported as
    /// an internal error.
    #[test]
    fn generator_expression_argument() {
        let source = "import statistics\n\n\ndef f(x, ys):\n    m = statistics.median(y * 2 for y in ys)\n    return x * m * sum(y for y in ys) * max((y for y in ys), default=1.0)\n";
        for optimized in [false, true] {
            let options = Options {
                optimized,
                ..Options::default()
            };
            let g = tangent::generate(&request(source, "f"), &options)
                .unwrap_or_else(|d| panic!("{}", d.render()));
            check_python("reverse", &g.source, source).unwrap();
            let g = tangent::generate_forward(&request(source, "f"), &options)
                .unwrap_or_else(|d| panic!("{}", d.render()));
            check_python("forward", &g.source, source).unwrap();
        }
        survives(source);
    }

    #[test]
    fn deeply_nested_expression() {
        // Deep nesting must give a result or a diagnostic, not overflow the stack.
        let depth = 60;
        let source = format!(
            "import numpy as np\n\ndef f(x):\n    return {}x{}\n",
            "np.sin(".repeat(depth),
            ")".repeat(depth)
        );
        survives(&source);
        let source = format!(
            "def f(x):\n    return {}x{}\n",
            "(".repeat(depth),
            " + 1.0)".repeat(depth)
        );
        survives(&source);
    }
}
