//! A short fuzzing run on the stable compiler, in every `cargo test` (and so in CI): each fuzz
//! harness gets inputs derived from its committed seeds by random mutations — bit flips,
//! boundary bytes, 32-bit length fields set to huge values (how libFuzzer found the dicom-rs
//! reservation), insertions, deletions, duplications, truncations. A panic fails the test and
//! names the seed, the iteration and the mutated input's file, saved for `fuzz/regressions/`.
//!
//! Deterministic (a fixed PRNG seed) so a failure reproduces; `PSEAL_FUZZ_SMOKE_ITERATIONS`
//! (default 2,000 per target) and `PSEAL_FUZZ_SMOKE_SEED` widen or move the search. This does not
//! replace coverage-guided fuzzing (`fuzz/run.sh`), which finds far deeper inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// splitmix64: a small, well-mixed, reproducible generator (not for anything secret).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four random mutations of `input`.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] = [0x00, 0xFF, 0x7F, 0x80, 0xFE, 0x01][rng.below(6)];
            }
            2 if v.len() >= 4 => {
                // A length field claiming (nearly) 4 GiB, or undefined length.
                let i = at.min(v.len() - 4);
                let word: u32 = [0xFFFF_FFFF, 0xFFFF_FFF0, 0x7FFF_FFFF, 0x0001_0000][rng.below(4)];
                v[i..i + 4].copy_from_slice(&word.to_le_bytes());
            }
            3 => {
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            4 if !v.is_empty() => {
                let end = (at + 1 + rng.below(64)).min(v.len());
                v.drain(at.min(v.len() - 1)..end);
            }
            5 if !v.is_empty() => {
                let start = at.min(v.len() - 1);
                let end = (start + 1 + rng.below(256)).min(v.len());
                let chunk = v[start..end].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, chunk);
            }
            6 => v.truncate(at),
            _ => {
                // Swap two bytes (reorders fields and tags).
                if v.len() >= 2 {
                    let (i, j) = (rng.below(v.len()), rng.below(v.len()));
                    v.swap(i, j);
                }
            }
        }
    }
    v
}

fn seeds(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut v: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(root.join(kind).join(target)).ok())
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    v.sort();
    v
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn smoke(target: &str, harness: fn(&[u8])) {
    let seeds: Vec<(PathBuf, Vec<u8>)> = seeds(target)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert!(!seeds.is_empty(), "no seeds for {target}");
    let iterations = env_u64("PSEAL_FUZZ_SMOKE_ITERATIONS", 2_000);
    let mut rng = Rng(env_u64("PSEAL_FUZZ_SMOKE_SEED", 0x5EA1) ^ target.len() as u64);
    for i in 0..iterations {
        let (seed_path, seed) = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed);
        if catch_unwind(AssertUnwindSafe(|| harness(&input))).is_err() {
            let kept = std::env::temp_dir().join(format!("pseal-fuzz-smoke-{target}-{i}"));
            let _ = std::fs::write(&kept, &input);
            panic!(
                "{target}: iteration {i}, mutated from {}, panics; input kept in {}",
                seed_path.display(),
                kept.display()
            );
        }
    }
}

#[test]
fn deid_survives_mutated_seeds() {
    smoke("deid", crate::harness::deid);
}

#[test]
fn bundle_plaintext_survives_mutated_seeds() {
    smoke("bundle_plaintext", crate::harness::bundle_plaintext);
}

#[test]
fn bundle_file_survives_mutated_seeds() {
    smoke("bundle_file", crate::harness::bundle_file);
}

#[test]
fn manifest_survives_mutated_seeds() {
    smoke("manifest", crate::harness::manifest);
}

#[test]
fn identity_survives_mutated_seeds() {
    smoke("identity", crate::harness::identity);
}

#[test]
fn config_survives_mutated_seeds() {
    smoke("config", crate::harness::config);
}

#[test]
fn keys_survives_mutated_seeds() {
    smoke("keys", crate::harness::keys);
}
