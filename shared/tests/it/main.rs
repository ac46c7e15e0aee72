//! pseal's integration tests, gathered in one binary so that the library is linked once (each
//! former `tests/*.rs` file is a module; `cargo test -p pseal --test it deid_engine::` runs one).
//! `tests/robust_memory.rs` stays a binary of its own: its counting global allocator would count
//! the other tests' allocations.

// The fuzz harnesses, replayed and seeded by the robust_fuzz_* modules.
#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

// Helpers shared by the modules below.
mod deid_support;

mod age_vectors;
mod bundle_format;
mod bundle_vectors;
mod deid_descriptors;
mod deid_engine;
mod deid_generated;
mod deid_iod;
mod deid_options;
mod deid_planted;
mod deid_proptest;
mod deid_quarantine;
mod deid_realworld;
mod export_cancel;
mod part10_repair;
mod part10_split;
mod review_parallel;
mod robust_deid_props;
mod robust_fuzz_replay;
mod robust_fuzz_smoke;
mod robust_keys;
mod robust_roundtrip;
