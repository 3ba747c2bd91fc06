//! `tangent build`, `check` and `cache` on temporary project trees, through the real binary.

mod common;

use std::path::Path;

use common::*;

fn summary(o: &std::process::Output) -> String {
    stdout(o)
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or_default()
        .to_string()
}

// --- build ------------------------------------------------------------------------------

#[test]
fn build_writes_artifacts_beside_sources() {
    let p = Project::with_files(
        "beside",
        &[("pkg/model.py", MODEL), ("pkg/sub/helper.py", HELPER)],
    );
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("2 generated, 0 reused, 0 failed"),
        "{}",
        stdout(&o)
    );
    let model = format!("pkg/__tangent__/{}", artifact_name("model", MODEL));
    let helper = format!("pkg/sub/__tangent__/{}", artifact_name("helper", HELPER));
    assert_eq!(p.artifacts(), vec![model.clone(), helper.clone()]);
    let text = p.read(&model);
    let first = text.lines().next().unwrap();
    assert!(
        first.contains(&format!(
            "{}{}",
            tangent::SOURCE_HASH_MARKER,
            tangent::source_hash(MODEL)
        )),
        "header: {first}"
    );
    assert!(text.contains("def dsquare_sum"), "{text}");
    // Exactly what the engine (and so the import hook) generates, with the file name only.
    assert_eq!(text, expected_module(MODEL, "model.py", true));
    assert_eq!(p.read(&helper), expected_module(HELPER, "helper.py", true));
    assert!(
        !text.contains(&*p.root.to_string_lossy()),
        "no absolute path in the artifact"
    );
}

#[test]
fn second_build_reuses_and_leaves_files_alone() {
    let p = Project::with_files("reuse", &[("model.py", MODEL), ("helper.py", HELPER)]);
    assert_exit(&p.run(&["build", "."]), 0);
    let artifact = p.path(&format!("__tangent__/{}", artifact_name("model", MODEL)));
    let mtime = std::fs::metadata(&artifact).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("0 generated, 2 reused, 0 failed"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::metadata(&artifact).unwrap().modified().unwrap(),
        mtime
    );
}

#[test]
fn artifacts_are_byte_identical_across_directories() {
    let files = [("pkg/model.py", MODEL), ("pkg/helper.py", HELPER)];
    let a = Project::with_files("ident-a", &files);
    let b = Project::with_files("ident-b-longer-name", &files);
    assert_exit(&a.run(&["build", "."]), 0);
    assert_exit(&b.run(&["build", "pkg"]), 0);
    assert_eq!(a.artifacts(), b.artifacts());
    for rel in a.artifacts() {
        assert_eq!(
            std::fs::read(a.path(&rel)).unwrap(),
            std::fs::read(b.path(&rel)).unwrap(),
            "{rel}"
        );
    }
}

#[test]
fn a_copied_cache_is_reused_elsewhere() {
    let files = [
        ("pkg/model.py", MODEL),
        ("pkg/helper.py", HELPER),
        ("top.py", PARTLY),
    ];
    let a = Project::with_files("copy-a", &files);
    let o = a.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("3 generated, 0 reused, 0 failed, 1 function skipped"),
        "{}",
        stdout(&o)
    );
    // The default cache is <project root>/.tangent/cache; copy it somewhere else.
    let elsewhere = Project::new("copy-cache");
    copy_dir(&a.path(".tangent/cache"), &elsewhere.path("cache"));
    let b = Project::with_files("copy-b", &files);
    let cache = elsewhere.path("cache");
    let o = b.run(&["build", ".", "--cache-dir", cache.to_str().unwrap()]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("0 generated, 3 reused, 0 failed, 1 function skipped"),
        "{}",
        stdout(&o)
    );
    assert!(
        !b.path(".tangent").exists(),
        "the default cache must not be used"
    );
    assert_eq!(a.artifacts(), b.artifacts());
    // TANGENT_CACHE_DIR works the same way.
    let c = Project::with_files("copy-c", &files);
    let o = command(&c.root, &["build", "."])
        .env("TANGENT_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("0 generated, 3 reused"),
        "{}",
        stdout(&o)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn failures_are_reported_and_the_rest_is_built() {
    let p = Project::with_files(
        "failures",
        &[
            ("good.py", MODEL),
            ("bad.py", "def f(x):\n    return x +\n"),
            ("zz_last.py", HELPER),
        ],
    );
    p.write_bytes("binary.py", b"def f(x):\n    return x\xff\xfe\n");
    let unreadable = p.path("locked.py");
    std::fs::write(&unreadable, MODEL).unwrap();
    set_mode(&unreadable, 0o000);
    std::os::unix::fs::symlink(p.path("nowhere.py"), p.path("dangling.py")).unwrap();
    let root = is_root();
    let o = p.run(&["build", "."]);
    set_mode(&unreadable, 0o644);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("bad.py:2:"),
        "syntax error with its location:\n{err}"
    );
    assert!(
        err.contains("binary.py") && err.contains("not valid UTF-8"),
        "{err}"
    );
    assert!(
        err.contains("dangling.py") && err.contains("broken symbolic link"),
        "{err}"
    );
    if root {
        // Root reads the file anyway.
        assert!(
            summary(&o).starts_with("3 generated, 0 reused, 3 failed"),
            "{}",
            stdout(&o)
        );
    } else {
        assert!(
            err.contains("locked.py") && err.contains("cannot read"),
            "{err}"
        );
        assert!(
            summary(&o).starts_with("2 generated, 0 reused, 4 failed"),
            "{}",
            stdout(&o)
        );
    }
    let artifacts = p.artifacts();
    assert!(
        artifacts.contains(&format!("__tangent__/{}", artifact_name("good", MODEL))),
        "{artifacts:?}"
    );
    assert!(
        artifacts.contains(&format!("__tangent__/{}", artifact_name("zz_last", HELPER))),
        "{artifacts:?}"
    );
    assert!(
        !artifacts
            .iter()
            .any(|a| a.contains("bad.") || a.contains("binary.")),
        "{artifacts:?}"
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Root reads files whatever their mode.
fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn ignored_and_environment_files_are_skipped() {
    let p = Project::with_files(
        "skips",
        &[
            ("pkg/model.py", MODEL),
            (".gitignore", "ignored/\nscratch_*.py\n"),
            ("ignored/a.py", MODEL),
            ("pkg/scratch_1.py", MODEL),
            (".venv/lib/site.py", MODEL),
            ("venv/x.py", MODEL),
            ("env/x.py", MODEL),
            ("build/x.py", MODEL),
            ("dist/x.py", MODEL),
            ("node_modules/x.py", MODEL),
            ("lib/site-packages/x.py", MODEL),
            ("pkg/__pycache__/x.py", MODEL),
            (".hidden/x.py", MODEL),
            ("pkg/.secret.py", MODEL),
            ("pkg/model.__grad__.py", MODEL),
            ("notes.txt", "not python"),
        ],
    );
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("1 generated, 0 reused, 0 failed"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        p.artifacts(),
        vec![
            "pkg/__tangent__/".to_string() + &artifact_name("model", MODEL),
            "pkg/model.__grad__.py".to_string(),
        ]
    );
}

#[test]
fn exclude_globs_from_pyproject() {
    let p = Project::with_files(
        "exclude",
        &[
            ("pkg/model.py", MODEL),
            ("pkg/gen/x.py", MODEL),
            ("tests/test_x.py", MODEL),
        ],
    );
    p.write(
        "pyproject.toml",
        "[project]\nname = \"demo\"\n\n[tool.tangent]\nexclude = [\"pkg/gen\", \"test_*.py\"]\n",
    );
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("1 generated, 0 reused, 0 failed"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn out_layout_mirrors_the_tree_with_stable_names() {
    let p = Project::with_files(
        "out",
        &[
            ("src/pkg/model.py", MODEL),
            ("src/pkg/sub/helper.py", HELPER),
        ],
    );
    let o = p.run(&["build", "src", "--out", "gen"]);
    assert_exit(&o, 0);
    assert_eq!(
        p.artifacts(),
        vec![
            "gen/pkg/model.__grad__.py",
            "gen/pkg/sub/helper.__grad__.py"
        ]
    );
    assert_eq!(
        p.read("gen/pkg/model.__grad__.py"),
        expected_module(MODEL, "model.py", true)
    );
    assert_exit(&p.run(&["check", "src", "--out", "gen"]), 0);
    // An edit rewrites the same name.
    let edited = MODEL.replace("z * z", "z * z * z");
    p.write("src/pkg/model.py", &edited);
    let o = p.run(&["check", "src", "--out", "gen"]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o).contains("stale: gen/pkg/model.__grad__.py"),
        "{}",
        stdout(&o)
    );
    assert_exit(&p.run(&["build", "src", "--out", "gen"]), 0);
    assert_eq!(
        p.read("gen/pkg/model.__grad__.py"),
        expected_module(&edited, "model.py", true)
    );
    // A deleted source loses its artifact.
    std::fs::remove_file(p.path("src/pkg/sub/helper.py")).unwrap();
    assert_exit(&p.run(&["build", "src", "--out", "gen"]), 0);
    assert_eq!(p.artifacts(), vec!["gen/pkg/model.__grad__.py"]);
}

#[test]
fn out_and_optimize_from_pyproject() {
    let p = Project::with_files("config", &[("model.py", MODEL)]);
    p.write(
        "pyproject.toml",
        "[tool.tangent]\nout = \"generated\"\noptimize = false\n",
    );
    assert_exit(&p.run(&["build", "."]), 0);
    assert_eq!(
        p.read("generated/model.__grad__.py"),
        expected_module(MODEL, "model.py", false)
    );
    // Flags win.
    assert_exit(&p.run(&["build", ".", "--out", "other", "--optimize"]), 0);
    assert_eq!(
        p.read("other/model.__grad__.py"),
        expected_module(MODEL, "model.py", true)
    );
}

#[test]
fn edits_replace_the_artifact_and_deleted_sources_lose_theirs() {
    let p = Project::with_files("edits", &[("model.py", MODEL), ("helper.py", HELPER)]);
    assert_exit(&p.run(&["build", "."]), 0);
    let edited = MODEL.replace("z * z", "z * z * z");
    p.write("model.py", &edited);
    std::fs::remove_file(p.path("helper.py")).unwrap();
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("1 generated, 0 reused, 0 failed"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        p.artifacts(),
        vec![format!("__tangent__/{}", artifact_name("model", &edited))]
    );
}

#[test]
fn verbose_lists_skipped_functions() {
    let p = Project::with_files("skipped", &[("partly.py", PARTLY)]);
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).ends_with("1 function skipped"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("partly.py:apply"));
    let o = p.run(&["-v", "build", "."]);
    assert_exit(&o, 0);
    let line = stdout(&o)
        .lines()
        .find(|l| l.contains("partly.py:apply"))
        .map(str::to_string);
    assert!(
        line.is_some_and(|l| l.starts_with("skipped ") && l.contains("line 6")),
        "{}",
        stdout(&o)
    );
    assert!(
        p.read(&format!("__tangent__/{}", artifact_name("partly", PARTLY)))
            .contains("def dcube")
    );
}

#[test]
fn quiet_prints_errors_only() {
    let p = Project::with_files("quiet", &[("model.py", MODEL)]);
    let o = p.run(&["build", "-q", "."]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).is_empty() && stderr(&o).is_empty(),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn a_file_path_and_a_missing_path() {
    let p = Project::with_files(
        "paths",
        &[("pkg/model.py", MODEL), ("pkg/helper.py", HELPER)],
    );
    let o = p.run(&["build", "pkg/model.py"]);
    assert_exit(&o, 0);
    assert_eq!(
        p.artifacts(),
        vec![format!("pkg/__tangent__/{}", artifact_name("model", MODEL))]
    );
    let o = p.run(&["build", "pkg", "nowhere"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("nowhere"), "{}", stderr(&o));
    assert_eq!(p.artifacts().len(), 2);
}

// --- check ------------------------------------------------------------------------------

#[test]
fn check_after_build_and_after_an_edit() {
    let p = Project::with_files(
        "check",
        &[("pkg/model.py", MODEL), ("pkg/helper.py", HELPER)],
    );
    let o = p.run(&["check", "."]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o).contains("missing: pkg/__tangent__/"),
        "{}",
        stdout(&o)
    );
    assert!(p.artifacts().is_empty(), "check never writes artifacts");
    assert_exit(&p.run(&["build", "."]), 0);
    let o = p.run(&["check", "."]);
    assert_exit(&o, 0);
    assert!(stdout(&o).starts_with("OK"), "{}", stdout(&o));
    let before = p.artifacts();
    p.write("pkg/model.py", &MODEL.replace("z * z", "z + z"));
    let o = p.run(&["check", "."]);
    assert_exit(&o, 1);
    let out = stdout(&o);
    assert!(out.contains("pkg/model.py"), "{out}");
    assert!(
        out.contains("extra: ") && out.contains("missing: "),
        "{out}"
    );
    assert!(!out.contains("helper"), "{out}");
    assert_eq!(p.artifacts(), before, "check never writes artifacts");
    // A deleted source leaves an extra artifact.
    assert_exit(&p.run(&["build", "."]), 0);
    std::fs::remove_file(p.path("pkg/helper.py")).unwrap();
    let o = p.run(&["check", "."]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o).contains("extra: pkg/__tangent__/helper.__grad__."),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_reports_a_syntax_error() {
    let p = Project::with_files(
        "check-syntax",
        &[("model.py", MODEL), ("bad.py", "def f(:\n")],
    );
    let o = p.run(&["check", "."]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("bad.py:1:"), "{}", stderr(&o));
}

// --- cache ------------------------------------------------------------------------------

#[test]
fn cache_stats_and_clear() {
    let p = Project::with_files("cache", &[("model.py", MODEL), ("helper.py", HELPER)]);
    assert_exit(&p.run(&["build", "."]), 0);
    let o = p.run(&["cache", "stats"]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let entries = field(&out, "entries").parse::<usize>().unwrap();
    assert!(entries >= 2, "{out}");
    assert!(field(&out, "dir").ends_with(".tangent/cache"), "{out}");
    assert_eq!(field(&out, "engine version"), tangent::ENGINE_VERSION);
    assert!(out.contains("size: "), "{out}");
    let o = p.run(&["cache", "clear"]);
    assert_exit(&o, 0);
    let o = p.run(&["cache", "stats"]);
    assert_eq!(field(&stdout(&o), "entries"), "0");
    let o = p.run(&["build", "."]);
    assert!(
        summary(&o).starts_with("2 generated, 0 reused"),
        "{}",
        stdout(&o)
    );
    // A cache named in pyproject.toml.
    p.write(
        "pyproject.toml",
        "[tool.tangent]\ncache-dir = \"elsewhere/cache\"\n",
    );
    assert_exit(&p.run(&["build", "."]), 0);
    let o = p.run(&["cache", "stats"]);
    assert!(
        field(&stdout(&o), "dir").ends_with("elsewhere/cache"),
        "{}",
        stdout(&o)
    );
    assert!(p.path("elsewhere/cache").is_dir());
}

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no `{name}:` in\n{out}"))
        .to_string()
}

#[test]
fn many_files_build_in_parallel_without_a_bar_off_a_terminal() {
    let p = Project::with_files("many", &[]);
    let texts: Vec<String> = (0..60)
        .map(|i| format!("def f{i}(x):\n    return x * {i}.5 * x\n"))
        .collect();
    for (i, t) in texts.iter().enumerate() {
        p.write(&format!("pkg{}/m{i}.py", i % 3), t);
    }
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("60 generated, 0 reused, 0 failed"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).is_empty(),
        "no progress bar when stderr is not a terminal:\n{}",
        stderr(&o)
    );
    for (i, t) in texts.iter().enumerate() {
        let rel = format!(
            "pkg{}/__tangent__/{}",
            i % 3,
            artifact_name(&format!("m{i}"), t)
        );
        assert_eq!(
            p.read(&rel),
            expected_module(t, &format!("m{i}.py"), true),
            "{rel}"
        );
    }
    let o = p.run(&["build", "."]);
    assert!(
        summary(&o).starts_with("0 generated, 60 reused"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn same_text_under_another_name_gets_its_own_header() {
    // The cache key holds no path, but the file name is in the generated header.
    let p = Project::with_files(
        "names",
        &[
            ("a/model.py", MODEL),
            ("b/other.py", MODEL),
            ("c/model.py", MODEL),
        ],
    );
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    // a/model.py and c/model.py share a cache entry; built in parallel, both may miss it.
    let line = summary(&o);
    assert!(
        line.starts_with("2 generated, 1 reused") || line.starts_with("3 generated, 0 reused"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        p.read(&format!("b/__tangent__/{}", artifact_name("other", MODEL))),
        expected_module(MODEL, "other.py", true)
    );
    assert_eq!(
        p.read(&format!("c/__tangent__/{}", artifact_name("model", MODEL))),
        expected_module(MODEL, "model.py", true)
    );
}

#[test]
fn siblings_made_from_the_current_source_are_kept() {
    let p = Project::with_files("siblings", &[("model.py", MODEL)]);
    let current = format!(
        "# {}{}\n# written by someone else\n",
        tangent::SOURCE_HASH_MARKER,
        tangent::source_hash(MODEL)
    );
    let older = format!(
        "# {}{}\n",
        tangent::SOURCE_HASH_MARKER,
        tangent::source_hash("def old(x):\n    return x\n")
    );
    p.write("__tangent__/model.__grad__.0123456789abcdef.py", &current);
    p.write("__tangent__/model.__grad__.fedcba9876543210.py", &older);
    // The import hook's `package.module` names are no module's artifacts here.
    p.write("__tangent__/pkg.model.__grad__.00112233445566aa.py", &older);
    let o = p.run(&["check", "."]);
    assert_exit(&o, 1);
    assert!(
        stdout(&o).contains("extra: __tangent__/model.__grad__.fedcba9876543210.py"),
        "{}",
        stdout(&o)
    );
    assert!(
        !stdout(&o).contains("0123456789abcdef") && !stdout(&o).contains("pkg.model"),
        "{}",
        stdout(&o)
    );
    assert_exit(&p.run(&["build", "."]), 0);
    let mut expected = vec![
        format!("__tangent__/{}", artifact_name("model", MODEL)),
        "__tangent__/model.__grad__.0123456789abcdef.py".to_string(),
        "__tangent__/pkg.model.__grad__.00112233445566aa.py".to_string(),
    ];
    expected.sort();
    assert_eq!(p.artifacts(), expected);
    assert_exit(&p.run(&["check", "."]), 0);
}

#[test]
fn an_unusable_cache_is_skipped_with_one_warning() {
    let p = Project::with_files("bad-cache", &[("model.py", MODEL), ("helper.py", HELPER)]);
    p.write("not-a-dir", "a file where the cache directory should be");
    let o = p.run(&["build", ".", "--cache-dir", "not-a-dir/cache"]);
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert_eq!(err.matches("WARN").count(), 1, "{err}");
    assert!(
        err.contains("not-a-dir/cache") && err.contains("going on without it"),
        "{err}"
    );
    assert!(
        summary(&o).starts_with("2 generated, 0 reused, 0 failed"),
        "{}",
        stdout(&o)
    );
    assert_eq!(p.artifacts().len(), 2);
}

#[test]
fn logging_levels() {
    let p = Project::with_files("logging", &[("model.py", MODEL)]);
    let o = p.run(&["build", "."]);
    assert!(
        stderr(&o).is_empty(),
        "default: warnings only\n{}",
        stderr(&o)
    );
    let o = p.run(&["-v", "build", "."]);
    let err = stderr(&o);
    assert!(err.contains("DEBUG") && err.contains("model.py"), "{err}");
    assert!(!err.contains("salsa"), "salsa stays quiet\n{err}");
    let o = command(&p.root, &["build", "."])
        .env("RUST_LOG", "tangent=debug")
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("DEBUG"),
        "RUST_LOG wins\n{}",
        stderr(&o)
    );
}

#[test]
fn invalid_settings_are_usage_errors() {
    let p = Project::with_files("bad-config", &[("model.py", MODEL)]);
    p.write("pyproject.toml", "[tool.tangent]\noptimize = \"yes\"\n");
    let o = p.run(&["build", "."]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("optimize"), "{}", stderr(&o));
    p.write("pyproject.toml", "[tool.tangent]\nexclude = [\"[\"]\n");
    assert_exit(&p.run(&["check", "."]), 2);
}

// --- packages ---------------------------------------------------------------------------

const PKG_LAYERS: &str = "import numpy as np\n\n\ndef dense(x, W):\n    return np.tanh(x @ W)\n";
const PKG_MODEL: &str = "import numpy as np\nfrom .layers import dense\n\n\ndef loss(x, W):\n    return np.sum(dense(x, W) ** 2)\n";

#[test]
fn calls_across_modules_of_a_package_resolve_and_invalidate() {
    let p = Project::with_files(
        "package",
        &[
            ("pkg/__init__.py", ""),
            ("pkg/layers.py", PKG_LAYERS),
            ("pkg/model.py", PKG_MODEL),
        ],
    );
    let o = p.run(&["build", "-v", "."]);
    assert_exit(&o, 0);
    let model = format!("pkg/__tangent__/{}", artifact_name("model", PKG_MODEL));
    let text = p.read(&model);
    assert!(
        text.contains("from pkg.layers.__grad__ import ddense"),
        "{text}"
    );
    assert!(text.contains("def dloss("), "{text}");
    // Renaming a parameter of the callee changes how the caller calls its derivative: the
    // caller's module is regenerated although its own text did not change.
    std::fs::write(p.path("pkg/layers.py"), PKG_LAYERS.replace("W", "weights")).unwrap();
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(summary(&o).starts_with("2 generated"), "{}", stdout(&o));
    assert_exit(&p.run(&["check", "."]), 0);
}

// --- a full cache disk ---------------------------------------------------------------------

/// A tiny tmpfs as the cache directory (needs root and mount rights; the test says so and
/// passes without checking when it cannot mount).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_cache_disk_warns_and_the_build_goes_on() {
    let files: Vec<(String, String)> = (0..80)
        .map(|i| {
            let text = format!(
                "import numpy as np\n\n\ndef f{i}(x, w):\n    y = np.tanh(x * w) + {i}.0\n    for k in range(3):\n        y = y * 0.5 + np.sin(y)\n    return np.sum(y ** 2)\n"
            );
            (format!("m{i}.py"), text)
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = Project::with_files("fulldisk", &refs);
    let cache = p.path("tiny-cache");
    let Some(_disk) = SmallDisk::mount(&cache, "128k") else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let o = p.run(&["build", "--cache-dir", cache.to_str().unwrap(), "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("80 generated, 0 reused, 0 failed"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("No space left on device") && err.contains("going on"),
        "one clear warning: {err}"
    );
    assert!(
        err.matches("WARN").count() <= 4,
        "not one warning per function: {err}"
    );
    assert_eq!(p.artifacts().len(), 80, "every artifact is written");
}

const WITH_RECIPE: &str = "import numpy as np\nimport tangent\n\n\ndef softplus(x):\n    return np.log1p(np.exp(x))\n\n\n@tangent.adjoint(softplus)\ndef softplus_adjoint(result, x):\n    d[x] = d[result] * SCALE / (1.0 + np.exp(-x))\n\n\ndef loss(w):\n    return np.sum(softplus(w) * 2.0)\n\n\nSCALE = 1.0\n";

#[test]
fn build_uses_the_modules_own_recipes_and_an_edited_recipe_regenerates() {
    let p = Project::with_files("recipes", &[("model.py", WITH_RECIPE)]);
    assert_exit(&p.run(&["build", "."]), 0);
    let text = p.read(&format!(
        "__tangent__/{}",
        artifact_name("model", WITH_RECIPE)
    ));
    assert!(text.contains("# Your recipe (model.py:9)"), "{text}");
    assert!(
        text.contains("def dloss(") && text.contains("def dsoftplus("),
        "{text}"
    );
    assert!(
        !text.contains("def dsoftplus_adjoint("),
        "templates are not differentiated:\n{text}"
    );
    assert_eq!(text, expected_module(WITH_RECIPE, "model.py", true));
    // Only the recipe changes: the gradient that uses it is regenerated, with the new rule.
    let edited = WITH_RECIPE.replace("* SCALE /", "* 2.0 * SCALE /");
    p.write("model.py", &edited);
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("1 generated, 0 reused"),
        "{}",
        stdout(&o)
    );
    let text = p.read(&format!("__tangent__/{}", artifact_name("model", &edited)));
    assert!(text.contains("* 2.0 * SCALE /"), "{text}");
}

#[test]
fn an_invalid_recipe_fails_its_module_with_the_recipe_line() {
    let bad = WITH_RECIPE.replace("d[x] = d[result]", "d[y] = d[result]");
    let p = Project::with_files("bad-recipe", &[("model.py", &bad)]);
    let o = p.run(&["build", "."]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("model.py:11") && err.contains("invalid-recipe"),
        "{err}"
    );
}

const OPS: &str = "import math\nimport numpy\n\n\ndef fancy(x):\n    return 2.0 * numpy.array([math.sin(v) for v in x])\n";
const SHARED_RECIPES: &str = "import numpy as np\nimport tangent\nfrom mylib.ops import fancy\n\n\n@tangent.adjoint(fancy)\ndef fancy_adjoint(result, x):\n    d[x] = d[result] * 2.0 * np.cos(x)\n";
const USES_FANCY: &str = "import numpy\nfrom mylib.ops import fancy\n\n\ndef loss(x):\n    return numpy.sum(fancy(x) * x)\n";

fn shared_recipe_project(name: &str) -> Project {
    Project::with_files(
        name,
        &[
            (
                "pyproject.toml",
                "[tool.tangent]\nrecipes = [\"tools/recipes.py\"]\n",
            ),
            ("mylib/__init__.py", ""),
            ("mylib/ops.py", OPS),
            ("tools/recipes.py", SHARED_RECIPES),
            ("model.py", USES_FANCY),
        ],
    )
}

#[test]
fn shared_recipe_files_apply_to_every_module_and_their_edits_rebuild_all() {
    let p = shared_recipe_project("shared-recipes");
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).contains("0 failed, 0 functions skipped"),
        "{}",
        stdout(&o)
    );
    let model = p.read(&format!(
        "__tangent__/{}",
        artifact_name("model", USES_FANCY)
    ));
    assert!(
        model.contains("# Your recipe (recipes.py:6)") && model.contains("import numpy as np\n"),
        "{model}"
    );
    // The function the recipe is for takes it too, in its own module.
    let ops = p.read(&format!("mylib/__tangent__/{}", artifact_name("ops", OPS)));
    assert!(
        ops.contains("def dfancy(") && ops.contains("# Your recipe (recipes.py:6)"),
        "{ops}"
    );
    // A second build reuses everything; an edited recipe file regenerates everything.
    assert!(
        summary(&p.run(&["build", "."])).starts_with("0 generated"),
        "reuse"
    );
    p.write(
        "tools/recipes.py",
        &SHARED_RECIPES.replace("2.0 * np.cos", "2.0 * 1.0 * np.cos"),
    );
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        summary(&o).starts_with("4 generated, 0 reused"),
        "{}",
        stdout(&o)
    );
    let model = p.read(&format!(
        "__tangent__/{}",
        artifact_name("model", USES_FANCY)
    ));
    assert!(model.contains("2.0 * 1.0 * np.cos"), "{model}");
    // `tangent grad` and `tangent recipes` see the shared recipes too.
    let o = p.run(&["grad", "model.py:loss"]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("Your recipe (recipes.py:6)"),
        "{}",
        stdout(&o)
    );
    let o = p.run(&["recipes", "model.py"]);
    assert!(
        stdout(&o).contains("mylib.ops.fancy") && stdout(&o).contains("yours: recipes.py:6"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_broken_shared_recipe_file_fails_the_build_with_its_location() {
    let p = shared_recipe_project("shared-recipes-bad");
    p.write(
        "tools/recipes.py",
        &SHARED_RECIPES.replace("np.cos(x)", "helper(x)"),
    );
    let o = p.run(&["build", "."]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("recipes.py:7")
            && err.contains("uses `helper`, which its file does not import"),
        "{err}"
    );
    std::fs::remove_file(p.path("tools/recipes.py")).unwrap();
    let o = p.run(&["build", "."]);
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("cannot read the recipe file"),
        "{}",
        stderr(&o)
    );
}

// --- a name defined twice ---------------------------------------------------------------

/// `loss` twice (lines 4 and 11), a class twice (lines 15 and 20).
const REDEFINED: &str = "\
import numpy as np


def loss(x):
    return np.sum(x * 2.0)


first_loss = loss


def loss(x):
    return np.sum(np.sin(x) * x)


class Model:
    def fit(self, x):
        return np.sum(x * 3.0) * self.scale


class Model:
    def fit(self, x):
        return np.sum(x ** 4) * self.scale
";

#[test]
fn a_name_defined_twice_is_warned_about_and_its_last_definition_built() {
    let p = Project::with_files(
        "redefined",
        &[("pkg/model.py", REDEFINED), ("pkg/helper.py", HELPER)],
    );
    for command in ["build", "check"] {
        let o = p.run(&[command, "."]);
        assert_exit(&o, 0);
        let err = stderr(&o);
        let path = std::path::Path::new("pkg")
            .join("model.py")
            .display()
            .to_string();
        let expected = [
            format!(
                "warning: {path}:4: `loss` is defined more than once at the top level ({path}:4, {path}:11); in the gradient module `dloss` belongs to the definition at {path}:11, the one the name is bound to when the module has run"
            ),
            format!(
                "warning: {path}:15: class `Model` is defined more than once at the top level ({path}:15, {path}:20); in the gradient module the derivatives of its methods (`dModel_<method>`) belong to the definition at {path}:20, the one the name is bound to when the module has run"
            ),
        ];
        for warning in &expected {
            assert!(
                err.lines().any(|l| l == warning),
                "{command}: {warning}\n{err}"
            );
        }
        assert_eq!(
            err.lines().count(),
            2,
            "{command}: nothing about helper.py\n{err}"
        );
    }
    let text = p.read(&format!(
        "pkg/__tangent__/{}",
        artifact_name("model", REDEFINED)
    ));
    assert_eq!(text, expected_module(REDEFINED, "model.py", true));
    assert_eq!(text.matches("def dloss(").count(), 1, "{text}");
    assert!(text.contains("# `loss` is defined more than once in model.py (lines 4, 11): this differentiates the definition at model.py:11, the one the name is bound to.\ndef dloss("), "{text}");
    assert!(
        text.contains("# Grad of: return np.sum(np.sin(x) * x)\n") && !text.contains("2.0"),
        "the second `loss`:\n{text}"
    );
    assert!(
        text.contains("# Grad of: return np.sum(x ** 4) * self.scale\n"),
        "the second `Model.fit`:\n{text}"
    );
    assert!(!text.contains("3.0"), "not the first `Model.fit`:\n{text}");
    // Quiet: errors only. A second build reuses the module and warns again.
    let o = p.run(&["build", "-q", "."]);
    assert!(
        stderr(&o).is_empty() && stdout(&o).is_empty(),
        "{}",
        stderr(&o)
    );
    let o = p.run(&["build", "."]);
    assert!(
        summary(&o).starts_with("0 generated, 2 reused"),
        "{}",
        stdout(&o)
    );
    assert_eq!(stderr(&o).matches("warning: ").count(), 2, "{}", stderr(&o));
    // Without the second definitions: no warning, and the artifact of a plain module.
    let plain = REDEFINED
        .replace(
            "def loss(x):\n    return np.sum(np.sin",
            "def other(x):\n    return np.sum(np.sin",
        )
        .replace(
            "class Model:\n    def fit(self, x):\n        return np.sum(x ** 4)",
            "class Other:\n    def fit(self, x):\n        return np.sum(x ** 4)",
        );
    assert!(plain.contains("def other(") && plain.contains("class Other:"));
    p.write("pkg/model.py", &plain);
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let text = p.read(&format!(
        "pkg/__tangent__/{}",
        artifact_name("model", &plain)
    ));
    assert!(
        !text.contains("more than once")
            && text.contains("def dloss(")
            && text.contains("def dModel_fit("),
        "{text}"
    );
}
