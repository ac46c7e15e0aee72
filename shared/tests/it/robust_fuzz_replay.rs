//! Replays every committed fuzz seed (`fuzz/corpus/<target>/`) and every kept crash input
//! (`fuzz/regressions/<target>/`) through the fuzz harnesses, in a normal `cargo test`: CI checks
//! the regressions without libFuzzer or a nightly compiler.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(read) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = read
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    v.sort();
    v
}

/// Runs `harness` on every seed and regression input of `target`, naming the input that fails.
fn replay(target: &str, harness: fn(&[u8]), min_seeds: usize) {
    let seeds = inputs("corpus", target);
    assert!(
        seeds.len() >= min_seeds,
        "fuzz/corpus/{target} has {} seeds, expected at least {min_seeds} (regenerate with `cargo test -p pseal-cli --test it robust_fuzz_seeds:: -- --ignored`)",
        seeds.len()
    );
    for path in seeds.iter().chain(&inputs("regressions", target)) {
        let bytes = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| harness(&bytes));
        assert!(outcome.is_ok(), "{target}: {} fails its harness", path.display());
    }
}

#[test]
fn deid_seeds_and_regressions() {
    replay("deid", crate::harness::deid, 2);
}

#[test]
fn bundle_plaintext_seeds_and_regressions() {
    replay("bundle_plaintext", crate::harness::bundle_plaintext, 4);
}

#[test]
fn bundle_file_seeds_and_regressions() {
    replay("bundle_file", crate::harness::bundle_file, 2);
}

#[test]
fn manifest_seeds_and_regressions() {
    replay("manifest", crate::harness::manifest, 4);
}

#[test]
fn identity_seeds_and_regressions() {
    replay("identity", crate::harness::identity, 2);
}

#[test]
fn config_seeds_and_regressions() {
    replay("config", crate::harness::config, 2);
}

#[test]
fn keys_seeds_and_regressions() {
    replay("keys", crate::harness::keys, 5);
}
