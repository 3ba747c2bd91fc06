//! `tangent watch` under load: a thousand saves of one file as fast as the test can write them
//! (editor-style saves and plain overwrites, no sleeps). After the last one, the artifacts must
//! be exactly those of a fresh build of the final sources. `TANGENT_LOAD_SAVES=N` changes the
//! number of saves (e.g. 20000 for a long run).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn version(k: usize) -> String {
    // Sizes vary too, so that nothing can rely on mtime + size.
    format!(
        "import numpy as np\n\n\ndef square_sum(x, y):\n    z = x * y{}\n    return np.sum(z * z) * {k}.0\n",
        " + 0.5".repeat(k % 3)
    )
}

#[test]
fn a_thousand_rapid_saves_end_with_the_artifact_of_the_last_one() {
    let saves: usize = std::env::var("TANGENT_LOAD_SAVES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let p = Project::with_files(
        "load-saves",
        &[("model.py", &version(0)), ("other.py", HELPER)],
    );
    let mut child = command(&p.root, &["watch", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr_pipe).unwrap_or_default());
    let first = p.path(&format!(
        "__tangent__/{}",
        artifact_name("model", &version(0))
    ));
    assert!(
        wait_until(Duration::from_secs(15), || first.is_file()),
        "the watcher did not start"
    );

    let target = p.path("model.py");
    let tmp = p.path(".model.py.swp");
    let mut rng = Rng::from_env_or_clock("rapid_saves");
    let start = Instant::now();
    // A burst with no pause at all, then saves with tiny random pauses (0-2 ms), so that
    // regenerations run while later saves are being written.
    let paused = saves / 4;
    for k in 1..=saves {
        let text = version(k);
        if k % 2 == 0 {
            std::fs::write(&tmp, &text).unwrap();
            std::fs::rename(&tmp, &target).unwrap();
        } else {
            std::fs::write(&target, &text).unwrap();
        }
        if k > saves - paused {
            std::thread::sleep(Duration::from_micros(rng.between(0, 2000)));
        }
    }
    let wrote = start.elapsed();
    let last = version(saves);
    let expected = {
        let reference = Project::with_files(
            "load-saves-ref",
            &[("model.py", &last), ("other.py", HELPER)],
        );
        assert_exit(&reference.run(&["build", "."]), 0);
        artifact_contents(&reference)
    };
    let settled = wait_until(Duration::from_secs(20), || {
        artifact_contents(&p) == expected
    });
    let caught_up = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    eprintln!("{saves} saves written in {wrote:?}; artifacts settled after {caught_up:?}");
    if !settled {
        assert_same_artifacts(
            &artifact_contents(&p),
            &expected,
            &format!(
                "after {saves} saves\n--- watch stdout (tail)\n{}\n--- watch stderr (tail)\n{}",
                tail(&out),
                tail(&err)
            ),
        );
    }
    assert!(!err.contains("panicked"), "{}", tail(&err));
    assert_exit(&p.run(&["check", "."]), 0);
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
