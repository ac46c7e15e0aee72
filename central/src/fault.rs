//! Fault injection for crash tests: abort the process at a named step of an import.
//!
//! When the environment variable `PSEAL_TEST_ABORT_AT` names a step (optionally `STEP:N` for the
//! N-th time the step is reached), the process aborts there — no destructors, no flushing, as a
//! kill would. The crash tests use it to prove that a re-run converges; in normal use the variable
//! is unset and the check is one environment lookup per step.

use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable naming the step to abort at.
pub const ABORT_AT_ENV: &str = "PSEAL_TEST_ABORT_AT";

static HITS: AtomicU64 = AtomicU64::new(0);

/// Marks a step; aborts the process if the environment asks for it.
pub fn point(step: &str) {
    let Ok(want) = std::env::var(ABORT_AT_ENV) else { return };
    let (name, nth) = match want.split_once(':') {
        Some((n, k)) => (n.to_string(), k.parse::<u64>().unwrap_or(1)),
        None => (want.clone(), 1),
    };
    if name == step {
        let hit = HITS.fetch_add(1, Ordering::SeqCst) + 1;
        if hit == nth {
            eprintln!("pseal-central: aborting at step {step} ({ABORT_AT_ENV})");
            std::process::abort();
        }
    }
}

/// The steps of an import, in order, for the crash tests.
pub const IMPORT_STEPS: &[&str] = &[
    "verified",
    "minted",
    "archive-file",
    "archive-synced",
    "committed",
    "indexed",
];
