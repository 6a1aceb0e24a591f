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
