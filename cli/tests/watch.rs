//! `tangent watch` as a child process on a temporary project: every change is awaited by
//! polling the disk (or the watcher's output) with a timeout, never by fixed sleeps.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// Generous: a loaded CI machine may be slow, and polling returns as soon as it holds.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The watcher, with its stdout and stderr collected by threads; killed if the test fails.
struct Watcher {
    child: Option<Child>,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

impl Watcher {
    fn start(dir: &Path, args: &[&str]) -> Watcher {
        // `-v`: the watcher's debug log is shown when a test fails.
        let mut all = vec!["-v", "watch"];
        all.extend_from_slice(args);
        let mut child = command(dir, &all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let (o, e) = (Arc::clone(&out), Arc::clone(&err));
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut s = o.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                e.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let w = Watcher {
            child: Some(child),
            out,
            err,
        };
        w.wait_for_stdout("watching ");
        w
    }

    fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    fn context(&self) -> String {
        format!(
            "--- watcher stdout\n{}\n--- watcher stderr\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    fn wait_for_stdout(&self, needle: &str) {
        let ok = wait_until(TIMEOUT, || self.stdout().contains(needle));
        assert!(ok, "no `{needle}` from the watcher\n{}", self.context());
    }

    fn wait_for_stderr(&self, needle: &str) {
        let ok = wait_until(TIMEOUT, || self.stderr().contains(needle));
        assert!(ok, "no `{needle}` from the watcher\n{}", self.context());
    }

    fn wait_for(&self, what: &str, cond: impl FnMut() -> bool) {
        assert!(
            wait_until(TIMEOUT, cond),
            "timed out waiting for {what}\n{}",
            self.context()
        );
    }

    /// Sends SIGINT (Ctrl-C) and returns the exit code.
    fn interrupt(mut self) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGINT);
        }
        let mut status = None;
        let exited = wait_until(TIMEOUT, || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        if !exited {
            let _ = child.kill();
            panic!("the watcher did not stop on SIGINT\n{}", self.context());
        }
        status.unwrap().code()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes `text` to a temporary file in the same directory, then renames it over `rel`, as
/// editors do.
fn editor_save(p: &Project, rel: &str, text: &str) {
    let target = p.path(rel);
    let tmp = target.with_file_name(format!(
        ".{}.swp",
        target.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &target).unwrap();
}

fn beside(p: &Project, dir: &str, stem: &str, text: &str) -> std::path::PathBuf {
    let dir = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    p.path(&format!("{dir}__tangent__/{}", artifact_name(stem, text)))
}

fn holds(path: &Path, text: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t == text)
}

#[test]
fn watch_follows_edits_new_directories_deletions_and_errors() {
    let p = Project::with_files(
        "watch",
        &[("pkg/model.py", MODEL), ("pkg/helper.py", HELPER)],
    );
    let w = Watcher::start(&p.root, &["."]);
    assert!(
        w.stdout().contains("2 generated, 0 reused, 0 failed"),
        "{}",
        w.context()
    );
    assert!(beside(&p, "pkg", "model", MODEL).is_file());

    // A plain write.
    let v2 = MODEL.replace("z * z", "z * z * z");
    p.write("pkg/model.py", &v2);
    let a2 = beside(&p, "pkg", "model", &v2);
    w.wait_for("the edited module", || {
        holds(&a2, &expected_module(&v2, "model.py", true))
    });
    w.wait_for("the old artifact to go", || {
        !beside(&p, "pkg", "model", MODEL).exists()
    });
    w.wait_for_stdout("regenerated pkg/model.py");
    let line = w
        .stdout()
        .lines()
        .find(|l| l.starts_with("regenerated pkg/model.py"))
        .unwrap()
        .to_string();
    assert!(
        line.ends_with(" ms)"),
        "one line per module, with its time: {line}"
    );

    // An editor-style save: temporary file renamed over the source.
    let v3 = MODEL.replace("z * z", "z + z");
    editor_save(&p, "pkg/model.py", &v3);
    let a3 = beside(&p, "pkg", "model", &v3);
    w.wait_for("the module after a rename-over save", || {
        holds(&a3, &expected_module(&v3, "model.py", true))
    });
    w.wait_for("the previous artifact to go", || !a2.exists());

    // A nested directory created with a file written right away.
    p.write("pkg/deep/er/fresh.py", HELPER);
    let fresh = beside(&p, "pkg/deep/er", "fresh", HELPER);
    w.wait_for("the module of a file in a new nested directory", || {
        holds(&fresh, &expected_module(HELPER, "fresh.py", true))
    });

    // A deleted source deletes its artifact.
    let helper = beside(&p, "pkg", "helper", HELPER);
    assert!(helper.is_file());
    std::fs::remove_file(p.path("pkg/helper.py")).unwrap();
    w.wait_for("the artifact of a deleted source to go", || {
        !helper.exists()
    });
    w.wait_for_stdout("removed ");

    // A syntax error keeps the last good artifact; the next good save recovers.
    editor_save(&p, "pkg/model.py", "def square_sum(x, y:\n    return x\n");
    w.wait_for_stderr("--> pkg/model.py:2:");
    w.wait_for_stderr("keeping the last good artifact");
    assert!(
        holds(&a3, &expected_module(&v3, "model.py", true)),
        "the last good artifact is kept"
    );
    let v4 = MODEL.replace("z * z", "2.0 * z");
    p.write("pkg/model.py", &v4);
    let a4 = beside(&p, "pkg", "model", &v4);
    w.wait_for("recovery after the syntax error", || {
        holds(&a4, &expected_module(&v4, "model.py", true))
    });
    w.wait_for("the artifact kept during the error to go", || !a3.exists());

    // A binary .py is reported, not fatal.
    p.write_bytes("pkg/blob.py", b"\x00\xff\xfe binary");
    w.wait_for_stderr("error[T008 invalid-input]: the file is not valid UTF-8");
    w.wait_for_stderr("--> pkg/blob.py:1:2");
    let v5 = MODEL.replace("z * z", "z * 3.0");
    p.write("pkg/model.py", &v5);
    w.wait_for("a regeneration after the binary file", || {
        beside(&p, "pkg", "model", &v5).is_file()
    });

    // Ignored places stay ignored.
    p.write(".venv/lib/x.py", MODEL);
    p.write("pkg/__pycache__/y.py", MODEL);

    // While the watcher holds the store, a build goes on without it.
    let o = p.run(&["build", "."]);
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("in use by another process"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("error[T008 invalid-input]: the file is not valid UTF-8")
            && stderr(&o).contains("--> pkg/blob.py:1:2"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("2 generated, 0 reused, 1 failed"),
        "{}",
        stdout(&o)
    );

    assert_eq!(w.interrupt(), Some(0));
    assert!(!p.path(".venv/lib/__tangent__").exists());
    assert!(!p.path("pkg/__pycache__/__tangent__").exists());
}

#[test]
fn watch_with_out_dir_uses_stable_names() {
    let p = Project::with_files("watch-out", &[("src/model.py", MODEL)]);
    let w = Watcher::start(&p.root, &["src", "--out", "gen"]);
    let artifact = p.path("gen/model.__grad__.py");
    assert!(
        holds(&artifact, &expected_module(MODEL, "model.py", true)),
        "{}",
        w.context()
    );
    let v2 = MODEL.replace("z * z", "z * z * z");
    editor_save(&p, "src/model.py", &v2);
    w.wait_for("the stable artifact to be rewritten", || {
        holds(&artifact, &expected_module(&v2, "model.py", true))
    });
    p.write("src/sub/helper.py", HELPER);
    let helper = p.path("gen/sub/helper.__grad__.py");
    w.wait_for("a new module in a new directory", || helper.is_file());
    std::fs::remove_dir_all(p.path("src/sub")).unwrap();
    w.wait_for("the artifact of a removed directory to go", || {
        !helper.exists()
    });
    assert_eq!(w.interrupt(), Some(0));
    assert!(
        p.artifacts().iter().all(|a| a.starts_with("gen/")),
        "{:?}",
        p.artifacts()
    );
}

#[test]
fn watch_regenerates_everything_when_a_shared_recipe_file_changes() {
    let recipes = "import numpy as np\nimport tangent\nfrom mylib.ops import fancy\n\n\n@tangent.adjoint(fancy)\ndef fancy_adjoint(result, x):\n    d[x] = d[result] * 2.0 * np.cos(x)\n";
    let model = "import numpy\nfrom mylib.ops import fancy\n\n\ndef loss(x):\n    return numpy.sum(fancy(x) * x)\n";
    let p = Project::with_files(
        "watch-recipes",
        &[
            (
                "pyproject.toml",
                "[tool.tangent]\nrecipes = [\"tools/recipes.py\"]\n",
            ),
            ("mylib/__init__.py", ""),
            (
                "mylib/ops.py",
                "import numpy\n\n\ndef fancy(x):\n    return 2.0 * numpy.sin(x)\n",
            ),
            ("tools/recipes.py", recipes),
            ("model.py", model),
        ],
    );
    let w = Watcher::start(&p.root, &["."]);
    let artifact = beside(&p, "", "model", model);
    assert!(
        std::fs::read_to_string(&artifact)
            .unwrap()
            .contains("2.0 * np.cos"),
        "{}",
        w.context()
    );
    editor_save(
        &p,
        "tools/recipes.py",
        &recipes.replace("2.0 * np.cos", "3.0 * np.cos"),
    );
    w.wait_for("the model rebuilt with the edited recipe", || {
        std::fs::read_to_string(&artifact).is_ok_and(|t| t.contains("3.0 * np.cos"))
    });
}

/// A `tangent build` that read an older text, running beside the watcher, writes that text's
/// artifact and removes the watcher's newer one as stale; the watcher must notice and put the
/// current artifact back (and remove the outdated one), or the tree stays wrong until the next
/// save.
#[test]
fn watch_restores_artifacts_another_process_replaced() {
    let p = Project::with_files("watch-restore", &[("pkg/model.py", MODEL)]);
    let w = Watcher::start(&p.root, &["."]);
    let current = beside(&p, "pkg", "model", MODEL);
    let expected = expected_module(MODEL, "model.py", true);
    assert!(holds(&current, &expected), "{}", w.context());

    // What the racing build leaves: the artifact of an older text, the current one gone.
    let older = MODEL.replace("z * z", "z + z");
    let outdated = beside(&p, "pkg", "model", &older);
    std::fs::write(&outdated, expected_module(&older, "model.py", true)).unwrap();
    std::fs::remove_file(&current).unwrap();
    w.wait_for(
        "the current artifact to come back and the outdated one to go",
        || holds(&current, &expected) && !outdated.exists(),
    );
    assert!(w.stdout().contains("restored "), "{}", w.context());

    // Tampered in place: rewritten to what the source gives.
    std::fs::write(&current, "raise SystemExit('tampered')\n").unwrap();
    w.wait_for("the tampered artifact to be rewritten", || {
        holds(&current, &expected)
    });
    let check = command(&p.root, &["check", "."]).output().unwrap();
    assert!(
        check.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&check.stderr),
        w.context()
    );
    assert_eq!(w.interrupt(), Some(0));
}
