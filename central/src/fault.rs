//! Fault injection for crash tests: abort the process at a named step of an import.
//!
//! When the environment variable `PSEAL_TEST_ABORT_AT` names a step (optionally `STEP:N` for the
//! N-th time the step is reached), the process aborts there — no destructors, no flushing, as a
//! kill would. The crash tests use it to prove that a re-run converges.
//!
//! Test machinery only: it exists in a build with the `fault-injection` feature, which only the
//! workspace's test builds enable (pseal-cli's dev-dependency on pseal-central, where the crash
//! tests live). In any other build — `cargo build --release -p pseal-central`, `cargo install` —
//! [`point`] is empty and the variable is never read.

#[cfg(feature = "fault-injection")]
use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable naming the step to abort at.
pub const ABORT_AT_ENV: &str = "PSEAL_TEST_ABORT_AT";

#[cfg(feature = "fault-injection")]
static HITS: AtomicU64 = AtomicU64::new(0);

/// Marks a step; aborts the process if the environment asks for it (only with the
/// `fault-injection` feature; see the module comment).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_step: &str) {}

/// Marks a step; aborts the process if the environment asks for it.
#[cfg(feature = "fault-injection")]
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

#[cfg(test)]
mod tests {
    /// Without the feature (`cargo test -p pseal-central --lib fault::`, which .ci/run runs: the
    /// crash tests' feature is not unified into a build of pseal-central alone), a step named by
    /// the variable does not abort: if it did, this test binary would die here.
    #[cfg(not(feature = "fault-injection"))]
    #[test]
    fn without_the_feature_the_variable_is_ignored() {
        // Only this test reaches this step name, so setting the variable cannot stop another test.
        std::env::set_var(super::ABORT_AT_ENV, "fault-test-ignored");
        super::point("fault-test-ignored");
        super::point("fault-test-ignored");
        std::env::remove_var(super::ABORT_AT_ENV);
    }
}
