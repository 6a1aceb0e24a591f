//! Replays the committed fuzz corpus (`tests/fuzz/corpus/<target>/*`) and the crash
//! reproducers (`tests/fuzz/regressions/<target>/*`) through the fuzz targets' own entry points
//! (`tests/fuzz/src/entry.rs`), on stable and in every `cargo test`: a fixed crash stays fixed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fuzz/src/entry.rs"]
#[allow(dead_code)]
mod entry;

use std::fs;
use std::path::Path;

/// Every file under `dir/<target>/`, replayed; the number replayed.
fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut count = 0;
    for target in entry::TARGETS {
        let Ok(files) = fs::read_dir(root.join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = files.map(|f| f.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let data = fs::read(&path).unwrap();
            let ran = std::panic::catch_unwind(|| entry::run(target, &data));
            assert!(
                matches!(ran, Ok(true)),
                "{target} panicked on {}",
                path.display()
            );
            count += 1;
        }
    }
    count
}

#[test]
fn corpus_replays_without_a_panic() {
    let n = replay("tests/fuzz/corpus");
    assert!(
        n >= entry::TARGETS.len(),
        "only {n} corpus inputs: the corpus is missing"
    );
}

#[test]
fn crash_reproducers_stay_fixed() {
    replay("tests/fuzz/regressions");
}

#[test]
fn every_target_accepts_the_empty_input_and_garbage() {
    for target in entry::TARGETS {
        assert!(entry::run(target, b""));
        assert!(entry::run(target, &[0xff; 64]));
    }
    assert!(!entry::run("no-such-target", b""));
}

/// The seeds named `valid-*` are what the issue asks for: valid inputs of the demo API and
/// valid configurations, so that mutations start from inputs the code accepts (a seed with a
/// field the demo proto does not have is refused at once and teaches the fuzzer nothing).
#[test]
fn valid_seeds_are_accepted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    type Accepts = fn(&[u8]) -> bool;
    let checks: [(&str, Accepts); 3] = [
        ("json_to_proto", entry::json_to_proto_accepts),
        ("proto_to_json", entry::proto_to_json_accepts),
        ("config", entry::config_accepts),
    ];
    for (target, accepts) in checks {
        let mut n = 0;
        for f in fs::read_dir(root.join(target)).unwrap() {
            let path = f.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("valid-") {
                continue;
            }
            assert!(
                accepts(&fs::read(&path).unwrap()),
                "{target}: seed {name} is refused ({:?})",
                entry::binding_names()
            );
            n += 1;
        }
        assert!(n >= 2, "{target}: only {n} valid seeds");
    }
}

/// The filter target's valid seeds are served: no error reply, and the request reached an
/// upstream (a side call made, or a reply body transcoded for the client).
#[test]
fn valid_filter_seeds_are_served() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/filter");
    let mut n = 0;
    for f in fs::read_dir(root).unwrap() {
        let path = f.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("valid-") {
            continue;
        }
        let out = entry::filter_outcome(&fs::read(&path).unwrap()).unwrap();
        assert!(
            out.replies.iter().all(|s| *s < 400),
            "{name}: error replies {:?}",
            out.replies
        );
        assert!(
            out.calls > 0 || !out.response_body.is_empty(),
            "{name}: nothing reached an upstream"
        );
        n += 1;
    }
    assert!(n >= 5, "only {n} valid filter seeds");
}
