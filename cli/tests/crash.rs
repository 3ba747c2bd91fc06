//! Crash safety of `tangent build` / `watch` and of the cache they share: processes killed with
//! SIGKILL at random moments, stores full of garbage or truncated, artifacts edited by hand,
//! a store written by another build of the engine. In every case the next run must be correct:
//! its artifacts byte-identical to those of a clean build in a fresh directory, and `tangent
//! check` satisfied. Timing-based tests loop over several delays (printed seed:
//! `TANGENT_TEST_SEED=<n>` replays them).

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `tangent build .` in a fresh project of `files` and returns its artifacts.
fn clean_build(name: &str, files: &[(String, String)]) -> BTreeMap<String, Vec<u8>> {
    let p = project_of(name, files);
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    artifact_contents(&p)
}

fn spawn_quiet(p: &Project, args: &[&str]) -> Child {
    command(&p.root, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILL (Rust's `Child::kill`) after `delay`, then reap; whether it had already finished.
fn kill_after(mut child: Child, delay: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    let _ = child.wait();
    finished
}

/// A build, then `check`, must give exactly `expected`.
fn assert_recovers(p: &Project, expected: &BTreeMap<String, Vec<u8>>, context: &str) {
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert_same_artifacts(&artifact_contents(p), expected, context);
    let o = p.run(&["check", "."]);
    assert!(
        o.status.success(),
        "{context}: check after the recovery build\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
}

fn write_all(p: &Project, files: &[(String, String)]) {
    for (path, text) in files {
        if p.read(path) != *text {
            p.write(path, text);
        }
    }
}

#[test]
fn sigkill_during_build_at_random_moments_never_leaves_a_wrong_artifact() {
    let mut rng = Rng::from_env_or_clock("sigkill_during_build");
    let t0 = Instant::now();
    let v0 = package_modules(100, 0);
    let v1 = package_modules(100, 3);
    // The references, built meanwhile in fresh directories.
    let (r0, r1) = std::thread::scope(|s| {
        let a = s.spawn(|| clean_build("crash-ref0", &v0));
        let b = s.spawn(|| clean_build("crash-ref1", &v1));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(r0.len(), 101);
    eprintln!("refs: {:?}", t0.elapsed());

    let p = project_of("crash-build", &v0);
    let cold = Instant::now();
    // Cold builds killed twice in a row (the second one starts on what the first left), at
    // delays spread over a cold build's time (about 1.5 s in debug on 2 cores).
    for round in 0..2 {
        let delay = Duration::from_millis(rng.between(5, 1200));
        let finished = kill_after(spawn_quiet(&p, &["build", "."]), delay);
        eprintln!("cold round {round}: killed after {delay:?} (finished first: {finished})");
    }
    assert_recovers(&p, &r0, "after killed cold builds");
    eprintln!("cold phase: {:?}", cold.elapsed());

    // Edits (plain writes: every tenth module), then warm builds killed while regenerating.
    write_all(&p, &v1);
    for round in 0..2 {
        let delay = Duration::from_millis(rng.between(2, 250));
        let finished = kill_after(spawn_quiet(&p, &["build", "."]), delay);
        eprintln!("warm round {round}: killed after {delay:?} (finished first: {finished})");
    }
    assert_recovers(&p, &r1, "after killed warm builds");
    eprintln!("warm done: {:?}", t0.elapsed());

    // Back to the first version, one more kill, and its artifacts come back from the cache.
    write_all(&p, &v0);
    let delay = Duration::from_millis(rng.between(2, 200));
    kill_after(spawn_quiet(&p, &["build", "."]), delay);
    assert_recovers(&p, &r0, "after returning to the first version");
    eprintln!("all done: {:?}", t0.elapsed());
}

/// Editor-style save: temporary file, renamed over.
fn save(p: &Project, rel: &str, text: &str) {
    let target = p.path(rel);
    let tmp = target.with_file_name(format!(
        "{}.tmp~",
        target.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &target).unwrap();
}

#[test]
fn sigkill_of_watch_during_edits_then_build_is_correct() {
    let mut rng = Rng::from_env_or_clock("sigkill_of_watch");
    let n = 30;
    let versions: Vec<Vec<(String, String)>> = (0..4).map(|v| package_modules(n, v)).collect();
    let p = project_of("crash-watch", &versions[0]);
    let mut current = 0;
    for round in 0..3 {
        let child = command(&p.root, &["watch", "."])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Edits start at once (during the initial build) or a little later, and go on until
        // the watcher is killed at a random moment.
        let kill_at = Duration::from_millis(rng.between(50, 900));
        let start = Instant::now();
        let mut child = Some(child);
        let mut i = 0;
        while start.elapsed() < kill_at {
            current = (current + 1) % versions.len();
            let (path, text) = &versions[current][1 + (i * 3) % n];
            if i % 2 == 0 {
                save(&p, path, text)
            } else {
                p.write(path, text)
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(rng.between(0, 15)));
        }
        let mut c = child.take().unwrap();
        let _ = c.kill();
        let _ = c.wait();
        eprintln!("round {round}: watcher killed after {kill_at:?} and {i} saves");
    }
    // The final sources: whatever each file holds now.
    let finals: Vec<(String, String)> = versions[0]
        .iter()
        .map(|(path, _)| (path.clone(), p.read(path)))
        .collect();
    let expected = clean_build("crash-watch-ref", &finals);
    assert_recovers(&p, &expected, "build after killed watchers");
}

fn store_dir(p: &Project) -> std::path::PathBuf {
    p.path(".tangent/cache")
}

fn sled_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn a_store_of_garbage_or_truncated_is_rebuilt_with_a_warning() {
    let files = package_modules(12, 0);
    let expected = clean_build("corrupt-ref", &files);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for damage in ["garbage", "truncated", "empty"] {
        let p = project_of(&format!("corrupt-{damage}"), &files);
        assert_exit(&p.run(&["build", "."]), 0);
        for file in sled_files(&store_dir(&p)) {
            let len = std::fs::metadata(&file).unwrap().len();
            match damage {
                "garbage" => {
                    let bytes: Vec<u8> = (0..len.max(64)).map(|_| rng.next() as u8).collect();
                    std::fs::write(&file, bytes).unwrap();
                }
                "truncated" => std::fs::OpenOptions::new()
                    .write(true)
                    .open(&file)
                    .unwrap()
                    .set_len(len / 3)
                    .unwrap(),
                _ => std::fs::write(&file, b"").unwrap(),
            }
        }
        // The artifacts are damaged too: nothing may be taken from the old files.
        for rel in p.artifacts() {
            std::fs::write(p.path(&rel), "damaged\n").unwrap();
        }
        let o = p.run(&["build", "."]);
        assert_exit(&o, 0);
        // Garbage is always detected (a warning, then an empty store). sled may recover a
        // valid prefix of a truncated log instead: then whatever survived is verified entry by
        // entry and the build is just as correct.
        if damage == "garbage" {
            assert!(
                stderr(&o).contains("unreadable") && stderr(&o).contains("WARN"),
                "{damage}: {}",
                stderr(&o)
            );
        }
        assert_same_artifacts(&artifact_contents(&p), &expected, damage);
        assert_exit(&p.run(&["check", "."]), 0);
        // And the rebuilt store serves the next build.
        let o = p.run(&["build", "."]);
        assert!(
            stdout(&o).contains("0 generated, 13 reused"),
            "{damage}: {}",
            stdout(&o)
        );
    }
}

#[test]
fn damaged_store_entries_are_regenerated_never_served() {
    let files = package_modules(12, 0);
    let expected = clean_build("entries-ref", &files);
    let p = project_of("entries", &files);
    assert_exit(&p.run(&["build", "."]), 0);
    {
        let store = tangent::store::Store::open(&store_dir(&p)).unwrap();
        let keys = store.keys_for_tests();
        assert!(
            keys.len() > 13,
            "module and function entries: {}",
            keys.len()
        );
        for (i, key) in keys.iter().enumerate() {
            let mut raw = store.raw_get_for_tests(key).unwrap();
            // A flipped bit in the payload, a truncated value, one value filed under another key.
            match i % 3 {
                0 if raw.len() > 32 => {
                    let at = raw.len() - 1 - i % (raw.len() - 32);
                    raw[at] ^= 0x20;
                }
                0 => raw.push(b'x'),
                1 => raw.truncate(raw.len() / 2),
                _ => {
                    raw = store
                        .raw_get_for_tests(&keys[(i + 1) % keys.len()])
                        .unwrap()
                }
            }
            store.raw_put_for_tests(key, &raw).unwrap();
        }
        store.flush();
    }
    for rel in p.artifacts() {
        std::fs::remove_file(p.path(&rel)).unwrap();
    }
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(stderr(&o).contains("failed its checksum"), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("13 generated, 0 reused"),
        "{}",
        stdout(&o)
    );
    assert_same_artifacts(&artifact_contents(&p), &expected, "after damaged entries");
}

#[test]
fn a_store_of_another_engine_build_serves_nothing() {
    let files = package_modules(6, 0);
    let p = project_of("other-build", &files);
    assert_exit(&p.run(&["build", "."]), 0);
    let o = p.run(&["cache", "stats"]);
    assert!(
        stdout(&o).contains(&format!("engine build: {}", tangent::ENGINE_FINGERPRINT)),
        "{}",
        stdout(&o)
    );
    {
        // What an engine rebuilt from other code with the same version number recorded.
        let store = tangent::store::Store::open(&store_dir(&p)).unwrap();
        assert_eq!(store.stats().engine_version, tangent::ENGINE_VERSION);
        store
            .set_recorded_build_for_tests("0123456789abcdef0123456789abcdef")
            .unwrap();
    }
    let o = p.run(&["build", "."]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("7 generated, 0 reused"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn artifacts_edited_truncated_or_replaced_by_hand_are_reported_and_rebuilt() {
    let files = vec![
        ("model.py".to_string(), MODEL.to_string()),
        ("helper.py".to_string(), HELPER.to_string()),
        ("pkg/partly.py".to_string(), PARTLY.to_string()),
    ];
    for out in [false, true] {
        let args: &[&str] = if out {
            &["build", ".", "--out", "gen"]
        } else {
            &["build", "."]
        };
        let check: Vec<&str> = std::iter::once("check")
            .chain(args[1..].iter().copied())
            .collect();
        let name = if out { "tamper-out" } else { "tamper" };
        let p = project_of(name, &files);
        assert_exit(&p.run(args), 0);
        let expected = artifact_contents(&p);
        let rels: Vec<String> = expected.keys().cloned().collect();
        assert_eq!(rels.len(), 3);
        // Edited (a line appended), truncated, replaced by another artifact.
        std::fs::write(
            p.path(&rels[0]),
            [
                expected[&rels[0]].as_slice(),
                b"import os; os.system('x')\n",
            ]
            .concat(),
        )
        .unwrap();
        std::fs::write(
            p.path(&rels[1]),
            &expected[&rels[1]][..expected[&rels[1]].len() / 2],
        )
        .unwrap();
        std::fs::write(p.path(&rels[2]), &expected[&rels[0]]).unwrap();
        let o = p.run(&check);
        assert_exit(&o, 1);
        for rel in &rels {
            assert!(
                stdout(&o).contains(&format!("stale: {rel}")),
                "{rel}:\n{}",
                stdout(&o)
            );
        }
        // Build regenerates each one, although the cache has them all.
        let o = p.run(args);
        assert_exit(&o, 0);
        assert!(
            stdout(&o).contains("0 generated, 3 reused"),
            "{}",
            stdout(&o)
        );
        assert_same_artifacts(&artifact_contents(&p), &expected, name);
        assert_exit(&p.run(&check), 0);
    }
}
