//! Memory a hostile or a large file costs when export (and the steward's re-keying) opens it,
//! measured by a counting allocator: a declared length is never trusted beyond the file's size,
//! and pixel data is never held.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use pseal::deid::{DeidConfig, Options, Profile, UidPlaceholderKey};
use pseal::export::instance::{deidentify_path, LeftOutReason};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::path::Path;
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Tests in this binary run one at a time: the counters are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// Heap bytes allocated (in total, not net of frees) while `f` runs: an upper bound of its peak.
fn allocated_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    (out, region.change().bytes_allocated)
}

fn profile() -> Profile {
    Profile::new(&DeidConfig {
        options: Options::parse_list("default").unwrap(),
        ..DeidConfig::default()
    })
}

const MIB: usize = 1 << 20;

#[test]
fn a_tiny_file_declaring_gigabytes_is_refused_without_reserving_them() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 546 bytes whose UN-encoded sequence (CP-246) dicom-rs alone reads as a 3.7 GB value
    // (fuzz/known-issues): read now as the sequence it is, with little memory.
    let input =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/deid/dicom-rs-reserves-declared-length.dcm");
    let mut bytes = vec![0u8; 128];
    bytes.extend(std::fs::read(input).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let profile = profile();
    let key = UidPlaceholderKey::random();

    let path = dir.path().join("un-sequence.dcm");
    std::fs::write(&path, &bytes).unwrap();
    let (outcome, peak) = allocated_during(|| deidentify_path(&path, &profile, &key));
    assert!(outcome.is_ok(), "a CP-246 sequence is read");
    assert!(
        peak < 16 * MIB,
        "opening a 674-byte file allocated {} MiB in all",
        peak / MIB
    );

    // The same file with a length inside the sequence's implicit-VR content declaring nearly
    // 4 GB: refused, naming the element, before anything reserves it.
    let at = bytes.windows(4).position(|w| w == [0x08, 0x00, 0x50, 0x11]).unwrap();
    bytes[at + 4..at + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let path = dir.path().join("hostile.dcm");
    std::fs::write(&path, &bytes).unwrap();
    let (outcome, peak) = allocated_during(|| deidentify_path(&path, &profile, &key));
    let Err(LeftOutReason::Unreadable(reason)) = outcome else {
        panic!("expected the file to be refused as unreadable");
    };
    assert!(
        reason.contains("(0008,1150)") && reason.contains("declares"),
        "{reason}"
    );
    assert!(
        peak < 16 * MIB,
        "opening a 674-byte file allocated {} MiB in all",
        peak / MIB
    );
}

#[test]
fn a_large_instance_is_opened_without_holding_its_pixels() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 2048 × 2048 × 16 bits = 8 MiB of pixel data.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.dcm");
    std::fs::write(&path, pseal_fixtures::sample::mr_instance(2048).unwrap()).unwrap();
    let profile = profile();
    let key = UidPlaceholderKey::random();

    let (done, peak) = allocated_during(|| deidentify_path(&path, &profile, &key).unwrap());
    assert!(
        done.encoded
            .pixel_data
            .as_ref()
            .is_some_and(|p| p.len() > 8 * MIB as u64),
        "pixel data is referred to in the file, not read"
    );
    assert!(
        peak < 2 * MIB,
        "opening an 8 MiB instance allocated {} KiB in all",
        peak / 1024
    );
}
