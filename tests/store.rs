//! The persistent artifact store (`tangent::store`), on real directories.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tangent::store::{self, Store, StoreError};

fn k(name: &str) -> [u8; 32] {
    store::key(&[b"test", name.as_bytes()])
}

/// Runs `f` with a subscriber that records WARN messages; returns its result and them.
fn capture_warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata};

    struct Warnings(Arc<Mutex<Vec<String>>>);
    struct Message(String);
    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }
    impl tracing::Subscriber for Warnings {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            if *event.metadata().level() == Level::WARN {
                let mut m = Message(String::new());
                event.record(&mut m);
                self.0.lock().unwrap().push(m.0);
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = tracing::subscriber::with_default(Warnings(seen.clone()), f);
    let seen = seen.lock().unwrap().clone();
    (out, seen)
}

#[test]
fn round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.get(&k("a")), None);
    store.put(&k("a"), "def df(x):\n    return 1.0\n").unwrap();
    store.put(&k("b"), "").unwrap();
    assert_eq!(
        store.get(&k("a")).as_deref(),
        Some("def df(x):\n    return 1.0\n")
    );
    assert_eq!(store.get(&k("b")).as_deref(), Some(""));
    store.put(&k("a"), "replaced é ∂").unwrap();
    assert_eq!(store.get(&k("a")).as_deref(), Some("replaced é ∂"));

    let big = "x = 1\n".repeat(100_000);
    store.put(&k("big"), &big).unwrap();
    assert_eq!(store.get(&k("big")).as_deref(), Some(big.as_str()));

    let stats = store.stats();
    assert_eq!(stats.entries, 3);
    assert!(stats.bytes > 0);
    assert_eq!(stats.dir, dir);
    assert_eq!(stats.engine_version, tangent::ENGINE_VERSION);
    assert_eq!(stats.recipe_hash, tangent::recipes::recipe_set_hash());

    store.clear().unwrap();
    assert_eq!(store.get(&k("a")), None);
    assert_eq!(store.stats().entries, 0);
    // The versions survive a clear.
    assert_eq!(store.stats().engine_version, tangent::ENGINE_VERSION);
}

#[test]
fn reopen_after_drop_keeps_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    {
        let store = Store::open(&dir).unwrap();
        store.put(&k("kept"), "value").unwrap();
        store.flush();
    }
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.get(&k("kept")).as_deref(), Some("value"));
    drop(store);
    // Dropping without an explicit flush keeps entries too (Drop flushes).
    {
        let store = Store::open(&dir).unwrap();
        store.put(&k("unflushed"), "v2").unwrap();
    }
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.get(&k("kept")).as_deref(), Some("value"));
    assert_eq!(store.get(&k("unflushed")).as_deref(), Some("v2"));
}

#[test]
fn second_open_in_the_same_process_is_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let first = Store::open(&dir).unwrap();
    first.put(&k("a"), "1").unwrap();
    let start = Instant::now();
    let second = Store::open(&dir);
    assert!(matches!(second, Err(StoreError::Busy)), "{second:?}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    // Busy never damages the store that holds the lock.
    assert_eq!(first.get(&k("a")).as_deref(), Some("1"));
}

#[test]
fn version_mismatch_drops_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let current_recipes = tangent::recipes::recipe_set_hash();

    // Another engine version.
    {
        let store = Store::open(&dir).unwrap();
        store.put(&k("a"), "old engine's code").unwrap();
        store
            .set_recorded_versions_for_tests("0.0.0-old", &current_recipes)
            .unwrap();
    }
    {
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.get(&k("a")), None);
        let stats = store.stats();
        assert_eq!(stats.entries, 0);
        assert_eq!(stats.engine_version, tangent::ENGINE_VERSION);
        assert_eq!(stats.recipe_hash, current_recipes);
    }

    // Same engine version, other recipes.
    {
        let store = Store::open(&dir).unwrap();
        store.put(&k("b"), "old recipes' code").unwrap();
        store
            .set_recorded_versions_for_tests(tangent::ENGINE_VERSION, "another-recipe-set")
            .unwrap();
    }
    {
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.get(&k("b")), None);
        assert_eq!(store.stats().entries, 0);
        assert_eq!(store.stats().recipe_hash, current_recipes);
        store.put(&k("c"), "current").unwrap();
    }
    // The new versions were recorded: the next open keeps what was written.
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.get(&k("c")).as_deref(), Some("current"));
}

#[test]
fn another_engine_build_with_the_same_version_drops_entries() {
    // An engine rebuilt from changed code keeps its version number but not its fingerprint.
    assert_eq!(tangent::ENGINE_FINGERPRINT.len(), 32);
    assert!(
        tangent::ENGINE_FINGERPRINT
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
    );
    assert_eq!(
        tangent::engine_id(),
        format!(
            "{}+{}",
            tangent::ENGINE_VERSION,
            tangent::ENGINE_FINGERPRINT
        )
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    {
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.stats().engine_build, tangent::ENGINE_FINGERPRINT);
        store
            .put(&k("a"), "code of the engine before the rebuild")
            .unwrap();
        store
            .set_recorded_build_for_tests("00000000000000000000000000000000")
            .unwrap();
    }
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.get(&k("a")), None);
    assert_eq!(store.stats().entries, 0);
    assert_eq!(store.stats().engine_version, tangent::ENGINE_VERSION);
    assert_eq!(store.stats().engine_build, tangent::ENGINE_FINGERPRINT);
}

#[cfg(unix)]
#[test]
fn the_store_is_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a").join("cache");
    populated(&dir);
    for d in [tmp.path().join("a"), dir.clone()] {
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700,
            "{}",
            d.display()
        );
    }
    // sled's files lose any write permission for others, whatever umask created them.
    for file in sled_files(&dir) {
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    }
    let store = Store::open(&dir).unwrap();
    store.put(&k("x"), "y").unwrap();
    store.flush();
    for file in sled_files(&dir) {
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o022,
            0,
            "{}",
            file.display()
        );
    }
}

/// A store with entries in `dir`, closed.
fn populated(dir: &Path) {
    let store = Store::open(dir).unwrap();
    for i in 0..200 {
        store
            .put(&k(&i.to_string()), &format!("value {i} ").repeat(50))
            .unwrap();
    }
    store.flush();
}

fn sled_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Opens a damaged store: must succeed, warn, and be empty; a foreign file in the directory
/// survives the rebuild.
fn assert_rebuilt(dir: &Path) {
    let (store, warnings) = capture_warnings(|| Store::open(dir));
    let store = store.expect("a corrupted store is rebuilt, not an error");
    assert!(
        warnings.iter().any(|w| w.contains("unreadable")),
        "no warning: {warnings:?}"
    );
    assert_eq!(store.stats().entries, 0);
    assert_eq!(store.get(&k("0")), None);
    store.put(&k("new"), "works").unwrap();
    assert_eq!(store.get(&k("new")).as_deref(), Some("works"));
    drop(store);
    assert_eq!(
        Store::open(dir).unwrap().get(&k("new")).as_deref(),
        Some("works")
    );
}

#[test]
fn garbage_files_rebuild_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    populated(&dir);
    fs::write(dir.join("NOTES.txt"), "not sled's").unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for file in sled_files(&dir) {
        if file.ends_with("NOTES.txt") {
            continue;
        }
        let len = fs::metadata(&file).unwrap().len().max(64) as usize;
        let garbage: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        fs::write(&file, garbage).unwrap();
    }
    assert_rebuilt(&dir);
    assert_eq!(
        fs::read_to_string(dir.join("NOTES.txt")).unwrap(),
        "not sled's"
    );
}

#[test]
fn garbage_config_rebuilds_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    populated(&dir);
    fs::write(
        dir.join("conf"),
        b"\xff\xfe this is not a sled configuration at all \x00\x01\x02",
    )
    .unwrap();
    assert_rebuilt(&dir);
}

#[test]
fn truncated_files_never_serve_stale_data() {
    // sled may recover a valid prefix of a truncated log (then the surviving entries are
    // intact and verified) or refuse it (then the store is rebuilt): either way open
    // succeeds and every value served is one that was written.
    for keep in [0u64, 1, 7, 100, 4096, 100_000] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        populated(&dir);
        let db = dir.join("db");
        let len = fs::metadata(&db).unwrap().len();
        let file = fs::OpenOptions::new().write(true).open(&db).unwrap();
        file.set_len(keep.min(len / 2)).unwrap();
        drop(file);
        let store = Store::open(&dir).unwrap_or_else(|e| panic!("keep {keep}: {e}"));
        for i in 0..200 {
            if let Some(v) = store.get(&k(&i.to_string())) {
                assert_eq!(v, format!("value {i} ").repeat(50), "keep {keep}");
            }
        }
        store.put(&k("new"), "works").unwrap();
        assert_eq!(store.get(&k("new")).as_deref(), Some("works"));
    }
}

#[test]
fn truncated_to_nothing_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    populated(&dir);
    for file in sled_files(&dir) {
        fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(0)
            .unwrap();
    }
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.stats().entries, 0);
    assert_eq!(store.stats().engine_version, tangent::ENGINE_VERSION);
}

#[test]
fn undecodable_metadata_rebuilds_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    populated(&dir);
    {
        let db = open_raw(&dir);
        db.open_tree(store::META_TREE)
            .unwrap()
            .insert(b"engine_version", &b"\xff\xfe\xfd"[..])
            .unwrap();
        db.flush().unwrap();
    }
    assert_rebuilt(&dir);
}

#[test]
fn corrupted_value_is_a_miss_and_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let store = Store::open(&dir).unwrap();
    store.put(&k("good"), "good value").unwrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"not a checksummed value".to_vec()),
        ("empty", Vec::new()),
        ("short", vec![0u8; 31]),
        // A half-written value: the first bytes of a valid encoding.
        ("truncated", {
            let full =
                Store::encode_for_tests(&k("truncated"), "a long value ".repeat(10).as_str());
            full[..full.len() - 7].to_vec()
        }),
        // A bit flipped in the payload.
        ("flipped", {
            let mut full = Store::encode_for_tests(&k("flipped"), "some value");
            let last = full.len() - 1;
            full[last] ^= 1;
            full
        }),
        // A valid value of another key.
        (
            "misfiled",
            Store::encode_for_tests(&k("good"), "good value"),
        ),
        // Checksum right, payload not UTF-8 (cannot come from `put`).
        ("not utf-8", {
            let key = k("not utf-8");
            let payload = [0xffu8, 0xfe];
            let mut h = blake3::Hasher::new();
            h.update(&key);
            h.update(&payload);
            let mut v = h.finalize().as_bytes().to_vec();
            v.extend_from_slice(&payload);
            v
        }),
    ];
    for (name, bytes) in cases {
        store.raw_put_for_tests(&k(name), &bytes).unwrap();
        assert!(store.contains_raw_for_tests(&k(name)));
        let (got, warnings) = capture_warnings(|| store.get(&k(name)));
        assert_eq!(got, None, "{name}");
        assert!(
            !store.contains_raw_for_tests(&k(name)),
            "{name} was not removed"
        );
        assert!(
            warnings.iter().any(|w| w.contains("checksum")),
            "{name}: {warnings:?}"
        );
    }
    // The encoding helper matches what `put` writes.
    store
        .raw_put_for_tests(&k("raw"), &Store::encode_for_tests(&k("raw"), "via raw"))
        .unwrap();
    assert_eq!(store.get(&k("raw")).as_deref(), Some("via raw"));
    assert_eq!(store.get(&k("good")).as_deref(), Some("good value"));
}

const HOLD_ENV: &str = "TANGENT_STORE_TEST_HOLD_DIR";
const READY_ENV: &str = "TANGENT_STORE_TEST_READY_FILE";

/// Not a test: the child process of `busy_when_another_process_holds_the_store`. Opens the
/// store, writes one entry, signals readiness, then holds the lock until killed (at most 30 s).
#[test]
#[ignore = "helper run in a child process by busy_when_another_process_holds_the_store"]
fn helper_hold_store_in_child() {
    let (Some(dir), Some(ready)) = (std::env::var_os(HOLD_ENV), std::env::var_os(READY_ENV)) else {
        return;
    };
    let store = Store::open(Path::new(&dir)).expect("child opens the store");
    store.put(&k("from child"), "child's value").unwrap();
    store.flush();
    fs::write(&ready, "ready").unwrap();
    std::thread::sleep(Duration::from_secs(30));
    drop(store);
}

#[test]
fn busy_when_another_process_holds_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let ready = tmp.path().join("ready");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "helper_hold_store_in_child",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, &dir)
        .env(READY_ENV, &ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child exited before holding the store: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the child never opened the store"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let start = Instant::now();
    let result = Store::open(&dir);
    let elapsed = start.elapsed();
    assert!(matches!(result, Err(StoreError::Busy)), "{result:?}");
    assert!(elapsed < Duration::from_secs(1), "Busy took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(50),
        "no retry before giving up: {elapsed:?}"
    );

    // Once the holder is gone (even killed), the store opens with the holder's entries.
    child.kill().unwrap();
    child.wait().unwrap();
    let store = Store::open(&dir).unwrap();
    assert_eq!(
        store.get(&k("from child")).as_deref(),
        Some("child's value")
    );
}

#[cfg(unix)]
#[test]
fn read_only_directory_is_an_io_error() {
    use std::os::unix::fs::PermissionsExt;

    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("ro");
    fs::create_dir(&parent).unwrap();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores permission bits: then there is nothing to observe.
    let enforced = fs::write(parent.join("probe"), "x").is_err();
    let _ = fs::remove_file(parent.join("probe"));

    let dir = parent.join("cache");
    let result = Store::open(&dir);
    if enforced {
        match &result {
            Err(StoreError::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
                assert!(
                    e.to_string().contains(&dir.display().to_string()),
                    "message names the directory: {e}"
                );
            }
            other => panic!("expected an IO error, got {other:?}"),
        }
    } else {
        eprintln!(
            "permissions are not enforced (running as root?): skipping the read-only assertion"
        );
        assert!(result.is_ok(), "{result:?}");
    }
    drop(result);
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o755)).unwrap();

    // An existing store whose directory became read-only: an IO error or a usable store,
    // never a rebuild (which would lose the entries).
    let dir = tmp.path().join("existing");
    {
        let store = Store::open(&dir).unwrap();
        store.put(&k("a"), "kept").unwrap();
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    let (result, warnings) = capture_warnings(|| Store::open(&dir));
    eprintln!("read-only existing store: {result:?} {warnings:?}");
    match &result {
        Ok(store) => assert_eq!(store.get(&k("a")).as_deref(), Some("kept")),
        Err(StoreError::Io(_)) => {}
        Err(other) => panic!("expected a store or an IO error, got {other}"),
    }
    drop(result);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        Store::open(&dir).unwrap().get(&k("a")).as_deref(),
        Some("kept")
    );
}

#[test]
fn unusable_location_is_an_io_error() {
    // Enforced even for root: a directory below a regular file cannot exist.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    fs::write(&file, "x").unwrap();
    let dir = file.join("cache");
    match Store::open(&dir) {
        Err(StoreError::Io(e)) => {
            assert!(e.to_string().contains(&dir.display().to_string()), "{e}")
        }
        other => panic!("expected an IO error, got {other:?}"),
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn key_separates_parts() {
    assert_ne!(store::key(&[b"ab", b"c"]), store::key(&[b"a", b"bc"]));
    assert_ne!(store::key(&[b"abc"]), store::key(&[b"ab", b"c"]));
    assert_ne!(store::key(&[]), store::key(&[b""]));
    assert_ne!(store::key(&[b""]), store::key(&[b"", b""]));
    assert_eq!(store::key(&[b"a", b"bc"]), store::key(&[b"a", b"bc"]));
    assert_ne!(store::key(&[b"a"]), *blake3::hash(b"a").as_bytes());
}

/// Not a test: prints `default_cache_dir("/project")` for `default_cache_dir_honours_env`.
#[test]
#[ignore = "helper run in a child process by default_cache_dir_honours_env"]
fn helper_print_default_cache_dir() {
    if std::env::var_os("TANGENT_STORE_TEST_PRINT").is_some() {
        println!(
            "DIR={}",
            store::default_cache_dir(Path::new("/project")).display()
        );
    }
}

#[test]
fn default_cache_dir_honours_env() {
    // The variable is read in a child process: setting it here would race other tests.
    let run = |value: Option<&str>| -> String {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--ignored",
            "--exact",
            "helper_print_default_cache_dir",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TANGENT_STORE_TEST_PRINT", "1");
        match value {
            Some(v) => cmd.env("TANGENT_CACHE_DIR", v),
            None => cmd.env_remove("TANGENT_CACHE_DIR"),
        };
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout
            .lines()
            .find_map(|l| l.split_once("DIR=").map(|(_, dir)| dir))
            .unwrap_or_else(|| panic!("{stdout}"))
            .to_string()
    };
    assert_eq!(run(None), "/project/.tangent/cache");
    assert_eq!(run(Some("/elsewhere/cache")), "/elsewhere/cache");
    assert_eq!(run(Some("")), "/project/.tangent/cache");
}

/// sled opened directly; its background threads may still hold the lock for a moment after a
/// `Store` is dropped, so retry briefly.
fn open_raw(dir: &std::path::Path) -> sled::Db {
    for _ in 0..100 {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    sled::open(dir).unwrap()
}
