//! The end-to-end tests through the real binaries (`pseal`, `pseal-central`), gathered in one
//! binary so that the libraries are linked once; each former `tests/*.rs` file is a module
//! (`cargo test -p pseal-cli --test it linkage::` runs one).

// The fuzz harnesses, replayed and seeded by the robust_fuzz_* modules.
#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

// Helpers shared by the modules below.
mod common;
mod robust_support;

mod archive_validity;
mod crash_and_concurrency;
mod end_to_end;
mod interop_age;
mod linkage;
mod planted_e2e;
mod publish_orthanc;
mod release_formats;
mod review_and_realworld;
mod robust_faults;
mod robust_fuzz_seeds;
mod robust_secrets;
mod robust_tamper;
mod steward;
mod what_people_see;
