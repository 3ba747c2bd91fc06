//! Security properties of `tangent build` / `check` / `watch` / `grad` / `recipes`:
//! generation never runs user code; what Tangent creates is never world-writable, whatever the
//! umask; symbolic links and configured paths never take writes (or reads of sources) out of
//! the project or the output directory.

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;

/// A module whose top level and function bodies would leave a marker file, or end the process
/// with status 97, if anything ran them.
fn hostile_module(marker: &Path) -> String {
    let m = marker.display();
    format!(
        "import os\nimport numpy as np\n\nopen({m:?} + '.top', 'w').close()\nos._exit(97)\n\n\n\
         def f(x):\n    open({m:?} + '.f', 'w').close()\n    os._exit(97)\n    return np.sin(x) * x\n\n\n\
         def g(x, y):\n    __import__('os').system('touch ' + {m:?} + '.g')\n    return f(x) * y\n\n\n\
         class C:\n    open({m:?} + '.class', 'w').close()\n\n\n\
         @tangent.adjoint(f)\ndef f_adjoint(result, x):\n    d[x] = d[result] * np.cos(x)\n"
    )
}

fn markers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("marker"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn generation_never_runs_user_code() {
    let outside = Project::new("hostile-markers");
    let marker = outside.path("marker");
    let module = format!("import tangent\n{}", hostile_module(&marker));
    let recipes = format!(
        "import numpy as np\nimport tangent\nfrom lib import h\n\nopen({:?}, 'w').close()\n\n\n@tangent.adjoint(h)\ndef h_adjoint(result, x):\n    d[x] = d[result]\n",
        marker.display().to_string() + ".shared"
    );
    let p = Project::with_files(
        "hostile",
        &[
            (
                "pyproject.toml",
                "[tool.tangent]\nrecipes = [\"tools/recipes.py\"]\n",
            ),
            ("tools/recipes.py", &recipes),
            ("lib.py", "def h(x):\n    return x\n"),
            ("model.py", &module),
        ],
    );
    assert_exit(&p.run(&["build", "."]), 0);
    assert_exit(&p.run(&["check", "."]), 0);
    for f in ["f", "g"] {
        for mode in ["reverse", "forward", "hvp"] {
            // Some of these cannot be differentiated (exit 1 with a diagnostic): the point is
            // that nothing ran (status 97) and no marker appeared.
            let o = p.run(&["grad", &format!("model.py:{f}"), "--mode", mode]);
            assert!(
                matches!(o.status.code(), Some(0 | 1)),
                "{f} {mode}: {:?}\n{}",
                o.status,
                stderr(&o)
            );
        }
    }
    assert_exit(&p.run(&["grad", "model.py:f"]), 0);
    assert_exit(&p.run(&["recipes", "model.py"]), 0);
    // watch: its initial build and a regeneration after an edit.
    let mut child = command(&p.root, &["watch", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let edited = module.replace("np.sin(x) * x", "np.cos(x) * x");
    let artifact = p.path(&format!("__tangent__/{}", artifact_name("model", &edited)));
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let started = wait_until(Duration::from_secs(15), || {
        p.path(&format!("__tangent__/{}", artifact_name("model", &module)))
            .is_file()
    });
    p.write("model.py", &edited);
    let regenerated = wait_until(Duration::from_secs(15), || artifact.is_file());
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    assert!(
        started && regenerated,
        "the watcher did not build the hostile module"
    );
    assert_eq!(
        markers(&outside.root),
        Vec::<String>::new(),
        "user code ran"
    );
}

/// Runs `tangent args...` in `dir` with umask 0.
fn run_with_umask_0(dir: &Path, args: &[&str]) -> Output {
    let mut c = command(dir, args);
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    c.output().unwrap()
}

/// Every entry below `dir` (not following links) whose mode lets group or others write.
fn writable_by_others(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.permissions().mode() & 0o022 != 0 {
            out.push(format!(
                "{} {:o}",
                e.path().display(),
                meta.permissions().mode() & 0o777
            ));
        }
        if meta.is_dir() {
            writable_by_others(&e.path(), out);
        }
    }
}

#[test]
fn files_and_directories_are_private_under_umask_0() {
    let p = Project::with_files(
        "umask",
        &[("pkg/model.py", MODEL), ("pkg/deep/helper.py", HELPER)],
    );
    // The sources are the test's (written with its own umask): only what Tangent made counts.
    let o = run_with_umask_0(&p.root, &["build", "."]);
    assert_exit(&o, 0);
    let o = run_with_umask_0(
        &p.root,
        &[
            "build",
            ".",
            "--out",
            "gen/nested",
            "--cache-dir",
            "caches/one",
        ],
    );
    assert_exit(&o, 0);
    for made in [
        ".tangent",
        "pkg/__tangent__",
        "pkg/deep/__tangent__",
        "gen",
        "caches",
    ] {
        assert!(p.path(made).exists(), "{made}");
        let mut bad = Vec::new();
        let meta = std::fs::metadata(p.path(made)).unwrap();
        if meta.permissions().mode() & 0o022 != 0 {
            bad.push(format!("{made} {:o}", meta.permissions().mode() & 0o777));
        }
        writable_by_others(&p.path(made), &mut bad);
        assert!(bad.is_empty(), "writable by others under umask 0: {bad:?}");
    }
    // The cache is private to the user.
    let cache = std::fs::metadata(p.path(".tangent/cache"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(cache, 0o700);
    let artifact = p.path(&format!(
        "pkg/__tangent__/{}",
        artifact_name("model", MODEL)
    ));
    assert_eq!(
        std::fs::metadata(artifact).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

/// A directory outside every project of the test, and its entries (to see nothing changed).
fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    fn walk(root: &Path, dir: &Path, v: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                v.push((rel + "/", Vec::new()));
                walk(root, &e.path(), v);
            } else {
                v.push((rel, std::fs::read(e.path()).unwrap_or_default()));
            }
        }
    }
    walk(dir, dir, &mut v);
    v.sort();
    v
}

#[test]
fn symbolic_links_never_take_writes_out_of_the_output_directory() {
    let outside = Project::new("links-outside");
    outside.write("victim.py", "def important(x):\n    return x\n");
    outside.write(
        "model.__grad__.0123456789abcdef.py",
        "# an older artifact's name, but not ours\n",
    );
    outside.write("secret.py", "SECRET-TOKEN-123 is not python (\n");
    let before = listing(&outside.root);

    let p = Project::with_files(
        "links",
        &[
            ("src/model.py", MODEL),
            ("src/sub/helper.py", HELPER),
            ("src/inner.py", HELPER),
        ],
    );
    // A mirrored directory under --out that is a link out of it.
    std::fs::create_dir_all(p.path("gen")).unwrap();
    symlink(&outside.root, p.path("gen/sub")).unwrap();
    // The artifact's own place is a link to a file outside.
    symlink(outside.path("victim.py"), p.path("gen/model.__grad__.py")).unwrap();
    // A linked source file pointing outside (and one pointing inside), a linked directory, a
    // link loop.
    symlink(outside.path("secret.py"), p.path("src/leak.py")).unwrap();
    symlink(p.path("src/inner.py"), p.path("src/alias.py")).unwrap();
    symlink(&outside.root, p.path("src/linked_dir")).unwrap();
    symlink(p.path("src/loop.py"), p.path("src/loop.py")).unwrap();

    let o = p.run(&["build", "src", "--out", "gen"]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("gen/sub is a symbolic link"), "{err}");
    assert!(
        err.contains("leak.py: skipped: a symbolic link") && err.contains("outside the project"),
        "{err}"
    );
    assert!(
        !err.contains("SECRET"),
        "a file outside the project was read:\n{err}"
    );
    assert!(
        err.contains("loop.py") && err.contains("cannot read"),
        "{err}"
    );
    assert_eq!(
        listing(&outside.root),
        before,
        "something outside the output directory changed"
    );
    // The link at the artifact's place was replaced by the artifact (its target untouched).
    let artifact = p.path("gen/model.__grad__.py");
    assert!(
        !std::fs::symlink_metadata(&artifact)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(&artifact).unwrap(),
        expected_module(MODEL, "model.py", true)
    );
    assert!(
        p.path("gen/alias.__grad__.py").is_file(),
        "a link inside the project is built"
    );
    assert!(!p.path("gen/leak.__grad__.py").exists() && !p.path("gen/linked_dir").exists());

    // Beside the sources: a `__tangent__` that is a link out of the tree is refused, and
    // neither written through nor cleaned through.
    let q = Project::with_files(
        "links-beside",
        &[("model.py", MODEL), ("ok/helper.py", HELPER)],
    );
    symlink(&outside.root, q.path("__tangent__")).unwrap();
    let o = q.run(&["build", "."]);
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("__tangent__ is a symbolic link"),
        "{}",
        stderr(&o)
    );
    assert!(
        q.path(&format!(
            "ok/__tangent__/{}",
            artifact_name("helper", HELPER)
        ))
        .is_file()
    );
    assert_eq!(
        listing(&outside.root),
        before,
        "something outside the project changed"
    );
    let o = q.run(&["check", "."]);
    assert_exit(&o, 1);
    assert_eq!(listing(&outside.root), before);
}

#[test]
fn an_output_directory_that_is_a_link_is_written_where_it_points() {
    // The user named DIR: when it is itself a link, artifacts go where it points (documented).
    let target = Project::new("out-target");
    let p = Project::with_files("out-link", &[("model.py", MODEL)]);
    symlink(&target.root, p.path("gen")).unwrap();
    assert_exit(&p.run(&["build", ".", "--out", "gen"]), 0);
    assert!(target.path("model.__grad__.py").is_file());
    assert_exit(&p.run(&["check", ".", "--out", "gen"]), 0);
}

#[test]
fn configured_paths_may_not_lead_out_of_the_project() {
    let p = Project::with_files("dotdot", &[("model.py", MODEL)]);
    for setting in [
        "out = \"../gen\"",
        "out = \"/tmp/tangent-abs-out\"",
        "cache-dir = \"a/../../c\"",
    ] {
        p.write("pyproject.toml", &format!("[tool.tangent]\n{setting}\n"));
        let o = p.run(&["build", "."]);
        assert_exit(&o, 2);
        assert!(
            stderr(&o).contains("leads outside the project"),
            "{setting}: {}",
            stderr(&o)
        );
    }
    assert!(!p.root.parent().unwrap().join("gen").exists());
    // Inside is fine, `..` included; and the command line may name any directory.
    p.write("pyproject.toml", "[tool.tangent]\nout = \"x/../gen\"\n");
    assert_exit(&p.run(&["build", "."]), 0);
    assert!(p.path("gen/model.__grad__.py").is_file());
    let elsewhere = Project::new("dotdot-cli");
    let o = p.run(&["build", ".", "--out", elsewhere.root.to_str().unwrap()]);
    assert_exit(&o, 0);
    assert!(elsewhere.path("model.__grad__.py").is_file());
}

#[test]
fn a_linked_default_cache_directory_is_not_used() {
    let outside = Project::new("cache-outside");
    let p = Project::with_files("cache-link", &[("model.py", MODEL)]);
    symlink(&outside.root, p.path(".tangent")).unwrap();
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("symbolic link") && stderr(&o).contains("without the cache"),
        "{}",
        stderr(&o)
    );
    assert_eq!(listing(&outside.root), Vec::<(String, Vec<u8>)>::new());
}

#[test]
fn watch_ignores_sources_reached_through_a_linked_directory() {
    let outside = Project::new("watch-link-outside");
    let p = Project::with_files("watch-link", &[("model.py", MODEL)]);
    symlink(&outside.root, p.path("linked")).unwrap();
    let mut child = command(&p.root, &["watch", "."])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = p.path(&format!("__tangent__/{}", artifact_name("model", MODEL)));
    let up = wait_until(Duration::from_secs(15), || first.is_file());
    outside.write("far.py", HELPER);
    p.write("linked/near.py", HELPER); // through the link: the same outside directory
    // A positive control after them: once it is built, the events before it were seen.
    p.write("control.py", HELPER);
    let control = p.path(&format!("__tangent__/{}", artifact_name("control", HELPER)));
    let seen = wait_until(Duration::from_secs(15), || control.is_file());
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let _ = child.wait();
    assert!(up && seen, "the watcher did not run");
    let names: Vec<PathBuf> = std::fs::read_dir(&outside.root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        !outside.path("__tangent__").exists(),
        "the watcher wrote through the linked directory: {names:?}"
    );
}

#[test]
fn watch_of_a_path_that_is_itself_a_link_follows_it() {
    // Links below the PATHs are not followed, but a PATH the user names may be one.
    let p = Project::with_files("watch-root-link", &[("real/model.py", MODEL)]);
    symlink(p.path("real"), p.path("link")).unwrap();
    let mut child = command(&p.root, &["watch", "link"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = p.path(&format!(
        "real/__tangent__/{}",
        artifact_name("model", MODEL)
    ));
    let up = wait_until(Duration::from_secs(15), || first.is_file());
    p.write("real/fresh.py", HELPER);
    let fresh = p.path(&format!(
        "real/__tangent__/{}",
        artifact_name("fresh", HELPER)
    ));
    let seen = wait_until(Duration::from_secs(15), || fresh.is_file());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        up && seen,
        "a save under a linked PATH was not seen (initial build: {up})"
    );
}
